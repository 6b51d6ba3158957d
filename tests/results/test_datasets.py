"""Exports load offline with Hugging Face ``datasets``, with the columns TRL's preference trainers expect."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from django.core.management import call_command
from django.db.models import Q

from annotation.models import Comparison, Output, Prompt
from tests.results.conftest import Rated


@pytest.fixture
def offline_datasets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Import ``datasets`` with no network and a throwaway cache."""
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf" / "datasets"))
    return importlib.import_module("datasets")


@pytest.mark.parametrize("suffix", ["jsonl", "parquet"])
def test_dpo_export_loads_with_datasets_as_trl_preference_pairs(
    rated: Rated, tmp_path: Path, offline_datasets: Any, suffix: str
) -> None:
    out = tmp_path / f"pairs.{suffix}"
    call_command("export", rated.campaign.slug, "--format", "dpo", "--out", str(out), "--aggregate", "majority")

    builder = "json" if suffix == "jsonl" else "parquet"
    dataset = offline_datasets.load_dataset(
        builder, data_files=str(out), split="train", cache_dir=str(tmp_path / "hf" / "datasets")
    )

    assert dataset.num_rows == len(rated.comparisons) - 1
    assert {"prompt", "chosen", "rejected"} <= set(dataset.column_names)
    row = dataset[0]
    assert row["prompt"].startswith("Question")
    assert row["chosen"] != row["rejected"]
    assert row["chosen_model"] == "model-x"


def blank_texts(rated: Rated) -> set[int]:
    """Empty an output and another prompt's text (white space only); return the comparisons that show them."""
    output, prompt = rated.comparisons[1].output_b_id, rated.comparisons[6].prompt_id
    Output.objects.filter(pk=output).update(text="")
    Prompt.objects.filter(pk=prompt).update(text=" \n\t")
    shown = Comparison.objects.filter(Q(output_a_id=output) | Q(output_b_id=output) | Q(prompt_id=prompt))
    return set(shown.values_list("pk", flat=True))


def dpo_rows(rated: Rated, out: Path, aggregate: str) -> list[dict[str, Any]]:
    call_command("export", rated.campaign.slug, "--format", "dpo", "--out", str(out), "--aggregate", aggregate)
    return [json.loads(line) for line in out.read_text().splitlines()]


@pytest.mark.parametrize("aggregate", ["majority", "unanimous", "each"])
def test_dpo_export_skips_pairs_without_texts_and_warns_with_their_count(
    rated: Rated, tmp_path: Path, capsys: pytest.CaptureFixture[str], aggregate: str
) -> None:
    before = dpo_rows(rated, tmp_path / "before.jsonl", aggregate)
    blank = blank_texts(rated)
    capsys.readouterr()

    after = dpo_rows(rated, tmp_path / "after.jsonl", aggregate)

    kept = [row for row in before if row["comparison_id"] not in blank]
    skipped = len(before) - len(kept)
    assert skipped >= 2
    assert [(r["comparison_id"], r["rating_id"]) for r in after] == [(r["comparison_id"], r["rating_id"]) for r in kept]
    assert all(row[key].strip() for row in after for key in ("prompt", "chosen", "rejected"))
    err = capsys.readouterr().err
    assert f"warning: skipped {skipped} preference pairs whose prompt, chosen or rejected text is empty\n" in err
    assert f"wrote {len(after)} rows" in err


def test_dpo_export_without_empty_texts_warns_of_nothing(
    rated: Rated, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dpo_rows(rated, tmp_path / "pairs.jsonl", "majority")

    assert "warning" not in capsys.readouterr().err


def test_dpo_csv_export_loads_with_datasets_without_a_missing_text(
    rated: Rated, tmp_path: Path, offline_datasets: Any
) -> None:
    blank_texts(rated)
    out = tmp_path / "pairs.csv"
    call_command("export", rated.campaign.slug, "--format", "dpo", "--out", str(out), "--aggregate", "each")

    cache = str(tmp_path / "hf" / "datasets")
    dataset = offline_datasets.load_dataset("csv", data_files=str(out), split="train", cache_dir=cache)

    assert dataset.num_rows > 0
    assert all(isinstance(text, str) and text for key in ("prompt", "chosen", "rejected") for text in dataset[key])


def test_empty_csv_texts_read_back_as_empty_strings_with_keep_default_na_off(
    rated: Rated, tmp_path: Path, offline_datasets: Any
) -> None:
    out = tmp_path / "ratings.csv"
    call_command("export", rated.campaign.slug, "--format", "ratings", "--out", str(out))

    assert ',"",' in out.read_text()  # an empty text is written "" (and NULL as nothing), as PostgreSQL does
    cache = str(tmp_path / "hf" / "datasets")
    dataset = offline_datasets.load_dataset(
        "csv", data_files=str(out), split="train", cache_dir=cache, keep_default_na=False
    )
    frame = pd.read_csv(out, keep_default_na=False)
    assert set(dataset["rationale"]) == set(frame["rationale"]) == {""}
    assert pd.read_csv(out)["rationale"].isna().all()  # pandas' default: both empty text and NULL are missing
