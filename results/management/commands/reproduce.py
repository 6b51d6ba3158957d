"""manage.py reproduce MANIFEST [--json]: recompute a leaderboard, agreement report or export from its manifest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from evalplatform.exceptions import DomainError
from results.reproduce import reproduce


class Command(BaseCommand):
    help = (
        "Recompute the result a manifest describes (FILE.manifest.json beside an export, or a leaderboard's or "
        "agreement report's `manifest`) and say whether it is identical, and what changed if not. Exit status 1 "
        "when it differs."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("manifest", help="The manifest's JSON file (or a report's JSON holding a `manifest` key).")
        parser.add_argument("--json", action="store_true", help="Print the comparison as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        data = read_manifest(Path(options["manifest"]))
        try:
            report = reproduce(data)
        except DomainError as exc:
            raise CommandError(f"{options['manifest']}: {exc.message}") from exc
        self.stdout.write(json.dumps(report, indent=2) if options["json"] else summary(report))
        if not report["identical"]:
            raise CommandError("the result is not identical", returncode=1)


def read_manifest(path: Path) -> Any:
    """Return a manifest file's JSON (the ``manifest`` key of a whole report), or raise CommandError."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CommandError(f"{path}: cannot read it ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        raise CommandError(f"{path}: not a manifest (not UTF-8 text)") from exc
    except json.JSONDecodeError as exc:
        raise CommandError(f"{path}: not a manifest (invalid JSON at line {exc.lineno}: {exc.msg})") from exc
    if isinstance(data, dict) and isinstance(data.get("manifest"), dict):
        return data["manifest"]
    return data


def summary(report: dict[str, Any]) -> str:
    """Return the comparison as text for people."""
    what = (
        f"{report['kind']} of {report['campaign']} (raters {report['selection']}, manifest of {report['created_at']})"
    )
    if report["identical"]:
        lines = [f"identical: the {what} comes out the same from {report['ratings']['now']} ratings"]
    else:
        lines = [f"NOT identical: the {what}"]
    lines += [f"  {line}" for line in report["differences"]]
    return "\n".join(lines)
