"""Token authentication in one prepared statement, with failures throttled per client address.

DRF's TokenAuthentication loads the token and its user through the ORM, which costs more Python than the rest
of an annotator's request; this does the same lookup, with the same errors, in one statement. A token that does
not authenticate counts as a failure of the client's address (evalplatform.throttle); past the address's limit,
failures are answered 429 with Retry-After instead of 403. A token that authenticates never touches the counts.
"""

from __future__ import annotations

import functools
from typing import Any

from django.contrib.auth import get_user_model
from django.db import DEFAULT_DB_ALIAS
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token
from rest_framework.request import Request

from evalplatform import throttle
from evalplatform.db import prepared_cursor


@functools.cache
def _token_sql() -> tuple[str, list[str], list[str]]:
    user_model = get_user_model()
    token_fields = [f.attname for f in Token._meta.concrete_fields]
    user_fields = [f.attname for f in user_model._meta.concrete_fields]
    columns = [f"t.{f.column}" for f in Token._meta.concrete_fields]
    columns += [f"u.{f.column}" for f in user_model._meta.concrete_fields]
    sql = (
        f"SELECT {', '.join(columns)} FROM {Token._meta.db_table} t "
        f"JOIN {user_model._meta.db_table} u ON u.{user_model._meta.pk.column} = t.user_id WHERE t.key = %s"
    )
    return sql, token_fields, user_fields


class InvalidToken(exceptions.AuthenticationFailed):
    """A well-formed token header whose key does not authenticate an active user."""


class TokenAuthentication(authentication.TokenAuthentication):
    """`Authorization: Token <key>`, as DRF's, with the token and its user read in one prepared statement."""

    def authenticate(self, request: Request) -> tuple[Any, Token] | None:
        try:
            return super().authenticate(request)
        except InvalidToken:
            address = throttle.address_key(throttle.client_address(request.META))
            wait = throttle.record_failure([address])
            if wait is not None:
                raise exceptions.Throttled(wait=wait) from None
            raise

    def authenticate_credentials(self, key: str) -> tuple[Any, Token]:
        sql, token_fields, user_fields = _token_sql()
        with prepared_cursor() as cursor:
            cursor.execute(sql, [key])
            row = cursor.fetchone()
        if row is None:
            raise InvalidToken(_("Invalid token."))
        token = Token.from_db(DEFAULT_DB_ALIAS, token_fields, row[: len(token_fields)])
        user = get_user_model().from_db(DEFAULT_DB_ALIAS, user_fields, row[len(token_fields) :])
        if not user.is_active:
            raise InvalidToken(_("User inactive or deleted."))
        token.user = user
        return user, token
