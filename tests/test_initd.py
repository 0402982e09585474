"""init.d/dlms run in a temporary directory (paths from the environment)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import tcp_device

REPO = Path(__file__).resolve().parent.parent
Writer = Callable[..., Path]


@pytest.fixture
def service(tmp_path: Path,
            write_config: Writer) -> Iterator[Callable[..., subprocess.CompletedProcess[str]]]:
    wrapper = tmp_path / "dlms"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m dlmsd "$@"\n')
    wrapper.chmod(0o755)
    config = write_config(devices=[tcp_device(port=9, reconnect_time=500)])
    env = dict(os.environ,
               DLMS_BIN=str(wrapper), DLMS_CONFIG=str(config),
               DLMS_PIDFILE=str(tmp_path / "dlms.pid"), DLMS_LOGFILE=str(tmp_path / "dlms.log"),
               DLMS_DEBUG="6", DLMS_STOP_TIMEOUT="20")

    def call(action: str, **over: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["sh", str(REPO / "init.d/dlms"), action], env=dict(env, **over),
                              capture_output=True, text=True, timeout=60, check=False)

    yield call
    call("stop")


def test_start_status_stop(service: Callable[..., subprocess.CompletedProcess[str]],
                           tmp_path: Path) -> None:
    assert service("status").returncode == 3
    started = service("start")
    assert started.returncode == 0, started.stderr
    assert "started (pid" in started.stdout
    pid = int((tmp_path / "dlms.pid").read_text())
    assert "already running" in service("start").stdout
    status = service("status")
    assert status.returncode == 0 and f"running (pid {pid})" in status.stdout
    stopped = service("stop")
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert not (tmp_path / "dlms.pid").exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    log = (tmp_path / "dlms.log").read_text()
    assert "dlms_starting" in log and "dlms_stopped" in log  # a clean exit, not a kill


def test_restart_and_reload(service: Callable[..., subprocess.CompletedProcess[str]],
                            tmp_path: Path) -> None:
    assert service("start").returncode == 0
    first = int((tmp_path / "dlms.pid").read_text())
    assert service("reload").returncode == 0
    assert service("restart").returncode == 0
    second = int((tmp_path / "dlms.pid").read_text())
    assert first != second
    assert service("status").returncode == 0


def test_start_refuses_bad_config(service: Callable[..., subprocess.CompletedProcess[str]],
                                  tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"devices": [tcp_device(baudrate=5)], "signals": []}))
    result = service("start", DLMS_CONFIG=str(bad))
    assert result.returncode == 1
    assert "devices[0].baudrate: 5 is not allowed" in result.stderr
    assert "not started" in result.stderr
    assert not (tmp_path / "dlms.pid").exists()


def test_usage(service: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    result = service("bogus")
    assert result.returncode == 2 and "Usage:" in result.stderr


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_for(path: Path, text: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        content = path.read_text()
        if text in content:
            return content
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not in {path}:\n{path.read_text()}")


def test_restart_and_reload_refuse_a_bad_config(
        service: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path,
        write_config: Writer) -> None:
    """restart and reload check the file first: with errors they say so, exit 1, and the
    running daemon keeps running on its old configuration (never signalled)."""
    config = write_config(devices=[tcp_device(port=9, reconnect_time=500)])
    assert service("start", DLMS_CONFIG=str(config)).returncode == 0
    pid = int((tmp_path / "dlms.pid").read_text())
    log_path = tmp_path / "dlms.log"
    _wait_for(log_path, "dlms_starting")
    config.write_text(json.dumps({"devices": [tcp_device(port=9, timeout_ms=1)],
                                  "signals": []}))

    restarted = service("restart", DLMS_CONFIG=str(config))
    assert restarted.returncode == 1
    assert "devices[0].timeout_ms: 1 is not allowed" in restarted.stderr
    assert "not restarted" in restarted.stderr
    assert "stopped" not in restarted.stdout and "started" not in restarted.stdout
    assert _running(pid) and int((tmp_path / "dlms.pid").read_text()) == pid

    reloaded = service("reload", DLMS_CONFIG=str(config))
    assert reloaded.returncode == 1
    assert "reload requested" not in reloaded.stdout
    assert "devices[0].timeout_ms: 1 is not allowed" in reloaded.stderr
    assert "not reloaded" in reloaded.stderr
    assert _running(pid)

    status = service("status", DLMS_CONFIG=str(config))
    assert status.returncode == 0 and f"running (pid {pid})" in status.stdout
    log = log_path.read_text()
    # the daemon never heard of the bad file: no SIGHUP, no stop
    assert "reload_requested" not in log and "reload_rejected" not in log
    assert "dlms_stopping" not in log

    # fixed: reload reaches the daemon, restart replaces it
    config.write_text(json.dumps({"devices": [tcp_device("m9", port=9)], "signals": []}))
    reloaded = service("reload", DLMS_CONFIG=str(config))
    assert reloaded.returncode == 0 and "reload requested" in reloaded.stdout
    _wait_for(log_path, "reloaded")
    restarted = service("restart", DLMS_CONFIG=str(config))
    assert restarted.returncode == 0, restarted.stderr
    assert not _running(pid)
    assert int((tmp_path / "dlms.pid").read_text()) != pid


def test_reload_when_not_running(service: Callable[..., subprocess.CompletedProcess[str]]
                                 ) -> None:
    result = service("reload")
    assert result.returncode == 7 and "not running" in result.stdout


@pytest.mark.parametrize("level", ["0", "5"])
def test_debug_level_through_the_script(
        service: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path,
        level: str) -> None:
    """DLMS_DEBUG=5 (notice): the start and stop lines and errors, no info lines;
    DLMS_DEBUG=0: nothing in the log."""
    started = service("start", DLMS_DEBUG=level)
    assert started.returncode == 0, started.stderr + started.stdout
    pid = int((tmp_path / "dlms.pid").read_text())
    log_path = tmp_path / "dlms.log"
    if level == "5":
        _wait_for(log_path, "device_offline")
    else:
        time.sleep(1)  # the device on port 9 has failed by now (it would log an error)
    assert service("stop").returncode == 0
    assert not _running(pid)
    log = log_path.read_text()
    if level == "5":
        assert "[notice   ] dlms_starting" in log and "dlms_stopped" in log
        assert "[error    ] device_offline" in log
        assert "[info" not in log and "[debug" not in log
    else:
        assert log == ""


def test_bad_debug_level_refused(service: Callable[..., subprocess.CompletedProcess[str]],
                                 tmp_path: Path) -> None:
    result = service("start", DLMS_DEBUG="9")
    assert result.returncode == 1
    assert "9 is not in the range 0<=x<=7" in result.stderr
    assert not (tmp_path / "dlms.pid").exists()
