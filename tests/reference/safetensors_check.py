#!/usr/bin/python3
# Checks a folder that `retort export --format safetensors` wrote, from outside retort: its own
# safetensors reader (json + numpy), the weights compared with retort's model.pt (read by
# Debian's python3-torch, torch.jit.load), and for gpt the Hugging Face Llama forward pass written
# out here (rotate_half RoPE, RMSNorm, SwiGLU, grouped-query attention) on the exported weights:
# its logits must match retort's gpt in plain PyTorch (bench/reference/gpt_model.py, held to
# retort's own logits by the GptParity unit tests) on model.pt's weights within 1e-4, and its
# greedy continuation must equal what `retort generate --temperature 0` wrote.
#
# Usage: safetensors_check.py llama EXPORT_DIR MODEL_DIR [PROMPT GENERATED_FILE]
#        safetensors_check.py classifier EXPORT_DIR MODEL_DIR
# MODEL_DIR holds the model.pt/model.json that was exported. PROMPT and GENERATED_FILE (a byte-level
# model only) give the greedy check. Exits non-zero with the first difference.
import json
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench", "reference"))
from gpt_model import Gpt  # noqa: E402

DTYPES = {"F32": "<f4", "F16": "<f2", "I64": "<i8"}  # what retort writes


def read_safetensors(path):
    """name -> numpy array, and the metadata; checks the layout the format prescribes."""
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    assert 8 + n <= len(raw), f"{path}: header length {n} beyond the file ({len(raw)} bytes)"
    assert (8 + n) % 8 == 0, f"{path}: data starts at byte {8 + n}, not 8-byte aligned"
    text = raw[8:8 + n].decode("utf-8")
    assert text.startswith("{") and text.rstrip(" ").endswith("}"), f"{path}: header {text[:40]!r}..."
    header = json.loads(text)
    metadata = header.pop("__metadata__", {})
    assert all(isinstance(v, str) for v in metadata.values()), metadata
    data = raw[8 + n:]
    tensors, end = {}, 0
    for name, e in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"]):
        begin, stop = e["data_offsets"]
        assert begin == end, f"{name}: begins at {begin}, previous tensor ends at {end}"
        assert e["dtype"] in DTYPES, f"{name}: dtype {e['dtype']}, retort writes {list(DTYPES)}"
        dtype = np.dtype(DTYPES[e["dtype"]])
        count = int(np.prod(e["shape"], dtype=np.int64))
        assert stop - begin == count * dtype.itemsize, f"{name}: {stop - begin} bytes for {e['dtype']} {e['shape']}"
        tensors[name] = np.frombuffer(data[begin:stop], dtype=dtype).reshape(e["shape"])
        end = stop
    assert end == len(data), f"{path}: tensors cover {end} of {len(data)} data bytes"
    return tensors, metadata


def retort_weights(model_dir):
    """retort's own parameters and buffers by name, from the libtorch archive model.pt."""
    m = torch.jit.load(os.path.join(model_dir, "model.pt"), map_location="cpu")
    out = {k: v.detach().numpy() for k, v in m.named_parameters()}
    out.update({k: v.detach().numpy() for k, v in m.named_buffers()})
    return out


def same_values(name, stored, original):
    """Exact for f32; for f16 the original rounded to half (as retort's export does)."""
    expected = original.astype(stored.dtype)
    assert stored.shape == original.shape, f"{name}: shape {stored.shape}, retort has {original.shape}"
    assert np.array_equal(stored, expected), f"{name}: max difference {np.abs(stored - expected).max()}"


def check_common(export_dir, model_dir, config, metadata, tensors):
    spec = json.load(open(os.path.join(model_dir, "model.json")))
    assert config["retort"]["name"] == spec["name"], (config["retort"], spec["name"])
    assert config["retort"]["options"] == spec["options"], (config["retort"]["options"], spec["options"])
    assert metadata.get("format") == "pt" and metadata.get("producer") == "retort", metadata
    float_type = {"float32": np.float32, "float16": np.float16}[config["torch_dtype"]]
    for name, t in tensors.items():
        assert t.dtype == float_type or t.dtype.kind == "i", f"{name}: {t.dtype}, config says {config['torch_dtype']}"
    assert not os.path.exists(os.path.join(export_dir, "tokenizer.json")), "HF would misread retort's tokenizer.json"


# ---- Hugging Face Llama -------------------------------------------------------------------------

def rms_norm(x, w, eps):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def llama_logits(w, c, ids):
    """LlamaForCausalLM's forward in float32: ids (T,) -> logits (T, V)."""
    D, H, G = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"]
    hd, T, eps = D // H, len(ids), c["rms_norm_eps"]
    inv_freq = 1.0 / (c["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))
    freqs = torch.outer(torch.arange(T).float(), inv_freq)
    cos, sin = torch.cat((freqs, freqs), -1).cos(), torch.cat((freqs, freqs), -1).sin()
    mask = torch.full((T, T), float("-inf")).triu(1)
    x = w["model.embed_tokens.weight"][torch.tensor(ids)]
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = rms_norm(x, w[p + "input_layernorm.weight"], eps)
        q = (h @ w[p + "self_attn.q_proj.weight"].T).view(T, H, hd).transpose(0, 1)
        k = (h @ w[p + "self_attn.k_proj.weight"].T).view(T, G, hd).transpose(0, 1)
        v = (h @ w[p + "self_attn.v_proj.weight"].T).view(T, G, hd).transpose(0, 1)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        k, v = k.repeat_interleave(H // G, 0), v.repeat_interleave(H // G, 0)  # HF's repeat_kv
        attn = torch.softmax(q @ k.transpose(-1, -2) / hd ** 0.5 + mask, -1) @ v
        x = x + attn.transpose(0, 1).reshape(T, H * hd) @ w[p + "self_attn.o_proj.weight"].T
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        gate = torch.nn.functional.silu(h @ w[p + "mlp.gate_proj.weight"].T)
        x = x + (gate * (h @ w[p + "mlp.up_proj.weight"].T)) @ w[p + "mlp.down_proj.weight"].T
    x = rms_norm(x, w["model.norm.weight"], eps)
    head = w["model.embed_tokens.weight"] if c["tie_word_embeddings"] else w["lm_head.weight"]
    return x @ head.T


def check_llama(export_dir, model_dir, prompt=None, generated_file=None):
    c = json.load(open(os.path.join(export_dir, "config.json")))
    tensors, metadata = read_safetensors(os.path.join(export_dir, "model.safetensors"))
    check_common(export_dir, model_dir, c, metadata, tensors)
    assert c["architectures"] == ["LlamaForCausalLM"] and c["model_type"] == "llama", c
    assert c["hidden_act"] == "silu" and c["attention_bias"] is False and c["mlp_bias"] is False, c
    assert c["bos_token_id"] is None and c["eos_token_id"] is None, c
    L, D, H, G = c["num_hidden_layers"], c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"]
    V, F, hd = c["vocab_size"], c["intermediate_size"], D // H
    for key in ["max_position_embeddings", "rms_norm_eps", "rope_theta"]:
        assert c[key] > 0, (key, c[key])

    # Every tensor LlamaForCausalLM loads, with the shape the config implies, and nothing else.
    shapes = {"model.embed_tokens.weight": (V, D), "model.norm.weight": (D,)}
    if not c["tie_word_embeddings"]:
        shapes["lm_head.weight"] = (V, D)
    for i in range(L):
        p = f"model.layers.{i}."
        shapes.update({p + "input_layernorm.weight": (D,), p + "post_attention_layernorm.weight": (D,),
                       p + "self_attn.q_proj.weight": (H * hd, D), p + "self_attn.k_proj.weight": (G * hd, D),
                       p + "self_attn.v_proj.weight": (G * hd, D), p + "self_attn.o_proj.weight": (D, H * hd),
                       p + "mlp.gate_proj.weight": (F, D), p + "mlp.up_proj.weight": (F, D),
                       p + "mlp.down_proj.weight": (D, F)})
    assert set(tensors) == set(shapes), f"extra {set(tensors) - set(shapes)}, missing {set(shapes) - set(tensors)}"
    for name, shape in shapes.items():
        assert tensors[name].shape == shape, f"{name}: {tensors[name].shape}, config implies {shape}"

    # Values: retort's fused qkv rows are q, then k, then v; w1, w3, w2 are gate, up, down.
    r = retort_weights(model_dir)
    assert sum(t.size for t in r.values()) == sum(t.size for t in tensors.values()), "parameter counts differ"
    same_values("embed_tokens", tensors["model.embed_tokens.weight"], r["tok_emb.weight"])
    same_values("norm", tensors["model.norm.weight"], r["norm.weight"])
    if not c["tie_word_embeddings"]:
        same_values("lm_head", tensors["lm_head.weight"], r["head.weight"])
    for i in range(L):
        p, b = f"model.layers.{i}.", f"blocks.{i}."
        qkv = r[b + "attn.qkv.weight"]
        for name, original in [("input_layernorm", r[b + "attn_norm.weight"]),
                               ("self_attn.q_proj", qkv[:H * hd]), ("self_attn.k_proj", qkv[H * hd:(H + G) * hd]),
                               ("self_attn.v_proj", qkv[(H + G) * hd:]), ("self_attn.o_proj", r[b + "attn.proj.weight"]),
                               ("post_attention_layernorm", r[b + "mlp_norm.weight"]),
                               ("mlp.gate_proj", r[b + "mlp.w1.weight"]), ("mlp.up_proj", r[b + "mlp.w3.weight"]),
                               ("mlp.down_proj", r[b + "mlp.w2.weight"])]:
            same_values(p + name + ".weight", tensors[p + name + ".weight"], original)

    # Tokenizer: retort's files in retort_tokenizer/; SentencePiece also where LlamaTokenizer looks.
    tok = json.load(open(os.path.join(export_dir, "retort_tokenizer", "tokenizer.json")))
    assert tok["vocab_size"] == V, (tok["vocab_size"], V)
    if tok["kind"] == "sentencepiece":
        model = open(os.path.join(export_dir, "retort_tokenizer", "tokenizer.model"), "rb").read()
        assert open(os.path.join(export_dir, "tokenizer.model"), "rb").read() == model
        tc = json.load(open(os.path.join(export_dir, "tokenizer_config.json")))
        assert tc["tokenizer_class"] == "LlamaTokenizer" and tc["legacy"] is False, tc
        assert tc["add_bos_token"] is False and tc["add_eos_token"] is False, tc

    # Logits: Llama on the exported weights against retort's gpt on model.pt's (rounded like the
    # export), for random ids filling the context.
    w = {k: torch.from_numpy(v.astype(np.float32)) for k, v in tensors.items()}
    reference = Gpt(**json.load(open(os.path.join(model_dir, "model.json")))["options"]).eval()
    stored = {"float32": np.float32, "float16": np.float16}[c["torch_dtype"]]
    rounded = {k: torch.from_numpy(v.astype(stored).astype(np.float32)) for k, v in r.items()}
    reference.load_state_dict(rounded, strict=True)
    torch.manual_seed(0)
    ids = torch.randint(0, V, (c["max_position_embeddings"],))
    with torch.no_grad():
        diff = (llama_logits(w, c, ids.tolist()) - reference(ids[None])[0]).abs().max().item()
    assert diff < 1e-4, f"Llama logits differ from retort's gpt by {diff}"
    done = f"llama: {len(tensors)} tensors, logits within {diff:.1e}"
    if generated_file is None:
        return done

    assert tok["kind"] == "byte", "the greedy check needs a byte-level model (ids are the bytes)"
    expected = open(generated_file, "rb").read()
    assert expected.endswith(b"\n"), expected
    expected = expected[:-1]  # the newline `retort generate` prints
    assert expected.startswith(prompt.encode()), expected
    ids = list(prompt.encode())
    with torch.no_grad():
        while len(ids) < len(expected):
            ids.append(int(llama_logits(w, c, ids)[-1].argmax()))
    assert bytes(ids) == expected, f"Llama greedy {bytes(ids)!r}, retort {expected!r}"
    return f"{done}, greedy continuation of {len(ids) - len(prompt)} tokens equal"


def check_classifier(export_dir, model_dir):
    c = json.load(open(os.path.join(export_dir, "config.json")))
    tensors, metadata = read_safetensors(os.path.join(export_dir, "model.safetensors"))
    check_common(export_dir, model_dir, c, metadata, tensors)
    assert c["format"] == "retort-safetensors", c
    r = retort_weights(model_dir)
    assert set(tensors) == set(r), f"extra {set(tensors) - set(r)}, missing {set(r) - set(tensors)}"
    for name in r:
        same_values(name, tensors[name], r[name])
    return f"{c['retort']['name']}: {len(tensors)} tensors under retort's names"


if __name__ == "__main__":
    kind, args = sys.argv[1], sys.argv[2:]
    print({"llama": check_llama, "classifier": check_classifier}[kind](*args))
