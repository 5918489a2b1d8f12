"""The work folder of a long job done in segments: manifest, claims and finished segments. Files only.

``OUT.vsr-work/`` sits beside the output ``OUT`` (same filesystem, so renames are atomic) and holds:

- ``manifest.json``: what the segments are made of: the source's identity (size, mtime, sha256 of its
  first MiB), the model identity and every option that changes pixels, the segment length and count,
  the span of a trimmed job (``--start``/``--duration``), the output size when not x4, and the ffmpeg
  release (and path) that encodes them. A job whose manifest differs refuses the folder
  (``--restart`` discards it); for another ffmpeg release the refusal names the one that made the
  segments, since only with it do resumed segments stay bit-identical. (The path is not compared: the
  same release installed elsewhere, on another machine of a sharded job say, is the same ffmpeg.)
- ``seg-00003.lock``: a claim, created with ``O_CREAT|O_EXCL`` so two processes (or two machines on a
  shared filesystem) never take the same segment. It names its host and pid and is touched every
  :data:`HEARTBEAT_SECONDS`; a claim is stale when its process is gone (same host) or it has not been
  touched for :data:`STALE_SECONDS` (any host), and then anyone may take the segment over.
- ``seg-00003.tmp.<token>.mp4``: a segment being encoded. Never trusted: removed when its claim is.
- ``merge.lock``: held (``flock``) by the run that joins the segments, from reading the records to
  removing the folder, so two runs that finish the last segments together never join at once: the
  second waits, then finds the folder gone (the first's output is the job's) and says so.
- ``seg-00003.mp4`` + ``seg-00003.json``: a finished segment. The media file is fsynced and renamed
  into place first, then its record (frame count, timestamps, sizes) is written the same way; a
  segment counts as done only when its record exists and names the file's exact size. A crash at
  any point (kill -9, power loss, full disk) therefore leaves either a finished segment or one that
  is redone.

Records are one file per segment, not entries in one manifest, so processes on several machines
finish segments without ever rewriting a shared file.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import socket
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import OutputError

WORK_SUFFIX = ".vsr-work"
FORMAT = "vsr-work/1"
MANIFEST = "manifest.json"
#: How often a claim is touched while its segment is being made.
HEARTBEAT_SECONDS = 30.0
#: A claim not touched for this long is abandoned (its machine died), whoever made it.
STALE_SECONDS = 600.0
_HEAD_BYTES = 1 << 20
HOST = socket.gethostname()


def work_folder_for(dst: Path) -> Path:
    """``out.mp4`` -> ``out.mp4.vsr-work`` beside it."""
    return dst.with_name(dst.name + WORK_SUFFIX)


def source_identity(src: Path) -> dict:
    """Size, mtime (ns) and sha256 of the first MiB: cheap, and changes whenever the file is replaced."""
    st = src.stat()
    with open(src, "rb") as f:
        head = hashlib.sha256(f.read(_HEAD_BYTES)).hexdigest()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "head_sha256": head}


@dataclass(frozen=True)
class SegmentRecord:
    """A finished segment. ``first_pts``/``next_pts`` are in ``time_base`` (source ticks): ``next_pts``
    is the pts of the first frame after the segment (None for the last), so consecutive segments join
    exactly when one's ``next_pts`` is the next one's ``first_pts``. ``file`` is None for a segment
    with no frames (a gap in a variable-frame-rate video)."""

    index: int
    file: str | None
    bytes: int
    frames: int
    start_us: int | None  # where the file starts as ffmpeg reads it, in microseconds
    first_pts: int | None
    next_pts: int | None
    time_base: str
    size: tuple[int, int] | None
    output_size: tuple[int, int] | None
    errors: int
    first_error: str | None
    adjusted: int
    seconds: float
    host: str
    pid: int
    #: The file has no start time of its own: the join gives ``start_us`` as its in-point (see segmented).
    inpoint: bool = False

    @classmethod
    def from_dict(cls, d: dict) -> SegmentRecord:
        d = dict(d)
        for key in ("size", "output_size"):
            d[key] = tuple(d[key]) if d.get(key) else None
        return cls(**d)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_json_atomic(path: Path, data: dict, *, exclusive: bool = False) -> bool:
    """Write, fsync and rename into place (``exclusive``: link, failing if ``path`` exists -> False)."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    try:
        if exclusive:
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
        else:
            os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    _fsync(path.parent)
    return True


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _process_start(pid: int) -> str | None:
    """The process's start time (clock ticks since boot) from /proc, None if it is gone or a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] in ("Z", "X") else fields[19]


def _alive(pid: int, start: str | None) -> bool:
    """Whether the process ``pid`` that started at ``start`` still runs (a reused pid does not count)."""
    if Path("/proc/self/stat").exists():
        now = _process_start(pid)
        return now is not None and (start is None or now == start)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Claim:
    """A segment this process holds: keeps its lock file touched until :meth:`release`."""

    def __init__(self, index: int, lock: Path, token: str):
        self.index, self.lock, self.token = index, lock, token
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="vsr-claim", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            with contextlib.suppress(OSError):
                os.utime(self.lock)

    def release(self) -> None:
        """Stop the heartbeat and remove the lock (if it is still ours). Safe to call more than once."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        info = _read_json(self.lock)
        if info is not None and info.get("token") == self.token:
            with contextlib.suppress(FileNotFoundError):
                self.lock.unlink()


class WorkFolder:
    """One job's work folder (see the module docstring). ``manifest`` is what :meth:`open` checked."""

    def __init__(self, path: Path, manifest: dict, extension: str):
        self.path = Path(path)
        self.manifest = manifest
        self.extension = extension  # of the segment media files: the output's own

    # -- the manifest ----------------------------------------------------------------------------
    @staticmethod
    def existing_manifest(path: Path) -> dict | None:
        """The manifest of the work folder at ``path``, None if there is none; refuses a foreign folder."""
        if not path.exists():
            return None
        manifest = _read_json(path / MANIFEST) if path.is_dir() else None
        if manifest is None and not path.exists():
            return None  # removed between the two looks: another run finished its job
        if manifest is None or manifest.get("format") != FORMAT:
            if path.is_dir() and (path / MANIFEST).exists():
                raise OutputError(f"{path}: its {MANIFEST} is damaged or from another version; pass --restart")
            raise OutputError(f"{path}: exists and is not a vsr work folder; move it away")
        return manifest

    @classmethod
    def open(cls, path: Path, manifest: dict, extension: str) -> WorkFolder:
        """Create the folder, or reuse it if it holds the same job; raises :class:`OutputError` otherwise."""
        path = Path(path)
        manifest = {"format": FORMAT, **manifest}
        # Another run of the same job may finish and remove the folder (renaming it away) at any
        # moment while this one opens it: then the folder is made afresh (a few tries).
        for _ in range(3):
            try:
                path.mkdir(exist_ok=True)
                if not (path / MANIFEST).exists():
                    _write_json_atomic(path / MANIFEST, manifest, exclusive=True)
            except FileNotFoundError:
                continue  # removed between mkdir and the manifest's write
            except OSError as e:
                raise OutputError(f"{path}: cannot create the work folder ({e.strerror or e})") from e
            old = cls.existing_manifest(path)
            if old is not None:
                break
        else:
            raise OutputError(f"{path}: another vsr run keeps removing this work folder; run again "
                              "when it has finished")
        changes = describe_changes(old, manifest)
        if changes:
            hint = "pass --restart to discard them"
            made_by = old.get("ffmpeg") or {}
            if _ffmpeg_release(old) != _ffmpeg_release(manifest) and made_by.get("path"):
                hint = f"rerun with the ffmpeg that made them (--ffmpeg {made_by['path']}) to resume, or {hint}"
            raise OutputError(f"{path}: holds segments of another job ({'; '.join(changes)}); {hint}")
        return cls(path, old, extension)

    # -- names -----------------------------------------------------------------------------------
    def _name(self, index: int) -> str:
        return f"seg-{index:05d}"

    def media(self, index: int) -> Path:
        return self.path / f"{self._name(index)}{self.extension}"

    def _record_path(self, index: int) -> Path:
        return self.path / f"{self._name(index)}.json"

    def _lock(self, index: int) -> Path:
        return self.path / f"{self._name(index)}.lock"

    def temp_media(self, claim: Claim) -> Path:
        """Where ``claim``'s segment is encoded before it is committed."""
        return self.path / f"{self._name(claim.index)}.tmp.{claim.token}{self.extension}"

    # -- state -----------------------------------------------------------------------------------
    def record(self, index: int) -> SegmentRecord | None:
        """The finished segment ``index``, or None if it is not (completely) done."""
        data = _read_json(self._record_path(index))
        if data is None:
            return None
        try:
            record = SegmentRecord.from_dict(data)
        except TypeError:
            return None
        if record.file is not None:
            try:
                if (self.path / record.file).stat().st_size != record.bytes:
                    return None
            except OSError:
                return None
        return record

    def done(self, indices) -> dict[int, SegmentRecord]:
        return {i: r for i in indices if (r := self.record(i)) is not None}

    def holder(self, index: int) -> dict | None:
        """Who holds segment ``index`` now (host, pid), or None if nobody does or the claim is stale."""
        lock = self._lock(index)
        info, stale = self._lock_state(lock)
        return None if stale or info is None else info

    def _lock_state(self, lock: Path) -> tuple[dict | None, bool]:
        """(what the lock says, whether it is stale); (None, True) when there is no lock."""
        try:
            age = time.time() - lock.stat().st_mtime
        except FileNotFoundError:
            return None, True
        info = _read_json(lock)
        if info is None:  # being written this instant, or left empty by a crash
            return {}, age > HEARTBEAT_SECONDS
        if info.get("host") == HOST:
            return info, not _alive(int(info.get("pid", -1)), info.get("start"))
        return info, age > STALE_SECONDS

    # -- claims ----------------------------------------------------------------------------------
    def claim(self, index: int) -> Claim | None:
        """Take segment ``index`` if it is neither done nor held by a live process; None otherwise."""
        if self.record(index) is not None:
            return None
        lock = self._lock(index)
        for _ in range(2):
            token = uuid.uuid4().hex[:12]
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if not self._reclaim(index):
                    return None
                continue
            try:
                info = {"host": HOST, "pid": os.getpid(), "start": _process_start(os.getpid()), "token": token}
                with os.fdopen(fd, "w") as f:
                    json.dump(info, f)
                claim = Claim(index, lock, token)
            except BaseException:  # Ctrl-C right here must not leave a lock nobody holds
                with contextlib.suppress(FileNotFoundError):
                    lock.unlink()
                raise
            if self.record(index) is not None:  # finished by someone else between our look and our lock
                claim.release()
                return None
            self._clear(index)
            return claim
        return None

    def claim_next(self, indices) -> Claim | None:
        """The first of ``indices`` that :meth:`claim` can take, or None."""
        for i in indices:
            claim = self.claim(i)
            if claim is not None:
                return claim
        return None

    def _reclaim(self, index: int) -> bool:
        """Remove a stale lock of segment ``index``; True if the segment is free now.

        A short-lived ``.reclaim`` lock makes the look-then-remove atomic, so two processes reclaiming
        the same stale lock cannot remove the fresh lock one of them just made.
        """
        lock, mutex = self._lock(index), self.path / f"{self._name(index)}.reclaim"
        info, stale = self._lock_state(lock)
        if not stale:
            return False
        try:
            os.close(os.open(mutex, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        except FileExistsError:
            with contextlib.suppress(OSError):
                if time.time() - mutex.stat().st_mtime > HEARTBEAT_SECONDS:
                    mutex.unlink()  # its maker died between these two lines
            return False
        try:
            again, still_stale = self._lock_state(lock)
            if still_stale and (again or {}).get("token") == (info or {}).get("token"):
                with contextlib.suppress(FileNotFoundError):
                    lock.unlink()
                return True
            return False
        finally:
            with contextlib.suppress(FileNotFoundError):
                mutex.unlink()

    def _clear(self, index: int) -> None:
        """Remove what a crashed attempt at segment ``index`` left: temporary and uncommitted files."""
        name = self._name(index)
        for path in self.path.glob(f"{name}.tmp.*"):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        for path in (self.media(index), self._record_path(index)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def commit(self, claim: Claim, tmp: Path | None, record: SegmentRecord) -> None:
        """Make ``claim``'s segment done: media file durable and in place first, then its record."""
        if tmp is not None:
            _fsync(tmp)
            os.replace(tmp, self.media(claim.index))
            _fsync(self.path)
        _write_json_atomic(self._record_path(claim.index), asdict(record))
        claim.release()

    def remove(self) -> None:
        """Remove the folder: renamed away first, so that another run still at work in it (claiming a
        segment, its encoder creating a file) finds it gone at once instead of refilling a folder
        being removed, which an rmtree in place then leaves behind, not empty."""
        trash = self.path.with_name(f"{self.path.name}.removing-{uuid.uuid4().hex[:8]}")
        try:
            os.rename(self.path, trash)
        except FileNotFoundError:
            return
        except OSError:
            trash = self.path  # cannot rename here: remove it in place
        shutil.rmtree(trash, ignore_errors=True)

    @contextlib.contextmanager
    def merging(self):
        """Hold the folder's merge lock; yields False when another run has joined the segments and
        removed the folder (before we got here, or while we waited for its lock)."""
        lock = self.path / "merge.lock"
        try:
            fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o644)
        except FileNotFoundError:  # the folder is gone
            yield False
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)  # blocks while another run joins
            except OSError:
                pass  # a filesystem without locks: as before, the output's atomic commit decides
            try:  # not removed with the folder meanwhile (an rmtree under way takes the manifest too)
                ours = os.stat(lock).st_ino == os.fstat(fd).st_ino and (self.path / MANIFEST).exists()
            except FileNotFoundError:
                ours = False
            if not ours:  # we may have made the lock in a folder being removed: leave no litter
                with contextlib.suppress(OSError):
                    os.unlink(lock)
                with contextlib.suppress(OSError):
                    os.rmdir(self.path)
            yield ours
        finally:
            os.close(fd)


#: Manifest keys and how a change of each is named in the refusal.
_WATCHED = {
    "source": "the source file changed",
    "model": "model",
    "encode": "encoding",
    "output_size": "output size",
    "scale": "scale",
    "segment_seconds": "segment length",
    "segments": "segment count",
    "trim": "span (--start/--duration)",
    "ffmpeg": "ffmpeg",
}


def _ffmpeg_release(manifest: dict) -> str | None:
    return (manifest.get("ffmpeg") or {}).get("version")


def describe_changes(old: dict, new: dict) -> list[str]:
    """What differs between two manifests, in words (empty if they describe the same job)."""
    changes = []
    for key, label in _WATCHED.items():
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if key == "source":
            changes.append(label)
        elif key == "ffmpeg":
            if _ffmpeg_release(old) != _ffmpeg_release(new):
                changes.append(f"made by {_ffmpeg_words(a)}, this run has {_ffmpeg_words(b)}")
        elif isinstance(a, dict) and isinstance(b, dict):
            diffs = [
                f"{k} {_short(a.get(k))} -> {_short(b.get(k))}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)
            ]
            changes.append(f"{label}: {', '.join(diffs)}")
        else:
            changes.append(f"{label} {a} -> {b}")
    return changes


def _ffmpeg_words(identity: dict | None) -> str:
    if not identity:
        return "an unrecorded ffmpeg"
    return f"ffmpeg {identity.get('version')} ({identity.get('path')})"


def _short(value) -> str:
    """A value for a one-line message: hashes cut to 12 characters."""
    text = str(value)
    return text[:12] + "..." if len(text) > 24 and all(c in "0123456789abcdef" for c in text) else text
