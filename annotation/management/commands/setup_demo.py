"""manage.py setup_demo: a demo campaign with accounts, ready to annotate (safe to run again)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group, Permission, User
from django.core.management.base import BaseCommand
from django.db import transaction

from annotation import campaign_setup, importers
from annotation.models import Campaign

DEMO_DIR = Path(settings.BASE_DIR) / "fixtures" / "demo"
SLUG = "demo"
PASSWORD = "demo-password"
RESEARCHER = "researcher"
ANNOTATORS = ["annotator1", "annotator2"]
RESEARCHERS_GROUP = "Researchers"
ANNOTATORS_GROUP = "Demo annotators"
RESEARCH_APPS = ["annotation", "judging", "results"]
INSTRUCTIONS = """\
Read the prompt, then both answers. Pick the **better answer**: correct first, then helpful, then clear.

- Choose *tie* when they are equally good, *both bad* when neither answers the prompt.
- Which side an answer is shown on means nothing; ignore length for its own sake.
"""


class Command(BaseCommand):
    help = "Create (or refresh) the demo campaign from fixtures/demo/, a researcher and two annotators."

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            researcher, annotators = self._accounts()
            campaign = self._campaign(researcher)
        self._report(campaign, researcher, annotators)

    def _accounts(self) -> tuple[User, list[User]]:
        researchers = Group.objects.get_or_create(name=RESEARCHERS_GROUP)[0]
        researchers.permissions.set(Permission.objects.filter(content_type__app_label__in=RESEARCH_APPS))
        researcher = _user(RESEARCHER, staff=True)
        researcher.groups.add(researchers)
        group = Group.objects.get_or_create(name=ANNOTATORS_GROUP)[0]
        annotators = [_user(name, staff=False) for name in ANNOTATORS]
        group.user_set.add(*annotators)
        return researcher, annotators

    def _campaign(self, researcher: User) -> Campaign:
        campaign = Campaign.objects.get_or_create(
            slug=SLUG,
            defaults={
                "name": "Demo: which assistant answers better?",
                "owner": researcher,
                "instructions": INSTRUCTIONS,
                "ratings_per_comparison": 2,
                "gold_rate": 0.1,
                "annotator_group": Group.objects.get(name=ANNOTATORS_GROUP),
            },
        )[0]
        campaign.researchers.add(researcher)
        if campaign.status == Campaign.Status.CLOSED:
            self.stdout.write(self.style.WARNING(f"campaign {SLUG} is closed: left as it is"))
            return campaign
        outputs = DEMO_DIR / "outputs.jsonl"
        summary = importers.import_outputs(
            campaign=campaign, parsed=importers.parse_outputs(outputs.name, outputs.read_bytes())
        )
        self.stdout.write(summary.describe())
        self.stdout.write(campaign_setup.generate_comparisons(campaign=campaign, strategy="all_pairs").describe())
        gold = DEMO_DIR / "gold.jsonl"
        self.stdout.write(
            importers.import_gold(
                campaign=campaign, parsed=importers.parse_gold(gold.name, gold.read_bytes())
            ).describe()
        )
        if campaign.status == Campaign.Status.DRAFT:
            campaign_setup.open_campaign(campaign=campaign)
        return campaign

    def _report(self, campaign: Campaign, researcher: User, annotators: list[User]) -> None:
        line = "=" * 72
        self.stdout.write(line)
        self.stdout.write(
            self.style.SUCCESS(f"Demo campaign '{campaign.name}' ({campaign.slug}) is {campaign.status}.")
        )
        self.stdout.write(f"  {campaign.prompts.count()} prompts, {campaign.comparisons.count()} comparisons")
        self.stdout.write("Accounts (demo passwords: change them before exposing this server):")
        self.stdout.write(f"  researcher  {researcher.username:<12} password {PASSWORD}   http://127.0.0.1:8000/admin/")
        for user in annotators:
            self.stdout.write(f"  annotator   {user.username:<12} password {PASSWORD}   http://127.0.0.1:8000/")
        self.stdout.write(line)


def _user(username: str, *, staff: bool) -> User:
    user = User.objects.get_or_create(username=username, defaults={"email": f"{username}@example.org"})[0]
    user.is_staff = staff
    user.is_active = True
    user.set_password(PASSWORD)
    user.save()
    return user
