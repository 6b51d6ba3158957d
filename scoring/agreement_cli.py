"""The ``agreement`` subcommand: dispatch a metric name to its function with the options it accepts."""

from __future__ import annotations

import argparse
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from scoring import agreement
from scoring.krippendorff import krippendorff_alpha
from scoring.llm_agreement import loo_mode_agreement, mtbench_agreement
from scoring.loaders import read_ratings
from scoring.ratings import rating_table

METRICS = (
    "krippendorff_alpha",
    "cohen_kappa",
    "scott_pi",
    "fleiss_kappa",
    "conger_kappa",
    "gwet_ac1",
    "brennan_prediger",
    "percent_agreement",
    "mtbench_agreement",
    "loo_mode_agreement",
)


def _match_categories(given: Sequence[str] | None, values: list[Hashable]) -> list[Hashable] | None:
    """Map command-line category strings onto the data's value types (e.g. '1' -> 1)."""
    if given is None:
        return None
    by_text = {str(v): v for v in values}
    out: list[Hashable] = []
    for text in given:
        if text in by_text:
            out.append(by_text[text])
            continue
        try:
            number = float(text)
        except ValueError:
            out.append(text)
            continue
        out.append(int(number) if number.is_integer() and all(isinstance(v, int) for v in values) else number)
    return out


def _check_options(args: argparse.Namespace) -> None:
    """Reject options that the chosen metric would silently ignore."""
    if args.level is not None and args.metric != "krippendorff_alpha":
        raise ValueError("--level applies to krippendorff_alpha only")
    if args.weights is not None and args.metric not in ("cohen_kappa", "scott_pi"):
        raise ValueError("--weights applies to cohen_kappa and scott_pi only")
    if args.max_per_unit is not None and args.metric != "loo_mode_agreement":
        raise ValueError("--max-per-unit applies to loo_mode_agreement only")


def _check_order(args: argparse.Namespace, values: list[Hashable]) -> None:
    """Refuse text labels where the metric uses the order of the values and no order was given.

    Sorted, text labels would be ordered alphabetically (a < b < tie; "10" < "2"), which is rarely the scale
    meant. Interval and ratio distances come from the values themselves (text that is not a number is refused
    when they are computed).
    """
    option = "--level ordinal" if args.level == "ordinal" else f"--weights {args.weights}" if args.weights else None
    labels = sorted({v for v in values if isinstance(v, str)})
    if option is None or not labels or args.categories is not None:
        return
    shown = ", ".join(labels[:5]) + (", ..." if len(labels) > 5 else "")
    raise ValueError(
        f"{option} orders the values, and they are text labels ({shown}): give their order with "
        "--categories LOWEST,...,HIGHEST (text is not sorted alphabetically)"
    )


def agreement_payload(args: argparse.Namespace) -> dict[str, Any]:
    """Compute the requested metric over the file's ratings and return its JSON-ready dict."""
    if args.metric not in METRICS:
        raise ValueError(f"unknown metric {args.metric!r} (expected one of {', '.join(METRICS)})")
    _check_options(args)
    ratings = read_ratings(args.file)
    rng = np.random.default_rng(args.seed)
    common: dict[str, Any] = {"bootstrap": args.bootstrap, "rng": rng}
    if args.metric == "mtbench_agreement":
        return mtbench_agreement(ratings, **common).to_dict()
    if args.metric == "loo_mode_agreement":
        return loo_mode_agreement(ratings, max_per_unit=args.max_per_unit, **common).to_dict()
    values = [v for _, _, v in ratings]
    _check_order(args, values)
    categories = _match_categories(args.categories, values)
    table = rating_table(ratings, categories=categories)
    if args.metric == "krippendorff_alpha":
        return krippendorff_alpha(table, level=args.level or "nominal", **common).to_dict()
    if args.metric in ("cohen_kappa", "scott_pi"):
        common["weights"] = args.weights
    result: agreement.AgreementResult = getattr(agreement, args.metric)(table, **common)
    return result.to_dict()
