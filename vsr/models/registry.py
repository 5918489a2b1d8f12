"""The named models: an explicit dict, so `vsr models` and `--model` agree on what exists."""

import os
from dataclasses import dataclass

from vsr.errors import ModelError, WeightsError
from vsr.models import weights as weights_mod

DEFAULT_ARCH = {"blocks": 16, "channels": 64, "scale": 4}


@dataclass(frozen=True)
class ModelSpec:
    """What a model name stands for.

    ``arch`` is None for models without a network (bicubic).
    """

    name: str
    summary: str
    scale: int = 4
    arch: dict = None


MODELS = {
    "perpix": ModelSpec("perpix", "SRGAN generator trained with the Per-Pix loss "
                        "(pixel MSE + feature content + 1e-3 adversarial)", arch=DEFAULT_ARCH),
    "mse": ModelSpec("mse", "SRResNet (the SRGAN generator) trained with pixel MSE",
                     arch=DEFAULT_ARCH),
    "bicubic": ModelSpec("bicubic", "MATLAB-compatible bicubic interpolation (no weights)"),
}

PRECISIONS = ("float32", "mixed")


def get_spec(name):
    """The ``ModelSpec`` for ``name``; a ``ModelError`` listing the choices otherwise."""
    try:
        return MODELS[name]
    except KeyError:
        raise ModelError(f"unknown model '{name}': choose one of {', '.join(MODELS)} "
                         "(`vsr models` lists them)") from None


def _dtype_policy(precision):
    if precision not in PRECISIONS:
        raise ModelError(f"unknown precision '{precision}': choose one of {', '.join(PRECISIONS)}")
    if precision == "float32":
        return None
    import keras

    # float16 needs a GPU to pay off; bfloat16 is what current CPUs (AVX512-BF16, AMX) accelerate.
    gpu = keras.backend.backend() == "tensorflow" and _tf_sees_gpu()
    return "mixed_float16" if gpu else "mixed_bfloat16"


def _tf_sees_gpu():
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def load_model(name="perpix", weights=None, *, batch=4, tile=None, precision="float32"):
    """Build the upscaler for a named model.

    Args:
        name: a key of ``MODELS``.
        weights: path of a ``.weights.h5`` file to use instead of the bundled, checksummed one;
            its architecture is read from the file.
        batch, tile: see ``vsr.engine.Upscaler``.
        precision: ``"float32"`` or ``"mixed"`` (bfloat16 on CPU, float16 on GPU).
    Returns:
        An object with ``.scale`` and ``.upscale(uint8 frames (N, H, W, 3))``.
    """
    spec = get_spec(name)
    policy = _dtype_policy(precision)
    if spec.arch is None:
        if weights:
            raise ModelError(f"model '{name}' has no weights: drop --weights or pick another model")
        from vsr.models.bicubic import BicubicUpscaler

        return BicubicUpscaler(scale=spec.scale)
    if weights:
        path = weights
        if not os.path.isfile(path):
            raise WeightsError(f"weights file {path} not found: check the --weights path")
        arch = weights_mod.infer_generator_arch(path)
    else:
        path, entry = weights_mod.bundled_weights(name)
        arch = {**DEFAULT_ARCH, **entry.arch}

    from vsr.engine import Upscaler
    from vsr.models.srgan import build_generator, receptive_radius

    model = build_generator(blocks=arch["blocks"], channels=arch["channels"], scale=arch["scale"],
                            dtype=policy)
    weights_mod.load_weights_into(model, path)
    return Upscaler(model, arch["scale"], batch=batch, tile=tile,
                    pad=receptive_radius(arch["blocks"], arch["scale"]), name=name)


def describe_models():
    """Lines for `vsr models`: name, scale, parameters, weights status, recorded scores."""
    manifest = weights_mod.read_manifest()
    lines = [f"{'model':<9} {'scale':>5} {'params':>10}  {'weights':<10} scores (x4 BI, Y)"]
    for spec in MODELS.values():
        if spec.arch is None:
            params, status, scores = "0", "none", "baseline"
        else:
            a = spec.arch
            params = f"{generator_parameter_count(a['blocks'], a['channels'], a['scale']):,}"
            entry = manifest.get(spec.name)
            status = "missing"
            if entry and (weights_mod.weights_dir() / entry.file).is_file():
                status = "present"
            scores = _format_scores(entry.scores) if entry else ""
        lines.append(f"{spec.name:<9} {spec.scale:>5} {params:>10}  {status:<10} {scores}")
        lines.append(f"{'':<9} {spec.summary}")
    return lines


def _format_scores(scores):
    parts = []
    for dataset, s in scores.items():
        if "psnr_y" in s:
            parts.append(f"{dataset} {s['psnr_y']:.2f} dB")
    return ", ".join(parts) or "not measured"


def generator_parameter_count(blocks, channels, scale):
    """Trainable + BatchNorm parameters of ``build_generator`` (computed, no TensorFlow import)."""
    c = channels
    head = 9 * 9 * 3 * c + c + c
    block = 2 * (9 * c * c + 4 * c) + c
    body = 9 * c * c + 4 * c
    up = (9 * c * 4 * c + 4 * c + c) * (scale // 2)
    tail = 9 * 9 * c * 3 + 3
    return head + blocks * block + body + up + tail
