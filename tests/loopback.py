"""A scripted HTTP server on 127.0.0.1 for the fetch tests: real sockets, no internet.

Answers are scripted per path (path with its query string): each request takes the next answer
of its path, and the last one repeats. An answer is an `Answer`, `HANG` (never answer, so the
client times out) or `DROP` (close the connection without a word). Every request is recorded.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


HANG = "hang"
DROP = "drop"


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class LoopbackServer:
    """`with LoopbackServer({"/x": [Answer(429, headers={"Retry-After": "7"}), Answer(200, b"ok")]}) as srv:`"""

    def __init__(self, script: dict[str, list[Any]]) -> None:
        self.script = {path: list(answers) for path, answers in script.items()}
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner._handle(self)

            def do_POST(self) -> None:
                owner._handle(self)

            def log_message(self, *args: Any) -> None:  # keep the test output quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()  # releases any HANG handler
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def requests_to(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        with self._lock:
            self.seen.append(Seen(handler.command, handler.path, dict(handler.headers), body))
            answers = self.script.get(handler.path)
            if not answers:
                answer: Any = Answer(404, b"not scripted: " + handler.path.encode())
            else:
                answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if answer == HANG:
            self._stop.wait(30)
            handler.close_connection = True
            return
        if answer == DROP:
            handler.close_connection = True
            return
        handler.send_response(answer.status)
        for name, value in answer.headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(answer.body)))
        handler.end_headers()
        handler.wfile.write(answer.body)
