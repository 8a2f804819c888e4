"""Kernels started ahead of time, and the executor that runs a notebook in one.

A kernel takes most of a second to boot (its process imports IPython and ipykernel).
`Kernel.start` only launches the process and returns: the caller prepares the notebook,
opens the store and creates the run while the kernel boots, and a sweep launches the
next notebook's kernel while the current notebook runs. Every notebook still gets a
fresh kernel process of its own: no state is carried from one execution to the next.
A sweep forks its kernels from a fork server that has imported ipykernel and the
notebook's libraries once (`_zygote`).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiln._exceptions import NotebookError
from kiln.notebooks._zygote import ForkedProcess, Zygote, forkable

__all__ = ["CellFailure", "Execution", "Kernel", "close_thread_loop", "execute"]

# The same history setting nbclient uses: no IPython history database per kernel.
_KERNEL_ARGS = ["--HistoryManager.hist_file=:memory:"]


def _run_sync(coro_fn: Callable[..., Any]) -> Callable[..., Any]:
    from jupyter_core.utils import run_sync

    return run_sync(coro_fn)


def close_thread_loop() -> None:
    """Close the event loop jupyter's `run_sync` made for this (worker) thread."""
    from jupyter_core.utils import ensure_event_loop

    loop = ensure_event_loop()
    if not loop.is_running():
        loop.close()


_IPC: list[str] = []
_SEQ = itertools.count()  # a socket name prefix per kernel: kernels started at once never clash


def _ipc_dir() -> str:
    """A private folder for this process's kernel sockets, removed at exit."""
    if not _IPC:
        import atexit
        import shutil
        import tempfile

        folder = tempfile.mkdtemp(prefix="kiln-kernels-")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        _IPC.append(folder)
    return _IPC[0]


_LIVE: set[Kernel] = set()


def _live(kernel: Kernel) -> None:
    """Remember a started kernel: one still running at exit (kiln ended by Ctrl-C or an
    error outside the notebook) is stopped with its processes, not left behind."""
    if not _LIVE and not _EXIT_HOOK:
        import atexit

        atexit.register(_stop_live_kernels)
        _EXIT_HOOK.append(True)
    _LIVE.add(kernel)


_EXIT_HOOK: list[bool] = []


def _stop_live_kernels() -> None:
    for kernel in list(_LIVE):
        with contextlib.suppress(Exception):
            kernel.shutdown()


def kernel_spec(name: str) -> tuple[list[str], dict[str, str], str]:
    """The argv, extra env and resource folder of a Jupyter kernel spec, found the way
    jupyter_client finds it (user, then environment, then system data folders), with the
    `python3` kernel of this interpreter as the fallback."""
    from jupyter_core.paths import jupyter_path

    for folder in jupyter_path("kernels"):
        spec = Path(folder) / name / "kernel.json"
        if spec.is_file():
            data = json.loads(spec.read_text(encoding="utf-8"))
            return list(data["argv"]), dict(data.get("env") or {}), str(spec.parent)
    if name == "python3":
        return [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"], {}, ""
    found = sorted(
        p.name for folder in jupyter_path("kernels") if Path(folder).is_dir()
        for p in Path(folder).iterdir() if (p / "kernel.json").is_file()
    )  # fmt: skip
    raise NotebookError(
        f"No Jupyter kernel named {name!r} is installed; found {found or 'none'}. Pass "
        "--kernel NAME, or install one (python -m ipykernel install --user --name NAME)."
    )


def _argv(name: str) -> tuple[list[str], dict[str, str], str]:
    argv, spec_env, resources = kernel_spec(name)
    if argv and argv[0] in ("python", "python3", f"python3.{sys.version_info[1]}"):
        argv[0] = sys.executable  # as jupyter_client does
    return argv, spec_env, resources


def start_zygote(kernel_name: str, cwd: str, preload: list[str]) -> Zygote | None:
    """A fork server for kernels of `kernel_name`, or None when its spec is not this
    Python's ipykernel (see `_zygote`)."""
    argv, spec_env, _ = _argv(kernel_name)
    if forkable(argv) is None:
        return None
    return Zygote(preload, cwd, {**os.environ, **spec_env})


class Kernel:
    """A kernel process launched now, used (once) later.

    The process is started straight from its kernel spec, before jupyter_client is even
    imported: it boots while the caller imports, reads and prepares everything else.

    Args:
        kernel_name: The Jupyter kernel spec (default: `python3`, this Python).
        cwd: The kernel's working directory.
        env: Extra environment variables for the kernel process.
        preload: Modules the kernel imports as it starts (see `_preload`).
        zygote: A fork server to fork the kernel from, when the spec is this Python's
            ipykernel (see `_zygote`); else the kernel is started from its spec.
    """

    def __init__(
        self,
        kernel_name: str = "python3",
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        preload: list[str] | None = None,
        zygote: Zygote | None = None,
    ) -> None:
        from kiln.notebooks._preload import preload_args

        self.kernel_name = kernel_name
        self.cwd = cwd or os.getcwd()
        argv, spec_env, resources = _argv(kernel_name)
        prefix = os.path.join(_ipc_dir(), f"k{next(_SEQ)}")
        # IPC sockets in a private folder: no TCP ports to pick, no "unencrypted TCP" warning.
        self.info: dict[str, Any] = {
            "transport": "ipc", "ip": prefix, "shell_port": 1, "iopub_port": 2,
            "stdin_port": 3, "control_port": 4, "hb_port": 5,
            "key": os.urandom(32).hex(), "signature_scheme": "hmac-sha256",
            "kernel_name": kernel_name,
        }  # fmt: skip
        self.connection_file = prefix + ".json"
        with open(os.open(self.connection_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as fh:
            json.dump(self.info, fh)
        argv = [
            a.replace("{connection_file}", self.connection_file).replace(
                "{resource_dir}", resources
            )
            for a in argv
        ]
        if any("ipykernel" in a for a in argv):
            argv += _KERNEL_ARGS + preload_args(preload or [])
        self.started = time.perf_counter()
        # JPY_PARENT_PID: the kernel exits when its parent process does.
        environ = {**os.environ, **spec_env, **dict(env or {}), "JPY_PARENT_PID": str(os.getpid())}
        args = forkable(argv) if zygote is not None else None
        self.proc: subprocess.Popen[bytes] | ForkedProcess
        forked = None
        if zygote is not None and args is not None:
            with contextlib.suppress(OSError, RuntimeError):  # a dead fork server: start anew
                forked = zygote.fork(args, self.cwd, environ)
        # A session (and process group) of its own: the kernel and whatever it starts
        # (joblib's loky workers, their resource tracker) are stopped together, and
        # stopping them never reaches kiln's own group (see `shutdown`).
        self.proc = forked or subprocess.Popen(
            argv, cwd=self.cwd, stdin=subprocess.DEVNULL, env=environ, start_new_session=True
        )
        _live(self)

    def alive(self) -> bool:
        """Whether the kernel process is still running."""
        return self.proc.poll() is None

    def interrupt(self) -> None:
        """Interrupt the running cell (SIGINT), as Jupyter's interrupt button does."""
        import signal

        if self.alive():
            self.proc.send_signal(signal.SIGINT)

    def shutdown(self) -> None:
        """Stop the kernel process at once, with every process it started.

        Its work is flushed before this is called. Processes the kernel started (joblib's
        loky workers and resource tracker, a notebook's `subprocess.Popen`) would outlive
        it, orphaned, holding kiln's stdout open (`kiln notebook run | tee log` would not
        end) until they time out: they are stopped too (see `stop_process_tree`).
        """
        _LIVE.discard(self)
        stop_process_tree(self.proc)
        for suffix in ("", *(f"-{n}" for n in range(1, 6))):
            path = self.connection_file if not suffix else self.info["ip"] + suffix
            with contextlib.suppress(OSError):
                os.remove(path)

    @classmethod
    def start(
        cls,
        kernel_name: str = "python3",
        cwd: str | None = None,
        preload: list[str] | None = None,
        zygote: Zygote | None = None,
    ) -> Kernel:
        """Launch a kernel (or fork it from `zygote`); return without waiting for it to boot."""
        return cls(kernel_name, cwd, None, preload, zygote)


def stop_process_tree(proc: subprocess.Popen[bytes] | ForkedProcess, grace: float = 2.0) -> None:
    """Kill `proc` (a kernel) and stop every process it started.

    The kernel leads a process group of its own (`start_new_session`, `os.setsid` in a
    forked kernel). Its descendants are listed first (psutil), then the kernel is killed
    (it can start no more), then the group and the descendants get SIGTERM and, after
    `grace` seconds, SIGKILL. SIGTERM first lets a multiprocessing resource tracker, which
    ignores it, see its writers go and clean up (semaphores, shared memory) before it ends.
    A group is signalled only when the kernel leads it, so kiln's own never is.
    """
    import signal

    import psutil

    pid = proc.pid
    group: int | None = pid  # a kernel that died already still leaves its group behind
    with contextlib.suppress(OSError):
        group = os.getpgid(pid)
    if group != pid or group == os.getpgrp():
        group = None  # a forked kernel not yet in its own session: only its own pid
    try:
        family = psutil.Process(pid).children(recursive=True) if proc.poll() is None else []
    except psutil.Error:
        family = []
    if proc.poll() is None:
        proc.kill()
    with contextlib.suppress(Exception):
        proc.wait(timeout=10)
    if group is not None:
        with contextlib.suppress(OSError):
            os.killpg(group, signal.SIGTERM)
    for child in family:
        with contextlib.suppress(psutil.Error):
            child.terminate()
    _, alive = psutil.wait_procs(family, timeout=grace) if family else ([], [])
    for child in alive:
        with contextlib.suppress(psutil.Error):
            child.kill()
    if group is not None:
        with contextlib.suppress(OSError):
            os.killpg(group, signal.SIGKILL)


def _client_for(kernel: Kernel) -> Any:
    """A jupyter_client async client connected to `kernel`, knowing its process."""
    from jupyter_client.asynchronous import AsyncKernelClient

    class _Client(AsyncKernelClient):
        async def _async_is_alive(self) -> bool:
            return kernel.alive()

        is_alive = _async_is_alive

    kc = _Client()
    kc.load_connection_info(kernel.info)  # type: ignore[arg-type]
    return kc


@dataclass
class CellFailure:
    """Why an execution stopped: the failing cell and what the kernel said."""

    kind: str  # "error", "timeout", "dead" or "terminated" (SIGTERM)
    position: int  # index in the executed notebook's cells
    ename: str = ""
    evalue: str = ""
    traceback: str = ""


@dataclass
class Execution:
    """What running a notebook produced."""

    nb: Any
    failure: CellFailure | None = None
    cell_seconds: list[float] = field(default_factory=list)


async def _silent(kc: Any, code: str, timeout: float) -> dict[str, Any]:
    """Run code the notebook never shows (no execution count, no history, no output)."""
    msg_id = kc.execute(code, silent=True, store_history=False, stop_on_error=False)
    deadline = time.monotonic() + timeout
    while True:
        reply = await kc.get_shell_msg(timeout=max(0.01, deadline - time.monotonic()))
        if reply["parent_header"].get("msg_id") == msg_id:
            content: dict[str, Any] = reply["content"]
            return content


def execute(
    nb: Any,
    kernel: Kernel,
    *,
    setup: str = "",
    teardown: str = "",
    timeout: float | None = None,
    startup_timeout: float = 60.0,
    on_cell: Callable[[int], None] | None = None,
    stop_on_sigterm: bool = False,
) -> Execution:
    """Execute every code cell of `nb` (in place) in `kernel`, stopping at the first error.

    Args:
        nb: An nbformat v4 notebook; its outputs are replaced.
        kernel: A started `Kernel`, not used before.
        setup: Code run silently before the first cell (not part of the notebook).
        teardown: Code run silently after the last cell, also after a failure.
        timeout: Seconds a cell may run (None: no limit).
        startup_timeout: Seconds to wait for the kernel to boot.
        on_cell: Called with the cell position after each cell (to save progress).
        stop_on_sigterm: In the main thread, a SIGTERM stops the execution as a failure
            of kind "terminated" (the running cell interrupted, the teardown run), so the
            caller can save the partial notebook; the caller then ends the process.
    """
    return _run_sync(_execute)(
        nb, kernel, setup, teardown, timeout, startup_timeout, on_cell, stop_on_sigterm
    )


@contextlib.contextmanager
def _sigterm_cancels(enabled: bool, kernel: Kernel) -> Iterator[list[bool]]:
    """While executing, SIGTERM cancels the running task, and SIGINT (Ctrl-C) interrupts
    the running cell (main thread only).

    The kernel runs in a process group of its own, so the terminal's Ctrl-C no longer
    reaches it: kiln passes it on, as Jupyter's interrupt button does. Yields a flag list
    that holds True once SIGTERM arrived. The process's own handlers are put back
    afterwards.
    """
    import asyncio
    import signal
    import threading

    fired: list[bool] = []
    if threading.current_thread() is not threading.main_thread():
        yield fired
        return
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None

    def stop() -> None:
        fired.append(True)
        task.cancel()

    signals: dict[signal.Signals, Callable[[], None]] = {signal.SIGINT: kernel.interrupt}
    if enabled:
        signals[signal.SIGTERM] = stop
    previous: dict[signal.Signals, Any] = {sig: signal.getsignal(sig) for sig in signals}
    for sig, handler in signals.items():
        loop.add_signal_handler(sig, handler)
    try:
        yield fired
    finally:
        for sig, handler in previous.items():
            loop.remove_signal_handler(sig)
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


async def _execute(
    nb: Any,
    kernel: Kernel,
    setup: str,
    teardown: str,
    timeout: float | None,
    startup_timeout: float,
    on_cell: Callable[[int], None] | None,
    stop_on_sigterm: bool = False,
) -> Execution:
    with _sigterm_cancels(stop_on_sigterm, kernel) as fired:
        return await _execute_cells(
            nb, kernel, setup, teardown, timeout, startup_timeout, on_cell, fired
        )


async def _teardown(kc: Any, code: str) -> None:
    """Run the teardown, again if the kernel aborted it.

    After a cell fails, ipykernel aborts the execute requests that reach it before its
    own "stop aborting" message does; a teardown sent right after the failing cell's
    reply can be one of them, and what the notebook logged would not be flushed.
    """
    import asyncio

    for _ in range(20):
        content = await _silent(kc, code, 10.0)
        if content.get("status") != "aborted":
            return
        await asyncio.sleep(0.05)


async def _reply(kc: Any, timeout: float) -> None:
    """Wait for the next execute reply (an interrupted cell's), at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = await kc.get_shell_msg(timeout=max(0.01, deadline - time.monotonic()))
        if msg["msg_type"] == "execute_reply":
            return


def _stopped(result: Execution, kernel: Kernel, position: int) -> None:
    """Record a SIGTERM stop; interrupt the cell, so the teardown can flush its logs."""
    import asyncio

    task = asyncio.current_task()
    if task is not None:
        task.uncancel()  # handled here: the teardown may await again
    result.failure = CellFailure("terminated", max(position, 0), "SIGTERM", "")
    kernel.interrupt()


async def _execute_cells(
    nb: Any,
    kernel: Kernel,
    setup: str,
    teardown: str,
    timeout: float | None,
    startup_timeout: float,
    on_cell: Callable[[int], None] | None,
    fired: list[bool],
) -> Execution:
    import asyncio

    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    client = NotebookClient(
        nb,
        timeout=timeout,
        startup_timeout=int(startup_timeout),
        kernel_name=kernel.kernel_name,
        record_timing=True,
        resources={"metadata": {"path": kernel.cwd}},
    )
    result = Execution(nb)
    position = -1
    try:
        client.kc = kc = _client_for(kernel)
        kc.start_channels()
        await kc.wait_for_ready(timeout=startup_timeout)
        kc.allow_stdin = False
        if setup:
            await _silent(client.kc, setup, startup_timeout)
        for position, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            begin = time.perf_counter()
            try:
                await client.async_execute_cell(cell, position)
            finally:
                result.cell_seconds.append(time.perf_counter() - begin)
                if on_cell is not None:
                    on_cell(position)
    except CellTimeoutError as exc:
        result.failure = CellFailure("timeout", position, "CellTimeoutError", str(exc))
        # Stop the cell, so that the teardown can still flush what it logged.
        kernel.interrupt()
    except DeadKernelError as exc:
        if fired:  # nbclient reports a cancelled cell as a dead kernel
            _stopped(result, kernel, position)
        else:
            result.failure = CellFailure("dead", max(position, 0), "DeadKernelError", str(exc))
    except CellExecutionError as exc:
        shown = [o for o in nb.cells[position].get("outputs", []) if o.output_type == "error"]
        trace = "\n".join(shown[-1].traceback) if shown else exc.traceback
        result.failure = CellFailure("error", position, exc.ename, exc.evalue, trace)
    except RuntimeError as exc:  # the kernel did not come up
        result.failure = CellFailure("dead", max(position, 0), type(exc).__name__, str(exc))
    except asyncio.CancelledError:
        if not fired:
            raise
        _stopped(result, kernel, position)
    finally:
        if client.kc is not None:
            if teardown and (result.failure is None or result.failure.kind != "dead"):
                with contextlib.suppress(Exception):  # the kernel may be gone
                    if result.failure is not None and result.failure.kind in (
                        "terminated",
                        "timeout",
                    ):
                        # The kernel aborts requests queued while the interrupted cell
                        # fails: wait for that cell's reply before sending the teardown.
                        await _reply(client.kc, 10.0)
                    await _teardown(client.kc, teardown)
            client.kc.stop_channels()
    return result
