"""Template tags and filters for results pages."""

from __future__ import annotations

from typing import Any

from django import template

from results.views import campaign_rater_names

register = template.Library()

KINDS = {"all": "All raters", "humans": "Humans", "judges": "Judges"}
LISTED_NAMES = 500  # a longer datalist is no help to a reader; any name may still be typed


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


@register.inclusion_tag("results/_raters_form.html", takes_context=True)
def raters_form(context: template.Context) -> dict[str, Any]:
    """Render the rater picker: a kind (all, humans, judges) or named raters, and names to leave out.

    The form sends one ``raters`` value, as the API and the admin read it; the kind picker fills it in.
    """
    request = context["request"]
    raters = request.GET.get("raters", "all").strip() or "all"
    kind = "all" if raters == "everyone" else raters
    names = campaign_rater_names(context["campaign"])
    return {
        "raters": raters,
        "kind": kind if kind in KINDS else "names",
        "kinds": KINDS,
        "exclude": ", ".join(request.GET.getlist("exclude_raters")),
        "rater_names": names[:LISTED_NAMES],
        "n_raters": len(names),
        "error_field": context.get("error_field"),
    }
