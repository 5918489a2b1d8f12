"""Where the engine's compiled call runs: the Keras backend (``tf``) or LiteRT (``litert``).

``auto`` picks, per platform, what ``benchmarks/engine_speed.py`` measured fastest:

* a GPU visible to TensorFlow, or a Keras backend other than TensorFlow (JAX, PyTorch): ``tf``,
  the backend's own compiled call;
* bf16 / mixed precision: ``tf`` (XNNPACK on x86 computes in float32 only);
* otherwise, on the CPU: ``litert`` (XNNPACK) when ``ai-edge-litert`` is installed, else ``tf``.
"""

import warnings

from vsr.errors import ModelError

RUNTIMES = ("auto", "tf", "litert")


def check_runtime(runtime):
    """A ``ModelError`` listing the choices unless ``runtime`` is one of ``RUNTIMES``."""
    if runtime not in RUNTIMES:
        raise ModelError(f"unknown runtime '{runtime}': choose one of {', '.join(RUNTIMES)}")


def resolve_runtime(runtime="auto", precision="float32"):
    """The concrete runtime (``"tf"`` or ``"litert"``) that ``runtime`` stands for here."""
    import keras

    from vsr.runtime import litert

    check_runtime(runtime)
    tf_backend = keras.backend.backend() == "tensorflow"
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
    if not tf_backend or precision != "float32" or tf_sees_gpu() or not litert.available():
        return "tf"
    return "litert"


def compiled_call(model, runtime="tf"):
    """``call(x)``: float32 (N, H, W, 3) numpy in, float32 numpy out, for a concrete runtime."""
    if runtime == "litert":
        from vsr.runtime.litert import LiteRTCall

        return LiteRTCall(model)
    if runtime != "tf":
        raise ModelError(f"runtime '{runtime}' is not a concrete one: resolve it first "
                         "(vsr.runtime.resolve_runtime)")
    return keras_call(model)


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


def tf_sees_gpu():
    """True when TensorFlow (the Keras backend) has a GPU."""
    import keras

    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


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
