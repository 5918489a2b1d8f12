"""One frame of a video: the frame displayed at a given time (``vsr preview``, ``vsr upscale IN frame.png --at T``).

The frame is decoded as the pipeline decodes every frame (:class:`~vsr.video.reader.FrameReader`:
upright, so a phone video's rotation tag is applied; untagged HD read as BT.709) after a seek to a
little before the time, retried from further back when the seek lands late (:mod:`.span`). "Displayed
at T" is the last frame whose time is not after T; a T before the video's first frame gives that
frame, and a T at or past the end of the last frame is refused with a one-line :class:`InputError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import Cancelled, InputError
from .output import check_input_file
from .probe import probe
from .reader import FrameReader, untagged_matrix
from .span import FrameRange, SeekMissed, as_seconds, decoder_starts, format_time


@dataclass(frozen=True)
class Still:
    """A decoded frame: ``pixels`` (H, W, 3) uint8 RGB, upright; ``seconds`` its own time and ``at``
    the time asked for (both from the file's start); ``sar`` its pixel aspect ratio."""

    pixels: np.ndarray
    seconds: Fraction
    at: Fraction
    sar: Fraction = Fraction(1)


def check_time(src, at):
    """Refuse, from the header alone, a time ``at`` (seconds) that ``src``'s video cannot have; returns
    its video stream and the time as a Fraction."""
    src = Path(src)
    check_input_file(src)
    at = as_seconds(at)
    if at < 0:
        raise InputError(f"--at {format_time(at)}: must not be negative")
    info = probe(src)
    if info.video is None:
        raise InputError(f"{src}: has no video stream; give a video (or an image, which needs no --at)")
    if info.duration is not None and at >= as_seconds(info.duration):
        raise InputError(f"{src}: --at {format_time(at)} is beyond the end of the video ({format_time(info.duration)})")
    return info.video, at


def frame_at(src, at) -> Still:
    """The frame of ``src``'s video displayed at ``at`` seconds (see the module docstring)."""
    src = Path(src)
    video, at = check_time(src, at)
    try:
        for start in decoder_starts(at):
            reader = FrameReader(src, video.index, queue_size=2, color_matrix=untagged_matrix(video), start=start)
            frames = FrameRange(reader, at or None, None, seeked=bool(start), displayed=True, move=False)
            try:
                reader.start()
                for batch in frames.batches(1):
                    frame = batch[0]
                    return Still(frame.pixels, frame.pts * reader.time_base, at, reader.sar)
            except SeekMissed:
                continue
            finally:
                reader.stop()
            if frames.last_end is None:
                raise InputError(f"{src}: no video frames could be decoded (empty or damaged video stream)")
            raise InputError(
                f"{src}: --at {format_time(at)} is beyond the end of the video "
                f"(its last frame ends at {format_time(frames.last_end)})"
            )
    except KeyboardInterrupt:
        raise Cancelled(f"{src}: interrupted; nothing written") from None
    raise AssertionError("decoding from the start cannot miss a frame")
