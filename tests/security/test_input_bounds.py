"""Every input of the researcher routes has a bound: past it, a 400 naming the field (or a bounded answer), never a
500, a crash or a request whose cost grows without limit.

Each case here failed before its bound existed: 1,500 exclusion globs took 17 s on a campaign of one rating and
5,000 crashed the process (Django nests each glob one level deeper into the query it clones), a page limit or
offset past PostgreSQL's bigint and a run's limit past its integer column were 500s, and so was a null character
or a superscript digit naming a judge in the judge report.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from django.test import Client

from judging.models import JudgePanel, JudgeRun, PanelRun
from results.raters import MAX_GLOBS, MAX_ITEM_CHARS, MAX_NAMES
from tests.security.world import World, build_world

pytestmark = pytest.mark.django_db

CAMPAIGN = "/api/v1/research/campaigns/alpha/"
# Every report that takes a rater selection, through the API and as a page.
SELECTION_ROUTES = [
    CAMPAIGN + "leaderboard/",
    CAMPAIGN + "leaderboard/?style_control=1",
    CAMPAIGN + "leaderboard/?influence=1",
    CAMPAIGN + "agreement/",
    CAMPAIGN + "ratings/",
    CAMPAIGN + "categories/",
    CAMPAIGN + "length-controlled/?baseline=alpha-secret-model-1",
    CAMPAIGN + "export/ratings.jsonl/manifest/",
    CAMPAIGN + "export/ratings.jsonl",
    "/results/alpha/",
    "/results/alpha/agreement/",
    "/results/alpha/categories/",
    "/results/alpha/combined/",
    "/results/alpha/style/",
]


@pytest.fixture
def world() -> World:
    return build_world()


@pytest.fixture
def ada(world: World) -> Client:
    client = Client()
    client.force_login(world.a.owner)
    return client


def _get(client: Client, url: str, **params: str) -> Any:
    joiner = "&" if "?" in url else "?"
    query = "&".join(f"{name}={value}" for name, value in params.items())
    started = time.monotonic()
    response = client.get(url + joiner + query if params else url)
    response.elapsed = time.monotonic() - started  # type: ignore[attr-defined]
    return response


def _post(client: Client, url: str, body: dict[str, Any]) -> Any:
    return client.post(url, json.dumps(body), content_type="application/json")


def _names_field(response: Any, field: str) -> bool:
    body = response.content.decode()
    return field in (response.json() if response["Content-Type"].startswith("application/json") else body)


@pytest.mark.parametrize("url", SELECTION_ROUTES)
def test_more_exclusion_globs_than_the_bound_are_a_400_naming_exclude_raters_and_answered_at_once(
    ada: Client, url: str
) -> None:
    response = _get(ada, url, exclude_raters=",".join(f"g{i}*" for i in range(1500)))
    assert response.status_code == 400
    assert _names_field(response, "exclude_raters")
    assert response.elapsed < 2.0, f"{response.elapsed:.1f} s to refuse 1,500 globs"


@pytest.mark.parametrize("url", SELECTION_ROUTES[:1] + SELECTION_ROUTES[-5:-4])
def test_the_bound_on_globs_counts_repeated_parameters_too(ada: Client, url: str) -> None:
    repeated = "&".join(f"exclude_raters=g{i}*" for i in range(MAX_GLOBS + 1))
    response = ada.get(url + ("&" if "?" in url else "?") + repeated)
    assert response.status_code == 400
    assert _names_field(response, "exclude_raters")


def test_as_many_globs_as_the_bound_are_answered(ada: Client) -> None:
    response = _get(ada, CAMPAIGN + "leaderboard/", exclude_raters=",".join(f"g{i}*" for i in range(MAX_GLOBS)))
    assert response.status_code == 200, response.content[:300]
    assert response.json()["n_battles"] == 1


@pytest.mark.parametrize("url", [CAMPAIGN + "leaderboard/", "/results/alpha/agreement/"])
def test_a_glob_or_a_rater_name_over_the_longest_name_is_a_400_naming_it(ada: Client, url: str) -> None:
    long = "x" * (MAX_ITEM_CHARS + 1)
    for field in ["exclude_raters", "raters"]:
        response = _get(ada, url, **{field: long})
        assert response.status_code == 400
        assert _names_field(response, field)


def test_more_rater_names_than_the_bound_are_a_400_naming_raters(ada: Client) -> None:
    response = _get(ada, CAMPAIGN + "leaderboard/", raters=",".join(f"n{i}" for i in range(MAX_NAMES + 1)))
    assert response.status_code == 400
    assert "raters" in response.json()
    assert "at most" in response.json()["raters"][0]


@pytest.mark.parametrize(
    "path", ["ratings/", "comparisons/", "judge-runs/", "panel-runs/", "judge-runs/{run}/verdicts/"]
)
def test_a_page_is_at_most_a_thousand_rows_and_an_offset_past_bigint_is_a_400(
    world: World, ada: Client, path: str
) -> None:
    assert world.a.run is not None
    url = CAMPAIGN + path.format(run=world.a.run.pk)
    huge = _get(ada, url, limit=str(10**20))
    assert huge.status_code == 200, huge.content[:300]
    assert "limit=1000" in (huge.json()["next"] or "limit=1000")
    assert _get(ada, url, limit="5").status_code == 200
    far = _get(ada, url, offset=str(10**20))
    assert far.status_code == 400
    assert "offset" in far.json()
    assert _get(ada, url, offset=str(2**62)).json()["results"] == []


def test_a_page_holds_at_most_the_bound_even_when_asked_for_more(world: World, ada: Client) -> None:
    from annotation.models import Comparison

    campaign = world.a.campaign
    prompt = world.a.prompts[0]
    outputs = [prompt.outputs.create(model_name=f"bulk-{i}", text=f"bulk {i}") for i in range(47)]
    Comparison.objects.bulk_create(
        Comparison(campaign=campaign, prompt=prompt, output_a=x, output_b=y)
        for i, x in enumerate(outputs)
        for y in outputs[i + 1 :]
    )  # 1,081 comparisons, plus the world's two
    page = _get(ada, CAMPAIGN + "comparisons/", limit="100000").json()
    assert page["count"] == 1083
    assert len(page["results"]) == 1000
    assert page["next"] is not None


@pytest.mark.parametrize("kind", ["judge-runs", "panel-runs"])
@pytest.mark.parametrize("limit", [2**31, 10**30])
def test_a_run_limit_past_its_column_is_a_400_naming_limit_and_starts_nothing(
    world: World, ada: Client, kind: str, limit: int
) -> None:
    assert world.a.judge is not None
    body = {"judge": world.a.judge.name} if kind == "judge-runs" else {"panel": "ALPHA-SECRET-panel"}
    runs, panel_runs = JudgeRun.objects.count(), PanelRun.objects.count()
    response = _post(ada, f"{CAMPAIGN}{kind}/", {**body, "limit": limit})
    assert response.status_code == 400
    assert "limit" in response.json()
    assert (JudgeRun.objects.count(), PanelRun.objects.count()) == (runs, panel_runs)


@pytest.mark.parametrize("name", ["%00", "x%00", "%C2%B2", "%D9%A1"])
def test_a_judge_named_with_a_null_character_or_a_non_ascii_digit_is_a_404_in_the_report(
    world: World, ada: Client, name: str
) -> None:
    api = ada.get(f"/api/v1/judges/{name}/report/")
    assert api.status_code == 404
    assert "judge" in api.json()["detail"].lower()
    assert ada.get(f"/results/alpha/judge-report/?judge={name}").status_code == 404


def test_a_panel_naming_another_teams_judge_is_refused_as_a_judge_that_does_not_exist(world: World) -> None:
    assert world.a.judge is not None
    assert world.b.judge is not None
    bea = Client()
    bea.force_login(world.b.owner)
    panels = JudgePanel.objects.count()
    response = _post(
        bea, "/api/v1/judge-panels/", {"name": "bea-panel", "members": [world.b.judge.name, world.a.judge.name]}
    )
    assert response.status_code == 400
    assert response.json()["judge"] == [f"judge: no judge named {world.a.judge.name!r} that you may use"]
    missing = _post(bea, "/api/v1/judge-panels/", {"name": "bea-panel", "members": [world.b.judge.name, "nobody"]})
    assert missing.json()["judge"] == ["judge: no judge named 'nobody' that you may use"]  # the same words
    assert JudgePanel.objects.count() == panels


def test_a_panel_of_more_members_than_the_bound_is_a_400_naming_members(world: World) -> None:
    bea = Client()
    bea.force_login(world.b.owner)
    response = _post(bea, "/api/v1/judge-panels/", {"name": "big", "members": [f"j{i}" for i in range(16)]})
    assert response.status_code == 400
    assert "members" in response.json()


def _forged(manifest: dict[str, Any], **selection: Any) -> dict[str, Any]:
    """Return the manifest with its selection changed and its checksum recomputed, as anyone can."""
    import hashlib

    from results import manifest as m

    body = {key: value for key, value in manifest.items() if key != "checksum"}
    body["selection"] = {**body["selection"], **selection}
    return {**body, "checksum": hashlib.sha256(m.canonical(body)).hexdigest()}


@pytest.mark.parametrize(
    "selection", [{"exclude": [f"g{i}*" for i in range(1500)]}, {"names": [f"n{i}" for i in range(MAX_NAMES + 1)]}]
)
def test_a_forged_manifest_is_held_to_the_bounds_of_a_selection(ada: Client, selection: dict[str, Any]) -> None:
    manifest = ada.get(CAMPAIGN + "leaderboard/").json()["manifest"]
    assert _post(ada, CAMPAIGN + "reproduce/", manifest).json()["identical"] is True
    started = time.monotonic()
    response = _post(ada, CAMPAIGN + "reproduce/", _forged(manifest, **selection))
    assert response.status_code == 400
    assert response.json()["selection"][0].startswith("manifest: selection.")
    assert time.monotonic() - started < 2.0


@pytest.mark.parametrize("admin_of", ["judgeconfig", "campaign"])
def test_the_admins_judge_actions_refuse_a_limit_past_the_run_column_and_start_nothing(
    world: World, ada: Client, admin_of: str
) -> None:
    assert world.a.judge is not None
    chosen = {"campaign": str(world.a.campaign.pk)} if admin_of == "judgeconfig" else {"judge": str(world.a.judge.pk)}
    selected = world.a.judge.pk if admin_of == "judgeconfig" else world.a.campaign.pk
    action = "judge_a_campaign" if admin_of == "judgeconfig" else "judge_campaigns"
    app = "judging" if admin_of == "judgeconfig" else "annotation"
    runs = JudgeRun.objects.count()
    response = ada.post(
        f"/admin/{app}/{admin_of}/",
        {"action": action, "_selected_action": [str(selected)], "limit": str(2**31), "orders": "", **chosen},
    )
    assert response.status_code == 200  # the action's form again, with the error
    assert "Ensure this value is less than or equal to 2147483647" in response.content.decode()
    assert JudgeRun.objects.count() == runs


def test_a_leaderboard_seed_is_one_its_manifest_can_be_reproduced_with(ada: Client) -> None:
    """A seed past 2^63-1 made a manifest that reproduce/ then refused; now the leaderboard refuses it, on seed."""
    too_big = _get(ada, CAMPAIGN + "leaderboard/", seed=str(2**63), bootstrap="5")
    assert too_big.status_code == 400
    assert "seed" in too_big.json()
    largest = _get(ada, CAMPAIGN + "leaderboard/", seed=str(2**63 - 1), bootstrap="5").json()
    assert _post(ada, CAMPAIGN + "reproduce/", largest["manifest"]).json()["identical"] is True


def test_stability_repeats_of_a_judge_on_a_campaign_are_bounded_while_they_run(world: World, ada: Client) -> None:
    """Each repeat judges every verdict again at the judge's owner's expense; one POST after another queued them
    without end before the bound."""
    from judging.api import MAX_ACTIVE_REPEATS

    assert world.a.judge is not None
    body = {"judge": world.a.judge.name, "repeat": True}
    for _ in range(MAX_ACTIVE_REPEATS):
        assert _post(ada, f"{CAMPAIGN}judge-runs/", body).status_code == 201
    runs = JudgeRun.objects.count()
    refused = _post(ada, f"{CAMPAIGN}judge-runs/", body)
    assert refused.status_code == 409
    assert refused.json()["repeat"][0].startswith(f"repeat: {world.a.judge.name} already has {MAX_ACTIVE_REPEATS}")
    assert JudgeRun.objects.count() == runs
    assert _post(ada, f"{CAMPAIGN}judge-runs/", {"judge": world.a.judge.name}).status_code == 201  # not a repeat
    oldest = JudgeRun.objects.filter(judge=world.a.judge, repeat=1).get()
    assert ada.post(f"{CAMPAIGN}judge-runs/{oldest.pk}/cancel/").status_code == 200
    assert _post(ada, f"{CAMPAIGN}judge-runs/", body).status_code == 201


def test_a_judge_past_its_last_repeat_number_is_a_409_not_a_500(world: World, ada: Client) -> None:
    assert world.a.judge is not None
    JudgeRun.objects.filter(pk=world.a.run.pk if world.a.run else 0).update(repeat=32767)
    refused = _post(ada, f"{CAMPAIGN}judge-runs/", {"judge": world.a.judge.name, "repeat": True})
    assert refused.status_code == 409
    assert "repeat numbers" in refused.json()["repeat"][0]
