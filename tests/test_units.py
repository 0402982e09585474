"""COSEM unit table: spot checks against the Blue Book and a cross-check with gurux_dlms.

Spot values: Blue Book Ed. 12.2 excerpt / Ed. 14, 4.3.2 Table 4 (27 W, 30 Wh, 33 A,
35 V, 44 Hz, 255 count).  Scaler_unit {-2, 35} is the Gurux forum example
(www.gurux.fi/index.php/node/25704): volts with two decimals.
"""

from __future__ import annotations

import pytest

from dlmsd.protocol.axdr import decode_data_all
from dlmsd.protocol.units import UNITS, Unit, unit_symbol


@pytest.mark.parametrize(
    ("code", "symbol", "name"),
    [
        (1, "a", "year"),
        (7, "s", "second"),
        (8, "°", "degree"),
        (9, "°C", "degree Celsius"),
        (13, "m³", "cubic metre"),
        (27, "W", "watt"),
        (28, "VA", "volt-ampere"),
        (29, "var", "var"),
        (30, "Wh", "watt-hour"),
        (31, "VAh", "volt-ampere-hour"),
        (32, "varh", "var-hour"),
        (33, "A", "ampere"),
        (35, "V", "volt"),
        (38, "Ω", "ohm"),
        (44, "Hz", "hertz"),
        (56, "%", "percent"),
        (72, "dB", "decibel"),
        (254, "other", "other unit"),
        (255, "", "count"),
    ],
)
def test_spot_values(code: int, symbol: str, name: str) -> None:
    unit = UNITS[code]
    assert unit == Unit(code, symbol, name, unit.quantity)
    assert unit_symbol(code) == symbol


def test_table_shape() -> None:
    codes = sorted(UNITS)
    assert set(range(1, 58)) <= set(codes)
    assert set(range(60, 68)) <= set(codes)
    assert {70, 71, 72, 253, 254, 255} <= set(codes)
    assert set(range(128, 175)) <= set(codes)
    assert not {0, 58, 59, 68, 69, 73, 127, 175, 252} & set(codes)
    assert all(UNITS[c].code == c and UNITS[c].name for c in codes)
    with pytest.raises(TypeError):
        UNITS[1] = Unit(1, "x", "x")  # type: ignore[index]


@pytest.mark.parametrize("code", [0, 58, 199, 256, -1])
def test_unknown_code_never_raises(code: int) -> None:
    assert unit_symbol(code) == f"unit({code})"


def test_scaler_unit_from_the_wire() -> None:
    scaler, unit = decode_data_all(bytes.fromhex("02020FFE1623")).as_items()
    assert (scaler.as_int(), unit_symbol(unit.as_int())) == (-2, "V")


@pytest.mark.interop
def test_codes_match_gurux() -> None:
    # Independent cross-check of the numbering: gurux_dlms's Unit enum (test-only use).
    gurux_unit = pytest.importorskip("gurux_dlms.enums.Unit")
    theirs = {int(u) for u in gurux_unit.Unit} - {0}  # gurux's 0 is its own "NONE"
    ours = set(UNITS)
    # 253 ("extended table of units", Blue Book Ed. 14) is not in gurux 1.0.203.
    assert ours - theirs == {253}
    assert theirs - ours == set()
