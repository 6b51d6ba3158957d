"""How many threads the array work should use."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from threadpoolctl import threadpool_limits

P = ParamSpec("P")
R = TypeVar("R")

# Linux: "1.38 1.84 3.80 1/129 8385"; the fourth field counts the tasks runnable right now, the reader included.
LOADAVG_PATH = "/proc/loadavg"


def idle_cores() -> int:
    """Return the cores this process may use that are not already busy (at least 1).

    Threads only pay where a core is idle: on a busy machine a second thread waits for a core and thrashes the
    caches of the first. The one-minute load average tells how many cores other processes keep busy, but it lags:
    a minute after a burst it still counts cores that are idle now. So where the kernel also tells how many other
    tasks are runnable at this instant, the smaller of the two is taken as busy.
    """
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        busy = os.getloadavg()[0]
    except OSError:
        return usable
    running_now = _other_runnable_tasks()
    if running_now is not None:
        busy = min(busy, running_now)
    return max(1, min(usable, int(usable - busy + 0.5)))


def _other_runnable_tasks() -> int | None:
    """Return how many tasks besides this one are runnable right now, or None where the kernel does not say."""
    try:
        with open(LOADAVG_PATH, encoding="ascii") as handle:
            runnable = int(handle.read().split()[3].split("/")[0])
    except (OSError, IndexError, ValueError):
        return None
    return max(0, runnable - 1)


def single_threaded_blas(function: Callable[P, R]) -> Callable[P, R]:
    """Run ``function`` with BLAS limited to one thread.

    Our matrices are small (models x models) and the bootstrap's rounds already share the cores: BLAS's own threads
    only contend. On the busy 2-core machine a 150-model fit with OpenBLAS's threads spent 0.3 s in each dense
    solve, 50 times what one thread takes. ``python -m scoring`` sets OPENBLAS_NUM_THREADS=1 before numpy loads;
    a web or worker process, or a notebook, does not, hence this.
    """

    @functools.wraps(function)
    def limited(*args: P.args, **kwargs: P.kwargs) -> R:
        with threadpool_limits(limits=1, user_api="blas"):
            return function(*args, **kwargs)

    return limited
