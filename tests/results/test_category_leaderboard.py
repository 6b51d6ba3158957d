"""Category leaderboards of a campaign (results/categories.py): the SQL filter, the cache, the API, the command,
the page and the manifest."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable
from io import StringIO
from typing import Any

import numpy as np
import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client
from rest_framework.test import APIClient

import scoring
from annotation.importers import import_battles, parse_battles
from annotation.models import Campaign, Prompt, Rating
from results.categories import campaign_categories
from results.leaderboards import campaign_leaderboard
from results.manifest import canonical, leaderboard_with_manifest
from results.raters import RaterSelection
from results.reproduce import reproduce
from results.selectors import arena_battle
from scoring.categories import read_category_counts
from tests.results.conftest import Rated

ClientFor = Callable[[User | None], APIClient]


@pytest.fixture
def tagged(rated: Rated) -> Rated:
    """Tag the first two prompts math, the first one also hard; the others have auto:language:en only."""
    prompts = list(Prompt.objects.filter(campaign=rated.campaign).order_by("pk"))
    for i, prompt in enumerate(prompts):
        prompt.tags = (["math", "hard"] if i == 0 else ["math"] if i == 1 else []) + ["auto:language:en"]
        prompt.save(update_fields=["tags"])
    return rated


def _expected_battles(rated: Rated, tag: str, kind: str | None = None) -> Counter[tuple[str, str, str]]:
    """Return the Arena battles of the ratings on prompts with the tag, computed in Python from the rows."""
    ratings = Rating.objects.filter(comparison__campaign=rated.campaign, comparison__prompt__tags__contains=[tag])
    if kind:
        ratings = ratings.filter(rater_kind=kind)
    battles: Counter[tuple[str, str, str]] = Counter()
    for r in ratings.select_related("comparison__output_a", "comparison__output_b"):
        c = r.comparison
        value = "a" if r.winner_id == c.output_a_id else "b" if r.winner_id else r.verdict
        a_left = (r.left_output_id or c.output_a_id) == c.output_a_id
        left, right, winner = arena_battle(c.output_a.model_name, c.output_b.model_name, a_left, value)
        assert left is not None
        assert right is not None
        battles[(left, right, winner)] += 1
    return battles


@pytest.mark.django_db
def test_a_category_leaderboard_fits_only_the_ratings_on_its_prompts(tagged: Rated) -> None:
    board = campaign_leaderboard(tagged.campaign, RaterSelection(kind="human"), category="math")

    expected = _expected_battles(tagged, "math", "human")
    fit = scoring.bradley_terry(list(expected.elements()))
    assert board["n_battles"] == sum(expected.values()) > 0
    assert {row["model"]: row["rating"] for row in board["ratings"]} == pytest.approx(
        {row.model: row.rating for row in fit.ratings}
    )
    assert (board["category"], board["provisional"], board["min_battles"]) == ("math", True, 100)
    assert "elo" in board["ratings"][0]


@pytest.mark.django_db
def test_category_and_whole_campaign_leaderboards_are_cached_apart(tagged: Rated) -> None:
    selection = RaterSelection()
    hard = campaign_leaderboard(tagged.campaign, selection, category="hard")
    whole = campaign_leaderboard(tagged.campaign, selection)
    math = campaign_leaderboard(tagged.campaign, selection, category="math")

    assert hard["n_battles"] == sum(_expected_battles(tagged, "hard").values())
    assert math["n_battles"] == sum(_expected_battles(tagged, "math").values())
    assert whole["n_battles"] == Rating.objects.filter(comparison__campaign=tagged.campaign).count()
    assert hard["n_battles"] < math["n_battles"] < whole["n_battles"]
    assert "category" not in whole


@pytest.mark.django_db
def test_the_consistency_gate_counts_only_the_categorys_inconsistent_pairs(tagged: Rated) -> None:
    gated = campaign_leaderboard(tagged.campaign, RaterSelection(kind="judge"), category="math", consistent=True)
    whole = campaign_leaderboard(tagged.campaign, RaterSelection(kind="judge"), consistent=True)

    math_comparisons = {c.pk for c in tagged.comparisons if "math" in Prompt.objects.get(pk=c.prompt_id).tags}
    inconsistent = [i for i, c in enumerate(tagged.comparisons) if i % 5 == 0 and c.pk in math_comparisons]
    assert gated["inconsistent_pairs"] == len(inconsistent)
    assert whole["inconsistent_pairs"] == sum(1 for i in range(len(tagged.comparisons)) if i % 5 == 0)
    assert gated["n_battles"] == 2 * len(math_comparisons) - len(inconsistent)


@pytest.mark.django_db
def test_campaign_categories_count_prompts_and_selected_battles(tagged: Rated) -> None:
    listed = campaign_categories(tagged.campaign, RaterSelection(kind="human"))

    rows = {row["category"]: row for row in listed["categories"]}
    assert set(rows) == {"math", "hard", "auto:language:en"}
    assert rows["math"]["n_prompts"] == 2
    assert rows["hard"]["n_battles"] == sum(_expected_battles(tagged, "hard", "human").values())
    assert (
        rows["auto:language:en"]["n_battles"]
        == Rating.objects.filter(comparison__campaign=tagged.campaign, rater_kind="human").count()
    )
    assert [row["category"] for row in listed["categories"]] == ["auto:language:en", "math", "hard"]
    assert all(row["provisional"] for row in listed["categories"])


def _api(client: APIClient, rated: Rated, path: str) -> Any:
    return client.get(f"/api/v1/research/campaigns/{rated.campaign.slug}/{path}")


@pytest.mark.django_db
def test_api_leaderboard_takes_a_category(tagged: Rated, researcher: User, api_client_for: ClientFor) -> None:
    response = _api(api_client_for(researcher), tagged, "leaderboard/?category=math&raters=humans")

    assert response.status_code == 200
    body = response.json()
    assert (body["category"], body["provisional"]) == ("math", True)
    assert body["n_battles"] == sum(_expected_battles(tagged, "math", "human").values())
    assert body["manifest"]["options"]["category"] == "math"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("category=nope", "no prompt of this campaign has the tag 'nope'"),
        ("category=", "may not be blank"),
        ("category=" + "x" * 101, "no more than 100 characters"),
        ("category=a,b", "without commas"),
        ("category=math&combine=ppi", "category applies to the Bradley-Terry leaderboard"),
    ],
)
@pytest.mark.django_db
def test_api_leaderboard_answers_400_to_a_bad_category(
    tagged: Rated, researcher: User, api_client_for: ClientFor, query: str, message: str
) -> None:
    response = _api(api_client_for(researcher), tagged, f"leaderboard/?{query}")

    assert response.status_code == 400
    assert message in str(response.json())


@pytest.mark.django_db
def test_api_lists_categories_with_their_battles(tagged: Rated, researcher: User, api_client_for: ClientFor) -> None:
    response = _api(api_client_for(researcher), tagged, "categories/?raters=judges")

    assert response.status_code == 200
    body = response.json()
    assert body["min_battles"] == 100
    assert body["truncated"] is False
    rows = {row["category"]: row for row in body["categories"]}
    assert rows["hard"] == {
        "category": "hard",
        "n_prompts": 1,
        "n_battles": sum(_expected_battles(tagged, "hard", "judge").values()),
        "provisional": True,
    }


@pytest.mark.django_db
def test_categories_api_refuses_annotators_and_hides_from_outsiders(
    tagged: Rated, annotator: User, outsider: User, api_client_for: ClientFor
) -> None:
    assert _api(api_client_for(annotator), tagged, "categories/").status_code == 403
    assert _api(api_client_for(outsider), tagged, "categories/").status_code == 404


@pytest.mark.django_db
def test_command_prints_a_category_leaderboard_and_the_list(tagged: Rated) -> None:
    out = StringIO()
    call_command("leaderboard", tagged.campaign.slug, "--category", "math", stdout=out)
    assert "category math (provisional: under 100 battles)" in out.getvalue().splitlines()[0]

    out = StringIO()
    call_command("leaderboard", tagged.campaign.slug, "--list-categories", "--raters", "humans", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[1].split() == ["category", "prompts", "battles"]
    assert lines[3].split()[:3] == ["math", "2", str(sum(_expected_battles(tagged, "math", "human").values()))]


@pytest.mark.django_db
def test_command_names_an_unknown_category(tagged: Rated) -> None:
    with pytest.raises(CommandError, match="no prompt of this campaign has the tag 'nope'"):
        call_command("leaderboard", tagged.campaign.slug, "--category", "nope", stdout=StringIO())


@pytest.mark.django_db
def test_categories_page_lists_categories_and_shows_one_leaderboard(tagged: Rated, researcher: User) -> None:
    client = Client()
    client.force_login(researcher)
    page = f"/results/{tagged.campaign.slug}/categories/"

    listed = client.get(page)
    chosen = client.get(page, {"category": "math"})
    refused = client.get(page, {"category": "nope"})

    assert listed.status_code == 200
    assert b'href="?category=auto%3Alanguage%3Aen"' in listed.content
    assert chosen.status_code == 200
    assert b"Category math" in chosen.content
    assert b"Provisional:" in chosen.content
    assert b"model-x" in chosen.content
    assert refused.status_code == 400
    assert b"no prompt of this campaign has the tag" in refused.content


@pytest.mark.django_db
def test_categories_page_says_how_to_tag_when_nothing_is_tagged(rated: Rated, researcher: User) -> None:
    client = Client()
    client.force_login(researcher)

    response = client.get(f"/results/{rated.campaign.slug}/categories/")

    assert response.status_code == 200
    assert b"manage.py tag_prompts" in response.content


@pytest.mark.django_db
def test_a_category_leaderboards_manifest_reproduces(tagged: Rated) -> None:
    board = leaderboard_with_manifest(tagged.campaign, RaterSelection(), category="hard")

    assert board["manifest"]["options"]["category"] == "hard"
    assert reproduce(board["manifest"])["identical"]
    body = {key: value for key, value in board["manifest"].items() if key != "checksum"}
    body["options"] = body["options"] | {"category": "math"}
    changed = body | {"checksum": hashlib.sha256(canonical(body)).hexdigest()}
    assert not reproduce(changed)["result"]["identical"]


@pytest.mark.django_db
def test_retagging_prompts_refreshes_cached_category_reports_without_new_ratings(tagged: Rated) -> None:
    selection = RaterSelection()
    before = campaign_leaderboard(tagged.campaign, selection, category="hard")
    listed_before = {
        row["category"]: row["n_prompts"] for row in campaign_categories(tagged.campaign, selection)["categories"]
    }

    Prompt.objects.filter(campaign=tagged.campaign, tags__contains=["math"]).update(tags=["math", "hard"])

    after = campaign_leaderboard(tagged.campaign, selection, category="hard")
    listed_after = {
        row["category"]: row["n_prompts"] for row in campaign_categories(tagged.campaign, selection)["categories"]
    }
    assert (listed_before["hard"], listed_after["hard"]) == (1, 2)
    assert after["n_battles"] == sum(_expected_battles(tagged, "hard").values()) > before["n_battles"]


def _arena_log(n: int) -> list[dict[str, Any]]:
    """Return Arena-shaped battles with category tags, languages, and a conversation on every third."""
    rng = np.random.default_rng(5)
    models = ["m-a", "m-b", "m-c", "m-d"]
    questions = ["What is 12 * 7?", "Write a poem about autumn leaves and the wind.", "```python\nprint(1)\n```"]
    records = []
    for k in range(n):
        a, b = rng.choice(4, size=2, replace=False)
        record: dict[str, Any] = {
            "question_id": f"q{k}",
            "model_a": models[a],
            "model_b": models[b],
            "winner": ["model_a", "model_b", "tie", "tie (bothbad)"][int(rng.choice(4, p=[0.45, 0.35, 0.15, 0.05]))],
            "judge": f"user{k % 7}",
            "language": "English" if k % 4 else "German",
            "turn": 1 + k % 2,
            "is_code": bool(k % 3 == 1),
            "category_tag": {"criteria_v0.1": {"math": bool(rng.random() < 0.4)}, "if_v0.1": {"if": k % 5 == 0}},
        }
        if k % 3 == 0:
            question = questions[(k // 3) % 3]
            record["conversation_a"] = [{"role": "user", "content": question}, {"role": "assistant", "content": "x"}]
            record["conversation_b"] = [{"role": "user", "content": question}, {"role": "assistant", "content": "y"}]
        records.append(record)
    return records


@pytest.mark.django_db
def test_an_imported_arena_log_has_the_categories_and_ratings_of_the_file(researcher: User, tmp_path: Any) -> None:
    records = _arena_log(300)
    path = tmp_path / "arena.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    plan = parse_battles("arena.jsonl", path.read_bytes())
    import_battles(campaign_slug="arena-cats", plan=plan, owner=researcher)
    campaign = Campaign.objects.get(slug="arena-cats")

    from_file = {item.category: item for item in read_category_counts(path)}
    listed = {
        row["category"]: row["n_battles"] for row in campaign_categories(campaign, RaterSelection())["categories"]
    }
    assert listed == {name: item.n_battles for name, item in from_file.items()}
    assert {"auto:math", "auto:code", "auto:multi_turn", "is_code", "language:German"} <= set(listed)
    for name in ("criteria_v0.1.math", "auto:multi_turn", "auto:math"):
        board = campaign_leaderboard(campaign, RaterSelection(), category=name)
        counts = from_file[name].counts
        assert counts is not None
        fit = scoring.bradley_terry_from_counts(counts)
        assert {row["model"]: row["rating"] for row in board["ratings"]} == pytest.approx(
            {row.model: row.rating for row in fit.ratings}
        )
