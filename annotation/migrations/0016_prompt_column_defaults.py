"""Database defaults for the prompt columns added today, so that rows inserted by SQL (the benchmarks' seeders,
an operator's bulk load) need not name them: tags empty, duplicate_kind empty (not a duplicate)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("annotation", "0015_prompt_duplicate_group"),
    ]

    operations = [
        migrations.RunSQL(
            "ALTER TABLE annotation_prompt ALTER COLUMN tags SET DEFAULT '{}', "
            "ALTER COLUMN duplicate_kind SET DEFAULT ''",
            "ALTER TABLE annotation_prompt ALTER COLUMN tags DROP DEFAULT, ALTER COLUMN duplicate_kind DROP DEFAULT",
        ),
    ]
