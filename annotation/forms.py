"""Forms of the campaign-setup screens in the admin."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from django import forms
from django.contrib.auth.models import Group, User
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.db.models import Exists, OuterRef, Q

from annotation import selectors
from annotation.importers.limits import import_limits
from annotation.models import Campaign, Comparison, Output, Verdict

MAX_USERNAMES = 1000  # per field; a larger team is an annotator group


class UsernamesField(forms.Field):
    """Accounts named by username (commas, spaces or new lines between them), cleaned into the active accounts.

    The campaign form takes usernames rather than offering every account of the server in a list: a researcher adds
    the people they know, and an unknown name is an error that names only what was typed.
    """

    widget = forms.Textarea(attrs={"rows": 2, "cols": 60})
    valid_username = re.compile(UnicodeUsernameValidator.regex)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, str) or value is None:
            return value or ""
        return ", ".join(sorted(user.username for user in value))

    def to_python(self, value: Any) -> list[str]:
        names = re.split(r"[\s,]+", str(value or "").strip())
        return list(dict.fromkeys(name for name in names if name))

    def clean(self, value: Any) -> list[User]:
        names = self.to_python(value)
        if self.required and not names:
            raise forms.ValidationError(self.error_messages["required"], code="required")
        if len(names) > MAX_USERNAMES:
            raise forms.ValidationError(
                f"At most {MAX_USERNAMES} usernames; give a larger team an annotator group.", code="too_many"
            )
        malformed = [name for name in names if len(name) > 150 or not self.valid_username.match(name)]
        if malformed:
            raise forms.ValidationError(f"Not a username: {_quoted(malformed)}.", code="malformed")
        users = {user.username: user for user in User.objects.filter(username__in=names, is_active=True)}
        unknown = [name for name in names if name not in users]
        if unknown:
            raise forms.ValidationError(f"No active account named {_quoted(unknown)}.", code="unknown")
        return [users[name] for name in names]

    def has_changed(self, initial: Any, data: Any) -> bool:
        before = set(self.to_python(self.prepare_value(initial)))
        return before != set(self.to_python(data))


def _quoted(names: Iterable[str], most: int = 10) -> str:
    names = list(names)
    shown = ", ".join(repr(name[:60]) for name in names[:most])  # repr: a control character shows as an escape
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


class CampaignAdminForm(forms.ModelForm[Campaign]):
    """The campaign form, saying in words what the database constraints on pairing settings require."""

    annotators = UsernamesField(
        required=False, help_text="Usernames of the accounts that may annotate besides the annotator group."
    )
    researchers = UsernamesField(
        required=False,
        help_text="Usernames of the accounts that manage the campaign and read its results, besides the owner.",
    )

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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._offer_annotator_groups()
        self._offer_baselines()

    def _offer_annotator_groups(self) -> None:
        """Offer as annotator groups only groups that grant no permission (a role such as Researchers is not a team
        of annotators), on top of the scoping the admin applied; the campaign's current group stays offered."""
        field = self.fields.get("annotator_group")
        if not isinstance(field, forms.ModelChoiceField) or field.queryset is None:
            return
        grants = Group.permissions.through.objects.filter(group=OuterRef("pk"))
        field.queryset = field.queryset.filter(~Exists(grants) | Q(pk=self.instance.annotator_group_id))
        field.help_text = (
            "Members of this group may annotate. Groups that grant permissions (such as Researchers) are roles, not "
            "teams of annotators, and are not offered."
        )

    def _offer_baselines(self) -> None:
        models = selectors.campaign_model_names(self.instance) if self.instance.pk else []
        current = self.instance.baseline_model
        if models:  # choose among the campaign's models; a name typed before its outputs came stays offered
            names = models if not current or current in models else [*models, current]
            self.fields["baseline_model"] = forms.ChoiceField(
                choices=[("", "---------"), *((name, name) for name in names)],
                required=False,
                help_text=f"For the baseline strategy: one of the campaign's {len(models)} models.",
            )
        else:
            self.fields["baseline_model"].help_text = (
                "For the baseline strategy: the model name as the outputs will give it (a list of the campaign's "
                "models once its outputs are imported)."
            )

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
        limit = import_limits().max_upload_bytes
        if upload.size > limit:
            raise forms.ValidationError(f"The file is larger than {limit // 1024 // 1024} MB.")
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
