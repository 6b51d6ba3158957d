"""Campaign leaderboards with rater options (results/rater_model.py): intervals clustered by rater or prompt, the
rater-aware fit; through campaign_leaderboard, the API, the command, the page, the manifest."""

from __future__ import annotations

import json
from collections.abc import Callable
from io import StringIO
from typing import Any

import numpy as np
import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

import scoring
from annotation.models import Rating
from results.leaderboards import campaign_leaderboard
from results.manifest import leaderboard_with_manifest
from results.raters import RaterSelection
from results.reproduce import reproduce
from results.selectors import arena_battle
from scoring import bt_fit
from scoring.rater_bt import RaterCells, rater_bradley_terry
from tests import factories
from tests.results.conftest import Rated, rate

ClientFor = Callable[[User | None], APIClient]
OUTCOME = {"model_a": 1, "model_b": 2, "tie": 0, "tie (bothbad)": 0}
SIDE = {"model_a": "left", "model_b": "right", "tie": "tie", "tie (bothbad)": "tie"}


@pytest.fixture
def rated(rated: Rated) -> Rated:
    """The shared rated campaign plus six imported raters voting at random (some always for the left side)."""
    rng = np.random.default_rng(7)
    for k in range(6):
        rater = factories.RaterFactory.create(name=f"crowd_{k}")
        for comparison in rated.comparisons:
            models = [comparison.output_a.model_name, comparison.output_b.model_name]
            left = models[int(rng.integers(2))]
            winner = left if k < 2 else models[int(rng.integers(2))] if rng.random() < 0.9 else "tie"
            rate(comparison, rater, winner, left=left)
    return rated


def _votes(rated: Rated) -> list[tuple[int, int, str, str, str]]:
    """Return (rater id, prompt id, left model, right model, Arena winner) of every rating, read in Python."""
    out = []
    ratings = Rating.objects.filter(comparison__campaign=rated.campaign)
    for r in ratings.select_related("comparison__output_a", "comparison__output_b").order_by("pk"):
        c = r.comparison
        value = "a" if r.winner_id == c.output_a_id else "b" if r.winner_id else r.verdict
        a_left = (r.left_output_id or c.output_a_id) == c.output_a_id
        left, right, winner = arena_battle(c.output_a.model_name, c.output_b.model_name, a_left, value)
        assert left is not None
        assert right is not None
        out.append((r.rater_id, c.prompt_id, left, right, winner))
    return out


def _expected(rated: Rated, by: str) -> scoring.Leaderboard:
    votes = _votes(rated)
    counts = scoring.aggregate_battles([(a, b, w) for _, _, a, b, w in votes])
    index = {name: i for i, name in enumerate(counts.models)}
    cells = bt_fit.cluster_cells(
        by,
        [rater if by == "rater" else prompt for rater, prompt, _, _, _ in votes],
        [index[a] for _, _, a, _, _ in votes],
        [index[b] for _, _, _, b, _ in votes],
        [OUTCOME[w] for *_, w in votes],
    )
    return scoring.bradley_terry_from_counts(counts, clusters=cells)


@pytest.mark.django_db
@pytest.mark.parametrize("by", ["rater", "prompt"])
def test_clustered_intervals_equal_the_library_on_the_ratings_read_in_python(rated: Rated, by: str) -> None:
    board = campaign_leaderboard(rated.campaign, RaterSelection(), cluster=by)
    plain = campaign_leaderboard(rated.campaign, RaterSelection())
    expected = _expected(rated, by)

    assert board["cluster"] == by
    assert "cluster" not in plain
    assert board["n_battles"] == plain["n_battles"] == len(_votes(rated))
    for row in board["ratings"]:
        assert row["se"] == pytest.approx(expected.rating(row["model"]).se)
        assert row["rating"] == pytest.approx(next(r["rating"] for r in plain["ratings"] if r["model"] == row["model"]))
    assert [row["se"] for row in board["ratings"]] != [row["se"] for row in plain["ratings"]]
    assert "elo" in board["ratings"][0]


@pytest.mark.django_db
def test_the_rater_model_fits_every_rater_with_its_public_name(rated: Rated) -> None:
    board = campaign_leaderboard(rated.campaign, RaterSelection(), rater_model=True)

    votes = _votes(rated)
    cells = RaterCells.from_votes((str(rater), a, b, SIDE[w]) for rater, _, a, b, w in votes)
    expected = rater_bradley_terry(cells)
    assert board["method"] == "rater_bradley_terry"
    assert board["raters"] == "all"  # the selection, as on every leaderboard
    for row in board["ratings"]:
        assert row["rating"] == pytest.approx(expected.board.rating(row["model"]).rating, abs=1e-6)
    raters = {row["rater"]: row for row in board["rater_model"]["raters"]}
    assert set(raters) == {rated.alice.pseudonym, "expert_1", "gpt-judge"} | {f"crowd_{k}" for k in range(6)}
    assert raters["crowd_0"]["left_bias"] > 1.0
    assert raters["gpt-judge"]["kind"] == "judge"
    assert raters["gpt-judge"]["votes"] == 2 * len(rated.comparisons)
    assert sum(row["votes"] for row in raters.values()) == len(votes)
    assert all(0 <= row["reliability"] <= 1 for row in raters.values())


@pytest.mark.django_db
def test_rater_votes_are_aggregated_in_sql(rated: Rated) -> None:
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            campaign_leaderboard(rated.campaign, RaterSelection(), rater_model=True, force=True, with_elo=False)
        return len(captured)

    queries()  # the battle-count snapshot is made on the first
    before = queries()
    for comparison in rated.comparisons:  # twice the ratings: the same number of queries
        rate(comparison, rated.expert, comparison.output_a.model_name, left=comparison.output_b.model_name)
    queries()  # and brought up to date on the first after new ratings
    assert queries() == before


@pytest.mark.django_db
def test_the_consistency_gate_combines_with_rater_clusters(rated: Rated) -> None:
    gated = campaign_leaderboard(rated.campaign, RaterSelection(), consistent=True)
    clustered = campaign_leaderboard(rated.campaign, RaterSelection(), consistent=True, cluster="rater")

    assert clustered["n_battles"] == gated["n_battles"]
    assert clustered["inconsistent_pairs"] == gated["inconsistent_pairs"] > 0
    for row, other in zip(clustered["ratings"], gated["ratings"], strict=True):
        assert row["rating"] == pytest.approx(other["rating"])


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"cluster": "annotator"}, "cluster: expected rater or prompt"),
        ({"cluster": "rater", "bootstrap": 10}, "leave bootstrap at 0"),
        ({"rater_model": True, "cluster": "prompt"}, "clusters by rater only"),
        ({"rater_model": True, "consistent": True}, "leave consistent off"),
        ({"cluster": "prompt", "consistent": True}, "not cluster=prompt"),
        ({"cluster": "rater", "combine": "ppi"}, "Bradley-Terry leaderboard only"),
    ],
)
def test_options_that_do_not_combine_are_refused(rated: Rated, options: dict[str, Any], message: str) -> None:
    from evalplatform.exceptions import DomainError

    with pytest.raises(DomainError, match=message):
        campaign_leaderboard(rated.campaign, RaterSelection(), **options)


def _api(client: APIClient, rated: Rated, query: str) -> Any:
    return client.get(f"/api/v1/research/campaigns/{rated.campaign.slug}/leaderboard/?{query}")


@pytest.mark.django_db
def test_api_takes_cluster_and_rater_model(rated: Rated, researcher: User, api_client_for: ClientFor) -> None:
    response = _api(api_client_for(researcher), rated, "cluster=rater&rater_model=1")

    assert response.status_code == 200
    body = response.json()
    assert body["cluster"] == "rater"
    assert {row["rater"] for row in body["rater_model"]["raters"]} >= {"expert_1", "gpt-judge"}
    assert body["manifest"]["options"]["cluster"] == "rater"
    assert body["manifest"]["options"]["rater_model"] is True


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("cluster=annotator", "cluster"),
        ("rater_model=maybe", "rater_model"),
        ("rater_model=1&cluster=prompt", "cluster"),
        ("cluster=rater&bootstrap=20", "bootstrap"),
        ("cluster=rater&style_control=1", "cluster"),
    ],
)
def test_api_answers_400_to_bad_rater_options(
    rated: Rated, researcher: User, api_client_for: ClientFor, query: str, field: str
) -> None:
    response = _api(api_client_for(researcher), rated, query)

    assert response.status_code == 400
    assert field in json.dumps(response.json())


@pytest.mark.django_db
def test_command_prints_the_raters_and_the_clustering(rated: Rated) -> None:
    out = StringIO()
    call_command("leaderboard", rated.campaign.slug, "--rater-model", "--cluster", "rater", stdout=out)
    text = out.getvalue()
    assert "intervals: sandwich clustered by rater (CR1)" in text
    assert "gpt-judge" in text
    assert "reliability" in text

    out = StringIO()
    call_command("leaderboard", rated.campaign.slug, "--cluster", "prompt", "--json", stdout=out)
    assert json.loads(out.getvalue())["cluster"] == "prompt"
    with pytest.raises(CommandError, match="clusters by rater only"):
        call_command("leaderboard", rated.campaign.slug, "--rater-model", "--cluster", "prompt", stdout=StringIO())


@pytest.mark.django_db
def test_page_shows_the_options_and_the_raters(rated: Rated, researcher: User) -> None:
    client = Client()
    client.force_login(researcher)
    page = f"/results/{rated.campaign.slug}/"

    plain = client.get(page)
    chosen = client.get(page, {"cluster": "rater", "rater_model": "1", "raters": "all"})
    refused = client.get(page, {"cluster": "annotator"})

    assert plain.status_code == 200
    assert b'name="cluster"' in plain.content
    assert b"Raters in the rater-aware model" not in plain.content
    assert chosen.status_code == 200
    assert b"clustered by rater" in chosen.content
    assert b"Raters in the rater-aware model" in chosen.content
    assert b'<option value="rater" selected>' in chosen.content
    assert b'type="hidden" name="raters" value="all"' in chosen.content
    assert refused.status_code == 400
    assert b"cluster: expected rater or prompt" in refused.content


@pytest.mark.django_db
def test_a_clustered_leaderboards_manifest_reproduces(rated: Rated) -> None:
    board = leaderboard_with_manifest(rated.campaign, RaterSelection(), cluster="prompt")
    aware = leaderboard_with_manifest(rated.campaign, RaterSelection(), rater_model=True)

    assert board["manifest"]["options"]["cluster"] == "prompt"
    assert reproduce(board["manifest"])["identical"]
    assert reproduce(aware["manifest"])["identical"]
    assert np.isfinite([row["se"] for row in aware["ratings"]]).all()
