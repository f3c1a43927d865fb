#!/usr/bin/env python3
# Plain-PyTorch reference for retort's knowledge-distillation demo on Fashion-MNIST:
# train a CNN teacher, then an MLP student on labels only (baseline) and the same MLP
# distilled from the teacher, over several seeds; prints one JSON summary as the last line.
import os

# libgomp's default busy-waiting makes 2-thread runs ~25x slower when the cores are shared
# with other work (e.g. a compiler); passive waiting costs little when the machine is idle.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import gzip
import json
import math
import struct
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

MEAN, STD = 0.2860, 0.3530
BLACK = (0.0 - MEAN) / STD  # value of a raw-zero pixel after normalisation (used for padding)


# ---------------------------------------------------------------- data

def read_idx(path):
    """Read a (gzipped) IDX file into a numpy uint8 array."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    assert zero == 0 and dtype == 0x08, "expected unsigned-byte IDX"
    shape = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_split(root, prefix):
    images = read_idx(os.path.join(root, f"{prefix}-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(root, f"{prefix}-labels-idx1-ubyte.gz"))
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)  # (N,1,28,28)
    x = (x - MEAN) / STD
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y


def augment(x, pad=2):
    """Random crop (pad with black by `pad` pixels, crop 28x28 back) + random horizontal flip.
    Uses the global torch RNG: offsets dy, dx ~ U{0..2*pad}, flip ~ Bernoulli(0.5)."""
    b, _, h, w = x.shape
    xp = F.pad(x, (pad, pad, pad, pad), value=BLACK)
    dy = torch.randint(0, 2 * pad + 1, (b,))
    dx = torch.randint(0, 2 * pad + 1, (b,))
    flip = torch.rand(b) < 0.5
    ar_h, ar_w = torch.arange(h), torch.arange(w)
    rows = dy[:, None] + ar_h[None, :]                                   # (B,H)
    cols = torch.where(flip[:, None], dx[:, None] + (w - 1 - ar_w)[None, :],
                       dx[:, None] + ar_w[None, :])                       # (B,W)
    bidx = torch.arange(b)[:, None, None]
    return xp[:, 0][bidx, rows[:, :, None], cols[:, None, :]].unsqueeze(1)


# ---------------------------------------------------------------- models

def make_cnn(channels, hidden, dropout):
    layers, c_in, size = [], 1, 28
    for c in channels:
        layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU(), nn.MaxPool2d(2)]
        c_in, size = c, size // 2
    layers.append(nn.Flatten())
    d = c_in * size * size
    for h in hidden:
        layers += [nn.Linear(d, h), nn.ReLU(), nn.Dropout(dropout)]
        d = h
    layers.append(nn.Linear(d, 10))
    return nn.Sequential(*layers)


def make_mlp(hidden, dropout=0.0):
    layers, d = [nn.Flatten()], 28 * 28
    for h in hidden:
        layers += [nn.Linear(d, h), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        d = h
    layers.append(nn.Linear(d, 10))
    return nn.Sequential(*layers)


def n_params(model):
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------- training

def lr_at(step, total, warmup, base):
    """Linear warm-up for `warmup` steps, then cosine decay to 0 over the remaining steps."""
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return base * 0.5 * (1.0 + math.cos(math.pi * progress))


def kd_loss(s_logits, labels, t_logits, temperature, alpha):
    ce = F.cross_entropy(s_logits, labels)
    if alpha == 0.0:
        return ce
    T = temperature
    kl = F.kl_div(F.log_softmax(s_logits / T, 1), F.log_softmax(t_logits / T, 1),
                  reduction="batchmean", log_target=True) * (T * T)
    return (1.0 - alpha) * ce + alpha * kl


def make_optimizer(name, params, lr, weight_decay, momentum):
    """adamw: decoupled weight decay; adam: no weight decay at all; sgd: heavy-ball momentum
    (dampening 0, nesterov off) with weight decay as L2 added to the gradient (torch/libtorch SGD)."""
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=0.0)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}")


def train(model, x, y, epochs, batch_size, lr, weight_decay, warmup_steps,
          teacher=None, teacher_logits=None, temperature=1.0, alpha=0.0, do_augment=False,
          optimizer="adamw", momentum=0.9, hflip=False, x_flipped=None, teacher_logits_flipped=None):
    """Train `model` in place. With alpha>0 the soft targets come from `teacher_logits`
    (precomputed, no augmentation) or, when augmenting, from `teacher` run on the same batch.
    hflip: each sample of a batch is mirrored left-right with probability 0.5 (one
    torch.rand(batch) draw per batch, after the epoch's randperm); the soft target of a
    mirrored sample is the cached teacher logit of the mirrored image (`teacher_logits_flipped`,
    same row index), so no teacher forward runs per batch."""
    opt = make_optimizer(optimizer, model.parameters(), lr, weight_decay, momentum)
    n = x.shape[0]
    steps_per_epoch = math.ceil(n / batch_size)  # last partial batch is kept
    total = epochs * steps_per_epoch
    step = 0
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(n)
        for i in range(steps_per_epoch):
            idx = perm[i * batch_size:(i + 1) * batch_size]
            xb, yb = x[idx], y[idx]
            flip = None
            if hflip:
                flip = torch.rand(idx.shape[0]) < 0.5
                xb = torch.where(flip[:, None, None, None], x_flipped[idx], xb)
            if do_augment:
                xb = augment(xb)
            tb = None
            if alpha > 0.0:
                if do_augment:
                    with torch.no_grad():
                        tb = teacher(xb)
                else:
                    tb = teacher_logits[idx]
                    if flip is not None:
                        tb = torch.where(flip[:, None], teacher_logits_flipped[idx], tb)
            for g in opt.param_groups:
                g["lr"] = lr_at(step, total, warmup_steps, lr)
            loss = kd_loss(model(xb), yb, tb, temperature, alpha)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
    model.eval()
    return model


@torch.no_grad()
def predict(model, x, batch_size=256):
    model.eval()
    return torch.cat([model(x[i:i + batch_size]) for i in range(0, x.shape[0], batch_size)])


def accuracy(logits, y):
    return (logits.argmax(1) == y).float().mean().item()


# ---------------------------------------------------------------- main

def int_list(s):
    return [int(v) for v in s.split(",") if v.strip()]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="KD demo reference on Fashion-MNIST")
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--teacher-epochs", type=int, default=6)
    p.add_argument("--student-epochs", type=int, default=8)
    p.add_argument("--teacher-channels", type=int_list, default=[32, 64])
    p.add_argument("--teacher-hidden", type=int_list, default=[512])
    p.add_argument("--teacher-dropout", type=float, default=0.3)
    p.add_argument("--student-hidden", type=int_list, default=[128])
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--teacher-lr", type=float, default=2e-3)
    p.add_argument("--student-lr", type=float, default=0.15)
    p.add_argument("--student-optimizer", choices=["adamw", "adam", "sgd"], default="sgd",
                   help="the teacher always trains with adamw")
    p.add_argument("--student-momentum", type=float, default=0.9, help="sgd only")
    p.add_argument("--student-dropout", type=float, default=0.0)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--warmup-steps", type=int, default=100)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--alpha", type=float, default=0.9)
    p.add_argument("--augment", action="store_true",
                   help="random crop (pad 2) + flip for teacher and students; teacher runs per batch")
    p.add_argument("--hflip", action="store_true",
                   help="students: random horizontal flip only, teacher logits of the original and "
                        "the mirrored training images cached")
    p.add_argument("--teacher-hflip", action="store_true",
                   help="teacher training: random horizontal flip only")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--train-subset", type=int, default=0, help="0 = all 60000")
    p.add_argument("--teacher-seed", type=int, default=0)
    return p.parse_args(argv)


def main(argv=None):
    a = parse_args(argv)
    if a.augment and (a.hflip or a.teacher_hflip):
        raise SystemExit("--augment already flips: do not combine it with --hflip/--teacher-hflip")
    torch.set_num_threads(a.threads)
    t_start = time.time()

    x_train, y_train = load_split(a.data, "train")
    x_test, y_test = load_split(a.data, "t10k")
    if a.train_subset > 0:
        x_train, y_train = x_train[:a.train_subset], y_train[:a.train_subset]

    # Teacher
    t0 = time.time()
    torch.manual_seed(a.teacher_seed)
    teacher = make_cnn(a.teacher_channels, a.teacher_hidden, a.teacher_dropout)
    x_train_flipped = x_train.flip(3)  # mirrored left-right (width axis)
    train(teacher, x_train, y_train, a.teacher_epochs, a.batch_size, a.teacher_lr,
          a.weight_decay, a.warmup_steps, do_augment=a.augment,
          hflip=a.teacher_hflip, x_flipped=x_train_flipped)
    teacher_train_logits = predict(teacher, x_train)  # eval mode, no augmentation; cached
    # with --hflip, also the logits of every mirrored training image (row i = image i mirrored)
    teacher_flipped_logits = predict(teacher, x_train_flipped) if a.hflip else None
    teacher_seconds = time.time() - t0
    teacher_test_top1 = predict(teacher, x_test).argmax(1)
    teacher_acc = (teacher_test_top1 == y_test).float().mean().item()
    print(f"teacher: acc={teacher_acc:.4f} params={n_params(teacher)} time={teacher_seconds:.1f}s",
          flush=True)

    # Students: same seeds, same data/augmentation; only the loss differs.
    results = {"baseline": [], "distilled": []}
    student_params, run_seconds = 0, []
    t_students = time.time()
    for kind, alpha in (("baseline", 0.0), ("distilled", a.alpha)):
        for s in range(a.seeds):
            t1 = time.time()
            torch.manual_seed(s)
            student = make_mlp(a.student_hidden, a.student_dropout)
            student_params = n_params(student)
            train(student, x_train, y_train, a.student_epochs, a.batch_size, a.student_lr,
                  a.weight_decay, a.warmup_steps, teacher=teacher,
                  teacher_logits=teacher_train_logits, temperature=a.temperature,
                  alpha=alpha, do_augment=a.augment, optimizer=a.student_optimizer,
                  momentum=a.student_momentum, hflip=a.hflip, x_flipped=x_train_flipped,
                  teacher_logits_flipped=teacher_flipped_logits)
            logits = predict(student, x_test)
            acc = accuracy(logits, y_test)
            agree = (logits.argmax(1) == teacher_test_top1).float().mean().item()
            run_seconds.append(time.time() - t1)
            results[kind].append((acc, agree))
            print(f"{kind} seed={s}: acc={acc:.4f} agreement={agree:.4f} "
                  f"time={run_seconds[-1]:.1f}s", flush=True)
    students_seconds = time.time() - t_students

    def stats(kind, col):
        v = np.array([r[col] for r in results[kind]])
        # sample standard deviation (ddof=1); 0 when only one seed
        return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0

    b_mean, b_std = stats("baseline", 0)
    d_mean, d_std = stats("distilled", 0)
    summary = {
        "teacher_accuracy": round(teacher_acc, 4),
        "teacher_params": n_params(teacher),
        "teacher_seconds": round(teacher_seconds, 2),
        "baseline_accuracy_mean": round(b_mean, 4),
        "baseline_accuracy_std": round(b_std, 4),       # sample std, ddof=1
        "distilled_accuracy_mean": round(d_mean, 4),
        "distilled_accuracy_std": round(d_std, 4),      # sample std, ddof=1
        "gain_points": round(100 * (d_mean - b_mean), 2),
        "baseline_agreement_mean": round(stats("baseline", 1)[0], 4),
        "distilled_agreement_mean": round(stats("distilled", 1)[0], 4),
        "student_params": student_params,
        "student_seconds_max": round(max(run_seconds), 2),
        "students_seconds": round(students_seconds, 2),
        "total_seconds": round(time.time() - t_start, 2),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
