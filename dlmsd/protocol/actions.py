"""What a pure protocol driver asks its I/O layer to do, in order (sans-I/O).

The meter reader (:mod:`dlmsd.protocol.reader`) and the simulated serial line
(:mod:`dlmsd.sim.line`) both hand their transport a list of these; the transport
carries them out in order::

    for action in actions:
        if isinstance(action, Send):       # after action.delay seconds
            port.write(action.data)
        elif isinstance(action, SetLine):  # once everything before is on the wire
            port.reconfigure(*action.settings)
        elif isinstance(action, Trace):    # a frame (or an APDU: data None) for --dlms
            tracer.frame(action.direction, action.data, action.summary)
        else:                              # Note: something to log
            log.log(action.level, action.event, **action.fields)
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Action", "LineSettings", "Note", "Send", "SetLine", "Trace"]

LineSettings = tuple[int, int, str, int]  # baud rate, data bits, parity, stop bits


@dataclass(frozen=True)
class Send:
    """Write ``data`` to the line, ``delay`` seconds from now (a reaction time)."""

    data: bytes
    delay: float = 0.0


@dataclass(frozen=True)
class SetLine:
    """Switch the line to ``settings`` once everything written so far has left."""

    settings: LineSettings


@dataclass(frozen=True)
class Note:
    """Something worth a log line: ``event`` and its fields, at syslog-style
    ``level`` ("debug", "info", "warning"); never a secret."""

    event: str
    fields: dict[str, object] = field(default_factory=dict)
    level: str = "debug"


@dataclass(frozen=True)
class Trace:
    """A frame sent or received (``data``: its octets) or a whole APDU (``data`` None),
    ``direction`` "tx" or "rx", with a one-line ``summary`` that carries no secret."""

    direction: str
    summary: str
    data: bytes | None = None


Action = Send | SetLine | Note | Trace
