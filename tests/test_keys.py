"""dlmsd.keys: the HighEcdsa key files (PEM/DER, PKCS #8/SEC 1, SPKI, X.509) and their errors."""

from __future__ import annotations

import datetime
import errno
import os
import traceback
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import NameOID

from dlmsd.errors import ConfigError
from dlmsd.keys import CURVE_SUITES, KeyFileError, load_private_key, load_public_key
from dlmsd.secret import MASK, Secret, mask_secrets

PEM = serialization.Encoding.PEM
DER = serialization.Encoding.DER
PKCS8 = serialization.PrivateFormat.PKCS8
SEC1 = serialization.PrivateFormat.TraditionalOpenSSL
SPKI = serialization.PublicFormat.SubjectPublicKeyInfo
PLAIN = serialization.NoEncryption()

CURVES = [pytest.param(ec.SECP256R1(), 32, id="P-256"),
          pytest.param(ec.SECP384R1(), 48, id="P-384")]
LOADERS = [pytest.param(load_private_key, id="private"),
           pytest.param(load_public_key, id="public")]
CURVE_HINT = "HighEcdsa needs P-256 (suite 1) or P-384 (suite 2)"

Loader = Callable[[Path], object]


def scalar(key: ec.EllipticCurvePrivateKey, size: int) -> bytes:
    return key.private_numbers().private_value.to_bytes(size, "big")


def point(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> bytes:
    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    return public.public_bytes(serialization.Encoding.X962,
                               serialization.PublicFormat.UncompressedPoint)


def self_signed(key: CertificateIssuerPrivateKeyTypes) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "meter 4D4D4D0000BC614E")])
    now = datetime.datetime.now(datetime.UTC)
    return (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=365))
            .sign(key, hashes.SHA256()))


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def pem_body(pem: bytes) -> list[str]:
    """The base64 lines of a PEM file (what must never be echoed)."""
    return [line for line in pem.decode().splitlines() if line and not line.startswith("-----")]


def key_error(loader: Loader, path: Path) -> str:
    """The KeyFileError message of loading ``path``; it must start by naming the file."""
    with pytest.raises(KeyFileError) as info:
        loader(path)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    return message


# -- private keys ----------------------------------------------------------------------------

@pytest.mark.parametrize(("curve", "size"), CURVES)
@pytest.mark.parametrize(("encoding", "form", "header"), [
    pytest.param(PEM, PKCS8, b"-----BEGIN PRIVATE KEY-----", id="PEM-PKCS8"),
    pytest.param(PEM, SEC1, b"-----BEGIN EC PRIVATE KEY-----", id="PEM-SEC1"),
    pytest.param(DER, PKCS8, b"\x30", id="DER-PKCS8"),
    pytest.param(DER, SEC1, b"\x30", id="DER-SEC1"),
])
def test_private_key_formats_give_the_scalar(tmp_path: Path, curve: ec.EllipticCurve, size: int,
                                              encoding: serialization.Encoding,
                                              form: serialization.PrivateFormat,
                                              header: bytes) -> None:
    key = ec.generate_private_key(curve)
    data = key.private_bytes(encoding, form, PLAIN)
    assert data.startswith(header)  # the file really is in the format under test
    secret = load_private_key(write(tmp_path / "client.key", data))
    assert isinstance(secret, Secret)
    assert len(secret) == size == CURVE_SUITES[curve.name][1]
    assert secret.reveal() == scalar(key, size)


@pytest.mark.parametrize(("curve", "size"), CURVES)
def test_small_scalar_keeps_its_leading_zero_octets(tmp_path: Path, curve: ec.EllipticCurve,
                                                    size: int) -> None:
    key = ec.derive_private_key(1, curve)
    secret = load_private_key(write(tmp_path / "one.pem", key.private_bytes(PEM, PKCS8, PLAIN)))
    assert secret.reveal() == bytes(size - 1) + b"\x01"


def test_openssl_ecparam_output_with_parameters_block_loads(tmp_path: Path) -> None:
    # `openssl ecparam -genkey` writes an EC PARAMETERS block before the key.
    key = ec.generate_private_key(ec.SECP256R1())
    data = (b"-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n"
            + key.private_bytes(PEM, SEC1, PLAIN))
    assert load_private_key(write(tmp_path / "ecparam.pem", data)).reveal() == scalar(key, 32)


def test_loaded_scalar_is_masked_everywhere(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    secret = load_private_key(write(tmp_path / "k.pem", key.private_bytes(PEM, PKCS8, PLAIN)))
    value = scalar(key, 32)
    assert str(secret) == MASK and repr(secret) == f"Secret({MASK})" and f"{secret}" == MASK
    assert mask_secrets(f"k={value.hex()} K={value.hex().upper()}") == f"k={MASK} K={MASK}"


# -- public keys -----------------------------------------------------------------------------

@pytest.mark.parametrize(("curve", "size"), CURVES)
@pytest.mark.parametrize("form", ["PEM-SPKI", "DER-SPKI", "PEM-cert", "DER-cert"])
def test_public_key_formats_give_the_uncompressed_point(tmp_path: Path, curve: ec.EllipticCurve,
                                                        size: int, form: str) -> None:
    key = ec.generate_private_key(curve)
    encoding = PEM if form.startswith("PEM") else DER
    if form.endswith("cert"):
        data = self_signed(key).public_bytes(encoding)
    else:
        data = key.public_key().public_bytes(encoding, SPKI)
    result = load_public_key(write(tmp_path / "meter.key", data))
    assert result == point(key)
    assert len(result) == 2 * size + 1 and result[0] == 0x04


def test_certificate_with_openssl_text_before_it_loads(tmp_path: Path) -> None:
    # `openssl x509 -text` writes the decoded certificate before the PEM block.
    key = ec.generate_private_key(ec.SECP384R1())
    data = (b"Certificate:\n    Data:\n        Version: 3 (0x2)\n"
            + self_signed(key).public_bytes(PEM))
    assert load_public_key(write(tmp_path / "meter.crt", data)) == point(key)


# -- reading the file ------------------------------------------------------------------------

@pytest.mark.parametrize("loader", LOADERS)
def test_missing_file(tmp_path: Path, loader: Loader) -> None:
    path = tmp_path / "nope.pem"
    assert key_error(loader, path) == f"{path}: no such file"


@pytest.mark.parametrize("loader", LOADERS)
def test_directory_instead_of_file(tmp_path: Path, loader: Loader) -> None:
    assert key_error(loader, tmp_path) == f"{tmp_path}: is a directory, not a key file"


@pytest.mark.parametrize("loader", LOADERS)
def test_fifo_is_refused_without_blocking(tmp_path: Path, loader: Loader) -> None:
    path = tmp_path / "key.pem"
    os.mkfifo(path)  # opening it for reading would wait for a writer forever
    assert key_error(loader, path) == f"{path}: not a regular file"


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any file")
@pytest.mark.parametrize("loader", LOADERS)
def test_unreadable_file(tmp_path: Path, loader: Loader) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    path = write(tmp_path / "k.pem", key.private_bytes(PEM, PKCS8, PLAIN))
    path.chmod(0)
    assert key_error(loader, path) == f"{path}: cannot read: permission denied"


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize(("error", "reason"), [
    (PermissionError(errno.EACCES, "Permission denied"), "cannot read: permission denied"),
    (OSError(errno.EIO, "Input/output error"), "cannot read: Input/output error"),
])
def test_read_errors_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loader: Loader,
                               error: OSError, reason: str) -> None:
    # Also runs as root (where chmod 0 does not stop a read).
    path = write(tmp_path / "k.pem", b"")
    real_open = Path.open

    def failing_open(self: Path, *args: object, **kwargs: object) -> object:
        if self == path:
            raise error
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", failing_open)
    assert key_error(loader, path) == f"{path}: {reason}"


@pytest.mark.parametrize("loader", LOADERS)
def test_file_over_64_kib_is_refused_and_64_kib_is_read(tmp_path: Path, loader: Loader) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = (key.private_bytes(PEM, PKCS8, PLAIN) if loader is load_private_key
           else key.public_key().public_bytes(PEM, SPKI))
    exact = write(tmp_path / "exact.pem", pem + b"\n" * (64 * 1024 - len(pem)))
    assert exact.stat().st_size == 65536
    loader(exact)  # no error at the limit
    over = write(tmp_path / "over.pem", pem + b"\n" * (64 * 1024 + 1 - len(pem)))
    assert key_error(loader, over) == f"{over}: over 65536 bytes, not a key file"


# -- unusable private keys -------------------------------------------------------------------

ENCRYPTED = ": the private key is encrypted; store it unencrypted (readable by the daemon only)"


@pytest.mark.parametrize(("encoding", "form"), [
    pytest.param(PEM, PKCS8, id="PEM-PKCS8"), pytest.param(PEM, SEC1, id="PEM-SEC1"),
    pytest.param(DER, PKCS8, id="DER-PKCS8"),
])
def test_encrypted_private_key(tmp_path: Path, encoding: serialization.Encoding,
                               form: serialization.PrivateFormat) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    data = key.private_bytes(encoding, form, serialization.BestAvailableEncryption(b"pw"))
    path = write(tmp_path / "enc.key", data)
    assert key_error(load_private_key, path) == f"{path}{ENCRYPTED}"


@pytest.mark.parametrize("data", [
    pytest.param(b"", id="empty"),
    pytest.param(b"this is not a key\n", id="text"),
    pytest.param(bytes(range(256)) * 4, id="binary"),
    pytest.param(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", id="bad-PEM"),
])
def test_garbage_as_private_key(tmp_path: Path, data: bytes) -> None:
    path = write(tmp_path / "junk", data)
    assert key_error(load_private_key, path) == f"{path}: not a PEM or DER private key"


@pytest.mark.parametrize("encoding", [PEM, DER])
def test_rsa_private_key(tmp_path: Path, rsa_key: rsa.RSAPrivateKey,
                         encoding: serialization.Encoding) -> None:
    path = write(tmp_path / "rsa.key", rsa_key.private_bytes(encoding, PKCS8, PLAIN))
    message = key_error(load_private_key, path)
    assert message.endswith(" is not an EC private key") and "RSAPrivateKey" in message


@pytest.mark.parametrize("curve", [ec.SECP521R1(), ec.SECP256K1(), ec.SECP224R1()],
                         ids=lambda c: c.name)
def test_private_key_on_another_curve(tmp_path: Path, curve: ec.EllipticCurve) -> None:
    key = ec.generate_private_key(curve)
    path = write(tmp_path / "other.pem", key.private_bytes(PEM, PKCS8, PLAIN))
    assert key_error(load_private_key, path) == f"{path}: an EC key on {curve.name}; {CURVE_HINT}"


@pytest.mark.parametrize("form", ["PEM-SPKI", "DER-SPKI", "PEM-cert", "DER-cert"])
def test_public_key_given_as_private_key(tmp_path: Path, form: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    encoding = PEM if form.startswith("PEM") else DER
    data = (self_signed(key).public_bytes(encoding) if form.endswith("cert")
            else key.public_key().public_bytes(encoding, SPKI))
    path = write(tmp_path / "meter.pub", data)
    assert key_error(load_private_key, path) == f"{path}: not a PEM or DER private key"


# -- unusable public keys --------------------------------------------------------------------

@pytest.mark.parametrize(("data", "reason"), [
    (b"", "not a PEM or DER public key or X.509 certificate"),
    (b"this is not a key\n", "not a PEM or DER public key or X.509 certificate"),
    (bytes(range(256)) * 4, "not a PEM or DER public key or X.509 certificate"),
    (b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
     "not a PEM public key or X.509 certificate"),
    (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
     "not a valid X.509 certificate"),
], ids=["empty", "text", "binary", "bad-PEM-key", "bad-PEM-cert"])
def test_garbage_as_public_key(tmp_path: Path, data: bytes, reason: str) -> None:
    path = write(tmp_path / "junk", data)
    assert key_error(load_public_key, path) == f"{path}: {reason}"


@pytest.mark.parametrize("form", ["PEM-SPKI", "DER-SPKI", "PEM-cert", "DER-cert"])
def test_rsa_public_key(tmp_path: Path, rsa_key: rsa.RSAPrivateKey, form: str) -> None:
    encoding = PEM if form.startswith("PEM") else DER
    data = (self_signed(rsa_key).public_bytes(encoding) if form.endswith("cert")
            else rsa_key.public_key().public_bytes(encoding, SPKI))
    path = write(tmp_path / "rsa.pub", data)
    assert key_error(load_public_key, path) == f"{path}: not an EC public key"


@pytest.mark.parametrize("curve", [ec.SECP521R1(), ec.SECP256K1()], ids=lambda c: c.name)
@pytest.mark.parametrize("form", ["PEM-SPKI", "DER-SPKI", "PEM-cert", "DER-cert"])
def test_public_key_on_another_curve(tmp_path: Path, curve: ec.EllipticCurve,
                                     form: str) -> None:
    key = ec.generate_private_key(curve)
    encoding = PEM if form.startswith("PEM") else DER
    data = (self_signed(key).public_bytes(encoding) if form.endswith("cert")
            else key.public_key().public_bytes(encoding, SPKI))
    path = write(tmp_path / "other.pub", data)
    assert key_error(load_public_key, path) == f"{path}: an EC key on {curve.name}; {CURVE_HINT}"


@pytest.mark.parametrize(("encoding", "form", "reason"), [
    (PEM, PKCS8, "not a PEM public key or X.509 certificate"),
    (PEM, SEC1, "not a PEM public key or X.509 certificate"),
    (DER, PKCS8, "not a PEM or DER public key or X.509 certificate"),
    (DER, SEC1, "not a PEM or DER public key or X.509 certificate"),
], ids=["PEM-PKCS8", "PEM-SEC1", "DER-PKCS8", "DER-SEC1"])
def test_private_key_given_as_public_key(tmp_path: Path, encoding: serialization.Encoding,
                                         form: serialization.PrivateFormat, reason: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    path = write(tmp_path / "client.key", key.private_bytes(encoding, form, PLAIN))
    assert key_error(load_public_key, path) == f"{path}: {reason}"


# -- no key material in any error ------------------------------------------------------------

def _secret_forms(key: ec.EllipticCurvePrivateKey) -> list[str]:
    value = key.private_numbers().private_value
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return [raw.hex(), raw.hex().upper(), raw.hex(" "), raw.hex(":"), str(value),
            *pem_body(key.private_bytes(PEM, PKCS8, PLAIN)),
            *pem_body(key.private_bytes(PEM, SEC1, PLAIN))]


def _leak_case(case: str, tmp_path: Path) -> tuple[Loader, Path, list[str]]:
    """A bad key file holding private key material, the loader, and that material's forms."""
    curve: ec.EllipticCurve = {"P-521": ec.SECP521R1(), "secp256k1": ec.SECP256K1()}.get(
        case.split()[0], ec.SECP256R1())
    key = ec.generate_private_key(curve)
    forms = _secret_forms(key)
    loader: Loader = load_private_key
    if case.endswith("as public PEM"):
        data, loader = key.private_bytes(PEM, SEC1, PLAIN), load_public_key
    elif case.endswith("as public DER"):
        data, loader = key.private_bytes(DER, PKCS8, PLAIN), load_public_key
    elif case == "truncated":
        pem = key.private_bytes(PEM, PKCS8, PLAIN)
        lines = pem.splitlines(keepends=True)
        data = b"".join(lines[:2] + lines[-1:])  # a body line lost
    elif case == "oversized":
        pem = key.private_bytes(PEM, PKCS8, PLAIN)
        data = pem + b"\n" * (64 * 1024)
    elif case == "encrypted":
        data = key.private_bytes(PEM, PKCS8, serialization.BestAvailableEncryption(b"pw"))
        forms += pem_body(data)
    else:
        data = key.private_bytes(PEM, PKCS8, PLAIN)
    return loader, write(tmp_path / "key.pem", data), forms


@pytest.mark.parametrize("case", ["P-521", "secp256k1", "P-256 as public PEM",
                                  "P-256 as public DER", "truncated", "oversized", "encrypted"])
def test_no_key_material_in_errors(tmp_path: Path, case: str) -> None:
    loader, path, forms = _leak_case(case, tmp_path)
    with pytest.raises(KeyFileError) as info:
        loader(path)
    exc = info.value
    shown = "\n".join([str(exc), repr(exc), *traceback.format_exception(exc)])
    assert str(path) in str(exc)
    leaked = [form for form in forms if len(form) >= 8 and form in shown]
    assert leaked == []
    assert exc.__cause__ is None  # nothing of the parser's error is chained


def test_no_rsa_key_material_in_errors(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    pem = rsa_key.private_bytes(PEM, PKCS8, PLAIN)
    numbers = rsa_key.private_numbers()
    forms = [*pem_body(pem), f"{numbers.d:x}", f"{numbers.d:X}", str(numbers.p)]
    for loader in (load_private_key, load_public_key):
        with pytest.raises(KeyFileError) as info:
            loader(write(tmp_path / "rsa.pem", pem))
        shown = "\n".join([str(info.value), *traceback.format_exception(info.value)])
        assert [form for form in forms if form in shown] == []


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.mark.parametrize("loader", LOADERS)
def test_a_key_pasted_for_a_file_name_is_not_echoed(tmp_path: Path, loader: Loader) -> None:
    """The config's other keys are hex values: pasting the scalar or the PEM text into
    client_private_key must not print it back in the error."""
    key = ec.generate_private_key(ec.SECP256R1())
    scalar = key.private_numbers().private_value.to_bytes(32, "big").hex()
    pem = key.private_bytes(PEM, PKCS8, PLAIN).decode()
    for pasted in (scalar, scalar.upper(), pem, pem.replace("\n", "")):
        with pytest.raises(KeyFileError) as info:
            loader(tmp_path / pasted)
        assert str(info.value) == ("the value given (not shown: it looks like a key, not a file "
                           "name): no such file")


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize(("name", "why"), [("a\x00b", "not a valid file name"),
                                           ("x" * 300, "cannot read: File name too long")])
def test_impossible_file_names_are_key_file_errors(tmp_path: Path, loader: Loader,
                                                   name: str, why: str) -> None:
    assert key_error(loader, tmp_path / name) == f"{tmp_path / name}: {why}"


def test_key_file_error_is_a_config_error() -> None:
    assert issubclass(KeyFileError, ConfigError)
    assert not issubclass(KeyFileError, ValueError)  # an `except ValueError` misses it


@pytest.mark.parametrize("loader", LOADERS)
def test_a_file_named_like_a_key_is_not_echoed_by_any_error(tmp_path: Path,
                                                            loader: Loader) -> None:
    """Every error names the file the same way, also after it was read."""
    named_like_a_key = "c0ffee" * 8
    wrong_curve = ec.generate_private_key(ec.SECP521R1())
    data = (wrong_curve.private_bytes(PEM, PKCS8, PLAIN) if loader is load_private_key
            else wrong_curve.public_key().public_bytes(PEM, SPKI))
    for content in (b"not a key at all", data):
        with pytest.raises(KeyFileError) as info:
            loader(write(tmp_path / named_like_a_key, content))
        assert named_like_a_key not in str(info.value)
        assert str(info.value).startswith("the value given (not shown")
