from typing import Any

def scan_battles(
    path: str,
    parse: bool,
    start: int = 0,
    stop: int = -1,
    array: bool = False,
    anony_only: bool = False,
    language: bytes | None = None,
    dedup: bool = False,
    since: float = ...,
    until: float = ...,
    category: bytes | None = None,
    style: bool = False,
    /,
) -> tuple[list[bytes], bytes, bytes, list[bytes], bytes, bytes, int, int, bool, tuple[int, str] | None, bytes]: ...
def poisson_tables(
    first: Any, means: Any, low: Any, width: Any, offsets: Any, order: Any, cdf: Any, guide: Any, /
) -> None: ...
def poisson_fill(
    capsule: Any,
    cdf: Any,
    offsets: Any,
    low: Any,
    guide: Any,
    order: Any,
    out: Any,
    columns: Any,
    totals: Any,
    /,
) -> None: ...
def categorical_add(capsule: Any, cumulative: Any, draws: Any, out: Any, /) -> None: ...
def half_chord(
    draws: Any,
    pair_i: Any,
    pair_j: Any,
    had: Any,
    x0: Any,
    inv_hess: Any,
    prior: float,
    tol: float,
    max_steps: int,
    scale: float,
    work: Any,
    theta: Any,
    error: Any,
    lost: Any,
    /,
) -> int: ...
def style_terms(
    features: Any,
    y: Any,
    weights: Any,
    starts: Any,
    pair_a: Any,
    pair_b: Any,
    params: Any,
    reg: float,
    probs: Any,
    grad: Any,
    hess: Any,
    /,
) -> None: ...
def spd_solve(matrix: Any, rhs: Any, out: Any, /) -> bool: ...
def poisson_classes(
    capsule: Any,
    cdf: Any,
    offsets: Any,
    low: Any,
    guide: Any,
    classes: Any,
    out: Any,
    rows: Any,
    totals: Any,
    /,
) -> None: ...
