"""What we read and write: file extensions, output containers, and the video encoder of an output.

Containers are a table: ffmpeg has no command-line query for "can container X hold codec Y", and a
table lets us refuse a bad combination before any work starts, with a message saying what to use.
Where the table does not restrict (most containers), the muxer itself has the last word before the
first frame is upscaled: in the trial encode (:func:`vsr.video.writer.trial_encode`) for the video, in
the dry mux of the source's other streams (:mod:`vsr.video.streams`) for the rest.

Encoders are asked of the ffmpeg in use: any video encoder ``ffmpeg -encoders`` lists may be
named, its pixel formats and options come from ``ffmpeg -h encoder=NAME``, and ``--crf``/``--preset``
map onto the options it really has. :data:`VIDEO_CODECS` only holds vsr's defaults for the encoders
it knows well (quality, speed, quiet logs).

Bit depth: the model works on 8-bit RGB, so what a 10-bit source had beyond 8 bits is lost on the
way in and not recovered. Such a source is still *encoded* at its depth by default (yuv420p10le, or
the encoder's own 10-bit format such as NVENC's p010le) when the encoder has one: the model's RGB
then becomes YCbCr without rounding levels away, and the encoder quantises at 10 bits, so neither
adds banding of its own. When the output is shallower than the source, the summary says so.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..errors import OutputError
from .ffmpeg import encoder_options as avoptions_of
from .ffmpeg import encoder_pix_fmts, encoders, ffmpeg_exe

VIDEO_EXTENSIONS = frozenset(
    {
        ".mp4",
        ".m4v",
        ".mov",
        ".mkv",
        ".webm",
        ".avi",
        ".mpg",
        ".mpeg",
        ".ts",
        ".m2ts",
        ".mts",
        ".flv",
        ".wmv",
        ".3gp",
        ".ogv",
        ".mxf",
        ".vob",
    }
)
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"})
#: Image outputs that can carry an alpha channel.
ALPHA_IMAGE_EXTENSIONS = frozenset({".png", ".webp", ".tif", ".tiff"})
#: Image outputs that can carry EXIF (date, camera, GPS): all but BMP.
EXIF_IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff"})

TEXT_SUBTITLES = frozenset({"subrip", "srt", "ass", "ssa", "webvtt", "mov_text", "text", "subviewer", "microdvd"})


@dataclass(frozen=True)
class Container:
    """An output container: its ffmpeg muxer and what it can hold."""

    muxer: str
    default_codec: str  # the video encoder used when none is named
    audio_copy: frozenset | None  # audio codecs stored as they are (None: any)
    audio_encoder: str  # what other audio is re-encoded to
    subtitle_copy: frozenset  # subtitle codecs stored as they are
    text_subtitle_encoder: str | None  # what other *text* subtitles become (bitmap ones are dropped)
    attachments: bool = False
    #: How cover art (a source's attached picture) is kept: "stream" (a one-picture video stream marked
    #: attached_pic: MP4's ``covr``), "attachment" (a Matroska attachment, as Matroska stores covers), or
    #: None (dropped).
    cover_art: str | None = None
    options: dict = field(default_factory=dict)
    video_formats: frozenset | None = None  # video codecs it holds (None: its muxer decides, in the trial)


_MP4_AUDIO = frozenset({"aac", "mp3", "ac3", "eac3", "alac", "opus", "flac", "mp2"})
# faststart: playable while downloading. use_metadata_tags: keep every metadata key (phones write
# vendor keys such as com.apple.quicktime.*), not only the handful the classic udta atoms know.
# movie_timescale: an edit list's empty edit (video starting after the audio, a segment's offset) is
# counted in the movie time scale, 1/1000 s by default, in which Debian's ffmpeg 5.1 moved a start of
# 0.5005 s to 0.5 s; the finest common time base of the usual video rates keeps it exact.
_MP4_OPTIONS = {"movflags": "+faststart+use_metadata_tags", "movie_timescale": "90000"}
# Matroska can store a negative timestamp (AAC priming, an Opus pre-skip); ffmpeg 5.1 shifted every
# stream of the file later by that amount instead (subtitle cues 23 ms late) unless told not to; the
# bundled 9.0 writes it either way, so this only makes the choice explicit.
_MATROSKA_OPTIONS = {"avoid_negative_ts": "disabled"}
_MP4 = Container(
    "mp4",
    "libx264",
    _MP4_AUDIO,
    "aac",
    frozenset({"mov_text"}),
    "mov_text",
    cover_art="stream",
    options=_MP4_OPTIONS,
)
#: Cover art codecs by how they can be kept, with the MIME type a Matroska attachment declares. (ffmpeg's
#: mov muxer writes ``covr`` only in MP4 mode: a .mov drops cover art.)
COVER_MIMETYPES = {"mjpeg": "image/jpeg", "png": "image/png", "bmp": "image/bmp"}
COVER_CODECS = {"stream": frozenset(COVER_MIMETYPES), "attachment": frozenset({"mjpeg", "png"})}

CONTAINERS: dict[str, Container] = {
    ".mp4": _MP4,
    ".m4v": _MP4,
    ".mov": Container(
        "mov",
        "libx264",
        # ffmpeg's mov muxer takes FLAC and Opus only in its MP4 mode ("flac only supported in MP4").
        (_MP4_AUDIO - {"flac", "opus"}) | {"pcm_s16le", "pcm_s24le", "pcm_s16be", "pcm_s24be", "pcm_f32le"},
        "aac",
        frozenset({"mov_text"}),
        "mov_text",
        options=_MP4_OPTIONS,
    ),
    ".mkv": Container(
        "matroska",
        "libx264",
        None,
        "flac",
        frozenset(
            {"subrip", "ass", "ssa", "webvtt", "dvd_subtitle", "hdmv_pgs_subtitle", "dvb_subtitle", "dvb_teletext"}
        ),
        "srt",
        attachments=True,
        cover_art="attachment",
        options=_MATROSKA_OPTIONS,
    ),
    ".webm": Container(
        "webm", "libvpx-vp9", frozenset({"opus", "vorbis"}), "libopus", frozenset({"webvtt"}), "webvtt",
        options=_MATROSKA_OPTIONS, video_formats=frozenset({"vp8", "vp9", "av1"}),
    ),
}


@dataclass(frozen=True)
class VideoCodec:
    """A video encoder of the ffmpeg in use, and how vsr drives it.

    ``crf`` is (lowest, highest, default) of its constant-quality option ``crf_option`` (``crf``, or
    NVENC's ``cq``), a bound None where the encoder states none, the default None to leave the
    encoder's own; ``crf`` None: it has no such option. ``preset_option`` None: it takes no preset;
    ``presets`` are the values it names (empty: any, checked by the trial encode unless
    ``preset_range`` bounds a number). ``format`` is the codec it makes (h264, hevc, av1, ...).
    ``hw_upload``: the device type its frames must be uploaded to (VAAPI, Vulkan), None for system memory.
    """

    name: str
    crf: tuple[float | None, float | None, float | None] | None
    presets: tuple[str, ...] = ()
    default_preset: str | None = None
    default_pix_fmt: str = "yuv420p"
    options: dict = field(default_factory=dict)
    format: str = ""
    crf_option: str = "crf"
    preset_option: str | None = "preset"
    preset_range: tuple[float | None, float | None] | None = None
    lossless: bool = False
    hw_upload: str | None = None

    @property
    def mp4_tag(self) -> str | None:
        """The sample entry MP4/MOV need for Apple players: ``hvc1`` for HEVC (ffmpeg writes ``hev1``)."""
        return "hvc1" if self.format == "hevc" else None


_X26X_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")

#: vsr's defaults for the encoders it knows well; any other encoder of the ffmpeg in use is driven
#: from what ``-h encoder=NAME`` says (see :func:`video_codec`).
VIDEO_CODECS: dict[str, VideoCodec] = {
    "libx264": VideoCodec("libx264", (0, 51, 18), _X26X_PRESETS, "medium", format="h264"),
    "libx265": VideoCodec(
        "libx265", (0, 51, 20), _X26X_PRESETS, "medium", options={"x265-params": "log-level=error"}, format="hevc"
    ),
    "libvpx-vp9": VideoCodec(
        "libvpx-vp9", (0, 63, 30), options={"b:v": "0", "row-mt": "1", "deadline": "good", "cpu-used": "2"},
        format="vp9", preset_option=None,
    ),
    # Without a CRF libaom aims at its default bitrate (a few hundred kbit/s), far too little for x4
    # frames; its default speed (cpu-used 1) is its slowest usable one.
    "libaom-av1": VideoCodec(
        "libaom-av1", (0, 63, 30), options={"row-mt": "1", "cpu-used": "4"}, format="av1", preset_option=None
    ),
    # Lossless: by default keep the model's RGB output exactly (bgr0 = 8-bit RGB, padded).
    "ffv1": VideoCodec(
        "ffv1", None, default_pix_fmt="bgr0", options={"level": "3", "slicecrc": "1"}, format="ffv1",
        preset_option=None, lossless=True,
    ),
}

#: Pixel formats that live in a device's memory: an encoder taking only these needs its frames uploaded.
_UPLOAD_DEVICES = {"vaapi": "vaapi", "vulkan": "vulkan"}


def _pix_format(name: str):
    """PyAV's description of a pixel format (bits, planes, chroma size), None if unknown."""
    import av

    try:
        return av.VideoFormat(name, 4, 4)
    except (ValueError, TypeError, av.FFmpegError):
        return None


def pix_fmt_depth(name: str | None) -> int | None:
    """Bits per sample of a pixel format (``yuv420p10le`` -> 10); None if unknown or a device format."""
    fmt = _pix_format(name) if name else None
    if fmt is None or not fmt.components:
        return None
    return max(c.bits for c in fmt.components)


def is_rgb_pix_fmt(name: str) -> bool:
    fmt = _pix_format(name)
    if fmt is None:
        return name.startswith(("gbr", "rgb", "bgr", "x2rgb", "x2bgr"))
    return bool(fmt.is_rgb)


def size_step(name: str) -> tuple[int, int]:
    """The multiple a frame's (width, height) must be in ``name``: (2, 2) for 4:2:0, (2, 1) for 4:2:2."""
    fmt = _pix_format(name)
    if fmt is None or not fmt.components:
        return 2, 2  # a device format: uploaded from nv12 or p010, both 4:2:0
    chroma = [c for c in fmt.components if c.is_chroma]
    if not chroma:
        return 1, 1
    return max(4 // c.width for c in chroma), max(4 // c.height for c in chroma)


def _layout(name: str) -> tuple | None:
    fmt = _pix_format(name)
    if fmt is None or not fmt.components:
        return None
    return (bool(fmt.is_rgb), len(fmt.components), size_step(name))


def deeper_pix_fmt(base: str, supported: tuple[str, ...], depth: int) -> str | None:
    """The format among ``supported`` laid out like ``base`` (RGB or not, planes, chroma subsampling)
    that comes closest to holding ``depth`` bits: the shallowest at least that deep, else the deepest
    over 8 bits; None if none is deeper than 8 bits. Ties go to the encoder's own order."""
    layout = _layout(base)
    candidates = []
    for order, name in enumerate(supported):
        bits = pix_fmt_depth(name)
        if bits is None or bits <= 8 or name.endswith("be") or "msb" in name or _layout(name) != layout:
            continue
        candidates.append(((0, bits) if bits >= depth else (1, -bits), order, name))
    return min(candidates)[2] if candidates else None


def video_codec(name: str) -> VideoCodec:
    """How vsr drives the encoder ``name``: its table entry (with the codec it makes filled in), or
    one built from ``ffmpeg -h encoder=NAME``. The caller checked that the encoder exists."""
    listing = encoders()[name]
    known = VIDEO_CODECS.get(name)
    if known is not None:
        return replace(known, format=listing.codec)
    options = avoptions_of(name)
    crf, crf_option = None, "crf"
    for option in ("crf", "cq"):  # cq: NVENC's constant quality
        if option in options:
            o = options[option]
            crf, crf_option = (max(0.0, o.low) if o.low is not None else 0.0, o.high, None), option
            break
    preset = options.get("preset")
    supported = encoder_pix_fmts(name)
    software = [f for f in supported if _layout(f) is not None]
    hw_upload = None
    if "yuv420p" in supported or not supported:
        pix_fmt = "yuv420p"
    elif software:
        pix_fmt = "nv12" if "nv12" in software else software[0]
    else:
        hw_upload = next((_UPLOAD_DEVICES[f] for f in supported if f in _UPLOAD_DEVICES), None)
        pix_fmt = "nv12"
    return VideoCodec(
        name,
        crf,
        presets=preset.constants if preset else (),
        default_pix_fmt=pix_fmt,
        format=listing.codec,
        crf_option=crf_option,
        preset_option="preset" if preset else None,
        preset_range=(preset.low, preset.high) if preset and preset.type in ("int", "float") else None,
        hw_upload=hw_upload,
    )


@dataclass(frozen=True)
class EncodeOptions:
    """The resolved video encoding for one output file.

    ``encoder_options`` are the user's ``--encoder-opt`` pairs (validated, order kept); ``notes`` go
    to the summary (a bit depth reduced, an option mapped onto the encoder's own).
    """

    container: Container
    codec: VideoCodec
    crf: float | None
    preset: str | None
    pix_fmt: str
    encoder_options: tuple[tuple[str, str], ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def is_rgb(self) -> bool:
        return is_rgb_pix_fmt(self.pix_fmt)

    def identity(self) -> dict:
        """What a work folder's manifest records of the encoding (keys only where they are set, so
        folders written before a key existed still match)."""
        out = {
            "container": self.container.muxer,
            "codec": self.codec.name,
            "crf": self.crf,
            "preset": self.preset,
            "pix_fmt": self.pix_fmt,
        }
        if self.encoder_options:
            out["encoder_options"] = [f"{k}={v}" for k, v in self.encoder_options]
        return out


def output_container(dst: Path) -> Container:
    try:
        return CONTAINERS[dst.suffix.lower()]
    except KeyError:
        raise OutputError(
            f"{dst}: unsupported output extension {dst.suffix or '(none)'!r}: use one of " + ", ".join(CONTAINERS)
        ) from None


def default_codec(dst: Path) -> str:
    """libx264, except where the container cannot hold it (WebM: VP9)."""
    return output_container(dst).default_codec


#: ffmpeg options vsr sets itself, and the vsr option to use instead (None: not the user's to set).
_RESERVED_OPTIONS = {
    "c": "--codec", "codec": "--codec", "vcodec": "--codec", "crf": "--crf", "preset": "--preset",
    "pix_fmt": "--pix-fmt", "s": "--width/--height/--outscale", "vf": None, "filter": None,
    "filter_complex": None, "map": None, "f": None, "r": None, "fps_mode": None, "enc_time_base": None,
    "tag": None, "frames": None, "vframes": None, "t": None, "ss": None, "to": None, "metadata": None,
    "map_metadata": None, "map_chapters": None, "i": None, "y": None, "n": None, "an": None, "vn": None,
    "sn": None, "dn": None, "colorspace": None, "color_primaries": None, "color_trc": None,
    "color_range": None,
}
_OPTION_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")


def parse_encoder_options(items) -> tuple[tuple[str, str], ...]:
    """``["g=5", "x264-params=keyint=5:scenecut=0"]`` (or a dict) -> ``(("g", "5"), ...)``.

    Checked for form only (``KEY=VALUE``, KEY an option name, optionally ``:v``; no option vsr sets
    itself; none twice); whether the encoder takes it is for the trial encode to find out. Raises
    :class:`OutputError`.
    """
    if not items:
        return ()
    if isinstance(items, dict):
        given = [(str(k), str(v), f"{k}={v}") for k, v in items.items()]
    else:
        given = [(*str(item).partition("=")[::2], str(item)) for item in items]
    seen: dict[str, str] = {}
    for key, value, shown in given:
        key = key.strip().removeprefix("-").removesuffix(":v")
        if not _OPTION_KEY.match(key) or not value or any(c in value for c in "\n\r\0"):
            raise OutputError(
                f"--encoder-opt takes KEY=VALUE with an option name and a value (e.g. g=48 or "
                f"x264-params=keyint=48), not {shown!r}"
            )
        if key in _RESERVED_OPTIONS:
            instead = _RESERVED_OPTIONS[key]
            raise OutputError(
                f"--encoder-opt {key}: "
                + (f"use {instead}" if instead else "vsr sets this itself; it is not an encoder option")
            )
        if key in seen:
            raise OutputError(f"--encoder-opt {key} is given twice ({key}={seen[key]}, {key}={value}): give it once")
        seen[key] = value
    return tuple(seen.items())


def _check_codec_name(name: str) -> None:
    listing = encoders()
    found = listing.get(name)
    if found is not None and found.kind == "video":
        return
    if found is not None:
        raise OutputError(f"--codec {name} is an {found.kind} encoder; give a video encoder (e.g. libx264)")
    video = sorted(n for n, e in listing.items() if e.kind == "video")
    close = difflib.get_close_matches(name, video, n=4, cutoff=0.6)
    hint = (
        f"did you mean {', '.join(close)}?"
        if close
        else "use one it lists, e.g. " + ", ".join(n for n in VIDEO_CODECS if n in listing)
    )
    raise OutputError(
        f"unknown --codec {name!r}: this ffmpeg has no such video encoder; {hint} "
        f"(`{ffmpeg_exe()} -hide_banner -encoders` lists them)"
    )


def _check_container(dst: Path, container: Container, spec: VideoCodec) -> None:
    if container.video_formats is None or spec.format in container.video_formats:
        return
    listing = encoders()
    fits = [container.default_codec] + [
        n for n in ("libvpx", "libaom-av1", "libsvtav1") if n in listing and listing[n].codec in container.video_formats
    ]
    raise OutputError(
        f"{dst.name}: a {dst.suffix} file cannot hold {spec.name} video ({spec.format}): use --codec "
        f"{' or '.join(dict.fromkeys(fits))}, or another extension"
    )


def _check_crf(spec: VideoCodec, crf) -> list[str]:
    if spec.crf is None:
        if spec.lossless:
            raise OutputError(f"{spec.name} is lossless and takes no --crf")
        options = avoptions_of(spec.name)
        example = "qp=24" if "qp" in options else "global_quality=24" if "global_quality" in options else "b=20M"
        raise OutputError(
            f"{spec.name} takes no --crf (it has no crf or cq option): set its rate control with "
            f"--encoder-opt, e.g. {example} (`ffmpeg -h encoder={spec.name}` lists its options)"
        )
    low, high, _ = spec.crf
    if (low is not None and crf < low) or (high is not None and crf > high):
        span = f"{_number(low) if low is not None else '...'}..{_number(high) if high is not None else ''}"
        raise OutputError(f"--crf {_number(crf)} is out of range for {spec.name}: use {span}")
    if spec.crf_option != "crf":
        return [f"--crf {_number(crf)} set as {spec.name}'s -{spec.crf_option} (its constant-quality option)"]
    return []


def _number(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _check_preset(spec: VideoCodec, preset: str) -> None:
    if spec.preset_option is None:
        raise OutputError(f"{spec.name} takes no --preset")
    if preset in spec.presets:
        return
    if spec.preset_range is not None:
        try:
            value = float(preset)
        except ValueError:
            value = None
        low, high = spec.preset_range
        if value is not None and (low is None or value >= low) and (high is None or value <= high):
            return
        if not spec.presets:
            raise OutputError(
                f"--preset {preset!r} for {spec.name}: give a number in {_number(low)}..{_number(high)}"
            )
    if spec.presets:
        raise OutputError(f"unknown --preset {preset!r} for {spec.name}: use one of {', '.join(spec.presets)}")
    # A string preset vsr has no list for: the trial encode asks the encoder itself.


def _depth_choice(spec, pix_fmt, supported, source_depth, explicit) -> tuple[str, list[str]]:
    """The output pixel format for a source of ``source_depth`` bits, and what the summary says of it."""
    if not explicit and source_depth and source_depth > 8:
        if spec.hw_upload is not None:
            pix_fmt = "p010le"
        else:
            pix_fmt = deeper_pix_fmt(pix_fmt, supported, source_depth) or pix_fmt
    depth = pix_fmt_depth(pix_fmt)
    if not source_depth or source_depth <= 8 or depth is None:
        return pix_fmt, []
    if depth < source_depth:
        why = f"--pix-fmt {pix_fmt}" if explicit else f"{spec.name} has no deeper pixel format"
        return pix_fmt, [f"{source_depth}-bit source written as {depth}-bit {pix_fmt} ({why})"]
    return pix_fmt, [f"{source_depth}-bit source: upscaled at 8 bit, encoded as {depth}-bit {pix_fmt}"]


def resolve_encode_options(
    dst: Path,
    codec: str | None = None,
    crf: float | None = None,
    preset: str | None = None,
    pix_fmt: str | None = None,
    encoder_options=None,
    source_pix_fmt: str | None = None,
) -> EncodeOptions:
    """Check the user's choices against the container and the ffmpeg in use; raises :class:`OutputError`.

    ``source_pix_fmt`` (the input video's) picks the default depth: a source deeper than 8 bits is
    encoded in the encoder's deeper format of the same layout when it has one (see the module docstring).
    Options the encoder itself must judge (an ``--encoder-opt``, a string preset) are left to
    :func:`vsr.video.writer.trial_encode`.
    """
    container = output_container(dst)
    name = codec or container.default_codec
    _check_codec_name(name)
    spec = video_codec(name)
    _check_container(dst, container, spec)
    notes: list[str] = []
    if crf is not None:
        notes += _check_crf(spec, crf)
    elif spec.crf is not None:
        crf = spec.crf[2]
    if preset is not None:
        _check_preset(spec, str(preset))
    preset = preset if preset is not None else spec.default_preset
    supported = encoder_pix_fmts(name)
    explicit = pix_fmt is not None
    pix_fmt, depth_notes = _depth_choice(
        spec, pix_fmt or spec.default_pix_fmt, supported, pix_fmt_depth(source_pix_fmt), explicit
    )
    if explicit and spec.hw_upload is None and supported and pix_fmt not in supported:
        raise OutputError(f"{name} cannot encode --pix-fmt {pix_fmt}: use one of {', '.join(supported)}")
    if explicit and _pix_format(pix_fmt) is None:
        raise OutputError(f"--pix-fmt {pix_fmt}: not a pixel format this ffmpeg knows (e.g. yuv420p, yuv420p10le)")
    options = parse_encoder_options(encoder_options)
    return EncodeOptions(container, spec, crf, preset, pix_fmt, options, tuple(notes + depth_notes))


def video_output_name(src: Path) -> str:
    """Output file name for a video in folder mode: same name, or ``.mkv`` if we cannot write that container."""
    return src.name if src.suffix.lower() in CONTAINERS else src.stem + ".mkv"


def image_output_name(src: Path) -> str:
    return src.name
