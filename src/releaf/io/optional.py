"""The optional packages that rare formats need, imported only when a file of such a format is read.

``import releaf.io`` and format detection never import them; a reader calls :func:`require` at the start of its
read, and a missing package becomes a :class:`~releaf.errors.ConfigError` that names the extra installing it.

============== ================ =================== ===========================================
import name     package          extra               formats
============== ================ =================== ===========================================
NewareNDA       NewareNDA        ``releaf[neware]``  neware-nda (``.nda``, auxiliary ``.ndc``)
fastnda         fastnda          ``releaf[neware]``  neware-nda (``.ndax`` records)
fastexcel       fastexcel        ``releaf[arbin]``   arbin-xlsx
access_parser   access-parser    ``releaf[arbin]``   arbin-res
galvani         galvani          ``releaf[biologic]`` biologic-mpr (GPL-3.0: never a default dependency)
============== ================ =================== ===========================================

``releaf[all-formats]`` installs them all.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from releaf.errors import ConfigError

# import name -> (package name on PyPI, extra of releaf that installs it)
PACKAGES = {
    "NewareNDA": ("NewareNDA", "neware"),
    "fastnda": ("fastnda", "neware"),
    "fastexcel": ("fastexcel", "arbin"),
    "access_parser": ("access-parser", "arbin"),
    "galvani": ("galvani", "biologic"),
}


def require(module: str, *, path, format: str) -> ModuleType:
    """Import the optional package ``module`` to read a file of ``format``.

    Parameters
    ----------
    module : import name, a key of :data:`PACKAGES`
    path : the file being read (named in the error)
    format : releaf's format name (``"neware-nda"`` ...)

    Returns
    -------
    The imported module.

    Raises
    ------
    ConfigError
        when the package is not installed: ``reading <format> needs the optional package <package>: pip install
        'releaf[<extra>]'``.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name is None or err.name.split(".")[0] != module:
            raise  # the package is there but one of its own dependencies is not: say so as it is
        package, extra = PACKAGES[module]
        raise ConfigError(path, f"reading {format} needs the optional package {package}: "
                                f"pip install 'releaf[{extra}]'") from None
