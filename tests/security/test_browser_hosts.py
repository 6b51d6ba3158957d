"""The site asks no other host for anything: every page, as the persona who uses it, on a phone and a desktop.

A CDN's script runs with the site's privileges (the API docs loaded swagger-ui's `@latest` from one), and any
request to another host tells it who reads what. Chromium loads each page with every request recorded; a request
to any host but the live server's is aborted and fails the test.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
from django.test import Client

from tests.security.world import World, build_world

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

VIEWPORTS = {"desktop": {"width": 1440, "height": 900}, "phone": {"width": 390, "height": 844}}
LOCAL_SCHEMES = {"data", "blob", "about"}


def pages_of(world: World) -> dict[str, list[str]]:
    """The pages each persona uses."""
    a = world.a
    assert a.run is not None
    return {
        "anonymous": ["/accounts/login/", "/admin/login/"],
        "alice": ["/", f"/campaigns/{a.campaign.pk}/rate/"],
        "ada": [
            "/results/",
            f"/results/{a.campaign.slug}/",
            f"/results/{a.campaign.slug}/agreement/",
            "/admin/",
            "/admin/annotation/campaign/",
            f"/admin/annotation/campaign/{a.campaign.pk}/change/",
            f"/admin/annotation/campaign/{a.campaign.pk}/import/outputs/",
            f"/admin/judging/judgerun/{a.run.pk}/change/",
            f"/admin/results/campaignreport/{a.campaign.pk}/leaderboard/",
            "/api/docs/",
        ],
    }


def test_no_page_asks_another_host_for_anything(browser: Any, live_server: Any) -> None:
    world = build_world()
    own = urlsplit(live_server.url).netloc
    foreign: list[str] = []
    loaded = 0
    for persona, paths in pages_of(world).items():
        for viewport_name, viewport in VIEWPORTS.items():
            context = browser.new_context(viewport=viewport)
            user = world.users[persona]
            if user is not None:
                client = Client()
                client.force_login(user)
                cookie = client.cookies["sessionid"].value
                context.add_cookies([{"name": "sessionid", "value": cookie, "url": live_server.url}])

            def guard(route: Any, *, where: str = viewport_name) -> None:
                url = route.request.url
                parts = urlsplit(url)
                if parts.scheme in LOCAL_SCHEMES or parts.netloc == own:
                    route.continue_()
                else:
                    foreign.append(f"{where}: {url}")
                    route.abort()

            context.route("**/*", guard)
            page = context.new_page()
            for path in paths:
                response = page.goto(live_server.url + path, wait_until="networkidle")
                assert response is not None
                assert response.status == 200, f"{persona} {path}: {response.status}"
                loaded += 1
            context.close()
    assert loaded == 2 * sum(len(paths) for paths in pages_of(world).values())
    assert not foreign, f"requests to other hosts: {foreign}"
