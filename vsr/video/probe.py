"""Probing media through PyAV (``av``): FFmpeg's own structures, not text it prints for people.

``av``'s wheels carry their own FFmpeg libraries, so what a probe reports does not depend on which
ffmpeg binary vsr runs (see :mod:`.ffmpeg`): the header fields are the ``AVFormatContext`` /
``AVStream`` values ``ffmpeg -i`` would print, read as numbers and names instead of being parsed back
out of its stderr (whose layout changes between releases: Debian's 5.1 prints no per-stream ``start``
and its ``showinfo`` no ``duration``).

- :func:`probe` reads the container header (format, duration, start, global metadata, chapters, every
  stream with codec, size, rate, colour tags and tags) and decodes one video frame for the display
  rotation, which FFmpeg attaches to decoded frames. It is cheap and used for planning.
- :func:`frame_timing` decodes a video stream and returns every frame's exact integer pts and duration
  in the stream's time base, counted from the file's start time as the ffmpeg command line counts them
  (so they compare directly with what the pipeline's reader sees). Tests use it to compare input and
  output.
- :func:`demuxed_end` reads packets only (no decoding) to tell where the data really ends.
- :func:`attached_picture` reads the picture of a cover-art stream.
- :func:`frame_count` says how many frames a video stream holds (the container's count, else its
  packets counted): the progress bar's total, right for variable frame rates too.

The pipeline's reader still parses ``showinfo`` lines from the ffmpeg it runs (it needs the frames
themselves from that process); the patterns for them live here.
"""

from __future__ import annotations

import itertools
import math

import os
import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from ..errors import InputError

# showinfo lines (used by the reader; ``duration:`` is absent before ffmpeg 6).
SHOWINFO_CONFIG = re.compile(r"config in time_base: (\d+)/(\d+), frame_rate: (\d+)/(\d+)")
SHOWINFO_FRAME = re.compile(
    r"\bn:\s*(?P<n>\d+) pts:\s*(?P<pts>-?\d+) pts_time:\S+\s+(?:duration:\s*(?P<dur>-?\d+)\s)?.*?"
    r"\bsar:(?P<sar_n>\d+)/(?P<sar_d>\d+) s:(?P<w>\d+)x(?P<h>\d+)"
)

#: AVColorSpace / AVColorTransferCharacteristic values by number, named as ffmpeg names them
#: (``av_color_space_name``); 2 = unspecified and 3 = reserved mean "untagged" (None).
_COLOR_SPACES = {
    0: "gbr", 1: "bt709", 4: "fcc", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "ycgco", 9: "bt2020nc",
    10: "bt2020c", 11: "smpte2085", 12: "chroma-derived-nc", 13: "chroma-derived-c", 14: "ictcp",
}
_COLOR_TRCS = {
    1: "bt709", 4: "gamma22", 5: "gamma28", 6: "smpte170m", 7: "smpte240m", 8: "linear", 9: "log100",
    10: "log316", 11: "iec61966-2-4", 12: "bt1361e", 13: "iec61966-2-1", 14: "bt2020-10", 15: "bt2020-12",
    16: "smpte2084", 17: "smpte428", 18: "arib-std-b67",
}
_AV_TIME_BASE = 1_000_000  # container start/duration and chapters' fallback unit (microseconds)


@dataclass(frozen=True)
class StreamInfo:
    """One stream as the container header describes it.

    ``width``/``height`` are as stored (before rotation); ``rotation`` is in degrees, counter-clockwise
    as ffmpeg prints it; ``fps`` is ffmpeg's rounded display value, for estimates only.
    """

    index: int
    kind: str  # "video" | "audio" | "subtitle" | "data" | "attachment"
    codec: str
    language: str | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    rotation: float = 0.0
    start: float | None = None
    sample_rate: int | None = None
    channels: int | None = None
    attached_pic: bool = False
    default: bool = False
    pix_fmt: str | None = None
    color_space: str | None = None  # YCbCr matrix tag (bt709, bt470bg, smpte170m, ...); None if untagged
    color_trc: str | None = None  # transfer tag (smpte2084 = PQ and arib-std-b67 = HLG are HDR)
    metadata: dict = field(default_factory=dict)

    @property
    def upright_size(self) -> tuple[int, int] | None:
        """(width, height) after applying the rotation tag, i.e. as the decoder delivers frames."""
        if self.width is None or self.height is None:
            return None
        if round(self.rotation / 90) % 2:
            return self.height, self.width
        return self.width, self.height


@dataclass(frozen=True)
class Chapter:
    """A chapter: ``start``/``end`` in seconds as stored (not counted from the file's start time)."""

    start: float
    end: float
    title: str | None = None
    metadata: dict = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class MediaInfo:
    """A container header: ``duration``/``start`` in seconds (``None`` when unknown)."""

    path: Path
    format: str
    duration: float | None
    start: float | None
    streams: tuple[StreamInfo, ...]
    metadata: dict
    chapters: tuple[Chapter, ...]

    @property
    def video(self) -> StreamInfo | None:
        """The first real video stream (cover art / attached pictures do not count)."""
        return next((s for s in self.streams if s.kind == "video" and not s.attached_pic), None)

    def tag(self, key: str) -> str | None:
        """A global metadata value, case-insensitively (Matroska upper-cases keys: ``ARTIST``)."""
        return next((v for k, v in self.metadata.items() if k.lower() == key.lower()), None)

    def of_kind(self, kind: str) -> list[StreamInfo]:
        return [s for s in self.streams if s.kind == kind]

    @property
    def is_image(self) -> bool:
        """A still image (the image2 demuxers or a single-frame image codec)."""
        return self.format.endswith("_pipe") or self.format == "image2"


def _open(path: Path):
    """``av.open`` with a one-line :class:`InputError` naming FFmpeg's own reason on failure."""
    import av
    import av.logging

    level = av.logging.get_level()
    # PyAV passes FFmpeg's log on only when a level is set; capture it so the demuxer's own reason
    # (``moov atom not found``) reaches the message instead of stderr.
    av.logging.set_level(av.logging.ERROR)
    try:
        with av.logging.Capture() as logs:
            try:
                # Absolute, so ``-in:put.mp4`` is neither an option nor an ``in:`` protocol URL.
                return av.open(os.path.abspath(path), metadata_errors="replace")
            except av.error.FFmpegError as err:
                errors = [msg.strip() for lvl, _, msg in logs if lvl <= av.logging.ERROR and msg.strip()]
                cause = errors[0].rstrip(".") if errors else _av_cause(err)
                raise InputError(f"{path}: not a readable video or image ({cause})") from None
    finally:
        av.logging.set_level(level)


def _av_cause(err) -> str:
    """FFmpeg's last logged error if PyAV kept it (``moov atom not found``), else the error's text."""
    text = str(err)
    if "last error log:" in text:
        last = text.split("last error log:", 1)[1].strip()
        return re.sub(r"^\[[^\]]*\]\s*", "", last).rstrip(".")
    return (getattr(err, "strerror", None) or text).rstrip(".")


def _seconds_or_none(value, unit: Fraction) -> float | None:
    return None if value is None else float(value * unit)


def _stream_info(stream, rotation: float) -> StreamInfo:
    kind = stream.type if stream.type in ("video", "audio", "subtitle", "attachment") else "data"
    cc = stream.codec_context
    codec = None
    if cc is not None and cc.codec is not None:
        codec = cc.codec.canonical_name
    if codec is None:
        codec = getattr(stream, "codec_name", None) or ("ttf" if kind == "attachment" else "none")
    metadata = dict(stream.metadata)
    language = metadata.get("language")
    disposition = int(stream.disposition)
    import av.stream

    fields: dict = {
        "index": stream.index,
        "kind": kind,
        "codec": codec,
        "language": language,
        "start": _seconds_or_none(stream.start_time, stream.time_base) if stream.time_base else None,
        "attached_pic": bool(disposition & av.stream.Disposition.attached_pic),
        "default": bool(disposition & av.stream.Disposition.default),
        "metadata": metadata,
    }
    if kind == "video" and cc is not None:
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fields.update(
            width=cc.width or None,
            height=cc.height or None,
            fps=float(rate) if rate else None,
            rotation=rotation,
            pix_fmt=cc.pix_fmt,
            color_space=_COLOR_SPACES.get(int(cc.colorspace)),
            color_trc=_COLOR_TRCS.get(int(cc.color_trc)),
        )
    elif kind == "audio" and cc is not None:
        fields.update(sample_rate=cc.sample_rate or None, channels=cc.channels or None)
    return StreamInfo(**fields)


def _first_frame_rotation(container, stream) -> float:
    """The display rotation (degrees, counter-clockwise) FFmpeg attaches to the stream's decoded frames."""
    import av

    try:
        for frame in container.decode(stream):
            return float(frame.rotation or 0)
    except (av.error.FFmpegError, ValueError):
        pass
    return 0.0


def probe(path) -> MediaInfo:
    """Describe a media file from its header; raises :class:`InputError` if FFmpeg cannot open it."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a media file")
    container = _open(path)
    try:
        us = Fraction(1, _AV_TIME_BASE)
        video = next(
            (
                s for s in container.streams
                if s.type == "video" and not int(s.disposition) & 1024  # AV_DISPOSITION_ATTACHED_PIC
            ),
            None,
        )
        rotations = {video.index: _first_frame_rotation(container, video)} if video is not None else {}
        streams = tuple(_stream_info(s, rotations.get(s.index, 0.0)) for s in container.streams)
        chapters = tuple(
            Chapter(
                float(c["start"] * (c["time_base"] or us)),
                float(c["end"] * (c["time_base"] or us)),
                c["metadata"].get("title"),
                dict(c["metadata"]),
            )
            for c in container.chapters()
        )
        return MediaInfo(
            path=path,
            format=container.format.name,
            duration=_seconds_or_none(container.duration, us),
            start=_seconds_or_none(container.start_time, us),
            streams=streams,
            metadata=dict(container.metadata),
            chapters=chapters,
        )
    finally:
        container.close()


def _start_ticks(container, stream) -> int:
    """The file's start time in ``stream``'s time base: what the ffmpeg command line subtracts from every pts."""
    start = container.start_time
    if start is None:
        return 0
    return round(Fraction(start, _AV_TIME_BASE) / stream.time_base)


def demuxed_end(path) -> float | None:
    """How far (seconds from the file's start) its audio/video/subtitle packets really go.

    A demux-only pass (packets, no decoding). Comparing it with the header's duration tells a file cut
    short (header promises more than the data holds) from one whose video simply ends before its audio.
    None if nothing could be read.
    """
    import av

    try:
        container = _open(Path(path))
    except InputError:
        return None
    try:
        start = Fraction(container.start_time or 0, _AV_TIME_BASE)
        wanted = [s for s in container.streams if s.type in ("video", "audio", "subtitle")]
        wanted = [s for s in wanted if not (s.type == "video" and int(s.disposition) & 1024)]
        if not wanted:
            return None
        end = None
        try:
            for packet in container.demux(wanted):
                ts = packet.pts if packet.pts is not None else packet.dts
                if ts is None or packet.time_base is None:
                    continue
                t = (ts + (packet.duration or 0)) * packet.time_base
                end = t if end is None or t > end else end
        except (av.error.FFmpegError, ValueError):
            pass  # damage past this point: where the readable data ends is the answer
        return None if end is None else float(end - start)
    finally:
        container.close()

def first_video_time(path) -> Fraction | None:
    """The earliest pts (seconds) among a file's first 16 video packets; None if it has none.

    For files whose header gives no start time (a Matroska file of one frame: a pts, no dts)."""
    import av

    container = _open(Path(path))
    try:
        video = [s for s in container.streams.video if not int(s.disposition) & 1024]
        times = []
        try:
            for packet in itertools.islice(container.demux(video[:1]), 16):
                if packet.pts is not None and packet.time_base is not None:
                    times.append(packet.pts * packet.time_base)
        except (av.error.FFmpegError, ValueError):
            pass
        return min(times, default=None)
    finally:
        container.close()


def frame_count(path, stream: int, span: tuple[Fraction, Fraction | None] | None = None) -> int | None:
    """How many frames the video stream ``stream`` of ``path`` holds, None if that cannot be told.

    The container's own count where it keeps one (MP4/MOV sample tables, AVI), else the stream's packets
    counted by a demux-only pass (no decoding: one read through the file; a packet is a frame for the
    codecs we decode). Unlike duration x frame rate, right for a variable frame rate: Matroska reports
    the highest rate as the stream's.

    ``span`` ``(start, end)`` (seconds from the file's start, as ffmpeg's ``-ss``/``-t`` count them;
    ``end`` None: to the end) counts only the frames shown in ``[start, end)`` (and the one shown at
    ``start`` when it falls between frames, as a trimmed job begins with it): a demux from a seek to
    ``start`` until the packets' decode times pass ``end``.
    """
    import av

    try:
        container = _open(Path(path))
    except InputError:
        return None
    try:
        chosen = container.streams[stream]
        if span is None and chosen.frames and chosen.frames > 0:
            return int(chosen.frames)
        lo = hi = None
        if span is not None:
            tb = chosen.time_base
            origin = _start_ticks(container, chosen)
            lo = origin + math.floor(span[0] / tb)
            hi = None if span[1] is None else origin + math.ceil(span[1] / tb)
        count = 0
        earlier = at_start = False  # a frame before the span's start is seen; one shown exactly at it
        try:
            if lo is not None and span[0] > 0:
                container.seek(max(0, lo), stream=chosen, backward=True)
            for packet in container.demux(chosen):
                if not packet.size:  # the empty packet that ends demuxing
                    continue
                if lo is not None:
                    if hi is not None and packet.dts is not None and packet.dts >= hi:
                        break  # decode order: every later frame is shown after this one's decode time
                    if packet.pts is None or (hi is not None and packet.pts >= hi):
                        continue
                    if packet.pts < lo:
                        earlier = True
                        continue
                    at_start = at_start or packet.pts == lo
                count += 1
        except (av.error.FFmpegError, ValueError):
            return None  # damaged: the estimate will do for a progress bar
        if earlier and not at_start:
            count += 1  # a start between frames begins with the frame shown then (see vsr.video.span)
        return count or None
    finally:
        container.close()


def attached_picture(path, stream: int) -> bytes | None:
    """The picture (its encoded bytes: a JPEG, a PNG) of the attached-picture stream ``stream``: cover art.

    FFmpeg queues an attached picture's one packet ahead of all others, so this reads next to nothing.
    """
    import av

    container = _open(Path(path))
    try:
        try:
            for packet in container.demux(container.streams[stream]):
                if packet.size:
                    return bytes(packet)
        except (av.error.FFmpegError, ValueError):
            pass
        return None
    finally:
        container.close()


@dataclass(frozen=True)
class FrameTiming:
    """Exact timing of a video stream's decoded frames.

    ``pts``/``durations`` are integers in ``time_base`` (seconds per tick); ``frame_rate`` is ffmpeg's
    nominal rate for the stream. ``size`` is the upright (width, height) of the decoded frames and
    ``sar`` their sample (pixel) aspect ratio.
    """

    time_base: Fraction
    frame_rate: Fraction
    pts: tuple[int, ...]
    durations: tuple[int, ...]
    size: tuple[int, int] | None
    sar: Fraction = Fraction(1)

    @property
    def frames(self) -> int:
        return len(self.pts)

    @property
    def seconds(self) -> list[float]:
        """Each frame's presentation time in seconds."""
        return [float(p * self.time_base) for p in self.pts]

    @property
    def duration(self) -> float:
        """First frame start to last frame end, in seconds."""
        if not self.pts:
            return 0.0
        return float((self.pts[-1] + self.durations[-1] - self.pts[0]) * self.time_base)

    @property
    def is_constant_rate(self) -> bool:
        steps = {b - a for a, b in zip(self.pts, self.pts[1:])}
        return len(steps) <= 1


def frame_timing(path, *, stream: int | None = None) -> FrameTiming:
    """Decode the first (or the given) video stream and return its exact frame timing.

    pts count from the file's start time (as the ffmpeg command line and the pipeline's reader count
    them); ``size`` and ``sar`` are upright, i.e. after the display rotation is applied.
    """
    import av

    path = Path(path)
    container = _open(path)
    try:
        if stream is not None:
            chosen = container.streams[stream]
        else:
            chosen = next(
                (s for s in container.streams if s.type == "video" and not int(s.disposition) & 1024), None
            )
        if chosen is None or chosen.type != "video":
            raise InputError(f"{path}: has no decodable video stream")
        time_base = chosen.time_base
        frame_rate = chosen.guessed_rate or Fraction(0)
        offset = _start_ticks(container, chosen)
        pts: list[int] = []
        durations: list[int] = []
        size = None
        sar = Fraction(1)
        def frames():
            # Like the ffmpeg command line, skip a packet that fails to decode (damage it conceals) and go on.
            for packet in container.demux(chosen):
                try:
                    yield from packet.decode()
                except av.error.InvalidDataError:
                    continue

        try:
            for frame in frames():
                if frame.pts is None:
                    continue
                pts.append(frame.pts - offset)
                durations.append(max(0, frame.duration or 0))
                turned = round((frame.rotation or 0) / 90) % 2
                size = (frame.height, frame.width) if turned else (frame.width, frame.height)
                # The frame's own SAR (PyAV does not expose it), as the decoder context reports it.
                stream_sar = chosen.codec_context.sample_aspect_ratio or chosen.sample_aspect_ratio
                if stream_sar:
                    sar = 1 / Fraction(stream_sar) if turned else Fraction(stream_sar)
        except av.error.FFmpegError as err:
            raise InputError(f"{path}: cannot decode video ({_av_cause(err)})") from None
        return FrameTiming(Fraction(time_base), Fraction(frame_rate), tuple(pts), tuple(durations), size, sar)
    finally:
        container.close()
