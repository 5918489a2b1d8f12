"""The ``bicubic`` model: MATLAB-compatible bicubic interpolation, the field's baseline (no weights).

Uses ``vsr.quality.imresize`` so the baseline is the same function that makes BI inputs; a
"bicubic" score therefore means MATLAB bicubic down x1/scale then MATLAB bicubic up x scale.
"""

import numpy as np

from vsr.quality.resize import imresize

#: Float64 temporaries of one imresize pass (see ``vsr.quality.resize._SLAB_ELEMENTS``: 64 MB each).
_SLAB_WORK = 5 * (64 << 20)


class BicubicUpscaler:
    """Upscaler interface of ``vsr.engine.Upscaler`` without a network.

    ``upscale`` takes uint8 RGB (N, H, W, 3) or one frame (H, W, 3) and returns uint8 RGB
    (N, scale*H, scale*W, 3) (or one frame), rounded and clipped as MATLAB's ``imresize`` does.
    """

    name = "bicubic"
    runtime = "numpy"

    def __init__(self, scale=4):
        self.scale = int(scale)

    def working_bytes(self, frames, height, width):
        """Bytes :meth:`upscale` needs beyond its uint8 input and output: the first pass's uint8
        result (scale*H x W) and the float64 slabs ``imresize`` accumulates in (at most 64 MB each:
        the accumulator, a product term, the slab read and its rounding; measured with tracemalloc)."""
        return frames * self.scale * height * width * 3 + _SLAB_WORK

    def upscale(self, frames):
        frames = np.asarray(frames)
        if frames.dtype != np.uint8 or frames.ndim not in (3, 4) or frames.shape[-1] != 3:
            raise ValueError(f"expected uint8 frames (N, H, W, 3), got {frames.dtype} {frames.shape}")
        return imresize(frames, self.scale)

    def __repr__(self):
        return f"BicubicUpscaler(scale={self.scale})"
