"""Training throughput of BrainInterNet vs the same-size model written the plain way.

For each size (tiny, small, base, paper) it measures, on the CPU (fp32) and on CUDA when
available (bf16 autocast):

- tokens/s (window tokens, ``n_rois * n_patches`` per window) and windows/s of full
  training steps (forward, backward, AdamW);
- peak memory (CPU: peak RSS of a fresh process per case minus its RSS after importing
  torch, i.e. weights + optimizer + activations; CUDA: ``max_memory_allocated``);
- model FLOPs utilization: FLOPs per step counted analytically (nanoGPT's
  ``estimate_mfu`` convention: 2 per multiply-add, backward = 2 × forward) divided by
  the measured peak of a large matmul on the same device at the start of the same run
  (best of 7 timings; fp32 on CPU, bf16 on CUDA);
- the same numbers for the **reference**: the same sizes written the plain way — stock
  ``torch.nn.TransformerEncoder`` layers (pre-LN, GELU) over *all* tokens with a learned
  mask token in place of the masked patches (BrainLM/BERT style), then a stock
  ``TransformerEncoder`` decoder of the decoder's width and depth over all tokens, fp32 —
  and the speed ratio BrainInterNet / reference.

It also times shared (no padding, the default) against per-sample padded network masks
(``--padding``), and can time the book's whole pretraining run (``--book-run``).

Usage::

    python bench/bench_train.py                       # CPU (+ CUDA if visible), all sizes
    python bench/bench_train.py --sizes tiny small    # a subset
    python bench/bench_train.py --device cuda         # GPU rows only
    python bench/bench_train.py --padding --book-run  # + the padding and book measurements

Each case runs in a fresh subprocess so its peak memory is its own.
"""

from __future__ import annotations

import os

# Spinning OpenMP workers waste whole time slices on shared CPUs (2-core runners with
# other jobs); passive waiting keeps the timings meaningful there. Set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

#: size → (cortical ROIs, subcortical ROIs, window T, CPU batch, CPU steps, CUDA batch, CUDA steps)
CASES = {
    "tiny": (24, 2, 64, 32, 20, 256, 50),
    "small": (50, 4, 64, 16, 20, 256, 50),
    "base": (400, 32, 128, 2, 3, 64, 30),
    "paper": (400, 32, 128, 1, 2, 16, 20),
}


# ---------------------------------------------------------------------- reference model
def reference_model(cfg):
    """The same sizes written the plain way (stock TransformerEncoder over all tokens)."""
    import torch
    import torch.nn as nn

    from bi_core.model import sincos_1d

    class Plain(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            d, dd, P = cfg.d_model, cfg.dec_dim, cfg.patch_size
            self.patch_embed = nn.Linear(P, d)
            self.mask_token = nn.Parameter(torch.zeros(d))
            self.roi_embed = nn.Embedding(cfg.n_rois, d)
            self.net_embed = nn.Embedding(cfg.n_networks, d)
            self.register_buffer("roi_network", torch.tensor(cfg.roi_networks))
            self.register_buffer("time", sincos_1d(cfg.n_patches, d))
            layer = nn.TransformerEncoderLayer(d, cfg.n_heads, int(cfg.mlp_ratio * d), 0.0, "gelu",
                                               batch_first=True, norm_first=True)
            self.encoder = nn.TransformerEncoder(layer, cfg.depth, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(d)
            self.decoder_embed = nn.Linear(d, dd)
            dlayer = nn.TransformerEncoderLayer(dd, cfg.dec_heads, int(cfg.mlp_ratio * dd), 0.0, "gelu",
                                                batch_first=True, norm_first=True)
            self.decoder = nn.TransformerEncoder(dlayer, cfg.dec_depth, enable_nested_tensor=False)
            self.decoder_norm = nn.LayerNorm(dd)
            self.head = nn.Linear(dd, P)

        def forward(self, x, masked_bool):
            B, R, T = x.shape
            P = cfg.patch_size
            tok = x.reshape(B, R, T // P, P).reshape(B, -1, P)                     # [B, L, P]
            h = self.patch_embed(tok)
            h = torch.where(masked_bool[..., None], self.mask_token.expand_as(h), h)
            pos = (self.roi_embed.weight + self.net_embed(self.roi_network))[:, None, :] + self.time[None]
            h = self.norm(self.encoder(h + pos.reshape(-1, h.shape[-1])))
            pred = self.head(self.decoder_norm(self.decoder(self.decoder_embed(h))))  # [B, L, P]
            err = (pred - tok).pow(2).mean(-1)
            return (err * masked_bool).sum() / masked_bool.sum()

    return Plain()


def reference_flops(cfg, n_tokens: int) -> float:
    """Training FLOPs of one window through :func:`reference_model` (same convention as the model)."""
    d, dd, P, r, L = cfg.d_model, cfg.dec_dim, cfg.patch_size, cfg.mlp_ratio, n_tokens
    enc = L * P * d + cfg.depth * (L * (4 + 2 * r) * d * d + 2 * L * L * d)
    dec = L * d * dd + cfg.dec_depth * (L * (4 + 2 * r) * dd * dd + 2 * L * L * dd) + L * dd * P
    return 3 * 2 * float(enc + dec)


# ---------------------------------------------------------------------- one measurement
def peak_matmul_flops(device: str, trials: int = 7) -> float:
    """Measured FLOP/s of a large square matmul (fp32 on CPU, bf16 on CUDA): the best of
    ``trials`` timings, so a busy moment on a shared machine does not lower the peak."""
    import torch

    if device == "cuda":
        n, dtype, reps = 8192, torch.bfloat16, 20
    else:
        n, dtype, reps = 2048, torch.float32, 3
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    best = 0.0
    for _ in range(trials):
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(reps):
            a @ b
        if device == "cuda":
            torch.cuda.synchronize()
        best = max(best, 2 * n**3 * reps / (time.perf_counter() - t))
    return best


def measure(size: str, impl: str, device: str, masks: str = "shared", batch: int | None = None,
            steps: int | None = None) -> dict:
    """Time ``steps`` training steps (after 1–2 warm-up steps) of one case in this process."""
    import torch

    from bi_core.masking import MaskConfig, MaskSampler
    from bi_core.model import BrainInterNet, ModelConfig
    from bi_core.synth import synthetic_atlas

    idle_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # interpreter + torch, before the model
    n_cort, n_sub, T, b_cpu, s_cpu, b_gpu, s_gpu = CASES[size]
    B = batch or (b_gpu if device == "cuda" else b_cpu)
    n_steps = steps or (s_gpu if device == "cuda" else s_cpu)
    atlas = synthetic_atlas(n_cort, n_sub)
    cfg = ModelConfig.from_atlas(atlas, size, window=T)
    torch.manual_seed(0)
    model = (BrainInterNet(cfg) if impl == "braininternet" else reference_model(cfg)).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device == "cuda")
    sampler = MaskSampler(_layout(cfg), MaskConfig("network", per_sample=masks == "per_sample"))
    rng = np.random.default_rng(0)
    x = torch.randn(B, cfg.n_rois, T, device=device)
    L = cfg.n_rois * cfg.n_patches
    # BrainInterNet as trained (bf16 autocast on CUDA); the reference stays fp32 everywhere
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if device == "cuda" and impl == "braininternet" else None
    flops = 0.0

    groups = int(masks[len("groups"):]) if masks.startswith("groups") else 1
    if B % groups:
        raise SystemExit(f"batch {B} is not divisible into {groups} mask groups")

    def step() -> float:
        opt.zero_grad(set_to_none=True)
        fl = 0.0
        for g in range(groups):  # `groupsK`: K mask draws per batch, one micro-batch each (as mask_groups)
            xg = x[g * (B // groups): (g + 1) * (B // groups)]
            mask = sampler.sample(len(xg), rng).to(device)
            with amp if amp is not None else contextlib.nullcontext():
                if impl == "braininternet":
                    loss = model(xg, mask).loss
                    # padded slots are real compute: count them (the padding overhead shows as lower MFU)
                    fl += len(xg) * model.flops_per_window(mask.visible.shape[1], mask.masked.shape[1])
                else:
                    loss = model(xg, mask.token_state(L).to(device) == 1)
                    fl += len(xg) * reference_flops(cfg, L)
            (loss / groups).backward()
        opt.step()
        return fl

    for _ in range(1 if device == "cpu" and size in ("base", "paper") else 2):  # warm-up
        step()
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    for _ in range(n_steps):
        flops += step()
    if device == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t
    mem = (torch.cuda.max_memory_allocated() if device == "cuda"
           else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - idle_rss)
    n_params = sum(p.numel() for p in model.parameters())
    return {"size": size, "impl": impl, "device": device, "masks": masks, "batch": B, "steps": n_steps,
            "n_rois": cfg.n_rois, "window": T, "tokens_per_window": L, "params": n_params,
            "step_s": dt / n_steps, "windows_per_s": B * n_steps / dt, "tokens_per_s": B * n_steps * L / dt,
            "achieved_flops": flops / dt, "peak_mem_bytes": mem,
            "threads": torch.get_num_threads()}


def _layout(cfg):
    from bi_core.masking import TokenLayout

    return TokenLayout(cfg.roi_networks, cfg.n_patches, network_names=cfg.network_names)


def run_case(size: str, impl: str, device: str, masks: str = "shared", batch: int = 0) -> dict:
    """One case in a fresh subprocess (own peak memory, no allocator state carried over)."""
    cmd = [sys.executable, __file__, "--one", size, impl, device, masks, str(batch)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------- book run
def book_run() -> dict:
    """Wall time and losses of `bi-core pretrain --preset default` on the default synthetic cohort."""
    with tempfile.TemporaryDirectory() as tmp:
        exe = [sys.executable, "-m", "bi_core"]
        subprocess.run(exe + ["synth", "--preset", "default", "--out", f"{tmp}/synth", "--quiet"], check=True)
        t = time.perf_counter()
        subprocess.run(exe + ["pretrain", "--cohort", f"{tmp}/synth/pretrain", "--preset", "default", "--out",
                              f"{tmp}/run", "--quiet", "--device", "cpu"], check=True)
        wall = time.perf_counter() - t
        s = json.loads(Path(f"{tmp}/run/summary.json").read_text())
    return {"wall_s_cli": wall, **{k: s[k] for k in ("wall_time_s", "train_time_s", "epochs_run", "best_epoch",
                                                      "val_loss", "val_zero_loss", "val_loss_ratio", "tokens_per_s",
                                                      "n_params", "steps")}}


# ---------------------------------------------------------------------- report
def _fmt_mem(b: float) -> str:
    return f"{b / 2**20:,.0f} MiB" if b < 2**30 else f"{b / 2**30:.2f} GiB"


def machine() -> str:
    import torch

    cpu = platform.processor() or "cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    desc = f"{cpu}, {os.cpu_count()} logical CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads"
    if torch.cuda.is_available():
        desc += f"; GPU {torch.cuda.get_device_name()}"
    return desc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="+", default=list(CASES), choices=list(CASES))
    ap.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                    help="auto: CPU, plus CUDA when available")
    ap.add_argument("--padding", action="store_true", help="also time shared vs grouped vs per-sample padded masks")
    ap.add_argument("--no-throughput", action="store_true", help="skip the throughput table")
    ap.add_argument("--book-run", action="store_true", help="also time `bi-core pretrain --preset default`")
    ap.add_argument("--json", metavar="FILE", help="write all results as JSON")
    ap.add_argument("--one", nargs=5, metavar=("SIZE", "IMPL", "DEVICE", "MASKS", "BATCH"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        size, impl, dev, masks, batch = args.one
        print(json.dumps(measure(size, impl, dev, masks, int(batch) or None)))
        return
    import torch

    devices = ["cpu", "cuda"] if args.device == "auto" and torch.cuda.is_available() else \
        (["cpu"] if args.device == "auto" else [args.device])
    print(f"machine: {machine()}")
    rows, results = [], {"machine": machine(), "throughput": [], "padding": [], "book_run": None}
    print("| device | size | ROIs x T | params | batch | BrainInterNet tokens/s | windows/s | MFU | peak mem "
          "| reference tokens/s | ref MFU | ref peak mem | speed-up |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for dev in devices if not args.no_throughput else []:
        peak = peak_matmul_flops(dev)  # the MFU denominator, measured once per device in this run
        print(f"| {dev} | peak matmul {'bf16' if dev == 'cuda' else 'fp32'}: {peak / 1e9:,.1f} GFLOP/s |||||||||||")
        results.setdefault("peak_flops", {})[dev] = peak
        for size in args.sizes:
            ours = run_case(size, "braininternet", dev)
            ref = run_case(size, "reference", dev)
            for r in (ours, ref):
                r["peak_flops"], r["mfu"] = peak, r["achieved_flops"] / peak
            results["throughput"] += [ours, ref]
            row = (f"| {dev} | {size} | {ours['n_rois']} x {ours['window']} | {ours['params'] / 1e6:.2f} M "
                   f"| {ours['batch']} | {ours['tokens_per_s']:,.0f} | {ours['windows_per_s']:.2f} "
                   f"| {ours['mfu']:.1%} | {_fmt_mem(ours['peak_mem_bytes'])} | {ref['tokens_per_s']:,.0f} "
                   f"| {ref['mfu']:.1%} | {_fmt_mem(ref['peak_mem_bytes'])} "
                   f"| {ours['tokens_per_s'] / ref['tokens_per_s']:.2f}x |")
            rows.append(row)
            print(row, flush=True)
    if args.padding:
        print("\n| device | size | batch | masks | step (ms) | windows/s | relative |")
        print("|---|---|---|---|---|---|---|")
        for dev in devices:
            for size in [s for s in args.sizes if s in ("tiny", "small", "base")]:
                # at least 4 windows per batch so that 4 mask groups are possible
                b = max(4, CASES[size][3 if dev == "cpu" else 5])
                runs = [run_case(size, "braininternet", dev, m, b) for m in ("shared", "groups4", "per_sample")]
                results["padding"] += runs
                shared = runs[0]
                for r in runs:
                    print(f"| {dev} | {size} | {r['batch']} | {r['masks']} | {r['step_s'] * 1e3:.1f} | {r['windows_per_s']:.1f} "
                          f"| {r['windows_per_s'] / shared['windows_per_s']:.2f} |", flush=True)
    if args.book_run:
        b = book_run()
        results["book_run"] = b
        print(f"\nbook run (bi-core pretrain --preset default, default synthetic cohort): {b['wall_s_cli']:.1f} s wall "
              f"(CLI incl. start-up), {b['epochs_run']} epochs, held-out loss {b['val_loss']:.4f} vs predict-zero "
              f"{b['val_zero_loss']:.4f} (ratio {b['val_loss_ratio']:.3f})")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
