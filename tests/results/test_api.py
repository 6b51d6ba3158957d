from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import pyarrow.parquet as pq
import pytest
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests import factories
from tests.results.conftest import Rated, streamed

ClientFor = Callable[[User | None], APIClient]


def url(rated: Rated, tail: str = "") -> str:
    return f"/api/v1/research/campaigns/{rated.campaign.slug}/{tail}"


def test_researcher_lists_only_the_campaigns_they_research(
    rated: Rated, researcher: User, outsider: User, api_client_for: ClientFor
) -> None:
    factories.CampaignFactory.create(slug="someone-elses")
    shared = factories.CampaignFactory.create(slug="shared-with-rita")
    shared.researchers.add(researcher)

    slugs = {c["slug"] for c in api_client_for(researcher).get("/api/v1/research/campaigns/").json()}

    assert slugs == {rated.campaign.slug, "shared-with-rita"}
    assert api_client_for(outsider).get("/api/v1/research/campaigns/").json() == []


@pytest.mark.parametrize("tail", ["", "comparisons/", "ratings/", "leaderboard/", "agreement/", "export/ratings.jsonl"])
def test_annotators_get_403_and_strangers_404_on_every_endpoint(
    rated: Rated, annotator: User, outsider: User, api_client_for: ClientFor, tail: str
) -> None:
    assert api_client_for(annotator).get(url(rated, tail)).status_code == 403
    assert api_client_for(outsider).get(url(rated, tail)).status_code == 404
    assert api_client_for(None).get(url(rated, tail)).status_code in (401, 403)


def test_superuser_reads_any_campaign(rated: Rated, api_client_for: ClientFor) -> None:
    admin = factories.UserFactory.create(username="root", is_superuser=True, is_staff=True)

    response = api_client_for(admin).get(url(rated))

    assert response.status_code == 200
    assert response.json()["models"] == ["model-x", "model-y", "model-z"]
    assert response.json()["n_ratings"] == 48


def test_token_authentication_reaches_the_api(rated: Rated, researcher: User) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=researcher).key}")

    assert client.get(url(rated)).status_code == 200


def test_ratings_are_paginated_filterable_and_show_pseudonyms_without_n_plus_1(
    rated: Rated, researcher: User, api_client_for: ClientFor, django_assert_max_num_queries: Any
) -> None:
    client = api_client_for(researcher)
    with django_assert_max_num_queries(8):
        page = client.get(url(rated, "ratings/"), {"limit": 30}).json()
    humans = client.get(url(rated, "ratings/"), {"raters": "humans", "verdict": "tie"}).json()

    assert page["count"] == 48
    assert len(page["results"]) == 30
    assert page["next"]
    assert rated.alice.pseudonym in {r["rater"] for r in page["results"]}
    assert "alice" not in json.dumps(page)
    assert humans["count"] == 3
    assert {r["rater"] for r in humans["results"]} == {"expert_1"}


def test_comparisons_are_filtered_by_model_with_their_rating_counts_without_n_plus_1(
    rated: Rated, researcher: User, api_client_for: ClientFor, django_assert_max_num_queries: Any
) -> None:
    with django_assert_max_num_queries(8):
        body = api_client_for(researcher).get(url(rated, "comparisons/"), {"model": "model-z"}).json()

    assert body["count"] == 8
    assert all("model-z" in (c["model_a"], c["model_b"]) for c in body["results"])
    assert {c["n_ratings"] for c in body["results"]} == {4}


def test_leaderboard_and_agreement_endpoints(rated: Rated, researcher: User, api_client_for: ClientFor) -> None:
    client = api_client_for(researcher)
    board = client.get(url(rated, "leaderboard/"), {"raters": "humans", "bootstrap": "20"}).json()
    agreement = client.get(url(rated, "agreement/"), {"bootstrap": "20"}).json()

    assert [r["model"] for r in board["ratings"]] == ["model-x", "model-y", "model-z"]
    assert board["side_by_side"]["groups"] == ["humans", "gpt-judge"]
    assert agreement["mtbench_agreement"]["with_ties"]["pairs"] == 12
    gated = client.get(url(rated, "leaderboard/"), {"raters": "judges", "consistent": "1"}).json()
    assert (gated["inconsistent_pairs"], gated["manifest"]["options"]["consistent"]) == (3, True)
    bad = client.get(url(rated, "leaderboard/"), {"raters": "nobody"})
    assert bad.status_code == 400
    assert "nobody" in bad.json()["raters"][0]


def test_export_download_streams_jsonl_and_parquet(rated: Rated, researcher: User, api_client_for: ClientFor) -> None:
    client = api_client_for(researcher)
    jsonl = client.get(url(rated, "export/dpo.jsonl"), {"aggregate": "each", "raters": "humans"})
    parquet = client.get(url(rated, "export/arena.parquet"))

    assert jsonl.status_code == 200
    assert jsonl.streaming
    assert "attachment" in jsonl["Content-Disposition"]
    rows = [json.loads(line) for line in streamed(jsonl).splitlines()]
    assert len(rows) == 12 + 9
    table = pq.read_table(io.BytesIO(streamed(parquet)))
    assert table.num_rows == 48
    assert client.get(url(rated, "export/ratings.txt")).status_code == 400
    assert client.get(url(rated, "export/secrets.jsonl")).status_code == 400


def test_openapi_schema_lists_the_researcher_api(researcher: User, api_client_for: ClientFor) -> None:
    schema = api_client_for(researcher).get("/api/schema/", {"format": "json"}).json()

    paths = set(schema["paths"])
    assert "/api/v1/research/campaigns/{slug}/leaderboard/" in paths
    assert "/api/v1/research/campaigns/{slug}/export/{dataset}.{file_type}" in paths


@pytest.mark.parametrize(
    ("tail", "params", "field"),
    [
        ("leaderboard/", {"bootstrap": "-1"}, "bootstrap"),
        ("leaderboard/", {"bootstrap": "many"}, "bootstrap"),
        ("leaderboard/", {"bootstrap": "2001"}, "bootstrap"),
        ("leaderboard/", {"seed": "-5"}, "seed"),
        ("leaderboard/", {"consistent": "perhaps"}, "consistent"),
        ("leaderboard/", {"consistent": "1", "combine": "ppi"}, "consistent"),
        ("agreement/", {"bootstrap": "1e3"}, "bootstrap"),
        ("agreement/", {"consistent": "perhaps"}, "consistent"),
        ("export/arena.jsonl", {"consistent": "perhaps"}, "consistent"),
        ("export/arena.jsonl/manifest/", {"consistent": "2"}, "consistent"),
        ("ratings/", {"verdict": "maybe"}, "verdict"),
        ("ratings/", {"source": "web"}, "source"),
        ("ratings/", {"comparison": "0"}, "comparison"),
        ("comparisons/", {"gold": "perhaps"}, "gold"),
        ("comparisons/", {"question_id": "q\x001"}, "question_id"),
        ("leaderboard/", {"raters": "alice\x00"}, "raters"),
        ("agreement/", {"exclude_raters": "x\x00*"}, "exclude_raters"),
        ("export/ratings.jsonl", {"raters": "\x00"}, "raters"),
    ],
)
def test_a_bad_query_parameter_is_a_400_that_names_it(
    rated: Rated, researcher: User, api_client_for: ClientFor, tail: str, params: dict[str, str], field: str
) -> None:
    response = api_client_for(researcher).get(url(rated, tail), params)

    assert response.status_code == 400
    assert field in response.json()


def test_the_results_pages_refuse_a_null_character_in_the_rater_selection(rated: Rated, researcher: User) -> None:
    client = APIClient()
    client.force_login(researcher)

    response = client.get(f"/results/{rated.campaign.slug}/", {"raters": "alice\x00"})

    assert response.status_code == 400
    assert "null characters" in response.content.decode()


def test_export_download_says_how_many_rows_it_left_out_in_its_headers(
    rated: Rated, researcher: User, api_client_for: ClientFor
) -> None:
    from annotation.models import Output

    client = api_client_for(researcher)
    before = client.get(url(rated, "export/dpo.jsonl"), {"aggregate": "each"})
    assert before["X-Export-Skipped-Rows"] == "0"
    assert "X-Export-Warning" not in before
    n_before = len(streamed(before).splitlines())
    Output.objects.filter(pk=rated.comparisons[0].output_a_id).update(text="")

    response = client.get(url(rated, "export/dpo.json"), {"aggregate": "each"})

    assert response.streaming
    skipped = int(response["X-Export-Skipped-Rows"])
    assert skipped > 0
    assert (
        response["X-Export-Warning"]
        == f"skipped {skipped} preference pairs whose prompt, chosen or rejected text is empty"
    )
    assert len(json.loads(streamed(response))) == n_before - skipped


def test_export_download_states_its_rater_selection_in_a_header(
    rated: Rated, researcher: User, api_client_for: ClientFor
) -> None:
    client = api_client_for(researcher)

    everyone = client.get(url(rated, "export/dpo.jsonl"))
    judge = client.get(url(rated, "export/dpo.jsonl"), {"raters": "gpt-judge"})

    assert everyone["X-Export-Raters"] == "raters: all (the default), 2 humans and 1 judge: humans and judges mixed"
    assert all(json.loads(line)["n_ratings"] == 3 for line in streamed(everyone).splitlines())
    assert judge["X-Export-Raters"] == "raters: gpt-judge, 0 humans and 1 judge"
    assert all(json.loads(line)["n_ratings"] == 1 for line in streamed(judge).splitlines())


def test_export_download_takes_the_posterior_aggregation_and_its_confidence_threshold(
    rated: Rated, researcher: User, api_client_for: ClientFor
) -> None:
    client = api_client_for(researcher)
    everything = client.get(url(rated, "export/dpo.jsonl"), {"aggregate": "posterior", "min_confidence": "0"})
    rows = [json.loads(line) for line in streamed(everything).splitlines()]
    highest = max(r["confidence"] for r in rows)

    strict = client.get(url(rated, "export/dpo.jsonl"), {"aggregate": "posterior", "min_confidence": str(highest)})
    kept = [json.loads(line) for line in streamed(strict).splitlines()]

    assert {r["policy"] for r in rows} == {"posterior"}
    assert everything["X-Export-Skipped-Rows"] == "0"
    assert 0 < len(kept) < len(rows)
    assert strict["X-Export-Skipped-Rows"] == str(len(rows) - len(kept))
    assert "posterior confidence is below" in strict["X-Export-Warning"]
    bad = client.get(url(rated, "export/dpo.jsonl"), {"aggregate": "posterior", "min_confidence": "2"})
    assert bad.status_code == 400
    assert client.get(url(rated, "export/dpo.jsonl"), {"min_confidence": "0.9"}).status_code == 400
    manifest = client.get(url(rated, "export/dpo.jsonl/manifest/"), {"aggregate": "posterior", "min_confidence": "0.9"})
    assert manifest.json()["options"]["min_confidence"] == 0.9


def test_agreement_and_exports_take_the_consistency_gate(
    rated: Rated, researcher: User, api_client_for: ClientFor
) -> None:
    client = api_client_for(researcher)
    agreement = client.get(url(rated, "agreement/"), {"bootstrap": "0", "consistent": "1"}).json()
    arena = client.get(url(rated, "export/arena.jsonl"), {"raters": "judges", "consistent": "true"})
    manifest = client.get(url(rated, "export/arena.jsonl/manifest/"), {"raters": "judges", "consistent": "1"}).json()

    assert (agreement["inconsistent_pairs"], agreement["manifest"]["options"]["consistent"]) == (3, True)
    battles = [json.loads(line) for line in streamed(arena).decode().splitlines()]
    assert (len(battles), sum(b["winner"] == "tie" for b in battles)) == (21, 3)
    assert manifest["options"]["consistent"] is True
    assert client.post(url(rated, "reproduce/"), manifest, format="json").json()["identical"]
