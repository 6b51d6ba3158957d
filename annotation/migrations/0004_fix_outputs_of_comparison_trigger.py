"""Let the outputs-of-comparison trigger run on assignments.

PL/pgSQL resolves every field named in an expression, so `TG_TABLE_NAME = 'annotation_rating' AND
NEW.winner_id ...` failed on annotation_assignment (which has no winner_id) and no assignment could be inserted.
The rating-only check now sits in its own IF, which is only evaluated for ratings.
"""

from django.db import migrations

FIXED = """
CREATE OR REPLACE FUNCTION annotation_check_outputs_of_comparison() RETURNS trigger AS $$
DECLARE
    a bigint;
    b bigint;
BEGIN
    SELECT output_a_id, output_b_id INTO a, b FROM annotation_comparison WHERE id = NEW.comparison_id;
    IF NEW.left_output_id IS NOT NULL AND NEW.left_output_id NOT IN (a, b) THEN
        RAISE EXCEPTION 'left_output % is not an output of comparison %', NEW.left_output_id, NEW.comparison_id
            USING ERRCODE = 'check_violation';
    END IF;
    IF TG_TABLE_NAME = 'annotation_rating' THEN
        IF NEW.winner_id IS NOT NULL AND NEW.winner_id NOT IN (a, b) THEN
            RAISE EXCEPTION 'winner % is not an output of comparison %', NEW.winner_id, NEW.comparison_id
                USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;
"""


class Migration(migrations.Migration):
    dependencies = [("annotation", "0003_assignment_engine")]

    operations = [migrations.RunSQL(FIXED, migrations.RunSQL.noop)]
