"""Settings, read once from the environment (ATVIRA_*) and then passed in explicitly."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path

DEFAULT_TILE_URL = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
DEFAULT_TILE_ATTRIBUTION = '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors'


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Every setting, with its environment variable in the docstring table of the README."""

    db: Path = Path("data/atvira.db")  # ATVIRA_DB
    cache_dir: Path = Path("data/cache")  # ATVIRA_CACHE_DIR: Overpass and download cache
    offline: bool = False  # ATVIRA_OFFLINE: live fetches read the cache only
    overpass_url: str = "https://overpass-api.de/api/interpreter"  # ATVIRA_OVERPASS_URL
    http_timeout: float = 200.0  # ATVIRA_HTTP_TIMEOUT (seconds)
    http_retries: int = 3  # ATVIRA_HTTP_RETRIES
    tile_url: str = DEFAULT_TILE_URL  # ATVIRA_TILE_URL: base-map tiles ("" for none)
    tile_attribution: str = DEFAULT_TILE_ATTRIBUTION  # ATVIRA_TILE_ATTRIBUTION
    page_limit: int = 500  # ATVIRA_PAGE_LIMIT: default rows per API page
    max_page_limit: int = 5000  # ATVIRA_MAX_PAGE_LIMIT: the most rows one API page may ask for
    host: str = "127.0.0.1"  # ATVIRA_HOST (atvira serve)
    port: int = 5000  # ATVIRA_PORT (atvira serve)
    # Conflation (directory.conflate): two sources' records are one place when at most this far
    # apart and their normalised names score at least this (0..1).
    conflate_distance_m: float = 150.0  # ATVIRA_CONFLATE_DISTANCE_M
    conflate_name_score: float = 0.8  # ATVIRA_CONFLATE_NAME_SCORE
    spinta_url: str = "https://get.data.gov.lt"  # ATVIRA_SPINTA_URL: data.gov.lt data API base
    snapshots_dir: Path = Path("")  # ATVIRA_SNAPSHOTS_DIR: dated copies of the store (default: `snapshots/` beside the store)
    max_upload_bytes: int = 100_000_000  # ATVIRA_MAX_UPLOAD_BYTES: the largest registry/upload file read (refused before parsing)
    # ATVIRA_SNAPSHOT_INTERVAL: at most one snapshot per this many seconds (0 = after every run
    # that changed something); between, the snapshot stays due (see derived._interval_passed)
    snapshot_interval: int = 0
    snapshot_retention: int = 12  # ATVIRA_SNAPSHOT_RETENTION: snapshot files kept (older ones pruned; 0 = keep all)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get(f"ATVIRA_{f.name.upper()}")
            if raw is None:
                continue
            default = getattr(cls(), f.name)
            if isinstance(default, bool):
                values[f.name] = raw.strip().lower() in ("1", "true", "yes", "on")
            elif isinstance(default, int):
                values[f.name] = int(raw)
            elif isinstance(default, float):
                values[f.name] = float(raw)
            elif isinstance(default, Path):
                values[f.name] = Path(raw)
            else:
                values[f.name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]

    def snapshot_dir(self) -> Path:
        """Where snapshots go: ATVIRA_SNAPSHOTS_DIR, or a `snapshots` directory beside the store."""
        return self.snapshots_dir if str(self.snapshots_dir) not in ("", ".") else self.db.parent / "snapshots"

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]
