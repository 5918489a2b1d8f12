"""Output control (issue #14): any encoder of the ffmpeg in use, --encoder-opt, bit depth, output size.

Tiny clips (64x48 and 96x64, 15-25 frames), the real bundled ffmpeg, and outputs checked by probing
them. CLI tests run the click command in process with ``--model bicubic`` (no network, no weights).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from click.testing import CliRunner
from test_video_clips import NearestUpscaler, assert_clean, clip_maker, ffmpeg

from vsr.errors import OutputError
from vsr.video.command import upscale_command
from vsr.video.ffmpeg import has_encoder
from vsr.video.formats import resolve_encode_options
from vsr.video.image import read_image
from vsr.video.jobs import upscale_image, upscale_path, upscale_video
from vsr.video.pipeline import plan_video
from vsr.video.probe import frame_timing, probe
from vsr.video.segmented import plan_segmented
from vsr.video.workdir import work_folder_for
from vsr.video.writer import _video_encoder_options


@pytest.fixture(scope="session")
def clip(tmp_path_factory):
    make = clip_maker(tmp_path_factory)
    folder = tmp_path_factory.mktemp("output_clips")

    def get(name):
        out = folder / name
        if out.exists():
            return out
        if name == "hevc10.mkv":  # a 10-bit HEVC source with audio: 96x64, 1 s at 25 fps
            ffmpeg(
                "-f lavfi -i testsrc2=s=96x64:r=25 -f lavfi -i sine=d=1 -t 1 -map 0:v -map 1:a",
                "-c:v libx265 -pix_fmt yuv420p10le -x265-params log-level=error -c:a aac",
                out,
            )
        else:
            return make(name)
        return out

    return get


def cli(*args):
    return CliRunner().invoke(upscale_command, [str(a) for a in args], catch_exceptions=False)


def error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("vsr: error: ")
    return lines[0]


def video_stream(path):
    return probe(path).video


def keyframes(path) -> list[int]:
    import av

    with av.open(str(path)) as container:
        return [i for i, p in enumerate(p for p in container.demux(video=0) if p.size) if p.is_keyframe]


class Counting(NearestUpscaler):
    def __init__(self):
        super().__init__()
        self.frames = 0

    def upscale(self, frames):
        self.frames += len(frames)
        return super().upscale(frames)


# -- any encoder of the ffmpeg in use -------------------------------------------------------------
@pytest.mark.parametrize(
    "name, encoder, codec",
    [("out.mp4", "libopenh264", "h264"), ("out.mkv", "mpeg4", "mpeg4"), ("out.mp4", "libx264rgb", "h264")],
)
def test_codec_takes_an_encoder_the_old_list_did_not_have(clip, tmp_path, name, encoder, codec):
    if not has_encoder(encoder):
        pytest.skip(f"this ffmpeg has no {encoder}")
    result = cli(clip("silent.mp4"), tmp_path / name, "--model", "bicubic", "--codec", encoder, "-q")
    assert result.exit_code == 0, result.stderr
    video = video_stream(tmp_path / name)
    assert (video.codec, video.width, video.height) == (codec, 256, 192)
    assert frame_timing(tmp_path / name).frames == 15
    assert_clean(tmp_path, {name})


def test_unknown_or_audio_codec_is_refused_with_close_matches(clip, tmp_path):
    result = cli(clip("silent.mp4"), tmp_path / "out.mp4", "--model", "bicubic", "--codec", "libx246")
    assert result.exit_code == 3
    line = error_line(result)
    assert "unknown --codec 'libx246'" in line and "did you mean" in line and "libx264" in line
    result = cli(clip("silent.mp4"), tmp_path / "out.mp4", "--model", "bicubic", "--codec", "aac")
    assert result.exit_code == 3 and "aac is an audio encoder" in error_line(result)
    assert_clean(tmp_path)


def test_crf_and_preset_map_onto_the_options_the_encoder_has(tmp_path):
    """Asked of `ffmpeg -h encoder=NAME`: no device is needed to plan an NVENC encode, only to run one."""
    missing = [e for e in ("h264_nvenc", "libsvtav1", "libopenh264", "mpeg4") if not has_encoder(e)]
    if missing:
        pytest.skip(f"this ffmpeg lacks {', '.join(missing)}")
    dst = tmp_path / "a.mp4"
    nvenc = resolve_encode_options(dst, "h264_nvenc", crf=23, preset="p5")
    options = _video_encoder_options(nvenc, Fraction(1, 25))
    assert options["cq"] == "23" and "crf" not in options and options["preset"] == "p5"
    assert any("-cq" in n for n in nvenc.notes)
    for kwargs, words in [
        ({"codec": "h264_nvenc", "preset": "p9"}, "use one of"),
        ({"codec": "h264_nvenc", "crf": 60}, "out of range"),
        ({"codec": "libsvtav1", "preset": "fast"}, "a number in -2..13"),
        ({"codec": "libopenh264", "crf": 20}, "--encoder-opt"),
        ({"codec": "mpeg4", "preset": "fast"}, "takes no --preset"),
    ]:
        with pytest.raises(OutputError, match=words):
            resolve_encode_options(dst, **kwargs)
    assert resolve_encode_options(dst, "libsvtav1", crf=40, preset="10").crf == 40


# -- --encoder-opt --------------------------------------------------------------------------------
def test_encoder_opt_reaches_the_encoder(clip, tmp_path):
    dst = tmp_path / "out.mp4"
    result = cli(
        clip("silent.mp4"), dst, "--model", "bicubic", "-q",
        "--encoder-opt", "x264-params=keyint=5:min-keyint=5:scenecut=0", "--encoder-opt", "bf=0",
    )
    assert result.exit_code == 0, result.stderr
    assert keyframes(dst) == [0, 5, 10]
    plain = tmp_path / "plain.mp4"
    assert cli(clip("silent.mp4"), plain, "--model", "bicubic", "-q").exit_code == 0
    assert keyframes(plain) == [0]  # x264's default interval is far longer than 15 frames


@pytest.mark.parametrize(
    "option, words",
    [
        ("cpu-used=4", "libx264 has no option cpu-used"),  # a libvpx/libaom option, ignored with a warning
        ("x264-params=keyint=abc", "keyint"),  # x264 ignores it with a warning
        ("g=abc", '"g" option value "abc"'),
        ("no-such-option=1", "no-such-option"),
    ],
)
def test_an_option_the_encoder_rejects_fails_before_any_frame(clip, tmp_path, option, words):
    up = Counting()
    with pytest.raises(OutputError) as caught:
        upscale_video(clip("silent.mp4"), tmp_path / "out.mp4", up, encoder_options=[option], progress=False)
    message = str(caught.value)
    assert "\n" not in message and words in message and "nothing was upscaled" in message, message
    assert up.frames == 0
    assert_clean(tmp_path)


def test_encoder_opt_that_is_not_key_value_or_is_vsrs_own_is_refused_by_the_cli(clip, tmp_path):
    for option, words in [
        ("keyint", "KEY=VALUE"),
        ("=5", "KEY=VALUE"),
        ("pix_fmt=yuv444p", "use --pix-fmt"),
        ("crf=20", "use --crf"),
        ("vf=scale=10:10", "vsr sets this itself"),
    ]:
        result = cli(clip("silent.mp4"), tmp_path / "out.mp4", "--model", "bicubic", "--encoder-opt", option)
        assert result.exit_code == 2, result.stderr
        assert words in error_line(result)
    result = cli(
        clip("silent.mp4"), tmp_path / "out.mp4", "--model", "bicubic", "--encoder-opt", "g=5", "--encoder-opt", "g=6"
    )
    assert result.exit_code == 2 and "given twice" in error_line(result)
    assert_clean(tmp_path)


def test_the_cli_refuses_a_rejected_option_in_one_line_and_leaves_nothing(clip, tmp_path):
    result = cli(clip("silent.mp4"), tmp_path / "out.mp4", "--model", "bicubic", "--encoder-opt", "cpu-used=4")
    assert result.exit_code == 3
    assert "libx264 has no option cpu-used" in error_line(result)
    assert_clean(tmp_path)


# -- bit depth ------------------------------------------------------------------------------------
def test_a_10_bit_source_gives_a_10_bit_output_by_default(clip, tmp_path):
    src = clip("hevc10.mkv")
    assert video_stream(src).pix_fmt == "yuv420p10le"
    summary = upscale_video(src, tmp_path / "out.mp4", NearestUpscaler(), progress=False, preset="ultrafast")
    video = video_stream(tmp_path / "out.mp4")
    assert (video.codec, video.pix_fmt) == ("h264", "yuv420p10le")
    assert any("10-bit source: upscaled at 8 bit, encoded as 10-bit yuv420p10le" in n for n in summary.notes)
    summary = upscale_video(src, tmp_path / "x265.mkv", NearestUpscaler(), progress=False, codec="libx265",
                            preset="ultrafast")
    assert video_stream(tmp_path / "x265.mkv").pix_fmt == "yuv420p10le"


def test_the_summary_says_when_depth_is_reduced(clip, tmp_path):
    src = clip("hevc10.mkv")
    summary = upscale_video(src, tmp_path / "a.mp4", NearestUpscaler(), progress=False, pix_fmt="yuv420p")
    assert video_stream(tmp_path / "a.mp4").pix_fmt == "yuv420p"
    assert "10-bit source written as 8-bit yuv420p (--pix-fmt yuv420p)" in summary.notes
    if has_encoder("libopenh264"):
        summary = upscale_video(src, tmp_path / "b.mp4", NearestUpscaler(), progress=False, codec="libopenh264")
        assert "10-bit source written as 8-bit yuv420p (libopenh264 has no deeper pixel format)" in summary.notes
    eight = upscale_video(clip("silent.mp4"), tmp_path / "c.mp4", NearestUpscaler(), progress=False)
    assert not any("bit" in n for n in eight.notes)
    assert video_stream(tmp_path / "c.mp4").pix_fmt == "yuv420p"


# -- output size ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "flags, size",
    [
        (("--outscale", "2"), (128, 96)),
        (("--outscale", "4"), (256, 192)),
        (("--width", "200"), (200, 150)),
        (("--height", "100"), (134, 100)),  # 133.3 rounded to even for yuv420p
        (("--width", "150", "--height", "100"), (150, 100)),
    ],
)
def test_outscale_width_height_give_the_probed_size(clip, tmp_path, flags, size):
    dst = tmp_path / "out.mp4"
    result = cli(clip("silent.mp4"), dst, "--model", "bicubic", "-q", *flags)
    assert result.exit_code == 0, result.stderr
    assert (video_stream(dst).width, video_stream(dst).height) == size
    assert frame_timing(dst).frames == 15


def test_downscale_is_an_area_average_of_the_x4_frames(clip, tmp_path):
    """ffv1 keeps RGB exactly: the output is the x4 frames averaged 2x2, as OpenCV's INTER_AREA does."""
    import cv2

    from vsr.video.reader import read_frames

    src, dst = clip("silent.mp4"), tmp_path / "out.mkv"
    summary = upscale_video(src, dst, NearestUpscaler(), codec="ffv1", outscale=2, progress=False)
    assert summary.output_size == (128, 96)
    x4 = NearestUpscaler().upscale(read_frames(src))
    expected = np.stack([cv2.resize(f, (128, 96), interpolation=cv2.INTER_AREA) for f in x4])
    np.testing.assert_array_equal(read_frames(dst), expected)


def test_output_size_in_segments_matches_and_is_part_of_the_resume_identity(clip, tmp_path):
    src, dst = clip("silent.mp4"), tmp_path / "out.mp4"
    summary = upscale_video(
        src, dst, NearestUpscaler(), outscale=2, encoder_options=["g=5"], segment_seconds=0.2,
        identity={"model": "nearest"}, progress=False,
    )
    assert summary.output_size == (128, 96) and summary.frames == 15
    assert (video_stream(dst).width, video_stream(dst).height) == (128, 96)
    assert_clean(tmp_path, {"out.mp4"})

    # A work folder remembers the encoder options and the size; another job is refused until --restart.
    other = tmp_path / "other.mp4"
    job = plan_video(src, other, encoder_options=["g=5"], outscale=2)
    plan_segmented(job, identity={"model": "nearest"}, segment_seconds=0.2)
    manifest = (work_folder_for(other) / "manifest.json").read_text()
    assert '"g=5"' in manifest and '"outscale": 2.0' in manifest
    for options, words in [
        ({"encoder_options": ["g=6"], "outscale": 2}, "encoder_options ['g=5'] -> ['g=6']"),
        ({"encoder_options": ["g=5"], "outscale": 3}, "output size"),
        ({"encoder_options": ["g=5"], "outscale": 2, "codec": "libx265"}, "codec libx264 -> libx265"),
    ]:
        changed = plan_video(src, other, **options)
        with pytest.raises(OutputError, match="--restart") as caught:
            plan_segmented(changed, identity={"model": "nearest"}, segment_seconds=0.2)
        assert words in str(caught.value)
    plan_segmented(plan_video(src, other, encoder_options=["g=5"], outscale=2), identity={"model": "nearest"},
                   segment_seconds=0.2)  # the same job resumes


def test_images_take_the_same_size_options(clip, tmp_path):
    still = clip("still.png")  # 33x21
    summary = upscale_image(still, tmp_path / "a.png", NearestUpscaler(), outscale=2)
    assert read_image(tmp_path / "a.png").shape == (42, 66, 3) and summary.output_size == (66, 42)
    upscale_image(still, tmp_path / "b.png", NearestUpscaler(), width=100)
    assert read_image(tmp_path / "b.png").shape == (64, 100, 3)  # 63.6, no even rule for PNG
    results = upscale_path(still, tmp_path / "c.jpg", NearestUpscaler, height=50)
    assert read_image(tmp_path / "c.jpg").shape == (50, 79, 3)
    assert results[0].summary.output_size == (79, 50)
    with pytest.raises(OutputError, match="at most x4"):
        upscale_image(still, tmp_path / "d.png", NearestUpscaler(), width=200)
    assert_clean(tmp_path, {"a.png", "b.png", "c.jpg"})


@pytest.mark.parametrize(
    "flags, code, words",
    [
        (("--outscale", "0"), 2, "(0, 4]"),
        (("--outscale", "5"), 2, "(0, 4]"),
        (("--outscale", "-1"), 2, "(0, 4]"),
        (("--outscale", "nan"), 2, "(0, 4]"),
        (("--outscale", "big"), 2, "(0, 4]"),
        (("--width", "0"), 2, "positive number of pixels"),
        (("--height", "-4"), 2, "positive number of pixels"),
        (("--width", "1e3"), 2, "positive number of pixels"),
        (("--outscale", "2", "--width", "100"), 2, "alternatives"),
        (("--width", "300"), 3, "at most x4 (256x192)"),
        (("--width", "201"), 3, "multiple of 2; use 200 or 202"),
    ],
)
def test_size_nonsense_is_refused_in_one_line(clip, tmp_path, flags, code, words):
    result = cli(clip("silent.mp4"), tmp_path / "out.mp4", "--model", "bicubic", *flags)
    assert result.exit_code == code, result.stderr
    assert words in error_line(result)
    assert_clean(tmp_path)
