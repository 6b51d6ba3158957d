"""Every `manage.py leaderboard` states which raters it counted (docs/guide.md, *Which raters count*): the
style-controlled and the prediction-powered leaderboards too, under the table and as `rater_mix` in the JSON."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command

from tests.results.conftest import Rated

MIXED = "raters: all (the default), 2 humans and 1 judge: humans and judges mixed"


def leaderboard(*args: str) -> str:
    out = StringIO()
    call_command("leaderboard", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
@pytest.mark.parametrize("mode", [["--style-control"], ["--combine", "ppi"]])
def test_the_style_and_combined_tables_end_with_the_rater_line(rated: Rated, mode: list[str]) -> None:
    assert leaderboard(rated.campaign.slug, *mode).splitlines()[-1] == MIXED
    assert leaderboard(rated.campaign.slug, *mode, "--raters", "humans").splitlines()[-1] == (
        "raters: humans, 2 humans and 0 judges"
    )


@pytest.mark.django_db
@pytest.mark.parametrize("mode", [["--style-control"], ["--combine", "ppi"]])
def test_the_style_and_combined_json_hold_the_rater_mix(rated: Rated, mode: list[str]) -> None:
    board = json.loads(leaderboard(rated.campaign.slug, *mode, "--json"))

    assert board["rater_mix"] == {
        "raters": "all",
        "default": True,
        "humans": 2,
        "judges": 1,
        "mixed": True,
        "excluded": [],
    }
    assert "ratings" in board  # the combined fit may refuse (no judge-only comparisons) and still say whose
