"""What `manage.py judge` says when it starts a run: verdicts, and the comparisons and orders they stand for."""

from __future__ import annotations

from io import StringIO

from django.core.management import call_command

from annotation.models import Campaign
from judging import services


def _start(campaign: Campaign, *args: str) -> str:
    out = StringIO()
    call_command("judge", campaign.slug, "--judge", "local", *args, stdout=out)
    return out.getvalue()


def test_starting_a_run_says_its_verdicts_are_the_comparisons_in_both_orders(campaign: Campaign) -> None:
    services.save_judge(name="local", base_url="http://127.0.0.1:9/v1", model="local-judge", template="arena_hard")

    out = _start(campaign, "--limit", "5")

    assert "10 verdicts (5 comparisons in both orders)" in out


def test_starting_a_one_order_run_says_one_order_each(campaign: Campaign) -> None:
    services.save_judge(name="local", base_url="http://127.0.0.1:9/v1", model="local-judge", template="arena_hard")

    out = _start(campaign, "--limit", "1", "--orders", "one")

    assert "1 verdict (1 comparison, one order each)" in out
