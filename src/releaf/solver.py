"""HiGHS, quiet: the mixed-integer solver releaf uses for its optimality bounds.

References
----------
Huangfu, Q., Hall, J. A. J. (2018) Parallelizing the dual revised simplex method, Math. Prog. Comp. 10, 119-142,
doi:10.1007/s12532-017-0130-5 (HiGHS).
"""

from __future__ import annotations

import highspy


def quiet_highs() -> highspy.Highs:
    """A HiGHS instance that writes nothing to stdout (not even its banner), so `--json` output stays clean."""

    class QuietHighs(highspy.Highs):
        # highspy.Highs() registers its callbacks (enableCallbacks) when it is created, and that first call into
        # HiGHS prints the version banner on the process's stdout while output_flag is still at its default: it
        # would corrupt `--json` output. enableCallbacks is the earliest public method to turn the output off.
        def enableCallbacks(self):
            self.setOptionValue("output_flag", False)
            super().enableCallbacks()

    h = QuietHighs()
    h.setOptionValue("output_flag", False)  # highspy versions that do not register callbacks when created
    return h
