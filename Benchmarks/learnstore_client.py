#!/usr/bin/env python3
"""A minimal LearnStore client written from docs/PROTOCOL.md alone (HELLO, AUTH, PING, GET, LIST),
used by the benchmark scripts to probe readiness during recovery."""
import socket
import struct

OP_HELLO, OP_AUTH, OP_PING, OP_GET, OP_LIST = 0x01, 0x02, 0x03, 0x12, 0x17
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def varint(n):
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def string(s):
    b = s.encode()
    return varint(len(b)) + b


def record_id_bytes(text):
    """lr_ + 26 Crockford characters -> 16 bytes, big-endian."""
    value = 0
    for ch in text[3:].upper():
        value = value * 32 + CROCKFORD.index(ch)
    return value.to_bytes(16, "big")


def record_id_text(raw):
    value = int.from_bytes(raw, "big")
    chars = []
    for _ in range(26):
        chars.append(CROCKFORD[value & 31])
        value >>= 5
    return "lr_" + "".join(reversed(chars))


class ServerError(Exception):
    def __init__(self, code, name, message, field):
        super().__init__("%s (%d): %s%s" % (name, code, message, " [%s]" % field if field else ""))
        self.code, self.name = code, name


class Client:
    def __init__(self, port, host="127.0.0.1", timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.next_id = 1
        self.buffer = b""

    def close(self):
        self.sock.close()

    def request(self, opcode, payload=b""):
        rid = self.next_id
        self.next_id += 1
        self.sock.sendall(struct.pack("<IBBI", 6 + len(payload), opcode, 0, rid) + payload)
        while True:
            if len(self.buffer) >= 4:
                (length,) = struct.unpack_from("<I", self.buffer)
                if len(self.buffer) >= 4 + length:
                    frame, self.buffer = self.buffer[: 4 + length], self.buffer[4 + length:]
                    _, op, flags, resp_id = struct.unpack_from("<IBBI", frame)
                    body = frame[10:]
                    if resp_id != rid:
                        raise RuntimeError("response id %d for request %d" % (resp_id, rid))
                    if flags & 1:
                        raise ServerError(*self._error(body))
                    return body
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.buffer += chunk

    @staticmethod
    def _read_varint(b, i):
        n = shift = 0
        while True:
            byte = b[i]
            i += 1
            n |= (byte & 0x7F) << shift
            if byte < 0x80:
                return n, i
            shift += 7

    def _error(self, body):
        (code,) = struct.unpack_from("<H", body)
        i = 2
        parts = []
        for _ in range(3):
            n, i = self._read_varint(body, i)
            parts.append(body[i:i + n].decode())
            i += n
        return code, parts[0], parts[1], parts[2]

    def hello(self):
        return self.request(OP_HELLO, struct.pack("<HH", 1, 1) + string("learnstore-py"))

    def auth(self, token):
        return self.request(OP_AUTH, string(token))

    def get(self, record_id_text_value):
        return self.request(OP_GET, record_id_bytes(record_id_text_value))

    def newest_id(self):
        """The id of the newest record (LIST, limit 1, newest first)."""
        body = self.request(OP_LIST, struct.pack("<HI", 1, 0))
        count, i = self._read_varint(body, 0)
        if count == 0:
            return None
        # record: u32 presence bits, then the id (16 bytes) first.
        return record_id_text(body[i + 4:i + 20])


def connect(port, token):
    c = Client(port)
    c.hello()
    c.auth(token)
    return c
