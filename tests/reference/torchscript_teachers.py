"""Teachers the way users bring them: trained in plain PyTorch, saved as TorchScript.

Usage: torchscript_teachers.py OUT_DIR
Writes, in OUT_DIR:
  classifier.pt      a small CNN trained 2 epochs on 2,000 Fashion-MNIST images, traced;
                     returns (logits, features), a tuple, as many user models do
  lm/teacher.pt      bench/reference/gpt_model.py's Gpt (byte-level, 256 ids) trained on a slice
                     of the King James Bible, scripted; returns {"logits": ...}
  wrong_classes.pt   a classifier with 3 outputs (the data has 10 classes)
  lm_vocab300.pt     a language model over 300 ids (the byte tokenizer has 256)
  not_a_module.pt    a tensor saved with torch.save: not TorchScript
  classifier.json    the classifier's own test accuracy on the first 1,000 test images
Run with Debian's /usr/bin/python3 (python3-torch).
"""
import gzip
import json
import os
import subprocess
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "bench", "reference"))
from gpt_model import Gpt  # noqa: E402

FASHION = "/usr/share/datasets/fashion-mnist"
MEAN, STD = 0.2860, 0.3530  # retort's data.mean / data.std defaults: the student sees the same inputs


def idx(name):
    with gzip.open(os.path.join(FASHION, name)) as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def images(name, n):
    x = torch.from_numpy(idx(name)[:n].astype(np.float32)).unsqueeze(1) / 255.0
    return (x - MEAN) / STD


class SmallCnn(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.fc1 = nn.Linear(8 * 14 * 14, 64)
        self.fc2 = nn.Linear(64, classes)

    def forward(self, x):
        h = F.max_pool2d(F.relu(self.conv(x)), 2).flatten(1)
        features = F.relu(self.fc1(h))
        return self.fc2(features), features


class LogitsDict(nn.Module):
    """Wraps a language model so it returns {"logits": (B, T, V)}, like Hugging Face models."""

    def __init__(self, lm):
        super().__init__()
        self.lm = lm

    def forward(self, ids):
        return {"logits": self.lm(ids)}


def train_classifier(out):
    torch.manual_seed(0)
    x, y = images("train-images-idx3-ubyte.gz", 2000), torch.from_numpy(idx("train-labels-idx1-ubyte.gz")[:2000].astype(np.int64))
    model = SmallCnn()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(3):
        perm = torch.randperm(len(x))
        for i in range(0, len(x), 64):
            b = perm[i:i + 64]
            loss = F.cross_entropy(model(x[b])[0], y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    tx = images("t10k-images-idx3-ubyte.gz", 1000)
    ty = torch.from_numpy(idx("t10k-labels-idx1-ubyte.gz")[:1000].astype(np.int64))
    with torch.no_grad():
        acc = (model(tx)[0].argmax(1) == ty).float().mean().item()
    torch.jit.trace(model, x[:4]).save(os.path.join(out, "classifier.pt"))
    with open(os.path.join(out, "classifier.json"), "w") as f:
        json.dump({"test_accuracy_1000": acc}, f)
    torch.jit.trace(SmallCnn(classes=3).eval(), x[:4]).save(os.path.join(out, "wrong_classes.pt"))


def train_lm(out):
    torch.manual_seed(0)
    text = subprocess.run(["bible", "Gen1:1-Gen20:18"], capture_output=True, check=True).stdout
    data = torch.tensor(list(text), dtype=torch.int64)
    model = Gpt(vocab_size=256, d_model=64, n_layers=2, n_heads=4, max_seq_len=64)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for step in range(150):
        starts = torch.randint(0, len(data) - 33, (16,))
        batch = torch.stack([data[s:s + 33] for s in starts])
        logits = model(batch[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, 256), batch[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    os.makedirs(os.path.join(out, "lm"), exist_ok=True)
    torch.jit.script(LogitsDict(model)).save(os.path.join(out, "lm", "teacher.pt"))
    torch.jit.script(Gpt(vocab_size=300, d_model=32, n_layers=1, n_heads=2, max_seq_len=64).eval()).save(
        os.path.join(out, "lm_vocab300.pt"))
    print(f"lm: final training loss {loss.item():.3f} nats/byte")


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(1)
    train_classifier(out)
    train_lm(out)
    torch.save(torch.zeros(3), os.path.join(out, "not_a_module.pt"))


if __name__ == "__main__":
    main()
