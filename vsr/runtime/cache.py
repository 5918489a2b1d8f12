"""vsr's cache folder: converted models and the runtime ``auto`` chose, kept between runs.

Where: ``$VSR_CACHE_DIR``, else ``$XDG_CACHE_HOME/vsr``, else ``~/.cache/vsr``. ``VSR_NO_CACHE=1``
turns it off (nothing read or written). Layout::

    litert/<digest>.bin     a converted LiteRT flatbuffer behind a header (its key, size, sha256)
    runtime/<digest>.json   the runtime ``auto`` chose for one model, machine and input size
    locks/<digest>.lock     held while an entry is made, so concurrent processes make it once

``<digest>`` is the sha256 of the entry's key, a JSON-able dict naming everything the entry depends on
(weights sha256, architecture, precision, vsr/TensorFlow versions, a format number, ...). Entries are
written to a temporary file and renamed, so a reader sees a whole entry or none; one that is
truncated, corrupt or made for another key anyway is detected on reading, removed and made again.
A cache that cannot be written (read-only home, full disk) only costs time: the job goes on.
"""

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path

log = logging.getLogger("vsr")

#: Converted models kept per kind (the least recently used go first).
MAX_ENTRIES = 16
_MAGIC = b"vsr-cache 1\n"


def cache_dir():
    """The cache folder (a ``Path``, perhaps not created yet), or None when ``VSR_NO_CACHE`` is set."""
    if os.environ.get("VSR_NO_CACHE", "").strip() not in ("", "0"):
        return None
    env = os.environ.get("VSR_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"  # XDG: relative = unset
    return base / "vsr"


def key_digest(key):
    """Hex sha256 of ``key`` as canonical JSON (sorted keys): the entry's file name."""
    return hashlib.sha256(_canonical(key)).hexdigest()


def _canonical(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def entry_path(kind, key, suffix):
    """Where the entry of ``key`` lives (None when the cache is off)."""
    root = cache_dir()
    return None if root is None else root / kind / f"{key_digest(key)}{suffix}"


def read_blob(kind, key):
    """The bytes stored for ``key``, or None (missing, cache off, or found corrupt and removed)."""
    path = entry_path(kind, key, ".bin")
    data = _read(path)
    if data is None:
        return None
    payload = _verified(data, key)
    if payload is None:
        _discard(path, "is truncated, corrupt or not for this model")
        return None
    _touch(path)
    return payload


def write_blob(kind, key, payload):
    """Store ``payload`` for ``key`` (atomically); returns whether it was written."""
    path = entry_path(kind, key, ".bin")
    if path is None:
        return False
    header = _canonical({"key": key, "size": len(payload), "sha256": hashlib.sha256(payload).hexdigest()})
    written = _write_atomic(path, _MAGIC + header + b"\n" + payload)
    if written:
        _prune(path.parent, ".bin")
    return written


def read_json(kind, key):
    """The value stored for ``key``, or None (missing, cache off, or corrupt and removed)."""
    path = entry_path(kind, key, ".json")
    data = _read(path)
    if data is None:
        return None
    try:
        entry = json.loads(data)
        if entry["key"] == json.loads(_canonical(key)):
            return entry["value"]
    except (ValueError, KeyError, TypeError):
        pass
    _discard(path, "is corrupt or not for this key")
    return None


def write_json(kind, key, value):
    """Store a JSON-able ``value`` for ``key`` (atomically); returns whether it was written."""
    path = entry_path(kind, key, ".json")
    if path is None:
        return False
    return _write_atomic(path, json.dumps({"key": key, "value": value}, indent=1, sort_keys=True).encode())


@contextlib.contextmanager
def locked(kind, key):
    """Hold the entry's lock (an exclusive ``flock``) while making it; a no-op where there is none.

    A second process asking for the same entry waits here, then finds it made. The kernel drops
    the lock of a process that dies, so a crash cannot wedge the cache.
    """
    path = entry_path("locks", {"kind": kind, "key": key}, ".lock")
    handle = None
    if path is not None:
        try:
            import fcntl

            path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(path, "a+b")
            fcntl.flock(handle, fcntl.LOCK_EX)
        except (ImportError, OSError):  # no fcntl (Windows) or an unwritable cache: go on unlocked
            if handle is not None:
                handle.close()
            handle = None
    try:
        yield
    finally:
        if handle is not None:
            handle.close()  # releases the flock


def _verified(data, key):
    if not data.startswith(_MAGIC):
        return None
    end = data.find(b"\n", len(_MAGIC))
    if end < 0:
        return None
    try:
        header = json.loads(data[len(_MAGIC):end])
        payload = data[end + 1:]
        ok = (header["key"] == json.loads(_canonical(key)) and header["size"] == len(payload)
              and header["sha256"] == hashlib.sha256(payload).hexdigest())
    except (ValueError, KeyError, TypeError):
        return None
    return payload if ok else None


def _read(path):
    if path is None:
        return None
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as err:
        log.warning("cannot read cache entry %s (%s): making it again", path, err.strerror or err)
        return None


def _write_atomic(path, data):
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return True
    except OSError as err:
        log.warning("cannot write the cache entry %s (%s): going on without it (VSR_CACHE_DIR "
                    "picks another folder, VSR_NO_CACHE=1 turns the cache off)", path, err.strerror or err)
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        return False


def _discard(path, why):
    log.warning("cache entry %s %s: making it again", path, why)
    with contextlib.suppress(OSError):
        path.unlink()


def _touch(path):
    with contextlib.suppress(OSError):
        os.utime(path)


def _prune(folder, suffix, keep=MAX_ENTRIES):
    import time

    try:
        entries = sorted(folder.glob(f"*{suffix}"), key=lambda p: p.stat().st_mtime, reverse=True)
        # a writer killed between its temporary file and the rename leaves the former behind
        stale = [p for p in folder.glob(".*.tmp") if p.stat().st_mtime < time.time() - 3600]
    except OSError:  # another process pruned at the same time
        return
    for old in entries[keep:] + stale:
        with contextlib.suppress(OSError):
            old.unlink()
