"""Exports load offline with Hugging Face ``datasets``, with the columns TRL's preference trainers expect."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

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
