"""The signal table: states, snapshots, subscriptions, stale values, reload."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from conftest import signal, tcp_device

from dlmsd.config import load_config
from dlmsd.signals import DeviceStatus, SignalStatus, SignalTable

Writer = Callable[..., Path]


def make_table(write_config: Writer) -> SignalTable:
    config = load_config(write_config(
        devices=[tcp_device("m1"), tcp_device("m2", enable=0)],
        signals=[signal("a"), signal("b", enable=False), signal("c", device="m2")],
    ))
    return SignalTable.from_config(config)


def test_initial_states(write_config: Writer) -> None:
    table = make_table(write_config)
    assert table.signal("a").status is SignalStatus.ERROR
    assert table.signal("a").error == "not read yet"
    assert table.signal("b").status is SignalStatus.DISABLED
    assert table.signal("c").status is SignalStatus.DISABLED  # its device is disabled
    assert table.device("m2").status is DeviceStatus.DISABLED


def test_update_offline_stale_and_subscribe(write_config: Writer) -> None:
    table = make_table(write_config)
    changes: list[object] = []
    unsubscribe = table.subscribe(changes.append)
    table.update_signal("a", value=Decimal("1234.56"), raw=123456, unit="kWh", now=100.0)
    table.update_signal("a", value=Decimal("1234.56"), raw=123456, unit="kWh", now=100.0)
    assert len(changes) == 1  # no change, no notification
    snap = table.snapshot()
    table.device_offline("m1", "timeout", ["a", "b"])
    a = table.signal("a")
    assert (a.status, a.stale, a.value, a.error) == (
        SignalStatus.ERROR, True, Decimal("1234.56"), "device offline: timeout")
    assert table.signal("b").status is SignalStatus.DISABLED
    # the snapshot taken before is unaffected
    assert snap.signals[0].status is SignalStatus.OK
    unsubscribe()
    table.update_signal("a", value=1, raw=1, unit="", now=101.0)
    assert len(changes) == 3  # device offline + signal a failed, nothing after unsubscribe


def test_json_keeps_decimal_exact(write_config: Writer) -> None:
    table = make_table(write_config)
    table.update_signal("a", value=Decimal("1234.56"), raw=123456, unit="kWh", now=1.0)
    text = json.dumps(table.snapshot().to_json())
    assert '"value": 1234.56' in text
    table.update_signal("a", value=Decimal("1E+3"), raw=1, unit="Wh", now=1.0)
    assert table.snapshot().to_json()["signals"][0]["value"] == 1000


def test_reload_keeps_values_of_unchanged_signals(write_config: Writer) -> None:
    table = make_table(write_config)
    table.update_signal("a", value=5, raw=5, unit="", now=1.0)
    config = load_config(write_config(
        devices=[tcp_device("m1")],
        signals=[signal("a"), signal("d", obis="1.0.2.8.0.255")],
    ))
    table.load(config)
    assert table.signal("a").value == 5
    assert table.signal("d").error == "not read yet"
    assert [s.signal_alias for s in table.snapshot().signals] == ["a", "d"]
