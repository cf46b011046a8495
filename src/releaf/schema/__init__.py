"""The canonical time series (``timeseries``) and the typed, versioned records the chain passes on (``records``)."""

from releaf.schema.timeseries import (
    COLUMNS,
    GROUP_VOLTAGE_PREFIX,
    REQUIRED,
    TEMPERATURE_PREFIX,
    Column,
    SourceMeta,
    TimeSeries,
    rest_mask,
    rest_threshold_A,
    step_type_from_current,
    validate,
)

__all__ = [
    "COLUMNS", "GROUP_VOLTAGE_PREFIX", "REQUIRED", "TEMPERATURE_PREFIX", "Column", "SourceMeta", "TimeSeries",
    "rest_mask", "rest_threshold_A", "step_type_from_current", "validate",
]
