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
            tracer.frame(action.direction, action.data, action.describe)
        else:                              # Note: something to log
            log.log(action.level, action.event, **action.fields)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Action", "LazySummary", "LineSettings", "Note", "Send", "SetLine", "Summary", "Trace",
           "text_of"]

#: A trace's one-line summary: the text, or how to make it.  Describing a frame or an
#: APDU costs more than carrying it, and most traces are never printed (``--dlms`` is
#: off, the flight recorder is not dumped), so the pure layers hand over the how; the
#: callable must depend only on what it holds (immutable octets, a decoded frame),
#: never on state that changes afterwards.
Summary = str | Callable[[], str]


def text_of(summary: Summary) -> str:
    """The text of a summary (made now if it was deferred)."""
    return summary if isinstance(summary, str) else summary()


class LazySummary:
    """What has a :data:`Summary`: ``summary`` makes a deferred one the first time it is
    read, at most once (a trace here, a frame of the flight recorder)."""

    __slots__ = ("_summary",)

    def __init__(self, summary: Summary) -> None:
        self._summary = summary

    @property
    def summary(self) -> str:
        text = self._summary
        if not isinstance(text, str):
            text = self._summary = text()
        return text

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


class Trace(LazySummary):
    """A frame sent or received (``data``: its octets) or a whole APDU (``data`` None),
    ``direction`` "tx" or "rx", with a one-line ``summary`` that carries no secret.

    The summary may be given deferred (a :data:`Summary` callable): it is made the first
    time ``summary`` is read, at most once; ``describe`` hands it on still deferred.
    """

    __slots__ = ("data", "direction")

    def __init__(self, direction: str, summary: Summary, data: bytes | None = None) -> None:
        super().__init__(summary)
        self.direction = direction
        self.data = data

    @property
    def describe(self) -> Summary:
        """The summary as given: its text, or the callable that makes it."""
        return self._summary

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Trace):
            return NotImplemented
        return (self.direction, self.summary, self.data) == (
            other.direction, other.summary, other.data)

    def __hash__(self) -> int:
        return hash((self.direction, self.summary, self.data))

    def __repr__(self) -> str:
        return f"Trace(direction={self.direction!r}, summary={self.summary!r}, data={self.data!r})"


Action = Send | SetLine | Note | Trace
