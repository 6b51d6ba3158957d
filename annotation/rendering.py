"""Untrusted markdown (prompts, model outputs, instructions) to sanitised HTML, in bounded time and memory.

Two layers of safety: raw HTML in the source is never passed through (it shows as text, which is what an annotator
must see when a model answers with HTML), and the result is cleaned by nh3 with a strict allow-list: no scripts, no
event handlers, no styles, no images and no links (link text stays, the link does not), so nothing in a rendered
output can run or load anything.

Bounded work (docs/security.md, "Markdown"). markdown-it-py parses CommonMark in time linear in the text
(Python-Markdown, used before, scanned the rest of the text for every link: quadratic). What is left is held by
budgets, each a setting, all deterministic except the last:

- a text longer than EVALPLATFORM_MARKDOWN_MAX_CHARS, or nested deeper than EVALPLATFORM_MARKDOWN_MAX_NESTING
  (markdown-it would silently drop what lies deeper), is shown whole as escaped plain text with a note;
- tables: at most EVALPLATFORM_MARKDOWN_MAX_TABLE_CELLS cells per text (later tables show as text) and at most
  TABLE_AUTOCOMPLETED_CELLS empty cells added to one table's short rows (each a few tokens of Python work);
- Pygments, whose lexers are regular expressions of their own (many are quadratic on some inputs), highlights only
  the languages of EVALPLATFORM_MARKDOWN_HIGHLIGHT_LANGUAGES, at most EVALPLATFORM_MARKDOWN_HIGHLIGHT_MAX_CHARS of
  code per text, and stops once EVALPLATFORM_MARKDOWN_HIGHLIGHT_SECONDS have passed; code past any of these is shown
  in the same box without colours. The clock is read between tokens, so it cannot stop one regular expression that
  runs long: the language allow-list is what keeps those out (bench/bench_rendering.py measures the longest step).
"""

from __future__ import annotations

import functools
import html
import importlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from io import StringIO
from typing import Any

import nh3
from django.conf import settings
from markdown_it import MarkdownIt
from markdown_it.rules_block import StateBlock
from markdown_it.rules_block.table import table as _table
from markdown_it.token import Token
from markdown_it.utils import OptionsDict
from pygments.formatters.html import HtmlFormatter
from pygments.lexer import Lexer
from pygments.lexers import find_lexer_class_by_name
from pygments.lexers.special import TextLexer
from pygments.util import ClassNotFound

ALLOWED_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "b", "i", "del", "sup", "sub",
    "code", "pre", "blockquote", "ul", "ol", "li", "table", "thead", "tbody", "tr", "th", "td", "span", "div",
}  # fmt: skip
# Pygments highlights with CSS classes (see frontend/static/frontend/pygments.css), never inline styles.
ALLOWED_ATTRIBUTES = {"span": {"class"}, "div": {"class"}, "code": {"class"}, "pre": {"class"}, "ol": {"start"}}

# markdown-it-py pads a table's short rows with empty cells up to 65,536 per table, which a 4 KB text can ask for
# (about 1.5 s of work); a real table is rarely short of more than a few cells.
TABLE_AUTOCOMPLETED_CELLS = 1000
# (`markdown_it.rules_block.table` the name is the rule function; the module holds the limit it reads every table)
vars(importlib.import_module("markdown_it.rules_block.table"))["MAX_AUTOCOMPLETED_CELLS"] = TABLE_AUTOCOMPLETED_CELLS


@dataclass(frozen=True)
class Limits:
    """The rendering budgets (settings EVALPLATFORM_MARKDOWN_*; defaults in evalplatform/settings.py)."""

    max_chars: int = 100_000
    max_nesting: int = 32
    max_table_cells: int = 10_000
    highlight_max_chars: int = 20_000
    highlight_seconds: float = 0.25
    highlight_languages: frozenset[str] = frozenset()


def limits() -> Limits:
    """Return the budgets in force (read on every call, so tests and operators may change them).

    The same settings give the same Limits object: the render cache keys every entry by it, and a fresh copy per
    entry (its set of language names is about 2 KB) made a bulk import's cache hundreds of MB.
    """
    return _limits_of(
        settings.EVALPLATFORM_MARKDOWN_MAX_CHARS,
        settings.EVALPLATFORM_MARKDOWN_MAX_NESTING,
        settings.EVALPLATFORM_MARKDOWN_MAX_TABLE_CELLS,
        settings.EVALPLATFORM_MARKDOWN_HIGHLIGHT_MAX_CHARS,
        settings.EVALPLATFORM_MARKDOWN_HIGHLIGHT_SECONDS,
        tuple(settings.EVALPLATFORM_MARKDOWN_HIGHLIGHT_LANGUAGES),
    )


@functools.lru_cache(maxsize=8)
def _limits_of(
    max_chars: int, max_nesting: int, max_table_cells: int, highlight_max_chars: int, highlight_seconds: float,
    languages: tuple[str, ...],
) -> Limits:  # fmt: skip
    return Limits(
        max_chars=max_chars,
        max_nesting=max_nesting,
        max_table_cells=max_table_cells,
        highlight_max_chars=highlight_max_chars,
        highlight_seconds=highlight_seconds,
        highlight_languages=frozenset(languages),
    )


class _HtmlFormatter(HtmlFormatter):  # type: ignore[misc]
    """Pygments' HTML formatter, building its token-to-class tables once per style rather than once per code block.

    Building the tables costs more than highlighting a short block (bulk imports render every model answer once).
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


@functools.lru_cache(maxsize=8)
def _allowed_lexers(languages: frozenset[str]) -> dict[str, type[Lexer]]:
    """Return the lexer class of every name (alias) of the allowed languages, by lower-case name.

    Untrusted language names are looked up here only: Pygments scans its whole table, and its plugins' entry points
    for a name it does not know, on every lookup (0.3 ms; ten thousand made-up names in one text took seconds).
    """
    found: dict[str, type[Lexer]] = {}
    for language in sorted(languages):
        try:
            lexer_class: type[Lexer] = find_lexer_class_by_name(language)
        except ClassNotFound:
            continue
        found.update({alias.lower(): lexer_class for alias in lexer_class.aliases})
    return found


class _OutOfTime(Exception):
    pass


clock: Callable[[], float] = time.monotonic  # the highlighting budget's clock (tests set their own)


class _Highlighter:
    """Highlight the code blocks of one text within its budgets."""

    def __init__(self, budget: Limits) -> None:
        self.lexers = _allowed_lexers(budget.highlight_languages)
        self.chars_left = budget.highlight_max_chars
        self.seconds = budget.highlight_seconds
        self.deadline: float | None = None  # starts with the first block that is highlighted
        self.out_of_time = False

    def block(self, code: str, language: str) -> str:
        """Return the block as `<div class="codehilite"><pre>...`, with colours when the budgets allow."""
        lexer_class = self.lexers.get(language.lower())
        if lexer_class is None or len(code) > self.chars_left:
            return _format(TextLexer().get_tokens(code))
        self.chars_left -= len(code)
        if self.deadline is None:
            self.deadline = clock() + self.seconds
        try:
            return _format(_until(lexer_class().get_tokens(code), self.deadline))
        except _OutOfTime:
            self.chars_left = 0
            self.out_of_time = True
            return _format(TextLexer().get_tokens(code))


def _until(tokens: Iterator[tuple[Any, str]], deadline: float) -> Iterator[tuple[Any, str]]:
    for count, token in enumerate(tokens):
        if count % 64 == 0 and clock() > deadline:
            raise _OutOfTime
        yield token


def _format(tokens: Iterator[tuple[Any, str]]) -> str:
    out = StringIO()
    _HtmlFormatter(cssclass="codehilite", wrapcode=True).format(list(tokens), out)
    return out.getvalue()


def _render_fence(self: Any, tokens: list[Token], idx: int, options: OptionsDict, env: dict[str, Any]) -> str:
    token = tokens[idx]
    language = token.info.split(maxsplit=1)[0] if token.info.strip() else ""
    highlighter: _Highlighter = env["highlighter"]
    return highlighter.block(token.content, language)


def _render_code_block(self: Any, tokens: list[Token], idx: int, options: OptionsDict, env: dict[str, Any]) -> str:
    return _format(TextLexer().get_tokens(tokens[idx].content))


def _bounded_table(state: StateBlock, start_line: int, end_line: int, silent: bool) -> bool:
    """markdown-it-py's table rule, refusing further tables once the text's cell budget is spent."""
    cells_left: int = state.env.get("table_cells_left", 0)
    if cells_left <= 0:
        return False
    before = len(state.tokens)
    found = _table(state, start_line, end_line, silent)
    if found and not silent:
        state.env["table_cells_left"] = cells_left - sum(
            t.type in ("td_open", "th_open") for t in state.tokens[before:]
        )
    return found


# markdown-it-py keeps each parse's state in objects of its own (and ours in `env`), so the threads of a gthread
# worker share one parser (Python-Markdown's instances were not thread-safe: it needed one per thread).
@functools.lru_cache(maxsize=8)
def _parser(max_nesting: int) -> MarkdownIt:
    # One past the budget, so that a text at the budget parses whole and a deeper one can be told apart.
    md = MarkdownIt("commonmark", {"html": False, "maxNesting": max_nesting + 1}).enable("table")
    md.block.ruler.at("table", _bounded_table, {"alt": ["paragraph", "reference"]})
    md.add_render_rule("fence", _render_fence)
    md.add_render_rule("code_block", _render_code_block)
    return md


def _plain(text: str, reason: str) -> str:
    """Return the text as escaped plain text with a note (safe by construction: nh3 would drop a leading newline).

    An HTML parser drops the newline that follows `<pre>`, so the one we put there keeps the text's own.
    """
    return (
        f'<div class="render-note">Shown as plain text: {reason}.</div>\n'
        f'<pre class="plain-text">\n{html.escape(text, quote=False)}</pre>'
    )


def _clean(markup: str) -> str:
    return nh3.clean(
        markup,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=set(),
        link_rel=None,
        strip_comments=True,
    )


def _render(text: str, budget: Limits) -> tuple[str, bool]:
    """Return the HTML, and whether it is what any later call would return (no time budget ran out)."""
    if len(text) > budget.max_chars:
        return _plain(text, f"over the rendering limit of {budget.max_chars:,} characters"), True
    md = _parser(budget.max_nesting)
    highlighter = _Highlighter(budget)
    env: dict[str, Any] = {"highlighter": highlighter, "table_cells_left": budget.max_table_cells}
    tokens = md.parse(text, env)
    if any(token.level >= budget.max_nesting for token in tokens):
        return _plain(text, f"nested deeper than the rendering limit of {budget.max_nesting} levels"), True
    return _clean(md.renderer.render(tokens, md.options, env)).rstrip("\n"), not highlighter.out_of_time


class _RenderCache:
    """The most recently rendered short texts, held to a total size (texts and their HTML, in characters)."""

    def __init__(self, max_chars: int, max_text_chars: int) -> None:
        self.max_chars = max_chars
        self.max_text_chars = max_text_chars
        self._entries: OrderedDict[tuple[str, Limits], str] = OrderedDict()
        self._chars = 0
        self._lock = threading.Lock()

    def get(self, text: str, budget: Limits) -> str | None:
        with self._lock:
            found = self._entries.get((text, budget))
            if found is not None:
                self._entries.move_to_end((text, budget))
            return found

    def put(self, text: str, budget: Limits, rendered: str) -> None:
        size = len(text) + len(rendered) + ENTRY_OVERHEAD_CHARS
        if len(text) > self.max_text_chars:
            return
        with self._lock:
            if (text, budget) in self._entries:
                return
            self._entries[(text, budget)] = rendered
            self._chars += size
            while self._chars > self.max_chars:
                (old_text, _), old = self._entries.popitem(last=False)
                self._chars -= len(old_text) + len(old) + ENTRY_OVERHEAD_CHARS

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._chars = 0


# What an entry costs besides its two strings (the dictionary slot, the key tuple, two string headers), counted so
# that a cache of many short texts is bounded too.
ENTRY_OVERHEAD_CHARS = 200

# Annotators are shown the HTML stored with each text (annotation.stored_html); this cache catches the texts an
# import or a fill renders more than once (the same prompt or answer in several rows), within about 8 MB.
render_cache = _RenderCache(max_chars=4_000_000, max_text_chars=20_000)


def render_markdown(text: str) -> str:
    """Return safe HTML for untrusted markdown text, within the rendering budgets (see the module's docstring)."""
    if not text:
        return ""
    budget = limits()
    found = render_cache.get(text, budget)
    if found is None:
        found, repeatable = _render(text, budget)
        if repeatable:
            render_cache.put(text, budget, found)
    return found
