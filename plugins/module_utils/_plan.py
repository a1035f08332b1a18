# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plans people review and approve: the readable preview, saved plans, drift, renderings, run reports.

Private to this collection: the names here may change without notice. docs/plans.md is the
operator's description of the same things.

* The **preview** (``preview_lines``): the counts per action first, then one entry per object
  with the action, its reason and the changed fields under the target's own names (``active``,
  not ``enabled``), ``before -> after``; a group's member changes are one entry of ``+ name`` /
  ``- name`` lines. Long plans show the first ``limit`` objects per action and "and K more".
* A **saved plan** (``build_saved_plan`` / ``write_plan``): JSON, mode 0600, no secret. For every
  object it would touch, what was read of it (a *view*: the mapped source values, the target's
  values of the mapped paths, key, enabled, marker, members where the plan changes them) and a
  fingerprint of each view; the collection version, the target, the non-secret options, the time.
  ``plan_id`` is the fingerprint of all the rest: a file changed afterwards is refused.
* **Applying a saved plan** (``load_plan`` / ``prepare_apply``): the run re-reads exactly what
  the plan touches (by id and key, or one listing where that is cheaper), compares the views, and
  rebuilds the plan's own steps for the objects that did not drift. Secret values (a mapped
  password) are never in the file: they come from the source read at apply time, whose other
  values the fingerprint proved unchanged.
* **Renderings** of a plan file (``render_plan``): Markdown and CSV for a change ticket, and text.
* The **run report file** (``build_run_report`` / ``write_run_report``): JSON, or Markdown when the
  path ends in ``.md``.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ansible_collections.idsync.provisioning.plugins.module_utils._connector import DEFAULT_FIELD_NAMES, Connector
from ansible_collections.idsync.provisioning.plugins.module_utils._engine import (
    PHASES,
    MemberRef,
    Plan,
    Step,
    desired_fingerprint,
    parallel,
    stored_link,
)
from ansible_collections.idsync.provisioning.plugins.module_utils._http import DEFAULT_USER_AGENT
from ansible_collections.idsync.provisioning.plugins.module_utils._model import (
    SECRET_WORDS,
    Action,
    DesiredGroup,
    DesiredUser,
    ProvisioningError,
    RecordError,
    TargetGroup,
    TargetUser,
    redact_secret_paths,
)
from ansible_collections.idsync.provisioning.plugins.module_utils._state import (
    OwnershipState,
    fingerprint,
    format_time,
    parse_time,
    write_private,
)

COLLECTION_VERSION = DEFAULT_USER_AGENT.rpartition("/")[2]
PLAN_FORMAT = "idsync.provisioning.plan"
PLAN_VERSION = 1
REPORT_FORMAT = "idsync.provisioning.report"
REPORT_VERSION = 1
DEFAULT_LIMIT = 20
MEMBER_KINDS = ("add_members", "remove_members")
# Above this many touched accounts, a target that lists cheaply is re-read with one listing
# instead of one read per account (a page holds 100 to 1000 accounts).
LISTING_ABOVE = 50
# The order of a preview's sections: apply()'s order, with a group's member changes in one section.
SECTIONS = tuple(kind for kinds in PHASES for kind in kinds if kind != "remove_members")
SIGNS = {
    "create_user": "+",
    "create_group": "+",
    "delete_user": "-",
    "delete_group": "-",
    "disable_user": "-",
}
VALUE_WIDTH = 120


def is_secret_path(path: str) -> bool:
    return any(word in path.lower() for word in SECRET_WORDS)


# -- names and values for people ----------------------------------------------------------------


def field_labels(connector: Connector, user_key: str) -> dict[str, dict[str, str]]:
    """The target's names of the engine's fields, per object type: saved with the plan, so that a
    rendering needs no connector. A user's key is the target's key attribute unless it says more."""
    labels: dict[str, dict[str, str]] = {}
    for object_type in ("user", "group"):
        names = {name: connector.field_name(object_type, name) for name in DEFAULT_FIELD_NAMES}
        if object_type == "user" and names["key"] == DEFAULT_FIELD_NAMES["key"]:
            names["key"] = user_key
        labels[object_type] = names
    return labels


def label(labels: Mapping[str, Mapping[str, str]], object_type: str, name: str) -> str:
    return labels.get(object_type, {}).get(name, name)


def show(value: Any, width: int = VALUE_WIDTH) -> str:
    """A value as people read it: JSON (strings quoted, letters unescaped), cut at ``width``."""
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= width else text[: width - 3] + "..."


def changed_fields(action: Mapping[str, Any], labels: Mapping[str, Mapping[str, str]]) -> list[tuple[str, Any, Any]]:
    """``(field as the target names it, before, after)`` of one action (members are listed apart)."""
    before, after = action.get("before") or {}, action.get("after") or {}
    names = list(dict.fromkeys([*after, *before]))
    rows = []
    for name in names:
        if name == "members":
            continue
        rows.append((label(labels, action.get("object_type", "user"), name), before.get(name), after.get(name)))
    return rows


def _change_text(action: Mapping[str, Any], labels) -> list[str]:
    """``name: before -> after`` per changed field (a created object's values, a deleted one's)."""
    creating, deleting = action["kind"].startswith("create_"), action["kind"].startswith("delete_")
    lines = []
    for name, before, after in changed_fields(action, labels):
        if creating:
            lines.append(f"{name}: {show(after)}")
        elif deleting:
            lines.append(f"{name}: {show(before)} (deleted)")
        else:
            lines.append(f"{name}: {show(before)} -> {show(after)}")
    return lines


def readable_action(action: Mapping[str, Any], labels: Mapping[str, Mapping[str, str]]) -> dict[str, Any]:
    """An action for a report: kind, object, reason, status, its fields under the target's names."""
    keys = ("kind", "object_type", "name", "target_id", "reason", "status", "error")
    entry = {key: action[key] for key in keys if action.get(key) is not None}
    fields = {name: {"before": before, "after": after} for name, before, after in changed_fields(action, labels)}
    if fields:
        entry["fields"] = fields
    if action.get("members"):
        entry["members"] = list(action["members"])
    return entry


def _object_of(action: Mapping[str, Any]) -> tuple[str, str]:
    return action.get("object_type", ""), str(action.get("source_id") or action.get("target_id") or action["name"])


def _member_groups(actions: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """add_members + remove_members of one group as one entry: name, reason, added, removed."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for action in actions:
        group = groups.setdefault(
            _object_of(action), {"name": action["name"], "added": [], "removed": [], "errors": {}}
        )
        group["added" if action["kind"] == "add_members" else "removed"] += list(action.get("members") or [])
        group["errors"].update(action.get("member_errors") or {})
        if action.get("status") == "failed" and action.get("error"):
            group["error"] = action["error"]
    for group in groups.values():
        for side in ("added", "removed"):
            group[side].sort(key=lambda name: (name.lower(), name))
    return list(groups.values())


def summary_counts(actions: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    counts = Counter(action["kind"] for action in actions)
    return {kind: counts[kind] for kind in [*SECTIONS, "remove_members"] if counts.get(kind)} | {
        kind: count for kind, count in counts.items() if kind not in SECTIONS and kind != "remove_members"
    }


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def summary_lines(done: Sequence[Mapping[str, Any]], refused: int, skipped: int, failed: int = 0) -> list[str]:
    """The counts, one line per action kind, a group's member changes as one line."""
    counts = summary_counts(done)
    objects = len({_object_of(action) for action in done})
    # a group's added and removed members are one change, as the preview shows them
    changes = len([action for action in done if action["kind"] not in MEMBER_KINDS])
    changes += len({_object_of(action) for action in done if action["kind"] in MEMBER_KINDS})
    head = f"Summary: {_plural(changes, 'change')} to {_plural(objects, 'object')}"
    extra = [
        f"{count} {word}"
        for count, word in ((failed, "failed"), (refused, "refused"), (skipped, "skipped (protected)"))
        if count
    ]
    lines = [head + (f"; {', '.join(extra)}" if extra else "")]
    if not done:
        lines.append("  nothing to change")
    width = max([len(kind) for kind in counts if kind not in MEMBER_KINDS] + [len("members")])
    for kind, count in counts.items():
        if kind in MEMBER_KINDS:
            continue
        lines.append(f"  {kind.ljust(width)}  {count}")
    member_actions = [action for action in done if action["kind"] in MEMBER_KINDS]
    if member_actions:
        groups = _member_groups(member_actions)
        added = sum(len(group["added"]) for group in groups)
        removed = sum(len(group["removed"]) for group in groups)
        lines.append(f"  {'members'.ljust(width)}  {_plural(len(groups), 'group')}: {added} added, {removed} removed")
    return lines


def preview_lines(
    actions: Sequence[Mapping[str, Any]],
    labels: Mapping[str, Mapping[str, str]],
    title: str,
    check_mode: bool,
    limit: int = DEFAULT_LIMIT,
    managed: tuple[int, int] | None = None,
) -> list[str]:
    """The readable preview (or, after a real run, account) of a plan's actions, as text lines.

    ``actions`` are report actions (dicts with a status). In check mode the planned ones are the
    changes; after a real run the ones done. ``limit`` objects are shown per action (0: all).
    """
    done_status = "planned" if check_mode else "ok"
    done = [action for action in actions if action.get("status") == done_status]
    failed = [action for action in actions if action.get("status") == "failed"]
    skipped = [action for action in actions if action.get("status") == "skipped"]
    lines = [title]
    lines += summary_lines(done, len(failed) if check_mode else 0, len(skipped), 0 if check_mode else len(failed))
    if managed is not None:
        lines.append(f"Managed when planned: {_plural(managed[0], 'user')}, {_plural(managed[1], 'group')}")
    for kind in SECTIONS:
        if kind == "add_members":
            lines += _member_section([a for a in done if a["kind"] in MEMBER_KINDS], limit)
            continue
        section = [action for action in done if action["kind"] == kind]
        if not section:
            continue
        lines.append("")
        lines.append(f"{kind} ({len(section)})")
        for action in _first(section, limit):
            lines += _entry_lines(action, labels)
        lines += _more(section, limit, "")
    other = [action for action in done if action["kind"] not in SECTIONS and action["kind"] not in MEMBER_KINDS]
    for title_word, group in (("other", other), ("refused" if check_mode else "failed", failed), ("skipped", skipped)):
        if not group:
            continue
        lines.append("")
        lines.append(f"{title_word} ({len(group)})")
        for action in _first(group, limit):
            why = action.get("error") or action.get("reason") or ""
            lines.append(f"  ! {action['kind']} {action['object_type']} {action['name']}: {why}")
        lines += _more(group, limit, "")
    return lines


def _first(items: Sequence[Any], limit: int) -> Sequence[Any]:
    return items if limit <= 0 else items[:limit]


def _more(items: Sequence[Any], limit: int, noun: str, indent: str = "  ") -> list[str]:
    if limit <= 0 or len(items) <= limit:
        return []
    return [f"{indent}... and {len(items) - limit} more{noun}"]


def _entry_lines(action: Mapping[str, Any], labels: Mapping[str, Mapping[str, str]]) -> list[str]:
    sign = SIGNS.get(action["kind"], "~")
    reason = f": {action['reason']}" if action.get("reason") else ""
    lines = [f"  {sign} {action['name']}{reason}"]
    lines += [f"      {change}" for change in _change_text(action, labels)]
    if action.get("status") == "failed" and action.get("error"):
        lines.append(f"      failed: {action['error']}")
    return lines


def _member_section(actions: Sequence[Mapping[str, Any]], limit: int) -> list[str]:
    if not actions:
        return []
    groups = _member_groups(actions)
    lines = ["", f"members ({_plural(len(groups), 'group')})"]
    for group in _first(groups, limit):
        counts = []
        if group["added"]:
            counts.append(f"{len(group['added'])} added")
        if group["removed"]:
            counts.append(f"{len(group['removed'])} removed")
        lines.append(f"  ~ {group['name']}: {', '.join(counts)}")
        changes = [f"+ {name}" for name in group["added"]] + [f"- {name}" for name in group["removed"]]
        for change in _first(changes, limit):
            why = group["errors"].get(change[2:])
            lines.append(f"      {change}" + (f" (failed: {why})" if why else ""))
        lines += _more(changes, limit, " members", "      ")
        if group.get("error"):
            lines.append(f"      failed: {group['error']}")
    lines += _more(groups, limit, " groups")
    return lines


def diff_entries(
    actions: Sequence[Mapping[str, Any]], preview: list[str], labels, check_mode: bool, limit: int
) -> list[dict[str, Any]]:
    """What ``--diff`` shows: the readable preview first, then before/after of the first ``limit``
    objects per action (users and group renames; member changes are in the preview only), under
    the target's field names."""
    done_status = "planned" if check_mode else "ok"
    # Ansible prints "prepared" as it is; the headers (unused without before/after) name the entry
    # for a playbook that looks the entries up by header.
    entries: list[dict[str, Any]] = [
        {"before_header": "preview", "after_header": "preview", "prepared": "\n".join(preview) + "\n"}
    ]
    shown: Counter = Counter()
    for action in actions:
        if action.get("status") != done_status or action["kind"] in MEMBER_KINDS:
            continue
        if action.get("before") is None and action.get("after") is None:
            continue
        shown[action["kind"]] += 1
        if 0 < limit < shown[action["kind"]]:
            continue
        header = f"{action['object_type']} {action['name']} ({action['kind']})"
        before, after = (_renamed(action, side, labels) for side in ("before", "after"))
        entries.append(
            {
                "before_header": header,
                "after_header": header,
                "before": json.dumps(before, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
                "after": json.dumps(after, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
            }
        )
    return entries


def _renamed(action: Mapping[str, Any], side: str, labels) -> dict[str, Any]:
    """One side of an action's before/after under the target's field names."""
    object_type = action.get("object_type", "user")
    return {label(labels, object_type, name): value for name, value in (action.get(side) or {}).items()}


# -- views and fingerprints ---------------------------------------------------------------------


class Views:
    """What a plan read of each object it touches, in one comparable form (a *view*) per side.

    The same class builds the views when the plan is saved and when it is applied, so equal
    objects give equal views whatever read them (a listing or a read by id).
    """

    def __init__(
        self,
        connector: Connector,
        state: OwnershipState | None,
        paths: Sequence[str],
        desired_users: Iterable[DesiredUser],
        desired_groups: Iterable[DesiredGroup] | None,
        errors: Iterable[RecordError] = (),
    ):
        self.connector = connector
        self.caps = connector.capabilities
        self.state = state
        self.paths = [path for path in paths if not is_secret_path(path)]
        self.users = {user.source_id: user for user in desired_users}
        self.users_by_key = {user.key.lower(): user for user in self.users.values()}
        self.groups = {group.source_id: group for group in desired_groups or []}
        self.groups_by_name = {group.name.lower(): group for group in self.groups.values()}
        self.errors = {(error.object_type, error.source_id): error.message for error in errors if error.source_id}

    def source(self, object_type: str, source_id: str | None, name: str) -> dict[str, Any] | None:
        error = self.errors.get((object_type, source_id))
        if error is not None:
            return {"error": error}
        if object_type == "user":
            user = self.users.get(source_id) if source_id else self.users_by_key.get(name.lower())
            if user is None:
                return None
            return {"key": user.key, "disabled": user.disabled, "attrs": redact_secret_paths(user.attrs)}
        group = self.groups.get(source_id) if source_id else self.groups_by_name.get(name.lower())
        if group is None:
            return None
        return {"name": group.name, "members": sorted(group.members)}

    def desired_user(self, source_id: str | None) -> DesiredUser | None:
        return self.users.get(source_id or "")

    def target_user(self, user: TargetUser | None) -> dict[str, Any] | None:
        if user is None:
            return None
        values = {path: self.connector.read_path(user.resource, path) for path in self.paths}
        return {
            "id": user.id,
            "key": user.key,
            "enabled": user.enabled,
            "link": stored_link(self.caps, self.state, "user", user),
            "values": values,
        }

    def target_group(self, group: TargetGroup | None, members: set[str] | None, with_members: bool):
        if group is None:
            return None
        view: dict[str, Any] = {
            "id": group.id,
            "name": group.name,
            "link": stored_link(self.caps, self.state, "group", group),
        }
        if with_members:
            view["members"] = sorted(members if members is not None else (group.members or set()))
        return view


def _object_key(action: Action) -> str:
    if action.target_id:
        return f"{action.object_type}:{action.target_id}"
    return f"{action.object_type}:new:{action.source_id or action.name}"


def build_saved_plan(
    plan: Plan,
    views: Views,
    labels: Mapping[str, Mapping[str, str]],
    context: Mapping[str, Any],
    now: float | None = None,
) -> dict[str, Any]:
    """The saved plan of a preview: every pending step, what it touches and what was read of it.

    ``context``: target (name and non-secret connection options), source (its non-secret options),
    options (the decision options), mapped_paths.
    """
    created = time.time() if now is None else now
    objects: dict[str, dict[str, Any]] = {}
    actions = []
    for step in plan.pending():
        action = step.action
        key = _object_key(action)
        entry = objects.setdefault(
            key,
            {
                "object_type": action.object_type,
                "name": action.name,
                "source_id": action.source_id,
                "target_id": action.target_id,
                "with_members": False,
                "_target": step.user if action.object_type == "user" else step.group,
                "_members": None,
            },
        )
        if action.kind in MEMBER_KINDS:
            entry["with_members"] = True
            entry["_members"] = step.current_members
        actions.append(_saved_action(step, key))
    for entry in objects.values():
        target, members = entry.pop("_target"), entry.pop("_members")
        source_view = views.source(entry["object_type"], entry["source_id"], entry["name"])
        if entry["object_type"] == "user":
            target_view = views.target_user(target)
        else:
            target_view = views.target_group(target, members, entry["with_members"])
        entry["source"] = {"fingerprint": fingerprint(source_view), "view": source_view}
        entry["target"] = {"fingerprint": fingerprint(target_view), "view": target_view}
    not_planned = [
        {key: value for key, value in readable_action(step.action.as_dict(), labels).items() if key != "fields"}
        for step in plan.steps
        if step.action.status in ("failed", "skipped")
    ]
    document = {
        "format": PLAN_FORMAT,
        "version": PLAN_VERSION,
        "created": format_time(created),
        "collection_version": COLLECTION_VERSION,
        "target": dict(context.get("target") or {}),
        "source": dict(context.get("source") or {}),
        "options": dict(context.get("options") or {}),
        "mapped_paths": list(context.get("mapped_paths") or []),
        "field_names": {object_type: dict(names) for object_type, names in labels.items()},
        "summary": {
            "counts": plan.counts(),
            "managed_users": plan.managed_users,
            "managed_groups": plan.managed_groups,
            "actions": len(actions),
            "objects": len(objects),
        },
        "objects": objects,
        "actions": actions,
        "not_planned": not_planned,
    }
    return document


def _saved_action(step: Step, key: str) -> dict[str, Any]:
    action = step.action
    saved = {
        "kind": action.kind,
        "object_type": action.object_type,
        "name": action.name,
        "source_id": action.source_id,
        "target_id": action.target_id,
        "reason": action.reason,
        "before": action.before,
        "after": action.after,
        "changes": redact_secret_paths(step.changes),
        "members": list(action.members),
        "object": key,
        "group_source_id": step.group_source_id,
        "link": step.link,
        "enabled": step.enabled,
        "member_refs": [
            {"name": ref.name, "target_id": ref.target_id, "source_id": ref.source_id} for ref in step.members
        ],
    }
    return {name: value for name, value in saved.items() if value not in (None, [], {})} | {"enabled": step.enabled}


def seal(document: dict[str, Any]) -> dict[str, Any]:
    """Set ``plan_id``: the fingerprint of everything else in the plan."""
    body = {key: value for key, value in document.items() if key != "plan_id"}
    return {"plan_id": fingerprint(body), **body}


def short_id(plan_id: str) -> str:
    return plan_id.split(":", 1)[-1][:12]


def plan_text(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


# -- loading and checking a saved plan ----------------------------------------------------------


def read_plan(path: str, option: str = "apply_plan") -> dict[str, Any]:
    """The plan file as written, its format, version and plan_id checked."""
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    except FileNotFoundError:
        raise ProvisioningError(f"{option}: no plan file at {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProvisioningError(f"{option}: cannot read the plan file {path}: {exc}") from None
    except ValueError as exc:
        raise ProvisioningError(f"{option}: {path} is not a plan file (not JSON: {exc})") from None
    if not isinstance(document, dict) or document.get("format") != PLAN_FORMAT:
        raise ProvisioningError(f"{option}: {path} is not a plan file of idsync.provisioning (no format {PLAN_FORMAT})")
    if document.get("version") != PLAN_VERSION:
        raise ProvisioningError(
            f"{option}: {path} is a plan of version {document.get('version')!r}; this collection"
            f" ({COLLECTION_VERSION}) reads version {PLAN_VERSION}: make a new preview"
        )
    if seal(document).get("plan_id") != document.get("plan_id"):
        raise ProvisioningError(
            f"{option}: the plan file {path} was changed after it was made (its plan_id does not match its"
            " content); nothing was written: make a new preview"
        )
    return document


def check_plan(
    document: Mapping[str, Any],
    target: Mapping[str, Any],
    options: Mapping[str, Any],
    max_age: int | None,
    now: float | None = None,
) -> None:
    """Refuse a plan made for another target, with other options, or longer ago than ``max_age`` s."""
    planned_id = short_id(document["plan_id"])
    if document.get("target") != dict(target):
        raise ProvisioningError(
            f"apply_plan: the plan {planned_id} was made for {_describe_target(document.get('target') or {})}, this"
            f" run is for {_describe_target(target)}; nothing was written"
        )
    planned_options = document.get("options") or {}
    differ = sorted(
        name for name in set(planned_options) | set(options) if planned_options.get(name) != options.get(name)
    )
    if differ:
        shown = "; ".join(
            f"{name}: {show(planned_options.get(name), 60)} in the plan, {show(options.get(name), 60)} now"
            for name in differ
        )
        raise ProvisioningError(
            f"apply_plan: the plan {planned_id} was made with other options ({shown}); it is applied only with the"
            " options it was made with; nothing was written"
        )
    try:
        created = parse_time(str(document.get("created")))
    except ValueError:
        raise ProvisioningError(f"apply_plan: the plan {planned_id} has no valid creation time") from None
    age = (time.time() if now is None else now) - created
    if max_age is not None and age > max_age:
        raise ProvisioningError(
            f"apply_plan: the plan {planned_id} was made at {document['created']}, {_duration(age)} ago, longer ago"
            f" than max_plan_age ({_duration(max_age)}) allows; nothing was written: make a new preview and have it"
            " approved"
        )


def _describe_target(target: Mapping[str, Any]) -> str:
    where = ", ".join(f"{key} {value}" for key, value in sorted((target.get("connection") or {}).items()))
    return f"{target.get('name')}" + (f" ({where})" if where else "")


def _duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


# -- applying a saved plan ----------------------------------------------------------------------


def reread(
    objects: Mapping[str, Mapping[str, Any]],
    connector: Connector,
    state: OwnershipState | None,
    marker_prefix: str,
    max_workers: int = 4,
) -> dict[str, Any]:
    """What the target holds now of each object of a plan: key -> TargetUser / TargetGroup / None.

    Existing accounts are read by id and new ones looked up by key (a target that lists cheaply is
    listed once instead when the plan touches many); groups come from one listing, members are
    read for the groups whose members the plan changes. A failed read raises: never "absent".
    """
    caps = connector.capabilities
    found: dict[str, Any] = {}
    users = {key: entry for key, entry in objects.items() if entry["object_type"] == "user"}
    groups = {key: entry for key, entry in objects.items() if entry["object_type"] == "group"}
    if users:
        found.update(_reread_users(users, connector, state, marker_prefix, max_workers))
    if groups:
        listing = list(connector.list_groups())
        by_id = {group.id: group for group in listing}
        by_name: dict[str, list[TargetGroup]] = {}
        for group in listing:
            by_name.setdefault(group.name.lower(), []).append(group)
        by_link = {stored_link(caps, state, "group", group): group for group in listing}
        for key, entry in groups.items():
            if entry.get("target_id"):
                found[key] = by_id.get(entry["target_id"])
                continue
            marker = marker_prefix + str(entry.get("source_id") or "")
            named = by_name.get(str(entry["name"]).lower()) or []
            found[key] = (
                by_link.get(marker) if entry.get("source_id") and marker in by_link else next(iter(named), None)
            )
        unread = [
            found[key] for key, entry in groups.items() if entry.get("with_members") and found.get(key) is not None
        ]
        unread = [group for group in unread if group.members is None]
        for group, members in zip(unread, parallel(connector.group_members, unread, max_workers)):  # noqa: B905
            group.members = set(members)
    return found


def _reread_users(users, connector: Connector, state, marker_prefix: str, max_workers: int) -> dict[str, Any]:
    caps = connector.capabilities
    found: dict[str, Any] = {}
    ids = {key: entry["target_id"] for key, entry in users.items() if entry.get("target_id")}
    new = {key: entry for key, entry in users.items() if not entry.get("target_id")}
    # a new account recorded in the state file meanwhile (another run created it) is no longer new
    recorded: dict[str, str] = {}
    if state is not None and caps.user_link == "state":
        recorded = {state.marker("users", user_id): user_id for user_id in state.ids("users")}
    for key, entry in new.items():
        user_id = recorded.get(marker_prefix + str(entry.get("source_id") or ""))
        if user_id:
            ids[key] = user_id
    keys = {key: _new_key(entry) for key, entry in new.items() if key not in ids}
    can_get = type(connector).get_user is not Connector.get_user
    if caps.can_list_users and (len(ids) + len(keys) > LISTING_ABOVE or not can_get):
        listing = list(connector.list_users())
        by_id = {user.id: user for user in listing}
        by_key = {user.key.lower(): user for user in listing}
        found.update({key: by_id.get(user_id) for key, user_id in ids.items()})
        found.update({key: by_key.get(name.lower()) for key, name in keys.items()})
        return found
    id_list = list(ids.items())
    for (key, _user_id), user in zip(id_list, parallel(connector.get_user, [i for _k, i in id_list], max_workers)):  # noqa: B905
        found[key] = user
    key_list = list(keys.items())
    for (key, _name), user in zip(key_list, parallel(connector.find_user, [n for _k, n in key_list], max_workers)):  # noqa: B905
        found[key] = user
    return found


def _new_key(entry: Mapping[str, Any]) -> str:
    view = (entry.get("source") or {}).get("view") or {}
    return str(view.get("key") or entry["name"])


def prepare_apply(
    document: Mapping[str, Any],
    views: Views,
    connector: Connector,
    state: OwnershipState | None,
    max_workers: int = 4,
) -> tuple[Plan, list[dict[str, Any]]]:
    """The plan's own steps for the objects that did not drift, and the drift: one entry per object
    and side (directory or target) that changed since the plan was made."""
    objects = document["objects"]
    marker_prefix = str((document.get("options") or {}).get("marker_prefix") or "")
    current = reread(objects, connector, state, marker_prefix, max_workers)
    labels = document.get("field_names") or {}
    drift: list[dict[str, Any]] = []
    drifted: set[str] = set()
    kinds_of: dict[str, list[str]] = {}
    for action in document["actions"]:
        kinds_of.setdefault(action["object"], []).append(action["kind"])
    for key, entry in objects.items():
        object_type = entry["object_type"]
        source_now = views.source(object_type, entry.get("source_id"), entry["name"])
        if object_type == "user":
            target_now = views.target_user(current.get(key))
        else:
            group = current.get(key)
            target_now = views.target_group(group, group.members if group else None, entry.get("with_members", False))
        for side, word, now in (("source", "directory", source_now), ("target", "target", target_now)):
            if fingerprint(now) == entry[side]["fingerprint"]:
                continue
            drifted.add(key)
            drift.append(
                {
                    "object_type": object_type,
                    "name": entry["name"],
                    "where": word,
                    "changes": explain(entry[side]["view"], now, word, object_type, labels),
                    "actions": kinds_of.get(key, []),
                }
            )
    plan = Plan(
        managed_users=int(document["summary"].get("managed_users") or 0),
        managed_groups=int(document["summary"].get("managed_groups") or 0),
    )
    left_out = {
        action.get("source_id")
        for action in document["actions"]
        if action["object"] in drifted and action["kind"] == "create_user"
    }
    for saved in document["actions"]:
        if saved["object"] in drifted:
            continue
        step = _rebuild(saved, current.get(saved["object"]), views, left_out)
        if step is not None:
            plan.steps.append(step)
    if connector.capabilities.user_link == "state":
        for step in plan.steps:
            desired = views.desired_user(step.action.source_id) if step.action.object_type == "user" else None
            if desired is None:
                continue
            plan.wanted_users[desired.source_id] = (desired_fingerprint(desired), desired.key, not desired.disabled)
            if step.action.target_id:
                plan.matched_users[desired.source_id] = step.action.target_id
    return plan, drift


def _rebuild(saved: Mapping[str, Any], current: Any, views: Views, left_out: set[Any]) -> Step | None:
    """A plan's step again: its action as planned, the object as read now, the secret values
    from the source read now (never in the file)."""
    action = Action(
        kind=saved["kind"],
        object_type=saved["object_type"],
        name=saved["name"],
        source_id=saved.get("source_id"),
        target_id=saved.get("target_id"),
        before=saved.get("before"),
        after=saved.get("after"),
        changes=dict(saved.get("changes") or {}) if saved["kind"] in ("link_user", "update_user") else {},
        members=list(saved.get("members") or []),
        reason=saved.get("reason"),
    )
    changes = dict(saved.get("changes") or {})
    desired = views.desired_user(saved.get("source_id")) if saved["object_type"] == "user" else None
    if desired is not None:
        changes = {path: desired.attrs.get(path) if is_secret_path(path) else value for path, value in changes.items()}
    refs = [
        MemberRef(name=ref["name"], target_id=ref.get("target_id"), source_id=ref.get("source_id"))
        for ref in saved.get("member_refs") or []
        if not (ref.get("source_id") and not ref.get("target_id") and ref["source_id"] in left_out)
    ]
    if saved["kind"] in MEMBER_KINDS:
        if not refs:
            return None
        action.members = [ref.name for ref in refs]
    is_user = saved["object_type"] == "user"
    return Step(
        action=action,
        user=current if is_user else None,
        group=None if is_user else current,
        group_source_id=saved.get("group_source_id"),
        changes=changes,
        link=saved.get("link"),
        enabled=bool(saved.get("enabled", True)),
        members=refs,
    )


def explain(before: Any, now: Any, where: str, object_type: str, labels) -> list[str]:
    """What changed in one view, in words: ``title: "Engineer" in the plan, "Manager" now``."""
    if before == now:
        return []
    if before is None:
        return [f"now in the {where}" if where == "directory" else "exists in the target now"]
    if now is None:
        return [
            "no longer in the directory (deleted or out of scope)" if where == "directory" else "gone from the target"
        ]
    if "error" in now:
        return [f"cannot be mapped now: {now['error']}"]
    lines = []
    for name in sorted(set(before) | set(now)):
        old, new = before.get(name), now.get(name)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            for path in sorted(set(old) | set(new)):
                if old.get(path) != new.get(path):
                    lines.append(f"{path}: {show(old.get(path), 60)} in the plan, {show(new.get(path), 60)} now")
        elif name == "members" and isinstance(old, list) and isinstance(new, list):
            added, removed = len(set(new) - set(old)), len(set(old) - set(new))
            lines.append(f"members: {added} added, {removed} removed since the plan")
        else:
            shown = label(labels, object_type, name) if name != "disabled" else "disabled"
            lines.append(f"{shown}: {show(old, 60)} in the plan, {show(new, 60)} now")
    return lines


def drift_lines(drift: Sequence[Mapping[str, Any]], limit: int = DEFAULT_LIMIT) -> list[str]:
    lines = []
    for entry in _first(drift, limit):
        what = "; ".join(entry["changes"]) or "changed"
        lines.append(f"{entry['object_type']} {entry['name']} in the {entry['where']}: {what}")
    lines += _more(drift, limit, "", "")
    return lines


def drift_message(document: Mapping[str, Any], drift: Sequence[Mapping[str, Any]], named: int = 3) -> str:
    objects = len({(entry["object_type"], entry["name"]) for entry in drift})
    total = len(document["objects"])
    listed = "; ".join(drift_lines(drift, named))
    return (
        f"apply_plan: the plan {short_id(document['plan_id'])} drifted: {_plural(objects, 'object')} of its {total}"
        f" changed since it was made ({listed}); nothing was written. Make a new preview, or set skip_drifted to apply"
        " only the actions whose objects did not drift (see drift)"
    )


# -- renderings of a plan file ------------------------------------------------------------------


def _plan_actions(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [dict(action, status="planned") for action in document.get("actions") or []]


def render_plan(document: Mapping[str, Any], output: str, limit: int = 0) -> str:
    """The plan as ``markdown``, ``csv`` or ``text`` (the preview); ``limit`` objects per action (0: all)."""
    if output == "csv":
        return render_csv(document)
    if output == "markdown":
        return render_markdown(document, limit)
    if output == "text":
        labels = document.get("field_names") or {}
        actions = _plan_actions(document) + [dict(item) for item in document.get("not_planned") or []]
        summary = document.get("summary") or {}
        return (
            "\n".join(
                preview_lines(
                    actions,
                    labels,
                    plan_title(document),
                    check_mode=True,
                    limit=limit,
                    managed=(summary.get("managed_users", 0), summary.get("managed_groups", 0)),
                )
            )
            + "\n"
        )
    raise ProvisioningError(f"format: expected markdown, csv or text, got {output!r}")


def plan_title(document: Mapping[str, Any]) -> str:
    target = document.get("target") or {}
    return (
        f"Plan {short_id(document['plan_id'])} for {_describe_target(target)}, made {document.get('created')}"
        f" by idsync.provisioning {document.get('collection_version')}"
    )


def _md(text: Any) -> str:
    """A Markdown table cell: pipes escaped, line breaks as <br>."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", "<br>")


def render_markdown(document: Mapping[str, Any], limit: int = 0) -> str:
    labels = document.get("field_names") or {}
    actions = _plan_actions(document)
    summary = document.get("summary") or {}
    source = document.get("source") or {}
    out = [f"# {plan_title(document)}", ""]
    out.append(f"- plan id: `{document['plan_id']}`")
    out.append(f"- target: {_describe_target(document.get('target') or {})}")
    if source:
        out.append("- source: " + ", ".join(f"{key} {show(value, 200)}" for key, value in sorted(source.items())))
    out.append(
        f"- managed when planned: {_plural(summary.get('managed_users', 0), 'user')},"
        f" {_plural(summary.get('managed_groups', 0), 'group')}"
    )
    out += ["", "## Summary", "", "| action | count |", "|---|---|"]
    for kind, count in summary_counts(actions).items():
        out.append(f"| {kind} | {count} |")
    if not actions:
        out.append("| (nothing to change) | 0 |")
    for kind in SECTIONS:
        if kind == "add_members":
            groups = _member_groups([a for a in actions if a["kind"] in MEMBER_KINDS])
            if groups:
                out += ["", f"## Group members ({_plural(len(groups), 'group')})", "", "| group | added | removed |"]
                out.append("|---|---|---|")
                for group in _first(groups, limit):
                    out.append(
                        f"| {_md(group['name'])} | {_md(', '.join(group['added']))} | {_md(', '.join(group['removed']))} |"
                    )
                out += _more(groups, limit, " groups", "")
            continue
        section = [action for action in actions if action["kind"] == kind]
        if not section:
            continue
        object_label = label(
            labels, section[0]["object_type"], "key" if section[0]["object_type"] == "user" else "name"
        )
        out += ["", f"## {kind} ({len(section)})", "", f"| {object_label} | reason | changes |", "|---|---|---|"]
        for action in _first(section, limit):
            out.append(
                f"| {_md(action['name'])} | {_md(action.get('reason') or '')} | {_md(chr(10).join(_change_text(action, labels)))} |"
            )
        out += _more(section, limit, "", "")
    not_planned = document.get("not_planned") or []
    if not_planned:
        out += ["", f"## Not planned ({len(not_planned)})", "", "| action | object | why |", "|---|---|---|"]
        for item in not_planned:
            why = item.get("error") or item.get("reason") or ""
            out.append(f"| {item['kind']} | {_md(item['object_type'] + ' ' + item['name'])} | {_md(why)} |")
    return "\n".join(out) + "\n"


CSV_COLUMNS = (
    "plan_id",
    "action",
    "object_type",
    "name",
    "target_id",
    "reason",
    "changes",
    "members_added",
    "members_removed",
)


def render_csv(document: Mapping[str, Any]) -> str:
    """One row per object and action (a group's member changes in one row), for a spreadsheet."""
    labels = document.get("field_names") or {}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    actions = _plan_actions(document)
    plan_id = short_id(document["plan_id"])
    members: dict[tuple[str, str], dict[str, Any]] = {}
    for action in actions:
        if action["kind"] in MEMBER_KINDS:
            row = members.get(_object_of(action))
            if row is None:
                row = {"action": "members", "action_dict": action, "added": [], "removed": []}
                members[_object_of(action)] = row
            row["added" if action["kind"] == "add_members" else "removed"] += action.get("members") or []
            continue
        writer.writerow(
            [
                plan_id,
                action["kind"],
                action["object_type"],
                _cell(action["name"]),
                action.get("target_id") or "",
                _cell(action.get("reason") or ""),
                _cell("; ".join(_change_text(action, labels))),
                "",
                "",
            ]
        )
    for row in members.values():
        action = row["action_dict"]
        writer.writerow(
            [
                plan_id,
                "members",
                "group",
                _cell(action["name"]),
                action.get("target_id") or "",
                "membership differs from the directory",
                "",
                _cell(" ".join(row["added"])),
                _cell(" ".join(row["removed"])),
            ]
        )
    return buffer.getvalue()


def _cell(value: str) -> str:
    """A CSV cell a spreadsheet does not run as a formula (=, +, -, @ first)."""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


# -- the run report file ------------------------------------------------------------------------


def build_run_report(
    started: float,
    ended: float,
    target: Mapping[str, Any],
    source: Mapping[str, Any],
    check_mode: bool,
    report: Mapping[str, Any] | None,
    labels: Mapping[str, Mapping[str, str]],
    error: str | None = None,
    plan: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """What a run did: when, where, counts, every action with its result, the failures in the
    service's words (and why it stopped, when it stopped before any write)."""
    data: dict[str, Any] = {
        "format": REPORT_FORMAT,
        "version": REPORT_VERSION,
        "started": format_time(started),
        "ended": format_time(ended),
        "duration_seconds": round(max(0.0, ended - started), 3),
        "collection_version": COLLECTION_VERSION,
        "target": dict(target),
        "source": dict(source),
        "check_mode": check_mode,
        "result": "failed" if error or (report and report.get("failed")) else ("preview" if check_mode else "ok"),
    }
    if plan:
        data["plan"] = dict(plan)
    if error:
        data["error"] = error
    if report is not None:
        data["changed"] = bool(report.get("changed"))
        data["counts"] = dict(report.get("counts") or {})
        data["failed"] = int(report.get("failed") or 0)
        data["actions"] = [readable_action(action, labels) for action in report.get("actions") or []]
        data["failures"] = list(report.get("failures") or [])
    return data


def render_run_report(data: Mapping[str, Any]) -> str:
    """The run report as Markdown."""
    target = _describe_target(data.get("target") or {})
    out = [f"# idsync.provisioning run report: {target}", ""]
    out.append(f"- result: **{data['result']}**" + (" (check mode: nothing written)" if data.get("check_mode") else ""))
    out.append(f"- started {data['started']}, ended {data['ended']} ({data['duration_seconds']} s)")
    out.append(f"- collection version {data['collection_version']}")
    source = data.get("source") or {}
    if source:
        out.append("- source: " + ", ".join(f"{key} {show(value, 200)}" for key, value in sorted(source.items())))
    if data.get("plan"):
        out.append(
            "- plan: "
            + ", ".join(f"{key} {show(value, 200)}" for key, value in sorted(data["plan"].items()) if key != "drift")
        )
    if data.get("error"):
        out += ["", "## Stopped", "", _md(data["error"])]
    if "counts" in data:
        out += ["", "## Counts", "", "| action | count |", "|---|---|"]
        out += [
            f"| {kind} | {count} |"
            for kind, count in summary_counts(
                [{"kind": k} for k, n in data["counts"].items() for _i in range(n)]
            ).items()
        ]
        if not data["counts"]:
            out.append("| (nothing changed) | 0 |")
    if data.get("failures"):
        out += ["", f"## Failures ({len(data['failures'])})", "", "| action | object | error |", "|---|---|---|"]
        for failure in data["failures"]:
            obj = f"{failure.get('object_type', '')} {failure.get('name', '')}".strip()
            out.append(f"| {failure.get('kind', '')} | {_md(obj)} | {_md(failure.get('error') or '')} |")
    if data.get("actions"):
        out += ["", f"## Actions ({len(data['actions'])})", "", "| action | object | status | reason | changes |"]
        out.append("|---|---|---|---|---|")
        for action in data["actions"]:
            changes = [
                f"{name}: {show(values.get('before'))} -> {show(values.get('after'))}"
                for name, values in (action.get("fields") or {}).items()
            ]
            if action.get("members"):
                sign = "+" if action["kind"] == "add_members" else "-"
                changes.append(" ".join(f"{sign}{name}" for name in action["members"]))
            if action.get("error"):
                changes.append(f"error: {action['error']}")
            obj = f"{action['object_type']} {action['name']}"
            out.append(
                f"| {action['kind']} | {_md(obj)} | {action.get('status', '')} | {_md(action.get('reason') or '')} | {_md(chr(10).join(changes))} |"
            )
    return "\n".join(out) + "\n"


def write_run_report(path: str, data: Mapping[str, Any]) -> None:
    text = (
        render_run_report(data)
        if path.lower().endswith(".md")
        else json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    )
    write_private(path, text, "report_file")
