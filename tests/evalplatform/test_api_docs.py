"""The OpenAPI schema and its docs page: for signed-in users, with swagger-ui served from the project itself."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.staticfiles import finders
from django.test import Client
from django.urls import reverse
from rest_framework.authtoken.models import Token

pytestmark = pytest.mark.django_db

URL_ATTRIBUTE = re.compile(r"""\b(?:src|href)\s*=\s*["']([^"']+)["']""")
ABSOLUTE_URL = re.compile(r"""(?:https?:)?//[^\s"'<>/]+""")


def _signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_docs_page_loads_only_same_origin_files_that_the_project_serves(annotator: User) -> None:
    response = _signed_in(annotator).get("/api/docs/")

    assert response.status_code == 200
    page = response.content.decode()
    # No script, style or icon from another host: not in an attribute, not in the inline script.
    assert ABSOLUTE_URL.findall(page) == []
    urls = URL_ATTRIBUTE.findall(page)
    static_urls = [url for url in urls if url.startswith(settings.STATIC_URL)]
    assert len(static_urls) == len(urls) >= 4  # swagger-ui's stylesheet, two scripts and the favicon
    for url in static_urls:
        found = finders.find(url.removeprefix(settings.STATIC_URL))
        assert found, url
        with open(str(found), "rb") as served:
            assert served.read(1), url


@pytest.mark.parametrize("url", ["/api/schema/", "/api/docs/"])
def test_anonymous_visitors_cannot_read_the_schema_or_its_docs(url: str) -> None:
    response = Client().get(url)

    if url == "/api/docs/":
        assert response.status_code == 302
        assert response["Location"] == reverse("login") + "?next=/api/docs/"
    else:
        assert response.status_code in (401, 403)
        assert b"openapi" not in response.content


@pytest.mark.parametrize("persona", ["annotator", "researcher"])
def test_signed_in_users_read_the_schema_by_session_or_token(persona: str, request: Any) -> None:
    user: User = request.getfixturevalue(persona)
    by_session = _signed_in(user).get("/api/schema/")
    token = Token.objects.create(user=user)
    by_token = Client().get("/api/schema/", HTTP_AUTHORIZATION=f"Token {token.key}")

    for response in (by_session, by_token):
        assert response.status_code == 200
        assert b"openapi: 3" in response.content
        assert b"/api/v1/campaigns/" in response.content
