"""What a step's process costs before it does any work: a fresh interpreter against a fork of the launcher.

``bi-core reproduce`` used to start every step as ``python -m bi_core.book.run_step``; it now forks
them from one launcher that imported the heavy libraries once (:mod:`bi_core.book.zygote`). This
benchmark runs ``--steps`` empty steps that import what the analysis steps import (torch,
scikit-learn, statsmodels, pandas, matplotlib) both ways, one after another, and reports wall
time and CPU (user + sys of every process involved, from ``getrusage``)::

    python bench/bench_launcher.py --steps 8

Both ways run in this one call, so their ratio holds even when the machine's speed varies.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = """import types
from bi_core.steps import Step


def _imports(ctx):
    import matplotlib.pyplot, pandas, sklearn.linear_model, sklearn.model_selection, statsmodels.api, torch  # noqa


CHAPTER = types.SimpleNamespace(steps=(Step("imports", _imports, lambda c: c.out),))
"""


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=8, help="empty steps run each way [default: 8]")
    a = ap.parse_args()
    from bi_core.book.zygote import Launcher

    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "bench_chapter.py").write_text(CHAPTER)
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([tmp, str(ROOT)])}
        spec = json.dumps({"module": "bench_chapter", "preset": "smoke", "out": str(Path(tmp, "art")),
                           "book_out": tmp, "seed": 0, "quiet": True})
        argv = ["--step", "imports", "--spec", spec]
        rows = {}
        t0, c0 = time.perf_counter(), _cpu()
        for _ in range(a.steps):
            subprocess.run([sys.executable, "-m", "bi_core.book.run_step", *argv], env=env, check=True)
        rows["fresh interpreter per step"] = (time.perf_counter() - t0, _cpu() - c0)
        t0, c0 = time.perf_counter(), _cpu()
        launcher = Launcher(env)
        for i in range(a.steps):
            task = launcher.run(str(i), argv, None)
            while task.poll() is None:
                time.sleep(0.01)
            assert task.poll() == 0, f"step {i} failed"
        launcher.close()
        rows["forked from the launcher"] = (time.perf_counter() - t0, _cpu() - c0)
    print(f"{a.steps} empty steps importing torch, scikit-learn, statsmodels, pandas and matplotlib "
          f"({os.cpu_count()} cores)")
    for name, (wall, cpu) in rows.items():
        print(f"  {name:<28} wall {wall:6.2f} s ({wall / a.steps:.2f} s a step)  CPU {cpu:6.2f} s")


if __name__ == "__main__":
    main()
