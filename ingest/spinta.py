"""data.gov.lt's data API (Spinta, `get.data.gov.lt/<namespace>/<Model>`), fetch half.

A getall answer is `{"_type": ..., "_data": [{...}, ...], "_page": {"next": "<token>"}}`; the next
page is the same URL with `page("<token>")` added, until an answer has no `_page.next`.
Geometry comes as WKT text (`"POINT (582966 6061792)"`), parsed in ingest.tabular.
Polite through the shared session of `ingest.http` (User-Agent, timeouts, bounded retries on
429/5xx/time-outs, Retry-After honoured). Tests pass a fake session with recorded pages or a
loopback server; nothing here runs without a session.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from directory.errors import FetchError

from . import http
from .http import HttpSession


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


def get_json(url: str, *, session: HttpSession | Any, timeout: float | None = None) -> dict[str, Any]:
    """GET one page as JSON; the session retries what may pass (429, 5xx, time-outs, dropped connections)."""
    resp = http.request(session, "GET", url, timeout=timeout, headers={"Accept": "application/json"})
    try:
        payload = json.loads(resp.content)
    except ValueError as exc:
        raise FetchError(f"the answer is not JSON: {exc}", where=url) from None
    if not isinstance(payload, dict) or not isinstance(payload.get("_data"), list):
        raise FetchError("the answer has no `_data` list (not a Spinta getall answer)", where=url)
    return payload


def fetch_pages(url: str, *, session: HttpSession | Any, timeout: float | None = None,
                max_pages: int = 10_000) -> Iterator[tuple[str, dict[str, Any]]]:
    """(url, payload) of every page, following `_page.next`; a repeated token is an error."""
    seen: set[str] = set()
    for _ in range(max_pages):
        payload = get_json(url, session=session, timeout=timeout)
        yield url, payload
        token = (payload.get("_page") or {}).get("next")
        if not token or not payload["_data"]:
            return
        if token in seen:
            raise FetchError(f"the server sent page token {token!r} twice; stopping", where=url)
        seen.add(token)
        url = next_url(url, token)
    raise FetchError(f"more than {max_pages} pages; stopping", where=url)
