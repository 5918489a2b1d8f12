"""--start/--duration (ffmpeg's -ss/-t) on `vsr upscale`, and the estimate printed before the first frame.

The clip is 3 s of testsrc2 at 10 fps (every frame different, a keyframe every 10 frames so seeks
land on them), with AAC audio, subtitles and three chapters. The upscaler is the nearest-neighbour
stand-in and the codec ffv1 (lossless RGB) where pixels are compared, so an output frame, sampled
every 4th pixel, is exactly the source frame it came from.
"""

from __future__ import annotations

import subprocess
from fractions import Fraction

import av
import numpy as np
import pytest
from click.testing import CliRunner
from test_video_clips import NearestUpscaler, assert_clean, clip_maker, ffmpeg, fixture_ffmpeg

from vsr.errors import InputError, OutputError
from vsr.video.jobs import upscale_video
from vsr.video.probe import frame_timing, probe
from vsr.video.reader import read_frames

SRT = (
    "1\n00:00:00,500 --> 00:00:00,900\none\n\n"
    "2\n00:00:01,500 --> 00:00:01,900\ntwo\n\n"
    "3\n00:00:02,500 --> 00:00:02,900\nthree\n"
)
CHAPTERS = (
    ";FFMETADATA1\ntitle=Trim clip\n"
    "[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=1000\ntitle=A\n"
    "[CHAPTER]\nTIMEBASE=1/1000\nSTART=1000\nEND=2000\ntitle=B\n"
    "[CHAPTER]\nTIMEBASE=1/1000\nSTART=2000\nEND=3000\ntitle=C\n"
)


def make_indexed_clip(folder, name="indexed.mkv"):
    """3 s, 10 fps, 96x64, keyframe every 10 frames; AAC (44.1 kHz) audio, subtitles, chapters."""
    out = folder / name
    if out.exists():
        return out
    (folder / "trim.srt").write_text(SRT)
    (folder / "trim_chapters.txt").write_text(CHAPTERS)
    subs = "srt" if name.endswith(".mkv") else "mov_text"
    ffmpeg(
        "-f lavfi -i testsrc2=s=96x64:r=10 -f lavfi -i sine=f=440:d=3 -i",
        folder / "trim.srt",
        "-i",
        folder / "trim_chapters.txt",
        "-map 0:v -map 1:a -map 2:s -map_metadata 3 -map_chapters 3 -frames:v 30",
        "-c:v libx264 -preset ultrafast -pix_fmt yuv420p -g 10 -c:a aac",
        f"-c:s {subs}",
        out,
    )
    return out


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("trim_clips")
    return lambda name="indexed.mkv": make_indexed_clip(folder, name)


@pytest.fixture(scope="session")
def clip(tmp_path_factory):
    return clip_maker(tmp_path_factory)


@pytest.fixture(scope="module")
def source_frames(indexed):
    frames = read_frames(indexed())
    assert len(frames) == 30 and len({f.tobytes() for f in frames}) == 30  # every frame its own
    return frames


def run(src, dst, **options):
    options.setdefault("progress", False)
    return upscale_video(src, dst, NearestUpscaler(), **options)


def sampled(path):
    """The output's frames, every 4th pixel: the source pixels the nearest stand-in enlarged."""
    return read_frames(path)[:, ::4, ::4]


def stream_span(path, kind):
    """(first packet time, end of the last packet) of the first stream of ``kind``, seconds."""
    with av.open(str(path)) as container:
        stream = next(s for s in container.streams if s.type == kind)
        packets = [(p.pts, p.duration, p.time_base) for p in container.demux(stream) if p.pts is not None]
    return float(packets[0][0] * packets[0][2]), float(max((p + d) * tb for p, d, tb in packets))


def subtitle_text(path):
    return subprocess.run(
        [fixture_ffmpeg(), "-v", "error", "-i", str(path), "-map", "0:s:0", "-f", "srt", "-"],
        capture_output=True, text=True, check=True,
    ).stdout


def test_trim_keeps_the_span_frames_audio_subtitles_and_chapters(indexed, source_frames, tmp_path):
    src, dst = indexed(), tmp_path / "cut.mkv"
    summary = run(src, dst, start=1.0, duration=1.2, codec="ffv1")
    timing = frame_timing(dst)
    assert timing.frames == summary.frames == 12
    assert timing.seconds[0] == 0 and timing.duration == pytest.approx(1.2, abs=1e-3)
    assert timing.seconds == pytest.approx([i / 10 for i in range(12)], abs=1e-3)
    out = sampled(dst)
    assert np.array_equal(out[0], source_frames[10])  # the frame displayed at --start
    assert np.array_equal(out, source_frames[10:22])
    # Audio: the same span, cut at AAC packet boundaries (1024 samples, 23 ms).
    first, end = stream_span(dst, "audio")
    assert 0 <= first < 0.024 and end == pytest.approx(1.2, abs=0.024)
    # Subtitles shifted by --start; the cue before it is gone, the one after the end too.
    text = subtitle_text(dst)
    assert "00:00:00,500 --> 00:00:00,900\ntwo" in text and "one" not in text and "three" not in text
    # Chapters: cut to the span and shifted.
    info = probe(dst)
    assert [(c.title, round(c.start, 3), round(c.end, 3)) for c in info.chapters] == [("B", 0.0, 1.0), ("C", 1.0, 1.2)]
    assert info.tag("title") == "Trim clip"
    assert "cut from 00:00:01.000 for 00:00:01.200" in summary.notes
    assert_clean(tmp_path, {"cut.mkv"})


def test_trim_to_mp4_converts_subtitles_at_their_new_times(indexed, tmp_path):
    """mkv (SubRip) -> mp4 (mov_text): ffmpeg cannot shift subtitles it converts, so vsr converts
    them untrimmed into a side file first; the cues must still move by --start."""
    dst = tmp_path / "cut.mp4"
    summary = run(indexed(), dst, start=1.2, duration=1.5)
    assert frame_timing(dst).frames == 15
    text = subtitle_text(dst)
    assert "00:00:00,300 --> 00:00:00,700\ntwo" in text and "one" not in text
    assert "subtitles 1 converted subrip -> mov_text" in summary.notes
    first, end = stream_span(dst, "audio")
    assert 0 <= first < 0.024 and end == pytest.approx(1.5, abs=0.024)
    assert [c.title for c in probe(dst).chapters] == ["B", "C"]
    assert_clean(tmp_path, {"cut.mp4"})


def test_start_between_frames_begins_with_the_frame_shown_then(indexed, source_frames, tmp_path):
    dst = tmp_path / "cut.mkv"
    run(indexed(), dst, start=Fraction("1.05"), codec="ffv1")  # frames at 1.0 and 1.1: 1.0 is shown
    timing = frame_timing(dst)
    assert timing.frames == 20
    assert timing.seconds[:3] == pytest.approx([0.0, 0.05, 0.15], abs=1e-3)  # shown from the first instant
    assert np.array_equal(sampled(dst), source_frames[10:])


def test_segmented_trim_equals_a_single_pass(indexed, tmp_path):
    one, seg = tmp_path / "one.mkv", tmp_path / "seg.mkv"
    run(indexed(), one, start=0.8, duration=1.5, codec="ffv1", segment_seconds=0)
    summary = run(indexed(), seg, start=0.8, duration=1.5, codec="ffv1", segment_seconds=0.5)
    a, b = frame_timing(one), frame_timing(seg)
    assert b.frames == a.frames == summary.frames == 15
    assert b.seconds == pytest.approx(a.seconds, abs=1e-9)
    assert np.array_equal(read_frames(seg), read_frames(one))
    assert subtitle_text(seg) == subtitle_text(one)
    assert [c.title for c in probe(seg).chapters] == [c.title for c in probe(one).chapters] == ["A", "B", "C"]
    assert_clean(tmp_path, {"one.mkv", "seg.mkv"})


def test_work_folder_names_the_span(indexed, tmp_path):
    """Segments of one span are refused for another: the span is part of the work folder's identity."""
    from vsr.video.pipeline import plan_video
    from vsr.video.segmented import plan_segmented

    dst = tmp_path / "out.mkv"
    first = plan_segmented(plan_video(indexed(), dst, start=0.5), identity={"m": 1}, segment_seconds=1)
    assert first.work.manifest["trim"] == {"start": "0.500000", "duration": None}
    assert first.bounds(0) == (Fraction(1, 2), Fraction(3, 2)) and first.count == 3
    with pytest.raises(OutputError, match=r"span \(--start/--duration\)"):
        plan_segmented(plan_video(indexed(), dst, start=0.6), identity={"m": 1}, segment_seconds=1)
    first.work.remove()


@pytest.mark.parametrize("start", [3.0, 7.5])
def test_start_beyond_the_end_is_one_line_error(indexed, tmp_path, start):
    with pytest.raises(InputError) as err:
        run(indexed(), tmp_path / "out.mkv", start=start)
    assert "beyond the end" in str(err.value) and "\n" not in str(err.value)
    assert_clean(tmp_path)


@pytest.mark.parametrize("segments", [0, 0.5])
def test_start_past_the_last_frame_but_within_the_audio_is_refused(clip, tmp_path, segments):
    """The header's 2 s count the audio; the video's 10 frames end at 0.334 s."""
    with pytest.raises(InputError) as err:
        run(clip("short_video.mp4"), tmp_path / "out.mp4", start=1.0, segment_seconds=segments)
    assert "--start 00:00:01.000 is beyond the end of the video" in str(err.value)
    assert_clean(tmp_path)


def test_cli_trim_options_and_time_syntax(indexed, tmp_path):
    from vsr.cli import main

    dst = tmp_path / "cut.mp4"
    args = ["upscale", str(indexed()), str(dst), "--model", "bicubic", "--start", "00:01", "--duration", "0.5", "-q"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert frame_timing(dst).frames == 5
    bad = CliRunner().invoke(main, ["upscale", str(indexed()), str(tmp_path / "x.mp4"), "--start", "1:75"])
    assert bad.exit_code == 2 and "--start '1:75'" in bad.output
    late = CliRunner().invoke(main, ["upscale", str(indexed()), str(tmp_path / "x.mp4"), "--start", "9", "-q"])
    assert late.exit_code == 8 and "beyond the end" in late.output  # an InputError, not a usage error
    assert_clean(tmp_path, {"cut.mp4"})


@pytest.mark.parametrize("segments", ["0", "1"])
def test_estimate_is_printed_before_the_work_unless_quiet(indexed, tmp_path, segments):
    from vsr.cli import main

    src = indexed()
    base = ["upscale", str(src), "--model", "bicubic", "--segment-seconds", segments]
    loud = CliRunner().invoke(main, [*base[:2], str(tmp_path / "a.mkv"), *base[2:]])
    assert loud.exit_code == 0, loud.output
    lines = [line for line in loud.stderr.splitlines() if "estimated time" in line]
    assert len(lines) == 1, loud.stderr
    assert "indexed.mkv: 30 frames, output 384x256; estimated time" in lines[0]
    assert "an estimate, measured on the first batch: 4 frames in" in lines[0]
    quiet = CliRunner().invoke(main, [*base[:2], str(tmp_path / "b.mkv"), *base[2:], "-q"])
    assert quiet.exit_code == 0, quiet.output
    assert "estimate" not in quiet.output and quiet.stderr == ""


# -- --start/--duration with the output options (--codec, --encoder-opt, --outscale), cover art, folders --
@pytest.mark.parametrize("segments", [0, 0.1])  # 0.1: four segments, the join muxes the cut and the cover
def test_trim_with_outscale_encoder_options_and_cover_art(clip, tmp_path, segments):
    from vsr.video.probe import attached_picture

    src, dst = clip("cover.mp4"), tmp_path / "cut.mp4"  # 64x48 at 29.97 fps, AAC, a 32x32 JPEG cover
    summary = run(src, dst, start=0.2, duration=0.3, outscale=2, encoder_options=["g=3"],
                  segment_seconds=segments, identity={"model": "nearest"})
    info, timing = probe(dst), frame_timing(dst)
    assert summary.frames == timing.frames == 10  # the frame shown at 0.2 s (0.167) and the 9 after it
    assert summary.output_size == (128, 96) == (info.video.width, info.video.height)
    assert timing.seconds[0] == 0 and timing.duration == pytest.approx(0.3, abs=1e-3)
    first, end = stream_span(dst, "audio")
    assert 0 <= first < 0.024 and end == pytest.approx(0.3, abs=0.024)
    [cover] = [s for s in info.streams if s.attached_pic]
    assert (cover.codec, cover.width) == ("mjpeg", 32)  # not upscaled, not resized
    assert attached_picture(dst, cover.index) == clip("cover.jpg").read_bytes()
    with av.open(str(dst)) as container:
        keyframes = sum(p.is_keyframe for p in container.demux(container.streams.video[0]) if p.size)
    assert keyframes >= 4  # -g 3 reached the encoder (x264's default would give one in 10 frames)
    assert "cut from 00:00:00.200 for 00:00:00.300" in summary.notes
    assert_clean(tmp_path, {"cut.mp4"})


def test_work_folder_identity_has_the_span_encoder_options_size_and_ffmpeg(indexed, tmp_path):
    from vsr.video.ffmpeg import ffmpeg_identity
    from vsr.video.pipeline import plan_video
    from vsr.video.segmented import plan_segmented

    dst = tmp_path / "out.mkv"
    options = dict(start=0.5, duration=2, outscale=2, encoder_options=["g=5"])

    def plan(**changed):
        job = plan_video(indexed(), dst, **{**options, **changed})
        return plan_segmented(job, identity={"m": 1}, segment_seconds=1)

    first = plan()
    manifest = first.work.manifest
    assert manifest["trim"] == {"start": "0.500000", "duration": "2.000000"}
    assert manifest["output_size"] == {"outscale": 2.0, "width": None, "height": None}
    assert manifest["encode"]["encoder_options"] == ["g=5"]
    assert manifest["ffmpeg"]["version"] == ffmpeg_identity()["version"]
    assert first.count == 2 and first.bounds(1) == (Fraction(3, 2), Fraction(5, 2))
    assert plan().work.path == first.work.path  # the same job resumes
    for changed, words in [(dict(duration=1.5), r"span \(--start/--duration\)"), (dict(outscale=3), "output size"),
                           (dict(encoder_options=["g=6"]), "encoding: encoder_options")]:
        with pytest.raises(OutputError, match=words):
            plan(**changed)
    first.work.remove()


def test_folder_recursive_with_start_cuts_every_video_and_keeps_images_whole(indexed, clip, tmp_path):
    import shutil

    from vsr.cli import main
    from vsr.video.image import read_image

    src, out = tmp_path / "in", tmp_path / "out"
    (src / "sub").mkdir(parents=True)
    shutil.copy(indexed(), src / "a.mkv")
    shutil.copy(indexed(), src / "sub" / "b.mkv")
    shutil.copy(clip("still.png"), src / "sub" / "c.png")
    args = ["upscale", str(src), str(out), "--recursive", "--start", "1", "--duration", "0.5", "--outscale", "2",
            "--model", "bicubic", "--codec", "ffv1", "-q"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    for video in (out / "a.mkv", out / "sub" / "b.mkv"):
        assert frame_timing(video).frames == 5 and (probe(video).video.width, probe(video).video.height) == (192, 128)
    assert read_image(out / "sub" / "c.png").shape == (42, 66, 3)  # 33x21: whole, x2
    assert_clean(out, {"a.mkv", "sub"})
