"""Fold the generator's inference-mode BatchNorm into the convolutions before it.

In inference BatchNorm is an affine map per channel, ``y = gamma * (x - mean) / sqrt(var + eps) + beta``,
so a conv followed by it equals one conv with scaled kernels and a bias:
``W' = W * k``, ``b' = (b - mean) * k + beta`` with ``k = gamma / sqrt(var + eps)``.
The folded network runs a third fewer ops per residual block and lets every runtime fuse
bias + PReLU into the conv (LiteRT's XNNPACK delegate only takes convs it can see whole).
Pure Keras: the result is a ``build_generator(..., batchnorm=False)`` model with the same layer names.
"""

import keras
import numpy as np


def inference_generator(model, dtype=None):
    """``model`` prepared for inference: BatchNorm folded (``fold_batchnorm``), then the tail moved
    before the last pixel shuffle (``subpixel_tail``). Same outputs within float rounding."""
    return subpixel_tail(fold_batchnorm(model, dtype=dtype))


def fold_batchnorm(model, dtype=None):
    """A BatchNorm-free copy of an SRGAN generator built by ``build_generator``.

    Args:
        model: the generator with BatchNorm (any dtype policy; its variables are read as float32).
        dtype: dtype policy name of the folded model (None = float32).
    Returns:
        A new Keras model whose output equals ``model(x, training=False)`` within float rounding.
    """
    from vsr.models.srgan import build_generator

    arch = generator_arch(model)
    folded = build_generator(**arch, dtype=dtype, name=model.name, batchnorm=False)
    bns = {l.name: l for l in model.layers if isinstance(l, keras.layers.BatchNormalization)}
    for layer in folded.layers:
        if not layer.weights:
            continue
        source = model.get_layer(layer.name)
        values = [np.asarray(keras.ops.convert_to_numpy(v), np.float64) for v in source.weights]
        bn = bns.get(_bn_after(layer.name))
        if bn is not None:
            values = _fold(values, bn)
        layer.set_weights([v.astype(np.float32) for v in values])
    return folded


def generator_arch(model):
    """``{"blocks", "channels", "scale"}`` of a generator built by ``build_generator``."""
    names = [l.name for l in model.layers]
    blocks = sum(1 for n in names if n.startswith("res") and n.endswith("_conv1"))
    channels = model.get_layer("head_conv").filters
    scale = 2 ** sum(1 for n in names if n.startswith("up") and n.endswith("_conv"))
    return {"blocks": blocks, "channels": channels, "scale": scale}


def _bn_after(conv_name):
    # build_generator's naming: res{b}_conv{k} -> res{b}_bn{k}, body_conv -> body_bn.
    return conv_name.replace("_conv", "_bn")


def _fold(conv_values, bn):
    kernel = conv_values[0]
    bias = conv_values[1] if len(conv_values) > 1 else np.zeros(kernel.shape[-1])
    gamma, beta, mean, var = (np.asarray(keras.ops.convert_to_numpy(v), np.float64)
                              for v in (bn.gamma, bn.beta, bn.moving_mean, bn.moving_variance))
    k = gamma / np.sqrt(var + bn.epsilon)
    return [kernel * k, (bias - mean) * k + beta]


def subpixel_tail(folded):
    """Rewrite the last pixel shuffle + PReLU + tail conv to run at the shuffle's input resolution.

    The tail conv (kxk, C -> 3) at full output resolution has 3 output channels, which a GEMM pads
    to its register width (8-16) and so wastes most of its work. The same map on the pre-shuffle
    grid is a ceil((k+1)/2)-wide conv from 4C channels to 12 (= 2x2 output pixels x 3), followed by
    a depth-to-space: ~1.2x the multiply-adds, 4x the useful GEMM width. PReLU commutes with the
    shuffle when its per-channel slopes are tiled the shuffle's way. Exact up to float rounding.
    """
    arch = generator_arch(folded)
    last = arch["scale"] // 2 - 1
    up_conv = folded.get_layer(f"up{last}_conv")
    prelu = folded.get_layer(f"up{last}_prelu")
    tail = folded.get_layer("tail_conv")
    alpha = np.asarray(keras.ops.convert_to_numpy(prelu.alpha)).reshape(-1)
    kernel = np.asarray(keras.ops.convert_to_numpy(tail.kernel))
    bias = np.asarray(keras.ops.convert_to_numpy(tail.bias))
    k, _, c, out = kernel.shape
    half = k // 2
    reach = (half + 1) // 2  # low-res neighbours each side an output pixel's window touches
    size = 2 * reach + 1
    sub = np.zeros((size, size, 4 * c, 4 * out), np.float32)
    for ky in range(size):
        for kx in range(size):
            for a in range(2):
                for b in range(2):
                    for i in range(2):
                        for j in range(2):
                            dy = 2 * (ky - reach) + a - i + half
                            dx = 2 * (kx - reach) + b - j + half
                            if 0 <= dy < k and 0 <= dx < k:
                                sub[ky, kx, (a * 2 + b) * c:(a * 2 + b + 1) * c,
                                    (i * 2 + j) * out:(i * 2 + j + 1) * out] = kernel[dy, dx]
    # XNNPACK's x86 GEMM kernels are 8 or 16 outputs wide: 12 runs as 8 + a ragged 4 and takes
    # 1.35x as long as 16 (benchmarks/engine_speed.py), so compute 16 and drop 4.
    width = -(-4 * out // 8) * 8
    sub = np.pad(sub, [(0, 0)] * 3 + [(0, width - 4 * out)])
    dtype = tail.dtype_policy.name
    x = up_conv.output
    x = keras.layers.PReLU(shared_axes=[1, 2], name=f"up{last}_prelu_sub", dtype=dtype)(x)
    x = keras.layers.Conv2D(width, size, padding="same", name="tail_conv_sub", dtype=dtype)(x)
    if width != 4 * out:
        x = x[..., :4 * out]
    from vsr.models.srgan import PixelShuffle

    x = PixelShuffle(2, name="tail_shuffle", dtype=dtype)(x)
    y = keras.layers.Activation("linear", dtype="float32", name="sr")(x)
    model = keras.Model(folded.input, y, name=folded.name)
    model.get_layer(f"up{last}_prelu_sub").set_weights([np.tile(alpha, 4).reshape(1, 1, -1)])
    model.get_layer("tail_conv_sub").set_weights([sub, np.pad(np.tile(bias, 4), (0, width - 4 * out))])
    return model
