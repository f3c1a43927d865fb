#!/usr/bin/python3
"""The LM distillation table: one student, many ways to learn from the same teacher.

Every row trains the student of configs/kjv-lm-kd.toml from the teacher at --teacher (by
default the one `retort demo lm` trained) on the same slice of the KJV training text
(--tokens), for the same steps, with the same seed: equal student compute. Rows: labels only
(the baseline); each divergence (kl rkl jsd tvd skl srkl) against the teacher's cached top-20;
forward KL against top-1, top-5, top-20 and dense logits; sequence-level KD (cross-entropy
on text the teacher wrote from the slice's prompts); on-policy GKD (lambda 0.5, JSD(0.5)).
Prints a Markdown table of validation bits per byte and top-1 agreement with the teacher.
Usage: /usr/bin/python3 bench/lm_table.py [--retort build/retort] [--teacher runs/demo-lm/teacher]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

ROWS = [  # (label, extra --set pairs)
    ("labels only (baseline)", ["distill.alpha=0", "distill.top_k=0"]),
    ("kl, top-20", ["distill.loss=kl", "distill.top_k=20"]),
    ("rkl, top-20", ["distill.loss=rkl", "distill.top_k=20"]),
    ("jsd(0.5), top-20", ["distill.loss=jsd", "distill.top_k=20"]),
    ("tvd, top-20", ["distill.loss=tvd", "distill.top_k=20"]),
    ("skl(0.1), top-20", ["distill.loss=skl", "distill.top_k=20"]),
    ("srkl(0.1), top-20", ["distill.loss=srkl", "distill.top_k=20"]),
    ("kl, top-1", ["distill.loss=kl", "distill.top_k=1"]),
    ("kl, top-5", ["distill.loss=kl", "distill.top_k=5"]),
    ("kl, dense", ["distill.loss=kl", "distill.top_k=0"]),
    ("sequence-level KD", ["distill.method=sequence"]),
    ("on-policy GKD (lambda 0.5, jsd, top-20)", ["distill.loss=jsd", "distill.top_k=20", "distill.alpha=1",
                                                  "distill.on_policy=0.5"]),
    # Controls: the same GKD objective without student samples, and the seed noise of the baseline.
    ("jsd(0.5), top-20, alpha 1 (GKD off-policy)", ["distill.loss=jsd", "distill.top_k=20", "distill.alpha=1"]),
    ("labels only, seed 1", ["distill.alpha=0", "distill.top_k=0", "run.seed=1"]),
    ("kl, top-20, seed 1", ["distill.loss=kl", "distill.top_k=20", "run.seed=1"]),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--retort", default=os.path.join(ROOT, "build/retort"))
    ap.add_argument("--teacher", default=os.path.join(ROOT, "runs/demo-lm/teacher"))
    ap.add_argument("--tokens", type=int, default=262144, help="training tokens (slice of the KJV training split)")
    ap.add_argument("--warmup", type=int, default=20, help="warm-up steps (the recipe's 100 is for a full epoch)")
    ap.add_argument("--work", default=None, help="folder for the runs (default: a temporary one)")
    ap.add_argument("--only", default=None, help="comma-separated row numbers to run (default: all)")
    a = ap.parse_args()
    work = a.work or tempfile.mkdtemp(prefix="retort-lm-table-")
    os.makedirs(work, exist_ok=True)
    teacher = json.load(open(os.path.join(a.teacher, "run.json")))
    print(f"teacher {a.teacher}: {teacher['params']} params, val {teacher['val_bpb']:.4f} bits/byte; "
          f"students on {a.tokens} tokens; runs in {work}", file=sys.stderr)
    lines = ["| student training | val bits/byte | agreement % | train s |", "|---|---:|---:|---:|"]
    only = {int(x) for x in a.only.split(",")} if a.only else None
    for i, (label, sets) in enumerate(ROWS):
        if only and i not in only:
            continue
        name = f"row{i:02d}"
        cmd = [a.retort, "distill", "--config", os.path.join(ROOT, "configs/kjv-lm-kd.toml"), "--teacher", a.teacher,
               "--fresh", "--set", f"run.dir={work}", "--set", f"run.name={name}",
               "--set", f"text.train_tokens={a.tokens}", "--set", f"train.warmup_steps={a.warmup}"]
        for s in sets:
            cmd += ["--set", s]
        t0 = time.time()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, f"{name}.log"), "w"))
        r = json.load(open(os.path.join(work, name, "run.json")))
        agree = f"{100 * r['agreement']:.2f}" if "agreement" in r else "-"
        lines.append(f"| {label} | {r['val_bpb']:.4f} | {agree} | {r['train_seconds']:.0f} |")
        print(lines[-1], f"({time.time() - t0:.0f} s wall)", file=sys.stderr)
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
