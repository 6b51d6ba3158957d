"""Reproducibility manifests: beside exports, in leaderboards and agreement reports, and checked by reproduce."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from annotation.models import Rating
from results.manifest import canonical, ratings_digest
from results.raters import RaterSelection
from results.reproduce import reproduce
from tests import factories
from tests.results.conftest import Rated, rate, streamed

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def run(*args: str) -> tuple[str, str]:
    """Run a command; return its stdout and stderr."""
    from io import StringIO

    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def resealed(original: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """Return the manifest with fields changed and a checksum that matches them (as a forger would write it)."""
    body = {key: value for key, value in original.items() if key != "checksum"} | changes
    return body | {"checksum": hashlib.sha256(canonical(body)).hexdigest()}


def line(r: Rating) -> str:
    """Return a rating's line as the digest is documented to read it."""
    strength = "-" if r.strength is None else r.strength
    micros = (r.created_at - EPOCH) // timedelta(microseconds=1)
    values = (
        r.pk,
        r.rater_id,
        r.comparison_id,
        r.verdict,
        r.winner_id or "-",
        r.left_output_id or "-",
        strength,
        micros,
    )
    return "|".join(map(str, values)) + "\n"


def test_ratings_digest_is_sha256_over_the_selected_ratings_in_id_order(rated: Rated) -> None:
    humans = Rating.objects.filter(comparison__campaign=rated.campaign, rater_kind="human").order_by("id")
    lines = "".join(line(r) for r in humans)

    digest = ratings_digest(rated.campaign, RaterSelection(kind="human"))

    assert digest["sha256"] == hashlib.sha256(lines.encode()).hexdigest()
    assert (digest["count"], digest["max_id"]) == (humans.count(), humans.last().pk)  # type: ignore[union-attr]
    assert ratings_digest(rated.campaign, RaterSelection())["sha256"] != digest["sha256"]


def test_export_writes_its_manifest_beside_the_file_and_reproduce_finds_it_identical(
    rated: Rated, tmp_path: Path
) -> None:
    out = tmp_path / "pairs.jsonl"
    _, err = run("export", rated.campaign.slug, "--format", "dpo", "--out", str(out), "--raters", "humans")

    manifest = json.loads((tmp_path / "pairs.jsonl.manifest.json").read_text())
    assert "pairs.jsonl.manifest.json" in err
    assert (manifest["kind"], manifest["campaign"], manifest["selection"]["key"]) == (
        "export",
        rated.campaign.slug,
        "humans",
    )
    assert manifest["options"] == {"format": "dpo", "file_type": "jsonl", "aggregate": None}
    assert manifest["result"] == {"sha256": hashlib.sha256(out.read_bytes()).hexdigest(), "bytes": out.stat().st_size}
    assert manifest["ratings"]["count"] == 2 * len(rated.comparisons)
    assert manifest["code"]["version"]
    assert len(manifest["code"]["git_commit"] or "x" * 40) == 40

    text, _ = run("reproduce", str(tmp_path / "pairs.jsonl.manifest.json"))
    assert text.startswith(f"identical: the export of {rated.campaign.slug}")


def test_reproduce_counts_ratings_added_removed_and_changed_and_exits_1(rated: Rated, tmp_path: Path) -> None:
    path = tmp_path / "board.manifest.json"
    run("leaderboard", rated.campaign.slug, "--bootstrap", "20", "--seed", "7", "--manifest", str(path))
    manifest = json.loads(path.read_text())
    assert manifest["options"] == {"bootstrap": 20, "seed": 7, "combine": None, "with_elo": True}
    ratings = list(Rating.objects.filter(comparison__campaign=rated.campaign).order_by("id"))
    ratings[0].delete()
    Rating.objects.filter(pk=ratings[5].pk).update(strength=2)
    rate(rated.comparisons[0], factories.RaterFactory.create(name="late"), "model-x")

    with pytest.raises(CommandError) as failed:
        run("reproduce", str(path), "--json")
    assert failed.value.returncode == 1
    report = reproduce(manifest)
    assert not report["identical"]
    assert {k: report["ratings"][k] for k in ("then", "now", "added", "removed", "changed", "inserted")} == {
        "then": len(ratings),
        "now": len(ratings),
        "added": 1,
        "removed": 1,
        "changed": 1,
        "inserted": 0,
    }
    assert report["options"]["seed"] == 7
    assert "1 added since" in report["differences"][0]


def test_leaderboard_and_agreement_reproduce_from_their_seeds_after_the_cache_is_gone(rated: Rated) -> None:
    from django.core.cache import cache

    from results.manifest import agreement_with_manifest, leaderboard_with_manifest

    board = leaderboard_with_manifest(rated.campaign, RaterSelection(kind="human"), bootstrap=30, seed=3)
    agreement = agreement_with_manifest(rated.campaign, RaterSelection(), bootstrap=30, seed=3)
    cache.clear()

    for manifest in (board["manifest"], agreement["manifest"]):
        report = reproduce(manifest)
        assert report["identical"], report["differences"]
        assert report["differences"] == []
    changed = resealed(board["manifest"], options=board["manifest"]["options"] | {"seed": 4})
    assert not reproduce(changed)["result"]["identical"]


def test_a_consistency_gated_leaderboard_reproduces_and_differs_from_the_ungated_one(rated: Rated) -> None:
    from results.manifest import leaderboard_with_manifest

    manifest = leaderboard_with_manifest(rated.campaign, RaterSelection(kind="judge"), consistent=True)["manifest"]

    assert manifest["options"]["consistent"] is True
    assert reproduce(manifest)["identical"]
    ungated = resealed(manifest, options={k: v for k, v in manifest["options"].items() if k != "consistent"})
    assert not reproduce(ungated)["result"]["identical"]


def test_a_different_code_version_is_reported_without_making_an_identical_result_different(rated: Rated) -> None:
    from results.manifest import leaderboard_with_manifest

    manifest = leaderboard_with_manifest(rated.campaign, RaterSelection())["manifest"]
    older = resealed(manifest, code={"package": "evalplatform", "version": "0.0.1", "git_commit": "0" * 40})

    report = reproduce(older)

    assert report["identical"]
    assert not report["code"]["identical"]
    assert report["differences"] == [
        f"code: 0.0.1 ({'0' * 40}) then, {manifest['code']['version']} "
        f"({manifest['code']['git_commit'] or 'no commit'}) now"
    ]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda m: [m], "expected a JSON object"),
        (lambda m: {**m, "manifest": "something/else"}, "not an evalplatform manifest"),
        (
            lambda m: resealed(m, manifest="evalplatform.manifest/9"),
            "format 'evalplatform.manifest/9' is not supported",
        ),
        (lambda m: {**m, "campaign": "other"}, "checksum mismatch"),
        (lambda m: resealed(m, campaign="nowhere"), "campaign 'nowhere' does not exist here"),
        (lambda m: resealed(m, kind="poem"), "kind must be one of"),
        (lambda m: resealed(m, options={"bootstrap": -1, "seed": 0}), "options.bootstrap must be an integer"),
        (lambda m: resealed(m, ratings=m["ratings"] | {"sketch": "AAAA"}), "ratings.sketch is corrupt"),
        (lambda m: resealed(m, selection={"kind": "robots", "names": [], "exclude": []}), "selection must hold"),
    ],
)
def test_reproduce_refuses_a_corrupt_or_foreign_manifest_naming_the_problem(
    rated: Rated, damage: Any, message: str
) -> None:
    from results.manifest import agreement_with_manifest

    manifest = agreement_with_manifest(rated.campaign, RaterSelection(), bootstrap=0)["manifest"]
    from evalplatform.exceptions import DomainError

    with pytest.raises(DomainError, match=r"^manifest: ") as refused:
        reproduce(damage(manifest))
    assert message in refused.value.message


def test_reproduce_command_says_what_is_wrong_with_a_file_that_is_not_a_manifest(tmp_path: Path) -> None:
    path = tmp_path / "board.manifest.json"
    path.write_text('{"manifest": ')
    with pytest.raises(CommandError, match="not a manifest \\(invalid JSON at line 1"):
        run("reproduce", str(path))
    with pytest.raises(CommandError, match="cannot read it"):
        run("reproduce", str(tmp_path / "missing.json"))


def test_api_results_carry_their_manifest_and_reproduce_checks_it(
    rated: Rated, researcher: User, api_client_for: Any
) -> None:
    api = api_client_for(researcher)
    base = f"/api/v1/research/campaigns/{rated.campaign.slug}/"

    board = api.get(base + "leaderboard/", {"raters": "humans", "seed": 2}).json()
    agreement = api.get(base + "agreement/", {"bootstrap": 10}).json()
    assert board["manifest"]["selection"]["key"] == "humans"
    assert agreement["manifest"]["options"] == {"bootstrap": 10, "seed": 0}
    for manifest in (board["manifest"], agreement["manifest"]):
        answer = api.post(base + "reproduce/", manifest, format="json")
        assert answer.status_code == 200, answer.content
        assert answer.json()["identical"] is True

    download = api.get(base + "export/arena.json", {"raters": "judges"})
    body = streamed(download)
    described = api.get(base + "export/arena.json/manifest/", {"raters": "judges"}).json()
    assert download["X-Export-Ratings-Sha256"] == described["ratings"]["sha256"]
    assert described["result"] == {"sha256": hashlib.sha256(body).hexdigest(), "bytes": len(body)}
    assert api.post(base + "reproduce/", described, format="json").json()["identical"] is True


def test_api_reproduce_refuses_a_manifest_of_another_campaign_and_hides_campaigns_from_outsiders(
    rated: Rated, researcher: User, outsider: User, api_client_for: Any
) -> None:
    other = factories.CampaignFactory.create(slug="other", owner=researcher)
    api = api_client_for(researcher)
    manifest = api.get(f"/api/v1/research/campaigns/{rated.campaign.slug}/leaderboard/").json()["manifest"]

    foreign = api.post(f"/api/v1/research/campaigns/{other.slug}/reproduce/", manifest, format="json")
    assert foreign.status_code == 400
    assert f"it is about campaign '{rated.campaign.slug}', not 'other'" in json.dumps(foreign.json())
    garbage = api.post(f"/api/v1/research/campaigns/{rated.campaign.slug}/reproduce/", {"a": 1}, format="json")
    assert garbage.status_code == 400
    outsiders = api_client_for(outsider)
    hidden = outsiders.post(f"/api/v1/research/campaigns/{rated.campaign.slug}/reproduce/", manifest, format="json")
    assert hidden.status_code == 404


def test_manifest_names_each_judges_request_settings_and_reproduce_sees_them_change(
    rated: Rated, settings: Any
) -> None:
    from judging import services as judging_services
    from results.manifest import leaderboard_with_manifest

    url = "http://127.0.0.1:9/v1"
    settings.EVALPLATFORM_JUDGE_ALLOWED_ENDPOINTS = [url]
    settings.EVALPLATFORM_JUDGE_KEY_ENVS = []
    settings.EVALPLATFORM_JUDGE_PRIVATE_NETWORKS = []
    judging_services.save_judge(name="gpt-judge", base_url=url, model="gpt-4", template="arena_hard", temperature=0.0)
    manifest = leaderboard_with_manifest(rated.campaign, RaterSelection())["manifest"]

    [judge] = manifest["judges"]
    assert (judge["name"], judge["config"]["model"], judge["config"]["template"]) == (
        "gpt-judge",
        "gpt-4",
        "arena_hard",
    )
    assert judge["config"]["temperature"] == 0.0
    assert "max_concurrency" not in judge["config"]  # not a request setting
    assert judge["config"]["system_prompt_sha256"] == hashlib.sha256(b"").hexdigest()  # texts by digest only
    judging_services.save_judge(name="gpt-judge", temperature=0.7)
    report = reproduce(manifest)
    assert report["judges"] == {"identical": False, "changed": ["gpt-judge"], "added": [], "removed": []}
    assert report["identical"]  # the same ratings give the same result; the report says the judge changed since
    assert "judges changed: gpt-judge" in report["differences"]


def test_a_parquet_export_and_a_combined_leaderboard_reproduce_byte_for_byte(rated: Rated, tmp_path: Path) -> None:
    from results.manifest import leaderboard_with_manifest

    out = tmp_path / "ratings.parquet"
    run("export", rated.campaign.slug, "--format", "ratings", "--out", str(out))
    exported = json.loads((tmp_path / "ratings.parquet.manifest.json").read_text())
    combined = leaderboard_with_manifest(rated.campaign, RaterSelection(), combine="ppi")["manifest"]

    assert exported["result"]["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert reproduce(exported)["identical"]
    assert combined["options"] == {"bootstrap": 0, "seed": 0, "combine": "ppi", "with_elo": False}
    assert reproduce(combined)["identical"]


def test_reproduce_reads_a_saved_json_report_holding_its_manifest(rated: Rated, tmp_path: Path) -> None:
    text, _ = run("leaderboard", rated.campaign.slug, "--raters", "humans", "--side-by-side", "--json")
    (tmp_path / "board.json").write_text(text)
    agreement, _ = run("agreement", rated.campaign.slug, "--bootstrap", "0", "--json")
    (tmp_path / "agreement.json").write_text(agreement)

    assert run("reproduce", str(tmp_path / "board.json"))[0].startswith("identical: the leaderboard")
    assert run("reproduce", str(tmp_path / "agreement.json"))[0].startswith("identical: the agreement")
