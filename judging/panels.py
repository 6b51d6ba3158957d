"""Judge panels: several judge configurations rating as one rater (issue 17).

A panel run starts one run per member judge (``services.start_run``: the members' own verdicts, limits, retries and
call cache) and finishes once none of them is running: then, for each comparison and order that more than half of
the members judged, it writes the panel's verdict (the strict majority of the members' outcomes, a tie when there
is none) as a rating of the panel's judge rater, with the members' tokens and cost on that verdict summed.

Waiting is a finishing step that is safe to run any number of times (the panel run's row is locked and its status
moved by a conditional update; the panel's verdicts are unique per comparison and order): a Celery task
``judging.finish_panel_run`` polls it (``acks_late``: a worker that dies mid-poll leaves the message to another),
``manage.py judge --panel NAME --wait`` runs it itself, and ``resume_panel_run`` starts the polling again.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction
from django.db.models import Q, QuerySet, Sum

from annotation.models import Campaign, Comparison, Rater, Rating, Verdict
from evalplatform.exceptions import Conflict, DomainError
from judging import prompts, services
from judging.access import may_use_judge
from judging.models import JudgeConfig, JudgePanel, JudgeRun, JudgeVerdict, PanelRun, PanelVerdict
from results.tasks import schedule_refresh

User = AbstractBaseUser | AnonymousUser
MIN_MEMBERS, MAX_MEMBERS = 2, 15
POLL_SECONDS = 5.0  # between the finishing task's looks at the member runs
OUTCOMES = ("A", "B", "tie", "both_bad")
VERDICTS = {"A": Verdict.WIN, "B": Verdict.WIN, "tie": Verdict.TIE, "both_bad": Verdict.BOTH_BAD}
ACTIVE = (JudgeRun.Status.QUEUED, JudgeRun.Status.RUNNING)


# --- panels ----------------------------------------------------------------------------------------------------


def is_superuser(user: User | None) -> bool:
    return bool(user is not None and user.is_authenticated and getattr(user, "is_superuser", False))


def usable_panels(user: User) -> QuerySet[JudgePanel]:
    """Return the panels the user may see and run: their own and the operator's (all for superusers)."""
    panels = JudgePanel.objects.select_related("owner").prefetch_related("members").order_by("name")
    if is_superuser(user):
        return panels
    if not user.is_authenticated:
        return panels.none()
    return panels.filter(Q(owner__isnull=True) | Q(owner_id=user.pk))


def access_usable_panel(*, user: User, name: str) -> JudgePanel:
    """Return the panel with this name if the user may run it; raise DomainError on the panel field if not."""
    panel = usable_panels(user).filter(name=name).first()
    if panel is None:
        raise DomainError(f"panel: no judge panel named {name!r} that you may use", field="panel")
    return panel


def may_use_panel(user: User | None, panel: JudgePanel) -> bool:
    """Return whether the user may run the panel (None: the operator, who may run any)."""
    return user is None or is_superuser(user) or panel.owner_id is None or panel.owner_id == user.pk


def may_change_panel(user: User, panel: JudgePanel) -> bool:
    """Return whether the user may change or delete the panel: its owner, or a superuser."""
    return is_superuser(user) or (panel.owner_id is not None and panel.owner_id == user.pk)


def check_panel(*, name: str, owner: Any, members: Sequence[JudgeConfig], aggregation: str) -> None:
    """Raise DomainError naming the field when a panel with these settings cannot work or may not be made.

    A panel has 2 to 15 distinct members, each a judge its owner may use (an operator's panel only the operator's
    judges, so that every researcher may run it); mean_probability needs members whose template yields one (the
    probability template, or a custom one with the probability verdict format).
    """
    if not name.strip():
        raise DomainError("name: must not be empty", field="name")
    if aggregation not in JudgePanel.Aggregation.values:
        choices = ", ".join(JudgePanel.Aggregation.values)
        raise DomainError(f"aggregation: must be one of {choices}, not {aggregation!r}", field="aggregation")
    if len({m.pk for m in members}) != len(members):
        raise DomainError("members: a judge is listed twice", field="members")
    if not MIN_MEMBERS <= len(members) <= MAX_MEMBERS:
        raise DomainError(
            f"members: a panel has {MIN_MEMBERS} to {MAX_MEMBERS} judges, not {len(members)}", field="members"
        )
    foreign = [m.name for m in members if (m.owner_id is not None if owner is None else not may_use_judge(owner, m))]
    if foreign:
        whose = "the operator's judges only" if owner is None else "judges its owner may use"
        raise DomainError(f"members: a panel holds {whose}; not {', '.join(sorted(foreign))}", field="members")
    if aggregation == JudgePanel.Aggregation.MEAN_PROBABILITY:
        without = sorted(
            f"{m.name} ({m.template})"
            for m in members
            if not prompts.yields_probability(template=m.template, verdict_format=m.verdict_format)
        )
        if without:
            raise DomainError(
                "aggregation: mean_probability needs a probability from every member's template, and none comes "
                f"from {', '.join(without)} (templates that yield one: probability, or custom with verdict_format "
                "probability); use majority",
                field="aggregation",
            )


@transaction.atomic
def create_panel(
    *, name: str, members: Sequence[JudgeConfig], owner: Any = None, aggregation: str = JudgePanel.Aggregation.MAJORITY
) -> JudgePanel:
    """Create a panel owned by ``owner`` (None: the operator's) with its judge Rater."""
    check_panel(name=name, owner=owner, members=members, aggregation=aggregation)
    if Rater.objects.filter(name=name).exists():
        raise Conflict(f"name: a rater (judge, panel or human) is already called {name!r}", field="name")
    rater = Rater.objects.create(name=name, kind=Rater.Kind.JUDGE)
    panel = JudgePanel.objects.create(name=name, owner=owner, rater=rater, aggregation=aggregation)
    panel.members.set(members)
    return panel


@transaction.atomic
def update_panel(
    *, panel: JudgePanel, members: Sequence[JudgeConfig] | None = None, aggregation: str | None = None
) -> JudgePanel:
    """Change a panel's members or aggregation (its verdicts already written stay as they were)."""
    members = list(panel.members.all()) if members is None else list(members)
    aggregation = aggregation or panel.aggregation
    check_panel(name=panel.name, owner=panel.owner, members=members, aggregation=aggregation)
    panel.aggregation = aggregation
    panel.save(update_fields=["aggregation", "updated_at"])
    panel.members.set(members)
    return panel


# --- panel runs ------------------------------------------------------------------------------------------------


@transaction.atomic
def start_panel_run(
    *,
    campaign: Campaign,
    panel: JudgePanel,
    limit: int | None = None,
    orders: str | None = None,
    requested_by: Any = None,
) -> PanelRun:
    """Start one run per member over the campaign's comparisons and the polling that finishes the panel run.

    The members' runs are ordinary judge runs (what a member already judged is kept, not paid for again). A panel
    the user may not run is refused like another team's judge.
    """
    members = check_panel_run(campaign=campaign, panel=panel, limit=limit, orders=orders, user=requested_by)
    run = PanelRun.objects.create(
        panel=panel, campaign=campaign, limit=limit, orders=orders or "", requested_by=requested_by
    )
    for judge in members:
        member_run = services.start_run(
            campaign=campaign, judge=judge, limit=limit, orders=orders, requested_by=requested_by
        )
        run.member_runs.add(member_run)
    poll_on_commit(run.pk)
    return run


def check_panel_run(
    *, campaign: Campaign, panel: JudgePanel, limit: int | None = None, orders: str | None = None, user: Any = None
) -> list[JudgeConfig]:
    """Return the panel's members, raising DomainError unless the user may run the panel and every member's run
    can start (``services.check_run``)."""
    if not may_use_panel(user, panel):
        raise DomainError(f"panel: no judge panel named {panel.name!r} that you may use", field="panel")
    members = list(panel.members.order_by("name"))
    if len(members) < MIN_MEMBERS:
        raise DomainError(f"panel: {panel.name} has {len(members)} member(s), fewer than {MIN_MEMBERS}", field="panel")
    for judge in members:
        services.check_run(campaign=campaign, judge=judge, limit=limit, orders=orders, user=user)
    return members


def poll_on_commit(run_id: int, *, countdown: float = POLL_SECONDS) -> None:
    """Send the finishing task once the transaction commits."""
    transaction.on_commit(lambda: send_poll(run_id, countdown=countdown))


def send_poll(run_id: int, *, countdown: float = POLL_SECONDS) -> None:
    """Send the task that finishes the panel run once its members' runs have ended."""
    from judging.tasks import finish_panel_run  # the tasks module imports this one

    finish_panel_run.apply_async((run_id,), countdown=countdown)


@transaction.atomic
def cancel_panel_run(*, run: PanelRun) -> PanelRun:
    """Cancel the panel run and its members' runs still going (calls in flight finish)."""
    if not PanelRun.objects.filter(pk=run.pk, status=PanelRun.Status.RUNNING).update(
        status=PanelRun.Status.CANCELLED, finished_at=services.now()
    ):
        run.refresh_from_db()
        raise Conflict(f"panel run #{run.pk} is {run.get_status_display().lower()}, not running")
    for member_run in run.member_runs.filter(status__in=ACTIVE):
        services.cancel_run(run=member_run)
    run.refresh_from_db()
    return run


@transaction.atomic
def resume_panel_run(*, run: PanelRun, retry_failed: bool = False) -> PanelRun:
    """Run a cancelled or stalled panel run again: resume its members' runs that have work left, poll again."""
    locked = PanelRun.objects.select_for_update().get(pk=run.pk)
    if locked.status not in (PanelRun.Status.RUNNING, PanelRun.Status.CANCELLED):
        raise Conflict(f"panel run #{run.pk} is {locked.get_status_display().lower()}; start a new one")
    for member_run in run.member_runs.all():
        try:
            services.resume_run(run=member_run, retry_failed=retry_failed)
        except Conflict:  # nothing left to judge in this member's run
            continue
    PanelRun.objects.filter(pk=run.pk).update(status=PanelRun.Status.RUNNING, finished_at=None, error="")
    poll_on_commit(run.pk, countdown=0.0)
    run.refresh_from_db()
    return run


def members_running(run: PanelRun) -> bool:
    """Return whether a member's run is still queued or running."""
    return run.member_runs.filter(status__in=ACTIVE).exists()


def finish_panel_run_if_done(*, run_id: int) -> bool:
    """Write the panel's verdicts and end the run once no member run is going; return whether it ended now.

    Member runs whose last verdicts are in but not yet marked are finished first (their finishing step is safe to
    repeat). A member run cancelled by itself cancels the panel run (resume it to go on).
    """
    run = PanelRun.objects.select_related("panel", "campaign").get(pk=run_id)
    if run.status != PanelRun.Status.RUNNING:
        return False
    for member_id in run.member_runs.filter(status=JudgeRun.Status.RUNNING).values_list("pk", flat=True):
        services.finish_run_if_done(run_id=member_id)
    if members_running(run):
        return False
    return write_panel_verdicts(run_id=run_id)


@transaction.atomic
def write_panel_verdicts(*, run_id: int) -> bool:
    """Aggregate the members' verdicts into the panel's ratings and end the run (once: the row is locked)."""
    run = PanelRun.objects.select_for_update().select_related("panel", "campaign").get(pk=run_id)
    if run.status != PanelRun.Status.RUNNING or members_running(run):
        return False
    cancelled = list(run.member_runs.filter(status=JudgeRun.Status.CANCELLED).values_list("pk", flat=True))
    if cancelled:
        error = f"member run(s) {', '.join(f'#{i}' for i in cancelled)} cancelled; resume the panel run to go on"
        PanelRun.objects.filter(pk=run.pk).update(status=PanelRun.Status.CANCELLED, error=error)
        return True
    tally = aggregate(run)
    written = store(run, tally)
    status, error = PanelRun.Status.COMPLETED, ""
    if not written and not tally.kept:
        status = PanelRun.Status.FAILED
        error = f"no comparison was judged by more than half of the {tally.n_members} members"
    totals = PanelVerdict.objects.filter(run=run).aggregate(
        tokens_in=Sum("tokens_in"), tokens_out=Sum("tokens_out"), cost=Sum("cost")
    )
    PanelRun.objects.filter(pk=run.pk).update(
        status=status, error=error, finished_at=services.now(), n_verdicts=written,
        tokens_in=totals["tokens_in"] or 0, tokens_out=totals["tokens_out"] or 0, cost=totals["cost"] or Decimal(0),
    )  # fmt: skip
    if written:
        campaign_id = run.campaign_id
        transaction.on_commit(lambda: schedule_refresh(campaign_id))
    return True


# --- aggregation -----------------------------------------------------------------------------------------------


@dataclass
class Ballot:
    """The members' verdicts on one comparison in one order."""

    votes: dict[str, str] = field(default_factory=dict)
    probabilities: dict[str, float] = field(default_factory=dict)
    tokens_in: int = 0
    tokens_out: int = 0
    cost: Decimal = Decimal(0)


@dataclass
class Tally:
    """The panel's ballots of a run, and how many comparisons and orders it already had a verdict for."""

    n_members: int
    ballots: dict[tuple[int, str], Ballot]
    kept: int = 0
    aggregation: str = JudgePanel.Aggregation.MAJORITY


def majority(votes: Iterable[str], *, n_members: int) -> str | None:
    """Return the panel's outcome: the one more than half of the votes chose, else "tie"; None (no verdict) when
    half of the members or fewer voted."""
    counts = Counter(votes)
    n = sum(counts.values())
    if 2 * n <= n_members:
        return None
    outcome, top = counts.most_common(1)[0]
    return outcome if 2 * top > n else "tie"


def mean_probability(probabilities: Iterable[float], *, n_members: int) -> tuple[str, float] | None:
    """Return the panel's outcome and the mean of the members' P(first is better), the outcome by the probability
    template's band (``prompts.probability_outcome``); None (no verdict) when half of the members or fewer gave one."""
    given = list(probabilities)
    if 2 * len(given) <= n_members:
        return None
    mean = sum(given) / len(given)
    return prompts.probability_outcome(mean), mean


def decide(ballot: Ballot, tally: Tally) -> tuple[str, float | None] | None:
    """Return the panel's outcome on a ballot by its aggregation (with the mean probability), or None."""
    if tally.aggregation == JudgePanel.Aggregation.MEAN_PROBABILITY:
        return mean_probability(ballot.probabilities.values(), n_members=tally.n_members)
    outcome = majority(ballot.votes.values(), n_members=tally.n_members)
    return None if outcome is None else (outcome, None)


def panel_comparisons(run: PanelRun) -> QuerySet[Comparison, Any]:
    """Return the comparisons the run's members judge, the first ``limit`` in sampling order, as a subquery (a
    campaign's ids are not sent back and forth)."""
    selected = Comparison.objects.filter(campaign=run.campaign).order_by("random_key", "id")
    return (selected[: run.limit] if run.limit else selected).values("pk")


def aggregate(run: PanelRun) -> Tally:
    """Return the members' judged verdicts (their ratings, repeat 0) on the run's comparisons, by comparison and
    order, leaving out those the panel already has a verdict for."""
    members = list(run.panel.members.values_list("pk", "name"))
    names = dict(members)
    comparisons = panel_comparisons(run)
    done = set(
        PanelVerdict.objects.filter(panel=run.panel, comparison_id__in=comparisons).values_list(
            "comparison_id", "order"
        )
    )
    ballots: dict[tuple[int, str], Ballot] = defaultdict(Ballot)
    verdicts = JudgeVerdict.objects.filter(
        judge_id__in=names, comparison_id__in=comparisons, repeat=0, state=JudgeVerdict.State.DONE
    ).values_list("judge_id", "comparison_id", "order", "parsed", "probability", "tokens_in", "tokens_out", "cost")
    for judge_id, comparison_id, order, parsed, probability, tokens_in, tokens_out, cost in verdicts.iterator(
        chunk_size=2000
    ):
        if (comparison_id, order) in done or not isinstance(parsed, dict) or parsed.get("outcome") not in OUTCOMES:
            continue
        ballot = ballots[(comparison_id, order)]
        ballot.votes[names[judge_id]] = parsed["outcome"]
        if probability is not None:
            ballot.probabilities[names[judge_id]] = probability
        ballot.tokens_in += tokens_in
        ballot.tokens_out += tokens_out
        ballot.cost += cost
    return Tally(n_members=len(members), ballots=dict(ballots), kept=len(done), aggregation=run.panel.aggregation)


def store(run: PanelRun, tally: Tally) -> int:
    """Write the panel's verdicts and their ratings; return how many."""
    decided = {key: (result, ballot) for key, ballot in tally.ballots.items() if (result := decide(ballot, tally))}
    if not decided:
        return 0
    pairs = Comparison.objects.filter(pk__in={c for c, _ in decided}).values_list("pk", "output_a_id", "output_b_id")
    outputs = {pk: (a, b) for pk, a, b in pairs}
    current = services.now()
    ratings, verdicts = [], []
    for (comparison_id, order), ((outcome, probability), ballot) in sorted(decided.items()):
        a, b = outputs[comparison_id]
        metadata = {"panel_run": run.pk, "order": order, "votes": ballot.votes}
        if probability is not None:
            metadata |= {"probability": probability, "probabilities": ballot.probabilities}
        first, second = (a, b) if order == JudgeVerdict.Order.AB else (b, a)
        ratings.append(
            Rating(
                comparison_id=comparison_id, rater_id=run.panel.rater_id, rater_kind=Rater.Kind.JUDGE,
                source=Rating.Source.JUDGE, verdict=VERDICTS[outcome],
                winner_id={"A": first, "B": second}.get(outcome), left_output_id=first, created_at=current,
                metadata=metadata,
            )
        )  # fmt: skip
        verdicts.append(
            PanelVerdict(
                panel=run.panel, run=run, comparison_id=comparison_id, order=order, outcome=outcome,
                votes=ballot.votes, probability=probability, tokens_in=ballot.tokens_in,
                tokens_out=ballot.tokens_out, cost=ballot.cost,
            )
        )  # fmt: skip
    for rating, verdict in zip(Rating.objects.bulk_create(ratings, batch_size=2000), verdicts, strict=True):
        verdict.rating = rating
    PanelVerdict.objects.bulk_create(verdicts, batch_size=2000)
    return len(verdicts)


# --- progress --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PanelProgress:
    """A panel run's members' progress summed, and the panel's verdicts once written."""

    status: str
    members: list[dict[str, Any]]
    total: int
    finished: int
    tokens_in: int
    tokens_out: int
    cost: Decimal
    n_verdicts: int


def panel_progress(run: PanelRun) -> PanelProgress:
    """Return the panel run's progress: each member run's, their sums, and the panel's verdicts."""
    from judging.selectors import run_progress

    members: list[dict[str, Any]] = []
    for member_run in run.member_runs.select_related("judge").order_by("judge__name"):
        progress = run_progress(member_run)
        members.append(
            {
                "run": member_run.pk, "judge": member_run.judge.name, "status": member_run.status,
                "total": progress.total, "finished": progress.finished, "done": progress.done,
                "failed": progress.failed, "tokens_in": progress.tokens_in, "tokens_out": progress.tokens_out,
                "cost": progress.cost,
            }
        )  # fmt: skip
    return PanelProgress(
        status=run.status,
        members=members,
        total=sum(m["total"] for m in members),
        finished=sum(m["finished"] for m in members),
        tokens_in=sum(m["tokens_in"] for m in members),
        tokens_out=sum(m["tokens_out"] for m in members),
        cost=sum((Decimal(m["cost"]) for m in members), Decimal(0)),
        n_verdicts=run.n_verdicts,
    )
