"""GPU feed check: train a small GPT fed by the shard loader; report GPU utilisation and tokens/s.

One command (``make gpu-feed``; needs torch with CUDA):

    python bench/gpu_feed.py [--shards DIR] [--steps 300] [--batch 16] [--seq-len 1024] [--workers 4]
    python bench/gpu_feed.py --dry-run          # CPU smoke test: tiny model, a few steps

The model is a GPT-2-small-shaped decoder (12 layers, d_model 768, 12 heads, tied embeddings:
~124M parameters with the GPT-2 vocabulary), bf16 autocast, AdamW, fed by
``consumers.shards.torch_loader.TorchShardLoader`` with pinned memory and worker processes. Without
``--shards`` a synthetic corpus of random GPT-2-sized token ids is sealed into shards first (the loader
cost does not depend on what the tokens are).

Reported: tokens/s, mean GPU utilisation sampled every 200 ms by NVML (``pynvml``) or ``nvidia-smi``,
and the share of step time the training loop spent waiting for the next batch. The platform SLA is
"data loading never holds GPU utilisation under 85 %": the data-wait share says whether the loader is
the cause when utilisation is low.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))


class UtilSampler:
    """Samples GPU utilisation (%) in a thread, via NVML or nvidia-smi."""

    def __init__(self, device: int = 0, period: float = 0.2) -> None:
        self.device, self.period = device, period
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.source = "none"

    def _read(self) -> float | None:
        try:
            import pynvml

            if self.source != "nvml":
                pynvml.nvmlInit()
                self._handle = pynvml.nvmlDeviceGetHandleByIndex(self.device)
                self.source = "nvml"
            return float(pynvml.nvmlDeviceGetUtilizationRates(self._handle).gpu)
        except Exception:
            pass
        try:
            out = subprocess.run(
                ["nvidia-smi", f"--id={self.device}", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                capture_output=True,
                text=True,
                timeout=5,
                check=True,
            ).stdout
            self.source = "nvidia-smi"
            return float(out.strip().splitlines()[0])
        except (OSError, subprocess.SubprocessError, ValueError, IndexError):
            return None

    def _run(self) -> None:
        while not self._stop.is_set():
            v = self._read()
            if v is not None:
                self.samples.append(v)
            self._stop.wait(self.period)

    def __enter__(self) -> UtilSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def build_model(torch, vocab: int, seq_len: int, n_layer: int, d_model: int, n_head: int):  # type: ignore[no-untyped-def]
    nn, F = torch.nn, torch.nn.functional

    class Block(nn.Module):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
            self.qkv = nn.Linear(d_model, 3 * d_model)
            self.proj = nn.Linear(d_model, d_model)
            self.mlp = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model))

        def forward(self, x):  # type: ignore[no-untyped-def]
            b, t, c = x.shape
            q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, n_head, c // n_head).permute(2, 0, 3, 1, 4)
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, t, c)
            x = x + self.proj(y)
            return x + self.mlp(self.ln2(x))

    class GPT(nn.Module):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.tok = nn.Embedding(vocab, d_model)
            self.pos = nn.Embedding(seq_len, d_model)
            self.blocks = nn.ModuleList(Block() for _ in range(n_layer))
            self.ln = nn.LayerNorm(d_model)
            for emb in (self.tok, self.pos):
                nn.init.normal_(emb.weight, std=0.02)  # GPT-2 init; N(0, 1) would blow up the tied logits

        def forward(self, idx, labels):  # type: ignore[no-untyped-def]
            x = self.tok(idx) + self.pos(torch.arange(idx.shape[1], device=idx.device))
            for blk in self.blocks:
                x = blk(x)
            logits = self.ln(x) @ self.tok.weight.T  # tied embeddings
            return F.cross_entropy(logits.float().view(-1, vocab), labels.reshape(-1))

    return GPT()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shards", type=Path)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=20, help="steps excluded from the figures")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq-len", type=int, default=1024)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--d-model", type=int, default=768)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--dry-run", action="store_true", help="CPU, tiny model, a few steps (smoke test)")
    ap.add_argument("--json", type=Path, help="write the figures here as JSON")
    args = ap.parse_args()
    try:
        import torch
    except ImportError:
        raise SystemExit(
            "gpu_feed needs torch: pip install 'headrace[torch]' (a CUDA build for the real run)"
        ) from None
    from loader_bench import INFO, build_corpus

    from consumers.shards.loader import LoaderConfig
    from consumers.shards.torch_loader import TorchShardLoader

    if args.dry_run:
        args.steps, args.warmup, args.batch, args.seq_len = min(args.steps, 6), 1, 2, 64
        args.layers, args.d_model, args.heads, args.workers = 2, 64, 2, 1
    device = "cuda" if torch.cuda.is_available() and not args.dry_run else "cpu"
    if device == "cpu" and not args.dry_run:
        raise SystemExit("no CUDA device: use --dry-run for the CPU smoke test")
    tmp: Path | None = None
    shards = args.shards
    if shards is None:
        tmp = Path(tempfile.mkdtemp(prefix="headrace-gpu-feed-"))
        shards = tmp / "shards"
        need = (args.steps + 2) * args.batch * args.seq_len + args.seq_len
        build_corpus(shards, need, n_shards=4)
    loader = TorchShardLoader(
        shards, LoaderConfig(seq_len=args.seq_len, batch_size=args.batch, seed=0), num_workers=args.workers
    )
    model = build_model(torch, INFO.vocab_size, args.seq_len, args.layers, args.d_model, args.heads).to(device)
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, fused=device == "cuda")
    amp = torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=device == "cuda")
    waits: list[float] = []
    steps: list[float] = []
    losses: list[float] = []
    done = 0
    with UtilSampler() as util:
        util_start = 0
        t_prev = time.perf_counter()
        while done < args.steps:
            it = iter(loader)
            while done < args.steps:
                t0 = time.perf_counter()
                try:
                    batch = next(it)
                except StopIteration:
                    break
                x = batch["input_ids"].to(device, non_blocking=True)
                y = batch["labels"].to(device, non_blocking=True)
                t1 = time.perf_counter()
                with amp:
                    loss = model(x, y)
                loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
                if device == "cuda":
                    torch.cuda.synchronize()
                now = time.perf_counter()
                done += 1
                if done == args.warmup:
                    util_start = len(util.samples)
                if done > args.warmup:
                    waits.append(t1 - t0)
                    steps.append(now - t_prev)
                    losses.append(float(loss.detach()))
                t_prev = now
        util_samples = util.samples[util_start:]
    tokens = len(steps) * args.batch * args.seq_len
    result = {
        "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu (dry run)",
        "torch": torch.__version__,
        "params_millions": round(params / 1e6, 1),
        "steps_measured": len(steps),
        "batch": args.batch,
        "seq_len": args.seq_len,
        "loader_workers": args.workers,
        "tokens_per_s": round(tokens / sum(steps), 1) if steps else 0.0,
        "data_wait_share": round(sum(waits) / sum(steps), 4) if steps else 0.0,
        "gpu_util_mean": round(statistics.fmean(util_samples), 1) if util_samples else None,
        "gpu_util_p10": round(sorted(util_samples)[len(util_samples) // 10], 1) if util_samples else None,
        "util_source": util.source,
        "loss_first_last": [round(losses[0], 3), round(losses[-1], 3)] if losses else None,
    }
    if losses and not all(math.isfinite(v) for v in losses):
        raise SystemExit(f"non-finite loss: {losses[:5]}")
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    if tmp is not None:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
