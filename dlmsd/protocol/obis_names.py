"""Standard names of common OBIS codes and of the COSEM interface classes (pure).

:func:`obis_name` names an OBIS code the way the standards do, for the tables of
``dlmsctl discover`` and the signal names of the configurations it writes; a code it
does not know gets ``""`` (never a guess).  Names are built from the value groups, as
the standard defines them, rather than listed code by code:

* electricity (A = 1): value group C is the quantity and the phase (1..20 the sum of the
  phases, 21..40 L1, 41..60 L2, 61..80 L3, 90..92 the neutral), D the processing
  (7 instantaneous value, 8 time integral 1 = the energy register, 4/5/6 current and
  last average and maximum, ...), E the tariff (0 total) where D is an integral or a
  demand, F the billing period (255 the current value);
* abstract objects (A = 0) and the electricity general purpose objects (A = 1, C = 0)
  are listed by their C.D.E groups.

Sources (names and group meanings, written here in our own words):

* IEC 62056-6-1:2017, *Electricity metering data exchange - The DLMS/COSEM suite -
  Part 6-1: Object Identification System (OBIS)*: 5 (structure of the value groups),
  6.2 (abstract objects), 6.4 (electricity: value group C quantities, value group D
  processing, value group E tariff rates).
* DLMS UA 1000-1 Ed. 14 (2020), the "Blue Book", *COSEM interface classes and OBIS
  object identification system*: 4 (the interface classes and their class_ids), 7.3
  (value group definitions), 7.4 (abstract COSEM objects: clock 0.0.1.0.0.255,
  association 0.0.40.0.e.255, SAP assignment 0.0.41.0.0.255, COSEM logical device name
  0.0.42.0.0.255, security setup and invocation counter 0.0.43.0/1.e.255, device ID
  0.0.96.1.e.255, ...), 7.5 (electricity).
"""

from __future__ import annotations

from typing import Final

from dlmsd.protocol.obis import Obis

__all__ = ["CLASS_NAMES", "class_name", "obis_name"]

#: COSEM interface classes by class_id (Blue Book clause 4).
CLASS_NAMES: Final[dict[int, str]] = {
    1: "Data", 3: "Register", 4: "Extended register", 5: "Demand register",
    6: "Register activation", 7: "Profile generic", 8: "Clock", 9: "Script table",
    10: "Schedule", 11: "Special days table", 12: "Association SN",
    15: "Association LN", 17: "SAP assignment", 18: "Image transfer",
    19: "IEC local port setup", 20: "Activity calendar", 21: "Register monitor",
    22: "Single action schedule", 23: "IEC HDLC setup", 24: "IEC twisted pair setup",
    25: "M-Bus port setup", 26: "Utility tables", 27: "Modem configuration",
    28: "Auto answer", 29: "Auto connect", 30: "Data protection", 40: "Push setup",
    41: "TCP-UDP setup", 42: "IPv4 setup", 43: "MAC address setup", 44: "PPP setup",
    45: "GPRS modem setup", 46: "SMTP setup", 47: "GSM diagnostic", 48: "IPv6 setup",
    61: "Register table", 62: "Compact data", 63: "Status mapping",
    64: "Security setup", 65: "Parameter monitor", 67: "Sensor manager",
    68: "Arbitrator", 70: "Disconnect control", 71: "Limiter", 72: "M-Bus client",
    74: "M-Bus master port setup", 111: "Account", 112: "Credit", 113: "Charge",
    115: "Token gateway", 122: "Function control", 123: "Array manager",
    124: "Communication port protection",
}


def class_name(class_id: int) -> str:
    """``Register``; ``class 9999`` for a class the table does not know."""
    return CLASS_NAMES.get(class_id, f"class {class_id}")


# -- electricity (A = 1), IEC 62056-6-1 6.4 -----------------------------------------

#: Value group C 1..16 (the sum of the phases, ΣLi): (power name, energy name).
_QUANTITIES: Final[dict[int, tuple[str, str]]] = {
    1: ("Active power import (+P)", "Active energy import (+A)"),
    2: ("Active power export (-P)", "Active energy export (-A)"),
    3: ("Reactive power import (+Q)", "Reactive energy import (+R)"),
    4: ("Reactive power export (-Q)", "Reactive energy export (-R)"),
    5: ("Reactive power QI", "Reactive energy QI (+Ri)"),
    6: ("Reactive power QII", "Reactive energy QII (+Rc)"),
    7: ("Reactive power QIII", "Reactive energy QIII (-Ri)"),
    8: ("Reactive power QIV", "Reactive energy QIV (-Rc)"),
    9: ("Apparent power import (+S)", "Apparent energy import (+S)"),
    10: ("Apparent power export (-S)", "Apparent energy export (-S)"),
    11: ("Current", ""),
    12: ("Voltage", ""),
    13: ("Power factor", ""),
    14: ("Supply frequency", ""),
    15: ("Active power |+P|+|-P|", "Active energy |+A|+|-A|"),
    16: ("Active power |+P|-|-P|", "Active energy |+A|-|-A|"),
}
#: Value group C 90..92: the neutral and sums.
_NEUTRAL: Final[dict[int, str]] = {90: "Current, sum of the phases (ΣLi)",
                                   91: "Current, neutral (L0)", 92: "Voltage, neutral (L0)"}
#: Value group D: the processing of the quantity (IEC 62056-6-1 6.4.3).
_PROCESSING: Final[dict[int, str]] = {
    0: "billing period average", 1: "cumulative minimum 1", 2: "cumulative maximum 1",
    3: "minimum 1", 4: "current average 1", 5: "last average 1", 6: "maximum 1",
    11: "cumulative minimum 2", 12: "cumulative maximum 2", 13: "minimum 2",
    14: "current average 2", 15: "last average 2", 16: "maximum 2",
    21: "cumulative minimum 3", 22: "cumulative maximum 3", 23: "minimum 3",
    24: "current average 3", 25: "last average 3", 26: "maximum 3",
}
_INSTANTANEOUS: Final = 7
#: Time integrals: D -> its name (8, time integral 1, is the plain energy register).
_INTEGRALS: Final[dict[int, str]] = {8: "", 9: "time integral 2", 10: "time integral 3",
                                     29: "time integral 5", 30: "time integral 6",
                                     58: "time integral 4"}

#: Electricity general purpose objects (A = 1, C = 0): (D, E) -> name; E None: any.
_ELECTRICITY_GENERAL: Final[dict[tuple[int, int | None], str]] = {
    (0, 0): "Electricity ID 1", (1, 0): "Billing period counter",
    (1, 2): "Time stamp of the most recent billing period",
    (2, 0): "Active firmware identifier", (2, 1): "Parameter record number",
    (2, 8): "Active firmware signature", (3, 0): "Active energy meter constant",
    (3, 1): "Reactive energy meter constant", (3, 2): "Apparent energy meter constant",
    (4, 2): "Current transformer ratio, numerator",
    (4, 3): "Voltage transformer ratio, numerator",
    (8, 0): "Measurement period 1 (for averages)", (8, 4): "Recording interval 1 (load profile)",
    (8, 5): "Recording interval 2 (load profile)", (9, 1): "Local time", (9, 2): "Local date",
}
#: Electricity profiles and logs (A = 1, C = 98/99).
_ELECTRICITY_PROFILES: Final[dict[tuple[int, int], str]] = {
    (98, 1): "Data of billing period", (99, 1): "Load profile 1", (99, 2): "Load profile 2",
    (99, 97): "Power failure event log", (99, 98): "Event log",
}

# -- abstract objects (A = 0), IEC 62056-6-1 6.2, Blue Book 7.4 -------------------------

#: (C, D, E) -> name; E None: any E (then " e" is not added).
_ABSTRACT: Final[dict[tuple[int, int, int | None], str]] = {
    (1, 0, 0): "Clock",
    (2, 0, 0): "Modem configuration",
    (10, 0, 0): "Global meter reset script table",
    (10, 0, 1): "End of billing period script table",
    (10, 0, 100): "Tariffication script table",
    (10, 0, 106): "Disconnect control script table",
    (10, 0, 107): "Image activation script table",
    (10, 0, 108): "Push script table",
    (11, 0, 0): "Special days table",
    (12, 0, 0): "Schedule",
    (13, 0, 0): "Activity calendar",
    (14, 0, 0): "Register activation",
    (15, 0, 0): "End of billing period single action schedule",
    (15, 0, 1): "Disconnect control single action schedule",
    (15, 0, 2): "Image activation single action schedule",
    (15, 0, 4): "Push single action schedule",
    (17, 0, 0): "Limiter",
    (20, 0, 0): "IEC optical port setup",
    (20, 0, 1): "IEC electrical port setup",
    (22, 0, 0): "IEC HDLC setup",
    (23, 0, 0): "IEC twisted pair setup",
    (25, 0, 0): "TCP-UDP setup",
    (25, 1, 0): "IPv4 setup",
    (25, 2, 0): "MAC address setup",
    (25, 3, 0): "PPP setup",
    (25, 4, 0): "GPRS modem setup",
    (25, 5, 0): "SMTP setup",
    (25, 6, 0): "GSM diagnostic",
    (25, 7, 0): "IPv6 setup",
    (25, 9, 0): "Push setup",
    (40, 0, 0): "Current association",
    (41, 0, 0): "SAP assignment",
    (42, 0, 0): "COSEM logical device name",
    (44, 0, 0): "Image transfer",
    (94, 91, 0): "Parameter monitor",
    (96, 1, 0): "Device ID 1 (serial number)",
    (96, 2, 0): "Number of configuration program changes",
    (96, 3, 10): "Disconnect control",
    (96, 5, 0): "Internal operating status",
    (96, 6, 0): "Battery use time counter",
    (96, 6, 3): "Battery voltage",
    (96, 7, 0): "Number of power failures, all phases",
    (96, 7, 21): "Number of power failures, any phase",
    (96, 8, 0): "Time of operation",
    (96, 9, 0): "Ambient temperature",
    (96, 14, 0): "Currently active tariff",
    (97, 97, 0): "Error register",
    (97, 98, 0): "Alarm register",
    (98, 1, None): "Data of billing period",
    (99, 98, None): "Event log",
}
#: (C, D) -> name with the instance E: "Association 1", "Security setup 0".
_ABSTRACT_INSTANCES: Final[dict[tuple[int, int], str]] = {
    (40, 0): "Association", (43, 0): "Security setup",
    (43, 1): "Invocation counter, security setup",
}


def _suffixes(obis: Obis, name: str) -> str:
    """The channel (B) and billing period (F) of a named code."""
    if obis.b not in (0, 255):
        name += f", channel {obis.b}"
    if obis.f != 255:
        name += f", billing period {obis.f}"
    return name


def _tariff(e: int) -> str:
    return "total" if e == 0 else f"tariff {e}"


def _electricity(obis: Obis) -> str:
    c, d, e = obis.c, obis.d, obis.e
    if c == 0:
        name = _ELECTRICITY_GENERAL.get((d, e), "")
        return _suffixes(obis, name) if name else ""
    if c in (98, 99):
        name = _ELECTRICITY_PROFILES.get((c, d), "")
        return _suffixes(obis, f"{name} {e}" if name and e else name) if name else ""
    phase = ""
    if c in _NEUTRAL:
        power, energy = _NEUTRAL[c], ""
    elif 1 <= c <= 80 and (c - 1) % 20 + 1 in _QUANTITIES:
        index, group = (c - 1) % 20 + 1, (c - 1) // 20
        power, energy = _QUANTITIES[index]
        phase = ("", " L1", " L2", " L3")[group]
    else:
        return ""
    if phase:
        power = f"{power}{phase}" if index > 10 else power.replace(" (", f"{phase} (", 1)
        energy = energy.replace(" (", f"{phase} (", 1) if energy else ""
    if d == _INSTANTANEOUS:
        return _suffixes(obis, power) if e == 0 else ""
    if d in _INTEGRALS and energy:
        kind = _INTEGRALS[d]
        return _suffixes(obis, ", ".join(p for p in (energy, kind, _tariff(e)) if p))
    if d in _PROCESSING:
        return _suffixes(obis, f"{power}, {_PROCESSING[d]}, {_tariff(e)}")
    return ""


def _abstract(obis: Obis) -> str:
    c, d, e = obis.c, obis.d, obis.e
    name = _ABSTRACT.get((c, d, e)) or _ABSTRACT.get((c, d, None))
    if name is not None:
        return _suffixes(obis, name)
    if (c, d) in _ABSTRACT_INSTANCES:
        return _suffixes(obis, f"{_ABSTRACT_INSTANCES[(c, d)]} {e}")
    if c == 96 and d == 1 and 1 <= e <= 9:
        return _suffixes(obis, f"Device ID {e + 1}")
    return ""


def obis_name(obis: Obis) -> str:
    """The standard name of ``obis``, or ``""`` when the table does not know it.

    >>> obis_name(Obis(1, 0, 1, 8, 0, 255))
    'Active energy import (+A), total'
    >>> obis_name(Obis(1, 0, 32, 7, 0, 255))
    'Voltage L1'
    """
    if obis.a == 0:
        return _abstract(obis)
    if obis.a == 1:
        return _electricity(obis)
    return ""
