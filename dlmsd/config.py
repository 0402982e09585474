"""Configuration: the JSON file with ``devices`` and ``signals``, validated at the edge.

``load_config(path)`` reads the file, validates it against the JSON Schema shipped in
the package (``config_schema.json``, also the single source of the defaults), checks
what a schema cannot (unique aliases, references, addresses, passwords), and returns a
tree of frozen dataclasses. Every problem in the file is reported at once in one
:class:`~dlmsd.errors.ConfigError`, each naming the JSON path, the bad value and what
is allowed. Unknown keys are returned as warnings (they are usually typos).
"""

from __future__ import annotations

import enum
import ipaddress
import json
import os
import platform
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, tzinfo
from functools import cache, cached_property, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast

from dlmsd.addressing import ServerAddress, compile_address_formula, resolve_server_address
from dlmsd.errors import ConfigError, ConfigValueError
from dlmsd.keys import KeyFileError, load_private_key, load_public_key
from dlmsd.protocol import obis as _obis
from dlmsd.protocol.obis import Obis
from dlmsd.schema_check import compile_schema
from dlmsd.secret import MASK, Secret

if TYPE_CHECKING:  # imported when a configuration is refused (see _schema_problems)
    import jsonschema

__all__ = [
    "Auth",
    "Config",
    "DeviceConfig",
    "Mode",
    "MqttConfig",
    "MqttTls",
    "ProfileConfig",
    "Referencing",
    "SchemaPath",
    "SignalConfig",
    "json_path",
    "load_config",
    "load_schema",
    "parse_config",
    "schema_problems",
    "show_json",
]


class Referencing(enum.Enum):
    LN = "LN"
    SN = "SN"


class Mode(enum.Enum):
    IEC = "IEC"
    HDLC = "DLMS-HDLC"
    WRAPPER = "DLMS-WRAPPER"


class Auth(enum.Enum):
    """Authentication mechanisms (value = the name in the configuration)."""

    NONE = "None"
    LOW = "Low"
    HIGH = "High"
    HIGH_MD5 = "HighMd5"
    HIGH_SHA1 = "HighSha1"
    HIGH_SHA256 = "HighSha256"
    HIGH_GMAC = "HighGmac"
    HIGH_ECDSA = "HighEcdsa"

    @property
    def needs_password(self) -> bool:
        return self in _PASSWORD_AUTHS


_PASSWORD_AUTHS = frozenset(
    {Auth.LOW, Auth.HIGH, Auth.HIGH_MD5, Auth.HIGH_SHA1, Auth.HIGH_SHA256}
)


#: Blue Book "Invocation counter" object of security setup 0 (the default to read).
INVOCATION_COUNTER_OBIS: Final = Obis(0, 0, 43, 1, 0, 255)


def ciphers_every_apdu(auth: Auth, security: str, block_cipher_key: bool) -> bool:
    """Whether a device with this ``auth``, ``security`` and (or no) block cipher key
    ciphers every APDU: HighGmac, or HighEcdsa with a block cipher key."""
    return security != "none" and (
        auth is Auth.HIGH_GMAC or (auth is Auth.HIGH_ECDSA and block_cipher_key))


@dataclass(frozen=True)
class ClockSyncConfig:
    """A device's ``clock_sync`` (see config_schema.json and docs/clock.md)."""

    max_drift_s: float
    min_interval_s: int = 3600
    method: str = "set"  # or "adjust"
    #: what the configuration named (None: the gateway's local zone, resolved in zone)
    time_zone: str | None = None
    zone: tzinfo = field(default=UTC, compare=False)
    #: the zone's name for log lines
    zone_name: str = "UTC"
    require_ntp_sync: bool = True


def local_zone() -> tuple[tzinfo, str]:
    """The gateway's local time zone and its name: ``$TZ`` (an IANA name), else the zone
    /etc/localtime links to, else /etc/localtime's own rules, else UTC."""
    import zoneinfo  # here: only a device with clock_sync needs it

    name = os.environ.get("TZ", "").lstrip(":")
    if name:
        try:
            return zoneinfo.ZoneInfo(name), name
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            pass
    try:
        target = os.path.realpath("/etc/localtime")
        if "/zoneinfo/" in target:
            key = target.split("/zoneinfo/", 1)[1]
            return zoneinfo.ZoneInfo(key), key
        with open("/etc/localtime", "rb") as rules:
            return zoneinfo.ZoneInfo.from_file(rules, key="localtime"), "localtime"
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return UTC, "UTC"


@dataclass(frozen=True)
class DeviceConfig:
    """One meter. Serial settings are meaningful only when ``ip`` is not set."""

    name: str
    device_alias: str
    description: str
    enable: bool
    server: ServerAddress
    serial_number: int
    client_address: int
    referencing: Referencing
    mode: Mode
    timeout_ms: int
    auth: Auth
    password: Secret | None = field(repr=False)
    ip: str | None
    port: int | None
    device: str | None
    baudrate: int
    databits: int
    stopbits: int
    parity: str
    flowcontrol: str
    retry_counter: int
    scan_rate_ms: int
    reconnect_time: int
    max_list_size: int
    system_title: bytes | None = None
    block_cipher_key: Secret | None = field(default=None, repr=False)
    authentication_key: Secret | None = field(default=None, repr=False)
    dedicated_key: Secret | None = field(default=None, repr=False)
    security: str = "both"
    #: HighEcdsa: the client's private scalar and the meter's public key (X9.62 point),
    #: read from the files client_private_key and server_public_key.
    signing_key: Secret | None = field(default=None, repr=False)
    server_public_key: bytes | None = field(default=None, repr=False)
    #: Read the meter's invocation counter object (class 1, attribute 2) through the
    #: public client before each ciphered association, and continue above it.
    read_invocation_counter: bool = False
    invocation_counter_obis: Obis = INVOCATION_COUNTER_OBIS
    public_client_address: int = 16
    #: The WCC Lite port name ``device`` was given as (``PORT1``), resolved through the
    #: ``ports`` table to the device path in ``device``; None for a path or TCP.
    port_alias: str | None = None
    #: Keep the meter's clock in step (None: never set it).
    clock_sync: ClockSyncConfig | None = None

    @property
    def ciphered(self) -> bool:
        """Every APDU is ciphered: HighGmac, or HighEcdsa with a block cipher key."""
        return ciphers_every_apdu(self.auth, self.security, self.block_cipher_key is not None)

    @property
    def is_tcp(self) -> bool:
        return self.ip is not None

    @property
    def port_name(self) -> str:
        """The communication port as ``-p`` names it: ``ip:port`` or the serial device."""
        if self.ip is not None:
            return f"{self.ip}:{self.port}"
        assert self.device is not None
        return self.device


@dataclass(frozen=True)
class SignalConfig:
    signal_name: str
    device_alias: str
    signal_alias: str
    enable: bool
    log: bool
    address: int
    obis: Obis
    attribute: int
    class_id: int | None
    #: MQTT: this signal's topic instead of ``<prefix>/<device_alias>/<signal_alias>``.
    topic: str | None = None


@dataclass(frozen=True)
class ProfileConfig:
    """A load profile or event log (Profile Generic, class 7) read incrementally."""

    device_alias: str
    profile_alias: str
    obis: Obis
    enable: bool = True
    #: How often new rows are read; None: the profile's capture_period.
    interval_ms: int | None = None
    backfill_hours: int = 24
    access: str = "range"  # range | entry | all
    #: The column keys (``OBIS:attribute``) to keep; None: all.
    columns: tuple[str, ...] | None = None


#: The WCC Lite's serial port names and the device paths they stand for, unless the
#: configuration's ``ports`` says otherwise.  Elseta does not publish the mapping (the
#: WCC Lite has PORT1, RS-485, and PORT2, RS-485 or RS-232); this table assumes
#: PORTn is /dev/ttySn.  The same default is in config_schema.json (a test checks it).
DEFAULT_PORTS: Final[Mapping[str, str]] = {"PORT1": "/dev/ttyS1", "PORT2": "/dev/ttyS2"}

_PORT_NAME = re.compile(r"PORT[1-9][0-9]*", re.IGNORECASE)


def _port_key(name: str) -> tuple[int, str]:
    digits = name[4:]
    return (int(digits), name) if digits.isdigit() else (0, name)


def _serial_port(at: str, device: str, ports: Mapping[str, str] | None,
                 problems: list[str]) -> tuple[str, str | None]:
    """``device`` resolved through the ``ports`` table when it is a PORTn name:
    (the device path, the PORTn name); anything else is a path or URL, as is."""
    if not _PORT_NAME.fullmatch(device):
        return device, None
    name = device.upper()
    if ports is None:  # the table is broken (reported already)
        return device, name
    path = ports.get(name)
    if path is None:
        known = ", ".join(f"{key}={ports[key]}" for key in sorted(ports, key=_port_key))
        problems.append(f"{at}.device: {_show(device, None)} names no serial port: the "
                        f"\"ports\" table has {known or 'none'}; add \"{name}\": "
                        "\"/dev/...\" to \"ports\" at the top level")
        return device, name
    return path, name


@dataclass(frozen=True)
class MqttTls:
    """TLS to the broker; file paths are resolved against the configuration's directory."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    insecure: bool = False


@dataclass(frozen=True)
class MqttConfig:
    """The top-level ``mqtt`` object (defaults in config_schema.json)."""

    host: str
    port: int
    client_id: str
    username: str | None
    password: Secret | None = field(repr=False)
    tls: MqttTls | None
    keepalive_s: int
    qos: int
    retain: bool
    topic_prefix: str
    format: str
    publish: str
    queue_size: int


#: Where state lives across restarts unless ``state_dir`` or DLMS_STATE_DIR says otherwise.
DEFAULT_STATE_DIR = "/var/lib/dlmsd"
#: ``max_connecting`` unless the configuration says otherwise (the schema's default).
DEFAULT_MAX_CONNECTING = 64


@dataclass(frozen=True)
class HttpConfig:
    """The ``http`` object: where the HTTP API listens and the bearer token it wants."""

    host: str  # an IPv6 address without its brackets
    port: int
    token: Secret | None = field(default=None, repr=False)

    @property
    def listen(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


_LISTEN = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^\s:\[\]]+)):(?P<port>\d{1,5})$")


def parse_listen(text: str, at: str = "http.listen") -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` as (host, port); ConfigValueError naming ``at``."""
    match = _LISTEN.match(text)
    if match is None:
        raise ConfigValueError(f"{at}: {show_json(text)} is not host:port (e.g. "
                               "127.0.0.1:8080, or [::1]:8080 for IPv6)")
    port = int(match.group("port"))
    if not 1 <= port <= 65535:
        raise ConfigValueError(f"{at}: port {port} is out of range 1..65535")
    v6 = match.group("v6")
    if v6 is not None:
        try:
            ipaddress.IPv6Address(v6)
        except ValueError:
            raise ConfigValueError(f"{at}: [{v6}] is not an IPv6 address") from None
        return v6, port
    return match.group("host"), port


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may well be reachable


def _build_http(doc: Mapping[str, Any], problems: list[str],
                warnings: list[str]) -> HttpConfig | None:
    item = doc.get("http")
    if not isinstance(item, dict) or not isinstance(item.get("listen"), str):
        return None  # absent, or the schema said what is wrong
    try:
        host, port = parse_listen(item["listen"])
    except ConfigValueError as exc:
        problems.append(str(exc))
        return None
    token = item.get("token")
    if not isinstance(token, str) or not token:
        token = None
        if not _loopback(host):
            warnings.append(f"http.listen: {item['listen']} is not a loopback address and "
                            "there is no http.token: anyone who reaches it reads the values")
    return HttpConfig(host, port, Secret(token) if token else None)


@dataclass(frozen=True)
class Config:
    devices: tuple[DeviceConfig, ...]
    signals: tuple[SignalConfig, ...]
    warnings: tuple[str, ...] = ()
    source: str = ""
    #: Where state lives across restarts (invocation counters); see :meth:`state_directory`.
    state_dir: str = DEFAULT_STATE_DIR
    #: The PORTn table in use: :data:`DEFAULT_PORTS` with the configuration's ``ports``.
    ports: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_PORTS),
                                     hash=False)
    #: The HTTP API (``http``); None: no HTTP server.
    http: HttpConfig | None = None
    #: The MQTT output; None when the configuration has no ``mqtt`` object.
    mqtt: MqttConfig | None = None
    #: Load profiles and event logs (``profiles``).
    profiles: tuple[ProfileConfig, ...] = ()
    #: How many devices may be connecting and associating at once (``max_connecting``).
    max_connecting: int = DEFAULT_MAX_CONNECTING

    def port_path(self, name: str) -> str:
        """A ``-p`` name as the devices' ports are named: PORTn resolved through
        :attr:`ports` (any case), anything else as is."""
        if _PORT_NAME.fullmatch(name):
            return self.ports.get(name.upper(), name)
        return name

    def state_directory(self, environ: Mapping[str, str]) -> str:
        """``state_dir``, unless the environment's DLMS_STATE_DIR overrides it."""
        return environ.get("DLMS_STATE_DIR") or self.state_dir

    def device(self, alias: str) -> DeviceConfig:
        return self._by_alias[alias]

    def signals_of(self, alias: str) -> tuple[SignalConfig, ...]:
        """The signals of device ``alias``, in configuration order."""
        return self._signals_by_device.get(alias, ())

    # indexes of the (frozen) configuration, built on first use: 50,000 signals are
    # not scanned once per device
    @cached_property
    def _by_alias(self) -> Mapping[str, DeviceConfig]:
        by_alias: dict[str, DeviceConfig] = {}
        for dev in self.devices:
            by_alias.setdefault(dev.device_alias, dev)
        return by_alias

    @cached_property
    def _signals_by_device(self) -> Mapping[str, tuple[SignalConfig, ...]]:
        grouped: dict[str, list[SignalConfig]] = {}
        for sig in self.signals:
            grouped.setdefault(sig.device_alias, []).append(sig)
        return {alias: tuple(sigs) for alias, sigs in grouped.items()}

    def profiles_of(self, alias: str) -> tuple[ProfileConfig, ...]:
        """The enabled profiles of device ``alias``."""
        return tuple(p for p in self.profiles if p.device_alias == alias and p.enable)


_SECRET_KEYS = frozenset({"password", "block_cipher_key", "authentication_key",
                          "dedicated_key", "token"})


def load_schema() -> dict[str, Any]:
    # beside this module (package data); not importlib.resources, which costs 1 MB of RSS
    text = Path(__file__).with_name("config_schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


#: OBIS texts parsed once each (a pure function of the text; an Obis is immutable, so
#: the signals of 5000 meters reading the same ten codes share ten objects).
_parse_obis = lru_cache(maxsize=4096)(Obis.parse)
_parse_signal_obis = lru_cache(maxsize=4096)(_obis.parse_signal_obis)

_SCHEMA = load_schema()
#: "Is it valid?" in microseconds per device; jsonschema explains only what is not.
_ACCEPTS = compile_schema(_SCHEMA)


@cache
def _validator() -> jsonschema.protocols.Validator:
    import jsonschema  # here: only a refused configuration needs it

    return jsonschema.Draft202012Validator(_SCHEMA)
_DEVICE_PROPS: Mapping[str, Any] = _SCHEMA["$defs"]["device"]["properties"]
_SIGNAL_PROPS: Mapping[str, Any] = _SCHEMA["$defs"]["signal"]["properties"]
_PROFILE_PROPS: Mapping[str, Any] = _SCHEMA["$defs"]["profile"]["properties"]
_MQTT_PROPS: Mapping[str, Any] = _SCHEMA["properties"]["mqtt"]["properties"]
_TLS_PROPS: Mapping[str, Any] = _MQTT_PROPS["tls"]["properties"]


def json_path(parts: Sequence[str | int], root: str = "") -> str:
    """A JSON path as problems name it: ``devices[0].port`` (``root`` "$": ``$.objects[0]``)."""
    out = root
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def show_json(value: object) -> str:
    """A value as a problem shows it: JSON, cut at 60 characters."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _show(value: object, key: str | int | None) -> str:
    if isinstance(key, str) and key in _SECRET_KEYS:
        return MASK
    return show_json(value)


_CHOICE = re.compile(r"^\^\(\?i:(.*)\)\$$")
_HEX_OCTETS = re.compile(r"\)\{(\d+)\}")  # (?:[0-9A-Fa-f]{2}\s?){16}: 16 octets


def _bounds(schema: Mapping[str, Any]) -> str:
    noun = "a number" if schema.get("type") == "number" else "an integer"
    lo, hi = schema.get("minimum"), schema.get("maximum")
    if lo is not None and hi is not None:
        return f"must be {noun} from {lo} to {hi}"
    if "exclusiveMinimum" in schema and hi is not None:
        return f"must be {noun} greater than {schema['exclusiveMinimum']} and at most {hi}"
    if lo is not None:
        return f"must be {noun} of at least {lo}"
    if hi is not None:
        return f"must be {noun} of at most {hi}"
    if "exclusiveMinimum" in schema:
        return f"must be {noun} greater than {schema['exclusiveMinimum']}"
    return f"must be {noun} less than {schema.get('exclusiveMaximum')}"


def _allowed(error: jsonschema.ValidationError) -> str:
    """What the schema allows, in words, for a failed keyword (a schema may say it
    itself with the annotation ``x-allowed``)."""
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    kind = error.validator
    if isinstance(schema.get("x-allowed"), str):
        return str(schema["x-allowed"])
    if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return _bounds(schema)
    if kind == "type":
        types = cast(str | list[str], error.validator_value)
        names = types if isinstance(types, list) else [types]
        return "must be " + " or ".join(f"a{'n' if t[0] in 'aeiou' else ''} {t}" for t in names)
    if kind == "enum":
        values = [json.dumps(v, ensure_ascii=False) for v in cast(list[Any], error.validator_value)]
        return "must be one of " + ", ".join(values)
    if kind == "const":
        return f"must be {json.dumps(error.validator_value, ensure_ascii=False)}"
    if kind == "pattern":
        match = _CHOICE.match(str(error.validator_value))
        if match:
            return "must be one of " + ", ".join(match.group(1).split("|")) + " (any case)"
        octets = _HEX_OCTETS.findall(str(error.validator_value))
        if octets:
            return f"must be {' or '.join(octets)} octets in hex (e.g. {'00' * 4}...)"
        if "\\s" in str(error.validator_value):
            return "must not contain spaces"
        return f"must match {error.validator_value}"
    if kind in ("minLength", "minItems"):
        return "must not be empty"
    if kind == "maxLength":
        return f"must be at most {error.validator_value} characters"
    return error.message


SchemaPath = tuple[str | int, ...]
Problem = tuple[SchemaPath, str]


def _order(item: tuple[SchemaPath, str]) -> list[tuple[int, int, str]]:
    return [(0, p, "") if isinstance(p, int) else (1, 0, p) for p in item[0]]


_PATH_PREFIX = re.compile(r"^([A-Za-z_]\w*)((?:\[\d+\]|\.[A-Za-z_]\w*)*):")
_PATH_PART = re.compile(r"\[(\d+)\]|\.([A-Za-z_]\w*)")


def path_of(message: str) -> SchemaPath:
    """The JSON path a problem or warning starts with (``devices[0].port: ...`` gives
    ``("devices", 0, "port")``; ``(top level): ...`` or no path gives ``()``)."""
    match = _PATH_PREFIX.match(message)
    if match is None:
        return ()
    parts: list[str | int] = [match.group(1)]
    for index, key in _PATH_PART.findall(match.group(2)):
        parts.append(int(index) if index else key)
    return tuple(parts)


def in_path_order(found: Sequence[Problem]) -> list[Problem]:
    """``found`` sorted by path (stable: the first found first at one path), each
    message once."""
    seen: set[str] = set()
    unique = []
    for item in found:
        if item[1] not in seen:
            seen.add(item[1])
            unique.append(item)
    return sorted(unique, key=_order)


#: Which failed keyword speaks first when a value breaks several (``"9600"`` for
#: baudrate: "must be an integer, one of 300, 600, ...").
_RANK = {"type": 0, "minLength": 1, "minItems": 1, "enum": 2, "const": 2, "pattern": 3}


def _joined(texts: list[str]) -> str:
    out = texts[0]
    for text in texts[1:]:
        out += f", {text[8:]}" if text.startswith("must be ") else f"; {text}"
    return out


def schema_problems(validator: jsonschema.protocols.Validator, doc: Any, *,
                    root: str = "", top_level: str | None = None,
                    secret_keys: frozenset[str] = frozenset()
                    ) -> list[Problem]:
    """Every way ``doc`` breaks the validator's schema, in path order: ``(path, message)``
    where the message names the JSON path (after ``root``), the bad value and what is
    allowed.  ``top_level`` is the message for a document that is not even of the
    schema's type; ``secret_keys`` are keys whose values are never shown.

    ``required`` gives one "missing required key" per key (its path is the missing
    key's), ``additionalProperties`` one "unknown key (allowed: ...)" per key; every
    other failed keyword says what is allowed (:func:`_allowed`), one message per
    value however many keywords it breaks."""
    found: list[Problem] = []
    values: dict[SchemaPath, list[jsonschema.ValidationError]] = {}
    for error in validator.iter_errors(doc):
        parts: SchemaPath = tuple(error.absolute_path)
        at = json_path(parts, root)
        schema = error.schema if isinstance(error.schema, Mapping) else {}
        if error.validator == "required" and isinstance(error.instance, Mapping):
            required: list[str] = list(cast(list[str], error.validator_value))
            for key in required:
                if key not in error.instance:
                    found.append(((*parts, key), f"{at}: missing required key {key!r}"))
            continue
        if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
            known = list(schema.get("properties", {}))
            patterns = list(schema.get("patternProperties", {}))
            allowed = ", ".join(sorted(known))
            for key in error.instance:
                if key in known or any(re.search(p, key) for p in patterns):
                    continue
                found.append(((*parts, key),
                              f"{json_path((*parts, key), root)}: unknown key "
                              f"(allowed: {allowed})"))
            continue
        if error.validator == "type" and not parts and top_level is not None:
            found.append((parts, f"{at}: {top_level}"))
            continue
        values.setdefault(parts, []).append(error)
    for parts, errors in values.items():
        errors.sort(key=lambda e: _RANK.get(str(e.validator), 4))
        texts: list[str] = []
        for error in errors:
            text = _allowed(error)
            if text not in texts:
                texts.append(text)
        last = parts[-1] if parts else None
        shown = MASK if isinstance(last, str) and last in secret_keys else show_json(
            errors[0].instance)
        found.append((parts, f"{json_path(parts, root)}: {shown} is not allowed: "
                             f"{_joined(texts)}"))
    return in_path_order(found)


def _schema_problems(doc: object) -> list[Problem]:
    if _ACCEPTS(doc):
        return []
    return schema_problems(
        _validator(), doc, top_level="must be a JSON object with devices and signals",
        secret_keys=_SECRET_KEYS)


def _unknown_keys(items: object, section: str, known: Mapping[str, Any]) -> list[Problem]:
    warnings: list[Problem] = []
    if not isinstance(items, list):
        return warnings
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            continue
        for key in item:
            if key in known:
                continue
            import difflib  # here: only an unknown key needs it

            close = difflib.get_close_matches(key, list(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            warnings.append(((section, index, key),
                             f"{section}[{index}].{key}: unknown key, ignored{hint}"))
    return warnings


def _default(props: Mapping[str, Any], key: str) -> Any:
    return props[key].get("default")


def _get(item: Mapping[str, Any], props: Mapping[str, Any], key: str) -> Any:
    return item.get(key, _default(props, key))


def _choice(enum_cls: type[enum.Enum], text: str) -> Any:
    lowered = text.lower()
    for member in enum_cls:
        if str(member.value).lower() == lowered:
            return member
    raise LookupError(text)


def _client_address(raw: int | str) -> int:
    if isinstance(raw, int):
        return raw
    text = raw.strip().lower()
    text = text[2:] if text.startswith("0x") else text
    if not text or not all(c in "0123456789abcdef" for c in text):
        raise ConfigValueError("is not a hex number")
    return int(text, 16)


def _client_sap(raw: Any, where: str, mode: Mode, check_range: bool,
                problems: list[str], default: int = 0) -> int:
    """A client address setting (hex text or an integer), in the range of ``mode``
    (an HDLC SAP: 0..0x7F; a wrapper wPort: 0..0xFFFF) when ``check_range``; a problem
    is added for a bad one and ``default`` returned."""
    try:
        value = _client_address(raw)
    except ValueError as exc:
        problems.append(f"{where}: {_show(raw, None)} {exc}: write hex as a string "
                        "(\"10\", \"0x10\") or a decimal integer")
        return default
    limit = 0xFFFF if mode is Mode.WRAPPER else 0x7F
    if check_range and not 0 <= value <= limit:
        problems.append(f"{where}: {value} is not allowed: must be from 0 to {limit} for "
                        f"mode {mode.value}")
    return value



def _server_address(at: str, item: Mapping[str, Any], mode: Mode, serial_number: int,
                    formula: str | None, problems: list[str],
                    warnings: list[str]) -> ServerAddress | None:
    if mode is Mode.WRAPPER:
        # IEC 62056-47: the destination wPort is the logical device (1 = management);
        # HDLC physical addresses and the serial-number formula do not apply.
        wport = int(item.get("logical_address", 1))
        if wport == 0:
            problems.append(f"{at}.logical_address: 0 is not allowed for DLMS-WRAPPER: the "
                            "server wPort must be from 1 to 16383 (1 = management device)")
            return None
        if serial_number:
            warnings.append(f"{at}.serial_number: ignored for DLMS-WRAPPER (no HDLC address)")
        return ServerAddress(logical=wport, physical=0, size=2)
    try:
        return resolve_server_address(
            logical=int(_get(item, _DEVICE_PROPS, "logical_address")),
            physical=int(_get(item, _DEVICE_PROPS, "physical_address")),
            size=int(_get(item, _DEVICE_PROPS, "address_size")),
            serial_number=serial_number,
            address_formula=formula,
        )
    except ValueError as exc:
        where = "serial_number" if serial_number else "address_size"
        problems.append(f"{at}.{where}: impossible server address: {exc}")
        return None

_SERVER_KEYS = frozenset({"mode", "serial_number", "logical_address", "physical_address",
                          "address_size", "address_formula"})


def _build_device(index: int, item: Mapping[str, Any], problems: list[str],
                  warnings: list[str], base: Path, bad: frozenset[str] = frozenset(),
                  ports: Mapping[str, str] | None = None) -> DeviceConfig | None:
    """One device from ``item``; None if it has a problem.  ``bad`` are the keys the
    schema refused (already reported): they are left out (their defaults used) and
    what depends on them is not checked, so every other problem is still found.
    ``ports`` is the PORTn table (None: it is broken, PORTn names are not checked)."""
    at = f"devices[{index}]"
    before = len(problems)
    props = _DEVICE_PROPS
    if bad:
        item = {key: value for key, value in item.items() if key not in bad}
    mode_known = "mode" not in bad
    auth_known = "auth" not in bad
    ciphering_known = auth_known and not bad & {"security", "block_cipher_key"}

    mode_text = str(_get(item, props, "mode"))
    mode = Mode.HDLC if mode_text.lower() == "dlms" else _choice(Mode, mode_text)
    auth: Auth = _choice(Auth, str(_get(item, props, "auth")))
    referencing: Referencing = _choice(Referencing, str(_get(item, props, "type")))

    client = (_client_sap(item["client_address"], f"{at}.client_address", mode, mode_known,
                          problems) if "client_address" in item else 0)

    ip, port, device = item.get("ip"), item.get("port"), item.get("device")
    port_alias = None
    if bad & {"ip", "port", "device"}:
        pass  # the connection is reported broken already
    elif ip is not None and port is None:
        problems.append(f"{at}.port: missing: a TCP device needs both ip and port")
    if port is not None and ip is None and device is None:
        problems.append(f"{at}.ip: missing: a TCP device needs both ip and port")
    elif ip is None and port is None and device is None:
        problems.append(f"{at}: no connection: set ip and port (TCP) or device (serial)")
    if ip is not None and device is not None:
        warnings.append(f"{at}: both ip and device are set; using TCP {ip}:{port}, "
                        "serial settings ignored")
        device = None
    if device is not None and ip is None:
        device, port_alias = _serial_port(at, device, ports, problems)
    if mode_known and mode is Mode.WRAPPER and ip is None and device is not None:
        problems.append(f"{at}.mode: \"DLMS-WRAPPER\" is not allowed for a serial device: "
                        "the wrapper is for TCP; use DLMS-HDLC or IEC")
    if mode_known and mode is Mode.IEC and ip is not None:
        warnings.append(f"{at}.mode: IEC opening is irrelevant over TCP; using DLMS-HDLC")
        mode = Mode.HDLC

    password_text = item.get("password")
    if auth_known:
        _check_password(at, auth, password_text, "password" in bad, problems, warnings)
    needs = {Auth.HIGH_SHA256: ("system_title",),
             Auth.HIGH_ECDSA: ("system_title", "client_private_key", "server_public_key"),
             Auth.HIGH_GMAC: ("system_title", "block_cipher_key", "authentication_key")}
    for key in needs.get(auth, ()) if auth_known else ():
        if key not in item and key not in bad:
            problems.append(f"{at}.{key}: missing: auth {auth.value} needs {key}")
    security = str(_get(item, props, "security")).lower()
    if auth is Auth.HIGH_GMAC and security == "none" and "security" not in bad:
        problems.append(f"{at}.security: \"none\" is not allowed with auth HighGmac: it "
                        "ciphers every APDU (authentication, encryption or both)")
    signing_key = server_public_key = None
    if ciphering_known:
        signing_key, server_public_key = _ecdsa_keys(at, item, auth, base, problems, warnings)
    read_counter, counter_obis, public_client = _ciphered_options(
        at, item, auth, mode, security, problems, warnings,
        sure=ciphering_known and mode_known)

    clock_sync = _clock_sync(at, item.get("clock_sync"), problems)

    serial_number = int(_get(item, props, "serial_number"))
    formula = item.get("address_formula")
    if formula is not None:
        try:
            compile_address_formula(formula)
        except ValueError as exc:
            problems.append(f"{at}.address_formula: {_show(formula, None)} is not allowed: {exc}")
            formula = None
        if not serial_number and "serial_number" not in bad:
            warnings.append(f"{at}.address_formula: set but serial_number is 0; not used")
    server = None
    if not bad & _SERVER_KEYS:
        server = _server_address(at, item, mode, serial_number, formula, problems, warnings)

    if len(problems) > before or server is None or bad:
        return None
    return DeviceConfig(
        name=item["name"],
        device_alias=item["device_alias"],
        description=_get(item, props, "description"),
        enable=bool(_get(item, props, "enable")),
        server=server,
        serial_number=serial_number,
        client_address=client,
        referencing=referencing,
        mode=mode,
        timeout_ms=_get(item, props, "timeout_ms"),
        auth=auth,
        password=Secret(password_text) if password_text and auth is not Auth.NONE else None,
        ip=ip,
        port=port if ip is not None else None,
        device=device,
        port_alias=port_alias,
        baudrate=_get(item, props, "baudrate"),
        databits=_get(item, props, "databits"),
        stopbits=_get(item, props, "stopbits"),
        parity=str(_get(item, props, "parity")).lower(),
        flowcontrol=str(_get(item, props, "flowcontrol")).lower(),
        retry_counter=_get(item, props, "retry_counter"),
        scan_rate_ms=_get(item, props, "scan_rate_ms"),
        reconnect_time=_get(item, props, "reconnect_time"),
        max_list_size=_get(item, props, "max_list_size"),
        system_title=_hex(item.get("system_title")),
        block_cipher_key=_hex_secret(item.get("block_cipher_key")),
        authentication_key=_hex_secret(item.get("authentication_key")),
        dedicated_key=_hex_secret(item.get("dedicated_key")),
        security=security,
        signing_key=signing_key,
        server_public_key=server_public_key,
        read_invocation_counter=read_counter,
        invocation_counter_obis=counter_obis,
        public_client_address=public_client,
        clock_sync=clock_sync,
    )


def _clock_sync(at: str, item: object, problems: list[str]) -> ClockSyncConfig | None:
    """The device's ``clock_sync`` object (the schema has checked its keys and types)."""
    if not isinstance(item, Mapping):
        return None
    props = _DEVICE_PROPS["clock_sync"]["properties"]
    name = item.get("time_zone")
    if name is None:
        zone, zone_name = local_zone()
    else:
        import zoneinfo

        try:
            zone, zone_name = zoneinfo.ZoneInfo(str(name)), str(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            problems.append(f"{at}.clock_sync.time_zone: {_show(name, None)} is not allowed: "
                            "not an IANA time zone known here (e.g. Europe/Vilnius, UTC)")
            return None
    return ClockSyncConfig(
        max_drift_s=float(item["max_drift_s"]),
        min_interval_s=int(_get(item, props, "min_interval_s")),
        method=str(_get(item, props, "method")).lower(),
        time_zone=None if name is None else str(name),
        zone=zone, zone_name=zone_name,
        require_ntp_sync=bool(_get(item, props, "require_ntp_sync")))


def _check_password(at: str, auth: Auth, password_text: object, bad: bool,
                    problems: list[str], warnings: list[str]) -> None:
    """The password against the auth mechanism (``bad``: the schema refused it)."""
    # imported here: the HLS stack is not needed to check a configuration (issue 16)
    from dlmsd.protocol.security_hls import HIGH_KEY_SIZE

    if auth.needs_password and not password_text and not bad:
        problems.append(f"{at}.password: missing: auth {auth.value} needs a password")
    size = len(password_text.encode()) if isinstance(password_text, str) else 0
    if auth is Auth.HIGH and size > HIGH_KEY_SIZE:
        problems.append(f"{at}.password: {MASK} is not allowed: auth High (AES-128) needs a "
                        f"secret of at most {HIGH_KEY_SIZE} bytes, got {size}")
    elif auth is Auth.HIGH and 0 < size < HIGH_KEY_SIZE:
        warnings.append(f"{at}.password: auth High (AES-128) takes a {HIGH_KEY_SIZE}-byte "
                        f"secret; this one has {size} bytes and is padded with zero bytes "
                        f"to {HIGH_KEY_SIZE}, as gurux does (the meter must pad it the same "
                        "way)")
    if auth is Auth.NONE and password_text:
        warnings.append(f"{at}.password: set but auth is None; not used")


def _same_address(raw: int | str, other: int) -> bool:
    try:
        return _client_address(raw) == other
    except ValueError:
        return False


def _ciphered_options(at: str, item: Mapping[str, Any], auth: Auth, mode: Mode,
                      security: str, problems: list[str], warnings: list[str], *,
                      sure: bool = True) -> tuple[bool, Obis, int]:
    """What only a ciphered device uses: read_invocation_counter,
    invocation_counter_obis and public_client_address (returned), and dedicated_key
    (checked).  Not ``sure``: auth, security or mode is broken, so only what does not
    depend on them is checked."""
    props = _DEVICE_PROPS
    read = bool(_get(item, props, "read_invocation_counter"))
    text = str(_get(item, props, "invocation_counter_obis"))
    obis = INVOCATION_COUNTER_OBIS
    try:
        obis = _parse_obis(text)
    except ValueError as exc:
        problems.append(f"{at}.invocation_counter_obis: {exc}")
    public = _client_sap(_get(item, props, "public_client_address"),
                         f"{at}.public_client_address", mode, sure, problems, default=16)
    ciphered = ciphers_every_apdu(auth, security, "block_cipher_key" in item)
    if not sure:
        return read, obis, public
    if read and not ciphered:
        warnings.append(f"{at}.read_invocation_counter: set but the device is not ciphered "
                        f"(auth {auth.value}); not used")
    if read and ciphered and "client_address" in item and _same_address(
            item["client_address"], public):
        warnings.append(f"{at}.public_client_address: {public} is the device's own "
                        "client_address: the counter is read by an unauthenticated "
                        "association of the same client (most meters refuse it)")
    if "dedicated_key" in item:
        if not ciphered:
            warnings.append(f"{at}.dedicated_key: set but the device is not ciphered "
                            f"(auth {auth.value}); not used")
        elif security == "authentication":
            problems.append(f"{at}.dedicated_key: {MASK} is not allowed with security "
                            f"{security}: it travels in the encrypted InitiateRequest "
                            "(security encryption or both)")
    return read, obis, public


def _ecdsa_keys(at: str, item: Mapping[str, Any], auth: Auth, base: Path,
                problems: list[str], warnings: list[str]
                ) -> tuple[Secret | None, bytes | None]:
    """Read the HighEcdsa key files; check curves and the ciphering key sizes."""
    key_size = {"block_cipher_key": 16, "authentication_key": 16, "dedicated_key": 16}
    signing_key = server_public_key = None
    if auth is Auth.HIGH_ECDSA:
        for name in ("client_private_key", "server_public_key"):
            text = item.get(name)
            if text is None:
                continue
            try:
                if name == "client_private_key":
                    signing_key = load_private_key(base / text)
                else:
                    server_public_key = load_public_key(base / text)
            except KeyFileError as exc:
                problems.append(f"{at}.{name}: {exc}")
        if signing_key is not None and server_public_key is not None and (
                len(server_public_key) != 2 * len(signing_key) + 1):
            problems.append(f"{at}.server_public_key: not on the curve of "
                            "client_private_key (P-256 and P-384 cannot be mixed)")
        # the curve from whichever key file could be read (P-384: 48-octet scalar,
        # 97-octet point); neither: the sizes cannot be checked yet
        if signing_key is not None:
            key_size = dict.fromkeys(key_size, 32 if len(signing_key) == 48 else 16)
        elif server_public_key is not None:
            key_size = dict.fromkeys(key_size, 32 if len(server_public_key) == 97 else 16)
        else:
            key_size = {}
        if "block_cipher_key" in item and "authentication_key" not in item:
            problems.append(f"{at}.authentication_key: missing: ciphering with "
                            "block_cipher_key needs authentication_key")
    else:
        for name in ("client_private_key", "server_public_key"):
            if name in item:
                warnings.append(f"{at}.{name}: set but auth is {auth.value}; not used")
    for name, size in key_size.items():
        text = item.get(name)
        if text is not None and len(bytes.fromhex(text)) != size:
            why = (f"auth {auth.value} on P-384 (suite 2) needs 32 octets"
                   if size == 32 else f"auth {auth.value} needs 16 octets" + (
                       " (32 with a P-384 key)" if auth is Auth.HIGH_ECDSA else ""))
            problems.append(f"{at}.{name}: {MASK} is not allowed: {why}")
    return signing_key, server_public_key


def _hex(text: str | None) -> bytes | None:
    return None if text is None else bytes.fromhex(text)


def _hex_secret(text: str | None) -> Secret | None:
    return None if text is None else Secret(bytes.fromhex(text))


def _build_signal(index: int, item: Mapping[str, Any], devices: Mapping[str, DeviceConfig],
                  known_devices: set[str], problems: list[str],
                  warnings: list[str], bad: frozenset[str] = frozenset()
                  ) -> SignalConfig | None:
    """One signal from ``item``; None if it has a problem.  ``bad``: the keys the
    schema refused (reported already; left out, the rest still checked)."""
    at = f"signals[{index}]"
    before = len(problems)
    props = _SIGNAL_PROPS
    if bad:
        item = {key: value for key, value in item.items() if key not in bad}
    key = "obis" if "obis" in item else "obis_job"
    if "obis" in item and "obis_job" in item:
        warnings.append(f"{at}.obis_job: both obis and obis_job are set; using obis")
    text = item.get(key)
    obis: Obis | None = None
    attribute = 2
    if bad & {"obis", "obis_job"}:
        pass
    elif text is None:
        problems.append(f"{at}: missing required key 'obis'")
    else:
        try:
            obis, attribute = _parse_signal_obis(text)  # a string: the schema said so
        except ValueError as exc:
            problems.append(f"{at}.{key}: {_show(text, None)} is not allowed: {exc}")
    alias = item.get("device_alias")
    if alias is not None and alias not in known_devices:
        choices = ", ".join(sorted(known_devices)) or "none are configured"
        problems.append(f"{at}.device_alias: {_show(alias, None)} names no device "
                        f"(devices: {choices})")
    device = devices.get(alias) if isinstance(alias, str) else None
    address = int(_get(item, props, "address"))
    if device is not None and address and device.referencing is Referencing.LN:
        warnings.append(f"{at}.address: short name {address} ignored: device {alias} uses LN")
    if len(problems) > before or obis is None or alias is None or bad:
        return None
    return SignalConfig(
        signal_name=item["signal_name"],
        device_alias=alias,
        signal_alias=item["signal_alias"],
        enable=bool(_get(item, props, "enable")),
        log=bool(_get(item, props, "log")),
        address=address,
        obis=obis,
        attribute=attribute,
        class_id=item.get("class_id"),
        topic=item.get("topic"),
    )


def _build_profile(index: int, item: Mapping[str, Any], known_devices: set[str],
                   problems: list[str], bad: frozenset[str] = frozenset()
                   ) -> ProfileConfig | None:
    """One profile from ``item``; None if it has a problem (``bad``: the keys the schema
    refused, reported already)."""
    at = f"profiles[{index}]"
    before = len(problems)
    props = _PROFILE_PROPS
    if bad:
        item = {key: value for key, value in item.items() if key not in bad}
    alias = item.get("device_alias")
    if alias is not None and alias not in known_devices:
        choices = ", ".join(sorted(known_devices)) or "none are configured"
        problems.append(f"{at}.device_alias: {_show(alias, None)} names no device "
                        f"(devices: {choices})")
    obis: Obis | None = None
    text = item.get("obis")
    if isinstance(text, str):
        try:
            obis = Obis.parse(text)
        except ValueError as exc:
            problems.append(f"{at}.obis: {_show(text, None)} is not allowed: {exc}")
    columns: list[str] | None = None
    raw_columns = item.get("columns")
    if isinstance(raw_columns, list):
        columns = []
        for n, column in enumerate(raw_columns):
            try:
                code, attribute = _parse_signal_obis(str(column))
            except ValueError as exc:
                problems.append(f"{at}.columns[{n}]: {_show(column, None)} is not allowed: "
                                f"{exc}")
                continue
            key = f"{code}:{attribute}"
            if key in columns:
                problems.append(f"{at}.columns[{n}]: {_show(column, None)} is listed twice")
            columns.append(key)
    if len(problems) > before or obis is None or alias is None or bad:
        return None
    interval = item.get("interval_ms")
    return ProfileConfig(
        device_alias=alias,
        profile_alias=item["profile_alias"],
        obis=obis,
        enable=bool(_get(item, props, "enable")),
        interval_ms=None if interval is None else int(interval),
        backfill_hours=int(_get(item, props, "backfill_hours")),
        access=str(_get(item, props, "access")).lower(),
        columns=None if columns is None else tuple(columns),
    )


def _default_client_id() -> str:
    return f"dlmsd-{platform.node() or 'localhost'}"


def _build_mqtt(item: Mapping[str, Any], base: Path, problems: list[str]) -> MqttConfig | None:
    """The ``mqtt`` object (the schema has checked its keys and types); None on a problem."""
    before = len(problems)
    props = _MQTT_PROPS
    username, password = item.get("username"), item.get("password")
    if password is not None and username is None:
        problems.append("mqtt.password: set without mqtt.username: the broker takes a "
                        "password only with a user name")
    tls: MqttTls | None = None
    raw_tls = item.get("tls")
    if isinstance(raw_tls, dict):
        files: dict[str, str | None] = {}
        for key in ("ca_file", "cert_file", "key_file"):
            given = raw_tls.get(key)
            if given is None:
                files[key] = None
                continue
            path = base / given
            if not path.is_file():
                problems.append(f"mqtt.tls.{key}: {_show(given, None)} is not allowed: "
                                f"no such file ({path})")
            files[key] = str(path)
        if files["key_file"] is not None and files["cert_file"] is None:
            problems.append("mqtt.tls.key_file: set without mqtt.tls.cert_file")
        tls = MqttTls(files["ca_file"], files["cert_file"], files["key_file"],
                      bool(raw_tls.get("insecure", _TLS_PROPS["insecure"]["default"])))
    if len(problems) > before:
        return None
    return MqttConfig(
        host=str(item["host"]),
        port=int(_get(item, props, "port")),
        client_id=str(item.get("client_id") or _default_client_id()),
        username=username,
        password=None if password is None else Secret(password),
        tls=tls,
        keepalive_s=int(_get(item, props, "keepalive_s")),
        qos=int(_get(item, props, "qos")),
        retain=bool(_get(item, props, "retain")),
        topic_prefix=str(_get(item, props, "topic_prefix")),
        format=str(_get(item, props, "format")),
        publish=str(_get(item, props, "publish")),
        queue_size=int(_get(item, props, "queue_size")),
    )


def _duplicates(items: list[Any], key: str, section: str) -> list[str]:
    problems: list[str] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        value = item.get(key) if isinstance(item, dict) else None
        if not isinstance(value, str):
            continue
        if value in seen:
            problems.append(f"{section}[{index}].{key}: {_show(value, None)} is already used "
                            f"by {section}[{seen[value]}]; aliases must be unique")
        else:
            seen[value] = index
    return problems


def _bad_keys(schema_found: Sequence[Problem]) -> dict[tuple[str, int], frozenset[str]]:
    """The keys of each ``section[index]`` the schema refused (or found missing)."""
    keys: dict[tuple[str, int], set[str]] = {}
    for parts, _ in schema_found:
        if len(parts) > 2 and isinstance(parts[0], str) and isinstance(parts[1], int):
            keys.setdefault((parts[0], parts[1]), set()).add(str(parts[2]))
    return {item: frozenset(names) for item, names in keys.items()}


def _ports_table(doc: Mapping[str, Any], broken: bool) -> dict[str, str] | None:
    """:data:`DEFAULT_PORTS` with the configuration's ``ports`` over it (None: broken)."""
    if broken:
        return None
    table = dict(DEFAULT_PORTS)
    given = doc.get("ports", {})
    if isinstance(given, dict):
        table.update({str(k).upper(): str(v) for k, v in given.items()})
    return table


def _tagged(messages: Sequence[str]) -> list[Problem]:
    return [(path_of(message), message) for message in messages]


def parse_config(doc: object, source: str = "<config>", base: Path | None = None) -> Config:
    """Validate a parsed JSON document; raise ConfigError listing every problem.

    Every device and signal is checked, also those the schema already refused (their
    refused keys are left out, so what else is wrong with them is found in the same
    pass); problems and warnings come in JSON-path order, each once.  The
    ConfigError carries the warnings too.

    ``base`` is the directory relative key file paths start from (the configuration
    file's; default the working directory)."""
    base = Path.cwd() if base is None else base
    schema_found = _schema_problems(doc)
    if not isinstance(doc, dict):
        raise ConfigError(f"{source}: invalid configuration",
                          [message for _, message in schema_found])
    raw_devices = doc.get("devices") if isinstance(doc.get("devices"), list) else []
    raw_signals = doc.get("signals") if isinstance(doc.get("signals"), list) else []
    raw_profiles = doc.get("profiles") if isinstance(doc.get("profiles"), list) else []
    assert isinstance(raw_devices, list) and isinstance(raw_signals, list)
    assert isinstance(raw_profiles, list)
    found_warnings: list[Problem] = [
        ((str(k),), f"{k}: unknown top-level key, ignored") for k in doc
        if k not in _SCHEMA["properties"]]
    found_warnings += _unknown_keys(raw_devices, "devices", _DEVICE_PROPS)
    found_warnings += _unknown_keys(raw_signals, "signals", _SIGNAL_PROPS)
    found_warnings += _unknown_keys(raw_profiles, "profiles", _PROFILE_PROPS)
    problems = _duplicates(raw_devices, "device_alias", "devices")
    problems += _duplicates(raw_signals, "signal_alias", "signals")
    problems += _duplicates(raw_profiles, "profile_alias", "profiles")
    warnings: list[str] = []
    ports = _ports_table(doc, any(parts[:1] == ("ports",) for parts, _ in schema_found))
    bad_keys = _bad_keys(schema_found)
    none: frozenset[str] = frozenset()

    devices: dict[str, DeviceConfig] = {}
    device_list: list[DeviceConfig] = []
    for index, item in enumerate(raw_devices):
        if not isinstance(item, dict):
            continue  # the schema said what it must be
        built = _build_device(index, item, problems, warnings, base,
                              bad_keys.get(("devices", index), none), ports)
        if built is not None and built.device_alias not in devices:
            devices[built.device_alias] = built
            device_list.append(built)
    known = {d["device_alias"] for d in raw_devices
             if isinstance(d, dict) and isinstance(d.get("device_alias"), str)}
    signal_list: list[SignalConfig] = []
    for index, item in enumerate(raw_signals):
        if not isinstance(item, dict):
            continue
        signal = _build_signal(index, item, devices, known, problems, warnings,
                               bad_keys.get(("signals", index), none))
        if signal is not None:
            signal_list.append(signal)

    profile_list: list[ProfileConfig] = []
    for index, item in enumerate(raw_profiles):
        if not isinstance(item, dict):
            continue
        profile = _build_profile(index, item, known, problems,
                                 bad_keys.get(("profiles", index), none))
        if profile is not None:
            profile_list.append(profile)

    http = _build_http(doc, problems, warnings)
    mqtt: MqttConfig | None = None
    raw_mqtt = doc.get("mqtt")
    if isinstance(raw_mqtt, dict) and not any(
            parts[:1] == ("mqtt",) for parts, _ in schema_found):
        mqtt = _build_mqtt(raw_mqtt, base, problems)

    # what the schema refused is said once, by the schema
    refused = {parts for parts, _ in schema_found}
    every = in_path_order(list(schema_found) + [
        found for found in _tagged(problems) if found[0] not in refused])
    warning_list = [message for _, message in in_path_order(
        found_warnings + _tagged(warnings))]
    if every:
        count = len(every)
        raise ConfigError(f"{source}: {count} problem{'s' if count > 1 else ''} "
                          "in the configuration", [message for _, message in every],
                          warning_list)
    state_dir = doc.get("state_dir", DEFAULT_STATE_DIR)
    max_connecting = doc.get("max_connecting", DEFAULT_MAX_CONNECTING)
    assert isinstance(state_dir, str) and ports is not None  # the schema checked them
    assert isinstance(max_connecting, int)
    return Config(tuple(device_list), tuple(signal_list), tuple(warning_list), source,
                  state_dir, ports, http, mqtt, tuple(profile_list), max_connecting)


def load_config(path: str | Path) -> Config:
    """Read and validate the configuration file; raise ConfigError on any problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a configuration file") from None
    except PermissionError:
        raise ConfigError(f"{path}: cannot read the configuration file: permission denied"
                          ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration file: {exc.strerror}"
                          ) from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: "
                          f"{exc.msg}") from None
    return parse_config(doc, str(path), path.parent)
