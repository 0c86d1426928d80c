"""Independent reference for the ONNX sentence encoders: a BERT forward pass written in PyTorch (float64) on the
weights read out of model.onnx, tokens given (from Hugging Face's tokenizers in JS). Also writes those weights as a
Hugging Face layout directory (config.json + model.safetensors) for the engine's own BERT (before/after benchmark).

usage: bert_onnx_reference.py model.onnx ids.json pooling(mean|cls) out.json [hf_out_dir]
"""
import json
import math
import struct
import sys

import numpy as np
import onnx
from onnx import numpy_helper
import torch


def weights(model):
    """Initializers by their PyTorch names; MatMul weights (exported under numbers or onnx::MatMul_N, as [in, out])
    are named by the bias their output is added to, and transposed back to PyTorch's [out, in]."""
    init = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    consumers = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    anonymous = lambda name: "." not in name or name.startswith("onnx::")
    named = {k: v for k, v in init.items() if not anonymous(k)}
    for node in model.graph.node:
        if node.op_type != "MatMul" or node.input[1] not in init or not anonymous(node.input[1]):
            continue
        adds = [n for n in consumers.get(node.output[0], []) if n.op_type == "Add"]
        bias = [i for a in adds for i in a.input if i.endswith(".bias") and i in init]
        if len(bias) != 1:
            continue
        named[bias[0][: -len(".bias")] + ".weight"] = init[node.input[1]].T.copy()
    return named


def layer_norm(x, w, b, eps=1e-12):
    return torch.nn.functional.layer_norm(x, (x.shape[-1],), w, b, eps)


def encode(w, ids, heads, pooling):
    t = {k: torch.tensor(v, dtype=torch.float64) for k, v in w.items() if v.dtype != np.int64}
    n = len(ids)
    x = t["embeddings.word_embeddings.weight"][ids] + t["embeddings.position_embeddings.weight"][:n] \
        + t["embeddings.token_type_embeddings.weight"][0]
    x = layer_norm(x, t["embeddings.LayerNorm.weight"], t["embeddings.LayerNorm.bias"])
    layers = len({k.split(".")[2] for k in t if k.startswith("encoder.layer.")})
    d = x.shape[1]
    hd = d // heads
    for i in range(layers):
        p = f"encoder.layer.{i}."
        lin = lambda name, v: v @ t[p + name + ".weight"].T + t[p + name + ".bias"]
        q = lin("attention.self.query", x).view(n, heads, hd).transpose(0, 1)
        k = lin("attention.self.key", x).view(n, heads, hd).transpose(0, 1)
        v = lin("attention.self.value", x).view(n, heads, hd).transpose(0, 1)
        att = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(hd), dim=-1)
        ctx = (att @ v).transpose(0, 1).reshape(n, d)
        x = layer_norm(x + lin("attention.output.dense", ctx), t[p + "attention.output.LayerNorm.weight"],
                       t[p + "attention.output.LayerNorm.bias"])
        h = lin("intermediate.dense", x)
        h = 0.5 * h * (1 + torch.erf(h / math.sqrt(2)))
        x = layer_norm(x + lin("output.dense", h), t[p + "output.LayerNorm.weight"], t[p + "output.LayerNorm.bias"])
    pooled = x.mean(0) if pooling == "mean" else x[0]
    return (pooled / pooled.norm().clamp_min(1e-12)).tolist()


def write_hf(w, heads, out_dir):
    import os
    os.makedirs(out_dir, exist_ok=True)
    tensors = {k: v.astype(np.float32) for k, v in w.items() if v.dtype == np.float32}
    header, offset, blobs = {}, 0, []
    for name in sorted(tensors):
        data = np.ascontiguousarray(tensors[name]).tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(os.path.join(out_dir, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
    word = w["embeddings.word_embeddings.weight"]
    layers = len({k.split(".")[2] for k in w if k.startswith("encoder.layer.")})
    config = {"model_type": "bert", "vocab_size": word.shape[0], "hidden_size": word.shape[1],
              "num_hidden_layers": layers, "num_attention_heads": heads,
              "intermediate_size": w["encoder.layer.0.intermediate.dense.bias"].shape[0],
              "max_position_embeddings": w["embeddings.position_embeddings.weight"].shape[0],
              "type_vocab_size": w["embeddings.token_type_embeddings.weight"].shape[0],
              "layer_norm_eps": 1e-12, "hidden_act": "gelu"}
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f)


def main():
    model = onnx.load(sys.argv[1])
    w = weights(model)
    heads = int(sys.argv[6]) if len(sys.argv) > 6 else 12
    ids = json.load(open(sys.argv[2]))
    torch.set_num_threads(1)
    vectors = [encode(w, seq, heads, sys.argv[3]) for seq in ids]
    json.dump(vectors, open(sys.argv[4], "w"))
    if len(sys.argv) > 5 and sys.argv[5] != "-":
        write_hf(w, heads, sys.argv[5])


if __name__ == "__main__":
    main()
