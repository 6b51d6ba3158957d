"""The consistency gate through the Python client: leaderboard, agreement, export and its manifest with
`consistent=True`, against a live server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token

from annotation.models import Rater
from evalplatform_client import Client
from tests import factories


@pytest.mark.django_db(transaction=True)
def test_the_consistency_gate_on_leaderboard_agreement_and_export_through_the_client(
    live_server: Any, researcher: User, campaign: Any, tmp_path: Path
) -> None:
    judge = factories.RaterFactory.create(name="split-judge", kind=Rater.Kind.JUDGE)
    human = factories.RaterFactory.create(name="human-1")
    comparisons = list(campaign.comparisons.select_related("output_a", "output_b").order_by("id"))
    for i, comparison in enumerate(comparisons):
        a, b = comparison.output_a, comparison.output_b
        factories.make_rating(comparison, human, winner=a)
        factories.make_rating(comparison, judge, winner=a, left_output=a)
        factories.make_rating(comparison, judge, winner=b if i % 3 == 0 else a, left_output=b)  # a third split
    split = len(range(0, len(comparisons), 3))
    remote = Client(
        live_server.url, token=str(Token.objects.get_or_create(user=researcher)[0].key), progress=False
    ).campaign(campaign.slug)

    plain, gated = remote.leaderboard(raters="judges"), remote.leaderboard(raters="judges", consistent=True)
    agreement = remote.agreement(bootstrap=0, consistent=True)
    exported = remote.export("arena", tmp_path / "arena.jsonl", raters="judges", consistent=True, manifest=True)

    assert "consistent" not in plain
    assert (gated["consistent"], gated["inconsistent_pairs"]) == (True, split)
    assert (agreement["consistent"], agreement["inconsistent_pairs"]) == (True, split)
    records = [json.loads(line) for line in Path(exported.path).read_text().splitlines()]
    ungated = remote.export("arena", tmp_path / "plain.jsonl", raters="judges")
    assert len(records) == len(Path(ungated.path).read_text().splitlines()) - split  # a split pair: one tie record
    assert sum(r["winner"] == "tie" for r in records) == split
    manifest = json.loads(Path(exported.manifest_path or "").read_text())
    assert manifest["options"]["consistent"] is True
