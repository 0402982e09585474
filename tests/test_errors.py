"""The one error tree: every exception class of dlmsd is a DlmsdError and is drawn in
the docstring of :mod:`dlmsd.errors` under its real parent, with its module when it
is defined outside ``dlmsd.errors``."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

import dlmsd
from dlmsd import errors
from dlmsd.errors import (
    AssociationRejected,
    ConfigError,
    ConfigValueError,
    DataAccessError,
    DlmsdError,
    DlmsTimeout,
    ProtocolError,
    with_context,
)

#: Exception classes allowed outside the tree, each with the reason.  An entry need
#: not exist (the class may have been removed since).
ALLOWED_OUTSIDE: dict[str, str] = {
    "dlmsd.sim.model._Invalid": "private to the simulator's model loader: raised and "
    "caught inside it, turned into ConfigError problems; never reaches a caller",
    "dlmsd.protocol.explain.Bad": "private to dlmsctl decode's explainer: raised and "
    "caught inside it, turned into an error node of the tree (offset, what was expected)",
    "dlmsd.protocol.reader._Unreadable": "private to ReadProfile: raised and caught "
    "inside the job, turned into the profile result's error",
    "dlmsd.schema_check.UnsupportedSchema": "a programming error (a ValueError): the "
    "bundled config_schema.json uses a keyword the fast check does not implement; raised "
    "when the schema is compiled, which tests/test_schema_check.py does, never by input",
}

#: Modules that run a program when imported: only checked to define no class.
RUN_ON_IMPORT = frozenset({"dlmsd.__main__"})


def _modules() -> Iterator[ModuleType]:
    yield dlmsd
    for info in pkgutil.walk_packages(dlmsd.__path__, "dlmsd."):
        if info.name in RUN_ON_IMPORT:
            continue
        yield importlib.import_module(info.name)


def _classes_of(owner: ModuleType | type, module: str) -> Iterator[type]:
    for value in vars(owner).values():
        if inspect.isclass(value) and value.__module__ == module and value is not owner:
            yield value
            yield from _classes_of(value, module)  # classes nested in classes


def _exception_classes() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for module in _modules():
        for cls in _classes_of(module, module.__name__):
            if issubclass(cls, BaseException):
                found[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return found


EXCEPTIONS = _exception_classes()


@dataclass
class _Node:
    name: str
    parent: str | None
    text: str  # the description, continuation lines included


def _drawn_tree() -> dict[str, _Node]:
    """The tree in the docstring of dlmsd.errors: name -> node."""
    doc = errors.__doc__ or ""
    block = doc.split("::", 1)[1].split("\n\n", 2)[1]  # the literal block
    nodes: dict[str, _Node] = {}
    path: list[str] = []  # the names of the open ancestors, by depth
    last: _Node | None = None
    for line in textwrap.dedent(block).splitlines():
        match = re.fullmatch(r"((?:[│ ]   )*)(?:([├└])── )?([A-Za-z_]\w*)(?:\s+(.*))?", line)
        if match is None or (match[1] and not match[2]):  # a description goes on
            assert last is not None, f"a continuation line before any class: {line!r}"
            last.text += " " + line.strip("│ ")
            continue
        prefix, connector, name, text = match.groups()
        depth = len(prefix) // 4 + (1 if connector else 0)
        del path[depth:]
        assert len(path) == depth, f"{name}: drawn deeper than its parent"
        assert name not in nodes, f"{name} is drawn twice"
        last = nodes[name] = _Node(name, path[-1] if path else None, text or "")
        path.append(name)
    return nodes


TREE = _drawn_tree()


def test_the_walk_finds_the_known_exceptions() -> None:
    # guards the walk itself: it must see classes outside dlmsd.errors too
    for name in ("dlmsd.errors.DlmsTimeout", "dlmsd.keys.KeyFileError",
                 "dlmsd.protocol.hdlc_frame.ChecksumError", "dlmsd.sim.auth.CipherError",
                 "dlmsd.protocol.security.AuthenticationFailure",
                 "dlmsd.counters.CounterStoreError"):
        assert name in EXCEPTIONS


def test_run_on_import_modules_define_no_class() -> None:
    root = Path(dlmsd.__file__).parent
    for name in RUN_ON_IMPORT:
        source = root.joinpath(*name.split(".")[1:]).with_suffix(".py").read_text("utf-8")
        assert not any(isinstance(node, ast.ClassDef) for node in ast.walk(ast.parse(source)))


@pytest.mark.parametrize("qualified", sorted(EXCEPTIONS))
def test_every_exception_is_in_the_tree(qualified: str) -> None:
    if qualified in ALLOWED_OUTSIDE:
        return
    cls = EXCEPTIONS[qualified]
    assert issubclass(cls, DlmsdError), f"{qualified} is not a DlmsdError"
    node = TREE.get(cls.__name__)
    assert node is not None, f"{qualified} is not drawn in the tree of dlmsd.errors"
    if cls is not DlmsdError:
        parents = {base.__name__ for base in cls.__bases__ if issubclass(base, DlmsdError)}
        assert node.parent in parents, (
            f"{qualified} is drawn under {node.parent}, its parents are {parents}")
    if cls.__module__ != "dlmsd.errors":
        assert f"({cls.__module__})" in node.text, (
            f"{cls.__name__} is drawn without its module ({cls.__module__})")


def test_the_tree_draws_no_stale_class() -> None:
    names = {cls.__name__ for cls in EXCEPTIONS.values() if issubclass(cls, DlmsdError)}
    assert set(TREE) <= names, f"drawn but not defined: {sorted(set(TREE) - names)}"
    assert len(names) == len([c for c in EXCEPTIONS.values() if issubclass(c, DlmsdError)]), \
        "two DlmsdError classes share a name: the tree cannot tell them apart"


def test_the_tree_parser_sees_the_structure() -> None:
    assert TREE["DlmsdError"].parent is None
    assert TREE["DlmsTimeout"].parent == "TransportError"
    assert TREE["AssociationRejected"].parent == "RemoteProtocolError"
    assert "dlmsd.protocol.security" in TREE["AuthenticationFailure"].text


# ------------------------------------------------------------------ with_context
def test_with_context_keeps_type_attributes_and_message() -> None:
    rejected = AssociationRejected("AARE rejected", result=1, diagnostic=13, source="user")
    copy = with_context(rejected, "reading the counter")
    assert type(copy) is AssociationRejected and copy is not rejected
    assert str(copy) == "reading the counter: AARE rejected"
    assert (copy.result, copy.diagnostic, copy.source, copy.code) == (1, 13, "user", 1)

    timeout = with_context(DlmsTimeout("no answer in 500 ms"), "AARQ")
    assert type(timeout) is DlmsTimeout and isinstance(timeout, TimeoutError)
    assert str(timeout) == "AARQ: no answer in 500 ms"

    refused = with_context(DataAccessError("read-write-denied", result=3), "0.0.43.1.0.255")
    assert refused.result == 3
    coded = with_context(ProtocolError("bad tag", code=7), "GET")
    assert coded.code == 7
    config = with_context(ConfigError("2 problems", ["a", "b"]), "x.json")
    assert config.problems == ["a", "b"]


def test_with_context_is_raised_with_the_cause() -> None:
    original = DlmsTimeout("no answer")
    with pytest.raises(DlmsTimeout) as info:
        try:
            raise original
        except DlmsdError as exc:
            raise with_context(exc, "reading") from exc
    assert info.value.__cause__ is original


def test_config_value_error_is_a_value_error_too() -> None:
    # the pure parsers (OBIS, addresses) raise it; callers catching ValueError still work
    assert issubclass(ConfigValueError, ConfigError)
    assert issubclass(ConfigValueError, ValueError)
    assert ConfigValueError("bad").problems == ["bad"]
