#!/usr/bin/python3
# The fair-baseline sweep of BENCHMARKS.md ("A fair baseline"): the demo's MLP student trained on
# labels alone and distilled from a retort CNN teacher, scored on a validation split held out of the
# training set (5,000 images, seeded), never on the test set. Plain PyTorch, 2 seeds per row.
#   bench/kd_fashion_sweep.py --teacher runs/demo/teacher/model --out /tmp/sweep --stage views --views 8
#   bench/kd_fashion_sweep.py --teacher ... --out /tmp/sweep --stage mixviews --views 8      (then VIEWS=mixviews.pt)
#   bench/kd_fashion_sweep.py --teacher ... --out /tmp/sweep --stage students --runs '{"epochs":30,"lr":1e-3};{"epochs":30,"alpha":1.0}'
# A row is a JSON object: epochs, lr, opt (adamw|sgd), wd, ls (label smoothing), aug (random crop 2 +
# flip), views (K fixed views, the teacher's logits on each cached by --stage views: crop/flip, or by
# --stage mixviews: mixup, lam * x + (1 - lam) * x_j with lam = max(u, 1 - u), u uniform, a fixed partner
# j per view; the students stage reads $VIEWS, default views.pt), plain (with views: the share of
# examples shown as the plain image with its plain logits instead), alpha, T.
import sys, os, json, math, time, argparse
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference"))
import torch, torch.nn as nn, torch.nn.functional as F
from kd_fashion import load_split, make_cnn, augment, BLACK
torch.set_num_threads(int(os.environ.get("THREADS", "2")))
p = argparse.ArgumentParser()
p.add_argument("--stage", default="students", help="views | mixviews | students")
p.add_argument("--views", type=int, default=8)
p.add_argument("--runs", default="")
p.add_argument("--teacher", default="runs/demo/teacher/model", help="a retort cnn model folder (model.pt)")
p.add_argument("--out", default="/tmp/kd-sweep")
a = p.parse_args()
D = "/usr/share/datasets/fashion-mnist"
x, y = load_split(D, "train")
g = torch.Generator().manual_seed(123)
perm = torch.randperm(60000, generator=g)
vi, ti = perm[:5000], perm[5000:]
xv, yv, xt, yt = x[vi], y[vi], x[ti], y[ti]
OUT = a.out
os.makedirs(OUT, exist_ok=True)

def mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))

def evaluate(m, xs, ys, bs=1000):
    m.eval(); c = 0
    with torch.no_grad():
        for i in range(0, len(xs), bs): c += (m(xs[i:i+bs]).argmax(1) == ys[i:i+bs]).sum().item()
    m.train(); return c / len(xs)

def cosine(step, total, warm, lr):
    if step < warm: return lr * (step + 1) / warm
    return lr * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))

def load_teacher():
    t = make_cnn([32, 64], [512], 0.3)
    sd = {}
    for n, p in list(torch.jit.load(os.path.join(a.teacher, "model.pt")).state_dict().items()):
        sd[n.replace("features.", "").replace("classifier.0.", "9.").replace("head.", "12.")] = p
    t.load_state_dict(sd); t.eval()
    return t

if a.stage == "mixviews":
    t = load_teacher()
    torch.manual_seed(11)
    V = []; L = []
    with torch.no_grad():
        for v in range(a.views):
            j = torch.randperm(len(xt))
            lam = torch.distributions.Beta(1.0, 1.0).sample((len(xt), 1, 1, 1))
            lam = torch.maximum(lam, 1 - lam)  # the image itself dominates (its label stays the label)
            xa = lam * xt + (1 - lam) * xt[j]
            V.append(xa.half()); L.append(torch.cat([t(xa[i:i+1000]) for i in range(0, len(xa), 1000)]))
            print("view", v, flush=True)
        P = torch.cat([t(xt[i:i+1000]) for i in range(0, len(xt), 1000)])
    torch.save({"views": torch.stack(V), "logits": torch.stack(L), "plain": P}, OUT + "/mixviews.pt")
    sys.exit()

if a.stage == "views":
    t = make_cnn([32, 64], [512], 0.3)
    sd = {}
    for n, p in list(torch.jit.load(os.path.join(a.teacher, "model.pt")).state_dict().items()):
        n = n.replace("features.", "").replace("classifier.0.", "9.").replace("head.", "12.")
        sd[n] = p
    t.load_state_dict(sd); t.eval()
    print("teacher val", evaluate(t, xv, yv), flush=True)
    torch.manual_seed(7)
    V = []; L = []
    with torch.no_grad():
        L0 = torch.cat([t(xt[i:i+1000]) for i in range(0, len(xt), 1000)])
        for v in range(a.views):
            xa = torch.cat([augment(xt[i:i+1000]) for i in range(0, len(xt), 1000)])
            V.append(xa.half()); L.append(torch.cat([t(xa[i:i+1000]) for i in range(0, len(xa), 1000)]))
            print("view", v, flush=True)
    torch.save({"views": torch.stack(V), "logits": torch.stack(L), "plain": L0}, OUT + "/views.pt")
    sys.exit()

views = torch.load(os.path.join(OUT, os.environ.get("VIEWS", "views.pt")))
VX, VL, PL = views["views"], views["logits"], views["plain"]

def student(cfg, seed):
    torch.manual_seed(seed)
    m = mlp()
    E, B, lr = cfg.get("epochs", 8), 128, cfg.get("lr", 2e-3)
    if cfg.get("opt", "adamw") == "adamw": opt = torch.optim.AdamW(m.parameters(), lr=lr, weight_decay=cfg.get("wd", 1e-4))
    else: opt = torch.optim.SGD(m.parameters(), lr=lr, momentum=0.9, weight_decay=cfg.get("wd", 1e-4))
    steps = E * ((len(xt) + B - 1) // B); s = 0
    K = cfg.get("views", 0); alpha = cfg.get("alpha", 0.0); T = cfg.get("T", 1.0); ls = cfg.get("ls", 0.0)
    gen = torch.Generator().manual_seed(seed + 99)
    for e in range(E):
        order = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(xt), B):
            idx = order[i:i+B]
            if K > 0:
                v = torch.randint(0, K, (len(idx),), generator=gen)
                xb = VX[v, idx].float(); tl = VL[v, idx]
                if cfg.get("plain", 0.0) > 0:
                    keep = torch.rand(len(idx), generator=gen) < cfg["plain"]
                    xb[keep] = xt[idx][keep]; tl = tl.clone(); tl[keep] = PL[idx][keep]
            elif cfg.get("aug"):
                xb = augment(xt[idx]); tl = None
            else:
                xb = xt[idx]; tl = PL[idx]
            yb = yt[idx]
            for gr in opt.param_groups: gr["lr"] = cosine(s, steps, 100, lr)
            out = m(xb)
            loss = 0
            if alpha < 1: loss = (1 - alpha) * F.cross_entropy(out, yb, label_smoothing=ls)
            if alpha > 0:
                loss = loss + alpha * T * T * F.kl_div(F.log_softmax(out / T, 1), F.log_softmax(tl / T, 1), reduction="batchmean", log_target=True)
            opt.zero_grad(); loss.backward(); opt.step(); s += 1
    return evaluate(m, xv, yv)

for line in a.runs.split(";"):
    cfg = json.loads(line)
    seeds = cfg.pop("seeds", 2)
    t0 = time.time()
    accs = [student(dict(cfg), s) for s in range(seeds)]
    mu = sum(accs) / len(accs); sd = (sum((q - mu) ** 2 for q in accs) / max(1, len(accs) - 1)) ** 0.5
    print(json.dumps(cfg), f"val {100*mu:.2f} ± {100*sd:.2f}", [round(100*q, 2) for q in accs], f"{time.time()-t0:.0f}s", flush=True)
