"""Real frames, captured from the benchmark's simulator (dlms-sim) over TCP loopback.

dlmsd's own session (``DlmsSession`` with a ``TcpTransport`` that records every write
and read) associates with the simulator and reads; the octets on the wire are cut into
HDLC frames (by their length field) or wrapper PDUs (by their 8-octet header).  The
requests are dlmsd's, the responses dlms-sim's.  The same recording gives the wire
economy of a scan (octets and round trips), and, on a second association with the same
``SessionContext``, what a reconnect reads again.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlmsd.config import load_config
from dlmsd.poller import SessionContext
from dlmsd.protocol.apdu import decode_apdu
from dlmsd.protocol.hdlc_frame import Frame, strip_llc
from dlmsd.protocol.obis import Obis
from dlmsd.protocol.reader import AttributeRequest
from dlmsd.session import DlmsSession
from dlmsd.trace import FrameTracer
from dlmsd.transport.tcp import TcpTransport

from . import configs
from .sim import PROFILE_1, PROFILE_3, REGISTERS, Quiet


class RecordingTransport(TcpTransport):
    """A TcpTransport that keeps every chunk written and read, in order."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(host, port)
        self.log: list[tuple[str, bytes]] = []

    async def write(self, data: bytes) -> None:
        self.log.append(("tx", bytes(data)))
        await super().write(data)

    async def read(self, timeout: float) -> bytes:
        data = await super().read(timeout)
        self.log.append(("rx", bytes(data)))
        return data

    def mark(self) -> int:
        return len(self.log)

    def stream(self, since: int, direction: str) -> bytes:
        return b"".join(d for k, d in self.log[since:] if k == direction)

    def writes(self, since: int) -> int:
        return sum(1 for k, _ in self.log[since:] if k == "tx")


def split_hdlc(stream: bytes) -> list[bytes]:
    """Cut a byte stream of back-to-back HDLC frames (flag, format+length, ..., flag)."""
    frames, pos = [], 0
    while pos < len(stream):
        if stream[pos] != 0x7E:
            pos += 1
            continue
        length = ((stream[pos + 1] & 0x07) << 8) | stream[pos + 2]
        frames.append(stream[pos:pos + length + 2])
        pos += length + 2
    return frames


def split_wrapper(stream: bytes) -> list[bytes]:
    """Cut a stream of wrapper PDUs (version, source, destination, length: 8 octets)."""
    pdus, pos = [], 0
    while pos + 8 <= len(stream):
        length = int.from_bytes(stream[pos + 6:pos + 8], "big")
        pdus.append(stream[pos:pos + 8 + length])
        pos += 8 + length
    return pdus


def requests_of(link: str, stream: bytes) -> list[str]:
    """The APDUs a client sent (their trace descriptions), RR and link frames left out."""
    out = []
    if link == "hdlc":
        for raw in split_hdlc(stream):
            frame = Frame.from_bytes(raw)
            if frame.information:
                out.append(decode_apdu(strip_llc(frame.information, response=False)).describe())
    else:
        out = [decode_apdu(pdu[8:]).describe() for pdu in split_wrapper(stream)]
    return out


def request(code: str, class_id: int = 3, attribute: int = 2) -> AttributeRequest:
    return AttributeRequest(code, Obis.parse(code), attribute, class_id)


@dataclass
class Captured:
    """What was read, as the frames on the wire (HDLC) and per-scan figures."""

    #: name -> (request frames, response frames)
    frames: dict[str, tuple[list[bytes], list[bytes]]] = field(default_factory=dict)
    #: link -> figures of one 10-register scan and of the associations
    wire: dict[str, dict[str, Any]] = field(default_factory=dict)


async def _session(port: int, link: str, where: Path, context: SessionContext | None,
                   class_id: int | None) -> tuple[DlmsSession, RecordingTransport,
                                                  SessionContext]:
    cfg = load_config(configs.write(
        {"devices": [configs.device("cap", port, link)],
         "signals": configs.signals("cap", class_id=class_id)}, where / f"cap-{link}.json"))
    dev = cfg.devices[0]
    quiet = Quiet()
    if context is None:
        context = SessionContext(FrameTracer(quiet, False), quiet)
    transport = RecordingTransport(dev.ip or "", dev.port or 0)
    return DlmsSession(dev, transport, context), transport, context


async def _read(session: DlmsSession, transport: RecordingTransport,
                requests: Sequence[AttributeRequest]) -> int:
    mark = transport.mark()
    results = await session.read(requests)
    bad = [r for r in results if r.error is not None]
    if bad:
        raise SystemExit(f"capture: the simulator refused {bad}")
    return mark


async def capture(ports: dict[str, int]) -> Captured:
    out = Captured()
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(tmp)
        # The codec's frames, over HDLC (class ids given: no object list).
        session, tr, _ = await _session(ports["hdlc"], "hdlc", where, None, 3)
        await session.open()
        try:
            one = [request(REGISTERS[0])]
            ten = [request(code) for code in REGISTERS]
            await _read(session, tr, one)  # its scaler_unit first, then the value
            mark = await _read(session, tr, one)
            out.frames["get1"] = (split_hdlc(tr.stream(mark, "tx")),
                                  split_hdlc(tr.stream(mark, "rx")))
            await _read(session, tr, ten)
            mark = await _read(session, tr, ten)
            out.frames["list10"] = (split_hdlc(tr.stream(mark, "tx")),
                                    split_hdlc(tr.stream(mark, "rx")))
            for name, code in (("lp1", PROFILE_1), ("lp3", PROFILE_3)):
                mark = await _read(session, tr, [request(code, 7)])
                out.frames[name] = (split_hdlc(tr.stream(mark, "tx")),
                                    split_hdlc(tr.stream(mark, "rx")))
        finally:
            await session.close()
        # Wire economy: signals without class ids (the object list is read), two
        # associations with the same context (the poller's reconnect).
        for link in ("hdlc", "wrapper"):
            figures: dict[str, Any] = {}
            context = None
            for assoc in ("first", "reconnect"):
                session, tr, context = await _session(ports[link], link, where, context, None)
                await session.open()
                try:
                    opened = tr.mark()
                    figures[f"{assoc}_open_writes"] = tr.writes(0)  # SNRM, AARQ
                    ten = [AttributeRequest(f"cap_{i}", Obis.parse(code), 2, None)
                           for i, code in enumerate(REGISTERS)]
                    await _read(session, tr, ten)
                    figures[f"{assoc}_requests"] = requests_of(link, tr.stream(opened, "tx"))
                    mark = await _read(session, tr, ten)
                    figures["scan_tx"] = len(tr.stream(mark, "tx"))
                    figures["scan_rx"] = len(tr.stream(mark, "rx"))
                    figures["scan_writes"] = tr.writes(mark)
                finally:
                    await session.close()
            out.wire[link] = figures
    return out


def run(ports: dict[str, int]) -> Captured:
    return asyncio.run(capture(ports))
