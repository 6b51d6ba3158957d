"""A campaign's judge runs: follow, cancel, resume, and read their verdicts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from evalplatform_client.progress import Progress

if TYPE_CHECKING:
    from evalplatform_client.campaign import Campaign

RUN_ENDED = ("completed", "cancelled", "failed")


class JudgeRun:
    """A judge run of a campaign. `data` is the server's last answer (status, progress, tokens, cost...)."""

    def __init__(self, campaign: Campaign, data: dict[str, Any]) -> None:
        self.campaign = campaign
        self.data = data
        self.id = int(data["id"])

    def __repr__(self) -> str:
        return f"<JudgeRun #{self.id} {self.status}>"

    @property
    def status(self) -> str:
        return str(self.data["status"])

    @property
    def progress(self) -> dict[str, int]:
        progress: dict[str, int] = self.data["progress"]
        return progress

    @property
    def ended(self) -> bool:
        return self.status in RUN_ENDED

    def _json(self, method: str, route: str = "", **options: Any) -> Any:
        return self.campaign._json(method, f"judge-runs/{self.id}/{route}", **options)

    def refresh(self) -> JudgeRun:
        self.data = self._json("GET")
        return self

    def wait(self, *, timeout: float | None = None) -> JudgeRun:
        """Poll the run until it ends and return it (check `status`: completed, cancelled or failed)."""
        self.data = self.campaign.client.wait_until(
            lambda: self.refresh().data,
            ended=lambda data: data["status"] in RUN_ENDED,
            step=lambda data: Progress(
                f"judge run #{self.id}", int(data["progress"]["finished"]), int(data["progress"]["total"]), "verdicts"
            ),
            timeout=timeout,
        )
        return self

    def cancel(self) -> JudgeRun:
        """Cancel the run; Conflict unless it is running."""
        self.data = self._json("POST", "cancel/")
        return self

    def resume(self, *, retry_failed: bool = False) -> JudgeRun:
        """Judge what is left (and with `retry_failed` the failed verdicts again); Conflict if nothing is."""
        self.data = self._json("POST", "resume/", json={"retry_failed": retry_failed})
        return self

    def verdicts(
        self,
        *,
        state: str | None = None,
        outcome: str | None = None,
        parse_failed: bool | None = None,
        page_size: int = 500,
    ) -> Iterator[dict[str, Any]]:
        """Yield the run's verdicts in id order, fetched a page at a time."""
        params = {
            "state": state,
            "outcome": outcome,
            "parse_failed": None if parse_failed is None else str(parse_failed).lower(),
        }
        path = f"{self.campaign.path}judge-runs/{self.id}/verdicts/"
        yield from self.campaign.client.session.pages(path, params, page_size=page_size)
