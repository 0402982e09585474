"""A fast yes-or-no check of a document against a JSON Schema (issue 16).

:mod:`jsonschema` says exactly what is wrong and where, which is what a configuration
error needs, but it costs about a millisecond per device (it resolves ``$ref`` and
builds a validator per level for every value), and importing it costs memory and time
at every start. A valid configuration, the usual case, needs no explanation: this
module compiles a schema once into plain closures that only answer "valid?", and
:mod:`dlmsd.config` runs :mod:`jsonschema` (imported then) only when the answer is no,
so every error message stays jsonschema's.

Only the part of JSON Schema 2020-12 that dlmsd's configuration schema uses is
supported, with jsonschema's semantics (``1.0`` is an integer, ``true`` is not 1,
``pattern`` searches, numeric keywords ignore non-numbers). A keyword it does not know
raises :class:`UnsupportedSchema` when the schema is compiled, never later: it cannot
accept a document by ignoring a rule. ``tests/test_schema_check.py`` checks its answer
against jsonschema's on many broken configurations.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["Check", "UnsupportedSchema", "compile_schema"]

#: ``check(value)``: True when ``value`` is valid.
Check = Callable[[Any], bool]

#: Keywords that only annotate (they never make a document invalid).
_ANNOTATIONS = frozenset({"$schema", "$id", "$comment", "$defs", "title", "description",
                          "default", "examples", "x-allowed", "deprecated", "readOnly",
                          "writeOnly"})



class UnsupportedSchema(ValueError):
    """The schema uses a keyword (or form) this checker does not implement."""


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_integer(value: object) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


_TYPES: Mapping[str, Check] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "integer": _is_integer,
    "number": _is_number,
}


def _type_test(names: object) -> Check:
    listed = [str(name) for name in names] if isinstance(names, list) else [str(names)]
    if not listed or any(name not in _TYPES for name in listed):
        raise UnsupportedSchema(f"type {names!r}")
    tests = [_TYPES[name] for name in listed]
    if len(tests) == 1:
        return tests[0]
    return lambda value: any(test(value) for test in tests)


def _equal(one: object, two: object) -> bool:
    """JSON equality: ``1 == 1.0`` but ``true != 1``; arrays and objects by content."""
    if isinstance(one, bool) or isinstance(two, bool):
        return isinstance(one, bool) and isinstance(two, bool) and one == two
    if isinstance(one, list) and isinstance(two, list):
        return len(one) == len(two) and all(_equal(a, b) for a, b in zip(one, two, strict=True))
    if isinstance(one, dict) and isinstance(two, dict):
        return one.keys() == two.keys() and all(_equal(one[k], two[k]) for k in one)
    if isinstance(one, list | dict) or isinstance(two, list | dict):
        return False
    return one == two


def _all(checks: list[Check]) -> Check:
    if not checks:
        return lambda value: True
    if len(checks) == 1:
        return checks[0]

    def every(value: object) -> bool:
        for check in checks:  # noqa: SIM110 - a loop: all() of a generator costs more
            if not check(value):
                return False
        return True
    return every


#: The keywords of each group; a schema's keywords of one group make one check.
_SCALAR_KEYS = frozenset({"type", "enum", "const", "minLength", "maxLength", "pattern",
                          "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"})
_OBJECT_KEYS = frozenset({"properties", "patternProperties", "additionalProperties",
                          "required", "propertyNames"})
_ARRAY_KEYS = frozenset({"items", "minItems", "maxItems"})


class _Compiler:
    def __init__(self, root: Mapping[str, Any]) -> None:
        self.root = root
        self.defs: dict[str, Check] = {}

    def build(self, schema: object) -> Check:
        if schema is True:
            return lambda value: True
        if schema is False:
            return lambda value: False
        if not isinstance(schema, Mapping):
            raise UnsupportedSchema(f"a schema must be an object or a boolean, not {schema!r}")
        for key in schema:
            if key not in _ANNOTATIONS | _SCALAR_KEYS | _OBJECT_KEYS | _ARRAY_KEYS | {"$ref"}:
                raise UnsupportedSchema(f"keyword {key!r} is not supported by "
                                        "dlmsd.schema_check (add it there, with a test)")
        checks: list[Check] = []
        if "$ref" in schema:
            checks.append(self.ref(schema["$ref"]))
        if _SCALAR_KEYS & schema.keys():
            checks.append(self.scalar(schema))
        if _OBJECT_KEYS & schema.keys():
            checks.append(self.members(schema))
        if _ARRAY_KEYS & schema.keys():
            checks.append(self.items(schema))
        return _all(checks)

    def ref(self, target: object) -> Check:
        if not isinstance(target, str) or not target.startswith("#/$defs/"):
            raise UnsupportedSchema(f"$ref {target!r}: only #/$defs/NAME is supported")
        name = target.removeprefix("#/$defs/")
        defs = self.root.get("$defs", {})
        if "/" in name or "~" in name or name not in defs:
            raise UnsupportedSchema(f"$ref {target!r}: no such definition")
        table = self.defs
        if name not in table:
            table[name] = lambda value: True  # placeholder while building (recursion)
            table[name] = self.build(defs[name])
        return lambda value: table[name](value)

    def scalar(self, schema: Mapping[str, Any]) -> Check:
        """``type``, ``enum``/``const``, the string and the numeric keywords: one check.
        A string keyword ignores a value that is not a string, a numeric one a value
        that is not a number (as JSON Schema says); a comparison that is False (NaN)
        passes, as in jsonschema, which refuses only on ``<`` / ``>``."""
        typed = _type_test(schema["type"]) if "type" in schema else None
        choices: list[Any] | None = None
        if "enum" in schema:
            if not isinstance(schema["enum"], list):
                raise UnsupportedSchema(f"enum {schema['enum']!r}")
            choices = list(schema["enum"])
        if "const" in schema:
            choices = [c for c in (choices if choices is not None else [schema["const"]])
                       if _equal(c, schema["const"])]
        min_len, max_len = schema.get("minLength"), schema.get("maxLength")
        search = re.compile(schema["pattern"]).search if "pattern" in schema else None
        lo, hi = schema.get("minimum"), schema.get("maximum")
        above, below = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
        strings = min_len is not None or max_len is not None or search is not None
        numbers = any(bound is not None for bound in (lo, hi, above, below))

        def check(value: object) -> bool:
            if typed is not None and not typed(value):
                return False
            if choices is not None and not any(_equal(value, c) for c in choices):
                return False
            if strings and isinstance(value, str):
                if min_len is not None and len(value) < min_len:
                    return False
                if max_len is not None and len(value) > max_len:
                    return False
                if search is not None and search(value) is None:
                    return False
            if numbers and _is_number(value):
                assert isinstance(value, int | float)
                if lo is not None and value < lo:
                    return False
                if hi is not None and value > hi:
                    return False
                if above is not None and value <= above:
                    return False
                if below is not None and value >= below:
                    return False
            return True
        return check

    def members(self, schema: Mapping[str, Any]) -> Check:
        """The object keywords: ``required``, ``properties``, ``patternProperties``,
        ``additionalProperties`` (what is "additional" depends on the other two) and
        ``propertyNames``: one check."""
        required = list(schema.get("required", []))
        props = {key: self.build(sub) for key, sub in schema.get("properties", {}).items()}
        patterns = [(re.compile(p).search, self.build(sub))
                    for p, sub in schema.get("patternProperties", {}).items()]
        extra = schema.get("additionalProperties", True)
        other = None if extra is True else self.build(extra)
        names = self.build(schema["propertyNames"]) if "propertyNames" in schema else None

        def check(value: object) -> bool:
            if not isinstance(value, dict):
                return True
            for key in required:
                if key not in value:
                    return False
            for key, item in value.items():
                if names is not None and not names(key):
                    return False
                known = props.get(key)
                if known is not None and not known(item):
                    return False
                matched = False
                for search, sub in patterns:
                    if search(key) is not None:
                        matched = True
                        if not sub(item):
                            return False
                if known is None and not matched and other is not None and not other(item):
                    return False
            return True
        return check

    def items(self, schema: Mapping[str, Any]) -> Check:
        """``items`` (every element: there is no ``prefixItems``), ``minItems``,
        ``maxItems``: one check."""
        item = self.build(schema["items"]) if "items" in schema else None
        least, most = schema.get("minItems"), schema.get("maxItems")

        def check(value: object) -> bool:
            if not isinstance(value, list):
                return True
            if least is not None and len(value) < least:
                return False
            if most is not None and len(value) > most:
                return False
            if item is not None:
                for element in value:
                    if not item(element):
                        return False
            return True
        return check


def compile_schema(schema: Mapping[str, Any]) -> Check:
    """``schema`` (a JSON Schema 2020-12 document) as one :data:`Check`; raise
    :class:`UnsupportedSchema` if it uses what this module does not implement."""
    return _Compiler(schema).build(schema)

