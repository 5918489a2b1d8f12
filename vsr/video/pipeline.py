"""The frame pipeline of one video: reader -> bounded queue -> upscaler -> bounded queue -> writer.

:mod:`vsr.video.jobs` sits above it (single pass or segments, images, folders) and
:mod:`vsr.video.segmented` beside it (the same pipeline over segments); this module imports neither.

The upscaler is any object with ``scale`` (int) and ``upscale(frames)`` mapping uint8 RGB
(N, H, W, 3) to uint8 RGB (N, scale*H, scale*W, 3); it runs on the calling thread while ffmpeg decodes
and encodes in their own processes, fed by two threads (the writer's also downscales to the output
size when one is asked for, see :mod:`.size`). Memory is bounded by the two queues, not by the
video's length.

Safety: every check that can fail without work (paths, extension, codec options, probe, output size,
a writable output folder, a one-frame trial encode with the output's encoder settings, a dry mux of the
source's other streams into the output's container) runs before the model is loaded; a refusal leaves nothing behind. Output goes to a temporary file beside the target,
renamed only on success. On any error, Ctrl-C or SIGTERM both ffmpeg processes are killed and reaped and the
temporary file is removed; the error raised is a :class:`~vsr.errors.VsrError` with a one-line message
naming the file (Ctrl-C and SIGTERM become :class:`~vsr.errors.Cancelled`).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..errors import Cancelled, FFmpegError, InputError, ModelError, OutputError, VsrError
from .ffmpeg import FFmpegProcess
from .formats import EncodeOptions, resolve_encode_options, size_step
from .memory import Budget, MemoryPlan, plan_memory, resolve_budget
from .output import (
    AtomicOutput,
    check_input_file,
    check_output_folder,
    check_output_path,
    remove_stale_temporaries,
    stale_note,
)
from .probe import MediaInfo, demuxed_end, frame_count, probe
from .reader import FrameReader, untagged_matrix
from .size import MAX_OUTSCALE, OutputSize
from .span import FrameRange, SeekMissed, Trim, decoder_starts, format_time, plan_trim
from .streams import checked_plan
from .writer import (
    FrameWriter,
    StreamPlan,
    SubtitleSide,
    cover_files,
    encoder_command,
    needs_subtitle_side,
    subtitle_side_command,
    trial_encode,
    trimmed_chapters,
)


@dataclass
class Summary:
    """What one finished job did.

    ``seconds`` is the job's wall time (from its start, the model already loaded or loading lazily);
    ``fps`` frames per second of it. ``total_seconds``, when the caller sets it (``vsr upscale``: from
    the process's start), is the whole wall time the user waited, imports and model loading included.
    ``model``/``runtime`` name the upscaler, ``codec``/``crf`` the encoding (an image's format, no CRF),
    ``output_bytes`` the output file's size.
    """

    source: Path
    output: Path
    frames: int
    seconds: float
    input_size: tuple[int, int]
    output_size: tuple[int, int]
    notes: list[str] = field(default_factory=list)
    processed: int | None = None  # frames this run upscaled, when others were done before (resumed)
    model: str | None = None
    runtime: str | None = None
    codec: str | None = None
    crf: int | None = None
    output_bytes: int | None = None
    total_seconds: float | None = None

    @property
    def fps(self) -> float:
        done = self.frames if self.processed is None else self.processed
        return done / self.seconds if self.seconds > 0 else 0.0

    def __str__(self) -> str:
        (w, h), (ow, oh) = self.input_size, self.output_size
        line = f"{self.output}: {self.frames} frame{'s' * (self.frames != 1)} {w}x{h} -> {ow}x{oh}"
        if self.output_bytes is not None:
            line += f", {format_bytes(self.output_bytes)}"
        made = []
        if self.model:
            made.append(f"{self.model} on {self.runtime}" if self.runtime else self.model)
        if self.codec:
            made.append(f"{self.codec} crf {self.crf}" if self.crf is not None else self.codec)
        if made:
            line += "; " + ", ".join(made)
        speed = f"{self.fps:.2f} fps" if self.processed != 0 else ""  # nothing upscaled: joined only
        if self.total_seconds is not None:
            job = ", ".join(p for p in (f"job {self.seconds:.1f} s", speed) if p)
            line += f"; {self.total_seconds:.1f} s in all ({job})"
        else:
            line += f"; in {self.seconds:.1f} s" + (f" ({speed})" if speed else "")
        return line + "".join(f"; {n}" for n in self.notes)

    def describe_upscaler(self, upscaler) -> None:
        """Fill ``model`` and ``runtime`` from an upscaler's (or a model factory's) ``name``/``model``
        and ``runtime_label``/``runtime``, where it has them."""
        self.model = self.model or getattr(upscaler, "name", None) or getattr(upscaler, "model", None)
        if not isinstance(self.model, str):
            self.model = None
        runtime = getattr(upscaler, "runtime_label", None) or getattr(upscaler, "runtime", None)
        self.runtime = self.runtime or (runtime if isinstance(runtime, str) else None)

    def describe_output(self, encode: EncodeOptions | None = None) -> None:
        """Fill ``codec``/``crf`` (a video's encoding, else the image format) and ``output_bytes``."""
        if encode is not None:
            self.codec, self.crf = encode.codec.name, encode.crf
        elif self.codec is None and self.output.suffix:
            self.codec = self.output.suffix.lstrip(".").lower()
        try:
            self.output_bytes = self.output.stat().st_size if self.output.is_file() else None
        except OSError:
            self.output_bytes = None


def format_bytes(n: int) -> str:
    """``"512 B"``, ``"14.2 kB"``, ``"1.4 MB"`` (powers of 1000, as file managers show sizes)."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


@dataclass
class FileResult:
    """The outcome for one input of :func:`upscale_path`: ``status`` is done, skipped or failed."""

    source: Path
    output: Path
    status: str
    summary: Summary | None = None
    error: BaseException | None = None

    def __str__(self) -> str:
        if self.status == "done":
            return str(self.summary)
        if self.status == "skipped":
            return f"{self.output}: exists, skipped (pass --overwrite to redo it)"
        message = str(self.error) if isinstance(self.error, VsrError) else f"{type(self.error).__name__}: {self.error}"
        return message if str(self.source) in message else f"{self.source}: {message}"


# -- signals ---------------------------------------------------------------------------------------
@contextlib.contextmanager
def sigterm_as_cancel() -> Iterator[None]:
    """While active, SIGTERM raises :class:`Cancelled` in the main thread (Ctrl-C already raises)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Cancelled("terminated (SIGTERM); partial output removed", signal.SIGTERM)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def signals_deferred(unfinished: Callable[[], bool]) -> Iterator[None]:
    """Hold SIGINT/SIGTERM while cleaning up, so a second Ctrl-C cannot leave orphans or temp files.

    A signal held this way raises :class:`Cancelled` afterwards if the job is ``unfinished()``.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {
        s: signal.signal(s, lambda signum, frame: caught.append(signum)) for s in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        if caught and unfinished():
            raise Cancelled("interrupted; partial output removed", caught[0])


@contextlib.contextmanager
def user_errors(job, interrupted: str) -> Iterator[None]:
    """Ctrl-C becomes :class:`Cancelled` (``interrupted`` says what is left) and an OS error on the
    output (full disk, permissions) an :class:`OutputError` naming it."""
    try:
        yield
    except KeyboardInterrupt:
        raise Cancelled(f"{job.src}: interrupted; {interrupted}") from None
    except OSError as e:
        raise OutputError(f"{job.dst}: {e.strerror or e}") from e


# -- videos ----------------------------------------------------------------------------------------
@dataclass
class VideoJob:
    """A video that passed every check that needs no work: ready to run."""

    src: Path
    dst: Path
    info: MediaInfo
    encode: EncodeOptions
    overwrite: bool
    notes: list[str] = field(default_factory=list)  # said in the summary (stale temporaries removed)
    size: OutputSize = field(default_factory=OutputSize)  # the output's size (default: the model's x4)
    trim: Trim | None = None  # --start/--duration (see vsr.video.span)
    #: The stream plan, tried against the output's muxer (see vsr.video.streams); made on first use.
    streams: StreamPlan | None = None

    def stream_plan(self) -> StreamPlan:
        """A copy of the checked stream plan for one mux (:func:`cover_files` fills in its own files)."""
        if self.streams is None:
            self.streams = checked_plan(self.src, self.info, self.encode, self.dst)
        return copy.deepcopy(self.streams)

    def output_size(self, size: tuple[int, int], scale: int) -> tuple[int, int]:
        """The output (width, height) for decoded frames of ``size`` upscaled x``scale``."""
        return self.size.target(size, scale, size_step(self.encode.pix_fmt), self.encode.pix_fmt)


def plan_video(
    src,
    dst,
    *,
    codec=None,
    crf=None,
    preset=None,
    pix_fmt=None,
    encoder_options=None,
    outscale=None,
    width=None,
    height=None,
    overwrite=False,
    start=None,
    duration=None,
) -> VideoJob:
    """Check paths and options, probe the input, trial-encode one small frame with the output's
    encoder settings (see :func:`~vsr.video.writer.trial_encode`) and try the stream plan against the
    output's muxer (see :mod:`vsr.video.streams`); creates nothing beside the output.
    Raises a :class:`VsrError`.

    ``start``/``duration`` (seconds, ffmpeg's ``-ss``/``-t``) make only that span (see :mod:`.span`);
    a ``start`` at or beyond the end is refused here."""
    src, dst = Path(src), Path(dst)
    check_input_file(src)
    check_output_path(src, dst, overwrite=overwrite)
    size = OutputSize.make(outscale, width, height)
    info = probe(src)
    if info.video is None:
        kinds = sorted({s.kind for s in info.streams}) or ["no streams"]
        raise InputError(f"{src}: has no video stream (it holds {', '.join(kinds)}); give a video file")
    encode = resolve_encode_options(
        dst, codec, crf, preset, pix_fmt, encoder_options, source_pix_fmt=info.video.pix_fmt
    )
    trim = plan_trim(src, start, duration, info.duration)
    job = VideoJob(src, dst, info, encode, overwrite, size=size, trim=trim)
    if all(frame_size(info)):
        job.output_size(frame_size(info), MAX_OUTSCALE)  # refuse a size past x4 now, not after the model loads
    check_output_folder(dst)
    trial_encode(encode, dst)
    job.stream_plan()
    job.notes = stale_note(remove_stale_temporaries(dst))
    return job


def span_seconds(job: VideoJob, duration: float | None = None) -> float | None:
    """How long the output should last, in seconds: the video's ``duration`` (by default the header's),
    cut to the trim. None: unknown."""
    duration = job.info.duration if duration is None else duration
    trim = job.trim
    if trim is None:
        return duration
    if duration is None:
        return None if trim.end is None else float(trim.duration)
    end = duration if trim.end is None else min(duration, float(trim.end))
    return max(0.0, end - float(trim.start))


def estimated_frames(job: VideoJob) -> int | None:
    """Frames the output should hold, from the header (duration, cut to the trim, x nominal rate; wrong
    for a variable frame rate); None: unknown."""
    seconds, fps = span_seconds(job), job.info.video.fps
    if seconds and fps:
        return max(1, round(seconds * fps))
    return None


def expected_frames(job: VideoJob) -> int | None:
    """The frames the output should hold: those the stream shows in the job's span (the whole video, or
    the trim; see :func:`~vsr.video.probe.frame_count`, right for a variable frame rate), else the
    estimate."""
    span = None if job.trim is None else (job.trim.start, job.trim.end)
    return frame_count(job.src, job.info.video.index, span) or estimated_frames(job)


def check_upscaled(out, batch: np.ndarray, scale: int) -> np.ndarray:
    n, h, w, _ = batch.shape
    expected = (n, h * scale, w * scale, 3)
    if not isinstance(out, np.ndarray) or out.shape != expected or out.dtype != np.uint8:
        got = f"{getattr(out, 'dtype', type(out).__name__)} {getattr(out, 'shape', '')}"
        raise ModelError(f"the upscaler returned {got} for a {batch.shape} batch; expected uint8 {expected}")
    return out


class Upscaling:
    """Batches of decoded frames -> upscaler -> an encoder, started on the first batch.

    ``encoder(time_base=, offset=, sar=)`` returns the encoder's ffmpeg command, given the source's time
    base, the first frame's time (seconds, less ``origin``: a trimmed job's start) and the pixel
    aspect ratio (e.g. :func:`encoder_command` with its other arguments bound). The caller finishes
    the writer (``writer.finish()``) and, in a ``finally``, calls :meth:`stop`.
    """

    def __init__(
        self, job: VideoJob, reader: FrameReader, upscaler, encoder: Callable[..., list[str]], origin: Fraction = 0
    ):
        self.job, self.reader, self.upscaler, self.encoder = job, reader, upscaler, encoder
        self.origin = Fraction(origin)
        self.scale = int(upscaler.scale)
        self.writer: FrameWriter | None = None
        self.size: tuple[int, int] | None = None  # input (width, height)
        self.output_size: tuple[int, int] | None = None  # what the encoder gets (x scale, or resized)
        self.frames = 0

    def run(
        self,
        batches,
        on_frames: Callable[[int], None] | None = None,
        on_first: Callable[[int, float, tuple[int, int]], None] | None = None,
    ) -> None:
        """Upscale and queue every batch. ``on_frames(n)`` after each; ``on_first(frames, seconds,
        output size)`` once, after the first batch is upscaled and before any frame is written."""
        for chunk in batches:
            pixels = np.stack([f.pixels for f in chunk])
            if self.size is None:
                self.size = (pixels.shape[2], pixels.shape[1])
                self.output_size = self.job.output_size(self.size, self.scale)
            elif (pixels.shape[2], pixels.shape[1]) != self.size:
                raise InputError(
                    f"{self.job.src}: frame size changes mid-stream ({self.size[0]}x{self.size[1]} -> "
                    f"{pixels.shape[2]}x{pixels.shape[1]}); not supported"
                )
            took = time.perf_counter()
            upscaled = check_upscaled(self.upscaler.upscale(pixels), pixels, self.scale)
            if self.writer is None:
                if on_first is not None:
                    on_first(len(chunk), time.perf_counter() - took, self.output_size)
                self._start_writer(chunk[0])
            self.writer.put(upscaled, [f.pts for f in chunk], [f.duration for f in chunk])
            self.frames += len(chunk)
            if on_frames is not None:
                on_frames(len(chunk))

    def _start_writer(self, first) -> None:
        reader = self.reader
        time_base = reader.time_base or Fraction(1, 1000)
        command = self.encoder(time_base=time_base, offset=first.pts * time_base - self.origin, sar=reader.sar)
        full = (self.size[0] * self.scale, self.size[1] * self.scale)
        self.writer = FrameWriter(
            command,
            width=self.output_size[0],
            height=self.output_size[1],
            resize=self.output_size if self.output_size != full else None,
            time_base=time_base,
            frame_rate=reader.frame_rate,
            first_pts=first.pts,
            dst=self.job.dst,
        )
        self.writer.start()

    def stop(self) -> None:
        if self.writer is not None:
            self.writer.stop()


def progress_bar(job: VideoJob, progress: bool, initial: int = 0) -> tqdm:
    """The frame counter on stderr (disabled unless ``progress``); its total is :func:`expected_frames`."""
    return tqdm(
        total=expected_frames(job) if progress else None,
        initial=initial,
        unit="frame",
        desc=job.src.name,
        file=sys.stderr,
        disable=not progress,
        leave=False,
        dynamic_ncols=True,
    )


def _words(seconds: float) -> str:
    """``4000`` -> ``"1 h 07 min"``; ``95`` -> ``"1 min 35 s"``; ``7.2`` -> ``"7 s"``."""
    s = max(0, round(seconds))
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    if s >= 60:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s} s"


class Estimate:
    """The line said before a video's first frame is written: frames, output size and the time it
    should take, measured on the first batch (so it includes the model's warm-up and is on the safe side);
    then a line per note of the stream plan (what is re-encoded, converted or dropped).

    It goes to stderr beside the progress bar, and only when the bar is on (not with ``-q``).
    ``done``: frames an earlier run made (resumed jobs); ``workers``: processes sharing the rest;
    ``share``: the part of the frames this run makes (a shard's); ``total``: the frames of the whole
    output, as the progress bar counts them (None: :func:`estimated_frames`, from the header).
    """

    def __init__(
        self,
        job: VideoJob,
        *,
        enabled: bool,
        done: int = 0,
        workers: int = 1,
        share: float = 1.0,
        total: int | None = None,
    ):
        self.job, self.enabled, self.done, self.workers = job, enabled, done, max(1, workers)
        self.share, self.total = share, total
        self.line: str | None = None

    def first_batch(self, frames: int, seconds: float, output_size: tuple[int, int]) -> None:
        if self.line is not None:
            return
        total = self.total if self.total is not None else estimated_frames(self.job)
        w, h = output_size
        per_frame = seconds / max(1, frames)
        count = f"{total} frames" if total is not None else "an unknown number of frames (the header does not say)"
        if self.done:
            count += f" ({self.done} made by an earlier run)"
        if total is not None:
            left = max(0, round((total - self.done) * self.share) - frames) * per_frame / self.workers
            time_left = f"estimated time {_words(left)}"
        else:
            time_left = "no time estimate"
        self.line = (
            f"{self.job.src.name}: {count}, output {w}x{h}; {time_left} (an estimate, measured on the first "
            f"batch: {frames} frame{'s' * (frames != 1)} in {seconds:.2f} s"
            + (f", {self.workers} workers" if self.workers > 1 else "")
            + (f", this shard's {self.share:.0%} of the frames" if self.share < 1 else "")
            + ")"
        )
        if self.enabled:
            tqdm.write(self.line, file=sys.stderr)
            # What the stream plan changed (a track re-encoded, subtitles dropped) is said now too, not
            # only in the final summary: the user may rather stop and pick another container.
            for note in self.job.streams.notes if self.job.streams is not None else []:
                tqdm.write(f"{self.job.src.name}: {note}", file=sys.stderr)


def video_notes(job: VideoJob, plan, *, adjusted: int, errors: int, first_error: str | None) -> list[str]:
    """What the summary tells the user about a finished video (the same for one pass or segments)."""
    video = job.info.video
    notes = list(job.notes) + list(job.encode.notes) + list(plan.notes)
    if job.trim is not None:
        notes.append(f"cut {job.trim.describe()}")
    rotation = round(video.rotation) % 360
    if video.color_trc in ("smpte2084", "arib-std-b67"):
        notes.append("HDR source converted without tone mapping: colours will look flat")
    if rotation:
        notes.append(f"rotation tag ({rotation} deg) applied: frames are upright")
    if adjusted:
        notes.append(f"{adjusted} non-increasing timestamp(s) nudged forward")
    if errors:
        notes.append(
            f"input is damaged: ffmpeg reported {errors} error(s) (first: {first_error}); "
            "frames it could not decode are skipped, the others keep their times"
        )
    return notes


def frame_size(info: MediaInfo) -> tuple[int, int]:
    """``(width, height)`` of the decoded, upright frames (0, 0 if the probe did not say)."""
    v = info.video
    w, h = v.width or 0, v.height or 0
    return (h, w) if round(v.rotation or 0) % 180 == 90 else (w, h)


def memory_plan(job: VideoJob, upscaler, batch: int, max_memory) -> MemoryPlan:
    """The batch and queue depth for ``job`` under ``max_memory`` (see :mod:`vsr.video.memory`)."""
    width, height = frame_size(job.info)
    return plan_memory(upscaler, width, height, batch, resolve_budget(max_memory), src=job.src)


@dataclass(frozen=True)
class TrimInputs:
    """What a trimmed job's muxer reads beside the source (see :mod:`.writer`): converted subtitles and
    the cut chapters (ffmetadata); None where there is nothing to read."""

    side: SubtitleSide | None = None
    chapters: Path | None = None

    def options(self) -> dict:
        return {"side": self.side, "chapters": self.chapters}


@contextlib.contextmanager
def trim_inputs(job: VideoJob, plan: StreamPlan) -> Iterator[TrimInputs]:
    """For a trimmed job: the subtitles ffmpeg must convert, converted untrimmed, and the chapters cut
    to the span, in temporary files beside the output (named as its temporaries are, so a later run
    sweeps them up if this one is killed) that are removed afterwards."""
    if job.trim is None:
        yield TrimInputs()
        return
    with contextlib.ExitStack() as stack:
        side = chapters = None
        text = trimmed_chapters(job.info, job.trim)
        if text is not None:
            chapters = stack.enter_context(AtomicOutput(job.dst)).tmp
            chapters.write_text(text, encoding="utf-8")
        if needs_subtitle_side(plan, job.trim):
            tmp = stack.enter_context(AtomicOutput(job.dst)).tmp
            command, streams = subtitle_side_command(src=job.src, plan=plan, encode=job.encode, tmp=tmp)
            proc = FFmpegProcess(command, role="subtitle converter")
            try:
                rc = proc.wait()
            finally:
                proc.stop()
            if rc != 0:
                raise FFmpegError(f"{job.src}: converting the subtitles failed: {proc.failure(rc)}")
            side = SubtitleSide(tmp, streams)
        yield TrimInputs(side, chapters)


def frames_of(job: VideoJob, reader: FrameReader, start, lo=None, hi=None, *, first: bool = True) -> FrameRange:
    """The frames of ``reader`` in ``[lo, hi)`` (seconds; None: open), cut to the job's trim as well.
    ``first``: this range starts the output, so it begins with the frame displayed at the trim's start.
    ``start``: where the reader was started (a seek, unless 0 or None)."""
    trim = job.trim
    if trim is not None:
        lo = lo if lo is not None or not first else (trim.start or None)
        hi = hi if hi is not None else trim.end
    return FrameRange(
        reader,
        lo,
        hi,
        seeked=bool(start),
        displayed=first and trim is not None and bool(trim.start),
        clip_end=trim.end if trim is not None else None,
    )


def no_frames(job: VideoJob, frames: FrameRange | None = None) -> InputError:
    """The error for an output that got no frame: a start past the last frame (the header's duration,
    which passed, counts the audio too), or an empty or damaged video stream."""
    if job.trim is not None and job.trim.start:
        end = frames.last_end if frames is not None else None
        said = f" (its last frame ends at {format_time(end)})" if end is not None else "'s frames"
        return InputError(f"{job.src}: --start {format_time(job.trim.start)} is beyond the end of the video{said}")
    return InputError(f"{job.src}: no video frames could be decoded (empty or damaged video stream)")


def run_video(
    job: VideoJob, upscaler, *, batch: int = 4, progress: bool = True, max_memory: int | str | Budget | None = None
) -> Summary:
    """Upscale a planned video in a single pass (see :func:`upscale_video`)."""
    started = time.perf_counter()
    video = job.info.video
    memory = memory_plan(job, upscaler, batch, max_memory)
    batch = memory.batch
    bar = progress_bar(job, progress)
    estimate = Estimate(job, enabled=progress, total=bar.total)
    plan = job.stream_plan()
    origin = job.trim.start if job.trim else Fraction(0)
    try:
        with sigterm_as_cancel(), AtomicOutput(job.dst, overwrite=job.overwrite) as out, cover_files(job.src, plan):
            try:
                with user_errors(job, "partial output removed"), trim_inputs(job, plan) as inputs:
                    encoder = functools.partial(
                        encoder_command, src=job.src, info=job.info, tmp=out.tmp, encode=job.encode, plan=plan,
                        trim=job.trim, **inputs.options(),
                    )
                    for start in decoder_starts(job.trim.start if job.trim else None):
                        reader = FrameReader(
                            job.src,
                            video.index,
                            queue_size=memory.reader_queue,
                            color_matrix=untagged_matrix(video),
                            start=start,
                        )
                        frames = frames_of(job, reader, start) if job.trim else None
                        pump = Upscaling(job, reader, upscaler, encoder, origin)
                        try:
                            reader.start()
                            try:
                                pump.run(
                                    frames.batches(batch) if frames else reader.batches(batch), bar.update,
                                    estimate.first_batch,
                                )
                            except SeekMissed:
                                continue  # nothing was encoded: the check is on the decoder's first frame
                            if pump.writer is None:
                                raise no_frames(job, frames)
                            if job.trim is None or job.trim.end is None:
                                check_not_truncated(job, reader)
                            pump.writer.finish()
                            out.commit()
                            break
                        finally:
                            with signals_deferred(lambda: not out.committed):
                                reader.stop()
                                pump.stop()
            finally:
                with signals_deferred(lambda: not out.committed):
                    out.discard()
    finally:
        bar.close()
    errors = reader.errors[frames.errors_before :] if frames else reader.errors
    notes = memory.notes + video_notes(
        job, plan, adjusted=pump.writer.adjusted, errors=len(errors), first_error=errors[0] if errors else None
    )
    summary = Summary(job.src, job.dst, pump.frames, time.perf_counter() - started, pump.size, pump.output_size, notes)
    summary.describe_upscaler(upscaler)
    summary.describe_output(job.encode)
    return summary


def check_not_truncated(job: VideoJob, reader: FrameReader) -> None:
    """Refuse a file cut short even when ffmpeg's demuxer ends it silently (a cut on a packet boundary).

    The header's duration comes from the index, written before the cut; the packets do not reach it.
    A video that merely ends before its audio passes: the audio packets do reach the duration.
    """
    promised, video_end = job.info.duration, reader.end_seconds
    if not promised or video_end is None:
        return
    # Both ends count from the file's start time. A header's duration may too (MP4), or count from 0:
    # ffmpeg's Matroska muxer writes the last timestamp, so a file starting at 5 s "lasts" 5 s longer.
    # Either reading of the header must find the data short before we call the file truncated.
    start = job.info.start if job.info.start and job.info.start > 0 else 0.0
    promised_from_start = min(promised, max(promised - start, 0.0))
    slack = max(0.5, 0.02 * promised)
    if video_end >= promised_from_start - slack:
        return
    data_end = demuxed_end(job.src)
    if data_end is not None and max(data_end, video_end) < promised_from_start - slack:
        raise InputError(
            f"{job.src}: input is truncated: its data ends at {max(data_end, video_end):.2f} s "
            f"of the {promised:.2f} s its header promises (file cut short?)"
        )
