"""Configuration loading: defaults, every error class (path + value named), warnings."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import signal, tcp_device

from dlmsd.config import Auth, Mode, Referencing, load_config, parse_config
from dlmsd.errors import ConfigError
from dlmsd.protocol.obis import Obis

REPO = Path(__file__).resolve().parent.parent

Writer = Callable[..., Path]


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value.problems


def test_shipped_config_is_valid() -> None:
    config = load_config(REPO / "etc/dlms/dlms.json")
    assert {d.device_alias for d in config.devices} >= {"sim_hdlc", "sim_wrapper"}
    assert config.warnings == ()


def test_defaults(write_config: Writer) -> None:
    config = load_config(write_config())
    dev = config.devices[0]
    assert dev.enable is True
    assert dev.serial_number == 0
    assert (dev.server.logical, dev.server.size) == (16, 1)  # 0 << 7 | 16, one byte
    assert dev.server.to_bytes() == bytes([0x21])
    assert dev.referencing is Referencing.LN
    assert dev.mode is Mode.HDLC
    assert dev.timeout_ms == 2500
    assert dev.auth is Auth.NONE and dev.password is None
    assert (dev.baudrate, dev.databits, dev.stopbits, dev.parity, dev.flowcontrol) == (
        9600, 8, 1, "none", "none")
    assert (dev.retry_counter, dev.scan_rate_ms, dev.reconnect_time) == (3, 10000, 1000)
    assert dev.max_list_size == 10
    assert dev.port_name == "127.0.0.1:4059"
    sig = config.signals[0]
    assert (sig.enable, sig.log, sig.address, sig.attribute, sig.class_id) == (
        True, False, 0, 2, None)
    assert sig.obis == Obis(1, 0, 1, 8, 0, 255)


@pytest.mark.parametrize(("raw", "expected"), [
    ("10", 16), ("0x10", 16), ("0X1a", 26), (16, 16), (1, 1), ("7F", 127),
])
def test_client_address_string_is_hex(write_config: Writer, raw: object,
                                      expected: int) -> None:
    dev = load_config(write_config(devices=[tcp_device(client_address=raw)])).devices[0]
    assert dev.client_address == expected


def test_case_insensitive_choices_and_wcc_names(write_config: Writer) -> None:
    path = write_config(
        devices=[tcp_device(auth="LOW", password="00000000", type="sn", mode="dlms-wrapper")],
        signals=[{"signal_name": "V", "device_alias": "m1", "signal_alias": "v",
                  "obis_job": "1-0:32.7.0*255:3"}],
    )
    config = load_config(path)
    dev = config.devices[0]
    assert (dev.auth, dev.referencing, dev.mode) == (Auth.LOW, Referencing.SN, Mode.WRAPPER)
    assert (config.signals[0].obis, config.signals[0].attribute) == (
        Obis(1, 0, 32, 7, 0, 255), 3)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.json"
    with pytest.raises(ConfigError, match="configuration file not found") as info:
        load_config(path)
    assert str(path) in str(info.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any file")
def test_unreadable_file(write_config: Writer) -> None:
    path = write_config()
    path.chmod(0)
    with pytest.raises(ConfigError, match="permission denied"):
        load_config(path)


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)


def test_invalid_json_names_line_and_column(write_config: Writer) -> None:
    path = write_config(text='{\n  "devices": [\n    {"name": "x",}\n  ]\n}')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "invalid JSON at line 3 column 18" in str(info.value)


def test_top_level_not_object(write_config: Writer) -> None:
    problems = problems_of(write_config(text="[1, 2]"))
    assert problems == ["(top level): must be a JSON object with devices and signals"]


def test_missing_sections(write_config: Writer) -> None:
    problems = problems_of(write_config({"devices": []}))
    assert problems == ["(top level): missing required key 'signals'"]


@pytest.mark.parametrize(("over", "expected"), [
    ({"timeout_ms": -5}, "devices[0].timeout_ms: -5 is not allowed: must be an integer "
                         "from 100 to 600000"),
    ({"timeout_ms": "fast"}, 'devices[0].timeout_ms: "fast" is not allowed: must be an integer'),
    ({"address_size": 3}, "devices[0].address_size: 3 is not allowed: must be one of 1, 2, 4"),
    ({"mode": "HDLC"}, 'devices[0].mode: "HDLC" is not allowed: must be one of iec, dlms-hdlc, '
                       "dlms-wrapper, dlms (any case)"),
    ({"auth": "Medium"}, 'devices[0].auth: "Medium" is not allowed: must be one of none, low'),
    ({"baudrate": 1234}, "devices[0].baudrate: 1234 is not allowed: must be one of 300, 600"),
    ({"parity": "mark"}, 'devices[0].parity: "mark" is not allowed: must be one of none, even, '
                         "odd (any case)"),
    ({"enable": 2}, "devices[0].enable: 2 is not allowed: must be one of 0, 1, true, false"),
    ({"port": 70000}, "devices[0].port: 70000 is not allowed: must be an integer from 1 to 65535"),
    ({"device_alias": "two words"}, 'devices[0].device_alias: "two words" is not allowed: must '
                                    "not contain spaces"),
    ({"protocol": "Modbus"}, 'devices[0].protocol: "Modbus" is not allowed: must be one of '
                             "dlms (any case)"),
    ({"name": None}, "devices[0]: missing required key 'name'"),
    ({"client_address": "zz"}, 'devices[0].client_address: "zz" is not a hex number'),
    ({"client_address": 200}, "devices[0].client_address: 200 is not allowed: must be from 0 "
                              "to 127 for mode DLMS-HDLC"),
])
def test_schema_and_value_errors_name_path_and_value(write_config: Writer, over: dict[str, object],
                                                     expected: str) -> None:
    problems = problems_of(write_config(devices=[tcp_device(**over)]))
    assert any(p.startswith(expected) for p in problems), problems


def test_every_problem_is_reported_at_once(write_config: Writer) -> None:
    path = write_config(
        devices=[tcp_device("a", timeout_ms=1), tcp_device("b", baudrate=7),
                 tcp_device("a")],
        signals=[signal("s", device="ghost"), signal("s", device="b", obis="1.2.3")],
    )
    problems = problems_of(path)
    text = "\n".join(problems)
    assert "devices[0].timeout_ms: 1" in text
    assert "devices[1].baudrate: 7" in text
    assert 'devices[2].device_alias: "a" is already used by devices[0]' in text
    assert 'signals[0].device_alias: "ghost" names no device' in text
    assert 'signals[1].signal_alias: "s" is already used by signals[0]' in text
    assert 'signals[1].obis: "1.2.3" is not allowed' in text
    assert len(problems) == 6


def test_duplicate_signal_alias(write_config: Writer) -> None:
    problems = problems_of(write_config(signals=[signal("x"), signal("x")]))
    assert problems == ['signals[1].signal_alias: "x" is already used by signals[0]; '
                        "aliases must be unique"]


def test_signal_unknown_device(write_config: Writer) -> None:
    problems = problems_of(write_config(signals=[signal(device="meter9")]))
    assert problems == ['signals[0].device_alias: "meter9" names no device (devices: m1)']


def test_signal_without_obis(write_config: Writer) -> None:
    problems = problems_of(write_config(signals=[signal(obis=None)]))
    assert problems == ["signals[0]: missing required key 'obis'"]


@pytest.mark.parametrize(("over", "fragment"), [
    ({"address_size": 1, "logical_address": 1, "physical_address": 16},
     "devices[0].address_size: impossible server address: a one-byte server address must be "
     "below 128, but logical 1 and physical 16 give 144"),
    ({"address_size": 2, "physical_address": 200},
     "devices[0].address_size: impossible server address: physical address 200 does not fit "
     "a 2-byte server address (0..127)"),
    ({"serial_number": 5, "address_formula": "SN * 100000"},
     "devices[0].serial_number: impossible server address: physical address 500000 does not "
     "fit a 4-byte server address"),
])
def test_impossible_address(write_config: Writer, over: dict[str, object],
                            fragment: str) -> None:
    problems = problems_of(write_config(devices=[tcp_device(**over)]))
    assert any(p.startswith(fragment) for p in problems), problems


@pytest.mark.parametrize("auth", ["Low", "High", "HighMd5", "HighSha1", "HighSha256"])
def test_password_required(write_config: Writer, auth: str) -> None:
    problems = problems_of(write_config(devices=[tcp_device(auth=auth)]))
    assert problems[0] == f"devices[0].password: missing: auth {auth} needs a password"
    if auth == "HighSha256":  # the system titles go into its hash
        assert problems[1:] == ["devices[0].system_title: missing: auth HighSha256 needs "
                                "system_title"]
    else:
        assert len(problems) == 1


def test_high_longer_secret_refused_and_never_shown(write_config: Writer) -> None:
    problems = problems_of(write_config(devices=[tcp_device(auth="High",
                                                            password="s3cr3t-pw-seventeen")]))
    assert problems == ["devices[0].password: *** is not allowed: auth High (AES-128) needs "
                        "a secret of at most 16 bytes, got 19"]


HIGH_PADDED = ("devices[0].password: auth High (AES-128) takes a 16-byte secret; this one "
               "has 9 bytes and is padded with zero bytes to 16, as gurux does (the meter "
               "must pad it the same way)")


def test_high_shorter_secret_padded_with_a_warning(write_config: Writer) -> None:
    config = load_config(write_config(devices=[tcp_device(auth="High",
                                                          password="s3cr3t-pw")]))
    assert config.warnings == (HIGH_PADDED,)
    password = config.devices[0].password
    assert password is not None and password.reveal() == b"s3cr3t-pw"  # padded where used
    assert "s3cr3t-pw" not in repr(config) + "".join(config.warnings)


def test_high_16_byte_secret_no_warning(write_config: Writer) -> None:
    config = load_config(write_config(devices=[tcp_device(auth="High",
                                                          password="0123456789ABCDEF")]))
    assert config.warnings == ()


def test_password_value_is_masked_in_type_errors(write_config: Writer) -> None:
    problems = problems_of(write_config(devices=[tcp_device(auth="Low", password=12345678)]))
    assert problems == ["devices[0].password: *** is not allowed: must be a string"]
    assert "12345678" not in "\n".join(problems)


def test_connection_errors(write_config: Writer) -> None:
    problems = problems_of(write_config(devices=[
        tcp_device("a", port=None), tcp_device("b", ip=None, port=None),
        tcp_device("c", ip=None, port=None, device="/dev/ttyS1", mode="DLMS-WRAPPER"),
    ], signals=[]))
    assert problems == [
        "devices[0].port: missing: a TCP device needs both ip and port",
        "devices[1]: no connection: set ip and port (TCP) or device (serial)",
        'devices[2].mode: "DLMS-WRAPPER" is not allowed for a serial device: the wrapper is for '
        "TCP; use DLMS-HDLC or IEC",
    ]


def test_unknown_keys_are_warned_with_suggestion(write_config: Writer) -> None:
    doc = {"devices": [tcp_device(timout_ms=100)], "signals": [signal(obsi="x")],
           "extra": 1}
    config = load_config(write_config(doc))
    assert config.warnings == (  # in path order
        "devices[0].timout_ms: unknown key, ignored (did you mean 'timeout_ms'?)",
        "extra: unknown top-level key, ignored",
        "signals[0].obsi: unknown key, ignored (did you mean 'obis'?)",
    )


def test_serial_number_address_formula(write_config: Writer) -> None:
    # The WCC Lite example meter: SN 2250259 -> physical 1259, logical 1, 4 bytes.
    dev = load_config(write_config(devices=[tcp_device(serial_number=2250259)])).devices[0]
    assert (dev.server.logical, dev.server.physical, dev.server.size) == (1, 1259, 4)
    assert dev.server.to_bytes() == bytes.fromhex("000212D7")
    custom = load_config(write_config(devices=[tcp_device(
        serial_number=2250259, address_formula="SN % 1000 + 16")])).devices[0]
    assert custom.server.physical == 275


def test_config_is_frozen_and_password_not_in_repr(write_config: Writer) -> None:
    config = load_config(write_config(devices=[tcp_device(auth="Low", password="Pa55word!")]))
    dev = config.devices[0]
    with pytest.raises(AttributeError):
        dev.timeout_ms = 1  # type: ignore[misc]
    assert "Pa55word!" not in repr(config)
    assert "Pa55word!" not in str(dev.password)
    assert dev.password is not None and dev.password.reveal() == b"Pa55word!"


def test_parse_config_accepts_document() -> None:
    doc = json.loads(json.dumps({"devices": [tcp_device()], "signals": []}))
    assert parse_config(doc).devices[0].device_alias == "m1"


def test_security_keys_are_hex_secrets_and_never_shown(write_config: Writer) -> None:
    key = "000102030405060708090A0B0C0D0E0F"
    problems = problems_of(write_config(devices=[tcp_device(
        auth="HighGmac", system_title="4D4D4D0000BC614E", block_cipher_key=key[:-2] + "zz",
        authentication_key="D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")]))
    assert problems == ["devices[0].block_cipher_key: *** is not allowed: must be 16 or 32 "
                        "octets in hex (e.g. 00000000...)"]
    problems = problems_of(write_config(devices=[tcp_device(auth="HighGmac")]))
    assert problems == [  # in path order
        "devices[0].authentication_key: missing: auth HighGmac needs authentication_key",
        "devices[0].block_cipher_key: missing: auth HighGmac needs block_cipher_key",
        "devices[0].system_title: missing: auth HighGmac needs system_title",
    ]
    config = load_config(write_config(devices=[tcp_device(
        auth="HighGmac", system_title="4D4D4D0000BC614E", block_cipher_key=key,
        authentication_key="D0 D1 D2 D3 D4 D5 D6 D7 D8 D9 DA DB DC DD DE DF")]))
    dev = config.devices[0]
    assert dev.system_title == bytes.fromhex("4D4D4D0000BC614E")
    assert dev.block_cipher_key is not None and dev.block_cipher_key.reveal() == bytes(range(16))
    assert key.lower() not in repr(config).lower() and "D0D1" not in repr(config)


GMAC_KEYS = {"auth": "HighGmac", "system_title": "4D4D4D0000BC614E",
             "block_cipher_key": "000102030405060708090A0B0C0D0E0F",
             "authentication_key": "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"}
DEDICATED = "DE0DE1DE2DE3DE4DE5DE6DE7DE8DE9DE"


def test_dedicated_key_is_a_secret_and_needs_encryption(write_config: Writer) -> None:
    config = load_config(write_config(devices=[tcp_device(**GMAC_KEYS,
                                                          dedicated_key=DEDICATED)]))
    device = config.devices[0]
    assert device.dedicated_key is not None
    assert device.dedicated_key.reveal() == bytes.fromhex(DEDICATED)
    assert DEDICATED not in repr(config) and DEDICATED.lower() not in repr(config)
    problems = problems_of(write_config(devices=[tcp_device(
        **GMAC_KEYS, dedicated_key=DEDICATED, security="authentication")]))
    assert problems == ["devices[0].dedicated_key: *** is not allowed with security "
                        "authentication: it travels in the encrypted InitiateRequest "
                        "(security encryption or both)"]
    problems = problems_of(write_config(devices=[tcp_device(**GMAC_KEYS,
                                                            dedicated_key=DEDICATED[:-2])]))
    assert problems == ["devices[0].dedicated_key: *** is not allowed: must be 16 or 32 "
                        "octets in hex (e.g. 00000000...)"]
    config = load_config(write_config(devices=[tcp_device(auth="Low", password="x",
                                                          dedicated_key=DEDICATED)]))
    assert config.warnings == ("devices[0].dedicated_key: set but the device is not "
                               "ciphered (auth Low); not used",)


def test_read_invocation_counter_keys(write_config: Writer) -> None:
    config = load_config(write_config(devices=[tcp_device(**GMAC_KEYS)]))
    device = config.devices[0]
    assert (device.read_invocation_counter, str(device.invocation_counter_obis),
            device.public_client_address) == (False, "0.0.43.1.0.255", 16)
    config = load_config(write_config(devices=[tcp_device(
        **GMAC_KEYS, read_invocation_counter=True, invocation_counter_obis="0-0:43.1.3.255",
        public_client_address="0x11")]))
    device = config.devices[0]
    assert (device.read_invocation_counter, str(device.invocation_counter_obis),
            device.public_client_address) == (True, "0.0.43.1.3.255", 17)
    problems = problems_of(write_config(devices=[tcp_device(
        **GMAC_KEYS, invocation_counter_obis="0.0.43.1", public_client_address=200)]))
    assert problems == [
        "devices[0].invocation_counter_obis: OBIS code '0.0.43.1' is not in the form "
        + problems[0].split("is not in the form ", 1)[1],
        "devices[0].public_client_address: 200 is not allowed: must be from 0 to 127 for "
        "mode DLMS-HDLC",
    ]
    config = load_config(write_config(devices=[tcp_device(read_invocation_counter=1)]))
    assert config.warnings == ("devices[0].read_invocation_counter: set but the device is "
                               "not ciphered (auth None); not used",)


def test_high_gmac_with_security_none_is_a_problem(write_config: Writer) -> None:
    problems = problems_of(write_config(devices=[tcp_device(**GMAC_KEYS, security="none")]))
    assert problems == ['devices[0].security: "none" is not allowed with auth HighGmac: it '
                        "ciphers every APDU (authentication, encryption or both)"]


def test_public_client_address_equal_to_client_address_is_warned(write_config: Writer) -> None:
    config = load_config(write_config(devices=[tcp_device(
        **GMAC_KEYS, read_invocation_counter=True, client_address="10")]))
    assert config.warnings == (
        "devices[0].public_client_address: 16 is the device's own client_address: the "
        "counter is read by an unauthenticated association of the same client (most "
        "meters refuse it)",)


def test_state_dir_default_and_setting(write_config: Writer) -> None:
    assert load_config(write_config()).state_dir == "/var/lib/dlmsd"
    config = load_config(write_config({"state_dir": "/srv/dlmsd", "devices": [tcp_device()],
                                       "signals": [signal()]}))
    assert config.state_dir == "/srv/dlmsd"
    assert config.state_directory({}) == "/srv/dlmsd"
    assert config.state_directory({"DLMS_STATE_DIR": "/tmp/x"}) == "/tmp/x"
    assert config.state_directory({"DLMS_STATE_DIR": ""}) == "/srv/dlmsd"


@pytest.mark.parametrize("value", ["relative/dir", "", 5])
def test_state_dir_must_be_an_absolute_path(write_config: Writer, value: object) -> None:
    problems = problems_of(write_config({"state_dir": value, "devices": [tcp_device()],
                                         "signals": [signal()]}))
    assert len(problems) == 1 and problems[0].startswith("state_dir: "), problems


def test_max_connecting_default_and_setting(write_config: Writer) -> None:
    assert load_config(write_config()).max_connecting == 64
    config = load_config(write_config({"max_connecting": 8, "devices": [tcp_device()],
                                       "signals": [signal()]}))
    assert config.max_connecting == 8


@pytest.mark.parametrize("value", [0, -1, 10001, 2.5, "8", True, None])
def test_max_connecting_must_be_a_positive_integer(write_config: Writer,
                                                    value: object) -> None:
    problems = problems_of(write_config({"max_connecting": value, "devices": [tcp_device()],
                                         "signals": [signal()]}))
    assert len(problems) == 1 and problems[0].startswith("max_connecting: "), problems
    assert "from 1 to 10000" in problems[0], problems


def test_every_problem_of_every_item_in_one_pass_in_path_order(write_config: Writer) -> None:
    # a type error in one key does not hide a value error in another (issue 12)
    doc = {"devices": [
        tcp_device("a", port="x", timeout_ms="fast", client_address="sixteen", timout=1),
        tcp_device("b", baudrate="9600", enable="yes", auth="Low", password=1234),
        tcp_device("c", ip=None, port=None, device="PORT9", mode=["x"]),
    ], "signals": [
        signal("s1", device="a", obis=5, enable="no"),
        signal("s1", device="ghost", obis="1.2", class_id="3", obsi=1),
    ], "extra": 1}
    with pytest.raises(ConfigError) as info:
        load_config(write_config(doc))
    problems = info.value.problems
    assert problems == [
        'devices[0].client_address: "sixteen" is not a hex number: write hex as a string '
        '("10", "0x10") or a decimal integer',
        'devices[0].port: "x" is not allowed: must be an integer',
        'devices[0].timeout_ms: "fast" is not allowed: must be an integer',
        'devices[1].baudrate: "9600" is not allowed: must be an integer, one of 300, 600, '
        "1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200",
        'devices[1].enable: "yes" is not allowed: must be an integer or a boolean, one of 0, '
        "1, true, false",
        "devices[1].password: *** is not allowed: must be a string",
        'devices[2].device: "PORT9" names no serial port: the "ports" table has '
        'PORT1=/dev/ttyS1, PORT2=/dev/ttyS2; add "PORT9": "/dev/..." to "ports" at the top '
        "level",
        'devices[2].mode: ["x"] is not allowed: must be a string',
        'signals[0].enable: "no" is not allowed: must be an integer or a boolean, one of 0, '
        "1, true, false",
        "signals[0].obis: 5 is not allowed: must be a string",
        'signals[1].class_id: "3" is not allowed: must be an integer',
        'signals[1].device_alias: "ghost" names no device (devices: a, b, c)',
        'signals[1].obis: "1.2" is not allowed: ' + problems[12].split("is not allowed: ")[1],
        'signals[1].signal_alias: "s1" is already used by signals[0]; aliases must be unique',
    ]
    assert problems[12].startswith('signals[1].obis: "1.2" is not allowed: signal')
    assert len(set(problems)) == len(problems)
    assert str(info.value).endswith(": 14 problems in the configuration")
    assert "1234" not in "\n".join(problems)
    # the warnings come with the errors, in path order too
    assert info.value.warnings == [
        "devices[0].timout: unknown key, ignored (did you mean 'timeout_ms'?)",
        "extra: unknown top-level key, ignored",
        "signals[1].obsi: unknown key, ignored (did you mean 'obis'?)",
    ]


def test_a_broken_key_does_not_bring_misleading_problems(write_config: Writer) -> None:
    # auth refused: no "password set but auth is None"; ip refused: no "no connection"
    problems = problems_of(write_config(devices=[tcp_device(
        auth=5, password="secret-pw", ip=7, client_address=200)]))
    assert problems == ["devices[0].auth: 5 is not allowed: must be a string",
                        "devices[0].client_address: 200 is not allowed: must be from 0 to "
                        "127 for mode DLMS-HDLC",
                        "devices[0].ip: 7 is not allowed: must be an integer" .replace(
                            "an integer", "a string")]
    problems = problems_of(write_config(devices=[tcp_device(
        auth="HighGmac", system_title=5, mode=3, client_address=200)]))
    assert problems == [  # the mode is unknown: the client address range is not checked
        "devices[0].authentication_key: missing: auth HighGmac needs authentication_key",
        "devices[0].block_cipher_key: missing: auth HighGmac needs block_cipher_key",
        "devices[0].mode: 3 is not allowed: must be a string",
        "devices[0].system_title: 5 is not allowed: must be a string",
    ]


def serial(alias: str = "m1", device: str = "PORT1", **over: object) -> dict[str, object]:
    return tcp_device(alias, ip=None, port=None, device=device, **over)


def test_port_names_resolve_through_the_default_table(write_config: Writer) -> None:
    config = load_config(write_config(devices=[serial("a"), serial("b", "port2"),
                                               serial("c", "/dev/ttyUSB0")],
                                     signals=[signal(device="a")]))
    assert [(d.device, d.port_alias, d.port_name) for d in config.devices] == [
        ("/dev/ttyS1", "PORT1", "/dev/ttyS1"), ("/dev/ttyS2", "PORT2", "/dev/ttyS2"),
        ("/dev/ttyUSB0", None, "/dev/ttyUSB0")]
    assert config.ports == {"PORT1": "/dev/ttyS1", "PORT2": "/dev/ttyS2"}
    assert config.port_path("PORT1") == config.port_path("port1") == "/dev/ttyS1"
    assert config.port_path("ttyS1") == "ttyS1"


def test_default_port_table_is_the_documented_one() -> None:
    from dlmsd.config import DEFAULT_PORTS, load_schema
    assert load_schema()["properties"]["ports"]["default"] == dict(DEFAULT_PORTS)


def test_ports_table_overrides_and_adds(write_config: Writer) -> None:
    doc = {"ports": {"PORT1": "/dev/ttyATH0", "PORT3": "/dev/ttyUSB0"},
           "devices": [serial("a"), serial("b", "PORT2"), serial("c", "PORT3")],
           "signals": [signal(device="a")]}
    config = load_config(write_config(doc))
    assert [d.device for d in config.devices] == ["/dev/ttyATH0", "/dev/ttyS2",
                                                  "/dev/ttyUSB0"]
    assert config.port_path("PORT3") == "/dev/ttyUSB0"


def test_unknown_port_name_is_a_problem_naming_the_ports_key(write_config: Writer) -> None:
    problems = problems_of(write_config(devices=[serial(device="PORT3")]))
    assert problems == ['devices[0].device: "PORT3" names no serial port: the "ports" table '
                        'has PORT1=/dev/ttyS1, PORT2=/dev/ttyS2; add "PORT3": "/dev/..." '
                        'to "ports" at the top level']


@pytest.mark.parametrize(("ports", "fragment"), [
    ({"COM1": "/dev/ttyS0"}, 'ports: "COM1" is not allowed: a key of ports must be a '
                               "WCC Lite port name: PORT1, PORT2, ..."),
    ({"PORT1": ""}, "ports.PORT1: \"\" is not allowed"),
    ({"PORT1": 1}, "ports.PORT1: 1 is not allowed: must be a device path"),
    (["/dev/ttyS1"], "ports: [\"/dev/ttyS1\"] is not allowed: must be an object"),
])
def test_bad_ports_table(write_config: Writer, ports: object, fragment: str) -> None:
    problems = problems_of(write_config({"ports": ports, "devices": [serial()],
                                         "signals": [signal()]}))
    assert len(problems) == 1 and fragment in problems[0], problems


def test_lookups_by_device_alias(write_config: Writer) -> None:
    """device(), signals_of() and profiles_of() answer from indexes built once (the
    supervisor calls them for every device: a search each would be N x N), in the
    configuration's order."""
    config = load_config(write_config(
        devices=[tcp_device("a"), tcp_device("b", port=4060), tcp_device("c", port=4061)],
        signals=[signal("s1", "a"), signal("s2", "b"), signal("s3", "a", obis="1.0.2.8.0.255")]))
    assert config.device("b").device_alias == "b"
    with pytest.raises(KeyError):
        config.device("ghost")
    assert [s.signal_alias for s in config.signals_of("a")] == ["s1", "s3"]
    assert [s.signal_alias for s in config.signals_of("b")] == ["s2"]
    assert config.signals_of("c") == () and config.signals_of("ghost") == ()
    assert config.profiles_of("a") == ()
    # the indexes are no fields: a configuration equals (and hashes as) one built anew
    fresh = dataclasses.replace(config)
    assert fresh == config and hash(fresh) == hash(config)
