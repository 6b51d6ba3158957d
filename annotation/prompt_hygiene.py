"""Prompt hygiene: find a campaign's duplicate and near-duplicate prompts and tag them (never delete them).

The statistics are ``scoring.near_duplicates`` (normalised equality, and 5-shingle Jaccard >= 0.8 found by
MinHash + LSH). A campaign's prompts are read as (id, external id, first ``TEXT_CHARS`` characters); each prompt of
a group gets ``Prompt.duplicate_group`` (the group's smallest prompt id) and ``duplicate_kind`` (``exact`` or
``near``), every other prompt of the campaign has them cleared. Imports report the groups their prompts fall in
(``import_duplicates``), the preview of a dry run included; ``manage.py prompt_hygiene SLUG`` and the results page
show a whole campaign.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Count
from django.db.models.functions import Left

from annotation.models import Campaign, Prompt
from scoring.near_duplicates import THRESHOLD, DuplicateGroup, find_duplicates

TEXT_CHARS = 2_000  # what is compared; held in memory for every prompt of the campaign
MAX_PROMPTS = 500_000
IMPORT_MAX_PROMPTS = 50_000  # about 4 s of CPU (bench/bench_hygiene.py: 79 us a prompt)
SHOWN_GROUPS = 50


@dataclass(frozen=True)
class HygieneReport:
    """A campaign's duplicate groups: counts, and the first ``SHOWN_GROUPS`` groups as (id, external id) lists."""

    campaign: str
    prompts: int
    threshold: float
    exact_groups: int
    near_groups: int
    prompts_in_groups: int
    groups: list[dict[str, Any]] = field(default_factory=list)

    @property
    def redundant_prompts(self) -> int:
        """Return the prompts beyond the first of each group."""
        return self.prompts_in_groups - self.exact_groups - self.near_groups

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "campaign": self.campaign,
            "prompts": self.prompts,
            "threshold": self.threshold,
            "exact_groups": self.exact_groups,
            "near_groups": self.near_groups,
            "prompts_in_groups": self.prompts_in_groups,
            "redundant_prompts": self.redundant_prompts,
            "groups": self.groups,
        }

    def describe(self) -> str:
        """Return one human line."""
        return (
            f"{self.campaign}: {self.prompts} prompts; {self.exact_groups} groups of duplicates and "
            f"{self.near_groups} of near-duplicates (Jaccard >= {self.threshold:g}) hold {self.prompts_in_groups} "
            f"prompts ({self.redundant_prompts} beyond the first of each group)"
        )


def _campaign_prompts(campaign: Campaign) -> tuple[list[int], list[str], list[str]]:
    """Return the campaign's prompt ids, external ids and texts (cut at TEXT_CHARS), in id order."""
    rows = list(
        Prompt.objects.filter(campaign=campaign)
        .order_by("id")
        .values_list("id", "external_id", Left("text", TEXT_CHARS))[: MAX_PROMPTS + 1]
    )
    if len(rows) > MAX_PROMPTS:
        raise ValueError(f"campaign {campaign.slug} has more than {MAX_PROMPTS} prompts: too many to check at once")
    return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]


def _report(
    campaign: Campaign, external_ids: list[str], groups: list[DuplicateGroup], ids: list[int] | None, threshold: float
) -> HygieneReport:
    """Summarise groups of indices into ``external_ids`` (and ``ids``, None for prompts not stored yet)."""
    shown = []
    for group in groups[:SHOWN_GROUPS]:
        members = [
            {"prompt_id": None if ids is None or k >= len(ids) else ids[k], "external_id": external_ids[k]}
            for k in group.members
        ]
        shown.append({"kind": group.kind, "size": len(group.members), "prompts": members})
    return HygieneReport(
        campaign=campaign.slug,
        prompts=len(external_ids),
        threshold=threshold,
        exact_groups=sum(group.kind == "exact" for group in groups),
        near_groups=sum(group.kind == "near" for group in groups),
        prompts_in_groups=sum(len(group.members) for group in groups),
        groups=shown,
    )


def find_campaign_duplicates(*, campaign: Campaign, threshold: float = THRESHOLD) -> HygieneReport:
    """Return the campaign's duplicate groups without writing anything."""
    ids, external_ids, texts = _campaign_prompts(campaign)
    return _report(campaign, external_ids, find_duplicates(texts, threshold=threshold), ids, threshold)


@transaction.atomic
def tag_campaign_duplicates(*, campaign: Campaign, threshold: float = THRESHOLD) -> HygieneReport:
    """Find the campaign's duplicate groups and store them on its prompts (clearing stale tags); never delete."""
    ids, external_ids, texts = _campaign_prompts(campaign)
    groups = find_duplicates(texts, threshold=threshold)
    tagged: list[Prompt] = []
    for group in groups:
        head = ids[group.members[0]]
        tagged.extend(Prompt(id=ids[k], duplicate_group=head, duplicate_kind=group.kind) for k in group.members)
    tagged_ids = [prompt.id for prompt in tagged]
    Prompt.objects.filter(campaign=campaign, duplicate_group__isnull=False).exclude(id__in=tagged_ids).update(
        duplicate_group=None, duplicate_kind=""
    )
    Prompt.objects.bulk_update(tagged, ["duplicate_group", "duplicate_kind"], batch_size=5_000)
    return _report(campaign, external_ids, groups, ids, threshold)


def file_prompt_texts(parsed: Any) -> dict[str, str] | None:
    """Return a parsed import file's prompt texts by external id, or None for a file kind without prompts."""
    prompts = getattr(parsed, "prompts", None)
    if not isinstance(prompts, Mapping):
        return None
    texts = {}
    for external_id, row in prompts.items():
        text = getattr(row, "text", None)
        if not isinstance(text, str):
            return None
        texts[str(external_id)] = text[:TEXT_CHARS]
    return texts


def import_duplicates(*, campaign: Campaign, parsed: Any, dry_run: bool) -> dict[str, Any]:
    """Return (and after a real import, store) the duplicate groups that hold the file's prompts.

    The preview of a dry run checks the file's new prompts against the campaign's stored ones without writing.
    Campaigns over IMPORT_MAX_PROMPTS prompts are left to ``manage.py prompt_hygiene`` (the report says so).
    """
    file_texts = file_prompt_texts(parsed)
    stored = Prompt.objects.filter(campaign=campaign).count()
    if stored + len(file_texts or ()) > IMPORT_MAX_PROMPTS:
        return {"checked": False, "reason": f"over {IMPORT_MAX_PROMPTS} prompts: run manage.py prompt_hygiene"}
    if not dry_run:
        report = tag_campaign_duplicates(campaign=campaign)
        names = set(file_texts or ())
    else:
        if file_texts is None:
            return {"checked": False, "reason": "this file kind is checked once imported"}
        ids, external_ids, texts = _campaign_prompts(campaign)
        known = set(external_ids)
        new = [(name, text) for name, text in file_texts.items() if name not in known]
        external_ids += [name for name, _ in new]
        texts += [text for _, text in new]
        report = _report(campaign, external_ids, find_duplicates(texts), ids, THRESHOLD)
        names = set(file_texts)
    touching = [group for group in report.groups if names and any(p["external_id"] in names for p in group["prompts"])]
    return {
        "checked": True,
        "exact_groups": report.exact_groups,
        "near_groups": report.near_groups,
        "prompts_in_groups": report.prompts_in_groups,
        "groups_with_file_prompts": touching[:10],
    }


def describe_import_duplicates(duplicates: Mapping[str, Any]) -> str:
    """Return the import summary's clause about duplicates ('' when there are none or nothing was checked)."""
    if not duplicates.get("checked") or not duplicates.get("prompts_in_groups"):
        return ""
    shown = [
        "("
        + ", ".join(str(p["external_id"]) for p in group["prompts"][:4])
        + (", ..." if group["size"] > 4 else "")
        + ")"
        for group in duplicates.get("groups_with_file_prompts", [])[:3]
    ]
    which = f": {' '.join(shown)}" if shown else ""
    return (
        f"; duplicate prompts in the campaign: {duplicates['exact_groups']} exact and {duplicates['near_groups']} "
        f"near groups ({duplicates['prompts_in_groups']} prompts, tagged, none deleted){which}"
    )


def stored_duplicate_summary(campaign: Campaign) -> dict[str, int]:
    """Return the tagged duplicate prompts of a campaign per kind, as stored by the last tagging (one query)."""
    summary = {"exact": 0, "near": 0, "exact_groups": 0, "near_groups": 0}
    rows = (
        Prompt.objects.filter(campaign=campaign, duplicate_group__isnull=False)
        .values_list("duplicate_kind")
        .annotate(prompts=Count("id"), groups=Count("duplicate_group", distinct=True))
    )
    for kind, prompts, groups in rows:
        if kind in ("exact", "near"):
            summary[kind], summary[f"{kind}_groups"] = prompts, groups
    return summary
