"""Benchmark markdown rendering (annotation.rendering) on hostile shapes against the old renderer, Python-Markdown.

Run from the repository root::

    python bench/bench_rendering.py            # shapes at N = 1,000 / 2,000 / 4,000 and 40,000; the lexer scan
    python bench/bench_rendering.py --quick    # N = 500 / 1,000 / 2,000 and 20,000; no lexer scan

Part 1 renders each shape from issue 12 (and its kin) at several N with the budgets raised out of the way, so that
what is timed is the parser, not the plain-text fallback, and prints our time, the baseline's (Python-Markdown with
the extensions it was used with: fenced_code, tables, sane_lists, codehilite; raw HTML escaped, output through the
same nh3 clean), their ratio, and our time per 1,000 characters: a linear renderer keeps that flat as N grows. The
baseline is measured in the same run but skipped at an N where its time would pass --cap seconds (judged from the
N before, as if it were quadratic), so the run does not take minutes. Part 2 renders the same texts with the
default budgets: the time a worker actually spends on them.

Part 3 scans Pygments' lexers of the languages highlighted by default (EVALPLATFORM_MARKDOWN_HIGHLIGHT_LANGUAGES)
on hostile code of EVALPLATFORM_MARKDOWN_HIGHLIGHT_MAX_CHARS characters: rendering stops highlighting once its
time budget has passed, but it reads the clock between tokens, so what matters is the longest single step (one
token's regular expression), printed per language with the shape that produced it.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalplatform.settings")
os.environ.setdefault("DATABASE_URL", "postgres://unused@127.0.0.1:1/unused")  # rendering needs no database

import django

django.setup()

import markdown  # noqa: E402
from django.conf import settings  # noqa: E402
from markdown.extensions import codehilite  # noqa: E402
from pygments.lexer import Lexer  # noqa: E402
from pygments.lexers import find_lexer_class_by_name  # noqa: E402
from pygments.util import ClassNotFound  # noqa: E402

from annotation import rendering  # noqa: E402
from annotation.rendering import _HtmlFormatter as HtmlFormatter  # noqa: E402

SHAPES: dict[str, Callable[[int], str]] = {
    "links [c](d)": lambda n: "[c](d) " * n,
    "link references": lambda n: "[a]: b\n" * n + "[a] " * n,
    "images ![a](b": lambda n: "![a](b " * n,
    "[ runs": lambda n: "[" * n,
    "* runs": lambda n: "*a" * n,
    "_ runs": lambda n: "_a " * n,
    "** openers": lambda n: "**" * n + "a",
    "backtick runs": lambda n: "".join("`" * (i % 50 + 1) + "a" for i in range(n)),
    "lists 300 deep": lambda n: "".join("  " * (i % 300) + "- a\n" for i in range(n)),
    "blockquotes n deep": lambda n: ">" * n + " a",
    "long line": lambda n: "word " * (20 * n),
    "table, short rows": lambda n: "|a" * 100 + "|\n" + "|-" * 100 + "|\n" + "x\n" * n,
    "python code block": lambda n: "```python\n" + "def f(x):\n    return x * 2  # ok\n" * n + "```",
}
HOSTILE_CODE = ["\n ", "a.", '"\\', " ", "(", "<", "1e", "\t", "a", "/*", "'''", "${", "#{", "<!--", "a("]


@functools.cache
def _old_converter() -> markdown.Markdown:
    """Return the old renderer as it ran: one converter reused, Pygments' lookups and style tables remembered."""
    codehilite.get_lexer_by_name = _remembered_lexer
    md = markdown.Markdown(
        extensions=["fenced_code", "tables", "sane_lists", "codehilite"],
        extension_configs={
            "codehilite": {"guess_lang": False, "css_class": "codehilite", "pygments_formatter": HtmlFormatter}
        },
        output_format="html",
    )
    md.preprocessors.deregister("html_block")
    md.inlinePatterns.deregister("html")
    return md


@functools.lru_cache(maxsize=512)
def _lexer_class(alias: str) -> type[Lexer] | None:
    try:
        found: type[Lexer] = find_lexer_class_by_name(alias)
    except ClassNotFound:
        return None
    return found


def _remembered_lexer(alias: str | None, **options: object) -> Lexer:
    lexer_class = _lexer_class(alias) if alias else None
    if lexer_class is None:
        raise ClassNotFound(alias)
    return lexer_class(**options)


def _old(text: str) -> None:
    rendering._clean(_old_converter().reset().convert(text))


def _ours(text: str) -> None:
    rendering.render_cache.clear()
    rendering.render_markdown(text)


def _time(render: Callable[[str], None], text: str) -> float:
    started = time.process_time()
    render(text)
    return time.process_time() - started


def _raise_budgets() -> None:
    settings.EVALPLATFORM_MARKDOWN_MAX_CHARS = 10**9
    settings.EVALPLATFORM_MARKDOWN_MAX_TABLE_CELLS = 10**9
    settings.EVALPLATFORM_MARKDOWN_HIGHLIGHT_MAX_CHARS = 10**9
    settings.EVALPLATFORM_MARKDOWN_HIGHLIGHT_SECONDS = 3600.0


def shapes(sizes: list[int], big: int, cap: float) -> None:
    print("Part 1: the parser (budgets raised), CPU seconds; old = Python-Markdown; 'skip' = over the cap")
    print(f"{'shape':22} {'N':>7} {'chars':>10} {'ours s':>8} {'us/char':>8} {'old s':>8} {'old/ours':>9}")
    defaults = {name: getattr(settings, name) for name in dir(settings) if name.startswith("EVALPLATFORM_MARKDOWN")}
    _raise_budgets()
    for make in SHAPES.values():  # first-use costs (compiled patterns, lexers, style tables) out of the timings
        _ours(make(10))
        _old(make(10))
    for name, make in SHAPES.items():
        old_last: tuple[int, float] | None = None
        for n in [*sizes, big]:
            text = make(n)
            ours = _time(_ours, text)
            old = "skip"
            ratio = ""
            predicted = old_last[1] * (n / old_last[0]) ** 2 if old_last else 0.0
            if n != big and predicted <= cap:
                seconds = _time(_old, text)
                old_last = (n, seconds)
                old, ratio = f"{seconds:8.3f}", f"{seconds / max(ours, 1e-6):9.1f}"
            per_char = ours / len(text) * 1e6
            print(f"{name:22} {n:>7,} {len(text):>10,} {ours:8.3f} {per_char:8.2f} {old:>8} {ratio:>9}", flush=True)
    for key, value in defaults.items():
        setattr(settings, key, value)
    print()
    print("Part 2: the same texts at the largest N with the default budgets (what a worker spends), CPU seconds")
    limits = rendering.limits()
    print(f"budgets: {limits.max_chars:,} chars, {limits.max_nesting} levels, {limits.max_table_cells:,} table cells,")
    print(f"highlighting {limits.highlight_max_chars:,} chars / {limits.highlight_seconds} s")
    for name, make in SHAPES.items():
        text = make(big)
        seconds = _time(_ours, text)
        rendering.render_cache.clear()
        kind = "plain text" if rendering.render_markdown(text).startswith('<div class="render-note">') else "rendered"
        print(f"{name:22} {len(text):>10,} chars {seconds:8.3f} s  {kind}", flush=True)


def lexers(seconds_per_run: float) -> None:
    limits = rendering.limits()
    size = limits.highlight_max_chars
    print()
    print(f"Part 3: Pygments on hostile code of {size:,} chars; longest step between two tokens (wall seconds)")
    for language in sorted(limits.highlight_languages):
        lexer_class = find_lexer_class_by_name(language)
        worst = (0.0, "")
        for shape in HOSTILE_CODE:
            code = (shape * size)[:size]
            started = last = time.perf_counter()
            for _ in lexer_class().get_tokens(code):
                now = time.perf_counter()
                if now - last > worst[0]:
                    worst = (now - last, shape)
                last = now
                if now - started > seconds_per_run:
                    break
        print(f"{language:12} {worst[0]:8.4f} s  on {worst[1]!r}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--cap", type=float, default=10.0, help="skip a baseline run predicted to take longer")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    if args.quick:
        shapes([500, 1_000, 2_000], 20_000, args.cap)
    else:
        shapes([1_000, 2_000, 4_000], 40_000, args.cap)
        lexers(seconds_per_run=0.5)


if __name__ == "__main__":
    main()
