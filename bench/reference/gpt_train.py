#!/usr/bin/python3
# Training throughput of retort's gpt in plain PyTorch (the model is bench/reference/gpt_model.py):
# AdamW on random token windows, or on windows of a byte-level text with --text FILE.
# Prints one JSON line {"tokens_per_second", "params", "seconds", "final_loss"} to compare with
# retort's own training on the same shapes. Not a training recipe: no schedule, no evaluation.
import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpt_model import Gpt  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--vocab", type=int, default=256, help="vocabulary size (256 with --text)")
    ap.add_argument("--d-model", type=int, default=128, help="width of the residual stream")
    ap.add_argument("--layers", type=int, default=4, help="transformer blocks")
    ap.add_argument("--heads", type=int, default=4, help="query heads")
    ap.add_argument("--kv-heads", type=int, default=0, help="key/value heads; 0 = heads")
    ap.add_argument("--d-ff", type=int, default=0, help="SwiGLU hidden width; 0 = automatic")
    ap.add_argument("--seq-len", type=int, default=128, help="tokens per window (and context)")
    ap.add_argument("--batch", type=int, default=16, help="windows per step")
    ap.add_argument("--steps", type=int, default=20, help="optimizer steps (timed after 2 warm-up steps)")
    ap.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate")
    ap.add_argument("--threads", type=int, default=0, help="torch threads; 0 = torch's default")
    ap.add_argument("--untied", action="store_true", help="separate LM head instead of the tied embedding")
    ap.add_argument("--text", help="train on this file's bytes instead of random tokens")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)

    if a.text:
        with open(a.text, "rb") as f:
            data = torch.frombuffer(bytearray(f.read()), dtype=torch.uint8).to(torch.int64)
        if a.vocab < 256:
            sys.exit(f"--text is byte-level and needs --vocab >= 256, got {a.vocab}")
        if data.numel() < a.seq_len + 1:
            sys.exit(f"{a.text} has {data.numel()} bytes, fewer than one window of {a.seq_len + 1}")
    else:
        data = torch.randint(0, a.vocab, (1 << 20,))

    model = Gpt(vocab_size=a.vocab, d_model=a.d_model, n_layers=a.layers, n_heads=a.heads, n_kv_heads=a.kv_heads,
                d_ff=a.d_ff, max_seq_len=a.seq_len, tie_embeddings=not a.untied)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.0)
    params = sum(p.numel() for p in model.parameters())

    def batch():
        starts = torch.randint(0, data.numel() - a.seq_len - 1, (a.batch,))
        windows = torch.stack([data[s:s + a.seq_len + 1] for s in starts.tolist()])
        return windows[:, :-1], windows[:, 1:]

    def step():
        x, y = batch()
        loss = F.cross_entropy(model(x).reshape(-1, a.vocab), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()

    warmup = min(2, a.steps)
    for _ in range(warmup):
        loss = step()
    start = time.perf_counter()
    for _ in range(a.steps - warmup):
        loss = step()
    seconds = time.perf_counter() - start
    timed = a.steps - warmup
    print(json.dumps({"tokens_per_second": timed * a.batch * a.seq_len / seconds if timed else 0.0,
                      "params": params, "seconds": seconds, "final_loss": loss}))


if __name__ == "__main__":
    main()
