"""Probing media with ffmpeg alone (no ffprobe: imageio-ffmpeg ships none).

Two probes, each one ffmpeg run:

- :func:`probe` reads the container header: ``ffmpeg -i FILE`` with no output prints the input's
  description (format, duration, start, global metadata, chapters, every stream with codec, size,
  rotation and tags) and exits. We parse that text. It costs milliseconds and reads no frames.
  Numbers there are rounded for display (``29.97 fps``), so it is used for planning, never for timing.
- :func:`frame_timing` decodes the first video stream through ffmpeg's ``showinfo`` filter into the
  ``null`` muxer and parses the exact rational time base and frame rate (``config in`` line) and every
  frame's integer pts/duration. It is exact but costs a decode; tests use it to compare input and output.
  The pipeline's reader parses the same ``showinfo`` lines while it decodes, so it gets exact timing for free.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from ..errors import InputError
from .ffmpeg import clean_message, log_level, media_arg, run_ffmpeg

_INPUT = re.compile(r"^Input #0, (?P<fmt>.+?), from '")
_DURATION = re.compile(r"^ {2}Duration: (?:(?P<h>\d+):(?P<m>\d+):(?P<s>[\d.]+)|N/A)(?:, start: (?P<start>-?[\d.]+))?")
_CHAPTER = re.compile(r"^ {4}Chapter #\d+:\d+: start (?P<start>-?[\d.]+), end (?P<end>-?[\d.]+)")
_STREAM = re.compile(
    r"^ {2}Stream #0:(?P<index>\d+)(?:\[0x[0-9a-f]+\])?(?:\((?P<lang>[^)]*)\))?: "
    r"(?P<kind>Video|Audio|Subtitle|Data|Attachment): (?P<codec>[^\s,]+)(?P<rest>.*)$"
)
_SIZE = re.compile(r"(?<![\w/])([1-9]\d*)x([1-9]\d*)(?![\w])")
_FPS = re.compile(r"([\d.]+k?) (fps|tbr|tbn)")
_STREAM_START = re.compile(r", start (-?[\d.]+)")
_ROTATION = re.compile(r"display ?matrix: rotation of (-?[\d.]+) degrees", re.IGNORECASE)
_KEY_VALUE = re.compile(r"^(?P<indent> +)(?P<key>\S[^:]*?)\s*: (?P<value>.*)$")
_CONTINUATION = re.compile(r"^ +: (?P<value>.*)$")
_HZ = re.compile(r"(\d+) Hz, ([^,]+)")
_PIX_FMT = re.compile(r", (?P<pix_fmt>[a-z0-9_]+)(?:\((?P<props>[^)]*)\))?")

# showinfo lines (shared with the reader).
SHOWINFO_CONFIG = re.compile(r"config in time_base: (\d+)/(\d+), frame_rate: (\d+)/(\d+)")
SHOWINFO_FRAME = re.compile(
    r"\bn:\s*(?P<n>\d+) pts:\s*(?P<pts>-?\d+) pts_time:\S+\s+(?:duration:\s*(?P<dur>-?\d+)\s)?.*?"
    r"\bsar:(?P<sar_n>\d+)/(?P<sar_d>\d+) s:(?P<w>\d+)x(?P<h>\d+)"
)

_CHANNELS = {"mono": 1, "stereo": 2, "2.1": 3, "quad": 4, "4.0": 4, "5.0": 5, "5.1": 6, "6.1": 7, "7.1": 8}


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
    start: float
    end: float
    title: str | None = None


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


def _seconds(text: str) -> float:
    return float(text[:-1]) * 1000 if text.endswith("k") else float(text)


def _channels(layout: str) -> int | None:
    layout = layout.strip()
    base = layout.split("(")[0]
    if base in _CHANNELS:
        return _CHANNELS[base]
    m = re.match(r"(\d+) channels", layout)
    return int(m.group(1)) if m else None


def parse_header(text_lines: list[str], path: Path) -> MediaInfo:
    """Parse the ``Input #0`` description that ``ffmpeg -i`` prints (level prefixes allowed)."""
    fmt = None
    duration = start = None
    streams: list[dict] = []
    chapters: list[dict] = []
    metadata: dict = {}
    target: dict | None = None  # the metadata dict that indented key/value lines belong to
    meta_indent = 0
    for raw in text_lines:
        _, level, line = log_level(raw)
        if level and level not in ("info",):
            continue
        if fmt is None:
            m = _INPUT.match(line)
            if m:
                fmt = m["fmt"]
            continue
        if not line.startswith("  "):  # end of the input description
            if line.startswith(("Stream mapping", "Output #", "At least one output", "[")) or not line.strip():
                break
            continue
        stripped = line.strip()
        if stripped == "Metadata:":
            indent = len(line) - len(line.lstrip())
            if indent == 2:
                target = metadata
            elif indent == 4 and streams:
                target = streams[-1]["metadata"]
            elif indent == 6 and chapters:
                target = chapters[-1]["metadata"]
            else:
                target = None
            meta_indent = indent + 2
            continue
        if stripped == "Side data:":
            target = None
            continue
        m = _DURATION.match(line)
        if m:
            target = None
            if m["s"] is not None:
                duration = int(m["h"]) * 3600 + int(m["m"]) * 60 + float(m["s"])
            if m["start"] is not None:
                start = float(m["start"])
            continue
        m = _CHAPTER.match(line)
        if m:
            target = None
            chapters.append({"start": float(m["start"]), "end": float(m["end"]), "metadata": {}})
            continue
        m = _STREAM.match(line)
        if m:
            target = None
            streams.append(_stream_fields(m))
            continue
        m = _ROTATION.search(line)
        if m and streams:
            streams[-1]["rotation"] = float(m.group(1))
            continue
        if target is None:
            continue
        m = _KEY_VALUE.match(line)
        if m and len(m["indent"]) == meta_indent:
            target[m["key"]] = m["value"]
            continue
        m = _CONTINUATION.match(line)
        if m and target:
            last = next(reversed(target))
            target[last] += "\n" + m["value"]
    if fmt is None:
        raise ValueError("no 'Input #0' description in ffmpeg's output")
    for s in streams:
        if s["language"] in (None, "und"):
            s["language"] = s["metadata"].get("language") or s["language"]
    return MediaInfo(
        path=path,
        format=fmt,
        duration=duration,
        start=start,
        streams=tuple(StreamInfo(**s) for s in streams),
        metadata=metadata,
        chapters=tuple(Chapter(c["start"], c["end"], c["metadata"].get("title")) for c in chapters),
    )


def _stream_fields(m: re.Match) -> dict:
    rest = m["rest"]
    kind = m["kind"].lower()
    fields: dict = {
        "index": int(m["index"]),
        "kind": kind,
        "codec": m["codec"],
        "language": m["lang"],
        "attached_pic": "(attached pic)" in rest,
        "default": "(default)" in rest,
        "metadata": {},
    }
    start = _STREAM_START.search(rest)
    if start:
        fields["start"] = float(start.group(1))
    if kind == "video":
        size = _SIZE.search(rest)
        if size:
            fields["width"], fields["height"] = int(size.group(1)), int(size.group(2))
        rates = {unit: _seconds(value) for value, unit in _FPS.findall(rest)}
        fields["fps"] = rates.get("fps") or rates.get("tbr")
        fields.update(_color_fields(rest))
    elif kind == "audio":
        hz = _HZ.search(rest)
        if hz:
            fields["sample_rate"] = int(hz.group(1))
            fields["channels"] = _channels(hz.group(2))
    return fields


def _color_fields(rest: str) -> dict:
    """Pixel format and colour tags from e.g. ``, yuv420p(tv, bt470bg/smpte170m/smpte170m, progressive)``."""
    m = _PIX_FMT.search(rest)
    if m is None:
        return {}
    fields = {"pix_fmt": m["pix_fmt"]}
    for token in (m["props"] or "").split(", "):
        if token in ("tv", "pc", "progressive", "") or "first" in token:
            continue
        space, _, more = token.partition("/")
        trc = more.partition("/")[2] if more else space
        fields["color_space"] = None if space in ("unknown", "reserved") else space
        fields["color_trc"] = None if trc in ("unknown", "reserved") else trc
        break
    return fields


def probe(path) -> MediaInfo:
    """Describe a media file from its header; raises :class:`InputError` if ffmpeg cannot open it."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a media file")
    rc, lines = run_ffmpeg(["-hide_banner", "-nostdin", "-loglevel", "level+info", "-i", media_arg(path)])
    try:
        return parse_header(lines, path)
    except ValueError:
        errors = [clean_message(log_level(x)[2]) for x in lines if log_level(x)[1] in ("error", "fatal")]
        cause = errors[0] if errors else (clean_message(lines[-1]) if lines else f"ffmpeg exited with {rc}")
        raise InputError(f"{path}: not a readable video or image ({cause})") from None


_STATS_TIME = re.compile(r"time=(-?)(\d+):(\d+):([\d.]+)")


def demuxed_end(path) -> float | None:
    """How far (seconds from the start) the file's audio/video/subtitle packets really go.

    A demux-only pass (``-c copy`` into the null muxer: no decoding). Comparing it with the header's
    duration tells a file cut short (header promises more than the data holds) from one whose video
    simply ends before its audio. None if ffmpeg could not tell.
    """
    _, lines = run_ffmpeg(
        ["-hide_banner", "-nostdin", "-loglevel", "level+info", "-stats", "-i", media_arg(path)]
        + ["-map", "0:V?", "-map", "0:a?", "-map", "0:s?", "-c", "copy", "-f", "null", "-"]
    )
    times = [m for line in lines for m in _STATS_TIME.finditer(line.replace("\r", "\n"))]
    if not times:
        return None
    sign, h, m, sec = times[-1].groups()
    value = int(h) * 3600 + int(m) * 60 + float(sec)
    return -value if sign else value


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
    """Decode the first (or the given) video stream and return its exact frame timing."""
    path = Path(path)
    label = f"0:{stream}" if stream is not None else "0:v:0"
    rc, lines = run_ffmpeg(
        ["-hide_banner", "-nostdin", "-nostats", "-loglevel", "level+info", "-i", media_arg(path)]
        + ["-filter_complex", f"[{label}]showinfo=checksum=0[v]", "-map", "[v]"]
        + ["-fps_mode", "passthrough", "-f", "null", "-"]
    )
    if rc != 0:
        errors = [clean_message(log_level(x)[2]) for x in lines if log_level(x)[1] in ("error", "fatal")]
        raise InputError(f"{path}: cannot decode video ({errors[0] if errors else f'ffmpeg exited with {rc}'})")
    time_base = frame_rate = None
    pts: list[int] = []
    durations: list[int] = []
    size = None
    sar = Fraction(1)
    for line in lines:
        if "showinfo" not in line:
            continue
        m = SHOWINFO_CONFIG.search(line)
        if m and time_base is None:
            time_base = Fraction(int(m[1]), int(m[2]))
            frame_rate = Fraction(int(m[3]), int(m[4])) if int(m[4]) else Fraction(0)
            continue
        m = SHOWINFO_FRAME.search(line)
        if m:
            pts.append(int(m["pts"]))
            durations.append(int(m["dur"]) if m["dur"] is not None else 0)
            size = (int(m["w"]), int(m["h"]))
            if int(m["sar_n"]) and int(m["sar_d"]):
                sar = Fraction(int(m["sar_n"]), int(m["sar_d"]))
    if time_base is None:
        raise InputError(f"{path}: has no decodable video stream")
    return FrameTiming(time_base, frame_rate, tuple(pts), tuple(durations), size, sar)
