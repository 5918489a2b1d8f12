"""Where start-up time goes: named phases, timed and logged, and the process's age.

Each phase (importing TensorFlow, building the generator, folding BatchNorm, converting to LiteRT,
reading the cache, timing the runtimes, the first model call) is logged on the ``vsr`` logger at
INFO as ``start-up: NAME 1.23 s`` and kept in :func:`phases`, so ``vsr upscale -v`` and
``benchmarks/startup_time.py`` show the breakdown. No TensorFlow here.
"""

import contextlib
import logging
import os
import sys
import time

log = logging.getLogger("vsr")

_IMPORTED = time.monotonic()
_phases = []


@contextlib.contextmanager
def phase(name):
    """Time the block as start-up phase ``name`` (seconds, logged at INFO and kept)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        seconds = time.perf_counter() - started
        _phases.append((name, seconds))
        log.info("start-up: %s %.2f s", name, seconds)


def phases():
    """``[(name, seconds), ...]`` of the phases this process went through, in order."""
    return list(_phases)


def import_keras():
    """``import keras`` (which imports TensorFlow with its backend), timed as a phase the first time."""
    if "keras" in sys.modules:
        import keras

        return keras
    with phase("import Keras/TensorFlow"):
        import keras
    return keras


def process_age():
    """Seconds since this process started (Linux: from /proc), else since vsr was imported."""
    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: start time, clock ticks after boot
        age = uptime - started
        if 0 <= age < 10 * 365 * 86400:
            return age
    except (OSError, ValueError, IndexError, AttributeError):
        pass
    return time.monotonic() - _IMPORTED


def is_vsr_process():
    """True when this process is the ``vsr`` command (``vsr ...`` or ``python -m vsr ...``)."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return getattr(spec, "name", None) in ("vsr", "vsr.__main__", "vsr.cli") or \
        os.path.basename(sys.argv[0] if sys.argv else "") in ("vsr", "vsr.exe")


def waited(command_started):
    """Seconds the user has waited for a command that began at ``command_started`` (``time.monotonic()``):
    from the process's start when this process is the ``vsr`` command (imports count), else (a test's
    CliRunner, a notebook) from ``command_started``."""
    return process_age() if is_vsr_process() else time.monotonic() - command_started


class _EchoHandler(logging.Handler):
    # Writes to whatever sys.stderr is at the time (CliRunner swaps it per call), via click.
    def emit(self, record):
        import click

        try:
            click.echo(f"vsr: {self.format(record)}", err=True)
        except Exception:  # noqa: BLE001 - logging must never break the job
            self.handleError(record)


def cli_logging(verbose=False):
    """The command line's logging: vsr's warnings (and with ``verbose`` its INFO messages: start-up
    phases, the runtime ``auto`` chose) as ``vsr: ...`` lines on stderr, and only there (TensorFlow's
    absl handler on the root logger would print them a second time). Idempotent."""
    log.setLevel(logging.INFO if verbose else logging.WARNING)
    log.propagate = False
    if not any(isinstance(h, _EchoHandler) for h in log.handlers):
        log.addHandler(_EchoHandler())
