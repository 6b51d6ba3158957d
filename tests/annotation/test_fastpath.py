"""The lean WSGI path for token-authenticated `next` and `rating`: Django's answers, without Django's request cycle.

Requests go through the WSGI application as gunicorn calls it. Each answer of the lean path is compared with what
Django (middleware, DRF view) answers to the same request; requests it must not answer are checked to reach Django.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import OperationalError, close_old_connections, connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token

from annotation import api, services
from annotation.fastpath import AnnotatorFastPath
from annotation.models import Assignment, Campaign, Rating, SignInFailures
from annotation.selectors import assignment_view
from annotation.stored_html import fill_missing_html
from evalplatform.authentication import TokenAuthentication

pytestmark = pytest.mark.django_db


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Recorder:
    """The Django application behind the lean path, counting the requests that reach it."""

    def __init__(self, django_application: Callable[..., Iterable[bytes]]) -> None:
        self.django_application = django_application
        self.calls = 0

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        self.calls += 1
        return self.django_application(environ, start_response)


@pytest.fixture
def app() -> AnnotatorFastPath:
    """Return the production WSGI stack, built after the test's settings, with Django's side recorded."""
    return AnnotatorFastPath(Recorder(get_wsgi_application()))


@contextmanager
def _in_test_transaction() -> Iterator[None]:
    # As Django's test client does: the request signals would close the connection holding the test's transaction.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def call(
    application: Callable[..., Iterable[bytes]],
    path: str,
    body: Any = None,
    *,
    token: str | None = None,
    method: str = "POST",
    raw: bytes | None = None,
    content_type: str = "application/json",
    secure: bool = False,
    **extra: Any,
) -> Answer:
    """Send one request to a WSGI application and return what it answered."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
    if token is not None:
        extra.setdefault("HTTP_AUTHORIZATION", f"Token {token}")
    environ = RequestFactory().generic(method, path, data, content_type=content_type, secure=secure, **extra).environ
    started: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        started.update(status=int(status.split()[0]), headers=dict(headers))

    with _in_test_transaction():
        chunks = application(environ, start_response)
        try:
            content = b"".join(chunks)
        finally:
            getattr(chunks, "close", lambda: None)()
    return Answer(started["status"], started["headers"], content)


def _next_path(campaign: Campaign) -> str:
    return f"/api/v1/campaigns/{campaign.pk}/next/"


def _rating_path(assignment: int) -> str:
    return f"/api/v1/assignments/{assignment}/rating/"


@pytest.fixture
def token(annotator: User) -> str:
    return str(Token.objects.create(user=annotator).key)


def _same_answer(fast: Answer, django: Answer, *, ignore: tuple[str, ...] = ()) -> None:
    """Assert the same status, headers and body, but for the body's fields in `ignore` (and so its length)."""
    assert fast.status == django.status
    if ignore:
        assert fast.headers.keys() == django.headers.keys()
        assert {k: v for k, v in fast.headers.items() if k != "Content-Length"} == {
            k: v for k, v in django.headers.items() if k != "Content-Length"
        }
    else:
        assert fast.headers == django.headers
    fast_body: Any = json.loads(fast.body) if fast.body else None
    django_body: Any = json.loads(django.body) if django.body else None
    if ignore:
        fast_body = {k: v for k, v in fast_body.items() if k not in ignore}
        django_body = {k: v for k, v in django_body.items() if k not in ignore}
    assert fast_body == django_body


def test_the_production_wsgi_application_answers_token_requests_on_the_lean_path(
    campaign: Campaign, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from evalplatform import wsgi

    recorder = Recorder(wsgi.application.django_application)
    monkeypatch.setattr(wsgi.application, "django_application", recorder)

    shown = call(wsgi.application, _next_path(campaign), {}, token=token)
    rated = call(wsgi.application, _rating_path(shown.json()["assignment"]), {"choice": "tie"}, token=token)

    assert (shown.status, rated.status, recorder.calls) == (200, 201, 0)
    assert Rating.objects.get().assignment_id == shown.json()["assignment"]


def test_next_and_rating_answer_as_the_api_views(app: AnnotatorFastPath, campaign: Campaign, token: str) -> None:
    fast = call(app, _next_path(campaign), {}, token=token)
    # Django renews the lease the annotator holds: the same comparison, a later expiry.
    django = call(app.django_application, _next_path(campaign), {}, token=token)

    _same_answer(fast, django, ignore=("lease_expires",))
    assert set(fast.json()) == {"assignment", "prompt", "left", "right", "lease_expires", "progress"}
    first = fast.json()["assignment"]
    second = call(app, _next_path(campaign), {"exclude": [first]}, token=token).json()["assignment"]
    fast_rating = call(app, _rating_path(first), {"choice": "right", "time_ms": 12}, token=token)
    django_rating = call(app.django_application, _rating_path(second), {"choice": "right", "time_ms": 12}, token=token)
    assert fast_rating.status == 201
    _same_answer(fast_rating, django_rating, ignore=("assignment", "created_at", "undo_until", "progress"))
    assert fast_rating.json()["progress"]["done"] == 1
    assert app.django_application.calls == 2  # type: ignore[attr-defined]


def test_errors_answer_as_the_api_views(
    app: AnnotatorFastPath, campaign: Campaign, token: str, other_annotator: User
) -> None:
    assignment = call(app, _next_path(campaign), {}, token=token).json()["assignment"]
    other = Token.objects.create(user=other_annotator).key
    cases: list[tuple[str, dict[str, Any], str, int]] = [
        (_rating_path(assignment), {"choice": "up"}, token, 400),
        (_rating_path(assignment), {"time_ms": -1}, token, 400),
        (_rating_path(assignment), {"choice": "left"}, other, 404),
        (_next_path(campaign), {"exclude": "x"}, token, 400),
    ]
    for path, body, key, status in cases:
        fast, django = call(app, path, body, token=key), call(app.django_application, path, body, token=key)
        assert fast.status == status
        _same_answer(fast, django)
    assert call(app, _rating_path(assignment), {"choice": "left"}, token=token).status == 201
    again = call(app, _rating_path(assignment), {"choice": "left"}, token=token)
    assert again.status == 409
    _same_answer(again, call(app.django_application, _rating_path(assignment), {"choice": "left"}, token=token))
    assert app.django_application.calls == len(cases) + 1  # type: ignore[attr-defined]


def test_nothing_left_is_204_without_a_body_as_the_api_view(
    app: AnnotatorFastPath, campaign: Campaign, token: str
) -> None:
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.PAUSED)

    fast = call(app, _next_path(campaign), {}, token=token)

    assert (fast.status, fast.body) == (204, b"")
    _same_answer(fast, call(app.django_application, _next_path(campaign), {}, token=token))


def test_an_idempotent_retry_is_200_on_the_lean_path(app: AnnotatorFastPath, campaign: Campaign, token: str) -> None:
    assignment = call(app, _next_path(campaign), {}, token=token).json()["assignment"]

    first = call(app, _rating_path(assignment), {"choice": "left"}, token=token, HTTP_IDEMPOTENCY_KEY="k1")
    retry = call(app, _rating_path(assignment), {"choice": "left"}, token=token, HTTP_IDEMPOTENCY_KEY="k1")

    assert (first.status, retry.status) == (201, 200)
    assert first.json()["created_at"] == retry.json()["created_at"]
    assert Rating.objects.count() == 1
    assert app.django_application.calls == 0  # type: ignore[attr-defined]


def test_over_https_the_lean_path_adds_the_same_security_headers(settings: Any, campaign: Campaign, token: str) -> None:
    settings.SECURE_HSTS_SECONDS = 3600
    settings.SECURE_SSL_REDIRECT = True
    app = AnnotatorFastPath(Recorder(get_wsgi_application()))

    fast = call(app, _next_path(campaign), {}, token=token, secure=True)
    django = call(app.django_application, _next_path(campaign), {}, token=token, secure=True)
    plain = call(app, _next_path(campaign), {}, token=token)

    assert fast.headers["Strict-Transport-Security"] == "max-age=3600"
    _same_answer(fast, django, ignore=("lease_expires",))
    assert plain.status == 301  # Django's redirect to HTTPS
    assert app.django_application.calls == 2  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("change", "status"),
    [
        pytest.param({"HTTP_AUTHORIZATION": "Token"}, 403, id="token-header-without-key"),
        pytest.param({"HTTP_AUTHORIZATION": "Token a b"}, 403, id="token-with-spaces"),
        pytest.param({"HTTP_AUTHORIZATION": "Token " + "0" * 40}, 403, id="unknown-token"),
        pytest.param({"HTTP_AUTHORIZATION": "Bearer x"}, 403, id="other-scheme"),
        pytest.param({"HTTP_AUTHORIZATION": "Token abc\xa0"}, 403, id="token-not-utf-8"),
        pytest.param({"HTTP_ACCEPT": "text/html"}, 406, id="accept-html"),
        pytest.param({"HTTP_ACCEPT": "application/json; indent=4"}, 200, id="accept-indented-json"),
        pytest.param({"QUERY_STRING": "format=json"}, 200, id="query-string"),
        pytest.param({"raw": b"{not json"}, 400, id="bad-json"),
        pytest.param({"raw": b"[1]"}, 400, id="json-list"),
        pytest.param({"raw": b'{"exclude": NaN}'}, 400, id="json-nan"),
        pytest.param({"content_type": "text/plain"}, 415, id="not-json"),
        pytest.param({"method": "GET"}, 405, id="get"),
        pytest.param({"HTTP_HOST": "evil.example.org"}, 400, id="disallowed-host"),
        pytest.param({"HTTP_COOKIE": "sessionid=abc"}, 200, id="session-cookie"),
    ],
)
def test_requests_it_cannot_answer_exactly_go_to_django(
    app: AnnotatorFastPath, campaign: Campaign, token: str, change: dict[str, Any], status: int
) -> None:
    kwargs: dict[str, Any] = {"token": token, **change}

    answer = call(app, _next_path(campaign), {}, **kwargs)

    assert answer.status == status
    assert app.django_application.calls == 1  # type: ignore[attr-defined]


def test_with_a_middleware_it_does_not_mirror_every_request_goes_to_django(
    settings: Any, campaign: Campaign, token: str
) -> None:
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "django.middleware.gzip.GZipMiddleware"]
    app = AnnotatorFastPath(Recorder(get_wsgi_application()))

    answer = call(app, _next_path(campaign), {}, token=token)

    assert answer.status == 200
    assert app.django_application.calls == 1  # type: ignore[attr-defined]


def test_an_inactive_users_token_gets_djangos_refusal(app: AnnotatorFastPath, campaign: Campaign, token: str) -> None:
    User.objects.filter(auth_token__key=token).update(is_active=False)

    answer = call(app, _next_path(campaign), {}, token=token)

    assert (answer.status, answer.json()) == (403, {"detail": "User inactive or deleted."})
    assert not Assignment.objects.exists()


def test_a_session_request_keeps_djangos_csrf_check_even_with_a_token(
    app: AnnotatorFastPath, campaign: Campaign, annotator: User, token: str, client: Any
) -> None:
    client.force_login(annotator)
    cookie = f"sessionid={client.cookies['sessionid'].value}"

    # DRF tries the session first: a signed-in browser's request must pass its CSRF check, token or not.
    refused = call(app, _next_path(campaign), {}, token=token, HTTP_COOKIE=cookie)

    assert refused.status == 403
    assert "CSRF" in refused.json()["detail"]
    assert not Assignment.objects.exists()


def test_an_unexpected_error_is_djangos_500_and_logged(
    app: AnnotatorFastPath, campaign: Campaign, token: str, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    def broken(**kwargs: Any) -> None:
        raise RuntimeError("engine broke")

    monkeypatch.setattr(services, "claim_next", broken)

    with caplog.at_level(logging.ERROR, logger="django.request"):
        answer = call(app, _next_path(campaign), {}, token=token)

    assert answer.status == 500
    assert answer.headers["X-Frame-Options"] == "DENY"
    assert any("engine broke" in str(record.exc_info) for record in caplog.records)
    assert app.django_application.calls == 0  # type: ignore[attr-defined]


@pytest.mark.parametrize("where", ["token", "claim"])
def test_a_database_that_is_unavailable_is_a_retryable_503_on_both_paths(
    app: AnnotatorFastPath, campaign: Campaign, token: str, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    def restarting(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("the database system is shutting down")

    if where == "token":
        monkeypatch.setattr(TokenAuthentication, "authenticate_credentials", restarting)
    else:
        monkeypatch.setattr(services, "claim_next", restarting)

    fast = call(app, _next_path(campaign), {}, token=token)
    django = call(app.django_application, _next_path(campaign), {}, token=token)

    for answer in (fast, django):
        assert answer.status == 503
        assert answer.headers["Retry-After"] == "1"
        assert answer.json()["code"] == "database_unavailable"
    assert app.django_application.calls == 1  # type: ignore[attr-defined]


def test_the_lean_path_runs_the_same_statements(app: AnnotatorFastPath, campaign: Campaign, token: str) -> None:
    first = call(app, _next_path(campaign), {}, token=token).json()["assignment"]
    call(app, _rating_path(first), {"choice": "left"}, token=token)  # the first visit creates the rater
    fill_missing_html()

    with CaptureQueriesContext(connection) as next_queries:
        assignment = call(app, _next_path(campaign), {}, token=token).json()["assignment"]
    with CaptureQueriesContext(connection) as rating_queries:
        assert call(app, _rating_path(assignment), {"choice": "tie"}, token=token).status == 201

    # token, BEGIN, lock the standing, live leases (+ sweep), claim (+ what is shown), COMMIT
    assert len(next_queries.captured_queries) == 6
    # token, BEGIN, lock the standing (+ the assignment and its campaign), write everything, COMMIT
    assert len(rating_queries.captured_queries) == 5


def test_the_plain_payloads_are_what_the_documented_serializers_give(campaign: Campaign, annotator: User) -> None:
    lease = services.claim_next(user=annotator, campaign_id=campaign.pk)
    assert lease.shown is not None
    assert lease.progress is not None
    view = assignment_view(lease.shown, progress=lease.progress)
    result = services.submit_rating(
        user=annotator, assignment_id=lease.shown.assignment_id, answer=services.RatingInput("left", time_ms=5)
    )

    assert api.assignment_payload(view) == api.AssignmentOutputSerializer().to_representation(view)
    assert api.rating_payload(result) == api.RatingCreateApi.RatingOutputSerializer().to_representation(result)


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        pytest.param(b'{"exclude": ' + b"[" * 5000 + b"]" * 5000 + b"}", 400, id="exclude-5000-deep"),
        pytest.param(b'{"exclude": [[1]]}', 400, id="exclude-nested"),
        pytest.param(b'{"exclude": ["1"]}', 400, id="exclude-string-id"),
        pytest.param(b'{"rationale": "' + b"[" * 5000 + b'"}', 200, id="brackets-in-a-string"),
        pytest.param(b'{"exclude": [], "pad": "' + b"x" * 300_000 + b'"}', 413, id="too-large"),
    ],
)
def test_hostile_bodies_get_the_views_answer_not_a_500(
    app: AnnotatorFastPath, campaign: Campaign, token: str, raw: bytes, status: int
) -> None:
    fast = call(app, _next_path(campaign), raw=raw, token=token)
    django = call(app.django_application, _next_path(campaign), raw=raw, token=token)

    assert fast.status == status
    _same_answer(fast, django, ignore=("lease_expires",) if status == 200 else ())


@pytest.mark.parametrize(
    ("revoke", "status"),
    [
        pytest.param(lambda c, u: c.annotators.remove(u), 404, id="removed"),
        pytest.param(lambda c, u: Campaign.objects.filter(pk=c.pk).update(status="paused"), 409, id="paused"),
        pytest.param(lambda c, u: Campaign.objects.filter(pk=c.pk).update(status="closed"), 409, id="closed"),
    ],
)
def test_a_rating_is_refused_on_the_lean_path_once_the_right_to_annotate_ends(
    app: AnnotatorFastPath, campaign: Campaign, annotator: User, token: str, revoke: Any, status: int
) -> None:
    assignment = call(app, _next_path(campaign), {}, token=token).json()["assignment"]
    revoke(campaign, annotator)

    fast = call(app, _rating_path(assignment), {"choice": "left"}, token=token)

    assert fast.status == status
    _same_answer(fast, call(app.django_application, _rating_path(assignment), {"choice": "left"}, token=token))
    assert not Rating.objects.exists()
    assert app.django_application.calls == 1  # type: ignore[attr-defined]


def test_failed_tokens_are_counted_once_and_throttled_past_the_address_limit(
    app: AnnotatorFastPath, campaign: Campaign, token: str
) -> None:
    unknown = "0" * 40
    first = call(app, _next_path(campaign), {}, token=unknown, REMOTE_ADDR="10.1.0.1")
    assert SignInFailures.objects.get(key="address:10.1.0.1").failures == 1  # the lean path hands it to Django
    for _ in range(49):
        assert call(app, _next_path(campaign), {}, token=unknown, REMOTE_ADDR="10.1.0.1").status == 403

    throttled = call(app, _next_path(campaign), {}, token=unknown, REMOTE_ADDR="10.1.0.1")
    good_elsewhere = call(app, _next_path(campaign), {}, token=token, REMOTE_ADDR="10.1.0.2")

    assert first.status == 403
    assert (throttled.status, throttled.headers["Retry-After"]) == (429, "900")
    assert good_elsewhere.status == 200
    assert app.django_application.calls == 51  # type: ignore[attr-defined]
