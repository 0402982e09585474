"""``dlmsctl probe`` end to end against dlms-sim started with settings the test picks
at random (seeded; the seed is printed, set DLMSCTL_PROBE_SEED to replay one)."""

from __future__ import annotations

import json
import os
import random
import re
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from ctl_helpers import dlmsctl, once_json
from test_e2e_sim import simulator
from test_sim_serial import sim_pty

FAST = ("--timeout-ms", "300", "--wait-ms", "10")


def _snippets(stdout: str) -> list[dict[str, Any]]:
    """The JSON devices printed after 'the device for the configuration:'."""
    tail = stdout.split("the device for the configuration:\n", 1)[1]
    decoder, found, at = json.JSONDecoder(), [], 0
    while (start := tail.find("{", at)) >= 0:
        value, at = decoder.raw_decode(tail, start)
        found.append(value)
    return found


def _reads(tmp_path: Path, device: dict[str, Any]) -> None:
    """The snippet, as it is, reads the meter."""
    path = tmp_path / "probed.json"
    path.write_text(json.dumps({"devices": [device], "signals": [
        {"signal_name": "energy", "device_alias": device["device_alias"],
         "signal_alias": "e", "obis": "1.0.1.8.0.255"}]}))
    code, doc, err = once_json(path)
    assert code == 0, err
    assert doc["signals"][0]["value"] == Decimal(1234560)


def _pick(rng: random.Random) -> tuple[str, int, dict[str, int]]:
    framing = rng.choice(["hdlc", "wrapper"])
    client = rng.choice([16, 1, 32])
    size = rng.choice([1, 2, 4])
    if size == 1:
        address = {"address_size": 1, "logical_address": 0,
                   "physical_address": rng.choice([1, 16, 17])}
    else:
        address = {"address_size": size, "logical_address": rng.choice([0, 1]),
                   "physical_address": rng.choice([1, 16, 17])}
    return framing, client, address


@pytest.mark.slow
@pytest.mark.parametrize("run", range(2))
def test_probe_finds_random_settings(tmp_path: Path, run: int,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    seed = int(os.environ.get("DLMSCTL_PROBE_SEED", random.SystemRandom().randrange(1 << 32)))
    with capsys.disabled():
        print(f"\nprobe test seed {seed} (DLMSCTL_PROBE_SEED={seed} replays it)")
    framing, client, address = _pick(random.Random(seed + run))
    size = address["address_size"]
    sim_logical = address["physical_address"] if size == 1 else address["logical_address"]
    if framing == "wrapper":
        sim_args = ["--wrapper-port", "0"]
    else:
        sim_args = ["--hdlc-port", "0", "--logical", str(sim_logical), "--address-size",
                    str(size)]
        if size != 1:
            sim_args += ["--physical", str(address["physical_address"])]
    with simulator(*sim_args, "--client-address", str(client)) as ports:
        port = ports[framing]
        result = dlmsctl("probe", "--ip", "127.0.0.1", "--port", str(port), *FAST,
                         "--alias", "found")
        assert result.returncode == 0, (seed, result.stdout, result.stderr)
        (device,) = _snippets(result.stdout)
        _reads(tmp_path, device)
        # --all over the link found: the picked client answers at the same address
        every = dlmsctl("probe", "--ip", "127.0.0.1", "--port", str(port), *FAST,
                        "--mode", framing, "--all")
    assert every.returncode == 0, (seed, every.stdout)
    found = _snippets(every.stdout)
    assert {d["client_address"] for d in found} == {16, client}, seed
    assert all({k: d[k] for k in ("mode", "logical_address")} == {
        k: device[k] for k in ("mode", "logical_address")} for d in found), seed
    assert device["name"] == device["device_alias"] == "found"
    assert device["port"] == port
    # over TCP the simulator serves the public client (16) besides the picked one: the
    # probe stops at 16, the first it tries
    assert device["client_address"] == 16, seed
    if framing == "wrapper":
        assert (device["mode"], device["logical_address"]) == ("DLMS-WRAPPER", 1)
    else:
        assert device["mode"] == "DLMS-HDLC"
        assert {k: device[k] for k in address} == address, seed
    assert device["timeout_ms"] == 300 and "auth" not in device  # auth None: not said
    assert "no:" in result.stdout or device["mode"] == "DLMS-WRAPPER"
    assert "OK" in result.stdout and "max PDU: 1024" in result.stdout


def test_probe_all_and_clients(tmp_path: Path) -> None:
    """--all goes on after the first: the picked client (32) works too, client 1 does
    not; --client limits the clients, --mode the links."""
    with simulator("--wrapper-port", "0", "--client-address", "32") as ports:
        everything = dlmsctl("probe", "--ip", "127.0.0.1", "--port", str(ports["wrapper"]),
                             "--mode", "wrapper", "--all", *FAST)
        only = dlmsctl("probe", "--ip", "127.0.0.1", "--port", str(ports["wrapper"]),
                       "--mode", "wrapper", "--client", "32", *FAST)
    assert everything.returncode == 0, everything.stderr
    assert [d["client_address"] for d in _snippets(everything.stdout)] == [16, 32]
    assert "[2/3] DLMS-WRAPPER client 1 wPort 1: no: no answer to AARQ" in everything.stdout
    assert "2 working combinations" in everything.stdout
    assert only.returncode == 0, only.stderr
    assert "1 combinations" in only.stdout and "[1/1] DLMS-WRAPPER client 32" in only.stdout


def test_probe_reports_the_answers() -> None:
    """Each answer in full: the UA's parameters, the AARE, the system title (HighGmac
    meters send one: here the AARE of an authentication the probe does not offer is a
    rejection with its diagnostic), conformance, max PDU, logical device name."""
    with simulator("--hdlc-port", "0", "--max-info", "64", "--max-pdu", "512",
                   "--logical", "1", "--physical", "1") as ports:
        result = dlmsctl("probe", "--ip", "127.0.0.1", "--port", str(ports["hdlc"]),
                         "--mode", "hdlc", "--client", "16", *FAST)
    assert result.returncode == 0, result.stderr
    assert "UA: max info field tx 64 rx 64, window tx 1 rx 1" in result.stdout
    assert "AARE: accepted, diagnostic null; application context LN" in result.stdout
    assert "system title: none" in result.stdout
    assert re.search(r"conformance: 0x[0-9A-F]+\(.*get", result.stdout)
    assert "max PDU: 512" in result.stdout
    assert "logical device name (0.0.42.0.0.255): SIM0000012345678" in result.stdout
    assert "no answer to SNRM" in result.stdout  # the addresses before the right one


def test_probe_sends_a_password_only_when_asked(tmp_path: Path) -> None:
    """Without --auth the AARQ carries no password (the meter that wants Low rejects it,
    with result and diagnostic); with --auth Low --password it is sent, and never
    shown (the snippet has a placeholder)."""
    secret = "S3cret-pw-777"
    with simulator("--wrapper-port", "0", "--auth", "low", "--password", secret,
                   "--client-address", "32") as ports:
        plain = dlmsctl("probe", "--ip", "127.0.0.1", "--port", str(ports["wrapper"]),
                        "--mode", "wrapper", "--client", "32", *FAST)
        low = dlmsctl("probe", "--ip", "127.0.0.1", "--port", str(ports["wrapper"]),
                      "--mode", "wrapper", "--client", "32", "--auth", "Low", "--password",
                      secret, "--dlms", *FAST)
        if low.returncode == 0:
            _reads(tmp_path, {**_snippets(low.stdout)[0], "password": secret})
    assert plain.returncode == 1
    assert "AARE association rejected-permanent" in plain.stdout
    assert "(result 1, diagnostic" in plain.stdout
    assert "no combination worked" in plain.stdout
    assert low.returncode == 0, low.stdout + low.stderr
    (device,) = _snippets(low.stdout)
    assert device["auth"] == "Low" and device["password"] == "<the password you gave>"
    assert secret not in low.stdout + low.stderr
    assert secret.encode().hex().upper() not in low.stderr.replace(" ", "")
    assert "dlms_tx" in low.stderr  # --dlms


def test_probe_serial_number_address() -> None:
    """--serial-number: the serial-number address is tried first."""
    with simulator("--hdlc-port", "0", "--logical", "1", "--physical", "1259",
                   "--address-size", "4") as ports:
        result = dlmsctl("probe", "--ip", "127.0.0.1", "--port", str(ports["hdlc"]),
                         "--serial-number", "2250259", "--mode", "hdlc", *FAST)
    assert result.returncode == 0, result.stderr
    assert "[1/" in result.stdout and "serial-number address (SN 2250259, 4 bytes): OK" in (
        result.stdout)
    (device,) = _snippets(result.stdout)
    assert device["serial_number"] == 2250259


def test_probe_serial_line_mode_e() -> None:
    """A serial port (a pty): mode E at 300 Bd then HDLC, the identification shown."""
    with sim_pty("--physical", "16", "--mode-e", "--manufacturer", "ABC") as (path, _proc):
        result = dlmsctl("probe", "--serial-port", path, "--client", "16", "--mode", "iec",
                         "--baudrate", "9600", "--timeout-ms", "400", "--wait-ms", "10")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "IEC 62056-21 identification: ABC" in result.stdout
    (device,) = _snippets(result.stdout)
    assert (device["mode"], device["device"], device["logical_address"],
            device["physical_address"], device["baudrate"]) == ("IEC", path, 1, 16, 9600)


def test_probe_waits_between_attempts_and_bounds_each() -> None:
    """Nothing listens: three attempts, each refused at once, 400 ms apart."""
    started = time.monotonic()
    result = dlmsctl("probe", "--ip", "127.0.0.1", "--port", "9", "--mode", "wrapper",
                     "--timeout-ms", "300", "--wait-ms", "400")
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert result.stdout.count(": no: ") == 3 and "no combination worked" in result.stdout
    assert "400 ms apart" in result.stdout
    assert elapsed >= 0.8


def test_probe_silent_meter_is_bounded(tmp_path: Path) -> None:
    """A meter that accepts the connection and never answers: each attempt ends at its
    timeout."""
    import socket
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    try:
        started = time.monotonic()
        result = dlmsctl("probe", "--ip", "127.0.0.1", "--port",
                         str(server.getsockname()[1]), "--mode", "wrapper", *FAST)
        elapsed = time.monotonic() - started
    finally:
        server.close()
    assert result.returncode == 1
    assert result.stdout.count("no answer to AARQ") == 3
    assert elapsed < 30


@pytest.mark.parametrize(("args", "message"), [
    ([], "say where the meter is"),
    (["--ip", "h"], "--ip needs --port"),
    (["--ip", "h", "--port", "1", "--password", "x"], "--password goes with --auth"),
    (["--ip", "h", "--port", "1", "--mode", "iec"], "--mode iec needs a serial port"),
    (["--serial-port", "/dev/null", "--mode", "wrapper"], "--mode wrapper needs TCP"),
    (["--ip", "h", "--port", "1", "--auth", "Low"], "password"),
    (["--ip", "h", "--port", "1", "--timeout-ms", "1"], "--timeout-ms (timeout_ms)"),
    (["--ip", "h", "--port", "1", "--client", "-1"], "-1 is not in the range"),
    (["--ip", "h", "--port", "1", "--wait-ms", "-5"], "--wait-ms"),
])
def test_probe_bad_options(args: list[str], message: str) -> None:
    result = dlmsctl("probe", *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_probe_debug_level() -> None:
    with simulator("--wrapper-port", "0") as ports:
        result = dlmsctl("probe", "--ip", "127.0.0.1", "--port", str(ports["wrapper"]),
                         "--mode", "wrapper", "-d", "7", *FAST)
    assert result.returncode == 0
    assert "associated" in result.stderr  # a debug-level note of the reader


def test_probe_serial_line_without_mode_e() -> None:
    """A meter that does not answer the mode E sign-on: the IEC combinations after the
    first are skipped (the sign-on names no address), plain HDLC finds it."""
    with sim_pty("--physical", "1") as (path, _proc):
        result = dlmsctl("probe", "--serial-port", path, "--client", "16",
                         "--timeout-ms", "300", "--wait-ms", "10")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[1/30] IEC client 16 server 1 (1 byte): no:" in result.stdout
    assert "the other 14 IEC combinations are skipped" in result.stdout
    assert "[2/30] IEC" not in result.stdout
    assert "[16/30] DLMS-HDLC client 16 server 1 (1 byte)" in result.stdout
    (device,) = _snippets(result.stdout)
    assert (device["mode"], device["logical_address"], device["physical_address"],
            device["address_size"]) == ("DLMS-HDLC", 1, 1, 2)
