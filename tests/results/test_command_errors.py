"""The results commands name the option at fault, as the annotation commands do (``--category: ...``), and point
to the command that helps, not to an API route."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from annotation.models import Campaign
from tests import factories
from tests.results.conftest import Rated, rate


def refusal(*args: str) -> str:
    with pytest.raises(CommandError) as refused:
        call_command(*args, stdout=StringIO(), stderr=StringIO())
    return str(refused.value)


@pytest.mark.django_db
def test_an_unknown_category_names_the_option_and_the_command_that_lists_the_categories(rated: Rated) -> None:
    slug = rated.campaign.slug

    message = refusal("leaderboard", slug, "--category", "nope")

    assert message == (
        f"--category: no prompt of this campaign has the tag 'nope' "
        f"(manage.py leaderboard {slug} --list-categories lists them)"
    )


@pytest.mark.django_db
def test_a_malformed_category_names_the_option(rated: Rated) -> None:
    assert refusal("leaderboard", rated.campaign.slug, "--category", "a,b").startswith("--category: expected a tag")


@pytest.mark.django_db
def test_an_unknown_rater_names_the_raters_option_in_every_results_command(rated: Rated) -> None:
    slug = rated.campaign.slug
    for command in ("leaderboard", "agreement", "raters"):
        assert refusal(command, slug, "--raters", "ghost").startswith("--raters: no rater named ghost"), command


@pytest.mark.django_db
def test_export_refusals_name_the_options(rated: Rated, tmp_path: Path) -> None:
    slug, out = rated.campaign.slug, str(tmp_path / "x.jsonl")

    aggregate = refusal("export", slug, "--format", "ratings", "--out", out, "--aggregate", "posterior")
    confidence = refusal("export", slug, "--format", "dpo", "--out", out, "--min-confidence", "0.9")
    too_high = refusal(
        "export", slug, "--format", "dpo", "--out", out, "--aggregate", "posterior", "--min-confidence", "1.5"
    )

    assert aggregate == "--aggregate: ratings exports take each, not 'posterior'"
    assert confidence == "--min-confidence: only the posterior aggregation takes it"
    assert too_high == "--min-confidence: 1.5 is not between 0 and 1"
    assert not list(tmp_path.iterdir())  # refused before writing anything


@pytest.mark.django_db
def test_side_by_side_without_humans_says_the_correlation_is_undefined(campaign: Campaign) -> None:
    judge = factories.RaterFactory.create(name="gpt-judge", kind="judge")
    for comparison in campaign.comparisons.select_related("output_a", "output_b")[:3]:
        rate(comparison, judge, comparison.output_a.model_name)
    out = StringIO()

    call_command("leaderboard", campaign.slug, "--side-by-side", stdout=out)

    assert "gpt-judge vs humans: spearman n/a, kendall n/a (0 models ranked by both)" in out.getvalue()
    assert "None" not in out.getvalue()
