"""Long videos in segments: resumable after a crash, spread over worker processes and machines.

A segmented job cuts the video's timeline into segments of ``segment_seconds`` (frame ``n`` belongs to
segment ``k`` when its time is in ``[k*S, (k+1)*S)``; the first and last segments are open-ended, so
no frame falls outside) and encodes each one on its own into the work folder (:mod:`.workdir`). When
every segment is done, ffmpeg's concat demuxer joins them by stream copy and the source's audio,
subtitles, chapters and metadata are muxed in exactly as a single pass does; the output is renamed
into place and the work folder removed.

Frames are assigned by exact pts, not by seeking: a segment's decoder seeks to a little before its
start (keeping the file's own timestamps, see :func:`~vsr.video.reader.decoder_command`), frames
before the start are skipped, and decoding stops at the first frame at or after the end, whose pts
is recorded as the segment's ``next_pts``. If the seek landed after the segment's start (inexact
demuxers such as MPEG-TS), it is retried from further back, finally from the beginning. The merge
checks that every segment's ``next_pts`` is the next one's ``first_pts``: no frame lost or repeated.

Timing: each segment starts at time 0; the concat list gives each one's exact duration (next start
minus own start, to the microsecond, which rounds back to the source's ticks), and the joined video
gets the first frame's time as its offset, as a single pass does. So timestamps, VFR included, are
the source's. Segments need increasing timestamps: a source whose pts go backwards is refused with a
hint to run it in a single pass (``--segment-seconds 0``).

A trimmed job (``--start``/``--duration``, :mod:`.span`) counts its segments from its start: the
first begins with the frame displayed there, the last ends at its end, the frames keep their source
times, and the merge cuts the source's other streams as a single pass does. The span is part of the
manifest, so another span refuses the segments.

Workers: with ``workers > 1`` each worker is a separate Python process (not a fork) that builds its
own upscaler from a picklable factory and claims segments until none is free; with several GPUs each
worker sees one (``CUDA_VISIBLE_DEVICES``). Shards (``--shard K/N``) take segments ``K-1, K-1+N, ...``
and stop without merging; ``--merge`` joins once all are done.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import itertools
import math
import os
import pickle
import queue
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from ..errors import Cancelled, FFmpegError, InputError, OutputError, VsrError
from .ffmpeg import FFmpegProcess, ffmpeg_identity
from .memory import Budget, reader_queue_for, resolve_budget
from .output import AtomicOutput
from .pipeline import (
    Estimate,
    Summary,
    Upscaling,
    VideoJob,
    check_not_truncated,
    frames_of,
    memory_plan,
    no_frames,
    progress_bar,
    signals_deferred,
    sigterm_as_cancel,
    span_seconds,
    trim_inputs,
    user_errors,
    video_notes,
)
from .probe import demuxed_end, first_video_time, probe
from .reader import FrameReader, untagged_matrix
from .span import SEEK_MARGINS, SeekMissed
from .workdir import HOST, SegmentRecord, WorkFolder, source_identity, work_folder_for
from .writer import concat_command, cover_files, segment_encoder_command

#: Segment length when none is given; videos no longer than one segment run in a single pass.
DEFAULT_SEGMENT_SECONDS = 30
#: A tail shorter than this (or than half a segment) makes no segment of its own. An encoder that
#: reorders frames sets its decode delay from the first frames it is given (x264's B-pyramid: 2 frames,
#: once it has seen 3), so a segment of 1-2 frames starts with a smaller delay than the others, and an
#: MP4 joined from it holds one sample that much too long (measured: 51 frames at 25 fps in segments
#: of 1 s read back as 24.06 fps with a 0.08 s longer track; 25 fps with the tail in the last segment).
MIN_TAIL_SECONDS = Fraction(1, 2)
#: How often a run waiting for segments that other processes hold looks again.
_POLL_SECONDS = 2.0


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (1-based): segments ``index-1``, ``index-1+count``, ..."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """``"2/4"`` -> ``Shard(2, 4)``; :class:`ValueError` with a one-line message otherwise."""
    k, sep, n = str(text).partition("/")
    try:
        shard = Shard(int(k), int(n)) if sep else None
    except ValueError:
        shard = None
    if shard is None or not 1 <= shard.index <= shard.count:
        raise ValueError(f"--shard takes K/N with 1 <= K <= N (e.g. 2/4), not {text!r}")
    return shard


@dataclass
class SegmentedJob:
    """A video planned as segments in a work folder (see :func:`plan_segmented`)."""

    video: VideoJob
    work: WorkFolder
    segment_seconds: Fraction
    count: int
    shard: Shard | None = None

    def bounds(self, index: int) -> tuple[Fraction | None, Fraction | None]:
        """Segment ``index`` holds the frames whose time (s) is in [lo, hi); None: open-ended.

        Segments count from a trimmed job's start, and the last one ends at its end."""
        trim = self.video.trim
        origin = trim.start if trim is not None else Fraction(0)
        lo = origin + index * self.segment_seconds if index > 0 or origin else None
        if index < self.count - 1:
            hi = origin + (index + 1) * self.segment_seconds
        else:
            hi = trim.end if trim is not None else None
        return lo, hi

    def share(self) -> list[int]:
        """The segments this run makes: all, or its shard's."""
        if self.shard is None:
            return list(range(self.count))
        return list(range(self.shard.index - 1, self.count, self.shard.count))


def _seconds(value) -> Fraction:
    try:
        seconds = Fraction(str(value))
    except (ValueError, ZeroDivisionError):
        raise OutputError(f"--segment-seconds takes a number of seconds, not {value!r}") from None
    if seconds < 0:
        raise OutputError(f"--segment-seconds must be positive (0: a single pass), not {value}")
    return seconds


def _decimal(seconds: Fraction) -> str:
    """``0.5`` rather than ``1/2`` where a decimal is exact."""
    text = format(float(seconds), "g")
    return text if Fraction(text) == seconds else str(seconds)


def plan_segmented(
    job: VideoJob,
    *,
    identity: dict | Callable[[], dict],
    segment_seconds=None,
    workers: int | None = None,
    shard: Shard | None = None,
    merge: bool = False,
    restart: bool = False,
) -> SegmentedJob | None:
    """Decide whether ``job`` runs in segments and open (or create) its work folder; None: a single pass.

    Segments are used when asked for (``segment_seconds`` > 0, ``shard``, ``merge``), when a work
    folder from an earlier run exists (resume), or when the video is longer than one segment (so
    ``workers`` alone leave a short video to a single pass). ``identity`` (or a function returning it,
    called only for a segmented job) names the model and its pixel-changing options for the manifest.
    Needs no model; raises :class:`OutputError` for a work folder of another job (unless ``restart``).
    """
    folder = work_folder_for(job.dst)
    if merge and (restart or shard):
        raise OutputError("--merge joins finished segments: it takes neither --restart nor --shard")
    if restart and shard:
        raise OutputError("--restart with --shard would discard the other shards' work: remove the work folder once")
    if restart and WorkFolder.existing_manifest(folder) is not None:
        WorkFolder(folder, {}, job.dst.suffix).remove()
    existing = WorkFolder.existing_manifest(folder)
    seconds = None if segment_seconds is None else _seconds(segment_seconds)
    if seconds == 0:
        if merge or shard or (workers or 1) > 1:
            raise OutputError("--segment-seconds 0 means a single pass: drop --workers, --shard and --merge")
        return None
    if seconds is None:
        seconds = Fraction(existing["segment_seconds"]) if existing else Fraction(DEFAULT_SEGMENT_SECONDS)
    duration = span_seconds(job, job.info.duration or demuxed_end(job.src) or 0.0)
    asked = merge or shard is not None or segment_seconds is not None
    if existing is None and not asked and duration <= seconds:
        return None
    if merge and existing is None:
        raise OutputError(f"{folder}: no work folder to merge; run the shards first")
    # A tail under 10 ms (less than one frame at 100 fps: an audio track outlasting the video a little)
    # makes no segment of its own; 10 ms is also the precision ffmpeg's printed header gave us before
    # probing read the exact value through PyAV, so plans made then and now agree. A tail shorter
    # than MIN_TAIL_SECONDS goes to the last full segment.
    total = Fraction(math.floor(duration * 100), 100)
    count = max(1, math.ceil(total / seconds))
    if count > 1 and total - (count - 1) * seconds < min(MIN_TAIL_SECONDS, seconds / 2):
        count -= 1  # the short tail goes to the last full segment (open-ended, see bounds)
    if existing and Fraction(existing["segment_seconds"]) == seconds:
        count = existing["segments"]  # a header read differently must not renumber finished segments
    manifest = {
        "output": job.dst.name,
        "source": source_identity(job.src),
        "model": identity() if callable(identity) else identity,
        "encode": job.encode.identity(),  # codec, quality, pixel format and every --encoder-opt
        "segment_seconds": _decimal(seconds),
        "segments": count,
        "ffmpeg": ffmpeg_identity(),  # another release encodes (and joins) differently: refused on resume
    }
    # Absent when unset, so folders made before --start/--duration or --outscale existed resume.
    if job.trim is not None:
        manifest["trim"] = job.trim.identity()  # the span: segments of another one are refused
    if job.size.identity() is not None:  # x4: no key
        manifest["output_size"] = job.size.identity()
    work = WorkFolder.open(folder, manifest, job.dst.suffix)
    return SegmentedJob(job, work, seconds, count, shard)


# -- one segment ---------------------------------------------------------------------------------
def run_segment(
    sjob: SegmentedJob, claim, upscaler, *, batch: int, on_frames=None, queue_size: int | None = None, on_first=None
) -> SegmentRecord:
    """Make the claimed segment and commit it to the work folder; returns its record.

    Raises like :func:`~vsr.video.pipeline.run_video`; on any error the temporary file is removed and
    the claim released, and finished segments stay.
    """
    started = time.perf_counter()
    lo, hi = sjob.bounds(claim.index)
    try:
        for margin in SEEK_MARGINS if lo is not None else (None,):
            start = 0.0 if margin is None else max(0.0, float(lo) - margin)
            try:
                return _encode_range(
                    sjob, claim, upscaler, lo, hi, start, batch, on_frames, started,
                    queue_size or reader_queue_for(batch), on_first,
                )
            except SeekMissed:
                continue  # nothing was encoded: the check is on the decoder's first frame
        raise AssertionError("decoding from the start cannot miss a frame")
    finally:
        with signals_deferred(lambda: True):  # a second Ctrl-C must not leave the claim behind
            claim.release()


def _encode_range(
    sjob, claim, upscaler, lo, hi, start, batch, on_frames, started, queue_size, on_first=None
) -> SegmentRecord:
    job, work = sjob.video, sjob.work
    video = job.info.video
    reader = FrameReader(
        job.src, video.index, queue_size=queue_size, color_matrix=untagged_matrix(video), start=start
    )
    frames = frames_of(job, reader, start, lo, hi, first=claim.index == 0)
    tmp = work.temp_media(claim)
    pump = Upscaling(job, reader, upscaler, functools.partial(segment_encoder_command, tmp=tmp, encode=job.encode))
    committed = False
    try:
        with user_errors(job, "the segments finished so far are kept"):
            reader.start()
            pump.run(frames.batches(batch), on_frames, on_first)
            writer = pump.writer  # None: no frame in this segment (a gap in a variable-rate video)
            if writer is not None:
                writer.finish()
            if hi is None:
                check_not_truncated(job, reader)
            errors = reader.errors[frames.errors_before :]
            start_us, inpoint = _start_micros(tmp) if writer else (None, False)
            record = SegmentRecord(
                index=claim.index,
                file=work.media(claim.index).name if writer else None,
                bytes=tmp.stat().st_size if writer else 0,
                frames=pump.frames,
                start_us=start_us,
                inpoint=inpoint,
                first_pts=writer.first_pts if writer else None,
                next_pts=frames.next_pts,
                time_base=str(reader.time_base or Fraction(1, 1000)),
                size=pump.size,
                output_size=pump.output_size,
                errors=len(errors),
                first_error=errors[0] if errors else None,
                adjusted=writer.adjusted if writer else 0,
                seconds=round(time.perf_counter() - started, 3),
                host=HOST,
                pid=os.getpid(),
            )
            work.commit(claim, tmp if writer else None, record)
            committed = True
            return record
    finally:
        with signals_deferred(lambda: not committed):
            reader.stop()
            pump.stop()
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


def _start_micros(path: Path) -> tuple[int, bool]:
    """Where the concat demuxer is to take the segment file to start (µs), and whether the listing
    must say so (``inpoint``).

    A Matroska segment of one frame reads back with no start time (one packet with a pts and no dts),
    which the concat demuxer takes as 0 while its frame keeps its own time: the listing's duration
    before it came out negative and the join failed ("Invalid data found when processing input").
    Such a file is given its frame's own time as its in-point instead.
    """
    start = probe(path).start
    if start is not None:
        return round(start * 1_000_000), False
    first = first_video_time(path)
    return (0, False) if first is None else (round(first * 1_000_000), True)


# -- workers -------------------------------------------------------------------------------------
def _work_here(
    sjob: SegmentedJob,
    get_upscaler,
    batch: int,
    on_frames,
    budget: Budget | None = None,
    notes: list | None = None,
    on_first=None,
) -> int:
    """Make free segments of this run's share in this process until none is left; returns how many.

    The batch is fitted to ``budget`` once, with the first upscaler (see :mod:`.memory`); what that
    changed is added to ``notes``."""
    made = 0
    claim = None
    memory = None
    try:
        while True:
            claim = sjob.work.claim_next(sjob.share())
            if claim is None:
                return made
            upscaler = get_upscaler()
            if memory is None:
                memory = memory_plan(sjob.video, upscaler, batch, budget)
                if notes is not None:
                    notes.extend(n for n in memory.notes if n not in notes)
            run_segment(
                sjob, claim, upscaler, batch=memory.batch, on_frames=on_frames, queue_size=memory.reader_queue,
                on_first=on_first,
            )
            made += 1
    finally:
        if claim is not None:
            with signals_deferred(lambda: True):
                claim.release()


def _die_with_parent() -> None:
    """Linux: get SIGTERM when the parent dies, so an orphaned worker stops (and frees its claim)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _cancel(signum, frame):
    """A worker's SIGINT/SIGTERM: stop once; a second signal must not cut the clean-up short."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Cancelled("worker stopped", signum)


def _portable(error: BaseException) -> BaseException:
    """``error`` if it survives pickling (to reach the parent), else a VsrError that says what it was."""
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:  # noqa: BLE001 - any unpicklable exception is replaced
        return VsrError(f"{type(error).__name__}: {error}")


#: A worker process's program: the parent's sys.path, then the job, arrive pickled on stdin.
_WORKER = (
    "import pickle, sys; sys.path[:0] = pickle.load(sys.stdin.buffer); "
    "from vsr.video.segmented import worker_main; worker_main()"
)


def worker_main() -> None:
    """Entry of a worker process (see :func:`_work_in_processes`): build the upscaler, make free
    segments, and report ``("frames", n)``, then ``("done", made)`` or ``("error", exception)``,
    pickled, on the events pipe."""
    _die_with_parent()
    signal.signal(signal.SIGTERM, _cancel)
    signal.signal(signal.SIGINT, _cancel)
    sjob, factory, batch, budget, fd = pickle.load(sys.stdin.buffer)
    with os.fdopen(fd, "wb") as events:

        def send(*event) -> None:
            pickle.dump(event, events)
            events.flush()

        try:
            upscaler = factory()
            made = _work_here(
                sjob, lambda: upscaler, batch, lambda n: send("frames", n), budget,
                on_first=lambda n, seconds, size: send("first", n, seconds, size),
            )
            signal.signal(signal.SIGTERM, signal.SIG_DFL)  # done: a late stop needs no clean-up
            send("done", made)
        except BaseException as e:  # noqa: BLE001 - handed to the parent, which raises it
            if not isinstance(e, VsrError):
                traceback.print_exc()  # a bug: the parent gets the exception, not this process's stack
            send("error", _portable(e))


class _Worker:
    """One worker process and the thread that turns its pickled events into ``(worker, event)`` items."""

    def __init__(self, number: int, payload: tuple, device: str | None, events: queue.Queue):
        self.number = number
        read, write = os.pipe()
        env = dict(os.environ)
        if device is not None:
            env["CUDA_VISIBLE_DEVICES"] = device
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _WORKER], stdin=subprocess.PIPE, pass_fds=(write,), env=env
            )
        finally:
            os.close(write)
        self._events = events
        self._pipe = os.fdopen(read, "rb")
        self._thread = threading.Thread(target=self._read, name=f"vsr-worker-{number}", daemon=True)
        self._thread.start()
        try:
            self.proc.stdin.write(pickle.dumps(sys.path) + pickle.dumps((*payload, write)))
            self.proc.stdin.close()
        except OSError:
            pass  # it died at once; its exit status tells why

    def _read(self) -> None:
        with self._pipe:
            while True:
                try:
                    event = pickle.load(self._pipe)
                except (EOFError, OSError, pickle.UnpicklingError):
                    break
                self._events.put((self.number, event))
        self._events.put((self.number, None))

    def stop(self) -> None:
        """SIGTERM (the worker cancels, removes its temporary file, frees its claim), then reap."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.terminate()

    def reap(self, timeout: float) -> None:
        try:
            self.proc.wait(timeout=max(0.1, timeout))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._thread.join(timeout=5)


def identity_of(upscaler_or_factory) -> dict:
    """What names an upscaler in a work folder's manifest: its ``identity()`` if it has one, else its
    class (or the factory itself, for a class or function), ``name`` and ``scale``. Pass identities
    that name the weights where you can: this default cannot tell two weight files apart."""
    if hasattr(upscaler_or_factory, "identity"):
        return upscaler_or_factory.identity()
    obj = upscaler_or_factory
    kind = obj if isinstance(obj, type) or callable(obj) and not hasattr(obj, "upscale") else type(obj)
    return {
        "upscaler": f"{getattr(kind, '__module__', '?')}.{getattr(kind, '__qualname__', repr(kind))}",
        "name": getattr(obj, "name", None),
        "scale": getattr(obj, "scale", None),
    }


def default_workers(factory) -> int:
    """One worker per GPU the factory's framework sees (its ``gpus()``), else one."""
    return max(1, int(getattr(factory, "gpus", lambda: 0)()))


def _devices(factory, workers: int) -> list[str | None]:
    """The GPU each worker gets: one each, round robin over the GPUs the factory's framework sees."""
    gpus = int(getattr(factory, "gpus", lambda: 0)())
    if gpus <= 0:
        return [None] * workers
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = [d for d in visible.split(",") if d.strip()] if visible else [str(i) for i in range(gpus)]
    return [ids[i % len(ids)] for i in range(workers)]


def _work_in_processes(
    sjob: SegmentedJob, factory, workers: int, batch: int, on_frames, budget: Budget | None = None, on_first=None
) -> None:
    """Run ``workers`` processes over this run's share; raises the first worker's error.

    Processes of their own (``python -c``), not forked: TensorFlow does not survive a fork, and each
    worker loads the model itself from the picklable ``factory``. They stay in our process group, so a
    terminal's Ctrl-C reaches them too; each cleans up after itself and we reap them all.
    """
    events: queue.Queue = queue.Queue()
    devices = _devices(factory, workers)
    procs: list[_Worker] = []
    finished: set[int] = set()
    try:
        for i in range(workers):
            share = budget.split(workers) if budget else None  # each worker loads its own model too
            procs.append(_Worker(i, (sjob, factory, batch, share), devices[i], events))
        while len(finished) < len(procs):
            try:
                worker, event = events.get(timeout=0.5)
            except queue.Empty:
                continue
            if event is None:  # its pipe closed: it exited
                if worker not in finished:
                    rc = procs[worker].proc.wait()
                    raise VsrError(
                        f"{sjob.video.src}: worker {worker} died (exit status {rc}); "
                        "finished segments are kept: run the same command to resume"
                    )
            elif event[0] == "frames":
                on_frames(event[1])
            elif event[0] == "first":
                if on_first is not None:
                    on_first(*event[1:])
            elif event[0] == "done":
                finished.add(worker)
            else:
                raise event[1]
    finally:
        with signals_deferred(lambda: False):
            for i, w in enumerate(procs):
                if i not in finished:
                    w.stop()
            deadline = time.monotonic() + 30
            for w in procs:
                w.reap(deadline - time.monotonic())


def _make_share(
    sjob: SegmentedJob, get_upscaler, factory, workers: int, batch: int, bar, budget=None, notes=None, estimate=None
) -> None:
    """Make every segment of this run's share, waiting for those other processes hold."""
    while True:
        share = sjob.share()
        todo = [i for i in share if sjob.work.record(i) is None]
        if not todo:
            return
        free = [i for i in todo if sjob.work.holder(i) is None]
        if not free:
            bar.set_postfix_str(f"waiting for {len(todo)} segment(s) other processes hold", refresh=True)
            time.sleep(_POLL_SECONDS)
            continue
        n = min(workers, len(free))
        on_first = None
        if estimate is not None:
            estimate.workers = n
            on_first = estimate.first_batch
        if n <= 1:
            _work_here(sjob, get_upscaler, batch, bar.update, budget, notes, on_first)
        else:
            _work_in_processes(sjob, factory, n, batch, bar.update, budget, on_first)


# -- the whole job -------------------------------------------------------------------------------
def run_segmented(
    sjob: SegmentedJob,
    get_upscaler: Callable[[], object],
    *,
    factory=None,
    workers: int = 1,
    merge: bool = False,
    batch: int = 4,
    progress: bool = True,
    max_memory=None,
) -> Summary:
    """Make this run's segments (unless ``merge``), then join them all (unless this is a shard).

    ``get_upscaler()`` gives this process's upscaler; ``factory`` (picklable, e.g. a class or a
    :class:`~vsr.video.command.ModelFactory`) builds one in each worker process when ``workers > 1``.
    Raises a :class:`~vsr.errors.VsrError`; finished segments are always kept for the next run.
    """
    started = time.perf_counter()
    work, job = sjob.work, sjob.video
    batch = max(1, int(batch))
    budget = resolve_budget(max_memory) if not merge else None
    memory_notes: list[str] = []
    before = work.done(range(sjob.count))
    frames_before = sum(r.frames for r in before.values())
    if workers > 1 and factory is None:
        raise TypeError("workers > 1 needs a picklable upscaler factory")
    if not merge:
        bar = progress_bar(job, progress, initial=frames_before)
        share = 1.0 if sjob.shard is None else len(sjob.share()) / sjob.count
        estimate = Estimate(job, enabled=progress, done=frames_before, share=share, total=bar.total)
        try:
            with sigterm_as_cancel():
                _make_share(sjob, get_upscaler, factory, workers, batch, bar, budget, memory_notes, estimate)
        except BaseException as e:
            if not work.path.exists():  # another run of the same output merged and removed it
                raise _finished_elsewhere(sjob) from None
            kept = not _forget_if_empty(sjob)
            if isinstance(e, (KeyboardInterrupt, Cancelled)):
                signum = e.signum if isinstance(e, Cancelled) else signal.SIGINT
                raise Cancelled(f"{job.src}: interrupted; {_kept(sjob) if kept else 'nothing was finished'}",
                                signum) from None
            raise
        finally:
            bar.close()
    if sjob.shard is not None:
        records = work.done(range(sjob.count))
        processed = sum(r.frames for i, r in records.items() if i not in before)
        summary = _shard_summary(sjob, records, processed, time.perf_counter() - started)
        summary.describe_output(job.encode)  # its output is the work folder: no size
        return summary
    with work.merging() as ours:
        if not ours:
            raise _finished_elsewhere(sjob)
        records = work.done(range(sjob.count))
        processed = sum(r.frames for i, r in records.items() if i not in before)
        missing = [i for i in range(sjob.count) if i not in records]
        if missing:
            holder = work.holder(missing[0])
            held = f", claimed by {holder.get('host')} pid {holder.get('pid')}" if holder else ""
            raise OutputError(
                f"{work.path}: {len(missing)} of {sjob.count} segments are not done yet (first: {missing[0]}{held}); "
                "finish the shards, or run without --merge to make them here"
            )
        summary = merge_segments(sjob, [records[i] for i in range(sjob.count)])
    summary.describe_output(job.encode)
    summary.notes[:0] = memory_notes
    summary.seconds = time.perf_counter() - started
    summary.processed = processed
    if frames_before and processed:
        summary.notes.append(f"resumed: {frames_before} of {summary.frames} frames were done by an earlier run")
    elif frames_before:
        summary.notes.append(f"joined {len(records)} segments made by earlier runs or shards")
    return summary


def _finished_elsewhere(sjob: SegmentedJob) -> OutputError:
    dst = sjob.video.dst
    done = "it is complete" if dst.exists() else "check it before running again"
    return OutputError(f"{dst}: another vsr run of this output finished the job while this one "
                       f"worked ({sjob.work.path.name} was merged and removed): {done}")


def _kept(sjob: SegmentedJob) -> str:
    done = len(sjob.work.done(range(sjob.count)))
    return (
        f"{done} of {sjob.count} segments are kept in {sjob.work.path}: run the same command to resume "
        "(--restart discards them)"
    )


def _forget_if_empty(sjob: SegmentedJob) -> bool:
    """After a failure with nothing done (and nobody else at work), remove the work folder: no litter."""
    if sjob.work.done(range(sjob.count)) or any(sjob.work.holder(i) is not None for i in range(sjob.count)):
        return False
    sjob.work.remove()
    return True


def _shard_summary(sjob: SegmentedJob, records: dict, processed: int, seconds: float) -> Summary:
    mine = [records[i] for i in sjob.share() if i in records]
    sized = next((r for r in mine if r.size), None) or next((r for r in records.values() if r.size), None)
    size = sized.size if sized else sjob.video.info.video.upright_size
    out = sized.output_size if sized else size
    note = (
        f"shard {sjob.shard}: its {len(mine)} segment(s) are done, {len(records)} of {sjob.count} in all; "
        "run the same command with --merge (instead of --shard) once every shard has finished"
    )
    return Summary(sjob.video.src, sjob.work.path, processed, seconds, size, out, [note], processed=processed)


def merge_segments(sjob: SegmentedJob, records: list[SegmentRecord]) -> Summary:
    """Join finished segments by stream copy, mux the source's other streams, rename, remove the work folder."""
    job, work = sjob.video, sjob.work
    filled = [r for r in records if r.frames]
    if not filled:
        work.remove()  # segments without a frame: nothing worth resuming
        raise no_frames(job)
    _check_joins(sjob, filled)
    # Each segment holds its frames at their own times, rounded as a single pass rounds them. The concat
    # demuxer shifts file k by (sum of the durations before it) - (file k's start); durations equal to
    # the gaps between the files' starts make that shift the same for every file: minus the first
    # file's start, which the offset of the joined input gives back. So no timestamp is rounded twice.
    listing = work.path / "concat.ffconcat"
    lines = ["ffconcat version 1.0"]
    for r, after in zip(filled, filled[1:] + [None]):
        lines.append(f"file '{r.file}'")
        if r.inpoint:
            lines.append(f"inpoint {r.start_us // 1_000_000}.{r.start_us % 1_000_000:06d}")
        if after is not None:
            step = after.start_us - r.start_us
            lines.append(f"duration {step // 1_000_000}.{step % 1_000_000:06d}")
    listing.write_text("\n".join(lines) + "\n")
    plan = job.stream_plan()
    origin = job.trim.start if job.trim is not None else 0  # segments keep the source's times
    with sigterm_as_cancel(), AtomicOutput(job.dst, overwrite=job.overwrite) as out, cover_files(job.src, plan):
        proc = None
        try:
            with user_errors(job, _kept(sjob)), trim_inputs(job, plan) as inputs:
                command = concat_command(
                    listing=listing,
                    src=job.src,
                    info=job.info,
                    tmp=out.tmp,
                    encode=job.encode,
                    plan=plan,
                    offset=Fraction(filled[0].start_us, 1_000_000) - origin,
                    trim=job.trim,
                    **inputs.options(),
                )
                proc = FFmpegProcess(command, role="muxer")
                rc = proc.wait()
                if rc != 0:
                    raise FFmpegError(f"{job.dst}: joining the segments failed: {proc.failure(rc)}")
                out.commit()
        finally:
            with signals_deferred(lambda: not out.committed):
                if proc is not None:
                    proc.stop()
                out.discard()
    work.remove()
    errors = sum(r.errors for r in filled)
    notes = video_notes(
        job,
        plan,
        adjusted=sum(r.adjusted for r in filled),
        errors=errors,
        first_error=next((r.first_error for r in filled if r.first_error), None),
    )
    frames = sum(r.frames for r in filled)
    return Summary(job.src, job.dst, frames, 0.0, filled[0].size, filled[0].output_size, notes)


def _check_joins(sjob: SegmentedJob, filled: list[SegmentRecord]) -> None:
    """Every segment ends where the next begins (same frame), all share one size and time base."""
    for a, b in itertools.pairwise(filled):
        if a.next_pts != b.first_pts:
            raise OutputError(
                f"{sjob.work.path}: segments {a.index} and {b.index} do not join (pts {a.next_pts} vs "
                f"{b.first_pts}); pass --restart to redo them"
            )
        if (a.size, a.output_size, a.time_base) != (b.size, b.output_size, b.time_base):
            raise InputError(
                f"{sjob.video.src}: frame size or time base changes between segments {a.index} and {b.index} "
                f"({a.size} -> {b.size}); not supported"
            )
    last = filled[-1]
    if last.next_pts is not None:
        end = sjob.video.trim.end if sjob.video.trim is not None else None  # a trimmed job stops before a frame
        if end is None or last.next_pts * Fraction(last.time_base) < end:
            raise OutputError(f"{sjob.work.path}: the last segment is incomplete; pass --restart to redo it")
