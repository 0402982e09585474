"""Frame tracing (``--dlms``) and the per-device flight recorder.

Every frame a device's transport sends or receives goes through its
:class:`FrameTracer`: it is always kept in a short ring (the flight recorder, dumped
to the log when the device fails) and, when ``--dlms`` is on, printed at once as hex
with a one-line decoded summary. Summaries come from the pure layers' ``describe``
functions, which mask secrets; the log renderer masks them again.  They may come
deferred (:data:`~dlmsd.protocol.actions.Summary`): the recorder keeps the octets and
makes the text only when it is printed, so that a quiet device does not describe
every frame it exchanges.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from dlmsd.protocol.actions import Summary, text_of

__all__ = ["FrameTracer", "TracedFrame"]


class TracedFrame:
    """One frame of the flight recorder; its summary is made when first read."""

    __slots__ = ("_summary", "at", "data", "direction")

    def __init__(self, at: float, direction: str, data: bytes, summary: Summary) -> None:
        self.at = at  # monotonic seconds
        self.direction = direction  # "tx" or "rx"
        self.data = data
        self._summary = summary

    @property
    def summary(self) -> str:
        text = self._summary
        if not isinstance(text, str):
            text = self._summary = text()
        return text


class FrameTracer:
    """Traces one device's frames; keeps the last ``depth`` of them."""

    def __init__(self, log: Any, enabled: bool, depth: int = 32, *,
                 dump_log: Any | None = None) -> None:
        self.log = log
        #: Where the flight recorder goes: a logger that follows ``-d`` (its lines are
        #: warnings), while ``log`` prints ``--dlms`` traces whatever the level.
        self.dump_log = dump_log if dump_log is not None else log
        self.enabled = enabled
        self.recent: deque[TracedFrame] = deque(maxlen=depth)

    def _record(self, direction: str, data: bytes, summary: Summary) -> None:
        frame = TracedFrame(time.monotonic(), direction, bytes(data), summary)
        self.recent.append(frame)
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
