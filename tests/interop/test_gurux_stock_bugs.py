"""Executable minimal reproductions of the gurux_dlms 1.0.203 defects listed in NOTES.md.

Each test asserts that the *stock* library still misbehaves.  gurux_meter.py /
gurux_client.py work around every one of them; if one of these tests starts failing
after a gurux_dlms upgrade, the matching workaround (tagged with the same S/C number in
the harness) may have become unnecessary -- or wrong.  All in memory, no sockets.
"""

from __future__ import annotations

from typing import Any

import pytest
from gurux_dlms import (
    GXDLMS,
    GXByteBuffer,
    GXDLMSClient,
    GXDLMSLongTransaction,
    GXDLMSSettings,
    GXReplyData,
    GXServerReply,
)
from gurux_dlms._GXAPDU import _GXAPDU
from gurux_dlms.enums import (
    Authentication,
    Command,
    DataType,
    ErrorCode,
    InterfaceType,
    Security,
    SourceDiagnostic,
)
from gurux_dlms.enums.AccessMode import AccessMode
from gurux_dlms.enums.MethodAccessMode import MethodAccessMode
from gurux_dlms.GXCiphering import GXCiphering
from gurux_dlms.GXDLMSLNCommandHandler import GXDLMSLNCommandHandler
from gurux_dlms.objects import (
    GXDLMSAssociationLogicalName,
    GXDLMSHdlcSetup,
    GXDLMSRegister,
    GXDLMSTcpUdpSetup,
)
from gurux_dlms.secure import GXDLMSSecureClient, GXDLMSSecureServer
from gurux_dlms.ValueEventArgs import ValueEventArgs

from .gurux_meter import _ORIGINAL_HANDLE_GLO_DED_REQUEST, GuruxMeter, _GuruxServer, _ServerReply

pytestmark = pytest.mark.interop


class StockServer(GXDLMSSecureServer):
    """Nothing but the abstract callbacks every GXDLMSServer subclass must provide."""

    def isTarget(self, serverAddress: Any, clientAddress: Any) -> Any:  # noqa: N802,N803
        return True

    def onValidateAuthentication(self, a: Any, p: Any) -> Any:  # noqa: N802
        return SourceDiagnostic.NONE

    def onGetAttributeAccess(self, a: Any) -> Any:  # noqa: N802
        return AccessMode.READ

    def onGetMethodAccess(self, a: Any) -> Any:  # noqa: N802
        return MethodAccessMode.ACCESS

    def onFindObject(self, t: Any, sn: Any, ln: Any) -> Any:  # noqa: N802
        return None

    def onPreGet(self, a: Any) -> None:  # noqa: N802
        pass

    def onPostGet(self, a: Any) -> None:  # noqa: N802
        pass

    def onPreRead(self, a: Any) -> None:  # noqa: N802
        pass

    def onPostRead(self, a: Any) -> None:  # noqa: N802
        pass

    def onPreWrite(self, a: Any) -> None:  # noqa: N802
        pass

    def onPostWrite(self, a: Any) -> None:  # noqa: N802
        pass

    def onPreAction(self, a: Any) -> None:  # noqa: N802
        pass

    def onPostAction(self, a: Any) -> None:  # noqa: N802
        pass

    def onConnected(self, c: Any) -> None:  # noqa: N802
        pass

    def onInvalidConnection(self, c: Any) -> None:  # noqa: N802
        pass

    def onDisconnected(self, c: Any) -> None:  # noqa: N802
        pass


def stock_server(interface: InterfaceType = InterfaceType.WRAPPER) -> StockServer:
    srv = StockServer(True, interface)
    reg = GXDLMSRegister("1.0.1.8.0.255")
    reg.value = 1
    srv.items.append(reg)
    assoc = GXDLMSAssociationLogicalName()
    srv.items.append(assoc)
    assoc.objectList.extend(srv.items)  # S1 workaround, to get past initialize()
    srv.initialize()
    return srv


def pdu_of(wrapper_frame: bytes | bytearray) -> GXByteBuffer:
    return GXByteBuffer(bytearray(wrapper_frame)[8:])


def test_s1_initialize_without_populated_association() -> None:
    srv = StockServer(True, InterfaceType.WRAPPER)
    srv.items.append(GXDLMSRegister("1.0.1.8.0.255"))
    with pytest.raises(TypeError, match="not of type GXDLMSObject"):
        srv.initialize()  # objectList.append(self.items)


def test_s2_server_reply_lacks_set_reply() -> None:
    srv = stock_server()
    client = GXDLMSClient(True, 16, 1, Authentication.NONE, None, InterfaceType.WRAPPER)
    with pytest.raises(AttributeError, match="setReply"):
        srv.handleRequest(GXServerReply(client.aarqRequest()[0]))


def test_s3_snrm_handling_crashes() -> None:
    srv = stock_server(InterfaceType.HDLC)
    with pytest.raises(AttributeError, match="maxInfoTX"):
        srv.handleSnrmRequest(GXByteBuffer())  # self.hdlc is None
    srv.hdlc = GXDLMSHdlcSetup()
    with pytest.raises(AttributeError, match="update"):
        srv.handleSnrmRequest(GXByteBuffer())  # GXHdlcSettings has _update(), not update()


def test_s4_disc_handling_crashes() -> None:
    srv = stock_server(InterfaceType.HDLC)
    with pytest.raises(AttributeError, match="maxInfoTX"):
        srv.generateDisconnectRequest()


def test_s5_get_calls_undefined_server_methods() -> None:
    srv = stock_server()
    srv.settings.connected = 2  # ConnectionState.DLMS
    client = GXDLMSClient(True, 16, 1, Authentication.NONE, None, InterfaceType.WRAPPER)
    get = pdu_of(client._read("1.0.1.8.0.255", 3, 2)[0])
    get.position = 1  # past the C0 tag, as handleCommand() passes it
    with pytest.raises(AttributeError, match="notifyRead"):
        GXDLMSLNCommandHandler.handleGetRequest(srv.settings, srv, get, GXByteBuffer(), None)


def test_s6_s7_block_transfer_uses_undefined_names() -> None:
    settings = GXDLMSSettings(True, None)
    assert not hasattr(settings, "gbtWndowSize")  # read by getRequestNextDataBlock()
    assert not hasattr(settings, "getMaxPduSize")
    assert not hasattr(settings, "setConnected")  # called after reply_to_HLS (S9)
    assert not hasattr(GXDLMSLongTransaction(None, 0, None), "setData")


def test_s8_object_list_reads_undefined_attribute() -> None:
    settings = GXDLMSSettings(True, None)
    assoc = GXDLMSAssociationLogicalName()
    assoc.objectList.append(GXDLMSRegister("1.0.1.8.0.255"))
    with pytest.raises(AttributeError, match="isSkipMaxPduSize"):
        assoc.getObjects(settings, ValueEventArgs(settings, assoc, 2))


def test_s9_action_and_hls_paths() -> None:
    settings = GXDLMSSettings(True, None)
    assoc = GXDLMSAssociationLogicalName()
    e = ValueEventArgs(settings, assoc, 1)
    with pytest.raises(TypeError):
        list(e)  # handleMethodRequest(): server.onPreAction(list(e))
    assert not hasattr(assoc, "getAssociationStatus")
    settings.authentication = Authentication.HIGH_MD5
    settings.stoCChallenge = bytearray(16)
    assoc.secret = b"secret"
    e.parameters = bytearray(b"\x01" * 16)
    with pytest.raises((TypeError, ValueError)):
        assoc.invoke(settings, e)  # int(e.parameters) on the octet-string


def test_s10_secure_server_cipher_is_none() -> None:
    srv = StockServer(True, InterfaceType.WRAPPER)
    assert srv.settings.cipher is None
    assert isinstance(srv.settings.ciphering, GXCiphering)


def test_s11_positive_register_scaler_off_by_one() -> None:
    settings = GXDLMSSettings(True, None)
    reg = GXDLMSRegister("1.0.1.8.0.255")
    reg.scaler = 1000  # 10**3
    encoded = reg.getValue(settings, ValueEventArgs(settings, reg, 3))
    assert bytes(encoded)[:4] == bytes([DataType.STRUCTURE, 2, DataType.INT8, 2])  # not 3


def test_s12_value_event_args_server_is_never_set() -> None:
    settings = GXDLMSSettings(True, None)
    assert ValueEventArgs(settings, GXDLMSRegister(), 2).server is None


def test_s13_report_error_crashes_during_a_long_get() -> None:
    srv = stock_server()
    srv.settings.count, srv.settings.index = 5, 1  # a multi-block GET was in progress
    with pytest.raises(AttributeError, match="position"):
        srv.reportError(Command.GET_REQUEST, ErrorCode.HARDWARE_FAULT)


def test_s14_aare_with_responding_ap_title_crashes() -> None:
    settings = GXDLMSSettings(True, None)
    settings.authentication = Authentication.HIGH_GMAC
    settings.stoCChallenge = bytearray(16)
    with pytest.raises(TypeError, match="setUInt8"):
        _GXAPDU.generateAARE(settings, GXByteBuffer(), 0, SourceDiagnostic.NONE,
                             GXCiphering(bytearray(b"GRX12345")), None, None)


def test_s15_glo_request_decryption_arguments_shifted() -> None:
    client = GXDLMSSecureClient(True, 16, 1, Authentication.NONE, None, InterfaceType.WRAPPER)
    client.ciphering.security = Security.AUTHENTICATION_ENCRYPTION
    glo_get = pdu_of(client._read("1.0.1.8.0.255", 3, 2)[0])
    assert glo_get[0] == Command.GLO_GET_REQUEST
    settings = GXDLMSSettings(True, None)
    settings.cipher = GXCiphering(bytearray(b"GRX12345"))
    settings.sourceSystemTitle = client.ciphering.systemTitle
    reply = GXReplyData()
    reply.data = glo_get
    reply.data.position = 1
    with pytest.raises(TypeError):
        _ORIGINAL_HANDLE_GLO_DED_REQUEST.__func__(GXDLMS, settings, reply)


def test_s18_server_max_pdu_size_is_not_applied() -> None:
    srv = stock_server()
    srv.settings.maxServerPDUSize = 128
    client = GXDLMSClient(True, 16, 1, Authentication.NONE, None, InterfaceType.WRAPPER)
    aarq = pdu_of(client.aarqRequest()[0])  # proposes 0xFFFF
    _GXAPDU.parsePDU(srv.settings, srv.settings.cipher, aarq, None)
    assert srv.settings.maxPduSize == 0xFFFF
    assert srv.settings.setMaxPduSize == 128  # the intended clamp, as a stray attribute


def _associated_patched_server(meter: GuruxMeter) -> tuple[_GuruxServer, GXDLMSClient]:
    srv = _GuruxServer(meter)
    client = GXDLMSClient(True, 16, 1, Authentication.NONE, None, InterfaceType.WRAPPER)
    sr = _ServerReply(bytearray(client.aarqRequest()[0]))
    srv.handleRequest(sr)
    reply = GXReplyData()
    client.getData(bytearray(sr.reply), reply)
    client.parseAareResponse(reply.data)
    return srv, client


def test_s16_inactivity_timeout_check_crashes() -> None:
    srv, client = _associated_patched_server(GuruxMeter("wrapper"))
    srv.wrapper = GXDLMSTcpUdpSetup()  # inactivityTimeout 180 -> int(timedelta)
    sr = _ServerReply(bytearray(client._read("1.0.1.8.0.255", 3, 2)[0]))
    srv.handleRequest(sr)
    assert bytes(sr.reply)[8:] == bytes.fromhex("c401c10101")  # hardware-fault
    assert "timedelta" in srv.errors[-1]


def test_s17_second_frame_in_one_chunk_is_dropped() -> None:
    srv, client = _associated_patched_server(GuruxMeter("wrapper"))
    two = (bytes(client._read("1.0.1.8.0.255", 3, 2)[0])
           + bytes(client._read("1.0.32.7.0.255", 3, 2)[0]))
    sr = _ServerReply(bytearray(two))
    srv.handleRequest(sr)
    assert sr.reply  # first GET answered ...
    assert srv.receivedData.size == 0  # ... second one thrown away
    sr = _ServerReply(bytearray())
    srv.handleRequest(sr)
    assert sr.reply == []


def test_c1_plain_client_cannot_do_hls() -> None:
    client = GXDLMSClient(True, 16, 1, Authentication.HIGH_MD5, b"secret",
                          InterfaceType.WRAPPER)
    client.settings.stoCChallenge = bytearray(16)
    with pytest.raises(AttributeError, match="invocationCounter"):
        client.getApplicationAssociationRequest()  # settings.cipher is None


def test_c2_secure_client_defaults_to_short_names() -> None:
    assert GXDLMSSecureClient().useLogicalNameReferencing is False
    assert GXDLMSClient().useLogicalNameReferencing is True


def _stock_profile() -> tuple[Any, Any]:
    import datetime as dt

    from gurux_dlms import GXDateTime
    from gurux_dlms.objects import GXDLMSClock, GXDLMSProfileGeneric

    settings = GXDLMSSettings(True, None)
    profile = GXDLMSProfileGeneric("1.0.99.1.0.255")
    profile.addCaptureObject(GXDLMSClock("0.0.1.0.0.255"), 2, 0)
    profile.addCaptureObject(GXDLMSRegister("1.0.1.8.0.255"), 2, 0)
    start = dt.datetime(2024, 5, 6, tzinfo=dt.UTC)
    profile.buffer = [[GXDateTime(start + dt.timedelta(minutes=15 * n)), 100 + n]
                      for n in range(8)]
    return settings, profile


def test_s20_selective_access_calls_a_missing_method() -> None:
    settings, profile = _stock_profile()
    e = ValueEventArgs(settings, profile, 2, 2, [3, 4, 1, 0])
    with pytest.raises(AttributeError, match="getRowEndIndex"):
        profile.getValue(settings, e)


def test_s21_range_compares_the_start_date_with_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    settings, profile = _stock_profile()
    monkeypatch.setattr(ValueEventArgs, "getRowEndIndex", lambda self: self.rowEndIndex,
                        raising=False)  # past S20
    date = bytearray.fromhex("07e80506ff000000000000ff")
    e = ValueEventArgs(settings, profile, 2, 1, [
        [8, bytearray.fromhex("0000010000ff"), 2, 0], date, date, []])
    with pytest.raises(TypeError, match="'>=' not supported"):
        profile.getValue(settings, e)


def test_s22_entry_takes_to_entry_for_a_count_and_drops_the_values(
        monkeypatch: pytest.MonkeyPatch) -> None:
    settings, profile = _stock_profile()
    monkeypatch.setattr(ValueEventArgs, "getRowEndIndex", lambda self: self.rowEndIndex,
                        raising=False)  # past S20
    # entries 3..4, all columns: Blue Book says 2 entries of 2 values
    e = ValueEventArgs(settings, profile, 2, 2, [3, 4, 1, 0])
    answer = bytes(profile.getValue(settings, e))
    # 4 entries (to_entry read as a count), each a structure of 1 with no value at all
    assert answer == bytes.fromhex("01 04 0201 0201 0201 0201")
