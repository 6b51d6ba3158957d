"""factory_boy factories and small builders for tests."""

from __future__ import annotations

import itertools
from pathlib import Path

import factory
from django.contrib.auth.models import User
from django.utils import timezone

from annotation.models import Campaign, Comparison, Output, Prompt, Rater, Rating

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
FIXTURES = REPO_ROOT / "fixtures"


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = User
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.org")
    password = factory.django.Password("correct horse battery staple")


class CampaignFactory(factory.django.DjangoModelFactory[Campaign]):
    class Meta:
        model = Campaign

    name = factory.Sequence(lambda n: f"Campaign {n}")
    slug = factory.Sequence(lambda n: f"campaign-{n}")
    owner = factory.SubFactory(UserFactory, is_staff=True)
    ratings_per_comparison = 2
    gold_rate = 0.0


class PromptFactory(factory.django.DjangoModelFactory[Prompt]):
    class Meta:
        model = Prompt

    campaign = factory.SubFactory(CampaignFactory)
    external_id = factory.Sequence(lambda n: f"p{n}")
    text = factory.Sequence(lambda n: f"Question number {n}?")


class OutputFactory(factory.django.DjangoModelFactory[Output]):
    class Meta:
        model = Output

    prompt = factory.SubFactory(PromptFactory)
    model_name = factory.Sequence(lambda n: f"model-{n}")
    text = factory.Sequence(lambda n: f"Answer {n}.")


class RaterFactory(factory.django.DjangoModelFactory[Rater]):
    class Meta:
        model = Rater

    kind = Rater.Kind.HUMAN
    name = factory.Sequence(lambda n: f"rater-{n}")


def make_comparison(prompt: Prompt, first: Output, second: Output, **fields: object) -> Comparison:
    """Create a comparison of two outputs, storing them in the canonical order."""
    a, b = sorted((first, second), key=lambda o: o.pk)
    fields.setdefault("campaign", prompt.campaign)
    return Comparison.objects.create(prompt=prompt, output_a=a, output_b=b, **fields)


def populate_campaign(campaign: Campaign, *, prompts: int, models: list[str]) -> list[Comparison]:
    """Add prompts answered by every model and one comparison per pair of models."""
    comparisons = []
    for i in range(prompts):
        prompt = Prompt.objects.create(campaign=campaign, external_id=f"q{i}", text=f"Question {i}: explain {i}.")
        outputs = [
            Output.objects.create(prompt=prompt, model_name=m, text=f"{m} answers question {i}.") for m in models
        ]
        comparisons += [make_comparison(prompt, x, y) for x, y in itertools.combinations(outputs, 2)]
    return comparisons


def make_rating(comparison: Comparison, rater: Rater, *, winner: Output | None, **fields: object) -> Rating:
    """Create an imported rating (no assignment) of a comparison."""
    fields.setdefault("verdict", "win" if winner else "tie")
    fields.setdefault("left_output", comparison.output_a)
    fields.setdefault("rater_kind", rater.kind)
    return Rating.objects.create(
        comparison=comparison,
        rater=rater,
        source=Rating.Source.IMPORT,
        winner=winner,
        created_at=timezone.now(),
        **fields,
    )
