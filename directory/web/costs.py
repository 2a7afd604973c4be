"""Bounded cost per request: a small concurrency limit for the expensive endpoints, and noticing
a client that went away.

Each worker process has one semaphore of `ATVIRA_EXPENSIVE_CONCURRENCY` slots (default 1, with
gunicorn's 2 threads per worker: one thread is always left for the map's cheap queries). An
expensive request that finds no slot is answered at once with 503 and `Retry-After`, instead of
queueing the map behind it (16 whole-world cluster requests took plain map queries from 10 ms
to 76 s). A streamed answer keeps its slot until the stream ends or is abandoned.
"""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from functools import wraps
from typing import Any

from flask import Flask, Response, current_app, jsonify, request

RETRY_AFTER_S = 10


def init_costs(app: Flask, slots: int) -> None:
    app.extensions["atvira_expensive"] = threading.BoundedSemaphore(max(1, slots))


def busy() -> Response:
    resp = jsonify({"error": "Busy", "status": 503, "where": request.path,
                    "message": "the server is busy with other downloads or large queries; try again shortly"})
    resp.status_code = 503
    resp.headers["Retry-After"] = str(RETRY_AFTER_S)
    return resp


def hold_slot() -> Callable[[], None] | None:
    """Take one of this worker's expensive slots without waiting; the function that gives it
    back (call it once), or None when every slot is taken."""
    sem: threading.BoundedSemaphore = current_app.extensions["atvira_expensive"]
    if not sem.acquire(blocking=False):
        return None
    released = threading.Event()

    def release() -> None:
        if not released.is_set():
            released.set()
            sem.release()

    return release


def expensive(view: Callable[..., Any]) -> Callable[..., Any]:
    """Run `view` in one of the worker's expensive slots, or answer 503 + Retry-After."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        release = hold_slot()
        if release is None:
            return busy()
        try:
            resp = current_app.make_response(view(*args, **kwargs))
        except BaseException:
            release()
            raise
        # a stream keeps the slot until it ends (the generator's finally) or is closed unfinished
        resp.response = _releasing(resp.response, release)
        resp.call_on_close(release)
        return resp

    return wrapper


def _releasing(body: Iterable[bytes], release: Callable[[], None]) -> Iterator[bytes]:
    try:
        yield from body
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()
        release()


def client_gone_check() -> Callable[[], bool]:
    """A function that says whether this request's client has closed its connection: the socket
    reads as closed (EOF) or errors. gunicorn (gunicorn.socket) and werkzeug's server
    (werkzeug.socket) hand the socket over; with neither, the client is never seen to leave.

    A sync or gthread worker writes nothing while a file is being built, so a write failure
    would only be seen after the build; this look at the socket is what notices it during."""
    sock = request.environ.get("gunicorn.socket") or request.environ.get("werkzeug.socket")
    if not isinstance(sock, socket.socket):
        return lambda: False

    def gone() -> bool:
        try:
            readable, _, errored = select.select([sock], [], [sock], 0)
            if errored:
                return True
            if readable:
                return sock.recv(1, socket.MSG_PEEK) == b""  # EOF: the client closed; data: a pipelined request
        except (OSError, ValueError):
            return True
        return False

    return gone
