"""A campaign's whole lifecycle: settings, uploads, comparisons, annotators, status, judge runs and results."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from evalplatform_client import errors
from evalplatform_client._http import Upload
from evalplatform_client.progress import Progress
from evalplatform_client.runs import JudgeRun

if TYPE_CHECKING:
    from evalplatform_client.client import Client

Status = Literal["active", "paused", "closed"]
FILE_TYPES = ("jsonl", "json", "csv", "parquet")
IMPORT_ENDED = ("done", "refused", "failed")


@dataclass(frozen=True)
class ExportResult:
    """A downloaded export: where it is, its size, the rows the server left out (dpo) with its warning, the digest
    of the exact ratings it holds, and where its manifest was written (``export(..., manifest=True)``)."""

    path: str
    bytes: int
    skipped_rows: int
    warning: str | None
    ratings_sha256: str | None = None
    manifest_path: str | None = None


class Campaign:
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

    def _json(self, method: str, path: str = "", **options: Any) -> Any:
        return self.client.session.json(method, self.path + path, **options)

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

    # --- results ------------------------------------------------------------------------------------------------

    def leaderboard(
        self,
        raters: str | None = None,
        *,
        exclude_raters: str | None = None,
        bootstrap: int | None = None,
        seed: int | None = None,
        category: str | None = None,
    ) -> dict[str, Any]:
        """Return the leaderboard; `raters` is humans, judges, all (default) or comma-separated rater names.

        `category`: only the ratings on prompts with this tag (see `categories()`).
        """
        params = {
            "raters": raters,
            "exclude_raters": exclude_raters,
            "bootstrap": bootstrap,
            "seed": seed,
            "category": category,
        }
        result: dict[str, Any] = self._json("GET", "leaderboard/", params=params)
        return result

    def categories(self, raters: str | None = None, *, exclude_raters: str | None = None) -> dict[str, Any]:
        """Return the campaign's categories (prompt tags) with their prompts, battles and whether provisional."""
        params = {"raters": raters, "exclude_raters": exclude_raters}
        result: dict[str, Any] = self._json("GET", "categories/", params=params)
        return result

    def agreement(
        self, raters: str | None = None, *, exclude_raters: str | None = None, bootstrap: int | None = None
    ) -> dict[str, Any]:
        """Return the agreement report of the selected raters."""
        params = {"raters": raters, "exclude_raters": exclude_raters, "bootstrap": bootstrap}
        result: dict[str, Any] = self._json("GET", "agreement/", params=params)
        return result

    def raters(self, *, alpha: float | None = None, correction: str | None = None) -> dict[str, Any]:
        """Return the rater report: every rater with its flags, gold accuracy and standing, and the latest actions."""
        result: dict[str, Any] = self._json("GET", "raters/", params={"alpha": alpha, "correction": correction})
        return result

    def rater_action(self, rater: str, action: str, reason: str) -> dict[str, Any]:
        """Pause, resume, exclude (from results) or include one rater; the reason is kept in the audit trail."""
        body = {"rater": rater, "action": action, "reason": reason}
        result: dict[str, Any] = self._json("POST", "raters/actions/", json=body)
        return result

    def ratings(
        self,
        raters: str | None = None,
        *,
        exclude_raters: str | None = None,
        verdict: str | None = None,
        source: str | None = None,
        comparison: int | None = None,
        page_size: int = 500,
    ) -> Iterator[dict[str, Any]]:
        """Yield the campaign's ratings, fetched a page at a time."""
        params = {
            "raters": raters,
            "exclude_raters": exclude_raters,
            "verdict": verdict,
            "source": source,
            "comparison": comparison,
        }
        yield from self.client.session.pages(self.path + "ratings/", params, page_size=page_size)

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

    def export(
        self,
        dataset: Literal["ratings", "arena", "dpo", "alpaca_eval"],
        path: str | os.PathLike[str],
        *,
        file_type: str | None = None,
        raters: str | None = None,
        exclude_raters: str | None = None,
        aggregate: str | None = None,
        manifest: bool = False,
    ) -> ExportResult:
        """Stream an export to `path` (the file type from its suffix unless given); return what was written.

        The file appears complete or not at all (written beside it, then renamed). With `manifest`, its
        reproducibility manifest is fetched, checked against the file (the same ratings, the same bytes: else
        EvalPlatformError, as when ratings changed in between) and written beside it, `path` + ".manifest.json".
        """
        target = os.fspath(path)
        file_type = file_type or os.path.splitext(target)[1].lstrip(".").lower()
        if file_type not in FILE_TYPES:
            raise ValueError(f"file type {file_type!r}: give one of {', '.join(FILE_TYPES)} (or a path ending so)")
        params = {"raters": raters, "exclude_raters": exclude_raters, "aggregate": aggregate}
        headers = self.client.session.download(
            f"{self.path}export/{dataset}.{file_type}", params, target, self.client.progress
        )
        result = ExportResult(
            path=target,
            bytes=os.path.getsize(target),
            skipped_rows=int(headers.get("X-Export-Skipped-Rows") or 0),
            warning=headers.get("X-Export-Warning"),
            ratings_sha256=headers.get("X-Export-Ratings-Sha256"),
        )
        if not manifest:
            return result
        described = self.export_manifest(
            dataset, file_type, raters=raters, exclude_raters=exclude_raters, aggregate=aggregate
        )
        _check_manifest(described, result)
        manifest_path = target + ".manifest.json"
        with open(manifest_path, "w", encoding="utf-8") as out:
            json.dump(described, out, indent=2)
        return replace(result, manifest_path=manifest_path)

    def export_manifest(
        self,
        dataset: str,
        file_type: str = "jsonl",
        *,
        raters: str | None = None,
        exclude_raters: str | None = None,
        aggregate: str | None = None,
    ) -> dict[str, Any]:
        """Return the reproducibility manifest of an export with these options, without downloading it."""
        params = {"raters": raters, "exclude_raters": exclude_raters, "aggregate": aggregate}
        result: dict[str, Any] = self._json("GET", f"export/{dataset}.{file_type}/manifest/", params=params)
        return result

    def reproduce(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Recompute the result a manifest describes and return whether it is identical (and what changed if not)."""
        result: dict[str, Any] = self._json("POST", "reproduce/", json=manifest, safe=True)  # reads only
        return result


def _check_manifest(manifest: dict[str, Any], result: ExportResult) -> None:
    """Raise EvalPlatformError unless the manifest describes the downloaded file (same ratings, same bytes)."""
    if manifest["ratings"]["sha256"] != result.ratings_sha256:
        raise errors.EvalPlatformError(f"{result.path}: the ratings changed between the download and its manifest")
    sha = hashlib.sha256()
    with open(result.path, "rb") as handle:
        while block := handle.read(1 << 20):
            sha.update(block)
    if manifest["result"]["sha256"] != sha.hexdigest():
        raise errors.EvalPlatformError(f"{result.path}: the file differs from what its manifest describes")
