"""Smoke test of scripts/bench (issue 16): the quick run works and prints its table.

Benchmarks are not timed tests: this asserts only that every section ran and printed
numbers, never a figure's value.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEADER = ["metric", "dlmsd", "gurux_dlms", "dlms-cosem", "floor", "ratios", "target", "result"]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_bench_quick_prints_the_table_with_numbers() -> None:
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench"), "--quick",
                          "--startup-devices", "20"],
                         capture_output=True, text=True, timeout=280, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("metric"))
    assert [c.strip() for c in lines[header].split("|")] == HEADER
    rows = [[c.strip() for c in line.split("|")] for line in lines[header + 2:] if "|" in line]
    by_metric = {row[0]: row for row in rows}
    assert all(len(row) == len(HEADER) for row in rows)
    number = re.compile(r"\d+(\.\d+)?")
    for prefix in ("decode 1 register", "encode GET-Request-With-List", "one meter",
                   "10 meters: RSS", "dlms --check", "import dlmsd.cli", "hdlc: 10-register",
                   "wrapper: reconnect"):
        row = next((r for m, r in by_metric.items() if m.startswith(prefix)), None)
        assert row is not None, f"no row {prefix!r} in\n{run.stdout}"
        assert number.search(row[1]) or row[1] in ("no", "yes"), row
        assert row[7] in ("PASS", "FAIL", "-"), row
    # every codec row has the dlmsd and floor figures (median [min-max]) and their ratio
    codec = [r for m, r in by_metric.items() if m.startswith(("decode", "encode"))]
    assert len(codec) == 10
    spread = re.compile(r"^\d+\.\d \[\d+\.\d-\d+\.\d\]$")
    for row in codec:
        assert spread.match(row[1]) and spread.match(row[4]), row
        assert "/floor" in row[5], row
