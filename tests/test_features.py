"""Perceptual feature networks (vsr.train.features). No torch, no network."""

import importlib.util
from pathlib import Path

import keras
import numpy as np
import pytest

from vsr.errors import ModelError, WeightsError
from vsr.train import features
from vsr.train.features import (
    FEATURE_NETWORKS,
    CaffePreprocess,
    build_effnet_lite0,
    build_feature_extractor,
)

REPO = Path(__file__).resolve().parents[1]
EFFNET_WEIGHTS = REPO / "weights" / features.EFFNET_LITE0_FILE
# Measured by training/convert_effnet_lite0.py with the PyTorch model (see weights/effnet_lite0.LICENSE.md).
TORCH_P_EGYPTIAN_CAT = 0.7837
needs_effnet_weights = pytest.mark.skipif(not EFFNET_WEIGHTS.is_file(),
                                          reason="weights/effnet_lite0.weights.h5 absent")


def converter():
    """training/convert_effnet_lite0.py as a module (it imports torch only inside functions)."""
    spec = importlib.util.spec_from_file_location("convert_effnet_lite0",
                                                  REPO / "training" / "convert_effnet_lite0.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@needs_effnet_weights
def test_converted_effnet_classifies_chelsea_as_egyptian_cat():
    convert = converter()
    model = build_effnet_lite0(include_top=True, weights=EFFNET_WEIGHTS)
    p = convert.softmax(np.asarray(model(convert.chelsea_224(), training=False)))[0]
    assert int(p.argmax()) == convert.EGYPTIAN_CAT
    assert abs(float(p[convert.EGYPTIAN_CAT]) - TORCH_P_EGYPTIAN_CAT) < 0.05


@needs_effnet_weights
def test_effnet_extractor_with_weights_is_frozen_and_scaled():
    extractor = build_feature_extractor("effnet-lite0", weights=EFFNET_WEIGHTS)
    assert not extractor.trainable and not extractor.trainable_weights
    net = build_effnet_lite0(include_top=True, weights=EFFNET_WEIGHTS)
    trunk = keras.Model(net.input, net.get_layer("block10_add").output)
    x = np.random.default_rng(0).uniform(0, 1, (1, 64, 64, 3)).astype(np.float32)
    expected = np.asarray(trunk(x * 2 - 1)) * FEATURE_NETWORKS["effnet-lite0"].scale
    np.testing.assert_allclose(np.asarray(extractor(x)), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["effnet-lite0", "vgg19"])
def test_extractor_shape_for_96x96_crops(name):
    spec = FEATURE_NETWORKS[name]
    extractor = build_feature_extractor(name, weights=None)
    out = extractor(np.zeros((2, 96, 96, 3), np.float32))
    assert tuple(out.shape) == (2, 96 // spec.stride, 96 // spec.stride, spec.channels)


def test_vgg19_features_are_block5_conv4_after_relu():
    extractor = build_feature_extractor("vgg19", weights=None)
    layer = extractor.get_layer("block5_conv4")
    assert layer.activation is keras.activations.relu
    out = np.asarray(extractor(np.random.default_rng(0).uniform(0, 1, (1, 32, 32, 3)).astype(np.float32)))
    assert out.shape == (1, 2, 2, 512) and out.min() >= 0.0


def test_caffe_preprocess_is_bgr_0_255_minus_imagenet_mean():
    out = np.asarray(CaffePreprocess()(np.array([[[[1.0, 0.0, 0.5]]]], np.float32)))
    np.testing.assert_allclose(out[0, 0, 0], [127.5 - 103.939, -116.779, 255.0 - 123.68], rtol=1e-6)


def test_vgg19_imagenet_offline_raises_weights_error(monkeypatch):
    def offline(*args, **kwargs):
        raise Exception("URL fetch failure: no network")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(WeightsError, match="--perceptual-weights FILE"):
        build_feature_extractor("vgg19", weights="imagenet")


def test_missing_weights_file_and_unknown_name():
    with pytest.raises(WeightsError):
        build_feature_extractor("vgg19", weights="/nonexistent/vgg19.h5")
    with pytest.raises(WeightsError):
        build_effnet_lite0(weights="/nonexistent/effnet.weights.h5")
    with pytest.raises(ModelError, match="effnet-lite0"):
        build_feature_extractor("vgg16")
