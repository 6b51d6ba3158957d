"""manage.py tag_prompts says how many prompts it checked when most already had their tags (imports tag them)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from tests import factories


@pytest.mark.django_db
def test_tag_prompts_on_prompts_tagged_at_import_says_they_already_had_their_tags(researcher: User) -> None:
    campaign = factories.CampaignFactory.create(owner=researcher)
    factories.PromptFactory.create(campaign=campaign, external_id="a", text="What is 17 * 23?", tags=[])
    factories.PromptFactory.create(campaign=campaign, external_id="b", text="Solve 3x + 5 = 20.", tags=["auto:math"])
    out = StringIO()

    call_command("tag_prompts", "--campaign", campaign.slug, stdout=out)
    call_command("tag_prompts", "--campaign", campaign.slug, stdout=out)

    assert out.getvalue().splitlines() == [
        "tagged 1 prompts; the other 1 already had their tags",
        "tagged 0 prompts; the other 2 already had their tags",
    ]
