# retort's gpt (src/models/gpt.cpp) in plain PyTorch: a Llama-style decoder with pre-RMSNorm,
# rotary positions (HF "rotate_half" convention), grouped-query attention and a SwiGLU MLP.
# Parameter names match the C++ module's, so a state_dict loads there by name.
# Used by bench/reference/gpt_train.py and tests/reference/gpt_reference.py; not a library.
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def resolve_d_ff(d_model, d_ff):
    return d_ff if d_ff > 0 else (8 * d_model // 3 + 31) // 32 * 32


class RmsNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        xf = x.float()
        return self.weight * (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).type_as(x)


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def rope_tables(head_dim, max_seq_len, theta):
    # (max_seq_len, head_dim) cos and sin, float32
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
    t = torch.arange(max_seq_len, dtype=torch.int64).float()
    freqs = torch.outer(t, inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


class Attention(nn.Module):
    def __init__(self, d_model, n_heads, n_kv_heads, dropout):
        super().__init__()
        self.n_heads, self.n_kv_heads = n_heads, n_kv_heads
        self.head_dim = d_model // n_heads
        self.dropout = dropout
        self.qkv = nn.Linear(d_model, (n_heads + 2 * n_kv_heads) * self.head_dim, bias=False)
        self.proj = nn.Linear(n_heads * self.head_dim, d_model, bias=False)

    def forward(self, x, cos, sin, mask):
        B, T, _ = x.shape
        hd, H, G = self.head_dim, self.n_heads, self.n_kv_heads
        q, k, v = self.qkv(x).split([H * hd, G * hd, G * hd], dim=-1)
        q = q.view(B, T, H, hd).transpose(1, 2)
        k = k.view(B, T, G, hd).transpose(1, 2)
        v = v.view(B, T, G, hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        # Llama's repeat_kv: query head h uses kv head h // (H / G)
        k = k.repeat_interleave(H // G, dim=1)
        v = v.repeat_interleave(H // G, dim=1)
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(hd)
        scores = scores.masked_fill(mask, float("-inf"))
        probs = F.dropout(torch.softmax(scores, dim=-1), self.dropout, self.training)
        out = (probs @ v).transpose(1, 2).reshape(B, T, H * hd)
        return self.proj(out)


class SwiGlu(nn.Module):
    def __init__(self, d_model, d_ff):
        super().__init__()
        self.w1 = nn.Linear(d_model, d_ff, bias=False)
        self.w3 = nn.Linear(d_model, d_ff, bias=False)
        self.w2 = nn.Linear(d_ff, d_model, bias=False)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class Block(nn.Module):
    def __init__(self, d_model, n_heads, n_kv_heads, d_ff, dropout, eps):
        super().__init__()
        self.dropout = dropout
        self.attn_norm = RmsNorm(d_model, eps)
        self.attn = Attention(d_model, n_heads, n_kv_heads, dropout)
        self.mlp_norm = RmsNorm(d_model, eps)
        self.mlp = SwiGlu(d_model, d_ff)

    def forward(self, x, cos, sin, mask):
        x = x + F.dropout(self.attn(self.attn_norm(x), cos, sin, mask), self.dropout, self.training)
        return x + F.dropout(self.mlp(self.mlp_norm(x)), self.dropout, self.training)


class Gpt(nn.Module):
    def __init__(self, vocab_size=256, d_model=128, n_layers=4, n_heads=4, n_kv_heads=0, d_ff=0,
                 max_seq_len=256, rope_theta=10000.0, tie_embeddings=True, dropout=0.0, norm_eps=1e-5):
        super().__init__()
        n_kv_heads = n_kv_heads or n_heads
        d_ff = resolve_d_ff(d_model, d_ff)
        self.tok_emb = nn.Embedding(vocab_size, d_model)
        self.blocks = nn.ModuleList(
            [Block(d_model, n_heads, n_kv_heads, d_ff, dropout, norm_eps) for _ in range(n_layers)])
        self.norm = RmsNorm(d_model, norm_eps)
        self.head = None if tie_embeddings else nn.Linear(d_model, vocab_size, bias=False)
        cos, sin = rope_tables(d_model // n_heads, max_seq_len, rope_theta)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        # GPT-2 / Llama initialisation, residual projections scaled by 1/sqrt(2 * n_layers)
        for name, p in self.named_parameters():
            if name.endswith("norm.weight"):
                continue
            std = 0.02 / math.sqrt(2 * n_layers) if name.endswith(("proj.weight", "w2.weight")) else 0.02
            nn.init.normal_(p, 0.0, std)

    def forward(self, ids):
        # ids: (B, T) int64 -> logits (B, T, V)
        T = ids.shape[1]
        mask = torch.ones(T, T, dtype=torch.bool, device=ids.device).triu(1)
        cos, sin = self.cos[:T], self.sin[:T]
        h = self.tok_emb(ids)
        for block in self.blocks:
            h = block(h, cos, sin, mask)
        h = self.norm(h)
        return self.head(h) if self.head is not None else F.linear(h, self.tok_emb.weight)
