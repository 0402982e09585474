"""Lost, corrupted and late HDLC frames on a serial line (issue 12): the pty variant of
tests/test_lost_frames_gurux.py and the fault matrix.

The daemon (the supervisor's run_once, reading three registers) opens one pty of
:class:`pty_faults.PtyFaults`; its relay passes whole frames to the meter's pty and
back, losing, corrupting or holding one of them.  The meters: ``dlms-sim --pty`` (LN
and SN, its own process) and gurux_dlms's LN meter (tests/interop/gurux_meter.py; it
has no SN association) on a pty.  One position each: frame 3, which is to the meter
the first GET (the object list; for SN the READ of it) and to the client the first
frame of its answer (with gurux's 128-octet frames the first of several segments).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from conftest import serial_device
from pty_faults import PtyFaults, gurux_on_pty
from test_e2e_sim import sim_process

from dlmsd.config import parse_config
from dlmsd.supervisor import Supervisor

TIMEOUT_MS = 400
CODES = ["1.0.1.8.0.255", "1.0.2.8.0.255", "1.0.32.7.0.255"]
SIM_VALUES = {"1.0.1.8.0.255": Decimal(1234560), "1.0.2.8.0.255": Decimal(43210),
              "1.0.32.7.0.255": Decimal("230.1")}
GURUX_VALUES = {"1.0.1.8.0.255": Decimal(12345678), "1.0.2.8.0.255": Decimal(4321000),
                "1.0.32.7.0.255": Decimal("230.1")}
FRAME = 3
FAULTS: list[tuple[str, Any]] = [
    ("drop_to_meter", {FRAME}), ("drop_to_client", {FRAME}),
    ("corrupt_to_meter", {FRAME}), ("corrupt_to_client", {FRAME}),
    ("delay_to_client", {FRAME: 1.5 * TIMEOUT_MS / 1000}),
]


def config(path: str, referencing: str, physical: int) -> Any:
    device = serial_device("m", path, physical, timeout_ms=TIMEOUT_MS, retry_counter=2,
                           type=referencing)
    signals = [{"signal_name": o, "device_alias": "m", "signal_alias": f"s{i}", "obis": o}
               for i, o in enumerate(CODES)]
    return parse_config({"devices": [device], "signals": signals})


@pytest.fixture(scope="module", params=["LN", "SN"])
def sim_pty(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    with sim_process("--pty", "--physical", "17", "--referencing", request.param) as (
            line, _proc):
        match = re.search(r"serial=(\S+)", line)
        assert match, f"simulator did not start: {line!r}"
        yield match.group(1), request.param


async def read_through(meter_path: str, referencing: str, physical: int,
                       fault: str, arg: Any) -> tuple[str | None, dict[str, Any], list[str]]:
    async with PtyFaults(meter_path=meter_path, **{fault: arg}) as relay:
        snapshot = await Supervisor(config(relay.path, referencing, physical)).run_once()
    values = {s.obis: s.value for s in snapshot.signals}
    return snapshot.devices[0].error, values, relay.log


@pytest.mark.parametrize(("fault", "arg"), FAULTS, ids=[f for f, _ in FAULTS])
async def test_dlms_sim_on_a_pty_reads_through_one_fault(sim_pty: tuple[str, str],
                                                          fault: str, arg: Any) -> None:
    path, referencing = sim_pty
    error, values, log = await read_through(path, referencing, 17, fault, arg)
    assert log, "the fault was not applied"
    assert error is None, error
    assert values == SIM_VALUES


@pytest.mark.interop
@pytest.mark.parametrize(("fault", "arg"), FAULTS, ids=[f for f, _ in FAULTS])
async def test_gurux_on_a_pty_reads_through_one_fault(fault: str, arg: Any) -> None:
    pytest.importorskip("gurux_dlms")
    with gurux_on_pty() as path:
        error, values, log = await read_through(path, "LN", 17, fault, arg)
    assert log, "the fault was not applied"
    assert error is None, error
    assert values == GURUX_VALUES


async def test_the_relay_passes_a_clean_line() -> None:
    """Control: no fault, nothing logged, the read completes (the relay itself is
    transparent)."""
    pytest.importorskip("gurux_dlms")
    with gurux_on_pty() as path:
        error, values, log = await read_through(path, "LN", 17, "drop_to_meter", set())
    assert log == [] and error is None, error
    assert values == GURUX_VALUES
