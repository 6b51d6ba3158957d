"""manage.py prompt_hygiene SLUG [--json] [--threshold J] [--dry-run]: find a campaign's duplicate and
near-duplicate prompts and tag them on the prompts (never deleting one)."""

from __future__ import annotations

import json
from argparse import ArgumentParser, ArgumentTypeError
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from annotation import prompt_hygiene
from annotation.management.commands._campaigns import get_campaign
from scoring.near_duplicates import MIN_THRESHOLD, THRESHOLD


def _threshold(text: str) -> float:
    """Parse a Jaccard threshold within the LSH bands' range."""
    try:
        value = float(text)
    except ValueError:
        raise ArgumentTypeError(f"{text!r} is not a number") from None
    if not MIN_THRESHOLD <= value <= 1.0:
        raise ArgumentTypeError(f"must be between {MIN_THRESHOLD} and 1")
    return value


class Command(BaseCommand):
    help = "Find and tag a campaign's duplicate and near-duplicate prompts (never deleting one)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--json", action="store_true", help="print the report as JSON")
        parser.add_argument(
            "--threshold", type=_threshold, default=THRESHOLD, help=f"Jaccard of 5-shingles (default {THRESHOLD})"
        )
        parser.add_argument("--dry-run", action="store_true", help="report without tagging the prompts")

    def handle(self, *args: Any, **options: Any) -> None:
        campaign = get_campaign(options["slug"])
        action = (
            prompt_hygiene.find_campaign_duplicates if options["dry_run"] else prompt_hygiene.tag_campaign_duplicates
        )
        try:
            report = action(campaign=campaign, threshold=options["threshold"])
        except ValueError as error:
            raise CommandError(str(error)) from error
        if options["json"]:
            self.stdout.write(json.dumps(report.to_dict(), indent=1))
            return
        self.stdout.write(report.describe())
        for group in report.groups:
            names = ", ".join(str(member["external_id"]) for member in group["prompts"][:8])
            more = f" ... ({group['size']} prompts)" if group["size"] > 8 else ""
            self.stdout.write(f"  {group['kind']:<5} {names}{more}")
        if len(report.groups) < report.exact_groups + report.near_groups:
            self.stdout.write(f"  (first {len(report.groups)} groups shown; --json for the same)")
