"""``python -m bi_core.book.zygote FD``: the step launcher of ``bi-core reproduce``, which forks every step's process
and every chapter's notebook kernel.

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

A chapter's notebook kernel is forked the same way (:mod:`bi_core.book.kernels`): the child
runs ``ipykernel_launcher`` with the arguments, environment and directory jupyter_client gave
it, as a fresh ``python -m ipykernel_launcher`` would, but with the libraries (and ipykernel,
seaborn: :data:`KERNEL_PRELOAD`) already imported: a chapter's kernel start and imports were
3–5 s of CPU each, 14 kernels a book.

Protocol (one JSON object a line): requests on stdin, ``{"id": str, "argv": [...], "log":
path or null}`` to run a step (``log``: its stdout and stderr go there, else to this
process's), ``{"id": str, "kernel": [...], "env": {...}, "cwd": path}`` to start a kernel
(``kernel``: ``ipykernel_launcher``'s arguments) or ``{"kill": id}``; results on file
descriptor ``FD``: ``{"id": str, "pid": int}`` when a child is forked and ``{"id": str,
"rc": int}`` when it exits. At end of input it waits for its children and exits.
"""

from __future__ import annotations

import ctypes
import importlib
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
#: ``torch._dynamo``: torch imports it when a process creates its first optimizer (``Optimizer.add_param_group`` is
#: wrapped by ``torch._disable_dynamo``), 2–3 s of each training step; no model here is compiled. nilearn's
#: connectome (FC baselines) and GLM (HRFs) modules: 0.4–1.2 s of each step that uses them (bench/README.md).
PRELOAD = ("numpy", "scipy.linalg", "scipy.stats", "pandas", "torch", "torch._dynamo", "sklearn.linear_model",
           "sklearn.model_selection", "statsmodels.api", "statsmodels.formula.api", "matplotlib.pyplot",
           "nilearn.connectome", "nilearn.glm.first_level")
#: Imported besides :data:`PRELOAD` when the launcher will start notebook kernels (``--kernels``): the kernel
#: itself (IPython, zmq, tornado: imports only; its sockets and threads start in the child) and the figures' styles.
KERNEL_PRELOAD = ("ipykernel.kernelapp", "seaborn")


def preload(modules: tuple[str, ...] = PRELOAD) -> None:
    """Import ``modules``; one that is missing or fails is left to the child that needs it (it will raise there)."""
    for m in modules:
        try:
            importlib.import_module(m)
        except Exception:   # noqa: BLE001 - a broken optional import must fail in the step that uses it, not here
            pass


def _child(req: dict[str, Any], close: tuple[int, ...], main_path: str) -> None:
    """The forked process: a step (:func:`_step`) or a notebook kernel (:func:`_kernel`); exits with its code
    (never returns)."""
    rc = 1
    try:
        for fd in close:
            os.close(fd)
        _die_with_parent()
        signal.signal(signal.SIGINT, signal.default_int_handler)   # Ctrl-C stops a step as it stops a fresh process
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        rc = _kernel(req, main_path) if "kernel" in req else _step(req)
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


def _step(req: dict[str, Any]) -> int:
    """A step: its output to its log (if any), then ``run_step.main(argv)`` as ``python -m bi_core.book.run_step``."""
    if req.get("log"):
        fd = os.open(req["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
    sys.argv = ["python -m bi_core.book.run_step", *req["argv"]]
    from bi_core.book.run_step import main

    return main(list(req["argv"]))


def _kernel(req: dict[str, Any], main_path: str) -> int:
    """A notebook kernel: ``python -m ipykernel_launcher ARGS`` in ``cwd`` with ``env``, as jupyter_client starts it."""
    os.setsid()     # its own session, as jupyter_client starts a kernel: Ctrl-C in the terminal does not reach it
    os.chdir(req["cwd"])
    os.environ.clear()
    os.environ.update(req["env"])
    # as ipykernel_launcher starts: its own directory is not on the path (the kernel adds its working one)
    if sys.path and sys.path[0] == main_path:
        del sys.path[0]
    # what a fresh kernel reads from its environment at import, which happened here before the fork: the
    # figures' backend (ipykernel's inline one unless the environment names one) and the parent's pid
    backend = os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    if "matplotlib" in sys.modules:
        sys.modules["matplotlib"].rcParams["backend"] = backend
    parent = os.environ.get("JPY_PARENT_PID", "")
    sys.argv = ["ipykernel_launcher", *req["kernel"],
                *([f"--IPKernelApp.parent_handle={parent}"] if parent.isdigit() else [])]
    from ipykernel import kernelapp

    kernelapp.launch_new_instance()
    return 0


def _die_with_parent() -> None:
    """Linux: the kernel kills this child when the launcher dies (else it would run on, unreported)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)     # PR_SET_PDEATHSIG
    except (OSError, AttributeError):   # not Linux: the child outlives a killed launcher, as a subprocess would
        pass


def serve(requests: int, results: int) -> None:
    """Read requests from file descriptor ``requests``, fork a child for each, report pids and exits on ``results``."""
    out = os.fdopen(results, "w", buffering=1)
    main_path = sys.path[0] if sys.path else ""
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
                    _child(req, (requests, results), main_path)
                children[pid] = req["id"]
                pids[req["id"]] = pid
                out.write(json.dumps({"id": req["id"], "pid": pid}) + "\n")
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

    def pid(self, timeout: float = 30.0) -> int:
        """The child's process id, once the launcher has forked it (``TimeoutError`` after ``timeout`` s)."""
        return self._launcher.pid(self.id, timeout)

    def kill(self) -> None:
        """Kill the child (SIGKILL); nothing to do when the launcher has already gone (its children die with it)."""
        try:
            self._launcher.send({"kill": self.id})
        except OSError:     # BrokenPipeError: the launcher exited
            pass


class Launcher:
    """The scheduler's side: starts ``python -m bi_core.book.zygote`` with ``env`` and asks it for step processes."""

    def __init__(self, env: dict[str, str], preload: bool = True, kernels: bool = False) -> None:
        """``preload``: import :data:`PRELOAD` first (and :data:`KERNEL_PRELOAD` with ``kernels``)."""
        r, w = os.pipe()
        try:
            flags = ["--no-preload"] if not preload else ["--kernels"] if kernels else []
            cmd = [sys.executable, "-m", "bi_core.book.zygote", str(w), *flags]
            self._proc = subprocess.Popen(cmd, env=env,
                                          stdin=subprocess.PIPE, pass_fds=(w,))
        finally:
            os.close(w)
        self._codes: dict[str, int] = {}
        self._pids: dict[str, int] = {}
        self._lock = threading.Lock()
        self._forked = threading.Condition(self._lock)
        self._send_lock = threading.Lock()     # notebooks start their kernels from the scheduler's threads
        self._reader = threading.Thread(target=self._read, args=(os.fdopen(r, "r"),), daemon=True)
        self._reader.start()

    def _read(self, results: Any) -> None:
        for line in results:
            msg = json.loads(line)
            with self._lock:
                if "pid" in msg:
                    self._pids[msg["id"]] = int(msg["pid"])
                    self._forked.notify_all()
                else:
                    self._codes[msg["id"]] = int(msg["rc"])
        results.close()
        with self._lock:
            self._forked.notify_all()

    def send(self, req: dict[str, Any]) -> None:
        """Write one request (``BrokenPipeError`` when the launcher died)."""
        assert self._proc.stdin is not None
        with self._send_lock:
            self._proc.stdin.write((json.dumps(req) + "\n").encode())
            self._proc.stdin.flush()

    def run(self, tid: str, argv: list[str], log: Path | None) -> Task:
        """Fork a child that runs ``run_step.main(argv)``; its output goes to ``log`` (else this process's)."""
        with self._lock:
            self._codes.pop(tid, None)
        self.send({"id": tid, "argv": argv, "log": None if log is None else str(log)})
        return Task(self, tid)

    def kernel(self, tid: str, args: list[str], env: dict[str, str], cwd: str | Path) -> Task:
        """Fork a notebook kernel: ``python -m ipykernel_launcher *args`` in ``cwd`` with ``env``."""
        with self._lock:
            self._codes.pop(tid, None)
            self._pids.pop(tid, None)
        self.send({"id": tid, "kernel": list(args), "env": dict(env), "cwd": str(cwd)})
        return Task(self, tid)

    def pid(self, tid: str, timeout: float) -> int:
        """The process id of task ``tid`` once forked (``TimeoutError`` after ``timeout`` s or if the launcher died)."""
        with self._lock:
            if not self._forked.wait_for(lambda: tid in self._pids or self._proc.poll() is not None, timeout):
                raise TimeoutError(f"the step launcher did not start {tid} within {timeout:.0f} s")
            if tid not in self._pids:
                raise TimeoutError(f"the step launcher exited before starting {tid}")
            return self._pids[tid]

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
    if not 1 <= len(argv) <= 2 or not argv[0].isdigit() or argv[1:] not in ([], ["--no-preload"], ["--kernels"]):
        print("usage: python -m bi_core.book.zygote RESULTS_FD [--no-preload | --kernels]  (started by bi-core "
              "reproduce)", file=sys.stderr)
        return 2
    # Ctrl-C reaches every process of the terminal's group: the steps stop (their handler is reset after the
    # fork) and the scheduler ends this process by closing its input, after killing what still runs
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if argv[1:] != ["--no-preload"]:
        preload(PRELOAD + (KERNEL_PRELOAD if argv[1:] == ["--kernels"] else ()))
    serve(sys.stdin.fileno(), int(argv[0]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
