"""The named models: an explicit dict, so `vsr models` and `--model` agree on what exists."""

import os
from dataclasses import dataclass

from vsr.errors import InputError, ModelError, WeightsError
from vsr.models import weights as weights_mod
from vsr.runtime import ModelSource, check_runtime, resolve_runtime, warn_if_emulated
from vsr.startup import import_keras, phase

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

#: ``bf16``: bfloat16 compute, float32 weights and output (fast where the CPU has AVX512-BF16/AMX,
#: or on a GPU). ``mixed``: bfloat16 on the CPU, float16 on a GPU.
PRECISIONS = ("float32", "bf16", "mixed")


def get_spec(name):
    """The ``ModelSpec`` for ``name``; a ``ModelError`` listing the choices otherwise."""
    try:
        return MODELS[name]
    except KeyError:
        raise ModelError(f"unknown model '{name}': choose one of {', '.join(MODELS)} "
                         "(`vsr models` lists them)") from None


def dtype_policy(precision):
    if precision not in PRECISIONS:
        raise ModelError(f"unknown precision '{precision}': choose one of {', '.join(PRECISIONS)}")
    if precision == "float32":
        return None
    if precision == "bf16":
        return "mixed_bfloat16"
    from vsr.runtime import tf_sees_gpu

    # float16 needs a GPU to pay off; bfloat16 is what current CPUs (AVX512-BF16, AMX) accelerate.
    return "mixed_float16" if tf_sees_gpu() else "mixed_bfloat16"


def load_model(name="perpix", weights=None, *, batch=4, tile=None, precision="float32",
               runtime="auto"):
    """Build the upscaler for a named model.

    Args:
        name: a key of ``MODELS``.
        weights: path of a ``.weights.h5`` file to use instead of the bundled, checksummed one;
            its architecture is read from the file.
        batch, tile: see ``vsr.engine.Upscaler``.
        precision: ``"float32"``, ``"bf16"`` or ``"mixed"`` (bfloat16 on CPU, float16 on GPU).
        runtime: ``"auto"``, ``"tf"`` or ``"litert"`` (see ``vsr.runtime``).
    Returns:
        An object with ``.scale`` and ``.upscale(uint8 frames (N, H, W, 3))``. The network is built
        only as far as its runtime needs: LiteRT with the conversion in vsr's cache (keyed by the
        weights' sha256, ``vsr.runtime.cache``) runs without importing TensorFlow.
    """
    spec = get_spec(name)
    dtype_policy(precision)  # an unknown precision is refused before anything is read
    check_runtime(runtime)
    if spec.arch is None:
        if weights:
            raise ModelError(f"model '{name}' has no weights: drop --weights or pick another model")
        from vsr.models.bicubic import BicubicUpscaler

        return BicubicUpscaler(scale=spec.scale)
    path, arch, digest = _generator_weights(name, weights)

    from vsr.engine import Upscaler
    from vsr.models.arch import receptive_radius

    runtime = resolve_runtime(runtime, precision)
    warn_if_emulated(precision)
    return Upscaler(generator_source(path, arch, digest, precision), arch["scale"], batch=batch, tile=tile,
                    pad=receptive_radius(arch["blocks"], arch["scale"]),
                    name=os.path.basename(str(weights)) if weights else name, runtime=runtime)


def generator_source(path, arch, sha256, precision="float32"):
    """A ``vsr.runtime.ModelSource`` of the inference generator of ``path`` (sha256 ``sha256``), built
    on first use; its key names everything its LiteRT conversion depends on, so that is cached."""
    policy = dtype_policy(precision)
    key = {"graph": "srgan generator, BatchNorm folded, subpixel tail", "weights_sha256": sha256,
           "arch": {k: int(arch[k]) for k in ("blocks", "channels", "scale")}, "precision": precision}
    return ModelSource(lambda: load_generator(path, arch, dtype=policy), key=key,
                       precision="float32" if precision == "float32" else precision)


def present_models():
    """The models that need no weights (``bicubic``), then every network whose bundled weights file is
    present, in registry order."""
    manifest, folder = weights_mod.read_manifest(), weights_mod.weights_dir()
    baselines = [name for name, spec in MODELS.items() if spec.arch is None]
    return baselines + [name for name, spec in MODELS.items() if spec.arch is not None
                        and name in manifest and (folder / manifest[name].file).is_file()]


def load_labelled(entries, **options):
    """``{label: upscaler}`` for entries that are a model name (its bundled weights) or
    ``LABEL=FILE``: a generator weights file (e.g. a training run's export), scored or shown as
    LABEL. ``options`` go to :func:`load_model`."""
    upscalers = {}
    for entry in entries:
        label, sep, path = (part.strip() for part in entry.partition("="))
        if label in upscalers:
            raise InputError(f"--models names {label!r} twice: give each entry its own name")
        if sep and not (label and path):
            raise InputError(f"--models entry {entry!r}: write NAME=FILE, e.g. step3000=runs/mse/export/mse.weights.h5")
        # a file's architecture is read from the file; "perpix" only names the generator family
        upscalers[label] = load_model("perpix", weights=path, **options) if sep else load_model(label, **options)
    return upscalers


def generator_weights(name, weights=None):
    """``(path, arch)`` of model ``name``'s generator weights: ``weights`` (a ``.weights.h5`` file,
    architecture read from it) or the bundled, checksummed file. ``WeightsError`` if unusable."""
    return _generator_weights(name, weights)[:2]


def _generator_weights(name, weights=None):
    # (path, arch, sha256 of the file)
    if weights:
        if not os.path.isfile(weights):
            raise WeightsError(f"weights file {weights} not found: check the --weights path")
        arch = weights_mod.infer_generator_arch(weights)
        with phase("weights sha256"):
            return weights, arch, weights_mod.sha256_of(weights)
    with phase("weights sha256 (bundled, checked)"):
        path, entry = weights_mod.bundled_weights(name)
    return path, {**DEFAULT_ARCH, **entry.arch}, entry.sha256


def load_generator(path, arch, dtype=None, inference=True):
    """The generator of ``arch`` with the weights of ``path``.

    ``inference=True`` returns it prepared for inference (``vsr.models.fold.inference_generator``:
    BatchNorm folded, the tail moved before the last shuffle): same outputs, fewer and wider ops.
    """
    import_keras()
    from vsr.models.fold import inference_generator
    from vsr.models.srgan import build_generator

    with phase("build the generator"):
        model = build_generator(blocks=arch["blocks"], channels=arch["channels"], scale=arch["scale"],
                                dtype=dtype)
    with phase("load its weights"):
        weights_mod.load_weights_into(model, path)
    if not inference:
        return model
    with phase("fold BatchNorm, rewrite the tail"):
        return inference_generator(model, dtype=dtype)


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


def describe_speed(names=None, weights=None, size=(180, 144)):
    """Lines for `vsr models --speed`: each runtime's ms/frame on this machine for ``size`` (width,
    height) frames and the one ``--runtime auto`` uses, from the cache or timed now (seconds per model
    the first time; see ``vsr.runtime.auto``).

    ``names``: models to show (default: every one with a network and its weights here); ``weights``: a
    generator file instead (shown under its file name).
    """
    from vsr.runtime import untimed_reason
    from vsr.runtime.auto import describe_machine, machine

    width, height = size
    if weights:
        entries = [(os.path.basename(str(weights)), "perpix", weights)]
    else:
        wanted = list(names) if names else [n for n, spec in MODELS.items() if spec.arch is not None]
        entries = [(n, n, None) for n in wanted]
    lines = [f"{describe_machine(machine())}; {width}x{height} frames, float32",
             f"{'model':<16} {'runtime':<8} {'ms/frame':>9}"]
    for label, name, path in entries:
        spec = get_spec(name)
        if spec.arch is None:
            lines.append(f"{label:<16} {'numpy':<8} {'-':>9}  no network: nothing to choose")
            continue
        try:
            up = load_model(name, weights=path, runtime="auto", batch=1)
        except WeightsError:
            if names or weights:
                raise
            lines.append(f"{label:<16} {'-':<8} {'-':>9}  no weights here")
            continue
        choice = up.choose_runtime(height, width)
        if choice is None:
            lines.append(f"{label:<16} {up.runtime:<8} {'-':>9}  <- auto ({untimed_reason()}: not timed)")
            continue
        h, w = choice.timed_shape
        when = f"cached {choice.measured_at}" if choice.cached else "timed now"
        for runtime, ms in sorted(choice.ms_per_frame.items(), key=lambda item: item[1]):
            mark = f"  <- auto ({when}, at {w}x{h}; inputs {choice.bucket} px a side)" if runtime == choice.runtime else ""
            lines.append(f"{label:<16} {runtime:<8} {ms:>9.0f}{mark}")
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
