"""Fuzz ``releaf.diagnostics.diagnose`` with the strategy of ``tests/diagnostics/test_diagnose_fuzz.py``.

    .venv/bin/python benchmarks/fuzz_diagnose.py [--examples 10000] [--seed N]

Runs the same generated tables (random step sequences, gaps, noise, 0-4 group columns, up to ~10^6 rows) through
``validate`` and ``diagnose`` and prints the number of examples, the time, how many ended in a ``ReleafError``
and how many in a diagnosis, and every distinct failure Hypothesis found (shrunk), with its traceback.
Exit code 1 when there was a failure.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "diagnostics"))

from hypothesis import HealthCheck, given, seed, settings  # noqa: E402
from test_diagnose_fuzz import check, tables  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=None, help="Hypothesis seed (default: random)")
    args = parser.parse_args()
    outcomes: Counter[str] = Counter()

    @settings(max_examples=args.examples, deadline=None, database=None, print_blob=True,
              suppress_health_check=list(HealthCheck))
    @given(tables)
    def run(spec):
        outcomes[check(spec)] += 1

    if args.seed is not None:
        run = seed(args.seed)(run)
    start = time.perf_counter()
    failed = False
    try:
        run()
    except BaseException as exc:  # a failure of the contract: report it, whatever it is
        if isinstance(exc, KeyboardInterrupt):
            raise
        failed = True
        traceback.print_exception(exc)
    elapsed = time.perf_counter() - start
    print(f"examples run: {sum(outcomes.values())} (requested {args.examples}); "
          f"ReleafError: {outcomes['error']}, diagnosis: {outcomes['diagnosis']}; time: {elapsed:.1f} s; "
          f"{'FAILED' if failed else 'no failure'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
