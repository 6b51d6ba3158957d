"""High-frequency prompt downsampling (Chatbot Arena's dedup) and ``python -m scoring rank --downsample-high-freq``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scoring.cli import main
from scoring.loaders import NO_FILTER, InputError
from scoring.prompt_frequency import high_frequency_keep, prompt_identity, read_downsampled_counts


def test_prompts_above_the_percentile_keep_the_cutoffs_floor_and_the_rest_keep_all() -> None:
    rng = np.random.default_rng(0)
    prompts = np.concatenate([np.arange(2000), np.arange(2000), np.full(500, 7), np.full(40, 9)]).astype(np.int64)
    keep, summary = high_frequency_keep(prompts, percentile=0.999, rng=rng)
    # The cutoff is pandas' quantile of the per-prompt counts, as in FastChat's deduplication script.
    cutoff = pd.Series(prompts).value_counts().quantile(0.999)
    assert summary.cutoff == pytest.approx(cutoff)
    kept = pd.Series(prompts[keep]).value_counts()
    assert kept[7] == int(cutoff)
    assert kept[9] == int(cutoff) == 2
    assert (kept.drop([7, 9]) == 2).all()
    assert summary.votes_dropped == len(prompts) - int(keep.sum())
    assert summary.high_frequency_prompts == int((pd.Series(prompts).value_counts() > cutoff).sum())


def test_the_kept_votes_are_a_reproducible_uniform_sample() -> None:
    prompts = np.zeros(1000, dtype=np.int64)
    prompts[:10] = np.arange(1, 11)
    first, _ = high_frequency_keep(prompts, percentile=0.5, rng=np.random.default_rng(5))
    again, _ = high_frequency_keep(prompts, percentile=0.5, rng=np.random.default_rng(5))
    assert np.array_equal(first, again)
    shares = np.zeros(990)
    for seed in range(200):
        keep, summary = high_frequency_keep(prompts, percentile=0.5, rng=np.random.default_rng(seed))
        assert summary.kept_per_prompt == 1
        assert keep[:10].all()
        shares += keep[10:]
    assert shares.sum() == 200
    assert shares.max() <= 5  # no vote is favoured (a fixed choice would give 200)


def test_high_frequency_keep_rejects_a_percentile_outside_0_1() -> None:
    with pytest.raises(ValueError, match="percentile"):
        high_frequency_keep(np.zeros(3, dtype=np.int64), percentile=1.5, rng=np.random.default_rng(0))


def test_prompt_identity_is_the_user_turns_of_conversation_a_else_question_id() -> None:
    conversation = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Bye"},
    ]
    assert prompt_identity({"conversation_a": conversation, "question_id": "x"}) == "c:Hi\nBye\n"
    assert prompt_identity({"question_id": 81}) == "q:81"
    with pytest.raises(ValueError, match="question_id"):
        prompt_identity({"model_a": "a"})


def _battle(a: str, b: str, winner: str, prompt: str) -> dict[str, object]:
    return {
        "model_a": a,
        "model_b": b,
        "winner": winner,
        "question_id": f"{a}-{b}-{prompt}",
        "conversation_a": [{"role": "user", "content": prompt}, {"role": "assistant", "content": "..."}],
    }


def _log(tmp_path: Path) -> Path:
    # 1,200 distinct prompts: a wins 700 of them against c.
    records = [_battle("a", "c", "model_a" if k < 700 else "model_b", f"question {k}") for k in range(1200)]
    # One prompt asked 300 times, always won by c: it puts c on top until it is downsampled.
    records += [_battle("c", "a", "model_a", "hi") for _ in range(300)]
    path = tmp_path / "battles.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_read_downsampled_counts_caps_the_repeated_prompt(tmp_path: Path) -> None:
    counts, summary = read_downsampled_counts(_log(tmp_path), NO_FILTER, percentile=0.999, rng=np.random.default_rng(0))
    assert summary.high_frequency_prompts == 1
    index = {name: k for k, name in enumerate(counts.models)}
    assert summary.kept_per_prompt == 1
    assert counts.wins[index["c"], index["a"]] == 500 + 1
    assert summary.votes_dropped == 299


def test_rank_downsample_high_freq_reports_the_downsampling(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _log(tmp_path)
    assert main(["rank", str(path), "--seed", "1"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert main(["rank", str(path), "--seed", "1", "--downsample-high-freq"]) == 0
    down = json.loads(capsys.readouterr().out)

    def order(payload: dict[str, list[dict[str, object]]]) -> list[object]:
        return [row["model"] for row in payload["ratings"]]

    assert order(plain).index("c") < order(plain).index("a")
    assert order(down).index("a") < order(down).index("c")
    assert down["n_battles"] == plain["n_battles"] - 299
    assert down["downsampling"]["votes_dropped"] == 299


def test_rank_downsample_high_freq_names_a_battle_without_a_prompt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bare.jsonl"
    path.write_text('{"model_a": "a", "model_b": "b", "winner": "model_a"}\n')
    assert main(["rank", str(path), "--downsample-high-freq"]) == 1
    assert "line 1" in capsys.readouterr().err
    with pytest.raises(InputError, match="line 1"):
        read_downsampled_counts(path, NO_FILTER, rng=np.random.default_rng(0))
