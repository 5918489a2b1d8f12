"""The video pipeline keeps what it promises: frames, timing, streams, metadata; and the image/folder paths.

Clips are made at test time (see test_video_clips.py); the upscaler is a nearest-neighbour stand-in,
so these tests check the plumbing, not the model. Each output is checked with the project's own probe.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from test_video_clips import NearestUpscaler, assert_clean, clip_maker

from vsr.errors import OutputError
from vsr.video.formats import resolve_encode_options
from vsr.video.image import read_image, read_image_with_alpha
from vsr.video.jobs import upscale_image, upscale_path, upscale_video
from vsr.video.probe import frame_timing, probe
from vsr.video.reader import read_frames


@pytest.fixture(scope="session")
def clip(tmp_path_factory):
    return clip_maker(tmp_path_factory)


def run(src, dst, **options):
    options.setdefault("progress", False)
    return upscale_video(src, dst, NearestUpscaler(), **options)


def assert_same_timing(src, dst, *, exact=True):
    """Same frame count, frame rate and per-frame times (exact, or within 1 ms for ms-based containers)."""
    a, b = frame_timing(src), frame_timing(dst)
    assert b.frames == a.frames
    assert b.frame_rate == a.frame_rate
    if exact:
        assert b.seconds == pytest.approx(a.seconds, abs=1e-9)
    else:
        assert b.seconds == pytest.approx(a.seconds, abs=0.0011)
    return a, b


def test_mp4_keeps_frames_timing_audio_and_size(clip, tmp_path):
    src, dst = clip("av.mp4"), tmp_path / "out.mp4"
    summary = run(src, dst)
    a, b = assert_same_timing(src, dst)
    assert a.frame_rate == Fraction(30000, 1001)
    assert b.size == (256, 192)
    assert (summary.frames, summary.input_size, summary.output_size) == (20, (64, 48), (256, 192))
    info_in, info_out = probe(src), probe(dst)
    assert [s.codec for s in info_out.streams] == ["h264", "aac"]
    assert info_out.duration == pytest.approx(info_in.duration, abs=1 / 29.97)
    assert summary.notes == []
    assert_clean(tmp_path, {"out.mp4"})


def test_audio_is_stream_copied_bit_exact(clip, tmp_path):
    """Copy, not re-encode: the audio packets of input and output hash the same."""
    import subprocess

    from test_video_clips import fixture_ffmpeg

    src, dst = clip("av.mp4"), tmp_path / "out.mp4"
    run(src, dst)

    def audio_md5(path):
        out = subprocess.run(
            [fixture_ffmpeg(), "-v", "error", "-i", str(path), "-map", "0:a", "-c", "copy", "-f", "md5", "-"],
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip()

    assert audio_md5(dst) == audio_md5(src)


def test_every_track_subtitles_chapters_and_metadata_are_kept(clip, tmp_path):
    for src_name, dst_name, subtitle in [
        ("rich.mkv", "out.mkv", "subrip"),
        ("rich.mp4", "out.mp4", "mov_text"),
        ("rich.mkv", "out2.mp4", "mov_text"),
    ]:
        src, dst = clip(src_name), tmp_path / dst_name
        summary = run(src, dst)
        info = probe(dst)
        kinds = [s.kind for s in info.streams if s.kind != "data"]  # mp4 chapters add a text track
        fonts = ["attachment"] if dst.suffix == src.suffix == ".mkv" else []
        assert kinds == ["video", "audio", "audio", "subtitle", *fonts], dst_name
        assert info.of_kind("audio")[1].language == "fra"
        assert info.of_kind("subtitle")[0].codec == subtitle
        assert info.tag("title") == "Test clip"
        assert info.tag("artist") == "vsr tests"
        assert [c.title for c in info.chapters] == ["One", "Two"]
        assert_same_timing(src, dst, exact=dst.suffix == src.suffix)
        if src.suffix != dst.suffix:
            assert "subtitles 1 converted subrip -> mov_text" in summary.notes
            assert "dropped attachment font.ttf (.mp4 cannot hold it)" in summary.notes


def test_subtitles_text_is_kept(clip, tmp_path):
    import subprocess

    from test_video_clips import fixture_ffmpeg

    dst = tmp_path / "out.mkv"
    run(clip("rich.mp4"), dst)
    text = subprocess.run(
        [fixture_ffmpeg(), "-v", "error", "-i", str(dst), "-map", "0:s:0", "-f", "srt", "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "hello" in text and "world" in text and "00:00:00,400 --> 00:00:00,600" in text


def test_audio_the_container_cannot_hold_is_reencoded_and_said(clip, tmp_path):
    dst = tmp_path / "out.webm"
    summary = run(clip("av.mp4"), dst)
    assert [s.codec for s in probe(dst).streams] == ["vp9", "opus"]
    assert any("re-encoded aac -> libopus" in n for n in summary.notes)
    assert_same_timing(clip("av.mp4"), dst, exact=False)


@pytest.mark.parametrize("segment_seconds", [0, 0.25])  # 0.25: three segments, the join muxes the cover
@pytest.mark.parametrize("src_name, dst_name", [
    ("cover.mp4", "out.mp4"), ("cover.mp4", "out.mkv"), ("cover.mkv", "out.mkv"), ("cover.mkv", "out.m4v"),
])
def test_cover_art_is_kept_as_it_is_and_is_no_frame_source(clip, tmp_path, src_name, dst_name, segment_seconds):
    from vsr.video.probe import attached_picture

    src, dst = clip(src_name), tmp_path / dst_name
    summary = run(src, dst, segment_seconds=segment_seconds, identity={"model": "nearest"})
    assert summary.notes == [] and summary.frames == 20
    a, b = frame_timing(src), frame_timing(dst)  # the cover is not the video the timing is read from
    assert b.frames == a.frames == 20
    assert b.seconds == pytest.approx(a.seconds, abs=1e-9 if src.suffix == dst.suffix else 0.0011)
    source, out = probe(src), probe(dst)
    assert (out.video.codec, out.video.width, out.video.height) == ("h264", 256, 192)
    [cover_in] = [s for s in source.streams if s.attached_pic]
    [cover] = [s for s in out.streams if s.attached_pic]
    assert (cover.codec, cover.width, cover.height) == ("mjpeg", 32, 32)  # not upscaled
    assert attached_picture(dst, cover.index) == attached_picture(src, cover_in.index) == clip("cover.jpg").read_bytes()
    if dst.suffix == ".mkv":
        assert cover.metadata.get("filename") == "cover.jpg" and cover.metadata.get("mimetype") == "image/jpeg"
    assert [s.kind for s in out.streams if not s.attached_pic] == ["video", "audio"]
    assert_clean(tmp_path, {dst.name})


def test_mp4_keeps_a_phones_metadata_keys_before_cover_art(clip, tmp_path):
    """ffmpeg writes MP4 cover art only without use_metadata_tags, which vendor keys need: keys win."""
    from test_video_clips import ffmpeg

    src, dst = tmp_path / "phone.mkv", tmp_path / "out.mp4"
    ffmpeg(
        "-i", clip("cover.mp4"), "-map 0:0 -map 0:1 -c copy -attach", clip("cover.jpg"),
        "-metadata:s:t mimetype=image/jpeg -metadata com.apple.quicktime.make=vsr", src,
    )
    summary = run(src, dst)
    assert any(n.startswith("dropped cover art #2 (.mp4 cannot hold it beside metadata such as") for n in summary.notes)
    assert probe(dst).tag("com.apple.quicktime.make") == "vsr"
    assert not any(s.attached_pic for s in probe(dst).streams)


@pytest.mark.parametrize("dst_name", ["out.webm", "out.mov"])
def test_cover_art_a_container_cannot_hold_is_dropped_and_said(clip, tmp_path, dst_name):
    dst = tmp_path / dst_name
    summary = run(clip("cover.mp4"), dst)
    assert f"dropped cover art #2 ({dst.suffix} cannot hold it)" in summary.notes
    assert not any(s.attached_pic for s in probe(dst).streams)
    assert frame_timing(dst).frames == 20


def test_rotated_phone_video_comes_out_upright(clip, tmp_path):
    dst = tmp_path / "out.mp4"
    summary = run(clip("rotated.mp4"), dst)
    video = probe(dst).video
    assert (video.width, video.height, video.rotation) == (192, 256, 0.0)
    assert frame_timing(dst).size == (192, 256)
    assert any("rotation" in n for n in summary.notes)
    # The frames themselves are turned, not just relabelled: the output is the upright source, x4.
    upright = read_frames(clip("rotated.mp4"), limit=1)
    assert upright.shape == (1, 64, 48, 3)
    out = read_frames(dst, limit=1)[0, ::4, ::4].astype(float)
    assert np.abs(out - upright[0]).mean() < 8  # lossy twice over; a wrong turn would be far off
    assert np.abs(out - upright[0, ::-1, ::-1]).mean() > 30


def test_variable_frame_rate_keeps_every_timestamp(clip, tmp_path):
    src, dst = clip("vfr.mp4"), tmp_path / "out.mp4"
    run(src, dst)
    a, b = assert_same_timing(src, dst)
    assert not b.is_constant_rate
    assert b.time_base == a.time_base == Fraction(1, 90000)


def test_variable_frame_rate_into_mkv_keeps_timestamps_to_the_millisecond(clip, tmp_path):
    src, dst = clip("vfr.mp4"), tmp_path / "out.mkv"
    run(src, dst)
    assert_same_timing(src, dst, exact=False)


def test_av_sync_kept_when_video_starts_late(clip, tmp_path):
    src, dst = clip("late_video.mp4"), tmp_path / "out.mp4"
    run(src, dst)
    a, _ = assert_same_timing(src, dst)
    assert a.seconds[0] == pytest.approx(0.5, abs=0.002)
    assert probe(dst).duration == pytest.approx(probe(src).duration, abs=0.034)


def test_video_shorter_than_its_audio_is_not_mistaken_for_truncated(clip, tmp_path):
    src, dst = clip("short_video.mp4"), tmp_path / "out.mp4"
    run(src, dst)
    assert frame_timing(dst).frames == 10
    assert probe(dst).duration == pytest.approx(probe(src).duration, abs=0.05)


def test_damaged_input_is_processed_and_said(clip, tmp_path):
    src, dst = clip("damaged.mp4"), tmp_path / "out.mp4"
    summary = run(src, dst, preset="ultrafast")
    assert any(n.startswith("input is damaged: ffmpeg reported") for n in summary.notes), summary.notes
    assert_same_timing(src, dst)  # every frame ffmpeg can decode, at its own time


def test_odd_sizes_and_no_audio(clip, tmp_path):
    dst = tmp_path / "out.mp4"
    run(clip("odd.mkv"), dst)
    assert frame_timing(dst).size == (148, 92)
    assert [s.kind for s in probe(dst).streams] == ["video"]
    dst2 = tmp_path / "silent.mkv"
    run(clip("silent.mp4"), dst2, batch=3)  # 15 frames in batches of 3
    assert frame_timing(dst2).frames == 15


def test_pixel_aspect_ratio_is_kept(clip, tmp_path):
    dst = tmp_path / "out.mp4"
    run(clip("anamorphic.mkv"), dst)
    assert frame_timing(clip("anamorphic.mkv")).sar == frame_timing(dst).sar == Fraction(32, 27)


def test_awkward_relative_file_names(clip, tmp_path, monkeypatch):
    """Names ffmpeg could take for an option (leading dash) or a protocol (``name:``)."""
    import shutil

    shutil.copy(clip("silent.mp4"), tmp_path / "-in:put.mp4")
    monkeypatch.chdir(tmp_path)
    run(Path("-in:put.mp4"), Path("-out: x4.mp4"))
    assert frame_timing(tmp_path / "-out: x4.mp4").frames == 15


def test_colours_survive_the_matrix_change(clip, tmp_path):
    """A BT.601-tagged source comes out BT.709-tagged with the same RGB (within compression noise)."""
    src, dst = clip("bt601.mp4"), tmp_path / "out.mp4"
    run(src, dst, crf=10)
    assert probe(src).video.color_space == "bt470bg" and probe(dst).video.color_space == "bt709"
    before, after = read_frames(src).astype(float), read_frames(dst)[:, ::4, ::4].astype(float)
    assert np.median(np.abs(after - before)) <= 2  # read back with the wrong matrix it is 4


def test_untagged_hd_is_read_as_bt709_like_players_do():
    from vsr.video.probe import StreamInfo
    from vsr.video.reader import decoder_command, untagged_matrix

    hd, sd = (
        StreamInfo(0, "video", "h264", width=1280, height=720),
        StreamInfo(0, "video", "h264", width=640, height=480),
    )
    tagged = StreamInfo(0, "video", "h264", width=1920, height=1080, color_space="bt470bg")
    assert (untagged_matrix(hd), untagged_matrix(sd), untagged_matrix(tagged)) == ("bt709", None, None)
    assert "in_color_matrix=bt709" in " ".join(decoder_command(Path("x.mp4"), 0, color_matrix="bt709"))


def test_lossless_output_holds_exactly_the_upscaled_frames_in_order(clip, tmp_path):
    """ffv1 keeps RGB bit-exact: the output is frame-for-frame the upscaler's output, none lost or reordered."""
    src, dst = clip("silent.mp4"), tmp_path / "out.mkv"
    run(src, dst, codec="ffv1", batch=4)

    expected = NearestUpscaler().upscale(read_frames(src))
    np.testing.assert_array_equal(read_frames(dst), expected)


@pytest.mark.parametrize(
    "name, codec, pix_fmt, expected_codec",
    [
        ("x265.mkv", "libx265", "yuv420p10le", "hevc"),
        ("vp9.webm", None, None, "vp9"),
        ("x264_10bit.mp4", "libx264", "yuv420p10le", "h264"),
        ("x265.mp4", "libx265", None, "hevc"),
    ],
)
def test_codecs_and_10_bit(clip, tmp_path, name, codec, pix_fmt, expected_codec):
    dst = tmp_path / name
    run(clip("silent.mp4"), dst, codec=codec, pix_fmt=pix_fmt, crf=30, preset="ultrafast" if codec else None)
    video = probe(dst).video
    assert video.codec == expected_codec
    assert frame_timing(dst).frames == 15


def test_encode_options_are_checked_before_any_work(tmp_path):
    ok = resolve_encode_options(tmp_path / "a.mp4")
    assert (ok.codec.name, ok.crf, ok.preset, ok.pix_fmt) == ("libx264", 18, "medium", "yuv420p")
    assert resolve_encode_options(tmp_path / "a.mkv", "ffv1").pix_fmt == "bgr0"
    for kwargs, words in [
        ({"codec": "libx264", "dst": tmp_path / "a.webm"}, "cannot hold libx264"),
        ({"codec": "libx264", "crf": 99}, "out of range"),
        ({"codec": "ffv1", "crf": 10, "dst": tmp_path / "a.mkv"}, "takes no --crf"),
        ({"codec": "libvpx-vp9", "preset": "fast"}, "takes no --preset"),
        ({"codec": "libx264", "preset": "warp"}, "unknown --preset"),
        ({"codec": "libx264", "pix_fmt": "rgb48be"}, "cannot encode --pix-fmt"),
        ({"codec": "x264"}, "unknown --codec"),
        ({"codec": "aac"}, "audio encoder"),
    ]:
        dst = kwargs.pop("dst", tmp_path / "a.mp4")
        with pytest.raises(OutputError, match=words):
            resolve_encode_options(dst, **kwargs)


def test_progress_bar_goes_to_stderr(clip, tmp_path, capfd):
    run(clip("av.mp4"), tmp_path / "out.mp4", progress=True)
    out, err = capfd.readouterr()
    assert out == ""
    assert "frame" in err


@pytest.fixture
def bar_totals(monkeypatch):
    """(total, n) of every progress bar the pipeline closes (close() runs twice: once more on garbage collection)."""
    from vsr.video import pipeline

    totals = []

    class Recorded(pipeline.tqdm):
        def close(self):
            totals.append((self.total, self.n))
            super().close()

    monkeypatch.setattr(pipeline, "tqdm", Recorded)
    return totals


@pytest.mark.parametrize("segment_seconds", [0, 0.5])
def test_progress_total_is_the_real_frame_count_at_a_variable_rate(clip, tmp_path, bar_totals, segment_seconds):
    """1 s at 10 fps + 1 s at 30 fps: 40 frames, not duration x the 30 fps Matroska reports (61)."""
    src, dst = clip("vfr_mixed.mkv"), tmp_path / "out.mkv"
    assert not frame_timing(src).is_constant_rate
    summary = run(src, dst, progress=True, segment_seconds=segment_seconds, identity={"model": "nearest"})
    assert summary.frames == frame_timing(dst).frames == 40
    assert set(bar_totals) == {(40, 40)}


@pytest.mark.parametrize("segment_seconds", [0, 0.5])
@pytest.mark.parametrize("start, duration, frames", [(0.5, 1, 20), (0.55, 1, 22), (1.5, None, 15), (0, 0.75, 8)])
def test_progress_total_of_a_trimmed_variable_rate_video_counts_its_span(
    clip, tmp_path, bar_totals, segment_seconds, start, duration, frames
):
    """The span's own frames (0.5-1.5 s: 5 at 10 fps + 15 at 30 fps = 20), not span x 30 fps (30)."""
    dst = tmp_path / "out.mkv"
    options = dict(start=start, duration=duration, segment_seconds=segment_seconds, identity={"model": "nearest"})
    summary = run(clip("vfr_mixed.mkv"), dst, progress=True, **options)
    assert summary.frames == frame_timing(dst).frames == frames
    assert set(bar_totals) == {(frames, frames)}


def test_summary_line(clip, tmp_path):
    summary = run(clip("av.mp4"), tmp_path / "out.mp4")
    line = str(summary)
    assert "\n" not in line and "20 frames 64x48 -> 256x192" in line and "fps" in line
    assert summary.fps > 0 and summary.seconds > 0


# -- images ---------------------------------------------------------------------------------------
def test_image_upscale_and_alpha(clip, tmp_path):
    summary = upscale_image(clip("still.png"), tmp_path / "big.png", NearestUpscaler())
    assert read_image(tmp_path / "big.png").shape == (84, 132, 3)
    assert summary.output_size == (132, 84)
    _, alpha, _ = read_image_with_alpha(clip("alpha.png"))
    assert alpha is not None and alpha.shape == (12, 16)
    upscale_image(clip("alpha.png"), tmp_path / "alpha_big.png", NearestUpscaler())
    _, alpha2, _ = read_image_with_alpha(tmp_path / "alpha_big.png")
    assert alpha2.shape == (48, 64) and alpha2[:, 0].max() < 16 and alpha2[:, -1].min() > 200
    summary = upscale_image(clip("alpha.png"), tmp_path / "alpha_big.jpg", NearestUpscaler())
    assert any("alpha dropped" in n for n in summary.notes)
    assert_clean(tmp_path, {"big.png", "alpha_big.png", "alpha_big.jpg"})


def _photo(path: Path, orientation: int, *, alpha: bool = False) -> np.ndarray:
    """A 24x16 (stored) photo with a camera's EXIF (``orientation`` as given); returns its upright RGB(A)."""
    from PIL import Image, ImageOps

    rng = np.random.default_rng(orientation)
    pixels = rng.integers(0, 256, (16, 24, 4 if alpha else 3), dtype=np.uint8)
    if alpha:
        pixels[..., 3] = np.arange(24, dtype=np.uint8) * 10  # a left-to-right ramp shows any turn
    exif = Image.Exif()
    exif.update({0x010F: "Canon", 0x0110: "EOS R5", 0x0132: "2021:05:06 07:08:09", 0x0112: orientation})
    exif.get_ifd(0x8769).update({0x9003: "2021:05:06 07:08:09", 0xA002: 24, 0xA003: 16})
    exif.get_ifd(0x8825).update({1: "N", 2: (48.0, 51.0, 29.5), 3: "E", 4: (2.0, 17.0, 40.2)})
    options = {"quality": 100, "subsampling": 0} if path.suffix == ".jpg" else {}
    Image.fromarray(pixels).save(path, exif=exif.tobytes(), **options)
    with Image.open(path) as im:
        return np.asarray(ImageOps.exif_transpose(im))


def _exif_of(path: Path) -> tuple[dict, dict, dict]:
    from PIL import Image

    with Image.open(path) as im:
        exif = im.getexif()
        return dict(exif), dict(exif.get_ifd(0x8769)), dict(exif.get_ifd(0x8825))


@pytest.mark.parametrize("out_ext", [".jpg", ".png", ".webp", ".tiff"])
def test_image_keeps_its_exif_with_the_orientation_applied(tmp_path, out_ext):
    """Date, camera and GPS survive; the quarter turn is in the pixels and the tag says 1 (upright)."""
    from click.testing import CliRunner

    from vsr.video.command import upscale_command

    src, dst = tmp_path / "photo.jpg", tmp_path / f"out{out_ext}"
    _photo(src, 6)
    result = CliRunner().invoke(upscale_command, [str(src), str(dst), "--model", "bicubic"])
    assert result.exit_code == 0, result.output
    main, sub, gps = _exif_of(dst)
    assert (main[0x010F], main[0x0110], main[0x0132]) == ("Canon", "EOS R5", "2021:05:06 07:08:09")
    assert main.get(0x0112, 1) == 1
    assert sub[0x9003] == "2021:05:06 07:08:09"
    assert (sub[0xA002], sub[0xA003]) == (64, 96)  # the output's size, upright: 16x24 stored, turned, x4
    assert (gps[1], gps[3]) == ("N", "E") and tuple(map(float, gps[2])) == (48.0, 51.0, 29.5)
    assert read_image(dst).shape == (96, 64, 3)
    assert_clean(tmp_path, {"photo.jpg", dst.name})


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("ext", [".jpg", ".png", ".webp", ".tif"])
def test_every_exif_orientation_is_applied_as_pillow_applies_it(tmp_path, orientation, ext):
    src = tmp_path / f"photo{ext}"
    upright = _photo(src, orientation)
    rgb = read_image(src)
    assert rgb.shape == upright.shape
    assert np.abs(rgb.astype(int) - upright).max() <= (4 if ext == ".jpg" else 0)


def test_alpha_is_turned_with_the_pixels_and_exif_written_without_opencvs_metadata_writer(tmp_path, monkeypatch):
    import cv2

    from vsr.video import image

    src = tmp_path / "photo.png"
    upright = _photo(src, 8, alpha=True)
    monkeypatch.delattr(cv2, "imencodeWithMetadata", raising=False)  # OpenCV < 4.12: Pillow writes the EXIF
    summary = upscale_image(src, tmp_path / "big.png", NearestUpscaler())
    still = image.read_still(tmp_path / "big.png")
    np.testing.assert_array_equal(still.rgb[::4, ::4], upright[..., :3])
    assert still.alpha.shape == (96, 64)
    assert np.abs(still.alpha[::4, ::4].astype(int) - upright[..., 3]).max() <= 8  # bicubic; a wrong turn: 200
    assert _exif_of(tmp_path / "big.png")[0][0x010F] == "Canon"
    assert summary.notes == ["alpha upscaled bicubically"]
    summary = upscale_image(src, tmp_path / "big.bmp", NearestUpscaler())
    assert "EXIF dropped (.bmp has none)" in summary.notes


def test_an_image_without_exif_gets_none(clip, tmp_path):
    from vsr.video.image import read_still

    assert read_still(clip("still.png")).exif is None
    upscale_image(clip("still.png"), tmp_path / "big.tif", NearestUpscaler())
    assert read_still(tmp_path / "big.tif").exif is None  # nor does its output, which stays compressed


# -- folders --------------------------------------------------------------------------------------
def test_folder_processes_videos_and_images_skips_done_and_goes_on_after_failure(clip, tmp_path):
    import shutil

    inbox, outbox = tmp_path / "in", tmp_path / "out"
    inbox.mkdir()
    shutil.copy(clip("av.mp4"), inbox / "a.mp4")
    shutil.copy(clip("odd.mkv"), inbox / "b.avi")  # a container we do not write: becomes b.mkv
    shutil.copy(clip("text.mp4"), inbox / "c.mp4")  # fails
    shutil.copy(clip("still.png"), inbox / "d.png")
    (inbox / "notes.txt").write_text("not media")
    loads = []

    def factory():
        loads.append(1)
        return NearestUpscaler()

    results = upscale_path(inbox, outbox, factory, progress=False)
    assert [(r.source.name, r.output.name, r.status) for r in results] == [
        ("a.mp4", "a.mp4", "done"),
        ("b.avi", "b.mkv", "done"),
        ("c.mp4", "c.mp4", "failed"),
        ("d.png", "d.png", "done"),
    ]
    failed = results[2]
    assert "c.mp4" in str(failed) and "\n" not in str(failed)
    assert sorted(p.name for p in outbox.iterdir()) == ["a.mp4", "b.mkv", "d.png"]
    assert frame_timing(outbox / "b.mkv").frames == 12

    # Second run: everything done is skipped and the model is never loaded.
    loads.clear()
    again = upscale_path(inbox, outbox, factory, progress=False)
    assert [r.status for r in again] == ["skipped", "skipped", "failed", "skipped"]
    assert loads == []
    assert_clean(outbox, {"a.mp4", "b.mkv", "d.png"})


def _tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def _photo_album(clip, root: Path) -> Path:
    """in/top.png, in/2019/a.png, in/2019/summer/b.mp4, in/2020/c.png, in/.cache/d.png, in/x4/ (the output)."""
    import shutil

    inbox = root / "in"
    for sub in ("2019/summer", "2020", ".cache", "x4", "old.mp4.vsr-work"):
        (inbox / sub).mkdir(parents=True)
    shutil.copy(clip("still.png"), inbox / "top.png")
    shutil.copy(clip("still.png"), inbox / "2019" / "a.png")
    shutil.copy(clip("silent.mp4"), inbox / "2019" / "summer" / "b.mp4")
    shutil.copy(clip("still.png"), inbox / "2020" / "c.png")
    shutil.copy(clip("still.png"), inbox / ".cache" / "d.png")
    shutil.copy(clip("silent.mp4"), inbox / "old.mp4.vsr-work" / "seg-00000.mp4")
    return inbox


def test_folder_says_which_subfolders_it_skipped(clip, tmp_path):
    from click.testing import CliRunner

    from vsr.video.command import upscale_command

    inbox = _photo_album(clip, tmp_path)
    result = CliRunner().invoke(upscale_command, [str(inbox), str(inbox / "x4"), "--model", "bicubic"])
    assert result.exit_code == 0, result.output
    # The hidden folder, a work folder and the output folder are not the user's subfolders.
    assert f"{inbox}: skipped 2 subfolders (use --recursive): 2019, 2020\n" in result.stdout
    assert _tree(inbox / "x4") == ["top.png"]
    quiet = CliRunner().invoke(upscale_command, [str(inbox), str(inbox / "x4"), "--model", "bicubic", "-q"])
    assert quiet.exit_code == 0 and quiet.output == ""


def test_folder_recursive_mirrors_the_subfolder_tree(clip, tmp_path):
    from click.testing import CliRunner

    from vsr.video.command import upscale_command

    inbox = _photo_album(clip, tmp_path)
    args = [str(inbox), str(inbox / "x4"), "--model", "bicubic", "--recursive", "--preset", "ultrafast"]
    result = CliRunner().invoke(upscale_command, args)
    assert result.exit_code == 0, result.output
    assert "subfolder" not in result.stdout and "4 done, 0 skipped, 0 failed" in result.stdout
    assert _tree(inbox / "x4") == ["2019/a.png", "2019/summer/b.mp4", "2020/c.png", "top.png"]
    assert frame_timing(inbox / "x4" / "2019" / "summer" / "b.mp4").frames == 15
    assert read_image(inbox / "x4" / "2020" / "c.png").shape == (84, 132, 3)
    again = CliRunner().invoke(upscale_command, args)  # the output inside the input is never an input
    assert again.exit_code == 0 and "0 done, 4 skipped, 0 failed" in again.stdout
    assert_clean(inbox / "x4", {"top.png", "2019", "2020"})


def test_folder_with_media_only_in_subfolders_points_at_recursive(clip, tmp_path):
    import shutil

    from vsr.errors import InputError

    inbox = tmp_path / "in"
    (inbox / "trip").mkdir(parents=True)
    shutil.copy(clip("still.png"), inbox / "trip" / "a.png")
    with pytest.raises(InputError, match=r"in this folder \(1 subfolder not searched: use --recursive\)$"):
        upscale_path(inbox, tmp_path / "out", NearestUpscaler, progress=False)
    results = upscale_path(inbox, tmp_path / "out", NearestUpscaler, progress=False, recursive=True)
    assert [(r.output.relative_to(tmp_path / "out").as_posix(), r.status) for r in results] == [("trip/a.png", "done")]


def test_single_file_into_existing_folder(clip, tmp_path):
    results = upscale_path(clip("av.mp4"), tmp_path, NearestUpscaler, progress=False)
    assert results[0].output == tmp_path / "av.mp4" and results[0].status == "done"


def test_memory_stays_flat_however_long_the_video(clip, tmp_path):
    """Peak Python-side memory (numpy buffers included) for 600 frames is that of 20: bounded queues."""
    import tracemalloc

    def peak(src, dst):
        tracemalloc.start()
        try:
            upscale_video(src, dst, NearestUpscaler(), batch=4, preset="ultrafast", progress=False)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    short = peak(clip("av.mp4"), tmp_path / "short.mp4")
    long = peak(clip("long.mp4"), tmp_path / "long.mp4")
    upscaled_frame = 256 * 192 * 3
    assert long < 2 * short + 2_000_000
    assert long < 40 * upscaled_frame  # 600 frames would be 600 of them
    assert frame_timing(tmp_path / "long.mp4").frames == 600


def test_layers_import_downwards_only():
    """jobs -> segmented -> pipeline -> I/O: the frame pipeline imports neither layer above it."""
    import subprocess
    import sys

    code = ("import sys, vsr.video.pipeline; "
            "print(sorted(m for m in sys.modules if m in ('vsr.video.segmented', 'vsr.video.jobs')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
