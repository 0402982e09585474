"""COSEM physical units: the ``unit`` enum of ``scaler_unit`` (Register, class 3).

This module owns the table of unit codes, their symbols and names.  It is pure.

Source: DLMS UA 1000-1 (Blue Book) Ed. 14, 4.3.2 "Register" (class_id 3),
Table 4 "Enumerated values for physical units" (the same table is in IEC 62056-6-2).
Codes 1..64 also checked against the public Blue Book Ed. 12.2 excerpt; 65..174 and
253 were added in later editions.  Codes 58, 59, 68, 69 and 73..127, 175..252 are
not assigned.

    scaler_unit ::= structure { scaler: integer, unit: enum }

A value is ``value * 10 ** scaler`` in ``unit``.  Symbols are the Blue Book's, with
Unicode superscripts and signs (m³, Ω, °C); 255 ("count", unitless) has the empty
symbol so that ``f"{value} {symbol}".strip()`` reads well.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

__all__ = ["UNITS", "Unit", "unit_symbol"]


@dataclass(frozen=True)
class Unit:
    """One entry of the unit table: code, symbol, short name and the quantity measured."""

    code: int
    symbol: str
    name: str
    quantity: str = ""


# code, symbol, name, quantity
_TABLE: Final[tuple[tuple[int, str, str, str], ...]] = (
    (1, "a", "year", "time"),
    (2, "mo", "month", "time"),
    (3, "wk", "week", "time"),
    (4, "d", "day", "time"),
    (5, "h", "hour", "time"),
    (6, "min", "minute", "time"),
    (7, "s", "second", "time"),
    (8, "°", "degree", "(phase) angle"),
    (9, "°C", "degree Celsius", "temperature"),
    (10, "currency", "local currency", "(local) currency"),
    (11, "m", "metre", "length"),
    (12, "m/s", "metre per second", "speed"),
    (13, "m³", "cubic metre", "volume"),
    (14, "m³", "corrected cubic metre", "corrected volume"),
    (15, "m³/h", "cubic metre per hour", "volume flux"),
    (16, "m³/h", "corrected cubic metre per hour", "corrected volume flux"),
    (17, "m³/d", "cubic metre per day", "volume flux"),
    (18, "m³/d", "corrected cubic metre per day", "corrected volume flux"),
    (19, "l", "litre", "volume"),
    (20, "kg", "kilogram", "mass"),
    (21, "N", "newton", "force"),
    (22, "Nm", "newton metre", "energy"),
    (23, "Pa", "pascal", "pressure"),
    (24, "bar", "bar", "pressure"),
    (25, "J", "joule", "energy"),
    (26, "J/h", "joule per hour", "thermal power"),
    (27, "W", "watt", "active power"),
    (28, "VA", "volt-ampere", "apparent power"),
    (29, "var", "var", "reactive power"),
    (30, "Wh", "watt-hour", "active energy"),
    (31, "VAh", "volt-ampere-hour", "apparent energy"),
    (32, "varh", "var-hour", "reactive energy"),
    (33, "A", "ampere", "current"),
    (34, "C", "coulomb", "electrical charge"),
    (35, "V", "volt", "voltage"),
    (36, "V/m", "volt per metre", "electric field strength"),
    (37, "F", "farad", "capacitance"),
    (38, "Ω", "ohm", "resistance"),
    (39, "Ωm²/m", "ohm square metre per metre", "resistivity"),
    (40, "Wb", "weber", "magnetic flux"),
    (41, "T", "tesla", "magnetic flux density"),
    (42, "A/m", "ampere per metre", "magnetic field strength"),
    (43, "H", "henry", "inductance"),
    (44, "Hz", "hertz", "frequency"),
    (45, "1/(Wh)", "active energy meter constant", "R_W, meter constant or pulse value"),
    (46, "1/(varh)", "reactive energy meter constant", "R_B, meter constant or pulse value"),
    (47, "1/(VAh)", "apparent energy meter constant", "R_S, meter constant or pulse value"),
    (48, "V²h", "volt-squared hour", "volt-squared hour"),
    (49, "A²h", "ampere-squared hour", "ampere-squared hour"),
    (50, "kg/s", "kilogram per second", "mass flux"),
    (51, "S", "siemens", "conductance"),
    (52, "K", "kelvin", "temperature"),
    (53, "1/(V²h)", "volt-squared hour meter constant", "R_U²h, meter constant or pulse value"),
    (54, "1/(A²h)", "ampere-squared hour meter constant", "R_I²h, meter constant or pulse value"),
    (55, "1/m³", "volume meter constant", "R_V, meter constant or pulse value (volume)"),
    (56, "%", "percent", "percentage"),
    (57, "Ah", "ampere-hour", "ampere-hours"),
    (60, "Wh/m³", "watt-hour per cubic metre", "energy per volume"),
    (61, "J/m³", "joule per cubic metre", "calorific value, wobbe"),
    (62, "Mol %", "mole percent", "molar fraction of gas composition"),
    (63, "g/m³", "gram per cubic metre", "mass density, quantity of material"),
    (64, "Pa s", "pascal second", "dynamic viscosity"),
    (65, "J/kg", "joule per kilogram", "specific energy"),
    (66, "g/cm²", "gram per square centimetre", "pressure"),
    (67, "atm", "atmosphere", "pressure"),
    (70, "dBm", "decibel milliwatt", "signal strength"),
    (71, "dBµV", "decibel microvolt", "signal strength"),
    (72, "dB", "decibel", "logarithmic ratio"),
    (128, "in", "inch", "length"),
    (129, "ft", "foot", "length"),
    (130, "lb", "pound", "mass"),
    (131, "°F", "degree Fahrenheit", "temperature"),
    (132, "°R", "degree Rankine", "temperature"),
    (133, "sq in", "square inch", "area"),
    (134, "sq ft", "square foot", "area"),
    (135, "ac", "acre", "area"),
    (136, "cu in", "cubic inch", "volume"),
    (137, "cu ft", "cubic foot", "volume"),
    (138, "ac ft", "acre-foot", "volume"),
    (139, "gal (imp)", "imperial gallon", "volume"),
    (140, "gal (US)", "US gallon", "volume"),
    (141, "lbf", "pound force", "force"),
    (142, "psi", "pound force per square inch", "pressure"),
    (143, "lb/cu ft", "pound per cubic foot", "density"),
    (144, "lb/(ft s)", "pound per foot second", "dynamic viscosity"),
    (145, "sq ft/s", "square foot per second", "kinematic viscosity"),
    (146, "Btu", "British thermal unit", "energy"),
    (147, "thm (EC)", "therm (EC)", "energy"),
    (148, "thm (US)", "therm (US)", "energy"),
    (149, "Btu/lb", "British thermal unit per pound", "calorific value of mass, enthalpy"),
    (150, "Btu/cu ft", "British thermal unit per cubic foot", "calorific value of volume"),
    (151, "cu ft", "cubic foot (meter constant)", "volume, meter constant or pulse value"),
    (152, "ft/s", "foot per second", "speed"),
    (153, "cu ft/s", "cubic foot per second", "volume flux"),
    (154, "cu ft/min", "cubic foot per minute", "volume flux"),
    (155, "cu ft/h", "cubic foot per hour", "volume flux"),
    (156, "cu ft/d", "cubic foot per day", "volume flux"),
    (157, "ac ft/s", "acre-foot per second", "volume flux"),
    (158, "ac ft/min", "acre-foot per minute", "volume flux"),
    (159, "ac ft/h", "acre-foot per hour", "volume flux"),
    (160, "ac ft/d", "acre-foot per day", "volume flux"),
    (161, "gal (imp)", "imperial gallon (meter constant)", "volume, meter constant or pulse value"),
    (162, "gal (imp)/s", "imperial gallon per second", "volume flux"),
    (163, "gal (imp)/min", "imperial gallon per minute", "volume flux"),
    (164, "gal (imp)/h", "imperial gallon per hour", "volume flux"),
    (165, "gal (imp)/d", "imperial gallon per day", "volume flux"),
    (166, "gal (US)", "US gallon (meter constant)", "volume, meter constant or pulse value"),
    (167, "gal (US)/s", "US gallon per second", "volume flux"),
    (168, "gal (US)/min", "US gallon per minute", "volume flux"),
    (169, "gal (US)/h", "US gallon per hour", "volume flux"),
    (170, "gal (US)/d", "US gallon per day", "volume flux"),
    (171, "Btu/s", "British thermal unit per second", "energy flow, power"),
    (172, "Btu/min", "British thermal unit per minute", "energy flow, power"),
    (173, "Btu/h", "British thermal unit per hour", "energy flow, power"),
    (174, "Btu/d", "British thermal unit per day", "energy flow, power"),
    (253, "ext", "extended table of units", "unit given by an extended table"),
    (254, "other", "other unit", "other"),
    (255, "", "count", "no unit, unitless, count"),
)

#: Every assigned unit code -> :class:`Unit` (read-only).
UNITS: Final[Mapping[int, Unit]] = MappingProxyType(
    {code: Unit(code, symbol, name, quantity) for code, symbol, name, quantity in _TABLE}
)


def unit_symbol(code: int) -> str:
    """The symbol of unit ``code``; ``unit(N)`` for a code not in the table. Never raises."""
    unit = UNITS.get(code)
    return unit.symbol if unit is not None else f"unit({code})"
