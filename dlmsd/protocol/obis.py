"""OBIS codes (IEC 62056-6-1): the six-group logical name of every COSEM object.

This module owns the text and byte forms of an OBIS code and the configuration
form "OBIS code plus attribute index".  It is pure (no I/O).

IEC 62056-6-1 clause 4 "OBIS structure": six value groups A..F, each 0..255.
On the wire the logical name is ``octet-string (SIZE(6))``, the groups in order A..F
(Blue Book 4.1.8.2 "logical_name").

Text forms accepted by :meth:`Obis.parse` (ASCII digits, surrounding blanks ignored):

* dotted, all six groups: ``1.0.1.8.0.255``
* IEC form ``A-B:C.D.E*F``: ``1-0:1.8.0*255``; a dot may replace the star:
  ``1-0:1.8.0.255``; and F may be left out, meaning 255 (the usual value for
  "current value, no billing period"): ``1-0:1.8.0`` is ``1-0:1.8.0*255``.

Hex forms and the short forms without A and B (``1.8.0``) are rejected: they are
ambiguous in configuration files.  Parse errors are
:class:`~dlmsd.errors.ConfigValueError` (config text, also a ``ValueError``; the
config loader lists them as problems); byte decoding errors are ``DecodeError``.
Building an :class:`Obis` from groups outside 0..255 is a programming error
(``ValueError``): no text or bytes get there.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Final

from dlmsd.errors import ConfigValueError, DecodeError

__all__ = ["DEFAULT_ATTRIBUTE", "Obis", "parse_signal_obis"]

#: Attribute read when the configuration names only the object: attribute 2 is the
#: value of Data, Register, Extended register, Clock (time) and Profile generic (buffer).
DEFAULT_ATTRIBUTE: Final = 2

_FORMS: Final = "'A.B.C.D.E.F' (1.0.1.8.0.255) or 'A-B:C.D.E*F' (1-0:1.8.0*255, 1-0:1.8.0)"
_G: Final = r"([0-9]{1,3})"
_DOTTED: Final = rf"{_G}\.{_G}\.{_G}\.{_G}\.{_G}\.{_G}"
_IEC: Final = rf"{_G}-{_G}:{_G}\.{_G}\.{_G}(?:[*.]{_G})?"
_OBIS_RE: Final = re.compile(rf"(?:{_DOTTED})|(?:{_IEC})")
# The IEC form has its own ':' right after group B; an attribute suffix can only
# be a final ':N' after a complete code, so one anchored pattern tells them apart.
_SIGNAL_RE: Final = re.compile(rf"((?:{_DOTTED})|(?:{_IEC})):([0-9]{{1,3}})")


@dataclass(frozen=True, order=True)
class Obis:
    """An OBIS code, value groups ``a`` .. ``f`` (each 0..255)."""

    a: int
    b: int
    c: int
    d: int
    e: int
    f: int = 255

    def __post_init__(self) -> None:
        for name in "abcdef":
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 255:
                raise ValueError(f"OBIS group {name.upper()} = {value!r} is not in 0..255")

    @classmethod
    def parse(cls, text: str) -> Obis:
        """Parse the dotted or IEC text form (see module docstring); ConfigValueError if
        neither."""
        match = _OBIS_RE.fullmatch(text.strip())
        if match is None:
            raise ConfigValueError(f"OBIS code {text!r} is not in the form {_FORMS}")
        return cls._from_match(text, match.groups())

    @classmethod
    def _from_match(cls, text: str, groups: tuple[str | None, ...]) -> Obis:
        dotted, iec = groups[:6], groups[6:12]
        parts = dotted if dotted[0] is not None else iec
        values = [255 if p is None else int(p) for p in parts]  # only IEC F may be absent
        bad = [v for v in values if v > 255]
        if bad:
            raise ConfigValueError(f"OBIS code {text!r}: group value {bad[0]} is not in "
                                   "0..255")
        return cls(*values)

    @classmethod
    def from_bytes(cls, data: bytes) -> Obis:
        """From the 6-byte logical name; :class:`DecodeError` if not exactly 6 bytes."""
        if len(data) != 6:
            raise DecodeError(f"OBIS logical name needs 6 bytes, got {len(data)}")
        return _from_octets(bytes(data)) if cls is Obis else cls(*data)

    def to_bytes(self) -> bytes:
        return bytes((self.a, self.b, self.c, self.d, self.e, self.f))

    def iec(self) -> str:
        """The IEC 62056-6-1 text form, e.g. ``1-0:1.8.0*255``."""
        return f"{self.a}-{self.b}:{self.c}.{self.d}.{self.e}*{self.f}"

    def __str__(self) -> str:
        return f"{self.a}.{self.b}.{self.c}.{self.d}.{self.e}.{self.f}"


def parse_signal_obis(text: str) -> tuple[Obis, int]:
    """Parse "OBIS code, optionally ``:N``" into ``(obis, attribute_index)``.

    ``1.0.1.8.0.255`` -> attribute 2 (:data:`DEFAULT_ATTRIBUTE`);
    ``1.0.1.8.0.255:3`` and ``1-0:1.8.0*255:3`` -> attribute 3.  The ':' inside the
    IEC form (``1-0:...``) is not an attribute separator.  The attribute index must be
    1..127: it is a positive Integer8 in the Cosem-Attribute-Descriptor (0 means "all
    attributes", which is not a signal).  Raises :class:`~dlmsd.errors.ConfigValueError`
    naming the text.
    """
    stripped = text.strip()
    match = _SIGNAL_RE.fullmatch(stripped)
    if match is None:
        try:
            return Obis.parse(text), DEFAULT_ATTRIBUTE
        except ConfigValueError as exc:
            raise ConfigValueError(
                f"signal {text!r}: {exc}; it may be followed by ':N' (attribute index)"
            ) from exc
    groups = match.groups()
    obis = Obis._from_match(text, groups[1:13])
    attribute = int(groups[13] or "0")
    if not 1 <= attribute <= 127:
        raise ConfigValueError(
            f"signal {text!r}: attribute index {attribute} is not in 1..127 "
            f"(write an OBIS code in the form {_FORMS}, optionally followed by ':N')"
        )
    return obis, attribute


@functools.lru_cache(maxsize=4096)
def _from_octets(data: bytes) -> Obis:
    """The Obis of a logical name as received: a value object, so the ones a meter
    sends in every answer (and every request) are made once (bounded)."""
    return Obis(*data)
