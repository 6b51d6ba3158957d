"""Remember who was last given each comparison, so a claim skips the rater's own comparisons as one index range.

The claim walks each level of `filled` in `(last_claimed_by, random_key)` order and leaves out the range
`last_claimed_by = rater`: a rater who has rated many comparisons nobody else has taken since no longer walks
past each of them (annotation.engine). Existing comparisons get the rater of their latest assignment, and a
constraint keeps it set on every comparison holding a slot (the claim looks for those only by it).
"""

from django.db import migrations, models

BACKFILL = """
UPDATE annotation_comparison c SET last_claimed_by = latest.rater_id
FROM (
    SELECT DISTINCT ON (comparison_id) comparison_id, rater_id FROM annotation_assignment
    ORDER BY comparison_id, id DESC
) latest
WHERE c.id = latest.comparison_id
"""


class Migration(migrations.Migration):
    dependencies = [("annotation", "0006_stored_html")]

    operations = [
        migrations.RemoveIndex(model_name="comparison", name="comparison_claim_idx"),
        migrations.AddField(
            model_name="comparison",
            name="last_claimed_by",
            field=models.BigIntegerField(
                blank=True,
                editable=False,
                help_text="The id of the rater who was last given this comparison (they can never get it again); "
                "kept by the assignment engine, which skips a rater's own comparisons by this key.",
                null=True,
            ),
        ),
        migrations.RunSQL(BACKFILL, migrations.RunSQL.noop),
        migrations.AddConstraint(
            model_name="comparison",
            constraint=models.CheckConstraint(
                condition=models.Q(("filled", 0), ("last_claimed_by__isnull", False), _connector="OR"),
                name="comparison_filled_was_claimed",
            ),
        ),
        migrations.AddIndex(
            model_name="comparison",
            index=models.Index(
                condition=models.Q(("gold_verdict__isnull", True)),
                fields=["campaign", "filled", "last_claimed_by", "random_key"],
                name="comparison_claim_band_idx",
            ),
        ),
    ]
