"""What ``dlmsctl decode`` is given, split into frames (pure: text in, chunks out).

Either hex (spaces, ``0x`` prefixes, commas, colons and line breaks are ignored), or a
``dlms -d7 --dlms`` log in text or JSON lines: every ``dlms_tx``/``dlms_rx`` line (and
every ``flight_frame`` of a flight-recorder dump) becomes one chunk, in order, with its
direction and device (see :mod:`dlmsd.trace` for what the lines carry).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Final

from dlmsd.errors import ConfigValueError

__all__ = ["Chunk", "InputError", "looks_like_log", "parse_hex", "parse_input"]

_FRAME_EVENTS: Final = ("dlms_tx", "dlms_rx", "flight_frame")
_TEXT_EVENT: Final = re.compile(r"(?:^|\s)(dlms_tx|dlms_rx|flight_frame)(?:\s|$)")
_TEXT_FIELD: Final = re.compile(r"(?:^|\s)(device|dir|hex)=('[^']*'|\"[^\"]*\"|\S+)")
_SEPARATORS: Final = re.compile(r"0[xX]|[\s,:]")


class InputError(ConfigValueError):
    """Input that is neither hex nor a trace log, naming where."""


@dataclass(frozen=True)
class Chunk:
    data: bytes
    direction: str = ""  # "tx", "rx" or unknown
    device: str = ""
    line: int | None = None  # the log line it came from
    flight: bool = False  # from a flight-recorder dump


def parse_hex(text: str, line: int | None = None) -> bytes:
    """Hex digits with optional separators; InputError names the first bad character."""
    digits: list[str] = []
    column = 0
    while column < len(text):
        sep = _SEPARATORS.match(text, column)
        if sep:
            column = sep.end()
            continue
        ch = text[column]
        if ch not in "0123456789abcdefABCDEF":
            where = f"line {line}, " if line is not None else ""
            raise InputError(f"{where}character {column + 1}: expected a hex digit, got {ch!r}")
        digits.append(ch)
        column += 1
    if len(digits) % 2:
        raise InputError(f"{len(digits)} hex digits: expected an even number (whole bytes)")
    return bytes.fromhex("".join(digits))


def looks_like_log(text: str) -> bool:
    return any(_TEXT_EVENT.search(line) or _json_frame(line) is not None
               for line in text.splitlines())


def _json_frame(line: str) -> dict[str, object] | None:
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        doc = json.loads(line)
    except ValueError:
        return None
    if isinstance(doc, dict) and doc.get("event") in _FRAME_EVENTS and "hex" in doc:
        return doc
    return None


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def parse_log(text: str) -> list[Chunk]:
    """The frames of a trace log, in order; lines that carry none are skipped.

    A flight-recorder dump repeats frames already traced with ``--dlms``: its
    ``flight_frame`` lines are used only when the log has no ``dlms_tx``/``dlms_rx``.
    """
    chunks = _parse_log(text)
    if any(not c.flight for c in chunks):
        return [c for c in chunks if not c.flight]
    return chunks


def _parse_log(text: str) -> list[Chunk]:
    chunks: list[Chunk] = []
    for number, line in enumerate(text.splitlines(), 1):
        doc = _json_frame(line)
        if doc is not None:
            event = str(doc.get("event"))
            direction = str(doc.get("dir", "")) if event == "flight_frame" else event[5:]
            chunks.append(Chunk(parse_hex(str(doc["hex"]), number), direction,
                                str(doc.get("device", "")), number, event == "flight_frame"))
            continue
        match = _TEXT_EVENT.search(line)
        if match is None:
            continue
        fields = {key: _unquote(value) for key, value in _TEXT_FIELD.findall(line)}
        if "hex" not in fields:
            continue
        event = match.group(1)
        direction = fields.get("dir", "") if event == "flight_frame" else event[5:]
        chunks.append(Chunk(parse_hex(fields["hex"], number), direction,
                            fields.get("device", ""), number, event == "flight_frame"))
    return chunks


def parse_input(text: str) -> list[Chunk]:
    """A log's frames, or one chunk of hex."""
    if looks_like_log(text):
        return parse_log(text)
    return [Chunk(parse_hex(text))]
