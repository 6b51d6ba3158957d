"""Prompts and outputs keep their rendered HTML: written on import and admin save, filled on first show, never stale."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from annotation.importers import import_battles, import_outputs, parse_battles, parse_outputs
from annotation.models import Campaign, Output, Prompt
from annotation.rendering import render_markdown
from annotation.stored_html import fill_missing_html, store_html
from tests import factories

XSS = '<img src=x onerror="window.__pwned = 1"> **bold**'


def _next(client: APIClient, campaign: Campaign) -> Any:
    response = client.post(f"/api/v1/campaigns/{campaign.pk}/next/", {}, format="json")
    assert response.status_code == 200
    return response.json()


def _stored(model: type[Prompt] | type[Output]) -> dict[str, str | None]:
    return dict(model.objects.values_list("text", "html"))


def test_import_outputs_stores_each_text_rendered(campaign: Campaign) -> None:
    rows = [
        {"prompt_id": "new1", "prompt": "Explain `x`", "model": "m1", "output": XSS},
        {"prompt_id": "new1", "prompt": "Explain `x`", "model": "m2", "output": "```python\nprint(1)\n```"},
    ]
    parsed = parse_outputs("o.jsonl", "\n".join(json.dumps(r) for r in rows).encode())

    import_outputs(campaign=campaign, parsed=parsed)

    prompt = Prompt.objects.get(external_id="new1")
    assert prompt.html == render_markdown("Explain `x`") == "<p>Explain <code>x</code></p>"
    outputs = {o.model_name: o.html for o in prompt.outputs.all()}
    assert outputs["m1"] == render_markdown(XSS)
    assert "<img" not in str(outputs["m1"])
    assert "<strong>bold</strong>" in str(outputs["m1"])
    assert '<div class="codehilite">' in str(outputs["m2"])


@pytest.mark.django_db
def test_import_battles_stores_each_text_rendered(researcher: User) -> None:
    conversation = [{"role": "user", "content": "What is *2+2*?"}, {"role": "assistant", "content": "**4**"}]
    battle = {"model_a": "m1", "model_b": "m2", "winner": "model_a", "conversation_a": conversation}
    import_battles(campaign_slug="arena", plan=parse_battles("a.jsonl", json.dumps(battle).encode()), owner=researcher)

    assert _stored(Prompt) == {"What is *2+2*?": "<p>What is <em>2+2</em>?</p>"}
    assert _stored(Output)["**4**"] == "<p><strong>4</strong></p>"


def test_changing_the_text_alone_clears_the_stored_html(campaign: Campaign) -> None:
    fill_missing_html()
    output = Output.objects.filter(prompt__campaign=campaign).first()
    assert output is not None
    assert output.html

    output.text = "changed **text**"
    output.save()  # an edit that does not know about the HTML (a shell, a data fix)
    assert Output.objects.get(pk=output.pk).html is None

    Prompt.objects.filter(pk=output.prompt_id).update(text="changed by SQL")
    assert Prompt.objects.get(pk=output.prompt_id).html is None

    Output.objects.filter(pk=output.pk).update(text="new", html="<p>new</p>")  # both at once: kept
    assert Output.objects.get(pk=output.pk).html == "<p>new</p>"


def test_next_shows_the_stored_html_without_rendering(campaign: Campaign, annotator: User, api_client_for: Any) -> None:
    fill_missing_html()
    Output.objects.update(html="<p>stored output</p>")  # the HTML column alone: the trigger keeps it
    Prompt.objects.update(html="<p>stored prompt</p>")

    shown = _next(api_client_for(annotator), campaign)

    assert shown["prompt"]["html"] == "<p>stored prompt</p>"
    assert shown["left"]["html"] == shown["right"]["html"] == "<p>stored output</p>"


def test_next_renders_and_stores_missing_html_once(
    campaign: Campaign, annotator: User, other_annotator: User, api_client_for: Any
) -> None:
    Output.objects.update(text=XSS)
    assert Output.objects.filter(html__isnull=False).count() == 0

    shown = _next(api_client_for(annotator), campaign)

    assert shown["left"]["html"] == shown["right"]["html"] == render_markdown(XSS)
    assert "<img" not in shown["left"]["html"]
    assert shown["prompt"]["html"] == render_markdown(shown["prompt"]["text"])
    assert Output.objects.filter(html=render_markdown(XSS)).count() == 2
    assert Prompt.objects.filter(html__isnull=False).count() == 1


def test_next_after_a_text_change_shows_the_new_text_rendered(
    campaign: Campaign, annotator: User, api_client_for: Any
) -> None:
    fill_missing_html()
    client = api_client_for(annotator)
    first = _next(client, campaign)
    Output.objects.update(text="edited *answer*")
    Prompt.objects.update(text="edited prompt")

    again = _next(client, campaign)  # the same lease, renewed

    assert again["assignment"] == first["assignment"]
    assert again["left"] == again["right"] == {"text": "edited *answer*", "html": "<p>edited <em>answer</em></p>"}
    assert again["prompt"] == {"text": "edited prompt", "html": "<p>edited prompt</p>"}


def test_a_store_for_a_text_that_changed_meanwhile_writes_nothing(campaign: Campaign) -> None:
    output = Output.objects.filter(prompt__campaign=campaign).first()
    assert output is not None
    Output.objects.filter(pk=output.pk).update(text="newer")

    store_html("annotation_output", [(output.pk, output.text, render_markdown(output.text))])

    assert Output.objects.get(pk=output.pk).html is None


def test_fill_missing_html_renders_in_batches_and_rerenders_on_request(campaign: Campaign) -> None:
    total = Prompt.objects.count() + Output.objects.count()

    with CaptureQueriesContext(connection) as queries:
        assert fill_missing_html(batch=5) == total
    # per table: one read and one write per batch of 5, and one read that finds nothing more
    prompts, outputs = Prompt.objects.count(), Output.objects.count()
    assert len(queries) == 2 * (-(-prompts // 5) + -(-outputs // 5)) + 2
    assert all(html == render_markdown(text) for text, html in {**_stored(Prompt), **_stored(Output)}.items())

    assert fill_missing_html() == 0
    Output.objects.update(html="<p>from an older renderer</p>")
    assert fill_missing_html(rerender=True) == total
    assert all(html == render_markdown(text) for text, html in _stored(Output).items())


def test_the_render_html_command_fills_what_is_missing(campaign: Campaign) -> None:
    call_command("render_html")

    assert not Output.objects.filter(html__isnull=True).exists()
    assert not Prompt.objects.filter(html__isnull=True).exists()


def test_saving_a_prompt_or_output_in_the_admin_stores_its_html(client: Client, researcher: User) -> None:
    campaign = factories.CampaignFactory.create(owner=researcher)
    prompt = Prompt.objects.create(campaign=campaign, external_id="p", text="old")
    output = Output.objects.create(prompt=prompt, model_name="m", text="old")
    client.force_login(researcher)

    response = client.post(
        f"/admin/annotation/output/{output.pk}/change/",
        {"prompt": prompt.pk, "model_name": "m", "text": "*new* <script>x()</script>", "metadata": "{}"},
    )

    assert response.status_code == 302
    output.refresh_from_db()
    assert output.html == render_markdown("*new* <script>x()</script>")
    assert "<script" not in output.html
