"""Score the arms of the recipe study (training/recipe_study.sh) as a markdown table.

    python training/score_study.py runs/study/b-crop192 runs/study/c-l1 ... [--baseline runs/mse]

For each run folder: the last checkpoint's step, validation PSNR (Y, crop 4, from the run's own
log at that step: the exported generator, i.e. the moving average when the recipe keeps one, and
the raw weights), Set5 PSNR of the raw and averaged generators measured now with the bench's
protocol (x4 BI, Y, crop 4), and the median steps/s logged over its last 500 steps (wall
clock, so it counts whatever else ran on the machine). ``--baseline RUN --baseline-step N``
adds a run that has no moving average (the unchanged recipe) at its checkpoint of step N.
"""

import argparse
import json
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from vsr.bench.datasets import open_dataset  # noqa: E402
from vsr.bench.runner import run_quality_bench  # noqa: E402
from vsr.models.registry import load_model  # noqa: E402


def set5_psnr(path):
    res = run_quality_bench(open_dataset("set5"), {"m": load_model("mse", weights=path)}, progress=False)
    return res.mean()["m"]["psnr"]


def log_rows(run):
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def score(run, step=None):
    ckpts = sorted((run / "checkpoints").glob("step-*[0-9]"))
    ckpt = next((c for c in ckpts if int(c.name[5:]) == step), None) if step else ckpts[-1]
    step = int(ckpt.name[5:])
    rows = log_rows(run)
    val = [r for r in rows if "val_psnr_y" in r and r["step"] <= step][-1]
    rates = [r["steps_per_s"] for r in rows if step - 500 < r["step"] <= step]
    out = {"arm": run.name, "step": step, "val": val["val_psnr_y"], "val_raw": val.get("val_psnr_y_raw"),
           "set5_raw": set5_psnr(ckpt / "generator.weights.h5"),
           "set5_ema": set5_psnr(ckpt / "ema.weights.h5") if (ckpt / "ema.weights.h5").is_file() else None,
           "steps_per_s": statistics.median(rates) if rates else None}
    print(json.dumps(out), file=sys.stderr, flush=True)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--baseline", type=Path)
    ap.add_argument("--baseline-step", type=int)
    args = ap.parse_args()
    rows = ([score(args.baseline, args.baseline_step)] if args.baseline else []) + [score(r) for r in args.runs]

    def f(v, fmt="{:.2f}"):
        return "-" if v is None else fmt.format(v)

    print("| arm | step | val (exported) | val (raw) | Set5 raw | Set5 EMA | steps/s (median logged) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['arm']} | {r['step']} | {f(r['val'])} | {f(r['val_raw'])} | {f(r['set5_raw'])} | "
              f"{f(r['set5_ema'])} | {f(r['steps_per_s'])} |")


if __name__ == "__main__":
    main()
