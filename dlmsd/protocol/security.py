"""Cryptographic protection of xDLMS APDUs, security suite 0 (pure, sans-I/O).

This module owns the security control byte, the security header, glo-/ded-ciphering
and general-glo-/general-ded-ciphering of xDLMS APDUs with AES-GCM-128, the mapping
between plain and ciphered APDU tags, and :func:`describe` for traces.  HLS
authentication (mechanisms 2..7) lives in :mod:`dlmsd.protocol.security_hls`.

DLMS UA Green Book (DLMS UA 1000-2) 9.2.7.2, IEC 62056-5-3 "cryptographic protection
of xDLMS APDUs"::

    ciphered APDU    = tag || length || SH || payload         (glo-*/ded-*)
                     = DB|DC || length || system-title || length || SH || payload
    SH               = SC || IC                  security header; IC is Unsigned32
    SC (1 octet)     = bits 0-3 security suite id, bit 4 authentication,
                       bit 5 encryption, bit 6 broadcast key, bit 7 compression
    IV (12 octets)   = system title of the sender (8) || IC (4)
    SC 0x10  authentication only:  payload = P || T,  T = GMAC(SC || AK || P)
    SC 0x20  encryption only:      payload = C         (no integrity at all)
    SC 0x30  both:                 payload = C || T,  AAD = SC || AK
    T is the GCM tag truncated to 12 octets.

``protect`` uses the *sender's* system title (ours), ``unprotect`` the *meter's* (from
the AARE responding-AP-title, or carried in a general-glo-ciphering APDU).

Which key: ded-* and general-ded-ciphering use the dedicated key, an SC with the
broadcast bit the broadcast key, everything else the global unicast block cipher key.

Keys are :class:`~dlmsd.secret.Secret` or ``bytes``; no message, repr or trace line made
here contains a key.  Decoding raises :class:`DecodeError`; a failed tag check raises
:class:`AuthenticationFailure` ("authentication tag mismatch"); both are
:class:`RemoteProtocolError`.  Misuse by the caller raises :class:`LocalProtocolError`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from dlmsd.errors import DecodeError, LocalProtocolError, RemoteProtocolError
from dlmsd.protocol.axdr import AxdrReader, encode_length
from dlmsd.secret import Secret

#: Invocation counters are Unsigned32 (Green Book 9.2.7.2.4.4).
MAX_COUNTER: Final = 0xFFFFFFFF

__all__ = [
    "AUTHENTICATED_ENCRYPTION",
    "AUTHENTICATION_ONLY",
    "ENCRYPTION_ONLY",
    "GENERAL_DED_CIPHERING",
    "GENERAL_GLO_CIPHERING",
    "MAX_APDU_SIZE",
    "MAX_COUNTER",
    "SYSTEM_TITLE_SIZE",
    "TAG_SIZE",
    "AuthenticationFailure",
    "Key",
    "SecurityControl",
    "SecurityHeader",
    "ciphered_tag",
    "describe",
    "gmac",
    "is_ciphered",
    "is_dedicated",
    "key_bytes",
    "plain_tag",
    "protect",
    "tag_name",
    "unprotect",
]

#: A key as the caller holds it.
Key = Secret | bytes

#: DLMS/COSEM keeps the first 12 octets of the GCM tag (Green Book 9.2.7.2).
TAG_SIZE: Final = 12
SYSTEM_TITLE_SIZE: Final = 8
#: Security suite 0: AES-GCM-128 (HLS-GMAC).
SUITE_0: Final = 0
#: The suites whose APDU ciphering this module implements, by key size (Green Book
#: 9.2.3.7 "Security suite"): 0 AES-GCM-128; 1 ECDH-ECDSA-AES-GCM-128-SHA-256 and
#: 2 ECDH-ECDSA-AES-GCM-256-SHA-384, whose glo- and ded-ciphering is the same GCM
#: construction with the suite's key size.  Their key agreement is not implemented.
SUITE_KEY_SIZES: Final = {0: 16, 1: 16, 2: 32}
_KEY_SIZE: Final = 16
#: Upper bound of a plain or ciphered APDU handled here (a GET answered with
#: general-block-transfer can be larger than one PDU; 1 MiB bounds the work).
MAX_APDU_SIZE: Final = 1 << 20

_IC: Final = struct.Struct(">I")
_HEADER_SIZE: Final = 1 + _IC.size  # SC || IC


class AuthenticationFailure(RemoteProtocolError):
    """A GCM tag or an HLS reply did not verify: the peer does not hold our key, or
    the bytes were changed on the way.  Never carries a key."""


# =========================================================================== keys
def key_bytes(key: Key, name: str, size: int = _KEY_SIZE) -> bytes:
    """The bytes of ``key`` after checking its length; errors name the key, not its value."""
    if isinstance(key, Secret):
        raw = key.reveal()
    elif isinstance(key, bytes | bytearray | memoryview):
        raw = bytes(key)
    else:
        raise LocalProtocolError(f"{name} must be a Secret or bytes, not {type(key).__name__}")
    if len(raw) != size:
        raise LocalProtocolError(f"{name} must be {size} bytes, got {len(raw)}")
    return raw


def _system_title(value: bytes, what: str) -> bytes:
    if not isinstance(value, bytes | bytearray) or len(value) != SYSTEM_TITLE_SIZE:
        size = len(value) if isinstance(value, bytes | bytearray) else type(value).__name__
        raise LocalProtocolError(f"{what} must be {SYSTEM_TITLE_SIZE} bytes, got {size}")
    return bytes(value)


def _check_counter(value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNTER:
        raise LocalProtocolError(f"invocation counter {value!r} outside 0..2**32-1")


# =========================================================================== SC
# Green Book 9.2.7.2, the security control byte of the security header:
#   bits 0-3 Security_Suite_Id, bit 4 "A" authentication, bit 5 "E" encryption,
#   bit 6 Key_Set (0 unicast, 1 broadcast), bit 7 compression.
@dataclass(frozen=True)
class SecurityControl:
    """The security control byte.  ``int(sc)`` / :meth:`to_byte` is its wire value."""

    suite: int = SUITE_0
    authentication: bool = False
    encryption: bool = False
    broadcast: bool = False
    compression: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.suite, bool) or not 0 <= self.suite <= 15:
            raise LocalProtocolError(f"security suite {self.suite!r} outside 0..15")

    @classmethod
    def from_byte(cls, value: int) -> SecurityControl:
        if isinstance(value, bool) or not 0 <= value <= 0xFF:
            raise LocalProtocolError(f"security control byte {value!r} outside 0..255")
        return cls(value & 0x0F, bool(value & 0x10), bool(value & 0x20),
                   bool(value & 0x40), bool(value & 0x80))

    @classmethod
    def of(cls, value: SecurityControl | int) -> SecurityControl:
        return value if isinstance(value, SecurityControl) else cls.from_byte(value)

    def to_byte(self) -> int:
        return (self.suite | (0x10 if self.authentication else 0)
                | (0x20 if self.encryption else 0) | (0x40 if self.broadcast else 0)
                | (0x80 if self.compression else 0))

    def __int__(self) -> int:
        return self.to_byte()

    @property
    def label(self) -> str:
        """``authenticated``, ``encrypted``, ``authenticated+encrypted`` or ``none``."""
        parts = [name for name, on in (("authenticated", self.authentication),
                                       ("encrypted", self.encryption)) if on]
        return "+".join(parts) or "none"

    def describe(self) -> str:
        return f"0x{self.to_byte():02X}"


AUTHENTICATION_ONLY: Final = SecurityControl(authentication=True)  # 0x10
ENCRYPTION_ONLY: Final = SecurityControl(encryption=True)  # 0x20
AUTHENTICATED_ENCRYPTION: Final = SecurityControl(authentication=True, encryption=True)  # 0x30


# =========================================================================== tags
# Green Book, xDLMS-APDU CHOICE: the global ciphered APDUs ([33] glo-initiateRequest ..
# [207] glo-action-response) and the dedicated ones ([65] .. [215]), with the plain
# APDU each one carries.  Plain tags 0x01..0x18 map to +0x20 (glo) / +0x40 (ded),
# the LN services 0xC0..0xC7 to +0x08 / +0x10.
_SERVICES: Final[tuple[tuple[int, int, int, str], ...]] = (
    # plain, glo, ded, name of the plain APDU
    (0x01, 0x21, 0x41, "initiate-request"),
    (0x05, 0x25, 0x45, "read-request"),
    (0x06, 0x26, 0x46, "write-request"),
    (0x08, 0x28, 0x48, "initiate-response"),
    (0x0C, 0x2C, 0x4C, "read-response"),
    (0x0D, 0x2D, 0x4D, "write-response"),
    (0x0E, 0x2E, 0x4E, "confirmed-service-error"),
    (0x16, 0x36, 0x56, "unconfirmed-write-request"),
    (0x18, 0x38, 0x58, "information-report-request"),
    (0xC0, 0xC8, 0xD0, "get-request"),
    (0xC1, 0xC9, 0xD1, "set-request"),
    (0xC2, 0xCA, 0xD2, "event-notification-request"),
    (0xC3, 0xCB, 0xD3, "action-request"),
    (0xC4, 0xCC, 0xD4, "get-response"),
    (0xC5, 0xCD, 0xD5, "set-response"),
    (0xC7, 0xCF, 0xD7, "action-response"),
)
#: general-glo-ciphering ::= SEQUENCE { system-title OCTET STRING,
#:   ciphered-content OCTET STRING } (and general-ded-ciphering alike).
GENERAL_GLO_CIPHERING: Final = 0xDB
GENERAL_DED_CIPHERING: Final = 0xDC

_GLO: Final = {plain: glo for plain, glo, _, _ in _SERVICES}
_DED: Final = {plain: ded for plain, _, ded, _ in _SERVICES}
_PLAIN: Final = {**{glo: plain for plain, glo, _, _ in _SERVICES},
                 **{ded: plain for plain, _, ded, _ in _SERVICES}}
_GENERAL: Final = frozenset({GENERAL_GLO_CIPHERING, GENERAL_DED_CIPHERING})
_DEDICATED_TAGS: Final = frozenset({*_DED.values(), GENERAL_DED_CIPHERING})
_NAMES: Final = {
    **{plain: name for plain, _, _, name in _SERVICES},
    **{glo: f"glo-{name}" for _, glo, _, name in _SERVICES},
    **{ded: f"ded-{name}" for _, _, ded, name in _SERVICES},
    GENERAL_GLO_CIPHERING: "general-glo-ciphering",
    GENERAL_DED_CIPHERING: "general-ded-ciphering",
}


def ciphered_tag(plain: int, *, dedicated: bool = False) -> int:
    """The glo- (or ded-) tag that carries a plain APDU with tag ``plain``."""
    table = _DED if dedicated else _GLO
    try:
        return table[plain]
    except KeyError:
        kind = "ded" if dedicated else "glo"
        raise LocalProtocolError(
            f"APDU tag 0x{plain:02X} has no {kind}-ciphered form") from None


def plain_tag(ciphered: int) -> int:
    """The tag of the plain APDU a glo-/ded- APDU carries (``0xC8`` -> ``0xC0``)."""
    try:
        return _PLAIN[ciphered]
    except KeyError:
        raise DecodeError(f"0x{ciphered:02X} is not a glo- or ded-ciphered APDU tag") from None


def tag_name(tag: int) -> str:
    """``glo-get-request`` for 0xC8; ``tag 0x42`` for tags not listed here."""
    return _NAMES.get(tag, f"tag 0x{tag:02X}")


def is_ciphered(apdu: bytes) -> bool:
    """Whether ``apdu`` starts with a tag :func:`unprotect` handles."""
    return bool(apdu) and (apdu[0] in _PLAIN or apdu[0] in _GENERAL)


def is_dedicated(apdu: bytes) -> bool:
    """Whether ``apdu`` is ded- or general-ded-ciphered (with the dedicated key)."""
    return bool(apdu) and apdu[0] in _DEDICATED_TAGS


# =========================================================================== AES-GCM
def _iv(system_title: bytes, invocation_counter: int) -> bytes:
    return system_title + _IC.pack(invocation_counter)


# cryptography (about 8 MB of RSS) is imported where it is used: a daemon without a
# ciphered meter never loads it (issue 16).
def _gcm_encrypt(key: bytes, iv: bytes, aad: bytes, plaintext: bytes) -> tuple[bytes, bytes]:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    encryptor = Cipher(algorithms.AES(key), modes.GCM(iv)).encryptor()
    encryptor.authenticate_additional_data(aad)
    ciphertext = encryptor.update(plaintext) + encryptor.finalize()
    return ciphertext, encryptor.tag[:TAG_SIZE]


def _gcm_decrypt(key: bytes, iv: bytes, aad: bytes, ciphertext: bytes, tag: bytes,
                 what: str) -> bytes:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    decryptor = Cipher(algorithms.AES(key),
                       modes.GCM(iv, tag, min_tag_length=TAG_SIZE)).decryptor()
    decryptor.authenticate_additional_data(aad)
    plaintext = decryptor.update(ciphertext)
    try:
        return plaintext + decryptor.finalize()
    except InvalidTag:
        raise AuthenticationFailure(
            f"{what}: authentication tag mismatch (wrong key or system title, or the "
            "APDU was altered)") from None


def _ctr(key: bytes, iv: bytes, data: bytes) -> bytes:
    # Encryption only: GCM without the tag is AES-CTR whose first counter block is
    # inc32(J0) = IV || 00000002 (NIST SP 800-38D, 7.1).  CTR here carries into the
    # upper 96 bits only after 2**32 - 2 blocks, far beyond MAX_APDU_SIZE.
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    context = Cipher(algorithms.AES(key), modes.CTR(iv + b"\x00\x00\x00\x02")).encryptor()
    return context.update(data) + context.finalize()


def gmac(key: Key, system_title: bytes, invocation_counter: int, data: bytes) -> bytes:
    """GMAC (GCM with empty plaintext) over ``data``, IV = system title || IC; 12 octets.

    Used for authentication-only ciphering and HLS mechanism 5.
    """
    raw = key_bytes(key, "block cipher key")
    title = _system_title(system_title, "system title")
    _check_counter(invocation_counter)
    return _gcm_encrypt(raw, _iv(title, invocation_counter), data, b"")[1]


# =========================================================================== header
@dataclass(frozen=True)
class SecurityHeader:
    """What :func:`unprotect` read around the payload.

    ``system_title`` is the one used in the IV: carried by general-glo/ded-ciphering,
    else the one the caller passed.  After a successful :func:`unprotect`, feed
    ``invocation_counter`` to the replay check (:meth:`dlmsd.counters.CounterStore.
    check_received`).
    """

    tag: int
    security_control: SecurityControl
    invocation_counter: int
    system_title: bytes

    @property
    def name(self) -> str:
        return tag_name(self.tag)

    @property
    def dedicated(self) -> bool:
        return self.tag in _DEDICATED_TAGS

    def describe(self) -> str:
        """E.g. ``glo-get-response SC=0x30 IC=42``."""
        title = (f" ST={self.system_title.hex().upper()}" if self.tag in _GENERAL else "")
        return (f"{self.name}{title} SC={self.security_control.describe()} "
                f"IC={self.invocation_counter}")


def _suite_key(key: Key, name: str, sc: SecurityControl,
               error: type[LocalProtocolError | RemoteProtocolError]) -> bytes:
    """``key`` checked against the size of the suite the SC names; received APDUs
    (``error`` RemoteProtocolError) that name another suite are the peer's error."""
    size = SUITE_KEY_SIZES[sc.suite]
    if not isinstance(key, Secret | bytes | bytearray | memoryview):
        key_bytes(key, name)  # raises: names the wrong type
    raw = key.reveal() if isinstance(key, Secret) else bytes(key)
    if len(raw) != size:
        raise error(f"{name} must be {size} bytes for security suite {sc.suite}, got "
                    f"{len(raw)}")
    return raw


def _select_key(tag: int, sc: SecurityControl, block_cipher_key: Key | None,
                dedicated_key: Key | None, broadcast_key: Key | None,
                missing: type[LocalProtocolError | RemoteProtocolError]) -> bytes:
    name = tag_name(tag)
    if tag in _DEDICATED_TAGS:
        if sc.broadcast:
            raise missing(f"{name}: SC 0x{sc.to_byte():02X} asks for the broadcast key, "
                          "but a dedicated APDU uses the dedicated key")
        if dedicated_key is None:
            raise missing(f"{name} needs the dedicated key, and none is in use")
        return _suite_key(dedicated_key, "dedicated key", sc, missing)
    if sc.broadcast:
        if broadcast_key is None:
            raise missing(f"{name}: SC 0x{sc.to_byte():02X} asks for the broadcast key, "
                          "and none is configured")
        return _suite_key(broadcast_key, "broadcast key", sc, missing)
    if block_cipher_key is None:
        raise LocalProtocolError(f"{name} needs the global block cipher key, and none is "
                                 "configured")
    return _suite_key(block_cipher_key, "block cipher key", sc, missing)


def _authentication_key(sc: SecurityControl, key: Key | None, name: str,
                        error: type[LocalProtocolError | RemoteProtocolError]) -> bytes:
    if not sc.authentication:
        return b""
    if key is None:
        raise LocalProtocolError(f"{name}: SC 0x{sc.to_byte():02X} needs the authentication "
                                 "key, and none is configured")
    return _suite_key(key, "authentication key", sc, error)


def _check_control(sc: SecurityControl, name: str,
                   error: type[LocalProtocolError | DecodeError]) -> None:
    """What both directions refuse in a security control byte: an unknown suite,
    compression, no protection at all."""
    if sc.suite not in SUITE_KEY_SIZES:
        raise error(f"{name}: security suite {sc.suite} is not supported (suites 0, 1 and 2)")
    if sc.compression:
        raise error(f"{name}: compression (SC bit 7) is not supported")
    if not (sc.authentication or sc.encryption):
        raise error(f"{name}: SC 0x{sc.to_byte():02X} applies no protection")


# =========================================================================== protect
def protect(
    apdu: bytes,
    *,
    security_control: SecurityControl | int,
    system_title: bytes,
    invocation_counter: int,
    block_cipher_key: Key | None = None,
    authentication_key: Key | None = None,
    tag: int | None = None,
    dedicated_key: Key | None = None,
    broadcast_key: Key | None = None,
    max_size: int = MAX_APDU_SIZE,
    dedicated: bool = False,
) -> bytes:
    """Cipher one plain xDLMS APDU; returns the whole ciphered APDU.

    ``tag`` chooses the form: None for the glo- tag of the plain APDU (0xC0 ->
    0xC8; with ``dedicated``, its ded- tag 0xD0 and the dedicated key),
    ``ciphered_tag(apdu[0], dedicated=True)`` for ded-, or
    :data:`GENERAL_GLO_CIPHERING` / :data:`GENERAL_DED_CIPHERING`.  ``system_title``
    is the sender's (ours); ``invocation_counter`` must never have been used with
    this key before (take it from :class:`dlmsd.counters.CounterStore`).
    """
    sc = SecurityControl.of(security_control)
    plain = bytes(apdu)
    if not plain:
        raise LocalProtocolError("cannot protect an empty APDU")
    if len(plain) > max_size:
        raise LocalProtocolError(f"APDU of {len(plain)} bytes exceeds {max_size}")
    ciphered = ciphered_tag(plain[0], dedicated=dedicated) if tag is None else tag
    if ciphered in _PLAIN:
        if _PLAIN[ciphered] != plain[0]:
            raise LocalProtocolError(
                f"{tag_name(ciphered)} cannot carry a {tag_name(plain[0])} "
                f"(tag 0x{plain[0]:02X})")
    elif ciphered not in _GENERAL:
        raise LocalProtocolError(f"0x{ciphered:02X} is not a ciphered APDU tag")
    name = tag_name(ciphered)
    _check_control(sc, name, LocalProtocolError)
    title = _system_title(system_title, "system title")
    _check_counter(invocation_counter)
    key = _select_key(ciphered, sc, block_cipher_key, dedicated_key, broadcast_key,
                      LocalProtocolError)
    auth_key = _authentication_key(sc, authentication_key, name, LocalProtocolError)

    header = bytes((sc.to_byte(),)) + _IC.pack(invocation_counter)
    iv = _iv(title, invocation_counter)
    if sc.authentication and sc.encryption:
        body, mac = _gcm_encrypt(key, iv, header[:1] + auth_key, plain)
        content = header + body + mac
    elif sc.authentication:
        content = header + plain + _gcm_encrypt(key, iv, header[:1] + auth_key + plain, b"")[1]
    else:
        content = header + _ctr(key, iv, plain)
    out = bytes((ciphered,))
    if ciphered in _GENERAL:
        out += encode_length(len(title)) + title
    return out + encode_length(len(content)) + content


# =========================================================================== unprotect
def _parse(apdu: bytes, max_size: int) -> tuple[int, bytes | None, SecurityControl, int, bytes]:
    """Split a ciphered APDU: ``(tag, carried system title, SC, IC, payload)``."""
    r = AxdrReader(bytes(apdu), 0, "ciphered APDU")
    tag = r.u8("tag")
    if tag not in _PLAIN and tag not in _GENERAL:
        raise DecodeError(f"ciphered APDU: 0x{tag:02X} is not a ciphered APDU tag")
    r.what = tag_name(tag)
    title: bytes | None = None
    if tag in _GENERAL:
        title = r.octet_string("system-title")
        if title and len(title) != SYSTEM_TITLE_SIZE:
            raise DecodeError(f"{r.what}: system-title of {len(title)} bytes "
                              f"(expected {SYSTEM_TITLE_SIZE})")
    size = r.length("ciphered content length")
    if size > max_size:
        raise DecodeError(f"{r.what}: ciphered content of {size} bytes exceeds {max_size}")
    if size != r.remaining:
        raise DecodeError(f"{r.what}: length {size} but {r.remaining} bytes follow")
    sc = SecurityControl.from_byte(r.u8("security control"))
    counter = r.u32("invocation counter")
    return tag, title or None, sc, counter, r.take(r.remaining, "payload")


def unprotect(
    apdu: bytes,
    *,
    system_title: bytes | None,
    block_cipher_key: Key | None = None,
    authentication_key: Key | None = None,
    dedicated_key: Key | None = None,
    broadcast_key: Key | None = None,
    require: SecurityControl | int | None = None,
    max_size: int = MAX_APDU_SIZE,
) -> tuple[bytes, SecurityHeader]:
    """Check and decipher one ciphered APDU; returns ``(plain APDU, header)``.

    ``system_title`` is the sender's (the meter's); general-glo/ded-ciphering carry
    their own, which must then equal it when both are known.  ``require`` (e.g.
    :data:`AUTHENTICATED_ENCRYPTION`) rejects an APDU that lacks authentication or
    encryption the security policy asks for.  Raises :class:`DecodeError` for
    malformed input, :class:`AuthenticationFailure` when the tag does not verify,
    :class:`RemoteProtocolError` for a policy or system title mismatch.
    """
    tag, carried_title, sc, counter, payload = _parse(apdu, max_size)
    name = tag_name(tag)
    _check_control(sc, name, DecodeError)
    if require is not None:
        needed = SecurityControl.of(require)
        if (needed.authentication and not sc.authentication) or (
                needed.encryption and not sc.encryption):
            raise RemoteProtocolError(
                f"{name} protected {sc.label} (SC=0x{sc.to_byte():02X}), the security "
                f"policy requires {needed.label}", code=sc.to_byte())
    if carried_title is not None and system_title is not None and (
            carried_title != bytes(system_title)):
        raise RemoteProtocolError(
            f"{name} from system title {carried_title.hex().upper()}, expected "
            f"{bytes(system_title).hex().upper()}")
    if carried_title is not None:
        title = carried_title
    elif system_title is None:
        raise LocalProtocolError(f"{name}: the sender's system title is not known")
    else:
        title = _system_title(system_title, "system title")
    key = _select_key(tag, sc, block_cipher_key, dedicated_key, broadcast_key,
                      RemoteProtocolError)
    auth_key = _authentication_key(sc, authentication_key, name, RemoteProtocolError)

    iv = _iv(title, counter)
    if sc.authentication:
        if len(payload) < TAG_SIZE:
            raise DecodeError(f"{name}: {len(payload)} bytes after the security header, "
                              f"shorter than the {TAG_SIZE}-byte tag")
        body, mac = payload[:-TAG_SIZE], payload[-TAG_SIZE:]
        if sc.encryption:
            plain = _gcm_decrypt(key, iv, bytes((sc.to_byte(),)) + auth_key, body, mac, name)
        else:
            _gcm_decrypt(key, iv, bytes((sc.to_byte(),)) + auth_key + body, b"", mac, name)
            plain = body
    else:
        plain = _ctr(key, iv, payload)
    if not plain:
        raise DecodeError(f"{name}: empty APDU inside")
    expected = _PLAIN.get(tag)
    if expected is not None and plain[0] != expected:
        raise DecodeError(f"{name} carries a {tag_name(plain[0])} (tag 0x{plain[0]:02X}), "
                          f"expected a {tag_name(expected)}")
    return plain, SecurityHeader(tag, sc, counter, title)


# =========================================================================== traces
def describe(apdu: bytes) -> str:
    """One line for traces, e.g. ``glo-get-request SC=0x30 IC=42 ciphered 13 bytes``.

    Reads only the clear header: never needs or shows a key, and never raises.
    """
    try:
        tag, title, sc, counter, payload = _parse(apdu, MAX_APDU_SIZE)
    except (DecodeError, LocalProtocolError) as exc:
        return f"undecodable ciphered APDU ({len(apdu)} bytes): {exc}"
    shown_title = f" ST={title.hex().upper()}" if title is not None else ""
    size = len(payload) - (TAG_SIZE if sc.authentication else 0)
    state = "ciphered" if sc.encryption else "authenticated"
    return (f"{tag_name(tag)}{shown_title} SC=0x{sc.to_byte():02X} IC={counter} "
            f"{state} {max(size, 0)} bytes")
