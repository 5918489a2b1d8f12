"""``vsr upscale``: a thin click command over :func:`vsr.video.jobs.upscale_path`.

Errors follow ``vsr/cli.py``'s convention (one line ``vsr: error: ...`` on stderr, the error's exit
code, the traceback only with ``vsr --debug``); the command applies it itself so it behaves the same
when invoked on its own.
"""

from __future__ import annotations

import logging
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import click

from ..errors import Cancelled, VsrError
from ..models.registry import PRECISIONS
from ..runtime import RUNTIMES

#: Exit status when some files of a folder failed (each was reported).
SOME_FAILED = 1

log = logging.getLogger("vsr")


def _debug(ctx: click.Context) -> bool:
    root = ctx.find_root()
    return bool((root.obj or {}).get("debug")) if isinstance(root.obj, dict) else False


def _fail(ctx: click.Context, message: str, code: int) -> None:
    click.echo(f"vsr: error: {message}", err=True)
    ctx.exit(code)


@dataclass(frozen=True)
class ModelFactory:
    """Builds the upscaler of a named model: picklable, so each worker process loads its own copy."""

    model: str
    weights: Path | None = None
    batch: int = 4
    tile: int | None = None
    precision: str = "float32"
    runtime: str = "auto"

    def __call__(self):
        import vsr  # the lead's public API; imported late so a bad path fails before TensorFlow loads

        return vsr.load_model(
            self.model, weights=self.weights, batch=self.batch, tile=self.tile, precision=self.precision,
            runtime=self.runtime,
        )

    def identity(self) -> dict:
        """The model and every option that changes its pixels, for a work folder's manifest (no TensorFlow)."""
        from ..models import weights as weights_mod
        from ..models.registry import generator_weights, get_spec

        spec = get_spec(self.model)
        digest = None
        if spec.arch is not None:
            digest = weights_mod.sha256_of(generator_weights(self.model, self.weights)[0])
        return {
            "model": self.model,
            "scale": spec.scale,
            "weights_sha256": digest,
            "tile": self.tile,
            "precision": self.precision,
            "runtime": self.runtime,  # LiteRT and TensorFlow may differ by one grey level
        }

    def gpus(self) -> int:
        """GPUs TensorFlow sees (0 for a model without a network, which never uses one; without a GPU
        device node, 0 without importing TensorFlow)."""
        from ..models.registry import get_spec
        from ..runtime import tf_gpu_count

        if get_spec(self.model).arch is None:
            return 0
        return tf_gpu_count()


def _parse_memory(ctx, param, value):
    if value is None:
        return None
    from .memory import parse_size

    try:
        return parse_size(value)
    except ValueError as err:
        _fail(ctx, str(err), 2)


def _parse_time(ctx, param, value):
    if value is None:
        return None
    from .span import parse_time

    try:
        return parse_time(value, f"--{param.name}")
    except ValueError as err:
        _fail(ctx, str(err), 2)


def _parse_shard(ctx, param, value):
    if value is None:
        return None
    from .segmented import parse_shard

    try:
        return parse_shard(value)
    except ValueError as err:
        _fail(ctx, str(err), 2)


def _parse_outscale(ctx, param, value):
    if value is None:
        return None
    from .size import MAX_OUTSCALE

    try:
        scale = float(value)
    except ValueError:
        scale = None
    if scale is None or not 0 < scale <= MAX_OUTSCALE:  # also refuses nan and inf
        _fail(ctx, f"--outscale takes a number in (0, {MAX_OUTSCALE}], e.g. 2, not {value!r}", 2)
    return scale


def _parse_pixels(ctx, param, value):
    if value is None:
        return None
    try:
        pixels = int(value)
    except ValueError:
        pixels = 0
    if pixels <= 0:
        _fail(ctx, f"--{param.name} takes a positive number of pixels (e.g. 1920), not {value!r}", 2)
    return pixels


def _parse_encoder_options(ctx, param, value):
    from ..errors import OutputError
    from .formats import parse_encoder_options

    try:
        parse_encoder_options(value)  # the form only: the encoder's own verdict comes from the trial encode
    except OutputError as err:
        _fail(ctx, str(err), 2)
    return tuple(value)


@click.command("upscale")
@click.argument("src", type=click.Path(path_type=Path))
@click.argument("dst", type=click.Path(path_type=Path))
@click.option("--model", default="perpix", show_default=True, help="Named model (see `vsr models`).")
@click.option(
    "--weights",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Generator weights file instead of the bundled ones.",
)
@click.option(
    "--batch",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    help="Frames per model call (lowered automatically to fit --max-memory).",
)
@click.option(
    "--max-memory",
    metavar="SIZE",
    callback=_parse_memory,
    default=None,
    help="Memory this process may use, e.g. 6G or 512M; batch and tiles shrink to fit, and a frame that "
    "cannot fit is refused [default: half the memory available at the start; ffmpeg's own not counted].",
)
@click.option(
    "--tile",
    type=click.IntRange(min=0),
    default=None,
    help="Input tile size in pixels (0 = never tile; default: tile only large frames).",
)
@click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    default="float32",
    show_default=True,
    help="bf16: bfloat16 compute (fast where the CPU has AVX512-BF16/AMX, or on a GPU); "
    "mixed: bf16 on the CPU, float16 on a GPU.",
)
@click.option(
    "--runtime",
    type=click.Choice(RUNTIMES),
    default="auto",
    show_default=True,
    help="auto: on the CPU (float32), the faster of LiteRT/XNNPACK and TensorFlow, timed once per CPU and "
    "input size and cached (`vsr models --speed` shows it); TensorFlow on a GPU or for bf16/mixed.",
)
@click.option(
    "--codec",
    metavar="ENCODER",
    default=None,
    help="Any video encoder the ffmpeg in use lists (`ffmpeg -encoders`), e.g. libx265, libsvtav1, "
    "h264_nvenc, hevc_qsv, ffv1 [default: libx264; libvpx-vp9 for .webm].",
)
@click.option(
    "--crf",
    type=int,
    default=None,
    help="Constant quality, lower is better: the encoder's crf (NVENC: cq) [default per codec: x264 18, "
    "x265 20, VP9/AV1 30; other encoders their own].",
)
@click.option(
    "--preset", default=None, help="The encoder's speed preset (x264/x265: medium; NVENC: p1-p7; SVT-AV1: 0-13)."
)
@click.option(
    "--pix-fmt",
    default=None,
    help="Output pixel format, e.g. yuv420p10le [default: yuv420p, bgr0 for ffv1; for a 10-bit source "
    "the encoder's 10-bit format when it has one].",
)
@click.option(
    "--encoder-opt",
    "encoder_options",
    metavar="KEY=VALUE",
    multiple=True,
    callback=_parse_encoder_options,
    help="Pass -KEY VALUE to the video encoder (repeatable), e.g. g=48 or x264-params=keyint=48:scenecut=0; "
    "checked by a one-frame trial encode before any work.",
)
@click.option(
    "--outscale",
    metavar="F",
    callback=_parse_outscale,
    default=None,
    help="Final scale over the input, 0 < F <= 4: x4, then an area-averaging downscale (e.g. 2).",
)
@click.option(
    "--width", metavar="PIXELS", callback=_parse_pixels, default=None,
    help="Output width (x4, then downscaled; the height keeps the aspect ratio unless --height is given too).",
)
@click.option(
    "--height", metavar="PIXELS", callback=_parse_pixels, default=None,
    help="Output height (x4, then downscaled; the width keeps the aspect ratio unless --width is given too).",
)
@click.option("--overwrite", is_flag=True, help="Replace existing outputs (folders: redo finished files).")
@click.option(
    "--recursive",
    "-r",
    is_flag=True,
    help="Folder input: its subfolders too, their tree mirrored under DST (without it they are skipped, "
    "and said).",
)
@click.option(
    "--start",
    metavar="TIME",
    callback=_parse_time,
    help="Make the video from TIME (seconds, or [HH:]MM:SS[.ms]; ffmpeg's -ss): the first frame is the one "
    "shown then; audio, subtitles and chapters are cut to match.",
)
@click.option(
    "--duration",
    metavar="TIME",
    callback=_parse_time,
    help="Make only TIME of the video (seconds, or [HH:]MM:SS[.ms]; ffmpeg's -t), from --start.",
)
@click.option(
    "--at",
    metavar="TIME",
    callback=_parse_time,
    help="With an image DST: upscale the one frame of the video shown at TIME (seconds, or [HH:]MM:SS[.ms]).",
)
@click.option(
    "--segment-seconds",
    type=click.FloatRange(min=0),
    default=None,
    help="Make videos longer than this in resumable segments of this length [default: 30; 0: one pass].",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes, each taking the next free segment [default: one per GPU, else 1].",
)
@click.option(
    "--shard",
    metavar="K/N",
    callback=_parse_shard,
    help="Make only the K-th of N shares of the segments (one video; no output until --merge).",
)
@click.option("--merge", is_flag=True, help="Join the finished segments of all shards into DST.")
@click.option("--restart", is_flag=True, help="Discard the segments an earlier run left and start again.")
@click.option(
    "--ffmpeg",
    "ffmpeg_path",
    metavar="PATH",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Run this ffmpeg instead of the bundled one (as VSR_FFMPEG does); refused if older than vsr supports.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary; errors only.")
@click.option(
    "--verbose", "-v", is_flag=True, help="Say where start-up time goes (one line per phase) and which runtime auto chose."
)
@click.pass_context
def upscale_command(
    ctx,
    src,
    dst,
    model,
    weights,
    batch,
    max_memory,
    tile,
    precision,
    runtime,
    codec,
    crf,
    preset,
    pix_fmt,
    encoder_options,
    outscale,
    width,
    height,
    overwrite,
    recursive,
    start,
    duration,
    at,
    segment_seconds,
    workers,
    shard,
    merge,
    restart,
    ffmpeg_path,
    quiet,
    verbose,
):
    """Upscale SRC (a video, an image, or a folder of them) into DST (a file, or a folder).

    The output keeps the source's audio, subtitles, chapters, metadata and frame timing, and is
    written under a temporary name that is renamed only when complete. A folder input processes every
    video and image in it (and in its subfolders with --recursive), skipping those whose output exists;
    the exit status is non-zero if any failed.

    Videos longer than --segment-seconds are made in segments in DST.vsr-work beside DST: after a
    crash, run the same command again and it resumes. --workers N spreads the segments over N
    processes; --shard K/N on several machines sharing the folder, then --merge, spreads them wider.

    --start/--duration make only part of a video; `vsr upscale IN.mp4 frame.png --at 00:01:23` one
    frame of it. Before a video's first frame is written, its frame count, output size and an
    estimated time (measured on the first batch) are printed, unless -q.
    """
    from ..startup import cli_logging, is_vsr_process, process_age, waited
    from .jobs import upscale_path

    started = time.monotonic()
    cli_logging(verbose)
    if is_vsr_process():
        log.info("start-up: python and vsr's imports, to the command %.2f s", process_age())
    if outscale is not None and (width is not None or height is not None):
        _fail(ctx, "--outscale and --width/--height are alternatives: give one of them", 2)
    load_upscaler = ModelFactory(model, weights, batch, tile, precision, runtime)
    one_file = not src.is_dir()

    def report(result):
        if result.status == "failed":
            click.echo(f"vsr: error: {result}", err=True)
        elif not quiet:
            if one_file and result.summary is not None:
                result.summary.total_seconds = waited(started)  # imports included, when this is `vsr`
            click.echo(str(result))

    try:
        if ffmpeg_path is not None:
            from .ffmpeg import ffmpeg_exe, use_ffmpeg

            use_ffmpeg(ffmpeg_path)
            ffmpeg_exe()  # refuse a missing or too old one before any work
        results = upscale_path(
            src,
            dst,
            load_upscaler,
            batch=batch,
            max_memory=max_memory,
            codec=codec,
            crf=crf,
            preset=preset,
            pix_fmt=pix_fmt,
            encoder_options=encoder_options,
            outscale=outscale,
            width=width,
            height=height,
            overwrite=overwrite,
            start=start,
            duration=duration,
            at=at,
            progress=not quiet,
            on_result=report,
            recursive=recursive,
            on_note=None if quiet else click.echo,
            segment_seconds=segment_seconds,
            workers=workers,
            shard=shard,
            merge=merge,
            restart=restart,
        )
    except VsrError as err:
        if _debug(ctx):
            raise
        _fail(ctx, str(err), err.exit_code)
    except KeyboardInterrupt:
        if _debug(ctx):
            raise
        _fail(ctx, "interrupted; partial output removed", Cancelled().exit_code)
    except Exception as err:
        if _debug(ctx):
            raise
        _fail(ctx, f"{src}: unexpected {type(err).__name__}: {err} (run `vsr --debug upscale ...` for details)", 1)
    failed = [r for r in results if r.status == "failed"]
    if len(results) > 1 and not quiet:
        done = sum(r.status == "done" for r in results)
        skipped = sum(r.status == "skipped" for r in results)
        click.echo(f"{done} done, {skipped} skipped, {len(failed)} failed; {waited(started):.1f} s in all")
    if failed:
        if _debug(ctx):
            for r in failed:
                traceback.print_exception(r.error)
        ctx.exit(SOME_FAILED)


def _parse_crop(ctx, param, value):
    if value is None:
        return None
    from .preview import parse_crop

    try:
        parse_crop(value)
    except ValueError as err:
        _fail(ctx, str(err), 2)
    return value


@click.command("preview")
@click.argument("src", type=click.Path(path_type=Path))
@click.argument("dst", type=click.Path(path_type=Path))
@click.option(
    "--at",
    metavar="TIME",
    callback=_parse_time,
    help="The frame shown at TIME (seconds, or [HH:]MM:SS[.ms]) [default: the middle of the video; "
    "an image takes none].",
)
@click.option(
    "--models",
    metavar="LIST",
    default=None,
    help="Comma-separated models, one panel each: names, or LABEL=FILE for a generator weights file "
    "[default: bicubic plus every model whose weights are present].",
)
@click.option(
    "--crop",
    metavar="WxH+X+Y",
    callback=_parse_crop,
    help="The region to compare, in source pixels (WxH alone: centred) [default: 128x128 at the centre].",
)
@click.option("--overwrite", is_flag=True, help="Replace DST if it exists.")
@click.option("--quiet", "-q", is_flag=True, help="No summary line; errors only.")
@click.pass_context
def preview_command(ctx, src, dst, at, models, crop, overwrite, quiet):
    """Compare models on one frame of SRC (a video or an image): the same crop from each, side by side.

    DST is an image: the crop as each model upscales it (x4), labelled, beside the source crop
    enlarged with nearest neighbour.

    Pick a model by looking before an hours-long job, e.g.
    `vsr preview IN.mp4 --at 00:01:23 --models bicubic,mse OUT.png`.
    """
    from .preview import check_model_weights, plan_preview, run_preview

    try:
        job = plan_preview(src, dst, at=at, crop=crop, overwrite=overwrite)
        from ..models.registry import load_labelled, present_models

        entries = present_models() if models is None else [m.strip() for m in models.split(",") if m.strip()]
        check_model_weights(entries)
        summary = run_preview(job, load_labelled(entries, batch=1))
    except VsrError as err:
        if _debug(ctx):
            raise
        _fail(ctx, str(err), err.exit_code)
    except KeyboardInterrupt:
        if _debug(ctx):
            raise
        _fail(ctx, "interrupted; nothing written", Cancelled().exit_code)
    if not quiet:
        click.echo(str(summary))
