# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plain records that flow directory -> mapping -> plan -> report.

Private to this collection: the names here may change without notice.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

REDACTED = "********"
# Attribute paths whose values never appear in actions, diffs or module results.
SECRET_WORDS = ("password", "secret", "token")


def is_empty(value: Any) -> bool:
    """The one notion of "no value": None, "" and empty lists, dicts, sets and tuples."""
    return value is None or (isinstance(value, (str, list, dict, set, tuple)) and len(value) == 0)


def redact_secret_paths(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` with the value of every secret-looking path (``password``, ``...Token``) masked."""
    return {
        path: (REDACTED if value is not None and any(word in path.lower() for word in SECRET_WORDS) else value)
        for path, value in values.items()
    }


class ProvisioningError(Exception):
    """The one error type of this collection.

    ``message`` is already fit for a human (it names the object and the field, and
    carries the service's own words); it never contains a secret.
    """

    def __init__(self, message: str, status: int | None = None, details: Any = None, wrote: bool = False):
        super().__init__(message)
        self.message = message
        self.status = status
        self.details = details
        # The failed operation wrote something before it failed (Box moved a user's content, then
        # the delete failed): the run changed the target although the action failed.
        self.wrote = wrote


@dataclass
class SourceUser:
    """A user read from the directory."""

    id: str  # stable id: objectGUID / entryUUID / nsUniqueId
    dn: str
    disabled: bool
    attributes: dict[str, Any] = field(default_factory=dict)
    groups: list[str] = field(default_factory=list)  # names of the in-scope groups the user belongs to

    def as_dict(self) -> dict[str, Any]:
        # shallow on purpose: mapping reads every record, and asdict() would deep-copy each one
        return {
            "id": self.id,
            "dn": self.dn,
            "disabled": self.disabled,
            "attributes": self.attributes,
            "groups": self.groups,
        }


@dataclass
class SourceGroup:
    """A group read from the directory; ``members`` are stable ids of in-scope users."""

    id: str
    dn: str
    name: str
    members: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "dn": self.dn, "name": self.name, "members": self.members}


@dataclass
class DesiredUser:
    """A source user after attribute mapping: what the target account should look like.

    ``attrs`` maps target attribute paths (``userName``, ``name.givenName``,
    ``urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber``) to values.
    """

    source_id: str
    key: str
    attrs: dict[str, Any]
    disabled: bool = False


@dataclass
class DesiredGroup:
    source_id: str
    name: str
    members: set[str] = field(default_factory=set)  # source ids of member users


@dataclass
class TargetUser:
    """An account as the target reports it.

    ``link`` is the ownership marker this provisioner stored (in the target's own field, or
    in the state file), ``None`` when there is none. ``resource`` is the service's record, kept
    so that the connector can read attribute paths from it and the diff can show it.
    """

    id: str
    key: str
    enabled: bool = True
    link: str | None = None
    resource: dict[str, Any] = field(default_factory=dict)


@dataclass
class TargetGroup:
    id: str
    name: str
    link: str | None = None
    members: set[str] | None = None  # target user ids; None until fetched
    resource: dict[str, Any] = field(default_factory=dict)
    # user id -> the target's own handle of the membership (Box's membership id), where it has one
    member_handles: dict[str, str] | None = None


@dataclass
class RecordError:
    """A source record that could not be turned into a desired object (e.g. its key is empty).

    The engine reports it as a failed action and treats the object as present but unknown: its
    target account is neither updated nor deprovisioned, and its memberships are left alone.
    """

    object_type: str  # user | group
    source_id: str | None
    name: str  # the record's DN, or its id when it has no DN
    message: str


@dataclass
class Action:
    """One planned write. After apply, ``status`` is ``ok`` or ``failed`` (with ``error``).

    Planning itself may refuse an action (``failed``, e.g. a key held by another provisioner's
    account) or skip it (``skipped``, e.g. a protected account); those are never applied.
    """

    kind: str  # create_user, link_user, update_user, enable_user, disable_user, delete_user,
    # create_group, link_group, rename_group, delete_group, add_members, remove_members
    object_type: str  # user | group
    name: str  # the human key: userName / login / group name
    source_id: str | None = None
    target_id: str | None = None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    changes: dict[str, Any] = field(default_factory=dict)
    members: list[str] = field(default_factory=list)  # for add_members / remove_members: user names
    member_errors: dict[str, str] = field(default_factory=dict)  # user name -> why its change failed
    status: str = "planned"  # planned | ok | failed | skipped
    wrote: bool = False  # a failed action that still wrote part of its change
    error: str | None = None
    reason: str | None = None  # why the action was planned (e.g. "disabled in the directory") or skipped

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        return {k: v for k, v in data.items() if v not in (None, {}, [])}
