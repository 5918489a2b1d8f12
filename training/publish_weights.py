"""Publish a training run's best generator as bundled weights, with measured scores.

    python training/publish_weights.py runs/mse [--as mse] [--sets set5,set14,vid4] [--dry-run]
    python training/publish_weights.py runs/perpix --checkpoint 4000 --as perpix

Copies ``RUN/export/<name>.weights.h5`` (the generator of the best validation PSNR) to
``weights/<as>.weights.h5``, or with ``--checkpoint STEP`` the generator of that checkpoint (for
``perpix``, whose aim is texture at a PSNR above a bar, not the highest PSNR), scores it with
`vsr bench` on the given sets (the field's protocol: Set5/Set14 Y crop 4, Vid4 Y crop 0; plus
Set5/Set14 in RGB without crop for comparison with the original Per-Pix figures) and writes its
``weights/manifest.json`` entry. Scores are measured here, never typed in.
"""

import argparse
import json
import os
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


def lineage(folder: Path):
    """The runs that made the checkpoint in ``folder``, oldest first: each run's steps, wall hours,
    loss and loss weights, read from its ``state.json`` and followed back through the ``init_weights`` it started
    from while that folder is still on this machine (a generator is often several runs deep:
    pixel phase, then Per-Pix arms). A run that started from a file or from a folder that is gone
    ends the walk; its first leg then says where it started."""
    legs = []
    while folder is not None and (folder / "state.json").is_file():
        state = json.loads((folder / "state.json").read_text())
        recipe = json.loads(state["fingerprint"])
        source = recipe.get("init_weights")
        # a run from scratch starts at 0; one whose start its fingerprint leaves out, unknown (None)
        first = recipe.get("start_step", None if source else 0)
        legs.append({"steps": [first, state["step"]],
                     "hours": round(state.get("wall_seconds", 0.0) / 3600, 3), "loss": recipe["loss"],
                     "weights": {k: recipe[k] for k in ("content", "adversarial", "d_shift", "min_detail", "grid")
                                 if recipe.get(k) is not None},
                     "from": _repo_relative(source)})
        folder = (REPO / source) if source else None
    legs = legs[::-1]
    # The fingerprint keeps start_step only where it shapes the result (a cosine schedule): a leg
    # starts where the checkpoint it continued ended.
    for before, leg in zip(legs, legs[1:]):
        leg["steps"][0] = before["steps"][1]
    return legs


def _repo_relative(path):
    """``path`` relative to the repository when it lies inside it (manifests name no home folders)."""
    if not path:
        return path
    try:
        return str(Path(os.path.abspath(path)).relative_to(REPO))
    except ValueError:
        return path


def checkpoint_entry(run: Path, step: int, entry):
    """(generator file, manifest entry) of ``run``'s checkpoint at ``step``: the export's entry with
    that checkpoint's step, wall time and the validation the run logged at it."""
    folder = run / "checkpoints" / f"step-{step:07d}"
    src = folder / "generator.weights.h5"
    if not src.is_file():
        sys.exit(f"{folder}: no generator.weights.h5 (checkpoints: {sorted(p.name for p in (run / 'checkpoints').iterdir())})")
    state = json.loads((folder / "state.json").read_text())
    logged = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line.strip()]
    val = next((r for r in logged if r.get("step") == step and "val_psnr_y" in r), None)
    entry.steps = state["step"]
    entry.extra["lineage"] = lineage(folder)
    entry.cpu_hours = round(sum(leg["hours"] for leg in entry.extra["lineage"]), 3)
    entry.scores = {"val": {"psnr_y": round(val["val_psnr_y"], 3), "ssim_y": round(val["val_ssim_y"], 4)}} if val else {}
    return src, entry


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--as", dest="name")
    ap.add_argument("--sets", default="set5,set14,vid4")
    ap.add_argument("--checkpoint", type=int, metavar="STEP", help="publish RUN/checkpoints/step-STEP instead")
    ap.add_argument("--dry-run", action="store_true", help="measure and print, write nothing")
    args = ap.parse_args()
    entries = weights_mod.read_manifest(args.run / "export")
    if len(entries) != 1:
        sys.exit(f"{args.run}/export must hold exactly one exported generator, found {list(entries)}")
    entry = next(iter(entries.values()))
    name = args.name or entry.name
    src = args.run / "export" / entry.file
    if args.checkpoint is not None:
        src, entry = checkpoint_entry(args.run, args.checkpoint, entry)
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
