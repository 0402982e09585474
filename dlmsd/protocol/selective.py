"""Profile Generic (class 7) selective access and capture objects (pure).

Blue Book (DLMS UA 1000-1), 4.3.6 "Profile generic" (class_id 7, version 1):

* attribute 3 ``capture_objects``::

      array capture_object_definition
      capture_object_definition ::= structure {
          class_id        long-unsigned,
          logical_name    octet-string,
          attribute_index integer,
          data_index      long-unsigned }

  ``attribute_index`` 0 captures the whole object (all public attributes);
  ``data_index`` 0 the whole attribute, n > 0 its n-th element.

* attribute 2 ``buffer`` read with selective access (Green Book:
  ``Selective-Access-Descriptor ::= SEQUENCE { access-selector Unsigned8,
  access-parameters Data }``):

  - access_selector 1, ``range_descriptor``::

        structure {
            restricting_object capture_object_definition,
            from_value         CHOICE (the type of the restricting object's value,
                               e.g. octet-string(12) for a clock's time),
            to_value           the same,
            selected_values    array capture_object_definition (empty: all columns) }

  - access_selector 2, ``entry_descriptor``::

        structure {
            from_entry          double-long-unsigned,   (1 = the oldest entry)
            to_entry            double-long-unsigned,   (0 = the highest possible)
            from_selected_value long-unsigned,          (1 = the first column)
            to_selected_value   long-unsigned }         (0 = the highest possible)

Building raises :class:`~dlmsd.errors.LocalProtocolError` for a value that does not fit
its type; parsing (what a meter or a client sent) raises
:class:`~dlmsd.errors.DecodeError` naming the field and what it received.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Final

from dlmsd.errors import DecodeError, LocalProtocolError
from dlmsd.protocol.axdr import Data, DataType, DateTime, describe
from dlmsd.protocol.obis import Obis
from dlmsd.protocol.xdlms import SelectiveAccessDescriptor

__all__ = [
    "BY_ENTRY",
    "BY_RANGE",
    "CaptureObject",
    "EntryDescriptor",
    "ProfileAccess",
    "RangeDescriptor",
    "build_capture_objects",
    "parse_access",
    "parse_capture_objects",
    "parse_capture_period",
]

#: Blue Book 4.3.6, class 7 attribute 2: the two access selectors of the buffer.
BY_RANGE: Final = 1
BY_ENTRY: Final = 2

#: The most capture objects a profile may declare (bounds the column loop; real
#: meters have at most a few dozen).
MAX_CAPTURE_OBJECTS: Final = 1024


def _field(items: tuple[Data, ...], index: int, expected: DataType, what: str) -> Data:
    item = items[index]
    if item.type is not expected:
        raise DecodeError(f"{what} must be {expected.label}, got {describe(item)}")
    return item


def _structure(data: Data, size: int, what: str) -> tuple[Data, ...]:
    items = data.value
    if data.type is not DataType.STRUCTURE or not isinstance(items, tuple):
        raise DecodeError(f"{what} must be a structure of {size}, got {describe(data)}")
    if len(items) != size:
        raise DecodeError(f"{what} must be a structure of {size}, got {len(items)} elements")
    return items


def _array(data: Data, what: str) -> tuple[Data, ...]:
    items = data.value
    if data.type is not DataType.ARRAY or not isinstance(items, tuple):
        raise DecodeError(f"{what} must be an array, got {describe(data)}")
    return items


def _uint(data: Data) -> int:
    value = data.value
    assert isinstance(value, int)  # the type tag was checked
    return value


@dataclass(frozen=True, order=True)
class CaptureObject:
    """One ``capture_object_definition``: the column of a profile."""

    class_id: int
    logical_name: Obis
    attribute_index: int
    data_index: int = 0

    def __post_init__(self) -> None:
        for name, value, low, high in (("class_id", self.class_id, 0, 0xFFFF),
                                       ("attribute_index", self.attribute_index, -128, 127),
                                       ("data_index", self.data_index, 0, 0xFFFF)):
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise LocalProtocolError(
                    f"capture object {name} {value!r} outside {low}..{high}")

    @property
    def key(self) -> str:
        """``OBIS:attribute`` (``1.0.1.8.0.255:2``), with ``:data_index`` when not 0."""
        text = f"{self.logical_name}:{self.attribute_index}"
        return f"{text}:{self.data_index}" if self.data_index else text

    def to_data(self) -> Data:
        return Data.structure(Data.uint16(self.class_id),
                              Data.octets(self.logical_name.to_bytes()),
                              Data.int8(self.attribute_index),
                              Data.uint16(self.data_index))

    @classmethod
    def from_data(cls, data: Data, what: str = "capture_object_definition") -> CaptureObject:
        items = _structure(data, 4, what)
        class_id = _field(items, 0, DataType.LONG_UNSIGNED, f"{what} class_id")
        name = _field(items, 1, DataType.OCTET_STRING, f"{what} logical_name").value
        assert isinstance(name, bytes)
        if len(name) != 6:
            raise DecodeError(f"{what} logical_name must be 6 octets, got {len(name)}")
        attribute = _field(items, 2, DataType.INTEGER, f"{what} attribute_index")
        index = _field(items, 3, DataType.LONG_UNSIGNED, f"{what} data_index")
        return cls(_uint(class_id), Obis.from_bytes(name), _uint(attribute), _uint(index))

    def __str__(self) -> str:
        return f"{self.class_id}/{self.key}"


def parse_capture_objects(data: Data) -> tuple[CaptureObject, ...]:
    """Attribute 3 of a profile: ``array capture_object_definition``."""
    items = _array(data, "capture_objects")
    if len(items) > MAX_CAPTURE_OBJECTS:
        raise DecodeError(
            f"capture_objects: {len(items)} columns, more than {MAX_CAPTURE_OBJECTS}")
    return tuple(CaptureObject.from_data(item, f"capture object {n}")
                 for n, item in enumerate(items, 1))


def build_capture_objects(objects: Sequence[CaptureObject]) -> Data:
    """The value of attribute 3 for ``objects`` (the meter's side)."""
    return Data.array(*(o.to_data() for o in objects))


def parse_capture_period(data: Data) -> int:
    """Attribute 4 ``capture_period`` (double-long-unsigned, seconds; 0: not periodic)."""
    if data.type not in (DataType.DOUBLE_LONG_UNSIGNED, DataType.LONG_UNSIGNED,
                         DataType.UNSIGNED):
        raise DecodeError(f"capture_period must be double-long-unsigned, got {describe(data)}")
    return _uint(data)


def _selected(data: Data, what: str) -> tuple[CaptureObject, ...]:
    return tuple(CaptureObject.from_data(item, f"{what} {n}")
                 for n, item in enumerate(_array(data, what), 1))


@dataclass(frozen=True)
class RangeDescriptor:
    """Access selector 1: the rows whose ``restricting_object`` value lies in
    ``from_value`` .. ``to_value`` (both included), ``selected_values`` columns
    (empty: all)."""

    SELECTOR: ClassVar[int] = BY_RANGE
    restricting_object: CaptureObject
    from_value: Data
    to_value: Data
    selected_values: tuple[CaptureObject, ...] = field(default=())

    @classmethod
    def between(cls, restricting_object: CaptureObject, start: DateTime, end: DateTime,
                selected_values: Sequence[CaptureObject] = ()) -> RangeDescriptor:
        """A range over a clock column: the dates as octet-string(12) (the type of the
        clock's attribute 2, Blue Book 4.5.1), as gurux_dlms and dlms-cosem send them."""
        return cls(restricting_object, Data.octets(start.to_bytes()),
                   Data.octets(end.to_bytes()), tuple(selected_values))

    def dates(self) -> tuple[DateTime, DateTime]:
        """from_value and to_value as date-times (octet-string(12) or date-time);
        DecodeError if they are not."""
        return self.from_value.as_date_time(), self.to_value.as_date_time()

    def to_data(self) -> Data:
        return Data.structure(self.restricting_object.to_data(), self.from_value,
                              self.to_value,
                              Data.array(*(o.to_data() for o in self.selected_values)))

    @classmethod
    def from_data(cls, data: Data) -> RangeDescriptor:
        items = _structure(data, 4, "range_descriptor")
        return cls(CaptureObject.from_data(items[0], "range_descriptor restricting_object"),
                   items[1], items[2], _selected(items[3], "range_descriptor selected_values"))

    def to_selection(self) -> SelectiveAccessDescriptor:
        return SelectiveAccessDescriptor(self.SELECTOR, self.to_data())


@dataclass(frozen=True)
class EntryDescriptor:
    """Access selector 2: entries ``from_entry`` .. ``to_entry`` (1 is the oldest, 0 for
    ``to_entry`` the last), columns ``from_selected_value`` .. ``to_selected_value``
    (1-based, 0 the last)."""

    SELECTOR: ClassVar[int] = BY_ENTRY
    from_entry: int = 1
    to_entry: int = 0
    from_selected_value: int = 1
    to_selected_value: int = 0

    def __post_init__(self) -> None:
        for name, value, high in (("from_entry", self.from_entry, 0xFFFFFFFF),
                                  ("to_entry", self.to_entry, 0xFFFFFFFF),
                                  ("from_selected_value", self.from_selected_value, 0xFFFF),
                                  ("to_selected_value", self.to_selected_value, 0xFFFF)):
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= high:
                raise LocalProtocolError(f"entry_descriptor {name} {value!r} outside 0..{high}")

    def to_data(self) -> Data:
        return Data.structure(Data.uint32(self.from_entry), Data.uint32(self.to_entry),
                              Data.uint16(self.from_selected_value),
                              Data.uint16(self.to_selected_value))

    @classmethod
    def from_data(cls, data: Data) -> EntryDescriptor:
        items = _structure(data, 4, "entry_descriptor")
        return cls(
            _uint(_field(items, 0, DataType.DOUBLE_LONG_UNSIGNED, "entry_descriptor from_entry")),
            _uint(_field(items, 1, DataType.DOUBLE_LONG_UNSIGNED, "entry_descriptor to_entry")),
            _uint(_field(items, 2, DataType.LONG_UNSIGNED,
                         "entry_descriptor from_selected_value")),
            _uint(_field(items, 3, DataType.LONG_UNSIGNED, "entry_descriptor to_selected_value")),
        )

    def to_selection(self) -> SelectiveAccessDescriptor:
        return SelectiveAccessDescriptor(self.SELECTOR, self.to_data())


ProfileAccess = RangeDescriptor | EntryDescriptor


def parse_access(selection: SelectiveAccessDescriptor) -> ProfileAccess:
    """The parameters of a selective access to a profile's buffer; DecodeError for an
    access selector other than 1 and 2 or malformed parameters."""
    if selection.access_selector == BY_RANGE:
        return RangeDescriptor.from_data(selection.access_parameters)
    if selection.access_selector == BY_ENTRY:
        return EntryDescriptor.from_data(selection.access_parameters)
    raise DecodeError(f"profile buffer: access selector {selection.access_selector} "
                      "(1 by range, 2 by entry)", code=selection.access_selector)
