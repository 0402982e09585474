"""MQTT payload building (pure): topics, the exact JSON number, quality, the WCC form.

The ``wcc`` form follows the WCC Lite user manual (Elseta, 2020-04-07), section 19.3
"MQTT data format": ``value,timestamp,quality``, timestamp in UNIX milliseconds,
quality 1 for a valid value.
"""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal

import pytest
from conftest import signal, tcp_device

from dlmsd.config import MqttConfig, parse_config
from dlmsd.outputs.mqtt import (
    device_message,
    iso_ms,
    json_number,
    signal_message,
)
from dlmsd.signals import DeviceState, DeviceStatus, SignalState, SignalStatus

# 2026-12-05T10:15:00.123Z
TS = 1796465700.123


def mqtt_config(**over: object) -> MqttConfig:
    config = parse_config({"devices": [tcp_device()], "signals": [signal()],
                           "mqtt": {"host": "h", **over}})
    assert config.mqtt is not None
    return config.mqtt


def state(value: object, **over: object) -> SignalState:
    base = SignalState("m1", "s1", "Signal s1", "1.0.1.8.0.255", 2, value=value,  # type: ignore[arg-type]
                       raw=None, unit="kWh", status=SignalStatus.OK, error=None,
                       timestamp=TS)
    return replace(base, **over)  # type: ignore[arg-type]


def test_iso_ms() -> None:
    assert iso_ms(TS) == "2026-12-05T10:15:00.123Z"
    assert iso_ms(0) == "1970-01-01T00:00:00.000Z"
    assert iso_ms(1.9996) == "1970-01-01T00:00:02.000Z"  # rounding carries into seconds


@pytest.mark.parametrize(("value", "text"), [
    (Decimal("1234.56"), "1234.56"),
    (Decimal("12345678901234567.891"), "12345678901234567.891"),  # beyond a double
    (Decimal("1E+3"), "1000"),
    (Decimal("0.0000001"), "0.0000001"),
    (Decimal("-0.50"), "-0.50"),
    (Decimal("-0"), "0"),
])
def test_json_number_is_exact(value: Decimal, text: str) -> None:
    assert json_number(value) == text
    assert json.loads(text, parse_float=Decimal) == value


def test_register_json_payload_exact() -> None:
    message = signal_message(mqtt_config(), state(Decimal("1234.56")), now=TS + 5)
    assert message.topic == "dlms/m1/s1"
    assert message.retain is True
    assert message.payload == (b'{"value": 1234.56, "unit": "kWh", "obis": "1.0.1.8.0.255", '
                               b'"ts": "2026-12-05T10:15:00.123Z", "quality": "good"}')


def test_big_decimal_survives_a_json_reader() -> None:
    message = signal_message(mqtt_config(), state(Decimal("12345678901234567.891")), now=TS)
    assert json.loads(message.payload, parse_float=Decimal)["value"] == Decimal(
        "12345678901234567.891")


def test_text_stays_text_and_other_types() -> None:
    cfg = mqtt_config()
    values = {"Zähler Ω": '"Zähler Ω"', True: "true", None: "null", 42: "42", -1.5: "-1.5"}
    for value, text in values.items():
        payload = signal_message(cfg, state(value), now=TS).payload.decode()
        assert payload.startswith('{"value": ' + text + ", "), payload


def test_stale_and_invalid_carry_the_error() -> None:
    cfg = mqtt_config()
    stale = state(Decimal("1.5"), status=SignalStatus.ERROR, stale=True,
                  error="device offline: timeout")
    doc = json.loads(signal_message(cfg, stale, now=TS + 60).payload)
    assert (doc["quality"], doc["error"], doc["value"], doc["ts"]) == (
        "stale", "device offline: timeout", 1.5, "2026-12-05T10:15:00.123Z")
    invalid = state(None, status=SignalStatus.ERROR, error="object-undefined",
                    timestamp=None)
    doc = json.loads(signal_message(cfg, invalid, now=TS).payload)
    assert doc == {"value": None, "unit": "kWh", "obis": "1.0.1.8.0.255",
                   "ts": "2026-12-05T10:15:00.123Z", "quality": "invalid",
                   "error": "object-undefined"}


def test_wcc_format() -> None:
    cfg = mqtt_config(format="wcc", retain=False)
    message = signal_message(cfg, state(Decimal("1234.56")), now=TS)
    assert (message.payload, message.retain) == (b"1234.56,1796465700123,1", False)
    stale = state(Decimal("7"), status=SignalStatus.ERROR, stale=True, error="x")
    assert signal_message(cfg, stale, now=TS).payload == b"7,1796465700123,0"
    assert signal_message(cfg, state("text"), now=TS).payload == b"nan,1796465700123,1"
    assert signal_message(cfg, state(True), now=TS).payload == b"1,1796465700123,1"
    never = state(None, status=SignalStatus.ERROR, error="e", timestamp=None)
    assert signal_message(cfg, never, now=TS).payload == b"nan,1796465700123,0"


def test_topic_prefix_and_override() -> None:
    cfg = mqtt_config(topic_prefix="site/a")
    assert signal_message(cfg, state(1), now=TS).topic == "site/a/m1/s1"
    assert signal_message(cfg, state(1), now=TS, topic="plant/energy").topic == "plant/energy"


def test_device_status_payload() -> None:
    cfg = mqtt_config()
    online = DeviceState("m1", "127.0.0.1:4059", status=DeviceStatus.ONLINE, error=None)
    message = device_message(cfg, online, now=TS)
    assert (message.topic, message.retain) == ("dlms/m1/status", True)
    assert message.payload == (b'{"status": "online", "error": null, '
                               b'"ts": "2026-12-05T10:15:00.123Z"}')
    offline = replace(online, status=DeviceStatus.OFFLINE, error="connection refused")
    assert json.loads(device_message(cfg, offline, now=TS).payload) == {
        "status": "offline", "error": "connection refused", "ts": "2026-12-05T10:15:00.123Z"}
