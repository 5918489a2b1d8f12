"""Reading and writing still images with OpenCV (RGB uint8 at the boundary), EXIF through Pillow.

Alpha: the model sees RGB only. :func:`read_still` returns the alpha plane separately; the pipeline
upscales it with bicubic interpolation and writes it back where the output format can hold alpha (PNG,
WebP, TIFF); for JPEG/BMP outputs it is dropped, with a note. 16-bit images are reduced to 8 bits (the
model works in 8 bits), with a note.

EXIF (date, camera, GPS, ...) is read with Pillow's :class:`PIL.Image.Exif` and written back where the
output format holds it (JPEG, PNG, WebP, TIFF), less what no longer fits: the orientation is applied to
the pixels (alpha included) and its tag reset to 1, the pixel dimensions are the output's, the embedded
thumbnail (the old, unturned picture) is left out, and so are the tags that describe how a TIFF source
stored its own pixels. OpenCV applies the orientation itself for JPEG, PNG and WebP unless told not to,
and its TIFF decoder always does; we read the first three unturned and turn them here, so the result
does not depend on the OpenCV release. JPEG/PNG/WebP are encoded by OpenCV, with the EXIF block where it
can write one (``imencodeWithMetadata``, OpenCV >= 4.12), otherwise by Pillow; a TIFF with EXIF by
Pillow, uncompressed (its compressing TIFF writer cannot store the EXIF and GPS sub-directories).
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ..errors import InputError, OutputError
from .formats import EXIF_IMAGE_EXTENSIONS, IMAGE_EXTENSIONS
from .output import AtomicOutput

_ORIENTATION = 0x0112
_EXIF_IFD = 0x8769
_PIXEL_X_DIMENSION, _PIXEL_Y_DIMENSION = 0xA002, 0xA003
#: Tags of a TIFF's first directory that describe how that file stores its own pixels (size, strips,
#: tiles, compression, sample layout, YCbCr coding): Pillow reports them as EXIF, but they are wrong
#: for any other file, so they are never copied.
_LAYOUT_TAGS = frozenset(
    {254, 255, 256, 257, 258, 259, 262, 263, 266, 273, 277, 278, 279, 280, 281, 284, 317, 320, 322, 323, 324,
     325, 330, 338, 339, 340, 341, 347, 513, 514, 530, 532}
)
#: X/YResolution and their unit: the source's print density, which x4 pixels no longer have (and which
#: every TIFF writer adds, so a plain TIFF would otherwise seem to carry EXIF).
_DENSITY_TAGS = frozenset({282, 283, 296})
#: EXIF orientation -> the numpy operation that makes the stored pixels upright (as Pillow's
#: ``ImageOps.exif_transpose`` does: 2 mirror, 3 half turn, 4 flip, 5 transpose, 6 quarter turn
#: clockwise, 7 transverse, 8 quarter turn counter-clockwise).
_UPRIGHT = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: np.rot90(a, 2).swapaxes(0, 1),
    8: lambda a: np.rot90(a, 1),
}
#: Formats whose OpenCV decoder turns the pixels itself, whatever the flags.
_DECODER_TURNS = frozenset({"TIFF"})
#: Output formats OpenCV writes an EXIF block into (when it has ``imencodeWithMetadata``).
_OPENCV_EXIF = frozenset({".jpg", ".jpeg", ".png", ".webp"})


def _to_uint8(img: np.ndarray) -> np.ndarray:
    if img.dtype == np.uint8:
        return img
    if img.dtype == np.uint16:
        return ((img.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)  # round(v * 255/65535)
    if img.dtype.kind == "f":
        return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)
    raise InputError(f"unsupported image sample type {img.dtype}")


@dataclass(frozen=True)
class Still:
    """A decoded image: ``rgb`` (H, W, 3) uint8, upright; ``alpha`` (H, W) uint8 or None; ``depth`` the
    source's bits per sample; ``exif`` the source's EXIF as it fits the upright pixels (orientation 1),
    None if it has none (or Pillow cannot read the file)."""

    rgb: np.ndarray
    alpha: np.ndarray | None
    depth: int
    exif: Image.Exif | None = None


def _source_exif(data: np.ndarray) -> tuple[Image.Exif | None, int, str | None]:
    """(EXIF without layout tags, its orientation, Pillow's format name); (None, 1, None) if unreadable."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a damaged EXIF block or a huge image: metadata is a courtesy
            with Image.open(io.BytesIO(data.tobytes())) as im:
                fmt = im.format
                # Serialise while the file is open: Pillow reads a TIFF's sub-directories lazily from it.
                raw = im.getexif().tobytes()
        exif = Image.Exif()
        exif.load(raw)
    except Exception:  # noqa: BLE001 - Pillow cannot read it: OpenCV alone decodes it, without EXIF
        return None, 1, None
    for tag in (_LAYOUT_TAGS | _DENSITY_TAGS) & set(exif):
        del exif[tag]
    try:
        orientation = int(exif.get(_ORIENTATION, 1))
    except (TypeError, ValueError):
        orientation = 1
    if _ORIENTATION in exif:
        exif[_ORIENTATION] = 1  # applied to the pixels below
    return (exif if set(exif) - {_ORIENTATION} else None), orientation, fmt


def read_still(path) -> Still:
    """Decode an image file: upright RGB, alpha, bit depth and EXIF (see the module docstring)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not an image")
    data = np.fromfile(path, np.uint8)  # np + imdecode: no surprises with non-ASCII paths
    raw = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None  # never turned, except TIFF
    if raw is None:
        raise InputError(f"{path}: not a readable image")
    exif, orientation, fmt = _source_exif(data)
    depth = raw.dtype.itemsize * 8
    alpha = None
    if raw.ndim == 3 and raw.shape[2] == 4:
        bgr, alpha = raw[:, :, :3], _to_uint8(raw[:, :, 3])
        rgb = cv2.cvtColor(_to_uint8(bgr), cv2.COLOR_BGR2RGB)
    else:
        flags = cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH
        if fmt is not None:
            flags |= cv2.IMREAD_IGNORE_ORIENTATION  # we turn it, below
        rgb = cv2.cvtColor(_to_uint8(cv2.imdecode(data, flags)), cv2.COLOR_BGR2RGB)
    turn = _UPRIGHT.get(orientation) if fmt not in _DECODER_TURNS else None
    if turn is not None:
        rgb = turn(rgb)
        alpha = None if alpha is None else np.ascontiguousarray(turn(alpha))
    return Still(np.ascontiguousarray(rgb), alpha, depth, exif)


def read_image_with_alpha(path) -> tuple[np.ndarray, np.ndarray | None, int]:
    """Return (rgb (H, W, 3) uint8, alpha (H, W) uint8 or None, source bit depth), upright."""
    still = read_still(path)
    return still.rgb, still.alpha, still.depth


def read_image(path) -> np.ndarray:
    """Read an image as (H, W, 3) uint8 RGB (alpha dropped, 16-bit reduced to 8)."""
    return read_image_with_alpha(path)[0]


def upscale_alpha(alpha: np.ndarray, scale: int) -> np.ndarray:
    h, w = alpha.shape
    return cv2.resize(alpha, (w * scale, h * scale), interpolation=cv2.INTER_CUBIC)


def encode_image(
    path: Path, rgb: np.ndarray, alpha: np.ndarray | None = None, exif: Image.Exif | None = None
) -> bytes:
    """Encode RGB (+ optional alpha, + optional EXIF) in the format named by ``path``'s extension.

    ``exif`` is written where the format holds it (:data:`~vsr.video.formats.EXIF_IMAGE_EXTENSIONS`),
    with the pixel dimensions of ``rgb``; elsewhere it is ignored.
    """
    ext = path.suffix.lower()
    if ext not in IMAGE_EXTENSIONS:
        raise OutputError(
            f"{path}: unsupported image extension {ext or '(none)'!r}: use one of "
            + ", ".join(sorted(IMAGE_EXTENSIONS))
        )
    block = None
    if exif is not None and ext in EXIF_IMAGE_EXTENSIONS:
        block = _sized(exif, rgb.shape[1], rgb.shape[0])
        if ext not in _OPENCV_EXIF or not hasattr(cv2, "imencodeWithMetadata"):
            return _pillow_encode(path, ext, rgb, alpha, block)
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    if alpha is not None:
        bgr = np.dstack([bgr, alpha])
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if ext in (".jpg", ".jpeg") else []
    if block is not None:
        ok, buf = cv2.imencodeWithMetadata(
            ext, bgr, [cv2.IMAGE_METADATA_EXIF], [np.frombuffer(block, np.uint8)], params
        )
    else:
        ok, buf = cv2.imencode(ext, bgr, params)
    if not ok:
        raise OutputError(f"{path}: OpenCV could not encode a {ext} image")
    return buf.tobytes()


def _sized(exif: Image.Exif, width: int, height: int) -> bytes:
    """The EXIF block of ``exif`` for a ``width`` x ``height`` image (``exif`` itself is not changed)."""
    copy = Image.Exif()
    copy.load(exif.tobytes())
    if _EXIF_IFD in copy:
        sub = copy.get_ifd(_EXIF_IFD)
        for tag, value in ((_PIXEL_X_DIMENSION, width), (_PIXEL_Y_DIMENSION, height)):
            if tag in sub:
                sub[tag] = value
    return copy.tobytes()


def _pillow_encode(path: Path, ext: str, rgb: np.ndarray, alpha: np.ndarray | None, exif: bytes) -> bytes:
    """Pillow's encoder, for EXIF that OpenCV cannot write: settings as close to OpenCV's as it has."""
    im = Image.fromarray(rgb if alpha is None else np.dstack([rgb, alpha]))
    options: dict = {"exif": exif}
    if ext in (".jpg", ".jpeg"):
        fmt, options["quality"] = "JPEG", 95
    elif ext == ".png":
        fmt = "PNG"
    elif ext == ".webp":
        fmt, options["lossless"] = "WEBP", True  # OpenCV's default
    else:
        fmt = "TIFF"  # uncompressed: Pillow's compressing (libtiff) path cannot write EXIF sub-directories
    out = io.BytesIO()
    try:
        im.save(out, fmt, **options)
    except (OSError, ValueError) as e:
        raise OutputError(f"{path}: Pillow could not encode a {ext} image ({e})") from e
    return out.getvalue()


def write_image_atomic(
    path, rgb: np.ndarray, alpha: np.ndarray | None = None, *, exif: Image.Exif | None = None, overwrite: bool = False
) -> None:
    """Write an image through a temporary file beside ``path``, renamed into place only when complete."""
    path = Path(path)
    data = encode_image(path, rgb, alpha, exif)
    with AtomicOutput(path, overwrite=overwrite) as out:
        try:
            with open(out.tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            raise OutputError(f"{path}: cannot write ({e.strerror or e})") from e
        out.commit()
