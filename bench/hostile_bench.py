#!/usr/bin/python3
"""A long hostile run against `retort serve` on loopback (make bench-hostile).

Trains a tiny language model and a tiny classifier, serves both, and sends --requests mutated
requests over every route with tests/e2e/hostile_http.py (the generator `make test` runs for
10,000). Prints one JSON object: the status histogram, unanswered requests, 5xx other than 503,
whether the server is alive and healthy afterwards, and its resident memory (VmRSS, VmHWM)
before and after, with the audit rows written.

Usage: bench/hostile_bench.py [--retort build/retort] [--out bench/out/hostile] [--requests 100000] [--seed 11]
"""
import argparse
import json
import os
import sqlite3
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FUZZ = os.path.join(ROOT, "tests", "e2e", "hostile_http.py")


def sh(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr[-2000:]}")
    return r.stdout


def memory(pid):
    out = {}
    for line in open(f"/proc/{pid}/status"):
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM"):
            out[k] = int(v.split()[0]) // 1024  # MiB
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--retort", default=os.path.join(ROOT, "build", "retort"))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "out", "hostile"))
    ap.add_argument("--requests", type=int, default=100000)
    ap.add_argument("--seed", type=int, default=11)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    runs = os.path.join(a.out, "runs")
    env_sets = ["--set", f"run.dir={runs}"]
    if not os.path.exists(os.path.join(runs, "lm", "model")):
        sh([a.retort, "train", "--set", "data.kind=text", "--set", "text.train_tokens=24000", "--set", "text.val_tokens=3000",
            "--set", "text.seq_len=64", "--set", "model.name=gpt", "--set", "model.d_model=32", "--set", "model.layers=1",
            "--set", "model.heads=2", "--set", "train.epochs=1", "--set", "run.name=lm", "--fresh", *env_sets])
    if not os.path.exists(os.path.join(runs, "mlp", "model")):
        sh([a.retort, "train", "--set", "data.train_subset=500", "--set", "data.test_subset=100", "--set", "model.hidden=16",
            "--set", "train.epochs=1", "--set", "run.name=mlp", "--fresh", *env_sets])
    db = os.path.join(a.out, "serve.db")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.remove(db + suffix)
    key = sh([a.retort, "keys", "create", "--name", "fuzz", "--admin", "--db", db]).strip()
    server = subprocess.Popen([a.retort, "serve", "--port", "0", "--db", db, "--model", f"kjv={runs}/lm",
                               "--model", f"fashion={runs}/mlp", "--max-body", "65536", "--header-timeout", "1",
                               "--body-timeout", "1"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    port = int(server.stdout.readline())
    time.sleep(0.5)
    before = memory(server.pid)
    t0 = time.time()
    r = subprocess.run([sys.executable, FUZZ, "--port", str(port), "--key", key, "--lm", "kjv", "--classifier", "fashion",
                        "--requests", str(a.requests), "--seed", str(a.seed), "--pid", str(server.pid),
                        "--max-seconds", "3000"], capture_output=True, text=True)
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    after = memory(server.pid) if server.poll() is None else {}
    server.terminate()
    server.wait()
    rows = sqlite3.connect(db).execute("select count(*) from audit").fetchone()[0]
    print(json.dumps({"requests": a.requests, "seed": a.seed, "seconds": round(time.time() - t0, 1), "fuzz": summary,
                      "fuzz_exit": r.returncode, "memory_mib_before": before, "memory_mib_after": after,
                      "audit_rows": rows}, indent=1))


if __name__ == "__main__":
    main()
