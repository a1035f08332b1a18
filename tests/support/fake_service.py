# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The base of the stateful vendor fakes (Box, Dropbox, PingID): a real HTTP server on 127.0.0.1.

A fake is a subclass that holds the vendor's state and declares its routes::

    class ThingFake(FakeService):
        def __init__(self, **kw):
            super().__init__(validator=OpenAPIValidator("openapi.json"), **kw)
            self.things = {}

        @route("GET", "/2.0/things/{thing_id}")
        def get_thing(self, call, thing_id):
            if thing_id not in self.things:
                raise FakeError(404, "not_found", "Not Found")
            return self.things[thing_id]                # dict -> 200 JSON

        def error_response(self, status, code, message, **extra):
            return self.json({"type": "error", "status": status, "code": code, "message": message}, status)

        def state_dump(self):
            return {"things": self.things}

What the base does for every request, in this order: route it (unknown -> 404, recorded as
outside the description), parse the body, validate it against the vendor's description
(``Validator``), wait ``latency``, play a scripted or random fault (``faults``), apply the rate
limit (429 + Retry-After), check authentication (bearer tokens from ``issue_token``), answer 400
when validation failed, call the handler under ``lock``, validate the response, log it all.
Every vendor-specific body (errors, 401, 429, 400, 404) comes from a hook the subclass overrides.

Handlers receive a ``Call`` and the path parameters. They return a werkzeug ``Response`` (see
``json`` / ``text`` / ``empty``), a body (dict or list -> 200 JSON, str -> text, None -> 204),
or ``(status, body[, headers])``; they raise ``FakeError`` for the vendor's errors.

It supersedes ``http_faults.ScriptedHttpServer`` for anything stateful; that one stays for the
HTTP layer's unit tests, which want a reply script, not a service.
"""

from __future__ import annotations

import collections
import contextlib
import difflib
import json
import math
import random
import re
import secrets
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MASK = "***"
_PLACEHOLDER = re.compile(r"\{(\w+)(?::(\w+))?\}")


# -- declaring routes ------------------------------------------------------------------------
@dataclass(frozen=True)
class Route:
    method: str
    template: str  # "/2.0/users/{user_id}", as declared
    handler: str  # the subclass method's name
    name: str  # what validators call it (Dropbox: "team/members/list_v2"); default the template
    auth: bool = True  # check the bearer token (the token endpoint says False)
    validate: bool = True  # validate against the description (False: a route it does not describe)
    write: bool = True  # counted by writes(); default: the method is POST/PUT/PATCH/DELETE

    @property
    def key(self) -> str:
        return f"{self.method} {self.template}"


def route(
    method: str,
    template: str,
    *,
    name: str | None = None,
    auth: bool = True,
    validate: bool = True,
    write: bool | None = None,
) -> Callable:
    """Declare a handler: ``@route("GET", "/users/{user_id}")`` (``{n:int}``, ``{n:path}`` also work)."""
    method = method.upper()

    def decorate(function: Callable) -> Callable:
        routes = list(getattr(function, "_fake_routes", ()))
        routes.append(
            dict(
                method=method,
                template=template,
                name=name or template,
                auth=auth,
                validate=validate,
                write=method in WRITE_METHODS if write is None else write,
            )
        )
        function._fake_routes = routes
        return function

    return decorate


def template_regex(template: str) -> re.Pattern:
    """``/users/{user_id}`` -> a regex matching its concrete paths (``{p:path}`` spans slashes)."""
    parts, last = [], 0
    for match in _PLACEHOLDER.finditer(template):
        parts.append(re.escape(template[last : match.start()]))
        converter = match.group(2)
        parts.append(r".+" if converter == "path" else r"\d+" if converter == "int" else r"[^/]+")
        last = match.end()
    parts.append(re.escape(template[last:]))
    return re.compile("".join(parts))


def _werkzeug_rule(template: str) -> str:
    return _PLACEHOLDER.sub(lambda m: f"<{m.group(2)}:{m.group(1)}>" if m.group(2) else f"<{m.group(1)}>", template)


# -- what handlers raise and receive ----------------------------------------------------------
class FakeError(Exception):
    """A vendor error: the base answers ``error_response(status, code, message, **extra)``.

    ``headers`` are added to that answer; ``response`` (a ready werkzeug Response) is sent as is.
    """

    def __init__(
        self,
        status: int,
        code: str = "",
        message: str = "",
        *,
        headers: dict[str, str] | None = None,
        response: Response | None = None,
        **extra: Any,
    ):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.extra = status, code, message, extra
        self.headers = headers or {}
        self.response = response


class Unauthorized(Exception):
    """Raised by ``authenticate``: ``reason`` is "missing", "invalid", "expired" or the subclass's own."""

    def __init__(self, reason: str, message: str = ""):
        super().__init__(message or reason)
        self.reason, self.message = reason, message or reason


class OutsideDescription(Exception):
    """Raised by a validator: the vendor's description has no such operation."""


@dataclass
class Token:
    value: str
    expires_at: float | None  # on the fake's clock; None: never
    claims: dict[str, Any] = field(default_factory=dict)
    max_uses: int | None = None  # expires after this many authenticated requests (mid-run expiry)
    uses: int = 0
    revoked: bool = False

    def expired(self, now: float) -> bool:
        if self.revoked:
            return True
        if self.expires_at is not None and now >= self.expires_at:
            return True
        return self.max_uses is not None and self.uses >= self.max_uses


@dataclass
class Call:
    """One request as handlers and validators see it."""

    request: Request
    seq: int
    method: str
    path: str
    route: Route | None
    params: dict[str, Any]
    query: Any  # werkzeug MultiDict: call.query.get("limit", type=int)
    headers: Any  # werkzeug Headers
    raw_body: bytes
    body: Any  # parsed: JSON, form dict, text, or the subclass's parse_body
    token: Any = None  # what authenticate() returned

    @property
    def name(self) -> str:
        return self.route.name if self.route else self.path

    @property
    def content_type(self) -> str:
        return self.request.content_type or ""


@dataclass(frozen=True)
class ValidationIssue:
    kind: str  # "request" | "response" | "outside" (no such operation) | "fake" (a handler crashed)
    method: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.method} {self.path}: {self.message}"


@dataclass
class LoggedRequest:
    seq: int
    method: str
    path: str
    route: str | None  # the route's template, None when no route matched
    name: str | None
    query: dict[str, Any]  # one value -> str, several -> list
    headers: dict[str, str]  # Authorization masked
    body: Any  # parsed, secret fields masked
    status: int | None = None  # what was answered; None when the connection was dropped
    validation_errors: list[str] = field(default_factory=list)
    fault: str | None = None  # "status", "reset", "delay", "drop_after_write", "rate_limit"
    write: bool = False
    started: float = 0.0
    duration: float = 0.0
    reply: bytes = b""


# -- validators ------------------------------------------------------------------------------
class Validator:
    """Checks requests (and responses) against a vendor's published description.

    Each method returns a list of messages, empty when valid, and raises ``OutsideDescription``
    when the description has no such operation.
    """

    def validate_request(self, call: Call) -> list[str]:
        return []

    def validate_response(self, call: Call, response: Response) -> list[str]:
        return []


class OpenAPIValidator(Validator):
    """Validation against an OpenAPI 3 description (a dict, or a JSON/YAML file path), by openapi-core.

    The fake listens on 127.0.0.1 but the description names the vendor's servers: requests are
    checked as if sent to ``origin`` (default: the scheme and host of the description's first
    server), with the fake's own path, so ``/2.0/users`` on the fake is
    ``https://api.box.com/2.0/users`` for a description whose server is ``https://api.box.com/2.0``.
    ``check_spec=False`` skips validating the description itself (faster for a large one).
    """

    def __init__(
        self,
        spec: dict | str | Path,
        origin: str | None = None,
        check_spec: bool = True,
        validate_responses: bool = True,
    ):
        from openapi_core import Config, OpenAPI

        config = Config() if check_spec else Config(spec_validator_cls=None)
        if isinstance(spec, dict):
            self.openapi = OpenAPI.from_dict(spec, config=config)
            servers = spec.get("servers") or []
        else:
            self.openapi = OpenAPI.from_file_path(str(spec), config=config)
            servers = self.openapi.spec.get("servers", []) or []
            servers = [{"url": str(server["url"])} for server in servers]
        if origin is None:
            first = urlsplit(servers[0]["url"]) if servers else None
            origin = f"{first.scheme}://{first.netloc}" if first and first.netloc else "http://localhost"
        self.origin = origin.rstrip("/")
        self.validate_responses = validate_responses

    def validate_request(self, call: Call) -> list[str]:
        return self._messages(self.openapi.iter_request_errors(_OpenAPIRequest(call, self.origin)))

    def validate_response(self, call: Call, response: Response) -> list[str]:
        if not self.validate_responses:
            return []
        errors = self.openapi.iter_response_errors(_OpenAPIRequest(call, self.origin), _OpenAPIResponse(response))
        return self._messages(errors)

    @staticmethod
    def _messages(errors: Iterable[Exception]) -> list[str]:
        from openapi_core.templating.paths.exceptions import PathError

        messages = []
        for error in errors:
            if isinstance(error, PathError):
                raise OutsideDescription(str(error))
            messages.append(_openapi_message(error))
        return messages


def _openapi_message(error: Exception) -> str:
    """A short message ("Request body validation error: name: 'x' is too long"), without the value dump."""
    cause = error.__cause__
    schema_errors = list(getattr(cause, "schema_errors", None) or ())
    text = str(error)
    if schema_errors:
        head = text.split(": Value ", 1)[0]
        shown = []
        for schema_error in schema_errors:
            where = "/".join(str(part) for part in getattr(schema_error, "absolute_path", ()) or ())
            message = getattr(schema_error, "message", str(schema_error))
            shown.append(f"{where}: {message}" if where else message)
        return f"{head}: {'; '.join(shown)}"
    return f"{text}: {cause}" if cause is not None and str(cause) not in text else text


class _OpenAPIRequest:
    """openapi-core's Request protocol for a Call, as if sent to the vendor's origin."""

    def __init__(self, call: Call, origin: str):
        from openapi_core.datatypes import RequestParameters

        self.host_url = origin
        self.path = call.path
        self.method = call.method.lower()
        self.body = call.raw_body
        self.content_type = call.request.content_type or "application/octet-stream"
        self.parameters = RequestParameters(
            query=call.request.args, header=call.request.headers, cookie=call.request.cookies
        )


class _OpenAPIResponse:
    def __init__(self, response: Response):
        self.status_code = response.status_code
        self.data = response.get_data()
        self.content_type = response.mimetype or ""
        self.headers = response.headers


class CallableValidator(Validator):
    """Validation by plain callables, such as the Dropbox SDK's Stone validators.

    ``check_request(name, body)`` and ``check_response(name, status, body)`` receive the route's
    name (``Route.name``, or ``name_of(call)``) and the parsed body. They return None or [] when
    valid, a message or a list of messages when not, or raise: ``OutsideDescription`` for an
    unknown route, any other exception for an invalid body (its text is the message). For
    Dropbox, ``check_request`` would decode the body with the route's ``arg_type`` via
    ``dropbox.stone_serializers.json_compat_obj_decode`` and ``check_response`` the result with
    its ``result_type`` (or ``error_type`` for a 409).
    """

    def __init__(
        self,
        check_request: Callable[[str, Any], Any] | None = None,
        check_response: Callable[[str, int, Any], Any] | None = None,
        name_of: Callable[[Call], str] | None = None,
    ):
        self.check_request = check_request
        self.check_response = check_response
        self.name_of = name_of or (lambda call: call.name)

    def validate_request(self, call: Call) -> list[str]:
        if self.check_request is None:
            return []
        return self._run(self.check_request, self.name_of(call), call.body)

    def validate_response(self, call: Call, response: Response) -> list[str]:
        if self.check_response is None:
            return []
        data = response.get_data()
        try:
            body = json.loads(data) if data and "json" in (response.mimetype or "") else data.decode("utf-8", "replace")
        except ValueError:
            body = data.decode("utf-8", "replace")
        return self._run(self.check_response, self.name_of(call), response.status_code, body)

    @staticmethod
    def _run(check: Callable, *args: Any) -> list[str]:
        try:
            result = check(*args)
        except OutsideDescription:
            raise
        except Exception as exc:  # noqa: BLE001 - any validator failure is a validation message
            return [f"{type(exc).__name__}: {exc}"]
        if not result:
            return []
        return [result] if isinstance(result, str) else [str(item) for item in result]


# -- faults ----------------------------------------------------------------------------------
FAULT_KINDS = ("status", "reset", "delay", "drop_after_write")


@dataclass
class Fault:
    """The next ``times`` requests matching (method, path) get this fault (``times=None``: all)."""

    kind: str
    method: str | None
    path: str | None  # a route template, a concrete path, or None for any
    times: int | None = 1
    status: int = 503
    code: str | None = None
    message: str | None = None
    body: Any = None  # a ready body instead of error_response(...)
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    hits: int = 0

    def exhausted(self) -> bool:
        return self.times is not None and self.hits >= self.times


@dataclass
class RandomFaults:
    """Faults drawn per matching request from a ``random.Random(seed)``: reproducible runs."""

    seed: int
    rates: dict[str, float]
    method: str | None = None
    path: str | None = None
    status: int = 503
    seconds: float = 2.0
    injected: list[tuple[int, str, str, str]] = field(default_factory=list)  # (seq, method, path, kind)

    def __post_init__(self) -> None:
        unknown = set(self.rates) - set(FAULT_KINDS)
        if unknown or sum(self.rates.values()) > 1.0:
            raise ValueError(f"fault rates must name {FAULT_KINDS} and add up to at most 1: {self.rates}")
        self._random = random.Random(self.seed)

    def draw(self) -> str | None:
        roll, threshold = self._random.random(), 0.0
        for kind in FAULT_KINDS:
            threshold += self.rates.get(kind, 0.0)
            if roll < threshold:
                return kind
        return None


class Faults:
    """Scripted faults (first match wins, in the order added), then the random mode if set."""

    def __init__(self, service: FakeService):
        self._service = service
        self.scripted: list[Fault] = []
        self.randomly: RandomFaults | None = None

    def status(
        self,
        method: str | None,
        path: str | None,
        status: int,
        *,
        times: int | None = 1,
        code: str | None = None,
        message: str | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Fault:
        """Answer ``status`` (the vendor's error body, or ``body``) without handling the request."""
        return self._add(Fault("status", method, path, times, status, code, message, body, dict(headers or {})))

    def reset(self, method: str | None, path: str | None, *, times: int | None = 1) -> Fault:
        """Reset the connection (RST) after reading the request, before handling it."""
        return self._add(Fault("reset", method, path, times))

    def delay(self, method: str | None, path: str | None, seconds: float, *, times: int | None = 1) -> Fault:
        """Wait ``seconds`` (beyond the client's timeout), then handle and answer as usual."""
        return self._add(Fault("delay", method, path, times, seconds=seconds))

    def drop_after_write(self, method: str | None, path: str | None, *, times: int | None = 1) -> Fault:
        """The ambiguous write: handle the request (state changes), then reset instead of answering."""
        return self._add(Fault("drop_after_write", method, path, times))

    def random(
        self,
        seed: int,
        *,
        status: float = 0.0,
        reset: float = 0.0,
        delay: float = 0.0,
        drop_after_write: float = 0.0,
        status_code: int = 503,
        delay_seconds: float = 2.0,
        method: str | None = None,
        path: str | None = None,
    ) -> RandomFaults:
        """Each matching request draws one fault kind with these probabilities (a fixed seed)."""
        rates = {"status": status, "reset": reset, "delay": delay, "drop_after_write": drop_after_write}
        with self._service.lock:
            self.randomly = RandomFaults(seed, rates, method, path, status_code, delay_seconds)
            return self.randomly

    def clear(self) -> None:
        with self._service.lock:
            self.scripted.clear()
            self.randomly = None

    def _add(self, fault: Fault) -> Fault:
        with self._service.lock:
            self.scripted.append(fault)
        return fault

    def _pick(self, call: Call) -> Fault | None:
        """Under the service lock: the fault this request gets, its hit counted."""
        matches = self._service._matches
        for fault in self.scripted:
            if not fault.exhausted() and matches(call.method, call.route, call.path, fault.method, fault.path):
                fault.hits += 1
                return fault
        chance = self.randomly
        if chance and matches(call.method, call.route, call.path, chance.method, chance.path):
            kind = chance.draw()
            if kind:
                chance.injected.append((call.seq, call.method, call.path, kind))
                return Fault(kind, None, None, None, status=chance.status, seconds=chance.seconds, hits=1)
        return None


@dataclass
class RateLimit:
    """A token bucket: ``limit`` requests per ``window`` seconds, refilled continuously."""

    limit: int
    window: float
    method: str | None = None
    path: str | None = None
    retry_after: float | None = None  # a fixed Retry-After; default: when the next token is there
    tokens: float = 0.0
    updated: float = 0.0
    hits: int = 0  # requests answered 429

    def take(self, now: float) -> float | None:
        """None when the request may pass, else the seconds until it could."""
        rate = self.limit / self.window
        self.tokens = min(float(self.limit), self.tokens + (now - self.updated) * rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return None
        self.hits += 1
        return (1.0 - self.tokens) / rate


class ManualClock:
    """A clock tests move by hand: ``FakeService(clock=clock)`` and ``HttpClient(sleep=clock.advance)``."""

    def __init__(self, start: float = 1000.0):
        self.now = start
        self.slept: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.slept.append(seconds)
            self.now += max(0.0, seconds)

    sleep = advance


# -- the server --------------------------------------------------------------------------------
class _DropConnection(ConnectionError):
    """Raised inside the WSGI app: the request handler resets the connection instead of answering."""


class _QuietHandler(WSGIRequestHandler):
    def log(self, type: str, message: str, *args: Any) -> None:  # noqa: A002 - werkzeug's signature
        return

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return

    def connection_dropped(self, error: BaseException, environ: Any = None) -> None:
        self.close_connection = True
        if isinstance(error, _DropConnection):
            # RST instead of FIN: the client sees "connection reset" after it sent its request.
            try:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
            except OSError:
                pass


class FakeService:
    """A vendor fake on 127.0.0.1 (HTTPS with ``certfile``/``keyfile``), started in a thread.

    Knobs tests turn: ``latency`` (seconds per request), ``rate_limit(n, per)`` (both also
    constructor options, off by default; the bench sets them for every fake), ``faults``,
    ``issue_token`` / ``expire_token``; what tests read: ``requests``, ``validation_errors``,
    ``requests_matching``, ``count_by_route``, ``writes``, ``snapshot``.
    """

    #: names of body fields masked in the request log (top level of JSON or form bodies)
    masked_fields = frozenset({"client_secret", "password", "refresh_token", "assertion", "access_token"})

    def __init__(
        self,
        *,
        validator: Validator | Sequence[Validator] | None = None,
        certfile: str | None = None,
        keyfile: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        rate_limit: tuple[int, float] | None = None,
    ):
        """``latency``: seconds every request waits before it is answered (default none);
        ``rate_limit``: ``(requests, per_seconds)`` as ``rate_limit()`` sets it, from ``start()``
        on (after a subclass's ``reset()`` in its constructor; default none)."""
        if validator is None:
            self.validators: list[Validator] = []
        elif isinstance(validator, Validator):
            self.validators = [validator]
        else:
            self.validators = list(validator)
        self.clock = clock
        self.lock = threading.RLock()  # guards the fake's state; handlers run holding it
        self.latency = float(latency)
        self.faults = Faults(self)
        self.rate_limiter: RateLimit | None = None
        self.tokens: dict[str, Token] = {}
        self.requests: list[LoggedRequest] = []
        self.validation_errors: list[ValidationIssue] = []
        self._local = threading.local()
        self._stopping = threading.Event()
        self._routes, self._url_map = self._collect_routes()
        self._templates = {r.template for r in self._routes.values()}
        self._regex_cache: dict[str, re.Pattern] = {}
        ssl_context = (certfile, keyfile) if certfile else None
        self._server = make_server(
            host, port, self._wsgi, threaded=True, request_handler=_QuietHandler, ssl_context=ssl_context
        )
        self.host = host
        self.port = self._server.server_port
        self.scheme = "https" if certfile else "http"
        self._thread: threading.Thread | None = None
        self._started_rate_limit = rate_limit

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def start(self) -> FakeService:
        if self._started_rate_limit is not None and self.rate_limiter is None:
            self.rate_limit(*self._started_rate_limit)
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"fake-{type(self).__name__}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # ends latency and delay waits at once
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> FakeService:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    @classmethod
    def fixture(cls, *args: Any, scope: str = "function", check_validation: bool = False, **kwargs: Any):
        """A pytest fixture that runs one fake: ``box = BoxFake.fixture()`` in a test module or conftest.

        ``check_validation``: the fixture fails the test when the fake recorded validation errors.
        """
        import pytest

        @pytest.fixture(scope=scope)
        def fake_fixture():
            with cls(*args, **kwargs) as fake:
                yield fake
                if check_validation:
                    fake.assert_valid()

        return fake_fixture

    # -- hooks a subclass overrides ------------------------------------------------------------
    def state_dump(self) -> Any:
        """The fake's whole state as JSON-able data (for ``snapshot``)."""
        raise NotImplementedError(f"{type(self).__name__} must define state_dump() to be snapshot")

    def error_response(self, status: int, code: str, message: str, **extra: Any) -> Response:
        """The vendor's error body for a status + code + message (default: a plain JSON object)."""
        return self.json({"status": status, "code": code, "message": message, **extra}, status)

    def unauthorized_response(self, reason: str, message: str) -> Response:
        """The vendor's 401 (``reason``: "missing", "invalid", "expired" or authenticate()'s own)."""
        return self.error_response(401, reason, message)

    def rate_limited_response(self, retry_after: float) -> Response:
        """The vendor's 429 body (Dropbox: JSON ``retry_after``); the base adds the ``Retry-After`` header."""
        return self.error_response(429, "rate_limit_exceeded", "Request rate limit exceeded, please try again later")

    def validation_failed_response(self, errors: list[str]) -> Response:
        """The vendor's answer to a request its description rejects (default 400)."""
        return self.error_response(400, "bad_request", "; ".join(errors))

    def not_found_response(self) -> Response:
        """The vendor's answer to a path it does not serve."""
        return self.error_response(404, "not_found", "Not Found")

    def authenticate(self, call: Call) -> Any:
        """Who is calling; raise ``Unauthorized``. Default: a bearer token from ``issue_token``."""
        header = call.headers.get("Authorization", "")
        scheme, _sep, value = header.partition(" ")
        if not header:
            raise Unauthorized("missing", "no access token")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthorized("invalid", "not a bearer token")
        with self.lock:
            token = self.tokens.get(value.strip())
            if token is None:
                raise Unauthorized("invalid", "unknown access token")
            if token.expired(self.clock()):
                raise Unauthorized("expired", "access token expired")
            token.uses += 1
            return token

    def parse_body(self, request: Request, raw: bytes) -> Any:
        """The parsed body: JSON, a form as a dict, else text (PingID overrides: a JWS). Raise FakeError."""
        if not raw:
            return None
        mimetype = request.mimetype or ""
        if "json" in mimetype:
            try:
                return json.loads(raw)
            except ValueError as exc:
                raise FakeError(400, "bad_request", f"request body is not valid JSON: {exc}") from None
        if mimetype == "application/x-www-form-urlencoded":
            form = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
            return {key: values[0] if len(values) == 1 else values for key, values in form.items()}
        return raw.decode("utf-8", "replace")

    # -- response helpers --------------------------------------------------------------------
    @staticmethod
    def json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        """A JSON answer (``None`` is written ``null``, as Dropbox answers Void routes)."""
        return Response(json.dumps(body), status=status, headers=headers, mimetype="application/json")

    @staticmethod
    def text(body: str, status: int = 200, headers: dict[str, str] | None = None, mimetype="text/plain") -> Response:
        return Response(body, status=status, headers=headers, mimetype=mimetype)

    @staticmethod
    def empty(status: int = 204, headers: dict[str, str] | None = None) -> Response:
        return Response(b"", status=status, headers=headers)

    @property
    def current_call(self) -> Call | None:
        """The request being served on this thread (for error bodies that carry a request id)."""
        return getattr(self._local, "call", None)

    # -- tokens ------------------------------------------------------------------------------
    def issue_token(
        self, ttl: float | None = 3600.0, *, max_uses: int | None = None, value: str | None = None, **claims: Any
    ) -> str:
        """A bearer token the fake accepts for ``ttl`` seconds of its clock and/or ``max_uses`` requests."""
        value = value or secrets.token_urlsafe(24)
        with self.lock:
            expires = None if ttl is None else self.clock() + ttl
            self.tokens[value] = Token(value, expires, dict(claims), max_uses)
        return value

    def expire_token(self, value: str | None = None) -> None:
        """Expire one token, or every token (the next request with it gets the vendor's 401)."""
        with self.lock:
            for token in [self.tokens[value]] if value else list(self.tokens.values()):
                token.revoked = True

    # -- rate limit --------------------------------------------------------------------------
    def rate_limit(
        self,
        requests: int | None,
        per: float = 60.0,
        *,
        method: str | None = None,
        path: str | None = None,
        retry_after: float | None = None,
    ) -> RateLimit | None:
        """At most ``requests`` per ``per`` seconds (token bucket, full at start); None turns it off."""
        with self.lock:
            if requests is None:
                self.rate_limiter = None
            else:
                self.rate_limiter = RateLimit(
                    requests, per, method, path, retry_after, tokens=float(requests), updated=self.clock()
                )
            return self.rate_limiter

    # -- the log -----------------------------------------------------------------------------
    def requests_matching(self, method: str | None = None, path: str | None = None) -> list[LoggedRequest]:
        """Logged requests by method and route template (``/users/{user_id}``) or concrete path."""
        with self.lock:
            return [
                entry
                for entry in self.requests
                if self._matches(entry.method, entry.route, entry.path, method, path, logged=True)
            ]

    def count_by_route(self) -> collections.Counter:
        """``Counter({"GET /users/{user_id}": 3, ...})``; a request no route matched counts by its path."""
        with self.lock:
            return collections.Counter(f"{e.method} {e.route or e.path}" for e in self.requests)

    def writes(self) -> list[LoggedRequest]:
        """The requests to write routes (``route(write=...)``), whatever their answer."""
        with self.lock:
            return [entry for entry in self.requests if entry.write]

    def clear_log(self) -> None:
        with self.lock:
            self.requests.clear()
            self.validation_errors.clear()

    def assert_valid(self) -> None:
        """Fail with every recorded issue when any request or response left the description."""
        with self.lock:
            issues = list(self.validation_errors)
        if issues:
            raise AssertionError("the fake recorded validation errors:\n" + "\n".join(map(str, issues)))

    # -- snapshots ---------------------------------------------------------------------------
    def snapshot(self) -> bytes:
        """The state as canonical JSON bytes: equal snapshots mean nothing was written."""
        with self.lock:
            return json.dumps(self.state_dump(), sort_keys=True, indent=1, ensure_ascii=False, default=str).encode()

    def assert_unchanged(self, before: bytes) -> None:
        """Fail with a diff of the state when it differs from ``before`` (a ``snapshot()``)."""
        after = self.snapshot()
        if after != before:
            diff = difflib.unified_diff(
                before.decode().splitlines(), after.decode().splitlines(), "before", "after", lineterm="", n=2
            )
            raise AssertionError("the fake's state changed:\n" + "\n".join(diff))

    # -- internals ---------------------------------------------------------------------------
    def _collect_routes(self) -> tuple[dict[str, Route], Map]:
        routes: dict[str, Route] = {}
        rules = []
        seen: set[str] = set()
        for klass in type(self).__mro__:
            for attribute, function in vars(klass).items():
                if attribute in seen or not hasattr(function, "_fake_routes"):
                    continue
                seen.add(attribute)
                for index, spec in enumerate(function._fake_routes):
                    declared = Route(handler=attribute, **spec)
                    endpoint = f"{attribute}#{index}"
                    routes[endpoint] = declared
                    rules.append(Rule(_werkzeug_rule(declared.template), methods=[declared.method], endpoint=endpoint))
        return routes, Map(rules, strict_slashes=False, merge_slashes=False)

    def _matches(
        self,
        method: str,
        declared: Any,
        path: str,
        want_method: str | None,
        want_path: str | None,
        logged: bool = False,
    ) -> bool:
        if want_method is not None and want_method.upper() != method:
            return False
        if want_path is None:
            return True
        template = declared if logged else (declared.template if declared else None)
        if template == want_path:
            return True
        if want_path in self._templates:  # a declared template matches its own route only
            return False
        pattern = self._regex_cache.get(want_path)
        if pattern is None:
            pattern = self._regex_cache[want_path] = template_regex(want_path)
        return bool(pattern.fullmatch(path))

    def _mask_body(self, body: Any) -> Any:
        if isinstance(body, dict):
            return {k: MASK if k in self.masked_fields and v else v for k, v in body.items()}
        return body

    def _record_issue(self, call: Call, kind: str, messages: Iterable[str], entry: LoggedRequest) -> None:
        with self.lock:
            for message in messages:
                self.validation_errors.append(ValidationIssue(kind, call.method, call.path, message))
                entry.validation_errors.append(f"{kind}: {message}")

    def _pause(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)

    def _wsgi(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        request = Request(environ)
        response = self._serve(request)
        return response(environ, start_response)

    def _serve(self, request: Request) -> Response:
        started = time.monotonic()
        raw = request.get_data(cache=True)
        method = request.method.upper()
        adapter = self._url_map.bind_to_environ(request.environ)
        try:
            endpoint, params = adapter.match(request.path, method=method)
            declared: Route | None = self._routes[endpoint]
        except (NotFound, MethodNotAllowed):
            endpoint, params, declared = None, {}, None
        with self.lock:
            seq = len(self.requests) + 1
            headers = {
                k: (f"{v.partition(' ')[0]} {MASK}" if k.lower() in ("authorization", "proxy-authorization") else v)
                for k, v in request.headers.items()
            }
            query = {k: v[0] if len(v) == 1 else v for k, v in request.args.lists()}
            entry = LoggedRequest(
                seq,
                method,
                request.path,
                declared.template if declared else None,
                declared.name if declared else None,
                query,
                headers,
                None,
                write=declared.write if declared else method in WRITE_METHODS,
                started=started,
            )
            self.requests.append(entry)
        call = Call(request, seq, method, request.path, declared, params, request.args, request.headers, raw, None)
        self._local.call = call
        try:
            response = self._answer(call, entry)
        except _DropConnection:
            entry.duration = time.monotonic() - started
            raise
        finally:
            self._local.call = None
        entry.status = response.status_code
        entry.reply = response.get_data()
        entry.duration = time.monotonic() - started
        return response

    def _answer(self, call: Call, entry: LoggedRequest) -> Response:
        declared = call.route
        if declared is None:
            with contextlib.suppress(FakeError):  # logged as far as it parses
                entry.body = self._mask_body(self.parse_body(call.request, call.raw_body))
            self._record_issue(call, "outside", ["no route of the fake serves this request"], entry)
            return self.not_found_response()
        try:
            call.body = self.parse_body(call.request, call.raw_body)
        except FakeError as error:
            self._record_issue(call, "request", [error.message], entry)
            return self._error(error)
        entry.body = self._mask_body(call.body)

        problems: list[str] = []
        if declared.validate:
            for validator in self.validators:
                try:
                    problems.extend(validator.validate_request(call))
                except OutsideDescription as outside:
                    self._record_issue(call, "outside", [str(outside)], entry)
            self._record_issue(call, "request", problems, entry)

        self._pause(self.latency)
        with self.lock:
            fault = self.faults._pick(call)
        if fault is not None:
            entry.fault = fault.kind
            if fault.kind == "reset":
                raise _DropConnection()
            if fault.kind == "delay":
                self._pause(fault.seconds)
            if fault.kind == "status":
                if fault.body is not None:
                    answer = fault.body if isinstance(fault.body, Response) else self.json(fault.body, fault.status)
                else:
                    answer = self.error_response(
                        fault.status, fault.code or _code_for(fault.status), fault.message or "injected fault"
                    )
                answer.status_code = fault.status
                answer.headers.update(fault.headers)
                return answer

        limiter = self.rate_limiter
        if limiter is not None and self._matches(call.method, declared, call.path, limiter.method, limiter.path):
            with self.lock:
                wait = limiter.take(self.clock())
            if wait is not None:
                entry.fault = entry.fault or "rate_limit"
                retry_after = limiter.retry_after if limiter.retry_after is not None else max(1, math.ceil(wait))
                shown = f"{retry_after:g}" if isinstance(retry_after, float) else str(retry_after)
                answer = self.rate_limited_response(retry_after)
                answer.status_code = 429
                answer.headers.setdefault("Retry-After", shown)
                return answer

        if declared.auth:
            try:
                call.token = self.authenticate(call)
            except Unauthorized as denied:
                return self.unauthorized_response(denied.reason, denied.message)
            except FakeError as error:
                return self._error(error)

        if problems:
            return self.validation_failed_response(problems)

        try:
            with self.lock:
                result = getattr(self, declared.handler)(call, **call.params)
            response = self._to_response(result)
        except FakeError as error:
            response = self._error(error)
        except Exception as exc:  # noqa: BLE001 - a bug in the fake: answer 500 and make it visible
            self._record_issue(call, "fake", [f"{declared.handler} raised {type(exc).__name__}: {exc}"], entry)
            response = self.error_response(500, "internal_server_error", "the fake crashed")

        if declared.validate:
            for validator in self.validators:
                try:
                    self._record_issue(call, "response", validator.validate_response(call, response), entry)
                except OutsideDescription as outside:
                    if not any(issue.startswith("outside") for issue in entry.validation_errors):
                        self._record_issue(call, "outside", [str(outside)], entry)

        if fault is not None and fault.kind == "drop_after_write":
            entry.status = None
            raise _DropConnection()
        return response

    def _error(self, error: FakeError) -> Response:
        if error.response is not None:
            return error.response
        response = self.error_response(error.status, error.code, error.message, **error.extra)
        response.headers.update(error.headers)
        return response

    def _to_response(self, result: Any) -> Response:
        if isinstance(result, Response):
            return result
        status, headers = 200, None
        if isinstance(result, tuple):
            status, result, *rest = result
            headers = rest[0] if rest else None
        if result is None:
            return self.empty(204 if status == 200 else status, headers)
        if isinstance(result, str):
            return self.text(result, status, headers)
        if isinstance(result, bytes):
            return Response(result, status=status, headers=headers, mimetype="application/octet-stream")
        return self.json(result, status, headers)


def _code_for(status: int) -> str:
    return {
        400: "bad_request",
        401: "unauthorized",
        403: "forbidden",
        404: "not_found",
        409: "conflict",
        429: "rate_limit_exceeded",
        500: "internal_server_error",
        502: "bad_gateway",
        503: "unavailable",
        504: "gateway_timeout",
    }.get(status, f"status_{status}")
