"""The inference engine: uint8 RGB frames in, uint8 RGB frames x scale out.

Nothing else in vsr touches tensors at inference time. The engine batches frames, cuts frames
that are too large into overlapping tiles of one fixed shape (so every tile runs through the
same compiled call), and converts to and from uint8.
"""

import numpy as np

from vsr.errors import ModelError
from vsr.runtime import ModelSource, compiled_call, resolve_runtime
from vsr.startup import phase

#: Input pixels one model call may hold (about 640x640): frames larger than this are tiled by
#: default, and fewer frames or tiles go into one call when a batch would exceed it. The full
#: generator takes ~10 KB per input pixel (LiteRT, measured; 256 channels at 2x at its widest),
#: so this bounds one call to about 4 GB.
AUTO_TILE_PIXELS = 640 * 640
#: Automatic tile (core) size, an upper bound: cores are balanced so that no tile is a sliver.
#: benchmarks/engine_speed.py --sweep: LiteRT takes 27 us per window pixel up to ~200x200 windows,
#: 32 at 336, 36 at 448, 40 at 600 (the activations outgrow the L3 cache), so on 1080p balanced
#: cores from 288 to 560 (windows 370-640) all cost within 3%; 320 keeps a window near 1.4 GB.
#: (256 unbalanced, the old choice, cost 1.3x as much on 1080p.)
AUTO_TILE_SIZE = 320
#: Working memory of one model call per input pixel it holds, beyond the call's input and output:
#: the full generator's activations (~10 KB, LiteRT, measured; see AUTO_TILE_PIXELS). An
#: overestimate for smaller configurations, which is the safe side for a memory budget.
WORK_BYTES_PER_PIXEL = 10_000
#: The smallest tile (core) :meth:`Upscaler.limit_memory` goes down to; below it the window is mostly
#: overlap and the job is better refused.
MIN_TILE = 32


def tile_windows(length, tile, pad):
    """Split ``[0, length)`` into cores of ``tile`` and windows of one fixed size.

    Returns ``(window, [(core_start, core_end, window_start), ...])`` where every window is
    ``[window_start, window_start + window)``, contains its core, and extends at least ``pad``
    beyond it on each side unless it meets the frame's edge, where the network sees the same
    zero padding as on the whole frame. Clamping windows inside the frame (rather than padding
    past it) is what makes tiled output equal untiled output.
    """
    window = min(length, tile + 2 * pad)
    spans = []
    for core_start in range(0, length, tile):
        core_end = min(core_start + tile, length)
        start = min(max(core_start - pad, 0), length - window)
        spans.append((core_start, core_end, start))
    return window, spans


class Upscaler:
    """Runs a Keras super-resolution model over uint8 RGB frames.

    Args:
        model: Keras model mapping float RGB in [0, 1], (N, H, W, 3), to (N, sH, sW, 3), or a
            ``vsr.runtime.ModelSource`` of one (built only if the runtime needs it; ``load_model``
            passes one, so a cached LiteRT model runs without TensorFlow).
        scale: the model's upscaling factor.
        batch: frames (or tiles) per model call.
        tile: input tile size in pixels; ``None`` = automatic (tile only frames larger than
            ``AUTO_TILE_PIXELS``), ``0`` = never tile.
        pad: context each side of a tile, in input pixels; at least the receptive radius.
        name: shown in messages and reports.
        runtime: where the model runs: ``"tf"`` (the Keras backend's compiled call; it sees later
            weight updates, as validation during training needs), ``"litert"`` (LiteRT/XNNPACK on
            the CPU; a copy of the weights frozen here) or ``"auto"`` (see ``vsr.runtime``; on the
            CPU it times both per input size, ``vsr.runtime.auto``).
    """

    def __init__(self, model, scale, *, batch=4, tile=None, pad=40, name="model", runtime="tf"):
        if batch < 1:
            raise ModelError(f"--batch must be at least 1, got {batch}")
        if tile is not None and tile < 0:
            raise ModelError(f"--tile must be 0 (off) or a positive size, got {tile}")
        self._source = ModelSource.of(model)
        self.scale = int(scale)
        self.batch = int(batch)
        self.tile = tile
        self.pad = int(pad)
        self.name = name
        #: "tf", "litert", or "auto" (timed per input size: ``runtime_label`` says what ran).
        self.runtime = resolve_runtime(runtime, self._source.precision)
        self._call = compiled_call(self._source, self.runtime)
        self._called = False

    @property
    def model(self):
        """The Keras model (built now if the runtime did not need it)."""
        return self._source.keras()

    @property
    def runtime_label(self):
        """What runs the model, for messages: ``"litert"``, ``"tf"``, ``"litert (auto)"``, or ``"auto"``
        before ``auto`` has timed anything."""
        if self.runtime != "auto":
            return self.runtime
        chosen = self._call.chosen()
        return f"{'/'.join(chosen)} (auto)" if chosen else "auto"

    def choose_runtime(self, height, width):
        """For ``auto``: the ``vsr.runtime.auto.Choice`` for frames of this size (timed now unless
        known or cached); None for a fixed runtime."""
        if self.runtime != "auto":
            return None
        return self._call.choose(*self.call_shape(height, width))

    def call_shape(self, height, width):
        """``(height, width)`` of one model call's item for frames of this size (a tile's window when tiled)."""
        tile = self.tile_size_for(height, width)
        if not tile:
            return height, width
        return (tile_windows(height, _balanced(height, tile), self.pad)[0],
                tile_windows(width, _balanced(width, tile), self.pad)[0])

    def tile_size_for(self, height, width):
        """The largest tile (core) size used for frames of this size, or 0 when they run whole."""
        if self.tile is None:
            return AUTO_TILE_SIZE if height * width > AUTO_TILE_PIXELS else 0
        return self.tile if self.tile and (height > self.tile or width > self.tile) else 0

    def _per_call(self, pixels):
        # Batching does not change the speed per pixel on the CPU; it only adds memory.
        return max(1, min(self.batch, AUTO_TILE_PIXELS // max(pixels, 1)))

    def _geometry(self, height, width):
        """``(window pixels, windows per frame)`` of one model call's item for frames of this size."""
        tile = self.tile_size_for(height, width)
        if not tile:
            return height * width, 1
        wh, rows = tile_windows(height, _balanced(height, tile), self.pad)
        ww, cols = tile_windows(width, _balanced(width, tile), self.pad)
        return wh * ww, len(rows) * len(cols)

    def working_bytes(self, frames, height, width):
        """Bytes :meth:`upscale` needs for ``frames`` frames of ``height`` x ``width`` beyond its uint8
        input and output arrays: per model call, the float32 input, the activations
        (``WORK_BYTES_PER_PIXEL``), the float32 output and its uint8 copy."""
        pixels, per_frame = self._geometry(height, width)
        step = min(self._per_call(pixels), max(1, frames * per_frame))
        s2 = self.scale * self.scale
        per_item = pixels * (3 + 12 + WORK_BYTES_PER_PIXEL + s2 * (12 + 3))
        return step * per_item

    def describe_tiling(self, height, width):
        """How frames of this size are cut, for messages: ``"whole frames, 4 per call"``, ``"tiles of 320, 1 per call"``."""
        tile = self.tile_size_for(height, width)
        pixels, _ = self._geometry(height, width)
        what = f"tiles of {tile}" if tile else "whole frames"
        return f"{what}, {self._per_call(pixels)} per call"

    def limit_memory(self, budget, height, width):
        """Make :meth:`working_bytes` for one frame fit ``budget`` bytes: fewer items per call, then
        smaller tiles (tiled output equals untiled output, so pixels do not change). Returns whether
        it fits."""
        if self.working_bytes(1, height, width) <= budget:
            return True
        self.batch = 1
        tile = self.tile_size_for(height, width) or max(height, width)
        while self.working_bytes(1, height, width) > budget:
            tile = int(tile * 0.75)
            if tile < MIN_TILE:
                return False
            self.tile = tile
        return True

    def upscale(self, frames):
        """Super-resolve frames.

        Args:
            frames: uint8 RGB, shape (N, H, W, 3), or one frame (H, W, 3).
        Returns:
            uint8 RGB, shape (N, scale*H, scale*W, 3) (or (scale*H, scale*W, 3) for one frame).
        """
        frames = np.asarray(frames)
        single = frames.ndim == 3
        if single:
            frames = frames[None]
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"expected uint8 frames (N, H, W, 3), got {frames.dtype} {frames.shape}")
        n, h, w, _ = frames.shape
        tile = self.tile_size_for(h, w)
        if tile:
            out = self._upscale_tiled(frames, tile)
        else:
            out = np.empty((n, h * self.scale, w * self.scale, 3), np.uint8)
            step = self._per_call(h * w)
            for i in range(0, n, step):
                out[i:i + step] = self._run(frames[i:i + step])
        return out[0] if single else out

    def _run(self, batch):
        x = batch.astype(np.float32)
        x *= np.float32(1 / 255)
        if self._called:
            y = np.asarray(self._call(x), dtype=np.float32)
        else:
            if self.runtime == "auto":
                self._call.choose(x.shape[1], x.shape[2])  # its own phases: not the first call's time
            with phase(f"first model call ({x.shape[2]}x{x.shape[1]} x{x.shape[0]})"):
                y = np.asarray(self._call(x), dtype=np.float32)
            self._called = True
        del x
        if not y.flags.writeable:
            y = y.copy()
        # In place: one float32 copy of the output, not three (x4 output is 16x the input's pixels).
        y *= np.float32(255.0)
        y += np.float32(0.5)
        np.clip(y, 0, 255, out=y)
        return y.astype(np.uint8)

    def _upscale_tiled(self, frames, tile):
        n, h, w, _ = frames.shape
        s = self.scale
        wh, rows = tile_windows(h, _balanced(h, tile), self.pad)
        ww, cols = tile_windows(w, _balanced(w, tile), self.pad)
        jobs = [(f, r, c) for f in range(n) for r in rows for c in cols]
        out = np.empty((n, h * s, w * s, 3), np.uint8)
        step = self._per_call(wh * ww)
        for i in range(0, len(jobs), step):
            chunk = jobs[i:i + step]
            windows = np.stack([frames[f, r[2]:r[2] + wh, c[2]:c[2] + ww] for f, r, c in chunk])
            sr = self._run(windows)
            for k, (f, (y0, y1, wy), (x0, x1, wx)) in enumerate(chunk):
                out[f, y0 * s:y1 * s, x0 * s:x1 * s] = \
                    sr[k, (y0 - wy) * s:(y1 - wy) * s, (x0 - wx) * s:(x1 - wx) * s]
        return out


def _balanced(length, tile):
    """The smallest core size that needs as few tiles as ``tile`` does: 1080 at 320 -> 270 (4 tiles),
    not 320 x 3 + 120, so no window is mostly overlap."""
    return -(-length // -(-length // tile))
