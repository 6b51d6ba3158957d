"""manage.py set_annotators SLUG [--users "NAME NAME ..."] [--group NAME | --no-group]: choose who may annotate,
with the admin form's username checks; the part not given is kept."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django import forms
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError

from annotation import campaign_setup
from annotation.forms import UsernamesField
from annotation.management.commands._campaigns import get_campaign


class Command(BaseCommand):
    help = (
        "Set who may annotate a campaign: the accounts named by --users (replacing the list; '' empties it) and "
        "the members of --group (--no-group: none). What is not given is kept."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--users", help="Usernames, commas or spaces between them (as in the admin form).")
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--group", help="Name of the group whose members may annotate.")
        group.add_argument("--no-group", action="store_true", help="No annotator group.")

    def handle(self, *args: Any, **options: Any) -> None:
        campaign = get_campaign(options["slug"])
        if options["users"] is None and options["group"] is None and not options["no_group"]:
            raise CommandError("give --users, --group or --no-group")
        users = list(campaign.annotators.all()) if options["users"] is None else usernames(options["users"])
        group = campaign.annotator_group
        if options["group"] is not None or options["no_group"]:
            group = named_group(options["group"])
        campaign_setup.set_campaign_annotators(campaign=campaign, group=group, users=users)
        names = ", ".join(sorted(user.username for user in users)) or "none"
        self.stdout.write(
            self.style.SUCCESS(f"{campaign.slug}: annotators {names}; group {group.name if group else 'none'}")
        )


def usernames(text: str) -> list[Any]:
    """Return the active accounts named, or fail with the admin form's message."""
    try:
        return UsernamesField(required=False).clean(text)
    except forms.ValidationError as error:
        raise CommandError("--users: " + " ".join(error.messages)) from error


def named_group(name: str | None) -> Group | None:
    """Return the named group (None for none), or fail naming it."""
    if name is None:
        return None
    group = Group.objects.filter(name=name).first()
    if group is None:
        raise CommandError(f"--group: no group named {name!r}")
    return group
