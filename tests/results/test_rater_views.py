"""The raters page of a campaign's results: the flags, and one-click actions by the campaign's researchers."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from annotation.models import AnnotatorStatus, RaterAction
from tests import factories
from tests.results.conftest import Rated, rate


def add_troll(rated: Rated) -> None:
    troll = factories.RaterFactory.create(name="troll")
    for i, comparison in enumerate(rated.comparisons):
        better, worse = sorted(o.model_name or "" for o in (comparison.output_a, comparison.output_b))
        rate(comparison, troll, worse, left=worse if i % 2 else better)
        rate(comparison, troll, worse, left=better if i % 2 else worse)


def page_url(rated: Rated) -> str:
    return f"/results/{rated.campaign.slug}/raters/"


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_page_lists_every_rater_with_its_flags_and_buttons(rated: Rated, researcher: User) -> None:
    add_troll(rated)

    page = signed_in(researcher).get(page_url(rated)).content.decode()

    table = page.split('<table class="results-table raters">')[1].split("</table>")[0]
    assert table.index("troll") < table.index("expert_1")  # most suspect first
    assert "<strong>flagged</strong>: votes against the model&#x27;s predictions" in table
    assert 'value="exclude">Exclude from results</button>' in table
    assert f'<th scope="row">{rated.alice.pseudonym}</th>' in table  # an account holder by pseudonym
    assert ">alice<" not in table
    rows = {row.split("</th>")[0]: row for row in table.split('<th scope="row">')[1:]}
    assert 'value="pause">Pause</button>' in rows[rated.alice.pseudonym]  # an account: gets work, may be paused
    assert 'value="pause"' not in rows["expert_1"]  # imported: gets no work
    assert 'value="pause"' not in rows["gpt-judge"]
    assert "Count the ratings of" not in page  # the rater selection form does not apply here


def test_excluding_from_the_page_takes_one_click_and_logs_the_flags_as_the_reason(
    rated: Rated, researcher: User
) -> None:
    add_troll(rated)
    client = signed_in(researcher)

    response = client.post(page_url(rated), {"rater": "troll", "action": "exclude"})
    page = client.get(response["Location"]).content.decode()

    assert response.status_code == 302
    assert AnnotatorStatus.objects.get(rater__name="troll").excluded
    action = RaterAction.objects.get()
    assert action.reason.startswith("Excluded from results on the results page by rita: flagged: votes against")
    assert "Excluded from results: troll." in page
    assert 'value="include">Include again</button>' in page
    leaderboard = client.get(f"/results/{rated.campaign.slug}/").content.decode()
    assert "excluded from results: troll" in leaderboard


def test_pausing_a_judge_from_the_page_is_refused_with_a_message(rated: Rated, researcher: User) -> None:
    client = signed_in(researcher)

    response = client.post(page_url(rated), {"rater": "gpt-judge", "action": "pause"}, follow=True)

    assert "cancel its runs instead of pausing it" in response.content.decode()
    assert not RaterAction.objects.exists()


@pytest.mark.parametrize("data", [{"rater": "troll", "action": "drop"}, {"rater": "", "action": "exclude"}])
def test_a_bad_post_changes_nothing(rated: Rated, researcher: User, data: dict[str, str]) -> None:
    add_troll(rated)

    response = signed_in(researcher).post(page_url(rated), data, follow=True)

    assert response.status_code == 200
    assert not RaterAction.objects.exists()


def test_an_unknown_rater_is_a_404(rated: Rated, researcher: User) -> None:
    assert signed_in(researcher).post(page_url(rated), {"rater": "nobody", "action": "exclude"}).status_code == 404


@pytest.mark.parametrize(("persona", "status"), [("annotator", 403), ("outsider", 404)])
def test_annotators_and_strangers_neither_read_nor_act(
    rated: Rated, annotator: User, outsider: User, persona: str, status: int
) -> None:
    add_troll(rated)
    client = signed_in({"annotator": annotator, "outsider": outsider}[persona])

    assert client.get(page_url(rated)).status_code == status
    assert client.post(page_url(rated), {"rater": "troll", "action": "exclude"}).status_code == status
    assert not AnnotatorStatus.objects.filter(excluded=True).exists()


def test_an_anonymous_visitor_is_sent_to_sign_in(rated: Rated) -> None:
    response = Client().post(page_url(rated), {"rater": "troll", "action": "exclude"})

    assert response.status_code == 302
    assert "login" in response["Location"]
