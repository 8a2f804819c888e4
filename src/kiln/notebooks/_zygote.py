"""A fork server for a sweep's kernels: import once, fork a fresh kernel per notebook.

Booting a Python kernel and importing a notebook's libraries (numpy, scikit-learn,
pandas) costs 2-3 s of CPU; a 10-notebook sweep would pay it ten times. For a sweep
kiln starts one *zygote* process that imports ipykernel and the notebook's preloadable
imports (the same list `_preload` computes, under the same rules) and then waits. For
each notebook it forks a child, and the child, not the zygote, starts a new
`IPKernelApp` on its own connection file: new sockets, a new IPython shell, an empty
namespace, a process of its own that runs one notebook and is killed.

Why this is still a fresh kernel: the zygote never runs notebook code, never starts a
kernel, and holds no threads, sockets or event loop when it forks; what a child
inherits is exactly what preloading gives a kernel started from scratch (modules
imported, in `sys.modules` only). Python's `random` reseeds itself in a forked child;
kiln also reseeds numpy's global generator, so children do not share random streams.
Executions stay isolated from one another: nothing a notebook does reaches the zygote
or the next kernel.

Used only for kernels run by this Python's ipykernel (`python -m ipykernel_launcher`);
other kernels (R, another env) are started from their spec as usual. `preload=False`
makes the zygote import ipykernel alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
from typing import Any

__all__ = ["ForkedProcess", "Zygote", "forkable"]


def forkable(argv: list[str]) -> list[str] | None:
    """The kernel arguments when `argv` starts this Python's ipykernel, else None."""
    if len(argv) >= 3 and argv[0] == sys.executable and argv[1:3] == ["-m", "ipykernel_launcher"]:
        return argv[3:]
    return None


class ForkedProcess:
    """The part of `subprocess.Popen` a `Kernel` uses, for a kernel forked by the zygote.

    The zygote ignores SIGCHLD, so its children are reaped as they exit: a pid that no
    longer answers signal 0 is gone.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                self.returncode = -1
            except PermissionError:  # pid reused by another user's process
                self.returncode = -1
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def kill(self) -> None:
        import signal

        self.send_signal(signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int:
        import time

        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"kernel {self.pid}", timeout or 0.0)
            time.sleep(0.01)
        assert self.returncode is not None
        return self.returncode


class Zygote:
    """The fork server (see the module docstring); started now, ready when first used.

    Args:
        modules: Modules to import before forking (the notebook's preloadable imports).
        cwd: The working directory of the kernels.
        env: The kernels' environment (the zygote imports under it).
    """

    def __init__(self, modules: list[str], cwd: str, env: dict[str, str]) -> None:
        read_replies, self._reply_w = os.pipe()
        self._replies = os.fdopen(read_replies, "rb", buffering=0)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kiln.notebooks._zygote", json.dumps(modules), str(self._reply_w)],
            cwd=cwd, env=env, stdin=subprocess.PIPE, pass_fds=(self._reply_w,),
        )  # fmt: skip
        os.close(self._reply_w)
        self._lock = threading.Lock()

    def _reply(self) -> dict[str, Any]:
        line = b""
        while not line.endswith(b"\n"):
            chunk = self._replies.read(1)
            if not chunk:
                raise RuntimeError("the kernel fork server exited")
            line += chunk
        reply: dict[str, Any] = json.loads(line)
        return reply

    def fork(self, args: list[str], cwd: str, env: dict[str, str]) -> ForkedProcess:
        """A new kernel process running `IPKernelApp` with `args` (as after `-m ipykernel_launcher`)."""
        assert self.proc.stdin is not None
        with self._lock:
            message = json.dumps({"args": args, "cwd": cwd, "env": env}) + "\n"
            self.proc.stdin.write(message.encode("utf-8"))
            self.proc.stdin.flush()
            reply = self._reply()
        return ForkedProcess(int(reply["pid"]))

    def close(self) -> None:
        """Stop the zygote; it kills the kernels it forked that are still running."""
        with contextlib.suppress(OSError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._replies.close()


# ---------------------------------------------------------------- the zygote process
def _child(request: dict[str, Any], fds: tuple[int, ...]) -> None:
    """In the forked child: become a fresh kernel process (never returns)."""
    import signal

    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the kernel's own `!cmd` waits on children
        os.setsid()  # a process group of its own, stopped whole (`_kernel.stop_process_tree`)
        for fd in fds:
            os.close(fd)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        if "numpy.random" in sys.modules:
            sys.modules["numpy.random"].seed()  # random streams of its own, as a new process
        from ipykernel.kernelapp import IPKernelApp

        # The kernel exits when its parent, the zygote, does (which exits with kiln).
        args = [f"--IPKernelApp.parent_handle={os.getppid()}"]
        args += request["args"]
        sys.argv = [sys.executable, *args]
        IPKernelApp.launch_instance(argv=args)
        code = 0
    finally:
        os._exit(code)


def _as_in_a_kernel() -> None:
    """Undo what libraries decided at import because no kernel was running yet.

    pandas picks its display defaults when imported: outside a Jupyter kernel it takes
    the process for a terminal and sets `display.max_columns` to 0 (fit the terminal's
    width), where a kernel started from scratch gets 20. A forked kernel must render
    DataFrames exactly as a fresh one does (`kiln notebook check --rerun` compares them).
    """
    pandas = sys.modules.get("pandas")
    if pandas is None:
        return
    with contextlib.suppress(AttributeError, KeyError):  # pandas OptionError: no such option
        if pandas.get_option("display.max_columns") == 0:
            pandas.set_option("display.max_columns", 20)


def _serve(modules: list[str], reply_fd: int) -> None:
    import importlib
    import signal
    import warnings

    if sys.path and sys.path[0] in ("", os.getcwd()):
        del sys.path[0]  # as ipykernel_launcher does; the kernel puts it back
    # Set before any notebook library is imported, as IPKernelApp sets it before the
    # first cell: matplotlib reads it when imported.
    if not os.environ.get("MPLBACKEND"):
        os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    import ipykernel.ipkernel
    import ipykernel.kernelapp
    import ipykernel.zmqshell  # noqa: F401

    for name in modules:
        try:
            importlib.import_module(name)
        except BaseException:  # noqa: BLE001 - the notebook's own cell will report it
            continue
    _as_in_a_kernel()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped as they exit
    # Python 3.12+ warns when forking with threads alive; the only ones here are BLAS
    # pools, which reset themselves in the child (pthread_atfork).
    warnings.filterwarnings("ignore", r"This process .* is multi-threaded", DeprecationWarning)
    children: list[int] = []
    requests = sys.stdin.buffer
    try:
        for line in requests:
            request = json.loads(line)
            pid = os.fork()
            if pid == 0:
                _child(request, (reply_fd, requests.fileno()))
            children.append(pid)
            os.write(reply_fd, (json.dumps({"pid": pid}) + "\n").encode("utf-8"))
    finally:
        for pid in children:  # kiln closed the pipe (or died): stop what is left
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


if __name__ == "__main__":
    _serve(json.loads(sys.argv[1]), int(sys.argv[2]))
