"""A file's sha256 (and how often one separator byte occurs in it), computed on a worker thread.

Standard library only at import, on purpose: a command that knows its file before it imports the readers starts
the hash here (:func:`start`), and the hash then runs beside the imports of polars and the readers (about 0.2 s of
one core at ``releaf read``, with the second core idle) instead of after them. The reader takes the running digest
(:func:`claim`, through :func:`releaf.io.textfile.hashing` and :func:`releaf.io.textfile.sha256_of`) instead of
hashing the file a second time. A digest is claimed only for the same file (path, size and modification time).
"""

from __future__ import annotations

import hashlib
import os
import threading

# A file up to this size is read into memory by its reader, which hashes the bytes it already holds: a worker
# thread and a second read cost more than the hash itself (``releaf.io.textfile`` imports it from here).
IN_MEMORY_BYTES = 16 * 1024 * 1024
# Hashed in blocks this large: hashlib and numpy release the GIL for a block; between blocks
# the worker needs the GIL back, which a main thread busy importing holds for up to the switch interval (5 ms), so
# a block must take longer than that to hash (8 MiB: ~6 ms at 1.4 GB/s).
BLOCK_BYTES = 8 << 20

_RUNNING: dict[tuple[str, bytes | None], FileDigest] = {}
_LOCK = threading.Lock()


def _identity(path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns


class FileDigest:
    """The sha256 of a file and, with ``count`` (one byte, e.g. ``b","``), the number of times it occurs, computed
    on a daemon thread started at construction. :meth:`result` waits for both."""

    def __init__(self, path, count: bytes | None = None):
        self.path, self.count = os.fspath(path), count
        self.identity = _identity(self.path)
        self._value: str | None = None
        self._separators: int | None = None
        self._thread = threading.Thread(target=self._quietly, daemon=True)
        self._thread.start()

    def _quietly(self) -> None:
        # a file that vanishes, shrinks or becomes unreadable meanwhile: no traceback from the thread; result()
        # hashes again in the caller, where the error is raised and reported as the reader's
        try:
            self._work()
        except (OSError, ValueError):
            self._value = None

    def _work(self) -> None:
        counter = None
        if self.count is not None:
            import numpy as np

            byte = ord(self.count)

            def counter(block) -> int:  # numpy releases the GIL here; bytes.count would hold it
                return int(np.count_nonzero(np.frombuffer(block, np.uint8) == byte))
        h, n = hashlib.sha256(), 0
        # read into one reused buffer, not mapped: a mapped file that is truncated while it is hashed kills the
        # process with SIGBUS (found by the test suite); a read just ends early, and claim() then sees the change
        buf = bytearray(BLOCK_BYTES)
        view = memoryview(buf)
        with open(self.path, "rb") as f:
            while k := f.readinto(buf):
                h.update(view[:k])
                if counter is not None:
                    n += counter(view[:k])
        self._separators = n if counter is not None else None
        self._value = h.hexdigest()

    def done(self) -> bool:
        """Whether the thread has finished (:meth:`result` will not wait)."""
        return not self._thread.is_alive()

    def result(self) -> tuple[str, int | None]:
        """``(sha256 hex digest, separator count or None)``, once the thread is done. If the thread failed (the file
        vanished or became unreadable), the file is hashed here, so that the real error is raised."""
        self._thread.join()
        if self._value is None:  # plain reads: a missing or unreadable file raises its OSError here
            h, n = hashlib.sha256(), 0
            with open(self.path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
                    n += chunk.count(self.count) if self.count is not None else 0
            self._value, self._separators = h.hexdigest(), (n if self.count is not None else None)
        return self._value, self._separators


def start(path, count: bytes | None = None) -> FileDigest | None:
    """Start hashing ``path`` for a reader to :func:`claim` later; None (nothing started) for a file a reader
    holds in memory (up to :data:`IN_MEMORY_BYTES`) or one that cannot be opened (its reader says why)."""
    try:
        if os.stat(path).st_size <= IN_MEMORY_BYTES:
            return None
        digest = FileDigest(path, count)
    except OSError:
        return None
    with _LOCK:
        _RUNNING[(digest.path, count)] = digest
    return digest


def claim(path, count: bytes | None = None, *, any_count: bool = False) -> FileDigest | None:
    """The digest :func:`start` began for this file (and this ``count``; with ``any_count``, whatever it counts),
    removed from the registry; None if there is none or the file changed since."""
    key = os.fspath(path)
    with _LOCK:
        found = [k for k in _RUNNING if k[0] == key and (any_count or k[1] == count)]
        digest = _RUNNING.pop(found[0]) if found else None
    if digest is None:
        return None
    try:
        same = _identity(key) == digest.identity
    except OSError:
        same = False
    return digest if same else None
