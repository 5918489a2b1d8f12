"""Export a named model for serving: a TensorFlow SavedModel or a TFLite (LiteRT) flatbuffer.

Both take and return what ``vsr upscale`` does: uint8 RGB frames (N, H, W, 3), any H and W, in;
uint8 RGB (N, 4H, 4W, 3) out, rounded the engine's way (``floor(255 * y + 0.5)`` after clipping).

* ``savedmodel``: a folder with a ``serving_default`` signature, input ``frames``, output ``sr``,
  what TensorFlow Serving and cloud prediction services load. Its REST body is
  ``{"instances": [frame, ...]}`` (each frame an H x W x 3 nested list of 0..255).
* ``tflite``: one ``.tflite`` file with frozen weights and BatchNorm folded, so LiteRT's XNNPACK
  delegate runs every convolution; its input shape is dynamic (resize it before allocating).

``float16`` stores the TFLite weights as float16 (half the file; GPU delegates compute in float16,
CPUs dequantise once at load) and makes the SavedModel compute in float16 (for GPU serving).
"""

import os
import shutil
import tempfile
from pathlib import Path

from vsr.errors import ModelError, OutputError

FORMATS = ("savedmodel", "tflite")
PRECISIONS = ("float32", "float16")


def export_model(name, fmt, out, precision="float32", weights=None, overwrite=False):
    """Write model ``name`` to ``out`` in format ``fmt``.

    Args:
        name: a model of ``vsr.models.registry.MODELS`` with a network.
        fmt: ``"savedmodel"`` (``out`` is a folder) or ``"tflite"`` (``out`` is a file).
        out: destination path; written under a temporary name and renamed when complete.
        precision: ``"float32"`` or ``"float16"``.
        weights: a ``.weights.h5`` file instead of the bundled weights.
        overwrite: replace an existing ``out``.
    Returns:
        ``out`` as a ``Path``.
    """
    from vsr.models import registry

    if fmt not in FORMATS:
        raise ModelError(f"unknown export format '{fmt}': choose one of {', '.join(FORMATS)}")
    if precision not in PRECISIONS:
        raise ModelError(f"unknown export precision '{precision}': choose one of {', '.join(PRECISIONS)}")
    if registry.get_spec(name).arch is None:
        raise ModelError(f"model '{name}' has no network to export: pick one of "
                         f"{', '.join(n for n, s in registry.MODELS.items() if s.arch)}")
    out = Path(out)
    if out.exists() and not overwrite:
        raise OutputError(f"{out} exists: remove it, pass --overwrite or choose another path")
    if not out.parent.is_dir():
        raise OutputError(f"folder {out.parent} does not exist: create it first")
    _require_tensorflow_backend()
    path, arch = registry.generator_weights(name, weights)
    dtype = "mixed_float16" if precision == "float16" and fmt == "savedmodel" else None
    model = registry.load_generator(path, arch, dtype=dtype)
    if fmt == "savedmodel":
        _write_atomically(out, lambda tmp: _save_savedmodel(model, tmp))
    else:
        from vsr.runtime.litert import tflite_bytes

        data = tflite_bytes(uint8_frames_function(model), input_dtype="uint8",
                            float16=precision == "float16")
        _write_atomically(out, lambda tmp: Path(tmp).write_bytes(data))
    return out


def uint8_frames_function(model):
    """``f(frames)``: uint8 (N, H, W, 3) tensor -> uint8 (N, sH, sW, 3), the engine's arithmetic."""
    import tensorflow as tf

    def upscale_frames(frames):
        x = tf.cast(frames, tf.float32) * tf.constant(1 / 255, tf.float32)
        y = tf.cast(model(x, training=False), tf.float32)
        return tf.cast(tf.clip_by_value(y * 255.0 + 0.5, 0.0, 255.0), tf.uint8)

    return upscale_frames


def _save_savedmodel(model, folder):
    import keras
    import tensorflow as tf

    upscale_frames = uint8_frames_function(model)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", lambda frames: {"sr": upscale_frames(frames)},
                         input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="frames")])
    archive.write_out(str(folder), verbose=False)


def _require_tensorflow_backend():
    import keras

    if keras.backend.backend() != "tensorflow":
        raise ModelError("vsr export needs the TensorFlow Keras backend: unset KERAS_BACKEND")


def _write_atomically(out, write):
    tmp = tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent)
    target = Path(tmp) / out.name
    try:
        write(target)
        if out.is_dir():
            shutil.rmtree(out)
        elif out.exists():
            out.unlink()
        os.replace(target, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
