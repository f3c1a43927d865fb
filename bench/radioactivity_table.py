#!/usr/bin/python3
"""Radioactivity (issue 14): do students distilled through a marked `retort serve` carry its mark, and
do students that never saw marked answers stay clean?

A KJV teacher is served twice on loopback: marked (kgw, the defaults: gamma 0.25, delta 2, h 1; guard
database --work/serve.db) and unmarked. Tiny gpt students (--d-model, --layers) learn from --tokens
tokens of the KJV training split for --epochs epochs, one seed, through the API:
  - text only (sequence KD): `retort distill --teacher openai:MARKED --set distill.method=sequence`, one
    teacher-written document per training window (16 KJV prompt tokens + 113 written ones). For a
    marked share s < 1, the documents that run harvested (the JSONL the API harvest caches) are mixed
    with KJV training chapters: a share s of the training text is teacher-written, the rest plain KJV
    (labels only: `retort distill --set distill.alpha=0` with the local teacher, which here only gives
    the tokenizer: `retort train` trains its own).
  - top-k logprobs: `retort distill --teacher openai:URL --set distill.top_k=20` (alpha 0.5). For s < 1,
    URL is a proxy in this script: a share s of the training windows (chosen by a hash of the window) is
    forwarded to the marked server untouched; the others go to the unmarked server and come back with
    their top-20 replaced by the true next token (logprob 0; 19 others at -30), so on those windows the
    student learns the plain KJV labels (its last position, not in the window, keeps the unmarked top-20).
Each student is tested by `retort guard verify --db serve.db --suspect STUDENT --config configs/kjv-lm.toml`
(open model: teacher-forced on the held-out KJV text), once with --top 4 (the default: its 4 most likely
tokens at each position scored against the green lists, exact binomial), once with --top 0 (its
probability mass on the green list per distinct context, averaged over the context's occurrences,
normal tail; the control of these two is the marked teacher itself) and once paired: --baseline for
each of the first --baselines labels-only students, whose mean green mass is subtracted context by
context (the control: the next labels-only student, against the same baselines).
Nulls: students trained without marked data (labels only, --seeds seeds; top-20 and text only from the
unmarked server) verified against the marking key; and --other-keys keys that never marked anything (a guard
database each, one `retort serve` start recording the serving), each verified once, on every student in turn
(those that saw marked data included). Tests under one key are not independent draws: they share most of
their scored (context, prediction) pairs, and so most of the key's luck on them; tests under different keys
are independent. The p-values of each set: a KS test against uniform, the false-positive rate at 0.01.
Prints Markdown tables on stdout; details on stderr and in --work.
Usage: /usr/bin/python3 bench/radioactivity_table.py [--retort build/retort] [--teacher runs/demo-lm/teacher]
       [--tokens 262144] [--epochs 8] [--seeds 6] [--baselines 4] [--other-keys 40] [--work bench/out/radioactivity]
       (make bench-radioactivity)
The teacher is that of bench/watermark_table.py (trained into bench/out/kjv-teacher when missing).
"""
import argparse
import glob
import hashlib
import http.server
import json
import math
import os
import sqlite3
import sys
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import watermark_table as wt  # noqa: E402  (the shared helpers: KJV split, servers, teacher)

ROOT = wt.ROOT
PORTS = {"marked": 18094, "plain": 18095}  # fixed: the API harvest caches are keyed by URL, a rerun reuses them
PROXY_PORTS = {0.1: 18096, 0.05: 18097}
SHARES = [1.0, 0.1, 0.05]


# ---- the mixing proxy for top-k harvests ----------------------------------------------------------

class MixProxy:
    """An OpenAI-style endpoint in front of the two servers: a share of the completion requests (by a hash
    of the prompt) goes to the marked server as it is; the rest to the unmarked one, their echoed top
    logprobs turned into the true next token (the labels)."""

    def __init__(self, port, share, marked, plain):
        self.share, self.marked, self.plain = share, marked, plain
        self.counts = {"marked": 0, "labels": 0}
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def send(self, status, body):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def forward(self, base, method, body=None):
                req = urllib.request.Request(base + self.path[len("/v1"):], data=body, method=method, headers={
                    "Authorization": self.headers.get("Authorization", ""), "Content-Type": "application/json"})
                try:
                    with urllib.request.urlopen(req, timeout=300) as r:
                        return r.status, r.read()
                except urllib.error.HTTPError as e:
                    return e.code, e.read()

            def do_GET(self):
                self.send(*self.forward(proxy.marked, "GET"))

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                req = json.loads(body)
                h = int(hashlib.sha256(json.dumps(req.get("prompt")).encode()).hexdigest()[:16], 16) / 2.0 ** 64
                if h < proxy.share:
                    proxy.counts["marked"] += 1
                    self.send(*self.forward(proxy.marked, "POST", body))
                    return
                proxy.counts["labels"] += 1
                status, out = self.forward(proxy.plain, "POST", body)
                if status == 200:
                    ans = json.loads(out)
                    lp = ans["choices"][0]["logprobs"]
                    toks, top = lp["tokens"], lp["top_logprobs"]
                    n = len(req["prompt"])
                    for t in range(1, n):  # the distribution over token t: all on the true token
                        others = [s for s in top[t] if s != toks[t]]
                        top[t] = {toks[t]: 0.0, **{s: -30.0 for s in others[:len(top[t]) - 1]}}
                    out = json.dumps(ans).encode()
                self.send(status, out)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{port}/v1"

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


# ---- runs -----------------------------------------------------------------------------------------

def student_sets(a, name, seed):
    return ["--set", f"run.dir={a.runs}", "--set", f"run.name={name}", "--set", f"run.seed={seed}",
            "--set", f"model.d_model={a.d_model}", "--set", f"model.layers={a.layers}", "--set", f"model.heads={a.heads}",
            "--set", f"train.warmup_steps={a.warmup}", "--set", f"train.epochs={a.epochs}", "--set", f"text.val_tokens={a.val_tokens}"]


def distill(a, name, source, sets, seed=1, key="", cache=None):
    """One student; skipped when its run.json is there (--fresh-students redoes them), or when --only
    names others."""
    done = os.path.join(a.runs, name, "run.json")
    if a.only and name not in a.only:
        return None
    if os.path.exists(os.path.join(a.runs, name, "model", "model.json")) and not a.fresh_students:
        return json.load(open(done))  # trained (run.json alone is written when a run starts)
    cmd = [a.retort, "distill", "--config", os.path.join(ROOT, "configs/kjv-lm-kd.toml"), "--fresh",
           *student_sets(a, name, seed)]
    if source.startswith("http"):
        cmd += ["--teacher", f"openai:{source}", "--teacher-model", "kjv", "--api-key-env", "RETORT_KEY",
                "--set", "teacher.api_concurrency=4"]
    else:
        cmd += ["--teacher", source]
    cmd += ["--set", f"run.cache_dir={cache or os.path.join(a.work, 'cache')}"]
    for s in sets:
        cmd += ["--set", s]
    t0 = time.time()
    wt.run(cmd, os.path.join(a.runs, f"{name}.log"), {"RETORT_KEY": key})
    r = json.load(open(done))
    wt.log(f"{name}: val {r['val_bpb']:.4f} bits/byte ({time.time() - t0:.0f} s)")
    return r


def verify(a, db, name, reference=None, top=4):
    out = os.path.join(a.runs, "evidence", f"{name}@{os.path.basename(db)}-top{top}")
    cmd = [a.retort, "guard", "verify", "--db", db, "--suspect", os.path.join(a.runs, name, "model"),
           "--config", os.path.join(ROOT, "configs/kjv-lm.toml"), "--out", out]
    if top == "paired":  # the labels-only baseline students' mean green mass is subtracted
        for b in baselines(a):
            cmd += ["--baseline", os.path.join(a.runs, b, "model")]
    else:
        cmd += ["--top", str(top)]
    if reference:
        cmd += ["--reference", reference]
    os.makedirs(os.path.dirname(out), exist_ok=True)
    wt.run(cmd, out + ".log")
    return json.load(open(os.path.join(out, "evidence.json")))


def baselines(a):
    """The labels-only students the paired test subtracts: seeds 1 .. --baselines."""
    return [f"labels-s{s}" for s in range(1, a.baselines + 1)]


def both(a, db, name, reference=None, paired_name=None):
    """The open-model test's three statistics: top 4 (exact binomial over distinct (context, prediction)
    pairs), top 0 (green probability mass per distinct context, normal tail) and the paired one (top 0
    less the baselines' mean green mass, context by context) on paired_name (default: name; a baseline
    cannot be its own suspect: then that statistic is left out). The paired test's control is the first
    labels-only student after the baselines that is not the suspect (none: the marked teacher)."""
    out = {}
    for top in a.statistics:
        who, ref = name, reference
        if top == "paired":
            who = paired_name or name
            if who in baselines(a):
                continue
            ref = next((os.path.join(a.runs, f"labels-s{j}", "model") for j in range(a.baselines + 1, a.seeds + 1)
                        if f"labels-s{j}" != who), None)  # None: guard verify's default control, the marked teacher
        e = verify(a, db, who, ref, top)
        t = e["suspect"]["test"]
        out[top] = {"scored": t["tokens_scored"], "score": t["score"], "z": t["z"], "p": t["p_value"],
                    "control_p": e["control"]["test"]["p_value"]}
    return out


def kjv_eval(a, name):
    """The student's bits per byte on the held-out KJV (the mixed runs validate on their own mix)."""
    out = wt.output([a.retort, "eval", "--model", os.path.join(a.runs, name, "model"), "--json",
                     "--config", os.path.join(ROOT, "configs/kjv-lm.toml")])
    return json.loads(out)["val_bpb"] if "val_bpb" in out else float("nan")


def mix_corpus(a, written_file, share, kjv_train):
    """A JSONL corpus: teacher-written documents for `share` of the bytes, KJV training text for the rest (in
    pieces of verses about as long as a written document); the total about the bytes of all teacher-written documents. Returns (path, share of the bytes that
    retort trains on (its 5% validation split replicated), documents written, chapters)."""
    written = [json.loads(l)["text"] for l in open(written_file) if l.strip()]
    total = sum(len(d.encode()) for d in written)
    docs, nbytes = [], 0
    for d in written:
        if nbytes >= share * total:
            break
        docs.append(d)
        nbytes += len(d.encode())
    n_written = len(docs)
    for c in (p.rstrip("\n") for p in wt.chunks_of(kjv_train, size=len(written[0]))):  # pieces of a chapter
        if nbytes >= total:
            break
        docs.append(c)
        nbytes += len(c.encode())
    path = os.path.join(a.work, f"mix-{share:g}.jsonl")
    with open(path, "w") as f:
        for d in docs:
            f.write(json.dumps({"text": d}) + "\n")
    held = set(wt.held_out(docs))
    train_w = sum(len(d.encode()) for i, d in enumerate(docs[:n_written]) if i not in held)
    train_all = sum(len(d.encode()) for i, d in enumerate(docs) if i not in held)
    return path, train_w / train_all, n_written, len(docs) - n_written


# ---- statistics -----------------------------------------------------------------------------------

def ks_uniform(ps):
    """One-sample KS statistic against U(0, 1) and its asymptotic p-value (Stephens' small-n correction)."""
    xs, n = sorted(ps), len(ps)
    d = max(max((i + 1) / n - x, x - i / n) for i, x in enumerate(xs))
    lam = (math.sqrt(n) + 0.12 + 0.11 / math.sqrt(n)) * d
    p = 2 * sum((-1) ** (k - 1) * math.exp(-2 * k * k * lam * lam) for k in range(1, 101))
    return d, min(1.0, max(0.0, p))


def fmt_p(p):
    return wt.fmt_p(p) if p > 0 else "< 1e-300"


# ---- main -----------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--retort", default=os.path.join(ROOT, "build/retort"))
    ap.add_argument("--teacher", default=os.path.join(ROOT, "runs/demo-lm/teacher"))
    ap.add_argument("--tokens", type=int, default=262144, help="student training tokens (KJV training split)")
    ap.add_argument("--val-tokens", type=int, default=16384, help="students' validation tokens (and harvested windows)")
    ap.add_argument("--d-model", type=int, default=64)
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--heads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--top-k", type=int, default=20)
    ap.add_argument("--seeds", type=int, default=6, help="labels-only students (the first --baselines are the paired test's baselines)")
    ap.add_argument("--baselines", type=int, default=4, help="labels-only students subtracted in the paired test")
    ap.add_argument("--other-keys", type=int, default=40, help="keys that marked nothing: one null test each, on the students in turn")
    ap.add_argument("--work", default=os.path.join(ROOT, "bench/out/radioactivity"))
    ap.add_argument("--fresh-students", action="store_true", help="retrain students already trained")
    ap.add_argument("--only", default="", help="train only these students (comma-separated names); the tests then skip "
                    "students that are not trained")
    ap.add_argument("--statistics", default="4,0,paired", help="which tests: 4 (top 4), 0 (green mass), paired")
    a = ap.parse_args()
    a.only = [n for n in a.only.split(",") if n]
    a.statistics = [x if x == "paired" else int(x) for x in a.statistics.split(",") if x]
    t_start = time.time()
    a.retort, a.work = os.path.abspath(a.retort), os.path.abspath(a.work)
    a.runs = os.path.join(a.work, f"runs-{a.d_model}x{a.layers}-e{a.epochs}-t{a.tokens}")  # harvests are shared
    os.makedirs(a.runs, exist_ok=True)
    a.retort = wt.private_copy(a.retort, a.work)
    teacher = wt.ensure_teacher(a.retort, a.teacher)
    wt.log(f"teacher {teacher}; students gpt {a.d_model}x{a.layers} on {a.tokens} tokens, {a.epochs} epoch(s)")

    # the marked server's database persists: the cached harvests were marked with its key
    db, plain_db = os.path.join(a.work, "serve.db"), os.path.join(a.work, "plain.db")
    keyfile = os.path.join(a.work, "api-key")
    if not (os.path.exists(db) and os.path.exists(keyfile)):
        key = wt.new_db(a.retort, db)
        open(keyfile, "w").write(key)
        for f in glob.glob(os.path.join(a.work, "cache*")):  # harvests of another key
            wt.output(["rm", "-rf", f])
    key = open(keyfile).read().strip()
    # the unmarked server needs the same API key: its own database gets a copy of the file
    for f in (plain_db, plain_db + "-wal", plain_db + "-shm"):
        if os.path.exists(f):
            os.remove(f)
    src, dst = sqlite3.connect(db), sqlite3.connect(plain_db)
    src.backup(dst)
    src.close(), dst.close()
    marked = wt.Server(a.retort, teacher, db, key, sets=["serve.watermark=kgw"], port=PORTS["marked"],
                       logfile=os.path.join(a.work, "serve-marked.log"))
    plain = wt.Server(a.retort, teacher, plain_db, key, port=PORTS["plain"], logfile=os.path.join(a.work, "serve-plain.log"))
    proxies = {s: MixProxy(p, s, marked.url, plain.url) for s, p in PROXY_PORTS.items()}
    rows, nulls = [], []
    try:
        labels = ["distill.alpha=0", "distill.top_k=1"]
        # students without marked data
        controls = []
        for seed in range(1, a.seeds + 1):
            distill(a, f"labels-s{seed}", teacher, labels + [f"text.train_tokens={a.tokens}"], seed=seed)
            controls.append((f"labels-s{seed}", f"labels only, seed {seed}"))
        distill(a, "plain-topk", plain.url, [f"distill.top_k={a.top_k}", f"text.train_tokens={a.tokens}"], key=key,
                cache=os.path.join(a.work, "cache-plain"))
        controls.append(("plain-topk", f"top-{a.top_k} of the unmarked server"))
        distill(a, "plain-seq", plain.url, ["distill.method=sequence", f"text.train_tokens={a.tokens // 4}"], key=key,
                cache=os.path.join(a.work, "cache-plain"))
        controls.append(("plain-seq", f"text of the unmarked server ({a.tokens // 4} tokens)"))

        # marked students
        marked_runs = []
        distill(a, "seq-100", marked.url, ["distill.method=sequence", f"text.train_tokens={a.tokens}"], key=key,
                cache=os.path.join(a.work, "cache-marked"))
        marked_runs.append(("seq-100", "text only (sequence KD)", 1.0, "all windows"))
        written = glob.glob(os.path.join(a.work, "cache-marked", "retort", "seqkd-api-*.jsonl")) or \
            glob.glob(os.path.join(a.work, "cache-marked", "seqkd-api-*.jsonl"))
        assert len(written) == 1, f"expected one sequence-KD harvest in cache-marked, found {written}"
        kjv_train, _ = wt.kjv_split(wt.kjv_chapters())
        for s in SHARES[1:]:
            path, share, nw, nk = mix_corpus(a, written[0], s, kjv_train)
            distill(a, f"seq-{s * 100:g}", teacher, labels + [f"text.corpus={path}", "text.train_tokens=0"])
            marked_runs.append((f"seq-{s * 100:g}", "text only (sequence KD)", share,
                                f"{nw} written documents + {nk} KJV pieces"))
        distill(a, "topk-100", marked.url, [f"distill.top_k={a.top_k}", f"text.train_tokens={a.tokens}"], key=key,
                cache=os.path.join(a.work, "cache-marked"))
        marked_runs.append(("topk-100", f"top-{a.top_k} logprobs", 1.0, "all windows"))
        for s, proxy in proxies.items():
            before = dict(proxy.counts)
            distill(a, f"topk-{s * 100:g}", proxy.url, [f"distill.top_k={a.top_k}", f"text.train_tokens={a.tokens}"],
                    key=key, cache=os.path.join(a.work, f"cache-proxy-{s:g}"))
            m, l = proxy.counts["marked"] - before["marked"], proxy.counts["labels"] - before["labels"]
            counted = os.path.join(a.work, f"cache-proxy-{s:g}", "proxy-counts.json")
            if m + l:  # kept beside the harvest: a rerun that finds it cached asks nothing
                json.dump({"marked": m, "labels": l}, open(counted, "w"))
            elif os.path.exists(counted):
                m, l = json.load(open(counted)).values()
            got = f"{m} of {m + l} requests (training + validation windows) marked"
            marked_runs.append((f"topk-{s * 100:g}", f"top-{a.top_k} logprobs", s, got))
    finally:
        for p in proxies.values():
            p.stop()
        plain.stop()
        marked.stop()

    def trained(name):
        return os.path.exists(os.path.join(a.runs, name, "model", "model.json"))
    for name in [n for n, *_ in marked_runs + controls if not trained(n)]:
        wt.log(f"{name} is not trained (--only): not tested")
    marked_runs = [r for r in marked_runs if trained(r[0])]
    controls = [c for c in controls if trained(c[0])]

    # the test itself, and the same test under the marking key on every student that saw no marked data
    for name, kind, share, how in marked_runs:
        t0 = time.time()
        rows.append({"name": name, "kind": kind, "share": share, "how": how, "bpb": kjv_eval(a, name),
                     "test": both(a, db, name)})
        wt.log(f"{name}: {json.dumps(rows[-1])} ({time.time() - t0:.0f} s)")
    ref = os.path.join(a.runs, "labels-s1", "model")  # a small control model: the nulls' own control is not used
    same_key = []
    for name, why in controls:
        same_key.append({"suspect": name, "why": why, "test": both(a, db, name, ref)})
        wt.log(f"null {name} (marking key): {json.dumps(same_key[-1]['test'])}")

    # keys that marked nothing, one null test each (a database each, one marked start records the serving):
    # tests under one key share most of their scored pairs, tests under different keys are independent
    students = [c for c in controls] + [(n, f"{k}, {100 * s:.1f}% marked") for n, k, s, _ in marked_runs]
    unpaired = [s for s in students if s[0] not in baselines(a)]  # the paired test's suspects
    for k in range(a.other_keys):
        odb = os.path.join(a.work, f"other{k}.db")
        if not os.path.exists(odb):
            okey = wt.new_db(a.retort, odb)
            wt.Server(a.retort, teacher, odb, okey, sets=["serve.watermark=kgw"]).stop()
        name, why = students[k % len(students)]
        pname, pwhy = unpaired[k % len(unpaired)]
        nulls.append({"suspect": name, "why": why, "paired_suspect": pwhy, "key": f"other{k}",
                      "test": both(a, odb, name, ref, pname)})
        wt.log(f"null {name} (key other{k}): {json.dumps(nulls[-1]['test'])}")
    json.dump({"rows": rows, "same_key": same_key, "nulls": nulls}, open(os.path.join(a.runs, "results.json"), "w"), indent=1)

    names = {4: "top 4", 0: "top 0", "paired": "paired"}
    stats = a.statistics
    base = ", ".join(baselines(a))
    out = [f"Students: gpt {a.d_model}x{a.layers}, {a.epochs} epoch(s) over {a.tokens:,} training tokens. Open-model test "
           f"on the held-out KJV text: top 4 (exact binomial over distinct (context, prediction) pairs), top 0 "
           f"(green probability mass per distinct context, averaged over its occurrences, normal tail) and paired (top 0 "
           f"less the mean of the baselines {base}; its control: a later labels-only student). Shown: "
           f"{', '.join(names[t] for t in stats)}", "",
           "| student learns from | marked share of training text | how | val bits/byte (KJV) | "
           + " | ".join(f"{names[t]}: scored | z | p | control p" for t in stats) + " |",
           "|---|---:|---|---:|" + "---:|---:|---:|---:|" * len(stats)]

    def cells(t, top, scored=False, control=False):
        if top not in t:
            return " | ".join(["-"] * (2 + scored + control))
        x = t[top]
        c = [f"{x['scored']:,}"] if scored else []
        c += [f"{x['z']:.2f}", fmt_p(x["p"])]
        return " | ".join(c + ([fmt_p(x["control_p"])] if control else []))
    for r in rows:
        out.append(f"| {r['kind']} | {100 * r['share']:.1f}% | {r['how']} | {r['bpb']:.4f} | "
                   + " | ".join(cells(r["test"], t, True, True) for t in stats) + " |")

    def summary(tests, top):
        ps = [t["test"][top]["p"] for t in tests if top in t["test"]]
        zs = [t["test"][top]["z"] for t in tests if top in t["test"]]
        if not ps:
            return f"| {names[top]} | 0 | - | - | - | - | - | - |"
        d, kp = ks_uniform(ps)
        sd = math.sqrt(sum((z - sum(zs) / len(zs)) ** 2 for z in zs) / max(1, len(zs) - 1))
        return (f"| {names[top]} | {len(ps)} | {d:.3f} ({1.36 / math.sqrt(len(ps)):.3f}) | {kp:.2g} | "
                f"{sum(p < 0.01 for p in ps)}/{len(ps)} | {sum(p < 0.05 for p in ps)}/{len(ps)} | {min(ps):.3g} | "
                f"{sum(zs) / len(zs):.2f} ± {sd:.2f} |")
    head = ["| key | suspect | " + " | ".join(f"{names[t]}: z | p" for t in stats if t != "paired")
            + (" | paired: suspect | z | p" if "paired" in stats else "") + " |",
            "|---|---|" + "---:|---:|" * len([t for t in stats if t != "paired"]) + ("---|---:|---:|" if "paired" in stats else "")]
    sums = ["| statistic | n | KS D (5% critical 1.36/sqrt(n)) | KS p | p < 0.01 | p < 0.05 | smallest p | z: mean ± sd |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]

    def null_row(key, n, paired_who):
        t = n["test"]
        c = [cells(t, x) for x in stats if x != "paired"]
        if "paired" in stats:
            c += [paired_who if "paired" in t else "-", cells(t, "paired")]
        return f"| {key} | {n['why']} | " + " | ".join(c) + " |"
    out += ["", f"Nulls under {a.other_keys} keys that marked nothing (one test per key):", ""] + head
    out += [null_row(n["key"], n, n["paired_suspect"]) for n in nulls]
    out += [""] + sums + [summary(nulls, t) for t in stats]
    out += ["", "Students without marked data under the marking key (one key: these tests share most of their pairs):", ""]
    out += head + [null_row("marking key", n, n["why"]) for n in same_key]
    out += [""] + sums + [summary(same_key, t) for t in stats]
    print("\n".join(out))
    wt.log(f"total {time.time() - t_start:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
