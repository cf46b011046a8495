"""Named points in a store write where the durability suite can kill the process (``kill -9`` on purpose).

``RELEAF_KILL_AT=<name>`` (or ``<name>#<k>`` for the k-th time the point is reached) makes the process send itself
SIGKILL there: no ``finally``, no rollback, no flush, exactly what a power cut or the OOM killer does. The plant never
sets it; ``tests/store/test_durability.py`` and ``benchmarks/durability.py`` do, to prove that a kill at every phase
boundary leaves the database either as before or complete. SQLite itself is tested the same way (its "crash tests").

Points, in the order a ``releaf run`` reaches them:

==================== ==============================================================================
``migrate:begin``    the schema transaction is open and holds the write lock
``migrate:ddl``      after each statement of a migration (CREATE, ALTER, DROP, the version row)
``migrate:end``      the migration is complete, not yet committed
``ingest:begin``     the run's write transaction is open and holds the write lock
``ingest:row``       after each module's records are flushed
``commit:before``    everything is flushed; COMMIT is next
``commit:after``     COMMIT returned
==================== ==============================================================================
"""

from __future__ import annotations

import os
import signal
from collections import Counter

KILL_AT_ENV = "RELEAF_KILL_AT"
POINTS = ("migrate:begin", "migrate:ddl", "migrate:end", "ingest:begin", "ingest:row", "commit:before",
          "commit:after")
_reached: Counter[str] = Counter()


def checkpoint(name: str) -> None:
    """Mark that the write reached ``name``; kill the process here if ``RELEAF_KILL_AT`` asks for it."""
    target = os.environ.get(KILL_AT_ENV)
    if not target:
        return
    _reached[name] += 1
    point, _, nth = target.partition("#")
    if point == name and _reached[name] == (int(nth) if nth else 1):
        os.kill(os.getpid(), signal.SIGKILL)
