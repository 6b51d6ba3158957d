"""Published agreement figures reproduced from the real human preference data in shared/data."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.utils import timezone

from annotation.models import Campaign, Comparison, Output, Prompt, Rater, Rating
from tests import factories

MT_BENCH = factories.SHARED_DATA / "mt_bench_human_judgments_turn1.jsonl"
ALPACA = factories.SHARED_DATA / "alpaca_farm_human_crossannotations.json"


def load_votes(owner: User, slug: str, votes: list[dict[str, Any]]) -> Campaign:
    """Build a campaign from (item, text_a, text_b, model_a, model_b, winner, rater) votes, in file order."""
    campaign = factories.CampaignFactory.create(owner=owner, slug=slug)
    prompts: dict[str, Prompt] = {}
    outputs: dict[tuple[str, str], Output] = {}
    comparisons: dict[tuple[str, frozenset[int]], Comparison] = {}
    raters: dict[str, Rater] = {}
    ratings = []
    for vote in votes:
        item = vote["item"]
        if item not in prompts:
            prompts[item] = Prompt.objects.create(campaign=campaign, external_id=item, text=vote["prompt"])
        sides = []
        for key, model in (("a", vote["model_a"]), ("b", vote["model_b"])):
            if (item, key + model) not in outputs:
                outputs[(item, key + model)] = outputs.get((item, model)) or Output.objects.create(
                    prompt=prompts[item], model_name=model if vote["named"] else None, text=vote[f"text_{key}"]
                )
                outputs[(item, model)] = outputs[(item, key + model)]
            sides.append(outputs[(item, model)])
        pair = (item, frozenset(o.pk for o in sides))
        if pair not in comparisons:
            comparisons[pair] = factories.make_comparison(prompts[item], *sides)
        if vote["rater"] not in raters:
            raters[vote["rater"]] = Rater.objects.create(name=vote["rater"], kind=Rater.Kind.HUMAN)
        winner = {"model_a": sides[0], "model_b": sides[1]}.get(vote["winner"])
        ratings.append(
            Rating(
                comparison=comparisons[pair],
                rater=raters[vote["rater"]],
                rater_kind="human",
                source=Rating.Source.IMPORT,
                verdict="win" if winner else "tie",
                winner=winner,
                left_output=sides[0],
                created_at=timezone.now(),
            )
        )
    Rating.objects.bulk_create(ratings)
    return campaign


def mt_bench_votes() -> list[dict[str, Any]]:
    votes = []
    for line in MT_BENCH.read_text().splitlines():
        row = json.loads(line)
        votes.append(
            {
                "item": str(row["question_id"]),
                "prompt": f"question {row['question_id']}",
                "named": True,
                "text_a": "",
                "text_b": "",
                **{k: row[k] for k in ("model_a", "model_b", "winner")},
                "rater": row["judge"],
            }
        )
    return votes


def alpaca_votes() -> list[dict[str, Any]]:
    votes = []
    for row in json.loads(ALPACA.read_text()):
        item = str(hash((row["instruction"], row["output_1"], row["output_2"])))
        votes.append(
            {
                "item": item,
                "prompt": row["instruction"],
                "named": False,
                "model_a": f"{item}:1",
                "model_b": f"{item}:2",
                "text_a": row["output_1"],
                "text_b": row["output_2"],
                "winner": "model_a" if row["preference"] == 1 else "model_b",
                "rater": f"annotator_{row['annotator_index']}",
            }
        )
    return votes


def agreement(slug: str, *args: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    call_command("agreement", slug, "--json", "--bootstrap", "100", *args)
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    return report


def test_mt_bench_expert_votes_give_the_published_agreement(
    researcher: User, capsys: pytest.CaptureFixture[str]
) -> None:
    campaign = load_votes(researcher, "mt-bench", mt_bench_votes())

    report = agreement(campaign.slug, "--exclude-raters", "author_*", capsys=capsys)

    with_ties = report["mtbench_agreement"]["with_ties"]
    without_ties = report["mtbench_agreement"]["without_ties"]
    assert (with_ties["pairs"], round(with_ties["value"], 2)) == (721, 0.63)
    assert (without_ties["pairs"], round(without_ties["value"], 2)) == (479, 0.81)
    assert with_ties["ci"][0] < with_ties["value"] < with_ties["ci"][1]
    assert report["n_raters"] == 58


def test_alpaca_eval_cross_annotations_give_the_published_leave_one_out_agreement(
    researcher: User, capsys: pytest.CaptureFixture[str]
) -> None:
    campaign = load_votes(researcher, "alpaca-farm", alpaca_votes())

    report = agreement(campaign.slug, capsys=capsys)

    loo = report["loo_mode_agreement"]
    assert round(loo["value"] * 100, 2) == 65.66
    assert loo["compared"] == 2592
    assert report["n_units"] == 648
