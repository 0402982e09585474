"""Seeds of scripts/fuzz: real frames, each naming its source.

Two kinds of seeds:

* :data:`SEEDS`, the test vectors of ``tests/`` (collected from the vector tables of
  test_xdlms, test_acse, test_sn, test_hdlc_frame, test_wrapper, test_axdr,
  test_security and test_iec62056_21; each row names the source its test file gives:
  Green Book examples, gurux_dlms output, captures of real meters; the file's module
  text says more about each).  ``kind`` says what a seed is: ``hdlc`` (a whole HDLC
  frame, flags included), ``wrapper`` (a wrapper frame), ``apdu`` (an LN xDLMS or ACSE
  APDU), ``sn_apdu`` (an SN APDU), ``axdr`` (one A-XDR Data), ``ciphered`` (a glo-
  ciphered APDU under the Green Book keys :data:`GB_SYSTEM_TITLE`, :data:`GB_EK`,
  :data:`GB_AK`), ``iec_ident`` (an IEC 62056-21 identification line).
* :func:`record`, sessions of the daemon's pure reader with the simulator's pure
  meter (:class:`dlmsd.sim.server.MeterServer` behind the meter end of
  :mod:`dlmsd.protocol.link`), in memory: every frame both ways of a normal read, LN
  and SN, over HDLC (segmented: 32-octet information fields) and the wrapper (GET and
  READ blocks: a 64-octet meter PDU), and one HighGmac session whose APDUs are all
  glo-ciphered, and one on a serial line that opens with IEC 62056-21 mode E
  (:class:`dlmsd.sim.line.SerialLine`).  :class:`Session` also replays a recorded
  session with one answer replaced (the MeterReader targets).
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any, Final

from dlmsd.config import DeviceConfig, parse_config
from dlmsd.errors import RemoteProtocolError
from dlmsd.protocol import hdlc_frame
from dlmsd.protocol import iec62056_21 as iec
from dlmsd.protocol.acse import MechanismName
from dlmsd.protocol.actions import Note, Send, Trace
from dlmsd.protocol.link import ApduReceived, Connected, Disconnected, HdlcLink, WrapperLink
from dlmsd.protocol.obis import Obis
from dlmsd.protocol.reader import (
    AttributeRequest,
    MeterQuirks,
    MeterReader,
    ReadAttributes,
    ReaderState,
)
from dlmsd.readers import build_reader
from dlmsd.secret import Secret
from dlmsd.sim.auth import SimSecurity
from dlmsd.sim.line import SerialLine
from dlmsd.sim.model import Meter, bundled_model_path, load_model
from dlmsd.sim.server import MeterServer, Referencing, ServerOptions

__all__ = ["GB_AK", "GB_EK", "GB_SYSTEM_TITLE", "SEEDS", "SESSIONS", "Recording", "Seed",
           "Session", "Stuck", "record"]


@dataclass(frozen=True)
class Seed:
    kind: str
    name: str
    source: str
    hex: str

    @property
    def data(self) -> bytes:
        return bytes.fromhex(self.hex)


#: The Green Book ciphering example's keys (tests/test_security.py names its source).
GB_SYSTEM_TITLE: Final = bytes.fromhex("4D4D4D0000BC614E")
GB_EK: Final = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
GB_AK: Final = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")

SEEDS: Final[tuple[Seed, ...]] = (
    Seed("apdu", "get-normal-register",
         'GURUX read(Register 1.0.1.8.0.255, 2) (tests/test_xdlms.py)',
         'C001C100030100010800FF0200'),
    Seed("apdu", "get-normal-serial",
         'SPODES (tests/test_xdlms.py)',
         'C001C1000100002A0000FF0200'),
    Seed("apdu", "get-normal-u9n",
         'U9N (tests/test_xdlms.py)',
         'C001C1000100002B0100FF0200'),
    Seed("apdu", "get-next",
         'U9N (tests/test_xdlms.py)',
         'C002C100000001'),
    Seed("apdu", "get-with-list-u9n",
         'U9N (tests/test_xdlms.py)',
         'C003C102000100002A0000FF020000080000010000FF0200'),
    Seed("apdu", "get-with-list-gocosem",
         'GOCOSEM body (tests/test_xdlms.py)',
         'C003C10200010000800000FF020000010000800100FF0200'),
    Seed("apdu", "get-response-u32",
         'U9N (tests/test_xdlms.py)',
         'C401C1000600001391'),
    Seed("apdu", "get-response-error",
         'U9N (tests/test_xdlms.py)',
         'C401C10101'),
    Seed("apdu", "get-response-octets",
         'SPODES (tests/test_xdlms.py)',
         'C401C100090F4B505A313031303030303137343130'),
    Seed("apdu", "get-response-visible",
         'SPODES (tests/test_xdlms.py)',
         'C401C1000A12303030385057524D5F4D324D5F315F46345F'),
    Seed("apdu", "get-response-enum",
         'SPODES (tests/test_xdlms.py)',
         'C401C1001606'),
    Seed("apdu", "get-response-array",
         'SPODES (tests/test_xdlms.py)',
         'C401C10001010203060002BB9C091083C3B5C9F028F5671087392B3BDCB850091083C3B5'
         'C9F028F5671087392B3BDCB850'),
    Seed("apdu", "get-response-datablock",
         'GOCOSEM body (tests/test_xdlms.py)',
         'C402C10000000001001E0932010203040506070809101112131415161718192021222324'
         '25262728'),
    Seed("apdu", "get-response-datablock-aborted",
         'OURS (tests/test_xdlms.py)',
         'C402C10100000005010F'),
    Seed("apdu", "get-response-with-list",
         'GOCOSEM body (tests/test_xdlms.py)',
         'C403C10200090401020304000A03303030'),
    Seed("apdu", "get-response-with-list-error",
         'OURS (tests/test_xdlms.py)',
         'C403C1020006000000070104'),
    Seed("apdu", "set-request",
         'GURUX write(Data 0.0.42.0.0.255 = 42) (tests/test_xdlms.py)',
         'C101C1000100002A0000FF0200050000002A'),
    Seed("apdu", "set-response",
         'OURS (tests/test_xdlms.py)',
         'C501C100'),
    Seed("apdu", "action-hls-reply",
         'SPODES (tests/test_xdlms.py)',
         'C301C1000F0000280003FF010109102E244593CB559310DCC1E5DAF95C68E2'),
    Seed("apdu", "action-image-initiate",
         'SPODES (tests/test_xdlms.py)',
         'C301C1001200002C0000FF010102020910465E30857684D141C0F232E9F502B5E1060002'
         'F96C'),
    Seed("apdu", "action-no-parameters",
         'U9N (tests/test_xdlms.py)',
         'C301C0000F0000280000FF0100'),
    Seed("apdu", "action-response-hls",
         'SPODES (tests/test_xdlms.py)',
         'C701C10001000910C00358CF9C0CF4A6DAEA044D222D4C32'),
    Seed("apdu", "action-response-plain",
         'U9N (tests/test_xdlms.py)',
         'C701C00000'),
    Seed("apdu", "action-response-dar",
         'U9N (tests/test_xdlms.py)',
         'C701C0000101FA'),
    Seed("apdu", "exception",
         'EMULATOR (tests/test_xdlms.py)',
         'D80101'),
    Seed("apdu", "exception-ic",
         'OURS (tests/test_xdlms.py)',
         'D8010600000100'),
    Seed("apdu", "aarq-ln-no-security",
         'GB p.444 (tests/test_acse.py)',
         '601DA109060760857405080101BE10040E01000000065F1F0400007E1F04B0'),
    Seed("apdu", "aarq-ln-lls-12345678",
         'GB p.444; milanbella/gocosem asn1_test.go (tests/test_acse.py)',
         '6036A1090607608574050801018A0207808B0760857405080201AC0A8008313233343536'
         '3738BE10040E01000000065F1F0400007E1F04B0'),
    Seed("apdu", "aarq-ln-hls-gmac",
         'GB p.444 (tests/test_acse.py)',
         '6036A1090607608574050801018A0207808B0760857405080205AC0A80084B3536695661'
         '6759BE10040E01000000065F1F0400007E1F04B0'),
    Seed("apdu", "aarq-ln-ciphered-lls",
         'GB (u9n test_aarq.py test_parse_ciphered_low_security2) '
         '(tests/test_acse.py)',
         '6066A109060760857405080103A60A04084D4D4D0000BC614E8A0207808B076085740508'
         '0201AC0A80083132333435363738BE34043221303001234567801302FF8A7874133D414C'
         'ED25B42534D28DB0047720606B175BD52211BE6841DB204D39EE6FDB8E356855'),
    Seed("apdu", "aarq-spodes-no-security",
         'SPODES (tests/test_acse.py)',
         '601DA109060760857405080101BE10040E01000000065F1F04007FFFFF0400'),
    Seed("apdu", "aarq-spodes-hls",
         'SPODES (tests/test_acse.py)',
         '603EA1090607608574050801018A0207808B0760857405080202AC128010D92543230FFC'
         'C3343D5B4CC4BEC596A8BE10040E01000000065F1F04007FFFFF0400'),
    Seed("apdu", "aare-accepted",
         'GB (u9n test_aare.py) (tests/test_acse.py)',
         '6129A109060760857405080101A203020100A305A103020100BE10040E0800065F1F0400'
         '00501F01F40007'),
    Seed("apdu", "aare-rejected-context",
         'GB (u9n test_aare.py) (tests/test_acse.py)',
         '6129A109060760857405080101A203020101A305A103020102BE10040E0800065F1F0400'
         '00501F01F40007'),
    Seed("apdu", "aare-rejected-dlms-version",
         'GB (u9n test_aare.py) (tests/test_acse.py)',
         '611FA109060760857405080101A203020101A305A103020101BE0604040E010601'),
    Seed("apdu", "aare-hls-gmac",
         'GB (u9n test_aare.py) (tests/test_acse.py)',
         '6142A109060760857405080101A203020100A305A10302010E8802078089076085740508'
         '0205AA0A8008503677524A323146BE10040E0800065F1F040000501F01F40007'),
    Seed("apdu", "aare-spodes-no-security",
         'SPODES (tests/test_acse.py)',
         '6129A109060760857405080101A203020100A305A103020100BE10040E0800065F1F0400'
         '00101004000007'),
    Seed("apdu", "aare-spodes-hls",
         'SPODES (tests/test_acse.py)',
         '614AA109060760857405080101A203020100A305A10302010E8802078089076085740508'
         '0202AA1280100ACAAD2EB4C11FD8750E5192491D56B1BE10040E0800065F1F040000189D'
         '04000007'),
    Seed("apdu", "rlrq-normal",
         'GURUX releaseRequest(); u9n test_rlrq.py (tests/test_acse.py)',
         '6203800100'),
    Seed("apdu", "rlrq-ciphered",
         'u9n test_rlrq.py (tests/test_acse.py)',
         '6239800100BE34043221303001234567801302FF8A7874133D414CED25B42534D28DB004'
         '7720606B175BD52211BE6841DB204D39EE6FDB8E356855'),
    Seed("apdu", "rlre-normal",
         'OURS (RLRE-apdu, reason [0] normal) (tests/test_acse.py)',
         '6303800100'),
    Seed("apdu", "rlre-empty",
         'OURS (all of RLRE-apdu is optional) (tests/test_acse.py)',
         '6300'),
    Seed("sn_apdu", "read-ldn",
         'TOHASAN (tests/test_sn.py)',
         '050102FD08'),
    Seed("sn_apdu", "read-object-list",
         'TOHASAN (tests/test_sn.py)',
         '050102FA08'),
    Seed("sn_apdu", "read-next-block",
         'TOHASAN (tests/test_sn.py)',
         '0501050001'),
    Seed("sn_apdu", "read-two",
         'LG (tests/test_sn.py)',
         '050202FD0802FF08'),
    Seed("sn_apdu", "read-3848",
         'LG (tests/test_sn.py)',
         '0501023848'),
    Seed("sn_apdu", "read-c1c8",
         'LG (tests/test_sn.py)',
         '050102C1C8'),
    Seed("sn_apdu", "read-cf08",
         'PDUXML (tests/test_sn.py)',
         '050102CF08'),
    Seed("sn_apdu", "read-gurux",
         'GURUX read(Register sn=0x1200, 2) (tests/test_sn.py)',
         '0501021208'),
    Seed("sn_apdu", "read-parameterized",
         'PDUXML (tests/test_sn.py)',
         '050104C008010204020412000809060000010000FF0F02120000090C07DA041E050E2522'
         '618000FF090CFFFFFFFFFFFFFFFFFF8000FF0100'),
    Seed("sn_apdu", "read-data-block-access",
         'OURS (tests/test_sn.py)',
         '05010601000203010203'),
    Seed("sn_apdu", "response-ldn-one-block",
         'TOHASAN (tests/test_sn.py)',
         '0C01020100010F01000A0B5A49503031373639333236'),
    Seed("sn_apdu", "response-software-id",
         'TOHASAN (tests/test_sn.py)',
         '0C01020100010C01000A084232473576333561'),
    Seed("sn_apdu", "response-two-in-one-block",
         'TOHASAN (tests/test_sn.py)',
         '0C01020100011702000A084232473576333561000A084232473576333561'),
    Seed("sn_apdu", "response-first-block",
         'TOHASAN (tests/test_sn.py)',
         '0C0102000001050100120008'),
    Seed("sn_apdu", "response-profile-block-1",
         'PDUXML (tests/test_sn.py)',
         '0C01020000016401000155021D090C07E10418010E0120FF800000120420110112000015'
         '000000000000000015000000000000000015000000000000000015000000000000000015'
         '0000000000000000150000000000000000150000000000000000150000000000000000'),
    Seed("sn_apdu", "response-two",
         'LG (tests/test_sn.py)',
         '0C020009104C475A35313238323338300000000000000A03423332'),
    Seed("sn_apdu", "response-visible",
         'LG (tests/test_sn.py)',
         '0C01000A25422E4D344343505453434D444F2E303437392E415430535476477361724853'
         '50706E61676C'),
    Seed("sn_apdu", "response-octets",
         'LG (tests/test_sn.py)',
         '0C0100091302CB0000FF0000043000045000048001048002'),
    Seed("sn_apdu", "response-serial",
         'LG (tests/test_sn.py)',
         '0C01000A083531323832333830'),
    Seed("sn_apdu", "response-zmd",
         'ENERGYICT (tests/test_sn.py)',
         '0C0100090400810019'),
    Seed("sn_apdu", "response-errors",
         'OURS (tests/test_sn.py)',
         '0C020104000600000005'),
    Seed("sn_apdu", "response-block-number",
         'OURS (tests/test_sn.py)',
         '0C01030002'),
    Seed("sn_apdu", "write-gurux",
         'GURUX write(Data sn=0x2000, 2) = 42 (tests/test_sn.py)',
         '060102200801050000002A'),
    Seed("sn_apdu", "write-method-gurux",
         'GURUX method(AssociationSN, 8, 16 x 01) (tests/test_sn.py)',
         '060102FA5801091001010101010101010101010101010101'),
    Seed("sn_apdu", "write-block",
         'OURS (tests/test_sn.py)',
         '0601070000010109026162'),
    Seed("sn_apdu", "write-response",
         'OURS (tests/test_sn.py)',
         '0D03000103020001'),
    Seed("sn_apdu", "unconfirmed-write",
         'OURS (tests/test_sn.py)',
         '1601021208010600000005'),
    Seed("sn_apdu", "information-report",
         'GURUX GXDLMSNotify.generateReport(Register sn=0x1200, 2) '
         '(tests/test_sn.py)',
         '180001021208010500000005'),
    Seed("sn_apdu", "information-report-time",
         'OURS (tests/test_sn.py)',
         '18010C07E80102020304050080000001021208010500000005'),
    Seed("hdlc", "sn-read-ldn",
         'TOHASAN HdlcFrameSpec (tests/test_sn.py CAPTURED_FRAMES)',
         '7EA0140002A0AD03323A58E6E600050102FD0810D37E'),
    Seed("hdlc", "sn-response-ldn-one-block",
         'TOHASAN HdlcFrameSpec (tests/test_sn.py CAPTURED_FRAMES)',
         '7EA025030002A0AD528D39E6E7000C01020100010F01000A0B5A49503031373639333236'
         '8C6F7E'),
    Seed("hdlc", "sn-read-two",
         'LG (tests/test_sn.py CAPTURED_FRAMES)',
         '7EA0170002346921320F15E6E600050202FD0802FF0854587E'),
    Seed("hdlc", "sn-response-two",
         'LG (tests/test_sn.py CAPTURED_FRAMES)',
         '7EA02A2100023469529DEAE6E7000C020009104C475A3531323832333830000000000000'
         '0A03423332F5367E'),
    Seed("hdlc", "sn-read-3848",
         'LG (tests/test_sn.py CAPTURED_FRAMES)',
         '7EA01400023469215451BBE6E600050102384806257E'),
    Seed("hdlc", "sn-response-visible",
         'LG (tests/test_sn.py CAPTURED_FRAMES)',
         '7EA0392100023469740EB3E6E7000C01000A25422E4D344343505453434D444F2E303437'
         '392E41543053547647736172485350706E61676C69607E'),
    Seed("hdlc", "sn-read-c1c8",
         'LG (tests/test_sn.py CAPTURED_FRAMES)',
         '7EA01400023469217641B9E6E600050102C1C81E0A7E'),
    Seed("hdlc", "sn-response-octets",
         'LG (tests/test_sn.py CAPTURED_FRAMES)',
         '7EA027210002346996FA44E6E7000C0100091302CB0000FF000004300004500004800104'
         '8002F19F7E'),
    Seed("hdlc", "sn-response-serial",
         'LG (tests/test_sn.py CAPTURED_FRAMES)',
         '7EA01C2100023469B84E2CE6E7000C01000A0835313238323338304B217E'),
    Seed("hdlc", "brief-snrm",
         "SNRM example of the dlmsd HDLC task brief (also gurux's default "
         'snrmRequest output) (tests/test_hdlc_frame.py)',
         '7EA0070321930F017E'),
    Seed("hdlc", "kmethy-snrm",
         "Gyozo Kmethy, 'Examples for DLMS/COSEM information exchange' (DLMS "
         'UA), section 1-2; public copies: '
         'jacobs-master.ru/view/articles/dlmsua/dlmscosem_gyozo_kmethy_example_origin,'
         ' scribd.com/document/478055301 (tests/test_hdlc_frame.py)',
         '7EA00A00020023219318717E'),
    Seed("hdlc", "kmethy-ua",
         "Gyozo Kmethy, 'Examples for DLMS/COSEM information exchange' (DLMS "
         'UA), section 1-2; public copies: '
         'jacobs-master.ru/view/articles/dlmsua/dlmscosem_gyozo_kmethy_example_origin,'
         ' scribd.com/document/478055301 (tests/test_hdlc_frame.py)',
         '7EA023210002002373F6C58180140502008006020080070400000001080400000001CE6A'
         '7E'),
    Seed("hdlc", "kmethy-aarq",
         "Gyozo Kmethy, 'Examples for DLMS/COSEM information exchange' (DLMS "
         'UA), section 1-2; public copies: '
         'jacobs-master.ru/view/articles/dlmsua/dlmscosem_gyozo_kmethy_example_origin,'
         ' scribd.com/document/478055301 (tests/test_hdlc_frame.py)',
         '7EA02E0002002321107ECBE6E600601DA109060760857405080101BE10040E0100000006'
         '5F1F040000301DFFFFD4C57E'),
    Seed("hdlc", "c-decoder-snrm-client120",
         "comment block 'SNRM (CONNECTION) EXAMPLE ...' of a public C DLMS HDLC "
         'decoder (code search; repository not named by the index) '
         '(tests/test_hdlc_frame.py)',
         '7EA00A00020023F193232E7E'),
    Seed("hdlc", "c-decoder-snrm-params",
         "comment block 'SNRM (CONNECTION) EXAMPLE ...' of a public C DLMS HDLC "
         'decoder (code search; repository not named by the index) '
         '(tests/test_hdlc_frame.py)',
         '7EA0210002002321931964818012050180060180070400000001080400000007655E7E'),
    Seed("hdlc", "gist-snrm-1010",
         'Gurux Director trace, '
         'gist.github.com/knogi/f3d4853b936164882e5ed653498e7b61 '
         '(tests/test_hdlc_frame.py)',
         '7EA01403219363E7818008050203F2060203F203F07E'),
    Seed("hdlc", "gist-ua-1010",
         'Gurux Director trace, '
         'gist.github.com/knogi/f3d4853b936164882e5ed653498e7b61 '
         '(tests/test_hdlc_frame.py)',
         '7EA0202103737398818014050203F2060203F20704000000010804000000010A757E'),
    Seed("hdlc", "gist-aare",
         'Gurux Director trace, '
         'gist.github.com/knogi/f3d4853b936164882e5ed653498e7b61 '
         '(tests/test_hdlc_frame.py)',
         '7EA0392103302ED2E6E70061820029A109060760857405080101A203020100A305A10302'
         '0100BE10040E0800065F1F040000101D03EF000744367E'),
    Seed("hdlc", "gist-get",
         'Gurux Director trace, '
         'gist.github.com/knogi/f3d4853b936164882e5ed653498e7b61 '
         '(tests/test_hdlc_frame.py)',
         '7EA0190321326FD8E6E600C001C1000F0000280000FF020091537E'),
    Seed("hdlc", "pastebin-snrm-4-octet",
         'HDLC/DLMS trace with a 4-octet server address, pastebin.com/7HTFDmEv '
         '(tests/test_hdlc_frame.py)',
         '7EA023000288EB41931932818014050205DC060205DC070400000001080400000001A90D'
         '7E'),
    Seed("hdlc", "pastebin-ua-1-octet-values",
         'HDLC/DLMS trace with a 4-octet server address, pastebin.com/7HTFDmEv '
         '(tests/test_hdlc_frame.py)',
         '7EA02141000288EB73B8BB8180120501F806013E070400000001080400000001480E7E'),
    Seed("hdlc", "gurux-forum-get-client32",
         "gurux.fi forum thread 'DLMS (HDLC) Packet Description Needs', "
         'node/20546 (tests/test_hdlc_frame.py)',
         '7EA0190341B23239E6E600C001C1000F0000280000FF0100F9797E'),
    Seed("hdlc", "gurux-forum-4-octet-source",
         "gurux.fi forum, comment/28751 ('NEXERRORNO-1' reply) "
         '(tests/test_hdlc_frame.py)',
         '7EA01B410002040196A089E6E7004E45584552524F524E4F2D31B8007E'),
    Seed("hdlc", "translator-2-octet-source",
         'github.com/tohasan/hdlc-translator, hdlcflow-aln-up.txt, line 1 '
         '(tests/test_hdlc_frame.py)',
         '7EA01921025752515BE6E700C402C100000000010002015099F47E'),
    Seed("hdlc", "kaifa-push",
         'github.com/kjetilrong/AmsToMqttBridge, Samples/Kaifa (HAN port push '
         'frame) (tests/test_hdlc_frame.py)',
         '7EA027010201105A87E6E7000F40000000090C07E1090C0217122AFF8000000201060000'
         '0528B80C7E'),
    Seed("hdlc", "gurux-aarq-segment-1",
         'recorded output of gurux_dlms 1.0.203 GXDLMSClient(clientAddress=16, '
         'serverAddress=getServerAddress(1, 1259, 4)), maxInfoTX=32, '
         'aarqRequest() (tests/test_hdlc_frame.py)',
         '7EA829000212D721105834E6E600601DA109060760857405080101BE10040E0100000006'
         '5F1F040061867E'),
    Seed("hdlc", "gurux-aarq-segment-2",
         'recorded output of gurux_dlms 1.0.203 GXDLMSClient(clientAddress=16, '
         'serverAddress=getServerAddress(1, 1259, 4)), maxInfoTX=32, '
         'aarqRequest() (tests/test_hdlc_frame.py)',
         '7EA011000212D721125032401E5DFFFF95AC7E'),
    Seed("hdlc", "gurux-rr-client",
         'recorded output of gurux_dlms 1.0.203 receiverReady() in the interop '
         'test (tests/test_hdlc_frame.py)',
         '7EA00802232131A5E27E'),
    Seed("hdlc", "gurux-rr-server",
         'recorded output of gurux_dlms 1.0.203 receiverReady() in the interop '
         'test (tests/test_hdlc_frame.py)',
         '7EA008210223316C227E'),
    Seed("hdlc", "disc",
         'computed by us (no public vector found); the FCS was checked with an '
         'independent CRC (tests/test_hdlc_frame.py)',
         '7EA00703215303C77E'),
    Seed("hdlc", "ua-no-info",
         'computed by us (no public vector found); the FCS was checked with an '
         'independent CRC (tests/test_hdlc_frame.py)',
         '7EA00721037301407E'),
    Seed("hdlc", "dm",
         'computed by us (no public vector found); the FCS was checked with an '
         'independent CRC (tests/test_hdlc_frame.py)',
         '7EA00721031F6BE97E'),
    Seed("hdlc", "rnr",
         'computed by us (no public vector found); the FCS was checked with an '
         'independent CRC (tests/test_hdlc_frame.py)',
         '7EA0072103B53BE37E'),
    Seed("hdlc", "frmr",
         'computed by us (no public vector found); the FCS was checked with an '
         'independent CRC (tests/test_hdlc_frame.py)',
         '7EA00C2103973E21930002788A7E'),
    Seed("wrapper", "gurux-aarq",
         'gurux_dlms 1.0.203 aarqRequest, InterfaceType.WRAPPER '
         '(tests/test_wrapper.py)',
         '000100100001001F601DA109060760857405080101BE10040E01000000065F1F0400401E'
         '5DFFFF'),
    Seed("wrapper", "gb-aare",
         'Green Book AARE, our header (tests/test_wrapper.py)',
         '000100010010002B6129A109060760857405080101A203020100A305A103020100BE1004'
         '0E0800065F1F040000501F01F40007'),
    Seed("axdr", "scaler_unit",
         '[gurux-fc] (tests/test_axdr.py)',
         '02020FFE1623'),
    Seed("axdr", "time_date_pair",
         '[gurux-set] (tests/test_axdr.py)',
         '010102020904100A27FF090507E10406FF'),
    Seed("axdr", "aidon_no_list1",
         '[aidon-no] (tests/test_axdr.py)',
         '0101020309060100010700FF060000011802020F00161B'),
    Seed("axdr", "aidon_no_version",
         '[aidon-no] (tests/test_axdr.py)',
         '020209060101000281FF0A0B4149444F4E5F5630303031'),
    Seed("axdr", "aidon_se_current",
         '[aidon-se] (tests/test_axdr.py)',
         '0203090601001F0700FF10000002020FFF1621'),
    Seed("axdr", "aidon_se_voltage",
         '[aidon-se] (tests/test_axdr.py)',
         '020309060100200700FF12090302020FFF1623'),
    Seed("axdr", "null",
         '[derived] (tests/test_axdr.py)',
         '00'),
    Seed("axdr", "dont_care",
         '[derived] (tests/test_axdr.py)',
         'FF'),
    Seed("axdr", "true",
         '[derived] (tests/test_axdr.py)',
         '0301'),
    Seed("axdr", "false",
         '[derived] (tests/test_axdr.py)',
         '0300'),
    Seed("axdr", "int8_min",
         '[derived] (tests/test_axdr.py)',
         '0F80'),
    Seed("axdr", "int16_min",
         '[derived] (tests/test_axdr.py)',
         '108000'),
    Seed("axdr", "int32_min",
         '[derived] (tests/test_axdr.py)',
         '0580000000'),
    Seed("axdr", "int64_min",
         '[derived] (tests/test_axdr.py)',
         '148000000000000000'),
    Seed("axdr", "uint8_max",
         '[derived] (tests/test_axdr.py)',
         '11FF'),
    Seed("axdr", "uint16_max",
         '[derived] (tests/test_axdr.py)',
         '12FFFF'),
    Seed("axdr", "uint32_max",
         '[derived] (tests/test_axdr.py)',
         '06FFFFFFFF'),
    Seed("axdr", "uint64_max",
         '[derived] (tests/test_axdr.py)',
         '15FFFFFFFFFFFFFFFF'),
    Seed("axdr", "uint64_2p53_plus_1",
         '[derived] (tests/test_axdr.py)',
         '150020000000000001'),
    Seed("axdr", "enum",
         '[derived] (tests/test_axdr.py)',
         '16FF'),
    Seed("axdr", "bcd",
         '[derived] (tests/test_axdr.py)',
         '0D99'),
    Seed("axdr", "float32",
         '[derived] (tests/test_axdr.py)',
         '173FC00000'),
    Seed("axdr", "float64_pi",
         '[derived] (tests/test_axdr.py)',
         '18400921FB54442D18'),
    Seed("axdr", "octets_empty",
         '[derived] (tests/test_axdr.py)',
         '0900'),
    Seed("axdr", "visible",
         '[derived] (tests/test_axdr.py)',
         '0A03616263'),
    Seed("axdr", "utf8_euro",
         '[derived] (tests/test_axdr.py)',
         '0C03E282AC'),
    Seed("axdr", "bits_0",
         '[derived] (tests/test_axdr.py)',
         '0400'),
    Seed("axdr", "bits_12",
         '[derived] (tests/test_axdr.py)',
         '040CABC0'),
    Seed("axdr", "empty_array",
         '[derived] (tests/test_axdr.py)',
         '0100'),
    Seed("axdr", "empty_structure",
         '[derived] (tests/test_axdr.py)',
         '0200'),
    Seed("axdr", "date_time_cet",
         '[derived] (tests/test_axdr.py)',
         '1907E80301050C1E0000FFC400'),
    Seed("axdr", "aidon_se_clock",
         '[aidon-se] (tests/test_axdr.py)',
         '020209060000010000FF090C07E30C1001073B28FF8000FF'),
    Seed("axdr", "date",
         '[derived] (tests/test_axdr.py)',
         '1A07E10406FF'),
    Seed("axdr", "time",
         '[derived] (tests/test_axdr.py)',
         '1B100A27FF'),
    Seed("axdr", "compact-long_unsigned_x4",
         '[derived] Green Book compact-array (tests/test_axdr.py)',
         '1312080001000200030004'),
    Seed("axdr", "compact-structure_uint8_octets",
         '[derived] Green Book compact-array (tests/test_axdr.py)',
         '1302021109060502AABB0700'),
    Seed("axdr", "compact-nested_array_structure",
         '[derived] Green Book compact-array (tests/test_axdr.py)',
         '130202100100020202030A0EFFFF010141000000010001420100'),
    Seed("axdr", "compact-empty",
         '[derived] Green Book compact-array (tests/test_axdr.py)',
         '131100'),
    Seed("axdr", "compact-date_time_and_null",
         '[derived] Green Book compact-array (tests/test_axdr.py)',
         '13020219000C07E80301050C1E0000FFC400'),
    Seed("ciphered", "glo-get-request-SC10",
         'Green Book ciphering example via jDLMS CipheringTest '
         '(tests/test_security.py)',
         'C81E1001234567C0010000080000010000FF020006725D910F9221D263877516'),
    Seed("ciphered", "glo-get-request-SC20",
         'Green Book ciphering example via jDLMS CipheringTest '
         '(tests/test_security.py)',
         'C8122001234567411312FF935A47566827C467BC'),
    Seed("ciphered", "glo-get-request-SC30",
         'Green Book ciphering example via jDLMS CipheringTest '
         '(tests/test_security.py)',
         'C81E3001234567411312FF935A47566827C467BC7D825C3BE4A77C3FCC056B6B'),
    Seed("ciphered", "glo-initiate-request-SC30",
         'Green Book ciphering example via jDLMS CipheringTest '
         '(tests/test_security.py)',
         '21303001234567801302FF8A7874133D414CED25B42534D28DB0047720606B175BD52211'
         'BE6841DB204D39EE6FDB8E356855'),
    Seed("iec_ident", "dsmr_parser TELEGRAM_V5",
         'dsmr_parser TELEGRAM_V5 (tests/test_iec62056_21.py)',
         '2F49536B355C324D543338322D313030300D0A'),
    Seed("iec_ident", "dsmr_parser TELEGRAM_V4_2",
         'dsmr_parser TELEGRAM_V4_2 (tests/test_iec62056_21.py)',
         '2F4B464D354B414946412D4D455445520D0A'),
    Seed("iec_ident", "dsmr_parser SAGEMCOM_T210_D_R",
         'dsmr_parser SAGEMCOM_T210_D_R (tests/test_iec62056_21.py)',
         '2F455354355C3235333731303030305F410D0A'),
    Seed("iec_ident", "dsmr_parser ESY5Q3DB1024_V304",
         'dsmr_parser ESY5Q3DB1024_V304 (tests/test_iec62056_21.py)',
         '2F4553593551334442313032342056332E30340D0A'),
    Seed("iec_ident", "pwitab/iec62056-21 test_data",
         'pwitab/iec62056-21 test_data (tests/test_iec62056_21.py)',
         '2F456C73365C32454B3238300D0A'),
    Seed("iec_ident", "vzlogger MeterD0 HagerEHZ",
         'vzlogger MeterD0 HagerEHZ (tests/test_iec62056_21.py)',
         '2F4841473565485A303130435F45485A31764130320D0A'),
    Seed("iec_ident", "vzlogger MeterD0 LandisGyr",
         'vzlogger MeterD0 LandisGyr (tests/test_iec62056_21.py)',
         '2F4C475A35325A4D443132304150742E4730330D0A'),
    Seed("iec_ident", "vzlogger MeterD0 ACE3000",
         'vzlogger MeterD0 ACE3000 (tests/test_iec62056_21.py)',
         '2F414345305C336B3236305630312E31390D0A'),
    Seed("iec_ident", "vzlogger log SLB (reconstructed)",
         'vzlogger log SLB (reconstructed) (tests/test_iec62056_21.py)',
         '2F534C42345C404443333431544D504246325A414B0D0A'),
    Seed("iec_ident", "made up (brief)",
         'made up (brief) (tests/test_iec62056_21.py)',
         '2F49534B355C324D453338322D313030330D0A'),
    Seed("iec_ident", "gurux GXDLMSServer.cs + GXDLMSBase.cs",
         'gurux GXDLMSServer.cs + GXDLMSBase.cs (tests/test_iec62056_21.py)',
         '2F4752583547757275780D0A'),
    Seed("iec_ident", "issue 12 example",
         'issue 12 example (tests/test_iec62056_21.py)',
         '2F47525835444C4D530D0A'),
)


# ------------------------------------------------------------------ live sessions

#: HighGmac keys of the recorded ciphered session (made up for the fuzzer).
GMAC_EK: Final = bytes.fromhex("5EC0DE00112233445566778899AABBCC")
GMAC_AK: Final = bytes.fromhex("A0A1A2A3A4A5A6A7A8A9AAABACADAEAF")
CLIENT_TITLE: Final = "4D4D4D0000000001"
#: The meter's wall clock (the bundled model is not live: values do not depend on it).
SIM_NOW: Final = datetime(2024, 6, 1, 10, 0, tzinfo=UTC)
HDLC_LOGICAL, HDLC_PHYSICAL = 1, 17
#: Attributes read: registers (scaler_unit first), one by the object list (class not
#: given), a Data object, the clock, one the meter lacks.
REQUESTS: Final = tuple(AttributeRequest(key, Obis.parse(obis), attribute, class_id)
                        for key, obis, attribute, class_id in (
                            ("energy", "1.0.1.8.0.255", 2, 3),
                            ("voltage", "1.0.32.7.0.255", 2, None),
                            ("pf", "1.0.13.7.0.255", 2, 3),
                            ("serial", "0.0.96.1.0.255", 2, 1),
                            ("clock", "0.0.1.0.0.255", 2, 8),
                            ("capture", "1.0.1.6.0.255", 5, None),
                            ("missing", "1.0.99.99.0.255", 2, 3)))


class Stuck(Exception):
    """The session driver found nothing to deliver and no timer, or ran too long:
    the reader hangs (a fuzz failure, not one of the package's errors)."""


@dataclass(frozen=True)
class SessionSpec:
    """One kind of session: the link, the referencing, the meter's PDU size and
    information field size, HighGmac ciphering or not."""

    name: str
    kind: str  # "hdlc" or "wrapper"
    referencing: str  # "LN" or "SN"
    max_pdu: int = 1024
    max_info: int = 128
    gmac: bool = False
    max_list_size: int = 10
    mode_e: bool = False  # a serial line opened with IEC 62056-21 mode E (then HDLC)

    @cache  # noqa: B019 - a handful of frozen specs, kept for the run
    def device(self) -> DeviceConfig:
        link: dict[str, Any] = ({"mode": "DLMS-WRAPPER", "logical_address": HDLC_LOGICAL}
                                if self.kind == "wrapper" else
                                {"address_size": 2, "logical_address": HDLC_LOGICAL,
                                 "physical_address": HDLC_PHYSICAL})
        line: dict[str, Any] = {"ip": "127.0.0.1", "port": 4059}
        if self.mode_e:  # the reader does no I/O: the path is never opened
            line = {"device": "/dev/ttyS0", "baudrate": 9600, "mode": "IEC"}
        keys: dict[str, Any] = {}
        if self.gmac:
            keys = {"auth": "HighGmac", "system_title": CLIENT_TITLE, "security": "both",
                    "block_cipher_key": GMAC_EK.hex(), "authentication_key": GMAC_AK.hex()}
        device = {"name": "fuzz", "device_alias": "fuzz", "protocol": "DLMS",
                  "client_address": 16, **line,
                  "type": self.referencing, "timeout_ms": 1000, "retry_counter": 2,
                  "max_list_size": self.max_list_size,
                  **link, **keys}
        signal = {"signal_name": "s", "device_alias": "fuzz", "signal_alias": "s",
                  "obis": "1.0.1.8.0.255"}
        return parse_config({"devices": [device], "signals": [signal]}).devices[0]

    def options(self) -> ServerOptions:
        security = SimSecurity()
        if self.gmac:
            security = SimSecurity(MechanismName.HIGH_GMAC,
                                   block_cipher_key=Secret(GMAC_EK),
                                   authentication_key=Secret(GMAC_AK), security="both")
        return ServerOptions(max_pdu=self.max_pdu, referencing=Referencing(self.referencing),
                             security=security)


SESSIONS: Final = (
    SessionSpec("ln-hdlc", "hdlc", "LN", max_info=32),
    SessionSpec("sn-hdlc", "hdlc", "SN", max_info=32),
    # (a GET of 3 attributes fits 64 octets; the reader does not cut a list to fit the
    # meter's PDU: LocalProtocolError "request fewer attributes at once")
    SessionSpec("ln-wrapper-blocks", "wrapper", "LN", max_pdu=64, max_list_size=3),
    SessionSpec("sn-wrapper-blocks", "wrapper", "SN", max_pdu=64, max_list_size=3),
    SessionSpec("ln-hdlc-gmac", "hdlc", "LN", gmac=True),
    SessionSpec("ln-mode-e", "hdlc", "LN", mode_e=True),
)
#: The identification of the simulated serial line (9600 Bd, HDLC).
IDENTIFICATION: Final = iec.IdentificationMessage("SIM", "5", "dlms-sim", "2")

_MODEL = load_model(bundled_model_path())


class _Counters:
    """The counter store's interface (dlmsd.readers.CounterBook) in memory: ours
    count up from 1; the meter's must rise, as dlmsd.counters.CounterStore checks (one
    meter and key per session: no new counter sequence to start)."""

    def __init__(self) -> None:
        self._next = itertools.count(1)
        self._last = -1

    def next(self, device: str) -> int:
        return next(self._next)

    def check_received(self, device: str, counter: int, *, meter: bytes,
                       key: str) -> None:
        if counter <= self._last:
            raise RemoteProtocolError(f"invocation counter {counter} replayed")
        self._last = counter


def _split_frames(data: bytes) -> list[bytes]:
    """A meter's HDLC output cut into its frames (one answer may hold several)."""
    frames: list[bytes] = []
    start = 0
    while start < len(data):
        if data[start] != hdlc_frame.FLAG or start + 3 > len(data):
            return [*frames, data[start:]]
        length = int.from_bytes(data[start + 1:start + 3], "big") & 0x7FF
        frames.append(data[start:start + length + 2])
        start += length + 2
    return frames


@dataclass
class Recording:
    """Every frame of one session, in order: ``to_meter`` the reader's, ``to_client``
    the meter's (HDLC: one frame each), and the APDUs each side's link delivered."""

    spec: SessionSpec
    to_meter: list[bytes] = field(default_factory=list)
    to_client: list[bytes] = field(default_factory=list)
    requests: list[bytes] = field(default_factory=list)  # APDUs the meter received
    responses: list[bytes] = field(default_factory=list)  # APDUs the meter sent
    texts: list[str] = field(default_factory=list)  # the reader's traces and notes
    state: str = ""


class Session:
    """The reader of ``spec`` against a fresh simulated meter, in memory, on a fake
    clock: open, read :data:`REQUESTS`, close.  ``replace`` maps an answer number
    (0-based, one HDLC frame or wrapper frame each) to the octets the reader gets
    instead (``b""``: the answer is lost).  :meth:`run` raises what the reader
    raises, or :class:`Stuck`."""

    MAX_STEPS: Final = 2000

    def __init__(self, spec: SessionSpec, replace: dict[int, bytes] | None = None) -> None:
        self.spec = spec
        self.replace = replace or {}
        self.recording = Recording(spec)
        self.reader: MeterReader = build_reader(spec.device(), quirks=MeterQuirks(),
                                                counters=_Counters)
        self.server = MeterServer(Meter(_MODEL), spec.options())
        self.link: HdlcLink | WrapperLink
        self.line: SerialLine | None = None
        if spec.mode_e:  # answers come at once: the reaction times are not waited for
            self.line = SerialLine({HDLC_PHYSICAL: self.server}, logical=HDLC_LOGICAL,
                                   identification=IDENTIFICATION)
        if spec.kind == "hdlc":
            address = hdlc_frame.encode_server_address(HDLC_LOGICAL, HDLC_PHYSICAL, 2)
            self.link = HdlcLink.meter(address, 16, max_info=spec.max_info,
                                       max_apdu_size=4096)
        else:
            self.link = WrapperLink.meter(HDLC_LOGICAL, 16, max_apdu_size=4096)
        self.now = 1000.0
        self._in_flight: deque[bytes] = deque()
        self._answers = 0

    def _feed(self, data: bytes) -> bytes:
        """What dlms-sim's I/O loop does with one chunk from the line."""
        if self.line is not None:
            return b"".join(a.data for a in self.line.receive_data(data, SIM_NOW)
                            if isinstance(a, Send))
        link = self.link
        link.receive_data(data)
        out = bytearray()
        while (event := link.next_event()) is not hdlc_frame.NEED_DATA:
            out += link.data_to_send()
            if isinstance(event, ApduReceived):
                self.recording.requests.append(event.apdu)
                response = self.server.handle(event.apdu, SIM_NOW)
                if response:
                    self.recording.responses.append(response)
                out += link.send_apdu(response) if response else link.acknowledge()
            elif isinstance(event, Connected | Disconnected):
                self.server.reset()
        return bytes(out + link.data_to_send())

    def _act(self) -> None:
        for action in self.reader.actions():
            if isinstance(action, Trace):
                self.recording.texts.append(action.summary)
            elif isinstance(action, Note):
                self.recording.texts.append(f"{action.event} {action.fields}")
            if not isinstance(action, Send):
                continue
            self.recording.to_meter.append(action.data)
            answer = self._feed(action.data)
            if not answer:
                continue
            units = _split_frames(answer) if self.spec.kind == "hdlc" else [answer]
            for unit in units:
                self.recording.to_client.append(unit)
                unit = self.replace.get(self._answers, unit)
                self._answers += 1
                if unit:
                    self._in_flight.append(unit)

    def _until(self, done: Callable[[], bool]) -> None:
        reader = self.reader
        for _ in range(self.MAX_STEPS):
            self._act()
            if done():
                return
            timer = reader.get_timer()
            if self._in_flight:
                reader.receive_data(self._in_flight.popleft(), self.now)
            elif timer is not None:
                self.now = max(self.now, timer)
                reader.handle_timer(self.now)
            else:
                raise Stuck(f"nothing in flight and no timer while {reader.state.value}")
        raise Stuck(f"still {reader.state.value} after {self.MAX_STEPS} steps")

    def run(self) -> Recording:
        reader = self.reader
        try:
            reader.open(self.now, bytes(range(reader.settings.challenge_size)))
            self._until(lambda: reader.state not in (
                ReaderState.OPENING_LINE, ReaderState.CONNECTING, ReaderState.ASSOCIATING))
            if reader.state is ReaderState.READY:
                reader.submit(ReadAttributes(REQUESTS), self.now)
                self._until(lambda: reader.state is not ReaderState.BUSY)
        finally:
            # close() never raises; a failed reader closes too (DISC if the link is idle)
            if reader.state is not ReaderState.CLOSED:
                reader.close(self.now)
                self._until(lambda: reader.state in (ReaderState.CLOSED, ReaderState.FAILED)
                            and not self._in_flight)
            self.recording.state = reader.state.value
        return self.recording


@cache
def record(name: str) -> Recording:
    """The normal session ``name`` (one of :data:`SESSIONS`), recorded."""
    (spec,) = [s for s in SESSIONS if s.name == name]
    recording = Session(spec).run()
    if recording.state != ReaderState.CLOSED.value:  # pragma: no cover - a broken tree
        raise RuntimeError(f"the normal session {name} ended {recording.state}")
    return recording
