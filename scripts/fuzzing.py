"""The engine of scripts/fuzz: targets, mutations, bounds, the report.

A *target* is one decoder (or state machine) of dlmsd and the errors its API
documents for bad input.  Each input is a seed of the target's kinds
(scripts/fuzz_seeds.py: test vectors naming their source, and frames of normal
sessions with the simulator's pure meter), mutated one to four times:

* bit flips; an octet set to a boundary value (00, 01, 7E, 7F, 80, 81, FE, FF) or a
  random one;
* insertion, deletion and duplication of a range (a duplicate up to 64 times);
* length-field edits: an octet moved by one, an A-XDR length in long form
  (81 xx, 82 xxxx, 84 FFFFFFFF), and for framed seeds the HDLC frame length or the
  wrapper length;
* truncation (of the end or of the start) and a splice of two seeds.

Framed inputs then get their frame checks made right again half of the time (HDLC
HCS/FCS and length, wrapper length) so that mutations reach the layers beneath.

A *failure* is an exception outside the target's documented errors (the dlmsd.errors
tree: DecodeError, RemoteProtocolError, ...), a broken invariant of the target (a
round trip that does not come back, two chunkings of one stream that cut it
differently, a HighGmac key in a reader's trace, note or error), an input taking
longer than the time bound (100 ms for an input under 4 KiB, in proportion above;
1 s for a whole MeterReader session; measured three times before it counts), or
more memory than the memory bound (traced with tracemalloc on every 16th input and
on every slow one).  A decode still running after ten times its bound is
interrupted (SIGALRM) and reported as a hang.

Everything is deterministic for a given ``--seed``: each target draws from its own
``random.Random(f"{seed}:{name}")``; only how many inputs fit the time varies.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import itertools
import random
import signal
import sys
import time
import traceback
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import FrameType as PyFrame
from typing import Any

import fuzz_seeds
from fuzz_seeds import GB_AK, GB_EK, GB_SYSTEM_TITLE, SEEDS, SESSIONS, Session, Stuck, record

from dlmsd.errors import DecodeError, DlmsdError, LocalProtocolError, RemoteProtocolError
from dlmsd.protocol import hdlc_frame
from dlmsd.protocol import iec62056_21 as iec
from dlmsd.protocol.acse import Aare, Aarq, Rlre, Rlrq
from dlmsd.protocol.apdu import decode_apdu, describe_apdu
from dlmsd.protocol.axdr import Data, decode_data_all, describe, encode_data, to_python
from dlmsd.protocol.hdlc_frame import Frame, FrameType, HdlcDeframer, HdlcParameters, crc16_x25
from dlmsd.protocol.link import ApduReceived, Connected, Disconnected, HdlcLink, WrapperLink
from dlmsd.protocol.security import (
    GENERAL_GLO_CIPHERING,
    AuthenticationFailure,
    SecurityControl,
    is_ciphered,
    protect,
    unprotect,
)
from dlmsd.protocol.security import describe as security_describe
from dlmsd.protocol.sn import decode_sn_apdu, describe_sn_apdu
from dlmsd.protocol.wrapper import HEADER_SIZE, WrapperConnection
from dlmsd.protocol.xdlms import GetResponseNormal
from dlmsd.sim.auth import DEFAULT_SYSTEM_TITLE
from dlmsd.sim.model import Meter
from dlmsd.sim.server import MeterServer, Referencing, ServerOptions

__all__ = ["TARGETS", "Target", "main", "mutate"]

MAX_INPUT = 8192  # octets; mutations never grow an input beyond this
SMALL = 4096  # inputs under this size get the plain time bound
MEMORY_EVERY = 16  # trace the memory of every n-th input
SLICE_S = 0.25  # each target runs this long before the next one's turn


class BrokenInvariant(AssertionError):
    """A target's invariant does not hold (a round trip, two chunkings)."""


class Hang(BaseException):
    """Raised by SIGALRM inside an input that runs ten times over its time bound
    (a BaseException, so that no ``except Exception`` in the code under test eats it)."""


def check(condition: bool, what: str) -> None:
    if not condition:
        raise BrokenInvariant(what)


# ----------------------------------------------------------------------- targets


@dataclass
class Target:
    """One decoder: ``run(data)`` feeds it one input; ``allowed`` are the errors its
    API documents for bad input (anything else is a failure)."""

    name: str
    doc: str
    seeds: Callable[[], list[bytes]]
    run: Callable[[bytes], object]
    allowed: tuple[type[BaseException], ...] = (DecodeError,)
    framing: str | None = None  # "hdlc" / "wrapper": frame checks fixed half the time
    time_bound: float = 0.1  # seconds for an input under SMALL octets
    memory_bound: int = 16 << 20  # octets traced at the peak
    mutator: Callable[[random.Random, bytes, Sequence[bytes]], bytes] | None = None


def _static(*kinds: str) -> list[bytes]:
    return [s.data for s in SEEDS if s.kind in kinds]


def _recordings() -> list[fuzz_seeds.Recording]:
    return [record(spec.name) for spec in SESSIONS]


def _plain(recording: fuzz_seeds.Recording) -> bool:
    return not recording.spec.gmac


@cache
def hdlc_seeds() -> list[bytes]:
    live = [f for r in _recordings() if r.spec.kind == "hdlc"
            for f in r.to_client + r.to_meter]
    return _static("hdlc") + live


@cache
def hdlc_streams(direction: str) -> list[bytes]:
    """Whole HDLC sessions, one direction, and the static frames run together."""
    streams = [b"".join(getattr(r, direction)) for r in _recordings() if r.spec.kind == "hdlc"]
    return [*streams, b"".join(_static("hdlc"))]


@cache
def wrapper_seeds() -> list[bytes]:
    live = [f for r in _recordings() if r.spec.kind == "wrapper"
            for f in r.to_client + r.to_meter]
    streams = [b"".join(r.to_client) for r in _recordings() if r.spec.kind == "wrapper"]
    return _static("wrapper") + live + streams


@cache
def apdu_seeds(referencing: str) -> list[bytes]:
    kind = "apdu" if referencing == "LN" else "sn_apdu"
    live = [a for r in _recordings() if r.spec.referencing == referencing and _plain(r)
            for a in r.requests + r.responses]
    return _static(kind) + live


@cache
def axdr_seeds() -> list[bytes]:
    values = []
    for apdu in apdu_seeds("LN"):
        with contextlib.suppress(DecodeError):
            decoded = decode_apdu(apdu)
            if isinstance(decoded, GetResponseNormal) and isinstance(decoded.result, Data):
                values.append(encode_data(decoded.result))
    return _static("axdr") + values


@cache
def acse_seeds() -> list[bytes]:
    live = [a for r in _recordings() for a in r.requests + r.responses if a[:1] in
            (b"\x60", b"\x61", b"\x62", b"\x63")]
    return [a for a in _static("apdu") if a[:1] in (b"\x60", b"\x61", b"\x62", b"\x63")] + live


@cache
def parameter_seeds() -> list[bytes]:
    """Information fields of the SNRM and UA frames (the HDLC parameter negotiation)."""
    out = []
    for raw in hdlc_seeds():
        with contextlib.suppress(DecodeError):
            frame = Frame.from_bytes(raw)
            if frame.control.type in (FrameType.SNRM, FrameType.UA) and frame.information:
                out.append(frame.information)
    return out


REQUEST = iec.RequestMessage().to_bytes()
SNRM = hdlc_frame.Frame(hdlc_frame.decode_server_address(
    hdlc_frame.encode_server_address(1, 17, 2)), hdlc_frame.HdlcAddress(16),
    hdlc_frame.Control(FrameType.SNRM, True, 0, 0)).to_bytes()


@cache
def iec_line_seeds() -> list[bytes]:
    lines = _static("iec_ident")
    return [*lines, REQUEST, b"/?12345678!\r\n", b"\x06252\r\n", b"\x06050\r\n"]


@cache
def iec_stream_seeds() -> list[bytes]:
    """What a client reads in an opening: the identification, with the probe's echo
    of the request before it and of the ACK after it, and HDLC after the switch."""
    out = []
    for line in _static("iec_ident"):
        out += [line, REQUEST + line, REQUEST + line + b"\x06252\r\n" + SNRM,
                b"\x7f\x7f" + line + SNRM]
    return out


def _apdu_invariants(decoded: Any, decode: Callable[[bytes], Any]) -> None:
    decoded.describe()
    again = decode(decoded.to_bytes())
    check(again == decoded, f"decode(to_bytes()) != the decoded APDU: {again!r}")


def run_hdlc_frame(data: bytes) -> object:
    frame = Frame.from_bytes(data)
    frame.summary()
    hdlc_frame.describe_frame(data)
    check(Frame.from_bytes(frame.to_bytes()) == frame, "Frame round trip")
    if frame.information:
        for response in (True, False):
            with contextlib.suppress(DecodeError):
                hdlc_frame.strip_llc(frame.information, response=response)
    return frame


def _deframe(data: bytes, chunk: int, *, traced: bool, bulk: bool = True,
             max_frame_length: int = hdlc_frame.MAX_FRAME_LENGTH
             ) -> tuple[list[Frame], tuple[int, ...]]:
    deframer = HdlcDeframer(trace=(lambda item: item.summary()) if traced else None,
                            bulk_skip=bulk, max_frame_length=max_frame_length)
    frames: list[Frame] = []
    for start in range(0, len(data), chunk):
        deframer.receive_data(data[start:start + chunk])
        while (frame := deframer.next_frame()) is not hdlc_frame.NEED_DATA:
            frames.append(frame)
    check(deframer.buffered <= deframer.max_frame_length + 2, "deframer buffer unbounded")
    counters = (deframer.crc_errors, deframer.format_errors, deframer.garbage_bytes,
                deframer.overflows, deframer.frames)
    return frames, counters


def run_deframer(data: bytes) -> object:
    """The same frames and counters whether false starts are skipped in bulk or one by
    one (the tests' reference), traced or not; the same frames in 7-octet chunks.  Odd
    lengths are cut with a 32-octet information field (frames of at most 47 octets)."""
    limit = 47 if len(data) % 2 else hdlc_frame.MAX_FRAME_LENGTH
    whole = max(1, len(data))
    bulk = _deframe(data, whole, traced=False, max_frame_length=limit)
    check(_deframe(data, whole, traced=True, bulk=False, max_frame_length=limit) == bulk,
          "one start at a time (traced) cuts or counts otherwise than the bulk skip")
    check(_deframe(data, 7, traced=True, max_frame_length=limit)[0] == bulk[0],
          "7-octet chunks cut the stream otherwise")
    return bulk


def run_hdlc_parameters(data: bytes) -> object:
    params = HdlcParameters.from_bytes(data)
    check(HdlcParameters.from_bytes(params.to_bytes(include_defaults=True)) == params,
          "HdlcParameters round trip")
    return params


def run_wrapper(data: bytes) -> object:
    conn = WrapperConnection(client_wport=0x10, server_wport=0x01, max_apdu_size=4096)
    conn.describe()
    events = []
    for start in range(0, len(data), 61):
        conn.receive_data(data[start:start + 61])
        while True:
            try:
                event = conn.next_event()
            except DecodeError:
                if "BROKEN" in conn.describe():
                    raise
                continue  # a foreign or empty frame: consumed, the stream goes on
            if event is hdlc_frame.NEED_DATA:
                break
            events.append(event)
    return events


def run_apdu(data: bytes) -> object:
    describe_apdu(data)
    decoded = decode_apdu(data)
    _apdu_invariants(decoded, decode_apdu)
    if isinstance(decoded, Aare):
        with contextlib.suppress(RemoteProtocolError):
            decoded.check()
    return decoded


def run_sn_apdu(data: bytes) -> object:
    describe_sn_apdu(data)
    decoded = decode_sn_apdu(data)
    _apdu_invariants(decoded, decode_sn_apdu)
    return decoded


def run_axdr(data: bytes) -> object:
    value = decode_data_all(data)
    describe(value)
    describe(value, limit=None)
    to_python(value)
    encoded = encode_data(value)
    check(encode_data(decode_data_all(encoded)) == encoded, "A-XDR encode(decode()) not stable")
    return value


def run_acse(data: bytes) -> object:
    decoded: list[object] = []
    for cls in (Aarq, Aare, Rlrq, Rlre):
        with contextlib.suppress(DecodeError):
            apdu = cls.from_bytes(data)
            _apdu_invariants(apdu, cls.from_bytes)
            decoded.append(apdu)
    if not decoded:
        raise DecodeError("none of AARQ, AARE, RLRQ, RLRE")
    return decoded


def run_iec_lines(data: bytes) -> object:
    decoded: list[object] = []
    decoders: tuple[Callable[[bytes], object], ...] = (
        iec.IdentificationMessage.from_bytes, iec.RequestMessage.from_bytes,
        iec.OptionSelectMessage.from_bytes)
    for decode in decoders:
        with contextlib.suppress(DecodeError):
            message = decode(data)
            check(decode(message.to_bytes()) == message, f"{message!r} round trip")  # type: ignore[attr-defined]
            decoded.append(message)
    if not decoded:
        raise DecodeError("no IEC 62056-21 message")
    return decoded


def run_iec_opening(data: bytes) -> object:
    opening = iec.ModeEOpening(echo=True)
    opening.start()
    for start in range(0, len(data), 5):
        opening.receive_data(data[start:start + 5])
        while (event := opening.next_event()) is not hdlc_frame.NEED_DATA:
            if isinstance(event, iec.Identified):
                opening.acknowledge()
            elif isinstance(event, iec.SwitchLine):
                return event
    return opening.state


def run_iec_meter(data: bytes) -> object:
    server = iec.ModeEServer({"": iec.IdentificationMessage("GRX", "5", "DLMS", "2")})
    events = []
    for start in range(0, len(data), 5):
        server.receive_data(data[start:start + 5])
        while (event := server.next_event()) is not hdlc_frame.NEED_DATA:
            events.append(event)
            if isinstance(event, iec.SwitchLine):
                server.reset()
    return events


#: (system title, EK, AK): the Green Book example's, and the HighGmac session's
#: (the meter's answers, then the client's requests)
KEY_SETS = ((GB_SYSTEM_TITLE, GB_EK, GB_AK),
            (DEFAULT_SYSTEM_TITLE, fuzz_seeds.GMAC_EK, fuzz_seeds.GMAC_AK),
            (bytes.fromhex(fuzz_seeds.CLIENT_TITLE), fuzz_seeds.GMAC_EK, fuzz_seeds.GMAC_AK))


@cache
def ciphered_seeds() -> list[bytes]:
    live = [a for r in _recordings() if r.spec.gmac for a in r.requests + r.responses
            if is_ciphered(a)]
    return _static("ciphered") + live


def run_security(data: bytes) -> object:
    """unprotect() under each key set until one verifies (a mutated APDU: none)."""
    security_describe(data)
    for system_title, ek, ak in KEY_SETS:
        try:
            plain, _header = unprotect(data, system_title=system_title, block_cipher_key=ek,
                                       authentication_key=ak)
        except AuthenticationFailure:
            continue
        with contextlib.suppress(DecodeError):
            decode_apdu(plain)
        return plain
    raise AuthenticationFailure("no key set verifies")


def run_security_round_trip(data: bytes) -> object:
    """A plain APDU ciphered and deciphered again, each security control and the
    general-glo form; a tag without a ciphered form is refused by protect()."""
    for sc, tag in itertools.product((0x10, 0x20, 0x30), (None, GENERAL_GLO_CIPHERING)):
        try:
            wire = protect(data, security_control=sc, system_title=GB_SYSTEM_TITLE,
                           invocation_counter=len(data), block_cipher_key=GB_EK,
                           authentication_key=GB_AK, tag=tag)
        except LocalProtocolError:
            return None  # not an APDU that has a ciphered form: our call, not input
        check(is_ciphered(wire), "protect() gave no ciphered APDU")
        back, header = unprotect(wire, system_title=GB_SYSTEM_TITLE, block_cipher_key=GB_EK,
                                 authentication_key=GB_AK,
                                 require=SecurityControl.from_byte(sc))
        check(back == data and header.invocation_counter == len(data),
              f"unprotect(protect()) SC=0x{sc:02X} tag={tag}")
    return data


_SERVER_ADDRESS = hdlc_frame.encode_server_address(1, 17, 2)


def run_hdlc_client(data: bytes) -> object:
    """The daemon's HDLC link fed a meter's side of a session: SNRM first, then the
    requests of the recorded LN session each time the link is idle."""
    requests = iter(record("ln-hdlc").requests)
    link = HdlcLink.client(16, _SERVER_ADDRESS)
    link.opening()
    up = False
    for start in range(0, len(data), 23):
        link.receive_data(data[start:start + 23])
        while (event := link.next_event()) is not hdlc_frame.NEED_DATA:
            link.data_to_send()
            if isinstance(event, Connected):
                up = True
            elif isinstance(event, Disconnected):
                return event
            if up and link.idle and isinstance(event, Connected | ApduReceived):
                request = next(requests, None)
                if request is not None:
                    link.send_apdu(request)
        if not link.idle and up:
            link.retry()  # as on a timeout: the request again, or RR
    link.closing()
    return link.dropped


def run_hdlc_meter(data: bytes) -> object:
    """dlms-sim's HDLC meter end and MeterServer fed a client's side of a session."""
    link = HdlcLink.meter(_SERVER_ADDRESS, 16, max_info=32, max_apdu_size=2048)
    server = MeterServer(Meter(fuzz_seeds._MODEL))
    for start in range(0, len(data), 29):
        link.receive_data(data[start:start + 29])
        while (event := link.next_event()) is not hdlc_frame.NEED_DATA:
            link.data_to_send()
            if isinstance(event, ApduReceived):
                response = server.handle(event.apdu, fuzz_seeds.SIM_NOW)
                link.send_apdu(response) if response else link.acknowledge()
            else:
                server.reset()
    return link.dropped


def run_wrapper_meter(data: bytes) -> object:
    """dlms-sim's wrapper meter end and MeterServer fed a client's side of a session."""
    link = WrapperLink.meter(1, 16, max_apdu_size=2048)
    server = MeterServer(Meter(fuzz_seeds._MODEL))
    for start in range(0, len(data), 29):
        link.receive_data(data[start:start + 29])
        while (event := link.next_event()) is not hdlc_frame.NEED_DATA:
            if isinstance(event, ApduReceived):
                response = server.handle(event.apdu, fuzz_seeds.SIM_NOW)
                if response:
                    link.send_apdu(response)
    return link.ignored_frames


def run_meter_server(data: bytes) -> object:
    """The simulator's MeterServer answering a (mutated) request, LN and SN, after a
    plain AARQ; it answers everything (an ExceptionResponse at worst)."""
    answers = []
    for referencing, aarq in (("LN", record("ln-hdlc").requests[0]),
                              ("SN", record("sn-hdlc").requests[0])):
        server = MeterServer(Meter(fuzz_seeds._MODEL),
                             ServerOptions(referencing=Referencing(referencing)))
        server.handle(aarq, fuzz_seeds.SIM_NOW)
        answers.append(server.handle(data, fuzz_seeds.SIM_NOW))
    return answers


def _reader_mutator(framing: str) -> Callable[[random.Random, bytes, Sequence[bytes]], bytes]:
    def mutator(rng: random.Random, data: bytes, seeds: Sequence[bytes]) -> bytes:
        """Reader inputs are ``[answer number] + answer``: mutate the answer only."""
        return data[:1] + mutate(rng, data[1:], [s[1:] for s in seeds], framing)

    return mutator


#: The keys of the HighGmac session, as they could show in a text (hex, both cases)
SECRETS = tuple(form for key in (fuzz_seeds.GMAC_EK, fuzz_seeds.GMAC_AK)
                for form in (key.hex(), key.hex().upper(), key.hex(" "), key.hex(" ").upper(),
                             repr(key)[2:-1]))


def _no_secret(texts: Sequence[str]) -> None:
    """Secrets never appear in the reader's traces, notes or errors."""
    for text in texts:
        for secret in SECRETS:
            check(secret not in text, f"a key in a trace, note or error: {text!r}")


def _reader_target(spec: fuzz_seeds.SessionSpec) -> Target:
    def seeds() -> list[bytes]:
        answers = record(spec.name).to_client
        return [bytes([k]) + answer for k, answer in enumerate(answers[:256])]

    def run(data: bytes) -> object:
        if not data:
            raise DecodeError("no answer number")
        session = Session(spec, {data[0]: data[1:]})
        try:
            return session.run()
        except DlmsdError as exc:
            session.recording.texts.append(str(exc))
            raise
        finally:
            _no_secret(session.recording.texts)

    return Target(
        f"reader-{spec.name}",
        f"the whole MeterReader ({spec.referencing}, {spec.kind}"
        f"{', HighGmac ciphered' if spec.gmac else ''}"
        f"{', serial line with mode E' if spec.mode_e else ''}) reading the simulator's meter; "
        "input: answer number (1 octet) + the octets the reader gets instead of it",
        seeds, run, allowed=(DlmsdError,), time_bound=1.0, memory_bound=64 << 20,
        mutator=_reader_mutator(spec.kind))


TARGETS: list[Target] = [
    Target("hdlc-frame", "hdlc_frame.Frame.from_bytes (+ summary, round trip, LLC)",
           hdlc_seeds, run_hdlc_frame, framing="hdlc"),
    Target("hdlc-deframer", "hdlc_frame.HdlcDeframer over a stream (bulk skip or one "
           "start at a time, whole or in 7-octet chunks: the same frames; never raises)",
           lambda: hdlc_seeds() + hdlc_streams("to_client") + hdlc_streams("to_meter"),
           run_deframer, allowed=(), framing="hdlc"),
    Target("hdlc-parameters", "hdlc_frame.HdlcParameters.from_bytes (SNRM/UA information)",
           parameter_seeds, run_hdlc_parameters),
    Target("wrapper", "wrapper.WrapperConnection (client) over a stream",
           wrapper_seeds, run_wrapper, framing="wrapper"),
    Target("apdu-ln", "apdu.decode_apdu: the LN dispatcher (xdlms.py, acse.py), "
           "describe, round trip", lambda: apdu_seeds("LN"), run_apdu),
    Target("apdu-sn", "sn.decode_sn_apdu: the SN dispatcher (sn.py), describe, round trip",
           lambda: apdu_seeds("SN"), run_sn_apdu),
    Target("axdr", "axdr.decode_data_all (+ describe, to_python, encode)", axdr_seeds,
           run_axdr),
    Target("acse", "acse.Aarq/Aare/Rlrq/Rlre.from_bytes, each on every input",
           acse_seeds, run_acse),
    Target("iec-lines", "iec62056_21 Identification/Request/OptionSelect messages",
           iec_line_seeds, run_iec_lines),
    Target("iec-opening", "iec62056_21.ModeEOpening (client) over a stream",
           iec_stream_seeds, run_iec_opening, allowed=(RemoteProtocolError,)),
    Target("iec-meter", "iec62056_21.ModeEServer (the simulator's meter side)",
           iec_stream_seeds, run_iec_meter, allowed=()),
    Target("security", "security.unprotect with known keys (Green Book, the HighGmac "
           "session), then decode_apdu",
           ciphered_seeds, run_security, allowed=(RemoteProtocolError,)),
    Target("security-round-trip", "security.protect/unprotect of a plain APDU",
           lambda: apdu_seeds("LN") + apdu_seeds("SN"), run_security_round_trip, allowed=()),
    Target("hdlc-client", "link.HdlcLink.client (hdlc.HdlcClientConnection) fed a meter's "
           "stream", lambda: hdlc_streams("to_client"), run_hdlc_client,
           allowed=(RemoteProtocolError,), framing="hdlc"),
    Target("hdlc-meter", "link.HdlcLink.meter + sim MeterServer fed a client's stream",
           lambda: hdlc_streams("to_meter"), run_hdlc_meter, allowed=(), framing="hdlc"),
    Target("wrapper-meter", "link.WrapperLink.meter + sim MeterServer fed a client's stream",
           lambda: [b"".join(r.to_meter) for r in _recordings() if r.spec.kind == "wrapper"],
           run_wrapper_meter, framing="wrapper"),
    Target("meter-server", "sim.server.MeterServer.handle, LN and SN, after an AARQ",
           lambda: apdu_seeds("LN") + apdu_seeds("SN"), run_meter_server, allowed=()),
    *(_reader_target(spec) for spec in SESSIONS),
]


# --------------------------------------------------------------------- mutations

BOUNDARY = (0x00, 0x01, 0x7E, 0x7F, 0x80, 0x81, 0xFE, 0xFF)
LONG_LENGTHS = (b"\x80", b"\x81\xff", b"\x82\xff\xff", b"\x82\x00\x00", b"\x84\xff\xff\xff\xff",
                b"\x83\x01\x00\x00", b"\x85\x01\x00\x00\x00\x00")


def _flip(rng: random.Random, data: bytearray) -> None:
    for _ in range(rng.randint(1, 4)):
        if data:
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)


def _boundary(rng: random.Random, data: bytearray) -> None:
    if data:
        data[rng.randrange(len(data))] = rng.choice(BOUNDARY)


def _random_octet(rng: random.Random, data: bytearray) -> None:
    if data:
        data[rng.randrange(len(data))] = rng.randrange(256)


def _insert(rng: random.Random, data: bytearray) -> None:
    at = rng.randint(0, len(data))
    if rng.random() < 0.5:
        data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
    else:
        data[at:at] = bytes([rng.choice(BOUNDARY)]) * rng.randint(1, 32)


def _delete(rng: random.Random, data: bytearray) -> None:
    if data:
        at = rng.randrange(len(data))
        del data[at:at + rng.randint(1, max(1, len(data) // 4))]


def _duplicate(rng: random.Random, data: bytearray) -> None:
    if data:
        at = rng.randrange(len(data))
        piece = data[at:at + rng.randint(1, 16)]
        to = rng.randint(0, len(data))
        data[to:to] = piece * rng.choice((1, 2, 3, 64))


def _length(rng: random.Random, data: bytearray) -> None:
    """An octet that may be a length: one more, one less, or a long-form length."""
    if not data:
        return
    at = rng.randrange(len(data))
    choice = rng.random()
    if choice < 0.5:
        data[at] = (data[at] + rng.choice((1, -1))) & 0xFF
    else:
        data[at:at + 1] = rng.choice(LONG_LENGTHS)


def _truncate(rng: random.Random, data: bytearray) -> None:
    if data:
        at = rng.randrange(len(data))
        if rng.random() < 0.8:
            del data[at:]
        else:
            del data[:at]


def _hdlc_length(rng: random.Random, data: bytearray) -> None:
    if len(data) >= 3 and data[0] == hdlc_frame.FLAG:
        length = rng.choice((((data[1] << 8 | data[2]) & 0x7FF) + rng.choice((-2, -1, 1, 2)),
                             rng.randrange(0x800), 0, 0x7FF))
        value = (data[1] & 0xF8) << 8 | (length & 0x7FF)
        data[1:3] = value.to_bytes(2, "big")


def _wrapper_length(rng: random.Random, data: bytearray) -> None:
    if len(data) >= HEADER_SIZE:
        old = int.from_bytes(data[6:8], "big")
        value = rng.choice((old + 1, old - 1, 0, 0xFFFF, rng.randrange(0x10000))) & 0xFFFF
        data[6:8] = value.to_bytes(2, "big")


MUTATIONS: tuple[Callable[[random.Random, bytearray], None], ...] = (
    _flip, _boundary, _random_octet, _insert, _delete, _duplicate, _length, _truncate)


def _address_end(data: bytes | bytearray, at: int, stop: int) -> int:
    for i in range(at, min(at + 4, stop)):
        if data[i] & 1:
            return i + 1
    return min(at + 4, stop)


def fix_hdlc(data: bytearray) -> None:
    """Make the length, HCS and FCS of a (mutated) single frame right again."""
    if len(data) < 9 or data[0] != hdlc_frame.FLAG or data[-1] != hdlc_frame.FLAG:
        return
    length = len(data) - 2
    if length > 0x7FF:
        return
    data[1:3] = (((data[1] & 0xF8) << 8) | length).to_bytes(2, "big")
    end = len(data) - 1  # the closing flag
    ctrl = _address_end(data, _address_end(data, 3, end - 2), end - 2)
    if ctrl + 3 < end - 2:  # an information field: HCS after the control field
        data[ctrl + 1:ctrl + 3] = crc16_x25(data[1:ctrl + 1]).to_bytes(2, "little")
    data[end - 2:end] = crc16_x25(data[1:end - 2]).to_bytes(2, "little")


def fix_wrapper(data: bytearray) -> None:
    if len(data) >= HEADER_SIZE:
        data[6:8] = min(len(data) - HEADER_SIZE, 0xFFFF).to_bytes(2, "big")


def mutate(rng: random.Random, seed: bytes, seeds: Sequence[bytes],
           framing: str | None = None) -> bytes:
    """``seed`` mutated one to four times (see the module text)."""
    data = bytearray(seed)
    for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4))):
        roll = rng.random()
        if roll < 0.08 and seeds:  # splice with another seed
            other = rng.choice(seeds)
            data = data[:rng.randint(0, len(data))] + other[rng.randint(0, len(other)):]
        elif roll < 0.18 and framing == "hdlc":
            _hdlc_length(rng, data)
        elif roll < 0.18 and framing == "wrapper":
            _wrapper_length(rng, data)
        else:
            rng.choice(MUTATIONS)(rng, data)
        del data[MAX_INPUT:]
    if framing == "hdlc" and rng.random() < 0.5:
        fix_hdlc(data)
    elif framing == "wrapper" and rng.random() < 0.5:
        fix_wrapper(data)
    return bytes(data)


# ------------------------------------------------------------------------ engine


@dataclass
class Failure:
    target: str
    kind: str  # "exception", "invariant", "slow", "memory", "hang"
    data: bytes
    text: str  # traceback or measurement
    signature: tuple[str, ...]
    count: int = 1


@dataclass
class Stats:
    inputs: int = 0
    decoded: int = 0  # accepted by the target
    refused: int = 0  # one of the documented errors
    failures: dict[tuple[str, ...], Failure] = field(default_factory=dict)

    @property
    def failed(self) -> int:
        return sum(f.count for f in self.failures.values())


def _bound(target: Target, size: int) -> float:
    return target.time_bound * max(1.0, size / SMALL)


def _signature(target: Target, kind: str, exc: BaseException | None) -> tuple[str, ...]:
    if exc is None:
        return (target.name, kind)
    tb = traceback.extract_tb(exc.__traceback__)
    where = next((f"{fr.filename.rsplit('/', 2)[-1]}:{fr.lineno}" for fr in reversed(tb)
                  if "/dlmsd/" in fr.filename), tb[-1].name if tb else "?")
    return (target.name, kind, type(exc).__name__, where)


@contextlib.contextmanager
def _alarm(seconds: float) -> Iterator[None]:
    def ring(signum: int, frame: PyFrame | None) -> None:
        raise Hang(f"still running after {seconds:.1f} s")

    if not hasattr(signal, "setitimer"):  # pragma: no cover - not POSIX
        yield
        return
    old = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _once(target: Target, data: bytes) -> tuple[str, BaseException | None, float]:
    """("decoded" | "refused" | "exception" | "invariant" | "hang", error, seconds)."""
    start = time.perf_counter()
    try:
        with _alarm(10 * _bound(target, len(data))):
            target.run(data)
    except Hang as exc:
        return "hang", exc, time.perf_counter() - start
    except BrokenInvariant as exc:
        return "invariant", exc, time.perf_counter() - start
    except target.allowed:
        return "refused", None, time.perf_counter() - start
    except Stuck as exc:
        return "hang", exc, time.perf_counter() - start
    except Exception as exc:
        return "exception", exc, time.perf_counter() - start
    return "decoded", None, time.perf_counter() - start


def _peak_memory(target: Target, data: bytes) -> int:
    tracemalloc.start()
    try:
        with contextlib.suppress(Exception, Hang):
            target.run(data)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _record_failure(stats: Stats, target: Target, kind: str, data: bytes, text: str,
                    exc: BaseException | None, out: Callable[[str], None],
                    failures_dir: Path | None) -> None:
    signature = _signature(target, kind, exc)
    known = stats.failures.get(signature)
    if known is not None:
        known.count += 1
        return
    failure = Failure(target.name, kind, data, text, signature)
    stats.failures[signature] = failure
    shown = data.hex().upper()
    if len(shown) > 1024:
        shown = f"{shown[:1024]}... ({len(data)} octets)"
    out(f"FAIL {target.name} [{kind}] input {shown}\n{text.rstrip()}\n")
    if failures_dir is not None:
        failures_dir.mkdir(parents=True, exist_ok=True)
        path = failures_dir / f"{target.name}-{len(stats.failures)}.txt"
        path.write_text(f"target: {target.name}\nkind: {kind}\ninput: {data.hex().upper()}\n\n"
                        f"{text}", encoding="utf-8")


def fuzz_one(target: Target, data: bytes, stats: Stats, *, measure_memory: bool,
             out: Callable[[str], None], failures_dir: Path | None) -> None:
    stats.inputs += 1
    outcome, exc, seconds = _once(target, data)
    if outcome in ("decoded", "refused"):
        setattr(stats, outcome, getattr(stats, outcome) + 1)
    else:
        assert exc is not None
        text = "".join(traceback.format_exception(exc))
        _record_failure(stats, target, outcome, data, text, exc, out, failures_dir)
        return
    bound = _bound(target, len(data))
    if seconds > bound:  # measured again: a busy machine is not a slow decoder
        again = min(_once(target, data)[2] for _ in range(2))
        if again > bound:
            _record_failure(stats, target, "slow", data,
                            f"{len(data)} octets took {again * 1000:.1f} ms (bound "
                            f"{bound * 1000:.0f} ms)", None, out, failures_dir)
            measure_memory = True
    if measure_memory:
        peak = _peak_memory(target, data)
        if peak > target.memory_bound:
            _record_failure(stats, target, "memory", data,
                            f"{len(data)} octets: peak {peak / 1e6:.1f} MB traced (bound "
                            f"{target.memory_bound / 1e6:.1f} MB)", None, out, failures_dir)


def run(targets: Sequence[Target], seconds: float, seed: int, *,
        out: Callable[[str], None] = print, failures_dir: Path | None = None
        ) -> dict[str, Stats]:
    """Fuzz ``targets`` in turns of SLICE_S seconds each for ``seconds`` in all."""
    stats = {t.name: Stats() for t in targets}
    corpora = {t.name: t.seeds() for t in targets}
    for name, corpus in corpora.items():
        if not corpus:
            raise SystemExit(f"target {name} has no seeds")
    rngs = {t.name: random.Random(f"{seed}:{t.name}") for t in targets}
    deadline = time.monotonic() + seconds
    first = True
    while first or time.monotonic() < deadline:
        for target in targets:
            rng, corpus, st = rngs[target.name], corpora[target.name], stats[target.name]
            if first:  # every seed once, as it is: they must all decode or be refused
                for data in corpus:
                    fuzz_one(target, data, st, measure_memory=False, out=out,
                             failures_dir=failures_dir)
            end = min(deadline, time.monotonic() + SLICE_S)
            while True:
                data = (target.mutator(rng, rng.choice(corpus), corpus) if target.mutator
                        else mutate(rng, rng.choice(corpus), corpus, target.framing))
                fuzz_one(target, data, st, measure_memory=st.inputs % MEMORY_EVERY == 0,
                         out=out, failures_dir=failures_dir)
                if time.monotonic() >= end:
                    break
        first = False
    return stats


def _load_plugin(path: str) -> list[Target]:
    """Extra targets from a Python file defining ``TARGETS`` (the tests use it to
    show that failures are found)."""
    spec = importlib.util.spec_from_file_location("fuzz_plugin", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return list(module.TARGETS)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/fuzz", description="Fuzz every decoder of dlmsd over mutated real "
        "frames; exit 1 on any failure.")
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="total time, shared by the targets (default 60); every "
                        "seed runs once first and every target has one turn, even past it")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--target", nargs="+", action="extend", default=[], metavar="NAME",
                        help="fuzz only these targets (see --list)")
    parser.add_argument("--list", action="store_true", help="list the targets and exit")
    parser.add_argument("--failures", type=Path, metavar="DIR",
                        help="save each distinct failure (input and traceback) here")
    parser.add_argument("--plugin", metavar="FILE", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    targets = list(TARGETS) + (_load_plugin(args.plugin) if args.plugin else [])
    if args.list:
        for target in targets:
            allowed = ", ".join(e.__name__ for e in target.allowed) or "nothing"
            print(f"{target.name:28} {len(target.seeds()):4} seeds  {target.doc}; "
                  f"may raise: {allowed}")
        return 0
    if args.target:
        known = {t.name for t in targets}
        unknown = [n for n in args.target if n not in known]
        if unknown:
            parser.error(f"unknown target(s) {', '.join(unknown)}; see --list")
        targets = [t for t in targets if t.name in args.target]
    started = time.monotonic()
    stats = run(targets, args.seconds, args.seed, failures_dir=args.failures,
                out=lambda text: print(text, flush=True))
    elapsed = time.monotonic() - started
    print(f"{'target':28} {'inputs':>9} {'decoded':>9} {'refused':>9} {'failures':>8} distinct")
    for target in targets:
        st = stats[target.name]
        print(f"{target.name:28} {st.inputs:9} {st.decoded:9} {st.refused:9} {st.failed:8} "
              f"{len(st.failures):8}")
    total = sum(st.inputs for st in stats.values())
    failed = sum(st.failed for st in stats.values())
    print(f"total: {total} inputs in {elapsed:.0f} s, seed {args.seed}, {failed} failures")
    return 1 if failed else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
