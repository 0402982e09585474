"""init.d/dlms run in a temporary directory (paths from the environment)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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
