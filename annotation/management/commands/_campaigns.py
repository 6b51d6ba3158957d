"""Shared plumbing for the campaign-setup commands: find the campaign, turn form and domain errors into CommandError."""

from __future__ import annotations

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS
from django.core.management.base import CommandError

from annotation.models import Campaign


def get_campaign(slug: str) -> Campaign:
    """Return the campaign with this slug, or fail naming it."""
    campaign = Campaign.objects.filter(slug=slug).first()
    if campaign is None:
        raise CommandError(f"no campaign {slug!r}")
    return campaign


def option(field: str) -> str:
    """Return the command-line option of a form field."""
    return "--" + field.replace("_", "-")


def form_error(form: forms.BaseForm, names: dict[str, str] | None = None) -> CommandError:
    """Return a CommandError with every error of an invalid form, each after the option it is about."""
    lines = []
    for field, errors in form.errors.items():
        label = (names or {}).get(field) or (option(field) if field != NON_FIELD_ERRORS else "")
        lines += [f"{label}: {error}" if label else str(error) for error in errors]
    return CommandError("\n".join(lines))
