"""DistributedDataParallel: 2 CPU processes (gloo, torchrun) equal 1 process with the same global batch."""

import json
import os
import subprocess
import sys
from dataclasses import replace

import pytest
import torch

from bi_core.config import dump_config
from bi_core.masking import MaskConfig
from bi_core.runs import preset
from bi_core.train import pretrain


@pytest.mark.slow
def test_two_processes_equal_one(smoke_dir, tmp_path):
    # the hardest case for the global loss normalization: per-sample (padded) masks, so the ranks'
    # shards hold different numbers of masked tokens, and 3 mask groups of 2 windows for 2 ranks,
    # so the middle group straddles the ranks (each rank runs 2 micro-batches, one without sync)
    cfg = replace(preset("smoke"), batch_size=6, mask_groups=3, epochs=2,
                  mask=MaskConfig("network", p_two=0.5, per_sample=True))
    cohort = smoke_dir / "pretrain"
    dump_config(cfg, tmp_path / "cfg.yaml")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "bi_core",
           "pretrain", "--cohort", str(cohort), "--config", str(tmp_path / "cfg.yaml"), "--out", str(tmp_path / "ddp"),
           "--cache-dir", str(tmp_path / "cache"), "--device", "cpu", "--quiet"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert r.stdout.count("pretrained") == 1  # only rank 0 reports
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        single = pretrain([cohort], cfg, tmp_path / "single", progress=False, cache_dir=tmp_path / "cache")
    finally:
        torch.set_num_threads(n)
    ddp = json.loads((tmp_path / "ddp" / "summary.json").read_text())
    assert ddp["world_size"] == 2 and single["world_size"] == 1 and ddp["steps"] == single["steps"] == 4
    assert ddp["config_hash"] == single["config_hash"]
    a = torch.load(tmp_path / "ddp" / "checkpoint.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "single" / "checkpoint.pt", weights_only=True)["model"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5, msg=k)
    assert ddp["val_loss"] == pytest.approx(single["val_loss"], rel=1e-4)
