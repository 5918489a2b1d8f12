"""Where the engine's compiled call runs: the Keras backend (``tf``) or LiteRT (``litert``).

``auto`` stands for:

* a GPU visible to TensorFlow, or a Keras backend other than TensorFlow (JAX, PyTorch): ``tf``,
  the backend's own compiled call, without timing anything;
* bf16 / mixed precision: ``tf`` (XNNPACK on x86 computes in float32 only);
* otherwise, on the CPU, with ``ai-edge-litert`` installed: whichever of ``tf`` and ``litert`` is
  faster here, timed the first time a model meets a CPU and input size and remembered in the cache
  (see :mod:`vsr.runtime.auto`): LiteRT won on an AVX2 EPYC, TensorFlow on an AVX-512 Xeon;
* without ``ai-edge-litert``: ``tf``.

A network reaches the runtimes as a :class:`ModelSource`: its Keras model is built only when a
runtime needs it, and its LiteRT conversion is cached under the user's cache folder
(:mod:`vsr.runtime.cache`) when the source names its weights, so a run that finds both the converted
model and ``auto``'s choice in the cache never imports TensorFlow.
"""

import contextlib
import glob
import json
import os
import sys
import warnings

from vsr.errors import ModelError

RUNTIMES = ("auto", "tf", "litert")
#: The code that makes the converted graph: a cached conversion names their contents' sha256, so an
#: edit to any of them (a new rewrite in ``fold``, say) converts afresh rather than reuse a stale one.
GRAPH_CODE = ("models/srgan.py", "models/fold.py", "models/registry.py", "runtime/litert.py")


def check_runtime(runtime):
    """A ``ModelError`` listing the choices unless ``runtime`` is one of ``RUNTIMES``."""
    if runtime not in RUNTIMES:
        raise ModelError(f"unknown runtime '{runtime}': choose one of {', '.join(RUNTIMES)}")


def resolve_runtime(runtime="auto", precision="float32"):
    """What ``runtime`` stands for here: ``"tf"``, ``"litert"``, or ``"auto"`` when both can run the
    model and the faster one is to be timed (per input size; :class:`vsr.runtime.auto.AutoCall`)."""
    from vsr.runtime import litert

    check_runtime(runtime)
    tf_backend = keras_backend() == "tensorflow"
    if runtime == "litert":
        if precision != "float32":
            raise ModelError(f"--runtime litert runs float32 only: drop --precision {precision} "
                             "or pass --runtime tf")
        if not tf_backend:
            raise ModelError("--runtime litert needs the TensorFlow Keras backend: unset "
                             "KERAS_BACKEND or pass --runtime tf")
        return "litert"
    if runtime == "tf":
        return "tf"
    return "tf" if untimed_reason(precision) else "auto"


def untimed_reason(precision="float32"):
    """Why ``auto`` means TensorFlow here without timing anything (a short phrase: ``"a GPU"``), or
    None when it times TensorFlow against LiteRT."""
    from vsr.runtime import litert

    backend = keras_backend()
    if backend != "tensorflow":
        return f"the Keras backend is {backend}"
    if precision != "float32":
        return f"{precision} runs on TensorFlow only"
    if not litert.available():
        return "ai-edge-litert is not installed"
    if tf_sees_gpu():
        return "a GPU"
    return None


class ModelSource:
    """A network the runtimes can run, built only as far as the chosen runtime needs.

    Args:
        build: ``build()`` returns the Keras model (float RGB in [0, 1], (N, H, W, 3), to (N, sH, sW, 3));
            called at most once, when a runtime first needs it.
        key: a JSON-able dict naming the network exactly (weights sha256, architecture, precision,
            graph rewrites), so its LiteRT conversion and ``auto``'s timings can be cached; None
            (a model being trained, say) caches nothing.
        precision: ``"float32"`` or the low precision it computes in (``"bf16"``, ``"mixed"``).
    """

    def __init__(self, build, *, key=None, precision="float32"):
        self._build = build
        self._model = None
        self._flatbuffer = None
        self._flatbuffer_key = None
        self.key = key
        self.precision = precision

    @classmethod
    def of(cls, model):
        """``model`` itself when it is a source, else a source of that (built) Keras model."""
        if isinstance(model, ModelSource):
            return model
        source = cls(lambda: model, precision=precision_of(model))
        source._model = model
        return source

    @property
    def built(self):
        """Whether the Keras model exists yet."""
        return self._model is not None

    def keras(self):
        """The Keras model, built on the first call."""
        if self._model is None:
            self._model = self._build()
        return self._model

    def flatbuffer_key(self):
        """The cache key of the LiteRT conversion (None when the source has no key)."""
        if self.key is None:
            return None
        if self._flatbuffer_key is None:
            import vsr

            self._flatbuffer_key = {
                **self.key, "vsr": vsr.__version__, "code": _graph_code_digest(),
                "tensorflow": _version("tensorflow", "tensorflow-cpu", "tf-nightly"), "keras": _version("keras")}
        return self._flatbuffer_key

    def cached_flatbuffer(self):
        """The converted model from the cache, or None (no key, not cached, or the cache is off)."""
        from vsr.runtime import cache
        from vsr.startup import phase

        if self._flatbuffer is not None:
            return self._flatbuffer
        key = self.flatbuffer_key()
        path = None if key is None else cache.entry_path("litert", key, ".bin")
        if path is None or not path.exists():
            return None
        with phase("read the converted model from the cache"):
            self._flatbuffer = cache.read_blob("litert", key)
        return self._flatbuffer

    def flatbuffer(self):
        """The LiteRT flatbuffer of the model: from the cache, else converted (and cached)."""
        from vsr.runtime import cache
        from vsr.runtime.litert import tflite_bytes
        from vsr.startup import phase

        data = self.cached_flatbuffer()
        if data is not None:
            return data
        key = self.flatbuffer_key()
        with cache.locked("litert", key) if key else contextlib.nullcontext():
            data = self.cached_flatbuffer() if key else None  # another process may have made it meanwhile
            if data is None:
                model = self.keras()
                with phase("convert to LiteRT"):
                    data = tflite_bytes(model)
                if key:
                    cache.write_blob("litert", key, data)
        self._flatbuffer = data
        return data


def compiled_call(model, runtime="tf", threads=None):
    """``call(x)``: float32 (N, H, W, 3) numpy in, float32 numpy out.

    ``model`` is a Keras model or a :class:`ModelSource`; ``runtime`` a value of
    :func:`resolve_runtime` (``"auto"`` times the candidates per input size).
    """
    source = ModelSource.of(model)
    if runtime == "litert":
        from vsr.runtime.litert import LiteRTCall

        return LiteRTCall(threads=threads, flatbuffer=source.flatbuffer())
    if runtime == "auto":
        from vsr.runtime.auto import AutoCall

        return AutoCall(source, threads=threads)
    if runtime != "tf":
        raise ModelError(f"runtime '{runtime}' is not a concrete one: resolve it first "
                         "(vsr.runtime.resolve_runtime)")
    return keras_call(source.keras())


def keras_call(model):
    """One compiled inference function for any input shape, on the Keras backend.

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


def precision_of(model):
    """``"mixed"`` when any layer of the Keras ``model`` computes below float32, else ``"float32"``."""
    # A functional model keeps the default policy itself; its layers carry the mixed one.
    layers = getattr(model, "layers", [model])
    low = any(layer.dtype_policy.compute_dtype != "float32" for layer in layers)
    return "mixed" if low else "float32"


def keras_backend():
    """The Keras backend's name, read as Keras reads it when Keras is not imported yet (which would
    import TensorFlow): ``$KERAS_BACKEND``, else ``keras.json`` in ``$KERAS_HOME`` or ``~/.keras``."""
    if "keras" in sys.modules:
        import keras

        return keras.backend.backend()
    env = os.environ.get("KERAS_BACKEND")
    if env:
        return env
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        with open(os.path.join(home, "keras.json")) as f:
            return json.load(f).get("backend", "tensorflow")
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def tf_gpu_count():
    """GPUs TensorFlow sees (0 without TensorFlow). On Linux without a GPU device node it answers
    0 without importing TensorFlow (seconds of start-up)."""
    if "tensorflow" not in sys.modules and not _may_have_gpu():
        return 0
    try:
        import tensorflow as tf
    except ImportError:
        return 0
    return len(tf.config.list_physical_devices("GPU"))


def tf_sees_gpu():
    """True when TensorFlow (the Keras backend) has a GPU."""
    return keras_backend() == "tensorflow" and tf_gpu_count() > 0


def _may_have_gpu():
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    if not sys.platform.startswith("linux"):
        return True  # no cheap test elsewhere: ask TensorFlow
    # CUDA (/dev/nvidia0...), ROCm (/dev/kfd), WSL2's GPU (/dev/dxg): TensorFlow needs one of them.
    return bool(glob.glob("/dev/nvidia[0-9]*")) or os.path.exists("/dev/kfd") or os.path.exists("/dev/dxg")


def _graph_code_digest():
    import hashlib
    from pathlib import Path

    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for name in GRAPH_CODE:
        try:
            digest.update((package / name).read_bytes())
        except OSError:
            digest.update(b"?")
    return digest.hexdigest()[:16]


def _version(*names):
    from importlib import metadata

    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def cpu_has_bf16():
    """True when this CPU computes bfloat16 natively (AVX512-BF16 or AMX; read on Linux only)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def warn_if_emulated(precision):
    """Warn once when ``precision`` will run emulated (slower than float32) on this machine."""
    if precision in ("bf16", "mixed") and not tf_sees_gpu() and not cpu_has_bf16():
        warnings.warn(f"--precision {precision}: this CPU has no bfloat16 instructions "
                      "(AVX512-BF16/AMX), so it is emulated and slower than float32", stacklevel=3)
