"""``dlmsctl discover`` end to end: against dlms-sim (TCP wrapper and HDLC, SN, a pty
with mode E, Low authentication) and against gurux_dlms's meter, the configuration it
writes is accepted by ``dlms --check`` and read by ``dlms --once --json`` unchanged,
every value as the meter's model has it."""

from __future__ import annotations

import json
import re
import stat
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from ctl_helpers import check, dlmsctl, once_json
from test_e2e_sim import EXPECTED, simulator
from test_sim_serial import sim_pty

MODEL = json.loads((Path(__file__).resolve().parent.parent / "dlmsd" / "sim" /
                    "meter.json").read_text())
_NUMERIC = {"integer", "long", "double-long", "long64", "unsigned", "long-unsigned",
            "double-long-unsigned", "long64-unsigned", "float32", "float64", "enum", "bcd"}


def _default_signals() -> set[str]:
    """What -o makes a signal of in the bundled model: the registers (3, 4, 5) and the
    data objects whose value is a number."""
    out = set()
    for obj in MODEL["objects"]:
        if obj["class"] in ("register", "extended-register", "demand-register") or (
                obj["class"] == "data" and obj["value"]["type"] in _NUMERIC):
            out.add(obj["obis"])
    return out


def _model_values() -> dict[str, tuple[Any, str]]:
    """The published value of each register and numeric data object of the model:
    value x 10^scaler with the unit symbol (count, 255, has none)."""
    out = {}
    for obj in MODEL["objects"]:
        kind = obj["class"]
        typed = obj.get("current_average_value") or obj.get("value")
        if kind == "data" and typed["type"] in _NUMERIC:
            out[obj["obis"]] = (Decimal(str(typed["value"])), "")
        elif kind == "data" and typed["type"] in ("visible-string", "utf8-string"):
            out[obj["obis"]] = (typed["value"], "")
        elif kind == "data" and "text" in typed:
            out[obj["obis"]] = (typed["text"], "")
        elif kind in ("register", "extended-register", "demand-register"):
            unit = obj.get("unit", 255)
            out[obj["obis"]] = (Decimal(str(typed["value"])).scaleb(obj.get("scaler", 0)),
                                "" if unit == 255 else unit)
    return out


def _exact(value: Any) -> Any:
    return Decimal(str(value)) if isinstance(value, float | int) and not isinstance(
        value, bool) else value


def _read_back(path: Path) -> dict[str, tuple[Any, str]]:
    assert check(path).returncode == 0, check(path).stdout
    code, doc, err = once_json(path)
    assert code == 0, err
    assert all(s["status"] == "ok" for s in doc["signals"]), doc
    return {s["obis"]: (s["value"], s["unit"]) for s in doc["signals"]}


def _expected(codes: set[str]) -> dict[str, tuple[Any, str]]:
    """From the model (registers, numeric data), else test_e2e_sim's EXPECTED (the two
    agree where both say)."""
    model = _model_values()
    for code in set(model) & set(EXPECTED):
        assert model[code] == (_exact(EXPECTED[code][0]), EXPECTED[code][1])
    return {code: model[code] if code in model else (_exact(EXPECTED[code][0]),
                                                     EXPECTED[code][1]) for code in codes}


def test_sim_wrapper_table_and_configuration(tmp_path: Path) -> None:
    out = tmp_path / "meter.json"
    with simulator("--wrapper-port", "0") as ports:
        result = dlmsctl("discover", "--ip", "127.0.0.1", "--port", str(ports["wrapper"]),
                         "--mode", "wrapper", "--logical-address", "1", "-o", str(out))
        assert result.returncode == 0, result.stderr
        got = _read_back(out)
    table = result.stdout
    header = table.splitlines()[0].split()
    assert header == ["OBIS", "class", "name", "value", "unit", "access"]
    assert re.search(r"1\.0\.1\.8\.0\.255 +3 Register +Active energy import \(\+A\), total"
                     r" +1234560 +Wh +1:r 2:r 3:r m1:-", table)
    assert re.search(r"0\.0\.1\.0\.0\.255 +8 Clock +Clock +2024-06-01T12:00:00\+02:00", table)
    assert re.search(r"0\.0\.40\.0\.0\.255 +15 Association LN +Current association", table)
    assert "SAP assignment: the meter has no SAP assignment object" in table
    assert set(got) == _default_signals()
    assert got == _expected(_default_signals())
    doc = json.loads(out.read_text())
    assert doc["devices"] == [{"name": "meter", "device_alias": "meter", "protocol": "DLMS",
                               "client_address": 16, "ip": "127.0.0.1",
                               "port": ports["wrapper"], "mode": "DLMS-WRAPPER",
                               "logical_address": 1}]
    assert "wrote" in result.stderr and f"{len(_default_signals())} signals" in result.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o644


def test_sim_hdlc_all_objects(tmp_path: Path) -> None:
    """--all over HDLC (2-byte address, logical 1, physical 17): a signal for every
    object, each read back as the model has it; --alias names the device."""
    out = tmp_path / "all.json"
    with simulator("--hdlc-port", "0", "--physical", "17") as ports:
        result = dlmsctl("discover", "--ip", "127.0.0.1", "--port", str(ports["hdlc"]),
                         "--mode", "hdlc", "--logical-address", "1", "--physical-address",
                         "17", "--address-size", "2", "--client-address", "0x10",
                         "--timeout-ms", "3000", "--alias", "main", "--all", "-o", str(out))
        assert result.returncode == 0, result.stderr
        got = _read_back(out)
    # every object of the model but the profiles (listed, not signals: their buffers are
    # for the profiles of the configuration)
    profiles = {o["obis"] for o in MODEL["objects"] if o["class"] == "profile-generic"}
    assert profiles
    assert set(got) == {o["obis"] for o in MODEL["objects"]} - profiles
    for code in profiles:
        assert re.search(rf"{re.escape(code)} +7 Profile generic .*\(a profile: its buffer "
                         r"is not read here\)", result.stdout)
    assert got == _expected(set(got))
    doc = json.loads(out.read_text())
    device = doc["devices"][0]
    assert (device["device_alias"], device["name"], device["timeout_ms"],
            device["client_address"]) == ("main", "main", 3000, "0x10")
    assert all(s["signal_alias"].startswith("main_") for s in doc["signals"])


def test_sim_short_names(tmp_path: Path) -> None:
    out = tmp_path / "sn.json"
    with simulator("--wrapper-port", "0", "--referencing", "SN") as ports:
        result = dlmsctl("discover", "--ip", "127.0.0.1", "--port", str(ports["wrapper"]),
                         "--mode", "wrapper", "--logical-address", "1", "--referencing", "sn",
                         "-o", str(out))
        assert result.returncode == 0, result.stderr
        got = _read_back(out)
    assert got == _expected(_default_signals())
    doc = json.loads(out.read_text())
    assert doc["devices"][0]["type"] == "SN"
    assert all(s["address"] > 0 for s in doc["signals"])
    assert re.search(r"1\.0\.1\.8\.0\.255 +3 Register .* +1234560 +Wh +\?", result.stdout)


def test_config_device_with_low_password(tmp_path: Path) -> None:
    """--config/--device takes the device (options override it); a password goes into
    the written file, which is then readable by its owner only, and nowhere else."""
    out = tmp_path / "low.json"
    password = "Pa55-w0rd-xyz"
    with simulator("--wrapper-port", "0", "--auth", "low", "--password", password,
                   "--client-address", "32") as ports:
        source = tmp_path / "dlms.json"
        source.write_text(json.dumps({"devices": [
            {"name": "other", "device_alias": "other", "protocol": "DLMS", "ip": "127.0.0.1",
             "port": 9, "client_address": 16},
            {"name": "Low meter", "device_alias": "low", "protocol": "DLMS",
             "ip": "127.0.0.1", "port": 1, "mode": "DLMS-WRAPPER", "logical_address": 1,
             "client_address": 32, "auth": "Low", "password": password}],
            "signals": []}))
        result = dlmsctl("discover", "--config", str(source), "--device", "low",
                         "--port", str(ports["wrapper"]), "--dlms", "-o", str(out))
        assert result.returncode == 0, result.stderr
        got = _read_back(out)
    assert got == _expected(_default_signals())
    assert password not in result.stdout and password not in result.stderr
    assert "dlms_tx" in result.stderr  # --dlms: the traffic
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert "mode 600" in result.stderr
    device = json.loads(out.read_text())["devices"][0]
    assert device["password"] == password and device["port"] == ports["wrapper"]
    assert device["device_alias"] == "low"


def test_password_from_the_environment_and_debug_level(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys
    with simulator("--wrapper-port", "0", "--auth", "low", "--password", "envpass",
                   "--client-address", "32") as ports:
        result = subprocess.run(
            [sys.executable, "-c", "from dlmsd.ctl.cli import main; main()", "discover",
             "--ip", "127.0.0.1", "--port", str(ports["wrapper"]), "--mode", "wrapper",
             "--logical-address", "1", "--client-address", "32", "--auth", "Low", "-d", "7"],
            capture_output=True, text=True, timeout=120, check=False,
            env={**os.environ, "DLMSCTL_PASSWORD": "envpass"})
    assert result.returncode == 0, result.stderr
    assert "1234560" in result.stdout
    assert "associated" in result.stderr and "envpass" not in result.stderr  # -d 7


def test_pty_mode_e(tmp_path: Path) -> None:
    """A serial meter (a pty) with the IEC 62056-21 mode E opening."""
    out = tmp_path / "serial.json"
    with sim_pty("--physical", "17", "--mode-e") as (path, _proc):
        result = dlmsctl("discover", "--serial-port", path, "--mode", "iec",
                         "--logical-address", "1", "--physical-address", "17",
                         "--address-size", "2", "--baudrate", "9600", "--timeout-ms", "3000",
                         "-o", str(out))
        assert result.returncode == 0, result.stderr
        got = _read_back(out)
    assert got == _expected(_default_signals())
    device = json.loads(out.read_text())["devices"][0]
    assert (device["device"], device["mode"], device["baudrate"]) == (path, "IEC", 9600)


def test_output_is_not_replaced_without_force(tmp_path: Path) -> None:
    out = tmp_path / "exists.json"
    out.write_text("keep")
    with simulator("--wrapper-port", "0") as ports:
        args = ["discover", "--ip", "127.0.0.1", "--port", str(ports["wrapper"]), "--mode",
                "wrapper", "--logical-address", "1", "-o", str(out)]
        refused = dlmsctl(*args)
        assert refused.returncode == 2 and "the file exists (--force" in refused.stderr
        assert out.read_text() == "keep"
        forced = dlmsctl(*args, "--force")
    assert forced.returncode == 0, forced.stderr
    assert json.loads(out.read_text())["signals"]


@pytest.mark.parametrize(("args", "message"), [
    ([], "say where the meter is"),
    (["--ip", "127.0.0.1"], "--ip needs --port"),
    (["--device", "x"], "--device goes with --config"),
    (["--config", "/nonexistent/dlms.json", "--device", "x"], "no such file"),
    (["--ip", "h", "--port", "1", "--all"], "--all goes with -o"),
    (["--ip", "h", "--port", "1", "--force"], "--force goes with -o"),
    (["--ip", "h", "--port", "1", "--client-address", "zz"],
     "--client-address (client_address): \"zz\" is not a hex number"),
    (["--ip", "h", "--port", "1", "--auth", "Low"], "password"),
    (["--ip", "h", "--port", "1", "--auth", "Bogus"], "--auth (auth)"),
    (["--ip", "h", "--port", "1", "--timeout-ms", "5"], "--timeout-ms (timeout_ms)"),
    (["--ip", "h", "--port", "1", "--address-size", "1", "--logical-address", "1",
      "--physical-address", "17"], "one-byte server address must be below 128"),
    (["--ip", "h", "--port", "1", "--mode", "tcp"], "'tcp' is not one of"),
])
def test_bad_options(args: list[str], message: str) -> None:
    result = dlmsctl("discover", *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_bad_config_device(tmp_path: Path) -> None:
    source = tmp_path / "dlms.json"
    source.write_text(json.dumps({"devices": [{"name": "a", "device_alias": "a",
                                               "protocol": "DLMS", "client_address": 16,
                                               "ip": "h", "port": 1}], "signals": []}))
    missing = dlmsctl("discover", "--config", str(source), "--device", "b")
    assert missing.returncode == 2 and "--device b: no such device" in missing.stderr
    assert "(devices: a)" in missing.stderr
    nodevice = dlmsctl("discover", "--config", str(source))
    assert nodevice.returncode == 2 and "--config needs --device ALIAS" in nodevice.stderr
    source.write_text("{not json")
    broken = dlmsctl("discover", "--config", str(source), "--device", "a")
    assert broken.returncode == 2 and "invalid JSON at line 1" in broken.stderr


def test_unreachable_meter_is_an_error() -> None:
    result = dlmsctl("discover", "--ip", "127.0.0.1", "--port", "9", "--timeout-ms", "500")
    assert result.returncode == 1
    assert result.stderr.startswith("dlmsctl discover: 127.0.0.1:9: ")
    assert "Traceback" not in result.stderr


@pytest.mark.interop
@pytest.mark.parametrize("interface", ["wrapper", "hdlc"])
def test_gurux_meter(tmp_path: Path, interface: str) -> None:
    """gurux_dlms's meter: its object list (gurux's encoding, access rights included)
    becomes a configuration that reads every register exactly."""
    from interop.gurux_meter import GuruxMeter
    from test_interop_read_gurux import EXPECTED as GURUX

    out = tmp_path / "gurux.json"
    args = (["--mode", "wrapper", "--logical-address", "1"] if interface == "wrapper" else
            ["--mode", "hdlc", "--logical-address", "1", "--physical-address", "17",
             "--address-size", "2"])
    with GuruxMeter(interface) as meter:
        result = dlmsctl("discover", "--ip", "127.0.0.1", "--port", str(meter.port),
                         "--timeout-ms", "3000", *args, "--all", "-o", str(out))
        assert result.returncode == 0, result.stderr
        got = _read_back(out)
    assert {k: (_exact(v), u) for k, (v, u) in GURUX.items()} == {
        k: got[k] for k in GURUX}
    assert re.search(r"1\.0\.32\.7\.0\.255 +3 Register +Voltage L1 +230\.1 +V +1:r", result.stdout)


@pytest.mark.interop
def test_gurux_meter_serial_number_address(tmp_path: Path) -> None:
    """--serial-number: the HDLC address SN % 10000 + 1000, logical 1, 4 bytes."""
    from interop.gurux_meter import GuruxMeter

    out = tmp_path / "sn.json"
    with GuruxMeter("hdlc", server_logical=1, server_physical=1259, address_size=4,
                    serial_number=2250259) as meter:
        result = dlmsctl("discover", "--ip", "127.0.0.1", "--port", str(meter.port),
                         "--serial-number", "2250259", "--timeout-ms", "3000", "-o", str(out))
        assert result.returncode == 0, result.stderr
        got = _read_back(out)
    assert got["1.0.1.8.0.255"] == (Decimal(12345678), "Wh")
    assert json.loads(out.read_text())["devices"][0]["serial_number"] == 2250259


@pytest.mark.interop
def test_gurux_meter_sap_assignment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A logical device with a SAP assignment (gurux's encoding of class 17): listed."""
    from gurux_dlms.objects import GXDLMSSapAssignment
    from interop import gurux_meter

    build = gurux_meter._GuruxServer._build_objects

    def with_sap(self: Any) -> None:
        sap = GXDLMSSapAssignment("0.0.41.0.0.255")
        sap.sapAssignmentList = [(1, "GRX0000012345678"), (17, "GRXGAS0000000001")]
        self.items.append(sap)
        build(self)

    monkeypatch.setattr(gurux_meter._GuruxServer, "_build_objects", with_sap)
    with gurux_meter.GuruxMeter("wrapper") as meter:
        result = dlmsctl("discover", "--ip", "127.0.0.1", "--port", str(meter.port),
                         "--mode", "wrapper", "--logical-address", "1", "--timeout-ms", "3000")
    assert result.returncode == 0, result.stderr
    assert ("SAP assignment (0.0.41.0.0.255): 1 GRX0000012345678, 17 GRXGAS0000000001"
            in result.stdout)
    assert re.search(r"0\.0\.41\.0\.0\.255 +17 SAP assignment +SAP assignment +array",
                     result.stdout)


def test_config_device_high_gmac(tmp_path: Path) -> None:
    """A ciphered device from the configuration (HighGmac, glo-ciphering): its counters
    in the configuration's state_dir, which the written file keeps; no key shown."""
    key, auth_key = "5EC0DE00112233445566778899AABBCC", "A0A1A2A3A4A5A6A7A8A9AAABACADAEAF"
    source, out = tmp_path / "dlms.json", tmp_path / "gmac.json"
    with simulator("--wrapper-port", "0", "--auth", "highgmac", "--client-address", "1",
                   "--block-cipher-key", key, "--authentication-key", auth_key) as ports:
        source.write_text(json.dumps({"state_dir": str(tmp_path / "state"), "devices": [
            {"name": "g", "device_alias": "g", "protocol": "DLMS", "ip": "127.0.0.1",
             "port": ports["wrapper"], "mode": "DLMS-WRAPPER", "logical_address": 1,
             "client_address": 1, "auth": "HighGmac", "system_title": "4D4D4D0000000009",
             "block_cipher_key": key, "authentication_key": auth_key}], "signals": []}))
        result = dlmsctl("discover", "--config", str(source), "--device", "g", "--dlms",
                         "-o", str(out))
        assert result.returncode == 0, result.stderr
        got = _read_back(out)
    counter = "0.0.43.1.0.255"  # the meter's invocation counter: it moved on meanwhile
    assert got.pop(counter)[0] > 0
    assert got == _expected(_default_signals() - {counter})
    for secret in (key, auth_key):
        assert secret not in result.stdout + result.stderr.upper().replace(" ", "")
    doc = json.loads(out.read_text())
    assert doc["state_dir"] == str(tmp_path / "state")
    assert doc["devices"][0]["block_cipher_key"] == key
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert (tmp_path / "state" / "counters").is_dir()
