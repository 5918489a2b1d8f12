"""``vsr upscale``: a thin click command over :func:`vsr.video.pipeline.upscale_path`.

Errors follow ``vsr/cli.py``'s convention (one line ``vsr: error: ...`` on stderr, the error's exit
code, the traceback only with ``vsr --debug``); the command applies it itself so it behaves the same
when invoked on its own.
"""

from __future__ import annotations

import traceback
from pathlib import Path

import click

from ..errors import Cancelled, VsrError
from .formats import VIDEO_CODECS

#: Exit status when some files of a folder failed (each was reported).
SOME_FAILED = 1


def _debug(ctx: click.Context) -> bool:
    root = ctx.find_root()
    return bool((root.obj or {}).get("debug")) if isinstance(root.obj, dict) else False


def _fail(ctx: click.Context, message: str, code: int) -> None:
    click.echo(f"vsr: error: {message}", err=True)
    ctx.exit(code)


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
@click.option("--batch", type=click.IntRange(min=1), default=4, show_default=True, help="Frames per model call.")
@click.option(
    "--tile",
    type=click.IntRange(min=0),
    default=None,
    help="Input tile size in pixels (0 = never tile; default: tile only large frames).",
)
@click.option("--precision", type=click.Choice(["float32", "mixed"]), default="float32", show_default=True)
@click.option(
    "--codec",
    type=click.Choice(sorted(VIDEO_CODECS)),
    default=None,
    help="Video encoder [default: libx264; libvpx-vp9 for .webm].",
)
@click.option("--crf", type=int, default=None, help="Constant quality (lower is better; default per codec).")
@click.option("--preset", default=None, help="Encoder speed preset (libx264/libx265) [default: medium].")
@click.option(
    "--pix-fmt",
    default=None,
    help="Output pixel format, e.g. yuv420p10le for 10-bit [default: yuv420p; bgr0 for ffv1].",
)
@click.option("--overwrite", is_flag=True, help="Replace existing outputs (folders: redo finished files).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary; errors only.")
@click.pass_context
def upscale_command(
    ctx, src, dst, model, weights, batch, tile, precision, codec, crf, preset, pix_fmt, overwrite, quiet
):
    """Upscale SRC (a video, an image, or a folder of them) into DST (a file, or a folder).

    The output keeps the source's audio, subtitles, chapters, metadata and frame timing, and is
    written under a temporary name that is renamed only when complete. A folder input processes every
    video and image in it, skipping those whose output exists; the exit status is non-zero if any failed.
    """
    from .pipeline import upscale_path

    def load_upscaler():
        import vsr  # the lead's public API; imported late so a bad path fails before TensorFlow loads

        return vsr.load_model(model, weights=weights, batch=batch, tile=tile, precision=precision)

    def report(result):
        if result.status == "failed":
            click.echo(f"vsr: error: {result}", err=True)
        elif not quiet:
            click.echo(str(result))

    try:
        results = upscale_path(
            src,
            dst,
            load_upscaler,
            batch=batch,
            codec=codec,
            crf=crf,
            preset=preset,
            pix_fmt=pix_fmt,
            overwrite=overwrite,
            progress=not quiet,
            on_result=report,
        )
    except VsrError as err:
        if _debug(ctx):
            raise
        _fail(ctx, str(err), err.exit_code)
    except KeyboardInterrupt:
        if _debug(ctx):
            raise
        _fail(ctx, "interrupted; partial output removed", Cancelled.exit_code)
    except Exception as err:
        if _debug(ctx):
            raise
        _fail(ctx, f"{src}: unexpected {type(err).__name__}: {err} (run `vsr --debug upscale ...` for details)", 1)
    failed = [r for r in results if r.status == "failed"]
    if len(results) > 1 and not quiet:
        done = sum(r.status == "done" for r in results)
        skipped = sum(r.status == "skipped" for r in results)
        click.echo(f"{done} done, {skipped} skipped, {len(failed)} failed")
    if failed:
        if _debug(ctx):
            for r in failed:
                traceback.print_exception(r.error)
        ctx.exit(SOME_FAILED)
