"""Notebook kernels forked from the step launcher (:mod:`bi_core.book.zygote`) instead of started fresh.

papermill starts a chapter's kernel through jupyter_client, whose provisioner runs ``python -m
ipykernel_launcher -f CONNECTION_FILE ...`` as a new process: an interpreter start and the
chapter's imports (pandas, matplotlib, seaborn, scipy.stats, IPython) before its first line,
3–5 s of CPU per chapter. :class:`ForkedProvisioner` hands the same command, environment and
directory to the launcher, which forks the kernel from a process that has imported those
libraries already; jupyter_client then talks to it over the same connection file, interrupts
and kills it by its process id, and learns of its exit from the launcher. Anything that is
not a plain ``ipykernel_launcher`` command of this interpreter starts the usual way.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import uuid
from typing import Any

from jupyter_client.manager import KernelManager
from jupyter_client.provisioning import LocalProvisioner

from .zygote import Launcher, Task


class _ForkedKernel:
    """A forked kernel as jupyter_client's provisioner uses a ``Popen``: ``pid``, ``poll``, ``wait``, signals."""

    stdin = stdout = stderr = None

    def __init__(self, task: Task) -> None:
        self._task = task
        self.pid = task.pid()

    def poll(self) -> int | None:
        return self._task.poll()

    def wait(self, timeout: float | None = None) -> int:
        t0 = time.monotonic()
        while (rc := self.poll()) is None:
            if timeout is not None and time.monotonic() - t0 > timeout:
                raise TimeoutError(f"kernel {self.pid} still runs after {timeout} s")
            time.sleep(0.02)
        return rc

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:         # the launcher has not reaped it: the pid is still the kernel's
            os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


def forkable(cmd: list[str]) -> bool:
    """Whether ``cmd`` is this interpreter's ``python -m ipykernel_launcher ...`` (the launcher can fork it)."""
    return (len(cmd) >= 3 and cmd[1:3] == ["-m", "ipykernel_launcher"]
            and os.path.realpath(cmd[0]) == os.path.realpath(sys.executable))


class ForkedProvisioner(LocalProvisioner):   # type: ignore[misc]
    """jupyter_client's local provisioner whose kernel process is forked by :attr:`launcher`."""

    launcher: Launcher | None = None

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> Any:
        if self.launcher is None or not forkable(cmd):
            return await super().launch_kernel(cmd, **kwargs)
        cwd = str(kwargs.get("cwd") or os.getcwd())
        # the environment jupyter_client's launch_kernel gives a kernel it starts
        env = {**(kwargs.get("env") or os.environ), "JPY_PARENT_PID": str(os.getpid())}
        task = self.launcher.kernel(f"kernel {self.kernel_id}", cmd[3:], env, cwd)
        self.process = _ForkedKernel(task)
        # the kernel leads its own process group (as one jupyter_client starts): signals reach its subprocesses too
        self.pid = self.pgid = self.process.pid
        self.cwd = cwd
        return self.connection_info


def kernel_manager(launcher: Launcher, kernel_name: str = "python3") -> KernelManager:
    """A not yet started kernel manager whose kernel ``launcher`` forks (hand it to papermill as ``km``; the
    caller shuts the kernel down: papermill leaves a kernel manager it was given running)."""
    km = KernelManager(kernel_name=kernel_name)
    km.kernel_id = str(uuid.uuid4())
    prov = ForkedProvisioner(kernel_id=km.kernel_id, kernel_spec=km.kernel_spec, parent=km)
    prov.launcher = launcher
    km.provisioner = prov
    return km
