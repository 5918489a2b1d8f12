"""SRGAN networks (Ledig et al. 2017) in pure Keras 3.

Convention used everywhere in vsr: the generator takes RGB in [0, 1] and returns RGB whose
intended range is [0, 1] (a linear output layer; callers clip). The discriminator takes the same
[0, 1] RGB and returns one logit per image.

Only the networks live here: losses, data and training wrappers are in ``vsr.train``.
"""

import keras
from keras import layers, ops

from vsr.models.arch import receptive_radius  # noqa: F401 - its home before; needs no Keras


@keras.saving.register_keras_serializable(package="vsr")
class PixelShuffle(layers.Layer):
    """Depth-to-space: (N, H, W, C*r*r) -> (N, H*r, W*r, C), TensorFlow's channel order.

    ``out[n, h*r + i, w*r + j, c] = in[n, h, w, (i*r + j)*C + c]``.
    """

    def __init__(self, factor=2, **kwargs):
        super().__init__(**kwargs)
        self.factor = int(factor)

    def call(self, x):
        r = self.factor
        if hasattr(ops, "depth_to_space"):
            # One native op (Keras >= 3.9): TFLite/XNNPACK and OpenVINO run it directly, where the
            # 6-D transpose below leaves the accelerated path.
            return ops.depth_to_space(x, r)
        shape = ops.shape(x)
        n, h, w, c = shape[0], shape[1], shape[2], x.shape[-1]
        out_c = c // (r * r)
        x = ops.reshape(x, (n, h, w, r, r, out_c))
        x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
        return ops.reshape(x, (n, h * r, w * r, out_c))

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        r = self.factor
        return (n, None if h is None else h * r, None if w is None else w * r, c // (r * r))

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


def _prelu(name, **kw):
    # One slope per channel, shared over H and W so the network stays fully convolutional;
    # 0.25 is He et al.'s initial slope (Keras would start at 0, i.e. a ReLU).
    return layers.PReLU(shared_axes=[1, 2], alpha_initializer=keras.initializers.Constant(0.25),
                        name=name, **kw)


def build_generator(blocks=16, channels=64, scale=4, dtype=None, name="srgan_generator",
                    batchnorm=True, zero_init_residual=False):
    """SRResNet / SRGAN generator.

    Args:
        blocks: residual blocks (16 in the paper).
        channels: feature width (64 in the paper).
        scale: 2 or 4 (one or two pixel-shuffle x2 stages).
        dtype: optional Keras dtype policy name (e.g. ``"mixed_bfloat16"``).
        batchnorm: False builds the inference variant with every BatchNorm folded away: the convs
            it followed get biases instead (same layer names; ``vsr.models.fold`` fills it).
        zero_init_residual: start each residual block's last BatchNorm scale at 0 (Goyal et al.
            2017), so every block starts as the identity; an initialisation choice only, the
            network is the same.

    Input: (N, H, W, 3) RGB float in [0, 1], any H and W. Output: (N, scale*H, scale*W, 3), float32.
    """
    if scale not in (2, 4):
        raise ValueError(f"scale must be 2 or 4, got {scale}")
    kw = {"dtype": dtype} if dtype else {}

    def conv_bn(y, conv_name, bn_name, gamma="ones"):
        y = layers.Conv2D(channels, 3, padding="same", use_bias=not batchnorm, name=conv_name, **kw)(y)
        if batchnorm:
            y = layers.BatchNormalization(momentum=0.9, gamma_initializer=gamma, name=bn_name, **kw)(y)
        return y

    inp = keras.Input(shape=(None, None, 3), name="lr")
    x = layers.Conv2D(channels, 9, padding="same", name="head_conv", **kw)(inp)
    x = _prelu("head_prelu", **kw)(x)
    head = x
    for b in range(blocks):
        y = conv_bn(x, f"res{b}_conv1", f"res{b}_bn1")
        y = _prelu(f"res{b}_prelu", **kw)(y)
        y = conv_bn(y, f"res{b}_conv2", f"res{b}_bn2", "zeros" if zero_init_residual else "ones")
        x = layers.Add(name=f"res{b}_add", **kw)([x, y])
    x = conv_bn(x, "body_conv", "body_bn")
    x = layers.Add(name="body_add", **kw)([head, x])
    for u in range(scale // 2):
        x = layers.Conv2D(channels * 4, 3, padding="same", name=f"up{u}_conv", **kw)(x)
        x = PixelShuffle(2, name=f"up{u}_shuffle", **kw)(x)
        x = _prelu(f"up{u}_prelu", **kw)(x)
    out = layers.Conv2D(3, 9, padding="same", name="tail_conv", **kw)(x)
    out = layers.Activation("linear", dtype="float32", name="sr")(out)
    return keras.Model(inp, out, name=name)


def build_discriminator(channels=64, hr_size=None, name="srgan_discriminator", dtype=None):
    """SRGAN discriminator: 8 conv blocks (64-64-128-128-256-256-512-512, strides 1/2 alternating,
    LeakyReLU 0.2, BatchNorm from the second block), dense 1024, LeakyReLU, dense 1 logit.

    Input: (N, S, S, 3) RGB in [0, 1] (``hr_size`` S fixed for the dense layer; global average
    pooling is used when ``hr_size`` is None so any size works). Output: (N, 1) logits, float32.
    ``dtype``: optional Keras dtype policy name of every layer but the logit.
    """
    kw = {"dtype": dtype} if dtype else {}
    inp = keras.Input(shape=(hr_size, hr_size, 3), name="hr")
    x = layers.Rescaling(2.0, offset=-1.0, name="to_pm1", **kw)(inp)
    widths = [channels, channels, channels * 2, channels * 2, channels * 4, channels * 4,
              channels * 8, channels * 8]
    for i, w in enumerate(widths):
        x = layers.Conv2D(w, 3, strides=1 + i % 2, padding="same", name=f"d{i}_conv", **kw)(x)
        if i > 0:
            x = layers.BatchNormalization(momentum=0.9, name=f"d{i}_bn", **kw)(x)
        x = layers.LeakyReLU(negative_slope=0.2, name=f"d{i}_lrelu", **kw)(x)
    x = layers.Flatten(name="flatten", **kw)(x) if hr_size else layers.GlobalAveragePooling2D(name="gap", **kw)(x)
    x = layers.Dense(channels * 16, name="fc1", **kw)(x)
    x = layers.LeakyReLU(negative_slope=0.2, name="fc1_lrelu", **kw)(x)
    out = layers.Dense(1, dtype="float32", name="logit")(x)
    return keras.Model(inp, out, name=name)
