"""The campaign-setup commands (create_campaign, generate_comparisons, campaign_status, set_annotators): a shell
script's pipeline, and every refusal naming its problem, changing nothing and exiting non-zero."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management import CommandError, call_command
from django.forms.models import model_to_dict

from annotation.models import Campaign, Comparison
from tests import factories

pytestmark = pytest.mark.django_db
REPO_ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def refused(*args: str) -> str:
    """Run a command that must fail; return its message, checking that no campaign or comparison changed."""
    before = snapshot()
    with pytest.raises(CommandError) as error:
        run(*args)
    assert snapshot() == before
    return str(error.value)


def snapshot() -> list[object]:
    campaigns = [
        {**model_to_dict(c), "annotators": sorted(u.pk for u in c.annotators.all())}
        for c in Campaign.objects.order_by("pk")
    ]
    return [campaigns, list(Comparison.objects.order_by("pk").values_list("pk", "output_a_id", "output_b_id"))]


def outputs_file(tmp_path: Path, models: tuple[str, ...] = ("gpt", "llama", "mistral"), prompts: int = 3) -> Path:
    path = tmp_path / "outputs.jsonl"
    rows = [
        {"prompt_id": f"q{p}", "prompt": f"Question {p}?", "model": model, "output": f"{model} answers {p}"}
        for p in range(prompts)
        for model in models
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_a_shell_pipeline_sets_up_and_opens_a_campaign_without_the_admin(
    researcher: User, annotator: User, other_annotator: User, tmp_path: Path
) -> None:
    team = Group.objects.create(name="raters")
    instructions = tmp_path / "guide.md"
    instructions.write_text("Pick the **better** answer.")

    created = run(
        "create_campaign", "weekly", "--name", "Weekly checkpoint", "--owner", researcher.username,
        "--instructions-file", str(instructions), "--label-scheme", "three_way", "--ratings-per-comparison", "2",
        "--pairing-strategy", "baseline", "--baseline-model", "gpt", "--researchers", annotator.username,
    )  # fmt: skip
    run("import_outputs", "weekly", str(outputs_file(tmp_path)))
    generated = run("generate_comparisons", "weekly")
    again = run("generate_comparisons", "weekly", "--strategy", "all_pairs")
    chosen = run("set_annotators", "weekly", "--users", f"{annotator.username}, {other_annotator.username}")
    grouped = run("set_annotators", "weekly", "--group", "raters")
    opened = run("campaign_status", "weekly", "open")

    campaign = Campaign.objects.get(slug="weekly")
    assert "created campaign weekly (draft), owned by rita" in created
    assert (campaign.name, campaign.owner, campaign.instructions) == (
        "Weekly checkpoint",
        researcher,
        "Pick the **better** answer.",
    )
    assert (campaign.label_scheme, campaign.ratings_per_comparison, campaign.baseline_model) == ("three_way", 2, "gpt")
    assert (campaign.lease_seconds, campaign.gold_rate) == (600, 0.1)  # the admin's defaults
    assert list(campaign.researchers.all()) == [annotator]
    assert "baseline: 6 comparisons created, 0 already present, over 3 prompts" in generated
    assert "all_pairs: 3 comparisons created, 6 already present" in again
    assert campaign.comparisons.count() == 9
    assert "annotators alice, bob; group none" in chosen
    assert "annotators alice, bob; group raters" in grouped  # the users given before are kept
    assert set(campaign.annotators.all()) == {annotator, other_annotator}
    assert campaign.annotator_group == team
    assert "weekly is now active" in opened
    assert run("campaign_status", "weekly").strip() == "active"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--pairing-strategy", "random_k"), "--pairs-per-prompt: The random-pairs strategy needs k"),
        (("--pairing-strategy", "baseline"), "--baseline-model: The baseline strategy needs the name"),
        (("--label-scheme", "five_way"), "--label-scheme: Select a valid choice. five_way is not one of"),
        (("--ratings-per-comparison", "many"), "--ratings-per-comparison: Enter a whole number."),
        (("--gold-rate", "1.5"), "Constraint “campaign_gold_rate_0_1” is violated."),  # the admin says the same
        (("--annotators", "alice nobody"), "--annotators: No active account named 'nobody'."),
        (("--annotator-group", "ghosts"), "--annotator-group: no group named 'ghosts'"),
        (("--owner", "nobody"), "--owner: no user named 'nobody'"),
        (("--instructions-file", "/nonexistent/guide.md"), "--instructions-file: cannot read /nonexistent/guide.md"),
    ],
)
def test_create_campaign_refuses_what_the_admin_form_refuses(
    researcher: User, annotator: User, args: tuple[str, ...], message: str
) -> None:
    assert message in refused("create_campaign", "new", "--owner", researcher.username, *args)
    assert not Campaign.objects.filter(slug="new").exists()


def test_create_campaign_refuses_a_slug_in_use_and_a_bad_slug(researcher: User, campaign: Campaign) -> None:
    owner = ("--owner", researcher.username)
    assert "--slug: Campaign with this Slug already exists." in refused("create_campaign", campaign.slug, *owner)
    assert "--slug: Enter a valid “slug”" in refused("create_campaign", "two words", *owner)


def test_create_campaign_without_owner_takes_the_first_superuser_or_refuses(researcher: User) -> None:
    assert "there is no superuser" in refused("create_campaign", "orphan")
    admin = factories.UserFactory.create(username="root", is_superuser=True, is_staff=True)

    run("create_campaign", "orphan")

    assert Campaign.objects.get(slug="orphan").owner == admin


def test_generate_comparisons_refuses_bad_settings_and_a_closed_campaign(campaign: Campaign) -> None:
    slug = campaign.slug
    assert "--k: The random-pairs strategy needs k." in refused("generate_comparisons", slug, "--strategy", "random_k")
    assert "--baseline-model: Select a valid choice. gpt-9 is not one of the available choices." in refused(
        "generate_comparisons", slug, "--strategy", "baseline", "--baseline-model", "gpt-9"
    )
    assert "--strategy: Select a valid choice. best is not one of" in refused(
        "generate_comparisons", slug, "--strategy", "best"
    )
    assert "no campaign 'nope'" in refused("generate_comparisons", "nope")
    run("campaign_status", slug, "close")
    assert f"campaign {slug} is closed: no comparisons can be added" in refused("generate_comparisons", slug)


def test_random_pairs_with_a_seed_are_reproducible(researcher: User, tmp_path: Path) -> None:
    drawn = []
    for slug in ("one", "two"):
        run("create_campaign", slug, "--owner", researcher.username)
        run("import_outputs", slug, str(outputs_file(tmp_path, models=("a", "b", "c", "d"))))
        run("generate_comparisons", slug, "--strategy", "random_k", "--k", "2", "--seed", "7")
        pairs = Comparison.objects.filter(campaign__slug=slug).values_list(
            "output_a__model_name", "output_b__model_name"
        )
        drawn.append(sorted(pairs))

    assert len(drawn[0]) == 6
    assert drawn[0] == drawn[1]


def test_campaign_status_refuses_moves_the_admin_refuses(researcher: User, campaign: Campaign) -> None:
    run("create_campaign", "empty", "--owner", researcher.username)
    assert "campaign empty has no comparisons: generate them before opening it" in refused(
        "campaign_status", "empty", "open"
    )
    assert f"campaign {campaign.slug} is active: it cannot become active" in refused(
        "campaign_status", campaign.slug, "open"
    )
    run("campaign_status", campaign.slug, "pause")
    run("campaign_status", campaign.slug, "close")
    assert f"campaign {campaign.slug} is closed: it cannot become active" in refused(
        "campaign_status", campaign.slug, "open"
    )
    with pytest.raises(CommandError, match="invalid choice: 'delete'"):
        run("campaign_status", campaign.slug, "delete")


def test_set_annotators_refuses_unknown_accounts_and_groups_and_an_empty_call(campaign: Campaign) -> None:
    factories.UserFactory.create(username="gone", is_active=False)
    assert "--users: No active account named 'gone', 'nobody'." in refused(
        "set_annotators", campaign.slug, "--users", "alice,gone nobody"
    )
    assert "--users: Not a username: 'a/b'." in refused("set_annotators", campaign.slug, "--users", "a/b")
    assert "--group: no group named 'ghosts'" in refused("set_annotators", campaign.slug, "--group", "ghosts")
    assert "give --users, --group or --no-group" in refused("set_annotators", campaign.slug)


def test_set_annotators_empties_the_list_and_clears_the_group(campaign: Campaign) -> None:
    campaign.annotator_group = Group.objects.create(name="raters")
    campaign.save()

    run("set_annotators", campaign.slug, "--users", "", "--no-group")

    emptied = Campaign.objects.get(pk=campaign.pk)
    assert not emptied.annotators.exists()
    assert emptied.annotator_group is None


def test_a_refused_command_exits_non_zero_with_its_message_on_stderr() -> None:
    # The test database, on the server the tests use (DATABASE_URL's, or the embedded one by its name).
    name = settings.DATABASES["default"]["NAME"]
    if os.environ.get("DATABASE_URL"):
        database = {"DATABASE_URL": urlunsplit(urlsplit(os.environ["DATABASE_URL"])._replace(path="/" + name))}
    else:
        database = {"EVALPLATFORM_DB_NAME": name}
    env = {**os.environ, **database}  # the command finds no campaign there either
    done = subprocess.run(
        [sys.executable, "manage.py", "campaign_status", "no-such-campaign", "open"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip

    assert done.returncode == 1
    assert done.stderr.strip() == "CommandError: no campaign 'no-such-campaign'"
