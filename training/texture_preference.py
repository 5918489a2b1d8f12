"""Does a loss prefer invented texture to a smooth output? (issue #12, the Per-Pix phase)

    python training/texture_preference.py [--generator weights/mse.weights.h5] [--crops 32] [--min-detail 3]

A x4 generator cannot know the phase of fine texture, so a loss that rewards texture must prefer
*plausible but misaligned* texture to none. This adds the ground truth's high-pass part (the image
minus a Gaussian blur of sigma 1) to a generator's outputs on training crops, either in place or
rolled by 3 pixels (real texture of the right kind, out of phase), or taken from another crop (the
wrong kind), and prints each loss's preference ``1 - L(sr + texture) / L(sr)`` (> 0: the loss would
rather have the texture). First for the pixel MSE and every EfficientNet-Lite0 block, then for the
Per-Pix sum pixel + w * content (block 10, scaled as in training) at a few amplitudes.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--generator", default=str(REPO / "weights" / "mse.weights.h5"))
    ap.add_argument("--data", default=str(REPO / "data" / "photos"))
    ap.add_argument("--crops", type=int, default=32)
    ap.add_argument("--weights", default="1,3,5,10", help="content weights w for the Per-Pix sum")
    ap.add_argument("--min-detail", type=float, default=0.0,
                    help="draw crops as a recipe with this min_detail does (0: every crop as drawn)")
    args = ap.parse_args()

    import cv2
    import keras

    from vsr.models.srgan import build_generator
    from vsr.train.data import PairedImages
    from vsr.train.features import FEATURE_NETWORKS, build_effnet_lite0, default_effnet_weights

    lr, hr = PairedImages([args.data]).batch(11, 0, args.crops, 96, args.min_detail)
    generator = build_generator()
    generator.load_weights(args.generator)
    sr = np.clip(generator(lr, training=False).numpy(), 0, 1)

    texture = hr - np.stack([cv2.GaussianBlur(x, (0, 0), 1.0) for x in hr])
    variants = {"in place": texture, "rolled 3 px": np.roll(texture, (3, 3), axis=(1, 2)),
                "other crop": np.roll(texture, 1, axis=0)}

    net = build_effnet_lite0(include_top=True, weights=default_effnet_weights())
    names = [layer.name for layer in net.layers if layer.name == "stem_relu" or layer.name.endswith("_add")]
    trunk = keras.Model(net.input, [net.get_layer(n).output for n in names])
    truth = [f.numpy() for f in trunk(hr * 2.0 - 1.0)]

    def losses(x):
        """Feature MSE at every block, then the pixel MSE."""
        x = np.clip(x, 0, 1)
        feats = [f.numpy() for f in trunk(x * 2.0 - 1.0)]
        return [float(np.mean((a - b) ** 2)) for a, b in zip(feats, truth)] + [float(np.mean((x - hr) ** 2))]

    base = losses(sr)
    added = {k: losses(sr + t) for k, t in variants.items()}
    print(f"{len(sr)} crops of {args.data} (min_detail {args.min_detail:g}), generator {args.generator}")
    print(f"| loss | L(sr) | {' | '.join(variants)} |\n| --- | ---: |{' ---: |' * len(variants)}")
    for i, name in enumerate(names + ["pixel MSE"]):
        print(f"| {name} | {base[i]:.4g} | " + " | ".join(f"{1 - added[k][i] / base[i]:+.3f}" for k in variants) + " |")

    spec = FEATURE_NETWORKS["effnet-lite0"]
    at = names.index(spec.layer)

    def per_pix(values, w):
        return values[-1] + w * spec.scale ** 2 * values[at]

    amplitudes = (0.25, 0.5, 1.0)
    print(f"\nPer-Pix pixel + w * content ({spec.layer}), texture rolled 3 px at amplitude a:")
    print("| w | " + " | ".join(f"a = {a}" for a in amplitudes) + " |\n| ---: |" + " ---: |" * len(amplitudes))
    rolled = {a: losses(sr + a * variants["rolled 3 px"]) for a in amplitudes}
    for w in (float(v) for v in args.weights.split(",")):
        b = per_pix(base, w)
        print(f"| {w:g} | " + " | ".join(f"{1 - per_pix(rolled[a], w) / b:+.3f}" for a in amplitudes) + " |")


if __name__ == "__main__":
    main()
