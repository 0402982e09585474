"""The meters of the benchmark: dlms-sim's ``Simulator`` in a child process.

The bundled model (``dlmsd/sim/meter.json``, whose registers are the ten read below)
plus two load profiles that dlms-sim's JSON model cannot express: 96 rows of
{date-time (octet-string of 12), uint32} (``PROFILE_1``) and of {date-time, 3 x uint32}
(``PROFILE_3``), fixed values.  One process serves every TCP connection (each one its
own association; every simulated meter of the scale runs is one connection).

    python scripts/benchlib/sim.py [--max-pdu 4096] [--max-info 128]

prints dlms-sim's ready line (``dlms-sim listening hdlc=... wrapper=...``) and serves
until its stdin is closed.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dlmsd.protocol.axdr import Data, DateTime  # noqa: E402
from dlmsd.protocol.obis import Obis  # noqa: E402

#: The ten registers (class 3) of the bundled model that every scan reads.
REGISTERS = ("1.0.1.8.0.255", "1.0.2.8.0.255", "1.0.1.7.0.255", "1.0.32.7.0.255",
             "1.0.52.7.0.255", "1.0.72.7.0.255", "1.0.31.7.0.255", "1.0.14.7.0.255",
             "1.0.13.7.0.255", "0.0.96.9.0.255")
PROFILE_1 = "1.0.99.1.0.255"
PROFILE_3 = "1.0.99.2.0.255"
ROWS = 96


def profile_value(columns: int) -> Data:
    """96 quarter-hour rows of one day: {date-time, ``columns`` x uint32}."""
    rows = []
    for k in range(ROWS):
        stamp = DateTime(2026, 1, 1, k // 4, 15 * (k % 4), 0)
        cells = [Data.uint32(100000 + 7 * k + c) for c in range(columns)]
        rows.append(Data.structure(Data.octets(stamp.to_bytes()), *cells))
    return Data.array(*rows)


class Quiet:
    """A logger that drops everything."""

    def bind(self, **_fields: object) -> Quiet:
        return self

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


async def serve(max_pdu: int, max_info: int) -> None:
    from dlmsd.sim.cli import SimSettings, Simulator
    from dlmsd.sim.model import (
        CosemObject,
        InterfaceClass,
        Meter,
        MeterModel,
        ReadContext,
        bundled_model_path,
        load_model,
    )

    class Fixed:
        def __init__(self, value: Data) -> None:
            self._value = value

        def value(self, ctx: ReadContext) -> Data:
            return self._value

    profile = InterfaceClass(7, 1, "profile-generic", (
        "logical_name", "buffer", "capture_objects", "capture_period", "sort_method",
        "sort_object", "entries_in_use", "profile_entries"))
    model = load_model(bundled_model_path())
    extra = tuple(CosemObject(profile, Obis.parse(code), f"Load profile, {n} column(s)",
                              {2: Fixed(profile_value(n))})
                  for code, n in ((PROFILE_1, 1), (PROFILE_3, 3)))
    model = MeterModel(model.name, model.seed, (*model.objects, *extra))
    settings = SimSettings(hdlc_port=0, wrapper_port=0, max_pdu=max_pdu, max_info=max_info)
    async with Simulator(Meter(model), settings, log=Quiet()) as sim:
        print(sim.ready_line(), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


class SimProcess:
    """A simulator child process; ``ports`` {"hdlc": ..., "wrapper": ...}."""

    def __init__(self, max_pdu: int = 4096, max_info: int = 128) -> None:
        self.child = subprocess.Popen(
            [sys.executable, __file__, "--max-pdu", str(max_pdu), "--max-info", str(max_info)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.child.stdout is not None
        line = self.child.stdout.readline()
        self.ports = {p.split("=")[0]: int(p.rsplit(":", 1)[1]) for p in line.split()[2:]}
        if not self.ports:
            self.close()
            raise SystemExit(f"the simulator did not start: {line!r}")

    def cpu(self) -> float:
        """The child's user + system CPU seconds so far (from /proc)."""
        fields = Path(f"/proc/{self.child.pid}/stat").read_text().rsplit(")", 1)[1].split()
        import os
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        if self.child.stdin is not None:
            self.child.stdin.close()
        try:
            self.child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.child.kill()
            self.child.wait()
        if self.child.stdout is not None:
            self.child.stdout.close()

    def __enter__(self) -> SimProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-pdu", type=int, default=4096)
    parser.add_argument("--max-info", type=int, default=128)
    args = parser.parse_args()
    asyncio.run(serve(args.max_pdu, args.max_info))


if __name__ == "__main__":
    main()
