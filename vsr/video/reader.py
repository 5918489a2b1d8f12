"""Decoding a video to upright RGB frames on a thread, with exact timestamps.

ffmpeg decodes the chosen stream (``-autorotate`` is on by default, so phone videos come out upright),
passes it through ``showinfo`` (which logs each frame's pts, duration, size and SAR on stderr *before* the
frame is written) and writes raw ``rgb24`` to stdout. ``-fps_mode passthrough`` stops ffmpeg from
duplicating or dropping frames to fake a constant rate. A stderr thread turns showinfo lines into
per-frame records; the reader thread pairs record n with the n-th frame's bytes, so it knows each
frame's size before reading it and each frame's timestamp exactly.

A demuxer's ``partial file`` (an MP4/MOV cut short) fails the read even though ffmpeg exits 0: the
output would silently be shorter than the input. (ffmpeg does not always say it, so the pipeline also
compares where the data ends with the header's duration.) Other errors ffmpeg survives (concealed
decoding damage, a corrupt transport-stream packet) are counted and reported, not fatal.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import ffmpeg as ffmpeg_python
import numpy as np

from ..errors import FFmpegError, InputError, VsrError
from .ffmpeg import FFmpegProcess, clean_message, ffmpeg_exe, log_level, media_arg
from .probe import SHOWINFO_CONFIG, SHOWINFO_FRAME

_END = object()
#: Conversion to RGB: accurate rounding and full chroma interpolation, not swscale's fast defaults.
SWS_FLAGS = "bicubic+accurate_rnd+full_chroma_int"


@dataclass(frozen=True)
class Frame:
    """One decoded frame: ``pixels`` (H, W, 3) uint8 RGB; ``pts``/``duration`` in the reader's time base."""

    pixels: np.ndarray
    pts: int
    duration: int


@dataclass(frozen=True)
class _Meta:
    pts: int
    duration: int | None
    width: int
    height: int
    sar: Fraction


def decoder_command(
    src: Path, stream_index: int, *, color_matrix: str | None = None, start: float | None = None
) -> list[str]:
    """``color_matrix`` overrides the YCbCr matrix the stream is tagged with (for untagged streams).

    ``start`` (seconds; segments of a long job): decode from the keyframe at or before ``start``
    (0: from the beginning) with the file's own timestamps, less its start time (``-copyts
    -start_at_zero``): a frame gets the same pts however far we seek, and the same as without
    ``start``. No frame before ``start`` is dropped here (``-noaccurate_seek``): the caller picks its
    range by pts and can tell a seek that landed too late (some demuxers seek inexactly).
    """
    scale = {"flags": SWS_FLAGS, **({"in_color_matrix": color_matrix} if color_matrix else {})}
    seek: dict = {}
    if start is not None:
        seek = {"copyts": None, "start_at_zero": None}
        if start > 0:
            seek.update(ss=f"{start:.6f}", noaccurate_seek=None)
    video = (
        ffmpeg_python.input(media_arg(src), **seek)[str(stream_index)]
        .filter("showinfo", checksum=0)
        .filter("scale", **scale)
        .filter("format", "rgb24")
    )
    out = ffmpeg_python.output(video, "pipe:1", format="rawvideo", pix_fmt="rgb24", fps_mode="passthrough")
    out = out.global_args("-hide_banner", "-nostdin", "-nostats", "-loglevel", "level+info")
    return out.compile(cmd=ffmpeg_exe())


class FrameReader:
    """Streams frames of ``src``'s stream ``stream_index`` through a bounded queue.

    After the first frame arrives, ``time_base`` and ``frame_rate`` (exact fractions) and ``sar``
    describe the stream. Iterate :meth:`batches`; call :meth:`stop` in a ``finally``.
    """

    def __init__(
        self,
        src: Path,
        stream_index: int,
        *,
        queue_size: int = 8,
        color_matrix: str | None = None,
        start: float | None = None,
    ):
        self.src = Path(src)
        self.stream_index = stream_index
        self.color_matrix = color_matrix
        self.start_at = start  # see decoder_command
        self.time_base: Fraction | None = None
        self.frame_rate: Fraction | None = None
        self.sar = Fraction(1)
        self.errors: list[str] = []  # demuxer/decoder errors ffmpeg survived (damage it concealed or skipped)
        self.truncation: str | None = None  # the demuxer's word that the file ends early
        self.frames_read = 0
        self.end_ticks: int | None = None  # end of the last frame read (pts + duration), in time_base
        self._frames: queue.Queue = queue.Queue(maxsize=max(1, queue_size))
        self._meta: queue.Queue = queue.Queue()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.proc: FFmpegProcess | None = None

    # -- decoder side (threads) ------------------------------------------------------------------
    def start(self) -> None:
        self.proc = FFmpegProcess(
            decoder_command(self.src, self.stream_index, color_matrix=self.color_matrix, start=self.start_at),
            role="decoder",
            stdout=True,
            on_line=self._on_line,
            on_eof=lambda: self._meta.put(None),
        )
        self._thread = threading.Thread(target=self._run, name="vsr-reader", daemon=True)
        self._thread.start()

    def _on_line(self, line: str) -> None:
        ctx, level, msg = log_level(line)
        if "showinfo" in ctx:
            m = SHOWINFO_FRAME.search(msg)
            if m:
                sar = Fraction(int(m["sar_n"]), int(m["sar_d"])) if int(m["sar_d"]) else Fraction(1)
                dur = int(m["dur"]) if m["dur"] is not None else None
                self._meta.put(_Meta(int(m["pts"]), dur, int(m["w"]), int(m["h"]), sar))
                return
            m = SHOWINFO_CONFIG.search(msg)
            if m and self.time_base is None:
                self.time_base = Fraction(int(m[1]), int(m[2]))
                self.frame_rate = Fraction(int(m[3]), int(m[4])) if int(m[4]) else None
            return
        if level in ("error", "fatal", "panic"):
            if "in#" in ctx and "partial file" in msg and self.truncation is None:
                self.truncation = clean_message(msg)
            elif len(self.errors) < 100:
                self.errors.append(clean_message(msg))

    def _run(self) -> None:
        try:
            self._put(self._decode())
        except BaseException as e:  # noqa: BLE001 - handed to the consumer, which re-raises it
            self._put(e)

    def _decode(self):
        stdout = self.proc.proc.stdout
        short = False
        while not self._stopping.is_set():
            meta = self._meta.get()
            if meta is None:
                break
            pixels = np.empty((meta.height, meta.width, 3), np.uint8)
            view = memoryview(pixels).cast("B")
            got = 0
            while got < len(view):
                n = stdout.readinto(view[got:])
                if not n:
                    break
                got += n
            if got < len(view):
                short = True
                break
            if meta.sar:
                self.sar = meta.sar
            duration = meta.duration if meta.duration and meta.duration > 0 else None
            self._put(Frame(pixels, meta.pts, duration or 0))
            self.frames_read += 1
            self.end_ticks = meta.pts + (duration or 0)
        if self._stopping.is_set():
            return _END
        rc = self.proc.wait()
        if rc != 0 or short:
            return FFmpegError(f"{self.src}: decoding failed: {self.proc.failure(rc)}")
        if self.truncation:
            return InputError(f"{self.src}: input is truncated ({self.truncation})")
        return _END

    def _put(self, item) -> None:
        while not self._stopping.is_set():
            try:
                self._frames.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    @property
    def end_seconds(self) -> float | None:
        """Where the frames read so far end, in seconds from the file's start."""
        if self.end_ticks is None or self.time_base is None:
            return None
        return float(self.end_ticks * self.time_base)

    # -- consumer side ---------------------------------------------------------------------------
    def batches(self, size: int) -> Iterator[list[Frame]]:
        """Yield lists of up to ``size`` frames in order; raises the decoder's error at its point."""
        batch: list[Frame] = []
        while True:
            item = self._get()
            if isinstance(item, Frame):
                batch.append(item)
                if len(batch) == size:
                    yield batch
                    batch = []
                continue
            if batch:
                yield batch
            if item is _END:
                return
            if isinstance(item, VsrError):
                raise item
            raise FFmpegError(f"{self.src}: reading frames failed: {item!r}") from item

    def _get(self):
        while True:
            try:
                return self._frames.get(timeout=0.5)
            except queue.Empty:
                if self._thread is not None and not self._thread.is_alive() and self._frames.empty():
                    return FFmpegError(f"{self.src}: the reader thread ended unexpectedly")

    def stop(self) -> None:
        """Stop decoding: kill ffmpeg, end the thread, reap the process. Safe to call more than once."""
        self._stopping.set()
        if self.proc is not None and self.proc.running():
            try:
                self.proc.proc.kill()
            except ProcessLookupError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self.proc is not None:
            self.proc.stop()


def untagged_matrix(video) -> str | None:
    """The YCbCr matrix to assume for a stream without a colour tag, as players do: BT.709 for HD, else None.

    ffmpeg's own default for untagged video is BT.601 whatever the size, while players show untagged
    HD as BT.709; following the players keeps our output's colours what the user saw in the source.
    """
    if video.color_space is not None or video.width is None:
        return None
    return "bt709" if video.width >= 1280 or video.height >= 720 else None


def read_frames(path, *, stream_index: int | None = None, limit: int | None = None) -> np.ndarray:
    """Decode a (short) video into one (N, H, W, 3) uint8 RGB array, upright; at most ``limit`` frames.

    For tests, benchmarks and notebooks: it holds every frame in memory, which the pipeline never does.
    """
    from .probe import probe

    video = probe(path).video
    if video is None:
        raise InputError(f"{path}: has no video stream")
    reader = FrameReader(
        Path(path), video.index if stream_index is None else stream_index, color_matrix=untagged_matrix(video)
    )
    reader.start()
    frames: list[np.ndarray] = []
    try:
        for batch in reader.batches(16):
            frames.extend(f.pixels for f in batch)
            if limit is not None and len(frames) >= limit:
                break
    finally:
        reader.stop()
    if not frames:
        raise InputError(f"{path}: no video frames could be decoded")
    return np.stack(frames[:limit])
