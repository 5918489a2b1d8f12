import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]


def shared_datasets():
    """../shared/datasets beside the repository (or $VSR_DATASETS); None when absent."""
    path = Path(os.environ.get("VSR_DATASETS", REPO.parent / "shared" / "datasets"))
    return path if path.is_dir() else None


@pytest.fixture(scope="session", autouse=True)
def _own_cache_folder(tmp_path_factory):
    """Every test, and every process a test starts, uses a cache folder of this session, never the
    user's ~/.cache/vsr (tests of the cache point VSR_CACHE_DIR at their own tmp_path)."""
    saved = {k: os.environ.get(k) for k in ("VSR_CACHE_DIR", "VSR_NO_CACHE")}
    os.environ["VSR_CACHE_DIR"] = str(tmp_path_factory.mktemp("vsr-cache"))
    os.environ.pop("VSR_NO_CACHE", None)
    yield
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture
def tiny_weights(tmp_path):
    """A tiny generator (2 blocks, 8 channels) with non-trivial random weights, saved to a file.

    BatchNorm statistics are randomised too, so tests see the inference-mode BN path.
    """
    import keras

    from vsr.models.srgan import build_generator

    keras.utils.set_random_seed(1)
    model = build_generator(blocks=2, channels=8)
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(rng.normal(0, 0.1, layer.moving_mean.shape))
            layer.moving_variance.assign(rng.uniform(0.5, 1.5, layer.moving_variance.shape))
    path = tmp_path / "tiny.weights.h5"
    model.save_weights(str(path))
    return path


@pytest.fixture
def frames():
    """Three 23x17 RGB uint8 frames of smooth content plus noise (odd sizes on purpose)."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:23, 0:17]
    base = np.stack([x * 9, y * 7, (x + y) * 5], -1).astype(np.float32)
    out = [np.clip(base + rng.normal(0, 20, base.shape), 0, 255) for _ in range(3)]
    return np.stack(out).astype(np.uint8)
