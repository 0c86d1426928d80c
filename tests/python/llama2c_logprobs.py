"""A llama2.c checkpoint's next-token log-probabilities in PyTorch (float64), written from run.c's forward pass:
RMSNorm (eps 1e-5), interleaved RoPE (theta 10,000), grouped-query attention, SwiGLU, tied or separate classifier.

  python3 llama2c_logprobs.py MODEL.bin TOKENIZER.bin IDS STEPS

IDS is the prompt (comma-separated ids, BOS first). From it, STEPS greedy steps; each prints one JSON line: the
greedy token's bytes (hex) and [bytes (hex), log-probability] of every token (run.c's piece, byte tokens as the byte,
<unk>/<s>/</s> by name; two tokens can have the same bytes).
Used by tests/LoPAProxy.ModelServer.Tests (LogprobsTests) as the reference for the server's logprobs.
"""
import sys, json, struct, torch

model_path, tokenizer_path, ids_text, steps = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
raw = open(model_path, 'rb').read()
dim, hidden, layers, heads, kv_heads, vocab, seq_len = struct.unpack('<7i', raw[:28])
shared = vocab > 0
vocab = abs(vocab)
head_size = dim // heads
kv_dim = kv_heads * head_size
floats = torch.frombuffer(bytearray(raw[28:]), dtype=torch.float32).to(torch.float64)
at = 0
def take(*shape):
    global at
    n = 1
    for s in shape: n *= s
    t = floats[at:at + n].reshape(shape)
    at += n
    return t
emb = take(vocab, dim)
rms_att = take(layers, dim); wq = take(layers, dim, dim); wk = take(layers, kv_dim, dim); wv = take(layers, kv_dim, dim)
wo = take(layers, dim, dim); rms_ffn = take(layers, dim)
w1 = take(layers, hidden, dim); w2 = take(layers, dim, hidden); w3 = take(layers, hidden, dim)
rms_final = take(dim)
take(seq_len * head_size // 2); take(seq_len * head_size // 2)   # freq_cis_real, freq_cis_imag (unused by run.c)
wcls = emb if shared else take(vocab, dim)

pieces = []
with open(tokenizer_path, 'rb') as f:
    f.read(4)                                                       # max_token_length
    for i in range(vocab):
        f.read(4)                                                   # score
        n = struct.unpack('<i', f.read(4))[0]
        piece = f.read(n)
        if piece.startswith(b'<0x') and piece.endswith(b'>') and len(piece) == 6: piece = bytes([int(piece[3:5], 16)])
        pieces.append(piece)
for i, name in enumerate([b'<unk>', b'<s>', b'</s>']): pieces[i] = name

def rms(x, w): return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + 1e-5) * w

def rope(t, positions):                                             # t [L, n, head_size], run.c's interleaved pairs
    i = torch.arange(0, head_size, 2, dtype=torch.float64)
    angle = positions[:, None].to(torch.float64) * (1.0 / (10000.0 ** (i / head_size)))[None, :]
    cos, sin = torch.cos(angle)[:, None, :], torch.sin(angle)[:, None, :]
    a, b = t[..., 0::2], t[..., 1::2]
    return torch.stack([a * cos - b * sin, a * sin + b * cos], -1).flatten(-2)

def next_logprobs(ids):                                            # the whole sequence again each step: small model
    L = len(ids)
    x = emb[torch.tensor(ids)]
    pos = torch.arange(L)
    mask = torch.full((L, L), float('-inf'), dtype=torch.float64).triu(1)
    for l in range(layers):
        h = rms(x, rms_att[l])
        q = rope((h @ wq[l].T).view(L, heads, head_size), pos)
        k = rope((h @ wk[l].T).view(L, kv_heads, head_size), pos).repeat_interleave(heads // kv_heads, 1)
        v = (h @ wv[l].T).view(L, kv_heads, head_size).repeat_interleave(heads // kv_heads, 1)
        att = torch.einsum('qhd,khd->hqk', q, k) / head_size ** 0.5 + mask
        out = torch.einsum('hqk,khd->qhd', torch.softmax(att, -1), v).reshape(L, dim)
        x = x + out @ wo[l].T
        h = rms(x, rms_ffn[l])
        x = x + (torch.nn.functional.silu(h @ w1[l].T) * (h @ w3[l].T)) @ w2[l].T
    logits = rms(x[-1], rms_final) @ wcls.T
    return torch.log_softmax(logits, -1)

ids = [int(t) for t in ids_text.split(',')]
for _ in range(steps):
    lp = next_logprobs(ids)
    print(json.dumps({'greedy': pieces[int(lp.argmax())].hex(),
                      'logprobs': [[pieces[t].hex(), lp[t].item()] for t in range(vocab)]}))
    ids.append(int(lp.argmax()))
