"""The pure protocol core (sans-I/O): DLMS/COSEM client and codecs.

Nothing below this package imports asyncio, socket, serial or time: every module
parses or builds bytes, or moves a protocol state machine, and returns events.
Transports (``dlmsd.transport``) and pollers own I/O and the clock.

The public face is the names below; the modules hold more for the stack's own use and
for tests.  Reading a meter takes a link, a client and a reader::

    from dlmsd.protocol import HdlcLink, LnClient, MeterReader, ReaderSettings
    from dlmsd.protocol import ReadAttributes, AttributeRequest, Obis

    reader = MeterReader(HdlcLink.client(16, server_address), LnClient(),
                         ReaderSettings(timeout=3.0, retries=2, max_list_size=10,
                                        port_name="10.0.0.5:4061"))
    reader.open(now, challenge)   # then: actions(), receive_data(), handle_timer()

Decoding bytes: :func:`decode_apdu`/:func:`describe_apdu` (xDLMS and ACSE APDUs),
:func:`decode_data_all` (A-XDR data), :class:`Frame` (HDLC frames).  The names are
loaded on first use, so that importing one codec module stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> the module (under dlmsd.protocol) that defines it
_PUBLIC: dict[str, str] = {
    # reading a meter
    "MeterReader": "reader", "ReaderSettings": "reader", "ReaderState": "reader",
    "MeterQuirks": "reader", "ReadAttributes": "reader", "AttributeRequest": "reader",
    "ReadResult": "reader", "Fetch": "reader", "Job": "reader", "JobContext": "reader",
    "Action": "actions", "Send": "actions", "SetLine": "actions", "Note": "actions",
    "Trace": "actions",
    # links and clients
    "HdlcLink": "link", "WrapperLink": "link", "ApduReceived": "link", "Connected": "link",
    "Disconnected": "link",
    "LnClient": "client", "Ciphering": "client", "ClientBase": "client",
    "SnClient": "sn_client", "HlsKeys": "security_hls",
    "ModeEOpening": "iec62056_21",
    # values and codecs
    "Obis": "obis", "Data": "axdr", "DataType": "axdr", "DateTime": "axdr",
    "decode_data_all": "axdr", "encode_data": "axdr",
    "decode_apdu": "apdu", "describe_apdu": "apdu", "Frame": "hdlc_frame",
    "MechanismName": "acse", "Conformance": "xdlms", "CosemAttributeDescriptor": "xdlms",
    "DataAccessResult": "xdlms",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
