"""manage.py render_html [--all]: store the rendered HTML of prompts and outputs that lack it."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from annotation.stored_html import fill_missing_html


class Command(BaseCommand):
    help = (
        "Render the markdown of every prompt and output whose HTML is not stored yet (rows added by SQL, rows from "
        "before migration 0006), in batches; with --all, re-render every row (after changing the renderer)."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--all", action="store_true", help="re-render every prompt and output")

    def handle(self, *args: Any, **options: Any) -> None:
        count = fill_missing_html(rerender=options["all"])
        self.stdout.write(f"rendered {count} texts")
