"""The native libraries' start-up logs stay off the terminal; vsr's own messages do not."""

import subprocess
import sys

import cv2
import numpy as np

from vsr.native_logs import NATIVE_LOG

SEEN = [  # lines TensorFlow 2.21, LiteRT and absl printed on a CPU-only machine
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    b"I0000 00:00:1796219950.004069   30173 port.cc:153] oneDNN custom operations are on.",
    b"E0000 00:00:1796218834.607948    3914 cuda_platform.cc:52] failed call to cuInit: INTERNAL",
    b"W1202 13:49:00.123456    3914 gpu_device.cc:2341] Cannot dlopen some GPU libraries.",
    b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
    b"To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow with "
    b"the appropriate compiler flags.",
]
KEPT = [b"vsr: error: input x.mp4 does not exist", b"Traceback (most recent call last):",
        b"  File \"x.py\", line 1", b"upscaled 1 frame in 0.4 s", b"[error] Invalid data found"]


def test_pattern_drops_native_logs_only():
    assert all(NATIVE_LOG.match(line) for line in SEEN)
    assert not any(NATIVE_LOG.match(line) for line in KEPT)


def _vsr(*args, cwd):
    return subprocess.run([sys.executable, "-m", "vsr", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL)


def test_quiet_run_with_a_generator_prints_nothing_and_errors_still_show(tmp_path, tiny_weights):
    cv2.imwrite(str(tmp_path / "in.png"), np.random.default_rng(0).integers(0, 255, (24, 20, 3), np.uint8))
    run = _vsr("upscale", "in.png", "out.png", "--model", "perpix", "--weights", str(tiny_weights), "-q",
               cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stderr == "" and run.stdout == ""
    assert cv2.imread(str(tmp_path / "out.png")).shape == (96, 80, 3)
    bad = _vsr("upscale", "missing.png", "o.png", "--model", "bicubic", "-q", cwd=tmp_path)
    assert bad.returncode != 0 and bad.stderr.count("\n") == 1 and bad.stderr.startswith("vsr: error:")
