"""Wall time of the whole analysis suite (``bi-core analyze``) on the default synthetic cohort.

Target (issue 4): under 3 minutes on a 2-core CPU for the default cohort with the default
pretraining. Uses the artifacts of ``make book`` when they exist (``artifacts/default``),
otherwise synthesizes the cohort and pretrains first (not timed).

Usage::

    python bench/bench_analysis.py [--artifacts artifacts/default] [--repeats 5] [--json out.json]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--artifacts", default="artifacts/default", help="bi-core reproduce artifact directory")
    ap.add_argument("--repeats", type=int, default=3, help="CV repeats (the book's default: 3)")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes for the CV folds (the book's: 2)")
    ap.add_argument("--occlusion-windows", type=int, default=3,
                    help="windows per recording for occlusion (the book's: 3; 0 = all)")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--json", help="also write the timings here")
    args = ap.parse_args()

    import torch

    from bi_core.analysis.classify import CVConfig
    from bi_core.analysis.suite import run_suite
    from bi_core.reproduce import environment_info

    art = Path(args.artifacts)
    synth, run = art / "synth", art / "runs" / "pretrain"
    if not (run / "best.pt").is_file():
        from bi_core.synth import generate
        from bi_core.runs import preset
        from bi_core.train import pretrain

        print("no default artifacts: synthesizing and pretraining first (not timed)")
        if not (synth / "eval").is_dir():
            generate(synth, "default", seed=0, progress=True)
        pretrain([synth / "pretrain"], preset("default"), run, device="cpu")
    out = Path(tempfile.mkdtemp(prefix="bench-analysis-"))
    t0 = time.perf_counter()
    cv = CVConfig(n_splits=args.folds, n_repeats=args.repeats, n_jobs=args.jobs, backend="loky")
    summary = run_suite(run, synth / "eval", out, cv, ground_truth=synth / "ground_truth.json",
                        occlusion_windows=args.occlusion_windows or None)
    total = time.perf_counter() - t0
    env = environment_info()
    print(f"machine: {env['processor']} ({env['cpu_count']} logical CPUs), torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {platform.python_version()}")
    print("| stage | seconds |\n|---|---|")
    for k, v in summary["timings"].items():
        print(f"| {k} | {v:.1f} |")
    print(f"| **total** | **{total:.1f}** |")
    if args.json:
        Path(args.json).write_text(json.dumps({"timings": summary["timings"], "total": total, "environment": env},
                                              indent=2))


if __name__ == "__main__":
    main()
