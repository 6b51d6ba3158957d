"""manage.py generate_comparisons SLUG [--strategy S] [--k K] [--baseline-model M] [--seed N]: as the admin's
Generate comparisons page (same form, same service); existing pairs are kept and counted."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from annotation import campaign_setup
from annotation.forms import GenerateComparisonsForm
from annotation.management.commands._campaigns import form_error, get_campaign
from annotation.models import Campaign, Output
from evalplatform.exceptions import DomainError


class Command(BaseCommand):
    help = "Generate a campaign's comparisons by strategy (default: the campaign's own pairing settings)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--strategy", help=f"One of {', '.join(Campaign.PairingStrategy.values)}.")
        parser.add_argument("--k", help="Pairs per prompt, for the random-pairs strategy.")
        parser.add_argument("--baseline-model", help="For the baseline strategy: a model of the campaign's outputs.")
        parser.add_argument("--seed", help="Makes the random pairs reproducible.")

    def handle(self, *args: Any, **options: Any) -> None:
        campaign = get_campaign(options["slug"])
        given = {name: options[name] for name in ("strategy", "k", "baseline_model", "seed")}
        data = {
            "strategy": campaign.pairing_strategy,
            "k": campaign.pairs_per_prompt,
            "baseline_model": campaign.baseline_model,
        }
        data |= {name: value for name, value in given.items() if value is not None}
        form = GenerateComparisonsForm(
            data={k: "" if v is None else v for k, v in data.items()}, models=models(campaign)
        )
        if not form.is_valid():
            raise form_error(form)
        try:
            report = campaign_setup.generate_comparisons(campaign=campaign, **form.cleaned_data)
        except DomainError as error:
            raise CommandError(error.message) from error
        self.stdout.write(self.style.SUCCESS(report.describe()))


def models(campaign: Campaign) -> list[str]:
    """Return the model names of the campaign's outputs, sorted."""
    names = Output.objects.filter(prompt__campaign=campaign, model_name__isnull=False).values_list(
        "model_name", flat=True
    )
    return sorted({name for name in names if name})
