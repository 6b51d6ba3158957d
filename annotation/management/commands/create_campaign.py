"""manage.py create_campaign SLUG [--name NAME] [--owner USERNAME] [--<campaign field> VALUE ...]: a draft campaign,
checked by the admin's own campaign form."""

from __future__ import annotations

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from annotation.forms import CampaignAdminForm
from annotation.management.commands._campaigns import form_error, option
from annotation.management.commands._importing import resolve_owner
from annotation.models import Campaign

# The admin form's fields that are given here by name rather than as the form takes them (ids, usernames list).
SPECIAL = {"name", "slug", "owner", "annotator_group", "instructions", "require_rationale"}


class Command(BaseCommand):
    help = (
        "Create a draft campaign with the admin's validation. Unset fields take the admin's defaults; "
        "--annotators and --researchers are usernames (commas or spaces between them)."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--name", help="Display name (default: the slug).")
        parser.add_argument("--owner", help="Username owning the campaign (default: the first superuser).")
        instructions = parser.add_mutually_exclusive_group()
        instructions.add_argument("--instructions", help="Markdown shown to annotators.")
        instructions.add_argument("--instructions-file", help="Read the instructions (markdown, UTF-8) from a file.")
        parser.add_argument("--require-rationale", action="store_true", help="Annotators must explain each choice.")
        parser.add_argument("--annotator-group", help="Name of the group whose members may annotate.")
        for name in CampaignAdminForm.Meta.fields:
            if name not in SPECIAL:
                parser.add_argument(option(name), dest=name, metavar="VALUE", help=field_help(name))

    def handle(self, *args: Any, **options: Any) -> None:
        owner = resolve_owner(options["owner"])
        if owner is None:
            raise CommandError("--owner: give the owner's username (there is no superuser to default to)")
        data = defaults()
        data |= {name: options[name] for name in data if name not in SPECIAL and options[name] is not None}
        data |= {
            "slug": options["slug"],
            "name": options["name"] or options["slug"],
            "owner": owner.pk,
            "instructions": instructions(options),
            "require_rationale": options["require_rationale"],
            "annotator_group": group_id(options["annotator_group"]),
        }
        form = CampaignAdminForm(data=data)
        if not form.is_valid():
            raise form_error(form)
        with transaction.atomic():
            campaign = form.save()
        self.stdout.write(
            self.style.SUCCESS(f"created campaign {campaign.slug} ({campaign.status}), owned by {owner.username}")
        )


def defaults() -> dict[str, Any]:
    """Return the form's data for a campaign left at the model's defaults (an empty value where there is none)."""
    data: dict[str, Any] = {}
    for name in CampaignAdminForm.Meta.fields:
        field = Campaign._meta.get_field(name)
        data[name] = field.get_default() if field.has_default() else ""  # type: ignore[union-attr]
    return data


def field_help(name: str) -> str:
    """Return the option's help: the admin form's help text, the choices and the default."""
    field = Campaign._meta.get_field(name)
    text = str(CampaignAdminForm.base_fields[name].help_text or "")
    choices = [str(value) for value, _ in getattr(field, "choices", None) or []]
    if choices:
        text += f" One of {', '.join(choices)}."
    if field.has_default():  # type: ignore[union-attr]
        text += f" Default: {field.get_default()}."  # type: ignore[union-attr]
    return text.strip()


def instructions(options: dict[str, Any]) -> str:
    """Return the instructions given inline or in a file."""
    path = options["instructions_file"]
    if path is None:
        return str(options["instructions"] or "")
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"--instructions-file: cannot read {path}: {exc}") from exc


def group_id(name: str | None) -> int | str:
    """Return the id of the named group ("" for none), or fail naming it."""
    if not name:
        return ""
    group = Group.objects.filter(name=name).first()
    if group is None:
        raise CommandError(f"--annotator-group: no group named {name!r}")
    return group.pk
