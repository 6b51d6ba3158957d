"""manage.py raters CAMPAIGN [--raters ...] [--exclude-raters GLOB] [--alpha A] [--correction bh|holm] [--json]."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from evalplatform.exceptions import DomainError
from results.management.commands._common import add_rater_arguments, get_campaign, get_selection, option_error
from results.rater_mix import mix_note
from results.rater_quality import campaign_raters
from scoring.rater_cli import table


class Command(BaseCommand):
    help = (
        "Flag anomalous raters: votes against the Bradley-Terry model, left bias, gold accuracy, competence (most "
        "suspect first), with each rater's standing (paused, excluded from results)."
    )

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
            selection = get_selection(campaign, options["raters"], options["exclude_raters"], include_excluded=True)
            report = campaign_raters(campaign, selection, alpha=options["alpha"], correction=options["correction"])
        except DomainError as exc:
            raise option_error(exc, options) from exc
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2))
        else:
            self.stdout.write(f"{report['campaign']}: {report['n_votes']} votes, {mix_note(report['rater_mix'])}")
            self.stdout.write(campaign_table(report["raters"]))


def campaign_table(rows: list[dict[str, Any]]) -> str:
    """Return the report for people: scoring's table with each rater's gold accuracy and standing."""
    lines = table(rows).splitlines()
    width = max(len(row) for row in ["gold", *(gold_cell(row) for row in rows)])
    head = [f"{'gold':<{width}}  {'status':<8}  {lines[0]}"]
    body = [
        f"{gold_cell(row):<{width}}  {status_cell(row):<8}  {line}" for row, line in zip(rows, lines[1:], strict=False)
    ]
    return "\n".join(head + body + lines[len(rows) + 1 :])


def gold_cell(row: dict[str, Any]) -> str:
    """Return ``correct/answered`` of the rater's gold answers, "-" without any."""
    return f"{row['gold_correct']}/{row['gold_answered']}" if row["gold_answered"] else "-"


def status_cell(row: dict[str, Any]) -> str:
    """Return the rater's standing in the campaign: paused, excluded, both or active."""
    states = [name for name in ("paused", "excluded") if row[name]]
    return ",".join(states) or "active"
