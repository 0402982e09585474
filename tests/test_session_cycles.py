"""An ended session (against a hostile meter) is freed by reference counting at once,
not left in reference cycles until the next full garbage collection.

Found by ``scripts/soak --hostile``: every outage of a hostile meter left its reader
(link buffers, client), its TCP transport and its stream in cycles (the link's trace
hook bound to the reader, an answer callback closing over its own wait, the exchange
under way when the connection died, the lost connection's exception traceback). Those
objects outlive the session in the GC's oldest generation, collected only every few
hundred outages. Measured here with the collector off: after N failed sessions none of
their readers and transports may be alive. A real ``dlms-sim --fault`` subprocess is
the hostile meter, as in tests/test_sim_fault.py.
"""

from __future__ import annotations

import gc
import weakref
from pathlib import Path
from typing import Any

import pytest
from conftest import signal
from test_sim_fault import _device, faulty_sim

from dlmsd.config import parse_config
from dlmsd.errors import DlmsdError
from dlmsd.logsetup import get_logger
from dlmsd.poller import SessionContext
from dlmsd.protocol.reader import AttributeRequest
from dlmsd.session import make_session
from dlmsd.trace import FrameTracer

SESSIONS = 5


@pytest.mark.parametrize(("spec", "kind"), [("close-after-aare", "wrapper"),
                                            ("null-bomb", "wrapper"),
                                            ("flag-flood", "hdlc")])
async def test_failed_sessions_leave_no_cycles(tmp_path: Path, spec: str, kind: str) -> None:
    with faulty_sim(tmp_path, "--hdlc-port", "0", "--wrapper-port", "0",
                    "--fault", spec) as (ports, _log, _proc):
        config = parse_config({"devices": [_device(kind, ports[kind], timeout_ms=300,
                                                   retry_counter=0)],
                               "signals": [signal(device=kind)]})
        device = config.devices[0]
        log = get_logger(device=kind)
        context = SessionContext(FrameTracer(log, enabled=False), log)
        requests = [AttributeRequest("s1", config.signals[0].obis, 2, 3)]
        alive: list[weakref.ref[Any]] = []
        failures = 0
        gc.collect()
        gc.disable()
        try:
            for _ in range(SESSIONS):
                session = make_session(device, context)
                try:
                    await session.open()
                    await session.read(requests)
                except DlmsdError:
                    failures += 1
                finally:
                    reader = session.reader
                    await session.close()
                assert reader is not None
                alive += [weakref.ref(reader), weakref.ref(session.transport)]
                del session, reader
            left = [type(ref()).__name__ for ref in alive if ref() is not None]
        finally:
            gc.enable()
    assert failures == SESSIONS
    assert left == [], f"after {SESSIONS} failed sessions, still alive without a GC: {left}"
