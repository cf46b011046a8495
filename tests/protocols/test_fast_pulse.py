"""The fast pulse test: step list, current profile, schedule text and pack throughput."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from releaf.errors import InputFileError
from releaf.protocols import fast_pulse as fp


def test_duration_is_at_most_the_estimator_window():
    assert fp.protocol_duration_s() == 60.0 == fp.MAX_WINDOW_S


def test_current_profile_charge_balance_against_step_list():
    t, i = fp.current_profile(65.0)
    assert t[0] == 0.0 and t[-1] == 60.0 and np.allclose(np.diff(t), 0.1)
    # independent: sum of (signed current x duration) over the step list
    expected_As = sum(s.current_A(65.0) * s.duration_s for s in fp.FAST_PULSE_STEPS)
    assert expected_As == pytest.approx(-650.0)
    assert np.sum(i[1:] * np.diff(t)) == pytest.approx(expected_As, abs=1e-6)
    assert i.min() == -130.0 and i.max() == 65.0


def test_step_table_currents_for_a_leaf_module():
    rows = fp.step_table(65.0)
    assert [r["current_A"] for r in rows] == [0.0, -65.0, 0.0, 65.0, 0.0, -130.0, 0.0]
    assert all(r["record_every_s"] == 0.1 for r in rows)


def test_maccor_text_lists_every_step_and_limits():
    text = fp.maccor_procedure_text(65.0)
    assert text.count("StepTime >=") == 7 and "End" in text
    assert "6.00-8.40 V" in text and "130.00 A" in text


def test_pack_time_channel_limited_and_operator_limited():
    # one channel: every module takes handling + test back to back
    assert fp.pack_test_time_s(48, 1, handling_s=90.0) == 48 * 150.0
    # one operator, many channels: the operator is the bottleneck, the last test ends 60 s after the last clamp
    assert fp.pack_test_time_s(48, 48, handling_s=90.0) == 48 * 90.0 + 60.0
    # as many operators as channels as modules: one round
    assert fp.pack_test_time_s(48, 48, handling_s=90.0, operators=48) == 150.0
    assert fp.modules_per_hour(1) == pytest.approx(24.0)
    assert fp.modules_per_hour(48) == pytest.approx(40.0)


@given(st.integers(1, 60), st.integers(1, 60), st.integers(1, 6))
def test_pack_time_never_below_either_bound(n_modules, channels, operators):
    t = fp.pack_test_time_s(n_modules, channels, handling_s=90.0, operators=operators)
    assert t >= np.ceil(n_modules / channels) * 150.0 - 1e-9
    assert t >= np.ceil(n_modules / operators) * 90.0 + 60.0 - 1e-9


def test_bad_input():
    with pytest.raises(InputFileError):
        fp.current_profile(0.0)
    with pytest.raises(InputFileError):
        fp.pack_test_time_s(48, 0)


def test_throughput_table_by_hand():
    # one operator, 90 s handling per module, a 60 s test: the operator is the bottleneck whatever the channel count,
    # 48 x 90 s of handling plus the last module's 60 s test = 73 min
    rows = fp.throughput_table((8, 48), n_modules=48, handling_s=90.0, operators=1)
    assert [r["pack_minutes"] for r in rows] == [73.0, 73.0]
    # one operator per channel on 8 channels: 6 rounds of (90 s + 60 s) = 15 min
    (row,) = fp.throughput_table((8,), n_modules=48, handling_s=90.0, operators=8)
    assert row["pack_minutes"] == 15.0
