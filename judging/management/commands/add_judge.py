"""Create or update an LLM judge configuration (idempotent: run it again to change settings).

The operator's command: a judge it creates has no owner (every researcher may use it, only superusers change it)
unless --owner names a user. The operator's rules on endpoints and key variables hold here too.
"""

from __future__ import annotations

from argparse import ArgumentParser
from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError

from evalplatform.exceptions import DomainError
from judging import services
from judging.models import JudgeConfig, ModelFamily

# option name -> (model field, parser)
OPTIONS: dict[str, tuple[str, Any]] = {
    "base_url": ("base_url", str),
    "model": ("model", str),
    "api_key_env": ("api_key_env", str),
    "template": ("template", str),
    "system_prompt": ("system_prompt", str),
    "verdict_format": ("verdict_format", str),
    "verdict_pattern": ("verdict_pattern", str),
    "temperature": ("temperature", float),
    "max_tokens": ("max_tokens", int),
    "max_concurrency": ("max_concurrency", int),
    "requests_per_minute": ("requests_per_minute", int),
    "timeout": ("timeout_seconds", float),
    "max_attempts": ("max_attempts", int),
    "price_input": ("price_input_per_million", Decimal),
    "price_output": ("price_output_per_million", Decimal),
}


class Command(BaseCommand):
    help = "Create or update an LLM judge: an OpenAI-compatible endpoint, a model and a prompt template."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--owner", help="username of the judge's owner (default: none, an operator's judge)")
        parser.add_argument("--base-url", help="e.g. http://127.0.0.1:8001/v1 (required when creating)")
        parser.add_argument("--model", help="required when creating")
        parser.add_argument("--api-key-env", help="NAME of the environment variable holding the API key")
        parser.add_argument("--template", choices=JudgeConfig.Template.values)
        parser.add_argument("--custom-template-file", help="user message template with {question}, {answer_a}...")
        parser.add_argument("--system-prompt")
        parser.add_argument("--verdict-format", choices=JudgeConfig.VerdictFormat.values)
        parser.add_argument("--verdict-pattern")
        parser.add_argument("--temperature")
        parser.add_argument("--max-tokens")
        parser.add_argument("--max-concurrency")
        parser.add_argument("--requests-per-minute")
        parser.add_argument("--timeout", help="seconds per call")
        parser.add_argument("--max-attempts")
        parser.add_argument("--price-input", help="price per million input tokens")
        parser.add_argument("--price-output", help="price per million output tokens")
        parser.add_argument("--one-order", action="store_true", help="judge each comparison in one order only")
        parser.add_argument("--both-orders", action="store_true", help="judge both orders (the default)")
        parser.add_argument(
            "--family", help="the model family of the judge, for the judge report ('' for none: from the model name)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        settings = _settings(options)
        exists = JudgeConfig.objects.filter(name=options["name"]).exists()
        if not exists and not (settings.get("base_url") and settings.get("model")):
            raise CommandError("--base-url and --model are required to create a judge")
        owner = _owner(options["owner"])
        try:
            judge, created = services.save_judge(name=options["name"], **settings)
            if options["owner"] is not None:
                services.set_judge_owner(judge=judge, owner=owner)
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        verb = "created" if created else "updated"
        self.stdout.write(f"{verb} judge {judge.name}: {judge.model} at {judge.base_url}, template {judge.template}")


def _owner(username: str | None) -> User | None:
    """Return the user named by --owner ("" or absent: none)."""
    if not username:
        return None
    owner = User.objects.filter(username=username).first()
    if owner is None:
        raise CommandError(f"--owner: no user named {username!r}")
    return owner


def _settings(options: dict[str, Any]) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    for option, (field, parse) in OPTIONS.items():
        value = options.get(option)
        if value is None:
            continue
        try:
            settings[field] = parse(value)
        except (ValueError, InvalidOperation) as exc:
            raise CommandError(f"--{option.replace('_', '-')}: not a valid number: {value!r}") from exc
    if options.get("custom_template_file"):
        path = options["custom_template_file"]
        try:
            with open(path, encoding="utf-8") as handle:
                settings["custom_template"] = handle.read()
        except OSError as exc:
            raise CommandError(f"--custom-template-file: cannot read {path}: {exc.strerror}") from exc
        settings.setdefault("template", JudgeConfig.Template.CUSTOM)
    if options["one_order"] and options["both_orders"]:
        raise CommandError("--one-order and --both-orders contradict each other")
    if options["one_order"] or options["both_orders"]:
        settings["both_orders"] = bool(options["both_orders"])
    if options.get("family") is not None:
        settings["family"] = _family(options["family"])
    return settings


def _family(name: str) -> ModelFamily | None:
    """Return the model family named by --family ("": none)."""
    if not name:
        return None
    family = ModelFamily.objects.filter(name=name).first()
    if family is None:
        known = ", ".join(ModelFamily.objects.values_list("name", flat=True)[:20]) or "none yet: add them in the admin"
        raise CommandError(f"--family: no model family named {name!r} (known: {known})")
    return family
