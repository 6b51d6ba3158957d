"""Entry point of ``python -m scoring``."""

from __future__ import annotations

import gc
import os
import sys

# A short-lived command: the cycle collector's passes (during the imports, mostly) would only cost time.
gc.disable()

# Our matrices are small: threaded BLAS only adds contention (notably on busy machines).
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

from scoring.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
