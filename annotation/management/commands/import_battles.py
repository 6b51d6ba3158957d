"""manage.py import_battles FILE --campaign SLUG: import Chatbot Arena / MT-Bench pairwise votes as ratings."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from annotation.importers import import_battles, parse_battles
from annotation.management.commands._importing import read_file, resolve_owner, run_import


class Command(BaseCommand):
    help = (
        "Import battles (JSON array or JSONL: model_a, model_b, winner in model_a / model_b / tie / tie (bothbad), "
        "optional judge, question_id, tstamp, conversation_a/b). The campaign is created when it does not exist. "
        "Atomic: a file with any bad line writes nothing."
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
            lambda: import_battles(
                campaign_slug=options["campaign"],
                plan=parse_battles(options["file"], data),
                owner=owner,
                dry_run=options["dry_run"],
            ),
        )
