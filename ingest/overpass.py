"""OpenStreetMap adapter, fetch half: every network call to the Overpass API lives here.

The public Overpass instances are shared and load-shed heavy users, so the client is polite:
the shared session of `ingest.http` (User-Agent, timeouts, bounded retries honouring
Retry-After), and an on-disk cache so a re-run or an offline run costs the server nothing.
It returns raw bytes; `ingest.osm.parse_overpass_json` turns them into elements. All state
(session, endpoint, cache directory) is passed in.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
from pathlib import Path

from directory.errors import BadRequest, FetchError, InputError
from ingest import http
from ingest.http import USER_AGENT, HttpSession
from ingest.osm import load_overpass_json, overpass_selectors

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://overpass-api.de/api/interpreter"
__all__ = ["DEFAULT_ENDPOINT", "USER_AGENT", "build_query", "cache_path", "fetch"]

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


def fetch(query: str, *, session: HttpSession, endpoint: str = DEFAULT_ENDPOINT,
          cache_dir: Path | None, offline: bool = False, refresh: bool = False) -> bytes:
    """POST `query` to `endpoint` and return the JSON bytes, using and filling the cache.

    A cached answer is returned without any request (refresh=True skips reading it);
    offline=True never touches the network. The session (ingest.http) retries 429/5xx answers,
    dropped connections and time-outs. An answer that comes back 200 but is unusable (an error
    remark such as "Query timed out", or a garbled or cut-off body) is asked again up to the
    session's `retries` times, waiting on the same schedule. Only a checked, error-free answer
    is cached.
    """
    path = cache_path(cache_dir, endpoint=endpoint, query=query) if cache_dir is not None else None
    if path is not None and not refresh and path.is_file():
        log.info("overpass: cache hit %s", path.name)
        return path.read_bytes()
    if offline:
        hint = f"{path}" if path is not None else "no cache directory was given"
        raise FetchError(f"not in cache and offline mode forbids fetching ({hint})", where=endpoint)

    retries = session.retries
    problems: list[str] = []
    for attempt in range(retries + 1):
        resp = http.request(session, "POST", endpoint, data={"data": query}, headers={"Accept": "application/json"})
        try:
            load_overpass_json(resp.content, where=endpoint)
        except InputError as exc:
            problems.append(f"attempt {attempt + 1}: HTTP 200 but {exc.message}")
        else:
            if path is not None:
                try:
                    _write_atomic(path, resp.content)
                except OSError as exc:  # the data is good; a cache problem must not lose it
                    log.warning("overpass: cannot write cache %s: %s", path, exc)
            return bytes(resp.content)
        if attempt < retries:
            log.warning("overpass: %s; asking again", problems[-1])
            session.pause_before_retry(attempt + 1)
    raise FetchError(f"no usable answer after {retries + 1} attempts: " + "; ".join(problems), where=endpoint)
