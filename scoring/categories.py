"""Categories of battles: built-in taggers that need no model, and one leaderboard per category of an Arena log.

The built-in taggers read a conversation's user turns and return tags with the ``auto:`` prefix:

- ``auto:code``: a fenced code block (a line starting with up to three spaces and three backticks or tildes), two
  or more code-like lines or operators (:data:`CODE_LINE`: a keyword opening a line; a line ending in ``;``, ``{``
  or ``}``; ``==``, ``!=``, ``=>``, ``->``, ``::``, ``++``, ``&&``, ``||``), or a programming language's name
  (:data:`CODE_LANGUAGES`) beside a programming word (:data:`CODE_WORDS`);
- ``auto:math``: LaTeX math (``$...$``, ``\\frac``, ``\\int``...), arithmetic between numbers (``3 * 4``,
  ``x^2``), or a math word (:data:`MATH_WORDS`) beside a number or a second math word;
- ``auto:long_query``: more than LONG_QUERY_TOKENS (500) tokens over the user turns (:func:`count_tokens`);
- ``auto:multi_turn``: more than one user turn;
- ``auto:language:<code>``: the language of the first user turn by script, and for Latin script by common words
  (:func:`detect_language`); no tag when it cannot tell.

Every tagger reads at most MAX_SCAN_CHARS characters of each text, and its patterns have no nested quantifiers, so
its time is linear in what it reads.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from scoring.battles import Battle, BattleCounts, counts_from_tally
from scoring.loaders import (
    MAX_RECORD_CHARS,
    NO_FILTER,
    BattleFilter,
    InputError,
    _array_elements,
    _filtered_battle,
    _starts_like_json_array,
)

AUTO_PREFIX = "auto:"
CODE, MATH, LONG_QUERY, MULTI_TURN = "auto:code", "auto:math", "auto:long_query", "auto:multi_turn"
LANGUAGE_PREFIX = "auto:language:"
LONG_QUERY_TOKENS = 500
MAX_SCAN_CHARS = 8_000
MAX_TOKEN_CHARS = 200_000
MAX_CATEGORIES = 500
MAX_TAG_DEPTH = 8

# A token: a run of letters/digits outside the CJK blocks, one CJK character, or one other non-space character.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+|[^\w\s]")
_SPACE = re.compile(r"\s")

_FENCE = re.compile(r"^ {0,3}(?:```|~~~)", re.MULTILINE)
# Code-like lines: a keyword opening a line, a line ending in ; { or }, or an operator of code.
CODE_LINE = re.compile(
    r"^[ \t]*(?:def |class |import |from [\w.]+ import |#include|public |private |static |function |const |let |"
    r"var |fn |func |package |using |return |SELECT |INSERT INTO |CREATE TABLE |for \(|if \(|while \(|"
    r"console\.log|print\(|System\.out)",
    re.MULTILINE,
)
_CODE_LINE_END = re.compile(r"[;{}][ \t]*$", re.MULTILINE)
_CODE_OPERATOR = re.compile(r"==|!=|=>|->|::|\+\+|&&|\|\|")


def _word_set(text: str) -> frozenset[str]:
    """Return the words of a space-separated word list."""
    return frozenset(text.split())


# Words are compared as a set of the sample's lowercased words (one C-speed regex pass, then set lookups).
_WORD = re.compile(r"[a-z][a-z0-9+#]*")
CODE_LANGUAGES = _word_set(
    "python javascript typescript java c++ c# golang kotlin php sql html css bash powershell haskell "
    "scala matlab verilog regex numpy pytorch tensorflow django react nodejs"
)
CODE_WORDS = frozenset(
    word + suffix
    for word in _word_set(
        "code program script function class method bug debug error "
        "compile implement algorithm query api library syntax variable"
    )
    for suffix in ("", "s", "es")
)

_LATEX = re.compile(
    r"\$[^$\n]{1,200}\$|\\(?:frac|sqrt|int|sum|prod|lim|cdot|times|leq|geq|infty|binom|mathbb|begin\{(?:equation|align))"
)
_ARITHMETIC = re.compile(r"\d[ \t]*[-+*/^\u00d7\u00f7][ \t]*\(?[ \t]*\d|\d[a-z]\b[ \t]*[-+=]")
# A power (x^2, n ** 3): the operator is searched, the letter before it checked (a letter-led pattern is tried at
# every letter of the text).
_POWER = re.compile(r"(?:\^|\*\*)[ \t]*\d")
MATH_WORDS = _word_set(
    "solve equation equations integral integrals derivative derivatives differentiate integrate theorem "
    "theorems prove proof lemma polynomial polynomials matrix matrices eigenvalue eigenvalues probability "
    "arithmetic algebra geometry calculus logarithm logarithms factorial prime primes triangle triangles "
    "hypotenuse summation quadratic fraction fractions divisible modulo radius perimeter"
)
_DIGIT = re.compile(r"\d")

# Scripts counted over the first letters; Latin is split by common words below.
_SCRIPTS = (
    ("ja", re.compile(r"[\u3040-\u30ff]")),
    ("ko", re.compile(r"[\uac00-\ud7af\u1100-\u11ff\u3130-\u318f]")),
    ("zh", re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf]")),
    ("ru", re.compile(r"[\u0400-\u04ff]")),
    ("ar", re.compile(r"[\u0600-\u06ff]")),
    ("he", re.compile(r"[\u0590-\u05ff]")),
    ("hi", re.compile(r"[\u0900-\u097f]")),
    ("th", re.compile(r"[\u0e00-\u0e7f]")),
    ("el", re.compile(r"[\u0370-\u03ff]")),
    ("latin", re.compile(r"[A-Za-z\u00c0-\u024f]")),
)
_UKRAINIAN = re.compile("[\u0456\u0457\u0454\u0491\u0406\u0407\u0404\u0490]")
_PERSIAN = re.compile(r"[پچژگ]")
STOPWORDS = {
    "en": "the and is are of to in that it you for with this what how",
    "es": "el la los las de que y en es por para una con como qué",
    "fr": "le la les des et est une dans que pour qui avec pas sur",
    "de": "der die das und ist nicht ein eine ich zu mit den sie was",
    "pt": "o os as de que não uma com para é do da em um",
    "it": "il di che è la per un una non sono gli del della come",
    "nl": "de het een en van is dat niet ik je op te zijn",
}
_WORDS = re.compile(r"[^\W\d_]+")
_STOPWORD_LANGUAGES = {
    word: [lang for lang, words in STOPWORDS.items() if word in words.split()]
    for words in STOPWORDS.values()
    for word in words.split()
}


def count_tokens(text: str, *, limit: int | None = None) -> int:
    """Return the number of tokens of text (a word, a CJK character or a punctuation mark each), at most limit.

    Reads at most MAX_TOKEN_CHARS characters. On English prose it is about three quarters of a GPT BPE count.
    """
    if limit is not None and len(text) <= limit:  # a token takes at least one character
        return min(limit, len(_TOKEN.findall(text)))
    if limit is not None and len(text[:MAX_TOKEN_CHARS].split(maxsplit=limit)) > limit:
        return limit  # every run of non-space characters holds at least one token
    # findall on slices (C speed) until the limit is passed or the text ends
    found, at, end = 0, 0, min(len(text), MAX_TOKEN_CHARS)
    while at < end and (limit is None or found < limit):
        stop = min(end, at + 4096)
        if stop < end:  # cut after a space so that no token is split between slices
            space = max(text.rfind(" ", at, stop), text.rfind("\n", at, stop))
            after = _SPACE.search(text, stop, end) if space <= at else None
            stop = space + 1 if space > at else (after.end() if after else end)
        found += len(_TOKEN.findall(text, at, stop))
        at = stop
    return found if limit is None else min(found, limit)


def _words(sample: str) -> set[str]:
    """Return the sample's words, lowercased (letters, digits, + and #: "c++" and "c#" are words)."""
    return set(_WORD.findall(sample.lower()))


def is_code(text: str, *, words: set[str] | None = None) -> bool:
    """Return whether text holds code: a fence, two code-like lines, or a language's name beside a code word.

    ``words``: the text's words (``_words``) when the caller has them already.
    """
    sample = text[:MAX_SCAN_CHARS]
    if _FENCE.search(sample):
        return True
    seen = 0
    for pattern in (CODE_LINE, _CODE_LINE_END, _CODE_OPERATOR):
        seen += sum(1 for _ in islice(pattern.finditer(sample), 2 - seen))
        if seen >= 2:
            return True
    words = _words(sample) if words is None else words
    return not words.isdisjoint(CODE_LANGUAGES) and not words.isdisjoint(CODE_WORDS)


def is_math(text: str, *, words: set[str] | None = None) -> bool:
    """Return whether text asks about math: LaTeX, arithmetic, or a math word beside a number or another one."""
    sample = text[:MAX_SCAN_CHARS]
    if _LATEX.search(sample) or _ARITHMETIC.search(sample) or _has_power(sample):
        return True
    found = len((_words(sample) if words is None else words) & MATH_WORDS)
    return found >= 2 or (found == 1 and _DIGIT.search(sample) is not None)


def _has_power(sample: str) -> bool:
    """Return whether sample raises a letter to a number (x^2, n ** 3), looking at its first 20 powers."""
    for match in islice(_POWER.finditer(sample), 20):
        before = sample[max(0, match.start() - 8) : match.start()].rstrip(" \t")[-1:]
        if "a" <= before <= "z":
            return True
    return False


def detect_language(text: str) -> str | None:
    """Return an ISO 639-1 code for text's language, or None when the rules cannot tell.

    The script with the most letters among the first 2,000 characters decides: kana ja, Hangul ko, Han zh,
    Cyrillic ru (uk with a letter only Ukrainian uses), Arabic ar (fa with a letter only Persian uses), Hebrew he,
    Devanagari hi, Thai th, Greek el. Latin script goes to the language with most common words (STOPWORDS) among
    the first 300 words, with at least two and a clear lead (1.5 times the next); otherwise None.
    """
    sample = text[:2000]
    script = "latin" if sample.isascii() else _main_script(sample)
    if script is None:
        return None
    if script == "ru":
        return "uk" if _UKRAINIAN.search(sample) else "ru"
    if script == "ar":
        return "fa" if _PERSIAN.search(sample) else "ar"
    if script != "latin":
        return script
    votes: Counter[str] = Counter()
    words = _WORDS.findall(text[:2000].lower())[:300]
    for word in words:
        for lang in _STOPWORD_LANGUAGES.get(word, ()):
            votes[lang] += 1
    ranked = votes.most_common(2)
    if not ranked or ranked[0][1] < 2 or (len(ranked) > 1 and ranked[1][1] * 1.5 >= ranked[0][1]):
        return None
    return ranked[0][0]


def _main_script(sample: str) -> str | None:
    """Return the script (named by its language code, or latin) with the most characters in sample, if any."""
    counts = {name: len(pattern.findall(sample)) for name, pattern in _SCRIPTS}
    if counts["ja"] and counts["zh"]:  # Japanese mixes kana with Han characters
        counts["ja"] += counts.pop("zh")
    script = max(counts, key=counts.__getitem__)
    return script if counts[script] else None


def builtin_tags(*, user_turns: Sequence[str]) -> list[str]:
    """Return the built-in tags of a conversation given its user turns, in the order of the module's list."""
    text = "\n".join(turn[:MAX_SCAN_CHARS] for turn in user_turns[:20])[:MAX_SCAN_CHARS]
    words = _words(text)
    tags = []
    if is_code(text, words=words):
        tags.append(CODE)
    if is_math(text, words=words):
        tags.append(MATH)
    if sum(count_tokens(turn, limit=LONG_QUERY_TOKENS + 1) for turn in user_turns[:100]) > LONG_QUERY_TOKENS:
        tags.append(LONG_QUERY)
    if len(user_turns) > 1:
        tags.append(MULTI_TURN)
    language = detect_language(user_turns[0]) if user_turns else None
    if language is not None:
        tags.append(LANGUAGE_PREFIX + language)
    return tags


def category_tag_paths(tag: Mapping[str, Any], *, prefix: str = "", depth: int = 0) -> Iterator[str]:
    """Yield the dotted paths of an Arena ``category_tag`` whose value is true (other values are not categories)."""
    if depth >= MAX_TAG_DEPTH:
        return
    for key, value in tag.items():
        path = f"{prefix}{key}"
        if value is True:
            yield path
        elif isinstance(value, dict):
            yield from category_tag_paths(value, prefix=path + ".", depth=depth + 1)


def _user_turns(conversation: Any) -> list[str] | None:
    """Return the user messages of an Arena conversation, or None when it is absent or not a list of messages."""
    if not isinstance(conversation, list):
        return None
    return [
        message["content"]
        for message in conversation
        if isinstance(message, dict) and message.get("role") == "user" and isinstance(message.get("content"), str)
    ]


def record_categories(record: Mapping[str, Any], *, builtin: bool = True) -> list[str]:
    """Return the categories of one Arena battle record.

    Its ``category_tag`` paths that are true, ``language:<language>`` from its ``language`` field, ``is_code`` and
    ``is_refusal`` when true, and with ``builtin`` the built-in tags of ``conversation_a``'s user turns; without a
    conversation, ``auto:multi_turn`` comes from ``turn`` > 1 and ``auto:long_query`` from
    ``conv_metadata.sum_user_tokens`` > 500 (Arena's own token count).
    """
    found: list[str] = []
    tag = record.get("category_tag")
    if isinstance(tag, dict):
        found.extend(category_tag_paths(tag))
    language = record.get("language")
    if isinstance(language, str) and language:
        found.append(f"language:{language[:100]}")
    found.extend(name for name in ("is_code", "is_refusal") if record.get(name) is True)
    if not builtin:
        return found
    turns = _user_turns(record.get("conversation_a"))
    if turns is not None:
        found.extend(builtin_tags(user_turns=turns))
        return found
    turn = record.get("turn")
    if isinstance(turn, int) and not isinstance(turn, bool) and turn > 1:
        found.append(MULTI_TURN)
    metadata = record.get("conv_metadata")
    tokens = metadata.get("sum_user_tokens") if isinstance(metadata, dict) else None
    if isinstance(tokens, int | float) and not isinstance(tokens, bool) and tokens > LONG_QUERY_TOKENS:
        found.append(LONG_QUERY)
    return found


@dataclass(frozen=True)
class CategoryCounts:
    """The battles of one category (after the filters), and the number of battles in it before them."""

    category: str
    counts: BattleCounts | None
    n_battles: int


def read_category_counts(
    path: str | Path, filters: BattleFilter | None = None, *, builtin: bool = True
) -> list[CategoryCounts]:
    """Read an Arena log (JSON Lines or a JSON array, streamed) and count the battles of every category.

    Every record is parsed (categories live in fields the fast scanners skip). The filters apply as in
    ``read_battle_counts``; ``exclude_ties`` and ``min_votes`` within each category. Categories are returned by
    decreasing number of battles; more than MAX_CATEGORIES is an InputError.
    """
    filters = filters or NO_FILTER
    tallies: dict[str, Counter[Battle]] = {}
    try:
        for line, record in _records(path):
            try:
                battle = _filtered_battle(record, filters)
            except ValueError as exc:
                raise InputError(f"line {line}: {exc}") from None
            if battle is None:
                continue
            for category in dict.fromkeys(record_categories(record, builtin=builtin)):
                tally = tallies.get(category)
                if tally is None:
                    if len(tallies) == MAX_CATEGORIES:
                        raise InputError(f"line {line}: more than {MAX_CATEGORIES} categories")
                    tally = tallies[category] = Counter()
                tally[battle] += 1
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not tallies:
        raise InputError(
            "no battle has a category" if filters.reads_records else "no battle in the file has a category"
        )
    out = []
    for category, tally in tallies.items():
        counts = filters.apply(counts_from_tally(tally))
        out.append(CategoryCounts(category, counts if counts.n_battles else None, sum(tally.values())))
    out.sort(key=lambda item: (-item.n_battles, item.category))
    return out


def _records(path: str | Path) -> Iterator[tuple[int, Any]]:
    """Yield (line, record) for each record of a JSON array or JSON Lines file, one at a time."""
    if _starts_like_json_array(path):
        yield from _array_elements(path)
        return
    with Path(path).open("rb") as handle:
        number = 0
        while content := handle.readline(MAX_RECORD_CHARS + 1):
            number += 1
            if len(content) > MAX_RECORD_CHARS:
                raise InputError(f"line {number}: longer than {MAX_RECORD_CHARS} bytes")
            if not content.strip():
                continue
            try:
                yield number, json.loads(content)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise InputError(f"line {number}: invalid JSON ({getattr(exc, 'msg', exc)})") from None
            except RecursionError:
                raise InputError(f"line {number}: invalid JSON (nested too deeply)") from None


def run_rank_categories(args: Any) -> str:
    """Return ``python -m scoring rank FILE --categories``: one leaderboard per category, as JSON or tables.

    A category with fewer than ``--provisional-below`` battles (after the filters) is marked ``provisional``,
    not left out; one left without battles by ``--exclude-ties``/``--min-votes`` says so in its warnings.
    """
    import numpy as np

    from scoring.bradley_terry import bradley_terry_from_counts
    from scoring.cli import _finite, _table, battle_filter

    if args.elo or args.combine:
        raise ValueError("--categories ranks by Bradley-Terry only: drop --elo and --combine")
    filters = battle_filter(args)
    try:
        found = read_category_counts(args.file, filters, builtin=not args.no_builtin_tags)
    except InputError as exc:
        message = str(exc)
        raise InputError(message if message.startswith("cannot read") else f"{args.file}: {message}") from None
    minimum = args.provisional_below
    entries, tables = [], []
    for item in found:
        n = item.counts.n_battles if item.counts is not None else 0
        entry: dict[str, Any] = {"category": item.category, "n_battles": n, "provisional": n < minimum}
        title = f"== {item.category}: {n} battles" + (f" (provisional: under {minimum})" if n < minimum else "")
        if item.counts is None:
            entry.update(ratings=[], warnings=["no battles pass the filters"])
            tables.append(f"{title}\nno battles pass the filters")
        else:
            # Each category gets its own generator from the seed, so its intervals do not depend on the others.
            board = bradley_terry_from_counts(
                item.counts,
                ties=args.ties,
                anchor=args.anchor if args.anchor and args.anchor[0] in item.counts.models else None,
                bootstrap=args.bootstrap,
                rng=np.random.default_rng(args.seed),
                reweight=args.reweight,
            )
            payload = board.to_dict()
            payload.pop("win_probability")
            entry.update(payload, n_battles=n)
            tables.append(f"{title}\n{_table(board, payload)}")
        entries.append(entry)
    if args.format == "table":
        return "\n\n".join(tables)
    result: dict[str, Any] = {"provisional_below": minimum, "seed": args.seed, "categories": entries}
    if filters.active:
        result["filters"] = filters.as_dict()
    return json.dumps(_finite(result), indent=1)
