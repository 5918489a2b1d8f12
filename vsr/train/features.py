"""Perceptual feature networks for the content loss, in pure Keras 3.

A feature extractor maps RGB in [0, 1], shape (N, H, W, 3), float, to one feature map
(N, H/stride, W/stride, C). Preprocessing (the network's own input scaling) and the feature
scale are inside the model, so the content loss is just ``mean((phi(sr) - phi(hr))**2)``.

``FEATURE_NETWORKS`` names what can be built with :func:`build_feature_extractor`:

- ``"vgg19"``: Ledig et al.'s phi_{5,4}, the output of VGG19's ``block5_conv4`` after its ReLU
  (the 4th convolution before the 5th max-pool), stride 16, 512 channels. Caffe preprocessing
  (RGB->BGR, 0..255, minus the ImageNet BGR mean). Features are multiplied by 1/12.75, the
  SRGAN paper's rescaling, which makes the feature MSE 1/162.6 (~0.006) of the unscaled one.
- ``"effnet-lite0"``: EfficientNet-Lite0 (ImageNet; converted from the PyTorch state dict by
  ``training/convert_effnet_lite0.py``), output of block 10 (``block10_add``): the last and
  deepest block at stride 16, after its projection BN and residual add, 112 channels.
  Stride 16 is block5_conv4's stride (a 96x96 HR crop gives 6x6 maps for both; the stride-32
  stage would give 3x3), and "deepest before the last downsampling" is phi_{5,4}'s place in
  VGG. A projection output is linear (no activation follows it), the pre-activation choice
  ESRGAN argues for; ReLU6 outputs would clip and stop gradients. Preprocessing: ``x*2 - 1``,
  the model's ``(x - 0.5) / 0.5``. Scale 1/100: on 114 random 96x96 crops of the training
  photos, the feature MSE between HR and its bicubic x4 down-up copy is then about the pixel
  MSE in [0, 1] (measured factor 1/94), which is how the paper chose 1/12.75 for VGG ("VGG
  losses of a scale comparable to the MSE loss").
  Measured on the same crops (feature MSE of bicubic x4 / of a distortion; higher = the layer
  cares more about lost detail than about the distortion): vs Gaussian noise sigma=2/255:
  block10 3.9, block7 (stride 16, 80 ch) 3.5, block4 (stride 8) 3.8, pixels 20.5;
  vs a 1-pixel shift: block10 2.8, block7 4.3, block4 4.1, pixels 0.9 (a pixel loss punishes a
  1-pixel shift like the whole x4 blur); vs JPEG q75: block10 2.4, block7 2.2, block4 2.1.
  No layer dominates; the deepest stride-16 layer was kept for its role.

``weights``: ``None`` is random init (tests); a path loads that file; ``"imagenet"`` loads the
default weights (VGG19: Keras' cache or download; effnet-lite0: ``weights/effnet_lite0.weights.h5``)
and raises :class:`vsr.errors.WeightsError` when they cannot be had.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import keras
from keras import layers, ops

from vsr.errors import ModelError, WeightsError

EFFNET_LITE0_FILE = "effnet_lite0.weights.h5"

# EfficientNet-Lite0 stages: (repeats, kernel, stride, expand ratio, output channels).
# Lite = B0 without squeeze-excite, ReLU6 instead of swish, stem (32) and head (1280) not scaled.
EFFNET_LITE0_STAGES = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
# PyTorch BatchNorm2d(momentum=0.01, eps=1e-3) == Keras BatchNormalization(momentum=0.99, epsilon=1e-3).
BN_MOMENTUM = 0.99
BN_EPSILON = 1e-3

VGG19_NOTOP_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
VGG19_NOTOP_URL = "https://storage.googleapis.com/tensorflow/keras-applications/vgg19/" + VGG19_NOTOP_FILE
VGG19_NOTOP_MD5 = "253f8cb515780f3b799900260a226db6"
IMAGENET_BGR_MEAN = (103.939, 116.779, 123.68)


@dataclass(frozen=True)
class FeatureNetwork:
    """A named perceptual feature layer: where it is, how big it is, how it is scaled."""

    name: str
    layer: str  # the Keras layer whose output is the feature map
    stride: int
    channels: int
    scale: float  # multiplies the features inside the extractor


FEATURE_NETWORKS = {
    "vgg19": FeatureNetwork("vgg19", "block5_conv4", stride=16, channels=512, scale=1 / 12.75),
    "effnet-lite0": FeatureNetwork("effnet-lite0", "block10_add", stride=16, channels=112, scale=0.01),
}


@keras.saving.register_keras_serializable(package="vsr")
class CaffePreprocess(layers.Layer):
    """RGB in [0, 1] -> BGR in 0..255 minus the ImageNet BGR mean (VGG's own preprocessing)."""

    def call(self, x):
        bgr = ops.flip(x, axis=-1) * 255.0
        return bgr - ops.convert_to_tensor(IMAGENET_BGR_MEAN, dtype=bgr.dtype)


def _conv_bn(x, filters, kernel, stride, name, activation=True):
    """Conv (no bias) + BN (+ ReLU6). TF-style 'same' padding, as the original TF model and the
    PyTorch port's Conv2dStaticSamePadding: for stride 2 on an even size the extra row/column of
    zeros goes at the bottom/right (3x3: (0, 1); 5x5: (1, 2))."""
    x = layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False,
                      name=f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    if activation:
        x = layers.ReLU(max_value=6.0, name=f"{name}_relu")(x)
    return x


def _mbconv(x, index, kernel, stride, expand, filters):
    """Inverted residual block without squeeze-excite; ``index`` is the PyTorch ``_blocks.N``."""
    name = f"block{index}"
    inputs = x
    in_channels = x.shape[-1]
    if expand != 1:
        x = _conv_bn(x, in_channels * expand, 1, 1, f"{name}_expand")
    x = layers.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False,
                               name=f"{name}_dw_conv")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=f"{name}_dw_bn")(x)
    x = layers.ReLU(max_value=6.0, name=f"{name}_dw_relu")(x)
    x = _conv_bn(x, filters, 1, 1, f"{name}_project", activation=False)
    if stride == 1 and in_channels == filters:
        x = layers.Add(name=f"{name}_add")([x, inputs])
    return x


def effnet_lite0_blocks():
    """(index, kernel, stride, expand, filters) for each of the 16 blocks, in order."""
    index = 0
    for repeats, kernel, stride, expand, filters in EFFNET_LITE0_STAGES:
        for r in range(repeats):
            yield index, kernel, stride if r == 0 else 1, expand, filters
            index += 1


def build_effnet_lite0(include_top=False, weights=None, input_shape=(None, None, 3)):
    """EfficientNet-Lite0 exactly as the PyTorch port (lukemelas-style) computes it.

    Input: (N, H, W, 3) float, already scaled to [-1, 1] (``(x/255 - 0.5) / 0.5``).
    Output: ``include_top`` -> (N, 1000) ImageNet *logits* (apply softmax yourself);
    otherwise the head's ReLU6 output (N, H/32, W/32, 1280).
    ``weights``: None (random init) or a path to ``effnet_lite0.weights.h5`` (a with-top file,
    as the converter writes; it loads into either variant).
    Layer names follow the PyTorch module names: ``block{N}_expand_conv`` is ``_blocks.N._expand_conv``.
    """
    inputs = keras.Input(shape=input_shape, name="image")
    x = _conv_bn(inputs, STEM_CHANNELS, 3, 2, "stem")
    for index, kernel, stride, expand, filters in effnet_lite0_blocks():
        x = _mbconv(x, index, kernel, stride, expand, filters)
    features = _conv_bn(x, HEAD_CHANNELS, 1, 1, "head")
    x = layers.GlobalAveragePooling2D(name="avg_pool")(features)
    x = layers.Dropout(0.2, name="dropout")(x)
    logits = layers.Dense(1000, name="predictions")(x)
    model = keras.Model(inputs, logits, name="effnet_lite0")
    if weights is not None:
        _load_weights(model, weights)
    if include_top:
        return model
    return keras.Model(inputs, features, name="effnet_lite0_notop")


def _load_weights(model, path):
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file {path} not found: pass an existing file")
    try:
        model.load_weights(str(path))
    except Exception as exc:  # Keras raises ValueError/KeyError/OSError on a mismatched file
        raise WeightsError(f"cannot load {path} into {model.name}: {exc}".splitlines()[0]) from exc


def default_effnet_weights():
    """Path of the converted EfficientNet-Lite0 weights in the bundled weights folder."""
    from vsr.models.weights import weights_dir

    return weights_dir() / EFFNET_LITE0_FILE


def _vgg19_imagenet_weights():
    """Path of Keras' VGG19 no-top ImageNet file: its cache, else a download."""
    try:
        return keras.utils.get_file(VGG19_NOTOP_FILE, VGG19_NOTOP_URL, cache_subdir="models",
                                    file_hash=VGG19_NOTOP_MD5)
    except Exception as exc:  # offline: URL/HTTP/OS errors, all meaning "not available"
        raise WeightsError(
            f"VGG19 ImageNet weights are not in the Keras cache and cannot be downloaded: pass "
            f"--perceptual-weights FILE (a copy of {VGG19_NOTOP_FILE})") from exc


def _vgg19_features(inputs, weights, spec):
    if weights == "imagenet":
        weights = _vgg19_imagenet_weights()
    elif weights is not None and not Path(weights).is_file():
        raise WeightsError(f"VGG19 weights file {weights} not found: pass an existing file")
    x = CaffePreprocess(name="caffe_preprocess")(inputs)
    try:
        vgg = keras.applications.VGG19(include_top=False, weights=weights, input_tensor=x)
    except WeightsError:
        raise
    except Exception as exc:
        raise WeightsError(f"cannot load VGG19 weights {weights}: {exc}".splitlines()[0]) from exc
    return vgg.get_layer(spec.layer).output


def _effnet_features(inputs, weights, spec):
    if weights == "imagenet":
        weights = default_effnet_weights()
        if not Path(weights).is_file():
            raise WeightsError(f"{weights} is missing: run training/convert_effnet_lite0.py "
                               f"or pass --perceptual-weights FILE")
    scaled = layers.Rescaling(2.0, offset=-1.0, name="to_minus1_1")(inputs)
    net = build_effnet_lite0(include_top=True, weights=weights, input_shape=(None, None, 3))
    trunk = keras.Model(net.input, net.get_layer(spec.layer).output)
    return trunk(scaled)


def build_feature_extractor(name, weights=None):
    """A frozen Keras model: RGB in [0, 1] (N, H, W, 3) float -> scaled features (N, H/16, W/16, C).

    ``name``: a key of :data:`FEATURE_NETWORKS`. ``weights``: None (random init), ``"imagenet"``
    or a path (see the module docstring). Raises :class:`vsr.errors.ModelError` for an unknown
    name and :class:`vsr.errors.WeightsError` for weights that cannot be found or loaded.
    """
    if name not in FEATURE_NETWORKS:
        raise ModelError(f"unknown perceptual network '{name}': choose one of "
                         f"{', '.join(FEATURE_NETWORKS)}")
    spec = FEATURE_NETWORKS[name]
    inputs = keras.Input(shape=(None, None, 3), name="rgb01")
    build = _vgg19_features if name == "vgg19" else _effnet_features
    features = build(inputs, weights, spec)
    if spec.scale != 1.0:
        features = layers.Rescaling(spec.scale, name="feature_scale")(features)
    model = keras.Model(inputs, features, name=f"{name.replace('-', '_')}_features")
    model.trainable = False
    return model
