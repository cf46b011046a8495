import pytest

from releaf.errors import ConfigError, InputFileError
from releaf.station.loads import USE_CASES, UseCase, use_case


def test_builtins():
    assert set(USE_CASES) == {"phone", "guitar-amp", "fridge"}
    phone = use_case("phone")
    assert (phone.output, phone.power_W, phone.energy_per_unit_Wh, phone.unit_name) == (
        "usb_dc", 18.0, 15.0, "phone charges")
    assert phone.output_energy_per_unit_Wh == pytest.approx(15.0 / 0.85)
    amp = use_case("guitar-amp")
    assert (amp.output, amp.power_W, amp.duty_cycle, amp.energy_per_unit_Wh) == ("ac", 100.0, 1.0, None)
    fridge = use_case("fridge")
    assert (fridge.output, fridge.power_W, fridge.duty_cycle) == ("ac", 150.0, 0.3)
    assert fridge.mean_power_W == pytest.approx(45.0)


def test_unknown_use_case_lists_known():
    with pytest.raises(ConfigError, match="known: phone, guitar-amp, fridge"):
        use_case("kettle")


@pytest.mark.parametrize(
    ("kw", "text"),
    [
        ({"output": "dc"}, "output must be one of"),
        ({"power_W": 0.0}, "power_W must be positive"),
        ({"duty_cycle": 1.5}, "duty_cycle"),
        ({"energy_per_unit_Wh": 10.0}, "give both or neither"),
        ({"unit_efficiency": 0.0}, "unit_efficiency"),
    ],
)
def test_validation(kw, text):
    args = dict(name="x", description="", power_W=10.0, duty_cycle=1.0, output="ac") | kw
    with pytest.raises(InputFileError, match=text):
        UseCase(**args)


def test_to_dict():
    assert use_case("fridge").to_dict()["duty_cycle"] == 0.3
