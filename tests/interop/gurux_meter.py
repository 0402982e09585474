"""Test-only DLMS/COSEM meter (server) built on gurux_dlms 1.0.203 (independent implementation).

gurux_dlms is GPLv2: this module lives under tests/ and must never be imported from
dlmsd/ nor copied into it.

The stock gurux_dlms 1.0.203 Python server cannot answer a single request out of the box
(see NOTES.md, "Server-side bugs"); _GuruxServer below subclasses GXDLMSSecureServer and
patches around every defect met on the paths used here: SNRM/UA, AARQ/AARE (none, low,
HLS high/md5/sha1/sha256/gmac), GET normal, GET with block transfer, HDLC segmentation,
RLRQ/RLRE and DISC/UA.  Each workaround is tagged "gurux bug" with the NOTES.md number.

Usage::

    with GuruxMeter(interface="hdlc") as meter:
        read_objects(meter.host, meter.port, interface="hdlc", ...)

    # in another process (prints "PORT <n>" on stdout, runs until SIGTERM/SIGINT):
    python -m tests.interop.gurux_meter --interface wrapper
    python tests/interop/gurux_meter.py --interface hdlc --server-physical 17
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import os
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from gurux_dlms import (
    GXDLMS,
    GXByteBuffer,
    GXDateTime,
    GXDLMSClient,
    GXDLMSConfirmedServiceError,
    GXDLMSException,
    GXDLMSLNParameters,
    GXServerReply,
)
from gurux_dlms._GXAPDU import _GXAPDU
from gurux_dlms._HDLCInfo import _HDLCInfo
from gurux_dlms.AesGcmParameter import AesGcmParameter
from gurux_dlms.ConfirmedServiceError import ConfirmedServiceError
from gurux_dlms.ConnectionState import ConnectionState
from gurux_dlms.enums import (
    AssociationResult,
    Authentication,
    Command,
    Conformance,
    DataType,
    ErrorCode,
    InterfaceType,
    ObjectType,
    SourceDiagnostic,
)
from gurux_dlms.enums.AccessMode import AccessMode
from gurux_dlms.enums.Initiate import Initiate
from gurux_dlms.enums.MethodAccessMode import MethodAccessMode
from gurux_dlms.enums.RequestTypes import RequestTypes
from gurux_dlms.enums.Service import Service
from gurux_dlms.GXCiphering import GXCiphering
from gurux_dlms.GXSecure import GXSecure
from gurux_dlms.internal._GXCommon import _GXCommon
from gurux_dlms.internal._GXDataInfo import _GXDataInfo
from gurux_dlms.objects import (
    GXDLMSAssociationLogicalName,
    GXDLMSClock,
    GXDLMSData,
    GXDLMSProfileGeneric,
    GXDLMSRegister,
)
from gurux_dlms.objects.enums.ApplicationContextName import ApplicationContextName
from gurux_dlms.objects.enums.AssociationStatus import AssociationStatus
from gurux_dlms.secure import GXDLMSSecureServer
from gurux_dlms.ServiceError import ServiceError

__all__ = [
    "CLOCK_TIME",
    "DEFAULT_DATA",
    "DEFAULT_REGISTERS",
    "DataSpec",
    "GuruxMeter",
    "RegisterSpec",
]

AUTHENTICATIONS: dict[str, Authentication] = {
    "none": Authentication.NONE,
    "low": Authentication.LOW,
    "high": Authentication.HIGH,
    "md5": Authentication.HIGH_MD5,
    "sha1": Authentication.HIGH_SHA1,
    "sha256": Authentication.HIGH_SHA256,
    "gmac": Authentication.HIGH_GMAC,
}


@dataclass(frozen=True)
class RegisterSpec:
    """A class-3 register: value (raw integer/float), DLMS type, scaler exponent, unit."""

    obis: str
    value: int | float
    dlms_type: DataType
    scaler: int
    unit: int


@dataclass(frozen=True)
class DataSpec:
    """A class-1 data object."""

    obis: str
    value: Any
    dlms_type: DataType


DEFAULT_REGISTERS: tuple[RegisterSpec, ...] = (
    # Active energy import, double-long-unsigned, Wh, scaler 0 -> 12345678 Wh
    RegisterSpec("1.0.1.8.0.255", 12345678, DataType.UINT32, 0, 30),
    # Active energy export, double-long-unsigned, Wh, scaler +3 -> 4321 kWh
    # (positive scaler: stock GXDLMSRegister encodes 10**3 as scaler 2, NOTES bug S11)
    RegisterSpec("1.0.2.8.0.255", 4321, DataType.UINT32, 3, 30),
    # Voltage L1, long-unsigned, V, scaler -1 -> 230.1 V
    RegisterSpec("1.0.32.7.0.255", 2301, DataType.UINT16, -1, 35),
    # Current L1, double-long (signed), A, scaler -3 -> 5.123 A
    RegisterSpec("1.0.31.7.0.255", 5123, DataType.INT32, -3, 33),
    # Frequency, float32, Hz, scaler 0 -> 50.0 Hz
    RegisterSpec("1.0.14.7.0.255", 50.0, DataType.FLOAT32, 0, 44),
)

DEFAULT_DATA: tuple[DataSpec, ...] = (
    # Meter serial number as a visible-string
    DataSpec("0.0.96.1.0.255", "GRX-12345678", DataType.STRING),
    # COSEM logical device name as an octet-string (16 bytes)
    DataSpec("0.0.42.0.0.255", b"GRX0000012345678", DataType.OCTET_STRING),
)

@dataclass(frozen=True)
class ProfileSpec:
    """A Profile Generic (class 7): ``columns`` are (OBIS, attribute) of objects of the
    meter (the clock 0.0.1.0.0.255 or a register), in capture order; each row has one
    value per column (an aware datetime for the clock, the raw register value)."""

    obis: str
    columns: tuple[tuple[str, int], ...]
    rows: tuple[tuple[Any, ...], ...]
    capture_period: int = 900


# Fixed clock value so tests can assert it exactly (deviation 0, i.e. UTC).
CLOCK_TIME = _dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=_dt.UTC)


# ----------------------------------------------------------------------------- shims
_ORIGINAL_HANDLE_GLO_DED_REQUEST = GXDLMS.__dict__["handleGloDedRequest"]
_glo_patch_lock = threading.Lock()


def _fixed_handle_glo_ded_request(cls: Any, settings: Any, data: Any) -> None:
    """gurux bug S15: GXDLMS.handleGloDedRequest() builds AesGcmParameter(systemTitle,
    key, authKey) without the leading tag argument, so every field is shifted (the block
    cipher key becomes the system title, the authentication key None) and decryption of
    any service-specific glo-/ded- request (glo-get 0xC8, glo-action 0xCB, ...) raises
    TypeError -> the server answers FRMR / nothing.  Same logic, arguments fixed."""
    if settings.cipher is None:
        raise ValueError("Secure connection is not supported.")
    data.data.position = data.data.position - 1
    if (data.moreData & RequestTypes.FRAME) != 0:
        return
    cipher = settings.cipher
    key = (cipher.dedicatedKey
           if cipher.dedicatedKey and (settings.connected & ConnectionState.DLMS) != 0
           else cipher.blockCipherKey)
    p = AesGcmParameter(0, settings.sourceSystemTitle, key, cipher.authenticationKey)
    tmp = GXCiphering.decrypt(settings, p, data.data)
    data.data.clear()
    data.data.set(tmp)
    data.command = Command(data.data.getUInt8())


def _install_glo_request_fix() -> None:
    """Replace GXDLMS.handleGloDedRequest process-wide (idempotent).  It is only reached
    for *requests*, i.e. by servers, and the original always raises, so nothing that
    worked can break.  The original stays in _ORIGINAL_HANDLE_GLO_DED_REQUEST."""
    with _glo_patch_lock:
        if GXDLMS.__dict__["handleGloDedRequest"] is _ORIGINAL_HANDLE_GLO_DED_REQUEST:
            GXDLMS.handleGloDedRequest = classmethod(_fixed_handle_glo_ded_request)


class _ServerReply(GXServerReply):
    """gurux bug S2: GXDLMSServer.handleRequest() calls sr.setReply(), sr.getConnectionInfo(),
    sr.setCount(), sr.getCount(); 1.0.203's GXServerReply only has plain attributes."""

    def setReply(self, value: Any) -> None:  # noqa: N802 - gurux naming
        self.reply = value

    def getConnectionInfo(self) -> Any:  # noqa: N802
        return self.connectionInfo

    def setCount(self, value: int) -> None:  # noqa: N802
        self.count = value

    def getCount(self) -> int:  # noqa: N802
        return self.count


def _fix_authentication_value_length(aare: bytearray) -> None:
    """gurux bug S19: the AARE's responding-authentication-value (StoC) is written as
    ``AA <len(StoC)> 80 <len(StoC)> StoC``: the outer length misses the two octets of
    the inner GraphicString header, so a strict BER reader runs past it (the AARE's own
    length is right).  Repair the element's length."""
    pos = 2
    while pos + 3 < len(aare):
        tag, length = aare[pos], aare[pos + 1]
        if tag == 0xAA and aare[pos + 2] == 0x80 and length != aare[pos + 3] + 2:
            length = aare[pos + 1] = aare[pos + 3] + 2
        pos += 2 + length


class _Association(GXDLMSAssociationLogicalName):
    def getObjects(self, settings: Any, e: Any) -> Any:  # noqa: N802
        # gurux bug S8: getObjects() reads e.isSkipMaxPduSize; ValueEventArgs has
        # skipMaxPduSize.
        e.isSkipMaxPduSize = e.skipMaxPduSize
        if e.server is None:
            # gurux bug S12: ValueEventArgs.server is never set, so the object list goes
            # out with empty access-rights arrays.  Give it the server back.
            e.server = self._dlms_server
        return super().getObjects(settings, e)

    def getAssociationStatus(self) -> Any:  # noqa: N802 - gurux bug S9 (method missing)
        return self.associationStatus


class _Register(GXDLMSRegister):
    """gurux bug S11: GXDLMSRegister keeps the scaler as a multiplier (10**n) and encodes
    floor(log10(multiplier)), which is one too small for positive exponents
    (log10(1000) == 2.9999999999999996).  Keep the exponent and encode it exactly."""

    def __init__(self, ln: str, exponent: int) -> None:
        super().__init__(ln)
        self.exponent = exponent
        self.scaler = 10.0 ** exponent

    def getValue(self, settings: Any, e: Any) -> Any:  # noqa: N802
        if e.index == 3:
            data = GXByteBuffer()
            data.setUInt8(DataType.STRUCTURE)
            data.setUInt8(2)
            _GXCommon.setData(settings, data, DataType.INT8, self.exponent)
            _GXCommon.setData(settings, data, DataType.ENUM, int(self.unit))
            return data.array()
        return super().getValue(settings, e)


def _stamp(value: Any) -> float:
    """A buffer or range date as UTC seconds (gurux gives GXDateTime or datetime)."""
    if isinstance(value, GXDateTime):
        value = value.value
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.UTC)
    return float(value.timestamp())


class _ProfileGeneric(GXDLMSProfileGeneric):
    """gurux bugs S20-S22: the stock buffer read with selective access calls
    ``e.getRowEndIndex()``, which ValueEventArgs does not have (S20, every selective
    access fails); by range it compares the start date with 0 (S21, TypeError) and
    restricts on the first column whatever the restricting object; by entry it takes
    to_entry for a count and, for "all columns", answers structures without their
    values (S22).  This serves the buffer as Blue Book 4.3.6 says: selector 1 keeps
    the rows whose restricting object's value lies in from..to (both included),
    selector 2 entries from_entry..to_entry (0: the last), every column."""

    def getValue(self, settings: Any, e: Any) -> Any:  # noqa: N802
        if e.index != 2 or not e.selector or e.parameters is None or e.rowEndIndex != 0:
            if e.index == 7:
                return len(self.buffer)
            return super().getValue(settings, e)
        params = e.parameters
        if e.selector == 1:
            restricting, start, end = params[0], params[1], params[2]
            column = next(n for n, (obj, co) in enumerate(self.captureObjects)
                          if obj.logicalName == _GXCommon.toLogicalName(restricting[1])
                          and co.attributeIndex == restricting[2])
            info = _GXDataInfo()
            info.type_ = DataType.DATETIME
            low = _stamp(_GXCommon.getData(settings, GXByteBuffer(start), info).value)
            info.clear()
            info.type_ = DataType.DATETIME
            high = _stamp(_GXCommon.getData(settings, GXByteBuffer(end), info).value)
            table = [row for row in self.buffer if low <= _stamp(row[column]) <= high]
        elif e.selector == 2:
            first = max(1, params[0])
            last = params[1] or len(self.buffer)
            table = self.buffer[first - 1:last]
        else:
            e.error = ErrorCode.READ_WRITE_DENIED
            return None
        return self.getData(settings, e, table, None)


class _GuruxServer(GXDLMSSecureServer):
    """One gurux server instance per TCP connection (gurux keeps per-link state in it)."""

    def __init__(self, meter: GuruxMeter) -> None:
        it = InterfaceType.HDLC if meter.interface == "hdlc" else InterfaceType.WRAPPER
        # GXDLMSSecureServer.__init__(association, interfaceType) passes its first argument
        # on as logicalNameReferencing: True means LN.
        super().__init__(True, it)
        self.meter = meter
        self.errors: list[str] = []
        self.abort = False  # set when there is no sensible answer: drop the connection
        st = self.settings
        # gurux bug S10: GXDLMSSecureServer sets settings.ciphering, but everything reads
        # settings.cipher, which stays None (no HLS-GMAC / SHA-256, no ciphering).
        st.cipher = GXCiphering(bytearray(meter.system_title))
        st.cipher.blockCipherKey = bytearray(meter.block_cipher_key)
        st.cipher.authenticationKey = bytearray(meter.authentication_key)
        # gurux bug S6: getRequestNextDataBlock() reads settings.gbtWndowSize (typo) and
        # calls settings.getMaxPduSize(); gurux bug S9: settings.setConnected() is called
        # after reply_to_HLS.  None of them exists on GXDLMSSettings.
        st.gbtWndowSize = 1
        st.getMaxPduSize = lambda: st.maxPduSize
        st.setConnected = lambda value: setattr(st, "connected", value)
        st.maxServerPDUSize = meter.max_pdu
        # self.hdlc / self.wrapper (HDLC-setup / TCP-UDP-setup objects) stay None on
        # purpose: with either set, gurux bug S16 (int(timedelta) in the inactivity check)
        # turns every request into a hardware-fault, and S3 breaks SNRM.
        self._build_objects()
        self.initialize()

    # -- object model -------------------------------------------------------------
    def _build_objects(self) -> None:
        m = self.meter
        for spec in m.registers:
            r = _Register(spec.obis, spec.scaler)
            r.value = spec.value
            r.setDataType(2, spec.dlms_type)
            r.unit = spec.unit
            self.items.append(r)
        for d in m.data:
            obj = GXDLMSData(d.obis)
            obj.value = bytearray(d.value) if isinstance(d.value, bytes) else d.value
            obj.setDataType(2, d.dlms_type)
            self.items.append(obj)
        if m.clock_time is not None:
            clock = GXDLMSClock("0.0.1.0.0.255")
            clock.time = GXDateTime(m.clock_time)
            self.items.append(clock)
        for spec in m.profiles:
            profile = _ProfileGeneric(spec.obis)
            for obis, attribute in spec.columns:
                target = next(o for o in self.items if o.logicalName == obis)
                profile.addCaptureObject(target, attribute, 0)
            profile.capturePeriod = spec.capture_period
            profile.buffer = [[GXDateTime(v) if isinstance(v, _dt.datetime) else v
                               for v in row] for row in spec.rows]
            profile.profileEntries = max(len(spec.rows), 1)
            self.items.append(profile)
        # gurux bug S1: initialize() does objectList.append(self.items) (a collection into
        # a collection -> TypeError) when the association's objectList is empty, and it
        # creates the association itself that way when none was added.  Add our own
        # association with a populated objectList.
        assoc = _Association("0.0.40.0.0.255")
        assoc._dlms_server = self
        assoc.secret = bytearray(m.hls_secret)
        self.items.append(assoc)
        assoc.objectList.extend(self.items)
        self.association = assoc

    # -- gurux callbacks (all abstract in GXDLMSServer) ------------------------------
    def isTarget(self, serverAddress: int, clientAddress: int) -> bool:  # noqa: N802,N803
        m = self.meter
        if serverAddress != m.server_address:
            return False
        if m.client_addresses is not None and clientAddress not in m.client_addresses:
            return False
        if m.interface == "hdlc":
            # Answer with the same address length the client used.
            self.settings.serverAddressSize = m.address_size
        return True

    def onValidateAuthentication(self, authentication: Any, password: Any) -> Any:  # noqa: N802
        m = self.meter
        name = next((k for k, v in AUTHENTICATIONS.items() if v == authentication), None)
        if name is None or name not in m.authentications:
            return SourceDiagnostic.NOT_RECOGNISED
        if authentication == Authentication.LOW and bytes(password or b"") != m.password:
            return SourceDiagnostic.AUTHENTICATION_FAILURE
        if authentication > Authentication.LOW:
            self.association.authenticationMechanismName.mechanismId = authentication
        return SourceDiagnostic.NONE

    def onGetAttributeAccess(self, arg: Any) -> Any:  # noqa: N802
        if (self.meter.clock_writable and isinstance(arg.target, GXDLMSClock)
                and arg.index == 2):
            return AccessMode.READ_WRITE
        return AccessMode.READ

    def onGetMethodAccess(self, arg: Any) -> Any:  # noqa: N802
        return MethodAccessMode.NO_ACCESS

    def onFindObject(self, objectType: Any, sn: Any, ln: Any) -> Any:  # noqa: N802,N803
        return None

    def onPreGet(self, args: Any) -> None:  # noqa: N802
        pass

    def onPostGet(self, args: Any) -> None:  # noqa: N802
        pass

    def onPreRead(self, args: Any) -> None:  # noqa: N802
        pass

    def onPostRead(self, args: Any = None) -> None:  # noqa: N802
        # gurux bug S5: getRequestNormal() calls server.onPostRead() with no argument.
        pass

    def onPreWrite(self, args: Any) -> None:  # noqa: N802
        pass

    def onPostWrite(self, args: Any) -> None:  # noqa: N802
        pass

    def onPreAction(self, args: Any) -> None:  # noqa: N802
        pass

    def onPostAction(self, args: Any) -> None:  # noqa: N802
        pass

    def onConnected(self, connectionInfo: Any) -> None:  # noqa: N802,N803
        self.meter._event("associated")

    def onInvalidConnection(self, connectionInfo: Any) -> None:  # noqa: N802,N803
        self.meter._event("rejected")

    def onDisconnected(self, connectionInfo: Any) -> None:  # noqa: N802,N803
        self.meter._event("released")

    # -- methods the stock code calls but 1.0.203 does not define -------------------
    def notifyRead(self, *args: Any) -> None:  # noqa: N802 - gurux bug S5
        pass

    def notifyConnected(self, connection_info: Any) -> None:  # noqa: N802 - gurux bug S9
        self.onConnected(connection_info)

    def getTransaction(self) -> Any:  # noqa: N802 - gurux bug S5
        return self.transaction

    def setTransaction(self, t: Any) -> None:  # noqa: N802 - gurux bug S5/S7
        if t is not None:
            # gurux bug S7: the transaction is created with a single ValueEventArgs but
            # iterated as a list, and GXDLMSLongTransaction has no setData().
            if t.targets is not None and not isinstance(t.targets, list):
                t.targets = [t.targets]

            def set_data(bb: GXByteBuffer, t: Any = t) -> None:
                t.data = GXByteBuffer()
                t.data.set(bb)  # copies from bb.position, i.e. what is still unsent

            t.setData = set_data
        self.transaction = t

    # -- ACSE ----------------------------------------------------------------------
    def handleAarqRequest(self, data: GXByteBuffer, connectionInfo: Any) -> None:  # noqa: N802,N803
        """Same decisions as the stock handleAarqRequest() (plus the S18 max-PDU clamp),
        but the AARE is built by _generate_aare(): gurux bug S14, _GXAPDU.generateAARE()
        raises TypeError (data.setUInt8() without argument, wrong length too) whenever it
        has to add the responding-AP-title, i.e. for HLS-GMAC and for every ciphered
        association; and it never adds it for HLS-SHA256, which needs it."""
        st = self.settings
        result = AssociationResult.ACCEPTED
        error = None
        st.setCtoSChallenge(None)
        if st.cipher:
            st.cipher.setDedicatedKey(None)
        if st.interfaceType == InterfaceType.WRAPPER:
            self.reset(True)
        diagnostic = SourceDiagnostic.NO_REASON_GIVEN
        try:
            diagnostic = _GXAPDU.parsePDU(st, st.cipher, data, None)
            # gurux bug S18: _GXAPDU.parse() "clamps" with settings.setMaxPduSize = ...
            # (creates an attribute) so the server's max PDU size is never applied.
            st.maxPduSize = min(st.maxPduSize, st.maxServerPDUSize)
            if st.negotiatedConformance == Conformance.NONE:
                result = AssociationResult.PERMANENT_REJECTED
                diagnostic = SourceDiagnostic.NO_REASON_GIVEN
                error = self._initiate_error(Initiate.INCOMPATIBLE_CONFORMANCE)
            elif st.maxPduSize < 64:
                result = AssociationResult.PERMANENT_REJECTED
                diagnostic = SourceDiagnostic.NO_REASON_GIVEN
                error = self._initiate_error(Initiate.PDU_SIZE_TOO_SHORT)
            elif st.dlmsVersion != 6:
                st.dlmsVersion = 6
                result = AssociationResult.PERMANENT_REJECTED
                diagnostic = SourceDiagnostic.NO_REASON_GIVEN
                error = self._initiate_error(Initiate.DLMS_VERSION_TOO_LOW)
            elif diagnostic != SourceDiagnostic.NONE:
                result = AssociationResult.PERMANENT_REJECTED
                diagnostic = SourceDiagnostic.NOT_SUPPORTED
                self.onInvalidConnection(connectionInfo)
            else:
                diagnostic = self.onValidateAuthentication(st.authentication, st.password)
                ln = self.association
                ln.applicationContextName.contextId = (
                    ApplicationContextName.LOGICAL_NAME_WITH_CIPHERING
                    if st.cipher.isCiphered() else ApplicationContextName.LOGICAL_NAME)
                ln.authenticationMechanismName.mechanismId = st.authentication
                if diagnostic != SourceDiagnostic.NONE:
                    result = AssociationResult.PERMANENT_REJECTED
                    self.onInvalidConnection(connectionInfo)
                elif st.authentication > Authentication.LOW:
                    diagnostic = SourceDiagnostic.AUTHENTICATION_REQUIRED
                    ln.associationStatus = AssociationStatus.ASSOCIATION_PENDING
                else:
                    ln.associationStatus = AssociationStatus.ASSOCIATED
                    st.connected |= ConnectionState.DLMS
        except GXDLMSConfirmedServiceError as e:
            result = AssociationResult.PERMANENT_REJECTED
            diagnostic = SourceDiagnostic.NO_REASON_GIVEN
            error = bytearray([0x0E, e.confirmedServiceError, e.serviceError,
                               e.serviceErrorValue])
        except GXDLMSException as e:
            result = e.result
            diagnostic = e.diagnostic
        if st.interfaceType == InterfaceType.HDLC:
            self.replyData.set(_GXCommon.LLC_REPLY_BYTES)
        if st.authentication > Authentication.LOW:
            st.setStoCChallenge(GXSecure.generateChallenge())
        self._generate_aare(result, diagnostic, error)

    @staticmethod
    def _initiate_error(code: int) -> bytearray:
        return bytearray([0x0E, ConfirmedServiceError.INITIATE_ERROR, ServiceError.INITIATE,
                          code])

    def _generate_aare(self, result: int, diagnostic: int, error: bytearray | None) -> None:
        st = self.settings
        cipher = st.cipher
        ciphered = cipher.isCiphered()
        # Let gurux build the AARE without its broken responding-AP-title branch (pass
        # cipher=None), hand it the (possibly ciphered) user-information ready-made, then
        # fix the application-context-name and splice the responding-AP-title in.
        user_info = error if error is not None else _GXAPDU.getUserInformation(st, cipher)
        tmp = GXByteBuffer()
        _GXAPDU.generateAARE(st, tmp, result, diagnostic, None, bytearray(user_info), None)
        aare = bytearray(tmp.array())
        if ciphered:
            oid = aare.find(bytes([0x60, 0x85, 0x74, 0x05, 0x08, 0x01]))
            aare[oid + 6] = 3 if st.getUseLogicalNameReferencing() else 4
        if ciphered or st.authentication in (Authentication.HIGH_GMAC,
                                             Authentication.HIGH_SHA256):
            title = bytes(cipher.systemTitle)
            pos = 2
            while pos < len(aare) and aare[pos] != 0xA3:  # skip to result-source-diagnostic
                pos += 2 + aare[pos + 1]
            pos += 2 + aare[pos + 1]
            aare[pos:pos] = bytes([0xA4, 2 + len(title), 0x04, len(title)]) + title
            aare[1] += 4 + len(title)
        _fix_authentication_value_length(aare)
        self.replyData.set(aare)

    # -- HDLC link layer --------------------------------------------------------------
    def handleSnrmRequest(self, data: GXByteBuffer) -> None:  # noqa: N802
        """gurux bug S3: the stock method dereferences self.hdlc (None -> AttributeError),
        or, with an HDLC-setup object, calls settings.hdlc.update() which does not exist.
        Negotiate: each direction = min(what the client proposed, our max_info)."""
        h = self.settings.hdlc
        h.maxInfoTX = h.maxInfoRX = 128
        h.windowSizeTX = h.windowSizeRX = 1
        GXDLMS.parseSnrmUaResponse(data, h)  # maps client's RX -> our TX and vice versa
        h.maxInfoTX = min(h.maxInfoTX, self.meter.max_info)
        h.maxInfoRX = min(h.maxInfoRX, self.meter.max_info)
        h.windowSizeTX = h.windowSizeRX = 1
        self.reset(True)
        b = self.replyData
        b.setUInt8(0x81)
        b.setUInt8(0x80)
        b.setUInt8(0)
        b.setUInt8(_HDLCInfo.MAX_INFO_TX)
        GXDLMS.appendHdlcParameter(b, h.maxInfoTX)
        b.setUInt8(_HDLCInfo.MAX_INFO_RX)
        GXDLMS.appendHdlcParameter(b, h.maxInfoRX)
        b.setUInt8(_HDLCInfo.WINDOW_SIZE_TX)
        b.setUInt8(4)
        b.setUInt32(h.windowSizeTX)
        b.setUInt8(_HDLCInfo.WINDOW_SIZE_RX)
        b.setUInt8(4)
        b.setUInt32(h.windowSizeRX)
        b.setUInt8(2, len(b) - 3)
        self.settings.connected = ConnectionState.HDLC

    def generateDisconnectRequest(self) -> None:  # noqa: N802
        """gurux bug S4: the stock method dereferences self.hdlc (None).  Answer DISC
        with a UA without information field."""

    # -- error reporting ---------------------------------------------------------------
    def reportError(self, command: Any, error: Any) -> Any:  # noqa: N802
        """gurux bug S13: the stock reportError() passes data=None to getLNPdu(), which
        crashes when a multi-block GET was in progress (settings.count != index), so the
        handler exception escapes handleRequest().  Record the
        exception (this is the only place gurux's swallowed exceptions are visible) and
        answer with a proper error response."""
        self.errors.append(traceback.format_exc())
        self.meter._error(self.errors[-1])
        responses = {
            Command.GET_REQUEST: Command.GET_RESPONSE,
            Command.SET_REQUEST: Command.SET_RESPONSE,
            Command.METHOD_REQUEST: Command.METHOD_RESPONSE,
        }
        self.settings.setCount(0)
        self.settings.setIndex(0)
        self.transaction = None
        self.replyData.clear()
        if command in responses:
            if self.settings.interfaceType == InterfaceType.HDLC:
                GXDLMS.addLLCBytes(self.settings, self.replyData)
            p = GXDLMSLNParameters(self.settings, 0, responses[command], 1, None,
                                   GXByteBuffer(), error)
            GXDLMS.getLNPdu(p, self.replyData)
            if self.settings.interfaceType == InterfaceType.WRAPPER:
                return GXDLMS.getWrapperFrame(self.settings, command, self.replyData)
            return GXDLMS.getHdlcFrame(self.settings, 0, self.replyData)
        if self.settings.interfaceType == InterfaceType.HDLC:
            return GXDLMS.getHdlcFrame(self.settings, Command.UNACCEPTABLE_FRAME,
                                       self.replyData)
        self.abort = True
        return None

    # -- ACTION (only reply_to_HLS_authentication is supported) ------------------------
    def handleCommand(self, cmd: Any, data: Any, sr: Any) -> Any:  # noqa: N802
        if cmd == Command.SET_REQUEST and self.meter.clock_writable:
            # gurux bug S23: GXDLMSLNCommandHandler.handleSetRequestNormal() calls
            # p.isMultipleBlocks(), which GXDLMSLNParameters does not have: every SET
            # raises (no answer).
            frame = self.settings.getNextSend(False) if self.replyData else 0
            self._set_request(data)
            if self.settings.interfaceType == InterfaceType.WRAPPER:
                return GXDLMS.getWrapperFrame(self.settings, cmd, self.replyData)
            return GXDLMS.getHdlcFrame(self.settings, frame, self.replyData)
        if cmd != Command.METHOD_REQUEST:
            return super().handleCommand(cmd, data, sr)
        # gurux bug S9: GXDLMSLNCommandHandler.handleMethodRequest() does list(e) on a
        # ValueEventArgs (TypeError) before invoking anything, and
        # GXDLMSAssociationLogicalName.invoke() does int(e.parameters) on the octet-string
        # challenge.  So every ACTION, including reply_to_HLS_authentication, fails.
        frame = self.settings.getNextSend(False) if self.replyData else 0
        self._method_request(data, sr)
        if self.settings.interfaceType == InterfaceType.WRAPPER:
            return GXDLMS.getWrapperFrame(self.settings, cmd, self.replyData)
        return GXDLMS.getHdlcFrame(self.settings, frame, self.replyData)

    def _method_request(self, data: GXByteBuffer, sr: Any) -> None:
        st = self.settings
        data.getUInt8()  # action-request type (normal)
        invoke_id = data.getUInt8()
        st.updateInvokeId(invoke_id)
        class_id = data.getUInt16()
        ln = bytearray(6)
        data.get(ln)
        method = data.getUInt8()
        params = None
        if data.getUInt8():
            params = _GXCommon.getData(st, data, _GXDataInfo())
        is_hls = class_id == ObjectType.ASSOCIATION_LOGICAL_NAME and method == 1
        if not st.acceptConnection() and not is_hls:
            self.replyData.set(self.generateConfirmedServiceError(
                ConfirmedServiceError.INITIATE_ERROR, ServiceError.SERVICE,
                Service.UNSUPPORTED))
            return
        bb = GXByteBuffer()
        error = ErrorCode.OK
        obj = self.items.findByLN(ObjectType(class_id), _GXCommon.toLogicalName(ln))
        if obj is None:
            error = ErrorCode.UNDEFINED_OBJECT
        elif is_hls and obj is self.association and params is not None:
            answer = self._reply_to_hls(bytes(params))
            if answer is None:
                error = ErrorCode.READ_WRITE_DENIED
                self.onInvalidConnection(sr.getConnectionInfo())
            else:
                bb.setUInt8(1)  # return-parameters present
                bb.setUInt8(0)  # Get-Data-Result: data
                _GXCommon.setData(st, bb, DataType.OCTET_STRING, bytearray(answer))
                st.connected |= ConnectionState.DLMS
                self.onConnected(sr.getConnectionInfo())
        else:
            error = ErrorCode.READ_WRITE_DENIED
        p = GXDLMSLNParameters(st, invoke_id, Command.METHOD_RESPONSE, 1, None, bb, error)
        GXDLMS.getLNPdu(p, self.replyData)

    def _set_request(self, data: GXByteBuffer) -> None:
        """SET-Request-Normal of the clock's time: gurux decodes the value and its clock
        object takes it (GXDLMSClock.setValue); anything else is read-write-denied."""
        st = self.settings
        choice = data.getUInt8()
        invoke_id = data.getUInt8()
        st.updateInvokeId(invoke_id)
        error = ErrorCode.READ_WRITE_DENIED
        if choice == 1:  # normal
            class_id = data.getUInt16()
            ln = bytearray(6)
            data.get(ln)
            attribute = data.getUInt8()
            selection = data.getUInt8()
            obj = self.items.findByLN(ObjectType(class_id), _GXCommon.toLogicalName(ln))
            if obj is None:
                error = ErrorCode.UNDEFINED_OBJECT
            elif isinstance(obj, GXDLMSClock) and attribute == 2 and not selection:
                value = _GXCommon.getData(st, data, _GXDataInfo())
                obj.time = _GXCommon.changeType(st, value, DataType.DATETIME)
                error = ErrorCode.OK
        p = GXDLMSLNParameters(st, invoke_id, Command.SET_RESPONSE, 1, None, None, error)
        GXDLMS.getLNPdu(p, self.replyData)

    def _reply_to_hls(self, f_ctos: bytes) -> bytes | None:
        """Check f(StoC) from the client, return f(CtoS) (Green Book HLS pass 3/4)."""
        st = self.settings
        auth = st.authentication
        secret = bytes(self.association.secret)
        if auth == Authentication.HIGH_GMAC:
            if len(f_ctos) < 5:
                return None
            ic = int.from_bytes(f_ctos[1:5], "big")
            expected = GXSecure.secure(st, st.cipher, ic, st.stoCChallenge,
                                       st.sourceSystemTitle)
        elif auth == Authentication.HIGH_SHA256:
            expected = GXSecure.secure(
                st, st.cipher, 0, st.stoCChallenge,
                secret + bytes(st.sourceSystemTitle or b"") + bytes(st.cipher.systemTitle)
                + bytes(st.stoCChallenge) + bytes(st.ctoSChallenge))
        elif auth in (Authentication.HIGH, Authentication.HIGH_MD5, Authentication.HIGH_SHA1):
            expected = GXSecure.secure(st, st.cipher, 0, st.stoCChallenge, secret)
        else:
            return None
        if bytes(expected) != f_ctos:
            self.association.associationStatus = AssociationStatus.NON_ASSOCIATED
            return None
        self.association.associationStatus = AssociationStatus.ASSOCIATED
        if auth == Authentication.HIGH_GMAC:
            st.cipher.invocationCounter += 1
            answer = GXSecure.secure(st, st.cipher, st.cipher.invocationCounter,
                                     st.ctoSChallenge, st.cipher.systemTitle)
        elif auth == Authentication.HIGH_SHA256:
            answer = GXSecure.secure(
                st, st.cipher, 0, st.ctoSChallenge,
                secret + bytes(st.cipher.systemTitle) + bytes(st.sourceSystemTitle or b"")
                + bytes(st.ctoSChallenge) + bytes(st.stoCChallenge))
        else:
            answer = GXSecure.secure(st, st.cipher, 0, st.ctoSChallenge, secret)
        return bytes(answer)


# ------------------------------------------------------------------------- TCP layer
def _split_frames(buf: bytearray, interface: str) -> list[bytes]:
    """Cut complete link-layer frames off the front of buf (in place).

    gurux bug S17: the stock handleRequest() clears its receive buffer after each
    complete frame, so two frames arriving in one recv() would lose the second; feed it
    one at a time."""
    frames: list[bytes] = []
    while True:
        if interface == "wrapper":
            if len(buf) < 8:
                return frames
            total = 8 + int.from_bytes(buf[6:8], "big")
        else:
            start = buf.find(b"\x7e")
            if start < 0:
                buf.clear()
                return frames
            del buf[:start]
            while len(buf) > 1 and buf[1] == 0x7E:  # repeated flags
                del buf[0]
            if len(buf) < 3:
                return frames
            if buf[1] & 0xF0 != 0xA0:  # not a frame format field: resync
                del buf[0]
                continue
            total = (((buf[1] & 0x07) << 8) | buf[2]) + 2
            if len(buf) >= total and buf[total - 1] != 0x7E:
                del buf[0]  # bad length/closing flag: resync
                continue
        if len(buf) < total:
            return frames
        frames.append(bytes(buf[:total]))
        del buf[:total]
        if interface == "hdlc" and buf and buf[0] != 0x7E:
            buf[:0] = b"\x7e"  # the closing flag doubled as the next opening flag


class GuruxMeter:
    """A gurux_dlms based DLMS/COSEM meter listening on 127.0.0.1 (threaded, blocking).

    Parameters
    ----------
    interface: "hdlc" (HDLC frames over TCP) or "wrapper" (IEC 62056-47 wrapper).
    port: 0 for an ephemeral port (read meter.port after start()).
    server_logical, server_physical, address_size, serial_number:
        the HDLC server address the meter answers to.  address_size 1 = upper address
        only (physical None); 2 = logical<<7|physical; 4 = logical<<14|physical.
        serial_number=N means physical = N % 10000 + 1000 with 4-byte addressing.
        Default: logical 1, physical 17, 2-byte (HDLC address 0x91, "145").
    wrapper_server_address: wrapper destination wPort (default server_logical).
    client_addresses: accepted client SAPs (None = any).
    authentications: accepted mechanisms, subset of none/low/high/md5/sha1/sha256/gmac.
    password: LLS password.  hls_secret: HLS secret (16 bytes for "high").
    system_title / block_cipher_key / authentication_key: server keys (used for gmac
        and sha256 HLS).
    max_info: largest HDLC information field the meter accepts/sends.
    max_pdu: server max receive PDU size (reported in the AARE).
    registers / data / clock_time: the object model (see DEFAULT_*).
    clock_writable: the clock's time (attribute 2) may be SET (gurux's own SET handling
        stores the value; the clock does not run).
    profiles: Profile Generic objects over those (:class:`ProfileSpec`).
    idle_timeout: close a connection idle for this many seconds.
    trace: record every received/sent frame in meter.frames.
    fix_glo_requests: install the process-wide fix for gurux bug S15 on start() (needed
        for service-specific ciphered requests such as glo-get/glo-action).
    """

    def __init__(
        self,
        interface: str = "hdlc",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        server_logical: int = 1,
        server_physical: int | None = 17,
        address_size: int | None = None,
        serial_number: int | None = None,
        wrapper_server_address: int | None = None,
        client_addresses: Iterable[int] | None = None,
        authentications: Iterable[str] = ("none", "low", "high", "md5", "sha1", "sha256",
                                          "gmac"),
        password: bytes = b"12345678",
        hls_secret: bytes = b"0123456789ABCDEF",
        system_title: bytes = b"GRX12345",
        block_cipher_key: bytes = bytes(range(16)),
        authentication_key: bytes = bytes(range(0xD0, 0xE0)),
        max_info: int = 128,
        max_pdu: int = 0xFFFF,
        registers: Sequence[RegisterSpec] = DEFAULT_REGISTERS,
        data: Sequence[DataSpec] = DEFAULT_DATA,
        clock_time: _dt.datetime | None = CLOCK_TIME,
        clock_writable: bool = False,
        profiles: Sequence[ProfileSpec] = (),
        idle_timeout: float = 30.0,
        trace: bool = False,
        fix_glo_requests: bool = True,
    ) -> None:
        if interface not in ("hdlc", "wrapper"):
            raise ValueError("interface must be 'hdlc' or 'wrapper'")
        unknown = set(authentications) - set(AUTHENTICATIONS)
        if unknown:
            raise ValueError(f"unknown authentications: {sorted(unknown)}")
        self.interface = interface
        self.host = host
        self._requested_port = port
        self.port = 0
        if interface == "hdlc":
            if serial_number is not None:
                self.server_address = GXDLMSClient.getServerAddressFromSerialNumber(
                    serial_number, server_logical)
                self.address_size = 4
            else:
                size = address_size or (1 if server_physical is None else
                                        2 if server_logical < 0x80 and server_physical < 0x80
                                        else 4)
                if size == 1:
                    self.server_address = server_logical
                elif size == 2:
                    self.server_address = server_logical << 7 | (server_physical or 0)
                else:
                    self.server_address = server_logical << 14 | (server_physical or 0)
                self.address_size = size
        else:
            self.server_address = (wrapper_server_address if wrapper_server_address is not None
                                   else server_logical)
            self.address_size = 2
        self.client_addresses = set(client_addresses) if client_addresses is not None else None
        self.authentications = set(authentications)
        self.password = bytes(password)
        self.hls_secret = bytes(hls_secret)
        self.system_title = bytes(system_title)
        self.block_cipher_key = bytes(block_cipher_key)
        self.authentication_key = bytes(authentication_key)
        self.max_info = max_info
        self.max_pdu = max_pdu
        self.registers = tuple(registers)
        self.data = tuple(data)
        self.clock_time = clock_time
        self.clock_writable = clock_writable
        self.profiles = tuple(profiles)
        self.idle_timeout = idle_timeout
        self.trace = trace
        self.fix_glo_requests = fix_glo_requests

        self.events: list[str] = []  # "connect", "associated", "released", "rejected", ...
        self.errors: list[str] = []  # tracebacks swallowed inside gurux's handleRequest
        self.frames: list[tuple[str, bytes]] = []  # ("rx"|"tx", frame) when trace=True
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._conns: dict[socket.socket, threading.Thread] = {}

    # -- lifecycle ------------------------------------------------------------------
    def start(self) -> GuruxMeter:
        if self.fix_glo_requests:
            _install_glo_request_fix()
        lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsock.bind((self.host, self._requested_port))
        lsock.listen(8)
        lsock.settimeout(0.1)
        self._listener = lsock
        self.port = lsock.getsockname()[1]
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name=f"gurux-meter-{self.port}", daemon=True)
        self._accept_thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept() on Linux
        if self._accept_thread is not None:
            self._accept_thread.join(timeout)
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.close()
            self._listener = None
        with self._lock:
            conns = list(self._conns.items())
        for sock, _ in conns:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for _, thread in conns:
            thread.join(timeout)
        leftovers = [t.name for _, t in conns if t.is_alive()]
        if self._accept_thread is not None and self._accept_thread.is_alive():
            leftovers.append(self._accept_thread.name)
        if leftovers:
            raise RuntimeError(f"gurux meter threads did not stop: {leftovers}")

    def __enter__(self) -> GuruxMeter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_idle(self, timeout: float = 2.0) -> None:
        """Wait until every accepted connection has been closed and accounted for."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._conns:
                    return
            time.sleep(0.005)
        raise TimeoutError("gurux meter connections still open")

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    # -- internals --------------------------------------------------------------------
    def _event(self, name: str) -> None:
        with self._lock:
            self.events.append(name)

    def _error(self, text: str) -> None:
        with self._lock:
            self.errors.append(text)

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                break
            conn.settimeout(0.1)
            t = threading.Thread(target=self._serve, args=(conn,),
                                 name=f"gurux-meter-{self.port}-conn", daemon=True)
            with self._lock:
                self._conns[conn] = t
            self._event("connect")
            t.start()

    def _serve(self, conn: socket.socket) -> None:
        buf = bytearray()
        last = time.monotonic()
        try:
            server = _GuruxServer(self)
            while not self._stop.is_set():
                try:
                    chunk = conn.recv(4096)
                except TimeoutError:
                    if time.monotonic() - last > self.idle_timeout:
                        self._event("idle-timeout")
                        break
                    continue
                except OSError:
                    break
                if not chunk:
                    break
                last = time.monotonic()
                buf += chunk
                for frame in _split_frames(buf, self.interface):
                    reply = self._handle(server, frame)
                    if reply:
                        conn.sendall(bytes(reply))
                    if server.abort:
                        break
                if server.abort:
                    self._event("abort")
                    break
        except Exception:  # pragma: no cover - recorded for the test to inspect
            self._error(traceback.format_exc())
        finally:
            with contextlib.suppress(OSError):
                conn.close()
            with self._lock:
                self.events.append("disconnect")
                self._conns.pop(conn, None)

    def _handle(self, server: _GuruxServer, frame: bytes) -> bytes | None:
        if self.trace:
            with self._lock:
                self.frames.append(("rx", frame))
        sr = _ServerReply(bytearray(frame))
        try:
            server.handleRequest(sr)
        except Exception:
            self._error(traceback.format_exc())
            return None
        reply = bytes(sr.reply) if sr.reply else None
        if reply and self.trace:
            with self._lock:
                self.frames.append(("tx", reply))
        return reply


# ---------------------------------------------------------------------------- CLI
def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Run a gurux_dlms based test meter.")
    p.add_argument("--interface", choices=("hdlc", "wrapper"), default="hdlc")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--server-logical", type=int, default=1)
    p.add_argument("--server-physical", type=int, default=17)
    p.add_argument("--address-size", type=int, choices=(1, 2, 4))
    p.add_argument("--serial-number", type=int)
    p.add_argument("--wrapper-server-address", type=int)
    p.add_argument("--password", default="12345678")
    p.add_argument("--hls-secret", default="0123456789ABCDEF")
    p.add_argument("--max-info", type=int, default=128)
    p.add_argument("--max-pdu", type=int, default=0xFFFF)
    a = p.parse_args(argv)
    meter = GuruxMeter(
        a.interface, port=a.port, server_logical=a.server_logical,
        server_physical=None if a.address_size == 1 else a.server_physical,
        address_size=a.address_size, serial_number=a.serial_number,
        wrapper_server_address=a.wrapper_server_address,
        password=a.password.encode(), hls_secret=a.hls_secret.encode(),
        max_info=a.max_info, max_pdu=a.max_pdu)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    with meter:
        print(f"PORT {meter.port}", flush=True)
        # gurux_dlms print()s diagnostics on stdout; nobody reads our stdout any more and
        # a full pipe would block the meter.
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        while not done.wait(0.2):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
