"""The HTTP API (dlmsd/outputs/http.py), its configuration and ``dlms-top``.

End to end: a real ``dlms`` daemon subprocess with ``http.listen`` on a free loopback
port, reading ``dlms-sim`` (another subprocess); its answers are compared with what
``dlms --once --json`` prints for the same meter. In process: the auth, the error
answers and the metrics over a hand-made table (aiohttp's test server, loopback).
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal as signals
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import structlog
from aiohttp.test_utils import TestClient, TestServer
from conftest import signal, tcp_device
from fakes import FakeMeter, factory_for
from prometheus_client.parser import text_string_to_metric_families
from test_cli import Daemon
from test_e2e_sim import EXPECTED, once, signals_for, simulator

from dlmsd.config import HttpConfig, parse_config, parse_listen
from dlmsd.errors import ConfigError, DlmsTimeout, TransportError
from dlmsd.outputs.http import HttpServer, metrics_text
from dlmsd.poller import SCAN_BUCKETS_S, PollStats
from dlmsd.secret import Secret
from dlmsd.signals import SignalTable
from dlmsd.supervisor import Supervisor
from dlmsd.top import frame, snapshot_from_json

Writer = Callable[..., Path]
TOKEN = "t0ken-for-the-http-tests"
CODES = ["1.0.1.8.0.255", "1.0.32.7.0.255", "1.0.31.7.0.255", "0.0.96.1.1.255",
         "0.128.128.0.1.255", "0.128.128.0.18.255", "0.128.128.0.17.255"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# -- configuration -------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1:8080", ("127.0.0.1", 8080)),
    ("[::1]:8080", ("::1", 8080)),
    ("localhost:1", ("localhost", 1)),
    ("0.0.0.0:65535", ("0.0.0.0", 65535)),
])
def test_listen_parses(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("localhost", "is not host:port"),
    ("127.0.0.1:", "is not host:port"),
    ("::1:8080", "is not host:port"),  # IPv6 needs brackets
    ("[::g]:8080", "is not host:port"),
    ("[1::2::3]:8080", "[1::2::3] is not an IPv6 address"),
    ("127.0.0.1:0", "port 0 is out of range 1..65535"),
    ("127.0.0.1:70000", "port 70000 is out of range"),
])
def test_listen_refused(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"devices": [tcp_device()], "signals": [signal()],
                      "http": {"listen": text}})
    assert any(p.startswith("http.listen: ") and message in p for p in info.value.problems), \
        info.value.problems


def test_http_config_token_is_a_secret() -> None:
    config = parse_config({"devices": [tcp_device()], "signals": [signal()],
                           "http": {"listen": "[::1]:8080", "token": TOKEN}})
    assert config.http is not None
    assert (config.http.host, config.http.port, config.http.listen) == ("::1", 8080,
                                                                       "[::1]:8080")
    assert config.http.token == Secret(TOKEN)
    assert TOKEN not in repr(config) and TOKEN not in str(config.http)
    assert parse_config({"devices": [tcp_device()], "signals": [signal()]}).http is None


@pytest.mark.parametrize(("listen", "token", "warned"), [
    ("0.0.0.0:8080", None, True), ("[::]:8080", None, True), ("gw.example:80", None, True),
    ("0.0.0.0:8080", TOKEN, False), ("127.0.0.2:8080", None, False),
    ("[::1]:8080", None, False), ("localhost:8080", None, False),
])
def test_open_listen_without_token_is_warned(listen: str, token: str | None,
                                             warned: bool) -> None:
    http = {"listen": listen, **({"token": token} if token else {})}
    config = parse_config({"devices": [tcp_device()], "signals": [signal()], "http": http})
    found = [w for w in config.warnings if w.startswith("http.listen: ")]
    assert bool(found) is warned, config.warnings
    assert all("no http.token" in w for w in found)


def test_http_config_errors() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"devices": [tcp_device()], "signals": [signal()],
                      "http": {"token": TOKEN, "port": 1}})
    text = "\n".join(info.value.problems)
    assert "http.port: unknown key" in text and "listen" in text
    assert TOKEN not in text
    with pytest.raises(ConfigError) as info:
        parse_config({"devices": [tcp_device()], "signals": [signal()],
                      "http": {"listen": "127.0.0.1:1", "token": 12345}})
    assert info.value.problems == ["http.token: *** is not allowed: must be a non-empty "
                                   "string"]


# -- in process: a table made by hand -----------------------------------------------

def _table() -> tuple[SignalTable, dict[str, PollStats]]:
    config = parse_config({
        "devices": [tcp_device("a"), tcp_device("b", port=4060), tcp_device("c", enable=0)],
        "signals": [signal("e", "a", obis="1.0.1.8.0.255"),
                    signal("txt", "a", obis="0.0.96.1.1.255"),
                    signal("flag", "a", obis="0.128.128.0.1.255"),
                    signal("v", "b", obis="1.0.32.7.0.255")]})
    table = SignalTable.from_config(config)
    table.update_signal("e", value=Decimal("1234.56"), raw=123456, unit="kWh", now=10.0)
    table.update_signal("txt", value="dlms-sim", raw="dlms-sim", unit="", now=10.0)
    table.update_signal("flag", value=True, raw=True, unit="", now=10.0)
    table.device_connected("a")
    table.device_online("a", now=10.0)
    table.device_offline("b", "connection refused", ["v"])
    stats = {"a": PollStats(reads=3, read_errors=1, timeouts=2, retries=4, reconnects=5,
                            resends=6, late_scans=7, missed_scans=8, first_scan_at=9.5),
             "b": PollStats()}
    stats["a"].scan_done(0.07)
    stats["a"].scan_done(3.0)
    return table, stats


def _families(text: str) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_metrics_from_the_table() -> None:
    table, stats = _table()
    families = _families(metrics_text(table, stats).decode())
    values = {tuple(sorted(s.labels.items())): s.value
              for s in families["dlmsd_signal_value"].samples}
    # numbers only (not text, not a boolean), and only signals read ok
    assert values == {(("device", "a"), ("obis", "1.0.1.8.0.255:2"), ("signal", "e"),
                       ("unit", "kWh")): 1234.56}
    up = {s.labels["device"]: s.value for s in families["dlmsd_device_up"].samples}
    assert up == {"a": 1.0, "b": 0.0}  # c is disabled: not shown
    assert families["dlmsd_timeouts"].type == "counter"
    counters = {(f, s.labels["device"]): s.value for f in
                ("dlmsd_reads", "dlmsd_read_errors", "dlmsd_timeouts", "dlmsd_retries",
                 "dlmsd_reconnects", "dlmsd_resends", "dlmsd_failures", "dlmsd_connects")
                for s in families[f].samples if s.name.endswith("_total")}
    assert counters[("dlmsd_reads", "a")] == 3 and counters[("dlmsd_read_errors", "a")] == 1
    assert counters[("dlmsd_timeouts", "a")] == 2 and counters[("dlmsd_retries", "a")] == 4
    assert counters[("dlmsd_reconnects", "a")] == 5 and counters[("dlmsd_failures", "b")] == 1
    assert counters[("dlmsd_connects", "a")] == 1 and counters[("dlmsd_resends", "a")] == 6
    late = {s.labels["device"]: s.value for s in families["dlmsd_late_scans"].samples
            if s.name.endswith("_total")}
    missed = {s.labels["device"]: s.value for s in families["dlmsd_missed_scans"].samples
              if s.name.endswith("_total")}
    assert late == {"a": 7, "b": 0} and missed == {"a": 8, "b": 0}
    first = {s.labels["device"]: s.value
             for s in families["dlmsd_first_scan_timestamp_seconds"].samples}
    assert first == {"a": 9.5}  # b has not completed a scan: no sample
    hist = {(s.name, s.labels.get("le")): s.value
            for s in families["dlmsd_scan_duration_seconds"].samples
            if s.labels["device"] == "a"}
    assert hist[("dlmsd_scan_duration_seconds_bucket", "0.05")] == 0
    assert hist[("dlmsd_scan_duration_seconds_bucket", "0.1")] == 1
    assert hist[("dlmsd_scan_duration_seconds_bucket", "2.5")] == 1
    assert hist[("dlmsd_scan_duration_seconds_bucket", "5.0")] == 2
    assert hist[("dlmsd_scan_duration_seconds_bucket", "+Inf")] == 2
    assert hist[("dlmsd_scan_duration_seconds_count", None)] == 2
    assert hist[("dlmsd_scan_duration_seconds_sum", None)] == pytest.approx(3.07)


def test_poll_stats_histogram_is_cumulative() -> None:
    stats = PollStats()
    for seconds in (0.01, 0.3, 100.0):
        stats.scan_done(seconds)
    assert len(stats.scan_buckets) == len(SCAN_BUCKETS_S)
    assert stats.scan_buckets[0] == 1  # 0.01 <= 0.05
    assert stats.scan_buckets[SCAN_BUCKETS_S.index(0.5)] == 2
    assert stats.scan_buckets[-1] == 2  # 100 s is past the last bound: +Inf only
    assert stats.scan_count == 3


async def test_poll_stats_count_what_the_pollers_do() -> None:
    """The PollStats hook: reads and read errors per attribute, the immediate re-association
    after a dropped link (a retry), timeouts, and attempts after the first; kept by the
    supervisor for /metrics."""
    config = parse_config({
        "devices": [tcp_device("m1", scan_rate_ms=100, reconnect_time=100)],
        "signals": [signal("e1", "m1"), signal("x1", "m1", obis="1.0.2.8.0.255")]})
    errors = iter([None, TransportError("connection closed by the meter"), None,
                   DlmsTimeout("no answer in 100 ms")])
    meter = FakeMeter({"e1": 1}, read_error=lambda: next(errors, None))
    supervisor = Supervisor(config, session_factory=factory_for({"m1": meter}))
    await supervisor.start()
    try:
        async with asyncio.timeout(5):
            while meter.reads < 4:
                await asyncio.sleep(0.005)
        stats = supervisor.stats["m1"]
        assert stats.retries == 1  # the dropped link: a new association at once
        assert stats.timeouts == 1  # the timeout: offline, back-off, a new association
        assert stats.reconnects == stats.attempts - 1 >= 2
        assert stats.reads == 2 * stats.scan_count and stats.read_errors == stats.scan_count
        assert meter.reads - 1 <= stats.scan_count <= meter.reads
        assert stats.scan_buckets[-1] == stats.scan_count  # every fake scan is under 60 s
    finally:
        await supervisor.stop()


class _Log:
    def __init__(self) -> None:
        self.lines: list[tuple[str, dict[str, Any]]] = []

    def error(self, event: str, **fields: Any) -> None:
        self.lines.append((event, fields))

    info = error


async def _closed(client: TestClient[Any, Any]) -> None:
    """Close, then let the loop run the transports' connection_lost callbacks (a closed
    transport lets go of its socket only there: a loop closed before would leave it to
    the garbage collector, a ResourceWarning)."""
    await client.close()
    await asyncio.sleep(0.05)


async def _client(token: str | None, table: SignalTable | None = None,
                  stats: dict[str, PollStats] | None = None,
                  log: _Log | None = None) -> TestClient[Any, Any]:
    made, made_stats = _table()
    server = HttpServer(HttpConfig("127.0.0.1", 1, Secret(token) if token else None),
                        table or made, lambda: stats if stats is not None else made_stats,
                        log or _Log())
    client: TestClient[Any, Any] = TestClient(TestServer(server.app(), host="127.0.0.1"))
    await client.start_server()
    return client


@pytest.mark.parametrize("path", ["/api/v1/signals", "/api/v1/devices", "/metrics",
                                  "/healthz", "/nowhere"])
async def test_token_is_needed_everywhere(path: str) -> None:
    client = await _client(TOKEN)
    try:
        for headers in ({}, {"Authorization": "Bearer wrong"},
                        {"Authorization": TOKEN}, {"Authorization": f"Bearer {TOKEN}x"},
                        {"Authorization": "Bearer ä"}):
            answer = await client.get(path, headers=headers)
            assert answer.status == 401, headers
            assert TOKEN not in await answer.text()
        answer = await client.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
        assert answer.status == (404 if path == "/nowhere" else 200)
    finally:
        await _closed(client)


async def test_endpoints_without_token() -> None:
    client = await _client(None)
    try:
        signals_doc = await (await client.get("/api/v1/signals")).json()
        assert [s["signal_alias"] for s in signals_doc["signals"]] == ["e", "txt", "flag", "v"]
        assert signals_doc["signals"][0]["value"] == 1234.56
        assert signals_doc["signals"][3]["status"] == "error"
        devices = (await (await client.get("/api/v1/devices")).json())["devices"]
        a = devices[0]
        assert (a["device_alias"], a["status"], a["last_ok"], a["connects"], a["scans"]) == (
            "a", "online", 10.0, 1, 1)
        assert (a["reads"], a["read_errors"], a["timeouts"], a["retries"],
                a["reconnects"], a["resends"]) == (3, 1, 2, 4, 5, 6)
        assert (a["late_scans"], a["missed_scans"], a["first_scan_at"]) == (7, 8, 9.5)
        assert devices[1]["first_scan_at"] is None
        assert (devices[1]["status"], devices[1]["error"], devices[1]["failures"]) == (
            "offline", "connection refused", 1)
        assert devices[2]["status"] == "disabled" and "reads" not in devices[2]
        health = await (await client.get("/healthz")).json()
        assert (health["status"], health["devices_online"], health["devices"]) == ("ok", 1, 2)
        metrics = await client.get("/metrics")
        assert metrics.headers["Content-Type"].startswith("text/plain; version=")
        assert "dlmsd_signal_value" in _families(await metrics.text())
        answer = await client.post("/api/v1/signals", data=b"x")
        assert answer.status == 405 and "GET" in answer.headers["Allow"]
        answer = await client.get("/api/v2/signals")
        assert answer.status == 404 and (await answer.json()) == {"error": "Not Found"}
    finally:
        await _closed(client)


async def test_a_failing_handler_is_a_500_without_traceback() -> None:
    class Broken(SignalTable):
        def snapshot(self) -> Any:
            raise RuntimeError("secret internals /etc/dlms")

    log = _Log()
    client = await _client(None, table=Broken(), log=log)
    try:
        answer = await client.get("/api/v1/signals")
        assert answer.status == 500
        body = await answer.text()
        assert json.loads(body) == {"error": "internal error"}
        assert "Traceback" not in body and "secret internals" not in body
        assert log.lines and log.lines[0][0] == "http_error"
    finally:
        await _closed(client)


def test_top_frame_renders_the_api_table() -> None:
    table, _ = _table()
    doc = json.loads(json.dumps(table.snapshot().to_json()), parse_float=Decimal)
    text = frame("http://x", snapshot_from_json(doc), width=100)
    lines = text.splitlines()
    assert lines[0].startswith("dlms-top http://x  ")
    assert lines[2].split() == ["DEVICE", "SIGNAL", "OBIS", "VALUE", "UNIT", "STATUS", "ERROR"]
    assert lines[3].split() == ["a", "e", "1.0.1.8.0.255:2", "1234.56", "kWh", "ok"]
    assert "device b 127.0.0.1:4060: offline (connection refused)" in text


# -- end to end: a daemon subprocess reading dlms-sim --------------------------------

def _get(url: str, token: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


def _wait_all_ok(base: str, token: str | None, count: int, timeout: float = 20
                 ) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    doc: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            status, body = _get(base + "/api/v1/signals", token)
        except OSError:
            status, body = 0, b""
        if status == 200:
            doc = json.loads(body)
            if len(doc["signals"]) == count and all(s["status"] == "ok"
                                                    for s in doc["signals"]):
                return doc
        time.sleep(0.1)
    raise AssertionError(f"signals not all ok: {doc}")


def _comparable(doc: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [(s["signal_alias"], s["obis"], s["value"], s["raw"], s["unit"], s["status"])
            for s in doc["signals"]]


@pytest.mark.parametrize("token", [None, TOKEN])
def test_daemon_serves_what_once_prints(write_config: Writer, tmp_path: Path,
                                        token: str | None) -> None:
    with simulator("--wrapper-port", "0") as ports:
        device = tcp_device("m", port=ports["wrapper"], mode="DLMS-WRAPPER",
                            logical_address=1, scan_rate_ms=500)
        sigs = signals_for("m", CODES)
        code, once_doc, log = once(write_config(devices=[device], signals=sigs))
        assert code == 0, log
        port = free_port()
        http: dict[str, Any] = {"listen": f"127.0.0.1:{port}"}
        if token:
            http["token"] = token
        path = write_config({"devices": [device], "signals": sigs, "http": http})
        daemon = Daemon(path, tmp_path / "log")
        base = f"http://127.0.0.1:{port}"
        try:
            daemon.wait_for("http_listening")
            doc = _wait_all_ok(base, token, len(CODES))
            assert _comparable(doc) == _comparable(once_doc)
            assert {s["obis"]: s["value"] for s in doc["signals"]} == {
                c: EXPECTED[c][0] for c in CODES}
            if token:
                assert _get(base + "/api/v1/signals")[0] == 401
                assert _get(base + "/metrics", "wrong")[0] == 401
            status, body = _get(base + "/api/v1/devices", token)
            assert status == 200
            (dev,) = json.loads(body)["devices"]
            assert dev["status"] == "online" and dev["connects"] >= 1 and dev["scans"] >= 1
            assert dev["reads"] >= len(CODES) and dev["read_errors"] == 0
            status, body = _get(base + "/metrics", token)
            assert status == 200
            families = _families(body.decode())
            gauges = {s.labels["signal"]: s.value
                      for s in families["dlmsd_signal_value"].samples}
            numeric = {s["signal_alias"]: float(s["value"]) for s in once_doc["signals"]
                       if isinstance(s["value"], int | float)
                       and not isinstance(s["value"], bool)}
            assert gauges == numeric and len(numeric) == 5
            (up,) = families["dlmsd_device_up"].samples
            assert up.value == 1.0
            (count,) = [s for s in families["dlmsd_scan_duration_seconds"].samples
                        if s.name.endswith("_count")]
            assert count.value >= 1
            assert _get(base + "/healthz", token)[0] == 200
            env = {"DLMS_HTTP_TOKEN": token} if token else {}
            top = subprocess.run([sys.executable, "-c", "from dlmsd.top import main; main()",
                                  "--url", base, "--once"], capture_output=True, text=True,
                                 timeout=30, check=False, env={**_env(), **env})
            assert top.returncode == 0, top.stderr
            rows = {line.split()[1]: line.split()[3] for line in top.stdout.splitlines()
                    if line.startswith("m ")}
            assert rows == {s["signal_alias"]: str(s["value"]) for s in once_doc["signals"]}
            daemon.proc.send_signal(signals.SIGTERM)
            assert daemon.proc.wait(timeout=20) == 0
            log = daemon.log.read_text()
            assert "dlms_stopped" in log
            if token:
                assert token not in log
        finally:
            daemon.close()


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "DLMS_HTTP_TOKEN"}


def test_top_once_without_a_daemon_or_token(tmp_path: Path) -> None:
    port = free_port()
    top = subprocess.run([sys.executable, "-c", "from dlmsd.top import main; main()",
                          "--url", f"http://127.0.0.1:{port}", "--once"],
                         capture_output=True, text=True, timeout=30, check=False, env=_env())
    assert top.returncode == 2
    assert top.stderr.startswith(f"dlms-top: http://127.0.0.1:{port}: cannot connect")


def test_port_in_use_is_an_error_at_start(write_config: Writer, tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        path = write_config({"devices": [tcp_device(port=9, reconnect_time=200)],
                             "signals": [signal()],
                             "http": {"listen": f"127.0.0.1:{port}", "token": TOKEN}})
        result = subprocess.run([sys.executable, "-m", "dlmsd", "-c", str(path)],
                                capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 1
    assert f"http.listen 127.0.0.1:{port}: cannot listen" in result.stderr
    assert "address already in use" in result.stderr.lower()
    assert "Traceback" not in result.stderr and TOKEN not in result.stderr


def test_no_http_object_no_server(write_config: Writer, tmp_path: Path) -> None:
    """Without ``http`` the daemon does not even import aiohttp."""
    path = write_config(devices=[tcp_device(port=9, reconnect_time=200)], signals=[signal()])
    daemon = Daemon(path, tmp_path / "log")
    try:
        daemon.wait_for("dlms_starting")
        assert "http_listening" not in daemon.log.read_text()
    finally:
        daemon.close()
    code = ("import sys; from dlmsd.cli import main; "
            "assert 'aiohttp' not in sys.modules, 'aiohttp imported'")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_check_summary_shows_http_not_the_token(write_config: Writer) -> None:
    path = write_config({"devices": [tcp_device()], "signals": [signal()],
                         "http": {"listen": "[::1]:8080", "token": TOKEN}})
    result = subprocess.run([sys.executable, "-m", "dlmsd", "-c", str(path), "--check"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert "\nhttp: [::1]:8080, bearer token\n" in result.stdout
    assert TOKEN not in result.stdout + result.stderr


def _ipv6_port() -> int | None:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
            port: int = sock.getsockname()[1]
            return port
    except OSError:
        return None


async def test_listens_on_ipv6_loopback() -> None:
    port = _ipv6_port()
    if port is None:
        pytest.skip("no IPv6 loopback here")
    table, stats = _table()
    log = _Log()
    server = HttpServer(HttpConfig("::1", port, Secret(TOKEN)), table, lambda: stats, log)
    await server.start()
    try:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector) as session, session.get(
                f"http://[::1]:{port}/healthz", headers=headers) as answer:
            assert answer.status == 200
            assert (await answer.json())["status"] == "ok"
    finally:
        await server.stop()
        await asyncio.sleep(0.05)  # as _closed
    assert log.lines == [("http_listening", {"listen": f"[::1]:{port}", "token": True})]


def test_top_redraws_until_interrupted() -> None:
    """Live mode without a daemon: each frame clears the screen and says the API is not
    there; Ctrl-C (SIGINT) ends it with exit 0."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", "from dlmsd.top import main; main()",
                             "--url", f"http://127.0.0.1:{port}", "--interval", "0.2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
    seen = b""
    try:
        # until two frames are out (a loaded machine may take a while to import)
        assert proc.stdout is not None
        deadline = time.monotonic() + 30
        while seen.count(b"\x1b[H\x1b[2J") < 2 and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], 0.5)
            if ready:
                seen += os.read(proc.stdout.fileno(), 4096)
        proc.send_signal(signals.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    frames = (seen + out).decode().split("\x1b[H\x1b[2J")
    assert frames[0] == "" and len(frames) >= 3
    assert all("cannot connect" in f for f in frames[1:])


@pytest.mark.parametrize("kind", ["hdlc", "wrapper"])
async def test_resends_of_the_link_are_counted(tmp_path: Path, kind: str) -> None:
    """A lost answer (``dlms-sim --fault drop-reply:5``) makes the link send again, which
    the device's PollStats count (``dlmsd_resends_total``); a clean line sends nothing
    again. HDLC resends happen inside the link (its RR or the request again), wrapper
    resends are the request again."""
    from test_sim_fault import _device, faulty_sim

    from dlmsd.poller import Poller
    from dlmsd.session import make_session
    from dlmsd.trace import FrameTracer

    async def scan(port: int) -> PollStats:
        config = parse_config({"devices": [_device(kind, port, timeout_ms=500,
                                                   retry_counter=3)],
                               "signals": signals_for(kind, ["1.0.1.8.0.255"])})
        table = SignalTable.from_config(config)
        stats = PollStats()
        log = structlog.get_logger().bind(device=kind)
        poller = Poller(config.devices[0], list(config.signals), table, log,
                        FrameTracer(log, enabled=False), make_session, stats=stats)
        await poller.run(once=True)
        assert table.snapshot().signals[0].status.value == "ok"
        return stats

    with faulty_sim(tmp_path, f"--{kind}-port", "0", "--fault", "drop-reply:5") as (
            ports, _log, _proc):
        lossy = await scan(ports[kind])
    with faulty_sim(tmp_path, f"--{kind}-port", "0") as (ports, _log, _proc):
        clean = await scan(ports[kind])
    assert lossy.resends >= 1 and clean.resends == 0, (lossy, clean)
