"""systemd/dlmsd.service and systemd/dlms.logrotate (issue 13): the unit checks the
configuration before start and reload as init.d/dlms does, with the same options as
its ExecStart; ``systemd-analyze verify`` accepts it where systemd is installed."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import tcp_device

REPO = Path(__file__).resolve().parent.parent
UNIT = REPO / "systemd" / "dlmsd.service"
Writer = Callable[..., Path]


def _service() -> dict[str, list[str]]:
    keys: dict[str, list[str]] = {}
    section = ""
    for line in UNIT.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        keys.setdefault(f"{section}.{key}", []).append(value)
    return keys


def _expand(command: str, env: dict[str, str]) -> list[str]:
    return [re.sub(r"\$\{(\w+)\}", lambda m: env[m.group(1)], word)
            for word in shlex.split(command)]


def _defaults() -> dict[str, str]:
    (assignments,) = _service()["Service.Environment"]
    return dict(word.split("=", 1) for word in shlex.split(assignments))


def test_check_before_start_and_reload_with_the_start_options() -> None:
    keys = _service()
    (pre,) = keys["Service.ExecStartPre"]
    (start,) = keys["Service.ExecStart"]
    reload = keys["Service.ExecReload"]
    assert pre == f"{start} --check"
    assert reload[0] == pre and reload[1] == "/bin/kill -HUP $MAINPID"
    assert _defaults() == {"DLMS_CONFIG": "/etc/dlms/dlms.json", "DLMS_DEBUG": "5"}
    assert keys["Service.RestartPreventExitStatus"] == ["2"]  # a configuration error
    assert keys["Service.StateDirectory"] == ["dlmsd"]  # config.DEFAULT_STATE_DIR's


@pytest.mark.parametrize("good", [True, False])
def test_the_check_command_runs(write_config: Writer, good: bool) -> None:
    (pre,) = _service()["Service.ExecStartPre"]
    config = write_config(devices=[tcp_device(port=9 if good else 0)])
    argv = _expand(pre, {**_defaults(), "DLMS_CONFIG": str(config)})
    assert argv[0] == "/usr/local/bin/dlms"
    result = subprocess.run([sys.executable, "-m", "dlmsd", *argv[1:]], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == (0 if good else 2), result.stderr
    assert ("OK, 1 device(s)" in result.stdout) is good


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd here")
def test_systemd_analyze_verify(tmp_path: Path) -> None:
    wrapper = tmp_path / "dlms"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m dlmsd "$@"\n')
    wrapper.chmod(0o755)
    unit = tmp_path / "dlmsd.service"
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/dlms", str(wrapper)))
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                            text=True, timeout=60, check=False,
                            env={**os.environ, "SYSTEMD_LOG_LEVEL": "warning"})
    problems = [line for line in (result.stdout + result.stderr).splitlines()
                if "dlmsd.service" in line]
    assert result.returncode == 0 and not problems, result.stdout + result.stderr


def test_logrotate_snippet_names_the_init_d_log() -> None:
    text = (REPO / "systemd" / "dlms.logrotate").read_text()
    initd = (REPO / "init.d" / "dlms").read_text()
    default = re.search(r"DLMS_LOGFILE=\$\{DLMS_LOGFILE:-([^}]+)\}", initd)
    assert default is not None
    assert f"{default.group(1)} {{" in text
    assert "copytruncate" in text  # the daemon keeps its stderr open: no reopen
