"""manage.py tag_prompts [--campaign SLUG]: recompute the built-in auto: tags of stored prompts (a backfill)."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from annotation.importers.tags import retag_prompts
from annotation.models import Campaign, Prompt


class Command(BaseCommand):
    help = (
        "Recompute the auto: tags (code, math, long_query, multi_turn, language) of stored prompts, keeping their "
        "other tags and adding tags/category found in their metadata; in batches of 1,000. Imports tag new prompts "
        "themselves: run it for prompts stored before tags existed, or after the taggers change."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--campaign", metavar="SLUG", help="only this campaign's prompts (default: all)")

    def handle(self, *args: Any, **options: Any) -> None:
        campaign = None
        if options["campaign"]:
            campaign = Campaign.objects.filter(slug=options["campaign"]).first()
            if campaign is None:
                raise CommandError(f"no campaign with slug {options['campaign']!r}")
        prompts = Prompt.objects.all() if campaign is None else Prompt.objects.filter(campaign=campaign)
        total = prompts.count()
        changed = retag_prompts(campaign=campaign)
        # "tagged 0 prompts" alone reads as a failure when every prompt was already tagged at import
        unchanged = f"; the other {total - changed} already had their tags" if total > changed else ""
        self.stdout.write(f"tagged {changed} prompts{unchanged}")
