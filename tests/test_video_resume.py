"""Long videos in segments: the same output as one pass, and a crash resumes where it stopped.

Clips are tiny (64x48, 120 frames, 8 segments of 0.5 s). The acceptance check: a run killed with
SIGKILL half way and run again gives the bitstream, frames, timing and streams of an uninterrupted
run; frames at segment joins are neither lost nor repeated (lossless ffv1 equals a single pass).
The other ``test_video_shard`` tests import the helpers from here.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from test_video_clips import NearestUpscaler, assert_clean, clip_maker, ffmpeg, fixture_ffmpeg, processes_mentioning

from vsr.errors import Cancelled, InputError, ModelError, OutputError
from vsr.video.jobs import upscale_video
from vsr.video.pipeline import plan_video
from vsr.video.probe import frame_timing, probe
from vsr.video.reader import read_frames
from vsr.video.segmented import Shard, plan_segmented, run_segmented
from vsr.video.workdir import HOST, work_folder_for

REPO = Path(__file__).resolve().parents[1]
SEG = 0.5  # seconds per segment: 120 frames at 29.97 fps make 8 segments


def segment_clip_maker(tmp_path_factory):
    """``clip(name)`` for the clips of test_video_clips plus these (made once per session)."""
    make = clip_maker(tmp_path_factory)
    folder = tmp_path_factory.mktemp("segment_clips")

    def get(name):
        out = folder / name
        if out.exists():
            return out
        if name == "gop30.mp4":  # 120 frames, keyframe every 30 (seeks land mid-file), B-frames, audio
            ffmpeg(
                "-f lavfi -i testsrc2=s=64x48:r=30000/1001 -f lavfi -i sine=f=440:d=4.1 -map 0:v -map 1:a -c:a aac",
                "-frames:v 120 -c:v libx264 -preset ultrafast -tune zerolatency -bf 2 -g 30 -pix_fmt yuv420p",
                out,
            )
        elif name == "gop30.ts":  # MPEG-TS: its demuxer seeks inexactly (lands after the target)
            ffmpeg("-i", get("gop30.mp4"), "-map 0 -c copy -bsf:v h264_mp4toannexb", out)
        else:
            return make(name)
        return out

    return get


@pytest.fixture(scope="session")
def clip(tmp_path_factory):
    return segment_clip_maker(tmp_path_factory)


def video_md5(path) -> str:
    """md5 of the video packets (stream copy): equal means the same bitstream."""
    return _md5(path, "0:v")


def audio_md5(path) -> str:
    return _md5(path, "0:a")


def _md5(path, stream) -> str:
    out = subprocess.run(
        [fixture_ffmpeg(), "-v", "error", "-i", str(path), "-map", stream, "-c", "copy", "-f", "md5", "-"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def stream_layout(path) -> list[tuple]:
    info = probe(path)
    return [(s.kind, s.codec, s.width, s.height, s.language) for s in info.streams]


def records(folder: Path) -> list[dict]:
    """The finished-segment records in a work folder."""
    return [json.loads(p.read_text()) for p in sorted(folder.glob("seg-*.json")) if p.stat().st_size]


def run(src, dst, upscaler=None, **options):
    options.setdefault("progress", False)
    options.setdefault("preset", None if options.get("codec") == "ffv1" else "ultrafast")
    return upscale_video(src, dst, upscaler or NearestUpscaler(), **options)


class Counting(NearestUpscaler):
    """Counts frames; on_call(n) can raise to simulate a crash at the n-th call."""

    def __init__(self, on_call=None):
        super().__init__(on_call=on_call)
        self.frames = 0

    def upscale(self, frames):
        out = super().upscale(frames)
        self.frames += len(frames)
        return out


def shard_all(src, dst, upscaler=None, **options):
    """Make every segment but do not join them (a shard 1/1): a work folder as a crash before the merge leaves it."""
    codec = options.pop("codec", None)
    job = plan_video(src, dst, codec=codec, preset=None if codec == "ffv1" else "ultrafast")
    sjob = plan_segmented(job, identity={"model": "nearest"}, segment_seconds=SEG, shard=Shard(1, 1), **options)
    up = upscaler or NearestUpscaler()
    return run_segmented(sjob, lambda: up, progress=False)


# -- same result as one pass ----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["gop30.mp4", "gop30.ts"])
def test_segments_hold_exactly_the_single_pass_frames(clip, tmp_path, name):
    """Lossless: frame for frame what a single pass writes; no frame lost or repeated at the 7 joins."""
    src = clip(name)
    one, seg = tmp_path / "one.mkv", tmp_path / "seg.mkv"
    run(src, one, codec="ffv1", segment_seconds=0)
    summary = run(src, seg, codec="ffv1", segment_seconds=SEG)
    assert summary.frames == 120
    np.testing.assert_array_equal(read_frames(seg), read_frames(one))
    a, b = frame_timing(one), frame_timing(seg)
    assert b.pts == a.pts and b.time_base == a.time_base
    assert_clean(tmp_path, {"one.mkv", "seg.mkv", "plan"})  # work folder removed


def test_mp4_timing_audio_and_streams_as_a_single_pass(clip, tmp_path):
    src = clip("gop30.mp4")
    one, seg = tmp_path / "one.mp4", tmp_path / "seg.mp4"
    run(src, one, segment_seconds=0)
    summary = run(src, seg, segment_seconds=SEG)
    assert summary.notes == []
    a, b, c = frame_timing(src), frame_timing(one), frame_timing(seg)
    assert c.pts == b.pts == a.pts and c.time_base == a.time_base
    assert stream_layout(seg) == stream_layout(one)
    assert audio_md5(seg) == audio_md5(src)
    assert probe(seg).duration == pytest.approx(probe(one).duration, abs=0.001)


def test_variable_frame_rate_with_empty_segments_keeps_every_timestamp(clip, tmp_path):
    """Segments of 50 ms over a VFR clip with 67 ms gaps: some hold no frame at all."""
    src, dst = clip("vfr.mp4"), tmp_path / "out.mp4"
    run(src, dst, segment_seconds=0.05)
    a, b = frame_timing(src), frame_timing(dst)
    assert b.pts == a.pts and b.time_base == a.time_base
    assert not b.is_constant_rate


def test_tracks_subtitles_chapters_and_metadata_as_a_single_pass(clip, tmp_path):
    src = clip("rich.mkv")
    one, seg = tmp_path / "one.mkv", tmp_path / "seg.mkv"
    run(src, one, segment_seconds=0)
    run(src, seg, segment_seconds=0.2)
    a, b = probe(one), probe(seg)
    assert stream_layout(seg) == stream_layout(one)
    assert [c.title for c in b.chapters] == [c.title for c in a.chapters] == ["One", "Two"]
    assert (b.tag("title"), b.tag("artist")) == ("Test clip", "vsr tests")
    assert frame_timing(seg).pts == frame_timing(one).pts


def test_short_videos_run_in_one_pass_unless_asked(clip, tmp_path):
    job = plan_video(clip("gop30.mp4"), tmp_path / "out.mp4")
    assert plan_segmented(job, identity={}) is None  # 4 s: no longer than the default segment (30 s)
    assert plan_segmented(job, identity={}, segment_seconds=0) is None
    assert not work_folder_for(job.dst).exists()
    assert plan_segmented(job, identity={}, segment_seconds=1).count == 4  # the last one is open-ended
    # From now on the work folder decides: the same call without a length resumes it in segments.
    assert plan_segmented(job, identity={}).count == 4


@pytest.fixture(scope="module")
def tail_clip(tmp_path_factory):
    """2.04 s at 25 fps (51 frames) with AAC audio in Matroska: in 1 s segments the tail is one frame."""
    out = tmp_path_factory.mktemp("tail") / "tail.mkv"
    ffmpeg(
        "-f lavfi -i testsrc2=s=64x48:r=25:d=2.04 -f lavfi -i sine=d=2.04 -map 0:v -map 1:a -c:a aac",
        "-c:v libx264 -preset ultrafast -pix_fmt yuv420p",
        out,
    )
    return out


def _video_stream(path) -> dict:
    """Frame count and average frame rate as a player reads them (MP4: from the sample table)."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return {"frames": stream.frames, "rate": str(stream.average_rate)}


def test_a_short_tail_joins_the_last_segment_and_mp4_keeps_its_frame_rate(tail_clip, tmp_path):
    """A 1-frame last segment began without x264's 2-frame decode delay: the MP4 joined from it read
    back at 24.06 fps (1275/53) instead of 25, its track 0.08 s long."""
    (tmp_path / "plan").mkdir()
    job = plan_video(tail_clip, tmp_path / "plan" / "seg.mp4")
    assert plan_segmented(job, identity={}, segment_seconds=1).count == 2  # 1 s + 1.04 s, no 0.04 s segment
    one, seg = tmp_path / "one.mp4", tmp_path / "seg.mp4"
    run(tail_clip, one, segment_seconds=0)
    run(tail_clip, seg, segment_seconds=1)
    assert _video_stream(seg) == _video_stream(one) == {"frames": 51, "rate": "25"}
    assert frame_timing(seg).pts == frame_timing(one).pts
    assert_clean(tmp_path, {"one.mp4", "seg.mp4", "plan"})


def test_a_one_frame_matroska_segment_joins(tail_clip, tmp_path, monkeypatch):
    """A Matroska segment of one frame reads back with no start time; beside segments that have one,
    the join's listing got a negative duration and ffmpeg refused it ("Invalid data found")."""
    from vsr.video import segmented

    monkeypatch.setattr(segmented, "MIN_TAIL_SECONDS", 0)  # keep the one-frame tail as its own segment
    (tmp_path / "plan").mkdir()
    job = plan_video(tail_clip, tmp_path / "plan" / "seg.mkv")
    assert plan_segmented(job, identity={}, segment_seconds=1).count == 3
    one, seg = tmp_path / "one.mkv", tmp_path / "seg.mkv"
    run(tail_clip, one, segment_seconds=0)
    run(tail_clip, seg, segment_seconds=1)
    assert frame_timing(seg).pts == frame_timing(one).pts and len(frame_timing(seg).pts) == 51
    assert audio_md5(seg) == audio_md5(one)
    assert_clean(tmp_path, {"one.mkv", "seg.mkv", "plan"})


# -- crashes ----------------------------------------------------------------------------------------
_SCRIPT = """
import sys, time
sys.path.insert(0, {repo!r})
import numpy as np
from vsr.video.jobs import upscale_video

class Slow:
    scale = 4
    def upscale(self, frames):
        time.sleep(0.03 * len(frames))
        return np.repeat(np.repeat(frames, 4, axis=1), 4, axis=2)

summary = upscale_video(sys.argv[1], sys.argv[2], Slow(), segment_seconds={seg}, preset="ultrafast",
                        progress=False, identity={{"model": "slow"}})
print(summary, flush=True)
"""


def script(src, dst) -> subprocess.Popen:
    code = _SCRIPT.format(repo=str(REPO), seg=SEG)
    return subprocess.Popen(
        [sys.executable, "-c", code, str(src), str(dst)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def wait_until_gone(text: str, timeout: float = 15) -> None:
    """Wait until no process mentions ``text`` (e.g. a test's folder: its ffmpegs, which live in their own
    sessions, notice EOF and exit once the process feeding them is killed)."""
    deadline = time.monotonic() + timeout
    while processes_mentioning(text) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_mentioning(text) == []


def test_killed_half_way_resumes_to_the_uninterrupted_result(clip, tmp_path):
    src = clip("gop30.mp4")
    whole, resumed = tmp_path / "whole.mp4", tmp_path / "resumed.mp4"
    proc = script(src, whole)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err

    proc = script(src, resumed)
    work = work_folder_for(resumed)
    deadline = time.monotonic() + 120

    def half_way() -> bool:  # 4 of 8 segments done and the 5th being written
        return len(records(work)) >= 4 and bool(list(work.glob("seg-*.tmp.*")))

    while not half_way() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)  # as a power cut would: no clean-up at all
    proc.wait()
    wait_until_gone(str(tmp_path))
    assert 4 <= len(records(work)) < 8 and not resumed.exists()
    assert list(work.glob("seg-*.lock")), "the segment in progress keeps the dead process's claim"
    assert list(work.glob("seg-*.tmp.*")), "and its half-written file"

    proc = script(src, resumed)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "resumed:" in out and "120 frames" in out

    assert video_md5(resumed) == video_md5(whole)  # same segments, same encoder settings: same bitstream
    assert audio_md5(resumed) == audio_md5(whole)
    assert stream_layout(resumed) == stream_layout(whole)
    a, b = frame_timing(whole), frame_timing(resumed)
    assert b.frames == a.frames == 120 and b.pts == a.pts
    np.testing.assert_array_equal(read_frames(resumed), read_frames(whole))
    assert_clean(tmp_path, {"whole.mp4", "resumed.mp4"})


def test_leftovers_of_a_crash_are_redone_never_trusted(clip, tmp_path):
    src = clip("gop30.mp4")
    reference = tmp_path / "reference.mkv"
    run(src, reference, codec="ffv1", segment_seconds=SEG)
    dst = tmp_path / "out.mkv"
    shard_all(src, dst, codec="ffv1")
    work = work_folder_for(dst)
    frames = {r["index"]: r["frames"] for r in records(work)}

    # 2: media cut short after its record was written (a disk that lied about fsync).
    media = work / "seg-00002.mkv"
    media.write_bytes(media.read_bytes()[:100])
    # 3: media renamed into place, record never written (killed between the two).
    (work / "seg-00003.json").unlink()
    # 4: record left empty (power cut while writing it), a claim by a dead process and its temp file.
    (work / "seg-00004.json").write_text("")
    dead = subprocess.Popen(["true"])
    dead.wait()
    (work / "seg-00004.lock").write_text(json.dumps({"host": HOST, "pid": dead.pid, "token": "x"}))
    (work / "seg-00004.tmp.x.mkv").write_bytes(b"half an encode")

    counting = Counting()
    summary = run(src, dst, counting, codec="ffv1", segment_seconds=SEG, identity={"model": "nearest"})
    assert counting.frames == frames[2] + frames[3] + frames[4]  # only those three were made again
    assert "resumed:" in summary.notes[-1]
    np.testing.assert_array_equal(read_frames(dst), read_frames(reference))
    assert_clean(tmp_path, {"reference.mkv", "out.mkv"})


def test_another_job_in_the_folder_is_refused_until_restart(clip, tmp_path):
    import shutil

    src = tmp_path / "in.mp4"
    shutil.copy(clip("gop30.mp4"), src)
    dst = tmp_path / "out.mp4"
    shard_all(src, dst)
    work = work_folder_for(dst)

    def refused(*words, **options):
        with pytest.raises(OutputError) as caught:
            run(src, dst, segment_seconds=SEG, identity={"model": "nearest"} | options.pop("identity", {}), **options)
        message = str(caught.value)
        assert "\n" not in message and "--restart" in message and str(work) in message
        for word in words:
            assert word in message, message

    refused("encoding: crf 18 -> 30", crf=30)
    refused("model: weights None -> abc", identity={"weights": "abc"})
    with pytest.raises(OutputError, match="segment length 0.5 -> 1"):
        run(src, dst, segment_seconds=1, identity={"model": "nearest"})
    os.utime(src, ns=(0, 0))
    refused("the source file changed")
    assert len(records(work)) == 8  # refusals touch nothing

    summary = run(src, dst, segment_seconds=SEG, identity={"model": "nearest"}, crf=30, restart=True)
    assert not any("resumed" in n for n in summary.notes)
    assert_clean(tmp_path, {"in.mp4", "out.mp4"})


def test_refused_when_the_work_folder_is_not_ours(clip, tmp_path):
    dst = tmp_path / "out.mp4"
    (tmp_path / "out.mp4.vsr-work").mkdir()
    (tmp_path / "out.mp4.vsr-work" / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="not a vsr work folder"):
        run(clip("gop30.mp4"), dst, segment_seconds=SEG, restart=True)
    assert (tmp_path / "out.mp4.vsr-work" / "notes.txt").exists()


def test_ctrl_c_keeps_finished_segments_and_says_how_to_resume(clip, tmp_path):
    def interrupt(call):
        if call == 20:  # batches of 4: the 20th call is in segment 5
            raise KeyboardInterrupt

    dst = tmp_path / "out.mp4"
    with pytest.raises(Cancelled) as caught:
        run(clip("gop30.mp4"), dst, NearestUpscaler(on_call=interrupt), segment_seconds=SEG)
    message = str(caught.value)
    assert "\n" not in message and "run the same command to resume" in message
    work = work_folder_for(dst)
    assert len(records(work)) == 4
    assert sorted(p.name for p in work.iterdir() if not p.name.startswith("seg-0000")) == ["manifest.json"]
    assert not list(work.glob("*.lock")) and not list(work.glob("*.tmp.*"))
    assert_clean(tmp_path, {"out.mp4.vsr-work"})


def test_losing_a_race_with_another_run_of_the_same_output_ends_with_one_line(clip, tmp_path):
    """Two runs of one segmented job: the winner merges and removes the work folder while the loser
    is still claiming segments; the loser must end with a reason, not a FileNotFoundError."""
    import shutil

    dst = tmp_path / "out.mp4"

    def winner_finishes(call):
        if call == 6:  # in segment 2: the other run has just merged everything
            dst.write_bytes(b"the other run's output")
            # as WorkFolder.remove does, and until it is gone: this run's own encoder may be creating
            # its segment file in it meanwhile (a plain rmtree then failed "Directory not empty")
            while work_folder_for(dst).exists():
                shutil.rmtree(work_folder_for(dst), ignore_errors=True)

    with pytest.raises(OutputError) as caught:
        run(clip("gop30.mp4"), dst, NearestUpscaler(on_call=winner_finishes), segment_seconds=SEG)
    message = str(caught.value)
    assert "\n" not in message and "another vsr run of this output finished" in message
    assert "it is complete" in message and dst.read_bytes() == b"the other run's output"


def test_a_run_reaching_the_join_while_another_joins_waits_and_says_the_job_is_done(clip, tmp_path):
    """Two runs that finish the last segments together: only one joins. The other waits for the work
    folder's merge lock and, finding the folder removed, says the other run finished (before: both
    joined, and the second failed "appeared while we worked" or read a folder being removed)."""
    import fcntl
    import shutil
    import threading

    dst = tmp_path / "out.mp4"
    work = work_folder_for(dst)
    held, released = threading.Event(), []

    def other_run_joins():
        fd = os.open(work / "merge.lock", os.O_CREAT | os.O_RDWR, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        held.set()
        count = json.loads((work / "manifest.json").read_text())["segments"]
        deadline = time.monotonic() + 120
        while len(records(work)) < count and time.monotonic() < deadline:  # this run made them all
            time.sleep(0.05)
        time.sleep(0.5)  # this run is now at the lock
        dst.write_bytes(b"the other run's output")
        shutil.rmtree(work, ignore_errors=True)
        released.append(len(records(work)) == 0 and not work.exists())
        os.close(fd)

    def on_call(call):
        if call == 1:
            threading.Thread(target=other_run_joins, daemon=True).start()
            assert held.wait(10)

    with pytest.raises(OutputError) as caught:
        run(clip("gop30.mp4"), dst, NearestUpscaler(on_call=on_call), segment_seconds=SEG)
    message = str(caught.value)
    assert released == [True], "the run must not join before the other run's lock is released"
    assert "\n" not in message and "another vsr run of this output finished" in message, message
    assert "it is complete" in message and dst.read_bytes() == b"the other run's output"
    assert not work.exists(), "no folder left behind by the lock"


def test_two_real_runs_of_the_same_output_share_the_work_or_end_with_one_line(clip, tmp_path):
    """Two `vsr upscale` processes started together on one segmented output: they share the segments
    (claims), one joins them, and the other either finishes too or ends with a one-line reason:
    never a traceback (before: FileNotFoundError of a seg-*.lock)."""
    src, dst = clip("gop30.mp4"), tmp_path / "out.mp4"
    reference = tmp_path / "reference.mp4"
    run(src, reference, segment_seconds=SEG)  # segments are bit-identical to segments, not to one pass
    code = _SCRIPT.format(repo=str(REPO), seg=SEG).replace(
        "summary = upscale_video(", "from vsr.errors import VsrError\ntry:\n    summary = upscale_video("
    ).replace("print(summary, flush=True)", "except VsrError as e:\n    sys.exit(f'vsr: error: {e}')\n"
              "print(summary, flush=True)")
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(src), str(dst)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, start_new_session=True)
        for _ in range(2)
    ]
    results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    for rc, out, err in results:
        assert "Traceback" not in err, err
        if rc != 0:
            assert rc == 1 and err.count("\n") == 1 and "another vsr run of this output finished" in err, err
    assert any(rc == 0 for rc, _, _ in results)
    assert video_md5(dst) == video_md5(reference) and audio_md5(dst) == audio_md5(reference)
    w = work_folder_for(dst)
    assert not w.exists(), (sorted(p.name for p in w.iterdir()), results)
    wait_until_gone(str(tmp_path))
    assert_clean(tmp_path, {"out.mp4", "reference.mp4"})


def test_truncated_input_is_refused_in_segments_too(clip, tmp_path):
    """The header promises 2 s; the data ends at about 1.3 s: the last segment notices."""
    with pytest.raises(InputError, match="truncated"):
        run(clip("truncated_faststart.mp4"), tmp_path / "out.mp4", segment_seconds=SEG)
    assert not (tmp_path / "out.mp4").exists()


def test_a_failure_before_any_segment_is_done_leaves_nothing(clip, tmp_path):
    def broken(call):
        raise ModelError("the model broke")

    with pytest.raises(ModelError, match="the model broke"):
        run(clip("gop30.mp4"), tmp_path / "out.mp4", NearestUpscaler(on_call=broken), segment_seconds=SEG)
    assert_clean(tmp_path)


# -- the ffmpeg that made the segments -----------------------------------------------------------
def _wrapped_ffmpeg(folder: Path, version: str) -> Path:
    """The bundled ffmpeg behind a script that reports ``version`` to ``-version``: another release, as
    far as vsr can tell, that encodes exactly as the bundled one."""
    folder.mkdir(exist_ok=True)
    exe = folder / "ffmpeg"
    exe.write_text(
        "#!/bin/sh\n"
        f'case "$*" in *-version*) echo "ffmpeg version {version} Copyright (c) the vsr tests"; exit 0;; esac\n'
        f'exec "{fixture_ffmpeg()}" "$@"\n'
    )
    exe.chmod(0o755)
    return exe


def test_resuming_with_another_ffmpeg_release_is_refused_until_restart(clip, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from vsr.video import ffmpeg as ff
    from vsr.video.command import upscale_command

    src, dst = clip("gop30.mp4"), tmp_path / "out.mp4"
    monkeypatch.delenv("VSR_FFMPEG", raising=False)
    ff.ffmpeg_exe.cache_clear()
    try:
        shard_all(src, dst)  # 8 segments by the bundled ffmpeg, not joined yet
        work = work_folder_for(dst)
        made_by = json.loads((work / "manifest.json").read_text())["ffmpeg"]
        assert made_by["path"] == fixture_ffmpeg() and made_by["version"].startswith(("9.", "n9."))

        other = _wrapped_ffmpeg(tmp_path / "bin", "9.1-other")
        monkeypatch.setenv("VSR_FFMPEG", str(other))
        ff.ffmpeg_exe.cache_clear()
        with pytest.raises(OutputError) as caught:
            run(src, dst, segment_seconds=SEG, identity={"model": "nearest"})
        message = str(caught.value)
        assert "\n" not in message and str(work) in message
        assert f"made by ffmpeg {made_by['version']} ({fixture_ffmpeg()})" in message
        assert f"this run has ffmpeg 9.1-other ({other})" in message
        assert f"rerun with the ffmpeg that made them (--ffmpeg {fixture_ffmpeg()})" in message
        assert "--restart" in message
        # The command line says the same in one line, and neither run touched the segments.
        result = CliRunner().invoke(
            upscale_command, [str(src), str(dst), "--model", "bicubic", "--ffmpeg", str(other), "-q"]
        )
        assert result.exit_code == OutputError.exit_code, result.output
        assert result.output.count("\n") == 1 and "rerun with the ffmpeg that made them" in result.output
        assert len(records(work)) == 8 and not dst.exists()

        # The same release at another path (another install, another machine) is the same ffmpeg.
        same = _wrapped_ffmpeg(tmp_path / "elsewhere", made_by["version"])
        monkeypatch.setenv("VSR_FFMPEG", str(same))
        ff.ffmpeg_exe.cache_clear()
        counting = Counting()
        summary = run(src, dst, counting, segment_seconds=SEG, identity={"model": "nearest"})
        assert counting.frames == 0 and summary.frames == 120  # joined, nothing redone

        # --restart with the other release makes the segments again with it.
        monkeypatch.setenv("VSR_FFMPEG", str(other))
        ff.ffmpeg_exe.cache_clear()
        again = tmp_path / "again.mp4"
        shard_all(src, again)
        assert json.loads((work_folder_for(again) / "manifest.json").read_text())["ffmpeg"]["version"] == "9.1-other"
        monkeypatch.delenv("VSR_FFMPEG")
        ff.ffmpeg_exe.cache_clear()
        with pytest.raises(OutputError, match="9.1-other"):
            run(src, again, segment_seconds=SEG, identity={"model": "nearest"})
        counting = Counting()
        run(src, again, counting, segment_seconds=SEG, identity={"model": "nearest"}, restart=True)
        assert counting.frames == 120
        assert video_md5(again) == video_md5(dst)
    finally:
        os.environ.pop("VSR_FFMPEG", None)  # the command sets it itself, not through monkeypatch
        ff.ffmpeg_exe.cache_clear()


def test_opening_a_work_folder_that_another_run_removes_meanwhile_makes_it_afresh(tmp_path, monkeypatch):
    """The other run of the same job finished and renamed the folder away between this run's two
    looks at it (folder there, manifest read): a fresh folder is made, not 'exists and is not a vsr
    work folder' (a clean-clone CI run of the two-processes test failed so, 2026-12-06)."""
    from vsr.video import workdir

    folder = tmp_path / "out.mp4.vsr-work"
    first = workdir.WorkFolder.open(folder, {"source": "a"}, ".mp4")
    real_read = workdir._read_json
    removed = []

    def read_after_the_other_run_removed_it(path):
        if path.name == workdir.MANIFEST and not removed:
            first.remove()
            removed.append(path)
        return real_read(path)

    monkeypatch.setattr(workdir, "_read_json", read_after_the_other_run_removed_it)
    again = workdir.WorkFolder.open(folder, {"source": "a"}, ".mp4")
    assert removed and again.manifest["source"] == "a"
    assert json.loads((folder / workdir.MANIFEST).read_text())["source"] == "a"
