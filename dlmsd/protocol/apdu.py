"""The one dispatcher over every APDU dlmsd understands (IEC 62056-5-3, Green Book).

:func:`decode_apdu` reads the first octet (and the service CHOICE of GET, SET and
ACTION) and hands the buffer to the decoder of that APDU: the ACSE ones of
:mod:`dlmsd.protocol.acse` and the xDLMS ones of :mod:`dlmsd.protocol.xdlms`.  It is
a module of its own because acse imports xdlms (the AARQ and AARE carry the
InitiateRequest and InitiateResponse), so xdlms cannot import acse.  The SN services
are decoded by :func:`dlmsd.protocol.sn.decode_sn_apdu`, which hands every other tag
to :func:`decode_apdu`.  Pure: no I/O, no clock, no logging.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from dlmsd.errors import DecodeError
from dlmsd.protocol.acse import Aare, Aarq, Rlre, Rlrq
from dlmsd.protocol.xdlms import (
    ActionRequestNormal,
    ActionResponseNormal,
    ApduTag,
    ConfirmedServiceError,
    ExceptionResponse,
    GetRequest,
    GetRequestNext,
    GetRequestNormal,
    GetRequestWithList,
    GetResponse,
    GetResponseNormal,
    GetResponseWithDatablock,
    GetResponseWithList,
    SetRequest,
    SetRequestNormal,
    SetRequestWithDatablock,
    SetRequestWithFirstDatablock,
    SetResponse,
    SetResponseDatablock,
    SetResponseLastDatablock,
    SetResponseNormal,
)

__all__ = ["Apdu", "decode_apdu", "describe_apdu"]

Apdu = (
    Aarq | Aare | Rlrq | Rlre
    | GetRequest | GetResponse
    | SetRequest | SetResponse | ActionRequestNormal | ActionResponseNormal
    | ExceptionResponse | ConfirmedServiceError
)

_Decoder = Callable[[bytes], Apdu]

_BY_CHOICE: Final[dict[int, dict[int, _Decoder]]] = {
    ApduTag.GET_REQUEST: {1: GetRequestNormal.from_bytes, 2: GetRequestNext.from_bytes,
                          3: GetRequestWithList.from_bytes},
    ApduTag.GET_RESPONSE: {1: GetResponseNormal.from_bytes,
                           2: GetResponseWithDatablock.from_bytes,
                           3: GetResponseWithList.from_bytes},
    ApduTag.SET_REQUEST: {1: SetRequestNormal.from_bytes,
                          2: SetRequestWithFirstDatablock.from_bytes,
                          3: SetRequestWithDatablock.from_bytes},
    ApduTag.SET_RESPONSE: {1: SetResponseNormal.from_bytes,
                           2: SetResponseDatablock.from_bytes,
                           3: SetResponseLastDatablock.from_bytes},
    ApduTag.ACTION_REQUEST: {1: ActionRequestNormal.from_bytes},
    ApduTag.ACTION_RESPONSE: {1: ActionResponseNormal.from_bytes},
}
_BY_TAG: Final[dict[int, _Decoder]] = {
    ApduTag.AARQ: Aarq.from_bytes,
    ApduTag.AARE: Aare.from_bytes,
    ApduTag.RLRQ: Rlrq.from_bytes,
    ApduTag.RLRE: Rlre.from_bytes,
    ApduTag.EXCEPTION_RESPONSE: ExceptionResponse.from_bytes,
    ApduTag.CONFIRMED_SERVICE_ERROR: ConfirmedServiceError.from_bytes,
}
_TAG_VALUES: Final = frozenset(int(t) for t in ApduTag)


def decode_apdu(buf: bytes) -> Apdu:
    """Decode one whole APDU, dispatching on its tag (and service CHOICE).

    Raises :class:`DecodeError` (only) for malformed input, trailing bytes, and
    APDUs that are valid but not handled here, naming the tag in hex.
    """
    if not buf:
        raise DecodeError("empty APDU")
    tag = buf[0]
    decoder = _BY_TAG.get(tag)
    if decoder is not None:
        return decoder(bytes(buf))
    choices = _BY_CHOICE.get(tag)
    if choices is not None:
        decoder = choices.get(buf[1]) if len(buf) >= 2 else None
        if decoder is not None:
            return decoder(bytes(buf))
        name = ApduTag(tag).label
        if len(buf) < 2:
            raise DecodeError(f"{name} (0x{tag:02X}) truncated before its choice")
        raise DecodeError(f"{name} (0x{tag:02X}) choice {buf[1]} is not supported")
    if tag in _TAG_VALUES:
        raise DecodeError(f"APDU {ApduTag(tag).label} (0x{tag:02X}) is not supported")
    raise DecodeError(f"unknown APDU tag 0x{tag:02X}")


def describe_apdu(buf: bytes) -> str:
    """One line for traces; never raises (undecodable input is described as such)."""
    try:
        return decode_apdu(buf).describe()
    except DecodeError as exc:
        return f"undecodable APDU ({len(buf)} bytes): {exc}"
