"""gurux_dlms 1.0.203 (an independent implementation, GPLv2, test-only) reads
``dlms-sim --auth ...`` (a separate process): Low and HLS High, HighMd5, HighSha1,
HighSha256 with LN and SN referencing, HLS-GMAC with LN (gurux's client cannot cipher
SN requests), over HDLC and the wrapper; and is refused with a wrong password or keys.

SN HLS: gurux's client frames pass 3 as a WriteRequest, which cannot carry f(CtoS)
back; tests/interop/gurux_client.py (_sn_hls_request) re-frames gurux's own f(StoC) as
a ReadRequest parameterized-access, and gurux checks f(CtoS) itself.
"""

from __future__ import annotations

from typing import Any

import pytest
from test_sim_gurux import running

gurux = pytest.importorskip("gurux_dlms")
from interop.gurux_client import GuruxClientError, GuruxSession, read_objects  # noqa: E402

pytestmark = pytest.mark.interop

SECRET = "0123456789ABCDEF"  # 16 characters: also an AES-128 key for High
CLIENT_TITLE = bytes.fromhex("4D4D4D0000000001")
BCK = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
AK = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
# (dlms-sim --auth, gurux authentication)
MECHANISMS = [("low", "low"), ("high", "high"), ("highmd5", "md5"), ("highsha1", "sha1"),
              ("highsha256", "sha256")]
ENERGY_LN = (3, "1.0.1.8.0.255", 2)
# the bundled model's 1.0.1.8.0.255 in the SN layout (test_sim_sn_gurux.py: base names)
EXPECTED_WH = 123456


def energy_sn() -> tuple[int, int, int]:
    from dlmsd.protocol.obis import Obis
    from dlmsd.sim.model import bundled_model_path, load_model

    base = load_model(bundled_model_path()).short_names.base_name(Obis.parse("1.0.1.8.0.255"))
    assert base is not None
    return (3, base, 2)  # gurux adds the attribute's offset to the base name


def gurux_kwargs(sim: Any, kind: str, auth: str, **over: Any) -> dict[str, Any]:
    return {**sim.kwargs(kind), "authentication": auth, "password": SECRET,
            "system_title": CLIENT_TITLE, **over}


@pytest.mark.parametrize("kind", ["hdlc", "wrapper"])
@pytest.mark.parametrize(("sim_auth", "gurux_auth"), MECHANISMS)
def test_gurux_reads_ln_with_authentication(sim_auth: str, gurux_auth: str,
                                            kind: str) -> None:
    with running("--hdlc-port", "0", "--wrapper-port", "0", "--auth", sim_auth,
                 "--password", SECRET) as sim:
        results = read_objects("127.0.0.1", objects=[ENERGY_LN],
                               **gurux_kwargs(sim, kind, gurux_auth))
        assert [r.value for r in results] == [EXPECTED_WH]
        with pytest.raises(GuruxClientError, match=r"rejected|failed"):
            read_objects("127.0.0.1", objects=[ENERGY_LN],
                         **gurux_kwargs(sim, kind, gurux_auth, password="FEDCBA9876543210"))


@pytest.mark.parametrize(("sim_auth", "gurux_auth"), MECHANISMS)
def test_gurux_reads_sn_with_authentication(sim_auth: str, gurux_auth: str) -> None:
    with running("--hdlc-port", "0", "--referencing", "SN", "--auth", sim_auth,
                 "--password", SECRET) as sim:
        results = read_objects("127.0.0.1", objects=[energy_sn()],
                               **gurux_kwargs(sim, "hdlc", gurux_auth, use_ln=False))
        assert [r.value for r in results] == [EXPECTED_WH]
        with pytest.raises(GuruxClientError, match=r"rejected|failed"):
            read_objects("127.0.0.1", objects=[energy_sn()],
                         **gurux_kwargs(sim, "hdlc", gurux_auth, use_ln=False,
                                        password="FEDCBA9876543210"))


@pytest.mark.parametrize("kind", ["hdlc", "wrapper"])
@pytest.mark.parametrize(("policy", "gurux_security"), [
    ("authentication", "auth"), ("encryption", "enc"), ("both", "authenc")])
def test_gurux_reads_ln_with_gmac(policy: str, gurux_security: str, kind: str) -> None:
    with running("--hdlc-port", "0", "--wrapper-port", "0", "--auth", "highgmac",
                 "--security", policy) as sim:
        keys = {"security": gurux_security, "block_cipher_key": BCK,
                "authentication_key": AK, "invocation_counter": 1}
        results = read_objects("127.0.0.1", objects=[ENERGY_LN],
                               **gurux_kwargs(sim, kind, "gmac", **keys))
        assert [r.value for r in results] == [EXPECTED_WH]
        wrong = {**keys, "authentication_key": bytes(16)}
        with pytest.raises(GuruxClientError):
            read_objects("127.0.0.1", objects=[ENERGY_LN],
                         **gurux_kwargs(sim, kind, "gmac", timeout=2.0, **wrong))


@pytest.mark.parametrize("kind", ["hdlc", "wrapper"])
def test_gurux_reads_ln_with_gmac_and_a_dedicated_key(kind: str) -> None:
    """gurux sends its dedicated key in the glo-initiate-request and ded-ciphers the
    GET after the authentication (ded-get-request 0xD0); dlms-sim answers with
    ded-get-response (0xD4) under that key."""
    dedicated = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
    with running("--hdlc-port", "0", "--wrapper-port", "0", "--auth", "highgmac") as sim:
        keys = {"security": "authenc", "block_cipher_key": BCK, "authentication_key": AK,
                "invocation_counter": 1, "dedicated_key": dedicated,
                "general_protection": False}
        with GuruxSession("127.0.0.1", **gurux_kwargs(sim, kind, "gmac", trace=True,
                                                       **keys)) as session:
            assert session.read(*ENERGY_LN).value == EXPECTED_WH
            frames = list(session.frames)

    def tags(direction: str) -> set[int]:
        """The first octet of each APDU: after the 8-octet wrapper header, or after the
        HDLC LLC header (E6 E6 00 requests, E6 E7 00 responses)."""
        found = set()
        for way, frame in frames:
            if way != direction:
                continue
            if kind == "wrapper":
                found.add(frame[8])
            else:
                at = frame.find(b"\xe6\xe6\x00" if way == "tx" else b"\xe6\xe7\x00")
                if at >= 0:
                    found.add(frame[at + 3])
        return found

    assert 0xD0 in tags("tx")  # ded-get-request
    assert 0xD4 in tags("rx")  # ded-get-response
    assert 0xCB in tags("tx")  # pass 3: glo-action-request, the global key
