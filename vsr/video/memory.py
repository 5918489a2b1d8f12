"""How many frames a video job may hold at once: batch and queue depth from a memory budget.

An 8K frame (a 1080p input upscaled x4) is 99.5 MB of uint8, and the pipeline holds three batches
of them at once (one the writer is feeding to the encoder, one queued, one the engine is making),
plus the engine's own working memory (the bicubic model's passes; the generator's activations). So
memory grows with the frame and the batch, and a batch that suits a 720p input can exhaust a laptop
at 1080p. Before the first frame is decoded, :func:`plan_memory` estimates what one batch costs and
picks the largest batch (at most the one asked for) whose frames fit the budget; if even one frame
does not fit it asks the engine to work in smaller tiles, and if that is not enough the job is
refused with a one-line :class:`~vsr.errors.MemoryLimitError` naming ``--max-memory``.

The budget is for this Python process as a whole (what is loaded already, the model included, is
measured and subtracted). It does not cover the ffmpeg processes: an x264 encoder at 8K takes
another 4-5 GB by itself (measured: benchmarks/memory_peak.py), which is why the default budget is
only a share of the memory available when the job starts.

Units: bytes everywhere; sizes the user writes (``--max-memory 6G``) are parsed by :func:`parse_size`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import MemoryLimitError

#: Share of the memory available at the start that a job may use when no ``--max-memory`` is given;
#: the rest is left to the ffmpeg encoder (gigabytes at 8K) and the rest of the machine.
DEFAULT_SHARE = 0.5
#: Upscaled batches alive at once: the writer's current one, its queue (FrameWriter's queue_size=1)
#: and the one the engine is making.
OUTPUT_BATCHES = 3

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str) -> int:
    """``"6G"``, ``"512M"``, ``"1.5GB"``, ``"2GiB"`` or plain bytes -> bytes (binary units).
    Raises ValueError with a message fit for the user."""
    m = _SIZE.match(str(text))
    if not m:
        raise ValueError(f"--max-memory {text!r}: give a size such as 6G, 512M or 1.5G")
    value = int(float(m[1]) * _UNITS[m[2].lower()])
    if value <= 0:
        raise ValueError(f"--max-memory {text!r}: must be more than 0")
    return value


def format_size(n: float) -> str:
    for unit, div in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= div:
            return f"{n / div:.1f} {unit}"
    return f"{int(n)} B"


def _read_int(path: str) -> int | None:
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def available_memory() -> int | None:
    """Bytes this process could still take: the system's MemAvailable, less where a cgroup (a
    container or a Slurm job) limits us to less. None when it cannot be told (not Linux, no psutil)."""
    avail = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                avail = int(line.split()[1]) * 1024
                break
    except OSError:
        try:
            import psutil

            avail = psutil.virtual_memory().available
        except Exception:  # noqa: BLE001 - no way to tell: no default budget
            return None
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),  # cgroup v2
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),  # v1
    ):
        limit, usage = _read_int(limit_file), _read_int(usage_file)
        if limit is not None and usage is not None and limit < (1 << 60):
            room = max(0, limit - usage)
            avail = room if avail is None else min(avail, room)
            break
    return avail


def current_rss() -> int:
    """This process's resident memory now, in bytes (0 if unknown)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        try:
            import psutil

            return psutil.Process().memory_info().rss
        except Exception:  # noqa: BLE001
            return 0


@dataclass(frozen=True)
class Budget:
    """Bytes a job's process may hold in all (``total``), and whether the user set it."""

    total: int | None  # None: unknown, nothing is limited
    explicit: bool

    def describe(self) -> str:
        if self.explicit:
            return f"--max-memory {format_size(self.total)}"
        return f"the default budget ({format_size(self.total)}: {DEFAULT_SHARE:.0%} of the memory available)"

    def split(self, workers: int) -> Budget:
        """Each of ``workers`` processes' share (each also loads its own model)."""
        if self.total is None or workers <= 1:
            return self
        return Budget(self.total // workers, self.explicit)


def resolve_budget(max_memory: int | str | Budget | None) -> Budget:
    """The budget for a job: ``max_memory`` (bytes or a size string), else the default share."""
    if isinstance(max_memory, Budget):
        return max_memory
    if max_memory is not None:
        total = parse_size(max_memory) if isinstance(max_memory, str) else int(max_memory)
        return Budget(total, True)
    avail = available_memory()
    if avail is None:
        return Budget(None, False)
    return Budget(current_rss() + int(avail * DEFAULT_SHARE), False)


@dataclass
class MemoryPlan:
    """What a job may hold: ``batch`` frames per engine call and ``reader_queue`` decoded frames."""

    batch: int
    reader_queue: int
    estimate: int  # bytes the frames and the engine's working memory take at that batch
    notes: list[str] = field(default_factory=list)


def reader_queue_for(batch: int) -> int:
    return max(8, 2 * batch)


def frames_bytes(upscaler, height: int, width: int, batch: int) -> int:
    """Bytes the pipeline holds for ``batch``-frame batches of ``height`` x ``width`` input: decoded
    frames (the reader's queue, the batch, its stacked copy), the upscaled batches alive at once and
    the engine's working memory (its ``working_bytes``, if it says)."""
    scale = int(upscaler.scale)
    frame_in = height * width * 3
    frame_out = frame_in * scale * scale
    working = getattr(upscaler, "working_bytes", None)
    engine = int(working(batch, height, width)) if working is not None else 0
    return frame_in * (reader_queue_for(batch) + 2 * batch) + frame_out * batch * OUTPUT_BATCHES + engine


def plan_memory(upscaler, width: int, height: int, batch: int, budget: Budget, *, src) -> MemoryPlan:
    """The largest batch (at most ``batch``) whose frames fit ``budget``; the engine's tile shrunk if one
    frame does not fit whole; :class:`MemoryLimitError` if nothing fits. ``src`` names the input."""
    batch = max(1, int(batch))
    if budget.total is None or not width or not height:
        return MemoryPlan(batch, reader_queue_for(batch), frames_bytes(upscaler, height or 1, width or 1, batch))
    in_use = current_rss()
    room = budget.total - in_use
    notes: list[str] = []
    chosen = None
    for b in range(batch, 0, -1):
        if frames_bytes(upscaler, height, width, b) <= room:
            chosen = b
            break
    if chosen is None and hasattr(upscaler, "limit_memory"):
        # Not even one frame with the engine's present tiles: let it use smaller ones (same pixels).
        engine_room = room - frames_bytes(upscaler, height, width, 1) + upscaler.working_bytes(1, height, width)
        before = upscaler.describe_tiling(height, width) if hasattr(upscaler, "describe_tiling") else None
        if upscaler.limit_memory(engine_room, height, width) and frames_bytes(upscaler, height, width, 1) <= room:
            chosen = 1
            after = upscaler.describe_tiling(height, width) if hasattr(upscaler, "describe_tiling") else None
            if before != after:
                notes.append(f"engine tiles reduced ({before} -> {after}) to fit {budget.describe()}")
    if chosen is None:
        scale = int(upscaler.scale)
        need = frames_bytes(upscaler, height, width, 1)
        raise MemoryLimitError(
            f"{src}: one {width}x{height} frame (upscaled to {width * scale}x{height * scale}) needs about "
            f"{format_size(need)} beyond the {format_size(in_use)} already in use, but {budget.describe()} leaves "
            f"{format_size(max(0, room))}; raise it with --max-memory (e.g. --max-memory "
            f"{max(1, -(-(in_use + need) * 5 // 4 // (1 << 30)))}G) or free some memory"
        )
    if chosen < batch:
        notes.append(f"batch reduced {batch} -> {chosen} to fit {budget.describe()}")
    return MemoryPlan(chosen, reader_queue_for(chosen), frames_bytes(upscaler, height, width, chosen), notes)
