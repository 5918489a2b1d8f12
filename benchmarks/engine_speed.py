"""CPU speed of vsr's engine in each mode against OpenVINO, as a share of a measured matmul peak.

    python benchmarks/engine_speed.py                         # 180x144, 2 frames, 3 rounds
    python benchmarks/engine_speed.py --size 320x180 --rounds 5
    python benchmarks/engine_speed.py --sweep                 # only: time per pixel vs window, batch
    python benchmarks/engine_speed.py --modes litert,openvino # a subset (names as printed)

One run, one set of weights (the full 16-block generator with random weights and random
BatchNorm statistics: speed does not depend on the values; ``--weights FILE`` uses a trained
file), one set of uint8 frames. Every mode goes through the same uint8 -> float -> uint8
conversion, so the table compares what a user waits for.

* Peak: float32 4096x4096 matmul with numpy (its BLAS) and ``tf.matmul``, timed in every round
  beside the modes, best of all; the table's % is of the numpy peak.
* GFLOP per frame: 2 x the multiply-adds of the standard generator at the input size (the
  convolutions; PReLU, adds and shuffles are not counted), so every mode is credited with the
  same work even where vsr's rewritten graph does a little more.
* Modes run round-robin, ``--rounds`` times, and each reports its best round: other processes
  on a shared machine only ever make a round slower.
* ``max |d|``: the largest uint8 difference from the first mode's output.

OpenVINO (``pip install openvino``, or vsr's ``[bench]`` extra) is the outside reference,
converted from the standard Keras graph (it folds BatchNorm itself); it is skipped when absent.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

PEAK_N = 4096
PEAK_LABELS = ("numpy matmul", "tf.matmul")


def generator_macs(h, w, blocks=16, channels=64, scale=4):
    """Multiply-adds of ``build_generator`` on one (h, w) input (convolutions only)."""
    c, px = channels, h * w
    macs = 81 * 3 * c * px                     # head 9x9, 3 -> c
    macs += (2 * blocks + 1) * 9 * c * c * px  # residual convs and the body conv, 3x3 c -> c
    for u in range(scale // 2):                # 3x3 c -> 4c at 1x, 2x, ...
        macs += 9 * c * 4 * c * px * 4 ** u
    macs += 81 * c * 3 * px * scale ** 2       # tail 9x9, c -> 3 at the output resolution
    return macs


def cpu_description():
    name, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and name in ("", platform.machine()):
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    simd = [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "avx512_fp16") if f in flags]
    return name, simd


def best_of(fn, repeats):
    fn()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def matmul_calls():
    """``{name: f()}`` timing one float32 PEAK_N^3 matmul each with numpy and ``tf.matmul``."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    a, b = (rng.random((PEAK_N, PEAK_N), dtype=np.float32) for _ in range(2))
    ta, tb = tf.constant(a), tf.constant(b)
    return {"numpy matmul": lambda _: a @ b, "tf.matmul": lambda _: tf.matmul(ta, tb).numpy()}


def random_weights_file(folder):
    """A full-size generator with random weights and BatchNorm statistics, saved as .weights.h5."""
    import keras

    from vsr.models.srgan import build_generator

    keras.utils.set_random_seed(0)
    model = build_generator()
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.moving_mean.shape
            layer.moving_mean.assign(rng.normal(0, 0.1, n))
            layer.moving_variance.assign(rng.uniform(0.5, 1.5, n))
    path = Path(folder) / "random.weights.h5"
    model.save_weights(str(path))
    return path


def to_uint8(y):
    return np.clip(np.asarray(y, np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def openvino_upscale(model, threads):
    """``f(uint8 frames)`` running ``model`` (Keras, TensorFlow backend) compiled by OpenVINO."""
    import openvino as ov
    import tensorflow as tf

    graph = tf.function(lambda x: model(x, training=False), autograph=False).get_concrete_function(
        tf.TensorSpec([None, None, None, 3], tf.float32))
    compiled = ov.Core().compile_model(ov.convert_model(graph), "CPU",
                                       {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads})
    request = compiled.create_infer_request()
    return lambda frames: to_uint8(request.infer({0: frames.astype(np.float32) * np.float32(1 / 255)})[0])


def build_modes(weights, arch, threads, wanted):
    """``{label: f(uint8 frames) -> uint8 frames}`` for every mode available here, in table order."""
    from vsr.engine import Upscaler
    from vsr.models import registry
    from vsr.models.fold import fold_batchnorm, inference_generator
    from vsr.models.srgan import receptive_radius
    from vsr.runtime import cpu_has_bf16, litert

    pad = receptive_radius(arch["blocks"], arch["scale"])
    bn = registry.load_generator(weights, arch, inference=False)
    folded = fold_batchnorm(bn)
    fast = inference_generator(bn)
    engine = lambda model, runtime: Upscaler(model, arch["scale"], pad=pad, runtime=runtime).upscale
    modes = {
        "tf float32, BatchNorm graph": lambda: engine(bn, "tf"),
        "tf float32, folded": lambda: engine(folded, "tf"),
        "tf float32, folded + subpixel tail": lambda: engine(fast, "tf"),
        "tf bf16, folded + subpixel tail" + ("" if cpu_has_bf16() else " (emulated)"):
            lambda: engine(registry.load_generator(weights, arch, dtype="mixed_bfloat16"), "tf"),
    }
    if litert.available():
        modes.update({
            "litert float32, folded": lambda: engine(folded, "litert"),
            "litert float32, folded + subpixel tail (vsr's fastest on AVX2)":
                lambda: registry.load_model("perpix", weights=weights, runtime="litert").upscale,
            "litert fp16 weights (`vsr export --precision float16`)": lambda: _export_fp16(weights, threads),
        })
    try:
        import openvino  # noqa: F401
    except ImportError:
        print("openvino not installed: `pip install openvino` (or vsr[bench]) adds the reference row",
              file=sys.stderr)
    else:
        modes.update({
            "openvino float32, standard graph (reference)": lambda: openvino_upscale(bn, threads),
            "openvino float32, vsr's folded + subpixel graph": lambda: openvino_upscale(fast, threads),
        })
    if wanted:
        modes = {k: v for k, v in modes.items() if any(w in k for w in wanted)}
    return {label: make() for label, make in modes.items()}


def _export_fp16(weights, threads):
    from vsr.export import export_model
    from vsr.runtime.litert import new_interpreter, run_interpreter

    with tempfile.TemporaryDirectory() as tmp:
        data = export_model("perpix", "tflite", Path(tmp) / "m.tflite", "float16", weights=weights).read_bytes()
    cache = {}

    def upscale(frames):
        if frames.shape not in cache:
            cache[frames.shape] = new_interpreter(data, frames.shape, threads)
        return run_interpreter(cache[frames.shape], frames)

    return upscale


def run_modes(modes, frames, rounds, cheap=()):
    """Best seconds per mode over ``rounds`` round-robin rounds, and each mode's output.

    Modes named in ``cheap`` (the matmuls) are timed three times a round: more chances to
    catch a quiet moment on a shared machine, at little cost.
    """
    outputs = {label: fn(frames) for label, fn in modes.items()}  # warm-up: traces, allocations
    best = {label: float("inf") for label in modes}
    for r in range(rounds):
        for label, fn in modes.items():
            for _ in range(3 if label in cheap else 1):
                t = time.perf_counter()
                fn(frames)
                best[label] = min(best[label], time.perf_counter() - t)
        print(f"round {r + 1}/{rounds} done", file=sys.stderr)
    return best, outputs


def sweep(weights, threads, rounds):
    """Time per window pixel of vsr's LiteRT graph against window size and batch (tile/batch choice)."""
    from vsr.engine import AUTO_TILE_PIXELS
    from vsr.models import registry
    from vsr.runtime.litert import new_interpreter, run_interpreter, tflite_bytes

    arch = registry.generator_weights("perpix", weights)[1]
    data = tflite_bytes(registry.load_generator(weights, arch))
    rng = np.random.default_rng(1)
    shapes = [(1, 144, 180), (2, 144, 180), (4, 144, 180), (1, 96, 96), (1, 192, 192), (1, 336, 336),
              (1, 448, 448), (1, 600, 600)]
    shapes = [s for s in shapes if s[0] * s[1] * s[2] <= AUTO_TILE_PIXELS]
    calls = {}
    for shape in shapes:
        interpreter = new_interpreter(data, (*shape, 3), threads)
        x = rng.random((*shape, 3), dtype=np.float32)
        calls[shape] = (lambda it=interpreter, x=x: run_interpreter(it, x))
    best, _ = run_modes({s: (lambda _, c=c: c()) for s, c in calls.items()}, None, rounds)
    print("\n| input (N, H, W) | ms / call | us / input pixel |")
    print("|---|---:|---:|")
    for shape, t in best.items():
        px = shape[0] * shape[1] * shape[2]
        print(f"| {shape} | {t * 1e3:.0f} | {t / px * 1e6:.1f} |")


def wanted(modes):
    return [m.strip() for m in (modes or "").split(",") if m.strip()]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="180x144", help="input WxH (default 180x144)")
    parser.add_argument("--frames", type=int, default=2, help="frames per timed call (default 2)")
    parser.add_argument("--rounds", type=int, default=3, help="round-robin rounds (default 3)")
    parser.add_argument("--weights", type=Path, help="generator .weights.h5 (default: random, full size)")
    parser.add_argument("--modes", help="comma-separated substrings of mode names to keep")
    parser.add_argument("--sweep", action="store_true",
                        help="instead: time vsr's LiteRT graph per window size and batch")
    args = parser.parse_args(argv)

    import tensorflow as tf

    from vsr.models import registry
    from vsr.runtime.litert import cpu_threads

    tf.get_logger().setLevel("ERROR")
    w, h = (int(v) for v in args.size.lower().split("x"))
    threads = cpu_threads()
    with tempfile.TemporaryDirectory() as tmp:
        weights = args.weights or random_weights_file(tmp)
        if args.sweep:
            return sweep(weights, threads, args.rounds)
        arch = registry.generator_weights("perpix", weights)[1]
        frames = np.random.default_rng(0).integers(0, 256, (args.frames, h, w, 3), dtype=np.uint8)
        modes = {**matmul_calls(), **build_modes(weights, arch, threads, wanted(args.modes))}
        best, outputs = run_modes(modes, frames, args.rounds, cheap=PEAK_LABELS)
        auto = registry.load_model("perpix", weights=weights, runtime="auto")
        choice = auto.choose_runtime(h, w)  # from vsr's cache, else timed now
        print(f"vsr's --runtime auto here: {choice.describe() if choice else auto.runtime}", file=sys.stderr)

    flop = 2 * PEAK_N ** 3 / 1e9
    np_peak, tf_peak = (flop / best.pop(label) for label in PEAK_LABELS)
    for label in PEAK_LABELS:
        outputs.pop(label)
    gflop = 2 * generator_macs(h, w, arch["blocks"], arch["channels"], arch["scale"]) / 1e9
    name, simd = cpu_description()
    reference = next(iter(outputs.values()))
    print(f"\nCPU: {name}, {threads} threads, {' '.join(simd)}; TensorFlow {tf.__version__}")
    print(f"float32 {PEAK_N}^3 matmul peak: numpy {np_peak:.1f} GFLOP/s, tf.matmul {tf_peak:.1f} GFLOP/s "
          f"(best of {3 * args.rounds}, timed between the modes)")
    print(f"generator {arch['blocks']} blocks x {arch['channels']} ch, x{arch['scale']}, input {w}x{h}: "
          f"{gflop:.1f} GFLOP/frame; {args.frames} frames per call, best of {args.rounds} rounds\n")
    print("| mode | ms/frame | GFLOP/s | % of peak | max \\|d\\| |")
    print("|---|---:|---:|---:|---:|")
    for label, seconds in best.items():
        per_frame = seconds / args.frames
        rate = gflop / per_frame
        diff = int(np.abs(outputs[label].astype(int) - reference).max())
        print(f"| {label} | {per_frame * 1e3:.0f} | {rate:.1f} | {100 * rate / np_peak:.0f}% | {diff} |")


if __name__ == "__main__":
    main()
