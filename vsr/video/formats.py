"""What we read and write: file extensions, output containers and the video encoders we offer.

Tables, not probing: ffmpeg has no command-line query for "can container X hold codec Y", and a
table lets us refuse a bad combination before any work starts, with a message saying what to use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import OutputError
from .ffmpeg import encoder_pix_fmts, has_encoder

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
    video_codecs: tuple[str, ...]
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
    ("libx264", "libx265", "libvpx-vp9"),
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
        ("libx264", "libx265", "ffv1"),
        _MP4_AUDIO | {"pcm_s16le", "pcm_s24le", "pcm_s16be", "pcm_s24be", "pcm_f32le"},
        "aac",
        frozenset({"mov_text"}),
        "mov_text",
        options=_MP4_OPTIONS,
    ),
    ".mkv": Container(
        "matroska",
        ("libx264", "libx265", "libvpx-vp9", "ffv1"),
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
        "webm", ("libvpx-vp9",), frozenset({"opus", "vorbis"}), "libopus", frozenset({"webvtt"}), "webvtt",
        options=_MATROSKA_OPTIONS,
    ),
}


@dataclass(frozen=True)
class VideoCodec:
    """A video encoder we offer. ``crf`` is (lowest, highest, default); None if it takes no CRF."""

    name: str
    crf: tuple[int, int, int] | None
    presets: tuple[str, ...] = ()
    default_preset: str | None = None
    default_pix_fmt: str = "yuv420p"
    options: dict = field(default_factory=dict)
    mp4_tag: str | None = None


_X26X_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")

VIDEO_CODECS: dict[str, VideoCodec] = {
    "libx264": VideoCodec("libx264", (0, 51, 18), _X26X_PRESETS, "medium"),
    "libx265": VideoCodec(
        "libx265", (0, 51, 20), _X26X_PRESETS, "medium", options={"x265-params": "log-level=error"}, mp4_tag="hvc1"
    ),
    "libvpx-vp9": VideoCodec(
        "libvpx-vp9", (0, 63, 30), options={"b:v": "0", "row-mt": "1", "deadline": "good", "cpu-used": "2"}
    ),
    # Lossless: by default keep the model's RGB output exactly (bgr0 = 8-bit RGB, padded).
    "ffv1": VideoCodec("ffv1", None, default_pix_fmt="bgr0", options={"level": "3", "slicecrc": "1"}),
}


@dataclass(frozen=True)
class EncodeOptions:
    """The resolved video encoding for one output file."""

    container: Container
    codec: VideoCodec
    crf: int | None
    preset: str | None
    pix_fmt: str

    @property
    def is_rgb(self) -> bool:
        return self.pix_fmt.startswith(("gbr", "rgb", "bgr"))


def output_container(dst: Path) -> Container:
    try:
        return CONTAINERS[dst.suffix.lower()]
    except KeyError:
        raise OutputError(
            f"{dst}: unsupported output extension {dst.suffix or '(none)'!r}: use one of " + ", ".join(CONTAINERS)
        ) from None


def default_codec(dst: Path) -> str:
    """libx264, except where the container cannot hold it (WebM: VP9)."""
    return output_container(dst).video_codecs[0]


def resolve_encode_options(
    dst: Path,
    codec: str | None = None,
    crf: int | None = None,
    preset: str | None = None,
    pix_fmt: str | None = None,
) -> EncodeOptions:
    """Check the user's choices against the container and the ffmpeg build; raises :class:`OutputError`."""
    container = output_container(dst)
    name = codec or container.video_codecs[0]
    if name not in VIDEO_CODECS:
        raise OutputError(f"unknown codec {name!r}: use one of {', '.join(VIDEO_CODECS)}")
    if name not in container.video_codecs:
        raise OutputError(
            f"{dst.name}: a {dst.suffix} file cannot hold {name} video: use --codec "
            f"{' or '.join(container.video_codecs)}, or another extension"
        )
    spec = VIDEO_CODECS[name]
    if not has_encoder(name):
        raise OutputError(f"this ffmpeg has no {name} encoder: choose another --codec")
    if crf is not None:
        if spec.crf is None:
            raise OutputError(f"{name} is lossless and takes no --crf")
        low, high, _ = spec.crf
        if not low <= crf <= high:
            raise OutputError(f"--crf {crf} is out of range for {name}: use {low}..{high}")
    elif spec.crf is not None:
        crf = spec.crf[2]
    if preset is not None and preset not in spec.presets:
        if not spec.presets:
            raise OutputError(f"{name} takes no --preset")
        raise OutputError(f"unknown --preset {preset!r} for {name}: use one of {', '.join(spec.presets)}")
    preset = preset or spec.default_preset
    pix_fmt = pix_fmt or spec.default_pix_fmt
    supported = encoder_pix_fmts(name)
    if supported and pix_fmt not in supported:
        raise OutputError(f"{name} cannot encode --pix-fmt {pix_fmt}: use one of {', '.join(supported)}")
    return EncodeOptions(container, spec, crf, preset, pix_fmt)


def video_output_name(src: Path) -> str:
    """Output file name for a video in folder mode: same name, or ``.mkv`` if we cannot write that container."""
    return src.name if src.suffix.lower() in CONTAINERS else src.stem + ".mkv"


def image_output_name(src: Path) -> str:
    return src.name
