"""Old name of :mod:`releaf.io.textfile`, kept only for ``releaf.intake`` (edited on another branch).

Import :mod:`releaf.io.textfile` instead; this alias goes once ``releaf.intake`` does so.
"""

from releaf.io.textfile import *  # noqa: F403
from releaf.io.textfile import head_of  # noqa: F401  (the one name releaf.intake uses)
