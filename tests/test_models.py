import numpy as np
import pytest

from vsr.errors import ModelError, WeightsError
from vsr.models import registry, weights
from vsr.models.srgan import PixelShuffle, build_discriminator, build_generator


def test_pixel_shuffle_matches_tensorflow_depth_to_space():
    import tensorflow as tf

    x = np.random.default_rng(0).normal(size=(2, 3, 5, 12)).astype(np.float32)
    ours = np.asarray(PixelShuffle(2)(x))
    np.testing.assert_array_equal(ours, tf.nn.depth_to_space(x, 2).numpy())


def test_pixel_shuffle_serialises():
    import keras

    layer = PixelShuffle(2, name="ps")
    clone = keras.layers.deserialize(keras.layers.serialize(layer))
    assert isinstance(clone, PixelShuffle) and clone.factor == 2


@pytest.mark.parametrize("h,w", [(1, 1), (7, 13), (16, 9)])
def test_generator_any_size(h, w):
    g = build_generator(blocks=1, channels=8)
    assert g(np.zeros((2, h, w, 3), np.float32)).shape == (2, 4 * h, 4 * w, 3)


def test_generator_paper_size_and_scale2():
    assert build_generator().count_params() == 1_552_771  # SRResNet: 1.55 M parameters
    assert build_generator(blocks=1, channels=8, scale=2)(np.zeros((1, 5, 6, 3))).shape == (1, 10, 12, 3)


def test_parameter_count_formula_matches_keras():
    for arch in [(16, 64, 4), (2, 16, 4), (3, 8, 2)]:
        assert registry.generator_parameter_count(*arch) == build_generator(*arch).count_params()


def test_discriminator_logits():
    d = build_discriminator(channels=8, hr_size=32)
    assert d(np.zeros((3, 32, 32, 3), np.float32)).shape == (3, 1)
    assert [l.strides[0] for l in d.layers if l.name.endswith("_conv")] == [1, 2] * 4


def test_registry_names_and_unknown_model():
    assert {"perpix", "mse", "bicubic"} <= set(registry.MODELS)
    with pytest.raises(ModelError, match="unknown model 'nope'.*perpix"):
        registry.load_model("nope")


def test_describe_models_lists_every_model():
    text = "\n".join(registry.describe_models())
    for name in registry.MODELS:
        assert name in text
    assert "1,552,771" in text


def test_infer_arch_from_file(tmp_path):
    g = build_generator(blocks=3, channels=8, scale=2)
    g.save_weights(str(tmp_path / "g.weights.h5"))
    assert weights.infer_generator_arch(tmp_path / "g.weights.h5") == {"blocks": 3, "channels": 8, "scale": 2}


def _manifest(folder, name, file, sha):
    weights.write_manifest_entry(weights.WeightsEntry(name, file, sha, {"blocks": 2, "channels": 8}), folder)


def test_bundled_weights_checked_by_sha256(tmp_path, monkeypatch, tiny_weights):
    monkeypatch.setenv("VSR_WEIGHTS_DIR", str(tmp_path))
    target = tmp_path / "mse.weights.h5"
    target.write_bytes(tiny_weights.read_bytes())
    _manifest(tmp_path, "mse", target.name, weights.sha256_of(target))
    up = registry.load_model("mse", batch=2)
    assert up.upscale(np.zeros((1, 5, 5, 3), np.uint8)).shape == (1, 20, 20, 3)

    target.write_bytes(target.read_bytes()[:1000])  # truncated download
    with pytest.raises(WeightsError, match="corrupt or truncated"):
        registry.load_model("mse")
    target.unlink()
    with pytest.raises(WeightsError, match="mse.weights.h5 is missing.*--weights"):
        registry.load_model("mse")


def test_missing_manifest_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("VSR_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(WeightsError, match="no weights for model 'perpix' yet") as err:
        registry.load_model("perpix")
    # every hint is one the user can follow with the command at hand
    # (no option name that only one command has: `upscale` takes --model, `bench` --models)
    assert "pick one that has them (bicubic;" in str(err.value) and "--models perpix=FILE" in str(err.value)
    assert "--model bicubic" not in str(err.value)
    assert "full clone" not in str(err.value)


def test_user_weights_file_and_bad_files(tmp_path, tiny_weights):
    up = registry.load_model("perpix", weights=tiny_weights)
    assert up.scale == 4 and up.pad >= 2 * 2 + 4
    junk = tmp_path / "junk.weights.h5"
    junk.write_bytes(b"not hdf5")
    with pytest.raises(WeightsError, match="cannot read weights file"):
        registry.load_model("perpix", weights=junk)
    cut = tmp_path / "cut.weights.h5"
    cut.write_bytes(tiny_weights.read_bytes()[:4096])
    with pytest.raises(WeightsError):
        registry.load_model("perpix", weights=cut)


def test_bad_precision():
    with pytest.raises(ModelError, match="precision"):
        registry.load_model("mse", weights="x", precision="fp8")


def _generator_with_batchnorm_stats(seed=2, **arch):
    import keras

    keras.utils.set_random_seed(seed)
    g = build_generator(**arch)
    rng = np.random.default_rng(seed)
    for layer in g.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.gamma.shape
            layer.gamma.assign(rng.uniform(0.5, 1.5, n))
            layer.beta.assign(rng.normal(0, 0.1, n))
            layer.moving_mean.assign(rng.normal(0, 0.1, n))
            layer.moving_variance.assign(rng.uniform(0.5, 1.5, n))
    return g


@pytest.mark.parametrize("scale", [4, 2])
def test_folded_generator_equals_batchnorm_generator_in_inference(scale):
    from vsr.models.fold import fold_batchnorm, inference_generator, subpixel_tail

    g = _generator_with_batchnorm_stats(blocks=2, channels=8, scale=scale)
    folded = fold_batchnorm(g)
    assert not [l for l in folded.layers if "BatchNormalization" in type(l).__name__]
    assert folded.count_params() < g.count_params()
    x = np.random.default_rng(0).random((2, 13, 17, 3)).astype(np.float32)
    ref = np.asarray(g(x, training=False))
    for model in (folded, subpixel_tail(folded), inference_generator(g)):
        got = np.asarray(model(x))
        assert got.shape == ref.shape
        np.testing.assert_allclose(got, ref, atol=2e-5)
    # Not vacuous: the BatchNorm statistics matter.
    assert np.abs(np.asarray(build_generator(blocks=2, channels=8, scale=scale)(x)) - ref).max() > 1e-3


def test_subpixel_tail_keeps_the_image_border():
    """The rewritten tail sees the same zero padding as the original at every edge and size."""
    from vsr.models.fold import inference_generator

    g = _generator_with_batchnorm_stats(blocks=1, channels=4)
    fast = inference_generator(g)
    for h, w in [(1, 1), (2, 3), (5, 4)]:
        x = np.random.default_rng(h * w).random((1, h, w, 3)).astype(np.float32)
        np.testing.assert_allclose(np.asarray(fast(x)), np.asarray(g(x, training=False)), atol=2e-5)


def test_weights_files_keep_batchnorm(tiny_weights):
    """Folding happens after loading: weights files (BatchNorm included) are unchanged."""
    model = registry.load_generator(tiny_weights, weights.infer_generator_arch(tiny_weights), inference=False)
    assert any("BatchNormalization" in type(l).__name__ for l in model.layers)


def test_precision_names():
    assert registry.PRECISIONS == ("float32", "bf16", "mixed")
    assert registry.dtype_policy("bf16") == "mixed_bfloat16"
