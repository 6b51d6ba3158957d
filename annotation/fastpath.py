"""A lean WSGI path, in front of Django, for the two requests annotators make all day with a token.

`POST /api/v1/campaigns/{id}/next/` and `POST /api/v1/assignments/{id}/rating/` with `Authorization: Token ...`
(external rating interfaces, crowd platforms, the benchmark) are answered here by the same functions as their
APIViews (`annotation.api.next_assignment` and `create_rating`: same validation, services, status codes and
bodies), without Django's middleware stack and DRF's request cycle, which cost more CPU than the rest of these
requests. What the middleware would add to such a response (security headers, `Vary`) is added here too, computed
once by the middleware itself.

Anything this path is not sure to answer exactly as Django would goes to Django untouched: another URL or method, a
session cookie (the browser page: its CSRF check is Django's), an `Authorization` header that is not one well-formed
token, a token that does not authenticate an active user, a body that is not a JSON object (or is larger or nested
deeper than the views' parser allows), a query string, an `Accept` header other than JSON's, a host Django would
refuse, a plain-HTTP request Django would redirect to HTTPS.
With a middleware it does not know in settings.MIDDLEWARE, or DRF settings on the two views other than those it
mirrors, it answers nothing (`mirrors_configuration`).
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.core import signals
from django.core.exceptions import DisallowedHost, RequestDataTooBig
from django.core.handlers.exception import response_for_exception
from django.core.handlers.wsgi import WSGIHandler, WSGIRequest
from django.http import HttpRequest, HttpResponse
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.security import SecurityMiddleware
from django.urls import reverse
from rest_framework import exceptions as drf_exceptions
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer

from annotation import api
from evalplatform import jsonbody
from evalplatform.api import DATABASE_ERRORS, DATABASE_UNAVAILABLE, RETRY_AFTER_SECONDS, domain_error_body
from evalplatform.authentication import TokenAuthentication
from evalplatform.exceptions import DomainError
from evalplatform.jsonbody import BoundedJSONParser

StartResponse = Callable[..., Any]
WSGIApplication = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
Answer = tuple[int, Any]  # status code and JSON payload (None: no body)
Handler = Callable[[Any, int, Any, WSGIRequest], Answer]

# Headers DRF and the session middleware add to these responses: DRF lists the view's methods (and varies on
# Accept only for views with several renderers); reading request.user, as session authentication is tried first,
# marks the session accessed, so the session middleware adds Vary: Cookie.
API_HEADERS = [("Vary", "Cookie"), ("Allow", "POST, OPTIONS")]
ACCEPTED = {"", "*/*", "application/json"}
JSON_BODY_TYPES = {"application/json", "application/json; charset=utf-8", "application/json;charset=utf-8"}
# The middleware whose effect on these requests this path reproduces (or which have none on them: no session
# cookie, no message, no admin URL, not a static file).
MIRRORED_MIDDLEWARE = {
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "evalplatform.middleware.AdminStaffOnlyMiddleware",
}
STATUS_LINES = {200: "200 OK", 201: "201 Created", 204: "204 No Content", 400: "400 Bad Request"}
STATUS_LINES |= {403: "403 Forbidden", 404: "404 Not Found", 409: "409 Conflict"}


def _next(user: Any, campaign_id: int, data: Any, request: WSGIRequest) -> Answer:
    return api.next_assignment(user=user, campaign_id=campaign_id, data=data)


def _rating(user: Any, assignment_id: int, data: Any, request: WSGIRequest) -> Answer:
    return api.create_rating(user=user, assignment_id=assignment_id, data=data, headers=request.headers)


def _route(name: str) -> re.Pattern[str]:
    """Return a pattern matching the path of the named URL, with its one integer argument as group 1."""
    placeholder = 918273645
    path = reverse(name, args=[placeholder])
    return re.compile(re.escape(path).replace(str(placeholder), r"([0-9]{1,18})"))


def _not_called(request: HttpRequest) -> HttpResponse:
    raise AssertionError("only process_response is used")


def _middleware_headers(*, secure: bool) -> list[tuple[str, str]]:
    """Return the headers the security and clickjacking middleware add to a response (HSTS only over HTTPS)."""
    request = HttpRequest()
    request.is_secure = lambda: secure  # type: ignore[method-assign]
    response = HttpResponse()
    del response["Content-Type"]
    for middleware in (SecurityMiddleware, XFrameOptionsMiddleware):
        if f"{middleware.__module__}.{middleware.__name__}" in settings.MIDDLEWARE:
            response = middleware(_not_called).process_response(request, response)
    return list(response.items())


def mirrors_configuration() -> bool:
    """Return whether Django would handle these requests the way this path does.

    It mirrors these middleware and the two views' DRF settings; with any other (a middleware added to the
    project, throttling, another authentication), every request goes to Django.
    """
    views_as_mirrored = all(
        list(view.authentication_classes) == [SessionAuthentication, TokenAuthentication]
        and list(view.permission_classes) == [IsAuthenticated]
        and not list(view.throttle_classes)
        and list(view.renderer_classes) == [JSONRenderer]
        and list(view.parser_classes)[:1] == [BoundedJSONParser]
        for view in (api.AssignmentNextApi, api.RatingCreateApi)
    )
    return views_as_mirrored and set(settings.MIDDLEWARE) <= MIRRORED_MIDDLEWARE


class AnnotatorFastPath:
    """WSGI application answering token-authenticated `next` and `rating` requests, and passing the rest on."""

    def __init__(self, django_application: WSGIApplication) -> None:
        self.django_application = django_application
        self.routes: list[tuple[re.Pattern[str], Handler]] = []
        if mirrors_configuration():
            self.routes = [(_route("assignment-next"), _next), (_route("rating-create"), _rating)]
        self.middleware_headers = {secure: _middleware_headers(secure=secure) for secure in (False, True)}
        self.headers = {secure: API_HEADERS + self.middleware_headers[secure] for secure in (False, True)}
        self.renderer = JSONRenderer()
        self.authentication = TokenAuthentication()
        self.session_cookie = settings.SESSION_COOKIE_NAME + "="

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") == "POST" and self._plain(environ):
            path = environ.get("PATH_INFO", "")
            for pattern, handler in self.routes:
                match = pattern.fullmatch(path)
                if match is not None:
                    answered = self._answer(environ, handler, int(match[1]))
                    if answered is not None:
                        status, headers, body = answered
                        start_response(status, headers)
                        return [body]
                    break
        return self.django_application(environ, start_response)

    def _plain(self, environ: dict[str, Any]) -> bool:
        """Return whether the request is one this path answers as Django would, as far as headers tell."""
        return (
            self.session_cookie not in environ.get("HTTP_COOKIE", "")
            and not environ.get("QUERY_STRING")
            and environ.get("HTTP_ACCEPT", "") in ACCEPTED
            and environ.get("CONTENT_TYPE", "").lower() in JSON_BODY_TYPES
            and environ.get("HTTP_AUTHORIZATION", "")[:6].lower() == "token "
        )

    def _answer(
        self, environ: dict[str, Any], handler: Handler, pk: int
    ) -> tuple[str, list[tuple[str, str]], bytes] | None:
        request = WSGIRequest(environ)
        try:
            request.get_host()
        except DisallowedHost:
            return None
        secure = request.is_secure()
        if settings.SECURE_SSL_REDIRECT and not secure:
            return None
        signals.request_started.send(sender=WSGIHandler, environ=environ)
        try:
            try:
                user = self._user(environ)
            except DATABASE_ERRORS:  # as the views answer it (evalplatform.api)
                return self._unavailable(secure)
            data = self._data(request, environ) if user is not None else None
            if user is None or data is None:
                return None
            try:
                code, payload = handler(user, pk, data, request)
            except DomainError as error:
                code, payload = error.status_code, domain_error_body(error)
            except drf_exceptions.ValidationError as error:
                code, payload = error.status_code, error.detail
            except DATABASE_ERRORS:
                return self._unavailable(secure)
            except Exception as error:  # as Django answers an uncaught exception: logged, then its 500 page
                return self._django_response(request, response_for_exception(request, error), secure)
        finally:
            signals.request_finished.send(sender=WSGIHandler)
        body = self.renderer.render(payload)
        headers = [("Content-Type", "application/json")] if body else []
        headers += self.headers[secure] + [("Content-Length", str(len(body)))]
        return STATUS_LINES.get(code) or f"{code} {HttpResponse(status=code).reason_phrase}", headers, body

    def _unavailable(self, secure: bool) -> tuple[str, list[tuple[str, str]], bytes]:
        """Return the views' 503 for a database that is unavailable for a moment."""
        body = self.renderer.render(DATABASE_UNAVAILABLE)
        headers = [("Content-Type", "application/json"), ("Retry-After", RETRY_AFTER_SECONDS), *self.headers[secure]]
        return "503 Service Unavailable", [*headers, ("Content-Length", str(len(body)))], body

    def _user(self, environ: dict[str, Any]) -> Any:
        """Return the active user of a well-formed token, or None (Django then answers, with DRF's errors)."""
        # Split and decoded as DRF's TokenAuthentication does (header bytes, ASCII whitespace, UTF-8 key).
        parts = environ["HTTP_AUTHORIZATION"].encode("iso-8859-1").split()
        if len(parts) != 2 or parts[0].lower() != b"token":
            return None
        try:
            user, _ = self.authentication.authenticate_credentials(parts[1].decode())
        except (UnicodeError, drf_exceptions.AuthenticationFailed):
            return None
        return user

    def _data(self, request: WSGIRequest, environ: dict[str, Any]) -> dict[str, Any] | None:
        """Return the JSON object in the body (empty body: {}, as DRF), or None with the body kept for Django.

        The body is parsed as the views' parser does, with its size and depth limits; what it refuses (too large,
        too deep, not JSON) goes to Django, which answers with the parser's error.
        """
        try:
            if int(environ.get("CONTENT_LENGTH") or 0) > BoundedJSONParser.max_bytes:
                return None
            raw = request.body
        except (ValueError, RequestDataTooBig):  # refused before reading: Django answers it
            return None
        try:
            data = jsonbody.loads(raw) if raw else {}
        except ValueError:  # the views' parser refuses it (BodyTooDeep too), with its message
            data = None
        if not isinstance(data, dict):
            environ["wsgi.input"] = io.BytesIO(raw)
            return None
        return data

    def _django_response(
        self, request: WSGIRequest, response: HttpResponse, secure: bool
    ) -> tuple[str, list[tuple[str, str]], bytes]:
        for name, value in self.middleware_headers[secure]:
            response.headers.setdefault(name, value)
        response.headers["Content-Length"] = str(len(response.content))
        return f"{response.status_code} {response.reason_phrase}", list(response.items()), response.content
