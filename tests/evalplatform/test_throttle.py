"""Sign-in throttling: passwords on the site's and the admin's sign-in pages, API tokens on both request paths.

The clock is injected (evalplatform.throttle.clock), so windows expire without sleeping.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotation.models import SignInFailures
from evalplatform import throttle
from evalplatform.signin import THROTTLED_MESSAGE

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"
T0 = timezone.make_aware(datetime(2026, 3, 1, 12, 0, 0))
LOCKED = THROTTLED_MESSAGE.split(" Try again")[0]


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(throttle, "clock", fake)
    return fake


SignIn = Callable[..., Any]


@pytest.fixture(params=["/accounts/login/", "/admin/login/"], ids=["site", "admin"])
def sign_in(request: pytest.FixtureRequest) -> SignIn:
    """Return a function posting a username and password to one of the two sign-in pages from an address."""
    url = request.param

    def post(username: str, password: str, *, address: str = "10.0.0.1", **extra: Any) -> Any:
        return Client().post(url, {"username": username, "password": password}, REMOTE_ADDR=address, **extra)

    return post


def _without_csrf_token(response: Any) -> str:
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", response.content.decode())


def _signed_in(response: Any) -> bool:
    return response.status_code == 302 and "_auth_user_id" in response.client.session


def test_the_right_password_signs_in_on_both_pages(clock: Clock, researcher: User, sign_in: SignIn) -> None:
    assert _signed_in(sign_in("rita", PASSWORD))


def test_after_ten_wrong_passwords_the_right_one_is_refused_for_the_window(
    clock: Clock, researcher: User, sign_in: SignIn
) -> None:
    for _ in range(10):
        assert not _signed_in(sign_in("rita", "wrong"))

    refused = sign_in("rita", PASSWORD)

    assert not _signed_in(refused)
    assert LOCKED in refused.content.decode()
    assert "Try again in 15 minutes" in refused.content.decode()
    clock.now += timedelta(seconds=899)
    assert not _signed_in(sign_in("rita", PASSWORD))
    clock.now += timedelta(seconds=1)  # the window (900 s from the first failure) has ended
    assert _signed_in(sign_in("rita", PASSWORD))


def test_nine_wrong_passwords_then_the_right_one_signs_in_and_clears_the_account(
    clock: Clock, researcher: User, sign_in: SignIn
) -> None:
    for _ in range(9):
        sign_in("rita", "wrong")

    assert _signed_in(sign_in("rita", PASSWORD))
    assert not SignInFailures.objects.filter(key="account:rita").exists()


def test_the_account_lock_holds_from_another_address(clock: Clock, researcher: User, sign_in: SignIn) -> None:
    for index in range(10):
        sign_in("rita", "wrong", address=f"10.0.1.{index}")

    assert not _signed_in(sign_in("rita", PASSWORD, address="192.0.2.7"))


def test_an_unknown_account_is_locked_with_the_same_message(clock: Clock, researcher: User, sign_in: SignIn) -> None:
    for _ in range(10):
        sign_in("rita", "wrong", address="10.0.2.1")
        sign_in("nobody", "wrong", address="10.0.2.2")

    known = _without_csrf_token(sign_in("rita", "wrong", address="10.0.2.1"))
    unknown = _without_csrf_token(sign_in("nobody", "wrong", address="10.0.2.2"))

    assert LOCKED in known
    assert known.replace("rita", "nobody") == unknown


def test_fifty_failures_from_one_address_lock_it_for_every_username(
    clock: Clock, researcher: User, sign_in: SignIn
) -> None:
    for index in range(50):
        sign_in(f"guess{index}", "wrong", address="10.0.3.1")

    assert not _signed_in(sign_in("rita", PASSWORD, address="10.0.3.1"))
    assert _signed_in(sign_in("rita", PASSWORD, address="10.0.3.2"))


def test_with_one_trusted_proxy_the_address_comes_from_x_forwarded_for(
    clock: Clock, settings: Any, researcher: User, sign_in: SignIn
) -> None:
    settings.EVALPLATFORM_TRUSTED_PROXIES = 1
    for index in range(50):
        sign_in(f"guess{index}", "wrong", address="10.9.9.9", HTTP_X_FORWARDED_FOR="spoofed, 198.51.100.4")

    assert not _signed_in(sign_in("rita", PASSWORD, address="10.9.9.9", HTTP_X_FORWARDED_FOR="198.51.100.4"))
    assert _signed_in(sign_in("rita", PASSWORD, address="10.9.9.9", HTTP_X_FORWARDED_FOR="198.51.100.5"))


def test_without_trusted_proxies_x_forwarded_for_is_ignored(clock: Clock) -> None:
    meta = {"REMOTE_ADDR": "10.0.0.9", "HTTP_X_FORWARDED_FOR": "198.51.100.4"}

    assert throttle.client_address(meta) == "10.0.0.9"


@pytest.mark.parametrize(
    ("forwarded", "proxies", "address"),
    [
        ("198.51.100.4", 1, "198.51.100.4"),
        ("203.0.113.1, 198.51.100.4", 1, "198.51.100.4"),
        ("203.0.113.1, 198.51.100.4", 2, "203.0.113.1"),
        ("198.51.100.4", 2, "198.51.100.4"),
        ("not-an-address", 1, "10.0.0.9"),
        (" 2001:DB8::1 ", 1, "2001:db8::1"),
    ],
)
def test_the_client_address_behind_proxies(settings: Any, forwarded: str, proxies: int, address: str) -> None:
    settings.EVALPLATFORM_TRUSTED_PROXIES = proxies

    assert throttle.client_address({"REMOTE_ADDR": "10.0.0.9", "HTTP_X_FORWARDED_FOR": forwarded}) == address


def test_expired_rows_are_deleted_by_later_failures(clock: Clock) -> None:
    for index in range(5):
        throttle.record_failure([throttle.address_key(f"10.0.4.{index}")])
    clock.now += timedelta(seconds=901)

    throttle.record_failure([throttle.address_key("10.0.5.1")])

    assert list(SignInFailures.objects.values_list("key", flat=True)) == ["address:10.0.5.1"]


# ---- API tokens --------------------------------------------------------------------------------------------


def _token_client(key: str, address: str) -> APIClient:
    client = APIClient(REMOTE_ADDR=address)
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def test_token_failures_get_429_with_retry_after_past_the_address_limit(clock: Clock, annotator: User) -> None:
    good = Token.objects.create(user=annotator).key
    statuses = [
        _token_client(f"{index:040x}", "10.0.6.1").get("/api/v1/annotator/campaigns/").status_code
        for index in range(51)
    ]

    assert statuses == [403] * 50 + [429]
    throttled = _token_client("0" * 40, "10.0.6.1").get("/api/v1/annotator/campaigns/")
    assert throttled.status_code == 429
    assert throttled["Retry-After"] == "900"
    # A good token works, from another client and from this one: only failures are throttled.
    assert _token_client(good, "10.0.6.2").get("/api/v1/annotator/campaigns/").status_code == 200
    assert _token_client(good, "10.0.6.1").get("/api/v1/annotator/campaigns/").status_code == 200
    assert _token_client("0" * 40, "10.0.6.2").get("/api/v1/annotator/campaigns/").status_code == 403
    clock.now += timedelta(seconds=900)
    assert _token_client("0" * 40, "10.0.6.1").get("/api/v1/annotator/campaigns/").status_code == 403


def test_token_and_password_failures_share_the_address_count(clock: Clock, researcher: User) -> None:
    for index in range(50):
        _token_client(f"{index:040x}", "10.0.7.1").get("/api/v1/annotator/campaigns/")

    refused = Client().post("/accounts/login/", {"username": "rita", "password": PASSWORD}, REMOTE_ADDR="10.0.7.1")

    assert LOCKED in refused.content.decode()
