"""Campaign setup services: comparison generation by strategy, status transitions, annotators and gold answers."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User

from annotation import campaign_setup
from annotation.models import Campaign, Comparison, Output, Prompt
from evalplatform.exceptions import DomainError
from tests import factories

pytestmark = pytest.mark.django_db


MODELS = ["m1", "m2", "m3", "m4"]


@pytest.fixture
def draft(researcher: User) -> Campaign:
    """Return a draft campaign: 5 prompts answered by 4 models, no comparisons yet."""
    campaign = factories.CampaignFactory.create(owner=researcher)
    for i in range(5):
        prompt = Prompt.objects.create(campaign=campaign, external_id=f"p{i}", text=f"Q{i}")
        Output.objects.bulk_create(Output(prompt=prompt, model_name=m, text=f"{m}-{i}") for m in MODELS)
    return campaign


def _pairs(campaign: Campaign) -> set[tuple[int, int]]:
    return set(Comparison.objects.filter(campaign=campaign).values_list("output_a_id", "output_b_id"))


def test_all_pairs_creates_every_pair_of_outputs_per_prompt_once(draft: Campaign) -> None:
    first = campaign_setup.generate_comparisons(campaign=draft, strategy="all_pairs")
    again = campaign_setup.generate_comparisons(campaign=draft, strategy="all_pairs")

    assert (first.created, first.existing) == (30, 0)  # 5 prompts x C(4, 2)
    assert (again.created, again.existing) == (0, 30)
    assert all(a < b for a, b in _pairs(draft))


def test_random_k_draws_k_pairs_per_prompt_reproducibly_from_a_seed(draft: Campaign, researcher: User) -> None:
    report = campaign_setup.generate_comparisons(campaign=draft, strategy="random_k", k=2, seed=7)
    pairs = _pairs(draft)
    Comparison.objects.filter(campaign=draft).delete()
    campaign_setup.generate_comparisons(campaign=draft, strategy="random_k", k=2, seed=7)

    assert report.created == 10
    assert _pairs(draft) == pairs


def test_random_k_counts_existing_pairs_towards_k(draft: Campaign) -> None:
    campaign_setup.generate_comparisons(campaign=draft, strategy="random_k", k=1, seed=1)

    report = campaign_setup.generate_comparisons(campaign=draft, strategy="random_k", k=3, seed=2)

    assert (report.created, report.existing) == (10, 5)
    assert Comparison.objects.filter(campaign=draft).count() == 15


def test_baseline_pairs_every_model_with_the_baseline_and_skips_prompts_without_it(draft: Campaign) -> None:
    Output.objects.filter(prompt__external_id="p4", model_name="m1").delete()

    report = campaign_setup.generate_comparisons(campaign=draft, strategy="baseline", baseline_model="m1")

    assert report.created == 12  # 4 prompts x 3 other models
    assert list(report.skipped_prompts.values()) == ["no output of the baseline model m1"]
    for comparison in Comparison.objects.filter(campaign=draft).select_related("output_a", "output_b"):
        assert "m1" in (comparison.output_a.model_name, comparison.output_b.model_name)


def test_generation_defaults_to_the_campaign_strategy_and_refuses_missing_settings(draft: Campaign) -> None:
    draft.pairing_strategy = "baseline"
    draft.baseline_model = "m2"
    draft.save()

    assert campaign_setup.generate_comparisons(campaign=draft).created == 15
    with pytest.raises(DomainError, match="needs k"):
        campaign_setup.generate_comparisons(campaign=draft, strategy="random_k")


@pytest.mark.parametrize(
    ("path", "final"),
    [
        (["active"], "active"),
        (["active", "paused"], "paused"),
        (["active", "paused", "active"], "active"),
        (["active", "closed"], "closed"),
        (["active", "paused", "closed"], "closed"),
    ],
)
def test_allowed_status_transitions(draft: Campaign, path: list[str], final: str) -> None:
    campaign_setup.generate_comparisons(campaign=draft, strategy="all_pairs")
    for status in path:
        campaign_setup.change_campaign_status(campaign=draft, status=status)

    draft.refresh_from_db()
    assert draft.status == final


@pytest.mark.parametrize(
    ("path", "refused"),
    [([], "paused"), ([], "closed"), (["active", "closed"], "active"), (["active", "closed"], "paused")],
)
def test_refused_status_transitions(draft: Campaign, path: list[str], refused: str) -> None:
    campaign_setup.generate_comparisons(campaign=draft, strategy="all_pairs")
    for status in path:
        campaign_setup.change_campaign_status(campaign=draft, status=status)

    with pytest.raises(DomainError, match=f"cannot become {refused}"):
        campaign_setup.change_campaign_status(campaign=draft, status=refused)
    draft.refresh_from_db()
    assert draft.status == (path[-1] if path else "draft")


def test_opening_a_campaign_without_comparisons_is_refused(draft: Campaign) -> None:
    with pytest.raises(DomainError, match="no comparisons"):
        campaign_setup.open_campaign(campaign=draft)


def test_a_closed_campaign_gets_no_new_comparisons(draft: Campaign) -> None:
    campaign_setup.generate_comparisons(campaign=draft, strategy="baseline", baseline_model="m1")
    campaign_setup.open_campaign(campaign=draft)
    campaign_setup.close_campaign(campaign=draft)

    with pytest.raises(DomainError, match="closed"):
        campaign_setup.generate_comparisons(campaign=draft, strategy="all_pairs")


def test_set_campaign_annotators_replaces_the_group_and_users(
    draft: Campaign, annotator: User, other_annotator: User
) -> None:
    group = Group.objects.create(name="Raters")
    draft.annotators.add(annotator)

    campaign_setup.set_campaign_annotators(campaign=draft, group=group, users=[other_annotator])

    draft.refresh_from_db()
    assert draft.annotator_group == group
    assert list(draft.annotators.all()) == [other_annotator]


def test_set_gold_answer_accepts_an_output_of_the_comparison_only(draft: Campaign) -> None:
    campaign_setup.generate_comparisons(campaign=draft, strategy="all_pairs")
    comparison = Comparison.objects.filter(campaign=draft).first()
    assert comparison is not None
    stranger = Output.objects.exclude(pk__in=[comparison.output_a_id, comparison.output_b_id]).first()

    with pytest.raises(DomainError, match="one of the comparison's two outputs"):
        campaign_setup.set_gold_answer(comparison=comparison, verdict="win", winner=stranger)
    campaign_setup.set_gold_answer(comparison=comparison, verdict="win", winner=comparison.output_b)

    comparison.refresh_from_db()
    assert (comparison.is_gold, comparison.gold_winner_id) == (True, comparison.output_b_id)
