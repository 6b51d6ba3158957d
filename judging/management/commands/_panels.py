"""``manage.py judge CAMPAIGN --panel NAME [--wait]``: start, watch, cancel or resume a judge panel's run."""

from __future__ import annotations

import time
from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError

from annotation.models import Campaign
from evalplatform.exceptions import Conflict, DomainError
from judging import panels, selectors, services
from judging.models import JudgePanel, JudgeRun, PanelRun

sleep = time.sleep  # between polls; tests put a stand-in worker here


def handle_panel(command: BaseCommand, campaign: Campaign, user: User | None, options: dict[str, Any]) -> None:
    """Act on the panel named by --panel: --cancel, --resume or --watch a panel run, or start one."""
    panel = JudgePanel.objects.filter(name=options["panel"]).first()
    if panel is None or not panels.may_use_panel(user, panel):
        raise CommandError(f"--panel: no judge panel named {options['panel']!r} that you may use")
    if options["judge"] or options["repeat"] is not None or options["seed"] is not None:
        raise CommandError("--panel: runs its members' judges; --judge, --repeat and --seed do not apply")
    try:
        if options["cancel"] is not None:
            run = panels.cancel_panel_run(run=existing(campaign, panel, options["cancel"], "--cancel"))
            command.stdout.write(f"panel run #{run.pk} cancelled, and its members' runs still going")
            return
        if options["resume"] is not None:
            run = existing(campaign, panel, options["resume"], "--resume")
            run = panels.resume_panel_run(run=run, retry_failed=options["retry_failed"])
        elif options["watch"] is not None:
            run = existing(campaign, panel, options["watch"], "--watch")
        else:
            run = panels.start_panel_run(
                campaign=campaign, panel=panel, limit=options["limit"], orders=options["orders"], requested_by=user
            )
    except DomainError as exc:
        raise option_error(exc) from exc
    runs = ", ".join(f"#{r.pk} {r.judge.name}" for r in run.member_runs.select_related("judge").order_by("pk"))
    command.stdout.write(
        f"panel run #{run.pk}: {panel.name} on {campaign.slug} ({panel.aggregation}); member runs {runs}"
    )
    if options["wait"] or options["watch"] is not None:
        wait(command, run, options)


def option_error(exc: DomainError) -> CommandError:
    """Return a judging service's refusal with its field written as ``manage.py judge``'s option (``--limit: ...``)."""
    field = exc.field or ""
    if field in ("judge", "panel", "limit", "orders", "seed") and exc.message.startswith(f"{field}: "):
        return CommandError(f"--{exc.message}")
    return CommandError(exc.message)


def existing(campaign: Campaign, panel: JudgePanel, run_id: int, option: str) -> PanelRun:
    """Return the panel's run on the campaign, or raise CommandError naming the option."""
    run = PanelRun.objects.filter(pk=run_id, campaign=campaign, panel=panel).first()
    if run is None:
        raise CommandError(f"{option}: no panel run #{run_id} of {panel.name} on {campaign.slug}")
    return run


def wait(command: BaseCommand, run: PanelRun, options: dict[str, Any]) -> None:
    """Show progress until the panel run ends, finishing it here and resuming member runs whose worker died."""
    covered: dict[int, Any] = {}
    last = ""
    while True:
        panels.finish_panel_run_if_done(run_id=run.pk)
        run.refresh_from_db()
        progress = panels.panel_progress(run)
        line = (
            f"{progress.finished}/{progress.total} member verdicts, tokens "
            f"{progress.tokens_in + progress.tokens_out}, cost {progress.cost:.4f} ({run.status})"
        )
        if line != last:
            command.stdout.write(line)
            last = line
        if run.status != PanelRun.Status.RUNNING:
            break
        resume_stalled(command, run, covered, options)
        sleep(options["poll"])
    summary(command, run)


def resume_stalled(command: BaseCommand, run: PanelRun, covered: dict[int, Any], options: dict[str, Any]) -> None:
    """Resume each member run with claims that outlived their lease (a worker died), as ``judge --wait`` does."""
    for member_run in run.member_runs.filter(status=JudgeRun.Status.RUNNING):
        health = selectors.run_health(member_run, current=services.now(), covered_until=covered.get(member_run.pk))
        if not health.uncovered_expired_claims:
            continue
        why = f"{health.uncovered_expired_claims} claimed verdict(s) outlived their lease (a worker died?)"
        if options["no_auto_resume"]:
            command.stdout.write(f"stalled: member run #{member_run.pk}: {why}")
            continue
        try:
            services.resume_run(run=member_run)
        except Conflict:
            continue
        covered[member_run.pk] = health.last_lease_end
        command.stdout.write(f"resumed member run #{member_run.pk}: {why}")


def summary(command: BaseCommand, run: PanelRun) -> None:
    """Write the panel run's outcome; raise CommandError when it did not complete."""
    command.stdout.write(
        f"panel run #{run.pk} {run.status}: {run.n_verdicts} panel verdicts; members' tokens {run.tokens_in} in / "
        f"{run.tokens_out} out, cost {run.cost}"
    )
    if run.status == PanelRun.Status.COMPLETED:
        return
    raise CommandError(
        f"panel run #{run.pk} {run.status}: {run.error or 'see its member runs'}; resume it with: manage.py judge "
        f"{run.campaign.slug} --panel {run.panel.name} --resume {run.pk} --wait"
    )
