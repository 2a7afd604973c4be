"""The one HTTP client for every outside fetch (Overpass, data.gov.lt's Spinta, the boundary files).

Politeness lives here once: a descriptive User-Agent, a default timeout, and bounded retries of
what may pass (429 and 5xx answers, dropped connections, time-outs) by urllib3's `Retry` mounted
on the session, honouring Retry-After up to a cap. Adapters call `request`, which turns whatever
still failed after the retries into a FetchError naming the URL and every attempt. What only an
adapter can judge (an Overpass error remark inside a 200 answer) stays in the adapter, which may
wait with `pause_before_retry` on the same schedule.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from http import HTTPStatus
from importlib import metadata
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import InvalidHeader, MaxRetryError, ReadTimeoutError
from urllib3.util.retry import Retry

from directory.config import Settings
from directory.errors import FetchError

PROJECT_URL = "https://atvira.example"  # placeholder: set to the project's public home page
try:
    VERSION = metadata.version("atvira")
except metadata.PackageNotFoundError:
    VERSION = "0.0.0.dev0"
USER_AGENT = f"Atvira/{VERSION} (+{PROJECT_URL}; open-data directory)"

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# Overpass takes its query as a POST form; a query only reads, so repeating it is safe.
RETRY_METHODS = frozenset(Retry.DEFAULT_ALLOWED_METHODS | {"POST"})
MAX_WAIT = 600.0  # seconds; a longer Retry-After (or backoff) is capped, not obeyed blindly
BACKOFF = 2.0  # seconds before the first retry, doubling after each further failure


class PoliteRetry(Retry):
    """urllib3's Retry with the waits this project wants.

    - backoff: `backoff_factor * 2**(n-1)` before the n-th retry (urllib3 skips the wait before
      the first retry; a shared public server deserves one);
    - Retry-After (seconds or an HTTP date) is obeyed but capped at `max_wait`, like the backoff;
    - the wait goes through `pause` (time.sleep by default) so tests can record it instead.
    """

    max_wait: float = MAX_WAIT
    pause: Callable[[float], None] = staticmethod(time.sleep)

    def new(self, **kw: Any) -> PoliteRetry:
        # urllib3 copies a Retry after every attempt through new(); carry our two settings along.
        retry = super().new(**kw)
        retry.max_wait, retry.pause = self.max_wait, self.pause
        return retry

    def backoff_for(self, failures: int) -> float:
        """Seconds to wait after `failures` consecutive failed attempts (1, 2, ...)."""
        if failures <= 0:
            return 0.0
        return float(min(self.backoff_factor * (2 ** (failures - 1)), self.backoff_max, self.max_wait))

    def get_backoff_time(self) -> float:
        failures = 0
        for attempt in reversed(self.history):  # the last run of failures; a redirect resets it
            if attempt.redirect_location is not None:
                break
            failures += 1
        return self.backoff_for(failures)

    def get_retry_after(self, response: Any) -> float | None:
        try:
            wait = super().get_retry_after(response)
        except InvalidHeader:  # unreadable (urllib3 would raise out of the retry): use the backoff
            return None
        return None if wait is None else min(float(wait), self.max_wait)

    def sleep(self, response: Any = None) -> None:
        wait = None
        if self.respect_retry_after_header and response is not None:
            wait = self.get_retry_after(response)
        self.pause(self.get_backoff_time() if wait is None else wait)


class HttpSession(requests.Session):
    """A requests.Session with the User-Agent set, a default timeout and PoliteRetry mounted."""

    def __init__(self, *, user_agent: str, retries: int, timeout: float, backoff: float = BACKOFF,
                 max_wait: float = MAX_WAIT, sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__()
        if retries < 0:
            raise ValueError(f"retries must be 0 or more, not {retries}")
        self.timeout, self.retries = timeout, retries
        self.retry = PoliteRetry(
            total=retries, status_forcelist=RETRY_STATUSES, allowed_methods=RETRY_METHODS,
            backoff_factor=backoff, backoff_max=max_wait, respect_retry_after_header=True,
            raise_on_status=False,  # the last answer comes back, so its status and text can be reported
        )
        self.retry.max_wait, self.retry.pause = max_wait, sleep
        adapter = HTTPAdapter(max_retries=self.retry)
        self.mount("https://", adapter)
        self.mount("http://", adapter)
        self.headers["User-Agent"] = user_agent

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        # A request without a timeout could hang for ever on a stalled server.
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().request(method, url, *args, **kwargs)

    def pause_before_retry(self, failures: int) -> None:
        """Wait as the transport retries do, for a failure only the adapter can see (a bad 200)."""
        self.retry.pause(self.retry.backoff_for(failures))


def make_session(*, user_agent: str = USER_AGENT, retries: int, timeout: float, backoff: float = BACKOFF,
                 max_wait: float = MAX_WAIT, sleep: Callable[[float], None] = time.sleep) -> HttpSession:
    """The session every fetch goes through. `retries` retries, so at most retries + 1 requests."""
    return HttpSession(user_agent=user_agent, retries=retries, timeout=timeout, backoff=backoff,
                       max_wait=max_wait, sleep=sleep)


def session_for(settings: Settings) -> HttpSession:
    """The session for a CLI run: ATVIRA_HTTP_TIMEOUT and ATVIRA_HTTP_RETRIES."""
    return make_session(retries=settings.http_retries, timeout=settings.http_timeout)


def request(session: Any, method: str, url: str, *, timeout: float | None = None, **kwargs: Any) -> requests.Response:
    """`session.get/post(url, ...)`, retried by the session; a 200 answer, or a FetchError naming the URL.

    `session` is an HttpSession, or any object with the method (tests pass recorded answers).
    """
    timeout = timeout if timeout is not None else getattr(session, "timeout", None)
    try:
        resp = getattr(session, method.lower())(url, timeout=timeout, **kwargs)
    except requests.RequestException as exc:
        raise FetchError(_describe_error(exc, session=session, timeout=timeout), where=url) from exc
    if resp.status_code != 200:
        attempts = _attempts(resp)
        last = f"HTTP {resp.status_code}{_excerpt(resp)}"
        if len(attempts) == 1:
            raise FetchError(last, where=url)
        raise FetchError(f"no usable answer after {len(attempts)} attempts: "
                         + "; ".join(f"attempt {i}: {a}" for i, a in enumerate(attempts, 1)) + _excerpt(resp),
                         where=url)
    return resp


def _attempts(resp: Any) -> list[str]:
    """One line per attempt behind this answer: urllib3 keeps the history on the raw response."""
    retries = getattr(getattr(resp, "raw", None), "retries", None)
    lines = []
    for h in getattr(retries, "history", ()) or ():
        if h.redirect_location is not None:
            continue
        lines.append(_status_line(h.status) if h.status else f"connection failed ({h.error})")
    return [*lines, _status_line(resp.status_code, getattr(resp, "reason", None))]


def _status_line(status: int, reason: str | None = None) -> str:
    if not reason:
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = ""
    return f"HTTP {status} {reason}".rstrip()


def _excerpt(resp: Any, limit: int = 300) -> str:
    """': ' and the readable part of an error page (servers answer errors with HTML), or ''."""
    body = bytes(getattr(resp, "content", b"") or b"")
    text = re.sub(r"<[^>]+>", " ", body[:5000].decode("utf-8", "replace"))
    text = re.sub(r"\s+", " ", text).strip()
    if not text:
        return ""
    return ": " + text[:limit] + ("…" if len(text) > limit else "")


def _describe_error(exc: requests.RequestException, *, session: Any, timeout: float | None) -> str:
    """What went wrong without an answer, and after how many attempts when the session retried."""
    reason: BaseException = exc
    exhausted = False
    inner = exc.args[0] if exc.args else None
    if isinstance(inner, MaxRetryError):
        reason, exhausted = inner.reason or inner, True
    if isinstance(reason, (requests.Timeout, ReadTimeoutError, TimeoutError)):
        what = f"no answer within {timeout:g} s" if timeout is not None else "no answer in time"
    elif isinstance(exc, requests.ConnectionError):
        what = f"connection failed ({type(reason).__name__}: {reason})"
    else:
        what = f"request failed ({type(exc).__name__}: {exc})"
    retries = getattr(session, "retries", None)
    if exhausted and retries is not None:
        # Every attempt counts against `total`, so an exhausted budget is always retries + 1 attempts.
        return f"{what}, after {retries + 1} attempts"
    return what
