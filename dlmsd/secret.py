"""A wrapper that keeps passwords and keys out of reprs, logs and exceptions.

A :class:`Secret` prints as ``***`` whatever is done with it (``str``, ``repr``,
f-strings, structlog rendering); only :meth:`Secret.reveal` gives the value, and only
the code that puts it on the wire calls that. Every Secret created is also recorded
in a process-wide registry so that the log renderer can mask the value (as text,
hex and upper-case hex) should it ever reach a log line by another route.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

__all__ = ["MASK", "Secret", "known_secret_forms", "mask_secrets"]

MASK = "***"

_registry_lock = threading.Lock()
_registry: set[str] = set()


def _forms(value: bytes) -> Iterable[str]:
    """Every encoding in which a secret could show up in text output."""
    if len(value) < 3:  # too short to mask without wrecking unrelated output
        return ()
    forms = {value.hex(), value.hex().upper(), value.hex(" "), value.hex(" ").upper()}
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        if text.strip():
            forms.add(text)
    return forms


class Secret:
    """A password or key. Never shows its value except through :meth:`reveal`."""

    __slots__ = ("_value",)

    def __init__(self, value: str | bytes) -> None:
        raw = value.encode("utf-8") if isinstance(value, str) else bytes(value)
        self._value = raw
        with _registry_lock:
            _registry.update(_forms(raw))

    def reveal(self) -> bytes:
        """The secret's bytes, for the one place that puts them on the wire."""
        return self._value

    def __len__(self) -> int:
        return len(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return f"Secret({MASK})"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return MASK

    def __reduce__(self) -> tuple[object, ...]:  # no pickling the value out
        raise TypeError("Secret cannot be pickled")


def known_secret_forms() -> frozenset[str]:
    """All registered secret strings (text and hex forms)."""
    with _registry_lock:
        return frozenset(_registry)


def mask_secrets(text: str) -> str:
    """Replace every registered secret form in ``text`` by ``***``."""
    forms = known_secret_forms()
    if not forms:
        return text
    # Longest first so that a hex form is not half-masked by a shorter text form.
    for form in sorted(forms, key=len, reverse=True):
        if form in text:
            text = text.replace(form, MASK)
    return text
