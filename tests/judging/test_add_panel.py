"""manage.py add_panel: the operator makes a judge panel through the service the API and the admin use."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from annotation.models import Campaign, Rater
from judging.models import JudgeConfig, JudgePanel

MakeJudge = Callable[..., JudgeConfig]


def add_panel(*args: str) -> str:
    out = io.StringIO()
    call_command("add_panel", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def judges(make_judge: MakeJudge) -> list[JudgeConfig]:
    return [make_judge(f"j{i}") for i in (1, 2, 3)]


def test_add_panel_makes_an_operators_majority_panel_with_its_rater(judges: list[JudgeConfig]) -> None:
    out = add_panel("trio", "--members", "j1, j2,j3")

    panel = JudgePanel.objects.get(name="trio")
    assert out == "created judge panel trio (majority, the operator's): j1, j2, j3\n"
    assert panel.owner is None
    assert panel.aggregation == JudgePanel.Aggregation.MAJORITY
    assert sorted(panel.members.values_list("name", flat=True)) == ["j1", "j2", "j3"]
    assert panel.rater.kind == Rater.Kind.JUDGE
    assert panel.rater.name == "trio"


def test_add_panel_with_an_owner_and_mean_probability(
    make_judge: MakeJudge, researcher: User, campaign: Campaign
) -> None:
    for name in ("p1", "p2"):
        make_judge(name, template=JudgeConfig.Template.PROBABILITY)

    out = add_panel("probs", "--members", "p1,p2", "--aggregation", "mean_probability", "--owner", "rita")

    panel = JudgePanel.objects.get(name="probs")
    assert panel.owner == researcher
    assert panel.aggregation == JudgePanel.Aggregation.MEAN_PROBABILITY
    assert "(mean_probability, owner rita)" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--members", "j1,nobody,ghost"], r"--members: no judge named 'nobody', 'ghost'"),
        (["--members", "j1"], "members: a panel has 2 to 15 judges, not 1"),
        (["--members", "j1,j1"], "members: a judge is listed twice"),
        (["--members", ",".join(["j1"] * 31)], "--members: a panel has 2 to 15 judges, not 31"),
        (["--members", "j1,j2", "--aggregation", "vote"], "aggregation: must be one of majority, mean_probability"),
        (["--members", "j1,j2", "--aggregation", "mean_probability"], "mean_probability needs a probability"),
        (["--members", "j1,j2", "--owner", "nobody"], "--owner: no user named 'nobody'"),
        (["--members", "j1,j2", "--owner", "charlie"], "--owner: charlie is not a researcher"),
    ],
)
def test_add_panel_names_the_problem(judges: list[JudgeConfig], outsider: User, args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        add_panel("trio", *args)
    assert not JudgePanel.objects.exists()
    assert not Rater.objects.filter(name="trio").exists()


def test_add_panel_refuses_a_taken_name_an_empty_one_and_other_teams_judges(
    judges: list[JudgeConfig], make_judge: MakeJudge, researcher: User, outsider: User, campaign: Campaign
) -> None:
    Rater.objects.create(name="expert_1")
    with pytest.raises(CommandError, match=r"a rater \(judge, panel or human\) is already called 'expert_1'"):
        add_panel("expert_1", "--members", "j1,j2")
    with pytest.raises(CommandError, match="name: must not be empty"):
        add_panel("  ", "--members", "j1,j2")
    with pytest.raises(CommandError, match="name: at most 200 characters"):
        add_panel("x" * 201, "--members", "j1,j2")

    theirs = make_judge("theirs")
    theirs.owner = outsider
    theirs.save(update_fields=["owner"])
    with pytest.raises(CommandError, match="members: a panel holds the operator's judges only; not theirs"):
        add_panel("mixed", "--members", "j1,theirs")
    with pytest.raises(CommandError, match="members: a panel holds judges its owner may use; not theirs"):
        add_panel("mixed", "--members", "j1,theirs", "--owner", "rita")
    assert not JudgePanel.objects.exists()
