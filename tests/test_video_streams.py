"""The stream plan is tried against the output's muxer before any frame is upscaled (issue #15, item 2).

Before: FLAC or Opus audio into .mov was planned as a stream copy, which ffmpeg's mov muxer refuses
("flac only supported in MP4"), so a single pass failed after every frame and a segmented job after
every segment, on every rerun. Tiny clips (96x64, 1-3 s), the real bundled ffmpeg; the tests that
reach past the table monkeypatch its row for .mov so that the dry mux alone must find the refusal.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from click.testing import CliRunner
from test_video_clips import NearestUpscaler, assert_clean, ffmpeg

from vsr.errors import OutputError
from vsr.video import formats, streams
from vsr.video.command import upscale_command
from vsr.video.jobs import upscale_video
from vsr.video.pipeline import plan_video
from vsr.video.probe import probe
from vsr.video.writer import plan_streams

REFUSAL = "only supported in MP4"  # ffmpeg's mov muxer, for FLAC and Opus


@pytest.fixture(scope="session")
def source(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stream_plan_clips")
    made = {}

    def get(name):
        if name not in made:
            out = folder / name
            video = "-f lavfi -i testsrc2=s=96x64:r=25:d=3 -c:v libx264 -preset ultrafast"
            if name == "flac.mkv":  # the repro
                ffmpeg(video.replace("-c:v", "-f lavfi -i sine=d=3 -c:v"), "-c:a flac", out)
            elif name == "opus.mkv":
                ffmpeg(video.replace("-c:v", "-f lavfi -i sine=d=3 -c:v"), "-c:a libopus", out)
            elif name == "aac_flac.mkv":  # two audio tracks: one any MP4-family file holds, one .mov does not
                ffmpeg(
                    "-f lavfi -i testsrc2=s=96x64:r=25:d=1 -f lavfi -i sine=f=440:d=1 -f lavfi -i sine=f=880:d=1",
                    "-map 0:v -map 1:a -map 2:a -c:v libx264 -preset ultrafast -c:a:0 aac -c:a:1 flac",
                    out,
                )
            made[name] = out
        return made[name]

    return get


def codecs(path) -> list[str]:
    return [s.codec for s in probe(path).streams]


def cli(*args):
    return CliRunner().invoke(upscale_command, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def mov_table_copies_any_audio(monkeypatch):
    """The .mov row as a table that does not know the mov muxer's rule: any audio is 'copied'."""
    monkeypatch.setitem(formats.CONTAINERS, ".mov", replace(formats.CONTAINERS[".mov"], audio_copy=None))


@pytest.mark.parametrize("name", ["flac.mkv", "opus.mkv"])
@pytest.mark.parametrize("segments", [None, "1"], ids=["single-pass", "segmented"])
def test_audio_a_mov_cannot_hold_is_re_encoded_and_the_job_finishes(source, tmp_path, name, segments):
    out = tmp_path / "o.mov"
    extra = ["--segment-seconds", segments] if segments else []
    result = cli(source(name), out, "--model", "bicubic", *extra)
    assert result.exit_code == 0, result.output
    assert codecs(out) == ["h264", "aac"]
    assert "re-encoded" in result.output and ".mov" in result.output
    # said before the work too (stderr, after the estimate line), not only in the summary (stdout)
    err = result.stderr
    assert "estimated time" in err and err.index("estimated time") < err.index(f"{name}: audio track 1 re-encoded")
    assert_clean(tmp_path, {"o.mov"})


def test_the_dry_mux_finds_what_the_table_lets_through(source, tmp_path, mov_table_copies_any_audio):
    src, dst = source("flac.mkv"), tmp_path / "o.mov"
    job = plan_video(src, dst)
    table = plan_streams(job.info, job.encode.container, dst.name)
    assert table.streams[0][1] == {"c:a:0": "copy"}  # the (patched) table alone would copy FLAC
    plan = job.stream_plan()
    assert plan.streams[0][1] == {"c:a:0": "aac", "b:a:0": "128k"}
    assert any(REFUSAL in note and "audio track 1 re-encoded flac -> aac" in note for note in plan.notes)
    summary = upscale_video(src, dst, NearestUpscaler(), progress=False)
    assert codecs(dst) == ["h264", "aac"]
    assert any(REFUSAL in note for note in summary.notes)


def test_only_the_refused_track_is_re_planned(source, tmp_path, mov_table_copies_any_audio):
    dst = tmp_path / "o.mov"
    plan = plan_video(source("aac_flac.mkv"), dst).stream_plan()
    assert [opts for _, opts in plan.streams] == [{"c:a:0": "copy"}, {"c:a:1": "aac", "b:a:1": "128k"}]
    assert [note.split(" re-encoded")[0] for note in plan.notes] == ["audio track 2"]
    upscale_video(source("aac_flac.mkv"), dst, NearestUpscaler(), progress=False)
    assert codecs(dst) == ["h264", "aac", "aac"]


def test_a_plan_no_muxer_takes_is_refused_at_once(source, tmp_path, monkeypatch):
    # A table whose fallback the muxer refuses too: no plan finishes, so nothing may start.
    row = replace(formats.CONTAINERS[".mov"], audio_copy=frozenset(), audio_encoder="flac")
    monkeypatch.setitem(formats.CONTAINERS, ".mov", row)
    with pytest.raises(OutputError, match=rf"nothing was upscaled\): flac {REFUSAL}; use \.mkv"):
        plan_video(source("flac.mkv"), tmp_path / "o.mov")  # runs before any model is loaded
    result = cli(source("flac.mkv"), tmp_path / "o.mov", "--model", "bicubic")
    assert result.exit_code == OutputError.exit_code
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vsr: error: ") and REFUSAL in lines[0], result.stderr
    assert_clean(tmp_path)


def test_a_plan_the_muxer_takes_costs_one_dry_mux(source, tmp_path, monkeypatch):
    tried = []
    real = streams.dry_mux
    monkeypatch.setattr(streams, "dry_mux", lambda *a: tried.append(a) or real(*a))
    plan = plan_video(source("flac.mkv"), tmp_path / "o.mkv").stream_plan()
    assert len(tried) == 1 and plan.notes == [] and plan.streams[0][1] == {"c:a:0": "copy"}
    assert_clean(tmp_path)
