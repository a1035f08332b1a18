# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The interface every target (Box, Dropbox, SCIM, PingID) implements for the engine.

Private to this collection. The engine (``_engine.py``) knows only this interface; a
connector knows only its service's authentication and endpoints, and does its HTTP
through ``_http.py``.

Contract, in the engine's words:

* Reads never guess. A failed read raises ``ProvisioningError``; an empty answer means empty.
* ``list_users`` / ``list_groups`` yield every object, page after page (a generator is fine).
* Writes are one object each; each either succeeds or raises ``ProvisioningError`` carrying the
  service's own message. The engine catches per object and carries on with the others.
* ``create_user`` must not duplicate after an ambiguous failure: a connector whose retries may
  resend a create first looks the object up by key (``find_user``) before resending.
* Ownership: ``link`` values are markers in this provisioner's format (``<prefix><source id>``).
  A connector whose ``capabilities.user_link`` is ``"target"`` stores the marker in the service
  (SCIM ``externalId``, Dropbox ``member_external_id``) and reports it back in ``TargetUser.link``;
  with ``"state"`` the engine keeps the markers in the state file and the connector ignores them.
* Attribute paths: desired attributes are keyed by paths. ``read_path`` reads one from a target
  resource so the engine can compare; ``update_user`` receives only the changed paths and must
  write only those (unmapped attributes stay as they are).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ansible_collections.idsync.provisioning.plugins.module_utils._model import TargetGroup, TargetUser

# change_members' answer: target user id -> why that member's change failed.
MemberFailures = dict[str, str]


@dataclass(frozen=True)
class Capabilities:
    """What a connector can do; the engine plans around it."""

    # Where ownership markers live: "target" (a field of the service), "state" (the state file).
    user_link: str = "target"
    group_link: str = "target"
    # PingID cannot list its users: the engine then asks find_user per desired user and relies
    # on the state file for the accounts it manages.
    can_list_users: bool = True
    groups: bool = True
    # A service without a separate enabled flag (none yet) would set this to False.
    can_disable: bool = True
    # False where the service cannot create an account disabled (Dropbox adds members as invited,
    # and an invited member cannot be suspended): provision_disabled_users then fails per user.
    create_disabled: bool = True
    # Upper bound of member ids in one change_members request.
    member_chunk: int = 100
    # How many create_users the service accepts in one call (SCIM /Bulk, Dropbox members/add).
    create_batch: int = 1


# The engine's own names of the fields it compares besides the mapped attribute paths (which are
# the target's names already): what a connector's FIELD_NAMES renames for people.
DEFAULT_FIELD_NAMES = {"key": "key", "enabled": "enabled", "link": "marker", "name": "name", "members": "members"}
STATE_FILE_LINK = "marker (state file)"


class Connector(ABC):
    """Base class of the per-target connectors."""

    capabilities = Capabilities()
    # The service's own names of the engine's fields, per object type, for previews, diffs and
    # reports: {"user": {"link": "externalId", "enabled": "active"}, "group": {...}}. A field left
    # out keeps the engine's name (DEFAULT_FIELD_NAMES). A marker kept in the state file is always
    # called so, whatever the service would call a marker field it does not use.
    FIELD_NAMES: dict[str, dict[str, str]] = {}

    def field_name(self, object_type: str, name: str) -> str:
        """The name people know ``name`` by in this service (``enabled`` -> SCIM ``active``);
        attribute paths (``name.givenName``) are the service's names already and come back as they are."""
        if name == "link":
            where = self.capabilities.user_link if object_type == "user" else self.capabilities.group_link
            if where == "state":
                return STATE_FILE_LINK
        named = self.FIELD_NAMES.get(object_type, {}).get(name)
        if named:
            return named
        return DEFAULT_FIELD_NAMES.get(name, name)

    # -- users ---------------------------------------------------------------------------
    @abstractmethod
    def list_users(self) -> Iterable[TargetUser]:
        """Every account in the target."""

    @abstractmethod
    def find_user(self, key: str) -> TargetUser | None:
        """The account whose key equals ``key`` case-insensitively, or None."""

    def get_user(self, user_id: str) -> TargetUser | None:
        """The account with this target id, or None when it no longer exists.

        Needed only with ``can_list_users=False``: the engine then looks up each account the
        state file says it manages.
        """
        raise NotImplementedError

    @abstractmethod
    def create_user(self, attrs: dict[str, Any], link: str | None, enabled: bool) -> TargetUser:
        """Create one account with the mapped attributes and the ownership marker."""

    def create_users(self, items: list[tuple[dict[str, Any], str | None, bool]]) -> list[TargetUser | Exception]:
        """Batch create; connectors with ``create_batch > 1`` override. One result per item."""
        results: list[TargetUser | Exception] = []
        for attrs, link, enabled in items:
            try:
                results.append(self.create_user(attrs, link, enabled))
            except Exception as exc:  # noqa: BLE001 - each object's failure is reported, not raised
                results.append(exc)
        return results

    @abstractmethod
    def update_user(self, user: TargetUser, changes: dict[str, Any], link: str | None = None) -> None:
        """Write only ``changes`` (path -> value); set the marker too when ``link`` is given."""

    @abstractmethod
    def set_user_enabled(self, user: TargetUser, enabled: bool) -> None:
        """Enable or disable (suspend) one account."""

    @abstractmethod
    def delete_user(self, user: TargetUser) -> None:
        """Delete one account (the connector applies its safe options, e.g. Dropbox wipe_data=false)."""

    # -- groups --------------------------------------------------------------------------
    def list_groups(self) -> Iterable[TargetGroup]:
        raise NotImplementedError

    def find_groups(self, name: str) -> list[TargetGroup]:
        """Groups named ``name`` case-insensitively; connectors with a server-side filter override."""
        return [group for group in self.list_groups() if group.name.lower() == name.lower()]

    def group_members(self, group: TargetGroup) -> set[str]:
        """Target user ids of the group's members.

        A target that removes members by a handle of their own (Box's membership id) also fills
        ``group.member_handles`` (user id -> handle), for its ``change_members`` to use.
        """
        raise NotImplementedError

    def create_group(self, name: str, link: str | None) -> TargetGroup:
        raise NotImplementedError

    def update_group(self, group: TargetGroup, name: str | None = None, link: str | None = None) -> None:
        """Rename the group and/or set its ownership marker."""
        raise NotImplementedError

    def delete_group(self, group: TargetGroup) -> None:
        raise NotImplementedError

    def change_members(self, group: TargetGroup, add: list[str], remove: list[str]) -> MemberFailures:
        """Add and remove target user ids (at most ``capabilities.member_chunk`` of each per call).

        Returns the members whose change failed, user id -> the service's message (empty when all
        succeeded), so a partial success is reported per member. A failure that says nothing of
        single members (the group is gone, the request was refused) is raised instead.
        """
        raise NotImplementedError

    # -- attribute paths -----------------------------------------------------------------
    def read_path(self, resource: dict[str, Any], path: str) -> Any:
        """The value at ``path`` in a target resource, None when absent.

        Paths are dotted (``name.givenName``); a SCIM extension URN prefix is one step
        (``urn:...:enterprise:2.0:User:employeeNumber``); ``[.tag]`` reads a union's tag, as
        Stone (Dropbox) writes unions (``status[.tag]`` -> ``resource["status"][".tag"]``).
        Connectors with richer paths override.
        """
        node: Any = resource
        for step in split_path(path):
            if not isinstance(node, dict):
                return None
            node = node.get(step)
            if node is None:
                return None
        return node


def split_path(path: str) -> list[str]:
    """``urn:a:b:2.0:User:x.y`` -> [``urn:a:b:2.0:User``, ``x``, ``y``]; ``a.b`` -> [``a``, ``b``];
    ``a.b[.tag]`` -> [``a``, ``b``, ``.tag``]."""
    if path.endswith(UNION_TAG):
        return split_path(path[: -len(UNION_TAG)]) + [".tag"]
    if path.lower().startswith("urn:"):
        urn, _sep, rest = path.rpartition(":")
        return [urn] + rest.split(".")
    return path.split(".")


UNION_TAG = "[.tag]"
