"""Image quality metrics as the super-resolution literature computes them.

Conventions (the MATLAB evaluation scripts of SRCNN/VDSR/SRGAN and BasicSR's metrics):

- Images are RGB (channel order R, G, B, last axis), uint8 in [0, 255] or float already in
  [0, 255]; never [0, 1]. All arithmetic is float64.
- Y is MATLAB's ``rgb2ycbcr`` luma: ITU-R BT.601, studio range 16-235.
- A 2-D (greyscale) image is its own Y channel, as the MATLAB scripts treat Set14's greyscale
  ``bridge``: it is scored on its raw 0-255 values, not re-expressed in 16-235.
- ``crop_border`` pixels are removed from every edge before scoring (BasicSR's ``crop_border``;
  the usual value is the scale factor for image sets, 0 for Vid4).
- SSIM is Wang et al. 2004: 11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, L = 255, the
  mean of the SSIM map over the "valid" region (the window never leaves the image). An RGB SSIM
  is the mean of the three per-channel SSIMs.
"""

import cv2
import numpy as np

from .resize import gaussian_kernel

__all__ = ["rgb_to_y", "psnr", "ssim", "psnr_y", "ssim_y", "score", "detail_ratio"]

# BT.601 luma for R, G, B in [0, 255] to Y in [16, 235] (MATLAB's rgb2ycbcr first row, / 255).
_Y_WEIGHTS = np.array([65.481, 128.553, 24.966]) / 255.0
_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2


def rgb_to_y(img):
    """Y channel of MATLAB's ``rgb2ycbcr``: ``16 + (65.481 R + 128.553 G + 24.966 B) / 255``.

    Args:
        img: RGB (..., 3), uint8 or float in [0, 255].

    Returns:
        float64 array of shape ``img.shape[:-1]``, values in [16, 235] (white 235, black 16).
        For uint8 input the values are rounded to integers, because MATLAB's ``rgb2ycbcr``
        returns uint8 for uint8 input; float input gives unrounded Y.
    """
    img = np.asarray(img)
    if img.shape[-1] != 3:
        raise ValueError(f"expected RGB with 3 channels last, got shape {img.shape}")
    y = img.astype(np.float64) @ _Y_WEIGHTS + 16.0
    if img.dtype == np.uint8:
        y = np.floor(y + 0.5)
    return y


def _y_pair(sr, hr):
    """Y planes to score: BT.601 Y of RGB images; a 2-D (greyscale) ground truth as-is, against the
    output's full-range luma (equal to the grey value when R = G = B), as the MATLAB scripts do."""
    sr, hr = np.asarray(sr), np.asarray(hr)
    if hr.ndim == 2:
        return (sr.astype(np.float64) @ (_Y_WEIGHTS * 255.0 / 219.0) if sr.ndim == 3 else sr), hr
    return rgb_to_y(sr), rgb_to_y(hr)


def _crop(img, crop_border):
    if crop_border < 0:
        raise ValueError(f"crop_border must be >= 0, got {crop_border}")
    if crop_border == 0:
        return img
    if min(img.shape[:2]) <= 2 * crop_border:
        raise ValueError(f"crop_border {crop_border} leaves nothing of a {img.shape[:2]} image")
    return img[crop_border:-crop_border, crop_border:-crop_border]


def _pair(a, b, crop_border):
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    return _crop(a, crop_border).astype(np.float64), _crop(b, crop_border).astype(np.float64)


def psnr(a, b, crop_border=0):
    """Peak signal-to-noise ratio in dB, peak 255: ``10 log10(255^2 / MSE)``.

    ``a`` and ``b``: same shape, (H, W) or (H, W, C), uint8 or float in [0, 255]. The MSE is over
    all pixels and channels left after cropping ``crop_border`` from each edge. Identical
    images give ``inf``.
    """
    a, b = _pair(a, b, crop_border)
    mse = np.mean((a - b) ** 2)
    if mse == 0:
        return float("inf")
    return float(10.0 * np.log10(255.0 ** 2 / mse))


def _ssim_plane(a, b):
    """Wang et al.'s mean SSIM of two float64 2-D planes, over the valid region of the window."""
    k = gaussian_kernel(11, 1.5)
    r = len(k) // 2
    if min(a.shape) < len(k):
        raise ValueError(f"SSIM needs at least 11x11 pixels, got {a.shape}")

    def blur(x):
        # Border type is irrelevant: only the valid centre (window inside the image) is kept.
        return cv2.sepFilter2D(x, cv2.CV_64F, k, k, borderType=cv2.BORDER_REFLECT_101)[r:-r, r:-r]

    mu_a, mu_b = blur(a), blur(b)
    mu_aa, mu_bb, mu_ab = mu_a * mu_a, mu_b * mu_b, mu_a * mu_b
    var_a = blur(a * a) - mu_aa
    var_b = blur(b * b) - mu_bb
    cov = blur(a * b) - mu_ab
    ssim_map = ((2 * mu_ab + _C1) * (2 * cov + _C2)) / ((mu_aa + mu_bb + _C1) * (var_a + var_b + _C2))
    return float(ssim_map.mean())


def ssim(a, b, crop_border=0):
    """Structural similarity (Wang et al. 2004), in [-1, 1], 1 for identical images.

    ``a`` and ``b``: same shape, (H, W) or (H, W, C) with channels last, uint8 or float in
    [0, 255]. A multi-channel SSIM is the mean of the per-channel values. At least 11x11
    pixels must remain after cropping ``crop_border`` from each edge.
    """
    a, b = _pair(a, b, crop_border)
    if a.ndim == 2:
        return _ssim_plane(a, b)
    return float(np.mean([_ssim_plane(a[..., c], b[..., c]) for c in range(a.shape[-1])]))


def psnr_y(sr, hr, crop_border=0):
    """PSNR (dB) on the BT.601 Y channel (see :func:`rgb_to_y`; a 2-D ``hr`` is its own Y)."""
    return psnr(*_y_pair(sr, hr), crop_border)


def ssim_y(sr, hr, crop_border=0):
    """SSIM on the BT.601 Y channel (see :func:`rgb_to_y`; a 2-D ``hr`` is its own Y)."""
    return ssim(*_y_pair(sr, hr), crop_border)


def detail_ratio(sr, hr, crop_border=0, sigma=1.0):
    """How much fine detail ``sr`` has, relative to its ground truth: the RMS of the Y channel's
    high-pass part (Y minus its Gaussian blur of ``sigma`` pixels, OpenCV) of ``sr`` over that of ``hr``.

    1.0: as much fine-scale energy as the ground truth; a blurred output scores below 1 (bicubic x4
    0.10-0.24 on Set14's baboon, comic, lenna), added texture or noise raises it. It says how
    much detail there is, not whether it is right: read it next to PSNR.
    """
    a, b = _pair(*_y_pair(sr, hr), crop_border)
    energy = _high_pass_rms(b, sigma)
    if energy == 0:
        raise ValueError("the ground truth has no detail to compare with (a flat image)")
    return _high_pass_rms(a, sigma) / energy


def detail_energy(img, sigma=1.0):
    """Fine detail of one image: the RMS of its Y channel's high-pass part (Y minus its Gaussian
    blur of ``sigma`` pixels), in Y units of 0-255. ``img``: RGB (H, W, 3), uint8 or float in
    [0, 255]. A flat image scores 0; 96x96 crops of Set5 score 4.0-7.3 (quartiles), of Set14
    5.0-11.4, of Vid4 7.5-12.3."""
    return _high_pass_rms(rgb_to_y(np.asarray(img, np.float64)), sigma)


def periodicity(img, period=4, window=32, sigma=1.0):
    """How much of an image's fine detail is a pattern that repeats every ``period`` pixels: the
    grid a x4 generator's two pixel-shuffle stages leave when they are pushed to add detail.

    The Y high-pass part (as in :func:`detail_energy`) is split into ``window`` x ``window`` tiles;
    in each tile the mean at each of the ``period`` x ``period`` pixel phases is taken, less the
    tile's mean over phases, and the RMS of those phase means is divided by the RMS of the
    high-pass part. Detail without a preferred phase (photos: 0.10-0.12; white noise about
    ``period / window`` = 0.125) averages out in the phase means; a pure period-``period``
    pattern scores 1. ``img``: RGB (H, W, 3), uint8 or float in [0, 255], at least one window
    each way. Raises ``ValueError`` for a flat image."""
    h = _high_pass(rgb_to_y(np.asarray(img, np.float64)), sigma)
    if window % period or min(h.shape) < window:
        raise ValueError(f"need a window ({window}) that is a multiple of the period ({period}) "
                         f"and an image of at least {window}x{window}, got {h.shape[1]}x{h.shape[0]}")
    th, tw = h.shape[0] // window, h.shape[1] // window
    h = h[:th * window, :tw * window]
    energy = np.sqrt(np.mean(np.square(h)))
    if energy < 1e-9:  # float round-off of a flat image
        raise ValueError("a flat image has no detail to look for a pattern in")
    steps = window // period
    phases = h.reshape(th, steps, period, tw, steps, period).mean(axis=(1, 4))  # (th, py, tw, px)
    phases -= phases.mean(axis=(1, 3), keepdims=True)
    return float(np.sqrt(np.mean(np.square(phases))) / energy)


def _high_pass(y, sigma):
    """``y`` (float64) minus its Gaussian blur of ``sigma`` pixels (OpenCV, reflected borders)."""
    y = np.asarray(y, np.float64)
    return y - cv2.GaussianBlur(y, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)


def _high_pass_rms(y, sigma):
    return float(np.sqrt(np.mean(np.square(_high_pass(y, sigma)))))


def score(sr, hr, channel="y", crop_border=4):
    """PSNR and SSIM of one super-resolved image against its ground truth.

    Args:
        sr: the output, RGB (H, W, 3) uint8 (or float in [0, 255]).
        hr: the ground truth, same shape; or (H, W) for a greyscale ground truth, in which case
            it is compared with the BT.601 luma of ``sr`` in full range (0-255), which equals the
            grey value when R = G = B.
        channel: ``"y"`` (BT.601 Y, the field's default) or ``"rgb"`` (all three channels).
        crop_border: pixels removed from each edge before scoring.

    Returns:
        ``{"psnr": dB, "ssim": value in [-1, 1]}`` as Python floats.
    """
    if channel not in ("y", "rgb"):
        raise ValueError(f"channel must be 'y' or 'rgb', got {channel!r}")
    if channel == "y" or np.ndim(hr) == 2:
        sr, hr = _y_pair(sr, hr)
    return {"psnr": psnr(sr, hr, crop_border), "ssim": ssim(sr, hr, crop_border)}
