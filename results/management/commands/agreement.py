"""manage.py agreement CAMPAIGN [--raters ...] [--exclude-raters GLOB] [--consistent] [--json]."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from evalplatform.exceptions import DomainError
from results.management.commands._common import (
    add_rater_arguments,
    bootstrap_rounds,
    get_campaign,
    get_selection,
    option_error,
    seed,
    write_manifest,
)
from results.manifest import agreement_with_manifest


class Command(BaseCommand):
    help = "Print a campaign's inter-rater agreement: human-human, judges against humans, per annotator."

    def add_arguments(self, parser: CommandParser) -> None:
        add_rater_arguments(parser)
        parser.add_argument(
            "--exclude-raters", action="append", help="Leave out raters whose name matches GLOB (e.g. 'author_*')."
        )
        parser.add_argument(
            "--bootstrap", type=bootstrap_rounds, default=200, help="Bootstrap rounds for the intervals, 0 to 2000."
        )
        parser.add_argument("--seed", type=seed, default=0, help="Seed of the bootstrap (0 or more).")
        parser.add_argument(
            "--consistent",
            action="store_true",
            help="Consistency gate: a comparison a judge decided differently in its two orders counts as one tie.",
        )
        parser.add_argument("--json", action="store_true", help="Print JSON instead of a summary.")
        parser.add_argument("--manifest", metavar="FILE", help="Write the reproducibility manifest to FILE.")

    def handle(self, *args: Any, **options: Any) -> None:
        campaign = get_campaign(options["campaign"])
        try:
            selection = get_selection(
                campaign, options["raters"], options["exclude_raters"], include_excluded=options["include_excluded"]
            )
            report = agreement_with_manifest(
                campaign,
                selection,
                bootstrap=options["bootstrap"],
                seed=options["seed"],
                consistent=options["consistent"],
            )
            write_manifest(options["manifest"], report["manifest"])
        except DomainError as exc:
            raise option_error(exc, options) from exc
        self.stdout.write(json.dumps(report, indent=2) if options["json"] else summary(report))


def figure(item: dict[str, Any]) -> str:
    """Return a metric as 'value [low, high]' (with agree/pairs when present)."""
    value = item.get("value")
    text = "n/a" if value is None else f"{value:.4f}"
    if item.get("ci"):
        low, high = item["ci"]
        text += f" [{low if low is None else round(low, 4)}, {high if high is None else round(high, 4)}]"
    if "pairs" in item:
        text += f" ({item['agree']}/{item['pairs']})"
    elif "n" in item:
        text += f" ({item['agree']}/{item['n']})"
    return text


def summary(report: dict[str, Any]) -> str:
    """Return the agreement report as text for people."""
    mt = report["mtbench_agreement"]
    lines = [
        f"{report['campaign']}: {report['n_ratings']} human ratings, {report['n_units']} comparisons, "
        f"{report['n_raters']} raters (selection: {report['raters']})",
        f"Krippendorff's alpha, nominal: {figure(report['krippendorff_alpha']['nominal'])}",
        f"Krippendorff's alpha, ordinal: {figure(report['krippendorff_alpha']['ordinal'])}",
        f"Fleiss' kappa: {figure(report['fleiss_kappa'])}",
        f"Percent agreement: {figure(report['percent_agreement'])}",
        f"MT-Bench agreement with ties: {figure(mt['with_ties'])}",
        f"MT-Bench agreement without ties: {figure(mt['without_ties'])}",
        f"Leave-one-out (AlpacaEval) agreement: {figure(report['loo_mode_agreement'])}",
    ]
    if report.get("consistent"):
        lines.append(
            f"consistency gate: {report['inconsistent_pairs']} judge comparisons decided differently in the two "
            "orders count as one tie each"
        )
    for judge in report["judges"]:
        major = judge["agreement_with_human_majority"]
        lines.append(
            f"judge {judge['judge']}: with human majority {figure(major['with_ties'])}, "
            f"without ties {figure(major['without_ties'])}; "
            f"position consistency {figure(judge['position_consistency'])}"
        )
    return "\n".join(lines)
