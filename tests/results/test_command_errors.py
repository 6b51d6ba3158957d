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


@pytest.mark.django_db
@pytest.mark.parametrize(
    "args",
    [
        ["leaderboard", "{slug}", "--bootstrap", "10", "--seed", "-1"],
        ["agreement", "{slug}", "--seed", "-1"],
        ["judge_report", "gpt-judge", "--seed", "-1"],
    ],
)
def test_a_negative_seed_is_refused_naming_the_option_not_a_numpy_traceback(rated: Rated, args: list[str]) -> None:
    args = [arg.format(slug=rated.campaign.slug) for arg in args]

    assert refusal(*args) == "Error: argument --seed: must be 0 or more, not -1"


@pytest.mark.django_db
@pytest.mark.parametrize("command", ["leaderboard", "agreement"])
def test_bootstrap_rounds_are_bounded_as_the_api_and_reproduce_bound_them(rated: Rated, command: str) -> None:
    slug = rated.campaign.slug

    assert refusal(command, slug, "--bootstrap", "-1") == "Error: argument --bootstrap: must be 0 or more, not -1"
    assert refusal(command, slug, "--bootstrap", "2001") == "Error: argument --bootstrap: at most 2000, not 2001"


@pytest.mark.django_db
def test_export_into_a_missing_directory_says_so_instead_of_a_traceback(rated: Rated, tmp_path: Path) -> None:
    out = tmp_path / "missing" / "pairs.jsonl"

    message = refusal("export", rated.campaign.slug, "--format", "dpo", "--out", str(out))

    assert message == f"{out}: cannot write it (No such file or directory)"
    assert not (tmp_path / "missing").exists()


@pytest.mark.django_db
def test_lc_winrate_without_a_rating_against_the_baseline_says_so(rated: Rated) -> None:
    out = StringIO()
    baseline = rated.comparisons[0].output_a.model_name or ""

    call_command("lc_winrate", rated.campaign.slug, "--baseline", baseline, "--exclude-raters", "*", stdout=out)

    assert out.getvalue().splitlines()[-1] == (
        f"no rating by these raters compares {baseline} with another model: choose other --raters, "
        "or rate comparisons with the baseline"
    )
