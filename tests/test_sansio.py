"""The pure core imports no I/O: no asyncio, socket, serial or time (STYLE.md rule 1)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PURE = sorted((Path(__file__).resolve().parent.parent / "dlmsd" / "protocol").glob("*.py"))
PURE += [Path(__file__).resolve().parent.parent / "dlmsd" / name
         for name in ("addressing.py", "errors.py", "sim/model.py", "sim/server.py",
                      "sim/line.py", "sim/fault.py", "sim/profile.py", "readers.py",
                      "ctl/inputs.py")]
FORBIDDEN = {"asyncio", "socket", "serial", "serial_asyncio", "time", "selectors", "threading"}


@pytest.mark.parametrize("path", PURE, ids=lambda p: p.name)
def test_pure_module_imports_no_io(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
    assert not imported & FORBIDDEN, f"{path.name} imports {sorted(imported & FORBIDDEN)}"


def test_there_are_pure_modules() -> None:
    assert len(PURE) >= 3
