"""Settings, read once from the environment (ATVIRA_*) and then passed in explicitly."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from .errors import ConfigError

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
    # A point outside the (simplified) municipality polygons but within this many metres of one
    # and of the country outline goes to the nearest municipality (directory.areas).
    border_tolerance_m: float = 2000.0  # ATVIRA_BORDER_TOLERANCE_M
    snapshot_retention: int = 12  # ATVIRA_SNAPSHOT_RETENTION: snapshot files kept (older ones pruned; 0 = keep all)
    # Accounts, sessions and abuse defences (issue 11). Personal data lives in a PRIVATE SQLite
    # file, never in the public store (whose snapshots and download are published whole).
    private_db: Path = Path("")  # ATVIRA_PRIVATE_DB: users, sessions, pending contributions (default: <store stem>.private.db beside the store)
    # Signs the session cookie and the CSRF tokens. Never logged or shown (repr=False).
    secret_key: str = field(default="", repr=False)  # ATVIRA_SECRET_KEY: required when production is on
    production: bool = False  # ATVIRA_PRODUCTION: refuse to start without ATVIRA_SECRET_KEY (gunicorn.conf.py sets it)
    session_hours: float = 8.0  # ATVIRA_SESSION_HOURS: a login lasts at most this long
    session_idle_minutes: float = 60.0  # ATVIRA_SESSION_IDLE_MINUTES: ends a session unused this long (0 = no idle limit)
    login_lockout: int = 10  # ATVIRA_LOGIN_LOCKOUT: wrong passwords in a row that lock an account
    login_lock_minutes: float = 15.0  # ATVIRA_LOGIN_LOCK_MINUTES: how long a locked account stays locked
    ratelimit_storage: str = "memory://"  # ATVIRA_RATELIMIT_STORAGE: Flask-Limiter storage (redis://127.0.0.1:6379 with several workers)
    login_limit: str = "10 per minute"  # ATVIRA_LOGIN_LIMIT: login attempts per client address
    submission_limit: str = "20 per hour;5 per minute"  # ATVIRA_SUBMISSION_LIMIT: contributions per client address
    forwarded_allow_ips: str = "127.0.0.1"  # ATVIRA_FORWARDED_ALLOW_IPS: proxies whose X-Forwarded-For names the client ("*": any)

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

    def private_db_path(self) -> Path:
        """The private file: ATVIRA_PRIVATE_DB, or `<store stem>.private.db` beside the store."""
        if str(self.private_db) not in ("", "."):
            return self.private_db
        return self.db.with_name(f"{self.db.stem}.private.db")

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


SECRET_KEY_MIN_LENGTH = 32


def check_production(settings: Settings) -> None:
    """Refuse to serve in production without a real ATVIRA_SECRET_KEY (it signs the session
    cookie and every CSRF token: a missing or guessable key lets anyone forge a login)."""
    if not settings.production:
        return
    if not settings.secret_key:
        raise ConfigError(
            "ATVIRA_SECRET_KEY is not set: production refuses to start without it. Set it to a long random"
            " value kept out of the repository, e.g. ATVIRA_SECRET_KEY=$(python -c 'import secrets;"
            " print(secrets.token_hex(32))')",
            where="ATVIRA_SECRET_KEY",
        )
    if len(settings.secret_key) < SECRET_KEY_MIN_LENGTH:
        raise ConfigError(
            f"ATVIRA_SECRET_KEY is too short ({len(settings.secret_key)} characters; at least"
            f" {SECRET_KEY_MIN_LENGTH}): production refuses to start with a guessable key",
            where="ATVIRA_SECRET_KEY",
        )
