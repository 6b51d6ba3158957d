"""Template filters for results pages."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.filter
def figure(item: dict[str, Any] | None) -> str:
    """Render a metric as 'value [low, high] (agree/pairs)'."""
    if not item:
        return "n/a"
    value = item.get("value")
    text = "n/a" if value is None else f"{value:.3f}"
    ci = item.get("ci")
    if ci and ci[0] is not None and ci[1] is not None:
        text += f" [{ci[0]:.3f}, {ci[1]:.3f}]"
    if "pairs" in item:
        text += f" ({item['agree']}/{item['pairs']})"
    elif "n" in item:
        text += f" ({item.get('agree', item.get('left'))}/{item['n']})"
    return text


@register.filter
def get(mapping: dict[str, Any], key: str) -> Any:
    """Return mapping[key], or None."""
    return mapping.get(key) if mapping else None
