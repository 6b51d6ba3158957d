"""The WSGI application: Django, behind the annotators' lean path for token-authenticated `next` and `rating`."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from django.core.wsgi import get_wsgi_application

if TYPE_CHECKING:
    from annotation.fastpath import AnnotatorFastPath

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalplatform.settings")

# A request thread that gets a reply from PostgreSQL waits for the GIL until the thread holding it lets go, by
# default after up to 5 ms; a `next` waits on PostgreSQL six times. With gunicorn's 8 threads a worker, 0.5 ms cut the
# benchmark's open-loop p95 at 200 ratings/s from 108-236 ms to 77-88 ms (README, "Tests and benchmark").
GIL_SWITCH_INTERVAL = 0.0005


def build_application() -> AnnotatorFastPath:
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)
    django_application = get_wsgi_application()
    from annotation.fastpath import AnnotatorFastPath  # imports models: only once Django is set up

    return AnnotatorFastPath(django_application)


application = build_application()
