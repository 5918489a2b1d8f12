"""Errors a user can cause. Each carries a one-line message that says what to do.

The CLI prints ``str(error)`` without a traceback and exits with ``error.exit_code``.
"""


class VsrError(Exception):
    """Base class of every error the user can cause or fix."""

    exit_code = 1


class InputError(VsrError):
    """The input file or folder is missing, unreadable or not media."""

    exit_code = 2


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
    """The user interrupted the job (Ctrl-C); partial output has been removed."""

    exit_code = 130
