"""The early file hash of ``releaf read``: the reader takes it over, and it equals a plain sha256 of the file."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

from releaf import filedigest
from releaf.io import textfile


def _file(tmp_path, text=b"a,b,c\n1,2,3\n4,5,6\n"):
    path = tmp_path / "f.csv"
    path.write_bytes(text)
    return path


def test_a_started_digest_is_taken_over_by_the_reader_and_equals_hashlib(tmp_path, monkeypatch):
    monkeypatch.setattr(filedigest, "IN_MEMORY_BYTES", 0)
    path = _file(tmp_path)
    started = filedigest.start(path, count=b",")
    assert started is not None
    with textfile.hashing(path, count=b",") as digest:
        pass
    assert digest.hexdigest() == hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest.separators == path.read_bytes().count(b",")
    assert filedigest.claim(path, b",") is None  # taken: a second reader hashes on its own


def test_sha256_of_takes_any_started_digest_and_a_changed_file_is_hashed_again(tmp_path, monkeypatch):
    monkeypatch.setattr(filedigest, "IN_MEMORY_BYTES", 0)
    path = _file(tmp_path)
    filedigest.start(path, count=b",")
    assert textfile.sha256_of(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    filedigest.start(path)
    path.write_bytes(b"other,content\n")
    os.utime(path, ns=(1, 1))
    assert filedigest.claim(path) is None
    assert textfile.sha256_of(path) == hashlib.sha256(b"other,content\n").hexdigest()


def test_a_small_or_missing_file_starts_nothing(tmp_path):
    assert filedigest.start(_file(tmp_path)) is None  # its reader holds it in memory and hashes those bytes
    assert filedigest.start(tmp_path / "missing.csv") is None


def test_a_file_the_worker_cannot_read_is_hashed_again_by_the_caller(tmp_path):
    # the worker meets no file (it vanished or became unreadable): no traceback from the thread, and the caller's
    # result is the hash of the file as it now is (or the caller's own OSError)
    path = tmp_path / "late.csv"
    digest = filedigest.FileDigest.__new__(filedigest.FileDigest)
    digest.path, digest.count, digest.identity = str(path), b",", None
    digest._value = digest._separators = None
    digest._quietly()
    assert digest._value is None
    digest._thread = type("T", (), {"join": lambda self: None})()
    path.write_bytes(b"x,y\n")
    assert digest.result() == (hashlib.sha256(b"x,y\n").hexdigest(), 1)


TRUNCATE_WHILE_HASHING = """
import hashlib, sys
from releaf import filedigest
path = sys.argv[1]
real = hashlib.sha256
class Cutting:
    def __init__(self):
        self.h, self.cut = real(), False
    def update(self, block):
        if not self.cut:  # the file is cut short while the worker holds its first block
            open(path, "wb").close()
            self.cut = True
        self.h.update(block)
    def hexdigest(self):
        return self.h.hexdigest()
filedigest.hashlib.sha256 = Cutting
d = filedigest.FileDigest.__new__(filedigest.FileDigest)
d.path, d.count = path, None
d._work()
print("survived")
"""


def test_a_file_truncated_while_hashed_does_not_kill_the_process(tmp_path):
    """A mapped block of a file cut short under the worker raised SIGBUS and killed the process (seen in the test
    suite); a block read into memory does not. Run in a child process, which is what a SIGBUS would kill."""
    path = _file(tmp_path, b"a,b\n" * 100_000)
    out = subprocess.run([sys.executable, "-c", TRUNCATE_WHILE_HASHING, str(path)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "survived", (out.returncode, out.stderr[-300:])
