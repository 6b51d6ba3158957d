"""Benchmark: the judge report over a campaign of N comparisons (default 20,000; --quick: 2,000).

Seeds with SQL (kept between runs under the slug ``bench-judge-report-N``; --fresh re-seeds): prompts answered by
5 models (one of them in the judge's model family) with answers of 1 to 300 words, all pairs, 3 human ratings per
comparison, and a judge that rated every comparison in both orders (one verdict and rating each) plus two stability
repeats in which 10% of its verdicts flip. Times ``build_report`` with --bootstrap rounds and, as the baseline in
the same run, the campaign's agreement report (``compute_agreement``) with as many rounds, which reads the same
ratings; prints both, their ratio, the peak RSS, and the flip rate found (about 0.127: 0.1, 0.1 and 0.18 for the
three pairs of runs).

    DATABASE_URL=postgres://... python bench/bench_judge_report.py [--quick] [--comparisons N] [--fresh]
Target: the report of 20,000 comparisons (60,000 human ratings, 120,000 verdicts) within 30 s.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalplatform.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from annotation.models import Campaign, Output, Prompt, Rater  # noqa: E402
from judging.models import JudgeConfig, JudgeRun, ModelFamily  # noqa: E402
from results.agreement import compute_agreement  # noqa: E402
from results.judge_report import build_report  # noqa: E402
from results.raters import parse_raters  # noqa: E402

MODELS = ["fam-x-0", "model-1", "model-2", "model-3", "model-4"]  # 10 pairs a prompt
TARGET_SECONDS = 30.0


def seed(n_comparisons: int, *, fresh: bool = False) -> tuple[Campaign, JudgeConfig]:
    """Return the benchmark campaign and judge, seeding them with SQL when absent (or when fresh)."""
    slug = f"bench-judge-report-{n_comparisons}"
    name = f"bench-judge-{n_comparisons}"
    campaign = Campaign.objects.filter(slug=slug).first()
    judge = JudgeConfig.objects.filter(name=name).first()
    if campaign is not None and judge is not None and not fresh:
        return campaign, judge
    if campaign is not None:
        with connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM judging_judgeverdict WHERE comparison_id IN "
                "(SELECT id FROM annotation_comparison WHERE campaign_id = %s)",
                [campaign.pk],
            )
        JudgeRun.objects.filter(campaign=campaign).delete()
        campaign.delete()
    started = time.perf_counter()
    owner, _ = User.objects.get_or_create(username="bench-owner")
    ModelFamily.objects.get_or_create(name="bench-fam-x", defaults={"patterns": "fam-x-*"})
    with transaction.atomic():
        campaign = Campaign.objects.create(name=f"Judge report {n_comparisons}", slug=slug, owner=owner)
        if judge is None:
            rater = Rater.objects.create(name=name, kind=Rater.Kind.JUDGE)
            judge = JudgeConfig.objects.create(
                name=name, rater=rater, base_url="http://127.0.0.1:8001/v1", model="fam-x-j"
            )
        humans = [
            Rater.objects.get_or_create(name=f"bench-human-{i}", defaults={"kind": "human"})[0].pk for i in range(3)
        ]
        runs = [
            JudgeRun.objects.create(
                campaign=campaign, judge=judge, status="completed", config_version="bench", repeat=k
            )
            for k in range(3)
        ]
        seed_sql(campaign.pk, -(-n_comparisons // 10), humans, judge, [run.pk for run in runs])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE annotation_output, annotation_comparison, annotation_rating, judging_judgeverdict")
    print(f"seeded {n_comparisons} comparisons in {time.perf_counter() - started:.1f} s", flush=True)
    return campaign, judge


def seed_sql(campaign_id: int, prompts: int, humans: list[int], judge: JudgeConfig, runs: list[int]) -> None:
    """Insert prompts, outputs, comparisons, human and judge ratings, and the judge's verdicts and repeats."""
    rng = random.Random(campaign_id)
    created = Prompt.objects.bulk_create(
        [Prompt(campaign_id=campaign_id, external_id=f"q{i}", text=f"Question {i}?") for i in range(prompts)],
        batch_size=5000,
    )
    Output.objects.bulk_create(
        [
            Output(prompt=prompt, model_name=model, text="word " * rng.randint(1, 300))
            for prompt in created
            for model in MODELS
        ],
        batch_size=5000,
    )
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO annotation_comparison (campaign_id, prompt_id, output_a_id, output_b_id, random_key,
                                                  filled, created_at)
               SELECT %s, a.prompt_id, a.id, b.id, random(), 0, now()
               FROM annotation_output a JOIN annotation_output b ON b.prompt_id = a.prompt_id AND a.id < b.id
               JOIN annotation_prompt p ON p.id = a.prompt_id WHERE p.campaign_id = %s""",
            [campaign_id, campaign_id],
        )
        cursor.execute(
            """INSERT INTO annotation_rating (comparison_id, rater_id, rater_kind, source, verdict, winner_id,
                                              left_output_id, rationale, metadata, created_at)
               SELECT c.id, h, 'human', 'import', 'win',
                      CASE WHEN random() < 0.5 THEN c.output_a_id ELSE c.output_b_id END, c.output_a_id, '', '{}', now()
               FROM annotation_comparison c, unnest(%s::bigint[]) h WHERE c.campaign_id = %s""",
            [humans, campaign_id],
        )
        cursor.execute(
            """INSERT INTO annotation_rating (comparison_id, rater_id, rater_kind, source, verdict, winner_id,
                                              left_output_id, rationale, metadata, created_at)
               SELECT c.id, %s, 'judge', 'judge', 'win',
                      CASE WHEN random() < 0.6 THEN c.output_a_id ELSE c.output_b_id END,
                      CASE WHEN o = 'ab' THEN c.output_a_id ELSE c.output_b_id END, '', '{}', now()
               FROM annotation_comparison c, unnest(ARRAY['ab', 'ba']) o WHERE c.campaign_id = %s""",
            [judge.rater_id, campaign_id],
        )
        cursor.execute(
            """INSERT INTO judging_judgeverdict (judge_id, comparison_id, "order", run_id, repeat, state, reason,
                                                 attempts, claimed_by, request_hash, raw_response, parsed, rating_id,
                                                 tokens_in, tokens_out, cost, cached, created_at)
               SELECT %(judge)s, r.comparison_id, v.o, (%(runs)s::bigint[])[v.k + 1], v.k, 'done', '', 1, '', '', '',
                      jsonb_build_object('outcome', CASE WHEN (r.winner_id = r.left_output_id) <> v.flip
                                                         THEN 'A' ELSE 'B' END),
                      CASE WHEN v.k = 0 THEN r.id END, 0, 0, 0, false, now()
               FROM annotation_rating r JOIN annotation_comparison c ON c.id = r.comparison_id,
                    LATERAL (SELECT CASE WHEN r.left_output_id = c.output_a_id THEN 'ab' ELSE 'ba' END AS o,
                                    k, k > 0 AND random() < 0.1 AS flip
                             FROM generate_series(0, 2) k) v
               WHERE r.rater_id = %(rater)s AND c.campaign_id = %(campaign)s""",
            {"judge": judge.pk, "runs": runs, "rater": judge.rater_id, "campaign": campaign_id},
        )


def timed(label: str, work: object) -> tuple[float, object]:
    started = time.perf_counter()
    result = work() if callable(work) else None
    seconds = time.perf_counter() - started
    print(f"{label}: {seconds:.2f} s", flush=True)
    return seconds, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,000 comparisons")
    parser.add_argument("--comparisons", type=int)
    parser.add_argument("--bootstrap", type=int, default=500)
    parser.add_argument("--fresh", action="store_true", help="seed again")
    args = parser.parse_args()
    n = args.comparisons or (2_000 if args.quick else 20_000)
    campaign, judge = seed(n, fresh=args.fresh)
    ours, report = timed("judge report", lambda: build_report(judge, [campaign], bootstrap=args.bootstrap))
    baseline, _ = timed(
        "baseline, agreement report", lambda: compute_agreement(campaign, parse_raters("all"), bootstrap=args.bootstrap)
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert isinstance(report, dict)
    (version,) = report["versions"]
    flip = version["stability"]["flip_rate"]["value"]
    print(
        f"{n} comparisons, {version['n_ratings']} judge ratings, {report['n_human_ratings']} human ratings: judge "
        f"report {ours:.2f} s ({ours / baseline:.2f}x the agreement report's {baseline:.2f} s), peak RSS {peak:.0f} "
        f"MB, flip rate {flip:.3f}; target {TARGET_SECONDS:.0f} s at 20,000: "
        f"{'met' if ours <= TARGET_SECONDS or n < 20_000 else 'NOT met'}",
        flush=True,
    )


if __name__ == "__main__":
    main()
