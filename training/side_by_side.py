"""Side-by-side crops (bicubic / models / ground truth) for the model card.

    python training/side_by_side.py --out weights/side_by_side.png \
        [--model bicubic --model mse --model perpix=runs/perpix/export/perpix.weights.h5] \
        [--crop set14/baboon:60,200,120 --crop vid4/calendar/00000010:250,330,120 ...]

Each crop is ``DATASET/ITEM[/FRAME]:Y,X,SIZE`` in ground-truth pixels. The LR input is the whole
ground-truth image degraded with the bench's MATLAB-exact BI x4, each model super-resolves the whole
LR image (as `vsr bench` does), and the label gives that image's PSNR (Y, crop 4 on Set5/Set14,
crop 0 on Vid4: the bench protocol) so the crop is read next to the number, and the crop's detail
ratio (`vsr.quality.detail_ratio`: high-pass energy of the output over the ground truth's; 1 = as
much fine detail as the original), which is also printed as a table, with each crop's periodicity
(`vsr.quality.periodicity`: how much of the fine detail is a 4-pixel grid; photos about 0.1).
"""

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from vsr.bench.datasets import read_image, shared_datasets_dir  # noqa: E402
from vsr.models.registry import load_labelled  # noqa: E402
from vsr.quality import crop_to_multiple, degrade_bi, detail_ratio, periodicity, psnr_y  # noqa: E402

DEFAULT_CROPS = [
    # smooth skin: where a generator's periodic artifacts (a 2-4 px grid from the pixel shuffles)
    # show first (runs/perpix13, 2026-12-06)
    "set5/woman:60,20,120",
    "set14/baboon:40,300,120",
    "set14/comic:150,40,120",
    "vid4/calendar/00000010:300,360,120",
    "vid4/foliage/00000020:200,300,120",
]
FOLDERS = {"set5": "Set5", "set14": "Set14", "vid4": "Vid4/GT"}
CROP_BORDER = {"set5": 4, "set14": 4, "vid4": 0}


def parse_crop(text):
    """``"set14/baboon:40,300,120"`` -> (dataset, image path, (y, x, size))."""
    try:
        where, box = text.split(":")
        dataset, rest = where.split("/", 1)
        y, x, size = (int(v) for v in box.split(","))
    except ValueError:
        raise SystemExit(f"--crop {text!r}: write DATASET/ITEM[/FRAME]:Y,X,SIZE, "
                         "e.g. set14/baboon:40,300,120") from None
    base = shared_datasets_dir()
    if base is None or dataset.lower() not in FOLDERS:
        raise SystemExit(f"--crop {text!r}: needs the shared datasets folder (set VSR_DATASETS) "
                         f"and one of {', '.join(FOLDERS)}")
    path = base / FOLDERS[dataset.lower()] / f"{rest}.png"
    if not path.is_file():
        raise SystemExit(f"--crop {text!r}: {path} does not exist")
    return dataset.lower(), path, (y, x, size)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--model", action="append", help="NAME or NAME=WEIGHTS (repeatable)")
    ap.add_argument("--crop", action="append", help="DATASET/ITEM[/FRAME]:Y,X,SIZE (repeatable)")
    args = ap.parse_args()
    crops = [parse_crop(c) for c in (args.crop or DEFAULT_CROPS)]
    upscalers = list(load_labelled(args.model or ["bicubic", "mse", "perpix"], batch=1).items())

    columns = len(upscalers) + 1
    fig, axes = plt.subplots(len(crops), columns, figsize=(2.6 * columns, 2.85 * len(crops)),
                             squeeze=False)
    details, grids, names = {}, {}, []
    for row, (dataset, path, (y, x, size)) in enumerate(crops):
        hr = crop_to_multiple(read_image(path)[0], 4)
        if y + size > hr.shape[0] or x + size > hr.shape[1]:
            raise SystemExit(f"crop {y},{x},{size} falls outside {path.name} ({hr.shape[1]}x{hr.shape[0]})")
        lr = degrade_bi(hr, 4)
        panels = []
        item = path.parent.name + "/" + path.stem if dataset == "vid4" else path.stem
        for name, up in upscalers:
            sr = up.upscale(lr)
            value = psnr_y(sr, hr, crop_border=CROP_BORDER[dataset])
            detail = detail_ratio(sr[y:y + size, x:x + size], hr[y:y + size, x:x + size])
            details.setdefault(name, []).append(detail)
            grids.setdefault(name, []).append(periodicity(sr[y:y + size, x:x + size]))
            panels.append((sr, f"{name}  {value:.2f} dB  d {detail:.2f}"))
        names.append(f"{dataset} {item}")
        grids.setdefault("ground truth", []).append(periodicity(hr[y:y + size, x:x + size]))
        panels.append((hr, "ground truth"))
        for col, (img, label) in enumerate(panels):
            ax = axes[row][col]
            ax.imshow(img[y:y + size, x:x + size], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(label, fontsize=9)
            if col == 0:
                ax.set_ylabel(f"{dataset} {item}", fontsize=8)
    fig.suptitle("x4 BI: crops of the whole-image output; PSNR (Y) of the whole image, "
                 "d = the crop's detail ratio", fontsize=10)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")
    for title, table, digits in (
            ("detail ratio of each crop (1 = as much fine detail as the ground truth):", details, 2),
            ("periodicity of each crop (share of the fine detail that is a 4-pixel grid; photos ~0.1):",
             grids, 3)):
        print(title)
        print("| crop | " + " | ".join(table) + " |")
        print("| --- |" + " ---: |" * len(table))
        for i, crop in enumerate(names):
            print(f"| {crop} | " + " | ".join(f"{table[n][i]:.{digits}f}" for n in table) + " |")


if __name__ == "__main__":
    main()
