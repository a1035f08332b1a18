# -*- coding: utf-8 -*-
"""A forwarding HTTP proxy on 127.0.0.1 that makes chosen requests fail, in front of a real service.

``FaultProxy(upstream).fail("GET", r"/Users", when=lambda req: "startIndex=101" in req.query, status=500)``
answers the matching requests itself and forwards the rest. Every request is recorded, so a
test can prove that no write reached the service.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import requests

WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


@dataclass
class Seen:
    method: str
    path: str
    query: str
    body: bytes


@dataclass
class Fault:
    method: str
    path: re.Pattern
    status: int
    body: Any
    when: Callable[[Seen], bool] | None = None
    hits: int = 0


@dataclass
class FaultProxy:
    upstream: str
    faults: list[Fault] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._session = requests.Session()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        prefix = urlsplit(self.upstream).path.rstrip("/")
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}{prefix}"

    def fail(self, method: str, path: str, status: int = 500, body: Any = None, when=None) -> Fault:
        fault = Fault(
            method, re.compile(path), status, body if body is not None else {"detail": "injected failure"}, when
        )
        self.faults.append(fault)
        return fault

    def writes(self) -> list[Seen]:
        return [s for s in self.seen if s.method in WRITE_METHODS]

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._session.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def _handler(self):
        proxy = self
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(self.upstream))

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet tests
                return

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                seen = Seen(self.command, parts.path, parts.query, body)
                with proxy._lock:
                    proxy.seen.append(seen)
                    fault = next(
                        (
                            f
                            for f in proxy.faults
                            if f.method == self.command
                            and f.path.search(parts.path)
                            and (f.when is None or f.when(seen))
                        ),
                        None,
                    )
                    if fault:
                        fault.hits += 1
                if fault:
                    payload = json.dumps(fault.body).encode()
                    self.send_response(fault.status)
                    self.send_header("Content-Type", "application/scim+json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                answer = proxy._session.request(
                    self.command, origin + self.path, data=body or None, headers=headers, timeout=30
                )
                self.send_response(answer.status_code)
                for name, value in answer.headers.items():
                    if name.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        return Handler
