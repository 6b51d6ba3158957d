"""The WSGI application gunicorn serves."""

from __future__ import annotations

import sys

import pytest

from evalplatform import wsgi


def test_building_the_application_shortens_the_gil_switch_interval() -> None:
    previous = sys.getswitchinterval()
    sys.setswitchinterval(0.005)  # CPython's default
    try:
        wsgi.build_application()

        assert sys.getswitchinterval() == pytest.approx(wsgi.GIL_SWITCH_INTERVAL)
    finally:
        sys.setswitchinterval(previous)
    assert wsgi.GIL_SWITCH_INTERVAL < 0.005
