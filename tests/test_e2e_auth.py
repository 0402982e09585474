"""End to end with every authentication mode: `dlms --once --json -d7 --dlms` (a real
subprocess) against `dlms-sim --auth ...` (another one), LN and SN referencing, over
HDLC and the wrapper at once (one device each, on the same simulated meter).

Each run checks the published values, that the association used the mechanism asked
for (the AARQ and, for HLS, pass 3 in the trace; ciphered APDUs for HighGmac and
ciphered HighEcdsa, P-256 in suite 1 and P-384 in suite 2), and that no password or key
(nor an ECDSA private scalar or a line of its PEM file) appears in the daemon's whole
output in any encoding: text, hex, upper-case hex, spaced hex, Python bytes repr.  Wrong
credentials give the device an "association rejected" error.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import tcp_device
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from test_e2e_sim import EXPECTED, once, signals_for, simulator

Writer = Callable[..., Path]

# Distinctive secrets, so that any leak is found (printable: the text form is searched).
PASSWORD = "Pw-7h1s-1s-s3cr3t"
HLS_SECRET = "Hx!sEcReT-16oct."  # 16 octets: mechanism 2 needs an AES-128 key
HLS_SHORT = "Sh0rt!Hx"  # 8 octets: mechanism 2 pads it with zero octets to 16 (as gurux)
BLOCK_CIPHER_KEY = "5EC0DE00112233445566778899AABBCC"
AUTHENTICATION_KEY = "A0A1A2A3A4A5A6A7A8A9AAABACADAEAF"
DEDICATED_KEY = "DE0DE1DE2DE3DE4DE5DE6DE7DE8DE9DE"
METER_TITLE = "53494D0000BC614E"
# one client system title per device: the meter keeps a counter per client
TITLES = {"h": "4D4D4D0000000001", "w": "4D4D4D0000000002"}
CODES = ["1.0.1.8.0.255", "1.0.32.7.0.255", "0.0.96.1.0.255"]

# name -> (the device's keys, dlms-sim's options, what pass 3 looks like in the trace)
MODES: dict[str, tuple[dict[str, Any], list[str], str | None]] = {
    "Low": ({"auth": "Low", "password": PASSWORD},
            ["--auth", "low", "--password", PASSWORD], None),
    "High": ({"auth": "High", "password": HLS_SECRET},
             ["--auth", "high", "--password", HLS_SECRET], "reply"),
    "High-short": ({"auth": "High", "password": HLS_SHORT},
                   ["--auth", "high", "--password", HLS_SHORT], "reply"),
    "HighMd5": ({"auth": "HighMd5", "password": HLS_SECRET},
                ["--auth", "highmd5", "--password", HLS_SECRET], "reply"),
    "HighSha1": ({"auth": "HighSha1", "password": HLS_SECRET},
                 ["--auth", "highsha1", "--password", HLS_SECRET], "reply"),
    "HighSha256": ({"auth": "HighSha256", "password": HLS_SECRET},
                   ["--auth", "highsha256", "--password", HLS_SECRET], "reply"),
    **{f"HighGmac-{policy}": (
        {"auth": "HighGmac", "block_cipher_key": BLOCK_CIPHER_KEY,
         "authentication_key": AUTHENTICATION_KEY, "security": policy},
        ["--auth", "highgmac", "--block-cipher-key", BLOCK_CIPHER_KEY,
         "--authentication-key", AUTHENTICATION_KEY, "--security", policy], "glo")
       for policy in ("authentication", "encryption", "both")},
    "HighGmac-dedicated": (
        {"auth": "HighGmac", "block_cipher_key": BLOCK_CIPHER_KEY,
         "authentication_key": AUTHENTICATION_KEY, "dedicated_key": DEDICATED_KEY},
        ["--auth", "highgmac", "--block-cipher-key", BLOCK_CIPHER_KEY,
         "--authentication-key", AUTHENTICATION_KEY], "ded"),
    # {name} is a key file written by the key_files fixture
    "HighEcdsa-P256": (
        {"auth": "HighEcdsa", "client_private_key": "{P256-client}",
         "server_public_key": "{P256-meter.pub}"},
        ["--auth", "highecdsa", "--signing-key", "{P256-meter}",
         "--client-public-key", "{P256-client.pub}"], "reply"),
    "HighEcdsa-P256-both": (
        {"auth": "HighEcdsa", "client_private_key": "{P256-client}",
         "server_public_key": "{P256-meter.crt}", "block_cipher_key": BLOCK_CIPHER_KEY,
         "authentication_key": AUTHENTICATION_KEY},
        ["--auth", "highecdsa", "--signing-key", "{P256-meter}",
         "--client-public-key", "{P256-client.pub}", "--ecdsa-ciphering",
         "--block-cipher-key", BLOCK_CIPHER_KEY, "--authentication-key",
         AUTHENTICATION_KEY], "glo"),
    "HighEcdsa-P384-both": (
        {"auth": "HighEcdsa", "client_private_key": "{P384-client}",
         "server_public_key": "{P384-meter.pub}", "block_cipher_key": BLOCK_CIPHER_KEY * 2,
         "authentication_key": AUTHENTICATION_KEY * 2},
        ["--auth", "highecdsa", "--signing-key", "{P384-meter}",
         "--client-public-key", "{P384-client.pub}", "--ecdsa-ciphering",
         "--block-cipher-key", BLOCK_CIPHER_KEY * 2, "--authentication-key",
         AUTHENTICATION_KEY * 2], "glo"),
}
SECRETS = [PASSWORD.encode(), HLS_SECRET.encode(), HLS_SHORT.encode(),
           HLS_SHORT.encode() + bytes(16 - len(HLS_SHORT)), bytes.fromhex(BLOCK_CIPHER_KEY),
           bytes.fromhex(AUTHENTICATION_KEY), bytes.fromhex(DEDICATED_KEY)]


def forms(secret: bytes) -> set[str]:
    found = {secret.hex(), secret.hex().upper(), secret.hex(" "), secret.hex(" ").upper(),
             repr(secret)[2:-1]}
    with contextlib.suppress(UnicodeDecodeError):
        found.add(secret.decode("ascii"))
    return found


def assert_no_secret(text: str, extra: list[bytes] | tuple[bytes, ...] = ()) -> None:
    for secret in [*SECRETS, *extra]:
        for form in forms(secret):
            assert form not in text, f"a secret ({form[:4]}...) appears in the output"


def devices(ports: dict[str, int], referencing: str, keys: dict[str, Any],
            **over: Any) -> list[dict[str, Any]]:
    common = {"type": referencing, "logical_address": 1, "timeout_ms": 3000,
              "retry_counter": 1, **keys, **over}
    return [
        tcp_device("h", port=ports["hdlc"], address_size=2, physical_address=1,
                   system_title=TITLES["h"], **common),
        tcp_device("w", port=ports["wrapper"], mode="DLMS-WRAPPER",
                   system_title=TITLES["w"], **common),
    ]


class KeyFiles:
    """Fresh P-256 and P-384 key pairs for the client and the meter, as PEM files:
    private keys (PKCS #8), public keys and a self-signed certificate of each."""

    def __init__(self, folder: Path) -> None:
        self.paths: dict[str, str] = {}
        self.private: list[bytes] = []  # scalars and PEM bodies: never in the output
        for curve_name, curve in (("P256", ec.SECP256R1()), ("P384", ec.SECP384R1())):
            for role in ("client", "meter"):
                key = ec.generate_private_key(curve)
                name = f"{curve_name}-{role}"
                pem = key.private_bytes(serialization.Encoding.PEM,
                                        serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
                size = 32 if curve_name == "P256" else 48
                self.private.append(key.private_numbers().private_value.to_bytes(size, "big"))
                self.private.extend(line for line in pem.splitlines()[1:-1])
                public = key.public_key().public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
                subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
                now = dt.datetime.now(dt.UTC)
                cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                        .public_key(key.public_key()).serial_number(1)
                        .not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
                        .sign(key, hashes.SHA256()))
                for suffix, data in (("", pem), (".pub", public),
                                     (".crt", cert.public_bytes(serialization.Encoding.PEM))):
                    path = folder / f"{name}{suffix}.pem"
                    path.write_bytes(data)
                    self.paths[name + suffix] = str(path)

    def fill(self, value: Any) -> Any:
        """``value`` with every {name} replaced by the path of that key file."""
        if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
            return self.paths[value[1:-1]]
        if isinstance(value, dict):
            return {key: self.fill(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.fill(item) for item in value)
        return value


@pytest.fixture(scope="module")
def key_files(tmp_path_factory: pytest.TempPathFactory) -> KeyFiles:
    return KeyFiles(tmp_path_factory.mktemp("keys"))


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Invocation counters of the daemon subprocesses go to a fresh directory."""
    path = tmp_path / "state"
    monkeypatch.setenv("DLMS_STATE_DIR", str(path))
    return path


@pytest.mark.parametrize("referencing", ["LN", "SN"])
@pytest.mark.parametrize("mode", list(MODES))
def test_every_mode_reads_and_leaks_nothing(write_config: Writer, key_files: KeyFiles,
                                            mode: str, referencing: str) -> None:
    keys, sim_args, pass_3 = key_files.fill(MODES[mode])
    with simulator("--hdlc-port", "0", "--wrapper-port", "0", "--referencing", referencing,
                   *sim_args) as ports:
        path = write_config(devices=devices(ports, referencing, keys),
                            signals=signals_for("h", CODES) + signals_for("w", CODES))
        code, doc, log = once(path, "-d7", "--dlms")
    assert code == 0, log[-3000:]
    got = [(s["device_alias"], s["obis"], s["value"], s["status"]) for s in doc["signals"]]
    assert got == [(d, c, EXPECTED[c][0], "ok") for d in ("h", "w") for c in CODES]
    assert "AARQ" in log
    if pass_3 is not None:  # the four-pass exchange went over the wire, both devices
        method = "READ.req [0xFA58 sel=0 " if referencing == "SN" else "ACTION.req"
        assert log.count(method) >= 2, log[-3000:]
    if pass_3 in ("glo", "ded"):
        tag = "read-request" if referencing == "SN" else "get-request"
        assert f"{pass_3}-{tag}" in log and "decrypted: " in log
    if pass_3 == "ded":  # the dedicated key is used after pass 4 only, both ways
        assert "glo-action-request" in log or "glo-read-request" in log
        response = "read-response" if referencing == "SN" else "get-response"
        assert f"ded-{response}" in log
    if mode.startswith("HighEcdsa"):  # CtoS of 32 octets: calling-authentication-value
        assert "AC 22 80 20" in log  # [12] { [0] 32 octets } in the AARQ's hex trace
    if mode == "High-short":  # dlms-sim took the 8-octet --password, padded the same way
        assert "has 8 bytes and is padded with zero bytes to 16" in log
    assert_no_secret(log, key_files.private)


@pytest.mark.parametrize(("mode", "wrong"), [
    ("Low", {"password": "not-the-password"}),
    ("HighMd5", {"password": "X" * 16}),
    ("HighSha256", {"password": "X" * 16}),
    ("HighGmac-both", {"authentication_key": "00" * 16}),
    ("HighEcdsa-P256", {"client_private_key": "{P256-meter}"}),  # not the trusted key
])
@pytest.mark.parametrize("referencing", ["LN", "SN"])
def test_wrong_credentials_are_an_association_rejection(write_config: Writer,
                                                        key_files: KeyFiles, mode: str,
                                                        wrong: dict[str, str],
                                                        referencing: str) -> None:
    keys, sim_args, _ = key_files.fill(MODES[mode])
    wrong = key_files.fill(wrong)
    with simulator("--hdlc-port", "0", "--wrapper-port", "0", "--referencing", referencing,
                   *sim_args) as ports:
        path = write_config(devices=devices(ports, referencing, {**keys, **wrong}),
                            signals=signals_for("h", CODES[:1]) + signals_for("w", CODES[:1]))
        code, doc, log = once(path, "-d7", "--dlms")
    assert code == 1, log[-3000:]
    for device in doc["devices"]:
        assert device["status"] == "offline"
        assert "association rejected" in device["error"] or (
            "HLS authentication failed" in device["error"]), device["error"]
    assert_no_secret(log, key_files.private)
    if "client_private_key" not in wrong:  # a path may be logged, never the key
        for value in wrong.values():
            assert value not in log and value.encode().hex() not in log
