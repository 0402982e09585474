"""OBIS codes: text forms, bytes, the config "OBIS[:attribute]" form, round trips.

Sources: logical names as they appear on the wire in the Aidon HAN capture
(Tekniska Verken "Aidon FD RJ12 HAN interface" v1.5, reproduced in toreamun/amshan
tests/test_aidon.py); the meaning of the codes from IEC 62056-6-1 / Blue Book
(1-0:1.8.0 active energy import, 0-0:1.0.0 clock, 0-0:42.0.0 logical device name).
"""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dlmsd.errors import DecodeError
from dlmsd.protocol.obis import DEFAULT_ATTRIBUTE, Obis, parse_signal_obis

VECTORS = [
    # (dotted, iec, wire hex)
    ("1.0.1.8.0.255", "1-0:1.8.0*255", "0100010800ff"),  # [aidon-se] active energy A+
    ("0.0.1.0.0.255", "0-0:1.0.0*255", "0000010000ff"),  # [aidon-se] clock
    ("1.1.0.2.129.255", "1-1:0.2.129*255", "0101000281ff"),  # [aidon-no] list version id
    ("0.0.42.0.0.255", "0-0:42.0.0*255", "00002a0000ff"),  # logical device name
    ("0.0.0.0.0.0", "0-0:0.0.0*0", "000000000000"),
    ("255.255.255.255.255.255", "255-255:255.255.255*255", "ffffffffffff"),
]


@pytest.mark.parametrize(("dotted", "iec", "wire"), VECTORS)
def test_vectors_both_ways(dotted: str, iec: str, wire: str) -> None:
    obis = Obis.from_bytes(bytes.fromhex(wire))
    assert obis.to_bytes() == bytes.fromhex(wire)
    assert str(obis) == dotted
    assert obis.iec() == iec
    assert Obis.parse(dotted) == obis
    assert Obis.parse(iec) == obis


@pytest.mark.parametrize(
    "text", ["1.0.1.8.0.255", "1-0:1.8.0*255", "1-0:1.8.0.255", "1-0:1.8.0", "  1-0:1.8.0*255\n"]
)
def test_accepted_forms(text: str) -> None:
    assert Obis.parse(text) == Obis(1, 0, 1, 8, 0, 255)


def test_f_defaults_to_255_only_in_iec_form() -> None:
    assert Obis.parse("1-0:1.8.0") == Obis(1, 0, 1, 8, 0)
    assert Obis(1, 0, 1, 8, 0).f == 255
    with pytest.raises(ValueError):
        Obis.parse("1.0.1.8.0")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1.8.0",
        "1.0.1.8.0.256",
        "1-0:1.8.0*256",
        "1.0.1.8.0.255.1",
        "0100010800ff",
        "1-0:1.8",
        "1-0-1.8.0*255",
        "a.b.c.d.e.f",
        "1.0.1.8.0.-1",
        "1.0.1.8.0.0255",
        "\u0661.0.1.8.0.255",  # Arabic-Indic digit one: ASCII digits only
        "1.0.1.8.0.255:2",  # the attribute suffix belongs to parse_signal_obis
    ],
)
def test_rejected_forms_name_the_text_and_forms(text: str) -> None:
    with pytest.raises(ValueError) as info:
        Obis.parse(text)
    assert repr(text) in str(info.value)
    assert "A-B:C.D.E*F" in str(info.value) or "0..255" in str(info.value)


def test_group_range_checked_on_construction() -> None:
    with pytest.raises(ValueError):
        Obis(1, 0, 1, 8, 0, 256)
    with pytest.raises(ValueError):
        Obis(-1, 0, 1, 8, 0, 255)


@pytest.mark.parametrize("size", [0, 5, 7])
def test_from_bytes_wrong_size_is_decode_error(size: int) -> None:
    with pytest.raises(DecodeError):
        Obis.from_bytes(b"\x01" * size)


def test_ordering_and_hash() -> None:
    a, b = Obis.parse("1.0.1.8.0.255"), Obis.parse("1.0.2.8.0.255")
    assert sorted([b, a]) == [a, b]
    assert len({a, Obis.parse("1-0:1.8.0")}) == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.0.1.8.0.255", ((1, 0, 1, 8, 0, 255), DEFAULT_ATTRIBUTE)),
        ("1.0.1.8.0.255:3", ((1, 0, 1, 8, 0, 255), 3)),
        ("1-0:1.8.0*255", ((1, 0, 1, 8, 0, 255), 2)),  # the IEC ':' is not an attribute
        ("1-0:1.8.0*255:3", ((1, 0, 1, 8, 0, 255), 3)),
        ("1-0:1.8.0.255:2", ((1, 0, 1, 8, 0, 255), 2)),
        ("1-0:1.8.0", ((1, 0, 1, 8, 0, 255), 2)),
        ("1-0:1.8.0:5", ((1, 0, 1, 8, 0, 255), 5)),
        ("0-0:1.0.0*255:127", ((0, 0, 1, 0, 0, 255), 127)),
    ],
)
def test_signal_obis(text: str, expected: tuple[tuple[int, ...], int]) -> None:
    obis, attribute = parse_signal_obis(text)
    assert (tuple(obis.to_bytes()), attribute) == expected


@pytest.mark.parametrize(
    "text", ["1.0.1.8.0.255:0", "1.0.1.8.0.255:128", "1-0:1.8.0*255:", "1.0.1.8.0.255:x", "x:2"]
)
def test_signal_obis_rejected(text: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_signal_obis(text)
    assert repr(text) in str(info.value)


groups = st.tuples(*[st.integers(0, 255)] * 6).map(lambda g: Obis(*g))


@given(groups)
def test_round_trip_all_forms(obis: Obis) -> None:
    assert Obis.from_bytes(obis.to_bytes()) == obis
    assert Obis.parse(str(obis)) == obis
    assert Obis.parse(obis.iec()) == obis
    assert Obis.parse(obis.iec().replace("*", ".")) == obis


@given(groups, st.integers(1, 127), st.booleans())
def test_round_trip_signal(obis: Obis, attribute: int, iec: bool) -> None:
    text = obis.iec() if iec else str(obis)
    assert parse_signal_obis(f"{text}:{attribute}") == (obis, attribute)
    assert parse_signal_obis(text) == (obis, DEFAULT_ATTRIBUTE)


@given(st.text(max_size=30))
def test_parse_raises_only_value_error(text: str) -> None:
    for parse in (Obis.parse, parse_signal_obis):
        with contextlib.suppress(ValueError):
            parse(text)


@given(st.binary(max_size=10))
def test_from_bytes_raises_only_decode_error(raw: bytes) -> None:
    try:
        assert Obis.from_bytes(raw).to_bytes() == raw
    except DecodeError:
        assert len(raw) != 6
