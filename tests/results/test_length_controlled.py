"""A campaign's AlpacaEval length-controlled win rates (results/length_controlled.py): SQL, command, API."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from annotation.models import Campaign, Output, Prompt, Rater
from scoring.length_controlled import estimate_difficulty, length_controlled_winrate
from tests import factories
from tests.results.conftest import rate

Expected = dict[str, list[tuple[int, float, float, float]]]


@pytest.fixture
def verbose_campaign(researcher: User) -> tuple[Campaign, Expected]:
    """30 prompts: 'base', a verbose model that wins by its length and a concise one; two humans rate."""
    campaign = factories.CampaignFactory.create(owner=researcher, status="active")
    rng = np.random.default_rng(3)
    humans = [factories.RaterFactory.create(name=f"human-{k}") for k in range(2)]
    judge = factories.RaterFactory.create(name="a-judge", kind=Rater.Kind.JUDGE)
    expected: Expected = {"verbose": [], "concise": []}
    for i in range(30):
        prompt = Prompt.objects.create(campaign=campaign, external_id=f"q{i}", text=f"question {i}")
        lengths = {"base": int(rng.integers(100, 400)), "verbose": int(rng.integers(600, 1500))}
        lengths["concise"] = int(rng.integers(50, 200))
        outputs = {m: Output.objects.create(prompt=prompt, model_name=m, text="w" * n) for m, n in lengths.items()}
        for model in ("verbose", "concise"):
            comparison = factories.make_comparison(prompt, outputs["base"], outputs[model])
            for k, human in enumerate(humans):
                draw = rng.random()
                winner = "tie" if draw < 0.1 else model if draw < (0.75 if model == "verbose" else 0.45) else "base"
                rate(comparison, human, winner, left="base" if k else model)
                pref = 1.5 if winner == "tie" else 2.0 if winner == model else 1.0
                expected[model].append((prompt.pk, lengths["base"], lengths[model], pref))
            rate(comparison, judge, model)  # left out below by --raters humans
        rate(factories.make_comparison(prompt, outputs["verbose"], outputs["concise"]), humans[0], "verbose")
    return campaign, expected


def reference(expected: Expected, difficulty: bool) -> dict[str, Any]:
    names = sorted(expected)
    rows = np.array([row for name in names for row in expected[name]])
    flat = estimate_difficulty(rows[:, 0].astype(int), rows[:, 3])
    out, start = {}, 0
    for name in names:
        data = np.array(expected[name])
        diff = flat[start : start + len(data)] if difficulty else None
        start += len(data)
        out[name] = length_controlled_winrate(
            preference=data[:, 3], baseline_length=data[:, 1], model_length=data[:, 2], difficulty=diff
        )
    return out


@pytest.mark.parametrize("difficulty", ["auto", "none"])
def test_api_gives_each_models_lc_winrate_against_the_baseline(
    verbose_campaign: tuple[Campaign, Expected], researcher: User, api_client_for: Any, difficulty: str
) -> None:
    campaign, expected = verbose_campaign
    url = f"/api/v1/research/campaigns/{campaign.slug}/length-controlled/"
    response = api_client_for(researcher).get(url, {"baseline": "base", "raters": "humans", "difficulty": difficulty})
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["baseline"], body["raters"]) == ("base", "humans")
    rows = {row["model"]: row for row in body["models"]}
    assert set(rows) == {"verbose", "concise"}
    want = reference(expected, difficulty == "auto")
    for model, result in want.items():
        assert rows[model]["n_total"] == 60
        assert rows[model]["win_rate"] == pytest.approx(result.win_rate)
        assert rows[model]["length_controlled_winrate"] == pytest.approx(result.length_controlled_winrate)
    # the verbose model's length advantage is taken out
    assert rows["verbose"]["length_controlled_winrate"] < rows["verbose"]["win_rate"]


@pytest.mark.parametrize(
    ("query", "field"),
    [({}, "baseline"), ({"baseline": "nobody"}, "baseline"), ({"baseline": "base", "difficulty": "x"}, "difficulty")],
)
def test_api_answers_400_naming_the_bad_parameter(
    verbose_campaign: tuple[Campaign, Expected],
    researcher: User,
    api_client_for: Any,
    query: dict[str, str],
    field: str,
) -> None:
    campaign, _ = verbose_campaign
    url = f"/api/v1/research/campaigns/{campaign.slug}/length-controlled/"
    response = api_client_for(researcher).get(url, query)
    assert response.status_code == 400
    assert field in json.dumps(response.json())


def test_command_prints_the_table_and_json(
    verbose_campaign: tuple[Campaign, Expected], capsys: pytest.CaptureFixture[str]
) -> None:
    campaign, _ = verbose_campaign
    call_command("lc_winrate", campaign.slug, "--baseline", "base", "--raters", "humans")
    table = capsys.readouterr().out
    assert all(text in table for text in ("LC win rate", "verbose", "raters humans"))
    call_command("lc_winrate", campaign.slug, "--baseline", "base", "--json")
    body = json.loads(capsys.readouterr().out)
    assert {row["model"]: row["n_total"] for row in body["models"]} == {"verbose": 90, "concise": 90}
    assert body["rater_mix"]["mixed"] is True
    with pytest.raises(CommandError, match="no output of a model named 'gpt'"):
        call_command("lc_winrate", campaign.slug, "--baseline", "gpt")
