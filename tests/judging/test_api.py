"""The judge API: judges, starting, watching, cancelling and resuming runs, verdicts; who may do what."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotation.models import Campaign
from judging import selectors, services
from judging.models import JudgeConfig, JudgeRun, JudgeVerdict
from tests import factories
from tests.judging.conftest import LocalLLM

ClientFor = Callable[[User | None], APIClient]
MakeJudge = Callable[..., JudgeConfig]


def runs_url(campaign: Campaign, tail: str = "") -> str:
    return f"/api/v1/research/campaigns/{campaign.slug}/judge-runs/{tail}"


def run_url(run: JudgeRun, tail: str = "") -> str:
    return runs_url(run.campaign, f"{run.pk}/{tail}")


def _judge_all(run: JudgeRun) -> None:
    for verdict_id in run.verdicts.values_list("pk", flat=True):
        services.judge_verdict(verdict_id=verdict_id, worker="test")


@pytest.fixture
def superuser(db: None) -> User:
    return factories.UserFactory.create(username="root", is_superuser=True, is_staff=True)


@pytest.fixture
def co_researcher(campaign: Campaign) -> User:
    """A staff user listed among the campaign's researchers (not its owner)."""
    user = factories.UserFactory.create(username="dora", is_staff=True)
    campaign.researchers.add(user)
    return user


def test_judges_are_listed_with_the_key_variable_name_never_the_key(
    make_judge: MakeJudge, researcher: User, campaign: Campaign, api_client_for: ClientFor,
    monkeypatch: pytest.MonkeyPatch, settings: Any,
) -> None:  # fmt: skip
    settings.EVALPLATFORM_JUDGE_KEY_ENVS = ["JUDGE_SECRET_KEY"]
    monkeypatch.setenv("JUDGE_SECRET_KEY", "sk-very-secret-value")
    make_judge("gpt", api_key_env="JUDGE_SECRET_KEY", template="arena_hard")
    response = api_client_for(researcher).get("/api/v1/judges/")
    assert response.status_code == 200
    [judge] = response.json()
    assert (judge["name"], judge["api_key_env"], judge["template"]) == ("gpt", "JUDGE_SECRET_KEY", "arena_hard")
    assert "sk-very-secret-value" not in response.content.decode()


def test_judges_are_refused_to_annotators_outsiders_and_anonymous(
    make_judge: MakeJudge, campaign: Campaign, annotator: User, outsider: User, api_client_for: ClientFor
) -> None:
    make_judge()
    assert api_client_for(annotator).get("/api/v1/judges/").status_code == 403
    assert api_client_for(outsider).get("/api/v1/judges/").status_code == 403
    assert api_client_for(None).get("/api/v1/judges/").status_code in (401, 403)


def test_a_staff_user_with_the_judge_view_permission_lists_judges(
    make_judge: MakeJudge, api_client_for: ClientFor
) -> None:
    make_judge()
    staff = factories.UserFactory.create(username="ops", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_judgeconfig"))
    assert [j["name"] for j in api_client_for(staff).get("/api/v1/judges/").json()] == ["local-judge"]


ENDPOINTS = [
    ("get", ""),
    ("get", "{run}/"),
    ("get", "{run}/verdicts/"),
    ("post", "{run}/cancel/"),
    ("post", "{run}/resume/"),
    ("post", ""),
]


@pytest.mark.parametrize(("method", "tail"), ENDPOINTS)
def test_annotators_get_403_strangers_404_and_anonymous_are_refused_on_every_run_endpoint(
    campaign: Campaign, make_judge: MakeJudge, annotator: User, outsider: User, api_client_for: ClientFor,
    sent: list[Any], method: str, tail: str,
) -> None:  # fmt: skip
    run = services.start_run(campaign=campaign, judge=make_judge(), limit=1)
    url = runs_url(campaign, tail.format(run=run.pk))
    body = {"judge": "local-judge"}
    for user, code in [(annotator, 403), (outsider, 404), (None, None)]:
        response = getattr(api_client_for(user), method)(url, body, format="json")
        assert response.status_code == code if code else response.status_code in (401, 403)
    run.refresh_from_db()
    assert run.status == JudgeRun.Status.RUNNING
    assert JudgeRun.objects.count() == 1


@pytest.mark.parametrize("who", ["researcher", "co_researcher", "superuser"])
@pytest.mark.parametrize(("method", "tail", "code"), [(m, t, 201 if (m, t) == ("post", "") else 200)
                                                      for m, t in ENDPOINTS])  # fmt: skip
def test_owner_researchers_and_superusers_reach_every_run_endpoint(
    campaign: Campaign, make_judge: MakeJudge, api_client_for: ClientFor, sent: list[Any],
    request: pytest.FixtureRequest, who: str, method: str, tail: str, code: int,
) -> None:  # fmt: skip
    user = request.getfixturevalue(who)
    run = services.start_run(campaign=campaign, judge=make_judge(), limit=1)
    url = runs_url(campaign, tail.format(run=run.pk))
    response = getattr(api_client_for(user), method)(url, {"judge": "local-judge", "limit": 1}, format="json")
    assert response.status_code == code, response.content


def test_a_run_of_another_campaign_is_not_found_under_this_one(
    campaign: Campaign, make_judge: MakeJudge, researcher: User, api_client_for: ClientFor, sent: list[Any]
) -> None:
    other = factories.CampaignFactory.create(owner=researcher, slug="other")
    factories.populate_campaign(other, prompts=1, models=["m1", "m2"])
    run = services.start_run(campaign=other, judge=make_judge())
    assert api_client_for(researcher).get(runs_url(campaign, f"{run.pk}/")).status_code == 404


def test_token_authentication_starts_a_run(
    campaign: Campaign, make_judge: MakeJudge, researcher: User, sent: list[Any]
) -> None:
    make_judge()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=researcher).key}")
    assert client.post(runs_url(campaign), {"judge": "local-judge", "limit": 1}, format="json").status_code == 201


def test_starting_a_run_returns_it_with_its_progress_and_sends_its_work_after_commit(
    campaign: Campaign, make_judge: MakeJudge, researcher: User, api_client_for: ClientFor, sent: list[Any],
    django_capture_on_commit_callbacks: Any,
) -> None:  # fmt: skip
    make_judge()
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client_for(researcher).post(
            runs_url(campaign), {"judge": "local-judge", "limit": 3}, format="json"
        )
    assert response.status_code == 201
    body = response.json()
    run = JudgeRun.objects.get()
    assert (body["id"], body["campaign"], body["judge"], body["status"], body["limit"]) == (
        run.pk, campaign.slug, "local-judge", "running", 3,
    )  # fmt: skip
    assert body["progress"] == {
        "total": 6, "finished": 0, "pending": 6, "in_flight": 0, "done": 0, "parse_failed": 0, "failed": 0,
        "from_cache": 0,
    }  # fmt: skip
    assert body["consistency"] == {"pairs": 0, "consistent": 0, "rate": None}
    assert sorted(i for i, _ in sent) == sorted(run.verdicts.values_list("pk", flat=True))
    assert run.requested_by == researcher


def test_a_run_may_ask_for_one_order_per_comparison_instead_of_the_judges_both(
    campaign: Campaign, make_judge: MakeJudge, researcher: User, api_client_for: ClientFor, sent: list[Any]
) -> None:
    make_judge(both_orders=True)
    body = {"judge": "local-judge", "limit": 4, "orders": "one"}
    response = api_client_for(researcher).post(runs_url(campaign), body, format="json")
    assert response.json()["progress"]["total"] == 4


def test_a_stability_repeat_judges_everything_again_with_its_seed(
    campaign: Campaign, make_judge: MakeJudge, researcher: User, api_client_for: ClientFor, sent: list[Any]
) -> None:
    make_judge(temperature=0.3)
    client = api_client_for(researcher)
    first = client.post(runs_url(campaign), {"judge": "local-judge", "limit": 2}, format="json").json()
    body = {"judge": "local-judge", "limit": 2, "repeat": True, "seed": 9}
    repeat = client.post(runs_url(campaign), body, format="json").json()
    assert (first["repeat"], first["seed"], first["temperature"]) == (0, None, 0.3)
    assert (repeat["repeat"], repeat["seed"], repeat["progress"]["total"]) == (1, 9, 4)
    assert repeat["config_version"] == first["config_version"] != ""


@pytest.mark.django_db(transaction=True)
def test_a_run_with_nothing_new_to_judge_is_returned_as_completed(
    campaign: Campaign, make_judge: MakeJudge, researcher: User, api_client_for: ClientFor, sent: list[Any]
) -> None:
    judge = make_judge()
    first = services.start_run(campaign=campaign, judge=judge, limit=1)
    first.verdicts.update(state=JudgeVerdict.State.DONE, parsed={"outcome": "tie", "strength": None, "label": "C"})
    response = api_client_for(researcher).post(runs_url(campaign), {"judge": judge.name, "limit": 1}, format="json")
    assert response.status_code == 201
    assert (response.json()["status"], response.json()["progress"]["total"]) == ("completed", 0)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "judge"),
        ({"judge": "nobody"}, "judge"),
        ({"judge": "local-judge", "limit": 0}, "limit"),
        ({"judge": "local-judge", "limit": "many"}, "limit"),
        ({"judge": "local-judge", "orders": "three"}, "orders"),
        ({"judge": "local-judge", "seed": 2**70}, "seed"),
        ({"judge": "local-judge", "repeat": "often"}, "repeat"),
    ],
)
def test_bad_run_input_is_400_with_the_field_and_starts_nothing(
    campaign: Campaign, make_judge: MakeJudge, researcher: User, api_client_for: ClientFor, sent: list[Any],
    body: dict[str, Any], field: str,
) -> None:  # fmt: skip
    make_judge()
    response = api_client_for(researcher).post(runs_url(campaign), body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not JudgeRun.objects.exists()


def test_a_run_that_cannot_start_says_why(
    campaign: Campaign, make_judge: MakeJudge, researcher: User, api_client_for: ClientFor
) -> None:
    make_judge(template="mt_bench_reference")
    response = api_client_for(researcher).post(runs_url(campaign), {"judge": "local-judge"}, format="json")
    assert response.status_code == 400
    assert "needs reference answers" in response.json()["template"][0]
    assert not JudgeRun.objects.exists()


def test_cancel_then_resume_then_conflicts_once_nothing_is_left(
    campaign: Campaign, make_judge: MakeJudge, researcher: User, api_client_for: ClientFor, local_llm: LocalLLM,
    sent: list[Any],
) -> None:  # fmt: skip
    url, _ = local_llm()
    run = services.start_run(campaign=campaign, judge=make_judge(base_url=url), limit=1)
    client = api_client_for(researcher)

    cancelled = client.post(run_url(run, "cancel/"))
    assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled")
    again = client.post(run_url(run, "cancel/"))
    assert again.status_code == 409
    assert "cancelled, not running" in again.json()["detail"]

    resumed = client.post(run_url(run, "resume/"), {}, format="json")
    assert (resumed.status_code, resumed.json()["status"]) == (200, "running")
    _judge_all(run)
    run.refresh_from_db()
    assert run.status == JudgeRun.Status.COMPLETED
    assert client.post(run_url(run, "cancel/")).status_code == 409
    nothing_left = client.post(run_url(run, "resume/"), {}, format="json")
    assert nothing_left.status_code == 409
    assert "nothing left to judge" in nothing_left.json()["detail"]


def test_resume_retrying_failures_judges_failed_verdicts_again(
    campaign: Campaign, make_judge: MakeJudge, researcher: User, api_client_for: ClientFor, sent: list[Any]
) -> None:
    run = services.start_run(campaign=campaign, judge=make_judge(), limit=1)
    run.verdicts.update(state=JudgeVerdict.State.FAILED, reason="HTTP 401: bad key")
    services.finish_run_if_done(run_id=run.pk)
    client = api_client_for(researcher)
    plain = client.post(run_url(run, "resume/"), {}, format="json")
    assert plain.status_code == 409
    assert "would retry its 2 failed verdict(s)" in plain.json()["detail"]

    retrying = client.post(run_url(run, "resume/"), {"retry_failed": True}, format="json")

    assert retrying.status_code == 200
    assert retrying.json()["status"] == "running"
    assert retrying.json()["progress"]["pending"] == 2
    assert client.post(run_url(run, "resume/"), {"retry_failed": "sometimes"}, format="json").status_code == 400


def test_run_detail_and_list_show_progress_tokens_cost_latency_parse_failures_and_consistency(
    campaign: Campaign, make_judge: MakeJudge, researcher: User, api_client_for: ClientFor, local_llm: LocalLLM,
    sent: list[Any], django_assert_max_num_queries: Any,
) -> None:  # fmt: skip
    url, _ = local_llm(fault_rate=0.5, faults=("malformed",), seed=2)
    judge = make_judge(base_url=url, price_input_per_million=1, price_output_per_million=2)
    run = services.start_run(campaign=campaign, judge=judge, limit=4)
    _judge_all(run)
    services.start_run(campaign=campaign, judge=make_judge("second", base_url=url), limit=2)
    services.start_run(campaign=campaign, judge=make_judge("third", base_url=url), limit=2)
    progress = selectors.run_progress(run)
    consistency = selectors.position_consistency(judge, run=run)
    assert progress.parse_failed > 0

    client = api_client_for(researcher)
    detail = client.get(run_url(run)).json()
    with django_assert_max_num_queries(5):  # not one more per run
        listing = client.get(runs_url(campaign)).json()

    assert detail["status"] == "completed"
    assert detail["progress"]["done"] == progress.done
    assert detail["progress"]["parse_failed"] == progress.parse_failed
    assert detail["progress"]["finished"] == detail["progress"]["total"] == 8
    assert (detail["tokens_in"], detail["tokens_out"]) == (progress.tokens_in, progress.tokens_out)
    assert detail["tokens_in"] > 0
    assert float(detail["cost"]) == pytest.approx(float(progress.cost))
    assert float(detail["cost"]) > 0
    assert detail["mean_latency_ms"] == pytest.approx(progress.mean_latency_ms)
    assert detail["consistency"] == {
        "pairs": consistency.pairs, "consistent": consistency.consistent, "rate": consistency.rate,
    }  # fmt: skip
    assert listing["count"] == 3
    assert [r["judge"] for r in listing["results"]] == ["third", "second", "local-judge"]  # newest first
    assert listing["results"][2] == detail
    only_running = client.get(runs_url(campaign), {"status": "running"}).json()
    assert [r["judge"] for r in only_running["results"]] == ["third", "second"]
    assert client.get(runs_url(campaign), {"status": "asleep"}).status_code == 400


def test_verdicts_are_paginated_and_filtered_by_state_outcome_and_parse_failure(
    campaign: Campaign, make_judge: MakeJudge, researcher: User, api_client_for: ClientFor, local_llm: LocalLLM,
    sent: list[Any],
) -> None:  # fmt: skip
    url, _ = local_llm(fault_rate=0.5, faults=("malformed",), seed=2)
    run = services.start_run(campaign=campaign, judge=make_judge(base_url=url), limit=4)
    _judge_all(run)
    client = api_client_for(researcher)
    verdicts = run.verdicts.select_related("comparison")
    parse_failed = verdicts.filter(state=JudgeVerdict.State.PARSE_FAILED)
    a_wins = verdicts.filter(parsed__outcome="A")

    page = client.get(run_url(run, "verdicts/"), {"limit": 3}).json()
    unparseable = client.get(run_url(run, "verdicts/"), {"parse_failed": "true"}).json()
    parsed = client.get(run_url(run, "verdicts/"), {"parse_failed": "false"}).json()
    by_state = client.get(run_url(run, "verdicts/"), {"state": "parse_failed"}).json()
    a_page = client.get(run_url(run, "verdicts/"), {"outcome": "A"}).json()

    assert (page["count"], len(page["results"]), bool(page["next"])) == (8, 3, True)
    assert {v["id"] for v in unparseable["results"]} == set(parse_failed.values_list("pk", flat=True))
    assert unparseable == by_state
    assert all(v["raw_response"] and v["reason"] and v["outcome"] is None for v in unparseable["results"])
    assert parsed["count"] == 8 - parse_failed.count()
    assert {v["id"] for v in a_page["results"]} == set(a_wins.values_list("pk", flat=True))
    for row in a_page["results"]:
        verdict = verdicts.get(pk=row["id"])
        assert row["winner_output_id"] == row["shown_first_output_id"] == verdict.shown_first_id
    for bad in ({"outcome": "C"}, {"state": "lost"}, {"parse_failed": "perhaps"}):
        response = client.get(run_url(run, "verdicts/"), bad)
        assert response.status_code == 400
        assert set(bad) <= set(response.json())


def test_the_schema_documents_the_judge_endpoints(superuser: User, api_client_for: ClientFor) -> None:
    schema = api_client_for(superuser).get("/api/schema/", {"format": "json"}).json()
    paths = schema["paths"]
    run = "/api/v1/research/campaigns/{slug}/judge-runs/{run_id}/"
    assert {"/api/v1/judges/", "/api/v1/research/campaigns/{slug}/judge-runs/", run} <= set(paths)
    assert set(paths["/api/v1/research/campaigns/{slug}/judge-runs/"]) == {"get", "post"}
    assert "409" in paths[run + "cancel/"]["post"]["responses"]
    assert "409" in paths[run + "resume/"]["post"]["responses"]
    assert {p["name"] for p in paths[run + "verdicts/"]["get"]["parameters"]} >= {"state", "outcome", "parse_failed"}


def test_a_probability_judges_verdicts_carry_the_probability_the_judge_gave(
    campaign: Campaign, make_judge: MakeJudge, researcher: User, api_client_for: ClientFor, local_llm: LocalLLM,
    sent: list[Any],
) -> None:  # fmt: skip
    url, _ = local_llm(position_bias=1.0)
    run = services.start_run(campaign=campaign, judge=make_judge(base_url=url, template="probability"), limit=2)
    _judge_all(run)

    rows = api_client_for(researcher).get(run_url(run, "verdicts/")).json()["results"]
    assert [(r["state"], r["outcome"], r["probability"], r["label"]) for r in rows] == [
        ("done", "A", 0.7, "P=0.70")
    ] * 4
    assert all(r["winner_output_id"] == r["shown_first_output_id"] for r in rows)
