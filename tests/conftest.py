"""Shared fixtures: configuration builders and the lingering-task guard."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(autouse=True)
async def verify_no_lingering_tasks() -> AsyncIterator[None]:
    """Fail a test that leaves a task behind (model: aioesphomeapi's conftest)."""
    before = asyncio.all_tasks()
    yield
    current = asyncio.current_task()
    leftover = [t for t in asyncio.all_tasks() - before if t is not current and not t.done()]
    for task in leftover:
        task.cancel()
    if leftover:
        await asyncio.gather(*leftover, return_exceptions=True)
        pytest.fail(f"test left tasks behind: {[t.get_name() for t in leftover]}")


@pytest.fixture(autouse=True)
def private_state_dir(tmp_path_factory: pytest.TempPathFactory,
                      monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test (and every daemon it starts) keeps its state (invocation counters,
    profile positions, the MQTT spool) in a directory of its own, never in the default
    /var/lib/dlmsd of the machine, where one test's state would change another's run.
    A test of the configuration's ``state_dir`` removes DLMS_STATE_DIR itself."""
    path = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("DLMS_STATE_DIR", str(path))
    return path


def tcp_device(alias: str = "m1", **over: Any) -> dict[str, Any]:
    dev: dict[str, Any] = {
        "name": f"Meter {alias}",
        "device_alias": alias,
        "protocol": "DLMS",
        "client_address": 16,
        "ip": "127.0.0.1",
        "port": 4059,
    }
    dev.update(over)
    return {k: v for k, v in dev.items() if v is not None}


def serial_device(alias: str, path: str, physical: int, **over: Any) -> dict[str, Any]:
    """A meter on the serial line ``path`` at HDLC address 1/``physical`` (2 octets)."""
    dev: dict[str, Any] = {
        "name": alias, "device_alias": alias, "protocol": "DLMS", "client_address": 16,
        "device": path, "baudrate": 9600, "address_size": 2, "logical_address": 1,
        "physical_address": physical, "timeout_ms": 1000, "retry_counter": 1,
        "scan_rate_ms": 200, "reconnect_time": 200,
    }
    dev.update(over)
    return dev


def signal(alias: str = "s1", device: str = "m1", obis: str = "1.0.1.8.0.255",
           **over: Any) -> dict[str, Any]:
    sig: dict[str, Any] = {
        "signal_name": f"Signal {alias}",
        "device_alias": device,
        "signal_alias": alias,
        "obis": obis,
    }
    sig.update(over)
    return {k: v for k, v in sig.items() if v is not None}


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Path]:
    """Write a configuration document (or raw text) to a file and return its path."""
    counter = iter(range(1000))

    def write(doc: Any = None, *, devices: list[Any] | None = None,
              signals: list[Any] | None = None, text: str | None = None) -> Path:
        path = tmp_path / f"dlms{next(counter)}.json"
        if text is None:
            if doc is None:
                doc = {"devices": devices if devices is not None else [tcp_device()],
                       "signals": signals if signals is not None else [signal()]}
            text = json.dumps(doc, indent=2)
        path.write_text(text, encoding="utf-8")
        return path

    return write


# -- MQTT: a private mosquitto broker per test (issue 13) ----------------------------


class Mosquitto:
    """A mosquitto broker of the test's own on a free loopback port (never the system
    service): ``extra`` lines go into its mosquitto.conf (TLS, password file)."""

    exe = "mosquitto"

    def __init__(self, workdir: Path, extra: list[str], persistence: bool) -> None:
        import socket

        self.workdir = workdir
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        import getpass

        # as root, mosquitto would drop to the user "mosquitto", who cannot read tmp_path
        lines = [f"listener {self.port} 127.0.0.1", f"user {getpass.getuser()}", *extra]
        if not any(line.startswith("password_file") for line in extra):
            lines.append("allow_anonymous true")
        if persistence:
            lines += ["persistence true", f"persistence_location {workdir}/"]
        else:
            lines.append("persistence false")
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self.log = workdir / "mosquitto.log"
        self.proc: Any = None

    def start(self) -> None:
        import socket
        import subprocess
        import time

        assert self.proc is None
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([self.exe, "-c", str(self.conf)],
                                         stdout=log, stderr=log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.log.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not listen on {self.port}")

    def stop(self) -> None:
        import subprocess

        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


@pytest.fixture
def mosquitto(tmp_path: Path) -> Any:
    """``mosquitto(extra=[...], persistence=False, start=True)`` -> a running
    :class:`Mosquitto`; every broker made is stopped after the test."""
    import shutil

    exe = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/sbin")
    if exe is None:
        pytest.skip("mosquitto is not installed (scripts/test installs it)")
    Mosquitto.exe = exe
    made: list[Mosquitto] = []

    def make(extra: list[str] | None = None, persistence: bool = False,
             start: bool = True) -> Mosquitto:
        workdir = tmp_path / f"broker{len(made)}"
        workdir.mkdir()
        broker = Mosquitto(workdir, extra or [], persistence)
        made.append(broker)
        if start:
            broker.start()
        return broker

    yield make
    for broker in made:
        broker.stop()
