"""How the local server judges: transparent heuristics over the prompt, in the format the prompt asks for.

- With a reference answer: the answer closer to it wins (word-overlap F1).
- Without: the longer, more structured answer wins (log length plus a bonus per list item or paragraph).
- Scores within `tie_margin` of each other are a tie.
- `position_bias` in [0, 1] is the chance that the answer shown first wins regardless, as real judges tend to do.
Decisions are a function of the prompt and the seed, so identical requests get identical replies. Asked for a
probability (the probability template's `[[P=...]]`), it answers P(A is better) from the decision (`probability_of`).

Planted biases (`Biases`, for the judge report's tests and demos), applied in this order:
- position: the chance that the answer shown first wins regardless;
- self-preference: when exactly one answer contains one of the `markers` (a family's outputs carry it), the chance
  that it wins regardless;
- length: a logistic slope; the heuristic is replaced by a draw where A wins with probability
  sigmoid(length * (ln(1 + words A) - ln(1 + words B))), so no ties;
- flip: the chance, drawn afresh per call (`call_key`), that the decided winner swaps: the noise that makes
  repeated runs differ when the call cache is bypassed. Every other draw depends on the prompt only.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from dataclasses import dataclass
from typing import Any

_SECTIONS = {
    "question": [r"\[User Question\]\n(.*?)\n\n\[The Start", r"<\|User Prompt\|>\n(.*?)\n\n<\|The Start"],
    "reference": [r"\[The Start of Reference Answer\]\n(.*?)\n\[The End of Reference Answer\]"],
    "a": [
        r"\[The Start of Assistant A's Answer\]\n(.*?)\n\[The End of Assistant A's Answer\]",
        r"<\|The Start of Assistant A's Answer\|>\n(.*?)\n<\|The End of Assistant A's Answer\|>",
        r"(?:Answer|Response) A:?\n(.*?)\n\n(?:Answer|Response) B",
    ],
    "b": [
        r"\[The Start of Assistant B's Answer\]\n(.*?)\n\[The End of Assistant B's Answer\]",
        r"<\|The Start of Assistant B's Answer\|>\n(.*?)\n<\|The End of Assistant B's Answer\|>",
        r"(?:Answer|Response) B:?\n(.*?)(?:\n\n|$)",
    ],
}


@dataclass(frozen=True)
class Judgement:
    outcome: str  # "A", "B" or "tie"
    strength: int  # 1 slightly, 2 clearly better (0 for ties)
    explanation: str


def extract(text: str, part: str) -> str | None:
    """Return one section (question, reference, a, b) of a judge prompt, or None when absent."""
    for pattern in _SECTIONS[part]:
        match = re.search(pattern, text, flags=re.DOTALL)
        if match:
            return match.group(1)
    return None


@dataclass(frozen=True)
class Biases:
    """Biases planted in the local judge (see the module's docstring); all zero: the plain heuristics."""

    position: float = 0.0
    length: float | None = None
    self_preference: float = 0.0
    markers: tuple[str, ...] = ()
    flip: float = 0.0


def judge(
    prompt: str,
    *,
    position_bias: float,
    seed: int,
    tie_margin: float = 0.05,
    biases: Biases | None = None,
    call_key: str = "",
) -> Judgement:
    """Return the verdict on the two answers in a judge prompt (`biases.position` replaces `position_bias`)."""
    digest = hashlib.sha256(prompt.encode()).hexdigest()
    rng = random.Random(f"{seed}:{digest}")
    planted = biases or Biases(position=position_bias)
    a, b, reference = extract(prompt, "a"), extract(prompt, "b"), extract(prompt, "reference")
    if a is None or b is None:
        outcome = rng.choice(["A", "B", "tie"])
        return Judgement(outcome, 1, "I could not find both answers, so this verdict is a guess.")
    judgement = _decide(a, b, reference, rng, planted, tie_margin)
    decided = judgement.outcome in ("A", "B")
    if decided and planted.flip and random.Random(f"{seed}:{digest}:{call_key}").random() < planted.flip:
        swapped = "B" if judgement.outcome == "A" else "A"
        return Judgement(swapped, judgement.strength, judgement.explanation + " On second thought, no.")
    return judgement


def _decide(a: str, b: str, reference: str | None, rng: random.Random, biases: Biases, tie_margin: float) -> Judgement:
    if rng.random() < biases.position:
        return Judgement("A", 1, "Assistant A's answer, shown first, reads better to me.")
    marked_a, marked_b = (any(m in text for m in biases.markers) for text in (a, b))
    if marked_a != marked_b and rng.random() < biases.self_preference:
        return Judgement("A" if marked_a else "B", 2, "This answer has the style I like best.")
    if biases.length is not None:
        gap = biases.length * (length_score(a) - length_score(b))
        chance = 1 / (1 + math.exp(-max(-700.0, min(700.0, gap))))
        return Judgement("A" if rng.random() < chance else "B", 1, f"A wins with probability {chance:.3f}.")
    return _heuristic(a, b, reference, tie_margin)


def length_score(answer: str) -> float:
    """Return ln(1 + words): the length scale of the planted length bias (and of the judge report's slope)."""
    return math.log1p(len(answer.split()))


def _heuristic(a: str, b: str, reference: str | None, tie_margin: float) -> Judgement:
    if reference:
        score_a, score_b = overlap_f1(a, reference), overlap_f1(b, reference)
        basis = "closeness to the reference answer"
    else:
        score_a, score_b = richness(a), richness(b)
        basis = "length and structure"
    gap = score_a - score_b
    scale = max(abs(score_a), abs(score_b), 1e-9)
    explanation = f"Judged on {basis}: A scores {score_a:.3f}, B scores {score_b:.3f}."
    if abs(gap) <= tie_margin * scale:
        return Judgement("tie", 0, explanation)
    strength = 2 if abs(gap) > 0.3 * scale else 1
    return Judgement("A" if gap > 0 else "B", strength, explanation)


def overlap_f1(answer: str, reference: str) -> float:
    """Return the F1 of the answer's words against the reference's words."""
    got, want = _words(answer), _words(reference)
    common = len(got & want)
    if not common:
        return 0.0
    precision, recall = common / len(got), common / len(want)
    return 2 * precision * recall / (precision + recall)


def richness(answer: str) -> float:
    """Return a length-and-structure score: log word count plus a bonus per list item or paragraph."""
    words = len(answer.split())
    items = len(re.findall(r"^\s*(?:[-*]|\d+[.)])\s", answer, flags=re.MULTILINE))
    paragraphs = answer.count("\n\n")
    return math.log1p(words) + 0.2 * items + 0.1 * paragraphs


def reply_text(messages: list[dict[str, Any]], response_format: dict[str, Any] | None, judgement: Judgement) -> str:
    """Return the reply in the format the prompt asks for: JSON, a probability, Arena-Hard or MT-Bench labels."""
    prompt = "\n".join(str(m.get("content", "")) for m in messages)
    if "[[P=" in prompt:  # the probability template: P(A is better) from the outcome and its strength
        return f"{judgement.explanation}\n\n[[P={probability_of(judgement):.2f}]]"
    if response_format and response_format.get("type") in ("json_object", "json_schema"):
        strength = judgement.strength if judgement.outcome in ("A", "B") else None
        return json.dumps({"verdict": judgement.outcome, "strength": strength, "rationale": judgement.explanation})
    if "[[A>>B]]" in prompt or "[[B>A]]" in prompt:
        label = {"A": "A>>B" if judgement.strength == 2 else "A>B", "B": "B>>A" if judgement.strength == 2 else "B>A"}
        return f"{judgement.explanation}\n\nMy final verdict is: [[{label.get(judgement.outcome, 'A=B')}]]"
    return f"{judgement.explanation}\n\n[[{ {'A': 'A', 'B': 'B'}.get(judgement.outcome, 'C') }]]"


def probability_of(judgement: Judgement) -> float:
    """Return the probability the local judge gives that A is better: 0.85 / 0.70 when A is clearly / slightly
    better, 0.15 / 0.30 for B, 0.50 for a tie."""
    if judgement.outcome not in ("A", "B"):
        return 0.5
    margin = 0.35 if judgement.strength == 2 else 0.2
    return 0.5 + margin if judgement.outcome == "A" else 0.5 - margin


def count_tokens(text: str) -> int:
    """Return a rough token count (four characters a token), like a tokenizer would for English."""
    return max(1, len(text) // 4)


def _words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))
