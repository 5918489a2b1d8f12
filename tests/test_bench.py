"""vsr bench: dataset layouts, the quality runner, reports, the click command, and the
acceptance reproductions on the shared datasets (skipped when ../shared/datasets is absent)."""

import csv
import json
import math

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from vsr.bench import datasets as bench_datasets
from vsr.bench.command import bench_command
from vsr.bench.datasets import open_dataset
from vsr.bench.report import format_table
from vsr.bench.runner import run_quality_bench
from vsr.errors import DataError, InputError, ModelError
from vsr.models.bicubic import BicubicUpscaler
from vsr.quality import crop_to_multiple, degrade_bi, imresize, score

from conftest import shared_datasets


def scene(h, w, seed=0, shift=0):
    """Smooth uint8 RGB content (H, W, 3), optionally translated ``shift`` px to the right."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    x = x - shift
    img = np.stack([128 + 80 * np.sin(x / 6 + y / 9), 128 + 80 * np.cos(x / 8 - y / 5),
                    128 + 60 * np.sin((x + y) / 7)], -1)
    return np.clip(img + rng.normal(0, 3, img.shape), 0, 255).astype(np.uint8)


def write_rgb(path, rgb):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


@pytest.fixture
def image_folder(tmp_path):
    """Three images: one not a multiple of 4 (35x42), one greyscale file."""
    folder = tmp_path / "imgs"
    write_rgb(folder / "a.png", scene(32, 40, 1))
    write_rgb(folder / "b.png", scene(35, 42, 2))
    folder.mkdir(exist_ok=True)
    cv2.imwrite(str(folder / "c.png"), scene(32, 32, 3)[..., 1])
    (folder / "notes.txt").write_text("ignored")
    return folder


@pytest.fixture
def vid4_folder(tmp_path):
    """Vid4 layout: GT/alpha (4 frames), GT/beta (3 frames), 48x64, content moving 1 px a frame."""
    root = tmp_path / "vid"
    for seq, n, seed in (("alpha", 4, 5), ("beta", 3, 6)):
        for t in range(n):
            write_rgb(root / "GT" / seq / f"{t:08d}.png", scene(48, 64, seed, shift=t))
    return root


class Nearest:
    """A second upscaler of the interface: pixel replication."""

    scale = 4

    def upscale(self, frames):
        return np.repeat(np.repeat(frames, 4, axis=1), 4, axis=2)


def test_bicubic_upscaler_interface():
    frames = np.stack([scene(8, 10, s) for s in range(2)])
    out = BicubicUpscaler().upscale(frames)
    assert out.shape == (2, 32, 40, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[1], imresize(frames[1], 4))
    with pytest.raises(ValueError):
        BicubicUpscaler().upscale(frames.astype(np.float32))


def test_image_folder_bench_matches_direct_scoring(image_folder):
    ds = open_dataset(image_folder)
    assert ds.kind == "images" and [i.name for i in ds.items] == ["a", "b", "c"]
    res = run_quality_bench(ds, {"bicubic": BicubicUpscaler(4), "nearest": Nearest()}, progress=False)
    assert res.protocol["crop_border"] == 4 and res.protocol["channel"] == "y"
    per_item = res.per_item()
    hr = crop_to_multiple(cv2.cvtColor(cv2.imread(str(image_folder / "b.png")), cv2.COLOR_BGR2RGB), 4)
    assert hr.shape == (32, 40, 3)
    expected = score(imresize(degrade_bi(hr), 4), hr, "y", 4)
    assert per_item["b"]["bicubic"]["psnr"] == pytest.approx(expected["psnr"], abs=1e-12)
    assert per_item["b"]["bicubic"]["ssim"] == pytest.approx(expected["ssim"], abs=1e-12)
    # The greyscale file is scored on its grey values (MATLAB convention).
    grey = cv2.imread(str(image_folder / "c.png"), cv2.IMREAD_UNCHANGED)
    grey_sr = imresize(imresize(grey, 0.25), 4)
    assert per_item["c"]["bicubic"]["psnr"] == pytest.approx(score(grey_sr, grey, "y", 4)["psnr"])
    mean = res.mean()
    assert mean["bicubic"]["psnr"] == pytest.approx(np.mean([per_item[i]["bicubic"]["psnr"] for i in "abc"]))
    assert mean["bicubic"]["psnr"] > mean["nearest"]["psnr"]
    assert mean["bicubic"]["tof"] is None


def test_vid4_bench_temporal_and_shipped_lr(vid4_folder):
    ds = open_dataset(vid4_folder)
    assert ds.kind == "video" and ds.frame_count() == 7 and ds.frame_count(max_frames=3) == 6
    res = run_quality_bench(ds, {"bicubic": BicubicUpscaler()}, progress=False, batch=3)
    assert res.protocol["crop_border"] == 0 and res.protocol["temporal"]
    assert res.protocol["lr_source"] == "made from GT"
    alpha = [f for f in res.frames if f.item == "alpha"]
    assert [f.frame for f in alpha] == ["00000000", "00000001", "00000002", "00000003"]
    # tOF for every frame but the first of each sequence, across the batch boundary too.
    assert alpha[0].tof is None and all(f.tof is not None and f.tof >= 0 for f in alpha[1:])
    mean = res.mean()["bicubic"]
    per_item = res.per_item()
    assert mean["psnr"] == pytest.approx((per_item["alpha"]["bicubic"]["psnr"]
                                          + per_item["beta"]["bicubic"]["psnr"]) / 2)
    # Shipped BIx4 frames are used when present: equal to ours, so the scores are equal.
    for item in ds.items:
        for p in item.hr_paths:
            rgb = cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)
            write_rgb(vid4_folder / "BIx4" / item.name / p.name, degrade_bi(rgb))
    shipped = run_quality_bench(open_dataset(vid4_folder), {"bicubic": BicubicUpscaler()},
                                progress=False, temporal=False)
    assert shipped.protocol["lr_source"] == "from BIx4/"
    assert shipped.mean()["bicubic"]["psnr"] == pytest.approx(mean["psnr"], abs=1e-12)
    # BD looks for BDx4/ and, finding none, makes its inputs from GT.
    bd = run_quality_bench(open_dataset(vid4_folder), {"bicubic": BicubicUpscaler()},
                           degradation="bd", progress=False, temporal=False, max_frames=2)
    assert bd.protocol["lr_source"] == "made from GT" and len(bd.frames) == 4


def test_shipped_lr_of_wrong_size_is_a_data_error(vid4_folder):
    for t in range(4):
        write_rgb(vid4_folder / "BIx4" / "alpha" / f"{t:08d}.png", scene(10, 10))
    with pytest.raises(DataError, match="LR must be GT / 4"):
        run_quality_bench(open_dataset(vid4_folder), {"bicubic": BicubicUpscaler()}, progress=False)
    (vid4_folder / "BIx4" / "alpha" / "00000003.png").unlink()
    with pytest.raises(DataError, match="lacks 00000003.png"):
        run_quality_bench(open_dataset(vid4_folder), {"bicubic": BicubicUpscaler()}, progress=False)


def test_models_of_different_scales_are_refused(image_folder):
    with pytest.raises(ModelError, match="differ in scale"):
        run_quality_bench(open_dataset(image_folder),
                          {"bicubic": BicubicUpscaler(4), "x2": BicubicUpscaler(2)}, progress=False)


def test_video_file_bench_reads_frames_from_the_video_reader(tmp_path, monkeypatch):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"not decoded: the reader is replaced")
    frames = [scene(32, 48, 9, shift=t) for t in range(5)]
    monkeypatch.setattr(bench_datasets, "_read_video",
                        lambda path, size: (frames[i:i + size] for i in range(0, len(frames), size)))
    ds = open_dataset(clip)
    assert ds.kind == "video" and ds.name == "clip.mp4"
    res = run_quality_bench(ds, {"bicubic": BicubicUpscaler()}, progress=False, max_frames=4, batch=3)
    assert [f.frame for f in res.frames] == ["00000000", "00000001", "00000002", "00000003"]
    direct = score(imresize(degrade_bi(frames[3]), 4), frames[3], "y", 0)
    assert res.frames[3].psnr == pytest.approx(direct["psnr"], abs=1e-12)


def test_cli_bench_on_a_real_clip(tmp_path):
    ffmpeg = pytest.importorskip("vsr.video.ffmpeg")
    import subprocess

    clip = tmp_path / "clip.mp4"
    subprocess.run([ffmpeg.ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=10",
                    "-frames:v", "6", "-pix_fmt", "yuv420p", str(clip)], check=True)
    result = CliRunner().invoke(bench_command, [str(clip), "--models", "bicubic", "--max-frames", "5", "-q"])
    assert result.exit_code == 0, result.output
    assert "clip.mp4" in result.stdout and "crop 0 px" in result.stdout and "tOF" in result.stdout
    assert "clip " in result.stdout
    out = tmp_path / "r"
    CliRunner().invoke(bench_command, [str(clip), "--models", "bicubic", "--max-frames", "5", "-q",
                                       "--no-tof", "--out", str(out)])
    assert len(json.loads((out / "results.json").read_text())["frames"]) == 5
    junk = tmp_path / "junk.mp4"
    junk.write_text("not a video")
    result = CliRunner().invoke(bench_command, [str(junk), "--models", "bicubic", "-q"])
    assert isinstance(result.exception, InputError)


def test_open_dataset_errors_and_named_sets(tmp_path, monkeypatch, image_folder):
    monkeypatch.setenv("VSR_DATASETS", str(tmp_path / "absent"))
    with pytest.raises(DataError, match="--data"):
        open_dataset("set5")
    with pytest.raises(InputError):
        open_dataset(tmp_path / "nothing-here")
    with pytest.raises(InputError, match="one image"):
        open_dataset(image_folder / "a.png")
    with pytest.raises(DataError, match="no images"):
        open_dataset((tmp_path / "empty").mkdir() or tmp_path / "empty")
    # --data may name the dataset folder itself or the folder that holds it.
    (image_folder.parent / "Set5").symlink_to(image_folder)
    assert open_dataset("SET5", data=image_folder.parent).name == "Set5"
    monkeypatch.setenv("VSR_DATASETS", str(image_folder.parent))
    assert len(open_dataset("set5").items) == 3


def test_niqe_column_scores_frames_large_enough(tmp_path):
    from vsr.quality.niqe import niqe

    folder = tmp_path / "imgs"
    write_rgb(folder / "big.png", scene(112, 136, 4))
    write_rgb(folder / "small.png", scene(32, 40, 5))
    res = run_quality_bench(open_dataset(folder), {"bicubic": BicubicUpscaler()}, progress=False, niqe=True)
    per_item = res.per_item()
    hr = crop_to_multiple(cv2.cvtColor(cv2.imread(str(folder / "big.png")), cv2.COLOR_BGR2RGB), 4)
    assert per_item["big"]["bicubic"]["niqe"] == pytest.approx(niqe(imresize(degrade_bi(hr), 4), 4))
    assert per_item["small"]["bicubic"]["niqe"] is None  # under 96x96 once cropped
    assert "NIQE" in format_table(res) and "NIQE" in res.protocol_line()
    off = run_quality_bench(open_dataset(folder), {"bicubic": BicubicUpscaler()}, progress=False)
    assert "NIQE" not in format_table(off) and off.per_item()["big"]["bicubic"]["niqe"] is None


def test_cli_image_folder_writes_table_csv_json_and_plot(image_folder, tmp_path):
    out = tmp_path / "report"
    result = CliRunner().invoke(bench_command, [str(image_folder), "--models", "bicubic",
                                                "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "x4 BI" in text and "crop 4 px" in text and "Y (BT.601" in text
    assert all(name in text for name in ("a ", "b ", "c ", "mean (3)", "bicubic"))
    data = json.loads((out / "results.json").read_text())
    assert data["protocol"]["crop_border"] == 4 and set(data["mean"]) == {"bicubic"}
    with open(out / "frames.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["item"] for r in rows] == ["a", "b", "c"] and rows[0]["tof"] == ""
    assert float(rows[0]["psnr"]) == pytest.approx(data["per_item"]["a"]["bicubic"]["psnr"])
    pytest.importorskip("matplotlib")
    assert (out / "psnr.png").stat().st_size > 1000
    # an existing report is not overwritten unless asked
    again = CliRunner().invoke(bench_command, [str(image_folder), "--models", "bicubic", "--out", str(out), "-q"])
    from vsr.errors import OutputError

    assert isinstance(again.exception, OutputError) and "--overwrite" in str(again.exception)
    again = CliRunner().invoke(bench_command, [str(image_folder), "--models", "bicubic", "--out", str(out), "-q",
                                               "--overwrite"])
    assert again.exit_code == 0, again.output


def test_cli_vid4_layout_options(vid4_folder, tmp_path):
    out = tmp_path / "vreport"
    args = [str(vid4_folder), "--models", "bicubic", "--channel", "rgb", "--crop-border", "2",
            "--degradation", "BD", "--max-frames", "3", "--out", str(out), "-q"]
    result = CliRunner().invoke(bench_command, args)
    assert result.exit_code == 0, result.output
    assert "x4 BD" in result.stdout and "RGB" in result.stdout and "crop 2 px" in result.stdout
    assert "tOF" in result.stdout and "mean (2)" in result.stdout
    data = json.loads((out / "results.json").read_text())
    assert len(data["frames"]) == 6 and data["protocol"]["temporal"] is True
    pytest.importorskip("matplotlib")
    assert (out / "psnr_alpha.png").is_file() and (out / "psnr_beta.png").is_file()


def test_cli_user_errors_are_vsr_errors(tmp_path):
    result = CliRunner().invoke(bench_command, [str(tmp_path / "missing.mp4"), "--models", "bicubic"])
    assert isinstance(result.exception, InputError)
    result = CliRunner().invoke(bench_command, [str(tmp_path), "--degradation", "XX"])
    assert result.exit_code == 2  # click's usage error


def test_identical_output_scores_inf_and_json_stays_valid(image_folder):
    class Oracle:
        """Returns the ground truth: PSNR is infinite, which JSON cannot hold."""

        scale = 4

        def __init__(self, truth):
            self.truth = truth

        def upscale(self, frames):
            return self.truth[None]

    hr = crop_to_multiple(cv2.cvtColor(cv2.imread(str(image_folder / "a.png")), cv2.COLOR_BGR2RGB), 4)
    ds = open_dataset(image_folder)
    ds.items = ds.items[:1]
    res = run_quality_bench(ds, {"oracle": Oracle(hr)}, progress=False)
    assert res.mean()["oracle"]["psnr"] == math.inf and res.mean()["oracle"]["ssim"] == pytest.approx(1)
    assert json.loads(json.dumps(res.to_dict(), allow_nan=False))["mean"]["oracle"]["psnr"] is None
    assert "inf" in format_table(res)


# --- acceptance: the field's bicubic baselines on the shared datasets -------------------------

DATASETS = shared_datasets()
needs_datasets = pytest.mark.skipif(DATASETS is None, reason="../shared/datasets is absent")


@pytest.mark.data
@needs_datasets
def test_reproduces_bicubic_set5_and_set14():
    # Published (Ledig et al. 2017): Set5 28.43 dB, Set14 25.99 dB (x4 BI, Y, crop 4).
    for name, published, tol in (("Set5", 28.43, 0.03), ("Set14", 25.99, 0.03)):
        res = run_quality_bench(open_dataset(name.lower(), data=DATASETS), {"bicubic": BicubicUpscaler()},
                                progress=False)
        print(format_table(res))
        assert res.protocol["crop_border"] == 4
        assert res.mean()["bicubic"]["psnr"] == pytest.approx(published, abs=tol)


@pytest.mark.data
@needs_datasets
def test_reproduces_bicubic_vid4():
    # BasicVSR (Chan et al. 2021), Table 1: bicubic x4 BI on Vid4, Y, no crop: 23.78 dB.
    res = run_quality_bench(open_dataset("vid4", data=DATASETS), {"bicubic": BicubicUpscaler()},
                            progress=False, temporal=False)
    print(format_table(res))
    assert res.protocol["crop_border"] == 0
    assert res.mean()["bicubic"]["psnr"] == pytest.approx(23.78, abs=0.05)


def test_cli_scores_a_weights_file_beside_bicubic(image_folder, tiny_weights, tmp_path):
    """`--models bicubic,NAME=FILE` scores a generator file (e.g. a training export) under NAME."""
    from vsr.models.registry import load_model
    from vsr.quality import psnr_y

    out = tmp_path / "report"
    result = CliRunner().invoke(bench_command, [str(image_folder), "--models", f"bicubic,run7={tiny_weights}",
                                                "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    assert "run7" in result.stdout
    data = json.loads((out / "results.json").read_text())
    up = load_model("perpix", weights=tiny_weights)
    hr = crop_to_multiple(bench_datasets.read_image(sorted(image_folder.iterdir())[0])[0], 4)
    want = psnr_y(up.upscale(degrade_bi(hr)), hr, crop_border=4)
    assert data["per_item"]["a"]["run7"]["psnr"] == pytest.approx(want, abs=1e-6)

    for bad, message in ((f"a={tmp_path / 'none.h5'}", "not found"), ("x=", "NAME=FILE"),
                         (f"a={tiny_weights},a={tiny_weights}", "twice")):
        result = CliRunner().invoke(bench_command, [str(image_folder), "--models", bad, "-q"])
        assert result.exit_code != 0 and message in str(result.exception), (bad, result.exception)
