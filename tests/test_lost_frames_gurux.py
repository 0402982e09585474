"""Lost and corrupted frames between the daemon and gurux_dlms's meter (issue 12).

A TCP proxy (:mod:`faulty_proxy`) loses or corrupts one whole frame of an association
(SNRM, AARQ, GETs of the object list, the scaler_units and the values, RLRQ, DISC; the
object list comes back in HDLC segments) and the daemon reads three registers once
(`dlms --once` through the supervisor).  Before issue 12, a lost request, a lost reply
or a corrupted reply ended the association with "nothing to retransmit in state IDLE",
"RR(nr=2,P) from the server: N(R) must be 1" or "expected N(S)=1".

gurux_dlms 1.0.203's meter does not follow ISO/IEC 13239 checkpointing: it counts an RR
poll as a received frame, does not resend on a poll and ignores a repeated I frame
(tests/interop/NOTES.md).  The client resends the request itself, and when a meter stays
silent asks anew past the lost answer. What cannot be recovered on the same link (an
FRMR, a lost segment gurux's meter moves past) ends the session with
``LinkOutOfStep``/``AnswerLost``, and the poller associates again at once and redoes
the scan (once per scan).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from faulty_proxy import FaultyProxy
from interop.gurux_meter import DEFAULT_REGISTERS, GuruxMeter

from dlmsd.config import parse_config
from dlmsd.supervisor import Supervisor

pytestmark = pytest.mark.interop

REGISTERS = [r.obis for r in DEFAULT_REGISTERS][:3]
EXPECTED = {"1.0.1.8.0.255": Decimal(12345678), "1.0.2.8.0.255": Decimal(4321000),
            "1.0.32.7.0.255": Decimal("230.1")}
TIMEOUT_MS = 500


def config(port: int, kind: str) -> Any:
    device: dict[str, Any] = {
        "name": "g", "device_alias": "g", "protocol": "DLMS", "client_address": 16,
        "ip": "127.0.0.1", "port": port, "timeout_ms": TIMEOUT_MS, "retry_counter": 2,
        "logical_address": 1, "max_list_size": 10}
    if kind == "hdlc":
        device.update(mode="DLMS-HDLC", address_size=2, physical_address=17)
    else:
        device.update(mode="DLMS-WRAPPER")
    signals = [{"signal_name": o, "device_alias": "g", "signal_alias": f"s{i}", "obis": o}
               for i, o in enumerate(REGISTERS)]
    return parse_config({"devices": [device], "signals": signals})


async def read_through(kind: str, **faults: Any) -> tuple[str | None, dict[str, Any],
                                                            list[str]]:
    with GuruxMeter(kind) as meter:
        async with FaultyProxy(kind, meter.port, **faults) as proxy:
            snapshot = await Supervisor(config(proxy.port, kind)).run_once()
    values = {s.obis: s.value for s in snapshot.signals}
    return snapshot.devices[0].error, values, proxy.log


# Frame numbers, per direction. To the meter: 1 SNRM, 2 AARQ, 3 GET object list, 4 RR
# for its 2nd segment, ...; to the client: 1 UA, 2 AARE, 3 the object list's 1st segment,
# ... 7 its last segment.
RECOVERED = (
    [("drop_to_meter", n) for n in range(1, 8)]
    + [(fault, n) for fault in ("drop_to_client", "corrupt_to_client")
       for n in (1, 2, 4, 5, 6)]
)
# The first or the last segment of a segmented answer lost: gurux's meter takes our poll
# for the next segment as the acknowledgement of the lost one, and ignores the request
# asked anew while its answer is under way. The link is out of step (LinkOutOfStep, or
# AnswerLost: the meter was heard, the answer never came whole), and the poller
# associates again at once and redoes the scan.
OUT_OF_STEP = [(fault, n) for fault in ("drop_to_client", "corrupt_to_client")
               for n in (3, 7)]
# A corrupted frame to the meter: gurux's meter answers FRMR (its link rejected the
# frame); IEC 62056-46 / ISO/IEC 13239 have the primary set the link up again. The
# poller associates again at once and redoes the scan. 1 SNRM, 2 AARQ, 3 GET object
# list, 5 RR for a segment of it.
FRAME_REJECTED = [("corrupt_to_meter", n) for n in (1, 2, 3, 5)]


@pytest.mark.parametrize(("fault", "frame"), RECOVERED)
async def test_one_lost_or_corrupted_frame_is_recovered(fault: str, frame: int) -> None:
    error, values, log = await read_through("hdlc", **{fault: {frame}})
    assert log, "the fault was not applied"
    assert error is None, error
    assert values == EXPECTED


@pytest.mark.parametrize(("fault", "frame"), OUT_OF_STEP + FRAME_REJECTED)
async def test_an_out_of_step_link_is_associated_again_at_once(fault: str,
                                                                frame: int) -> None:
    error, values, log = await read_through("hdlc", **{fault: {frame}})
    assert log, "the fault was not applied"
    assert error is None, error
    assert values == EXPECTED


async def test_a_meter_that_rejects_every_frame_goes_offline() -> None:
    """The redo is once per scan: with a frame of every association corrupted (the
    AARQ of the first, the SNRM of the second, ...) the device fails after one
    association made again, with the FRMR named."""
    error, _values, log = await read_through("hdlc", corrupt_to_meter={2, 4, 6, 8})
    assert error is not None and "FRMR" in error, error
    # two associations: SNRM and AARQ each, and a DISC after each; nothing more
    assert log == ["corrupted frame 2 to the meter", "corrupted frame 4 to the meter"], log


async def test_a_late_reply_over_the_wrapper_is_stale_not_fatal() -> None:
    """Wrapper: the AARE held past the timeout; the AARQ is resent, gurux's meter answers
    both, and the second AARE is set aside as stale."""
    error, values, log = await read_through("wrapper",
                                            delay_to_client={1: 1.5 * TIMEOUT_MS / 1000})
    assert log and error is None, error
    assert values == EXPECTED


@pytest.mark.parametrize("frame", [1, 2, 3])
async def test_a_lost_request_over_the_wrapper_is_resent(frame: int) -> None:
    error, values, log = await read_through("wrapper", drop_to_meter={frame})
    assert log and error is None, error
    assert values == EXPECTED
