from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponsePermanentRedirect
from django.templatetags.static import static
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from evalplatform.signin import ThrottledAdminAuthenticationForm, ThrottledAuthenticationForm

admin.site.site_header = "evalplatform"
admin.site.site_title = "evalplatform admin"
admin.site.login_form = ThrottledAdminAuthenticationForm


def favicon(request: HttpRequest) -> HttpResponsePermanentRedirect:
    """Send /favicon.ico to the site's icon (resolved per request: the manifest of hashed names comes later)."""
    return HttpResponsePermanentRedirect(static("frontend/favicon.svg"))


urlpatterns = [
    path("admin/", admin.site.urls),
    path(
        "accounts/login/", auth_views.LoginView.as_view(authentication_form=ThrottledAuthenticationForm), name="login"
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # Signed-in users only (SPECTACULAR_SETTINGS["SERVE_PERMISSIONS"]); the docs page sends a browser to sign in.
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", login_required(SpectacularSwaggerView.as_view(url_name="api-schema")), name="api-docs"),
    path("api/v1/", include("annotation.urls")),
    path("api/v1/", include("judging.urls")),
    path("api/v1/", include("results.urls")),
    path("api/v1/", include("annotation.research.urls")),
    path("results/", include("results.site_urls")),
    # Browsers ask for /favicon.ico on pages that name no icon (the admin's): send them to the site's icon.
    path("favicon.ico", favicon, name="favicon"),
    path("", include("frontend.urls")),
]
