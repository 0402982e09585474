"""Server address resolution (IEC 62056-46 6.4.2.2 byte layout, WCC Lite value convention)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dlmsd.addressing import (
    MAX_FORMULA_LENGTH,
    ServerAddress,
    compile_address_formula,
    resolve_server_address,
)
from dlmsd.errors import ConfigValueError


def test_serial_number_formula_wcc_example() -> None:
    # WCC Lite documentation example meter, serial number 2250259.
    addr = resolve_server_address(logical=0, physical=16, size=1, serial_number=2250259)
    assert (addr.logical, addr.physical, addr.size) == (1, 1259, 4)
    assert addr.to_bytes() == bytes([0x00, 0x02, 0x12, 0xD7])
    assert addr.value == 1 << 14 | 1259


@pytest.mark.parametrize(("logical", "physical", "size", "wire"), [
    (0, 1, 1, "03"),  # 1 byte: 0 << 7 | 1 = 1 -> 0000001 1
    (0, 16, 1, "21"),
    (1, 17, 2, "0223"),  # computed: upper 1 -> 0x02, lower 17 -> (17 << 1) | 1
    (1, 0x3FFF, 4, "0002FEFF"),
    (0x3FFF, 1, 4, "FEFE0003"),
])
def test_wire_bytes(logical: int, physical: int, size: int, wire: str) -> None:
    addr = resolve_server_address(logical=logical, physical=physical, size=size)
    assert addr.to_bytes().hex().upper() == wire


def test_last_byte_has_extension_bit_only() -> None:
    for size in (2, 4):
        data = ServerAddress(5, 9, size).to_bytes()
        assert [b & 1 for b in data] == [0] * (size - 1) + [1]


@given(st.integers(0, 0x3FFF), st.integers(0, 0x3FFF))
def test_four_byte_round_trip(logical: int, physical: int) -> None:
    data = ServerAddress(logical, physical, 4).to_bytes()
    upper = (data[0] >> 1) << 7 | data[1] >> 1
    lower = (data[2] >> 1) << 7 | data[3] >> 1
    assert (upper, lower) == (logical, physical)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"logical": 1, "physical": 0, "size": 1}, "below 128"),
    ({"logical": 128, "physical": 0, "size": 2}, "logical address 128 does not fit"),
    ({"logical": 1, "physical": 0x4000, "size": 4}, "physical address 16384 does not fit"),
    ({"logical": 1, "physical": 1, "size": 3}, "address_size 3"),
])
def test_impossible(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        resolve_server_address(**kwargs)


def test_formula_rejects_anything_but_arithmetic() -> None:
    assert compile_address_formula("(SN // 10) % 1000 - -5")(123456) == 350
    for bad in ("__import__('os')", "SN ** 2", "SN.real", "1 if SN else 2", "SN +"):
        with pytest.raises(ValueError):
            compile_address_formula(bad)
    with pytest.raises(ValueError, match="division by zero"):
        compile_address_formula("SN % 0")(5)


def test_errors_are_config_value_errors() -> None:
    # in the error tree (a ConfigError) and still a ValueError
    with pytest.raises(ConfigValueError, match="address_size 3"):
        resolve_server_address(logical=1, physical=1, size=3)
    with pytest.raises(ConfigValueError, match="division by zero"):
        compile_address_formula("SN // (SN - 5)")(5)


def test_a_formula_too_deep_to_parse_is_refused_not_a_crash() -> None:
    # a RecursionError from the parser would escape the configuration check
    for deep in ("-" * 5000 + "SN", "1+" * 20000 + "SN"):
        with pytest.raises(ConfigValueError, match="at most"):
            compile_address_formula(deep)
    longest = "-" * (MAX_FORMULA_LENGTH - 2) + "SN"
    assert compile_address_formula(longest)(5) == 5
