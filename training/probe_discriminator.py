"""Does a run's discriminator still tell SR crops from HR crops? (issue #12, the Per-Pix phase)

    python training/probe_discriminator.py grip runs/perpix7/checkpoints/step-0017000
    python training/probe_discriminator.py learn weights/milestones/perpix-step15514 [--steps 150] [--joint-only]

``grip``: one batch of 16 training crops through the checkpoint's discriminator: each HR crop's logit
next to the logit of the SR crop made from it. Equal logits (and a D loss of 2 ln 2 in the log) mean
the adversarial term asks the generator for nothing.
``learn``: trains fresh discriminators against the checkpoint's fixed generator, real and fake in one
batch and apart, and prints the D loss every 25 steps and the accuracy on 4 held-out batches.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=["grip", "learn"])
    ap.add_argument("checkpoint", type=Path, help="a checkpoint folder (generator.weights.h5, ...)")
    ap.add_argument("--data", default=str(REPO / "data" / "photos"))
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--joint-only", action="store_true", help="learn: skip the real-and-fake-apart D")
    args = ap.parse_args()

    import keras
    import tensorflow as tf

    from vsr.models.srgan import build_discriminator, build_generator
    from vsr.train import losses
    from vsr.train.data import PairedImages

    images = PairedImages([args.data])
    generator = build_generator()
    generator.load_weights(str(args.checkpoint / "generator.weights.h5"))

    def batch(seed, step):
        lr, hr = images.batch(seed, step, 16, 96)
        lr, hr = tf.constant(lr), tf.constant(hr)
        return hr, generator(lr, training=False)

    if args.mode == "grip":
        d = build_discriminator(64, hr_size=96)
        d.load_weights(str(args.checkpoint / "discriminator.weights.h5"))
        hr, sr = batch(7, 5000)
        real, fake = tf.split(d(tf.concat([hr, sr], 0), training=False), 2)
        real, fake = real.numpy().ravel(), fake.numpy().ravel()
        print("HR logits", np.round(real, 2))
        print("SR logits", np.round(fake, 2))
        print(f"mean |HR - SR| {np.mean(np.abs(real - fake)):.3f}, accuracy {np.mean(np.r_[real > 0, fake < 0]):.2f}")
        return

    for joint in (True,) if args.joint_only else (True, False):
        keras.utils.set_random_seed(0)
        d = build_discriminator(64, hr_size=96)
        opt = keras.optimizers.Adam(1e-4)

        @tf.function
        def step(hr, sr):
            with tf.GradientTape() as tape:
                if joint:
                    real, fake = tf.split(d(tf.concat([hr, sr], 0), training=True), 2)
                else:
                    real, fake = d(hr, training=True), d(sr, training=True)
                loss = losses.discriminator_loss(real, fake)
            opt.apply_gradients(zip(tape.gradient(loss, d.trainable_variables), d.trainable_variables))
            return loss

        seen = [float(step(*batch(7, s))) for s in range(args.steps)]
        right = []
        for s in range(1000, 1004):
            hr, sr = batch(7, s)
            right.append(np.mean(np.r_[d(hr).numpy().ravel() > 0, d(sr).numpy().ravel() < 0]))
        print("joint" if joint else "apart", "D loss per 25 steps",
              [round(float(np.mean(seen[i:i + 25])), 3) for i in range(0, len(seen), 25)],
              f"held-out accuracy {np.mean(right):.2f}", flush=True)


if __name__ == "__main__":
    main()
