"""manage.py lc_winrate CAMPAIGN --baseline MODEL [--raters ...] [--difficulty auto|none] [--json]."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from evalplatform.exceptions import DomainError
from results.length_controlled import DIFFICULTIES, campaign_lc_winrates
from results.management.commands._common import add_rater_arguments, get_campaign, get_selection, option_error
from scoring.lc_cli import lc_table


class Command(BaseCommand):
    help = "Print AlpacaEval 2's raw and length-controlled win rates of each model against a baseline model."

    def add_arguments(self, parser: CommandParser) -> None:
        add_rater_arguments(parser)
        parser.add_argument("--baseline", required=True, metavar="MODEL", help="The model compared with every other.")
        parser.add_argument("--exclude-raters", action="append", help="Leave out raters whose name matches GLOB.")
        parser.add_argument(
            "--difficulty",
            choices=DIFFICULTIES,
            default="auto",
            help="auto: instruction difficulty estimated from the campaign's prompts; none: left out of the GLM.",
        )
        parser.add_argument("--json", action="store_true", help="Print JSON instead of a table.")

    def handle(self, *args: Any, **options: Any) -> None:
        campaign = get_campaign(options["campaign"])
        try:
            selection = get_selection(
                campaign, options["raters"], options["exclude_raters"], include_excluded=options["include_excluded"]
            )
            board = campaign_lc_winrates(
                campaign, selection, baseline=options["baseline"], difficulty=options["difficulty"]
            )
        except DomainError as exc:
            raise option_error(exc, options) from exc
        if options["json"]:
            self.stdout.write(json.dumps(board, indent=2))
            return
        table = lc_table({**board, "left_out": 0, "models": [_filled(row) for row in board["models"]]})
        self.stdout.write(table.rsplit("\n", 1)[0] + f"\nbaseline {board['baseline']}, raters {board['raters']}")
        if not board["models"]:
            self.stdout.write(
                f"no rating by these raters compares {board['baseline']} with another model: choose other --raters, "
                "or rate comparisons with the baseline"
            )


def _filled(row: dict[str, Any]) -> dict[str, Any]:
    """Return the row with nan for the LC fields too few ratings left empty (the table prints nan)."""
    return {key: float("nan") if value is None else value for key, value in row.items()}
