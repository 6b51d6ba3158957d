from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User

from annotation.models import Campaign, Rating
from evalplatform.exceptions import Conflict, DomainError
from judging import panels, services, tasks
from judging.models import JudgeConfig, JudgePanel, JudgeRun, JudgeVerdict, PanelRun, PanelVerdict
from results.leaderboards import compute_leaderboard
from results.raters import parse_raters
from tests.judging.conftest import LocalLLM

MakeJudge = Callable[..., JudgeConfig]


def judge_all(run: PanelRun) -> None:
    """Judge every member verdict in process, as the workers would."""
    for verdict_id in JudgeVerdict.objects.filter(run__in=run.member_runs.all()).values_list("pk", flat=True):
        services.judge_verdict(verdict_id=verdict_id, worker="test")


@pytest.fixture
def trio(make_judge: MakeJudge, local_llm: LocalLLM) -> list[JudgeConfig]:
    """Three judges on three local servers that disagree: by the answers, always the first shown, half and half."""
    judges: list[JudgeConfig] = []
    for name, bias in (("by-answers", 0.0), ("first-shown", 1.0), ("half-first", 0.5)):
        url, _ = local_llm(position_bias=bias, seed=len(judges))
        judges.append(
            make_judge(name, base_url=url, price_input_per_million=Decimal(10), price_output_per_million=Decimal(30))
        )
    return judges


@pytest.fixture
def panel(trio: list[JudgeConfig]) -> JudgePanel:
    return panels.create_panel(name="trio", members=trio)


def test_a_panel_run_writes_the_majority_of_its_members_verdicts_as_the_panels_ratings(
    campaign: Campaign, panel: JudgePanel, sent: list[Any]
) -> None:
    run = panels.start_panel_run(campaign=campaign, panel=panel, limit=6)

    assert run.member_runs.count() == 3
    assert not panels.finish_panel_run_if_done(run_id=run.pk)  # the members have judged nothing yet
    judge_all(run)
    assert panels.finish_panel_run_if_done(run_id=run.pk)
    assert not panels.finish_panel_run_if_done(run_id=run.pk)  # once

    run.refresh_from_db()
    assert run.status == PanelRun.Status.COMPLETED
    members = JudgeVerdict.objects.filter(run__in=run.member_runs.all(), state=JudgeVerdict.State.DONE)
    by_key: dict[tuple[int, str], list[str]] = {}
    for member in members:
        assert member.parsed is not None
        by_key.setdefault((member.comparison_id, member.order), []).append(member.parsed["outcome"])
    assert len(by_key) == 12
    assert all(len(v) == 3 for v in by_key.values())
    expected = {}
    for key, outcomes in by_key.items():
        outcome, n = Counter(outcomes).most_common(1)[0]
        expected[key] = outcome if n >= 2 else "tie"
    verdicts = {(v.comparison_id, v.order): v for v in PanelVerdict.objects.filter(run=run).select_related("rating")}
    assert {key: v.outcome for key, v in verdicts.items()} == expected
    assert len(set(expected.values())) > 1  # the members disagree, so this is more than one judge's copy
    for (_, order), panel_verdict in verdicts.items():
        rating = panel_verdict.rating
        assert rating is not None
        assert (rating.rater_id, rating.rater_kind, rating.source) == (panel.rater_id, "judge", "judge")
        comparison = rating.comparison
        first = comparison.output_a_id if order == "ab" else comparison.output_b_id
        assert rating.left_output_id == first
        assert rating.winner_id == {"A": first, "B": comparison.output_a_id + comparison.output_b_id - first}.get(
            panel_verdict.outcome
        )
        assert sorted(panel_verdict.votes) == ["by-answers", "first-shown", "half-first"]


def test_a_panel_verdict_costs_what_its_members_verdicts_cost(
    campaign: Campaign, panel: JudgePanel, sent: list[Any]
) -> None:
    run = panels.start_panel_run(campaign=campaign, panel=panel, limit=3)
    judge_all(run)
    panels.finish_panel_run_if_done(run_id=run.pk)

    run.refresh_from_db()
    members = JudgeVerdict.objects.filter(run__in=run.member_runs.all())
    assert run.n_verdicts == 6
    assert run.tokens_in == sum(v.tokens_in for v in members) > 0
    assert run.tokens_out == sum(v.tokens_out for v in members) > 0
    assert run.cost == sum((v.cost for v in members), Decimal(0)) > 0
    for verdict in PanelVerdict.objects.filter(run=run):
        same = members.filter(comparison_id=verdict.comparison_id, order=verdict.order)
        assert verdict.tokens_in == sum(v.tokens_in for v in same)
        assert verdict.cost == sum((v.cost for v in same), Decimal(0))
    progress = panels.panel_progress(run)
    assert (progress.total, progress.finished, progress.tokens_in, progress.cost) == (18, 18, run.tokens_in, run.cost)


def test_the_panel_ranks_models_on_the_leaderboard_as_one_rater(
    campaign: Campaign, panel: JudgePanel, sent: list[Any]
) -> None:
    run = panels.start_panel_run(campaign=campaign, panel=panel)
    judge_all(run)
    panels.finish_panel_run_if_done(run_id=run.pk)

    board = compute_leaderboard(campaign, parse_raters("trio"), with_elo=False)
    run.refresh_from_db()
    assert board["n_battles"] == run.n_verdicts == 2 * campaign.comparisons.count()
    assert {row["model"] for row in board["ratings"]} == {"model-x", "model-y", "model-z"}
    judges = compute_leaderboard(campaign, parse_raters("judges"), with_elo=False)
    assert judges["n_battles"] == 4 * board["n_battles"]  # the three members and the panel


def test_a_second_panel_run_keeps_the_panels_verdicts_and_writes_only_new_ones(
    campaign: Campaign, panel: JudgePanel, sent: list[Any]
) -> None:
    first = panels.start_panel_run(campaign=campaign, panel=panel, limit=2)
    judge_all(first)
    panels.finish_panel_run_if_done(run_id=first.pk)
    second = panels.start_panel_run(campaign=campaign, panel=panel, limit=3)
    judge_all(second)
    panels.finish_panel_run_if_done(run_id=second.pk)

    second.refresh_from_db()
    assert second.n_verdicts == 2
    assert Rating.objects.filter(rater=panel.rater).count() == 6


def test_no_verdict_where_half_the_members_or_fewer_judged(
    campaign: Campaign, panel: JudgePanel, sent: list[Any]
) -> None:
    run = panels.start_panel_run(campaign=campaign, panel=panel, limit=1)
    judge_all(run)
    gone = JudgeVerdict.objects.filter(run__in=run.member_runs.all(), order="ab")
    gone.exclude(judge__name="by-answers").update(state=JudgeVerdict.State.FAILED, parsed=None)
    panels.finish_panel_run_if_done(run_id=run.pk)

    assert list(PanelVerdict.objects.filter(run=run).values_list("order", flat=True)) == ["ba"]
    assert panels.majority(["A", "B"], n_members=3) == "tie"
    assert panels.majority(["A", "A", "B"], n_members=3) == "A"
    assert panels.majority(["A"], n_members=3) is None
    assert panels.majority(["A", "B", "tie"], n_members=3) == "tie"


def test_the_finishing_task_looks_again_while_members_run_and_stops_once_done(
    campaign: Campaign, panel: JudgePanel, sent: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    polls: list[int] = []
    monkeypatch.setattr(panels, "send_poll", lambda run_id, countdown=panels.POLL_SECONDS: polls.append(run_id))
    run = panels.start_panel_run(campaign=campaign, panel=panel, limit=1)

    tasks.finish_panel_run(run.pk)
    assert polls == [run.pk]
    judge_all(run)
    tasks.finish_panel_run(run.pk)
    assert polls == [run.pk]
    run.refresh_from_db()
    assert run.status == PanelRun.Status.COMPLETED


def test_a_member_whose_worker_died_holds_the_panel_until_its_run_is_resumed(
    campaign: Campaign, panel: JudgePanel, sent: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    run = panels.start_panel_run(campaign=campaign, panel=panel, limit=1)
    judge_all(run)
    stuck = JudgeVerdict.objects.filter(run__in=run.member_runs.all()).first()
    assert stuck is not None
    assert stuck.rating_id is not None
    Rating.objects.filter(pk=stuck.rating_id).delete()
    JudgeVerdict.objects.filter(id=stuck.id).update(
        state=JudgeVerdict.State.CLAIMED, claimed_by="dead", claimed_until=services.now(), parsed=None
    )
    JudgeRun.objects.filter(verdicts=stuck).update(status=JudgeRun.Status.RUNNING)

    assert not panels.finish_panel_run_if_done(run_id=run.pk)
    monkeypatch.setattr(panels, "send_poll", lambda run_id, countdown=0.0: None)
    panels.resume_panel_run(run=run)
    services.judge_verdict(verdict_id=stuck.pk, worker="test")
    assert panels.finish_panel_run_if_done(run_id=run.pk)
    assert PanelVerdict.objects.filter(run=run).count() == 2


def test_cancel_stops_the_members_and_resume_goes_on(
    campaign: Campaign, panel: JudgePanel, sent: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(panels, "send_poll", lambda run_id, countdown=0.0: None)
    run = panels.start_panel_run(campaign=campaign, panel=panel, limit=1)
    panels.cancel_panel_run(run=run)

    assert set(run.member_runs.values_list("status", flat=True)) == {JudgeRun.Status.CANCELLED}
    with pytest.raises(Conflict, match="not running"):
        panels.cancel_panel_run(run=run)
    panels.resume_panel_run(run=run)
    judge_all(run)
    assert panels.finish_panel_run_if_done(run_id=run.pk)
    run.refresh_from_db()
    assert (run.status, run.n_verdicts) == (PanelRun.Status.COMPLETED, 2)


def test_mean_probability_is_refused_for_templates_without_a_probability(trio: list[JudgeConfig]) -> None:
    with pytest.raises(DomainError, match="mean_probability needs a probability") as caught:
        panels.create_panel(name="mean", members=trio, aggregation="mean_probability")

    assert caught.value.field == "aggregation"
    assert "by-answers (mt_bench)" in caught.value.message
    assert not JudgePanel.objects.exists()


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"name": " "}, "name", "must not be empty"),
        ({"aggregation": "median"}, "aggregation", "must be one of"),
        ({"members": 1}, "members", "2 to 15 judges, not 1"),
        ({"twice": True}, "members", "listed twice"),
    ],
)
def test_create_panel_names_the_bad_setting(
    trio: list[JudgeConfig], changes: dict[str, Any], field: str, message: str
) -> None:
    members = trio[: changes.get("members", 3)] + (trio[:1] if changes.get("twice") else [])
    with pytest.raises(DomainError, match=message) as caught:
        panels.create_panel(
            name=changes.get("name", "p"), members=members, aggregation=changes.get("aggregation", "majority")
        )
    assert caught.value.field == field


def test_a_panel_holds_only_judges_its_owner_may_use_and_its_name_is_a_new_raters(
    campaign: Campaign, trio: list[JudgeConfig], make_judge: MakeJudge, researcher: User, outsider: User
) -> None:
    theirs = make_judge("outsiders-judge")
    services.set_judge_owner(judge=theirs, owner=outsider)

    with pytest.raises(DomainError, match="judges its owner may use; not outsiders-judge"):
        panels.create_panel(name="mine", members=[*trio[:2], theirs], owner=researcher)
    with pytest.raises(DomainError, match="the operator's judges only"):
        panels.create_panel(name="operators", members=[*trio[:2], theirs])
    with pytest.raises(Conflict, match="already called 'by-answers'"):
        panels.create_panel(name="by-answers", members=trio)
    mine = panels.create_panel(name="mine", members=trio[:2], owner=researcher)
    with pytest.raises(DomainError, match="no judge panel named 'mine' that you may use"):
        panels.start_panel_run(campaign=campaign, panel=mine, requested_by=outsider)
    assert [p.name for p in panels.usable_panels(outsider)] == []
    assert [p.name for p in panels.usable_panels(researcher)] == ["mine"]


@pytest.fixture
def probability_trio(make_judge: MakeJudge, local_llm: LocalLLM) -> list[JudgeConfig]:
    """Three probability judges on local servers: always the first shown, and two coin flips (a planted length bias
    over the test campaign's answers of equal length), each drawn with its own seed."""
    judges: list[JudgeConfig] = []
    for name, bias in (("p-coin", 0.0), ("p-first-shown", 1.0), ("p-coin-2", 0.0)):
        url, _ = local_llm(position_bias=bias, length_bias=None if bias else 1.0, seed=len(judges))
        judges.append(make_judge(name, base_url=url, template="probability", price_input_per_million=Decimal(10)))
    return judges


def test_a_mean_probability_panel_averages_its_members_probabilities_and_applies_the_band(
    campaign: Campaign, probability_trio: list[JudgeConfig], sent: list[Any]
) -> None:
    panel = panels.create_panel(name="p-trio", members=probability_trio, aggregation="mean_probability")
    run = panels.start_panel_run(campaign=campaign, panel=panel, limit=6)
    judge_all(run)
    assert panels.finish_panel_run_if_done(run_id=run.pk)

    members = JudgeVerdict.objects.filter(run__in=run.member_runs.all())
    by_key: dict[tuple[int, str], list[float]] = {}
    for member in members:
        assert member.state == JudgeVerdict.State.DONE
        assert member.probability is not None
        assert member.parsed is not None
        assert member.parsed["probability"] == member.probability
        by_key.setdefault((member.comparison_id, member.order), []).append(member.probability)
    verdicts = PanelVerdict.objects.filter(run=run).select_related("rating")
    assert len(verdicts) == len(by_key) == 12
    outcomes = set()
    for verdict in verdicts:
        mean = sum(by_key[(verdict.comparison_id, verdict.order)]) / 3
        assert verdict.probability == pytest.approx(mean)
        assert verdict.outcome == ("A" if mean > 0.55 else "B" if mean < 0.45 else "tie")
        assert verdict.rating is not None
        assert verdict.rating.metadata["probability"] == pytest.approx(mean)
        assert sorted(verdict.rating.metadata["probabilities"]) == ["p-coin", "p-coin-2", "p-first-shown"]
        outcomes.add(verdict.outcome)
    assert len(outcomes) > 1
    run.refresh_from_db()
    assert (run.status, run.n_verdicts) == (PanelRun.Status.COMPLETED, 12)


def test_the_mean_of_probabilities_can_differ_from_the_majority_of_outcomes() -> None:
    ballot = panels.Ballot(votes={"x": "A", "y": "B", "z": "B"}, probabilities={"x": 0.85, "y": 0.3, "z": 0.3})
    by_mean = panels.Tally(n_members=3, ballots={}, aggregation="mean_probability")

    assert panels.decide(ballot, panels.Tally(n_members=3, ballots={})) == ("B", None)
    outcome, mean = panels.decide(ballot, by_mean) or ("", 0.0)
    assert outcome == "tie"
    assert mean == pytest.approx(1.45 / 3)
    outcome, mean = panels.mean_probability([0.9, 0.8], n_members=3) or ("", 0.0)
    assert outcome == "A"
    assert mean == pytest.approx(0.85)
    assert panels.mean_probability([0.9], n_members=3) is None  # half of the members or fewer: no verdict
    assert panels.mean_probability([0.9, 0.1], n_members=4) is None


def test_mean_probability_takes_custom_probability_members_and_names_one_without(
    probability_trio: list[JudgeConfig], trio: list[JudgeConfig], make_judge: MakeJudge
) -> None:
    custom = make_judge(
        "p-custom", template="custom", verdict_format="probability", custom_template="{answer_a} vs {answer_b}"
    )
    panel = panels.create_panel(name="mixed", members=[probability_trio[0], custom], aggregation="mean_probability")

    assert panel.aggregation == "mean_probability"
    with pytest.raises(DomainError, match=r"none comes from by-answers \(mt_bench\)") as caught:
        panels.update_panel(panel=panel, members=[probability_trio[0], trio[0]])
    assert caught.value.field == "aggregation"
