"""The compiled kernels of ``scoring/_kernels.c``, or None where they were not built.

``pip install -e .`` (``scripts/setup``) builds them; in a checkout, ``python setup.py build_ext --inplace``. Without
them numpy twins do the same work, more slowly, with the same results (refits agree to their tolerance). Callers
read ``compiled.kernels`` when they run, so that tests can switch the kernels off.
"""

from __future__ import annotations

__all__ = ["kernels"]

try:
    from scoring import _kernels as kernels
except ImportError:  # pragma: no cover - depends on the build
    kernels = None  # type: ignore[assignment]
