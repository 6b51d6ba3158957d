"""The client against a scripted server (httpx.MockTransport): retries, idempotency keys, typed errors, progress."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token

from annotation.models import Campaign, Comparison
from evalplatform_client import (
    Client,
    Conflict,
    ConnectionFailed,
    IdempotencyKeyReused,
    ImportRefused,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    Progress,
    RateLimited,
    RetryPolicy,
    ServerError,
    StderrProgress,
    ValidationError,
    WaitTimeout,
)
from evalplatform_client.errors import AuthenticationFailed

Handler = Callable[[httpx.Request], httpx.Response]
CAMPAIGN = {"slug": "weekly", "name": "Weekly", "status": "draft"}


class Server:
    """Answers requests from a script of responses (or exceptions to raise), recording every request."""

    def __init__(self, *answers: httpx.Response | Exception | Handler) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []
        self.bodies: list[bytes] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.bodies.append(request.read())
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, httpx.Response):
            return answer
        return answer(request)


def make_client(server: Server, sleeps: list[float], **options: Any) -> Client:
    options.setdefault("progress", False)
    return Client(
        "http://evalplatform.test",
        token="t0k",
        transport=httpx.MockTransport(server),
        sleep=sleeps.append,
        retry=RetryPolicy(attempts=4, backoff=0.5, max_wait=30.0),
        **options,
    )


def keys(server: Server) -> list[str | None]:
    return [request.headers.get("Idempotency-Key") for request in server.requests]


def test_create_retried_after_a_broken_connection_and_a_503_sends_one_idempotency_key_thrice() -> None:
    server = Server(httpx.ReadError("connection reset"), httpx.Response(503), httpx.Response(201, json=CAMPAIGN))
    sleeps: list[float] = []
    campaign = make_client(server, sleeps).campaigns.create(name="Weekly", slug="weekly")

    assert campaign.slug == "weekly"
    assert campaign.status == "draft"
    assert len(server.requests) == 3
    assert len(set(keys(server))) == 1
    assert keys(server)[0]
    assert {json.loads(body)["slug"] for body in server.bodies} == {"weekly"}
    assert server.requests[0].headers["Authorization"] == "Token t0k"
    assert len(sleeps) == 2
    assert 0.25 <= sleeps[0] <= 0.5
    assert 0.5 <= sleeps[1] <= 1.0  # exponential


def test_each_call_has_its_own_idempotency_key() -> None:
    server = Server(httpx.Response(201, json=CAMPAIGN))
    client = make_client(server, [])
    client.campaigns.create(name="Weekly", slug="weekly")
    client.campaigns.create(name="Weekly", slug="weekly")

    assert len(set(keys(server))) == 2


def test_a_judge_run_start_is_not_sent_twice_after_a_connection_broken_mid_request() -> None:
    server = Server(httpx.ReadError("reset after sending"))
    with pytest.raises(ConnectionFailed):
        make_client(server, []).campaign("weekly").judge("gpt-judge")

    assert len(server.requests) == 1  # the run may have started: repeating it could start a second one


def test_a_judge_run_start_is_retried_when_the_connection_was_never_made_or_throttled() -> None:
    run = {"id": 7, "status": "running", "progress": {"finished": 0, "total": 4}}
    server = Server(
        httpx.ConnectError("refused"), httpx.Response(429, headers={"Retry-After": "3"}), httpx.Response(201, json=run)
    )
    sleeps: list[float] = []
    started = make_client(server, sleeps).campaign("weekly").judge("gpt-judge")

    assert started.id == 7
    assert len(server.requests) == 3
    assert sleeps[1] == 3.0  # the server's Retry-After, longer than the backoff


def test_a_judge_run_start_is_not_retried_after_a_500() -> None:
    server = Server(httpx.Response(500, json={"detail": "boom"}))
    with pytest.raises(ServerError, match="boom"):
        make_client(server, []).campaign("weekly").judge("gpt-judge")
    assert len(server.requests) == 1


def test_429_after_every_attempt_raises_rate_limited_with_the_servers_advice() -> None:
    answer = httpx.Response(429, json={"detail": "Request was throttled."}, headers={"Retry-After": "12"})
    server = Server(answer)
    sleeps: list[float] = []
    with pytest.raises(RateLimited) as raised:
        make_client(server, sleeps).campaigns.list()

    assert raised.value.retry_after == 12.0
    assert raised.value.message == "Request was throttled."
    assert len(server.requests) == 4
    assert sleeps == [12.0, 12.0, 12.0]


def test_validation_error_carries_each_fields_messages() -> None:
    body = {"slug": ["campaign with this slug already exists."], "baseline_model": ["The baseline needs a model."]}
    server = Server(httpx.Response(400, json=body))
    with pytest.raises(ValidationError) as raised:
        make_client(server, []).campaigns.create(name="Weekly", slug="weekly", pairing_strategy="baseline")

    assert raised.value.errors == body
    assert "slug: campaign with this slug already exists." in str(raised.value)
    assert raised.value.status == 400
    assert len(server.requests) == 1  # refusals are not retried


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (401, AuthenticationFailed),
        (403, PermissionDenied),
        (404, NotFound),
        (409, Conflict),
        (413, PayloadTooLarge),
        (422, IdempotencyKeyReused),
        (502, ServerError),
    ],
)
def test_each_refusal_is_its_typed_error_with_the_servers_detail_and_code(status: int, error: type[Exception]) -> None:
    server = Server(httpx.Response(status, json={"detail": f"said {status}", "code": "some_code"}))
    with pytest.raises(error) as raised:
        make_client(server, []).campaigns.get("weekly")

    assert raised.value.message == f"said {status}"  # type: ignore[attr-defined]
    assert raised.value.code == "some_code"  # type: ignore[attr-defined]


def test_a_refused_upload_raises_import_refused_with_every_bad_line(tmp_path: Path) -> None:
    body = {
        "detail": "refused: 2 error(s), nothing was written",
        "code": "import_refused",
        "errors": ["out.jsonl:1: output: missing field", "out.jsonl:3: model: missing field"],
        "error_total": 2,
    }
    path = tmp_path / "out.jsonl"
    path.write_text("{}\n")
    with pytest.raises(ImportRefused) as raised:
        make_client(Server(httpx.Response(400, json=body)), []).campaign("weekly").upload_outputs(path)

    assert raised.value.lines == body["errors"]
    assert raised.value.total == 2
    assert raised.value.message == "refused: 2 error(s), nothing was written"


def test_an_upload_retried_after_a_502_sends_the_whole_file_again_under_the_same_key(tmp_path: Path) -> None:
    content = b'{"prompt_id": "q1", "prompt": "Hi", "model": "m", "output": "Hello"}\n' * 5000
    path = tmp_path / "outputs.jsonl"
    path.write_bytes(content)
    summary = {"records": 5000, "dry_run": False, "created": {"outputs": 1}}
    server = Server(httpx.Response(502), httpx.Response(201, json=summary))
    steps: list[Progress] = []
    result = make_client(server, [], progress=steps.append).campaign("weekly").upload_outputs(path)

    assert result == summary
    assert len(server.requests) == 2
    assert len(set(keys(server))) == 1
    for request, body in zip(server.requests, server.bodies, strict=True):
        assert request.url.path == "/api/v1/research/campaigns/weekly/outputs/"
        assert request.headers["Content-Type"].startswith("multipart/form-data")
        assert content in body
        assert b'filename="outputs.jsonl"' in body
        assert int(request.headers["Content-Length"]) == len(body)
    uploads = [step for step in steps if step.what == "upload outputs.jsonl"]
    assert uploads[-1].done == uploads[-1].total == len(content)
    assert uploads[-1].finished


def test_an_upload_answered_202_follows_the_import_job_to_its_summary(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    path.write_text("{}\n")
    job = {"id": 4, "url": "/api/v1/research/campaigns/weekly/imports/4/", "status": "queued", "percent": 0}
    summary = {"records": 3, "created": {"outputs": 3}}
    server = Server(
        httpx.Response(202, json=job),
        httpx.Response(200, json={**job, "status": "running", "percent": 40}),
        httpx.Response(200, json={**job, "status": "done", "percent": 100, "summary": summary}),
    )
    steps: list[Progress] = []
    sleeps: list[float] = []
    result = (
        make_client(server, sleeps, progress=steps.append, poll_interval=0.25).campaign("weekly").upload_outputs(path)
    )

    assert result == summary
    assert [r.url.path for r in server.requests[1:]] == ["/api/v1/research/campaigns/weekly/imports/4/"] * 2
    assert [(s.done, s.finished) for s in steps if s.unit == "percent"] == [(40, False), (100, True)]
    assert sleeps == [0.25]


def test_a_background_import_refused_raises_import_refused_with_its_lines(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    path.write_text("{}\n")
    job = {"id": 4, "status": "queued", "percent": 0}
    refused = {**job, "status": "refused", "errors": ["big.jsonl:9: output: missing field"], "error_total": 1}
    server = Server(httpx.Response(202, json=job), httpx.Response(200, json=refused))
    with pytest.raises(ImportRefused) as raised:
        make_client(server, []).campaign("weekly").upload_outputs(path)
    assert raised.value.lines == ["big.jsonl:9: output: missing field"]


class BrokenStream(httpx.SyncByteStream):
    def __iter__(self) -> Iterator[bytes]:
        yield b'{"prompt": "half'
        raise httpx.ReadError("connection lost mid-file")


def test_an_export_broken_mid_file_is_downloaded_again_and_written_whole(tmp_path: Path) -> None:
    rows = b'{"prompt": "p", "chosen": "a", "rejected": "b"}\n' * 3
    headers = {"X-Export-Skipped-Rows": "2", "X-Export-Warning": "2 pairs without texts left out"}
    server = Server(httpx.Response(200, stream=BrokenStream()), httpx.Response(200, content=rows, headers=headers))
    steps: list[Progress] = []
    target = tmp_path / "dpo.jsonl"
    result = make_client(server, [], progress=steps.append).campaign("weekly").export("dpo", target, raters="humans")

    assert target.read_bytes() == rows
    assert (result.bytes, result.skipped_rows, result.warning) == (len(rows), 2, "2 pairs without texts left out")
    assert server.requests[-1].url.path == "/api/v1/research/campaigns/weekly/export/dpo.jsonl"
    assert server.requests[-1].url.params["raters"] == "humans"
    assert steps[-1].finished
    assert steps[-1].done == len(rows)
    assert list(tmp_path.iterdir()) == [target]  # no partial file left behind


def test_a_refused_export_raises_and_leaves_no_file(tmp_path: Path) -> None:
    server = Server(httpx.Response(400, json={"raters": ["No rater named 'x' in this campaign."]}))
    with pytest.raises(ValidationError, match="No rater named"):
        make_client(server, []).campaign("weekly").export("dpo", tmp_path / "dpo.jsonl", raters="x")
    assert list(tmp_path.iterdir()) == []


def test_an_export_needs_a_known_file_type(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="file type 'txt'"):
        make_client(Server(httpx.Response(200)), []).campaign("weekly").export("dpo", tmp_path / "dpo.txt")


def test_ratings_are_read_a_page_at_a_time_until_the_count() -> None:
    def page(request: httpx.Request) -> httpx.Response:
        offset, limit = int(request.url.params["offset"]), int(request.url.params["limit"])
        rows = [{"id": i} for i in range(offset, min(offset + limit, 5))]
        return httpx.Response(200, json={"count": 5, "next": None, "previous": None, "results": rows})

    server = Server(page)
    ratings = list(make_client(server, []).campaign("weekly").ratings(raters="humans", page_size=2))

    assert [r["id"] for r in ratings] == [0, 1, 2, 3, 4]
    assert [r.url.params["offset"] for r in server.requests] == ["0", "2", "4"]
    assert {r.url.params["raters"] for r in server.requests} == {"humans"}


def test_opening_retried_after_its_answer_was_lost_counts_the_409_as_done() -> None:
    server = Server(
        httpx.ReadError("answer lost"),
        httpx.Response(409, json={"detail": "The campaign is already active.", "code": "conflict"}),
        httpx.Response(200, json={**CAMPAIGN, "status": "active"}),
    )
    campaign = make_client(server, []).campaign("weekly").open()

    assert campaign.status == "active"
    assert [r.method for r in server.requests] == ["POST", "POST", "GET"]


def test_a_refused_move_raises_conflict_with_the_servers_reason() -> None:
    server = Server(
        httpx.Response(409, json={"detail": "A closed campaign cannot be reopened.", "code": "conflict"}),
        httpx.Response(200, json={**CAMPAIGN, "status": "closed"}),
    )
    with pytest.raises(Conflict, match="cannot be reopened"):
        make_client(server, []).campaign("weekly").open()


def run(status: str, finished: int) -> dict[str, Any]:
    return {"id": 3, "status": status, "progress": {"finished": finished, "total": 8}}


def test_judge_with_wait_polls_the_run_until_it_ends_and_reports_verdicts() -> None:
    server = Server(
        httpx.Response(201, json=run("running", 0)),
        httpx.Response(200, json=run("running", 5)),
        httpx.Response(200, json=run("completed", 8)),
    )
    steps: list[Progress] = []
    ended = make_client(server, [], progress=steps.append).campaign("weekly").judge("gpt-judge", wait=True)

    assert ended.status == "completed"
    assert json.loads(server.bodies[0]) == {"judge": "gpt-judge"}
    assert [(s.done, s.total, s.finished) for s in steps] == [(5, 8, False), (8, 8, True)]


def test_a_wait_past_its_timeout_raises_wait_timeout() -> None:
    server = Server(httpx.Response(201, json=run("running", 0)), httpx.Response(200, json=run("running", 1)))
    with pytest.raises(WaitTimeout, match="still running"):
        make_client(server, []).campaign("weekly").judge("gpt-judge", wait=True, timeout=0)


def test_stderr_progress_rewrites_one_line_and_ends_it() -> None:
    stream = io.StringIO()
    line = StderrProgress(stream)
    line(Progress("judge run #3", 5, 18, "verdicts"))
    line(Progress("judge run #3", 18, 18, "verdicts", finished=True))
    line(Progress("upload a.jsonl", 500_000, 2_000_000, "bytes"))
    line(Progress("export b.csv", 1_200_000, None, "bytes"))

    assert stream.getvalue() == (
        "\rjudge run #3: 5/18 verdicts\rjudge run #3: 18/18 verdicts\n"
        "\rupload a.jsonl: 25% (0.5 of 2.0 MB)\rexport b.csv: 1.2 MB" + " " * 15
    )


class LosesAnswers(httpx.BaseTransport):
    """A real HTTP transport that loses the answer to the first attempt of each call (each new Idempotency-Key),
    after the server has done its work."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.keys: set[str] = set()
        self.replayed: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        key = request.headers.get("Idempotency-Key")
        if key and key not in self.keys:
            self.keys.add(key)
            response.read()
            raise httpx.ReadError("connection reset before the answer arrived", request=request)
        if key:
            self.replayed.append(response.headers.get("Idempotent-Replayed", ""))
        return response


@pytest.mark.django_db(transaction=True)
def test_creates_uploads_and_generation_whose_answers_were_lost_are_done_once_on_a_live_server(
    live_server: Any, researcher: User, tmp_path: Path
) -> None:
    token, _ = Token.objects.get_or_create(user=researcher)
    transport = LosesAnswers()
    client = Client(live_server.url, token=str(token.key), transport=transport, sleep=lambda _: None, progress=False)
    rows = [{"prompt_id": f"q{p}", "prompt": f"Q{p}", "model": m, "output": f"{m} {p}"} for p in range(2) for m in "xy"]
    path = tmp_path / "outputs.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))

    campaign = client.campaigns.create(name="Once", slug="once")
    summary = campaign.upload_outputs(path)
    report = campaign.generate(strategy="all_pairs")

    assert transport.replayed == ["true", "true", "true"]  # each retry got the first answer back
    assert Campaign.objects.filter(slug="once").count() == 1
    assert summary["created"] == {"prompts": 2, "outputs": 4}  # the first answer, not "nothing new"
    assert report["created"] == 2
    assert Comparison.objects.filter(campaign__slug="once").count() == 2


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_drawn_by_default_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert make_client(Server(httpx.Response(200)), [], progress=None).progress is None
    assert isinstance(make_client(Server(httpx.Response(200)), [], progress=True).progress, StderrProgress)

    monkeypatch.setattr("sys.stderr", Terminal())
    assert isinstance(make_client(Server(httpx.Response(200)), [], progress=None).progress, StderrProgress)
    assert make_client(Server(httpx.Response(200)), [], progress=False).progress is None
