"""Finding and running ffmpeg.

Discovery: the ``VSR_FFMPEG`` environment variable if set, else ``ffmpeg`` on PATH, else the binary that
ships inside the ``imageio-ffmpeg`` wheel. Nothing here needs ``ffprobe`` (imageio-ffmpeg has none).

Every ffmpeg we start runs with ``-loglevel level+...`` so each stderr line carries its level
(``[error] ...``); that lets us pick ffmpeg's own error line for a message instead of guessing.
Children run in their own session, so a terminal's Ctrl-C reaches only Python, which then stops and
reaps them itself (an ffmpeg that got SIGINT directly would finalise a half-written file).
"""

from __future__ import annotations

import collections
import functools
import os
import re
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable, Sequence

from ..errors import FFmpegError

#: ``[ctx @ 0x..] [ctx2 @ 0x..] [level] message`` (contexts optional).
_LOG_LINE = re.compile(
    r"^(?P<ctx>(?:\[[^\]]*\] )*)\[(?P<level>panic|fatal|error|warning|info|verbose|debug|trace)\] (?P<msg>.*)$"
)
_ERROR_LEVELS = ("panic", "fatal", "error")


@functools.lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary to use (see the module docstring for the search order)."""
    override = os.environ.get("VSR_FFMPEG")
    if override:
        if shutil.which(override) is None:
            raise FFmpegError(f"VSR_FFMPEG={override!r} is not an executable: fix or unset it")
        return shutil.which(override)
    on_path = shutil.which("ffmpeg")
    if on_path:
        return on_path
    try:
        import imageio_ffmpeg
    except ImportError:
        imageio_ffmpeg = None
    if imageio_ffmpeg is not None:
        try:
            return imageio_ffmpeg.get_ffmpeg_exe()
        except RuntimeError:
            pass
    raise FFmpegError("ffmpeg not found: install ffmpeg or run `pip install imageio-ffmpeg`")


def media_arg(path) -> str:
    """A path as an ffmpeg argument: absolute, so ``-x.mp4`` is not an option and ``a:b.mp4`` no protocol."""
    return os.path.abspath(os.fspath(path))


def log_level(line: str) -> tuple[str, str, str]:
    """Split a ``level+`` stderr line into (contexts, level, message); level is '' if unprefixed."""
    m = _LOG_LINE.match(line)
    if m is None:
        return "", "", line
    return m["ctx"], m["level"], m["msg"]


def clean_message(msg: str) -> str:
    """One line, no trailing period, no pointer addresses: fit for a user-facing message."""
    msg = re.sub(r" @ 0x[0-9a-f]+", "", msg.strip())
    return msg.rstrip(".")


_SIGNAL_MEANING = {
    "SIGXFSZ": "file size limit exceeded",
    "SIGSEGV": "crashed",
    "SIGPIPE": "its pipe was closed",
}


def _signal_name(returncode: int) -> str:
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"
    return f"{name} ({_SIGNAL_MEANING[name]})" if name in _SIGNAL_MEANING else name


class FFmpegProcess:
    """One running ffmpeg whose stderr a daemon thread drains line by line.

    ``stdin``/``stdout`` become pipes when asked. Every stderr line goes to ``on_line`` (if given);
    warning-and-worse lines are kept in a bounded tail for error messages.
    """

    def __init__(
        self,
        args: Sequence[str],
        *,
        role: str,
        stdin: bool = False,
        stdout: bool = False,
        on_line: Callable[[str], None] | None = None,
        on_eof: Callable[[], None] | None = None,
        tail: int = 60,
    ):
        self.role = role
        self.args = list(args)
        self._on_line = on_line
        self._on_eof = on_eof
        self.errors: list[str] = []  # every error-level message (bounded below)
        self.tail: collections.deque[str] = collections.deque(maxlen=tail)
        self.proc = subprocess.Popen(
            self.args,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdout else subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self._stderr_thread = threading.Thread(target=self._drain, name=f"vsr-{role}-stderr", daemon=True)
        self._stderr_thread.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _drain(self) -> None:
        try:
            for raw in iter(self.proc.stderr.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                if not line:
                    continue
                _, level, msg = log_level(line)
                if level in _ERROR_LEVELS and len(self.errors) < 200:
                    self.errors.append(clean_message(msg))
                if level not in ("info", "verbose", "debug", "trace"):
                    self.tail.append(line)
                if self._on_line is not None:
                    self._on_line(line)
        except (OSError, ValueError):  # pipe closed under us by stop()
            pass
        finally:
            if self._on_eof is not None:
                self._on_eof()

    def first_error(self) -> str:
        """ffmpeg's first error-level message (usually the root cause), else its last warning."""
        if self.errors:
            return self.errors[0]
        return clean_message(log_level(self.tail[-1])[2]) if self.tail else ""

    def failure(self, returncode: int | None = None) -> str:
        """A short description of why this ffmpeg failed: its own error line, or the signal that killed it."""
        rc = self.proc.returncode if returncode is None else returncode
        if rc is not None and rc < 0:
            cause = f"ffmpeg {self.role} was killed by {_signal_name(rc)}"
            line = self.first_error()
            return f"{cause} ({line})" if line else cause
        line = self.first_error()
        return line or f"ffmpeg {self.role} exited with status {rc}"

    def wait(self, timeout: float | None = None) -> int:
        rc = self.proc.wait(timeout=timeout)
        self._stderr_thread.join(timeout=5)
        return rc

    def running(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        """Kill (if still running), close our pipe ends and reap. Safe to call more than once."""
        if self.proc.poll() is None:
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                try:
                    pipe.close()
                except (OSError, ValueError):
                    pass  # BrokenPipe flushing a dead child's stdin
        self.proc.wait()
        self._stderr_thread.join(timeout=5)
        if self.proc.stderr is not None:
            self.proc.stderr.close()


def run_ffmpeg(args: Sequence[str], *, timeout: float | None = None) -> tuple[int, list[str]]:
    """Run ffmpeg to completion (no pipes); returns (returncode, stderr lines)."""
    proc = subprocess.run(
        [ffmpeg_exe(), *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=timeout,
        start_new_session=True,
        check=False,
    )
    return proc.returncode, proc.stderr.decode("utf-8", "replace").splitlines()


@functools.cache
def _encoder_help(codec: str) -> tuple[str, ...]:
    proc = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-h", f"encoder={codec}"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        check=False,
    )
    return tuple(proc.stdout.decode("utf-8", "replace").splitlines())


def has_encoder(codec: str) -> bool:
    """Whether this ffmpeg build has the named encoder (e.g. ``libx265``)."""
    return any(line.startswith(f"Encoder {codec} ") for line in _encoder_help(codec))


def encoder_pix_fmts(codec: str) -> tuple[str, ...]:
    """Pixel formats the named encoder accepts (empty if unknown)."""
    for line in _encoder_help(codec):
        if "Supported pixel formats:" in line:
            return tuple(line.split(":", 1)[1].split())
    return ()
