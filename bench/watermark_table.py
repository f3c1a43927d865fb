#!/usr/bin/python3
"""What an output watermark costs and how quickly it shows (issue 14), on a KJV teacher behind `retort serve`.

One table per scheme: kgw (gamma 0.25, h 1) at several delta, and gumbel; each row is one `retort serve`
start with `--set serve.watermark=...` and a guard database of its own (one key). Measured per row:
  - served validation bits per byte: the held-out KJV text (tokenized by the server) in windows of 128
    tokens, sent as token-id prompts with echo + logprobs and max_tokens 0; positions 1..126 of each
    window scored (-sum log2 p / the bytes those tokens stand for, from text_offset). The logprobs are
    those of the marked distribution, so this is what a client of the marked server sees.
  - perplexity of generated text under the unmarked teacher: --generations prompts of 16 held-out tokens,
    continued by the marked server at temperature 1 (segments of 112 tokens: the model's context is 128;
    a next segment is prompted with the last 16 tokens written), each segment then scored by an unmarked
    server with the very context it was written from (echo + logprobs); exp of the mean NLL per token.
  - tokens needed for p < 1e-6: `retort guard detect` on every prefix (each 2-8 tokens) of each
    generation's text; the shortest prefix that reaches p < 1e-6, median over the generations. A
    generation that has not reached it after --seg-min segments is continued, up to --max-tokens.
  - p-value after 10% and 30% of the tokens are replaced by uniformly random ones (positions and tokens
    drawn at random, the text re-decoded and re-tokenized by the detector), on the first --edit-tokens
    tokens of each generation; median over the generations.
  - the null: unmarked generations of the same prompts scored under each row's key (median p, and how
    many fall below 1e-6).
Each row is measured under --keys keys (a guard database and a server start each; other sampling seeds per
key): medians pool the generations of all keys, bits/byte and perplexity give their range over the keys
(the unmarked row: over as many seed sets).
Prints the Markdown tables on stdout; everything else goes to stderr and --work.
Usage: /usr/bin/python3 bench/watermark_table.py [--retort build/retort] [--teacher runs/demo-lm/teacher]
       [--generations 128] [--keys 3] [--work bench/out/watermark]   (make bench-watermark)
With no teacher at --teacher, the one of bench/out/kjv-teacher is used, trained there first if missing
(bench/api_table.py's recipe: gpt 192x4 on 600,000 KJV training tokens, 2 epochs).
Also the helpers of bench/radioactivity_table.py (KJV split, servers, the tokenizer through the API).
"""
import argparse
import concurrent.futures
import json
import math
import os
import random
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {"RETORT_NO_BLAS_WARNING": "1"}
CONTEXT = 128  # the teacher's max_seq_len (configs/kjv-lm.toml)
PROMPT = 16  # tokens of held-out text each generation starts from
SEGMENT = CONTEXT - PROMPT  # tokens written per request
DEFAULT_TEACHER = os.path.join(ROOT, "bench/out/kjv-teacher/teacher")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def run(cmd, logfile, env=None):
    with open(logfile, "w") as f:
        r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env={**os.environ, **ENV, **(env or {})})
    if r.returncode:
        sys.exit(f"failed ({r.returncode}): {' '.join(cmd)}\n  see {logfile}")


def output(cmd, env=None):
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **ENV, **(env or {})})
    if r.returncode:
        sys.exit(f"failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr[-2000:]}")
    return r.stdout


def private_copy(retort, work):
    """A copy of the binary for this run: other builds in the tree may replace build/retort mid-run."""
    dst = os.path.join(work, "retort")
    tmp = dst + ".tmp"
    with open(retort, "rb") as f, open(tmp, "wb") as g:
        g.write(f.read())
    os.chmod(tmp, 0o755)
    os.replace(tmp, dst)
    head = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--", "src", "include", "tools"],
                           capture_output=True, text=True).stdout.split("\n")
    built = time.strftime("%Y-%m-%d %H:%M", time.localtime(os.path.getmtime(retort)))
    log(f"retort: {retort} built {built}, tree at {head}"
        + (f" with {len([d for d in dirty if d])} uncommitted paths under src/ include/ tools/" if any(dirty) else ""))
    return dst


# ---- the KJV, split as retort splits it (src/data/text_corpus.cpp, src/distill/text_data.cpp) ------

M64 = (1 << 64) - 1


def mix_seed(a, b, c=0):
    def mix(z):
        z = (z + 0x9E3779B97F4A7C15) & M64
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        return z ^ (z >> 31)
    return mix(mix(mix(a) ^ b) ^ c)


def kjv_chapters():
    """The 1189 chapters as retort's load_kjv() reads them: heading line, then one verse per line."""
    raw = subprocess.run(["bible", "Gen1:1-Rev22:21"], capture_output=True, check=True).stdout.decode("utf-8", "replace")
    chapters, after_blank = [], False
    for line in raw.split("\n"):
        if not line:
            after_blank = True
            continue
        p = len(line) - len(line.lstrip(" "))
        d = p
        while d < len(line) and line[d].isdigit():
            d += 1
        if p > 0 and p < len(line) and d > p and d < len(line) and line[d] == " ":
            chapters[-1] += "\n" + line[d + 1:]
        elif after_blank:
            chapters.append(line)
        else:
            chapters[-1] += " " + line
        after_blank = False
    assert len(chapters) == 1189, len(chapters)
    return chapters


def kjv_split(docs, fraction=0.05, seed=0x5E1177):
    """(train, validation) documents: document i is held out when mix_seed(seed, i) / 2^64 < fraction."""
    train, val = [], []
    for i, d in enumerate(docs):
        (val if (mix_seed(seed, i) >> 11) * 2.0 ** -53 < fraction else train).append(d)
    return train, val


def held_out(docs, fraction=0.05):
    return [i for i in range(len(docs)) if (mix_seed(0x5E1177, i) >> 11) * 2.0 ** -53 < fraction]


# ---- the teacher ----------------------------------------------------------------------------------

def ensure_teacher(retort, teacher, tokens=600000):
    teacher = os.path.abspath(teacher)
    if os.path.exists(os.path.join(teacher, "run.json")):
        return teacher
    teacher = DEFAULT_TEACHER
    if not os.path.exists(os.path.join(teacher, "run.json")):
        work = os.path.dirname(teacher)
        os.makedirs(work, exist_ok=True)
        log(f"training a teacher (gpt 192x4, {tokens} tokens, 2 epochs) into {teacher} ...")
        run([retort, "train", "--config", os.path.join(ROOT, "configs/kjv-lm.toml"), "--set", f"run.dir={work}",
             "--set", "run.name=teacher", "--set", "model.d_model=192", "--set", "model.layers=4",
             "--set", "train.epochs=2", "--set", "train.lr=0.002", "--set", f"text.train_tokens={tokens}",
             "--fresh"], os.path.join(work, "teacher.log"), {"XDG_CACHE_HOME": os.path.join(work, "cache")})
    return teacher


# ---- guard databases and servers ------------------------------------------------------------------

def new_db(retort, path, marked=True):
    """A fresh guard database with one API key (returned) and, when marked, one watermark key."""
    for f in (path, path + "-wal", path + "-shm"):
        if os.path.exists(f):
            os.remove(f)
    key = output([retort, "keys", "create", "--name", "bench", "--db", path]).strip()
    if marked:
        output([retort, "guard", "keys", "rotate", "--db", path])
    return key


class Server:
    """`retort serve` of one model on a free loopback port, until stop()."""

    def __init__(self, retort, model, db, key, sets=(), logfile=os.devnull, port=0, workers=2, name="kjv"):
        cmd = [retort, "serve", "--model", f"{name}={model}", "--port", str(port), "--db", db, "--workers", str(workers),
               "--queue", "256"]
        for s in sets:
            cmd += ["--set", s]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=open(logfile, "w"), text=True,
                                     env={**os.environ, **ENV})
        line = self.proc.stdout.readline().strip()
        if not line.isdigit():
            self.proc.kill()
            sys.exit(f"retort serve did not start: {' '.join(cmd)}\n  see {logfile}")
        self.port, self.key, self.name = int(line), key, name
        self.url = f"http://127.0.0.1:{self.port}/v1"

    def post(self, body, path="completions", tries=5):
        data = json.dumps({"model": self.name, **body}).encode()
        for attempt in range(tries):
            req = urllib.request.Request(f"{self.url}/{path}", data=data, headers={
                "Content-Type": "application/json", "Authorization": f"Bearer {self.key}"})
            try:
                with urllib.request.urlopen(req, timeout=300) as r:
                    return json.loads(r.read())
            except urllib.error.HTTPError as e:
                if e.code in (400, 401, 403, 404):
                    raise
                err = e
            except (urllib.error.URLError, ConnectionError) as e:
                err = e
            time.sleep(0.5 * (attempt + 1))
        raise RuntimeError(f"POST {path} failed {tries} times: {err}")

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def pmap(fn, items, workers=2):
    with concurrent.futures.ThreadPoolExecutor(workers) as ex:
        return list(ex.map(fn, items))


# ---- the tokenizer, through the API ---------------------------------------------------------------

class Vocab:
    """Each id's string in `logprobs.tokens` (unique per id) and the text it decodes to, asked of a server
    one id at a time (echo, max_tokens 0); encode() tokenizes text the same way (echo of a text prompt)."""

    def __init__(self, server, size):
        def one(i):
            r = server.post({"prompt": [i], "max_tokens": 0, "echo": True, "logprobs": 0})
            c = r["choices"][0]
            return c["logprobs"]["tokens"][0], c["text"]
        pairs = pmap(one, range(size), workers=4)
        self.strings = [p[0] for p in pairs]
        self.text = [p[1] for p in pairs]
        self.ids = {s: i for i, s in enumerate(self.strings)}
        assert len(self.ids) == size, "token strings are not unique"

    def ids_of(self, answer):
        return [self.ids[s] for s in answer["choices"][0]["logprobs"]["tokens"]]

    def encode(self, server, text):
        """ids of text; text longer than the model's context is cut at line or word breaks."""
        try:
            return self.ids_of(server.post({"prompt": text, "max_tokens": 0, "echo": True, "logprobs": 0}))
        except urllib.error.HTTPError as e:
            if e.code != 400:
                raise
        cut = text.rfind("\n", 0, len(text) // 2 + 1)
        if cut <= 0:
            cut = text.rfind(" ", 0, len(text) // 2 + 1)
        if cut <= 0:
            cut = len(text) // 2
        return self.encode(server, text[:cut]) + self.encode(server, text[cut:])

    def decode(self, ids):
        return "".join(self.text[i] for i in ids)


def chunks_of(docs, size=300):
    """Documents cut into pieces of about `size` characters after line breaks (each fits the context),
    "\n\n" after each document as retort puts between documents."""
    out = []
    for d in docs:
        lines = d.split("\n")
        cur = ""
        for i, line in enumerate(lines):
            piece = line + ("\n" if i + 1 < len(lines) else "\n\n")
            if cur and len(cur) + len(piece) > size:
                out.append(cur)
                cur = ""
            cur += piece
        out.append(cur)
    return out


def tokenize_docs(vocab, server, docs):
    return [i for ids in pmap(lambda c: vocab.encode(server, c), chunks_of(docs)) for i in ids]


# ---- measurements ---------------------------------------------------------------------------------

LN2 = math.log(2)


def served_bpb(server, windows):
    """Bits per byte of the served distribution over token windows (positions 1..len-2 of each)."""
    def one(w):
        lp = server.post({"prompt": w, "max_tokens": 0, "echo": True, "logprobs": 0})["choices"][0]["logprobs"]
        off = lp["text_offset"]
        return -sum(lp["token_logprobs"][1:len(w) - 1]), off[len(w) - 1] - off[1], len(w) - 2
    parts = pmap(one, windows)
    return sum(p[0] for p in parts) / LN2 / sum(p[1] for p in parts), sum(p[2] for p in parts)


def generate(server, vocab, prompts, segments, seed0, gens=None):
    """Continues each prompt by `segments` requests of SEGMENT tokens at temperature 1; gens (if given)
    are extended. Each generation: {"prompt": ids, "segments": [(context ids, written ids)]}."""
    gens = gens or [{"prompt": p, "segments": []} for p in prompts]

    def one(j):
        g = gens[j]
        while len(g["segments"]) < segments:
            ctx = g["segments"][-1][1][-PROMPT:] if g["segments"] else g["prompt"]
            r = server.post({"prompt": ctx, "max_tokens": SEGMENT, "temperature": 1.0, "logprobs": 0,
                             "seed": seed0 + 1000 * j + len(g["segments"])})
            g["segments"].append((ctx, vocab.ids_of(r)))
        return g
    return pmap(one, range(len(gens)))


def written(g):
    return [i for _, w in g["segments"] for i in w]


def nll_under(server, gens):
    """Total NLL (nats) and tokens of the written segments under `server`, each with its own context."""
    def one(seg):
        ctx, w = seg
        lp = server.post({"prompt": ctx + w, "max_tokens": 0, "echo": True, "logprobs": 0})["choices"][0]["logprobs"]
        return -sum(lp["token_logprobs"][len(ctx):]), len(w)
    parts = pmap(one, [s for g in gens for s in g["segments"]])
    return sum(p[0] for p in parts), sum(p[1] for p in parts)


def detect(retort, db, texts, path):
    """`retort guard detect` of texts (one JSONL line each): their results in order."""
    with open(path, "w") as f:
        for t in texts:
            f.write(json.dumps({"text": t}) + "\n")
    lines = output([retort, "guard", "detect", "--db", db, path]).splitlines()
    out = [json.loads(l) for l in lines]
    assert len(out) == len(texts), (len(out), len(texts))
    return out


def prefix_lengths(n):
    return [k for k in range(2, n + 1) if (k <= 64 and k % 2 == 0) or (k <= 128 and k % 4 == 0) or k % 8 == 0 or k == n]


def tokens_needed(retort, db, vocab, gens, path, threshold=1e-6):
    """Per generation: (tokens written, distinct pairs scored) of the shortest prefix with p < threshold, or None."""
    texts, owner = [], []
    for j, g in enumerate(gens):
        ids = written(g)
        for k in prefix_lengths(len(ids)):
            texts.append(vocab.decode(ids[:k]))
            owner.append((j, k))
    best = [None] * len(gens)
    for (j, k), d in zip(owner, detect(retort, db, texts, path)):
        if d["p_value"] < threshold and (best[j] is None or k < best[j][0]):
            best[j] = (k, d["tokens_scored"])
    return best


def replaced(ids, share, rng, valid):
    ids = list(ids)
    for pos in rng.sample(range(len(ids)), round(share * len(ids))):
        ids[pos] = rng.choice(valid)
    return ids


def median_of(values):
    return statistics.median(values) if values else float("nan")


def fmt_p(p):
    return "1" if p >= 0.9995 else f"{p:.2g}" if p >= 1e-3 else f"{p:.1e}".replace("e-0", "e-")


def fmt_needed(best, max_tokens):
    """Median tokens (and distinct pairs scored) to p < 1e-6; generations that never got there count as
    longer than all the others."""
    n = len(best)
    got = sorted(b for b in best if b is not None)
    if len(got) * 2 <= n:
        return f"> {max_tokens}", f"{len(got)}/{n}"
    ks = sorted([b[0] for b in got] + [math.inf] * (n - len(got)))
    scored = sorted([b[1] for b in got] + [math.inf] * (n - len(got)))
    q1, med, q3 = ks[n // 4], statistics.median(ks), ks[(3 * n) // 4]
    fq = lambda v: f"> {max_tokens}" if v == math.inf else f"{v:g}"
    return f"{med:g} [{fq(q1)}-{fq(q3)}] ({statistics.median(scored):g} scored)", f"{len(got)}/{n}"


# ---- main -----------------------------------------------------------------------------------------

ROWS = [  # (table, label, --set pairs)
    ("kgw", "kgw, delta 1", ["serve.watermark=kgw", "serve.watermark_delta=1"]),
    ("kgw", "kgw, delta 2 (default)", ["serve.watermark=kgw", "serve.watermark_delta=2"]),
    ("kgw", "kgw, delta 4", ["serve.watermark=kgw", "serve.watermark_delta=4"]),
    ("gumbel", "gumbel", ["serve.watermark=gumbel"]),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--retort", default=os.path.join(ROOT, "build/retort"))
    ap.add_argument("--teacher", default=os.path.join(ROOT, "runs/demo-lm/teacher"))
    ap.add_argument("--generations", type=int, default=128, help="prompts continued per row (>= 100 for the issue)")
    ap.add_argument("--seg-min", type=int, default=2, help="segments of 112 tokens every generation gets")
    ap.add_argument("--max-tokens", type=int, default=448, help="a generation not yet at p < 1e-6 is continued to this")
    ap.add_argument("--edit-tokens", type=int, default=200, help="tokens of each generation the edits are made on")
    ap.add_argument("--bpb-windows", type=int, default=0, help="held-out windows scored (0: all)")
    ap.add_argument("--keys", type=int, default=3, help="watermark keys per row (a fresh guard database each)")
    ap.add_argument("--rows", default="", help="comma-separated row numbers to run (default: all)")
    ap.add_argument("--work", default=os.path.join(ROOT, "bench/out/watermark"))
    a = ap.parse_args()
    t_start = time.time()
    retort, work = os.path.abspath(a.retort), os.path.abspath(a.work)
    os.makedirs(work, exist_ok=True)
    retort = private_copy(retort, work)
    max_segments = max(a.seg_min, math.ceil(a.max_tokens / SEGMENT))
    teacher = ensure_teacher(retort, a.teacher)
    t = json.load(open(os.path.join(teacher, "run.json")))
    log(f"teacher {teacher}: {t['params']} params, val {t['val_bpb']:.4f} bits/byte")

    plain_db = os.path.join(work, "plain.db")
    plain = Server(retort, teacher, plain_db, new_db(retort, plain_db, marked=False), logfile=os.path.join(work, "plain.log"))
    try:
        vocab = Vocab(plain, t.get("vocab_size") or json.load(open(os.path.join(teacher, "model", "model.json")))["options"]["vocab_size"])
        valid = [i for i, s in enumerate(vocab.text) if s.strip() and "\ufffd" not in s]
        _, val_docs = kjv_split(kjv_chapters())
        t0 = time.time()
        val_ids = tokenize_docs(vocab, plain, val_docs)
        windows = [val_ids[i:i + CONTEXT] for i in range(0, len(val_ids) - CONTEXT + 1, CONTEXT)]
        if a.bpb_windows:
            windows = windows[:a.bpb_windows]
        log(f"held-out text: {len(val_docs)} chapters, {len(val_ids)} tokens, {len(windows)} windows "
            f"({time.time() - t0:.0f} s)")
        step = len(windows) // a.generations
        assert step >= 1, "more generations than held-out windows"
        prompts = [windows[j * step][:PROMPT] for j in range(a.generations)]

        t0 = time.time()
        base_bpb, scored = served_bpb(plain, windows)
        log(f"unmarked: {base_bpb:.4f} bits/byte served on {scored} tokens ({time.time() - t0:.0f} s)")
        base = []  # per key: the unmarked generations of that key's seeds, and their NLL under the unmarked server
        for k in range(a.keys):
            t0 = time.time()
            gens = generate(plain, vocab, prompts, a.seg_min, seed0=7 + 100000 * k)
            nll, n = nll_under(plain, gens)
            base.append({"gens": gens, "nll": nll, "n": n})
            log(f"unmarked, seeds {k}: {len(gens)} generations of {a.seg_min * SEGMENT} tokens, perplexity "
                f"{math.exp(nll / n):.2f} ({time.time() - t0:.0f} s)")
        results = []
        rows = [ROWS[int(i)] for i in a.rows.split(",")] if a.rows else ROWS
        for table, label, sets in rows:
            per_key = []
            for k in range(a.keys):
                t0 = time.time()
                db = os.path.join(work, f"row{ROWS.index((table, label, sets))}-key{k}.db")
                marked = Server(retort, teacher, db, new_db(retort, db), sets=sets, logfile=db + ".log")
                try:
                    bpb, _ = served_bpb(marked, windows)
                    gens = generate(marked, vocab, prompts, a.seg_min, seed0=7 + 100000 * k)
                    best = tokens_needed(retort, db, vocab, gens, os.path.join(work, "prefixes.jsonl"))
                    for segs in range(a.seg_min + 1, max_segments + 1):  # continue the ones not there yet
                        todo = [j for j, b in enumerate(best) if b is None]
                        if not todo:
                            break
                        more = generate(marked, vocab, None, segs, seed0=7 + 100000 * k, gens=[gens[j] for j in todo])
                        for j, g in zip(todo, more):
                            gens[j] = g
                        again = tokens_needed(retort, db, vocab, [gens[j] for j in todo], os.path.join(work, "prefixes.jsonl"))
                        for j, b in zip(todo, again):
                            best[j] = b
                finally:
                    marked.stop()
                nll, n = nll_under(plain, [{"prompt": g["prompt"], "segments": g["segments"][:a.seg_min]} for g in gens])
                rng = random.Random(14 + k)
                edit = {}
                for share in (0.0, 0.1, 0.3):
                    texts = [vocab.decode(replaced(written(g)[:a.edit_tokens], share, rng, valid)) for g in gens]
                    edit[share] = [d["p_value"] for d in detect(retort, db, texts, os.path.join(work, "edits.jsonl"))]
                null = [d["p_value"] for d in detect(retort, db, [vocab.decode(written(g)[:a.edit_tokens])
                                                                  for g in base[k]["gens"]], os.path.join(work, "null.jsonl"))]
                per_key.append({"bpb": bpb, "nll": nll, "n": n, "best": best, "edit": edit, "null": null,
                                "seconds": time.time() - t0})
                log(f"{label}, key {k}: {bpb:.4f} bits/byte, perplexity {math.exp(nll / n):.2f}, tokens to 1e-6 "
                    f"{fmt_needed(best, a.max_tokens)[0]}, median p {fmt_p(median_of(edit[0.0]))} / "
                    f"{fmt_p(median_of(edit[0.1]))} / {fmt_p(median_of(edit[0.3]))} ({time.time() - t0:.0f} s)")
            pool = lambda f: [x for pk in per_key for x in f(pk)]
            needed, reached = fmt_needed(pool(lambda pk: pk["best"]), a.max_tokens)
            e = {s: pool(lambda pk: pk["edit"][s]) for s in (0.0, 0.1, 0.3)}
            null = pool(lambda pk: pk["null"])
            results.append({
                "table": table, "label": label, "bpbs": [pk["bpb"] for pk in per_key],
                "ppl": math.exp(sum(pk["nll"] for pk in per_key) / sum(pk["n"] for pk in per_key)),
                "ppls": [math.exp(pk["nll"] / pk["n"]) for pk in per_key], "needed": needed, "reached": reached,
                "p0": median_of(e[0.0]), "p10": median_of(e[0.1]), "p30": median_of(e[0.3]),
                "p10_hit": sum(p < 1e-6 for p in e[0.1]), "p30_hit": sum(p < 1e-6 for p in e[0.3]),
                "null_median": median_of(null), "null_min": min(null), "null_hits": sum(p < 1e-6 for p in null),
                "n": len(null), "seconds": sum(pk["seconds"] for pk in per_key)})
            json.dump(results, open(os.path.join(work, "results.json"), "w"), indent=1)
            log(json.dumps(results[-1]))
    finally:
        plain.stop()

    base_ppls = [math.exp(b["nll"] / b["n"]) for b in base]
    base_ppl = math.exp(sum(b["nll"] for b in base) / sum(b["n"] for b in base))
    rng_of = lambda xs, f: f" ({f(min(xs))}-{f(max(xs))})" if len(xs) > 1 else ""
    n = a.keys * a.generations
    out = [f"teacher: {teacher} ({t['params']} params, val {t['val_bpb']:.4f} bits/byte in its run); unmarked served: "
           f"{base_bpb:.4f} bits/byte; {a.keys} key(s) per row (a guard database and a server start each), "
           f"{a.generations} generations per key; ranges are over the keys", ""]
    for table in ("kgw", "gumbel"):
        rs = [r for r in results if r["table"] == table]
        if not rs:
            continue
        out += [f"| {table} | served val bits/byte | Δ | perplexity of generations under unmarked | tokens for p < 1e-6: "
                f"median [IQR] (pairs scored) | reached | median p, {a.edit_tokens} tokens | 10% replaced | 30% replaced | "
                f"unmarked text: median p (p < 1e-6) |",
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
                f"| unmarked | {base_bpb:.4f} | - | {base_ppl:.2f}{rng_of(base_ppls, lambda v: f'{v:.1f}')} | - | - | - | - | - | - |"]
        for r in rs:
            bpb = statistics.mean(r["bpbs"])
            out.append(f"| {r['label']} | {bpb:.4f}{rng_of(r['bpbs'], lambda v: f'{v:.4f}')} | {bpb - base_bpb:+.4f} | "
                       f"{r['ppl']:.2f}{rng_of(r['ppls'], lambda v: f'{v:.1f}')} | {r['needed']} | {r['reached']} | "
                       f"{fmt_p(r['p0'])} | {fmt_p(r['p10'])} ({r['p10_hit']}/{n} < 1e-6) | "
                       f"{fmt_p(r['p30'])} ({r['p30_hit']}/{n} < 1e-6) | {fmt_p(r['null_median'])} ({r['null_hits']}/{n}) |")
        out.append("")
    print("\n".join(out))
    log(f"total {time.time() - t_start:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
