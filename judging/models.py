"""LLM judge configurations, runs and verdicts (issue 5).

A judge is a rater: its JudgeConfig owns an annotation.Rater of kind "judge", and every parsed verdict becomes an
annotation.Rating of that rater, so agreement figures and leaderboards treat judges and humans alike.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q

from annotation.models import Campaign, Comparison, Rater, Rating


class ModelFamily(models.Model):
    """A family of models (one vendor's line, e.g. GPT or Claude), for the judge report's self-preference audit.

    A model belongs to the first family (by name) one of whose patterns matches its name; a judge to its own
    `family` when set, else to the family of its model's name.
    """

    name = models.CharField(max_length=100, unique=True)
    patterns = models.TextField(
        help_text="One pattern a line, matched against whole model names, case-insensitive, with shell wildcards "
        "(* and ?): e.g. gpt-4* and chatgpt-*."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "model families"

    def __str__(self) -> str:
        return self.name

    def pattern_list(self) -> list[str]:
        """Return the non-empty patterns, stripped."""
        return [line.strip() for line in self.patterns.splitlines() if line.strip()]


class JudgeConfig(models.Model):
    """How to ask one model at one OpenAI-compatible endpoint to judge a pair of outputs."""

    class Template(models.TextChoices):
        MT_BENCH = "mt_bench", "MT-Bench pairwise ([[A]] / [[B]] / [[C]])"
        MT_BENCH_REFERENCE = "mt_bench_reference", "MT-Bench pairwise with a reference answer"
        ARENA_HARD = "arena_hard", "Arena-Hard ([[A>>B]] ... [[B>>A]], strength kept)"
        PROBABILITY = "probability", "Probability that the first answer is better ([[P=0.73]])"
        CUSTOM = "custom", "Custom template"

    class VerdictFormat(models.TextChoices):
        PATTERN = "pattern", "Regular expression over the reply"
        JSON = "json", "JSON reply (structured output)"
        PROBABILITY = "probability", "Probability that the first answer is better (a number from 0 to 1)"

    name = models.CharField(max_length=200, unique=True)
    # Who may change it; empty for an operator's judge (made by a superuser or a management command), which every
    # researcher may use and only superusers change. Researchers use their own judges and the operator's.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="judges",
        help_text="Empty: an operator's judge, usable by every researcher, changed only by superusers.",
    )  # fmt: skip
    rater = models.OneToOneField(Rater, on_delete=models.PROTECT, related_name="judge_config", editable=False)
    # Always "judge": with the composite foreign key of migration 0002 it makes the rater a judge rater.
    rater_kind = models.CharField(max_length=5, default=Rater.Kind.JUDGE, editable=False)
    base_url = models.URLField(max_length=500, help_text="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8001/v1")
    model = models.CharField(max_length=200)
    api_key_env = models.CharField(
        max_length=100,
        blank=True,
        help_text="NAME of the environment variable holding the API key in the worker (the key is never stored). "
        "Empty: no key (local servers).",
    )
    template = models.CharField(max_length=20, choices=Template.choices, default=Template.MT_BENCH)
    system_prompt = models.TextField(blank=True, help_text="Empty: the built-in template's system prompt.")
    custom_template = models.TextField(
        blank=True, help_text="For custom templates: user message with {question}, {answer_a}, {answer_b}, {reference}."
    )
    verdict_format = models.CharField(
        max_length=12,
        choices=VerdictFormat.choices,
        default=VerdictFormat.PATTERN,
        help_text="For custom templates: how the verdict is read from the reply.",
    )
    verdict_pattern = models.CharField(
        max_length=500,
        blank=True,
        help_text="For custom pattern verdicts: a regex whose group 'verdict' (or group 1) captures A, B, C/tie, "
        "both_bad or an Arena-Hard label such as A>>B.",
    )
    temperature = models.FloatField(default=0.0)
    max_tokens = models.PositiveIntegerField(default=1024)
    both_orders = models.BooleanField(default=True, help_text="Judge each comparison with each output shown first.")
    max_concurrency = models.PositiveIntegerField(default=8, help_text="Calls in flight at once, across all workers.")
    requests_per_minute = models.PositiveIntegerField(default=600, help_text="Across all workers.")
    timeout_seconds = models.FloatField(default=60.0, help_text="Per call.")
    max_attempts = models.PositiveSmallIntegerField(default=5, help_text="Calls per verdict before it fails.")
    price_input_per_million = models.DecimalField(max_digits=10, decimal_places=4, default=Decimal(0))
    price_output_per_million = models.DecimalField(max_digits=10, decimal_places=4, default=Decimal(0))
    family = models.ForeignKey(
        ModelFamily, null=True, blank=True, on_delete=models.SET_NULL, related_name="judges",
        help_text="The family of the judge's model, for the self-preference audit. Empty: the family whose patterns "
        "match the model name.",
    )  # fmt: skip
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(rater_kind="judge"), name="judgeconfig_rater_is_judge"),
            models.CheckConstraint(condition=Q(temperature__gte=0, temperature__lte=2), name="judgeconfig_temperature"),
            models.CheckConstraint(condition=Q(max_tokens__gte=1), name="judgeconfig_max_tokens"),
            models.CheckConstraint(condition=Q(max_concurrency__gte=1), name="judgeconfig_max_concurrency"),
            models.CheckConstraint(condition=Q(requests_per_minute__gte=1), name="judgeconfig_requests_per_minute"),
            models.CheckConstraint(condition=Q(timeout_seconds__gt=0), name="judgeconfig_timeout"),
            models.CheckConstraint(condition=Q(max_attempts__gte=1), name="judgeconfig_max_attempts"),
            models.CheckConstraint(
                condition=~Q(template="custom") | ~Q(custom_template=""), name="judgeconfig_custom_has_template"
            ),
            models.CheckConstraint(
                condition=~Q(template="custom", verdict_format="pattern") | ~Q(verdict_pattern=""),
                name="judgeconfig_custom_pattern_has_regex",
            ),
            models.CheckConstraint(
                condition=Q(price_input_per_million__gte=0, price_output_per_million__gte=0),
                name="judgeconfig_prices_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class JudgeRun(models.Model):
    """One request to judge a campaign's comparisons with one judge."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        CANCELLED = "cancelled", "Cancelled"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="judge_runs")
    judge = models.ForeignKey(JudgeConfig, on_delete=models.PROTECT, related_name="runs")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    limit = models.PositiveIntegerField(null=True, blank=True, help_text="Most comparisons to judge; empty for all.")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    error = models.TextField(blank=True)
    # The judge's endpoint when the run started: the worker refuses to call another one (an edited judge must not
    # silently redirect runs already started). Empty on runs made without the service: not checked.
    base_url = models.CharField(max_length=500, blank=True, editable=False)
    model = models.CharField(max_length=200, blank=True, editable=False)
    api_key_env = models.CharField(max_length=100, blank=True, editable=False)
    # What the judge report groups and audits by: the judge's request-relevant settings when the run started
    # (judging.versions), the temperature and seed it sent, and the repeat: 0 for a run whose verdicts are ratings,
    # k >= 1 for the k-th stability repeat, whose verdicts bypass the call cache and never become ratings.
    config_version = models.CharField(max_length=16, blank=True, editable=False)
    temperature = models.FloatField(null=True, blank=True, editable=False)
    seed = models.BigIntegerField(null=True, blank=True, editable=False, help_text="Sent with each request when set.")
    repeat = models.PositiveSmallIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(limit__isnull=True) | Q(limit__gte=1), name="judgerun_limit_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.judge} on {self.campaign} (run #{self.pk})"


class JudgeVerdict(models.Model):
    """One judge's verdict on one comparison in one order; the unit of work a Celery task claims."""

    class Order(models.TextChoices):
        AB = "ab", "Output a shown as A"
        BA = "ba", "Output b shown as A"

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        CLAIMED = "claimed", "Claimed"
        DONE = "done", "Done"
        PARSE_FAILED = "parse_failed", "Parse failed"
        FAILED = "failed", "Failed"

    judge = models.ForeignKey(JudgeConfig, on_delete=models.PROTECT, related_name="verdicts")
    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="judge_verdicts")
    order = models.CharField(max_length=2, choices=Order.choices)
    run = models.ForeignKey(JudgeRun, null=True, on_delete=models.SET_NULL, related_name="verdicts")
    # 0: the verdict that becomes the judge's rating; k >= 1: the k-th stability repeat (its run's repeat).
    repeat = models.PositiveSmallIntegerField(default=0)
    state = models.CharField(max_length=12, choices=State.choices, default=State.PENDING)
    reason = models.TextField(blank=True, help_text="Why the verdict failed, or the last transient error.")
    attempts = models.PositiveSmallIntegerField(default=0)
    retry_at = models.DateTimeField(null=True, blank=True, help_text="Not claimed before this (backoff).")
    claimed_by = models.CharField(max_length=100, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    request_hash = models.CharField(max_length=64, blank=True)
    raw_response = models.TextField(blank=True)
    parsed = models.JSONField(null=True, blank=True, help_text="outcome A/B/tie/both_bad, strength, label.")
    probability = models.FloatField(
        null=True, blank=True, help_text="P(the answer shown first is better), from probability templates only."
    )
    rating = models.OneToOneField(Rating, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    tokens_in = models.PositiveIntegerField(default=0)
    tokens_out = models.PositiveIntegerField(default=0)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    cost = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal(0))
    cached = models.BooleanField(default=False, help_text="Answered from the call cache, not paid again.")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["judge", "comparison", "order", "repeat"], name="judgeverdict_once_per_order"
            ),
            models.CheckConstraint(
                condition=~Q(state="claimed") | Q(claimed_until__isnull=False), name="judgeverdict_claim_has_lease"
            ),
            models.CheckConstraint(
                condition=~Q(state="done") | Q(parsed__isnull=False), name="judgeverdict_done_is_parsed"
            ),
            models.CheckConstraint(
                condition=Q(probability__isnull=True) | Q(probability__gte=0, probability__lte=1),
                name="judgeverdict_probability_in_0_1",
            ),
        ]
        indexes = [
            models.Index(fields=["run", "state"], name="judgeverdict_run_state"),
            models.Index(
                fields=["judge", "claimed_until"], condition=Q(state="claimed"), name="judgeverdict_in_flight"
            ),
        ]

    def __str__(self) -> str:
        return f"verdict #{self.pk}"

    @property
    def shown_first_id(self) -> int:
        """Return the id of the output shown as A."""
        return self.comparison.output_a_id if self.order == self.Order.AB else self.comparison.output_b_id


class JudgeLimiter(models.Model):
    """Token bucket for one judge's request rate, shared by every worker through a row lock."""

    judge = models.OneToOneField(JudgeConfig, on_delete=models.CASCADE, primary_key=True, related_name="limiter")
    tokens = models.FloatField(default=1.0)
    refilled_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"limiter of {self.judge_id}"


class JudgeSlot(models.Model):
    """One of a judge's max_concurrency call slots, held under a lease by whoever is calling the judge."""

    judge = models.ForeignKey(JudgeConfig, on_delete=models.CASCADE, related_name="slots")
    slot = models.PositiveIntegerField()
    holder = models.CharField(max_length=100, blank=True)
    held_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["judge", "slot"], name="judgeslot_unique")]

    def __str__(self) -> str:
        return f"slot {self.slot} of {self.judge_id}"


class JudgeCaller(models.Model):
    """A batch of verdicts calling a judge, alive while it renews: the judge's slots are shared fairly among them."""

    judge = models.ForeignKey(JudgeConfig, on_delete=models.CASCADE, related_name="callers")
    holder = models.CharField(max_length=100)
    wants = models.PositiveIntegerField(help_text="Calls it could have in flight now.")
    alive_until = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["judge", "holder"], name="judgecaller_unique")]

    def __str__(self) -> str:
        return f"caller {self.holder} of {self.judge_id}"


class LLMCall(models.Model):
    """A stored chat completion keyed by the SHA-256 of its request; identical requests reuse it."""

    request_hash = models.CharField(max_length=64, primary_key=True)
    model = models.CharField(max_length=200)
    request = models.JSONField()
    response = models.JSONField()
    text = models.TextField(blank=True)
    finish_reason = models.CharField(max_length=40, blank=True)
    tokens_in = models.PositiveIntegerField(default=0)
    tokens_out = models.PositiveIntegerField(default=0)
    latency_ms = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "LLM call"

    def __str__(self) -> str:
        return self.request_hash[:12]


class JudgePanel(models.Model):
    """Several judge configurations rating as one rater: their verdicts combined per comparison and order.

    The panel owns an annotation.Rater of kind "judge", whose ratings are the panel's verdicts (judging.panels).
    Owners as for JudgeConfig: empty for an operator's panel.
    """

    class Aggregation(models.TextChoices):
        MAJORITY = "majority", "Majority of the members' verdicts"
        MEAN_PROBABILITY = "mean_probability", "Mean of the members' probabilities (templates that yield one)"

    name = models.CharField(max_length=200, unique=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="judge_panels",
        help_text="Empty: an operator's panel, usable by every researcher, changed only by superusers.",
    )  # fmt: skip
    rater = models.OneToOneField(Rater, on_delete=models.PROTECT, related_name="judge_panel", editable=False)
    members = models.ManyToManyField(JudgeConfig, related_name="panels")
    aggregation = models.CharField(max_length=20, choices=Aggregation.choices, default=Aggregation.MAJORITY)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class PanelRun(models.Model):
    """One request to judge a campaign's comparisons with a panel: its members' runs, then the panel's verdicts."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running (members judging)"
        CANCELLED = "cancelled", "Cancelled"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"

    panel = models.ForeignKey(JudgePanel, on_delete=models.PROTECT, related_name="runs")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="panel_runs")
    member_runs = models.ManyToManyField(JudgeRun, related_name="panel_runs")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    limit = models.PositiveIntegerField(null=True, blank=True, help_text="Most comparisons to judge; empty for all.")
    orders = models.CharField(max_length=4, blank=True, help_text="both, one, or empty for each judge's own.")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    error = models.TextField(blank=True)
    # Written when the run finishes: the panel's verdicts and what its members' verdicts on them cost.
    n_verdicts = models.PositiveIntegerField(default=0)
    tokens_in = models.PositiveBigIntegerField(default=0)
    tokens_out = models.PositiveBigIntegerField(default=0)
    cost = models.DecimalField(max_digits=14, decimal_places=6, default=Decimal(0))
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(limit__isnull=True) | Q(limit__gte=1), name="panelrun_limit_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.panel} on {self.campaign} (panel run #{self.pk})"


class PanelVerdict(models.Model):
    """A panel's verdict on one comparison in one order, with its members' votes and what they cost."""

    panel = models.ForeignKey(JudgePanel, on_delete=models.CASCADE, related_name="verdicts")
    run = models.ForeignKey(PanelRun, on_delete=models.CASCADE, related_name="verdicts")
    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="+")
    order = models.CharField(max_length=2, choices=JudgeVerdict.Order.choices)
    outcome = models.CharField(max_length=8, help_text="A, B, tie or both_bad (A: the output shown first).")
    votes = models.JSONField(help_text="Each member judge's outcome, by name.")
    probability = models.FloatField(
        null=True, blank=True, help_text="mean_probability panels: the mean of the members' probabilities."
    )
    rating = models.OneToOneField(Rating, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    tokens_in = models.PositiveIntegerField(default=0)
    tokens_out = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal(0))

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["panel", "comparison", "order"], name="panelverdict_once_per_order"),
        ]

    def __str__(self) -> str:
        return f"panel verdict #{self.pk}"
