"""Read models for annotators (what a leased comparison looks like to them and how far along they are) and, for
researchers, how far along a campaign is.

Nothing here carries a model name or an output id: an annotator sees an assignment id, texts and sides.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import User as Account
from django.db import connection
from django.db.models import Q

from annotation.access import User, annotatable_campaigns
from annotation.engine import Shown, Text
from annotation.models import AnnotatorStatus, Assignment, Campaign, Comparison, Output, Rater
from annotation.rendering import render_markdown

Side = Text  # one text shown, as markdown and as its stored sanitised HTML


@dataclass(frozen=True)
class Progress:
    done: int
    quota: int | None
    remaining: int | None
    paused: bool

    @classmethod
    def of(cls, *, done: int, quota: int | None, paused: bool) -> Progress:
        """Return the progress of an annotator with `done` ratings under `quota` (None: no limit)."""
        remaining = None if quota is None else max(quota - done, 0)
        return cls(done=done, quota=quota, remaining=remaining, paused=paused)


@dataclass(frozen=True)
class AssignmentView:
    assignment: int
    prompt: Side
    left: Side
    right: Side
    lease_expires: datetime
    progress: Progress


def assignment_view(shown: Shown, *, progress: Progress) -> AssignmentView:
    """Return the blind view of a leased comparison: prompt, left and right texts (raw and rendered)."""
    return AssignmentView(
        assignment=shown.assignment_id,
        prompt=shown.prompt,
        left=shown.left,
        right=shown.right,
        lease_expires=shown.lease_expires_at,
        progress=progress,
    )


def progress_of(*, campaign: Campaign, rater: Rater | None) -> Progress:
    """Return ratings given, the quota and what is left to do (None when there is no quota)."""
    status = AnnotatorStatus.objects.filter(campaign=campaign, rater=rater).first() if rater else None
    done = status.rated_count if status else 0
    return Progress.of(done=done, quota=campaign.quota_per_annotator, paused=bool(status and status.paused))


def rater_of(user: User) -> Rater | None:
    """Return the user's human rater, or None before their first claim (or for an anonymous user)."""
    return Rater.objects.filter(user_id=user.pk).first() if user.is_authenticated else None


def user_progress(*, campaign: Campaign, user: User) -> Progress:
    """Return the user's progress in the campaign as an annotator."""
    return progress_of(campaign=campaign, rater=rater_of(user))


def open_comparison_count(campaign: Campaign) -> int:
    """Return how many regular comparisons still have a free slot (an upper bound on an annotator's work)."""
    return Comparison.objects.filter(
        campaign=campaign, gold_verdict__isnull=True, filled__lt=campaign.ratings_per_comparison
    ).count()


def comparison_count(campaign: Campaign) -> int:
    """Return how many comparisons the campaign has, gold included: the most one annotator may rate in it."""
    return Comparison.objects.filter(campaign=campaign).count()


def open_to_rater_count(*, campaign: Campaign, rater: Rater) -> int:
    """Return how many comparisons the rater may still rate: the leases they hold, and the regular comparisons with
    a free slot they were never given (the claim's own condition, engine.OPEN_TO_RATER_SQL)."""
    held = Assignment.objects.filter(comparison__campaign=campaign, rater=rater, state=Assignment.State.LEASED)
    never_given = Comparison.objects.filter(
        campaign=campaign, gold_verdict__isnull=True, filled__lt=campaign.ratings_per_comparison
    ).exclude(assignments__rater=rater)
    return held.count() + never_given.count()


@dataclass(frozen=True)
class CampaignCard:
    id: int
    name: str
    status: str
    instructions_html: str
    progress: Progress
    available: int


def my_campaigns(user: User) -> list[CampaignCard]:
    """Return the active campaigns the user annotates, with their progress and how much work is open."""
    rater = rater_of(user)
    campaigns = annotatable_campaigns(user).filter(status=Campaign.Status.ACTIVE).order_by("name")
    cards = []
    for campaign in campaigns:
        progress = progress_of(campaign=campaign, rater=rater)
        if rater is None:
            available = open_comparison_count(campaign)
        else:
            available = open_to_rater_count(campaign=campaign, rater=rater)
        if progress.remaining is not None:
            available = min(available, progress.remaining)
        cards.append(
            CampaignCard(
                id=campaign.pk,
                name=campaign.name,
                status=campaign.status,
                instructions_html=render_markdown(campaign.instructions),
                progress=progress,
                available=0 if progress.paused else available,
            )
        )
    return cards


@dataclass(frozen=True)
class CampaignProgress:
    """How far the annotators are with a campaign's regular (non-gold) comparisons, for researchers."""

    comparisons: int  # regular comparisons
    required: int  # ratings each needs
    rated: int  # annotator ratings of them
    complete: int  # comparisons with all their ratings
    leased: int  # live leases: ratings on their way
    annotators: int  # annotators who rated at least once (gold included)
    paused: int  # annotators paused for gold accuracy

    @property
    def needed(self) -> int:
        return self.comparisons * self.required

    def __str__(self) -> str:
        share = f" ({self.rated / self.needed:.0%})" if self.needed else ""
        return (
            f"{self.rated:,} of {self.needed:,} ratings{share}; {self.complete:,} of {self.comparisons:,} comparisons "
            f"complete; {self.leased:,} on their way; {_plural(self.annotators, 'annotator')} rated, "
            f"{self.paused:,} paused"
        )


def _plural(n: int, noun: str) -> str:
    """Return ``1 annotator``, ``2 annotators``."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


CAMPAIGN_PROGRESS_SQL = """
WITH regular AS (
    SELECT id FROM annotation_comparison WHERE campaign_id = %(campaign)s AND gold_verdict IS NULL
), per_comparison AS (
    SELECT r.comparison_id, count(*) AS n
    FROM annotation_rating r JOIN regular c ON c.id = r.comparison_id
    WHERE r.source = 'annotator'
    GROUP BY r.comparison_id
)
SELECT (SELECT count(*) FROM regular),
    (SELECT coalesce(sum(n), 0) FROM per_comparison),
    (SELECT count(*) FROM per_comparison WHERE n >= %(required)s),
    (SELECT count(*) FROM annotation_assignment a JOIN regular c ON c.id = a.comparison_id
     WHERE a.state = 'leased' AND a.lease_expires_at > now()),
    (SELECT count(*) FROM annotation_annotatorstatus WHERE campaign_id = %(campaign)s AND rated_count > 0),
    (SELECT count(*) FROM annotation_annotatorstatus WHERE campaign_id = %(campaign)s AND paused)
"""


def campaign_progress(campaign: Campaign) -> CampaignProgress:
    """Return the campaign's annotation progress (one statement)."""
    with connection.cursor() as cursor:
        cursor.execute(CAMPAIGN_PROGRESS_SQL, {"campaign": campaign.pk, "required": campaign.ratings_per_comparison})
        comparisons, rated, complete, leased, annotators, paused = cursor.fetchone()
    return CampaignProgress(
        comparisons=comparisons,
        required=campaign.ratings_per_comparison,
        rated=int(rated),
        complete=complete,
        leased=leased,
        annotators=annotators,
        paused=paused,
    )


def campaign_model_names(campaign: Campaign) -> list[str]:
    """Return the names of the models with outputs in the campaign, sorted."""
    names = Output.objects.filter(prompt__campaign=campaign).values_list("model_name", flat=True).distinct()
    return sorted(name for name in names.order_by() if name)


def annotator_count(campaign: Campaign) -> int:
    """Return how many active accounts may annotate the campaign (listed, or members of its annotator group)."""
    may = Q(annotation_campaigns=campaign)
    if campaign.annotator_group_id is not None:
        may |= Q(groups=campaign.annotator_group_id)
    return Account.objects.filter(may, is_active=True).distinct().count()


def campaign_warnings(campaign: Campaign) -> list[str]:
    """Return why the campaign's annotation cannot finish or check its annotators, in words for its researchers."""
    warnings = []
    annotators, required = annotator_count(campaign), campaign.ratings_per_comparison
    if required > annotators:
        warnings.append(
            f"Each comparison needs {_plural(required, 'rating')} from different annotators, but "
            f"{_plural(annotators, 'account')} may annotate: the annotation cannot finish. Add annotators (or an "
            "annotator group), or lower the ratings per comparison."
        )
    if campaign.gold_rate > 0 and not campaign.comparisons.filter(gold_verdict__isnull=False).exists():
        warnings.append(
            f"The gold rate is {campaign.gold_rate:.0%} but the campaign has no gold pairs: no annotator is checked "
            "against known answers. Import gold answers (or set them on comparisons), or set the gold rate to 0."
        )
    return warnings
