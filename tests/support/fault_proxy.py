# -*- coding: utf-8 -*-
"""A forwarding HTTP proxy on 127.0.0.1 that makes chosen requests fail, in front of a real service.

It sits between a module and the service it talks to (scim2-server, or a fake on
``fake_service.py``): the module is given ``proxy.url`` instead of the service's URL, and every
request goes through the proxy, which forwards it or plays a fault instead:

=============  ==================================================================================
kind           what the client sees
=============  ==================================================================================
``429``        429 Too Many Requests with ``Retry-After`` (not forwarded)
``503``        503 Service Unavailable with ``Retry-After`` (not forwarded)
``500``        500 Internal Server Error (not forwarded)
``status``     any other status and body (not forwarded): what ``fail()`` sets up
``reset``      the connection reset (RST) after the request was read (not forwarded)
``timeout``    no answer for ``seconds`` (beyond the client's read timeout), then a reset (not
               forwarded: the service never saw it)
``slow``       forwarded, answered after ``seconds`` (under the client's timeout)
``lost``       forwarded (the service applied it), then the connection reset before the answer:
               "applied but the answer lost", the ambiguous write
=============  ==================================================================================

Faults are rules (``inject``): method, path regex, a ``when`` predicate on the request, how many
matching requests pass first (``skip``), how many get the fault (``times``; None: all). A seeded
random mode (``random_faults``) draws a fault per matching request from ``random.Random(seed)``.
``fail(method, path, status, body, when)`` is the original form (every matching request).

Every request is recorded (``seen``: method, path, query, body, the fault it got, the status the
service answered, whether it was forwarded), so a test can prove that no write reached the service
(``writes()``, ``forwarded()``) and count what was exercised (``injected``, ``summary()``).
``rewrite`` changes what is forwarded (a smaller page size than asked, say). ``disarm()`` stops
all faults (also from a playbook: ``POST {control_url}/disarm``), so a second
run in the same ansible-playbook is clean.
"""

from __future__ import annotations

import collections
import contextlib
import json
import random
import re
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
KINDS = ("429", "503", "500", "reset", "timeout", "slow", "lost")
FORWARDING_KINDS = frozenset({"slow", "lost"})
CONTROL_PREFIX = "/__fault_proxy__"
_STATUS_OF = {"429": 429, "503": 503, "500": 500}


@dataclass
class Seen:
    method: str
    path: str
    query: str
    body: bytes
    seq: int = 0
    fault: str | None = None  # the kind played, None when forwarded untouched
    point: str | None = None  # the fault's label (where it was aimed: "page", "write", ...)
    status: int | None = None  # what the service answered (None: not forwarded, or it failed)
    forwarded: bool = False

    @property
    def params(self) -> dict[str, list[str]]:
        return parse_qs(self.query)

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return None


@dataclass
class Fault:
    """One rule: the matching requests after the first ``skip`` get ``kind``, ``times`` of them."""

    method: str | None
    path: re.Pattern | None
    status: int = 500
    body: Any = None
    when: Callable[[Seen], bool] | None = None
    hits: int = 0
    kind: str = "status"
    headers: dict[str, str] = field(default_factory=dict)
    skip: int = 0
    times: int | None = None
    seconds: float = 0.0
    label: str | None = None
    matched: int = 0

    def matches(self, seen: Seen) -> bool:
        return (
            (self.method is None or self.method == seen.method)
            and (self.path is None or bool(self.path.search(seen.path)))
            and (self.when is None or bool(self.when(seen)))
        )

    def take(self, seen: Seen) -> bool:
        """Called under the proxy's lock for a matching request: whether it gets the fault."""
        self.matched += 1
        if self.matched <= self.skip or (self.times is not None and self.hits >= self.times):
            return False
        self.hits += 1
        return True


@dataclass
class RandomFaults:
    """A fault drawn per matching request: ``rate`` the chance of one, ``kinds`` drawn evenly."""

    seed: int
    rate: float
    kinds: tuple[str, ...]
    method: str | None = None
    path: re.Pattern | None = None
    when: Callable[[Seen], bool] | None = None
    seconds: float = 3.0
    label: str | None = None

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(KINDS)
        if unknown or not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"kinds must be among {KINDS} and rate within [0, 1]: {self.kinds}, {self.rate}")
        self._random = random.Random(self.seed)

    def draw(self, seen: Seen) -> str | None:
        matching = (
            (self.method is None or self.method == seen.method)
            and (self.path is None or bool(self.path.search(seen.path)))
            and (self.when is None or bool(self.when(seen)))
        )
        if not matching:
            return None
        roll, kind = self._random.random(), self._random.choice(self.kinds)
        return kind if roll < self.rate else None


@dataclass
class FaultProxy:
    upstream: str
    faults: list[Fault] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    upstream_timeout: float = 30.0
    # (path with query, body) -> the same, as forwarded: e.g. a smaller page size than the client asked
    # for, as services may answer (it makes a listing page through a handful of objects).
    rewrite: Callable[[str, bytes], tuple[str, bytes]] | None = None

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._local = threading.local()
        self.randomly: list[RandomFaults] = []
        self.armed = True
        self.disarmed_at: int | None = None  # len(seen) when disarmed: the requests before came armed
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        parts = urlsplit(self.upstream)
        prefix = parts.path.rstrip("/")
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.address = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self.url = self.address + prefix
        self.control_url = self.address + CONTROL_PREFIX

    # -- rules ---------------------------------------------------------------------------------
    def fail(self, method: str, path: str, status: int = 500, body: Any = None, when=None) -> Fault:
        """Every matching request is answered ``status`` with ``body`` (JSON), not forwarded."""
        fault = Fault(
            method, re.compile(path), status, body if body is not None else {"detail": "injected failure"}, when
        )
        with self._lock:
            self.faults.append(fault)
        return fault

    def inject(
        self,
        kind: str,
        method: str | None = None,
        path: str | None = None,
        *,
        when: Callable[[Seen], bool] | None = None,
        skip: int = 0,
        times: int | None = 1,
        seconds: float | None = None,
        retry_after: str = "1",
        label: str | None = None,
    ) -> Fault:
        """The matching requests after the first ``skip`` get fault ``kind`` (see the module doc), ``times`` of them."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        status = _STATUS_OF.get(kind, 0)
        headers = {"Retry-After": retry_after} if kind in ("429", "503") else {}
        body = {"detail": f"injected {kind}", "message": f"injected {kind}", "error_summary": f"injected {kind}/"}
        default_seconds = 3.0 if kind == "timeout" else 0.5
        fault = Fault(
            method,
            re.compile(path) if path else None,
            status,
            body,
            when,
            kind=kind,
            headers=headers,
            skip=skip,
            times=times,
            seconds=default_seconds if seconds is None else seconds,
            label=label,
        )
        with self._lock:
            self.faults.append(fault)
        return fault

    def random_faults(
        self,
        seed: int,
        rate: float,
        kinds: Iterable[str] = KINDS,
        method: str | None = None,
        path: str | None = None,
        *,
        when: Callable[[Seen], bool] | None = None,
        seconds: float = 3.0,
        label: str | None = None,
    ) -> RandomFaults:
        """Each matching request (no rule of ``inject`` taking it) gets a fault with chance ``rate``."""
        chance = RandomFaults(
            seed, rate, tuple(kinds), method, re.compile(path) if path else None, when, seconds, label
        )
        with self._lock:
            self.randomly.append(chance)
        return chance

    def disarm(self) -> None:
        """No more faults: every request is forwarded from now on."""
        with self._lock:
            self.armed = False
            self.disarmed_at = len(self.seen)

    def arm(self) -> None:
        with self._lock:
            self.armed = True

    def clear(self) -> None:
        """Drop every rule and the log."""
        with self._lock:
            self.faults.clear()
            self.randomly.clear()
            self.seen.clear()

    # -- what happened -------------------------------------------------------------------------
    def writes(self) -> list[Seen]:
        return [s for s in self.seen if s.method in WRITE_METHODS]

    def forwarded(self, method: str | None = None, path: str | None = None) -> list[Seen]:
        """The requests that reached the service (matching ``method`` and the ``path`` regex)."""
        pattern = re.compile(path) if path else None
        with self._lock:
            return [
                s
                for s in self.seen
                if s.forwarded
                and (method is None or s.method == method)
                and (pattern is None or pattern.search(s.path))
            ]

    @property
    def injected(self) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.fault]

    def summary(self) -> collections.Counter:
        """``Counter({("page", "503"): 2, ...})``: the faults played, by label and kind."""
        return collections.Counter((s.point or "-", s.fault) for s in self.injected)

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    # -- serving -------------------------------------------------------------------------------
    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def _choose(self, seen: Seen) -> Fault | None:
        with self._lock:
            seen.seq = len(self.seen) + 1
            self.seen.append(seen)
            if not self.armed:
                return None
            for fault in self.faults:
                if fault.matches(seen) and fault.take(seen):
                    seen.fault, seen.point = fault.kind if fault.kind != "status" else str(fault.status), fault.label
                    return fault
            for chance in self.randomly:
                kind = chance.draw(seen)
                if kind:
                    seen.fault, seen.point = kind, chance.label
                    return self._drawn(kind, chance)
        return None

    @staticmethod
    def _drawn(kind: str, chance: RandomFaults) -> Fault:
        status = _STATUS_OF.get(kind, 0)
        headers = {"Retry-After": "1"} if kind in ("429", "503") else {}
        body = {"detail": f"injected {kind}", "message": f"injected {kind}", "error_summary": f"injected {kind}/"}
        seconds = chance.seconds if kind == "timeout" else 0.5
        return Fault(None, None, status, body, kind=kind, headers=headers, seconds=seconds, label=chance.label)

    def _control(self, path: str) -> tuple[int, dict]:
        action = path[len(CONTROL_PREFIX) :].strip("/")
        if action == "disarm":
            self.disarm()
        elif action == "arm":
            self.arm()
        elif action != "status":
            return 404, {"error": f"unknown control {action!r}: disarm, arm or status"}
        return 200, {"armed": self.armed, "injected": len(self.injected)}

    def _forward(self, handler: BaseHTTPRequestHandler, seen: Seen, body: bytes) -> requests.Response:
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in ("host", "content-length")}
        path = handler.path
        if self.rewrite is not None:
            path, body = self.rewrite(path, body)
        answer = self._session().request(
            handler.command,
            self.origin + path,
            data=body or None,
            headers=headers,
            timeout=self.upstream_timeout,
        )
        seen.forwarded, seen.status = True, answer.status_code
        return answer

    def _handler(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet tests
                return

            def _reply(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _reset(self) -> None:
                """RST instead of an answer: the client sees "connection reset by peer"."""
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.wfile.flush()
                try:
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                except OSError:
                    pass

            def handle_one_request(self) -> None:
                try:
                    super().handle_one_request()
                except (OSError, ValueError):
                    self.close_connection = True  # a connection this proxy reset

            def finish(self) -> None:
                with contextlib.suppress(OSError, ValueError):  # the connection was reset on purpose
                    super().finish()

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                if parts.path.startswith(CONTROL_PREFIX):
                    status, answer = proxy._control(parts.path)
                    self._reply(status, json.dumps(answer).encode(), {"Content-Type": "application/json"})
                    return
                seen = Seen(self.command, parts.path, parts.query, body)
                fault = proxy._choose(seen)
                kind = fault.kind if fault else None
                if kind in ("reset", "timeout"):
                    if kind == "timeout":
                        time.sleep(fault.seconds)
                    self._reset()
                    return
                if kind in _STATUS_OF or kind == "status":
                    payload = json.dumps(fault.body).encode()
                    self._reply(fault.status, payload, {"Content-Type": "application/json", **fault.headers})
                    return
                try:
                    answer = proxy._forward(self, seen, body)
                except requests.RequestException:
                    self._reset()
                    return
                if kind == "lost":
                    self._reset()
                    return
                if kind == "slow":
                    time.sleep(fault.seconds)
                headers = {
                    name: value
                    for name, value in answer.headers.items()
                    if name.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding")
                }
                self._reply(answer.status_code, answer.content, headers)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        return Handler
