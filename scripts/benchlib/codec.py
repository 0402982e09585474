"""Codec cases of ``scripts/bench``: decode and encode of the same captured frames in
dlmsd, gurux_dlms, dlms-cosem and the floor (:mod:`benchlib.floor`).

Each stack gets the frames (flags included) and must give the values; its encoder
starts from what its own decoder made and must give the same frames again (dlmsd and
the floor: the same octets; gurux and dlms-cosem: checked by decoding their output
with dlmsd).  A stack that cannot do a case, or is not installed, is ``None`` with the
reason in ``notes``.

gurux_dlms: a ``GXDLMSClient`` decodes a response with ``getData`` (its frame
sequence check, ``settings.checkFrame``, is switched off, since the same frames are
replayed: a little less work than in its session) and encodes a request with
``readList``; as a client library it has no public decoder of requests nor encoder of
responses.  dlms-cosem: ``InformationFrame`` and the xDLMS ``Get*`` classes, A-XDR with
``DlmsDataParser``; it has no server side, so its request decoder is used as is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dlmsd.protocol.apdu import decode_apdu
from dlmsd.protocol.axdr import to_python
from dlmsd.protocol.hdlc_frame import Frame, add_llc, strip_llc
from dlmsd.protocol.xdlms import (
    GetRequestWithList,
    GetResponseNormal,
    GetResponseWithList,
)

from . import floor

STACKS = ("dlmsd", "gurux_dlms", "dlms-cosem", "floor")


@dataclass
class Case:
    """One metric: a callable per stack (None: not available) and why not."""

    name: str
    calls: dict[str, Callable[[], Any] | None] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)


# ------------------------------------------------------------------------ dlmsd
def _dlmsd_decode(frames: list[bytes], response: bool) -> tuple[list[Frame], Any]:
    decoded = [Frame.from_bytes(f) for f in frames]
    info = b"".join(f.information for f in decoded)
    return decoded, decode_apdu(strip_llc(info, response=response))


def _dlmsd_encode(decoded: list[Frame], apdu: Any, response: bool) -> list[bytes]:
    info = add_llc(apdu.to_bytes(), response=response)
    size = len(decoded[0].information)
    out = []
    for k, f in enumerate(decoded):
        chunk = info[k * size:(k + 1) * size]
        out.append(Frame(f.destination, f.source, f.control, chunk, f.segmented).to_bytes())
    return out


def _values(apdu: Any) -> list[Any]:
    if isinstance(apdu, GetResponseNormal):
        return [to_python(apdu.data())]
    if isinstance(apdu, GetResponseWithList):
        return [to_python(r) for r in apdu.results]  # type: ignore[arg-type]
    raise ValueError(type(apdu).__name__)


# ------------------------------------------------------------------------ floor
def _floor_parts(frames: list[bytes]) -> tuple[bytes, list[int], int, bytes]:
    """Addresses, controls, segment size and LLC header of captured frames."""
    first = frames[0]
    pos = 3
    while not first[pos] & 1:
        pos += 1
    pos += 1
    while not first[pos] & 1:
        pos += 1
    pos += 1
    controls = [f[pos] for f in frames]
    size = len(floor.frame_info(first)[1])
    return first[3:pos], controls, size, floor.frame_info(first)[1][:3]


def _plain(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    return value


def build(frames: dict[str, tuple[list[bytes], list[bytes]]]) -> list[Case]:
    cases: list[Case] = []
    gurux = _gurux()
    cosem = _cosem()
    for key, label in (("get1", "1 register, GET-Response-Normal (1 frame)"),
                       ("list10", "10 registers, GET-Response-With-List (1 frame)"),
                       ("lp1", "load profile 96 x {date-time, 1 uint32}"),
                       ("lp3", "load profile 96 x {date-time, 3 uint32}")):
        rx = frames[key][1]
        seg = f" ({len(rx)} HDLC segments)" if len(rx) > 1 else ""
        dec, enc = Case(f"decode {label}{seg}"), Case(f"encode {label}{seg}")
        # dlmsd
        decoded, apdu = _dlmsd_decode(rx, True)
        want = _values(apdu)
        if _dlmsd_encode(decoded, apdu, True) != rx:
            raise SystemExit(f"bench: dlmsd does not encode {key} back to the same frames")
        dec.calls["dlmsd"] = lambda rx=rx: _dlmsd_decode(rx, True)
        enc.calls["dlmsd"] = lambda d=decoded, a=apdu: _dlmsd_encode(d, a, True)
        # floor
        if _plain(floor.get_response(floor.apdu_of(rx))) != _plain(want):
            raise SystemExit(f"bench: the floor decodes {key} otherwise than dlmsd")
        header, controls, size, llc = _floor_parts(rx)
        kind = rx[-1] and floor.apdu_of(rx)[1]
        typed = floor.get_response(floor.apdu_of(rx), keep_tags=True)
        iid = floor.apdu_of(rx)[2]

        def floor_encode(k: int = kind, t: list[Any] = typed, i: int = iid, h: bytes = header,
                         c: list[int] = controls, s: int = size, ll: bytes = llc) -> list[bytes]:
            return floor.frames_of(h, c, floor.encode_get_response(k, i, t), ll, s)
        if floor_encode() != rx:
            raise SystemExit(f"bench: the floor does not encode {key} back to the same frames")
        dec.calls["floor"] = lambda rx=rx: floor.get_response(floor.apdu_of(rx))
        enc.calls["floor"] = floor_encode
        # gurux_dlms
        if isinstance(gurux, str):
            dec.notes["gurux_dlms"] = enc.notes["gurux_dlms"] = gurux
        else:
            got = gurux.decode(rx)
            if _plain(got) != _plain(want if key == "list10" else want[0]):
                dec.notes["gurux_dlms"] = "decodes otherwise"
            else:
                dec.calls["gurux_dlms"] = lambda rx=rx, g=gurux: g.decode(rx)
            enc.notes["gurux_dlms"] = "no public response encoder (client library)"
        # dlms-cosem
        if isinstance(cosem, str):
            dec.notes["dlms-cosem"] = enc.notes["dlms-cosem"] = cosem
        else:
            try:
                got_frames, got_apdu, got = cosem.decode(rx)
                if _plain(got) != _plain(want):
                    raise ValueError(f"decodes otherwise: {str(got)[:80]}")
                dec.calls["dlms-cosem"] = lambda rx=rx, c=cosem: c.decode(rx)
                again = cosem.encode(got_frames, got_apdu)
                if _dlmsd_decode(again, True)[1] != apdu:
                    raise ValueError("encodes otherwise")
                enc.calls["dlms-cosem"] = lambda f=got_frames, a=got_apdu, c=cosem: c.encode(f, a)
            except Exception as exc:  # a reference that cannot: say why, measure the rest
                reason = f"fails: {type(exc).__name__}: {str(exc)[:50]}"
                dec.notes.setdefault("dlms-cosem", reason)
                enc.notes.setdefault("dlms-cosem", reason)
        cases += [dec, enc]
    # The request: GET-Request-With-List of 10
    tx = frames["list10"][0]
    dec, enc = Case("decode GET-Request-With-List of 10 (1 frame)"), Case(
        "encode GET-Request-With-List of 10 (1 frame)")
    decoded, apdu = _dlmsd_decode(tx, False)
    assert isinstance(apdu, GetRequestWithList)
    if _dlmsd_encode(decoded, apdu, False) != tx:
        raise SystemExit("bench: dlmsd does not encode the request back to the same frame")
    dec.calls["dlmsd"] = lambda: _dlmsd_decode(tx, False)
    enc.calls["dlmsd"] = lambda: _dlmsd_encode(decoded, apdu, False)
    items = floor.get_request_with_list(floor.apdu_of(tx))
    header, controls, size, llc = _floor_parts(tx)
    iid = floor.apdu_of(tx)[2]

    def floor_request() -> list[bytes]:
        return floor.frames_of(header, controls,
                               floor.encode_get_request_with_list(iid, items), llc, 128)
    if floor_request() != tx:
        raise SystemExit("bench: the floor does not encode the request back")
    dec.calls["floor"] = lambda: floor.get_request_with_list(floor.apdu_of(tx))
    enc.calls["floor"] = floor_request
    if isinstance(gurux, str):
        dec.notes["gurux_dlms"] = enc.notes["gurux_dlms"] = gurux
    else:
        dec.notes["gurux_dlms"] = "no public request decoder (client library)"
        request = gurux.request(items)
        if _dlmsd_decode(request(), False)[1].attributes != apdu.attributes:
            enc.notes["gurux_dlms"] = "encodes otherwise"
        else:
            enc.calls["gurux_dlms"] = request
    if isinstance(cosem, str):
        dec.notes["dlms-cosem"] = enc.notes["dlms-cosem"] = cosem
    else:
        try:
            frames_c, apdu_c = cosem.decode_request(tx)
            if len(apdu_c.cosem_attributes_with_selection) != 10:
                raise ValueError("decodes otherwise")
            dec.calls["dlms-cosem"] = lambda: cosem.decode_request(tx)
            again = cosem.encode(frames_c, apdu_c)
            if _dlmsd_decode(again, False)[1] != apdu:
                raise ValueError("encodes otherwise")
            enc.calls["dlms-cosem"] = lambda: cosem.encode(frames_c, apdu_c)
        except Exception as exc:  # its HDLC frames are the client's view only
            reason = f"fails: {type(exc).__name__}: {str(exc)[:50]}"
            dec.notes.setdefault("dlms-cosem", reason)
            enc.notes.setdefault("dlms-cosem", reason)
    cases += [dec, enc]
    return cases


# ------------------------------------------------------------------------ references
class _Gurux:
    def __init__(self) -> None:
        from gurux_dlms import GXByteBuffer, GXDLMSClient, GXReplyData
        from gurux_dlms.enums import Authentication, Conformance, InterfaceType
        from gurux_dlms.objects import GXDLMSRegister
        self.buffer, self.reply_type, self.register = GXByteBuffer, GXReplyData, GXDLMSRegister
        self.client = GXDLMSClient(True, 16, (1 << 7) | 1, Authentication.NONE, None,
                                   InterfaceType.HDLC)
        self.client.settings.checkFrame = lambda frame, xml: True
        # what the association would have negotiated (dlms-sim offers it)
        self.client.negotiatedConformance |= (Conformance.MULTIPLE_REFERENCES
                                              | Conformance.GET)

    def decode(self, frames: list[bytes]) -> Any:
        reply = self.reply_type()
        for f in frames:
            self.client.getData(self.buffer(f), reply, None)
        return reply.value

    def request(self, items: list[tuple[int, bytes, int]]) -> Callable[[], list[bytes]]:
        from dlmsd.protocol.obis import Obis
        objects = [(self.register(str(Obis(*obis))), attribute) for _, obis, attribute in items]
        client = self.client

        def encode() -> list[bytes]:
            out = []
            for request in client.readList(objects):  # one list of frames per request
                out += [bytes(f) for f in (request if isinstance(request, list) else [request])]
            return out
        return encode


class _Cosem:
    def __init__(self) -> None:
        from dlms_cosem import dlms_data
        from dlms_cosem.hdlc.frames import InformationFrame
        from dlms_cosem.protocol.xdlms import get
        self.frame, self.get, self.data = InformationFrame, get, dlms_data

    def decode(self, frames: list[bytes]) -> tuple[list[Any], Any, list[Any]]:
        decoded = [self.frame.from_bytes(f) for f in frames]
        apdu = self.get.GetResponseFactory.from_bytes(b"".join(f.payload for f in decoded)[3:])
        if isinstance(apdu, self.get.GetResponseWithList):
            values = apdu.result
        else:
            values = [v.to_python() for v in self.data.DlmsDataParser().parse(apdu.data)]
        return decoded, apdu, values

    def decode_request(self, frames: list[bytes]) -> tuple[list[Any], Any]:
        decoded = [self.frame.from_bytes(f) for f in frames]
        apdu = self.get.GetRequestFactory.from_bytes(b"".join(f.payload for f in decoded)[3:])
        return decoded, apdu

    def encode(self, decoded: list[Any], apdu: Any) -> list[bytes]:
        info = decoded[0].payload[:3] + apdu.to_bytes()
        size = len(decoded[0].payload)
        return [self.frame(f.destination_address, f.source_address, info[k * size:(k + 1) * size],
                           send_sequence_number=f.send_sequence_number,
                           receive_sequence_number=f.receive_sequence_number,
                           segmented=f.segmented, final=f.final).to_bytes()
                for k, f in enumerate(decoded)]


def _gurux() -> _Gurux | str:
    try:
        return _Gurux()
    except ImportError:
        return "not installed (pip install '.[bench]')"


def _cosem() -> _Cosem | str:
    try:
        return _Cosem()
    except ImportError:
        return "not installed (pip install '.[bench]')"
