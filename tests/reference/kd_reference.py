#!/usr/bin/python3
# Reference numbers for retort's loss terms, made by plain PyTorch (Debian's python3-torch).
# Writes inputs, losses and gradients to a JSON file that tests/unit/objective_test.cpp reads.
import json
import sys

import torch
import torch.nn.functional as F

torch.manual_seed(1234)
cases = []
for (B, V, T, scale) in [(4, 10, 1.0, 1.0), (8, 10, 4.0, 3.0), (3, 7, 2.5, 10.0), (5, 3, 0.5, 0.1)]:
    s = (torch.randn(B, V, dtype=torch.float64) * scale).requires_grad_(True)
    t = torch.randn(B, V, dtype=torch.float64) * scale
    y = torch.randint(0, V, (B,))
    ce = F.cross_entropy(s, y)
    (g_ce,) = torch.autograd.grad(ce, s)
    kl = F.kl_div(F.log_softmax(s / T, 1), F.log_softmax(t / T, 1), reduction="batchmean", log_target=True) * T * T
    (g_kl,) = torch.autograd.grad(kl, s)
    cases.append({
        "temperature": T,
        "student": s.detach().tolist(), "teacher": t.tolist(), "labels": y.tolist(),
        "ce": ce.item(), "kl": kl.item(), "grad_ce": g_ce.tolist(), "grad_kl": g_kl.tolist(),
    })
with open(sys.argv[1], "w") as f:
    json.dump({"torch": torch.__version__, "cases": cases}, f)
