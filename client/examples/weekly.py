"""A weekly pipeline against the demo: set up a campaign for two checkpoints, let the demo's LLM judge rate it, open
it to the demo's annotators, print the leaderboard and write the judge's preference pairs for TRL. Safe to run again.

    RTOKEN=$(.venv/bin/python manage.py drf_create_token researcher | awk '{print $3}')
    EVALPLATFORM_TOKEN=$RTOKEN .venv/bin/python client/examples/weekly.py http://127.0.0.1:8000
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from evalplatform_client import Campaign, Client, ValidationError

PROMPTS = {"q1": "What is the capital of France?", "q2": "Name a prime number above 10.", "q3": "What is 7 x 8?"}
ANSWERS = {
    "ckpt-0101": {"q1": "Paris.", "q2": "12", "q3": "54"},
    "ckpt-0108": {"q1": "Paris, on the Seine.", "q2": "13 is prime.", "q3": "7 x 8 = 56."},
}


def write_outputs(path: Path) -> Path:
    """Write the checkpoints' answers as JSON Lines (in a real pipeline: the generation job's output)."""
    with path.open("w") as out:
        for model, answers in ANSWERS.items():
            for prompt_id, answer in answers.items():
                row = {"prompt_id": prompt_id, "prompt": PROMPTS[prompt_id], "model": model, "output": answer}
                out.write(json.dumps(row) + "\n")
    return path


def set_up(client: Client, slug: str, workdir: Path) -> Campaign:
    """Create the campaign (or take the one a previous run made), import the outputs and pair them."""
    try:
        campaign = client.campaigns.create(
            name=f"Weekly checkpoints ({slug})", slug=slug, label_scheme="three_way", ratings_per_comparison=1
        )
    except ValidationError as refused:
        if "slug" not in refused.errors:
            raise
        campaign = client.campaigns.get(slug)  # made by an earlier run: the steps below are safe to repeat
    print(campaign.upload_outputs(write_outputs(workdir / f"{slug}.jsonl"))["description"])
    print(campaign.generate(strategy="all_pairs")["description"])
    return campaign


def run(client: Client, slug: str, workdir: Path) -> Path:
    """Run the whole pipeline; return the path of the preference pairs."""
    campaign = set_up(client, slug, workdir)
    campaign.set_annotators(users=["annotator1", "annotator2"], group="Demo annotators")
    campaign.open()
    judged = campaign.judge("local-judge", wait=True, timeout=600)
    print(f"judge run #{judged.id} {judged.status}: {judged.progress['done']} of {judged.progress['total']} verdicts")
    board = campaign.leaderboard(raters="all")
    for row in sorted(board["ratings"], key=lambda row: row["rank"]):
        print(f"{row['rank']:>3}  {row['model']:<12} {row['rating']:8.1f}  votes {row['votes']}")
    pairs = campaign.export("dpo", workdir / f"{slug}-dpo.jsonl", raters="judges")
    print(f"{pairs.path}: {pairs.bytes} bytes, {pairs.skipped_rows} pairs left out")
    return Path(pairs.path)


if __name__ == "__main__":
    with Client(sys.argv[1], token=os.environ["EVALPLATFORM_TOKEN"]) as client:
        run(client, slug=sys.argv[2] if len(sys.argv) > 2 else "weekly", workdir=Path("."))
