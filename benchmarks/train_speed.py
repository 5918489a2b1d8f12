"""Training speed of the full model: steps/s of `vsr train` for each loss preset, on this machine.

    python benchmarks/train_speed.py                       # mse and perpix, batch 16, 96x96 crops
    python benchmarks/train_speed.py --presets mse --steps 40 --data data/photos
    python benchmarks/train_speed.py --precision float32,bf16   # both, side by side in one run

Each preset runs the real trainer (``Trainer.run``: tf.data input, the train step, logging) for
``--steps`` steps in a temporary folder, without validation or checkpoints in the timed part; the
first logged interval (10 steps, including tracing) is dropped and the rest are averaged. The
generator's share of a float32 numpy matmul peak, timed in the same run, is given for ``mse``
(training work is taken as 3x the forward multiply-adds of the generator: forward, input
gradients, weight gradients). Pause other jobs (e.g. a background training run, with SIGSTOP)
while this runs: on 2 cores any other load shows up directly in the figures.
"""

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from engine_speed import PEAK_N, best_of, cpu_description, generator_macs  # noqa: E402

PRESET_EXTRA = {"mse": {}, "vgg54": {"feature_network": "vgg19", "feature_weights": "random"},
                "perpix": {"feature_network": "effnet-lite0", "feature_weights": "imagenet"}}


def synthetic_photos(folder, n=8, size=512):
    """Random images: a step's cost does not depend on the pixel values."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        cv2.imwrite(str(folder / f"{i}.png"), rng.integers(0, 256, (size, size, 3), np.uint8))
    return folder


def matmul_peak(repeats=3):
    a = np.random.default_rng(0).random((PEAK_N, PEAK_N), np.float32)
    return 2 * PEAK_N ** 3 / best_of(lambda: a @ a, repeats) / 1e9


def time_preset(preset, data, steps, batch, crop, precision="auto"):
    from vsr.train.config import TrainConfig
    from vsr.train.trainer import Trainer

    cfg = TrainConfig.from_dict(dict(name=preset, loss=preset, train_dirs=[str(data)], batch=batch,
                                     hr_crop=crop, steps=steps, checkpoint_every=10 ** 9,
                                     validate_every=10 ** 9, **PRESET_EXTRA[preset]))
    with tempfile.TemporaryDirectory() as run:
        Trainer(cfg, Path(run), progress=False, precision=precision).run()
        log = [json.loads(line) for line in (Path(run) / "log.jsonl").read_text().splitlines()]
    rates = [r["steps_per_s"] for r in log[1:] if r["step"] % 10 == 0]
    return 1 / np.mean([1 / r for r in rates])  # mean seconds per step, as a rate


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", default="mse,perpix")
    ap.add_argument("--steps", type=int, default=30, help="per preset; the first 10 are warm-up")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--crop", type=int, default=96, help="HR crop size")
    ap.add_argument("--data", type=Path, help="training images (default: random images)")
    ap.add_argument("--precision", default="auto",
                    help="comma-separated `vsr train --precision` values, each timed (default: auto)")
    args = ap.parse_args()
    if args.steps < 20 or args.steps % 10:
        sys.exit("--steps must be a multiple of 10, at least 20 (the first 10 are warm-up)")
    presets = [p for p in args.presets.split(",") if p]
    unknown = set(presets) - PRESET_EXTRA.keys()
    if unknown:
        sys.exit(f"unknown presets {sorted(unknown)}: choose from {', '.join(PRESET_EXTRA)}")
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or synthetic_photos(Path(tmp) / "photos")
        name, simd = cpu_description()
        print(f"{name} ({', '.join(simd) or 'no AVX2'}), {os.cpu_count()} CPUs; batch {args.batch}, {args.crop}x{args.crop} HR crops, "
              f"{args.steps - 10} timed steps per preset, data: {args.data or 'random images'}")
        peak = matmul_peak()
        print(f"float32 numpy matmul peak: {peak:.1f} GFLOP/s")
        lr = args.crop // 4
        train_gflop = 3 * 2 * generator_macs(lr, lr) * args.batch / 1e9
        for preset, precision in [(p, q) for p in presets for q in args.precision.split(",")]:
            rate = time_preset(preset, data, args.steps, args.batch, args.crop, precision)
            line = f"{preset:<7} {precision:<8} {1 / rate:6.2f} s/step  {rate:5.3f} steps/s  {3600 * rate:6.0f} steps/h"
            if preset == "mse":
                achieved = train_gflop * rate
                line += f"  generator {train_gflop:.0f} GFLOP/step: {achieved:.1f} GFLOP/s = {achieved / peak:.0%} of peak"
            print(line, flush=True)


if __name__ == "__main__":
    main()
