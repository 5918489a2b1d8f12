"""Issue #15: memory bounded by a budget, late-starting inputs, and temporaries of killed runs.

Items 1 and 5 run real ``vsr`` processes (a memory peak and a ``kill -9`` are properties of a process).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_video_clips import NearestUpscaler, assert_clean, clip_maker, ffmpeg, processes_mentioning

from vsr.errors import MemoryLimitError
from vsr.video.memory import Budget, frames_bytes, parse_size, plan_memory
from vsr.video.output import AtomicOutput, remove_stale_temporaries
from vsr.video.jobs import upscale_video
from vsr.video.probe import frame_timing

REPO = Path(__file__).resolve().parents[1]
#: Runs the CLI and reports this process's own peak RSS (VmHWM, ffmpeg's not included) on stderr.
_CLI_WITH_PEAK = (
    "import atexit, sys; sys.path.insert(0, sys.argv.pop(1)); "
    "atexit.register(lambda: sys.stderr.write(next(l for l in open('/proc/self/status') "
    "if l.startswith('VmHWM')))); "
    "from vsr.cli import main; sys.argv[0] = 'vsr'; sys.exit(main())"
)


@pytest.fixture(scope="session")
def clip(tmp_path_factory):
    return clip_maker(tmp_path_factory)


def vsr_process(*args, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", _CLI_WITH_PEAK, str(REPO), *map(str, args)],
        capture_output=True, text=True, timeout=timeout, check=False,
    )


def peak_bytes(stderr: str) -> int:
    line = next(line for line in stderr.splitlines() if line.startswith("VmHWM"))
    return int(line.split()[1]) * 1024


# -- 1. memory ------------------------------------------------------------------------------------
def test_parse_size():
    assert parse_size("6G") == 6 << 30
    assert parse_size("512M") == 512 << 20
    assert parse_size("1.5GB") == 3 << 29
    assert parse_size("2GiB") == 2 << 30
    assert parse_size("1000") == 1000
    with pytest.raises(ValueError, match="--max-memory"):
        parse_size("lots")


class _Costly(NearestUpscaler):
    """Says it needs ``work`` bytes per frame besides its frames."""

    def __init__(self, work):
        super().__init__()
        self.work = work

    def working_bytes(self, frames, height, width):
        return frames * self.work


def test_plan_lowers_the_batch_to_fit_and_refuses_what_cannot():
    up = _Costly(100 << 20)
    one, four = (frames_bytes(up, 1080, 1920, b) for b in (1, 4))
    from vsr.video.memory import current_rss

    base = current_rss()
    plan = plan_memory(up, 1920, 1080, 4, Budget(base + (one + four) // 2, True), src="in.mp4")
    assert 1 <= plan.batch < 4 and plan.estimate <= (one + four) // 2
    assert plan.notes == [f"batch reduced 4 -> {plan.batch} to fit --max-memory {plan.notes[0].split()[-2]} GB"]
    assert plan_memory(up, 1920, 1080, 4, Budget(base + 4 * four, True), src="in.mp4").batch == 4
    with pytest.raises(MemoryLimitError, match="one 1920x1080 frame .* --max-memory"):
        plan_memory(up, 1920, 1080, 4, Budget(base + one // 2, True), src="in.mp4")


def test_one_frame_over_max_memory_is_refused_in_one_line(clip, tmp_path):
    out = tmp_path / "out.mkv"
    proc = vsr_process("upscale", clip("av.mp4"), out, "--model", "bicubic", "--max-memory", "1M", "-q")
    assert proc.returncode == MemoryLimitError.exit_code, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if not line.startswith("VmHWM")]
    assert len(errors) == 1 and errors[0].startswith("vsr: error: "), proc.stderr
    assert "--max-memory" in errors[0] and "av.mp4" in errors[0]
    assert_clean(tmp_path)


def test_batch_shrinks_to_fit_max_memory_and_the_peak_stays_under_it(tmp_path):
    """720p x4 = 5120x2880 (44 MB a frame): batch 4 needs about 1 GB, 900M allows 1-3 frames."""
    src = tmp_path / "hd.mp4"
    ffmpeg("-f lavfi -i testsrc2=s=1280x720:r=10 -frames:v 2 -c:v libx264 -preset ultrafast", src)
    budget = 900 << 20
    proc = vsr_process(
        "upscale", src, tmp_path / "out.mkv", "--model", "bicubic", "--codec", "ffv1", "--max-memory", "900M"
    )
    assert proc.returncode == 0, proc.stderr
    assert "batch reduced 4 -> " in proc.stdout and "--max-memory 900.0 MB" in proc.stdout, proc.stdout
    assert peak_bytes(proc.stderr) <= budget
    assert frame_timing(tmp_path / "out.mkv").frames == 2


# -- 3. inputs whose timestamps start late ------------------------------------------------------
@pytest.mark.parametrize("ext", ["mp4", "mkv"])
def test_late_start_is_not_mistaken_for_truncated(clip, tmp_path, ext):
    src = tmp_path / f"off5.{ext}"
    ffmpeg("-i", clip("av.mp4"), "-c copy -output_ts_offset 5", src)
    dst = tmp_path / "out.mp4"
    summary = upscale_video(src, dst, NearestUpscaler(), progress=False)
    assert summary.frames == frame_timing(src).frames == 20
    assert frame_timing(dst).seconds[0] == pytest.approx(frame_timing(src).seconds[0], abs=0.002)


# -- 5. temporaries of a run killed outright --------------------------------------------------------
_SLOW_RUN = """
import sys, time
import numpy as np
sys.path.insert(0, {repo!r})
from vsr.video.jobs import upscale_video

class Slow:
    scale = 4
    def upscale(self, frames):
        print("frames", flush=True)
        time.sleep(0.2)
        return np.repeat(np.repeat(frames, 4, axis=1), 4, axis=2)

upscale_video(sys.argv[1], sys.argv[2], Slow(), progress=False, batch=1)
"""


def test_rerun_removes_the_temporary_a_killed_run_left(clip, tmp_path):
    dst = tmp_path / "out.mp4"
    proc = subprocess.Popen(
        [sys.executable, "-c", _SLOW_RUN.format(repo=str(REPO)), str(clip("long.mp4")), str(dst)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    for _ in range(3):  # a few frames in: the encoder is writing the temporary file
        assert proc.stdout.readline() == "frames\n", proc.stderr.read() if proc.poll() is not None else ""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 30
    while processes_mentioning(str(tmp_path)) and time.monotonic() < deadline:
        time.sleep(0.1)  # the orphaned encoder ends at the end of its input
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith(".out.tmp.") and left[0].endswith(".mp4"), left
    summary = upscale_video(clip("long.mp4"), dst, NearestUpscaler(), progress=False, preset="ultrafast")
    assert any(n.startswith("removed 1 temporary file") and left[0] in n for n in summary.notes), summary.notes
    assert_clean(tmp_path, {"out.mp4"})


def test_a_live_runs_temporary_is_not_removed(tmp_path):
    dst = tmp_path / "out.mp4"
    with AtomicOutput(dst) as live:
        assert remove_stale_temporaries(dst) == []
        assert live.tmp.exists()
    (tmp_path / ".out.tmp.abcd1234.mp4").write_bytes(b"x" * 10)  # nobody holds it
    (tmp_path / ".other.tmp.abcd1234.mp4").write_bytes(b"x")  # another output's: not ours to judge
    assert [(p.name, n) for p, n in remove_stale_temporaries(dst)] == [(".out.tmp.abcd1234.mp4", 10)]
    assert [p.name for p in tmp_path.iterdir()] == [".other.tmp.abcd1234.mp4"]
