"""HLS authentication, mechanisms 2..7 (dlmsd.protocol.security_hls).

Vector sources:

* Mechanism 5: Green Book 8.1, 9.2.7.4, Table 43 "HLS example using
  authentication-mechanism5 with GMAC", as quoted in meterkit/cosemlib
  tests/test_aes128gcm.c (client ST 4D4D4D0000000001 IC 00000001, server ST
  4D4D4D0000BC614E IC 01234567, CtoS "K56iVagY", StoC "P6wRJ21F").
* Mechanisms 2, 3, 4, 6 with the same titles and challenges: the values gurux_dlms
  1.0.203 computes (``GXDLMSClient.getApplicationAssociationRequest``), re-checked live
  in tests/test_security_gurux.py, and 3, 4, 6 recomputed here with hashlib.
* Mechanism 2 with a secret shorter than 16 octets: computed in the test itself with
  ``cryptography``'s AES-128-ECB, the secret zero-padded at its end to 16 octets as
  gurux_dlms pads it (Gurux/Gurux.DLMS.Python ``gurux_dlms/GXSecure.py``
  ``GXSecure.secure``, read only: the secret is copied into a zeroed buffer of at least
  16 octets whose first 16 key the AES); re-checked against gurux in
  tests/test_security_gurux.py.
* Mechanism 7 (ECDSA): RFC 6979 appendix A.2.5 (P-256/SHA-256) and A.2.6
  (P-384/SHA-384), the keys and the signatures of "sample".
"""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from dlmsd.errors import DecodeError, LocalProtocolError, RemoteProtocolError
from dlmsd.protocol import security_hls
from dlmsd.protocol.acse import MechanismName
from dlmsd.protocol.security import AuthenticationFailure
from dlmsd.protocol.security_hls import (
    HlsKeys,
    client_reply,
    ec_private_key,
    ec_public_key,
    ecdsa_sign,
    ecdsa_suite,
    ecdsa_verify,
    hls_gmac,
    hls_high,
    hls_md5,
    hls_sha1,
    hls_sha256,
    new_challenge,
    verify_server_reply,
)
from dlmsd.secret import Secret

H = bytes.fromhex
EK = H("000102030405060708090A0B0C0D0E0F")
AK = H("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
ST_C = H("4D4D4D0000000001")
ST_S = H("4D4D4D0000BC614E")
CTOS = b"K56iVagY"
STOC = b"P6wRJ21F"
HIGH_SECRET = b"0123456789ABCDEF"
SECRET = b"secret"

# f(StoC) computed by the client.
CLIENT_VECTORS = [
    pytest.param(MechanismName.HIGH, "5ca8f135bc1d27846ceec104f8c69108", id="high"),
    pytest.param(MechanismName.HIGH_MD5, "95cd32fe7356ece509986ff8f87e6b1b", id="md5"),
    pytest.param(MechanismName.HIGH_SHA1, "94d86d988ad084c3507f69cddc4280d76e63ba5a", id="sha1"),
    pytest.param(MechanismName.HIGH_SHA256,
                 "dccbf782a36ddc5fdeec1461a67feb4c501fac5f56786aa10676600311e0f8b7",
                 id="sha256"),
    pytest.param(MechanismName.HIGH_GMAC, "10000000011a52fe7dd3e72748973c1e28", id="gmac"),
]


def keys_for(mechanism: MechanismName) -> HlsKeys:
    if mechanism is MechanismName.HIGH_GMAC:
        return HlsKeys(mechanism, system_title=ST_C, block_cipher_key=Secret(EK),
                       authentication_key=Secret(AK))
    secret = HIGH_SECRET if mechanism is MechanismName.HIGH else SECRET
    return HlsKeys(mechanism, secret=Secret(secret), system_title=ST_C)


@pytest.mark.parametrize(("mechanism", "expected"), CLIENT_VECTORS)
def test_client_reply_vectors(mechanism: MechanismName, expected: str) -> None:
    reply = client_reply(keys_for(mechanism), stoc=STOC, ctos=CTOS, server_system_title=ST_S,
                         invocation_counter=1)
    assert reply.hex() == expected


def meter_reply(mechanism: MechanismName) -> bytes:
    """f(CtoS) as the meter computes it (the primitives with the roles swapped)."""
    if mechanism is MechanismName.HIGH:
        return hls_high(HIGH_SECRET, CTOS)
    if mechanism is MechanismName.HIGH_MD5:
        return hls_md5(SECRET, CTOS)
    if mechanism is MechanismName.HIGH_SHA1:
        return hls_sha1(SECRET, CTOS)
    if mechanism is MechanismName.HIGH_SHA256:
        return hls_sha256(SECRET, own_system_title=ST_S, peer_system_title=ST_C,
                          received_challenge=CTOS, own_challenge=STOC)
    return hls_gmac(CTOS, system_title=ST_S, invocation_counter=0x01234567,
                    block_cipher_key=EK, authentication_key=AK)


def test_green_book_table_43_meter_reply() -> None:
    reply = meter_reply(MechanismName.HIGH_GMAC)
    assert reply.hex().upper() == "1001234567FE1466AFB3DBCD4F9389E2B7"
    assert verify_server_reply(keys_for(MechanismName.HIGH_GMAC), reply, stoc=STOC, ctos=CTOS,
                               server_system_title=ST_S) == 0x01234567


def test_hash_mechanisms_by_hand() -> None:
    assert hls_md5(SECRET, STOC) == hashlib.md5(STOC + SECRET).digest()
    assert hls_sha1(SECRET, STOC) == hashlib.sha1(STOC + SECRET).digest()
    assert hls_sha256(SECRET, own_system_title=ST_C, peer_system_title=ST_S,
                      received_challenge=STOC, own_challenge=CTOS) == hashlib.sha256(
        SECRET + ST_C + ST_S + STOC + CTOS).digest()
    # The meter's reply swaps titles and challenges.
    assert meter_reply(MechanismName.HIGH_SHA256) == hashlib.sha256(
        SECRET + ST_S + ST_C + CTOS + STOC).digest()


def test_high_pads_with_zeros_to_whole_blocks() -> None:
    eight = hls_high(HIGH_SECRET, STOC)
    assert len(eight) == 16
    assert eight == hls_high(HIGH_SECRET, STOC + bytes(8))  # zero padding at the end
    assert len(hls_high(HIGH_SECRET, bytes(16))) == 16
    assert len(hls_high(HIGH_SECRET, bytes(17))) == 32
    # ECB: each block independently.
    two = hls_high(HIGH_SECRET, STOC + bytes(8) + STOC)
    assert two[:16] == eight == two[16:]
    with pytest.raises(LocalProtocolError, match="AES-128 key"):
        hls_high(b"", STOC)


def _aes_ecb(key: bytes, data: bytes) -> bytes:
    """The reference: cryptography's AES-ECB, not dlmsd's code."""
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return encryptor.update(data) + encryptor.finalize()


@pytest.mark.parametrize("secret", [b"G", b"Gurux", b"secret", b"15 bytes secret"],
                         ids=lambda s: f"{len(s)} bytes")
def test_high_zero_pads_a_short_secret(secret: bytes) -> None:
    """A secret of 1..15 octets keys AES-128 as the secret followed by zero octets."""
    expected = _aes_ecb(secret + bytes(16 - len(secret)), STOC + bytes(8))
    assert hls_high(secret, STOC) == expected
    assert hls_high(Secret(secret), STOC) == expected
    keys = HlsKeys(MechanismName.HIGH, secret=Secret(secret))
    assert client_reply(keys, stoc=STOC, ctos=CTOS) == expected
    verify_server_reply(keys, _aes_ecb(secret + bytes(16 - len(secret)), CTOS + bytes(8)),
                        stoc=STOC, ctos=CTOS)
    assert security_hls.high_key(secret) == secret + bytes(16 - len(secret))


def test_high_short_secret_fixed_vectors() -> None:
    # Same computation, written out once (cryptography 50.0.2, AES-128-ECB):
    # key "Gurux" + 11 x 00 / "secret" + 10 x 00, block "P6wRJ21F" + 8 x 00.
    assert hls_high(b"Gurux", STOC) == H("96011EF322EF023442A5636628BFB4C3")
    assert hls_high(b"secret", STOC) == H("F2CBE0229066B45DADFE5D84D9D5FA22")
    # Padding is not a different key: the 16-octet secret with the zeros written out
    # gives the same reply.
    assert hls_high(b"secret" + bytes(10), STOC) == hls_high(b"secret", STOC)


def test_high_longer_secret_refused_without_showing_it() -> None:
    secret = b"seventeen bytes!!"
    for call in (lambda: hls_high(secret, STOC),
                 lambda: HlsKeys(MechanismName.HIGH, secret=Secret(secret))):
        with pytest.raises(LocalProtocolError, match="at most 16 bytes, got 17") as info:
            call()
        assert "seventeen" not in str(info.value) and "seventeen" not in repr(info.value)


@pytest.mark.parametrize(("mechanism", "expected"), CLIENT_VECTORS)
def test_verify_server_reply(mechanism: MechanismName, expected: str) -> None:
    keys = keys_for(mechanism)
    reply = meter_reply(mechanism)
    verify_server_reply(keys, reply, stoc=STOC, ctos=CTOS, server_system_title=ST_S)
    bad = bytearray(reply)
    bad[-1] ^= 0x01
    with pytest.raises(AuthenticationFailure, match="does not match"):
        verify_server_reply(keys, bytes(bad), stoc=STOC, ctos=CTOS, server_system_title=ST_S)
    # Echoing our own reply back is not the meter's reply.
    own = client_reply(keys, stoc=STOC, ctos=CTOS, server_system_title=ST_S,
                       invocation_counter=1)
    with pytest.raises((AuthenticationFailure, DecodeError)):
        verify_server_reply(keys, own, stoc=STOC, ctos=CTOS, server_system_title=ST_S)


def test_gmac_reply_shape_is_checked() -> None:
    keys = keys_for(MechanismName.HIGH_GMAC)
    reply = meter_reply(MechanismName.HIGH_GMAC)
    for bad in (reply[:-1], b"\x30" + reply[1:], b""):
        with pytest.raises(DecodeError, match="SC 0x10"):
            verify_server_reply(keys, bad, stoc=STOC, ctos=CTOS, server_system_title=ST_S)
    # The IV uses the meter's system title: another title does not verify.
    with pytest.raises(AuthenticationFailure):
        verify_server_reply(keys, reply, stoc=STOC, ctos=CTOS, server_system_title=ST_C)


def test_challenges() -> None:
    assert new_challenge(bytes(range(16))) == bytes(range(16))
    for size in (7, 65):
        with pytest.raises(LocalProtocolError, match=r"8\.\.64"):
            new_challenge(bytes(size))
    keys = keys_for(MechanismName.HIGH_MD5)
    with pytest.raises(DecodeError, match="meter challenge StoC of 7 bytes"):
        client_reply(keys, stoc=bytes(7), ctos=CTOS)
    with pytest.raises(LocalProtocolError, match="client challenge CtoS of 65 bytes"):
        client_reply(keys, stoc=STOC, ctos=bytes(65))


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"mechanism": MechanismName.LOW}, "not an HLS mechanism"),
    ({"mechanism": MechanismName.HIGH_MD5}, "needs the HLS secret"),
    ({"mechanism": MechanismName.HIGH, "secret": b"17 bytes secret!!"}, "at most 16 bytes"),
    ({"mechanism": MechanismName.HIGH, "secret": b""}, "empty"),
    ({"mechanism": MechanismName.HIGH_SHA1, "secret": b""}, "empty"),
    ({"mechanism": MechanismName.HIGH_SHA256, "secret": b"x"}, "client system title"),
    ({"mechanism": MechanismName.HIGH_GMAC, "system_title": ST_C}, "needs the block cipher"),
    ({"mechanism": MechanismName.HIGH_GMAC, "system_title": ST_C, "block_cipher_key": EK,
      "authentication_key": AK[:8]}, "authentication key must be 16 bytes, got 8"),
    ({"mechanism": MechanismName.HIGH_ECDSA, "system_title": ST_C}, "signing key"),
])
def test_hls_keys_say_what_is_missing(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(LocalProtocolError, match=match):
        HlsKeys(**kwargs)  # type: ignore[arg-type]


def test_mechanisms_needing_titles_or_counter() -> None:
    with pytest.raises(LocalProtocolError, match="meter system title must be 8 bytes, got none"):
        client_reply(keys_for(MechanismName.HIGH_SHA256), stoc=STOC, ctos=CTOS)
    with pytest.raises(LocalProtocolError, match="invocation counter"):
        client_reply(keys_for(MechanismName.HIGH_GMAC), stoc=STOC, ctos=CTOS)


# --------------------------------------------------------------------------- ECDSA
def _keys(curve: ec.EllipticCurve, seed: int) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(seed, curve)


@pytest.mark.parametrize(("curve", "size"), [(ec.SECP256R1(), 64), (ec.SECP384R1(), 96)],
                         ids=["P-256", "P-384"])
def test_ecdsa_both_roles(curve: ec.EllipticCurve, size: int) -> None:
    client, meter = _keys(curve, 0xC11E17), _keys(curve, 0x3E7E5)
    keys = HlsKeys(MechanismName.HIGH_ECDSA, system_title=ST_C, signing_key=client,
                   server_public_key=meter.public_key())
    f_stoc = client_reply(keys, stoc=STOC, ctos=CTOS, server_system_title=ST_S)
    assert len(f_stoc) == size
    # The meter checks the client's signature over ST-C || ST-S || StoC || CtoS ...
    assert ecdsa_verify(client.public_key(), f_stoc, signer_system_title=ST_C,
                        other_system_title=ST_S, challenge_to_signer=STOC,
                        signer_challenge=CTOS)
    # ... and signs ST-S || ST-C || CtoS || StoC, which the client checks.
    f_ctos = ecdsa_sign(meter, own_system_title=ST_S, peer_system_title=ST_C,
                        received_challenge=CTOS, own_challenge=STOC)
    assert verify_server_reply(keys, f_ctos, stoc=STOC, ctos=CTOS,
                               server_system_title=ST_S) is None
    with pytest.raises(AuthenticationFailure):  # signed by someone else
        verify_server_reply(keys, ecdsa_sign(client, own_system_title=ST_S,
                                             peer_system_title=ST_C, received_challenge=CTOS,
                                             own_challenge=STOC),
                            stoc=STOC, ctos=CTOS, server_system_title=ST_S)
    with pytest.raises(AuthenticationFailure):  # roles swapped in the signed data
        verify_server_reply(keys, ecdsa_sign(meter, own_system_title=ST_C,
                                             peer_system_title=ST_S, received_challenge=STOC,
                                             own_challenge=CTOS),
                            stoc=STOC, ctos=CTOS, server_system_title=ST_S)
    with pytest.raises(DecodeError, match="ECDSA signature"):
        verify_server_reply(keys, f_ctos[:-1], stoc=STOC, ctos=CTOS, server_system_title=ST_S)


def test_ecdsa_curve_checks() -> None:
    p256, p384 = _keys(ec.SECP256R1(), 5), _keys(ec.SECP384R1(), 5)
    with pytest.raises(LocalProtocolError, match="different curves"):
        HlsKeys(MechanismName.HIGH_ECDSA, system_title=ST_C, signing_key=p256,
                server_public_key=p384.public_key())
    with pytest.raises(LocalProtocolError, match="not P-256"):
        ecdsa_sign(_keys(ec.SECP521R1(), 5), own_system_title=ST_C, peer_system_title=ST_S,
                   received_challenge=STOC, own_challenge=CTOS)


# --------------------------------------------------------------------------- properties
_SYMMETRIC = [MechanismName.HIGH, MechanismName.HIGH_MD5, MechanismName.HIGH_SHA1,
              MechanismName.HIGH_SHA256, MechanismName.HIGH_GMAC]


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(_SYMMETRIC), st.binary(min_size=8, max_size=64),
       st.binary(min_size=8, max_size=64), st.binary(min_size=8, max_size=64))
def test_each_side_verifies_the_other(mechanism: MechanismName, stoc: bytes, ctos: bytes,
                                      other: bytes) -> None:
    keys = keys_for(mechanism)
    # A client with the roles swapped computes what the meter must answer.
    meter = HlsKeys(mechanism, secret=keys.secret, system_title=ST_S,
                    block_cipher_key=keys.block_cipher_key,
                    authentication_key=keys.authentication_key)
    f_ctos = client_reply(meter, stoc=ctos, ctos=stoc, server_system_title=ST_C,
                          invocation_counter=99)
    counter = verify_server_reply(keys, f_ctos, stoc=stoc, ctos=ctos, server_system_title=ST_S)
    assert counter == (99 if mechanism is MechanismName.HIGH_GMAC else None)
    if other != ctos and (mechanism is not MechanismName.HIGH
                          or other + bytes(-len(other) % 16) != ctos + bytes(-len(ctos) % 16)):
        with pytest.raises(RemoteProtocolError):
            verify_server_reply(keys, f_ctos, stoc=stoc, ctos=other, server_system_title=ST_S)


# ------------------------------------------------------- ECDSA: RFC 6979 vectors
# RFC 6979 appendix A.2.5 (P-256) and A.2.6 (P-384): private key x, public key (Ux, Uy),
# and the signature (r, s) of the message "sample" with SHA-256 / SHA-384, the hashes of
# security suites 1 and 2.
RFC6979 = [
    pytest.param(
        "C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721",
        "60FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6"
        "7903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462299",
        "EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716"
        "F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8", id="P-256"),
    pytest.param(
        "6B9D3DAD2E1B8C1C05B19875B6659F4DE23C3B667BF297BA9AA47740787137D8"
        "96D5724E4C70A825F872C9EA60D2EDF5",
        "EC3A4E415B4E19A4568618029F427FA5DA9A8BC4AE92E02E06AAE5286B300C64"
        "DEF8F0EA9055866064A254515480BC138015D9B72D7D57244EA8EF9AC0C62189"
        "6708A59367F9DFB9F54CA84B3F1C9DB1288B231C3AE0D4FE7344FD2533264720",
        "94EDBB92A5ECB8AAD4736E56C691916B3F88140666CE9FA73D64C4EA95AD133C"
        "81A648152E44ACF96E36DD1E80FABE4699EF4AEB15F178CEA1FE40DB2603138F"
        "130E740A19624526203B6351D0A3A94FA329C145786E679E7B82C71A38628AC8", id="P-384"),
]


@pytest.mark.parametrize(("x", "point", "signature"), RFC6979)
def test_ecdsa_rfc6979_vectors_both_ways(monkeypatch: pytest.MonkeyPatch, x: str,
                                         point: str, signature: str) -> None:
    private = ec_private_key(Secret(bytes.fromhex(x)))
    public = ec_public_key(b"\x04" + bytes.fromhex(point))
    assert private.public_key().public_numbers() == public.public_numbers()
    size = len(bytes.fromhex(x))
    assert ecdsa_suite(private) == (1 if size == 32 else 2)
    # the signed data is built from titles and challenges; the vectors sign "sample"
    monkeypatch.setattr(security_hls, "_ecdsa_data", lambda *parts: b"sample")
    titles = {"signer_system_title": ST_C, "other_system_title": ST_S,
              "challenge_to_signer": b"", "signer_challenge": b""}
    raw = bytes.fromhex(signature)
    assert ecdsa_verify(public, raw, **titles)
    bad = raw[:-1] + bytes((raw[-1] ^ 1,))
    assert not ecdsa_verify(public, bad, **titles)
    # and the other way: our r || s over "sample" verifies with cryptography directly
    ours = ecdsa_sign(private, own_system_title=ST_C, peer_system_title=ST_S,
                      received_challenge=b"", own_challenge=b"")
    assert len(ours) == 2 * size
    der = encode_dss_signature(int.from_bytes(ours[:size], "big"),
                               int.from_bytes(ours[size:], "big"))
    algorithm = hashes.SHA256() if size == 32 else hashes.SHA384()
    public.verify(der, b"sample", ec.ECDSA(algorithm))  # raises if it does not verify
