"""End to end: `dlms --once --json` (a real subprocess) against `dlms-sim` (another one).

Expected values are the model's own (dlmsd/sim/meter.json, read here as JSON), written
out as the published value a user must see: exact decimals, units, readable text.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import tcp_device

Writer = Callable[..., Path]

# OBIS -> (published value, unit) for the bundled model without --live
EXPECTED: dict[str, tuple[Any, str]] = {
    "0.0.42.0.0.255": ("SIM0000012345678", ""),
    "0.0.96.1.0.255": ("12345678", ""),
    "0.0.96.1.1.255": ("dlms-sim", ""),
    "1.0.1.8.0.255": (1234560, "Wh"),
    "1.0.2.8.0.255": (43210, "Wh"),
    "1.0.1.7.0.255": (1250, "W"),
    "1.0.32.7.0.255": (230.1, "V"),
    "1.0.31.7.0.255": (5.43, "A"),
    "1.0.14.7.0.255": (50, "Hz"),
    "1.0.13.7.0.255": (0.982, ""),
    "0.0.96.9.0.255": (21.5, "°C"),
    "1.0.1.6.0.255": (4520, "W"),
    "0.128.128.0.0.255": (None, ""),
    "0.128.128.0.1.255": (True, ""),
    "0.128.128.0.2.255": ("1010011101", ""),
    "0.128.128.0.3.255": (-2147483648, ""),
    "0.128.128.0.4.255": (4294967295, ""),
    "0.128.128.0.5.255": ("00017F80FEFF", ""),
    "0.128.128.0.6.255": ("Hello, meter!", ""),
    "0.128.128.0.7.255": ("Zähler Ω ✓", ""),
    "0.128.128.0.8.255": (89, ""),
    "0.128.128.0.9.255": (-128, ""),
    "0.128.128.0.10.255": (-32768, ""),
    "0.128.128.0.11.255": (255, ""),
    "0.128.128.0.12.255": (65535, ""),
    "0.128.128.0.13.255": (-9223372036854775808, ""),
    "0.128.128.0.14.255": (18446744073709551615, ""),
    "0.128.128.0.15.255": (9007199254740993, ""),  # 2**53 + 1 survives
    "0.128.128.0.16.255": (7, ""),
    "0.128.128.0.17.255": (-1234.5, ""),
    "0.128.128.0.18.255": (3.141592653589793, ""),
    # local time 12:00 at UTC+2 (DST): deviation -120 (minutes from local to UTC),
    # clock status 0x80 (daylight saving active)
    "0.0.1.0.0.255": ("2024-06-01T12:00:00+02:00", ""),
    "0.128.128.0.19.255": ("2024-03-31T03:00:00+02:00", ""),
    "0.128.128.0.20.255": ("2024-12-24", ""),
    "0.128.128.0.21.255": ("23:59:58.50", ""),
    "0.128.128.0.22.255": ("array{long-unsigned 1, long-unsigned 2, long-unsigned 3}", ""),
    "0.128.128.0.23.255": ("structure{octet-string 0100010800ff, integer -1, structure{boolean "
                           "false, visible-string 'nested'}, array{}}", ""),
    # a date-time with wildcards: every year, March, last Sunday, 02:00
    "0.128.128.0.24.255": ("*-03-lastT02:00:00 Sun", ""),
    "1.0.1.4.0.255": (1180, "W"),  # demand register current_average_value, scaler_unit attr 4
}


@contextmanager
def sim_process(*args: str, stderr: int = subprocess.DEVNULL) -> Iterator[
        tuple[str, subprocess.Popen[str]]]:
    """``dlms-sim`` with ``args`` in another process; yields its ready line."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "from dlmsd.sim.cli import main; main()", *args],
        stdout=subprocess.PIPE, stderr=stderr, text=True)
    try:
        assert proc.stdout is not None
        yield proc.stdout.readline(), proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):  # no unclosed pipe (ResourceWarning)
            if stream is not None:
                stream.close()


@contextmanager
def simulator(*args: str) -> Iterator[dict[str, int]]:
    with sim_process("--host", "127.0.0.1", *args) as (line, _proc):
        ports = {name: int(port) for name, port in re.findall(r"(\w+)=[\d.]+:(\d+)", line)}
        assert ports, f"simulator did not start: {line!r}"
        yield ports


def once(path: Path, *extra: str) -> tuple[int, dict[str, Any], str]:
    result = subprocess.run([sys.executable, "-m", "dlmsd", "-c", str(path), "--once",
                             "--json", *extra], capture_output=True, text=True, timeout=120,
                            check=False)
    doc = json.loads(result.stdout) if result.stdout.strip() else {}
    return result.returncode, doc, result.stderr


def signals_for(device: str, codes: list[str]) -> list[dict[str, Any]]:
    return [{"signal_name": code, "device_alias": device, "signal_alias": f"{device}_{i}",
             "obis": code} for i, code in enumerate(codes)]


def check_values(doc: dict[str, Any], codes: list[str]) -> None:
    got = {s["obis"]: (s["value"], s["unit"]) for s in doc["signals"]}
    assert got == {code: EXPECTED[code] for code in codes}
    assert all(s["status"] == "ok" for s in doc["signals"])


@pytest.mark.parametrize(("size", "logical", "physical"), [(1, 0, 17), (2, 1, 17), (4, 1, 1259)])
def test_hdlc_address_sizes(write_config: Writer, size: int, logical: int,
                            physical: int) -> None:
    sim_logical = logical if size != 1 else physical
    with simulator("--hdlc-port", "0", "--logical", str(sim_logical), "--physical",
                   str(physical), "--address-size", str(size)) as ports:
        codes = list(EXPECTED)
        path = write_config(devices=[tcp_device(
            "m", port=ports["hdlc"], address_size=size, logical_address=logical,
            physical_address=physical)], signals=signals_for("m", codes))
        code, doc, log = once(path)
    assert code == 0, log
    check_values(doc, codes)


def test_wrapper_every_type(write_config: Writer) -> None:
    with simulator("--wrapper-port", "0") as ports:
        codes = list(EXPECTED)
        path = write_config(devices=[tcp_device("w", port=ports["wrapper"],
                                                mode="DLMS-WRAPPER", logical_address=1)],
                            signals=signals_for("w", codes))
        code, doc, log = once(path)
    assert code == 0, log
    check_values(doc, codes)


def test_block_transfer_and_segmentation(write_config: Writer) -> None:
    """Max PDU 128 and max info 32: the object list and every with-list answer come in
    GET blocks, each APDU in several HDLC segments."""
    with simulator("--hdlc-port", "0", "--max-pdu", "128", "--max-info", "32",
                   "--logical", "1", "--physical", "17") as ports:
        codes = list(EXPECTED)
        path = write_config(devices=[tcp_device(
            "b", port=ports["hdlc"], address_size=2, logical_address=1,
            physical_address=17)], signals=signals_for("b", codes))
        code, doc, log = once(path, "-d7", "--dlms")
    assert code == 0, log
    check_values(doc, codes)
    assert "GET.res with-datablock" in log and "block=2" in log
    assert "seg=1" in log  # segmented I frames


def test_get_with_list_fallback(write_config: Writer) -> None:
    with simulator("--wrapper-port", "0", "--no-get-with-list") as ports:
        codes = list(EXPECTED)[:8]
        path = write_config(devices=[tcp_device("f", port=ports["wrapper"],
                                                mode="DLMS-WRAPPER", logical_address=1)],
                            signals=signals_for("f", codes))
        code, doc, log = once(path, "-d7", "--dlms")
    assert code == 0, log
    check_values(doc, codes)
    assert "GET.req with-list" not in log  # the meter did not offer multiple-references


def test_unknown_obis_is_a_signal_error(write_config: Writer) -> None:
    with simulator("--wrapper-port", "0") as ports:
        sigs = signals_for("u", ["1.0.1.8.0.255", "1.0.99.99.0.255"])
        sigs.append({"signal_name": "class given", "device_alias": "u", "signal_alias": "u_x",
                     "obis": "1.0.98.1.0.255", "class_id": 3})
        path = write_config(devices=[tcp_device("u", port=ports["wrapper"],
                                                mode="DLMS-WRAPPER", logical_address=1)],
                            signals=sigs)
        code, doc, _log = once(path)
    assert code == 1
    states = {s["signal_alias"]: s for s in doc["signals"]}
    assert states["u_0"]["status"] == "ok"
    assert states["u_1"]["error"] == "OBIS 1.0.99.99.0.255 is not in the meter's object list"
    assert "object-undefined" in states["u_x"]["error"]
    assert doc["devices"][0]["status"] == "online"


def test_two_meters_one_down(write_config: Writer) -> None:
    with simulator("--wrapper-port", "0") as ports:
        path = write_config(
            devices=[tcp_device("up", port=ports["wrapper"], mode="DLMS-WRAPPER",
                                logical_address=1),
                     tcp_device("down", port=9, timeout_ms=500, retry_counter=0)],
            signals=signals_for("up", ["1.0.1.8.0.255"]) + signals_for("down",
                                                                        ["1.0.1.8.0.255"]))
        started = time.monotonic()
        code, doc, _log = once(path)
    assert code == 1
    devices = {d["device_alias"]: d for d in doc["devices"]}
    assert devices["up"]["status"] == "online"
    assert devices["down"]["status"] == "offline"
    assert "TCP connect to 127.0.0.1:9 failed" in devices["down"]["error"]
    assert time.monotonic() - started < 30
