"""Arithmetic of the generator's architecture that needs no Keras (importing it imports TensorFlow)."""


def receptive_radius(blocks=16, scale=4):
    """Input pixels of context each side that influence one output pixel (rounded up).

    9x9 head (4) + 2 convs per block (2 each) + body conv (1) + the up-convs and 9x9 tail measured
    at the input resolution (1 + 1/2 + ... and 4/scale), plus one for rounding.
    """
    radius = 4 + 2 * blocks + 1
    up = sum(1.0 / 2**u for u in range(scale // 2))
    return int(radius + up + 4.0 / scale + 1)
