"""Plot a run's training curve (loss and validation PSNR against step) from its log.jsonl.

    python training/plot_run.py runs/mse [runs/perpix ...] --out training/curves.png
    python training/plot_run.py runs/perpix13:19000-19500 runs/perpix14 ... --out curve.png

``RUN:FROM-TO`` keeps only that run's steps FROM..TO: a lineage of runs, each continuing the last,
plotted without the branches that were not kept.
"""

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read_log(run, first=None, last=None):
    rows = [json.loads(line) for line in (Path(run) / "log.jsonl").read_text().splitlines() if line]
    return [r for r in rows if (first is None or r["step"] >= first) and (last is None or r["step"] <= last)]


def run_spec(text):
    """``RUN`` or ``RUN:FROM-TO`` -> (Path, first step or None, last step or None)."""
    path, _, span = text.partition(":")
    if not span:
        return Path(path), None, None
    first, _, last = span.partition("-")
    try:
        return Path(path), int(first), int(last)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text}: expected RUN or RUN:FROM-TO (steps)") from None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=run_spec, metavar="RUN[:FROM-TO]")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    fig, (ax_loss, ax_val) = plt.subplots(1, 2, figsize=(11, 4))
    for run, first, last in args.runs:
        log = read_log(run, first, last)
        ax_loss.plot([r["step"] for r in log], [r.get("pixel", r["total"]) for r in log],
                     lw=0.6, label=run.name)
        val = [r for r in log if "val_psnr_y" in r]
        ax_val.plot([r["step"] for r in val], [r["val_psnr_y"] for r in val], marker="o", ms=3,
                    label=run.name)
        if val:
            best = max(val, key=lambda r: r["val_psnr_y"])
            print(f"{run.name}: {log[-1]['step']} steps, best validation PSNR (Y, crop 4) "
                  f"{best['val_psnr_y']:.2f} dB at step {best['step']}")
    ax_loss.set(xlabel="step", ylabel="pixel loss (MSE; L1 for pixel_loss: l1), RGB in [0,1]", yscale="log", title="training loss")
    ax_val.set(xlabel="step", ylabel="PSNR (dB)", title="validation PSNR (Y, crop 4; the EMA where kept)")
    for ax in (ax_loss, ax_val):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)


if __name__ == "__main__":
    main()
