"""The stream plan, tried against the output's muxer before any frame is upscaled.

:func:`~vsr.video.writer.plan_streams` decides from the container table which source streams are
copied, converted or dropped. A table cannot know every muxer rule of every ffmpeg release (ffmpeg's
mov muxer takes FLAC and Opus only in its MP4 mode; a muxer may refuse a stream's parameters), and
a refusal found by the real mux comes at the very end: after every frame of a single pass, or after
every segment of a segmented job, whose join then fails on every rerun. So the plan is *tried*: a dry
mux writes the first second of every mapped stream, with the real mapping, codec options and muxer
options beside one encoded grey frame, into a temporary file (a few tenths of a second). A stream the
muxer refuses is re-planned (copied audio re-encoded to the container's audio codec, text subtitles
converted, anything else dropped), each change a note in the summary, and the plan is tried again. A
plan that still fails is refused with the muxer's reason, before the model is loaded.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import ffmpeg as ffmpeg_python

from ..errors import OutputError
from .ffmpeg import clean_message, log_level
from .formats import TEXT_SUBTITLES, EncodeOptions
from .probe import MediaInfo, StreamInfo
from .span import Trim
from .writer import (
    TRIAL_SIZE,
    StreamPlan,
    _mux_command,
    _video_encoder_options,
    _video_filters,
    audio_encode_options,
    plan_streams,
)

#: How much of the source the dry mux writes: enough for a muxer to meet each stream's first packets.
DRY_SECONDS = Fraction(1)
_INDEXED_OPTION = re.compile(r"^(?P<key>[\w]+):(?P<letter>[avst]):(?P<n>\d+)$")
_LETTER = {"video": "v", "audio": "a", "subtitle": "s", "attachment": "t"}


def dry_mux_command(src: Path, info: MediaInfo, encode: EncodeOptions, plan: StreamPlan, tmp: Path) -> list[str]:
    """The real output command for ``plan``, cut to :data:`DRY_SECONDS`, with one grey frame as the video.

    Cover art that is attached from a file (Matroska) is left out: ``-attach`` of a picture file
    cannot be refused by the muxer that takes attachments."""
    w, h = TRIAL_SIZE
    frames = ffmpeg_python.input(f"color=c=gray:s={w}x{h}:r=25,format=rgb24", format="lavfi")
    video = _video_filters(frames["0"], encode, Fraction(1))
    options = {"frames:v": "1", **_video_encoder_options(encode, Fraction(1, 25))}
    bare = replace(plan, covers=[], cover_paths=[], notes=[])
    return _mux_command(
        video, options, src=src, info=info, tmp=tmp, encode=encode, plan=bare, trim=Trim(duration=DRY_SECONDS)
    )


def _refusal(stderr: str, rc: int) -> str | None:
    """The muxer's reason (its first error line), or None if the dry mux succeeded."""
    if rc == 0:
        return None
    for line in stderr.splitlines():
        _, level, msg = log_level(line)
        if level in ("error", "fatal", "panic") and msg.strip():
            return clean_message(msg)
    return f"ffmpeg exited with status {rc}"


def dry_mux(src: Path, info: MediaInfo, encode: EncodeOptions, plan: StreamPlan, suffix: str) -> str | None:
    """Try ``plan``: None if the muxer takes it, else its reason. Writes only a temporary file, removed at once."""
    with tempfile.TemporaryDirectory(prefix="vsr-dry-mux-") as folder:
        tmp = Path(folder) / f"dry{suffix.lower()}"
        command = dry_mux_command(src, info, encode, plan, tmp)
        try:
            proc = subprocess.run(
                command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                timeout=120, start_new_session=True, check=False,
            )
        except subprocess.TimeoutExpired:
            return f"a dry mux of {DRY_SECONDS} s of the source's streams did not finish in 120 s"
        return _refusal(proc.stderr.decode("utf-8", "replace"), proc.returncode)


def _renumbered(streams: list[tuple[StreamInfo, dict]]) -> list[tuple[StreamInfo, dict]]:
    """The same streams with their per-kind output indices (``c:a:1``, ``disposition:v:2``) counted afresh."""
    counters = {"v": 1}  # v:0 is the upscaled video
    out = []
    for stream, opts in streams:
        letter = _LETTER[stream.kind]
        n = counters.get(letter, 0)
        counters[letter] = n + 1
        renamed = {}
        for key, value in opts.items():
            m = _INDEXED_OPTION.match(key)
            renamed[f"{m['key']}:{m['letter']}:{n}" if m else key] = value
        out.append((stream, renamed))
    return out


def _copied(opts: dict) -> bool:
    codecs = [v for k, v in opts.items() if k.startswith("c:")]
    return not codecs or "copy" in codecs  # an attachment ({}) is copied


def _replan(stream: StreamInfo, opts: dict, encode: EncodeOptions, ext: str, why: str):
    """What to do instead with a stream the muxer refused: (new options or None to drop, note)."""
    container = encode.container
    if stream.kind == "audio":
        new = audio_encode_options(stream, container, 0)  # renumbered with the others
        return new, f"re-encoded {stream.codec} -> {container.audio_encoder} (the {ext} muxer refused a copy: {why})"
    if stream.kind == "subtitle" and stream.codec in TEXT_SUBTITLES and container.text_subtitle_encoder:
        target = container.text_subtitle_encoder
        return {"c:s:0": target}, f"converted {stream.codec} -> {target} (the {ext} muxer refused a copy: {why})"
    return None, f"dropped (the {ext} muxer refused it: {why})"


def _describe(stream: StreamInfo, number: int) -> str:
    if stream.kind == "audio":
        return f"audio track {number}"
    if stream.kind == "subtitle":
        return f"subtitles {number}"
    if stream.kind == "attachment":
        return f"attachment {stream.metadata.get('filename', stream.codec)}"
    return f"cover art #{stream.index}"


def checked_plan(src: Path, info: MediaInfo, encode: EncodeOptions, dst: Path) -> StreamPlan:
    """:func:`plan_streams`, tried by a dry mux and re-planned where the muxer refuses a stream.

    Raises :class:`OutputError` (nothing was upscaled) when no plan the muxer takes is found."""
    plan = plan_streams(info, encode.container, dst.name)
    if not plan.streams:
        return plan
    reason = dry_mux(src, info, encode, plan, dst.suffix)
    if reason is None:
        return plan
    ext = dst.suffix.lower()
    streams: list[tuple[StreamInfo, dict]] = []
    numbers: dict[str, int] = {}
    for stream, opts in plan.streams:
        numbers[stream.kind] = numbers.get(stream.kind, 0) + 1
        alone = replace(plan, streams=_renumbered([(stream, opts)]))
        why = dry_mux(src, info, encode, alone, dst.suffix)
        if why is None:
            streams.append((stream, opts))
            continue
        if not _copied(opts):
            raise _refused(dst, why)
        new, note = _replan(stream, opts, encode, ext, why)
        plan.notes.append(f"{_describe(stream, numbers[stream.kind])} {note}")
        if new is not None:
            streams.append((stream, new))
    plan.streams = _renumbered(streams)
    if not any(s.kind == "video" for s, _ in plan.streams):
        plan.options.pop("movflags", None)  # kept only to hold cover art (see plan_streams)
    reason = dry_mux(src, info, encode, plan, dst.suffix) if plan.streams else None
    if reason is not None:
        raise _refused(dst, reason)
    return plan


def _refused(dst: Path, reason: str) -> OutputError:
    return OutputError(
        f"{dst}: the {dst.suffix.lower()} output cannot hold the source's other streams (nothing was upscaled): "
        f"{reason}; use .mkv, which holds any"
    )
