#!/usr/bin/env python3
"""Normal clients' latency and the server's memory while attackers try to exhaust it.

Runs `learnstore bench` (50 connections of GETs) twice against one server: alone, then while
- 64 connections send HELLO and then a frame header announcing 16 MiB plus data, reconnecting
  whenever the server closes them (none of them authenticates), and
- 8 authenticated connections pipeline LIST(limit = 1000) requests without ever reading.
Samples the server's resident memory every 100 ms and prints one JSON line per run and a summary.

usage: attack_load.py --binary .build/release/learnstore [--records 100000] [--seconds 10]
"""
import argparse
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import learnstore_client as lc  # noqa: E402
from learnstore_bench import rss_bytes  # noqa: E402


class Sampler(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0, threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.peak = max(self.peak, rss_bytes(self.pid))
            self.stop.wait(0.1)


def hello_frame():
    payload = struct.pack("<HH", 1, 1) + lc.string("attacker")
    return struct.pack("<IBBI", 6 + len(payload), lc.OP_HELLO, 0, 1) + payload


def unauthenticated_attacker(port, stop, counters):
    """HELLO, then an AUTH header announcing 16 MiB and as much of it as the server takes."""
    chunk = b"A" * 65536
    while not stop.is_set():
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=2)
            s.sendall(hello_frame() + struct.pack("<IBBI", (16 << 20) - 4 - 1, lc.OP_AUTH, 0, 2))
            counters["preauth_connections"] += 1
            while not stop.is_set():
                s.sendall(chunk)
        except OSError:
            pass
        finally:
            try:
                s.close()
            except Exception:
                pass


def non_reading_attacker(port, token, stop, counters):
    """Pipelines LIST(limit = 1000) in 32 KB writes and never reads a response."""
    try:
        c = lc.connect(port, token)
    except Exception as error:  # noqa: BLE001
        print("attacker could not connect: %s" % error, file=sys.stderr)
        return
    s = c.sock
    s.settimeout(0.5)
    payload = struct.pack("<HI", 1000, 0)
    frame_size = 10 + len(payload)
    per_write = 32768 // frame_size
    request_id = 100
    while not stop.is_set():
        frames = bytearray()
        for _ in range(per_write):
            frames += struct.pack("<IBBI", 6 + len(payload), lc.OP_LIST, 0, request_id) + payload
            request_id += 1
        try:
            s.sendall(frames)
            counters["lists_sent"] += per_write
        except socket.timeout:
            continue  # the server stopped reading: exactly what it should do
        except OSError:
            break
    s.close()


def bench(binary, port, secret, seconds, pid, out):
    result = subprocess.run(
        [binary, "bench", "--port", str(port), "--key-file", secret, "-c", "50", "-P", "1",
         "--workload", "get", "--duration", str(seconds), "--server-pid", str(pid), "--json", out],
        capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit("bench failed: %s %s" % (result.stdout, result.stderr))
    with open(out) as f:
        return json.load(f)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=".build/release/learnstore")
    parser.add_argument("--records", type=int, default=100000)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    binary = os.path.abspath(args.binary)
    work = tempfile.mkdtemp(prefix="learnstore-attack-")
    secret = os.path.join(work, "secret")
    with open(secret, "w") as f:
        f.write(os.urandom(32).hex())
    port_file = os.path.join(work, "port")
    server = subprocess.Popen(
        [binary, "serve", "--port", "0", "--port-file", port_file, "--data-dir", os.path.join(work, "data"),
         "--jwt-secret-file", secret, "--metrics-port", "0", "--fsync", "everysec", "--log-level", "error"],
        stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "server.log"), "w"))
    try:
        deadline = time.time() + 30
        while not os.path.exists(port_file) and time.time() < deadline:
            time.sleep(0.05)
        port = int(open(port_file).read().strip())
        empty = rss_bytes(server.pid)
        subprocess.run([binary, "bench", "--port", str(port), "--key-file", secret, "--preload", str(args.records),
                        "--preload-only"], check=True, capture_output=True)
        loaded = rss_bytes(server.pid)
        token = subprocess.run(
            [binary, "token", "mint", "--tenant", "tenant_00000", "--scope", "records:read", "--jwt-secret-file", secret],
            check=True, capture_output=True, text=True).stdout.strip().split()[-1]
        rows = []
        for attacked in (False, True):
            stop = threading.Event()
            counters = {"preauth_connections": 0, "lists_sent": 0}
            threads = []
            if attacked:
                threads += [threading.Thread(target=unauthenticated_attacker, args=(port, stop, counters), daemon=True) for _ in range(64)]
                threads += [threading.Thread(target=non_reading_attacker, args=(port, token, stop, counters), daemon=True) for _ in range(8)]
                for t in threads:
                    t.start()
                time.sleep(2)  # let the attack reach its steady state before measuring
            sampler = Sampler(server.pid)
            sampler.start()
            report = bench(binary, port, secret, args.seconds, server.pid, os.path.join(work, "bench.json"))
            sampler.stop.set()
            sampler.join()
            stop.set()
            for t in threads:
                t.join(timeout=5)
            alive = server.poll() is None
            latency = (report.get("all") or {}).get("latency_ms") or {}
            row = {
                "attacked": attacked, "server_alive": alive,
                "ops_per_second": report.get("ops_per_second"), "errors": report.get("errors"),
                "p50_ms": latency.get("p50"), "p99_ms": latency.get("p99"),
                "rss_empty_mib": round(empty / 2**20, 1), "rss_loaded_mib": round(loaded / 2**20, 1),
                "rss_peak_mib": round(sampler.peak / 2**20, 1),
                "rss_peak_above_data_mib": round((sampler.peak - loaded) / 2**20, 1),
                **counters,
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
            if not alive:
                raise SystemExit("the server died under attack")
        base, attack = rows
        if base["p99_ms"] and attack["p99_ms"]:
            print("p99 under attack / alone: %.2f; peak RSS above the loaded data: %.1f MiB"
                  % (attack["p99_ms"] / base["p99_ms"], attack["rss_peak_above_data_mib"]))
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
