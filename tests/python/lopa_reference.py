"""The LoPA training step in PyTorch: the paper's generator heads and compositions, a Llama decoder (llama2.c's
interleaved RoPE, GQA, RMSNorm, SwiGLU) frozen, LoRA on q/v, loss on target tokens only.

  python3 lopa_reference.py WEIGHTS.safetensors META.json golden   -> float64: loss and every gradient of the first batch
  python3 lopa_reference.py WEIGHTS.safetensors META.json bench N  -> float32, N threads: ms per AdamW step over the batches

Used by tests/LoPAProxy.Core.Tests (GoldenStepTests) and the benchmark `compare train`; both write the files.
"""
import sys, json, struct, time, torch

weights, meta_path, mode = sys.argv[1], sys.argv[2], sys.argv[3]
dtype = torch.float64 if mode == 'golden' else torch.float32
if mode == 'bench': torch.set_num_threads(int(sys.argv[4]))
raw = open(weights, 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]; header = json.loads(raw[8:8 + n]); data = raw[8 + n:]
T = {}
for k, v in header.items():
    if k == '__metadata__': continue
    b, e = v['data_offsets']
    T[k] = torch.frombuffer(bytearray(data[b:e]), dtype=torch.float32).to(dtype).reshape(v['shape'])
meta = json.load(open(meta_path))
c = meta['cfg']; method = meta['method']
D, NL, HQ, HKV, HD = c['dim'], c['layers'], c['heads'], c['kv_heads'], c['head_dim']
M, r, H, h = c['m'], c['r'], c['head_hidden'], c['h']
params = [T['param.%d' % i].clone().requires_grad_() for i in range(meta['n_params'])]
examples = meta['examples']

def head(x, i, out):
    dw, db, ow, ob = params[i:i + 4]
    return torch.tanh(x @ dw.view(H, h).T + db) @ ow.view(out, H).T + ob

def rms(t, w): return t * torch.rsqrt((t * t).mean(-1, keepdim=True) + c['eps']) * w

def rope(t, cos, sin):                 # t [B, L, heads, HD], llama2.c's interleaved pairs
    a, b = t[..., 0::2], t[..., 1::2]
    cc, ss = cos[None, :, None, :], sin[None, :, None, :]
    return torch.stack([a * cc - b * ss, a * ss + b * cc], -1).flatten(-2)

def loss_of(batch):
    B = len(batch); m = 0 if method == 'lora' else M
    if method == 'lora': Z = None
    elif method == 'prompt_tuning': Z = params[0].view(m, D).expand(B, m, D)
    else:
        x = T['x'][torch.tensor(batch)]
        if method == 'idpg': Z = head(x, 0, m * D).view(B, m, D)
        else:
            zs = params[0].view(m, D)
            u = head(x, 1, m * r).view(B, m, r); v = head(x, 5, D * r).view(B, D, r)
            zi = u @ v.transpose(1, 2)
            Z = zs * torch.sigmoid(zi) if method == 'lopa' else zs + zi
    emb = T['fm.emb']
    seqs = [examples[i] for i in batch]
    lengths = [m + len(s['ids']) for s in seqs]; L = max(lengths)
    X = torch.stack([torch.cat(([Z[bi]] if Z is not None else []) + [emb[torch.tensor(s['ids'])], torch.zeros(L - lengths[bi], D, dtype=dtype)], 0)
                     for bi, s in enumerate(seqs)])
    i_ = torch.arange(L)
    allowed = torch.stack([(i_[None, :] <= i_[:, None]) & (i_[None, :] < n) for n in lengths])   # causal and padding, [B, L, L]
    freq = 1.0 / (c['theta'] ** (2 * torch.arange(HD // 2, dtype=dtype) / HD))
    ang = i_[:, None].to(dtype) * freq[None, :]; cos, sin = torch.cos(ang), torch.sin(ang)
    lora_i = 0
    hs = X
    for l in range(NL):
        p = 'fm.l%d.' % l
        nx = rms(hs, T[p + 'attn_norm'])
        q, k, vv = nx @ T[p + 'wq'].T, nx @ T[p + 'wk'].T, nx @ T[p + 'wv'].T
        if method == 'lora':
            Aq, Bq, Av, Bv = params[lora_i:lora_i + 4]; lora_i += 4
            q = q + c['lora_scale'] * ((nx @ Aq.view(r, -1).T) @ Bq.view(-1, r).T)
            vv = vv + c['lora_scale'] * ((nx @ Av.view(r, -1).T) @ Bv.view(-1, r).T)
        q = rope(q.view(B, L, HQ, HD), cos, sin); k = rope(k.view(B, L, HKV, HD), cos, sin); vv = vv.view(B, L, HKV, HD)
        k = k.repeat_interleave(HQ // HKV, dim=2); vv = vv.repeat_interleave(HQ // HKV, dim=2)
        sc = torch.einsum('bihd,bjhd->bhij', q, k) / HD ** 0.5
        o = torch.einsum('bhij,bjhd->bihd', torch.softmax(sc.masked_fill(~allowed[:, None], float('-inf')), -1), vv).reshape(B, L, HQ * HD)
        hs = hs + o @ T[p + 'wo'].T
        f = rms(hs, T[p + 'ffn_norm'])
        hs = hs + (torch.nn.functional.silu(f @ T[p + 'w1'].T) * (f @ T[p + 'w3'].T)) @ T[p + 'w2'].T
    hf = rms(hs, T['fm.final_norm'])
    rows = [(bi, m + j - 1) for bi, s in enumerate(seqs) for j in range(s['prompt_len'], len(s['ids']))]
    targets = torch.tensor([s['ids'][j] for s in seqs for j in range(s['prompt_len'], len(s['ids']))])
    sel = hf[torch.tensor([a for a, _ in rows]), torch.tensor([b for _, b in rows])]       # only the rows the loss needs
    return torch.nn.functional.cross_entropy(sel @ T['fm.cls'].T, targets)

if mode == 'golden':
    loss = loss_of(meta['batches'][0]); loss.backward()
    print(json.dumps({'loss': loss.item(), 'grads': [p.grad.flatten().tolist() if p.grad is not None else None for p in params]}))
else:
    opt = torch.optim.AdamW(params, lr=1e-3)
    def step(batch):
        opt.zero_grad(set_to_none=True)
        loss = loss_of(batch); loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0); opt.step()
    for b in meta['batches'][:3]: step(b)                         # warm-up
    t0 = time.perf_counter()
    for b in meta['batches']: step(b)
    # VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss across exec from the (large) parent that forked us.
    hwm = next(int(l.split()[1]) * 1024 for l in open('/proc/self/status') if l.startswith('VmHWM:'))
    print(json.dumps({'ms_per_step': (time.perf_counter() - t0) * 1000 / len(meta['batches']), 'peak_rss_bytes': hwm}))
