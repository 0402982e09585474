"""HDLC data link layer of DLMS/COSEM (IEC 62056-46), sans-I/O.

This module owns the link state machines: :class:`HdlcClientConnection` (the
primary station, used by the daemon) and :class:`HdlcServerConnection` (the
secondary station, used by the meter simulator). The wire types they use live
in :mod:`dlmsd.protocol.hdlc_frame` and are re-exported here.

Both classes share one shape::

    conn.receive_data(octets)           # whatever the line delivered
    while (event := conn.next_event()) is not NEED_DATA:
        ...                             # Connected, ApduReceived, Disconnected, ...
    line.write(conn.data_to_send())     # RR acks, further segments, resends

Frames the caller asked for are returned by the call that asked (``connect()``,
``send_apdu()``, ``disconnect()``, ``retransmit()``); frames the protocol sends
by itself in answer to what arrived (RR for a segment, the next segment after
the peer's RR, an I frame the peer did not get) collect in ``data_to_send()``.

Only window size 1 is implemented (the default of IEC 62056-46 and what meters
use): after every I frame with the poll bit the sender waits for the answer.
Timers belong to the caller: when its timeout expires it calls
``retransmit()``; giving up after N tries is also the caller's decision.

Nothing here does I/O, reads a clock or logs.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass
from typing import ClassVar, Final, TypedDict, Unpack

from dlmsd.errors import LinkOutOfStep, LocalProtocolError, RemoteProtocolError
from dlmsd.protocol.hdlc_frame import (
    DEFAULT_MAX_INFO,
    DEFAULT_WINDOW,
    LLC_COMMAND,
    LLC_RESPONSE,
    MAX_FRAME_LENGTH,
    NEED_DATA,
    Control,
    Frame,
    FrameTrace,
    FrameType,
    HdlcAddress,
    HdlcDeframer,
    HdlcParameters,
    NeedData,
    TraceHook,
    add_llc,
    decode_server_address,
    next_state,
    strip_llc,
)

__all__ = [
    "MAX_APDU_SIZE",
    "MAX_INFO_LIMIT",
    "MIN_INFO_LIMIT",
    "ApduReceived",
    "Connected",
    "Disconnected",
    "Event",
    "FrameRejected",
    "HdlcClientConnection",
    "HdlcClientState",
    "HdlcServerConnection",
    "LinkOptions",
    "PeerBusy",
    "ServerState",
]

#: Largest maximum information field length we propose or accept as a setting
#: (IEC 62056-46 with A1: 2030, so that a frame fits the 11-bit length field).
MAX_INFO_LIMIT: Final = 2030
#: Smallest maximum information field length we accept as a setting.
MIN_INFO_LIMIT: Final = 32
#: Default bound on a reassembled APDU (octets, LLC header excluded).
MAX_APDU_SIZE: Final = 65535

_MOD: Final = 8  # sequence numbers are modulo 8
_FRMR_X: Final = 0x02  # FRMR reason: information field not permitted / invalid
_FRMR_Y: Final = 0x04  # FRMR reason: information field too long


# ---------------------------------------------------------------------------
# Events
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Connected:
    """The link is up. ``params`` are the negotiated values from this station's
    point of view (``max_info_tx`` is what it may send per frame)."""

    params: HdlcParameters


@dataclass(frozen=True)
class ApduReceived:
    """A complete APDU arrived (segments reassembled, LLC header removed)."""

    apdu: bytes


@dataclass(frozen=True)
class Disconnected:
    """The link is down. ``reason``: ``"UA"`` (our DISC was confirmed), ``"DM"``
    (the peer is in disconnected mode: it refused SNRM, or dropped the link,
    e.g. after its inactivity timeout) or ``"DISC"`` (the client disconnected;
    server side only)."""

    reason: str


@dataclass(frozen=True)
class FrameRejected:
    """The server answered FRMR: it rejected one of our frames. The link must
    be reset (``connect()``) or released (``disconnect()``).

    ``info`` is the FRMR information field as sent. In ISO/IEC 13239 (which
    IEC 62056-46 refers to) it holds the rejected control field, the server's
    V(S)/V(R) and the reason bits W (invalid control field), X (information
    field not permitted), Y (information field too long), Z (invalid N(R)).
    """

    info: bytes

    @property
    def rejected_control(self) -> int | None:
        return self.info[0] if self.info else None

    @property
    def reasons(self) -> tuple[str, ...]:
        if len(self.info) < 3:
            return ()
        names = ("W", "X", "Y", "Z")
        return tuple(name for bit, name in enumerate(names) if self.info[2] & (1 << bit))


@dataclass(frozen=True)
class PeerBusy:
    """The peer answered RNR: it cannot receive now. Wait, then call
    ``retransmit()`` to poll it; sending resumes once it answers RR."""

    nr: int


Event = Connected | ApduReceived | Disconnected | FrameRejected | PeerBusy


# ---------------------------------------------------------------------------
# Client (primary station) state machine
# ---------------------------------------------------------------------------


class HdlcClientState(enum.Enum):
    """Link states of the client. IDLE, SENDING, AWAITING_RESPONSE and
    RECEIVING are all "connected" (normal response mode); they say who holds
    the line: only in IDLE may the client start a new APDU."""

    DISCONNECTED = "DISCONNECTED"
    CONNECTING = "CONNECTING"  # SNRM sent, waiting for UA or DM
    IDLE = "IDLE"  # connected, nothing outstanding
    SENDING = "SENDING"  # a non-final segment sent, waiting for the server's RR
    AWAITING_RESPONSE = "AWAITING_RESPONSE"  # final segment sent, waiting for I frames
    RECEIVING = "RECEIVING"  # got a non-final segment, sent RR, waiting for the next
    DISCONNECTING = "DISCONNECTING"  # DISC sent, waiting for UA or DM
    REJECTED = "REJECTED"  # the server sent FRMR
    ERROR = "ERROR"  # the server broke the protocol; disconnect or reconnect


class _Trigger(enum.Enum):
    """What moves the client state machine: our own requests (CONNECT,
    DISCONNECT, SEND_SEGMENT, SEND_LAST) and what the server sent."""

    CONNECT = "send SNRM"
    DISCONNECT = "send DISC"
    SEND_SEGMENT = "send a non-final I frame"
    SEND_LAST = "send a final I frame"
    UA = "receive UA"
    DM = "receive DM"
    FRMR = "receive FRMR"
    ACK = "receive RR/RNR acknowledging our I frame"
    DONE = "receive RR acknowledging our unconfirmed request"
    SEGMENT = "receive a non-final I frame"
    LAST = "receive a final I frame"


_S = HdlcClientState
_T = _Trigger
_RELEASE: Final = {_T.DISCONNECT: _S.DISCONNECTING, _T.DM: _S.DISCONNECTED, _T.FRMR: _S.REJECTED}

# IEC 62056-46, 6.4.5 (state transition tables), paraphrase: SNRM from the
# disconnected state sets normal response mode once UA arrives (DM: stays
# disconnected); DISC returns to the disconnected state after UA or DM; FRMR
# reports a frame the secondary cannot accept, after which the primary resets
# or disconnects the link. The data transfer states are ours (window size 1).
_CLIENT_TRANSITIONS: Final[dict[HdlcClientState, dict[_Trigger, HdlcClientState]]] = {
    _S.DISCONNECTED: {
        _T.CONNECT: _S.CONNECTING,
        _T.DISCONNECT: _S.DISCONNECTING,
        _T.DM: _S.DISCONNECTED,
    },
    _S.CONNECTING: {
        _T.UA: _S.IDLE,
        _T.DM: _S.DISCONNECTED,
        _T.FRMR: _S.REJECTED,
        _T.DISCONNECT: _S.DISCONNECTING,
    },
    _S.IDLE: {
        _T.SEND_SEGMENT: _S.SENDING,
        _T.SEND_LAST: _S.AWAITING_RESPONSE,
        _T.ACK: _S.IDLE,
        # Data after the line came back to us: some meters answer a poll with
        # RR while still working and send the response later. Taking it keeps
        # N(S)/N(R) in step; dropping it would break the next exchange.
        _T.SEGMENT: _S.RECEIVING,
        _T.LAST: _S.IDLE,
        **_RELEASE,
    },
    _S.SENDING: {
        _T.ACK: _S.SENDING,
        _T.SEND_SEGMENT: _S.SENDING,
        _T.SEND_LAST: _S.AWAITING_RESPONSE,
        **_RELEASE,
    },
    _S.AWAITING_RESPONSE: {
        _T.SEGMENT: _S.RECEIVING,
        _T.LAST: _S.IDLE,
        # An RR that acknowledges our request: the meter has it, the response follows
        # (or, after our poll, is asked for again by sending the request once more).
        _T.ACK: _S.AWAITING_RESPONSE,
        _T.DONE: _S.IDLE,  # an unconfirmed service has no response
        **_RELEASE,
    },
    _S.RECEIVING: {
        _T.SEGMENT: _S.RECEIVING,
        _T.LAST: _S.IDLE,
        _T.SEND_LAST: _S.AWAITING_RESPONSE,  # the rest is lost: the request anew
        **_RELEASE,
    },
    _S.DISCONNECTING: {
        _T.UA: _S.DISCONNECTED,
        _T.DM: _S.DISCONNECTED,
        _T.DISCONNECT: _S.DISCONNECTING,
    },
    _S.REJECTED: {_T.CONNECT: _S.CONNECTING, _T.DISCONNECT: _S.DISCONNECTING},
    _S.ERROR: {
        _T.CONNECT: _S.CONNECTING,
        _T.DISCONNECT: _S.DISCONNECTING,
        _T.DM: _S.DISCONNECTED,
    },
}


def _check_info_limit(name: str, value: int) -> None:
    if not MIN_INFO_LIMIT <= value <= MAX_INFO_LIMIT:
        raise LocalProtocolError(f"{name}={value} outside {MIN_INFO_LIMIT}..{MAX_INFO_LIMIT}")


class LinkOptions(TypedDict, total=False):
    """The keyword settings both stations take."""

    #: Largest information field this station sends / receives (what it states in
    #: SNRM or UA; default :data:`DEFAULT_MAX_INFO`).
    max_info_tx: int
    max_info_rx: int
    #: Bound on a reassembled APDU (default :data:`MAX_APDU_SIZE`).
    max_apdu_size: int
    #: Called with every frame sent and received (and every received one dropped).
    trace: TraceHook | None


def _settings(server_address: bytes, max_info_tx: int,
              max_info_rx: int) -> tuple[HdlcAddress, HdlcParameters]:
    """A station's own settings, checked: the server address, and the parameters the
    station states (what the client proposes, what the server can do)."""
    _check_info_limit("max_info_tx", max_info_tx)
    _check_info_limit("max_info_rx", max_info_rx)
    try:
        server = decode_server_address(server_address)
    except RemoteProtocolError as exc:  # a DecodeError about our own setting
        raise LocalProtocolError(f"bad server address {server_address.hex()}: {exc}") from exc
    return server, HdlcParameters(max_info_tx, max_info_rx, DEFAULT_WINDOW, DEFAULT_WINDOW)


def _segments(data: bytes, size: int) -> deque[bytes]:
    # IEC 62056-46, 6.4.1 (paraphrase): an information field longer than the
    # negotiated maximum is sent in several I frames; the segmentation bit is
    # set in every one of them except the last.
    return deque(data[i : i + size] for i in range(0, len(data), size))


class _Link:
    """What both stations share: framing, sequence variables, reassembly,
    output queue and counters."""

    def __init__(self, server_address: bytes, client: HdlcAddress | None,
                 **options: Unpack[LinkOptions]) -> None:
        """The server's end when ``client`` is None (the client is whoever sends
        SNRM; until then a placeholder), the client's end otherwise."""
        unknown = set(options) - set(LinkOptions.__annotations__)
        if unknown:  # the TypedDict is for the type checker: say it at run time too
            raise TypeError(f"unexpected keyword arguments: {', '.join(sorted(unknown))}")
        server, self._stated = _settings(server_address,
                                         options.get("max_info_tx", DEFAULT_MAX_INFO),
                                         options.get("max_info_rx", DEFAULT_MAX_INFO))
        self._local, self._remote = ((server, HdlcAddress(0, None, 1)) if client is None
                                     else (client, server))
        self.max_apdu_size = options.get("max_apdu_size", MAX_APDU_SIZE)
        trace = self.trace = options.get("trace")
        self.deframer = HdlcDeframer(trace=trace)
        self.params: HdlcParameters | None = None
        self._vs = 0  # V(S): N(S) of our next I frame
        self._vr = 0  # V(R): N(S) we expect next from the peer
        self._unacked: Frame | None = None  # our last I frame until the peer's N(R) passes it
        self._tx_segments: deque[bytes] = deque()
        self._rx_parts: list[bytes] = []
        self._rx_size = 0
        self._out = bytearray()
        self._events: deque[Event] = deque()
        #: Frames for other stations (several meters share an RS-485 bus; an
        #: echoing adapter hands our own frames back) and frames out of place.
        self.ignored_frames = 0
        #: I frames the peer sent twice (we had them already; not delivered again).
        self.duplicates = 0
        #: Frames we sent again: by ``retransmit()`` or because the peer's N(R)
        #: said it had not received them.
        self.retransmissions = 0

    # -- API shared by both ends ------------------------------------------
    def receive_data(self, data: bytes) -> None:
        """Feed octets from the line (any chunking)."""
        self.deframer.receive_data(data)

    @property
    def pending_octets(self) -> int:
        """Octets held of what has not become an event yet: the segments of an answer
        under way and the deframer's unparsed buffer (cheap: for the I/O layer)."""
        return self._rx_size + self.deframer.buffered

    def data_to_send(self) -> bytes:
        """Frames produced while processing received data; empties the queue."""
        out = bytes(self._out)
        self._out.clear()
        return out

    # -- helpers ------------------------------------------------------------
    def _frame(self, control: Control, info: bytes = b"", segmented: bool = False) -> Frame:
        return Frame(self._remote, self._local, control, info, segmented)

    def _encode(self, frame: Frame) -> bytes:
        raw = frame.to_bytes()
        if self.trace is not None:
            self.trace(FrameTrace("tx", raw, frame))
        return raw

    def _queue(self, frame: Frame) -> None:
        self._out += self._encode(frame)

    def _is_ours(self, frame: Frame) -> bool:
        return frame.destination == self._local and frame.source == self._remote

    def _reset_sequence(self) -> None:
        self._vs = self._vr = 0
        self._unacked = None
        self._tx_segments.clear()
        self._rx_parts.clear()
        self._rx_size = 0

    def _next_i_frame(self, pf: bool) -> Frame:
        chunk = self._tx_segments.popleft()
        frame = self._frame(
            Control(FrameType.I, pf, self._vs, self._vr), chunk, segmented=bool(self._tx_segments)
        )
        self._vs = (self._vs + 1) % _MOD
        self._unacked = frame
        return frame

    def _acknowledges(self, nr: int) -> bool | None:
        """Apply the peer's N(R): True if it acknowledges our last I frame (or
        there was none outstanding), False if it asks for it again, None if the
        value is impossible."""
        if nr == self._vs:
            self._unacked = None
            return True
        if self._unacked is not None and nr == self._unacked.control.ns:
            return False
        return None

    def _resend_unacked(self) -> None:
        assert self._unacked is not None
        old = self._unacked
        # The resent frame acknowledges everything received since (N(R) = V(R)).
        frame = self._frame(
            Control(FrameType.I, old.control.pf, old.control.ns, self._vr),
            old.information,
            old.segmented,
        )
        self._unacked = frame
        self.retransmissions += 1
        self._queue(frame)

    def _add_part(self, info: bytes) -> None:
        # +3: the LLC header travels in front of the APDU.
        self._rx_size += len(info)
        if self._rx_size > self.max_apdu_size + len(LLC_COMMAND):
            size = self._rx_size
            self._rx_parts.clear()
            self._rx_size = 0
            raise RemoteProtocolError(
                f"reassembled APDU exceeds max_apdu_size={self.max_apdu_size}"
                f" ({size} octets so far)"
            )
        self._rx_parts.append(info)

    def _take_apdu(self, *, response: bool) -> bytes:
        data = b"".join(self._rx_parts)
        self._rx_parts.clear()
        self._rx_size = 0
        return strip_llc(data, response=response)


class HdlcClientConnection(_Link):
    """The client (primary station) end of one HDLC link to one server.

    Driving it:

    * ``connect()`` returns SNRM (with the proposed parameters when they are
      not the defaults). A ``Connected(params)`` event follows the UA;
      ``params`` (also ``self.params``) are the negotiated values: in each
      direction the smaller of what we proposed and what the server stated.
      ``Disconnected("DM")`` follows if the server refuses.
    * ``send_apdu(apdu)`` (only in state IDLE) adds the LLC header, cuts the
      result into I frames of at most ``params.max_info_tx`` octets and returns
      the first one. Each further segment appears in ``data_to_send()`` when
      the server's RR for the previous one has been processed.
    * Segmented answers are acknowledged with RR automatically (in
      ``data_to_send()``); ``ApduReceived(apdu)`` carries the whole APDU.
    * ``retransmit()`` is for the caller's timeout: it resends SNRM or DISC
      when one is outstanding; during data transfer it sends RR with the poll
      bit, the checkpoint of ISO/IEC 13239: the server then resends the I frame
      we did not acknowledge, or its RR shows that it missed ours, which we
      then resend by ourselves (in ``data_to_send()``).
    * ``PeerBusy`` (RNR): wait, then ``retransmit()`` to poll again.
    * ``disconnect()`` returns DISC (allowed in every state);
      ``Disconnected("UA")`` or ``Disconnected("DM")`` follows.
    * ``FrameRejected``: the server sent FRMR; ``connect()`` or ``disconnect()``.

    Frames with a bad HCS/FCS or a bad format are dropped and counted in
    ``self.deframer`` (``crc_errors``, ``format_errors``, ``garbage_bytes``,
    ``overflows``); the link goes on. ``next_event()`` raises
    :class:`RemoteProtocolError` (state ERROR) when the server breaks the
    protocol: an impossible N(R) or N(S), a missing LLC header, an APDU
    larger than ``max_apdu_size``, an unparsable UA.

    ``trace`` (optional) is called with a :class:`FrameTrace` for every frame
    sent and received, and for every received frame that was dropped.
    """

    #: Times one request may go again as a new frame after its answer was lost for good.
    MAX_ASK_ANEW: ClassVar[int] = 8

    def __init__(self, client_address: int, server_address: bytes,
                 **options: Unpack[LinkOptions]) -> None:
        super().__init__(server_address, HdlcAddress(client_address, None, 1), **options)
        self.proposed = self._stated
        self.state = HdlcClientState.DISCONNECTED
        self.peer_busy = False
        self._last_command: Frame | None = None  # SNRM or DISC awaiting its answer
        #: The last I frame of our request (a request in one frame), kept until the
        #: response comes: sent again, or anew, when the response does not come.
        self._request_frame: Frame | None = None
        self._resends = 0  # of the request under way, after timeouts
        self._asked_anew = 0  # times the request under way went again as a new frame
        self._repeatable = True  # the request under way may be asked anew
        self._resync = False  # the next I frame's N(S) is taken as it comes
        self._discarding = False  # the rest of an answer a lost segment spoiled
        self._heard = False  # a frame came from the meter since our last retransmit
        #: the request frame and V(R) before we asked anew, in case the meter shows it
        #: never had the request at all (then we go back to them)
        self._before_anew: tuple[Frame, int] | None = None
        self._rr_resend = True  # an RR may have our request resent (once per timeout)
        #: Times the link lost step with the meter and found it again (a response
        #: frame lost for good): the request was sent again as a new I frame.
        self.resyncs = 0
        self._confirmed = True  # the request under way expects a response
        #: Frames of the meter's (to us, good FCS), of any kind: it is on the line.
        self.frames_heard = 0

    # -- state machine ------------------------------------------------------
    def _transition(self, trigger: _Trigger) -> None:
        self.state = next_state(_CLIENT_TRANSITIONS, self.state, trigger)

    def _accepts(self, trigger: _Trigger) -> bool:
        return trigger in _CLIENT_TRANSITIONS[self.state]

    # -- requests -----------------------------------------------------------
    def connect(self) -> bytes:
        """SNRM: set normal response mode and propose our parameters."""
        self._transition(_T.CONNECT)
        self.params = None
        self.peer_busy = False
        self._reset_sequence()
        self.deframer.max_frame_length = MAX_FRAME_LENGTH
        snrm = self._frame(Control(FrameType.SNRM, True), self.proposed.to_bytes())
        self._last_command = snrm
        return self._encode(snrm)

    def disconnect(self) -> bytes:
        """DISC: release the link (legal in every state)."""
        self._transition(_T.DISCONNECT)
        self._tx_segments.clear()
        disc = self._frame(Control(FrameType.DISC, True))
        self._last_command = disc
        return self._encode(disc)

    def send_apdu(self, apdu: bytes, *, confirmed: bool = True,
                  repeatable: bool = True) -> bytes:
        """The first I frame of ``apdu``; later segments follow in
        ``data_to_send()`` as the server acknowledges each one.  ``confirmed``: a
        response is expected (an RR acknowledging the request does not end the
        exchange); False for an unconfirmed service, which the server's RR ends.
        ``repeatable``: the meter may be given the request a second time when its
        answer is lost for good (GET, AARQ: asking twice does no harm); False for a
        request that must not run twice, which then waits for its own answer only."""
        if self.state is not HdlcClientState.IDLE:
            raise LocalProtocolError(f"cannot send an APDU in state {self.state.name}")
        assert self.params is not None
        self._tx_segments = _segments(add_llc(apdu, response=False), self.params.max_info_tx)
        frame = self._next_i_frame(pf=True)
        self._transition(_T.SEND_SEGMENT if frame.segmented else _T.SEND_LAST)
        self._request_frame = None if frame.segmented else frame
        self._repeatable = repeatable
        self._rr_resend = True
        self._resends = 0
        self._asked_anew = 0
        self._resync = self._discarding = False
        self._confirmed = confirmed
        return self._encode(frame)

    def retransmit(self) -> bytes:
        """What to send when the caller's timeout expired without an answer:
        SNRM or DISC again while one is outstanding; for a request in one frame
        awaiting its response, the request again (then, from a silent meter, anew:
        docs/architecture.md, "How an HDLC exchange is tried again"); otherwise, while an exchange
        is under way (or the server is busy), RR with the poll bit and N(R) = V(R)."""
        if self.state in (HdlcClientState.CONNECTING, HdlcClientState.DISCONNECTING):
            assert self._last_command is not None
            self.retransmissions += 1
            return self._encode(self._last_command)
        if self.state in (
            HdlcClientState.SENDING,
            HdlcClientState.AWAITING_RESPONSE,
            HdlcClientState.RECEIVING,
        ) or (self.state is HdlcClientState.IDLE and self.peer_busy):
            self.retransmissions += 1
            heard, self._heard = self._heard, False
            self._rr_resend = True
            if (self.state is HdlcClientState.RECEIVING and self._request_frame is not None
                    and self._repeatable):
                self._resends += 1
                if self._resends > 1 and not heard:
                    # Our poll for the next segment went unanswered twice: the meter
                    # took it for the acknowledgement of a segment we lost, and its
                    # answer is over. Ask anew, past that segment.
                    self._rx_parts.clear()
                    self._rx_size = 0
                    self._transition(_T.SEND_LAST)
                    return self._encode(self._anew())
            if self.state is HdlcClientState.AWAITING_RESPONSE and (
                    self._request_frame is not None):
                self._resends += 1
                if self._resends == 1 or heard or not self._repeatable or self._resync:
                    # (A meter that answered our last try with anything is in step
                    # and replays or acknowledges; only a silent one is asked anew.)
                    # No response: send the request itself again, as gurux's client
                    # does (a meter that lost it takes it as new; one that answered it
                    # replays its answer). A poll would do in ISO/IEC 13239, but
                    # meters that count the poll as a frame (gurux's) lose step on it.
                    return self._encode(self._again(self._request_frame))
                # Still nothing: the meter answered and will not answer the same frame
                # twice. Take its answer as lost and ask anew (a new N(S), an N(R)
                # past the lost frame); its next I frame sets the pace again.
                return self._encode(self._anew())
            return self._encode(self._frame(Control(FrameType.RR, True, 0, self._vr)))
        raise LocalProtocolError(f"nothing to retransmit in state {self.state.name}")

    def _anew(self) -> Frame:
        """The request once more as a new I frame, acknowledging one frame of the
        meter's that we never saw; the next I frame's N(S) is then taken as it comes."""
        assert self._request_frame is not None
        old = self._request_frame
        self._ask_anew_counted()
        self.resyncs += 1
        self._resync = True
        self._before_anew = (old, self._vr)
        self._vr = (self._vr + 1) % _MOD
        return self._as_new(old)

    def _as_new(self, request: Frame) -> Frame:
        """``request``'s information in a new I frame (N(S) = V(S), N(R) = V(R)),
        from now on the request under way."""
        frame = self._frame(Control(FrameType.I, True, self._vs, self._vr), request.information)
        self._vs = (self._vs + 1) % _MOD
        self._unacked = self._request_frame = frame
        return frame

    def _ask_anew_counted(self) -> None:
        """A request is asked anew at most ``MAX_ASK_ANEW`` times: a meter whose
        answers keep coming out of step must not keep the exchange alive."""
        self._asked_anew += 1
        if self._asked_anew > self.MAX_ASK_ANEW:
            raise RemoteProtocolError(f"the meter's answers came out of step "
                                      f"{self._asked_anew} times for one request")

    def _again(self, frame: Frame) -> Frame:
        """``frame`` once more, with N(R) = V(R): a meter that has it already answers
        the duplicate by replaying its response (IEC 62056-46 duplicate handling, as
        gurux's and our own meter do); one that lost it takes it as new."""
        return self._frame(Control(FrameType.I, frame.control.pf, frame.control.ns, self._vr),
                           frame.information, frame.segmented)

    # -- events -------------------------------------------------------------
    def next_event(self) -> Event | NeedData:
        while not self._events:
            frame = self.deframer.next_frame()
            if frame is NEED_DATA:
                return NEED_DATA
            try:
                self._handle(frame)
            except RemoteProtocolError:
                self.state = HdlcClientState.ERROR
                self._tx_segments.clear()
                raise
        return self._events.popleft()

    def _handle(self, frame: Frame) -> None:
        if not self._is_ours(frame):
            self.ignored_frames += 1
            return
        self._heard = True
        self.frames_heard += 1
        kind = frame.control.type
        if kind is FrameType.UA:
            self._on_ua(frame)
        elif kind is FrameType.DM:
            self._on_dm()
        elif kind is FrameType.FRMR:
            if self._accepts(_T.FRMR):
                self._transition(_T.FRMR)
                self._tx_segments.clear()
                self._events.append(FrameRejected(frame.information))
            else:
                self.ignored_frames += 1
        elif kind is FrameType.I:
            self._on_i(frame)
        elif kind in (FrameType.RR, FrameType.RNR):
            self._on_supervisory(frame)
        else:  # SNRM, DISC (commands a server never sends), UI
            self.ignored_frames += 1

    def _on_ua(self, frame: Frame) -> None:
        if not self._accepts(_T.UA):
            self.ignored_frames += 1  # e.g. a late second UA to a resent SNRM
            return
        if self.state is HdlcClientState.DISCONNECTING:
            self._transition(_T.UA)
            self._last_command = None
            self._events.append(Disconnected("UA"))
            return
        offered = HdlcParameters.from_bytes(frame.information)
        # The UA states the server's view; ours is the reverse, capped by what
        # we proposed.
        params = self.proposed.limited_by(offered.reversed())
        self._transition(_T.UA)
        self._last_command = None
        self.params = params
        self.deframer.set_max_info(params.max_info_rx)
        self._reset_sequence()
        self._events.append(Connected(params))

    def _on_dm(self) -> None:
        if not self._accepts(_T.DM):
            self.ignored_frames += 1
            return
        self._transition(_T.DM)
        self._last_command = None
        self.params = None
        self._reset_sequence()
        self.deframer.max_frame_length = MAX_FRAME_LENGTH
        self._events.append(Disconnected("DM"))

    def _on_supervisory(self, frame: Frame) -> None:
        if not self._accepts(_T.ACK):
            self.ignored_frames += 1
            return
        acked = self._acknowledges(frame.control.nr)
        if acked is None and self._resync and self._before_anew is not None and (
                frame.control.nr == self._before_anew[0].control.ns):
            # We asked anew, past an answer we thought lost; the meter's N(R) shows it
            # never had the request at all. Go back and send it as it was.
            original, vr = self._before_anew
            self._resync = False
            self._before_anew = None
            self._vs, self._vr = original.control.ns, vr
            self.resyncs -= 1
            self.retransmissions += 1
            self._queue(self._as_new(original))
            return
        if acked is None:
            raise LinkOutOfStep(
                f"{frame.control} from the server: N(R) must be {self._vs}"
                f" in state {self.state.name}"
            )
        busy = frame.control.type is FrameType.RNR
        self.peer_busy = busy
        if busy:
            self._events.append(PeerBusy(frame.control.nr))
        if not acked:
            if not busy and self._rr_resend:
                # IEC 62056-46 / ISO 13239 checkpointing: the server's N(R)
                # shows it did not receive our last I frame; send it again (once per
                # timeout: a meter that keeps refusing it must not keep us busy).
                self._rr_resend = False
                self._resend_unacked()
            return
        if self.state is HdlcClientState.SENDING:
            if not busy:
                nxt = self._next_i_frame(pf=True)
                self._transition(_T.SEND_SEGMENT if nxt.segmented else _T.SEND_LAST)
                self._queue(nxt)
        elif self.state is HdlcClientState.AWAITING_RESPONSE and not busy:
            self._transition(_T.ACK if self._confirmed else _T.DONE)

    def _on_i(self, frame: Frame) -> None:
        ctrl = frame.control
        if ctrl.ns == (self._vr - 1) % _MOD and self.state in (
            HdlcClientState.IDLE,
            HdlcClientState.AWAITING_RESPONSE,
            HdlcClientState.RECEIVING,
        ):
            # A frame we already have: do not deliver it twice. If the server
            # is waiting for us, acknowledge (and poll) again.
            self.duplicates += 1
            if self.state is not HdlcClientState.IDLE and self._rr_resend:
                self._rr_resend = False  # once per timeout: a replaying meter cannot
                self._queue(self._frame(Control(FrameType.RR, True, 0, self._vr)))
            return
        trigger = _T.SEGMENT if frame.segmented else _T.LAST
        if not self._accepts(trigger):
            self.ignored_frames += 1
            return
        resync = self._resync and self._request_frame is not None
        if resync or (ctrl.ns != self._vr and self._request_frame is not None
                      and self._repeatable and self.state is HdlcClientState.RECEIVING):
            # Out of step: a frame of the meter's was lost for good (we asked anew, or
            # a segment of its answer went missing). Take its numbering as it comes. An
            # answer is taken only from its start (the LLC header shows one); the rest
            # of a spoilt one is read to its end and dropped, and the request goes
            # again as a new frame.
            spoilt = not (resync and frame.information.startswith(LLC_RESPONSE))
            self._resync = False
            self._vr = ctrl.ns
            if spoilt and not self._discarding:
                self.resyncs += 1
                self._discarding = True
                self._rx_parts.clear()
                self._rx_size = 0
        if ctrl.ns != self._vr:
            raise LinkOutOfStep(f"{ctrl} from the server: expected N(S)={self._vr}")
        if ctrl.nr != self._vs and (self._resync or self._discarding) and (
                ctrl.nr == (self._vs - 1) % _MOD):
            # The meter did not take the request we asked anew (it was still sending
            # its answer): that frame is sent again, as new, when this answer ends.
            self._vs = ctrl.nr
            self._resync = False
            if not self._discarding:
                self._discarding = True
                self._rx_parts.clear()
                self._rx_size = 0
        if ctrl.nr != self._vs:
            raise LinkOutOfStep(
                f"{ctrl} from the server: N(R) must acknowledge our I frame (N(R)={self._vs})"
            )
        self._unacked = None
        self.peer_busy = False
        self._resends = 0  # progress
        self._vr = (self._vr + 1) % _MOD
        # A spoilt answer is counted as well: it is bounded like any other.
        self._add_part(frame.information)
        self._transition(trigger)
        if frame.segmented:
            # IEC 62056-46 (paraphrase): the receiver of a segment answers RR
            # to ask for the next one.
            self._queue(self._frame(Control(FrameType.RR, True, 0, self._vr)))
        elif self._discarding:
            # The end of a spoilt answer: ask again with the request as a new frame.
            self._discarding = False
            self._rx_parts.clear()
            self._rx_size = 0
            if self._request_frame is not None:
                self._ask_anew_counted()
                if self.state is HdlcClientState.IDLE:
                    self._transition(_T.SEND_LAST)
                self._queue(self._as_new(self._request_frame))
        else:
            self._request_frame = None
            self._events.append(ApduReceived(self._take_apdu(response=True)))


# ---------------------------------------------------------------------------
# Server (secondary station), for the meter simulator
# ---------------------------------------------------------------------------


class ServerState(enum.Enum):
    """Link states of the server."""

    DISCONNECTED = "DISCONNECTED"  # NDM: answers DM to everything but SNRM
    IDLE = "IDLE"  # connected, waiting for the client
    RECEIVING = "RECEIVING"  # got a non-final segment, sent RR
    PROCESSING = "PROCESSING"  # a request was delivered; the application must answer
    SENDING = "SENDING"  # sent a non-final segment, waiting for the client's RR


class HdlcServerConnection(_Link):
    """The server (secondary station) end, for the meter simulator.

    Frames not addressed to ``server_address`` are ignored (several meters on
    one RS-485 bus). Every answer the protocol requires goes to
    ``data_to_send()``: UA to SNRM (with the negotiated parameters, and a
    ``Connected`` event), UA or DM to DISC (``Disconnected("DISC")``), DM to
    anything else while disconnected, RR to each non-final segment, RNR to a
    poll while the application has not answered yet, the next segment after
    the client's RR, the last I frame again when the client's N(R) or a
    repeated I frame shows it was lost.

    After ``ApduReceived`` the application answers with ``send_apdu(apdu)``
    (returns the first I frame; the others follow the client's RRs in
    ``data_to_send()``) or, for an unconfirmed service, ``acknowledge()``.

    A SNRM from any client (re)starts the link. ``next_event()`` never raises
    for what a client sends: an unparsable SNRM or an APDU larger than
    ``max_apdu_size`` is answered with FRMR, anything else out of place is
    counted in ``ignored_frames`` (answered with RR where the client waits).
    """

    def __init__(self, server_address: bytes, **options: Unpack[LinkOptions]) -> None:
        super().__init__(server_address, None, **options)
        self.capabilities = self._stated
        self.state = ServerState.DISCONNECTED
        #: Segmented answers dropped because the client asked anew before their end.
        self.abandoned_answers = 0

    @property
    def client_address(self) -> int | None:
        """The SAP of the connected client."""
        return None if self.state is ServerState.DISCONNECTED else self._remote.upper

    # -- application requests ------------------------------------------------
    def send_apdu(self, apdu: bytes) -> bytes:
        """Answer the delivered request: the first I frame of ``apdu``."""
        if self.state is not ServerState.PROCESSING:
            raise LocalProtocolError(f"cannot send an APDU in state {self.state.name}")
        assert self.params is not None
        self._tx_segments = _segments(add_llc(apdu, response=True), self.params.max_info_tx)
        frame = self._next_i_frame(pf=True)
        self.state = ServerState.SENDING if frame.segmented else ServerState.IDLE
        return self._encode(frame)

    def acknowledge(self) -> bytes:
        """Answer the delivered request without data (RR with the final bit)."""
        if self.state is not ServerState.PROCESSING:
            raise LocalProtocolError(f"cannot acknowledge in state {self.state.name}")
        self.state = ServerState.IDLE
        return self._encode(self._rr(FrameType.RR))

    # -- events ----------------------------------------------------------------
    def next_event(self) -> Event | NeedData:
        while not self._events:
            frame = self.deframer.next_frame()
            if frame is NEED_DATA:
                return NEED_DATA
            self._handle(frame)
        return self._events.popleft()

    def _rr(self, kind: FrameType) -> Frame:
        return self._frame(Control(kind, True, 0, self._vr))

    def _frmr(self, rejected: Control, reason: int) -> Frame:
        # ISO/IEC 13239 FRMR information (modulo 8): the rejected control
        # field; 0, V(S), C/R, V(R); the reason bits W X Y Z.
        info = bytes([rejected.to_byte(), (self._vr << 5) | (self._vs << 1), reason])
        return self._frame(Control(FrameType.FRMR, True), info)

    def _handle(self, frame: Frame) -> None:
        if frame.destination != self._local:
            self.ignored_frames += 1
            return
        kind = frame.control.type
        if kind is FrameType.SNRM:
            self._on_snrm(frame)
            return
        if self.state is ServerState.DISCONNECTED:
            # IEC 62056-46 (paraphrase): in the disconnected mode the secondary
            # answers DM to every command that needs an answer except SNRM.
            if kind is not FrameType.UI and frame.control.pf:
                self._remote = frame.source
                self._queue(self._frame(Control(FrameType.DM, True)))
            else:
                self.ignored_frames += 1
            return
        if frame.source != self._remote:
            self.ignored_frames += 1  # another client while this one is connected
            return
        if kind is FrameType.DISC:
            self.state = ServerState.DISCONNECTED
            self.params = None
            self._reset_sequence()
            self.deframer.max_frame_length = MAX_FRAME_LENGTH
            self._queue(self._frame(Control(FrameType.UA, True)))
            self._events.append(Disconnected("DISC"))
        elif kind is FrameType.I:
            self._on_i(frame)
        elif kind is FrameType.RR:
            self._on_rr(frame)
        else:  # RNR, UI, and responses a client never sends
            self.ignored_frames += 1

    def _on_snrm(self, frame: Frame) -> None:
        try:
            proposed = HdlcParameters.from_bytes(frame.information)
        except RemoteProtocolError:
            # A SNRM we cannot parse: refuse it (the simulator must not raise).
            self.ignored_frames += 1
            self._remote = frame.source
            self._queue(self._frmr(frame.control, _FRMR_X))
            return
        self._remote = frame.source
        # The SNRM states the client's view; ours is the reverse, capped by
        # what we can do.
        params = self.capabilities.limited_by(proposed.reversed())
        self.params = params
        self._reset_sequence()
        self.deframer.set_max_info(params.max_info_rx)
        self.state = ServerState.IDLE
        self._queue(
            self._frame(Control(FrameType.UA, True), params.to_bytes(include_defaults=True))
        )
        self._events.append(Connected(params))

    def _on_i(self, frame: Frame) -> None:
        ctrl = frame.control
        if ctrl.ns == (self._vr - 1) % _MOD:
            # The client sent again a frame we have: our answer was lost.
            self.duplicates += 1
            if self._unacked is not None:
                self._resend_unacked()
            else:
                busy = self.state is ServerState.PROCESSING
                self._queue(self._rr(FrameType.RNR if busy else FrameType.RR))
            return
        if self.state is ServerState.SENDING and ctrl.ns == self._vr:
            # A new request while our segmented answer is under way: the client gave
            # up on it (a segment was lost for good) and asks anew. The rest of the
            # answer is dropped and the request taken.
            self._tx_segments.clear()
            self._unacked = None
            self.state = ServerState.IDLE
            self.abandoned_answers += 1
        if self.state not in (ServerState.IDLE, ServerState.RECEIVING) or ctrl.ns != self._vr:
            self.ignored_frames += 1
            self._queue(self._rr(FrameType.RR))
            return
        self._acknowledges(ctrl.nr)
        self._vr = (self._vr + 1) % _MOD
        try:
            self._add_part(frame.information)
        except RemoteProtocolError:
            self.ignored_frames += 1
            self.state = ServerState.IDLE
            self._queue(self._frmr(ctrl, _FRMR_Y))
            return
        if frame.segmented:
            self.state = ServerState.RECEIVING
            self._queue(self._rr(FrameType.RR))
            return
        self.state = ServerState.PROCESSING
        try:
            apdu = self._take_apdu(response=False)
        except RemoteProtocolError:
            self.ignored_frames += 1  # no LLC header: nothing to deliver
            self.state = ServerState.IDLE
            self._queue(self._rr(FrameType.RR))
            return
        self._events.append(ApduReceived(apdu))

    def _on_rr(self, frame: Frame) -> None:
        acked = self._acknowledges(frame.control.nr)
        if acked is False:
            self._resend_unacked()
        elif self.state is ServerState.SENDING and acked:
            nxt = self._next_i_frame(pf=True)
            if not nxt.segmented:
                self.state = ServerState.IDLE
            self._queue(nxt)
        elif self.state is ServerState.PROCESSING:
            self._queue(self._rr(FrameType.RNR))  # still working on the answer
        else:
            self._queue(self._rr(FrameType.RR))
