"""Keep the start-up chatter of TensorFlow, absl, oneDNN, XNNPACK and CUDA off the user's terminal.

Those libraries write straight to file descriptor 2 from C++ (``I0000 ... port.cc:153] oneDNN custom
operations are on``, ``E0000 ... failed call to cuInit``, ``INFO: Created TensorFlow Lite XNNPACK
delegate``), so neither Python's logging nor ``TF_CPP_MIN_LOG_LEVEL`` (ignored by TensorFlow 2.21's
absl logging) silences them, and they break the progress bar. ``filter_native_logs`` points fd 2 at a
pipe whose reader thread drops such lines and passes every other line through unchanged, while
Python's own ``sys.stderr`` (messages, tqdm) keeps writing to the real terminal directly.
``vsr --debug`` leaves fd 2 alone, so nothing is hidden when diagnosing.
"""

import atexit
import os
import re
import sys
import threading

#: Lines of the native libraries' start-up logs (absl/glog prefix ``I1202 13:49:00.1 ...`` or
#: ``I0000 00:00:...``, absl's banner, TFLite's delegate notes, TensorFlow's CPU-feature notice).
NATIVE_LOG = re.compile(
    rb"^([IWEF]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\] "
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    rb"|INFO: Created TensorFlow Lite (XNNPACK )?delegate"
    rb"|INFO: Initialized TensorFlow Lite runtime"
    rb"|To enable the following instructions: .*rebuild TensorFlow"
    rb"|\s*$)"
)

_installed = False


def filter_native_logs():
    """Route fd 2 through a filter that drops native library log lines (idempotent)."""
    global _installed
    if _installed:
        return
    try:  # only a real process's own stderr: not under click's CliRunner or a test's capture
        if sys.stderr.fileno() != 2:
            return
    except (AttributeError, OSError, ValueError):
        return
    try:
        real = os.dup(2)
        read_end, write_end = os.pipe()
    except OSError:
        return  # no fd 2 to filter (e.g. closed by the caller): nothing to hide either
    _installed = True
    os.set_inheritable(real, False)
    sys.stderr.flush()
    # Python's own output goes to the terminal directly, unbuffered, as before.
    sys.stderr = os.fdopen(os.dup(real), "w", buffering=1, encoding=sys.stderr.encoding,
                           errors="backslashreplace")
    os.dup2(write_end, 2)  # C++ writes (and child processes that inherit fd 2) now go through the pipe
    os.close(write_end)

    def pump():
        with os.fdopen(read_end, "rb", buffering=0) as pipe:
            pending = b""
            while True:
                chunk = pipe.read(65536)
                if not chunk:
                    break
                pending += chunk
                *lines, pending = pending.split(b"\n")
                kept = b"".join(line + b"\n" for line in lines if not NATIVE_LOG.match(line))
                if kept:
                    os.write(real, kept)
            if pending and not NATIVE_LOG.match(pending):
                os.write(real, pending)

    thread = threading.Thread(target=pump, name="vsr-native-log-filter", daemon=True)
    thread.start()

    def restore():
        try:
            os.dup2(real, 2)  # closes the last write end of the pipe, so the reader sees EOF
        except OSError:
            return
        thread.join(timeout=2)

    atexit.register(restore)
