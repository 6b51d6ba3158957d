"""Style counts of an output for style-controlled leaderboards: tokens, markdown headers, list items, bold spans.

The same four counts Chatbot Arena keeps in ``conv_metadata`` (``scoring/style.py`` turns them into features), with
an offline token count instead of OpenAI's tokenizer: a token is a run of word characters (``\\w+``, any script) or
one other non-space character, so ``"Hello, world!"`` is 4 tokens (tiktoken's cl100k gives 4 too; on English prose
the two agree within about 15%; only differences between two answers matter after the feature's ratio). Headers
(``^#{1,6} ``), list items (``^ *[-*+] `` and ``^ *1. ``) and bold spans (``**x**``, ``__x__`` on one line) are
counted outside fenced code blocks, as FastChat's counter does.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

from django.db import connection

TOKEN = re.compile(r"\w+|[^\w\s]")
FENCE = re.compile(r"```.*?(?:```|\Z)", re.DOTALL)
HEADER = re.compile(r"^#{1,6}\s", re.MULTILINE)
LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+\.)\s", re.MULTILINE)
BOLD = re.compile(r"\*\*[^*\n]+\*\*|__[^_\n]+__")
BATCH = 1_000


def style_counts(text: str) -> list[int]:
    """Return [tokens, headers, list items, bold spans] of a markdown answer."""
    prose = FENCE.sub("", text)
    return [
        len(TOKEN.findall(text)),
        len(HEADER.findall(prose)),
        len(LIST_ITEM.findall(prose)),
        len(BOLD.findall(prose)),
    ]


def fill_style_counts(output_ids: Iterable[int] | None = None) -> int:
    """Store the style counts of outputs that have none (all of them, or those in ``output_ids``); return how many.

    Works in batches of BATCH outputs, one UPDATE each, in SQL alone (the migration's backfill runs it too); an
    output whose text changed since it was read keeps NULL and is filled next time (the trigger of migration
    ``output_style_features`` clears counts that a text edit leaves stale).
    """
    ids = None if output_ids is None else sorted(set(output_ids))
    filled, last = 0, 0
    with connection.cursor() as cursor:
        while True:
            cursor.execute(SELECT_SQL, [last, ids is None, ids or [], BATCH])
            batch = cursor.fetchall()
            if not batch:
                return filled
            counts = [style_counts(text) for _, text in batch]
            columns = [[pk for pk, _ in batch], [hashlib.md5(text.encode()).hexdigest() for _, text in batch]]
            columns += [[row[k] for row in counts] for k in range(4)]
            cursor.execute(FILL_SQL, columns)
            filled += cursor.rowcount
            last = batch[-1][0]


SELECT_SQL = """
SELECT id, text FROM annotation_output
WHERE style_features IS NULL AND id > %s AND (%s OR id = ANY(%s::bigint[]))
ORDER BY id LIMIT %s
"""

FILL_SQL = """
UPDATE annotation_output AS o SET style_features = ARRAY[v.tokens, v.headers, v.lists, v.bold]
FROM unnest(%s::bigint[], %s::text[], %s::int[], %s::int[], %s::int[], %s::int[])
     AS v(id, digest, tokens, headers, lists, bold)
WHERE o.id = v.id AND o.style_features IS NULL AND md5(o.text) = v.digest
"""
