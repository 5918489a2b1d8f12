"""Output safety shared by videos and images: refusals up front, then write-to-temp-and-rename.

The temporary file sits beside the target (same filesystem, so the rename is atomic) and is named
``.<stem>.tmp.<random><ext>``: hidden, matched by the project's ``*.tmp.*`` ignore rule, and keeping the
extension so tools that sniff it behave. It is removed on any failure.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from ..errors import InputError, OutputError


def check_input_file(src: Path) -> None:
    """Refuse a missing input or a folder with a one-line :class:`InputError`."""
    if not src.exists():
        raise InputError(f"{src}: no such file")
    if src.is_dir():
        raise InputError(f"{src}: is a directory, not a file (give a file, or an output folder for a folder)")
    if not os.access(src, os.R_OK):
        raise InputError(f"{src}: not readable (check its permissions)")


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name the same file (through links, ``..``, or as hard links)."""
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def check_output_path(src: Path, dst: Path, *, overwrite: bool) -> None:
    """Refuse an output that is the input, a folder, or exists (unless ``overwrite``)."""
    if same_file(src, dst):
        raise OutputError(f"{dst}: output is the input file; choose another output name")
    if dst.is_dir():
        raise OutputError(f"{dst}: is a directory; give an output file name")
    if dst.exists() and not overwrite:
        raise OutputError(f"{dst}: already exists; pass --overwrite to replace it")


def check_output_folder(dst: Path) -> None:
    """Create ``dst``'s folder if missing and prove a file can be created there (removed at once)."""
    with AtomicOutput(dst):
        pass


class AtomicOutput:
    """Reserve a temporary file beside ``dst``; :meth:`commit` renames it into place.

    Use as a context manager: leaving the block without a commit removes the temporary file.
    Without ``overwrite`` the final step is a hard link, which fails rather than replace a file
    that appeared meanwhile.
    """

    def __init__(self, dst: Path, *, overwrite: bool = False):
        self.dst = Path(dst)
        self.overwrite = overwrite
        self.tmp: Path | None = None
        self.committed = False

    def __enter__(self):
        folder = self.dst.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f".{self.dst.stem}.tmp.", suffix=self.dst.suffix, dir=folder)
        except OSError as e:
            raise OutputError(
                f"{self.dst}: cannot write to {folder} ({e.strerror or e}); choose another output folder"
            ) from e
        os.close(fd)
        self.tmp = Path(name)
        return self

    def commit(self) -> None:
        assert self.tmp is not None
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self.tmp, 0o666 & ~umask)  # mkstemp made it 0600; give it a normal file's mode
        if self.overwrite:
            os.replace(self.tmp, self.dst)
        else:
            try:
                os.link(self.tmp, self.dst)
            except FileExistsError:
                raise OutputError(f"{self.dst}: appeared while we worked; pass --overwrite to replace it") from None
            except OSError as e:
                if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
                    raise
                if self.dst.exists():  # filesystem without hard links: check, then rename
                    raise OutputError(f"{self.dst}: already exists; pass --overwrite to replace it") from None
                os.replace(self.tmp, self.dst)
            else:
                os.unlink(self.tmp)
        self.committed = True

    def discard(self) -> None:
        if self.tmp is not None and not self.committed:
            try:
                self.tmp.unlink()
            except FileNotFoundError:
                pass

    def __exit__(self, *exc) -> None:
        self.discard()
