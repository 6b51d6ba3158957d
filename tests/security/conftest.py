"""The browser fixture of the frontend tests, for the security suite's browser test."""

from tests.frontend.conftest import browser

__all__ = ["browser"]
