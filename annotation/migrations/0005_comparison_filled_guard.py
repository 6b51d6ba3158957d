"""Guard the assignment engine in the database: a regular comparison never takes more slots than required.

`Comparison.filled` counts the assignments holding a slot (leased or rated). The bound lives on the campaign, so a
CHECK constraint cannot express it; this trigger refuses any increase past `ratings_per_comparison`. Decreases
are always allowed (a researcher may lower the requirement while comparisons are in progress), and gold
comparisons are exempt (every annotator may answer each gold comparison once).
"""

from django.db import migrations

FORWARD = """
CREATE FUNCTION annotation_check_comparison_filled() RETURNS trigger AS $$
DECLARE
    required integer;
BEGIN
    IF NEW.filled > OLD.filled AND NEW.gold_verdict IS NULL THEN
        SELECT ratings_per_comparison INTO required FROM annotation_campaign WHERE id = NEW.campaign_id;
        IF NEW.filled > required THEN
            RAISE EXCEPTION 'comparison % would hold % slots, more than the % required', NEW.id, NEW.filled, required
                USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER comparison_filled_within_required BEFORE UPDATE OF filled ON annotation_comparison
    FOR EACH ROW EXECUTE FUNCTION annotation_check_comparison_filled();
"""

BACKWARD = """
DROP TRIGGER comparison_filled_within_required ON annotation_comparison;
DROP FUNCTION annotation_check_comparison_filled();
"""


class Migration(migrations.Migration):
    dependencies = [("annotation", "0004_fix_outputs_of_comparison_trigger")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
