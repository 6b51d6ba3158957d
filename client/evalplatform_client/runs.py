"""A campaign's judge runs and panel runs: follow, cancel, resume, and read a judge run's verdicts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from evalplatform_client.progress import Progress

if TYPE_CHECKING:
    from evalplatform_client.campaign import Campaign

RUN_ENDED = ("completed", "cancelled", "failed")


class Run:
    """What judge runs and panel runs share: `data` is the server's last answer (status, progress, tokens, cost...)."""

    ROUTE: ClassVar[str]
    NAME: ClassVar[str]

    def __init__(self, campaign: Campaign, data: dict[str, Any]) -> None:
        self.campaign = campaign
        self.data = data
        self.id = int(data["id"])

    def __repr__(self) -> str:
        return f"<{type(self).__name__} #{self.id} {self.status}>"

    @property
    def status(self) -> str:
        return str(self.data["status"])

    @property
    def ended(self) -> bool:
        return self.status in RUN_ENDED

    def counts(self, data: dict[str, Any]) -> tuple[int, int]:
        """Return (finished, total) verdicts of an answer about the run."""
        raise NotImplementedError

    def _json(self, method: str, route: str = "", **options: Any) -> Any:
        return self.campaign._json(method, f"{self.ROUTE}{self.id}/{route}", **options)

    def _refreshed(self) -> dict[str, Any]:
        self.data = self._json("GET")
        return self.data

    def _wait(self, timeout: float | None) -> None:
        def step(data: dict[str, Any]) -> Progress:
            finished, total = self.counts(data)
            return Progress(f"{self.NAME} #{self.id}", finished, total, "verdicts")

        self.data = self.campaign.client.wait_until(
            self._refreshed, ended=lambda data: data["status"] in RUN_ENDED, step=step, timeout=timeout
        )


class JudgeRun(Run):
    """A judge run of a campaign."""

    ROUTE = "judge-runs/"
    NAME = "judge run"

    @property
    def progress(self) -> dict[str, int]:
        progress: dict[str, int] = self.data["progress"]
        return progress

    def counts(self, data: dict[str, Any]) -> tuple[int, int]:
        return int(data["progress"]["finished"]), int(data["progress"]["total"])

    def refresh(self) -> JudgeRun:
        self._refreshed()
        return self

    def wait(self, *, timeout: float | None = None) -> JudgeRun:
        """Poll the run until it ends and return it (check `status`: completed, cancelled or failed)."""
        self._wait(timeout)
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
        path = f"{self.campaign.path}{self.ROUTE}{self.id}/verdicts/"
        yield from self.campaign.client.session.pages(path, params, page_size=page_size)


class PanelRun(Run):
    """A judge panel's run of a campaign: one judge run per member, aggregated into the panel's verdicts once they
    all end. `members` are the member runs (judge, status, total, finished, done, failed, tokens, cost)."""

    ROUTE = "panel-runs/"
    NAME = "panel run"

    @property
    def members(self) -> list[dict[str, Any]]:
        members: list[dict[str, Any]] = self.data["members"]
        return members

    def counts(self, data: dict[str, Any]) -> tuple[int, int]:
        return int(data["finished"]), int(data["total"])

    def refresh(self) -> PanelRun:
        self._refreshed()
        return self

    def wait(self, *, timeout: float | None = None) -> PanelRun:
        """Poll the panel run until it ends and return it (completed with `n_verdicts`, cancelled or failed)."""
        self._wait(timeout)
        return self

    def cancel(self) -> PanelRun:
        """Cancel the panel run and its member runs; Conflict unless it is running."""
        self.data = self._json("POST", "cancel/")
        return self

    def resume(self, *, retry_failed: bool = False) -> PanelRun:
        """Resume the member runs (with `retry_failed`, their failed verdicts too); Conflict once it has ended."""
        self.data = self._json("POST", "resume/", json={"retry_failed": retry_failed})
        return self
