"""HLS authentication, mechanisms 2..7 (pure, sans-I/O).

This module owns the challenge checks and the two computations of the four-pass High
Level Security exchange: the client's reply f(StoC) and the check of the meter's
reply f(CtoS).  It does not send anything; the client puts CtoS in the AARQ
(calling-authentication-value), reads StoC from the AARE (responding-authentication-
value), sends f(StoC) with ``reply_to_HLS_authentication`` (Association LN
0.0.40.0.0.255 method 1, or Association SN method 8) and checks the returned f(CtoS).

DLMS UA Green Book 9.2.7.4 "HLS authentication mechanisms", IEC 62056-5-3::

    mechanism           f(StoC), computed by the client    f(CtoS), computed by the meter
    2 HIGH (manuf.)     AES-128-ECB(secret, StoC*)         AES-128-ECB(secret, CtoS*)
    3 HIGH_MD5          MD5(StoC || secret)                MD5(CtoS || secret)
    4 HIGH_SHA1         SHA-1(StoC || secret)              SHA-1(CtoS || secret)
    5 HIGH_GMAC         SC || IC || GMAC(SC || AK || StoC)  SC || IC' || GMAC(SC || AK || CtoS)
                        IV = ST-C || IC                    IV = ST-S || IC'
    6 HIGH_SHA256       SHA-256(secret || ST-C || ST-S || StoC || CtoS)
                                                           SHA-256(secret || ST-S || ST-C ||
                                                                   CtoS || StoC)
    7 HIGH_ECDSA        ECDSA(client key; ST-C || ST-S || StoC || CtoS)
                                                           ECDSA(meter key; ST-S || ST-C ||
                                                                 CtoS || StoC)

ST-C / ST-S are the client's and the meter's system titles (8 octets), SC = 0x10
(authentication only, suite 0), IC the sender's invocation counter (4 octets), the
GMAC tag 12 octets.  Mechanism 2 is "manufacturer specific" in the standard; the
scheme implemented is the widespread one (gurux ``GXSecure.secure`` for HIGH):
``StoC*`` is the challenge padded at its end with 0x00 to the next multiple of 16
octets (unchanged if already one), each 16-octet block enciphered independently with
the HLS secret as AES-128 key, and the reply is the whole padded result (16 octets for
an 8..16-octet challenge, not cut back to the challenge's length).  A secret shorter
than 16 octets is padded at its end with 0x00 to 16 (:func:`high_key`), as gurux does
(``GXSecure.secure`` copies the secret into a zeroed buffer of at least 16 octets and
keys AES with its first 16), so a short secret interoperates; a longer one is refused.
Mechanism 7 signs with ECDSA P-256/SHA-256 (security suite 1) or P-384/SHA-384
(suite 2); the signature is r || s, each left-padded to the curve size (64 or 96 octets).

Secrets are :class:`~dlmsd.secret.Secret` or ``bytes``; no message or repr made here
contains one.  A reply that does not verify raises
:class:`~dlmsd.protocol.security.AuthenticationFailure`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from dlmsd.errors import DecodeError, LocalProtocolError, RemoteProtocolError
from dlmsd.protocol.acse import MechanismName
from dlmsd.protocol.security import (
    SYSTEM_TITLE_SIZE,
    TAG_SIZE,
    AuthenticationFailure,
    Key,
    gmac,
    key_bytes,
)
from dlmsd.secret import Secret

# cryptography (about 8 MB of RSS) is imported by the functions that use it: a daemon
# whose meters use no HLS mechanism never loads it (issue 16).
if TYPE_CHECKING:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

__all__ = [
    "GMAC_REPLY_SIZE",
    "HIGH_KEY_SIZE",
    "HLS_MECHANISMS",
    "MAX_CHALLENGE",
    "MIN_CHALLENGE",
    "HlsKeys",
    "client_reply",
    "ec_private_key",
    "ec_public_key",
    "ecdsa_sign",
    "ecdsa_suite",
    "ecdsa_verify",
    "high_key",
    "hls_gmac",
    "hls_high",
    "hls_md5",
    "hls_sha1",
    "hls_sha256",
    "new_challenge",
    "verify_server_reply",
]

#: Green Book 9.2.7.4: CtoS and StoC are random strings of 8 to 64 octets.
MIN_CHALLENGE: Final = 8
MAX_CHALLENGE: Final = 64
#: SC 0x10: authentication only, security suite 0 (the only suite with HLS-GMAC here).
_GMAC_SC: Final = 0x10
GMAC_REPLY_SIZE: Final = 1 + 4 + TAG_SIZE
#: Mechanism 2's AES-128 key: a shorter HLS secret is zero-padded to it, a longer refused.
HIGH_KEY_SIZE: Final = 16
_HIGH_KEY: Final = "HLS secret (mechanism 2 needs an AES-128 key)"

HLS_MECHANISMS: Final = frozenset({
    MechanismName.HIGH, MechanismName.HIGH_MD5, MechanismName.HIGH_SHA1,
    MechanismName.HIGH_GMAC, MechanismName.HIGH_SHA256, MechanismName.HIGH_ECDSA,
})


def new_challenge(random: bytes) -> bytes:
    """CtoS from ``random`` (8..64 octets from a CSPRNG, e.g. ``os.urandom(16)``:
    16 is what every meter accepts; some Texas Instruments based ones accept only 16)."""
    _check_challenge(bytes(random), "client challenge CtoS", LocalProtocolError)
    return bytes(random)


def _check_challenge(value: bytes, what: str,
                     error: type[LocalProtocolError | RemoteProtocolError]) -> None:
    if not MIN_CHALLENGE <= len(value) <= MAX_CHALLENGE:
        raise error(f"{what} of {len(value)} bytes, the Green Book requires "
                    f"{MIN_CHALLENGE}..{MAX_CHALLENGE}")


def _secret(secret: Key, what: str = "HLS secret") -> bytes:
    if isinstance(secret, Secret):
        raw = secret.reveal()
    elif isinstance(secret, bytes | bytearray):
        raw = bytes(secret)
    else:
        raise LocalProtocolError(f"{what} must be a Secret or bytes, not {type(secret).__name__}")
    if not raw:
        raise LocalProtocolError(f"{what} is empty")
    return raw


def _title(value: bytes | None, what: str) -> bytes:
    if value is None or len(value) != SYSTEM_TITLE_SIZE:
        got = "none" if value is None else f"{len(value)} bytes"
        raise LocalProtocolError(f"{what} must be {SYSTEM_TITLE_SIZE} bytes, got {got}")
    return bytes(value)


def _digest(name: str, *parts: bytes) -> bytes:
    """``name`` (MD5, SHA1, SHA256): the digest of ``parts``."""
    from cryptography.hazmat.primitives import hashes

    context = hashes.Hash(getattr(hashes, name)())
    for part in parts:
        context.update(part)
    return context.finalize()


# =========================================================================== primitives
def high_key(secret: Key) -> bytes:
    """Mechanism 2's AES-128 key: the secret, zero-padded at its end to 16 octets when
    shorter (as gurux pads it); 1..16 octets, else :class:`LocalProtocolError` (which
    names the secret's length, never its value)."""
    raw = _secret(secret, _HIGH_KEY)
    if len(raw) > HIGH_KEY_SIZE:
        raise LocalProtocolError(f"{_HIGH_KEY} must be at most {HIGH_KEY_SIZE} bytes, "
                                 f"got {len(raw)}")
    return raw + bytes(HIGH_KEY_SIZE - len(raw))


def hls_high(secret: Key, challenge: bytes) -> bytes:
    """Mechanism 2: AES-128-ECB(secret zero-padded to 16, challenge zero-padded to a
    multiple of 16)."""
    key = high_key(secret)
    padded = bytes(challenge) + bytes(-len(challenge) % 16)
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    context = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return context.update(padded) + context.finalize()


def hls_md5(secret: Key, challenge: bytes) -> bytes:
    """Mechanism 3: MD5(challenge || secret)."""
    return _digest("MD5", bytes(challenge), _secret(secret))


def hls_sha1(secret: Key, challenge: bytes) -> bytes:
    """Mechanism 4: SHA-1(challenge || secret)."""
    return _digest("SHA1", bytes(challenge), _secret(secret))


def hls_sha256(secret: Key, *, own_system_title: bytes, peer_system_title: bytes,
               received_challenge: bytes, own_challenge: bytes) -> bytes:
    """Mechanism 6: SHA-256(secret || own ST || peer ST || received || own challenge).

    The client computes it with (ST-C, ST-S, StoC, CtoS), the meter with
    (ST-S, ST-C, CtoS, StoC).
    """
    return _digest("SHA256", _secret(secret),
                   _title(own_system_title, "own system title"),
                   _title(peer_system_title, "peer system title"),
                   bytes(received_challenge), bytes(own_challenge))


def hls_gmac(challenge: bytes, *, system_title: bytes, invocation_counter: int,
             block_cipher_key: Key, authentication_key: Key) -> bytes:
    """Mechanism 5: SC || IC || GMAC(SC || AK || challenge), IV = own ST || IC, SC 0x10."""
    auth_key = key_bytes(authentication_key, "authentication key")
    # gmac() checks the counter's range before it is packed below.
    tag = gmac(block_cipher_key, _title(system_title, "system title"), invocation_counter,
               bytes((_GMAC_SC,)) + auth_key + bytes(challenge))
    return bytes((_GMAC_SC,)) + invocation_counter.to_bytes(4, "big") + tag


#: The curves of ECDSA and the size of their scalars: P-256 (security suite 1, hashed
#: with SHA-256) and P-384 (suite 2, SHA-384).
_CURVE_SIZES: Final[dict[str, int]] = {"secp256r1": 32, "secp384r1": 48}


def _curve_of_size(size: int) -> ec.EllipticCurve | None:
    from cryptography.hazmat.primitives.asymmetric import ec

    curve = {32: ec.SECP256R1, 48: ec.SECP384R1}.get(size)
    return None if curve is None else curve()


def ec_private_key(scalar: Key) -> ec.EllipticCurvePrivateKey:
    """The signing key from its private scalar: 32 octets P-256, 48 octets P-384."""
    from cryptography.hazmat.primitives.asymmetric import ec

    raw = _secret(scalar, "ECDSA private key")
    curve = _curve_of_size(len(raw))
    if curve is None:
        raise LocalProtocolError(f"ECDSA private key of {len(raw)} bytes: 32 (P-256) or "
                                 "48 (P-384) expected")
    try:
        return ec.derive_private_key(int.from_bytes(raw, "big"), curve)
    except ValueError:
        raise LocalProtocolError("ECDSA private key: the scalar is out of range") from None


def ec_public_key(point: bytes) -> ec.EllipticCurvePublicKey:
    """A public key from its X9.62 uncompressed point: 65 octets P-256, 97 P-384."""
    from cryptography.hazmat.primitives.asymmetric import ec

    curve = _curve_of_size((len(point) - 1) // 2)
    if curve is None or len(point) % 2 == 0 or point[:1] != b"\x04":
        raise LocalProtocolError(f"ECDSA public key of {len(point)} bytes is not an "
                                 "uncompressed P-256 or P-384 point")
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(curve, bytes(point))
    except ValueError:
        raise LocalProtocolError("ECDSA public key: the point is not on the curve") from None


def ecdsa_suite(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> int:
    """The security suite of a key's curve: 1 (P-256) or 2 (P-384)."""
    return 1 if _curve(key)[1] == 32 else 2


def _curve(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey,
           ) -> tuple[hashes.HashAlgorithm, int]:
    from cryptography.hazmat.primitives import hashes

    size = _CURVE_SIZES.get(key.curve.name)
    if size is None:
        raise LocalProtocolError(f"ECDSA curve {key.curve.name} is not P-256 (suite 1) or "
                                 "P-384 (suite 2)")
    return (hashes.SHA256() if size == 32 else hashes.SHA384()), size


def _ecdsa_data(own_system_title: bytes, peer_system_title: bytes,
                received_challenge: bytes, own_challenge: bytes) -> bytes:
    return (_title(own_system_title, "own system title")
            + _title(peer_system_title, "peer system title")
            + bytes(received_challenge) + bytes(own_challenge))


def ecdsa_sign(private_key: ec.EllipticCurvePrivateKey, *, own_system_title: bytes,
               peer_system_title: bytes, received_challenge: bytes,
               own_challenge: bytes) -> bytes:
    """Mechanism 7: the signature r || s over own ST || peer ST || received || own."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    algorithm, size = _curve(private_key)
    data = _ecdsa_data(own_system_title, peer_system_title, received_challenge, own_challenge)
    r, s = decode_dss_signature(private_key.sign(data, ec.ECDSA(algorithm)))
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def ecdsa_verify(public_key: ec.EllipticCurvePublicKey, signature: bytes, *,
                 signer_system_title: bytes, other_system_title: bytes,
                 challenge_to_signer: bytes, signer_challenge: bytes) -> bool:
    """Whether ``signature`` (r || s) is the signer's over
    signer ST || other ST || challenge it received || challenge it sent."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    algorithm, size = _curve(public_key)
    if len(signature) != 2 * size:
        return False
    r = int.from_bytes(signature[:size], "big")
    s = int.from_bytes(signature[size:], "big")
    data = _ecdsa_data(signer_system_title, other_system_title, challenge_to_signer,
                       signer_challenge)
    try:
        public_key.verify(encode_dss_signature(r, s), data, ec.ECDSA(algorithm))
    except InvalidSignature:
        return False
    return True


# =========================================================================== client side
@dataclass(frozen=True)
class HlsKeys:
    """What the client holds for one HLS mechanism.

    ``secret``: the HLS secret (mechanisms 2, 3, 4, 6; 1..16 octets for 2, zero-padded
    to 16 by :func:`high_key`).
    ``system_title``: the client's (5, 6, 7).  ``block_cipher_key`` and
    ``authentication_key``: the global keys (5).  ``signing_key``: the client's
    private key and ``server_public_key`` the meter's signing public key (7).
    """

    mechanism: MechanismName
    secret: Key | None = field(default=None, repr=False)
    system_title: bytes | None = None
    block_cipher_key: Key | None = field(default=None, repr=False)
    authentication_key: Key | None = field(default=None, repr=False)
    signing_key: ec.EllipticCurvePrivateKey | None = field(default=None, repr=False)
    server_public_key: ec.EllipticCurvePublicKey | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        mechanism = self.mechanism
        if mechanism not in HLS_MECHANISMS:
            raise LocalProtocolError(f"{MechanismName(mechanism).label} is not an HLS "
                                     "mechanism (2..7)")
        label = mechanism.label
        if mechanism in (MechanismName.HIGH, MechanismName.HIGH_MD5, MechanismName.HIGH_SHA1,
                         MechanismName.HIGH_SHA256):
            if self.secret is None:
                raise LocalProtocolError(f"{label} needs the HLS secret")
            if mechanism is MechanismName.HIGH:
                high_key(self.secret)
            else:
                _secret(self.secret)
        if mechanism in (MechanismName.HIGH_GMAC, MechanismName.HIGH_SHA256,
                         MechanismName.HIGH_ECDSA):
            _title(self.system_title, f"{label}: the client system title")
        if mechanism is MechanismName.HIGH_GMAC:
            if self.block_cipher_key is None or self.authentication_key is None:
                raise LocalProtocolError(f"{label} needs the block cipher and authentication "
                                         "keys")
            key_bytes(self.block_cipher_key, "block cipher key")
            key_bytes(self.authentication_key, "authentication key")
        if mechanism is MechanismName.HIGH_ECDSA:
            if self.signing_key is None or self.server_public_key is None:
                raise LocalProtocolError(f"{label} needs the client's signing key and the "
                                         "meter's public key")
            if _curve(self.signing_key) != _curve(self.server_public_key):
                raise LocalProtocolError(f"{label}: client and meter keys are on different "
                                         "curves")

    def __repr__(self) -> str:
        title = "" if self.system_title is None else f", system_title={self.system_title.hex()}"
        return f"HlsKeys({self.mechanism.label}{title})"


def client_reply(keys: HlsKeys, *, stoc: bytes, ctos: bytes,
                 server_system_title: bytes | None = None,
                 invocation_counter: int | None = None) -> bytes:
    """f(StoC), the client's pass-3 reply.

    ``server_system_title`` (from the AARE responding-AP-title) is needed by
    mechanisms 6 and 7; ``invocation_counter`` by mechanism 5 (take it from the
    client's :class:`~dlmsd.counters.CounterStore`: it is the same counter as
    ciphering uses with these keys).
    """
    stoc, ctos = bytes(stoc), bytes(ctos)
    _check_challenge(stoc, "meter challenge StoC", DecodeError)
    _check_challenge(ctos, "client challenge CtoS", LocalProtocolError)
    mechanism = keys.mechanism
    if mechanism is MechanismName.HIGH_GMAC:
        if invocation_counter is None:
            raise LocalProtocolError("high-gmac needs the client's invocation counter")
        assert keys.block_cipher_key is not None and keys.authentication_key is not None
        return hls_gmac(stoc, system_title=_title(keys.system_title, "client system title"),
                        invocation_counter=invocation_counter,
                        block_cipher_key=keys.block_cipher_key,
                        authentication_key=keys.authentication_key)
    if mechanism is MechanismName.HIGH_ECDSA:
        assert keys.signing_key is not None
        return ecdsa_sign(keys.signing_key,
                          own_system_title=_title(keys.system_title, "client system title"),
                          peer_system_title=_title(server_system_title, "meter system title"),
                          received_challenge=stoc, own_challenge=ctos)
    assert keys.secret is not None
    if mechanism is MechanismName.HIGH_SHA256:
        return hls_sha256(keys.secret,
                          own_system_title=_title(keys.system_title, "client system title"),
                          peer_system_title=_title(server_system_title, "meter system title"),
                          received_challenge=stoc, own_challenge=ctos)
    return _SYMMETRIC[mechanism](keys.secret, stoc)


_SYMMETRIC: Final = {
    MechanismName.HIGH: hls_high,
    MechanismName.HIGH_MD5: hls_md5,
    MechanismName.HIGH_SHA1: hls_sha1,
}


def verify_server_reply(keys: HlsKeys, reply: bytes, *, stoc: bytes, ctos: bytes,
                        server_system_title: bytes | None = None) -> int | None:
    """Check the meter's pass-4 reply f(CtoS).

    Returns the meter's invocation counter for mechanism 5 (feed it to the replay
    check), else None.  Raises :class:`AuthenticationFailure` when it does not match,
    :class:`DecodeError` when it cannot be a reply of this mechanism at all.
    """
    reply, stoc, ctos = bytes(reply), bytes(stoc), bytes(ctos)
    mechanism = keys.mechanism
    label = mechanism.label
    counter: int | None = None
    if mechanism is MechanismName.HIGH_ECDSA:
        assert keys.server_public_key is not None
        _, size = _curve(keys.server_public_key)
        if len(reply) != 2 * size:
            raise DecodeError(f"{label}: f(CtoS) of {len(reply)} bytes, expected an ECDSA "
                              f"signature of {2 * size}")
        ok = ecdsa_verify(keys.server_public_key, reply,
                          signer_system_title=_title(server_system_title, "meter system title"),
                          other_system_title=_title(keys.system_title, "client system title"),
                          challenge_to_signer=ctos, signer_challenge=stoc)
    else:
        if mechanism is MechanismName.HIGH_GMAC:
            if len(reply) != GMAC_REPLY_SIZE or reply[0] != _GMAC_SC:
                raise DecodeError(f"{label}: f(CtoS) must be SC 0x10 || IC || 12-byte tag "
                                  f"({GMAC_REPLY_SIZE} bytes), got {len(reply)} bytes"
                                  + (f" with SC 0x{reply[0]:02X}" if reply else ""))
            counter = int.from_bytes(reply[1:5], "big")
            assert keys.block_cipher_key is not None and keys.authentication_key is not None
            expected = hls_gmac(ctos,
                                system_title=_title(server_system_title, "meter system title"),
                                invocation_counter=counter,
                                block_cipher_key=keys.block_cipher_key,
                                authentication_key=keys.authentication_key)
        elif mechanism is MechanismName.HIGH_SHA256:
            assert keys.secret is not None
            expected = hls_sha256(
                keys.secret,
                own_system_title=_title(server_system_title, "meter system title"),
                peer_system_title=_title(keys.system_title, "client system title"),
                received_challenge=ctos, own_challenge=stoc)
        else:
            assert keys.secret is not None
            expected = _SYMMETRIC[mechanism](keys.secret, ctos)
        import hmac  # here (it imports hashlib): only HLS associations verify

        ok = hmac.compare_digest(expected, reply)
    if not ok:
        raise AuthenticationFailure(
            f"{label}: the meter's reply f(CtoS) does not match: it does not hold the same "
            "HLS secret or keys, or is not the meter it claims to be")
    return counter
