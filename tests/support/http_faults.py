# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A tiny real HTTP server on 127.0.0.1 that answers from a script, to test the HTTP layer.

Each request takes the next scripted ``Reply`` (status, headers, body), or a connection reset,
or a delay longer than the client's read timeout. Requests are recorded for assertions.
"""

from __future__ import annotations

import json
import socket
import ssl
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict/list -> JSON; str -> text; None -> empty
    headers: dict[str, str] = field(default_factory=dict)
    reset: bool = False  # close the connection abruptly instead of answering
    delay: float = 0.0  # seconds before answering (to provoke a read timeout)


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class ScriptedHttpServer:
    """``with ScriptedHttpServer() as server: server.script(Reply(429, ...), Reply(200, ...))``."""

    def __init__(self, certfile: str | None = None, keyfile: str | None = None):
        self.replies: deque[Reply] = deque()
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self.scheme = "http"
        if certfile:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(certfile, keyfile)
            self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
            self.scheme = "https"
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="scripted-http", daemon=True
        )

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self.replies.extend(replies)

    def start(self) -> ScriptedHttpServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> ScriptedHttpServer:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def _next_reply(self) -> Reply:
        with self._lock:
            if self.replies:
                return self.replies.popleft()
        return Reply(599, {"detail": "script exhausted"})

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet tests
                pass

            def handle_one_request(self) -> None:
                try:
                    super().handle_one_request()
                except (ConnectionError, ssl.SSLError, OSError):
                    self.close_connection = True

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                server.requests.append(RecordedRequest(self.command, self.path, dict(self.headers.items()), body))
                reply = server._next_reply()
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.reset:
                    # RST instead of FIN: the client sees "connection reset" after sending.
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.close_connection = True
                    self.connection.close()
                    return
                if isinstance(reply.body, (dict, list)):
                    payload = json.dumps(reply.body).encode()
                    content_type = "application/json"
                elif isinstance(reply.body, str):
                    payload = reply.body.encode()
                    content_type = "text/plain"
                else:
                    payload = b""
                    content_type = None
                self.send_response(reply.status)
                if content_type and "Content-Type" not in reply.headers:
                    self.send_header("Content-Type", content_type)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if payload:
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        return Handler


def make_self_signed_cert(directory: str) -> tuple[str, str]:
    """A throwaway certificate for 127.0.0.1 (cert path, key path), made with ``openssl``."""
    import os
    import subprocess

    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key
