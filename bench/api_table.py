#!/usr/bin/python3
"""What returning logprobs gives away: one student distilled through an OpenAI-compatible API.

A teacher gpt is served by `retort serve` on loopback; the student of configs/kjv-lm-kd.toml
learns from it through the API (`retort distill --teacher openai:URL`) on the same slice of the
KJV training text, for the same steps, with the same seed (equal student compute), seeing:
  - text only: sequence-level KD on the teacher's continuations of the slice's prompts;
  - the top-1, top-5 or top-20 logprobs of every position (echo + logprobs, teacher-forced);
and, for comparison, labels alone and the teacher's full logits read locally (dense KL), plus
the top-20 read locally: it must equal the top-20 harvested through the API.
Prints a Markdown table: validation bits per byte, agreement with the teacher, requests and
tokens the harvest asked of the API.
Usage: /usr/bin/python3 bench/api_table.py [--retort build/retort] [--teacher runs/demo-lm/teacher]
       [--tokens 262144] [--work bench/out/api]   (make bench-api)
With no teacher at --teacher, one is trained into --work first (demo lm's teacher recipe on
--teacher-tokens of the KJV training text).
"""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PORT = 18093  # fixed, so that the harvest caches (keyed by URL) are reused by a rerun

ROWS = [  # (label, teacher kind, extra --set pairs)
    ("labels only (baseline)", "local", ["distill.alpha=0", "distill.top_k=0"]),
    ("API, text only (sequence KD)", "api", ["distill.method=sequence"]),
    ("API, top-1 logprobs", "api", ["distill.top_k=1"]),
    ("API, top-5 logprobs", "api", ["distill.top_k=5"]),
    ("API, top-20 logprobs", "api", ["distill.top_k=20"]),
    ("local, top-20 (control: equals the API's)", "local", ["distill.top_k=20"]),
    ("local, full logits (dense KL)", "local", ["distill.top_k=0"]),
]


def run(cmd, log, env=None):
    with open(log, "w") as f:
        r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    if r.returncode:
        sys.exit(f"failed ({r.returncode}): {' '.join(cmd)}\n  see {log}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--retort", default=os.path.join(ROOT, "build/retort"))
    ap.add_argument("--teacher", default=os.path.join(ROOT, "runs/demo-lm/teacher"))
    ap.add_argument("--teacher-tokens", type=int, default=600000)
    ap.add_argument("--tokens", type=int, default=262144, help="student training tokens (slice of the KJV training split)")
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--work", default=os.path.join(ROOT, "bench/out/api"))
    a = ap.parse_args()
    retort, work = os.path.abspath(a.retort), os.path.abspath(a.work)
    os.makedirs(work, exist_ok=True)
    env = {"RETORT_NO_BLAS_WARNING": "1", "XDG_CACHE_HOME": os.path.join(work, "cache")}
    teacher = os.path.abspath(a.teacher)
    if not os.path.exists(os.path.join(teacher, "run.json")):
        teacher = os.path.join(work, "teacher")
        if not os.path.exists(os.path.join(teacher, "run.json")):
            print(f"training a teacher (gpt 192x4, {a.teacher_tokens} tokens, 2 epochs) ...", file=sys.stderr, flush=True)
            run([retort, "train", "--config", os.path.join(ROOT, "configs/kjv-lm.toml"), "--set", f"run.dir={work}",
                 "--set", "run.name=teacher", "--set", "model.d_model=192", "--set", "model.layers=4",
                 "--set", "train.epochs=2", "--set", "train.lr=0.002", "--set", f"text.train_tokens={a.teacher_tokens}",
                 "--fresh"], os.path.join(work, "teacher.log"), env)
    t = json.load(open(os.path.join(teacher, "run.json")))
    print(f"teacher {teacher}: {t['params']} params, val {t['val_bpb']:.4f} bits/byte; students on {a.tokens} tokens",
          file=sys.stderr, flush=True)

    db = os.path.join(work, "serve.db")
    key = subprocess.run([retort, "keys", "create", "--name", f"bench-{int(time.time())}", "--db", db],
                         capture_output=True, text=True, check=True).stdout.strip()
    server = subprocess.Popen([retort, "serve", "--model", f"kjv={teacher}", "--port", str(PORT), "--db", db,
                               "--workers", "2", "--queue", "256"], stdout=subprocess.PIPE,
                              stderr=open(os.path.join(work, "serve.log"), "w"), env={**os.environ, **env}, text=True)
    try:
        server.stdout.readline()  # the port: the server is listening
        lines = ["| student learns from | val bits/byte | agreement % | API requests | API tokens |",
                 "|---|---:|---:|---:|---:|"]
        for i, (label, kind, sets) in enumerate(ROWS):
            name = f"row{i}"
            src = ["--teacher", f"openai:http://127.0.0.1:{PORT}/v1", "--teacher-model", "kjv", "--api-key-env", "RETORT_KEY",
                   "--set", "teacher.api_concurrency=4"] if kind == "api" else ["--teacher", teacher]
            cmd = [retort, "distill", "--config", os.path.join(ROOT, "configs/kjv-lm-kd.toml"), *src, "--fresh",
                   "--set", f"run.dir={work}", "--set", f"run.name={name}", "--set", f"text.train_tokens={a.tokens}",
                   "--set", f"train.warmup_steps={a.warmup}"]
            for s in sets:
                cmd += ["--set", s]
            t0 = time.time()
            run(cmd, os.path.join(work, f"{name}.log"), {**env, "RETORT_KEY": key})
            r = json.load(open(os.path.join(work, name, "run.json")))
            api = r.get("teacher_api", {})
            agree = f"{100 * r['agreement']:.2f}" if r.get("agreement", -1) >= 0 else "-"
            lines.append(f"| {label} | {r['val_bpb']:.4f} | {agree} | {api.get('requests', '-')} | {api.get('tokens', '-')} |")
            print(lines[-1], f"({time.time() - t0:.0f} s wall)", file=sys.stderr, flush=True)
        print("\n".join(lines))
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    sys.exit(main())
