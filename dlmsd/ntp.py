"""Is the gateway's own clock synchronised?  The kernel's NTP state, read by adjtimex.

Linux keeps the state of its clock discipline (set by ntpd, chronyd or
systemd-timesyncd through adjtimex(2)/ntp_adjtime(3)).  :func:`gateway_clock_state`
calls ``adjtimex`` with ``modes = 0`` (read only, no privilege needed) through ctypes
and says the clock is synchronised exactly when both:

* the call's return value, the clock state, is not ``TIME_ERROR`` (5), and
* ``STA_UNSYNC`` (0x0040) is clear in ``timex.status``.

The kernel sets ``STA_UNSYNC`` at boot and whenever no NTP daemon has disciplined the
clock for a while (its ``maxerror`` grows past 16 s), and returns ``TIME_ERROR`` while
it is set; a daemon clears it once synchronised.  Where adjtimex cannot be called
(not Linux, no libc, an error), the state is *unknown*: the caller skips the sync
and says so.  (``esterror`` and ``maxerror`` are reported for the log.)
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import cache
from typing import Any, Final

__all__ = ["STA_UNSYNC", "TIME_ERROR", "GatewayClock", "gateway_clock_state"]

TIME_ERROR: Final = 5
STA_UNSYNC: Final = 0x0040


@cache
def _timex() -> Any:
    """struct timex of <sys/timex.h> (Linux), up to ``tai``, plus room for the rest.
    Defined on first use: ctypes costs memory that a daemon without clock_sync need
    not pay (issue 16)."""
    import ctypes

    class Timeval(ctypes.Structure):
        _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]

    class Timex(ctypes.Structure):
        _fields_ = [
            ("modes", ctypes.c_uint), ("offset", ctypes.c_long), ("freq", ctypes.c_long),
            ("maxerror", ctypes.c_long), ("esterror", ctypes.c_long),
            ("status", ctypes.c_int), ("constant", ctypes.c_long),
            ("precision", ctypes.c_long), ("tolerance", ctypes.c_long),
            ("time", Timeval), ("tick", ctypes.c_long), ("ppsfreq", ctypes.c_long),
            ("jitter", ctypes.c_long), ("shift", ctypes.c_int), ("stabil", ctypes.c_long),
            ("jitcnt", ctypes.c_long), ("calcnt", ctypes.c_long),
            ("errcnt", ctypes.c_long), ("stbcnt", ctypes.c_long), ("tai", ctypes.c_int),
            ("_reserved", ctypes.c_int * 11),
        ]
    return Timex


@dataclass(frozen=True)
class GatewayClock:
    """``synchronised``: True, False, or None (unknown: ``detail`` says why)."""

    synchronised: bool | None
    detail: str


def gateway_clock_state() -> GatewayClock:
    """The kernel's NTP state (see the module text); never raises."""
    if not sys.platform.startswith("linux"):
        return GatewayClock(None, f"adjtimex is Linux only (platform {sys.platform})")
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        adjtimex = libc.adjtimex
    except (OSError, AttributeError) as exc:
        return GatewayClock(None, f"adjtimex not available: {exc}")
    timex = _timex()()  # modes 0: read only
    state = int(adjtimex(ctypes.byref(timex)))
    if state < 0:
        return GatewayClock(None, f"adjtimex failed: errno {ctypes.get_errno()}")
    unsync = bool(timex.status & STA_UNSYNC)
    detail = (f"adjtimex: state {state}{' TIME_ERROR' if state == TIME_ERROR else ''}, "
              f"status 0x{timex.status:04X}{' STA_UNSYNC' if unsync else ''}, "
              f"maxerror {timex.maxerror} us, esterror {timex.esterror} us")
    return GatewayClock(state != TIME_ERROR and not unsync, detail)
