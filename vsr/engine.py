"""The inference engine: uint8 RGB frames in, uint8 RGB frames x scale out.

Nothing else in vsr touches tensors at inference time. The engine batches frames, cuts frames
that are too large into overlapping tiles of one fixed shape (so every tile runs through the
same compiled call), and converts to and from uint8.
"""

import numpy as np

from vsr.errors import ModelError

#: Frames with more input pixels than this are tiled by default (about 640x640): the full
#: generator's activations at 4x take ~1 KB per input pixel per layer in float32.
AUTO_TILE_PIXELS = 640 * 640
AUTO_TILE_SIZE = 256


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
        model: Keras model mapping float RGB in [0, 1], (N, H, W, 3), to (N, sH, sW, 3).
        scale: the model's upscaling factor.
        batch: frames (or tiles) per model call.
        tile: input tile size in pixels; ``None`` = automatic (tile only frames larger than
            ``AUTO_TILE_PIXELS``), ``0`` = never tile.
        pad: context each side of a tile, in input pixels; at least the receptive radius.
        name: shown in messages and reports.
    """

    def __init__(self, model, scale, *, batch=4, tile=None, pad=40, name="model"):
        if batch < 1:
            raise ModelError(f"--batch must be at least 1, got {batch}")
        if tile is not None and tile < 0:
            raise ModelError(f"--tile must be 0 (off) or a positive size, got {tile}")
        self.model = model
        self.scale = int(scale)
        self.batch = int(batch)
        self.tile = tile
        self.pad = int(pad)
        self.name = name
        self._call = _compiled_call(model)

    def tile_size_for(self, height, width):
        """The tile size used for frames of this size, or 0 when they run whole."""
        if self.tile is None:
            return AUTO_TILE_SIZE if height * width > AUTO_TILE_PIXELS else 0
        return self.tile if self.tile and (height > self.tile or width > self.tile) else 0

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
            for i in range(0, n, self.batch):
                out[i:i + self.batch] = self._run(frames[i:i + self.batch])
        return out[0] if single else out

    def _run(self, batch):
        x = batch.astype(np.float32) * np.float32(1 / 255)
        y = np.asarray(self._call(x), dtype=np.float32)
        return np.clip(y * 255.0 + 0.5, 0, 255).astype(np.uint8)

    def _upscale_tiled(self, frames, tile):
        n, h, w, _ = frames.shape
        s = self.scale
        wh, rows = tile_windows(h, tile, self.pad)
        ww, cols = tile_windows(w, tile, self.pad)
        jobs = [(f, r, c) for f in range(n) for r in rows for c in cols]
        out = np.empty((n, h * s, w * s, 3), np.uint8)
        for i in range(0, len(jobs), self.batch):
            chunk = jobs[i:i + self.batch]
            windows = np.stack([frames[f, r[2]:r[2] + wh, c[2]:c[2] + ww] for f, r, c in chunk])
            sr = self._run(windows)
            for k, (f, (y0, y1, wy), (x0, x1, wx)) in enumerate(chunk):
                out[f, y0 * s:y1 * s, x0 * s:x1 * s] = \
                    sr[k, (y0 - wy) * s:(y1 - wy) * s, (x0 - wx) * s:(x1 - wx) * s]
        return out


def _compiled_call(model):
    """One compiled inference function for any input shape.

    TensorFlow: a ``tf.function`` with a fully dynamic signature traces once for every size.
    Other Keras backends (JAX, torch): ``predict_on_batch`` compiles per input shape, which a
    video hits once.
    """
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        spec = tf.TensorSpec([None, None, None, 3], tf.float32)
        fn = tf.function(lambda x: model(x, training=False), input_signature=[spec],
                         reduce_retracing=True)
        return lambda x: fn(x).numpy()
    return model.predict_on_batch

