#!/usr/bin/python3
"""Does campaign detection keep up? (make bench-detect; issue 15's bar: 10,000 audit rows/s or more.)

  1. Builds guard databases with a synthetic audit log of one day (default sizes 50,000 / 200,000 /
     500,000 rows, one key per 100 rows): benign keys (chat and completions, people's sessions in
     their working hours, heavy-tailed volumes, shared office addresses and common user agents),
     evaluation jobs (echo + logprobs 1 + max_tokens 0), and the campaigns of `retort guard simulate`:
     one top-k harvester walking the KJV in teacher-forcing shape, a hydra of 40 keys from 3
     addresses splitting the same harvest, a templated text-only harvest and a low-and-slow one.
     The telemetry columns are filled as stage_telemetry would: a random SimHash per new prompt
     (near copies for a chat's repeated system prompt), a prefix hash per opening, the KJV passage
     (of ~12,000) for prompts cut from it. The database is made by `retort keys create` (schema and
     meta); keys and rows are then written with sqlite3.
  2. Times `retort guard campaigns --json`, which replays every row through the Detector the
     server's worker uses and then assesses every key and cluster (its stderr line).
  3. Times the worker itself inside `retort serve --config configs/guard.toml` on the same
     database: its first pass catches up on every row (a real DetectWorker::pass(), action rows
     written), then a few requests give the first incremental pass on top of the whole state (its
     stderr lines, `guard: detector pass: ...`).

Usage: bench/detect_bench.py [--retort build/retort] [--out bench/out/detect] [--sizes 50000,200000,500000]
       [--model bench/out/serve/runs/lm] (step 3 needs a served gpt; `make bench-serve` trains one)
"""
import argparse
import hashlib
import json
import os
import random
import re
import sqlite3
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHUNKS = 12000  # about how many 64-word passages the KJV index has
BAR = 10000


def sh(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr[-2000:]}")
    return r


def signed(h):  # SQLite keeps the uint64 fingerprints as int64
    return h - (1 << 64) if h >= 1 << 63 else h


class Log:
    """Audit rows of one synthetic day, as tuples in the column order of INSERT below."""

    COLUMNS = ("time, key_id, key_name, endpoint, model, status, error_code, prompt_hash, prompt_chars, prompt_tokens, "
               "completion_tokens, n, max_tokens, logprobs, echo, stream, temperature, latency_ms, client, user_agent, "
               "prompt_simhash, prompt_prefix, ref_chunk")

    def __init__(self, rng, start):
        self.rng, self.start, self.rows, self.keys = rng, start, [], []

    def key(self, name):
        self.keys.append(name)
        return len(self.keys) + 1, name  # id 1 is the bench key `retort keys create` made

    def add(self, key, t, endpoint, prompt_tokens, completion_tokens, max_tokens, logprobs, echo, temperature, client,
            agent, simhash, prefix, chunk, status=200):
        r = self.rng
        self.rows.append((self.start + t, key[0], key[1], endpoint, "kjv", status, "" if status == 200 else "rate_limited",
                          "%016x" % r.getrandbits(64), 4 * prompt_tokens, prompt_tokens,
                          completion_tokens if status == 200 else 0, 1, max_tokens, logprobs, echo, 0, temperature,
                          r.uniform(3, 60), client, agent, signed(simhash), signed(prefix), chunk))


AGENTS_COMMON = ["OpenAI/Python 1.40.0", "OpenAI/NodeJS/4.52.0", "python-requests/2.31.0",
                 "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"]
AGENTS_RARE = ["langchain-openai/0.1.8 python-httpx/0.27.0", "axios/1.6.8", "Go-http-client/1.1", "OpenAI/Python 1.35.3",
               "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0 Safari/537.36"]


def near(rng, h, bits):  # a near copy of a SimHash: `bits` bits flipped
    for b in rng.sample(range(64), bits):
        h ^= 1 << b
    return h


def benign(log, n_keys, n_rows):
    rng = log.rng
    weights = [rng.lognormvariate(0, 1.3) for _ in range(n_keys)]
    scale = n_rows / sum(weights)
    offices = [f"198.51.{i // 250}.{i % 250 + 1}" for i in range(max(1, n_keys // 40))]
    for i in range(n_keys):
        key = log.key(f"u-{i:05d}")
        n = max(1, round(weights[i] * scale))
        client = rng.choice(offices) if rng.random() < 0.25 else f"10.{i // 65000}.{i // 250 % 250}.{i % 250 + 1}"
        agent = rng.choice(AGENTS_COMMON) if rng.random() < 0.8 else rng.choice(AGENTS_RARE) + f" app/{i % 97}"
        chat = rng.random() < 0.6
        system = rng.getrandbits(64)  # a chat app's system prompt: the same opening, near-identical prompts
        openings = [rng.getrandbits(64) for _ in range(rng.randint(3, 30))]
        day0 = rng.uniform(0, 14 * 3600)  # working hours: 10 h from here
        t = day0 + rng.uniform(0, 3600)
        for j in range(n):
            if j % max(1, rng.randint(5, 25)) == 0:  # a new session
                t = day0 + rng.uniform(0, 10 * 3600)
            t += rng.expovariate(1 / 25)
            if chat:
                simhash, prefix = near(rng, system, rng.randint(2, 20)), system
            else:
                simhash, prefix = rng.getrandbits(64), rng.choice(openings)
            chunk = rng.randrange(CHUNKS) if rng.random() < 0.2 else -1
            lp = -1 if rng.random() < 0.9 else rng.choice([1, 3, 5])
            mt = rng.randint(16, 512)
            log.add(key, t, "/v1/chat/completions" if chat else "/v1/completions", rng.randint(20, 400), rng.randint(5, mt),
                    mt, lp, 0, rng.choice([0.7, 1.0]), client, agent, simhash, prefix, chunk,
                    status=429 if rng.random() < 0.01 else 200)


def evaluation(log, name, n):  # an evaluation job: scores held-out text, teacher-forcing shape, logprobs 1
    rng = log.rng
    key, t = log.key(name), rng.uniform(0, 20 * 3600)
    for _ in range(n):
        t += rng.uniform(0.2, 1.0)
        log.add(key, t, "/v1/completions", rng.randint(100, 200), 0, 0, 1, 1, 0.0, "10.40.0.2", "python-requests/2.31.0",
                rng.getrandbits(64), rng.getrandbits(64), rng.randrange(CHUNKS))


def harvest(log, keys, addresses, agent, n, k, start, gap, first_chunk):
    """Top-k harvest in teacher-forcing shape (as `retort distill --teacher openai:` sends), shards in key order."""
    rng, t, chunk = log.rng, start, first_chunk
    per = max(1, n // len(keys))
    for i, name in enumerate(keys):
        key = log.key(name)
        for _ in range(per):
            t += gap * rng.uniform(0.9, 1.1)
            chunk = (chunk + (1 if rng.random() < 0.5 else 0)) % CHUNKS
            log.add(key, t, "/v1/completions", 128, 1, 1, k, 1, 1.0, addresses[i % len(addresses)], agent,
                    rng.getrandbits(64), rng.getrandbits(64), chunk)


def seqkd(log, n):  # text only, "Continue the passage: ..." over the whole KJV
    rng, key, t = log.rng, log.key("c3-seqkd"), 3 * 3600.0
    prefix = rng.getrandbits(64)
    for i in range(n):
        t += rng.uniform(1.0, 1.2)
        log.add(key, t, "/v1/completions", 40, 64, 64, -1, 0, 1.0, "203.0.113.9", "OpenAI/Python 1.40.0",
                rng.getrandbits(64), prefix, i * CHUNKS // n)


def build(db, retort, rows, seed):
    for f in (db, db + "-wal", db + "-shm"):
        if os.path.exists(f):
            os.remove(f)
    bench_key = sh([retort, "keys", "create", "--db", db, "--name", "bench"]).stdout.strip()
    rng = random.Random(seed)
    log = Log(rng, time.time() - 86400)
    n_keys = max(100, rows // 100)
    c = {"topk": rows // 25, "hydra": rows // 25, "seqkd": rows // 60, "slow": rows // 400, "eval": rows // 50}
    harvest(log, ["c1-topk"], ["203.0.113.5"], "OpenAI/Python 1.40.0", c["topk"], 20, 2 * 3600, 2.0, 0)
    harvest(log, [f"hydra-{i:02d}" for i in range(40)], ["192.0.2.10", "192.0.2.11", "192.0.2.12"],
            "python-httpx/0.27.0", c["hydra"], 5, 1 * 3600, 1.8, 4000)
    seqkd(log, c["seqkd"])
    harvest(log, ["c4-slow"], ["192.0.2.45"], "OpenAI/NodeJS/4.52.0", c["slow"], 5, 0, 86000 / max(1, c["slow"]), 8000)
    for i in range(2):
        evaluation(log, f"eval-{i:02d}", c["eval"] // 2)
    benign(log, n_keys - 45, rows - sum(c.values()) + c["eval"] % 2)
    log.rows.sort(key=lambda r: r[0])
    log.rows = log.rows[:rows]
    con = sqlite3.connect(db)
    now = int(time.time())
    con.executemany("INSERT INTO keys (id, name, key_hash, prefix, created, rpm, tpm) VALUES (?, ?, ?, ?, ?, 60, 40000)",
                    [(i + 2, name, hashlib.sha256(f"{seed}:{name}".encode()).hexdigest(), "rt-" + name[:5], now)
                     for i, name in enumerate(log.keys)])
    con.executemany(f"INSERT INTO audit ({Log.COLUMNS}) VALUES ({','.join('?' * 23)})", log.rows)
    con.commit()
    con.close()
    return bench_key, len(log.keys) + 1, len(log.rows)


def campaigns(retort, db):
    r = sh([retort, "guard", "campaigns", "--db", db, "--config", os.path.join(ROOT, "configs", "guard.toml"), "--json"])
    m = re.search(r"([\d,]+) audit rows read and scored in ([\d.]+) s", r.stderr)
    if not m:
        sys.exit(f"no timing line from guard campaigns:\n{r.stderr[-2000:]}")
    out = json.loads(r.stdout)
    blocked = sorted({k for c in out["clusters"] for k in c["keys"] if c["response"] == "block"} |
                     {k["name"] for k in out["keys"] if k["response"] == "block"})
    return int(m.group(1).replace(",", "")), float(m.group(2)), len(out["clusters"]), blocked


def worker(retort, db, model, key, timeout=600):
    """The worker inside `retort serve`: its stderr lines for the start-up pass and the first incremental one."""
    err = db + ".serve.log"
    server = subprocess.Popen([retort, "serve", "--model", f"kjv={model}", "--port", "0", "--db", db, "--config",
                               os.path.join(ROOT, "configs", "guard.toml")],
                              stdout=subprocess.PIPE, stderr=open(err, "w"), text=True,
                              env={**os.environ, "RETORT_NO_BLAS_WARNING": "1"})
    lines = lambda: re.findall(r"guard: detector pass: ([\d]+) audit rows read and scored in ([\d.]+) s.*?(\d+) action rows",
                               open(err).read())
    try:
        port = int(server.stdout.readline())
        deadline = time.time() + timeout
        while not lines() and time.time() < deadline:
            time.sleep(0.2)
        for i in range(5):  # a few new rows: the next pass is incremental, on top of every key's state
            body = json.dumps({"model": "kjv", "prompt": "In the beginning God created", "max_tokens": 4, "seed": i})
            req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/completions", data=body.encode(),
                                         headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
            urllib.request.urlopen(req, timeout=60).read()
        while len(lines()) < 2 and time.time() < deadline:
            time.sleep(0.2)
    finally:
        server.terminate()
        server.wait()
    return [(int(n), float(s), int(a)) for n, s, a in lines()]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--retort", default=os.path.join(ROOT, "build", "retort"))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "out", "detect"))
    ap.add_argument("--sizes", default="50000,200000,500000")
    ap.add_argument("--model", default=os.path.join(ROOT, "bench", "out", "serve", "runs", "lm"))
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    retort, out = os.path.abspath(a.retort), os.path.abspath(a.out)
    os.makedirs(out, exist_ok=True)
    have_model = os.path.exists(os.path.join(a.model, "model", "model.json"))
    if not have_model:
        print(f"no served gpt at {a.model} (make bench-serve trains one): the worker inside `retort serve` is not timed")
    results, ok = [], True
    for rows in [int(s) for s in a.sizes.split(",")]:
        db = os.path.join(out, f"guard-{rows}.db")
        t = time.time()
        key, n_keys, n = build(db, retort, rows, a.seed)
        print(f"\n{n:,} audit rows over {n_keys:,} keys written in {time.time() - t:.1f} s ({db})", flush=True)
        got, took, n_clusters, blocked = campaigns(retort, db)
        rate = got / took
        ok &= rate >= BAR
        print(f"  guard campaigns: {got:,} rows replayed and scored in {took:.2f} s = {rate:,.0f} rows/s "
              f"({'meets' if rate >= BAR else 'MISSES'} the {BAR:,} bar); {n_clusters} clusters; block: "
              f"{len(blocked)} keys ({', '.join(blocked[:4])}{', ...' if len(blocked) > 4 else ''})", flush=True)
        r = {"rows": n, "keys": n_keys, "campaigns_s": took, "campaigns_rows_per_s": rate, "clusters": n_clusters,
             "blocked": blocked}
        if have_model:
            passes = worker(retort, db, a.model, key)
            for label, (pn, ps, pa) in zip(["start-up pass", "next pass"], passes):
                prate = pn / ps if ps > 0 else float("inf")
                if label == "start-up pass":
                    ok &= prate >= BAR
                print(f"  worker in retort serve, {label}: {pn:,} rows in {ps:.3f} s = {prate:,.0f} rows/s, "
                      f"{pa} action rows written", flush=True)
            r["worker_passes"] = passes
        results.append(r)
    json.dump(results, open(os.path.join(out, "detect_bench.json"), "w"), indent=1)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
