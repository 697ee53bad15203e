#!/usr/bin/env python3
"""Creates with one acknowledging replica, LearnStore against Redis 7 and Tarantool 2.6, in one run.

The peers' part is the peers kit's own replication benchmark (`replication_bench.py --parts
throughput`, its closed-loop create workload, 50 connections, pipeline 1 and 16, Redis with
`WAIT 1` and Tarantool with an `is_sync` space and a quorum of 2, fsync on both nodes). LearnStore's
part runs right after it on the same machine with the kit's own C client, `peerbench --op create`
(the client that measures Tarantool there): a primary and one synchronous replica, fsync always on
both, and the same primary alone for the cost of replication. Prints one table and writes
`report.md` and `learnstore.jsonl` into the output directory.

usage: PEERS_KIT=DIR python3 Benchmarks/replication_peers.py [--binary .build/release/learnstore]
           [--seconds 5] [--warmup 1] [--out DIR] [--skip-peers]
"""
import argparse
import datetime
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CONNS = 50


def free_ports(count):
    """Distinct ports nothing listens on: all are held open until each is chosen."""
    sockets = []
    for _ in range(count):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        sockets.append(s)
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def wait_port(port, proc, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited: %d" % proc.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("port %d not listening" % port)


class LearnStorePair:
    """A primary and, unless alone, one synchronous replica (fsync always on both)."""

    def __init__(self, binary, work, replica):
        self.binary, self.work, self.procs = binary, work, []
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work)
        self.secret = os.path.join(work, "jwt-secret")
        with open(self.secret, "w") as f:
            f.write(os.urandom(32).hex())
        cluster_secret = os.path.join(work, "cluster-secret")
        with open(cluster_secret, "w") as f:
            f.write(os.urandom(24).hex())
        self.port, replica_port, *repl = free_ports(4)
        common = ["--jwt-secret-file", self.secret, "--fsync", "always", "--snapshot-interval", "0", "--log-level", "warning", "--metrics-port", "0"]
        if replica:
            common += ["--cluster-secret-file", cluster_secret]
        primary = ["serve", "--data-dir", os.path.join(work, "a"), "--port", str(self.port)] + common
        if replica:
            primary += ["--node-id", "a", "--replication-port", str(repl[0])]
        try:
            self.start(primary, "a")
            if replica:
                self.start(["serve", "--data-dir", os.path.join(work, "b"), "--port", str(replica_port), "--node-id", "b",
                            "--replication-port", str(repl[1]), "--replicate-from", "127.0.0.1:%d" % repl[0]] + common, "b")
            wait_port(self.port, self.procs[0])
        except Exception:
            self.stop()
            raise

    def start(self, args, name):
        log = open(os.path.join(self.work, name + ".log"), "w")
        self.procs.append(subprocess.Popen([self.binary] + args, stdout=log, stderr=log))

    def stop(self):
        for p in self.procs:
            p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


def learnstore_runs(args, peers_kit, peerbench, out):
    rows = []
    for config, replica in (("sync replica, fsync always", True), ("alone, fsync always", False)):
        pair = LearnStorePair(args.binary, os.path.join(out, "ls-" + ("pair" if replica else "alone")), replica)
        try:
            tokens = os.path.join(pair.work, "tokens.txt")
            with open(tokens, "w") as f:
                f.write(subprocess.run([sys.executable, os.path.join(peers_kit, "ls_tokens.py"), "--secret-file", pair.secret, "--tenants", "10"],
                                       check=True, capture_output=True, text=True).stdout)
            if replica:
                time.sleep(1.0)  # the replica connects and joins the in-sync set before the clock starts
            for P in (1, 16):
                cpu0 = [cpu_seconds(p.pid) for p in pair.procs]
                r = subprocess.run([peerbench, "--proto", "learnstore", "--port", str(pair.port), "--token-file", tokens, "--op", "create",
                                    "-c", str(CONNS), "-P", str(P), "-d", str(args.seconds), "-w", str(args.warmup)],
                                   check=True, capture_output=True, text=True)
                result = json.loads(r.stdout)
                cpu = [cpu_seconds(p.pid) - c for p, c in zip(pair.procs, cpu0)]
                ops = result.get("ops_total") or result.get("ops") or 1
                row = {"peer": "learnstore", "config": config, "tool": "peerbench", "pipeline": P, "ops_per_sec": result["ops_per_sec"],
                       "lat": result.get("lat_each"), "errors": result.get("errors", 0),
                       "server_cpu_us_per_op": [round(c / ops * 1e6, 2) for c in cpu]}
                rows.append(row)
                print("learnstore %-28s P=%-2d %9.0f ops/s" % (config, P, row["ops_per_sec"]), flush=True)
        finally:
            pair.stop()
    return rows


def peer_rows(peers_out):
    rows = []
    for path in glob.glob(os.path.join(peers_out, "raw.jsonl")) + glob.glob(os.path.join(peers_out, "*", "raw.jsonl")):
        for line in open(path):
            row = json.loads(line)
            if row.get("section") != "throughput":
                continue
            res = row["result"]
            rows.append({"peer": row["peer"], "config": row["config"], "tool": row["tool"], "pipeline": row["pipeline"],
                         "ops_per_sec": res["ops_per_sec"], "lat": res.get("lat"), "errors": res.get("errors", 0),
                         "server_cpu_us_per_op": list(res.get("server_cpu_us_per_op", {}).values())})
    return rows


def acknowledging(row):
    """The peers' configurations that acknowledge only once the replica has the write, fsync on both."""
    c = row["config"].lower()
    if row["peer"] == "redis":
        return "wait" in c and "always" in c
    if row["peer"] == "tarantool":
        return "replica sync" in c and "wal fsync" in c
    return row["config"] == "sync replica, fsync always"


def report(rows):
    lines = ["| server, configuration | client | P | creates/s | p50 ms | p99 ms | server CPU µs/op (primary, replica) |",
             "|---|---|---:|---:|---:|---:|---|"]
    for row in sorted(rows, key=lambda r: (r["pipeline"], r["peer"], r["config"])):
        lat = row["lat"] or {}
        lines.append("| %s, %s | %s | %d | %.0f | %.2f | %.2f | %s |" % (
            row["peer"], row["config"], row["tool"], row["pipeline"], row["ops_per_sec"], (lat.get("p50_us") or 0) / 1e3,
            (lat.get("p99_us") or 0) / 1e3, ", ".join(str(v) for v in row["server_cpu_us_per_op"])))
    lines.append("")
    for P in (1, 16):
        ours = [r for r in rows if r["peer"] == "learnstore" and acknowledging(r) and r["pipeline"] == P]
        best = max((r for r in rows if r["peer"] != "learnstore" and acknowledging(r) and r["pipeline"] == P),
                   key=lambda r: r["ops_per_sec"], default=None)
        if ours and best:
            lines.append("P=%d: LearnStore with a sync replica %.0f/s ÷ best acknowledging peer (%s, %s) %.0f/s = **%.2f×**" % (
                P, ours[0]["ops_per_sec"], best["peer"], best["config"], best["ops_per_sec"], ours[0]["ops_per_sec"] / best["ops_per_sec"]))
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.path.join(HERE, "..", ".build", "release", "learnstore"))
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--warmup", type=float, default=1)
    ap.add_argument("--out", default=None)
    ap.add_argument("--skip-peers", action="store_true", help="LearnStore only (not a comparison of record)")
    ap.add_argument("--report-only", action="store_true", help="table an existing --out directory again")
    args = ap.parse_args()
    peers_kit = os.environ.get("PEERS_KIT")
    if not peers_kit or not os.path.exists(os.path.join(peers_kit, "replication_bench.py")):
        sys.exit("set PEERS_KIT to the peers kit's directory (it holds replication_bench.py, peerbench.c and ls_tokens.py)")
    out = args.out or "/tmp/learnstore-replication-peers/" + datetime.datetime.utcnow().strftime("%Y%m%dT%H%M%SZ")
    os.makedirs(out, exist_ok=True)
    if args.report_only:
        rows = peer_rows(os.path.join(out, "peers")) + [json.loads(line) for line in open(os.path.join(out, "learnstore.jsonl"))]
        print(report(rows))
        return
    peerbench = os.path.join(out, "peerbench")
    subprocess.run(["gcc", "-O2", "-Wall", "-o", peerbench, os.path.join(peers_kit, "peerbench.c")], check=True)
    rows = []
    if not args.skip_peers:
        subprocess.run([sys.executable, os.path.join(peers_kit, "replication_bench.py"), "--parts", "throughput", "--reps", "1",
                        "--seconds", str(args.seconds), "--warmup", str(args.warmup), "--out", os.path.join(out, "peers")], check=True)
        rows += peer_rows(os.path.join(out, "peers"))
    ls = learnstore_runs(args, peers_kit, peerbench, out)
    with open(os.path.join(out, "learnstore.jsonl"), "w") as f:
        for row in ls:
            f.write(json.dumps(row) + "\n")
    text = report(rows + ls)
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write(text)
    print(text)
    print("report: %s" % os.path.join(out, "report.md"))


if __name__ == "__main__":
    main()
