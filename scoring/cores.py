"""How many threads the array work should use."""

from __future__ import annotations

import os


def idle_cores() -> int:
    """Return the cores this process may use that are not already busy (at least 1).

    Threads only pay where a core is idle: on a busy machine a second thread waits for a core and thrashes the
    caches of the first. The one-minute load average tells how many cores other processes keep busy.
    """
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        busy = os.getloadavg()[0]
    except OSError:
        return usable
    return max(1, min(usable, int(usable - busy + 0.5)))
