"""Which frames of a video a job takes: times the user writes, ``--start``/``--duration``, frame ranges.

Times count from the file's start, as ffmpeg's ``-ss`` does (and as the reader's pts do: it decodes
with ``-copyts -start_at_zero``), in seconds held as exact fractions.

- :func:`parse_time` reads ``12.5``, ``83``, ``01:23`` or ``00:01:23.250``; :func:`format_time` writes one.
- :class:`Trim` is ``--start``/``--duration`` with ffmpeg's ``-ss``/``-t`` meaning: the output is the
  source from ``start`` for ``duration`` seconds. Its first frame is the frame *displayed* at ``start``
  (the last one whose time is not after it), moved to ``start`` and shortened to match, so it shows
  from the output's first instant; the last is the last frame that starts before ``start + duration``,
  shortened to end there. Every other frame keeps its time, less ``start``, so A/V sync is the source's.
- :class:`FrameRange` takes the frames of one span from a :class:`~vsr.video.reader.FrameReader`;
  a segment of a long job, a trimmed single pass and a one-frame preview all use it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from fractions import Fraction

from ..errors import InputError
from .reader import Frame, FrameReader

#: How far before a span's start its decoder seeks, tried in turn (None: from the beginning).
SEEK_MARGINS = (0.5, 5.0, 60.0, None)

_CLOCK = re.compile(r"^(?:(?P<h>\d+):)?(?P<m>\d+):(?P<s>\d+(?:\.\d+)?)$")
_SECONDS = re.compile(r"^\d+(?:\.\d*)?$|^\.\d+$")


def parse_time(text, option: str = "--at") -> Fraction:
    """``"12.5"`` (seconds) or ``"[HH:]MM:SS[.ms]"`` -> seconds as a Fraction (exact decimals).

    Raises :class:`ValueError` with a one-line message naming ``option`` otherwise.
    """
    value = str(text).strip()
    if _SECONDS.match(value):
        return Fraction(value)
    m = _CLOCK.match(value)
    if m and int(m["m"]) < 60 and Fraction(m["s"]) < 60:
        return int(m["h"] or 0) * 3600 + int(m["m"]) * 60 + Fraction(m["s"])
    raise ValueError(f"{option} {text!r}: give seconds (12.5) or [HH:]MM:SS[.ms] (00:01:23.5)")


def as_seconds(value) -> Fraction:
    """A time given as a Fraction, int, float or decimal string -> Fraction (``0.1`` is 1/10, not its binary float)."""
    return Fraction(repr(value)) if isinstance(value, float) else Fraction(value)


def format_time(seconds) -> str:
    """``83.25`` -> ``"00:01:23.250"`` (milliseconds, rounded)."""
    ms = round(Fraction(seconds) * 1000)
    sign, ms = ("-", -ms) if ms < 0 else ("", ms)
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    return f"{sign}{h:02d}:{m:02d}:{rest // 1000:02d}.{rest % 1000:03d}"


def seconds_arg(seconds) -> str:
    """Seconds for ffmpeg's command line and for manifests: exact to the microsecond, which is as
    far as ffmpeg reads a time (it truncates further digits)."""
    micros = math.floor(Fraction(seconds) * 1_000_000)
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


@dataclass(frozen=True)
class Trim:
    """``--start``/``--duration``: the span ``[start, start + duration)`` of the source, in seconds."""

    start: Fraction = Fraction(0)
    duration: Fraction | None = None

    @property
    def end(self) -> Fraction | None:
        return None if self.duration is None else self.start + self.duration

    def identity(self) -> dict:
        """For a work folder's manifest: a changed span refuses the old segments."""
        duration = None if self.duration is None else seconds_arg(self.duration)
        return {"start": seconds_arg(self.start), "duration": duration}

    def input_options(self) -> dict:
        """ffmpeg input options that cut the source's other streams (audio, subtitles) to this span."""
        options = {"ss": seconds_arg(self.start)} if self.start else {}
        if self.duration is not None:
            options["t"] = seconds_arg(self.duration)
        return options

    def describe(self) -> str:
        what = f"from {format_time(self.start)}" if self.start else "from the start"
        return what + (f" for {format_time(self.duration)}" if self.duration is not None else "")


def plan_trim(src, start, duration, video_end: float | None) -> Trim | None:
    """``Trim`` for ``--start``/``--duration`` (seconds, None when not given), checked against the
    video's length (``video_end``, seconds; None if the header does not say). None: no trim."""
    if start is None and duration is None:
        return None
    start = as_seconds(start or 0)
    duration = None if duration is None else as_seconds(duration)
    if start < 0:
        raise InputError(f"--start {format_time(start)}: must not be negative")
    if duration is not None and duration <= 0:
        raise InputError(f"--duration {format_time(duration)}: must be more than 0 seconds")
    if video_end is not None and start >= as_seconds(video_end):
        raise InputError(
            f"{src}: --start {format_time(start)} is beyond the end of the video ({format_time(video_end)})"
        )
    return Trim(start, duration)


def decoder_starts(start) -> Iterator[float | None]:
    """Where a reader of a span beginning at ``start`` (seconds) decodes from, tried in turn while the
    seek misses (:class:`SeekMissed`): a little before it, further back, then from the beginning (0.0).
    None: from the beginning without seeking (``start`` is 0 or None)."""
    if not start:
        yield None
        return
    for margin in SEEK_MARGINS:
        yield 0.0 if margin is None else max(0.0, float(start) - margin)


class SeekMissed(Exception):
    """The decoder's first frame is after the span's start: frames may be missing; seek further back."""


def _ceil_ticks(seconds: Fraction, time_base: Fraction) -> int:
    return math.ceil(seconds / time_base)


class FrameRange:
    """The frames of one span from a reader: those before ``lo`` are skipped, and it stops at the first
    frame at or after ``hi`` (its pts is kept as ``next_pts``). ``lo``/``hi`` are seconds; None: open.

    ``displayed``: also take the frame displayed at ``lo`` (the last one before it), moved to ``lo``
    (the first tick at or after it) and shortened to end where it did, so the span starts with what a
    player shows at ``lo`` (``move=False``: with its own time). ``clip_end``: shorten a frame that lasts
    past it to end there (the last one).
    ``seeked``: the reader was started before ``lo`` by a seek, so its first frame must not be after
    ``lo`` (:class:`SeekMissed`: some demuxers seek inexactly).
    """

    def __init__(
        self,
        reader: FrameReader,
        lo: Fraction | None,
        hi: Fraction | None,
        *,
        seeked: bool,
        displayed: bool = False,
        move: bool = True,
        clip_end: Fraction | None = None,
    ):
        self.reader, self.lo, self.hi, self.seeked = reader, lo, hi, seeked
        self.displayed, self.move, self.clip_end = displayed, move, clip_end
        self.next_pts: int | None = None  # pts of the first frame after the span
        self.errors_before = 0  # decoder errors before the span's first frame (a seek's leading frames)
        self.last_end: Fraction | None = None  # where the last frame read ends (seconds), kept or not

    def batches(self, size: int) -> Iterator[list[Frame]]:
        out: list[Frame] = []
        last = None
        inside = False
        held: Frame | None = None  # the latest frame before lo: the one displayed there, if the next is after lo
        for chunk in self.reader.batches(size):
            tb = self.reader.time_base
            for frame in chunk:
                t = frame.pts * tb
                if last is None and self.seeked and t > self.lo:
                    raise SeekMissed
                if last is not None and frame.pts < last:
                    raise InputError(
                        f"{self.reader.src}: timestamps go backwards (pts {frame.pts} after {last}), "
                        "so it cannot be cut into segments or trimmed; run it in a single pass "
                        "(--segment-seconds 0) without --start"
                    )
                last = frame.pts
                self.last_end = (frame.pts + frame.duration) * tb
                if self.lo is not None and t < self.lo:
                    held = frame
                    continue
                if self.hi is not None and t >= self.hi:
                    self.next_pts = frame.pts
                    break
                if not inside:
                    inside = True
                    self.errors_before = len(self.reader.errors)
                    if held is not None and self.displayed and _ceil_ticks(self.lo, tb) < frame.pts:
                        out.append(self._moved(held, tb))  # (else this frame shows from lo's first tick)
                out.append(self._clipped(frame, tb))
                if len(out) >= size:
                    yield out
                    out = []
            if self.next_pts is not None:
                break
        if not inside and held is not None and self.displayed:
            tb = self.reader.time_base
            ends = held.pts + (held.duration or 0)
            if held.duration == 0 or self.lo < ends * tb:  # unknown duration: it shows until the end
                self.errors_before = len(self.reader.errors)
                out.append(self._clipped(self._moved(held, tb), tb))
        if out:
            yield out

    def _moved(self, frame: Frame, tb: Fraction) -> Frame:
        pts = _ceil_ticks(self.lo, tb)
        if pts <= frame.pts or not self.move:
            return frame
        end = frame.pts + frame.duration
        return replace(frame, pts=pts, duration=max(0, end - pts) if frame.duration else 0)

    def _clipped(self, frame: Frame, tb: Fraction) -> Frame:
        if self.clip_end is None or not frame.duration:
            return frame
        end = _ceil_ticks(self.clip_end, tb)
        if frame.pts + frame.duration <= end:
            return frame
        return replace(frame, duration=max(1, end - frame.pts))
