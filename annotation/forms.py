"""Forms of the campaign-setup screens in the admin."""

from __future__ import annotations

from typing import Any

from django import forms

from annotation.models import Campaign, Comparison, Output, Verdict

MAX_UPLOAD_BYTES = 100 * 1024 * 1024


class CampaignAdminForm(forms.ModelForm[Campaign]):
    """The campaign form, saying in words what the database constraints on pairing settings require."""

    class Meta:
        model = Campaign
        fields = [
            "name",
            "slug",
            "owner",
            "instructions",
            "label_scheme",
            "strength_levels",
            "require_rationale",
            "ratings_per_comparison",
            "pairing_strategy",
            "pairs_per_prompt",
            "baseline_model",
            "lease_seconds",
            "quota_per_annotator",
            "gold_rate",
            "gold_min_answered",
            "gold_min_accuracy",
            "annotator_group",
            "annotators",
            "researchers",
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        strategy = data.get("pairing_strategy")
        if strategy == Campaign.PairingStrategy.RANDOM_K and not data.get("pairs_per_prompt"):
            self.add_error("pairs_per_prompt", "The random-pairs strategy needs k, the number of pairs per prompt.")
        if strategy == Campaign.PairingStrategy.BASELINE and not data.get("baseline_model"):
            self.add_error("baseline_model", "The baseline strategy needs the name of the baseline model.")
        return data


class ImportUploadForm(forms.Form):
    file = forms.FileField(help_text="JSONL, JSON or CSV, UTF-8.")

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(f"The file is larger than {MAX_UPLOAD_BYTES // 1024 // 1024} MB.")
        return upload


class ImportConfirmForm(forms.Form):
    token = forms.CharField(widget=forms.HiddenInput)


class GenerateComparisonsForm(forms.Form):
    strategy = forms.ChoiceField(choices=Campaign.PairingStrategy.choices)
    k = forms.IntegerField(
        min_value=1, required=False, label="k", help_text="Pairs per prompt, for the random-pairs strategy."
    )
    baseline_model = forms.ChoiceField(required=False, help_text="For the baseline strategy.")
    seed = forms.IntegerField(required=False, help_text="Makes the random pairs reproducible.")

    def __init__(self, *args: Any, models: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["baseline_model"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", "---------"), *((m, m) for m in models)]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("strategy") == Campaign.PairingStrategy.RANDOM_K and not data.get("k"):
            self.add_error("k", "The random-pairs strategy needs k.")
        if data.get("strategy") == Campaign.PairingStrategy.BASELINE and not data.get("baseline_model"):
            self.add_error("baseline_model", "The baseline strategy needs a baseline model.")
        return data


class OutputChoiceField(forms.ModelChoiceField[Output]):
    def label_from_instance(self, obj: Output) -> str:
        return f"{obj.model_name or 'output'} #{obj.pk}: {obj.text[:80]}"


class ComparisonAdminForm(forms.ModelForm[Comparison]):
    """Edit a comparison's gold answer (the winner is one of its two outputs) with messages that say what is wrong."""

    gold_winner = OutputChoiceField(queryset=Output.objects.none(), required=False)

    class Meta:
        model = Comparison
        fields = ["gold_verdict", "gold_winner"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["gold_winner"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = Output.objects.filter(pk__in=[self.instance.output_a_id, self.instance.output_b_id])

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        verdict, winner = data.get("gold_verdict"), data.get("gold_winner")
        outputs = (self.instance.output_a_id, self.instance.output_b_id)
        if verdict == Verdict.WIN and winner is None:
            self.add_error("gold_winner", "A gold win needs the winning output.")
        elif verdict != Verdict.WIN and winner is not None:
            self.add_error("gold_winner", "Only a gold win has a winning output; leave it empty.")
        elif winner is not None and winner.pk not in outputs:
            self.add_error("gold_winner", "The winner must be one of this comparison's two outputs.")
        return data
