from __future__ import annotations

import logging
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.contrib.staticfiles import finders
from django.test import Client

from annotation.models import Campaign
from results.agreement import campaign_agreement
from results.leaderboards import campaign_leaderboard
from results.raters import parse_raters
from tests import factories
from tests.results.conftest import Rated, streamed


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_leaderboard_page_shows_the_table_and_inline_svg_pictures(rated: Rated, researcher: User) -> None:
    page = client_for(researcher).get(f"/results/{rated.campaign.slug}/", {"raters": "humans"}).content.decode()

    assert page.count("<svg") == 3
    assert "Predicted probability that row beats column" in page
    assert "model-x" in page
    assert "Humans and judges side by side" in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")  # nothing from a network


def test_agreement_page_shows_metrics_and_the_rater_heatmap(rated: Rated, researcher: User) -> None:
    page = client_for(researcher).get(f"/results/{rated.campaign.slug}/agreement/").content.decode()

    assert "Krippendorff" in page
    assert "0.750 " in page
    assert "Agreement between raters" in page
    assert rated.alice.pseudonym in page
    assert ">alice<" not in page


def test_results_pages_refuse_annotators_strangers_and_anonymous_visitors(
    rated: Rated, annotator: User, outsider: User
) -> None:
    path = f"/results/{rated.campaign.slug}/"
    assert client_for(annotator).get(path).status_code == 403
    assert client_for(outsider).get(path).status_code == 404
    assert Client().get(path).status_code == 302


def test_index_lists_the_researchers_campaigns(rated: Rated, researcher: User) -> None:
    factories.CampaignFactory.create(name="Hidden campaign")

    page = client_for(researcher).get("/results/").content.decode()

    assert rated.campaign.name in page
    assert "Hidden campaign" not in page


def test_admin_lists_campaign_reports_with_leaderboard_and_agreement(rated: Rated, researcher: User) -> None:
    client = client_for(researcher)
    changelist = client.get("/admin/results/campaignreport/")
    report_url = f"/admin/results/campaignreport/{rated.campaign.pk}/leaderboard/"
    leaderboard = client.get(report_url)
    agreement = client.get(f"/admin/results/campaignreport/{rated.campaign.pk}/agreement/")

    assert changelist.status_code == 200
    assert report_url in changelist.content.decode()
    assert leaderboard.status_code == 200
    assert leaderboard.content.decode().count('<svg xmlns="http://www.w3.org/2000/svg" role="img"') == 3
    assert agreement.status_code == 200


def test_admin_action_streams_one_campaigns_ratings(rated: Rated, researcher: User) -> None:
    response = client_for(researcher).post(
        "/admin/results/campaignreport/",
        {"action": "download_ratings", "_selected_action": [rated.campaign.pk]},
    )

    assert response.status_code == 200
    assert len(streamed(response).splitlines()) == 48


def test_admin_hides_other_campaigns_reports(rated: Rated, researcher: User) -> None:
    other = factories.CampaignFactory.create()

    response = client_for(researcher).get(f"/admin/results/campaignreport/{other.pk}/leaderboard/")

    assert response.status_code == 404


def test_admin_report_refuses_staff_without_campaign_permissions(rated: Rated) -> None:
    staff = factories.UserFactory.create(username="stan", is_staff=True)

    response = client_for(staff).get(f"/admin/results/campaignreport/{rated.campaign.pk}/leaderboard/")

    assert response.status_code == 403


def test_a_refused_results_page_logs_one_line_without_a_traceback(
    rated: Rated, annotator: User, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="django.request"):
        response = client_for(annotator).get(f"/results/{rated.campaign.slug}/")

    assert response.status_code == 403
    [record] = [r for r in caplog.records if r.name == "django.request"]
    assert record.getMessage() == f"Forbidden (Permission denied): /results/{rated.campaign.slug}/"
    assert logging.Formatter().format(record).count("\n") == 0


def test_a_server_error_still_logs_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError as exc:
        error = exc
    with caplog.at_level(logging.ERROR, logger="django.request"):
        logging.getLogger("django.request").error(
            "Internal Server Error: /x/", exc_info=error, extra={"status_code": 500}
        )

    [record] = caplog.records
    assert "Traceback" in logging.Formatter().format(record)
    assert "RuntimeError: boom" in logging.Formatter().format(record)


def test_a_bad_raters_value_shows_the_styled_page_with_its_form_and_a_message_naming_the_parameter(
    rated: Rated, researcher: User
) -> None:
    client = client_for(researcher)
    for path in (f"/results/{rated.campaign.slug}/", f"/results/{rated.campaign.slug}/agreement/"):
        response = client.get(path, {"raters": "nobody"})
        page = response.content.decode()

        assert response.status_code == 400
        assert response["Content-Type"].startswith("text/html")
        assert "results/results.css" in page
        assert '<form method="get" class="raters-form"' in page
        assert "raters: no rater named nobody has rated in this campaign" in page
        assert 'id="raters" name="raters" value="nobody"' in page
        assert page.count('aria-invalid="true"') == 1


def test_a_bad_exclusion_marks_the_leave_out_box(rated: Rated, researcher: User) -> None:
    response = client_for(researcher).get(f"/results/{rated.campaign.slug}/", {"exclude_raters": "a\x00b"})
    page = response.content.decode()

    assert response.status_code == 400
    assert "exclude_raters: null characters are not allowed" in page
    assert 'name="exclude_raters"' in page
    assert page.split('name="exclude_raters"')[1].split(">")[0].count('aria-invalid="true"') == 1


def test_the_rater_picker_lists_this_campaigns_raters_as_results_show_them(rated: Rated, researcher: User) -> None:
    elsewhere = factories.CampaignFactory.create(owner=researcher)
    comparison = factories.populate_campaign(elsewhere, prompts=1, models=["m1", "m2"])[0]
    factories.make_rating(comparison, factories.RaterFactory.create(name="other-team-rater"), winner=None)

    page = client_for(researcher).get(f"/results/{rated.campaign.slug}/").content.decode()
    datalist = page.split('<datalist id="rater-names">')[1].split("</datalist>")[0]

    assert '<option value="humans">' in datalist
    assert '<option value="judges">' in datalist
    assert f'<option value="{rated.alice.pseudonym}">' in datalist
    assert '<option value="expert_1">' in datalist
    assert '<option value="gpt-judge">' in datalist
    assert "alice" not in datalist  # an account holder appears by pseudonym only
    assert "other-team-rater" not in datalist
    assert "humans, judges, all, or rater names separated by commas (3 raters in this campaign)" in page


def test_results_pages_count_in_the_singular_for_one(campaign: Campaign, researcher: User) -> None:
    comparison = campaign.comparisons.order_by("id").first()
    assert comparison is not None
    human = factories.RaterFactory.create(name="solo")
    factories.make_rating(comparison, human, winner=comparison.output_a)
    client = client_for(researcher)

    leaderboard = client.get(f"/results/{campaign.slug}/").content.decode()
    agreement = client.get(f"/results/{campaign.slug}/agreement/").content.decode()

    assert "1 battle ·" in leaderboard
    assert "over 1 battle<" in leaderboard
    assert "1 battles" not in leaderboard
    assert "(1 rater in this campaign)" in leaderboard
    assert "1 human rating of 1 comparison by 1 rater ·" in agreement


def test_pages_link_the_favicon_which_is_served(rated: Rated, researcher: User) -> None:
    client = client_for(researcher)
    report = f"/admin/results/campaignreport/{rated.campaign.pk}/leaderboard/"
    for path in ("/results/", f"/results/{rated.campaign.slug}/", "/", "/accounts/login/", report):
        page = client.get(path).content.decode()
        assert '<link rel="icon" href="/static/frontend/favicon.svg" type="image/svg+xml">' in page, path

    icon = finders.find("frontend/favicon.svg")
    assert isinstance(icon, str)
    assert Path(icon).read_text().startswith("<svg")


def test_the_rater_picker_lists_a_new_rater_on_the_next_page(rated: Rated, researcher: User) -> None:
    client = client_for(researcher)
    path = f"/results/{rated.campaign.slug}/"
    assert "newcomer" not in client.get(path).content.decode()

    factories.make_rating(rated.comparisons[0], factories.RaterFactory.create(name="newcomer"), winner=None)

    page = client.get(path).content.decode()
    assert '<option value="newcomer">' in page
    assert "(4 raters in this campaign)" in page


def test_agreement_page_explains_its_figures_where_they_are_read(rated: Rated, researcher: User) -> None:
    page = client_for(researcher).get(f"/results/{rated.campaign.slug}/agreement/").content.decode()
    judges, per_rater = page.split("<h2>Judges against the humans</h2>")[1].split("<h2>Per rater</h2>")

    assert "in brackets" in page.split("<h2>Humans with humans</h2>")[1].split("</table>")[0]
    for column in ("With human majority", "Cohen's kappa", "Human ceiling", "Position consistency"):
        assert f"<dt>{column}</dt>" in judges.replace("&#x27;", "'")
    for column in ("With others' consensus", "Gold accuracy", 'Share "left"'):
        assert f"<dt>{column}</dt>" in per_rater.replace("&#x27;", "'").replace("&quot;", '"')


def test_favicon_ico_redirects_to_the_sites_icon(client: Client) -> None:
    """Pages that name no icon (the admin's) make browsers ask for /favicon.ico: it must not be a 404."""
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"] == "/static/frontend/favicon.svg"


GATE_LINE = "Consistency gate: 3 judge comparisons decided differently in the two orders counted as one tie each."


@pytest.mark.parametrize("page", ["", "agreement/"])
def test_the_consistency_gate_toggle_counts_a_judges_split_orders_as_one_tie(
    rated: Rated, researcher: User, page: str
) -> None:
    client = client_for(researcher)
    url = f"/results/{rated.campaign.slug}/{page}"
    plain = client.get(url, {"raters": "all"})
    gated = client.get(url, {"raters": "all", "consistent": "1"})

    assert (plain.status_code, gated.status_code) == (200, 200)
    checkbox = '<input type="checkbox" name="consistent" value="1"'
    assert checkbox + ">" in plain.content.decode()
    assert checkbox + " checked>" in gated.content.decode()
    assert GATE_LINE not in plain.content.decode()
    assert GATE_LINE in gated.content.decode()
    assert '<input type="hidden" name="raters" value="all">' in gated.content.decode()  # the other options stay
    selection = parse_raters("all")
    if page:
        assert gated.context["report"] == campaign_agreement(rated.campaign, selection, bootstrap=200, consistent=True)
        assert gated.context["report"] != plain.context["report"]
    else:
        assert gated.context["board"] == campaign_leaderboard(rated.campaign, selection, consistent=True)
        assert gated.context["board"]["n_battles"] == plain.context["board"]["n_battles"] - 3


@pytest.mark.parametrize(
    ("page", "query", "message"),
    [
        ("", {"consistent": "perhaps"}, "consistent: expected 1 or 0"),
        ("agreement/", {"consistent": "2"}, "consistent: expected 1 or 0"),
        ("", {"consistent": "1", "rater_model": "1"}, "leave consistent off"),
    ],
)
def test_a_consistency_gate_the_page_cannot_apply_is_a_400_marking_the_toggle(
    rated: Rated, researcher: User, page: str, query: dict[str, str], message: str
) -> None:
    response = client_for(researcher).get(f"/results/{rated.campaign.slug}/{page}", query)

    assert response.status_code == 400
    body = response.content.decode()
    assert message in body
    assert 'name="consistent" value="1" aria-invalid="true"' in body
