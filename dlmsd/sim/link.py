"""The simulated meter's end of one link, HDLC or wrapper (pure, sans-I/O).

This module adapts the protocol layers' server ends to what the simulator needs from
one TCP connection: whole request APDUs in, response APDUs out, and notice of the
link going up or down (which ends the association).  Both classes have the shape of
the protocol layers::

    link.receive_data(chunk)
    while (event := link.next_event()) is not NEED_DATA:
        ...                                  # ApduIn, LinkUp, LinkDown
        out += link.data_to_send()           # what the link answered by itself
        out += link.send_apdu(response)      # after an ApduIn (or link.acknowledge())
    out += link.data_to_send()

The configured client address is served and, when ``public_sap`` is given, the public
client's too (SAP 16, which every meter has): a connection belongs to the client
address of its first frame, for its life.  HDLC frames from another client
address are dropped before the HDLC state machine sees them (IEC 62056-46: a station
ignores frames it is not the addressee of; the data link of a meter serves the client
SAPs it has associations for); wrapper frames between other wPorts are dropped.  Both
are counted in ``ignored_frames``; the client hears nothing and times out, as it would
with a real meter.
"""

from __future__ import annotations

from dataclasses import dataclass

from dlmsd.protocol import hdlc, wrapper
from dlmsd.protocol.hdlc import (
    NEED_DATA,
    FrameTrace,
    HdlcAddress,
    HdlcDeframer,
    HdlcServerConnection,
    NeedData,
    TraceHook,
    decode_server_address,
)

__all__ = [
    "ApduIn",
    "HdlcServerLink",
    "LinkDown",
    "LinkEvent",
    "LinkUp",
    "WrapperServerLink",
]


@dataclass(frozen=True)
class ApduIn:
    """A complete request APDU; answer it with ``send_apdu``."""

    apdu: bytes


@dataclass(frozen=True)
class LinkUp:
    """The data link was (re)established (HDLC UA sent): any association ends."""

    detail: str


@dataclass(frozen=True)
class LinkDown:
    """The data link was released (HDLC DISC): any association ends."""

    reason: str


LinkEvent = ApduIn | LinkUp | LinkDown


class HdlcServerLink:
    """The meter's HDLC end (IEC 62056-46) for one client address.

    ``server_address`` is the encoded server address
    (:func:`~dlmsd.protocol.hdlc.encode_server_address`); ``max_info`` the largest
    information field offered in both directions.  ``trace`` sees every frame sent
    and every frame received (also those dropped as bad or foreign).
    """

    def __init__(self, server_address: bytes, client_sap: int, *, max_info: int,
                 max_apdu_size: int, trace: TraceHook | None = None,
                 public_sap: int | None = None) -> None:
        self._trace = trace
        # The first stage cuts frames so that foreign client addresses can be dropped;
        # the connection's own deframer then bounds them by the negotiated size.
        self._frames = HdlcDeframer(trace=trace)
        self._server = decode_server_address(server_address)
        self._saps = _served(client_sap, public_sap)
        self._client: HdlcAddress | None = (HdlcAddress(client_sap, None, 1)
                                            if len(self._saps) == 1 else None)
        self.connection = HdlcServerConnection(
            server_address, max_info_tx=max_info, max_info_rx=max_info,
            max_apdu_size=max_apdu_size, trace=self._trace_tx if trace is not None else None)
        self.ignored_frames = 0

    def _trace_tx(self, item: FrameTrace) -> None:
        # Received frames are traced once, by the first stage.
        if item.direction == "tx" and self._trace is not None:
            self._trace(item)

    def receive_data(self, data: bytes) -> None:
        self._frames.receive_data(data)

    def next_event(self) -> LinkEvent | NeedData:
        while True:
            event = self.connection.next_event()
            if isinstance(event, hdlc.ApduReceived):
                return ApduIn(event.apdu)
            if isinstance(event, hdlc.Connected):
                params = event.params
                return LinkUp(f"max_info tx={params.max_info_tx} rx={params.max_info_rx}")
            if isinstance(event, hdlc.Disconnected):
                return LinkDown(event.reason)
            if event is not NEED_DATA:
                continue  # FrameRejected, PeerBusy: client-side events only
            frame = self._frames.next_frame()
            if frame is NEED_DATA:
                return NEED_DATA
            if self._client is None and frame.destination == self._server and (
                    frame.source.size == 1 and frame.source.upper in self._saps):
                self._client = frame.source  # the connection's client from now on
            if frame.source != self._client:
                self.ignored_frames += 1
                continue
            self.connection.receive_data(frame.to_bytes())

    @property
    def client_sap(self) -> int:
        """The client address served on this connection (the first served one before
        any frame came)."""
        return self._client.upper if self._client is not None else self._saps[0]

    def send_apdu(self, apdu: bytes) -> bytes:
        return self.connection.send_apdu(apdu)

    def acknowledge(self) -> bytes:
        """Answer a request of an unconfirmed service: RR, no APDU."""
        return self.connection.acknowledge()

    def data_to_send(self) -> bytes:
        return self.connection.data_to_send()

    @property
    def dropped(self) -> int:
        """Frames dropped as bad (CRC, format, too long) or foreign."""
        deframer = self._frames
        inner = self.connection.deframer
        return (self.ignored_frames + self.connection.ignored_frames + deframer.crc_errors
                + deframer.format_errors + deframer.overflows + inner.overflows)


class WrapperServerLink:
    """The meter's wrapper end (IEC 62056-47): server wPort ``wport`` (the logical
    device), client wPort ``client_sap``.

    A wrong wrapper version or a length above ``max_apdu_size`` desynchronises the
    TCP stream for good: ``next_event`` then raises
    :class:`~dlmsd.errors.DecodeError` and the connection must be closed.
    """

    def __init__(self, wport: int, client_sap: int, *, max_apdu_size: int,
                 public_sap: int | None = None) -> None:
        self._wport = wport
        self._saps = _served(client_sap, public_sap)
        self._max_apdu_size = max_apdu_size
        self._early = bytearray()  # before the first frame of a served client came
        self._dropped_early = 0
        self.connection: wrapper.WrapperConnection | None = None
        if len(self._saps) == 1:
            self._connect(client_sap)

    def _connect(self, client_sap: int) -> None:
        self.connection = wrapper.WrapperConnection(
            client_wport=client_sap, server_wport=self._wport, role=wrapper.Role.SERVER,
            max_apdu_size=self._max_apdu_size, strict_ports=False)

    @property
    def client_sap(self) -> int:
        """The client wPort served on this connection."""
        return self.connection.client_wport if self.connection is not None else self._saps[0]

    def receive_data(self, data: bytes) -> None:
        if self.connection is None:
            data = self._bind(data)
            if self.connection is None:
                return
        self.connection.receive_data(data)

    def _bind(self, data: bytes) -> bytes:
        """Before the connection's client is known: drop whole frames that are not
        between a served client and our wPort; the first one that is binds the
        connection to its client.  Returns what the connection is to be fed."""
        self._early += data
        while len(self._early) >= wrapper.HEADER_SIZE:
            header = wrapper.WrapperHeader.from_bytes(bytes(self._early[:wrapper.HEADER_SIZE]))
            ours = header.source in self._saps and header.destination == self._wport
            if ours or header.version != wrapper.WRAPPER_VERSION or (
                    header.length > self._max_apdu_size):
                # ours, or a stream the connection will refuse (and close) itself
                self._connect(header.source if ours else self._saps[0])
                rest, self._early = bytes(self._early), bytearray()
                return rest
            end = wrapper.HEADER_SIZE + header.length
            if len(self._early) < end:
                return b""
            del self._early[:end]
            self._dropped_early += 1
        return b""

    def next_event(self) -> LinkEvent | NeedData:
        if self.connection is None:
            return NEED_DATA
        event = self.connection.next_event()
        if event is NEED_DATA:
            return NEED_DATA
        assert isinstance(event, wrapper.ApduReceived)
        return ApduIn(event.apdu)

    def send_apdu(self, apdu: bytes) -> bytes:
        assert self.connection is not None  # an ApduIn came first
        return self.connection.send_apdu(apdu)

    def acknowledge(self) -> bytes:
        """Answer a request of an unconfirmed service: nothing (the wrapper has no
        acknowledgement)."""
        return b""

    def data_to_send(self) -> bytes:
        return b""

    @property
    def ignored_frames(self) -> int:
        dropped = self.connection.dropped_frames if self.connection is not None else 0
        return self._dropped_early + dropped


def _served(client_sap: int, public_sap: int | None) -> tuple[int, ...]:
    """The client addresses a link serves: the configured one first."""
    if public_sap is None or public_sap == client_sap:
        return (client_sap,)
    return (client_sap, public_sap)
