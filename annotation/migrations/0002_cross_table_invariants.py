"""Invariants that span tables, which Django's constraint API cannot express.

- A comparison's prompt belongs to its campaign, and both its outputs (and its gold winner) to its prompt:
  composite foreign keys onto unique (id, campaign_id) / (id, prompt_id) keys.
- A rating's rater_kind is its rater's kind: composite foreign key onto rater (id, kind).
- A rating's winner and shown-left output, and an assignment's shown-left output, are outputs of the
  comparison: a trigger, since the check reads another row.
"""

from django.db import migrations

FORWARD = """
ALTER TABLE annotation_prompt ADD CONSTRAINT prompt_id_campaign UNIQUE (id, campaign_id);
ALTER TABLE annotation_output ADD CONSTRAINT output_id_prompt UNIQUE (id, prompt_id);

ALTER TABLE annotation_comparison
    ADD CONSTRAINT comparison_prompt_in_campaign FOREIGN KEY (prompt_id, campaign_id)
        REFERENCES annotation_prompt (id, campaign_id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    ADD CONSTRAINT comparison_output_a_of_prompt FOREIGN KEY (output_a_id, prompt_id)
        REFERENCES annotation_output (id, prompt_id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    ADD CONSTRAINT comparison_output_b_of_prompt FOREIGN KEY (output_b_id, prompt_id)
        REFERENCES annotation_output (id, prompt_id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED;

ALTER TABLE annotation_rating
    ADD CONSTRAINT rating_rater_kind_matches FOREIGN KEY (rater_id, rater_kind)
        REFERENCES annotation_rater (id, kind) ON UPDATE CASCADE DEFERRABLE INITIALLY DEFERRED;

CREATE FUNCTION annotation_check_outputs_of_comparison() RETURNS trigger AS $$
DECLARE
    a bigint;
    b bigint;
BEGIN
    SELECT output_a_id, output_b_id INTO a, b FROM annotation_comparison WHERE id = NEW.comparison_id;
    IF NEW.left_output_id IS NOT NULL AND NEW.left_output_id NOT IN (a, b) THEN
        RAISE EXCEPTION 'left_output % is not an output of comparison %', NEW.left_output_id, NEW.comparison_id
            USING ERRCODE = 'check_violation';
    END IF;
    IF TG_TABLE_NAME = 'annotation_rating' AND NEW.winner_id IS NOT NULL AND NEW.winner_id NOT IN (a, b) THEN
        RAISE EXCEPTION 'winner % is not an output of comparison %', NEW.winner_id, NEW.comparison_id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER rating_outputs_of_comparison BEFORE INSERT OR UPDATE OF comparison_id, winner_id, left_output_id
    ON annotation_rating FOR EACH ROW EXECUTE FUNCTION annotation_check_outputs_of_comparison();
CREATE TRIGGER assignment_outputs_of_comparison BEFORE INSERT OR UPDATE OF comparison_id, left_output_id
    ON annotation_assignment FOR EACH ROW EXECUTE FUNCTION annotation_check_outputs_of_comparison();
"""

BACKWARD = """
DROP TRIGGER assignment_outputs_of_comparison ON annotation_assignment;
DROP TRIGGER rating_outputs_of_comparison ON annotation_rating;
DROP FUNCTION annotation_check_outputs_of_comparison();
ALTER TABLE annotation_rating DROP CONSTRAINT rating_rater_kind_matches;
ALTER TABLE annotation_comparison
    DROP CONSTRAINT comparison_prompt_in_campaign,
    DROP CONSTRAINT comparison_output_a_of_prompt,
    DROP CONSTRAINT comparison_output_b_of_prompt;
ALTER TABLE annotation_output DROP CONSTRAINT output_id_prompt;
ALTER TABLE annotation_prompt DROP CONSTRAINT prompt_id_campaign;
"""


class Migration(migrations.Migration):
    dependencies = [("annotation", "0001_initial")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
