"""Two teams on one server, and the personas who probe them: the world of the security suite.

Team A (owner `ada`) runs campaign `alpha` with an annotator (`alice`), an annotator who was removed (`remy`),
ratings, a judge, a judge run with its verdict and stored LLM call, and a judge panel with a run. Team B (owner
`bea`, same permissions as `ada`: the demo's Researchers group) runs campaign `bravo`. `root` is a superuser.
Every text of team A carries the marker ``ALPHA-SECRET`` (any case), so a response that leaks any of it is caught
by a substring search.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import Group, Permission, User
from rest_framework.authtoken.models import Token

from annotation import services
from annotation.models import AnnotatorStatus, Assignment, Campaign, Comparison, Output, Prompt, Rater, Rating
from judging.models import JudgeConfig, JudgePanel, JudgeRun, JudgeVerdict, LLMCall, PanelRun
from tests import factories

MARKER = "alpha-secret"
RESEARCH_APPS = ["annotation", "judging", "results"]
PASSWORD = "correct horse battery staple"


@dataclass
class Team:
    owner: User
    campaign: Campaign
    prompts: list[Prompt]
    outputs: list[Output]
    comparisons: list[Comparison]
    ratings: list[Rating] = field(default_factory=list)
    judge: JudgeConfig | None = None
    run: JudgeRun | None = None
    verdict: JudgeVerdict | None = None
    call: LLMCall | None = None


@dataclass
class World:
    a: Team
    b: Team
    alice: User
    remy: User
    root: User
    assignments: dict[str, Assignment]
    status: AnnotatorStatus
    users: dict[str, User | None]

    def token(self, persona: str) -> str | None:
        user = self.users[persona]
        return None if user is None else Token.objects.get_or_create(user=user)[0].key


def researchers_group() -> Group:
    """Return the demo's Researchers group: every permission of the research apps."""
    group, _ = Group.objects.get_or_create(name="Researchers")
    group.permissions.set(Permission.objects.filter(content_type__app_label__in=RESEARCH_APPS))
    return group


def _team(owner: User, *, slug: str, label: str, models: list[str]) -> Team:
    campaign = factories.CampaignFactory.create(
        owner=owner, slug=slug, name=f"{label} campaign", status=Campaign.Status.ACTIVE, instructions=f"{label} rules"
    )
    campaign.researchers.add(owner)
    prompts, outputs, comparisons = [], [], []
    for i in range(2):
        prompt = Prompt.objects.create(
            campaign=campaign, external_id=f"{label}-p{i}", text=f"{label} prompt {i}?", tags=[f"{label}-topic".lower()]
        )
        answers = [Output.objects.create(prompt=prompt, model_name=m, text=f"{label} answer {i}") for m in models]
        prompts.append(prompt)
        outputs += answers
        comparisons.append(factories.make_comparison(prompt, answers[0], answers[1]))
    return Team(owner=owner, campaign=campaign, prompts=prompts, outputs=outputs, comparisons=comparisons)


def _lease(campaign: Campaign, user: User) -> Assignment:
    """Lease the user a comparison the way the rating page does."""
    lease = services.claim_next(user=user, campaign_id=campaign.pk)
    assert lease.shown is not None
    return Assignment.objects.get(pk=lease.shown.assignment_id)


def _judge(team: Team, *, label: str) -> None:
    rater = Rater.objects.create(name=f"{label}-judge", kind=Rater.Kind.JUDGE)
    fields: dict[str, Any] = {"name": f"{label}-judge", "rater": rater, "base_url": "http://127.0.0.1:8001/v1"}
    if any(f.name == "owner" for f in JudgeConfig._meta.get_fields()):
        fields["owner"] = team.owner
    team.judge = JudgeConfig.objects.create(model=f"{label}-judge-model", **fields)
    team.run = JudgeRun.objects.create(campaign=team.campaign, judge=team.judge, requested_by=team.owner)
    request_hash = (label.encode().hex() * 8)[:64]
    team.call = LLMCall.objects.create(
        request_hash=request_hash,
        model=team.judge.model,
        request={"messages": [{"role": "user", "content": team.prompts[0].text}]},
        response={"choices": [{"message": {"content": f"{label} judge says [[A]]"}}]},
        text=f"{label} judge says [[A]]",
    )
    comparison = team.comparisons[0]
    team.verdict = JudgeVerdict.objects.create(
        judge=team.judge,
        comparison=comparison,
        order=JudgeVerdict.Order.AB,
        run=team.run,
        state=JudgeVerdict.State.DONE,
        request_hash=request_hash,
        raw_response=f"{label} judge says [[A]]",
        parsed={"outcome": "A"},
        cost=Decimal(0),
    )
    panel_rater = Rater.objects.create(name=f"{label}-panel", kind=Rater.Kind.JUDGE)
    panel = JudgePanel.objects.create(name=f"{label}-panel", owner=team.owner, rater=panel_rater)
    panel.members.add(team.judge)
    panel_run = PanelRun.objects.create(panel=panel, campaign=team.campaign, status=PanelRun.Status.COMPLETED)
    panel_run.member_runs.add(team.run)


def build_world() -> World:
    group = researchers_group()
    ada = factories.UserFactory.create(username="ada", is_staff=True)
    bea = factories.UserFactory.create(username="bea", is_staff=True)
    ada.groups.add(group)
    bea.groups.add(group)
    root = factories.UserFactory.create(username="root", is_staff=True, is_superuser=True)
    alice = factories.UserFactory.create(username="alice")
    remy = factories.UserFactory.create(username="remy")

    a = _team(ada, slug="alpha", label="ALPHA-SECRET", models=["alpha-secret-model-1", "alpha-secret-model-2"])
    b = _team(bea, slug="bravo", label="bravo", models=["bravo-model-1", "bravo-model-2"])
    a.campaign.annotators.add(alice, remy)
    b.campaign.annotators.add(alice)

    assignments = {"alice": _lease(a.campaign, alice), "remy": _lease(a.campaign, remy)}
    a.campaign.annotators.remove(remy)
    judge_rater = Rater.objects.create(name="ALPHA-SECRET-imported-rater", kind=Rater.Kind.HUMAN)
    a.ratings.append(
        factories.make_rating(
            a.comparisons[1], judge_rater, winner=a.comparisons[1].output_a, rationale="ALPHA-SECRET rationale"
        )
    )
    status = AnnotatorStatus.objects.get(campaign=a.campaign, rater=assignments["alice"].rater)
    _judge(a, label="ALPHA-SECRET")
    _judge(b, label="bravo")
    users: dict[str, User | None] = {
        "anonymous": None,
        "alice": alice,
        "remy": remy,
        "bea": bea,
        "ada": ada,
        "root": root,
    }
    return World(a=a, b=b, alice=alice, remy=remy, root=root, assignments=assignments, status=status, users=users)
