"""No key or HLS secret shows up in any text the security modules produce.

Every repr, str, trace line and exception (with its args, cause and context) made by
dlmsd.protocol.security, dlmsd.protocol.security_hls and dlmsd.counters is searched
for each secret in text, hex, upper-case hex and spaced hex forms.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from dlmsd.counters import CounterStore
from dlmsd.errors import DlmsdError
from dlmsd.protocol.acse import MechanismName
from dlmsd.protocol.security import (
    AUTHENTICATED_ENCRYPTION,
    GENERAL_GLO_CIPHERING,
    ciphered_tag,
    describe,
    gmac,
    key_bytes,
    protect,
    unprotect,
)
from dlmsd.protocol.security_hls import (
    HlsKeys,
    client_reply,
    hls_high,
    hls_md5,
    verify_server_reply,
)
from dlmsd.secret import Secret

EK = b"EK-glob-key-1234"  # printable, so the text form is searched too
AK = b"AK-auth-key-5678"
DK = b"DK-dedicated-key"
BK = b"BK-broadcast-key"
HIGH = b"HLS-high-secret!"
PASSWORD = b"hunter2-hls-password"
SIGNING = ec.derive_private_key(0x5EC12E7_0001_0002_0003_0004, ec.SECP256R1())
SIGNING_RAW = SIGNING.private_numbers().private_value.to_bytes(32, "big")
ST = bytes.fromhex("4D4D4D0000BC614E")
ST_C = bytes.fromhex("4D4D4D0000000001")
GET = bytes.fromhex("C0010000080000010000FF0200")
STOC, CTOS = b"P6wRJ21F", b"K56iVagY"


def forms(secret: bytes) -> set[str]:
    found = {secret.hex(), secret.hex().upper(), secret.hex(" "), secret.hex(" ").upper(),
             secret.decode("latin-1"), repr(secret)[2:-1]}
    return {form for form in found if len(form) >= 6}


SECRETS = {name: forms(value) for name, value in {
    "EK": EK, "AK": AK, "DK": DK, "BK": BK, "HIGH": HIGH, "PASSWORD": PASSWORD,
    "SIGNING": SIGNING_RAW}.items()}


def texts_of(error: BaseException) -> Iterator[str]:
    seen: set[int] = set()
    current: BaseException | None = error
    stack = [error]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield str(current)
        yield repr(current)
        yield from (repr(arg) for arg in current.args)
        stack.extend(e for e in (current.__cause__, current.__context__) if e is not None)


class Collector:
    def __init__(self) -> None:
        self.texts: list[str] = []
        self.errors = 0

    def text(self, value: object) -> None:
        self.texts.append(str(value))
        self.texts.append(repr(value))

    def call(self, function: Callable[[], object]) -> None:
        try:
            result = function()
        except DlmsdError as exc:  # anything else is a bug and fails the test
            self.errors += 1
            self.texts.extend(texts_of(exc))
        else:
            self.text(result)


def protect_with(**over: object) -> bytes:
    args: dict[str, object] = {"security_control": 0x30, "system_title": ST,
                               "invocation_counter": 7, "block_cipher_key": Secret(EK),
                               "authentication_key": Secret(AK),
                               "dedicated_key": Secret(DK), "broadcast_key": BK}
    args.update(over)
    return protect(GET, **args)  # type: ignore[arg-type]


def unprotect_with(wire: bytes, **over: object) -> object:
    args: dict[str, object] = {"system_title": ST, "block_cipher_key": EK,
                               "authentication_key": AK, "dedicated_key": DK,
                               "broadcast_key": BK}
    args.update(over)
    return unprotect(wire, **args)  # type: ignore[arg-type]


def test_no_secret_in_any_text(tmp_path: Path) -> None:
    c = Collector()
    good = protect_with()
    # ciphering: results, traces and every failure
    for sc in (0x10, 0x20, 0x30, 0x70):
        wire = protect_with(security_control=sc)
        c.text(describe(wire))
        c.call(lambda wire=wire: unprotect_with(wire))
        c.call(lambda wire=wire: unprotect_with(wire, authentication_key=DK,
                                                block_cipher_key=DK, broadcast_key=DK))
    ded = protect_with(tag=ciphered_tag(0xC0, dedicated=True))
    general = protect_with(tag=GENERAL_GLO_CIPHERING)
    for wire in (good, ded, general, good[:-1], good + b"\0", bytes([good[0] ^ 4]) + good[1:]):
        c.text(describe(wire))
        c.call(lambda wire=wire: unprotect_with(wire))
        c.call(lambda wire=wire: unprotect_with(wire, dedicated_key=EK, block_cipher_key=DK))
        c.call(lambda wire=wire: unprotect_with(wire, dedicated_key=None, broadcast_key=None))
        c.call(lambda wire=wire: unprotect_with(wire, system_title=ST_C))
        c.call(lambda wire=wire: unprotect_with(wire, require=AUTHENTICATED_ENCRYPTION))
    for over in ({"block_cipher_key": EK[:15]}, {"authentication_key": AK + b"x"},
                 {"block_cipher_key": EK.decode()}, {"authentication_key": None},
                 {"security_control": 0x31}, {"tag": 0xCC},
                 {"dedicated_key": DK[:3], "tag": ciphered_tag(0xC0, dedicated=True)},
                 {"broadcast_key": BK[1:], "security_control": 0x70}):
        c.call(lambda over=over: protect_with(**over))
    c.call(lambda: key_bytes(EK[:-1], "block cipher key"))
    c.call(lambda: gmac(EK, ST, 1, AK))
    c.call(lambda: unprotect_with(good[:-1] + bytes([good[-1] ^ 1])))
    c.text(AUTHENTICATED_ENCRYPTION)

    # HLS
    all_keys = [
        HlsKeys(MechanismName.HIGH, secret=Secret(HIGH)),
        HlsKeys(MechanismName.HIGH_MD5, secret=PASSWORD),
        HlsKeys(MechanismName.HIGH_SHA1, secret=Secret(PASSWORD)),
        HlsKeys(MechanismName.HIGH_SHA256, secret=PASSWORD, system_title=ST_C),
        HlsKeys(MechanismName.HIGH_GMAC, system_title=ST_C, block_cipher_key=EK,
                authentication_key=Secret(AK)),
        HlsKeys(MechanismName.HIGH_ECDSA, system_title=ST_C, signing_key=SIGNING,
                server_public_key=SIGNING.public_key()),
    ]
    for keys in all_keys:
        c.text(keys)
        c.call(lambda keys=keys: client_reply(keys, stoc=STOC, ctos=CTOS,
                                              server_system_title=ST, invocation_counter=3))
        for reply in (b"", bytes(16), bytes(17), bytes(64), b"\x10" + bytes(16)):
            c.call(lambda keys=keys, reply=reply: verify_server_reply(
                keys, reply, stoc=STOC, ctos=CTOS, server_system_title=ST))
        c.call(lambda keys=keys: client_reply(keys, stoc=bytes(3), ctos=CTOS))
        c.call(lambda keys=keys: client_reply(keys, stoc=STOC, ctos=CTOS))
    for kwargs in ({"mechanism": MechanismName.HIGH, "secret": HIGH[:-1]},
                   {"mechanism": MechanismName.HIGH, "secret": HIGH.decode()},
                   {"mechanism": MechanismName.HIGH_GMAC, "system_title": ST_C,
                    "block_cipher_key": EK[:-2], "authentication_key": AK}):
        c.call(lambda kwargs=kwargs: HlsKeys(**kwargs))  # type: ignore[arg-type]
    c.call(lambda: hls_high(PASSWORD, STOC))
    c.call(lambda: hls_md5(b"", STOC))

    # counters (they hold no key, but say so by test)
    store = CounterStore(tmp_path)
    c.text(store)
    c.call(lambda: store.check_received("m1", 5, meter=ST, key="0" * 16))
    c.call(lambda: store.check_received("m1", 5, meter=ST, key="0" * 16))
    store.path_for("bad").write_text("{", encoding="utf-8")
    c.call(lambda: store.next("bad"))
    store.close()

    assert c.errors >= 60  # the failures above really happened
    assert any(form in EK.hex(" ").upper() for form in SECRETS["EK"])  # the search works
    for text in c.texts:
        for name, secret_forms in SECRETS.items():
            for form in secret_forms:
                assert form not in text, f"{name} appears in: {text}"


@pytest.mark.parametrize("value", [EK, Secret(EK)], ids=["bytes", "Secret"])
def test_reprs_of_key_holders(value: bytes | Secret) -> None:
    keys = HlsKeys(MechanismName.HIGH_GMAC, system_title=ST_C, block_cipher_key=value,
                   authentication_key=value)
    assert repr(keys) == "HlsKeys(high-gmac, system_title=4d4d4d0000000001)"
    assert EK.decode() not in str(keys)
