"""Drop indexes that duplicate the leading column of another index of the same table.

Every claim moves a comparison in the claim index (a new row version, so a new entry in every index of the table),
every claim inserts an assignment and every rating updates it and inserts a rating: each index less is a write
less on the annotators' hot path. Each dropped index's column leads a composite index that stays:

- comparison: campaign (comparison_sampling_idx), prompt (comparison_prompt_idx, the same column twice),
  output_a (comparison_unique_pair);
- assignment: comparison (assignment_once_per_rater), rater (assignment_rater_state);
- rating: comparison, twice (rating_once_per_rater_and_order), rater (rating_rater_idx, the same column twice);
- annotator status: campaign (annotator_status_once_per_campaign).

Django would drop and re-create each foreign key to change `db_index` (re-checking every row of a large table);
only the indexes change here, the constraints stay.
"""

import django.db.models.deletion
from django.db import migrations, models

# (index, table, column) of each foreign key's own index.
FOREIGN_KEY_INDEXES = [
    ("annotation_annotatorstatus_campaign_id_39e31c21", "annotation_annotatorstatus", "campaign_id"),
    ("annotation_assignment_comparison_id_f1872af5", "annotation_assignment", "comparison_id"),
    ("annotation_assignment_rater_id_4be752db", "annotation_assignment", "rater_id"),
    ("annotation_comparison_campaign_id_fbc84f80", "annotation_comparison", "campaign_id"),
    ("annotation_comparison_output_a_id_a1f7b9b1", "annotation_comparison", "output_a_id"),
    ("annotation_comparison_prompt_id_fe9fc3bd", "annotation_comparison", "prompt_id"),
    ("annotation_rating_comparison_id_47810f89", "annotation_rating", "comparison_id"),
    ("annotation_rating_rater_id_5608c8c3", "annotation_rating", "rater_id"),
]


class Migration(migrations.Migration):
    dependencies = [
        ("annotation", "0007_claim_bands"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="rating",
            name="rating_comparison_idx",
        ),
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    [f'DROP INDEX IF EXISTS "{index}"' for index, _, _ in FOREIGN_KEY_INDEXES],
                    [
                        f'CREATE INDEX "{index}" ON "{table}" ("{column}")'
                        for index, table, column in FOREIGN_KEY_INDEXES
                    ],
                )
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="annotatorstatus",
                    name="campaign",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="annotator_statuses",
                        to="annotation.campaign",
                    ),
                ),
                migrations.AlterField(
                    model_name="assignment",
                    name="comparison",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="assignments",
                        to="annotation.comparison",
                    ),
                ),
                migrations.AlterField(
                    model_name="assignment",
                    name="rater",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="assignments",
                        to="annotation.rater",
                    ),
                ),
                migrations.AlterField(
                    model_name="comparison",
                    name="campaign",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="comparisons",
                        to="annotation.campaign",
                    ),
                ),
                migrations.AlterField(
                    model_name="comparison",
                    name="output_a",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="annotation.output",
                    ),
                ),
                migrations.AlterField(
                    model_name="comparison",
                    name="prompt",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="comparisons",
                        to="annotation.prompt",
                    ),
                ),
                migrations.AlterField(
                    model_name="rating",
                    name="comparison",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="ratings",
                        to="annotation.comparison",
                    ),
                ),
                migrations.AlterField(
                    model_name="rating",
                    name="rater",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="ratings",
                        to="annotation.rater",
                    ),
                ),
            ],
        ),
    ]
