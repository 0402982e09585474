"""``--log-format json``: every stderr line is JSON; timestamps carry their offset;
``-p`` naming a port whose devices are all disabled says so (issue 12)."""

from __future__ import annotations

import io
import json
import logging
import re
import signal as signals
import warnings
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import signal, tcp_device
from test_cli import Daemon, run

from dlmsd import cli as cli_mod
from dlmsd.cli import main
from dlmsd.logsetup import configure_logging, get_logger, json_line
from dlmsd.secret import Secret

Writer = Callable[..., Path]
ISO_WITH_OFFSET = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d")


def _json_lines(text: str) -> list[dict[str, Any]]:
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines
    docs = []
    for line in lines:
        doc = json.loads(line)  # every line, or this raises
        assert isinstance(doc, dict), line
        assert ISO_WITH_OFFSET.fullmatch(doc["timestamp"]), doc
        assert doc["level"] and doc["event"], doc
        docs.append(doc)
    return docs


def test_daemon_stderr_is_all_json(write_config: Writer, tmp_path: Path) -> None:
    """Start (with a configuration warning), a device offline, SIGTERM: all JSON."""
    path = write_config(devices=[tcp_device(port=9, reconnect_time=200, scan_rate=5)])
    daemon = Daemon(path, tmp_path / "log", "--log-format", "json")
    try:
        daemon.wait_for("dlms_starting")
        daemon.wait_for("127.0.0.1:9")
        daemon.proc.send_signal(signals.SIGTERM)
        assert daemon.proc.wait(timeout=20) == 0
    finally:
        daemon.close()
    docs = _json_lines(daemon.log.read_text())
    events = [d["event"] for d in docs]
    assert events[0] == "config_warning" and "scan_rate" in docs[0]["warning"]
    assert "dlms_starting" in events and events[-1] == "dlms_stopped"
    # the timestamp is now, in this machine's zone
    stamp = datetime.fromisoformat(docs[-1]["timestamp"])
    assert stamp.utcoffset() == datetime.now().astimezone().utcoffset()


def test_config_errors_are_json(write_config: Writer) -> None:
    path = write_config(devices=[tcp_device(timeout_ms=0, client_address="sixteen")])
    result = run("-c", str(path), "--log-format", "json")
    assert result.returncode == 2
    (doc,) = _json_lines(result.stderr)
    assert doc["event"] == "config_error" and doc["level"] == "error"
    assert any("timeout_ms" in p for p in doc["problems"])
    result = run("-c", str(path.parent / "missing.json"), "--log-format", "json")
    assert result.returncode == 2
    assert "not found" in _json_lines(result.stderr)[0]["error"]


def test_text_lines_carry_the_offset() -> None:
    stream = io.StringIO()
    configure_logging(7, "text", stream=stream)
    get_logger().info("hello", x=1)
    line = stream.getvalue()
    assert ISO_WITH_OFFSET.match(line), line
    assert "hello" in line and "x=1" in line


def test_stdlib_logging_and_warnings_go_through_structlog() -> None:
    stream = io.StringIO()
    configure_logging(7, "json", stream=stream)
    logging.getLogger("asyncio").error("Task exception was never retrieved")
    logging.getLogger("somelib").debug("detail %d", 5)
    docs = _json_lines(stream.getvalue())
    assert [(d["event"], d["level"], d["logger"]) for d in docs] == [
        ("Task exception was never retrieved", "error", "asyncio"),
        ("detail 5", "debug", "somelib"),
    ]
    # filtered by -d like the daemon's own lines
    stream = io.StringIO()
    configure_logging(4, "json", stream=stream)
    logging.getLogger("somelib").info("not shown")
    logging.getLogger("somelib").warning("shown")
    assert [d["event"] for d in _json_lines(stream.getvalue())] == ["shown"]


def test_json_line_masks_secrets() -> None:
    secret = Secret("S3cr3t-in-a-message")
    line = json_line("error", "config_error", error=f"bad {secret.reveal().decode()}")
    assert "S3cr3t-in-a-message" not in line
    assert json.loads(line)["event"] == "config_error"


def test_a_crash_is_one_json_line(write_config: Writer, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    async def boom(*args: Any) -> Any:
        raise RuntimeError("unexpected")

    monkeypatch.setattr(cli_mod, "_run_once", boom)
    stream = io.StringIO()
    real = cli_mod.configure_logging
    monkeypatch.setattr(cli_mod, "configure_logging",
                        lambda *a: real(*a, stream=stream))
    with pytest.raises(SystemExit) as exit_info, warnings.catch_warnings():
        main.main(["-c", str(write_config()), "--once", "--log-format", "json"],
                  standalone_mode=False)
    assert exit_info.value.code == 1
    (doc,) = _json_lines(stream.getvalue())
    assert doc["event"] == "dlms_failed" and doc["level"] == "critical"
    assert "RuntimeError: unexpected" in doc["exception"]


def test_interrupted_once(write_config: Writer, monkeypatch: pytest.MonkeyPatch) -> None:
    async def interrupted(*args: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_mod, "_run_once", interrupted)
    stream = io.StringIO()
    real = cli_mod.configure_logging
    monkeypatch.setattr(cli_mod, "configure_logging", lambda *a: real(*a, stream=stream))
    with pytest.raises(SystemExit) as exit_info, warnings.catch_warnings():
        main.main(["-c", str(write_config()), "--once", "--log-format", "json"],
                  standalone_mode=False)
    assert exit_info.value.code == 130
    assert [d["event"] for d in _json_lines(stream.getvalue())] == ["dlms_interrupted"]


# ------------------------------------------------------------------ -p, all disabled
@pytest.mark.parametrize("log_format", ["text", "json"])
def test_port_with_only_disabled_devices_says_so(write_config: Writer,
                                                 log_format: str) -> None:
    path = write_config(devices=[tcp_device("m1", enable=0),
                                 tcp_device("m2", enable=0),
                                 tcp_device("m3", port=4060)],
                        signals=[signal("s1", "m1")])
    result = CliRunner().invoke(main, ["-c", str(path), "--check", "-p", "127.0.0.1:4059",
                                       "--log-format", log_format])
    assert result.exit_code == 0, result.output
    message = ("-p 127.0.0.1:4059: every device on this port is disabled (m1, m2): nothing "
               "on it is read, so nothing is shown for it")
    if log_format == "text":
        assert f"dlms: warning: {message}" in result.stderr
    else:
        (doc,) = _json_lines(result.stderr)
        assert (doc["event"], doc["warning"]) == ("port_disabled", message)
    # a port with an enabled device: no such message
    result = CliRunner().invoke(main, ["-c", str(path), "--check", "-p", "127.0.0.1:4060"])
    assert result.exit_code == 0 and "disabled (" not in result.stderr
