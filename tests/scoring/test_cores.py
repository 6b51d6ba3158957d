"""Thread counts for the array work."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from scoring import cores


@pytest.fixture
def four_cores(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Four usable cores and a /proc/loadavg of the test's making (no other task runnable unless it says so)."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    loadavg = tmp_path / "loadavg"
    loadavg.write_text("0.00 0.00 0.00 9/129 8385\n")
    monkeypatch.setattr(cores, "LOADAVG_PATH", str(loadavg))
    return loadavg


@pytest.mark.parametrize(("load", "expected"), [(0.0, 4), (1.2, 3), (2.6, 1), (9.0, 1)])
def test_idle_cores_leave_out_the_busy_ones(
    monkeypatch: pytest.MonkeyPatch, four_cores: Path, load: float, expected: int
) -> None:
    monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load))
    assert cores.idle_cores() == expected


@pytest.mark.parametrize(("runnable", "expected"), [(1, 4), (2, 3), (4, 1), (30, 1)])
def test_a_load_average_still_high_from_a_finished_burst_does_not_hide_idle_cores(
    monkeypatch: pytest.MonkeyPatch, four_cores: Path, runnable: int, expected: int
) -> None:
    monkeypatch.setattr(os, "getloadavg", lambda: (3.9, 3.0, 2.0))
    four_cores.write_text(f"3.90 3.00 2.00 {runnable}/129 8385\n")  # the reader is one of the runnable tasks
    assert cores.idle_cores() == expected


def test_without_the_kernels_count_the_load_average_decides(monkeypatch: pytest.MonkeyPatch, four_cores: Path) -> None:
    monkeypatch.setattr(os, "getloadavg", lambda: (2.6, 2.6, 2.6))
    four_cores.unlink()
    assert cores.idle_cores() == 1
