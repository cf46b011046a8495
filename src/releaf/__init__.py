"""releaf: second-life grading, matching and certification of retired EV battery modules.

The public API (imported lazily, so that ``import releaf`` and the command line stay cheap):

``read(path)``                     a cycler export → canonical :class:`releaf.schema.TimeSeries`
``diagnose(ts, profile=...)``      one test → :class:`releaf.schema.records.Diagnosis` (default: the Leaf module)
``PlantChain``                     diagnose → grade → assemble → certify over a lot (:mod:`releaf.chain`)
``battery_profile(name_or_yaml)``  a packaged or user-defined battery parameter set
``__version__``
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["PlantChain", "__version__", "battery_profile", "diagnose", "read"]


def read(path, format: str | None = None, **options):
    """Read a cycler export into the canonical, validated table (see :func:`releaf.io.read`)."""
    from releaf import io

    return io.read(path, format=format, **options)


def diagnose(ts, profile="leaf-24kwh-module", **options):
    """Diagnose one test (see :func:`releaf.diagnostics.diagnose`).

    Parameters
    ----------
    ts : a :class:`releaf.schema.TimeSeries` (from :func:`read`) or the path of a test file
    profile : a battery profile name, the path of a parameter-set YAML, or a profile object; default the
        Nissan Leaf 24 kWh module
    options : passed on (``fit_ecm=True``)
    """
    from releaf.diagnostics import diagnose as diagnose_test
    from releaf.parameters import battery_profile as resolve
    from releaf.schema import TimeSeries

    if not isinstance(ts, TimeSeries):
        ts = read(ts)
    return diagnose_test(ts, resolve(profile), **options)


def battery_profile(name_or_path="leaf-24kwh-module"):
    """A battery profile by name, or from a parameter-set YAML file (see :mod:`releaf.parameters`)."""
    from releaf.parameters import battery_profile as resolve

    return resolve(name_or_path)


def __getattr__(name: str):
    if name == "PlantChain":
        from releaf.chain import PlantChain

        return PlantChain
    raise AttributeError(f"module 'releaf' has no attribute {name!r}")
