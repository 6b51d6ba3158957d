"""manage.py judge_report JUDGE [--campaign SLUG] [--json]: how far a judge can be trusted, per config version."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotation.models import Campaign
from judging.models import JudgeConfig, JudgePanel
from results.judge_report import MAX_BOOTSTRAP, build_report, report_campaigns
from results.management.commands._common import seed

MIN_SLOPE_RATINGS = 3  # scoring.judge_audit.logistic_slope: fewer observations give no slope


class Command(BaseCommand):
    help = (
        "Print a judge's validation report per configuration version: agreement with humans and gold, position, "
        "stability across repeats, length bias and self-preference."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("judge", help="judge name or id")
        parser.add_argument("--campaign", help="one campaign's slug (default: every campaign the judge rated)")
        parser.add_argument("--bootstrap", type=int, default=500, help=f"bootstrap rounds, 0 to {MAX_BOOTSTRAP}")
        parser.add_argument("--seed", type=seed, default=0, help="Seed of the bootstrap (0 or more).")
        parser.add_argument("--json", action="store_true", help="print JSON instead of a summary")

    def handle(self, *args: Any, **options: Any) -> None:
        judge = _judge(options["judge"])
        if not 0 <= options["bootstrap"] <= MAX_BOOTSTRAP:
            raise CommandError(f"--bootstrap: must be between 0 and {MAX_BOOTSTRAP}")
        if options["campaign"] is not None:
            campaign = Campaign.objects.filter(slug=options["campaign"]).first()
            if campaign is None:
                raise CommandError(f"--campaign: no campaign with slug {options['campaign']!r}")
            campaigns = [campaign]
        else:
            campaigns = list(report_campaigns(judge, Campaign.objects.all()))
            if not campaigns:
                raise CommandError(f"judge: {judge.name} has rated no campaign yet")
        report = build_report(judge, campaigns, bootstrap=options["bootstrap"], seed=options["seed"])
        self.stdout.write(json.dumps(report, indent=2) if options["json"] else summary(report))


def _judge(identifier: str) -> JudgeConfig:
    judge = JudgeConfig.objects.filter(name=identifier).first()
    if judge is None and identifier.isdigit() and len(identifier) < 18:
        judge = JudgeConfig.objects.filter(pk=int(identifier)).first()
    if judge is None:
        panel = JudgePanel.objects.filter(name=identifier).first()
        if panel is not None:
            members = ", ".join(sorted(panel.members.values_list("name", flat=True)))
            raise CommandError(
                f"judge: {identifier!r} is a judge panel; the report covers one judge: run it for each member "
                f"({members}), or compare the panel with humans by manage.py leaderboard CAMPAIGN --side-by-side"
            )
        raise CommandError(f"judge: no judge named {identifier!r} (nor with that id)")
    return judge


def fig(item: dict[str, Any] | None, digits: int = 3) -> str:
    """Return 'value [low, high]' (n/a when undefined)."""
    if not item or item.get("value") is None:
        return "n/a"
    text = f"{item['value']:.{digits}f}"
    ci = item.get("ci")
    if ci and ci[0] is not None and ci[1] is not None:
        text += f" [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"
    return text


def summary(report: dict[str, Any]) -> str:
    """Return the report as text, one block per configuration version."""
    lines = [
        f"judge {report['judge']} (model {report['model']}, family {report['family'] or '-'}), current version "
        f"{report['current_version']}; campaigns: {', '.join(report['campaigns'])}",
    ]
    for v in report["versions"]:
        runs = v["runs"]
        when = f"runs {runs['first_run'][:19]} .. {runs['last_run'][:19]}" if runs.get("count") else "no runs"
        humans, gold = v["humans"], v["gold"]
        pos, stab, length, own = v["position"], v["stability"], v["length"], v["self_preference"]
        majority = humans["agreement_with_human_majority"]
        ceiling = humans["human_ceiling"]["agreement_with_majority_of_others"]
        lines += [
            "",
            f"version {v['version']}: {v['n_ratings']} ratings, {runs.get('count', 0)} run(s), {when}",
            f"  vs human majority ({humans['n_with_human_majority']} comparisons): agreement "
            f"{fig(majority['with_ties'])}, without ties {fig(majority['without_ties'])}, "
            f"Cohen's kappa {fig(humans['cohen_kappa'])}; human ceiling {fig(ceiling)}",
            f"  vs gold ({gold['agreement']['n']} comparisons): agreement {fig(gold['agreement'])}, "
            f"kappa {fig(gold['cohen_kappa'])}",
            f"  position: first preferred {fig(pos['first_preference'])} (excess {fig(pos['first_excess'])}), "
            f"consistent across orders {fig(pos['consistency'])} of {pos['consistency']['pairs']}",
            f"  stability: {stab['repeats']} repeat(s), {stab['items']} verdicts, flip rate {fig(stab['flip_rate'])}, "
            f"repeats for a {stab['target']:.0%} stable majority: {stab['repeats_for_stable_majority'] or 'n/a'}",
            f"  length slope: judge {_slope_text(length['judge'])}, humans {_slope_text(length['humans'])}, "
            f"difference {fig(length['difference'])}",
        ]
        if own.get("family"):
            lines.append(
                f"  self-preference ({own['family']}, {own['comparisons']} comparisons): judge {fig(own['judge'])}, "
                f"humans {fig(own['humans'])}, difference {fig(own['difference'])}"
            )
        else:
            lines.append(f"  self-preference: {own.get('undefined')}")
    return "\n".join(lines)


def _slope_text(item: dict[str, Any]) -> str:
    """Return a length slope with its interval and p-value, or why it has none."""
    n = item["decisive_ratings"]
    if item["slope"] is None:
        if n < MIN_SLOPE_RATINGS:
            return f"n/a ({n} decisive ratings, needs {MIN_SLOPE_RATINGS})"
        return (
            f"n/a ({n} decisive ratings but no finite slope: the longer (or shorter) answer always wins, every "
            "verdict goes one way, or the lengths do not vary)"
        )
    p_value = "n/a" if item["p_value"] is None else f"{item['p_value']:.2g}"
    return f"{fig({'value': item['slope'], 'ci': item['ci']})} (p {p_value}, {n} decisive ratings)"
