"""Running ``dlmsctl`` and ``dlms`` as the user does (subprocesses), for the ctl tests."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

DLMSCTL = [sys.executable, "-c", "from dlmsd.ctl.cli import main; main()"]


def dlmsctl(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*DLMSCTL, *args], capture_output=True, text=True, timeout=timeout,
                          check=False)


def once_json(path: Path) -> tuple[int, dict[str, Any], str]:
    """``dlms --once --json``, numbers read exactly (Decimal)."""
    result = subprocess.run([sys.executable, "-m", "dlmsd", "-c", str(path), "--once",
                             "--json"], capture_output=True, text=True, timeout=120,
                            check=False)
    doc = json.loads(result.stdout, parse_float=Decimal) if result.stdout.strip() else {}
    return result.returncode, doc, result.stderr


def check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dlmsd", "-c", str(path), "--check"],
                          capture_output=True, text=True, timeout=60, check=False)
