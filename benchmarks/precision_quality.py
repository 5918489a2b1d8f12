"""PSNR/SSIM of one generator in float32 and bf16 (and each runtime), on Set5 by default.

    python benchmarks/precision_quality.py --weights runs/mse/export/mse.weights.h5
    python benchmarks/precision_quality.py --weights FILE --dataset set14 --data ../shared/datasets

The protocol is ``vsr bench``'s (x4 BI, Y channel BT.601, border crop 4). The issue's bar for
``--precision bf16``: mean PSNR within 0.05 dB of float32.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: (label, runtime, precision) compared; the first is the reference.
VARIANTS = [("float32 tf", "tf", "float32"), ("float32 litert", "litert", "float32"),
            ("bf16 tf", "tf", "bf16")]


def compare(weights, dataset="set5", data=None):
    """``{label: {"psnr", "ssim"}}`` means for every available variant, and the protocol line."""
    from vsr.bench.datasets import open_dataset
    from vsr.bench.runner import run_quality_bench
    from vsr.models import registry
    from vsr.runtime import litert

    upscalers = {}
    for label, runtime, precision in VARIANTS:
        if runtime == "litert" and not litert.available():
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # bf16 emulated: slower, and we know
            upscalers[label] = registry.load_model("perpix", weights=weights, runtime=runtime,
                                                   precision=precision, batch=1)
    results = run_quality_bench(open_dataset(dataset, data), upscalers, progress=False)
    return results.mean(), results.protocol_line()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", type=Path, required=True, help="generator .weights.h5")
    parser.add_argument("--dataset", default="set5")
    parser.add_argument("--data", help="datasets folder (default: the shared one, $VSR_DATASETS)")
    args = parser.parse_args(argv)
    means, protocol = compare(args.weights, args.dataset, args.data)
    ref = means[VARIANTS[0][0]]
    print(f"{args.dataset}, {protocol}")
    print("| variant | PSNR (dB) | SSIM | dPSNR vs float32 tf |")
    print("|---|---:|---:|---:|")
    for label, m in means.items():
        print(f"| {label} | {m['psnr']:.3f} | {m['ssim']:.4f} | {m['psnr'] - ref['psnr']:+.3f} |")


if __name__ == "__main__":
    main()
