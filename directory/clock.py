"""The one clock every stored timestamp comes from (UTC, whole seconds, ISO 8601 with 'Z').

One function instead of five copies, so a test can freeze time for a whole run in one place.
"""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    """The current instant, UTC, to the second."""
    return datetime.now(UTC).replace(microsecond=0)


def stamp(at: datetime | None = None) -> str:
    """`at` (default: now) as the store writes instants: 2026-11-29T11:06:35Z."""
    return (at or now()).isoformat().replace("+00:00", "Z")
