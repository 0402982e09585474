"""The simulated meters on one serial line (pure, sans-I/O).

A serial line (an RS-485 bus, an RS-232 cable, an optical probe) carries HDLC for one
or more meters, each with its own HDLC address and association, optionally after the
IEC 62056-21 protocol mode E opening.  :class:`SerialLine` takes the octets the
simulator reads from the line and returns what to do, in order::

    for action in line.receive_data(chunk, now):
        if isinstance(action, Send):       # after action.delay seconds
            port.write(action.data)
        elif isinstance(action, SetLine):  # once everything before is on the wire
            port.reconfigure(*action.settings)
        else:                              # Note: something to log
            log.debug(action.event, **action.fields)

and, when nothing arrived for :meth:`SerialLine.timeout` seconds, ``on_timeout()``.

Every meter sees every frame and answers only its own address (IEC 62056-46: a
station ignores frames it is not the addressee of); a frame for an address nobody has
goes unanswered, as on a real bus.

Mode E (``identification`` given).  The line starts at 300 Bd 7E1 waiting for a request
(:class:`~dlmsd.protocol.iec62056_21.ModeEServer`).  The device address of each meter
is its physical HDLC address in decimal ("/?17!" CR LF, leading zeros ignored);
"/?!" CR LF is answered by the first meter.  The identification goes out after the
reaction time, the option select switches the line to 8N1 at the selected rate and the
bytes after it go to HDLC.  The line returns to 300 Bd and waits for a request when a
meter's HDLC link is released (DISC), after :data:`INACTIVITY_TIMEOUT` without a byte,
or when a chunk that starts with "/?" arrives (a client that began again without
releasing; HDLC frames start with 0x7E).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from typing import Final

from dlmsd.protocol import iec62056_21 as iec
from dlmsd.protocol.actions import Action, LineSettings, Note, Send, SetLine, Summary, text_of
from dlmsd.protocol.hdlc_frame import NEED_DATA, encode_server_address
from dlmsd.protocol.link import ApduReceived, Connected, HdlcLink, LinkTrace
from dlmsd.sim.server import MeterServer

__all__ = [
    "INACTIVITY_TIMEOUT",
    "LineSettings",
    "Note",
    "Send",
    "SerialLine",
    "SetLine",
]

#: Seconds without a byte after which a meter in mode E falls back to the opening
#: (the Green Book's default HDLC inactivity_time_out, 120 s).
INACTIVITY_TIMEOUT: Final = 120.0

FrameHook = Callable[[int, str, bytes, str], None]  # physical, direction, octets, summary


class _Meter:
    """One meter on the line: its HDLC end and its association."""

    def __init__(self, physical: int, address: bytes, make_link: Callable[[], HdlcLink],
                 server: MeterServer) -> None:
        self.physical = physical
        self.address = address
        self._make_link = make_link
        self.link = make_link()
        self.server = server
        self.requests = 0

    def restart(self) -> None:
        self.link = self._make_link()
        self.server.reset()


class SerialLine:
    """The meters on one line; see the module text.

    ``meters``: physical address -> that meter's :class:`MeterServer` (in line
    order).  ``logical``, ``address_size``, ``client_sap``, ``max_info``,
    ``max_apdu_size``: as for one TCP meter.  ``identification``: with mode E, what
    the meters answer (its baud character is the highest rate offered); None: the
    line carries HDLC from the start at ``baudrate``.  ``trace`` sees every frame
    with the physical address of the meter whose link saw it.
    """

    def __init__(self, meters: dict[int, MeterServer], *, logical: int = 1,
                 address_size: int = 2, client_sap: int = 16, max_info: int = 128,
                 max_apdu_size: int = 2048, baudrate: int = 9600,
                 identification: iec.IdentificationMessage | None = None,
                 trace: FrameHook | None = None) -> None:
        if not meters:
            raise ValueError("a serial line needs at least one meter")
        self.baudrate = baudrate
        self._meters: dict[int, _Meter] = {}
        for physical, server in meters.items():
            address = encode_server_address(
                logical, None if address_size == 1 else physical, address_size)
            hook = None if trace is None else _bind(trace, physical)
            make = functools.partial(HdlcLink.meter, address, client_sap, max_info=max_info,
                                     max_apdu_size=max_apdu_size, trace=hook)
            self._meters[physical] = _Meter(physical, address, make, server)
        self.mode_e: iec.ModeEServer | None = None
        if identification is not None:
            # One identification for all; "/?!" CR LF reaches the first meter.
            idents = {"": identification, **{str(p): identification for p in meters}}
            self.mode_e = iec.ModeEServer(idents)
        self._opening = self.mode_e is not None
        self._answering: int | None = None  # the meter that answered the last request

    # ------------------------------------------------------------------ state
    @property
    def in_opening(self) -> bool:
        """True while the line waits for (or runs) the mode E opening at 300 Bd."""
        return self._opening

    @property
    def initial_settings(self) -> LineSettings:
        return iec.OPENING_LINE if self.mode_e is not None else (self.baudrate, 8, "N", 1)

    def requests(self) -> dict[int, int]:
        """APDUs answered so far, per physical address."""
        return {p: m.requests for p, m in self._meters.items()}

    def remove(self, physical: int) -> None:
        """Unplug a meter: from now on nobody answers its address."""
        self._meters.pop(physical, None)

    def timeout(self) -> float | None:
        """Seconds of silence after which ``on_timeout()`` is due (None: never)."""
        if self.mode_e is None:
            return None
        if self._opening:
            return self.mode_e.timeout() if self.mode_e.waiting_for_option else None
        return INACTIVITY_TIMEOUT

    def on_timeout(self) -> list[Action]:
        """Nothing arrived for ``timeout()`` seconds."""
        if self.mode_e is None:
            return []
        if self._opening:
            self.mode_e.reset()
            return [Note("iec_no_option_select")]
        return self._back_to_opening("inactivity")

    # ------------------------------------------------------------------ input
    def receive_data(self, data: bytes, now: datetime) -> list[Action]:
        actions: list[Action] = []
        if self.mode_e is not None and not self._opening and data.startswith(b"/?"):
            actions += self._back_to_opening("request while in HDLC")
        if self._opening:
            assert self.mode_e is not None
            self.mode_e.receive_data(data)
            data = b""
            while (opening := self.mode_e.next_event()) is not iec.NEED_DATA:
                if isinstance(opening, iec.RequestReceived):
                    if opening.answer is None:
                        actions.append(Note("iec_request_for_another", {
                            "address": opening.address}))
                        continue
                    actions.append(Note("iec_request", {"address": opening.address}))
                    actions.append(Send(opening.answer.to_bytes(), opening.min_reaction_time))
                elif isinstance(opening, iec.OptionRefused):
                    actions.append(Note("iec_option_refused", {"reason": opening.reason}))
                else:
                    self._opening = False
                    actions.append(Note("iec_switched", {"baud_rate": opening.baud_rate}))
                    actions.append(SetLine((opening.baud_rate, opening.bytesize, opening.parity,
                                            opening.stopbits)))
                    data = opening.trailing
                    break
            if not data:
                return actions
        out = bytearray()
        back_to_opening = False
        for meter in list(self._meters.values()):
            link = meter.link
            link.receive_data(data)
            while (event := link.next_event()) is not NEED_DATA:
                out += link.data_to_send()
                if isinstance(event, ApduReceived):
                    meter.requests += 1
                    response = meter.server.handle(event.apdu, now)
                    out += link.send_apdu(response) if response else link.acknowledge()
                    actions.append(Note("apdu", {"physical": meter.physical,
                                                 "request": event.apdu,
                                                 "response": response}))
                else:
                    meter.server.reset()  # the association does not outlive the link
                    up = isinstance(event, Connected)
                    actions.append(Note("link_up" if up else "link_down", {
                        "physical": meter.physical, "detail": str(event)}))
                    if not up and self.mode_e is not None:
                        back_to_opening = True
            out += link.data_to_send()
        if out:
            actions.append(Send(bytes(out)))
        if back_to_opening:
            actions += self._back_to_opening("link released")
        return actions

    def _back_to_opening(self, reason: str) -> list[Action]:
        assert self.mode_e is not None
        for meter in self._meters.values():
            meter.restart()
        self.mode_e.reset()
        self._opening = True
        return [Note("iec_back_to_opening", {"reason": reason}), SetLine(iec.OPENING_LINE)]


def _bind(trace: FrameHook, physical: int) -> LinkTrace:
    def hook(direction: str, data: bytes, summary: Summary) -> None:
        trace(physical, direction, data, text_of(summary))
    return hook
