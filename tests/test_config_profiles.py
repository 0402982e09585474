"""The optional top-level ``profiles`` list (issue 14): defaults, normalisation, and a
clear error for every bad entry."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import tcp_device

from dlmsd.config import ProfileConfig, parse_config
from dlmsd.errors import ConfigError
from dlmsd.protocol.obis import Obis


def _doc(*profiles: dict[str, Any]) -> dict[str, Any]:
    return {"devices": [tcp_device("m1"), tcp_device("m2", enable=0)], "signals": [],
            "profiles": list(profiles)}


def test_defaults() -> None:
    config = parse_config(_doc({"device_alias": "m1", "profile_alias": "lp",
                                "obis": "1-0:99.1.0*255"}))
    assert config.profiles == (ProfileConfig("m1", "lp", Obis(1, 0, 99, 1, 0, 255)),)
    (profile,) = config.profiles
    assert (profile.enable, profile.interval_ms, profile.backfill_hours, profile.access,
            profile.columns) == (True, None, 24, "range", None)
    assert config.profiles_of("m1") == config.profiles


def test_every_key() -> None:
    config = parse_config(_doc({
        "device_alias": "m1", "profile_alias": "events", "obis": "0.0.99.98.0.255",
        "enable": 0, "interval_ms": 60000, "backfill_hours": 0, "access": "ENTRY",
        "columns": ["0.0.96.11.0.255:2", "1-0:1.8.0*255"]}))
    (profile,) = config.profiles
    assert profile == ProfileConfig("m1", "events", Obis(0, 0, 99, 98, 0, 255), False, 60000,
                                    0, "entry", ("0.0.96.11.0.255:2", "1.0.1.8.0.255:2"))
    assert config.profiles_of("m1") == ()  # disabled


def test_no_profiles_key() -> None:
    doc = _doc()
    del doc["profiles"]
    assert parse_config(doc).profiles == ()


@pytest.mark.parametrize(("profile", "message"), [
    ({"device_alias": "m3", "profile_alias": "lp", "obis": "1.0.99.1.0.255"},
     'profiles[0].device_alias: "m3" names no device (devices: m1, m2)'),
    ({"device_alias": "m1", "profile_alias": "lp", "obis": "1.0.99.1.0"},
     'profiles[0].obis: "1.0.99.1.0" is not allowed'),
    ({"device_alias": "m1", "profile_alias": "lp", "obis": "1.0.99.1.0.255:2"},
     'profiles[0].obis: "1.0.99.1.0.255:2" is not allowed'),
    ({"device_alias": "m1", "profile_alias": "lp", "obis": "1.0.99.1.0.255",
      "columns": ["1.0.1.8.0.255:2", "nonsense"]},
     'profiles[0].columns[1]: "nonsense" is not allowed'),
    ({"device_alias": "m1", "profile_alias": "lp", "obis": "1.0.99.1.0.255",
      "columns": ["1.0.1.8.0.255:2", "1.0.1.8.0.255"]},
     'profiles[0].columns[1]: "1.0.1.8.0.255" is listed twice'),
    ({"device_alias": "m1", "profile_alias": "lp", "obis": "1.0.99.1.0.255", "columns": []},
     "profiles[0].columns"),
    ({"device_alias": "m1", "profile_alias": "lp", "obis": "1.0.99.1.0.255", "access": "x"},
     'profiles[0].access: "x" is not allowed: must be range, entry or all'),
    ({"device_alias": "m1", "profile_alias": "a b", "obis": "1.0.99.1.0.255"},
     'profiles[0].profile_alias: "a b" is not allowed'),
    ({"device_alias": "m1", "profile_alias": "lp", "obis": "1.0.99.1.0.255",
      "interval_ms": 10}, "profiles[0].interval_ms: 10 is not allowed"),
    ({"device_alias": "m1", "profile_alias": "lp"}, "profiles[0]: missing required key 'obis'"),
])
def test_errors(profile: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(_doc(profile))
    assert any(p.startswith(message) for p in caught.value.problems), caught.value.problems


def test_duplicate_profile_alias() -> None:
    entry = {"device_alias": "m1", "profile_alias": "lp", "obis": "1.0.99.1.0.255"}
    with pytest.raises(ConfigError) as caught:
        parse_config(_doc(entry, dict(entry, obis="1.0.99.2.0.255")))
    assert caught.value.problems == [
        'profiles[1].profile_alias: "lp" is already used by profiles[0]; aliases must be '
        "unique"]


def test_unknown_key_warns() -> None:
    config = parse_config(_doc({"device_alias": "m1", "profile_alias": "lp",
                                "obis": "1.0.99.1.0.255", "colums": ["x"]}))
    assert config.warnings == (
        "profiles[0].colums: unknown key, ignored (did you mean 'columns'?)",)


def test_check_summary_lists_profiles(write_config: Any) -> None:
    from click.testing import CliRunner

    from dlmsd.cli import main

    path = write_config(_doc({"device_alias": "m1", "profile_alias": "lp",
                              "obis": "1.0.99.1.0.255", "columns": ["1.0.1.8.0.255:2"]},
                             {"device_alias": "m1", "profile_alias": "ev", "enable": 0,
                              "obis": "0.0.99.98.0.255", "interval_ms": 3600000,
                              "access": "entry"}))
    result = CliRunner().invoke(main, ["-c", str(path), "--check"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-3:] == [
        "profiles:",
        "  lp [m1] 1.0.99.1.0.255 by range, every capture_period, backfill 24 h, 1 column(s)",
        "  ev [m1] 0.0.99.98.0.255 by entry, every 3600000 ms, backfill 24 h, all columns "
        "(disabled)"]
