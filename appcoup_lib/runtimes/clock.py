"""Time stamps as the engines and the API write them (RFC 3339), as epoch seconds."""

from __future__ import annotations

import re
from datetime import datetime, timezone

_RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?$")


def rfc3339(text: str | None) -> float | None:
    """``2026-01-02T03:04:05.123456789Z`` (any fraction, ``Z`` or an offset) as epoch seconds.

    None when absent or unreadable; Docker's "never" (``0001-01-01T00:00:00Z``) is read as it is.
    """
    m = _RFC3339.match(text.strip()) if text else None
    if m is None:
        return None
    head, frac, zone = m.groups()
    tz = timezone.utc if zone in (None, "Z") else datetime.strptime(zone.replace(":", ""), "%z").tzinfo
    try:
        t = datetime.strptime(head, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=tz).timestamp()
    except (ValueError, OverflowError):
        return None
    return t + (float(f"0.{frac[:9]}") if frac else 0.0)


__all__ = ["rfc3339"]
