"""Helpers shared by the results commands."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from annotation.models import Campaign
from evalplatform.exceptions import DomainError
from results.rater_exclusions import with_exclusions
from results.raters import RaterSelection, parse_raters
from results.selectors import check_rater_names


def seed(text: str) -> int:
    """Parse --seed: a whole number >= 0 (numpy refuses a negative seed with a traceback naming no option)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


MAX_BOOTSTRAP = 2000  # the API's bound, and the one manage.py reproduce checks a manifest against


def bootstrap_rounds(text: str) -> int:
    """Parse --bootstrap: 0 to MAX_BOOTSTRAP rounds (more would run unbounded, and reproduce refuses it)."""
    value = seed(text)
    if value > MAX_BOOTSTRAP:
        raise argparse.ArgumentTypeError(f"at most {MAX_BOOTSTRAP}, not {value}")
    return value


def add_rater_arguments(parser: CommandParser) -> None:
    """Add the campaign argument and the --raters option."""
    parser.add_argument("campaign", help="Campaign slug (or id).")
    parser.add_argument(
        "--raters",
        default="all",
        help="humans, judges, all (default) or a comma-separated list of rater names or pseudonyms.",
    )
    parser.add_argument(
        "--include-excluded",
        action="store_true",
        help="Count the raters the researchers excluded from results too (left out by default).",
    )


def get_campaign(ref: str) -> Campaign:
    """Return the campaign with this slug or id, or raise CommandError."""
    campaign = Campaign.objects.filter(slug=ref).first()
    if campaign is None and ref.isdigit():
        campaign = Campaign.objects.filter(pk=int(ref)).first()
    if campaign is None:
        raise CommandError(f"no campaign {ref!r} (give its slug or id)")
    return campaign


def get_selection(
    campaign: Campaign, raters: str, exclude: list[str] | None = None, *, include_excluded: bool = False
) -> RaterSelection:
    """Parse and check a rater selection (names among the campaign's raters), without the raters excluded from
    the campaign's results unless ``include_excluded``."""
    selection = parse_raters(raters, exclude)
    check_rater_names(selection, campaign=campaign)
    return with_exclusions(selection, campaign, include_excluded=include_excluded)


def write_manifest(path: str | None, manifest: dict[str, Any]) -> None:
    """Write a reproducibility manifest to path (nothing when None), or raise CommandError."""
    if path is None:
        return
    try:
        Path(path).write_text(json.dumps(manifest, indent=2) + "\n")
    except OSError as exc:
        raise CommandError(f"{path}: cannot write the manifest ({exc.strerror})") from exc


def option_error(
    exc: DomainError, options: dict[str, Any], *, positional: tuple[str, ...] = ("campaign",)
) -> CommandError:
    """Return a CommandError of the refusal, its field written as the command's option (``min_confidence: ...``
    becomes ``--min-confidence: ...``) when the command has that option."""
    field = exc.field or ""
    if field and field in options and field not in positional and exc.message.startswith(f"{field}: "):
        return CommandError("--" + field.replace("_", "-") + exc.message[len(field) :])
    return CommandError(exc.message)
