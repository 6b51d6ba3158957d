"""Campaign setup in the admin, through the Django test client, as researchers and annotators."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from annotation import selectors, services
from annotation.models import Campaign, Comparison, Output, Prompt, Rater, Rating
from tests import factories

pytestmark = pytest.mark.django_db


PASSWORD = "correct horse battery staple"
OUTPUTS = (
    b'{"prompt_id": "p1", "prompt": "Hi?", "model": "m1", "output": "Hello"}\n'
    b'{"prompt_id": "p1", "prompt": "Hi?", "model": "m2", "output": "Hey"}\n'
    b'{"prompt_id": "p2", "prompt": "Bye?", "model": "m1", "output": "Bye"}\n'
)


@pytest.fixture
def rita(client: Client, researcher: User) -> Client:
    client.force_login(researcher)
    return client


@pytest.fixture
def draft(researcher: User) -> Campaign:
    return factories.CampaignFactory.create(owner=researcher, slug="draft")


def _url(name: str, *args: object) -> str:
    return reverse(f"admin:annotation_campaign_{name}", args=args)


def test_a_researcher_logs_into_the_admin(client: Client, researcher: User) -> None:
    response = client.post(reverse("admin:login"), {"username": "rita", "password": PASSWORD, "next": "/admin/"})

    assert response.status_code == 302
    assert client.get("/admin/annotation/campaign/").status_code == 200


def test_an_annotator_is_refused_by_the_admin_login_and_gets_403_once_signed_in(
    client: Client, annotator: User
) -> None:
    response = client.post(reverse("admin:login"), {"username": "alice", "password": PASSWORD, "next": "/admin/"})
    assert response.status_code == 200
    assert b"staff account" in response.content

    client.force_login(annotator)
    assert client.get("/admin/").status_code == 403
    assert client.get("/admin/annotation/campaign/").status_code == 403


def test_the_campaign_list_shows_counts_in_a_fixed_number_of_queries(rita: Client, campaign: Campaign) -> None:
    def list_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            response = rita.get(_url("changelist"))
        assert response.status_code == 200
        return len(queries)

    one = list_queries()
    for _ in range(3):
        factories.populate_campaign(
            factories.CampaignFactory.create(owner=campaign.owner), prompts=2, models=["a", "b"]
        )
    response = rita.get(_url("changelist"))

    assert list_queries() == one
    counts = {c.slug: (c.prompt_count, c.model_count, c.comparison_count) for c in response.context["cl"].result_list}
    assert counts[campaign.slug] == (4, 3, 12)
    assert b'<td class="field-prompt_count">4</td>' in response.content


def test_a_researcher_sees_only_the_campaigns_they_own_or_research(rita: Client, draft: Campaign) -> None:
    factories.CampaignFactory.create(name="Someone else's")

    content = rita.get(_url("changelist")).content.decode()

    assert draft.name in content
    assert "Someone else&#x27;s" not in content


def test_a_new_campaign_is_owned_by_the_researcher_who_creates_it(rita: Client, researcher: User) -> None:
    form = {
        "name": "Fresh",
        "slug": "fresh",
        "instructions": "",
        "label_scheme": "four_way",
        "strength_levels": 0,
        "ratings_per_comparison": 3,
        "pairing_strategy": "all_pairs",
        "lease_seconds": 600,
        "gold_rate": 0.1,
        "gold_min_answered": 5,
        "gold_min_accuracy": 0.6,
    }

    response = rita.post(_url("add"), form)

    assert response.status_code == 302, response.content
    assert Campaign.objects.get(slug="fresh").owner == researcher


def test_import_outputs_previews_a_summary_then_saves_on_confirm(rita: Client, draft: Campaign) -> None:
    upload = SimpleUploadedFile("outputs.jsonl", OUTPUTS)

    preview = rita.post(_url("import", draft.pk, "outputs"), {"file": upload})

    assert preview.status_code == 200
    assert b"Ready to import outputs.jsonl" in preview.content
    assert re.search(
        rb"<th>Prompts</th><td>2</td>.*<th>Models</th><td>2</td>.*<th>Outputs</th><td>3</td>", preview.content, re.S
    )
    assert not Prompt.objects.filter(campaign=draft).exists()

    token = preview.context["confirm"].initial["token"]
    done = rita.post(_url("import", draft.pk, "outputs"), {"token": token})

    assert done.status_code == 302
    assert Output.objects.filter(prompt__campaign=draft).count() == 3
    assert rita.post(_url("import", draft.pk, "outputs"), {"token": token}).status_code == 200  # not twice
    assert Output.objects.filter(prompt__campaign=draft).count() == 3


def test_import_outputs_preview_lists_line_errors_and_saves_nothing(rita: Client, draft: Campaign) -> None:
    bad = OUTPUTS + b'{"prompt_id": "p3", "prompt": "Q", "model": "m1"}\n{"prompt_id": "p3"\n'

    preview = rita.post(_url("import", draft.pk, "outputs"), {"file": SimpleUploadedFile("bad.jsonl", bad)})

    assert b"The file was refused: 2 errors" in preview.content
    assert b"bad.jsonl:4: output: missing field" in preview.content
    assert b"bad.jsonl:5: json: invalid JSON" in preview.content
    assert b"Confirm import" not in preview.content
    assert not Prompt.objects.filter(campaign=draft).exists()


def test_a_confirmation_token_is_only_good_for_its_own_user(rita: Client, draft: Campaign, researcher: User) -> None:
    preview = rita.post(_url("import", draft.pk, "outputs"), {"file": SimpleUploadedFile("o.jsonl", OUTPUTS)})
    token = preview.context["confirm"].initial["token"]
    colleague = factories.UserFactory.create(username="ravi", is_superuser=True, is_staff=True)
    other = Client()
    other.force_login(colleague)

    response = other.post(_url("import", draft.pk, "outputs"), {"token": token})

    assert b"belongs to another import" in response.content
    assert not Prompt.objects.filter(campaign=draft).exists()


def test_import_battles_from_the_campaign_page(rita: Client, draft: Campaign) -> None:
    battles = b'[{"question_id": 1, "model_a": "m1", "model_b": "m2", "winner": "model_b", "judge": "e1"}]'
    preview = rita.post(_url("import", draft.pk, "battles"), {"file": SimpleUploadedFile("b.json", battles)})

    rita.post(_url("import", draft.pk, "battles"), {"token": preview.context["confirm"].initial["token"]})

    assert draft.comparisons.get().ratings.get().winner.model_name == "m2"  # type: ignore[union-attr]


def test_generate_comparisons_from_the_campaign_page(rita: Client, draft: Campaign) -> None:
    factories.populate_campaign(draft, prompts=0, models=[])
    for i in range(2):
        prompt = Prompt.objects.create(campaign=draft, external_id=f"p{i}", text="Q")
        Output.objects.bulk_create(Output(prompt=prompt, model_name=m, text=m) for m in ["a", "b", "c"])

    page = rita.get(_url("generate", draft.pk))
    response = rita.post(_url("generate", draft.pk), {"strategy": "baseline", "baseline_model": "a"}, follow=True)

    assert b'<option value="c">c</option>' in page.content
    assert Comparison.objects.filter(campaign=draft).count() == 4
    assert b"4 comparisons created, 0 already present" in response.content


def test_generate_form_requires_k_for_random_pairs(rita: Client, draft: Campaign) -> None:
    response = rita.post(_url("generate", draft.pk), {"strategy": "random_k"})

    assert b"The random-pairs strategy needs k." in response.content


def test_status_buttons_follow_the_allowed_transitions(rita: Client, campaign: Campaign) -> None:
    change_page = rita.get(_url("change", campaign.pk)).content
    assert _url("status", campaign.pk, "paused").encode() in change_page
    assert _url("status", campaign.pk, "draft").encode() not in change_page

    rita.post(_url("status", campaign.pk, "closed"))
    refused = rita.post(_url("status", campaign.pk, "active"), follow=True)

    campaign.refresh_from_db()
    assert campaign.status == "closed"
    assert b"is closed: it cannot become active" in refused.content


def test_open_action_opens_drafts_and_reports_refusals(rita: Client, campaign: Campaign, draft: Campaign) -> None:
    campaign_draft = factories.CampaignFactory.create(owner=campaign.owner)
    factories.populate_campaign(campaign_draft, prompts=1, models=["a", "b"])

    response = rita.post(
        _url("changelist"),
        {"action": "open_campaigns", "_selected_action": [campaign_draft.pk, draft.pk]},
        follow=True,
    )

    campaign_draft.refresh_from_db()
    assert campaign_draft.status == "active"
    assert b"has no comparisons" in response.content


def test_gold_answers_are_set_on_the_comparison_page(rita: Client, campaign: Campaign) -> None:
    comparison = campaign.comparisons.first()
    assert comparison is not None
    url = reverse("admin:annotation_comparison_change", args=[comparison.pk])

    wrong = rita.post(url, {"gold_verdict": "tie", "gold_winner": comparison.output_a_id})
    right = rita.post(url, {"gold_verdict": "win", "gold_winner": comparison.output_b_id})

    assert b"Only a gold win has a winning output" in wrong.content
    assert right.status_code == 302
    comparison.refresh_from_db()
    assert comparison.gold_winner_id == comparison.output_b_id


def test_the_campaign_form_explains_what_the_baseline_strategy_needs(rita: Client, draft: Campaign) -> None:
    response = rita.post(_url("add"), {"name": "B", "slug": "b", "pairing_strategy": "baseline"})

    assert b"The baseline strategy needs the name of the baseline model." in response.content
    assert not Campaign.objects.filter(slug="b").exists()


def test_a_researcher_sees_only_the_comparisons_and_prompts_of_their_campaigns(
    rita: Client, campaign: Campaign
) -> None:
    stranger = factories.CampaignFactory.create()
    factories.populate_campaign(stranger, prompts=2, models=["a", "b"])

    comparisons = rita.get(reverse("admin:annotation_comparison_changelist")).context["cl"].result_count
    prompts = rita.get(reverse("admin:annotation_prompt_changelist")).context["cl"].result_count

    assert (comparisons, prompts) == (12, 4)


def test_the_campaign_pages_show_how_far_the_annotators_are(
    rita: Client, campaign: Campaign, annotator: User, other_annotator: User
) -> None:
    gold = Comparison.objects.filter(campaign=campaign).first()
    assert gold is not None
    Comparison.objects.filter(pk=gold.pk).update(gold_verdict="tie")  # gold: not part of the campaign's work
    for user in (annotator, other_annotator):  # the second is given the half-rated comparison: fullest first
        lease = services.claim_next(user=user, campaign_id=campaign.pk)
        assert lease.shown is not None
        services.submit_rating(user=user, assignment_id=lease.shown.assignment_id, answer=services.RatingInput("left"))
    services.claim_next(user=annotator, campaign_id=campaign.pk)  # one more on its way

    progress = selectors.campaign_progress(campaign)

    assert (progress.comparisons, progress.needed, progress.rated) == (11, 22, 2)
    assert (progress.complete, progress.leased, progress.annotators, progress.paused) == (1, 1, 2, 0)
    with CaptureQueriesContext(connection) as queries:
        page = rita.get(_url("change", campaign.pk)).content.decode()
    assert "2 of 22 ratings (9%); 1 of 11 comparisons complete; 1 on their way; 2 annotators rated, 0 paused" in page
    assert not [q for q in queries if "COUNT(DISTINCT" in q["sql"]]  # the list's counts are left to the list
    listing = rita.get(_url("changelist")).content.decode()
    assert '<td class="field-annotated">2 / 22 (9%)</td>' in listing


def _campaign_form(client: Client, campaign: Campaign) -> dict[str, object]:
    """Return the campaign's change form as the page fills it in."""
    form = client.get(_url("change", campaign.pk)).context["adminform"].form
    values = {name: form[name].value() for name in form.fields}
    return {name: "" if value is None else value for name, value in values.items()}


def test_the_campaign_form_takes_annotators_and_researchers_by_username(
    rita: Client, draft: Campaign, annotator: User, other_annotator: User
) -> None:
    colleague = factories.UserFactory.create(username="ravi", is_staff=True)

    response = rita.post(
        _url("change", draft.pk), {**_campaign_form(rita, draft), "annotators": "alice,\nbob", "researchers": "ravi"}
    )

    assert response.status_code == 302
    assert set(draft.annotators.all()) == {annotator, other_annotator}
    assert list(draft.researchers.all()) == [colleague]
    assert _campaign_form(rita, draft)["annotators"] == "alice, bob"


def test_saving_the_campaign_form_as_shown_keeps_its_people(rita: Client, campaign: Campaign) -> None:
    before = set(campaign.annotators.all())

    response = rita.post(_url("change", campaign.pk), _campaign_form(rita, campaign))

    assert response.status_code == 302
    assert set(campaign.annotators.all()) == before


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("alice nobody", "No active account named &#x27;nobody&#x27;."),
        ("alice gone", "No active account named &#x27;gone&#x27;."),  # inactive: the same words as unknown
        ("alice\x00", "Not a username: &#x27;alice\\x00&#x27;."),
        (" ".join(f"u{i}" for i in range(1001)), "At most 1000 usernames"),
    ],
)
def test_a_username_that_names_no_active_account_is_a_field_error_and_saves_nothing(
    rita: Client, campaign: Campaign, typed: str, message: str
) -> None:
    factories.UserFactory.create(username="gone", is_active=False)
    before = set(campaign.annotators.all())

    response = rita.post(_url("change", campaign.pk), {**_campaign_form(rita, campaign), "annotators": typed})

    assert response.status_code == 200
    assert list(response.context["adminform"].form.errors) == ["annotators"]
    assert message in response.content.decode()
    assert set(campaign.annotators.all()) == before


def test_the_campaign_form_offers_the_groups_of_the_researcher_and_of_their_campaigns(
    rita: Client, researcher: User, draft: Campaign
) -> None:
    from django.contrib.auth.models import Group

    mine = Group.objects.create(name="Rita's annotators")
    researcher.groups.add(mine)
    used = Group.objects.create(name="Used before")
    factories.CampaignFactory.create(owner=researcher, annotator_group=used)
    Group.objects.create(name="Another lab's annotators")

    choices = rita.get(_url("change", draft.pk)).context["adminform"].form.fields["annotator_group"].queryset

    assert [group.name for group in choices] == ["Rita's annotators", "Used before"]


def test_the_campaign_list_and_page_link_to_the_campaign_results(rita: Client, campaign: Campaign) -> None:
    results = reverse("results:leaderboard", args=[campaign.slug])

    listing = rita.get(_url("changelist")).content.decode()
    page = rita.get(_url("change", campaign.pk)).content.decode()

    assert f'<td class="field-results"><a href="{results}">Results</a></td>' in listing
    assert f'href="{results}">Results</a>' in page


def test_open_is_offered_only_once_the_campaign_has_comparisons(rita: Client, draft: Campaign) -> None:
    before = rita.get(_url("change", draft.pk)).content.decode()
    factories.populate_campaign(draft, prompts=1, models=["a", "b"])
    after = rita.get(_url("change", draft.pk)).content.decode()

    assert _url("status", draft.pk, "active") not in before
    assert _url("status", draft.pk, "active") in after


def test_the_campaign_page_warns_when_the_annotation_cannot_finish(
    rita: Client, campaign: Campaign, annotator: User
) -> None:
    fine = rita.get(_url("change", campaign.pk)).context["campaign_warnings"]
    Campaign.objects.filter(pk=campaign.pk).update(ratings_per_comparison=3, gold_rate=0.2)

    page = rita.get(_url("change", campaign.pk)).content.decode()

    assert fine == []  # two annotators for two ratings each, no gold asked for
    assert "Each comparison needs 3 ratings from different annotators, but 2 accounts may annotate" in page
    assert "The gold rate is 20% but the campaign has no gold pairs" in page
    Comparison.objects.filter(pk=campaign.comparisons.first().pk).update(gold_verdict="tie")  # type: ignore[union-attr]
    assert "no gold pairs" not in rita.get(_url("change", campaign.pk)).content.decode()


def test_saving_a_campaign_that_cannot_finish_warns_with_the_saved_annotators(rita: Client, campaign: Campaign) -> None:
    response = rita.post(_url("change", campaign.pk), {**_campaign_form(rita, campaign), "annotators": "alice"})

    assert response.status_code == 302
    shown = [str(message) for message in response.wsgi_request._messages]  # type: ignore[attr-defined]
    assert any("needs 2 ratings from different annotators, but 1 account may annotate" in m for m in shown)


def test_the_generation_message_names_the_strategy_by_its_label(rita: Client, draft: Campaign) -> None:
    factories.populate_campaign(draft, prompts=1, models=["a", "b"])
    Comparison.objects.filter(campaign=draft).delete()

    response = rita.post(_url("generate", draft.pk), {"strategy": "all_pairs"}, follow=True)

    assert b"All pairs of models per prompt: 1 comparisons created" in response.content
    assert b"all_pairs:" not in response.content


def test_the_campaign_form_chooses_the_baseline_among_the_campaign_models(rita: Client, campaign: Campaign) -> None:
    field = rita.get(_url("change", campaign.pk)).context["adminform"].form.fields["baseline_model"]
    form = {**_campaign_form(rita, campaign), "pairing_strategy": "baseline"}

    wrong = rita.post(_url("change", campaign.pk), {**form, "baseline_model": "model-q"})
    right = rita.post(_url("change", campaign.pk), {**form, "baseline_model": "model-y"})

    assert [value for value, _ in field.choices] == ["", "model-x", "model-y", "model-z"]
    assert list(wrong.context["adminform"].form.errors) == ["baseline_model"]
    assert right.status_code == 302
    campaign.refresh_from_db()
    assert campaign.baseline_model == "model-y"


def test_the_campaign_form_and_the_generate_page_say_which_pairing_setting_wins(
    rita: Client, campaign: Campaign
) -> None:
    page = rita.get(_url("change", campaign.pk)).content.decode()
    generate = rita.get(_url("generate", campaign.pk)).content.decode()

    assert "The defaults of Generate comparisons" in page
    assert "that choice wins for the comparisons it makes" in page
    assert "What you choose here wins for this generation only" in " ".join(generate.split())


def _comparisons(client: Client, **params: str | int) -> tuple[list[Comparison], str]:
    response = client.get(reverse("admin:annotation_comparison_changelist"), params)
    assert response.status_code == 200
    return list(response.context["cl"].result_list), response.content.decode()


def test_the_comparisons_list_filters_by_model_and_searches_by_prompt_id(rita: Client, campaign: Campaign) -> None:
    stranger = factories.CampaignFactory.create()
    factories.populate_campaign(stranger, prompts=1, models=["secret-model", "model-x"])

    with_y, content = _comparisons(rita, model="model-y")
    on_q1, _ = _comparisons(rita, q="q1")

    assert "secret-model" not in content  # the model filter names the user's models only
    assert 'href="?model=model-z"' in content
    assert len(with_y) == 8
    assert all("model-y" in (c.output_a.model_name, c.output_b.model_name) for c in with_y)
    assert sorted(c.prompt.external_id for c in on_q1) == ["q1", "q1", "q1"]


def test_the_comparisons_list_of_one_campaign_does_not_repeat_its_name(rita: Client, campaign: Campaign) -> None:
    _, every = _comparisons(rita)
    _, one = _comparisons(rita, campaign__id__exact=campaign.pk)

    assert 'class="field-campaign_name"' in every
    assert 'class="field-campaign_name"' not in one


def test_the_progress_line_counts_one_annotator_in_the_singular(
    rita: Client, campaign: Campaign, annotator: User
) -> None:
    lease = services.claim_next(user=annotator, campaign_id=campaign.pk)
    assert lease.shown is not None
    services.submit_rating(user=annotator, assignment_id=lease.shown.assignment_id, answer=services.RatingInput("left"))

    page = rita.get(_url("change", campaign.pk)).content.decode()

    assert "; 1 annotator rated, 0 paused" in page


def test_the_annotator_group_choices_leave_out_role_groups_that_grant_permissions(
    rita: Client, researcher: User, draft: Campaign
) -> None:
    from django.contrib.auth.models import Group, Permission

    role = Group.objects.create(name="Researchers")
    role.permissions.set(Permission.objects.filter(content_type__app_label="annotation"))
    team = Group.objects.create(name="Rita's annotators")
    researcher.groups.add(role, team)

    choices = rita.get(_url("change", draft.pk)).context["adminform"].form.fields["annotator_group"].queryset
    Campaign.objects.filter(pk=draft.pk).update(annotator_group=role)  # chosen before: stays offered, so it saves
    response = rita.post(_url("change", draft.pk), _campaign_form(rita, draft))

    assert [group.name for group in choices] == ["Rita's annotators"]
    assert response.status_code == 302


def _changelist_queries(client: Client, url: str) -> tuple[str, list[str]]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return response.content.decode(), [q["sql"] for q in queries]


def test_the_ratings_of_one_campaign_are_read_within_its_comparison_ids_and_never_counted_whole(
    rita: Client, campaign: Campaign, researcher: User
) -> None:
    other = factories.CampaignFactory.create(owner=researcher, slug="other")
    for which in (campaign, other):
        comparisons = list(Comparison.objects.filter(campaign=which))
        if not comparisons:
            prompt = Prompt.objects.create(campaign=which, external_id="o1", text="Other?")
            a = Output.objects.create(prompt=prompt, model_name="m1", text="A")
            b = Output.objects.create(prompt=prompt, model_name="m2", text="B")
            comparisons = [Comparison.objects.create(campaign=which, prompt=prompt, output_a=a, output_b=b)]
        judge = Rater.objects.get_or_create(name=f"judge-of-{which.slug}", kind="judge")[0]
        Rating.objects.bulk_create(
            Rating(
                comparison=c,
                rater=judge,
                rater_kind="judge",
                source="import",
                verdict="tie",
                left_output_id=c.output_a_id,
                created_at=timezone.now(),
            )
            for c in comparisons
        )
    ids = Comparison.objects.filter(campaign=campaign).values_list("id", flat=True)
    low, high = min(ids), max(ids)

    page, queries = _changelist_queries(
        rita, f"/admin/annotation/rating/?comparison__campaign__id__exact={campaign.pk}"
    )

    listed = {int(i) for i in re.findall(r"/admin/annotation/rating/(\d+)/change/", page)}
    assert listed == set(Rating.objects.filter(comparison__campaign=campaign).values_list("id", flat=True))
    reads = [q for q in queries if 'FROM "annotation_rating"' in q]
    assert reads
    assert all(f'"annotation_rating"."comparison_id" >= {low}' in q for q in reads)
    assert all(f'"annotation_rating"."comparison_id" <= {high}' in q for q in reads)
    assert not [q for q in reads if "WHERE" not in q]  # no count of every rating beside the campaign's


def test_a_campaign_without_comparisons_lists_no_ratings(rita: Client, draft: Campaign) -> None:
    page, _ = _changelist_queries(rita, f"/admin/annotation/rating/?comparison__campaign__id__exact={draft.pk}")

    assert "0 ratings" in page


@pytest.mark.parametrize(
    "path", ["rating/?comparison__campaign__id__exact={pk}", "comparison/?campaign__id__exact={pk}"]
)
def test_a_superusers_list_of_one_campaign_does_not_count_the_whole_table(
    client: Client, campaign: Campaign, path: str
) -> None:
    root = factories.UserFactory.create(username="root", is_superuser=True, is_staff=True)
    factories.CampaignFactory.create(owner=root, slug="other")  # with one campaign, the admin drops its filter
    client.force_login(root)
    _, queries = _changelist_queries(client, "/admin/annotation/" + path.format(pk=campaign.pk))

    counts = [q for q in queries if q.startswith("SELECT COUNT(*)")]
    assert counts
    assert all("WHERE" in q for q in counts), counts  # the campaign's rows only; a researcher's lists are scoped anyway
