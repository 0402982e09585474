"""An in-memory line between a :class:`~dlmsd.protocol.reader.MeterReader` and the
simulated meter (no sockets, no asyncio, no real time).

* :class:`Clock`: a float the driver advances to the reader's timer.
* :class:`MemoryMeter`: the simulator's meter end, as ``dlms-sim`` wires it (the meter
  end of an HDLC or wrapper link, then :class:`~dlmsd.sim.server.MeterServer`); it
  records every request APDU and link event it saw.
* :class:`SerialMeter`: the simulator's serial line (:class:`~dlmsd.sim.line.SerialLine`),
  HDLC after the IEC 62056-21 mode E opening.
* :class:`Wire`: carries the reader's ``Send`` actions to the meter and the meter's
  answers back, in order (a stream: a delayed answer delays every later one), and can
  be made adversarial by frame number (1-based, counted per direction): drop a frame
  to the meter, drop an answer, corrupt one octet (a bad HDLC FCS), delay an answer,
  or inject octets at a given time.  :meth:`Wire.run` is the driver loop.
"""

from __future__ import annotations

from collections.abc import Callable, Container
from dataclasses import dataclass, field
from datetime import UTC, datetime

from dlmsd.protocol import hdlc_frame
from dlmsd.protocol import iec62056_21 as iec
from dlmsd.protocol.actions import Note, Send, SetLine, Trace
from dlmsd.protocol.apdu import decode_apdu
from dlmsd.protocol.link import ApduReceived, Connected, Disconnected, HdlcLink, WrapperLink
from dlmsd.protocol.reader import MeterReader
from dlmsd.protocol.sn import ReadRequest, VariableName, decode_sn_apdu
from dlmsd.protocol.xdlms import (
    ConfirmedServiceError,
    ConfirmedServiceErrorChoice,
    CosemAttributeDescriptor,
    ExceptionResponse,
    ExceptionServiceError,
    GetRequestNormal,
    GetRequestWithList,
    ServiceErrorType,
    StateError,
)
from dlmsd.sim.line import SerialLine
from dlmsd.sim.model import Meter, MeterModel, bundled_model_path, load_model
from dlmsd.sim.server import MeterServer, ServerOptions

__all__ = ["MODEL", "SIM_NOW", "Clock", "MemoryMeter", "SerialMeter", "Stuck", "Wire"]

MODEL: MeterModel = load_model(bundled_model_path())
#: The meter's wall clock (the model is not live: values do not depend on it).
SIM_NOW = datetime(2024, 6, 1, 10, 0, tzinfo=UTC)
#: HDLC server address of the meter: logical 1, physical 17, 2 octets.
HDLC_LOGICAL, HDLC_PHYSICAL = 1, 17


class Stuck(AssertionError):
    """The driver loop found nothing to deliver and no timer, or ran too long."""


@dataclass
class Clock:
    """Fake time, in seconds; only the driver moves it."""

    now: float = 1000.0


class MemoryMeter:
    """One simulated meter behind one link end, in memory.

    ``refuse_with_list``: the meter offers multiple-references in the AARE but refuses
    every GET-with-list (ExceptionResponse service-not-supported) and every SN Read of
    several variables (confirmed-service-error read, service, service-unsupported):
    the meters the reader's ``no_get_with_list`` quirk is for.  (``ServerOptions(
    get_with_list=False)``, dlms-sim's ``--no-get-with-list``, leaves the bit out of
    the negotiated conformance instead, so a client never asks.)
    """

    def __init__(self, kind: str, options: ServerOptions | None = None, *,
                 client_sap: int = 16, max_info: int = 128, max_apdu_size: int = 4096,
                 refuse_with_list: bool = False) -> None:
        self.kind = kind
        self.options = options if options is not None else ServerOptions()
        self.link: HdlcLink | WrapperLink
        if kind == "hdlc":
            address = hdlc_frame.encode_server_address(HDLC_LOGICAL, HDLC_PHYSICAL, 2)
            self.link = HdlcLink.meter(address, client_sap, max_info=max_info,
                                       max_apdu_size=max_apdu_size)
        else:
            self.link = WrapperLink.meter(HDLC_LOGICAL, client_sap,
                                          max_apdu_size=max_apdu_size)
        self.server = MeterServer(Meter(MODEL), self.options)
        self.refuse_with_list = refuse_with_list
        self.requests: list[bytes] = []  # every request APDU, as the link delivered it
        self.link_events: list[str] = []  # "up" (SNRM), "down" (DISC)

    def feed(self, data: bytes) -> bytes:
        """What the simulator's I/O loop does with one chunk from the line (cli._serve)."""
        link = self.link
        link.receive_data(data)
        out = bytearray()
        while (event := link.next_event()) is not hdlc_frame.NEED_DATA:
            out += link.data_to_send()
            if isinstance(event, ApduReceived):
                self.requests.append(event.apdu)
                response = self._answer(event.apdu)
                out += link.send_apdu(response) if response else link.acknowledge()
            else:
                assert isinstance(event, Connected | Disconnected)
                self.link_events.append("up" if isinstance(event, Connected) else "down")
                self.server.reset()
        return bytes(out + link.data_to_send())

    def _answer(self, apdu: bytes) -> bytes:
        if self.refuse_with_list and self.is_with_list(apdu):
            if self.options.short_names:
                return ConfirmedServiceError(ConfirmedServiceErrorChoice.READ,
                                             ServiceErrorType.SERVICE, 2).to_bytes()
            return ExceptionResponse(StateError.SERVICE_NOT_ALLOWED,
                                     ExceptionServiceError.SERVICE_NOT_SUPPORTED).to_bytes()
        return self.server.handle(apdu, SIM_NOW)

    # -- what the meter saw (plain APDUs only: not for ciphered associations) ---------

    def is_with_list(self, apdu: bytes) -> bool:
        """A GET-with-list, or an SN Read of several variables."""
        if self.options.short_names:
            if apdu[:1] != bytes([ReadRequest.TAG]):
                return False
            request = decode_sn_apdu(apdu)
            return isinstance(request, ReadRequest) and len(request.variables) > 1
        return len(apdu) > 1 and apdu[0] == 0xC0 and apdu[1] == 3

    def reads(self) -> list[object]:
        """The decoded data requests (GET or SN Read/Write), in order."""
        decoded: list[object] = []
        for apdu in self.requests:
            if apdu[0] in (0x60, 0x62):  # AARQ, RLRQ
                continue
            decoded.append(decode_sn_apdu(apdu) if self.options.short_names
                           else decode_apdu(apdu))
        return decoded

    def attributes_read(self) -> list[tuple[tuple[str, int], ...]]:
        """Per data request, the (OBIS, attribute) pairs it reads; () for a request of
        the next block."""
        out: list[tuple[tuple[str, int], ...]] = []
        for request in self.reads():
            items: tuple[CosemAttributeDescriptor, ...]
            if isinstance(request, GetRequestNormal):
                items = (request.descriptor,)
            elif isinstance(request, GetRequestWithList):
                items = tuple(item.descriptor for item in request.attributes)
            elif isinstance(request, ReadRequest):
                names = [v.short_name for v in request.variables if isinstance(v, VariableName)]
                targets = [MODEL.short_names.find(name) for name in names]
                out.append(tuple((str(t.obj.logical_name), t.attribute)
                                 for t in targets if t is not None))
                continue
            else:
                out.append(())
                continue
            out.append(tuple((str(d.instance_id), d.attribute_id) for d in items))
        return out

    def invoke_ids(self) -> list[int]:
        """The invoke-id of each GET request (LN), in order (resends included)."""
        return [apdu[2] & 0x0F for apdu in self.requests if apdu[:1] == b"\xc0"]

    def with_list_requests(self) -> int:
        return sum(self.is_with_list(apdu) for apdu in self.requests)

    @property
    def saw_release(self) -> bool:
        return any(apdu[:1] == b"\x62" for apdu in self.requests)


class SerialMeter:
    """Meters on a simulated serial line (:class:`~dlmsd.sim.line.SerialLine`, with
    the IEC 62056-21 mode E opening when ``identification`` is given); ``feed``
    returns the line's actions (sends with their reaction time, line settings)."""

    def __init__(self, physical: int, identification: iec.IdentificationMessage | None,
                 options: ServerOptions | None = None) -> None:
        self.server = MeterServer(Meter(MODEL), options)
        self.line = SerialLine({physical: self.server}, logical=HDLC_LOGICAL,
                               identification=identification)
        self.notes: list[Note] = []
        self.line_settings: list[SetLine] = []

    def feed(self, data: bytes) -> list[Send]:
        sends: list[Send] = []
        for action in self.line.receive_data(data, SIM_NOW):
            if isinstance(action, Send):
                sends.append(action)
            elif isinstance(action, Note):
                self.notes.append(action)
            else:
                self.line_settings.append(action)
        return sends


@dataclass
class Wire:
    """The line between ``reader`` and ``meter``; see the module text."""

    reader: MeterReader
    meter: MemoryMeter | SerialMeter
    clock: Clock = field(default_factory=Clock)
    #: frame numbers (1-based) to drop on the way to the meter / to the reader
    drop_to_meter: Container[int] = field(default_factory=set)
    drop_to_client: Container[int] = field(default_factory=set)
    #: frame numbers to the meter / to the reader whose octet is flipped
    corrupt_to_meter: Container[int] = field(default_factory=set)
    corrupt_to_client: Container[int] = field(default_factory=set)
    #: answer number -> seconds it spends on the line
    delay_to_client: dict[int, float] = field(default_factory=dict)
    sent_to_meter: int = 0
    sent_to_client: int = 0
    answers: list[bytes] = field(default_factory=list)  # as the meter sent them
    notes: list[Note] = field(default_factory=list)
    frames_to_meter: list[bytes] = field(default_factory=list)  # as sent, before faults
    line_settings: list[SetLine] = field(default_factory=list)
    traces: list[Trace] = field(default_factory=list)
    _in_flight: list[tuple[float, int, bytes]] = field(default_factory=list)
    _seq: int = 0

    @property
    def now(self) -> float:
        return self.clock.now

    def inject(self, data: bytes, at: float) -> None:
        """Octets that reach the reader at ``at`` (not before what is already queued)."""
        self._queue(data, at)

    def _queue(self, data: bytes, at: float) -> None:
        # A stream: nothing overtakes what was sent before it.
        last = max((item[0] for item in self._in_flight), default=at)
        self._seq += 1
        self._in_flight.append((max(at, last), self._seq, data))
        self._in_flight.sort()

    def _to_meter(self, data: bytes) -> None:
        self.sent_to_meter += 1
        number = self.sent_to_meter
        self.frames_to_meter.append(data)
        if number in self.drop_to_meter:
            return
        if number in self.corrupt_to_meter:
            data = corrupt(data)
        answer = self.meter.feed(data)
        if isinstance(answer, list):  # a serial line: each send after its delay
            for send in answer:
                self._answer(send.data, send.delay)
        elif answer:
            self._answer(answer, 0.0)

    def _answer(self, answer: bytes, delay: float) -> None:
        self.sent_to_client += 1
        number = self.sent_to_client
        self.answers.append(answer)
        if number in self.drop_to_client:
            return
        if number in self.corrupt_to_client:
            answer = corrupt(answer)
        self._queue(answer, self.now + delay + self.delay_to_client.get(number, 0.0))

    def act(self) -> None:
        """Carry out the reader's actions (send, note, line settings)."""
        for action in self.reader.actions():
            if isinstance(action, Send):
                self._to_meter(action.data)
            elif isinstance(action, Note):
                # the session logs Note(event, **fields): a field named "event" would
                # clash with the log call's own argument
                assert "event" not in action.fields, action
                self.notes.append(action)
            elif isinstance(action, Trace):
                self.traces.append(action)
            else:
                self.line_settings.append(action)

    def step(self) -> None:
        """One thing happens: the next answer arrives, or the reader's timer fires."""
        timer = self.reader.get_timer()
        if self._in_flight and (timer is None or self._in_flight[0][0] <= timer):
            at, _, data = self._in_flight.pop(0)
            self.clock.now = max(self.clock.now, at)
            self.reader.receive_data(data, self.clock.now)
        elif timer is not None:
            self.clock.now = max(self.clock.now, timer)
            self.reader.handle_timer(self.clock.now)
        else:
            raise Stuck(f"nothing in flight and no timer while {self.reader.state.value}")

    def run(self, done: Callable[[], bool], limit: int = 10_000) -> None:
        """Act and step until ``done()``; the reader's errors propagate."""
        for _ in range(limit):
            self.act()
            if done():
                return
            self.step()
        raise Stuck(f"still {self.reader.state.value} after {limit} steps")

    def named(self, event: str) -> list[Note]:
        return [note for note in self.notes if note.event == event]


def corrupt(frame: bytes) -> bytes:
    """``frame`` with one octet of its FCS changed (never into a flag or an escape)."""
    index = len(frame) - 3 if len(frame) > 3 else len(frame) // 2
    for mask in (0x01, 0x02, 0x04, 0x10, 0x20):
        value = frame[index] ^ mask
        if value not in (0x7E, 0x7D):
            return frame[:index] + bytes([value]) + frame[index + 1:]
    raise AssertionError("cannot corrupt")  # pragma: no cover
