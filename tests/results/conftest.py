"""A rated campaign: two humans (one with an account) and a judge that rates both orders."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import User

from annotation.models import Campaign, Comparison, Output, Rater
from tests import factories


@dataclass
class Rated:
    campaign: Campaign
    comparisons: list[Comparison]
    alice: Rater
    expert: Rater
    judge: Rater

    def output(self, comparison: Comparison, model: str) -> Output:
        return next(o for o in (comparison.output_a, comparison.output_b) if o.model_name == model)


def rate(comparison: Comparison, rater: Rater, winner: str | None, *, left: str | None = None, **kw: Any) -> None:
    """Rate a comparison: winner is a model name, "tie" or "both_bad"; left names the model shown left."""
    outputs = {o.model_name: o for o in (comparison.output_a, comparison.output_b)}
    verdict = "win" if winner in outputs else winner
    left_output = outputs[left] if left else comparison.output_a
    factories.make_rating(
        comparison, rater, winner=outputs.get(winner or ""), verdict=verdict, left_output=left_output, **kw
    )


@pytest.fixture
def rated(campaign: Campaign, annotator: User) -> Rated:
    """Rate the campaign: model-x beats model-y beats model-z mostly, with ties, both-bad and disagreement."""
    alice = factories.RaterFactory.create(name="alice", user=annotator)
    expert = factories.RaterFactory.create(name="expert_1")
    judge = factories.RaterFactory.create(name="gpt-judge", kind=Rater.Kind.JUDGE)
    comparisons = list(campaign.comparisons.select_related("output_a", "output_b").order_by("id"))
    for i, comparison in enumerate(comparisons):
        models = sorted(o.model_name or "" for o in (comparison.output_a, comparison.output_b))
        better, worse = models  # model-x < model-y < model-z alphabetically and in quality
        rate(comparison, alice, better, left=worse, time_ms=1000 + i)
        rate(comparison, expert, "tie" if i % 4 == 0 else better, left=better, time_ms=3000)
        rate(comparison, judge, better, left=better)
        rate(comparison, judge, worse if i % 5 == 0 else better, left=worse)
    return Rated(campaign, comparisons, alice, expert, judge)


def streamed(response: Any) -> bytes:
    """Return the whole body of a streaming response."""
    return b"".join(response.streaming_content)
