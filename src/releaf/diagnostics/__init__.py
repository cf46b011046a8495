"""Diagnostics of one test: capacity and energy (``capacity``), DC resistance (``resistance``), series groups
(``groups``), and the chain of them (``diagnose``)."""

from releaf.diagnostics.diagnose import diagnose

__all__ = ["diagnose"]
