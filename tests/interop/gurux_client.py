"""Test-only DLMS/COSEM client built on gurux_dlms 1.0.203 (an independent implementation).

gurux_dlms is GPLv2: this module lives under tests/ and must never be imported from
dlmsd/ nor copied into it.  It drives a blocking TCP socket (with timeouts everywhere)
through gurux's byte-level API:

    SNRM/UA (HDLC only) -> AARQ/AARE -> [HLS reply_to_HLS_authentication]
    -> GET (with HDLC segmentation + GET block transfer) ... -> RLRQ/RLRE -> DISC/UA

Library use::

    from .gurux_client import read_objects
    results = read_objects("127.0.0.1", port, interface="hdlc",
                           objects=[(3, "1.0.1.8.0.255", 2), (3, "1.0.1.8.0.255", 3)])
    results[0].value, results[1].scaler, results[1].unit

Subprocess use (prints a JSON list on stdout, exit status 0 on success, 2 on failure)::

    python -m tests.interop.gurux_client --port 4059 --interface wrapper \
        --object 3:1.0.1.8.0.255:2 --object 15:0.0.40.0.0.255:2
    python tests/interop/gurux_client.py --port 4059 ...   # also works

See NOTES.md in this directory for the gurux API facts this relies on.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import socket
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from typing import Any

from gurux_dlms import (
    GXBitString,
    GXByteBuffer,
    GXDateTime,
    GXDLMSClient,
    GXReplyData,
    GXStructure,
)
from gurux_dlms.enums import Authentication, Conformance, DataType, InterfaceType, Security
from gurux_dlms.objects.enums import SecuritySuite  # type: ignore[import-untyped]
from gurux_dlms.secure import GXDLMSSecureClient

__all__ = [
    "AUTHENTICATIONS",
    "GuruxClientError",
    "GuruxSession",
    "ReadResult",
    "hdlc_server_address",
    "read_objects",
    "read_register",
]

AUTHENTICATIONS: dict[str, Authentication] = {
    "none": Authentication.NONE,
    "low": Authentication.LOW,
    "high": Authentication.HIGH,
    "md5": Authentication.HIGH_MD5,
    "sha1": Authentication.HIGH_SHA1,
    "sha256": Authentication.HIGH_SHA256,
    "gmac": Authentication.HIGH_GMAC,
    "ecdsa": Authentication.HIGH_ECDSA,
}

SECURITIES: dict[str, Security] = {
    "none": Security.NONE,
    "auth": Security.AUTHENTICATION,
    "enc": Security.ENCRYPTION,
    "authenc": Security.AUTHENTICATION_ENCRYPTION,
}

INTERFACES: dict[str, InterfaceType] = {
    "hdlc": InterfaceType.HDLC,
    "wrapper": InterfaceType.WRAPPER,
}

# Upper bound on request/response exchanges of one service (segments + blocks), so a
# misbehaving peer can never make the loop spin forever.
MAX_EXCHANGES = 2000


class GuruxClientError(Exception):
    """Association, transport or protocol failure seen by the gurux client."""


@dataclass
class ReadResult:
    """One attribute read, as plain Python values.

    value:     the attribute as plain Python (int, float, str, bytes, bool, None, lists).
    dlms_type: DLMS data-type tag of the value as received (e.g. 6 = double-long-unsigned).
    error:     data-access-result code when the GET failed (value is then None).
    scaler / unit: filled for attribute 3 of class 3/4/5 (scaler_unit).
    decoded:   friendlier form for a few attributes: datetime for clock attr 2,
               list of dicts for association LN attr 2 (object_list).
    """

    class_id: int
    obis: str | int
    attribute: int
    value: Any = None
    dlms_type: int | None = None
    error: int | None = None
    scaler: int | None = None
    unit: int | None = None
    decoded: Any = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_json(self) -> dict[str, Any]:
        """JSON-ready dict: bytes become {"hex": ...}, datetimes ISO strings."""
        out: dict[str, Any] = _jsonable({f.name: getattr(self, f.name) for f in fields(self)})
        return out


def hdlc_server_address(
    logical: int, physical: int | None = None, size: int | None = None,
    serial_number: int | None = None,
) -> tuple[int, int]:
    """Return (server_address, address_size) as gurux wants them for HDLC.

    size 1: upper (logical) address only; physical must be None.
    size 2: logical << 7 | physical (each < 0x80).
    size 4: logical << 14 | physical (each < 0x4000).
    serial_number: physical = SN % 10000 + 1000 (the usual formula, gurux's
    GXDLMSClient.getServerAddressFromSerialNumber), always 4-byte addressing.
    size None picks 1 when physical is None, else 2 if both fit in 7 bits, else 4.
    """
    if serial_number is not None:
        return GXDLMSClient.getServerAddressFromSerialNumber(serial_number, logical), 4
    if size is None:
        if physical is None:
            size = 1
        elif logical < 0x80 and physical < 0x80:
            size = 2
        else:
            size = 4
    if size == 1:
        if physical is not None or not 0 < logical < 0x80:
            raise ValueError("1-byte HDLC server address: logical 1..127 and no physical")
        return logical, 1
    if physical is None:
        raise ValueError(f"{size}-byte HDLC server address needs a physical address")
    if size == 2:
        if logical >= 0x80 or physical >= 0x80:
            raise ValueError("2-byte HDLC server address: logical/physical must be < 0x80")
        return logical << 7 | physical, 2
    if size == 4:
        if logical >= 0x4000 or physical >= 0x4000:
            raise ValueError("4-byte HDLC server address: logical/physical must be < 0x4000")
        return logical << 14 | physical, 4
    raise ValueError("address size must be 1, 2 or 4")


def _to_bytes(value: bytes | str | None) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value.encode()
    return bytes(value)


def _plain(value: Any) -> Any:
    """Convert gurux value objects into plain Python values."""
    if value is None or isinstance(value, bool):
        return value
    # gurux returns subclasses (GXFloat32, GXUInt8, GXEnum, IntEnums ...): make them plain
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, GXByteBuffer):
        return bytes(value.array())
    if isinstance(value, GXDateTime):
        when = value.value
        if isinstance(when, _dt.datetime) and when.tzinfo is not None:
            # gurux's own GXTimeZone tzinfo cannot be copied/pickled: use a stdlib one.
            when = when.replace(tzinfo=_dt.timezone(when.utcoffset() or _dt.timedelta()))
        return when
    if isinstance(value, GXBitString):
        return str(value)
    if isinstance(value, (list, tuple)):  # GXArray / GXStructure are list subclasses
        return [_plain(v) for v in value]
    if hasattr(value, "value"):
        return _plain(value.value)
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return {"hex": bytes(value).hex()}
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    return value


def _ln(raw: Any) -> str:
    return ".".join(str(b) for b in bytes(raw))


def _decode_object_list(value: list[Any]) -> list[dict[str, Any]]:
    out = []
    for item in value:
        class_id, version, ln, rights = item[0], item[1], item[2], item[3]
        attr_access: list[tuple[int, int]] = []
        meth_access: list[tuple[int, int]] = []
        if rights:
            attr_access = [(int(a[0]), int(a[1])) for a in rights[0] or []]
            if len(rights) > 1:
                meth_access = [(int(m[0]), int(m[1])) for m in rights[1] or []]
        out.append({
            "class_id": int(class_id),
            "version": int(version),
            "obis": _ln(ln),
            "attribute_access": attr_access,
            "method_access": meth_access,
        })
    return out


class GuruxSession:
    """One association with a meter, over a blocking TCP socket.

    Use as a context manager: connect + associate on enter; release + disconnect +
    close on exit (best effort).  All keyword arguments are as for read_objects().
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        interface: str = "hdlc",
        client_address: int = 16,
        server_logical: int = 1,
        server_physical: int | None = None,
        address_size: int | None = None,
        serial_number: int | None = None,
        wrapper_server_address: int | None = None,
        authentication: str = "none",
        password: bytes | str | None = None,
        security: str = "none",
        system_title: bytes | None = None,
        block_cipher_key: bytes | None = None,
        authentication_key: bytes | None = None,
        invocation_counter: int = 0,
        dedicated_key: bytes | None = None,
        general_protection: bool = True,
        security_suite: int | None = None,
        signing_key: bytes | None = None,
        peer_public_key: bytes | None = None,
        use_ln: bool = True,
        max_info: int = 128,
        max_pdu: int = 0xFFFF,
        timeout: float = 5.0,
        release: bool = True,
        trace: bool = False,
    ) -> None:
        if interface not in INTERFACES:
            raise ValueError(f"interface must be one of {sorted(INTERFACES)}")
        if authentication not in AUTHENTICATIONS:
            raise ValueError(f"authentication must be one of {sorted(AUTHENTICATIONS)}")
        if security not in SECURITIES:
            raise ValueError(f"security must be one of {sorted(SECURITIES)}")
        self.host = host
        self.port = port
        self.interface = interface
        self.timeout = timeout
        self.release_on_close = release
        self.trace = trace
        self.frames: list[tuple[str, bytes]] = []  # ("tx"|"rx", bytes) when trace=True
        self.sock: socket.socket | None = None
        self.associated = False

        it = INTERFACES[interface]
        if it == InterfaceType.HDLC:
            server_address, size = hdlc_server_address(
                server_logical, server_physical, address_size, serial_number)
        else:
            # Wrapper: the destination wPort, normally the logical device address.
            server_address = (wrapper_server_address if wrapper_server_address is not None
                              else server_logical)
            size = 0
        auth = AUTHENTICATIONS[authentication]
        # GXDLMSSecureClient (not GXDLMSClient): the plain client has settings.cipher=None
        # and crashes in getApplicationAssociationRequest() for every HLS mechanism.
        # NB: GXDLMSSecureClient defaults to useLogicalNameReferencing=False; pass it.
        c = GXDLMSSecureClient(use_ln, client_address, server_address, auth,
                               _to_bytes(password), it)
        c.serverAddressSize = size
        if it == InterfaceType.HDLC:
            # Proposed in SNRM only when different from 128; the UA answer wins.
            c.hdlcSettings.maxInfoTX = max_info
            c.hdlcSettings.maxInfoRX = max_info
        c.maxReceivePDUSize = max_pdu
        ciph = c.ciphering
        ciph.security = SECURITIES[security]
        if system_title is not None:
            ciph.systemTitle = bytearray(system_title)
        if block_cipher_key is not None:
            ciph.blockCipherKey = bytearray(block_cipher_key)
        if authentication_key is not None:
            ciph.authenticationKey = bytearray(authentication_key)
        ciph.invocationCounter = invocation_counter
        if dedicated_key is not None:
            ciph.dedicatedKey = bytearray(dedicated_key)
        if security_suite is not None:
            ciph.securitySuite = SecuritySuite(security_suite)
        if signing_key is not None or peer_public_key is not None:
            # HLS-ECDSA: gurux keeps (peer's public key, own private key) in
            # cipher.signingKeyPair; it signs pass 3 with [1] and verifies the meter's
            # f(CtoS) with [0].  It print()s the private key when signing (see NOTES.md).
            from gurux_dlms.ecdsa import GXPrivateKey, GXPublicKey  # type: ignore[import-untyped]

            ciph.signingKeyPair = (
                GXPublicKey.fromRawBytes(peer_public_key) if peer_public_key else None,
                GXPrivateKey.fromRawBytes(signing_key) if signing_key else None)
        if not general_protection:
            # Without general-protection in the proposed conformance gurux ciphers with the
            # service-specific glo-/ded- APDUs (glo-get-request 0xC8 ...) instead of
            # general-glo-ciphering (0xDB).
            c.proposedConformance &= ~Conformance.GENERAL_PROTECTION
        self.client = c

    # ------------------------------------------------------------------ transport
    def _send(self, data: bytes | bytearray) -> None:
        assert self.sock is not None
        if self.trace:
            self.frames.append(("tx", bytes(data)))
        try:
            self.sock.sendall(bytes(data))
        except OSError as exc:
            raise GuruxClientError(f"send failed: {exc}") from exc

    def _receive(self, reply: GXReplyData, deadline: float) -> None:
        """Read from the socket until gurux has one complete frame in reply."""
        assert self.sock is not None
        rd = GXByteBuffer()
        while True:
            if rd.size and self.client.getData(rd, reply, None):
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise GuruxClientError(
                    f"timeout waiting for a reply (got {rd.size} bytes: "
                    f"{bytes(rd.array()).hex()})")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(4096)
            except TimeoutError as exc:
                raise GuruxClientError("timeout waiting for a reply") from exc
            except OSError as exc:
                raise GuruxClientError(f"receive failed: {exc}") from exc
            if not chunk:
                raise GuruxClientError("connection closed by the meter")
            if self.trace:
                self.frames.append(("rx", chunk))
            rd.set(chunk)

    def _exchange(self, frame: bytes | bytearray, reply: GXReplyData) -> None:
        deadline = time.monotonic() + self.timeout
        self._send(frame)
        self._receive(reply, deadline)

    def transact(self, frames: Any) -> GXReplyData:
        """Send one request (a frame or list of frames from a gurux *Request() call),
        then follow HDLC segmentation (RR) and GET block transfer (next-data-block)
        until the reply is complete.  This is the gurux readDataBlock() loop."""
        if frames is None:
            raise GuruxClientError("gurux produced no request frames")
        if isinstance(frames, (bytes, bytearray)):
            frames = [frames]
        reply = GXReplyData()
        exchanges = 0
        for frame in frames:
            # A request longer than the peer's max-info-RX is several HDLC frames; the
            # peer answers intermediate ones with RR.  gurux's own example clears the
            # reply before each request frame.
            reply.clear()
            self._exchange(frame, reply)
            while reply.isMoreData():
                exchanges += 1
                if exchanges > MAX_EXCHANGES:
                    raise GuruxClientError("too many segments/blocks")
                deadline = time.monotonic() + self.timeout
                if reply.isStreaming():  # GBT streaming: just keep receiving
                    self._receive(reply, deadline)
                    continue
                # RR for an HDLC segment (moreData & FRAME), else GET next-data-block
                nxt = self.client.receiverReady(reply)
                self._send(nxt)
                self._receive(reply, deadline)
        return reply

    # ------------------------------------------------------------------ association
    def open(self) -> GuruxSession:
        self.connect()
        try:
            self.associate()
        except BaseException:
            self._close_socket()
            raise
        return self

    def connect(self) -> None:
        """Open the TCP connection only (open() = connect() + associate())."""
        try:
            self.sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except OSError as exc:
            raise GuruxClientError(f"cannot connect to {self.host}:{self.port}: {exc}") from exc
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def associate(self) -> None:
        """SNRM/UA, AARQ/AARE and HLS passes 3/4 on a connect()ed session.  On failure
        the connection stays open (a test can then try a request on it; close() after)."""
        c = self.client
        snrm = c.snrmRequest()  # None for the wrapper
        if snrm:
            reply = self.transact(snrm)
            self._check_link(reply, "SNRM")
            c.parseUAResponse(reply.data)
        aarq = c.aarqRequest()
        reply = self.transact(aarq)
        self._check_link(reply, "AARQ")
        try:
            c.parseAareResponse(reply.data)
        except Exception as exc:
            raise GuruxClientError(f"association rejected: {exc}") from exc
        if c.isAuthenticationRequired:
            req = (c.getApplicationAssociationRequest() if c.useLogicalNameReferencing
                   else _sn_hls_request(c))
            reply = self.transact(req)
            if reply.error:
                raise GuruxClientError(f"HLS reply_to_HLS failed: error {reply.error}")
            try:
                c.parseApplicationAssociationResponse(reply.data)
            except Exception as exc:
                raise GuruxClientError(f"HLS authentication failed: {exc}") from exc
        self.associated = True

    @staticmethod
    def _check_link(reply: GXReplyData, what: str) -> None:
        if reply.error:
            raise GuruxClientError(f"{what} failed: error {reply.error}")

    def close(self) -> None:
        try:
            if self.sock is not None:
                c = self.client
                if self.associated and self.release_on_close:
                    rel = None
                    with contextlib.suppress(Exception):
                        rel = c.releaseRequest()
                    if rel:
                        with contextlib.suppress(GuruxClientError, OSError):
                            self.transact(rel)
                if self.interface == "hdlc":
                    disc = c.disconnectRequest(True)
                    if disc:
                        with contextlib.suppress(GuruxClientError, OSError):
                            self.transact(disc)
        finally:
            self.associated = False
            self._close_socket()

    def _close_socket(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
            self.sock = None

    def __enter__(self) -> GuruxSession:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ services
    def read(self, class_id: int, obis: str | int, attribute: int) -> ReadResult:
        """GET one attribute (LN: obis is "a.b.c.d.e.f"; SN: obis is the base name)."""
        c = self.client
        # _read(name, objectType, attributeIndex) is what read(item, index) calls.
        frames = c._read(obis, class_id, attribute)
        reply = self.transact(frames)
        res = ReadResult(class_id=class_id, obis=obis, attribute=attribute)
        if reply.error < 0:  # link level: -1 FRMR, -4 DM, ... (ErrorCode)
            raise GuruxClientError(f"GET {class_id}/{obis}/{attribute}: link error "
                                   f"{reply.error}")
        if reply.error:
            res.error = int(reply.error)
            return res
        if isinstance(reply.value, GXStructure):
            res.dlms_type = int(DataType.STRUCTURE)
        elif isinstance(reply.value, list):
            res.dlms_type = int(DataType.ARRAY)
        elif reply.valueType is not None:
            res.dlms_type = int(reply.valueType)
        res.value = _plain(reply.value)
        if class_id in (3, 4, 5) and attribute == 3 and isinstance(res.value, list):
            res.scaler, res.unit = int(res.value[0]), int(res.value[1])
            res.decoded = (res.scaler, res.unit)
        elif class_id == 8 and attribute in (2, 5, 6) and isinstance(res.value, bytes):
            dt = GXDLMSClient.changeType(bytearray(res.value), DataType.DATETIME)
            res.decoded = _plain(dt)
        elif class_id == 15 and attribute == 2 and isinstance(res.value, list):
            res.decoded = _decode_object_list(res.value)
        return res


def read_objects(
    host: str,
    port: int,
    *,
    objects: Iterable[tuple[int, str | int, int]] = ((3, "1.0.1.8.0.255", 2),),
    **kwargs: Any,
) -> list[ReadResult]:
    """Connect, associate, GET each (class_id, obis, attribute), release, disconnect.

    Keyword arguments (all optional):
      interface        "hdlc" | "wrapper"
      client_address   client SAP (16 public, 1 management ...)
      server_logical, server_physical, address_size (1|2|4), serial_number
                       HDLC server address; see hdlc_server_address().
      wrapper_server_address  destination wPort for the wrapper (default server_logical)
      authentication   "none"|"low"|"high"|"md5"|"sha1"|"sha256"|"gmac"|"ecdsa"
      password         LLS password, or HLS secret (16 bytes for "high")
      security_suite   0, 1 or 2 (gurux cipher.securitySuite; default gurux's 0)
      signing_key, peer_public_key  HLS-ECDSA: the client's private key (raw scalar,
                       32 octets for P-256) and the meter's public key (X9.62
                       uncompressed point, 65 octets for P-256)
      security         "none"|"auth"|"enc"|"authenc" (general-glo ciphering)
      system_title, block_cipher_key, authentication_key, invocation_counter
      dedicated_key    sent in the AARQ; gurux ded-ciphers after the authentication
      general_protection  propose general-protection (True: gurux then ciphers with
                       general-glo-ciphering; False: with glo-get-request etc.)
      use_ln           LN (True) or SN (False; obis is then the short name)
      max_info         HDLC max information field length proposed in SNRM (both ways)
      max_pdu          client max receive PDU size proposed in the AARQ
      timeout          seconds for connect and for every single reply
      release          send RLRQ before closing (default True)
      trace            record raw frames in GuruxSession.frames
    Per-object failures are reported in ReadResult.error (data-access-result);
    association/transport failures raise GuruxClientError.
    """
    with GuruxSession(host, port, **kwargs) as session:
        return [session.read(cid, obis, attr) for cid, obis, attr in objects]


def read_register(host: str, port: int, obis: str, *, class_id: int = 3,
                  **kwargs: Any) -> dict[str, Any]:
    """Read value and scaler_unit of one register; returns value, scaler, unit, scaled."""
    value, su = read_objects(host, port, objects=[(class_id, obis, 2), (class_id, obis, 3)],
                             **kwargs)
    if value.error is not None or su.error is not None or su.scaler is None:
        raise GuruxClientError(f"read of {obis} failed: {value.error} / {su.error}")
    scaled = value.value * 10 ** su.scaler if isinstance(value.value, (int, float)) else None
    return {"value": value.value, "scaler": su.scaler, "unit": su.unit, "scaled": scaled}


# ---------------------------------------------------------------------------- CLI
def _sn_hls_request(c: GXDLMSSecureClient) -> Any:
    """HLS pass 3 with SN referencing, framed as a ReadRequest parameterized-access.

    gurux 1.0.203's client invokes the Association SN's reply_to_HLS_authentication
    (method 8, short name 0xFA58) with a WriteRequest, whose WriteResponse cannot carry
    f(CtoS) back, and then fails on the missing f(CtoS) ("Server did not accept CtoS"):
    it cannot complete SN HLS with any server that answers a WriteRequest with a
    WriteResponse (its own server does not serve SN HLS either).  Methods with return
    data are invoked in SN by a ReadRequest with parameterized-access.  Here gurux
    still computes f(StoC) and the short name itself (captured from its own method call)
    and checks f(CtoS) itself (parseApplicationAssociationResponse); only the frame is
    built as a parameterized-access read with gurux's own SN message builder.
    """
    from gurux_dlms.enums import Command
    from gurux_dlms.GXDLMS import GXDLMS
    from gurux_dlms.GXDLMSSNParameters import GXDLMSSNParameters
    from gurux_dlms.internal._GXCommon import _GXCommon
    from gurux_dlms.VariableAccessSpecification import VariableAccessSpecification

    captured: dict[str, Any] = {}

    def capture(name: Any, object_type: Any, index: int, value: Any, data_type: Any) -> Any:
        captured.update(name=name, object_type=object_type, index=index, value=value,
                        data_type=data_type)
        return []

    original = c._GXDLMSClient__method
    c._GXDLMSClient__method = capture
    try:
        c.getApplicationAssociationRequest()
    finally:
        c._GXDLMSClient__method = original
    offset, count = [0], [0]
    GXDLMS.getActionInfo(captured["object_type"], offset, count)
    short_name = captured["name"] + offset[0] + (captured["index"] - 1) * 8
    descriptor = GXByteBuffer()
    descriptor.setUInt16(short_name)
    descriptor.setUInt8(0)  # selector
    data = GXByteBuffer()
    _GXCommon.setData(c.settings, data, captured["data_type"], captured["value"])
    params = GXDLMSSNParameters(c.settings, Command.READ_REQUEST, 1,
                                VariableAccessSpecification.PARAMETERISED_ACCESS,
                                descriptor, data)
    return GXDLMS.getSnMessages(params)


def _parse_object(text: str) -> tuple[int, str | int, int]:
    try:
        cid, name, attr = text.split(":")
        obis: str | int = int(name, 0) if "." not in name else name
        return int(cid), obis, int(attr)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"--object must be CLASS:OBIS:ATTR (e.g. 3:1.0.1.8.0.255:2), got {text!r}") from exc


def _hexbytes(text: str) -> bytes:
    return bytes.fromhex(text)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Read a DLMS meter with gurux_dlms (test tool).")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--interface", choices=sorted(INTERFACES), default="hdlc")
    p.add_argument("--client-address", type=int, default=16)
    p.add_argument("--server-logical", type=int, default=1)
    p.add_argument("--server-physical", type=int)
    p.add_argument("--address-size", type=int, choices=(1, 2, 4))
    p.add_argument("--serial-number", type=int)
    p.add_argument("--wrapper-server-address", type=int)
    p.add_argument("--authentication", choices=sorted(AUTHENTICATIONS), default="none")
    p.add_argument("--password")
    p.add_argument("--password-hex", type=_hexbytes)
    p.add_argument("--security", choices=sorted(SECURITIES), default="none")
    p.add_argument("--system-title", type=_hexbytes)
    p.add_argument("--block-cipher-key", type=_hexbytes)
    p.add_argument("--authentication-key", type=_hexbytes)
    p.add_argument("--invocation-counter", type=int, default=0)
    p.add_argument("--security-suite", type=int, choices=(0, 1, 2))
    p.add_argument("--signing-key-hex", type=_hexbytes,
                   help="ecdsa: the client's private key, raw scalar in hex")
    p.add_argument("--peer-public-key-hex", type=_hexbytes,
                   help="ecdsa: the meter's public key, X9.62 uncompressed point in hex")
    p.add_argument("--sn", action="store_true", help="short-name referencing")
    p.add_argument("--max-info", type=int, default=128)
    p.add_argument("--max-pdu", type=int, default=0xFFFF)
    p.add_argument("--timeout", type=float, default=5.0)
    p.add_argument("--no-release", action="store_true")
    p.add_argument("--object", dest="objects", type=_parse_object, action="append",
                   help="CLASS:OBIS:ATTR, repeatable (default 3:1.0.1.8.0.255:2)")
    a = p.parse_args(argv)
    # gurux_dlms print()s diagnostics ("Invalid HDLC Frame...", "Encryption is applied.")
    # on stdout; keep stdout for the JSON result only.
    out, sys.stdout = sys.stdout, sys.stderr
    try:
        results = read_objects(
            a.host, a.port,
            objects=a.objects or [(3, "1.0.1.8.0.255", 2)],
            interface=a.interface, client_address=a.client_address,
            server_logical=a.server_logical, server_physical=a.server_physical,
            address_size=a.address_size, serial_number=a.serial_number,
            wrapper_server_address=a.wrapper_server_address,
            authentication=a.authentication,
            password=a.password_hex if a.password_hex is not None else a.password,
            security=a.security, system_title=a.system_title,
            block_cipher_key=a.block_cipher_key, authentication_key=a.authentication_key,
            invocation_counter=a.invocation_counter, security_suite=a.security_suite,
            signing_key=a.signing_key_hex, peer_public_key=a.peer_public_key_hex,
            use_ln=not a.sn,
            max_info=a.max_info, max_pdu=a.max_pdu, timeout=a.timeout,
            release=not a.no_release,
        )
    except (GuruxClientError, OSError) as exc:
        print(json.dumps({"error": str(exc)}), file=out, flush=True)
        return 2
    finally:
        sys.stdout = out
    json.dump([r.as_json() for r in results], out)
    out.write("\n")
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
