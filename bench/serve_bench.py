#!/usr/bin/python3
"""Bounded load test of `retort serve` on loopback (make bench-serve).

  1. Throughput and latency: /v1/completions (16 new tokens, top-5 logprobs) on a gpt the size of
     `retort demo lm`'s teacher, and /v1/classify on a Fashion-MNIST MLP, at several concurrencies;
     a fixed number of requests each (bench/serve_load.mjs: Node's fetch, no npm packages).
     The same rows against bench/reference/serve_reference.py (plain PyTorch behind Python's
     http.server, no keys or audit) give the ratio retort / PyTorch in requests per second.
  2. Limits under concurrency: 4 keys with rpm / tpm / quota limits, 32 connections; checks that
     no key got more than its limit, that the tokens the answers reported equal the keys' settled
     usage in the database (nothing double-counted), and that every request has one audit row.
  3. The request path's cost of campaign detection (issue 15: within 1 ms of p50): the same
     completions load against two fresh servers, one plain and one with --config configs/guard.toml
     (detection, telemetry with the KJV reference, actions in force), p50 / p99 of each and the
     p50 difference. --detection-only runs just these rows.

Usage: bench/serve_bench.py [--retort build/retort] [--out bench/out/serve] [--requests 400]
       [--throughput-only] [--serve-args "--max-batch 16"]
       [--detection-only] [--detection-requests 300] [--detection-history bench/out/detect/guard-200000.db]
--throughput-only runs part 1 alone; --serve-args adds options to the server of part 1 (e.g. --max-batch 1
to see it without batching).
The models are trained once into --out (a short run: the speed, not the quality, is measured).
"""
import argparse
import gzip
import json
import os
import re
import sqlite3
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOAD = os.path.join(ROOT, "bench", "serve_load.mjs")


def sh(cmd, env=None):
    r = subprocess.run(cmd, env={**os.environ, **(env or {})}, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr[-2000:]}")
    return r.stdout


def detection_rows(retort, runs, out, env, n, history=None):
    """Completions with detection off and on (a fresh database each): 16 new tokens at 1 and 4 connections, and 1 new
    token at 1 connection, where the model's share of the time is smallest. With `history` (a guard database, e.g.
    make bench-detect's bench/out/detect/guard-200000.db) a third server runs detection on a copy of it: every pass
    that reads a new row then re-assesses all of its keys. Each row runs in blocks off, on[, history, history], on,
    off of n/2 requests (drift over the run falls on every mode); the two off blocks' p50s apart are the noise floor.
    Besides the client's latency, the server's own (the audit rows' latency_ms: authentication to the answer's
    audit row, without the loopback and the client)."""
    guard = ["--config", os.path.join(ROOT, "configs", "guard.toml")]
    modes = [("off", [], None), ("on", guard, None)] + ([("history", guard, history)] if history else [])
    servers, rows = {}, []
    try:
        for mode, extra, copy_of in modes:
            db = os.path.join(out, f"detect-{mode}.db")
            for f in (db, db + "-wal", db + "-shm"):
                if os.path.exists(f):
                    os.remove(f)
            if copy_of:
                src = sqlite3.connect(copy_of)
                src.execute("VACUUM INTO ?", (db,))
                src.close()
            key = sh([retort, "keys", "create", "--db", db, "--name", "serve-bench"]).strip()
            p = subprocess.Popen([retort, "serve", "--model", f"kjv={runs}/lm", "--port", "0", "--db", db, "--workers", "2",
                                  "--queue", "64"] + extra, stdout=subprocess.PIPE,
                                 stderr=open(os.path.join(out, f"detect-{mode}.log"), "w"), text=True, env={**os.environ, **env})
            servers[mode] = (p, f"http://127.0.0.1:{int(p.stdout.readline())}/v1", key, db)
        if history:  # wait until the history server's detector has caught up with the copied rows
            log = os.path.join(out, "detect-history.log")
            deadline = time.time() + 300
            while "guard: detector pass" not in open(log).read() and time.time() < deadline:
                time.sleep(0.5)
        names = [m for m, *_ in modes]
        order = names + names[::-1]
        print(f"\ncampaign detection on the request path (completions; blocks {', '.join(order)}; p50 / p99 in ms; "
              f"server: the audit rows' p50):", flush=True)
        for tokens, conc in ((1, 1), (16, 1), (16, 4)):
            def run(mode, k):
                _, base, key, _ = servers[mode]
                return json.loads(sh(["node", LOAD, "--base", base, "--keys", key, "--endpoint", "completions", "--model",
                                      "kjv", "--concurrency", str(conc), "--requests", str(k), "--max-tokens", str(tokens)]))
            for mode in names:
                run(mode, 20)  # warm-up
            blocks, server_ms = {m: [] for m in names}, {m: [] for m in names}
            for mode in order:
                con = sqlite3.connect(servers[mode][3])
                last = con.execute("select coalesce(max(id), 0) from audit").fetchone()[0]
                r = run(mode, n // 2)
                assert r["answered"] == n // 2, r
                blocks[mode].append(r)
                server_ms[mode] += [x for (x,) in con.execute("select latency_ms from audit where id > ? and status = 200",
                                                              (last,))]
                con.close()
            mean = lambda mode, q: sum(b[q] for b in blocks[mode]) / 2
            median = lambda xs: sorted(xs)[len(xs) // 2]
            noise = abs(blocks["off"][0]["p50_ms"] - blocks["off"][1]["p50_ms"])
            row = {"max_tokens": tokens, "concurrency": conc, "requests_per_mode": 2 * (n // 2), "blocks": blocks,
                   "off_blocks_p50_apart_ms": noise}
            print(f"  {tokens:>2} new tokens, {conc} connection{'s' if conc > 1 else ''} "
                  f"(off vs off: p50s {noise:.2f} ms apart):", flush=True)
            for mode in names:
                d = mean(mode, "p50_ms") - mean("off", "p50_ms")
                verdict = "" if mode == "off" else \
                    f"; p50 {d:+.2f} ms vs off ({'within' if d <= 1 else 'MORE than'} the 1 ms bar)"
                print(f"    {mode:<8} p50 {mean(mode, 'p50_ms'):7.2f}  p99 {mean(mode, 'p99_ms'):7.2f}  "
                      f"server p50 {median(server_ms[mode]):7.2f}{verdict}", flush=True)
                row[mode] = {"p50_ms": mean(mode, "p50_ms"), "p99_ms": mean(mode, "p99_ms"),
                             "server_p50_ms": median(server_ms[mode]), "p50_difference_ms": d}
            rows.append(row)
    finally:
        for p, *_ in servers.values():
            p.terminate()
            p.wait()
    for mode in names[1:]:
        con = sqlite3.connect(servers[mode][3])
        acted = con.execute("select action, source, round(score, 2) from actions where key_name = 'serve-bench'").fetchall()
        print(f"  the bench key's action rows ({mode}): {acted or 'none'}")
        passes = re.findall(r"guard: detector pass: .*", open(os.path.join(out, f"detect-{mode}.log")).read())
        for line in passes:
            print(f"    {line}")
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--retort", default=os.path.join(ROOT, "build", "retort"))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "out", "serve"))
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--detection-only", action="store_true", help="only the detection off / on rows")
    ap.add_argument("--throughput-only", action="store_true", help="only the throughput rows (and the reference's)")
    ap.add_argument("--serve-args", default="", help="more options for the throughput server, e.g. '--max-batch 1'")
    ap.add_argument("--detection-requests", type=int, default=300)
    ap.add_argument("--detection-history", help="also time detection over a copy of this guard database "
                                                "(make bench-detect's bench/out/detect/guard-200000.db)")
    a = ap.parse_args()
    retort, out = os.path.abspath(a.retort), os.path.abspath(a.out)
    runs = os.path.join(out, "runs")
    os.makedirs(runs, exist_ok=True)
    env = {"RETORT_NO_BLAS_WARNING": "1"}
    if not os.path.exists(os.path.join(runs, "lm", "model", "model.json")):
        print("training the served gpt (d_model 192, 4 layers, as demo lm's teacher; a short run) ...", flush=True)
        sh([retort, "train", "--config", os.path.join(ROOT, "configs", "kjv-lm.toml"), "--set", f"run.dir={runs}",
            "--set", "run.name=lm", "--set", "model.d_model=192", "--set", "model.layers=4", "--set", "model.heads=4",
            "--set", "text.train_tokens=200000", "--set", "text.val_tokens=20000", "--fresh"], env)
    if not os.path.exists(os.path.join(runs, "mlp", "model", "model.json")):
        print("training the served MLP ...", flush=True)
        sh([retort, "train", "--set", f"run.dir={runs}", "--set", "run.name=mlp", "--set", "train.epochs=1", "--fresh"], env)
    if a.detection_only:
        rows = detection_rows(retort, runs, out, env, a.detection_requests, a.detection_history)
        json.dump({"detection": rows}, open(os.path.join(out, "serve_bench_detection.json"), "w"), indent=1)
        return
    raw = gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz").read()[16:]
    pixels = os.path.join(out, "pixels.json")
    json.dump([list(raw[i * 784:(i + 1) * 784]) for i in range(256)], open(pixels, "w"))

    db = os.path.join(out, "serve.db")
    for f in (db, db + "-wal", db + "-shm"):
        if os.path.exists(f):
            os.remove(f)
    key = lambda *args: sh([retort, "keys", "create", "--db", db] + list(args)).strip()
    open_key = key("--name", "bench")
    limited = [key("--name", "rpm30", "--rpm", "30"), key("--name", "rpm60", "--rpm", "60"),
               key("--name", "tpm1500", "--tpm", "1500"), key("--name", "quota2000", "--quota", "2000")]
    server = subprocess.Popen([retort, "serve", "--model", f"kjv={runs}/lm", "--model", f"fashion={runs}/mlp",
                               "--port", "0", "--db", db, "--workers", "2", "--queue", "64"] + a.serve_args.split(),
                              stdout=subprocess.PIPE, stderr=open(os.path.join(out, "serve.log"), "w"), text=True,
                              env={**os.environ, **env})
    try:
        port = int(server.stdout.readline())
        base = f"http://127.0.0.1:{port}/v1"
        load = lambda keys, endpoint, model, conc, n, extra=(): json.loads(sh(
            ["node", LOAD, "--base", base, "--keys", ",".join(keys), "--endpoint", endpoint, "--model", model,
             "--concurrency", str(conc), "--requests", str(n), "--max-tokens", "16", "--pixels", pixels] + list(extra)))
        rows = []
        cases = [("completions", "kjv", 1), ("completions", "kjv", 4), ("completions", "kjv", 16),
                 ("classify", "fashion", 1), ("classify", "fashion", 4), ("classify", "fashion", 16)]
        for endpoint, model, conc in cases:
            n = a.requests if endpoint == "completions" else 4 * a.requests
            r = load([open_key], endpoint, model, conc, n)
            assert r["answered"] == n, r
            rows.append(r)
            print(f"/v1/{endpoint:<12} concurrency {conc:>2}: {r['answered']} answered in {r['seconds']:.1f} s, "
                  f"{r['answered_per_second']:.1f} req/s, p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms", flush=True)
        one = {e: r["answered_per_second"] for (e, _, c), r in zip(cases, rows) if c == 1}
        for (endpoint, _, conc), r in zip(cases, rows):
            if conc > 1:
                print(f"/v1/{endpoint:<12} {conc:>2} connections / 1 connection: "
                      f"{r['answered_per_second'] / one[endpoint]:.2f}x the requests per second")
        # the same rows against plain PyTorch behind Python's http.server
        ref = subprocess.Popen(["/usr/bin/python3", os.path.join(ROOT, "bench", "reference", "serve_reference.py"),
                                f"{runs}/lm/model/model.json", f"{runs}/mlp/model/model.json", "0"],
                               stdout=subprocess.PIPE, text=True)
        try:
            ref_base = f"http://127.0.0.1:{int(ref.stdout.readline())}/v1"
            print("\nplain PyTorch (bench/reference/serve_reference.py):")
            for (endpoint, model, conc), mine in zip(cases, rows):
                n = mine["answered"]
                r = json.loads(sh(["node", LOAD, "--base", ref_base, "--keys", "none", "--endpoint", endpoint, "--model",
                                   model, "--concurrency", str(conc), "--requests", str(n), "--max-tokens", "16",
                                   "--pixels", pixels]))
                mine["reference"] = r
                print(f"/v1/{endpoint:<12} concurrency {conc:>2}: {r['answered_per_second']:.1f} req/s, p50 {r['p50_ms']:.1f} ms, "
                      f"p99 {r['p99_ms']:.1f} ms; retort / PyTorch {mine['answered_per_second'] / r['answered_per_second']:.2f}x",
                      flush=True)
        finally:
            ref.terminate()
            ref.wait()
        if a.throughput_only:
            json.dump({"throughput": rows, "serve_args": a.serve_args,
                       "load_average": os.getloadavg()}, open(os.path.join(out, "serve_bench_throughput.json"), "w"), indent=1)
            return

        t = time.time()
        r = load(limited, "completions", "kjv", 32, 400)
        took = time.time() - t
        con = sqlite3.connect(db)
        names = ["rpm30", "rpm60", "tpm1500", "quota2000"]
        print(f"\nlimits under 32 connections ({r['sent']} requests over 4 keys in {took:.1f} s, one window):")
        ok = True
        for name, k in zip(names, r["per_key"]):
            used = con.execute("select used_tokens from keys where name=?", (name,)).fetchone()[0]
            audit = dict(con.execute("select status, count(*) from audit where key_name=? group by status", (name,)).fetchall())
            audit_tok = con.execute("select coalesce(sum(prompt_tokens+completion_tokens),0) from audit "
                                    "where key_name=? and status=200", (name,)).fetchone()[0]
            passed = k["statuses"].get("200", 0)
            limit_ok = {"rpm30": passed <= 30, "rpm60": passed <= 60, "tpm1500": k["tokens"] <= 1500,
                        "quota2000": k["tokens"] <= 2000}[name]
            same = used == k["tokens"] == audit_tok and {str(s): c for s, c in audit.items()} == k["statuses"]
            ok &= limit_ok and same
            print(f"  {name:<10} answered {passed:>3}, refused {k['statuses'].get('429', 0):>3}, tokens {k['tokens']:>5}; "
                  f"within limit: {limit_ok}; settled usage {used} = answers' usage {k['tokens']} = audit {audit_tok}: {same}")
        total_rows = con.execute("select count(*) from audit").fetchone()[0]
        sent = sum(x["sent"] for x in rows) + r["sent"]
        print(f"audit rows {total_rows} for {sent} requests sent: {'one each' if total_rows == sent else 'MISMATCH'}")
        ok &= total_rows == sent
        detection = detection_rows(retort, runs, out, env, a.detection_requests, a.detection_history)
        json.dump({"throughput": rows, "limits": r, "audit_rows": total_rows, "sent": sent, "detection": detection},
                  open(os.path.join(out, "serve_bench.json"), "w"), indent=1)
        sys.exit(0 if ok else 1)
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
