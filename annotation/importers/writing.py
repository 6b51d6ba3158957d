"""Shared write helpers: batched inserts and dry runs that roll everything back."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import TypeVar

from django.db import connection, transaction

from annotation.importers.summary import ImportSummary
from annotation.models import Campaign
from evalplatform.exceptions import DomainError

BATCH_SIZE = 1000
T = TypeVar("T")


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Yield lists of up to `size` items (itertools.batched arrives in Python 3.12)."""
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


class _DryRunRollback(Exception):
    def __init__(self, summary: ImportSummary) -> None:
        self.summary = summary


def run_atomically(write: Callable[[], ImportSummary], *, dry_run: bool) -> ImportSummary:
    """Run `write` in one transaction; a dry run checks every constraint, then rolls back."""
    try:
        with transaction.atomic():
            summary = write()
            if dry_run:
                # Deferred constraints (composite foreign keys) fire at commit; check them before rolling back.
                with connection.cursor() as cursor:
                    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                raise _DryRunRollback(summary)
    except _DryRunRollback as rollback:
        rollback.summary.dry_run = True
        return rollback.summary
    return summary


def check_campaign_accepts_imports(campaign: Campaign) -> None:
    """Refuse imports into a closed campaign."""
    if campaign.status == Campaign.Status.CLOSED:
        raise DomainError(f"campaign {campaign.slug} is closed: nothing can be imported into it")
