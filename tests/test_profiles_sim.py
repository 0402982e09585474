"""End to end: ``dlms --once --json`` (a subprocess) reads the profiles of ``dlms-sim``
(another one, the bundled model) by range, by entry and whole, LN over HDLC and the
wrapper and SN, under every ``--profile-quirk``, and continues over restarts.

The expected rows are computed from the model's documented formulas (dlmsd/sim/README.md,
"Profiles"), not by the simulator's code: load profile 1.0.99.1.0.255, row k at
2024-05-22T00:00:00+02:00 + 15 min k, import 100000 + floor(250 h) and export
4000 + floor(10 h) (h: hours since the origin), both registers with scaler 1 (Wh), the
clock under DST (status 0x80, deviation -120); standard event log 0.0.99.98.0.255, row k
at 2024-05-01T03:00:00+02:00 + 6 h k, event code (1, 2, 4, 5)[k mod 4].  The meter's
clock is fixed at 2024-06-01T12:00:00+02:00 (no ``--live``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import tcp_device
from test_e2e_sim import once
from test_sim_gurux import running

from dlmsd.sim.model import bundled_model_path

Writer = Callable[..., Path]
CEST = dt.timezone(dt.timedelta(hours=2))
LP_ORIGIN = dt.datetime(2024, 5, 22, 0, 0, tzinfo=CEST)
EVENTS_ORIGIN = dt.datetime(2024, 5, 1, 3, 0, tzinfo=CEST)
NOW = dt.datetime(2024, 6, 1, 12, 0, tzinfo=CEST)
IMPORT, EXPORT = "1.0.1.8.0.255:2", "1.0.2.8.0.255:2"
EVENT = "0.0.96.11.0.255:2"
NAMES = {1: "power down", 2: "power up", 4: "clock adjusted (old date/time)",
         5: "clock adjusted (new date/time)"}


def lp_row(moment: dt.datetime) -> dict[str, Any]:
    """A load profile row as ``--once --json`` prints it."""
    seconds = int((moment - LP_ORIGIN).total_seconds())
    return {"ts": moment.isoformat(),
            "values": {IMPORT: (100000 + 250 * seconds // 3600) * 10,
                       EXPORT: (4000 + 10 * seconds // 3600) * 10},
            "units": {IMPORT: "Wh", EXPORT: "Wh"}, "status": 0x80}


def lp_rows(first: dt.datetime, last: dt.datetime) -> list[dict[str, Any]]:
    count = int((last - first) / dt.timedelta(minutes=15)) + 1
    return [lp_row(first + dt.timedelta(minutes=15 * n)) for n in range(count)]


def device(sim: Any, kind: str, sn: bool = False) -> dict[str, Any]:
    extra: dict[str, Any] = {"type": "SN"} if sn else {}
    if kind == "wrapper":
        return tcp_device("m", port=sim.ports["wrapper"], mode="DLMS-WRAPPER",
                          logical_address=1, **extra)
    return tcp_device("m", port=sim.ports["hdlc"], address_size=2, logical_address=1,
                      physical_address=1, **extra)


def read(write_config: Writer, state: Path, dev: dict[str, Any],
         *profiles: dict[str, Any]) -> tuple[dict[str, list[dict[str, Any]]], list[Any]]:
    path = write_config({"devices": [dev], "signals": [], "state_dir": str(state),
                         "profiles": [{"device_alias": "m", **p} for p in profiles]})
    code, doc, log = once(path, "-d6", "--log-format", "json")
    assert code == 0, log
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    return doc["profiles"], [line for line in lines if line.get("event") == "profile_read"]


LP = {"profile_alias": "lp", "obis": "1.0.99.1.0.255", "backfill_hours": 2}


@pytest.mark.parametrize(("kind", "sn"), [("wrapper", False), ("hdlc", False),
                                          ("wrapper", True)])
@pytest.mark.parametrize("access", ["range", "entry", "all"])
def test_load_profile(write_config: Writer, tmp_path: Path, kind: str, sn: bool,
                      access: str) -> None:
    args = ["--wrapper-port", "0", "--hdlc-port", "0"] + (["--referencing", "SN"] if sn else [])
    with running(*args) as sim:
        got, reads = read(write_config, tmp_path, device(sim, kind, sn),
                          dict(LP, access=access))
    assert got["lp"] == lp_rows(NOW - dt.timedelta(hours=2), NOW)
    assert reads[0]["method"] == access


def test_event_log_with_names(write_config: Writer, tmp_path: Path) -> None:
    with running("--wrapper-port", "0") as sim:
        got, reads = read(write_config, tmp_path, device(sim, "wrapper"),
                          {"profile_alias": "ev", "obis": "0.0.99.98.0.255",
                           "backfill_hours": 48})
    # 2024-05-30 12:00 .. 2024-06-01 12:00: rows 118 .. 125 (every 6 h from 05-01 03:00)
    assert [row["ts"] for row in got["ev"]] == [
        (EVENTS_ORIGIN + dt.timedelta(hours=6 * k)).isoformat() for k in range(118, 126)]
    assert [(row["values"][EVENT], row["events"][EVENT]) for row in got["ev"]] == [
        ((1, 2, 4, 5)[k % 4], NAMES[(1, 2, 4, 5)[k % 4]]) for k in range(118, 126)]
    assert reads[0]["method"] == "range"


@pytest.mark.parametrize(("quirk", "method"), [
    ("refuse-range", "entry"),
    ("refuse-range:read-write-denied", "entry"),
    ("refuse-deviation", "range without deviation"),
    ("clock-not-first", "range"),
    ("empty-range", "entry"),
])
def test_every_profile_quirk(write_config: Writer, tmp_path: Path, quirk: str,
                             method: str) -> None:
    with running("--wrapper-port", "0", "--profile-quirk", quirk) as sim:
        got, reads = read(write_config, tmp_path, device(sim, "wrapper"), LP)
    expected = lp_rows(NOW - dt.timedelta(hours=2), NOW)
    if quirk == "clock-not-first":  # same rows: the clock column moved to the end
        assert [list(row["values"]) for row in got["lp"]] == [[IMPORT, EXPORT]] * 9
    assert got["lp"] == expected
    assert reads[0]["method"] == method


def _model_at(tmp_path: Path, moment: dt.datetime) -> Path:
    """The bundled model with its clock at ``moment`` (the meter's time moved on)."""
    model = json.loads(bundled_model_path().read_text())
    for obj in model["objects"]:
        if obj.get("class") == "clock":
            obj["time"] = moment.isoformat()
    path = tmp_path / f"model-{moment:%H%M}.json"
    path.write_text(json.dumps(model))
    return path


@pytest.mark.parametrize("quirk", [None, "refuse-range", "refuse-deviation"])
def test_restarts_continue_without_gap_or_duplicate(write_config: Writer, tmp_path: Path,
                                                    quirk: str | None) -> None:
    state = tmp_path / "state"
    quirks = [] if quirk is None else ["--profile-quirk", quirk]
    got: list[dict[str, Any]] = []
    for hours in (0, 0, 3, 5):  # the meter's clock: 12:00, 12:00, 15:00, 17:00
        moment = NOW + dt.timedelta(hours=hours)
        with running("--wrapper-port", "0", "--model", str(_model_at(tmp_path, moment)),
                     *quirks) as sim:
            rows, _reads = read(write_config, state, device(sim, "wrapper"), LP)
        got += rows["lp"]
    assert got == lp_rows(NOW - dt.timedelta(hours=2), NOW + dt.timedelta(hours=5))


def test_decimal_values_are_exact_json_numbers(write_config: Writer, tmp_path: Path) -> None:
    with running("--wrapper-port", "0") as sim:
        got, _reads = read(write_config, tmp_path, device(sim, "wrapper"),
                           dict(LP, columns=["1.0.1.8.0.255:2"]))
    first = got["lp"][0]
    assert first["values"] == {IMPORT: lp_row(NOW - dt.timedelta(hours=2))["values"][IMPORT]}
    assert isinstance(first["values"][IMPORT], int)
    assert Decimal(first["values"][IMPORT]) == Decimal((100000 + 250 * 250) * 10)
