"""Errors a user can cause. Each carries a one-line message that says what to do.

The CLI prints ``str(error)`` without a traceback and exits with ``error.exit_code``.
"""

import signal


class VsrError(Exception):
    """Base class of every error the user can cause or fix."""

    exit_code = 1


class InputError(VsrError):
    """The input file or folder is missing, unreadable or not media.

    Exit status 8, not 2: 2 is click's (and argparse's) status for a usage error, and a script must
    be able to tell "I called it wrong" from "this file is bad".
    """

    exit_code = 8


class OutputError(VsrError):
    """The output path is refused (exists, equals the input, unsupported, unwritable)."""

    exit_code = 3


class ModelError(VsrError):
    """Unknown model name or bad model configuration."""

    exit_code = 4


class WeightsError(ModelError):
    """Weights are missing, truncated or do not match the manifest's checksum."""


class FFmpegError(VsrError):
    """ffmpeg is missing or failed; the message carries ffmpeg's last error line."""

    exit_code = 5


class DataError(VsrError):
    """A dataset or training folder is missing or has no usable images."""

    exit_code = 6


class MemoryLimitError(VsrError):
    """Not even one frame fits the memory budget (``--max-memory``, or the default share of free memory)."""

    exit_code = 7


class Cancelled(VsrError):
    """The user or a scheduler stopped the job (Ctrl-C, SIGTERM); partial output has been removed.

    The exit status is the shell's for the signal: 130 for SIGINT (Ctrl-C), 143 for SIGTERM.
    """

    def __init__(self, message: str = "", signum: int = signal.SIGINT):
        super().__init__(message)
        self.signum = int(signum)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    def __reduce__(self):  # keep the signal across a worker process's pipe
        return type(self), (str(self), self.signum)


#: Exit statuses of the ``vsr`` command, documented in the README ("Exit status").
EXIT_CODES = {
    0: "success",
    1: "some files of a folder failed (each was reported), or an unexpected error",
    2: "usage error: an unknown option or a bad option value (click's convention)",
    3: "output refused: exists, equals the input, unwritable, a missing folder, or the container cannot hold the streams",
    4: "unknown model, or its weights are missing or do not match the manifest",
    5: "ffmpeg missing, too old, or it failed (its last error line is shown)",
    6: "dataset or training folder missing or without usable images",
    7: "not even one frame fits the memory budget (--max-memory)",
    8: "input missing, unreadable or not media",
    130: "interrupted by Ctrl-C (SIGINT); partial output removed",
    143: "stopped by SIGTERM; partial output removed (vsr train: checkpoint saved)",
}
