"""scripts/bench_http_memory.py runs (one short repeat) and prints its figures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("extra", [[], ["--with-mqtt"]])
def test_bench_http_memory_runs_and_reports(extra: list[str]) -> None:
    """With ``--with-mqtt`` the script waits for the daemon's mqtt_connected (a broker
    of its own) before it measures, so a run that did not publish fails."""
    result = subprocess.run([sys.executable, str(REPO / "scripts/bench_http_memory.py"),
                             "--repeats", "1", "--signals", "2", "--requests", "3", *extra],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "run 1 no http: start-up" in out and "run 1 http   : start-up" in out
    for label in ("start-up  median:", "RSS       median:", "peak RSS  median:"):
        assert label in out and "ratio" in out.split(label)[1].splitlines()[0]
    assert "import    dlmsd.cli" in out
