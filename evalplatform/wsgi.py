"""The WSGI application: Django, behind the annotators' lean path for token-authenticated `next` and `rating`."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from django.core.wsgi import get_wsgi_application

if TYPE_CHECKING:
    from annotation.fastpath import AnnotatorFastPath

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalplatform.settings")


def build_application() -> AnnotatorFastPath:
    django_application = get_wsgi_application()
    from annotation.fastpath import AnnotatorFastPath  # imports models: only once Django is set up

    return AnnotatorFastPath(django_application)


application = build_application()
