"""Reproducibility manifests: what a leaderboard, agreement report or export was computed from, and whether it
still comes out the same.

A manifest names the campaign, the rater selection, the options (seeds included), the judge configurations whose
ratings count, the code version, the time, a digest of the exact ratings used and one of the result. The ratings
digest is SHA-256 over the selected ratings in id order, one line ``id|rater|comparison|verdict|winner|left_output|
strength|created_at (microseconds)`` each, streamed from PostgreSQL with ``COPY`` (memory stays bounded whatever the
number of ratings). Beside it a sketch (per id modulo BUCKETS: a count and the XOR of 64-bit row hashes) lets a
later check count ratings removed, changed or inserted without storing their ids. The result and the digest are read
in one snapshot, so they describe the same ratings. ``manage.py reproduce`` and ``POST .../reproduce/`` recompute.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import importlib.metadata
import json
import os
import struct
import subprocess
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from annotation.models import Campaign
from evalplatform.exceptions import DomainError
from judging.models import JudgeConfig
from results.exports import RowCounter
from results.raters import RaterSelection
from results.selectors import fetch_all, judge_raters, no_jit, ratings_from, ratings_version

FORMAT = "evalplatform.manifest/1"
KINDS = ("leaderboard", "agreement", "export")
BUCKETS = 256
# One line per rating; NULLs spelt "-" so that no two different ratings give the same line.
ROW_SQL = """concat_ws('|', r.id, r.rater_id, r.comparison_id, r.verdict, COALESCE(r.winner_id::text, '-'),
    COALESCE(r.left_output_id::text, '-'), COALESCE(r.strength::text, '-'),
    (extract(epoch FROM r.created_at) * 1000000)::bigint)"""
ROW_HASH_SQL = f"('x' || left(md5({ROW_SQL}), 16))::bit(64)::bigint"
ROW_COLUMNS = ["id", "rater", "comparison", "verdict", "winner", "left_output", "strength", "created_at_us"]
# The judge settings that shape its requests (not its rate limits, prices or key's variable). Free texts appear by
# their SHA-256: a co-researcher's own judge is used in a shared campaign, but its prompts stay its owner's to show.
JUDGE_FIELDS = ("base_url", "model", "template", "verdict_format", "temperature", "max_tokens", "both_orders")
JUDGE_TEXTS = ("system_prompt", "custom_template", "verdict_pattern")
# Parts of a report that are not its result: timing, and what the API or a command adds beside it.
VOLATILE = ("seconds", "manifest", "side_by_side", "rater_mix")
HEX64 = frozenset("0123456789abcdef")


# --- digests --------------------------------------------------------------------------------------------------


@contextmanager
def snapshot() -> Iterator[None]:
    """Run the block in one transaction that sees one snapshot of the database (when the transaction is ours)."""
    ours = not connection.in_atomic_block
    with transaction.atomic():
        if ours:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        yield


def ratings_digest(campaign: Campaign, selection: RaterSelection) -> dict[str, Any]:
    """Return the count, largest id, SHA-256 and sketch of the campaign's selected ratings."""
    source, params = ratings_from(campaign, selection, rater=False)
    sha = hashlib.sha256()
    sql = f"COPY (SELECT {ROW_SQL} {source} ORDER BY r.id) TO STDOUT"
    with snapshot():  # the digest and the sketch read the same ratings
        with connection.cursor() as plain:
            no_jit(plain)
        with connection.connection.cursor() as cursor, cursor.copy(sql, params) as copy:
            for block in copy:
                sha.update(block)
        counts, hashes, max_id = sketch(source, params)
    return {
        "count": sum(counts),
        "max_id": max_id,
        "sha256": sha.hexdigest(),
        "columns": ROW_COLUMNS,
        "sketch": encode_sketch(counts, hashes),
    }


def cached_ratings_digest(campaign: Campaign, selection: RaterSelection) -> dict[str, Any]:
    """Return the ratings digest, cached under the ratings version as the reports are (a cached leaderboard
    then costs no pass over its ratings)."""
    from results.leaderboards import cache_key, cached

    key = cache_key("manifest-ratings", campaign.pk, selection.key, ratings_version().key)
    return dict(cached(key, lambda: ratings_digest(campaign, selection)))


def sketch(source: str, params: list[Any], *, upto_id: int | None = None) -> tuple[list[int], list[int], int]:
    """Return per bucket (id modulo BUCKETS) the count and XOR of row hashes, and the largest id."""
    extra, more = ("AND r.id <= %s", [upto_id]) if upto_id is not None else ("", [])
    rows = fetch_all(
        f"SELECT r.id %% {BUCKETS}, count(*), bit_xor({ROW_HASH_SQL}), max(r.id) {source} {extra} GROUP BY 1",
        [*params, *more],
    )
    counts, hashes = [0] * BUCKETS, [0] * BUCKETS
    for bucket, count, xor, _ in rows:
        counts[bucket], hashes[bucket] = count, xor
    return counts, hashes, max((row[3] for row in rows), default=0)


def encode_sketch(counts: list[int], hashes: list[int]) -> str:
    return base64.b64encode(struct.pack(f">{BUCKETS}q{BUCKETS}q", *counts, *hashes)).decode()


def decode_sketch(text: str) -> tuple[list[int], list[int]]:
    """Return a sketch's counts and hashes; raise DomainError when it is not one."""
    try:
        raw = base64.b64decode(text.encode(), validate=True)
        values = struct.unpack(f">{BUCKETS}q{BUCKETS}q", raw)
    except (binascii.Error, struct.error, UnicodeEncodeError) as exc:
        raise DomainError("manifest: ratings.sketch is corrupt", field="ratings") from exc
    return list(values[:BUCKETS]), list(values[BUCKETS:])


def result_digest(report: dict[str, Any]) -> str:
    """Return SHA-256 of a report's result (canonical JSON, without timing and what is shown beside it)."""
    body = {key: value for key, value in report.items() if key not in VOLATILE}
    return hashlib.sha256(canonical(body)).hexdigest()


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()


# --- what else a manifest names -------------------------------------------------------------------------------


@functools.cache
def code_version() -> dict[str, Any]:
    """Return the package's version and the git commit (EVALPLATFORM_GIT_COMMIT, else the checkout's), if any."""
    try:
        version = importlib.metadata.version("evalplatform")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    commit = os.environ.get("EVALPLATFORM_GIT_COMMIT") or git_commit(Path(settings.BASE_DIR))
    return {"package": "evalplatform", "version": version, "git_commit": commit}


def git_commit(directory: Path) -> str | None:
    """Return the commit checked out in directory, or None when it is not a git checkout."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=directory, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and len(commit) == 40 else None


def judge_configs(campaign: Campaign, selection: RaterSelection) -> list[dict[str, Any]]:
    """Return the request settings of each judge whose ratings are selected (None for imported judge raters)."""
    judges = judge_raters(campaign, selection)
    configs = {c.rater_id: c for c in JudgeConfig.objects.filter(rater_id__in=[rid for rid, _ in judges])}
    result = []
    for rater_id, name in judges:
        config = configs.get(rater_id)
        fields = judge_settings(config) if config else None
        digest = hashlib.sha256(canonical(fields)).hexdigest() if fields else None
        result.append({"name": name, "config": fields, "sha256": digest})
    return result


def judge_settings(config: JudgeConfig) -> dict[str, Any]:
    """Return a judge's request settings, free texts as their SHA-256."""
    texts = {f"{field}_sha256": hashlib.sha256(getattr(config, field).encode()).hexdigest() for field in JUDGE_TEXTS}
    return {field: getattr(config, field) for field in JUDGE_FIELDS} | texts


def selection_data(selection: RaterSelection) -> dict[str, Any]:
    return {
        "key": selection.key,
        "kind": selection.kind,
        "names": list(selection.names),
        "exclude": list(selection.exclude),
        "excluded_raters": sorted(label for _, label in selection.left_out),
    }


def build(
    *,
    kind: str,
    campaign: Campaign,
    selection: RaterSelection,
    options: dict[str, Any],
    ratings: dict[str, Any],
    result: dict[str, Any],
) -> dict[str, Any]:
    """Return a manifest with its checksum (SHA-256 of the rest, so that an edited or damaged one is refused)."""
    manifest = {
        "manifest": FORMAT,
        "kind": kind,
        "campaign": campaign.slug,
        "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "selection": selection_data(selection),
        "options": options,
        "ratings": ratings,
        "judges": judge_configs(campaign, selection),
        "code": code_version(),
        "result": result,
    }
    manifest["checksum"] = hashlib.sha256(canonical(manifest)).hexdigest()
    return manifest


# --- results with their manifests -----------------------------------------------------------------------------


def leaderboard_options(
    board: dict[str, Any], *, bootstrap: int, seed: int, combine: str | None, consistent: bool = False
) -> dict[str, Any]:
    """Return a leaderboard's options; Elo is recorded as it came (a large campaign's may be left out).

    The consistency gate is recorded only when on, so ungated manifests read as before.
    """
    with_elo = any("elo" in row for row in board.get("ratings", []))
    options = {"bootstrap": bootstrap, "seed": seed, "combine": combine, "with_elo": with_elo}
    return {**options, "consistent": True} if consistent else options


def leaderboard_with_manifest(
    campaign: Campaign,
    selection: RaterSelection,
    *,
    bootstrap: int = 0,
    seed: int = 0,
    combine: str | None = None,
    consistent: bool = False,
    category: str | None = None,
    cluster: str | None = None,
    rater_model: bool = False,
    influence: bool = False,
    downsample: bool = False,
) -> dict[str, Any]:
    """Return the campaign's leaderboard with its manifest under ``manifest`` (read in one snapshot)."""
    from results.leaderboards import campaign_leaderboard

    with snapshot():
        ratings = cached_ratings_digest(campaign, selection)
        board = campaign_leaderboard(
            campaign,
            selection,
            bootstrap=bootstrap,
            seed=seed,
            combine=combine,
            consistent=consistent,
            category=category,
            cluster=cluster,
            rater_model=rater_model,
            influence=influence,
            downsample=downsample,
        )
        options = leaderboard_options(board, bootstrap=bootstrap, seed=seed, combine=combine, consistent=consistent)
        if category is not None:  # recorded only when set, so that whole-campaign manifests read as before
            options["category"] = category
        if cluster is not None:
            options["cluster"] = cluster
        if rater_model:
            options["rater_model"] = True
        if influence:
            options["influence"] = True
        if downsample:
            options["downsample"] = True
        board["manifest"] = build(
            kind="leaderboard", campaign=campaign, selection=selection, options=options, ratings=ratings,
            result={"sha256": result_digest(board)},
        )  # fmt: skip
    return board


def agreement_with_manifest(
    campaign: Campaign, selection: RaterSelection, *, bootstrap: int = 200, seed: int = 0, consistent: bool = False
) -> dict[str, Any]:
    """Return the campaign's agreement report with its manifest under ``manifest`` (read in one snapshot).

    The consistency gate is recorded only when on, as on leaderboards.
    """
    from results.agreement import campaign_agreement

    options: dict[str, Any] = {"bootstrap": bootstrap, "seed": seed}
    if consistent:
        options["consistent"] = True
    with snapshot():
        ratings = cached_ratings_digest(campaign, selection)
        report = campaign_agreement(campaign, selection, bootstrap=bootstrap, seed=seed, consistent=consistent)
        report["manifest"] = build(
            kind="agreement", campaign=campaign, selection=selection, options=options,
            ratings=ratings, result={"sha256": result_digest(report)},
        )  # fmt: skip
    return report


def export_options(
    format: str, file_type: str, aggregate: str | None, min_confidence: float | None = None, consistent: bool = False
) -> dict[str, Any]:
    """Return an export's options; the consistency gate is recorded only when on."""
    options: dict[str, Any] = {"format": format, "file_type": file_type, "aggregate": aggregate}
    if min_confidence is not None:
        options["min_confidence"] = min_confidence
    if consistent:
        options["consistent"] = True
    return options


def iter_export_with_digest(
    campaign: Campaign,
    *,
    format: str,
    file_type: str,
    selection: RaterSelection,
    aggregate: str | None,
    digest: dict[str, Any],
    counter: RowCounter | None = None,
    min_confidence: float | None = None,
    consistent: bool = False,
) -> Generator[bytes | memoryview, None, None]:
    """Yield an export as ``iter_export`` does, after filling ``digest`` with its ratings' digest (same snapshot)."""
    from results.exports import iter_export

    with snapshot():
        digest.update(ratings_digest(campaign, selection))
        yield from iter_export(
            campaign, format=format, file_type=file_type, selection=selection, aggregate=aggregate,
            min_confidence=min_confidence, counter=counter, consistent=consistent,
        )  # fmt: skip


def export_manifest(
    campaign: Campaign,
    *,
    format: str,
    file_type: str,
    selection: RaterSelection,
    aggregate: str | None,
    min_confidence: float | None = None,
    consistent: bool = False,
) -> dict[str, Any]:
    """Compute an export without keeping it and return its manifest (the file's SHA-256 and size included)."""
    digest: dict[str, Any] = {}
    sha, size = hashlib.sha256(), 0
    for piece in iter_export_with_digest(
        campaign, format=format, file_type=file_type, selection=selection, aggregate=aggregate, digest=digest,
        min_confidence=min_confidence, consistent=consistent,
    ):  # fmt: skip
        sha.update(piece)
        size += len(piece)
    options = export_options(format, file_type, aggregate, min_confidence, consistent)
    return build(
        kind="export", campaign=campaign, selection=selection, options=options,
        ratings=digest, result={"sha256": sha.hexdigest(), "bytes": size},
    )  # fmt: skip


def manifest_path(out: str | Path) -> Path:
    """Return where an export's manifest goes: beside it, FILE.manifest.json."""
    return Path(f"{os.fspath(out)}.manifest.json")


def write_export_with_manifest(
    campaign: Campaign,
    *,
    format: str,
    out: str | Path,
    selection: RaterSelection,
    aggregate: str | None = None,
    min_confidence: float | None = None,
    consistent: bool = False,
) -> tuple[RowCounter, dict[str, Any]]:
    """Write an export and its manifest beside it (FILE.manifest.json); return its row counts and the manifest."""
    from results.exports import file_type_for, write_export

    file_type = file_type_for(out)
    with snapshot():
        ratings = ratings_digest(campaign, selection)
        counter = write_export(
            campaign, format=format, out=out, selection=selection, aggregate=aggregate,
            min_confidence=min_confidence, consistent=consistent,
        )  # fmt: skip
    sha, size = file_digest(Path(out))
    options = export_options(format, file_type, aggregate, min_confidence, consistent)
    manifest = build(
        kind="export", campaign=campaign, selection=selection, options=options,
        ratings=ratings, result={"sha256": sha, "bytes": size},
    )  # fmt: skip
    manifest_path(out).write_text(json.dumps(manifest, indent=2) + "\n")
    return counter, manifest


def file_digest(path: Path) -> tuple[str, int]:
    """Return a file's SHA-256 and size, read a megabyte at a time."""
    sha, size = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            sha.update(block)
            size += len(block)
    return sha.hexdigest(), size
