"""Temporal consistency of a super-resolved video: tOF (Chu et al. 2020, TecoGAN).

tOF compares motion, not pixels: the Farneback optical flow between consecutive output frames
against the flow between the same consecutive ground-truth frames. For each pair of frames it is
the mean, over pixels, of the Euclidean length of the difference of the two flow vectors, in
pixels of the frame; lower is better, 0 when the output moves exactly like the ground truth.
"""

import cv2
import numpy as np

__all__ = ["farneback_flow", "flow_difference", "tof_per_pair", "tof"]

# TecoGAN's metric settings: pyr_scale, levels, winsize, iterations, poly_n, poly_sigma, flags.
_FARNEBACK = (0.5, 3, 15, 3, 5, 1.2, 0)


def _grey(frame):
    frame = np.asarray(frame)
    if frame.dtype != np.uint8:
        frame = np.clip(np.floor(frame + 0.5), 0, 255).astype(np.uint8)
    return frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


def farneback_flow(prev_frame, next_frame):
    """Dense flow (H, W, 2) float32, in pixels (x, y), from ``prev_frame`` to ``next_frame``.

    Frames are RGB (H, W, 3) or grey (H, W), uint8 (float in [0, 255] is rounded to uint8).
    """
    return cv2.calcOpticalFlowFarneback(_grey(prev_frame), _grey(next_frame), None, *_FARNEBACK)


def flow_difference(flow_a, flow_b, crop_border=0):
    """Mean over pixels of ``|flow_a - flow_b|`` (Euclidean, per pixel), in pixels."""
    diff = np.asarray(flow_a, np.float64) - np.asarray(flow_b, np.float64)
    if crop_border:
        diff = diff[crop_border:-crop_border, crop_border:-crop_border]
    return float(np.sqrt((diff * diff).sum(axis=-1)).mean())


def tof_per_pair(sr_frames, gt_frames, crop_border=0):
    """tOF of each consecutive pair: array of N - 1 floats for N frames (empty for N < 2).

    ``sr_frames`` and ``gt_frames``: sequences of N RGB uint8 frames (H, W, 3), same shapes.
    """
    if len(sr_frames) != len(gt_frames):
        raise ValueError(f"{len(sr_frames)} output frames but {len(gt_frames)} ground-truth frames")
    values = [
        flow_difference(farneback_flow(sr_frames[t - 1], sr_frames[t]),
                        farneback_flow(gt_frames[t - 1], gt_frames[t]), crop_border)
        for t in range(1, len(sr_frames))
    ]
    return np.asarray(values, dtype=np.float64)


def tof(sr_frames, gt_frames, crop_border=0):
    """Mean tOF over the N - 1 consecutive pairs of N frames (pixels; lower is better).

    ``sr_frames``, ``gt_frames``: sequences of RGB uint8 frames (H, W, 3) of one video, same
    shapes. Needs at least 2 frames.
    """
    values = tof_per_pair(sr_frames, gt_frames, crop_border)
    if values.size == 0:
        raise ValueError("tOF needs at least 2 frames")
    return float(values.mean())
