"""The import commands on the real MT-Bench and AlpacaEval files, and on malformed files (refused, nothing written)."""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.db.models import Count, F
from django.test import Client

from annotation.models import Campaign, Comparison, Output, Prompt, Rater, Rating
from tests import factories

pytestmark = pytest.mark.django_db


MT_BENCH = factories.SHARED_DATA / "mt_bench_human_judgments_turn1.jsonl"
ALPACA = factories.SHARED_DATA / "alpaca_farm_human_crossannotations.json"


def _table_counts() -> dict[str, int]:
    return {m.__name__: m.objects.count() for m in (Campaign, Prompt, Output, Comparison, Rater, Rating)}


def _run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def _refused(*args: str) -> str:
    before = _table_counts()
    with pytest.raises(CommandError) as refused:
        _run(*args)
    assert _table_counts() == before
    return str(refused.value)


def test_import_battles_of_mt_bench_gives_the_counts_of_its_readme(researcher: User) -> None:
    output = _run("import_battles", str(MT_BENCH), "--campaign", "mt-bench", "--owner", researcher.username)

    campaign = Campaign.objects.get(slug="mt-bench")
    ratings = Rating.objects.filter(comparison__campaign=campaign)
    assert "1689 ratings" in output
    assert campaign.owner == researcher
    assert ratings.count() == 1689
    assert Rater.objects.filter(ratings__in=ratings).distinct().count() == 65
    assert Prompt.objects.filter(campaign=campaign).count() == 80
    assert set(Output.objects.filter(prompt__campaign=campaign).values_list("model_name", flat=True)) == {
        "alpaca-13b",
        "claude-v1",
        "gpt-3.5-turbo",
        "gpt-4",
        "llama-13b",
        "vicuna-13b-v1.2",
    }
    assert Comparison.objects.filter(campaign=campaign).count() == 910
    assert ratings.filter(winner=F("left_output")).count() == 656  # model_a won
    assert ratings.filter(winner__isnull=False).exclude(winner=F("left_output")).count() == 628  # model_b won
    assert ratings.filter(verdict="tie").count() == 405
    assert set(ratings.values_list("source", "rater_kind").distinct()) == {("import", "human")}


def test_import_battles_keeps_an_author_vote_on_the_same_item_in_both_orders(researcher: User) -> None:
    _run("import_battles", str(MT_BENCH), "--campaign", "mt-bench", "--owner", researcher.username)

    both_orders = (
        Rating.objects.filter(rater__name="author_0", comparison__prompt__external_id="128")
        .values("comparison")
        .annotate(n=Count("id"), orders=Count("left_output", distinct=True))
        .filter(n=2)
    )
    assert [(row["n"], row["orders"]) for row in both_orders] == [(2, 2)]


def test_importing_the_same_battles_again_is_refused_as_duplicate_rows(researcher: User) -> None:
    _run("import_battles", str(MT_BENCH), "--campaign", "mt-bench", "--owner", researcher.username)

    message = _refused("import_battles", str(MT_BENCH), "--campaign", "mt-bench")

    assert f"{MT_BENCH}:1: rater: duplicate row: author_2 already rated this item in this order" in message
    assert "... and 689 more" in message  # the first 1,000 errors are listed


def test_import_alpaca_eval_gives_the_counts_of_its_readme(researcher: User) -> None:
    output = _run("import_alpaca_eval", str(ALPACA), "--campaign", "alpaca", "--owner", researcher.username)

    ratings = Rating.objects.filter(comparison__campaign__slug="alpaca")
    assert "2596 ratings" in output
    assert ratings.count() == 2596
    assert Comparison.objects.filter(campaign__slug="alpaca").count() == 648
    raters = set(Rater.objects.filter(ratings__in=ratings).values_list("name", flat=True))
    assert raters == {f"alpaca_eval:annotator_{i}" for i in range(16)}
    assert not Output.objects.filter(prompt__campaign__slug="alpaca", model_name__isnull=False).exists()
    per_item = Counter(ratings.values("comparison").annotate(n=Count("id")).values_list("n", flat=True))
    assert per_item == {4: 645, 5: 2, 6: 1}
    records = json.loads(ALPACA.read_text())
    assert ratings.filter(winner=F("left_output")).count() == sum(r["preference"] == 1 for r in records)


def test_import_battles_creates_the_campaign_for_the_first_superuser_without_owner(tmp_path: Path) -> None:
    boss = User.objects.create_superuser("boss", "boss@example.org", "pw")
    path = tmp_path / "arena.json"
    path.write_text(json.dumps([{"model_a": "m1", "model_b": "m2", "winner": "tie (bothbad)", "tstamp": 1700000000}]))

    _run("import_battles", str(path), "--campaign", "arena")

    rating = Rating.objects.get(comparison__campaign__slug="arena")
    assert Campaign.objects.get(slug="arena").owner == boss
    assert (rating.verdict, rating.winner, rating.rater.name) == ("both_bad", None, "arena-anonymous")
    assert rating.created_at.timestamp() == 1700000000


def test_import_battles_refuses_a_new_campaign_without_any_owner(tmp_path: Path) -> None:
    path = tmp_path / "arena.jsonl"
    path.write_text(json.dumps({"model_a": "m1", "model_b": "m2", "winner": "tie"}) + "\n")

    assert "no owner" in _refused("import_battles", str(path), "--campaign", "arena")


GOOD = {"question_id": 1, "judge": "j1", "model_a": "m1", "model_b": "m2", "winner": "model_a"}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (json.dumps(GOOD).encode() + b'\n{"model_a": "m1",\n', ":2: json: invalid JSON"),
        (
            json.dumps(GOOD).encode() + b"\n" + json.dumps({**GOOD, "winner": None}).encode(),
            ":2: winner: missing field",
        ),
        (
            json.dumps(GOOD).encode() + b"\n" + json.dumps({**GOOD, "judge": "j2", "winner": "model_c"}).encode(),
            ":2: winner: unknown label 'model_c'",
        ),
        (json.dumps(GOOD).encode() + b"\n" + json.dumps(GOOD).encode(), ":2: rater: duplicate row"),
        (json.dumps(GOOD).encode() + b'\n{"model_a": "caf\xe9"}\n', ":2: encoding: not UTF-8: byte 0xE9"),
        (b"", ":1: file: the file is empty"),
    ],
    ids=["bad-json", "missing-field", "unknown-winner", "duplicate-row", "wrong-encoding", "empty-file"],
)
def test_import_battles_refuses_a_malformed_file_naming_the_line_and_writes_nothing(
    researcher: User, tmp_path: Path, content: bytes, expected: str
) -> None:
    path = tmp_path / "battles.jsonl"
    path.write_bytes(content)

    message = _refused("import_battles", str(path), "--campaign", "new-one", "--owner", researcher.username)

    assert f"{path}{expected}" in message
    assert "nothing was written" in message


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ({"output_2": "b", "preference": 1, "annotator_index": 1}, ":3: output_1: missing field"),
        ({"output_1": "a", "output_2": "b", "preference": 3, "annotator_index": 1}, ":3: preference: expected 1, 2"),
        ({"output_1": "a", "output_2": "b", "preference": 1}, ":3: annotator: missing field"),
        ({"output_1": "a", "output_2": "b", "preference": 2, "annotator_index": 0}, ":3: rater: duplicate row"),
    ],
    ids=["missing-output", "bad-preference", "missing-annotator", "duplicate-row"],
)
def test_import_alpaca_eval_refuses_a_malformed_file_naming_the_line_and_writes_nothing(
    researcher: User, tmp_path: Path, record: dict[str, object], expected: str
) -> None:
    good = {"instruction": "Say hi", "output_1": "a", "output_2": "b", "preference": 1, "annotator_index": 0}
    path = tmp_path / "alpaca.json"
    path.write_text("[\n" + json.dumps(good) + ",\n" + json.dumps({"instruction": "Say hi", **record}) + "\n]\n")

    message = _refused("import_alpaca_eval", str(path), "--campaign", "alp", "--owner", researcher.username)

    assert f"{path}{expected}" in message


ROW = {"prompt_id": "p1", "prompt": "Hi?", "model": "m1", "output": "Hello"}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (json.dumps(ROW).encode() + b'\n{"prompt_id": "p2" "prompt": "Q"}\n', ":2: json: invalid JSON"),
        (json.dumps(ROW).encode() + b"\n" + json.dumps({**ROW, "model": None}).encode(), ":2: model: missing field"),
        (
            json.dumps(ROW).encode() + b"\n" + json.dumps({**ROW, "model": "m2", "output": ""}).encode(),
            ":2: output: empty text",
        ),
        (json.dumps(ROW).encode() + b"\n" + json.dumps(ROW).encode(), ":2: model: duplicate row"),
        (
            json.dumps(ROW).encode() + b"\n" + json.dumps({**ROW, "model": "m2", "prompt": "Hey?"}).encode(),
            ":2: prompt: conflicting text",
        ),
        (b"prompt_id,prompt,model,output\np1,Caf\xe9?,m1,Oui\n", ":2: encoding: not UTF-8: byte 0xE9"),
        (b"", ":1: file: the file is empty"),
        (json.dumps(ROW).encode() + b'\n{"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", ":2: json: nested deeper"),
        (json.dumps({**ROW, "output": "x" * (5 << 20)}).encode(), ":1: line: longer than 4,194,304 bytes"),
    ],
    ids=[
        "bad-json",
        "missing-field",
        "empty-text",
        "duplicate-row",
        "conflicting-prompt",
        "wrong-encoding",
        "empty-file",
        "nested-too-deep",
        "line-too-long",
    ],
)
def test_import_outputs_refuses_a_malformed_file_naming_the_line_and_writes_nothing(
    researcher: User, tmp_path: Path, content: bytes, expected: str
) -> None:
    campaign = factories.CampaignFactory.create(owner=researcher)
    path = tmp_path / ("outputs.csv" if content.startswith(b"prompt_id,") else "outputs.jsonl")
    path.write_bytes(content)

    assert f"{path}{expected}" in _refused("import_outputs", campaign.slug, str(path))


def test_import_outputs_loads_a_long_jsonl_file_and_reimporting_it_changes_nothing(
    researcher: User, tmp_path: Path
) -> None:
    campaign = factories.CampaignFactory.create(owner=researcher)
    rows = [
        {"prompt_id": f"p{i}", "prompt": f"Question {i}", "model": model, "output": f"{model} says {i}", "temp": 0.7}
        for i in range(3)
        for model in ("m1", "m2")
    ]
    path = tmp_path / "outputs.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in rows))

    first = _run("import_outputs", campaign.slug, str(path))
    second = _run("import_outputs", campaign.slug, str(path))

    assert "created 3 prompts, 6 outputs" in first
    assert "created 0 prompts, 0 outputs" in second
    assert Output.objects.filter(prompt__campaign=campaign).count() == 6
    assert Output.objects.filter(prompt__campaign=campaign, model_name="m1").first().metadata == {"temp": 0.7}  # type: ignore[union-attr]


def test_import_outputs_refuses_an_unknown_campaign(tmp_path: Path) -> None:
    path = tmp_path / "outputs.jsonl"
    path.write_text("{}")

    assert "no campaign with the slug 'nope'" in _refused("import_outputs", "nope", str(path))


def test_import_outputs_refuses_a_file_that_changes_a_stored_output(researcher: User, tmp_path: Path) -> None:
    campaign = factories.CampaignFactory.create(owner=researcher)
    path = tmp_path / "outputs.csv"
    path.write_text("prompt_id,prompt,model,output\np1,Hi?,m1,Hello\n")
    _run("import_outputs", campaign.slug, str(path))
    path.write_text("prompt_id,prompt,model,output\np1,Hi?,m1,Hello there\n")

    message = _refused("import_outputs", campaign.slug, str(path))

    assert f"{path}:2: output: model m1 already has a different output for prompt_id p1" in message


def test_setup_demo_builds_an_open_campaign_with_accounts_and_gold_pairs_and_can_run_again(client: Client) -> None:
    first = _run("setup_demo")
    before = _table_counts()
    _run("setup_demo")

    campaign = Campaign.objects.get(slug="demo")
    assert _table_counts() == before
    assert campaign.status == "active"
    assert campaign.prompts.count() == 22
    assert Output.objects.filter(prompt__campaign=campaign).values("model_name").distinct().count() == 4
    assert campaign.comparisons.count() == 22 * 6
    assert campaign.comparisons.filter(gold_verdict__isnull=False).count() == 5
    assert "researcher   password demo-password" in first
    assert "annotator1   password demo-password" in first

    assert client.login(username="researcher", password="demo-password")
    assert client.get("/admin/annotation/campaign/").status_code == 200
    assert client.login(username="annotator1", password="demo-password")
    assert client.get("/admin/").status_code == 403
    assert campaign.annotator_group is not None
    assert set(campaign.annotator_group.user_set.values_list("username", flat=True)) == {"annotator1", "annotator2"}
