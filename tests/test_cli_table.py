"""``dlms --once`` table: long values wrap at a sane width (issue 12)."""

from __future__ import annotations

from dlmsd.cli import MAX_CELL, MIN_LAST_CELL, _table_text
from dlmsd.signals import DeviceState, DeviceStatus, SignalState, SignalStatus, Snapshot

HEX = "00AB" * 60  # 240 characters without a space
STRUCT = "structure{" + ", ".join(f"long-unsigned {i}" for i in range(30)) + "}"
ERROR = "the meter answered: " + " ".join(["object-unavailable"] * 12)


def _snapshot() -> Snapshot:
    return Snapshot(
        (DeviceState("m1", "127.0.0.1:4059", DeviceStatus.OFFLINE,
                     error="connection refused " * 10),),
        (SignalState("m1", "s1", "energy", "1.0.1.8.0.255", 2, value=1234, unit="Wh",
                     status=SignalStatus.OK, error=None),
         SignalState("m1", "hex", "id", "0.0.96.1.0.255", 2, value=HEX,
                     status=SignalStatus.OK, error=None),
         SignalState("m1", "struct", "list", "0.0.96.1.1.255", 2, value=STRUCT,
                     status=SignalStatus.OK, error=None),
         SignalState("m1", "bad", "bad", "0.0.96.1.2.255", 2, error=ERROR)),
    )


def test_rows_wrap_within_the_width() -> None:
    text = _table_text(_snapshot(), width=100)
    lines = text.splitlines()
    assert all(len(line) <= 100 for line in lines), "\n".join(lines)
    # nothing is lost: every value is there once its wrapped pieces are joined
    value_start = lines[0].index("VALUE")
    value_end = lines[0].index("UNIT")
    pieces = [line[value_start:value_end].strip() for line in lines[1:]]
    assert HEX in "".join(pieces)
    assert STRUCT.replace(" ", "") in "".join(pieces).replace(" ", "")
    assert "1234" in lines[1]
    error_start = lines[0].index("ERROR")
    errors = " ".join(line[error_start:].strip() for line in lines[1:]
                      if len(line) > error_start and line[error_start:].strip())
    assert ERROR in errors
    device_lines = [line for line in lines if "connection refused" in line]
    assert device_lines[0].startswith("device m1 127.0.0.1:4059: offline (")
    assert all(line.startswith("    ") for line in device_lines[1:])
    assert " ".join(device_lines).count("connection refused") == 10


def test_short_tables_are_unchanged() -> None:
    snapshot = Snapshot((DeviceState("m1", "p", DeviceStatus.ONLINE, error=None),),
                        (SignalState("m1", "s1", "e", "1.0.1.8.0.255", 2, value=5, unit="Wh",
                                     status=SignalStatus.OK, error=None),))
    assert _table_text(snapshot, width=100).splitlines() == [
        "DEVICE  SIGNAL  OBIS             VALUE  UNIT  STATUS  ERROR",
        "m1      s1      1.0.1.8.0.255:2  5      Wh    ok",
        "",
        "device m1 p: online",
    ]


def test_narrow_terminal_keeps_a_readable_minimum() -> None:
    lines = _table_text(_snapshot(), width=20).splitlines()
    header = lines[0]
    assert header.startswith("DEVICE")
    # columns are capped, the error column is at least MIN_LAST_CELL wide
    assert max(len(line) for line in lines) <= header.index("ERROR") + MIN_LAST_CELL
    assert header.index("UNIT") - header.index("VALUE") - 2 <= MAX_CELL
