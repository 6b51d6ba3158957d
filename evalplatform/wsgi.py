"""The WSGI application: Django, behind the annotators' lean path for token-authenticated `next` and `rating`."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalplatform.settings")


def build_application() -> object:
    django_application = get_wsgi_application()
    from annotation.fastpath import AnnotatorFastPath  # imports models: only once Django is set up

    return AnnotatorFastPath(django_application)


application = build_application()
