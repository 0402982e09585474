"""The benchmark scripts run (their figures are reported, not asserted against times)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_bench_serial_scan_runs_and_reports() -> None:
    result = subprocess.run([sys.executable, str(REPO / "scripts/bench_serial_scan.py"),
                             "--scans", "3", "--max-list-size", "1"],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "round trips / scan:        10.0" in result.stdout
    assert "wire-time floor at 9600 Bd" in result.stdout


def test_bench_serial_scan_paced() -> None:
    """With dlms-sim --pace the scan cannot be faster than the wire-time floor."""
    result = subprocess.run([sys.executable, str(REPO / "scripts/bench_serial_scan.py"),
                             "--scans", "2", "--pace"],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "paced at 9600 Bd" in result.stdout
    ratio = float(result.stdout.split("measured / floor:")[1].split()[0])
    assert ratio >= 0.99, result.stdout


def test_bench_loop_latency_runs_and_reports() -> None:
    result = subprocess.run([sys.executable, str(REPO / "scripts/bench_loop_latency.py"),
                             "--healthy", "2", "--size", "100000", "--seconds", "1",
                             "--repeats", "1"],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for mode in ("healthy only", "inline", "off-load"):
        assert f"run 1 {mode:12}: loop worst stall" in out, out
        assert f"\n{mode:12}: loop worst stall max" in out, out
    assert "ratio inline / off-load (worst of the runs): loop stall" in out, out
    offloaded = [int(line.rsplit(" ", 1)[1]) for line in out.splitlines()
                 if line.startswith("run 1 off-load")]
    assert offloaded and offloaded[0] > 0, out  # the off-load run did off-load
