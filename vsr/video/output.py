"""Output safety shared by videos and images: refusals up front, then write-to-temp-and-rename.

The temporary file sits beside the target (same filesystem, so the rename is atomic) and is named
``.<stem>.tmp.<random><ext>``: hidden, matched by the project's ``*.tmp.*`` ignore rule, and keeping the
extension so tools that sniff it behave. It is removed on any failure.

A process killed outright (``kill -9``, power cut) cannot remove it, so the job holds an exclusive
``flock`` on its temporary file while it lives (the kernel drops it when the process dies, however it
dies) and every later run for the same target removes the temporaries nobody holds
(:func:`remove_stale_temporaries`): at 8K such a leftover is gigabytes. A temporary another live run
holds is left alone.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
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


def _temporary_pattern(dst: Path) -> re.Pattern:
    # mkstemp's random part: 8 characters of [a-z0-9_].
    return re.compile(re.escape(f".{dst.stem}.tmp.") + r"[a-z0-9_]{8}" + re.escape(dst.suffix) + "$")


def remove_stale_temporaries(dst: Path) -> list[tuple[Path, int]]:
    """Remove the temporary files of ``dst`` that runs killed before their clean-up left behind.

    A temporary is stale when no process holds its lock (see the module docstring). Returns
    ``(path, bytes)`` of each removed file; one that cannot be removed is left (the run goes on).
    """
    dst = Path(dst)
    pattern = _temporary_pattern(dst)
    try:
        names = [n for n in os.listdir(dst.parent) if pattern.match(n)]
    except OSError:
        return []
    removed = []
    for name in sorted(names):
        path = dst.parent / name
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue  # a live run holds it
        try:
            size = os.fstat(fd).st_size
            os.unlink(path)
            removed.append((path, size))
        except OSError:
            pass
        finally:
            os.close(fd)
    return removed


def stale_note(removed: list[tuple[Path, int]]) -> list[str]:
    """The summary's note about :func:`remove_stale_temporaries`' work (none if it removed nothing)."""
    if not removed:
        return []
    total = sum(size for _, size in removed)
    names = ", ".join(p.name for p, _ in removed[:3]) + (", ..." if len(removed) > 3 else "")
    return [
        f"removed {len(removed)} temporary file{'s' * (len(removed) != 1)} ({total / 1e6:.1f} MB: {names}) "
        "that an interrupted earlier run left"
    ]


def check_output_folder(dst: Path) -> None:
    """Prove a file can be created in ``dst``'s folder (it is removed at once).

    The folder must exist: a typo in an output path must not create a tree of folders (ffmpeg
    refuses such a path too). Folder jobs create their output folder with :func:`make_output_folder`.
    """
    with AtomicOutput(dst):
        pass


def make_output_folder(folder: Path) -> None:
    """Create the output folder of a folder job (``vsr upscale DIR OUTDIR``) if missing; its parent
    must exist, for the same reason as in :func:`check_output_folder`."""
    folder = Path(folder)
    if folder.is_dir():
        return
    if not folder.parent.is_dir():
        raise OutputError(f"{folder}: its folder {folder.parent} does not exist; create it first or check the path")
    try:
        folder.mkdir(exist_ok=True)
    except OSError as e:
        raise OutputError(f"{folder}: cannot create it ({e.strerror or e}); choose another output folder") from e


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
        self._lock: int | None = None  # our open descriptor of tmp, holding its flock

    def __enter__(self):
        folder = self.dst.parent
        if not folder.is_dir():
            raise OutputError(f"{self.dst}: the folder {folder} does not exist; create it first or check the path")
        try:
            while True:
                fd, name = tempfile.mkstemp(prefix=f".{self.dst.stem}.tmp.", suffix=self.dst.suffix, dir=folder)
                if self._locked(fd, name):
                    break
                os.close(fd)  # another run's sweep took it between mkstemp and our lock: take another
        except OSError as e:
            raise OutputError(
                f"{self.dst}: cannot write to {folder} ({e.strerror or e}); choose another output folder"
            ) from e
        self._lock = fd
        self.tmp = Path(name)
        return self

    @staticmethod
    def _locked(fd: int, name: str) -> bool:
        """Lock ``fd`` (says "in use" to other runs' sweeps); False if a sweep got it first."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        except OSError:
            return True  # a filesystem without locks: no sweep can lock it either, so none removes it
        try:
            return os.stat(name).st_ino == os.fstat(fd).st_ino  # not unlinked before we locked it
        except FileNotFoundError:
            return False

    def _unlock(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

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
        self._unlock()

    def discard(self) -> None:
        if self.tmp is not None and not self.committed:
            try:
                self.tmp.unlink()
            except FileNotFoundError:
                pass
        self._unlock()

    def __exit__(self, *exc) -> None:
        self.discard()
