"""The judge report: judges with planted biases on the local server are caught, with the planted values inside the
intervals; agreement figures on the shared MT-Bench expert votes match a direct computation and scikit-learn."""

from __future__ import annotations

import itertools
import json
import random
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from sklearn.metrics import cohen_kappa_score

from annotation.models import Campaign, Comparison, Output, Prompt, Rater, Rating
from judging import services
from judging.localllm.server import LocalLLMServer, ServerConfig
from judging.models import JudgeConfig, JudgeRun, ModelFamily
from results.judge_report import build_report
from tests import factories

MODELS = ["fam-x-large", "other-a", "other-b"]  # fam-x-large's outputs carry the marker
MARKER = "[fam-x]"
PROMPTS = 70


@pytest.fixture
def server_url(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Serve the local judge in a thread; allow its endpoint; send nothing to the broker."""
    monkeypatch.setattr(services, "enqueue_verdicts", lambda ids, countdown=None: None)
    server = LocalLLMServer(ServerConfig(port=0))
    with server.running_in_thread() as url:
        settings.EVALPLATFORM_JUDGE_ALLOWED_ENDPOINTS = [url]
        settings.EVALPLATFORM_JUDGE_KEY_ENVS = []
        settings.EVALPLATFORM_JUDGE_PRIVATE_NETWORKS = []
        yield url


@pytest.fixture
def audited(researcher: User) -> Campaign:
    """A campaign of 70 prompts x 3 models (210 comparisons) of varied lengths, rated by three humans who ignore
    length and family: each picks the better output by a hidden quality, with noise."""
    campaign = factories.CampaignFactory.create(owner=researcher, status="active", slug="audited")
    rng = random.Random(7)
    humans = [Rater.objects.create(name=f"human-{i}", kind=Rater.Kind.HUMAN) for i in range(3)]
    for i in range(PROMPTS):
        prompt = Prompt.objects.create(campaign=campaign, external_id=f"q{i}", text=f"Question {i}?")
        outputs = []
        for model in MODELS:
            words = " ".join(rng.choice(["alpha", "beta", "gamma", "delta"]) for _ in range(rng.randint(1, 60)))
            text = f"{words} {MARKER}" if model.startswith("fam-x") else words
            outputs.append(Output.objects.create(prompt=prompt, model_name=model, text=text))
        for x, y in itertools.combinations(outputs, 2):
            comparison = factories.make_comparison(prompt, x, y)
            quality = rng.random()
            for human in humans:
                winner = comparison.output_a if rng.random() < quality else comparison.output_b
                factories.make_rating(comparison, human, winner=winner)
    return campaign


def _judge(name: str, url: str, model: str, **options: Any) -> JudgeConfig:
    judge, _ = services.save_judge(
        name=name, base_url=url, model=model, timeout_seconds=5.0, max_concurrency=32, requests_per_minute=600_000,
        **options,
    )  # fmt: skip
    return judge


def _run(campaign: Campaign, judge: JudgeConfig, **options: Any) -> JudgeRun:
    run = services.start_run(campaign=campaign, judge=judge, **options)
    ids = list(run.verdicts.values_list("pk", flat=True))
    for start in range(0, len(ids), 200):
        later = services.judge_verdicts(verdict_ids=ids[start : start + 200], worker="test", max_wait=5.0)
        assert not later
    run.refresh_from_db()
    assert run.status == JudgeRun.Status.COMPLETED, run.error
    return run


def _covers(item: dict[str, Any], value: float) -> bool:
    low, high = item["ci"]
    return bool(low <= value <= high)


def test_planted_position_and_length_biases_are_measured(audited: Campaign, server_url: str) -> None:
    judge = _judge("biased", server_url, "local-judge:position=0.3,length=1.5")
    run = _run(audited, judge)

    report = build_report(judge, [audited], bootstrap=200)

    (version,) = report["versions"]
    assert version["version"] == run.config_version == report["current_version"]
    position = version["position"]
    assert position["first_preference"]["first"] + position["first_preference"]["second"] == 420
    assert _covers(position["first_excess"], 0.3)  # 2 share - 1 estimates the planted chance
    assert _covers(position["first_preference"], 0.65)
    assert position["consistency"]["value"] < 0.8
    length = version["length"]
    assert length["judge"]["slope"] > 0.3
    assert length["judge"]["p_value"] < 1e-4
    assert length["judge"]["ci"][0] > length["humans"]["ci"][1]  # the humans ignore length
    assert length["difference"]["ci"][0] > 0


def test_unattenuated_length_slope_covers_the_planted_slope(audited: Campaign, server_url: str) -> None:
    judge = _judge("lengthy", server_url, "local-judge:length=1.5")
    _run(audited, judge)

    length = build_report(judge, [audited], bootstrap=0)["versions"][0]["length"]

    assert length["judge"]["ci"][0] < 1.5 < length["judge"]["ci"][1]
    assert length["judge"]["comparisons"] == 210


def test_planted_self_preference_is_detected_against_the_humans(audited: Campaign, server_url: str) -> None:
    family = ModelFamily.objects.create(name="fam-x", patterns="fam-x-*")
    judge = _judge("selfish", server_url, f"local-judge:self=0.8,marker={MARKER}", family=family)
    fair = _judge("fair", server_url, "local-judge:length=0.5")
    ModelFamily.objects.create(name="others", patterns="other-*\nlocal-judge*")
    _run(audited, judge)
    _run(audited, fair)

    own = build_report(judge, [audited], bootstrap=300)["versions"][0]["self_preference"]
    other = build_report(fair, [audited], bootstrap=300)["versions"][0]["self_preference"]

    assert (own["family"], own["comparisons"]) == ("fam-x", 140)
    assert own["judge"]["value"] > 0.8
    assert own["difference"]["ci"][0] > 0.2
    assert other["family"] == "others"  # its model name's family, by pattern
    assert other["difference"]["ci"][0] < 0.25


def test_repeats_bypass_the_cache_and_measure_the_planted_flip_rate(audited: Campaign, server_url: str) -> None:
    judge = _judge("shaky", server_url, "local-judge:length=3,flip=0.2")
    main = _run(audited, judge)
    repeats = [_run(audited, judge, repeat=True), _run(audited, judge, repeat=True, seed=5)]

    assert [r.repeat for r in repeats] == [1, 2]
    assert repeats[1].seed == 5
    assert not repeats[0].verdicts.filter(cached=True).exists()
    assert not repeats[0].verdicts.exclude(rating=None).exists()  # repeats never become ratings
    assert Rating.objects.filter(rater=judge.rater).count() == main.verdicts.count() == 420
    stability = build_report(judge, [audited], bootstrap=300)["versions"][0]["stability"]

    assert (stability["repeats"], stability["items"], stability["runs_per_item"]) == (2, 420, 3.0)
    assert _covers(stability["flip_rate"], 2 * 0.2 * 0.8)
    assert stability["repeats_for_stable_majority"] in (5, 7, 9)  # 7 at exactly 0.2


def test_a_changed_setting_is_a_new_version_tracked_separately(audited: Campaign, server_url: str) -> None:
    judge = _judge("evolving", server_url, "local-judge:length=1", max_tokens=256)
    first = _run(audited, judge, limit=20)
    services.update_judge(judge=judge, max_tokens=512)
    second = _run(audited, judge, limit=40)  # 20 more comparisons: those already judged are kept

    report = build_report(judge, [audited], bootstrap=0)

    assert first.config_version != second.config_version
    assert [v["version"] for v in report["versions"]] == [first.config_version, second.config_version]
    assert [v["n_ratings"] for v in report["versions"]] == [40, 40]
    assert report["current_version"] == second.config_version


def test_judge_report_command_prints_a_summary_and_json(
    audited: Campaign, server_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    judge = _judge("printed", server_url, "local-judge:position=0.3,length=1")
    _run(audited, judge, limit=30)

    call_command("judge_report", "printed", "--campaign", "audited", "--bootstrap", "50")
    text = capsys.readouterr().out
    call_command("judge_report", str(judge.pk), "--json", "--bootstrap", "0")
    report = json.loads(capsys.readouterr().out)

    assert "position: first preferred" in text
    assert "length slope: judge" in text
    assert report["campaigns"] == ["audited"]
    with pytest.raises(CommandError, match="no judge named 'nobody'"):
        call_command("judge_report", "nobody")
    with pytest.raises(CommandError, match="--campaign: no campaign"):
        call_command("judge_report", "printed", "--campaign", "missing")
    with pytest.raises(CommandError, match="--bootstrap"):
        call_command("judge_report", "printed", "--bootstrap", "99999")


def test_mt_bench_author_as_a_judge_against_the_expert_majority(
    researcher: User, capsys: pytest.CaptureFixture[str]
) -> None:
    """The votes of the MT-Bench author who voted most, given to a judge, against the majority of the other raters:
    the same agreement and kappa as counted straight from the JSONL file (kappa by scikit-learn)."""
    path = factories.SHARED_DATA / "mt_bench_human_judgments_turn1.jsonl"
    call_command("import_battles", str(path), "--campaign", "mt-bench", "--owner", researcher.username)
    capsys.readouterr()
    campaign = Campaign.objects.get(slug="mt-bench")
    votes = [json.loads(line) for line in path.read_text().splitlines()]
    author = Counter(v["judge"] for v in votes if v["judge"].startswith("author_")).most_common(1)[0][0]
    judge, _ = services.save_judge(name="mt-author", base_url="http://127.0.0.1:8001/v1", model="mt-author")
    moved = Rating.objects.filter(comparison__campaign=campaign, rater__name=author).update(
        rater=judge.rater, rater_kind="judge"
    )

    report = build_report(judge, [campaign], bootstrap=200)

    (version,) = report["versions"]
    assert version["version"] == "unversioned"
    humans = version["humans"]
    expected = _expected_agreement(votes, author, campaign)
    majority = humans["agreement_with_human_majority"]["with_ties"]
    assert moved == sum(v["judge"] == author for v in votes)
    assert (majority["agree"], majority["n"]) == (expected["agree"], expected["n"])
    assert humans["cohen_kappa"]["value"] == pytest.approx(expected["kappa"], abs=1e-6)
    assert _covers(humans["cohen_kappa"], expected["kappa"])
    assert _covers(majority, majority["value"])
    first = version["position"]["first_preference"]  # imported votes: the output shown left is the file's model_a
    own = [v["winner"] for v in votes if v["judge"] == author]
    assert (first["first"], first["second"]) == (own.count("model_a"), own.count("model_b"))


def _expected_agreement(votes: list[dict[str, Any]], author: str, campaign: Campaign) -> dict[str, Any]:
    """Count straight from the votes: the author's verdict per comparison (contradicting votes: a tie) against
    the strict majority of the other raters' (each collapsed the same way), both as the stored sides a/b."""
    output_a = {
        (str(qid), *sorted((a or "", b or ""))): a
        for qid, a, b in Comparison.objects.filter(campaign=campaign).values_list(
            "prompt__external_id", "output_a__model_name", "output_b__model_name"
        )
    }
    by_pair: dict[tuple[str, ...], dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for vote in votes:
        key = (str(vote["question_id"]), *sorted((vote["model_a"], vote["model_b"])))
        winner = vote["winner"]
        decisive = winner in ("model_a", "model_b")
        value = ("a" if vote[winner] == output_a[key] else "b") if decisive else "tie"
        by_pair[key][vote["judge"]].add(value)
    pairs = []
    for raters in by_pair.values():
        collapsed = {r: next(iter(v)) if len(v) == 1 else "tie" for r, v in raters.items()}
        if author not in collapsed:
            continue
        others = _strict_mode([v for r, v in collapsed.items() if r != author])
        if others is not None:
            pairs.append((collapsed[author], others))
    agree = sum(x == y for x, y in pairs)
    kappa = cohen_kappa_score([x for x, _ in pairs], [y for _, y in pairs])
    return {"agree": agree, "n": len(pairs), "kappa": kappa}


def _strict_mode(values: list[str]) -> str | None:
    ranked = Counter(values).most_common(2)
    if not ranked or (len(ranked) == 2 and ranked[0][1] == ranked[1][1]):
        return None
    return ranked[0][0]


def test_report_counts_only_comparisons_both_rated(audited: Campaign, server_url: str) -> None:
    judge = _judge("partial", server_url, "local-judge")
    _run(audited, judge, limit=10)
    version = build_report(judge, [audited], bootstrap=0)["versions"][0]
    assert version["humans"]["n_comparisons"] == 10
    assert Comparison.objects.filter(campaign=audited).count() == 210
