#!/usr/bin/python3
"""Plain-PyTorch reference for retort's data-parallel distillation benchmark.

The Fashion-MNIST student (an MLP) is distilled from the teacher logits in a retort teacher
cache file (RTCACHE1: the very numbers retort's student reads), in one process or in several
under torchrun with DistributedDataParallel (gloo): every rank takes its slice of each global
batch, as retort does, and DDP averages the gradients in buckets during backward.

  python3 kd_fashion_ddp.py --cache FILE --out result.json                 # 1 process
  scripts/torchrun --nproc_per_node=2 bench/reference/kd_fashion_ddp.py --cache FILE --out r.json

Writes {train_seconds, examples_per_second, test_accuracy, ranks, threads} (rank 0 only). Training
time excludes data loading and the final evaluation, as retort's train_seconds does.
"""
import argparse
import json
import os
import struct
import sys
import time

import torch
import torch.distributed as dist
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kd_fashion as ref  # noqa: E402


def read_cache(path):
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"RTCACHE1", f"{path} is not a retort teacher cache"
    n = struct.unpack("<Q", data[8:16])[0]
    header = json.loads(data[16:16 + n])
    return torch.frombuffer(bytearray(data[16 + n:]), dtype=torch.float32).view(header["shape"])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cache", required=True, help="retort teacher cache (logits-*.bin) of the training set")
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--out", required=True)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=128, help="global batch, split across ranks")
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.15)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--warmup-steps", type=int, default=100)
    p.add_argument("--alpha", type=float, default=0.9)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1:
        dist.init_process_group("gloo")
    threads = torch.get_num_threads()
    x, y = ref.load_split(a.data, "train")
    xt, yt = ref.load_split(a.data, "t10k")
    t = read_cache(a.cache)
    assert t.shape[0] == x.shape[0], f"cache holds {t.shape[0]} rows, the training set {x.shape[0]}"

    torch.manual_seed(a.seed)
    model = ref.make_mlp([a.hidden])
    net = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    opt = ref.make_optimizer("sgd", model.parameters(), a.lr, a.weight_decay, a.momentum)
    n, B = x.shape[0], a.batch_size
    per_epoch = (n + B - 1) // B
    total, step = a.epochs * per_epoch, 0
    start = time.perf_counter()
    for epoch in range(a.epochs):
        order = torch.randperm(n, generator=torch.Generator().manual_seed(a.seed * 1000 + epoch))
        for b in range(per_epoch):
            idx = order[b * B:(b + 1) * B]
            mine = idx[len(idx) * rank // world:len(idx) * (rank + 1) // world]
            for g in opt.param_groups:
                g["lr"] = ref.lr_at(step, total, a.warmup_steps, a.lr)
            loss = ref.kd_loss(net(x[mine]), y[mine], t[mine], a.temperature, a.alpha)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
    seconds = time.perf_counter() - start
    if rank == 0:
        with torch.no_grad():
            acc = (model(xt).argmax(1) == yt).float().mean().item()
        with open(a.out, "w") as f:
            json.dump({"train_seconds": seconds, "examples_per_second": a.epochs * n / seconds,
                       "test_accuracy": acc, "ranks": world, "threads": threads}, f)
    if world > 1:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
