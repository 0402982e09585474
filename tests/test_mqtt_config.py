"""The ``mqtt`` configuration object: defaults, every bad value named, the password masked."""

from __future__ import annotations

import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import signal, tcp_device

from dlmsd.config import MqttTls, load_config
from dlmsd.errors import ConfigError

Writer = Callable[..., Path]


def doc(mqtt: Any, **sig: Any) -> dict[str, Any]:
    return {"devices": [tcp_device()], "signals": [signal(**sig)], "mqtt": mqtt}


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value.problems


def test_absent_means_no_mqtt(write_config: Writer) -> None:
    assert load_config(write_config()).mqtt is None


def test_defaults(write_config: Writer) -> None:
    config = load_config(write_config(doc({"host": "broker.local"})))
    mqtt = config.mqtt
    assert mqtt is not None
    assert (mqtt.host, mqtt.port, mqtt.client_id, mqtt.username, mqtt.password, mqtt.tls,
            mqtt.keepalive_s, mqtt.qos, mqtt.retain, mqtt.topic_prefix, mqtt.format,
            mqtt.publish, mqtt.queue_size) == (
        "broker.local", 1883, f"dlmsd-{platform.node()}", None, None, None, 60, 1, True,
        "dlms", "json", "change", 10000)
    assert config.signals[0].topic is None


def test_every_key_set(write_config: Writer, tmp_path: Path) -> None:
    for name in ("ca.pem", "c.pem", "k.pem"):
        (tmp_path / name).write_text("x")
    config = load_config(write_config(doc(
        {"host": "10.0.0.1", "port": 8883, "client_id": "gw1", "username": "u",
         "password": "hunter2-secret", "keepalive_s": 30, "qos": 0, "retain": False,
         "topic_prefix": "site/a", "format": "wcc", "publish": "scan", "queue_size": 5,
         "tls": {"ca_file": "ca.pem", "cert_file": "c.pem", "key_file": "k.pem",
                 "insecure": True}}, topic="custom/t1")))
    mqtt = config.mqtt
    assert mqtt is not None
    assert mqtt.tls == MqttTls(str(tmp_path / "ca.pem"), str(tmp_path / "c.pem"),
                               str(tmp_path / "k.pem"), True)
    assert (mqtt.port, mqtt.client_id, mqtt.qos, mqtt.retain, mqtt.topic_prefix, mqtt.format,
            mqtt.publish, mqtt.queue_size, mqtt.keepalive_s) == (
        8883, "gw1", 0, False, "site/a", "wcc", "scan", 5, 30)
    assert mqtt.password is not None and mqtt.password.reveal() == b"hunter2-secret"
    assert "hunter2" not in repr(config)
    assert config.signals[0].topic == "custom/t1"


@pytest.mark.parametrize(("mqtt", "expected"), [
    ({}, "mqtt: missing required key 'host'"),
    ({"host": "h", "port": 0}, "mqtt.port: 0 is not allowed: must be an integer from 1 to 65535"),
    ({"host": "h", "qos": 2}, "mqtt.qos: 2 is not allowed: must be one of 0, 1"),
    ({"host": "h", "format": "xml"},
     'mqtt.format: "xml" is not allowed: must be one of "json", "wcc"'),
    ({"host": "h", "publish": "always"},
     'mqtt.publish: "always" is not allowed: must be one of "change", "scan"'),
    ({"host": "h", "queue_size": 0},
     "mqtt.queue_size: 0 is not allowed: must be an integer from 1 to 10000000"),
    ({"host": "h", "retain": 1}, "mqtt.retain: 1 is not allowed: must be a boolean"),
    ({"host": "h", "topic_prefix": "a/#"}, 'mqtt.topic_prefix: "a/#" is not allowed: must be '
     "a topic without spaces or the wildcards + and #"),
    ({"host": "h", "hots": 1}, "mqtt.hots: unknown key (allowed: client_id, format, host, "
     "keepalive_s, password, port, publish, qos, queue_size, retain, tls, topic_prefix, "
     "username)"),
    ({"host": "h", "password": "pw-secret"},
     "mqtt.password: set without mqtt.username: the broker takes a password only with a "
     "user name"),
    ({"host": "h", "tls": {"ca_file": "nothere.pem"}},
     'mqtt.tls.ca_file: "nothere.pem" is not allowed: no such file'),
    ("broker", 'mqtt: "broker" is not allowed: must be an object'),
])
def test_bad_values_are_named(write_config: Writer, mqtt: Any, expected: str) -> None:
    problems = problems_of(write_config(doc(mqtt)))
    assert len(problems) == 1 and problems[0].startswith(expected), problems


def test_password_is_masked_in_errors(write_config: Writer) -> None:
    problems = problems_of(write_config(doc({"host": "h", "username": "u",
                                             "password": 12345678})))
    assert problems == ["mqtt.password: *** is not allowed: must be a string"]


def test_signal_topic_without_wildcards(write_config: Writer) -> None:
    problems = problems_of(write_config(doc({"host": "h"}, topic="a/+/b")))
    assert problems == ['signals[0].topic: "a/+/b" is not allowed: must be a topic without '
                        "spaces or the wildcards + and #"]


def test_check_summary_shows_mqtt_not_the_password(write_config: Writer) -> None:
    """``dlms --check`` names the broker and the publishing settings, and says that a
    password is set without showing it."""
    import subprocess
    import sys

    secret = "s3cr3t-broker-pw"
    path = write_config({
        "devices": [tcp_device()], "signals": [signal()],
        "http": {"listen": "127.0.0.1:8080"},
        "mqtt": {"host": "broker.local", "port": 8883, "client_id": "gw1", "username": "u",
                 "password": secret, "tls": {"insecure": True}, "format": "wcc",
                 "topic_prefix": "site-a/gw1", "queue_size": 50}})
    result = subprocess.run([sys.executable, "-m", "dlmsd", "-c", str(path), "--check"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert ("\nhttp: 127.0.0.1:8080\nmqtt: broker.local:8883 client_id=gw1 "
            "topics=site-a/gw1/... format=wcc publish=change qos=1 retain=true queue=50, "
            "user u, password, TLS (insecure)\n") in result.stdout
    assert secret not in result.stdout + result.stderr
