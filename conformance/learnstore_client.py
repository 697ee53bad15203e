"""A small synchronous LearnStore client, written from PROTOCOL.md (version 1) alone.

Standard library only.  One `Connection` is one TCP connection; requests are sent one at a time
(send, then read the answer), except where a method says otherwise.
"""
import base64
import hashlib
import hmac
import json
import socket
import struct
import time as _time
import uuid as _uuid

# ----------------------------------------------------------------------------------------------
# opcodes (section 4, appendices B-D)
HELLO, AUTH, PING, INFO, WAIT_SEQUENCE, TOPOLOGY = 0x01, 0x02, 0x03, 0x04, 0x05, 0x06
CREATE, CREATE_BATCH, GET, PATCH, DELETE, RESTORE, PURGE_PERSON, LIST, STATS = range(0x10, 0x19)
(OUTCOME_INGEST, OUTCOME_GET, OUTCOME_TREE, OUTCOME_RESULTS, OUTCOME_PROFICIENCY, OUTCOME_ROLLUP,
 OUTCOME_STUDENT_ROLLUPS, OUTCOME_AGGREGATES) = range(0x40, 0x48)
SNAPSHOT, RESTORE_TENANT, IMPORT = 0x80, 0x81, 0x82
SUBSCRIBE, FEED_CREDIT, FEED_EVENTS = 0xA0, 0xA1, 0xA2

FLAG_ERROR = 0x01

# error codes (6.2)
ERROR_NAMES = {
    100: "BAD_FRAME", 101: "FRAME_TOO_LARGE", 102: "UNSUPPORTED_VERSION", 103: "UNKNOWN_OPCODE",
    200: "UNAUTHENTICATED", 201: "TOKEN_EXPIRED", 202: "FORBIDDEN",
    300: "NOT_FOUND", 301: "VALIDATION", 302: "CONFLICT", 303: "FEED_TRUNCATED", 304: "LOG_TRUNCATED",
    400: "TOO_MANY_IN_FLIGHT", 401: "LOADING", 402: "STORAGE_UNAVAILABLE", 403: "SHUTTING_DOWN",
    404: "TOO_MANY_CONNECTIONS", 405: "TIMEOUT", 406: "OVERLOADED", 407: "NOT_PRIMARY", 408: "FENCED",
    409: "NOT_YET", 410: "MOVED", 411: "OUTCOME_UNKNOWN", 500: "INTERNAL",
}
CODES = {v: k for k, v in ERROR_NAMES.items()}

SCOPE_BITS = ["records:read", "records:write", "outcomes:read", "outcomes:write", "admin"]

TIME_MIN = -62135596800000
TIME_MAX = 253402300799999

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


# ----------------------------------------------------------------------------------------------
# errors

class ProtocolError(Exception):
    """The server sent something this client cannot decode, or out of order."""


class ConnectionClosed(Exception):
    """End of stream from the server."""


class ServerError(Exception):
    """An error frame (flag bit 0) from the server."""

    def __init__(self, opcode, request_id, code, name, message, field, extra=b""):
        super().__init__("%s (%d) on opcode 0x%02x rid %d: %s [field=%r]"
                         % (name, code, opcode, request_id, message, field))
        self.opcode, self.request_id = opcode, request_id
        self.code, self.name, self.message, self.field = code, name, message, field
        self.extra = extra          # bytes after the error body (FEED_TRUNCATED, MOVED)
        self.oldest_sequence = None
        self.moved = None
        if code == 303 and len(extra) >= 8:
            self.oldest_sequence = struct.unpack_from("<Q", extra)[0]
        if code == 410 and len(extra) >= 12:
            r = Reader(extra)
            self.moved = (r.u32(), r.u64(), r.string())


# ----------------------------------------------------------------------------------------------
# primitive encodings (section 1)

def enc_varint(v):
    if v < 0 or v >= 1 << 64:
        raise ValueError("varint out of range")
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


class Writer:
    def __init__(self):
        self.buf = bytearray()

    def raw(self, b):
        self.buf += b
        return self

    def u8(self, v):
        self.buf += struct.pack("<B", v)
        return self

    def u16(self, v):
        self.buf += struct.pack("<H", v)
        return self

    def u32(self, v):
        self.buf += struct.pack("<I", v)
        return self

    def u64(self, v):
        self.buf += struct.pack("<Q", v)
        return self

    def i64(self, v):
        self.buf += struct.pack("<q", v)
        return self

    def f64(self, v):
        self.buf += struct.pack("<d", v)
        return self

    def bool(self, v):
        return self.u8(1 if v else 0)

    def varint(self, v):
        self.buf += enc_varint(v)
        return self

    def bytes(self, b):
        self.varint(len(b))
        self.buf += b
        return self

    def string(self, s):
        return self.bytes(s.encode("utf-8") if isinstance(s, str) else s)

    def uuid(self, u):
        self.buf += to_uuid(u).bytes
        return self

    def record_id(self, rid):
        self.buf += record_id_bytes(rid)
        return self

    def time(self, ms):
        return self.i64(ms)

    def getvalue(self):
        return bytes(self.buf)


class Reader:
    def __init__(self, data, offset=0):
        self.data = bytes(data)
        self.pos = offset

    def _take(self, n):
        if self.pos + n > len(self.data):
            raise ProtocolError("short payload: need %d bytes at offset %d of %d"
                                % (n, self.pos, len(self.data)))
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def remaining(self):
        return len(self.data) - self.pos

    def rest(self):
        return self._take(self.remaining())

    def done(self):
        if self.pos != len(self.data):
            raise ProtocolError("%d trailing bytes at offset %d" % (len(self.data) - self.pos, self.pos))

    def u8(self):
        return self._take(1)[0]

    def u16(self):
        return struct.unpack("<H", self._take(2))[0]

    def u32(self):
        return struct.unpack("<I", self._take(4))[0]

    def u64(self):
        return struct.unpack("<Q", self._take(8))[0]

    def i64(self):
        return struct.unpack("<q", self._take(8))[0]

    def f64(self):
        return struct.unpack("<d", self._take(8))[0]

    def bool(self):
        b = self.u8()
        if b > 1:
            raise ProtocolError("bool byte %d" % b)
        return b == 1

    def varint(self):
        v = 0
        for i in range(10):
            b = self.u8()
            if i == 9 and b > 1:
                raise ProtocolError("varint overflows 64 bits")
            v |= (b & 0x7F) << (7 * i)
            if not b & 0x80:
                return v
        raise ProtocolError("varint longer than 10 bytes")

    def bytes(self):
        return self._take(self.varint())

    def string(self):
        return self.bytes().decode("utf-8")

    def uuid(self):
        return _uuid.UUID(bytes=self._take(16))

    def record_id(self):
        return self._take(16)

    def time(self):
        return self.i64()

    def opt_time(self):
        p = self.u8()
        if p == 0:
            return None
        if p != 1:
            raise ProtocolError("opt_time present byte %d" % p)
        return self.time()


def to_uuid(u):
    if isinstance(u, _uuid.UUID):
        return u
    if isinstance(u, (bytes, bytearray)):
        return _uuid.UUID(bytes=bytes(u))
    return _uuid.UUID(str(u))


def record_id_str(b):
    """16 ULID bytes -> 'lr_' + 26 Crockford base32 characters."""
    n = int.from_bytes(b, "big")
    return "lr_" + "".join(CROCKFORD[(n >> (5 * (25 - i))) & 31] for i in range(26))


def record_id_bytes(r):
    if isinstance(r, (bytes, bytearray)):
        if len(r) != 16:
            raise ValueError("record id must be 16 bytes")
        return bytes(r)
    s = r[3:] if r.startswith("lr_") else r
    n = 0
    for ch in s.upper():
        n = n * 32 + CROCKFORD.index(ch)
    return n.to_bytes(16, "big")


def now_ms():
    return int(_time.time() * 1000)


# ----------------------------------------------------------------------------------------------
# JWT (HS256), 4.2

def _b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode("ascii")


def mint_hs256(secret, tenant_id, sub=None, scope="records:read records:write outcomes:read outcomes:write admin",
               ttl=3600, app_id=None, extra=None, header=None, exp=None):
    if isinstance(secret, str):
        secret = secret.encode()
    now = _time.time()
    claims = {"tenant_id": tenant_id, "sub": str(sub or _uuid.uuid4()),
              "exp": int(now + ttl) if exp is None else exp, "iat": int(now) - 1}
    if scope is not None:
        claims["scope"] = scope
    if app_id is not None:
        claims["app_id"] = app_id
    if extra:
        claims.update(extra)
    hdr = header or {"alg": "HS256", "typ": "JWT"}
    signing_input = (_b64url(json.dumps(hdr, separators=(",", ":")).encode()) + "." +
                     _b64url(json.dumps(claims, separators=(",", ":")).encode()))
    sig = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
    return signing_input + "." + _b64url(sig)


# ----------------------------------------------------------------------------------------------
# records (4.5)

RECORD_FIELDS = [
    ("id", "record_id"), ("tenant_id", "string"), ("app_id", "string"), ("created_at", "time"),
    ("updated_at", "time"), ("created_by", "uuid"), ("updated_by", "uuid"), ("source", "string"),
    ("source_type", "u8"), ("is_deleted", "bool"), ("deleted_at", "time"), ("deleted_by", "uuid"),
    ("schema_version", "varint"), ("person_id", "uuid"), ("title", "string"), ("provider", "string"),
    ("completed_at", "time"), ("expires_at", "time"), ("score", "f64"), ("passed", "bool"),
    ("certification_ref", "string"), ("linked_cohort_id", "uuid"), ("linked_assessment_id", "uuid"),
]
FIELD_INDEX = {name: i for i, (name, _) in enumerate(RECORD_FIELDS)}
SOURCE_TYPES = ["frontend", "backend", "server", "system", "api"]


def _write_typed(w, typ, v):
    if typ == "source_type_name":
        typ = "u8"
    getattr(w, typ)(v)


def decode_record(r):
    present = r.u32()
    if present >> 23:
        raise ProtocolError("record present bits above 22: 0x%08x" % present)
    rec = {}
    for n, (name, typ) in enumerate(RECORD_FIELDS):
        if present & (1 << n):
            rec[name] = getattr(r, typ)()
        else:
            rec[name] = None
    return rec


def encode_record(w, rec):
    """The full record encoding (used by IMPORT)."""
    present = 0
    for n, (name, _) in enumerate(RECORD_FIELDS):
        if rec.get(name) is not None:
            present |= 1 << n
    w.u32(present)
    for n, (name, typ) in enumerate(RECORD_FIELDS):
        if present & (1 << n):
            _write_typed(w, typ, rec[name])


def encode_body(w, body):
    """body: dict field -> value; value None = explicit null; a missing key = absent."""
    values = nulls = 0
    for name, v in body.items():
        n = FIELD_INDEX[name]
        if v is None:
            nulls |= 1 << n
        else:
            values |= 1 << n
    w.u32(values).u32(nulls)
    for n, (name, typ) in enumerate(RECORD_FIELDS):
        if values & (1 << n):
            _write_typed(w, typ, body[name])


LIST_FILTERS = [
    ("person_id", "uuid"), ("certification_ref", "string"), ("linked_cohort_id", "uuid"),
    ("linked_assessment_id", "uuid"), ("provider", "string"), ("passed", "bool"),
    ("completed_from", "time"), ("completed_before", "time"), ("expires_from", "time"),
    ("expires_before", "time"), ("updated_since", "time"), ("include_deleted", None),
    ("ascending", None), ("cursor", "bytes"),
]


def encode_list_query(w, limit=0, **filters):
    bits = 0
    names = [n for n, _ in LIST_FILTERS]
    for k, v in filters.items():
        if k not in names:
            raise ValueError("unknown filter %s" % k)
        idx = names.index(k)
        typ = LIST_FILTERS[idx][1]
        if typ is None:
            if v:
                bits |= 1 << idx
        elif v is not None:
            bits |= 1 << idx
    w.u16(limit).u32(bits)
    for idx, (name, typ) in enumerate(LIST_FILTERS):
        if bits & (1 << idx) and typ is not None:
            _write_typed(w, typ, filters[name])


# ----------------------------------------------------------------------------------------------
# outcomes (appendix B)

KINDS = {1: "outcome", 2: "group", 3: "link", 4: "result", 5: "proficiency"}
INGEST_STATUS = {0: "applied", 1: "duplicate", 2: "stale", 3: "rejected"}
ROLLUP_METHODS = ("highest", "latest", "average", "n_mastery", "decaying_average", "weighted_average",
                  "standard_decaying_average")


def encode_context(w, ctx):
    ctype, cid = ctx
    w.string(ctype).string(cid)


def encode_rollup_options(w, own_criterion=False, proficiency_context=None, legacy_decay=False,
                          method=None, calculation_int=None):
    flags = 0
    if own_criterion:
        flags |= 1
    if proficiency_context is not None:
        flags |= 2
    if legacy_decay:
        flags |= 4
    if method is not None:
        flags |= 8
    w.u8(flags)
    if proficiency_context is not None:
        encode_context(w, proficiency_context)
    if method is not None:
        w.string(method)
        if calculation_int is None:
            w.u8(0)
        else:
            w.u8(1).i64(calculation_int)


def decode_rating(r):
    rating = {"points": r.f64()}
    present = r.u8()
    if present & ~7:
        raise ProtocolError("rating present bits 0x%02x" % present)
    rating["description"] = r.string() if present & 1 else None
    rating["color"] = r.string() if present & 2 else None
    rating["mastery"] = r.bool() if present & 4 else None
    return rating


def decode_scale_source(r):
    s = r.u8()
    if s == 0:
        return {"kind": "criterion"}
    if s == 1:
        return {"kind": "proficiency", "proficiency_id": r.string()}
    raise ProtocolError("scale_source %d" % s)


def decode_scale(r):
    sc = {"points_possible": r.f64(), "mastery_points": r.f64(), "source": decode_scale_source(r)}
    n = r.varint()
    sc["ratings"] = [decode_rating(r) for _ in range(n)]
    return sc


def decode_rollup(r):
    ro = {"outcome_id": r.string(), "score": r.f64(), "count": r.varint(),
          "latest_assessed_at": r.opt_time(), "mastered": r.bool()}
    has_rating = r.u8()
    ro["rating"] = decode_rating(r) if has_rating == 1 else None
    if has_rating > 1:
        raise ProtocolError("has_rating %d" % has_rating)
    ro["calculation_method"] = r.string()
    ro["scale_source"] = decode_scale_source(r)
    return ro


def decode_aggregate(r):
    ag = {"outcome_id": r.string(), "scale": decode_scale(r), "mean": r.f64(), "median": r.f64(),
          "student_count": r.varint(), "result_count": r.varint(),
          "latest_assessed_at": r.opt_time(), "mastered": r.bool(), "rating": r.varint()}
    ag["students_per_rating"] = [r.varint() for _ in ag["scale"]["ratings"]]
    return ag


# ----------------------------------------------------------------------------------------------
# change feed (appendix D)

PART_TAGS = {1: "create", 2: "patch", 3: "delete", 4: "restore", 5: "import", 6: "put", 7: "purge",
             8: "outcomes", 9: "tenant_restore"}


def decode_change(r):
    ch = {"sequence": r.u64(), "timestamp": r.time(), "parts": []}
    nparts = r.varint()
    for _ in range(nparts):
        tag = r.u8()
        kind = PART_TAGS.get(tag)
        if kind is None:
            raise ProtocolError("unknown feed part tag %d" % tag)
        part = {"kind": kind}
        if tag in (1, 2, 3, 4, 5, 6):
            n = r.varint()
            part["records"] = [decode_record(r) for _ in range(n)]
        elif tag == 7:
            n = r.varint()
            part["record_ids"] = [r.record_id() for _ in range(n)]
        elif tag == 8:
            n = r.varint()
            part["rows"] = [json.loads(r.string()) for _ in range(n)]
        elif tag == 9:
            pass
        ch["parts"].append(part)
    return ch


def decode_feed_events(payload):
    r = Reader(payload)
    through = r.u64()
    count = r.varint()
    changes = [decode_change(r) for _ in range(count)]
    r.done()
    return through, changes


# ----------------------------------------------------------------------------------------------
# the connection

class Connection:
    def __init__(self, host="127.0.0.1", port=7878, timeout=10.0, client_name="pyclient"):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.next_id = 1
        self.client_name = client_name
        self.hello_info = None
        self.identity = None
        self.max_frame_bytes = 16384   # before AUTH (3.1)
        self.subscription = None       # request id of SUBSCRIBE once this is a feed connection
        self.pending_feed = []         # FEED_EVENTS frames read while waiting for something else

    # ---- framing (section 2)
    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def new_id(self):
        rid = self.next_id
        self.next_id = (self.next_id + 1) & 0xFFFFFFFF or 1
        return rid

    def send_raw(self, data):
        self.sock.sendall(data)

    def send_frame(self, opcode, payload=b"", request_id=None, flags=0):
        if request_id is None:
            request_id = self.new_id()
        self.sock.sendall(frame(opcode, payload, request_id, flags))
        return request_id

    def _recv_exact(self, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(min(n - len(buf), 1 << 20))
            if not chunk:
                raise ConnectionClosed("end of stream after %d of %d bytes" % (len(buf), n))
            buf += chunk
        return bytes(buf)

    def recv_frame(self):
        """-> (opcode, flags, request_id, payload)"""
        (length,) = struct.unpack("<I", self._recv_exact(4))
        if length < 6:
            raise ProtocolError("frame length %d < 6" % length)
        if length > 80 * 1024 * 1024 + 64:
            raise ProtocolError("frame length %d too large" % length)
        rest = self._recv_exact(length)
        opcode, flags, request_id = struct.unpack_from("<BBI", rest)
        return opcode, flags, request_id, rest[6:]

    def recv_response(self):
        """Read a frame; raise ServerError when it is an error frame. -> (opcode, rid, payload)"""
        opcode, flags, rid, payload = self.recv_frame()
        if flags & FLAG_ERROR:
            raise decode_error(opcode, rid, payload)
        return opcode, rid, payload

    def call(self, opcode, payload=b""):
        """Send one request and read its answer; returns the response payload."""
        rid = self.send_frame(opcode, payload)
        while True:
            op, flags, got_rid, resp = self.recv_frame()
            if self.subscription is not None and op == FEED_EVENTS and not flags & FLAG_ERROR:
                self.pending_feed.append(resp)
                continue
            break
        if flags & FLAG_ERROR:
            err = decode_error(op, got_rid, resp)
            if got_rid != rid and not (got_rid == 0 and op == 0):
                raise ProtocolError("error for request id %d while waiting for %d: %s" % (got_rid, rid, err))
            raise err
        if got_rid != rid or op != opcode:
            raise ProtocolError("expected answer to opcode 0x%02x rid %d, got opcode 0x%02x rid %d"
                                % (opcode, rid, op, got_rid))
        return resp

    # ---- connection opcodes
    def hello(self, min_version=1, max_version=1, client_name=None):
        w = Writer().u16(min_version).u16(max_version).string(client_name or self.client_name)
        r = Reader(self.call(HELLO, w.getvalue()))
        info = {"version": r.u16(), "server_name": r.string(), "server_version": r.string(),
                "max_frame_bytes": r.u32(), "max_in_flight": r.u32(), "features": r.u64()}
        r.done()
        self.hello_info = info
        return info

    def auth(self, token):
        r = Reader(self.call(AUTH, Writer().string(token).getvalue()))
        ident = {"tenant_id": r.string()}
        has_app = r.u8()
        ident["app_id"] = r.string() if has_app == 1 else None
        ident["person_id"] = r.uuid()
        scopes = r.u32()
        ident["scopes_bits"] = scopes
        ident["scopes"] = [s for i, s in enumerate(SCOPE_BITS) if scopes & (1 << i)]
        ident["expires_at"] = r.time()
        r.done()
        self.identity = ident
        if self.hello_info:
            self.max_frame_bytes = self.hello_info["max_frame_bytes"]
        return ident

    def ping(self, data=b""):
        return self.call(PING, data)

    def info(self):
        return json.loads(self.call(INFO).decode("utf-8"))

    def topology(self):
        return json.loads(self.call(TOPOLOGY).decode("utf-8"))

    def wait_sequence(self, sequence, timeout_ms=1000):
        r = Reader(self.call(WAIT_SEQUENCE, Writer().u64(sequence).u32(timeout_ms).getvalue()))
        v = r.u64()
        r.done()
        return v

    # ---- records
    def create(self, body, idempotency_key=None):
        w = Writer()
        if idempotency_key is None:
            w.u8(0)
        else:
            w.u8(1).string(idempotency_key)
        encode_body(w, body)
        r = Reader(self.call(CREATE, w.getvalue()))
        seq, replayed = r.u64(), r.u8()
        rec = decode_record(r)
        r.done()
        return seq, bool(replayed), rec

    def create_batch(self, bodies, idempotency_key=None):
        w = Writer()
        if idempotency_key is None:
            w.u8(0)
        else:
            w.u8(1).string(idempotency_key)
        w.varint(len(bodies))
        for b in bodies:
            encode_body(w, b)
        r = Reader(self.call(CREATE_BATCH, w.getvalue()))
        seq, replayed = r.u64(), r.u8()
        n = r.varint()
        recs = [decode_record(r) for _ in range(n)]
        r.done()
        return seq, bool(replayed), recs

    def get(self, record_id):
        r = Reader(self.call(GET, record_id_bytes(record_id)))
        rec = decode_record(r)
        r.done()
        return rec

    def patch(self, record_id, body, expected_updated_at=None):
        w = Writer().record_id(record_id)
        if expected_updated_at is None:
            w.u8(0)
        else:
            w.u8(1).time(expected_updated_at)
        encode_body(w, body)
        r = Reader(self.call(PATCH, w.getvalue()))
        seq = r.u64()
        rec = decode_record(r)
        r.done()
        return seq, rec

    def _seq_record(self, opcode, record_id):
        r = Reader(self.call(opcode, record_id_bytes(record_id)))
        seq = r.u64()
        rec = decode_record(r)
        r.done()
        return seq, rec

    def delete(self, record_id):
        return self._seq_record(DELETE, record_id)

    def restore(self, record_id):
        return self._seq_record(RESTORE, record_id)

    def purge_person(self, person_id, dry_run=False):
        r = Reader(self.call(PURGE_PERSON, Writer().uuid(person_id).bool(dry_run).getvalue()))
        seq, count = r.u64(), r.u64()
        r.done()
        return seq, count

    def list(self, limit=0, **filters):
        w = Writer()
        encode_list_query(w, limit, **filters)
        r = Reader(self.call(LIST, w.getvalue()))
        n = r.varint()
        recs = [decode_record(r) for _ in range(n)]
        cursor = r.bytes()
        r.done()
        return recs, cursor

    def list_all(self, limit=0, **filters):
        out, cursor = [], None
        while True:
            f = dict(filters)
            if cursor:
                f["cursor"] = cursor
            recs, cursor = self.list(limit, **f)
            out.extend(recs)
            if not cursor:
                return out

    def stats(self):
        return json.loads(self.call(STATS).decode("utf-8"))

    # ---- outcomes
    def outcome_ingest(self, events):
        w = Writer().varint(len(events))
        for e in events:
            if isinstance(e, (dict, list)):
                e = json.dumps(e, separators=(",", ":")).encode()
            elif isinstance(e, str):
                e = e.encode()
            w.bytes(e)
        r = Reader(self.call(OUTCOME_INGEST, w.getvalue()))
        seq = r.u64()
        n = r.varint()
        items = []
        for _ in range(n):
            st = r.u8()
            item = {"status": INGEST_STATUS.get(st, st)}
            if st in (0, 1, 2):
                item["kind"] = KINDS.get(r.u8())
                item["key"] = r.string()
            elif st == 3:
                item.update(code=r.u16(), name=r.string(), message=r.string(), field=r.string(),
                            reason=r.string())
            else:
                raise ProtocolError("ingest status %d" % st)
            items.append(item)
        r.done()
        return seq, items

    def outcome_get(self, kind, key):
        r = Reader(self.call(OUTCOME_GET, Writer().u8(kind).string(key).getvalue()))
        ent = json.loads(r.string())
        r.done()
        return ent

    def outcome_tree(self, query, arg):
        w = Writer().u8(query)
        if query in (0, 1, 2):
            encode_context(w, arg)
        else:
            w.string(arg)
        r = Reader(self.call(OUTCOME_TREE, w.getvalue()))
        n = r.varint()
        out = [(KINDS.get(r.u8()), json.loads(r.string())) for _ in range(n)]
        r.done()
        return out

    def outcome_results(self, scope, arg, limit=0, cursor=b""):
        w = Writer().u8(scope)
        if scope in (0, 1):
            w.string(arg)
        elif scope == 2:
            encode_context(w, arg)
        elif scope == 3:
            w.string(arg[0]).string(arg[1])
        elif scope == 4:
            w.time(arg[0]).time(arg[1])
        w.u16(limit).bytes(cursor)
        r = Reader(self.call(OUTCOME_RESULTS, w.getvalue()))
        n = r.varint()
        ents = [json.loads(r.string()) for _ in range(n)]
        nxt = r.bytes()
        r.done()
        return ents, nxt

    def outcome_proficiency(self, ctx):
        w = Writer()
        encode_context(w, ctx)
        r = Reader(self.call(OUTCOME_PROFICIENCY, w.getvalue()))
        p = r.u8()
        ent = json.loads(r.string()) if p == 1 else None
        r.done()
        return ent

    def outcome_rollup(self, user_uuid, outcome_id, ctx, **opts):
        w = Writer()
        encode_rollup_options(w, **opts)
        w.string(user_uuid).string(outcome_id)
        encode_context(w, ctx)
        r = Reader(self.call(OUTCOME_ROLLUP, w.getvalue()))
        p = r.u8()
        ro = decode_rollup(r) if p == 1 else None
        r.done()
        return ro

    def outcome_student_rollups(self, user_uuid, ctx, **opts):
        w = Writer()
        encode_rollup_options(w, **opts)
        w.string(user_uuid)
        encode_context(w, ctx)
        r = Reader(self.call(OUTCOME_STUDENT_ROLLUPS, w.getvalue()))
        n = r.varint()
        out = [decode_rollup(r) for _ in range(n)]
        r.done()
        return out

    def outcome_aggregates(self, ctx, **opts):
        w = Writer()
        encode_rollup_options(w, **opts)
        encode_context(w, ctx)
        r = Reader(self.call(OUTCOME_AGGREGATES, w.getvalue()))
        n = r.varint()
        out = [decode_aggregate(r) for _ in range(n)]
        r.done()
        return out

    # ---- admin (appendix C)
    def snapshot(self, force=False):
        r = Reader(self.call(SNAPSHOT, Writer().bool(force).getvalue()))
        res = {"written": r.bool(), "sequence": r.u64(), "records": r.u64(), "bytes": r.u64(),
               "file": r.string()}
        r.done()
        return res

    def restore_tenant(self, dry_run=False, snapshot_sequence=None, sequence=None, time=None):
        opts = (1 if dry_run else 0) | (2 if snapshot_sequence is not None else 0) | \
               (4 if sequence is not None else 0) | (8 if time is not None else 0)
        w = Writer().u8(opts).u64(snapshot_sequence or 0).u64(sequence or 0).time(time or 0)
        r = Reader(self.call(RESTORE_TENANT, w.getvalue()))

        def figures():
            return {"sequence": r.u64(), "records": r.u64(), "deleted_records": r.u64(), "outcome_rows": r.u64()}

        def diff():
            return {"added": r.u64(), "removed": r.u64(), "changed": r.u64()}

        rep = {"dry_run": r.bool(), "has_snapshot": r.bool(), "snapshot_sequence": r.u64(),
               "snapshot_lsn": r.u64(), "wal_records_applied": r.u64(), "last_lsn": r.u64(),
               "before": figures(), "restored": figures(), "new_sequence": r.u64(),
               "records": diff(), "outcome_rows": diff()}
        r.done()
        return rep

    # ---- change feed (appendix D)
    def subscribe(self, start_now=False, sequence=0, credit=256):
        w = Writer().u8(1 if start_now else 0).u64(sequence).u32(credit)
        rid = self.new_id()
        self.send_frame(SUBSCRIBE, w.getvalue(), request_id=rid)
        op, flags, got, payload = self.recv_frame()
        if flags & FLAG_ERROR:
            raise decode_error(op, got, payload)
        if op != SUBSCRIBE or got != rid:
            raise ProtocolError("unexpected answer to SUBSCRIBE: opcode 0x%02x rid %d" % (op, got))
        r = Reader(payload)
        res = {"after_sequence": r.u64(), "tenant_sequence": r.u64(), "oldest_sequence": r.u64(),
               "max_batch_changes": r.u32()}
        r.done()
        self.subscription = rid
        return res

    def feed_credit(self, credit):
        """Never answered."""
        self.send_frame(FEED_CREDIT, Writer().u32(credit).getvalue())

    def read_feed_events(self):
        """-> (through_sequence, [change]).  Raises ServerError for the error frame that ends a
        subscription (FEED_TRUNCATED, TOKEN_EXPIRED, ...)."""
        if self.pending_feed:
            return decode_feed_events(self.pending_feed.pop(0))
        op, flags, rid, payload = self.recv_frame()
        if flags & FLAG_ERROR:
            raise decode_error(op, rid, payload)
        if op != FEED_EVENTS:
            raise ProtocolError("expected FEED_EVENTS, got opcode 0x%02x" % op)
        if rid != self.subscription:
            raise ProtocolError("FEED_EVENTS rid %d, subscription %d" % (rid, self.subscription))
        return decode_feed_events(payload)


def frame(opcode, payload=b"", request_id=0, flags=0):
    return struct.pack("<IBBI", 6 + len(payload), opcode, flags, request_id) + payload


def decode_error(opcode, request_id, payload):
    r = Reader(payload)
    code = r.u16()
    name = r.string()
    message = r.string()
    field = r.string()
    return ServerError(opcode, request_id, code, name, message, field, r.rest())


def connect(host, port, token=None, timeout=10.0, client_name="pyclient"):
    """Connect, HELLO, and AUTH when a token is given."""
    c = Connection(host, port, timeout, client_name)
    try:
        c.hello()
        if token is not None:
            c.auth(token)
    except BaseException:
        c.close()
        raise
    return c
