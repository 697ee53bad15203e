#!/usr/bin/env python3
"""The LearnStore side of the peer comparison: the workloads of the peers kit (PEERS_KIT; 50 connections,
P = 1 and 16) run with `learnstore bench`, plus bulk load, memory, snapshot and restart, on a fresh
data directory per repetition. Writes rows to OUT/learnstore.jsonl.

usage: learnstore_bench.py --binary .build/release/learnstore --out DIR [--reps 3] [--records 1000000] [--seconds 5]
                          [--server-args "--event-loops 1"]
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import learnstore_client  # noqa: E402

ARGS = None
PORT = 17890


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def rss_bytes(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def other_cpu_fraction(seconds=0.5):
    def read():
        with open("/proc/stat") as f:
            parts = [float(x) for x in f.readline().split()[1:]]
        return sum(parts), parts[3] + parts[4]
    t0, i0 = read()
    time.sleep(seconds)
    t1, i1 = read()
    return 1 - (i1 - i0) / max(1e-9, t1 - t0)


class Server:
    def __init__(self, data, fsync="everysec", extra=()):
        self.data = data
        self.log_path = os.path.join(ARGS.out, "server.log")
        self.args = [ARGS.binary, "serve", "--port", str(PORT), "--metrics-port", "0", "--data-dir", data,
                     "--jwt-secret-file", ARGS.secret, "--fsync", fsync] + list(extra) + ARGS.server_args.split()
        self.started = time.monotonic()
        self.logf = open(self.log_path, "a")
        self.proc = subprocess.Popen(self.args, stdout=self.logf, stderr=self.logf)

    def wait_ready(self, token, probe=None, deadline=120):
        """Until a data read finds `probe` (the last record written). Counts LOADING answers and
        answers that miss the probe (partial data)."""
        t0 = self.started
        stats = {"loading_answers": 0, "partial_answers": 0}
        while time.monotonic() - t0 < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited: see " + self.log_path)
            try:
                c = learnstore_client.connect(PORT, token)
                try:
                    if probe:
                        c.get(probe)
                    else:
                        c.newest_id()
                    return time.monotonic() - t0, stats
                except learnstore_client.ServerError as e:
                    if e.name == "LOADING":
                        stats["loading_answers"] += 1
                        stats.setdefault("first_answer_s", time.monotonic() - t0)
                    elif e.name == "NOT_FOUND":
                        stats["partial_answers"] += 1
                    else:
                        raise
                finally:
                    c.close()
            except (ConnectionError, OSError):
                pass
            time.sleep(0.005)
        raise RuntimeError("not ready after %ds" % deadline)

    def stop(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)
        self.proc.wait(timeout=120)
        self.logf.close()


def token():
    return subprocess.check_output([ARGS.binary, "token", "mint", "--tenant", "tenant_00009", "--jwt-secret-file", ARGS.secret,
                                    "--scope", "records:read records:write admin"]).decode().strip()


def bench(args, server):
    out = os.path.join(ARGS.out, "run.json")
    cmd = [ARGS.binary, "bench", "--port", str(PORT), "--key-file", ARGS.secret, "--server-pid", str(server.proc.pid),
           "--json", out] + args
    bg = other_cpu_fraction()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(out) as f:
        result = json.load(f)
    result["other_cpu_frac_before"] = round(bg, 3)
    result["command"] = " ".join(cmd)
    return result


def record(rep, workload, **fields):
    row = {"peer": "learnstore", "rep": rep, "workload": workload, "time": time.time(), **fields}
    with open(os.path.join(ARGS.out, "learnstore.jsonl"), "a") as f:
        f.write(json.dumps(row) + "\n")
    return row


def snapshot_bytes(data):
    total = 0
    for root, _, files in os.walk(os.path.join(data, "tenants")):
        total += sum(os.path.getsize(os.path.join(root, n)) for n in files if n.endswith(".lss"))
    return total


def cycle(rep):
    data = os.path.join(ARGS.out, "data-%d" % rep)
    shutil.rmtree(data, ignore_errors=True)
    tok = token()
    # A: bulk load with the WAL on (fsync everysec, like Redis AOF everysec / Tarantool wal_mode write).
    server = Server(data)
    server.wait_ready(tok)
    base_rss = rss_bytes(server.proc.pid)
    load = bench(["--preload", str(ARGS.records), "--preload-only", "-c", "50"], server)
    time.sleep(4)  # the server returns freed heap to the system (malloc_trim) once writes pause for a second
    rss = rss_bytes(server.proc.pid)
    record(rep, "A bulk load", result={"seconds": load["preload"]["seconds"], "records_per_sec": load["preload"]["records_per_second"],
                                       "rss_bytes": rss, "base_rss_bytes": base_rss,
                                       "bytes_per_record_rss": (rss - base_rss) / ARGS.records}, command=load["command"])
    log("  load %.2fs, %.0f B/record (RSS)" % (load["preload"]["seconds"], (rss - base_rss) / ARGS.records))
    # E: snapshot of the loaded records at graceful shutdown (every tenant), then E1: restart from the
    # snapshots. Measured before B, C and D, as the peers kit does, so it covers the loaded data set
    # and not the records the create runs add.
    c = learnstore_client.connect(PORT, tok)
    probe = c.newest_id()
    c.close()
    server.stop(signal.SIGTERM)
    with open(server.log_path) as f:
        rounds = [l for l in f if "shutdown snapshot round" in l]
    m = re.search(r"seconds=([0-9.e-]+)", rounds[-1])
    bytes_written = int(re.search(r"bytes=(\d+)", rounds[-1]).group(1))
    record(rep, "E snapshot", result={"seconds": float(m.group(1)), "file_bytes": bytes_written, "on_disk_bytes": snapshot_bytes(data)})
    log("  snapshot %.2fs, %d bytes" % (float(m.group(1)), bytes_written))
    server = Server(data)
    secs, stats = server.wait_ready(tok, probe)
    record(rep, "E1 restart from snapshot", result={"seconds": secs, **stats})
    log("  restart from snapshot %.2fs %s" % (secs, stats))
    # B, D, C(everysec)
    for name, workload in (("B get-by-id", "get"), ("D list-by-person", "list-by-person"), ("C create (fsync everysec)", "create")):
        for p in (1, 16):
            r = bench(["--workload", workload, "-c", "50", "-P", str(p), "--duration", str(ARGS.seconds), "--warmup", "1"], server)
            record(rep, name, tool="learnstore bench", pipeline=p, result=r, command=r["command"])
            log("  %s P=%d: %.0f ops/s, %.2f µs/op" % (name, p, r["ops_per_second"], r["server_cpu_us_per_op"] or -1))
    server.stop(signal.SIGTERM)
    server = Server(data, fsync="always")
    server.wait_ready(tok)
    # C with fsync on every write (group commit).
    for p in (1, 16):
        r = bench(["--workload", "create", "-c", "50", "-P", str(p), "--duration", str(ARGS.seconds), "--warmup", "1"], server)
        record(rep, "C create (fsync always)", tool="learnstore bench", pipeline=p, result=r, command=r["command"])
        log("  C create (fsync always) P=%d: %.0f ops/s, %.2f µs/op" % (p, r["ops_per_second"], r["server_cpu_us_per_op"] or -1))
    server.stop(signal.SIGTERM)
    shutil.rmtree(data, ignore_errors=True)
    # E2: restart from the WAL only (no snapshot ever taken; killed, so no shutdown snapshot).
    server = Server(data, extra=["--snapshot-interval", "0", "--snapshot-wal-bytes", "0"])
    server.wait_ready(tok)
    bench(["--preload", str(ARGS.records), "--preload-only", "-c", "50"], server)
    c = learnstore_client.connect(PORT, tok)
    probe = c.newest_id()
    c.close()
    time.sleep(1.5)  # everysec: let the last second reach the disk before the kill
    server.stop(signal.SIGKILL)
    server = Server(data)
    secs, stats = server.wait_ready(tok, probe)
    record(rep, "E2 restart from log", result={"seconds": secs, **stats})
    log("  restart from log %.2fs %s" % (secs, stats))
    server.stop(signal.SIGKILL)
    shutil.rmtree(data, ignore_errors=True)


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=".build/release/learnstore")
    ap.add_argument("--out", required=True)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--server-args", default="", help="extra `learnstore serve` flags for every server started")
    ARGS = ap.parse_args()
    os.makedirs(ARGS.out, exist_ok=True)
    ARGS.binary = os.path.abspath(ARGS.binary)
    ARGS.secret = os.path.join(ARGS.out, "secret")
    with open(ARGS.secret, "w") as f:
        f.write(os.urandom(32).hex())
    for rep in range(ARGS.reps):
        log("learnstore rep %d/%d" % (rep + 1, ARGS.reps))
        cycle(rep)


if __name__ == "__main__":
    main()
