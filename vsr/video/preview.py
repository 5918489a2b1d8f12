"""``vsr preview``: the same crop of one frame from several models, side by side and labelled.

So a user can pick a model by looking before an hours-long job: one frame (of a video, at a time
given as ``--at``, see :mod:`.still`; or an image), one crop of it in source pixels (``--crop
WxH+X+Y``, by default :data:`DEFAULT_CROP` pixels square at the centre, less where the frame is
smaller), and one panel per model: the crop as that model upscales it, beside the source crop
enlarged with nearest neighbour (every source pixel a visible block, no smoothing of its own).

Each model's panel equals the same region of the model upscaling the whole frame: the crop is upscaled
with a margin of context around it (the model's receptive radius, ``pad``), kept inside the frame as
the engine's tiles are, and the margin cut away afterwards (see :func:`vsr.engine.tile_windows`).

Labels are drawn with OpenCV (``cv2.putText``) in a bar above each panel. Images are RGB uint8 at
every boundary here.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError, ModelError, OutputError
from .formats import IMAGE_EXTENSIONS
from .image import read_image, write_image_atomic
from .output import check_input_file, check_output_folder, check_output_path
from .span import as_seconds, format_time
from .still import frame_at

#: Side of the default crop (source pixels): x4 it makes 512-pixel panels.
DEFAULT_CROP = 128
#: Context around the crop for upscalers that do not say how far they look (``pad``): bicubic's
#: kernel reaches 2 source pixels.
DEFAULT_CONTEXT = 8
#: Pixels between panels, and the colours of the background and the labels.
GAP = 4
BACKGROUND = (24, 24, 24)
TEXT = (255, 255, 255)
SOURCE_LABEL = "source (nearest x{scale})"

_CROP = re.compile(r"^(\d+)x(\d+)(?:\+(\d+)\+(\d+))?$")


@dataclass(frozen=True)
class Crop:
    """A rectangle in source pixels: ``width`` x ``height`` at (``x``, ``y``) from the top left."""

    width: int
    height: int
    x: int = 0
    y: int = 0

    def __str__(self) -> str:
        return f"{self.width}x{self.height}+{self.x}+{self.y}"


def parse_crop(text: str) -> tuple[int, int, int | None, int | None]:
    """``"128x96+40+20"`` -> (128, 96, 40, 20); ``"128x96"`` (centred) -> (128, 96, None, None).
    Raises ValueError with a one-line message otherwise."""
    m = _CROP.match(str(text).strip())
    if not m or int(m[1]) == 0 or int(m[2]) == 0:
        raise ValueError(f"--crop {text!r}: give WxH+X+Y in source pixels (e.g. 128x128+600+300), or WxH to centre it")
    return int(m[1]), int(m[2]), None if m[3] is None else int(m[3]), None if m[4] is None else int(m[4])


def fit_crop(asked, width: int, height: int, src) -> Crop:
    """The crop for a ``width`` x ``height`` frame: ``asked`` (from :func:`parse_crop`, or None for the
    default) checked to lie inside it; a centred one where no position is given."""
    if asked is None:
        w, h, x, y = min(DEFAULT_CROP, width), min(DEFAULT_CROP, height), None, None
    else:
        w, h, x, y = asked
    if w > width or h > height:
        raise InputError(f"{src}: --crop {w}x{h} is larger than the {width}x{height} frame; give a smaller one")
    if x is None:
        x, y = (width - w) // 2, (height - h) // 2
    if x + w > width or y + h > height:
        raise InputError(
            f"{src}: --crop {w}x{h}+{x}+{y} reaches outside the {width}x{height} frame "
            f"(X at most {width - w}, Y at most {height - h})"
        )
    return Crop(w, h, x, y)


def context_of(upscaler) -> int:
    """How many source pixels around a crop the upscaler needs to give the whole frame's output there."""
    pad = getattr(upscaler, "pad", None)
    return int(pad) if pad else DEFAULT_CONTEXT


def upscale_crop(upscaler, frame: np.ndarray, crop: Crop) -> np.ndarray:
    """``upscaler``'s output over ``crop`` of ``frame`` ((H, W, 3) uint8 RGB), as if it upscaled the
    whole frame: (s*h, s*w, 3) uint8 RGB."""
    height, width = frame.shape[:2]
    pad = context_of(upscaler)
    x0, y0 = max(0, crop.x - pad), max(0, crop.y - pad)
    x1, y1 = min(width, crop.x + crop.width + pad), min(height, crop.y + crop.height + pad)
    window = np.ascontiguousarray(frame[y0:y1, x0:x1])
    s = int(upscaler.scale)
    out = np.asarray(upscaler.upscale(window[None]))
    expected = (1, (y1 - y0) * s, (x1 - x0) * s, 3)
    if out.shape != expected or out.dtype != np.uint8:
        raise ModelError(
            f"the upscaler returned {out.dtype} {out.shape} for a {window.shape} crop; expected uint8 {expected}"
        )
    top, left = (crop.y - y0) * s, (crop.x - x0) * s
    return out[0, top : top + crop.height * s, left : left + crop.width * s]


def enlarge_nearest(pixels: np.ndarray, scale: int) -> np.ndarray:
    return np.repeat(np.repeat(pixels, scale, axis=0), scale, axis=1)


@dataclass(frozen=True)
class Panel:
    """Where one labelled panel lies in the preview image (pixels): its picture and its label bar above."""

    label: str
    x: int
    y: int
    width: int
    height: int
    label_height: int


def _font_scale(labels: list[str], width: int) -> tuple[float, int]:
    """One font scale for every label (the largest, up to 0.6, that fits the narrowest panel) and the
    label bar's height."""
    font = cv2.FONT_HERSHEY_SIMPLEX
    scale = 0.6
    for label in labels:
        (w, _), _ = cv2.getTextSize(label, font, 0.6, 1)
        scale = min(scale, 0.6 * max(1, width - 8) / max(1, w))
    scale = max(scale, 0.3)
    (_, h), base = cv2.getTextSize("Ag", font, scale, 1)
    return scale, h + base + 10


def compose(panels: list[tuple[str, np.ndarray]]) -> tuple[np.ndarray, list[Panel]]:
    """Put equally sized (h, w, 3) uint8 RGB pictures side by side, each under a bar with its label.

    Returns the image ((bar + h), n*w + (n-1)*GAP, 3) uint8 RGB and where each panel lies."""
    h, w = panels[0][1].shape[:2]
    scale, bar = _font_scale([label for label, _ in panels], w)
    n = len(panels)
    canvas = np.empty((bar + h, n * w + (n - 1) * GAP, 3), np.uint8)
    canvas[:] = BACKGROUND
    layout = []
    for i, (label, picture) in enumerate(panels):
        x = i * (w + GAP)
        canvas[bar:, x : x + w] = picture
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        org = (x + 4, (bar + th) // 2)
        cv2.putText(canvas, label, org, cv2.FONT_HERSHEY_SIMPLEX, scale, TEXT, 1, cv2.LINE_AA)
        layout.append(Panel(label, x, bar, w, h, bar))
    return canvas, layout


@dataclass
class PreviewSummary:
    """What :func:`make_preview` wrote. ``seconds`` is wall time; ``frame_time`` None for an image."""

    source: Path
    output: Path
    crop: Crop
    panels: list[Panel]
    size: tuple[int, int]  # of the preview image (width, height)
    frame_time: Fraction | None
    at: Fraction | None
    seconds: float
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        what = (
            f"the frame shown at {format_time(self.at)} (its time {format_time(self.frame_time)})"
            if self.frame_time is not None
            else "the image"
        )
        labels = ", ".join(p.label for p in self.panels)
        line = (
            f"{self.output}: {self.size[0]}x{self.size[1]}, crop {self.crop} of {what}: {labels} "
            f"in {self.seconds:.1f} s"
        )
        return line + "".join(f"; {n}" for n in self.notes)


@dataclass(frozen=True)
class PreviewJob:
    """A preview that passed every check that needs no model: ready to run."""

    src: Path
    dst: Path
    at: Fraction | None  # None: an image
    crop: tuple | None  # as parse_crop returns it; None: the default
    overwrite: bool


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def plan_preview(src, dst, *, at=None, crop=None, overwrite: bool = False) -> PreviewJob:
    """Check paths, the crop's syntax and the time (against the video's length); creates nothing.

    ``at``: seconds (default: the middle of the video; an image takes none). ``crop``: ``"WxH+X+Y"``,
    ``"WxH"`` or None. Raises a :class:`~vsr.errors.VsrError`."""
    src, dst = Path(src), Path(dst)
    check_input_file(src)
    check_output_path(src, dst, overwrite=overwrite)
    if not is_image(dst):
        raise OutputError(
            f"{dst}: a preview is an image: use one of {', '.join(sorted(IMAGE_EXTENSIONS))}"
        )
    try:
        asked = None if crop is None else parse_crop(crop)
    except ValueError as err:
        raise InputError(str(err)) from None
    if is_image(src):
        if at is not None:
            raise InputError(f"{src}: is an image, which has one frame: drop --at")
    else:
        from .probe import probe

        info = probe(src)
        if info.video is None:
            raise InputError(f"{src}: has no video stream; give a video or an image")
        at = as_seconds(info.duration or 0) / 2 if at is None else as_seconds(at)
        if info.duration is not None and at >= as_seconds(info.duration):
            raise InputError(
                f"{src}: --at {format_time(at)} is beyond the end of the video ({format_time(info.duration)})"
            )
    check_output_folder(dst)
    return PreviewJob(src, dst, at, asked, overwrite)


def run_preview(job: PreviewJob, upscalers: dict) -> PreviewSummary:
    """Make the preview of a planned job with ``upscalers`` (``{label: upscaler}``, shown in that order
    after the source panel) and write it atomically."""
    if not upscalers:
        raise ModelError("--models is empty: name at least one model (see `vsr models`)")
    scales = {int(u.scale) for u in upscalers.values()}
    if len(scales) > 1:
        listed = ", ".join(f"x{s}" for s in sorted(scales))
        raise ModelError(f"--models mixes scales ({listed}): preview models of one scale together")
    scale = scales.pop()
    started = time.perf_counter()
    notes = []
    if job.at is None:
        frame, frame_time = read_image(job.src), None
    else:
        still = frame_at(job.src, job.at)
        frame, frame_time = still.pixels, still.seconds
        if still.sar != 1:
            notes.append(f"pixels are not square (SAR {still.sar.numerator}:{still.sar.denominator}): shown as stored")
    height, width = frame.shape[:2]
    crop = fit_crop(job.crop, width, height, job.src)
    source = frame[crop.y : crop.y + crop.height, crop.x : crop.x + crop.width]
    panels = [(SOURCE_LABEL.format(scale=scale), enlarge_nearest(source, scale))]
    for label, upscaler in upscalers.items():
        panels.append((label, upscale_crop(upscaler, frame, crop)))
    image, layout = compose(panels)
    write_image_atomic(job.dst, image, overwrite=job.overwrite)
    return PreviewSummary(
        job.src, job.dst, crop, layout, (image.shape[1], image.shape[0]), frame_time, job.at,
        time.perf_counter() - started, notes,
    )


def make_preview(src, dst, upscalers: dict, *, at=None, crop=None, overwrite: bool = False) -> PreviewSummary:
    """Plan and run a preview (see the module docstring, :func:`plan_preview`, :func:`run_preview`)."""
    return run_preview(plan_preview(src, dst, at=at, crop=crop, overwrite=overwrite), upscalers)


def check_model_weights(entries: list[str]) -> None:
    """Refuse, before any work, a named model whose weights this vsr lacks: one line naming it and
    what to do. ``LABEL=FILE`` entries are checked when loaded."""
    from ..errors import WeightsError
    from ..models.registry import get_spec
    from ..models.weights import bundled_weights, read_manifest

    manifest = read_manifest()
    for entry in entries:
        if "=" in entry:
            continue
        name = entry.strip()
        spec = get_spec(name)
        if spec.arch is None:
            continue
        if name not in manifest:
            raise WeightsError(
                f"model '{name}' has no weights in this vsr yet: drop it from --models, or give a generator "
                f"file as {name}=FILE (e.g. a `vsr train` export: runs/NAME/export/NAME.weights.h5)"
            )
        bundled_weights(name)  # missing or corrupt file: its own message says how to get it
