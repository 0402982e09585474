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
