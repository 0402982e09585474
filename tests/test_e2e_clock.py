"""End to end: the daemon (`dlms --once`, a real subprocess) keeps dlms-sim's clock in
step (`--live --clock-drift 120`) and sets gurux_dlms's meter's clock; gurux_dlms's
client sets dlms-sim's clock.

The clock sync log lines of each daemon run are printed (``pytest -s`` shows them).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import tcp_device
from test_e2e_sim import Writer, once, simulator

MAX_DRIFT = 2.0
CLOCK_SIGNAL = [{"signal_name": "clock", "device_alias": "c", "signal_alias": "clock",
                 "obis": "0.0.1.0.0.255", "class_id": 8, "attribute": 2}]


def _fields(line: str) -> dict[str, str]:
    return dict(re.findall(r"(\w+)=('[^']*'|\S+)", line))


def _clock_lines(log: str) -> list[str]:
    lines = [line for line in log.splitlines() if "clock_" in line]
    for line in lines:
        print(line)
    return lines


def _device(ports: dict[str, int], kind: str, referencing: str, method: str) -> dict[str, Any]:
    link: dict[str, Any] = ({"mode": "DLMS-WRAPPER", "logical_address": 1, "port": ports["wrapper"]}
                            if kind == "wrapper" else
                            {"address_size": 2, "logical_address": 1, "physical_address": 17,
                             "port": ports["hdlc"]})
    return tcp_device("c", type=referencing, **link, clock_sync={
        "max_drift_s": MAX_DRIFT, "method": method, "time_zone": "Europe/Vilnius",
        # the test machine's own clock need not be NTP-synchronised
        "require_ntp_sync": 0})


@pytest.mark.parametrize(("kind", "referencing", "method"), [
    ("wrapper", "LN", "set"), ("hdlc", "LN", "adjust"), ("hdlc", "SN", "set"),
    ("wrapper", "SN", "adjust")])
def test_daemon_syncs_a_drifting_sim(write_config: Writer, kind: str, referencing: str,
                                     method: str) -> None:
    """dlms-sim runs 120 s ahead: the first run logs clock_synced with the drift before
    (120 s) and after (below max_drift_s); a second run finds it in step."""
    sim_args = ["--live", "--clock-drift", "120", "--referencing", referencing,
                "--logical", "1", "--physical", "17"]
    sim_args += ["--wrapper-port", "0"] if kind == "wrapper" else ["--hdlc-port", "0"]
    with simulator(*sim_args) as ports:
        path = write_config(devices=[_device(ports, kind, referencing, method)],
                            signals=CLOCK_SIGNAL)
        code, _doc, log = once(path, "-d6")
        assert code == 0, log
        (synced,) = [line for line in _clock_lines(log) if "clock_synced" in line]
        fields = _fields(synced)
        assert float(fields["before_drift_s"]) == pytest.approx(120, abs=1.0), synced
        assert abs(float(fields["after_drift_s"])) < MAX_DRIFT, synced
        assert fields["action"] == ("set" if method == "set" else "shift_time")
        for key in ("before_meter_time", "after_meter_time", "before_gateway_time",
                    "before_round_trip_ms", "written"):
            assert key in fields, synced
        code, doc, log = once(path, "-d6")
        assert code == 0, log
        (checked,) = [line for line in _clock_lines(log) if "clock_" in line]
        assert "clock_checked" in checked
        assert abs(float(_fields(checked)["drift_s"])) < MAX_DRIFT
        # and what the scan read is the meter's time, now in step with the gateway's
        value = doc["signals"][0]["value"]
        meter = dt.datetime.fromisoformat(value)
        assert abs((meter - dt.datetime.now(dt.UTC)).total_seconds()) < 10


def test_daemon_presets_a_large_drift(write_config: Writer) -> None:
    with simulator("--live", "--clock-drift", "-5000", "--wrapper-port", "0") as ports:
        path = write_config(devices=[_device(ports, "wrapper", "LN", "adjust")],
                            signals=CLOCK_SIGNAL)
        code, _doc, log = once(path, "-d6")
    assert code == 0, log
    (synced,) = [line for line in _clock_lines(log) if "clock_synced" in line]
    fields = _fields(synced)
    assert fields["action"] == "preset_time"
    assert float(fields["before_drift_s"]) == pytest.approx(-5000, abs=1.0)
    assert abs(float(fields["after_drift_s"])) < MAX_DRIFT


def test_ntp_unsynchronised_gateway_skips(write_config: Writer, monkeypatch: pytest.MonkeyPatch,
                                          tmp_path: Path) -> None:
    """With require_ntp_sync (the default) the daemon asks the kernel; on a gateway whose
    clock the kernel calls unsynchronised, nothing is written and the check is logged."""
    from dlmsd.ntp import gateway_clock_state

    state = gateway_clock_state()
    if state.synchronised:
        pytest.skip("this machine's clock is NTP-synchronised")
    with simulator("--live", "--clock-drift", "120", "--wrapper-port", "0") as ports:
        device = _device(ports, "wrapper", "LN", "set")
        del device["clock_sync"]["require_ntp_sync"]
        path = write_config(devices=[device], signals=CLOCK_SIGNAL)
        code, _doc, log = once(path, "-d6")
    assert code == 0, log
    lines = _clock_lines(log)
    assert len(lines) == 1 and "clock_sync_skipped" in lines[0], lines
    assert "adjtimex" in lines[0] or "Linux only" in lines[0]


# ------------------------------------------------------------ gurux's client
@pytest.mark.interop
@pytest.mark.parametrize("kind", ["wrapper", "hdlc"])
def test_gurux_client_sets_the_sims_clock(kind: str) -> None:
    """gurux_dlms's client SETs dlms-sim's clock (attribute 2), then shifts it
    (shift_time) and presets it (preset_adjusting_time + adjust_to_preset_time), reading
    it back after each."""
    pytest.importorskip("gurux_dlms")
    from gurux_dlms import GXDateTime
    from gurux_dlms.objects import GXDLMSClock
    from interop.gurux_client import GuruxSession

    args = ["--live", "--clock-drift", "120", "--logical", "1", "--physical", "17"]
    args += ["--wrapper-port", "0"] if kind == "wrapper" else ["--hdlc-port", "0"]
    with simulator(*args) as ports:
        port = ports[kind]
        extra: dict[str, Any] = ({"server_physical": 17, "address_size": 2}
                                 if kind == "hdlc" else {})
        with GuruxSession("127.0.0.1", port, interface=kind, **extra) as session:

            def drift() -> float:
                read = session.read(8, "0.0.1.0.0.255", 2)
                assert read.error is None, read
                meter = GuruxSession_time(read.value)
                return (meter - dt.datetime.now(dt.UTC)).total_seconds()

            assert drift() == pytest.approx(120, abs=2)
            clock = GXDLMSClock("0.0.1.0.0.255")
            clock.time = GXDateTime(dt.datetime.now(dt.UTC).astimezone(
                dt.timezone(dt.timedelta(hours=2))))
            assert session.transact(session.client.write(clock, 2)).error == 0
            assert drift() == pytest.approx(0, abs=2)
            assert session.transact(clock.shiftTime(session.client, 300)).error == 0
            assert drift() == pytest.approx(300, abs=2)
            now = dt.datetime.now(dt.UTC)
            in_meter = now + dt.timedelta(seconds=300)
            preset = clock.presetAdjustingTime(
                session.client, _octets(now + dt.timedelta(seconds=1)),
                _octets(in_meter - dt.timedelta(minutes=5)),
                _octets(in_meter + dt.timedelta(minutes=5)))
            assert session.transact(preset).error == 0
            assert session.transact(clock.adjustToPresetTime(session.client)).error == 0
            assert drift() == pytest.approx(0, abs=2)


def _octets(moment: dt.datetime) -> bytes:
    from dlmsd.protocol.axdr import DateTime
    return DateTime.from_datetime(moment).to_bytes()


def GuruxSession_time(value: Any) -> dt.datetime:  # noqa: N802 - reads gurux's raw value
    from dlmsd.protocol.axdr import DateTime
    moment = DateTime.from_bytes(bytes(value)).to_datetime()
    assert moment is not None and moment.tzinfo is not None
    return moment


# ------------------------------------------------------------ gurux's meter
@pytest.mark.interop
@pytest.mark.parametrize("kind", ["wrapper", "hdlc"])
def test_daemon_sets_the_gurux_meters_clock(write_config: Writer, kind: str) -> None:
    """gurux_dlms's meter (a fixed clock at 2024-05-06T07:08:09Z, its time made
    settable): dlmsd SETs it; gurux decodes the value and encodes it back, in Vilnius
    time, within max_drift_s of the gateway's."""
    pytest.importorskip("gurux_dlms")
    from interop.gurux_meter import GuruxMeter

    with GuruxMeter(interface=kind, clock_writable=True) as meter:
        link: dict[str, Any] = ({"mode": "DLMS-WRAPPER", "logical_address": 1} if kind ==
                                "wrapper" else {"address_size": 2, "logical_address": 1,
                                                "physical_address": 17})
        device = tcp_device("c", port=meter.port, **link, clock_sync={
            "max_drift_s": MAX_DRIFT, "time_zone": "Europe/Vilnius", "require_ntp_sync": 0})
        path = write_config(devices=[device], signals=CLOCK_SIGNAL)
        code, _doc, log = once(path, "-d6")
        assert code == 0, log
        assert not meter.errors, meter.errors
    (synced,) = [line for line in _clock_lines(log) if "clock_synced" in line]
    fields = _fields(synced)
    assert fields["before_meter_time"] == "2024-05-06T07:08:09+00:00"
    assert abs(float(fields["after_drift_s"])) < MAX_DRIFT
    assert fields["after_meter_time"].endswith("+02:00")


@pytest.mark.interop
def test_gurux_meter_refusing_the_actions_is_logged_and_the_device_stays_online(
        write_config: Writer) -> None:
    """gurux's meter has no clock methods (read-write-denied): method adjust fails, the
    failure is one log line and the scan goes on."""
    pytest.importorskip("gurux_dlms")
    from interop.gurux_meter import GuruxMeter

    near = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=60)
    with GuruxMeter(interface="wrapper", clock_time=near) as meter:
        device = tcp_device("c", port=meter.port, mode="DLMS-WRAPPER", logical_address=1,
                            clock_sync={"max_drift_s": MAX_DRIFT, "method": "adjust",
                                        "require_ntp_sync": 0})
        path = write_config(devices=[device], signals=CLOCK_SIGNAL)
        code, doc, log = once(path, "-d6")
    assert code == 0, log
    (failed,) = [line for line in _clock_lines(log) if "clock_sync_failed" in line]
    assert "shift_time refused: read-write-denied" in failed
    assert doc["devices"][0]["status"] == "online"


@pytest.mark.parametrize(("mode", "referencing", "max_pdu"), [
    ("HighGmac-both", "LN", "1024"), ("HighGmac-dedicated", "LN", "48"),
    ("HighGmac-encryption", "SN", "1024")])
def test_daemon_syncs_a_ciphered_sim(write_config: Writer, mode: str, referencing: str,
                                     max_pdu: str) -> None:
    """Ciphered associations: the SET (in blocks under a 48-octet max PDU, each block
    ciphered) and the Write are protected like every other APDU."""
    from test_e2e_auth import MODES

    keys, sim_keys, _ = MODES[mode]
    with simulator("--live", "--clock-drift", "120", "--wrapper-port", "0", "--referencing",
                   referencing, "--max-pdu", max_pdu, *sim_keys) as ports:
        device = _device(ports, "wrapper", referencing, "set")
        device.update(keys, system_title="4D4D4D0000000003", timeout_ms=3000)
        path = write_config(devices=[device], signals=CLOCK_SIGNAL)
        code, _doc, log = once(path, "-d7", "--dlms")
    assert code == 0, log
    (synced,) = [line for line in _clock_lines(log) if "clock_synced" in line]
    fields = _fields(synced)
    assert float(fields["before_drift_s"]) == pytest.approx(120, abs=1.0)
    assert abs(float(fields["after_drift_s"])) < MAX_DRIFT
    if max_pdu == "48":
        assert "SET.req with-first-datablock" in log and "SET.res last-datablock" in log


def test_sim_clock_drift_needs_live() -> None:
    import subprocess
    import sys
    result = subprocess.run([sys.executable, "-c", "from dlmsd.sim.cli import main; main()",
                             "--wrapper-port", "0", "--clock-drift", "5"], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert "--clock-drift needs --live" in result.stderr
