"""The assignment engine's statements: ids in, plain rows out, each one prepared SQL statement.

An annotator's `next` is three statements in one transaction (lock the annotator's standing, list their live
leases, then claim or renew) and a rating is two (lock, then write everything), so the hot path never builds an
ORM query or a model instance. The workflows around them, with their rules, are in annotation.services.

Lock order (to stay deadlock-free): annotator status -> assignment -> comparison. The claim itself is one
statement that locks a comparison with `FOR NO KEY UPDATE SKIP LOCKED`, bumps its `filled` counter and inserts
the assignment, so two annotators can never take the last slot of the same comparison.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from annotation.stored_html import rendered, store_html
from evalplatform.db import prepared_cursor

# What an annotator is shown of a leased comparison: read from the statement that leases or renews it. `x` is a
# row source with the assignment's id, comparison_id, left_output_id and lease_expires_at. The HTML is the stored
# rendering (NULL until rendered: shown_from_row renders and stores it then).
SHOWN_SQL = """
SELECT x.id, x.lease_expires_at, p.id, p.text, p.html, lo.id, lo.text, lo.html, ro.id, ro.text, ro.html
FROM {source} x
JOIN annotation_comparison sc ON sc.id = x.comparison_id
JOIN annotation_prompt p ON p.id = sc.prompt_id
JOIN annotation_output lo ON lo.id = x.left_output_id
JOIN annotation_output ro
    ON ro.id = CASE WHEN x.left_output_id = sc.output_a_id THEN sc.output_b_id ELSE sc.output_a_id END
"""

# One statement: lock the first free comparison in the first arm that has one, take a slot, lease it, and read
# what the annotator is shown. Each arm is a CTE walking one range of an index; PostgreSQL only evaluates a CTE as
# far as its reader pulls, so the UNION ALL ... LIMIT 1 stops at the first arm that finds a comparison.
ARM_SQL = """
arm{n} AS (
    SELECT c.id
    FROM annotation_comparison c
    WHERE c.campaign_id = %(campaign)s AND {condition}
      AND NOT EXISTS (SELECT 1 FROM annotation_assignment a WHERE a.comparison_id = c.id AND a.rater_id = %(rater)s)
    ORDER BY {order}
    LIMIT 1
    FOR NO KEY UPDATE SKIP LOCKED
)"""
# Shared with the benchmark's naive claim, which picks the comparison another way.
LEASE_SQL = """
bump AS (
    UPDATE annotation_comparison c SET filled = c.filled + 1, last_claimed_by = %(rater)s
    FROM pick WHERE c.id = pick.id
    RETURNING c.id, c.output_a_id, c.output_b_id
), leased AS (
    INSERT INTO annotation_assignment
        (comparison_id, rater_id, left_output_id, state, lease_expires_at, created_at, updated_at)
    SELECT id, %(rater)s, CASE WHEN %(left_is_a)s THEN output_a_id ELSE output_b_id END, 'leased',
        %(expires)s, %(now)s, %(now)s
    FROM bump
    RETURNING id, comparison_id, left_output_id, lease_expires_at
)""" + SHOWN_SQL.format(source="leased")
CLAIM_SQL = (
    """
WITH {arms},
pick AS ({union} LIMIT 1),
"""
    + LEASE_SQL
)
# A level of `filled` is walked on the index (campaign, filled, last_claimed_by, random_key) in ranges: at level 0,
# comparisons nobody was given yet from a random point of random_key (then wrapping around), then those given
# before and released; at every level, comparisons last given to someone else (ids above the rater's, then below).
# Comparisons last given to this rater form the one range left out, so a rater's own history is skipped without
# being walked; NOT EXISTS still guards the others (this rater was given them before someone else was).
LEVEL_CONDITION = "c.gold_verdict IS NULL AND c.filled = {level:d} AND "
BAND_ORDER = "c.last_claimed_by, c.random_key"
FRESH_ARMS = [
    ("c.last_claimed_by IS NULL AND c.random_key >= %(start)s", BAND_ORDER),
    ("c.last_claimed_by IS NULL AND c.random_key < %(start)s", BAND_ORDER),
]
OTHERS_ARMS = [("c.last_claimed_by > %(rater)s", BAND_ORDER), ("c.last_claimed_by < %(rater)s", BAND_ORDER)]
# Gold comparisons test annotators rather than collect data: each annotator may answer each one once, uncapped.
GOLD_ARMS = [
    ("c.gold_verdict IS NOT NULL AND c.random_key >= %(start)s", "c.random_key"),
    ("c.gold_verdict IS NOT NULL AND c.random_key < %(start)s", "c.random_key"),
]

# Expired leases go back to the pool as part of every claim: no scheduler needed.
SWEEP_CTES = """
dead AS (
    SELECT id FROM annotation_assignment
    WHERE state = 'leased' AND lease_expires_at <= %(now)s
    ORDER BY lease_expires_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), released AS (
    UPDATE annotation_assignment a SET state = 'expired', updated_at = %(now)s
    FROM dead WHERE a.id = dead.id AND a.state = 'leased'
    RETURNING a.comparison_id
), freed AS (
    UPDATE annotation_comparison c SET filled = c.filled - n.k
    FROM (SELECT comparison_id, count(*) AS k FROM released GROUP BY comparison_id) n
    WHERE c.id = n.comparison_id
    RETURNING c.id
)"""
EXPIRED_SWEEP_BATCH = 50

# Whether %(user)s annotates the campaign row {campaign}: listed among its annotators or in its annotator group.
# `next` serves only them; heartbeat, rating and undo check it too, so removing someone ends their leases' use.
ANNOTATES_SQL = """(
    EXISTS (SELECT 1 FROM annotation_campaign_annotators m WHERE m.campaign_id = {campaign}.id AND m.user_id = %(user)s)
    OR EXISTS (
        SELECT 1 FROM auth_user_groups g WHERE g.group_id = {campaign}.annotator_group_id AND g.user_id = %(user)s
    )
)"""

# The annotator's standing in a campaign they may annotate, locked: it serialises one annotator's claims.
# No row: no such campaign, or not theirs to annotate. A NULL rater or status: first visit (created elsewhere).
NEXT_CONTEXT_SQL = """
WITH rater AS (SELECT id FROM annotation_rater WHERE user_id = %(user)s),
standing AS (
    SELECT s.id, s.rated_count, s.paused FROM annotation_annotatorstatus s
    WHERE s.campaign_id = %(campaign)s AND s.rater_id = (SELECT id FROM rater)
    FOR UPDATE
)
SELECT c.status, c.ratings_per_comparison, c.quota_per_annotator, c.gold_rate, c.lease_seconds,
    (SELECT id FROM rater), st.id, st.rated_count, st.paused
FROM annotation_campaign c LEFT JOIN standing st ON true
WHERE c.id = %(campaign)s AND {annotates}
""".format(annotates=ANNOTATES_SQL.format(campaign="c"))

# Run after the standing is locked, so it sees every lease the annotator's other requests committed.
LIVE_LEASES_SQL = (
    "WITH "
    + SWEEP_CTES
    + """
SELECT a.id FROM annotation_assignment a JOIN annotation_comparison c ON c.id = a.comparison_id
WHERE a.rater_id = %(rater)s AND c.campaign_id = %(campaign)s AND a.state = 'leased'
  AND a.lease_expires_at > %(now)s
ORDER BY a.id
"""
)

RENEW_SQL = """
WITH renewed AS (
    UPDATE annotation_assignment SET lease_expires_at = %(expires)s, updated_at = %(now)s
    WHERE id = %(assignment)s AND state = 'leased'
    RETURNING id, comparison_id, left_output_id, lease_expires_at
)""" + SHOWN_SQL.format(source="renewed")

# Renew the user's own live lease, only while its campaign is active, they still annotate it and are not paused.
RENEW_OWN_SQL = """
WITH target AS (
    SELECT a.id, k.lease_seconds
    FROM annotation_assignment a
    JOIN annotation_rater r ON r.id = a.rater_id
    JOIN annotation_comparison c ON c.id = a.comparison_id
    JOIN annotation_campaign k ON k.id = c.campaign_id
    LEFT JOIN annotation_annotatorstatus s ON s.campaign_id = k.id AND s.rater_id = a.rater_id
    WHERE a.id = %(assignment)s AND r.user_id = %(user)s AND k.status = 'active' AND s.paused IS NOT TRUE
      AND {annotates}
)
UPDATE annotation_assignment a
SET lease_expires_at = %(now)s + make_interval(secs => t.lease_seconds), updated_at = %(now)s
FROM target t
WHERE a.id = t.id AND a.state = 'leased' AND a.lease_expires_at > %(now)s
RETURNING a.id, a.lease_expires_at
""".format(annotates=ANNOTATES_SQL.format(campaign="k"))

# Why the user may not act on an assignment: whether it is theirs, its campaign's status, whether they still
# annotate it and are paused there, and its lease (read when RENEW_OWN_SQL changed nothing, and by undo).
STANDING_SQL = """
SELECT k.status, {annotates}, s.paused IS TRUE, a.state = 'leased' AND a.lease_expires_at > %(now)s
FROM annotation_assignment a
JOIN annotation_rater r ON r.id = a.rater_id
JOIN annotation_comparison c ON c.id = a.comparison_id
JOIN annotation_campaign k ON k.id = c.campaign_id
LEFT JOIN annotation_annotatorstatus s ON s.campaign_id = k.id AND s.rater_id = a.rater_id
WHERE a.id = %(assignment)s AND r.user_id = %(user)s
""".format(annotates=ANNOTATES_SQL.format(campaign="k"))

END_LEASE_SQL = """
WITH ended AS (
    UPDATE annotation_assignment SET state = %(state)s, updated_at = %(now)s
    WHERE id = %(assignment)s AND state = 'leased'
    RETURNING comparison_id
)
UPDATE annotation_comparison c SET filled = c.filled - 1 FROM ended WHERE c.id = ended.comparison_id RETURNING c.id
"""

SHOW_SQL = "WITH shown AS (SELECT * FROM annotation_assignment WHERE id = %(assignment)s)" + SHOWN_SQL.format(
    source="shown"
)

# The user's own assignment with what a rating needs, the rater's standing locked, and whether they may still rate
# it (the campaign's status, whether they still annotate it).
RATING_CONTEXT_SQL = """
WITH target AS (
    SELECT a.id, a.rater_id, r.kind, a.left_output_id, a.comparison_id, c.campaign_id, c.output_a_id,
        c.output_b_id, c.gold_verdict, c.gold_winner_id
    FROM annotation_assignment a
    JOIN annotation_rater r ON r.id = a.rater_id
    JOIN annotation_comparison c ON c.id = a.comparison_id
    WHERE a.id = %(assignment)s AND r.user_id = %(user)s
), standing AS (
    SELECT s.id, s.rated_count, s.gold_answered, s.gold_correct, s.paused
    FROM annotation_annotatorstatus s JOIN target t ON s.campaign_id = t.campaign_id AND s.rater_id = t.rater_id
    FOR UPDATE OF s
)
SELECT t.id, t.rater_id, t.kind, t.left_output_id, t.comparison_id, t.campaign_id, t.output_a_id, t.output_b_id,
    t.gold_verdict, t.gold_winner_id, k.label_scheme, k.strength_levels, k.require_rationale,
    k.quota_per_annotator, k.gold_min_answered, k.gold_min_accuracy,
    st.id, st.rated_count, st.gold_answered, st.gold_correct, st.paused, k.status, {annotates}
FROM target t JOIN annotation_campaign k ON k.id = t.campaign_id LEFT JOIN standing st ON true
""".format(annotates=ANNOTATES_SQL.format(campaign="k"))

# Take the lease (only while it is live), store the rating and count it, in one statement.
RECORD_RATING_SQL = """
WITH taken AS (
    UPDATE annotation_assignment SET state = 'rated', updated_at = %(now)s
    WHERE id = %(assignment)s AND state = 'leased' AND lease_expires_at > %(now)s
    RETURNING id
), rating AS (
    INSERT INTO annotation_rating (comparison_id, rater_id, rater_kind, source, assignment_id, verdict, winner_id,
        left_output_id, strength, rationale, time_ms, metadata, created_at)
    SELECT %(comparison)s, %(rater)s, %(rater_kind)s::text, 'annotator', id, %(verdict)s::text, %(winner)s::bigint,
        %(left)s, %(strength)s::smallint, %(rationale)s::text, %(time_ms)s::integer, %(metadata)s::jsonb, %(now)s
    FROM taken
    RETURNING id
)
UPDATE annotation_annotatorstatus
SET rated_count = rated_count + 1, gold_answered = gold_answered + %(gold)s, gold_correct = gold_correct + %(correct)s,
    updated_at = %(now)s
WHERE id = %(status)s AND EXISTS (SELECT 1 FROM rating)
RETURNING (SELECT id FROM rating), rated_count, gold_answered, gold_correct
"""


@dataclass(frozen=True)
class Text:
    """A markdown text with its sanitised HTML."""

    text: str
    html: str


@dataclass(frozen=True)
class Shown:
    """What an annotator sees of a leased comparison: no model name, output id or comparison id."""

    assignment_id: int
    lease_expires_at: datetime
    prompt: Text
    left: Text
    right: Text


def shown_from_row(row: Sequence[Any] | None) -> Shown | None:
    """Return what a SHOWN_SQL row shows, rendering and storing any HTML not stored yet."""
    if row is None:
        return None
    assignment_id, expires, prompt_id, prompt, prompt_html, *outputs = row
    if prompt_html is None:
        [(_, _, prompt_html)] = rendered([(prompt_id, prompt)])
        store_html("annotation_prompt", [(prompt_id, prompt, prompt_html)])
    left_id, left, left_html, right_id, right, right_html = outputs
    missing = [
        (pk, text) for pk, text, html in ((left_id, left, left_html), (right_id, right, right_html)) if html is None
    ]
    if missing:
        fresh = rendered(missing)
        store_html("annotation_output", fresh)
        htmls = {pk: html for pk, _, html in fresh}
        left_html = htmls.get(left_id, left_html)
        right_html = htmls.get(right_id, right_html)
    return Shown(assignment_id, expires, Text(prompt, prompt_html), Text(left, left_html), Text(right, right_html))


@dataclass(frozen=True)
class ClaimRequest:
    """What a claim function needs: ids and the lease to write, no model instances."""

    campaign_id: int
    rater_id: int
    required: int
    gold: bool
    now: datetime
    expires: datetime
    left_is_a: bool
    start: float


def claim_arms(*, required: int, gold: bool) -> list[tuple[str, str]]:
    """Return the claim's arms as (condition, order): fullest unfinished level first, down to level 0."""
    if gold:
        return GOLD_ARMS
    arms = []
    for level in range(required - 1, -1, -1):
        # A comparison holding a slot was given to someone (a constraint keeps last_claimed_by set when filled > 0).
        ranges = FRESH_ARMS + OTHERS_ARMS if level == 0 else OTHERS_ARMS
        arms += [(LEVEL_CONDITION.format(level=level) + condition, order) for condition, order in ranges]
    return arms


@functools.cache
def claim_sql(*, required: int, gold: bool) -> str:
    """Return the claim statement for a campaign requiring `required` ratings per comparison (or its gold one).

    Its whitespace is collapsed (the statements contain no string literal with more than one space): psycopg
    remembers how it parsed a statement only when it is at most 4,096 bytes long, and re-parses a longer one on
    every execution, which cost about a third of a millisecond of Python per claim. Three ratings per comparison
    fit (about 4,000 bytes); more still work, parsed each time.
    """
    arms = claim_arms(required=required, gold=gold)
    sql = CLAIM_SQL.format(
        arms=",".join(ARM_SQL.format(n=n, condition=c, order=o) for n, (c, o) in enumerate(arms)),
        union=" UNION ALL ".join(f"SELECT * FROM arm{n}" for n in range(len(arms))),
    )
    return " ".join(sql.split())


def claim_params(request: ClaimRequest) -> dict[str, Any]:
    """Return the parameters of the claim statement for `request`."""
    return {
        "campaign": request.campaign_id,
        "rater": request.rater_id,
        "start": request.start,
        "left_is_a": request.left_is_a,
        "expires": request.expires,
        "now": request.now,
    }


# Whether some regular comparison still has a slot for the rater, whoever holds a row lock on it right now.
OPEN_TO_RATER_SQL = """
SELECT EXISTS (
    SELECT 1 FROM annotation_comparison c
    WHERE c.campaign_id = %(campaign)s AND c.gold_verdict IS NULL AND c.filled < %(required)s
      AND NOT EXISTS (SELECT 1 FROM annotation_assignment a WHERE a.comparison_id = c.id AND a.rater_id = %(rater)s)
)
"""


def open_to_rater(*, campaign_id: int, rater_id: int, required: int) -> bool:
    """Return whether a regular comparison still has a slot the rater may take, locked by a claim or not."""
    with prepared_cursor() as cursor:
        cursor.execute(OPEN_TO_RATER_SQL, {"campaign": campaign_id, "rater": rater_id, "required": required})
        return bool(cursor.fetchone()[0])


def claim_comparison(request: ClaimRequest) -> Shown | None:
    """Lease one comparison to the rater in one statement; return what they are shown, or None."""
    with prepared_cursor() as cursor:
        cursor.execute(claim_sql(required=request.required, gold=request.gold), claim_params(request))
        return shown_from_row(cursor.fetchone())


@dataclass(frozen=True)
class NextContext:
    """A campaign's claim settings and, locked, the annotator's standing in it."""

    status: str
    required: int
    quota: int | None
    gold_rate: float
    lease_seconds: int
    rater_id: int | None
    status_id: int | None
    rated_count: int
    paused: bool


def lock_next_context(*, user_id: int, campaign_id: int) -> NextContext | None:
    """Return the campaign's settings with the annotator's standing locked; None if they may not annotate it.

    Call inside a transaction: the lock on the standing is held until it ends.
    """
    with prepared_cursor() as cursor:
        cursor.execute(NEXT_CONTEXT_SQL, {"user": user_id, "campaign": campaign_id})
        row = cursor.fetchone()
    if row is None:
        return None
    status, required, quota, gold_rate, lease_seconds, rater_id, status_id, rated_count, paused = row
    return NextContext(
        status, required, quota, gold_rate, lease_seconds, rater_id, status_id, rated_count or 0, bool(paused)
    )


def live_lease_ids(*, rater_id: int, campaign_id: int, now: datetime) -> list[int]:
    """Return the rater's unexpired leases in the campaign, oldest first, returning expired leases to the pool."""
    params: dict[str, Any] = {"rater": rater_id, "campaign": campaign_id, "now": now, "limit": EXPIRED_SWEEP_BATCH}
    with prepared_cursor() as cursor:
        cursor.execute(LIVE_LEASES_SQL, params)
        return [row[0] for row in cursor.fetchall()]


def renew(*, assignment_id: int, expires: datetime, now: datetime) -> Shown | None:
    """Extend a lease to `expires` and return what it shows; None if it is no longer leased."""
    with prepared_cursor() as cursor:
        cursor.execute(RENEW_SQL, {"assignment": assignment_id, "expires": expires, "now": now})
        return shown_from_row(cursor.fetchone())


def renew_own(*, user_id: int, assignment_id: int, now: datetime) -> tuple[int, datetime] | None:
    """Extend the user's live lease by its campaign's lease time; None if it is not theirs to renew (see standing)."""
    with prepared_cursor() as cursor:
        cursor.execute(RENEW_OWN_SQL, {"user": user_id, "assignment": assignment_id, "now": now})
        row = cursor.fetchone()
    return None if row is None else (row[0], row[1])


@dataclass(frozen=True)
class Standing:
    """What decides whether a user may still act on their assignment."""

    campaign_status: str
    annotates: bool
    paused: bool
    live: bool


def standing(*, user_id: int, assignment_id: int, now: datetime) -> Standing | None:
    """Return the user's standing towards their assignment; None if it is not theirs."""
    with prepared_cursor() as cursor:
        cursor.execute(STANDING_SQL, {"user": user_id, "assignment": assignment_id, "now": now})
        row = cursor.fetchone()
    return None if row is None else Standing(*row)


def end_lease(*, assignment_id: int, state: str, now: datetime) -> bool:
    """Move a leased assignment to `state` and free its slot; False if it was no longer leased."""
    with prepared_cursor() as cursor:
        cursor.execute(END_LEASE_SQL, {"assignment": assignment_id, "state": state, "now": now})
        return cursor.fetchone() is not None


def show(assignment_id: int) -> Shown:
    """Return what an assignment shows its annotator."""
    with prepared_cursor() as cursor:
        cursor.execute(SHOW_SQL, {"assignment": assignment_id})
        shown = shown_from_row(cursor.fetchone())
    assert shown is not None, f"assignment {assignment_id} does not exist"
    return shown


@dataclass(frozen=True)
class RatingContext:
    """An assignment with its comparison, its campaign's rules, and the rater's standing (locked)."""

    assignment_id: int
    rater_id: int
    rater_kind: str
    left_output_id: int
    comparison_id: int
    campaign_id: int
    output_a_id: int
    output_b_id: int
    gold_verdict: str | None
    gold_winner_id: int | None
    label_scheme: str
    strength_levels: int
    require_rationale: bool
    quota: int | None
    gold_min_answered: int
    gold_min_accuracy: float
    status_id: int | None
    rated_count: int | None
    gold_answered: int | None
    gold_correct: int | None
    paused: bool | None
    campaign_status: str
    annotates: bool

    @property
    def right_output_id(self) -> int:
        return self.output_b_id if self.left_output_id == self.output_a_id else self.output_a_id


def lock_rating_context(*, user_id: int, assignment_id: int) -> RatingContext | None:
    """Return the user's own assignment with the rater's standing locked; None if it is not theirs.

    Call inside a transaction: the lock on the standing is held until it ends.
    """
    with prepared_cursor() as cursor:
        cursor.execute(RATING_CONTEXT_SQL, {"user": user_id, "assignment": assignment_id})
        row = cursor.fetchone()
    return None if row is None else RatingContext(*row)


@dataclass(frozen=True)
class RecordedRating:
    rating_id: int
    rated_count: int
    gold_answered: int
    gold_correct: int


def record_rating(params: dict[str, Any]) -> RecordedRating | None:
    """Take a live lease, store its rating and count it on the standing; None if the lease was not live."""
    with prepared_cursor() as cursor:
        cursor.execute(RECORD_RATING_SQL, params)
        row = cursor.fetchone()
    return None if row is None else RecordedRating(*row)
