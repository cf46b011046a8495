"""The shared wall-clock parser (releaf.io.datetimes) and the readers that use it."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest

from releaf.io import datetimes, read

MOMENT = datetime(2017, 5, 13, 15, 4, 5, 250000)


@pytest.mark.parametrize("fmt", datetimes.DATETIME_FORMATS)
def test_every_known_format_reads_back_what_python_writes(fmt):
    python_fmt = fmt.replace("%.f", ".%f")
    text = [MOMENT.strftime(python_fmt), (MOMENT.replace(day=14)).strftime(python_fmt)]
    parsed = datetimes.to_utc(pl.Series(text), fmt)
    assert parsed is not None and parsed.dtype == pl.Datetime("us", "UTC") and parsed.name == "datetime"
    has = {d: d in fmt for d in ("%S", "%.f")}
    expected = MOMENT.replace(second=MOMENT.second if has["%S"] else 0,
                              microsecond=MOMENT.microsecond if has["%.f"] else 0, tzinfo=UTC)
    assert parsed[0] == expected
    assert datetimes.format_of(text[0]) is not None


def test_the_first_format_that_reads_every_value_wins():
    # both layouts read 03/05 (month or day first): month first is listed first
    assert datetimes.to_utc(["03/05/2017 10:00:00", "03/06/2017 10:00:00"])[0] == datetime(2017, 3, 5, 10, tzinfo=UTC)
    # a day above 12 leaves only the day-first layout
    assert datetimes.to_utc(["03/05/2017 10:00:00", "13/05/2017 10:00:00"])[0] == datetime(2017, 5, 3, 10, tzinfo=UTC)
    # fractions optional; blanks are null and do not count against a format
    mixed = datetimes.to_utc(np.array(["2017-05-13 10:00:00", " 2017-05-13 10:00:00.5 ", ""]))
    assert mixed.to_list()[1:] == [datetime(2017, 5, 13, 10, 0, 0, 500000, tzinfo=UTC), None]
    assert datetimes.to_utc(["05/13/2017 10:00:00", "n/a"]) is None
    partial = datetimes.to_utc(["05/13/2017 10:00:00", "n/a"], "%m/%d/%Y %H:%M:%S", partial=True)
    assert partial.to_list() == [datetime(2017, 5, 13, 10, tzinfo=UTC), None]


def test_a_local_time_zone_is_converted_to_utc():
    berlin = datetimes.to_utc(["13.05.2017 10:00:00.0", "26.03.2017 02:30:00.0"], "%d.%m.%Y %H:%M:%S%.f",
                              time_zone="Europe/Berlin", partial=True)
    assert berlin.to_list() == [datetime(2017, 5, 13, 8, tzinfo=UTC), None]  # 02:30 that day does not exist


def test_format_of_a_single_value():
    assert datetimes.format_of("05/13/2017 10:00:00") == "%m/%d/%Y %H:%M:%S"
    assert datetimes.format_of("05/13/2017 10:00:00.123") == datetimes.MITS_FORMAT
    assert datetimes.format_of(" 13.05.2017 10:00:00 ") == "%d.%m.%Y %H:%M:%S%.f"  # %.f: the fraction is optional
    assert datetimes.format_of("Tuesday") is None


@pytest.mark.parametrize(("texts", "decoded_by_numpy"), [
    (["03/02/2026 07:00:00.000", "03/02/2026 07:00:00.100", "03/02/2026 23:59:59.999", "03/03/2026 00:00:00.000"],
     True),
    (["02/29/2024 12:00:00", "02/29/2024 12:00:01"], True),
    (["12/31/1999 23:59:59.123456", "12/31/1999 23:59:59.000001"], True),
    (["02/30/2026 07:00:00.000", "02/28/2026 07:00:00.000"], False),  # no such day
    (["03/02/2026 24:00:00.000", "03/02/2026 07:60:00.000", "03/02/2026 07:00:60.000"], False),  # leap second too
    (["3/2/2026 07:00:00.000", " 03/02/2026 07:00:00.000", "03/02/2026 07:00:00.1234567", "03-02-2026 07:00:00"],
     False),
    (["13/02/2026 07:00:00.000", "00/02/2026 07:00:00.000", "03/00/2026 07:00:00.000", "03/02/0000 07:00:00.000"],
     False),
])
def test_mits_datetime_reads_what_polars_strptime_reads(texts, decoded_by_numpy):
    """The numpy decoder of MITS Pro DateTime text gives polars' result, or declines and polars parses the text."""

    def polars_reads(values):
        return (pl.Series("datetime", values).str.strip_chars()
                .str.to_datetime(datetimes.MITS_FORMAT, strict=False, time_unit="us").dt.replace_time_zone("UTC"))

    for values in [texts, *([t] * 9 for t in texts)]:
        decoded = datetimes.mits_datetimes(pl.Series("datetime", values))
        expected = polars_reads(values)
        if decoded is not None:
            assert expected.null_count() == 0 and decoded.dtype == expected.dtype
            assert decoded.to_list() == expected.to_list()
        elif decoded_by_numpy and len(set(values)) == 1:  # (few rows of many dates are left to polars)
            pytest.fail(f"a well-formed column was left to polars: {values[:2]}")
        # and the parser gives the same either way
        parsed = datetimes.to_utc(pl.Series(values), datetimes.MITS_FORMAT, partial=True)
        assert parsed.equals(expected, check_dtypes=True, null_equal=True)


@pytest.mark.parametrize("fmt", datetimes.DATETIME_FORMATS)
def test_arbin_reads_its_wall_clock_in_any_known_format(tmp_path, fmt):
    python_fmt = fmt.replace("%.f", ".%f")
    rows = [f"{k + 1},{k},{(MOMENT.replace(minute=k)).strftime(python_fmt)},1,0,3.9" for k in range(3)]
    src = tmp_path / "clock.csv"
    src.write_text("Data_Point,Test_Time(s),Date_Time,Step_Index,Current(A),Voltage(V)\n" + "\n".join(rows) + "\n")
    got = read(src).data["datetime"]
    assert got.null_count() == 0 and got.dtype == pl.Datetime("us", "UTC")
    assert [t.minute for t in got] == [0, 1, 2]
