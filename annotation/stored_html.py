"""The rendered HTML stored with each prompt and output: written on import, filled in batches, or on first show.

Rendering markdown (with Pygments and nh3) costs a few milliseconds for a real model answer, more than the rest
of an annotator's `next`; it is done once per text and kept in `Prompt.html` / `Output.html`. A database trigger
(migration 0006) clears the stored HTML when the text changes without it, so a row's HTML is either missing or
rendered from its current text. Missing HTML is rendered and stored by whoever shows the row first
(annotation.engine) or ahead of time by `fill_missing_html` (`manage.py render_html`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

from django.db import connection

from annotation.rendering import render_markdown

Table = Literal["annotation_prompt", "annotation_output"]
TABLES: tuple[Table, ...] = ("annotation_prompt", "annotation_output")
FILL_BATCH = 1000

# Store HTML rendered from `text`, unless the text changed meanwhile (the row then keeps NULL from the trigger).
STORE_SQL = """
UPDATE {table} x SET html = u.html
FROM unnest(%(ids)s::bigint[], %(texts)s::text[], %(htmls)s::text[]) AS u(id, text, html)
WHERE x.id = u.id AND x.text = u.text AND x.html IS DISTINCT FROM u.html
"""


def store_html(table: Table, rows: Sequence[tuple[int, str, str]]) -> None:
    """Store (id, text, html) rows in one statement, rows in id order (so concurrent stores lock in one order)."""
    if not rows:
        return
    rows = sorted(rows)
    with connection.cursor() as cursor:
        cursor.execute(
            STORE_SQL.format(table=table),
            {"ids": [r[0] for r in rows], "texts": [r[1] for r in rows], "htmls": [r[2] for r in rows]},
        )


def rendered(rows: Iterable[tuple[int, str]]) -> list[tuple[int, str, str]]:
    """Return (id, text, html) for (id, text) rows."""
    return [(pk, text, render_markdown(text)) for pk, text in rows]


def fill_missing_html(*, tables: Sequence[Table] = TABLES, rerender: bool = False, batch: int = FILL_BATCH) -> int:
    """Render and store the HTML of every row that lacks it (or of every row: `rerender`), `batch` rows per
    statement and transaction; return how many rows were rendered. Run `rerender` after changing the renderer.
    """
    done = 0
    for table in tables:
        last = 0
        condition = "" if rerender else "AND html IS NULL"
        while True:
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT id, text FROM {table} WHERE id > %s {condition} ORDER BY id LIMIT %s", [last, batch]
                )
                rows = cursor.fetchall()
            if not rows:
                break
            store_html(table, rendered(rows))
            done += len(rows)
            last = rows[-1][0]
    return done
