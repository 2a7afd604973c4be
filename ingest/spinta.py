"""data.gov.lt's data API (Spinta, `get.data.gov.lt/<namespace>/<Model>`), fetch half.

A getall answer is `{"_type": ..., "_data": [{...}, ...], "_page": {"next": "<token>"}}`; the next
page is the same URL with `page("<token>")` added, until an answer has no `_page.next`.
Geometry comes as WKT text (`"POINT (582966 6061792)"`), parsed in ingest.tabular.
Polite: a User-Agent, timeouts, bounded retries with backoff on 429/5xx/time-outs. Tests pass a
fake session with recorded pages; nothing here runs without one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import requests

from directory.errors import FetchError

from .overpass import USER_AGENT, _retry_after

RETRY_STATUSES = {429, 500, 502, 503, 504}


def model_url(base: str, model: str, *, limit: int | None = None) -> str:
    """`https://get.data.gov.lt/datasets/gov/lnb/bibliotekos/Sarasas?limit(1000)` from a model path."""
    if model.startswith(("http://", "https://")):
        url = model
    else:
        url = f"{base.rstrip('/')}/{model.lstrip('/')}"
    if limit and "limit(" not in url:
        url += ("&" if "?" in url else "?") + f"limit({limit})"
    return url


def next_url(url: str, token: str) -> str:
    """The URL of the page after `url` (any earlier `page(...)` replaced)."""
    base, _, query = url.partition("?")
    parts = [p for p in query.split("&") if p and not p.startswith("page(")]
    parts.append(f'page("{quote(token, safe="")}")')
    return f"{base}?{'&'.join(parts)}"


def get_json(url: str, *, session: requests.Session | Any, timeout: float, max_retries: int,
             backoff: float = 2.0, sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """GET one page as JSON, retrying what may pass (429, 5xx, time-outs, dropped connections)."""
    attempts: list[str] = []
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    for attempt in range(max_retries + 1):
        wait: float | None = None
        try:
            resp = session.get(url, headers=headers, timeout=timeout)
        except requests.Timeout:
            attempts.append(f"attempt {attempt + 1}: no answer within {timeout:g} s")
        except requests.ConnectionError as exc:
            attempts.append(f"attempt {attempt + 1}: connection failed ({exc})")
        else:
            if resp.status_code == 200:
                try:
                    payload = json.loads(resp.content)
                except ValueError as exc:
                    raise FetchError(f"the answer is not JSON: {exc}", where=url) from None
                if not isinstance(payload, dict) or not isinstance(payload.get("_data"), list):
                    raise FetchError("the answer has no `_data` list (not a Spinta getall answer)", where=url)
                return payload
            if resp.status_code not in RETRY_STATUSES:
                raise FetchError(f"HTTP {resp.status_code}", where=url)
            attempts.append(f"attempt {attempt + 1}: HTTP {resp.status_code}")
            wait = _retry_after(resp.headers.get("Retry-After"))
        if attempt < max_retries:
            sleep(wait if wait is not None else backoff * (2 ** attempt))
    raise FetchError(f"no usable answer after {max_retries + 1} attempts: " + "; ".join(attempts), where=url)


def fetch_pages(url: str, *, session: requests.Session | Any, timeout: float = 60.0, max_retries: int = 3,
                backoff: float = 2.0, sleep: Callable[[float], None] = time.sleep,
                max_pages: int = 10_000) -> Iterator[tuple[str, dict[str, Any]]]:
    """(url, payload) of every page, following `_page.next`; a repeated token is an error."""
    seen: set[str] = set()
    for _ in range(max_pages):
        payload = get_json(url, session=session, timeout=timeout, max_retries=max_retries, backoff=backoff,
                           sleep=sleep)
        yield url, payload
        token = (payload.get("_page") or {}).get("next")
        if not token or not payload["_data"]:
            return
        if token in seen:
            raise FetchError(f"the server sent page token {token!r} twice; stopping", where=url)
        seen.add(token)
        url = next_url(url, token)
    raise FetchError(f"more than {max_pages} pages; stopping", where=url)
