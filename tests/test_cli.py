"""The dlms command: options, exit codes, --check, --once --json, signals (SIGTERM, SIGHUP)."""

from __future__ import annotations

import json
import signal as signals
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import signal, tcp_device
from fakes import FakeMeter, factory_for

from dlmsd import __version__
from dlmsd import supervisor as supervisor_mod
from dlmsd.cli import main

REPO = Path(__file__).resolve().parent.parent
Writer = Callable[..., Path]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dlmsd", *args], capture_output=True,
                          text=True, timeout=60, check=False)


def test_version_and_help() -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["-V"])
    assert result.exit_code == 0 and result.output.strip() == f"dlms (dlmsd) {__version__}"
    result = runner.invoke(main, ["-h"])
    assert result.exit_code == 0
    for option in ("-c, --config", "-d, --debug", "--dlms", "-p, --port", "--check", "--once",
                   "--json", "--log-format", "-V, --version", "-h, --help"):
        assert option in result.output


def test_check_shipped_config() -> None:
    result = run("-c", str(REPO / "etc/dlms/dlms.json"), "--check")
    assert result.returncode == 0, result.stderr
    assert "sim_hdlc" in result.stdout
    # the serial-number addressed example meter shows its resolved address bytes
    assert "server=0x44EB (bytes 00 02 12 D7, logical 1, physical 1259)" in result.stdout
    assert "00000000" not in result.stdout + result.stderr  # its password


def test_check_bad_config_exit_2(write_config: Writer) -> None:
    path = write_config(devices=[tcp_device(timeout_ms=0)])
    result = run("-c", str(path), "--check")
    assert result.returncode == 2
    assert "devices[0].timeout_ms: 0 is not allowed: must be an integer from 100 to 600000" \
        in result.stderr
    assert "the protocol does not start" in result.stderr


def test_missing_config_exit_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["-c", str(tmp_path / "none.json")])
    assert result.exit_code == 2
    assert "configuration file not found" in result.output


@pytest.mark.parametrize(("args", "message"), [
    (["-d", "9"], "9 is not in the range 0<=x<=7"),
    (["--log-format", "xml"], "'xml' is not one of 'text', 'json'"),
    (["--json"], "--json goes with --once"),
    (["--check", "--once"], "exclude each other"),
    (["-p", "PORT7"], "'PORT7': no device uses this port (ports: 127.0.0.1:4059)"),
    (["--bogus"], "No such option '--bogus'"),
])
def test_bad_arguments_exit_2(write_config: Writer, args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["-c", str(write_config()), *args])
    assert result.exit_code == 2
    assert message in result.output


def test_warnings_printed(write_config: Writer) -> None:
    path = write_config(devices=[tcp_device(scan_rate=5)])
    result = CliRunner().invoke(main, ["-c", str(path), "--check"])
    assert result.exit_code == 0
    assert "warning: devices[0].scan_rate: unknown key, ignored (did you mean " in result.output


def test_check_warns_that_a_short_high_secret_is_padded(write_config: Writer) -> None:
    path = write_config(devices=[tcp_device(auth="High", password="Gurux")])
    result = run("-c", str(path), "--check")
    assert result.returncode == 0, result.stderr
    assert ("warning: devices[0].password: auth High (AES-128) takes a 16-byte secret; "
            "this one has 5 bytes and is padded with zero bytes to 16") in result.stderr
    assert "Gurux" not in result.stdout + result.stderr
    path = write_config(devices=[tcp_device(auth="High", password="Gurux-0123456789")])
    result = run("-c", str(path), "--check")
    assert result.returncode == 0 and "padded" not in result.stdout + result.stderr
    path = write_config(devices=[tcp_device(auth="High", password="Gurux-0123456789!")])
    result = run("-c", str(path), "--check")
    assert result.returncode == 2
    assert "a secret of at most 16 bytes, got 17" in result.stderr
    assert "Gurux" not in result.stdout + result.stderr


@pytest.fixture
def fake_meters(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, FakeMeter]]:
    meters: dict[str, FakeMeter] = {}
    monkeypatch.setattr(supervisor_mod, "make_session", factory_for(meters))
    yield meters


def test_once_json(write_config: Writer, fake_meters: dict[str, FakeMeter]) -> None:
    fake_meters["m1"] = FakeMeter({"s1": Decimal("1234.56")})
    path = write_config(devices=[tcp_device()], signals=[signal("s1"), signal("s2",
                                                                             enable=0)])
    result = CliRunner().invoke(main, ["-c", str(path), "--once", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["devices"][0]["status"] == "online"
    assert doc["devices"][0]["port"] == "127.0.0.1:4059"
    s1, s2 = doc["signals"]
    assert (s1["value"], s1["unit"], s1["status"], s1["obis"], s1["attribute"]) == (
        1234.56, "Wh", "ok", "1.0.1.8.0.255", 2)
    assert s2["status"] == "disabled"
    assert set(s1) >= {"device_alias", "signal_alias", "signal_name", "obis", "attribute",
                       "value", "raw", "unit", "status", "error", "timestamp"}
    assert set(doc["devices"][0]) >= {"device_alias", "port", "status", "error", "last_ok"}


def test_once_exit_1_when_a_signal_fails(write_config: Writer,
                                         fake_meters: dict[str, FakeMeter]) -> None:
    fake_meters["m1"] = FakeMeter({"s1": 1})
    path = write_config(signals=[signal("s1"), signal("s2", obis="0.0.96.1.0.255")])
    result = CliRunner().invoke(main, ["-c", str(path), "--once"])
    assert result.exit_code == 1
    assert "object-undefined" in result.stdout


def test_once_port_filter(write_config: Writer, fake_meters: dict[str, FakeMeter]) -> None:
    fake_meters.update(m1=FakeMeter({"a": 1}), m2=FakeMeter({"b": 2}))
    path = write_config(devices=[tcp_device("m1"), tcp_device("m2", port=4060)],
                        signals=[signal("a", "m1"), signal("b", "m2")])
    result = CliRunner().invoke(main, ["-c", str(path), "--once", "--json", "-p",
                                       "127.0.0.1:4060"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [s["signal_alias"] for s in doc["signals"]] == ["b"]


def test_debug_logging_and_port_filter(write_config: Writer,
                                       fake_meters: dict[str, FakeMeter]) -> None:
    fake_meters.update(m1=FakeMeter({"a": 1}), m2=FakeMeter({"b": 2}))
    path = write_config(devices=[tcp_device("m1"), tcp_device("m2", port=4060)],
                        signals=[signal("a", "m1"), signal("b", "m2")])
    result = CliRunner().invoke(main, ["-c", str(path), "--once", "-d7", "--dlms"])
    log = result.stderr
    assert "signal_update" in log and "device=m1" in log and "device=m2" in log
    assert "dlms_tx" in log and "7E A0 07 03 21 93 0F 01 7E" in log
    result = CliRunner().invoke(main, ["-c", str(path), "--once", "-d7", "--dlms", "-p",
                                       "127.0.0.1:4060", "--log-format", "json"])
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert lines and all(line.get("port", "127.0.0.1:4060") == "127.0.0.1:4060"
                         for line in lines)
    assert any(line["event"] == "signal_update" and line["signal"] == "b" for line in lines)


class Daemon:
    """``dlms`` in a subprocess, its log in a file that the test reads as it grows."""

    def __init__(self, path: Path, log: Path, *extra: str) -> None:
        self.log = log
        self._file = log.open("w")
        self.proc = subprocess.Popen([sys.executable, "-m", "dlmsd", "-c", str(path), "-d6",
                                      *extra], stdout=subprocess.DEVNULL, stderr=self._file)

    def wait_for(self, text: str, count: int = 1, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            content = self.log.read_text()
            if content.count(text) >= count:
                return content
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(f"{text!r} not seen; log:\n{self.log.read_text()}")

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self._file.close()


def _unused_port_config(write_config: Writer) -> Path:
    # Nothing listens on port 9 of localhost (discard): the device stays offline.
    return write_config(devices=[tcp_device(port=9, reconnect_time=200)])


def test_sigterm_exits_cleanly(write_config: Writer, tmp_path: Path) -> None:
    daemon = Daemon(_unused_port_config(write_config), tmp_path / "log")
    try:
        daemon.wait_for("dlms_starting")
        daemon.proc.send_signal(signals.SIGTERM)
        assert daemon.proc.wait(timeout=20) == 0
        assert "dlms_stopped" in daemon.log.read_text()
    finally:
        daemon.close()


def test_sighup_reloads_and_rejects_invalid(write_config: Writer, tmp_path: Path) -> None:
    path = _unused_port_config(write_config)
    daemon = Daemon(path, tmp_path / "log")
    try:
        daemon.wait_for("dlms_starting")
        path.write_text(json.dumps({"devices": [tcp_device(port=9, timeout_ms=1)],
                                    "signals": []}))
        daemon.proc.send_signal(signals.SIGHUP)
        log = daemon.wait_for("reload_rejected")
        assert "timeout_ms: 1 is not allowed" in log
        assert daemon.proc.poll() is None  # still running with the old configuration
        path.write_text(json.dumps({"devices": [tcp_device("m9", port=9)], "signals": []}))
        daemon.proc.send_signal(signals.SIGHUP)
        daemon.wait_for("reloaded")
        daemon.proc.send_signal(signals.SIGINT)
        assert daemon.proc.wait(timeout=20) == 0
    finally:
        daemon.close()


def test_check_lists_every_problem_once_and_the_warnings(write_config: Writer) -> None:
    path = write_config({"devices": [tcp_device(port="x", timeout_ms="fast",
                                                client_address="sixteen", timout=1)],
                         "signals": [signal()], "extra": 1})
    result = run("-c", str(path), "--check")
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines == [
        f"dlms: {path}: 3 problems in the configuration; the protocol does not start:",
        '  - devices[0].client_address: "sixteen" is not a hex number: write hex as a string '
        '("10", "0x10") or a decimal integer',
        '  - devices[0].port: "x" is not allowed: must be an integer',
        '  - devices[0].timeout_ms: "fast" is not allowed: must be an integer',
        "dlms: warning: devices[0].timout: unknown key, ignored (did you mean 'timeout_ms'?)",
        "dlms: warning: extra: unknown top-level key, ignored",
    ]


def test_invalid_json_is_said_once(write_config: Writer) -> None:
    path = write_config(text='{"devices": [')
    result = CliRunner().invoke(main, ["-c", str(path), "--check"])
    assert result.exit_code == 2
    assert result.output.count("invalid JSON at line 1 column 14") == 1, result.output
    assert result.output.strip() == (f"dlms: {path}: invalid JSON at line 1 column 14: "
                                     "Expecting value; the protocol does not start")


def serial_meter(alias: str, device: str) -> dict[str, object]:
    return tcp_device(alias, ip=None, port=None, device=device)


def test_check_prints_the_path_a_port_name_stands_for(write_config: Writer) -> None:
    path = write_config({"ports": {"PORT2": "/dev/ttyUSB3"},
                         "devices": [serial_meter("m1", "PORT1"), serial_meter("m2", "PORT2")],
                         "signals": [signal()]})
    result = CliRunner().invoke(main, ["-c", str(path), "--check"])
    assert result.exit_code == 0, result.output
    assert "  m1 (Meter m1) enabled: /dev/ttyS1 (PORT1) DLMS-HDLC" in result.output
    assert "  m2 (Meter m2) enabled: /dev/ttyUSB3 (PORT2) DLMS-HDLC" in result.output


@pytest.mark.parametrize("name", ["PORT1", "port1", "/dev/ttyS1", "ttyS1"])
def test_p_port_name_selects_its_device(write_config: Writer, name: str) -> None:
    path = write_config(devices=[serial_meter("m1", "PORT1")])
    result = CliRunner().invoke(main, ["-c", str(path), "-p", name, "--check"])
    assert result.exit_code == 0, result.output


def test_p_port_name_without_device(write_config: Writer) -> None:
    path = write_config(devices=[serial_meter("m1", "PORT1")])
    result = CliRunner().invoke(main, ["-c", str(path), "-p", "PORT2", "--check"])
    assert result.exit_code == 2
    assert "'PORT2' (/dev/ttyS2): no device uses this port (ports: /dev/ttyS1)" in result.output
