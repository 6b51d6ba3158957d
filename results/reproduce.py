"""Check a reproducibility manifest: recompute its result from today's ratings and say what changed, if anything.

The ratings compare by their digest; when it differs, the manifest's sketch gives how many were removed, changed or
inserted among the ids it covered (lower bounds, exact when the differences fall in different buckets of id modulo
256), and ratings with larger ids count as added. The result compares by the SHA-256 of its canonical JSON (reports)
or of the file's bytes (exports). See ``results.manifest`` for what a manifest holds.
"""

from __future__ import annotations

import hashlib
from typing import Any

from annotation.models import Campaign
from evalplatform.exceptions import DomainError
from results import manifest as m
from results.rater_exclusions import recorded_exclusions
from results.raters import MAX_GLOBS, MAX_NAMES, RaterSelection, check_sizes
from results.selectors import check_rater_names, fetch_all, ratings_from

MAX_SEED = 2**63 - 1
FILE_TYPES = ("jsonl", "json", "csv", "parquet")


def fail(message: str, field: str = "manifest") -> DomainError:
    return DomainError(f"manifest: {message}", field=field)


def parse_manifest(data: Any) -> dict[str, Any]:
    """Return a manifest checked whole (format, checksum, every field's type); raise DomainError naming the problem."""
    if not isinstance(data, dict):
        raise fail("expected a JSON object")
    form = data.get("manifest")
    if form != m.FORMAT:
        if isinstance(form, str) and form.startswith("evalplatform.manifest/"):
            raise fail(f"format {form!r} is not supported (this version reads {m.FORMAT})")
        raise fail(f'not an evalplatform manifest (expected "manifest": "{m.FORMAT}")')
    body = {key: value for key, value in data.items() if key != "checksum"}
    if data.get("checksum") != hashlib.sha256(m.canonical(body)).hexdigest():
        raise fail("checksum mismatch: it was edited or damaged after it was written", "checksum")
    if data.get("kind") not in m.KINDS:
        raise fail(f"kind must be one of {', '.join(m.KINDS)}", "kind")
    if not isinstance(data.get("campaign"), str):
        raise fail("campaign must be a slug", "campaign")
    check_options(data["kind"], need(data, "options", dict))
    check_ratings(need(data, "ratings", dict))
    check_hex(need(data, "result", dict).get("sha256"), "result.sha256")
    judges = need(data, "judges", list)
    if not all(isinstance(j, dict) and isinstance(j.get("name"), str) for j in judges):
        raise fail("judges must be objects with a name", "judges")
    need(data, "code", dict)
    selection_of(data)
    return data


def need(data: dict[str, Any], key: str, kind: type) -> Any:
    value = data.get(key)
    if not isinstance(value, kind):
        raise fail(f"{key} must be a JSON {'object' if kind is dict else 'array'}", key)
    return value


def check_int(value: Any, name: str, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise fail(f"{name} must be an integer from {low} to {high}", name.split(".")[0])


def check_hex(value: Any, name: str) -> None:
    if not isinstance(value, str) or len(value) != 64 or not set(value) <= m.HEX64:
        raise fail(f"{name} must be a SHA-256 in hexadecimal", name.split(".")[0])


def check_options(kind: str, options: dict[str, Any]) -> None:
    """Raise DomainError unless the options are those a manifest of this kind holds, with valid values."""
    if kind == "export":
        if options.get("file_type") not in FILE_TYPES:
            raise fail(f"options.file_type must be one of {', '.join(FILE_TYPES)}", "options")
        fmt, aggregate = options.get("format"), options.get("aggregate")
        if not isinstance(fmt, str) or not (aggregate is None or isinstance(aggregate, str)):
            raise fail("options.format and options.aggregate must be names", "options")
        from results.exports.formats import export_format

        min_confidence = options.get("min_confidence")
        number = isinstance(min_confidence, int | float) and not isinstance(min_confidence, bool)
        if not (min_confidence is None or number):
            raise fail("options.min_confidence must be a number", "options")
        try:
            export_format(fmt, aggregate, min_confidence)
        except DomainError as exc:
            raise fail(f"options: {exc.message}", "options") from exc
        if not isinstance(options.get("consistent", False), bool):
            raise fail("options.consistent must be true or false", "options")
        return
    check_int(options.get("bootstrap"), "options.bootstrap", 0, 2000)
    check_int(options.get("seed"), "options.seed", 0, MAX_SEED)
    if kind == "agreement" and not isinstance(options.get("consistent", False), bool):
        raise fail("options.consistent must be true or false", "options")
    if kind == "leaderboard":
        if options.get("combine") not in (None, "ppi"):
            raise fail("options.combine must be null or ppi", "options")
        if not isinstance(options.get("with_elo"), bool):
            raise fail("options.with_elo must be true or false", "options")
        if not isinstance(options.get("consistent", False), bool):
            raise fail("options.consistent must be true or false", "options")
        category = options.get("category")
        if category is not None and (not isinstance(category, str) or not category or len(category) > 100):
            raise fail("options.category must be a tag (1 to 100 characters)", "options")
        if options.get("cluster") not in (None, "rater", "prompt"):
            raise fail("options.cluster must be null, rater or prompt", "options")
        if not isinstance(options.get("rater_model", False), bool):
            raise fail("options.rater_model must be true or false", "options")
        for flag in ("influence", "downsample"):
            if not isinstance(options.get(flag, False), bool):
                raise fail(f"options.{flag} must be true or false", "options")


def check_ratings(ratings: dict[str, Any]) -> None:
    check_int(ratings.get("count"), "ratings.count", 0, MAX_SEED)
    check_int(ratings.get("max_id"), "ratings.max_id", 0, MAX_SEED)
    check_hex(ratings.get("sha256"), "ratings.sha256")
    if not isinstance(ratings.get("sketch"), str):
        raise fail("ratings.sketch must be a string", "ratings")
    m.decode_sketch(ratings["sketch"])


def selection_of(data: dict[str, Any]) -> RaterSelection:
    """Return the manifest's rater selection; raise DomainError when it is not one."""
    selection = need(data, "selection", dict)
    kind, names, exclude = selection.get("kind"), selection.get("names"), selection.get("exclude")
    texts = [*(names if isinstance(names, list) else [None]), *(exclude if isinstance(exclude, list) else [None])]
    if kind not in (None, "human", "judge") or not all(isinstance(t, str) and "\x00" not in t for t in texts):
        raise fail("selection must hold kind (null, human or judge), names and exclude (lists of names)", "selection")
    try:  # the bounds of a selection asked for in a query: a manifest's checksum is no signature
        check_sizes("names", tuple(names), MAX_NAMES)
        check_sizes("exclude", tuple(exclude), MAX_GLOBS)
    except DomainError as exc:
        raise fail(f"selection.{exc.message}", "selection") from exc
    return RaterSelection(kind=kind, names=tuple(names), exclude=tuple(exclude))


def reproduce(data: Any, *, campaign: Campaign | None = None) -> dict[str, Any]:
    """Recompute a manifest's result and return what changed: ratings, judges, code version, result.

    ``campaign``: the campaign the caller may read (the API's); the manifest must be about it. Without it, the
    manifest's campaign is looked up by slug.
    """
    manifest = parse_manifest(data)
    if campaign is None:
        campaign = Campaign.objects.filter(slug=manifest["campaign"]).first()
        if campaign is None:
            raise fail(f"campaign {manifest['campaign']!r} does not exist here", "campaign")
    elif campaign.slug != manifest["campaign"]:
        raise fail(f"it is about campaign {manifest['campaign']!r}, not {campaign.slug!r}", "campaign")
    selection = selection_of(manifest)
    check_rater_names(selection, campaign=campaign)
    recorded = manifest["selection"].get("excluded_raters", [])  # manifests from before exclusions have none
    selection = recorded_exclusions(selection, campaign, recorded)
    with m.snapshot():
        ratings = compare_ratings(campaign, selection, manifest["ratings"])
        result = recompute(campaign, selection, manifest["kind"], manifest["options"])
        judges = compare_judges(manifest["judges"], m.judge_configs(campaign, selection))
    then_result = manifest["result"]["sha256"]
    code = {"identical": manifest["code"] == m.code_version(), "then": manifest["code"], "now": m.code_version()}
    report = {
        "identical": ratings["identical"] and result == then_result,
        "kind": manifest["kind"],
        "campaign": campaign.slug,
        "created_at": manifest.get("created_at"),
        "selection": selection.key,
        "options": manifest["options"],
        "ratings": ratings,
        "result": {"identical": result == then_result, "then": then_result, "now": result},
        "judges": judges,
        "code": code,
    }
    report["differences"] = differences(report)
    return report


def compare_ratings(campaign: Campaign, selection: RaterSelection, then: dict[str, Any]) -> dict[str, Any]:
    """Return today's count of the selected ratings and, when they differ from the manifest's, how."""
    now = m.ratings_digest(campaign, selection)
    report: dict[str, Any] = {"identical": now["sha256"] == then["sha256"], "then": then["count"], "now": now["count"]}
    if report["identical"]:
        return report | {"added": 0, "removed": 0, "changed": 0, "inserted": 0}
    source, params = ratings_from(campaign, selection, rater=False)
    counts, hashes, _ = m.sketch(source, params, upto_id=then["max_id"])
    then_counts, then_hashes = m.decode_sketch(then["sketch"])
    removed = changed = inserted = 0
    for bucket in range(m.BUCKETS):
        delta = counts[bucket] - then_counts[bucket]
        removed += max(0, -delta)
        inserted += max(0, delta)
        changed += delta == 0 and hashes[bucket] != then_hashes[bucket]
    added = fetch_all(f"SELECT count(*) {source} AND r.id > %s", [*params, then["max_id"]])[0][0]
    return report | {"added": added, "removed": removed, "changed": changed, "inserted": inserted}


def recompute(campaign: Campaign, selection: RaterSelection, kind: str, options: dict[str, Any]) -> str:
    """Compute the result again, from scratch (no cache), and return its digest."""
    if kind == "export":
        from results.exports import iter_export

        sha = hashlib.sha256()
        for piece in iter_export(
            campaign, format=options["format"], file_type=options["file_type"], selection=selection,
            aggregate=options["aggregate"], min_confidence=options.get("min_confidence"),
            consistent=options.get("consistent", False),
        ):  # fmt: skip
            sha.update(piece)
        return sha.hexdigest()
    if kind == "agreement":
        from results.agreement import compute_agreement

        return m.result_digest(
            compute_agreement(
                campaign,
                selection,
                bootstrap=options["bootstrap"],
                seed=options["seed"],
                consistent=options.get("consistent", False),
            )
        )
    from results.leaderboards import campaign_leaderboard, compute_leaderboard

    if options["combine"]:
        board = campaign_leaderboard(campaign, selection, combine=options["combine"], force=True)
    else:
        board = compute_leaderboard(
            campaign,
            selection,
            bootstrap=options["bootstrap"],
            seed=options["seed"],
            with_elo=options["with_elo"],
            consistent=options.get("consistent", False),
            category=options.get("category"),
            cluster=options.get("cluster"),
            rater_model=options.get("rater_model", False),
            influence=options.get("influence", False),
            downsample=options.get("downsample", False),
        )
    return m.result_digest(board)


def compare_judges(then: list[dict[str, Any]], now: list[dict[str, Any]]) -> dict[str, Any]:
    """Return which judges' request settings changed, and which judges appeared or went."""
    before = {j["name"]: j.get("sha256") for j in then}
    after = {j["name"]: j.get("sha256") for j in now}
    changed = sorted(name for name in before.keys() & after.keys() if before[name] != after[name])
    report = {
        "changed": changed,
        "added": sorted(after.keys() - before.keys()),
        "removed": sorted(before.keys() - after.keys()),
    }
    return {"identical": not any(report.values()), **report}


def differences(report: dict[str, Any]) -> list[str]:
    """Return the report's differences as sentences for people."""
    lines: list[str] = []
    ratings = report["ratings"]
    if not ratings["identical"]:
        lines.append(
            f"ratings: {ratings['then']} then, {ratings['now']} now: {ratings['added']} added since, and among those "
            f"the manifest covered at least {ratings['removed']} removed, {ratings['changed']} changed, "
            f"{ratings['inserted']} inserted"
        )
    judges = report["judges"]
    for what in ("changed", "added", "removed"):
        if judges[what]:
            lines.append(f"judges {what}: {', '.join(judges[what])}")
    code = report["code"]
    if not code["identical"]:
        then, now = code["then"], code["now"]
        lines.append(
            f"code: {then.get('version')} ({then.get('git_commit') or 'no commit'}) then, "
            f"{now['version']} ({now['git_commit'] or 'no commit'}) now"
        )
    if not report["result"]["identical"]:
        lines.append(
            f"result: differs (sha256 {report['result']['then'][:12]}... then, {report['result']['now'][:12]}... now)"
        )
    return lines
