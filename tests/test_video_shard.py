"""Spreading one video over worker processes (--workers) and machines (--shard K/N, then --merge).

Two CPU workers and two shards on a tiny clip must give exactly the single-worker result. Claims on
segments are exclusive; stale ones (a dead local process, a machine silent for too long) are taken over.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import numpy as np
import pytest
from click.testing import CliRunner
from test_video_clips import NearestUpscaler, assert_clean
from test_video_resume import SEG, records, segment_clip_maker, video_md5

from vsr.errors import InputError, ModelError, OutputError
from vsr.models.bicubic import BicubicUpscaler
from vsr.video import workdir
from vsr.video.command import upscale_command
from vsr.video.jobs import upscale_path
from vsr.video.probe import frame_timing
from vsr.video.reader import read_frames
from vsr.video.segmented import Shard, parse_shard
from vsr.video.workdir import WorkFolder, work_folder_for


@pytest.fixture(scope="session")
def clip(tmp_path_factory):
    return segment_clip_maker(tmp_path_factory)


class SlowNearest(NearestUpscaler):
    """Nearest x4 at 10 ms a frame, so two workers both get segments; picklable for worker processes."""

    def upscale(self, frames):
        time.sleep(0.01 * len(frames))
        return super().upscale(frames)


class SlowerNearest(NearestUpscaler):
    """100 ms a frame: two workers need about 6 s for the clip, time to interrupt them half way
    (at 40 ms the remaining segments sometimes finished before the interrupt reached them)."""

    def upscale(self, frames):
        time.sleep(0.1 * len(frames))
        return super().upscale(frames)


class BrokenOnThirdCall(NearestUpscaler):
    def upscale(self, frames):
        if self.calls == 2:
            raise ModelError("the model broke")
        return super().upscale(frames)


def run_path(src, dst, factory=SlowNearest, **options):
    options.setdefault("progress", False)
    options.setdefault("preset", "ultrafast")
    options.setdefault("segment_seconds", SEG)
    return upscale_path(src, dst, factory, identity={"model": "nearest"}, **options)


def cli(*args):
    return CliRunner().invoke(upscale_command, [str(a) for a in args], catch_exceptions=False)


BICUBIC = ("--model", "bicubic", "--preset", "ultrafast", "--segment-seconds", SEG)


def test_two_workers_give_the_single_worker_result(clip, tmp_path):
    src = clip("gop30.mp4")
    one, two = tmp_path / "one.mp4", tmp_path / "two.mp4"
    run_path(src, one, workers=1)
    # A shard 1/1 makes every segment and stops before joining, so the records show who made what.
    [partial] = run_path(src, two, workers=2, shard=Shard(1, 1))
    makers = {r["pid"] for r in records(work_folder_for(two))}
    assert len(records(work_folder_for(two))) == 8 and len(makers) == 2 and os.getpid() not in makers
    assert "--merge" in str(partial)
    [merged] = run_path(src, two, merge=True)
    assert merged.summary.frames == 120
    assert video_md5(two) == video_md5(one)
    assert frame_timing(two).pts == frame_timing(one).pts
    np.testing.assert_array_equal(read_frames(two), read_frames(one))
    assert_clean(tmp_path, {"one.mp4", "two.mp4"})


def test_two_shards_then_merge_give_the_single_worker_result(clip, tmp_path):
    src = clip("gop30.mp4")
    single, sharded = tmp_path / "single.mp4", tmp_path / "sharded.mp4"
    result = cli(src, single, *BICUBIC, "--workers", 1, "--quiet")
    assert result.exit_code == 0, result.stderr

    result = cli(src, sharded, *BICUBIC, "--shard", "1/2")
    assert result.exit_code == 0, result.stderr
    assert "shard 1/2: its 4 segment(s) are done, 4 of 8 in all" in result.stdout
    assert {r["index"] for r in records(work_folder_for(sharded))} == {0, 2, 4, 6}
    assert not sharded.exists()

    early = cli(src, sharded, *BICUBIC, "--merge")
    assert early.exit_code == OutputError.exit_code
    assert "4 of 8 segments are not done yet (first: 1)" in early.stderr and early.stderr.count("\n") == 1

    assert cli(src, sharded, *BICUBIC, "--shard", "2/2", "--quiet").exit_code == 0
    merged = cli(src, sharded, *BICUBIC, "--merge")
    assert merged.exit_code == 0, merged.stderr
    assert "120 frames 64x48 -> 256x192" in merged.stdout and "joined 8 segments" in merged.stdout
    assert video_md5(sharded) == video_md5(single)
    np.testing.assert_array_equal(read_frames(sharded), read_frames(single))
    assert_clean(tmp_path, {"single.mp4", "sharded.mp4"})


def test_cli_workers_run_the_named_model_in_worker_processes(clip, tmp_path):
    """The CLI's model factory is picklable: two workers each load bicubic themselves."""
    src = clip("gop30.mp4")
    flags = ("--model", "bicubic", "--segment-seconds", SEG, "--workers", 2, "--codec", "ffv1")
    result = cli(src, tmp_path / "out.mkv", *flags)
    assert result.exit_code == 0, result.stderr
    expected = BicubicUpscaler().upscale(read_frames(src))
    np.testing.assert_array_equal(read_frames(tmp_path / "out.mkv"), expected)


@pytest.mark.parametrize("bad", ["3/2", "0/2", "1/0", "2", "a/b", "1/2/3"])
def test_shard_must_be_k_of_n(clip, tmp_path, bad):
    result = cli(clip("gop30.mp4"), tmp_path / "out.mp4", "--model", "bicubic", "--shard", bad)
    assert result.exit_code == 2
    assert result.stderr == f"vsr: error: --shard takes K/N with 1 <= K <= N (e.g. 2/4), not {bad!r}\n"
    assert parse_shard("2/4") == Shard(2, 4)


@pytest.mark.parametrize(
    "flags, words",
    [
        (["--shard", "1/2", "--restart"], "would discard the other shards' work"),
        (["--shard", "1/2", "--merge"], "--merge joins finished segments"),
        (["--workers", "2", "--segment-seconds", "0"], "--segment-seconds 0 means a single pass"),
        (["--merge"], "no work folder to merge"),
    ],
)
def test_flags_that_do_not_go_together(clip, tmp_path, flags, words):
    result = cli(clip("gop30.mp4"), tmp_path / "out.mp4", "--model", "bicubic", *flags)
    assert result.exit_code == OutputError.exit_code
    assert words in result.stderr and result.stderr.count("\n") == 1
    assert_clean(tmp_path)


def test_shard_and_merge_take_one_video(clip, tmp_path):
    result = cli(tmp_path, tmp_path / "out", "--model", "bicubic", "--shard", "1/2")
    assert result.exit_code == InputError.exit_code == 8 and "take one video file" in result.stderr


def test_a_failing_worker_stops_the_others_and_keeps_finished_segments(clip, tmp_path):
    dst = tmp_path / "out.mp4"
    with pytest.raises(ModelError, match="the model broke"):
        run_path(clip("gop30.mp4"), dst, BrokenOnThirdCall, workers=2)
    work = work_folder_for(dst)
    assert not list(work.glob("*.lock")) and not list(work.glob("*.tmp.*"))  # workers cleaned up
    assert_clean(tmp_path, {"out.mp4.vsr-work"} if work.exists() else set())


# -- claims ---------------------------------------------------------------------------------------
@pytest.fixture
def folder(tmp_path):
    return WorkFolder.open(tmp_path / "x.mp4.vsr-work", {"source": {}, "segments": 4}, ".mp4")


def lock(folder, index, **info):
    path = folder.path / f"seg-{index:05d}.lock"
    path.write_text(json.dumps({"token": "t", **info}))
    return path


def test_claims_are_exclusive(folder):
    first = folder.claim(0)
    assert first is not None and folder.claim(0) is None
    assert folder.holder(0)["pid"] == os.getpid()
    second = folder.claim_next(range(4))
    assert second.index == 1
    first.release()
    assert folder.holder(0) is None
    again = folder.claim(0)
    assert again is not None
    for claim in (second, again):
        claim.release()
    assert not list(folder.path.glob("*.lock"))


def test_claims_of_dead_local_processes_are_taken_over(folder):
    dead = subprocess.Popen(["true"])
    dead.wait()
    lock(folder, 0, host=workdir.HOST, pid=dead.pid)
    (folder.path / "seg-00000.tmp.t.mp4").write_bytes(b"half")
    live = subprocess.Popen(["sleep", "30"])
    try:
        lock(folder, 1, host=workdir.HOST, pid=live.pid)
        claim = folder.claim_next(range(2))
        assert claim.index == 0 and not (folder.path / "seg-00000.tmp.t.mp4").exists()
        claim.release()
        assert folder.claim(1) is None  # alive: not ours to take
    finally:
        live.kill()
        live.wait()


def test_claims_of_other_machines_are_taken_over_only_when_silent_too_long(folder):
    path = lock(folder, 2, host="elsewhere", pid=1)
    assert folder.claim(2) is None and folder.holder(2)["host"] == "elsewhere"
    old = time.time() - workdir.STALE_SECONDS - 1
    os.utime(path, (old, old))
    assert folder.holder(2) is None
    claim = folder.claim(2)
    assert claim.index == 2
    claim.release()


def test_devices_are_shared_round_robin(monkeypatch):
    from vsr.video.segmented import _devices

    class TwoGpus:
        def gpus(self):
            return 2

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert _devices(TwoGpus(), 3) == ["0", "1", "0"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    assert _devices(TwoGpus(), 2) == ["3", "5"]
    assert _devices(NearestUpscaler, 2) == [None, None]


_SCRIPT = """
import json, sys
sys.path[:0] = [{repo!r}, {tests!r}]
from test_video_shard import SlowerNearest
from vsr.errors import VsrError
from vsr.video.jobs import upscale_path
try:
    upscale_path(sys.argv[1], sys.argv[2], SlowerNearest, workers=2, segment_seconds={seg}, preset="ultrafast",
                 progress=False, identity={{"model": "nearest"}})
except VsrError as e:
    print(json.dumps({{"error": type(e).__name__, "message": str(e)}}), flush=True)
    sys.exit(e.exit_code)
"""


@pytest.mark.parametrize("how", ["ctrl-c", "parent killed"])
def test_interrupted_workers_clean_up_and_the_run_resumes(clip, tmp_path, how):
    """Ctrl-C reaches every worker; a parent killed with SIGKILL takes its workers with it (they get
    SIGTERM). Either way no process, claim or temporary file is left, and the next run finishes the job."""
    import signal
    import sys

    from test_video_resume import REPO, wait_until_gone

    src, dst = clip("gop30.mp4"), tmp_path / "out.mp4"
    reference = tmp_path / "reference.mp4"
    run_path(src, reference, workers=1)
    code = _SCRIPT.format(repo=str(REPO), tests=str(REPO / "tests"), seg=SEG)
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(src), str(dst)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    work = work_folder_for(dst)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if len(records(work)) >= 2 and list(work.glob("*.tmp.*")):
            break
        time.sleep(0.01)
    if how == "ctrl-c":
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal sends to the whole foreground group
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        result = json.loads(out.strip().splitlines()[-1])
        assert result["error"] == "Cancelled" and "run the same command to resume" in result["message"]
    else:
        proc.kill()
        proc.communicate(timeout=60)
    wait_until_gone(str(tmp_path), timeout=30)
    wait_until_gone("import worker_main", timeout=30)  # the worker processes
    done = len(records(work))
    assert 2 <= done < 8 and not dst.exists()
    assert not list(work.glob("*.lock")) and not list(work.glob("*.tmp.*"))

    counting = []
    run_path(src, dst, lambda: SlowNearest(on_call=counting.append), workers=1)
    assert len(counting) < 32  # 8 segments of 4 calls: the finished ones were not made again
    assert video_md5(dst) == video_md5(reference)
    assert_clean(tmp_path, {"out.mp4", "reference.mp4"})
