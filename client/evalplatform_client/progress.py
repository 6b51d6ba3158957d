"""Progress of uploads, exports and waits: a callback, or one line rewritten on stderr."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Literal


@dataclass(frozen=True)
class Progress:
    """One step of a long operation. `total` is None when unknown (a streamed export); `finished` on the last."""

    what: str
    done: int
    total: int | None
    unit: Literal["bytes", "percent", "verdicts"]
    finished: bool = False


ProgressCallback = Callable[[Progress], None]


class StderrProgress:
    """Write each step as one line rewritten in place (a carriage return), ended by a newline when finished."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.width = 0  # of the line on screen: a shorter one is padded to cover it

    def __call__(self, step: Progress) -> None:
        line = f"{step.what}: {render(step)}"
        self.stream.write("\r" + line.ljust(self.width) + ("\n" if step.finished else ""))
        self.stream.flush()
        self.width = 0 if step.finished else len(line)


def render(step: Progress) -> str:
    """Return a step's figures as text: `45% (4.5 of 10.0 MB)`, `1.2 MB`, `30/60 verdicts`."""
    if step.unit == "percent":
        return f"{step.done}%"
    if step.unit == "verdicts":
        return f"{step.done}/{step.total if step.total is not None else '?'} verdicts"
    if step.total:
        return f"{100 * step.done // step.total}% ({step.done / 1e6:.1f} of {megabytes(step.total)})"
    return megabytes(step.done)


def megabytes(n: int) -> str:
    return f"{n / 1_000_000:.1f} MB"


def progress_callback(progress: bool | ProgressCallback | None) -> ProgressCallback | None:
    """Return the callback for a Client's `progress` option: None (the default) shows a line when stderr is a
    terminal, True always, False never; a callable receives every step."""
    if callable(progress):
        return progress
    if progress is None:
        return StderrProgress() if sys.stderr.isatty() else None
    return StderrProgress() if progress else None
