"""Frame tracing (``--dlms``) and the per-device flight recorder.

Every frame a device's transport sends or receives goes through its
:class:`FrameTracer`: it is always kept in a short ring (the flight recorder, dumped
to the log when the device fails: the last :data:`DEPTH` frames, or fewer when their
octets and summaries pass :data:`BUDGET`, so that a device's recorder stays small
and large frames, such as an object list's, do not stay in it for long) and, when
``--dlms`` is on, printed at once as hex with a one-line decoded summary.  Summaries
come from the pure layers' ``describe`` functions, which mask secrets; the log
renderer masks them again.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Any

__all__ = ["BUDGET", "DEPTH", "FrameTracer", "TracedFrame"]

#: The flight recorder keeps at most this many frames...
DEPTH = 16
#: ... and drops the oldest while their octets and summary characters are more than
#: this (the newest frame is always kept).
BUDGET = 1536


@dataclass(frozen=True, slots=True)
class TracedFrame:
    at: float  # monotonic seconds
    direction: str  # "tx" or "rx"
    data: bytes
    summary: str


class FrameTracer:
    """Traces one device's frames; keeps the last ``depth`` of them, within
    ``budget`` octets and characters."""

    def __init__(self, log: Any, enabled: bool, depth: int = DEPTH, *,
                 dump_log: Any | None = None, budget: int = BUDGET) -> None:
        self.log = log
        #: Where the flight recorder goes: a logger that follows ``-d`` (its lines are
        #: warnings), while ``log`` prints ``--dlms`` traces whatever the level.
        self.dump_log = dump_log if dump_log is not None else log
        self.enabled = enabled
        self.recent: deque[TracedFrame] = deque(maxlen=depth)
        self.budget = budget
        self._held = 0  # octets and summary characters of the frames in ``recent``

    def _record(self, direction: str, data: bytes, summary: str) -> None:
        frame = TracedFrame(time.monotonic(), direction, bytes(data), summary)
        recent = self.recent
        if len(recent) == recent.maxlen:
            self._held -= _size(recent[0])
        recent.append(frame)
        self._held += _size(frame)
        while self._held > self.budget and len(recent) > 1:
            self._held -= _size(recent.popleft())
        if self.enabled:
            self.log.info(f"dlms_{direction}", hex=frame.data.hex(" ").upper(),
                          summary=summary, size=len(frame.data))

    def frame(self, direction: str, data: bytes, summary: str = "") -> None:
        """A frame sent ("tx") or received ("rx"): the links' trace hook."""
        self._record(direction, data, summary)

    def apdu(self, direction: str, summary: str) -> None:
        """A whole APDU (after reassembly), decoded; printed with ``--dlms`` only."""
        if self.enabled:
            self.log.info(f"dlms_apdu_{direction}", summary=summary)

    def dump(self, reason: str) -> None:
        """Log the flight recorder (oldest first) after a failure."""
        if not self.recent:
            return
        last = self.recent[-1].at
        self.dump_log.warning("flight_recorder", reason=reason, frames=len(self.recent))
        for frame in self.recent:
            self.dump_log.warning("flight_frame", dir=frame.direction,
                                  age_ms=round((last - frame.at) * 1000),
                                  hex=frame.data.hex(" ").upper(), summary=frame.summary)
        self.recent.clear()
        self._held = 0


def _size(frame: TracedFrame) -> int:
    return len(frame.data) + len(frame.summary)
