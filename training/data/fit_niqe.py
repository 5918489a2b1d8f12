"""Fit the pristine model of vsr's NIQE (vsr/quality/niqe.py) to the training photos.

    python training/data/fit_niqe.py                      # data/photos -> vsr/quality/niqe_pristine.json

The original NIQE model came from 125 photos that are not redistributable here; the training photos
of training/data/gather_photos.py are real, sharp camera images (2x area-downscaled PNGs), so the
model describes the same kind of image the generator should produce. Blocks of 96x96 whose local
deviation reaches 0.75 of each photo's sharpest block are kept, as in the paper.
"""

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from vsr.quality.niqe import PRISTINE_FILE, fit_pristine  # noqa: E402
from vsr.train.data import find_images, read_rgb  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", default=str(REPO / "data" / "photos"))
    ap.add_argument("--out", default=str(PRISTINE_FILE))
    args = ap.parse_args()
    paths = find_images([args.photos])
    model = fit_pristine([read_rgb(p) for p in paths])
    Path(args.out).write_text(json.dumps({
        "source": f"{len(paths)} photos of training/data/gather_photos.py ({Path(args.photos).name}), "
                  f"{model['blocks']} sharp 96x96 blocks",
        "blocks": model["blocks"], "mu": model["mu"].round(8).tolist(),
        "cov": model["cov"].round(10).tolist()}, indent=None) + "\n")
    print(f"{args.out}: {model['blocks']} blocks from {len(paths)} photos")


if __name__ == "__main__":
    main()
