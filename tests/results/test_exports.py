from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from annotation.models import Output, Prompt, Rater, Rating
from results.exports import FORMATS, iter_export, reading
from results.exports.encoders import ParquetEncoder
from results.exports.timestamps import iso_utc
from results.raters import RaterSelection
from results.reproduce import reproduce
from tests import factories
from tests.results.conftest import Rated, rate


def export(rated: Rated, tmp_path: Path, fmt: str, name: str, *args: str) -> Path:
    out = tmp_path / name
    call_command("export", rated.campaign.slug, "--format", fmt, "--out", str(out), *args)
    return out


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_ratings_export_has_one_row_per_rating_with_pseudonyms_not_user_names(rated: Rated, tmp_path: Path) -> None:
    rows = read_jsonl(export(rated, tmp_path, "ratings", "r.jsonl"))

    assert len(rows) == 4 * len(rated.comparisons)
    raters = {row["rater"] for row in rows}
    assert rated.alice.pseudonym in raters
    text = json.dumps(rows)
    assert "alice" not in text
    assert "alice@example.org" not in text
    first = rows[0]
    assert first["model_a"] == "model-x"
    assert first["choice"] == "a"
    assert first["winner_model"] == "model-x"
    assert first["shown_left"] == "b"
    assert first["choice_side"] == "right"
    assert first["time_ms"] == 1000
    assert first["prompt"].startswith("Question 0")


def test_arena_export_gives_battles_with_the_shown_left_model_as_model_a(rated: Rated, tmp_path: Path) -> None:
    rows = read_jsonl(export(rated, tmp_path, "arena", "a.jsonl", "--raters", "humans"))

    assert len(rows) == 2 * len(rated.comparisons)
    assert set(rows[0]) == {"model_a", "model_b", "winner", "judge", "question_id", "tstamp", "anony", "rater_kind"}
    assert {row["rater_kind"] for row in rows} == {"human"}
    assert {row["anony"] for row in rows} == {True}  # raters here never see model names
    assert rows[0] == {**rows[0], "model_a": "model-y", "model_b": "model-x", "winner": "model_b"}
    assert rows[1]["judge"] == "expert_1"
    assert rows[0]["judge"] == rated.alice.pseudonym
    assert rows[1]["winner"] == "tie"


def test_dpo_majority_keeps_comparisons_a_strict_majority_of_raters_prefers(rated: Rated, tmp_path: Path) -> None:
    rows = read_jsonl(export(rated, tmp_path, "dpo", "d.jsonl"))

    # alice, the expert (ties on every 4th) and the judge, whose two orders are one vote (a tie when they
    # contradict each other, on every 5th): 3 votes each.
    n = len(rated.comparisons)
    assert len(rows) == n - len([i for i in range(n) if i % 20 == 0])  # 1 of 3 for the better model, 2 ties
    assert all(r["chosen_model"] < r["rejected_model"] for r in rows)
    assert {r["policy"] for r in rows} == {"majority"}
    assert {r["n_ratings"] for r in rows} == {3}
    by_id = {r["comparison_id"]: r for r in rows}
    reversed_once = by_id[rated.comparisons[5].pk]
    assert (reversed_once["votes_chosen"], reversed_once["votes_rejected"], reversed_once["votes_tie"]) == (2, 0, 1)


def test_dpo_counts_one_judges_two_orders_as_one_vote(rated: Rated, tmp_path: Path) -> None:
    majority = read_jsonl(export(rated, tmp_path, "dpo", "j.jsonl", "--raters", "gpt-judge"))
    unanimous = read_jsonl(
        export(rated, tmp_path, "dpo", "u.jsonl", "--raters", "gpt-judge", "--aggregate", "unanimous")
    )

    n = len(rated.comparisons)
    consistent = [i for i in range(n) if i % 5]
    assert [r["comparison_id"] for r in majority] == [rated.comparisons[i].pk for i in consistent]
    assert {(r["n_ratings"], r["votes_chosen"], r["votes_rejected"]) for r in majority} == {(1, 1, 0)}
    assert unanimous == [{**r, "policy": "unanimous"} for r in majority]


def test_export_states_its_rater_selection_and_that_it_mixes_humans_and_judges(
    rated: Rated, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export(rated, tmp_path, "dpo", "d.jsonl")
    everyone = capsys.readouterr().err
    export(rated, tmp_path, "dpo", "h.jsonl", "--raters", "humans")
    humans = capsys.readouterr().err

    assert "raters: all (the default), 2 humans and 1 judge: humans and judges mixed" in everyone
    assert "raters: humans, 2 humans and 0 judges\n" in humans


def test_dpo_unanimous_and_each_policies(rated: Rated, tmp_path: Path) -> None:
    unanimous = read_jsonl(export(rated, tmp_path, "dpo", "u.jsonl", "--aggregate", "unanimous"))
    each = read_jsonl(export(rated, tmp_path, "dpo", "e.jsonl", "--aggregate", "each", "--raters", "alice"))

    n = len(rated.comparisons)
    assert len(unanimous) == len([i for i in range(n) if i % 4 and i % 5])
    assert len(each) == n
    assert {r["rater"] for r in each} == {rated.alice.pseudonym}


def test_csv_and_parquet_exports_carry_the_same_rows(rated: Rated, tmp_path: Path) -> None:
    jsonl = read_jsonl(export(rated, tmp_path, "alpaca_eval", "x.jsonl"))
    with export(rated, tmp_path, "alpaca_eval", "x.csv").open() as handle:
        csv_rows = list(csv.DictReader(handle))
    table = pq.read_table(export(rated, tmp_path, "alpaca_eval", "x.parquet")).to_pylist()

    assert len(jsonl) == len(csv_rows) == len(table) == 4 * len(rated.comparisons)
    assert table == jsonl
    assert csv_rows[0]["instruction"] == jsonl[0]["instruction"]
    assert {r["preference"] for r in jsonl} == {1.0, 2.0, 1.5}


def test_export_rejects_an_unknown_file_type_and_an_unknown_rater(rated: Rated, tmp_path: Path) -> None:
    with pytest.raises(CommandError, match=r"unknown file type \.txt"):
        export(rated, tmp_path, "ratings", "r.txt")
    with pytest.raises(CommandError, match="no rater named nobody"):
        export(rated, tmp_path, "ratings", "r.jsonl", "--raters", "nobody")
    with pytest.raises(CommandError, match="ratings exports take each"):
        export(rated, tmp_path, "ratings", "r.jsonl", "--aggregate", "majority")
    assert not (tmp_path / "r.txt").exists()


def test_exports_keep_quotes_backslashes_newlines_and_unicode_intact(rated: Rated, tmp_path: Path) -> None:
    tricky = 'He said "no"\\n, then\ttabbed\nnewline \\ backslash, café 😀, comma,'
    rated.comparisons[0].prompt.__class__.objects.filter(pk=rated.comparisons[0].prompt_id).update(text=tricky)

    jsonl = read_jsonl(export(rated, tmp_path, "ratings", "t.jsonl"))
    with export(rated, tmp_path, "ratings", "t.csv").open(newline="") as handle:
        csv_rows = list(csv.DictReader(handle))
    table = pq.read_table(export(rated, tmp_path, "ratings", "t.parquet")).to_pylist()

    assert jsonl[0]["prompt"] == csv_rows[0]["prompt"] == table[0]["prompt"] == tricky
    assert jsonl[0]["rationale"] == table[0]["rationale"] == ""
    assert jsonl[0]["strength"] is None
    assert table[0]["strength"] is None


ISO = 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'
TRICKY = 'He said "no", \\n is not\ta newline\nbut this is\r\nand \\. \x01\x1f\x7f, café 😀 ,'
TRICKY_NAME = 'expert, "the" \\ one'


@pytest.fixture
def tricky(rated: Rated) -> Rated:
    """Put quotes, backslashes, newlines, tabs, control characters and unicode in every text an export shows."""
    first = rated.comparisons[0]
    Prompt.objects.filter(pk=first.prompt_id).update(text=TRICKY, external_id='q,"0"\n')
    Output.objects.filter(pk=first.output_a_id).update(text="\\.")
    Output.objects.filter(pk=first.output_b_id).update(text=TRICKY[::-1], model_name='model "x", v2')
    Rater.objects.filter(pk=rated.expert.pk).update(name=TRICKY_NAME)
    Rating.objects.filter(comparison=first).update(rationale='tab\tquote"backslash\\\nend')
    return rated


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def as_csv(value: Any) -> str:
    """Return how a JSON value reads back from CSV (NULL is an empty field)."""
    return "" if value is None else value if isinstance(value, str) else json.dumps(value)


@pytest.mark.parametrize(
    ("fmt", "args"),
    [("ratings", ()), ("arena", ()), ("dpo", ("--aggregate", "each")), ("dpo", ()), ("alpaca_eval", ())],
)
def test_unusual_characters_survive_every_file_type_exactly(
    tricky: Rated, tmp_path: Path, fmt: str, args: tuple[str, ...]
) -> None:
    jsonl = read_jsonl(export(tricky, tmp_path, fmt, "t.jsonl", *args))
    csv_rows = read_csv(export(tricky, tmp_path, fmt, "t.csv", *args))
    table = pq.read_table(export(tricky, tmp_path, fmt, "t.parquet", *args)).to_pylist()
    array = json.loads(export(tricky, tmp_path, fmt, "t.json", *args).read_text())

    assert table == jsonl == array
    assert csv_rows == [{key: as_csv(value) for key, value in row.items()} for row in jsonl]
    shown = {value for row in jsonl for value in row.values()}
    assert 'q,"0"\n' in shown
    assert fmt == "arena" or {TRICKY, "\\.", TRICKY[::-1]} <= shown
    assert fmt not in ("arena", "alpaca_eval") or TRICKY_NAME in shown


def test_ratings_export_shows_the_tricky_values_in_their_columns(tricky: Rated, tmp_path: Path) -> None:
    rows = read_csv(export(tricky, tmp_path, "ratings", "t.csv"))

    first = rows[0]
    assert (first["prompt"], first["question_id"], first["output_a"]) == (TRICKY, 'q,"0"\n', "\\.")
    assert (first["output_b"], first["model_b"]) == (TRICKY[::-1], 'model "x", v2')
    assert first["rationale"] == 'tab\tquote"backslash\\\nend'


@pytest.mark.parametrize("file_type", ["jsonl", "json", "csv", "parquet"])
@pytest.mark.parametrize(
    ("fmt", "aggregate"),
    [("ratings", None), ("arena", None), ("dpo", "each"), ("dpo", "majority"), ("alpaca_eval", None)],
)
def test_texts_joined_in_sql_give_the_same_bytes_as_texts_looked_up(
    tricky: Rated, monkeypatch: pytest.MonkeyPatch, file_type: str, fmt: str, aggregate: str | None
) -> None:
    def run() -> bytes:
        pieces = iter_export(
            tricky.campaign, format=fmt, file_type=file_type, selection=RaterSelection(), aggregate=aggregate
        )
        return b"".join(pieces)

    looked_up = run()
    monkeypatch.setattr(reading, "LOOKUP_BUDGET_BYTES", -1)  # every campaign is over it: join the texts in SQL

    assert run() == looked_up


def test_json_lines_and_csv_are_what_postgresql_writes_for_the_same_rows(tricky: Rated) -> None:
    fmt = FORMATS["ratings"]
    query = fmt.query(tricky.campaign, RaterSelection(), "each", 0.5)
    columns = ", ".join(fmt.names)
    values = [
        f"to_char({name} AT TIME ZONE 'UTC', '{ISO}') AS {name}" if name == "created_at" else name for name in fmt.names
    ]
    sql = f"SELECT {', '.join(values)} FROM ({reading.joined_plan(fmt, query, ParquetEncoder(fmt)).sql}) s({columns})"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT row_to_json(t)::text FROM ({sql}) AS t", query.params)
        postgres_json = "".join(line + "\n" for (line,) in cursor.fetchall()).encode()
        with cursor.cursor.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)", query.params) as copy:
            postgres_csv = (columns.replace(" ", "") + "\n").encode() + b"".join(bytes(data) for data in copy)

    def ours(file_type: str) -> bytes:
        return b"".join(iter_export(tricky.campaign, format="ratings", file_type=file_type, selection=RaterSelection()))

    assert ours("jsonl") == postgres_json
    assert ours("csv") == postgres_csv


def test_timestamps_are_written_as_postgresql_to_char_writes_them(db: None) -> None:
    moments = """SELECT t FROM unnest(ARRAY['2024-02-29 23:59:59.999999+00', '2000-01-01 00:00:00+00',
                 '1999-12-31 23:59:59.5+00', '0001-01-01 00:00:00+00', '9999-12-31 23:59:59.999999+00',
                 '1969-07-20 20:17:40.000001-05', NULL, '2100-03-01 12:00:00.25+00']::timestamptz[]) AS m(t)
                 UNION ALL SELECT now() - g * interval '1 day 1 hour 1 minute 1.000001 second'
                 FROM generate_series(1, 5000) g"""
    schema = pa.schema([("t", reading.TIMESTAMP)])
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT to_char(t AT TIME ZONE 'UTC', '{ISO}') FROM ({moments}) m")
        expected = [text for (text,) in cursor.fetchall()]
    with transaction.atomic(), reading.export_transaction() as raw:
        batches = list(reading.copy_batches(raw, moments, [], schema))

    assert [text for batch in batches for text in iso_utc(batch.column(0)).to_pylist()] == expected


def test_binary_rows_of_every_type_nulls_and_empty_strings_are_parsed_column_by_column(
    db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reading, "BLOCK_ROWS", 3)  # several blocks, one of them partly NULL
    rows = r"""SELECT g::int2, (g * 100000)::int4, g::int8 * 10000000000, g / 4.0::float4, g / 3.0::float8,
                     repeat('é"\,' || g, g % 3), CASE WHEN g % 2 = 0 THEN g END, CASE WHEN g % 2 = 0 THEN 'x' END,
                     NULL::text, NULL::int8
              FROM generate_series(-1, 7) g ORDER BY g"""
    types = [pa.int64()] * 3 + [pa.float64()] * 2 + [pa.string(), pa.int64(), pa.string(), pa.string(), pa.int64()]
    schema = pa.schema([(f"c{i}", t) for i, t in enumerate(types)])
    with connection.cursor() as cursor:
        cursor.execute(rows)
        expected = [list(row) for row in cursor.fetchall()]
    with transaction.atomic(), reading.export_transaction() as raw:
        batches = list(reading.copy_batches(raw, rows, [], schema))

    parsed = [list(row.values()) for batch in batches for row in batch.to_pylist()]
    assert [len(batch) for batch in batches] == [3, 3, 3]
    assert parsed == [[float(v) if isinstance(v, Decimal) else v for v in row] for row in expected]
    assert parsed[0][5] == ""  # an empty string is not NULL
    assert parsed[0][7] is None


def test_binary_rows_of_the_wrong_type_are_refused(db: None) -> None:
    schema = pa.schema([("x", pa.int64())])
    refused = pytest.raises(psycopg.DataError, match="not a int64")
    with refused, transaction.atomic(), reading.export_transaction() as raw:
        list(reading.copy_batches(raw, "SELECT 'abc'::text", [], schema))


def test_an_error_while_reading_ahead_is_raised_by_the_export(rated: Rated, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any) -> None:
        raise psycopg.DataError("broken rows")

    monkeypatch.setattr(reading, "parse_rows", broken)

    with pytest.raises(psycopg.DataError, match="broken rows"):
        list(iter_export(rated.campaign, format="ratings", file_type="jsonl", selection=RaterSelection()))
    assert Rating.objects.filter(comparison__campaign=rated.campaign).count() == 4 * len(rated.comparisons)


def test_an_empty_export_is_a_valid_empty_file(campaign: Any, tmp_path: Path) -> None:
    def write(name: str) -> Path:
        call_command("export", campaign.slug, "--format", "ratings", "--out", str(tmp_path / name))
        return tmp_path / name

    assert write("e.jsonl").read_bytes() == b""
    assert write("e.csv").read_text().splitlines() == [",".join(FORMATS["ratings"].names)]
    table = pq.read_table(write("e.parquet"))
    assert table.num_rows == 0
    assert table.column_names == FORMATS["ratings"].names


def test_an_export_streams_in_pieces_of_one_block_of_rows(rated: Rated, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reading, "BLOCK_BYTES", 512)  # a narrow row takes about 100 bytes of CSV
    pieces = list(iter_export(rated.campaign, format="ratings", file_type="jsonl", selection=RaterSelection()))

    assert b"".join(pieces).count(b"\n") == 4 * len(rated.comparisons)
    assert len(pieces) > 8
    assert max(bytes(piece).count(b"\n") for piece in pieces) <= 8


def test_a_download_stopped_early_leaves_the_connection_usable(rated: Rated, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reading, "BLOCK_BYTES", 256)
    pieces = iter_export(rated.campaign, format="ratings", file_type="csv", selection=RaterSelection())
    next(pieces), next(pieces)  # the header, then the first batch

    pieces.close()  # as Django does when the client goes away

    assert Rating.objects.filter(comparison__campaign=rated.campaign).count() == 4 * len(rated.comparisons)


@pytest.mark.parametrize("ids", [[3, 4, 6], [5, 10**12]])
def test_lookup_finds_dense_and_sparse_ids(ids: list[int]) -> None:
    lookup = reading.Lookup(np.array(ids, np.int64), {})

    assert lookup.positions(pa.array([ids[-1], None, ids[0]], pa.int64())).to_pylist() == [len(ids) - 1, None, 0]
    with pytest.raises(LookupError):
        lookup.positions(pa.array([ids[0] + 1 if ids[0] + 1 not in ids else 2], pa.int64()))


def test_an_error_in_the_middle_of_the_rows_is_raised_as_postgresql_reports_it(db: None) -> None:
    schema = pa.schema([("x", pa.int64())])
    rows = "SELECT 1 / (4000 - g) FROM generate_series(1, 5000) g"  # fails after a few thousand rows

    with pytest.raises(psycopg.errors.DivisionByZero), transaction.atomic(), reading.export_transaction() as raw:
        list(reading.copy_batches(raw, rows, [], schema))

    assert not Rater.objects.filter(name="nobody").exists()  # the connection still works


def test_every_export_and_the_agreement_report_show_each_rater_by_the_same_public_name(
    rated: Rated, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shown = {
        fmt: {row[column] for row in read_jsonl(export(rated, tmp_path, fmt, f"{fmt}.jsonl", *args))}
        for fmt, column, args in [
            ("ratings", "rater", ()),
            ("arena", "judge", ()),
            ("alpaca_eval", "annotator", ()),
            ("dpo", "rater", ("--aggregate", "each")),
        ]
    }
    call_command("agreement", rated.campaign.slug, "--json", "--bootstrap", "0")
    report = json.loads(capsys.readouterr().out)

    # An account holder by pseudonym; an imported rater and a judge (no account here) by name.
    public = {rated.alice.pseudonym, "expert_1", "gpt-judge"}
    assert shown == dict.fromkeys(shown, public)
    assert {row["rater"] for row in report["annotators"]} == public
    assert rated.expert.pseudonym not in json.dumps(report) + str(shown)


@pytest.fixture
def with_liar(rated: Rated) -> Rated:
    """Add an adversarial rater who always prefers the worse model; on comparison 1 it is the only rater."""
    liar = factories.RaterFactory.create(name="liar")
    for comparison in rated.comparisons:
        worse = max(o.model_name or "" for o in (comparison.output_a, comparison.output_b))
        rate(comparison, liar, worse)
    Rating.objects.filter(comparison=rated.comparisons[1]).exclude(rater=liar).delete()
    return rated


def test_dpo_posterior_overrules_an_adversarial_raters_majority_of_one(with_liar: Rated, tmp_path: Path) -> None:
    majority = {r["comparison_id"]: r for r in read_jsonl(export(with_liar, tmp_path, "dpo", "m.jsonl"))}
    rows = read_jsonl(export(with_liar, tmp_path, "dpo", "p.jsonl", "--aggregate", "posterior"))
    posterior = {r["comparison_id"]: r for r in rows}

    alone = with_liar.comparisons[1].pk
    assert majority[alone]["chosen_model"] > majority[alone]["rejected_model"]  # the liar's vote: the worse model
    assert posterior[alone]["chosen_model"] < posterior[alone]["rejected_model"]  # the posterior inverts it
    assert (posterior[alone]["n_ratings"], posterior[alone]["votes_chosen"], posterior[alone]["votes_rejected"]) == (
        1,
        0,
        1,
    )
    assert {r["policy"] for r in rows} == {"posterior"}
    assert all(0.5 <= r["confidence"] <= 1 for r in rows)
    assert all(r["chosen_model"] < r["rejected_model"] for r in rows)
    assert {r["confidence"] for r in majority.values()} == {None}


def test_dpo_posterior_leaves_out_and_counts_pairs_below_the_confidence_threshold(
    with_liar: Rated, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = read_jsonl(export(with_liar, tmp_path, "dpo", "p.jsonl", "--aggregate", "posterior"))
    alone = with_liar.comparisons[1].pk
    lone_confidence = next(r["confidence"] for r in rows if r["comparison_id"] == alone)
    threshold = min(r["confidence"] for r in rows if r["comparison_id"] != alone)
    assert lone_confidence < threshold  # one vote convinces less than several
    capsys.readouterr()

    out = export(with_liar, tmp_path, "dpo", "t.jsonl", "--aggregate", "posterior", "--min-confidence", str(threshold))

    kept = read_jsonl(out)
    assert [r["comparison_id"] for r in kept] == [r["comparison_id"] for r in rows if r["comparison_id"] != alone]
    assert "warning: skipped 1 preference pairs whose posterior confidence is below" in capsys.readouterr().err
    manifest = json.loads(Path(f"{out}.manifest.json").read_text())
    assert manifest["options"]["min_confidence"] == threshold
    assert reproduce(manifest)["result"]["identical"]


def test_min_confidence_needs_the_posterior_aggregation_and_a_probability(rated: Rated, tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="only the posterior aggregation"):
        export(rated, tmp_path, "dpo", "d.jsonl", "--min-confidence", "0.9")
    with pytest.raises(CommandError, match="not between 0 and 1"):
        export(rated, tmp_path, "dpo", "d.jsonl", "--aggregate", "posterior", "--min-confidence", "1.5")


# --- the consistency gate: the judge picks the output shown on the left in both orders of comparisons 0, 5, 10 ---


def test_consistency_gate_marks_both_ratings_of_an_inconsistent_pair_in_the_ratings_export(
    rated: Rated, tmp_path: Path
) -> None:
    plain = read_jsonl(export(rated, tmp_path, "ratings", "p.jsonl"))
    gated = read_jsonl(export(rated, tmp_path, "ratings", "g.jsonl", "--consistent"))

    assert "inconsistent" not in plain[0]
    assert [{k: v for k, v in row.items() if k != "inconsistent"} for row in gated] == plain
    marked = [row for row in gated if row["inconsistent"]]
    flipped = {rated.comparisons[i].pk for i in (0, 5, 10)}
    assert len(marked) == 6
    assert {row["comparison_id"] for row in marked} == flipped
    assert {row["rater"] for row in marked} == {"gpt-judge"}


def test_consistency_gate_makes_an_inconsistent_pair_one_tie_in_arena_and_alpaca_eval_exports(
    rated: Rated, tmp_path: Path
) -> None:
    plain = read_jsonl(export(rated, tmp_path, "arena", "p.jsonl", "--raters", "judges"))
    gated = read_jsonl(export(rated, tmp_path, "arena", "g.jsonl", "--raters", "judges", "--consistent"))
    alpaca = read_jsonl(export(rated, tmp_path, "alpaca_eval", "a.jsonl", "--raters", "judges", "--consistent"))

    assert len(plain) == 24
    assert len(gated) == len(alpaca) == 21
    ties = [row for row in gated if row["winner"] == "tie"]
    flipped = [rated.comparisons[i] for i in (0, 5, 10)]
    # The tie keeps the rating that showed output_a on the left, as the leaderboard's tally does.
    assert sorted((t["model_a"], t["model_b"]) for t in ties) == sorted(
        (c.output_a.model_name, c.output_b.model_name) for c in flipped
    )
    assert {row["comparison_id"] for row in alpaca if row["preference"] == 1.5} == {c.pk for c in flipped}
    assert all(row["winner"] != "tie" for row in plain)


def test_consistency_gate_drops_an_inconsistent_pair_from_dpo_each_and_leaves_the_rater_votes_alone(
    rated: Rated, tmp_path: Path
) -> None:
    each = read_jsonl(export(rated, tmp_path, "dpo", "e.jsonl", "--aggregate", "each"))
    gated_each = read_jsonl(export(rated, tmp_path, "dpo", "ge.jsonl", "--aggregate", "each", "--consistent"))
    majority = export(rated, tmp_path, "dpo", "m.jsonl").read_bytes()
    gated_majority = export(rated, tmp_path, "dpo", "gm.jsonl", "--consistent").read_bytes()

    flipped = {rated.comparisons[i].pk for i in (0, 5, 10)}
    dropped = [r for r in each if r["rater"] == "gpt-judge" and r["comparison_id"] in flipped]
    assert len(dropped) == 6
    assert gated_each == [r for r in each if r not in dropped]
    # majority, unanimous and posterior already count a contradicting rater's vote as a tie.
    assert gated_majority == majority


def test_a_consistency_gated_export_records_the_gate_in_its_manifest_and_reproduces(
    rated: Rated, tmp_path: Path
) -> None:
    out = export(rated, tmp_path, "arena", "g.jsonl", "--consistent")
    manifest = json.loads(Path(f"{out}.manifest.json").read_text())
    plain = json.loads(Path(f"{export(rated, tmp_path, 'arena', 'p.jsonl')}.manifest.json").read_text())

    assert manifest["options"]["consistent"] is True
    assert "consistent" not in plain["options"]
    assert reproduce(manifest)["identical"]
    assert manifest["result"]["sha256"] != plain["result"]["sha256"]


def test_the_gated_arena_export_counts_each_comparison_as_fastchats_mt_bench_results_do(
    rated: Rated, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """FastChat's show_result (pairwise) counts a judge's two orders of a comparison once: their common winner, or a
    tie when they differ (its "inconsistent"); the gated export must name the same comparisons ties."""
    import argparse

    from fastchat.llm_judge.show_result import display_result_pairwise

    ratings = Rating.objects.filter(rater=rated.judge).select_related("comparison", "winner", "left_output")
    games: dict[int, dict[str, Any]] = {}
    for r in ratings:
        c = r.comparison
        game = games.setdefault(c.pk, {"question_id": c.prompt.external_id, "model_1": c.output_a.model_name,
                                       "model_2": c.output_b.model_name, "judge": ["gpt-judge", "pair"]})  # fmt: skip
        winner = "tie" if r.winner is None else ("model_1" if r.winner_id == c.output_a_id else "model_2")
        game["g1_winner" if r.left_output_id == c.output_a_id else "g2_winner"] = winner
    judgments = tmp_path / "judgments.jsonl"
    judgments.write_text("".join(json.dumps(g) + "\n" for g in games.values()))
    capsys.readouterr()
    display_result_pairwise(argparse.Namespace(input_file=str(judgments), model_list=None, baseline_model=None))
    lines = capsys.readouterr().out.splitlines()
    theirs = {
        p[0]: tuple(int(float(x)) for x in p[1:4]) for p in (line.split() for line in lines) if p[0][:6] == "model-"
    }

    rows = read_jsonl(export(rated, tmp_path, "arena", "g.jsonl", "--raters", "judges", "--consistent"))
    by_game: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        by_game.setdefault((row["question_id"], *sorted((row["model_a"], row["model_b"]))), []).append(row)
    ours: dict[str, list[int]] = {}
    for records in by_game.values():
        winners = {r[r["winner"]] if r["winner"] in ("model_a", "model_b") else "tie" for r in records}
        assert len(winners) == 1  # a gated comparison is one tie record, or two that agree
        (winner,) = winners
        for model in (records[0]["model_a"], records[0]["model_b"]):
            counts = ours.setdefault(model, [0, 0, 0])
            counts[0 if winner == model else 2 if winner == "tie" else 1] += 1
    assert {model: tuple(counts) for model, counts in ours.items()} == theirs
    assert sum(t for _, _, t in theirs.values()) >= 2 * 3  # the three flipped comparisons are ties in both
