#!/usr/bin/python3
"""Scale-out and compute-efficiency benchmark, in one run on this machine.

  1. Fashion-MNIST distillation (the demo's student recipe, teacher logits cached):
     1 process x 2 threads vs 2 ranks x 1 thread (torchrun), retort and plain PyTorch
     (bench/reference/kd_fashion_ddp.py: DistributedDataParallel on the same cached logits).
  2. Language-model distillation (kjv-lm-kd's student on a slice of the Bible, top-20 cache):
     1 x 2 vs 2 x 1.
  3. bf16 vs fp32: the teacher's cache build (inference) and student training, speed and quality.
  4. Teacher/student overlap on vs off, with a live (uncached) teacher.
  5. FLOP utilisation: the students' achieved training GFLOP/s against `retort doctor`'s measured
     matmul peak, and the gradient bytes each rank all-reduces per step.

Usage: bench/scale.py [--retort build/retort] [--out bench/out/scale] [--quick] [--wait-policy ACTIVE]
Teachers are trained once into --out and reused; students are trained afresh each time. Every
process, retort's and PyTorch's, runs with the same OMP_WAIT_POLICY (--wait-policy, default
ACTIVE: the machine is idle during the benchmark; retort's own default, PASSIVE, is for shared
cores). The overlap runs put two threads' work on each core, so they run with PASSIVE.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TORCHRUN = os.path.join(ROOT, "scripts", "torchrun")


def sh(cmd, env=None, log=None):
    t = time.perf_counter()
    with open(log, "w") if log else open(os.devnull, "w") as f:
        r = subprocess.run(cmd, env={**os.environ, **(env or {})}, stdout=f, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        sys.exit(f"failed ({r.returncode}): {' '.join(cmd)}" + (f"\n  see {log}" if log else ""))
    return time.perf_counter() - t


class Bench:
    def __init__(self, retort, out):
        self.retort, self.out = os.path.abspath(retort), os.path.abspath(out)
        self.runs = os.path.join(self.out, "runs")
        os.makedirs(self.runs, exist_ok=True)

    def retort_run(self, name, sets, command="distill", ranks=1, threads=2, extra=(), fresh=True, policy=None):
        """Runs retort (under torchrun for ranks > 1); returns run.json plus the wall time."""
        args = [command, "--set", f"run.dir={self.runs}", "--set", f"run.name={name}"]
        for s in sets:
            args += ["--set", s]
        args += list(extra) + (["--fresh"] if fresh else [])
        env = {"OMP_NUM_THREADS": str(threads), "RETORT_NO_BLAS_WARNING": "1", "OMP_WAIT_POLICY": policy or self.policy}
        log = os.path.join(self.out, name + ".log")
        if ranks > 1:
            cmd = [TORCHRUN, f"--nproc_per_node={ranks}", "--master_port=29641", "--no_python", self.retort] + args
        else:
            cmd = [self.retort] + args
        wall = sh(cmd, env, log)
        r = json.load(open(os.path.join(self.runs, name, "run.json")))
        r["wall_seconds"] = wall
        r["metrics"] = [json.loads(l) for l in open(os.path.join(self.runs, name, "metrics.jsonl"))]
        return r

    def finished(self, name):
        p = os.path.join(self.runs, name, "run.json")
        return os.path.exists(p) and json.load(open(p)).get("status") == "finished"


def seconds_to(metrics, key, target, better):
    """Training seconds until the epoch metric `key` first reaches `target` (None if never)."""
    t = 0.0
    for m in metrics:
        if m.get("type") != "epoch":
            continue
        t += m["seconds"]
        if key in m and better(m[key], target):
            return t
    return None


def seconds_to_bpb(r, target):
    """Language models: the curve is (step, val bits/byte); time per step from the run."""
    per_step = r["train_seconds"] / max(1, r["steps"])
    for step, bpb in r["curve"]:
        if bpb <= target:
            return step * per_step
    return None


def fmt(v, d=1):
    return "-" if v is None else f"{v:.{d}f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--retort", default=os.path.join(ROOT, "build", "retort"))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "out", "scale"))
    ap.add_argument("--quick", action="store_true", help="tiny settings, to check the script itself")
    ap.add_argument("--wait-policy", default="ACTIVE", choices=["ACTIVE", "PASSIVE"])
    a = ap.parse_args()
    b = Bench(a.retort, a.out)
    b.policy = a.wait_policy
    print(f"OMP_WAIT_POLICY={a.wait_policy} for every process (overlap runs: PASSIVE)")
    q = a.quick
    report = {}

    doctor = json.loads(subprocess.run([b.retort, "doctor", "--json", "--seconds", "0.5" if q else "2"],
                                       env={**os.environ, "OMP_NUM_THREADS": "2"}, capture_output=True, text=True,
                                       check=True).stdout)
    report["doctor"] = doctor
    print(f"machine: {doctor['threads']} threads, BLAS {doctor['blas']}, peak matmul "
          f"fp32 {doctor['peak_gflops_fp32']:.0f} GFLOP/s, bf16 {doctor['peak_gflops_bf16']:.0f} GFLOP/s "
          f"(n = {doctor['matmul_size']})")

    # ---------------------------------------------------------------- Fashion-MNIST
    img = ["data.train_subset=6000", "data.test_subset=1000"] if q else []
    teacher = ["model.name=cnn", "model.channels=32,64", "model.hidden=512", "model.dropout=0.3",
               "train.optimizer=adamw", "train.lr=0.002", "train.weight_decay=0.0001",
               f"train.epochs={1 if q else 3}"] + img
    if not b.finished("fashion-teacher"):
        print("training the Fashion-MNIST teacher (cnn) ...", flush=True)
        b.retort_run("fashion-teacher", teacher, command="train")
    t_dir = os.path.join(b.runs, "fashion-teacher")
    cache = os.path.join(b.out, "cache-fashion")
    shutil.rmtree(cache, ignore_errors=True)
    kd = [f"run.cache_dir={cache}", f"train.epochs={2 if q else 8}"] + img
    tx = ["--teacher", t_dir]
    f1 = b.retort_run("fashion-1x2", kd, threads=2, extra=tx)          # builds the fp32 cache
    f2 = b.retort_run("fashion-2x1", kd, ranks=2, threads=1, extra=tx)
    cache_file = [os.path.join(cache, f) for f in os.listdir(cache) if f.startswith("logits-")][0]
    ref = {}
    if not q:
        for ranks, threads in ((1, 2), (2, 1)):
            out = os.path.join(b.out, f"pytorch-{ranks}x{threads}.json")
            script = os.path.join(ROOT, "bench", "reference", "kd_fashion_ddp.py")
            cmd = ([TORCHRUN, f"--nproc_per_node={ranks}", "--master_port=29642", script] if ranks > 1
                   else ["/usr/bin/python3", script]) + ["--cache", cache_file, "--out", out]
            sh(cmd, {"OMP_NUM_THREADS": str(threads), "OMP_WAIT_POLICY": a.wait_policy}, out + ".log")
            ref[(ranks, threads)] = json.load(open(out))
    target = min(f1["test_accuracy"], f2["test_accuracy"]) - 0.005
    better = lambda v, t: v >= t
    print(f"\n1. Fashion-MNIST distillation (mlp 128 student, {f1['epochs']} epochs, cached teacher), "
          f"time to {100 * target:.1f}% test accuracy")
    print(f"{'':28}{'train s':>9}{'ex/s':>9}{'to target s':>13}{'test acc':>10}{'PyTorch s':>11}{'retort/PyTorch':>16}")
    for name, r, key in (("1 process x 2 threads", f1, (1, 2)), ("2 ranks x 1 thread", f2, (2, 1))):
        exs = r["steps"] * 128 / r["train_seconds"]
        p = ref.get(key)
        print(f"{name:28}{r['train_seconds']:9.1f}{exs:9.0f}{fmt(seconds_to(r['metrics'], 'test_accuracy', target, better)):>13}"
              f"{100 * r['test_accuracy']:9.2f}%{fmt(p and p['train_seconds']):>11}"
              f"{fmt(p and r['train_seconds'] / p['train_seconds'], 2):>16}")
    report["fashion"] = {"1x2": f1, "2x1": f2, "pytorch": {f"{k[0]}x{k[1]}": v for k, v in ref.items()}, "target": target}

    # ---------------------------------------------------------------- language model
    text = ["data.kind=text", "text.tokenizer=sentencepiece", "text.vocab_size=2048", "text.seq_len=128",
            f"text.train_tokens={60000 if q else 400000}", f"text.val_tokens={8000 if q else 40000}",
            "data.batch_size=32", "data.eval_batch_size=32"]
    lm_teacher = text + ["model.name=gpt", "model.d_model=192", "model.layers=4", "model.heads=4",
                         "train.optimizer=adamw", "train.lr=0.002", "train.weight_decay=0.1", "train.warmup_steps=100",
                         f"train.epochs={1 if q else 2}"]
    if not b.finished("lm-teacher"):
        print("\ntraining the language-model teacher (gpt 192x4) ...", flush=True)
        b.retort_run("lm-teacher", lm_teacher, command="train")
    lm_cache = os.path.join(b.out, "cache-lm")
    shutil.rmtree(lm_cache, ignore_errors=True)
    student = text + ["text.tokenizer=auto", "model.name=gpt", "model.d_model=96", "model.layers=3", "model.heads=4",
                      "train.optimizer=adamw", "train.lr=0.003", "train.weight_decay=0.1", "train.warmup_steps=100",
                      "train.epochs=1", "distill.alpha=0.5", "distill.top_k=20", f"run.cache_dir={lm_cache}"]
    lx = ["--teacher", os.path.join(b.runs, "lm-teacher")]
    l1 = b.retort_run("lm-1x2", student, threads=2, extra=lx)
    l2 = b.retort_run("lm-2x1", student, ranks=2, threads=1, extra=lx)
    target = max(l1["val_bpb"], l2["val_bpb"]) + 0.02
    tokens = lambda r: r["steps"] * 32 * 128 / r["train_seconds"]
    print(f"\n2. Language-model distillation (gpt 96x3 student, top-20 cache, {l1['steps']} steps), "
          f"time to {target:.3f} val bits/byte")
    print(f"{'':28}{'train s':>9}{'tok/s':>9}{'to target s':>13}{'val bpb':>10}")
    for name, r in (("1 process x 2 threads", l1), ("2 ranks x 1 thread", l2)):
        print(f"{name:28}{r['train_seconds']:9.1f}{tokens(r):9.0f}{fmt(seconds_to_bpb(r, target)):>13}{r['val_bpb']:10.4f}")
    report["lm"] = {"1x2": l1, "2x1": l2, "target": target}

    # ---------------------------------------------------------------- bf16
    cache16 = os.path.join(b.out, "cache-fashion-bf16")
    shutil.rmtree(cache16, ignore_errors=True)
    fb = b.retort_run("fashion-bf16", [s for s in kd if not s.startswith("run.cache_dir")] +
                      [f"run.cache_dir={cache16}", "train.precision=bf16", "distill.teacher_precision=bf16"], extra=tx)
    lm16 = os.path.join(b.out, "cache-lm-bf16")
    shutil.rmtree(lm16, ignore_errors=True)
    lb = b.retort_run("lm-bf16", [s for s in student if not s.startswith("run.cache_dir")] +
                      [f"run.cache_dir={lm16}", "train.precision=bf16", "distill.teacher_precision=bf16"], extra=lx)
    print("\n3. bf16 vs fp32 (1 process x 2 threads): teacher cache build and student training")
    print(f"{'':34}{'cache s':>9}{'train s':>9}{'quality':>12}{'GFLOP/s':>9}")
    for name, r, q_key in (("Fashion fp32", f1, "test_accuracy"), ("Fashion bf16 (teacher + student)", fb, "test_accuracy"),
                           ("LM fp32", l1, "val_bpb"), ("LM bf16 (teacher + student)", lb, "val_bpb")):
        qv = f"{100 * r[q_key]:.2f}%" if q_key == "test_accuracy" else f"{r[q_key]:.4f} bpb"
        print(f"{name:34}{r['teacher_cache']['seconds']:9.1f}{r['train_seconds']:9.1f}{qv:>12}"
              f"{r.get('train_gflops_per_second', 0):9.1f}")
    print(f"  accuracy difference bf16 - fp32: Fashion {100 * (fb['test_accuracy'] - f1['test_accuracy']):+.2f} points, "
          f"LM {lb['val_bpb'] - l1['val_bpb']:+.4f} bits/byte")
    report["bf16"] = {"fashion": fb, "lm": lb}

    # ---------------------------------------------------------------- overlap
    live = [s for s in kd if not s.startswith("train.epochs")] + ["distill.cache=false", f"train.epochs={1 if q else 2}"]
    o0 = b.retort_run("fashion-live", live, extra=tx, policy="PASSIVE")
    o1 = b.retort_run("fashion-live-overlap", live + ["run.overlap_teacher=true"], extra=tx, policy="PASSIVE")
    live_lm = [s for s in student if not s.startswith("distill.top_k")] + ["distill.top_k=0", "distill.cache=false"]
    o2 = b.retort_run("lm-live", live_lm, extra=lx, policy="PASSIVE")
    o3 = b.retort_run("lm-live-overlap", live_lm + ["run.overlap_teacher=true"], extra=lx, policy="PASSIVE")
    print("\n4. Live teacher, overlap off vs on (1 process x 2 threads, OMP_WAIT_POLICY=PASSIVE)")
    print(f"{'':34}{'off s':>9}{'on s':>9}{'speed-up':>10}{'same result':>13}")
    for name, r0, r1, k in (("Fashion (cnn teacher -> mlp)", o0, o1, "test_accuracy"),
                            ("LM (gpt 192x4 -> 96x3, dense)", o2, o3, "val_bpb")):
        print(f"{name:34}{r0['train_seconds']:9.1f}{r1['train_seconds']:9.1f}{r0['train_seconds'] / r1['train_seconds']:9.2f}x"
              f"{'yes' if r0[k] == r1[k] else 'no':>13}")
    report["overlap"] = {"fashion": [o0, o1], "lm": [o2, o3]}

    # ---------------------------------------------------------------- utilisation
    print("\n5. FLOP utilisation of a training step (analytic FLOPs / optimisation time vs the measured peak of its precision)")
    print(f"{'':34}{'GFLOP/s':>9}{'of peak':>9}{'all-reduce MB/step':>20}{'exposed comm ms/step':>22}")
    for name, r in (("Fashion mlp, 1 x 2", f1), ("Fashion mlp, 2 x 1", f2), ("LM gpt 96x3, 1 x 2", l1),
                    ("LM gpt 96x3, 2 x 1", l2), ("LM gpt 96x3 bf16, 1 x 2", lb)):
        g = r.get("train_gflops_per_second", 0)
        peak = doctor["peak_gflops_bf16"] if r.get("precision") == "bf16" else doctor["peak_gflops_fp32"]
        mb = r.get("comm_bytes_per_step", 0) / 2**20
        comm = 1000 * r["comm_seconds"] / r["steps"] if "comm_seconds" in r else None
        print(f"{name:34}{g:9.1f}{100 * g / peak:8.1f}%{fmt(mb if mb else None, 2):>20}{fmt(comm, 2):>22}")
    with open(os.path.join(b.out, "scale.json"), "w") as f:
        json.dump(report, f, indent=1, default=str)
    print(f"\nall numbers: {os.path.join(b.out, 'scale.json')}")


if __name__ == "__main__":
    main()
