"""Ctrl-C during ``Trainer.fit``: the first SIGINT asks the loop to stop at its next
optimizer-step boundary (where it writes its checkpoint), a second one stops at once."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from collections.abc import Iterator
from multiprocessing import resource_tracker
from typing import Any

__all__ = ["GracefulInterrupt", "iter_shielded"]


def _several_ranks() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class GracefulInterrupt:
    """Context manager: while active, SIGINT sets :attr:`requested` instead of raising.

    It installs its handler only in the main thread (where Python delivers signals, and the
    only thread allowed to set a handler), only if SIGINT is not ignored (``SIG_IGN``) or set
    outside Python, and only without a process group of several ranks: one rank could then
    stop a step before another, which would wait forever in that step's collective (agreeing
    on the stop would cost a collective every step). The previous handler is restored on exit.
    A process forked while it is active (a DataLoader worker) inherits it and ignores SIGINT:
    a terminal's Ctrl-C reaches the workers too, and the main process decides when to stop.
    Spawned workers (``spawn``, ``forkserver``) inherit no handler; the trainer creates its
    loaders' iterators through :func:`iter_shielded`, so they start with SIGINT blocked.

    Parameters
    ----------
    note : str
        Written to stderr at the first SIGINT (what the stop will do).
    """

    def __init__(self, note: str):
        self.note = note
        self.requested = False
        self._previous = None
        self._pid = os.getpid()

    def __enter__(self) -> GracefulInterrupt:
        self.requested, self._pid = False, os.getpid()
        if threading.current_thread() is not threading.main_thread() or _several_ranks():
            return self
        previous = signal.getsignal(signal.SIGINT)
        if previous is None or previous == signal.SIG_IGN:
            return self
        self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def _handle(self, signum, frame) -> None:
        if os.getpid() != self._pid:  # a forked DataLoader worker: keep serving batches
            return
        if self.requested:
            signal.signal(signal.SIGINT, self._previous)  # a third one: the usual behaviour
            raise KeyboardInterrupt("a second Ctrl-C: stopped at once, no checkpoint written")
        self.requested = True
        # os.write, not logging or print: a signal handler may run in the middle of another
        # write to stderr (the progress bar's), and a buffered stream refuses a reentrant call
        try:
            os.write(2, f"\n{self.note}; press Ctrl-C again to stop at once\n".encode())
        except OSError:
            pass


def iter_shielded(loader) -> Iterator[Any]:
    """``iter(loader)``; while a :class:`GracefulInterrupt` handles SIGINT, with the workers it
    starts shielded from SIGINT.

    A DataLoader with workers starts them when its iterator is created. A terminal's Ctrl-C
    goes to the whole process group, and a worker started with ``spawn`` or ``forkserver``
    (the default on macOS, and on Linux from Python 3.14) does not inherit the trainer's
    handler: it dies of it, and the loader then fails the step under way, also in the middle
    of an accumulation window, where no checkpoint can be written.

    So SIGINT is blocked in this thread for the call. A process inherits the signal mask of
    the thread that starts it, across ``exec`` too, and neither Python nor the worker
    unblocks it; a forkserver started here passes it on to the workers it forks. Such a
    worker never receives a Ctrl-C: the main process decides when to stop, and shuts the
    workers down. A SIGINT sent to this process meanwhile is not lost: another thread takes
    it, or it is held pending until the mask is restored. multiprocessing's resource tracker,
    which ``spawn`` and ``forkserver`` start once, unblocks SIGINT after starting: it is
    started before. (A forkserver started before, outside ``fit``, passes its own mask on;
    its workers are not shielded.)
    """
    handler = signal.getsignal(signal.SIGINT)
    shield = (
        getattr(loader, "num_workers", 0) > 0
        and isinstance(getattr(handler, "__self__", None), GracefulInterrupt)
        and threading.current_thread() is threading.main_thread()
        and hasattr(signal, "pthread_sigmask")  # (POSIX)
    )
    if not shield:
        return iter(loader)
    # (the default context, as the DataLoader takes it when it starts its workers)
    context = getattr(loader, "multiprocessing_context", None) or multiprocessing.get_context()
    if context.get_start_method() != "fork":
        resource_tracker.ensure_running()
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        return iter(loader)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
