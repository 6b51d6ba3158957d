"""Schemathesis against the project's own OpenAPI schema, as each persona: no server error, no leak of team A.

Every operation of the schema gets requests generated from its parameters and bodies (Hypothesis, through
schemathesis), sent through Django with the persona's token. Path parameters are mostly the world's real campaigns,
runs and assignments (team A's and team B's), so the requests reach the views' validation and services rather than
stopping at a 404; the rest are whatever the schema admits. Each persona must get no 5xx, and no persona who may
not read team A may find its marker in a body.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import schemathesis
from django.test import Client
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.core import NotSet

from judging.models import PanelRun
from tests.security.world import MARKER, World, build_world

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

EXAMPLES_PER_OPERATION = 12
# Who may read team A's texts through the API: its owner, the superuser, and alice (her own comparisons).
MAY_SEE_A = {"ada", "root", "alice"}


def openapi_schema() -> Any:
    raw = SchemaGenerator().get_schema(request=None, public=True)  # type: ignore[no-untyped-call]
    return schemathesis.openapi.from_dict(json.loads(json.dumps(raw, default=str)))


def real_values(world: World) -> list[dict[str, Any]]:
    """Path parameter values that name real objects, one set for each team (alice's and remy's leases in A)."""
    teams = []
    for team, assignment in [(world.a, world.assignments["alice"]), (world.b, world.assignments["remy"])]:
        assert team.run is not None
        assert team.judge is not None
        teams.append(
            {
                "slug": team.campaign.slug,
                "campaign_id": team.campaign.pk,
                "run_id": team.run.pk,
                "assignment_id": assignment.pk,
                "judge": str(team.judge.pk),
                "judge_name": team.judge.name,
                "panel_run_id": PanelRun.objects.get(campaign=team.campaign).pk,
            }
        )
    return teams


REAL_FILES = {
    "dataset": ["ratings", "battles", "dpo", "alpaca_eval", "arena"],
    "file_type": ["jsonl", "csv", "parquet"],
}


def send(client: Client, case: Any, token: str | None) -> Any:
    path = case.formatted_path
    headers = {"Authorization": f"Token {token}"} if token else {}
    query = {k: v for k, v in (case.query or {}).items() if v is not None}
    body = None if isinstance(case.body, NotSet) else case.body
    method = case.method.lower()
    if method == "get":
        return client.get(path, query, headers=headers)
    suffix = ("?" + "&".join(f"{k}={v}" for k, v in query.items())) if query else ""
    payload = json.dumps(body) if body is not None else ""
    send_method = getattr(client, method)
    return send_method(path + suffix, payload, content_type="application/json", headers=headers)


def content(response: Any) -> bytes:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)
    return bytes(response.content)


@pytest.mark.parametrize("persona", ["anonymous", "alice", "remy", "bea", "ada", "root"])
def test_generated_requests_get_no_server_error_and_leak_nothing(persona: str) -> None:
    world = build_world()
    token = world.token(persona)
    values = real_values(world)
    client = Client()
    problems: list[str] = []

    for result in openapi_schema().get_all_operations():
        operation = result.ok()

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            database=None,
            deadline=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(), data=st.data())
        def probe(case: Any, data: st.DataObject) -> None:
            # Seven times in eight the path names real objects (of team A or B), else what was generated.
            if case.path_parameters and data.draw(st.integers(0, 7), label="real objects"):
                team = data.draw(st.sampled_from(values), label="team")
                for name in case.path_parameters:
                    if name == "run_id" and "panel-runs" in case.path:
                        case.path_parameters[name] = team["panel_run_id"]
                    elif name == "judge" and data.draw(st.booleans(), label="judge by name"):
                        case.path_parameters[name] = team["judge_name"]
                    elif name in team:
                        case.path_parameters[name] = team[name]
                    elif name in REAL_FILES:
                        case.path_parameters[name] = data.draw(st.sampled_from(REAL_FILES[name]), label=name)
            response = send(client, case, token)
            where = f"{persona} {case.method} {case.formatted_path} query={case.query!r}"
            if response.status_code >= 500:
                problems.append(f"{where}: {response.status_code}")
            body = content(response)
            sent = f"{case.formatted_path} {case.query!r} {case.body!r}".lower()  # an answer may echo what was sent
            if persona not in MAY_SEE_A and MARKER.encode() in body.lower() and MARKER not in sent:
                problems.append(f"{where}: team A's data in the body")

        probe()
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(sorted(set(problems))[:50])
