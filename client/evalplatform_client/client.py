"""The client: `Client(url, token=...)`, its campaigns, judges and judge panels."""

from __future__ import annotations

import builtins
import time
from collections.abc import Callable
from typing import Any, Literal
from urllib.parse import quote

import httpx

from evalplatform_client import errors
from evalplatform_client._http import RetryPolicy, Session
from evalplatform_client.campaign import Campaign
from evalplatform_client.progress import Progress, ProgressCallback, progress_callback

State = dict[str, Any]


class Client:
    """A researcher's connection to an evalplatform server.

    `progress`: None (default) draws a progress line on stderr when it is a terminal, True always, False never,
    or a callable given each `Progress` step. `retry` bounds the retries; `transport` and `sleep` are for tests.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: float = 60.0,
        progress: bool | ProgressCallback | None = None,
        retry: RetryPolicy | None = None,
        poll_interval: float = 1.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.session = Session(
            base_url, token=token, timeout=timeout, retry=retry or RetryPolicy(), transport=transport, sleep=sleep
        )
        self.progress = progress_callback(progress)
        self.poll_interval = poll_interval
        self.campaigns = Campaigns(self)
        self.judges = Judges(self)
        self.panels = Panels(self)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.session.close()

    def wait_until(
        self,
        read: Callable[[], State],
        *,
        ended: Callable[[State], bool],
        step: Callable[[State], Progress],
        timeout: float | None,
    ) -> State:
        """Call `read` every poll interval until `ended` holds, reporting each state; WaitTimeout past `timeout`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            state = read()
            done = ended(state)
            if self.progress:
                current = step(state)
                self.progress(Progress(current.what, current.done, current.total, current.unit, finished=done))
            if done:
                return state
            if deadline is not None and time.monotonic() >= deadline:
                raise errors.WaitTimeout(f"still {state.get('status')} after {timeout} s")
            self.session.sleep(self.poll_interval)

    def campaign(self, slug: str) -> Campaign:
        """Return a handle on a campaign by slug, without a request (`.refresh()` reads it)."""
        return Campaign(self, slug, {})


class Judges:
    def __init__(self, client: Client) -> None:
        self.client = client

    def list(self) -> builtins.list[dict[str, Any]]:
        """Return the judges you may use, with their settings (API keys only by variable name)."""
        result: builtins.list[dict[str, Any]] = self.client.session.json("GET", "judges/")
        return result

    def report(
        self, judge: str | int, *, campaign: str | None = None, bootstrap: int | None = None, seed: int | None = None
    ) -> dict[str, Any]:
        """Return the judge report of a judge (by name or id): its agreement with humans against the human ceiling,
        position, length and self-preference bias, stability across repeats, over every campaign you read that it
        rated (or only `campaign`, a slug). `bootstrap` rounds (default 500) and `seed` give the intervals."""
        params = {"campaign": campaign, "bootstrap": bootstrap, "seed": seed}
        result: dict[str, Any] = self.client.session.json(
            "GET", f"judges/{quote(str(judge), safe='')}/report/", params=params
        )
        return result


class Panels:
    """Judge panels: several judges whose verdicts are aggregated into the panel's (a rater of its own)."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def list(self) -> builtins.list[dict[str, Any]]:
        """Return the panels you may use (yours and the operator's): name, owner, aggregation, member judges."""
        result: builtins.list[dict[str, Any]] = self.client.session.json("GET", "judge-panels/")
        return result

    def create(
        self,
        *,
        name: str,
        members: builtins.list[str],
        aggregation: Literal["majority", "mean_probability"] | None = None,
    ) -> dict[str, Any]:
        """Create a panel of judges you may use (2 to 15, by name), owned by you; return it.

        ValidationError naming the field for a bad member list or aggregation; Conflict when the name is taken.
        """
        body = {"name": name, "members": builtins.list(members), "aggregation": aggregation}
        body = {key: value for key, value in body.items() if value is not None}
        result: dict[str, Any] = self.client.session.json("POST", "judge-panels/", json=body)
        return result


class Campaigns:
    def __init__(self, client: Client) -> None:
        self.client = client

    def list(self) -> builtins.list[dict[str, Any]]:
        """Return the campaigns you may read (slug, name, status, counts)."""
        result: builtins.list[dict[str, Any]] = self.client.session.json("GET", "research/campaigns/")
        return result

    def get(self, slug: str) -> Campaign:
        """Return a campaign with its summary (prompts, models, ratings); NotFound if you may not see it."""
        return Campaign(self.client, slug, {}).refresh()

    def create(self, *, name: str, slug: str, **fields: Any) -> Campaign:
        """Create a draft campaign owned by you; `fields` are any of the admin form's (see docs/api.md)."""
        data = self.client.session.json(
            "POST", "research/campaigns/", json={"name": name, "slug": slug, **fields}, idempotency_key=True
        )
        return Campaign(self.client, data["slug"], data)
