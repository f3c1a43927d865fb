#!/usr/bin/python3
"""Training throughput (tokens/s) of retort's gpt teacher and student against plain PyTorch.

For each of the demo-lm shapes (configs/kjv-lm.toml: teacher.model and model), runs
  - retort: `retort train` on the KJV corpus with a training slice of --tokens tokens, one epoch,
    and reads train_tokens_per_second from run.json (validation kept tiny so it costs ~nothing);
  - PyTorch: bench/reference/gpt_train.py with the same shapes, batch, sequence length and threads,
and prints the ratio (retort / PyTorch; > 1 means retort is faster).
Usage: /usr/bin/python3 bench/lm_vs_pytorch.py [--retort build/retort] [--tokens 131072]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def resolved(retort, key):
    out = subprocess.run([retort, "config", "--config", os.path.join(ROOT, "configs/kjv-lm.toml")],
                         check=True, capture_output=True, text=True).stdout
    section, name = key.rsplit(".", 1)
    current = None
    for line in out.splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("["):
            current = line.strip("[]")
        elif "=" in line and current == section:
            k, v = (s.strip() for s in line.split("=", 1))
            if k == name:
                return v.strip('"')
    raise KeyError(key)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--retort", default=os.path.join(ROOT, "build/retort"))
    ap.add_argument("--tokens", type=int, default=131072, help="training tokens per measurement")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    a = ap.parse_args()
    seq = int(resolved(a.retort, "text.seq_len"))
    batch = int(resolved(a.retort, "data.batch_size"))
    rows = []
    work = tempfile.mkdtemp(prefix="retort-lm-bench-")
    for who, prefix in [("teacher", "teacher.model"), ("student", "model")]:
        d, layers, heads = (int(resolved(a.retort, f"{prefix}.{k}")) for k in ("d_model", "layers", "heads"))
        env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), XDG_CACHE_HOME=os.path.join(work, "cache"))
        subprocess.run([a.retort, "train", "--config", os.path.join(ROOT, "configs/kjv-lm.toml"),
                        "--set", f"model.d_model={d}", "--set", f"model.layers={layers}", "--set", f"model.heads={heads}",
                        "--set", f"text.train_tokens={a.tokens}", "--set", "text.val_tokens=2048",
                        "--set", "train.epochs=1", "--set", f"run.dir={work}/runs", "--set", f"run.name={who}",
                        "--set", f"run.threads={a.threads}"],
                       check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        run = json.load(open(os.path.join(work, "runs", who, "run.json")))
        vocab = json.load(open(os.path.join(work, "runs", who, "model", "model.json")))["options"]["vocab_size"]
        steps = run["steps"]
        ref = subprocess.run(["/usr/bin/python3", os.path.join(HERE, "reference/gpt_train.py"), "--vocab", str(vocab),
                              "--d-model", str(d), "--layers", str(layers), "--heads", str(heads),
                              "--seq-len", str(seq), "--batch", str(batch), "--steps", str(steps),
                              "--threads", str(a.threads)],
                             check=True, capture_output=True, text=True, env=env).stdout
        ref = json.loads(ref.strip().splitlines()[-1])
        rows.append((who, run["params"], run["train_tokens_per_second"], ref["tokens_per_second"], steps))
    print(f"{'model':8} {'params':>9} {'retort tok/s':>13} {'pytorch tok/s':>14} {'ratio':>6}  (batch {batch} x {seq}, "
          f"{a.threads} threads)")
    for who, params, r, p, steps in rows:
        print(f"{who:8} {params:>9} {r:>13.0f} {p:>14.0f} {r / p:>6.2f}  ({steps} steps)")


if __name__ == "__main__":
    sys.exit(main())
