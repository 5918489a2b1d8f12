"""Every way a run can fail leaves nothing behind: no output, no temporary file, no ffmpeg, one-line message.

Each case asserts the error type (or exit code), that the message is one line naming the file and
the cause, that the output folder holds nothing new, and that no ffmpeg child or pipeline thread is left.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_video_clips import NearestUpscaler, assert_clean, child_processes, clip_maker, processes_mentioning

from vsr.errors import Cancelled, FFmpegError, InputError, ModelError, OutputError
from vsr.video.command import upscale_command
from vsr.video.jobs import upscale_path, upscale_video

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def clip(tmp_path_factory):
    return clip_maker(tmp_path_factory)


def expect(error, call, *words) -> str:
    """Run ``call``; it must raise ``error`` with a one-line message containing every word."""
    with pytest.raises(error) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message, message
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    return message


def fails(src, out_dir, *, upscaler=None, name="out.mp4", **options):
    options.setdefault("progress", False)
    return lambda: upscale_video(src, out_dir / name, upscaler or NearestUpscaler(), **options)


# -- inputs ---------------------------------------------------------------------------------------
def test_missing_input(tmp_path):
    expect(InputError, fails(tmp_path / "missing.mp4", tmp_path / "out"), "missing.mp4", "no such file")
    assert not (tmp_path / "out").exists()
    assert_clean(tmp_path)


def test_directory_as_input_file(tmp_path):
    (tmp_path / "folder.mp4").mkdir()
    expect(InputError, fails(tmp_path / "folder.mp4", tmp_path / "out"), "folder.mp4", "is a directory")
    assert_clean(tmp_path, {"folder.mp4"})


@pytest.mark.parametrize(
    "name, words",
    [
        ("text.mp4", ["text.mp4", "not a readable video"]),
        ("audio_only.m4a", ["audio_only.m4a", "has no video stream", "audio"]),
        ("truncated.mp4", ["truncated.mp4", "not a readable video", "moov atom not found"]),
        ("truncated_faststart.mp4", ["truncated_faststart.mp4", "truncated"]),
        ("zero_frames.mp4", ["zero_frames.mp4", "no video frames"]),
    ],
)
def test_bad_inputs(clip, tmp_path, name, words):
    expect(InputError, fails(clip(name), tmp_path), *words)
    assert_clean(tmp_path)


# -- outputs --------------------------------------------------------------------------------------
def test_unsupported_output_extension(clip, tmp_path):
    expect(OutputError, fails(clip("av.mp4"), tmp_path, name="out.xyz"), "out.xyz", "unsupported output extension")
    assert_clean(tmp_path)


def test_existing_output_is_refused_without_overwrite(clip, tmp_path):
    existing = tmp_path / "out.mp4"
    existing.write_bytes(b"precious")
    expect(OutputError, fails(clip("av.mp4"), tmp_path), "out.mp4", "already exists", "--overwrite")
    assert existing.read_bytes() == b"precious"
    assert_clean(tmp_path, {"out.mp4"})
    upscale_video(clip("av.mp4"), existing, NearestUpscaler(), overwrite=True, progress=False)
    assert existing.stat().st_size > 1000
    assert_clean(tmp_path, {"out.mp4"})


def test_output_equal_to_input_is_always_refused(clip, tmp_path):
    src = tmp_path / "in.mp4"
    shutil.copy(clip("av.mp4"), src)
    before = src.read_bytes()
    for dst in (src, tmp_path / "sub" / ".." / "in.mp4"):
        expect(
            OutputError,
            lambda dst=dst: upscale_video(src, dst, NearestUpscaler(), overwrite=True, progress=False),
            "output is the input",
        )
    os.link(src, tmp_path / "hardlink.mp4")
    expect(
        OutputError,
        lambda: upscale_video(src, tmp_path / "hardlink.mp4", NearestUpscaler(), overwrite=True),
        "output is the input",
    )
    assert src.read_bytes() == before
    assert_clean(tmp_path, {"in.mp4", "hardlink.mp4"})


_SCRIPT = """
import json, os, sys, time
import numpy as np
sys.path.insert(0, {repo!r})
from vsr.errors import VsrError
from vsr.video.jobs import upscale_video

class Slow:
    scale = 4
    def upscale(self, frames):
        print("started", flush=True)
        time.sleep({delay})
        return np.repeat(np.repeat(frames, 4, axis=1), 4, axis=2)

def children():
    me, out = os.getpid(), []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if int(open(f"/proc/{{pid}}/stat").read().rsplit(")", 1)[1].split()[1]) == me:
                out.append(pid)
        except OSError:
            pass
    return out

dst = sys.argv[2]
try:
    upscale_video(sys.argv[1], dst, Slow(), progress=False)
    result = {{"error": None}}
except VsrError as e:
    result = {{"error": type(e).__name__, "message": str(e), "code": e.exit_code}}
folder = os.path.dirname(dst)
result["left"] = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
result["children"] = children()
print(json.dumps(result), flush=True)
sys.exit(result.get("code") or 0)
"""


def run_script(src, dst, *, prefix=(), delay=0.0, **popen):
    code = _SCRIPT.format(repo=str(REPO), delay=delay)
    return subprocess.Popen(
        [*prefix, sys.executable, "-c", code, str(src), str(dst)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def script_result(proc, timeout=60) -> dict:
    out, err = proc.communicate(timeout=timeout)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    assert lines, f"no result; stderr: {err}"
    return json.loads(lines[-1])


def test_unwritable_output_folder(clip, tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        if os.geteuid() != 0:
            expect(OutputError, fails(clip("av.mp4"), folder), "out.mp4", "cannot write", "Permission denied")
            assert_clean(folder)
            return
        # root ignores permissions; drop that capability for a child process
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: cannot make a folder unwritable")
        result = script_result(
            run_script(
                clip("av.mp4"), folder / "out.mp4", prefix=(setpriv, "--bounding-set", "-dac_override,-dac_read_search")
            )
        )
        assert result["error"] == "OutputError"
        assert "cannot write" in result["message"] and "Permission denied" in result["message"]
        assert "\n" not in result["message"] and result["left"] == [] and result["children"] == []
    finally:
        folder.chmod(0o755)
    assert_clean(folder)


def test_output_disk_full_via_file_size_limit(clip, tmp_path):
    """RLIMIT_FSIZE makes the encoder's writes fail past 64 KiB, like a full disk."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, hard))
    try:
        message = expect(
            FFmpegError, fails(clip("long.mp4"), tmp_path, preset="ultrafast"), "out.mp4", "encoding failed"
        )
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert "SIGXFSZ" in message or "too large" in message.lower()
    assert_clean(tmp_path)


def _can_mount_tmpfs(tmp_path) -> bool:
    unshare = shutil.which("unshare")
    if unshare is None:
        return False
    probe = subprocess.run(
        [unshare, "-m", "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs {tmp_path}"], capture_output=True, check=False
    )
    return probe.returncode == 0


def test_output_disk_full_on_a_small_tmpfs(clip, tmp_path):
    """A real 'No space left on device' from a 16 KiB tmpfs in a private mount namespace."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if not _can_mount_tmpfs(disk):
        pytest.skip("cannot mount a tmpfs here (needs unshare and CAP_SYS_ADMIN)")
    code = _SCRIPT.format(repo=str(REPO), delay=0.0)
    shell = 'mount -t tmpfs -o size=16k tmpfs "$1" && exec "$2" -c "$3" "$4" "$1/out.mp4"'
    proc = subprocess.Popen(
        ["unshare", "-m", "sh", "-c", shell, "sh", str(disk), sys.executable, code, str(clip("long.mp4"))],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    result = script_result(proc)
    assert result["error"] == "FFmpegError", result
    assert "out.mp4" in result["message"] and "No space left on device" in result["message"]
    assert "\n" not in result["message"] and result["left"] == [] and result["children"] == []
    assert processes_mentioning(str(disk)) == []


# -- processes dying, interruptions ---------------------------------------------------------------
def _kill_child(marker: str):
    def on_call(n):
        if n == 2:
            victims = [c for c in child_processes() if marker in c]
            assert len(victims) == 1, child_processes()
            os.kill(int(victims[0].split(":")[0]), signal.SIGKILL)
            time.sleep(0.2)

    return on_call


def test_decoder_killed_mid_run(clip, tmp_path):
    upscaler = NearestUpscaler(on_call=_kill_child("rawvideo"))
    expect(FFmpegError, fails(clip("long.mp4"), tmp_path, upscaler=upscaler), "long.mp4", "decoding failed", "SIGKILL")
    assert_clean(tmp_path)


def test_encoder_killed_mid_run(clip, tmp_path):
    upscaler = NearestUpscaler(on_call=_kill_child("pipe:0"))
    expect(FFmpegError, fails(clip("long.mp4"), tmp_path, upscaler=upscaler), "out.mp4", "encoding failed", "SIGKILL")
    assert_clean(tmp_path)


def test_ctrl_c_from_the_engine_cleans_up(clip, tmp_path):
    def interrupt(n):
        if n == 3:
            raise KeyboardInterrupt

    expect(
        Cancelled,
        fails(clip("long.mp4"), tmp_path, upscaler=NearestUpscaler(on_call=interrupt)),
        "long.mp4",
        "interrupted",
    )
    assert_clean(tmp_path)


def test_engine_error_cleans_up(clip, tmp_path):
    def boom(n):
        if n == 2:
            raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError, match="out of memory"):
        fails(clip("long.mp4"), tmp_path, upscaler=NearestUpscaler(on_call=boom))()
    assert_clean(tmp_path)


def test_upscaler_returning_the_wrong_shape(clip, tmp_path):
    class Wrong(NearestUpscaler):
        def upscale(self, frames):
            return super().upscale(frames)[:, :-1]

    expect(ModelError, fails(clip("av.mp4"), tmp_path, upscaler=Wrong()), "upscaler returned")
    assert_clean(tmp_path)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signals_in_a_real_process_clean_up(clip, tmp_path, signum):
    """Ctrl-C (SIGINT to the process group, as a terminal sends it) and SIGTERM: exit 130 and 143 as
    shells report a process those signals stopped, nothing left."""
    out = tmp_path / "out"
    out.mkdir()
    # The first batch takes 30 s, so the signal always lands mid-run. The child gets SIGINT's default
    # action back, as in a terminal: run from a background job (`cmd &`), it would inherit SIGINT
    # ignored, and Python then leaves Ctrl-C ignored, rightly.
    proc = run_script(clip("long.mp4"), out / "out.mp4", delay=30, start_new_session=True,
                      preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert proc.stdout.readline().strip() == "started"
        time.sleep(0.2)
        os.killpg(proc.pid, signum)
        result = script_result(proc)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 128 + signum == result["code"]
    assert result["error"] == "Cancelled" and "\n" not in result["message"]
    assert result["left"] == [] and result["children"] == []
    assert processes_mentioning(str(tmp_path)) == []
    assert_clean(out)


# -- the command ----------------------------------------------------------------------------------
def cli(*args):
    return CliRunner().invoke(upscale_command, [str(a) for a in args], catch_exceptions=False)


def one_line_error(result) -> str:
    """The single error line on stderr (progress bars may share stderr; they are not errors)."""
    lines = [line for line in result.stderr.splitlines() if "error" in line.lower() or "Traceback" in line]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("vsr: error: ")
    return lines[0]


def test_cli_unknown_model(clip, tmp_path):
    result = cli(clip("av.mp4"), tmp_path / "out.mp4", "--model", "nope", "--quiet")
    assert result.exit_code == ModelError.exit_code
    assert "unknown model 'nope'" in one_line_error(result)
    assert_clean(tmp_path)


def test_cli_missing_weights(clip, tmp_path):
    result = cli(clip("av.mp4"), tmp_path / "out.mp4", "--model", "perpix", "--weights", tmp_path / "gone.weights.h5")
    assert result.exit_code == ModelError.exit_code  # WeightsError is a ModelError
    assert "gone.weights.h5" in one_line_error(result)
    assert_clean(tmp_path)


def test_cli_missing_input_and_bad_extension(clip, tmp_path):
    result = cli(tmp_path / "missing.mp4", tmp_path / "out.mp4")
    assert result.exit_code == InputError.exit_code
    assert "missing.mp4: no such file" in one_line_error(result)
    result = cli(clip("av.mp4"), tmp_path / "out.gif")
    assert result.exit_code == OutputError.exit_code
    assert "unsupported output extension" in one_line_error(result)
    assert_clean(tmp_path)


def test_cli_output_in_a_missing_folder_is_refused_and_creates_nothing(clip, tmp_path):
    """A typo in the output's folder must not create folders (ffmpeg refuses such a path too)."""
    for name in ("out.mp4", "out.png"):
        src = clip("av.mp4") if name.endswith(".mp4") else clip("still.png")
        result = cli(src, tmp_path / "typo" / "deeper" / name, "--model", "bicubic")
        assert result.exit_code == OutputError.exit_code
        assert "typo/deeper does not exist" in one_line_error(result)
        assert not (tmp_path / "typo").exists()
    inbox = tmp_path / "in"
    inbox.mkdir()
    shutil.copy(clip("silent.mp4"), inbox / "a.mp4")
    result = cli(inbox, tmp_path / "typo" / "outbox", "--model", "bicubic")
    assert result.exit_code == OutputError.exit_code and not (tmp_path / "typo").exists()
    # a folder job may create its output folder itself
    result = cli(inbox, tmp_path / "outbox", "--model", "bicubic", "--preset", "ultrafast", "-q")
    assert result.exit_code == 0, result.stderr
    assert [p.name for p in (tmp_path / "outbox").iterdir()] == ["a.mp4"]


def test_exit_statuses_are_distinct_and_documented():
    """Each failure class has its own status (input 8 is not click's usage 2), and the README's table
    is the one the code uses."""
    from vsr.errors import EXIT_CODES, DataError, FFmpegError, MemoryLimitError

    classes = [InputError, OutputError, ModelError, FFmpegError, DataError, MemoryLimitError]
    codes = [c.exit_code for c in classes] + [Cancelled().exit_code, Cancelled("", signal.SIGTERM).exit_code]
    assert len(set(codes)) == len(codes) and 2 not in codes and set(codes) <= set(EXIT_CODES)
    assert codes[-2:] == [130, 143]
    readme = (REPO / "README.md").read_text()
    table = readme[readme.index("## Exit status"):]
    rows = {int(line.split("|")[1].strip(" `")) for line in table.splitlines() if line.startswith("| `")}
    assert rows == set(EXIT_CODES)


def test_cli_usage_errors_exit_2_and_input_errors_8(clip, tmp_path):
    from vsr.cli import main

    usage = CliRunner().invoke(main, ["upscale", str(clip("av.mp4")), str(tmp_path / "o.mp4"), "--bogus"])
    assert usage.exit_code == 2
    missing = CliRunner().invoke(main, ["upscale", str(tmp_path / "missing.mp4"), str(tmp_path / "o.mp4")])
    assert missing.exit_code == 8 == InputError.exit_code
    assert_clean(tmp_path)


def test_cancelled_keeps_its_signal_across_a_pickle():
    import pickle

    stopped = pickle.loads(pickle.dumps(Cancelled("worker stopped", signal.SIGTERM)))
    assert (str(stopped), stopped.exit_code) == ("worker stopped", 143)


def test_cli_model_is_not_loaded_when_the_input_is_bad(clip, tmp_path, monkeypatch):
    import vsr

    monkeypatch.setattr(vsr, "load_model", lambda *a, **k: pytest.fail("model loaded for a bad input"))
    result = cli(clip("text.mp4"), tmp_path / "out.mp4")
    assert result.exit_code == InputError.exit_code


def test_cli_runs_bicubic_and_prints_a_summary(clip, tmp_path):
    result = cli(clip("av.mp4"), tmp_path / "out.mp4", "--model", "bicubic", "--preset", "ultrafast")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.count("\n") == 1 and "20 frames 64x48 -> 256x192" in result.stdout
    assert_clean(tmp_path, {"out.mp4"})


def test_cli_folder_reports_failures_and_exits_non_zero(clip, tmp_path):
    inbox = tmp_path / "in"
    inbox.mkdir()
    shutil.copy(clip("text.mp4"), inbox / "bad.mp4")
    shutil.copy(clip("silent.mp4"), inbox / "good.mp4")
    result = cli(inbox, tmp_path / "out", "--model", "bicubic", "--preset", "ultrafast")
    assert result.exit_code == 1
    assert "bad.mp4" in one_line_error(result)
    assert "1 done, 0 skipped, 1 failed" in result.stdout
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good.mp4"]


def test_cli_debug_shows_the_traceback(clip, tmp_path):
    from vsr.cli import main

    result = CliRunner().invoke(main, ["--debug", "upscale", str(tmp_path / "missing.mp4"), str(tmp_path / "o.mp4")])
    assert isinstance(result.exception, InputError)  # raised, so click prints the traceback
    plain = CliRunner().invoke(main, ["upscale", str(tmp_path / "missing.mp4"), str(tmp_path / "o.mp4")])
    assert plain.exit_code == InputError.exit_code and "Traceback" not in plain.output


def test_folder_mode_stops_on_model_errors(clip, tmp_path):
    inbox = tmp_path / "in"
    inbox.mkdir()
    shutil.copy(clip("silent.mp4"), inbox / "a.mp4")

    def factory():
        raise ModelError("unknown model 'x'")

    expect(ModelError, lambda: upscale_path(inbox, tmp_path / "out", factory, progress=False), "unknown model")
    assert not any((tmp_path / "out").iterdir())
