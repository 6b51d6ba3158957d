"""Shared plumbing for the import commands: read the file, run the service, print the outcome."""

from __future__ import annotations

from argparse import ArgumentParser
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError

from annotation.importers import ImportRefused, ImportSummary
from evalplatform.exceptions import DomainError


def read_file(path: str) -> Path:
    """Return the file's path once it is known to be readable (the importers read it line by line), or fail."""
    try:
        with Path(path).open("rb") as stream:
            stream.read(1)
    except OSError as exc:
        raise CommandError(f"{path}: cannot read: {exc.strerror}") from exc
    return Path(path)


def resolve_owner(username: str | None) -> User | None:
    """Return the named user, else the first superuser (None when there is none)."""
    if username:
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"--owner: no user named {username!r}")
        return user
    return User.objects.filter(is_superuser=True).order_by("id").first()


def run_import(command: BaseCommand, work: Callable[[], ImportSummary]) -> None:
    """Run an import and print its summary; a refused file fails the command with every line error."""
    try:
        summary = work()
    except ImportRefused as refused:
        raise CommandError(refused.render()) from refused
    except DomainError as error:
        raise CommandError(error.message) from error
    if summary.campaign_created:
        command.stdout.write("created the campaign")
    command.stdout.write(command.style.SUCCESS(summary.describe()))


class RatingsImportCommand(BaseCommand):
    """An import of rated pairs into a campaign that is created when missing: parse the file, then write it."""

    parse: Callable[[str, Path], Any]
    write_import: Callable[..., ImportSummary]

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("file")
        parser.add_argument("--campaign", required=True, help="slug; created when missing")
        parser.add_argument("--owner", help="username owning a new campaign (default: the first superuser)")
        parser.add_argument("--dry-run", action="store_true", help="validate and count, then write nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        data = read_file(options["file"])
        owner = resolve_owner(options["owner"])
        run_import(
            self,
            lambda: self.write_import(
                campaign_slug=options["campaign"],
                plan=self.parse(options["file"], data),
                owner=owner,
                dry_run=options["dry_run"],
            ),
        )
