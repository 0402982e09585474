"""IEC 62056-21 protocol mode E opening (the optical/serial sign-on before HDLC), sans-I/O.

This module owns the few messages exchanged at 300 Bd 7E1 before a serial
line carries HDLC: the request, the meter's identification, the option select
ACK. :class:`ModeEOpening` is the client's state machine::

    opening = ModeEOpening(address=None, max_baud=9600, echo=True)
    line.write(opening.start())                     # "/?!" CR LF
    while True:
        event = opening.next_event()
        if event is NEED_DATA:
            try:
                opening.receive_data(await line.read(opening.timeout()))
            except DlmsTimeout as exc:
                raise opening.timeout_error() from exc
        elif isinstance(event, Identified):
            line.write(opening.acknowledge())       # ACK "2" Z "2" CR LF
        else:                                       # SwitchLine
            await line.reconfigure(event.baud_rate, event.bytesize, event.parity,
                                   event.stopbits)
            hdlc.receive_data(event.trailing)       # no byte is lost
            break

Optical probes hand back what they send: with ``echo=True`` an exact echo of
the request (anywhere before the identification, after line noise too) is
dropped; once the request's echo has been seen, the ACK's echo is awaited and
dropped as well. Without an echo of the request, none of the ACK is expected.

Timing belongs to the caller; the standard's times are the constants below and
:meth:`ModeEOpening.timeout` says how long to wait for the next bytes.

Sources. IEC 62056-21:2002 (first edition) was not at hand as a whole; what
is quoted below is paraphrased from it and marked "from memory" where the
clause number could not be checked. Checked: the DLMS UA register of
enhanced identification characters ("IEC 62056-21, Clause 6.3.2, item 24):
the value 2 indicates that the binary mode (HDLC) is available; 0, 1 and 3 to
9 are reserved", dlms.com, "List and maintenance of standard items"). The
option select characters agree with three independent implementations
(iisys-hof/libIEC62056 ``ProtocolControlCharacter``/``ModeControlCharacter``,
pwitab/iec62056-21 ``client.py``, and the gurux mode E example, read only).

The meter's side is :class:`ModeEServer` (the simulator's): it waits for a
request, says which identification to answer with, and ends, like the client,
with :class:`SwitchLine` carrying the bytes that follow the option select.

Nothing here does I/O, reads a clock or logs.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Final

from dlmsd.errors import DecodeError, DlmsTimeout, LocalProtocolError, RemoteProtocolError
from dlmsd.protocol.hdlc_frame import NEED_DATA, NeedData, next_state

__all__ = [
    "ACK",
    "BAUD_RATES_MODE_B",
    "BAUD_RATES_MODE_C",
    "BITS_PER_CHARACTER",
    "CRLF",
    "ENHANCED_HDLC",
    "HDLC_BYTESIZE",
    "HDLC_PARITY",
    "HDLC_STOPBITS",
    "INTER_CHARACTER_TIME_MAX",
    "MAX_DEVICE_ADDRESS_LENGTH",
    "MAX_GARBAGE",
    "MAX_IDENTIFICATION_LENGTH",
    "NAK",
    "NEED_DATA",
    "OPENING_BAUD",
    "OPENING_BYTESIZE",
    "OPENING_PARITY",
    "OPENING_STOPBITS",
    "REACTION_TIME_MAX",
    "REACTION_TIME_MIN",
    "REACTION_TIME_MIN_FAST",
    "SWITCH_MARGIN",
    "TIMEOUT_MARGIN",
    "Event",
    "IdentificationMessage",
    "Identified",
    "ModeControl",
    "ModeEOpening",
    "ModeEServer",
    "NeedData",
    "OpeningState",
    "OptionRefused",
    "OptionSelectMessage",
    "ProtocolControl",
    "RequestMessage",
    "RequestReceived",
    "SwitchLine",
    "normalise_address",
    "timeout_error",
    "wire_time",
]

# ---------------------------------------------------------------------------
# Characters, line settings, limits
# ---------------------------------------------------------------------------

ACK: Final = 0x06
NAK: Final = 0x15
CRLF: Final = b"\r\n"
_START: Final = ord("/")
_REQUEST: Final = ord("?")
_END: Final = ord("!")
_ESCAPE: Final = ord("\\")

# IEC 62056-21, 6.1 (from memory): the sign-on always begins at 300 Bd with
# one start bit, 7 data bits, even parity and one stop bit.
OPENING_BAUD: Final = 300
OPENING_BYTESIZE: Final = 7
OPENING_PARITY: Final = "E"
OPENING_STOPBITS: Final = 1
#: The opening's line settings (baud rate, data bits, parity, stop bits).
OPENING_LINE: Final = (OPENING_BAUD, OPENING_BYTESIZE, OPENING_PARITY, OPENING_STOPBITS)
# Protocol mode E (6.4.5, from memory; DLMS UA Green Book, physical layer):
# after the option select both sides use 8 data bits, no parity, 1 stop bit.
HDLC_BYTESIZE: Final = 8
HDLC_PARITY: Final = "N"
HDLC_STOPBITS: Final = 1
#: Bits per character on the wire for 7E1 and for 8N1 alike: start, 7 data +
#: parity or 8 data, stop.
BITS_PER_CHARACTER: Final = 10

# IEC 62056-21, 6.3.2 (from memory), baud rate identification Z:
#   protocol modes C and E: '0' 300, '1' 600, '2' 1200, '3' 2400, '4' 4800,
#   '5' 9600, '6' 19200; '7', '8', '9' reserved.
#   protocol mode B: 'A' 600, 'B' 1200, 'C' 2400, 'D' 4800, 'E' 9600,
#   'F' 19200; 'G', 'H', 'I' reserved.
#   protocol mode A: any other printable character except '/' and '!'.
BAUD_RATES_MODE_C: Final[dict[str, int]] = {
    "0": 300,
    "1": 600,
    "2": 1200,
    "3": 2400,
    "4": 4800,
    "5": 9600,
    "6": 19200,
}
BAUD_RATES_MODE_B: Final[dict[str, int]] = {
    "A": 600,
    "B": 1200,
    "C": 2400,
    "D": 4800,
    "E": 9600,
    "F": 19200,
}
_RESERVED_MODE_C: Final = frozenset("789")
_RESERVED_MODE_B: Final = frozenset("GHI")

#: Enhanced identification character W of ``\\W`` meaning "binary mode (HDLC)
#: available" (IEC 62056-21, 6.3.2, item 24, DLMS UA register).
ENHANCED_HDLC: Final = "2"

# IEC 62056-21, 6.3.1 (from memory), device address: optional,
# manufacturer-specific, 32 characters maximum: digits, upper- and lower-case
# letters and space; leading zeros are ignored by the tariff device.
MAX_DEVICE_ADDRESS_LENGTH: Final = 32
_ADDRESS_RE: Final = re.compile(r"[0-9A-Za-z ]*")
# IEC 62056-21, 6.3.2 (from memory), identification: manufacturer-specific,
# 16 printable characters maximum except for '/' and '!'.
MAX_IDENTIFICATION_LENGTH: Final = 16
#: Line noise skipped before the identification's '/' (ours; probes put a few
#: bytes of noise on the line when they power up).
MAX_GARBAGE: Final = 256
# "/" XXX Z "\" W ident CR LF
_LINE_OVERHEAD: Final = 1 + 3 + 1 + 2 + 2

# ---------------------------------------------------------------------------
# Times (seconds). The caller owns the clock; these are what it should use.
# ---------------------------------------------------------------------------

# IEC 62056-21, 6.3.14 (clause number from memory), reaction and monitoring
# times, paraphrase: the time between the reception of a message and the
# transmission of the answer is 200 ms <= tr <= 1500 ms; when the third letter
# of the manufacturer's identification is lower case, the minimum reaction
# time of the device is 20 ms instead of 200 ms (6.3.2 note; also quoted in
# pwitab/iec62056-21 client.py); the time between two characters of a message
# is ta < 1500 ms.
REACTION_TIME_MIN: Final = 0.200
REACTION_TIME_MIN_FAST: Final = 0.020
REACTION_TIME_MAX: Final = 1.500
INTER_CHARACTER_TIME_MAX: Final = 1.500
#: Ours: added to the ACK's time on the wire before switching the baud rate
#: (USB adapters report "sent" before the last bits have left; openmuc j62056
#: documents ~250 ms of baudRateChangeDelay for them).
SWITCH_MARGIN: Final = 0.050
#: Ours: scheduling and adapter latency added to every wait.
TIMEOUT_MARGIN: Final = 0.200


def wire_time(octets: int, baud_rate: int, bits_per_character: int = BITS_PER_CHARACTER) -> float:
    """Seconds ``octets`` characters need on the wire at ``baud_rate``
    (6 octets of ACK at 300 Bd 7E1: 0.2 s)."""
    return octets * bits_per_character / baud_rate


# ---------------------------------------------------------------------------
# Wire types
# ---------------------------------------------------------------------------


def _check_address(address: str) -> None:
    if len(address) > MAX_DEVICE_ADDRESS_LENGTH or not _ADDRESS_RE.fullmatch(address):
        raise LocalProtocolError(
            f"IEC 62056-21 device address {address!r}: at most {MAX_DEVICE_ADDRESS_LENGTH}"
            " characters of 0-9, A-Z, a-z and space"
        )


@dataclass(frozen=True)
class RequestMessage:
    """The request message; the client's first words at 300 Bd.

    IEC 62056-21, 6.3.1 (from memory)::

        / ? Device address ! CR LF

    The device address is optional ("/?!" CR LF addresses whichever device is
    on the optical port).
    """

    address: str = ""

    def __post_init__(self) -> None:
        _check_address(self.address)

    def to_bytes(self) -> bytes:
        return b"/?" + self.address.encode("ascii") + b"!" + CRLF

    @classmethod
    def from_bytes(cls, data: bytes) -> RequestMessage:
        if not (data.startswith(b"/?") and data.endswith(b"!" + CRLF)):
            raise DecodeError(f"request: expected '/?<address>!' CR LF, got {data!r}")
        try:
            return cls(data[2:-3].decode("ascii"))
        except (UnicodeDecodeError, LocalProtocolError) as exc:
            raise DecodeError(f"request: bad device address in {data!r}") from exc


@dataclass(frozen=True)
class IdentificationMessage:
    """The meter's identification message.

    IEC 62056-21, 6.3.2 (from memory)::

        / X X X Z [\\ W] Ident CR LF

    XXX is the manufacturer's identification (registered with the DLMS UA;
    a lower-case third letter announces the 20 ms minimum reaction time),
    Z the baud rate identification (see ``BAUD_RATES_MODE_C``), ``\\W`` an
    optional enhanced identification (item 24: ``\\2`` = binary mode (HDLC)
    available) and Ident up to 16 printable characters except '/' and '!'.

    Meters bend the rule on the letters (Elster sends "Els"), so any ASCII
    letter is accepted in XXX; Z may be any printable character here (mode A
    has free baud characters); which modes the opening accepts is
    :class:`ModeEOpening`'s decision.
    """

    manufacturer: str
    baud_char: str
    identification: str
    enhanced: str | None = None

    @property
    def reaction_20ms(self) -> bool:
        return self.manufacturer[2:3].islower()

    @property
    def protocol_mode(self) -> str:
        """"C" (modes C, D and E share these characters), "B" or "A"."""
        if self.baud_char.isdigit():
            return "C"
        if "A" <= self.baud_char <= "I":
            return "B"
        return "A"

    def to_bytes(self) -> bytes:
        enhanced = "" if self.enhanced is None else "\\" + self.enhanced
        text = f"/{self.manufacturer}{self.baud_char}{enhanced}{self.identification}"
        return text.encode("ascii") + CRLF

    @classmethod
    def from_bytes(
        cls, data: bytes, max_identification: int = MAX_IDENTIFICATION_LENGTH
    ) -> IdentificationMessage:
        """Parse one whole line (from '/' to CR LF)."""
        if not data.startswith(b"/") or not data.endswith(CRLF):
            raise DecodeError(f"identification: expected '/' ... CR LF, got {data!r}")
        body = data[1:-2]
        bad = next((b for b in body if not 0x20 <= b <= 0x7E), None)
        if bad is not None:
            raise DecodeError(
                f"identification: byte 0x{bad:02x} is not a printable ISO 646 character"
                f" in {data!r}"
            )
        text = body.decode("ascii")
        if text.startswith("?"):
            raise DecodeError(
                f"identification: {data!r} looks like the echo of a request (enable echo)"
            )
        if len(text) < 4:
            raise DecodeError(f"identification: {data!r} is too short for '/XXXZ'")
        manufacturer, baud_char, rest = text[:3], text[3], text[4:]
        if not (manufacturer.isascii() and manufacturer.isalpha()):
            raise DecodeError(f"identification: manufacturer {manufacturer!r} is not three letters")
        if baud_char in "/!":
            raise DecodeError(f"identification: {baud_char!r} cannot be a baud rate character")
        enhanced: str | None = None
        if rest.startswith("\\"):
            if len(rest) < 2:
                raise DecodeError(f"identification: '\\' without an enhanced character: {data!r}")
            enhanced, rest = rest[1], rest[2:]
        if "/" in rest or "!" in rest:
            raise DecodeError(f"identification: '/' or '!' inside the identification {rest!r}")
        if len(rest) > max_identification:
            raise DecodeError(
                f"identification: {rest!r} is {len(rest)} characters; at most"
                f" {max_identification}"
            )
        return cls(manufacturer, baud_char, rest, enhanced)


class ProtocolControl(enum.Enum):
    """Protocol control character V of the option select message
    (IEC 62056-21, 6.3.3, from memory)."""

    NORMAL = "0"  # normal protocol procedure
    SECONDARY = "1"  # secondary protocol procedure
    HDLC = "2"  # HDLC protocol procedure (protocol mode E)


class ModeControl(enum.Enum):
    """Mode control character Y of the option select message
    (IEC 62056-21, 6.3.3, from memory; '3'-'5' reserved, '6'-'9'
    manufacturer-specific)."""

    DATA_READOUT = "0"
    PROGRAMMING = "1"
    BINARY = "2"  # binary mode (HDLC)


@dataclass(frozen=True)
class OptionSelectMessage:
    """The acknowledgement/option select message.

    IEC 62056-21, 6.3.3 (from memory)::

        ACK V Z Y CR LF

    V protocol control character ('0' normal, '1' secondary, '2' HDLC),
    Z baud rate identification (the rate both sides switch to), Y mode control
    character ('0' data readout, '1' programming, '2' binary mode (HDLC)).
    Protocol mode E sends ACK '2' Z '2' CR LF.
    """

    baud_char: str
    protocol: ProtocolControl = ProtocolControl.HDLC
    mode: ModeControl = ModeControl.BINARY

    def to_bytes(self) -> bytes:
        chars = self.protocol.value + self.baud_char + self.mode.value
        return bytes([ACK]) + chars.encode("ascii") + CRLF

    @classmethod
    def from_bytes(cls, data: bytes) -> OptionSelectMessage:
        if len(data) != 6 or data[0] != ACK or not data.endswith(CRLF):
            raise DecodeError(f"option select: expected ACK V Z Y CR LF, got {data!r}")
        try:
            protocol = ProtocolControl(chr(data[1]))
            mode = ModeControl(chr(data[3]))
        except ValueError as exc:
            raise DecodeError(f"option select: unknown V or Y in {data!r}") from exc
        if not 0x20 <= data[2] <= 0x7E:  # Z is an ISO 646 character, as in the identification
            raise DecodeError(f"option select: baud rate character 0x{data[2]:02x} is not a "
                              f"printable ISO 646 character in {data!r}")
        return cls(chr(data[2]), protocol, mode)


# ---------------------------------------------------------------------------
# Events
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Identified:
    """The meter identified itself. Call ``acknowledge()`` next.

    ``baud_rate`` is the highest rate the meter offers; ``enhanced`` the
    character after '\\' (``"2"``: HDLC capable) or None. ``hdlc_capable``
    False (no ``\\2``) does not stop the opening: the option select selects
    mode E all the same, and the caller should log a warning.
    """

    manufacturer: str
    baud_char: str
    baud_rate: int
    identification: str
    enhanced: str | None
    reaction_20ms: bool

    @property
    def hdlc_capable(self) -> bool:
        return self.enhanced == ENHANCED_HDLC

    @property
    def min_reaction_time(self) -> float:
        """Seconds the meter may need at least before it answers."""
        return REACTION_TIME_MIN_FAST if self.reaction_20ms else REACTION_TIME_MIN


@dataclass(frozen=True)
class SwitchLine:
    """Switch the line to these settings once the ACK is on the wire; then the
    HDLC layer starts (with SNRM), first fed with ``trailing``: what arrived
    after the identification and belongs to the next layer."""

    baud_rate: int
    bytesize: int = HDLC_BYTESIZE
    parity: str = HDLC_PARITY
    stopbits: int = HDLC_STOPBITS
    trailing: bytes = b""


Event = Identified | SwitchLine


# ---------------------------------------------------------------------------
# State machine
# ---------------------------------------------------------------------------


class OpeningState(enum.Enum):
    IDLE = "IDLE"  # start() not called yet
    IDENTIFICATION = "IDENTIFICATION"  # request sent, waiting for the identification
    IDENTIFIED = "IDENTIFIED"  # Identified delivered; acknowledge() is next
    OPTION_SELECT = "OPTION_SELECT"  # ACK sent; waiting for its echo, then SwitchLine
    SWITCHED = "SWITCHED"  # SwitchLine delivered; the line belongs to HDLC
    FAILED = "FAILED"  # an error was raised; open the port again to retry


class _Trigger(enum.Enum):
    START = "send the request"
    IDENTIFY = "receive the identification"
    ACKNOWLEDGE = "send the option select ACK"
    SWITCH = "switch the line"
    FAIL = "fail"


_O = OpeningState
_T = _Trigger
_TRANSITIONS: Final[dict[OpeningState, dict[_Trigger, OpeningState]]] = {
    _O.IDLE: {_T.START: _O.IDENTIFICATION, _T.FAIL: _O.FAILED},
    _O.IDENTIFICATION: {_T.IDENTIFY: _O.IDENTIFIED, _T.FAIL: _O.FAILED},
    _O.IDENTIFIED: {_T.ACKNOWLEDGE: _O.OPTION_SELECT, _T.FAIL: _O.FAILED},
    _O.OPTION_SELECT: {_T.SWITCH: _O.SWITCHED, _T.FAIL: _O.FAILED},
    _O.SWITCHED: {},
    _O.FAILED: {},
}


def _take_echo(buf: bytearray, sent: bytes) -> bool | None:
    """Remove the probe's echo of ``sent`` from the start of ``buf``: True when removed,
    False when ``buf`` starts with something else, None while it holds only a beginning."""
    n = min(len(buf), len(sent))
    if buf[:n] != sent[:n]:
        return False
    if n < len(sent):
        return None
    del buf[:n]
    return True


_STEP: Final[dict[OpeningState, str]] = {
    _O.IDLE: "request",
    _O.IDENTIFICATION: "identification",
    _O.IDENTIFIED: "option select",
    _O.OPTION_SELECT: "option select",
    _O.SWITCHED: "switched",
    _O.FAILED: "failed",
}


def timeout_error(step: str, detail: str = "") -> DlmsTimeout:
    """The error for a meter that did not answer in ``step`` in time."""
    text = f"IEC 62056-21 {step}: no answer from the meter in time"
    return DlmsTimeout(f"{text}: {detail}" if detail else text)


def _preview(data: bytes | bytearray, limit: int = 40) -> str:
    shown = bytes(data[:limit])
    return repr(shown) + ("..." if len(data) > limit else "")


class ModeEOpening:
    """Client side of the IEC 62056-21 protocol mode E opening.

    ``address``: the device address for "/?<address>!" (None or "": none).
    ``max_baud``: the highest rate this side supports; the ACK selects the
    highest standard rate not above it nor above the meter's.
    ``echo``: drop the probe's echo of what we send (see the module text).

    ``next_event()`` raises :class:`DecodeError` for malformed input and
    :class:`RemoteProtocolError` for a meter that cannot do mode E (mode A or
    B baud characters, NAK); both name the step. An identification without
    the enhanced identification ``\\2`` is not refused (see
    :meth:`acknowledge`). Counters: ``garbage_bytes``
    (noise skipped before the identification), ``echo_seen``.
    """

    def __init__(
        self, address: str | None = None, max_baud: int | None = None, echo: bool = True
    ) -> None:
        self._request = RequestMessage(address or "").to_bytes()  # validates the address
        if max_baud is not None and max_baud < OPENING_BAUD:
            raise LocalProtocolError(f"max_baud={max_baud}: at least {OPENING_BAUD}")
        self.address = address or ""
        self.max_baud = max_baud
        self.echo = echo
        #: Longest identification accepted (the standard's 16; a vendor quirk
        #: may raise it).
        self.max_identification = MAX_IDENTIFICATION_LENGTH
        self.state = OpeningState.IDLE
        self.garbage_bytes = 0
        self.echo_seen = False
        self.identified: Identified | None = None
        self._buf = bytearray()
        self._answer_started = False
        self._ack = b""
        self._expect_ack_echo = False

    # -- state ----------------------------------------------------------------
    @property
    def step(self) -> str:
        """The step under way, as used in error messages."""
        return _STEP[self.state]

    def _transition(self, trigger: _Trigger) -> None:
        self.state = next_state(_TRANSITIONS, self.state, trigger)

    def _fail(self, exc: Exception) -> Exception:
        if _T.FAIL in _TRANSITIONS[self.state]:
            self._transition(_T.FAIL)
        return exc

    # -- requests -------------------------------------------------------------
    def start(self) -> bytes:
        """The request message to send at 300 Bd 7E1."""
        self._transition(_T.START)
        return self._request

    def acknowledge(self) -> bytes:
        """The option select message selecting mode E (ACK '2' Z '2' CR LF).

        Z is the meter's baud character or a lower one if ``max_baud`` is
        lower. Sent whether or not the meter announced ``\\2`` (binary mode
        HDLC): some meters speak HDLC without saying so (gurux's example meter
        answers "/GRX5Gurux"), and other masters (gurux's client) select mode
        E on the baud character alone. ``Identified.hdlc_capable`` tells the
        caller, which should warn when it is False.
        """
        if self.state is not OpeningState.IDENTIFIED or self.identified is None:
            raise LocalProtocolError(f"cannot acknowledge in state {self.state.name}")
        ident = self.identified
        limit = ident.baud_rate if self.max_baud is None else min(ident.baud_rate, self.max_baud)
        char = max(
            (c for c, rate in BAUD_RATES_MODE_C.items() if rate <= limit),
            key=BAUD_RATES_MODE_C.__getitem__,
        )
        self._ack = OptionSelectMessage(char).to_bytes()
        # A probe that echoed the request echoes the ACK too; wait for it so
        # that it does not reach the HDLC layer.
        self._expect_ack_echo = self.echo and self.echo_seen
        self._transition(_T.ACKNOWLEDGE)
        return self._ack

    @property
    def selected_baud(self) -> int | None:
        """The rate chosen by ``acknowledge()``."""
        return BAUD_RATES_MODE_C[chr(self._ack[2])] if self._ack else None

    # -- input ------------------------------------------------------------------
    def receive_data(self, data: bytes) -> None:
        """Feed octets read from the line (any chunking)."""
        if self.state in (OpeningState.SWITCHED, OpeningState.FAILED):
            raise LocalProtocolError(
                f"receive_data in state {self.state.name}: the line belongs to the next layer"
                if self.state is OpeningState.SWITCHED
                else "receive_data after the opening failed"
            )
        self._buf += data

    def next_event(self) -> Event | NeedData:
        step = {OpeningState.IDENTIFICATION: self._next_identification,
                OpeningState.OPTION_SELECT: self._next_switch}.get(self.state)
        if step is not None:
            try:
                return step()
            except RemoteProtocolError as exc:
                self._fail(exc)
                raise  # the same error, its cause kept
        if self.state is OpeningState.IDLE:
            raise LocalProtocolError("next_event before start()")
        if self.state is OpeningState.IDENTIFIED:
            raise LocalProtocolError("option select: call acknowledge() after Identified")
        raise LocalProtocolError(f"next_event in state {self.state.name}")

    def _skip_to_start(self) -> bool:
        """Drop noise up to the next '/'; False if there is none yet."""
        buf = self._buf
        start = buf.find(_START)
        noise = len(buf) if start < 0 else start
        nak = buf.find(NAK, 0, noise)
        if nak >= 0:
            raise RemoteProtocolError("identification: the meter answered NAK to the request")
        if noise:
            del buf[:noise]
            self.garbage_bytes += noise
            if self.garbage_bytes > MAX_GARBAGE:
                raise DecodeError(
                    f"identification: no '/' in the first {self.garbage_bytes} bytes of noise"
                )
        return start >= 0

    def _next_identification(self) -> Event | NeedData:
        buf = self._buf
        while True:
            if not self._skip_to_start():
                return NEED_DATA
            if self.echo and not self.echo_seen:
                # The probe's echo of "/?...!" CR LF; no identification starts
                # with "/?" (the manufacturer is three letters).
                echoed = _take_echo(buf, self._request)
                if echoed is None:
                    return NEED_DATA
                if echoed:
                    self.echo_seen = True
                    continue
            break
        self._answer_started = True
        limit = _LINE_OVERHEAD + self.max_identification
        cr = buf.find(b"\r", 0, limit)
        head = buf[1 : limit if cr < 0 else cr]
        bad = next((b for b in head if not 0x20 <= b <= 0x7E), None)
        if bad is not None:
            hint = " (the line is 7E1: is the port set to 7 data bits, even parity?)"
            raise DecodeError(
                f"identification: byte 0x{bad:02x} in {_preview(buf)}"
                + (hint if bad >= 0x80 else "")
            )
        if cr < 0:
            if len(buf) >= limit:
                raise DecodeError(
                    f"identification: no CR LF within {limit} bytes: {_preview(buf)}"
                )
            return NEED_DATA
        if len(buf) < cr + 2:
            return NEED_DATA
        if buf[cr + 1] != 0x0A:
            raise DecodeError(f"identification: CR not followed by LF in {_preview(buf)}")
        line = bytes(buf[: cr + 2])
        del buf[: cr + 2]
        msg = IdentificationMessage.from_bytes(line, self.max_identification)
        rate = self._check_mode(msg)
        event = Identified(
            manufacturer=msg.manufacturer,
            baud_char=msg.baud_char,
            baud_rate=rate,
            identification=msg.identification,
            enhanced=msg.enhanced,
            reaction_20ms=msg.reaction_20ms,
        )
        self.identified = event
        self._transition(_T.IDENTIFY)
        return event

    @staticmethod
    def _check_mode(msg: IdentificationMessage) -> int:
        z = msg.baud_char
        who = f"{msg.manufacturer} {msg.identification!r}"
        if z in BAUD_RATES_MODE_C:
            return BAUD_RATES_MODE_C[z]
        if z in _RESERVED_MODE_C:
            raise RemoteProtocolError(
                f"identification: {who} sent baud rate character {z!r}, reserved in"
                " IEC 62056-21 (mode E uses '0'..'6')"
            )
        if z in BAUD_RATES_MODE_B or z in _RESERVED_MODE_B:
            rate = BAUD_RATES_MODE_B.get(z)
            said = f" ({rate} Bd)" if rate else ""
            raise RemoteProtocolError(
                f"identification: {who} sent baud rate character {z!r}{said}: protocol mode B,"
                " which has no option select; not usable for mode E"
            )
        raise RemoteProtocolError(
            f"identification: {who} sent baud rate character {z!r}: protocol mode A"
            " (no baud rate switch); not usable for mode E"
        )

    def _next_switch(self) -> Event | NeedData:
        buf = self._buf
        ack = self._ack
        if self._expect_ack_echo:
            if _take_echo(buf, ack) is None:
                return NEED_DATA
            # Removed, or (False) the probe stopped echoing: what came is the meter's.
            self._expect_ack_echo = False
        elif self.echo and buf.startswith(ack):
            del buf[: len(ack)]
        if buf[:1] == bytes([NAK]):
            raise RemoteProtocolError(
                f"option select: the meter answered NAK to {ack!r} (mode E at"
                f" {self.selected_baud} Bd refused)"
            )
        trailing = bytes(buf)
        buf.clear()
        self._transition(_T.SWITCH)
        rate = self.selected_baud
        assert rate is not None
        return SwitchLine(rate, trailing=trailing)

    # -- timing (the caller's clock) -------------------------------------------
    def timeout(self) -> float:
        """Seconds to wait for the next bytes in the current step.

        Identification: the request's time on the wire plus the longest
        reaction time, then the inter-character time once the answer started.
        Option select: the ACK's time on the wire (its echo).
        """
        if self.state is OpeningState.OPTION_SELECT:
            return wire_time(len(self._ack), OPENING_BAUD) + SWITCH_MARGIN + TIMEOUT_MARGIN
        if self._answer_started:
            return INTER_CHARACTER_TIME_MAX + TIMEOUT_MARGIN
        return wire_time(len(self._request), OPENING_BAUD) + REACTION_TIME_MAX + TIMEOUT_MARGIN

    def deadline(self, now: float) -> float:
        """``now + timeout()``, for callers that arm absolute timers."""
        return now + self.timeout()

    @property
    def switch_delay(self) -> float:
        """Seconds from handing the ACK to the line until it is on the wire at
        300 Bd, plus a margin: do not switch the baud rate earlier."""
        return wire_time(len(self._ack), OPENING_BAUD) + SWITCH_MARGIN

    def timeout_error(self, step: str | None = None) -> DlmsTimeout:
        """The :class:`DlmsTimeout` to raise when ``timeout()`` expired, naming
        the step and what was (not) seen."""
        step = step or self.step
        if self.state is OpeningState.OPTION_SELECT:
            detail = f"the probe did not echo the ACK {self._ack!r}"
        elif self._answer_started:
            detail = f"identification incomplete: {_preview(self._buf)}"
        elif self.echo_seen:
            detail = (
                "the probe echoed the request but no meter answered (probe not on the"
                " meter's optical port, wrong device address, or the meter is busy)"
            )
        elif self.garbage_bytes:
            detail = f"only {self.garbage_bytes} bytes of noise received"
        else:
            detail = "nothing received (no probe on this port, probe unpowered, wrong port?)"
        return timeout_error(step, detail)


# ---------------------------------------------------------------------------
# The meter's side
# ---------------------------------------------------------------------------


def normalise_address(address: str) -> str:
    """A device address as a meter compares it: leading zeros are ignored
    (IEC 62056-21, 6.3.1, from memory), so "0017" and "17" are one address."""
    return address.lstrip("0")


@dataclass(frozen=True)
class RequestReceived:
    """A request message arrived. ``answer`` is the identification to send
    after the reaction time (at least :attr:`min_reaction_time`), or None when
    the request addresses another device: stay silent."""

    address: str
    answer: IdentificationMessage | None

    @property
    def min_reaction_time(self) -> float:
        if self.answer is not None and self.answer.reaction_20ms:
            return REACTION_TIME_MIN_FAST
        return REACTION_TIME_MIN


@dataclass(frozen=True)
class OptionRefused:
    """An option select this meter does not serve (not binary mode, or a rate
    above the one it announced); the meter stays at 300 Bd and waits for the
    next request."""

    message: bytes
    reason: str


ServerEvent = RequestReceived | OptionRefused | SwitchLine


class ModeEServer:
    """Meter side of the protocol mode E opening (the simulator's).

    ``identifications`` maps a device address to the identification the
    device at that address answers with; the key "" is the device that answers
    "/?!" (the one on the optical port). Addresses compare without leading
    zeros. Each identification must announce a mode E baud rate ('0'..'6');
    ``\\2`` is optional (gurux's meter leaves it out, and the clients of the
    daemon and of gurux select mode E without it).

    Waiting for a request, everything up to "/?" is line noise (HDLC frames
    of a client that skipped the opening included) and is dropped. After an
    answered request the option select ACK '2' Z '2' CR LF, with Z not above
    the announced rate, ends the opening with :class:`SwitchLine`; anything
    else is :class:`OptionRefused` and the meter waits for a new request, as
    it does for a new request instead of the ACK. ``reset()`` returns to
    waiting (the caller's timer: no ACK within :meth:`timeout`, or the HDLC
    link ended).
    """

    def __init__(self, identifications: dict[str, IdentificationMessage]) -> None:
        if not identifications:
            raise LocalProtocolError("mode E server: no identification to answer with")
        self._idents: dict[str, IdentificationMessage] = {}
        for address, ident in identifications.items():
            _check_address(address)
            if ident.baud_char not in BAUD_RATES_MODE_C:
                raise LocalProtocolError(
                    f"mode E server: identification {ident.to_bytes()!r} must announce a"
                    " mode C/E baud rate character ('0'..'6')"
                )
            self._idents[normalise_address(address)] = ident
        self._buf = bytearray()
        self._answered: IdentificationMessage | None = None
        self.garbage_bytes = 0

    @property
    def waiting_for_option(self) -> bool:
        return self._answered is not None

    def reset(self) -> None:
        self._buf.clear()
        self._answered = None

    def receive_data(self, data: bytes) -> None:
        self._buf += data

    def timeout(self) -> float:
        """How long to wait for the option select after the identification
        was sent: its reaction time bound plus our margin."""
        return REACTION_TIME_MAX + TIMEOUT_MARGIN

    def next_event(self) -> ServerEvent | NeedData:
        buf = self._buf
        if self._answered is not None:
            ack = buf.find(ACK)
            req = buf.find(b"/?")
            if req >= 0 and (ack < 0 or req < ack):
                self._answered = None  # a new request instead of the ACK
            elif ack >= 0:
                if len(buf) < ack + 6:
                    return NEED_DATA
                message = bytes(buf[ack:ack + 6])
                del buf[:ack + 6]
                return self._option(message)
            else:
                self._drop(len(buf) - 1 if buf.endswith(b"/") else len(buf))
                return NEED_DATA
        start = buf.find(b"/?")
        if start < 0:
            self._drop(len(buf) - 1 if buf.endswith(b"/") else len(buf))
            return NEED_DATA
        self._drop(start)
        end = buf.find(b"!\r\n")
        limit = 2 + MAX_DEVICE_ADDRESS_LENGTH + 3
        if end < 0 or end + 3 > limit:
            if len(buf) >= limit:  # no request after all: skip the "/?" and go on
                self._drop(2)
                return self.next_event()
            return NEED_DATA
        raw = bytes(buf[:end + 3])
        del buf[:end + 3]
        try:
            request = RequestMessage.from_bytes(raw)
        except DecodeError:
            self.garbage_bytes += len(raw)
            return self.next_event()
        answer = self._idents.get(normalise_address(request.address))
        self._answered = answer
        return RequestReceived(request.address, answer)

    def _drop(self, count: int) -> None:
        if count > 0:
            del self._buf[:count]
            self.garbage_bytes += count

    def _option(self, message: bytes) -> ServerEvent:
        ident = self._answered
        assert ident is not None
        self._answered = None
        try:
            option = OptionSelectMessage.from_bytes(message)
        except DecodeError as exc:
            return OptionRefused(message, str(exc))
        if option.protocol is not ProtocolControl.HDLC or option.mode is not ModeControl.BINARY:
            return OptionRefused(
                message, f"option select {message!r}: only ACK '2' Z '2' (mode E, HDLC) is served")
        offered = BAUD_RATES_MODE_C[ident.baud_char]
        rate = BAUD_RATES_MODE_C.get(option.baud_char)
        if rate is None or rate > offered:
            return OptionRefused(
                message, f"option select {message!r}: baud rate character"
                f" {option.baud_char!r} is not one of '0'..{ident.baud_char!r}")
        trailing = bytes(self._buf)
        self._buf.clear()
        return SwitchLine(rate, trailing=trailing)
