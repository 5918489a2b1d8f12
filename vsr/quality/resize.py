"""The field's degradations: MATLAB-compatible bicubic ``imresize`` (BI) and Gaussian blur + decimation (BD).

Arrays follow one layout everywhere in this module: 2-D ``(H, W)``, 3-D ``(H, W, C)`` or 4-D
``(N, H, W, C)``; only H and W are resized. Values are uint8 in [0, 255] or float in the caller's
range (normally [0, 255]). uint8 in gives uint8 out, rounded half away from zero and saturated,
exactly as MATLAB does; float in gives the same float dtype out, unclipped.

numpy and OpenCV only (no TensorFlow): training input pipelines and ``vsr bench`` share these
functions, so a "x4 BI" input means the same thing everywhere.
"""

from functools import lru_cache
import math

import cv2
import numpy as np

__all__ = ["cubic", "imresize", "degrade_bi", "degrade_bd", "crop_to_multiple", "gaussian_kernel"]

# MATLAB's bicubic support is 4 pixels wide (a = -0.5, Keys 1981).
_KERNEL_WIDTH = 4.0


def cubic(x):
    """Keys' cubic convolution kernel with a = -0.5, as MATLAB's ``imresize`` defines it.

    ``x`` is an array of distances in pixels; the kernel is 1 at 0, 0 at every other integer and
    0 beyond |x| = 2.
    """
    ax = np.abs(np.asarray(x, dtype=np.float64))
    ax2, ax3 = ax * ax, ax * ax * ax
    near = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))
    return near + far


@lru_cache(maxsize=128)
def _contributions(in_len, out_len, scale, antialias):
    """MATLAB's ``contributions``: per output pixel, the input indices it reads and their weights.

    Returns ``(weights, indices)``, both of shape (out_len, P): float64 weights that sum to 1 per
    row, and 0-based indices into the input, already mirrored at the borders (MATLAB's symmetric
    padding ``[1:n, n:-1:1]``). Cached per size pair, because a video has thousands of frames of one
    size; the returned arrays are read-only.
    """
    if scale < 1 and antialias:
        # Stretch the kernel to low-pass the input as it is shrunk (MATLAB's antialiasing).
        def kernel(d):
            return scale * cubic(scale * d)
        width = _KERNEL_WIDTH / scale
    else:
        kernel, width = cubic, _KERNEL_WIDTH
    x = np.arange(1, out_len + 1, dtype=np.float64)  # 1-based, as MATLAB
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)  # output pixel centre in input coordinates
    left = np.floor(u - width / 2.0)
    taps = int(math.ceil(width)) + 2
    indices = left[:, None] + np.arange(taps, dtype=np.float64)[None, :]
    weights = kernel(u[:, None] - indices)
    weights /= weights.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
    indices = mirror[np.mod(indices.astype(np.int64) - 1, 2 * in_len)]
    keep = np.any(weights != 0, axis=0)  # MATLAB drops taps that are zero for every output pixel
    weights, indices = np.ascontiguousarray(weights[:, keep]), np.ascontiguousarray(indices[:, keep])
    weights.flags.writeable = False
    indices.flags.writeable = False
    return weights, indices


def _to_uint8(x):
    # MATLAB rounds half away from zero; np.round would round 162.5 to 162.
    return np.clip(np.floor(x + 0.5), 0, 255).astype(np.uint8)


#: float64 elements one accumulation may hold (64 MB): larger inputs are resized in slabs along an
#: axis that this pass does not resize, so a 4K frame x4 never holds gigabytes of float64.
_SLAB_ELEMENTS = 8 << 20


def _resize_axis(x, axis, out_len, scale, antialias):
    """One separable pass along ``axis``: float64 accumulation, then back to the input's dtype."""
    in_len = x.shape[axis]
    weights, indices = _contributions(in_len, out_len, scale, antialias)
    shape = [1] * x.ndim
    shape[axis] = out_len
    out_shape = list(x.shape)
    out_shape[axis] = out_len
    out_dtype = np.uint8 if x.dtype == np.uint8 else x.dtype
    # Slab along the largest other axis; every output element depends only on its own line.
    other = max((a for a in range(x.ndim) if a != axis), key=lambda a: x.shape[a])
    per_line = math.prod(out_shape) // max(x.shape[other], 1)
    lines = max(1, _SLAB_ELEMENTS // max(per_line, 1))
    result = np.empty(out_shape, out_dtype)
    for start in range(0, x.shape[other], lines):
        piece = np.take(x, np.arange(start, min(start + lines, x.shape[other])), axis=other)
        acc = None
        for p in range(weights.shape[1]):
            term = np.take(piece, indices[:, p], axis=axis) * weights[:, p].reshape(shape)
            if acc is None:
                acc = term
            else:
                acc += term
        where = [slice(None)] * x.ndim
        where[other] = slice(start, start + piece.shape[other])
        # MATLAB's imresizemex returns the input's class after each dimension, so a uint8 image
        # is rounded between the two passes; doing the same keeps results bit-exact with MATLAB.
        result[tuple(where)] = _to_uint8(acc) if x.dtype == np.uint8 else acc
    return result


def _spatial_axes(ndim):
    if ndim in (2, 3):
        return 0, 1
    if ndim == 4:
        return 1, 2
    raise ValueError(f"expected (H, W), (H, W, C) or (N, H, W, C), got {ndim} dimensions")


def imresize(img, scale=None, *, output_shape=None, antialias=True):
    """Bicubic resize that matches MATLAB's ``imresize(img, scale)`` / ``imresize(img, [h w])``.

    Args:
        img: uint8 or float array, (H, W), (H, W, C) or (N, H, W, C), any channel order.
        scale: one factor for both axes (e.g. 0.25 or 4); the output size is ``ceil(scale * size)``.
        output_shape: ``(out_h, out_w)`` instead of ``scale``; each axis then uses out/in as its scale.
        antialias: widen the kernel when shrinking (MATLAB's default ``'Antialiasing', true``).

    Returns:
        The resized array, same dtype as ``img``: uint8 rounded half away from zero and clipped
        to [0, 255] (after each axis, as MATLAB does), float left unclipped.

    Like MATLAB, the axis with the smaller scale is resized first (height first on a tie), and
    pixels beyond the border are mirrored (``[1:n, n:-1:1]``).
    """
    img = np.asarray(img)
    if img.dtype != np.uint8 and not np.issubdtype(img.dtype, np.floating):
        img = img.astype(np.float64)
    axes = _spatial_axes(img.ndim)
    in_shape = [img.shape[a] for a in axes]
    if (scale is None) == (output_shape is None):
        raise ValueError("give exactly one of scale and output_shape")
    if scale is not None:
        if scale <= 0:
            raise ValueError(f"scale must be positive, got {scale}")
        scales = [float(scale)] * 2
        out_shape = [int(math.ceil(scale * n)) for n in in_shape]
    else:
        out_shape = [int(n) for n in output_shape]
        if min(out_shape) < 1:
            raise ValueError(f"output_shape must be positive, got {output_shape}")
        scales = [o / i for o, i in zip(out_shape, in_shape)]
    out = img
    for k in sorted(range(2), key=lambda k: scales[k]):  # stable sort: height first on a tie
        if out_shape[k] == in_shape[k] and scales[k] == 1.0:
            continue  # the cubic kernel is the identity at scale 1
        out = _resize_axis(out, axes[k], out_shape[k], scales[k], antialias)
    return out


def crop_to_multiple(img, scale):
    """Crop the bottom and right edges so that H and W are multiples of ``scale`` (MATLAB's ``modcrop``).

    Accepts the module's layouts, (H, W), (H, W, C) or (N, H, W, C); returns a view.
    """
    ah, aw = _spatial_axes(img.ndim)
    h, w = img.shape[ah], img.shape[aw]
    index = [slice(None)] * img.ndim
    index[ah] = slice(0, h - h % scale)
    index[aw] = slice(0, w - w % scale)
    return img[tuple(index)]


def degrade_bi(hr, scale=4):
    """BI degradation: MATLAB bicubic downscale by ``1/scale`` (antialiased).

    ``hr`` is uint8 RGB (or float in [0, 255]) in any of the module's layouts. Its size should be a
    multiple of ``scale`` (see :func:`crop_to_multiple`); otherwise the LR size is rounded up.
    """
    return imresize(hr, 1.0 / scale)


@lru_cache(maxsize=8)
def gaussian_kernel(size=13, sigma=1.6):
    """1-D normalised Gaussian of ``size`` taps (the 2-D kernel is its outer product), float64."""
    k = cv2.getGaussianKernel(size, sigma, cv2.CV_64F).ravel()
    k.flags.writeable = False
    return k


def degrade_bd(hr, scale=4, *, kernel_size=13, sigma=None):
    """BD degradation: Gaussian blur (13x13, sigma 0.4 * scale = 1.6 at x4), then every ``scale``-th pixel.

    This is the BD of DUF (Jo et al. 2018) and BasicSR's ``duf_downsample``: the blur mirrors
    the border without repeating the edge pixel (reflect-101), and decimation keeps pixels
    0, scale, 2*scale, ... in both axes (offset 0, i.e. ``blurred[::scale, ::scale]``).

    ``hr``: uint8 RGB or float in [0, 255], (H, W), (H, W, C) or (N, H, W, C). Returns the same
    dtype (uint8 rounded half up and clipped), spatial size ``ceil(H / scale) x ceil(W / scale)``.
    """
    hr = np.asarray(hr)
    k = gaussian_kernel(kernel_size, 0.4 * scale if sigma is None else sigma)
    frames = hr if hr.ndim == 4 else hr[None]
    out = []
    for frame in frames:
        blurred = cv2.sepFilter2D(frame.astype(np.float64), cv2.CV_64F, k, k,
                                  borderType=cv2.BORDER_REFLECT_101)
        if blurred.ndim < frame.ndim:  # OpenCV drops a trailing channel axis of size 1
            blurred = blurred[..., None]
        out.append(blurred[::scale, ::scale])
    out = np.stack(out) if hr.ndim == 4 else out[0]
    if hr.dtype == np.uint8:
        return _to_uint8(out)
    return out.astype(hr.dtype if np.issubdtype(hr.dtype, np.floating) else np.float64, copy=False)
