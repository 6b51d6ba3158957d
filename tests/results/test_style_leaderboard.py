"""Style-controlled leaderboards of campaigns: the stored style counts (annotation/style_features.py, migration
output_style_features), the fit over the ratings (results/style_leaderboard.py), the API, the command and the page."""

from __future__ import annotations

import json
from collections.abc import Callable
from io import StringIO
from typing import Any

import numpy as np
import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client
from rest_framework.test import APIClient

from annotation.importers.outputs import import_outputs, parse_outputs
from annotation.models import Output, Rating
from annotation.style_features import fill_style_counts, style_counts
from evalplatform.exceptions import DomainError
from results.leaderboards import campaign_leaderboard
from results.raters import RaterSelection
from results.selectors import arena_battle
from scoring.battles import outcome_code
from scoring.style import style_battles, style_leaderboard
from tests import factories
from tests.results.conftest import Rated

ClientFor = Callable[[User | None], APIClient]

MARKDOWN = """# Title
Some **bold** text and __more__, then a list:

- one
* two
1. three

```python
# not a header
- not an item **nor bold**
```
## End
"""


def test_style_counts_counts_tokens_headers_list_items_and_bold_outside_code() -> None:
    assert style_counts("Hello, world!") == [4, 0, 0, 0]
    assert style_counts("**Bold** move: 3.5 apples")[0] == 11
    assert style_counts("\u4f60\u597d\uff0c\u4e16\u754c")[0] == 3
    assert style_counts(MARKDOWN)[1:] == [2, 3, 2]


@pytest.fixture
def styled(rated: Rated) -> Rated:
    """Give model-x long formatted answers, model-y short plain ones, model-z medium ones (style counts cleared)."""
    texts = {
        "model-x": "## Answer\n" + "- **point** with detail\n" * 6,
        "model-y": "Short answer.",
        "model-z": "A medium answer with a list:\n1. first step\n2. second step, **done**.",
    }
    for output in Output.objects.filter(prompt__campaign=rated.campaign):
        output.text = texts[output.model_name or ""] + f" ({output.prompt_id})"
        output.save(update_fields=["text"])
    return rated


def expected_board(rated: Rated, *, reg: float = 0.5, bootstrap: int = 0) -> Any:
    """Fit scoring.style to the campaign's ratings turned into battles in Python, counting the texts afresh."""
    index: dict[str, int] = {}
    rows = []
    for r in Rating.objects.filter(comparison__campaign=rated.campaign).select_related(
        "comparison__output_a", "comparison__output_b"
    ):
        c = r.comparison
        value = "a" if r.winner_id == c.output_a_id else "b" if r.winner_id else r.verdict
        a_left = (r.left_output_id or c.output_a_id) == c.output_a_id
        left, right, winner = arena_battle(c.output_a.model_name, c.output_b.model_name, a_left, value)
        first, second = (c.output_a, c.output_b) if a_left else (c.output_b, c.output_a)
        counts = (*style_counts(first.text), *style_counts(second.text))
        assert left is not None
        assert right is not None
        rows.append(
            (index.setdefault(left, len(index)), index.setdefault(right, len(index)), outcome_code(winner), counts)
        )
    battles = style_battles(list(index), rows, [1] * len(rows))
    return style_leaderboard(battles, reg=reg, bootstrap=bootstrap, rng=np.random.default_rng(0))


@pytest.mark.django_db
def test_style_controlled_leaderboard_fits_the_ratings_with_the_outputs_style(styled: Rated) -> None:
    board = campaign_leaderboard(styled.campaign, RaterSelection(), style_control=True)

    expected = expected_board(styled)
    assert board["n_battles"] == Rating.objects.filter(comparison__campaign=styled.campaign).count()
    assert {row["model"]: row["rating"] for row in board["ratings"]} == pytest.approx(
        {row.model: row.rating for row in expected.ratings}
    )
    assert [item["coefficient"] for item in board["style"]] == pytest.approx([s.coefficient for s in expected.style])
    assert [item["feature"] for item in board["style"]] == ["length", "headers", "lists", "bold"]
    assert board["style_control"] is True
    assert not Output.objects.filter(prompt__campaign=styled.campaign, style_features__isnull=True).exists()


@pytest.mark.django_db
def test_style_controlled_leaderboard_has_bootstrap_intervals_and_its_own_cache_entry(styled: Rated) -> None:
    plain = campaign_leaderboard(styled.campaign, RaterSelection(), bootstrap=20)
    board = campaign_leaderboard(styled.campaign, RaterSelection(), style_control=True, bootstrap=20, style_reg=1.0)
    unregularised = campaign_leaderboard(styled.campaign, RaterSelection(), style_control=True, bootstrap=20)

    assert "style" not in plain
    assert board["reg"] == 1.0
    assert unregularised["reg"] == 0.5
    assert board["ratings"] != unregularised["ratings"]
    for row in board["ratings"]:
        assert row["lower"] <= row["rating"] <= row["upper"]
    assert (
        board["ratings"]
        == campaign_leaderboard(styled.campaign, RaterSelection(), style_control=True, bootstrap=20, style_reg=1.0)[
            "ratings"
        ]
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    "options",
    [{"category": "math"}, {"consistent": True}, {"combine": "ppi"}, {"bootstrap": 5000}, {"style_reg": -1.0}],
)
def test_style_controlled_leaderboard_refuses_options_it_does_not_take(rated: Rated, options: dict[str, Any]) -> None:
    with pytest.raises(DomainError):
        campaign_leaderboard(rated.campaign, RaterSelection(), style_control=True, **options)


@pytest.mark.django_db
def test_imported_outputs_carry_their_style_counts(researcher: User) -> None:
    campaign = factories.CampaignFactory.create(owner=researcher)
    data = json.dumps({"prompt_id": "p1", "prompt": "Q", "model": "m1", "output": MARKDOWN}).encode() + b"\n"

    import_outputs(campaign=campaign, parsed=parse_outputs("o.jsonl", data))

    assert Output.objects.get(prompt__campaign=campaign).style_features == style_counts(MARKDOWN)


@pytest.mark.django_db
def test_a_text_edit_clears_the_stored_counts_and_fill_counts_them_again(rated: Rated) -> None:
    output = Output.objects.filter(prompt__campaign=rated.campaign).first()
    assert output is not None
    fill_style_counts()
    output.refresh_from_db()
    assert output.style_features == style_counts(output.text)

    output.text = MARKDOWN
    output.save(update_fields=["text"])
    output.refresh_from_db()
    assert output.style_features is None

    assert fill_style_counts([output.pk]) == 1
    output.refresh_from_db()
    assert output.style_features == style_counts(MARKDOWN)


@pytest.mark.django_db
def test_api_leaderboard_takes_style_control(styled: Rated, researcher: User, api_client_for: ClientFor) -> None:
    client = api_client_for(researcher)
    url = f"/api/v1/research/campaigns/{styled.campaign.slug}/leaderboard/"
    response = client.get(url + "?style_control=1&bootstrap=10&style_reg=0")

    assert response.status_code == 200
    body = response.json()
    assert body["reg"] == 0.0
    assert [item["feature"] for item in body["style"]] == ["length", "headers", "lists", "bold"]
    assert {"rank_lower", "rank_upper", "lower", "upper"} <= set(body["ratings"][0])


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query",
    [
        "style_control=1&style_reg=-1",
        "style_control=1&style_reg=abc",
        "style_control=1&style_reg=nan",
        "style_control=1&bootstrap=1500",
        "style_control=maybe",
        "style_control=1&category=x",
    ],
)
def test_api_style_control_answers_400_on_bad_values(
    styled: Rated, researcher: User, api_client_for: ClientFor, query: str
) -> None:
    response = api_client_for(researcher).get(f"/api/v1/research/campaigns/{styled.campaign.slug}/leaderboard/?{query}")
    assert response.status_code == 400


@pytest.mark.django_db
def test_leaderboard_command_style_control_prints_ratings_and_coefficients(styled: Rated) -> None:
    out = StringIO()
    call_command("leaderboard", styled.campaign.slug, "--style-control", "--bootstrap", "10", stdout=out)
    text = out.getvalue()
    assert "style-controlled" in text
    assert "length" in text
    assert "bold" in text

    out = StringIO()
    call_command("leaderboard", styled.campaign.slug, "--style-control", "--style-reg", "0", "--json", stdout=out)
    assert json.loads(out.getvalue())["reg"] == 0.0


@pytest.mark.django_db
def test_leaderboard_command_style_control_refuses_other_options(styled: Rated) -> None:
    with pytest.raises(CommandError, match="--style-control does not take --consistent"):
        call_command("leaderboard", styled.campaign.slug, "--style-control", "--consistent")
    with pytest.raises(CommandError, match="--style-reg must be a number"):
        call_command("leaderboard", styled.campaign.slug, "--style-control", "--style-reg", "nan")


@pytest.mark.django_db
def test_style_page_shows_the_style_controlled_board(styled: Rated, researcher: User, outsider: User) -> None:
    client = Client()
    client.force_login(researcher)
    response = client.get(f"/results/{styled.campaign.slug}/style/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Style-controlled leaderboard" in page
    assert "Style coefficients" in page
    assert "model-x" in page
    assert f"/results/{styled.campaign.slug}/style/" in client.get(f"/results/{styled.campaign.slug}/").content.decode()

    client.force_login(outsider)
    assert client.get(f"/results/{styled.campaign.slug}/style/").status_code == 404
