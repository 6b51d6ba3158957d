"""Judge a campaign's comparisons with an LLM judge, through Celery workers; watch, cancel or resume a run."""

from __future__ import annotations

import argparse
import time
from argparse import ArgumentParser
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError

from annotation.models import Campaign
from evalplatform.exceptions import Conflict, DomainError
from judging import selectors, services
from judging.management.commands._panels import handle_panel, option_error
from judging.models import JudgeConfig, JudgeRun, JudgeVerdict
from results.access import researcher_campaigns

BAR_WIDTH = 30
MAX_REPEATS = 20  # stability repeats started at once (each pays for every verdict again)
MAX_SECONDS = 86_400.0  # --poll and --stall-seconds
LOG_EVERY_SECONDS = 10.0  # without a terminal: a line when the counts change, else one this often
sleep = time.sleep  # between polls; tests put a stand-in worker here


@dataclass
class Watch:
    """What --wait remembers between polls: when it began, the last counts seen and when they last changed."""

    started: float
    finished_at_start: int
    counts: tuple[int, ...] = ()
    changed: float = 0.0
    logged: float = 0.0
    reported: float | None = None  # when a stall was last reported (without auto-resume)
    covered_until: datetime | None = None  # the last lease a resume already took care of
    line: str = ""


class Command(BaseCommand):
    help = (
        "Start a judge run over a campaign (both orders by default); --wait shows progress until it ends, resuming "
        "the run when a worker died. --watch, --cancel and --resume act on an existing run."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("campaign", help="campaign slug")
        parser.add_argument("--judge", help="judge name (see add_judge); needed to start a run")
        parser.add_argument(
            "--panel",
            metavar="NAME",
            help="a judge panel instead of a judge: start (or --watch, --cancel, --resume) a panel run, which runs "
            "every member judge and writes the panel's verdicts once they end",
        )
        parser.add_argument(
            "--requested-by",
            metavar="USERNAME",
            help="act for this user: the campaign must be theirs and the judge one they may use (default: the "
            "operator, who may use any judge)",
        )
        parser.add_argument("--limit", type=int, help="judge at most this many comparisons")
        parser.add_argument(
            "--orders", choices=services.ORDERS, help="both orders or one per comparison (default: the judge's)"
        )
        parser.add_argument("--seed", type=int, help="send this seed with each request, recorded on the run")
        parser.add_argument(
            "--repeat",
            type=int,
            metavar="K",
            help="start K stability repeats instead of a run: every verdict judged again, bypassing the call "
            "cache, kept for the judge report and never a rating (with --seed S, repeat i sends S + i)",
        )
        parser.add_argument("--wait", action="store_true", help="show progress until the run ends")
        act = parser.add_mutually_exclusive_group()
        act.add_argument("--resume", type=int, metavar="RUN_ID", help="resume this run instead of starting one")
        act.add_argument("--watch", type=int, metavar="RUN_ID", help="show this run's progress until it ends")
        act.add_argument("--cancel", type=int, metavar="RUN_ID", help="cancel this run")
        parser.add_argument("--retry-failed", action="store_true", help="with --resume: retry failed verdicts too")
        parser.add_argument("--poll", type=_seconds, default=1.0, help="seconds between progress updates")
        parser.add_argument(
            "--stall-seconds",
            type=_seconds,
            default=60.0,
            help="with --wait: resume when work is due, nothing is in flight and nothing moved for this long",
        )
        parser.add_argument(
            "--no-auto-resume", action="store_true", help="with --wait: only report stalled work, do not resume"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        campaign = Campaign.objects.filter(slug=options["campaign"]).first()
        if campaign is None:
            raise CommandError(f"campaign: no campaign with slug {options['campaign']!r}")
        user = self._user(options["requested_by"], campaign)
        if options["panel"] is not None:
            handle_panel(self, campaign, user, options)
            return
        judge = self._judge(options["judge"])
        if options["cancel"] is not None:
            self._cancel(self._existing(campaign, judge, options["cancel"], "--cancel"))
            return
        if options["watch"] is not None:
            run = self._existing(campaign, judge, options["watch"], "--watch")
        elif options["repeat"] is not None:
            for run in self._start_repeats(campaign, judge, options, user):
                self._started(run, campaign)
                if options["wait"]:
                    self._wait(run, options)
            return
        else:
            run = self._start_or_resume(campaign, judge, options, user)
            self._started(run, campaign)
        if options["wait"] or options["watch"] is not None:
            self._wait(run, options)

    def _started(self, run: JudgeRun, campaign: Campaign) -> None:
        progress = selectors.run_progress(run)
        if run.repeat:
            seed = "" if run.seed is None else f", seed {run.seed}"
            self.stdout.write(
                f"run #{run.pk}: repeat {run.repeat} of {run.judge} on {campaign.slug} (version {run.config_version}, "
                f"temperature {run.temperature:g}{seed}), {_plural(progress.total, 'verdict')}, cache bypassed"
            )
            return
        nothing = "; nothing new: the judge has already judged these comparisons" if not progress.total else ""
        self.stdout.write(
            f"run #{run.pk}: {run.judge} on {campaign.slug}, {_plural(progress.total, 'verdict')}"
            f"{_per_comparison(run)}{nothing}"
        )

    def _user(self, username: str | None, campaign: Campaign) -> User | None:
        if username is None:
            return None
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"--requested-by: no user named {username!r}")
        if not researcher_campaigns(user).filter(pk=campaign.pk).exists():
            raise CommandError(f"campaign: {username} is not a researcher of {campaign.slug!r}")
        return user

    def _judge(self, name: str | None) -> JudgeConfig | None:
        if name is None:
            return None
        judge = JudgeConfig.objects.filter(name=name).first()
        if judge is None:
            raise CommandError(f"--judge: no judge named {name!r} (create it with add_judge)")
        return judge

    def _existing(self, campaign: Campaign, judge: JudgeConfig | None, run_id: int, option: str) -> JudgeRun:
        runs = JudgeRun.objects.filter(pk=run_id, campaign=campaign).select_related("judge", "campaign")
        run = (runs if judge is None else runs.filter(judge=judge)).first()
        if run is None:
            of = f" of {judge}" if judge else ""
            raise CommandError(f"{option}: no run #{run_id}{of} on {campaign.slug}")
        return run

    def _start_or_resume(
        self, campaign: Campaign, judge: JudgeConfig | None, options: dict[str, Any], user: User | None
    ) -> JudgeRun:
        try:
            if options["resume"] is not None:
                run = self._existing(campaign, judge, options["resume"], "--resume")
                return services.resume_run(run=run, retry_failed=options["retry_failed"])
            if judge is None:
                raise CommandError("--judge: required to start a run (or give --resume, --watch or --cancel RUN_ID)")
            return services.start_run(
                campaign=campaign, judge=judge, limit=options["limit"], orders=options["orders"], requested_by=user,
                seed=options["seed"],
            )  # fmt: skip
        except DomainError as exc:
            raise option_error(exc) from exc

    def _start_repeats(
        self, campaign: Campaign, judge: JudgeConfig | None, options: dict[str, Any], user: User | None
    ) -> list[JudgeRun]:
        count, seed = options["repeat"], options["seed"]
        if judge is None:
            raise CommandError("--judge: required with --repeat")
        if not 1 <= count <= MAX_REPEATS:
            raise CommandError(f"--repeat: must be between 1 and {MAX_REPEATS}, not {count}")
        runs = []
        try:
            for i in range(count):
                run = services.start_run(
                    campaign=campaign, judge=judge, limit=options["limit"], orders=options["orders"],
                    requested_by=user, seed=None if seed is None else seed + i, repeat=True,
                )  # fmt: skip
                runs.append(run)
        except DomainError as exc:
            raise option_error(exc) from exc
        return runs

    def _cancel(self, run: JudgeRun) -> None:
        try:
            services.cancel_run(run=run)
        except Conflict as exc:
            raise CommandError(exc.message) from exc
        progress = selectors.run_progress(run)
        self.stdout.write(
            f"run #{run.pk} cancelled: {progress.finished} of {progress.total} verdicts finished, {progress.claimed} "
            f"calls in flight will finish; resume it with: {self._command(run)} --resume {run.pk} --wait"
        )

    # --- waiting ---------------------------------------------------------------------------------------------------

    def _wait(self, run: JudgeRun, options: dict[str, Any]) -> None:
        now = time.monotonic()
        watch = Watch(started=now, finished_at_start=selectors.run_progress(run).finished, changed=now)
        try:
            while True:
                run.refresh_from_db()
                progress = selectors.run_progress(run)
                self._draw(watch, progress)
                if run.status != JudgeRun.Status.RUNNING:
                    break
                self._keep_going(run, watch, options)
                sleep(options["poll"])
        except KeyboardInterrupt:
            self._end_line(watch)
            self.stdout.write(
                f"Stopped watching: run #{run.pk} keeps running in the workers (Ctrl-C does not cancel it).\n"
                f"  watch it:  {self._command(run)} --watch {run.pk}\n"
                f"  cancel it: {self._command(run)} --cancel {run.pk}\n"
                f"  resume it (after a cancel, or if its workers died): {self._command(run)} --resume {run.pk} --wait"
            )
            raise CommandError(f"stopped watching run #{run.pk}; it is still {run.status}", returncode=130) from None
        self._end_line(watch)
        self._summary(run, progress)

    def _keep_going(self, run: JudgeRun, watch: Watch, options: dict[str, Any]) -> None:
        """Resume the run when its work stalled: claims whose lease ended (a worker died), or nothing moving."""
        health = selectors.run_health(run, current=services.now(), covered_until=watch.covered_until)
        idle = time.monotonic() - watch.changed
        due = health.due_pending + health.expired_claims
        if health.uncovered_expired_claims:
            why = f"{health.uncovered_expired_claims} claimed verdict(s) outlived their lease (a worker died?)"
        elif not health.live_claims and due and idle >= options["stall_seconds"]:
            why = f"nothing moved for {idle:.0f} s with {due} verdict(s) due and none in flight (lost tasks, or is no "
            why += "worker running?)"
        else:
            return
        if options["no_auto_resume"]:
            if watch.reported is None or time.monotonic() - watch.reported >= options["stall_seconds"]:
                self._note(watch, f"stalled: {why}; resume with {self._command(run)} --resume {run.pk} --wait")
                watch.reported = time.monotonic()
            return
        try:
            services.resume_run(run=run)
        except Conflict:  # it ended meanwhile; the next poll sees that
            return
        # The resume re-sent the claims live until now for when their leases end: they need no second resume.
        watch.changed, watch.covered_until = time.monotonic(), health.last_lease_end
        self._note(watch, f"resumed run #{run.pk}: {why}")

    def _draw(self, watch: Watch, progress: selectors.RunProgress) -> None:
        now = time.monotonic()
        counts = (progress.done, progress.parse_failed, progress.failed, progress.claimed, progress.pending)
        if counts != watch.counts:
            watch.counts, watch.changed = counts, now
        share = progress.finished / progress.total if progress.total else 1.0
        filled = int(share * BAR_WIDTH)
        elapsed = now - watch.started
        rate = (progress.finished - watch.finished_at_start) / elapsed if elapsed > 0 else 0.0
        left = progress.total - progress.finished
        eta = _duration(left / rate) if rate > 0 and left else "-"
        line = (
            f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {progress.finished}/{progress.total} {share:.0%} "
            f"ok {progress.done} unparseable {progress.parse_failed} failed {progress.failed} "
            f"in flight {progress.claimed} | {rate:.1f}/s eta {eta} | tokens {progress.tokens_in + progress.tokens_out}"
            f" cost {progress.cost:.4f} | {_duration(elapsed)}"
        )
        if self.stdout.isatty():  # redraw in place
            self.stdout.write(f"\r{line}\x1b[K", ending="")
            self.stdout.flush()
        elif watch.changed == now or now - watch.logged >= LOG_EVERY_SECONDS:  # in a log: lines worth reading
            self.stdout.write(line)
            watch.logged = now
        watch.line = line

    def _note(self, watch: Watch, message: str) -> None:
        self._end_line(watch)
        self.stdout.write(message)

    def _end_line(self, watch: Watch) -> None:
        if self.stdout.isatty() and watch.line:
            self.stdout.write("")
            watch.line = ""

    def _summary(self, run: JudgeRun, progress: selectors.RunProgress) -> None:
        consistency = selectors.position_consistency(run.judge, run=run)
        rate = "n/a" if consistency.rate is None else f"{consistency.rate:.1%}"
        latency = "-" if progress.mean_latency_ms is None else f"{progress.mean_latency_ms:.0f} ms"
        self.stdout.write(
            f"run #{run.pk} {run.status}: {progress.done} judged, {progress.parse_failed} unparseable, "
            f"{progress.failed} failed, {progress.pending} pending, {progress.from_cache} from cache; tokens "
            f"{progress.tokens_in} in / {progress.tokens_out} out, cost {progress.cost}, mean latency {latency}; "
            f"position consistency {rate} ({len(consistency.inconsistent_comparison_ids)} inconsistent of "
            f"{consistency.pairs})"
        )
        if run.error:
            self.stdout.write(f"error: {run.error}")
        for reason, n in selectors.recent_errors(run):
            self.stdout.write(f"  {n} x {reason}")
        if progress.failed and run.status == JudgeRun.Status.COMPLETED:
            self.stdout.write(f"retry the failures: {self._command(run)} --resume {run.pk} --retry-failed --wait")
        if run.status == JudgeRun.Status.FAILED:
            raise CommandError(f"run #{run.pk} failed")
        if run.status == JudgeRun.Status.CANCELLED:
            raise CommandError(
                f"run #{run.pk} was cancelled with {progress.pending} verdict(s) pending; resume it with: "
                f"{self._command(run)} --resume {run.pk} --wait"
            )

    def _command(self, run: JudgeRun) -> str:
        return f"manage.py judge {run.campaign.slug}"


def _per_comparison(run: JudgeRun) -> str:
    """Return how the run's verdicts stand to its comparisons: ``(20 comparisons in both orders)``."""
    verdicts = JudgeVerdict.objects.filter(run=run)
    total = verdicts.count()
    comparisons = verdicts.values("comparison_id").distinct().count()
    if not total:
        return ""
    if total == 2 * comparisons:
        return f" ({_plural(comparisons, 'comparison')} in both orders)"
    if total == comparisons:
        return f" ({_plural(comparisons, 'comparison')}, one order each)"
    return f" (over {_plural(comparisons, 'comparison')}: both orders, less those this judge already gave)"


def _seconds(text: str) -> float:
    """Parse --poll and --stall-seconds: a number of seconds from 0 to a day."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 <= value <= MAX_SECONDS:  # also refuses nan; time.sleep refuses a negative one with a traceback
        raise argparse.ArgumentTypeError(f"must be 0 to {MAX_SECONDS:g} seconds, not {text}")
    return value


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _duration(seconds: float) -> str:
    """Return seconds as H:MM:SS or M:SS."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
