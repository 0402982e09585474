"""scripts/install-gateway: the package, the sample configuration, the init script, the
systemd unit, the logrotate snippet and the state directory where a gateway expects
them, staged under DESTDIR (a temporary directory) so that the test needs no root."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts/install-gateway"


def install(destdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DESTDIR": str(destdir)}
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, env=env,
                          timeout=300, check=False)


@pytest.mark.slow
def test_install_puts_every_file_in_place(tmp_path: Path) -> None:
    dest = tmp_path / "root"
    result = install(dest, "--prefix", "/opt/dlmsd")
    assert result.returncode == 0, result.stdout + result.stderr
    venv = dest / "opt/dlmsd"
    # the package in its venv, with the files a packager takes from the wheel
    assert sorted(p.name for p in (venv / "share/dlmsd").iterdir()) == [
        "dlms", "dlms.json", "dlms.logrotate", "dlmsd.service"]
    for cmd in ("dlms", "dlms-sim", "dlms-top"):
        link = dest / "usr/local/bin" / cmd
        assert os.readlink(link) == f"/opt/dlmsd/bin/{cmd}"
        assert (venv / "bin" / cmd).is_file()
    config = dest / "etc/dlms/dlms.json"
    assert config.read_text() == (ROOT / "etc/dlms/dlms.json").read_text()
    check = subprocess.run([str(venv / "bin/dlms"), "-c", str(config), "--check"],
                           capture_output=True, text=True, timeout=60, check=False)
    assert check.returncode == 0 and "OK, 3 device(s)" in check.stdout, check.stderr
    # the init script and the unit call the installed dlms
    initd = dest / "etc/init.d/dlms"
    assert stat.S_IMODE(initd.stat().st_mode) == 0o755
    assert "DLMS_BIN=${DLMS_BIN:-/opt/dlmsd/bin/dlms}" in initd.read_text()
    unit = (dest / "etc/systemd/system/dlmsd.service").read_text()
    assert "ExecStart=/opt/dlmsd/bin/dlms -c ${DLMS_CONFIG}" in unit
    assert "/usr/local/bin/dlms " not in unit
    status = subprocess.run(
        [str(initd), "status"], capture_output=True, text=True, timeout=30, check=False,
        env={**os.environ, "DLMS_PIDFILE": str(tmp_path / "dlms.pid")})
    assert "dlms: not running" in status.stdout
    assert (dest / "etc/logrotate.d/dlms").read_text() == (
        ROOT / "systemd/dlms.logrotate").read_text()
    assert (dest / "usr/share/doc/dlmsd/README.md").is_file()
    assert stat.S_IMODE((dest / "var/lib/dlmsd").stat().st_mode) == 0o700
    # again: the operator's configuration stays, the sample goes beside it
    config.write_text('{"devices": [], "signals": []}')
    again = install(dest, "--prefix", "/opt/dlmsd", "--no-venv")
    assert again.returncode == 0, again.stderr
    assert "kept the existing /etc/dlms/dlms.json" in again.stdout
    assert config.read_text() == '{"devices": [], "signals": []}'
    assert (dest / "etc/dlms/dlms.json.sample").read_text() == (
        ROOT / "etc/dlms/dlms.json").read_text()


def test_dry_run_changes_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "root"
    result = install(dest, "--dry-run", "--prefix=/srv/dlmsd")
    assert result.returncode == 0, result.stderr
    assert not dest.exists()
    assert "+ install -m 0755 init.d/dlms " + str(dest) + "/etc/init.d/dlms" in result.stdout
    assert f"+ ln -sf /srv/dlmsd/bin/dlms {dest}/usr/local/bin/dlms" in result.stdout
    assert "-m venv " + str(dest) + "/srv/dlmsd" in result.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["--prefix"], "--prefix needs a directory"),
    (["--prefix", "opt/dlmsd"], "--prefix must be an absolute path, not 'opt/dlmsd'"),
    (["--nope"], "unknown option '--nope'"),
])
def test_bad_options(tmp_path: Path, args: list[str], message: str) -> None:
    result = install(tmp_path / "root", *args)
    assert result.returncode == 2 and message in result.stderr
    assert not (tmp_path / "root").exists()


def test_help_names_every_option(tmp_path: Path) -> None:
    result = install(tmp_path, "--help")
    assert result.returncode == 0
    for option in ("--prefix DIR", "--no-venv", "--dry-run", "DESTDIR=", "PYTHON="):
        assert option in result.stdout
