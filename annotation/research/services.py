"""Writes of the research API: the admin's campaign form, the campaign_setup services and the importers.

Every check is the admin's own (CampaignAdminForm and its usernames fields, the groups a researcher may choose,
the importers' parsers and limits), so a campaign is held to one set of rules whichever way it is set up.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group, User
from django.db import transaction
from django.forms.models import model_to_dict

from annotation import campaign_setup
from annotation.admin_scoping import assignable_groups, is_superuser
from annotation.forms import CampaignAdminForm, UsernamesField
from annotation.importers import jobs as import_jobs
from annotation.importers import staging
from annotation.importers.reading import Source
from annotation.importers.summary import ImportSummary
from annotation.models import Campaign, ImportJob, Output
from evalplatform.exceptions import DomainError

AnyUser = AbstractBaseUser | AnonymousUser
# The campaign fields the API writes: the admin form's, with status left to its own route.
CAMPAIGN_FIELDS = list(CampaignAdminForm.Meta.fields)
USER_LIST_FIELDS = ("annotators", "researchers")
_SEPARATOR = re.compile(r"[\s,]")  # what UsernamesField splits on


class FieldErrors(DomainError):
    """Several fields refused at once (the admin form's errors), answered as DRF answers a serializer's."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{name}: {' '.join(messages)}" for name, messages in errors.items()))


def _form_data(campaign: Campaign) -> dict[str, Any]:
    """Return the campaign as the admin form would post it (users as usernames, the group as its id)."""
    data: dict[str, Any] = model_to_dict(campaign, fields=[f for f in CAMPAIGN_FIELDS if f not in USER_LIST_FIELDS])
    for name in USER_LIST_FIELDS:
        users = getattr(campaign, name).order_by("username") if campaign.pk else []
        data[name] = ", ".join(user.username for user in users)
    return {key: "" if value is None else value for key, value in data.items()}


def _group_id(user: AnyUser, name: str | None, current: Group | None, *, field: str) -> int | None:
    """Return the id of the group named `name` among those the user may choose, or raise on `field`."""
    if name is None or name == "":
        return None
    if current is not None and current.name == name:
        return current.pk
    group = assignable_groups(user).filter(name=name).first()
    if group is None:
        raise DomainError(f"No group named {name[:150]!r} that you may choose.", field=field)
    return group.pk


def _usernames(names: list[str], *, field: str) -> str:
    """Return a list of usernames as the form's usernames field reads them; a name it would split is refused."""
    split = [name for name in names if _SEPARATOR.search(name)]
    if split:
        raise DomainError(f"Not a username: {', '.join(repr(name[:60]) for name in split[:10])}.", field=field)
    return ", ".join(names)


def _owner_id(user: AnyUser, username: str) -> int:
    if not is_superuser(user):
        raise DomainError("Only a superuser may set a campaign's owner.", field="owner")
    owner = User.objects.filter(username=username, is_active=True).first()
    if owner is None:
        raise DomainError(f"No active account named {username[:150]!r}.", field="owner")
    return owner.pk


@transaction.atomic
def save_campaign(*, user: User, campaign: Campaign | None, changes: dict[str, Any]) -> Campaign:
    """Create a campaign owned by `user` (campaign None) or change the given fields, as the admin's form would.

    `changes` holds the API's values: usernames as lists, the annotator group and the owner by name. Raise
    FieldErrors (or DomainError on one field) with the form's messages; nothing is written then.
    """
    data = _form_data(campaign) if campaign is not None else {**_form_data(Campaign()), "owner": user.pk}
    for name, value in changes.items():
        if name in USER_LIST_FIELDS:
            data[name] = _usernames(value, field=name)
        elif name == "annotator_group":
            current = campaign.annotator_group if campaign else None
            data[name] = _group_id(user, value, current, field="annotator_group") or ""
        elif name == "owner":
            data[name] = _owner_id(user, value)
        else:
            data[name] = "" if value is None else value
    form = CampaignAdminForm(data=data, instance=campaign)
    if not form.is_valid():
        errors = form.errors.get_json_data()
        raise FieldErrors(
            {("non_field_errors" if k == "__all__" else k): [e["message"] for e in v] for k, v in errors.items()}
        )
    return form.save()


def set_annotators(*, user: AnyUser, campaign: Campaign, usernames: list[str], group: str | None) -> None:
    """Let exactly these accounts and this group (one the user may choose, or none) annotate the campaign."""
    try:
        users = UsernamesField(required=False).clean(_usernames(usernames, field="users"))
    except forms.ValidationError as error:  # its messages name only what was typed
        raise DomainError(" ".join(error.messages), field="users") from error
    group_id = _group_id(user, group, campaign.annotator_group, field="group")
    chosen = Group.objects.get(pk=group_id) if group_id is not None else None
    campaign_setup.set_campaign_annotators(campaign=campaign, group=chosen, users=users)


def generate_comparisons(
    *, campaign: Campaign, strategy: str | None, k: int | None, baseline_model: str | None, seed: int | None
) -> campaign_setup.GenerationReport:
    """Generate comparisons as the admin's form does: a baseline model must be one of the campaign's models."""
    if baseline_model and not Output.objects.filter(prompt__campaign=campaign, model_name=baseline_model).exists():
        raise DomainError(
            f"No model named {baseline_model[:200]!r} among the campaign's outputs.", field="baseline_model"
        )
    return campaign_setup.generate_comparisons(
        campaign=campaign, strategy=strategy, k=k, baseline_model=baseline_model, seed=seed
    )


@dataclass(frozen=True)
class UploadOutcome:
    """An import done in the request (its summary) or started in the background (its job)."""

    summary: ImportSummary | None = None
    job: ImportJob | None = None


def records_file(records: Iterable[Any]) -> bytes:
    """Return JSON records as a JSON Lines file: record N is line N, each escaped onto its own line."""
    return b"".join(json.dumps(record, ensure_ascii=True).encode() + b"\n" for record in records)


def import_upload(
    *, user: User, campaign: Campaign, kind: str, name: str, upload: Any, size: int, dry_run: bool
) -> UploadOutcome:
    """Import (or check, for a dry run) an uploaded file as the admin does: in the request up to
    IMPORT_LIMITS["inline_max_bytes"], else by a worker through an ImportJob.

    `upload` is the file's bytes or an uploaded file (read from its start). Raise ImportRefused with the file's
    line errors, or DomainError, when the import is refused in the request; nothing is written then.
    """
    if import_jobs.runs_inline(size):
        source: Source = upload if isinstance(upload, bytes) else upload.file
        summary = import_jobs.run_import(kind=kind, campaign=campaign, name=name, source=source, dry_run=dry_run)
        return UploadOutcome(summary=summary)
    token = staging.stage_upload(name=name, upload=upload, campaign_id=campaign.pk, kind=kind, user_id=user.pk)
    staged = staging.load_staged(token, campaign_id=campaign.pk, kind=kind, user_id=user.pk)
    job = import_jobs.start_import_job(campaign=campaign, user=user, staged=staged, token=token, dry_run=dry_run)
    return UploadOutcome(job=job)
