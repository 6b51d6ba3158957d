"""manage.py raters CAMPAIGN [--raters ...] [--exclude-raters GLOB] [--alpha A] [--correction bh|holm] [--json]."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from evalplatform.exceptions import DomainError
from results.management.commands._common import add_rater_arguments, get_campaign, get_selection
from results.rater_mix import mix_note
from results.rater_quality import campaign_raters
from scoring.rater_cli import table


class Command(BaseCommand):
    help = "Flag anomalous raters: votes against the Bradley-Terry model, left bias, competence (most suspect first)."

    def add_arguments(self, parser: CommandParser) -> None:
        add_rater_arguments(parser)
        parser.add_argument("--exclude-raters", action="append", help="Leave out raters whose name matches GLOB.")
        parser.add_argument("--alpha", type=float, default=0.05, help="Flag below this corrected p-value.")
        parser.add_argument("--correction", choices=("bh", "holm"), default="bh")
        parser.add_argument("--json", action="store_true", help="Print JSON instead of a table.")

    def handle(self, *args: Any, **options: Any) -> None:
        campaign = get_campaign(options["campaign"])
        if not 0 < options["alpha"] < 1:
            raise CommandError("--alpha must be between 0 and 1")
        try:
            selection = get_selection(campaign, options["raters"], options["exclude_raters"])
            report = campaign_raters(campaign, selection, alpha=options["alpha"], correction=options["correction"])
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2))
        else:
            self.stdout.write(f"{report['campaign']}: {report['n_votes']} votes, {mix_note(report['rater_mix'])}")
            self.stdout.write(table(report["raters"]))
