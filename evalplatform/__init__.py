from __future__ import annotations

import os

# Every matrix the web and worker processes factor is small (models x models), and gunicorn's and Celery's
# processes already share the cores: BLAS's own threads only contend (on a busy 2-core machine a 150-model fit
# spent 50 times as long in each dense solve with them). Set before anything imports numpy; an operator's own
# setting wins. ``scoring`` limits its fits itself too, for notebooks (``scoring.cores.single_threaded_blas``).
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

from evalplatform.celery import app as celery_app  # noqa: E402

__all__ = ["celery_app"]
