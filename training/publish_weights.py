"""Publish a training run's best generator as bundled weights, with measured scores.

    python training/publish_weights.py runs/mse [--as mse] [--sets set5,set14,vid4] [--dry-run]

Copies ``RUN/export/<name>.weights.h5`` to ``weights/<as>.weights.h5``, scores it with
`vsr bench` on the given sets (the field's protocol: Set5/Set14 Y crop 4, Vid4 Y crop 0; plus
Set5/Set14 in RGB without crop for comparison with the original Per-Pix figures) and writes its
``weights/manifest.json`` entry. Scores are measured here, never typed in.
"""

import argparse
import json
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from vsr.bench.datasets import open_dataset  # noqa: E402
from vsr.bench.runner import run_quality_bench  # noqa: E402
from vsr.models import weights as weights_mod  # noqa: E402
from vsr.models.registry import load_model  # noqa: E402


def measure(path, sets, progress=True):
    """{set: {"psnr_y", "ssim_y", ("psnr_rgb_nocrop" | "psnr_y_per_item")}} for the file at ``path``."""
    up = load_model("perpix", weights=path, batch=4)
    scores = {}
    for name in sets:
        ds = open_dataset(name)
        res = run_quality_bench(ds, {"model": up}, progress=progress, temporal=False)
        mean = res.mean()["model"]
        scores[name] = {"psnr_y": round(mean["psnr"], 3), "ssim_y": round(mean["ssim"], 4)}
        if ds.kind != "images":  # per sequence, to check "beats bicubic on every sequence"
            scores[name]["psnr_y_per_item"] = {item: round(by_model["model"]["psnr"], 3)
                                               for item, by_model in res.per_item().items()}
        if name in ("set5", "set14"):
            rgb = run_quality_bench(open_dataset(name), {"model": up}, channel="rgb", crop_border=0,
                                    progress=progress, temporal=False).mean()["model"]
            scores[name]["psnr_rgb_nocrop"] = round(rgb["psnr"], 3)
        print(f"{name}: {json.dumps(scores[name])}", flush=True)
    return scores


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--as", dest="name")
    ap.add_argument("--sets", default="set5,set14,vid4")
    ap.add_argument("--dry-run", action="store_true", help="measure and print, write nothing")
    args = ap.parse_args()
    entries = weights_mod.read_manifest(args.run / "export")
    if len(entries) != 1:
        sys.exit(f"{args.run}/export must hold exactly one exported generator, found {list(entries)}")
    entry = next(iter(entries.values()))
    name = args.name or entry.name
    src = args.run / "export" / entry.file
    scores = measure(src, [s for s in args.sets.split(",") if s])
    if args.dry_run:
        return
    dest_dir = weights_mod.weights_dir()
    dest = dest_dir / f"{name}.weights.h5"
    shutil.copyfile(src, dest)
    entry.name, entry.file = name, dest.name
    entry.sha256 = weights_mod.sha256_of(dest)
    entry.scores = {**entry.scores, **scores}
    weights_mod.write_manifest_entry(entry, dest_dir)
    print(f"published {dest} (step {entry.steps}, {entry.cpu_hours} h)")


if __name__ == "__main__":
    main()
