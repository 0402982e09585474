"""One end of a data link, HDLC or wrapper, client or meter (pure, sans-I/O).

The application layer above a link wants whole APDUs and notice of the link going up
or down; it should not care whether HDLC (IEC 62056-46) or the TCP wrapper
(IEC 62056-47) carries them, nor repeat that adaptation for the meter simulator.
:class:`HdlcLink` and :class:`WrapperLink` give both roles that one shape::

    link.receive_data(chunk)
    while (event := link.next_event()) is not NEED_DATA:
        ...                              # ApduReceived, Connected, Disconnected
    out = link.data_to_send()            # what the link sends by itself (RR, segments)

The client role adds ``opening()`` (SNRM), ``send_apdu()``, ``retry()`` for a
timeout, ``closing()`` (DISC) and ``idle``.  The meter role adds ``send_apdu()`` for
the answer, ``acknowledge()`` for an unconfirmed service and the client addresses it
serves: the configured one and, when ``public_sap`` is given, the public client's
(SAP 16, which every meter has).  A meter's connection belongs to the client address
of its first frame, for its life; frames from another client address are dropped
before the HDLC state machine sees them (IEC 62056-46: a station ignores frames it is
not the addressee of), wrapper frames between other wPorts likewise; both are counted
in ``ignored_frames`` and the client hears nothing, as with a real meter.

``trace`` (given to a meter's end; set by the meter reader on a client's end, which
queues the traces with its other actions) sees every frame sent and received as
``(direction, octets, one-line summary)``; the summaries never carry a secret (they
describe headers).  A summary is handed over deferred (a
:data:`~dlmsd.protocol.actions.Summary`: ``text_of(summary)`` makes it), since most
traces are never printed.
"""

from __future__ import annotations

from collections.abc import Callable

from dlmsd.errors import LinkOutOfStep
from dlmsd.protocol import hdlc, wrapper
from dlmsd.protocol.actions import Summary
from dlmsd.protocol.hdlc import ApduReceived, Connected, Disconnected
from dlmsd.protocol.hdlc_frame import (
    NEED_DATA,
    FrameTrace,
    HdlcAddress,
    HdlcDeframer,
    HdlcParameters,
    NeedData,
    TraceHook,
    decode_server_address,
)
from dlmsd.protocol.wrapper import Role

__all__ = [
    "ApduReceived",
    "Connected",
    "Disconnected",
    "HdlcLink",
    "LinkEvent",
    "LinkTrace",
    "Role",
    "WrapperLink",
]

#: ``trace(direction, octets, summary)``; direction is "tx" or "rx", the summary
#: deferred (see :data:`~dlmsd.protocol.actions.Summary`).
LinkTrace = Callable[[str, bytes, Summary], None]


#: What a link reports, in both roles and for both kinds: the HDLC layer's events (the
#: wrapper has no link to set up, so it reports only ApduReceived).
LinkEvent = ApduReceived | Connected | Disconnected


def _served(client_sap: int, public_sap: int | None) -> tuple[int, ...]:
    """The client addresses a meter's link serves: the configured one first."""
    if public_sap is None or public_sap == client_sap:
        return (client_sap,)
    return (client_sap, public_sap)


class _TraceRelay:
    """Hands the HDLC layer's frame traces to the link's current ``trace``."""

    def __init__(self, trace: LinkTrace | None) -> None:
        self.trace = trace

    def hook(self, *directions: str) -> TraceHook:
        def hook(item: FrameTrace) -> None:
            if self.trace is not None and item.direction in directions:
                self.trace(item.direction, item.raw, item.summary)

        return hook


class HdlcLink:
    """One HDLC end (IEC 62056-46) for one client address; build it with
    :meth:`client` or :meth:`meter`."""

    def __init__(self, role: Role, connection: hdlc.HdlcClientConnection
                 | hdlc.HdlcServerConnection, relay: _TraceRelay, *,
                 saps: tuple[int, ...] = (), server: HdlcAddress | None = None) -> None:
        self.role = role
        self._relay = relay
        self.connection = connection
        self._saps = saps
        self._server = server
        # The meter's first stage cuts frames so that foreign client addresses can be
        # dropped; the connection's own deframer then bounds them by the negotiated size.
        self._frames: HdlcDeframer | None = None  # set by meter()
        self._client: HdlcAddress | None = (HdlcAddress(saps[0], None, 1)
                                            if len(saps) == 1 else None)
        self.ignored_frames = 0

    @classmethod
    def client(cls, client_sap: int, server_address: bytes) -> HdlcLink:
        """The client (primary station) of the meter at ``server_address`` (encoded);
        its reader sets ``trace``."""
        relay = _TraceRelay(None)
        return cls(Role.CLIENT, hdlc.HdlcClientConnection(
            client_sap, server_address, trace=relay.hook("tx", "rx")), relay)

    @classmethod
    def meter(cls, server_address: bytes, client_sap: int, *, max_info: int,
              max_apdu_size: int, trace: LinkTrace | None = None,
              public_sap: int | None = None) -> HdlcLink:
        """The meter (secondary station) at ``server_address`` (encoded), serving
        ``client_sap`` (and ``public_sap``); ``max_info`` is offered both ways."""
        # Received frames are traced once, by the first stage.
        relay = _TraceRelay(trace)
        connection = hdlc.HdlcServerConnection(server_address, max_info_tx=max_info,
                                               max_info_rx=max_info,
                                               max_apdu_size=max_apdu_size,
                                               trace=relay.hook("tx"))
        link = cls(Role.SERVER, connection, relay, saps=_served(client_sap, public_sap),
                   server=decode_server_address(server_address))
        link._frames = HdlcDeframer(trace=relay.hook("rx"))
        return link

    # -- both roles ---------------------------------------------------------------

    @property
    def trace(self) -> LinkTrace | None:
        return self._relay.trace

    @trace.setter
    def trace(self, trace: LinkTrace | None) -> None:
        self._relay.trace = trace

    def receive_data(self, data: bytes) -> None:
        if self._frames is not None:
            self._frames.receive_data(data)
        else:
            self.connection.receive_data(data)

    def next_event(self) -> LinkEvent | NeedData:
        """The next event; the client role raises :class:`~dlmsd.errors.LinkOutOfStep`
        when the meter rejects a frame (FRMR: the link must be set up again) and
        :class:`~dlmsd.errors.RemoteProtocolError` when it breaks the protocol."""
        while True:
            event = self.connection.next_event()
            if isinstance(event, ApduReceived | Connected | Disconnected):
                return event
            if isinstance(event, hdlc.FrameRejected):
                raise LinkOutOfStep(f"meter rejected a frame (FRMR): "
                                          f"{', '.join(event.reasons) or 'no reason given'}")
            if event is not NEED_DATA:
                continue  # PeerBusy: keep waiting; the caller's timeout polls with RR
            if self._frames is None or not self._take_frame():
                return NEED_DATA

    def _take_frame(self) -> bool:
        """Meter role: move one frame of a served client to the connection."""
        assert self._frames is not None
        while True:
            frame = self._frames.next_frame()
            if frame is NEED_DATA:
                return False
            if self._client is None and frame.destination == self._server and (
                    frame.source.size == 1 and frame.source.upper in self._saps):
                self._client = frame.source  # the connection's client from now on
            if frame.source == self._client:
                self.connection.receive_data(frame.to_bytes())
                return True
            self.ignored_frames += 1

    @property
    def pending_octets(self) -> int:
        """Octets received that are not an event yet (segments, unparsed frames)."""
        outer = self._frames.buffered if self._frames is not None else 0
        return outer + self.connection.pending_octets

    def send_apdu(self, apdu: bytes, *, repeatable: bool = True) -> bytes:
        """``repeatable`` (client role): the meter may be given the request again as a
        new frame when its answer is lost for good (see ``HdlcClientConnection``)."""
        connection = self.connection
        if isinstance(connection, hdlc.HdlcClientConnection):
            return connection.send_apdu(apdu, repeatable=repeatable)
        return connection.send_apdu(apdu)

    def data_to_send(self) -> bytes:
        return self.connection.data_to_send()

    # -- client role --------------------------------------------------------------

    def _client_connection(self) -> hdlc.HdlcClientConnection:
        assert isinstance(self.connection, hdlc.HdlcClientConnection)
        return self.connection

    @property
    def idle(self) -> bool:
        """No exchange under way: an APDU may be sent (after a timeout it may not)."""
        return self._client_connection().state is hdlc.HdlcClientState.IDLE

    @property
    def params(self) -> HdlcParameters | None:
        return self.connection.params

    @property
    def frames_heard(self) -> int:
        """Frames the meter sent us so far (any kind, good FCS): it is there."""
        return self._client_connection().frames_heard

    @property
    def replayed(self) -> int:
        """I frames the meter sent again that we had already (set aside, not
        delivered twice: IEC 62056-46 duplicate handling)."""
        return self.connection.duplicates

    @property
    def noise_octets(self) -> int:
        """Octets received that were no part of a frame (flags between frames aside)."""
        return self.connection.deframer.garbage_bytes

    @property
    def resends(self) -> int:
        """Frames sent again: SNRM, DISC or a request after a timeout, an I frame the
        meter's RR asked for again, a poll for a segment that did not come."""
        return self._client_connection().retransmissions

    def opening(self) -> bytes | None:
        """SNRM."""
        return self._client_connection().connect()

    def retry(self) -> bytes:
        """What to send when an answer is overdue (SNRM again, or RR with poll)."""
        return self._client_connection().retransmit()

    def closing(self) -> bytes | None:
        """DISC, unless the link is down already."""
        connection = self._client_connection()
        if connection.state is hdlc.HdlcClientState.DISCONNECTED:
            return None
        return connection.disconnect()

    # -- meter role ---------------------------------------------------------------

    @property
    def client_sap(self) -> int:
        """The client address served on this connection (the first served one before
        any frame came)."""
        return self._client.upper if self._client is not None else self._saps[0]

    def acknowledge(self) -> bytes:
        """Answer a request of an unconfirmed service: RR, no APDU."""
        connection = self.connection
        assert isinstance(connection, hdlc.HdlcServerConnection)
        return connection.acknowledge()

    @property
    def dropped(self) -> int:
        """Frames dropped as bad (CRC, format, too long) or foreign."""
        inner = self.connection.deframer
        outer = self._frames if self._frames is not None else inner
        return (self.ignored_frames + self.connection.ignored_frames + outer.crc_errors
                + outer.format_errors + outer.overflows + inner.overflows)


class WrapperLink:
    """One wrapper end (IEC 62056-47): client wPort ``client_sap``, server wPort
    ``wport`` (the logical device); build it with :meth:`client` or :meth:`meter`.

    A wrong wrapper version or a length above ``max_apdu_size`` desynchronises the
    TCP stream for good: ``next_event`` then raises
    :class:`~dlmsd.errors.DecodeError` and the connection must be closed.
    """

    def __init__(self, role: Role, wport: int, saps: tuple[int, ...], *,
                 max_apdu_size: int, trace: LinkTrace | None) -> None:
        self.role = role
        self._wport = wport
        self._saps = saps
        self._max_apdu_size = max_apdu_size
        self.trace = trace
        self._early = bytearray()  # meter role: before a served client's first frame
        self._dropped_early = 0
        self._last = b""  # client role: the last frame sent, for a resend
        self.resends = 0  # client role: requests sent again after a timeout
        self.connection: wrapper.WrapperConnection | None = None
        if len(saps) == 1:
            self._connect(saps[0])

    @classmethod
    def client(cls, client_sap: int, wport: int, *,
               max_apdu_size: int = wrapper.MAX_LENGTH) -> WrapperLink:
        """The client's end; its reader sets ``trace``."""
        return cls(Role.CLIENT, wport, (client_sap,), max_apdu_size=max_apdu_size,
                   trace=None)

    @classmethod
    def meter(cls, wport: int, client_sap: int, *, max_apdu_size: int,
              trace: LinkTrace | None = None, public_sap: int | None = None) -> WrapperLink:
        return cls(Role.SERVER, wport, _served(client_sap, public_sap),
                   max_apdu_size=max_apdu_size, trace=trace)

    def _connect(self, client_sap: int) -> None:
        meter = self.role is Role.SERVER
        self.connection = wrapper.WrapperConnection(
            client_wport=client_sap, server_wport=self._wport, role=self.role,
            max_apdu_size=self._max_apdu_size, strict_ports=not meter)

    def _traced(self, direction: str, frame: bytes, prefix: str = "") -> bytes:
        if self.trace is not None:
            self.trace(direction, frame, lambda: prefix + wrapper.describe(frame))
        return frame

    # -- both roles ---------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        if self.connection is None:
            data = self._bind(data)
            if self.connection is None:
                return
        self.connection.receive_data(data)

    def _bind(self, data: bytes) -> bytes:
        """Meter role, before the connection's client is known: drop whole frames that
        are not between a served client and our wPort; the first one that is binds the
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
        if self.trace is not None:
            self._traced("rx", wrapper.WrapperHeader(
                event.source, event.destination, len(event.apdu)).to_bytes() + event.apdu)
        return ApduReceived(event.apdu)

    @property
    def pending_octets(self) -> int:
        """Octets received that are not an event yet (a frame not complete)."""
        held = self.connection.buffered if self.connection is not None else 0
        return len(self._early) + held

    def send_apdu(self, apdu: bytes, *, repeatable: bool = True) -> bytes:
        """(``repeatable`` is for the HDLC link: the wrapper resends nothing itself.)"""
        assert self.connection is not None  # meter role: an ApduReceived came first
        self._last = self._traced("tx", self.connection.send_apdu(apdu))
        return self._last

    def data_to_send(self) -> bytes:
        return b""

    # -- client role --------------------------------------------------------------

    idle = True  # every request stands alone on the wrapper
    params = None
    # A repeated or stale answer reaches the client as an APDU (it sets it aside), and
    # a stream out of step is refused at once: nothing is set aside here.
    replayed = 0
    noise_octets = 0

    def opening(self) -> bytes | None:
        return None

    def retry(self) -> bytes:
        self.resends += 1
        return self._traced("tx", self._last, "resend ")

    def closing(self) -> bytes | None:
        return None

    # -- meter role ---------------------------------------------------------------

    @property
    def client_sap(self) -> int:
        """The client wPort served on this connection."""
        return self.connection.client_wport if self.connection is not None else self._saps[0]

    def acknowledge(self) -> bytes:
        """Answer a request of an unconfirmed service: nothing (the wrapper has no
        acknowledgement)."""
        return b""

    @property
    def ignored_frames(self) -> int:
        dropped = self.connection.dropped_frames if self.connection is not None else 0
        return self._dropped_early + dropped
