"""Quality benchmark: degrade the ground truth, upscale with each model, score every frame.

An *upscaler* is any object with ``.scale`` (int) and ``.upscale(frames)`` mapping uint8 RGB
(N, H, W, 3) to uint8 RGB (N, scale*H, scale*W, 3): ``vsr.engine.Upscaler``,
``vsr.models.bicubic.BicubicUpscaler``, or a test double.
"""

import math
import sys
from contextlib import closing
import time
from dataclasses import asdict, dataclass

import numpy as np

from vsr.errors import DataError, ModelError
from vsr.quality import crop_to_multiple, degrade, score
from vsr.quality.temporal import farneback_flow, flow_difference

#: Frames per upscale call: bounded memory on 720p sequences, large enough to batch a model.
BATCH = 4


@dataclass
class FrameScore:
    """One model's scores on one frame. ``tof`` is None on an item's first frame or when off;
    ``niqe`` (no-reference naturalness, lower is better) is None when off or the frame is too small."""

    item: str
    frame: str
    model: str
    psnr: float
    ssim: float
    tof: float = None
    niqe: float = None


@dataclass
class BenchResults:
    """Per-frame scores plus the protocol that produced them.

    ``protocol`` keys: ``scale``, ``degradation`` (BI/BD), ``lr_source``, ``channel`` (y/rgb),
    ``crop_border`` (px), ``temporal`` (bool), ``niqe`` (bool).
    """

    dataset: str
    kind: str
    models: list
    items: list
    protocol: dict
    frames: list
    seconds: float = 0.0

    def per_item(self):
        """``{item: {model: {"psnr", "ssim", "tof", "frames"}}}``: means over each item's frames.

        ``tof`` is None where no frame pair was scored (an image, a 1-frame clip, temporal off).
        """
        groups = {}
        for f in self.frames:
            groups.setdefault(f.item, {}).setdefault(f.model, []).append(f)
        return {item: {model: _means(fs) for model, fs in by_model.items()}
                for item, by_model in groups.items()}

    def mean(self):
        """``{model: {"psnr", "ssim", "tof"}}``: the mean over items of the per-item means.

        For Vid4 this is the field's "mean over sequences" (each sequence weighs the same,
        whatever its length); for an image set it is the mean over images.
        """
        per_item = self.per_item()
        out = {}
        for model in self.models:
            rows = [per_item[i][model] for i in per_item if model in per_item[i]]
            out[model] = {k: _mean([r[k] for r in rows]) for k in METRICS}
        return out

    def protocol_line(self):
        """One line naming the protocol, e.g. ``x4 BI (LR made from GT), Y (BT.601), crop 4 px``."""
        p = self.protocol
        channel = "Y (BT.601, 16-235)" if p["channel"] == "y" else "RGB"
        line = (f"x{p['scale']} {p['degradation']} (LR {p['lr_source']}), PSNR/SSIM on {channel}, "
                f"crop {p['crop_border']} px, HR cropped to a multiple of {p['scale']}")
        if p["temporal"]:
            line += ", tOF = Farneback flow difference in px (lower is better)"
        if p.get("niqe"):
            line += ", NIQE on grey, same crop (no reference; lower is more natural)"
        return line

    def to_dict(self):
        """JSON-ready dict: protocol, per-item and mean scores, and every frame (inf -> None)."""
        return _finite({
            "dataset": self.dataset, "kind": self.kind, "models": self.models, "items": self.items,
            "protocol": {**self.protocol, "description": self.protocol_line()},
            "seconds": round(self.seconds, 3), "mean": self.mean(), "per_item": self.per_item(),
            "frames": [asdict(f) for f in self.frames],
        })


def _mean(values):
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


METRICS = ("psnr", "ssim", "tof", "niqe")


def _means(frames):
    return {**{k: _mean([getattr(f, k) for f in frames]) for k in METRICS}, "frames": len(frames)}


def _finite(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


def _common_scale(upscalers):
    scales = {name: int(u.scale) for name, u in upscalers.items()}
    if not scales:
        raise ModelError("no models to benchmark: pass --models")
    if len(set(scales.values())) > 1:
        raise ModelError(f"models differ in scale {scales}: benchmark models of one scale together")
    return next(iter(scales.values()))


def run_quality_bench(dataset, upscalers, degradation="BI", crop_border=None, channel="y",
                      progress=True, *, temporal=None, max_frames=None, batch=BATCH, niqe=False):
    """Score each upscaler on every frame of ``dataset``.

    Args:
        dataset: a ``vsr.bench.datasets.BenchDataset``.
        upscalers: ``{name: upscaler}``; all must share one ``scale``.
        degradation: ``"BI"`` (MATLAB bicubic) or ``"BD"`` (Gaussian blur + decimation). Shipped LR
            frames (Vid4's ``BIx4/``) are used when present, else LR is made from the ground truth.
        crop_border: pixels cropped from each edge before scoring; None = the field's default,
            the scale for image sets and 0 for video sets (BasicSR's Vid4 convention).
        channel: ``"y"`` (BT.601 Y) or ``"rgb"``.
        progress: a tqdm bar on stderr.
        temporal: also score tOF; None = on for video sets.
        max_frames: score only the first frames of each sequence/video.
        batch: frames per ``upscale`` call.
        niqe: also score NIQE (``vsr.quality.niqe``) on every output frame of 96x96 or more.

    Returns:
        ``BenchResults``. The ground truth is cropped to a multiple of the scale first.
    """
    degradation = degradation.upper()
    if degradation not in ("BI", "BD"):
        raise ValueError(f"degradation must be BI or BD, got {degradation!r}")
    if channel not in ("y", "rgb"):
        raise ValueError(f"channel must be 'y' or 'rgb', got {channel!r}")
    scale = _common_scale(upscalers)
    video = dataset.kind == "video"
    crop_border = (0 if video else scale) if crop_border is None else int(crop_border)
    temporal = video if temporal is None else bool(temporal)
    lr_folder = f"{degradation}x{scale}"
    shipped = any(lr_folder in item.lr_dirs for item in dataset.items)
    protocol = {"scale": scale, "degradation": degradation, "channel": channel,
                "crop_border": crop_border, "temporal": temporal, "niqe": bool(niqe),
                "lr_source": f"from {lr_folder}/" if shipped else "made from GT"}

    bar = _progress(dataset.frame_count(max_frames), dataset.name, enabled=progress)
    frames, start = [], time.perf_counter()
    try:
        for item in dataset.items:
            state = {}  # last GT / SR frame of the previous batch, for the first tOF pair
            with closing(item.batches(batch, lr_folder, max_frames)) as batches:
                for fb in batches:
                    frames += _score_batch(item.name, fb, upscalers, scale, degradation,
                                           crop_border, channel, temporal, state, niqe)
                    bar.update(len(fb.names))
    finally:
        bar.close()
    return BenchResults(dataset=dataset.name, kind=dataset.kind, models=list(upscalers),
                        items=[i.name for i in dataset.items], protocol=protocol, frames=frames,
                        seconds=time.perf_counter() - start)


def _score_batch(item, fb, upscalers, scale, degradation, crop_border, channel, temporal, state, niqe):
    hr = crop_to_multiple(fb.hr, scale)
    lr = fb.lr if fb.lr is not None else degrade(hr, scale, degradation)
    if lr.shape[1:3] != (hr.shape[1] // scale, hr.shape[2] // scale):
        raise DataError(f"{item}: LR frames are {lr.shape[2]}x{lr.shape[1]} but the ground truth "
                        f"is {hr.shape[2]}x{hr.shape[1]}; LR must be GT / {scale}")
    # Greyscale ground truth is scored on its grey values, as the MATLAB scripts do (Set14 bridge).
    gt = hr[..., 0] if fb.grey and channel == "y" else hr
    gt_flows = _flows(state.get("gt"), hr) if temporal else None
    state["gt"] = hr[-1]
    out = []
    for name, upscaler in upscalers.items():
        sr = np.asarray(upscaler.upscale(lr))
        if sr.shape != hr.shape or sr.dtype != np.uint8:
            raise ModelError(f"model '{name}' returned {sr.dtype} {sr.shape} for {lr.shape} input; "
                             f"expected uint8 {hr.shape}")
        tofs = [None] * len(sr)
        if temporal:
            for i, flow in enumerate(_flows(state.get(name), sr)):
                if flow is not None:
                    tofs[i] = flow_difference(flow, gt_flows[i], crop_border)
            state[name] = sr[-1]
        for i, frame in enumerate(fb.names):
            s = score(sr[i], gt[i], channel=channel, crop_border=crop_border)
            out.append(FrameScore(item, frame, name, s["psnr"], s["ssim"], tofs[i],
                                  _niqe(sr[i], crop_border) if niqe else None))
    return out


def _niqe(frame, crop_border):
    from vsr.quality.niqe import BLOCK, niqe

    h, w = frame.shape[:2]
    if min(h, w) - 2 * crop_border < BLOCK:
        return None
    return niqe(frame, crop_border)


def _flows(previous, frames):
    """Flow into each frame from the one before it (None for a sequence's first frame)."""
    chain = ([previous] if previous is not None else [None]) + list(frames)
    return [None if a is None else farneback_flow(a, b) for a, b in zip(chain, chain[1:])]


def _progress(total, name, enabled):
    from tqdm import tqdm

    return tqdm(total=total, desc=f"bench {name}", unit="frame", file=sys.stderr,
                disable=not enabled, leave=False)
