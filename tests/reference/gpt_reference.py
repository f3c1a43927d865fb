#!/usr/bin/python3
# Reference logits for retort's gpt (src/models/gpt.cpp), made by the same architecture in plain
# PyTorch (bench/reference/gpt_model.py, Debian's python3-torch). Writes, per case, the options,
# every parameter by name, an input and the expected logits to the JSON file argv[1], which
# tests/unit/gpt_test.cpp (GptParity) reads. float32 values are written exactly (as doubles).
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench", "reference"))
from gpt_model import Gpt  # noqa: E402

CASES = [
    # grouped-query attention, tied head, a non-default theta and eps
    dict(vocab_size=61, d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, d_ff=0, max_seq_len=16,
         rope_theta=500.0, tie_embeddings=True, dropout=0.0, norm_eps=1e-6),
    # plain multi-head attention, untied head, explicit d_ff
    dict(vocab_size=50, d_model=24, n_layers=3, n_heads=2, n_kv_heads=0, d_ff=40, max_seq_len=16,
         rope_theta=10000.0, tie_embeddings=False, dropout=0.0, norm_eps=1e-5),
]

torch.manual_seed(1234)
cases = []
for options in CASES:
    model = Gpt(**options)
    with torch.no_grad():  # norms away from 1 so that their weights are tested too
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1 + 0.1 * torch.randn_like(p))
            else:
                p.mul_(10)  # std 0.2: logits far enough from uniform to test something
    model.eval()
    ids = torch.randint(0, options["vocab_size"], (2, 13))
    with torch.no_grad():
        logits = model(ids)
    params = {name: {"shape": list(p.shape), "data": p.detach().flatten().tolist()}
              for name, p in model.named_parameters()}
    cases.append({"options": options, "params": params, "ids": ids.tolist(),
                  "logits": {"shape": list(logits.shape), "data": logits.flatten().tolist()}})

os.makedirs(os.path.dirname(os.path.abspath(sys.argv[1])), exist_ok=True)
tmp = sys.argv[1] + ".tmp"
with open(tmp, "w") as f:
    json.dump({"torch": torch.__version__, "cases": cases}, f)
os.replace(tmp, sys.argv[1])
