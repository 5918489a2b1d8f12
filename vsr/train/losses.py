"""Loss presets and terms. Every term is a mean over all its elements (one reduction for all),
so the weights below mean what they say whatever the batch or crop size.

- ``mse``    (SRResNet):        pixel MSE
- ``vgg54``  (SRGAN-VGG54):     content + 1e-3 adversarial
- ``perpix`` (Per-Pix):         pixel MSE + content + 1e-3 adversarial

Pixel MSE (or L1, the recipe's ``pixel_loss``) is on RGB in [0, 1]; content is the MSE of the feature extractor's (already scaled)
features; adversarial is the generator's non-saturating BCE on discriminator logits.
"""

from dataclasses import dataclass

from keras import ops

from vsr.errors import ModelError


@dataclass(frozen=True)
class LossWeights:
    pixel: float = 0.0
    content: float = 0.0
    adversarial: float = 0.0

    @property
    def needs_features(self):
        return self.content > 0

    @property
    def adversarial_on(self):
        return self.adversarial > 0


PRESETS = {
    "mse": LossWeights(pixel=1.0),
    "vgg54": LossWeights(content=1.0, adversarial=1e-3),
    "perpix": LossWeights(pixel=1.0, content=1.0, adversarial=1e-3),
}


def loss_weights(preset, **overrides):
    """The preset's weights with any of ``pixel``, ``content``, ``adversarial`` overridden."""
    if preset not in PRESETS:
        raise ModelError(f"unknown loss preset '{preset}': choose one of {', '.join(PRESETS)}")
    base = PRESETS[preset]
    values = {k: float(overrides[k]) if overrides.get(k) is not None else getattr(base, k)
              for k in ("pixel", "content", "adversarial")}
    return LossWeights(**values)


def pixel_mse(sr, hr):
    return ops.mean(ops.square(ops.cast(sr, "float32") - hr))


def pixel_l1(sr, hr):
    return ops.mean(ops.abs(ops.cast(sr, "float32") - hr))


PIXEL_LOSSES = {"mse": pixel_mse, "l1": pixel_l1}


#: The side of the tiles lattice_mse takes phase means in (vsr.quality.periodicity's window).
LATTICE_WINDOW = 32


def lattice_mse(sr, hr, period, window=LATTICE_WINDOW):
    """The error's grid on the generator's output lattice: in each ``window`` x ``window`` tile, the
    mean of ``sr - hr`` at each of the ``period`` x ``period`` pixel phases and each channel, less
    their mean over phases; the mean square of those.

    A x``period`` generator's pixel shuffles give each output phase its own channels, so a pattern
    that repeats every ``period`` pixels is the cheapest detail it can add; a discriminator's
    gradient pushed it there (training/RESULTS.md: periodicity 0.3-0.6 against photos' 0.11). This
    term is the pixel MSE restricted to that part of the error, so a large weight forbids the grid
    and leaves other texture to the other terms: an aperiodic error leaks into it at
    (period / window)^2 of its energy (1/64), a smooth one hardly at all. Tiles, not the whole crop,
    so that a grid whose phase differs from place to place (along an edge) is seen too. Crops start
    on the lattice (the LR crop is whole pixels) and their sides are multiples of ``window``."""
    d = ops.cast(sr, "float32") - ops.cast(hr, "float32")
    _, h, w, c = d.shape
    steps = window // period
    tiles = ops.reshape(d, (-1, h // window, steps, period, w // window, steps, period, c))
    phases = ops.mean(tiles, axis=(2, 5))  # (n, th, py, tw, px, c)
    phases = phases - ops.mean(phases, axis=(2, 4), keepdims=True)
    return ops.mean(ops.square(phases))


def content_mse(features_sr, features_hr):
    return ops.mean(ops.square(ops.cast(features_sr, "float32") - ops.cast(features_hr, "float32")))


def _bce_logits(target, logits):
    logits = ops.cast(logits, "float32")
    return ops.mean(ops.binary_crossentropy(ops.full_like(logits, target), logits, from_logits=True))


def generator_adversarial(fake_logits):
    """Non-saturating generator loss: -log D(G(x))."""
    return _bce_logits(1.0, fake_logits)


def discriminator_loss(real_logits, fake_logits):
    """-log D(hr) - log(1 - D(G(lr)))."""
    return _bce_logits(1.0, real_logits) + _bce_logits(0.0, fake_logits)


def relativistic_discriminator_loss(real_logits, fake_logits):
    """Relativistic average D (ESRGAN): how much more real each HR crop is than the batch's SR crops,
    and each SR crop less real than the HR crops."""
    real_logits, fake_logits = ops.cast(real_logits, "float32"), ops.cast(fake_logits, "float32")
    return (_bce_logits(1.0, real_logits - ops.mean(fake_logits))
            + _bce_logits(0.0, fake_logits - ops.mean(real_logits)))


def relativistic_generator_adversarial(real_logits, fake_logits):
    """The generator's side of :func:`relativistic_discriminator_loss`: the labels swapped, so it
    gains from both terms (its SR crops look more real, the HR crops less so by comparison)."""
    real_logits, fake_logits = ops.cast(real_logits, "float32"), ops.cast(fake_logits, "float32")
    return (_bce_logits(0.0, real_logits - ops.mean(fake_logits))
            + _bce_logits(1.0, fake_logits - ops.mean(real_logits)))
