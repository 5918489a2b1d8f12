"""Upscaling videos, images and folders: the layer that decides single pass or segments.

``upscale_video`` plans a video and runs it in one pass (:func:`vsr.video.pipeline.run_video`) or in
segments (:func:`vsr.video.segmented.run_segmented`); ``upscale_image`` and ``upscale_path`` (a file
or a folder of them) build on it. Below this: the frame pipeline (:mod:`.pipeline`), then I/O
(:mod:`.reader`, :mod:`.writer`, :mod:`.probe`, :mod:`.output`). Safety is as :mod:`.pipeline` says:
every check that needs no work runs first, output is atomic, errors are one-line ``VsrError``s.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


from ..errors import Cancelled, InputError, ModelError, OutputError
from .formats import (
    ALPHA_IMAGE_EXTENSIONS,
    EXIF_IMAGE_EXTENSIONS,
    IMAGE_EXTENSIONS,
    VIDEO_EXTENSIONS,
    parse_encoder_options,
    video_output_name,
)
from .image import read_still, upscale_alpha, write_image_atomic
from .output import (
    check_input_file,
    check_output_folder,
    check_output_path,
    make_output_folder,
    remove_stale_temporaries,
    same_file,
    stale_note,
)
from .pipeline import FileResult, Summary, check_upscaled, plan_video, run_video
from .size import MAX_OUTSCALE, OutputSize, resize_frame
from .segmented import default_workers, identity_of, plan_segmented, run_segmented
from .span import format_time
from .still import check_time, frame_at
from .workdir import WORK_SUFFIX


def upscale_video(
    src,
    dst,
    upscaler,
    *,
    batch: int = 4,
    codec: str | None = None,
    crf: int | None = None,
    preset: str | None = None,
    pix_fmt: str | None = None,
    encoder_options=None,
    outscale: float | None = None,
    width: int | None = None,
    height: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    segment_seconds=None,
    restart: bool = False,
    identity: dict | None = None,
    max_memory: int | str | None = None,
    start=None,
    duration=None,
) -> Summary:
    """Upscale the video ``src`` into ``dst`` (container from its extension).

    Keeps every audio track (stream copy, or re-encoded where the container cannot hold it), subtitles
    the container supports, chapters, metadata, the frame count and every frame's timestamp (so the frame
    rate, variable or not, and A/V sync are as in the source); rotated phone videos come out upright.
    ``codec`` (any video encoder the ffmpeg in use lists) defaults to libx264 (libvpx-vp9 for .webm);
    ``crf``/``preset``/``pix_fmt`` default per codec, a source deeper than 8 bits getting a deeper
    ``pix_fmt`` where the encoder has one; ``encoder_options`` (``["KEY=VALUE", ...]`` or a dict) go to
    the encoder as ``-KEY VALUE`` (see :mod:`vsr.video.formats`). One frame is trial-encoded with
    these settings before any work, so an option the encoder rejects fails at once.
    ``outscale`` (0 < F <= 4) or ``width``/``height`` downscale the x4 frames (see :mod:`vsr.video.size`).
    Progress goes to stderr with tqdm unless ``progress`` is false.
    Raises a :class:`~vsr.errors.VsrError` subclass; no output or temporary file is left behind then.

    Videos longer than ``segment_seconds`` (default 30; 0: never) are made in segments in a work
    folder beside ``dst`` (see :mod:`vsr.video.segmented`): after a crash, the same call resumes from
    the segments already finished, unless ``restart``. ``identity`` (a JSON-able dict) names the model
    and its pixel-changing options, so a changed model refuses the old segments; by default it is the
    upscaler's class, ``name`` and ``scale``.

    ``max_memory`` (bytes, or a size such as ``"6G"``; default: half the memory available) bounds what
    this process holds: ``batch`` is lowered, and the engine's tiles shrunk, until the frames in flight
    fit; if even one frame does not, a :class:`~vsr.errors.MemoryLimitError` is raised before any work
    (see :mod:`vsr.video.memory`).

    ``start``/``duration`` (seconds; ffmpeg's ``-ss``/``-t``) make only that span of the source, audio,
    subtitles and chapters cut to match; its first frame is the one displayed at ``start`` (see
    :mod:`vsr.video.span`). A ``start`` at or past the end raises :class:`~vsr.errors.InputError`.
    """
    job = plan_video(
        src, dst, codec=codec, crf=crf, preset=preset, pix_fmt=pix_fmt, encoder_options=encoder_options,
        outscale=outscale, width=width, height=height, overwrite=overwrite, start=start, duration=duration,
    )
    segments = plan_segmented(
        job, identity=identity or (lambda: identity_of(upscaler)), segment_seconds=segment_seconds, restart=restart
    )
    if segments is None:
        return run_video(job, upscaler, batch=batch, progress=progress, max_memory=max_memory)
    return run_segmented(segments, lambda: upscaler, batch=batch, progress=progress, max_memory=max_memory)


# -- images ----------------------------------------------------------------------------------------
def plan_image(src, dst, *, overwrite: bool = False, outscale=None, width=None, height=None) -> tuple[Path, Path]:
    src, dst = Path(src), Path(dst)
    OutputSize.make(outscale, width, height)
    check_input_file(src)
    check_output_path(src, dst, overwrite=overwrite)
    if dst.suffix.lower() not in IMAGE_EXTENSIONS:
        raise OutputError(
            f"{dst}: unsupported image extension {dst.suffix or '(none)'!r}: use one of "
            + ", ".join(sorted(IMAGE_EXTENSIONS))
        )
    check_output_folder(dst)
    return src, dst


def upscale_image(
    src, dst, upscaler, *, overwrite: bool = False, outscale=None, width=None, height=None
) -> Summary:
    """Upscale one image; the output format follows ``dst``'s extension.

    Alpha and EXIF (less the orientation, which is applied to the pixels) are kept where the format can
    hold them; each loss is a note in the summary. ``outscale``/``width``/``height`` downscale the x4
    result as for videos (:mod:`vsr.video.size`).
    """
    src, dst = plan_image(src, dst, overwrite=overwrite)
    size = OutputSize.make(outscale, width, height)
    stale = stale_note(remove_stale_temporaries(dst))
    started = time.perf_counter()
    still = read_still(src)
    rgb, alpha, exif = still.rgb, still.alpha, still.exif
    scale = int(upscaler.scale)
    h, w = rgb.shape[:2]
    target = size.target((w, h), scale)  # refused before the model runs
    try:
        batch = rgb[None]
        out = resize_frame(check_upscaled(upscaler.upscale(batch), batch, scale)[0], target)
    except KeyboardInterrupt:
        raise Cancelled(f"{src}: interrupted; nothing written") from None
    notes = stale
    if still.depth > 8:
        notes.append(f"{still.depth}-bit input written as 8-bit")
    if alpha is not None:
        if dst.suffix.lower() in ALPHA_IMAGE_EXTENSIONS:
            alpha = resize_frame(upscale_alpha(alpha, scale), target)
            notes.append("alpha upscaled bicubically")
        else:
            alpha = None
            notes.append(f"alpha dropped ({dst.suffix} has none)")
    if exif is not None:
        if dst.suffix.lower() not in EXIF_IMAGE_EXTENSIONS:
            exif = None
            notes.append(f"EXIF dropped ({dst.suffix} has none)")
        elif dst.suffix.lower() in (".tif", ".tiff"):
            notes.append("TIFF written uncompressed to keep its EXIF")
    write_image_atomic(dst, out, alpha, exif=exif, overwrite=overwrite)
    summary = Summary(src, dst, 1, time.perf_counter() - started, (w, h), target, notes)
    summary.describe_upscaler(upscaler)
    summary.describe_output()
    return summary


def upscale_still(
    src, dst, upscaler, *, at, overwrite: bool = False, outscale=None, width=None, height=None
) -> Summary:
    """Upscale the one frame of the video ``src`` displayed at ``at`` seconds into the image ``dst``.

    The frame is the one a player shows at ``at`` (upright: rotation applied; see :mod:`vsr.video.still`);
    a time past the end raises :class:`~vsr.errors.InputError`, as does an image ``src``.
    ``outscale``/``width``/``height`` downscale the x4 frame as for videos (:mod:`vsr.video.size`)."""
    src, dst = plan_image(src, dst, overwrite=overwrite)
    size = OutputSize.make(outscale, width, height)
    if media_kind(src) == "image":
        raise InputError(f"{src}: is an image, which has one frame: drop --at")
    stale = stale_note(remove_stale_temporaries(dst))
    started = time.perf_counter()
    still = frame_at(src, at)
    scale = int(upscaler.scale)
    h, w = still.pixels.shape[:2]
    target = size.target((w, h), scale)  # refused before the model runs
    try:
        batch = still.pixels[None]
        out = resize_frame(check_upscaled(upscaler.upscale(batch), batch, scale)[0], target)
    except KeyboardInterrupt:
        raise Cancelled(f"{src}: interrupted; nothing written") from None
    write_image_atomic(dst, out, overwrite=overwrite)
    notes = stale + [f"the frame shown at {format_time(still.at)} (its time {format_time(still.seconds)})"]
    if still.sar != 1:
        notes.append(f"pixels are not square (SAR {still.sar.numerator}:{still.sar.denominator}): written as stored")
    return Summary(src, dst, 1, time.perf_counter() - started, (w, h), target, notes)


# -- files and folders -----------------------------------------------------------------------------
def media_kind(path: Path) -> str | None:
    """'video', 'image' or None, from the extension."""
    ext = path.suffix.lower()
    if ext in VIDEO_EXTENSIONS:
        return "video"
    if ext in IMAGE_EXTENSIONS:
        return "image"
    return None


@dataclass
class FolderPlan:
    """A folder's inputs and outputs, and the subfolders left out (``recursive`` off)."""

    jobs: list[tuple[Path, Path]]
    skipped: list[Path]

    def skipped_note(self, src: Path) -> str | None:
        """``in: skipped 2 subfolders (use --recursive): a, b``; None if none was skipped."""
        n = len(self.skipped)
        if not n:
            return None
        names = ", ".join(p.name for p in self.skipped[:3]) + (", ..." if n > 3 else "")
        return f"{src}: skipped {n} subfolder{'s' * (n != 1)} (use --recursive): {names}"


def _left_alone(folder: Path, dst: Path) -> bool:
    """Folders never entered: hidden ones, work folders of segmented jobs, the output folder itself."""
    return folder.name.startswith(".") or folder.name.endswith(WORK_SUFFIX) or same_file(folder, dst)


def folder_plan(src: Path, dst: Path, *, recursive: bool = False) -> FolderPlan:
    """The videos and images of the folder ``src`` and their outputs under ``dst`` (sorted, each folder's
    files before its subfolders); with ``recursive``, those of its subfolders too, the tree mirrored."""
    src, dst = Path(src), Path(dst)
    if dst.exists() and not dst.is_dir():
        raise OutputError(f"{dst}: is a file; give an output folder for an input folder")
    if same_file(src, dst):
        raise OutputError(f"{dst}: output folder is the input folder; choose another one")
    jobs: list[tuple[Path, Path]] = []
    skipped: list[Path] = []
    seen: set[Path] = set()
    entered: set[tuple[int, int]] = set()  # (device, inode): a linked folder is entered once, no loops

    def visit(folder: Path, out_folder: Path) -> None:
        st = folder.stat()
        if (st.st_dev, st.st_ino) in entered:
            return
        entered.add((st.st_dev, st.st_ino))
        entries = sorted(folder.iterdir())
        for path in entries:
            if path.name.startswith(".") or not path.is_file():
                continue  # hidden files include our own temporary files
            kind = media_kind(path)
            if kind is None:
                continue
            out = out_folder / (video_output_name(path) if kind == "video" else path.name)
            if out in seen:
                out = out_folder / f"{path.stem}{path.suffix.replace('.', '_')}{out.suffix}"
            seen.add(out)
            jobs.append((path, out))
        for path in entries:
            if not path.is_dir() or _left_alone(path, dst):
                continue
            if recursive:
                visit(path, out_folder / path.name)
            else:
                skipped.append(path)

    visit(src, dst)
    if not jobs:
        where = "in this folder or its subfolders" if recursive else "in this folder"
        n = len(skipped)
        hint = f" ({n} subfolder{'s' * (n != 1)} not searched: use --recursive)" if n else ""
        raise InputError(f"{src}: no videos or images {where}{hint}")
    return FolderPlan(jobs, skipped)


_PLAN_OPTIONS = frozenset({"codec", "crf", "preset", "pix_fmt", "encoder_options", "overwrite"}) | {
    "outscale", "width", "height", "start", "duration"
}
_SIZE_OPTIONS = ("outscale", "width", "height")
_RUN_OPTIONS = frozenset({"batch", "progress", "max_memory"})
_SEGMENT_OPTIONS = frozenset({"segment_seconds", "workers", "shard", "merge", "restart", "identity"})


def upscale_path(
    src,
    dst,
    upscaler_factory: Callable[[], object],
    *,
    on_result: Callable[[FileResult], None] | None = None,
    at=None,
    recursive: bool = False,
    on_note: Callable[[str], None] | None = None,
    **options,
) -> list[FileResult]:
    """Upscale a file, or every video and image in a folder, loading the model only if needed.

    ``options`` are :func:`upscale_video`'s keyword arguments (images use only ``overwrite`` and the
    size: ``outscale``, ``width``, ``height``), and for
    videos in segments (see :mod:`vsr.video.segmented`): ``workers`` (processes, each building its own
    upscaler with ``upscaler_factory``, which must then be picklable; default: one per GPU the factory's
    ``gpus()`` reports, else one), ``shard`` (a :class:`~vsr.video.segmented.Shard`: make only its
    segments, do not join) and ``merge`` (only join). ``identity`` defaults to the factory's
    ``identity()`` if it has one.
    File: ``dst`` is the output file (or an existing folder to put it in); errors raise.
    Folder: ``dst`` is the output folder (created if missing); each output keeps its input's name
    (videos in containers we cannot write become ``.mkv``). Subfolders are left out unless
    ``recursive`` (then their tree is mirrored under ``dst``; hidden folders, work folders and ``dst``
    itself never count), and ``on_note`` is told which, in one line, before any work. Inputs whose
    output exists are skipped unless ``overwrite``. A failing file is reported (``on_result``, and in the
    returned list) and the rest go on; a model error or Ctrl-C stops everything.

    ``at`` (seconds): ``src`` is one video and ``dst`` an image: upscale the frame displayed then
    (:func:`upscale_still`; the size options apply). ``start``/``duration`` cut every video (see
    :func:`upscale_video`); a folder's images are made whole.
    """
    unknown = set(options) - _PLAN_OPTIONS - _RUN_OPTIONS - _SEGMENT_OPTIONS
    if unknown:
        raise TypeError(f"upscale_path() got unexpected options: {', '.join(sorted(unknown))}")
    src, dst = Path(src), Path(dst)
    overwrite = options.get("overwrite", False)
    size_options = {k: options[k] for k in _SIZE_OPTIONS if options.get(k) is not None}
    OutputSize.make(**size_options)  # nonsense fails once, not once per file of a folder
    parse_encoder_options(options.get("encoder_options"))
    plan_options = {k: v for k, v in options.items() if k in _PLAN_OPTIONS}
    run_options = {k: v for k, v in options.items() if k in _RUN_OPTIONS}
    segment_options = {k: v for k, v in options.items() if k in _SEGMENT_OPTIONS}
    one_video = segment_options.get("shard") is not None or segment_options.get("merge")
    if one_video and (src.is_dir() or media_kind(src) == "image"):
        raise InputError(f"{src}: --shard and --merge take one video file")
    trimmed = options.get("start") is not None or options.get("duration") is not None
    if at is not None:
        if src.is_dir():
            raise InputError(f"{src}: --at picks a frame of one video: give a video file, not a folder")
        given = [k for k in ("segment_seconds", "workers", "shard", "merge", "restart") if segment_options.get(k)]
        if trimmed or given:
            names = ["--" + k.replace("_", "-") for k in (["start/--duration"] if trimmed else []) + given]
            raise InputError(f"--at writes one frame as an image: it takes no {', '.join(names)}")
    elif trimmed and media_kind(src) == "image":
        raise InputError(f"{src}: --start/--duration cut a video; an image has one frame")
    upscaler = None

    def get_upscaler():
        nonlocal upscaler
        if upscaler is None:
            upscaler = upscaler_factory()
        return upscaler

    def run_one(path: Path, out: Path) -> Summary:
        if at is not None:
            plan_image(path, out, overwrite=overwrite, **size_options)
            if media_kind(path) == "image":
                raise InputError(f"{path}: is an image, which has one frame: drop --at")
            video, _ = check_time(path, at)  # before the model loads, as is a size past x4:
            w, h = video.width or 0, video.height or 0
            upright = (h, w) if round(video.rotation or 0) % 180 == 90 else (w, h)
            if w and h:
                OutputSize.make(**size_options).target(upright, MAX_OUTSCALE)
            return upscale_still(path, out, get_upscaler(), at=at, overwrite=overwrite, **size_options)
        if media_kind(path) == "video" and out.suffix.lower() in IMAGE_EXTENSIONS:
            raise OutputError(
                f"{out}: an image from a video takes --at TIME (the frame to upscale, e.g. --at 00:01:23), "
                "or give a video extension"
            )
        if media_kind(path) == "image" or (media_kind(path) is None and out.suffix.lower() in IMAGE_EXTENSIONS):
            plan_image(path, out, overwrite=overwrite, **size_options)
            return upscale_image(path, out, get_upscaler(), overwrite=overwrite, **size_options)
        job = plan_video(path, out, **plan_options)
        workers = segment_options.get("workers")
        segments = plan_segmented(
            job,
            identity=segment_options.get("identity") or (lambda: identity_of(upscaler_factory)),
            segment_seconds=segment_options.get("segment_seconds"),
            workers=workers,
            shard=segment_options.get("shard"),
            merge=bool(segment_options.get("merge")),
            restart=bool(segment_options.get("restart")),
        )
        if segments is None:
            return run_video(job, get_upscaler(), **run_options)
        summary = run_segmented(
            segments,
            get_upscaler,
            factory=upscaler_factory,
            workers=workers or default_workers(upscaler_factory),
            merge=bool(segment_options.get("merge")),
            **run_options,
        )
        # the model ran here, or only in worker processes (then the factory names it)
        summary.describe_upscaler(upscaler if upscaler is not None else upscaler_factory)
        return summary

    if not src.is_dir():
        if dst.is_dir() and not same_file(src, dst):
            if at is not None:
                dst = dst / f"{src.stem}.png"
            else:
                dst = dst / (video_output_name(src) if media_kind(src) == "video" else src.name)
        result = FileResult(src, dst, "done", run_one(src, dst))
        if on_result:
            on_result(result)
        return [result]

    plan = folder_plan(src, dst, recursive=recursive)
    make_output_folder(dst)
    note = plan.skipped_note(src)
    if note and on_note:
        on_note(note)
    results = []
    for path, out in plan.jobs:
        if out.exists() and not overwrite:
            result = FileResult(path, out, "skipped")
        else:
            try:
                if out.parent != dst:  # --recursive: the mirrored subfolder, under the output folder
                    out.parent.mkdir(parents=True, exist_ok=True)
                result = FileResult(path, out, "done", run_one(path, out))
            except (Cancelled, ModelError):
                raise
            except Exception as e:  # noqa: BLE001 - one bad file must not stop the batch; it is reported
                result = FileResult(path, out, "failed", error=e)
        results.append(result)
        if on_result:
            on_result(result)
    return results
