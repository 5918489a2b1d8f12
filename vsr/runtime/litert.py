"""LiteRT (TensorFlow Lite) on the CPU through its XNNPACK delegate.

The Keras model is traced once with a fully dynamic input shape, its variables are frozen into
constants (XNNPACK takes only convolutions whose weights it can see; an unfrozen model falls back to
TFLite's reference kernels, which are slow and overflow int32 indices at 480x270 and above) and it
is converted to a flatbuffer. Each input shape then gets its own interpreter, resized and allocated
once, with one XNNPACK thread per available core.
"""

import os
import threading
from collections import OrderedDict

import numpy as np

from vsr.errors import ModelError
from vsr.startup import phase

#: Interpreters kept, one per input shape (a video needs one or two; Set5 needs five).
MAX_SHAPES = 6


def available():
    """True when the ``ai-edge-litert`` interpreter can be imported."""
    try:
        import ai_edge_litert.interpreter  # noqa: F401
    except ImportError:
        return False
    return True


def cpu_threads():
    """Cores this process may run on (the affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def frozen_function(fn, input_spec):
    """A concrete function of ``fn`` for ``input_spec`` with every variable turned into a constant."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    concrete = tf.function(fn, autograph=False).get_concrete_function(input_spec)
    return convert_variables_to_constants_v2(concrete)


def tflite_bytes(fn, input_dtype="float32", float16=False):
    """Convert ``fn`` (a Keras model or a function of one (N, H, W, 3) tensor) to a TFLite flatbuffer.

    Args:
        fn: callable; Keras models are called with ``training=False``.
        input_dtype: dtype of the (None, None, None, 3) input.
        float16: store weights as float16 (half the file; the CPU dequantises them once at load,
            GPU delegates compute in float16).
    Returns:
        The flatbuffer as bytes, with frozen weights and a dynamic input shape.
    """
    import keras
    import tensorflow as tf

    if keras.backend.backend() != "tensorflow":
        raise ModelError("converting to LiteRT needs the TensorFlow Keras backend: unset "
                         "KERAS_BACKEND or pass --runtime tf")
    if isinstance(fn, keras.Model):
        model = fn
        fn = lambda x: model(x, training=False)
    spec = tf.TensorSpec([None, None, None, 3], tf.as_dtype(input_dtype))
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen_function(fn, spec)],
                                                                tf.Module())
    if float16:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    return converter.convert()


def new_interpreter(flatbuffer, shape, threads=None):
    """A LiteRT interpreter for ``flatbuffer`` with its input resized to ``shape`` and allocated."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=flatbuffer, num_threads=threads or cpu_threads())
    interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], list(shape))
    interpreter.allocate_tensors()
    return interpreter


def run_interpreter(interpreter, x):
    """Run one input through an allocated interpreter; returns a copy of the output."""
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


class LiteRTCall:
    """``call(x)`` for float32 (N, H, W, 3) arrays, running ``model`` in LiteRT with XNNPACK.

    Args:
        model: a Keras model (TensorFlow backend) with float32 inputs and outputs, converted here;
            or None with ``flatbuffer``.
        threads: XNNPACK threads; default one per available core.
        flatbuffer: the model already converted (``tflite_bytes``, e.g. from vsr's cache): no
            TensorFlow needed then.
    """

    def __init__(self, model=None, threads=None, *, flatbuffer=None):
        if not available():
            raise ModelError("--runtime litert needs the ai-edge-litert package: "
                             "`pip install ai-edge-litert`, or pass --runtime tf")
        if (model is None) == (flatbuffer is None):
            raise TypeError("LiteRTCall takes a model or a flatbuffer")
        self.threads = threads or cpu_threads()
        self.flatbuffer = tflite_bytes(model) if flatbuffer is None else flatbuffer
        self._interpreters = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, x):
        x = np.ascontiguousarray(x, np.float32)
        with self._lock:
            interpreter = self._interpreters.pop(x.shape, None)
            if interpreter is None:
                with phase(f"LiteRT interpreter for {x.shape[2]}x{x.shape[1]} x{x.shape[0]}"):
                    interpreter = new_interpreter(self.flatbuffer, x.shape, self.threads)
                while len(self._interpreters) >= MAX_SHAPES:
                    self._interpreters.popitem(last=False)
            self._interpreters[x.shape] = interpreter
            return run_interpreter(interpreter, x)
