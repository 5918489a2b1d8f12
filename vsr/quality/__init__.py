"""The evaluation protocol of the field in one place (numpy/OpenCV only; no TensorFlow, no ffmpeg).

Degradations (:mod:`.resize`): MATLAB-compatible bicubic ``imresize``, ``degrade_bi``,
``degrade_bd``, ``crop_to_multiple``. Metrics (:mod:`.metrics`): BT.601 Y, PSNR, SSIM and
``score``, ``detail_ratio``. Temporal consistency (:mod:`.temporal`): tOF.
"""

from .metrics import detail_energy, detail_ratio, periodicity, psnr, psnr_y, rgb_to_y, score, ssim, ssim_y
from .resize import crop_to_multiple, degrade_bd, degrade_bi, imresize
from .temporal import tof, tof_per_pair

DEGRADATIONS = {"BI": degrade_bi, "BD": degrade_bd}


def degrade(hr, scale=4, degradation="BI"):
    """Make the LR input of ``hr`` with the named degradation, ``"BI"`` or ``"BD"`` (see those functions)."""
    try:
        fn = DEGRADATIONS[degradation.upper()]
    except KeyError:
        raise ValueError(f"degradation must be BI or BD, got {degradation!r}") from None
    return fn(hr, scale)


__all__ = [
    "imresize", "degrade", "degrade_bi", "degrade_bd", "crop_to_multiple", "DEGRADATIONS",
    "rgb_to_y", "psnr", "ssim", "psnr_y", "ssim_y", "score", "detail_ratio", "detail_energy", "periodicity",
    "tof", "tof_per_pair",
]
