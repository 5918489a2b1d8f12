"""Encoding upscaled frames with ffmpeg, carrying over everything else from the source.

The encoder ffmpeg has two inputs: our frames as Matroska on stdin (see :mod:`.matroska`, which keeps
each frame's own timestamp) and the source file, from which audio, subtitles, attachments, cover art,
chapters and metadata are mapped. Audio and subtitles are stream-copied where the output container can
hold them, otherwise converted, and each such decision becomes a note in the summary.

Cover art (a video stream whose disposition is ``attached_pic``: one picture, not frames) is never
upscaled. MP4 keeps it as such a stream (stream copy); Matroska keeps covers as attachments, which
ffmpeg's muxer does not make of an attached-picture stream, so the picture is read out of the source
into a temporary file and attached (``-attach``) with its MIME type and name (the source's, else
``cover.jpg``/``cover.png`` as Matroska names covers). Elsewhere it is dropped, with a note.

Timing: the encoder's time base is the source stream's, so timestamps round-trip exactly (nanoseconds in
the pipe are far finer than any real time base). Input 0 is given ``-itsoffset`` equal to the first
frame's time so ffmpeg's start-time normalisation treats both inputs alike: A/V sync is as in the source.

Trimmed jobs (``--start``/``--duration``, a :class:`~vsr.video.span.Trim`): the source input gets
``-ss``/``-t``, which cut audio and subtitles; chapters come cut and shifted from an ffmetadata file
(:func:`trimmed_chapters`); the output gets ``-t`` too and ``-copypriorss 0`` on audio and subtitles, without which
ffmpeg also copies every packet from the keyframe its seek lands on (negative timestamps; Matroska
would then start seconds early). Stream-copied audio is therefore cut at its packet boundaries
(AAC: 21-23 ms), as ``ffmpeg -ss -c copy`` cuts it; re-encoded audio is cut to the sample.
Subtitles ffmpeg *converts* are the exception: ffmpeg 9.0 does not shift decoded subtitles by
either ``-ss`` (measured: srt -> mov_text cues kept their source times or came out garbled), so
they are converted untrimmed into a side file first (:func:`subtitle_side_command`) and then
stream-copied from it with the same cut, which does shift them.
"""

from __future__ import annotations

import contextlib
import queue
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import ffmpeg as ffmpeg_python
import numpy as np

from ..errors import FFmpegError, OutputError
from .ffmpeg import FFmpegProcess, clean_message, ffmpeg_exe, log_level, media_arg
from .formats import COVER_CODECS, COVER_MIMETYPES, TEXT_SUBTITLES, Container, EncodeOptions
from .matroska import RawVideoMuxer
from .probe import MediaInfo, StreamInfo, attached_picture
from .size import resize_frame
from .span import Trim, seconds_arg

_END = object()


@dataclass
class StreamPlan:
    """Which source streams go to the output, how, and what we tell the user about it."""

    streams: list[tuple[StreamInfo, dict]] = field(default_factory=list)  # (source stream, codec options)
    notes: list[str] = field(default_factory=list)
    #: Covers to attach (Matroska): (source stream, MIME type, file name); see :func:`cover_files`.
    covers: list[tuple[StreamInfo, str, str]] = field(default_factory=list)
    #: The covers' pictures as files, while :func:`cover_files` holds them (one per entry of ``covers``).
    cover_paths: list[Path] = field(default_factory=list)
    #: Muxer options that replace the container's for this file (MP4 with cover art: see plan_streams).
    options: dict = field(default_factory=dict)


#: Global metadata keys ffmpeg's MP4 muxer stores without ``use_metadata_tags``: the iTunes ``ilst`` atoms
#: and the container's own fields. ffmpeg writes cover art (``covr``) only in that ``ilst``, never with
#: ``use_metadata_tags``, which keeps any key (a phone's ``com.apple.quicktime.*``) but no cover.
_ILST_KEYS = frozenset({
    "title", "artist", "album_artist", "composer", "album", "date", "encoder", "encoding_tool", "comment",
    "genre", "copyright", "grouping", "lyrics", "description", "synopsis", "show", "episode_id", "network",
    "keywords", "track", "disc", "compilation", "gapless_playback", "hd_video", "media_type", "rating",
    "tempo", "podcast", "category", "location", "major_brand", "minor_version", "compatible_brands",
    "creation_time",
})


def _mp4_cover_conflict(info: MediaInfo, container: Container) -> str | None:
    """The first source metadata key an MP4 keeps only without cover art (None: no conflict)."""
    if "use_metadata_tags" not in container.options.get("movflags", ""):
        return None
    return next((k for k in info.metadata if k.lower() not in _ILST_KEYS), None)


def _can_copy(codec: str, allowed: frozenset | None) -> bool:
    return allowed is None or codec in allowed


def _audio_bitrate(stream: StreamInfo) -> str:
    return f"{min(512, 64 * max(2, stream.channels or 2))}k"


def audio_encode_options(stream: StreamInfo, container: Container, n: int) -> dict:
    """Codec options that re-encode ``stream`` as output audio track ``n`` in ``container``'s audio codec."""
    encoder = container.audio_encoder
    opts = {f"c:a:{n}": encoder}
    if encoder in ("aac", "libopus"):
        opts[f"b:a:{n}"] = _audio_bitrate(stream)
    return opts


def plan_streams(info: MediaInfo, container: Container, dst_name: str) -> StreamPlan:
    """Decide, per non-video stream of the source, whether to copy, convert or drop it."""
    plan = StreamPlan()
    ext = Path(dst_name).suffix
    audio_n = subtitle_n = 0
    dropped_data = 0
    for s in info.streams:
        if s.kind == "audio":
            if _can_copy(s.codec, container.audio_copy):
                opts = {f"c:a:{audio_n}": "copy"}
            else:
                opts = audio_encode_options(s, container, audio_n)
                encoder = container.audio_encoder
                plan.notes.append(
                    f"audio track {audio_n + 1} re-encoded {s.codec} -> {encoder} ({ext} cannot hold {s.codec})"
                )
            plan.streams.append((s, opts))
            audio_n += 1
        elif s.kind == "subtitle":
            if _can_copy(s.codec, container.subtitle_copy):
                opts = {f"c:s:{subtitle_n}": "copy"}
            elif s.codec in TEXT_SUBTITLES and container.text_subtitle_encoder:
                opts = {f"c:s:{subtitle_n}": container.text_subtitle_encoder}
                plan.notes.append(
                    f"subtitles {subtitle_n + 1} converted {s.codec} -> {container.text_subtitle_encoder}"
                )
            else:
                plan.notes.append(f"dropped {s.codec} subtitles ({ext} cannot hold them; use .mkv to keep them)")
                continue
            plan.streams.append((s, opts))
            subtitle_n += 1
        elif s.kind == "attachment":
            if container.attachments:
                plan.streams.append((s, {}))
            else:
                plan.notes.append(f"dropped attachment {s.metadata.get('filename', s.codec)} ({ext} cannot hold it)")
        elif s.kind == "data":
            dropped_data += 1
        elif s.kind == "video" and s.attached_pic:
            how = container.cover_art
            conflict = _mp4_cover_conflict(info, container) if how == "stream" else None
            if how is None or s.codec not in COVER_CODECS[how] or conflict:
                why = f"{ext} cannot hold it" if how is None else f"{ext} cannot hold {s.codec} cover art"
                if conflict:
                    why = f"{ext} cannot hold it beside metadata such as {conflict}; use .mkv to keep both"
                plan.notes.append(f"dropped cover art #{s.index} ({why})")
            elif how == "stream":
                n = 1 + sum(1 for kept, _ in plan.streams if kept.kind == "video")  # v:0 is the upscaled video
                plan.streams.append((s, {f"c:v:{n}": "copy", f"disposition:v:{n}": "attached_pic"}))
                flags = container.options["movflags"].replace("+use_metadata_tags", "")
                plan.options["movflags"] = flags  # every key the source has fits the ilst that holds covr
            else:
                mimetype = COVER_MIMETYPES[s.codec]
                default = f"cover.{'jpg' if s.codec == 'mjpeg' else s.codec}"
                name = next((v for k, v in s.metadata.items() if k.lower() == "filename"), None) or default
                plan.covers.append((s, mimetype, name))
        elif s.kind == "video" and s is not info.video:
            plan.notes.append(f"dropped extra video stream #{s.index} ({s.codec})")
    if dropped_data:
        plan.notes.append(f"dropped {dropped_data} data stream(s) (timecode/sensor data)")
    return plan


def _video_filters(video, encode: EncodeOptions, sar: Fraction):
    """Pixel aspect, RGB -> YCbCr (BT.709, tagged) unless the output is RGB, the output pixel format,
    and for an encoder that takes device frames (VAAPI, Vulkan) the upload."""
    if sar != 1:
        video = video.filter("setsar", f"{sar.numerator}/{sar.denominator}")
    if not encode.is_rgb:
        # Say which matrix we convert with, and tag the output with it, so players do not guess.
        video = video.filter("scale", out_color_matrix="bt709", out_range="tv", flags="bicubic+accurate_rnd")
    video = video.filter("format", encode.pix_fmt)
    if encode.codec.hw_upload is not None:
        video = video.filter("hwupload")
    return video


def _video_encoder_options(encode: EncodeOptions, time_base: Fraction) -> dict:
    """The encoder's options: codec, quality, colour tags, the source's time base for exact timestamps,
    and the user's ``--encoder-opt`` pairs (for the video stream only: ``-KEY:v VALUE``)."""
    codec = encode.codec
    user = dict(encode.encoder_options)
    defaults = dict(codec.options)
    for key, value in user.items():
        if key.endswith("-params") and key in defaults:
            user[key] = f"{defaults[key]}:{value}"  # x265-params: keep log-level=error, theirs last wins
        defaults.pop(key, None)
        defaults.pop(f"{key}:v", None)
    kwargs: dict = {
        "c:v": codec.name,
        "fps_mode": "passthrough",
        "enc_time_base": f"{time_base.numerator}/{time_base.denominator}",
        **defaults,
    }
    if codec.hw_upload is None:  # device frames carry their own format
        kwargs["pix_fmt"] = encode.pix_fmt
    if encode.crf is not None:
        kwargs[codec.crf_option] = _number(encode.crf)
    if encode.preset is not None:
        kwargs["preset"] = encode.preset
    if not encode.is_rgb:
        kwargs.update(colorspace="bt709", color_primaries="bt709", color_trc="bt709", color_range="tv")
    kwargs.update({f"{key}:v": value for key, value in user.items()})
    return kwargs


def _number(value) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _global_args(encode: EncodeOptions) -> list[str]:
    if encode.codec.hw_upload is None:
        return []
    return ["-init_hw_device", f"{encode.codec.hw_upload}=vsr", "-filter_hw_device", "vsr"]


def _frames_input(offset: Fraction):
    """Our Matroska frames on stdin; ``offset`` (seconds) is the first frame's time in the source."""
    return ffmpeg_python.input("pipe:0", format="matroska", itsoffset=f"{float(offset):.9f}")


def _compile(out, tmp: Path, encode: EncodeOptions, extra: list[str] = ()) -> list[str]:
    """The command line; ``extra`` output options go in as they are (ffmpeg-python cannot repeat a key)."""
    out = out.global_args(
        "-hide_banner", "-nostdin", "-nostats", "-loglevel", "level+warning", "-y", *_global_args(encode)
    )
    args = out.compile(cmd=ffmpeg_exe())
    extra = list(extra)
    if encode.container.muxer in ("mp4", "mov"):
        # The source's brand fields describe its own file, not ours.
        extra += [a for key in ("major_brand", "minor_version", "compatible_brands") for a in ("-metadata", f"{key}=")]
    if extra:
        at = args.index(media_arg(tmp))  # ffmpeg-python puts global options last, so find the output name
        args[at:at] = extra
    return args


@dataclass(frozen=True)
class SubtitleSide:
    """Subtitles converted beforehand for a trimmed job: ``path`` holds them; ``streams`` maps each
    source stream index to its index there."""

    path: Path
    streams: dict[int, int]


def _is_conversion(stream: StreamInfo, opts: dict) -> bool:
    return stream.kind == "subtitle" and "copy" not in opts.values()


def subtitle_side_command(*, src: Path, plan: StreamPlan, encode: EncodeOptions, tmp: Path) -> tuple[list[str], dict]:
    """The ffmpeg command that converts ``plan``'s converted subtitle streams, untrimmed, into ``tmp``
    (in the output's container), and the stream map for :class:`SubtitleSide`. See the module docstring."""
    source = ffmpeg_python.input(media_arg(src))
    outputs, kwargs, streams = [], {"format": encode.container.muxer, **encode.container.options}, {}
    for stream, opts in plan.streams:
        if _is_conversion(stream, opts):
            k = len(outputs)
            outputs.append(source[str(stream.index)])
            kwargs[f"c:s:{k}"] = next(iter(opts.values()))  # the encoder the plan chose
            streams[stream.index] = k
    kwargs.update({"map_metadata": "-1", "map_chapters": "-1"})
    out = ffmpeg_python.output(*outputs, media_arg(tmp), **kwargs)
    out = out.global_args("-hide_banner", "-nostdin", "-nostats", "-loglevel", "level+warning", "-y")
    return out.compile(cmd=ffmpeg_exe()), streams


def _ffmetadata_escape(text: str) -> str:
    return "".join("\\" + c if c in "=;#\\\n" else c for c in str(text))


def trimmed_chapters(info: MediaInfo, trim: Trim) -> str | None:
    """The source's chapters cut to ``trim`` and shifted, as an ffmetadata file's text (None: no chapters).

    Why not ffmpeg's own ``-map_chapters`` from the cut input: it keeps a chapter that ends exactly at
    ``--start`` as a zero-length one (its test is ``end < start``), so a cut at a chapter boundary
    would list the previous chapter at 0:00 too. Here a chapter survives only if it overlaps the span."""
    if not info.chapters:
        return None
    origin = Fraction(str(info.start)) if info.start and info.start > 0 else Fraction(0)
    lines = [";FFMETADATA1"]
    ns = Fraction(1, 1_000_000_000)
    for chapter in info.chapters:
        start = Fraction(str(chapter.start)) - origin - trim.start
        end = Fraction(str(chapter.end)) - origin - trim.start
        if trim.duration is not None:
            end = min(end, trim.duration)
        start = max(start, Fraction(0))
        if end <= start:
            continue
        lines += ["[CHAPTER]", "TIMEBASE=1/1000000000", f"START={round(start / ns)}", f"END={round(end / ns)}"]
        lines += [f"{_ffmetadata_escape(k)}={_ffmetadata_escape(v)}" for k, v in chapter.metadata.items()]
    return "\n".join(lines) + "\n"


def needs_subtitle_side(plan: StreamPlan, trim: Trim | None) -> bool:
    return trim is not None and any(_is_conversion(s, opts) for s, opts in plan.streams)


def _input_indices(outputs) -> dict[str, int]:
    """ffmpeg's index of each input these output streams come from, by file name: ffmpeg-python numbers
    inputs in the order it meets them, which the metadata and chapter maps must follow."""
    args = ffmpeg_python.output(*outputs, "-").compile()
    names = [args[i + 1] for i, a in enumerate(args[:-1]) if a == "-i"]
    return {name: i for i, name in enumerate(names)}


def _mux_command(
    video,
    video_options: dict,
    *,
    src: Path,
    info: MediaInfo,
    tmp: Path,
    encode,
    plan,
    trim: Trim | None = None,
    side: SubtitleSide | None = None,
    chapters: Path | None = None,
) -> list[str]:
    """The output ``tmp``: ``video`` (input #0) plus what ``plan`` maps from the source, cut to ``trim``
    if given (converted subtitles then come from ``side``, chapters from the ffmetadata file ``chapters``)."""
    source = ffmpeg_python.input(media_arg(src), **(trim.input_options() if trim else {}))
    side_input = None
    if side is not None:
        # seek_timestamp: -ss is a time in the file, not after its own start (its first cue's time)
        side_input = ffmpeg_python.input(media_arg(side.path), seek_timestamp="1", **trim.input_options())
    kwargs: dict = {
        "format": encode.container.muxer, **video_options, **encode.container.options, **plan.options
    }
    if trim is not None:
        if trim.start:  # (at 0 it would drop an AAC priming packet, which has a negative time)
            kwargs.update({"copypriorss:a": "0", "copypriorss:s": "0"})
        if trim.duration is not None:
            kwargs["t"] = seconds_arg(trim.duration)  # also ends the chapters there
    if encode.codec.mp4_tag and encode.container.muxer in ("mp4", "mov"):
        kwargs["tag:v"] = encode.codec.mp4_tag
    outputs = [video]
    streams: list[tuple[str, int, int]] = []  # (kind letter, output index of that kind, source index)
    counters: dict[str, int] = {"v": 1}  # v:0 is ours; the source's cover art follows
    for stream, opts in plan.streams:
        letter = {"video": "v", "audio": "a", "subtitle": "s", "attachment": "t"}[stream.kind]
        n = counters.get(letter, 0)
        counters[letter] = n + 1
        if side is not None and stream.index in side.streams:
            outputs.append(side_input[str(side.streams[stream.index])])
            opts = {f"c:s:{n}": "copy"}  # converted already
        else:
            outputs.append(source[str(stream.index)])
        streams.append((letter, n, stream.index))
        kwargs.update(opts)
    if not any(stream.index not in (side.streams if side else {}) for stream, _ in plan.streams):
        # Nothing mapped from the source (no audio or subtitles), but it must stay an input for the
        # metadata and chapter maps; ffmpeg-python drops unreferenced inputs, so map "its audio, if any"
        # (none: the plan maps every audio track).
        outputs.append(source["a?"])
    if chapters is not None:
        outputs.append(ffmpeg_python.input(media_arg(chapters), format="ffmetadata")["a?"])  # it has none
    index = _input_indices(outputs)
    at = index[media_arg(src)]
    kwargs.update(
        {
            "map_metadata": str(at),
            "map_chapters": str(index[media_arg(chapters)] if chapters is not None else at),
            "map_metadata:s:v:0": f"{at}:s:{info.video.index}",
        }
    )
    for letter, n, source_index in streams:
        kwargs[f"map_metadata:s:{letter}:{n}"] = f"{at}:s:{source_index}"
    attach: list[str] = []
    if plan.covers:
        assert len(plan.cover_paths) == len(plan.covers), "cover art is attached inside cover_files()"
        first = counters.get("t", 0)  # ffmpeg numbers -attach streams after the mapped attachments
        for k, ((_, mimetype, name), path) in enumerate(zip(plan.covers, plan.cover_paths)):
            t = f"-metadata:s:t:{first + k}"
            attach += ["-attach", media_arg(path), t, f"mimetype={mimetype}", t, f"filename={name}"]
    return _compile(ffmpeg_python.output(*outputs, media_arg(tmp), **kwargs), tmp, encode, attach)


@contextlib.contextmanager
def cover_files(src: Path, plan: StreamPlan) -> Iterator[None]:
    """While active, ``plan.cover_paths`` names a temporary file holding each cover to attach.

    A cover whose picture cannot be read is dropped from the plan, with a note.
    """
    if not plan.covers:
        yield
        return
    folder = Path(tempfile.mkdtemp(prefix="vsr-cover-"))
    try:
        kept = []
        for stream, mimetype, name in plan.covers:
            data = attached_picture(src, stream.index)
            if not data:
                plan.notes.append(f"dropped cover art #{stream.index} (its picture cannot be read)")
                continue
            path = folder / f"{len(kept)}{Path(name).suffix}"
            path.write_bytes(data)
            kept.append((stream, mimetype, name))
            plan.cover_paths.append(path)
        plan.covers[:] = kept
        yield
    finally:
        plan.cover_paths.clear()
        shutil.rmtree(folder, ignore_errors=True)


def encoder_command(
    *,
    src: Path,
    info: MediaInfo,
    tmp: Path,
    encode: EncodeOptions,
    plan: StreamPlan,
    time_base: Fraction,
    offset: Fraction,
    sar: Fraction,
    trim: Trim | None = None,
    side: SubtitleSide | None = None,
    chapters: Path | None = None,
) -> list[str]:
    """The ffmpeg command that reads Matroska frames on stdin and writes ``tmp``.

    ``offset``: the first frame's time in the output (its time in the source, less ``trim.start``)."""
    video = _video_filters(_frames_input(offset)["0"], encode, sar)
    options = _video_encoder_options(encode, time_base)
    return _mux_command(
        video, options, src=src, info=info, tmp=tmp, encode=encode, plan=plan, trim=trim, side=side,
        chapters=chapters,
    )


def segment_encoder_command(
    *, tmp: Path, encode: EncodeOptions, time_base: Fraction, offset: Fraction, sar: Fraction
) -> list[str]:
    """Like :func:`encoder_command`, but video only: one segment of a long job.

    Same filters, encoder settings and timestamps (``offset``: the segment's first frame's time in the
    source) as a single pass, so each frame's time is rounded to the container's precision exactly as
    there. A fresh encoder per segment starts with a keyframe (IDR) and references nothing outside the
    segment, so segments join by stream copy.
    """
    video = _video_filters(_frames_input(offset)["0"], encode, sar)
    options = {"format": encode.container.muxer, **_video_encoder_options(encode, time_base)}
    if encode.codec.mp4_tag and encode.container.muxer in ("mp4", "mov"):
        options["tag:v"] = encode.codec.mp4_tag
    return _compile(ffmpeg_python.output(video, media_arg(tmp), **options), tmp, encode)


def concat_command(
    *,
    listing: Path,
    src: Path,
    info: MediaInfo,
    tmp: Path,
    encode: EncodeOptions,
    plan: StreamPlan,
    offset: Fraction,
    trim: Trim | None = None,
    side: SubtitleSide | None = None,
    chapters: Path | None = None,
) -> list[str]:
    """Join the segments named in the ffconcat file ``listing`` by stream copy, muxed as a single pass would be.

    ``offset`` (seconds) is where the first segment starts: the concat demuxer starts at 0, and this
    puts the video back where it was beside the source's other streams, as :func:`encoder_command` does
    (less ``trim.start`` for a trimmed job).
    """
    segments = ffmpeg_python.input(media_arg(listing), format="concat", safe="0", itsoffset=f"{float(offset):.9f}")
    return _mux_command(
        segments["0"], {"c:v": "copy"}, src=src, info=info, tmp=tmp, encode=encode, plan=plan, trim=trim, side=side,
        chapters=chapters,
    )


#: The trial encode's frame: small enough to cost a tenth of a second, above hardware encoders' minimum sizes.
TRIAL_SIZE = (256, 144)
_TRIALS: dict[tuple, str | None] = {}
# Encoders that ignore a bad setting with a warning rather than fail: take those warnings as refusals.
_OPTION_WARNING = re.compile(r"option|invalid value|has not been used for any stream", re.IGNORECASE)
_UNUSED_OPTION = re.compile(r"AVOption (\S+) .*has not been used for any stream")
_LIBRARY_ERROR = re.compile(r"^[\w-]+ ?\[error\]:? ")  # x264 [error]: ... (a library's own log line)


def trial_command(encode: EncodeOptions, tmp: Path) -> list[str]:
    """One grey frame through the very filters, encoder settings and muxer of the real output."""
    w, h = TRIAL_SIZE
    frames = ffmpeg_python.input(f"color=c=gray:s={w}x{h}:r=25,format=rgb24", format="lavfi")
    video = _video_filters(frames["0"], encode, Fraction(1))
    options = {
        "format": encode.container.muxer,
        "frames:v": "1",
        **_video_encoder_options(encode, Fraction(1, 25)),
        **encode.container.options,
    }
    if encode.codec.mp4_tag and encode.container.muxer in ("mp4", "mov"):
        options["tag:v"] = encode.codec.mp4_tag
    return _compile(ffmpeg_python.output(video, media_arg(tmp), **options), tmp, encode)


def _trial_refusal(lines: list[str], encode: EncodeOptions, rc: int) -> str | None:
    """ffmpeg's reason for refusing the trial (its most telling line), None if it took everything."""
    errors, warnings = [], []
    for line in lines:
        ctx, level, msg = log_level(line)
        if level in ("error", "fatal", "panic") or (not level and _LIBRARY_ERROR.match(line)):
            errors.append(clean_message(_LIBRARY_ERROR.sub("", msg) if not level else msg))
        elif level == "warning" and _OPTION_WARNING.search(msg) and (encode.codec.name in ctx or "out#" in ctx):
            unused = _UNUSED_OPTION.search(msg)
            warnings.append(f"{encode.codec.name} has no option {unused[1]}" if unused else clean_message(msg))
    if rc == 0 and not warnings:
        return None
    pool = errors or warnings or [f"ffmpeg exited with status {rc}"]
    line = next((m for m in pool if "option" in m.lower()), pool[0])
    for key, _ in encode.encoder_options:
        line = line.replace(f"{key}:v", key)
    return line


def trial_encode(encode: EncodeOptions, dst: Path) -> None:
    """Encode one small frame with ``encode`` into the output's container, before any real work.

    Catches what only the encoder and muxer can judge: an ``--encoder-opt`` it has not or rejects
    (including settings libraries ignore with a warning, such as an unknown ``x264-params`` key), a
    preset it does not know, a hardware encoder without its device, a codec the container cannot hold.
    About 0.1 s; the verdict is kept per command, so a folder of videos asks once. Writes only a file
    in the system's temporary folder, removed at once. Raises :class:`OutputError` with ffmpeg's line.
    """
    with tempfile.TemporaryDirectory(prefix="vsr-trial-") as folder:
        tmp = Path(folder) / f"trial{dst.suffix.lower()}"
        command = trial_command(encode, tmp)
        key = tuple(a if a != media_arg(tmp) else "<out>" for a in command)
        if key not in _TRIALS:
            try:
                proc = subprocess.run(
                    command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                    timeout=120, start_new_session=True, check=False,
                )
            except subprocess.TimeoutExpired:
                refusal = "the encoder did not finish one frame in 120 s"
            else:
                refusal = _trial_refusal(proc.stderr.decode("utf-8", "replace").splitlines(), encode, proc.returncode)
            _TRIALS[key] = refusal
    refusal = _TRIALS[key]
    if refusal is not None:
        raise OutputError(
            f"{dst}: {encode.codec.name} refused these settings (nothing was upscaled): {refusal}; "
            "check --codec, --preset, --pix-fmt and --encoder-opt"
        )


class FrameWriter:
    """Feeds upscaled frames to the encoder from a thread; :meth:`finish` waits for a clean end.

    Timestamps arrive in the source time base and leave as nanoseconds relative to the first frame;
    a pts that does not increase (broken sources) is nudged one tick forward so no frame is lost.
    """

    def __init__(
        self,
        command: list[str],
        *,
        width: int,
        height: int,
        time_base: Fraction,
        frame_rate: Fraction | None,
        first_pts: int,
        dst: Path,
        queue_size: int = 1,
        resize: tuple[int, int] | None = None,
    ):
        self.command = command
        self.width, self.height = width, height
        self.time_base = time_base
        # Nominal frame duration straight from the rational rate (rounding it to source ticks first
        # would turn 30000/1001 into 1000/33 in a 1/1000 time base).
        self.default_duration_ns = round(1_000_000_000 / frame_rate) if frame_rate else None
        self.first_pts = first_pts
        self.dst = dst
        self.resize = resize  # (width, height) to downscale each frame to, on this thread (see .size)
        self.adjusted = 0  # timestamps we had to nudge
        self.frames_written = 0
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, queue_size))
        self._last_pts: int | None = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self.proc: FFmpegProcess | None = None

    def _ns(self, ticks: int) -> int:
        return round(ticks * self.time_base * 1_000_000_000)

    def start(self) -> None:
        self.proc = FFmpegProcess(self.command, role="encoder", stdin=True)
        self._thread = threading.Thread(target=self._run, name="vsr-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            muxer = RawVideoMuxer(self.proc.proc.stdin, self.width, self.height, self.default_duration_ns)
            while True:
                item = self._queue.get()
                if item is _END:
                    break
                frames, pts, durations = item
                for frame, p, d in zip(frames, pts, durations):
                    if self._last_pts is not None and p <= self._last_pts:
                        p = self._last_pts + 1
                        self.adjusted += 1
                    self._last_pts = p
                    duration = self._ns(d) if d else (self.default_duration_ns or 0)
                    if self.resize is not None:
                        frame = resize_frame(frame, self.resize)
                    muxer.write(frame, self._ns(p - self.first_pts), duration)
                    self.frames_written += 1
            self.proc.proc.stdin.close()
        except BaseException as e:  # noqa: BLE001 - reported by put()/finish() in the caller's thread
            self._error = e

    def _check(self) -> None:
        if self._error is not None or (self._thread is not None and not self._thread.is_alive()):
            self._fail()

    def _fail(self):
        """Raise the encoder's failure as one line naming the output and ffmpeg's own cause."""
        rc = self.proc.proc.poll()
        if rc is None and isinstance(self._error, (BrokenPipeError, OSError)):
            rc = self.proc.wait(timeout=10)
        if rc not in (None, 0):
            raise FFmpegError(f"{self.dst}: encoding failed: {self.proc.failure(rc)}")
        if self._error is not None:
            raise FFmpegError(f"{self.dst}: feeding the encoder failed: {self._error}") from self._error
        raise FFmpegError(f"{self.dst}: the encoder stopped early: {self.proc.failure()}")

    def put(self, frames: np.ndarray, pts: list[int], durations: list[int]) -> None:
        """Queue a batch (N, H, W, 3) uint8 RGB with per-frame pts/durations; blocks while the queue is full."""
        while True:
            self._check()
            try:
                self._queue.put((frames, pts, durations), timeout=0.2)
                return
            except queue.Full:
                continue

    def finish(self) -> None:
        """Flush, close the encoder's input and wait for it; raises :class:`FFmpegError` on failure."""
        while True:
            if self._error is not None:
                self._fail()
            try:
                self._queue.put(_END, timeout=0.2)
                break
            except queue.Full:
                if not self._thread.is_alive():
                    self._fail()
        while self._thread.is_alive():
            self._thread.join(timeout=0.2)
        if self._error is not None:
            self._fail()
        rc = self.proc.wait()
        if rc != 0:
            raise FFmpegError(f"{self.dst}: encoding failed: {self.proc.failure(rc)}")

    def stop(self) -> None:
        """Kill the encoder (if running), end the thread and reap. Safe to call more than once."""
        if self.proc is None:
            return
        if self.proc.running():
            try:
                self.proc.proc.kill()
            except ProcessLookupError:
                pass
        if self._thread is not None:
            # Unblock a thread waiting for work; a thread blocked writing gets EPIPE from the kill.
            try:
                self._queue.put_nowait(_END)
            except queue.Full:
                pass
            self._thread.join(timeout=10)
        self.proc.stop()
