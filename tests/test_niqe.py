"""NIQE (vsr.quality.niqe): the AGGD fit on known distributions, and the score's direction on real
photographs (scikit-image's bundled ones, and Set5/Set14 when the shared datasets are present)."""

import numpy as np
import pytest

from vsr.quality import crop_to_multiple, degrade, imresize
from vsr.quality.niqe import aggd_fit, fit_pristine, niqe, niqe_features


def test_aggd_fit_recovers_gaussian_and_laplacian_shapes():
    rng = np.random.default_rng(0)
    shape, left, right = aggd_fit(rng.normal(0, 3, 400_000))
    assert abs(shape - 2) < 0.03
    np.testing.assert_allclose([left, right], 3 * np.sqrt(2), rtol=0.01)  # GGD scale = sqrt(2) sigma
    assert abs(aggd_fit(rng.laplace(0, 1, 400_000))[0] - 1) < 0.03
    skewed = np.concatenate([-rng.exponential(1, 200_000), rng.exponential(3, 200_000)])
    _, left, right = aggd_fit(skewed)
    assert 2.5 < right / left < 3.5
    assert np.isnan(aggd_fit(np.ones(10))[0])  # one-signed samples have no AGGD fit


def test_features_have_36_per_block_and_need_96_pixels():
    img = np.random.default_rng(1).integers(0, 256, (200, 300, 3), dtype=np.uint8)
    assert niqe_features(img).shape == (2 * 3, 36)
    with pytest.raises(ValueError, match="96x96"):
        niqe_features(img[:90])


def _photos():
    data = pytest.importorskip("skimage.data")
    return [crop_to_multiple(getattr(data, n)(), 4) for n in ("astronaut", "coffee", "chelsea")]


def test_photos_score_more_natural_than_their_bicubic_and_blurred_versions():
    import cv2

    for hr in _photos():
        bicubic = imresize(degrade(hr, 4), 4)
        blurred = cv2.GaussianBlur(hr, (0, 0), 2)
        assert niqe(hr, 4) + 0.5 < min(niqe(bicubic, 4), niqe(blurred, 4))


def test_own_pristine_model_and_identical_images():
    photos = _photos()
    model = fit_pristine(photos)
    assert model["mu"].shape == (36,) and model["cov"].shape == (36, 36) and model["blocks"] >= 5
    # a model fitted to these photos finds them more natural than noise
    noise = np.random.default_rng(2).integers(0, 256, photos[0].shape, dtype=np.uint8)
    assert niqe(photos[0], pristine=model) < niqe(noise, pristine=model)


def test_set5_set14_ground_truth_beats_bicubic_on_average():
    from vsr.bench.datasets import open_dataset

    try:
        sets = [open_dataset("set5"), open_dataset("set14")]
    except Exception as err:  # no ../shared/datasets on a user's clone
        pytest.skip(f"benchmark images not available: {err}")
    hr_scores, bicubic_scores = [], []
    for ds in sets:
        for item in ds.items:
            for fb in item.batches(1):
                hr = crop_to_multiple(fb.hr[0], 4)
                if hr.ndim == 3 and min(hr.shape[:2]) >= 104:
                    hr_scores.append(niqe(hr, 4))
                    bicubic_scores.append(niqe(imresize(degrade(hr, 4), 4), 4))
    assert len(hr_scores) >= 15
    assert np.mean(hr_scores) + 1.0 < np.mean(bicubic_scores)
