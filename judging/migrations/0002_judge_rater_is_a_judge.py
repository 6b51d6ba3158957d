"""A judge's rater is a rater of kind "judge": composite foreign key onto annotation_rater (id, kind)."""

from django.db import migrations

FORWARD = """
ALTER TABLE judging_judgeconfig
    ADD CONSTRAINT judgeconfig_rater_kind_matches FOREIGN KEY (rater_id, rater_kind)
        REFERENCES annotation_rater (id, kind) ON UPDATE RESTRICT DEFERRABLE INITIALLY DEFERRED;
"""

BACKWARD = "ALTER TABLE judging_judgeconfig DROP CONSTRAINT judgeconfig_rater_kind_matches;"


class Migration(migrations.Migration):
    dependencies = [("judging", "0001_judges_runs_verdicts"), ("annotation", "0002_cross_table_invariants")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
