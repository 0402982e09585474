"""The simulator's authentication (dlmsd.sim.auth behind MeterServer), pure: the
daemon's own LnClient/SnClient associate with every mechanism; wrong credentials, calls
before pass 4, ciphering policy and replays are refused as the server module says.

The f() values the server checks and returns are computed in this file from hashlib
and cryptography directly (Green Book 9.2.7.4 definitions, the same table as
dlmsd/protocol/security_hls.py), not only by dlmsd's code; gurux_dlms's client reading
the simulator with each mechanism is tests/test_sim_auth_gurux.py.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from dlmsd.errors import AssociationRejected, LocalProtocolError, RemoteProtocolError
from dlmsd.protocol.acse import (
    Aare,
    Aarq,
    AcseServiceUser,
    ApplicationContextName,
    AssociationResult,
    MechanismName,
)
from dlmsd.protocol.apdu import decode_apdu
from dlmsd.protocol.axdr import Data
from dlmsd.protocol.client import (
    Associated,
    Authenticate,
    Ciphering,
    ClientState,
    GetComplete,
    LnClient,
)
from dlmsd.protocol.obis import Obis
from dlmsd.protocol.security import SecurityControl, protect
from dlmsd.protocol.security_hls import HlsKeys
from dlmsd.protocol.sn import (
    ParameterizedAccess,
    ReadRequest,
    ReadResponse,
    VariableName,
    WriteRequest,
    WriteResponse,
)
from dlmsd.protocol.sn_client import SnClient
from dlmsd.protocol.xdlms import (
    ActionRequestNormal,
    ActionResponseNormal,
    ActionResult,
    CosemAttributeDescriptor,
    CosemMethodDescriptor,
    DataAccessResult,
    ExceptionResponse,
    ExceptionServiceError,
    GetRequestNormal,
    InitiateRequest,
)
from dlmsd.secret import Secret
from dlmsd.sim.auth import (
    DEFAULT_AUTHENTICATION_KEY,
    DEFAULT_BLOCK_CIPHER_KEY,
    DEFAULT_SYSTEM_TITLE,
    CipherError,
    MeterAuthentication,
    SimSecurity,
)
from dlmsd.sim.model import Meter, bundled_model_path, load_model
from dlmsd.sim.server import AssociationState, MeterServer, Referencing, ServerOptions

NOW = datetime(2024, 6, 1, 10, 0, tzinfo=UTC)
STOC = bytes(range(0x40, 0x50))  # the meter's "random" challenge, fixed here
CTOS = bytes(range(0x10, 0x20))
SECRET = b"0123456789ABCDEF"  # 16 octets: also an AES-128 key for mechanism 2
CLIENT_TITLE = bytes.fromhex("4D4D4D0000000001")
ENERGY = CosemAttributeDescriptor(3, Obis.parse("1.0.1.8.0.255"), 2)
MODEL = load_model(bundled_model_path())
HLS_METHOD = CosemMethodDescriptor(15, Obis.parse("0.0.40.0.0.255"), 1)


def server_with(mechanism: MechanismName, *, secret: bytes | None = SECRET,
                security: str = "both", referencing: Referencing = Referencing.LN,
                counter_start: int = 100) -> MeterServer:
    counter = itertools.count(counter_start)
    sim = SimSecurity(mechanism, Secret(secret) if secret is not None else None,
                      security=security, random=lambda n: STOC[:n],
                      next_counter=lambda: next(counter))
    return MeterServer(Meter(MODEL), ServerOptions(referencing=referencing, security=sim))


def aarq(mechanism: MechanismName | None, value: bytes | None, *,
         title: bytes | None = None,
         context: ApplicationContextName = (
             ApplicationContextName.LOGICAL_NAME_REFERENCING_NO_CIPHERING),
         user_information: InitiateRequest | bytes | None = None) -> bytes:
    return Aarq(application_context_name=context,
                user_information=user_information or InitiateRequest(),
                mechanism_name=mechanism, calling_authentication_value=value,
                calling_ap_title=title).to_bytes()


# ------------------------------------------------------------------ independent f()
def aes_ecb(key: bytes, data: bytes) -> bytes:
    padded = data + bytes(-len(data) % 16)
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return enc.update(padded) + enc.finalize()


F: dict[MechanismName, Callable[[bytes], bytes]] = {
    MechanismName.HIGH: lambda challenge: aes_ecb(SECRET, challenge),
    MechanismName.HIGH_MD5: lambda challenge: hashlib.md5(challenge + SECRET).digest(),
    MechanismName.HIGH_SHA1: lambda challenge: hashlib.sha1(challenge + SECRET).digest(),
}


def sha256_client(stoc: bytes, ctos: bytes) -> bytes:
    return hashlib.sha256(SECRET + CLIENT_TITLE + DEFAULT_SYSTEM_TITLE + stoc + ctos).digest()


def sha256_server(stoc: bytes, ctos: bytes) -> bytes:
    return hashlib.sha256(SECRET + DEFAULT_SYSTEM_TITLE + CLIENT_TITLE + ctos + stoc).digest()


# ------------------------------------------------------------------ Low
def test_low_accepts_the_password_only() -> None:
    server = server_with(MechanismName.LOW)
    good = Aare.from_bytes(server.handle(aarq(MechanismName.LOW, SECRET), NOW))
    assert good.result is AssociationResult.ACCEPTED
    assert server.state is AssociationState.ASSOCIATED
    server.reset()
    bad = Aare.from_bytes(server.handle(aarq(MechanismName.LOW, b"wrong"), NOW))
    assert bad.result is AssociationResult.REJECTED_PERMANENT
    assert bad.diagnostic is AcseServiceUser.AUTHENTICATION_FAILURE
    assert server.state is AssociationState.NON_ASSOCIATED
    none = Aare.from_bytes(server.handle(aarq(None, None), NOW))
    assert none.diagnostic is AcseServiceUser.AUTHENTICATION_MECHANISM_NAME_REQUIRED
    other = Aare.from_bytes(server.handle(aarq(MechanismName.HIGH_MD5, CTOS), NOW))
    assert other.diagnostic is AcseServiceUser.AUTHENTICATION_MECHANISM_NAME_NOT_RECOGNISED


def test_no_authentication_refuses_a_password() -> None:
    server = MeterServer(Meter(MODEL))
    aare = Aare.from_bytes(server.handle(aarq(MechanismName.LOW, b"x"), NOW))
    assert aare.diagnostic is AcseServiceUser.AUTHENTICATION_MECHANISM_NAME_NOT_RECOGNISED


# ------------------------------------------------------------------ HLS, by hand
@pytest.mark.parametrize("mechanism", [MechanismName.HIGH, MechanismName.HIGH_MD5,
                                       MechanismName.HIGH_SHA1])
def test_hls_four_passes_against_independent_functions(mechanism: MechanismName) -> None:
    server = server_with(mechanism)
    aare = Aare.from_bytes(server.handle(aarq(mechanism, CTOS), NOW))
    assert aare.result is AssociationResult.ACCEPTED
    assert aare.diagnostic is AcseServiceUser.AUTHENTICATION_REQUIRED
    assert aare.responding_authentication_value == STOC
    assert server.state is AssociationState.PENDING
    # before pass 3: no GET, no other method
    refused = decode_apdu(server.handle(GetRequestNormal(ENERGY).to_bytes(), NOW))
    assert isinstance(refused, ExceptionResponse)
    other = ActionRequestNormal(CosemMethodDescriptor(15, Obis.parse("0.0.40.0.0.255"), 2),
                                Data.octets(b"x"))
    answer = decode_apdu(server.handle(other.to_bytes(), NOW))
    assert isinstance(answer, ActionResponseNormal)
    assert answer.result is ActionResult.READ_WRITE_DENIED
    # a wrong f(StoC): other-reason, still pending
    wrong = ActionRequestNormal(HLS_METHOD, Data.octets(F[mechanism](CTOS)))
    answer = decode_apdu(server.handle(wrong.to_bytes(), NOW))
    assert isinstance(answer, ActionResponseNormal)
    assert answer.result is ActionResult.OTHER_REASON
    assert server.state is AssociationState.PENDING
    # the right one: f(CtoS) back, associated
    right = ActionRequestNormal(HLS_METHOD, Data.octets(F[mechanism](STOC)))
    answer = decode_apdu(server.handle(right.to_bytes(), NOW))
    assert isinstance(answer, ActionResponseNormal)
    assert answer.result is ActionResult.SUCCESS
    assert answer.return_parameters == Data.octets(F[mechanism](CTOS))
    assert server.state is AssociationState.ASSOCIATED
    assert decode_apdu(server.handle(GetRequestNormal(ENERGY).to_bytes(), NOW)).describe(
        ).startswith("GET.res normal")


def test_hls_sha256_binds_both_system_titles() -> None:
    server = server_with(MechanismName.HIGH_SHA256)
    aare = Aare.from_bytes(server.handle(aarq(MechanismName.HIGH_SHA256, CTOS,
                                              title=CLIENT_TITLE), NOW))
    assert aare.responding_ap_title == DEFAULT_SYSTEM_TITLE
    reply = ActionRequestNormal(HLS_METHOD, Data.octets(sha256_client(STOC, CTOS)))
    answer = decode_apdu(server.handle(reply.to_bytes(), NOW))
    assert isinstance(answer, ActionResponseNormal)
    assert answer.return_parameters == Data.octets(sha256_server(STOC, CTOS))


def test_hls_sha256_without_client_title_is_refused() -> None:
    server = server_with(MechanismName.HIGH_SHA256)
    aare = Aare.from_bytes(server.handle(aarq(MechanismName.HIGH_SHA256, CTOS), NOW))
    assert aare.diagnostic is AcseServiceUser.AUTHENTICATION_FAILURE


@pytest.mark.parametrize("ctos", [b"", b"1234567", bytes(65)])
def test_challenge_out_of_bounds_is_refused(ctos: bytes) -> None:
    server = server_with(MechanismName.HIGH_MD5)
    aare = Aare.from_bytes(server.handle(aarq(MechanismName.HIGH_MD5, ctos), NOW))
    assert aare.diagnostic is AcseServiceUser.AUTHENTICATION_FAILURE


def test_sn_hls_by_read_parameterized_access_and_by_write() -> None:
    context = ApplicationContextName.SHORT_NAME_REFERENCING_NO_CIPHERING
    method = 0xFA58  # Association SN at 0xFA00, method 8 (Blue Book: x + 0x20 + 7 * 8)
    for via_read in (True, False):
        server = server_with(MechanismName.HIGH_MD5, referencing=Referencing.SN)
        initiate = InitiateRequest(proposed_conformance=SnClient().proposed_conformance)
        server.handle(aarq(MechanismName.HIGH_MD5, CTOS, context=context,
                           user_information=initiate), NOW)
        assert server.state is AssociationState.PENDING
        f_stoc = Data.octets(F[MechanismName.HIGH_MD5](STOC))
        if via_read:
            request = ReadRequest((ParameterizedAccess(method, 0, f_stoc),)).to_bytes()
            response = ReadResponse.from_bytes(server.handle(request, NOW))
            assert response.results == (Data.octets(F[MechanismName.HIGH_MD5](CTOS)),)
        else:
            request = WriteRequest((VariableName(method),), (f_stoc,)).to_bytes()
            written = WriteResponse.from_bytes(server.handle(request, NOW))
            assert written.results == (DataAccessResult.SUCCESS,)
        assert server.state is AssociationState.ASSOCIATED


# ------------------------------------------------------------------ the daemon's client
@pytest.mark.parametrize("mechanism", [MechanismName.HIGH, MechanismName.HIGH_MD5,
                                       MechanismName.HIGH_SHA1, MechanismName.HIGH_SHA256])
def test_lnclient_associates_and_reads(mechanism: MechanismName) -> None:
    server = server_with(mechanism)
    client = LnClient(hls=HlsKeys(mechanism, secret=SECRET, system_title=CLIENT_TITLE))
    event = client.receive_apdu(server.handle(client.associate(CTOS), NOW))
    assert isinstance(event, Authenticate)
    assert isinstance(client.receive_apdu(server.handle(event.apdu, NOW)), Associated)
    result = client.receive_apdu(server.handle(client.get([ENERGY]), NOW))
    assert isinstance(result, GetComplete) and result.results == (Data.uint32(123456),)


def gmac_client(security: int = 0x30, *, title: bytes = CLIENT_TITLE,
                key: bytes = DEFAULT_BLOCK_CIPHER_KEY) -> tuple[LnClient, list[int]]:
    counters = itertools.count(1)
    received: list[int] = []
    ciphering = Ciphering(SecurityControl.of(security), title, key,
                          DEFAULT_AUTHENTICATION_KEY, lambda: next(counters),
                          lambda counter, **_: received.append(counter))
    hls = HlsKeys(MechanismName.HIGH_GMAC, system_title=title, block_cipher_key=key,
                  authentication_key=DEFAULT_AUTHENTICATION_KEY)
    return LnClient(hls=hls, ciphering=ciphering), received


@pytest.mark.parametrize(("policy", "sc"), [("authentication", 0x10), ("encryption", 0x20),
                                            ("both", 0x30)])
def test_gmac_with_every_security_policy(policy: str, sc: int) -> None:
    server = server_with(MechanismName.HIGH_GMAC, secret=None, security=policy)
    client, received = gmac_client(sc)
    request = client.associate(CTOS)
    aare_bytes = server.handle(request, NOW)
    aare = Aare.from_bytes(aare_bytes)
    assert aare.application_context_name is (
        ApplicationContextName.LOGICAL_NAME_REFERENCING_WITH_CIPHERING)
    assert isinstance(aare.user_information, bytes)
    assert aare.user_information[0] == 0x28  # glo-initiate-response
    event = client.receive_apdu(aare_bytes)
    assert isinstance(event, Authenticate)
    assert isinstance(client.receive_apdu(server.handle(event.apdu, NOW)), Associated)
    response = server.handle(client.get([ENERGY]), NOW)
    assert response[0] == 0xCC and response[2] == sc  # glo-get-response, the policy's SC
    result = client.receive_apdu(response)
    assert isinstance(result, GetComplete) and result.results == (Data.uint32(123456),)
    assert received == sorted(received) and len(set(received)) == len(received)


def test_gmac_wrong_key_is_refused_in_the_aarq() -> None:
    server = server_with(MechanismName.HIGH_GMAC, secret=None)
    client, _ = gmac_client(key=bytes(16))
    aare = Aare.from_bytes(server.handle(client.associate(CTOS), NOW))
    assert aare.result is AssociationResult.REJECTED_PERMANENT
    assert aare.diagnostic is AcseServiceUser.AUTHENTICATION_FAILURE


def test_gmac_replayed_and_unciphered_requests_are_refused() -> None:
    server = server_with(MechanismName.HIGH_GMAC, secret=None)
    client, _ = gmac_client()
    event = client.receive_apdu(server.handle(client.associate(CTOS), NOW))
    assert isinstance(event, Authenticate)
    client.receive_apdu(server.handle(event.apdu, NOW))
    get = client.get([ENERGY])
    client.receive_apdu(server.handle(get, NOW))
    replay = ExceptionResponse.from_bytes(server.handle(get, NOW))
    assert replay.service_error is ExceptionServiceError.INVOCATION_COUNTER_ERROR
    assert replay.invocation_counter is not None
    plain = ExceptionResponse.from_bytes(server.handle(GetRequestNormal(ENERGY).to_bytes(),
                                                       NOW))
    assert plain.service_error is ExceptionServiceError.DECIPHERING_ERROR
    # authenticated only where the meter requires encryption too: refused
    weak = protect(GetRequestNormal(ENERGY).to_bytes(), security_control=0x10,
                   system_title=CLIENT_TITLE, invocation_counter=10_000,
                   block_cipher_key=DEFAULT_BLOCK_CIPHER_KEY,
                   authentication_key=DEFAULT_AUTHENTICATION_KEY)
    refused = ExceptionResponse.from_bytes(server.handle(weak, NOW))
    assert refused.service_error is ExceptionServiceError.DECIPHERING_ERROR


def test_a_request_that_does_not_verify_is_a_cipher_error_with_its_cause() -> None:
    meter = MeterAuthentication(SimSecurity(MechanismName.HIGH_GMAC))
    meter.client_title = CLIENT_TITLE
    wrong_key = bytes(16)
    request = protect(GetRequestNormal(ENERGY).to_bytes(), security_control=0x30,
                      system_title=CLIENT_TITLE, invocation_counter=1,
                      block_cipher_key=wrong_key, authentication_key=wrong_key)
    with pytest.raises(CipherError) as info:
        meter.unprotect(request)
    error = info.value
    assert isinstance(error, RemoteProtocolError)  # the client sent it
    assert (error.service_error, error.code) == (5, 5)
    assert isinstance(error.__cause__, RemoteProtocolError)  # why, kept
    for key in (wrong_key, DEFAULT_BLOCK_CIPHER_KEY, DEFAULT_AUTHENTICATION_KEY):
        for text in (str(error), str(error.__cause__)):
            assert key.hex() not in text.lower()


def test_association_object_shows_the_mechanism() -> None:
    server = server_with(MechanismName.HIGH_GMAC, secret=None)
    client, _ = gmac_client()
    event = client.receive_apdu(server.handle(client.associate(CTOS), NOW))
    assert isinstance(event, Authenticate)
    client.receive_apdu(server.handle(event.apdu, NOW))
    names = [CosemAttributeDescriptor(15, Obis.parse("0.0.40.0.0.255"), n) for n in (4, 6)]
    result = client.receive_apdu(server.handle(client.get(names), NOW))
    assert isinstance(result, GetComplete)
    context, mechanism = result.results
    assert isinstance(context, Data) and isinstance(mechanism, Data)
    assert [d.value for d in context.value][-1] == 3  # LN with ciphering
    assert [d.value for d in mechanism.value][-1] == 5  # high-gmac


def test_repr_shows_no_secret() -> None:
    sim = SimSecurity(MechanismName.LOW, Secret(b"hunter2-password"))
    options = ServerOptions(security=sim)
    for text in (repr(sim), repr(options), str(options)):
        assert "hunter2" not in text
        assert DEFAULT_BLOCK_CIPHER_KEY.hex() not in text.lower()


# ------------------------------------------------------------------ SN: the daemon's client
SN_ENERGY = 0x0208  # the bundled model's 1.0.1.8.0.255 value in the SN layout


@pytest.mark.parametrize("mechanism", [MechanismName.HIGH, MechanismName.HIGH_MD5,
                                       MechanismName.HIGH_SHA1, MechanismName.HIGH_SHA256])
def test_snclient_hls_by_read_parameterized_access(mechanism: MechanismName) -> None:
    server = server_with(mechanism, referencing=Referencing.SN)
    client = SnClient(hls=HlsKeys(mechanism, secret=SECRET, system_title=CLIENT_TITLE))
    event = client.receive_apdu(server.handle(client.associate(CTOS), NOW))
    assert isinstance(event, Authenticate)
    # pass 3 is a READ of method 8 of the Association SN (0xFA00 + 0x58) with f(StoC)
    request = ReadRequest.from_bytes(event.apdu)
    access = request.variables[0]
    assert isinstance(access, ParameterizedAccess) and access.short_name == 0xFA58
    if mechanism in F:
        assert access.parameter == Data.octets(F[mechanism](STOC))
    else:
        assert access.parameter == Data.octets(sha256_client(STOC, CTOS))
    assert isinstance(client.receive_apdu(server.handle(event.apdu, NOW)), Associated)
    result = client.receive_apdu(server.handle(client.read([SN_ENERGY]), NOW))
    assert isinstance(result, GetComplete) and result.results == (Data.uint32(123456),)


def test_snclient_wrong_secret_is_a_rejection() -> None:
    server = server_with(MechanismName.HIGH_MD5, referencing=Referencing.SN)
    client = SnClient(hls=HlsKeys(MechanismName.HIGH_MD5, secret=b"not the secret!!"))
    event = client.receive_apdu(server.handle(client.associate(CTOS), NOW))
    assert isinstance(event, Authenticate)
    with pytest.raises(AssociationRejected, match="HLS authentication failed"):
        client.receive_apdu(server.handle(event.apdu, NOW))
    assert client.state is ClientState.IDLE


@pytest.mark.parametrize("sc", [0x10, 0x20, 0x30])
def test_snclient_gmac_ciphers_every_apdu(sc: int) -> None:
    policy = {0x10: "authentication", 0x20: "encryption", 0x30: "both"}[sc]
    server = server_with(MechanismName.HIGH_GMAC, secret=None, security=policy,
                         referencing=Referencing.SN)
    counters = itertools.count(1)
    received: list[int] = []
    ciphering = Ciphering(SecurityControl.of(sc), CLIENT_TITLE, DEFAULT_BLOCK_CIPHER_KEY,
                          DEFAULT_AUTHENTICATION_KEY, lambda: next(counters),
                          lambda counter, **_: received.append(counter))
    hls = HlsKeys(MechanismName.HIGH_GMAC, system_title=CLIENT_TITLE,
                  block_cipher_key=DEFAULT_BLOCK_CIPHER_KEY,
                  authentication_key=DEFAULT_AUTHENTICATION_KEY)
    client = SnClient(hls=hls, ciphering=ciphering)
    request = client.associate(CTOS)
    aare = Aare.from_bytes(server.handle(request, NOW))
    assert aare.application_context_name is (
        ApplicationContextName.SHORT_NAME_REFERENCING_WITH_CIPHERING)
    event = client.receive_apdu(aare.to_bytes())
    assert isinstance(event, Authenticate) and event.apdu[0] == 0x25  # glo-read-request
    assert isinstance(client.receive_apdu(server.handle(event.apdu, NOW)), Associated)
    read = client.read([SN_ENERGY])
    assert read[0] == 0x25 and read[2] == sc
    response = server.handle(read, NOW)
    assert response[0] == 0x2C and response[2] == sc  # glo-read-response, the policy's SC
    result = client.receive_apdu(response)
    assert isinstance(result, GetComplete) and result.results == (Data.uint32(123456),)
    # the meter's counters: glo-initiate-response, pass 4's answer, the read's answer
    assert received == sorted(received) and len(set(received)) == len(received) == 3


# ------------------------------------------------------------------ dedicated key
DEDICATED_KEY = bytes.fromhex("6D6B3C0F2E1A4B5C8899AABBCCDDEEFF")


def test_dedicated_key_travels_encrypted_and_ciphers_after_pass_4() -> None:
    """Green Book 9.2.7.2: the dedicated key is carried in the InitiateRequest inside
    the glo-initiate-request (so encrypted), and the association's APDUs after the
    authentication are ded-ciphered with it.  Checked with AESGCM directly."""
    server = server_with(MechanismName.HIGH_GMAC, secret=None)
    counters = itertools.count(1)
    ciphering = Ciphering(SecurityControl.of(0x30), CLIENT_TITLE, DEFAULT_BLOCK_CIPHER_KEY,
                          DEFAULT_AUTHENTICATION_KEY, lambda: next(counters), lambda _, **__: None,
                          dedicated_key=DEDICATED_KEY)
    hls = HlsKeys(MechanismName.HIGH_GMAC, system_title=CLIENT_TITLE,
                  block_cipher_key=DEFAULT_BLOCK_CIPHER_KEY,
                  authentication_key=DEFAULT_AUTHENTICATION_KEY)
    client = LnClient(hls=hls, ciphering=ciphering)
    request = client.associate(CTOS)
    glo = Aarq.from_bytes(request).user_information
    assert isinstance(glo, bytes) and glo[0] == 0x21  # glo-initiate-request
    assert DEDICATED_KEY not in request  # encrypted
    sc, ic, body = glo[2], glo[3:7], glo[7:]
    aesgcm = AESGCM(DEFAULT_BLOCK_CIPHER_KEY)
    # GCM with a 12-octet tag: decrypt with its keystream (AES-CTR from IV || 2), then
    # check the tag by recomputing the full one over the plain text
    keystream = Cipher(algorithms.AES(DEFAULT_BLOCK_CIPHER_KEY),
                       modes.CTR(CLIENT_TITLE + ic + b"\x00\x00\x00\x02")).decryptor()
    initiate = keystream.update(body[:-12]) + keystream.finalize()
    full = aesgcm.encrypt(CLIENT_TITLE + ic, initiate,
                          bytes((sc,)) + DEFAULT_AUTHENTICATION_KEY)
    assert full[-16:-4] == body[-12:]
    assert InitiateRequest.from_bytes(initiate).dedicated_key == DEDICATED_KEY
    event = client.receive_apdu(server.handle(request, NOW))
    assert isinstance(event, Authenticate) and event.apdu[0] == 0xCB  # pass 3: glo
    assert isinstance(client.receive_apdu(server.handle(event.apdu, NOW)), Associated)
    get = client.get([ENERGY])
    assert get[0] == 0xD0  # ded-get-request
    response = server.handle(get, NOW)
    assert response[0] == 0xD4  # ded-get-response, with the dedicated key
    keystream = Cipher(algorithms.AES(DEDICATED_KEY),
                       modes.CTR(DEFAULT_SYSTEM_TITLE + response[3:7] + b"\x00\x00\x00\x02")
                       ).decryptor()
    plain = keystream.update(response[7:-12]) + keystream.finalize()
    assert plain.startswith(b"\xc4\x01") and plain.endswith(b"\x06\x00\x01\xe2\x40")
    result = client.receive_apdu(response)
    assert isinstance(result, GetComplete) and result.results == (Data.uint32(123456),)


def test_dedicated_key_needs_an_encrypting_policy() -> None:
    hls = HlsKeys(MechanismName.HIGH_GMAC, system_title=CLIENT_TITLE,
                  block_cipher_key=DEFAULT_BLOCK_CIPHER_KEY,
                  authentication_key=DEFAULT_AUTHENTICATION_KEY)
    ciphering = Ciphering(SecurityControl.of(0x10), CLIENT_TITLE, DEFAULT_BLOCK_CIPHER_KEY,
                          DEFAULT_AUTHENTICATION_KEY, lambda: 1, lambda _, **__: None,
                          dedicated_key=DEDICATED_KEY)
    with pytest.raises(LocalProtocolError, match="the security policy must encrypt"):
        LnClient(hls=hls, ciphering=ciphering)


def test_ded_ciphering_only_after_the_authentication() -> None:
    """Before pass 4 the dedicated key is not in use: the client refuses a ded- answer
    and the meter refuses a ded- request (it deciphers nothing with that key yet)."""
    server = server_with(MechanismName.HIGH_GMAC, secret=None)
    ciphering = Ciphering(SecurityControl.of(0x30), CLIENT_TITLE, DEFAULT_BLOCK_CIPHER_KEY,
                          DEFAULT_AUTHENTICATION_KEY, lambda: 7, lambda _, **__: None,
                          dedicated_key=DEDICATED_KEY)
    hls = HlsKeys(MechanismName.HIGH_GMAC, system_title=CLIENT_TITLE,
                  block_cipher_key=DEFAULT_BLOCK_CIPHER_KEY,
                  authentication_key=DEFAULT_AUTHENTICATION_KEY)
    client = LnClient(hls=hls, ciphering=ciphering)
    event = client.receive_apdu(server.handle(client.associate(CTOS), NOW))
    assert isinstance(event, Authenticate)
    # the meter: a ded-action-request for pass 3 is not deciphered (deciphering-error)
    ded_pass_3 = protect(ActionRequestNormal(HLS_METHOD, Data.octets(b"x" * 17)).to_bytes(),
                         security_control=0x30, system_title=CLIENT_TITLE,
                         invocation_counter=10_000, tag=0xD3, dedicated_key=DEDICATED_KEY,
                         authentication_key=DEFAULT_AUTHENTICATION_KEY)
    refused = ExceptionResponse.from_bytes(server.handle(ded_pass_3, NOW))
    assert refused.service_error is ExceptionServiceError.DECIPHERING_ERROR
    assert server.state is AssociationState.PENDING
    # the client: a ded-action-response to pass 3 is refused
    answer = protect(ActionResponseNormal(ActionResult.SUCCESS).to_bytes(),
                     security_control=0x30, system_title=DEFAULT_SYSTEM_TITLE,
                     invocation_counter=20_000, tag=0xD7, dedicated_key=DEDICATED_KEY,
                     authentication_key=DEFAULT_AUTHENTICATION_KEY)
    with pytest.raises(RemoteProtocolError, match="dedicated key"):
        client.receive_apdu(answer)
