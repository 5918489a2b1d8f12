"""Test clips made at test time with ffmpeg (testsrc2 + sine), fake upscalers, and process checks.

Also tests of the probe itself. The other ``test_video*`` modules import the helpers from here.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import threading
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from vsr.video.probe import frame_timing, probe

_CLIPS: dict[str, Path] = {}


def fixture_ffmpeg() -> str:
    """The ffmpeg that makes test clips and inspects outputs: always the bundled imageio-ffmpeg binary.

    Clips must be the same bytes whichever ffmpeg vsr is told to use (``VSR_FFMPEG``): a Debian 5.1
    writing the clips itself drops late-starting audio and lacks ``-display_rotation``, so a failure
    would say more about the fixture than about vsr.
    """
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


class NearestUpscaler:
    """A stand-in for the engine: nearest-neighbour x``scale`` with ``np.repeat``; counts calls."""

    def __init__(self, scale: int = 4, on_call=None):
        self.scale = scale
        self.calls = 0
        self.on_call = on_call

    def upscale(self, frames: np.ndarray) -> np.ndarray:
        self.calls += 1
        if self.on_call is not None:
            self.on_call(self.calls)
        return np.repeat(np.repeat(frames, self.scale, axis=1), self.scale, axis=2)


def ffmpeg(*args) -> None:
    """Run ffmpeg quietly; a ``str`` argument is split like a shell would, a ``Path`` is one argument."""
    argv = [a for arg in args for a in (shlex.split(arg) if isinstance(arg, str) else [str(arg)])]
    proc = subprocess.run(
        [fixture_ffmpeg(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *argv],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


SRT = "1\n00:00:00,000 --> 00:00:00,300\nhello\n\n2\n00:00:00,400 --> 00:00:00,600\nworld\n"
CHAPTERS = (
    ";FFMETADATA1\ntitle=Test clip\nartist=vsr tests\n"
    "[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=300\ntitle=One\n"
    "[CHAPTER]\nTIMEBASE=1/1000\nSTART=300\nEND=700\ntitle=Two\n"
)
TESTSRC = "-f lavfi -i testsrc2=s=64x48:r=30000/1001"  # 29.97 fps
SINE = "-f lavfi -i sine=f=440:d=0.7"
X264 = "-c:v libx264 -preset ultrafast -pix_fmt yuv420p"
AV = "-map 0:v -map 1:a -c:a aac"  # video from input 0, audio from input 1


def _make(name: str, folder: Path) -> Path:
    """Create the named clip in ``folder``; the comment beside each name says what it is for."""
    out = folder / name
    if name == "av.mp4":  # 20 frames at 29.97 fps + one AAC track
        ffmpeg(TESTSRC, SINE, AV, "-frames:v 20 -shortest", X264, out)
    elif name == "silent.mp4":  # no audio, 25 fps
        ffmpeg("-f lavfi -i testsrc2=s=64x48:r=25 -frames:v 15", X264, out)
    elif name == "odd.mkv":  # odd width and height (4:4:4 allows them)
        ffmpeg("-f lavfi -i testsrc2=s=64x48:r=24 -frames:v 12 -vf scale=37:23", X264, "-pix_fmt yuv444p", out)
    elif name == "rotated.mp4":  # a phone video: stored 64x48 with a 90 degree display rotation
        ffmpeg("-display_rotation 90 -i", _clip("av.mp4", folder), "-map 0 -c copy", out)
    elif name == "vfr.mp4":  # variable frame rate: every 4th frame missing, 1/90000 time base
        ffmpeg(
            "-f lavfi -i testsrc2=s=64x48:r=30 -f lavfi -i sine=d=0.8",
            AV,
            X264,
            "-vf \"select='not(eq(mod(n,4),1))'\" -frames:v 18 -fps_mode passthrough -video_track_timescale 90000",
            out,
        )
    elif name == "vfr_mixed.mkv":  # 1 s at 10 fps then 1 s at 30 fps (40 frames); Matroska says "30 fps"
        ffmpeg(
            "-f lavfi -i \"testsrc2=s=96x64:r=10:d=1[a];testsrc2=s=96x64:r=30:d=1[b];[a][b]concat=n=2:v=1:a=0\"",
            "-f lavfi -i sine=d=2",
            AV,
            X264,
            "-fps_mode vfr",
            out,
        )
    elif name == "cover.jpg":  # a 32x32 JPEG picture: cover art
        ffmpeg("-f lavfi -i testsrc2=s=32x32 -frames:v 1", out)
    elif name == "cover.mp4":  # 20 frames + audio + cover art (an attached-picture video stream, #2)
        ffmpeg(
            TESTSRC, SINE, "-i", _clip("cover.jpg", folder), "-map 0:v -map 1:a -map 2:v -frames:v:0 20",
            X264, "-c:a aac -c:v:1 copy -disposition:v:1 attached_pic", out,
        )
    elif name == "cover.mkv":  # the same in Matroska, whose covers are attachments
        ffmpeg(
            "-i", _clip("cover.mp4", folder), "-map 0:0 -map 0:1 -c copy -attach", _clip("cover.jpg", folder),
            "-metadata:s:t mimetype=image/jpeg -metadata:s:t filename=cover.jpg", out,
        )
    elif name in ("rich.mkv", "rich.mp4"):  # two audio tracks (one French), subtitles, chapters, title
        (folder / "subs.srt").write_text(SRT)
        (folder / "chapters.txt").write_text(CHAPTERS)
        (folder / "font.ttf").write_bytes(b"not really a font")
        mkv = name.endswith(".mkv")
        subs = "srt" if mkv else "mov_text"
        font = ["-attach", folder / "font.ttf", "-metadata:s:t mimetype=font/ttf"] if mkv else []
        ffmpeg(
            TESTSRC,
            SINE,
            "-f lavfi -i sine=f=880:d=0.7 -i",
            folder / "subs.srt",
            "-i",
            folder / "chapters.txt",
            "-map 0:v -map 1:a -map 2:a -map 3:s -map_metadata 4 -map_chapters 4 -frames:v 20",
            X264,
            f"-c:a aac -c:s {subs} -metadata:s:a:1 language=fra -metadata:s:s:0 language=eng",
            *font,
            out,
        )
    elif name == "late_video.mp4":  # video starts 0.5 s after the audio
        ffmpeg("-itsoffset 0.5", TESTSRC, "-f lavfi -i sine=d=1.0", AV, "-frames:v 15", X264, out)
    elif name == "short_video.mp4":  # legitimately shorter video (10 frames) than audio (2 s)
        ffmpeg(TESTSRC, "-f lavfi -i sine=d=2", AV, "-frames:v 10", X264, out)
    elif name == "long.mp4":  # enough frames that the decoder is still running when a test kills it
        ffmpeg("-f lavfi -i testsrc2=s=64x48:r=30", SINE, AV, "-frames:v 600", X264, out)
    elif name == "anamorphic.mkv":  # non-square pixels, as on DVDs: SAR 32:27
        ffmpeg(TESTSRC, "-frames:v 8 -vf setsar=32/27", X264, out)
    elif name == "bt601.mp4":  # colours stored with the SD matrix (BT.601) and tagged so
        ffmpeg(TESTSRC, "-frames:v 5 -vf scale=out_color_matrix=bt470bg -colorspace bt470bg", X264, out)
    elif name == "audio_only.m4a":
        ffmpeg("-f lavfi -i sine=d=0.5 -c:a aac", out)
    elif name == "text.mp4":
        out.write_text("this is not a video\n")
    elif name == "truncated.mp4":  # moov atom at the end, file cut in the middle: no index at all
        whole = _clip("av.mp4", folder).read_bytes()
        out.write_bytes(whole[: len(whole) // 2])
    elif name == "truncated_faststart.mp4":  # index first, media data cut: the run must notice mid-way
        full = folder / "faststart_full.mp4"
        ffmpeg(TESTSRC, SINE, AV, "-frames:v 60", X264, "-movflags +faststart", full)
        data = full.read_bytes()
        out.write_bytes(data[: len(data) * 2 // 3])
    elif name == "damaged.mp4":  # 300 garbled bytes mid-file: some frames fail to decode
        data = bytearray(_clip("long.mp4", folder).read_bytes())
        middle = len(data) // 3
        data[middle : middle + 300] = bytes(b ^ 0x5A for b in data[middle : middle + 300])
        out.write_bytes(bytes(data))
    elif name == "zero_frames.mp4":  # a video stream whose only keyframe was removed: nothing decodes
        one_gop = folder / "one_gop.mp4"
        ffmpeg(TESTSRC, "-frames:v 10 -c:v libx264 -x264-params keyint=1000:scenecut=0 -bf 0", one_gop)
        ffmpeg("-i", one_gop, "-c copy -bsf:v 'noise=drop=eq(n\\,0)'", out)
    elif name == "still.png":
        ffmpeg(TESTSRC, "-frames:v 1 -vf scale=33:21", out)
    elif name == "alpha.png":  # alpha ramps from 0 (left) to 240 (right)
        ffmpeg("-f lavfi -i testsrc2=s=16x12 -frames:v 1 -vf \"format=rgba,geq=r='r(X,Y)':a='X*16'\"", out)
    else:
        raise KeyError(name)
    return out


def _clip(name: str, folder: Path) -> Path:
    if name not in _CLIPS:
        _CLIPS[name] = _make(name, folder)
    return _CLIPS[name]


def clip_maker(tmp_path_factory):
    """``clip("av.mp4")`` -> path of a small test clip, made once per session. Treat it as read-only.

    Each test module wraps this in its own session fixture named ``clip``; clips are shared by name.
    """
    folder = tmp_path_factory.mktemp("clips")
    return lambda name: _clip(name, folder)


@pytest.fixture(scope="session")
def clip(tmp_path_factory):
    return clip_maker(tmp_path_factory)


def child_processes() -> list[str]:
    """Command lines of live (or unreaped) children of this process, from /proc."""
    me = os.getpid()
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == me:
            found.append(f"{pid}: {cmd or stat.split()[1]}")
    return found


def processes_mentioning(text: str) -> list[str]:
    """Command lines of any process on the machine that mention ``text`` (e.g. a test's tmp dir)."""
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit() and int(pid) != os.getpid():
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in cmd and "pytest" not in cmd:
                found.append(f"{pid}: {cmd}")
    return found


def pipeline_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("vsr-")]


def assert_clean(folder: Path, allowed: set[str] = frozenset()) -> None:
    """No stray output or temporary file in ``folder``, no ffmpeg child, no pipeline thread left."""
    stray = sorted(p.name for p in folder.iterdir() if p.name not in allowed) if folder.exists() else []
    assert stray == [], f"stray files: {stray}"
    assert child_processes() == []
    assert pipeline_threads() == []


# -- tests of the probe and of ffmpeg discovery ---------------------------------------------------
def test_ffmpeg_is_found_without_one_on_path(monkeypatch):
    import shutil

    from vsr.video import ffmpeg as ff

    ff.ffmpeg_exe.cache_clear()
    monkeypatch.delenv("VSR_FFMPEG", raising=False)
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    try:
        path = ff.ffmpeg_exe()
        assert "imageio_ffmpeg" in path and os.access(path, os.X_OK)
    finally:
        ff.ffmpeg_exe.cache_clear()


def _fake_ffmpeg(folder: Path, first_line: str) -> Path:
    """An executable that answers ``-version`` like an ffmpeg would."""
    exe = folder / "ffmpeg"
    exe.write_text(f"#!/bin/sh\necho '{first_line}'\n")
    exe.chmod(0o755)
    return exe


def test_bundled_ffmpeg_is_preferred_over_one_on_path(tmp_path, monkeypatch):
    from vsr.video import ffmpeg as ff

    _fake_ffmpeg(tmp_path, "ffmpeg version 9.1 Copyright")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("VSR_FFMPEG", raising=False)
    ff.ffmpeg_exe.cache_clear()
    try:
        assert ff.ffmpeg_exe() == fixture_ffmpeg() != str(tmp_path / "ffmpeg")
    finally:
        ff.ffmpeg_exe.cache_clear()


@pytest.mark.parametrize(
    "line, accepted",
    [
        ("ffmpeg version 5.1.9-0+deb12u1 Copyright (c) 2000-2026", False),  # Debian 12
        ("ffmpeg version 4.4.2-0ubuntu0.22.04.1 Copyright", False),  # Ubuntu 22.04
        ("ffmpeg version 9.0.2-static https://johnvansickle.com", True),
        ("ffmpeg version n9.1 Copyright", True),
        ("ffmpeg version N-118000-g1234abcd Copyright", True),  # a development build
    ],
)
def test_an_ffmpeg_asked_for_is_version_checked(tmp_path, monkeypatch, line, accepted):
    from vsr.errors import FFmpegError
    from vsr.video import ffmpeg as ff

    exe = _fake_ffmpeg(tmp_path, line)
    monkeypatch.setenv("VSR_FFMPEG", str(exe))
    ff.ffmpeg_exe.cache_clear()
    try:
        if accepted:
            assert ff.ffmpeg_exe() == str(exe)
        else:
            with pytest.raises(FFmpegError) as err:
                ff.ffmpeg_exe()
            message = str(err.value)
            assert "\n" not in message and str(exe) in message and "older than 9.0" in message
            assert "unset VSR_FFMPEG" in message
    finally:
        ff.ffmpeg_exe.cache_clear()


def test_something_that_is_not_ffmpeg_is_refused(tmp_path, monkeypatch):
    from vsr.errors import FFmpegError
    from vsr.video import ffmpeg as ff

    monkeypatch.setenv("VSR_FFMPEG", str(_fake_ffmpeg(tmp_path, "hello")))
    ff.ffmpeg_exe.cache_clear()
    try:
        with pytest.raises(FFmpegError, match="not an ffmpeg vsr can identify"):
            ff.ffmpeg_exe()
    finally:
        ff.ffmpeg_exe.cache_clear()


def test_upscale_ffmpeg_option_refuses_an_old_one_before_any_work(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from vsr.video import ffmpeg as ff
    from vsr.video.command import upscale_command

    monkeypatch.delenv("VSR_FFMPEG", raising=False)
    exe = _fake_ffmpeg(tmp_path, "ffmpeg version 5.1.9-0+deb12u1 Copyright")
    try:
        result = CliRunner().invoke(
            upscale_command, [str(tmp_path / "missing.mp4"), str(tmp_path / "out.mp4"), "--ffmpeg", str(exe)]
        )
        assert result.exit_code == 5, result.output
        assert "ffmpeg 5.1, older than 9.0" in result.output
        assert os.environ["VSR_FFMPEG"] == str(exe)  # workers would inherit the same choice
    finally:
        os.environ.pop("VSR_FFMPEG", None)  # set by the command itself, not through monkeypatch
        ff.ffmpeg_exe.cache_clear()


def test_probe_and_timing_do_not_depend_on_the_ffmpeg_binary(clip, monkeypatch):
    """Probing reads FFmpeg's structures through PyAV: a broken VSR_FFMPEG does not matter to it."""
    from vsr.video import ffmpeg as ff

    monkeypatch.setenv("VSR_FFMPEG", "/nonexistent/ffmpeg")
    ff.ffmpeg_exe.cache_clear()
    try:
        info = probe(clip("late_video.mp4"))
        assert info.video.start == pytest.approx(0.5005)  # Debian 5.1's text showed no stream start
        assert info.of_kind("audio")[0].sample_rate == 44100
        timing = frame_timing(clip("late_video.mp4"))
        assert timing.pts[:2] == (15015, 16016) and timing.durations[0] == 1001
        assert timing.time_base == Fraction(1, 30000)
    finally:
        ff.ffmpeg_exe.cache_clear()


def test_probe_reports_colour_tags_by_name(clip):
    video = probe(clip("bt601.mp4")).video
    assert video.color_space == "bt470bg" and video.pix_fmt == "yuv420p"
    assert probe(clip("av.mp4")).video.color_space is None  # untagged


def test_probe_refusal_names_the_demuxers_reason(clip):
    from vsr.errors import InputError

    with pytest.raises(InputError, match="moov atom not found"):
        probe(clip("truncated.mp4"))


def test_probe_reads_streams_metadata_and_chapters(clip):
    info = probe(clip("rich.mkv"))
    assert info.format.startswith("matroska")
    assert info.duration == pytest.approx(0.7, abs=0.05)
    assert [s.kind for s in info.streams] == ["video", "audio", "audio", "subtitle", "attachment"]
    assert (info.video.codec, info.video.width, info.video.height) == ("h264", 64, 48)
    assert info.of_kind("audio")[1].language == "fra"
    assert info.of_kind("subtitle")[0].codec == "subrip"
    assert info.metadata["title"] == "Test clip"
    assert [c.title for c in info.chapters] == ["One", "Two"]
    assert info.chapters[1].start == pytest.approx(0.3)


def test_probe_reads_rotation_and_upright_size(clip):
    video = probe(clip("rotated.mp4")).video
    assert abs(video.rotation) == 90
    assert video.upright_size == (48, 64)


def test_frame_timing_is_exact(clip):
    timing = frame_timing(clip("av.mp4"))
    assert timing.frames == 20
    assert timing.frame_rate == Fraction(30000, 1001)
    assert timing.is_constant_rate
    vfr = frame_timing(clip("vfr.mp4"))
    assert vfr.frames == 18 and not vfr.is_constant_rate
    assert vfr.time_base == Fraction(1, 90000)
