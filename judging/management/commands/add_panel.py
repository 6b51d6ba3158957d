"""Create a judge panel: several judges rating as one rater (the operator's command, as add_judge).

The panel is made by ``judging.panels.create_panel``, the service the API and the admin use, so the same rules hold:
2 to 15 distinct members, an operator's panel (no --owner) holds only the operator's judges, a researcher's panel
only judges its owner may use, and mean_probability needs members whose template yields a probability.
"""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError

from evalplatform.exceptions import DomainError, PermissionDenied
from judging import panels
from judging.access import access_judges
from judging.models import JudgeConfig, JudgePanel

MAX_NAME = 200  # JudgePanel.name and Rater.name


class Command(BaseCommand):
    help = "Create a judge panel from 2 to 15 judges: their majority (or mean probability) is the panel's verdict."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("name", help="the panel's name, also the name of its rater in results")
        parser.add_argument("--members", required=True, help="comma-separated judge names, e.g. J1,J2,J3")
        parser.add_argument(
            "--aggregation",
            default=JudgePanel.Aggregation.MAJORITY,
            help="majority (default) or mean_probability (every member's template must yield a probability)",
        )
        parser.add_argument("--owner", help="username of the panel's owner (default: none, an operator's panel)")

    def handle(self, *args: Any, **options: Any) -> None:
        name = options["name"].strip()
        if len(name) > MAX_NAME:
            raise CommandError(f"name: at most {MAX_NAME} characters, not {len(name)}")
        owner = _owner(options["owner"])
        members = _members(options["members"])
        try:
            panel = panels.create_panel(name=name, members=members, owner=owner, aggregation=options["aggregation"])
        except DomainError as exc:
            raise _option_error(exc) from exc
        whose = f"owner {owner.username}" if owner else "the operator's"
        names = ", ".join(sorted(m.name for m in members))
        self.stdout.write(f"created judge panel {panel.name} ({panel.aggregation}, {whose}): {names}")


def _option_error(exc: DomainError) -> CommandError:
    """Return the service's refusal with its field written as this command's option (``--members: ...``)."""
    field = exc.field or ""
    if field in ("members", "aggregation", "owner") and exc.message.startswith(f"{field}: "):
        return CommandError(f"--{exc.message}")
    return CommandError(exc.message)


def _owner(username: str | None) -> User | None:
    """Return the user named by --owner, who must be a researcher as for the API (absent or "": none)."""
    if not username:
        return None
    owner = User.objects.filter(username=username).first()
    if owner is None:
        raise CommandError(f"--owner: no user named {username!r}")
    try:
        access_judges(user=owner)
    except PermissionDenied as exc:
        raise CommandError(f"--owner: {username} is not a researcher (only researchers use judges)") from exc
    return owner


def _members(value: str) -> list[JudgeConfig]:
    """Return the judges named in --members, in their order, naming those that do not exist."""
    names = [part.strip() for part in value.split(",") if part.strip()]
    if len(names) > 2 * panels.MAX_MEMBERS:  # bounded before the query; create_panel gives the exact rule
        raise CommandError(
            f"--members: a panel has {panels.MIN_MEMBERS} to {panels.MAX_MEMBERS} judges, not {len(names)}"
        )
    found = {judge.name: judge for judge in JudgeConfig.objects.filter(name__in=names)}
    missing = [name for name in names if name not in found]
    if missing:
        raise CommandError(f"--members: no judge named {', '.join(repr(n) for n in missing)} (see add_judge)")
    return [found[name] for name in names]
