"""Judge a campaign's comparisons with an LLM judge, through Celery workers."""

from __future__ import annotations

import time
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from annotation.models import Campaign
from evalplatform.exceptions import DomainError
from judging import selectors, services
from judging.models import JudgeConfig, JudgeRun

BAR_WIDTH = 30


class Command(BaseCommand):
    help = "Start a judge run over a campaign (both orders by default); --wait shows progress until it ends."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("campaign", help="campaign slug")
        parser.add_argument("--judge", required=True, help="judge name (see add_judge)")
        parser.add_argument("--limit", type=int, help="judge at most this many comparisons")
        parser.add_argument("--wait", action="store_true", help="show progress until the run ends")
        parser.add_argument("--resume", type=int, metavar="RUN_ID", help="resume this run instead of starting one")
        parser.add_argument("--retry-failed", action="store_true", help="with --resume: retry failed verdicts too")
        parser.add_argument("--poll", type=float, default=1.0, help="seconds between progress updates")

    def handle(self, *args: Any, **options: Any) -> None:
        run = self._run(options)
        progress = selectors.run_progress(run)
        self.stdout.write(f"run #{run.pk}: {run.judge} on {run.campaign.slug}, {progress.total} verdicts")
        if options["wait"]:
            self._wait(run, options["poll"])

    def _run(self, options: dict[str, Any]) -> JudgeRun:
        campaign = Campaign.objects.filter(slug=options["campaign"]).first()
        if campaign is None:
            raise CommandError(f"campaign: no campaign with slug {options['campaign']!r}")
        judge = JudgeConfig.objects.filter(name=options["judge"]).first()
        if judge is None:
            raise CommandError(f"--judge: no judge named {options['judge']!r} (create it with add_judge)")
        try:
            if options["resume"] is not None:
                run = JudgeRun.objects.filter(pk=options["resume"], campaign=campaign, judge=judge).first()
                if run is None:
                    raise CommandError(f"--resume: no run #{options['resume']} of {judge} on {campaign.slug}")
                return services.resume_run(run=run, retry_failed=options["retry_failed"])
            return services.start_run(campaign=campaign, judge=judge, limit=options["limit"])
        except DomainError as exc:
            raise CommandError(exc.message) from exc

    def _wait(self, run: JudgeRun, poll: float) -> None:
        while True:
            run.refresh_from_db()
            progress = selectors.run_progress(run)
            self._draw(progress)
            if run.status != JudgeRun.Status.RUNNING:
                break
            time.sleep(poll)
        self.stdout.write("")
        consistency = selectors.position_consistency(run.judge, run=run)
        rate = "n/a" if consistency.rate is None else f"{consistency.rate:.1%}"
        self.stdout.write(
            f"run #{run.pk} {run.status}: {progress.done} judged, {progress.parse_failed} unparseable, "
            f"{progress.failed} failed, {progress.from_cache} from cache; tokens {progress.tokens_in} in / "
            f"{progress.tokens_out} out, cost {progress.cost}; position consistency {rate} "
            f"({len(consistency.inconsistent_comparison_ids)} inconsistent of {consistency.pairs})"
        )
        if run.error:
            self.stdout.write(f"error: {run.error}")
        if run.status == JudgeRun.Status.FAILED:
            raise CommandError(f"run #{run.pk} failed")

    def _draw(self, progress: selectors.RunProgress) -> None:
        share = progress.finished / progress.total if progress.total else 1.0
        filled = int(share * BAR_WIDTH)
        line = (
            f"\r[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {progress.finished}/{progress.total} "
            f"ok {progress.done} unparseable {progress.parse_failed} failed {progress.failed} "
            f"in flight {progress.claimed}"
        )
        # A carriage return redraws the bar on a terminal; in a log one line per poll is easier to read.
        tty = self.stdout.isatty()
        self.stdout.write(line if tty else line.lstrip("\r"), ending="" if tty else "\n")
