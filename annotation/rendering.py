"""Untrusted markdown (prompts, model outputs, instructions) to sanitised HTML.

Two layers: raw HTML in the source is never passed through by Markdown (it shows as text, which is what an
annotator must see when a model answers with HTML), and the result is cleaned by nh3 with a strict allow-list:
no scripts, no event handlers, no styles, no images and no links (link text stays, the link does not), so
nothing in a rendered output can run or load anything.
"""

from __future__ import annotations

import functools
import threading

import markdown
import nh3
from markdown.extensions import Extension

ALLOWED_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "b", "i", "del", "sup", "sub",
    "code", "pre", "blockquote", "ul", "ol", "li", "table", "thead", "tbody", "tr", "th", "td", "span", "div",
}  # fmt: skip
# Pygments highlights with CSS classes (see frontend/static/frontend/pygments.css), never inline styles.
ALLOWED_ATTRIBUTES = {"span": {"class"}, "div": {"class"}, "code": {"class"}, "pre": {"class"}, "ol": {"start"}}


class _EscapeRawHtml(Extension):  # type: ignore[misc]
    """Treat raw HTML in the source as text instead of passing it through."""

    def extendMarkdown(self, md: markdown.Markdown) -> None:
        md.preprocessors.deregister("html_block")
        md.inlinePatterns.deregister("html")


_local = threading.local()


def _converter() -> markdown.Markdown:
    # Building a Markdown instance loads every extension; reuse one per thread (instances are not thread-safe).
    converter: markdown.Markdown | None = getattr(_local, "converter", None)
    if converter is None:
        converter = markdown.Markdown(
            extensions=["fenced_code", "tables", "sane_lists", "codehilite", _EscapeRawHtml()],
            extension_configs={"codehilite": {"guess_lang": False, "css_class": "codehilite"}},
            output_format="html",
        )
        _local.converter = converter
    return converter


# Partially rated comparisons are served first, so a comparison's prompt and outputs are usually shown again
# within moments, often by the same worker process; rendering costs more than the rest of the request.
RENDER_CACHE_SIZE = 2048


@functools.lru_cache(maxsize=RENDER_CACHE_SIZE)
def render_markdown(text: str) -> str:
    """Return safe HTML for untrusted markdown text (remembered for the most recently rendered texts)."""
    if not text:
        return ""
    html = _converter().reset().convert(text)
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=set(),
        link_rel=None,
        strip_comments=True,
    )
