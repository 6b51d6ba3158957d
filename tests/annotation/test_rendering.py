"""Untrusted markdown renders to HTML that can neither run nor load anything."""

from __future__ import annotations

import markdown
import pygments.lexers
import pytest
from markdown.extensions import codehilite

from annotation import rendering
from annotation.rendering import render_markdown


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


def test_remembered_lexer_lookups_and_formatter_tables_render_exactly_as_pygments_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = (
        "```python\ndef f():\n    return 1\n```\n\n```\nno language\n```\n\n```no-such-language\nx = 1\n```\n\n"
        "```js\nlet a = 1;\n```"
    )
    ours = [render_markdown(f"{i}\n\n{text}") for i in range(2)]  # the second run uses what the first remembered

    monkeypatch.setattr(codehilite, "get_lexer_by_name", pygments.lexers.get_lexer_by_name)
    plain = markdown.Markdown(
        extensions=["fenced_code", "tables", "sane_lists", "codehilite", rendering._EscapeRawHtml()],
        extension_configs={"codehilite": {"guess_lang": False, "css_class": "codehilite"}},
        output_format="html",
    )
    monkeypatch.setattr(rendering._local, "converter", plain)
    render_markdown.cache_clear()
    reference = [render_markdown(f"{i}\n\n{text}") for i in range(2)]
    render_markdown.cache_clear()

    assert ours == reference
    assert '<span class="k">def</span>' in ours[0]
    assert '<span class="kd">let</span>' in ours[0]
