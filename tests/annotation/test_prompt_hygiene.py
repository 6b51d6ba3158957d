"""Prompt hygiene: duplicate groups tagged on a campaign's prompts, at import and by manage.py prompt_hygiene."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from annotation.models import Prompt
from annotation.prompt_hygiene import find_campaign_duplicates, tag_campaign_duplicates
from tests import factories

LONG = "Explain in detail how a hash table resolves collisions with open addressing and with chaining"


def _prompts(campaign: object, texts: list[str]) -> list[Prompt]:
    return [factories.PromptFactory.create(campaign=campaign, text=text) for text in texts]


def test_tagging_groups_duplicates_and_near_duplicates_and_deletes_nothing(researcher: User) -> None:
    campaign = factories.CampaignFactory.create(owner=researcher)
    hello, other, hello_again, long_one, long_two = _prompts(
        campaign, ["Hello, world!", "Something else entirely", "hello   WORLD", LONG, LONG + " please."]
    )
    report = tag_campaign_duplicates(campaign=campaign)
    assert (report.exact_groups, report.near_groups, report.prompts_in_groups) == (1, 1, 4)
    tags = {p.id: (p.duplicate_group, p.duplicate_kind) for p in Prompt.objects.filter(campaign=campaign)}
    assert tags == {
        hello.id: (hello.id, "exact"),
        hello_again.id: (hello.id, "exact"),
        long_one.id: (long_one.id, "near"),
        long_two.id: (long_one.id, "near"),
        other.id: (None, ""),
    }
    # A prompt edited out of its group loses its tag on the next run.
    Prompt.objects.filter(id=hello_again.id).update(text="A new question about tides")
    tag_campaign_duplicates(campaign=campaign)
    assert Prompt.objects.get(id=hello.id).duplicate_group is None
    assert Prompt.objects.filter(campaign=campaign).count() == 5


def test_find_campaign_duplicates_only_reads_and_stays_within_the_campaign(researcher: User) -> None:
    campaign = factories.CampaignFactory.create(owner=researcher)
    elsewhere = factories.CampaignFactory.create(owner=researcher)
    _prompts(campaign, ["Same text", "Different words here"])
    _prompts(elsewhere, ["same text!"])
    report = find_campaign_duplicates(campaign=campaign)
    assert report.prompts_in_groups == 0
    assert not Prompt.objects.filter(duplicate_group__isnull=False).exists()


def _run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_prompt_hygiene_command_prints_and_tags(researcher: User) -> None:
    campaign = factories.CampaignFactory.create(owner=researcher)
    first, _, _ = _prompts(campaign, ["What is 2 + 2?", "what is 2 + 2", "Name three rivers."])
    dry = json.loads(_run("prompt_hygiene", campaign.slug, "--json", "--dry-run"))
    assert (dry["exact_groups"], dry["near_groups"]) == (1, 0)
    assert not Prompt.objects.filter(duplicate_group__isnull=False).exists()
    text = _run("prompt_hygiene", campaign.slug)
    assert "2 prompts" in text
    assert Prompt.objects.filter(duplicate_group=first.id).count() == 2


def test_prompt_hygiene_command_refuses_a_bad_threshold_and_an_unknown_campaign(researcher: User) -> None:
    campaign = factories.CampaignFactory.create(owner=researcher)
    with pytest.raises(CommandError, match=r"between 0\.5 and 1"):
        _run("prompt_hygiene", campaign.slug, "--threshold", "0.1")
    with pytest.raises(CommandError, match="nope"):
        _run("prompt_hygiene", "nope")


def test_import_outputs_reports_and_tags_duplicate_prompts(researcher: User, tmp_path: Path) -> None:
    campaign = factories.CampaignFactory.create(owner=researcher)
    _prompts(campaign, ["Translate 'cat' into French."])
    rows = [
        {"prompt_id": "a", "prompt": "translate CAT into french", "model": "m1", "output": "chat"},
        {"prompt_id": "b", "prompt": LONG, "model": "m1", "output": "..."},
        {"prompt_id": "c", "prompt": LONG + "!", "model": "m1", "output": "..."},
        {"prompt_id": "d", "prompt": "Unrelated", "model": "m1", "output": "..."},
    ]
    path = tmp_path / "outputs.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in rows))
    preview = _run("import_outputs", campaign.slug, str(path), "--dry-run")
    assert "2 exact and 0 near groups (4 prompts" in preview
    assert not Prompt.objects.filter(duplicate_group__isnull=False).exists()
    done = _run("import_outputs", campaign.slug, str(path))
    assert "2 exact and 0 near groups (4 prompts, tagged, none deleted): (" in done
    assert "(b, c)" in done
    assert Prompt.objects.filter(campaign=campaign, duplicate_group__isnull=False).count() == 4


def test_prompt_hygiene_command_refuses_a_campaign_over_the_prompt_limit(
    researcher: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    campaign = factories.CampaignFactory.create(owner=researcher)
    _prompts(campaign, ["one", "two", "three"])
    monkeypatch.setattr("annotation.prompt_hygiene.MAX_PROMPTS", 2)
    with pytest.raises(CommandError, match="more than 2 prompts"):
        _run("prompt_hygiene", campaign.slug)
