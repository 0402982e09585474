"""The DLMS/COSEM wrapper of the TCP-UDP profile (IEC 62056-47), sans-I/O.

This module owns the 8-byte wrapper header and the byte stream of one TCP
connection: cutting it into APDUs (:class:`WrapperConnection`) and framing the
APDUs we send. Nothing here does I/O, reads a clock or logs.

IEC 62056-47 / Green Book "TCP-UDP based communication profiles", the wrapper
protocol data unit (WPDU), paraphrased: every APDU is preceded by a header of four
Unsigned16 fields, most significant byte first::

    version (= 0x0001) | source wPort | destination wPort | length (of the APDU)

The client's wPort is its client SAP (e.g. 0x10 public client), the server's is
the logical device's SAP (e.g. 0x01 management logical device). Over TCP the
stream carries no other delimiter, so a wrong version or length desynchronises
it for good; a wrong *port* does not (the length still says where the frame ends).

Usage, both roles::

    conn = WrapperConnection(client_wport=0x10, server_wport=0x01)
    sock.send(conn.send_apdu(aarq_bytes))
    conn.receive_data(chunk)                 # whatever TCP delivered
    while (event := conn.next_event()) is not NEED_DATA:
        handle(event.apdu)                   # an ApduReceived
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import Final

from dlmsd.errors import DecodeError, LocalProtocolError
from dlmsd.protocol.hdlc_frame import NEED_DATA, NeedData

__all__ = [
    "HEADER_SIZE",
    "MAX_LENGTH",
    "NEED_DATA",
    "WRAPPER_VERSION",
    "ApduReceived",
    "NeedData",
    "Role",
    "WrapperConnection",
    "WrapperHeader",
    "describe",
]

#: The only wrapper version defined (the WPDU's version field is 0x0001).
WRAPPER_VERSION: Final = 1
#: Size of the wrapper header in bytes.
HEADER_SIZE: Final = 8
#: Largest APDU the Unsigned16 length field can announce.
MAX_LENGTH: Final = 0xFFFF

_HEADER: Final = struct.Struct(">HHHH")


@dataclass(frozen=True)
class WrapperHeader:
    """The wrapper header: ``version``, ``source``/``destination`` wPort, APDU ``length``."""

    source: int
    destination: int
    length: int
    version: int = WRAPPER_VERSION

    def __post_init__(self) -> None:
        for name in ("source", "destination", "length", "version"):
            value = getattr(self, name)
            if not 0 <= value <= 0xFFFF:
                raise LocalProtocolError(f"wrapper {name} {value} outside 0..65535")

    @classmethod
    def from_bytes(cls, data: bytes) -> WrapperHeader:
        """Decode exactly :data:`HEADER_SIZE` bytes. Any version is accepted here;
        :class:`WrapperConnection` insists on version 1."""
        if len(data) != HEADER_SIZE:
            raise DecodeError(f"wrapper header needs {HEADER_SIZE} bytes, got {len(data)}")
        version, source, destination, length = _HEADER.unpack(data)
        return cls(source=source, destination=destination, length=length, version=version)

    def to_bytes(self) -> bytes:
        return _HEADER.pack(self.version, self.source, self.destination, self.length)

    def describe(self) -> str:
        """One line for traces, e.g. ``WRAPPER v1 0x0010->0x0001 len=29``."""
        return (f"WRAPPER v{self.version} 0x{self.source:04X}->0x{self.destination:04X} "
                f"len={self.length}")


def describe(frame: bytes) -> str:
    """One line for a whole wrapper frame (header + APDU) as seen on the wire; never raises."""
    if len(frame) < HEADER_SIZE:
        return f"WRAPPER truncated ({len(frame)} bytes)"
    header = WrapperHeader.from_bytes(frame[:HEADER_SIZE])
    text = header.describe()
    if len(frame) - HEADER_SIZE != header.length:
        text += f" (carries {len(frame) - HEADER_SIZE})"
    return text


@dataclass(frozen=True)
class ApduReceived:
    """A complete APDU arrived; ``source``/``destination`` are the wPorts it carried."""

    apdu: bytes
    source: int
    destination: int


class Role(enum.Enum):
    """Which end of the association this connection is."""

    CLIENT = "client"
    SERVER = "server"


def _check_wport(name: str, value: int) -> None:
    if not 0 <= value <= 0xFFFF:
        raise LocalProtocolError(f"{name} {value} outside 0..65535")


class WrapperConnection:
    """One end of a wrapper byte stream (TCP) between one client and one logical device.

    ``role`` says which wPort is ours: a CLIENT sends from ``client_wport`` to
    ``server_wport`` and expects frames from ``server_wport`` to ``client_wport``;
    a SERVER the other way round.

    Errors (all :class:`DecodeError`, raised by :meth:`next_event`):

    * version other than 1, or a length above ``max_apdu_size``: the stream is out
      of step and cannot be trusted again; the connection stays broken and every
      later call raises the same error (close the socket);
    * ports other than the expected pair, or an empty APDU: the frame is consumed
      whole and reported. The stream is still in step, so a caller may catch the
      error and go on. With ``strict_ports=False`` a frame with foreign ports is
      dropped silently instead and counted in :attr:`dropped_frames` (for gateways
      that multiplex several clients on one connection).
    * more than ``max_buffer`` bytes buffered without being drained by
      :meth:`next_event` (raised by :meth:`receive_data`).
    """

    def __init__(
        self,
        client_wport: int,
        server_wport: int,
        *,
        role: Role = Role.CLIENT,
        max_apdu_size: int = MAX_LENGTH,
        strict_ports: bool = True,
        max_buffer: int | None = None,
    ) -> None:
        _check_wport("client wPort", client_wport)
        _check_wport("server wPort", server_wport)
        if not 1 <= max_apdu_size <= MAX_LENGTH:
            raise LocalProtocolError(f"max_apdu_size {max_apdu_size} outside 1..{MAX_LENGTH}")
        self.role = role
        self.client_wport = client_wport
        self.server_wport = server_wport
        self.max_apdu_size = max_apdu_size
        self.strict_ports = strict_ports
        # Room for two largest frames: one being completed, one already queued.
        default_buffer = 2 * (HEADER_SIZE + max_apdu_size)
        self.max_buffer = max_buffer if max_buffer is not None else default_buffer
        if self.role is Role.CLIENT:
            self.local_wport, self.remote_wport = client_wport, server_wport
        else:
            self.local_wport, self.remote_wport = server_wport, client_wport
        self.dropped_frames = 0
        self._buf = bytearray()
        self._broken: DecodeError | None = None

    # ------------------------------------------------------------------ sending
    def send_apdu(self, apdu: bytes) -> bytes:
        """The wrapper frame (header + ``apdu``) to write to the socket."""
        if not apdu:
            raise LocalProtocolError("cannot send an empty APDU")
        if len(apdu) > MAX_LENGTH:
            raise LocalProtocolError(
                f"APDU of {len(apdu)} bytes does not fit the wrapper length field "
                f"(max {MAX_LENGTH})"
            )
        header = WrapperHeader(self.local_wport, self.remote_wport, len(apdu))
        return header.to_bytes() + bytes(apdu)

    # ---------------------------------------------------------------- receiving
    def receive_data(self, data: bytes) -> None:
        """Buffer bytes from the stream; call :meth:`next_event` until NEED_DATA."""
        if self._broken is not None:
            raise self._broken
        if len(self._buf) + len(data) > self.max_buffer:
            self._broken = DecodeError(
                f"wrapper: {len(self._buf) + len(data)} bytes buffered, more than "
                f"{self.max_buffer} (the reader is not draining next_event())"
            )
            raise self._broken
        self._buf += data

    def next_event(self) -> ApduReceived | NeedData:
        """The next complete APDU, or NEED_DATA. See the class docstring for errors."""
        while True:
            if self._broken is not None:
                raise self._broken
            if len(self._buf) < HEADER_SIZE:
                return NEED_DATA
            header = WrapperHeader.from_bytes(bytes(self._buf[:HEADER_SIZE]))
            if header.version != WRAPPER_VERSION:
                self._broken = DecodeError(
                    f"wrapper version {header.version} (0x{header.version:04X}), expected "
                    f"{WRAPPER_VERSION}: stream out of step", code=header.version
                )
                raise self._broken
            if header.length > self.max_apdu_size:
                self._broken = DecodeError(
                    f"wrapper length {header.length} above the maximum APDU size "
                    f"{self.max_apdu_size}", code=header.length
                )
                raise self._broken
            end = HEADER_SIZE + header.length
            if len(self._buf) < end:
                return NEED_DATA
            apdu = bytes(self._buf[HEADER_SIZE:end])
            del self._buf[:end]
            expected = (self.remote_wport, self.local_wport)
            if (header.source, header.destination) != expected:
                if not self.strict_ports:
                    self.dropped_frames += 1
                    continue
                raise DecodeError(
                    f"wrapper frame 0x{header.source:04X}->0x{header.destination:04X} "
                    f"({header.length} bytes) is not for this association "
                    f"(expected 0x{expected[0]:04X}->0x{expected[1]:04X}); frame discarded"
                )
            if not apdu:
                raise DecodeError("wrapper frame with an empty APDU; frame discarded")
            return ApduReceived(apdu, header.source, header.destination)

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as an event."""
        return len(self._buf)

    def describe(self) -> str:
        """One line for traces, e.g. ``wrapper client 0x0010<->0x0001 buffered=0``."""
        state = " BROKEN" if self._broken is not None else ""
        return (f"wrapper {self.role.value} 0x{self.local_wport:04X}<->0x{self.remote_wport:04X} "
                f"buffered={len(self._buf)} dropped={self.dropped_frames}{state}")
