"""Faults the simulated meter can be told to commit (``dlms-sim --fault SPEC``; pure).

Two families (spelled as in ``dlmsd/sim/README.md``):

* a noisy line on a healthy meter: ``drop-request:N``, ``drop-reply:N``, ``corrupt:N``,
  ``delay:MS[:N]``, ``disconnect:N`` (counts are whole frames per direction and per
  connection, from 1);
* hostile meters: ``garbage``, ``stale-flood``, ``huge-length``, ``null-bomb``,
  ``slow-loris[:MS]``, ``stall-mid-block``, ``close-after-aare``, ``flag-flood``.

A :class:`FaultPlan` is one connection's decisions.  The I/O shell (``cli.py`` for TCP,
``serve_serial.py`` for a serial line) hands it what it would do and does what it says
instead::

    link.receive_data(plan.incoming(data))        # drop-request
    ...
    response = plan.on_apdu(request, response, limit)   # APDU-level hostile answers
    out += link.send_apdu(response)
    ...
    for action in plan.outgoing(out):             # per whole frame
        Write / Hold / Trickle / Flood / Close / Silence

No I/O and no clock here: delays and intervals are numbers the shell sleeps; the
random bytes of ``garbage`` come from a ``random.Random`` the shell seeds.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from dlmsd.errors import ConfigError
from dlmsd.protocol.axdr import encode_length
from dlmsd.protocol.sn import DataBlockResult, ReadResponse
from dlmsd.protocol.xdlms import GetResponseWithDatablock
from dlmsd.sim.server import MeterServer

__all__ = [
    "FAULT_HELP",
    "HOSTILE",
    "NOISY",
    "Action",
    "Close",
    "Fault",
    "FaultPlan",
    "FaultyServer",
    "Flood",
    "Hold",
    "Silence",
    "Trickle",
    "Write",
    "parse_fault",
    "split_frames",
]

HDLC_FLAG: Final = 0x7E
_WRAPPER_HEADER: Final = 8
_WRAPPER_VERSION: Final = b"\x00\x01"
# A frame splitter that never finds a frame hands its bytes on as they are once this
# many have piled up (the link then refuses them; nothing grows without bound).
_MAX_PENDING: Final = 0x10000
#: Total raw data of a null bomb: about 1 MiB of A-XDR nulls.
NULL_BOMB_SIZE: Final = 1 << 20
#: stale-flood: one stale answer every this many seconds (5 to 10 ms).
STALE_INTERVAL: Final = (0.005, 0.010)
#: flag-flood: octets written per chunk, and the pause between chunks (keeps the
#: simulator's own CPU bounded when the client reads as fast as it can).
FLAG_CHUNK: Final = bytes([HDLC_FLAG, 0xA0]) * 2048
FLAG_INTERVAL: Final = 0.002
#: slow-loris: the default interval between octets, milliseconds.
SLOW_LORIS_MS: Final = 500
#: stall-mid-block: the sizes forced so that answers are split (blocks and segments).
STALL_MAX_PDU: Final = 128
STALL_MAX_INFO: Final = 64
#: huge-length: an A-XDR octet-string claiming 0xFFFFFFFF octets (Green Book A-XDR
#: length: 0x84 then four length octets).
HUGE_AXDR_LENGTH: Final = bytes([0x09, 0x84, 0xFF, 0xFF, 0xFF, 0xFF])

_AARE: Final = 0x61
_GET_REQUEST, _GET_RESPONSE = 0xC0, 0xC4
_READ_REQUEST, _READ_RESPONSE = 0x05, 0x0C
_NORMAL, _NEXT, _WITH_LIST = 1, 2, 3
# GET, SET and ACTION responses: tag, choice, invoke-id-and-priority.
_INVOKE_ID_ANSWERS: Final = frozenset({0xC4, 0xC5, 0xC7})
_WITH_DATABLOCK: Final = 2
# SN: the read result choice data-block-result (Green Book, ReadResponse).
_SN_DATA_BLOCK: Final = 2
# SN: a ReadRequest item of block-number-access (variable-access-specification [5]).
_SN_BLOCK_NUMBER_ACCESS: Final = 5


class Kind(enum.Enum):
    DROP_REQUEST = "drop-request"
    DROP_REPLY = "drop-reply"
    CORRUPT = "corrupt"
    DELAY = "delay"
    DISCONNECT = "disconnect"
    GARBAGE = "garbage"
    STALE_FLOOD = "stale-flood"
    HUGE_LENGTH = "huge-length"
    NULL_BOMB = "null-bomb"
    SLOW_LORIS = "slow-loris"
    STALL_MID_BLOCK = "stall-mid-block"
    CLOSE_AFTER_AARE = "close-after-aare"
    FLAG_FLOOD = "flag-flood"


NOISY: Final = frozenset({Kind.DROP_REQUEST, Kind.DROP_REPLY, Kind.CORRUPT, Kind.DELAY,
                          Kind.DISCONNECT})
HOSTILE: Final = frozenset(set(Kind) - NOISY)

#: One line per spelling, for ``dlms-sim --help``.
FAULT_HELP: Final = (
    "drop-request:N (drop every Nth frame the client sends), drop-reply:N (drop every "
    "Nth frame the meter sends), corrupt:N (HDLC: a bad FCS; wrapper: a wrong "
    "invoke-id or APDU tag), delay:MS[:N] (hold every [Nth] reply MS ms), "
    "disconnect:N (close after the Nth reply); hostile meters: garbage, stale-flood, "
    "huge-length, null-bomb, "
    "slow-loris[:MS], stall-mid-block, close-after-aare, flag-flood. Counts are frames "
    "per direction per connection, from 1. See dlmsd/sim/README.md."
)


@dataclass(frozen=True)
class Fault:
    """One parsed ``--fault``: its kind, ``every`` (N) and ``ms`` where they apply."""

    kind: Kind
    every: int = 1
    ms: int = 0

    def __str__(self) -> str:
        if self.kind is Kind.DELAY:
            return f"delay:{self.ms}" + (f":{self.every}" if self.every != 1 else "")
        if self.kind is Kind.SLOW_LORIS:
            return f"slow-loris:{self.ms}"
        if self.kind in NOISY:
            return f"{self.kind.value}:{self.every}"
        return str(self.kind.value)


def _number(spec: str, text: str, what: str, low: int) -> int:
    if not text.isdigit() or int(text) < low:
        raise ConfigError(f"--fault {spec!r}: {what} must be a whole number >= {low}, "
                         f"not {text!r}")
    return int(text)


def parse_fault(spec: str) -> Fault:
    """``spec`` as a :class:`Fault`; :class:`~dlmsd.errors.ConfigError` naming the
    spec otherwise."""
    name, *args = spec.strip().lower().split(":")
    try:
        kind = Kind(name)
    except ValueError:
        known = ", ".join(k.value for k in Kind)
        raise ConfigError(f"--fault {spec!r}: unknown fault {name!r} (known: {known})") from None
    if kind is Kind.DELAY:
        if len(args) not in (1, 2):
            raise ConfigError(f"--fault {spec!r}: write delay:MS or delay:MS:N")
        every = _number(spec, args[1], "N", 1) if len(args) == 2 else 1
        return Fault(kind, every=every, ms=_number(spec, args[0], "MS", 0))
    if kind is Kind.SLOW_LORIS:
        if len(args) > 1:
            raise ConfigError(f"--fault {spec!r}: write slow-loris or slow-loris:MS")
        return Fault(kind, ms=_number(spec, args[0], "MS", 1) if args else SLOW_LORIS_MS)
    if kind in NOISY:
        if len(args) != 1:
            raise ConfigError(f"--fault {spec!r}: write {kind.value}:N")
        return Fault(kind, every=_number(spec, args[0], "N", 1))
    if args:
        raise ConfigError(f"--fault {spec!r}: {kind.value} takes no argument")
    return Fault(kind)


def check_faults(faults: tuple[Fault, ...], serial: bool = False) -> None:
    """Faults that cannot go together: at most one hostile meter, and each kind once."""
    kinds = [f.kind for f in faults]
    hostile = [k.value for k in kinds if k in HOSTILE]
    if len(hostile) > 1:
        raise ConfigError(f"--fault: one hostile meter at a time, not {', '.join(hostile)}")
    twice = {k.value for k in kinds if kinds.count(k) > 1}
    if twice:
        raise ConfigError(f"--fault: {', '.join(sorted(twice))} given twice")
    if serial:
        unfit = [k.value for k in kinds if k in SERIAL_UNFIT]
        if unfit:
            raise ConfigError(f"--fault {', '.join(unfit)}: not on a serial line (TCP only)")


#: Faults that need a connection to close or a stream that only the client's closing
#: ends; a serial line has neither.
SERIAL_UNFIT: Final = frozenset({Kind.DISCONNECT, Kind.CLOSE_AFTER_AARE, Kind.STALE_FLOOD,
                                 Kind.FLAG_FLOOD})


# ====================================================================== actions
@dataclass(frozen=True)
class Write:
    """Send these octets now."""

    data: bytes
    note: str = ""


@dataclass(frozen=True)
class Hold:
    """Wait ``seconds`` before the next action."""

    seconds: float
    note: str = ""


@dataclass(frozen=True)
class Trickle:
    """Send ``data`` one octet at a time, ``interval`` seconds apart."""

    data: bytes
    interval: float
    note: str = ""


@dataclass(frozen=True)
class Flood:
    """Send ``unit`` again and again, ``interval`` seconds apart (drawn each time in
    ``interval``'s range), until the client goes away."""

    unit: bytes
    interval: tuple[float, float]
    note: str = ""


@dataclass(frozen=True)
class Close:
    """Close the connection (after what came before)."""

    note: str = ""


@dataclass(frozen=True)
class Silence:
    """Answer nothing more on this connection (it stays open)."""

    note: str = ""


Action = Write | Hold | Trickle | Flood | Close | Silence


# ====================================================================== frames
def split_frames(kind: str, buffer: bytearray) -> list[bytes]:
    """Take the whole frames off the front of ``buffer`` ("hdlc" or "wrapper").

    HDLC (IEC 62056-46, frame format field: type 0xA, the segmentation bit, an 11-bit
    length of the frame without its flags): octets before a flag are handed on as they
    are (the deframer drops them); wrapper (IEC 62056-47): an 8-octet header whose last
    two octets are the length of the APDU that follows.  Incomplete frames stay in the
    buffer, unless more than 64 KiB pile up: those are handed on whole.
    """
    frames: list[bytes] = []
    while buffer:
        if kind == "hdlc":
            start = buffer.find(HDLC_FLAG)
            if start < 0:
                start = len(buffer)
            if start:
                frames.append(bytes(buffer[:start]))
                del buffer[:start]
                continue
            if len(buffer) >= 2 and buffer[1] == HDLC_FLAG:
                frames.append(bytes(buffer[:1]))  # a closing flag alone, or flag fill
                del buffer[:1]
                continue
            if len(buffer) < 3:
                break
            end = (((buffer[1] & 0x07) << 8) | buffer[2]) + 2
        else:
            if len(buffer) < _WRAPPER_HEADER:
                break
            end = _WRAPPER_HEADER + int.from_bytes(buffer[6:8], "big")
        if len(buffer) < end:
            if len(buffer) > _MAX_PENDING:
                frames.append(bytes(buffer))
                buffer.clear()
            break
        frames.append(bytes(buffer[:end]))
        del buffer[:end]
    return frames


def _is_frame(kind: str, frame: bytes) -> bool:
    """A real frame, not flag fill or octets between frames."""
    if kind == "hdlc":
        return len(frame) > 2 and frame[0] == HDLC_FLAG
    return len(frame) >= _WRAPPER_HEADER


def _first_segment(data: bytes) -> bool:
    """HDLC: the first frame of ``data`` is a segment with more to follow (IEC 62056-46
    frame format field: type 0xA, then the segmentation bit S, 0x08 of its first
    octet), so an answer split over several frames is stalled after its first one."""
    frames = [f for f in split_frames("hdlc", bytearray(data)) if _is_frame("hdlc", f)]
    return bool(frames) and frames[0][1] & 0x08 != 0


def corrupt_frame(kind: str, frame: bytes) -> bytes:
    """HDLC: flip the last FCS octet (the one before the closing flag).  Wrapper (TCP
    checks its own octets, so the fault is one the peer's software made): the answer
    of a GET, SET or ACTION gets a wrong invoke-id (its lowest bit flipped), any other
    APDU an unknown tag (its first octet flipped)."""
    spoilt = bytearray(frame)
    if kind == "hdlc":
        spoilt[-2] ^= 0xFF
    elif len(spoilt) > _WRAPPER_HEADER + 2 and spoilt[_WRAPPER_HEADER] in _INVOKE_ID_ANSWERS:
        spoilt[_WRAPPER_HEADER + 2] ^= 0x01
    elif len(spoilt) > _WRAPPER_HEADER:
        spoilt[_WRAPPER_HEADER] ^= 0xFF
    return bytes(spoilt)


def garbage(kind: str, size: int, rng: random.Random) -> bytes:
    """``size`` random octets that are no frame: without the HDLC flag, and for the
    wrapper not starting with its version."""
    octets = bytearray(rng.randrange(256) for _ in range(max(size, 8)))
    if kind == "hdlc":
        octets = octets.replace(bytes([HDLC_FLAG]), b"\x5a")
    elif octets[:2] == _WRAPPER_VERSION:
        octets[0] = 0xFF
    return bytes(octets)


# ====================================================================== APDUs
def _associated_reply(request: bytes) -> bool:
    return bool(request) and request[0] in (_GET_REQUEST, _READ_REQUEST)


def stale_answer(request: bytes, response: bytes) -> bytes:
    """The answer to ``request`` as it would come from an older exchange.

    LN: ``response`` with the invoke-id of the request before (invoke-id - 1, modulo
    16, priority and service class kept): the Green Book's only way to tell an answer
    from a stale one.  SN has no invoke-id; the closest equivalent is an answer that
    cannot belong to the request: a ReadResponse with one result more than the request
    asked for (the answer to a longer, older Read).
    """
    if response[:1] == bytes([_GET_RESPONSE]) and len(response) >= 3:
        iid = response[2]
        stale = (iid & 0xF0) | ((iid - 1) & 0x0F)
        return response[:2] + bytes([stale]) + response[3:]
    if response[:1] == bytes([_READ_RESPONSE]) and len(response) >= 2 and response[1] < 0x7F:
        # count + 1 results: the first one repeated
        return bytes([_READ_RESPONSE, response[1] + 1]) + response[2:] + _first_result(response)
    return response


def _first_result(response: bytes) -> bytes:
    # A ReadResponse result: choice 0 (data) + Data, or 1 (data-access-error) + enum.
    # Repeating a whole result needs its length; a data-access-error (2 octets)
    # stands in for it, which is as stale.
    return b"\x01\x03"  # data-access-error, scope-of-access-violated (any error)


def _raw_nulls(first: bool, size: int, sn: bool = False) -> bytes:
    """Raw block data of a null bomb: an array claiming NULL_BOMB_SIZE nulls, then
    nulls (A-XDR null-data is the single tag 0x00).  SN: the raw data is the encoded
    result list, so it starts with one result, of choice data."""
    if not first:
        return bytes(size)
    head = (b"\x01\x00" if sn else b"") + b"\x01" + encode_length(NULL_BOMB_SIZE)
    return head + bytes(max(size - len(head), 0))


def _huge_response(request: bytes) -> bytes:
    if request[0] == _GET_REQUEST and len(request) >= 3:
        # GET-Response-Normal, the same invoke-id, Get-Data-Result data, an octet-string
        # claiming 4 GiB, and a few octets of it.
        return bytes([_GET_RESPONSE, _NORMAL, request[2], 0x00]) + HUGE_AXDR_LENGTH + b"\x00" * 4
    # ReadResponse, one result, data
    return bytes([_READ_RESPONSE, 0x01, 0x00]) + HUGE_AXDR_LENGTH + b"\x00" * 4


def _block_answer(response: bytes) -> bool:
    if response[:2] == bytes([_GET_RESPONSE, _WITH_DATABLOCK]):
        return True
    return (len(response) >= 3 and response[0] == _READ_RESPONSE
            and response[2] == _SN_DATA_BLOCK)


# ====================================================================== the plan
@dataclass
class FaultPlan:
    """One connection's faults (see the module text).  ``kind``: "hdlc" or "wrapper";
    ``rng``: the source of garbage and of the stale-flood's intervals."""

    faults: tuple[Fault, ...]
    kind: str = "hdlc"
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    requests: int = 0  # frames the client sent
    replies: int = 0  # frames the meter sent (or would have)
    associated: bool = False
    _pending: bytearray = field(default_factory=bytearray)
    _by_kind: dict[Kind, Fault] = field(default_factory=dict)
    _aare: bool = False
    _stale: bool = False
    _stall: bool = False  # the next reply is the first block of a block answer
    _silent: bool = False
    _closed: bool = False
    _bomb_sent: int = 0  # null-bomb: raw octets sent so far
    _bomb_block: int = 0
    #: What the last ``on_apdu`` did instead of answering plainly ("" when nothing),
    #: for the shell's log.
    note: str = ""

    def __post_init__(self) -> None:
        self._by_kind = {f.kind: f for f in self.faults}

    def has(self, kind: Kind) -> bool:
        return kind in self._by_kind

    @property
    def active(self) -> bool:
        return bool(self.faults)

    # ------------------------------------------------------------------ client -> meter
    def incoming(self, data: bytes) -> bytes:
        """What the meter is to see of ``data`` (drop-request removes whole frames)."""
        fault = self._by_kind.get(Kind.DROP_REQUEST)
        if fault is None:
            return data
        self._pending += data
        kept = bytearray()
        for frame in split_frames(self.kind, self._pending):
            if _is_frame(self.kind, frame):
                self.requests += 1
                if self.requests % fault.every == 0:
                    continue
            kept += frame
        return bytes(kept)

    def dropped_requests(self) -> int:
        fault = self._by_kind.get(Kind.DROP_REQUEST)
        return 0 if fault is None else self.requests // fault.every

    # ------------------------------------------------------------------ APDUs
    def on_apdu(self, request: bytes, response: bytes, limit: int) -> bytes:
        """The response APDU to send instead of ``response`` (to ``request``);
        ``limit`` is the largest response the association allows."""
        self.note = ""
        if not response:
            return response
        if response[0] == _AARE:
            self.associated = True
            self._aare = True
            return response
        if not self.associated or not _associated_reply(request):
            return response
        if self.has(Kind.STALE_FLOOD):
            self._stale = True
            self.note = "a stale answer instead of the real one"
            return stale_answer(request, response)
        if self.has(Kind.HUGE_LENGTH):
            self.note = "an A-XDR length of 0xFFFFFFFF"
            return _huge_response(request)
        if self.has(Kind.NULL_BOMB):
            answer = self._null_bomb(request, limit)
            self.note = f"null-bomb block {self._bomb_block}"
            return answer
        if self.has(Kind.STALL_MID_BLOCK) and _block_answer(response):
            self._stall = True
        return response

    def _null_bomb(self, request: bytes, limit: int) -> bytes:
        sn = request[0] == _READ_REQUEST
        if sn:
            follow_on = len(request) >= 3 and request[2] == _SN_BLOCK_NUMBER_ACCESS
        else:
            follow_on = len(request) >= 2 and request[1] == _NEXT
        if not follow_on:
            self._bomb_sent, self._bomb_block = 0, 0
        header = (6 if sn else 9) + len(encode_length(limit))
        size = max(limit - header, 8)
        self._bomb_block += 1
        raw = _raw_nulls(self._bomb_block == 1, size, sn)
        self._bomb_sent += len(raw)
        last = self._bomb_sent >= NULL_BOMB_SIZE
        if sn:
            return ReadResponse((DataBlockResult(last, self._bomb_block, raw),)).to_bytes()
        iid = request[2] if len(request) >= 3 else 0xC1
        return GetResponseWithDatablock(last, self._bomb_block, raw, iid).to_bytes()

    # ------------------------------------------------------------------ meter -> client
    def outgoing(self, data: bytes) -> list[Action]:
        """What to do instead of sending ``data`` (the meter's frames of one turn)."""
        if not data:
            return []
        if self._closed:
            return []
        if self._silent:
            return []
        if not self.faults:
            return [Write(data)]
        hostile = self._hostile(data)
        if hostile is not None:
            return hostile
        return self._noisy(data)

    def _hostile(self, data: bytes) -> list[Action] | None:
        if self.has(Kind.GARBAGE):
            return [Write(garbage(self.kind, len(data), self.rng), "garbage instead of a reply")]
        if self.has(Kind.CLOSE_AFTER_AARE) and self._aare:
            self._closed = True
            return [Write(data), Close("closed right after the AARE")]
        if self.has(Kind.STALE_FLOOD) and self._stale:
            self._silent = True
            return [Flood(data, STALE_INTERVAL, "stale answers, endlessly")]
        if self.has(Kind.FLAG_FLOOD) and self.associated and not self._aare:
            self._silent = True
            return [Flood(FLAG_CHUNK, (FLAG_INTERVAL, FLAG_INTERVAL), "7E A0, endlessly")]
        self._aare = False
        if self.has(Kind.HUGE_LENGTH) and self.associated and self.kind == "wrapper":
            frames = [f for f in split_frames(self.kind, bytearray(data))]
            if frames and len(frames[0]) > _WRAPPER_HEADER:
                apdu = frames[0][_WRAPPER_HEADER:]
                if apdu[:1] in (bytes([_GET_RESPONSE]), bytes([_READ_RESPONSE])):
                    self._silent = True
                    header = frames[0][:6] + b"\xff\xff"
                    return [Write(header + apdu, "wrapper length 0xFFFF, then nothing")]
        if self.has(Kind.SLOW_LORIS):
            fault = self._by_kind[Kind.SLOW_LORIS]
            return [Trickle(data, fault.ms / 1000, f"one octet every {fault.ms} ms")]
        if self.has(Kind.STALL_MID_BLOCK) and (self._stall or (
                self.associated and self.kind == "hdlc" and _first_segment(data))):
            self._silent = True
            frames = split_frames(self.kind, bytearray(data))
            real = [f for f in frames if _is_frame(self.kind, f)]
            return [Write(real[0] if real else data, "first block only, then nothing")]
        return None

    def _noisy(self, data: bytes) -> list[Action]:
        actions: list[Action] = []
        out = bytearray()

        def flush() -> None:
            if out:
                actions.append(Write(bytes(out)))
                out.clear()

        drop = self._by_kind.get(Kind.DROP_REPLY)
        corrupt = self._by_kind.get(Kind.CORRUPT)
        delay = self._by_kind.get(Kind.DELAY)
        disconnect = self._by_kind.get(Kind.DISCONNECT)
        for frame in split_frames(self.kind, bytearray(data)) or [data]:
            if not _is_frame(self.kind, frame):
                out += frame
                continue
            self.replies += 1
            n = self.replies
            if delay is not None and n % delay.every == 0:
                flush()
                actions.append(Hold(delay.ms / 1000, f"reply {n} held {delay.ms} ms"))
            if drop is not None and n % drop.every == 0:
                flush()
                actions.append(Write(b"", f"reply {n} dropped"))
            elif corrupt is not None and n % corrupt.every == 0:
                flush()
                actions.append(Write(corrupt_frame(self.kind, frame), f"reply {n} corrupted"))
            else:
                out += frame
            if disconnect is not None and n == disconnect.every:
                flush()
                self._closed = True
                actions.append(Close(f"closed after reply {n}"))
                return actions
        flush()
        return actions


class FaultyServer(MeterServer):
    """A :class:`MeterServer` whose answers go through ``plan.on_apdu`` (for the
    serial line, whose links are inside :class:`~dlmsd.sim.line.SerialLine`)."""

    def __init__(self, plan: FaultPlan, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.plan = plan

    def handle(self, apdu: bytes, now: datetime) -> bytes:
        return self.plan.on_apdu(apdu, super().handle(apdu, now), self.response_limit)
