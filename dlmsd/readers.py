"""From a device's configuration to its meter reader.

:func:`build_reader` picks the link (HDLC or wrapper), the client (LN or SN; the
authentication mechanism and its keys; the ciphering with the device's persistent
invocation counters) and the IEC 62056-21 mode E opening for one association, and
hands them to a :class:`~dlmsd.protocol.reader.MeterReader`.  The counter store is
reached through the :class:`CounterBook` interface the ciphering calls: the store
(``counters``, opened on first use) writes its files, the reader itself never touches
one.  The store learns which keys a counter was accepted under only by
:func:`key_fingerprint`, never the keys.  Nothing else here does I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

from dlmsd.config import Auth, DeviceConfig, Mode, Referencing
from dlmsd.protocol import iec62056_21 as iec
from dlmsd.protocol.acse import MechanismName
from dlmsd.protocol.client import Ciphering, ClientBase, CounterStart, LnClient
from dlmsd.protocol.link import HdlcLink, WrapperLink
from dlmsd.protocol.reader import MeterCache, MeterQuirks, MeterReader, ReaderSettings
from dlmsd.protocol.security import (
    AUTHENTICATED_ENCRYPTION,
    AUTHENTICATION_ONLY,
    ENCRYPTION_ONLY,
    SUITE_0,
)
from dlmsd.protocol.security_hls import HlsKeys, ec_private_key, ec_public_key, ecdsa_suite

__all__ = [
    "ECDSA_CHALLENGE_SIZE",
    "HLS_CHALLENGE_SIZE",
    "CounterBook",
    "build_reader",
    "key_fingerprint",
    "public_device",
]

_MECHANISMS: dict[Auth, MechanismName | None] = {
    Auth.NONE: None,
    Auth.LOW: MechanismName.LOW,
    Auth.HIGH: MechanismName.HIGH,
    Auth.HIGH_MD5: MechanismName.HIGH_MD5,
    Auth.HIGH_SHA1: MechanismName.HIGH_SHA1,
    Auth.HIGH_SHA256: MechanismName.HIGH_SHA256,
    Auth.HIGH_GMAC: MechanismName.HIGH_GMAC,
    Auth.HIGH_ECDSA: MechanismName.HIGH_ECDSA,
}
# HLS mechanisms keyed by the password (the HLS secret), HighSha256 also by the system
# titles; HighGmac and HighEcdsa have keys of their own.
_SECRET_HLS = frozenset({Auth.HIGH, Auth.HIGH_MD5, Auth.HIGH_SHA1, Auth.HIGH_SHA256})
HLS_CHALLENGE_SIZE = 16  # every meter accepts 16 octets; some accept nothing else
# HLS-ECDSA: the Green Book asks for 32..64 octets (gurux's meter takes 32 as well).
ECDSA_CHALLENGE_SIZE = 32
_SECURITY_CONTROL = {"authentication": AUTHENTICATION_ONLY, "encryption": ENCRYPTION_ONLY,
                     "both": AUTHENTICATED_ENCRYPTION}


class CounterBook(Protocol):
    """What ciphering needs of the persistent invocation counters
    (:class:`dlmsd.counters.CounterStore`): ours per device, the meter's per device,
    meter system title and keys (named by :func:`key_fingerprint`)."""

    def next(self, device: str) -> int: ...

    def check_received(self, device: str, counter: int, *, meter: bytes,
                       key: str) -> CounterStart | None: ...


#: Domain separation: this digest of the keys is good for nothing but telling keys apart.
_FINGERPRINT_LABEL = b"dlmsd invocation counter keys v1\0"


def key_fingerprint(block_cipher_key: bytes, authentication_key: bytes) -> str:
    """Which keys a meter's counters were accepted under, for the counter files: the
    first 8 octets of SHA-256(label || block cipher key || authentication key), in hex.

    One-way, so the state directory holds no key: the fixed label keeps the digest
    apart from any other hash of the same keys, and with 8 octets of a 16 (or 32)
    octet key every fingerprint fits 2**64 (or more) keys, so not even a search of the
    whole key space could name the key.  Both keys count: a verified APDU proves the
    pair, and a re-keyed meter restarts its counter.  A collision (2**-64 between two
    sequences) would only keep the older sequence: a refusal, never a replay."""
    import hashlib  # here: only ciphered devices have a fingerprint (issue 16)

    digest = hashlib.sha256(_FINGERPRINT_LABEL + bytes(block_cipher_key)
                            + bytes(authentication_key)).digest()
    return digest[:8].hex()


def public_device(device: DeviceConfig) -> DeviceConfig:
    """The device as its public client sees it: no authentication, no ciphering."""
    return replace(device, client_address=device.public_client_address, auth=Auth.NONE,
                   password=None, block_cipher_key=None, authentication_key=None,
                   dedicated_key=None, signing_key=None, server_public_key=None,
                   read_invocation_counter=False)


def build_reader(device: DeviceConfig, *, quirks: MeterQuirks,
                 counters: Callable[[], CounterBook],
                 cache: MeterCache | None = None) -> MeterReader:
    """A fresh reader for one association with ``device``; ``quirks`` and ``cache``
    (the object list and scaler_units) are kept across its associations."""
    link: HdlcLink | WrapperLink
    if device.mode is Mode.WRAPPER:
        link = WrapperLink.client(device.client_address, device.server.logical)
    else:
        link = HdlcLink.client(device.client_address, device.server.to_bytes())
    opening = (iec.ModeEOpening(max_baud=device.baudrate, echo=True)
               if device.mode is Mode.IEC else None)
    settings = ReaderSettings(
        timeout=device.timeout_ms / 1000, retries=device.retry_counter,
        max_list_size=device.max_list_size, port_name=device.port_name,
        challenge_size=(ECDSA_CHALLENGE_SIZE if device.auth is Auth.HIGH_ECDSA
                        else HLS_CHALLENGE_SIZE),
        connection=_connection(device))
    return MeterReader(link, _client(device, counters), settings, quirks=quirks,
                       cache=cache, opening=opening)


def _connection(device: DeviceConfig) -> str:
    """How the device reaches its meter, for the cache's identity: port, link and
    addresses, referencing and mechanism (no secret)."""
    server = (f"wPort {device.server.logical}" if device.mode is Mode.WRAPPER
              else f"server {device.server.to_bytes().hex()}")
    return (f"{device.port_name} {device.mode.value} client {device.client_address} "
            f"{server} {device.referencing.value} {device.auth.value}")


def _client(device: DeviceConfig, counters: Callable[[], CounterBook]) -> ClientBase:
    """The client for the device's referencing, mechanism and keys."""
    client_class: type[ClientBase] = LnClient
    if device.referencing is Referencing.SN:
        from dlmsd.protocol.sn_client import SnClient  # here: most meters are LN

        client_class = SnClient
    if device.auth is Auth.HIGH_GMAC:
        assert device.ciphered  # the configuration refuses HighGmac without ciphering
        assert device.block_cipher_key is not None and device.authentication_key is not None
        hls = HlsKeys(MechanismName.HIGH_GMAC, system_title=device.system_title,
                      block_cipher_key=device.block_cipher_key.reveal(),
                      authentication_key=device.authentication_key.reveal())
        return client_class(hls=hls, ciphering=_ciphering(device, SUITE_0, counters()))
    if device.auth is Auth.HIGH_ECDSA:
        assert device.signing_key is not None and device.server_public_key is not None
        signing_key = ec_private_key(device.signing_key)
        hls = HlsKeys(MechanismName.HIGH_ECDSA, system_title=device.system_title,
                      signing_key=signing_key,
                      server_public_key=ec_public_key(device.server_public_key))
        ciphering = (_ciphering(device, ecdsa_suite(signing_key), counters())
                     if device.ciphered else None)
        return client_class(hls=hls, ciphering=ciphering)
    if device.auth in _SECRET_HLS:
        assert device.password is not None  # the configuration checks it
        return client_class(hls=HlsKeys(_MECHANISMS[device.auth] or MechanismName.HIGH,
                                        secret=device.password.reveal(),
                                        system_title=device.system_title))
    password = device.password.reveal() if device.password is not None else None
    return client_class(mechanism=_MECHANISMS[device.auth],
                        authentication_value=password if device.auth is Auth.LOW else None)


def _ciphering(device: DeviceConfig, suite: int, store: CounterBook) -> Ciphering:
    """Glo-ciphering of every APDU with the device's keys, in security ``suite``; the
    invocation counters persist in ``store``."""
    assert (device.system_title is not None and device.block_cipher_key is not None
            and device.authentication_key is not None)  # the configuration checks it
    alias = device.device_alias
    keys = key_fingerprint(device.block_cipher_key.reveal(),
                           device.authentication_key.reveal())

    def accept(counter: int, *, meter: bytes, key: str) -> CounterStart | None:
        return store.check_received(alias, counter, meter=meter, key=key)

    return Ciphering(
        security_control=replace(_SECURITY_CONTROL[device.security], suite=suite),
        system_title=device.system_title,
        block_cipher_key=device.block_cipher_key.reveal(),
        authentication_key=device.authentication_key.reveal(),
        dedicated_key=(device.dedicated_key.reveal() if device.dedicated_key is not None
                       else None),
        next_counter=lambda: store.next(alias),
        accept_counter=accept, key_id=keys)
