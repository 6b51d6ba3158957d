"""manage.py import_outputs CAMPAIGN FILE: add prompts and model outputs to a campaign."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from annotation.importers import ImportSummary, import_outputs, parse_outputs
from annotation.management.commands._importing import read_file, run_import
from annotation.models import Campaign
from annotation.prompt_hygiene import import_duplicates


class Command(BaseCommand):
    help = (
        "Import prompts and outputs (JSONL, JSON or CSV; long format: prompt_id, prompt, model, output[, reference]; "
        "wide format: prompt_id, prompt[, reference] and one output:<model> column per model). "
        "Atomic: a file with any bad line writes nothing."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("campaign", help="the campaign's slug")
        parser.add_argument("file")
        parser.add_argument("--dry-run", action="store_true", help="validate and count, then write nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        campaign = Campaign.objects.filter(slug=options["campaign"]).first()
        if campaign is None:
            raise CommandError(f"no campaign with the slug {options['campaign']!r}")
        data = read_file(options["file"])

        def work() -> ImportSummary:
            parsed = parse_outputs(options["file"], data)
            summary = import_outputs(campaign=campaign, parsed=parsed, dry_run=options["dry_run"])
            summary.duplicates = import_duplicates(campaign=campaign, parsed=parsed, dry_run=options["dry_run"])
            return summary

        run_import(self, work)
