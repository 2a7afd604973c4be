"""OpenStreetMap adapter, fetch half: every network call to the Overpass API lives here.

The public Overpass instances are shared and load-shed heavy users, so the client is polite:
a descriptive User-Agent, timeouts, bounded retries with exponential backoff (honouring
Retry-After), and an on-disk cache so a re-run or an offline run costs the server nothing.
It returns raw bytes; `ingest.osm.parse_overpass_json` turns them into elements. All state
(session, endpoint, cache directory, sleep) is passed in.
"""

from __future__ import annotations

import email.utils
import hashlib
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import requests

from directory.errors import BadRequest, FetchError, InputError
from ingest.osm import load_overpass_json, overpass_selectors

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://overpass-api.de/api/interpreter"
PROJECT_URL = "https://atvira.example"  # placeholder: set to the project's public home page
try:
    VERSION = metadata.version("atvira")
except metadata.PackageNotFoundError:
    VERSION = "0.0.0.dev0"
USER_AGENT = f"Atvira/{VERSION} (+{PROJECT_URL}; open-data directory)"

RETRY_STATUSES = frozenset({429, 502, 503, 504})
MAX_RETRY_AFTER = 600.0  # seconds; a longer Retry-After is capped, not obeyed blindly

_ISO2 = re.compile(r"^[A-Z]{2}$")
_ISO_SUB = re.compile(r"^[A-Z]{2}-[A-Z0-9]{1,3}$")


def _coord(value: float) -> str:
    return f"{value:.7f}".rstrip("0").rstrip(".")


def build_query(*, area: str | None = None, bbox: tuple[float, float, float, float] | None = None,
                timeout: int = 180) -> str:
    """The Overpass QL query for every category, from the tag table in `ingest.osm`.

    area: an ISO 3166-1 country code ("LT") or ISO 3166-2 subdivision ("LT-57").
    bbox: (west, south, east, north) as everywhere in Atvira; Overpass wants
    (south, west, north, east), which is written here and nowhere else.
    """
    if area is None and bbox is None:
        raise BadRequest("give an area or a bbox: a world-wide query would overload the server",
                         where="area")
    if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout <= 0:
        raise BadRequest(f"timeout must be a positive number of seconds, not {timeout!r}", where="timeout")
    head = [f"[out:json][timeout:{timeout}];"]
    scope = ""
    if area is not None:
        code = area.strip().upper()
        if _ISO2.match(code):
            head.append(f'area["ISO3166-1"="{code}"][admin_level=2][boundary=administrative]->.a;')
        elif _ISO_SUB.match(code):
            head.append(f'area["ISO3166-2"="{code}"][boundary=administrative]->.a;')
        else:
            raise BadRequest(f"area must be an ISO 3166 code like LT or LT-57, not {area!r}", where="area")
        scope += "(area.a)"
    if bbox is not None:
        try:
            west, south, east, north = (float(v) for v in bbox)
        except (TypeError, ValueError) as exc:
            raise BadRequest(f"bbox must be four numbers west,south,east,north: {bbox!r}", where="bbox") from exc
        if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
            raise BadRequest(f"bbox {bbox!r} is not west<east, south<north within -180..180/-90..90",
                             where="bbox")
        scope += f"({_coord(south)},{_coord(west)},{_coord(north)},{_coord(east)})"
    body = [f"  nwr{sel}{scope};" for sel in overpass_selectors()]
    return "\n".join([*head, "(", *body, ");", "out center tags;"]) + "\n"


def cache_path(cache_dir: Path, *, endpoint: str, query: str) -> Path:
    """Where the answer to (endpoint, query) is cached: sha256 of both, so any change refetches."""
    digest = hashlib.sha256(f"{endpoint}\n{query}".encode()).hexdigest()
    return Path(cache_dir) / f"overpass-{digest}.json"


def _write_atomic(path: Path, data: bytes) -> None:
    """Write via a temp file in the same directory + os.replace: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date), capped; None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return min(max((when - datetime.now(timezone.utc)).total_seconds(), 0.0), MAX_RETRY_AFTER)


def _excerpt(body: bytes, limit: int = 300) -> str:
    """The readable part of an error page (Overpass answers bad queries with HTML)."""
    text = re.sub(r"<[^>]+>", " ", body[:5000].decode("utf-8", "replace"))
    text = re.sub(r"\s+", " ", text).strip()
    return text[:limit] + ("…" if len(text) > limit else "")


def fetch(query: str, *, session: requests.Session | Any, endpoint: str = DEFAULT_ENDPOINT,
          cache_dir: Path | None, offline: bool = False, refresh: bool = False, max_retries: int = 3,
          backoff: float = 2.0, timeout: float = 200.0, user_agent: str = USER_AGENT,
          sleep: Callable[[float], None] = time.sleep) -> bytes:
    """POST `query` to `endpoint` and return the JSON bytes, using and filling the cache.

    A cached answer is returned without any request (refresh=True skips reading it);
    offline=True never touches the network. Retries 429/502/503/504, connection errors,
    timeouts and error remarks up to `max_retries` times (so at most max_retries + 1 requests),
    waiting Retry-After or backoff * 2**n seconds. Only a checked, error-free answer is cached.
    """
    path = cache_path(cache_dir, endpoint=endpoint, query=query) if cache_dir is not None else None
    if path is not None and not refresh and path.is_file():
        log.info("overpass: cache hit %s", path.name)
        return path.read_bytes()
    if offline:
        hint = f"{path}" if path is not None else "no cache directory was given"
        raise FetchError(f"not in cache and offline mode forbids fetching ({hint})", where=endpoint)

    attempts: list[str] = []
    headers = {"User-Agent": user_agent, "Accept": "application/json"}
    for attempt in range(max_retries + 1):
        wait: float | None = None
        try:
            resp = session.post(endpoint, data={"data": query}, headers=headers, timeout=timeout)
        except requests.Timeout:
            attempts.append(f"attempt {attempt + 1}: no answer within {timeout:g} s")
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            attempts.append(f"attempt {attempt + 1}: connection failed ({type(exc).__name__}: {exc})")
        except requests.RequestException as exc:
            raise FetchError(f"request failed: {type(exc).__name__}: {exc}", where=endpoint) from exc
        else:
            status = resp.status_code
            if status == 200:
                try:
                    load_overpass_json(resp.content, where=endpoint)
                except InputError as exc:
                    attempts.append(f"attempt {attempt + 1}: HTTP 200 but {exc.message}")
                else:
                    if path is not None:
                        try:
                            _write_atomic(path, resp.content)
                        except OSError as exc:  # the data is good; a cache problem must not lose it
                            log.warning("overpass: cannot write cache %s: %s", path, exc)
                    return bytes(resp.content)
            elif status in RETRY_STATUSES:
                reason = getattr(resp, "reason", "") or ""
                attempts.append(f"attempt {attempt + 1}: HTTP {status} {reason}".rstrip())
                wait = _retry_after(resp.headers.get("Retry-After"))
            else:
                raise FetchError(f"HTTP {status}: {_excerpt(resp.content)}", where=endpoint)
        if attempt < max_retries:
            delay = wait if wait is not None else backoff * (2 ** attempt)
            log.warning("overpass: %s; retrying in %.0f s", attempts[-1], delay)
            sleep(delay)
    raise FetchError(f"no usable answer after {max_retries + 1} attempts: " + "; ".join(attempts),
                     where=endpoint)
