"""NIQE, a no-reference naturalness score (Mittal, Soundararajan and Bovik, IEEE SPL 2013).

Lower is more natural. It is the distance between a multivariate Gaussian (MVG) fitted to
natural-scene statistics of the image and one fitted to pristine photographs:

1. Grey levels in [0, 255] (MATLAB's ``rgb2gray``); MSCN coefficients ``(I - mu) / (sigma + 1)`` with a 7x7 Gaussian window
   (sigma 7/6) for the local mean and deviation, borders replicated.
2. Per 96x96 block (48x48 at the second scale, the image halved by MATLAB-exact bicubic): an
   asymmetric generalised Gaussian (AGGD) fitted by moment matching to the MSCN coefficients
   (shape, mean scale: 2 features) and to their products with the right, lower, lower-right and
   lower-left neighbour (shape, mean, left and right scale: 16 features). 36 features per block.
3. ``sqrt((mu_p - mu)^T ((S_p + S) / 2)^+ (mu_p - mu))``.

The pristine MVG is fitted by ``fit_pristine`` to the sharpest blocks (local deviation at least
0.75 of the image's sharpest block) of real photographs; the one shipped,
``niqe_pristine.json``, comes from the project's training photos (``training/data/fit_niqe.py``),
not from the 125 images of the original paper, so absolute values are not comparable with
published NIQE figures; differences between methods scored here are.

Written here rather than imported: the packages that offer NIQE either need PyTorch and download
their parameters at run time, or ship none; this module is numpy/OpenCV only, like the rest of
``vsr.quality``.
"""

import json
import math
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from .resize import imresize

__all__ = ["niqe", "niqe_features", "fit_pristine", "aggd_fit", "PRISTINE_FILE"]

PRISTINE_FILE = Path(__file__).with_name("niqe_pristine.json")
BLOCK = 96
SHARPNESS_THRESHOLD = 0.75
_GREY_WEIGHTS = np.array([0.298936021293775, 0.587043074451121, 0.114020904255103])
_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))  # right, down, down-right, down-left neighbour


@lru_cache(maxsize=1)
def _shape_table():
    """Shape parameters 0.2 ... 10 and the moment ratio each implies, E|x|^2 / E[x^2] for a GGD."""
    shapes = np.arange(0.2, 10.0005, 0.001)
    lg = np.vectorize(math.lgamma)
    ratio = np.exp(2 * lg(2 / shapes) - lg(1 / shapes) - lg(3 / shapes))
    return shapes, ratio


def aggd_fit(x):
    """Moment-matching fit of an asymmetric generalised Gaussian to the samples ``x``.

    Returns ``(shape, left_scale, right_scale)``: a symmetric GGD has equal scales; a Gaussian has
    shape 2 and scales ``sqrt(2) * std``, a Laplacian shape 1. NaN for samples without both signs.
    """
    x = np.asarray(x, np.float64).ravel()
    neg, pos = x[x < 0], x[x > 0]
    if not len(neg) or not len(pos):
        return np.nan, np.nan, np.nan
    left, right = np.sqrt(np.mean(neg ** 2)), np.sqrt(np.mean(pos ** 2))
    g = left / right
    r = np.mean(np.abs(x)) ** 2 / np.mean(x ** 2)
    r_norm = r * (g ** 3 + 1) * (g + 1) / (g ** 2 + 1) ** 2
    shapes, ratio = _shape_table()
    a = shapes[np.argmin((ratio - r_norm) ** 2)]
    k = math.sqrt(math.gamma(1 / a) / math.gamma(3 / a))
    return a, left * k, right * k


def _block_features(mscn):
    a, left, right = aggd_fit(mscn)
    feats = [a, (left + right) / 2]
    for dy, dx in _SHIFTS:
        prod = mscn * np.roll(mscn, (dy, dx), axis=(0, 1))
        a, left, right = aggd_fit(prod)
        mean = (right - left) * math.gamma(2 / a) / math.gamma(1 / a) if np.isfinite(a) else np.nan
        feats += [a, mean, left, right]
    return feats


def _mscn(luma):
    window = cv2.getGaussianKernel(7, 7 / 6)
    window = window @ window.T

    def blur(v):
        return cv2.filter2D(v, cv2.CV_64F, window, borderType=cv2.BORDER_REPLICATE)

    mu = blur(luma)
    sigma = np.sqrt(np.abs(blur(luma * luma) - mu * mu))
    return (luma - mu) / (sigma + 1), sigma


def _luma(img):
    """MATLAB's ``rgb2gray`` (full range, rounded for uint8), as the reference NIQE code reads images."""
    img = np.asarray(img)
    if img.ndim == 2:
        return img.astype(np.float64)
    grey = img.astype(np.float64) @ _GREY_WEIGHTS
    return np.floor(grey + 0.5) if img.dtype == np.uint8 else grey


def niqe_features(img, sharp_only=False):
    """The 36 NIQE features of every 96x96 block of ``img`` (RGB or grey, [0, 255]), (blocks, 36).

    ``sharp_only`` keeps the blocks whose mean local deviation is at least 0.75 of the sharpest
    block's (the selection of pristine blocks when fitting the model).
    """
    luma = _luma(img)
    bh, bw = luma.shape[0] // BLOCK, luma.shape[1] // BLOCK
    if not bh or not bw:
        raise ValueError(f"NIQE needs at least {BLOCK}x{BLOCK} pixels, got {luma.shape[1]}x{luma.shape[0]}")
    luma = luma[:bh * BLOCK, :bw * BLOCK]
    per_scale, sharpness = [], None
    for scale in (1, 2):
        mscn, sigma = _mscn(luma)
        b = BLOCK // scale
        blocks = [(i, j) for j in range(bw) for i in range(bh)]
        per_scale.append([_block_features(mscn[i * b:(i + 1) * b, j * b:(j + 1) * b]) for i, j in blocks])
        if scale == 1:
            sharpness = np.array([sigma[i * b:(i + 1) * b, j * b:(j + 1) * b].mean() for i, j in blocks])
            luma = imresize(luma, 0.5)
    feats = np.concatenate([np.array(f) for f in per_scale], axis=1)
    if sharp_only:
        feats = feats[sharpness >= SHARPNESS_THRESHOLD * sharpness.max()]
    return feats


def fit_pristine(images):
    """The pristine MVG ``{"mu": (36,), "cov": (36, 36), "blocks": n}`` of a list of sharp photos."""
    feats = np.concatenate([niqe_features(img, sharp_only=True) for img in images])
    feats = feats[np.all(np.isfinite(feats), axis=1)]
    return {"mu": feats.mean(axis=0), "cov": np.cov(feats, rowvar=False), "blocks": len(feats)}


@lru_cache(maxsize=4)
def _pristine(path):
    d = json.loads(Path(path).read_text())
    return np.array(d["mu"]), np.array(d["cov"])


def niqe(img, crop_border=0, pristine=None):
    """NIQE of one image: RGB (H, W, 3) or grey (H, W), uint8 or float in [0, 255]; lower is more
    natural. ``pristine`` is a ``fit_pristine`` result (default: the shipped ``niqe_pristine.json``).
    Needs at least 96x96 pixels after ``crop_border`` is removed from each edge."""
    img = np.asarray(img)
    if crop_border:
        img = img[crop_border:-crop_border, crop_border:-crop_border]
    mu_p, cov_p = (pristine["mu"], pristine["cov"]) if pristine else _pristine(str(PRISTINE_FILE))
    feats = niqe_features(img)
    mu = np.nanmean(feats, axis=0)
    finite = feats[np.all(np.isfinite(feats), axis=1)]
    cov = np.cov(finite, rowvar=False) if len(finite) > 1 else np.zeros_like(cov_p)
    d = mu_p - mu
    return float(np.sqrt(d @ np.linalg.pinv((cov_p + cov) / 2) @ d))
