"""Store each output's style counts (tokens, headers, list items, bold spans) for style-controlled leaderboards.

Existing outputs are counted here in batches (``annotation.style_features.fill_style_counts``: one UPDATE per 1,000
outputs). A trigger clears the counts whenever an output's text changes and the same UPDATE does not also set new
counts (an admin edit, a raw SQL fix), so stored counts can be missing but never stale; a style-controlled
leaderboard counts whatever is missing before it fits.
"""

import django.contrib.postgres.fields
from django.db import migrations, models

FORWARD = """
CREATE FUNCTION annotation_clear_stale_style() RETURNS trigger AS $$
BEGIN
    IF NEW.text IS DISTINCT FROM OLD.text AND NEW.style_features IS NOT DISTINCT FROM OLD.style_features THEN
        NEW.style_features := NULL;
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER output_style_follows_text BEFORE UPDATE OF text ON annotation_output
    FOR EACH ROW EXECUTE FUNCTION annotation_clear_stale_style();
"""

BACKWARD = """
DROP TRIGGER output_style_follows_text ON annotation_output;
DROP FUNCTION annotation_clear_stale_style();
"""


def backfill(apps, schema_editor):  # type: ignore[no-untyped-def]
    """Count the style of every existing output."""
    from annotation.style_features import fill_style_counts

    fill_style_counts()


class Migration(migrations.Migration):
    dependencies = [
        ("annotation", "0013_prompt_tags"),
    ]

    operations = [
        migrations.AddField(
            model_name="output",
            name="style_features",
            field=django.contrib.postgres.fields.ArrayField(
                base_field=models.IntegerField(),
                editable=False,
                help_text="Tokens, markdown headers, list items and bold spans (annotation/style_features.py); empty "
                "until counted (on import, by the migration's backfill, or when a style-controlled leaderboard needs "
                "it).",
                null=True,
                size=4,
            ),
        ),
        migrations.RunSQL(FORWARD, BACKWARD),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
