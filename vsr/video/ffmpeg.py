"""Finding and running ffmpeg.

Which ffmpeg, and why: vsr runs the binary bundled in the ``imageio-ffmpeg`` wheel (an install
requirement, so it is always there, a static build of a known release: 9.0.2 when this was written),
because the ffmpeg command line's timing behaviour changes between releases and only a tested one
may touch a user's timestamps. An ffmpeg on PATH is *not* used by default: Debian 12's 5.1, measured
against the video tests, moves subtitle cues 23 ms (it shifts every stream to make an AAC priming
packet non-negative), rounds a late video start of 0.5005 s to 0.5 s, puts segmented and single-pass
frames at different times, and exits 0 with a truncated MP4 on a full disk.

Another ffmpeg (a build with a hardware encoder, say) is used only when asked: ``vsr upscale --ffmpeg
PATH`` or the ``VSR_FFMPEG`` environment variable (``--ffmpeg`` sets it, so worker processes use the
same one). It is refused, with a one-line :class:`FFmpegError` that says what to do, when
``ffmpeg -version`` reports a release older than :data:`MINIMUM_VERSION`: the oldest release the video
tests have passed with. Lower it only after ``VSR_FFMPEG=/that/ffmpeg python -m pytest tests/test_video*.py``
passes. Development builds (``N-12345-g...``, ``git-...``) are newer than any release and accepted.
Probing does not use this binary at all (see :mod:`.probe`: PyAV carries its own FFmpeg libraries).
Nothing here needs ``ffprobe`` (imageio-ffmpeg has none).

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
from dataclasses import dataclass

from ..errors import FFmpegError

#: ``[ctx @ 0x..] [ctx2 @ 0x..] [level] message`` (contexts optional).
_LOG_LINE = re.compile(
    r"^(?P<ctx>(?:\[[^\]]*\] )*)\[(?P<level>panic|fatal|error|warning|info|verbose|debug|trace)\] (?P<msg>.*)$"
)
_ERROR_LEVELS = ("panic", "fatal", "error")


#: The oldest ffmpeg release vsr runs (see the module docstring for why it is this one).
MINIMUM_VERSION = (9, 0)

_VERSION_LINE = re.compile(r"^ffmpeg version (?P<text>\S+)")
_RELEASE = re.compile(r"^n?(?P<major>\d+)\.(?P<minor>\d+)")


def parse_version(first_line: str) -> tuple[int, int] | None:
    """``(major, minor)`` from ``ffmpeg -version``'s first line; None for a development build.

    Raises ValueError when the line says nothing recognisable (not an ffmpeg, or an odd vendor string).
    """
    m = _VERSION_LINE.match(first_line.strip())
    if m is None:
        raise ValueError(first_line.strip()[:80] or "no output")
    text = m["text"]
    release = _RELEASE.match(text)
    if release:
        return int(release["major"]), int(release["minor"])
    if text.startswith(("N-", "git-", "git")):
        return None
    raise ValueError(text)


def check_version(path: str) -> tuple[int, int] | None:
    """Run ``path -version``; return its release, or raise :class:`FFmpegError` if it is unusable."""
    how = "--ffmpeg / VSR_FFMPEG"
    fix = "unset VSR_FFMPEG (or drop --ffmpeg) to use the bundled imageio-ffmpeg binary"
    try:
        proc = subprocess.run(
            [path, "-hide_banner", "-version"], capture_output=True, timeout=30, check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise FFmpegError(f"{how}: {path} does not run ({err}); {fix}") from None
    first = proc.stdout.decode("utf-8", "replace").splitlines()[:1]
    try:
        version = parse_version(first[0] if first else "")
    except ValueError as err:
        raise FFmpegError(f"{how}: {path} is not an ffmpeg vsr can identify ({err}); {fix}") from None
    if version is not None and version < MINIMUM_VERSION:
        want = ".".join(map(str, MINIMUM_VERSION))
        raise FFmpegError(
            f"{how}: {path} is ffmpeg {version[0]}.{version[1]}, older than {want}, whose timing vsr has "
            f"verified (older ones shift timestamps); {fix}, or point it at an ffmpeg >= {want}"
        )
    return version


@functools.lru_cache(maxsize=8)
def _version_text(path: str) -> str:
    """The release text of ``path -version`` (``9.0.2-static``), or ``unknown``."""
    try:
        proc = subprocess.run(
            [path, "-hide_banner", "-version"], capture_output=True, timeout=30, check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    first = proc.stdout.decode("utf-8", "replace").splitlines()[:1]
    m = _VERSION_LINE.match(first[0].strip()) if first else None
    return m["text"] if m else "unknown"


def ffmpeg_identity() -> dict:
    """``{"version": "9.0.2-static", "path": ...}`` of the ffmpeg in use (:func:`ffmpeg_exe`).

    A segmented job records it in its work folder: segments join bit-identically only when one ffmpeg
    release made them all, so a resume with another one is refused (see :mod:`.workdir`).
    """
    path = ffmpeg_exe()
    return {"version": _version_text(path), "path": path}


def use_ffmpeg(path) -> None:
    """Make ``path`` the ffmpeg of this process and of the workers it starts (``vsr upscale --ffmpeg``)."""
    os.environ["VSR_FFMPEG"] = os.fspath(path)
    ffmpeg_exe.cache_clear()


def bundled_ffmpeg() -> str | None:
    """The imageio-ffmpeg binary, or None if that package (an install requirement) is missing or broken."""
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError:
        return None


@functools.lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary to use: ``VSR_FFMPEG`` if set (version-checked), else the bundled one.

    The bundled binary is not version-checked: it is the release the tests run against.
    """
    override = os.environ.get("VSR_FFMPEG")
    if override:
        found = shutil.which(override)
        if found is None:
            raise FFmpegError(f"VSR_FFMPEG / --ffmpeg {override!r} is not an executable: fix or unset it")
        check_version(found)
        return found
    bundled = bundled_ffmpeg()
    if bundled is not None:
        return bundled
    raise FFmpegError(
        "the bundled ffmpeg is missing: run `pip install imageio-ffmpeg`, or set VSR_FFMPEG to an ffmpeg "
        f">= {'.'.join(map(str, MINIMUM_VERSION))}"
    )


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


def _query(exe: str, *args: str) -> tuple[str, ...]:
    proc = subprocess.run(
        [exe, "-hide_banner", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        check=False,
        timeout=30,
    )
    return tuple(proc.stdout.decode("utf-8", "replace").splitlines())


#: ``-encoders`` rows: `` V....D libx264   libx264 H.264 / AVC ... (codec h264)``.
_ENCODER_ROW = re.compile(r"^ (?P<flags>[VAS][A-Z.]{5}) (?P<name>\S+)\s+(?P<text>.*)$")
_CODEC_OF = re.compile(r"\(codec (?P<codec>[^)\s]+)\)\s*$")


@dataclass(frozen=True)
class EncoderListing:
    """One row of ``ffmpeg -encoders``: ``kind`` is video, audio or subtitle; ``codec`` the format it makes."""

    name: str
    kind: str
    codec: str
    description: str


@functools.cache
def _encoders_of(exe: str) -> dict[str, EncoderListing]:
    kinds = {"V": "video", "A": "audio", "S": "subtitle"}
    found: dict[str, EncoderListing] = {}
    for line in _query(exe, "-encoders"):
        m = _ENCODER_ROW.match(line)
        if m is None or m["name"] == "=":  # the legend (`` V..... = Video``)
            continue
        codec = _CODEC_OF.search(m["text"])
        found[m["name"]] = EncoderListing(
            m["name"], kinds[m["flags"][0]], codec["codec"] if codec else m["name"], m["text"].strip()
        )
    return found


def encoders() -> dict[str, EncoderListing]:
    """Every encoder the ffmpeg in use lists (``ffmpeg -encoders``), by name; asked once per binary."""
    return _encoders_of(ffmpeg_exe())


@functools.cache
def _encoder_help(exe: str, codec: str) -> tuple[str, ...]:
    return _query(exe, "-h", f"encoder={codec}")


def has_encoder(codec: str) -> bool:
    """Whether this ffmpeg build has the named encoder (e.g. ``libx265``)."""
    return codec in encoders()


def encoder_pix_fmts(codec: str) -> tuple[str, ...]:
    """Pixel formats the named encoder accepts (empty if unknown)."""
    for line in _encoder_help(ffmpeg_exe(), codec):
        if "Supported pixel formats:" in line:
            return tuple(line.split(":", 1)[1].split())
    return ()


def encoder_is_hardware(codec: str) -> bool:
    """Whether ``-h encoder=`` lists the ``hardware`` capability (NVENC, VAAPI, Vulkan, AMF, ...)."""
    for line in _encoder_help(ffmpeg_exe(), codec):
        if "General capabilities:" in line:
            return "hardware" in line.split(":", 1)[1].split()
    return False


@dataclass(frozen=True)
class EncoderOption:
    """A private option of an encoder as ``ffmpeg -h encoder=NAME`` lists it.

    ``low``/``high``: its range (None where ffmpeg prints INT_MAX, FLT_MAX and the like); ``constants``:
    the named values an int or flags option takes (NVENC's ``-preset p1`` ... ``p7``).
    """

    name: str
    type: str
    low: float | None = None
    high: float | None = None
    constants: tuple[str, ...] = ()


_OPTION_ROW = re.compile(r"^  -(?P<name>\S+)\s+<(?P<type>[^>]+)>\s+[A-Z.]{11}\s?(?P<text>.*)$")
_CONSTANT_ROW = re.compile(r"^     (?P<name>\S+)\s+(?:\S+\s+)?[A-Z.]{11}(?:\s|$)")
_RANGE = re.compile(r"\(from (?P<low>\S+) to (?P<high>[^)\s]+)\)")


def _bound(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None  # INT_MAX, FLT_MAX, INT_MIN, ...
    return value if abs(value) < 1e15 else None


@functools.cache
def _options_of(exe: str, codec: str) -> dict[str, EncoderOption]:
    options: dict[str, EncoderOption] = {}
    current: dict | None = None
    for line in _encoder_help(exe, codec):
        m = _OPTION_ROW.match(line)
        if m:
            r = _RANGE.search(m["text"])
            current = {
                "name": m["name"],
                "type": m["type"],
                "low": _bound(r["low"]) if r else None,
                "high": _bound(r["high"]) if r else None,
                "constants": [],
            }
            options[m["name"]] = current
            continue
        c = _CONSTANT_ROW.match(line)
        if c and current is not None:
            current["constants"].append(c["name"])
        elif not line.startswith(" "):
            current = None  # the next section (another AVOptions block, or the end)
    return {k: EncoderOption(**{**v, "constants": tuple(v["constants"])}) for k, v in options.items()}


def encoder_options(codec: str) -> dict[str, EncoderOption]:
    """The private options of the named encoder (``-h encoder=NAME``'s AVOptions), by name."""
    return _options_of(ffmpeg_exe(), codec)
