# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One user or one group at a time: what the ``<target>_user`` / ``_group`` / ``_info`` modules do.

Private to this collection: the names here may change without notice.

Vendor-neutral: everything goes through the ``Connector`` interface, so the Box, Dropbox and
PingID modules reuse these functions with their own connector factory and key option. Each
``run_*`` function finds the object by its key, compares only what the task manages, writes only
what differs (nothing in check mode), and returns the object, the changes and, with ``--diff``,
before/after restricted to the managed fields. Errors are ``ProvisioningError`` and reach the
user through ``_runner._guarded``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from typing import Any

from ansible_collections.idsync.provisioning.plugins.module_utils._connector import Connector
from ansible_collections.idsync.provisioning.plugins.module_utils._engine import (
    change_members_in_chunks,
    settle_enabled,
    values_equal,
)
from ansible_collections.idsync.provisioning.plugins.module_utils._model import (
    ProvisioningError,
    TargetGroup,
    TargetUser,
    redact_secret_paths,
)
from ansible_collections.idsync.provisioning.plugins.module_utils._runner import ConnectorFactory, _guarded

STATES = ["present", "absent"]
MEMBER_LISTS = ("set", "add", "remove")
UPDATE_PASSWORD = ["on_create", "always"]

# Stands in, in check mode, for the id of a member whose account does not exist yet.
_PENDING = "\x00pending:"

# Above this many member ids of unknown name, one listing of all users is cheaper than one GET each.
_LIST_USERS_ABOVE = 20


# -- argument spec pieces ---------------------------------------------------------------------


def user_argument_spec(
    key_option: str = "user_name", link_option: str | None = "external_id", password: bool = False
) -> dict[str, Any]:
    """The options of ``<target>_user`` besides the connection.

    ``password``: the account's own password (write-only) with ``update_password``, for targets
    whose accounts have one.
    """
    spec: dict[str, Any] = {
        key_option: {"type": "str", "required": True},
        "state": {"type": "str", "default": "present", "choices": list(STATES)},
        "attributes": {"type": "dict", "default": {}},
        "enabled": {"type": "bool"},
    }
    if password:
        spec["password"] = {"type": "str", "no_log": True}
        # Services never return a password, so it cannot be compared: "always" writes it on every run.
        spec["update_password"] = {"type": "str", "default": "on_create", "choices": list(UPDATE_PASSWORD)}
    if link_option:
        spec[link_option] = {"type": "str"}
        spec["force_link"] = {"type": "bool", "default": False}
    return spec


def user_info_argument_spec(key_option: str = "user_name") -> dict[str, Any]:
    """The options of ``<target>_user_info`` besides the connection."""
    return {
        key_option: {"type": "str"},
        "limit": {"type": "int"},
    }


def group_argument_spec(link_option: str | None = "external_id") -> dict[str, Any]:
    """The options of ``<target>_group`` besides the connection."""
    spec: dict[str, Any] = {
        "name": {"type": "str", "required": True},
        "new_name": {"type": "str"},
        "state": {"type": "str", "default": "present", "choices": list(STATES)},
        "members": {
            "type": "dict",
            "options": {name: {"type": "list", "elements": "str"} for name in MEMBER_LISTS},
            "mutually_exclusive": [("set", "add"), ("set", "remove")],
        },
    }
    if link_option:
        spec[link_option] = {"type": "str"}
        spec["force_link"] = {"type": "bool", "default": False}
    return spec


def group_info_argument_spec() -> dict[str, Any]:
    """The options of ``<target>_group_info`` besides the connection."""
    return {
        "name": {"type": "str"},
        "include_members": {"type": "bool", "default": False},
    }


# -- what the modules return ------------------------------------------------------------------


def user_view(user: TargetUser | None, hidden: Iterable[str] = ()) -> dict[str, Any] | None:
    """A user as the modules return it: normalised fields plus the service's own record.

    ``hidden``: top-level attributes left out of the record (a write-only password a service echoed,
    or that was filled in locally after a write without an answer body).
    """
    if user is None:
        return None
    lowered = {name.lower() for name in hidden}
    resource = {key: value for key, value in user.resource.items() if key.lower() not in lowered}
    return {"id": user.id, "key": user.key, "enabled": user.enabled, "link": user.link, "resource": resource}


def group_view(group: TargetGroup | None, member_names: list[str] | None = None) -> dict[str, Any] | None:
    """A group as the modules return it; ``members`` (user keys) only when they were read."""
    if group is None:
        return None
    view: dict[str, Any] = {"id": group.id, "name": group.name, "link": group.link, "resource": group.resource}
    if member_names is not None:
        view["members"] = member_names
    return view


def _sorted_names(names: Iterable[str]) -> list[str]:
    return sorted(set(names), key=lambda name: (name.lower(), name))


def _diff(kind: str, name: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    header = f"{kind} {name}"
    return {
        "before_header": header,
        "after_header": header,
        "before": redact_secret_paths(before),
        "after": redact_secret_paths(after),
    }


def _check_link(what: str, current: str | None, wanted: str | None, option: str, force: bool) -> None:
    """Refuse to take over an object that carries another provisioner's marker."""
    if wanted is None or force or not current or current == wanted:
        return
    raise ProvisioningError(
        f"{what} carries the marker {current!r} of another provisioner, not {option}={wanted!r}; "
        "it is left alone. Set force_link=true to take it over"
    )


def _link_param(params: Mapping[str, Any], link_option: str | None, where: str, capability: str) -> str | None:
    link = params.get(link_option) if link_option else None
    if link is None:
        return None
    if link == "":
        raise ProvisioningError(f"{link_option}: must not be empty (leave it out to keep the {where}' marker as it is)")
    if capability != "target":
        raise ProvisioningError(f"{link_option}: this connection does not store a marker on {where}")
    return link


# -- users ------------------------------------------------------------------------------------


def run_user(
    module,
    connector_factory: ConnectorFactory,
    user_key: str,
    key_option: str = "user_name",
    link_option: str | None = "external_id",
    password_path: str | None = None,
) -> None:
    """``<target>_user``: one account present (with the given attributes) or absent.

    ``user_key`` is the target's key path (SCIM ``userName``); ``key_option`` the module option
    that carries it. ``password_path`` is the target's path of the account's password (SCIM
    ``password``) when the module has the ``password`` / ``update_password`` options.
    """

    def work() -> dict[str, Any]:
        params = module.params
        key = params[key_option]
        if not key or not key.strip():
            raise ProvisioningError(f"{key_option}: must not be empty")
        attrs = _user_attributes(params["attributes"] or {}, key, user_key, key_option, password_path)
        secret = _password_param(params, password_path)
        connector = connector_factory(params)
        link = _link_param(params, link_option, "users", connector.capabilities.user_link)
        force = bool(params.get("force_link"))
        enabled = params["enabled"]
        if enabled is not None and not connector.capabilities.can_disable:
            raise ProvisioningError("enabled: this service has no way to disable an account")

        user = connector.find_user(key)
        what = f"user {user.key if user else key}"
        if user is not None:
            _check_link(what, user.link, link, link_option or "link", force)
            for path in attrs:  # an unsupported path fails here, before any write
                connector.read_path(user.resource, path)

        if params["state"] == "absent":
            return _user_absent(module, connector, user, key, attrs, link_option)
        if user is None:
            if secret is not None:
                attrs = dict(attrs, **{password_path: secret})
            return _user_create(module, connector, key, user_key, attrs, link, link_option, enabled, password_path)
        rewrite = secret is not None and params.get("update_password") == "always"
        password = {password_path: secret} if rewrite else {}
        return _user_update(module, connector, user, attrs, link, link_option, enabled, password, password_path)

    _guarded(module, work, needs=("requests",))


def _user_attributes(
    attributes: Mapping[str, Any], key: str, user_key: str, key_option: str, password_path: str | None = None
) -> dict[str, Any]:
    """The managed attribute paths; the key path is the key option's and may only repeat it."""
    attrs: dict[str, Any] = {}
    for path, value in attributes.items():
        if not isinstance(path, str) or not path:
            raise ProvisioningError(f"attributes: {path!r} is not an attribute path")
        if password_path and path.lower() == password_path.lower():
            raise ProvisioningError(
                f"attributes.{path}: set the account's password with the password option "
                "(and update_password), which keeps it out of the output"
            )
        if path.lower() == user_key.lower():
            if not (isinstance(value, str) and value.lower() == key.lower()):
                raise ProvisioningError(
                    f"attributes.{path}: the key is set by {key_option}; this module finds accounts by it "
                    "and does not rename them"
                )
            continue
        attrs[path] = value
    return attrs


def _password_param(params: Mapping[str, Any], password_path: str | None) -> str | None:
    """The account's password to write, None when the module has no such option or it is not given."""
    if not password_path:
        return None
    secret = params.get("password")
    if secret is None:
        return None
    if secret == "":
        raise ProvisioningError("password: must not be empty (leave it out to leave the password as it is)")
    return secret


def _user_result(
    module, user: TargetUser | None, changes: dict[str, Any], diff: dict[str, Any], password_path: str | None = None
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "changed": bool(changes),
        "user": user_view(user, hidden=(password_path,) if password_path else ()),
        "changes": redact_secret_paths(changes),
    }
    if module._diff:
        result["diff"] = diff
    return result


def _user_absent(module, connector, user, key, attrs, link_option) -> dict[str, Any]:
    if user is None:
        return _user_result(module, None, {}, _diff("user", key, {}, {}))
    before: dict[str, Any] = {"key": user.key, "enabled": user.enabled}
    if link_option:
        before[link_option] = user.link
    before.update({path: connector.read_path(user.resource, path) for path in attrs})
    if not module.check_mode:
        connector.delete_user(user)
    return _user_result(module, None, {"deleted": True}, _diff("user", user.key, before, {}))


def _user_create(module, connector, key, user_key, attrs, link, link_option, enabled, password_path) -> dict[str, Any]:
    enabled = True if enabled is None else enabled
    values = {user_key: key}
    values.update({path: value for path, value in attrs.items() if value is not None})
    changes: dict[str, Any] = dict(values, enabled=enabled)
    if link is not None:
        changes[link_option] = link
    user = None
    if not module.check_mode:
        user = connector.create_user(values, link, enabled)
        settle_enabled(connector, user, enabled)
    after = dict(changes, key=key)
    after.pop(user_key, None)
    return _user_result(module, user, dict(changes, created=True), _diff("user", key, {}, after), password_path)


def _user_update(module, connector, user, attrs, link, link_option, enabled, password, password_path) -> dict[str, Any]:
    """``password``: {path: value} to write although it cannot be compared (update_password=always), or empty."""
    current = {path: connector.read_path(user.resource, path) for path in attrs}
    changes = {path: wanted for path, wanted in attrs.items() if not values_equal(wanted, current[path])}
    before: dict[str, Any] = {"key": user.key, **current}
    after: dict[str, Any] = {"key": user.key, **current, **changes}
    if password:  # write-only: never read back, so it is written and shown as written (masked)
        changes.update(password)
        before.update(dict.fromkeys(password))
        after.update(password)
    write_link = link is not None and link != user.link
    if link is not None:
        before[link_option] = user.link
        after[link_option] = link
    toggle = enabled is not None and enabled != user.enabled
    if enabled is not None:
        before["enabled"] = user.enabled
        after["enabled"] = enabled

    written: dict[str, Any] = dict(changes)
    if write_link:
        written[link_option] = link
    if toggle:
        written["enabled"] = enabled
    if not module.check_mode:
        if changes or write_link:
            connector.update_user(user, changes, link if write_link else None)
        if toggle:
            connector.set_user_enabled(user, enabled)
    return _user_result(module, user, written, _diff("user", user.key, before, after), password_path)


def run_user_info(module, connector_factory: ConnectorFactory, key_option: str = "user_name") -> None:
    """``<target>_user_info``: one account by key, or every account (up to ``limit``)."""

    def work() -> dict[str, Any]:
        params = module.params
        key, limit = params[key_option], params.get("limit")
        if limit is not None and limit < 1:
            raise ProvisioningError(f"limit: must be at least 1, got {limit}")
        connector = connector_factory(params)
        if key is not None:
            user = connector.find_user(key)
            users = [user] if user is not None else []
            return {"changed": False, "user": user_view(user), "users": [user_view(u) for u in users]}
        # Every connector lists (list_users is part of the contract); where it is not cheap (PingID's
        # organisation report job) one listing for a module asked for everyone is still the cheap way.
        found: Iterable[TargetUser] = connector.list_users()
        if limit is not None:
            found = itertools.islice(found, limit)
        return {"changed": False, "users": [user_view(u) for u in found]}

    _guarded(module, work, needs=("requests",))


# -- groups -----------------------------------------------------------------------------------


def find_group(connector: Connector, name: str) -> TargetGroup | None:
    """The one group named ``name``; several of that name are an error (the task cannot choose)."""
    groups = connector.find_groups(name)
    if len(groups) > 1:
        ids = ", ".join(sorted(group.id for group in groups))
        raise ProvisioningError(
            f"group {name}: {len(groups)} groups have this name ({ids}); rename or delete the extra ones"
        )
    return groups[0] if groups else None


def member_names(connector: Connector, ids: Iterable[str], known: Mapping[str, str] | None = None) -> dict[str, str]:
    """Target user id -> key for ``ids``; an id whose account no longer exists maps to itself."""
    names = {user_id: (known or {}).get(user_id) for user_id in ids}
    unknown = [user_id for user_id, name in names.items() if name is None]
    if len(unknown) > _LIST_USERS_ABOVE and connector.capabilities.can_list_users:
        wanted = set(unknown)
        for user in connector.list_users():
            if user.id in wanted:
                names[user.id] = user.key
    else:
        for user_id in unknown:
            user = connector.get_user(user_id)
            if user is not None:
                names[user_id] = user.key
    return {user_id: name if name is not None else user_id for user_id, name in names.items()}


def _member_option(members: Mapping[str, Any] | None) -> dict[str, list[str]] | None:
    if members is None:
        return None
    lists = {kind: [str(key) for key in members.get(kind) or []] for kind in MEMBER_LISTS}
    if members.get("set") is None and members.get("add") is None and members.get("remove") is None:
        raise ProvisioningError("members: give set, or add and/or remove")
    both = {key.lower() for key in lists["add"]} & {key.lower() for key in lists["remove"]}
    if both:
        raise ProvisioningError(f"members: in both add and remove: {', '.join(sorted(both))}")
    for kind, keys in lists.items():
        if any(not key.strip() for key in keys):
            raise ProvisioningError(f"members.{kind}: an empty user key")
    if members.get("set") is not None:
        return {"set": lists["set"]}
    return {"add": lists["add"], "remove": lists["remove"]}


def _resolve_members(module, connector: Connector, lists: Mapping[str, list[str]]) -> dict[str, TargetUser]:
    """Every key named in ``members`` -> its account; unknown keys fail the task before any write.

    In check mode an unknown key is not an error: an earlier task of the same run may create the
    account (which check mode did not), so it is reported as it would be added, with a warning
    naming it. A real run still fails when it does not exist by then.
    """
    resolved: dict[str, TargetUser] = {}
    missing: list[str] = []
    for key in dict.fromkeys(key for keys in lists.values() for key in keys):
        if key.lower() in resolved:
            continue
        user = connector.find_user(key)
        if user is None:
            missing.append(key)
        else:
            resolved[key.lower()] = user
    if missing and not module.check_mode:
        raise ProvisioningError(f"members: no such user: {', '.join(missing)}; nothing was changed")
    if missing:
        module.warn(
            f"members: no such user yet: {', '.join(missing)}; check mode takes them for accounts an earlier "
            "task would create (shown as added where this task adds them); a real run fails unless they exist by then"
        )
        for key in missing:
            resolved[key.lower()] = TargetUser(id=_PENDING + key.lower(), key=key)
    return resolved


def run_group(module, connector_factory: ConnectorFactory, link_option: str | None = "external_id") -> None:
    """``<target>_group``: one group present (renamed, members set/added/removed) or absent."""

    def work() -> dict[str, Any]:
        params = module.params
        name, new_name, state = params["name"], params["new_name"], params["state"]
        if not name or not name.strip():
            raise ProvisioningError("name: must not be empty")
        if new_name is not None and not new_name.strip():
            raise ProvisioningError("new_name: must not be empty")
        if new_name is not None and state == "absent":
            raise ProvisioningError("new_name: only with state=present")
        lists = _member_option(params["members"])
        if lists is not None and state == "absent":
            raise ProvisioningError("members: only with state=present")
        connector = connector_factory(params)
        if not connector.capabilities.groups:
            raise ProvisioningError("this service has no groups")
        link = _link_param(params, link_option, "groups", connector.capabilities.group_link)
        force = bool(params.get("force_link"))

        group = find_group(connector, name)
        if group is None and new_name is not None:
            group = find_group(connector, new_name)
        if group is not None:
            _check_link(f"group {group.name}", group.link, link, link_option or "link", force)
        if state == "absent":
            return _group_absent(module, connector, group, name, link_option)

        final_name = new_name if new_name is not None else name
        rename = group is not None and new_name is not None and group.name != new_name
        if rename and group.name.lower() != new_name.lower():
            taken = [other for other in connector.find_groups(new_name) if other.id != group.id]
            if taken:
                ids = ", ".join(sorted(other.id for other in taken))
                raise ProvisioningError(
                    f"group {group.name}: cannot rename to {new_name}, a group of that name exists ({ids})"
                )
        resolved = _resolve_members(module, connector, lists) if lists is not None else {}

        before: dict[str, Any] = {}
        after: dict[str, Any] = {"name": final_name}
        written: dict[str, Any] = {}
        if group is None:
            written["created"] = True
            written["name"] = final_name
            if link is not None:
                written[link_option] = link
                after[link_option] = link
            if not module.check_mode:
                group = connector.create_group(final_name, link)
        else:
            before["name"] = group.name
            if rename:
                written["name"] = new_name
            if link is not None:
                before[link_option] = group.link
                after[link_option] = link
                if link != group.link:
                    written[link_option] = link
            if not module.check_mode and (rename or link_option in written):
                connector.update_group(group, name=new_name if rename else None, link=written.get(link_option))

        names = None
        if lists is not None:
            names = _apply_members(module, connector, group, lists, resolved, before, after, written)
        if written.get("created"):
            before = {}  # nothing existed
        result: dict[str, Any] = {"changed": bool(written), "group": group_view(group, names), "changes": written}
        if module._diff:
            result["diff"] = _diff("group", final_name, before, after)
        return result

    _guarded(module, work, needs=("requests",))


def _apply_members(module, connector, group, lists, resolved, before, after, written) -> list[str]:
    """Compare and change the membership; fill the diff (restricted to the managed keys)."""
    if group is None:  # to be created (check mode): no members yet
        current: set[str] = set()
    elif group.members is not None:  # listed with the group, or just created
        current = set(group.members)
    else:
        current = set(connector.group_members(group))
    by_id = {user.id: user.key for user in resolved.values()}

    def ids(kind: str) -> set[str]:
        return {resolved[key.lower()].id for key in lists.get(kind, [])}

    if "set" in lists:
        wanted = ids("set")
        add, remove = wanted - current, current - wanted
        names = member_names(connector, current | wanted, by_id)
        before["members"] = _sorted_names(names[user_id] for user_id in current)
        after["members"] = _sorted_names(names[user_id] for user_id in wanted)
    else:
        added, removed = ids("add"), ids("remove")
        add, remove = added - current, removed & current
        managed = added | removed
        final = (current | added) - removed
        names = member_names(connector, current | added, by_id)
        before["members"] = _sorted_names(by_id[user_id] for user_id in managed & current)
        after["members"] = _sorted_names(by_id[user_id] for user_id in managed & final)
    if add:
        written["members_added"] = _sorted_names(names[user_id] for user_id in add)
    if remove:
        written["members_removed"] = _sorted_names(names[user_id] for user_id in remove)
    if (add or remove) and not module.check_mode:
        failed, _failure = change_members_in_chunks(connector, group, sorted(add), sorted(remove))
        if failed:
            listed = "; ".join(f"{names.get(user_id, user_id)}: {why}" for user_id, why in sorted(failed.items()))
            raise ProvisioningError(f"members: {len(failed)} of {len(add) + len(remove)} changes failed: {listed}")
    final_ids = (current | add) - remove
    return _sorted_names(names[user_id] for user_id in final_ids)


def _group_absent(module, connector, group, name, link_option) -> dict[str, Any]:
    written: dict[str, Any] = {}
    before: dict[str, Any] = {}
    if group is not None:
        before["name"] = group.name
        if link_option:
            before[link_option] = group.link
        written["deleted"] = True
        if not module.check_mode:
            connector.delete_group(group)
    result: dict[str, Any] = {"changed": bool(written), "group": None, "changes": written}
    if module._diff:
        result["diff"] = _diff("group", group.name if group else name, before, {})
    return result


def run_group_info(module, connector_factory: ConnectorFactory) -> None:
    """``<target>_group_info``: one group by name, or every group; members as user keys on request."""

    def work() -> dict[str, Any]:
        params = module.params
        name, include_members = params["name"], params["include_members"]
        connector = connector_factory(params)
        if not connector.capabilities.groups:
            raise ProvisioningError("this service has no groups")
        if name is not None:
            group = find_group(connector, name)
            groups = [group] if group is not None else []
        else:
            groups = list(connector.list_groups())
        views = []
        if include_members:
            member_ids = {group.id: set(connector.group_members(group)) for group in groups}
            every_id = set().union(*member_ids.values()) if member_ids else set()
            names = member_names(connector, every_id)
            views = [group_view(g, _sorted_names(names[i] for i in member_ids[g.id])) for g in groups]
        else:
            views = [group_view(g) for g in groups]
        result: dict[str, Any] = {"changed": False, "groups": views}
        if name is not None:
            result["group"] = views[0] if views else None
        return result

    _guarded(module, work, needs=("requests",))
