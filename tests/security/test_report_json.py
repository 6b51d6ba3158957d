"""Reports over the API are JSON whatever their figures: an undefined one is null, never a 500.

A clustered sandwich interval over fewer than two clusters is nan (``scoring.bt_fit.cluster_factor``); JSON has no
NaN, so ``?cluster=rater`` on a campaign rated by one rater was a 500 before ``results.api.json_safe``.
"""

from __future__ import annotations

import pytest
from django.test import Client

from tests.security.world import World, build_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def world() -> World:
    return build_world()


@pytest.mark.parametrize(
    "query", ["cluster=rater", "cluster=prompt", "cluster=rater&rater_model=1", "cluster=rater&consistent=1"]
)
def test_a_clustered_interval_over_one_cluster_is_null_in_the_api(world: World, query: str) -> None:
    client = Client()
    client.force_login(world.a.owner)
    response = client.get(f"/api/v1/research/campaigns/alpha/leaderboard/?{query}")
    assert response.status_code == 200, response.content[:300]
    rows = response.json()["ratings"]
    assert rows
    assert all(row["se"] is None and row["lower"] is None and row["upper"] is None for row in rows)
    assert all(isinstance(row["rating"], float) for row in rows)


def test_the_page_of_the_same_leaderboard_still_renders(world: World) -> None:
    client = Client()
    client.force_login(world.a.owner)
    assert client.get("/results/alpha/?cluster=rater").status_code == 200
