"""The data model's invariants hold in the database itself, whatever code writes the rows."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import IntegrityError, connection, transaction

from annotation.models import Comparison, Output, Prompt, Rater
from tests import factories

pytestmark = pytest.mark.django_db


def _write_and_check(fn: Callable[[], object]) -> None:
    with transaction.atomic():
        fn()
        # Deferred constraints fire at commit; force them inside the savepoint.
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def _violates(fn: Callable[[], object]) -> None:
    with pytest.raises(IntegrityError):
        _write_and_check(fn)


def test_a_comparison_refuses_the_same_output_twice() -> None:
    output = factories.OutputFactory.create()
    _violates(
        lambda: Comparison.objects.create(
            campaign=output.prompt.campaign, prompt=output.prompt, output_a=output, output_b=output
        )
    )


def test_a_comparison_refuses_an_output_of_another_prompt() -> None:
    first = factories.OutputFactory.create()
    stranger = factories.OutputFactory.create(prompt=factories.PromptFactory.create(campaign=first.prompt.campaign))
    a, b = sorted((first, stranger), key=lambda o: o.pk)
    _violates(
        lambda: Comparison.objects.create(campaign=first.prompt.campaign, prompt=first.prompt, output_a=a, output_b=b)
    )


def test_a_comparison_refuses_a_prompt_of_another_campaign() -> None:
    prompt = factories.PromptFactory.create()
    x = factories.OutputFactory.create(prompt=prompt)
    y = factories.OutputFactory.create(prompt=prompt)
    other = factories.CampaignFactory.create()
    _violates(lambda: factories.make_comparison(prompt, x, y, campaign=other))


def test_a_pair_of_outputs_is_one_comparison() -> None:
    prompt = factories.PromptFactory.create()
    x, y = factories.OutputFactory.create(prompt=prompt), factories.OutputFactory.create(prompt=prompt)
    factories.make_comparison(prompt, x, y)
    _violates(lambda: factories.make_comparison(prompt, y, x))


def test_a_rating_winner_must_be_one_of_the_comparisons_outputs() -> None:
    prompt = factories.PromptFactory.create()
    x, y, z = (factories.OutputFactory.create(prompt=prompt) for _ in range(3))
    comparison = factories.make_comparison(prompt, x, y)
    rater = factories.RaterFactory.create()
    _violates(lambda: factories.make_rating(comparison, rater, winner=z))


def test_a_rating_names_a_winner_exactly_when_its_verdict_is_a_win() -> None:
    prompt = factories.PromptFactory.create()
    x, y = factories.OutputFactory.create(prompt=prompt), factories.OutputFactory.create(prompt=prompt)
    comparison = factories.make_comparison(prompt, x, y)
    rater = factories.RaterFactory.create()
    _violates(lambda: factories.make_rating(comparison, rater, winner=x, verdict="tie"))
    _violates(lambda: factories.make_rating(comparison, rater, winner=None, verdict="win"))


def test_a_rater_rates_each_order_of_a_comparison_once() -> None:
    prompt = factories.PromptFactory.create()
    x, y = factories.OutputFactory.create(prompt=prompt), factories.OutputFactory.create(prompt=prompt)
    comparison = factories.make_comparison(prompt, x, y)
    rater = factories.RaterFactory.create()
    factories.make_rating(comparison, rater, winner=x, left_output=x)
    factories.make_rating(comparison, rater, winner=x, left_output=y)
    _violates(lambda: factories.make_rating(comparison, rater, winner=y, left_output=x))


def test_a_rating_kind_must_match_its_rater() -> None:
    prompt = factories.PromptFactory.create()
    x, y = factories.OutputFactory.create(prompt=prompt), factories.OutputFactory.create(prompt=prompt)
    comparison = factories.make_comparison(prompt, x, y)
    judge = factories.RaterFactory.create(kind=Rater.Kind.JUDGE)
    _violates(lambda: factories.make_rating(comparison, judge, winner=x, rater_kind="human"))


def test_an_output_model_name_is_unique_per_prompt_but_may_be_unknown_many_times() -> None:
    prompt = factories.PromptFactory.create()
    Output.objects.create(prompt=prompt, model_name=None, text="one")
    Output.objects.create(prompt=prompt, model_name=None, text="two")
    Output.objects.create(prompt=prompt, model_name="m", text="three")
    _violates(lambda: Output.objects.create(prompt=prompt, model_name="m", text="four"))


def test_prompt_external_ids_are_unique_within_a_campaign() -> None:
    prompt = factories.PromptFactory.create()
    _violates(lambda: Prompt.objects.create(campaign=prompt.campaign, external_id=prompt.external_id))
