"""``python -m bi_core.book.zygote FD``: the step launcher of ``bi-core reproduce``, which forks every step's process.

At smoke size most of a step's time was its interpreter's start and imports (torch,
scikit-learn, statsmodels, pandas: 4–7 s a process, about a minute of a smoke build). This
process imports those libraries once (:data:`PRELOAD`) and then, for each step the scheduler
asks for, forks a child that runs :func:`bi_core.book.run_step.main` exactly as a fresh
``python -m bi_core.book.run_step`` would.

Why the stamps stay exact: this process imports no ``bi_core`` module but the package's
``__init__`` and ``bi_core.book``'s (both light; this module runs as ``__main__``, which
:func:`bi_core.provenance.loaded_sources` does not list), so a child's stamp still lists the
``bi_core`` sources its step loaded, and nothing else. Why the numbers stay the same: the
child has the thread settings a fresh process gets (the scheduler starts this process with
``OMP_NUM_THREADS=1`` and the rest), sets its torch threads itself (``run_step``), and every
random step takes a seed. Nothing here runs torch or a BLAS call before forking: a fork
after a library started worker threads could deadlock.

Protocol (one JSON object a line): requests on stdin, ``{"id": str, "argv": [...], "log":
path or null}`` to run a step (``log``: its stdout and stderr go there, else to this
process's) or ``{"kill": id}``; results on file descriptor ``FD``, ``{"id": str, "rc":
int}`` when a child exits. At end of input it waits for its children and exits.
"""

from __future__ import annotations

import importlib
import ctypes
import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

# In-function imports: the child imports bi_core.book.run_step after the fork, so that this process (and every
# child's stamp) holds no bi_core module the step did not load.

#: Imported once here, shared by every child (copy-on-write): what a step process spent most of its start on.
PRELOAD = ("numpy", "scipy.linalg", "scipy.stats", "pandas", "torch", "sklearn.linear_model",
           "sklearn.model_selection", "statsmodels.api", "statsmodels.formula.api", "matplotlib.pyplot")


def preload(modules: tuple[str, ...] = PRELOAD) -> None:
    """Import ``modules``; one that is missing or fails is left to the child that needs it (it will raise there)."""
    for m in modules:
        try:
            importlib.import_module(m)
        except Exception:   # noqa: BLE001 - a broken optional import must fail in the step that uses it, not here
            pass


def _child(req: dict[str, Any], close: tuple[int, ...]) -> None:
    """The forked step process: redirect its output, run the step, exit with its code (never returns)."""
    rc = 1
    try:
        for fd in close:
            os.close(fd)
        _die_with_parent()
        signal.signal(signal.SIGINT, signal.default_int_handler)   # Ctrl-C stops a step as it stops a fresh process
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        if req.get("log"):
            fd = os.open(req["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            os.close(fd)
        sys.argv = ["python -m bi_core.book.run_step", *req["argv"]]
        from bi_core.book.run_step import main

        rc = main(list(req["argv"]))
    except SystemExit as exc:           # argparse errors, sys.exit in a step
        rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if not isinstance(exc.code, int) and exc.code is not None:
            print(exc.code, file=sys.stderr)
    except BaseException:               # noqa: BLE001 - the child reports every failure as a traceback and exit 1
        traceback.print_exc()
        rc = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:           # noqa: BLE001 - a closed stream cannot stop the exit
                pass
        os._exit(rc if isinstance(rc, int) else 1)


def _die_with_parent() -> None:
    """Linux: the kernel kills this child when the launcher dies (else it would run on, unreported)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)     # PR_SET_PDEATHSIG
    except (OSError, AttributeError):   # not Linux: the child outlives a killed launcher, as a subprocess would
        pass


def serve(requests: int, results: int) -> None:
    """Read requests from file descriptor ``requests``, fork a child for each, report exits on ``results``."""
    out = os.fdopen(results, "w", buffering=1)
    sel = selectors.DefaultSelector()
    sel.register(requests, selectors.EVENT_READ)
    children: dict[int, str] = {}       # pid → request id
    pids: dict[str, int] = {}
    buf = b""
    reading = True
    while reading or children:
        if reading and sel.select(timeout=0.05):
            chunk = os.read(requests, 65536)
            if not chunk:
                reading = False
                sel.unregister(requests)
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                req = json.loads(line)
                if "kill" in req:
                    if req["kill"] in pids:
                        try:
                            os.kill(pids[req["kill"]], signal.SIGKILL)
                        except ProcessLookupError:
                            pass
                    continue
                pid = os.fork()
                if pid == 0:
                    _child(req, (requests, results))
                children[pid] = req["id"]
                pids[req["id"]] = pid
        elif not reading:
            time.sleep(0.05)
        while children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            rid = children.pop(pid, None)
            if rid is not None:
                pids.pop(rid, None)
                out.write(json.dumps({"id": rid, "rc": os.waitstatus_to_exitcode(status)}) + "\n")


class Task:
    """A step running in a child of a :class:`Launcher`; ``poll()`` and ``kill()`` as on :class:`subprocess.Popen`."""

    def __init__(self, launcher: "Launcher", tid: str) -> None:
        self._launcher = launcher
        self.id = tid

    def poll(self) -> int | None:
        """The child's exit code once it has exited, else ``None``."""
        return self._launcher.exit_code(self.id)

    def kill(self) -> None:
        """Kill the child (SIGKILL); nothing to do when the launcher has already gone (its children die with it)."""
        try:
            self._launcher.send({"kill": self.id})
        except OSError:     # BrokenPipeError: the launcher exited
            pass


class Launcher:
    """The scheduler's side: starts ``python -m bi_core.book.zygote`` with ``env`` and asks it for step processes."""

    def __init__(self, env: dict[str, str], preload: bool = True) -> None:
        r, w = os.pipe()
        try:
            cmd = [sys.executable, "-m", "bi_core.book.zygote", str(w)] + ([] if preload else ["--no-preload"])
            self._proc = subprocess.Popen(cmd, env=env,
                                          stdin=subprocess.PIPE, pass_fds=(w,))
        finally:
            os.close(w)
        self._codes: dict[str, int] = {}
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, args=(os.fdopen(r, "r"),), daemon=True)
        self._reader.start()

    def _read(self, results: Any) -> None:
        for line in results:
            msg = json.loads(line)
            with self._lock:
                self._codes[msg["id"]] = int(msg["rc"])
        results.close()

    def send(self, req: dict[str, Any]) -> None:
        """Write one request (``BrokenPipeError`` when the launcher died)."""
        assert self._proc.stdin is not None
        self._proc.stdin.write((json.dumps(req) + "\n").encode())
        self._proc.stdin.flush()

    def run(self, tid: str, argv: list[str], log: Path | None) -> Task:
        """Fork a child that runs ``run_step.main(argv)``; its output goes to ``log`` (else this process's)."""
        with self._lock:
            self._codes.pop(tid, None)
        self.send({"id": tid, "argv": argv, "log": None if log is None else str(log)})
        return Task(self, tid)

    def exit_code(self, tid: str) -> int | None:
        """The exit code of task ``tid``; -1 when the launcher itself died before reporting it."""
        with self._lock:
            if tid in self._codes:
                return self._codes[tid]
        if self._proc.poll() is not None:
            self._reader.join(timeout=1)
            with self._lock:
                return self._codes.get(tid, -1)
        return None

    def close(self) -> None:
        """End of requests: the launcher waits for its children, then exits."""
        try:
            if self._proc.stdin is not None:
                self._proc.stdin.close()
        except BrokenPipeError:
            pass
        self._proc.wait()
        self._reader.join(timeout=5)


def main(argv: list[str] | None = None) -> int:
    """Preload (unless ``--no-preload``), then serve requests from stdin; results go to the file descriptor given."""
    argv = sys.argv[1:] if argv is None else argv
    if not 1 <= len(argv) <= 2 or not argv[0].isdigit() or argv[1:] not in ([], ["--no-preload"]):
        print("usage: python -m bi_core.book.zygote RESULTS_FD [--no-preload]  (started by bi-core reproduce)",
              file=sys.stderr)
        return 2
    # Ctrl-C reaches every process of the terminal's group: the steps stop (their handler is reset after the
    # fork) and the scheduler ends this process by closing its input, after killing what still runs
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if not argv[1:]:
        preload()
    serve(sys.stdin.fileno(), int(argv[0]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
