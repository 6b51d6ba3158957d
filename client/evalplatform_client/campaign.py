"""A campaign's whole lifecycle: settings, uploads, comparisons, annotators, status, judge and panel runs (its
results: evalplatform_client.results)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from evalplatform_client import errors
from evalplatform_client._http import Upload
from evalplatform_client.progress import Progress
from evalplatform_client.results import CampaignResults, ExportResult
from evalplatform_client.runs import JudgeRun, PanelRun

if TYPE_CHECKING:
    from evalplatform_client.client import Client

__all__ = ["Campaign", "ExportResult"]

Status = Literal["active", "paused", "closed"]
IMPORT_ENDED = ("done", "refused", "failed")


class Campaign(CampaignResults):
    """One campaign, by slug. `data` is the last answer the server gave about it."""

    def __init__(self, client: Client, slug: str, data: dict[str, Any]) -> None:
        self.client = client
        self.slug = slug
        self.data = data
        self.path = f"research/campaigns/{quote(slug, safe='')}/"

    def __repr__(self) -> str:
        return f"<Campaign {self.slug} {self.data.get('status', '?')}>"

    @property
    def status(self) -> str | None:
        return self.data.get("status")

    def refresh(self) -> Campaign:
        """Read the campaign again (its summary: status, prompts, models, ratings) and return it."""
        self.data = self._json("GET")
        return self

    def update(self, **fields: Any) -> Campaign:
        """Change the fields given (PATCH) and return the campaign with all its settings."""
        self.data = self._json("PATCH", json=fields)
        return self

    # --- uploads ------------------------------------------------------------------------------------------------

    def upload_outputs(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        records: list[dict[str, Any]] | None = None,
        dry_run: bool = False,
        wait: bool = True,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Import outputs from a file (any importer format) or a list of records, and return the import summary.

        A large file is imported by a worker (202): with `wait`, the job is followed until it ends and its
        summary returned (ImportRefused with its bad lines if refused); without, the job is returned.
        """
        return self._upload("outputs/", path, records, dry_run=dry_run, wait=wait, timeout=timeout)

    def upload_gold(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        records: list[dict[str, Any]] | None = None,
        dry_run: bool = False,
        wait: bool = True,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Import gold answers (`prompt_id`, `model_a`, `model_b`, `gold`) as `upload_outputs` does outputs."""
        return self._upload("gold/", path, records, dry_run=dry_run, wait=wait, timeout=timeout)

    def _upload(
        self,
        route: str,
        path: str | os.PathLike[str] | None,
        records: list[dict[str, Any]] | None,
        *,
        dry_run: bool,
        wait: bool,
        timeout: float | None,
    ) -> dict[str, Any]:
        if (path is None) == (records is None):
            raise TypeError("give either a path or records")
        params = {"dry_run": 1 if dry_run else None}
        upload = Upload(os.fspath(path), self.client.progress) if path is not None else None
        response = self.client.session.request(
            "POST",
            self.path + route,
            params=params,
            json={"records": records} if records is not None else None,
            upload=upload,
            idempotency_key=True,
        )
        body: dict[str, Any] = response.json()
        if response.status_code == 202 and wait:
            return self.wait_for_import(int(body["id"]), timeout=timeout)
        return body

    def import_job(self, job_id: int) -> dict[str, Any]:
        """Return a background import: `status` (queued, running, done, refused, failed), `percent`, `summary`."""
        result: dict[str, Any] = self._json("GET", f"imports/{int(job_id)}/")
        return result

    def wait_for_import(self, job_id: int, *, timeout: float | None = None) -> dict[str, Any]:
        """Follow a background import until it ends; return its summary, or raise ImportRefused / APIError."""
        job = self.client.wait_until(
            lambda: self.import_job(job_id),
            ended=lambda job: job["status"] in IMPORT_ENDED,
            step=lambda job: Progress(f"import #{job_id}", int(job.get("percent") or 0), 100, "percent"),
            timeout=timeout,
        )
        if job["status"] == "refused":
            message = f"refused: {job.get('error_total', 0):,} error(s), nothing was written"
            body = {"detail": message, "errors": job.get("errors", []), "error_total": job.get("error_total", 0)}
            raise errors.ImportRefused(400, message, code="import_refused", body=body)
        if job["status"] == "failed":
            raise errors.APIError(500, job.get("message") or "the import failed", code="import_failed", body=job)
        summary: dict[str, Any] = job["summary"]
        return summary

    # --- comparisons, annotators, status ------------------------------------------------------------------------

    def generate(
        self,
        strategy: str | None = None,
        *,
        k: int | None = None,
        baseline_model: str | None = None,
        seed: int | None = None,
    ) -> dict[str, Any]:
        """Create comparisons (default: the campaign's pairing settings); return the report. Safe to repeat."""
        body = {"strategy": strategy, "k": k, "baseline_model": baseline_model, "seed": seed}
        body = {key: value for key, value in body.items() if value is not None}
        result: dict[str, Any] = self._json("POST", "comparisons/generate/", json=body, idempotency_key=True)
        return result

    def set_annotators(self, *, users: list[str], group: str | None = None) -> dict[str, Any]:
        """Replace who may annotate: exactly these usernames, and the members of `group` (None: no group)."""
        result: dict[str, Any] = self._json("PUT", "annotators/", json={"users": list(users), "group": group})
        return result

    def set_status(self, status: Status) -> Campaign:
        """Move the campaign to `status`; Conflict with the server's reason when the move is refused.

        A retry whose first attempt already made the move (its answer lost) meets a 409; the campaign is then
        read, and a campaign already in the wanted state counts as success.
        """
        try:
            data = self._json("POST", "status/", json={"status": status}, safe=True)
        except errors.Conflict:
            if self.refresh().status != status:
                raise
            return self
        self.data = {**self.data, **data}
        return self

    def open(self) -> Campaign:
        """Open the campaign to its annotators (or resume it after a pause)."""
        return self.set_status("active")

    def pause(self) -> Campaign:
        return self.set_status("paused")

    def close(self) -> Campaign:
        """Close the campaign; final."""
        return self.set_status("closed")

    def comparisons(
        self,
        *,
        model: str | None = None,
        question_id: str | None = None,
        gold: bool | None = None,
        page_size: int = 500,
    ) -> Iterator[dict[str, Any]]:
        """Yield the campaign's comparisons, fetched a page at a time."""
        params = {"model": model, "question_id": question_id, "gold": None if gold is None else str(gold).lower()}
        yield from self.client.session.pages(self.path + "comparisons/", params, page_size=page_size)

    # --- judges -------------------------------------------------------------------------------------------------

    def judge(
        self,
        judge: str,
        *,
        limit: int | None = None,
        orders: Literal["both", "one"] | None = None,
        wait: bool = False,
        timeout: float | None = None,
    ) -> JudgeRun:
        """Start a run of the judge named `judge` over the campaign's comparisons and return it.

        With `wait`, poll it until it ends (completed, cancelled or failed) and return it ended.
        """
        body = {"judge": judge, "limit": limit, "orders": orders}
        body = {key: value for key, value in body.items() if value is not None}
        run = JudgeRun(self, self._json("POST", "judge-runs/", json=body))
        return run.wait(timeout=timeout) if wait else run

    def judge_runs(self, *, status: str | None = None, page_size: int = 100) -> Iterator[JudgeRun]:
        """Yield the campaign's judge runs, newest first."""
        for row in self.client.session.pages(self.path + "judge-runs/", {"status": status}, page_size=page_size):
            yield JudgeRun(self, row)

    def judge_run(self, run_id: int) -> JudgeRun:
        return JudgeRun(self, self._json("GET", f"judge-runs/{int(run_id)}/"))

    def judge_panel(
        self,
        panel: str,
        *,
        limit: int | None = None,
        orders: Literal["both", "one"] | None = None,
        wait: bool = False,
        timeout: float | None = None,
    ) -> PanelRun:
        """Start a run of the judge panel named `panel` (a run of each member judge) and return it.

        `orders`: both, one, or each judge's own (default). With `wait`, poll it until it ends (completed, with
        the panel's verdicts written, cancelled or failed) and return it ended.
        """
        body = {"panel": panel, "limit": limit, "orders": orders}
        body = {key: value for key, value in body.items() if value is not None}
        run = PanelRun(self, self._json("POST", "panel-runs/", json=body))
        return run.wait(timeout=timeout) if wait else run

    def panel_runs(self, *, page_size: int = 100) -> Iterator[PanelRun]:
        """Yield the campaign's panel runs, newest first."""
        for row in self.client.session.pages(self.path + "panel-runs/", {}, page_size=page_size):
            yield PanelRun(self, row)

    def panel_run(self, run_id: int) -> PanelRun:
        return PanelRun(self, self._json("GET", f"panel-runs/{int(run_id)}/"))
