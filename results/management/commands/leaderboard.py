"""manage.py leaderboard CAMPAIGN [--raters humans|judges|all|NAME,...] [--bootstrap N] [--combine ppi] [--consistent]
[--category NAME | --list-categories] [--style-control [--style-reg R]] [--cluster rater|prompt] [--rater-model]
[--json]."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotation.models import Campaign
from evalplatform.exceptions import DomainError
from results.categories import campaign_categories, check_category
from results.leaderboards import side_by_side
from results.management.commands._common import (
    add_rater_arguments,
    bootstrap_rounds,
    get_campaign,
    get_selection,
    option_error,
    seed,
    write_manifest,
)
from results.manifest import leaderboard_with_manifest
from results.prompt_downsampling import hygiene_lines
from results.rater_mix import mix_note, rater_mix
from results.rater_model import check_rater_options, rater_option_lines
from results.style_leaderboard import style_output, style_table


class Command(BaseCommand):
    help = "Print a campaign's Bradley-Terry leaderboard with 95% intervals, rank bounds and online Elo."

    def add_arguments(self, parser: CommandParser) -> None:
        add_rater_arguments(parser)
        parser.add_argument(
            "--bootstrap", type=bootstrap_rounds, default=0, help="Bootstrap rounds, 0 to 2000 (0: sandwich intervals)."
        )
        parser.add_argument(
            "--seed", type=seed, default=0, help="Seed of the bootstrap and the downsampling (0 or more)."
        )
        parser.add_argument("--exclude-raters", action="append", help="Leave out raters whose name matches GLOB.")
        parser.add_argument("--side-by-side", action="store_true", help="Also rank by humans and each judge.")
        parser.add_argument("--json", action="store_true", help="Print JSON instead of a table.")
        parser.add_argument("--manifest", metavar="FILE", help="Write the reproducibility manifest to FILE.")
        parser.add_argument(
            "--combine",
            choices=["ppi"],
            default=None,
            help="Rank humans and judges together (prediction-powered: all judge ratings plus the human ones).",
        )
        parser.add_argument(
            "--consistent",
            action="store_true",
            help="Consistency gate: a comparison a judge decided differently in its two orders counts as one tie.",
        )
        parser.add_argument(
            "--category", metavar="NAME", help="Only the ratings on prompts with this tag (see --list-categories)."
        )
        parser.add_argument(
            "--list-categories", action="store_true", help="List the campaign's categories with their battles."
        )
        parser.add_argument(
            "--style-control",
            action="store_true",
            help="Fit the ratings jointly with the outputs' length, headers, lists and bold (Chatbot Arena's).",
        )
        parser.add_argument(
            "--style-reg",
            type=float,
            default=0.5,
            help="With --style-control: L2 regularisation (0: maximum likelihood).",
        )
        parser.add_argument(
            "--cluster",
            choices=["rater", "prompt"],
            default=None,
            help="Sandwich intervals clustered by rater or by prompt (one rater's or prompt's votes are correlated).",
        )
        parser.add_argument(
            "--rater-model",
            action="store_true",
            help="Rater-aware Bradley-Terry: each rater's reliability and left bias fitted with the ratings.",
        )
        parser.add_argument(
            "--influence",
            action="store_true",
            help="Per adjacent pair, the fewest votes whose removal swaps them (refit-confirmed; fragile marker).",
        )
        parser.add_argument(
            "--downsample-high-freq",
            action="store_true",
            help="Chatbot Arena's downsampling: prompts rated more than the 99.9th percentile keep that many ratings.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        campaign = get_campaign(options["campaign"])
        try:
            selection = get_selection(
                campaign, options["raters"], options["exclude_raters"], include_excluded=options["include_excluded"]
            )
            check_rater_options(
                cluster=options["cluster"],
                rater_model=options["rater_model"],
                bootstrap=options["bootstrap"],
                consistent=options["consistent"],
                combine=options["combine"],
                style_control=options["style_control"],
            )
            if options["list_categories"]:
                listed = campaign_categories(campaign, selection)
                self.stdout.write(json.dumps(listed, indent=2) if options["json"] else categories_table(listed))
                return
            if options["style_control"]:
                # style_output checks the options and fits; its JSON gains the rater line every leaderboard states
                board = json.loads(style_output(campaign, selection, {**options, "json": True}))
                board["rater_mix"] = rater_mix(campaign, selection)
                self.stdout.write(
                    json.dumps(board, indent=2) if options["json"] else _with_mix(style_table(board), board)
                )
                return
            if options["category"] is not None:
                _check_category(campaign, options["category"])
            board = leaderboard_with_manifest(
                campaign,
                selection,
                bootstrap=options["bootstrap"],
                seed=options["seed"],
                combine=options["combine"],
                consistent=options["consistent"],
                category=options["category"],
                cluster=options["cluster"],
                rater_model=options["rater_model"],
                influence=options["influence"],
                downsample=options["downsample_high_freq"],
            )
            write_manifest(options["manifest"], board["manifest"])
            board["rater_mix"] = rater_mix(campaign, selection)
            if options["combine"]:
                self.stdout.write(
                    json.dumps(board, indent=2) if options["json"] else _with_mix(combined_table(board), board)
                )
                return
            board["warnings"] = [_say_what_is_missing(w, board, campaign.slug) for w in board.get("warnings", [])]
            if options["side_by_side"]:
                board["side_by_side"] = side_by_side(campaign, selection)
        except DomainError as exc:
            raise option_error(exc, options) from exc
        self.stdout.write(json.dumps(board, indent=2) if options["json"] else table(board))


API_CATEGORIES_HINT = "(GET .../categories/ lists them)"  # results.categories.check_category, written for the API


def _check_category(campaign: Campaign, category: str) -> None:
    """Raise CommandError naming --category, and the option that lists the categories, unless a prompt has it."""
    try:
        check_category(campaign, category)
    except DomainError as exc:
        error = option_error(exc, {"category": category})
        hint = f"(manage.py leaderboard {campaign.slug} --list-categories lists them)"
        raise CommandError(str(error).replace(API_CATEGORIES_HINT, hint)) from exc


NO_NAMED_RATINGS = "no ratings between named models"  # results.leaderboards: the selection gave no battle
COLUMNS = (
    "rank: 1 + the models rated higher; ub: the best rank the 95% intervals allow (1 + the models whose interval "
    "lies wholly above this one's), so ub <= rank; ub < rank: some models rated higher cannot be told apart from it"
)


def _say_what_is_missing(warning: str, board: dict[str, Any], slug: str) -> str:
    """Return the warning, saying which raters are missing when the selection has no ratings at all."""
    mix = board["rater_mix"]
    if warning != NO_NAMED_RATINGS or mix["humans"] or mix["judges"]:
        return warning
    kind = mix["raters"].split(" -")[0]  # the key without its exclusions
    if kind == "judges":
        return f"no judge has rated {slug} yet: run manage.py judge {slug} --judge NAME, or choose --raters humans"
    if kind == "humans":
        return f"no annotator has rated {slug} yet: choose --raters judges, or wait for ratings"
    if mix["default"]:
        return f"{slug} has no ratings yet"
    return f"the raters {mix['raters']} gave no ratings in {slug}"


def _with_mix(table: str, board: dict[str, Any]) -> str:
    """Return the table followed by the line saying which raters it counted (as every leaderboard says)."""
    return f"{table}\n{mix_note(board['rater_mix'])}"


def _number(value: float | None) -> str:
    """Return a correlation for people: n/a when it is undefined."""
    return "n/a" if value is None else f"{value:.3g}"


def categories_table(listed: dict[str, Any]) -> str:
    """Return the campaign's categories as a text table."""
    width = max([len(row["category"]) for row in listed["categories"]] + [8])
    lines = [
        f"{listed['campaign']}: categories, raters {listed['raters']}",
        f"{'category':<{width}} {'prompts':>8} {'battles':>8}",
    ]
    for row in listed["categories"]:
        note = f"  provisional (under {listed['min_battles']} battles)" if row["provisional"] else ""
        lines.append(f"{row['category']:<{width}} {row['n_prompts']:>8} {row['n_battles']:>8}{note}")
    if not listed["categories"]:
        lines.append("no prompt has a tag: import tags/category, or run manage.py tag_prompts")
    if listed["truncated"]:
        lines.append("(more categories than listed)")
    return "\n".join(lines)


def combined_table(board: dict[str, Any]) -> str:
    """Return the human + judge (prediction-powered) leaderboard as a text table."""
    lines = [
        f"{board['campaign']}: humans and judges combined (prediction-powered), raters {board['raters']}: "
        f"{board['n_labelled']} comparisons rated by both, {board['n_unlabelled']} by judges only"
        + (f", lambda {board['lambda']:.3f}" if "lambda" in board else ""),
        f"{'rank':>4} {'ub':>3}  {'model':<28} {'rating':>8} {'95% interval':>19} {'humans only':>12} {'paired':>7}",
    ]
    for row in board["ratings"]:
        lines.append(
            f"{row['rank']:>4} {row['rank_ub']:>3}  {row['model']:<28} {row['rating']:>8.1f} "
            f"[{row['lower']:>7.1f}, {row['upper']:>7.1f}] {'+-':>3}{1.96 * row['se_human']:>6.1f} pt "
            f"{row['labelled']:>7}"
        )
    if board["ratings"]:
        lines.append(COLUMNS)
    lines += [f"warning: {w}" for w in board.get("warnings", [])]
    return "\n".join(lines)


def table(board: dict[str, Any]) -> str:
    """Return the leaderboard as a text table for people."""
    lines = [
        f"{board['campaign']}: {board['n_battles']} battles, raters {board['raters']}"
        + (
            f", {board['skipped_unnamed']} ratings skipped (outputs without model names)"
            if board["skipped_unnamed"]
            else ""
        )
        + (
            f", category {board['category']}"
            + (f" (provisional: under {board['min_battles']} battles)" if board["provisional"] else "")
            if "category" in board
            else ""
        )
        + (
            f", consistency gate: {board['inconsistent_pairs']} judge comparisons decided differently in the two "
            "orders counted as one tie"
            if board.get("consistent")
            else ""
        ),
        f"{'rank':>4} {'ub':>3}  {'model':<28} {'rating':>8} {'95% interval':>19} {'elo':>7} {'votes':>6} "
        f"{'wins':>5} {'losses':>6} {'ties':>5}",
    ]
    for row in board["ratings"]:
        elo = f"{row['elo']:.1f}" if row.get("elo") is not None else "-"
        lines.append(
            f"{row['rank']:>4} {row['rank_ub']:>3}  {row['model']:<28} {row['rating']:>8.1f} "
            f"[{row['lower']:>7.1f}, {row['upper']:>7.1f}] {elo:>7} {row['votes']:>6} {row['wins']:>5} "
            f"{row['losses']:>6} {row['ties']:>5}"
        )
    if board["ratings"]:
        lines.append(
            COLUMNS
            + "; elo: online Elo over the ratings in the order given (it depends on that order; the rating does not)"
        )
    lines += rater_option_lines(board)
    lines += hygiene_lines(board)
    lines += [f"warning: {w}" for w in board.get("warnings", [])]
    lines.append(mix_note(board["rater_mix"]))
    sbs = board.get("side_by_side")
    if sbs:
        for label, corr in sbs["correlation_with_humans"].items():
            spearman, kendall = (_number(corr[key]) for key in ("spearman", "kendall"))
            lines.append(
                f"{label} vs humans: spearman {spearman}, kendall {kendall} ({corr['n_models']} models ranked by both)"
            )
    return "\n".join(lines)
