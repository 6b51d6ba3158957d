"""How many threads the array work should use."""

from __future__ import annotations

import os

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
