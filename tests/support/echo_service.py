# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A loopback service that echoes each request back in an error, as debug pages and some
gateways do: the request line, its headers (``Authorization`` included) and its body, placed at
a varying offset in a 4xx/5xx answer, in varying shapes (plain text, HTML, a JSON ``detail``,
a JSON ``message``, the headers as a JSON object).

It answers every request with an error: a non-idempotent request (POST) with 500 (ambiguous:
not retried), the others with a 4xx (not retried), so each request shows one echo and the run
stays quick.
"""

from __future__ import annotations

import itertools
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# Where the echo starts in the answer: around the 500-character limit of error texts and beyond.
OFFSETS = (0, 7, 120, 470, 488, 493, 499, 500, 501, 510, 999, 1000, 1234, 1500)
SHAPES = ("text", "json_detail", "html", "json_message", "json_headers")
STATUSES_4XX = (400, 403, 409, 422, 400)


class EchoService:
    """``with EchoService() as service: ...``; ``service.url`` is its base URL."""

    def __init__(self, answers: dict[tuple[str, str], Any] | None = None) -> None:
        # (method, path) -> a JSON body answered 200 instead of an echo (e.g. a discovery document),
        # so that a client gets as far as the request under test.
        self.answers = dict(answers or {})
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._replies = itertools.count()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> EchoService:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    @property
    def shown(self) -> list[tuple[int, str]]:
        """(offset, shape) of every echo sent, so a test can say what it covered."""
        return [(entry["offset"], entry["shape"]) for entry in self.requests]

    def answer(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, str, str]:
        fixed = self.answers.get((method, path.split("?", 1)[0]))
        if fixed is not None:
            return 200, "application/json", json.dumps(fixed)
        number = next(self._replies)
        # 14 offsets and 5 shapes: coprime, so 70 requests show every offset in every shape.
        offset = OFFSETS[number % len(OFFSETS)]
        shape = SHAPES[number % len(SHAPES)]
        status = 500 if method == "POST" else STATUSES_4XX[number % len(STATUSES_4XX)]
        with self._lock:
            self.requests.append({"method": method, "path": path, "offset": offset, "shape": shape})
        padding = ("request rejected; debugging echo follows " * 40)[:offset]
        header_lines = "\r\n".join(f"{name}: {value}" for name, value in headers.items())
        echo = f"{method} {path} HTTP/1.1\r\n{header_lines}\r\n\r\n{body.decode('utf-8', 'replace')}"
        if shape == "text":
            return status, "text/plain", padding + echo
        if shape == "html":
            return status, "text/html", f"<html><body><h1>Error</h1><pre>{padding}{echo}</pre></body></html>"
        if shape == "json_detail":
            return status, "application/scim+json", json.dumps({"status": str(status), "detail": padding + echo})
        if shape == "json_message":
            return status, "application/json", json.dumps({"code": "debug_echo", "message": padding + echo})
        return status, "application/json", json.dumps({"error": padding, "request_headers": headers})

    def _handler_class(self):
        service = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet tests
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, content_type, text = service.answer(self.command, self.path, dict(self.headers), body)
                payload = text.encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        return Handler
