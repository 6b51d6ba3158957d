"""Read models for annotators: what a leased comparison looks like to them and how far along they are.

Nothing here carries a model name or an output id: an annotator sees an assignment id, texts and sides.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from annotation.access import User, annotatable_campaigns
from annotation.engine import Shown, Text
from annotation.models import AnnotatorStatus, Campaign, Comparison, Rater
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
