"""Judge prompt templates and verdict parsers: pure functions over strings, no Django and no network.

The built-in templates paraphrase the published MT-Bench pairwise prompts (Zheng et al., 2023) and the Arena-Hard
prompt (Li et al., 2024): same structure, markers and verdict labels, so replies from judges tuned on them parse.
The probability template (ours) asks for P(the answer shown first is better) as ``[[P=0.73]]``; the number becomes
an outcome through a fixed band (``probability_outcome``) and is kept, so panels can average it.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from typing import Any, Literal

import re2

Outcome = Literal["A", "B", "tie", "both_bad"]
PLACEHOLDERS = ("question", "answer_a", "answer_b", "reference")
_PLACEHOLDER_RE = re.compile(r"\{(question|answer_a|answer_b|reference)\}")

MT_BENCH_SYSTEM = (
    "Please act as an impartial judge and evaluate the quality of the responses provided by two AI assistants to "
    "the user question displayed below. Choose the assistant that follows the user's instructions and answers the "
    "user's question better, considering helpfulness, relevance, accuracy, depth, creativity and level of detail. "
    "Begin your evaluation by comparing the two responses and provide a short explanation. Avoid any position "
    "bias: the order in which the responses were presented must not influence your decision. Do not let the length "
    "of the responses or the names of the assistants influence you. Be as objective as possible. After your "
    'explanation, output your final verdict strictly in this format: "[[A]]" if assistant A is better, "[[B]]" if '
    'assistant B is better, and "[[C]]" for a tie.'
)
MT_BENCH_USER = (
    "[User Question]\n{question}\n\n"
    "[The Start of Assistant A's Answer]\n{answer_a}\n[The End of Assistant A's Answer]\n\n"
    "[The Start of Assistant B's Answer]\n{answer_b}\n[The End of Assistant B's Answer]"
)
MT_BENCH_REFERENCE_SYSTEM = (
    "Please act as an impartial judge and evaluate the quality of the responses provided by two AI assistants to "
    "the user question displayed below. Your evaluation should consider correctness and helpfulness. You are given "
    "a reference answer, assistant A's answer and assistant B's answer; your job is to decide which assistant's "
    "answer is better. Begin by comparing both answers with the reference answer, identify and correct any "
    "mistakes, and provide a short explanation. Avoid any position bias, do not let the length of the responses "
    "or the names of the assistants influence you, and be as objective as possible. After your explanation, output "
    'your final verdict strictly in this format: "[[A]]" if assistant A is better, "[[B]]" if assistant B is '
    'better, and "[[C]]" for a tie.'
)
MT_BENCH_REFERENCE_USER = (
    "[User Question]\n{question}\n\n"
    "[The Start of Reference Answer]\n{reference}\n[The End of Reference Answer]\n\n"
    "[The Start of Assistant A's Answer]\n{answer_a}\n[The End of Assistant A's Answer]\n\n"
    "[The Start of Assistant B's Answer]\n{answer_b}\n[The End of Assistant B's Answer]"
)
ARENA_HARD_SYSTEM = (
    "Please act as an impartial judge and evaluate the quality of the responses provided by two AI assistants to "
    "the user prompt displayed below. You will be given assistant A's answer and assistant B's answer; your job is "
    "to evaluate which one is better. Begin by writing your own answer to the prompt, then compare both answers "
    "with yours, pointing out mistakes or inaccurate information. Consider whether each answer is helpful, "
    "relevant and concise, and note missing important information. After your explanation, output exactly one of "
    "these labels as your final verdict:\n"
    "1. Assistant A is significantly better: [[A>>B]]\n"
    "2. Assistant A is slightly better: [[A>B]]\n"
    "3. Tie, relatively the same: [[A=B]]\n"
    "4. Assistant B is slightly better: [[B>A]]\n"
    "5. Assistant B is significantly better: [[B>>A]]\n"
    'Example output: "My final verdict is tie: [[A=B]]".'
)
ARENA_HARD_USER = (
    "<|User Prompt|>\n{question}\n\n"
    "<|The Start of Assistant A's Answer|>\n{answer_a}\n<|The End of Assistant A's Answer|>\n\n"
    "<|The Start of Assistant B's Answer|>\n{answer_b}\n<|The End of Assistant B's Answer|>"
)
JSON_SYSTEM = (
    "Please act as an impartial judge and compare the two answers to the user question. Avoid position and length "
    'bias. Reply with a JSON object only: {"verdict": "A" | "B" | "tie" | "both_bad", "strength": 1 | 2, '
    '"rationale": "..."} where strength 1 means slightly better and 2 clearly better.'
)
JSON_VERDICT_SCHEMA: dict[str, Any] = {
    "type": "json_schema",
    "json_schema": {
        "name": "pairwise_verdict",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {
                "verdict": {"type": "string", "enum": ["A", "B", "tie", "both_bad"]},
                "strength": {"type": ["integer", "null"], "enum": [1, 2, None]},
                "rationale": {"type": "string"},
            },
            "required": ["verdict", "strength", "rationale"],
            "additionalProperties": False,
        },
    },
}

# Every label a reply may carry, mapped to (outcome, strength). Strength: 1 slightly, 2 clearly better.
LABELS: dict[str, tuple[Outcome, int | None]] = {
    "A": ("A", None),
    "B": ("B", None),
    "C": ("tie", None),
    "TIE": ("tie", None),
    "A=B": ("tie", None),
    "B=A": ("tie", None),
    "A>B": ("A", 1),
    "A>>B": ("A", 2),
    "B>A": ("B", 1),
    "B>>A": ("B", 2),
    "BOTH_BAD": ("both_bad", None),
    "BOTH BAD": ("both_bad", None),
    "NEITHER": ("both_bad", None),
}
PROBABILITY_SYSTEM = (
    "Please act as an impartial judge and evaluate the quality of the responses provided by two AI assistants to "
    "the user question displayed below. Consider helpfulness, relevance, accuracy, depth and level of detail. Avoid "
    "any position bias, and do not let the length of the responses or the names of the assistants influence you. "
    "Begin with a short explanation. Then give the probability that assistant A's answer is better than assistant "
    "B's, as a decimal number from 0 to 1 (0.5 when they are equally good), strictly in this format: "
    '"[[P=0.73]]".'
)
PROBABILITY_PATTERN = r"\[\[\s*P\s*=\s*([^\]]*)\]\]"
# The band that turns P(first is better) into an outcome: above FIRST_WINS_ABOVE the first shown wins, below
# SECOND_WINS_BELOW the second, a tie in between (both bounds included). Panels averaging probabilities use it too.
FIRST_WINS_ABOVE, SECOND_WINS_BELOW = 0.55, 0.45
# A plain decimal in [0, 1], at most 6 decimals: a sign, exponent, percent or fraction is refused, not guessed.
_PROBABILITY_RE = re.compile(r"(?:0(?:\.[0-9]{1,6})?|1(?:\.0{1,6})?|\.[0-9]{1,6})")
MAX_PATTERN_LENGTH = 500  # characters of a custom verdict pattern (the field's max_length)
MT_BENCH_PATTERN = r"\[\[(A|B|C)\]\]"
ARENA_HARD_PATTERN = r"\[\[([AB<>=]+)\]\]"


class VerdictParseError(ValueError):
    """The reply carries no verdict, or more than one."""


@dataclass(frozen=True)
class ParsedVerdict:
    outcome: Outcome
    strength: int | None
    label: str
    probability: float | None = None  # P(the answer shown first is better), from probability verdicts only

    def as_json(self) -> dict[str, Any]:
        """Return the verdict as stored on JudgeVerdict.parsed (with its probability when it has one)."""
        parsed: dict[str, Any] = {"outcome": self.outcome, "strength": self.strength, "label": self.label}
        return parsed if self.probability is None else parsed | {"probability": self.probability}


@dataclass(frozen=True)
class PromptSpec:
    """What to send and how to read the reply, for one judge configuration."""

    system: str
    user_template: str
    verdict_format: Literal["pattern", "json", "probability"]
    verdict_pattern: str
    needs_reference: bool


BUILTIN: dict[str, PromptSpec] = {
    "mt_bench": PromptSpec(MT_BENCH_SYSTEM, MT_BENCH_USER, "pattern", MT_BENCH_PATTERN, False),
    "mt_bench_reference": PromptSpec(
        MT_BENCH_REFERENCE_SYSTEM, MT_BENCH_REFERENCE_USER, "pattern", MT_BENCH_PATTERN, True
    ),
    "arena_hard": PromptSpec(ARENA_HARD_SYSTEM, ARENA_HARD_USER, "pattern", ARENA_HARD_PATTERN, False),
    "probability": PromptSpec(PROBABILITY_SYSTEM, MT_BENCH_USER, "probability", PROBABILITY_PATTERN, False),
}


def prompt_spec(
    *,
    template: str,
    system_prompt: str = "",
    custom_template: str = "",
    verdict_format: str = "pattern",
    verdict_pattern: str = "",
) -> PromptSpec:
    """Return the spec of a built-in template (optionally with another system prompt) or of a custom one."""
    if template in BUILTIN:
        spec = BUILTIN[template]
        return PromptSpec(
            system_prompt or spec.system,
            spec.user_template,
            spec.verdict_format,
            spec.verdict_pattern,
            spec.needs_reference,
        )
    if template != "custom":
        raise ValueError(f"template: unknown template {template!r} (built-in: {', '.join(BUILTIN)}, or custom)")
    fmt: Literal["pattern", "json", "probability"] = "pattern"
    if verdict_format in ("json", "probability"):
        fmt = "json" if verdict_format == "json" else "probability"
    default_system = {"json": JSON_SYSTEM, "probability": PROBABILITY_SYSTEM}.get(fmt, "")
    if fmt == "probability":
        verdict_pattern = verdict_pattern or PROBABILITY_PATTERN
    return PromptSpec(
        system_prompt or default_system, custom_template, fmt, verdict_pattern, "{reference}" in custom_template
    )


def yields_probability(*, template: str, verdict_format: str = "pattern") -> bool:
    """Return whether a judge with this template and verdict format answers with a probability."""
    return template == "probability" or (template == "custom" and verdict_format == "probability")


def check_custom_template(text: str) -> None:
    """Raise ValueError naming the problem when a custom template lacks the answers."""
    missing = [p for p in ("answer_a", "answer_b") if "{" + p + "}" not in text]
    if missing:
        raise ValueError("custom_template: must contain " + " and ".join("{" + p + "}" for p in missing))


def check_verdict_pattern(pattern: str) -> None:
    """Raise ValueError when a verdict pattern is too long, not an RE2 regex, or has no capturing group.

    Patterns run on RE2 (linear time in the reply, whatever the pattern): backreferences and lookarounds, which
    need backtracking, are refused.
    """
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise ValueError(f"verdict_pattern: longer than {MAX_PATTERN_LENGTH} characters ({len(pattern)})")
    try:
        compiled = compile_pattern(pattern)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise ValueError(f"verdict_pattern: not a regular expression RE2 accepts: {reason}") from exc
    if compiled.groups < 1:
        raise ValueError("verdict_pattern: needs a capturing group (named 'verdict' or group 1) for the label")


def render_messages(
    spec: PromptSpec, *, question: str, answer_a: str, answer_b: str, reference: str = ""
) -> list[dict[str, str]]:
    """Return the chat messages for one comparison in one order."""
    values = {"question": question, "answer_a": answer_a, "answer_b": answer_b, "reference": reference}
    # Substitute only the known placeholders, so braces elsewhere (JSON examples) need no escaping.
    user = _PLACEHOLDER_RE.sub(lambda m: values[m.group(1)], spec.user_template)
    messages = [{"role": "system", "content": spec.system}] if spec.system else []
    return [*messages, {"role": "user", "content": user}]


def response_format(spec: PromptSpec) -> dict[str, Any] | None:
    """Return the structured-output request for JSON verdicts, None for free text."""
    return JSON_VERDICT_SCHEMA if spec.verdict_format == "json" else None


def parse_verdict(spec: PromptSpec, text: str, *, finish_reason: str = "stop") -> ParsedVerdict:
    """Return the verdict in a reply, or raise VerdictParseError saying why there is none."""
    try:
        if spec.verdict_format == "json":
            return parse_json_verdict(text)
        if spec.verdict_format == "probability":
            return parse_probability_verdict(text, spec.verdict_pattern)
        return parse_pattern_verdict(text, spec.verdict_pattern)
    except VerdictParseError as exc:
        if finish_reason == "length":
            raise VerdictParseError(f"{exc} (reply truncated: finish_reason=length)") from exc
        raise


def parse_pattern_verdict(text: str, pattern: str) -> ParsedVerdict:
    """Return the one label the pattern finds in the text; several different labels are ambiguous."""
    compiled = compile_pattern(pattern)
    group: str | int = "verdict" if "verdict" in compiled.groupindex else 1
    labels = [m.group(group).strip() for m in compiled.finditer(text) if m.group(group)]
    if not labels:
        raise VerdictParseError(f"no verdict matching {pattern!r} in the reply")
    distinct = list(dict.fromkeys(label.upper() for label in labels))
    if len(distinct) > 1:
        raise VerdictParseError("ambiguous verdict: " + ", ".join(distinct))
    return _from_label(distinct[0])


def parse_probability_verdict(text: str, pattern: str = PROBABILITY_PATTERN) -> ParsedVerdict:
    """Return the verdict of a reply giving P(the answer shown first is better): the one number the pattern finds,
    a plain decimal in [0, 1], turned into an outcome by the band (``probability_outcome``).

    No number, a number out of [0, 1] or not plainly written (a sign, a percent, an exponent), or several different
    numbers: VerdictParseError.
    """
    compiled = compile_pattern(pattern)
    group: str | int = "verdict" if "verdict" in compiled.groupindex else 1
    found = [m.group(group).strip() for m in compiled.finditer(text) if m.group(group) is not None]
    if not found:
        raise VerdictParseError(f"no probability matching {pattern!r} in the reply")
    values = list(dict.fromkeys(found))
    bad = [v for v in values if not _PROBABILITY_RE.fullmatch(v)]
    if bad:
        raise VerdictParseError(f"not a probability between 0 and 1: {bad[0][:40]!r}")
    numbers = list(dict.fromkeys(float(v) for v in values))
    if len(numbers) > 1:
        raise VerdictParseError("ambiguous probability: " + ", ".join(values))
    probability = numbers[0]
    return ParsedVerdict(probability_outcome(probability), None, f"P={values[0]}", probability)


def probability_outcome(probability: float) -> Outcome:
    """Return the outcome of P(the answer shown first is better): A above 0.55, B below 0.45, else a tie."""
    if probability > FIRST_WINS_ABOVE:
        return "A"
    if probability < SECOND_WINS_BELOW:
        return "B"
    return "tie"


@functools.lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> Any:
    """Return the pattern compiled by RE2 (linear-time matching: no pattern can hang a worker); raise re2.error."""
    options = re2.Options()
    options.log_errors = False  # the reason comes back in the exception
    options.max_mem = 8 << 20  # bytes for the compiled program: a pattern needing more is refused
    return re2.compile(pattern, options)


def parse_json_verdict(text: str) -> ParsedVerdict:
    """Return the verdict of a JSON reply, tolerating a Markdown code fence around it."""
    body = text.strip()
    fence = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", body, flags=re.DOTALL)
    if fence:
        body = fence.group(1)
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise VerdictParseError(f"reply is not valid JSON: {exc.msg} at char {exc.pos}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("verdict"), str):
        raise VerdictParseError('JSON reply has no string "verdict" field')
    parsed = _from_label(data["verdict"].strip().upper())
    strength = data.get("strength")
    if parsed.outcome in ("A", "B") and strength is not None:
        if strength not in (1, 2):
            raise VerdictParseError(f'JSON "strength" must be 1, 2 or null, not {strength!r}')
        return ParsedVerdict(parsed.outcome, int(strength), parsed.label)
    return parsed


def _from_label(label: str) -> ParsedVerdict:
    if label not in LABELS:
        raise VerdictParseError(f"unknown verdict label {label!r}")
    outcome, strength = LABELS[label]
    return ParsedVerdict(outcome, strength, label)
