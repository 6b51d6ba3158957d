"""Which raters a report counts: humans, judges, everyone, or named raters, minus excluded name patterns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from evalplatform.exceptions import DomainError

KINDS = {"humans": "human", "judges": "judge"}
# Each exclusion glob is one more condition on every rating read (and Django nests each one more deeply into the
# query it clones: 1,500 took 17 s, 5,000 crashed the process), so a selection is held to these.
MAX_NAMES, MAX_GLOBS, MAX_ITEM_CHARS = 1000, 50, 200


@dataclass(frozen=True)
class RaterSelection:
    """A rater filter: a kind (human/judge) or named raters, minus names matching exclusion globs."""

    kind: str | None = None
    names: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    # (rater id, public label) of the raters the campaign's researchers excluded from results
    # (results.rater_exclusions.with_exclusions fills it; empty when asked to include them).
    left_out: tuple[tuple[int, str], ...] = ()

    @property
    def needs_rater_table(self) -> bool:
        """Return whether the condition reads the rater table (names or exclusions)."""
        return bool(self.names or self.exclude)

    @property
    def key(self) -> str:
        """Return a stable text form, for cache keys and report headers."""
        base = ",".join(self.names) if self.names else {None: "all", "human": "humans", "judge": "judges"}[self.kind]
        left_out = f" (excluded from results: {', '.join(sorted(label for _, label in self.left_out))})"
        return base + "".join(f" -{glob}" for glob in self.exclude) + (left_out if self.left_out else "")

    @property
    def left_out_ids(self) -> list[int]:
        """Return the ids of the raters excluded from results."""
        return [rater_id for rater_id, _ in self.left_out]

    def sql(self, alias: str = "rr") -> tuple[str, list[Any]]:
        """Return a SQL condition on the rating ``r`` and the rater table (aliased ``alias``) and its parameters."""
        clauses: list[str] = []
        params: list[Any] = []
        if self.kind:
            clauses.append("r.rater_kind = %s")  # copied onto the rating: no join needed
            params.append(self.kind)
        if self.names:
            clauses.append(f"({alias}.name = ANY(%s) OR {alias}.pseudonym = ANY(%s))")
            params += [list(self.names), list(self.names)]
        for glob in self.exclude:
            clauses.append(f"{alias}.name NOT LIKE %s ESCAPE '\\'")
            params.append(glob_to_like(glob))
        if self.left_out:
            clauses.append("r.rater_id <> ALL(%s)")  # on the rating: no join needed
            params.append(self.left_out_ids)
        return (" AND ".join(clauses) or "TRUE"), params


def glob_to_like(glob: str) -> str:
    """Translate a shell glob (``*``, ``?``) into a SQL LIKE pattern."""
    escaped = glob.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def parse_raters(
    raters: str | None = "all", exclude: str | list[str] | tuple[str, ...] | None = None
) -> RaterSelection:
    """Parse ``humans|judges|all|NAME,...`` and comma-separated exclusion globs into a RaterSelection."""
    text = (raters or "all").strip()
    if isinstance(exclude, str):
        exclude = [exclude]
    for field, value in (("raters", text), *(("exclude_raters", item) for item in exclude or ())):
        if "\x00" in value:  # no name holds one, and PostgreSQL refuses it in a query
            raise DomainError(f"{field}: null characters are not allowed", field=field)
    globs = tuple(g.strip() for item in (exclude or ()) for g in item.split(",") if g.strip())
    check_sizes("exclude_raters", globs, MAX_GLOBS)
    if text in KINDS:
        return RaterSelection(kind=KINDS[text], exclude=globs)
    if text in ("all", "everyone"):
        return RaterSelection(exclude=globs)
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    if not names:
        raise DomainError("raters: give humans, judges, all or a comma-separated list of rater names", field="raters")
    keywords = [name for name in names if name in KINDS or name in ("all", "everyone")]
    if keywords:
        raise DomainError(
            f"raters: {keywords[0]} stands alone (humans, judges or all); with names give only rater names",
            field="raters",
        )
    check_sizes("raters", names, MAX_NAMES)
    return RaterSelection(names=names, exclude=globs)


def check_sizes(field: str, items: tuple[str, ...], most: int) -> None:
    """Raise DomainError naming the field when it holds more than ``most`` items or one over MAX_ITEM_CHARS."""
    if len(items) > most:
        raise DomainError(f"{field}: at most {most} entries, not {len(items)}", field=field)
    if any(len(item) > MAX_ITEM_CHARS for item in items):
        raise DomainError(f"{field}: an entry is longer than {MAX_ITEM_CHARS} characters", field=field)
