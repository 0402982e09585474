"""ECDSA key files for HLS mechanism 7 (HighEcdsa): read and checked at configuration time.

``client_private_key`` names the client's signing key: PEM (``PRIVATE KEY`` PKCS #8 or
``EC PRIVATE KEY`` SEC 1) or DER, unencrypted.  ``server_public_key`` names the meter's
signing public key: a PEM or DER ``PUBLIC KEY`` (SubjectPublicKeyInfo) or the meter's
X.509 certificate (PEM or DER), whose public key is taken.  Both must be on P-256
(security suite 1) or P-384 (suite 2), the same curve.

What is kept: the private scalar as a :class:`~dlmsd.secret.Secret` (so every log line
masks it) and the public key as its X9.62 uncompressed point.  Neither the key nor any
part of it appears in an error message; errors (:class:`KeyFileError`, a
:class:`~dlmsd.errors.ConfigError`) name the file and what is wrong.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Final

from dlmsd.errors import ConfigError
from dlmsd.secret import Secret

# cryptography is imported by the loaders: only a configuration with HighEcdsa keys
# pays for it (issue 16).
if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec

__all__ = ["CURVE_SUITES", "KeyFileError", "load_private_key", "load_public_key"]

#: curve name -> (security suite, octets of a scalar / coordinate)
CURVE_SUITES: Final = {"secp256r1": (1, 32), "secp384r1": (2, 48)}
MAX_KEY_FILE: Final = 64 * 1024  # a key or certificate file is a few kB at most


class KeyFileError(ConfigError):
    """A key file that cannot be used; the message names the file, never its content.

    A :class:`~dlmsd.errors.ConfigError`, not a ``ValueError``: the key file names
    come from the configuration or the command line."""


_HEX_RUN: Final = re.compile(r"[0-9A-Fa-f]{32,}")


def _named(path: Path) -> str:
    """How errors name ``path``: not at all when the value given looks like key
    material (a hex scalar or a PEM text pasted where a file name belongs)."""
    text = str(path)
    if ("-----" in text or "\n" in text or "PRIVATE KEY" in text or "PUBLIC KEY" in text
            or any(_HEX_RUN.fullmatch(part) for part in path.parts)):
        return "the value given (not shown: it looks like a key, not a file name)"
    return text


def _read(path: Path) -> bytes:
    name = _named(path)
    # Causes are dropped (from None): an OSError holds the name as given, which may be
    # a pasted key, and the loaders' errors may quote key material.
    try:
        # A FIFO or a device would block the configuration load: only regular files.
        if path.exists() and not path.is_dir() and not path.is_file():
            raise KeyFileError(f"{name}: not a regular file")
        with path.open("rb") as handle:
            data = handle.read(MAX_KEY_FILE + 1)
    except FileNotFoundError:
        raise KeyFileError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise KeyFileError(f"{name}: is a directory, not a key file") from None
    except PermissionError:
        raise KeyFileError(f"{name}: cannot read: permission denied") from None
    except OSError as exc:
        raise KeyFileError(f"{name}: cannot read: {exc.strerror or type(exc).__name__}"
                           ) from None
    except ValueError:  # e.g. an embedded NUL character
        raise KeyFileError(f"{name}: not a valid file name") from None
    if len(data) > MAX_KEY_FILE:
        raise KeyFileError(f"{name}: over {MAX_KEY_FILE} bytes, not a key file")
    return data


def _curve(path: Path, key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> int:
    curve = key.curve.name
    if curve not in CURVE_SUITES:
        raise KeyFileError(f"{_named(path)}: an EC key on {curve}; HighEcdsa needs P-256 "
                           "(suite 1) or P-384 (suite 2)")
    return CURVE_SUITES[curve][1]


def load_private_key(path: Path) -> Secret:
    """The client's private scalar (32 octets for P-256, 48 for P-384)."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    data = _read(path)
    loader = (serialization.load_pem_private_key if b"-----BEGIN" in data
              else serialization.load_der_private_key)
    try:
        key = loader(data, password=None)
    except TypeError:
        raise KeyFileError(f"{_named(path)}: the private key is encrypted; store it "
                           "unencrypted (readable by the daemon only)") from None
    except (ValueError, UnsupportedAlgorithm):
        raise KeyFileError(f"{_named(path)}: not a PEM or DER private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        kind = type(key).__name__.removeprefix("_")
        raise KeyFileError(f"{_named(path)}: a {kind} is not an EC private key")
    size = _curve(path, key)
    return Secret(key.private_numbers().private_value.to_bytes(size, "big"))


def load_public_key(path: Path) -> bytes:
    """The meter's public key as an X9.62 uncompressed point (65 or 97 octets)."""
    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    data = _read(path)
    pem = b"-----BEGIN" in data
    key: object
    if b"CERTIFICATE" in data or not pem:
        try:
            cert = (x509.load_pem_x509_certificate(data) if pem
                    else x509.load_der_x509_certificate(data))
            key = cert.public_key()
        except (ValueError, UnsupportedAlgorithm):
            key = None
        if key is None and not pem:
            try:
                key = serialization.load_der_public_key(data)
            except (ValueError, UnsupportedAlgorithm):
                raise KeyFileError(f"{_named(path)}: not a PEM or DER public key or X.509 "
                                   "certificate") from None
        elif key is None:
            raise KeyFileError(f"{_named(path)}: not a valid X.509 certificate") from None
    else:
        try:
            key = serialization.load_pem_public_key(data)
        except (ValueError, UnsupportedAlgorithm):
            raise KeyFileError(f"{_named(path)}: not a PEM public key or X.509 "
                               "certificate") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise KeyFileError(f"{_named(path)}: not an EC public key")
    _curve(path, key)
    return key.public_bytes(serialization.Encoding.X962,
                            serialization.PublicFormat.UncompressedPoint)
