"""The sign-in forms of the site (/accounts/login/) and the admin (/admin/login/), throttled (evalplatform.throttle).

Failed passwords count per account (the username as typed, whether or not it exists) and per client address. Once
either has reached its limit, sign-in is refused for the rest of the window without checking the password, with
the same message whether or not the account exists.
"""

from __future__ import annotations

import math
from typing import Any

from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import authenticate
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from evalplatform import throttle

THROTTLED_MESSAGE = (
    "Too many failed sign-in attempts for this account or from this address. Try again in %(minutes)s minutes."
)


class ThrottledAuthenticationForm(AuthenticationForm):
    """Django's sign-in form, refusing sign-in while the account or the client address is throttled."""

    error_messages = {**AuthenticationForm.error_messages, "throttled": THROTTLED_MESSAGE}
    throttled = False  # for the template: the sign-in page words a wrong password its own way

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if username is None or not password:
            return self.cleaned_data
        account = throttle.account_key(username)
        keys = [account, throttle.address_key(throttle.client_address(self.request.META if self.request else {}))]
        wait = throttle.locked_for(keys)
        if wait is not None:
            self.throttled = True
            raise ValidationError(
                self.error_messages["throttled"], code="throttled", params={"minutes": math.ceil(wait / 60)}
            )
        self.user_cache = authenticate(self.request, username=username, password=password)
        if self.user_cache is None:
            throttle.record_failure(keys)
            raise self.get_invalid_login_error()
        self.confirm_login_allowed(self.user_cache)
        throttle.forget(account)
        return self.cleaned_data


class ThrottledAdminAuthenticationForm(ThrottledAuthenticationForm, AdminAuthenticationForm):
    """The admin's sign-in form (staff accounts only), throttled as the site's."""

    error_messages = {**AdminAuthenticationForm.error_messages, "throttled": THROTTLED_MESSAGE}
