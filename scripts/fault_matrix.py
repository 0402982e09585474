"""The fault matrix of issue 12: one lost, corrupted or late frame per association,
for each frame position 1..7, against dlms-sim (LN and SN, HDLC and wrapper) and, when
gurux_dlms is installed (the test extras), against gurux_dlms's meter (LN).

The daemon reads three registers once (the supervisor's run_once) through a TCP proxy
that applies the fault (tests/faulty_proxy.py); each row counts the positions read
without an error.  With ``--pty`` the same faults are applied on a serial line instead
(HDLC only: tests/pty_faults.py between the daemon's pty and ``dlms-sim --pty`` or
gurux's meter on a pty).  Usage:
``.venv/bin/python scripts/fault_matrix.py [--timeout-ms 500] [--pty]``
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from conftest import serial_device  # noqa: E402
from faulty_proxy import FaultyProxy  # noqa: E402
from pty_faults import PtyFaults, gurux_on_pty  # noqa: E402
from test_e2e_sim import sim_process, simulator  # noqa: E402

from dlmsd.config import parse_config  # noqa: E402
from dlmsd.logsetup import configure_logging  # noqa: E402
from dlmsd.supervisor import Supervisor  # noqa: E402

CODES = ["1.0.1.8.0.255", "1.0.2.8.0.255", "1.0.32.7.0.255"]
POSITIONS = range(1, 8)


def config(port: int | str, kind: str, referencing: str, physical: int,
           timeout_ms: int) -> Any:
    device: dict[str, Any] = {
        "name": "m", "device_alias": "m", "protocol": "DLMS", "client_address": 16,
        "ip": "127.0.0.1", "port": port, "timeout_ms": timeout_ms, "retry_counter": 2,
        "logical_address": 1, "type": referencing}
    if isinstance(port, str):  # a serial line (a pty)
        device = serial_device("m", port, physical, timeout_ms=timeout_ms, retry_counter=2,
                               type=referencing)
    elif kind == "hdlc":
        device.update(mode="DLMS-HDLC", address_size=2, physical_address=physical)
    else:
        device.update(mode="DLMS-WRAPPER")
    signals = [{"signal_name": o, "device_alias": "m", "signal_alias": f"s{i}", "obis": o}
               for i, o in enumerate(CODES)]
    return parse_config({"devices": [device], "signals": signals})


async def row(meter: str, referencing: str, kind: str, port: int | str, physical: int,
              fault: str, timeout_ms: int) -> None:
    """``port``: the meter's TCP port, or the path of its pty (``kind`` "pty")."""
    read, errors = 0, []
    for n in POSITIONS:
        arg: Any = {n: 1.5 * timeout_ms / 1000} if fault == "delay_to_client" else {n}
        if isinstance(port, str):
            async with PtyFaults(meter_path=port, **{fault: arg}) as relay:
                snapshot = await Supervisor(config(relay.path, kind, referencing, physical,
                                                   timeout_ms)).run_once()
        else:
            async with FaultyProxy(kind, port, **{fault: arg}) as proxy:
                snapshot = await Supervisor(config(proxy.port, kind, referencing, physical,
                                                   timeout_ms)).run_once()
        device = snapshot.devices[0]
        if device.error is None and all(s.error is None for s in snapshot.signals):
            read += 1
        else:
            errors.append(f"{n}: {device.error}")
    print(f"| {meter} | {referencing} | {kind} | {fault} | {read}/{len(POSITIONS)} | "
          f"{'; '.join(errors)[:160]} |", flush=True)


def faults(kind: str) -> list[str]:
    if kind == "hdlc":
        return ["drop_to_meter", "drop_to_client", "corrupt_to_meter", "corrupt_to_client"]
    if kind == "pty":
        return [*faults("hdlc"), "delay_to_client"]
    return ["drop_to_meter", "drop_to_client", "delay_to_client"]


async def pty_rows(timeout_ms: int) -> None:
    for referencing in ("LN", "SN"):
        with sim_process("--pty", "--physical", "17", "--referencing", referencing) as (
                line, _proc):
            path = line.split("serial=")[1].split()[0]
            for fault in faults("pty"):
                await row("dlms-sim", referencing, "pty", path, 17, fault, timeout_ms)
    try:
        import interop.gurux_meter  # noqa: F401
    except ImportError:
        print("gurux_dlms is not installed: its rows are left out")
        return
    with gurux_on_pty() as path:
        for fault in faults("pty"):
            await row("gurux_dlms", "LN", "pty", path, 17, fault, timeout_ms)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--timeout-ms", type=int, default=500)
    parser.add_argument("--pty", action="store_true",
                        help="HDLC on a serial line (ptys) instead of TCP")
    args = parser.parse_args()
    configure_logging(0)
    print("| meter | ref | link | fault | read | errors |")
    print("| --- | --- | --- | --- | --- | --- |")
    if args.pty:
        await pty_rows(args.timeout_ms)
        return
    for referencing in ("LN", "SN"):
        with simulator("--hdlc-port", "0", "--wrapper-port", "0", "--referencing",
                       referencing, "--max-pdu", "64") as ports:
            for kind in ("hdlc", "wrapper"):
                for fault in faults(kind):
                    await row("dlms-sim", referencing, kind, ports[kind], 1, fault,
                              args.timeout_ms)
    try:
        from interop.gurux_meter import GuruxMeter
    except ImportError:
        print("gurux_dlms is not installed: its rows are left out")
        return
    for kind in ("hdlc", "wrapper"):
        with GuruxMeter(kind) as meter:
            for fault in faults(kind):
                await row("gurux_dlms", "LN", kind, meter.port, 17, fault, args.timeout_ms)


if __name__ == "__main__":
    asyncio.run(main())
