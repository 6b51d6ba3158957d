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
from markdown.extensions import Extension, codehilite
from pygments.formatters.html import HtmlFormatter
from pygments.lexer import Lexer
from pygments.lexers import find_lexer_class_by_name
from pygments.util import ClassNotFound

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


class _HtmlFormatter(HtmlFormatter):  # type: ignore[misc]
    """Pygments' HTML formatter, building its token-to-class tables once per style rather than once per code block.

    codehilite makes a formatter for every code block, and building the tables costs more than highlighting a
    short block (bulk imports render every model answer once).
    """

    _tables: dict[tuple[object, str], tuple[dict[object, str], dict[str, object]]] = {}
    ttype2class: dict[object, str]
    class2style: dict[str, object]

    def _create_stylesheet(self) -> None:
        key = (self.style, self.classprefix)
        tables = self._tables.get(key)
        if tables is None:
            super()._create_stylesheet()
            self._tables[key] = (self.ttype2class, self.class2style)
        else:
            self.ttype2class, self.class2style = tables


@functools.lru_cache(maxsize=512)  # bounded: the language names come from untrusted text
def _lexer_class(alias: str) -> type[Lexer] | None:
    try:
        found: type[Lexer] = find_lexer_class_by_name(alias)
    except ClassNotFound:
        return None
    return found


def _get_lexer_by_name(alias: str | None, **options: object) -> Lexer:
    """pygments.lexers.get_lexer_by_name with the alias lookup remembered.

    Pygments scans its whole lexer table (and, for a name it does not know, the installed packages' entry points)
    on every call; codehilite calls it for every code block, twice for a block without a known language.
    """
    lexer_class = _lexer_class(alias) if alias else None
    if lexer_class is None:
        raise ClassNotFound(f"no lexer for alias {alias!r} found")
    return lexer_class(**options)


codehilite.get_lexer_by_name = _get_lexer_by_name  # the name codehilite looks lexers up by

_local = threading.local()


def _converter() -> markdown.Markdown:
    # Building a Markdown instance loads every extension; reuse one per thread (instances are not thread-safe).
    converter: markdown.Markdown | None = getattr(_local, "converter", None)
    if converter is None:
        converter = markdown.Markdown(
            extensions=["fenced_code", "tables", "sane_lists", "codehilite", _EscapeRawHtml()],
            extension_configs={
                "codehilite": {"guess_lang": False, "css_class": "codehilite", "pygments_formatter": _HtmlFormatter}
            },
            output_format="html",
        )
        _local.converter = converter
    return converter


# Annotators are shown the HTML stored with each text (annotation.stored_html); this cache catches the texts an
# import or a fill renders more than once (the same prompt or answer in several rows).
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
