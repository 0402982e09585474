"""HDLC server address resolution from the device configuration (pure).

IEC 62056-46, 6.4.2.2: the server address is split into an upper HDLC address (the
logical device) and an optional lower HDLC address (the physical device). On the wire
each byte carries 7 address bits and an extension bit (LSB, 1 on the last byte):

* 1 byte:  upper address only (0..127); the physical address is not sent.
* 2 bytes: upper and lower, 7 bits each.
* 4 bytes: upper and lower, 14 bits each.

The configuration's combined address value is ``logical << 7 | physical`` for 1 and 2
bytes and ``logical << 14 | physical`` for 4 bytes (WCC Lite convention). A non-zero
meter serial number overrides both: physical = SN % 10000 + 1000, logical = 1, 4 bytes
(the formula for the physical part may be replaced by ``address_formula``).
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from dataclasses import dataclass

from dlmsd.errors import ConfigValueError

__all__ = [
    "DEFAULT_ADDRESS_FORMULA",
    "ServerAddress",
    "compile_address_formula",
    "resolve_server_address",
]

DEFAULT_ADDRESS_FORMULA = "SN % 10000 + 1000"


@dataclass(frozen=True)
class ServerAddress:
    """A resolved HDLC server address."""

    logical: int
    physical: int
    size: int  # 1, 2 or 4 bytes on the wire

    @property
    def value(self) -> int:
        """The combined address value (``logical << 7|14 | physical``)."""
        if self.size == 1:
            return self.logical
        shift = 7 if self.size == 2 else 14
        return self.logical << shift | self.physical

    def to_bytes(self) -> bytes:
        """The address field bytes as sent in an HDLC frame (with extension bits)."""
        if self.size == 1:
            return bytes([(self.logical << 1) | 1])
        if self.size == 2:
            return bytes([self.logical << 1, (self.physical << 1) | 1])
        return bytes(
            [
                (self.logical >> 7) << 1,
                (self.logical & 0x7F) << 1,
                (self.physical >> 7) << 1,
                ((self.physical & 0x7F) << 1) | 1,
            ]
        )

    def describe(self) -> str:
        """E.g. ``0x44EB (bytes 00 02 12 D7, logical 1, physical 1259)``."""
        return (
            f"0x{self.value:X} (bytes {self.to_bytes().hex(' ').upper()}, "
            f"logical {self.logical}, physical {self.physical})"
        )


_OPS: dict[type[ast.AST], Callable[[int, int], int]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.FloorDiv: operator.floordiv,
    ast.Div: operator.floordiv,  # integer arithmetic only
    ast.Mod: operator.mod,
}


#: A formula is a few terms; the bound keeps parsing and evaluation from recursing deep.
MAX_FORMULA_LENGTH = 200


def compile_address_formula(text: str) -> Callable[[int], int]:
    """Compile an integer formula over ``SN`` (e.g. ``SN % 10000 + 1000``).

    Only integers, ``SN``, parentheses and ``+ - * / // %`` are allowed (``/`` is
    integer division). Raises :class:`~dlmsd.errors.ConfigValueError` (a ValueError)
    naming what is not allowed, also when the formula divides by zero.
    """
    if len(text) > MAX_FORMULA_LENGTH:
        raise ConfigValueError(f"a formula of {len(text)} characters; at most "
                               f"{MAX_FORMULA_LENGTH} are allowed")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ConfigValueError(f"not a formula: {exc.msg}") from None

    def check(node: ast.AST) -> None:
        if isinstance(node, ast.Expression):
            check(node.body)
        elif isinstance(node, ast.BinOp):
            if type(node.op) not in _OPS:
                raise ConfigValueError(f"operator {type(node.op).__name__} is not allowed")
            check(node.left)
            check(node.right)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            check(node.operand)
        elif (isinstance(node, ast.Constant) and type(node.value) is int) or (
            isinstance(node, ast.Name) and node.id == "SN"
        ):
            pass
        else:
            raise ConfigValueError(
                f"{ast.unparse(node)!r} is not allowed (use SN, integers, + - * / % and ())"
            )

    check(tree)

    def evaluate(node: ast.AST, sn: int) -> int:
        if isinstance(node, ast.Expression):
            return evaluate(node.body, sn)
        if isinstance(node, ast.BinOp):
            left, right = evaluate(node.left, sn), evaluate(node.right, sn)
            if isinstance(node.op, ast.Div | ast.FloorDiv | ast.Mod) and right == 0:
                raise ConfigValueError("division by zero")
            return _OPS[type(node.op)](left, right)
        if isinstance(node, ast.UnaryOp):
            value = evaluate(node.operand, sn)
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.Constant):
            assert isinstance(node.value, int)  # check() allowed nothing else
            return node.value
        return sn

    return lambda sn: evaluate(tree, sn)


def resolve_server_address(
    *,
    logical: int,
    physical: int,
    size: int,
    serial_number: int = 0,
    address_formula: str | None = None,
) -> ServerAddress:
    """Resolve the server address; raises :class:`~dlmsd.errors.ConfigValueError` (a
    ValueError) naming an impossible address."""
    if serial_number:
        formula = compile_address_formula(address_formula or DEFAULT_ADDRESS_FORMULA)
        physical = formula(serial_number)
        logical, size = 1, 4
    if size not in (1, 2, 4):
        raise ConfigValueError(f"address_size {size} is not allowed: use 1, 2 or 4")
    limit = {1: 0x7F, 2: 0x7F, 4: 0x3FFF}[size]
    if size == 1:
        # The one-byte form carries the upper (logical) address only; the combined
        # value logical << 7 | physical must itself be below 128.
        value = logical << 7 | physical
        if value > 0x7F:
            raise ConfigValueError(
                f"a one-byte server address must be below 128, but logical {logical} and "
                f"physical {physical} give {value}; use address_size 2 or 4"
            )
        return ServerAddress(logical=value, physical=0, size=1)
    for name, part in (("logical", logical), ("physical", physical)):
        if not 0 <= part <= limit:
            raise ConfigValueError(
                f"{name} address {part} does not fit a {size}-byte server address "
                f"(0..{limit})"
            )
    return ServerAddress(logical=logical, physical=physical, size=size)
