"""Write timestamps as ISO 8601 in UTC with microseconds, as ``to_char(t AT TIME ZONE 'UTC', ...)`` would.

PostgreSQL's ``to_char`` costs it 0.3 s or more per million rows; numpy writes the same fixed-width text from the
binary timestamps with a few operations per character position.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

TEMPLATE = b"0000-00-00T00:00:00.000000Z"
US_PER_DAY = 86_400_000_000
# The character positions of the digits of year, month, day, hour, minute, second and microseconds.
DIGITS = ((0, 4), (5, 2), (8, 2), (11, 2), (14, 2), (17, 2), (20, 6))


def civil_dates(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the proleptic Gregorian year, month and day of days since 1970-01-01 (Howard Hinnant's algorithm)."""
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = np.where(mp < 10, mp + 3, mp - 9)
    return yoe + era * 400 + (month <= 2), month, day


def iso_utc(values: pa.Array) -> pa.Array:
    """Return timestamps (microseconds since 1970 in UTC) as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``, nulls staying null.

    Raises ValueError for a year outside 1 to 9999, which has no four-digit form.
    """
    null = values.is_null().to_numpy(zero_copy_only=False)
    micros = values.cast(pa.int64()).fill_null(0).to_numpy()
    days, within = np.divmod(micros, US_PER_DAY)
    year, month, day = civil_dates(days)
    if ((year < 1) | (year > 9999))[~null].any():
        raise ValueError("a timestamp's year is outside 1 to 9999")
    seconds, fraction = np.divmod(within, 1_000_000)
    minutes = seconds // 60
    parts = (year, month, day, minutes // 60, minutes % 60, seconds % 60, fraction)
    # Written one character position at a time (a contiguous row of the transposed text), then transposed.
    text = np.empty((len(TEMPLATE), len(micros)), np.uint8)
    text[:] = np.frombuffer(TEMPLATE, np.uint8)[:, None]
    for value, (start, width) in zip(parts, DIGITS, strict=True):
        rest = value.astype(np.int32)
        for position in range(start + width - 1, start - 1, -1):
            rest, text[position] = np.divmod(rest, 10)
        text[start : start + width] += ord("0")
    offsets = np.arange(len(micros) + 1, dtype=np.int32) * len(TEMPLATE)
    validity = pc.invert(pa.array(null)).buffers()[1] if null.any() else None
    data = pa.py_buffer(np.ascontiguousarray(text.T))
    return pa.Array.from_buffers(pa.string(), len(micros), [validity, pa.py_buffer(offsets), data])
