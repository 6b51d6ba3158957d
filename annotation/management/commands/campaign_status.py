"""manage.py campaign_status SLUG [open|pause|close]: print a campaign's status, or change it as the admin's buttons
do (draft -> active needs a comparison; active <-> paused; active or paused -> closed, which is final)."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from annotation import campaign_setup
from annotation.management.commands._campaigns import get_campaign
from annotation.models import Campaign
from evalplatform.exceptions import DomainError

ACTIONS = {"open": Campaign.Status.ACTIVE, "pause": Campaign.Status.PAUSED, "close": Campaign.Status.CLOSED}


class Command(BaseCommand):
    help = "Print a campaign's status, or open, pause or close it."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("action", nargs="?", choices=sorted(ACTIONS), help="Leave out to print the status.")

    def handle(self, *args: Any, **options: Any) -> None:
        campaign = get_campaign(options["slug"])
        if options["action"] is None:
            self.stdout.write(campaign.status)
            return
        try:
            campaign_setup.change_campaign_status(campaign=campaign, status=ACTIONS[options["action"]])
        except DomainError as error:
            raise CommandError(error.message) from error
        self.stdout.write(self.style.SUCCESS(f"{campaign.slug} is now {campaign.status}"))
