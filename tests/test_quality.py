"""vsr.quality: MATLAB-compatible imresize, BI/BD degradations, Y/PSNR/SSIM, tOF.

Expected values are derived by hand in the comments (MATLAB's ``contributions`` and ``cubic``),
and scikit-image / Pillow serve as independent implementations.
"""

import math

import numpy as np
import pytest

from vsr.quality import (crop_to_multiple, degrade, degrade_bd, degrade_bi, imresize, psnr, psnr_y,
                         rgb_to_y, score, ssim, ssim_y, tof, tof_per_pair, detail_ratio)
from vsr.quality.resize import cubic, gaussian_kernel


def smooth_image(h, w, seed=0, channels=3):
    """Smooth gradients plus mild noise, uint8 (H, W, C): content where interpolation matters."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    planes = [128 + 90 * np.sin(x / (5 + c) + y / (7 + 2 * c)) for c in range(channels)]
    img = np.stack(planes, -1) + rng.normal(0, 6, (h, w, channels))
    return np.clip(img, 0, 255).astype(np.uint8)


# --- imresize ---------------------------------------------------------------------------------

def test_cubic_kernel_values():
    # a = -0.5: 1.5|x|^3 - 2.5|x|^2 + 1 on [0, 1]; -0.5|x|^3 + 2.5|x|^2 - 4|x| + 2 on (1, 2].
    np.testing.assert_allclose(cubic([0, 0.5, 1, 1.5, 2, 2.5, -0.5, -1.5]),
                               [1, 0.5625, 0, -0.0625, 0, 0, 0.5625, -0.0625])


def test_imresize_upscale_by_hand():
    # Column [0, 1] (in_len 2) up x2. MATLAB: u = x/2 + 0.25 = 0.75, 1.25, 1.75, 2.25 (x = 1..4).
    # Output 1: taps at -2..3, distances 2.75, 1.75, 0.75, -0.25, -1.25, -2.25 -> weights
    # 0, -0.0234375, 0.2265625, 0.8671875, -0.0703125, 0; mirrored indices [1 2 2 1]: tap -1 -> 2,
    # tap 0 -> 1. So out1 = (0.2265625 + 0.8671875) x1 - (0.0234375 + 0.0703125) x2 = -0.09375.
    # Output 2: weights -0.0703125, 0.8671875 on x1 and 0.2265625, -0.0234375 on x2 -> 0.203125.
    # Outputs 3 and 4 mirror 2 and 1.
    out = imresize(np.array([[0.0], [1.0]]), 2)
    assert out.shape == (4, 2)
    np.testing.assert_allclose(out[:, 0], [-0.09375, 0.203125, 0.796875, 1.09375], atol=1e-12)
    np.testing.assert_array_equal(out[:, 0], out[:, 1])


def test_imresize_antialiased_downscale_by_hand():
    # Column [0, 64, 128, 192] down x1/2: kernel 0.5 * cubic(0.5 d), width 8, u = 2x - 0.5.
    # Output 1 (u = 1.5): taps -3..6 with weights 0, -0.01171875, -0.03515625, 0.11328125,
    # 0.43359375, 0.43359375, 0.11328125, -0.03515625, -0.01171875, 0; mirrored [1 2 3 4 4 3 2 1]
    # gives 0.546875 x1 + 0.3984375 x2 + 0.1015625 x3 - 0.046875 x4 = 29.5; output 2 = 162.5.
    col = np.array([[0], [64], [128], [192]])
    np.testing.assert_allclose(imresize(col.astype(np.float64), 0.5)[:, 0], [29.5, 162.5])
    # uint8 rounds half away from zero like MATLAB (np.round would give 162).
    np.testing.assert_array_equal(imresize(col.astype(np.uint8), 0.5)[:, 0], [30, 163])


def test_imresize_sizes_dtypes_and_constants():
    img = np.full((7, 5, 3), 77, np.uint8)
    down = imresize(img, 0.25)
    assert down.shape == (2, 2, 3) and down.dtype == np.uint8  # ceil(7/4), ceil(5/4)
    assert (down == 77).all() and (imresize(down, 4) == 77).all()  # weights sum to 1
    assert imresize(img.astype(np.float32), 2).dtype == np.float32
    assert imresize(img, output_shape=(3, 11)).shape == (3, 11, 3)
    with pytest.raises(ValueError):
        imresize(img, 2, output_shape=(3, 3))


def test_imresize_symmetric_under_flips():
    img = smooth_image(16, 12).astype(np.float64)  # sizes that scale exactly
    out = imresize(img, 0.25)
    np.testing.assert_allclose(imresize(img[::-1, ::-1], 0.25), out[::-1, ::-1], atol=1e-9)
    up = imresize(img, 4)
    np.testing.assert_allclose(imresize(img[::-1], 4), up[::-1], atol=1e-9)


def test_imresize_uint8_order_and_rounding_follow_matlab():
    # MATLAB resizes the axis with the smaller scale first and returns uint8 after each pass.
    img = smooth_image(12, 12)
    out = imresize(img, output_shape=(24, 6))  # width x0.5 first, then height x2
    width_first = imresize(img, output_shape=(12, 6))
    np.testing.assert_array_equal(out, imresize(width_first, output_shape=(24, 6)))
    height_first = imresize(imresize(img, output_shape=(24, 12)), output_shape=(24, 6))
    assert not np.array_equal(out, height_first)


def test_imresize_batch_equals_frames():
    frames = np.stack([smooth_image(16, 20, seed=s) for s in range(3)])
    out = imresize(frames, 0.25)
    assert out.shape == (3, 4, 5, 3)
    for i in range(3):
        np.testing.assert_array_equal(out[i], imresize(frames[i], 0.25))


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_imresize_in_slabs_equals_one_pass(monkeypatch, dtype):
    """Large frames are resized in slabs to bound float64 memory; the result must not change."""
    from vsr.quality import resize

    img = np.random.default_rng(3).integers(0, 256, (2, 23, 37, 3)).astype(dtype)
    whole = {s: imresize(img, s) for s in (4, 0.25, 0.5)}
    monkeypatch.setattr(resize, "_SLAB_ELEMENTS", 40)  # a few lines per slab
    for s, expected in whole.items():
        out = imresize(img, s)
        assert out.dtype == img.dtype
        np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("scale", [0.25, 0.5, 4])
def test_imresize_interior_matches_pillow(scale):
    # Pillow's float ('F') bicubic uses the same a = -0.5 kernel, antialias widening and pixel
    # mapping; only the border handling differs (it renormalises instead of mirroring).
    Image = pytest.importorskip("PIL.Image")
    x = smooth_image(40, 48, channels=1)[..., 0].astype(np.float32)
    out_h, out_w = int(40 * scale), int(48 * scale)
    ref = np.asarray(Image.fromarray(x, "F").resize((out_w, out_h), Image.BICUBIC))
    ours = imresize(x.astype(np.float64), scale)
    m = 3 if scale < 1 else 8  # outputs whose support reaches the border
    np.testing.assert_allclose(ours[m:-m, m:-m], ref[m:-m, m:-m], atol=1e-3)


def test_crop_to_multiple_layouts():
    assert crop_to_multiple(np.zeros((7, 10, 3)), 4).shape == (4, 8, 3)
    assert crop_to_multiple(np.zeros((2, 7, 10, 3)), 4).shape == (2, 4, 8, 3)
    assert crop_to_multiple(np.zeros((9, 9)), 3).shape == (9, 9)


# --- degradations -----------------------------------------------------------------------------

def test_degrade_bi_is_matlab_bicubic_quarter():
    hr = smooth_image(32, 24)
    np.testing.assert_array_equal(degrade_bi(hr, 4), imresize(hr, 0.25))
    np.testing.assert_array_equal(degrade(hr, 4, "bi"), degrade_bi(hr, 4))
    with pytest.raises(ValueError):
        degrade(hr, 4, "XX")


def test_gaussian_kernel_13_sigma_1_6():
    k = gaussian_kernel(13, 1.6)
    ref = np.exp(-np.arange(-6, 7) ** 2 / (2 * 1.6 ** 2))
    np.testing.assert_allclose(k, ref / ref.sum())
    assert k[6] == pytest.approx(0.249348081, abs=1e-8)


def test_degrade_bd_blur_then_every_fourth_pixel_from_zero():
    hr = np.zeros((32, 40), np.float64)
    hr[8, 12] = 1000.0  # a sampled position: row 8 = 2 * 4, column 12 = 3 * 4 (offset 0)
    lr = degrade_bd(hr, 4)
    assert lr.shape == (8, 10)
    k6 = gaussian_kernel(13, 1.6)[6]
    assert lr[2, 3] == pytest.approx(1000.0 * k6 * k6)  # 62.17: the kernel's centre tap squared
    assert np.argmax(lr) == np.ravel_multi_index((2, 3), lr.shape)
    # Constant stays constant (normalised kernel, reflect-101 border); uint8 stays uint8.
    const = degrade_bd(np.full((16, 16, 3), 200, np.uint8))
    assert const.dtype == np.uint8 and const.shape == (4, 4, 3) and (const == 200).all()
    frames = np.stack([smooth_image(16, 16, seed=s) for s in range(2)])
    np.testing.assert_array_equal(degrade_bd(frames)[1], degrade_bd(frames[1]))


# --- Y, PSNR, SSIM ----------------------------------------------------------------------------

def test_rgb_to_y_pure_colours():
    colours = np.array([[[255, 255, 255], [0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]]], np.uint8)
    # 16 + (65.481 R + 128.553 G + 24.966 B) / 255: white 235, black 16, red 81.481, green
    # 144.553, blue 40.966; uint8 input is rounded like MATLAB's uint8 rgb2ycbcr.
    np.testing.assert_allclose(rgb_to_y(colours.astype(np.float64))[0],
                               [235, 16, 81.481, 144.553, 40.966], atol=1e-9)
    np.testing.assert_array_equal(rgb_to_y(colours)[0], [235, 16, 81, 145, 41])
    with pytest.raises(ValueError):
        rgb_to_y(np.zeros((4, 4)))


def test_psnr_constant_offset():
    a = np.full((8, 8, 3), 100, np.uint8)
    b = a + 5  # MSE 25: 10 log10(255^2 / 25) = 20 log10(51) = 34.1514 dB
    assert psnr(a, b) == pytest.approx(34.15140352195873, abs=1e-12)
    assert psnr(a, a) == math.inf
    c = a.copy()
    c[0] = 0  # differences only in the 1-pixel border: cropped away
    assert psnr(a, c, crop_border=1) == math.inf
    with pytest.raises(ValueError):
        psnr(a, b[:4])
    with pytest.raises(ValueError):
        psnr(a, b, crop_border=4)


def test_ssim_constant_images_by_hand():
    # Constant images: variances and covariance 0, so SSIM = (2 m1 m2 + C1) / (m1^2 + m2^2 + C1),
    # with C1 = (0.01 * 255)^2 = 6.5025: (22000 + 6.5025) / (22100 + 6.5025) = 0.9954764.
    a, b = np.full((16, 16), 100.0), np.full((16, 16), 110.0)
    assert ssim(a, b) == pytest.approx(0.9954764440915066, abs=1e-12)
    assert ssim(a, a) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        ssim(np.zeros((10, 10)), np.zeros((10, 10)))  # smaller than the 11x11 window


def noisy_pair(shape, seed=0):
    rng = np.random.default_rng(seed)
    a = smooth_image(shape[0], shape[1], seed, channels=shape[2] if len(shape) == 3 else 1)
    a = a if len(shape) == 3 else a[..., 0]
    b = np.clip(a + rng.normal(0, 12, a.shape), 0, 255).astype(np.uint8)
    return a, b


def test_psnr_ssim_match_scikit_image():
    # Tolerance found: 1e-12 (agreement to float64 rounding). skimage with gaussian_weights=True,
    # sigma=1.5, use_sample_covariance=False also uses an 11x11 window and drops 5 px per edge.
    metrics = pytest.importorskip("skimage.metrics")
    kw = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)
    a, b = noisy_pair((40, 52))
    assert psnr(a, b) == pytest.approx(metrics.peak_signal_noise_ratio(a, b, data_range=255), abs=1e-12)
    assert ssim(a, b) == pytest.approx(metrics.structural_similarity(a, b, **kw), abs=1e-12)
    a3, b3 = noisy_pair((40, 52, 3), seed=1)
    assert ssim(a3, b3, crop_border=4) == pytest.approx(
        metrics.structural_similarity(a3[4:-4, 4:-4], b3[4:-4, 4:-4], channel_axis=-1, **kw), abs=1e-12)
    ya, yb = rgb_to_y(a3), rgb_to_y(b3)
    assert psnr_y(a3, b3) == pytest.approx(metrics.peak_signal_noise_ratio(ya, yb, data_range=255), abs=1e-12)
    assert ssim_y(a3, b3) == pytest.approx(metrics.structural_similarity(ya, yb, **kw), abs=1e-12)


def test_score_channels_and_grey_ground_truth():
    a, b = noisy_pair((32, 32, 3), seed=2)
    y = score(b, a, channel="y", crop_border=4)
    assert y == {"psnr": psnr_y(b, a, 4), "ssim": ssim_y(b, a, 4)}
    rgb = score(b, a, channel="rgb", crop_border=0)
    assert rgb == {"psnr": psnr(b, a), "ssim": ssim(b, a)}
    # A greyscale ground truth is scored on its grey values against the output's full-range luma.
    grey, grey_out = noisy_pair((32, 32), seed=3)
    out = score(np.repeat(grey_out[..., None], 3, 2), grey, crop_border=2)
    assert out["psnr"] == pytest.approx(psnr(grey_out, grey, 2), abs=1e-9)
    with pytest.raises(ValueError):
        score(b, a, channel="lab")


# --- tOF --------------------------------------------------------------------------------------

def moving_frames(n, step):
    """A textured 64x64 scene translated ``step`` px right per frame (periodic, so no edges appear)."""
    base = smooth_image(64, 64, seed=4)
    return [np.roll(base, step * t, axis=1) for t in range(n)]


def test_detail_ratio_is_one_for_the_truth_below_for_blur_above_for_noise():
    rng = np.random.default_rng(3)
    hr = np.clip(smooth_image(96, 80, seed=3).astype(float) + rng.normal(0, 20, (96, 80, 3)), 0, 255)
    hr = hr.astype(np.uint8)
    assert detail_ratio(hr, hr) == pytest.approx(1.0)
    bicubic = imresize(degrade_bi(hr, 4), 4)
    blurred = detail_ratio(bicubic, hr, crop_border=4)
    assert 0.05 < blurred < 0.6
    noisy = np.clip(hr + rng.normal(0, 25, hr.shape), 0, 255).astype(np.uint8)
    assert detail_ratio(noisy, hr) > 1.2
    with pytest.raises(ValueError, match="no detail"):
        detail_ratio(hr, np.full_like(hr, 128))


def test_detail_energy_is_zero_when_flat_and_grows_with_fine_detail():
    from vsr.quality import detail_energy

    assert detail_energy(np.full((40, 40, 3), 77, np.uint8)) == pytest.approx(0.0, abs=1e-9)
    # a 1-pixel grey checkerboard of +-a: Y moves by a*(65.481+128.553+24.966)/255 = 0.859 a, and a
    # Gaussian of sigma 1 keeps a fraction of it (the checkerboard's frequency response) that the
    # energy must not exceed; a smooth ramp has almost none
    a = 20.0
    board = 128 + a * (np.indices((40, 40)).sum(0) % 2 * 2 - 1)
    energy = detail_energy(np.repeat(board[..., None], 3, -1))
    assert 0.6 * 0.859 * a < energy <= 0.859 * a
    ramp = np.repeat(np.tile(np.linspace(0, 255, 40), (40, 1))[..., None], 3, -1)
    assert detail_energy(ramp) < 0.05 * energy


def test_periodicity_is_low_for_noise_and_one_for_a_repeated_4px_pattern():
    from vsr.quality import periodicity

    rng = np.random.default_rng(5)
    noise = rng.normal(128, 20, (128, 128, 1)).repeat(3, -1)
    # phase means of 64 independent samples: sigma / 8, i.e. about period / window
    assert 0.09 < periodicity(noise) < 0.14
    tile = rng.normal(0, 20, (4, 4, 1))
    grid = 128 + np.tile(tile, (32, 32, 3))
    assert periodicity(grid) == pytest.approx(1.0, abs=0.02)
    assert periodicity(noise) < periodicity(noise + 0.5 * (grid - 128)) < periodicity(grid)
    with pytest.raises(ValueError, match="flat"):
        periodicity(np.full((64, 64, 3), 90, np.uint8))
    with pytest.raises(ValueError, match="at least"):
        periodicity(noise[:20])


def test_tof_zero_for_identical_motion_and_motion_size_for_frozen_output():
    gt = moving_frames(3, 2)
    assert tof(gt, gt) == 0.0
    frozen = [gt[0]] * 3  # output that does not move while the truth moves 2 px per frame
    per_pair = tof_per_pair(frozen, gt, crop_border=8)
    assert per_pair.shape == (2,)
    assert 1.5 < per_pair.mean() < 2.5
    with pytest.raises(ValueError):
        tof(gt[:1], gt[:1])
