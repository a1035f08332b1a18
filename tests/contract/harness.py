# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One harness per target of the connector contract suite (``test_connector_contract.py``).

A harness owns its target's service (a real server, a fake, or an in-process store) and gives the
suite what it cannot get through the connector under test:

* ``start`` / ``stop`` once per session, ``reset`` before each test (empty service, no faults,
  request log cleared);
* ``connector()``: the connector under test, with a small ``page_size`` and ``member_chunk``;
* ``seed_user`` / ``seed_group``: objects put on the service directly, bypassing the connector;
* ``server_user`` / ``server_users`` / ``server_group`` / ``server_groups``: the service's state read
  back independently, as ``ServerUser`` / ``ServerGroup``;
* faults: ``lose_next_create_answer`` (the service applies a user create, then the connection is
  reset) and ``rate_limit_next_create`` (429 with ``Retry-After``); each returns a ``FaultHandle``
  whose ``hits`` proves it fired;
* the service's request log, by kind: ``list_user_pages()``, ``create_requests()``,
  ``member_change_sizes()``; and ``record_sleeps(connector)``, the waits of the client.

A new target (Box, Dropbox, PingID fakes) subclasses ``Harness`` and appends its class to
``HARNESSES``: the parametrization of ``conftest.py`` picks it up.
"""

from __future__ import annotations

import dataclasses
import json
import re
import socket
import struct
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from support.scim_server import ENTERPRISE_SCHEMA, ScimServer
from unit.memory_connector import ANSWER_LOST, RATE_LIMITED, MemoryConnector

from ansible_collections.idsync.provisioning.plugins.module_utils._connector import Capabilities, Connector

PAGE_SIZE = 2
MEMBER_CHUNK = 2


@dataclass
class ServerUser:
    """One account as the service holds it; ``attrs`` has every path of the harness's
    ``mapped`` and ``unmapped`` (None where absent)."""

    id: str
    key: str
    enabled: bool
    link: str | None
    attrs: dict[str, Any]


@dataclass
class ServerGroup:
    id: str
    name: str
    member_ids: set[str]


class FaultHandle:
    """How often an injected fault fired."""

    def __init__(self, hits: Callable[[], int]):
        self._hits = hits

    @property
    def hits(self) -> int:
        return self._hits()


class Harness(ABC):
    name: str = "?"
    # The attribute path of the key (the one find_user matches).
    key_path: str = "userName"
    # Paths the connector writes in the update test: path -> (first value, second value).
    mapped: dict[str, tuple[Any, Any]] = {}
    # Paths seeded on the service that the connector is never asked to write: path -> value.
    unmapped: dict[str, Any] = {}

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:  # noqa: B027 - optional
        """Start the service (once per session)."""

    def stop(self) -> None:  # noqa: B027 - optional
        """Stop what ``start`` started."""

    @abstractmethod
    def reset(self) -> None:
        """An empty service, no faults, the request log cleared."""

    @abstractmethod
    def connector(self) -> Connector:
        """The connector under test, with ``PAGE_SIZE`` and ``MEMBER_CHUNK``."""

    def user_attrs(self, key: str, values: dict[str, Any] | None = None) -> dict[str, Any]:
        """Mapped attributes for ``create_user``: the key, then ``values`` (path -> value)."""
        return {self.key_path: key, **(values or {})}

    # -- the service's state, bypassing the connector -------------------------------------------
    @abstractmethod
    def seed_user(
        self, key: str, attrs: dict[str, Any] | None = None, enabled: bool = True, link: str | None = None
    ) -> str:
        """Create an account on the service directly; its id."""

    @abstractmethod
    def seed_group(self, name: str, member_ids: tuple[str, ...] = ()) -> str:
        """Create a group on the service directly; its id."""

    @abstractmethod
    def server_users(self) -> list[ServerUser]:
        """Every account on the service, read directly."""

    def server_user(self, user_id: str) -> ServerUser | None:
        return next((user for user in self.server_users() if user.id == user_id), None)

    def server_users_with_key(self, key: str) -> list[ServerUser]:
        return [user for user in self.server_users() if user.key.lower() == key.lower()]

    @abstractmethod
    def server_groups(self) -> list[ServerGroup]:
        """Every group on the service, read directly."""

    def server_group(self, group_id: str) -> ServerGroup | None:
        return next((group for group in self.server_groups() if group.id == group_id), None)

    # -- faults and the request log ---------------------------------------------------------------
    @abstractmethod
    def lose_next_create_answer(self) -> FaultHandle:
        """The next user create reaches the service and is applied; then the connection is reset."""

    @abstractmethod
    def rate_limit_next_create(self, retry_after: int) -> FaultHandle:
        """The next user create is answered 429 with ``Retry-After: retry_after`` (not applied)."""

    @abstractmethod
    def list_user_pages(self) -> int:
        """User list pages the service served since ``reset``."""

    @abstractmethod
    def create_requests(self) -> int:
        """User create requests the service received since ``reset`` (429s included)."""

    @abstractmethod
    def member_change_sizes(self) -> list[int]:
        """One entry per member-change request the service received since ``reset``: members it carried."""

    def record_sleeps(self, connector: Connector) -> list[float] | None:
        """A list the connector's waits are appended to from now on (they still wait), or None."""
        client = getattr(connector, "client", None)
        if client is None or not callable(getattr(client, "sleep", None)):
            return None
        return _record_sleeps(client)


def _record_sleeps(holder: Any) -> list[float]:
    recorded: list[float] = []
    real = holder.sleep

    def sleep(seconds: float) -> Any:
        recorded.append(seconds)
        return real(seconds)

    holder.sleep = sleep
    return recorded


def read_path(resource: Any, path: str) -> Any:
    """A dotted path (a leading ``urn:...:Name`` is one step) in a resource, keys case-insensitive."""
    node = resource
    for step in split_path(path):
        if not isinstance(node, dict):
            return None
        node = next((value for name, value in node.items() if name.lower() == step.lower()), None)
    return node


def write_path(resource: dict[str, Any], path: str, value: Any) -> None:
    steps = split_path(path)
    node = resource
    for step in steps[:-1]:
        node = node.setdefault(step, {})
    node[steps[-1]] = value


def split_path(path: str) -> list[str]:
    if path.lower().startswith("urn:"):
        urn, _sep, rest = path.rpartition(":")
        return [urn, *rest.split(".")]
    return path.split(".")


# -- the in-memory connector of the unit tests ------------------------------------------------------
class MemoryHarness(Harness):
    """``tests/unit/memory_connector.py``: the connector is its own service (its ``users`` and
    ``groups`` dicts are the service's state); faults are simulated in-process."""

    name = "memory"
    mapped = {"displayName": ("Jo Smith", "Joanna Smith"), "name.givenName": ("Jo", "Joanna")}
    unmapped = {"title": "Engineer", "name.familyName": "Smith", f"{ENTERPRISE_SCHEMA}:employeeNumber": "701"}

    def reset(self) -> None:
        self.memory = MemoryConnector(
            Capabilities(member_chunk=MEMBER_CHUNK), key_path=self.key_path, page_size=PAGE_SIZE
        )
        # The connector is its own service: each change_members call is one member-change request.
        self.member_changes: list[int] = []
        change = self.memory.change_members

        def change_members(group, add, remove):
            self.member_changes.append(len(add) + len(remove))
            return change(group, add, remove)

        self.memory.change_members = change_members

    def connector(self) -> Connector:
        return self.memory

    def seed_user(self, key, attrs=None, enabled=True, link=None) -> str:
        return self.memory.seed_user(key, attrs, enabled=enabled, link=link).id

    def seed_group(self, name, member_ids=()) -> str:
        return self.memory.seed_group(name, members=list(member_ids)).id

    def server_users(self) -> list[ServerUser]:
        paths = [*self.mapped, *self.unmapped]
        return [
            ServerUser(u.id, u.key, u.enabled, u.link, {p: read_path(u.resource, p) for p in paths})
            for u in self.memory.users.values()
        ]

    def server_groups(self) -> list[ServerGroup]:
        return [ServerGroup(g.id, g.name, set(g.members)) for g in self.memory.groups.values()]

    def lose_next_create_answer(self) -> FaultHandle:
        fault = self.memory.inject_fault("create_user", ANSWER_LOST)
        return FaultHandle(lambda: fault.hits)

    def rate_limit_next_create(self, retry_after: int) -> FaultHandle:
        fault = self.memory.inject_fault("create_user", RATE_LIMITED, retry_after=retry_after)
        return FaultHandle(lambda: fault.hits)

    def _requests(self, method: str) -> list[tuple[str, str, str]]:
        return [request for request in self.memory.requests if request[0] == method]

    def list_user_pages(self) -> int:
        return len(self._requests("list_users"))

    def create_requests(self) -> int:
        return len(self._requests("create_user"))

    def member_change_sizes(self) -> list[int]:
        return list(self.member_changes)

    def record_sleeps(self, connector: Connector) -> list[float] | None:
        return _record_sleeps(connector)


# -- SCIM: a real scim2-server behind a loopback fault proxy ----------------------------------------
@dataclass
class ProxiedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    outcome: str = "forwarded"  # or "reset after forwarding", or the injected status


@dataclass
class ProxyFault:
    method: str
    path: re.Pattern
    status: int | None = None  # answer this status without forwarding
    headers: dict[str, str] = field(default_factory=dict)
    reset_after_forwarding: bool = False  # forward, then reset the client's connection (no answer)
    times: int = 1
    hits: int = 0


class LoopbackFaultProxy:
    """A forwarding HTTP proxy on 127.0.0.1 in front of one service, with two faults that
    ``tests/support/fault_proxy.py`` lacks: an answer with headers (429 + Retry-After), and a
    connection reset *after* the service applied the request. Every request is logged."""

    def __init__(self, upstream: str):
        self.upstream = upstream.rstrip("/")
        self.faults: list[ProxyFault] = []
        self.log: list[ProxiedRequest] = []
        self._lock = threading.Lock()
        self._session = requests.Session()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        parts = urlsplit(self.upstream)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}{parts.path}"

    def start(self) -> LoopbackFaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
        self._session.close()

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()
            self.log.clear()

    def add(self, fault: ProxyFault) -> ProxyFault:
        with self._lock:
            self.faults.append(fault)
        return fault

    def _take_fault(self, method: str, path: str) -> ProxyFault | None:
        with self._lock:
            for fault in self.faults:
                if fault.method == method and fault.path.search(path) and fault.hits < fault.times:
                    fault.hits += 1
                    return fault
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet tests
                return

            def _reset(self) -> None:
                # RST instead of FIN: the client sees "connection reset" after it sent the request.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True
                self.connection.close()

            def _answer(self, status: int, headers: dict[str, str], payload: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw
                seen = ProxiedRequest(self.command, parts.path, parse_qs(parts.query), body)
                with proxy._lock:
                    proxy.log.append(seen)
                fault = proxy._take_fault(self.command, parts.path)
                if fault is not None and fault.status is not None:
                    seen.outcome = str(fault.status)
                    payload = json.dumps({"detail": "injected by the contract suite", "status": fault.status})
                    headers = {"Content-Type": "application/scim+json", **fault.headers}
                    self._answer(fault.status, headers, payload.encode())
                    return
                forward = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                answer = proxy._session.request(
                    self.command, proxy.origin + self.path, data=raw or None, headers=forward, timeout=30
                )
                if fault is not None and fault.reset_after_forwarding:
                    seen.outcome = "reset after forwarding"
                    self._reset()
                    return
                skip = ("content-length", "transfer-encoding", "connection", "content-encoding")
                self._answer(
                    answer.status_code,
                    {k: v for k, v in answer.headers.items() if k.lower() not in skip},
                    answer.content,
                )

            def handle_one_request(self) -> None:
                try:
                    super().handle_one_request()
                except OSError:
                    self.close_connection = True

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        return Handler


class ScimHarness(Harness):
    """``plugins/module_utils/scim.py`` against a real scim2-server (one per session), through a
    ``LoopbackFaultProxy``. Seeding and read-back go to the server directly, not through the proxy."""

    name = "scim"
    mapped = {"displayName": ("Jo Smith", "Joanna Smith"), "name.givenName": ("Jo", "Joanna")}
    unmapped = {"title": "Engineer", "name.familyName": "Smith", f"{ENTERPRISE_SCHEMA}:employeeNumber": "701"}
    users_path = re.compile(r"/Users$")

    def start(self) -> None:
        self.server = ScimServer().start()
        self.proxy = LoopbackFaultProxy(self.server.url).start()

    def stop(self) -> None:
        self.proxy.stop()
        self.server.stop()

    def reset(self) -> None:
        for kind in ("Groups", "Users"):
            for resource in self.server.all(kind, attributes="id"):
                response = self.server.admin.delete(f"{self.server.url}/{kind}/{resource['id']}", timeout=10)
                assert response.status_code in (204, 404), response.text
        self.proxy.clear()

    def connector(self) -> Connector:
        from ansible_collections.idsync.provisioning.plugins.module_utils.scim import ScimConnector

        return ScimConnector(self.proxy.url, token=self.server.token, page_size=PAGE_SIZE, member_chunk=MEMBER_CHUNK)

    def seed_user(self, key, attrs=None, enabled=True, link=None) -> str:
        resource: dict[str, Any] = {"active": enabled}
        for path, value in (attrs or {}).items():
            write_path(resource, path, value)
        if link is not None:
            resource["externalId"] = link
        return self.server.seed_user(key, **resource)["id"]

    def seed_group(self, name, member_ids=()) -> str:
        return self.server.seed_group(name, tuple(member_ids))["id"]

    def _to_user(self, resource: dict[str, Any]) -> ServerUser:
        active = read_path(resource, "active")
        return ServerUser(
            str(resource["id"]),
            read_path(resource, "userName") or "",
            True if active is None else bool(active),
            read_path(resource, "externalId"),
            {path: read_path(resource, path) for path in [*self.mapped, *self.unmapped]},
        )

    def server_users(self) -> list[ServerUser]:
        return [self._to_user(resource) for resource in self.server.all("Users")]

    def server_user(self, user_id: str) -> ServerUser | None:
        response = self.server.admin.get(f"{self.server.url}/Users/{user_id}", timeout=10)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return self._to_user(response.json())

    def server_groups(self) -> list[ServerGroup]:
        return [
            ServerGroup(str(g["id"]), g.get("displayName") or "", {str(m["value"]) for m in g.get("members") or []})
            for g in self.server.all("Groups")
        ]

    def lose_next_create_answer(self) -> FaultHandle:
        fault = self.proxy.add(ProxyFault("POST", self.users_path, reset_after_forwarding=True))
        return FaultHandle(lambda: fault.hits)

    def rate_limit_next_create(self, retry_after: int) -> FaultHandle:
        fault = self.proxy.add(
            ProxyFault("POST", self.users_path, status=429, headers={"Retry-After": str(retry_after)})
        )
        return FaultHandle(lambda: fault.hits)

    def list_user_pages(self) -> int:
        return sum(
            1
            for r in self.proxy.log
            if r.method == "GET" and self.users_path.search(r.path) and "filter" not in r.query
        )

    def create_requests(self) -> int:
        return sum(1 for r in self.proxy.log if r.method == "POST" and self.users_path.search(r.path))

    def member_change_sizes(self) -> list[int]:
        sizes = []
        for r in self.proxy.log:
            if r.method not in ("PATCH", "PUT") or not re.search(r"/Groups/[^/]+$", r.path):
                continue
            if r.method == "PUT":
                sizes.append(len((r.body or {}).get("members") or []))
                continue
            members = 0
            for operation in (r.body or {}).get("Operations") or []:
                path = str(operation.get("path") or "")
                if path == "members":
                    members += len(operation.get("value") or [])
                elif path.startswith("members["):
                    members += 1
            if members:
                sizes.append(members)
        return sizes


# -- Box: the Box connector against the stateful fake Box -------------------------------------------
# Box logins are e-mail addresses (the fake and the connector both refuse others); the suite's keys
# are plain names. The harness writes a key as ``<key>@contract.example`` on the way in and reads
# it back without the domain; the connector under test sees and sends e-mail logins only.
CONTRACT_DOMAIN = "@contract.example"


def box_login(key: str) -> str:
    return key if "@" in key else f"{key}{CONTRACT_DOMAIN}"


def contract_key(login: str) -> str:
    return login[: -len(CONTRACT_DOMAIN)] if login.lower().endswith(CONTRACT_DOMAIN) else login


class PlainKeys:
    """The Box connector with the suite's plain keys translated to and from e-mail logins; every
    other attribute (capabilities, groups, ``client``) is the connector's own."""

    def __init__(self, inner: Connector):
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    @staticmethod
    def _out(user: Any) -> Any:
        return None if user is None else dataclasses.replace(user, key=contract_key(user.key))

    @staticmethod
    def _in(user: Any) -> Any:
        return dataclasses.replace(user, key=box_login(user.key))

    def list_users(self):
        return (self._out(user) for user in self.inner.list_users())

    def find_user(self, key):
        return self._out(self.inner.find_user(box_login(key)))

    def get_user(self, user_id):
        return self._out(self.inner.get_user(user_id))

    def create_user(self, attrs, link, enabled):
        attrs = dict(attrs, login=box_login(attrs["login"])) if "login" in attrs else attrs
        return self._out(self.inner.create_user(attrs, link, enabled))

    def update_user(self, user, changes, link=None):
        return self.inner.update_user(self._in(user), changes, link)

    def set_user_enabled(self, user, enabled):
        return self.inner.set_user_enabled(self._in(user), enabled)

    def delete_user(self, user):
        return self.inner.delete_user(self._in(user))


class BoxHarness(Harness):
    """``plugins/module_utils/box.py`` (through ``connector_from_params``, Client Credentials Grant)
    against ``tests/support/box_fake.py``, one fake per session. Every request the fake receives
    is validated against Box's OpenAPI description; ``stop`` fails on any issue recorded."""

    name = "box"
    key_path = "login"
    mapped = {"name": ("Jo Smith", "Joanna Smith"), "job_title": ("Engineer", "Lead Engineer")}
    unmapped = {"phone": "555-0100", "address": "1 Main Street"}

    def start(self) -> None:
        import pytest

        try:
            from ansible_collections.idsync.provisioning.plugins.module_utils import box
        except ImportError as exc:
            pytest.skip(f"the Box connector (plugins/module_utils/box.py) is not importable yet: {exc}")
        from support.box_fake import BoxFake

        self.box = box
        self.fake = BoxFake().start()
        self.issues: list[str] = []

    def stop(self) -> None:
        self._collect_issues()
        self.fake.stop()
        if self.issues:
            raise AssertionError("requests outside Box's OpenAPI description:\n" + "\n".join(self.issues))

    def _collect_issues(self) -> None:
        self.issues.extend(str(issue) for issue in self.fake.validation_errors)

    def reset(self) -> None:
        self._collect_issues()
        self.fake.reset()

    def connector(self) -> Connector:
        app = self.fake.app
        params = {
            "url": self.fake.api_url,
            "token_url": self.fake.token_url,
            "client_id": app.client_id,
            "client_secret": app.client_secret,
            "enterprise_id": app.enterprise_id,
            "validate_certs": True,
            "timeout": 10,
            "page_size": PAGE_SIZE,
            "member_chunk": MEMBER_CHUNK,
        }
        return PlainKeys(self.box.connector_from_params(params))

    def user_attrs(self, key: str, values: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"login": box_login(key), "name": key, **(values or {})}  # Box requires a name

    def seed_user(self, key, attrs=None, enabled=True, link=None) -> str:
        # Box users have no field for the marker (capabilities.user_link is "state"): link is not stored.
        fields = dict(attrs or {})
        name = fields.pop("name", None) or key
        user = self.fake.seed_user(box_login(key), name, status="active" if enabled else "inactive", **fields)
        return user["id"]

    def seed_group(self, name, member_ids=()) -> str:
        return self.fake.seed_group(name, members=member_ids)["id"]

    def server_users(self) -> list[ServerUser]:
        paths = [*self.mapped, *self.unmapped]
        return [
            ServerUser(
                u["id"],
                contract_key(u["login"]),
                u["status"] != "inactive",
                None,
                {path: u.get(path) for path in paths},
            )
            for u in self.fake.managed_users()
        ]

    def server_groups(self) -> list[ServerGroup]:
        return [ServerGroup(g["id"], g["name"], self.fake.members_of(g["id"])) for g in self.fake.managed_groups()]

    def lose_next_create_answer(self) -> FaultHandle:
        fault = self.fake.faults.drop_after_write("POST", "/2.0/users")
        return FaultHandle(lambda: fault.hits)

    def rate_limit_next_create(self, retry_after: int) -> FaultHandle:
        fault = self.fake.faults.status(
            "POST",
            "/2.0/users",
            429,
            code="rate_limit_exceeded",
            message="Request rate limit exceeded, please try again later",
            headers={"Retry-After": str(retry_after)},
        )
        return FaultHandle(lambda: fault.hits)

    def list_user_pages(self) -> int:
        return sum(1 for r in self.fake.requests_matching("GET", "/2.0/users") if "filter_term" not in r.query)

    def create_requests(self) -> int:
        return len(self.fake.requests_matching("POST", "/2.0/users"))

    def member_change_sizes(self) -> list[int]:
        # Box adds and removes one member per request.
        added = self.fake.requests_matching("POST", "/2.0/group_memberships")
        removed = self.fake.requests_matching("DELETE", "/2.0/group_memberships/{membership_id}")
        return [1] * (len(added) + len(removed))


# The targets of the suite; a new one appends its harness class here.
HARNESSES: list[type[Harness]] = [MemoryHarness, ScimHarness, BoxHarness]


# -- Dropbox: the Dropbox connector against the stateful fake Dropbox team API ----------------------
class PlainEmails(PlainKeys):
    """``PlainKeys`` for a target whose key is ``email`` (Dropbox) instead of ``login``."""

    def create_user(self, attrs, link, enabled):
        attrs = dict(attrs, email=box_login(attrs["email"])) if "email" in attrs else attrs
        return self._out(self.inner.create_user(attrs, link, enabled))


class DropboxHarness(Harness):
    """``plugins/module_utils/dropbox.py`` (through ``connector_from_params``, refresh-token grant)
    against ``tests/support/dropbox_fake.py``, one fake per session. Every request and answer is
    checked by the Dropbox SDK's Stone validators; ``stop`` fails on any issue recorded.

    The fake's team has no admin here (the suite counts every listed account) and members/add_v2
    makes *active* members: the suite suspends what it creates, and Dropbox cannot suspend an
    invited member (the connector's own tests cover invited members on the fake's default)."""

    name = "dropbox"
    key_path = "email"
    mapped = {"given_name": ("Jo", "Joanna"), "surname": ("Smith", "Smithers")}
    unmapped = {"persistent_id": "pid-701"}

    def start(self) -> None:
        import pytest

        try:
            from ansible_collections.idsync.provisioning.plugins.module_utils import dropbox
        except ImportError as exc:
            pytest.skip(f"the Dropbox connector (plugins/module_utils/dropbox.py) is not importable yet: {exc}")
        from support.dropbox_fake import DropboxFake

        self.dropbox = dropbox
        self.fake = DropboxFake(with_admin=False, added_status="active").start()
        self.issues: list[str] = []

    def stop(self) -> None:
        self._collect_issues()
        self.fake.stop()
        if self.issues:
            raise AssertionError("requests or answers the Dropbox SDK's validators reject:\n" + "\n".join(self.issues))

    def _collect_issues(self) -> None:
        self.issues.extend(str(issue) for issue in self.fake.validation_errors)

    def reset(self) -> None:
        self._collect_issues()
        self.fake.reset()

    def connector(self) -> Connector:
        app = self.fake.app
        params = {
            "url": self.fake.api_url,
            "token_url": self.fake.token_url,
            "app_key": app.app_key,
            "app_secret": app.app_secret,
            "refresh_token": app.refresh_token,
            "validate_certs": True,
            "timeout": 10,
            "page_size": PAGE_SIZE,
            "member_chunk": MEMBER_CHUNK,
        }
        return PlainEmails(self.dropbox.connector_from_params(params))

    def user_attrs(self, key: str, values: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"email": box_login(key), **(values or {})}

    def seed_user(self, key, attrs=None, enabled=True, link=None) -> str:
        fields = dict(attrs or {})
        member = self.fake.seed_member(
            box_login(key),
            fields.pop("given_name", ""),
            fields.pop("surname", ""),
            status="active" if enabled else "suspended",
            external_id=link,
            **fields,
        )
        return member.team_member_id

    def seed_group(self, name, member_ids=()) -> str:
        return self.fake.seed_group(name, member_ids).group_id

    def server_users(self) -> list[ServerUser]:
        paths = [*self.mapped, *self.unmapped]
        return [
            ServerUser(
                m.team_member_id,
                contract_key(m.email),
                m.status != "suspended",
                m.external_id,
                {path: getattr(m, path) or None for path in paths},
            )
            for m in self.fake.team_members(include_admin=False)
        ]

    def server_groups(self) -> list[ServerGroup]:
        return [
            ServerGroup(g.group_id, g.group_name, self.fake.group_members(g.group_id))
            for g in list(self.fake.groups.values())
            if g.management_type != "system_managed"
        ]

    def lose_next_create_answer(self) -> FaultHandle:
        fault = self.fake.faults.drop_after_write("POST", "/2/team/members/add_v2")
        return FaultHandle(lambda: fault.hits)

    def rate_limit_next_create(self, retry_after: int) -> FaultHandle:
        fault = self.fake.throttle("/2/team/members/add_v2", retry_after)
        return FaultHandle(lambda: fault.hits)

    def list_user_pages(self) -> int:
        return len(self.fake.requests_matching("POST", "/2/team/members/list_v2")) + len(
            self.fake.requests_matching("POST", "/2/team/members/list/continue_v2")
        )

    def create_requests(self) -> int:
        return len(self.fake.requests_matching("POST", "/2/team/members/add_v2"))

    def member_change_sizes(self) -> list[int]:
        sizes = []
        for entry in self.fake.requests:
            if entry.name == "team/groups/members/add":
                sizes.append(len((entry.body or {}).get("members") or []))
            elif entry.name == "team/groups/members/remove":
                sizes.append(len((entry.body or {}).get("users") or []))
        return sizes


HARNESSES.append(DropboxHarness)


# -- PingID: the PingID connector against the stateful fake PingID ------------------------------------
class PingIDHarness(Harness):
    """``plugins/module_utils/pingid.py`` (through ``connector_from_params`` with the path of a
    ``pingid.properties`` the fake wrote) against ``tests/support/pingid_fake.py``, one fake per
    session. PingID has no groups and cannot list users cheaply (capabilities ``groups`` and
    ``can_list_users`` False): the suite skips what does not apply. Its users have no id but the
    user name, and no field for the marker (the state file holds it): ``link`` is not stored.
    ``stop`` fails on any request the fake's validator rejected and on any EditUser that nulled a
    field it left out (EditUser replaces the whole record)."""

    name = "pingid"
    key_path = "userName"
    mapped = {"fname": ("Jo", "Joanna"), "lname": ("Smith", "Smithers")}
    unmapped = {"email": "jo.smith@contract.example", "role": "ADMIN"}

    def start(self) -> None:
        import tempfile
        from pathlib import Path

        import pytest

        try:
            from ansible_collections.idsync.provisioning.plugins.module_utils import pingid
        except ImportError as exc:
            pytest.skip(f"the PingID connector (plugins/module_utils/pingid.py) is not importable yet: {exc}")
        if not callable(getattr(pingid, "connector_from_params", None)):
            pytest.skip("the PingID connector (plugins/module_utils/pingid.py) has no connector_from_params yet")
        from support.pingid_fake import PingIDFake

        self.pingid = pingid
        self.fake = PingIDFake().start()
        self.workdir = tempfile.TemporaryDirectory(prefix="pingid-contract-")
        self.properties_file = self.fake.write_properties(Path(self.workdir.name) / "pingid.properties")
        self.issues: list[str] = []

    def stop(self) -> None:
        self._collect_issues()
        self.fake.stop()
        self.workdir.cleanup()
        if self.issues:
            raise AssertionError("requests the fake PingID rejects or regrets:\n" + "\n".join(self.issues))

    def _collect_issues(self) -> None:
        self.issues.extend(str(issue) for issue in self.fake.validation_errors)
        self.issues.extend(
            f"EditUser of {c['userName']} left out {c['field']} (was {c['was']!r}): nulled"
            for c in self.fake.cleared
            if c["how"] == "omitted"
        )

    def reset(self) -> None:
        self._collect_issues()
        self.fake.reset()

    def connector(self) -> Connector:
        params = {"properties_file": str(self.properties_file), "validate_certs": True, "timeout": 10}
        return self.pingid.connector_from_params(params)

    def seed_user(self, key, attrs=None, enabled=True, link=None) -> str:
        fields = dict(attrs or {})
        user = self.fake.seed_user(
            key,
            fields.pop("fname", None),
            fields.pop("lname", None),
            fields.pop("email", None),
            role=fields.pop("role", "REGULAR"),
            enabled=enabled,
        )
        if fields:
            raise ValueError(f"PingID users have no {sorted(fields)}")
        return user.userName

    def seed_group(self, name, member_ids=()) -> str:
        raise NotImplementedError("PingID has no groups")

    def server_users(self) -> list[ServerUser]:
        paths = [*self.mapped, *self.unmapped]
        with self.fake.lock:
            users = list(self.fake.users.values())
        return [
            ServerUser(
                u.userName,
                u.userName,
                u.status != "SUSPENDED" and u.userEnabled,
                None,
                {path: getattr(u, path) for path in paths},
            )
            for u in users
        ]

    def server_groups(self) -> list[ServerGroup]:
        return []

    def lose_next_create_answer(self) -> FaultHandle:
        fault = self.fake.faults.drop_after_write("POST", self.fake.path("AddUser"))
        return FaultHandle(lambda: fault.hits)

    def rate_limit_next_create(self, retry_after: int) -> FaultHandle:
        fault = self.fake.faults.status(
            "POST",
            self.fake.path("AddUser"),
            429,
            code="429",
            message="too many requests",
            headers={"Retry-After": str(retry_after)},
        )
        return FaultHandle(lambda: fault.hits)

    def list_user_pages(self) -> int:
        # PingID lists only through the organisation report.
        return self.fake.op_count("GetOrgReport")

    def create_requests(self) -> int:
        return self.fake.op_count("AddUser")

    def member_change_sizes(self) -> list[int]:
        return []


HARNESSES.append(PingIDHarness)
