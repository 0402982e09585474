"""Interop: dlmsd's client reads a meter built on gurux_dlms's server (test-only).

gurux_dlms 1.0.203's server needs shims (tests/interop/gurux_meter.py, NOTES.md there);
what it serves is still decided by gurux's own encoder, so these values are checked
against an independent implementation.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import tcp_device
from interop.gurux_meter import DEFAULT_DATA, DEFAULT_REGISTERS, GuruxMeter

from dlmsd.config import load_config
from dlmsd.signals import SignalStatus
from dlmsd.supervisor import Supervisor

pytestmark = pytest.mark.interop
Writer = Callable[..., Path]

EXPECTED: dict[str, tuple[Any, str]] = {
    "1.0.1.8.0.255": (Decimal(12345678), "Wh"),
    "1.0.2.8.0.255": (Decimal(4321000), "Wh"),
    "1.0.32.7.0.255": (Decimal("230.1"), "V"),
    "1.0.31.7.0.255": (Decimal("5.123"), "A"),
    "1.0.14.7.0.255": (Decimal("50.0"), "Hz"),
    "0.0.96.1.0.255": ("GRX-12345678", ""),
    "0.0.42.0.0.255": ("GRX0000012345678", ""),
    "0.0.1.0.0.255": ("2024-05-06T07:08:09+00:00", ""),
}


def _signals() -> list[dict[str, Any]]:
    obis = [r.obis for r in DEFAULT_REGISTERS] + [d.obis for d in DEFAULT_DATA]
    obis.append("0.0.1.0.0.255")
    return [{"signal_name": code, "device_alias": "g", "signal_alias": f"s{i}", "obis": code}
            for i, code in enumerate(obis)]


@pytest.mark.parametrize("max_list_size", [10, 1])
async def test_read_gurux_meter_over_wrapper(write_config: Writer, max_list_size: int) -> None:
    with GuruxMeter("wrapper") as meter:
        path = write_config(devices=[tcp_device(
            "g", port=meter.port, mode="DLMS-WRAPPER", logical_address=1, timeout_ms=3000,
            max_list_size=max_list_size)], signals=_signals())
        snapshot = await Supervisor(load_config(path)).run_once()
    assert snapshot.devices[0].error is None
    got = {s.obis: (s.value, s.unit) for s in snapshot.signals}
    assert got == EXPECTED
    assert all(s.status is SignalStatus.OK for s in snapshot.signals)


@pytest.mark.parametrize(("size", "logical", "physical", "serial"), [
    (2, 1, 17, None),
    (4, 1, 1259, 2250259),  # the serial-number formula: physical 1259, 4 bytes
    (1, 1, None, None),
])
async def test_read_gurux_meter_over_hdlc(write_config: Writer, size: int, logical: int,
                                          physical: int | None, serial: int | None) -> None:
    meter_args: dict[str, Any] = {"server_logical": logical, "server_physical": physical,
                                  "address_size": size}
    device: dict[str, Any] = {"address_size": size}
    if serial is not None:
        meter_args["serial_number"] = serial
        device["serial_number"] = serial
    elif size == 1:
        device.update(logical_address=0, physical_address=logical)
    else:
        device.update(logical_address=logical, physical_address=physical)
    with GuruxMeter("hdlc", **meter_args) as meter:
        path = write_config(devices=[tcp_device("g", port=meter.port, timeout_ms=3000,
                                                **device)], signals=_signals())
        snapshot = await Supervisor(load_config(path)).run_once()
    assert snapshot.devices[0].error is None
    assert {s.obis: (s.value, s.unit) for s in snapshot.signals} == EXPECTED


@pytest.mark.parametrize("interface", ["hdlc", "wrapper"])
def test_low_level_security_and_no_password_in_traces(write_config: Writer,
                                                      interface: str) -> None:
    from click.testing import CliRunner

    from dlmsd.cli import main

    password = "Zx9!pw-4712"
    mode = "DLMS-WRAPPER" if interface == "wrapper" else "DLMS-HDLC"
    with GuruxMeter(interface, password=password.encode()) as meter:
        path = write_config(devices=[tcp_device(
            "g", port=meter.port, mode=mode, logical_address=1, physical_address=17,
            address_size=2, auth="Low", password=password, timeout_ms=3000)],
            signals=_signals()[:2])
        result = CliRunner().invoke(main, ["-c", str(path), "--once", "--json", "-d7",
                                           "--dlms"])
        wrong = write_config(devices=[tcp_device(
            "g", port=meter.port, mode=mode, logical_address=1, physical_address=17,
            address_size=2, auth="Low", password="not-the-one", timeout_ms=3000)],
            signals=_signals()[:1])
        refused = CliRunner().invoke(main, ["-c", str(wrong), "--once", "--json"])
    assert result.exit_code == 0, result.output
    text = result.output
    assert "dlms_tx" in text and "AARQ" in text  # the traffic was traced
    for form in (password, password.encode().hex(), password.encode().hex().upper(),
                 password.encode().hex(" ").upper()):
        assert form not in text
    assert refused.exit_code == 1
    device = __import__("json").loads(refused.stdout)["devices"][0]
    assert device["status"] == "offline"
    assert "association rejected" in device["error"]


@pytest.mark.parametrize("auth", ["High", "HighMd5", "HighSha1", "HighSha256"])
@pytest.mark.parametrize("interface", ["hdlc", "wrapper"])
def test_hls_against_gurux(write_config: Writer, interface: str, auth: str) -> None:
    from click.testing import CliRunner

    from dlmsd.cli import main

    secret = "Q7w!e9R2t5Y8u1I4"  # 16 octets: mechanism 2 needs an AES-128 key
    mode = "DLMS-WRAPPER" if interface == "wrapper" else "DLMS-HDLC"
    common: dict[str, Any] = {"port": 0, "mode": mode, "logical_address": 1,
                              "physical_address": 17, "address_size": 2, "auth": auth,
                              "timeout_ms": 3000, "system_title": "4453444D30303031"}
    with GuruxMeter(interface, hls_secret=secret.encode()) as meter:
        common["port"] = meter.port
        good = write_config(devices=[tcp_device("g", password=secret, **common)],
                            signals=_signals()[:3])
        result = CliRunner().invoke(main, ["-c", str(good), "--once", "--json", "-d7",
                                           "--dlms"])
        bad = write_config(devices=[tcp_device("g", password="X" * 16, **common)],
                           signals=_signals()[:1])
        refused = CliRunner().invoke(main, ["-c", str(bad), "--once", "--json"])
    assert result.exit_code == 0, result.output
    doc = __import__("json").loads(result.stdout)
    assert [s["value"] for s in doc["signals"]] == [12345678, 4321000, 230.1]
    assert "ACTION.req" in result.output  # pass 3 went over the wire
    for form in (secret, secret.encode().hex(), secret.encode().hex(" ").upper()):
        assert form not in result.output
    assert refused.exit_code == 1
    device = __import__("json").loads(refused.stdout)["devices"][0]
    assert device["status"] == "offline"
    assert "HLS authentication failed" in device["error"] or "rejected" in device["error"]


@pytest.mark.parametrize("interface", ["hdlc", "wrapper"])
def test_hls_high_short_secret_against_gurux(write_config: Writer, interface: str) -> None:
    """auth High with a 5-octet secret: gurux's meter pads it with zeros
    (GXSecure.secure), the daemon pads it the same way; both passes verify."""
    from click.testing import CliRunner

    from dlmsd.cli import main

    secret = "Gx5!q"
    mode = "DLMS-WRAPPER" if interface == "wrapper" else "DLMS-HDLC"
    common: dict[str, Any] = {"port": 0, "mode": mode, "logical_address": 1,
                              "physical_address": 17, "address_size": 2, "auth": "High",
                              "timeout_ms": 3000}
    with GuruxMeter(interface, hls_secret=secret.encode()) as meter:
        common["port"] = meter.port
        good = write_config(devices=[tcp_device("g", password=secret, **common)],
                            signals=_signals()[:1])
        result = CliRunner().invoke(main, ["-c", str(good), "--once", "--json", "-d7",
                                           "--dlms"])
        bad = write_config(devices=[tcp_device("g", password="Gx5!r", **common)],
                           signals=_signals()[:1])
        refused = CliRunner().invoke(main, ["-c", str(bad), "--once", "--json"])
    assert result.exit_code == 0, result.output
    doc = __import__("json").loads(result.stdout)
    assert [s["value"] for s in doc["signals"]] == [12345678]
    assert "ACTION.req" in result.output  # pass 3 went over the wire
    assert "is padded with zero bytes to 16" in result.output
    for form in (secret, secret.encode().hex(), secret.encode().hex(" ").upper()):
        assert form not in result.output
    assert refused.exit_code == 1
    assert "Gx5!r" not in refused.output


@pytest.mark.parametrize("security", ["both", "authentication", "encryption"])
@pytest.mark.parametrize("interface", ["hdlc", "wrapper"])
def test_hls_gmac_ciphered_against_gurux(write_config: Writer, interface: str, security: str,
                                         tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from dlmsd.cli import main

    monkeypatch.setenv("DLMS_STATE_DIR", str(tmp_path / "state"))
    ek, ak = bytes(range(16)).hex(), bytes(range(0xD0, 0xE0)).hex()
    mode = "DLMS-WRAPPER" if interface == "wrapper" else "DLMS-HDLC"
    with GuruxMeter(interface) as meter:
        path = write_config(devices=[tcp_device(
            "g", port=meter.port, mode=mode, logical_address=1, physical_address=17,
            address_size=2, auth="HighGmac", system_title="4453444D30303031",
            block_cipher_key=ek, authentication_key=ak, security=security,
            timeout_ms=3000)], signals=_signals()[:3])
        result = CliRunner().invoke(main, ["-c", str(path), "--once", "--json", "-d7",
                                           "--dlms"])
    assert result.exit_code == 0, result.output[-3000:]
    # gurux's meter (in this process) prints "Encryption is applied." to stdout
    out = result.stdout
    doc = __import__("json").loads(out[out.index('{\n  "devices"'):])
    assert [s["value"] for s in doc["signals"]] == [12345678, 4321000, 230.1]
    assert "glo-get-request" in result.output  # the GETs went out ciphered
    assert "decrypted: GET.res" in result.output  # ... and the answers are traced in clear
    for key in (ek, ak):
        for form in (key, key.upper(), bytes.fromhex(key).hex(" ").upper()):
            assert form not in result.output
    # the invocation counter persisted, above what this run used
    assert list((tmp_path / "state" / "counters").iterdir())


def test_wrong_keys_are_an_association_rejection(write_config: Writer, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DLMS_STATE_DIR", str(tmp_path / "state"))
    with GuruxMeter("wrapper") as meter:
        path = write_config(devices=[tcp_device(
            "g", port=meter.port, mode="DLMS-WRAPPER", logical_address=1, auth="HighGmac",
            system_title="4453444D30303031", block_cipher_key="11" * 16,
            authentication_key=bytes(range(0xD0, 0xE0)).hex(), timeout_ms=3000)],
            signals=_signals()[:1])
        config = load_config(path)
        import asyncio

        from dlmsd.counters import open_counter_store
        from dlmsd.errors import AssociationRejected
        from dlmsd.logsetup import get_logger
        from dlmsd.poller import SessionContext
        from dlmsd.session import make_session
        from dlmsd.trace import FrameTracer

        async def attempt() -> BaseException | None:
            context = SessionContext(FrameTracer(get_logger(), False), get_logger(),
                                     counters=lambda: open_counter_store(
                                         str(tmp_path / "state" / "counters")))
            session = make_session(config.devices[0], context)
            try:
                await session.open()
            except AssociationRejected as exc:
                return exc
            finally:
                await session.close()
            return None

        error = asyncio.run(attempt())
    # gurux's meter cannot decipher our glo-initiate-request and rejects the AARQ: an
    # association rejection, so the poller backs off as for a wrong password
    assert isinstance(error, AssociationRejected)
    assert "rejected" in str(error) and "11" * 16 not in str(error)
