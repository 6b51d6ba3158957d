"""Read models for annotators: what a leased comparison looks like to them and how far along they are.

Nothing here carries a model name or an output id: an annotator sees an assignment id, texts and sides.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from annotation.access import User, annotatable_campaigns
from annotation.models import AnnotatorStatus, Assignment, Campaign, Comparison, Output, Rater
from annotation.rendering import render_markdown


@dataclass(frozen=True)
class Side:
    text: str
    html: str


@dataclass(frozen=True)
class Progress:
    done: int
    quota: int | None
    remaining: int | None
    paused: bool


@dataclass(frozen=True)
class AssignmentView:
    assignment: int
    prompt: Side
    left: Side
    right: Side
    lease_expires: datetime
    progress: Progress


def _side(text: str) -> Side:
    return Side(text=text, html=render_markdown(text))


def assignment_view(assignment: Assignment, *, progress: Progress) -> AssignmentView:
    """Return the blind view of an assignment: prompt, left and right texts (raw and rendered)."""
    comparison = Comparison.objects.select_related("prompt").get(pk=assignment.comparison_id)
    pair = [comparison.output_a_id, comparison.output_b_id]
    texts = dict(Output.objects.filter(pk__in=pair).values_list("pk", "text"))
    right_id = comparison.output_b_id if assignment.left_output_id == comparison.output_a_id else comparison.output_a_id
    return AssignmentView(
        assignment=assignment.pk,
        prompt=_side(comparison.prompt.text),
        left=_side(texts[assignment.left_output_id]),
        right=_side(texts[right_id]),
        lease_expires=assignment.lease_expires_at,
        progress=progress,
    )


def progress_of(*, campaign: Campaign, rater: Rater | None) -> Progress:
    """Return ratings given, the quota and what is left to do (None when there is no quota)."""
    status = AnnotatorStatus.objects.filter(campaign=campaign, rater=rater).first() if rater else None
    done = status.rated_count if status else 0
    quota = campaign.quota_per_annotator
    remaining = None if quota is None else max(quota - done, 0)
    return Progress(done=done, quota=quota, remaining=remaining, paused=bool(status and status.paused))


def open_comparison_count(campaign: Campaign) -> int:
    """Return how many regular comparisons still have a free slot (an upper bound on an annotator's work)."""
    return Comparison.objects.filter(
        campaign=campaign, gold_verdict__isnull=True, filled__lt=campaign.ratings_per_comparison
    ).count()


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
    rater = Rater.objects.filter(user_id=user.pk).first() if user.is_authenticated else None
    campaigns = annotatable_campaigns(user).filter(status=Campaign.Status.ACTIVE).order_by("name")
    cards = []
    for campaign in campaigns:
        progress = progress_of(campaign=campaign, rater=rater)
        available = open_comparison_count(campaign)
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
