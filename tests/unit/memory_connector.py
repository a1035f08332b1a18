# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An in-memory target for the engine's unit tests. Private to this collection's tests.

It behaves like a strict service: keys and group names are unique case-insensitively, member ids
must exist, a member change larger than ``member_chunk`` is rejected. Failures can be injected
per write and object (``fail_write``) or per read (``fail_read``), and every call is recorded so
tests can assert that nothing was written.

For the contract suite (tests/contract) it can also stand for a connector in front of a service,
all opt-in so the engine tests see none of it: ``page_size`` lists users page by page, and
``inject_fault`` makes the simulated service answer a create with a 429 + Retry-After (waited for with the injectable ``sleep``, then resent) or apply it
and lose the answer (the connector then looks the account up by key instead of creating it twice).
``requests`` logs the simulated service requests.
"""

from __future__ import annotations

import copy
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ansible_collections.idsync.provisioning.plugins.module_utils._connector import Capabilities, Connector, split_path
from ansible_collections.idsync.provisioning.plugins.module_utils._http import AmbiguousRequestError
from ansible_collections.idsync.provisioning.plugins.module_utils._model import (
    ProvisioningError,
    TargetGroup,
    TargetUser,
)

WRITE_METHODS = {
    "create_user",
    "create_users",
    "update_user",
    "set_user_enabled",
    "delete_user",
    "create_group",
    "update_group",
    "delete_group",
    "change_members",
}

# Kinds of ``inject_fault``.
RATE_LIMITED = "rate_limited"  # 429 with Retry-After: not processed, the connector waits and resends
ANSWER_LOST = "answer_lost"  # processed, then the connection reset: the connector cannot tell


@dataclass
class ServiceFault:
    method: str
    kind: str
    retry_after: float = 1.0
    times: int = 1
    hits: int = 0


class MemoryConnector(Connector):
    def __init__(
        self,
        capabilities: Capabilities | None = None,
        key_path: str = "userName",
        *,
        page_size: int | None = None,
        sleep: Callable[[float], Any] = time.sleep,
    ):
        self.capabilities = capabilities or Capabilities()
        self.key_path = key_path
        self.users: dict[str, TargetUser] = {}
        self.groups: dict[str, TargetGroup] = {}
        self.calls: list[tuple[str, str]] = []
        self.write_failures: dict[tuple[str, str], str] = {}
        self.read_failures: set[str] = set()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.page_size = page_size
        self.sleep = sleep
        self.faults: list[ServiceFault] = []
        # (method, object, outcome) per simulated service request: "ok", "429" or "answer lost".
        self.requests: list[tuple[str, str, str]] = []

    # -- test helpers ------------------------------------------------------------------------
    def seed_user(self, key: str, attrs: dict[str, Any] | None = None, enabled: bool = True, link: str | None = None):
        """Put an account in the target as if someone (or an earlier run) had made it."""
        resource: dict[str, Any] = {}
        for path, value in {self.key_path: key, **(attrs or {})}.items():
            set_path(resource, path, value)
        user = TargetUser(id=self._new_id("u"), key=key, enabled=enabled, link=link, resource=resource)
        self.users[user.id] = user
        return user

    def seed_group(self, name: str, link: str | None = None, members: list[str] | None = None) -> TargetGroup:
        group = TargetGroup(id=self._new_id("g"), name=name, link=link, members=set(members or []))
        self.groups[group.id] = group
        return group

    def fail_write(self, method: str, name: str, message: str = "injected failure") -> None:
        """Make ``method`` fail for the object called ``name`` (user key or group name)."""
        self.write_failures[(method, name.lower())] = message

    def fail_read(self, method: str) -> None:
        self.read_failures.add(method)

    def inject_fault(self, method: str, kind: str, retry_after: float = 1.0, times: int = 1) -> ServiceFault:
        """The next ``times`` service requests of ``method`` (only ``create_user`` for now) fail with ``kind``."""
        if kind not in (RATE_LIMITED, ANSWER_LOST):
            raise ValueError(f"unknown fault kind {kind!r}")
        fault = ServiceFault(method, kind, retry_after, times)
        self.faults.append(fault)
        return fault

    @property
    def writes(self) -> list[tuple[str, str]]:
        return [call for call in self.calls if call[0] in WRITE_METHODS]

    def user_by_key(self, key: str) -> TargetUser | None:
        return next((user for user in self.users.values() if user.key.lower() == key.lower()), None)

    def group_by_name(self, name: str) -> TargetGroup | None:
        return next((group for group in self.groups.values() if group.name.lower() == name.lower()), None)

    def member_keys(self, group_name: str) -> set[str]:
        group = self.group_by_name(group_name)
        return {self.users[user_id].key for user_id in group.members}

    # -- plumbing ----------------------------------------------------------------------------
    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids)}"

    def _record(self, method: str, name: str) -> None:
        with self._lock:
            self.calls.append((method, name))
        if method in self.read_failures:
            raise ProvisioningError(f"{method}: service unavailable (injected)", status=503)
        message = self.write_failures.get((method, name.lower()))
        if message is not None:
            raise ProvisioningError(f"{method} {name}: {message}", status=400)

    def _service_request(self, method: str, name: str) -> bool:
        """One simulated request to the service; True when it was applied but its answer was lost."""
        while True:
            with self._lock:
                fault = next((f for f in self.faults if f.method == method and f.hits < f.times), None)
                if fault is not None:
                    fault.hits += 1
                outcome = "ok" if fault is None else ("429" if fault.kind == RATE_LIMITED else "answer lost")
                self.requests.append((method, name, outcome))
            if fault is None or fault.kind == ANSWER_LOST:
                return fault is not None
            self.sleep(fault.retry_after)  # honour Retry-After, then resend (a 429 was not processed)

    def _link_to_store(self, link: str | None) -> str | None:
        # A target without a marker field (Box users) cannot store it: the engine uses the state file.
        return link if self.capabilities.user_link == "target" else None

    # -- users -------------------------------------------------------------------------------
    def list_users(self):
        self._record("list_users", "*")
        users = [copy.deepcopy(user) for user in self.users.values()]
        if self.page_size:
            for start in range(0, max(len(users), 1), self.page_size):
                self._service_request("list_users", f"page {start // self.page_size + 1}")
        return users

    def find_user(self, key: str) -> TargetUser | None:
        self._record("find_user", key)
        user = self.user_by_key(key)
        return copy.deepcopy(user) if user else None

    def get_user(self, user_id: str) -> TargetUser | None:
        self._record("get_user", user_id)
        user = self.users.get(user_id)
        return copy.deepcopy(user) if user else None

    def create_user(self, attrs: dict[str, Any], link: str | None, enabled: bool) -> TargetUser:
        key = attrs.get(self.key_path)
        self._record("create_user", str(key))
        if not key:
            raise ProvisioningError(f"create_user: {self.key_path} is required", status=400)
        answer_lost = self._service_request("create_user", str(key)) if self.faults else False
        with self._lock:
            if self.user_by_key(key):
                raise ProvisioningError(f"create_user: {key} already exists", status=409)
            user = self.seed_user(key, attrs, enabled=enabled, link=self._link_to_store(link))
        if answer_lost:
            return self._created_meanwhile(key, link)
        return copy.deepcopy(user)

    def _created_meanwhile(self, key: str, link: str | None) -> TargetUser:
        """After an ambiguous create: look the account up by key, never resend blindly."""
        existing = self.find_user(key)
        if existing is not None and existing.link == self._link_to_store(link):
            return existing
        if existing is not None:
            raise ProvisioningError(f"create_user: {key} exists now but is not ours", status=409)
        raise AmbiguousRequestError(f"create_user {key}: connection reset, and the account is not there")

    def create_users(self, items):
        self._record("create_users", str(len(items)))
        return super().create_users(items)

    def update_user(self, user: TargetUser, changes: dict[str, Any], link: str | None = None) -> None:
        self._record("update_user", user.key)
        stored = self._stored_user(user)
        new_key = changes.get(self.key_path)
        if new_key and new_key.lower() != stored.key.lower() and self.user_by_key(new_key):
            raise ProvisioningError(f"update_user: {new_key} already exists", status=409)
        for path, value in changes.items():
            set_path(stored.resource, path, value)
        if new_key:
            stored.key = new_key
        if link is not None:
            stored.link = self._link_to_store(link)

    def set_user_enabled(self, user: TargetUser, enabled: bool) -> None:
        self._record("set_user_enabled", user.key)
        self._stored_user(user).enabled = enabled

    def delete_user(self, user: TargetUser) -> None:
        self._record("delete_user", user.key)
        self._stored_user(user)
        del self.users[user.id]
        for group in self.groups.values():
            group.members.discard(user.id)

    def _stored_user(self, user: TargetUser) -> TargetUser:
        stored = self.users.get(user.id)
        if stored is None:
            raise ProvisioningError(f"user {user.id} not found", status=404)
        return stored

    # -- groups ------------------------------------------------------------------------------
    def list_groups(self):
        self._record("list_groups", "*")
        groups = []
        for group in self.groups.values():
            listed = copy.deepcopy(group)
            listed.members = None  # like most services: members are a separate read
            groups.append(listed)
        return groups

    def group_members(self, group: TargetGroup) -> set[str]:
        self._record("group_members", group.name)
        return set(self._stored_group(group).members)

    def create_group(self, name: str, link: str | None) -> TargetGroup:
        self._record("create_group", name)
        with self._lock:
            if self.group_by_name(name):
                raise ProvisioningError(f"create_group: {name} already exists", status=409)
            group = self.seed_group(name, link=link if self.capabilities.group_link == "target" else None)
        created = copy.deepcopy(group)
        created.members = None
        return created

    def update_group(self, group: TargetGroup, name: str | None = None, link: str | None = None) -> None:
        self._record("update_group", group.name)
        stored = self._stored_group(group)
        if name is not None:
            other = self.group_by_name(name)
            if other is not None and other.id != stored.id:
                raise ProvisioningError(f"update_group: {name} already exists", status=409)
            stored.name = name
        if link is not None and self.capabilities.group_link == "target":
            stored.link = link

    def delete_group(self, group: TargetGroup) -> None:
        self._record("delete_group", group.name)
        self._stored_group(group)
        del self.groups[group.id]

    def change_members(self, group: TargetGroup, add: list[str], remove: list[str]) -> None:
        self._record("change_members", group.name)
        stored = self._stored_group(group)
        limit = self.capabilities.member_chunk
        if len(add) > limit or len(remove) > limit:
            raise ProvisioningError(f"change_members: at most {limit} members per request", status=400)
        unknown = [user_id for user_id in add if user_id not in self.users]
        if unknown:
            raise ProvisioningError(f"change_members: unknown user ids {unknown}", status=400)
        stored.members.update(add)
        stored.members.difference_update(remove)

    def _stored_group(self, group: TargetGroup) -> TargetGroup:
        stored = self.groups.get(group.id)
        if stored is None:
            raise ProvisioningError(f"group {group.id} not found", status=404)
        return stored


def set_path(resource: dict[str, Any], path: str, value: Any) -> None:
    steps = split_path(path)
    node = resource
    for step in steps[:-1]:
        node = node.setdefault(step, {})
    node[steps[-1]] = value
