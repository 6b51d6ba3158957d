"""Line-level import errors, collected up to a cap and raised together."""

from __future__ import annotations

from dataclasses import dataclass, field

from annotation.importers.limits import import_limits
from evalplatform.exceptions import DomainError


@dataclass(frozen=True)
class LineError:
    """One problem with one line of an imported file."""

    file: str
    line: int
    field: str
    problem: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.problem}"


class ImportRefused(DomainError):
    """A file that cannot be imported; nothing was written."""

    def __init__(self, errors: list[LineError], *, total: int | None = None) -> None:
        self.errors = errors
        self.total = total if total is not None else len(errors)
        super().__init__(self.render())

    @property
    def lines(self) -> list[str]:
        """Return the errors as `file:line: field: problem` strings, with a tail line when capped."""
        shown = [str(error) for error in self.errors]
        if self.total > len(self.errors):
            shown.append(f"... and {self.total - len(self.errors):,} more")
        return shown

    def render(self) -> str:
        return f"refused: {self.total:,} error(s), nothing was written\n" + "\n".join(self.lines)


@dataclass
class ErrorCollector:
    """Collect line errors for one file, keeping the first `cap` (IMPORT_LIMITS["errors_kept"]) and counting all."""

    file: str
    cap: int = field(default_factory=lambda: import_limits().errors_kept)
    errors: list[LineError] = field(default_factory=list)
    total: int = 0

    def add(self, line: int, field_name: str, problem: str) -> None:
        self.total += 1
        if len(self.errors) < self.cap:
            self.errors.append(LineError(self.file, line, field_name, problem))

    def __bool__(self) -> bool:
        return self.total > 0

    def raise_if_any(self) -> None:
        if self.total:
            raise ImportRefused(sorted(self.errors, key=lambda e: e.line), total=self.total)
