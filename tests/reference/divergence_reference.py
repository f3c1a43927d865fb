#!/usr/bin/python3
# Reference numbers for retort's divergences (src/distill/divergence.cpp), made by plain
# PyTorch (Debian's python3-torch) row by row in probability space, the obvious way.
# Writes inputs, values and gradients w.r.t. the student logits to the JSON file argv[1],
# which tests/unit/divergence_test.cpp reads. -inf logits are written as null.
# "topk_cases" hold top-k teachers (ids and log-probabilities at T = 1) compared over k + 1
# buckets (the k tokens and the rest of the vocabulary as one tail bucket), which
# tests/unit/topk_divergence_test.cpp reads.
import json
import math
import sys

import torch

INF = float("inf")


def kl(p, q):
    # KL(p || q) of one row; tokens either side rules out (probability 0) are left out.
    keep = (p > 0) & (q > 0)
    return (p[keep] * (torch.log(p[keep]) - torch.log(q[keep]))).sum()


def divergence(name, pt, ps, beta, alpha):
    if name == "kl":
        return kl(pt, ps)
    if name == "rkl":
        return kl(ps, pt)
    if name == "jsd":
        if beta == 0:
            return kl(pt, ps)
        if beta == 1:
            return kl(ps, pt)
        m = beta * pt + (1 - beta) * ps
        return beta * kl(pt, m) + (1 - beta) * kl(ps, m)
    if name == "tvd":
        return 0.5 * (pt - ps).abs().sum()
    if name == "skl":
        return kl(pt, alpha * pt + (1 - alpha) * ps)
    if name == "srkl":
        return kl(ps, alpha * ps + (1 - alpha) * pt)
    raise ValueError(name)


def mean_over_rows(name, s, t, T, beta, alpha, mask):
    total, rows = torch.zeros((), dtype=torch.float64), 0
    for i in range(s.shape[0]):
        if mask is not None and not mask[i]:
            continue
        pt, ps = torch.softmax(t[i] / T, 0), torch.softmax(s[i] / T, 0)
        total = total + divergence(name, pt, ps, beta, alpha)
        rows += 1
    return total / max(rows, 1) * T * T


def encode(x):  # JSON has no -inf
    return [[None if v == -INF else v for v in row] for row in x.tolist()]


torch.manual_seed(4321)
cases = []
# (N, V, T, scale, beta, alpha, masked rows, what to do)
settings = [
    (4, 10, 1.0, 1.0, 0.5, 0.1, [], None),
    (8, 10, 4.0, 3.0, 0.1, 0.5, [1, 5], None),
    (3, 7, 2.5, 10.0, 0.9, 0.9, [2], None),
    (5, 3, 0.5, 0.1, 0.0, 0.0, [], None),
    (6, 50, 1.0, 2.0, 1.0, 1.0, [0, 3], None),
    (7, 12, 1.5, 4.0, 0.3, 0.2, [0, 1, 2, 3, 4, 5, 6], None),  # all rows masked
    (6, 9, 1.0, 3.0, 0.5, 0.1, [4], "teacher -inf"),            # top-k-like teacher
    (5, 8, 2.0, 2.0, 0.7, 0.3, [], "both -inf"),                # ruled out on both sides, and on one
]
for (N, V, T, scale, beta, alpha, masked, special) in settings:
    s = torch.randn(N, V, dtype=torch.float64) * scale
    t = torch.randn(N, V, dtype=torch.float64) * scale
    if special == "teacher -inf":  # the teacher keeps its top 3 tokens of each row
        t[t < t.topk(3, dim=1).values[:, -1:]] = -INF
    if special == "both -inf":
        s[:, 0] = t[:, 0] = -INF  # out of both vocabularies
        s[1, 3] = -INF            # only the student rules it out
        t[2, 5] = -INF            # only the teacher rules it out
    mask = None
    if masked:
        mask = torch.ones(N, dtype=torch.bool)
        mask[masked] = False
    case = {"temperature": T, "beta": beta, "alpha": alpha, "student": encode(s), "teacher": encode(t),
            "mask": None if mask is None else mask.tolist(), "values": {}, "grads": {}}
    for name in ["kl", "rkl", "jsd", "tvd", "skl", "srkl"]:
        sv = s.clone().requires_grad_(True)
        value = mean_over_rows(name, sv, t, T, beta, alpha, mask)
        # With every row masked the value does not depend on the student at all.
        grad = torch.autograd.grad(value, sv)[0] if value.requires_grad else torch.zeros_like(s)
        assert math.isfinite(value.item()) and torch.isfinite(grad).all(), (name, special)
        case["values"][name] = value.item()
        case["grads"][name] = grad.tolist()
    cases.append(case)


def top_k_buckets(s_row, ids, logprobs, T):
    # Student: its softened probabilities at ids, and the rest of its mass as the tail.
    ps = torch.softmax(s_row / T, 0)
    ps_k = ps[ids]
    ps_b = torch.cat([ps_k, (1 - ps_k.sum()).reshape(1)])
    # Teacher: probabilities at T = 1 and the mass they leave; softened as k + 1 tokens.
    pt_b = torch.cat([logprobs.exp(), (1 - logprobs.exp().sum()).reshape(1)])
    pt_b = pt_b ** (1 / T)
    return ps_b, pt_b / pt_b.sum()


def top_k_mean_over_rows(name, s, ids, logprobs, T, beta, alpha, mask):
    total, rows = torch.zeros((), dtype=torch.float64), 0
    for i in range(s.shape[0]):
        if mask is not None and not mask[i]:
            continue
        ps_b, pt_b = top_k_buckets(s[i], ids[i], logprobs[i], T)
        total = total + divergence(name, pt_b, ps_b, beta, alpha)
        rows += 1
    return total / max(rows, 1) * T * T


topk_cases = []
# (N, V, k, T, scale, beta, alpha, masked rows)
topk_settings = [
    (4, 10, 3, 1.0, 1.0, 0.5, 0.1, []),
    (6, 12, 5, 2.0, 3.0, 0.1, 0.5, [1, 4]),
    (5, 8, 1, 0.7, 2.0, 0.9, 0.9, []),
    (3, 30, 7, 4.0, 4.0, 0.3, 0.2, [0]),
]
for (N, V, k, T, scale, beta, alpha, masked) in topk_settings:
    s = torch.randn(N, V, dtype=torch.float64) * scale
    t = torch.randn(N, V, dtype=torch.float64) * scale
    logprobs, ids = torch.log_softmax(t, 1).topk(k, dim=1)
    mask = None
    if masked:
        mask = torch.ones(N, dtype=torch.bool)
        mask[masked] = False
    case = {"temperature": T, "beta": beta, "alpha": alpha, "student": encode(s), "ids": ids.tolist(),
            "logprobs": logprobs.tolist(), "mask": None if mask is None else mask.tolist(),
            "values": {}, "grads": {}}
    for name in ["kl", "rkl", "jsd", "tvd", "skl", "srkl"]:
        sv = s.clone().requires_grad_(True)
        value = top_k_mean_over_rows(name, sv, ids, logprobs, T, beta, alpha, mask)
        grad = torch.autograd.grad(value, sv)[0]
        assert math.isfinite(value.item()) and torch.isfinite(grad).all(), (name, "top-k")
        case["values"][name] = value.item()
        case["grads"][name] = grad.tolist()
    topk_cases.append(case)

with open(sys.argv[1], "w") as f:
    json.dump({"torch": torch.__version__, "cases": cases, "topk_cases": topk_cases}, f)
