#!/usr/bin/env python3
"""Merges the peers kit's summary.json with LearnStore's learnstore.jsonl into one table:
LearnStore, Redis, Tarantool and the ratio LearnStore / best peer (medians, min-max).

usage: compare_report.py --peers PEERS/summary.json --learnstore LS/learnstore.jsonl [--out report.md]
"""
import argparse
import json
import statistics


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def span(xs):
    xs = [x for x in xs if x is not None]
    return (min(xs), max(xs)) if xs else (None, None)


def learnstore_rows(path):
    rows = [json.loads(l) for l in open(path) if l.strip()]
    groups = {}
    for r in rows:
        groups.setdefault((r["workload"], r.get("pipeline")), []).append(r["result"])
    return groups


def peer_throughput(peers, peer, prefix, pipeline):
    """The peerbench figure (the same C client for both peers) of a workload."""
    best = None
    for t in peers["throughput"]:
        if t["peer"] == peer and t["workload"].startswith(prefix) and str(t["pipeline"]) == str(pipeline) and t["tool"] == "peerbench":
            if "native" in t["workload"] or "2 RTT" in t["workload"]:
                continue
            best = t
    return best


def fmt(v, pattern="%.0f"):
    return "-" if v is None else pattern % v


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--peers", required=True)
    ap.add_argument("--learnstore", required=True)
    ap.add_argument("--out")
    args = ap.parse_args()
    peers = json.load(open(args.peers))
    ls = learnstore_rows(args.learnstore)
    md = ["| measure | LearnStore (min-max) | µs/op | Redis | µs/op | Tarantool | µs/op | LearnStore ÷ best peer | target |",
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    throughput = [
        ("get-by-id P=1", "B get-by-id", "B get-by-id", "B get-by-id", 1, 1.2),
        ("get-by-id P=16", "B get-by-id", "B get-by-id", "B get-by-id", 16, 1.5),
        ("list-by-person P=1", "D list-by-person", "D list-by-person", "D list-by-person", 1, None),
        ("list-by-person P=16", "D list-by-person", "D list-by-person", "D list-by-person", 16, 2.0),
        ("create, fsync every second, P=1", "C create (fsync everysec)", "C create (AOF everysec)", "C create (wal write)", 1, None),
        ("create, fsync every second, P=16", "C create (fsync everysec)", "C create (AOF everysec)", "C create (wal write)", 16, 3.0),
        ("create, fsync every write, P=1", "C create (fsync always)", "C create (AOF always)", "C create (wal fsync)", 1, None),
        ("create, fsync every write, P=16", "C create (fsync always)", "C create (AOF always)", "C create (wal fsync)", 16, 2.0),
    ]
    for label, mine, redis_name, tt_name, p, target in throughput:
        rs = ls.get((mine, p), [])
        ops = [r["ops_per_second"] for r in rs]
        cpu = med([r.get("server_cpu_us_per_op") for r in rs])
        lo, hi = span(ops)
        redis = peer_throughput(peers, "redis", redis_name, p)
        tt = peer_throughput(peers, "tarantool", tt_name, p)
        best = max([x["ops_per_sec"] for x in (redis, tt) if x] or [0])
        mine_ops = med(ops)
        ratio = mine_ops / best if mine_ops and best else None
        md.append("| %s | %s (%s-%s) | %s | %s | %s | %s | %s | %s | %s |" % (
            label, fmt(mine_ops), fmt(lo), fmt(hi), fmt(cpu, "%.2f"), fmt(redis and redis["ops_per_sec"]),
            fmt(redis and redis["server_cpu_us_per_op"], "%.1f"), fmt(tt and tt["ops_per_sec"]),
            fmt(tt and tt["server_cpu_us_per_op"], "%.1f"), fmt(ratio, "%.2f"), "≥ %.1f" % target if target else ""))
    loads = ls.get(("A bulk load", None), [])
    pl = {a["peer"]: a for a in peers["load"]}
    mine = med([r["seconds"] for r in loads])
    best = min([a["seconds"] for a in pl.values()] or [0])
    md.append("| bulk load of the data set, seconds | %s (%s-%s) | | %s | | %s | | %s | ≥ 1.5 (speed) |" % (
        fmt(mine, "%.2f"), fmt(span([r["seconds"] for r in loads])[0], "%.2f"), fmt(span([r["seconds"] for r in loads])[1], "%.2f"),
        fmt(pl.get("redis", {}).get("seconds"), "%.2f"), fmt(pl.get("tarantool", {}).get("seconds"), "%.2f"),
        fmt(best / mine if mine else None, "%.2f")))
    bpr = med([r["bytes_per_record_rss"] for r in loads])
    md.append("| bytes per record (RSS, indexes included) | %s | | %s | | %s | | | ≤ 250 |" % (
        fmt(bpr), fmt(pl.get("redis", {}).get("bytes_per_record_rss")), fmt(pl.get("tarantool", {}).get("bytes_per_record_rss"))))
    snaps = ls.get(("E snapshot", None), [])
    ps = {s["peer"]: s for s in peers["snapshot"]}
    md.append("| snapshot of the data set, seconds (MB) | %s (%s MB) | | %s (%s MB) | | %s (%s MB) | | %s | ≤ 1 s, ≤ 100 MB |" % (
        fmt(med([r["seconds"] for r in snaps]), "%.2f"), fmt(med([r["file_bytes"] for r in snaps]) and med([r["file_bytes"] for r in snaps]) / 1e6),
        fmt(ps.get("redis", {}).get("snapshot_s"), "%.2f"), fmt(ps.get("redis", {}).get("snapshot_bytes") and ps["redis"]["snapshot_bytes"] / 1e6),
        fmt(ps.get("tarantool", {}).get("snapshot_s"), "%.2f"), fmt(ps.get("tarantool", {}).get("snapshot_bytes") and ps["tarantool"]["snapshot_bytes"] / 1e6),
        fmt(min([s["snapshot_s"] for s in ps.values()] or [0]) / med([r["seconds"] for r in snaps]) if snaps else None, "%.2f")))
    for label, mine_name, prefix, target in (("restart from snapshot, seconds", "E1 restart from snapshot", "E1", "≤ 1 s"),
                                             ("restart from the log only, seconds", "E2 restart from log", "E2", "≤ 1.5 s")):
        rs = ls.get((mine_name, None), [])
        pr = {r["peer"]: r for r in peers["restart"] if r["workload"].startswith(prefix)}
        mine = med([r["seconds"] for r in rs])
        best = min([r["restart_s"] for r in pr.values()] or [0])
        md.append("| %s | %s | | %s | | %s | | %s | %s |" % (
            label, fmt(mine, "%.2f"), fmt(pr.get("redis", {}).get("restart_s"), "%.2f"),
            fmt(pr.get("tarantool", {}).get("restart_s"), "%.2f"), fmt(best / mine if mine else None, "%.2f"), target))
        partial = sum(r.get("partial_answers", 0) for r in rs)
        loading = sum(r.get("loading_answers", 0) for r in rs)
        md.append("| answers during that recovery | LOADING to %d probes, partial data: %d | | | | | | | never partial |" % (loading, partial))
    text = "\n".join(md) + "\n"
    if args.out:
        open(args.out, "w").write(text)
    print(text)


if __name__ == "__main__":
    main()
