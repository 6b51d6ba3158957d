"""Store each prompt's and output's rendered, sanitised HTML, so showing a comparison does not render markdown.

Existing rows start without it (NULL): the engine renders and stores it on first show, and
`manage.py render_html` fills it in batches ahead of time. A trigger clears the stored HTML whenever a row's
text changes and the same UPDATE does not also set new HTML (an admin edit, a raw SQL fix), so stored HTML can
be missing but never stale.
"""

from django.db import migrations, models

HELP = "The text rendered to sanitised HTML; empty until rendered (on import, or on first show)."

FORWARD = """
CREATE FUNCTION annotation_clear_stale_html() RETURNS trigger AS $$
BEGIN
    IF NEW.text IS DISTINCT FROM OLD.text AND NEW.html IS NOT DISTINCT FROM OLD.html THEN
        NEW.html := NULL;
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER prompt_html_follows_text BEFORE UPDATE OF text ON annotation_prompt
    FOR EACH ROW EXECUTE FUNCTION annotation_clear_stale_html();
CREATE TRIGGER output_html_follows_text BEFORE UPDATE OF text ON annotation_output
    FOR EACH ROW EXECUTE FUNCTION annotation_clear_stale_html();
"""

BACKWARD = """
DROP TRIGGER output_html_follows_text ON annotation_output;
DROP TRIGGER prompt_html_follows_text ON annotation_prompt;
DROP FUNCTION annotation_clear_stale_html();
"""


class Migration(migrations.Migration):
    dependencies = [("annotation", "0005_comparison_filled_guard")]

    operations = [
        migrations.AddField(
            model_name="output",
            name="html",
            field=models.TextField(editable=False, help_text=HELP, null=True),
        ),
        migrations.AddField(
            model_name="prompt",
            name="html",
            field=models.TextField(editable=False, help_text=HELP, null=True),
        ),
        migrations.RunSQL(FORWARD, BACKWARD),
    ]
