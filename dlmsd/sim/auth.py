"""The simulated meter's authentication and ciphering (pure, sans-I/O).

:class:`SimSecurity` is what the meter is configured with (``dlms-sim --auth ...``);
:class:`MeterAuthentication` is one association's side of the exchange, used by
:class:`~dlmsd.sim.server.MeterServer`:

* Low (LLS, mechanism 1): the AARQ's calling-authentication-value must equal the
  password, else the AARE is rejected-permanent with authentication-failure.
* HLS (mechanisms 2, 3, 4, 5, 6): the AARQ carries CtoS; the AARE is accepted with
  diagnostic authentication-required and carries StoC (16 random octets); the
  association is pending until the client calls reply_to_HLS_authentication with
  f(StoC) (LN: ACTION on 0.0.40.0.0.255 method 1; SN: the Association SN's method 8 at
  0xFA58, by ReadRequest parameterized-access or WriteRequest); a correct f(StoC) is
  answered with f(CtoS) and the association is established, a wrong one leaves it
  pending (Green Book 9.2.7.4, "HLS authentication mechanisms").
* HLS-GMAC (5) also ciphers every APDU of the association (security suite 0,
  glo-ciphering, Green Book 9.2.7.2): the AARQ's InitiateRequest arrives as a
  glo-initiate-request from the client's system title (calling-AP-title), the
  InitiateResponse leaves as glo-initiate-response from the meter's system title
  (responding-AP-title), every request must verify and carry the security the meter
  is set to (authentication, encryption or both) with an invocation counter above the
  last one, and every response is protected the same way.
* HLS-ECDSA (7): CtoS and StoC (32 octets) as above; f(StoC) must be the client's
  ECDSA signature over ST-C || ST-S || StoC || CtoS (verified with the client's public
  key), f(CtoS) is the meter's over ST-S || ST-C || CtoS || StoC, on P-256 (suite 1)
  or P-384 (suite 2).  With ``ecdsa_ciphering`` every APDU is glo-ciphered as with
  HLS-GMAC, in the keys' suite (AES-GCM-128 or AES-GCM-256).

The crypto is :mod:`dlmsd.protocol.security_hls` and :mod:`dlmsd.protocol.security`:
the meter's f(CtoS) is the client's computation with the roles swapped (its own system
title first), so the same functions serve both ends.  Randomness and the meter's
invocation counter come from the caller (``random``, ``next_counter``).
"""

from __future__ import annotations

import functools
import hmac
import itertools
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from dlmsd.errors import DlmsdError, LocalProtocolError, RemoteProtocolError
from dlmsd.protocol.acse import Aarq, AcseServiceUser, MechanismName
from dlmsd.protocol.security import (
    SYSTEM_TITLE_SIZE,
    SecurityControl,
    is_ciphered,
    is_dedicated,
    protect,
    unprotect,
)
from dlmsd.protocol.security_hls import (
    MAX_CHALLENGE,
    MIN_CHALLENGE,
    HlsKeys,
    client_reply,
    ec_private_key,
    ec_public_key,
    ecdsa_suite,
    verify_server_reply,
)
from dlmsd.secret import Secret

__all__ = [
    "DEFAULT_AUTHENTICATION_KEY",
    "DEFAULT_BLOCK_CIPHER_KEY",
    "DEFAULT_SYSTEM_TITLE",
    "SECURITY_POLICIES",
    "CipherError",
    "MeterAuthentication",
    "SimSecurity",
]

#: The meter's system title: "SIM" and 5 octets of its serial number 12345678.
DEFAULT_SYSTEM_TITLE: Final = bytes.fromhex("53494D0000BC614E")
#: The Green Book's example keys (also gurux's defaults): the simulator's out of the box.
DEFAULT_BLOCK_CIPHER_KEY: Final = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
DEFAULT_AUTHENTICATION_KEY: Final = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
#: ``security`` -> the security control byte of suite 0.
SECURITY_POLICIES: Final = {"authentication": 0x10, "encryption": 0x20, "both": 0x30}
_STOC_SIZE: Final = 16
#: HLS-ECDSA: the Green Book asks for a challenge of 32 to 64 octets.
_ECDSA_STOC_SIZE: Final = 32


class CipherError(RemoteProtocolError):
    """A ciphered request that cannot be accepted (the client sent it: a
    :class:`~dlmsd.errors.RemoteProtocolError` from the meter's side); ``service_error``
    (also ``code``) says how the ExceptionResponse names it (5 deciphering-error,
    6 invocation-counter-error), ``counter`` the lowest counter the meter accepts."""

    def __init__(self, message: str, service_error: int, counter: int | None = None) -> None:
        super().__init__(message, code=service_error)
        self.service_error = service_error
        self.counter = counter


def _counter_from(start: int) -> Callable[[], int]:
    counter = itertools.count(start)
    return lambda: next(counter)


@dataclass(frozen=True)
class SimSecurity:
    """The meter's authentication settings.

    ``mechanism``: what it requires (LOWEST: none).  ``secret``: the LLS password
    (Low) or the HLS secret (High: 1..16 octets, a shorter one zero-padded to 16 as
    the daemon and gurux pad it; HighMd5, HighSha1, HighSha256).
    ``system_title``: the meter's (HighGmac, HighSha256).  ``block_cipher_key`` and
    ``authentication_key`` (HighGmac; HighEcdsa with ``ecdsa_ciphering``: 16 octets
    on P-256, 32 on P-384), ``security``: "authentication", "encryption" or "both".
    ``signing_key`` (the meter's private scalar) and ``client_public_key`` (the
    client's X9.62 point): HighEcdsa, which ciphers every APDU in the keys' suite (1 or
    2) when ``ecdsa_ciphering`` is set.  ``random(n)`` gives StoC; ``next_counter()``
    the meter's invocation counters (one sequence for the meter: share this object
    between its associations).
    """

    mechanism: MechanismName = MechanismName.LOWEST
    secret: Secret | None = field(default=None, repr=False)
    system_title: bytes = DEFAULT_SYSTEM_TITLE
    block_cipher_key: Secret = field(default=Secret(DEFAULT_BLOCK_CIPHER_KEY), repr=False)
    authentication_key: Secret = field(default=Secret(DEFAULT_AUTHENTICATION_KEY), repr=False)
    security: str = "both"
    signing_key: Secret | None = field(default=None, repr=False)
    client_public_key: bytes | None = field(default=None, repr=False)
    ecdsa_ciphering: bool = False
    #: The last invocation counter accepted from each client system title, kept for
    #: the meter's life across associations (replay protection, and the value of the
    #: invocation counter object 0.0.43.1.0.255).
    accepted_counters: dict[bytes, int] = field(default_factory=dict, repr=False,
                                                compare=False)
    random: Callable[[int], bytes] = field(default=os.urandom, repr=False, compare=False)
    next_counter: Callable[[], int] = field(default_factory=lambda: _counter_from(1),
                                            repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.security not in SECURITY_POLICIES:
            raise LocalProtocolError(f"security {self.security!r}: authentication, "
                                     "encryption or both")
        if len(self.system_title) != SYSTEM_TITLE_SIZE:
            raise LocalProtocolError(f"system title of {len(self.system_title)} octets, "
                                     f"expected {SYSTEM_TITLE_SIZE}")
        if self.mechanism is MechanismName.LOW and self.secret is None:
            raise LocalProtocolError("authentication low needs a password")
        if self.hls:
            self.keys()  # checks the secret or keys the mechanism needs
        if self.ciphered:
            size = 32 if self.security_control.suite == 2 else 16
            for name, key in (("block cipher key", self.block_cipher_key),
                              ("authentication key", self.authentication_key)):
                if len(key.reveal()) != size:
                    raise LocalProtocolError(
                        f"{name} of {len(key.reveal())} octets: security suite "
                        f"{self.security_control.suite} needs {size}")

    @property
    def hls(self) -> bool:
        return self.mechanism not in (MechanismName.LOWEST, MechanismName.LOW)

    @property
    def ciphered(self) -> bool:
        return self.mechanism is MechanismName.HIGH_GMAC or (
            self.mechanism is MechanismName.HIGH_ECDSA and self.ecdsa_ciphering)

    @functools.cached_property
    def security_control(self) -> SecurityControl:
        """The SC byte of the meter's APDUs: the policy, in suite 0 or the ECDSA keys'."""
        policy = SECURITY_POLICIES[self.security]
        if self.mechanism is MechanismName.HIGH_ECDSA and self.signing_key is not None:
            policy |= ecdsa_suite(ec_private_key(self.signing_key))
        return SecurityControl.of(policy)

    @property
    def invocation_counter(self) -> int:
        """What 0.0.43.1.0.255 shows: the highest counter accepted from a client (0
        before any), so that a client that lost its own reads it and goes on above."""
        return max(self.accepted_counters.values(), default=0)

    def public(self) -> SimSecurity:
        """The public client's security: no authentication, no ciphering; it shares
        the counters (its association shows the invocation counter object)."""
        return SimSecurity(system_title=self.system_title,
                           accepted_counters=self.accepted_counters)

    def keys(self) -> HlsKeys:
        """The HLS keys from the meter's side (its own system title; for HighEcdsa its
        signing key and the client's public key, the roles of a client swapped)."""
        if self.mechanism is MechanismName.HIGH_ECDSA:
            if self.signing_key is None or self.client_public_key is None:
                raise LocalProtocolError("high-ecdsa needs the meter's signing key and the "
                                         "client's public key")
            return HlsKeys(self.mechanism, system_title=self.system_title,
                           signing_key=ec_private_key(self.signing_key),
                           server_public_key=ec_public_key(self.client_public_key))
        return HlsKeys(self.mechanism,
                       secret=self.secret.reveal() if self.secret is not None else None,
                       system_title=self.system_title,
                       block_cipher_key=self.block_cipher_key.reveal(),
                       authentication_key=self.authentication_key.reveal())


class MeterAuthentication:
    """One association's authentication and ciphering; see the module text.

    ``check_aarq`` runs pass 1 (it returns the diagnostic that rejects the AARQ, or
    None); ``stoc`` is then pass 2's challenge; ``reply(f_stoc)`` runs passes 3 and 4.
    ``unprotect``/``protect`` cipher the association's APDUs when it is ciphered.
    """

    def __init__(self, security: SimSecurity) -> None:
        self.security = security
        self.client_title: bytes | None = None
        self.stoc = b""
        self.authenticated = not security.hls
        self._ctos = b""
        #: from the client's InitiateRequest: ded-ciphering once authenticated
        self.dedicated_key: bytes | None = None
        self._answer_dedicated = False

    @property
    def ciphered(self) -> bool:
        return self.security.ciphered

    def check_aarq(self, aarq: Aarq) -> AcseServiceUser | None:
        security = self.security
        proposed = aarq.mechanism_name or MechanismName.LOWEST
        if proposed is not security.mechanism:
            if proposed is MechanismName.LOWEST:
                return AcseServiceUser.AUTHENTICATION_MECHANISM_NAME_REQUIRED
            return AcseServiceUser.AUTHENTICATION_MECHANISM_NAME_NOT_RECOGNISED
        value = aarq.calling_authentication_value or b""
        if proposed is MechanismName.LOW:
            assert security.secret is not None
            if not hmac.compare_digest(value, security.secret.reveal()):
                return AcseServiceUser.AUTHENTICATION_FAILURE
            return None
        if not security.hls:
            return None
        if not MIN_CHALLENGE <= len(value) <= MAX_CHALLENGE:
            return AcseServiceUser.AUTHENTICATION_FAILURE  # CtoS missing or out of bounds
        title = aarq.calling_ap_title
        needs_title = proposed in (MechanismName.HIGH_GMAC, MechanismName.HIGH_SHA256,
                                   MechanismName.HIGH_ECDSA)
        if needs_title and (title is None or len(title) != SYSTEM_TITLE_SIZE):
            return AcseServiceUser.AUTHENTICATION_FAILURE
        self.client_title = title
        self._ctos = bytes(value)
        self.stoc = security.random(_ECDSA_STOC_SIZE if proposed is MechanismName.HIGH_ECDSA
                                    else _STOC_SIZE)
        return None

    def reply(self, f_stoc: bytes) -> bytes | None:
        """Pass 3: check the client's f(StoC); pass 4: f(CtoS), or None when it does
        not verify (the association stays pending)."""
        if self.authenticated or not self.stoc:
            return None
        keys = self.security.keys()
        try:
            # The client's f(StoC) is the meter's check of a "server reply" with the
            # roles swapped: the client's challenge in the place of StoC.
            client_counter = verify_server_reply(keys, f_stoc, stoc=self._ctos,
                                                 ctos=self.stoc,
                                                 server_system_title=self.client_title)
        except (DlmsdError, ValueError):
            return None
        if client_counter is not None and self.client_title is not None:
            counters = self.security.accepted_counters
            counters[self.client_title] = max(client_counter,
                                              counters.get(self.client_title, 0))
        self.authenticated = True
        gmac = self.security.mechanism is MechanismName.HIGH_GMAC
        counter = self.security.next_counter() if gmac else None
        return client_reply(keys, stoc=self._ctos, ctos=self.stoc,
                            server_system_title=self.client_title,
                            invocation_counter=counter)

    # ------------------------------------------------------------------ ciphering
    def unprotect(self, apdu: bytes) -> bytes:
        """The plain request inside a ciphered one; CipherError when it does not
        verify, lacks the required protection or replays a counter."""
        security = self.security
        if not is_ciphered(apdu):
            raise CipherError("an unciphered request in a ciphered association", 5)
        dedicated = self.dedicated_key if self.authenticated else None
        try:
            plain, header = unprotect(apdu, system_title=self.client_title,
                                      block_cipher_key=security.block_cipher_key.reveal(),
                                      authentication_key=security.authentication_key.reveal(),
                                      dedicated_key=dedicated,
                                      require=security.security_control)
        except DlmsdError as exc:  # DecodeError, AuthenticationFailure: never a key
            raise CipherError(f"deciphering failed: {exc}", 5) from exc
        # The counter of the client's system title must increase for the meter's life,
        # across associations (Green Book 9.2.7.2.4.6: a counter is never accepted twice).
        title = self.client_title or b""  # check_aarq took it from calling-AP-title
        counters = security.accepted_counters
        last = counters.get(title)
        if last is not None and header.invocation_counter <= last:
            raise CipherError(f"invocation counter {header.invocation_counter} not above "
                              f"{last}", 6, last + 1)
        counters[title] = header.invocation_counter
        self._answer_dedicated = is_dedicated(apdu)  # answer in the request's kind
        return plain

    def protect(self, apdu: bytes) -> bytes:
        security = self.security
        return protect(apdu, security_control=security.security_control,
                       system_title=security.system_title,
                       invocation_counter=security.next_counter(),
                       block_cipher_key=security.block_cipher_key.reveal(),
                       authentication_key=security.authentication_key.reveal(),
                       dedicated_key=self.dedicated_key, dedicated=self._answer_dedicated)
