"""HLS-ECDSA (mechanism 7) between the daemon's clients and the simulated meter.

The signatures are checked here with ``cryptography`` directly, over the data the
Green Book (DLMS UA 1000-2, 9.2.7.4, HLS mechanism 7) names: the client signs
ST-C || ST-S || StoC || CtoS, the meter ST-S || ST-C || CtoS || StoC, with ECDSA
P-256/SHA-256 (security suite 1) or P-384/SHA-384 (suite 2), the signature r || s.
The ciphered variant (glo-ciphering in suite 1 or 2) is checked by deciphering the
meter's response with ``cryptography``'s AESGCM, independently of dlmsd.protocol.security.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from dlmsd.errors import AssociationRejected, LocalProtocolError
from dlmsd.protocol.acse import Aare, Aarq, AssociationResult, MechanismName
from dlmsd.protocol.axdr import Data
from dlmsd.protocol.client import Associated, Authenticate, Ciphering, GetComplete, LnClient
from dlmsd.protocol.obis import Obis
from dlmsd.protocol.security import SecurityControl
from dlmsd.protocol.security_hls import HlsKeys
from dlmsd.protocol.sn import ParameterizedAccess, ReadRequest
from dlmsd.protocol.sn_client import SnClient
from dlmsd.protocol.xdlms import ActionRequestNormal, ActionResponseNormal, CosemAttributeDescriptor
from dlmsd.secret import Secret
from dlmsd.sim.auth import DEFAULT_SYSTEM_TITLE, SimSecurity
from dlmsd.sim.model import Meter, bundled_model_path, load_model
from dlmsd.sim.server import AssociationState, MeterServer, Referencing, ServerOptions

NOW = datetime(2024, 6, 1, 10, 0, tzinfo=UTC)
MODEL = load_model(bundled_model_path())
CLIENT_TITLE = bytes.fromhex("4D4D4D0000000001")
CTOS = bytes(range(0x10, 0x30))  # 32 octets
STOC = bytes(range(0x40, 0x60))
ENERGY = CosemAttributeDescriptor(3, Obis.parse("1.0.1.8.0.255"), 2)
SN_ENERGY = 0x0208
CURVES = {1: (ec.SECP256R1(), hashes.SHA256(), 32), 2: (ec.SECP384R1(), hashes.SHA384(), 48)}
EK = {1: bytes(range(16)), 2: bytes(range(32))}
AK = {1: bytes(range(0xD0, 0xE0)), 2: bytes(range(0xC0, 0xE0))}


def scalar(key: ec.EllipticCurvePrivateKey, size: int) -> bytes:
    return key.private_numbers().private_value.to_bytes(size, "big")


def point(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.X962,
                                         serialization.PublicFormat.UncompressedPoint)


def verify(public: ec.EllipticCurvePublicKey, suite: int, signature: bytes,
           data: bytes) -> bool:
    _, algorithm, size = CURVES[suite]
    if len(signature) != 2 * size:
        return False
    der = encode_dss_signature(int.from_bytes(signature[:size], "big"),
                               int.from_bytes(signature[size:], "big"))
    try:
        public.verify(der, data, ec.ECDSA(algorithm))
    except InvalidSignature:
        return False
    return True


class Pair:
    """A meter and a client with fresh key pairs on one suite's curve."""

    def __init__(self, suite: int, *, referencing: Referencing = Referencing.LN,
                 cipher: bool = False, client_key: ec.EllipticCurvePrivateKey | None = None,
                 policy: str = "both") -> None:
        curve, _, size = CURVES[suite]
        self.suite = suite
        self.meter_key = ec.generate_private_key(curve)
        self.client_key = ec.generate_private_key(curve)
        counter = itertools.count(500)
        sim = SimSecurity(MechanismName.HIGH_ECDSA, signing_key=Secret(scalar(self.meter_key,
                                                                               size)),
                          client_public_key=point(self.client_key), ecdsa_ciphering=cipher,
                          block_cipher_key=Secret(EK[suite]),
                          authentication_key=Secret(AK[suite]), security=policy,
                          random=lambda n: STOC[:n], next_counter=lambda: next(counter))
        self.server = MeterServer(Meter(MODEL), ServerOptions(referencing=referencing,
                                                              security=sim))
        signing = client_key or self.client_key
        hls = HlsKeys(MechanismName.HIGH_ECDSA, system_title=CLIENT_TITLE,
                      signing_key=signing, server_public_key=self.meter_key.public_key())
        ciphering = None
        self.received: list[int] = []
        if cipher:
            counters = itertools.count(1)
            sc = {"authentication": 0x10, "encryption": 0x20, "both": 0x30}[policy] | suite
            ciphering = Ciphering(SecurityControl.of(sc), CLIENT_TITLE, EK[suite], AK[suite],
                                  lambda: next(counters),
                                  lambda counter, **_: self.received.append(counter))
        client_class = SnClient if referencing is Referencing.SN else LnClient
        self.client = client_class(hls=hls, ciphering=ciphering)


@pytest.mark.parametrize("suite", [1, 2])
def test_ln_four_passes_with_independently_checked_signatures(suite: int) -> None:
    pair = Pair(suite)
    request = pair.client.associate(CTOS)
    aarq = Aarq.from_bytes(request)
    assert aarq.mechanism_name is MechanismName.HIGH_ECDSA
    assert aarq.calling_ap_title == CLIENT_TITLE and aarq.calling_authentication_value == CTOS
    aare_bytes = pair.server.handle(request, NOW)
    aare = Aare.from_bytes(aare_bytes)
    assert aare.result is AssociationResult.ACCEPTED
    assert aare.responding_ap_title == DEFAULT_SYSTEM_TITLE
    assert aare.responding_authentication_value == STOC  # 32 octets
    event = pair.client.receive_apdu(aare_bytes)
    assert isinstance(event, Authenticate)
    action = ActionRequestNormal.from_bytes(event.apdu)
    assert action.parameters is not None
    f_stoc = action.parameters.value
    assert isinstance(f_stoc, bytes)
    assert verify(pair.client_key.public_key(), suite, f_stoc,
                  CLIENT_TITLE + DEFAULT_SYSTEM_TITLE + STOC + CTOS)
    # not the meter's data order
    assert not verify(pair.client_key.public_key(), suite, f_stoc,
                      DEFAULT_SYSTEM_TITLE + CLIENT_TITLE + CTOS + STOC)
    answer_bytes = pair.server.handle(event.apdu, NOW)
    answer = ActionResponseNormal.from_bytes(answer_bytes)
    f_ctos = answer.check()
    assert f_ctos is not None and isinstance(f_ctos.value, bytes)
    assert verify(pair.meter_key.public_key(), suite, f_ctos.value,
                  DEFAULT_SYSTEM_TITLE + CLIENT_TITLE + CTOS + STOC)
    assert isinstance(pair.client.receive_apdu(answer_bytes), Associated)
    result = pair.client.receive_apdu(pair.server.handle(pair.client.get([ENERGY]), NOW))
    assert isinstance(result, GetComplete) and result.results == (Data.uint32(123456),)


@pytest.mark.parametrize("suite", [1, 2])
def test_sn_pass_three_is_a_read_of_method_8(suite: int) -> None:
    pair = Pair(suite, referencing=Referencing.SN)
    event = pair.client.receive_apdu(pair.server.handle(pair.client.associate(CTOS), NOW))
    assert isinstance(event, Authenticate)
    access = ReadRequest.from_bytes(event.apdu).variables[0]
    assert isinstance(access, ParameterizedAccess) and access.short_name == 0xFA58
    f_stoc = access.parameter.value
    assert isinstance(f_stoc, bytes)
    assert verify(pair.client_key.public_key(), suite, f_stoc,
                  CLIENT_TITLE + DEFAULT_SYSTEM_TITLE + STOC + CTOS)
    assert isinstance(pair.client.receive_apdu(pair.server.handle(event.apdu, NOW)),
                      Associated)
    result = pair.client.receive_apdu(pair.server.handle(pair.client.read([SN_ENERGY]), NOW))
    assert isinstance(result, GetComplete) and result.results == (Data.uint32(123456),)


@pytest.mark.parametrize("referencing", [Referencing.LN, Referencing.SN])
def test_a_client_with_another_key_is_refused(referencing: Referencing) -> None:
    pair = Pair(1, referencing=referencing, client_key=ec.generate_private_key(ec.SECP256R1()))
    event = pair.client.receive_apdu(pair.server.handle(pair.client.associate(CTOS), NOW))
    assert isinstance(event, Authenticate)
    with pytest.raises(AssociationRejected, match="HLS authentication failed"):
        pair.client.receive_apdu(pair.server.handle(event.apdu, NOW))
    assert pair.server.state is AssociationState.PENDING


def test_a_meter_with_another_key_is_not_trusted() -> None:
    pair = Pair(1)
    # the client trusts another meter key; the meter signs with its own
    impostor = ec.generate_private_key(ec.SECP256R1())
    hls = HlsKeys(MechanismName.HIGH_ECDSA, system_title=CLIENT_TITLE,
                  signing_key=pair.client_key, server_public_key=impostor.public_key())
    client = LnClient(hls=hls)
    event = client.receive_apdu(pair.server.handle(client.associate(CTOS), NOW))
    assert isinstance(event, Authenticate)
    with pytest.raises(AssociationRejected, match="f\\(CtoS\\) does not verify "
                       "\\(its signature is not made with the key of server_public_key"):
        client.receive_apdu(pair.server.handle(event.apdu, NOW))


@pytest.mark.parametrize(("suite", "policy", "sc"), [
    (1, "both", 0x31), (1, "authentication", 0x11), (2, "both", 0x32),
    (2, "encryption", 0x22)])
def test_ciphered_association_in_the_keys_suite(suite: int, policy: str, sc: int) -> None:
    pair = Pair(suite, cipher=True, policy=policy)
    request = pair.client.associate(CTOS)
    aarq = Aarq.from_bytes(request)
    assert isinstance(aarq.user_information, bytes) and aarq.user_information[0] == 0x21
    assert aarq.user_information[2] == sc  # glo-initiate-request in the keys' suite
    aare_bytes = pair.server.handle(request, NOW)
    aare = Aare.from_bytes(aare_bytes)
    assert aare.result is AssociationResult.ACCEPTED
    assert isinstance(aare.user_information, bytes) and aare.user_information[2] == sc
    event = pair.client.receive_apdu(aare_bytes)
    assert isinstance(event, Authenticate) and event.apdu[0] == 0xCB  # glo-action-request
    assert isinstance(pair.client.receive_apdu(pair.server.handle(event.apdu, NOW)),
                      Associated)
    response = pair.server.handle(pair.client.get([ENERGY]), NOW)
    assert response[0] == 0xCC and response[2] == sc  # glo-get-response
    if policy != "authentication":
        # decipher it independently: IV = ST-S || IC, AAD = SC || AK, 12-octet tag
        counter = response[3:7]
        body = response[7:]
        aad = bytes((sc,)) + AK[suite] if sc & 0x10 else b""
        tag_size = 12 if sc & 0x10 else 0
        if tag_size:
            plain = _gcm_decrypt_truncated(EK[suite], DEFAULT_SYSTEM_TITLE + counter, body,
                                           aad)
        else:
            plain = _ctr_decrypt(EK[suite], DEFAULT_SYSTEM_TITLE + counter, body)
        assert plain[:2] == b"\xc4\x01"  # GET-Response-Normal
        assert plain.endswith(b"\x06\x00\x01\xe2\x40")  # uint32 123456
    result = pair.client.receive_apdu(response)
    assert isinstance(result, GetComplete) and result.results == (Data.uint32(123456),)
    assert pair.received == sorted(pair.received) and len(set(pair.received)) == 3


def _ctr_decrypt(key: bytes, iv: bytes, body: bytes) -> bytes:
    """GCM's keystream: AES-CTR from counter block IV || 00000002."""
    decryptor = Cipher(algorithms.AES(key), modes.CTR(iv + b"\x00\x00\x00\x02")).decryptor()
    return decryptor.update(body) + decryptor.finalize()


def _gcm_decrypt_truncated(key: bytes, iv: bytes, body: bytes, aad: bytes) -> bytes:
    """GCM with a 12-octet tag: AESGCM wants the full tag, so decrypt with CTR and
    check the tag by re-encrypting (AESGCM over the plaintext gives the full tag)."""
    cipher_text, tag = body[:-12], body[-12:]
    plain = _ctr_decrypt(key, iv, cipher_text)
    full = AESGCM(key).encrypt(iv, plain, aad)
    assert full[:-16] == cipher_text and full[-16:-4] == tag
    return plain


def test_p384_ciphering_needs_32_octet_keys() -> None:
    curve_key = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(LocalProtocolError, match="security suite 2 needs 32"):
        SimSecurity(MechanismName.HIGH_ECDSA, signing_key=Secret(scalar(curve_key, 48)),
                    client_public_key=point(ec.generate_private_key(ec.SECP384R1())),
                    ecdsa_ciphering=True)

