#!/usr/bin/python3
"""DAWN (issue 14, classifiers): is a student distilled through a marked `retort serve` /v1/classify found by
`retort guard verify`, are students that never saw marked answers left alone, and what does marking cost the
teacher's served accuracy?

The teacher is a Fashion-MNIST CNN (--teacher, default bench/out/tree/teacher; trained there with
bench/tree_table.py's teacher settings when missing). It is served twice on loopback, on fixed ports (the
API harvest caches are keyed by URL, so a rerun reuses them):
  - marked: `retort serve --db WORK/marked.db --set serve.watermark=kgw --set serve.dawn_share=SHARE`
    (`guard keys rotate` made the key). A keyed share of the inputs, chosen by a keyed hash of the pixels, is
    answered with a keyed wrong class (the top probability moved to it); each marked answer is a dawn_marks row.
  - unmarked: the same teacher, another database (WORK/plain.db), no watermark.
Students are the config's MLP (configs/fashion-mnist.toml, 784-128-10) on the 60,000 training images, under
the recipes of RECIPES below (sgd5: 5 epochs of SGD at lr 0.15; adamw30: the config's own 30 epochs of AdamW
1e-3; adamw30-wide: the same with 1,024 hidden units; adamw100: 100 epochs of AdamW 1e-3):
  - thieves (--thieves RECIPE:ALPHA,..., seeds 0..--seeds-1): `retort distill --teacher openai:MARKED
    --teacher-model fashion --api-key-env RETORT_KEY --set distill.alpha=ALPHA` (1: soft targets only; 0.9:
    the config's mix with labels). The first one harvests the 60,000 training and 10,000 test images through
    the API; the others reuse the cache (WORK/cache-marked).
  - controls (--controls RECIPE:N,...): N labels-only students (`retort train`, seeds 0..N-1) and N students
    distilled (alpha 1) through the unmarked server, per recipe.
Every student is tested by `retort guard verify --db marked.db --suspect RUN` (DAWN: the suspect's top class on
the marked inputs where it is not the served model's top class, against the class the server answered;
one-sided exact binomial at 1/(classes - 1)); evidence.json gives the marked inputs (predictions), those
scored (tokens_scored), the agreements (score), z and p.
Other keys (--other-keys K): K databases of their own (WORK/keys/), each with a fresh watermark key and one
marked `retort serve` of the teacher that classifies all 70,000 images (through this script's client, so that
each key marks what a harvest would); each key then tests one control (going round them) with guard verify.
Keys are independent, so these K tests are independent draws; the tests of many students under the marking
key are not (they share that key's marked inputs and wrong classes).
The figures:
  - teacher, own test accuracy: its run.json; served: the teacher's value in the thieves' report.json (the
    10,000 test images answered through the marked API; the unmarked API's from the controls'). The marked
    share: the distinct inputs in dawn_marks, matched by their pixels to the training and test images. A marked
    test image lowers the served accuracy by one image when the teacher had it right, and raises it by one when
    the teacher had it wrong and the answered class happens to be the true label.
  - thieves: test accuracy (run.json); marked inputs scored; agreement with the answered wrong classes (score /
    marked inputs; chance in the test is 1/9 of the inputs it scores), also split into the marked training images (the student was
    taught the wrong class) and the marked test images (it never saw them); z and p of guard verify.
  - controls: a one-sample Kolmogorov-Smirnov test of their p-values against uniform (two-sided D and its
    asymptotic p, with Stephens' small-sample correction) and the one-sided D+ = max(i/n - p_(i)) (large when
    p-values are too small, i.e. anti-conservative; p = exp(-2 n D+^2)); the counts below 0.01 and 0.05; the
    smallest p.
  - the conditional test, computed here from the script's own predictions as a cross-check of guard verify's
    (the same test since f437d45; before it, guard verify counted every marked input and was conservative):
    DAWN's wrong class is uniform over the classes other than the teacher's top one, so a student that never
    saw the marks agrees with it with probability exactly 1/(classes - 1) on the inputs where its own top class
    differs from the teacher's, and never elsewhere. Top classes come from a scratch `retort serve` of the
    teacher and every student without a watermark (WORK/predict.db). For the KS test its p-values are
    randomised within the tied atom (P(X > s) + U P(X = s), U from a fixed seed).
Prints Markdown tables on stdout; details on stderr and in --work. Finished runs, verifications and key
databases are reused.
Usage: /usr/bin/python3 bench/dawn_table.py [--retort build/retort] [--teacher bench/out/tree/teacher]
       [--share 0.05] [--thieves sgd5:1,...] [--seeds 3] [--controls sgd5:10,...] [--other-keys 20]
       [--work bench/out/dawn]                                                               (make bench-dawn)
Run it with OMP_NUM_THREADS=1 on a shared machine: it runs one retort process at a time.
"""
import argparse
import base64
import collections
import gzip
import hashlib
import json
import math
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(ROOT, "configs/fashion-mnist.toml")
DATA = "/usr/share/datasets/fashion-mnist"
ENV = {"RETORT_NO_BLAS_WARNING": "1"}
PORTS = {"marked": 18098, "plain": 18099}  # fixed: the API harvest caches are keyed by URL, a rerun reuses them
TEACHER_KEYS = ["model.name=cnn", "model.channels=32,64", "model.hidden=512", "model.dropout=0.3",
                "train.epochs=6", "train.optimizer=adamw", "train.lr=0.002", "train.weight_decay=0.0001",
                "train.warmup_steps=100"]  # bench/tree_table.py's teacher
RECIPES = {  # the students' settings over configs/fashion-mnist.toml (AdamW 1e-3, 100 warm-up steps, 30 epochs)
    "sgd5": ["train.epochs=5", "train.optimizer=sgd", "train.lr=0.15"],
    "adamw30": [],
    "adamw30-wide": ["model.hidden=1024"],
    "adamw100": ["train.epochs=100"],
}
RECIPE_TEXT = {"sgd5": "5 epochs SGD 0.15", "adamw30": "30 epochs AdamW (the config's)",
               "adamw30-wide": "30 epochs AdamW, 1,024 hidden", "adamw100": "100 epochs AdamW"}
CLASSES = 10
Student = collections.namedtuple("Student", "kind recipe alpha seed path")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def run(cmd, logfile, env=None):
    log("  $", " ".join(cmd))
    with open(logfile, "w") as f:
        r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env={**os.environ, **ENV, **(env or {})})
    if r.returncode:
        sys.exit(f"failed ({r.returncode}): {' '.join(cmd)}\n  see {logfile}")


def output(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **ENV})
    if r.returncode:
        sys.exit(f"failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr[-2000:]}")
    return r.stdout


def sets(pairs):
    return [x for p in pairs for x in ("--set", p)]


def private_copy(retort, work):
    """A copy of the binary for this run: other builds in the tree may replace build/retort mid-run."""
    dst = os.path.join(work, "retort")
    shutil.copyfile(retort, dst + ".tmp")
    os.chmod(dst + ".tmp", 0o755)
    os.replace(dst + ".tmp", dst)
    head = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    built = time.strftime("%Y-%m-%d %H:%M", time.localtime(os.path.getmtime(retort)))
    log(f"retort: {retort} built {built}, tree at {head}")
    return dst


def finished(run_dir):
    """A run that ended (run.json alone is written when a run starts)."""
    try:
        return json.load(open(os.path.join(run_dir, "run.json"))).get("status") == "finished" and \
            os.path.exists(os.path.join(run_dir, "model", "model.json"))
    except (OSError, ValueError):
        return False


def digest(pixels):
    return hashlib.sha1(pixels).digest()


# ---- Fashion-MNIST, as bytes ----------------------------------------------------------------------

def idx_images(name):
    with gzip.open(os.path.join(DATA, name)) as f:
        raw = f.read()
    n, size = int.from_bytes(raw[4:8], "big"), 28 * 28
    return [raw[16 + i * size:16 + (i + 1) * size] for i in range(n)]


def idx_labels(name):
    with gzip.open(os.path.join(DATA, name)) as f:
        return list(f.read()[8:])


# ---- guard databases and servers ------------------------------------------------------------------

def database(retort, work, name, marked):
    """The guard database WORK/NAME.db and its API key, made once. A new database drops that server's harvest
    cache too: a cached harvest would leave the new database without its marks."""
    db, keyfile, cache = (os.path.join(work, name + ".db"), os.path.join(work, name + ".key"),
                          os.path.join(work, "cache-" + name))
    if os.path.exists(db) and os.path.exists(keyfile):
        return db, open(keyfile).read().strip(), cache
    os.makedirs(os.path.dirname(db), exist_ok=True)
    for f in (db, db + "-wal", db + "-shm", keyfile):
        if os.path.exists(f):
            os.remove(f)
    shutil.rmtree(cache, ignore_errors=True)
    if marked:
        output([retort, "guard", "keys", "rotate", "--db", db])
    key = output([retort, "keys", "create", "--name", "bench", "--db", db]).strip()
    with open(keyfile, "w") as f:
        f.write(key + "\n")
    return db, key, cache


class Server:
    """`retort serve` of named models on a loopback port, until stop()."""

    def __init__(self, retort, models, db, key, port, logfile, sets_=()):
        cmd = [retort, "serve", "--port", str(port), "--db", db, "--workers", "1"]
        for name, path in models:
            cmd += ["--model", f"{name}={path}"]
        cmd += sets(sets_)
        log("  $", " ".join(cmd[:10]) + (" ..." if len(cmd) > 10 else ""))
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=open(logfile, "w"), text=True,
                                     env={**os.environ, **ENV})
        line = self.proc.stdout.readline().strip()
        if not line.isdigit():
            self.proc.kill()
            sys.exit(f"retort serve did not start: {' '.join(cmd)}\n  see {logfile}")
        self.port, self.key = int(line), key
        self.url = f"http://127.0.0.1:{self.port}/v1"

    def labels(self, model, images):
        """The served top class of each image (784 pixel bytes), 256 images per request."""
        out = []
        for first in range(0, len(images), 256):
            body = json.dumps({"model": model, "top_k": 1,
                               "input": [list(im) for im in images[first:first + 256]]}).encode()
            req = urllib.request.Request(f"{self.url}/classify", data=body, headers={
                "Content-Type": "application/json", "Authorization": f"Bearer {self.key}"})
            with urllib.request.urlopen(req, timeout=300) as r:
                out += [d["label"] for d in json.loads(r.read())["data"]]
        return out

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait()


def marks_of(db):
    """The marked inputs (pixel bytes) and the class each was answered, oldest first, repeats kept."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    rows = con.execute("SELECT input, answered FROM dawn_marks ORDER BY id").fetchall()
    con.close()
    return [(base64.b64decode(r[0]), int(r[1])) for r in rows]


# ---- statistics -----------------------------------------------------------------------------------

def log_binomial_upper(s, n, p):
    """log P(X >= s), X ~ Binomial(n, p), summed in log space (exact to float rounding, tiny tails too)."""
    if s <= 0:
        return 0.0
    if s > n:
        return -math.inf
    terms = [math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * math.log(p) + (n - k) * math.log1p(-p)
             for k in range(s, n + 1)]
    m = max(terms)
    return min(0.0, m + math.log(sum(math.exp(t - m) for t in terms)))


def kolmogorov_q(x):
    """P(K > x) for the Kolmogorov distribution (the asymptotic two-sided KS tail)."""
    if x < 0.2:
        return 1.0
    return max(0.0, min(1.0, 2 * sum((-1) ** (k - 1) * math.exp(-2 * k * k * x * x) for k in range(1, 101))))


def ks_uniform(ps):
    """One-sample KS test of ps against uniform(0, 1): (D, p two-sided, D+, p of D+)."""
    xs, n = sorted(ps), len(ps)
    d_plus = max((i + 1) / n - x for i, x in enumerate(xs))
    d_minus = max(x - i / n for i, x in enumerate(xs))
    d, sn = max(d_plus, d_minus), math.sqrt(n)
    return d, kolmogorov_q((sn + 0.12 + 0.11 / sn) * d), d_plus, min(1.0, math.exp(-2 * n * d_plus * d_plus))


def fmt_p(p):
    if p == 0:
        return "< 1e-300"
    if p >= 0.01:
        return f"{p:.2f}"
    return f"{p:.1e}".replace("e-0", "e-")


def fmt_logp(lp):
    """A p-value from its natural log (for the ones below a float's range)."""
    if lp > math.log(1e-300):
        return fmt_p(math.exp(lp))
    e = lp / math.log(10)
    return f"{10 ** (e - math.floor(e)):.1f}e{math.floor(e)}"


def conditional(student_top, teacher_top, answered, rng):
    """The exact test on the inputs where the student's top class differs from the teacher's:
    (those inputs, agreements with the answered class, log p, p randomised within the atom)."""
    pairs = [(s, a) for s, t, a in zip(student_top, teacher_top, answered) if s != t]
    n, k, q = len(pairs), sum(s == a for s, a in pairs), 1 / (CLASSES - 1)
    lp = log_binomial_upper(k, n, q)
    above = math.exp(log_binomial_upper(k + 1, n, q))
    return n, k, lp, above + rng.random() * (math.exp(lp) - above)


def null_row(label, ps, extra=""):
    d, kp, dp, dpp = ks_uniform(ps)
    sp = sorted(ps)
    med = (sp[(len(sp) - 1) // 2] + sp[len(sp) // 2]) / 2
    return (f"| {label} | {len(ps)} | {extra}{fmt_p(med)} ({fmt_p(sp[0])}-{fmt_p(sp[-1])}) | {d:.3f} | {fmt_p(kp)} | "
            f"{dp:.3f} | {fmt_p(dpp)} | {sum(p < 0.01 for p in ps)}/{len(ps)} | {sum(p < 0.05 for p in ps)}/{len(ps)} |")


# ---- runs -----------------------------------------------------------------------------------------

def ensure_teacher(retort, teacher):
    if finished(teacher) and os.path.exists(os.path.join(teacher, "report.json")):
        return teacher
    log(f"no finished teacher at {teacher}: training one there (bench/tree_table.py's settings)")
    parent, name = os.path.split(os.path.abspath(teacher))
    os.makedirs(parent, exist_ok=True)
    run([retort, "train", "--config", CONFIG, "--fresh"] + sets([f"run.dir={parent}", f"run.name={name}"] + TEACHER_KEYS),
        os.path.join(parent, name + ".log"))
    return teacher


def train_student(work, retort, s, server=None, cache=None):
    """One MLP student into its path (reused when finished)."""
    if finished(s.path):
        return
    runs, name = os.path.split(s.path)
    recipe = [f"run.dir={runs}", f"run.name={name}", f"run.seed={s.seed}"] + RECIPES[s.recipe]
    if server:
        cmd = [retort, "distill", "--config", CONFIG, "--fresh", "--teacher", f"openai:{server.url}",
               "--teacher-model", "fashion", "--api-key-env", "RETORT_KEY"]
        recipe += [f"distill.alpha={s.alpha}", f"run.cache_dir={cache}"]
    else:
        cmd = [retort, "train", "--config", CONFIG, "--fresh"]
    t0 = time.time()
    run(cmd + sets(recipe), s.path + ".log", {"RETORT_KEY": server.key if server else ""})
    log(f"  {name}: {time.time() - t0:.0f} s")


def verify(work, retort, db, path, tag):
    """`retort guard verify` of one student against a database (reused when done since the database was
    made: its key file is written once, with it); its test."""
    out = os.path.join(work, "evidence", f"{tag}-{os.path.basename(path)}")
    ev = os.path.join(out, "evidence.json")
    if not os.path.exists(ev) or os.path.getmtime(ev) < os.path.getmtime(db[:-len(".db")] + ".key"):
        run([retort, "guard", "verify", "--db", db, "--suspect", path, "--out", out], out + ".log")
    return json.load(open(ev))["suspect"]["test"]


def other_key(work, retort, teacher, j, share, images):
    """Key j's database (WORK/keys/kJ.db): a fresh watermark key, and all images classified once through a
    marked server under it."""
    db, key, _ = database(retort, os.path.join(work, "keys"), f"k{j:02d}", True)
    done = db + ".done"
    if not os.path.exists(done):
        server = Server(retort, [("fashion", teacher)], db, key, 0, db + ".serve.log",
                        ["serve.watermark=kgw", f"serve.dawn_share={share}"])
        try:
            server.labels("fashion", images)
        finally:
            server.stop()
        open(done, "w").close()
    return db


def parse_pairs(text, kind):
    out = []
    for item in text.split(","):
        recipe, value = item.split(":")
        if recipe not in RECIPES:
            sys.exit(f"unknown recipe '{recipe}' in --{kind}; known: {', '.join(RECIPES)}")
        out.append((recipe, float(value) if kind == "thieves" else int(value)))
    return out


# ---- main -----------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--retort", default=os.path.join(ROOT, "build/retort"))
    ap.add_argument("--teacher", default=os.path.join(ROOT, "bench/out/tree/teacher"))
    ap.add_argument("--share", type=float, default=0.05, help="serve.dawn_share of the marked servers")
    ap.add_argument("--thieves", default="sgd5:1,sgd5:0.9,adamw30:1,adamw30:0.9,adamw30-wide:1,adamw100:1,adamw100:0.9",
                    help="RECIPE:ALPHA,... distilled through the marked server")
    ap.add_argument("--seeds", type=int, default=3, help="seeds per thief recipe")
    ap.add_argument("--controls", default="sgd5:10,adamw30:5,adamw100:5",
                    help="RECIPE:N,...: N labels-only students and N from the unmarked server each")
    ap.add_argument("--other-keys", type=int, default=20)
    ap.add_argument("--work", default=os.path.join(ROOT, "bench/out/dawn"))
    a = ap.parse_args()
    work = os.path.abspath(a.work)
    for sub in ("evidence", "runs", "keys"):
        os.makedirs(os.path.join(work, sub), exist_ok=True)
    t_start, load_start, clock = time.time(), os.getloadavg(), {}
    retort = private_copy(os.path.abspath(a.retort), work)
    teacher = ensure_teacher(retort, os.path.abspath(a.teacher))
    teacher_run = json.load(open(os.path.join(teacher, "run.json")))
    runs = os.path.join(work, "runs")
    thieves = [Student("thief", r, alpha, seed, os.path.join(runs, f"thief-{r}-a{alpha:g}-s{seed}"))
               for r, alpha in parse_pairs(a.thieves, "thieves") for seed in range(a.seeds)]
    controls = [Student(kind, r, 1.0, seed, os.path.join(runs, f"{kind}-{r}-s{seed}"))
                for r, n in parse_pairs(a.controls, "controls") for kind in ("labels", "plain") for seed in range(n)]

    # ---- the two servers and every student ----
    t0 = time.time()
    marked_db, marked_key, marked_cache = database(retort, work, "marked", True)
    plain_db, plain_key, plain_cache = database(retort, work, "plain", False)
    servers = []
    try:
        servers.append(Server(retort, [("fashion", teacher)], marked_db, marked_key, PORTS["marked"],
                              os.path.join(work, "serve-marked.log"), ["serve.watermark=kgw", f"serve.dawn_share={a.share}"]))
        servers.append(Server(retort, [("fashion", teacher)], plain_db, plain_key, PORTS["plain"],
                              os.path.join(work, "serve-plain.log")))
        for s in thieves:
            train_student(work, retort, s, servers[0], marked_cache)
        for s in controls:
            train_student(work, retort, s, servers[1] if s.kind == "plain" else None, plain_cache)
    finally:
        for server in servers:
            server.stop()
    clock["students"] = time.time() - t0

    # ---- the other keys ----
    t0 = time.time()
    train_images = idx_images("train-images-idx3-ubyte.gz")
    test_images = idx_images("t10k-images-idx3-ubyte.gz")
    key_dbs = [other_key(work, retort, teacher, j, a.share, train_images + test_images) for j in range(a.other_keys)]
    key_students = [controls[j * len(controls) // a.other_keys] for j in range(a.other_keys)]
    clock["other keys"] = time.time() - t0

    # ---- guard verify ----
    t0 = time.time()
    tests = {s.path: verify(work, retort, marked_db, s.path, "marked") for s in thieves + controls}
    key_tests = [verify(work, retort, db, s.path, f"k{j:02d}") for j, (db, s) in enumerate(zip(key_dbs, key_students))]
    clock["verify"] = time.time() - t0

    # ---- top classes on the marked inputs (for the split agreement and the conditional test) ----
    t0 = time.time()
    marks = marks_of(marked_db)
    key_marks = [marks_of(db) for db in key_dbs]
    predict_db, predict_key, _ = database(retort, work, "predict", False)
    models = [("teacher", teacher)] + [(os.path.basename(s.path), s.path) for s in thieves + controls]
    scratch = Server(retort, models, predict_db, predict_key, 0, os.path.join(work, "serve-predict.log"))
    try:
        images = [b for b, _ in marks]
        top = {name: scratch.labels(name, images) for name, _ in models}
        key_top = [(scratch.labels("teacher", [b for b, _ in m]), scratch.labels(os.path.basename(s.path), [b for b, _ in m]))
                   for m, s in zip(key_marks, key_students)]
    finally:
        scratch.stop()
    clock["predictions"] = time.time() - t0

    # ---- what was marked ----
    train_set = {digest(b) for b in train_images}
    test_label = {digest(b): y for b, y in zip(test_images, idx_labels("t10k-labels-idx1-ubyte.gz"))}
    distinct = {digest(b) for b, _ in marks}
    marked_train, marked_test = len(distinct & train_set), len(distinct & set(test_label))
    answered = [c for _, c in marks]
    in_train = [digest(b) in train_set for b, _ in marks]
    right = wrong_to_right = 0  # marked test images the teacher had right; had wrong and were answered the label
    seen = set()
    for (b, c), t in zip(marks, top["teacher"]):
        h = digest(b)
        if h in test_label and h not in seen:
            seen.add(h)
            right += t == test_label[h]
            wrong_to_right += t != test_label[h] and c == test_label[h]
    rng = random.Random(14)

    def accuracy(s):
        return json.load(open(os.path.join(s.path, "run.json")))["test_accuracy"]

    def served(group):
        return sorted({json.load(open(os.path.join(s.path, "report.json")))["teacher"]["value"] for s in group})

    # ---- tables ----
    own = teacher_run["test_accuracy"]
    print(f"\nteacher: {teacher} (CNN, {teacher_run['params']:,} parameters); serve.dawn_share = {a.share}")
    print(f"marks: {len(marks):,} dawn_marks rows, {len(distinct):,} distinct inputs: {marked_train:,} of 60,000 "
          f"training images ({100 * marked_train / 60000:.2f}%), {marked_test:,} of 10,000 test images "
          f"({100 * marked_test / 10000:.2f}%)\n")
    print("| teacher | test accuracy | drop (points) | marked test images | the teacher had right | had wrong, answered the label |")
    print("|---|---:|---:|---:|---:|---:|")
    print(f"| own (run.json) | {100 * own:.2f}% | - | - | - | - |")
    plain_students = [s for s in controls if s.kind == "plain"]
    for v in served(plain_students):
        print(f"| through the unmarked API | {100 * v:.2f}% | {100 * (own - v):.2f} | 0 | - | - |")
    for v in served(thieves):
        print(f"| through the marked API | {100 * v:.2f}% | {100 * (own - v):.2f} | {marked_test:,} "
              f"({100 * marked_test / 10000:.2f}%) | {right:,} | {wrong_to_right:,} |")

    print("\n| thief: recipe | α | seed | test accuracy | marked inputs scored | agreement with the wrong class | "
          "on marked training / test images | z | retort's p | top differs from the teacher's | agrees | conditional p |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    cond = {}
    for s in thieves + controls:
        name = os.path.basename(s.path)
        cond[s.path] = conditional(top[name], top["teacher"], answered, rng)
    for s in thieves:
        t, name = tests[s.path], os.path.basename(s.path)
        tr = [x == c for x, c, i in zip(top[name], answered, in_train) if i]
        te = [x == c for x, c, i in zip(top[name], answered, in_train) if not i]
        n, k, lp, _ = cond[s.path]
        print(f"| {RECIPE_TEXT[s.recipe]} | {s.alpha:g} | {s.seed} | {100 * accuracy(s):.2f}% | {t['tokens_scored']:,} | "
              f"{100 * t['score'] / t['tokens_scored']:.1f}% | {100 * sum(tr) / max(1, len(tr)):.1f}% / "
              f"{100 * sum(te) / max(1, len(te)):.1f}% | {t['z']:.1f} | **{fmt_p(t['p_value'])}** | {n:,} | {k:,} | "
              f"{fmt_logp(lp)} |")
    control_of_verify = json.load(open(os.path.join(work, "evidence", "marked-" + os.path.basename(thieves[0].path),
                                                    "evidence.json")))["control"]["test"]
    print(f"\nguard verify's control (the served teacher itself): {control_of_verify['score']:.0f} of "
          f"{control_of_verify['tokens_scored']:,} agree, p {fmt_p(control_of_verify['p_value'])}")

    print("\n| null set | n | retort's test: median p (range) | KS D | KS p | D+ | D+ p | p < 0.01 | p < 0.05 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    groups = [(f"marking key, {'labels only' if kind == 'labels' else 'unmarked server'}, {RECIPE_TEXT[r]}",
               [s for s in controls if s.kind == kind and s.recipe == r])
              for r, _ in parse_pairs(a.controls, "controls") for kind in ("labels", "plain")]
    groups.append(("marking key, all controls", controls))
    for label, group in groups:
        print(null_row(label, [tests[s.path]["p_value"] for s in group]))
    key_cond = [conditional(st, tt, [c for _, c in m], rng) for (tt, st), m in zip(key_top, key_marks)]
    if key_dbs:
        print(null_row(f"{a.other_keys} other keys, one control each", [t["p_value"] for t in key_tests]))
    print("\n| null set | n | conditional test: median p (range) | KS D | KS p | D+ | D+ p | p < 0.01 | p < 0.05 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for label, group in groups:
        print(null_row(label, [cond[s.path][3] for s in group]))
    if key_dbs:
        print(null_row(f"{a.other_keys} other keys, one control each", [c[3] for c in key_cond]))

    print("\n| control | test accuracy | agreement (retort's test) | z | retort's p | top differs from the teacher's | "
          "agrees | conditional p (randomised) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for s in controls:
        t, (n, k, _, pr) = tests[s.path], cond[s.path]
        print(f"| {s.kind} {s.recipe} seed {s.seed} | {100 * accuracy(s):.2f}% | {t['score']:.0f}/{t['tokens_scored']:,} | "
              f"{t['z']:.1f} | {fmt_p(t['p_value'])} | {n:,} | {k} | {fmt_p(pr)} |")
    for j, (s, t, (n, k, _, pr), m) in enumerate(zip(key_students, key_tests, key_cond, key_marks)):
        print(f"| key {j}: {s.kind} {s.recipe} seed {s.seed} | {100 * accuracy(s):.2f}% | {t['score']:.0f}/{len(m):,} | "
              f"{t['z']:.1f} | {fmt_p(t['p_value'])} | {n:,} | {k} | {fmt_p(pr)} |")
    load_end = os.getloadavg()
    print(f"\ntime: {time.time() - t_start:.0f} s in all: "
          + ", ".join(f"{k} {v:.0f} s" for k, v in clock.items())
          + f"; load average {load_start[0]:.1f} at start, {load_end[0]:.1f} at end")


if __name__ == "__main__":
    main()
