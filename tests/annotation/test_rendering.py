"""Untrusted markdown renders to HTML that can neither run nor load anything, in bounded time and memory."""

from __future__ import annotations

import html
import re
import signal
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from html.parser import HTMLParser
from types import FrameType
from typing import Any

import markdown
import pygments
import pygments.lexers
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from markdown.extensions import codehilite
from pygments.formatters.html import HtmlFormatter
from pygments.lexers import get_lexer_by_name

from annotation import rendering
from annotation.rendering import ALLOWED_ATTRIBUTES, ALLOWED_TAGS, render_markdown

HANG_GUARD_SECONDS = 10  # a hang guard, not a speed target: bench/bench_rendering.py measures speed


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    rendering.render_cache.clear()
    yield
    rendering.render_cache.clear()


@contextmanager
def hang_guard(seconds: float = HANG_GUARD_SECONDS) -> Iterator[None]:
    def expire(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError(f"rendering took over {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def calls_to_render(text: str) -> int:
    """Return how many Python and C functions rendering `text` calls: a deterministic measure of its work."""
    count = 0

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        nonlocal count
        if event in ("call", "c_call"):
            count += 1

    rendering.render_cache.clear()
    sys.setprofile(profile)
    try:
        render_markdown(text)
    finally:
        sys.setprofile(None)
    return count


class _Markup(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


def _tags(markup: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    parser = _Markup()
    parser.feed(markup)
    parser.close()
    return parser.tags


def _plain_text_of(markup: str) -> str:
    match = re.fullmatch(r'<div class="render-note">[^<]*</div>\n<pre class="plain-text">\n(.*)</pre>', markup, re.S)
    assert match, markup[:200]
    return html.unescape(match.group(1))


@pytest.mark.parametrize(
    "payload",
    [
        "<script>window.__pwned = 1</script>",
        '<img src=x onerror="window.__pwned = 1">',
        '<a href="javascript:alert(1)">click</a>',
        '<div onclick="alert(1)">x</div>',
        "<iframe src='https://example.org'></iframe>",
        "<style>body { display: none }</style>",
    ],
)
def test_raw_html_is_shown_as_text(payload: str) -> None:
    html = render_markdown(payload)

    assert "<" + payload[1:] not in html
    assert "&lt;" in html
    for live in ("<script", "<img", "<iframe", "<style", "<a ", "<div onclick"):
        assert live not in html


def test_markdown_links_and_images_load_nothing() -> None:
    html = render_markdown("[docs](https://example.org/x) and ![logo](https://example.org/logo.png) <https://e.org>")

    assert "href" not in html
    assert "src" not in html
    assert "<a" not in html
    assert "<img" not in html
    assert "docs" in html


def test_code_is_highlighted_with_classes_not_inline_styles() -> None:
    html = render_markdown('```python\ndef f():\n    return "<b>"\n```')

    assert '<div class="codehilite">' in html
    assert '<span class="k">def</span>' in html
    assert "&lt;b&gt;" in html
    assert "style=" not in html


def test_tables_and_lists_render() -> None:
    html = render_markdown("| a | b |\n|---|---|\n| 1 | 2 |\n\n- one\n- two\n\n1. first\n2. second")

    for tag in ("<table>", "<th>a</th>", "<td>2</td>", "<ul>", "<ol>", "<li>one</li>"):
        assert tag in html


def test_plain_text_is_escaped_once() -> None:
    assert render_markdown("1 < 2 & 3 > 2") == "<p>1 &lt; 2 &amp; 3 &gt; 2</p>"


def test_code_blocks_render_exactly_as_pygments_highlights_them() -> None:
    blocks = [("python", "def f():\n    return 1\n"), ("", "no language\n"), ("no-such-language", "x = 1\n")]
    blocks += [("js", "let a = 1;\n"), ("PYTHON", "x = 1\n")]
    text = "\n\n".join(f"```{language}\n{code}```" for language, code in blocks)

    ours = [render_markdown(f"{i}\n\n{text}") for i in range(2)]  # the second run uses the remembered lookups

    formatter = HtmlFormatter(cssclass="codehilite", wrapcode=True)
    lexers = {"python": "python", "js": "js", "PYTHON": "python"}  # the others are plain text
    expected = "".join(
        pygments.highlight(code, get_lexer_by_name(lexers.get(language, "text")), formatter)
        for language, code in blocks
    )
    for i, markup in enumerate(ours):
        assert markup == f"<p>{i}</p>\n" + expected.rstrip("\n")
    assert '<span class="kd">let</span>' in ours[0]


# The old renderer (Python-Markdown with codehilite) on what model answers are made of: the same HTML, up to the
# whitespace between tags. Where they differ, the new one follows CommonMark: a list indented by 2 spaces nests, a
# list may start right after a paragraph line, a blank line between any two items makes the whole list loose,
# a backslash at the end of a line breaks it, and `***d***` is <em><strong>.
SAME_LOOK = [
    "# Title\n\nSome *emphasis*, **strong**, `code` and a [link](https://example.org).\n\n---\n\n## Part",
    "> quoted\n> text\n\nafter",
    "- one\n- two\n\n1. first\n2. second",
    "3. third\n4. fourth",
    "- loose\n\n- list",
    "| a | b |\n|---|:-:|\n| 1 | `2` |\n| **3** | 4 |",
    '```python\nimport os\n\ndef f(x: int) -> str:\n    """Doc."""\n    return f"{x}"\n```',
    "```\nplain <b> & text\n```\n\n```sql\nSELECT 1 FROM t WHERE a < 2;\n```",
    "    indented code\n    second line",
    "line one\nline two  \nthree",
    "Raw <b>html</b> & entities &amp; &copy; 1 < 2",
    "*a* _b_ __c__ snake_case_name 2*3*4",
]


def _squeeze(markup: str) -> str:
    return re.sub(r">\s+<", "><", markup).strip()


@pytest.mark.parametrize("text", SAME_LOOK)
def test_answers_look_as_they_did_with_the_old_renderer(text: str) -> None:
    old = markdown.Markdown(
        extensions=["fenced_code", "tables", "sane_lists", "codehilite"],
        extension_configs={"codehilite": {"guess_lang": False, "css_class": "codehilite"}},
        output_format="html",
    )
    old.preprocessors.deregister("html_block")
    old.inlinePatterns.deregister("html")
    assert codehilite  # the extension the old renderer highlighted with
    before = rendering._clean(old.convert(text))

    assert _squeeze(render_markdown(text)) == _squeeze(before)


# Each shape from issue 12 and its kin; every one took seconds to minutes (or gigabytes) with Python-Markdown.
PATHOLOGICAL = {
    "links x 4,000": "[c](d) " * 4_000,
    "links x 40,000": "[c](d) " * 40_000,
    "list nested 3,000 deep": "".join("  " * depth + "- a\n" for depth in range(3_000)),
    "blockquotes nested 3,000 deep": ">" * 3_000 + " a",
    "blockquotes nested 3,000 deep, spaced": "> " * 3_000 + "a",
    "star runs": "*a" * 20_000,
    "underscore runs": "_a " * 20_000,
    "emphasis openers": "**" * 20_000 + "a",
    "bracket runs": "[" * 50_000,
    "image openers": "![a](b " * 10_000,
    "backtick runs": "".join("`" * n + "a" for n in range(1, 400)),
    "very long single line": "word " * 19_000,
    "link references": "[a]: b\n" * 5_000 + "[a] " * 5_000,
    "table with short rows": "|a" * 1_000 + "|\n" + "|-" * 1_000 + "|\n" + "x\n" * 3_000,
    "many tables with short rows": ("|a" * 64 + "|\n" + "|-" * 64 + "|\n" + "x\n" * 64 + "\n") * 200,
    "python code that is quadratic for Pygments": "```python\n" + "\n " * 8_000 + "\n```",
    "javascript code that is quadratic for Pygments": "```js\n" + "a." * 8_000 + "\n```",
    "code in a language Pygments lexes slowly": "```autoit\n" + " " * 8_000 + "\n```",
    "code fences in 8,000 made-up languages": "".join(f"```x{i}\n```\n" for i in range(8_000)),
}


@pytest.mark.parametrize("shape", PATHOLOGICAL)
def test_pathological_texts_render_without_hanging(shape: str) -> None:
    text = PATHOLOGICAL[shape]

    with hang_guard():
        markup = render_markdown(text)

    assert markup
    if markup.startswith('<div class="render-note">'):
        assert _plain_text_of(markup) == text
    else:
        assert len(_tags(markup)) <= 3 * len(text)


@pytest.mark.parametrize(
    ("shape", "make"),
    [
        ("links", lambda n: "[c](d) " * n),
        ("bracket runs", lambda n: "[" * n),
        ("star runs", lambda n: "*a" * n),
        ("underscore runs", lambda n: "_a " * n),
        ("backtick runs", lambda n: "".join("`" * (i % 50 + 1) + "a" for i in range(n))),
        ("link references", lambda n: "[a]: b\n" * n + "[a] " * n),
        ("nested lists", lambda n: "".join("  " * (i % 12) + "- a\n" for i in range(n))),
        ("nested blockquotes", lambda n: "".join(">" * (i % 25) + " a\n\n" for i in range(n))),
        ("tables", lambda n: "|a|b|c|\n|-|-|-|\n" + "|1|\n" * n),
        ("code blocks", lambda n: "```python\nx = [1, 2]\n```\n\n" * n),
    ],
)
def test_rendering_work_grows_linearly_with_the_text(shape: str, make: Callable[[int], str], settings: Any) -> None:
    settings.EVALPLATFORM_MARKDOWN_MAX_CHARS = 10_000_000
    settings.EVALPLATFORM_MARKDOWN_MAX_TABLE_CELLS = 10_000_000
    settings.EVALPLATFORM_MARKDOWN_HIGHLIGHT_MAX_CHARS = 10_000_000
    settings.EVALPLATFORM_MARKDOWN_HIGHLIGHT_SECONDS = 3600

    assert not render_markdown(make(200)).startswith('<div class="render-note">')  # parsed, and caches warm

    small, large = calls_to_render(make(200)), calls_to_render(make(2_000))

    assert large <= 12 * small, (small, large)  # linear work is about 10 times; quadratic would be about 100


def test_a_text_over_the_size_budget_is_shown_whole_as_escaped_plain_text(settings: Any) -> None:
    settings.EVALPLATFORM_MARKDOWN_MAX_CHARS = 50
    text = "# <script>alert(1)</script> " + "x" * 40

    markup = render_markdown(text)

    assert markup.startswith('<div class="render-note">Shown as plain text: over the rendering limit of 50 characters')
    assert "<script" not in markup
    assert _plain_text_of(markup) == text
    assert render_markdown(text[:50]).startswith("<h1>")


def test_a_text_nested_past_the_budget_is_shown_as_plain_text_rather_than_cut(settings: Any) -> None:
    settings.EVALPLATFORM_MARKDOWN_MAX_NESTING = 8
    deep = "".join("  " * depth + f"- item {depth}\n" for depth in range(6))

    markup = render_markdown(deep)
    shallow = render_markdown("".join("  " * depth + f"- item {depth}\n" for depth in range(3)))

    assert "nested deeper than the rendering limit of 8 levels" in markup
    assert _plain_text_of(markup) == deep
    assert shallow.count("<ul>") == 3
    assert "item 2" in shallow


def test_tables_past_the_cell_budget_show_as_text(settings: Any) -> None:
    settings.EVALPLATFORM_MARKDOWN_MAX_TABLE_CELLS = 10
    table = "| a | b |\n|---|---|\n| 1 | 2 |\n| 3 | 4 |\n"  # 6 cells

    markup = render_markdown(f"{table}\n{table}\n{table}")

    assert markup.count("<table>") == 2  # the second spends the budget; the third is text
    assert "| a | b |" in markup


def test_a_table_gains_at_most_the_autocompleted_cell_limit() -> None:
    markup = render_markdown("|a" * 100 + "|\n" + "|-" * 100 + "|\n" + "x\n" * 100)

    # 100 header cells, then rows of 1 cell padded to 100 until 1,000 padding cells are spent (10 rows)
    assert markup.count("<td>") == 100 * (rendering.TABLE_AUTOCOMPLETED_CELLS // 99)
    assert markup.endswith("<p>x\n" + "\n".join(["x"] * (100 - 10 - 1)) + "</p>")


def test_code_outside_the_highlight_budgets_is_shown_without_colours(settings: Any) -> None:
    settings.EVALPLATFORM_MARKDOWN_HIGHLIGHT_MAX_CHARS = 30
    settings.EVALPLATFORM_MARKDOWN_HIGHLIGHT_LANGUAGES = ["python"]
    code = "def f():\n    return 1\n"  # 22 characters

    markup = render_markdown(f"```python\n{code}```\n\n```python\n{code}```\n\n```ruby\ndef f; end\n```")

    blocks = markup.split('<div class="codehilite">')[1:]
    assert '<span class="k">def</span>' in blocks[0]
    assert blocks[1].startswith("<pre><span></span><code>def f():\n")  # past the 30 characters
    assert blocks[2].startswith("<pre><span></span><code>def f; end\n")  # not an allowed language


def test_made_up_language_names_are_never_looked_up_in_pygments(monkeypatch: pytest.MonkeyPatch) -> None:
    lookups: list[str] = []

    def find(name: str) -> Any:
        lookups.append(name)
        return pygments.lexers.find_lexer_class_by_name(name)

    monkeypatch.setattr("annotation.rendering.find_lexer_class_by_name", find)
    rendering._allowed_lexers.cache_clear()

    markup = render_markdown("".join(f"```x{i}\nx = 1\n```\n" for i in range(100)) + "```py\nx = 1\n```")

    assert lookups == sorted(rendering.limits().highlight_languages)  # the allowed ones, once
    assert '<span class="n">x</span>' in markup  # `py` is an alias of an allowed language
    assert markup.count('<div class="codehilite"><pre><span></span><code>x = 1\n</code>') == 100


def test_highlighting_stops_when_its_time_is_up(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.EVALPLATFORM_MARKDOWN_HIGHLIGHT_SECONDS = 0.25
    clock = iter(range(1_000_000))  # one second per reading
    monkeypatch.setattr(rendering, "clock", lambda: float(next(clock)))
    text = "```python\n" + "x = 1\n" * 200 + "```\n\n```python\ny = 2\n```"

    first = render_markdown(text)
    monkeypatch.undo()
    again = render_markdown(text)

    assert '<span class="n">' not in first  # both blocks without colours
    assert first.count('<div class="codehilite"><pre><span></span><code>') == 2
    assert '<span class="n">x</span>' in again  # the cut-short HTML was not remembered


def _markdownish() -> st.SearchStrategy[str]:
    pieces = st.sampled_from(
        [
            "*", "_", "**", "`", "```", "```python\n", "~~~", "[", "]", "(", ")", "![", "<", ">", "> ", "- ", "1. ",
            "#", "|", "|-|", "\n", "\n\n", "    ", "\\", "&", "&#", ";", "javascript:", "<script>", "onerror=",
            '"', "'", "=", "<a href=", "data:", "<img src=x ", "x", "word ", "\t", "\x00", "\u2028",
        ]
    )  # fmt: skip
    return st.lists(st.one_of(pieces, st.text(max_size=5)), max_size=60).map("".join)


def _assert_safe(markup: str) -> None:
    for tag, attrs in _tags(markup):
        assert tag in ALLOWED_TAGS, tag
        for name, value in attrs:
            assert name in ALLOWED_ATTRIBUTES.get(tag, set()), (tag, name)
            assert not name.startswith("on")
            assert "javascript:" not in (value or "").lower()
    assert "<script" not in markup.lower()


@hypothesis_settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.one_of(st.text(max_size=300), _markdownish()))
def test_any_text_renders_to_safe_html_and_always_the_same(text: str) -> None:
    with hang_guard():
        first = render_markdown(text)
    rendering.render_cache.clear()
    second = render_markdown(text)

    _assert_safe(first)
    assert first == second


@hypothesis_settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.one_of(st.text(min_size=1, max_size=200), _markdownish().filter(bool)))
def test_any_text_over_a_budget_shows_whole_and_safe(text: str) -> None:
    plain = rendering._render(text, rendering.Limits(max_chars=0))[0]

    _assert_safe(plain)
    assert _plain_text_of(plain) == text


def test_threads_sharing_the_parser_render_as_one_thread_does() -> None:
    texts = [f"# {i}\n\n- *a{i}*\n\n```python\nx = {i}\n```\n\n| a |\n|---|\n| {i} |" for i in range(64)]
    alone = [render_markdown(text) for text in texts]
    rendering.render_cache.clear()

    with ThreadPoolExecutor(max_workers=8) as pool:
        together = list(pool.map(render_markdown, texts))

    assert together == alone


def test_the_render_cache_shares_one_budget_and_bounds_many_short_texts() -> None:
    """A bulk import renders hundreds of thousands of short texts: each cache entry must not carry its own copy of
    the budgets (about 2 KB of language names), and the entries' own overhead counts towards the cache's bound."""
    from annotation.rendering import ENTRY_OVERHEAD_CHARS, _RenderCache, limits

    assert limits() is limits()
    cache = _RenderCache(max_chars=100_000, max_text_chars=1_000)
    budget = limits()
    for i in range(10_000):
        cache.put(f"t{i}", budget, f"<p>t{i}</p>")
    assert len(cache._entries) <= 100_000 // ENTRY_OVERHEAD_CHARS
    assert {id(key[1]) for key in cache._entries} == {id(budget)}
