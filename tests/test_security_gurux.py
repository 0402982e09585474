"""Interop: dlmsd's security layer against gurux_dlms 1.0.203 (test-only, GPLv2).

gurux is an independent implementation: its AES is its own pure-Python code, its
GCM its own stream class, and its client assembles the HLS inputs itself.  Checked
both ways: gurux ciphers, dlmsd deciphers; dlmsd ciphers (as the meter), gurux's
client deciphers and parses; gurux computes f(StoC), dlmsd matches it; dlmsd computes
the meter's f(CtoS), gurux's client accepts it.

Seen while writing these: gurux 1.0.203 does not reject an SC=0x30 APDU whose GCM tag
was altered (its decrypt path for authenticated encryption does not compare the tag),
so gurux is used here to check what is produced, never to check that tampering is
detected (tests/test_security.py does that for dlmsd).
"""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from gurux_dlms import (
    GXByteBuffer,
    GXCiphering,
    GXDLMSClient,
    GXReplyData,
)
from gurux_dlms.AesGcmParameter import AesGcmParameter
from gurux_dlms.ConnectionState import ConnectionState
from gurux_dlms.ecdsa import GXEcdsa, GXPrivateKey, GXPublicKey
from gurux_dlms.enums import Authentication, InterfaceType, Security
from gurux_dlms.GXDLMSChippering import GXDLMSChippering
from gurux_dlms.GXSecure import GXSecure
from gurux_dlms.objects import GXDLMSData
from hypothesis import given, settings
from hypothesis import strategies as st

from dlmsd.errors import RemoteProtocolError
from dlmsd.protocol.acse import MechanismName
from dlmsd.protocol.axdr import Data, encode_data
from dlmsd.protocol.obis import Obis
from dlmsd.protocol.security import (
    GENERAL_GLO_CIPHERING,
    protect,
    unprotect,
)
from dlmsd.protocol.security_hls import (
    HlsKeys,
    client_reply,
    ecdsa_sign,
    ecdsa_verify,
    hls_gmac,
    hls_high,
    hls_md5,
    hls_sha1,
    hls_sha256,
    verify_server_reply,
)
from dlmsd.protocol.xdlms import (
    ActionRequestNormal,
    CosemAttributeDescriptor,
    GetRequestNormal,
    GetResponseNormal,
)
from dlmsd.secret import Secret

pytestmark = pytest.mark.interop

H = bytes.fromhex
EK = H("000102030405060708090A0B0C0D0E0F")
AK = H("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
ST_C = H("4D4D4D0000000001")
ST_S = H("4D4D4D0000BC614E")
SECURITY = {0x10: Security.AUTHENTICATION, 0x20: Security.ENCRYPTION,
            0x30: Security.AUTHENTICATION_ENCRYPTION}


def gurux_client(security: int = Security.NONE, authentication: int = Authentication.NONE,
                 password: bytes | None = None, counter: int = 1) -> Any:
    client = GXDLMSClient(True, 16, 1, authentication, password, InterfaceType.PDU)
    cipher = GXCiphering(ST_C)
    client.settings.cipher = cipher
    cipher.security = security
    cipher.blockCipherKey = EK
    cipher.authenticationKey = AK
    cipher.invocationCounter = counter
    client.settings.sourceSystemTitle = ST_S
    return client


# --------------------------------------------------------------------------- ciphering
@pytest.mark.parametrize("sc", [0x10, 0x20, 0x30])
def test_gurux_ciphers_a_get_request_dlmsd_deciphers(sc: int) -> None:
    client = gurux_client(SECURITY[sc], counter=0x01234567)
    client.settings.connected = ConnectionState.DLMS
    wire = bytes(client.read(GXDLMSData("0.0.96.1.0.255"), 2)[0])
    plain, header = unprotect(wire, system_title=ST_C, block_cipher_key=Secret(EK),
                              authentication_key=Secret(AK))
    assert plain == GetRequestNormal(
        CosemAttributeDescriptor(1, Obis(0, 0, 96, 1, 0, 255), 2)).to_bytes()
    assert header.invocation_counter == 0x01234567
    assert header.security_control.to_byte() == sc
    assert client.settings.cipher.invocationCounter == 0x01234568


@pytest.mark.parametrize("tag", [None, GENERAL_GLO_CIPHERING], ids=["glo", "general-glo"])
@pytest.mark.parametrize("sc", [0x10, 0x20, 0x30])
def test_dlmsd_ciphers_a_get_response_gurux_parses_it(sc: int, tag: int | None) -> None:
    client = gurux_client(SECURITY[sc])
    client.settings.connected = ConnectionState.DLMS
    client.read(GXDLMSData("0.0.96.1.0.255"), 2)  # gurux expects the answer to a request
    answer = GetResponseNormal(Data.uint32(123456)).to_bytes()
    wire = protect(answer, security_control=sc, system_title=ST_S, invocation_counter=77,
                   block_cipher_key=EK, authentication_key=AK, tag=tag)
    reply = GXReplyData()
    client.getData(GXByteBuffer(wire), reply)
    assert reply.isComplete()
    assert reply.value == 123456


def _gurux_encrypt(tag: int, sc: int, title: bytes, counter: int, plain: bytes,
                   key: bytes = EK) -> bytes:
    parameter = AesGcmParameter(tag, title, key, AK)
    parameter.security = SECURITY[sc]
    parameter.invocationCounter = counter
    return bytes(GXDLMSChippering.encryptAesGcm(parameter, plain))


@settings(max_examples=25, deadline=None)
@given(st.sampled_from([0x10, 0x20, 0x30]), st.integers(0, 0xFFFFFFFF),
       st.binary(max_size=200), st.sampled_from([0xC0, 0xC4, 0xC1, 0xC5, 0xC3, 0xC7]))
def test_same_bytes_as_gurux(sc: int, counter: int, body: bytes, plain_tag: int) -> None:
    plain = bytes((plain_tag,)) + body
    ours = protect(plain, security_control=sc, system_title=ST_C, invocation_counter=counter,
                   block_cipher_key=EK, authentication_key=AK)
    assert ours == _gurux_encrypt(plain_tag + 8, sc, ST_C, counter, plain)
    general = protect(plain, security_control=sc, system_title=ST_C,
                      invocation_counter=counter, block_cipher_key=EK, authentication_key=AK,
                      tag=GENERAL_GLO_CIPHERING)
    assert general == _gurux_encrypt(GENERAL_GLO_CIPHERING, sc, ST_C, counter, plain)
    dedicated = H("00112233445566778899AABBCCDDEEFF")
    ded = protect(plain, security_control=sc, system_title=ST_C, invocation_counter=counter,
                  dedicated_key=dedicated, authentication_key=AK, tag=plain_tag + 0x10)
    assert ded == _gurux_encrypt(plain_tag + 0x10, sc, ST_C, counter, plain, dedicated)
    # gurux deciphers ours.
    parameter = AesGcmParameter(0, ST_C, EK, AK)
    assert bytes(GXDLMSChippering.decryptAesGcm(None, parameter, GXByteBuffer(ours))) == plain


# --------------------------------------------------------------------------- HLS
def _gurux_f_stoc(mechanism: int, password: bytes | None, stoc: bytes, ctos: bytes,
                  counter: int = 1) -> bytes:
    client = gurux_client(authentication=mechanism, password=password, counter=counter)
    client.settings.ctoSChallenge = ctos
    client.settings.stoCChallenge = stoc
    client.settings.connected = ConnectionState.HDLC
    request = ActionRequestNormal.from_bytes(
        bytes(client.getApplicationAssociationRequest()[0]))
    assert request.descriptor.instance_id == Obis(0, 0, 40, 0, 0, 255)
    assert request.descriptor.method_id == 1 and request.parameters is not None
    return request.parameters.as_bytes()


def _keys(mechanism: MechanismName, password: bytes) -> HlsKeys:
    if mechanism is MechanismName.HIGH_GMAC:
        return HlsKeys(mechanism, system_title=ST_C, block_cipher_key=EK, authentication_key=AK)
    return HlsKeys(mechanism, secret=password, system_title=ST_C)


challenges = st.binary(min_size=8, max_size=64)
MECHANISMS = [MechanismName.HIGH, MechanismName.HIGH_MD5, MechanismName.HIGH_SHA1,
              MechanismName.HIGH_SHA256, MechanismName.HIGH_GMAC]


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(MECHANISMS), challenges, challenges,
       st.binary(min_size=1, max_size=32), st.integers(0, 0xFFFFFFFF))
def test_client_reply_matches_gurux(mechanism: MechanismName, stoc: bytes, ctos: bytes,
                                    password: bytes, counter: int) -> None:
    if mechanism is MechanismName.HIGH:
        password = (password * 16)[:16]
    gurux_password = None if mechanism is MechanismName.HIGH_GMAC else password
    expected = _gurux_f_stoc(int(mechanism), gurux_password, stoc, ctos, counter)
    ours = client_reply(_keys(mechanism, password), stoc=stoc, ctos=ctos,
                        server_system_title=ST_S, invocation_counter=counter)
    assert ours == expected


def _meter_f_ctos(mechanism: MechanismName, password: bytes, stoc: bytes, ctos: bytes) -> bytes:
    if mechanism is MechanismName.HIGH:
        return hls_high(password, ctos)
    if mechanism is MechanismName.HIGH_MD5:
        return hls_md5(password, ctos)
    if mechanism is MechanismName.HIGH_SHA1:
        return hls_sha1(password, ctos)
    if mechanism is MechanismName.HIGH_SHA256:
        return hls_sha256(password, own_system_title=ST_S, peer_system_title=ST_C,
                          received_challenge=ctos, own_challenge=stoc)
    return hls_gmac(ctos, system_title=ST_S, invocation_counter=0x0BADCAFE,
                    block_cipher_key=EK, authentication_key=AK)


@pytest.mark.parametrize("mechanism", MECHANISMS, ids=lambda m: m.label)
def test_gurux_client_accepts_dlmsd_meter_reply(mechanism: MechanismName) -> None:
    stoc, ctos = b"P6wRJ21F", bytes(range(20, 52))
    password = b"0123456789ABCDEF" if mechanism is MechanismName.HIGH else b"Gurux-secret"
    f_ctos = _meter_f_ctos(mechanism, password, stoc, ctos)
    # dlmsd's own client accepts it too.
    verify_server_reply(_keys(mechanism, password), f_ctos, stoc=stoc, ctos=ctos,
                        server_system_title=ST_S)

    def gurux_checks(reply: bytes) -> None:
        client = gurux_client(authentication=int(mechanism),
                              password=None if mechanism is MechanismName.HIGH_GMAC
                              else password)
        client.settings.ctoSChallenge = ctos
        client.settings.stoCChallenge = stoc
        client.parseApplicationAssociationResponse(
            GXByteBuffer(encode_data(Data.octets(reply))))
        assert client.settings.connected & ConnectionState.DLMS

    gurux_checks(f_ctos)
    tampered = bytearray(f_ctos)
    tampered[-1] ^= 0x80
    with pytest.raises(Exception, match="do not match"):
        gurux_checks(bytes(tampered))
    with pytest.raises(RemoteProtocolError):
        verify_server_reply(_keys(mechanism, password), bytes(tampered), stoc=stoc, ctos=ctos,
                            server_system_title=ST_S)


@pytest.mark.parametrize("size", range(8, 65))
def test_high_matches_gurux_for_every_challenge_length(size: int) -> None:
    client = gurux_client(authentication=Authentication.HIGH)
    challenge = bytes((i * 37 + size) & 0xFF for i in range(size))
    secret = b"0123456789ABCDEF"
    gurux = bytes(GXSecure.secure(client.settings, client.settings.cipher, 0, challenge, secret))
    assert hls_high(secret, challenge) == gurux


def test_ecdsa_p256_against_gurux() -> None:
    private = ec.derive_private_key(0x1F2E3D4C5B6A79880123456789ABCDEF, ec.SECP256R1())
    raw_private = private.private_numbers().private_value.to_bytes(32, "big")
    raw_public = private.public_key().public_bytes(serialization.Encoding.X962,
                                                   serialization.PublicFormat.UncompressedPoint)
    gurux_private = GXPrivateKey.fromRawBytes(raw_private)
    assert bytes(gurux_private.getPublicKey().rawValue) == raw_public
    stoc, ctos = b"P6wRJ21F", b"K56iVagY"
    data = ST_C + ST_S + stoc + ctos  # what gurux's client signs for mechanism 7
    ours = ecdsa_sign(private, own_system_title=ST_C, peer_system_title=ST_S,
                      received_challenge=stoc, own_challenge=ctos)
    assert GXEcdsa(GXPublicKey.fromRawBytes(raw_public)).verify(ours, data)
    theirs = bytes(GXEcdsa(gurux_private).sign(data))
    assert ecdsa_verify(private.public_key(), theirs, signer_system_title=ST_C,
                        other_system_title=ST_S, challenge_to_signer=stoc,
                        signer_challenge=ctos)


@pytest.mark.parametrize("secret", [b"G", b"Gurux", b"secret", b"15 bytes secret"],
                         ids=lambda s: f"{len(s)} bytes")
@pytest.mark.parametrize("size", [8, 16, 17, 32, 64])
def test_high_short_secret_padded_as_gurux_pads_it(secret: bytes, size: int) -> None:
    """A secret shorter than 16 octets: gurux zero-pads it (GXSecure.secure); so do we."""
    client = gurux_client(authentication=Authentication.HIGH)
    challenge = bytes((i * 53 + size) & 0xFF for i in range(size))
    gurux = bytes(GXSecure.secure(client.settings, client.settings.cipher, 0, challenge, secret))
    assert hls_high(secret, challenge) == gurux
    keys = HlsKeys(MechanismName.HIGH, secret=Secret(secret))
    assert client_reply(keys, stoc=challenge, ctos=b"P6wRJ21F") == gurux
