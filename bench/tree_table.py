#!/usr/bin/python3
"""A student you can read: soft decision trees (model.name = tree) on Fashion-MNIST, labels only vs
distilled from the demo's CNN teacher, at several depths and seeds.

For each depth and seed, two runs with the same settings (train.* of configs/fashion-mnist.toml
unless overridden, --epochs epochs, the same seed: equal student compute):
  - labels only: `retort train --set model.name=tree --set model.depth=D`;
  - distilled:   `retort distill --teacher TEACHER` with the same keys (distill.* of the config:
    0.9 * KL(teacher || student) at T = 1 + 0.1 * CE).
Each run's report.json gives the test accuracy of the leaf mixture (the model's output) and of the
single most probable leaf (the paper's test-time rule). Prints a Markdown table, mean +- std over
the seeds (std with n - 1).
Usage: /usr/bin/python3 bench/tree_table.py [--retort build/retort] [--teacher runs/demo/teacher]
       [--depths 4,6,8] [--seeds 3] [--epochs 4] [--work bench/out/tree] [--set KEY=VALUE ...]
With no teacher at --teacher, one is trained into --work/teacher first with the config's
teacher.* settings (6 epochs, about 92% test accuracy). Finished runs are reused.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(ROOT, "configs/fashion-mnist.toml")
TEACHER_KEYS = ["model.name=cnn", "model.channels=32,64", "model.hidden=512", "model.dropout=0.3",
                "train.epochs=6", "train.optimizer=adamw", "train.lr=0.002", "train.weight_decay=0.0001",
                "train.warmup_steps=100"]


def run(cmd, log):
    print("  $", " ".join(cmd), flush=True)
    with open(log, "w") as f:
        r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT,
                           env={**os.environ, "RETORT_NO_BLAS_WARNING": "1"})
    if r.returncode:
        sys.exit(f"failed ({r.returncode}): {' '.join(cmd)}\n  see {log}")


def sets(pairs):
    return [x for p in pairs for x in ("--set", p)]


def mean_std(xs):
    return 100 * statistics.mean(xs), 100 * (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def cell(xs):
    m, s = mean_std(xs)
    return f"{m:.2f} ± {s:.2f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--retort", default=os.path.join(ROOT, "build/retort"))
    ap.add_argument("--teacher", default=os.path.join(ROOT, "runs/demo/teacher"))
    ap.add_argument("--depths", default="4,6,8")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--work", default=os.path.join(ROOT, "bench/out/tree"))
    ap.add_argument("--set", action="append", default=[], help="extra KEY=VALUE for every student run")
    a = ap.parse_args()
    retort, work = os.path.abspath(a.retort), os.path.abspath(a.work)
    os.makedirs(work, exist_ok=True)
    common = ["--config", CONFIG] + sets([f"run.dir={work}", f"train.epochs={a.epochs}"] + a.set)

    teacher = os.path.abspath(a.teacher)
    if not os.path.exists(os.path.join(teacher, "run.json")):
        teacher = os.path.join(work, "teacher")
        print(f"no teacher at {a.teacher}: training one into {teacher}")
        run([retort, "train", "--config", CONFIG] + sets([f"run.dir={work}", "run.name=teacher"] + TEACHER_KEYS),
            os.path.join(work, "teacher.log"))
    teacher_acc = json.load(open(os.path.join(teacher, "run.json")))["test_accuracy"]

    rows = []
    for depth in [int(d) for d in a.depths.split(",")]:
        result = {"labels": [], "kd": []}
        for seed in range(a.seeds):
            for method in ("labels", "kd"):
                name = f"{method}-d{depth}-s{seed}"
                keys = sets([f"run.name={name}", "model.name=tree", f"model.depth={depth}", f"run.seed={seed}"])
                cmd = [retort, "train"] if method == "labels" else [retort, "distill", "--teacher", teacher]
                report = os.path.join(work, name, "report.json")
                if not os.path.exists(report):
                    run(cmd + common + keys, os.path.join(work, name + ".log"))
                r = json.load(open(report))
                result[method].append((r["tree"]["mixture_accuracy"], r["tree"]["max_path_accuracy"],
                                       r["run"]["params"], r["run"].get("train_seconds", 0.0)))
        rows.append((depth, result))

    print(f"\nteacher: CNN, {100 * teacher_acc:.2f}% test accuracy ({teacher})")
    print(f"students: soft decision trees, {a.epochs} epochs, seeds 0..{a.seeds - 1}; "
          f"test accuracy (%) on the 10,000 test images, mean ± std\n")
    print("| depth | leaves | parameters | labels only | distilled | gain | labels only, max-path leaf | "
          "distilled, max-path leaf | training s (distilled) |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for depth, r in rows:
        lab = [x[0] for x in r["labels"]]
        kd = [x[0] for x in r["kd"]]
        gain = [k - l for k, l in zip(kd, lab)]
        print(f"| {depth} | {2 ** depth} | {r['kd'][0][2]:,} | {cell(lab)} | {cell(kd)} | {cell(gain)} | "
              f"{cell([x[1] for x in r['labels']])} | {cell([x[1] for x in r['kd']])} | "
              f"{statistics.mean(x[3] for x in r['kd']):.0f} |")


if __name__ == "__main__":
    main()
