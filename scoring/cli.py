"""Command line: ``python -m scoring rank FILE``, ``python -m scoring agreement FILE --metric NAME``,
``python -m scoring raters FILE`` and ``python -m scoring lc-winrate FILE --baseline NAME``."""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from scoring.bradley_terry import Leaderboard, bradley_terry_from_counts
from scoring.elo import elo
from scoring.loaders import BattleFilter, InputError, read_battle_counts, read_battles


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line on stderr."""

    def error(self, message: str) -> Any:
        """Print a one-line usage error and exit with status 2."""
        self.exit(2, f"{self.prog}: error: {message}\n")


SEED_HELP = "seed of the random draws (a whole number >= 0; none: fresh draws each run)"
FORMAT_HELP = "json (default) or a table for people"


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``python -m scoring``."""
    parser = _Parser(prog="python -m scoring", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    rank = commands.add_parser("rank", help="Bradley-Terry leaderboard from an Arena battle log")
    rank.add_argument("file", help="Arena battle log: JSON Lines or a JSON array of model_a, model_b, winner, ...")
    rank.add_argument(
        "--bootstrap", type=_non_negative, default=0, metavar="N", help="bootstrap rounds (0: sandwich intervals)"
    )
    rank.add_argument("--seed", type=_non_negative, default=None, metavar="S", help=SEED_HELP)
    rank.add_argument(
        "--ties",
        choices=("half", "davidson"),
        default="half",
        help="half: a tie is half a win each way (default); davidson: Davidson's tie model",
    )
    rank.add_argument(
        "--anchor", type=_anchor, default=None, metavar="MODEL=RATING", help="pin MODEL's rating (else mean 1000)"
    )
    rank.add_argument("--elo", action="store_true", help="also report online Elo (K=4)")
    rank.add_argument("--format", choices=("json", "table"), default="json", help=FORMAT_HELP)
    rank.add_argument(
        "--combine",
        choices=("ppi",),
        default=None,
        help="rank human and LLM-judge votes together (PPI; records carry question_id, judge, rater_kind)",
    )
    rank.add_argument("--judge", action="append", default=None, metavar="NAME", help="with --combine: only this judge")
    rank.add_argument(
        "--reweight",
        choices=("pairs",),
        default=None,
        help="weigh each battle by 1 / its pair's battle count (Arena's reweighted sandwich intervals; no --bootstrap)",
    )
    rank.add_argument(
        "--style-control",
        action="store_true",
        help="fit ratings jointly with answer length, headers, lists and bold (Chatbot Arena's; reads conv_metadata)",
    )
    rank.add_argument(
        "--style-reg",
        type=_non_negative_float,
        default=0.5,
        metavar="R",
        help="with --style-control: L2 regularisation (FastChat's 0.5; 0 for the maximum likelihood)",
    )
    rank.add_argument(
        "--cluster",
        choices=("rater", "prompt"),
        default=None,
        help="sandwich intervals clustered by rater (the judge key) or prompt (question_id); no --bootstrap",
    )
    rank.add_argument(
        "--rater-model",
        action="store_true",
        help="rater-aware Bradley-Terry: each rater (judge key) with a reliability and a left bias",
    )
    rank.add_argument(
        "--influence",
        action="store_true",
        help="per adjacent pair, the fewest votes whose removal swaps them (refit-confirmed; 'fragile' marker)",
    )
    rank.add_argument(
        "--downsample-high-freq",
        action="store_true",
        help="cap the votes of prompts asked more than the 99.9th percentile of repeats (Arena's dedup; "
        "prompt = conversation_a's user turns, else question_id)",
    )
    rank.add_argument(
        "--downsample-percentile", type=_percentile, default=0.999, metavar="P", help="with --downsample-high-freq"
    )
    filters = rank.add_argument_group("filters (FastChat's analysis options)")
    filters.add_argument("--anony-only", action="store_true", help="only anonymous battles (anony: true)")
    filters.add_argument(
        "--language", type=_non_empty, default=None, metavar="L", help="only battles whose language is L"
    )
    filters.add_argument("--exclude-ties", action="store_true", help="drop both tie labels")
    filters.add_argument("--dedup", action="store_true", help="drop battles whose dedup_tag.sampled is false")
    filters.add_argument("--since", type=_time, default=None, metavar="T", help="only tstamp >= T (Unix or ISO)")
    filters.add_argument("--until", type=_time, default=None, metavar="T", help="only tstamp < T (Unix or ISO)")
    filters.add_argument(
        "--category", type=_non_empty, default=None, metavar="PATH", help="only true at PATH in category_tag"
    )
    filters.add_argument("--min-votes", type=_non_negative, default=0, metavar="N", help="drop models with < N votes")
    by_category = rank.add_argument_group("category leaderboards (scoring/categories.py)")
    by_category.add_argument(
        "--categories",
        "--by-category",
        action="store_true",
        help="one leaderboard per category: category_tag paths, language, is_code/is_refusal and built-in tags",
    )
    by_category.add_argument(
        "--provisional-below", type=_non_negative, default=300, metavar="N", help="mark categories under N battles"
    )
    by_category.add_argument("--no-builtin-tags", action="store_true", help="leave out the built-in auto: taggers")
    agreement = commands.add_parser("agreement", help="inter-rater agreement from (unit, rater, value) JSONL")
    agreement.add_argument("file", help="JSON Lines (or a JSON array) of unit, rater, value")
    agreement.add_argument("--metric", required=True, help="krippendorff_alpha, cohen_kappa, fleiss_kappa, ...")
    agreement.add_argument("--level", choices=("nominal", "ordinal", "interval", "ratio"), default=None)
    agreement.add_argument("--weights", choices=("linear", "quadratic"), default=None)
    agreement.add_argument("--categories", type=_categories, default=None, metavar="A,B,C")
    agreement.add_argument("--max-per-unit", type=_non_negative, default=None, metavar="N")
    agreement.add_argument(
        "--bootstrap", type=_non_negative, default=0, metavar="N", help="bootstrap rounds for a 95%% interval"
    )
    agreement.add_argument("--seed", type=_non_negative, default=None, metavar="S", help=SEED_HELP)
    raters = commands.add_parser("raters", help="flag anomalous raters in an Arena battle log or a ratings export")
    raters.add_argument("file", help="Arena battle log (JSON Lines, a JSON array or CSV) or a ratings export")
    raters.add_argument("--format", choices=("json", "table"), default="json", help=FORMAT_HELP)
    raters.add_argument("--alpha", type=float, default=0.05, metavar="A", help="flag below this corrected p-value")
    raters.add_argument(
        "--correction", choices=("bh", "holm"), default="bh", help="bh: Benjamini-Hochberg (default); holm: Holm"
    )
    lc = commands.add_parser("lc-winrate", help="AlpacaEval's raw and length-controlled win rates")
    lc.add_argument("file", help="AlpacaEval annotations: JSON Lines or a JSON array")
    lc.add_argument("--baseline", required=True, metavar="NAME", help="the generator every model is compared with")
    lc.add_argument(
        "--difficulty",
        default="auto",
        metavar="auto|none|CSV",
        help="instruction difficulty: estimated from the file (auto), left out (none), or read from a CSV",
    )
    lc.add_argument("--format", choices=("json", "table"), default="json", help=FORMAT_HELP)
    return parser


def _non_negative(text: str) -> int:
    """Parse a non-negative integer."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def _non_negative_float(text: str) -> float:
    """Parse a finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError("must be a finite number >= 0")
    return value


def _percentile(text: str) -> float:
    """Parse a fraction in (0, 1]."""
    value = _non_negative_float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be a fraction in (0, 1] (0.999: the 99.9th percentile), not {text}")
    return value


def _non_empty(text: str) -> str:
    """Parse a value that must not be empty (an empty filter would silently keep every battle)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def _anchor(text: str) -> tuple[str, float]:
    """Parse MODEL=RATING."""
    model, sep, rating = text.rpartition("=")
    if not sep or not model:
        raise argparse.ArgumentTypeError("expected MODEL=RATING")
    try:
        return model, float(rating)
    except ValueError:
        raise argparse.ArgumentTypeError(f"rating {rating!r} is not a number") from None


def _time(text: str) -> float:
    """Parse a time as Unix seconds or an ISO 8601 date or date-time (UTC unless it names its offset)."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither Unix seconds nor an ISO 8601 date") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()


def battle_filter(args: argparse.Namespace) -> BattleFilter:
    """Return the filters given on the command line; raise ValueError when --since is not before --until."""
    if args.since is not None and args.until is not None and args.since >= args.until:
        raise ValueError(f"--since ({args.since:.0f}) must be before --until ({args.until:.0f}), in Unix seconds")
    return BattleFilter(
        anony_only=args.anony_only,
        language=args.language,
        dedup=args.dedup,
        since=args.since,
        until=args.until,
        category=args.category or None,
        exclude_ties=args.exclude_ties,
        min_votes=args.min_votes,
    )


def _categories(text: str) -> list[str]:
    """Parse a comma-separated category list."""
    return [item for item in text.split(",") if item]


def run_rank(args: argparse.Namespace) -> str:
    """Return the rendered leaderboard for the ``rank`` command."""
    if args.reweight and (args.bootstrap or args.combine):
        raise ValueError("--reweight pairs gives reweighted sandwich intervals; drop --bootstrap and --combine")
    hygiene = [
        flag
        for flag, on in (("--influence", args.influence), ("--downsample-high-freq", args.downsample_high_freq))
        if on
    ]
    others = args.cluster or args.rater_model or args.categories or args.style_control or args.combine
    if hygiene and others:
        raise ValueError(
            f"{' and '.join(hygiene)} apply to the plain leaderboard: drop --cluster, --rater-model, "
            "--categories, --style-control and --combine"
        )
    if args.cluster or args.rater_model:
        from scoring.rank_raters import run_rank_raters

        return run_rank_raters(args)
    if args.categories:
        from scoring.categories import run_rank_categories

        return run_rank_categories(args)
    if args.style_control:
        from scoring.style_cli import run_rank_style

        return run_rank_style(args)
    if args.combine == "ppi":
        from scoring.ppi_cli import run_rank_ppi

        return run_rank_ppi(args)
    if args.judge:
        raise ValueError("--judge needs --combine ppi")
    filters = battle_filter(args)
    downsampling = None
    try:
        if args.downsample_high_freq:
            from scoring.prompt_frequency import read_downsampled_counts

            counts, downsampling = read_downsampled_counts(
                args.file, filters, percentile=args.downsample_percentile, rng=np.random.default_rng(args.seed)
            )
        else:
            counts = read_battle_counts(args.file, filters)
    except InputError as exc:
        message = str(exc)
        raise InputError(message if message.startswith("cannot read") else f"{args.file}: {message}") from None
    board = bradley_terry_from_counts(
        counts,
        ties=args.ties,
        anchor=args.anchor,
        bootstrap=args.bootstrap,
        rng=np.random.default_rng(args.seed),
        reweight=args.reweight,
    )
    payload = board.to_dict()
    payload["seed"] = args.seed
    if filters.active:
        payload["filters"] = filters.as_dict()
    if downsampling is not None:
        payload["downsampling"] = downsampling.to_dict()
    if args.elo:
        ratings = elo(read_battles(args.file, filters)).as_dict()
        for row in payload["ratings"]:
            row["elo"] = ratings[row["model"]]
    pairs = None
    if args.influence:
        from scoring import influence

        pairs = influence.leaderboard_influence(counts, board)
        influence.add_to_rows(payload["ratings"], pairs)
        payload["influence"] = [pair.to_dict() for pair in pairs]
    if args.format == "table":
        table = _table(board, payload)
        return table if pairs is None else _with_influence(table, board, pairs)
    return _json_with_matrix(payload, ("win_probability", "matrix"))


def _table(board: Leaderboard, payload: dict[str, Any]) -> str:
    """Render the leaderboard for people."""
    width = max([len(row.model) for row in board.ratings] + [5])
    elo_col = any("elo" in row for row in payload["ratings"])
    wlt = [f"{row.wins}/{row.losses}/{row.ties}" for row in board.ratings]
    wlt_width = max([len(text) for text in wlt] + [5])
    head = f"{'rank':>4} {'ub':>3}  {'model':<{width}}  {'rating':>8}  {'95% CI':>18}  {'votes':>7}  "
    head += f"{'W/L/T':<{wlt_width}}"
    lines = [head + ("      elo" if elo_col else ""), "-" * (len(head) + (9 if elo_col else 6))]
    for row, item, counts in zip(board.ratings, payload["ratings"], wlt, strict=True):
        line = (
            f"{row.rank:>4} {row.rank_ub:>3}  {row.model:<{width}}  {row.rating:8.1f}  "
            f"[{row.lower:7.1f}, {row.upper:7.1f}]  {row.votes:>7}  {counts:<{wlt_width}}"
        )
        if elo_col:
            line += f"  {item['elo']:7.1f}"
        if row.flags:
            line += "  (" + ", ".join(row.flags) + ")"
        lines.append(line)
    reweighted = f", reweight={board.reweight}" if board.reweight else ""
    reweighted += f", clustered by {board.cluster}" if board.cluster else ""
    lines.append(f"{board.n_battles} battles, ties={board.ties}, interval={board.interval}{reweighted}")
    lines.extend(f"warning: {text}" for text in board.warnings)
    return "\n".join(lines)


def _with_influence(table: str, board: Leaderboard, pairs: Any) -> str:
    """Append the votes-to-flip column to the rows of a rendered table."""
    from scoring.influence import table_cells

    lines = table.split("\n")
    cells = table_cells([row.model for row in board.ratings], pairs)
    lines[0] += "  flip (votes)"
    lines[1] += "-" * 14
    for k, cell in enumerate(cells):
        lines[2 + k] += f"  {cell}"
    return "\n".join(lines)


def run_agreement(args: argparse.Namespace) -> str:
    """Return the JSON result of the ``agreement`` command."""
    from scoring.agreement_cli import agreement_payload

    with _naming_the_file(args.file):
        payload = agreement_payload(args)
    return json.dumps(_finite(payload), indent=1)


def run_raters(args: argparse.Namespace) -> str:
    """Return the per-rater report of the ``raters`` command."""
    from scoring.rater_cli import raters_output

    return raters_output(args)


def run_lc(args: argparse.Namespace) -> str:
    """Return the raw and length-controlled win rates of the ``lc-winrate`` command."""
    from scoring.lc_cli import lc_payload, lc_table

    with _naming_the_file(args.file):
        payload = lc_payload(args)
    return lc_table(payload) if args.format == "table" else json.dumps(_finite(payload), indent=1)


@contextlib.contextmanager
def _naming_the_file(path: str) -> Iterator[None]:
    """Prefix FILE to a reader's error about one of its lines or records, as ``rank`` words them."""
    try:
        yield
    except InputError as exc:
        message = str(exc)
        if message.startswith(("line ", "record ", "no ratings")):
            raise InputError(f"{path}: {message}") from None
        raise


def _json_with_matrix(payload: dict[str, Any], path: tuple[str, str]) -> str:
    """Return json.dumps(_finite(payload), indent=1), writing the matrix at ``path`` without the slow encoder.

    json's indented encoder is pure Python; the (models x models) matrix of floats is most of the output.
    """
    outer, key = path
    matrix = payload[outer][key]
    if not matrix or not all(matrix) or not np.isfinite(np.asarray(matrix, dtype=float)).all():
        return json.dumps(_finite(payload), indent=1)
    marker = "\u0000matrix\u0000"
    text = json.dumps(_finite({**payload, outer: {**payload[outer], key: marker}}), indent=1)
    # The matrix sits two levels deep: rows one space further in, values two.
    rows = ",\n".join("   [\n" + ",\n".join("    " + repr(float(v)) for v in row) + "\n   ]" for row in matrix)
    # The matrix comes after every other string of the payload (the model names included).
    head, _, tail = text.rpartition(json.dumps(marker))
    return head + "[\n" + rows + "\n  ]" + tail


def _finite(value: Any) -> Any:
    """Replace nan/inf by None so the output is strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return the exit status."""
    args = build_parser().parse_args(argv)
    try:
        _check_file_type(args.command, args.file)
        commands = {"rank": run_rank, "agreement": run_agreement, "raters": run_raters, "lc-winrate": run_lc}
        output = commands[args.command](args)
    except (InputError, ValueError) as exc:
        print(f"error: {_one_line(str(exc))}", file=sys.stderr)
        return 1
    except MemoryError:
        print("error: out of memory", file=sys.stderr)
        return 1
    try:
        print(output)
    except BrokenPipeError:
        # The reader (e.g. ``head``) went away: not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


# File types the project's exports write that a command cannot read (it would report "line 1: invalid JSON").
UNREADABLE = {
    "rank": (".csv", ".parquet"),
    "agreement": (".csv", ".parquet"),
    "lc-winrate": (".csv", ".parquet"),
    "raters": (".parquet",),
}


def _check_file_type(command: str, path: str) -> None:
    """Raise ValueError when FILE's extension names a type the command does not read, saying which it reads."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix in UNREADABLE[command]:
        reads = "JSON Lines, a JSON array or CSV" if command == "raters" else "JSON Lines or a JSON array"
        export = "" if command == "agreement" else " (manage.py export --out FILE.jsonl or FILE.json writes one)"
        raise ValueError(f"{path}: {command} reads {reads}, not {suffix[1:]} files{export}")


def _one_line(text: str) -> str:
    """Collapse a message to one line."""
    return " ".join(text.split())
