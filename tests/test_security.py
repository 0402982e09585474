"""Ciphering of xDLMS APDUs, security suite 0 (dlmsd.protocol.security).

Vector sources (each checked both ways: protect == bytes, unprotect(bytes) == plain):

* Green Book ciphering example, glo-get-request of Clock 0.0.1.0.0.255 attribute 2
  (``C0 01 00 00 08 00 00 01 00 00 FF 02 00``), system title 4D4D4D0000BC614E,
  IC 01234567, EK 000102..0F, AK D0D1..DF:
  - SC 0x30 and 0x20: jDLMS (Fraunhofer ISE) test, repository xdom/jdlms,
    src/test/java/org/openmuc/jdlms/CipheringTest.java, test_authenticated_and_enrcypted_apdu
    and test_enrcypted_apdu;
  - SC 0x10: a jDLMS CoderXDlmsApdu test quoting "GB ed.7 p.285" (found through the code
    corpus, repository not named there); the same bytes are produced by gurux below.
* glo-initiate-request "from the standard" (AARQ user-information with dedicated key
  00112233..FF): same CipheringTest.java, testCipheringExampleFromStandard.
* AES-GCM: McGrew & Viega, "The Galois/Counter Mode of Operation (GCM)", appendix B,
  test cases 1-4 (128-bit key); the same values are in apache/commons-crypto
  src/test/java/org/apache/commons/crypto/cipher/GcmCipherTest.java.
"""

from __future__ import annotations

import contextlib
import dataclasses

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlmsd.errors import DecodeError, LocalProtocolError, RemoteProtocolError
from dlmsd.protocol import security
from dlmsd.protocol.axdr import encode_length
from dlmsd.protocol.security import (
    AUTHENTICATED_ENCRYPTION,
    AUTHENTICATION_ONLY,
    ENCRYPTION_ONLY,
    GENERAL_DED_CIPHERING,
    GENERAL_GLO_CIPHERING,
    AuthenticationFailure,
    SecurityControl,
    SecurityHeader,
    ciphered_tag,
    describe,
    gmac,
    is_ciphered,
    plain_tag,
    protect,
    tag_name,
    unprotect,
)
from dlmsd.protocol.xdlms import ApduTag, Conformance, InitiateRequest
from dlmsd.secret import Secret

H = bytes.fromhex
EK = H("000102030405060708090A0B0C0D0E0F")
AK = H("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
ST = H("4D4D4D0000BC614E")
IC = 0x01234567
GET_CLOCK = H("C0010000080000010000FF0200")

GLO_GET_SC10 = "C81E1001234567C0010000080000010000FF020006725D910F9221D263877516"
GLO_GET_SC20 = "C8122001234567411312FF935A47566827C467BC"
GLO_GET_SC30 = "C81E3001234567411312FF935A47566827C467BC7D825C3BE4A77C3FCC056B6B"
INITIATE = H("01011000112233445566778899AABBCCDDEEFF0000065F1F0400007E1F04B0")
GLO_INITIATE_SC30 = ("21303001234567801302FF8A7874133D414CED25B42534D28DB0047720606B175BD522"
                     "11BE6841DB204D39EE6FDB8E356855")
GREEN_BOOK = [
    pytest.param(0x10, GET_CLOCK, GLO_GET_SC10, id="glo-get-request-SC10"),
    pytest.param(0x20, GET_CLOCK, GLO_GET_SC20, id="glo-get-request-SC20"),
    pytest.param(0x30, GET_CLOCK, GLO_GET_SC30, id="glo-get-request-SC30"),
    pytest.param(0x30, INITIATE, GLO_INITIATE_SC30, id="glo-initiate-request-SC30"),
]


@pytest.mark.parametrize(("sc", "plain", "wire"), GREEN_BOOK)
def test_green_book_vectors_both_ways(sc: int, plain: bytes, wire: str) -> None:
    out = protect(plain, security_control=sc, system_title=ST, invocation_counter=IC,
                  block_cipher_key=EK, authentication_key=AK)
    assert out.hex().upper() == wire
    back, header = unprotect(H(wire), system_title=ST, block_cipher_key=EK,
                             authentication_key=AK)
    assert back == plain
    assert header == SecurityHeader(H(wire)[0], SecurityControl.from_byte(sc), IC, ST)


def test_initiate_request_vector_is_our_initiate_request() -> None:
    # The standard's plaintext is an InitiateRequest our acse codec builds byte for byte.
    request = InitiateRequest(proposed_conformance=Conformance(0x007E1F),
                              client_max_receive_pdu_size=1200,
                              dedicated_key=H("00112233445566778899AABBCCDDEEFF"))
    assert request.to_bytes() == INITIATE


def test_keys_as_secret() -> None:
    out = protect(GET_CLOCK, security_control=AUTHENTICATED_ENCRYPTION, system_title=ST,
                  invocation_counter=IC, block_cipher_key=Secret(EK),
                  authentication_key=Secret(AK))
    assert out.hex().upper() == GLO_GET_SC30
    assert unprotect(out, system_title=ST, block_cipher_key=Secret(EK),
                     authentication_key=Secret(AK))[0] == GET_CLOCK


def test_a_downgrade_to_encryption_only_is_refused_by_the_policy() -> None:
    """The security control byte is not covered by a tag that the downgrade removes:
    0x30 (Green Book example) turned into 0x20 with the tag cut off deciphers, so only
    the receiver's policy (``require``, as the client passes it) can refuse it."""
    wire = bytearray(H(GLO_GET_SC30))
    sc_at = 2  # tag, length, then the security control byte
    assert wire[sc_at] == 0x30
    wire[sc_at] = 0x20
    wire[1] -= 12  # the 12-octet tag is gone
    downgraded = bytes(wire[:-12])
    plain, header = unprotect(downgraded, system_title=ST, block_cipher_key=EK,
                              authentication_key=AK)
    assert plain == GET_CLOCK and header.security_control.to_byte() == 0x20
    with pytest.raises(RemoteProtocolError, match="policy requires authenticated"):
        unprotect(downgraded, system_title=ST, block_cipher_key=EK, authentication_key=AK,
                  require=AUTHENTICATED_ENCRYPTION)


@pytest.mark.parametrize(("sc", "plain", "wire"), GREEN_BOOK)
def test_trailing_or_missing_bytes_are_decode_errors(sc: int, plain: bytes, wire: str) -> None:
    for data in (H(wire) + b"\x00", H(wire)[:-1]):
        with pytest.raises(DecodeError, match="length"):
            unprotect(data, system_title=ST, block_cipher_key=EK, authentication_key=AK)


# --------------------------------------------------------------------------- AES-GCM
# McGrew & Viega, GCM spec appendix B, test cases 1-4 and 13-16 (key, IV, P, A, C, T).
_K3 = "feffe9928665731c6d6a8f9467308308"
_P3 = ("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
       "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255")
_C3 = ("42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
       "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985")
_C15 = ("522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
        "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad")
NIST = [
    pytest.param("00" * 16, "00" * 12, "", "", "", "58e2fccefa7e3061367f1d57a4e7455a", id="TC1"),
    pytest.param("00" * 16, "00" * 12, "00" * 16, "", "0388dace60b6a392f328c2b971b2fe78",
                 "ab6e47d42cec13bdf53a67b21257bddf", id="TC2"),
    pytest.param(_K3, "cafebabefacedbaddecaf888", _P3, "", _C3,
                 "4d5c2af327cd64a62cf35abd2ba6fab4", id="TC3"),
    pytest.param(_K3, "cafebabefacedbaddecaf888", _P3[:-8],
                 "feedfacedeadbeeffeedfacedeadbeefabaddad2", _C3[:-8],
                 "5bc94fbc3221a5db94fae95ae7121a47", id="TC4"),
    # Test cases 13-16: AES-256 (security suite 2's block cipher, Green Book 9.2.3.7).
    pytest.param("00" * 32, "00" * 12, "", "", "", "530f8afbc74536b9a963b4f1c4cb738b",
                 id="TC13"),
    pytest.param("00" * 32, "00" * 12, "00" * 16, "", "cea7403d4d606b6e074ec5d3baf39d18",
                 "d0d1c8a799996bf0265b98b5d48ab919", id="TC14"),
    pytest.param(_K3 * 2, "cafebabefacedbaddecaf888", _P3, "", _C15,
                 "b094dac5d93471bdec1a502270e3cc6c", id="TC15"),
    pytest.param(_K3 * 2, "cafebabefacedbaddecaf888", _P3[:-8],
                 "feedfacedeadbeeffeedfacedeadbeefabaddad2", _C15[:-8],
                 "76fc6ece0f4e1768cddf8853bb2d551b", id="TC16"),
]


@pytest.mark.parametrize(("key", "iv", "p", "a", "c", "t"), NIST)
def test_gcm_spec_vectors_through_internals(key: str, iv: str, p: str, a: str, c: str,
                                            t: str) -> None:
    ciphertext, tag = security._gcm_encrypt(H(key), H(iv), H(a), H(p))
    assert ciphertext.hex() == c
    assert tag.hex() == t[:24]  # DLMS keeps the first 12 octets
    assert security._gcm_decrypt(H(key), H(iv), H(a), H(c), H(t[:24]), "test") == H(p)
    with pytest.raises(AuthenticationFailure, match="authentication tag mismatch"):
        security._gcm_decrypt(H(key), H(iv), H(a) + b"x", H(c), H(t[:24]), "test")
    # Encryption only is GCM without the tag: AES-CTR from inc32(J0).
    assert security._ctr(H(key), H(iv), H(p)).hex() == c


def test_gcm_spec_test_case_1_through_gmac() -> None:
    # Empty plaintext and AAD, zero key, IV = zero "system title" || IC 0.
    assert gmac(bytes(16), bytes(8), 0, b"").hex() == "58e2fccefa7e3061367f1d57"


# --------------------------------------------------------------------------- tags / SC
def test_tag_maps_both_ways() -> None:
    plain_tags = [0x01, 0x05, 0x06, 0x08, 0x0C, 0x0D, 0x0E, 0x16, 0x18,
                  0xC0, 0xC1, 0xC2, 0xC3, 0xC4, 0xC5, 0xC7]
    for plain in plain_tags:
        glo, ded = ciphered_tag(plain), ciphered_tag(plain, dedicated=True)
        assert plain_tag(glo) == plain == plain_tag(ded)
        assert tag_name(glo) == "glo-" + tag_name(plain)
        assert tag_name(ded) == "ded-" + tag_name(plain)
    # Agrees with the tags the xdlms module already names.
    assert ciphered_tag(ApduTag.GET_REQUEST) == ApduTag.GLO_GET_REQUEST
    assert ciphered_tag(ApduTag.GET_RESPONSE) == ApduTag.GLO_GET_RESPONSE
    assert ciphered_tag(ApduTag.SET_REQUEST) == ApduTag.GLO_SET_REQUEST
    assert ciphered_tag(ApduTag.SET_RESPONSE) == ApduTag.GLO_SET_RESPONSE
    assert ciphered_tag(ApduTag.ACTION_REQUEST) == ApduTag.GLO_ACTION_REQUEST
    assert ciphered_tag(ApduTag.ACTION_RESPONSE) == ApduTag.GLO_ACTION_RESPONSE
    assert ciphered_tag(ApduTag.INITIATE_REQUEST) == ApduTag.GLO_INITIATE_REQUEST
    assert ciphered_tag(ApduTag.INITIATE_RESPONSE) == ApduTag.GLO_INITIATE_RESPONSE
    assert ciphered_tag(ApduTag.CONFIRMED_SERVICE_ERROR) == ApduTag.GLO_CONFIRMED_SERVICE_ERROR
    assert ciphered_tag(0xC0, dedicated=True) == ApduTag.DED_GET_REQUEST
    assert ciphered_tag(0xC7, dedicated=True) == ApduTag.DED_ACTION_RESPONSE
    with pytest.raises(LocalProtocolError, match="0xD8"):
        ciphered_tag(0xD8)
    with pytest.raises(DecodeError, match="0xC0"):
        plain_tag(0xC0)
    assert is_ciphered(H("C8")) and is_ciphered(H("DB")) and not is_ciphered(GET_CLOCK)
    assert not is_ciphered(b"")


@given(st.integers(0, 255))
def test_security_control_byte_round_trip(value: int) -> None:
    sc = SecurityControl.from_byte(value)
    assert sc.to_byte() == int(sc) == value
    assert sc.suite == value & 0x0F
    assert (sc.authentication, sc.encryption, sc.broadcast, sc.compression) == (
        bool(value & 0x10), bool(value & 0x20), bool(value & 0x40), bool(value & 0x80))


def test_security_control_constants() -> None:
    assert (int(AUTHENTICATION_ONLY), int(ENCRYPTION_ONLY), int(AUTHENTICATED_ENCRYPTION)) == (
        0x10, 0x20, 0x30)
    assert AUTHENTICATED_ENCRYPTION.label == "authenticated+encrypted"
    with pytest.raises(LocalProtocolError):
        SecurityControl(suite=16)


# --------------------------------------------------------------------------- forms
def test_general_glo_ciphering_carries_the_system_title() -> None:
    out = protect(GET_CLOCK, security_control=0x30, system_title=ST, invocation_counter=IC,
                  block_cipher_key=EK, authentication_key=AK, tag=GENERAL_GLO_CIPHERING)
    glo = H(GLO_GET_SC30)
    # DB 08 <ST> 1E <the same SC || IC || C || T as glo-get-request>
    assert out == b"\xdb\x08" + ST + glo[1:]
    plain, header = unprotect(out, system_title=None, block_cipher_key=EK,
                              authentication_key=AK)
    assert plain == GET_CLOCK and header.system_title == ST
    assert header.describe() == "general-glo-ciphering ST=4D4D4D0000BC614E SC=0x30 IC=19088743"
    with pytest.raises(RemoteProtocolError, match="expected 4D4D4D0000000001"):
        unprotect(out, system_title=H("4D4D4D0000000001"), block_cipher_key=EK,
                  authentication_key=AK)
    # An empty system-title: the known one is used.
    empty = b"\xdb\x00" + glo[1:]
    assert unprotect(empty, system_title=ST, block_cipher_key=EK,
                     authentication_key=AK)[0] == GET_CLOCK


def test_dedicated_key_forms() -> None:
    dedicated = H("00112233445566778899AABBCCDDEEFF")
    for tag in (ciphered_tag(0xC0, dedicated=True), GENERAL_DED_CIPHERING):
        out = protect(GET_CLOCK, security_control=0x30, system_title=ST, invocation_counter=7,
                      authentication_key=AK, dedicated_key=dedicated, tag=tag)
        plain, header = unprotect(out, system_title=ST, block_cipher_key=EK,
                                  authentication_key=AK, dedicated_key=dedicated)
        assert plain == GET_CLOCK and header.dedicated
        # The global key does not open it, and without the dedicated key it is refused.
        with pytest.raises(AuthenticationFailure):
            unprotect(out, system_title=ST, block_cipher_key=EK, authentication_key=AK,
                      dedicated_key=EK)
        with pytest.raises(RemoteProtocolError, match="dedicated key"):
            unprotect(out, system_title=ST, block_cipher_key=EK, authentication_key=AK)


def test_broadcast_key_is_used_when_sc_says_so() -> None:
    broadcast = H("A0A1A2A3A4A5A6A7A8A9AAABACADAEAF")
    out = protect(GET_CLOCK, security_control=0x70, system_title=ST, invocation_counter=7,
                  block_cipher_key=EK, authentication_key=AK, broadcast_key=broadcast)
    assert unprotect(out, system_title=ST, block_cipher_key=EK, authentication_key=AK,
                     broadcast_key=broadcast)[0] == GET_CLOCK
    with pytest.raises(RemoteProtocolError, match="broadcast key"):
        unprotect(out, system_title=ST, block_cipher_key=EK, authentication_key=AK)


def test_policy_requirement_rejects_weaker_protection() -> None:
    weak = protect(GET_CLOCK, security_control=0x20, system_title=ST, invocation_counter=1,
                   block_cipher_key=EK)
    with pytest.raises(RemoteProtocolError, match="requires authenticated") as info:
        unprotect(weak, system_title=ST, block_cipher_key=EK, authentication_key=AK,
                  require=AUTHENTICATION_ONLY)
    assert info.value.code == 0x20
    assert unprotect(weak, system_title=ST, block_cipher_key=EK,
                     require=ENCRYPTION_ONLY)[0] == GET_CLOCK


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"security_control": 0x33}, "security suite 3 is not supported"),
    ({"security_control": 0x32}, "block cipher key must be 32 bytes for security suite 2"),
    ({"security_control": 0xB0}, "compression"),
    ({"security_control": 0x00}, "no protection"),
    ({"system_title": ST[:7]}, "system title must be 8 bytes, got 7"),
    ({"invocation_counter": 1 << 32}, "invocation counter"),
    ({"block_cipher_key": EK[:15]},
     "block cipher key must be 16 bytes for security suite 0, got 15"),
    ({"authentication_key": None}, "needs the authentication key"),
    ({"block_cipher_key": None}, "needs the global block cipher key"),
    ({"tag": 0xCC}, "glo-get-response cannot carry a get-request"),
    ({"tag": 0x42}, "0x42 is not a ciphered APDU tag"),
])
def test_protect_misuse_is_local_error(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {"security_control": 0x30, "system_title": ST,
                               "invocation_counter": 1, "block_cipher_key": EK,
                               "authentication_key": AK}
    args.update(kwargs)
    with pytest.raises(LocalProtocolError, match=match):
        protect(GET_CLOCK, **args)  # type: ignore[arg-type]


def test_protect_bounds_the_apdu() -> None:
    with pytest.raises(LocalProtocolError, match="empty"):
        protect(b"", security_control=0x30, system_title=ST, invocation_counter=1,
                block_cipher_key=EK, authentication_key=AK)
    with pytest.raises(LocalProtocolError, match="exceeds 10"):
        protect(GET_CLOCK, security_control=0x30, system_title=ST, invocation_counter=1,
                block_cipher_key=EK, authentication_key=AK, max_size=10)


@pytest.mark.parametrize(("wire", "match"), [
    ("", "truncated"),
    ("C0", "not a ciphered APDU tag"),
    ("C8", "truncated"),
    ("C8 05 30 00 00 00", "length of 5 at offset 2 exceeds the 4 bytes"),
    ("C8 05 30 00 00 00 01 02", "length 5 but 6 bytes follow"),
    ("C8 05 33 00 00 00 01", "security suite 3"),
    ("C8 05 B0 00 00 00 01", "compression"),
    ("C8 05 00 00 00 00 01", "no protection"),
    ("C8 10 30 00 00 00 01" + " 00" * 11, "shorter than the 12-byte tag"),
    ("DB 07" + " 00" * 7 + " 05 30 00 00 00 01", "system-title of 7 bytes"),
    ("C8 84 FF FF FF FF", "exceeds"),
])
def test_unprotect_malformed_is_decode_error(wire: str, match: str) -> None:
    with pytest.raises(DecodeError, match=match):
        unprotect(bytes.fromhex(wire), system_title=ST, block_cipher_key=EK,
                  authentication_key=AK)


def test_unprotect_bounds_the_content() -> None:
    with pytest.raises(DecodeError, match="ciphered content of 25 bytes exceeds 24"):
        unprotect(H("C8 19") + bytes(25), system_title=ST, block_cipher_key=EK,
                  authentication_key=AK, max_size=24)


def test_unprotect_checks_the_inner_apdu_matches_the_tag() -> None:
    # A glo-get-response holding a get-request: the outer tag is not authenticated,
    # so this check is what catches it being swapped.
    wire = bytearray(H(GLO_GET_SC30))
    wire[0] = 0xCC
    with pytest.raises(DecodeError, match="glo-get-response carries a get-request"):
        unprotect(bytes(wire), system_title=ST, block_cipher_key=EK, authentication_key=AK)


def test_authentication_failure_names_the_mismatch() -> None:
    wire = bytearray(H(GLO_GET_SC30))
    wire[-1] ^= 1
    with pytest.raises(AuthenticationFailure, match="glo-get-request: authentication tag "
                                                    "mismatch") as info:
        unprotect(bytes(wire), system_title=ST, block_cipher_key=EK, authentication_key=AK)
    assert isinstance(info.value, RemoteProtocolError)


# --------------------------------------------------------------------------- describe
def test_describe() -> None:
    assert describe(H(GLO_GET_SC30)) == (
        "glo-get-request SC=0x30 IC=19088743 ciphered 13 bytes")
    assert describe(H(GLO_GET_SC10)) == (
        "glo-get-request SC=0x10 IC=19088743 authenticated 13 bytes")
    assert describe(H("C8 05 30")).startswith("undecodable ciphered APDU (3 bytes): ")


@given(st.binary(max_size=64))
def test_describe_never_raises(data: bytes) -> None:
    assert isinstance(describe(data), str)


# --------------------------------------------------------------------------- hypothesis
_PLAIN_TAGS = [p for p, _, _, _ in security._SERVICES]
keys16 = st.binary(min_size=16, max_size=16)


@st.composite
def protected(draw: st.DrawFn) -> tuple[bytes, bytes, dict[str, object], int]:
    """(plain, wire, unprotect kwargs, SC)"""
    form = draw(st.sampled_from(["glo", "ded", "general-glo", "general-ded"]))
    plain_first = draw(st.sampled_from(_PLAIN_TAGS)) if form in ("glo", "ded") else draw(
        st.integers(0, 255))
    plain = bytes((plain_first,)) + draw(st.binary(max_size=300))
    sc = draw(st.sampled_from([0x10, 0x20, 0x30]))
    # Distinct keys: with dedicated key == global key, swapping a glo- tag for its ded-
    # twin would not be detectable (the outer tag is not authenticated, by the standard).
    block, auth, dedicated = draw(st.lists(keys16, min_size=3, max_size=3, unique=True))
    keys = {"block_cipher_key": block, "authentication_key": auth, "dedicated_key": dedicated}
    title = draw(st.binary(min_size=8, max_size=8))
    counter = draw(st.integers(0, 0xFFFFFFFF))
    tag = {"glo": None, "ded": ciphered_tag(plain_first, dedicated=True) if form == "ded"
           else None, "general-glo": GENERAL_GLO_CIPHERING,
           "general-ded": GENERAL_DED_CIPHERING}[form]
    wire = protect(plain, security_control=sc, system_title=title, invocation_counter=counter,
                   tag=tag, **keys)  # type: ignore[arg-type]
    return plain, wire, {"system_title": title, **keys}, sc


@settings(max_examples=200, deadline=None)
@given(protected())
def test_round_trip(case: tuple[bytes, bytes, dict[str, object], int]) -> None:
    plain, wire, kwargs, sc = case
    back, header = unprotect(wire, **kwargs)  # type: ignore[arg-type]
    assert back == plain
    assert header.security_control.to_byte() == sc
    assert header.system_title == kwargs["system_title"]
    assert describe(wire).startswith(header.name)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(protected(), st.data())
def test_any_tampered_byte_is_detected(case: tuple[bytes, bytes, dict[str, object], int],
                                       data: st.DataObject) -> None:
    _, wire, kwargs, sc = case
    if sc == 0x20:
        return  # encryption only has no integrity protection, by design
    index = data.draw(st.integers(0, len(wire) - 1), label="index")
    flip = data.draw(st.integers(1, 255), label="xor")
    tampered = bytearray(wire)
    tampered[index] ^= flip
    # The receiver's security policy is the protection it asked for (the client passes
    # it, ``require``): without one, a security control byte turned from 0x30 into
    # 0x20 (encryption only) is a valid APDU without a tag, not a tampered one.
    with pytest.raises((DecodeError, RemoteProtocolError)):
        unprotect(bytes(tampered), require=sc, **kwargs)  # type: ignore[arg-type]


_ALL_TAGS = sorted({*security._PLAIN, GENERAL_GLO_CIPHERING, GENERAL_DED_CIPHERING})


def _framed(tag: int, title: bytes, content: bytes) -> bytes:
    """A ciphered APDU with consistent lengths around arbitrary content."""
    head = bytes((tag,))
    if tag in (GENERAL_GLO_CIPHERING, GENERAL_DED_CIPHERING):
        head += bytes((len(title),)) + title
    return head + encode_length(len(content)) + content


@settings(max_examples=600, deadline=None)
@given(st.one_of(
    st.binary(max_size=80),
    st.tuples(st.sampled_from(_ALL_TAGS), st.binary(max_size=80)).map(
        lambda t: bytes((t[0],)) + t[1]),
    st.builds(_framed, st.sampled_from(_ALL_TAGS),
              st.sampled_from([b"", ST, ST[:5]]), st.binary(max_size=200)),
))
def test_fuzz_unprotect_raises_only_protocol_errors(data: bytes) -> None:
    # Anything else (ValueError from the crypto library, IndexError...) fails the test.
    with contextlib.suppress(DecodeError, RemoteProtocolError):
        unprotect(data, system_title=ST, block_cipher_key=EK, authentication_key=AK,
                  dedicated_key=EK, broadcast_key=AK)


def test_security_header_is_frozen() -> None:
    header = unprotect(H(GLO_GET_SC30), system_title=ST, block_cipher_key=EK,
                       authentication_key=AK)[1]
    with pytest.raises(dataclasses.FrozenInstanceError):
        header.invocation_counter = 0  # type: ignore[misc]


# --------------------------------------------------------------------------- suites 1, 2
@pytest.mark.parametrize(("sc", "key_size"), [(0x31, 16), (0x32, 32), (0x12, 32), (0x21, 16)])
def test_suites_1_and_2_against_aesgcm(sc: int, key_size: int) -> None:
    """Suite 1 is AES-GCM-128, suite 2 AES-GCM-256 (Green Book 9.2.3.7); the APDU is
    built as in suite 0: SC || IC || C || T(12), IV = ST || IC, AAD = SC || AK.
    Checked against ``cryptography``'s AESGCM, both ways."""
    ek, ak = bytes(range(key_size)), bytes(range(0x80, 0x80 + key_size))
    plain = bytes.fromhex("C001C100030100010800FF0200")  # GET 3/1.0.1.8.0.255/2
    wire = protect(plain, security_control=sc, system_title=ST, invocation_counter=0x01020304,
                   block_cipher_key=ek, authentication_key=ak)
    assert wire[0] == ciphered_tag(plain[0]) and wire[2] == sc
    assert wire[3:7] == bytes.fromhex("01020304")
    body = wire[7:]
    iv = ST + bytes.fromhex("01020304")
    if sc & 0x20 and sc & 0x10:
        full = AESGCM(ek).encrypt(iv, plain, bytes((sc,)) + ak)
        assert body == full[:-16] + full[-16:-4]
    elif sc & 0x10:  # authentication only: the APDU in clear, tag over SC || AK || APDU
        full = AESGCM(ek).encrypt(iv, b"", bytes((sc,)) + ak + plain)
        assert body == plain + full[:12]
    else:  # encryption only: GCM's ciphertext, no tag
        assert body == AESGCM(ek).encrypt(iv, plain, None)[:-16]
    back, header = unprotect(wire, system_title=ST, block_cipher_key=ek,
                             authentication_key=ak)
    assert back == plain and header.security_control.suite == sc & 0x0F
    # the other suite's key size is refused, naming the suite
    other = bytes(48 - key_size)
    with pytest.raises(RemoteProtocolError, match=f"for security suite {sc & 0x0F}"):
        unprotect(wire, system_title=ST, block_cipher_key=other, authentication_key=other)
