"""End to end over a pty: `dlms --once --json` (a real subprocess) reads `dlms-sim --pty`
(another one), plain HDLC, after the IEC 62056-21 mode E opening, and three meters on
one line.  The pure line (dlmsd.sim.line) is checked against the daemon's own mode E
client in tests/test_sim_line.py."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import serial_device as conftest_serial_device
from test_e2e_sim import EXPECTED, check_values, once, signals_for, sim_process

from dlmsd.sim.serve_serial import PtyPort

Writer = Callable[..., Path]
CODES = ["1.0.1.8.0.255", "1.0.32.7.0.255", "0.0.96.1.1.255", "0.128.128.0.15.255"]


@contextmanager
def sim_pty(*args: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    with sim_process("--pty", "-d6", *args, stderr=subprocess.PIPE) as (line, proc):
        match = re.search(r"serial=(\S+)", line)
        assert match, f"simulator did not start: {line!r}"
        yield match.group(1), proc


def serial_device(alias: str, path: str, physical: int, **over: object) -> dict[str, object]:
    return conftest_serial_device(alias, path, physical, **{
        "timeout_ms": 2000, "scan_rate_ms": 1000, "reconnect_time": 500, **over})


@pytest.mark.parametrize("mode_e", [False, True], ids=["hdlc", "mode-e"])
def test_daemon_reads_the_simulator_on_a_pty(write_config: Writer, mode_e: bool) -> None:
    extra = ("--mode-e",) if mode_e else ()
    with sim_pty("--physical", "17", *extra) as (path, proc):
        over = {"mode": "IEC"} if mode_e else {}
        config = write_config(devices=[serial_device("m", path, 17, **over)],
                              signals=signals_for("m", CODES))
        code, doc, err = once(config, "-d7")
        proc.terminate()
        _out, sim_log = proc.communicate(timeout=10)
    assert code == 0, err
    check_values(doc, CODES)
    if mode_e:
        # the daemon saw the simulator's identification and switched; the simulator
        # switched too, and went back to the opening when the link was released
        assert "iec_identified" in err and "SIM" in err and "iec_switched" in err
        assert "iec_switched" in sim_log and "iec_back_to_opening" in sim_log
    else:
        assert "iec_" not in err


def test_three_meters_on_one_simulated_line(write_config: Writer) -> None:
    with sim_pty("--physical", "17", "--physical", "18", "--physical", "19") as (path, _proc):
        devices = [serial_device(f"m{p}", path, p) for p in (17, 18, 19)]
        signals = [s for p in (17, 18, 19) for s in signals_for(f"m{p}", CODES[:2])]
        config = write_config(devices=devices, signals=signals)
        code, doc, err = once(config)
    assert code == 0, err
    assert {d["device_alias"]: d["status"] for d in doc["devices"]} == {
        "m17": "online", "m18": "online", "m19": "online"}
    got = {(s["device_alias"], s["obis"]): s["value"] for s in doc["signals"]}
    assert got == {(f"m{p}", c): EXPECTED[c][0] for p in (17, 18, 19) for c in CODES[:2]}


def test_address_nobody_has_goes_unanswered(write_config: Writer) -> None:
    with sim_pty("--physical", "17") as (path, _proc):
        config = write_config(devices=[serial_device("m", path, 99, timeout_ms=300)],
                              signals=signals_for("m", CODES[:1]))
        code, doc, _err = once(config)
    assert code == 1
    assert doc["devices"][0]["status"] == "offline"
    assert "no answer" in doc["devices"][0]["error"]


@pytest.mark.parametrize(("args", "message"), [
    (["--pty", "--serial", "/dev/null"], "not both"),
    (["--hdlc-port", "0", "--physical", "1", "--physical", "2"], "serial line"),
    (["--pty", "--physical", "3", "--physical", "3"], "given twice"),
    (["--hdlc-port", "0", "--mode-e"], "--mode-e needs a serial line"),
    (["--pty", "--mode-e", "--manufacturer", "AB"], "three letters"),
    (["--pty", "--baudrate", "115200"], "115200"),
    (["--serial", "/dev/null", "--pace"], "--pace needs --pty"),
])
def test_serial_command_line_errors(args: list[str], message: str) -> None:
    result = subprocess.run([sys.executable, "-c", "from dlmsd.sim.cli import main; main()",
                             *args], capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2
    assert message in result.stderr


def test_serial_port_that_cannot_be_opened(tmp_path: Path) -> None:
    missing = tmp_path / "ttyNONE"
    result = subprocess.run([sys.executable, "-c", "from dlmsd.sim.cli import main; main()",
                             "--serial", str(missing)], capture_output=True, text=True,
                            timeout=30, check=False)
    assert result.returncode == 1
    assert "cannot open the serial line" in result.stderr and str(missing) in result.stderr


def test_segmented_hdlc_and_blocks_over_a_pty(write_config: Writer) -> None:
    """HDLC over serial exactly as over TCP: 32-octet information fields negotiated
    down from the daemon's SNRM (segmentation) and a 128-octet PDU limit (GET blocks),
    every object of the model."""
    codes = list(EXPECTED)
    with sim_pty("--physical", "17", "--max-info", "32", "--max-pdu", "128") as (path, _p):
        config = write_config(devices=[serial_device("m", path, 17)],
                              signals=signals_for("m", codes))
        code, doc, err = once(config)
    assert code == 0, err
    check_values(doc, codes)


def test_port_filter_shows_one_bus_only(write_config: Writer) -> None:
    with sim_pty("--physical", "17") as (one, _p1), sim_pty("--physical", "18") as (two, _p2):
        config = write_config(
            devices=[serial_device("a", one, 17), serial_device("b", two, 18)],
            signals=signals_for("a", CODES[:1]) + signals_for("b", CODES[:1]))
        code, doc, err = once(config, "-d7", "--dlms", "-p", one)
    assert code == 0, err
    # the output (log and JSON) is that port's only
    assert [(d["device_alias"], d["status"]) for d in doc["devices"]] == [("a", "online")]
    assert f"port={one}" in err and "dlms_tx" in err
    assert two not in err and "device=b" not in err


async def test_pty_pace_follows_the_line_settings() -> None:
    port = PtyPort(pace=True)
    try:
        assert port.wire_time(96) == pytest.approx(0.1)  # 9600 Bd 8N1: 10 bits
        await port.reconfigure(300, 7, "E", 1)  # the mode E opening: 7E1 is 10 bits too
        assert port.wire_time(6) == pytest.approx(0.2)
        await port.reconfigure(9600, 8, "E", 2)  # 12 bits
        assert port.wire_time(800) == pytest.approx(1.0)
    finally:
        await port.close()
