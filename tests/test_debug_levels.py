"""Every ``-d`` level 0..7 of ``dlms`` and ``dlms-sim``: what each shows and what it hides.

Syslog levels: 0 emerg, 1 alert, 2 crit (all three: critical lines only), 3 err,
4 warning, 5 notice, 6 info, 7 debug; a level shows its own lines and the more severe.
"""

from __future__ import annotations

import io
import json
import re
import signal as signals
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import structlog
from click.testing import CliRunner
from conftest import signal, tcp_device
from fakes import FakeMeter, factory_for

from dlmsd import __version__
from dlmsd import supervisor as supervisor_mod
from dlmsd.cli import main
from dlmsd.errors import TransportError
from dlmsd.logsetup import NOTICE, SYSLOG_LEVELS, configure_logging, get_logger, notice
from dlmsd.sim.cli import main as sim_main

Writer = Callable[..., Path]
LEVELS = range(8)

# method -> the lowest -d level that shows its lines
METHODS = {"critical": 0, "error": 3, "exception": 3, "warning": 4, "notice": 5, "info": 6,
           "debug": 7}


@pytest.fixture
def reset_structlog() -> Iterator[None]:
    yield
    structlog.reset_defaults()


def _shown(log: str, events: dict[str, int], level: int) -> None:
    """Each event of ``events`` (event -> lowest level showing it) is in ``log`` exactly
    when ``level`` shows it."""
    for event, lowest in events.items():
        present = re.search(rf"\b{event}\b", log) is not None
        assert present == (level >= lowest), (
            f"-d{level}: {event} {'hidden' if present else 'shown'} unexpectedly; log:\n{log}")


@pytest.mark.parametrize("level", LEVELS)
def test_each_level_shows_its_methods(level: int, reset_structlog: None) -> None:
    stream = io.StringIO()
    configure_logging(level, "json", stream=stream)
    log = get_logger(device="m1")
    for method in METHODS:
        if method == "notice":
            notice(log, "line_notice")
        else:
            getattr(log, method)(f"line_{method}")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["event"] for line in lines] == [
        f"line_{method}" for method, lowest in METHODS.items() if level >= lowest]
    names = {line["event"]: line["level"] for line in lines}
    if level >= 5:
        assert names["line_notice"] == "notice"
    assert all(line["device"] == "m1" for line in lines)


def test_level_table() -> None:
    """Notice sits between warning and info; emerg, alert and crit all show critical."""
    assert SYSLOG_LEVELS == {0: 50, 1: 50, 2: 50, 3: 40, 4: 30, 5: NOTICE, 6: 20, 7: 10}
    assert 20 < NOTICE < 30


def test_notice_without_configured_logging(reset_structlog: None) -> None:
    """A logger structlog made by default (no notice method) takes a notice as info."""
    structlog.reset_defaults()
    with structlog.testing.capture_logs() as captured:
        notice(get_logger(), "plain")
    assert captured == [{"event": "plain", "log_level": "info"}]


# ----------------------------------------------------------------------- dlms --once
ONCE_EVENTS = {"device_offline": 3, "flight_recorder": 4, "signal_error": 4,
               "signal_update": 6, "connecting": 7}


@pytest.mark.parametrize("level", LEVELS)
def test_dlms_once_each_level(level: int, write_config: Writer,
                              monkeypatch: pytest.MonkeyPatch,
                              reset_structlog: None) -> None:
    """m1 cannot be reached (an error), m2 answers one signal (info) and refuses the
    other (a warning); connecting is debug."""
    meters = {"m1": FakeMeter(open_error=lambda: TransportError("refused")),
              "m2": FakeMeter({"a": Decimal("1.5")})}  # b: object-undefined
    monkeypatch.setattr(supervisor_mod, "make_session", factory_for(meters))
    path = write_config(devices=[tcp_device("m1"), tcp_device("m2", port=4060)],
                        signals=[signal("x", "m1"), signal("a", "m2"),
                                 signal("b", "m2", obis="0.0.96.1.0.255")])
    result = CliRunner().invoke(main, ["-c", str(path), "--once", f"-d{level}"])
    assert result.exit_code == 1, result.output  # x and b are not ok
    assert "device m1 127.0.0.1:4059: offline (refused)" in result.stdout
    if level <= 2:
        assert result.stderr == ""
    _shown(result.stderr, ONCE_EVENTS, level)


# --------------------------------------------------------------------- the daemon
DAEMON_EVENTS = {"device_offline": 3, "flight_recorder": 4, "dlms_starting": 5, "dlms_stopping": 5,
                 "dlms_stopped": 5, "reconnect_wait": 6, "connecting": 7}


@pytest.mark.parametrize("level", LEVELS)
def test_dlms_daemon_each_level(level: int, write_config: Writer, tmp_path: Path) -> None:
    """The daemon against a port that accepts and hangs up: after the second connection
    the first round (connecting, offline, waiting) is logged; then SIGTERM."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(30)
        port = server.getsockname()[1]
        path = write_config(devices=[tcp_device(port=port, reconnect_time=100,
                                                timeout_ms=2000)])
        log_path = tmp_path / "log"
        with log_path.open("w") as log_file:
            proc = subprocess.Popen([sys.executable, "-m", "dlmsd", "-c", str(path),
                                     f"-d{level}"], stdout=subprocess.DEVNULL,
                                    stderr=log_file)
            try:
                for _ in range(2):
                    conn, _addr = server.accept()
                    conn.close()
                proc.send_signal(signals.SIGTERM)
                assert proc.wait(timeout=30) == 0
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
    log = log_path.read_text()
    if level <= 2:
        assert log == ""
    _shown(log, DAEMON_EVENTS, level)


# ----------------------------------------------------------------------- dlms-sim
SIM_EVENTS = {"stream_broken": 4, "stopping": 5, "client_connected": 6, "apdu": 7}
AARQ = bytes.fromhex("601DA109060760857405080101BE10040E01000000065F1F0400007E1F04B0")


def _wrapper(apdu: bytes, version: int = 1) -> bytes:
    return (version.to_bytes(2, "big") + bytes.fromhex("00100001")
            + len(apdu).to_bytes(2, "big") + apdu)


@pytest.mark.parametrize("level", LEVELS)
def test_dlms_sim_each_level(level: int, tmp_path: Path) -> None:
    """One association (AARQ, AARE: debug; the connection: info), one stream out of
    step (a warning), then SIGTERM (stopping: notice)."""
    log_path = tmp_path / "sim.log"
    with log_path.open("w") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-c", "from dlmsd.sim.cli import main; main()",
             "--wrapper-port", "0", f"-d{level}"],
            stdout=subprocess.PIPE, stderr=log_file, text=True)
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            match = re.search(r"wrapper=[\d.]+:(\d+)", line)
            assert match, line
            port = int(match.group(1))
            with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
                conn.sendall(_wrapper(AARQ))
                assert conn.recv(4096)[8:9] == b"\x61"  # the AARE
            with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
                conn.sendall(_wrapper(b"\x00", version=2))
                assert conn.recv(4096) == b""  # the simulator hung up
            proc.send_signal(signals.SIGTERM)
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
    log = log_path.read_text()
    if level <= 2:
        assert log == ""
    _shown(log, SIM_EVENTS, level)


# -------------------------------------------------------------------- help texts
LEVEL_NAMES = ("0 emerg", "1 alert", "2 crit", "3 err", "4 warning", "5 notice", "6 info",
               "7 debug")


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_dlms_help_lists_levels_sighup_and_state_dir() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    text = _flat(result.output)
    for name in LEVEL_NAMES:
        assert name in text
    assert "[default: 5;" in text
    assert "SIGHUP reloads the configuration" in text
    assert "state_dir" in text and "$DLMS_STATE_DIR" in text and "/var/lib/dlmsd" in text


def test_dlms_sim_help_and_version() -> None:
    runner = CliRunner()
    result = runner.invoke(sim_main, ["--help"])
    assert result.exit_code == 0
    text = _flat(result.output)
    for name in LEVEL_NAMES:
        assert name in text
    assert "-V, --version" in text
    for option in ("-V", "--version"):
        result = runner.invoke(sim_main, [option])
        assert result.exit_code == 0
        assert result.output == f"dlms-sim (dlmsd) {__version__}\n"
