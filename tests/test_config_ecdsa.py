"""HighEcdsa in the configuration: key files beside it, curves, suite key sizes, no leaks."""

from __future__ import annotations

import datetime
import json
import os
import traceback
from pathlib import Path
from typing import Any

import pytest
from conftest import signal, tcp_device
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from test_config import Writer, problems_of

from dlmsd.config import Auth, load_config, parse_config
from dlmsd.errors import ConfigError
from dlmsd.secret import MASK, Secret, mask_secrets

ST = "4D4D4D0000BC614E"
EK16 = "000102030405060708090A0B0C0D0E0F"
AK16 = "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"
EK32 = EK16 + "101112131415161718191A1B1C1D1E1F"
AK32 = AK16 + "E0E1E2E3E4E5E6E7E8E9EAEBECEDEEEF"
P256, P384 = ec.SECP256R1(), ec.SECP384R1()


def write_client_key(directory: Path, curve: ec.EllipticCurve = P256,
                     name: str = "client.pem") -> bytes:
    """Write the client's private key (PEM PKCS #8); return its scalar."""
    key = ec.generate_private_key(curve)
    (directory / name).write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return key.private_numbers().private_value.to_bytes((curve.key_size + 7) // 8, "big")


def write_meter_key(directory: Path, curve: ec.EllipticCurve = P256, name: str = "meter.pub",
                    certificate: bool = False) -> bytes:
    """Write the meter's public key (PEM SPKI, or a DER self-signed certificate); return
    its X9.62 uncompressed point."""
    key = ec.generate_private_key(curve)
    if certificate:
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "meter")])
        cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                .public_key(key.public_key()).serial_number(1)
                .not_valid_before(datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC))
                .not_valid_after(datetime.datetime(2044, 1, 1, tzinfo=datetime.UTC))
                .sign(key, hashes.SHA384()))
        data = cert.public_bytes(serialization.Encoding.DER)
    else:
        data = key.public_key().public_bytes(serialization.Encoding.PEM,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
    (directory / name).write_bytes(data)
    return key.public_key().public_bytes(serialization.Encoding.X962,
                                         serialization.PublicFormat.UncompressedPoint)


def ecdsa_device(**over: Any) -> dict[str, Any]:
    dev: dict[str, Any] = {"auth": "HighEcdsa", "system_title": ST,
                           "client_private_key": "client.pem", "server_public_key": "meter.pub"}
    dev.update(over)
    return tcp_device(**dev)


def secret_forms(value: bytes) -> list[str]:
    return [value.hex(), value.hex().upper(), value.hex(" "), value.hex(" ").upper(),
            str(int.from_bytes(value, "big"))]


def file_lines(path: Path) -> list[str]:
    """The base64 lines of a PEM key file."""
    return [line for line in path.read_text().splitlines()
            if line and not line.startswith("-----")]


# -- valid devices ---------------------------------------------------------------------------

@pytest.mark.parametrize("auth", ["HighEcdsa", "highecdsa"])
def test_p256_device_with_key_files_next_to_the_config(write_config: Writer, tmp_path: Path,
                                                       auth: str) -> None:
    scalar = write_client_key(tmp_path)
    point = write_meter_key(tmp_path)
    config = load_config(write_config(devices=[ecdsa_device(auth=auth)]))
    assert config.warnings == ()
    dev = config.devices[0]
    assert dev.auth is Auth.HIGH_ECDSA
    assert isinstance(dev.signing_key, Secret)
    assert dev.signing_key.reveal() == scalar and len(scalar) == 32
    assert dev.server_public_key == point and len(point) == 65
    assert dev.system_title == bytes.fromhex(ST)
    assert dev.password is None
    assert dev.block_cipher_key is None and dev.authentication_key is None
    assert dev.ciphered is False


def test_p384_device_with_32_octet_keys_is_ciphered(write_config: Writer,
                                                    tmp_path: Path) -> None:
    scalar = write_client_key(tmp_path, P384)
    point = write_meter_key(tmp_path, P384)
    dev = load_config(write_config(devices=[ecdsa_device(
        block_cipher_key=EK32, authentication_key=AK32)])).devices[0]
    assert dev.signing_key is not None and dev.signing_key.reveal() == scalar
    assert len(scalar) == 48 and dev.server_public_key == point and len(point) == 97
    assert dev.block_cipher_key is not None
    assert dev.block_cipher_key.reveal() == bytes.fromhex(EK32)
    assert dev.authentication_key is not None
    assert dev.authentication_key.reveal() == bytes.fromhex(AK32)
    assert dev.ciphered is True


@pytest.mark.parametrize(("security", "ciphered"), [
    ("both", True), ("authentication", True), ("Encryption", True), ("none", False),
    ("NONE", False),
])
def test_ciphered_with_block_cipher_key_unless_security_none(write_config: Writer,
                                                            tmp_path: Path, security: str,
                                                            ciphered: bool) -> None:
    write_client_key(tmp_path)
    write_meter_key(tmp_path)
    dev = load_config(write_config(devices=[ecdsa_device(
        block_cipher_key=EK16, authentication_key=AK16, security=security)])).devices[0]
    assert dev.security == security.lower()
    assert dev.block_cipher_key is not None
    assert dev.block_cipher_key.reveal() == bytes.fromhex(EK16)
    assert dev.ciphered is ciphered


def test_not_ciphered_without_block_cipher_key_even_with_authentication_key(
        write_config: Writer, tmp_path: Path) -> None:
    write_client_key(tmp_path)
    write_meter_key(tmp_path)
    dev = load_config(write_config(devices=[ecdsa_device(authentication_key=AK16)])).devices[0]
    assert dev.block_cipher_key is None and dev.ciphered is False


def test_relative_paths_start_at_the_config_directory_not_the_cwd(
        write_config: Writer, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory,
        monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "keys").mkdir()
    scalar = write_client_key(tmp_path / "keys")
    point = write_meter_key(tmp_path / "keys")
    # The same names exist in the working directory, with other keys.
    elsewhere = tmp_path_factory.mktemp("cwd")
    (elsewhere / "keys").mkdir()
    write_client_key(elsewhere / "keys")
    write_meter_key(elsewhere / "keys")
    monkeypatch.chdir(elsewhere)
    dev = load_config(write_config(devices=[ecdsa_device(
        client_private_key="keys/client.pem", server_public_key="keys/meter.pub")])).devices[0]
    assert dev.signing_key is not None and dev.signing_key.reveal() == scalar
    assert dev.server_public_key == point


def test_parse_config_paths_start_at_base_or_the_cwd(
        tmp_path: Path, tmp_path_factory: pytest.TempPathFactory,
        monkeypatch: pytest.MonkeyPatch) -> None:
    scalar = write_client_key(tmp_path)
    write_meter_key(tmp_path)
    doc = json.loads(json.dumps({"devices": [ecdsa_device()], "signals": [signal()]}))
    dev = parse_config(doc, base=tmp_path).devices[0]
    assert dev.signing_key is not None and dev.signing_key.reveal() == scalar
    monkeypatch.chdir(tmp_path)
    assert parse_config(doc).devices[0].signing_key == Secret(scalar)
    empty = tmp_path_factory.mktemp("empty")
    with pytest.raises(ConfigError) as info:
        parse_config(doc, base=empty)
    assert info.value.problems == [
        f"devices[0].client_private_key: {empty / 'client.pem'}: no such file",
        f"devices[0].server_public_key: {empty / 'meter.pub'}: no such file",
    ]


def test_absolute_key_paths(write_config: Writer, tmp_path_factory: pytest.TempPathFactory
                            ) -> None:
    keys = tmp_path_factory.mktemp("etc-dlms-keys")
    scalar = write_client_key(keys, P384, "c.key")
    point = write_meter_key(keys, P384, "m.crt", certificate=True)
    dev = load_config(write_config(devices=[ecdsa_device(
        client_private_key=str(keys / "c.key"), server_public_key=str(keys / "m.crt"))]
    )).devices[0]
    assert dev.signing_key is not None and dev.signing_key.reveal() == scalar
    assert dev.server_public_key == point


def test_meter_certificate_as_server_public_key(write_config: Writer, tmp_path: Path) -> None:
    write_client_key(tmp_path)
    point = write_meter_key(tmp_path, name="meter.der", certificate=True)
    dev = load_config(write_config(devices=[ecdsa_device(server_public_key="meter.der")]
                                   )).devices[0]
    assert dev.server_public_key == point


# -- missing settings and unusable files -----------------------------------------------------

@pytest.mark.parametrize("key", ["client_private_key", "server_public_key", "system_title"])
def test_each_required_setting_is_named(write_config: Writer, tmp_path: Path, key: str) -> None:
    write_client_key(tmp_path)
    write_meter_key(tmp_path)
    problems = problems_of(write_config(devices=[ecdsa_device(**{key: None})]))
    assert problems == [f"devices[0].{key}: missing: auth HighEcdsa needs {key}"]


def test_all_required_settings_missing(write_config: Writer) -> None:
    problems = problems_of(write_config(devices=[tcp_device(auth="HighEcdsa")]))
    assert problems == [  # in path order
        "devices[0].client_private_key: missing: auth HighEcdsa needs client_private_key",
        "devices[0].server_public_key: missing: auth HighEcdsa needs server_public_key",
        "devices[0].system_title: missing: auth HighEcdsa needs system_title",
    ]


@pytest.mark.parametrize("key", ["client_private_key", "server_public_key"])
def test_missing_key_file_is_named(write_config: Writer, tmp_path: Path, key: str) -> None:
    write_client_key(tmp_path)
    write_meter_key(tmp_path)
    problems = problems_of(write_config(devices=[ecdsa_device(**{key: "nope.pem"})]))
    assert problems == [f"devices[0].{key}: {tmp_path / 'nope.pem'}: no such file"]


def test_both_key_files_missing_are_both_named(write_config: Writer, tmp_path: Path) -> None:
    problems = problems_of(write_config(devices=[ecdsa_device()]))
    assert problems == [
        f"devices[0].client_private_key: {tmp_path / 'client.pem'}: no such file",
        f"devices[0].server_public_key: {tmp_path / 'meter.pub'}: no such file",
    ]


def test_key_files_swapped(write_config: Writer, tmp_path: Path) -> None:
    write_client_key(tmp_path)
    write_meter_key(tmp_path)
    problems = problems_of(write_config(devices=[ecdsa_device(
        client_private_key="meter.pub", server_public_key="client.pem")]))
    assert problems == [
        f"devices[0].client_private_key: {tmp_path / 'meter.pub'}: not a PEM or DER private key",
        f"devices[0].server_public_key: {tmp_path / 'client.pem'}: not a PEM public key or "
        "X.509 certificate",
    ]


def test_key_file_on_an_unsupported_curve(write_config: Writer, tmp_path: Path) -> None:
    write_client_key(tmp_path, ec.SECP521R1())
    write_meter_key(tmp_path)
    problems = problems_of(write_config(devices=[ecdsa_device()]))
    assert problems == [f"devices[0].client_private_key: {tmp_path / 'client.pem'}: an EC key "
                        "on secp521r1; HighEcdsa needs P-256 (suite 1) or P-384 (suite 2)"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any file")
def test_unreadable_key_file(write_config: Writer, tmp_path: Path) -> None:
    write_client_key(tmp_path)
    write_meter_key(tmp_path)
    (tmp_path / "client.pem").chmod(0)
    problems = problems_of(write_config(devices=[ecdsa_device()]))
    assert problems == [f"devices[0].client_private_key: {tmp_path / 'client.pem'}: cannot "
                        "read: permission denied"]


# -- curves and suite key sizes --------------------------------------------------------------

@pytest.mark.parametrize(("client", "meter"), [(P256, P384), (P384, P256)],
                         ids=["P-256 client, P-384 meter", "P-384 client, P-256 meter"])
def test_mixed_curves_are_rejected(write_config: Writer, tmp_path: Path,
                                   client: ec.EllipticCurve, meter: ec.EllipticCurve) -> None:
    write_client_key(tmp_path, client)
    write_meter_key(tmp_path, meter)
    problems = problems_of(write_config(devices=[ecdsa_device()]))
    assert problems == ["devices[0].server_public_key: not on the curve of client_private_key "
                        "(P-256 and P-384 cannot be mixed)"]


def test_p384_rejects_16_octet_keys(write_config: Writer, tmp_path: Path) -> None:
    write_client_key(tmp_path, P384)
    write_meter_key(tmp_path, P384)
    problems = problems_of(write_config(devices=[ecdsa_device(
        block_cipher_key=EK16, authentication_key=AK16)]))
    assert problems == [
        "devices[0].authentication_key: *** is not allowed: auth HighEcdsa on P-384 (suite 2) "
        "needs 32 octets",
        "devices[0].block_cipher_key: *** is not allowed: auth HighEcdsa on P-384 (suite 2) "
        "needs 32 octets",
    ]


def test_p384_rejects_a_16_octet_authentication_key_with_a_32_octet_block_cipher_key(
        write_config: Writer, tmp_path: Path) -> None:
    write_client_key(tmp_path, P384)
    write_meter_key(tmp_path, P384)
    problems = problems_of(write_config(devices=[ecdsa_device(
        block_cipher_key=EK32, authentication_key=AK16)]))
    assert problems == ["devices[0].authentication_key: *** is not allowed: auth HighEcdsa on "
                        "P-384 (suite 2) needs 32 octets"]


def test_p256_rejects_32_octet_keys(write_config: Writer, tmp_path: Path) -> None:
    write_client_key(tmp_path, P256)
    write_meter_key(tmp_path, P256)
    problems = problems_of(write_config(devices=[ecdsa_device(
        block_cipher_key=EK32, authentication_key=AK32)]))
    assert problems == [
        "devices[0].authentication_key: *** is not allowed: auth HighEcdsa needs 16 octets "
        "(32 with a P-384 key)",
        "devices[0].block_cipher_key: *** is not allowed: auth HighEcdsa needs 16 octets "
        "(32 with a P-384 key)",
    ]


@pytest.mark.parametrize(("curve", "key"), [(P256, EK16), (P384, EK32)], ids=["P-256", "P-384"])
def test_block_cipher_key_needs_authentication_key(write_config: Writer, tmp_path: Path,
                                                   curve: ec.EllipticCurve, key: str) -> None:
    write_client_key(tmp_path, curve)
    write_meter_key(tmp_path, curve)
    problems = problems_of(write_config(devices=[ecdsa_device(block_cipher_key=key)]))
    assert problems == ["devices[0].authentication_key: missing: ciphering with "
                        "block_cipher_key needs authentication_key"]


def test_key_sizes_follow_the_meter_key_when_the_client_key_cannot_be_read(
        write_config: Writer, tmp_path: Path) -> None:
    write_meter_key(tmp_path, P384)
    problems = problems_of(write_config(devices=[ecdsa_device(
        block_cipher_key=EK32, authentication_key=AK32)]))
    assert problems == [f"devices[0].client_private_key: {tmp_path / 'client.pem'}: no such "
                        "file"]
    # and 16-octet keys are then refused by the meter key's curve
    problems = problems_of(write_config(devices=[ecdsa_device(
        block_cipher_key=EK16, authentication_key=AK16)]))
    assert problems == [
        f"devices[0].{name}: *** is not allowed: auth HighEcdsa on P-384 (suite 2) needs "
        "32 octets" for name in ("authentication_key", "block_cipher_key")] + [
        f"devices[0].client_private_key: {tmp_path / 'client.pem'}: no such file"]


@pytest.mark.parametrize("key", ["block_cipher_key", "system_title"])
def test_non_ascii_space_between_octets_is_a_config_problem(write_config: Writer,
                                                            tmp_path: Path, key: str) -> None:
    write_client_key(tmp_path)
    write_meter_key(tmp_path)
    value = {"block_cipher_key": EK16, "system_title": ST}[key]
    spaced = "\u00a0".join(value[i:i + 2] for i in range(0, len(value), 2))  # from a PDF
    path = write_config(devices=[ecdsa_device(authentication_key=AK16, **{key: spaced})])
    try:
        dev = load_config(path).devices[0]
    except ConfigError as exc:  # refused, naming the setting: fine
        assert [p for p in exc.problems if p.startswith(f"devices[0].{key}: ")], exc.problems
    else:  # or taken as a separator: fine too
        assert getattr(dev, key) in (bytes.fromhex(value), Secret(bytes.fromhex(value)))


# -- key files with another auth -------------------------------------------------------------

@pytest.mark.parametrize(("auth", "over"), [
    ("None", {}),
    ("Low", {"password": "00000000"}),
    ("HighGmac", {"system_title": ST, "block_cipher_key": EK16, "authentication_key": AK16}),
])
def test_key_files_with_another_auth_are_warned_and_not_read(
        write_config: Writer, auth: str, over: dict[str, str]) -> None:
    # The files do not exist: they are not read, so this is no problem.
    config = load_config(write_config(devices=[tcp_device(
        auth=auth, client_private_key="client.pem", server_public_key="meter.pub", **over)]))
    assert config.warnings == (
        f"devices[0].client_private_key: set but auth is {auth}; not used",
        f"devices[0].server_public_key: set but auth is {auth}; not used",
    )
    dev = config.devices[0]
    assert dev.signing_key is None and dev.server_public_key is None


def test_one_key_file_with_another_auth_is_warned(write_config: Writer) -> None:
    config = load_config(write_config(devices=[tcp_device(server_public_key="meter.pub")]))
    assert config.warnings == ("devices[0].server_public_key: set but auth is None; not used",)


# -- no key material anywhere ----------------------------------------------------------------

def test_valid_config_shows_no_key(write_config: Writer, tmp_path: Path) -> None:
    scalar = write_client_key(tmp_path, P384)
    write_meter_key(tmp_path, P384)
    config = load_config(write_config(devices=[ecdsa_device(
        block_cipher_key=EK32, authentication_key=AK32)]))
    dev = config.devices[0]
    shown = "\n".join([repr(config), str(config), repr(dev), str(dev), *config.warnings,
                       str(dev.signing_key), repr(dev.signing_key)])
    forms = [*secret_forms(scalar), *file_lines(tmp_path / "client.pem"),
             *secret_forms(bytes.fromhex(EK32)), *secret_forms(bytes.fromhex(AK32))]
    assert [form for form in forms if form in shown] == []
    assert "device_alias='m1'" in repr(config) and "HIGH_ECDSA" in repr(dev)  # not vacuous
    assert mask_secrets(f"key {scalar.hex()}") == f"key {MASK}"  # and logs mask it


@pytest.mark.parametrize("case", ["mixed curves", "wrong key size", "swapped files",
                                  "unsupported curve", "private key as both"])
def test_problems_show_no_key(write_config: Writer, tmp_path: Path, case: str) -> None:
    client_curve = {"mixed curves": P256, "unsupported curve": ec.SECP521R1()}.get(case, P384)
    scalar = write_client_key(tmp_path, client_curve)
    write_meter_key(tmp_path, P384)
    over: dict[str, str] = {}
    if case == "wrong key size":
        over = {"block_cipher_key": EK16, "authentication_key": AK16}
    elif case == "swapped files":
        over = {"client_private_key": "meter.pub", "server_public_key": "client.pem"}
    elif case == "private key as both":
        over = {"server_public_key": "client.pem"}
    with pytest.raises(ConfigError) as info:
        load_config(write_config(devices=[ecdsa_device(**over)]))
    exc = info.value
    assert exc.problems
    shown = "\n".join([str(exc), repr(exc), *exc.problems, *traceback.format_exception(exc)])
    forms = [*secret_forms(scalar), *file_lines(tmp_path / "client.pem"),
             (tmp_path / "client.pem").read_text(), *secret_forms(bytes.fromhex(EK16))]
    assert [form for form in forms if form in shown] == []
