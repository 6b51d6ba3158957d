"""Thread counts for the array work."""

from __future__ import annotations

import os

import pytest

from scoring import cores


@pytest.mark.parametrize(("load", "expected"), [(0.0, 4), (1.2, 3), (2.6, 1), (9.0, 1)])
def test_idle_cores_leave_out_the_busy_ones(monkeypatch: pytest.MonkeyPatch, load: float, expected: int) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load))
    assert cores.idle_cores() == expected
