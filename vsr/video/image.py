"""Reading and writing still images with OpenCV (RGB uint8 at the boundary).

Alpha: the model sees RGB only. :func:`read_image_with_alpha` returns the alpha plane separately; the
pipeline upscales it with bicubic interpolation and writes it back where the output format can hold
alpha (PNG, WebP, TIFF); for JPEG/BMP outputs it is dropped, with a note. EXIF orientation is applied
to RGB-only images (OpenCV's default); images with alpha are read as stored.
16-bit images are reduced to 8 bits (the model works in 8 bits), with a note.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError, OutputError
from .formats import IMAGE_EXTENSIONS
from .output import AtomicOutput


def _to_uint8(img: np.ndarray) -> np.ndarray:
    if img.dtype == np.uint8:
        return img
    if img.dtype == np.uint16:
        return ((img.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)  # round(v * 255/65535)
    if img.dtype.kind == "f":
        return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)
    raise InputError(f"unsupported image sample type {img.dtype}")


def read_image_with_alpha(path) -> tuple[np.ndarray, np.ndarray | None, int]:
    """Return (rgb (H, W, 3) uint8, alpha (H, W) uint8 or None, source bit depth)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not an image")
    data = np.fromfile(path, np.uint8)  # np + imdecode: no surprises with non-ASCII paths
    raw = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if raw is None:
        raise InputError(f"{path}: not a readable image")
    depth = raw.dtype.itemsize * 8
    alpha = None
    if raw.ndim == 3 and raw.shape[2] == 4:
        bgr, alpha = raw[:, :, :3], _to_uint8(raw[:, :, 3])
        rgb = cv2.cvtColor(_to_uint8(bgr), cv2.COLOR_BGR2RGB)
    else:
        oriented = cv2.imdecode(data, cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH)  # applies EXIF orientation
        rgb = cv2.cvtColor(_to_uint8(oriented), cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(rgb), alpha, depth


def read_image(path) -> np.ndarray:
    """Read an image as (H, W, 3) uint8 RGB (alpha dropped, 16-bit reduced to 8)."""
    return read_image_with_alpha(path)[0]


def upscale_alpha(alpha: np.ndarray, scale: int) -> np.ndarray:
    h, w = alpha.shape
    return cv2.resize(alpha, (w * scale, h * scale), interpolation=cv2.INTER_CUBIC)


def encode_image(path: Path, rgb: np.ndarray, alpha: np.ndarray | None = None) -> bytes:
    """Encode RGB (+ optional alpha) in the format named by ``path``'s extension."""
    ext = path.suffix.lower()
    if ext not in IMAGE_EXTENSIONS:
        raise OutputError(
            f"{path}: unsupported image extension {ext or '(none)'!r}: use one of "
            + ", ".join(sorted(IMAGE_EXTENSIONS))
        )
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    if alpha is not None:
        bgr = np.dstack([bgr, alpha])
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if ext in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(ext, bgr, params)
    if not ok:
        raise OutputError(f"{path}: OpenCV could not encode a {ext} image")
    return buf.tobytes()


def write_image_atomic(path, rgb: np.ndarray, alpha: np.ndarray | None = None, *, overwrite: bool = False) -> None:
    """Write an image through a temporary file beside ``path``, renamed into place only when complete."""
    path = Path(path)
    data = encode_image(path, rgb, alpha)
    with AtomicOutput(path, overwrite=overwrite) as out:
        try:
            with open(out.tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            raise OutputError(f"{path}: cannot write ({e.strerror or e})") from e
        out.commit()
