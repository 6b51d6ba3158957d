"""manage.py export CAMPAIGN --format ratings|arena|dpo|alpaca_eval --out FILE [--raters ...] [--aggregate ...]
[--consistent].

Writes FILE and its reproducibility manifest beside it, FILE.manifest.json.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from evalplatform.exceptions import DomainError
from results.exports import AGGREGATES, FORMATS
from results.management.commands._common import add_rater_arguments, get_campaign, get_selection, option_error
from results.manifest import manifest_path, write_export_with_manifest
from results.rater_mix import mix_note, rater_mix


class Command(BaseCommand):
    help = "Export a campaign's ratings as a dataset; the file type (.jsonl, .json, .csv, .parquet) comes from --out."

    def add_arguments(self, parser: CommandParser) -> None:
        add_rater_arguments(parser)
        parser.add_argument("--format", required=True, choices=sorted(FORMATS))
        parser.add_argument(
            "--out", required=True, help="Output file: .jsonl (JSON Lines), .json (one JSON array), .csv or .parquet."
        )
        parser.add_argument(
            "--aggregate",
            choices=AGGREGATES,
            help="dpo only: majority (default; a strict majority of the raters, each rater's ratings of a comparison"
            " one vote), unanimous (every rater), each rating, or posterior (the Dawid-Skene verdict, with its"
            " confidence).",
        )
        parser.add_argument(
            "--min-confidence",
            type=float,
            metavar="P",
            help="posterior only: leave out (and count) pairs whose verdict has a posterior probability below P"
            " (default 0.5).",
        )
        parser.add_argument(
            "--consistent",
            action="store_true",
            help="Consistency gate: a comparison a judge decided differently in its two orders is a tie (ratings:"
            " both marked inconsistent; arena, alpaca_eval: one tie record; dpo each: no pair).",
        )
        parser.add_argument("--exclude-raters", action="append", help="Leave out raters whose name matches GLOB.")

    def handle(self, *args: Any, **options: Any) -> None:
        campaign = get_campaign(options["campaign"])
        try:
            selection = get_selection(
                campaign, options["raters"], options["exclude_raters"], include_excluded=options["include_excluded"]
            )
            written, _ = write_export_with_manifest(
                campaign,
                format=options["format"],
                out=options["out"],
                selection=selection,
                aggregate=options["aggregate"],
                min_confidence=options["min_confidence"],
                consistent=options["consistent"],
            )
        except DomainError as exc:
            raise option_error(exc, options) from exc
        except OSError as exc:  # a missing directory, no permission, a full disk: the file system's own words
            raise CommandError(f"{exc.filename or options['out']}: cannot write it ({exc.strerror or exc})") from exc
        self.stderr.write(mix_note(rater_mix(campaign, selection)))
        if written.warning:
            self.stderr.write(f"warning: {written.warning}")
        self.stderr.write(f"wrote {written.rows} rows to {options['out']}")
        self.stderr.write(f"manifest: {manifest_path(options['out'])} (check it later: manage.py reproduce FILE)")
