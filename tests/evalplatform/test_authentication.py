"""Token authentication: DRF's behaviour and errors, in one statement."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from evalplatform.authentication import TokenAuthentication

pytestmark = pytest.mark.django_db


def _client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def test_a_valid_token_authenticates_its_user_in_one_statement(annotator: User) -> None:
    token = Token.objects.create(user=annotator)

    with CaptureQueriesContext(connection) as queries:
        user, auth = TokenAuthentication().authenticate_credentials(token.key)

    assert (user.pk, user.username, user.is_active) == (annotator.pk, "alice", True)
    assert user.check_password("password") == annotator.check_password("password")
    assert (auth.key, auth.user_id, auth.user) == (token.key, annotator.pk, user)
    assert len(queries.captured_queries) == 1


# DRF answers 403 rather than 401 because session authentication, listed first, sends no WWW-Authenticate.
def test_an_unknown_token_is_refused_as_invalid(annotator: User) -> None:
    response = _client("0" * 40).get("/api/v1/annotator/campaigns/")

    assert response.status_code == 403
    assert response.json() == {"detail": "Invalid token."}


def test_an_inactive_users_token_is_refused(annotator: User) -> None:
    token = Token.objects.create(user=annotator)
    User.objects.filter(pk=annotator.pk).update(is_active=False)

    response = _client(token.key).get("/api/v1/annotator/campaigns/")

    assert response.status_code == 403
    assert response.json() == {"detail": "User inactive or deleted."}


def test_the_schema_documents_token_and_session_authentication(annotator: User) -> None:
    client = APIClient()
    client.force_authenticate(annotator)

    schemes = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()["components"]["securitySchemes"]

    assert schemes["tokenAuth"]["type"] == "apiKey"
    assert "cookieAuth" in schemes
