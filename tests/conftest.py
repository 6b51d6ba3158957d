"""Shared fixtures: personas (researcher, annotator, other_annotator, outsider) and a small campaign."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from rest_framework.test import APIClient

from tests import factories

SHARED_DATA = factories.SHARED_DATA


@pytest.fixture(autouse=True, scope="session")
def _in_memory_celery_broker() -> None:
    """Keep the tasks that services enqueue in this process (tests that run a worker choose their own broker).

    Without it they would pile up in the checkout's var/celery/ queue, where the demo's worker would pick them up.
    """
    from evalplatform.celery import app

    app.conf.broker_url = "memory://"
    app.conf.broker_transport_options = {}


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    """Hash the personas' passwords cheaply: the default hasher makes each user cost half a second."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def researcher(db: None) -> User:
    user = factories.UserFactory.create(username="rita", is_staff=True)
    codenames = [
        f"{action}_{model}"
        for model in ("campaign", "prompt", "output", "comparison", "rating", "rater", "assignment")
        for action in ("add", "change", "view", "delete")
    ]
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="annotation", codename__in=codenames))
    return user


@pytest.fixture
def annotator(db: None) -> User:
    return factories.UserFactory.create(username="alice")


@pytest.fixture
def other_annotator(db: None) -> User:
    return factories.UserFactory.create(username="bob")


@pytest.fixture
def outsider(db: None) -> User:
    return factories.UserFactory.create(username="charlie")


@pytest.fixture
def campaign(researcher: User, annotator: User, other_annotator: User) -> Any:
    """Return an active campaign: 4 prompts x 3 models, all pairs, open to alice and bob."""
    campaign = factories.CampaignFactory.create(owner=researcher, status="active")
    campaign.annotators.add(annotator, other_annotator)
    factories.populate_campaign(campaign, prompts=4, models=["model-x", "model-y", "model-z"])
    return campaign


@pytest.fixture
def api_client_for() -> Callable[[User | None], APIClient]:
    def make(user: User | None) -> APIClient:
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    return make
