#!/usr/bin/python3
# Benchmark: retort's demo pipeline vs the same pipeline in plain PyTorch
# (bench/reference/kd_fashion.py), on the same work, from the same resolved config.
# Prints wall times, their ratio and both sets of accuracies.
# Usage: bench/kd_fashion_vs_pytorch.py [--retort build/retort] [--set key=value ...]
import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def resolve(retort, sets):
    args = [retort, "config"] + [a for s in sets for a in ("--set", s)]
    return tomllib.loads(subprocess.run(args, check=True, capture_output=True, text=True).stdout)


def reference_args(c):
    """The reference script's options for the resolved retort config `c`."""
    t, tm, s, m, d = c["teacher"]["train"], c["teacher"]["model"], c["train"], c["model"], c["data"]
    if t["optimizer"] != "adamw" or s["schedule"] != "cosine" or t["schedule"] != "cosine":
        sys.exit("the reference script trains its teacher with adamw, both with a cosine schedule")
    if s["weight_decay"] != t["weight_decay"] or s["warmup_steps"] != t["warmup_steps"]:
        sys.exit("the reference script shares weight_decay and warmup_steps between teacher and student")
    if d["test_subset"]:
        sys.exit("the reference script evaluates on the whole test set: leave data.test_subset at 0")
    if t["crop_padding"]:
        sys.exit("the reference script's teacher can only be trained with flips (teacher.train.hflip)")
    if s["crop_padding"] not in (0, 2) or (s["crop_padding"] and not s["hflip"]):
        sys.exit("the reference script's students use crop padding 2 + flip, flip alone, or nothing")
    j = lambda v: ",".join(str(x) for x in v)
    args = ["--data", d["path"], "--threads", str(c["run"]["threads"] or os.cpu_count()),
            "--teacher-epochs", str(t["epochs"]), "--student-epochs", str(s["epochs"]),
            "--teacher-channels", j(tm["channels"]), "--teacher-hidden", j(tm["hidden"]),
            "--teacher-dropout", str(tm["dropout"]), "--student-hidden", j(m["hidden"]),
            "--batch-size", str(d["batch_size"]), "--teacher-lr", str(t["lr"]), "--student-lr", str(s["lr"]),
            "--weight-decay", str(s["weight_decay"]), "--warmup-steps", str(s["warmup_steps"]),
            "--temperature", str(c["distill"]["temperature"]), "--alpha", str(c["distill"]["alpha"]),
            "--seeds", str(c["demo"]["seeds"]), "--train-subset", str(d["train_subset"]),
            "--student-optimizer", s["optimizer"], "--student-momentum", str(s["momentum"]),
            "--student-dropout", str(m["dropout"])]
    if s["crop_padding"]:
        args.append("--augment")
    elif s["hflip"]:
        args.append("--hflip")
    if t["hflip"]:
        args.append("--teacher-hflip")
    return args


def timed(cmd, env):
    start = time.monotonic()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return time.monotonic() - start, out.stdout


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--retort", default=os.path.join(ROOT, "build", "retort"))
    p.add_argument("--set", action="append", default=[], dest="sets")
    p.add_argument("--out", default=os.path.join(ROOT, "bench", "out", "kd_fashion"))
    a = p.parse_args()
    c = resolve(a.retort, a.sets)
    shutil.rmtree(a.out, ignore_errors=True)
    os.makedirs(a.out)
    # A fresh cache: both sides train the teacher and compute its logits from scratch.
    env = dict(os.environ, XDG_CACHE_HOME=os.path.join(a.out, "cache"))
    sets = a.sets + [f"run.dir={a.out}", "run.name=retort"]
    print(f"retort demo ({' '.join(a.sets) or 'defaults'}) ...", flush=True)
    rt, _ = timed([a.retort, "demo"] + [x for s in sets for x in ("--set", s)], env)
    report = json.load(open(os.path.join(a.out, "retort", "report.json")))
    print("plain PyTorch reference ...", flush=True)
    pt, out = timed(["/usr/bin/python3", os.path.join(ROOT, "bench", "reference", "kd_fashion.py")]
                    + reference_args(c), env)
    ref = json.loads(out.strip().splitlines()[-1])
    base, dist = report["students"]
    rows = [
        ("wall time, whole pipeline (s)", f"{rt:.1f}", f"{pt:.1f}"),
        ("teacher test accuracy (%)", f"{100 * report['teacher']['accuracy']:.2f}", f"{100 * ref['teacher_accuracy']:.2f}"),
        ("baseline accuracy (%)", f"{100 * base['accuracy_mean']:.2f} ± {100 * base['accuracy_std']:.2f}",
         f"{100 * ref['baseline_accuracy_mean']:.2f} ± {100 * ref['baseline_accuracy_std']:.2f}"),
        ("distilled accuracy (%)", f"{100 * dist['accuracy_mean']:.2f} ± {100 * dist['accuracy_std']:.2f}",
         f"{100 * ref['distilled_accuracy_mean']:.2f} ± {100 * ref['distilled_accuracy_std']:.2f}"),
        ("distillation gain (points)", f"{100 * (dist['accuracy_mean'] - base['accuracy_mean']):+.2f}",
         f"{100 * (ref['distilled_accuracy_mean'] - ref['baseline_accuracy_mean']):+.2f}"),
    ]
    print("\n| measure | retort | plain PyTorch |\n| --- | --- | --- |")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} |")
    print(f"\nwall-time ratio retort / PyTorch: {rt / pt:.2f}  (threads: {c['run']['threads'] or os.cpu_count()}, "
          f"seeds: {c['demo']['seeds']}, load average at end: {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
