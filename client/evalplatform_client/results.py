"""A campaign's results: leaderboards, win rates, categories, agreement, raters, ratings, exports and manifests."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from evalplatform_client import errors

if TYPE_CHECKING:
    from evalplatform_client.client import Client

FILE_TYPES = ("jsonl", "json", "csv", "parquet")
# A glob, or several (the server reads the parameter repeated).
Patterns = str | Sequence[str]


@dataclass(frozen=True)
class ExportResult:
    """A downloaded export: where it is, its size, the rows the server left out (dpo) with its warning, the digest
    of the exact ratings it holds, and where its manifest was written (``export(..., manifest=True)``)."""

    path: str
    bytes: int
    skipped_rows: int
    warning: str | None
    ratings_sha256: str | None = None
    manifest_path: str | None = None


def flag(value: bool | None) -> str | None:
    """Return a boolean query parameter as the server reads it ("true", "false"), None when not given."""
    return None if value is None else str(value).lower()


def selection(*, raters: str | None, exclude_raters: Patterns | None, include_excluded: bool | None) -> dict[str, Any]:
    """Return the rater-selection query parameters every report and export takes."""
    patterns = [exclude_raters] if isinstance(exclude_raters, str) else exclude_raters
    return {
        "raters": raters,
        "exclude_raters": list(patterns) if patterns else None,
        "include_excluded": None if include_excluded is None else int(include_excluded),
    }


class CampaignResults:
    """The results half of a Campaign (which holds the client, the campaign's path and its requests)."""

    client: Client
    path: str

    def _json(self, method: str, path: str = "", **options: Any) -> Any:
        return self.client.session.json(method, self.path + path, **options)

    def leaderboard(
        self,
        raters: str | None = None,
        *,
        exclude_raters: Patterns | None = None,
        include_excluded: bool | None = None,
        bootstrap: int | None = None,
        seed: int | None = None,
        category: str | None = None,
        consistent: bool | None = None,
        combine: Literal["ppi"] | None = None,
        cluster: Literal["rater", "prompt"] | None = None,
        rater_model: bool | None = None,
        style_control: bool | None = None,
        style_reg: float | None = None,
        influence: bool | None = None,
        downsample: bool | None = None,
    ) -> dict[str, Any]:
        """Return the leaderboard; `raters` is humans, judges, all (default) or comma-separated rater names.

        `exclude_raters`: leave out raters matching these globs; `include_excluded`: count the raters the
        researchers excluded from results. `category`: only the ratings on prompts with this tag (see
        `categories()`). `consistent`: the consistency gate (a comparison a judge decided differently in its two
        orders counts as one tie). `combine="ppi"`: humans and judges ranked together, prediction-powered.
        `cluster`: sandwich intervals clustered by rater or prompt. `rater_model`: each rater's reliability and
        left bias fitted with the ratings. `style_control` (with `style_reg`): ranked with answer length and
        markdown held fixed. `influence`: each model's fewest votes to flip it with the next. `downsample`: Chatbot
        Arena's high-frequency prompt downsampling. The server refuses (ValidationError) options that do not go
        together.
        """
        params = {
            **selection(raters=raters, exclude_raters=exclude_raters, include_excluded=include_excluded),
            "bootstrap": bootstrap,
            "seed": seed,
            "category": category,
            "consistent": flag(consistent),
            "combine": combine,
            "cluster": cluster,
            "rater_model": flag(rater_model),
            "style_control": flag(style_control),
            "style_reg": style_reg,
            "influence": flag(influence),
            "downsample": flag(downsample),
        }
        result: dict[str, Any] = self._json("GET", "leaderboard/", params=params)
        return result

    def length_controlled(
        self,
        baseline: str,
        *,
        difficulty: Literal["auto", "none"] | None = None,
        raters: str | None = None,
        exclude_raters: Patterns | None = None,
        include_excluded: bool | None = None,
    ) -> dict[str, Any]:
        """Return AlpacaEval 2's raw and length-controlled win rate of each model against the `baseline` model.

        `difficulty`: auto (default: the instructions' difficulty estimated from the campaign) or none.
        """
        params = {
            **selection(raters=raters, exclude_raters=exclude_raters, include_excluded=include_excluded),
            "baseline": baseline,
            "difficulty": difficulty,
        }
        result: dict[str, Any] = self._json("GET", "length-controlled/", params=params)
        return result

    def categories(
        self,
        raters: str | None = None,
        *,
        exclude_raters: Patterns | None = None,
        include_excluded: bool | None = None,
    ) -> dict[str, Any]:
        """Return the campaign's categories (prompt tags) with their prompts, battles and whether provisional."""
        params = selection(raters=raters, exclude_raters=exclude_raters, include_excluded=include_excluded)
        result: dict[str, Any] = self._json("GET", "categories/", params=params)
        return result

    def agreement(
        self,
        raters: str | None = None,
        *,
        exclude_raters: Patterns | None = None,
        include_excluded: bool | None = None,
        bootstrap: int | None = None,
        consistent: bool | None = None,
    ) -> dict[str, Any]:
        """Return the agreement report of the selected raters (`consistent`: with the consistency gate)."""
        params = {
            **selection(raters=raters, exclude_raters=exclude_raters, include_excluded=include_excluded),
            "bootstrap": bootstrap,
            "consistent": flag(consistent),
        }
        result: dict[str, Any] = self._json("GET", "agreement/", params=params)
        return result

    def raters(self, *, alpha: float | None = None, correction: Literal["bh", "holm"] | None = None) -> dict[str, Any]:
        """Return the rater report: every rater with its flags, gold accuracy and standing, and the latest actions."""
        result: dict[str, Any] = self._json("GET", "raters/", params={"alpha": alpha, "correction": correction})
        return result

    def rater_action(
        self, rater: str, action: Literal["pause", "resume", "exclude", "include"], reason: str
    ) -> dict[str, Any]:
        """Pause, resume, exclude (from results) or include one rater; the reason is kept in the audit trail."""
        body = {"rater": rater, "action": action, "reason": reason}
        result: dict[str, Any] = self._json("POST", "raters/actions/", json=body)
        return result

    def ratings(
        self,
        raters: str | None = None,
        *,
        exclude_raters: Patterns | None = None,
        include_excluded: bool | None = None,
        verdict: str | None = None,
        source: str | None = None,
        comparison: int | None = None,
        page_size: int = 500,
    ) -> Iterator[dict[str, Any]]:
        """Yield the campaign's ratings, fetched a page at a time."""
        params = {
            **selection(raters=raters, exclude_raters=exclude_raters, include_excluded=include_excluded),
            "verdict": verdict,
            "source": source,
            "comparison": comparison,
        }
        yield from self.client.session.pages(self.path + "ratings/", params, page_size=page_size)

    def export(
        self,
        dataset: Literal["ratings", "arena", "dpo", "alpaca_eval"],
        path: str | os.PathLike[str],
        *,
        file_type: str | None = None,
        raters: str | None = None,
        exclude_raters: Patterns | None = None,
        include_excluded: bool | None = None,
        aggregate: Literal["majority", "unanimous", "each", "posterior"] | None = None,
        min_confidence: float | None = None,
        consistent: bool | None = None,
        manifest: bool = False,
    ) -> ExportResult:
        """Stream an export to `path` (the file type from its suffix unless given); return what was written.

        `min_confidence` (aggregate="posterior"): leave out pairs whose verdict is less probable; `consistent`: the
        consistency gate. The file appears complete or not at all (written beside it, then renamed). With
        `manifest`, its reproducibility manifest is fetched, checked against the file (the same ratings, the same
        bytes: else EvalPlatformError, as when ratings changed in between) and written beside it, `path` +
        ".manifest.json".
        """
        target = os.fspath(path)
        file_type = file_type or os.path.splitext(target)[1].lstrip(".").lower()
        if file_type not in FILE_TYPES:
            raise ValueError(f"file type {file_type!r}: give one of {', '.join(FILE_TYPES)} (or a path ending so)")
        params = export_params(
            raters=raters,
            exclude_raters=exclude_raters,
            include_excluded=include_excluded,
            aggregate=aggregate,
            min_confidence=min_confidence,
            consistent=consistent,
        )
        headers = self.client.session.download(
            f"{self.path}export/{dataset}.{file_type}", params, target, self.client.progress
        )
        result = ExportResult(
            path=target,
            bytes=os.path.getsize(target),
            skipped_rows=int(headers.get("X-Export-Skipped-Rows") or 0),
            warning=headers.get("X-Export-Warning"),
            ratings_sha256=headers.get("X-Export-Ratings-Sha256"),
        )
        if not manifest:
            return result
        described = self.export_manifest(
            dataset,
            file_type,
            raters=raters,
            exclude_raters=exclude_raters,
            include_excluded=include_excluded,
            aggregate=aggregate,
            min_confidence=min_confidence,
            consistent=consistent,
        )
        check_manifest(described, result)
        manifest_path = target + ".manifest.json"
        with open(manifest_path, "w", encoding="utf-8") as out:
            json.dump(described, out, indent=2)
        return replace(result, manifest_path=manifest_path)

    def export_manifest(
        self,
        dataset: str,
        file_type: str = "jsonl",
        *,
        raters: str | None = None,
        exclude_raters: Patterns | None = None,
        include_excluded: bool | None = None,
        aggregate: str | None = None,
        min_confidence: float | None = None,
        consistent: bool | None = None,
    ) -> dict[str, Any]:
        """Return the reproducibility manifest of an export with these options, without downloading it."""
        params = export_params(
            raters=raters,
            exclude_raters=exclude_raters,
            include_excluded=include_excluded,
            aggregate=aggregate,
            min_confidence=min_confidence,
            consistent=consistent,
        )
        result: dict[str, Any] = self._json("GET", f"export/{dataset}.{file_type}/manifest/", params=params)
        return result

    def reproduce(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Recompute the result a manifest describes and return whether it is identical (and what changed if not)."""
        result: dict[str, Any] = self._json("POST", "reproduce/", json=manifest, safe=True)  # reads only
        return result


def export_params(
    *,
    raters: str | None,
    exclude_raters: Patterns | None,
    include_excluded: bool | None,
    aggregate: str | None,
    min_confidence: float | None,
    consistent: bool | None,
) -> dict[str, Any]:
    """Return an export's query parameters (the download and its manifest take the same)."""
    return {
        **selection(raters=raters, exclude_raters=exclude_raters, include_excluded=include_excluded),
        "aggregate": aggregate,
        "min_confidence": min_confidence,
        "consistent": flag(consistent),
    }


def check_manifest(manifest: dict[str, Any], result: ExportResult) -> None:
    """Raise EvalPlatformError unless the manifest describes the downloaded file (same ratings, same bytes)."""
    if manifest["ratings"]["sha256"] != result.ratings_sha256:
        raise errors.EvalPlatformError(f"{result.path}: the ratings changed between the download and its manifest")
    sha = hashlib.sha256()
    with open(result.path, "rb") as handle:
        while block := handle.read(1 << 20):
            sha.update(block)
    if manifest["result"]["sha256"] != sha.hexdigest():
        raise errors.EvalPlatformError(f"{result.path}: the file differs from what its manifest describes")
