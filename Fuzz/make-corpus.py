#!/usr/bin/env python3
"""Writes the seed corpora in Fuzz/Corpus/<harness>/ from the golden files and the worked hex examples
of docs/PROTOCOL.md, in each harness's input format (see the harness sources). Run from anywhere:
    python3 Fuzz/make-corpus.py
"""
import hashlib
import json
import pathlib
import re
import struct
import subprocess

root = pathlib.Path(__file__).resolve().parent.parent
corpus = root / "Fuzz" / "Corpus"
protocol_golden = root / "Tests" / "LearnStoreProtocolTests" / "Golden"
persistence_golden = root / "Tests" / "LearnStorePersistenceTests" / "Golden"

# Selector bytes of Fuzz/Sources/FuzzRequestDecoders (index into its `decoders` table).
REQUEST_SELECTOR = {0x01: 0, 0x02: 1, 0x10: 2, 0x11: 3, 0x12: 4, 0x14: 4, 0x15: 4, 0x13: 5, 0x16: 6, 0x17: 7,
                    0x40: 8, 0x41: 9, 0x42: 10, 0x43: 11, 0x44: 12, 0x45: 13, 0x46: 14, 0x47: 15,
                    0x80: 16, 0x81: 17, 0x82: 18}
RESPONSE_SELECTOR = {0x01: 19, 0x02: 20, 0x12: 22, 0x10: 23, 0x11: 24, 0x17: 27, 0x40: 28, 0x41: 29, 0x42: 30,
                     0x43: 31, 0x44: 32, 0x45: 33, 0x46: 34, 0x47: 35, 0x81: 36, 0x82: 37, 0x80: 38}
ERROR_SELECTOR = 21


def hex_lines(lines):
    """Leading hex byte pairs of each line (the rest of a line is its explanation)."""
    out = bytearray()
    for line in lines:
        line = line.split("#", 1)[0]
        for token in line.split():
            if re.fullmatch(r"[0-9a-fA-F]{2}", token):
                out.append(int(token, 16))
            else:
                break
    return bytes(out)


def frames():
    """(name, is_request, frame bytes) of every golden frame and every complete worked example."""
    found = []
    for path in sorted(protocol_golden.iterdir()):
        data = path.read_bytes() if path.suffix == ".bin" else hex_lines(path.read_text().splitlines())
        found.append((path.stem, "request" in path.stem, data))
    text = (root / "docs" / "PROTOCOL.md").read_text()
    for match in re.finditer(r"\*\*Example ([A-Z]-\d+): ([^*]+)\*\*[^`]*?```\n(.*?)```", text, re.S):
        block = match.group(3)
        if "..." in block:
            continue  # abbreviated in the document
        data = hex_lines(block.splitlines())
        if len(data) >= 10 and struct.unpack_from("<I", data)[0] + 4 == len(data):
            found.append(("example-" + match.group(1), "request" in match.group(2).lower(), data))
    return found


def varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def write(harness, data):
    directory = corpus / harness
    directory.mkdir(parents=True, exist_ok=True)
    (directory / hashlib.sha1(data).hexdigest()).write_bytes(data)


def seed_events():
    source = (root / "Tests" / "CanvasOutcomesTests" / "SeedPayloads.swift").read_text()
    return [json.dumps(json.loads(body), separators=(",", ":")).encode() for body in re.findall(r'#"""\n(.*?)\n"""#', source, re.S)]


def wal_records(segment):
    """Bodies of the records of a WAL segment (commit markers skipped)."""
    offset, bodies = 64, []
    while offset + 8 <= len(segment):
        length, = struct.unpack_from("<I", segment, offset)
        if length == 0:
            break
        body_length = length & 0x7FFFFFFF
        if not length & 0x80000000:
            bodies.append(segment[offset + 8:offset + 8 + body_length])
        offset += 8 + body_length
    return bodies


def snapshot_stream(snapshot):
    header_length, = struct.unpack_from("<I", snapshot, 12)
    uncompressed, compressed, _ = struct.unpack_from("<III", snapshot, header_length)
    block = snapshot[header_length + 12:header_length + 12 + compressed]
    return subprocess.run(["zstd", "-d", "-c"], input=block, stdout=subprocess.PIPE, check=True).stdout


def main():
    all_frames = frames()
    requests = [f for f in all_frames if f[1]]
    for _, is_request, data in all_frames:
        write("frame-decoder", b"\x00" + data)
        opcode, flags = data[4], data[5]
        selector = ERROR_SELECTOR if flags & 1 else (REQUEST_SELECTOR if is_request else RESPONSE_SELECTOR).get(opcode)
        if selector is not None:
            write("request-decoders", bytes([selector]) + data[10:])
    write("frame-decoder", b"\x07" + b"".join(d for _, _, d in requests))
    session = [d for name, _, d in requests if d[4] not in (0x01, 0x02)]
    for data in session:
        write("server-session", data)
    write("server-session", b"".join(session))
    # GET, PATCH (title) and DELETE of the first of the four records every session starts with.
    first = struct.pack(">QQ", (1704067100001 << 16) | 0, 1)
    get = struct.pack("<IBBI", 6 + 16, 0x12, 0, 20) + first
    write("server-session", get)
    write("server-session", struct.pack("<IBBI", 6 + 16, 0x14, 0, 21) + first + get)

    events = seed_events()
    for event in events:
        write("json-parsers", b"\x02" + event)
        write("request-decoders", bytes([8]) + varint(1) + varint(len(event)) + event)
    record = {"id": "lr_01JXT21Q0038NKRKAYDXR834N3", "tenant_id": "acme", "app_id": None,
              "created_at": "2025-06-15T15:06:40.000Z", "updated_at": "2025-06-15T15:06:40.000Z",
              "created_by": None, "updated_by": None, "source": "edm", "source_type": "api", "is_deleted": False,
              "deleted_at": None, "deleted_by": None, "schema_version": 1,
              "person_id": "5f0c1e2a-7b3d-4c9e-9a1b-000000000042", "title": "AWS SAA", "provider": "AWS",
              "completed_at": "2025-06-15T00:00:00.000Z", "expires_at": None, "score": 88.5, "passed": True,
              "certification_ref": None, "linked_cohort_id": None, "linked_assessment_id": None}
    write("json-parsers", b"\x00" + json.dumps(record).encode())
    body = {k: record[k] for k in ("person_id", "title", "provider", "completed_at", "score", "passed")}
    write("json-parsers", b"\x01" + json.dumps(body).encode())
    write("json-parsers", b"\x03" + json.dumps({"kind": "learning_outcome", "tombstone": {
        "key": "12", "record_time": "2024-01-01T00:00:00.000Z", "event_time": None,
        "digest": "00000000000000ab:00000000000000cd"}}).encode())
    write("json-parsers", b"\x04" + b'{"a":[1,-2.5e3,true,null,"\\u00e9\\n"],"b":{}}')

    claims = {"tenant_id": "acme", "sub": "0b6d8a3e-2f41-4c7a-8e15-3d9c00a1b2c4",
              "scope": "records:read records:write", "exp": 1893456000, "iat": 1750000000, "nbf": 1750000000,
              "aud": "learnstore", "iss": "https://issuer.example", "app_id": "app"}
    write("token-verifier", b"\x01" + json.dumps(claims).encode())
    write("token-verifier", b"\x05" + json.dumps(claims).encode())
    write("token-verifier", b"\x00" + b'{"alg":"HS256","typ":"JWT"}\x00' + json.dumps(claims).encode())
    write("token-verifier", b"\x03" + b"eyJhbGciOiJIUzI1NiJ9.e30.c2ln")

    segment = (persistence_golden / "wal-v1.log").read_bytes()
    bodies = wal_records(segment)
    write("persistence", b"\x00" + segment)
    write("persistence", b"\x01" + b"".join(struct.pack("<H", len(b)) + b for b in bodies))
    for body in bodies:
        write("persistence", b"\x02" + body)
    snapshot = (persistence_golden / "snapshot-00000000000000000004.lss").read_bytes()
    write("persistence", b"\x03" + snapshot)
    records, = struct.unpack_from("<Q", snapshot, 40)
    write("persistence", b"\x04" + bytes([records]) + struct.pack("<H", 4) + snapshot_stream(snapshot))


if __name__ == "__main__":
    main()
