"""dlmsd.schema_check: the fast yes-or-no answer is jsonschema's (issue 16).

The configuration is accepted without jsonschema when the compiled check says valid, so
the check must never say valid where jsonschema says invalid (nor the reverse, or a
valid configuration would pay for the slow path). Checked on hand-picked edge cases of
JSON Schema 2020-12 and on thousands of broken copies of a configuration that uses every
section of the schema.
"""

from __future__ import annotations

import copy
import json
import math
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from dlmsd.config import load_schema
from dlmsd.schema_check import UnsupportedSchema, compile_schema

REPO = Path(__file__).resolve().parent.parent
SCHEMA = load_schema()
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
ACCEPTS = compile_schema(SCHEMA)


@pytest.mark.parametrize(("schema", "value", "valid"), [
    ({"type": "integer"}, 1.0, True),  # 2020-12: an integral number is an integer
    ({"type": "integer"}, 1.5, False),
    ({"type": "integer"}, True, False),  # a boolean is not a number
    ({"type": "number"}, False, False),
    ({"type": ["integer", "boolean"]}, True, True),
    ({"type": ["integer", "string"]}, None, False),
    ({"enum": [0, 1]}, True, False),
    ({"enum": [0, 1]}, 1.0, True),
    ({"enum": [0, 1, True, False]}, False, True),
    ({"enum": [[1, 2]]}, [1, 2], True),
    ({"enum": [{"a": 1}]}, {"a": True}, False),
    ({"const": "x"}, "x", True),
    ({"const": 0}, False, False),
    ({"minimum": 3}, float("nan"), True),  # only "<" refuses, as in jsonschema
    ({"minimum": 3}, "2", True),  # a numeric keyword ignores a string
    ({"maximum": 3}, 3, True),
    ({"maximum": 3}, 3.01, False),
    ({"exclusiveMinimum": 0}, 0, False),
    ({"exclusiveMaximum": 10}, 9.99, True),
    ({"minLength": 1}, "", False),
    ({"minLength": 1}, 0, True),  # a string keyword ignores a number
    ({"maxLength": 2}, "abc", False),
    ({"pattern": "b"}, "abc", True),  # pattern searches, it is not anchored
    ({"pattern": "^b"}, "abc", False),
    ({"required": ["a"]}, {"b": 1}, False),
    ({"required": ["a"]}, [], True),
    ({"properties": {"a": {"type": "string"}}, "additionalProperties": False}, {"a": "x"}, True),
    ({"properties": {"a": {"type": "string"}}, "additionalProperties": False}, {"b": 1}, False),
    ({"properties": {"a": {"type": "string"}}}, {"a": 1}, False),
    ({"additionalProperties": {"type": "string"}}, {"k": 1}, False),
    ({"patternProperties": {"^x": {"type": "integer"}}, "additionalProperties": False},
     {"xa": 1}, True),
    ({"patternProperties": {"^x": {"type": "integer"}}, "additionalProperties": False},
     {"xa": "1"}, False),
    ({"propertyNames": {"pattern": "^P[0-9]$"}}, {"P1": 0}, True),
    ({"propertyNames": {"pattern": "^P[0-9]$"}}, {"Q1": 0}, False),
    ({"items": {"type": "integer"}, "minItems": 1}, [], False),
    ({"items": {"type": "integer"}}, [1, "2"], False),
    ({"maxItems": 1}, [1, 2], False),
    ({"$defs": {"n": {"type": "integer"}}, "properties": {"a": {"$ref": "#/$defs/n"}}},
     {"a": "1"}, False),
    ({"properties": {"a": True}}, {"a": None}, True),
    ({"properties": {"a": False}}, {"a": None}, False),
    ({"description": "only annotations", "default": 3, "x-allowed": "text"}, "any", True),
])
def test_edge_cases_agree_with_jsonschema(schema: dict[str, Any], value: object,
                                          valid: bool) -> None:
    fast = compile_schema(schema)
    expected = jsonschema.Draft202012Validator(schema).is_valid(value)
    assert expected is valid
    assert fast(value) is valid


@pytest.mark.parametrize("schema", [
    {"oneOf": [{"type": "string"}]}, {"properties": {"a": {"anyOf": []}}},
    {"$ref": "https://example.com/s.json"}, {"$ref": "#/$defs/missing"}, {"type": "tuple"},
    {"items": {"type": "integer"}, "prefixItems": [{"type": "string"}]}, {"format": "ipv4"},
])
def test_a_keyword_it_does_not_know_is_refused_when_compiling(schema: dict[str, Any]) -> None:
    with pytest.raises(UnsupportedSchema):
        compile_schema(schema)


# -------------------------------------------------------- broken copies of a configuration

def rich_config() -> dict[str, Any]:
    """The shipped configuration with every section and every defaulted key set."""
    doc: dict[str, Any] = json.loads((REPO / "etc/dlms/dlms.json").read_text("utf-8"))
    alias = doc["devices"][0]["device_alias"]
    doc["profiles"] = [{"device_alias": alias, "profile_alias": "lp1",
                        "obis": "1.0.99.1.0.255"}]
    doc["ports"] = {"PORT1": "/dev/ttyS1", "PORT3": "/dev/ttyUSB0"}
    doc["state_dir"] = "/var/lib/dlmsd"
    doc["http"] = {"listen": "127.0.0.1:8080", "token": "t0ken"}
    doc["mqtt"] = {"host": "broker.local", "username": "u", "password": "p",
                   "tls": {"ca_file": "/etc/ssl/ca.pem"}}

    def fill(item: dict[str, Any], schema: dict[str, Any]) -> None:
        for key, sub in schema.get("properties", {}).items():
            if "$ref" in sub and "default" not in sub:
                continue
            if key not in item and "default" in sub:
                item[key] = copy.deepcopy(sub["default"])
    defs = SCHEMA["$defs"]
    for section, name in (("devices", "device"), ("signals", "signal"),
                          ("profiles", "profile")):
        for item in doc[section]:
            fill(item, defs[name])
    fill(doc["mqtt"], SCHEMA["properties"]["mqtt"])
    return doc


def candidates() -> list[object]:
    """Values to put anywhere: JSON's kinds, and every enum value, bound (and its
    neighbours) and default the schema names."""
    found: list[object] = [None, True, False, 0, 1, -1, 1.0, 0.5, 2**40, float("nan"),
                           "", " ", "x", "a b", "1.0.1.8.0.255", "1.0.1.8.0.255:3",
                           "00" * 16, "00" * 8, "DLMS-HDLC", "none", [], [1], {}, {"a": 1}]

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "enum":
                    found.extend(value)
                elif key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
                    found.extend([value, value - 1, value + 1, value + 0.5])
                elif key in ("minLength", "maxLength"):
                    found.extend(["y" * value, "y" * (value + 1)])
                elif key == "default":
                    found.append(value)
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
    walk(SCHEMA)
    return found


def places(doc: object, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(doc, dict):
        for key, value in doc.items():
            out += places(value, (*path, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            out += places(value, (*path, index))
    return out


def mutate(doc: dict[str, Any], rng: random.Random, pool: list[object]) -> Any:
    doc = copy.deepcopy(doc)
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        spots = places(doc)
        path = rng.choice(spots)
        if not path:
            continue
        parent: Any = doc
        for part in path[:-1]:
            parent = parent[part]
        last = path[-1]
        action = rng.random()
        if action < 0.7:
            parent[last] = copy.deepcopy(rng.choice(pool))
        elif action < 0.85:
            del parent[last]
        elif isinstance(parent, dict):
            parent[rng.choice(("typo", "PORT9", "port", "x-unknown"))] = rng.choice(pool)
        else:
            parent.append(copy.deepcopy(rng.choice(pool)))
    return doc


def test_the_configuration_schema_compiles_and_accepts_the_rich_config() -> None:
    doc = rich_config()
    assert VALIDATOR.is_valid(doc), [e.message for e in VALIDATOR.iter_errors(doc)]
    assert ACCEPTS(doc)


def test_broken_configurations_are_judged_as_jsonschema_judges_them() -> None:
    base, pool, rng = rich_config(), candidates(), random.Random(16)
    verdicts = {True: 0, False: 0}
    for _ in range(3000):
        doc = mutate(base, rng, pool)
        expected = VALIDATOR.is_valid(doc)
        assert ACCEPTS(doc) is expected, json.dumps(doc)[:2000]
        verdicts[expected] += 1
    assert verdicts[True] > 300 and verdicts[False] > 300  # both answers were exercised


def test_not_a_document_at_all() -> None:
    for doc in (None, [], "devices", 3, math.inf, {"devices": []}, {"signals": []}):
        assert ACCEPTS(doc) is VALIDATOR.is_valid(doc)


def test_a_valid_configuration_is_loaded_without_importing_jsonschema(tmp_path: Path) -> None:
    """The daemon's start pays neither the import nor the validation of jsonschema; a
    refused configuration still gets jsonschema's messages."""
    good = tmp_path / "good.json"
    good.write_text((REPO / "etc/dlms/dlms.json").read_text("utf-8"), "utf-8")
    bad = tmp_path / "bad.json"
    doc = json.loads(good.read_text("utf-8"))
    doc["devices"][0]["port"] = "4061"
    bad.write_text(json.dumps(doc), "utf-8")
    code = ("import sys\nfrom dlmsd.config import load_config\nfrom dlmsd.errors import "
            "ConfigError\nload_config(sys.argv[1])\nprint('jsonschema' in sys.modules)\n"
            "try:\n    load_config(sys.argv[2])\nexcept ConfigError as exc:\n"
            "    print(exc.problems[0])\nprint('jsonschema' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code, str(good), str(bad)],
                          capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.splitlines() == [
        "False", 'devices[0].port: "4061" is not allowed: must be an integer',
        "True"]
