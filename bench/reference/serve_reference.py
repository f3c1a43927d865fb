#!/usr/bin/python3
"""The plain-PyTorch baseline for bench/serve_bench.py: the same two routes, the way a PyTorch
user would write them in a few lines (http.server with a thread per connection, torch in eval +
no_grad). No keys, limits or audit: it does less than `retort serve`, so the ratio is a bound.

  /v1/completions  the gpt of retort's model.json (bench/reference/gpt_model.py: same shapes,
                   random weights: the work is the same), prompt bytes as ids, `max_tokens`
                   new tokens sampled one by one (full recompute per token: this model has no
                   KV cache), top-`logprobs` log-probabilities of each new token
  /v1/classify     the MLP of retort's model.json (784 -> hidden -> classes), softmax + top_k

Usage: serve_reference.py LM_MODEL_JSON MLP_MODEL_JSON PORT   (prints the port when listening)
"""
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpt_model import Gpt  # noqa: E402

lm_opts = json.load(open(sys.argv[1]))["options"]
mlp_opts = json.load(open(sys.argv[2]))["options"]
port = int(sys.argv[3])
torch.manual_seed(0)
lm = Gpt(vocab_size=lm_opts["vocab_size"], d_model=lm_opts["d_model"], n_layers=lm_opts["n_layers"],
         n_heads=lm_opts["n_heads"], n_kv_heads=lm_opts.get("n_kv_heads", 0), d_ff=lm_opts.get("d_ff", 0),
         max_seq_len=lm_opts["max_seq_len"]).eval()
dims = [mlp_opts["in_channels"] * mlp_opts["height"] * mlp_opts["width"]] + mlp_opts["hidden"]
layers = []
for a, b in zip(dims, dims[1:]):
    layers += [nn.Linear(a, b), nn.ReLU()]
mlp = nn.Sequential(*layers, nn.Linear(dims[-1], mlp_opts["num_classes"])).eval()


def complete(body):
    ids = torch.tensor([[b % lm_opts["vocab_size"] for b in body["prompt"].encode()]])
    k = body.get("logprobs", 0) or 0
    g = torch.Generator().manual_seed(body.get("seed", 0))
    tokens, lps, tops = [], [], []
    with torch.no_grad():
        for _ in range(body.get("max_tokens", 16)):
            lsm = torch.log_softmax(lm(ids[:, -lm_opts["max_seq_len"]:])[0, -1].float(), -1)
            nxt = torch.multinomial(lsm.exp(), 1, generator=g)
            tokens.append(int(nxt))
            lps.append(float(lsm[nxt]))
            if k:
                v, i = lsm.topk(k)
                tops.append({str(int(t)): float(x) for t, x in zip(i, v)})
            ids = torch.cat([ids, nxt.view(1, 1)], 1)
    n = len(tokens)
    return {"object": "text_completion", "choices": [{"index": 0, "text": "", "finish_reason": "length",
            "logprobs": {"tokens": [str(t) for t in tokens], "token_logprobs": lps, "top_logprobs": tops}}],
            "usage": {"prompt_tokens": ids.shape[1] - n, "completion_tokens": n, "total_tokens": ids.shape[1]}}


def classify(body):
    x = (torch.tensor(body["input"], dtype=torch.float32).view(1, -1) / 255 - 0.2860) / 0.3530
    with torch.no_grad():
        p = torch.softmax(mlp(x), -1)[0]
    v, i = p.topk(body.get("top_k", 3))
    return {"object": "list", "data": [{"index": 0, "label": int(i[0]),
            "top": [{"label": int(a), "probability": float(b)} for a, b in zip(i, v)]}],
            "usage": {"prompt_tokens": 1, "total_tokens": 1}}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as retort serve
    disable_nagle_algorithm = True  # TCP_NODELAY, as retort serve

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        out = json.dumps(complete(body) if self.path.endswith("/completions") else classify(body)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
