"""Interop: dlmsd reads load profiles from a meter built on gurux_dlms's server.

The meter (tests/interop/gurux_meter.py) serves a Profile Generic 1.0.99.1.0.255 whose
capture objects are a register (energy, scaler 0, Wh), the clock (the second capture
object: the range restricts on it, not on the first) and a register with scaler -1
(voltage, V); its buffer is encoded by gurux's own encoder (the selection is done by
the harness: the stock selection is broken, NOTES.md S20-S22).  Checked: the rows by
range and by entry with exact values and timestamps, the whole buffer, continuity over
restarts of the daemon (the state file), the ``--once --json`` ``profiles`` object of
the ``dlms`` command, and the rows on MQTT through a real broker.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import subprocess
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import tcp_device
from interop.gurux_meter import GuruxMeter, ProfileSpec

from dlmsd.config import load_config
from dlmsd.outputs.mqtt import MqttPublisher
from dlmsd.signals import SignalTable
from dlmsd.supervisor import Supervisor

pytestmark = pytest.mark.interop
Writer = Callable[..., Path]

T0 = dt.datetime(2024, 5, 6, 0, 0, tzinfo=dt.UTC)
ENERGY, VOLTAGE = "1.0.1.8.0.255:2", "1.0.32.7.0.255:2"


def spec(count: int) -> ProfileSpec:
    """``count`` rows every 15 minutes from T0: energy 1000 + 7n Wh, voltage 2300 + n."""
    rows = tuple((1000 + 7 * n, T0 + dt.timedelta(minutes=15 * n), 2300 + n)
                 for n in range(count))
    return ProfileSpec("1.0.99.1.0.255", (("1.0.1.8.0.255", 2), ("0.0.1.0.0.255", 2),
                                          ("1.0.32.7.0.255", 2)), rows)


def row(n: int) -> dict[str, Any]:
    """Row n as dlmsd gives it."""
    stamp = T0 + dt.timedelta(minutes=15 * n)
    return {"ts": stamp.isoformat(), "values": {ENERGY: Decimal(1000 + 7 * n),
                                                VOLTAGE: Decimal(2300 + n) / 10},
            "units": {ENERGY: "Wh", VOLTAGE: "V"}, "status": 0}


def device(meter: GuruxMeter, kind: str) -> dict[str, Any]:
    if kind == "wrapper":
        return tcp_device("g", port=meter.port, mode="DLMS-WRAPPER", logical_address=1,
                          timeout_ms=3000)
    return tcp_device("g", port=meter.port, logical_address=1, physical_address=17,
                      address_size=2, timeout_ms=3000)


def config(write: Writer, meter: GuruxMeter, kind: str, state: Path, **profile: Any) -> Path:
    return write({"devices": [device(meter, kind)], "signals": [], "state_dir": str(state),
                  "profiles": [{"device_alias": "g", "profile_alias": "lp",
                                "obis": "1.0.99.1.0.255", **profile}]})


async def read_once(path: Path) -> list[dict[str, Any]]:
    snapshot = await Supervisor(load_config(path)).run_once()
    assert snapshot.devices[0].error is None
    assert snapshot.profiles is not None
    return snapshot.profiles["lp"]


@pytest.mark.parametrize("kind", ["wrapper", "hdlc"])
@pytest.mark.parametrize("access", ["range", "entry", "all"])
async def test_backfill_exact_values_and_timestamps(write_config: Writer, tmp_path: Path,
                                                    kind: str, access: str) -> None:
    # 3 h of rows; the meter's clock is at the last one: a 2 h backfill gives 9 rows
    with GuruxMeter(kind, profiles=[spec(13)], clock_time=T0 + dt.timedelta(hours=3)) as m:
        rows = await read_once(config(write_config, m, kind, tmp_path / "state",
                                      backfill_hours=2, access=access))
    assert rows == [row(n) for n in range(4, 13)]
    assert rows[0]["ts"] == "2024-05-06T01:00:00+00:00"
    assert rows[-1] == {"ts": "2024-05-06T03:00:00+00:00",
                        "values": {ENERGY: Decimal(1084), VOLTAGE: Decimal("231.2")},
                        "units": {ENERGY: "Wh", VOLTAGE: "V"}, "status": 0}


async def test_restarts_continue_without_gap_or_duplicate(
        write_config: Writer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DLMS_STATE_DIR")  # the configuration's state_dir, checked below
    state = tmp_path / "state"
    got: list[dict[str, Any]] = []
    meter = GuruxMeter("wrapper", profiles=[spec(9)], clock_time=T0 + dt.timedelta(hours=2))
    with meter:
        path = config(write_config, meter, "wrapper", state, backfill_hours=1)
        got += await read_once(path)  # the backfill: 01:00 .. 02:00
        got += await read_once(path)  # nothing new: nothing
        # the meter went on (and was restarted too: a new server per connection)
        meter.profiles, meter.clock_time = (spec(21),), T0 + dt.timedelta(hours=5)
        got += await read_once(path)  # a new daemon: from the state file on
    assert got == [row(n) for n in range(4, 21)]
    saved = json.loads((state / "profiles" / "g--lp.json").read_text())
    assert saved["ts"] == "2024-05-06T05:00:00+00:00"


async def test_entry_continues_from_the_state_too(write_config: Writer,
                                                  tmp_path: Path) -> None:
    state = tmp_path / "state"
    meter = GuruxMeter("hdlc", profiles=[spec(9)], clock_time=T0 + dt.timedelta(hours=2))
    with meter:
        path = config(write_config, meter, "hdlc", state, backfill_hours=1, access="entry")
        first = await read_once(path)
        meter.profiles, meter.clock_time = (spec(40),), T0 + dt.timedelta(hours=10)
        second = await read_once(path)
    assert first + second == [row(n) for n in range(4, 40)]


def test_once_json_command(write_config: Writer, tmp_path: Path) -> None:
    with GuruxMeter("wrapper", profiles=[spec(5)], clock_time=T0 + dt.timedelta(hours=1)) as m:
        path = config(write_config, m, "wrapper", tmp_path / "state", backfill_hours=1)
        done = subprocess.run([sys.executable, "-m", "dlmsd", "-c", str(path), "--once",
                               "--json", "-d3"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["profiles"]["lp"][0] == {
        "ts": "2024-05-06T00:00:00+00:00", "values": {ENERGY: 1000, VOLTAGE: 230.0},
        "units": {ENERGY: "Wh", VOLTAGE: "V"}, "status": 0}
    assert [r["ts"][11:16] for r in out["profiles"]["lp"]] == [
        "00:00", "00:15", "00:30", "00:45", "01:00"]


async def test_rows_on_mqtt_one_message_per_row_in_order(write_config: Writer,
                                                         tmp_path: Path,
                                                         mosquitto: Any) -> None:
    from test_mqtt import Log, Subscriber, until

    broker = mosquitto()
    sub = Subscriber(broker.port, "dlms/g/profile/#")
    try:
        with GuruxMeter("wrapper", profiles=[spec(5)],
                        clock_time=T0 + dt.timedelta(hours=1)) as meter:
            doc = json.loads(config(write_config, meter, "wrapper", tmp_path / "s",
                                    backfill_hours=1).read_text())
            doc["mqtt"] = {"host": "127.0.0.1", "port": broker.port, "client_id": "t"}
            cfg = load_config(write_config(doc))
            table = SignalTable.from_config(cfg)
            assert cfg.mqtt is not None
            pub = MqttPublisher(cfg.mqtt, table, Log(), backoff=0.1, max_backoff=0.4)
            await pub.start()
            supervisor = Supervisor(cfg, table=table)
            await supervisor.start()
            try:
                await until(lambda: len(sub.on("dlms/g/profile/lp")) == 5, timeout=20)
            finally:
                await supervisor.stop()
                await pub.stop()
        messages = sub.on("dlms/g/profile/lp")
        assert messages[0] == (b'{"ts": "2024-05-06T00:00:00+00:00", "values": '
                               b'{"1.0.1.8.0.255:2": 1000, "1.0.32.7.0.255:2": 230.0}, '
                               b'"units": {"1.0.1.8.0.255:2": "Wh", "1.0.32.7.0.255:2": "V"}, '
                               b'"status": 0}')
        assert [json.loads(m)["ts"][11:16] for m in messages] == [
            "00:00", "00:15", "00:30", "00:45", "01:00"]
        assert not any(retain for _t, _p, retain in sub.messages)
    finally:
        sub.close()
    await asyncio.sleep(0)


@pytest.mark.parametrize("access", ["range", "entry"])
async def test_long_buffer_in_blocks(write_config: Writer, tmp_path: Path,
                                     access: str) -> None:
    # 4 days of quarter hours (385 rows, about 9 KiB) through a meter whose max PDU is
    # 512 octets: the answer comes as GET-Response-With-Datablock
    with GuruxMeter("hdlc", profiles=[spec(385)], max_pdu=512, trace=True,
                    clock_time=T0 + dt.timedelta(days=4)) as meter:
        rows = await read_once(config(write_config, meter, "hdlc", tmp_path / "state",
                                      backfill_hours=96, access=access))
        next_blocks = sum(1 for way, frame in meter.frames
                          if way == "rx" and b"\xe6\xe6\x00\xc0\x02" in frame)
    assert rows == [row(n) for n in range(385)]
    assert next_blocks > 10  # GET-Request-Next: the buffer came in blocks


def test_once_text_summary(write_config: Writer, tmp_path: Path) -> None:
    with GuruxMeter("wrapper", profiles=[spec(5)], clock_time=T0 + dt.timedelta(hours=1)) as m:
        path = config(write_config, m, "wrapper", tmp_path / "state", backfill_hours=1)
        done = subprocess.run([sys.executable, "-m", "dlmsd", "-c", str(path), "--once",
                               "-d3"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == (
        "profile lp: 5 rows: 2024-05-06T00:00:00+00:00 .. 2024-05-06T01:00:00+00:00 "
        "(--json shows them)")


def test_gurux_client_reads_the_harness_profile_too() -> None:
    # The harness's selection (S20-S22 workarounds) is not tailored to dlmsd: gurux's own
    # client, which builds its requests independently, reads the same rows.
    from gurux_dlms.objects import GXDLMSClock, GXDLMSProfileGeneric, GXDLMSRegister
    from interop.gurux_client import GuruxSession

    with GuruxMeter("wrapper", profiles=[spec(9)],
                    clock_time=T0 + dt.timedelta(hours=2)) as meter, GuruxSession(
            meter.host, meter.port, interface="wrapper") as session:
        profile = GXDLMSProfileGeneric("1.0.99.1.0.255")
        profile.addCaptureObject(GXDLMSRegister("1.0.1.8.0.255"), 2, 0)
        profile.addCaptureObject(GXDLMSClock("0.0.1.0.0.255"), 2, 0)
        profile.addCaptureObject(GXDLMSRegister("1.0.32.7.0.255"), 2, 0)
        by_entry = session.transact(session.client.readRowsByEntry(profile, 3, 2)).value
        profile.sortObject = profile.captureObjects[1][0]  # range on the clock column
        by_range = session.transact(session.client.readRowsByRange(
            profile, T0 + dt.timedelta(hours=1), T0 + dt.timedelta(hours=1, minutes=30))
            ).value
    assert [[row[0], row[2]] for row in by_entry] == [[1014, 2302], [1021, 2303]]
    assert [[row[0], row[2]] for row in by_range] == [[1028, 2304], [1035, 2305],
                                                      [1042, 2306]]
