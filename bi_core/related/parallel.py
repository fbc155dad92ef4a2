"""Independent jobs in worker processes, for the related studies (results never depend on the count)."""

from __future__ import annotations

from typing import Any


def map_jobs(fn: Any, jobs: list[dict[str, Any]], n_jobs: int, progress: bool, desc: str) -> list[Any]:
    """``[fn(j) for j in jobs]``, in ``n_jobs`` spawned processes when > 1 (order kept)."""
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(jobs), desc=desc, unit="run")
    results: list[Any] = [None] * len(jobs)
    if n_jobs <= 1 or len(jobs) <= 1:
        for i, j in enumerate(jobs):
            results[i] = fn(j)
            if bar:
                bar.update()
    else:
        import multiprocessing as mp
        import warnings
        from concurrent.futures import ProcessPoolExecutor, as_completed
        from concurrent.futures.process import BrokenProcessPool

        # spawn: forked children of a process that already ran torch kernels can deadlock
        try:
            with ProcessPoolExecutor(max_workers=min(n_jobs, len(jobs)), mp_context=mp.get_context("spawn")) as ex:
                futs = {ex.submit(fn, j): i for i, j in enumerate(jobs)}
                for f in as_completed(futs):
                    results[futs[f]] = f.result()
                    if bar:
                        bar.update()
        except BrokenProcessPool:
            # e.g. a script without `if __name__ == "__main__":` cannot spawn workers
            warnings.warn("worker processes could not start (a script calling this needs an "
                          "`if __name__ == '__main__':` guard); running the remaining jobs in this process.",
                          RuntimeWarning, stacklevel=3)
            for i, j in enumerate(jobs):
                if results[i] is None:
                    results[i] = fn(j)
                    if bar:
                        bar.update()
    if bar:
        bar.close()
    return results
