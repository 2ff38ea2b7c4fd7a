#!/usr/bin/env python3
"""PyTorch reference for `valley bench train`: trains the same decoder, on the same data, with the
same optimizer as the `candle-sft` trainer plugin, and prints its training throughput.

`valley bench train` runs our trainer first, then this script with the `config.json` our trainer
saved (so the shape and the vocabulary are identical), the same JSONL records, batch, sequence
length, step counts and thread count. Run by hand:

    .venv-torch/bin/python benches/torch_train.py --config CKPT/config.json --data bench.jsonl \
        --batch 8 --seq 256 --steps 20 --warmup 1 --threads 2

What is the same as candle-sft with `packing = false, assistant_only = false, dtype = f32`:
- tokens: the byte tokenizer (ids 0-255 are bytes; `<|endoftext|>`, `<|im_start|>`, `<|im_end|>`,
  `<think>`, `</think>` are 256-260) over the ChatML text
  `<|im_start|>user\\n{problem}<|im_end|>\\n<|im_start|>assistant\\n{response}<|im_end|>\\n`;
  inputs are all ids but the last, targets all but the first, loss on every target;
- model: Llama/Qwen2 decoder from `config.json` (GQA, rotate-half RoPE, RMSNorm, SwiGLU, QKV bias
  for qwen2, tied embeddings when the config says so), float32;
- step: mean cross-entropy, backward, global gradient-norm clipping, AdamW (betas 0.9/0.95, eps
  1e-8, weight decay 0 as valley_lm's defaults), one optimizer step per batch, and valley_lm's
  `lr_at` schedule over all steps (linear warm-up over round(warmup_ratio * steps) steps, then
  cosine decay to min_lr_ratio * lr).

PyTorch runs eagerly (no torch.compile) with `F.scaled_dot_product_attention` (causal), its
fastest eager attention. The last line printed is one JSON object (tokens_per_s, seconds, ...).
"""

import argparse
import json
import math
import sys
import time

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"]


def encode(text):
    """valley_lm's ByteTokenizer: specials spelled out become their atomic ids (256 + k)."""
    data = text.encode("utf-8")
    ids, i = [], 0
    while i < len(data):
        if data[i] == ord("<"):
            for k, s in enumerate(SPECIALS):
                sb = s.encode()
                if data.startswith(sb, i):
                    ids.append(256 + k)
                    i += len(sb)
                    break
            else:
                ids.append(data[i])
                i += 1
        else:
            ids.append(data[i])
            i += 1
    return ids


def sequences(path, seq):
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            text = (
                f"<|im_start|>user\n{row['problem']}<|im_end|>\n<|im_start|>assistant\n"
                f"{row['response']}<|im_end|>\n"
            )
            ids = encode(text)
            if len(ids) != seq + 1:
                sys.exit(f"{path}:{n}: {len(ids)} tokens, the bench needs exactly {seq + 1}")
            out.append(ids)
    return out


def build(torch, cfg):
    nn = torch.nn
    F = torch.nn.functional
    h, heads = cfg["hidden_size"], cfg["num_attention_heads"]
    kv = cfg.get("num_key_value_heads") or heads
    d = h // heads
    eps = cfg.get("rms_norm_eps", 1e-6)
    bias = cfg.get("model_type", "qwen2") == "qwen2" or cfg.get("attention_bias", False)

    class RMSNorm(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(h))

        def forward(self, x):
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * self.weight

    def rotate_half(x):
        x1, x2 = x[..., : d // 2], x[..., d // 2 :]
        return torch.cat((-x2, x1), dim=-1)

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.input_layernorm = RMSNorm()
            self.q_proj = nn.Linear(h, heads * d, bias=bias)
            self.k_proj = nn.Linear(h, kv * d, bias=bias)
            self.v_proj = nn.Linear(h, kv * d, bias=bias)
            self.o_proj = nn.Linear(heads * d, h, bias=False)
            self.post_attention_layernorm = RMSNorm()
            self.gate_proj = nn.Linear(h, cfg["intermediate_size"], bias=False)
            self.up_proj = nn.Linear(h, cfg["intermediate_size"], bias=False)
            self.down_proj = nn.Linear(cfg["intermediate_size"], h, bias=False)

        def forward(self, x, cos, sin):
            b, t, _ = x.shape
            y = self.input_layernorm(x)
            q = self.q_proj(y).view(b, t, heads, d).transpose(1, 2)
            k = self.k_proj(y).view(b, t, kv, d).transpose(1, 2)
            v = self.v_proj(y).view(b, t, kv, d).transpose(1, 2)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            k = k.repeat_interleave(heads // kv, dim=1)
            v = v.repeat_interleave(heads // kv, dim=1)
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + self.o_proj(a.transpose(1, 2).reshape(b, t, h))
            y = self.post_attention_layernorm(x)
            return x + self.down_proj(F.silu(self.gate_proj(y)) * self.up_proj(y))

    class Decoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed_tokens = nn.Embedding(cfg["vocab_size"], h)
            self.layers = nn.ModuleList(Block() for _ in range(cfg["num_hidden_layers"]))
            self.norm = RMSNorm()
            self.lm_head = nn.Linear(h, cfg["vocab_size"], bias=False)
            if cfg.get("tie_word_embeddings", False):
                self.lm_head.weight = self.embed_tokens.weight
            inv = 1.0 / (cfg.get("rope_theta", 10000.0) ** (torch.arange(0, d, 2).float() / d))
            self.register_buffer("inv_freq", inv, persistent=False)

        def forward(self, ids):
            t = ids.shape[1]
            f = torch.outer(torch.arange(t, dtype=torch.float32, device=ids.device),
                            self.inv_freq.float())
            f = torch.cat((f, f), dim=-1)
            x = self.embed_tokens(ids)
            cos, sin = f.cos().to(x.dtype), f.sin().to(x.dtype)
            for layer in self.layers:
                x = layer(x, cos, sin)
            return self.lm_head(self.norm(x))

    model = Decoder()
    # valley_lm.init's scheme: normal(0, 0.02), residual outputs scaled by 1/sqrt(2 layers),
    # norms one, biases zero. (Only the loss column depends on it, not the speed.)
    with torch.no_grad():
        scale = 1.0 / math.sqrt(2 * cfg["num_hidden_layers"])
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.fill_(1.0)
            elif name.endswith(".bias"):
                p.zero_()
            else:
                std = 0.02 * (scale if name.endswith(("o_proj.weight", "down_proj.weight")) else 1.0)
                p.normal_(0.0, std)
    return model


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", required=True, help="config.json of the model (HF field names)")
    ap.add_argument("--data", required=True, help="JSONL records with problem and response")
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--seq", type=int, required=True)
    ap.add_argument("--steps", type=int, required=True, help="timed steps")
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup-ratio", type=float, default=0.1)
    ap.add_argument("--min-lr-ratio", type=float, default=0.1)
    ap.add_argument("--grad-clip", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    ap.add_argument("--dtype", default="f32", choices=["f32", "bf16"],
                    help="parameters and activations (bf16: the whole model in bfloat16, as "
                         "candle-sft's dtype = bf16)")
    args = ap.parse_args()

    try:
        import torch
    except ImportError as e:
        sys.exit(f"{sys.executable}: cannot import torch ({e}); install it in a venv: "
                 "python3 -m venv .venv-torch && .venv-torch/bin/pip install torch")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    with open(args.config, encoding="utf-8") as f:
        cfg = json.load(f)
    seqs = sequences(args.data, args.seq)
    total = args.warmup + args.steps
    if len(seqs) < total * args.batch:
        sys.exit(f"{args.data}: {len(seqs)} records, {total * args.batch} needed")
    device = torch.device(args.device)
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    model = build(torch, cfg).to(device=device, dtype=dtype)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), eps=1e-8,
                            weight_decay=0.0)
    warm = math.floor(args.warmup_ratio * total + 0.5)  # Rust's f64::round: half away from 0

    def lr_at(step):  # valley_lm::optim::lr_at, as a factor of the peak
        if warm > 0 and step < warm:
            return (step + 1) / warm
        progress = min((step - min(warm, step)) / max(total - warm, 1), 1.0)
        cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
        return args.min_lr_ratio + (1.0 - args.min_lr_ratio) * cosine

    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    F = torch.nn.functional
    loss_value = float("nan")
    started = cpu_started = None
    for step in range(total):
        if step == args.warmup:
            started, cpu_started = time.perf_counter(), time.process_time()
        rows = torch.tensor(seqs[step * args.batch:(step + 1) * args.batch], dtype=torch.long,
                            device=device)
        inputs, targets = rows[:, :-1], rows[:, 1:]
        logits = model(inputs)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if args.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        opt.step()
        schedule.step()
        loss_value = loss.item()  # waits for the step (on CUDA too)
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    tokens = args.steps * args.batch * args.seq
    print(json.dumps({
        "tokens_per_s": tokens / seconds,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "tokens": tokens,
        "steps": args.steps,
        "final_loss": loss_value,
        "threads": torch.get_num_threads(),
        "device": str(device),
        "dtype": args.dtype,
        "torch": torch.__version__,
        "parameters": sum(p.numel() for p in model.parameters()),
    }))


if __name__ == "__main__":
    main()
