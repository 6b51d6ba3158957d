"""Fixtures of the scoring tests."""

from __future__ import annotations

import pytest

from scoring import compiled


@pytest.fixture(params=["compiled", "numpy"])
def kernels(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test with the compiled kernels and again with their numpy twins; return which."""
    if request.param == "numpy":
        monkeypatch.setattr(compiled, "kernels", None)
    elif compiled.kernels is None:
        pytest.skip("the compiled kernels are not built (test_compiled fails for that)")
    return str(request.param)
