"""MQTT output against a real mosquitto (a private broker per test) and a real subscriber.

Exact payloads of a register and a device status, retained status, the last will after
``kill -9`` of a ``dlms`` daemon reading ``dlms-sim``, username/password, TLS with a test
CA, a broker restart in the middle of a run with nothing lost, and the queue dropping
the oldest when it is full.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import re
import signal as os_signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from conftest import signal, tcp_device
from test_e2e_sim import simulator

from dlmsd.config import Config, parse_config
from dlmsd.outputs.mqtt import MqttPublisher
from dlmsd.signals import SignalTable

TS = 1796465700.123  # 2026-12-05T10:15:00.123Z


class Subscriber:
    """A paho subscriber on its own thread: every message as (topic, payload, retain)."""

    def __init__(self, port: int, topic: str = "#", *, persistent: bool = False,
                 **tls: Any) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2,
                                  client_id=f"sub-{uuid.uuid4().hex[:8]}",
                                  clean_session=not persistent)
        self.client.reconnect_delay_set(0.1, 0.3)
        self.topic = topic

        def on_connect(client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
            client.subscribe(self.topic, qos=1)

        def on_subscribe(*_args: Any) -> None:
            self.subscribed.set()

        def on_message(client: Any, userdata: Any, msg: Any) -> None:
            with self.lock:
                self.messages.append((msg.topic, msg.payload, bool(msg.retain)))

        self.client.on_connect = on_connect
        self.client.on_subscribe = on_subscribe
        self.client.on_message = on_message
        self.client.connect("127.0.0.1", port, keepalive=10)
        self.client.loop_start()
        assert self.subscribed.wait(5), "subscriber did not subscribe"

    def on(self, topic: str) -> list[bytes]:
        with self.lock:
            return [payload for t, payload, _ in self.messages if t == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


async def until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.02)


def wait_sync(check: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


class Log:
    """A structlog-like logger that records (level, event, fields)."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, Any]]] = []

    def bind(self, **_fields: Any) -> Log:
        return self

    def __getattr__(self, level: str) -> Callable[..., None]:
        def log(event: str, **fields: Any) -> None:
            self.lines.append((level, event, fields))
        return log

    def events(self, name: str) -> list[dict[str, Any]]:
        return [fields for _, event, fields in self.lines if event == name]


def setup(port: int, **mqtt: Any) -> tuple[Config, SignalTable]:
    config = parse_config({"devices": [tcp_device("m1")],
                           "signals": [signal("s1")],
                           "mqtt": {"host": "127.0.0.1", "port": port, "client_id": "t",
                                    **mqtt}})
    return config, SignalTable.from_config(config)


def publisher(config: Config, table: SignalTable, log: Any = None) -> MqttPublisher:
    assert config.mqtt is not None
    return MqttPublisher(config.mqtt, table, log or Log(), backoff=0.1, max_backoff=0.4,
                         clock=lambda: TS)


@pytest.fixture
def subscribers() -> Iterator[Callable[..., Subscriber]]:
    made: list[Subscriber] = []

    def make(*args: Any, **kwargs: Any) -> Subscriber:
        sub = Subscriber(*args, **kwargs)
        made.append(sub)
        return sub

    yield make
    for sub in made:
        sub.close()


async def test_register_and_device_status_exact(mosquitto: Any,
                                                subscribers: Callable[..., Subscriber]) -> None:
    broker = mosquitto()
    sub = subscribers(broker.port)
    config, table = setup(broker.port)
    pub = publisher(config, table)
    await pub.start()
    try:
        await until(lambda: sub.on("dlms/status") == [b"online"])
        table.device_online("m1", now=TS)
        table.update_signal("s1", value=Decimal("1234.56"), raw=123456, unit="kWh", now=TS)
        await until(lambda: bool(sub.on("dlms/m1/s1")))
    finally:
        await pub.stop()
    await until(lambda: len(sub.on("dlms/status")) == 2)
    assert sub.on("dlms/m1/s1") == [b'{"value": 1234.56, "unit": "kWh", "obis": '
                                    b'"1.0.1.8.0.255", "ts": "2026-12-05T10:15:00.123Z", '
                                    b'"quality": "good"}']
    assert sub.on("dlms/m1/status") == [b'{"status": "online", "error": null, '
                                        b'"ts": "2026-12-05T10:15:00.123Z"}']
    assert sub.on("dlms/status") == [b"online", b"offline"]  # a clean stop says offline
    # a subscriber arriving later gets the retained values and statuses at once
    late = subscribers(broker.port)
    wait_sync(lambda: len(late.messages) >= 3, timeout=5)
    assert {(t, r) for t, _, r in late.messages} == {
        ("dlms/status", True), ("dlms/m1/status", True), ("dlms/m1/s1", True)}
    assert late.on("dlms/status") == [b"offline"]


async def test_change_publishes_only_changes_scan_every_read(
        mosquitto: Any, subscribers: Callable[..., Subscriber]) -> None:
    broker = mosquitto()
    sub = subscribers(broker.port)
    for mode, expected in (("change", 2), ("scan", 3)):
        config, table = setup(broker.port, publish=mode, topic_prefix=mode, format="wcc")
        pub = publisher(config, table)
        await pub.start()
        try:
            for n, value in enumerate(["1", "1", "2"]):
                table.update_signal("s1", value=Decimal(value), raw=0, unit="", now=TS + n)
            await until(lambda m=mode, e=expected: len(sub.on(f"{m}/m1/s1")) == e)
        finally:
            await pub.stop()
    assert sub.on("change/m1/s1") == [b"1,1796465700123,1", b"2,1796465702123,1"]


def test_last_will_after_kill_9(mosquitto: Any, subscribers: Callable[..., Subscriber],
                                write_config: Callable[..., Path]) -> None:
    broker = mosquitto()
    sub = subscribers(broker.port)
    with simulator("--wrapper-port", "0") as ports:
        path = write_config({
            "devices": [tcp_device("m", port=ports["wrapper"], mode="DLMS-WRAPPER",
                                   logical_address=1, scan_rate_ms=500)],
            "signals": [signal("energy", "m", "1.0.1.8.0.255")],
            "mqtt": {"host": "127.0.0.1", "port": broker.port, "client_id": "dlms-kill"}})
        daemon = subprocess.Popen([sys.executable, "-m", "dlmsd", "-c", str(path), "-d3"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_sync(lambda: bool(sub.on("dlms/m/energy")) and bool(sub.on("dlms/m/status")))
            assert sub.on("dlms/status") == [b"online"]
            os.kill(daemon.pid, os_signal.SIGKILL)
            daemon.wait(10)
            wait_sync(lambda: sub.on("dlms/status") == [b"online", b"offline"], timeout=10)
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait()
            assert daemon.stderr is not None
            daemon.stderr.close()
    doc = json.loads(sub.on("dlms/m/energy")[0])
    # the model's 1.0.1.8.0.255 (dlmsd/sim/meter.json), as tests/test_e2e_sim.py has it
    assert (doc["value"], doc["unit"], doc["obis"], doc["quality"]) == (
        1234560, "Wh", "1.0.1.8.0.255", "good")
    status = json.loads(sub.on("dlms/m/status")[0])
    assert (status["status"], status["error"]) == ("online", None)
    assert datetime.datetime.strptime(status["ts"], "%Y-%m-%dT%H:%M:%S.%fZ")


async def test_username_and_password(mosquitto: Any, tmp_path: Path) -> None:
    passwd = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(passwd), "gw", "s3cret-pass"],
                   check=True, capture_output=True)
    passwd.chmod(0o600)
    broker = mosquitto([f"password_file {passwd}", "allow_anonymous false"])
    config, table = setup(broker.port, username="gw", password="s3cret-pass")
    good = publisher(config, table)
    await good.start()
    try:
        await until(lambda: good.connected, timeout=5)
    finally:
        await good.stop()
    log = Log()
    config, table = setup(broker.port, username="gw", password="wrong-pass-x")
    bad = publisher(config, table, log)
    await bad.start()
    try:
        await until(lambda: len(log.events("mqtt_connect_failed")) >= 2, timeout=5)
        assert not bad.connected
    finally:
        await bad.stop()
    assert "wrong-pass-x" not in repr(log.lines) and "wrong-pass-x" not in repr(config)


def _ca_and_server(tmp_path: Path) -> tuple[Path, Path, Path]:
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("dlmsd test CA"))
          .issuer_name(name("dlmsd test CA")).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now)
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                       False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                         critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(name("localhost")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = tmp_path / "ca.pem", tmp_path / "server.pem", tmp_path / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


async def test_tls_with_a_test_ca(mosquitto: Any, tmp_path: Path) -> None:
    ca, cert, key = _ca_and_server(tmp_path)
    broker = mosquitto([f"cafile {ca}", f"certfile {cert}", f"keyfile {key}"])
    config, table = setup(broker.port, tls={"ca_file": str(ca)})
    pub = publisher(config, table)
    await pub.start()
    try:
        await until(lambda: pub.connected, timeout=5)
        table.update_signal("s1", value=Decimal("1.5"), raw=15, unit="V", now=TS)
        await until(lambda: pub.published >= 1 and not pub.queue, timeout=5)
    finally:
        await pub.stop()


# paho-mqtt 2.2.0 leaves the socket of a failed TLS handshake to the garbage collector
# (Client._ssl_wrap_socket: do_handshake() raises, nothing closes the socket).
@pytest.mark.filterwarnings("ignore::ResourceWarning",
                            "ignore::pytest.PytestUnraisableExceptionWarning")
async def test_tls_refuses_an_unknown_ca(mosquitto: Any, tmp_path: Path) -> None:
    ca, cert, key = _ca_and_server(tmp_path)
    broker = mosquitto([f"cafile {ca}", f"certfile {cert}", f"keyfile {key}"])
    log = Log()  # without the test CA (the system's CAs) the certificate is refused
    config, table = setup(broker.port, tls={})
    untrusted = publisher(config, table, log)
    await untrusted.start()
    try:
        await until(lambda: bool(log.events("mqtt_tls_failed")
                                 or log.events("mqtt_connect_failed")), timeout=5)
        assert not untrusted.connected
    finally:
        await untrusted.stop()


async def test_broker_restart_loses_nothing(mosquitto: Any,
                                            subscribers: Callable[..., Subscriber]) -> None:
    broker = mosquitto(persistence=True)  # keeps the subscriber's session over the restart
    sub = subscribers(broker.port, "dlms/m1/s1", persistent=True)
    config, table = setup(broker.port, queue_size=1000, retain=False)
    log = Log()
    pub = publisher(config, table, log)
    await pub.start()
    try:
        await until(lambda: pub.connected)
        for n in range(300):
            table.update_signal("s1", value=Decimal(n), raw=n, unit="", now=TS)
            if n == 100:
                await until(lambda: pub.published > 0)  # a run under way
                broker.stop()
            if n == 200:
                await until(lambda: not pub.connected)
            await asyncio.sleep(0.001)
        assert pub.dropped == 0 and len(pub.queue) >= 99  # at least 200..299 wait
        broker.start()
        await until(lambda: len(set(sub.on("dlms/m1/s1"))) == 300, timeout=20)
    finally:
        await pub.stop()
    values = [json.loads(p)["value"] for p in sub.on("dlms/m1/s1")]
    firsts = list(dict.fromkeys(values))  # QoS 1: a batch cut off may come twice
    assert firsts == list(range(300))
    assert log.events("mqtt_disconnected") and len(log.events("mqtt_connected")) >= 2


async def test_full_queue_drops_the_oldest(mosquitto: Any,
                                           subscribers: Callable[..., Subscriber]) -> None:
    broker = mosquitto(persistence=True)
    sub = subscribers(broker.port, "dlms/m1/s1", persistent=True)
    broker.stop()
    config, table = setup(broker.port, queue_size=50, retain=False)
    log = Log()
    pub = publisher(config, table, log)
    await pub.start()
    try:
        started = time.monotonic()
        for n in range(120):
            table.update_signal("s1", value=Decimal(n), raw=n, unit="", now=TS)
        assert time.monotonic() - started < 0.5  # the broker being away slows no poller
        assert (pub.dropped, len(pub.queue)) == (70, 50)
        assert len(log.events("mqtt_queue_full")) == 1  # once per outage
        broker.start()
        await until(lambda: len(sub.on("dlms/m1/s1")) >= 50, timeout=20)
        await until(lambda: not pub.queue)
    finally:
        await pub.stop()
    values = [json.loads(p)["value"] for p in sub.on("dlms/m1/s1")]
    assert list(dict.fromkeys(values)) == list(range(70, 120))
    assert log.events("mqtt_connected")[0]["dropped_while_away"] == 70


async def test_reload_restarts_the_publisher_only_when_mqtt_changed(mosquitto: Any) -> None:
    from dlmsd.outputs.mqtt import MqttOutput

    broker = mosquitto()
    config, table = setup(broker.port)
    output = MqttOutput(table, Log())
    try:
        await output.apply(config)
        first = output.publisher
        assert first is not None
        await until(lambda: first.connected)
        same = parse_config({"devices": [tcp_device("m1")],
                             "signals": [signal("s1", topic="plant/energy")],
                             "mqtt": {"host": "127.0.0.1", "port": broker.port,
                                      "client_id": "t"}})
        await output.apply(same)  # only a signal's topic changed: same connection
        assert output.publisher is first and first.topics == {"s1": "plant/energy"}
        changed = parse_config({"devices": [tcp_device("m1")], "signals": [signal("s1")],
                                "mqtt": {"host": "127.0.0.1", "port": broker.port,
                                         "client_id": "t", "topic_prefix": "x"}})
        await output.apply(changed)
        assert output.publisher is not first and output.publisher is not None
        assert output.publisher.cfg.topic_prefix == "x"
        await output.apply(parse_config({"devices": [tcp_device("m1")],
                                         "signals": [signal("s1")]}))
        assert output.publisher is None
    finally:
        await output.stop()


async def test_reload_to_another_broker_carries_the_queue(
        mosquitto: Any, subscribers: Callable[..., Subscriber]) -> None:
    """SIGHUP while the broker is away, with a new broker in the configuration: what the
    old publisher queued goes to the new broker first, in order, nothing lost; with a
    new topic prefix the queue is dropped and counted instead (its topics are wrong)."""
    from dlmsd.outputs.mqtt import MqttOutput

    broker = mosquitto()
    sub = subscribers(broker.port, "#")
    dead_port = _dead_port()
    config, table = setup(dead_port, publish="scan")
    log = Log()
    output = MqttOutput(table, log)
    try:
        await output.apply(config)
        for n in range(20):
            table.update_signal("s1", value=Decimal(n), raw=n, unit="kWh", now=TS + n)
        old = output.publisher
        assert old is not None and len(old.queue) == 20 and not old.connected
        moved, _ = setup(broker.port, publish="scan")
        await output.apply(moved)
        new = output.publisher
        assert new is not None and new is not old
        await until(lambda: len(sub.on("dlms/m1/s1")) >= 20)
        values = [json.loads(p)["value"] for p in sub.on("dlms/m1/s1")]
        assert values[:20] == list(range(20))
        assert log.events("mqtt_queue_carried") == [{"queued": 20}]
        assert new.dropped == 0
        # a new prefix: the queued messages are not carried (their topics are old)
        await until(lambda: not new.queue)
        await output.apply(setup(dead_port, publish="scan")[0])
        for n in range(5):
            table.update_signal("s1", value=Decimal(100 + n), raw=n, unit="kWh", now=TS)
        await output.apply(setup(broker.port, publish="scan", topic_prefix="site")[0])
        renamed = output.publisher
        # the table's value queued at the start (19) and the 5 updates
        assert renamed is not None and renamed.dropped == 6
        assert log.events("mqtt_queue_not_carried")[-1]["dropped"] == 6
        await until(lambda: len(sub.on("site/m1/s1")) >= 1)
        assert json.loads(sub.on("site/m1/s1")[-1])["value"] == 104  # the table's value
    finally:
        await output.stop()


def test_spool_round_trip_and_bad_files() -> None:
    from dlmsd.outputs.mqtt import Carry, Message, spool_carry, spool_text

    carry = Carry(("site", "json", True), [
        Message("site/m1/s1", '{"value": "Zähler"}'.encode(), True),
        Message("site/m1/s1", bytes(range(256)), False)], {"s1": (1,)})
    back = spool_carry(spool_text(carry))
    assert back.made_with == carry.made_with and back.messages == carry.messages
    assert back.last == {}  # the change filter starts anew after a restart
    for text, message in [("[]", "not a dlmsd-mqtt-spool/1 file"),
                          ('{"format": "dlmsd-mqtt-spool/1"}', "topic_prefix, payload_format"),
                          ('{"format": "dlmsd-mqtt-spool/1", "topic_prefix": "d", '
                           '"payload_format": "json", "retain": true, "messages": [["t", 1, '
                           'true]]}', "message 0 is not [topic, payload, retain]")]:
        with pytest.raises(ValueError, match=re.escape(message)):
            spool_carry(text)


async def test_stop_while_the_broker_is_away_spools_the_queue(
        mosquitto: Any, subscribers: Callable[..., Subscriber], tmp_path: Path) -> None:
    """A stop (or restart) of the daemon during an outage: what is queued goes to the
    spool file in the state directory, and the next start sends it first, in order; a
    spool that cannot be read is set aside (``.bad``) and logged, and the output runs."""
    from dlmsd.outputs.mqtt import MqttOutput

    broker = mosquitto()
    sub = subscribers(broker.port, "#")
    spool = tmp_path / "state" / "mqtt-queue.json"
    config, table = setup(_dead_port(), publish="scan")
    log = Log()
    output = MqttOutput(table, log, spool=spool)
    await output.apply(config)
    for n in range(15):
        table.update_signal("s1", value=Decimal(n), raw=n, unit="kWh", now=TS + n)
    await output.stop()
    assert log.events("mqtt_spooled") == [{"path": str(spool), "messages": 15}]
    assert spool.exists()
    config, table = setup(broker.port, publish="scan")  # the restarted daemon's table
    log = Log()
    output = MqttOutput(table, log, spool=spool)
    try:
        await output.apply(config)
        await until(lambda: len(sub.on("dlms/m1/s1")) >= 15)
        assert [json.loads(p)["value"] for p in sub.on("dlms/m1/s1")] == list(range(15))
        assert log.events("mqtt_spool_read") == [{"path": str(spool), "messages": 15}]
        assert not spool.exists()
    finally:
        await output.stop()
    assert not spool.exists()  # everything was sent: nothing to spool
    spool.write_text("{not json")
    log = Log()
    output = MqttOutput(table, log, spool=spool)
    try:
        await output.apply(config)
        assert log.events("mqtt_spool_unreadable")[0]["set_aside"] == str(spool) + ".bad"
        assert (tmp_path / "state" / "mqtt-queue.json.bad").read_text() == "{not json"
        assert output.publisher is not None
        await until(lambda: output.publisher is not None and output.publisher.connected)
    finally:
        await output.stop()


def test_daemon_restart_during_an_outage_loses_nothing(
        mosquitto: Any, subscribers: Callable[..., Subscriber],
        write_config: Callable[..., Path], tmp_path: Path) -> None:
    """The daemon reads a meter while the broker is away, is stopped (SIGTERM), and
    started again with the broker back: the reads of the first run arrive first."""
    from test_cli import Daemon

    broker = mosquitto()
    sub = subscribers(broker.port, "dlms/m/energy")
    state = tmp_path / "state"
    with simulator("--wrapper-port", "0") as ports:
        def config(port: int) -> Path:
            return write_config({
                "devices": [tcp_device("m", port=ports["wrapper"], mode="DLMS-WRAPPER",
                                       logical_address=1, scan_rate_ms=300)],
                "signals": [signal("energy", "m", "1.0.1.8.0.255")],
                "state_dir": str(state),
                "mqtt": {"host": "127.0.0.1", "port": port, "client_id": "dlms-spool",
                         "publish": "scan"}})
        first = Daemon(config(_dead_port()), tmp_path / "first.log")
        try:
            first.wait_for("mqtt_connect_failed", count=3)  # by then a few scans queued
            first.proc.send_signal(os_signal.SIGTERM)
            assert first.proc.wait(timeout=30) == 0
        finally:
            first.close()
        text = (tmp_path / "first.log").read_text()
        assert "mqtt_spooled" in text, text
        spooled = [m for m in json.loads((state / "mqtt-queue.json").read_text())["messages"]
                   if m[0] == "dlms/m/energy"]
        assert len(spooled) >= 3
        second = Daemon(config(broker.port), tmp_path / "second.log")
        try:
            wait_sync(lambda: len(sub.on("dlms/m/energy")) >= len(spooled) + 1)
        finally:
            second.close()
    got = sub.on("dlms/m/energy")
    assert got[:len(spooled)] == [m[1].encode("latin-1") for m in spooled]
    assert "mqtt_spool_read" in (tmp_path / "second.log").read_text()


def _dead_port() -> int:
    """A loopback port nothing listens on: a broker that is away."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_outage_script_runs_and_reports() -> None:
    """scripts/mqtt_outage.py (a short outage, a queue too small for it) reports drops."""
    script = Path(__file__).resolve().parent.parent / "scripts/mqtt_outage.py"
    result = subprocess.run([sys.executable, str(script), "--outage", "2", "--before", "1",
                             "--after", "2", "--rss-s", "2", "--signals", "10",
                             "--scan-ms", "200", "--queue-size", "20"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    dropped = int(result.stdout.split("dropped ")[1].split(",")[0])
    assert dropped > 0, result.stdout
    # once per outage; on a loaded machine the queue may fill before the first connect
    # too (the time before it is an outage as well), so at most once per connect
    logged = int(result.stdout.split("mqtt_queue_full logged ")[1].split(" ")[0])
    connects = int(result.stdout.split("connects ")[1].split()[0])
    assert 1 <= logged <= connects, result.stdout
    assert "RSS without mqtt" in result.stdout, result.stdout


def test_two_daemons_into_one_broker(mosquitto: Any, subscribers: Callable[..., Subscriber],
                                     write_config: Callable[..., Path]) -> None:
    """One client_id and topic_prefix per daemon: a subscriber sees both, apart."""
    broker = mosquitto()
    sub = subscribers(broker.port)
    daemons = []
    with simulator("--wrapper-port", "0") as ports:
        try:
            for site in ("site-a", "site-b"):
                path = write_config({
                    "devices": [tcp_device("m", port=ports["wrapper"], mode="DLMS-WRAPPER",
                                           logical_address=1)],
                    "signals": [signal("energy", "m", "1.0.1.8.0.255")],
                    "mqtt": {"host": "127.0.0.1", "port": broker.port,
                             "client_id": f"dlmsd-{site}", "topic_prefix": site}})
                daemons.append(subprocess.Popen(
                    [sys.executable, "-m", "dlmsd", "-c", str(path), "-d3"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            wait_sync(lambda: all(sub.on(f"{s}/m/energy") for s in ("site-a", "site-b")))
            for proc in daemons:
                proc.terminate()
                assert proc.wait(15) == 0
            wait_sync(lambda: all(sub.on(f"{s}/status") == [b"online", b"offline"]
                                  for s in ("site-a", "site-b")))
        finally:
            for proc in daemons:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
    for site in ("site-a", "site-b"):
        assert json.loads(sub.on(f"{site}/m/energy")[0])["value"] == 1234560
    assert {t.split("/")[0] for t, _, _ in sub.messages} == {"site-a", "site-b"}


async def test_a_ca_file_gone_after_loading_is_logged_and_retried(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not a certificate")
    config, table = setup(1, tls={"ca_file": str(ca)})
    ca.unlink()
    log = Log()
    pub = publisher(config, table, log)
    await pub.start()
    try:
        await until(lambda: len(log.events("mqtt_tls_failed")) >= 2, timeout=5)
    finally:
        await pub.stop()
    assert "No such file" in log.events("mqtt_tls_failed")[0]["error"]
