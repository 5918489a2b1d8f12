"""The output's size: x4, or x4 then a high-quality downscale (``--outscale``, ``--width``, ``--height``).

Real-ESRGAN's ``--outscale`` is the factor over the input (2: twice the input's width and height),
reached by downscaling the model's x4 output; ``--width``/``--height`` name a screen size (one of them:
the other follows the aspect ratio of the pixel grid; both: exactly that, aspect ratio or not). The
pixel aspect ratio tag is kept, so an anamorphic source stays anamorphic. vsr never enlarges past
the model's own scale: a size that would need it is refused with the largest one possible.

The downscale is OpenCV's ``INTER_AREA`` (each output pixel the area-weighted mean of the x4 pixels
it covers: no aliasing, no ringing), done frame by frame on the writer's thread, so it overlaps the
model and the encoder pipe carries only output-sized frames; memory stays bounded by the same queues.
Images use the same function, so a still and a video frame come out alike. YCbCr 4:2:0 output needs
even sizes: derived sizes are rounded to the pixel format's multiple, and an explicit one that is not
is refused with the two nearest that are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import OutputError

#: The largest --outscale: the scale of vsr's models.
MAX_OUTSCALE = 4


@dataclass(frozen=True)
class OutputSize:
    """What to make of the upscaled frames; all None: keep the model's size. Build with :meth:`make`."""

    outscale: float | None = None
    width: int | None = None
    height: int | None = None

    @classmethod
    def make(cls, outscale=None, width=None, height=None) -> OutputSize:
        """Check the user's values (a one-line :class:`OutputError` for nonsense) and return them."""
        if outscale is not None:
            if width is not None or height is not None:
                raise OutputError("--outscale and --width/--height are alternatives: give one of them")
            try:
                outscale = float(outscale)
            except (TypeError, ValueError):
                raise OutputError(f"--outscale takes a number in (0, {MAX_OUTSCALE}], not {outscale!r}") from None
            if not math.isfinite(outscale) or not 0 < outscale <= MAX_OUTSCALE:
                raise OutputError(f"--outscale takes a number in (0, {MAX_OUTSCALE}], not {outscale:g}")
        for flag, value in (("--width", width), ("--height", height)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
                raise OutputError(f"{flag} takes a positive number of pixels, not {value!r}")
        return cls(outscale, width, height)

    @property
    def is_set(self) -> bool:
        return (self.outscale, self.width, self.height) != (None, None, None) and self.outscale != MAX_OUTSCALE

    def identity(self) -> dict | None:
        """For a work folder's manifest: None when the output keeps the model's size."""
        if not self.is_set:
            return None
        return {"outscale": self.outscale, "width": self.width, "height": self.height}

    def target(
        self, size: tuple[int, int], scale: int, step: tuple[int, int] = (1, 1), pix_fmt: str = ""
    ) -> tuple[int, int]:
        """The output (width, height) for an input of ``size`` upscaled x``scale``.

        ``step``: the multiple each side must be (2 for 4:2:0, see :func:`vsr.video.formats.size_step`),
        ``pix_fmt`` names it in messages. Raises :class:`OutputError` for a size past x``scale``.
        """
        w, h = size
        full = (w * scale, h * scale)
        if not self.is_set:
            return full
        sx, sy = step
        for flag, value, s in (("--width", self.width, sx), ("--height", self.height, sy)):
            if value is not None and value % s:
                low, high = value - value % s, value - value % s + s
                raise OutputError(f"{flag} {value}: {pix_fmt or 'this pixel format'} needs a multiple of {s}; "
                                  f"use {low or high} or {high}")
        if self.outscale is not None:
            out = (_round_to(w * self.outscale, sx), _round_to(h * self.outscale, sy))
        elif self.width is not None and self.height is not None:
            out = (self.width, self.height)
        elif self.width is not None:
            out = (self.width, _round_to(h * self.width / w, sy))
        else:
            out = (_round_to(w * self.height / h, sx), self.height)
        if out[0] > full[0] or out[1] > full[1]:
            asked = f"--outscale {self.outscale:g}" if self.outscale is not None else (
                " ".join(f"{flag} {v}" for flag, v in (("--width", self.width), ("--height", self.height)) if v)
            )
            raise OutputError(
                f"{asked} would make {out[0]}x{out[1]} from a {w}x{h} input: vsr upscales at most x{scale} "
                f"({full[0]}x{full[1]}); ask for that or less"
            )
        return out


def _round_to(value: float, step: int) -> int:
    """Nearest multiple of ``step``, at least ``step``."""
    return max(step, round(value / step) * step)


def resize_frame(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W, C) uint8 -> (height, width, C) uint8 for ``size`` = (width, height), by area averaging."""
    if (frame.shape[1], frame.shape[0]) == tuple(size):
        return frame
    return cv2.resize(frame, tuple(size), interpolation=cv2.INTER_AREA)
