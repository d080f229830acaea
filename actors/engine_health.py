"""A replica whose inference engine has died is replaced, never turned into error rows.

Two ways an engine dies under a replica:

- It raises: vLLM's `EngineDeadError` (its engine process is gone), a CUDA error that poisons the process (an
  illegal memory access, a device-side assert, NCCL). Every later request fails the same way, so bisecting the batch
  would only write each request down as an error row. `is_engine_failure` recognises these; the worker raises
  `EngineFailure` for the whole unit instead, and the scheduler kills the replica and retries the unit on a fresh
  process (within `max_retries`).
- It vanishes without a word: vLLM's synchronous client (vLLM 0.32) notices its engine-core process died, shuts
  itself down and leaves the caller waiting for outputs forever (measured: a sweep hung at 12 of 92 judgments).
  `Watchdog` watches the processes the model started while loading (the engine core and its workers) and, when
  one of them is gone, calls `on_fault` -- in a replica, which kills what is left of the engine and exits its
  process, so the scheduler replaces it.

A hung engine that is still alive (a stopped process, a deadlock) is caught by the unit's deadline: the scheduler
sends each unit with its timeout (`unit_timeout_s`), the watchdog arms it while the unit runs and, when it passes,
calls `on_fault` the same way. The replica itself must do it, not only the scheduler: killing the replica's
process from outside leaves its engine's processes behind (a stopped engine core and its worker stay, holding
memory, a GPU's included, for good; measured here: with them left behind, the replacement replica's first unit ran
past its deadline too). The scheduler still kills a replica that has not gone a grace period
after its deadline (a process too stuck to run its watchdog).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

import psutil

log = logging.getLogger(__name__)

# process-poisoning device errors (torch raises them as RuntimeError / torch.AcceleratorError with these texts)
_POISONED = ("cuda error", "device-side assert", "illegal memory access", "cublas_status_execution_failed",
             "nccl error", "unspecified launch failure", "hip error")
_DEAD_TYPES = {"EngineDeadError", "AcceleratorError"}
# helper processes of Python's multiprocessing that a model load may start and that are not the engine
_NOT_ENGINE = ("resource_tracker", "semaphore_tracker", "forkserver")
EXIT_ENGINE_FAULT = 75  # a replica's exit status when its engine died or its unit passed its deadline
WATCH_SECONDS = 0.5


class EngineFailure(RuntimeError):
    """The model's engine is dead: the unit is retried on a new replica, not bisected into error rows."""


def is_engine_failure(e: BaseException) -> bool:
    """Whether `e` (or an exception it was raised from) says the engine or the device is dead for good."""
    seen: set[int] = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, EngineFailure) or {t.__name__ for t in type(cur).__mro__} & _DEAD_TYPES:
            return True
        text = str(cur).lower()
        if any(p in text for p in _POISONED) and "out of memory" not in text:
            return True
        cur = cur.__cause__ or cur.__context__
    return False


def engine_processes(before: Iterable[int]) -> list[psutil.Process]:
    """This process's descendants that were not in `before` (pids), without multiprocessing's helpers."""
    found = []
    for p in psutil.Process().children(recursive=True):
        if p.pid in set(before):
            continue
        try:
            cmdline = " ".join(p.cmdline())
        except psutil.Error:
            continue
        if not any(h in cmdline for h in _NOT_ENGINE):
            found.append(p)
    return found


def descendant_pids() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


def kill_descendants() -> None:
    """SIGKILL every process under this one (a dead or hung engine's core and workers), stopped ones included."""
    for p in psutil.Process().children(recursive=True):
        try:
            p.kill()
        except psutil.Error:
            pass


def _gone(p: psutil.Process) -> bool:
    try:
        return not p.is_running() or p.status() in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
    except psutil.Error:
        return True


class Watchdog:
    """Calls `on_fault(why)` once, from its own thread: when one of `processes` exits, or when a deadline armed
    with `arm()` passes before `disarm()`. `stop()` ends the watch (the model is being closed on purpose)."""

    def __init__(self, processes: list[psutil.Process], on_fault: Callable[[str], None], what: str):
        self.processes = processes
        self.on_fault = on_fault
        self.what = what
        self.names = self.describe()
        self._deadline: tuple[float, float] | None = None  # (monotonic deadline, its timeout in seconds)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rmorch-watchdog", daemon=True)
        self._thread.start()

    def describe(self) -> list[str]:
        out = []
        for p in self.processes:
            try:
                out.append(f"{p.name()} (pid {p.pid})")
            except psutil.Error:
                out.append(f"pid {p.pid}")
        return out

    def arm(self, timeout_s: float | None) -> None:
        """A unit starts: it must be done within `timeout_s` seconds (None: no deadline)."""
        self._deadline = None if timeout_s is None else (time.monotonic() + timeout_s, timeout_s)

    def disarm(self) -> None:
        self._deadline = None

    def _fault(self) -> str | None:
        dead = [name for p, name in zip(self.processes, self.names) if _gone(p)]
        if dead:
            return f"the engine process {', '.join(dead)} of {self.what} exited"
        deadline = self._deadline
        if deadline is not None and time.monotonic() > deadline[0]:
            return f"a unit of {self.what} passed its deadline of {deadline[1]:g}s (unit_timeout_s)"
        return None

    def _run(self) -> None:
        while not self._stop.wait(WATCH_SECONDS):
            why = self._fault()
            if why is not None and not self._stop.is_set():
                self.on_fault(why)
                return

    def stop(self) -> None:
        self._stop.set()
