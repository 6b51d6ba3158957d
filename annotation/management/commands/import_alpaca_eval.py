"""manage.py import_alpaca_eval FILE --campaign SLUG: import AlpacaEval human or model annotations as ratings."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from annotation.importers import import_alpaca_eval, parse_alpaca_eval
from annotation.management.commands._importing import read_file, resolve_owner, run_import


class Command(BaseCommand):
    help = (
        "Import AlpacaEval annotations (JSON array or JSONL: instruction, output_1, output_2, preference 1 / 2 / "
        "1.5 or 0 for a tie, annotator or annotator_index, optional generator_1/2). The campaign is created when it "
        "does not exist. Atomic: a file with any bad line writes nothing."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("file")
        parser.add_argument("--campaign", required=True, help="slug; created when missing")
        parser.add_argument("--owner", help="username owning a new campaign (default: the first superuser)")
        parser.add_argument("--dry-run", action="store_true", help="validate and count, then write nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        data = read_file(options["file"])
        owner = resolve_owner(options["owner"])
        run_import(
            self,
            lambda: import_alpaca_eval(
                campaign_slug=options["campaign"],
                plan=parse_alpaca_eval(options["file"], data),
                owner=owner,
                dry_run=options["dry_run"],
            ),
        )
