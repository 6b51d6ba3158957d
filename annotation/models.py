"""Campaigns, the prompts and outputs they compare, raters, assignments and ratings.

Invariants are database constraints. Two of them span tables and live in migration 0002 as raw SQL:
a comparison's outputs belong to its prompt and its prompt to its campaign (composite foreign keys), and a
rating's winner and shown-left output are outputs of its comparison (a trigger).
"""

from __future__ import annotations

import random
import secrets

from django.conf import settings
from django.contrib.auth.models import Group
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.db.models import F, Q


def new_random_key() -> float:
    return random.random()


def new_pseudonym() -> str:
    return "rater-" + secrets.token_hex(5)


class Verdict(models.TextChoices):
    """What a rating says, independent of where the outputs were shown."""

    WIN = "win", "One output is better"
    TIE = "tie", "Tie"
    BOTH_BAD = "both_bad", "Both are bad"


class Campaign(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"
        CLOSED = "closed", "Closed"

    class LabelScheme(models.TextChoices):
        BINARY = "binary", "Left / right"
        THREE_WAY = "three_way", "Left / right / tie"
        FOUR_WAY = "four_way", "Left / right / tie / both bad"

    class PairingStrategy(models.TextChoices):
        ALL_PAIRS = "all_pairs", "All pairs of models per prompt"
        RANDOM_K = "random_k", "k random pairs per prompt"
        BASELINE = "baseline", "Every model against a baseline model"

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    instructions = models.TextField(blank=True, help_text="Markdown, shown to annotators on demand.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    label_scheme = models.CharField(max_length=10, choices=LabelScheme.choices, default=LabelScheme.FOUR_WAY)
    strength_levels = models.PositiveSmallIntegerField(
        default=0,
        help_text="0: no strength; 2: slightly / clearly better; 3: slightly / clearly / much better.",
    )
    require_rationale = models.BooleanField(default=False)
    ratings_per_comparison = models.PositiveSmallIntegerField(default=3)
    pairing_strategy = models.CharField(
        max_length=10, choices=PairingStrategy.choices, default=PairingStrategy.ALL_PAIRS
    )
    pairs_per_prompt = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="k, for the random-pairs strategy."
    )
    baseline_model = models.CharField(max_length=200, blank=True, help_text="For the baseline strategy.")
    lease_seconds = models.PositiveIntegerField(default=600, help_text="How long an assignment is held.")
    quota_per_annotator = models.PositiveIntegerField(
        null=True, blank=True, help_text="Most ratings one annotator may give; empty for no limit."
    )
    gold_rate = models.FloatField(default=0.1, help_text="Share of assignments drawn from gold comparisons.")
    gold_min_answered = models.PositiveSmallIntegerField(
        default=5, help_text="Gold answers needed before an annotator can be paused for low accuracy."
    )
    gold_min_accuracy = models.FloatField(default=0.6)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_campaigns")
    researchers = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="research_campaigns",
        help_text="Besides the owner.",
    )
    annotator_group = models.ForeignKey(
        Group,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        help_text="Members of this group may annotate.",
    )
    annotators = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="annotation_campaigns",
        help_text="Also may annotate.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(ratings_per_comparison__gte=1), name="campaign_needs_a_rating"),
            models.CheckConstraint(condition=Q(lease_seconds__gte=30), name="campaign_lease_at_least_30s"),
            models.CheckConstraint(condition=Q(gold_rate__gte=0, gold_rate__lte=1), name="campaign_gold_rate_0_1"),
            models.CheckConstraint(
                condition=Q(gold_min_accuracy__gte=0, gold_min_accuracy__lte=1),
                name="campaign_gold_accuracy_0_1",
            ),
            models.CheckConstraint(condition=Q(strength_levels__lte=5), name="campaign_strength_levels_max_5"),
            models.CheckConstraint(
                condition=~Q(pairing_strategy="random_k") | Q(pairs_per_prompt__gte=1),
                name="campaign_random_k_needs_k",
            ),
            models.CheckConstraint(
                condition=~Q(pairing_strategy="baseline") | ~Q(baseline_model=""),
                name="campaign_baseline_needs_model",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def choices(self) -> list[str]:
        """Return the choices an annotator may give under this campaign's label scheme."""
        return CHOICES_BY_SCHEME[self.LabelScheme(self.label_scheme)]


# The answers an annotator may give under each label scheme.
CHOICES_BY_SCHEME: dict[str, list[str]] = {
    Campaign.LabelScheme.BINARY: ["left", "right"],
    Campaign.LabelScheme.THREE_WAY: ["left", "right", "tie"],
    Campaign.LabelScheme.FOUR_WAY: ["left", "right", "tie", "both_bad"],
}


# Annotators are shown prompts and outputs as sanitised HTML, rendered once and stored (annotation.stored_html).
# A trigger (migration 0006) clears it whenever the text changes without it, so it is never stale; the engine
# renders and stores it on first show when it is missing.
HTML_HELP = "The text rendered to sanitised HTML; empty until rendered (on import, or on first show)."


class Prompt(models.Model):
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="prompts")
    external_id = models.CharField(max_length=200)
    text = models.TextField(blank=True)
    html = models.TextField(null=True, editable=False, help_text=HTML_HELP)
    reference_answer = models.TextField(blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    # Categories: the file's `tags`/`category`, and the built-in taggers' `auto:` tags (scoring/categories.py).
    tags = ArrayField(models.CharField(max_length=100), default=list, blank=True)
    # Prompt hygiene (annotation/prompt_hygiene.py): the smallest prompt id of its duplicate group, never deleted.
    duplicate_group = models.BigIntegerField(null=True, blank=True, editable=False)
    duplicate_kind = models.CharField(max_length=5, blank=True, editable=False, help_text="exact or near")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "external_id"], name="prompt_unique_external_id"),
        ]
        indexes = [GinIndex(fields=["tags"], name="prompt_tags_gin")]

    def __str__(self) -> str:
        return self.external_id


class Output(models.Model):
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="outputs")
    model_name = models.CharField(max_length=200, null=True, blank=True, help_text="Empty when unknown.")
    text = models.TextField(blank=True)
    html = models.TextField(null=True, editable=False, help_text=HTML_HELP)
    metadata = models.JSONField(default=dict, blank=True)
    style_features = ArrayField(
        models.IntegerField(),
        size=4,
        null=True,
        editable=False,
        help_text="Tokens, markdown headers, list items and bold spans (annotation/style_features.py); empty until "
        "counted (on import, by the migration's backfill, or when a style-controlled leaderboard needs it).",
    )

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["prompt", "model_name"],
                condition=Q(model_name__isnull=False),
                name="output_one_per_model_and_prompt",
            ),
            models.CheckConstraint(condition=~Q(model_name=""), name="output_model_name_null_not_empty"),
        ]
        indexes = [models.Index(fields=["model_name"], name="output_model_name_idx")]

    def __str__(self) -> str:
        return f"{self.model_name or 'output'} #{self.pk}"


class Comparison(models.Model):
    """Two outputs for one prompt. Stored with output_a.id < output_b.id; sides are drawn per assignment."""

    # Foreign keys that lead a composite index get no index of their own (named in the comments): every claim
    # updates a comparison and moves it in the claim index, which writes a new entry into every one of its indexes.
    campaign = models.ForeignKey(  # comparison_sampling_idx
        Campaign, on_delete=models.CASCADE, related_name="comparisons", db_index=False
    )
    prompt = models.ForeignKey(  # comparison_prompt_idx
        Prompt, on_delete=models.CASCADE, related_name="comparisons", db_index=False
    )
    output_a = models.ForeignKey(Output, on_delete=models.CASCADE, related_name="+", db_index=False)  # unique pair
    output_b = models.ForeignKey(Output, on_delete=models.CASCADE, related_name="+")
    gold_verdict = models.CharField(
        max_length=10,
        choices=Verdict.choices,
        null=True,
        blank=True,
        help_text="Known answer for gold pairs.",
    )
    gold_winner = models.ForeignKey(Output, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    random_key = models.FloatField(default=new_random_key, help_text="Uniform in [0, 1): sampling order.")
    filled = models.PositiveSmallIntegerField(
        default=0,
        editable=False,
        help_text="Assignments holding a slot (leased or rated), kept by the assignment engine.",
    )
    last_claimed_by = models.BigIntegerField(
        null=True,
        blank=True,
        editable=False,
        help_text="The id of the rater who was last given this comparison (they can never get it again); "
        "kept by the assignment engine, which skips a rater's own comparisons by this key.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(output_a__lt=F("output_b")), name="comparison_outputs_ordered"),
            models.UniqueConstraint(fields=["output_a", "output_b"], name="comparison_unique_pair"),
            models.CheckConstraint(
                condition=Q(gold_verdict="win", gold_winner__isnull=False)
                | (~Q(gold_verdict="win") & Q(gold_winner__isnull=True))
                | Q(gold_verdict__isnull=True, gold_winner__isnull=True),
                name="comparison_gold_winner_iff_win",
            ),
            models.CheckConstraint(
                condition=Q(gold_winner__isnull=True) | Q(gold_winner=F("output_a")) | Q(gold_winner=F("output_b")),
                name="comparison_gold_winner_is_an_output",
            ),
            models.CheckConstraint(condition=Q(random_key__gte=0, random_key__lt=1), name="comparison_random_key_unit"),
            # The claim looks for partially filled comparisons only among those it knows who was given last.
            models.CheckConstraint(
                condition=Q(filled=0) | Q(last_claimed_by__isnull=False), name="comparison_filled_was_claimed"
            ),
        ]
        indexes = [
            models.Index(fields=["campaign", "random_key"], name="comparison_sampling_idx"),
            models.Index(fields=["prompt"], name="comparison_prompt_idx"),
            # The claim query walks these: fullest unfinished comparisons first, never-claimed ones from a random point
            # in the key space, and the rater's own (last claimed by them) skipped as one range (annotation.engine).
            models.Index(
                fields=["campaign", "filled", "last_claimed_by", "random_key"],
                condition=Q(gold_verdict__isnull=True),
                name="comparison_claim_band_idx",
            ),
            models.Index(
                fields=["campaign", "random_key"], condition=Q(gold_verdict__isnull=False), name="comparison_gold_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"comparison #{self.pk}"

    @property
    def is_gold(self) -> bool:
        return self.gold_verdict is not None


class Rater(models.Model):
    """Anyone who rates: a human (with or without an account here) or an LLM judge configuration."""

    class Kind(models.TextChoices):
        HUMAN = "human", "Human"
        JUDGE = "judge", "LLM judge"

    kind = models.CharField(max_length=5, choices=Kind.choices)
    name = models.CharField(max_length=200, unique=True, help_text="Username, imported rater id or judge name.")
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="rater"
    )
    pseudonym = models.CharField(max_length=40, unique=True, default=new_pseudonym, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(kind="human") | Q(user__isnull=True), name="rater_judge_has_no_user"),
            # Target of Rating's composite foreign key (rater_id, rater_kind).
            models.UniqueConstraint(fields=["id", "kind"], name="rater_id_kind"),
        ]

    def __str__(self) -> str:
        return self.name


class Assignment(models.Model):
    """A comparison leased to one rater, with the side each output is shown on."""

    class State(models.TextChoices):
        LEASED = "leased", "Leased"
        RATED = "rated", "Rated"
        SKIPPED = "skipped", "Skipped"
        EXPIRED = "expired", "Expired"

    # Indexed by assignment_once_per_rater and assignment_rater_state (composite indexes they lead).
    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="assignments", db_index=False)
    rater = models.ForeignKey(Rater, on_delete=models.CASCADE, related_name="assignments", db_index=False)
    left_output = models.ForeignKey(Output, on_delete=models.CASCADE, related_name="+")
    state = models.CharField(max_length=10, choices=State.choices, default=State.LEASED)
    lease_expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["comparison", "rater"], name="assignment_once_per_rater"),
        ]
        indexes = [
            models.Index(fields=["comparison", "state"], name="assignment_comparison_state"),
            models.Index(fields=["rater", "state"], name="assignment_rater_state"),
            # Expired leases are found by the claim itself, oldest first.
            models.Index(fields=["lease_expires_at"], condition=Q(state="leased"), name="assignment_live_lease_idx"),
        ]

    def __str__(self) -> str:
        return f"assignment #{self.pk}"


class Rating(models.Model):
    """One rater's verdict on a comparison: the winning output (not a side) and what was shown on the left."""

    class Source(models.TextChoices):
        ANNOTATOR = "annotator", "Annotator in the platform"
        JUDGE = "judge", "LLM judge"
        IMPORT = "import", "Imported"

    # Indexed by rating_once_per_rater_and_order (which leads with comparison) and rating_rater_idx.
    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="ratings", db_index=False)
    rater = models.ForeignKey(Rater, on_delete=models.PROTECT, related_name="ratings", db_index=False)
    rater_kind = models.CharField(max_length=5, choices=Rater.Kind.choices, editable=False)
    source = models.CharField(max_length=10, choices=Source.choices)
    assignment = models.OneToOneField(
        Assignment, null=True, blank=True, on_delete=models.PROTECT, related_name="rating"
    )
    verdict = models.CharField(max_length=10, choices=Verdict.choices)
    winner = models.ForeignKey(Output, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    left_output = models.ForeignKey(Output, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    strength = models.PositiveSmallIntegerField(null=True, blank=True)
    rationale = models.TextField(blank=True)
    time_ms = models.PositiveIntegerField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(verdict="win", winner__isnull=False) | (~Q(verdict="win") & Q(winner__isnull=True)),
                name="rating_winner_iff_win",
            ),
            # One rating per annotator and comparison for ratings given in the platform; judges and imported
            # raters (MT-Bench authors voted both orders) may rate each order once.
            models.UniqueConstraint(
                fields=["comparison", "rater"],
                condition=Q(source="annotator"),
                name="rating_once_per_annotator",
            ),
            models.UniqueConstraint(
                fields=["comparison", "rater", "left_output"],
                nulls_distinct=False,
                name="rating_once_per_rater_and_order",
            ),
            models.CheckConstraint(
                condition=~Q(source="judge") | Q(rater_kind="judge"), name="rating_judge_source_is_judge"
            ),
            models.CheckConstraint(
                condition=~Q(source="annotator") | Q(rater_kind="human", assignment__isnull=False),
                name="rating_annotator_has_assignment",
            ),
            models.CheckConstraint(condition=Q(time_ms__gte=0) | Q(time_ms__isnull=True), name="rating_time_ms"),
        ]
        indexes = [
            models.Index(fields=["rater"], name="rating_rater_idx"),
            models.Index(fields=["created_at"], name="rating_created_idx"),
        ]

    def __str__(self) -> str:
        return f"rating #{self.pk}"


class AnnotatorStatus(models.Model):
    """One annotator's standing in one campaign: ratings given, gold accuracy, and whether they are paused."""

    campaign = models.ForeignKey(  # annotator_status_once_per_campaign
        Campaign, on_delete=models.CASCADE, related_name="annotator_statuses", db_index=False
    )
    rater = models.ForeignKey(Rater, on_delete=models.CASCADE, related_name="campaign_statuses")
    rated_count = models.PositiveIntegerField(default=0, help_text="Ratings given in this campaign, gold included.")
    gold_answered = models.PositiveIntegerField(default=0)
    gold_correct = models.PositiveIntegerField(default=0)
    paused = models.BooleanField(default=False, help_text="A paused annotator gets no more comparisons here.")
    paused_reason = models.TextField(blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    excluded = models.BooleanField(
        default=False,
        help_text="An excluded rater's ratings are kept but left out of results (annotation.rater_actions).",
    )
    excluded_reason = models.TextField(blank=True)
    excluded_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["campaign", "rater"]
        verbose_name_plural = "annotator statuses"
        constraints = [
            models.UniqueConstraint(fields=["campaign", "rater"], name="annotator_status_once_per_campaign"),
            models.CheckConstraint(condition=Q(gold_correct__lte=F("gold_answered")), name="annotator_gold_correct"),
            models.CheckConstraint(condition=Q(gold_answered__lte=F("rated_count")), name="annotator_gold_answered"),
            models.CheckConstraint(
                condition=Q(paused=True, paused_at__isnull=False) & ~Q(paused_reason="")
                | Q(paused=False, paused_at__isnull=True, paused_reason=""),
                name="annotator_paused_has_reason",
            ),
            models.CheckConstraint(
                condition=Q(excluded=True, excluded_at__isnull=False) & ~Q(excluded_reason="")
                | Q(excluded=False, excluded_at__isnull=True, excluded_reason=""),
                name="annotator_excluded_has_reason",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rater} in {self.campaign}"

    @property
    def gold_accuracy(self) -> float | None:
        return self.gold_correct / self.gold_answered if self.gold_answered else None


class RaterAction(models.Model):
    """One researcher's action on a rater in a campaign (pause, resume, exclude, include): the audit trail.

    Written only by annotation.rater_actions, in the transaction that changes the AnnotatorStatus; never edited.
    """

    class Kind(models.TextChoices):
        PAUSE = "pause", "Paused"
        RESUME = "resume", "Resumed"
        EXCLUDE = "exclude", "Excluded from results"
        INCLUDE = "include", "Included again"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="rater_actions")
    rater = models.ForeignKey(Rater, on_delete=models.CASCADE, related_name="actions")
    action = models.CharField(max_length=10, choices=Kind.choices)
    reason = models.TextField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+", help_text="Who acted."
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.CheckConstraint(condition=~Q(reason=""), name="rater_action_has_reason")]

    def __str__(self) -> str:
        return f"{self.get_action_display()}: {self.rater} in {self.campaign}"


class SignInFailures(models.Model):
    """Failed sign-ins (passwords, API tokens) counted per account or client address, in a fixed window.

    Written only by evalplatform.throttle (one upsert per failure); rows whose window has ended are deleted there.
    """

    key = models.CharField(primary_key=True, max_length=200, help_text="account:<username> or address:<IP>.")
    failures = models.PositiveIntegerField()
    window_started_at = models.DateTimeField(db_index=True, help_text="First failure of the current window.")

    class Meta:
        verbose_name_plural = "sign-in failures"

    def __str__(self) -> str:
        return f"{self.key}: {self.failures} failures since {self.window_started_at:%Y-%m-%d %H:%M}"


class ImportJob(models.Model):
    """A file checked (dry run) or imported by a Celery worker, with its progress and outcome for the admin page.

    Written only by annotation.importers.jobs: created queued, claimed by one worker (queued -> running), then
    done, refused (with the file's line errors) or failed (with the reason).
    """

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        REFUSED = "refused"
        FAILED = "failed"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="import_jobs")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=20, help_text="outputs, battles, alpaca_eval or gold.")
    file_name = models.CharField(max_length=255)
    token = models.TextField(help_text="The signed token of the staged upload (annotation.importers.staging).")
    dry_run = models.BooleanField(help_text="A check with counts (the preview); else the import itself.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    phase = models.CharField(max_length=10, blank=True, help_text="reading or writing, while running.")
    size_bytes = models.BigIntegerField()
    read_bytes = models.BigIntegerField(default=0)
    summary = models.JSONField(default=dict, blank=True, help_text="What the file holds and what is (or would be) new.")
    errors = models.JSONField(default=list, blank=True, help_text="The first line errors of a refused file.")
    error_total = models.PositiveIntegerField(default=0)
    message = models.TextField(blank=True, help_text="Why the job failed.")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(read_bytes__gte=0, size_bytes__gte=0), name="import_job_sizes_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(status__in=["queued", "running"], finished_at__isnull=True)
                | Q(status__in=["done", "refused", "failed"], finished_at__isnull=False),
                name="import_job_finished_when_over",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} import of {self.file_name} ({self.status})"

    @property
    def percent(self) -> int:
        """Return how much of the file has been read, 0 to 100."""
        return min(100, self.read_bytes * 100 // self.size_bytes) if self.size_bytes else 100


class IdempotencyKey(models.Model):
    """A write of the research API done under an `Idempotency-Key`, and its answer, given again to a retry.

    Written only by annotation.research.idempotency, in the transaction of the write itself; kept 24 hours.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    request_digest = models.CharField(max_length=64, help_text="sha256 of the method, path, query and body.")
    status_code = models.PositiveSmallIntegerField()
    response = models.JSONField(null=True)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotency_key_once_per_user")]

    def __str__(self) -> str:
        return f"{self.key} ({self.status_code})"
