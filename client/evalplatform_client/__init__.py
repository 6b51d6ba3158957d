"""Python client of the evalplatform researcher API (httpx only, no Django).

from evalplatform_client import Client
client = Client("http://127.0.0.1:8000", token="...")
campaign = client.campaigns.create(name="Weekly", slug="weekly")
"""

from __future__ import annotations

from evalplatform_client._http import RetryPolicy
from evalplatform_client.campaign import Campaign
from evalplatform_client.client import Campaigns, Client, Judges, Panels
from evalplatform_client.errors import (
    APIError,
    AuthenticationFailed,
    Conflict,
    ConnectionFailed,
    EvalPlatformError,
    IdempotencyKeyReused,
    ImportRefused,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    ServerError,
    ValidationError,
    WaitTimeout,
)
from evalplatform_client.progress import Progress, StderrProgress
from evalplatform_client.results import ExportResult
from evalplatform_client.runs import JudgeRun, PanelRun

__all__ = [
    "APIError",
    "AuthenticationFailed",
    "Campaign",
    "Campaigns",
    "Client",
    "Conflict",
    "ConnectionFailed",
    "EvalPlatformError",
    "ExportResult",
    "IdempotencyKeyReused",
    "ImportRefused",
    "JudgeRun",
    "Judges",
    "NotFound",
    "PanelRun",
    "Panels",
    "PayloadTooLarge",
    "PermissionDenied",
    "Progress",
    "RateLimited",
    "RetryPolicy",
    "ServerError",
    "StderrProgress",
    "ValidationError",
    "WaitTimeout",
]
