from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden


class AdminStaffOnlyMiddleware:
    """Refuse the admin to signed-in users who are not staff, instead of showing them its login form.

    Annotators never see the admin: a signed-in non-staff user gets a plain 403 on every admin URL.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.prefix = "/" + getattr(settings, "ADMIN_URL", "admin/")

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if request.path.startswith(self.prefix) and user is not None and user.is_authenticated and not user.is_staff:
            return HttpResponseForbidden("The admin is for researchers only.")
        return self.get_response(request)
