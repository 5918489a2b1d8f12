"""Start-up: the cache of converted models and of ``--runtime auto``'s choice, phases, the summary line.

Tiny generators only; every test points VSR_CACHE_DIR at its own tmp_path (conftest keeps the rest of
the suite off ~/.cache too). ``auto``'s timings come from stand-in functions: no timed assertions.
"""

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from vsr.runtime import cache

litert_only = pytest.mark.skipif(
    __import__("importlib").util.find_spec("ai_edge_litert") is None, reason="ai-edge-litert not installed")


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("VSR_CACHE_DIR", str(folder))
    monkeypatch.delenv("VSR_NO_CACHE", raising=False)
    return folder


@pytest.fixture
def conversions(monkeypatch):
    """Counts LiteRT conversions (the expensive step the cache skips)."""
    from vsr.runtime import litert

    real, count = litert.tflite_bytes, []

    def counted(*args, **kwargs):
        count.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(litert, "tflite_bytes", counted)
    return count


@pytest.fixture
def on_cpu(monkeypatch):
    """``auto`` as on a CPU-only machine, whatever this one has."""
    from vsr import runtime

    monkeypatch.setattr(runtime, "tf_sees_gpu", lambda: False)


def stand_in_timing(monkeypatch, ms, calls=None):
    """Replace auto's timing by fixed figures ``{runtime: ms per frame}`` (records each call)."""
    from vsr.runtime import auto

    def fake(candidate_calls, x, **kwargs):
        if calls is not None:
            calls.append(x.shape)
        assert set(candidate_calls) == set(ms)
        return dict(ms)

    monkeypatch.setattr(auto, "time_runtimes", fake)


# -- the cache folder ------------------------------------------------------------------------------
def test_cache_folder_from_environment(tmp_path, monkeypatch):
    for var in ("VSR_CACHE_DIR", "VSR_NO_CACHE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.cache_dir() == tmp_path / "home" / ".cache" / "vsr"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_dir() == tmp_path / "xdg" / "vsr"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # the XDG spec: ignore relative paths
    assert cache.cache_dir() == tmp_path / "home" / ".cache" / "vsr"
    monkeypatch.setenv("VSR_CACHE_DIR", str(tmp_path / "mine"))
    assert cache.cache_dir() == tmp_path / "mine"
    monkeypatch.setenv("VSR_NO_CACHE", "1")
    assert cache.cache_dir() is None
    assert cache.write_blob("litert", {"a": 1}, b"x") is False and cache.read_blob("litert", {"a": 1}) is None
    assert not (tmp_path / "mine").exists()
    monkeypatch.setenv("VSR_NO_CACHE", "0")
    assert cache.cache_dir() == tmp_path / "mine"


def test_blob_entries_are_verified(cache_dir):
    key = {"weights_sha256": "ab" * 32, "arch": {"blocks": 2}}
    payload = bytes(range(256)) * 100
    assert cache.write_blob("litert", key, payload)
    assert cache.read_blob("litert", key) == payload
    assert cache.read_blob("litert", {**key, "arch": {"blocks": 3}}) is None  # another key: another file
    path = cache.entry_path("litert", key, ".bin")
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind

    for damage in (lambda b: b[:len(b) // 2],                    # truncated
                   lambda b: b[:-1] + bytes([b[-1] ^ 1]),        # one bit flipped
                   lambda b: b"garbage"):
        cache.write_blob("litert", key, payload)
        path.write_bytes(damage(path.read_bytes()))
        assert cache.read_blob("litert", key) is None
        assert not path.exists()  # removed, to be made again


def test_json_entries_check_their_key(cache_dir):
    key = {"bucket": "<=128"}
    assert cache.write_json("runtime", key, {"runtime": "tf"})
    assert cache.read_json("runtime", key) == {"runtime": "tf"}
    path = cache.entry_path("runtime", key, ".json")
    path.write_text(json.dumps({"key": {"bucket": "<=256"}, "value": {"runtime": "litert"}}))
    assert cache.read_json("runtime", key) is None and not path.exists()
    path.write_text("{not json")
    assert cache.read_json("runtime", key) is None


def test_unwritable_cache_only_costs_time(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("VSR_CACHE_DIR", str(blocker / "cache"))  # under a file: cannot be created
    assert cache.write_blob("litert", {"a": 1}, b"x") is False
    assert cache.read_blob("litert", {"a": 1}) is None
    with cache.locked("litert", {"a": 1}):
        pass


def test_lock_is_exclusive(cache_dir):
    got = threading.Event()

    def second():
        with cache.locked("litert", {"a": 1}):
            got.set()

    with cache.locked("litert", {"a": 1}):
        thread = threading.Thread(target=second)
        thread.start()
        assert not got.wait(0.3)  # held here: the other waits
    assert got.wait(30)
    thread.join()


# -- the converted model -----------------------------------------------------------------------------
@litert_only
def test_cache_hit_skips_conversion(tiny_weights, frames, cache_dir, conversions):
    from vsr.models import registry

    first = registry.load_model("perpix", weights=tiny_weights, runtime="litert")
    out = first.upscale(frames)
    assert len(conversions) == 1
    entries = list((cache_dir / "litert").glob("*.bin"))
    assert len(entries) == 1
    again = registry.load_model("perpix", weights=tiny_weights, runtime="litert")
    np.testing.assert_array_equal(again.upscale(frames), out)
    assert len(conversions) == 1  # read from the cache
    assert not again._source.built  # ... without building the Keras model


@litert_only
def test_corrupt_cache_entry_is_rebuilt(tiny_weights, frames, cache_dir, conversions):
    from vsr.models import registry

    out = registry.load_model("perpix", weights=tiny_weights, runtime="litert").upscale(frames)
    (entry,) = (cache_dir / "litert").glob("*.bin")
    entry.write_bytes(entry.read_bytes()[:-1000])  # a write cut short
    up = registry.load_model("perpix", weights=tiny_weights, runtime="litert")
    assert len(conversions) == 2
    np.testing.assert_array_equal(up.upscale(frames), out)
    registry.load_model("perpix", weights=tiny_weights, runtime="litert")
    assert len(conversions) == 2  # the remade entry is whole


@litert_only
def test_changed_weights_convert_again(tiny_weights, tmp_path, cache_dir, conversions):
    from vsr.models import registry
    from vsr.models.srgan import build_generator

    registry.load_model("perpix", weights=tiny_weights, runtime="litert")
    other = tmp_path / "other.weights.h5"
    build_generator(blocks=2, channels=8).save_weights(str(other))
    registry.load_model("perpix", weights=other, runtime="litert")
    assert len(conversions) == 2 and len(list((cache_dir / "litert").glob("*.bin"))) == 2


@litert_only
def test_no_cache_opt_out(tiny_weights, cache_dir, conversions, monkeypatch):
    from vsr.models import registry

    monkeypatch.setenv("VSR_NO_CACHE", "1")
    registry.load_model("perpix", weights=tiny_weights, runtime="litert")
    registry.load_model("perpix", weights=tiny_weights, runtime="litert")
    assert len(conversions) == 2 and not cache_dir.exists()


# -- --runtime auto ----------------------------------------------------------------------------------
@litert_only
def test_auto_choice_is_timed_once_then_cached(tiny_weights, frames, cache_dir, on_cpu, monkeypatch):
    from vsr.models import registry
    from vsr.runtime import auto

    timed = []
    stand_in_timing(monkeypatch, {"tf": 3.0, "litert": 5.0}, timed)
    up = registry.load_model("perpix", weights=tiny_weights)
    assert up.runtime == "auto" and up.runtime_label == "auto"
    out = up.upscale(frames)
    assert up.runtime_label == "tf (auto)" and len(timed) == 1
    assert timed[0] == (1, 23, 17, 3)  # the first call's frame size, one frame
    up.upscale(frames)
    assert len(timed) == 1  # remembered in this process
    (entry,) = (cache_dir / "runtime").glob("*.json")
    saved = json.loads(entry.read_text())
    assert saved["value"]["runtime"] == "tf" and saved["value"]["ms_per_frame"] == {"tf": 3.0, "litert": 5.0}
    assert saved["key"]["bucket"] == "<=64" and saved["key"]["machine"]["cpu"]
    assert len(saved["key"]["model"]["weights_sha256"]) == 64

    stand_in_timing(monkeypatch, {"tf": 9.0, "litert": 1.0}, timed)  # would choose litert if asked
    again = registry.load_model("perpix", weights=tiny_weights)
    np.testing.assert_array_equal(again.upscale(frames), out)
    assert again.runtime_label == "tf (auto)" and len(timed) == 1  # read, not timed
    assert again._call.choices["<=64"].cached

    big = np.zeros((1, 100, 90, 3), np.uint8)  # another size bucket: timed anew
    again.upscale(big)
    assert len(timed) == 2 and again._call.choices["<=128"].runtime == "litert"
    assert again.runtime_label == "tf/litert (auto)"

    monkeypatch.setattr(auto, "machine", lambda: {"cpu": "Other CPU", "arch": "x86_64", "simd": [], "threads": 2})
    registry.load_model("perpix", weights=tiny_weights).upscale(frames)  # another machine: timed anew
    assert len(timed) == 3


@litert_only
def test_corrupt_choice_is_timed_again(tiny_weights, frames, cache_dir, on_cpu, monkeypatch):
    from vsr.models import registry

    timed = []
    stand_in_timing(monkeypatch, {"tf": 3.0, "litert": 5.0}, timed)
    registry.load_model("perpix", weights=tiny_weights).upscale(frames)
    (entry,) = (cache_dir / "runtime").glob("*.json")
    entry.write_text(entry.read_text()[:40])
    registry.load_model("perpix", weights=tiny_weights).upscale(frames)
    assert len(timed) == 2 and json.loads(entry.read_text())["value"]["runtime"] == "tf"


def test_auto_is_tensorflow_on_a_gpu_without_timing(tiny_weights, frames, cache_dir, monkeypatch):
    from vsr import runtime
    from vsr.models import registry

    monkeypatch.setattr(runtime, "tf_sees_gpu", lambda: True)
    stand_in_timing(monkeypatch, {})  # asserts if called with candidates
    up = registry.load_model("perpix", weights=tiny_weights)
    assert up.runtime == "tf" and up.runtime_label == "tf" and up.choose_runtime(23, 17) is None
    up.upscale(frames)
    assert not (cache_dir / "runtime").exists()


def test_size_buckets_and_timing_shapes():
    from vsr.runtime.auto import TIMING_MAX_PIXELS, size_bucket, timing_shape

    assert size_bucket(64, 64) == "<=64" and size_bucket(72, 72) == "<=128" and size_bucket(90, 160) == "<=128"
    assert size_bucket(144, 180) == "<=256" and size_bucket(4000, 4000) == ">1024"
    assert timing_shape(90, 160) == (90, 160)
    h, w = timing_shape(400, 400)
    assert h * w <= TIMING_MAX_PIXELS and h == w


@litert_only
def test_cached_litert_starts_without_tensorflow(tiny_weights, cache_dir):
    """The point of the cache: a run that finds the converted model and auto's choice imports no TensorFlow."""
    from vsr.runtime import _may_have_gpu

    if _may_have_gpu():
        pytest.skip("auto runs TensorFlow on a GPU machine")
    code = (
        "import sys, numpy as np\n"
        "from vsr.runtime import auto\n"
        "auto.time_runtimes = lambda calls, x, **k: {'litert': 1.0, 'tf': 2.0}\n"
        "import vsr\n"
        f"up = vsr.load_model('perpix', weights={str(tiny_weights)!r})\n"
        "up.upscale(np.zeros((1, 20, 20, 3), np.uint8))\n"
        "print(up.runtime_label, 'tensorflow' in sys.modules)\n"
    )
    env = {**os.environ, "VSR_CACHE_DIR": str(cache_dir), "PYTHONPATH": str(Path(__file__).parents[1])}
    runs = [subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
            for _ in range(2)]
    for run in runs:
        assert run.returncode == 0, run.stderr[-2000:]
    assert runs[0].stdout.split() == ["litert", "(auto)", "True"]  # converted and timed: TensorFlow needed
    assert runs[1].stdout.split() == ["litert", "(auto)", "False"]


# -- vsr models --speed ------------------------------------------------------------------------------
@litert_only
def test_models_speed_prints_each_runtime_and_the_choice(tiny_weights, cache_dir, on_cpu, monkeypatch):
    from vsr.cli import main

    timed = []
    stand_in_timing(monkeypatch, {"tf": 12.0, "litert": 7.0}, timed)
    args = ["models", "--speed", "--weights", str(tiny_weights), "--size", "40x30"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "threads" in lines[0] and "40x30 frames, float32" in lines[0]
    assert lines[1].split() == ["model", "runtime", "ms/frame"]
    assert lines[2].split()[:4] == ["tiny.weights.h5", "litert", "7", "<-"]
    assert "auto (timed now, at 40x30; inputs <=64 px a side)" in lines[2]
    assert lines[3].split() == ["tiny.weights.h5", "tf", "12"]
    assert len(timed) == 1

    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0 and len(timed) == 1
    assert "<- auto (cached 20" in result.output  # the ISO date of the timing

    result = CliRunner().invoke(main, ["models", "--speed", "--size", "40by30"])
    assert result.exit_code == 2 and "WIDTHxHEIGHT" in result.output
    result = CliRunner().invoke(main, ["models", "--model", "mse"])
    assert result.exit_code == 2 and "go with --speed" in result.output


def test_models_speed_says_why_nothing_is_timed(tiny_weights, cache_dir, monkeypatch):
    from vsr import runtime
    from vsr.cli import main

    monkeypatch.setattr(runtime, "tf_sees_gpu", lambda: True)
    stand_in_timing(monkeypatch, {})
    result = CliRunner().invoke(main, ["models", "--speed", "--weights", str(tiny_weights)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[2].split()[:4] == ["tiny.weights.h5", "tf", "-", "<-"]
    assert "auto (a GPU: not timed)" in result.output


# -- the summary and the phases --------------------------------------------------------------------
def test_summary_names_model_runtime_codec_crf_and_size(tmp_path):
    from vsr.video.pipeline import Summary

    out = tmp_path / "o.mp4"
    out.write_bytes(b"x" * 1_400_000)
    s = Summary(Path("in.mp4"), out, 15, 23.8, (160, 90), (640, 360))
    s.describe_upscaler(type("U", (), {"name": "mse", "runtime_label": "litert (auto)", "scale": 4})())
    s.describe_output(type("E", (), {"codec": type("C", (), {"name": "libx264"})(), "crf": 18})())
    s.total_seconds = 24.8
    assert str(s) == (f"{out}: 15 frames 160x90 -> 640x360, 1.4 MB; mse on litert (auto), libx264 crf 18; "
                      "24.8 s in all (job 23.8 s, 0.63 fps)")
    s.total_seconds = None  # a library call: only the job's own time
    assert str(s).endswith("libx264 crf 18; in 23.8 s (0.63 fps)")


@litert_only
def test_upscale_command_summary_and_phases(tiny_weights, cache_dir, on_cpu, monkeypatch, tmp_path):
    import cv2

    from vsr.cli import main

    stand_in_timing(monkeypatch, {"tf": 2.0, "litert": 1.0})
    rng = np.random.default_rng(0)
    cv2.imwrite(str(tmp_path / "in.png"), rng.integers(0, 256, (18, 24, 3), dtype=np.uint8))
    result = CliRunner().invoke(main, ["upscale", str(tmp_path / "in.png"), str(tmp_path / "out.png"),
                                       "--weights", str(tiny_weights), "-v"])
    assert result.exit_code == 0, result.output
    summary = result.stdout.strip().splitlines()[-1]
    assert summary.startswith(f"{tmp_path / 'out.png'}: 1 frame 24x18 -> 96x72, ")
    assert "B; tiny.weights.h5 on litert (auto), png; " in summary and " s in all (job " in summary
    err = result.stderr
    assert "vsr: start-up: convert to LiteRT" in err and "vsr: start-up: first model call (24x18 x1)" in err
    assert "vsr: runtime auto for inputs <=64 px a side: litert, 1 ms/frame (tf 2) at 24x18, measured now" in err

    result = CliRunner().invoke(main, ["upscale", str(tmp_path / "in.png"), str(tmp_path / "out.png"),
                                       "--weights", str(tiny_weights), "--overwrite", "-v"])
    assert result.exit_code == 0, result.output
    assert "convert to LiteRT" not in result.stderr and "read the converted model from the cache" in result.stderr
    assert "cached from" in result.stderr

    result = CliRunner().invoke(main, ["upscale", str(tmp_path / "in.png"), str(tmp_path / "out2.png"),
                                       "--model", "bicubic"])
    assert result.exit_code == 0 and "; bicubic on numpy, png; " in result.stdout
    assert "start-up:" not in result.stderr  # only with -v


def test_video_summary_names_codec_and_crf(tmp_path, tmp_path_factory):
    from test_video_clips import clip_maker

    from vsr.cli import main

    clip = clip_maker(tmp_path_factory)
    result = CliRunner().invoke(main, ["upscale", str(clip("av.mp4")), str(tmp_path / "o.mp4"),
                                       "--model", "bicubic", "--crf", "23", "-q"])
    assert result.exit_code == 0 and result.stdout == ""
    result = CliRunner().invoke(main, ["upscale", str(clip("av.mp4")), str(tmp_path / "o.mkv"),
                                       "--model", "bicubic", "--crf", "23"])
    assert result.exit_code == 0, result.output
    line = result.stdout.strip().splitlines()[-1]
    assert "20 frames 64x48 -> 256x192, " in line and "; bicubic on numpy, libx264 crf 23; " in line
    assert " s in all (job " in line and "fps)" in line


def test_process_age_counts_from_process_start():
    from vsr.startup import process_age

    code = "import time; time.sleep(0.5); from vsr.startup import process_age; print(process_age())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}).stdout
    assert float(out) >= 0.5  # counts the time before vsr was imported
    assert process_age() > 0
