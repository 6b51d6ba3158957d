"""LLM judge configurations, runs and verdicts (issue 5)."""

from __future__ import annotations
