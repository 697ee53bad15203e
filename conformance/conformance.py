#!/usr/bin/env python3
"""Conformance test of a LearnStore server against docs/PROTOCOL.md, using learnstore_client.py,
a client written in Python from that document alone (no Swift read).

Usage: python3 conformance/conformance.py [PATH/learnstore]   (default .build/debug/learnstore)

Starts the server itself on a loopback port it picks (--port 0 --port-file) with a fresh data
directory, runs every check, kills the server, and exits 0 only when every check passed.
"""
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from learnstore_client import *  # noqa: E402,F403
import learnstore_client as lc  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
BINARY = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", ".build", "debug", "learnstore"))
HOST = "127.0.0.1"
HANDSHAKE_TIMEOUT = 3
SECRET = b"conformance-secret-" + os.urandom(16).hex().encode()

RESULTS = []   # (section, name, ok, detail)
NOTES = []     # observations that are not failures


def check(section, name, cond, detail=""):
    RESULTS.append((section, name, bool(cond), detail))
    mark = "PASS" if cond else "FAIL"
    print("  [%s] %s: %s%s" % (mark, section, name, (" -- " + str(detail)) if (detail and not cond) else ""))
    return bool(cond)


def note(text):
    NOTES.append(text)
    print("  [NOTE] " + text)


def expect_error(section, name, fn, code, field=None, message_contains=None):
    try:
        res = fn()
    except ServerError as e:
        ok = e.code == code and (field is None or e.field == field) and \
            (message_contains is None or message_contains in e.message)
        return check(section, name, ok, "got %s(%d) field=%r msg=%r, want %s field=%r"
                     % (e.name, e.code, e.field, e.message, ERROR_NAMES.get(code, code), field)) and e or e
    except Exception as e:  # noqa: BLE001
        check(section, name, False, "got exception %s: %s, want %s" % (type(e).__name__, e, ERROR_NAMES.get(code)))
        return None
    check(section, name, False, "no error (result %r), want %s" % (str(res)[:200], ERROR_NAMES.get(code)))
    return None


def section(title):
    print("\n== " + title)


# ----------------------------------------------------------------------------------------------
# server management

class Server:
    def __init__(self, extra_args=()):
        self.extra_args = list(extra_args)
        self.dir = tempfile.mkdtemp(prefix="learnstore-conformance-")
        self.data = os.path.join(self.dir, "data")
        self.secret_file = os.path.join(self.dir, "jwt-secret")
        with open(self.secret_file, "wb") as f:
            f.write(SECRET)
        self.log_path = os.path.join(self.dir, "server.log")
        self.proc = None
        self.port = None

    def start(self, deadline_s=60):
        port_file = os.path.join(self.dir, "port")
        if os.path.exists(port_file):
            os.remove(port_file)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [BINARY, "serve", "--host", HOST, "--port", "0", "--port-file", port_file, "--data-dir", self.data,
             "--jwt-secret-file", self.secret_file, "--metrics-port", "0", "--jwt-leeway", "0",
             "--handshake-timeout", str(HANDSHAKE_TIMEOUT)] + self.extra_args,
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("the server exited with %s while starting:\n%s" % (self.proc.returncode, self.log()[-2000:]))
            try:
                with open(port_file) as f:
                    self.port = int(f.read().strip())
            except (OSError, ValueError):
                time.sleep(0.05)
                continue
            # accepting is not enough: data requests get LOADING until recovery ends (3.1);
            # INFO works meanwhile and says "loading".
            try:
                with connect(HOST, self.port, mint_hs256(SECRET, "readiness", scope="")) as c:
                    if c.info().get("loading") is False:
                        return self.port
            except (OSError, ServerError, ConnectionClosed):
                pass
            time.sleep(0.05)
        raise RuntimeError("the server was not ready within %ss" % deadline_s)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""


SRV = None


def tok(tenant, **kw):
    return mint_hs256(SECRET, tenant, **kw)


def conn(tenant=None, token=None, timeout=10.0, **kw):
    if token is None and tenant is not None:
        token = tok(tenant, **kw)
    return connect(HOST, SRV.port, token, timeout=timeout)


def raw_conn(hello=True, token=None, timeout=10.0):
    c = Connection(HOST, SRV.port, timeout)
    if hello:
        c.hello()
    if token:
        c.auth(token)
    return c


def read_one(c):
    """-> ('ok', op, rid, payload) | ('err', ServerError) | ('closed', None)"""
    try:
        op, flags, rid, payload = c.recv_frame()
    except ConnectionClosed:
        return ("closed", None)
    except ConnectionResetError:
        return ("closed", None)
    if flags & FLAG_ERROR:
        return ("err", decode_error(op, rid, payload))
    return ("ok", op, rid, payload)


def is_closed(c, timeout=5.0):
    c.sock.settimeout(timeout)
    try:
        data = c.sock.recv(1)
        return data == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def pings_ok(c, data=b"still-there"):
    try:
        return c.ping(data) == data
    except Exception:  # noqa: BLE001
        return False


def server_answers_ping():
    try:
        with raw_conn() as c:
            return c.ping(b"alive") == b"alive"
    except Exception:  # noqa: BLE001
        return False


def hx(s):
    """Hex from the document's worked examples: drop the commentary after the byte columns."""
    out = []
    for line in s.strip().splitlines():
        toks = line.split()
        for t in toks:
            if len(t) == 2 and all(ch in "0123456789abcdef" for ch in t):
                out.append(t)
            else:
                break
    return bytes.fromhex("".join(out))


# ----------------------------------------------------------------------------------------------
# 0. worked examples (appendix A, B.9, C.5, D.6) against this client's codecs (no server)

def test_worked_examples():
    section("worked examples vs. this client's encoders/decoders")
    S = "worked-examples"
    a1 = hx("""
0f 00 00 00               length = 15: 6 + 9 payload bytes
01                        opcode 0x01 HELLO
00                        flags = 0x00
01 00 00 00               request_id = 1
01 00                     min_version = 1
01 00                     max_version = 1
04                        client_name: 4 bytes follow
64 65 6d 6f               "demo"
""")
    check(S, "A-1 HELLO request encodes", a1 == frame(HELLO, Writer().u16(1).u16(1).string("demo").getvalue(), 1))
    a2 = hx("""
29 00 00 00               length = 41: 6 + 35 payload bytes
01                        opcode 0x01 HELLO
00                        flags = 0x00 (not an error)
01 00 00 00               request_id = 1
01 00                     version = 1
0a                        server_name: 10 bytes follow
6c 65 61 72 6e 73 74 6f   "learnstore"
72 65
05                        server_version: 5 bytes follow
30 2e 31 2e 30            "0.1.0"
00 00 00 01               max_frame_bytes = 16777216 (16 MiB)
00 04 00 00               max_in_flight = 1024
0f 00 00 00 00 00 00 00   features = 15: bit 0 records, bit 1 Canvas outcomes, bit 2 admin, bit 3 change feed
""")
    r = Reader(a2[10:])
    v = (r.u16(), r.string(), r.string(), r.u32(), r.u32(), r.u64())
    r.done()
    check(S, "A-2 HELLO response decodes", v == (1, "learnstore", "0.1.0", 16777216, 1024, 15) and
          struct.unpack_from("<I", a2)[0] == len(a2) - 4, v)
    a3 = hx("""
24 00 00 00               length = 36: 6 + 30 payload bytes
02                        opcode 0x02 AUTH
00                        flags = 0x00
02 00 00 00               request_id = 2
1d                        token: 29 bytes follow
65 79 4a 68 62 47 63 69   "eyJhbGciOiJIUzI1NiJ9.e30.c2ln"
4f 69 4a 49 55 7a 49 31
4e 69 4a 39 2e 65 33 30
2e 63 32 6c 6e
""")
    check(S, "A-3 AUTH request encodes", a3 == frame(AUTH, Writer().string("eyJhbGciOiJIUzI1NiJ9.e30.c2ln").getvalue(), 2))
    a4 = hx("""
28 00 00 00               length = 40: 6 + 34 payload bytes
02                        opcode 0x02 AUTH
00                        flags = 0x00
02 00 00 00               request_id = 2
04                        tenant_id: 4 bytes follow
61 63 6d 65               "acme"
00                        has_app = 0: no app_id follows
0b 6d 8a 3e 2f 41 4c 7a   person_id = 0b6d8a3e-2f41-4c7a-8e15-3d9c00a1b2c4
8e 15 3d 9c 00 a1 b2 c4
03 00 00 00               scopes = 3: records:read, records:write
80 ca 57 74 97 01 00 00   expires_at = 1750003600000 (2025-06-15T16:06:40.000Z)
""")
    r = Reader(a4[10:])
    v = (r.string(), r.u8(), r.uuid(), r.u32(), r.time())
    r.done()
    check(S, "A-4 AUTH response decodes", v == ("acme", 0, uuid.UUID("0b6d8a3e-2f41-4c7a-8e15-3d9c00a1b2c4"), 3,
                                               1750003600000) and struct.unpack_from("<I", a4)[0] == len(a4) - 4, v)
    a5 = hx("""
45 00 00 00               length = 69: 6 + 63 payload bytes
10                        opcode 0x10 CREATE
00                        flags = 0x00
03 00 00 00               request_id = 3
01                        has_key = 1
08                        idempotency_key: 8 bytes follow
69 6d 70 6f 72 74 2d 31   "import-1"
00 e0 0d 00               values = 0x000de000: fields 13, 14, 15, 16, 18, 19
00 00 00 00               nulls = 0
5f 0c 1e 2a 7b 3d 4c 9e   person_id (13) = 5f0c1e2a-7b3d-4c9e-9a1b-000000000042
9a 1b 00 00 00 00 00 42
07                        title (14): 7 bytes follow
41 57 53 20 53 41 41      "AWS SAA"
03                        provider (15): 3 bytes follow
41 57 53                  "AWS"
00 c8 e2 70 97 01 00 00   completed_at (16) = 1749945600000 (2025-06-15T00:00:00.000Z)
00 00 00 00 00 20 56 40   score (18) = 88.5
01                        passed (19) = 1
""")
    w = Writer().u8(1).string("import-1")
    encode_body(w, {"person_id": "5f0c1e2a-7b3d-4c9e-9a1b-000000000042", "title": "AWS SAA", "provider": "AWS",
                    "completed_at": 1749945600000, "score": 88.5, "passed": True})
    check(S, "A-5 CREATE request encodes", a5 == frame(CREATE, w.getvalue(), 3))
    a6 = hx("""
8c 00 00 00               length = 140: 6 + 134 payload bytes
10                        opcode 0x10 CREATE
00                        flags = 0x00
03 00 00 00               request_id = 3
01 00 00 00 00 00 00 00   sequence = 1
00                        replayed = 0
fb f3 0d 00               present = 0x000df3fb: fields 0, 1, 3-9, 12-16, 18, 19
01 97 74 20 dc 00 1a 2b   id (record_id): 01 97 74 20 dc 00 = 1750000000000 ms, then 10 random bytes
3c 4d 5e 6f 70 81 92 a3
04                        tenant_id: 4 bytes follow
61 63 6d 65               "acme"
00 dc 20 74 97 01 00 00   created_at = 1750000000000 (2025-06-15T15:06:40.000Z)
00 dc 20 74 97 01 00 00   updated_at = 1750000000000
0b 6d 8a 3e 2f 41 4c 7a   created_by = 0b6d8a3e-2f41-4c7a-8e15-3d9c00a1b2c4
8e 15 3d 9c 00 a1 b2 c4
0b 6d 8a 3e 2f 41 4c 7a   updated_by = 0b6d8a3e-2f41-4c7a-8e15-3d9c00a1b2c4
8e 15 3d 9c 00 a1 b2 c4
03                        source: 3 bytes follow
65 64 6d                  "edm"
04                        source_type = 4 (api)
00                        is_deleted = 0 (false)
01                        schema_version = 1 (varint)
5f 0c 1e 2a 7b 3d 4c 9e   person_id = 5f0c1e2a-7b3d-4c9e-9a1b-000000000042
9a 1b 00 00 00 00 00 42
07                        title: 7 bytes follow
41 57 53 20 53 41 41      "AWS SAA"
03                        provider: 3 bytes follow
41 57 53                  "AWS"
00 c8 e2 70 97 01 00 00   completed_at = 1749945600000 (2025-06-15T00:00:00.000Z)
00 00 00 00 00 20 56 40   score = 88.5 (f64)
01                        passed = 1 (true)
""")
    r = Reader(a6[10:])
    seq, rep = r.u64(), r.u8()
    rec = decode_record(r)
    r.done()
    check(S, "A-6 CREATE response decodes", seq == 1 and rep == 0 and rec["title"] == "AWS SAA" and
          rec["score"] == 88.5 and rec["passed"] is True and rec["source_type"] == 4 and rec["source"] == "edm" and
          record_id_str(rec["id"]) == "lr_01JXT21Q0038NKRKAYDXR834N3" and struct.unpack_from("<I", a6)[0] == len(a6) - 4,
          rec)
    check(S, "A-6 record id prints as lr_01JXT21Q0038NKRKAYDXR834N3 and round-trips",
          record_id_bytes("lr_01JXT21Q0038NKRKAYDXR834N3") == rec["id"])
    w = Writer()
    encode_record(w, rec)
    check(S, "A-6 record re-encodes to the same 125 bytes", w.getvalue() == a6[19:] and len(a6[19:]) == 125)
    a7 = hx("""
16 00 00 00               length = 22: 6 + 16 payload bytes
12                        opcode 0x12 GET
00                        flags = 0x00
04 00 00 00               request_id = 4
01 97 74 20 dc 00 1a 2b   record_id lr_01JXT21Q0038NKRKAYDXR834N3
3c 4d 5e 6f 70 81 92 a3
""")
    check(S, "A-7 GET request encodes", a7 == frame(GET, record_id_bytes("lr_01JXT21Q0038NKRKAYDXR834N3"), 4))
    a8_payload_matches = True  # A-8 is A-6's record; its length 131 = 6 + 125
    check(S, "A-8 GET response length is 6 + record", a8_payload_matches and 0x83 == 6 + 125)
    a9 = hx("""
45 00 00 00               length = 69: 6 + 63 payload bytes
10                        opcode 0x10 CREATE
01                        flags = 0x01: bit 0, error
05 00 00 00               request_id = 5
2d 01                     code = 301
0a                        name: 10 bytes follow
56 41 4c 49 44 41 54 49   "VALIDATION"
4f 4e
2b                        message: 43 bytes follow
73 63 6f 72 65 20 6d 75   "score must be a finite number from 0 to 100"
73 74 20 62 65 20 61 20
66 69 6e 69 74 65 20 6e
75 6d 62 65 72 20 66 72
6f 6d 20 30 20 74 6f 20
31 30 30
05                        field: 5 bytes follow
73 63 6f 72 65            "score"
""")
    e = decode_error(0x10, 5, a9[10:])
    check(S, "A-9 error decodes", e.code == 301 and e.name == "VALIDATION" and e.field == "score" and
          e.message == "score must be a finite number from 0 to 100" and e.extra == b"" and
          struct.unpack_from("<I", a9)[0] == len(a9) - 4)

    # B.9
    ev = b'{"metadata":{"event_name":"learning_outcome_result_created"},"body":{"learning_outcome_id":"1","user_uuid":"u1","score":3}}'
    b1 = frame(OUTCOME_INGEST, Writer().varint(1).bytes(ev).getvalue(), 7)
    check(S, "B-1 OUTCOME_INGEST request header/length", b1[:12] == bytes.fromhex("83000000 40 00 07000000 01 7b".replace(" ", ""))
          and len(ev) == 123, b1[:12].hex())
    b2 = bytes.fromhex(
        "58000000" "40000b000000" "0300000000000000" "02" "0004"
        "13" "73796e3a323a7531313a31303a303a303a303a"
        "03" "2d01" "0a56414c49444154494f4e" "087265717569726564" "0e626f64792e757365725f75756964"
        "0c6d697373696e674669656c64")
    r = Reader(b2[10:])
    seq = r.u64()
    n = r.varint()
    st0, k0, key0 = r.u8(), r.u8(), r.string()
    st1, code1, name1, _message, field1, reason1 = r.u8(), r.u16(), r.string(), r.string(), r.string(), r.string()
    r.done()
    check(S, "B-2 OUTCOME_INGEST response decodes", (seq, n, st0, k0, key0, st1, code1, name1, field1, reason1) ==
          (3, 2, 0, 4, "syn:2:u11:10:0:0:0:", 3, 301, "VALIDATION", "body.user_uuid", "missingField") and
          struct.unpack_from("<I", b2)[0] == len(b2) - 4)
    b3 = bytes.fromhex(
        "3a000000" "460008000000" "01" "0131" "0000000000000c40" "02" "0100f451c28c010000" "01" "01"
        "0000000000000840" "05" "074d617374657279" "01" "07686967686573" "74" "010131")
    r = Reader(b3[10:])
    n = r.varint()
    ro = decode_rollup(r)
    r.done()
    check(S, "B-3 OUTCOME_STUDENT_ROLLUPS response decodes", n == 1 and ro["outcome_id"] == "1" and ro["score"] == 3.5 and
          ro["count"] == 2 and ro["latest_assessed_at"] == 1704067200000 and ro["mastered"] and
          ro["rating"] == {"points": 3.0, "description": "Mastery", "color": None, "mastery": True} and
          ro["calculation_method"] == "highest" and ro["scale_source"] == {"kind": "proficiency", "proficiency_id": "1"}
          and struct.unpack_from("<I", b3)[0] == len(b3) - 4, ro)
    # C.5
    c1 = bytes.fromhex("1f000000" "810009000000" "05" + "00" * 8 + "0c00000000000000" + "00" * 8)
    w = Writer().u8(5).u64(0).u64(12).time(0)
    check(S, "C-1 RESTORE_TENANT request encodes (25-byte payload)", c1 == frame(RESTORE_TENANT, w.getvalue(), 9) and len(w.getvalue()) == 25)
    c2 = bytes.fromhex("12000000" "82000a000000" "0500000000000000" "e807" "03" "01")
    r = Reader(c2[10:])
    v = (r.u64(), r.varint(), r.varint(), r.varint())
    r.done()
    check(S, "C-2 IMPORT response decodes", v == (5, 1000, 3, 1) and struct.unpack_from("<I", c2)[0] == len(c2) - 4, v)
    # D.6
    d1 = bytes.fromhex("13000000" "a0" "00" "07000000" "00" "2900000000000000" "00010000")
    check(S, "D.6 SUBSCRIBE request encodes", d1 == frame(SUBSCRIBE, Writer().u8(0).u64(41).u32(256).getvalue(), 7))
    d2 = bytes.fromhex("22000000" "a0" "00" "07000000" "2900000000000000" "3900000000000000" "0000000000000000" "00040000")
    r = Reader(d2[10:])
    v = (r.u64(), r.u64(), r.u64(), r.u32())
    r.done()
    check(S, "D.6 SUBSCRIBE response decodes", v == (41, 57, 0, 1024) and struct.unpack_from("<I", d2)[0] == len(d2) - 4, v)
    d3 = bytes.fromhex("32000000" "a2" "00" "07000000" "2a00000000000000" "01" "2a00000000000000" "00dc207497010000"
                       "01" "07" "01" "01977420dc001111" "1111111111111111")
    th, chs = decode_feed_events(d3[10:])
    check(S, "D.6 FEED_EVENTS decodes", th == 42 and len(chs) == 1 and chs[0]["sequence"] == 42 and
          chs[0]["timestamp"] == 1750000000000 and chs[0]["parts"][0]["kind"] == "purge" and
          chs[0]["parts"][0]["record_ids"] == [bytes.fromhex("01977420dc0011111111111111111111")] and
          struct.unpack_from("<I", d3)[0] == len(d3) - 4)
    d4 = bytes.fromhex("0a000000" "a1" "00" "00000000" "80000000")
    check(S, "D.6 FEED_CREDIT encodes", d4 == frame(FEED_CREDIT, Writer().u32(128).getvalue(), 0))
    # varint examples of section 1
    check(S, "varint 5 / 300 / long form", enc_varint(5) == b"\x05" and enc_varint(300) == b"\xac\x02" and
          Reader(b"\x80\x00").varint() == 0)
    check(S, "uuid byte order example", to_uuid("5f0c1e2a-7b3d-4c9e-9a1b-000000000042").bytes ==
          bytes.fromhex("5f0c1e2a7b3d4c9e9a1b000000000042"))


# ----------------------------------------------------------------------------------------------
# 1. handshake

def test_handshake():
    section("HELLO / AUTH / PING / INFO / TOPOLOGY / token mint")
    S = "handshake"
    c = Connection(HOST, SRV.port)
    h = c.hello(client_name="conformance")
    check(S, "HELLO version 1, server_name learnstore", h["version"] == 1 and h["server_name"] == "learnstore", h)
    check(S, "HELLO max_frame_bytes default 16 MiB", h["max_frame_bytes"] == 16777216, h)
    check(S, "HELLO max_in_flight default 1024", h["max_in_flight"] == 1024, h)
    check(S, "HELLO features has bits 0-3", h["features"] & 0xF == 0xF, h)
    check(S, "PING before AUTH echoes", c.ping(b"pre-auth") == b"pre-auth")
    person = uuid.uuid4()
    exp = int(time.time()) + 600
    ident = c.auth(tok("acme", sub=person, scope="records:read outcomes:write", exp=exp))
    check(S, "AUTH identity", ident["tenant_id"] == "acme" and ident["app_id"] is None and
          ident["person_id"] == person and ident["scopes_bits"] == 0b1001 and ident["expires_at"] == exp * 1000, ident)
    check(S, "PING empty", c.ping(b"") == b"")
    check(S, "PING 64 bytes", c.ping(b"x" * 64) == b"x" * 64)
    c.close()
    c = conn("acme", app_id="app-1", scope="records:read records:write bogus:scope")
    check(S, "AUTH app-scoped identity, unknown scope ignored",
          c.identity["app_id"] == "app-1" and c.identity["scopes_bits"] == 0b11, c.identity)
    inf = c.info()
    check(S, "INFO (non-admin) has identity fields, server_wide false",
          inf.get("server") == "learnstore" and inf.get("server_wide") is False and "loading" in inf and
          "storage" in inf and "replication" in inf and "connections" not in inf, inf)
    topo = c.topology()
    check(S, "TOPOLOGY names this server as primary",
          topo.get("partitions") == 1 and topo.get("primary") == topo.get("this_node") and
          any(n.get("address") == "%s:%d" % (HOST, SRV.port) for n in topo.get("nodes", [])), topo)
    c.close()
    c = conn("acme")
    inf = c.info()
    check(S, "INFO (admin) is server-wide", inf.get("server_wide") is True and "connections" in inf and
          "requests" in inf and "errors" in inf, sorted(inf))
    c.close()
    # token minted by the binary
    p = subprocess.run([BINARY, "token", "mint", "--tenant", "acme", "--jwt-secret-file", SRV.secret_file,
                        "--scope", "records:read", "--ttl", "120"], capture_output=True, text=True, timeout=60)
    t = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
    try:
        c = conn(token=t)
        check(S, "token from 'learnstore token mint' accepted", c.identity["tenant_id"] == "acme" and
              c.identity["scopes"] == ["records:read"], c.identity)
        c.close()
    except Exception as e:  # noqa: BLE001
        check(S, "token from 'learnstore token mint' accepted", False, "%s / stdout=%r stderr=%r" % (e, p.stdout, p.stderr))
    # HELLO with a range that includes 1
    c = Connection(HOST, SRV.port)
    h = c.hello(0, 7)
    check(S, "HELLO range 0..7 chooses 1", h["version"] == 1)
    c.close()


# ----------------------------------------------------------------------------------------------
# 2. records

def test_records():
    section("LearningRecords")
    S = "records"
    c = conn("acme")
    me = c.identity["person_id"]
    person = uuid.uuid4()
    body = {"person_id": person, "title": "AWS SAA", "provider": "AWS", "completed_at": 1749945600000,
            "score": 88.5, "passed": True, "certification_ref": "cert-1"}
    seq1, replayed, rec = c.create(body, idempotency_key="idem-1")
    check(S, "CREATE returns stored record", not replayed and rec["title"] == "AWS SAA" and rec["provider"] == "AWS" and
          rec["score"] == 88.5 and rec["passed"] is True and rec["person_id"] == person and
          rec["completed_at"] == 1749945600000 and rec["tenant_id"] == "acme" and rec["source"] == "edm" and
          rec["source_type"] == 4 and rec["is_deleted"] is False and rec["created_by"] == me and
          rec["updated_by"] == me and rec["schema_version"] == 1 and rec["app_id"] is None and
          rec["created_at"] == rec["updated_at"], rec)
    check(S, "record id time prefix = created_at", int.from_bytes(rec["id"][:6], "big") == rec["created_at"])
    seq1b, replayed, rec_b = c.create(body, idempotency_key="idem-1")
    check(S, "CREATE idempotent replay", replayed and rec_b == rec and seq1b == seq1, (seq1, seq1b, replayed))
    expect_error(S, "same key, other body -> CONFLICT",
                 lambda: c.create(dict(body, title="other"), idempotency_key="idem-1"), 302)
    got = c.get(rec["id"])
    check(S, "GET equals created record", got == rec)
    check(S, "GET by lr_ string id", c.get(record_id_str(rec["id"])) == rec)
    expect_error(S, "GET unknown id -> NOT_FOUND", lambda: c.get(os.urandom(16)), 300)

    # batch
    bodies = [{"person_id": person, "title": "B%d" % i, "provider": "GCP", "passed": i % 2 == 0,
               "completed_at": 1700000000000 + i * 86400000, "expires_at": 1800000000000 + i,
               "source": "batch", "source_type": 1,
               "linked_cohort_id": uuid.UUID(int=7)} for i in range(5)]
    seqb, replayed, recs = c.create_batch(bodies, idempotency_key="batch-1")
    check(S, "CREATE_BATCH returns all records", not replayed and len(recs) == 5 and seqb == seq1 + 1 and
          [r["title"] for r in recs] == ["B%d" % i for i in range(5)] and
          all(r["source"] == "batch" and r["source_type"] == 1 for r in recs), (seqb, seq1))
    seqb2, replayed, recs2 = c.create_batch(bodies, idempotency_key="batch-1")
    check(S, "CREATE_BATCH replay", replayed and recs2 == recs and seqb2 == seqb)
    e = expect_error(S, "CREATE_BATCH with one invalid record fails whole batch (VALIDATION)",
                     lambda: c.create_batch([bodies[0], dict(bodies[1], score=101.0)]), 301, field="score")
    if e is not None:
        check(S, "batch error message names index", "1" in e.message, e.message)
    expect_error(S, "CREATE_BATCH count 0 -> VALIDATION", lambda: c.create_batch([]), 301)
    expect_error(S, "CREATE_BATCH count 1001 -> BAD_FRAME",
                 lambda: c.create_batch([{"person_id": person, "title": "x"}] * 1001), 100)

    # patch
    time.sleep(0.002)
    seqp, prec = c.patch(rec["id"], {"title": "AWS SAA v2", "provider": None})
    check(S, "PATCH changes field, null clears", prec["title"] == "AWS SAA v2" and prec["provider"] is None and
          prec["score"] == 88.5 and prec["updated_at"] >= rec["updated_at"] and prec["created_at"] == rec["created_at"]
          and seqp == seqb + 1, prec)
    check(S, "GET after PATCH", c.get(rec["id"]) == prec)
    expect_error(S, "PATCH with stale expected_updated_at -> CONFLICT",
                 lambda: c.patch(rec["id"], {"score": 90.0}, expected_updated_at=prec["updated_at"] - 1), 302)
    seqp2, prec2 = c.patch(rec["id"], {"score": 90.0}, expected_updated_at=prec["updated_at"])
    check(S, "PATCH with matching expected_updated_at", prec2["score"] == 90.0 and seqp2 == seqp + 1)
    expect_error(S, "PATCH null title -> VALIDATION(title)", lambda: c.patch(rec["id"], {"title": None}), 301, "title")
    expect_error(S, "PATCH expires_at before completed_at -> VALIDATION",
                 lambda: c.patch(rec["id"], {"expires_at": 1000}), 301, "expires_at")

    # delete / restore
    seqd, drec = c.delete(rec["id"])
    check(S, "DELETE soft-deletes", drec["is_deleted"] is True and drec["deleted_at"] is not None and
          drec["deleted_by"] == me and seqd == seqp2 + 1, drec)
    check(S, "GET returns soft-deleted record", c.get(rec["id"]) == drec)
    seqd2, drec2 = c.delete(rec["id"])
    check(S, "DELETE of deleted record changes nothing", seqd2 == seqd and drec2 == drec, (seqd, seqd2))
    expect_error(S, "PATCH of deleted record -> CONFLICT", lambda: c.patch(rec["id"], {"title": "x"}), 302)
    seqr, rrec = c.restore(rec["id"])
    check(S, "RESTORE undeletes", rrec["is_deleted"] is False and rrec["deleted_at"] is None and
          rrec["deleted_by"] is None and seqr == seqd + 1 and rrec["title"] == "AWS SAA v2", rrec)
    seqr2, rrec2 = c.restore(rec["id"])
    check(S, "RESTORE of live record changes nothing", seqr2 == seqr and rrec2 == rrec)
    expect_error(S, "DELETE unknown -> NOT_FOUND", lambda: c.delete(os.urandom(16)), 300)

    # list
    allp = c.list_all(0, person_id=person)
    ids = [r["id"] for r in allp]
    check(S, "LIST person_id finds all 6", len(allp) == 6 and set(ids) == {rec["id"]} | {r["id"] for r in recs},
          len(allp))
    keys = [(r["created_at"], r["id"]) for r in allp]
    check(S, "LIST default order newest first", keys == sorted(keys, reverse=True))
    pages, cursor, seen = 0, None, []
    while True:
        f = {"person_id": person}
        if cursor:
            f["cursor"] = cursor
        page, cursor = c.list(2, **f)
        pages += 1
        check(S, "LIST page size <= limit", len(page) <= 2) if len(page) > 2 else None
        seen += [r["id"] for r in page]
        if not cursor:
            break
        if pages > 10:
            break
    check(S, "LIST paging limit 2 gives 3 pages, no duplicates", pages == 3 and seen == ids, (pages, len(seen)))
    asc = c.list_all(0, person_id=person, ascending=True)
    check(S, "LIST ascending reverses order", [r["id"] for r in asc] == list(reversed(ids)))
    gcp = c.list_all(0, person_id=person, provider="GCP")
    check(S, "LIST provider filter", len(gcp) == 5)
    passed = c.list_all(0, person_id=person, provider="GCP", passed=True)
    check(S, "LIST passed filter", sorted(r["title"] for r in passed) == ["B0", "B2", "B4"], [r["title"] for r in passed])
    rng = c.list_all(0, person_id=person, completed_from=1700000000000 + 86400000,
                     completed_before=1700000000000 + 3 * 86400000)
    check(S, "LIST completed_at range", sorted(r["title"] for r in rng) == ["B1", "B2"], [r["title"] for r in rng])
    exp = c.list_all(0, person_id=person, expires_before=1800000000002)
    check(S, "LIST expires_at < (records without expires_at never match)",
          sorted(r["title"] for r in exp) == ["B0", "B1"], [r["title"] for r in exp])
    coh = c.list_all(0, linked_cohort_id=uuid.UUID(int=7))
    check(S, "LIST linked_cohort_id filter", len(coh) == 5)
    cert = c.list_all(0, certification_ref="cert-1")
    check(S, "LIST certification_ref filter", [r["id"] for r in cert] == [rec["id"]])
    upd = c.list_all(0, person_id=person, updated_since=prec2["updated_at"])
    check(S, "LIST updated_since", rec["id"] in [r["id"] for r in upd])
    # soft-deleted visibility
    c.delete(recs[0]["id"])
    live = c.list_all(0, person_id=person)
    withdel = c.list_all(0, person_id=person, include_deleted=True)
    check(S, "LIST hides soft-deleted unless bit 11", len(live) == 5 and len(withdel) == 6, (len(live), len(withdel)))
    c.restore(recs[0]["id"])
    page, cur = c.list(2, person_id=person)
    expect_error(S, "cursor with other filters -> VALIDATION(cursor)",
                 lambda: c.list(2, person_id=person, ascending=True, cursor=cur), 301, "cursor")
    expect_error(S, "foreign cursor -> VALIDATION(cursor)",
                 lambda: c.list(2, person_id=person, cursor=b"x" * 34), 301, "cursor")
    expect_error(S, "cursor > 1024 bytes -> BAD_FRAME", lambda: c.list(2, cursor=b"x" * 1025), 100)
    expect_error(S, "range start after end -> VALIDATION", lambda: c.list(0, completed_from=10, completed_before=5), 301,
                 "completed_at")
    check(S, "cursor is 34 bytes today (informational)", len(cur) == 34, len(cur)) if cur else None
    lim0, _ = c.list(0)
    check(S, "LIST limit 0 = default 50 (<= 50 records)", len(lim0) <= 50)

    # stats, wait_sequence
    st = c.stats()
    check(S, "STATS JSON", st.get("tenant_id") == "acme" and isinstance(st.get("records"), int), st)
    ws = c.wait_sequence(seqr, 100)
    check(S, "WAIT_SEQUENCE on primary answers at once", ws >= seqr, ws)
    expect_error(S, "WAIT_SEQUENCE future -> NOT_YET", lambda: c.wait_sequence(10 ** 9, 50), 409)
    expect_error(S, "WAIT_SEQUENCE timeout > 60000 -> VALIDATION(timeout_ms)",
                 lambda: c.wait_sequence(1, 60001), 301, "timeout_ms")

    # app-scoped token
    a = conn("acme", app_id="app-1", scope="records:read records:write")
    _, _, arec = a.create({"person_id": person, "title": "app record"})
    check(S, "app token stamps app_id", arec["app_id"] == "app-1", arec)
    expect_error(S, "app token cannot see non-app record -> NOT_FOUND", lambda: a.get(rec["id"]), 300)
    alist = a.list_all(0, person_id=person)
    check(S, "app token LIST sees only its app", [r["id"] for r in alist] == [arec["id"]])
    check(S, "tenant token sees the app record", c.get(arec["id"]) == arec)
    a.close()

    # scopes
    ro = conn("acme", scope="records:read")
    expect_error(S, "CREATE without records:write -> FORBIDDEN",
                 lambda: ro.create({"person_id": person, "title": "x"}), 202)
    expect_error(S, "PURGE_PERSON without admin -> FORBIDDEN", lambda: ro.purge_person(person, True), 202)
    expect_error(S, "OUTCOME_GET without outcomes:read -> FORBIDDEN", lambda: ro.outcome_get(1, "1"), 202)
    ro.close()
    wo = conn("acme", scope="outcomes:read")
    expect_error(S, "GET without records:read -> FORBIDDEN", lambda: wo.get(rec["id"]), 202)
    wo.close()

    # purge
    p2 = uuid.uuid4()
    c.create({"person_id": p2, "title": "to purge"})
    c.create({"person_id": p2, "title": "to purge 2"})
    s0, n = c.purge_person(p2, dry_run=True)
    check(S, "PURGE_PERSON dry run counts", n == 2, n)
    s1, n = c.purge_person(p2)
    check(S, "PURGE_PERSON purges", n == 2 and s1 == s0 + 1 and c.list_all(0, person_id=p2, include_deleted=True) == [],
          (s0, s1, n))

    # pipelining: 100 requests in one write, answers in order
    rids = []
    buf = b""
    for i in range(100):
        rid = c.new_id()
        rids.append(rid)
        if i % 2:
            buf += frame(PING, b"p%d" % i, rid)
        else:
            buf += frame(GET, rec["id"], rid)
    c.send_raw(buf)
    ok = True
    for i in range(100):
        op, fl, rid, pl = c.recv_frame()
        if rid != rids[i] or fl or (i % 2 and pl != b"p%d" % i) or (not i % 2 and op != GET):
            ok = False
    check(S, "100 pipelined requests answered in order", ok)
    c.close()
    return person


# ----------------------------------------------------------------------------------------------
# 3. section 6.3 table

def test_check_order():
    section("6.3 check order table")
    S = "6.3"
    c = conn("acme")
    person = uuid.uuid4()
    _, _, rec = c.create({"person_id": person, "title": "t"})
    noscope = conn("acme", scope="")

    def raw_call(cc, op, payload):
        return cc.call(op, payload)

    w = Writer().u8(0)
    encode_body(w, {"person_id": person, "title": "x", "source_type": 5})
    expect_error(S, "source-type-5", lambda: raw_call(c, CREATE, w.getvalue()), 100)
    expect_error(S, "bool-byte-2", lambda: raw_call(c, PURGE_PERSON, person.bytes + b"\x02"), 100)
    expect_error(S, "idempotency-key-129", lambda: c.create({"person_id": person, "title": "x"}, "k" * 129), 100)
    expect_error(S, "idempotency-key-empty", lambda: c.create({"person_id": person, "title": "x"}, ""), 301,
                 "idempotency_key")
    expect_error(S, "trailing-byte", lambda: raw_call(c, GET, rec["id"] + b"\x00"), 100)
    expect_error(S, "decode-before-scope", lambda: raw_call(noscope, GET, rec["id"] + b"\x00"), 100)
    expect_error(S, "import-decode-before-scope", lambda: raw_call(noscope, IMPORT, b"\x05"), 100)
    expect_error(S, "snapshot-decode-before-scope", lambda: raw_call(noscope, SNAPSHOT, b"\x07"), 100)
    w = Writer().varint(0).varint(1).bytes(b"not json")
    expect_error(S, "import-scope-before-row-validation", lambda: raw_call(noscope, IMPORT, w.getvalue()), 202)
    expect_error(S, "results-scope-before-cursor",
                 lambda: noscope.outcome_results(0, "u1", 0, b"bogus"), 202)
    expect_error(S, "scope-before-validation", lambda: noscope.patch(rec["id"], {}), 202)
    expect_error(S, "patch-sets-nothing", lambda: c.patch(rec["id"], {}), 301)
    expect_error(S, "list-empty-cursor", lambda: raw_call(c, LIST, Writer().u16(0).u32(1 << 13).bytes(b"").getvalue()),
                 301, "cursor")
    expect_error(S, "list-limit-1001", lambda: c.list(1001), 301, "limit")
    expect_error(S, "list-time-out-of-range", lambda: c.list(0, completed_from=253402300800000), 100)
    expect_error(S, "body-time-out-of-range",
                 lambda: c.create({"person_id": person, "title": "x", "completed_at": 253402300800000}), 301,
                 "completed_at")
    expect_error(S, "title-empty", lambda: c.create({"person_id": person, "title": ""}), 301, "title")
    expect_error(S, "provider-empty", lambda: c.create({"person_id": person, "title": "x", "provider": ""}), 301,
                 "provider")
    expect_error(S, "import-provider-empty",
                 lambda: c.call(IMPORT, import_payload([dict(rec, provider="")], [])), 301, "provider")
    expect_error(S, "source-null", lambda: c.create({"person_id": person, "title": "x", "source": None}), 301, "source")
    expect_error(S, "unknown-method", lambda: c.outcome_aggregates(("Course", "1"), method="latset"), 301,
                 "calculation_method")
    # a few more from 4.5 / section 1
    expect_error(S, "bit in both bitmaps -> BAD_FRAME",
                 lambda: raw_call(c, CREATE, Writer().u8(0).u32(1 << 14).u32(1 << 14).string("x").getvalue()), 100)
    expect_error(S, "bitmap bit above 22 -> BAD_FRAME",
                 lambda: raw_call(c, CREATE, Writer().u8(0).u32(1 << 23).u32(0).getvalue()), 100)
    expect_error(S, "server-stamped field in body -> VALIDATION naming it",
                 lambda: c.create({"person_id": person, "title": "x", "tenant_id": "evil"}), 301, "tenant_id")
    expect_error(S, "null person_id -> VALIDATION", lambda: c.create({"person_id": None, "title": "x"}), 301, "person_id")
    expect_error(S, "nil person_id -> VALIDATION", lambda: c.create({"person_id": uuid.UUID(int=0), "title": "x"}), 301,
                 "person_id")
    expect_error(S, "CREATE without title -> VALIDATION", lambda: c.create({"person_id": person}), 301, "title")
    expect_error(S, "score NaN -> VALIDATION", lambda: c.create({"person_id": person, "title": "x",
                                                                 "score": float("nan")}), 301, "score")
    expect_error(S, "title 513 bytes -> VALIDATION", lambda: c.create({"person_id": person, "title": "x" * 513}), 301,
                 "title")
    expect_error(S, "string 4097 bytes -> BAD_FRAME", lambda: c.create({"person_id": person, "title": "x" * 4097}), 100)
    expect_error(S, "invalid UTF-8 -> BAD_FRAME",
                 lambda: raw_call(c, CREATE, Writer().u8(0).u32((1 << 13) | (1 << 14)).u32(0).uuid(person)
                                  .bytes(b"\xff\xfe").getvalue()), 100)
    expect_error(S, "bool 2 in body -> BAD_FRAME",
                 lambda: raw_call(c, CREATE, Writer().u8(0).u32((1 << 13) | (1 << 14) | (1 << 19)).u32(0).uuid(person)
                                  .string("x").u8(2).getvalue()), 100)
    expect_error(S, "has_key 2 -> BAD_FRAME", lambda: raw_call(c, CREATE, b"\x02"), 100)
    expect_error(S, "unknown LIST filter bit 14 -> BAD_FRAME",
                 lambda: raw_call(c, LIST, Writer().u16(0).u32(1 << 14).getvalue()), 100)
    e = expect_error(S, "BAD_FRAME message names a byte offset", lambda: raw_call(c, GET, b"\x01\x02"), 100)
    if e is not None:
        check(S, "BAD_FRAME message mentions 'byte'", "byte" in e.message, e.message)
    check(S, "connection still answers PING after all the errors", pings_ok(c))
    noscope.close()
    c.close()


def import_payload(records, rows):
    w = Writer().varint(len(records))
    for r in records:
        encode_record(w, r)
    w.varint(len(rows))
    for row in rows:
        w.bytes(json.dumps(row).encode() if not isinstance(row, bytes) else row)
    return w.getvalue()


# ----------------------------------------------------------------------------------------------
# 4. Canvas outcomes

def ev(name, body, **md):
    return {"metadata": dict(event_name=name, **md), "body": body}


def test_outcomes():
    section("Canvas outcomes")
    S = "outcomes"
    c = conn("canvas")
    crit = {"description": "crit", "mastery_points": 3, "points_possible": 5,
            "ratings": [{"description": "Exceeds", "points": 5}, {"description": "Mastery", "points": 3},
                        {"description": "Near", "points": 2}, {"description": "Below", "points": 0}]}
    T = "2024-01-0%dT00:00:00Z"
    outcome = ev("learning_outcome_created", {
        "learning_outcome_id": "1", "context_type": "Course", "context_id": "565", "title": "O1",
        "calculation_method": "highest", "rubric_criterion": crit, "workflow_state": "active",
        "created_at": T % 1, "updated_at": T % 1}, event_time="2024-01-01T00:00:00Z", root_account_id="9")
    outcome2 = ev("learning_outcome_created", {
        "learning_outcome_id": "2", "context_type": "Course", "context_id": "565", "title": "O2",
        "calculation_method": "latest", "rubric_criterion": crit, "workflow_state": "active",
        "created_at": T % 1, "updated_at": T % 1})
    group = ev("learning_outcome_group_created", {
        "learning_outcome_group_id": "50", "context_type": "Course", "context_id": "565", "title": "G",
        "workflow_state": "active", "created_at": T % 1, "updated_at": T % 1})
    link = ev("learning_outcome_link_created", {
        "learning_outcome_link_id": "70", "learning_outcome_id": "1", "learning_outcome_group_id": "50",
        "context_type": "Course", "context_id": "565", "workflow_state": "active",
        "created_at": T % 1, "updated_at": T % 1})

    def result(rid, user, oid, score, day):
        return ev("learning_outcome_result_created", {
            "id": rid, "learning_outcome_id": oid, "user_uuid": user, "result_context_type": "Course",
            "result_context_id": "565", "score": score, "possible": 5, "assessed_at": T % day,
            "workflow_state": "active", "created_at": T % day, "updated_at": T % day,
            "associated_asset_type": "Assignment", "associated_asset_id": "900"})
    results = [result("100", "u1", "1", 2, 1), result("101", "u1", "1", 4, 2), result("102", "u2", "1", 1, 3),
               result("103", "u1", "2", 5, 4), result("104", "u1", "2", 1, 5)]
    bad = ev("learning_outcome_result_created", {"learning_outcome_id": "1", "score": 3})
    badjson = b"{not json"
    unknown = ev("learning_outcome_deleted", {"learning_outcome_id": "1"})
    badid = ev("learning_outcome_created", {"learning_outcome_id": "12a"})
    seq, items = c.outcome_ingest([outcome, outcome2, group, link] + results + [bad, badjson, unknown, badid])
    st = [i["status"] for i in items]
    check(S, "INGEST applied x9 then 4 rejected", st == ["applied"] * 9 + ["rejected"] * 4 and seq == 1, (seq, st))
    check(S, "INGEST kinds/keys", [(i.get("kind"), i.get("key")) for i in items[:5]] ==
          [("outcome", "1"), ("outcome", "2"), ("group", "50"), ("link", "70"), ("result", "100")], items[:5])
    check(S, "rejection missingField body.user_uuid",
          items[9].get("code") == 301 and items[9].get("field") == "body.user_uuid" and
          items[9].get("reason") == "missingField", items[9])
    check(S, "rejection badJSON", items[10].get("reason") == "badJSON", items[10])
    check(S, "rejection unknownEvent", items[11].get("reason") == "unknownEvent", items[11])
    check(S, "rejection invalidValue for non-digit id", items[12].get("reason") == "invalidValue" and
          items[12].get("field") == "body.learning_outcome_id", items[12])
    seq2, items = c.outcome_ingest([outcome])
    check(S, "re-ingest same event -> duplicate, sequence unchanged",
          items[0]["status"] == "duplicate" and seq2 == seq, (seq2, items))
    older = json.loads(json.dumps(outcome))
    older["body"]["updated_at"] = "2023-12-01T00:00:00Z"
    older["body"]["title"] = "older"
    seq3, items = c.outcome_ingest([older])
    check(S, "older version -> stale", items[0]["status"] == "stale" and seq3 == seq, items)
    # B-2 example as a real request
    b2ev1 = b'{"metadata":{"event_name":"learning_outcome_result_created"},"body":{"learning_outcome_id":"1","user_uuid":"u1","score":3}}'
    b2ev2 = b'{"metadata":{"event_name":"learning_outcome_result_created"},"body":{"learning_outcome_id":"1","score":3}}'
    cx = conn("canvas-b2")
    _, items = cx.outcome_ingest([b2ev1, b2ev2])
    check(S, "B-2 example reproduced by server",
          items[0] == {"status": "applied", "kind": "result", "key": "syn:2:u11:10:0:0:0:"} and
          items[1] == {"status": "rejected", "code": 301, "name": "VALIDATION", "message": "required",
                       "field": "body.user_uuid", "reason": "missingField"}, items)
    check(S, "result by synthetic key", cx.outcome_get(4, "syn:2:u11:10:0:0:0:")["user_uuid"] == "u1")
    cx.close()

    ent = c.outcome_get(1, "1")
    check(S, "OUTCOME_GET outcome JSON", ent["learning_outcome_id"] == "1" and ent["title"] == "O1" and
          ent["created_at"] == "2024-01-01T00:00:00.000Z" and ent["rubric_criterion"]["mastery_points"] == 3 and
          ent["metadata"]["root_account_id"] == "9" and "display_name" in ent and ent["display_name"] is None, ent)
    expected_outcome_members = ["learning_outcome_id", "context_type", "context_id", "context_uuid", "title",
                                "display_name", "short_description", "description", "vendor_guid",
                                "calculation_method", "calculation_int", "rubric_criterion", "workflow_state",
                                "copied_from_outcome_id", "original_outcome_root_account_uuid", "created_at",
                                "updated_at", "metadata"]
    check(S, "outcome JSON members as documented (B.3)", list(ent) == expected_outcome_members, list(ent))
    r100 = c.outcome_get(4, "100")
    expected_result_members = ["id", "learning_outcome_id", "learning_outcome_context_uuid", "result_context_id",
                               "result_context_type", "result_context_uuid", "user_uuid", "mastery", "score",
                               "possible", "percent", "attempt", "original_score", "original_possible",
                               "original_mastery", "workflow_state", "created_at", "updated_at", "assessed_at",
                               "submitted_at", "hidden", "artifact_id", "artifact_type", "artifact_created_at",
                               "artifact_updated_at", "associated_asset_id", "associated_asset_type", "metadata"]
    check(S, "result JSON members as documented (B.3)", list(r100) == expected_result_members, list(r100))
    check(S, "metadata members", list(r100["metadata"]) == ["event_time", "root_account_id", "root_account_uuid",
                                                            "root_account_lti_guid"], r100["metadata"])
    check(S, "group JSON", c.outcome_get(2, "50")["title"] == "G")
    check(S, "link JSON", c.outcome_get(3, "70")["learning_outcome_group_id"] == "50")
    expect_error(S, "OUTCOME_GET unknown -> NOT_FOUND", lambda: c.outcome_get(1, "999"), 300)
    expect_error(S, "OUTCOME_GET kind 6 -> BAD_FRAME", lambda: c.outcome_get(6, "1"), 100)

    tree = c.outcome_tree(0, ("Course", "565"))
    check(S, "TREE outcomes of context, by id", [(k, e["learning_outcome_id"]) for k, e in tree] ==
          [("outcome", "1"), ("outcome", "2")], tree)
    tree = c.outcome_tree(5, "50")
    check(S, "TREE group children (links)", [(k, e.get("learning_outcome_link_id")) for k, e in tree] == [("link", "70")])
    tree = c.outcome_tree(6, "50")
    check(S, "TREE group path", [(k, e.get("learning_outcome_group_id")) for k, e in tree] == [("group", "50")])
    check(S, "TREE unknown context -> count 0", c.outcome_tree(1, ("Course", "nope")) == [])
    expect_error(S, "TREE query 7 -> BAD_FRAME", lambda: c.outcome_tree(7, "x"), 100)

    # results with paging
    got, cursor, pages = [], b"", 0
    while True:
        ents, cursor = c.outcome_results(1, "1", limit=1, cursor=cursor)
        got += [e["id"] for e in ents]
        pages += 1
        if not cursor or pages > 10:
            break
    check(S, "RESULTS by outcome, paged by 1, ordered by assessed_at", got == ["100", "101", "102"], got)
    ents, _ = c.outcome_results(0, "u1")
    check(S, "RESULTS by student", [e["id"] for e in ents] == ["100", "101", "103", "104"], [e["id"] for e in ents])
    ents, _ = c.outcome_results(2, ("Course", "565"))
    check(S, "RESULTS by context", len(ents) == 5)
    ents, _ = c.outcome_results(3, ("Assignment", "900"))
    check(S, "RESULTS by asset", len(ents) == 5)
    ents, _ = c.outcome_results(4, (1704067200000, 1704067200000 + 2 * 86400000))
    check(S, "RESULTS by time range [from,to)", [e["id"] for e in ents] == ["100", "101"], [e["id"] for e in ents])
    expect_error(S, "RESULTS to before from -> VALIDATION(to)", lambda: c.outcome_results(4, (10, 5)), 301, "to")
    expect_error(S, "RESULTS malformed cursor -> VALIDATION(cursor)", lambda: c.outcome_results(0, "u1", 0, b"zz"), 301,
                 "cursor")
    expect_error(S, "RESULTS limit 1001 -> VALIDATION(limit)", lambda: c.outcome_results(0, "u1", 1001), 301, "limit")

    # rollups on the outcome's own criterion
    ro = c.outcome_rollup("u1", "1", ("Course", "565"))
    check(S, "ROLLUP highest of 2 and 4 = 4, mastered, rating Mastery",
          ro is not None and ro["score"] == 4.0 and ro["count"] == 2 and ro["mastered"] and
          ro["rating"]["description"] == "Mastery" and ro["calculation_method"] == "highest" and
          ro["scale_source"] == {"kind": "criterion"} and ro["latest_assessed_at"] == 1704153600000, ro)
    check(S, "ROLLUP for unknown outcome -> present 0", c.outcome_rollup("u1", "999", ("Course", "565")) is None)
    rs = c.outcome_student_rollups("u1", ("Course", "565"))
    check(S, "STUDENT_ROLLUPS by outcome id; 'latest' method takes last",
          [(r["outcome_id"], r["score"], r["calculation_method"]) for r in rs] == [("1", 4.0, "highest"), ("2", 1.0, "latest")], rs)
    ro = c.outcome_rollup("u1", "1", ("Course", "565"), method="average")
    check(S, "ROLLUP with method override 'average' = 3", ro and ro["score"] == 3.0 and ro["calculation_method"] == "average", ro)
    ag = c.outcome_aggregates(("Course", "565"))
    a1 = ag[0] if ag else {}
    check(S, "AGGREGATES outcome 1: mean 2.5, 2 students, 3 results",
          [a["outcome_id"] for a in ag] == ["1", "2"] and a1["mean"] == 2.5 and a1["median"] == 2.5 and
          a1["student_count"] == 2 and a1["result_count"] == 3 and a1["scale"]["mastery_points"] == 3.0 and
          len(a1["students_per_rating"]) == 4 and sum(a1["students_per_rating"]) == 2, ag)
    # which context does a rollup's `context` select? (the results' result_context, it turns out)
    cz = conn("canvas-ctx")
    cz.outcome_ingest([
        ev("learning_outcome_created", {"learning_outcome_id": "1", "context_type": "Account", "context_id": "1"}),
        ev("learning_outcome_result_created", {"id": "5", "learning_outcome_id": "1", "user_uuid": "u1",
                                               "result_context_type": "Course", "result_context_id": "565",
                                               "score": 2, "assessed_at": T % 1})])
    r_course = cz.outcome_rollup("u1", "1", ("Course", "565"))
    r_account = cz.outcome_rollup("u1", "1", ("Account", "1"))
    check(S, "rollup context = the results' context (undocumented)", r_course is not None and r_account is None,
          (r_course, r_account))
    check(S, "outcome without criterion uses a default 3-rating scale (5/3)",
          r_course is not None and r_course["scale_source"] == {"kind": "criterion"}, r_course)
    cz.close()
    # proficiency
    prof = ev("outcome_proficiency_created", {
        "outcome_proficiency_id": "5", "context_type": "Course", "context_id": "565", "workflow_state": "active",
        "outcome_proficiency_ratings": [
            {"outcome_proficiency_rating_id": "1", "description": "Great", "points": 4, "mastery": False,
             "color": "02672D", "workflow_state": "active"},
            {"outcome_proficiency_rating_id": "2", "description": "OK", "points": 2, "mastery": True,
             "color": "FAB901", "workflow_state": "active"},
            {"outcome_proficiency_rating_id": "3", "description": "No", "points": 0, "mastery": False,
             "color": "E0061F", "workflow_state": "active"}],
        "created_at": T % 1, "updated_at": T % 1})
    _, items = c.outcome_ingest([prof])
    check(S, "INGEST proficiency", items[0]["status"] == "applied" and items[0]["kind"] == "proficiency", items)
    p = c.outcome_proficiency(("Course", "565"))
    check(S, "PROFICIENCY in force", p is not None and p["outcome_proficiency_id"] == "5" and
          len(p["outcome_proficiency_ratings"]) == 3, p)
    check(S, "PROFICIENCY none -> present 0", c.outcome_proficiency(("Course", "nope")) is None)
    ro = c.outcome_rollup("u1", "1", ("Course", "565"))
    check(S, "ROLLUP now on the context's proficiency", ro is not None and
          ro["scale_source"] == {"kind": "proficiency", "proficiency_id": "5"} and
          ro["rating"] is not None and ro["rating"]["color"] is not None and ro["rating"]["mastery"] is not None, ro)
    ro2 = c.outcome_rollup("u1", "1", ("Course", "565"), own_criterion=True)
    check(S, "ROLLUP flag bit 0: own criterion", ro2 is not None and ro2["scale_source"] == {"kind": "criterion"}, ro2)
    ro3 = c.outcome_rollup("u1", "1", ("Course", "565"), proficiency_context=("Course", "565"))
    check(S, "ROLLUP flag bit 1: explicit proficiency context", ro3 is not None and
          ro3["scale_source"]["kind"] == "proficiency", ro3)
    expect_error(S, "rollup flags bits 0+1 -> BAD_FRAME",
                 lambda: c.call(OUTCOME_ROLLUP, Writer().u8(3).string("Course").string("565").string("u1").string("1")
                                .string("Course").string("565").getvalue()), 100)
    ag = c.outcome_aggregates(("Course", "565"))
    check(S, "AGGREGATES on proficiency scale", ag and ag[0]["scale"]["source"]["kind"] == "proficiency" and
          len(ag[0]["students_per_rating"]) == 3, ag)
    # delete an outcome (an _updated event with workflow_state deleted)
    dele = json.loads(json.dumps(outcome2))
    dele["metadata"]["event_name"] = "learning_outcome_updated"
    dele["body"]["workflow_state"] = "deleted"
    dele["body"]["updated_at"] = T % 9
    _, items = c.outcome_ingest([dele])
    check(S, "delete event applied", items[0]["status"] == "applied", items)
    expect_error(S, "deleted outcome -> NOT_FOUND", lambda: c.outcome_get(1, "2"), 300)
    expect_error(S, "INGEST count 0 -> VALIDATION(events)", lambda: c.outcome_ingest([]), 301, "events")
    st = c.stats()
    check(S, "STATS reports outcome_entities and outcome_results", "outcome_entities" in st and "outcome_results" in st, st)
    # app-scoped token reads outcome data like any other
    a = conn("canvas", app_id="someapp", scope="outcomes:read")
    check(S, "app token reads outcome data", a.outcome_get(1, "1")["title"] == "O1")
    a.close()
    c.close()


# ----------------------------------------------------------------------------------------------
# 5. change feed

def collect(f, want_changes, timeout=10.0):
    """Read FEED_EVENTS until want_changes changes arrived. -> (changes, last_through, frames)"""
    out, through, frames = [], None, []
    deadline = time.monotonic() + timeout
    f.sock.settimeout(timeout)
    while len(out) < want_changes and time.monotonic() < deadline:
        th, chs = f.read_feed_events()
        frames.append((th, len(chs)))
        out += chs
        through = th
    return out, through, frames


def expect_silence(f, seconds):
    """True when no non-heartbeat FEED_EVENTS arrives within `seconds`."""
    f.sock.settimeout(seconds)
    try:
        while True:
            th, chs = f.read_feed_events()
            if chs:
                return False, chs
    except socket.timeout:
        return True, None


def test_feed():
    section("change feed")
    S = "feed"
    TEN = "feedt"
    w = conn(TEN)
    person = uuid.uuid4()
    log = []   # (sequence, kind, records or payload)
    s, _, r1 = w.create({"person_id": person, "title": "F1", "score": 50.0})
    log.append((s, "create", [r1]))
    s, _, rb = w.create_batch([{"person_id": person, "title": "F2"}, {"person_id": person, "title": "F3"}])
    log.append((s, "create", rb))
    s, rp = w.patch(r1["id"], {"title": "F1 patched", "score": 75.0})
    log.append((s, "patch", [rp]))
    s, rd = w.delete(r1["id"])
    log.append((s, "delete", [rd]))
    s, rr = w.restore(r1["id"])
    log.append((s, "restore", [rr]))
    s, items = w.outcome_ingest([ev("learning_outcome_created", {"learning_outcome_id": "77", "title": "fo",
                                                                 "created_at": "2024-01-01T00:00:00Z",
                                                                 "updated_at": "2024-01-01T00:00:00Z"})])
    log.append((s, "outcomes", None))
    imp_rec = dict(r1, id=os.urandom(16), title="imported", created_at=1700000000000, updated_at=1700000000001)
    imp_rec["id"] = (1700000000000).to_bytes(6, "big") + os.urandom(10)
    row = {"kind": "learning_outcome", "entity": w.outcome_get(1, "77")}
    row["entity"]["learning_outcome_id"] = "78"
    r = Reader(w.call(IMPORT, import_payload([imp_rec], [row])))
    s_imp, n_rec, n_app, n_unch = r.u64(), r.varint(), r.varint(), r.varint()
    r.done()
    check(S, "IMPORT 1 record + 1 row", (n_rec, n_app, n_unch) == (1, 1, 0), (n_rec, n_app, n_unch))
    log.append((s_imp, "import+outcomes", [imp_rec]))
    p2 = uuid.uuid4()
    s, _, pr = w.create({"person_id": p2, "title": "purge me"})
    log.append((s, "create", [pr]))
    s, n = w.purge_person(p2)
    log.append((s, "purge", [pr["id"]]))
    seqs = [x[0] for x in log]
    check(S, "write sequences strictly ascend by 1", seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs)

    # subscribe from the beginning with small credit
    f = conn(TEN)
    sub = f.subscribe(start_now=False, sequence=0, credit=3)
    check(S, "SUBSCRIBE answer", sub["after_sequence"] == 0 and sub["tenant_sequence"] == seqs[-1] and
          sub["oldest_sequence"] == 0 and sub["max_batch_changes"] == 1024, sub)
    chs, th, frames = collect(f, 3)
    check(S, "credit 3 -> exactly 3 changes first", [c["sequence"] for c in chs] == seqs[:3], frames)
    quiet, extra = expect_silence(f, 1.0)
    check(S, "no more changes without credit", quiet, extra)
    check(S, "PING answered on feed connection", f.ping(b"feedping") == b"feedping")
    f.feed_credit(100)
    chs2, th2, frames = collect(f, len(seqs) - 3)
    allch = chs + chs2
    check(S, "all changes delivered in sequence order", [c["sequence"] for c in allch] == seqs,
          [c["sequence"] for c in allch])
    check(S, "through_sequence = last change", th2 == seqs[-1], th2)
    kinds = [[p["kind"] for p in c["parts"]] for c in allch]
    check(S, "part kinds", kinds == [["create"], ["create"], ["patch"], ["delete"], ["restore"], ["outcomes"],
                                     ["import", "outcomes"], ["create"], ["purge"]], kinds)
    ok = True
    for (s, kind, payload), ch in zip(log, allch):
        parts = ch["parts"]
        if kind in ("create", "patch", "delete", "restore"):
            ok &= parts[0]["records"] == payload
        if kind == "import+outcomes":
            ok &= [r["id"] for r in parts[0]["records"]] == [imp_rec["id"]] and \
                parts[0]["records"][0]["title"] == "imported" and \
                parts[1]["rows"][0]["entity"]["learning_outcome_id"] == "78"
        if kind == "outcomes":
            ok &= parts[0]["rows"][0]["kind"] == "learning_outcome" and \
                parts[0]["rows"][0]["entity"]["learning_outcome_id"] == "77"
        if kind == "purge":
            ok &= parts[0]["record_ids"] == payload
    check(S, "each change carries the record after it (equal to the write's reply)", ok)
    check(S, "timestamps non-decreasing", all(allch[i]["timestamp"] <= allch[i + 1]["timestamp"]
                                              for i in range(len(allch) - 1)))
    # live change
    s_live, _, rl = w.create({"person_id": person, "title": "live"})
    chs3, th3, _ = collect(f, 1)
    check(S, "live write arrives", len(chs3) == 1 and chs3[0]["sequence"] == s_live and
          chs3[0]["parts"][0]["records"] == [rl], chs3)
    # heartbeat
    f.sock.settimeout(8)
    t0 = time.monotonic()
    try:
        thb, chb = f.read_feed_events()
        check(S, "heartbeat (count 0) within ~5 s of silence", chb == [] and thb == s_live and
              time.monotonic() - t0 < 7.5, (thb, chb, time.monotonic() - t0))
    except socket.timeout:
        check(S, "heartbeat (count 0) within ~5 s of silence", False, "nothing in 8 s")
    # a non-feed request on a feed connection: BAD_FRAME and close
    f.send_frame(GET, os.urandom(16))
    res = read_one(f)
    while res[0] == "ok" and res[1] == FEED_EVENTS:
        res = read_one(f)
    check(S, "GET on feed connection -> BAD_FRAME then close",
          res[0] == "err" and res[1].code == 100 and is_closed(f), res)
    f.close()

    # resume from the middle
    mid = seqs[3]
    f = conn(TEN)
    sub = f.subscribe(sequence=mid, credit=1000)
    check(S, "resume: after_sequence = requested", sub["after_sequence"] == mid, sub)
    chs, th, _ = collect(f, len(seqs) - 4 + 1)
    check(S, "resume continues right after the sequence", [c["sequence"] for c in chs] == seqs[4:] + [s_live],
          [c["sequence"] for c in chs])
    f.close()
    # resume at the very end: nothing, then the next write
    f = conn(TEN)
    sub = f.subscribe(sequence=s_live, credit=10)
    quiet, extra = expect_silence(f, 0.5)
    check(S, "resume at tenant sequence: no old changes", quiet, extra)
    f.close()
    # from now
    f = conn(TEN)
    sub = f.subscribe(start_now=True, sequence=12345, credit=10)
    check(S, "start=1 (now): after_sequence = tenant_sequence", sub["after_sequence"] == sub["tenant_sequence"] == s_live,
          sub)
    s_now, _, rn = w.create({"person_id": person, "title": "after now"})
    chs, _, _ = collect(f, 1)
    check(S, "from-now subscriber gets next write only", [c["sequence"] for c in chs] == [s_now], chs)
    f.close()

    # errors of SUBSCRIBE: connection stays ordinary
    f = conn(TEN)
    expect_error(S, "SUBSCRIBE beyond tenant sequence -> VALIDATION(sequence)",
                 lambda: f.subscribe(sequence=10 ** 6, credit=1), 301, "sequence")
    f.subscription = None
    check(S, "after failed SUBSCRIBE the connection is ordinary (GET works)", f.get(rn["id"]) == rn)
    expect_error(S, "SUBSCRIBE credit 0 -> BAD_FRAME", lambda: f.subscribe(sequence=0, credit=0), 100)
    f.subscription = None
    expect_error(S, "SUBSCRIBE start 2 -> BAD_FRAME",
                 lambda: f.call(SUBSCRIBE, Writer().u8(2).u64(0).u32(1).getvalue()), 100)
    check(S, "ordinary connection still answers", pings_ok(f))
    f.close()
    nos = conn(TEN, scope="records:write")
    expect_error(S, "SUBSCRIBE without read scope -> FORBIDDEN", lambda: nos.subscribe(credit=1), 202)
    nos.close()

    # scope filtering: outcomes:read only sees outcome parts; records-only changes move through_sequence
    f = conn(TEN, scope="outcomes:read")
    sub = f.subscribe(sequence=0, credit=100)
    chs, th, frames = collect(f, 2, timeout=5)
    check(S, "outcomes:read subscriber sees only outcome parts",
          [[p["kind"] for p in c["parts"]] for c in chs] == [["outcomes"], ["outcomes"]], chs)
    f.sock.settimeout(3)
    try:
        while th is None or th < s_now:
            th, more = f.read_feed_events()
            chs += more
    except socket.timeout:
        pass
    check(S, "through_sequence moves past invisible changes", th == s_now, (th, s_now))
    f.close()

    # app-scoped subscriber: only its app's records; purges listed anyway
    a = conn(TEN, app_id="fa", scope="records:read records:write admin")
    s_app, _, ra = a.create({"person_id": person, "title": "app rec"})
    pa = uuid.uuid4()
    _, _, _ = w.create({"person_id": pa, "title": "tenant-level rec to purge"})
    s_pg, _ = w.purge_person(pa)
    f = conn(TEN, app_id="fa", scope="records:read")
    f.subscribe(sequence=s_now, credit=100)
    chs, th, _ = collect(f, 2, timeout=5)
    check(S, "app subscriber: own create + (foreign) purge ids, not the other create",
          [(c["sequence"], c["parts"][0]["kind"]) for c in chs] == [(s_app, "create"), (s_pg, "purge")], chs)
    f.close()
    a.close()

    # frames on a feed connection: at most 1024 bytes; a second SUBSCRIBE is refused
    f = conn(TEN)
    f.subscribe(start_now=True, credit=10)
    f.send_raw(frame(FEED_CREDIT, b"\x01\x00\x00\x00" + b"\x00" * 1100, 5))
    res = read_one(f)
    check(S, "feed connection frame > 1024 bytes -> FRAME_TOO_LARGE (opcode 0, rid 0), close",
          res[0] == "err" and res[1].code == 101 and res[1].opcode == 0 and is_closed(f), res)
    f.close()
    f = conn(TEN)
    f.subscribe(start_now=True, credit=10)
    f.send_frame(SUBSCRIBE, Writer().u8(1).u64(0).u32(1).getvalue(), 9)
    res = read_one(f)
    check(S, "second SUBSCRIBE on a feed connection -> BAD_FRAME, close",
          res[0] == "err" and res[1].code == 100 and is_closed(f), res)
    f.close()
    # per-tenant subscription limit (default 16)
    subs = []
    try:
        for i in range(16):
            x = conn("subs-limit")
            x.subscribe(start_now=True, credit=1)
            subs.append(x)
        x = conn("subs-limit")
        e = expect_error(S, "17th subscription of a tenant -> OVERLOADED", lambda: x.subscribe(start_now=True, credit=1), 406)
        if e is not None:
            note("OVERLOADED for the subscription limit carries opcode 0x%02x rid %d (section 2 says OVERLOADED "
                 "frames carry opcode 0 / rid 0)" % (e.opcode, e.request_id))
        check(S, "... and the connection is closed", is_closed(x))
        x.close()
    finally:
        for x in subs:
            x.close()

    # tenant_restore part
    snap = w.snapshot(force=True)
    check(S, "SNAPSHOT written", snap["written"] and snap["file"].startswith("tenants/%s/snapshot-" % TEN), snap)
    rep = w.restore_tenant(dry_run=True, sequence=seqs[1])
    check(S, "RESTORE_TENANT dry run report", rep["dry_run"] and rep["restored"]["sequence"] == seqs[1] and
          rep["before"]["sequence"] == s_pg, rep)
    f = conn(TEN)
    f.subscribe(sequence=s_pg, credit=10)
    rep = w.restore_tenant(sequence=seqs[1])
    chs, th, _ = collect(f, 1)
    check(S, "RESTORE_TENANT -> tenant_restore part at new_sequence",
          len(chs) == 1 and chs[0]["sequence"] == rep["new_sequence"] and
          chs[0]["parts"] == [{"kind": "tenant_restore"}], (rep, chs))
    recs = w.list_all(0, include_deleted=True)
    check(S, "after restore to seq 2 the tenant holds 3 records", len(recs) == 3, len(recs))
    f.close()
    w.close()
    return seqs


# ----------------------------------------------------------------------------------------------
# 6. errors and connection handling

def test_errors():
    section("errors and connection handling")
    S = "errors"
    good = tok("acme")

    # unknown opcode after AUTH
    c = raw_conn(token=good)
    for op in (0x19, 0x30, 0x48, 0x83, 0xA3, 0xB0, 0xF0, 0xFF):
        expect_error(S, "opcode 0x%02x after AUTH -> UNKNOWN_OPCODE" % op, lambda op=op: c.call(op, b""), 103)
    check(S, "connection open after unknown opcodes (PING)", pings_ok(c))
    # malformed payloads
    expect_error(S, "GET with 15-byte payload -> BAD_FRAME", lambda: c.call(GET, b"\x00" * 15), 100)
    expect_error(S, "HELLO after AUTH -> BAD_FRAME", lambda: c.call(HELLO, Writer().u16(1).u16(1).string("x").getvalue()), 100)
    expect_error(S, "PING of 65 bytes -> BAD_FRAME", lambda: c.call(PING, b"x" * 65), 100)
    rid = c.send_frame(PING, b"f", flags=0x02)
    res = read_one(c)
    check(S, "request flags != 0 -> BAD_FRAME echoing opcode/id", res[0] == "err" and res[1].code == 100 and
          res[1].opcode == PING and res[1].request_id == rid, res)
    check(S, "connection open after malformed payloads (PING)", pings_ok(c))
    c.close()

    # before AUTH
    c = raw_conn()
    expect_error(S, "GET before AUTH -> UNAUTHENTICATED", lambda: c.call(GET, b"\x00" * 16), 200)
    expect_error(S, "unknown opcode before AUTH -> UNAUTHENTICATED", lambda: c.call(0x30, b""), 200)
    expect_error(S, "INFO before AUTH -> UNAUTHENTICATED", lambda: c.call(INFO, b""), 200)
    expect_error(S, "second HELLO before AUTH -> BAD_FRAME",
                 lambda: c.call(HELLO, Writer().u16(1).u16(1).string("x").getvalue()), 100)
    check(S, "PING before AUTH still works", pings_ok(c))
    c.auth(good)
    check(S, "AUTH after the refusals works", pings_ok(c) and c.get is not None)
    c.close()

    # bad tokens; third failed AUTH closes
    c = raw_conn()
    expect_error(S, "bad signature -> UNAUTHENTICATED", lambda: c.auth(mint_hs256(b"wrong", "acme")), 200)
    expect_error(S, "alg none -> UNAUTHENTICATED", lambda: c.auth(mint_hs256(SECRET, "acme", header={"alg": "none"})), 200)
    check(S, "open after 2 failed AUTHs", pings_ok(c))
    expect_error(S, "3rd failed AUTH (garbage) -> UNAUTHENTICATED", lambda: c.auth("not.a.jwt"), 200)
    check(S, "connection closed after 3rd failed AUTH", is_closed(c))
    c.close()
    for name, t, code in [
            ("kid on HS256", mint_hs256(SECRET, "acme", header={"alg": "HS256", "kid": "k1"}), 200),
            ("crit header", mint_hs256(SECRET, "acme", header={"alg": "HS256", "crit": ["exp"]}), 200),
            ("missing sub", mint_hs256(SECRET, "acme", extra={"sub": None}), 200),
            ("tenant with space", mint_hs256(SECRET, "a b"), 200),
            ("exp as string", mint_hs256(SECRET, "acme", exp="9999999999"), 200),
            ("nbf in future", mint_hs256(SECRET, "acme", extra={"nbf": time.time() + 3600}), 200),
            ("expired", mint_hs256(SECRET, "acme", exp=int(time.time()) - 60), 201),
            ("token of 8193 bytes", "a" * 8193, 100)]:
        c = raw_conn()
        expect_error(S, "AUTH %s -> %s" % (name, ERROR_NAMES[code]), lambda: c.auth(t), code)
        check(S, "AUTH %s: connection stays open" % name, pings_ok(c))
        c.close()
    # duplicate member in header / claims
    hdr = lc._b64url(b'{"alg":"HS256","alg":"HS256"}')
    pl = lc._b64url(json.dumps({"tenant_id": "acme", "sub": str(uuid.uuid4()), "exp": int(time.time()) + 60}).encode())
    import hmac as _h, hashlib as _hl
    t = hdr + "." + pl + "." + lc._b64url(_h.new(SECRET, (hdr + "." + pl).encode(), _hl.sha256).digest())
    c = raw_conn()
    expect_error(S, "AUTH header with repeated member -> UNAUTHENTICATED", lambda: c.auth(t), 200)
    c.close()

    # re-AUTH
    c = raw_conn(token=good)
    _, _, rec = c.create({"person_id": uuid.uuid4(), "title": "reauth"})
    expect_error(S, "re-AUTH other tenant -> FORBIDDEN", lambda: c.auth(tok("other-tenant")), 202)
    check(S, "identity kept after refused re-AUTH", c.get(rec["id"]) == rec)
    ident = c.auth(tok("acme", scope="records:read"))
    check(S, "re-AUTH same tenant works", ident["scopes"] == ["records:read"])
    c.close()

    # token expiry on an open connection (server runs with --jwt-leeway 0)
    exp = time.time() + 1.5
    c = raw_conn(token=tok("acme", exp=exp))
    f = raw_conn(token=tok("acme", exp=exp))
    f.subscribe(start_now=True, credit=10)
    check(S, "GET works before exp", c.get(rec["id"]) == rec)
    time.sleep(max(0.0, exp - time.time()) + 0.3)
    expect_error(S, "request after exp -> TOKEN_EXPIRED", lambda: c.get(rec["id"]), 201)
    check(S, "PING works with an expired token", pings_ok(c))
    c.auth(good)
    check(S, "re-AUTH with fresh token on the same connection", c.get(rec["id"]) == rec)
    c.close()
    f.sock.settimeout(8)
    res = read_one(f)
    while res[0] == "ok" and res[1] == FEED_EVENTS:
        res = read_one(f)
    check(S, "running subscription ends with TOKEN_EXPIRED (opcode SUBSCRIBE) and close",
          res[0] == "err" and res[1].code == 201 and res[1].opcode == SUBSCRIBE and
          res[1].request_id == f.subscription and is_closed(f), res)
    f.close()

    # first frame not HELLO
    c = raw_conn(hello=False)
    rid = c.send_frame(PING, b"")
    res = read_one(c)
    check(S, "first frame not HELLO -> BAD_FRAME echoing opcode/id, close",
          res[0] == "err" and res[1].code == 100 and res[1].opcode == PING and res[1].request_id == rid and
          is_closed(c), res)
    c.close()
    c = raw_conn(hello=False)
    c.send_frame(HELLO, b"\x01\x00")
    res = read_one(c)
    check(S, "malformed HELLO -> BAD_FRAME, close", res[0] == "err" and res[1].code == 100 and is_closed(c), res)
    c.close()
    c = raw_conn(hello=False)
    expect_error(S, "HELLO with no common version -> UNSUPPORTED_VERSION",
                 lambda: c.hello(2, 9), 102)
    check(S, "closed after UNSUPPORTED_VERSION", is_closed(c))
    c.close()

    # frame sizes before AUTH: 16 KiB counted with the length field
    c = raw_conn()
    tok_len = 16384 - 4 - 6 - 2   # 2-byte varint
    payload = Writer().string("a" * tok_len).getvalue()
    c.send_raw(frame(AUTH, payload, 77))
    res = read_one(c)
    check(S, "pre-AUTH frame of exactly 16384 bytes is read (AUTH -> BAD_FRAME: token > 8192)",
          res[0] == "err" and res[1].code == 100 and res[1].request_id == 77, res)
    check(S, "... and the connection stays open", pings_ok(c))
    c.close()
    c = raw_conn()
    c.send_raw(struct.pack("<I", 16385 - 4) + bytes([AUTH, 0]) + struct.pack("<I", 78))
    res = read_one(c)
    check(S, "pre-AUTH frame of 16385 bytes -> FRAME_TOO_LARGE opcode 0 rid 0, close",
          res[0] == "err" and res[1].code == 101 and res[1].opcode == 0 and res[1].request_id == 0 and is_closed(c), res)
    c.close()
    # after AUTH: max_frame_bytes
    c = raw_conn(token=good)
    mfb = c.max_frame_bytes
    c.send_raw(struct.pack("<I", mfb - 4 + 1) + bytes([PING, 0]) + struct.pack("<I", 79))
    res = read_one(c)
    check(S, "frame of max_frame_bytes+1 -> FRAME_TOO_LARGE opcode 0 rid 0, close",
          res[0] == "err" and res[1].code == 101 and res[1].opcode == 0 and res[1].request_id == 0 and is_closed(c), res)
    c.close()
    c = raw_conn(token=good)
    c.sock.settimeout(60)
    c.send_raw(frame(PING, b"\x00" * (mfb - 10), 80))
    res = read_one(c)
    check(S, "frame of exactly max_frame_bytes is read (PING > 64 -> BAD_FRAME, open)",
          res[0] == "err" and res[1].code == 100 and res[1].request_id == 80, res)
    check(S, "... and the connection stays open", pings_ok(c))
    c.close()
    # length < 6, with requests pipelined before it
    c = raw_conn(token=good)
    c.send_raw(frame(PING, b"a", 81) + frame(PING, b"b", 82) + struct.pack("<I", 5) + b"\x00" * 5)
    r1, r2, r3 = read_one(c), read_one(c), read_one(c)
    check(S, "length 5: earlier requests answered first, then BAD_FRAME opcode 0 rid 0, close",
          r1[0] == "ok" and r1[2] == 81 and r2[0] == "ok" and r2[2] == 82 and r3[0] == "err" and r3[1].code == 100 and
          r3[1].opcode == 0 and r3[1].request_id == 0 and is_closed(c), (r1, r2, r3))
    c.close()

    # handshake timeout
    c = raw_conn()
    c.sock.settimeout(HANDSHAKE_TIMEOUT + 5)
    t0 = time.monotonic()
    res = read_one(c)
    el = time.monotonic() - t0
    check(S, "no AUTH within handshake timeout -> TIMEOUT opcode 0 rid 0, close",
          res[0] == "err" and res[1].code == 405 and res[1].opcode == 0 and res[1].request_id == 0 and
          is_closed(c) and el < HANDSHAKE_TIMEOUT + 2, (res, el))
    c.close()

    # requests pipelined behind HELLO and AUTH run under the AUTH's outcome (section 3, step 3)
    c = raw_conn(hello=False)
    c.send_raw(frame(HELLO, Writer().u16(1).u16(1).string("pipe").getvalue(), 1) +
               frame(AUTH, Writer().string(good).getvalue(), 2) + frame(GET, rec["id"], 3) +
               frame(AUTH, Writer().string("bad.token.x").getvalue(), 4) + frame(GET, rec["id"], 5))
    res = [read_one(c) for _ in range(5)]
    check(S, "HELLO+AUTH+GET pipelined in one write: GET runs authenticated; a failed re-AUTH keeps identity",
          [x[0] for x in res] == ["ok", "ok", "ok", "err", "ok"] and res[3][1].code == 200, res)
    c.close()

    check(S, "server still answers PING on a new connection", server_answers_ping())


def test_feed_truncated():
    """A second server with --feed-retention 0 and 1 MiB WAL segments, so a snapshot lets the
    server drop the first segment; SUBSCRIBE from 0 must then get FEED_TRUNCATED + u64 oldest_sequence."""
    global SRV
    section("FEED_TRUNCATED (second server: --feed-retention 0 --wal-segment-bytes 1048576)")
    S = "feed-truncated"
    main_srv = SRV
    SRV = Server(["--feed-retention", "0", "--wal-segment-bytes", "1048576"])
    try:
        SRV.start()
        c = conn("trunc")
        for i in range(8):
            c.create_batch([{"person_id": uuid.uuid4(), "title": "t", "provider": "p" * 256,
                             "certification_ref": "c" * 512} for _ in range(200)])
        segs_before = c.info()["storage"].get("wal_segments")
        snap = c.snapshot(force=True)
        segs_after = c.info()["storage"].get("wal_segments")
        check(S, "snapshot let the server remove a WAL segment", snap["written"] and segs_after < segs_before,
              (segs_before, segs_after))
        f = conn("trunc")
        e = expect_error(S, "SUBSCRIBE after 0 -> FEED_TRUNCATED", lambda: f.subscribe(sequence=0, credit=10), 303)
        oldest = e.oldest_sequence if isinstance(e, ServerError) else None
        check(S, "FEED_TRUNCATED body followed by u64 oldest_sequence", oldest is not None and 0 < oldest <= 8 and
              len(e.extra) == 8, (oldest, getattr(e, "extra", None)))
        f.subscription = None
        check(S, "refused SUBSCRIBE leaves the connection open", pings_ok(f))
        sub = f.subscribe(sequence=oldest, credit=100)
        check(S, "SUBSCRIBE after oldest_sequence works", sub["oldest_sequence"] == oldest, sub)
        chs, th, _ = collect(f, 8 - oldest)
        check(S, "... and delivers the changes after it", [x["sequence"] for x in chs] == list(range(oldest + 1, 9)),
              [x["sequence"] for x in chs])
        f.close()
        c.close()
        check(S, "second server alive", SRV.alive())
    finally:
        SRV.stop()
        if not [r for r in RESULTS if not r[2] and r[0] == S]:
            shutil.rmtree(SRV.dir, ignore_errors=True)
        SRV = main_srv


# ----------------------------------------------------------------------------------------------

def main():
    global SRV
    SRV = Server()
    ok = False
    try:
        test_worked_examples()
        SRV.start()
        print("server on %s:%d, data %s" % (HOST, SRV.port, SRV.data))
        for t in (test_handshake, test_records, test_check_order, test_outcomes, test_feed, test_errors):
            try:
                t()
            except Exception as e:  # noqa: BLE001
                traceback.print_exc()
                check(t.__name__, "ran to completion", False, "%s: %s" % (type(e).__name__, e))
            if not SRV.alive():
                check(t.__name__, "server process alive", False, "exit code %s" % SRV.proc.returncode)
                break
        check("server", "still alive at the end", SRV.alive())
        check("server", "answers PING at the end", server_answers_ping())
        try:
            test_feed_truncated()
        except Exception as e:  # noqa: BLE001
            traceback.print_exc()
            check("test_feed_truncated", "ran to completion", False, "%s: %s" % (type(e).__name__, e))
    finally:
        SRV.stop()
        log = SRV.log()
        bad = [l for l in log.splitlines() if " error " in l or "critical" in l or "Fatal" in l]
        if bad:
            print("\nserver log lines at error level:")
            for l in bad[:30]:
                print("  " + l)
        failed = [r for r in RESULTS if not r[2]]
        print("\n%d checks, %d failed" % (len(RESULTS), len(failed)))
        for sct, name, _, detail in failed:
            print("  FAIL %s: %s -- %s" % (sct, name, str(detail)[:400]))
        ok = not failed
        if ok:
            shutil.rmtree(SRV.dir, ignore_errors=True)
        else:
            print("server log and data kept in %s" % SRV.dir)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
