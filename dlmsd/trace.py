"""Frame tracing (``--dlms``) and the per-device flight recorder.

Every frame a device's transport sends or receives goes through its
:class:`FrameTracer`: it is always kept in a short ring (the flight recorder, dumped
to the log when the device fails: the last :data:`DEPTH` frames, or fewer when their
octets pass :data:`BUDGET`, so that a device's recorder stays small and large frames,
such as an object list's, do not stay in it for long) and, when ``--dlms`` is on,
printed at once as hex with a one-line decoded summary.  Summaries come from the pure
layers' ``describe`` functions, which mask secrets; the log renderer masks them
again.  They may come deferred (:data:`~dlmsd.protocol.actions.Summary`): the recorder
keeps the octets and makes the text only when it is printed, so that a quiet device
does not describe every frame it exchanges.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from dlmsd.protocol.actions import LazySummary, Summary, text_of

__all__ = ["BUDGET", "DEPTH", "FrameTracer", "TracedFrame"]

#: The flight recorder keeps at most this many frames...
DEPTH = 16
#: ... and drops the oldest while their octets (and :data:`SUMMARY_ALLOWANCE` for each
#: summary, made or still to be made) are more than this; the newest frame always stays.
BUDGET = 1536
#: What a summary counts against the budget: a fixed allowance, since a deferred one
#: has no length until it is made (and making it to measure it would undo the saving).
SUMMARY_ALLOWANCE = 64


class TracedFrame(LazySummary):
    """One frame of the flight recorder; its summary is made when first read."""

    __slots__ = ("at", "data", "direction")

    def __init__(self, at: float, direction: str, data: bytes, summary: Summary) -> None:
        super().__init__(summary)
        self.at = at  # monotonic seconds
        self.direction = direction  # "tx" or "rx"
        self.data = data


class FrameTracer:
    """Traces one device's frames; keeps the last ``depth`` of them, within
    ``budget`` (see :data:`BUDGET`)."""

    def __init__(self, log: Any, enabled: bool, depth: int = DEPTH, *,
                 dump_log: Any | None = None, budget: int = BUDGET) -> None:
        self.log = log
        #: Where the flight recorder goes: a logger that follows ``-d`` (its lines are
        #: warnings), while ``log`` prints ``--dlms`` traces whatever the level.
        self.dump_log = dump_log if dump_log is not None else log
        self.enabled = enabled
        self.recent: deque[TracedFrame] = deque(maxlen=depth)
        self.budget = budget
        self._held = 0  # what the frames in ``recent`` count against the budget

    def _record(self, direction: str, data: bytes, summary: Summary) -> None:
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
                          summary=frame.summary, size=len(frame.data))

    def frame(self, direction: str, data: bytes, summary: Summary = "") -> None:
        """A frame sent ("tx") or received ("rx"): the links' trace hook."""
        self._record(direction, data, summary)

    def apdu(self, direction: str, summary: Summary) -> None:
        """A whole APDU (after reassembly), decoded; printed with ``--dlms`` only (a
        deferred summary is never made otherwise)."""
        if self.enabled:
            self.log.info(f"dlms_apdu_{direction}", summary=text_of(summary))

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
    return len(frame.data) + SUMMARY_ALLOWANCE
