# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The vendor-neutral reconcile: desired objects + what the target holds -> a plan -> writes -> a report.

Private to this collection: the names here may change without notice.

``plan()`` only reads (through the connector) and decides; every read happens before any write,
and every safety check (thresholds, empty source) runs on the whole plan. ``apply()`` performs
the plan in a fixed order, one object's failure never stopping the others. No HTTP here and no
vendor names: a target is whatever implements ``_connector.Connector``.

Ownership: a target object is this provisioner's iff its marker (``marker_prefix`` + source
stable id, kept by the target or by the state file) starts with ``marker_prefix``. That decision
never depends on the current source, so an account stays recognised as ours after its source
object is deleted.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from typing import Any

from ansible_collections.idsync.provisioning.plugins.module_utils._connector import Connector
from ansible_collections.idsync.provisioning.plugins.module_utils._model import (
    Action,
    DesiredGroup,
    DesiredUser,
    ProvisioningError,
    RecordError,
    TargetGroup,
    TargetUser,
    is_empty,
    redact_secret_paths,
)
from ansible_collections.idsync.provisioning.plugins.module_utils._state import OwnershipState, fingerprint, save_state

REMOVE_USER_ACTIONS = ("disable", "delete")
OWNERSHIP_MODES = ("linked", "authoritative")
THRESHOLD_OPTIONS = ("max_deletes", "max_disables", "max_group_deletes")
CAPABILITY_SWITCHES = (
    "create_users",
    "update_users",
    "disable_users",
    "delete_users",
    "create_groups",
    "rename_groups",
    "sync_memberships",
    "delete_groups",
)

# apply() runs the plan in this order; plan() sorts its actions the same way so reports read in order.
PHASES: tuple[tuple[str, ...], ...] = (
    ("create_group", "link_group", "rename_group"),
    ("create_user",),
    ("link_user", "update_user"),
    ("enable_user",),
    ("add_members", "remove_members"),
    ("disable_user", "delete_user"),
    ("delete_group",),
)
_PHASE_OF = {kind: index for index, kinds in enumerate(PHASES) for kind in kinds}
# How many objects a refused plan lists (the message names fewer); the rest is counted.
SHOWN = 20
# Why an owned account or group is deprovisioned when the source does not say more of it.
NOT_IN_SOURCE = "deleted in the directory or out of scope"
NEW_IN_SOURCE = "new in the directory"
DISABLED_IN_SOURCE = "disabled in the directory"
ENABLED_IN_SOURCE = "enabled in the directory, disabled in the target"
# The thresholds: option, the action kind it counts, the managed count it is a share of, words.
THRESHOLD_CHECKS = (
    ("max_deletes", "delete_user", "managed_users", "delete", "users"),
    ("max_disables", "disable_user", "managed_users", "disable", "users"),
    ("max_group_deletes", "delete_group", "managed_groups", "delete", "groups"),
)


# -- policy ------------------------------------------------------------------------------------


@dataclass
class Policy:
    """How a sync decides. Validated on creation; errors name the option."""

    remove_user_action: str = "disable"
    provision_disabled_users: bool = False
    ownership: str = "linked"
    protected: list[str] = field(default_factory=list)
    max_deletes: int | str | None = None
    max_disables: int | str | None = None
    max_group_deletes: int | str | None = None
    allow_empty_source: bool = False
    marker_prefix: str = "idsync:"
    create_users: bool = True
    update_users: bool = True
    disable_users: bool = True
    delete_users: bool = True
    create_groups: bool = True
    rename_groups: bool = True
    sync_memberships: bool = True
    delete_groups: bool = True
    # None: manage groups when group records are given to plan().
    manage_groups: bool | None = None
    # Targets that cannot list cheaply (PingID): read every account this run instead of trusting
    # the state file's fingerprints (finds accounts changed or deleted behind the provisioner's back).
    full_verification: bool = False
    # ... and also automatically: after this many runs since the last one (0: every run), or when
    # the last one is older than this many seconds; None: never automatically. A state file that
    # never saw a verification (new or lost) always gets one, which links existing accounts by key.
    verify_every_runs: int | None = 24
    verify_max_age: int | None = 7 * 24 * 3600

    def __post_init__(self) -> None:
        if self.remove_user_action not in REMOVE_USER_ACTIONS:
            raise ProvisioningError(
                f"remove_user_action: expected one of {', '.join(REMOVE_USER_ACTIONS)}, got {self.remove_user_action!r}"
            )
        if self.ownership not in OWNERSHIP_MODES:
            raise ProvisioningError(f"ownership: expected one of {', '.join(OWNERSHIP_MODES)}, got {self.ownership!r}")
        if isinstance(self.protected, str) or not all(isinstance(name, str) for name in self.protected or []):
            raise ProvisioningError(f"protected: expected a list of user keys and group names, got {self.protected!r}")
        self.protected = list(self.protected or [])
        if not isinstance(self.marker_prefix, str) or not self.marker_prefix:
            # An empty prefix would make every marked object in the tenant look like ours.
            raise ProvisioningError("marker_prefix: must be a non-empty string")
        for option in THRESHOLD_OPTIONS:
            parse_threshold(option, getattr(self, option))
        for option in ("provision_disabled_users", "allow_empty_source", "full_verification") + CAPABILITY_SWITCHES:
            if not isinstance(getattr(self, option), bool):
                raise ProvisioningError(f"{option}: expected a boolean, got {getattr(self, option)!r}")
        for option in ("verify_every_runs", "verify_max_age"):
            value = getattr(self, option)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ProvisioningError(f"{option}: expected a whole number >= 0, got {value!r}")
        if self.manage_groups is not None and not isinstance(self.manage_groups, bool):
            raise ProvisioningError(f"manage_groups: expected a boolean, got {self.manage_groups!r}")

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Policy:
        """Build from module options; None means "the default", unknown options are an error."""
        known = {item.name for item in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ProvisioningError(f"unknown policy option(s): {', '.join(unknown)}")
        return cls(**{name: value for name, value in options.items() if value is not None})

    def as_dict(self) -> dict[str, Any]:
        return {item.name: getattr(self, item.name) for item in fields(self)}


def parse_threshold(option: str, value: int | str | None) -> tuple[int | None, float | None]:
    """``None`` -> no limit; ``5`` or ``"5"`` -> (5, None); ``"10%"`` -> (None, 10.0)."""
    if value is None:
        return None, None
    if isinstance(value, bool):
        raise ProvisioningError(f"{option}: expected a count or a percentage such as '10%', got {value!r}")
    if isinstance(value, int):
        count = value
    elif isinstance(value, str) and value.strip().endswith("%"):
        try:
            percent = float(value.strip()[:-1])
        except ValueError:
            raise ProvisioningError(f"{option}: {value!r} is not a percentage such as '10%'") from None
        if not 0 <= percent <= 100:
            raise ProvisioningError(f"{option}: {value!r} must be between 0% and 100%")
        return None, percent
    elif isinstance(value, str) and value.strip().isdigit():
        count = int(value.strip())
    else:
        raise ProvisioningError(f"{option}: expected a count or a percentage such as '10%', got {value!r}")
    if count < 0:
        raise ProvisioningError(f"{option}: must not be negative, got {value!r}")
    return count, None


def threshold_allows(option: str, value: int | str | None, managed: int) -> int | None:
    """How many objects the threshold allows for ``managed`` managed objects; None = unlimited."""
    count, percent = parse_threshold(option, value)
    if percent is not None:
        return math.floor(managed * percent / 100)
    return count


def groups_managed(manage_groups: bool | None, groups_given: bool, caps: Any) -> bool:
    """Whether a run manages groups: ``manage_groups`` when set, else whenever source groups are given."""
    if manage_groups is None:
        return groups_given and caps.groups
    if manage_groups and not caps.groups:
        raise ProvisioningError("manage_groups: this target has no groups")
    if manage_groups and not groups_given:
        raise ProvisioningError("manage_groups: true needs the source groups (none were given)")
    return manage_groups


def state_needed(caps: Any, manage_groups: bool) -> list[str]:
    """What a run must keep in a state file ("users", "groups"): the one rule, the runner asks it."""
    needed = []
    if caps.user_link == "state" or not caps.can_list_users:
        needed.append("users")
    if manage_groups and caps.group_link == "state":
        needed.append("groups")
    return needed


# -- plan --------------------------------------------------------------------------------------


@dataclass
class MemberRef:
    """A group member: a target user id, or the source id of a user this same run creates."""

    name: str
    target_id: str | None = None
    source_id: str | None = None


@dataclass
class Step:
    """An action plus what apply() needs to perform it (the objects, the unredacted values)."""

    action: Action
    user: TargetUser | None = None
    group: TargetGroup | None = None
    group_source_id: str | None = None  # for group actions: the source group (created groups have no id yet)
    changes: dict[str, Any] = field(default_factory=dict)
    link: str | None = None  # the marker to store
    enabled: bool = True  # create_user: create enabled or disabled
    members: list[MemberRef] = field(default_factory=list)
    # add_members / remove_members: the target user ids the group held when planned (a saved plan
    # fingerprints them, so that a membership changed since is drift)
    current_members: set[str] | None = None


@dataclass
class Plan:
    """The ordered actions of one reconcile and what the safety checks need."""

    steps: list[Step] = field(default_factory=list)
    managed_users: int = 0
    managed_groups: int = 0
    # State file entries whose target object no longer exists; dropped after a real apply.
    stale_user_links: list[str] = field(default_factory=list)
    stale_group_links: list[str] = field(default_factory=list)
    # Users kept in the state file: source id -> what this run wants of the account (its
    # fingerprint, key, enabled), recorded after apply so an unchanged account needs no read next time.
    wanted_users: dict[str, tuple[str, str, bool]] = field(default_factory=dict)
    # Target ids of accounts matched to a source user this run (read or trusted from the state).
    matched_users: dict[str, str] = field(default_factory=dict)  # source id -> target id
    full_verification: bool = False
    # Why this run read every account: "the target lists", "asked", "never verified", ...
    verification_reason: str | None = None

    @property
    def actions(self) -> list[Action]:
        return [step.action for step in self.steps]

    def pending(self) -> list[Step]:
        """The steps that would write (not refused at planning time)."""
        return [step for step in self.steps if step.action.status == "planned"]

    def counts(self) -> dict[str, int]:
        return dict(Counter(step.action.kind for step in self.pending()))

    def as_dict(self) -> dict[str, Any]:
        return {
            "counts": self.counts(),
            "managed_users": self.managed_users,
            "managed_groups": self.managed_groups,
            "actions": [action.as_dict() for action in self.actions],
        }


def plan(
    desired_users: Iterable[DesiredUser],
    desired_groups: Iterable[DesiredGroup] | None,
    connector: Connector,
    policy: Policy,
    state: OwnershipState | None = None,
    source_errors: Iterable[RecordError] = (),
    max_workers: int = 4,
    absent_reasons: Mapping[str, str] | None = None,
    shown: int = SHOWN,
) -> Plan:
    """Read the target and decide every write. Raises ProvisioningError on a failed read, and
    PlanRefused (the counts and the objects that tripped it in ``details``) on a threshold or an
    empty source.

    ``absent_reasons``: what the source knows of stable ids it no longer yields (``left scope: not
    in group Staff``), used as the reason of their deprovisioning; others get NOT_IN_SOURCE.
    """
    planner = _Planner(connector, policy, state, max_workers, absent_reasons or {}, shown)
    groups = None if desired_groups is None else list(desired_groups)
    return planner.build(list(desired_users), groups, list(source_errors))


@dataclass
class _Index:
    """Target objects arranged for matching."""

    owned: dict[str, Any]  # source id -> the object carrying our marker for it
    twice_marked: set[str]  # ids of objects whose marker an earlier object already carries
    by_key: dict[str, list[Any]]  # lower-cased key or name -> objects
    managed: int  # how many this run could deprovision: the base of percentage thresholds


@dataclass
class _KeyMatch:
    """The outcome of matching an unlinked source object by key or name (U1, G1)."""

    verdict: str  # create | link | skip | refuse
    target: Any = None
    why: str | None = None


def _user_action(kind: str, name: str, source_id: str | None, target_id: str | None = None, **fields: Any) -> Action:
    return Action(kind=kind, object_type="user", name=name, source_id=source_id, target_id=target_id, **fields)


def _group_action(kind: str, name: str, source_id: str | None, target_id: str | None = None, **fields: Any) -> Action:
    return Action(kind=kind, object_type="group", name=name, source_id=source_id, target_id=target_id, **fields)


class _Planner:
    def __init__(
        self,
        connector: Connector,
        policy: Policy,
        state: OwnershipState | None,
        max_workers: int,
        absent_reasons: Mapping[str, str],
        shown: int,
    ):
        if max_workers < 1:
            raise ProvisioningError(f"max_workers: must be at least 1, got {max_workers}")
        self.connector = connector
        self.absent_reasons = absent_reasons
        self.shown = shown
        self.caps = connector.capabilities
        self.policy = policy
        self.state = state
        self.max_workers = max_workers
        self.prefix = policy.marker_prefix
        self.protected = {name.lower() for name in policy.protected}
        self.plan = Plan()
        # Filled while planning users, used for memberships.
        self.user_by_id: dict[str, TargetUser] = {}
        self.member_refs: dict[str, MemberRef] = {}
        # Target users whose memberships are left as they are: protected, unreadable in the
        # source, or in a conflict. (Users about to be deleted leave managed groups first.)
        self.keep_member_ids: set[str] = set()
        # Accounts taken from the state file without a read: their fingerprint says they hold
        # what the source wants, so they are not compared.
        self.trusted_ids: set[str] = set()
        self.empty_sources: list[str] = []

    # -- helpers --------------------------------------------------------------------------
    def marker(self, source_id: str) -> str:
        return self.prefix + source_id

    def owned_source_id(self, link: str | None) -> str | None:
        if link and link.startswith(self.prefix):
            return link[len(self.prefix) :]
        return None

    def user_link(self, user: TargetUser) -> str | None:
        return stored_link(self.caps, self.state, "user", user)

    def group_link(self, group: TargetGroup) -> str | None:
        return stored_link(self.caps, self.state, "group", group)

    def absent_reason(self, source_id: str | None) -> str:
        return self.absent_reasons.get(source_id or "") or NOT_IN_SOURCE

    def is_protected(self, name: str | None) -> bool:
        return bool(name) and name.lower() in self.protected

    def add(self, action: Action, **step_fields: Any) -> Step:
        step = Step(action=action, **step_fields)
        self.plan.steps.append(step)
        return step

    def refuse(self, kind: str, object_type: str, name: str, source_id: str | None, why: str, target_id=None) -> None:
        """An action decided against at planning time: failed, so the task fails and says why.

        A conflict is never resolved by writes: the disputed account keeps its memberships too.
        """
        if object_type == "user" and target_id:
            self.keep_member_ids.add(target_id)
        action = Action(kind=kind, object_type=object_type, name=name, source_id=source_id, target_id=target_id)
        action.status, action.error = "failed", why
        self.add(action)

    def skip(self, kind: str, object_type: str, name: str, source_id: str | None, why: str, target_id=None) -> None:
        """An action left out on purpose (a protected object): reported, not a failure."""
        if object_type == "user" and target_id:
            self.keep_member_ids.add(target_id)
        action = Action(kind=kind, object_type=object_type, name=name, source_id=source_id, target_id=target_id)
        action.status, action.reason = "skipped", why
        self.add(action)

    def first_of_each_id(self, desired: list[Any], object_type: str) -> Iterable[Any]:
        seen: set[str] = set()
        for item in desired:
            if item.source_id in seen:
                name = item.key if object_type == "user" else item.name
                why = "the source has this stable id twice"
                self.refuse(f"create_{object_type}", object_type, name, item.source_id, why)
                continue
            seen.add(item.source_id)
            yield item

    def index(self, objects: list[Any], key_of: Callable[[Any], str], link_of: Callable[[Any], str | None]) -> _Index:
        index = _Index(owned={}, twice_marked=set(), by_key=defaultdict(list), managed=0)
        for obj in objects:
            key = key_of(obj)
            index.by_key[key.lower()].append(obj)
            source_id = self.owned_source_id(link_of(obj))
            if not self.is_protected(key) and (source_id is not None or self.policy.ownership == "authoritative"):
                index.managed += 1
            if source_id is None:
                continue
            if source_id in index.owned:
                index.twice_marked.add(obj.id)
            else:
                index.owned[source_id] = obj
        return index

    def match_by_key(
        self, key: str, index: _Index, claimed: set[str], link_of: Callable[[Any], str | None], noun: str, word: str
    ) -> _KeyMatch:
        """The target object with this key (case-insensitively), if this provisioner may take it."""
        candidates = index.by_key.get(key.lower(), [])
        if not candidates:
            return _KeyMatch("create")
        if len(candidates) > 1:
            ids = ", ".join(candidate.id for candidate in candidates)
            return _KeyMatch("refuse", why=f"several {noun}s have this {word}: {ids}")
        target = candidates[0]
        link = link_of(target)
        if target.id in claimed:
            why = f"{noun} {target.id} has this {word} but is linked to another directory object"
        elif self.is_protected(key):
            return _KeyMatch("skip", target, f"the {noun} is protected")
        elif self.owned_source_id(link) is not None:
            # Its own source object is gone (else it would be claimed); giving it to a different
            # directory object could hand one person's data to another.
            why = (
                f"{noun} {target.id} has this {word} but carries the marker {link!r} of another directory"
                " object; clear it on the target to relink"
            )
        elif link and self.policy.ownership == "linked":
            why = (
                f"{noun} {target.id} has this {word} but carries a marker of another provisioner ({link!r});"
                " not taken over in linked mode"
            )
        else:
            return _KeyMatch("link", target)
        return _KeyMatch("refuse", target, why)

    def decline(self, match: _KeyMatch, kind: str, object_type: str, name: str, source_id: str) -> None:
        target_id = match.target.id if match.target is not None else None
        if match.verdict == "skip":
            self.skip(kind, object_type, name, source_id, match.why, target_id)
        else:
            self.refuse(kind, object_type, name, source_id, match.why, target_id)

    # -- the whole plan -------------------------------------------------------------------
    def build(
        self, desired_users: list[DesiredUser], desired_groups: list[DesiredGroup] | None, errors: list[RecordError]
    ) -> Plan:
        manage_groups = self.resolve_manage_groups(desired_groups)
        self.check_policy_fits_connector(manage_groups)
        # Every list read happens here, before any decision and long before any write.
        target_users = self.read_users(desired_users)
        target_groups = list(self.connector.list_groups()) if manage_groups else []
        if manage_groups and self.caps.group_link == "state":
            present = {group.id for group in target_groups}
            self.plan.stale_group_links = sorted(set(self.state.ids("groups")) - present)

        for error in errors:
            self.refuse(f"map_{error.object_type}", error.object_type, error.name, error.source_id, error.message)
        self.plan_users(desired_users, target_users, errors)
        if manage_groups:
            self.plan_groups(desired_groups or [], target_groups, errors)
        self.plan.steps.sort(key=lambda step: _PHASE_OF.get(step.action.kind, -1))
        self.check_empty_source()
        check_thresholds(self.plan, self.policy, self.shown)
        return self.plan

    def resolve_manage_groups(self, desired_groups: list[DesiredGroup] | None) -> bool:
        return groups_managed(self.policy.manage_groups, desired_groups is not None, self.caps)

    def check_policy_fits_connector(self, manage_groups: bool) -> None:
        if self.policy.remove_user_action == "disable" and self.policy.disable_users and not self.caps.can_disable:
            raise ProvisioningError("remove_user_action: this target cannot disable accounts; use delete")
        if self.policy.ownership == "authoritative" and not self.caps.can_list_users:
            # Authoritative means "every account not in the source goes": unknowable without a listing.
            raise ProvisioningError(
                "ownership: authoritative needs a target that can list its accounts, and this one cannot; use linked"
            )
        needed = state_needed(self.caps, manage_groups)
        if needed and self.state is None:
            raise ProvisioningError(
                f"this target keeps the ownership of its {' and '.join(needed)} in a state file, and no state"
                " file was given"
            )

    def read_users(self, desired_users: list[DesiredUser]) -> list[TargetUser]:
        if self.caps.user_link == "state":
            self.plan.wanted_users = {
                user.source_id: (desired_fingerprint(user), user.key, not user.disabled) for user in desired_users
            }
        self.plan.verification_reason = self.verification_reason()
        self.plan.full_verification = self.plan.verification_reason is not None
        if self.plan.full_verification:
            users = list(self.connector.list_users())
            if self.caps.user_link == "state" and self.state is not None:
                present = {user.id for user in users}
                self.plan.stale_user_links = sorted(set(self.state.ids("users")) - present)
            return users
        return self.read_users_by_state(desired_users)

    def verification_reason(self) -> str | None:
        """Why this run reads every account instead of trusting the state file, or None."""
        if self.caps.can_list_users:
            return "the target lists its accounts"
        if self.policy.full_verification:
            return "full_verification is set"
        state = self.state
        if state is None:
            return None
        runs = state.runs_since_full_verification
        if runs is None:
            return "the state file has never been verified against the target"
        every = self.policy.verify_every_runs
        if every is not None and runs >= every:
            return f"{runs} runs since the last verification (verify_every_runs: {every})"
        age = state.full_verification_age()
        limit = self.policy.verify_max_age
        if limit is not None and age is not None and age >= limit:
            return f"the last verification is {int(age // 3600)} h old (verify_max_age: {limit} s)"
        return None

    def read_users_by_state(self, desired_users: list[DesiredUser]) -> list[TargetUser]:
        """A target that cannot list (PingID): the state file says what each account holds.

        An account whose recorded fingerprint equals what the source wants now is taken as it is,
        without a read; every other recorded account is read by id, and a desired user with no
        recorded account is looked up by key. A run that changes nothing reads nothing.
        """
        state = self.state
        owner = {state.marker("users", user_id): user_id for user_id in state.ids("users")}
        users: dict[str, TargetUser] = {}
        to_read: list[str] = []
        to_find: dict[str, str] = {}  # lower-cased key -> source id
        claimed: set[str] = set()
        for desired in desired_users:
            user_id = owner.get(self.marker(desired.source_id))
            if user_id is None:
                to_find.setdefault(desired.key.lower(), desired.source_id)
                continue
            claimed.add(user_id)
            record = state.record("users", user_id)
            if record.fingerprint and record.fingerprint == self.plan.wanted_users[desired.source_id][0]:
                users[user_id] = _user_from_record(user_id, record)
                self.trusted_ids.add(user_id)
            else:
                to_read.append(user_id)
        for user_id in state.ids("users"):
            if user_id in claimed:
                continue
            record = state.record("users", user_id)
            if record.enabled is False and self.policy.remove_user_action == "disable":
                users[user_id] = _user_from_record(user_id, record)  # deprovisioned before: nothing to do
                self.trusted_ids.add(user_id)
            else:
                to_read.append(user_id)
        if to_read and type(self.connector).get_user is Connector.get_user:
            raise ProvisioningError(
                f"{type(self.connector).__name__} cannot list users and does not implement get_user: the"
                " accounts in the state file cannot be checked"
            )
        read = parallel(self.connector.get_user, to_read, self.max_workers)
        for user_id, user in zip(to_read, read):  # noqa: B905 - same length; strict= needs Python 3.10
            if user is None:
                # Deleted behind the provisioner's back: forget it; its source user is looked up by key.
                self.plan.stale_user_links.append(user_id)
                source_id = self.owned_source_id(state.marker("users", user_id))
                wanted = self.plan.wanted_users.get(source_id or "")
                if wanted is not None:
                    to_find.setdefault(wanted[1].lower(), source_id)
            else:
                users[user.id] = user
        keys = list(to_find)
        for user in parallel(self.connector.find_user, keys, self.max_workers):
            if user is not None and user.id not in self.plan.stale_user_links:
                users.setdefault(user.id, user)
        return list(users.values())

    # -- users ----------------------------------------------------------------------------
    def plan_users(self, desired: list[DesiredUser], targets: list[TargetUser], errors: list[RecordError]) -> None:
        policy = self.policy
        self.user_by_id = {user.id: user for user in targets}
        index = self.index(targets, lambda user: user.key, self.user_link)
        self.plan.managed_users = index.managed
        if index.managed and not desired and not any(error.object_type == "user" for error in errors):
            self.empty_sources.append(f"the source has no users but {index.managed} target accounts are managed")
        errored = {error.source_id for error in errors if error.object_type == "user" and error.source_id}
        desired_ids = {user.source_id for user in desired}
        claimed: set[str] = set()

        # Pass 1: links. They follow the stable id, so a key change is an update (U3).
        unlinked: list[DesiredUser] = []
        for user in self.first_of_each_id(desired, "user"):
            in_scope = not user.disabled or policy.provision_disabled_users
            target = index.owned.get(user.source_id)
            if target is None:
                if in_scope:
                    unlinked.append(user)
                continue
            claimed.add(target.id)
            if self.is_protected(target.key):
                self.skip("update_user", "user", target.key, user.source_id, "the account is protected", target.id)
            elif not in_scope:
                self.deprovision(target, user.source_id, DISABLED_IN_SOURCE)
            else:
                self.plan_existing_user(user, target, newly_linked=False)

        # Pass 2: in-scope users without a linked account are linked by key (U1) or created (U2).
        planned_keys: dict[str, str] = {}
        for user in unlinked:
            first = planned_keys.setdefault(user.key.lower(), user.source_id)
            if first != user.source_id:
                self.refuse("create_user", "user", user.key, user.source_id, f"key also mapped from {first}")
                continue
            match = self.match_by_key(user.key, index, claimed, self.user_link, "account", "key")
            if match.verdict == "create":
                self.create_user(user)
            elif match.verdict == "link":
                claimed.add(match.target.id)
                self.plan_existing_user(user, match.target, newly_linked=True)
            else:
                self.decline(match, "link_user", "user", user.key, user.source_id)

        # Accounts no source user claimed: ours whose source is gone or out of scope (U4) and, in
        # authoritative mode, everyone's except the protected ones.
        for target in targets:
            if target.id in claimed:
                continue
            source_id = self.owned_source_id(self.user_link(target))
            if self.is_protected(target.key) or source_id in errored:
                # Protected, or present in the source but unreadable: not ours to remove.
                self.keep_member_ids.add(target.id)
            elif source_id in desired_ids and target.id in index.twice_marked:
                why = f"another account carries the same marker {self.marker(source_id)!r}"
                self.refuse("link_user", "user", target.key, source_id, why, target.id)
            elif source_id is not None:
                self.deprovision(target, source_id, self.absent_reason(source_id))
            elif policy.ownership == "authoritative":
                self.deprovision(target, None, "not in the source (authoritative mode)")

    def plan_existing_user(self, desired: DesiredUser, target: TargetUser, newly_linked: bool) -> None:
        changes: dict[str, Any] = {}
        before: dict[str, Any] = {}
        self.plan.matched_users[desired.source_id] = target.id
        if self.policy.update_users and target.id not in self.trusted_ids:
            changes, before = self.user_changes(desired, target)
        marker = self.marker(desired.source_id)
        if newly_linked:
            # One write sets the marker and the changed attributes together.
            reason = f"an account with the same {self.connector.field_name('user', 'key')} exists"
            action = _user_action(
                "link_user",
                desired.key,
                desired.source_id,
                target.id,
                before=redact_secret_paths({"link": self.user_link(target), **before}),
                after=redact_secret_paths({"link": marker, **changes}),
                changes=redact_secret_paths(changes),
                reason="; ".join([reason] + ([changed_reason(changes)] if changes else [])),
            )
            self.add(action, user=target, changes=changes, link=marker)
        elif changes:
            action = _user_action(
                "update_user",
                desired.key,
                desired.source_id,
                target.id,
                before=redact_secret_paths(before),
                after=redact_secret_paths(changes),
                changes=redact_secret_paths(changes),
                reason=changed_reason(changes),
            )
            self.add(action, user=target, changes=changes)
        wanted_enabled = not desired.disabled
        if target.enabled != wanted_enabled and self.policy.disable_users and self.caps.can_disable:
            action = _user_action(
                "enable_user" if wanted_enabled else "disable_user",
                desired.key,
                desired.source_id,
                target.id,
                before={"enabled": target.enabled},
                after={"enabled": wanted_enabled},
                reason=ENABLED_IN_SOURCE if wanted_enabled else DISABLED_IN_SOURCE,
            )
            self.add(action, user=target)
        self.member_refs[desired.source_id] = MemberRef(name=desired.key, target_id=target.id)

    def user_changes(self, desired: DesiredUser, target: TargetUser) -> tuple[dict[str, Any], dict[str, Any]]:
        """The mapped paths whose value differs, and their current values."""
        changes: dict[str, Any] = {}
        before: dict[str, Any] = {}
        for path, wanted in desired.attrs.items():
            current = self.connector.read_path(target.resource, path)
            # The key matches case-insensitively (U1), so a case-only difference is no change:
            # some services (Box logins) store it lower-cased and would flap otherwise.
            if _is_key_value(wanted, desired.key) and isinstance(current, str) and current.lower() == wanted.lower():
                continue
            if not values_equal(wanted, current):
                changes[path] = wanted
                before[path] = current
        return changes, before

    def create_user(self, desired: DesiredUser) -> None:
        if not self.policy.create_users:
            return
        attrs = {path: value for path, value in desired.attrs.items() if not is_empty(value)}
        enabled = not desired.disabled
        after = redact_secret_paths({**attrs, "enabled": enabled})
        reason = NEW_IN_SOURCE if enabled else f"{NEW_IN_SOURCE}, disabled there (provision_disabled_users)"
        action = _user_action("create_user", desired.key, desired.source_id, before={}, after=after, reason=reason)
        self.add(action, changes=attrs, link=self.marker(desired.source_id), enabled=enabled)
        self.member_refs[desired.source_id] = MemberRef(name=desired.key, source_id=desired.source_id)

    def deprovision(self, target: TargetUser, source_id: str | None, reason: str) -> None:
        if self.policy.remove_user_action == "delete":
            if not self.policy.delete_users:
                return
            # Not every service drops a deleted account from its groups (scim2-server keeps the
            # dangling member), so it leaves managed groups first: membership runs before deletes.
            before = {"key": target.key, "enabled": target.enabled, "link": self.user_link(target)}
            action = _user_action(
                "delete_user", target.key, source_id, target.id, before=before, after={}, reason=reason
            )
            self.add(action, user=target)
        elif self.policy.disable_users and target.enabled:
            before, after = {"enabled": True}, {"enabled": False}
            action = _user_action(
                "disable_user", target.key, source_id, target.id, before=before, after=after, reason=reason
            )
            self.add(action, user=target)

    # -- groups ---------------------------------------------------------------------------
    def plan_groups(self, desired: list[DesiredGroup], targets: list[TargetGroup], errors: list[RecordError]) -> None:
        policy = self.policy
        index = self.index(targets, lambda group: group.name, self.group_link)
        self.plan.managed_groups = index.managed
        if index.managed and not desired and not any(error.object_type == "group" for error in errors):
            self.empty_sources.append(f"the source has no groups but {index.managed} target groups are managed")
        errored = {error.source_id for error in errors if error.object_type == "group" and error.source_id}
        desired_ids = {group.source_id for group in desired}
        claimed: set[str] = set()
        # The groups whose membership this run sets: (source group, target group or None when
        # it is created in this run).
        kept: list[tuple[DesiredGroup, TargetGroup | None]] = []

        unlinked: list[DesiredGroup] = []
        for group in self.first_of_each_id(desired, "group"):
            target = index.owned.get(group.source_id)
            if target is None:
                unlinked.append(group)
                continue
            claimed.add(target.id)
            if self.is_protected(target.name):
                self.skip("rename_group", "group", target.name, group.source_id, "the group is protected", target.id)
                continue
            if group.name.lower() != target.name.lower() and policy.rename_groups:
                # G3: the stable id says it is the same group; rename it, never delete + create.
                change = {"name": group.name}
                before = {"name": target.name}
                action = _group_action(
                    "rename_group",
                    group.name,
                    group.source_id,
                    target.id,
                    before=before,
                    after=change,
                    changes=change,
                    reason=f"renamed in the directory (was {target.name})",
                )
                self.add(action, group=target, group_source_id=group.source_id, changes=change)
            kept.append((group, target))

        planned_names: dict[str, str] = {}
        for group in unlinked:
            first = planned_names.setdefault(group.name.lower(), group.source_id)
            if first != group.source_id:
                self.refuse("create_group", "group", group.name, group.source_id, f"name also mapped from {first}")
                continue
            match = self.match_by_key(group.name, index, claimed, self.group_link, "group", "name")
            marker = self.marker(group.source_id)
            if match.verdict == "create":
                if policy.create_groups:
                    action = _group_action(
                        "create_group",
                        group.name,
                        group.source_id,
                        before={},
                        after={"name": group.name},
                        reason=NEW_IN_SOURCE,
                    )
                    self.add(action, group_source_id=group.source_id, link=marker)
                    kept.append((group, None))
            elif match.verdict == "link":
                claimed.add(match.target.id)
                before, after = {"link": self.group_link(match.target)}, {"link": marker}
                reason = f"a group with the same {self.connector.field_name('group', 'name')} exists"
                action = _group_action(
                    "link_group",
                    group.name,
                    group.source_id,
                    match.target.id,
                    before=before,
                    after=after,
                    reason=reason,
                )
                self.add(action, group=match.target, group_source_id=group.source_id, link=marker)
                kept.append((group, match.target))
            else:
                self.decline(match, "link_group", "group", group.name, group.source_id)

        for target in targets:
            if target.id in claimed or self.is_protected(target.name):
                continue
            source_id = self.owned_source_id(self.group_link(target))
            if source_id in errored:
                continue
            if source_id in desired_ids and target.id in index.twice_marked:
                why = f"another group carries the same marker {self.marker(source_id)!r}"
                self.refuse("link_group", "group", target.name, source_id, why, target.id)
            elif source_id is not None:
                self.delete_group(target, source_id, self.absent_reason(source_id))
            elif policy.ownership == "authoritative":
                self.delete_group(target, None, "not in the source (authoritative mode)")

        if policy.sync_memberships:
            self.plan_memberships(kept)

    def delete_group(self, target: TargetGroup, source_id: str | None, reason: str) -> None:
        if not self.policy.delete_groups:
            return
        before = {"name": target.name, "link": self.group_link(target)}
        action = _group_action(
            "delete_group", target.name, source_id, target.id, before=before, after={}, reason=reason
        )
        self.add(action, group=target)

    def plan_memberships(self, kept: list[tuple[DesiredGroup, TargetGroup | None]]) -> None:
        """G4: each kept group's members become exactly its in-scope source members."""
        # Members are read only for groups that exist and whose listing did not include them.
        to_read = [target for _group, target in kept if target is not None and target.members is None]
        read = parallel(self.connector.group_members, to_read, self.max_workers)
        # zip(strict=) would need Python 3.10; the lengths are equal by construction.
        members_of = {target.id: set(members) for target, members in zip(to_read, read)}  # noqa: B905
        for group, target in kept:
            if target is None:
                current: set[str] = set()
            else:
                current = set(target.members) if target.members is not None else members_of[target.id]
            wanted = [
                self.member_refs[source_id] for source_id in sorted(group.members) if source_id in self.member_refs
            ]
            wanted_ids = {ref.target_id for ref in wanted if ref.target_id}
            to_add = [ref for ref in wanted if ref.target_id is None or ref.target_id not in current]
            to_remove = [
                MemberRef(name=self.user_name(user_id), target_id=user_id)
                for user_id in sorted(current - wanted_ids - self.keep_member_ids)
            ]
            group_id = target.id if target is not None else None
            held = None if target is None else current
            if to_add:
                names = [ref.name for ref in to_add]
                action = _group_action(
                    "add_members",
                    group.name,
                    group.source_id,
                    group_id,
                    before={},
                    after={"members": names},
                    members=names,
                    reason="members of the directory group, not of the target group",
                )
                self.add(action, group=target, group_source_id=group.source_id, members=to_add, current_members=held)
            if to_remove:
                names = [ref.name for ref in to_remove]
                action = _group_action(
                    "remove_members",
                    group.name,
                    group.source_id,
                    group_id,
                    before={"members": names},
                    after={},
                    members=names,
                    reason="members of the target group, not of the directory group (or out of scope)",
                )
                self.add(action, group=target, group_source_id=group.source_id, members=to_remove, current_members=held)

    def user_name(self, user_id: str) -> str:
        user = self.user_by_id.get(user_id)
        return user.key if user is not None else user_id

    # -- safety ---------------------------------------------------------------------------
    def check_empty_source(self) -> None:
        # An empty answer is more often a wrong base DN or filter than an empty company.
        if self.empty_sources and not self.policy.allow_empty_source:
            raise PlanRefused(
                "; ".join(self.empty_sources) + ": refusing to deprovision them all (set allow_empty_source"
                " to allow it)",
                self.plan,
                ("disable_user", "delete_user", "delete_group"),
                self.shown,
            )


class PlanRefused(ProvisioningError):
    """A plan refused as a whole before any write (a threshold, the empty-source guard).

    The message reads on one line: why, the plan's counts, the first objects that tripped it and
    how many more; ``details`` holds the counts and the first ``shown`` of those objects, never
    the whole plan (a mass deprovision of 100k accounts would print it all).
    """

    def __init__(self, why: str, plan: Plan, kinds: Sequence[str], shown: int = SHOWN, named: int = 5):
        tripped = [step.action for step in plan.pending() if step.action.kind in kinds]
        named = max(1, min(named, shown)) if shown > 0 else named
        counts = plan.counts()
        summary = ", ".join(f"{count} {kind}" for kind, count in _ordered_counts(counts))
        listed = ", ".join(_named(action) for action in tripped[:named])
        more = f" and {len(tripped) - named} more" if len(tripped) > named else ""
        message = f"{why}; nothing was written. The plan: {summary or 'no changes'}."
        if tripped:
            message += f" Tripped by: {listed}{more} (plan.actions lists the first {min(shown, len(tripped))})."
        details = {
            "counts": counts,
            "managed_users": plan.managed_users,
            "managed_groups": plan.managed_groups,
            "actions": [_compact(action) for action in tripped[: max(0, shown)]],
            "more": max(0, len(tripped) - max(0, shown)),
        }
        super().__init__(message, details=details)
        self.plan = plan
        self.kinds = tuple(kinds)


def check_thresholds(plan: Plan, policy: Policy, shown: int = SHOWN) -> None:
    """Refuse (PlanRefused) a plan that deprovisions more than a threshold allows."""
    counts = plan.counts()
    for option, kind, base, verb, noun in THRESHOLD_CHECKS:
        value = getattr(policy, option)
        managed = getattr(plan, base)
        planned = counts.get(kind, 0)
        allowed = threshold_allows(option, value, managed)
        if allowed is not None and planned > allowed:
            why = f"the plan would {verb} {planned} {noun} of {managed} managed, more than {option}={value} allows ({allowed})"
            raise PlanRefused(why, plan, (kind,), shown)


def _ordered_counts(counts: Mapping[str, int]) -> list[tuple[str, int]]:
    """Counts in the order apply() runs the kinds."""
    return sorted(counts.items(), key=lambda item: (_PHASE_OF.get(item[0], len(PHASES)), item[0]))


def _named(action: Action) -> str:
    return f"{action.name} ({action.reason})" if action.reason else action.name


def _compact(action: Action) -> dict[str, Any]:
    keys = ("kind", "object_type", "name", "reason", "target_id", "source_id")
    return {key: getattr(action, key) for key in keys if getattr(action, key) is not None}


def changed_reason(changes: Mapping[str, Any]) -> str:
    """``attribute title changed`` / ``attributes title, mail changed`` (the target's paths)."""
    paths = list(changes)
    noun = "attribute" if len(paths) == 1 else "attributes"
    return f"{noun} {', '.join(paths)} changed"


def stored_link(caps: Any, state: OwnershipState | None, object_type: str, obj: TargetUser | TargetGroup) -> str | None:
    """The ownership marker of a target object: kept by the target, or by the state file."""
    where = caps.user_link if object_type == "user" else caps.group_link
    if where == "state":
        return state.marker(object_type + "s", obj.id) if state else None
    return obj.link


# -- apply -------------------------------------------------------------------------------------


@dataclass
class Report:
    """What a sync did (or, in check mode, would do)."""

    changed: bool
    counts: dict[str, int]
    failed: int
    skipped: int
    actions: list[dict[str, Any]]
    failures: list[dict[str, Any]]
    diff: list[dict[str, Any]]
    check_mode: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {item.name: getattr(self, item.name) for item in fields(self)}


def apply(
    plan: Plan,
    connector: Connector,
    check_mode: bool,
    state: OwnershipState | None = None,
    max_workers: int = 4,
) -> Report:
    """Perform the plan (nothing at all in check mode) and report every action's outcome."""
    extra_failures: list[dict[str, Any]] = []
    if not check_mode:
        applier = _Applier(connector, state, max_workers)
        applier.run(plan)
        extra_failures = applier.record_state(plan)
    return build_report(plan, check_mode, extra_failures)


def build_report(plan: Plan, check_mode: bool, extra_failures: Sequence[dict[str, Any]] = ()) -> Report:
    done_status = "planned" if check_mode else "ok"
    done = [action for action in plan.actions if action.status == done_status]
    failed = [action for action in plan.actions if action.status == "failed"]
    failures = [
        {"kind": action.kind, "object_type": action.object_type, "name": action.name, "error": action.error}
        for action in failed
    ] + list(extra_failures)
    diff = [
        {
            "before_header": f"{action.object_type} {action.name} ({action.kind})",
            "after_header": f"{action.object_type} {action.name} ({action.kind})",
            "before": action.before or {},
            "after": action.after or {},
        }
        for action in done
        if action.before is not None or action.after is not None
    ]
    wrote_partly = any(action.wrote for action in failed)
    changed = bool(done) or wrote_partly or bool(plan.stale_user_links or plan.stale_group_links)
    return Report(
        changed=changed,
        counts=dict(Counter(action.kind for action in done)),
        failed=len(failures),
        skipped=sum(1 for action in plan.actions if action.status == "skipped"),
        actions=[action.as_dict() for action in plan.actions],
        failures=failures,
        diff=diff,
        check_mode=check_mode,
    )


class _Applier:
    def __init__(self, connector: Connector, state: OwnershipState | None, max_workers: int):
        if max_workers < 1:
            raise ProvisioningError(f"max_workers: must be at least 1, got {max_workers}")
        self.connector = connector
        self.caps = connector.capabilities
        self.state = state
        self.max_workers = max_workers
        # Filled by the create phases, read by the membership phase.
        self.created_users: dict[str, TargetUser] = {}
        self.created_groups: dict[str, TargetGroup] = {}
        # Source group id -> why its target group was not created or linked.
        self.failed_groups: dict[str, str] = {}

    def run(self, plan: Plan) -> None:
        pending = plan.pending()
        for kinds in PHASES:
            steps = [step for step in pending if step.action.kind in kinds]
            if not steps:
                continue
            if kinds == ("create_user",):
                self.create_users(steps)
            elif "add_members" in kinds:
                self.change_members(steps)
            else:
                self.run_parallel([lambda step=step: self.run_one(step) for step in steps])
            for step in steps:
                self.remember(step)

    def run_parallel(self, work: list[Callable[[], None]]) -> None:
        # work items record their own failures; this only runs them and waits
        parallel(lambda item: item(), work, self.max_workers)

    def run_one(self, step: Step) -> None:
        _attempt(step, lambda: self.write(step))

    def write(self, step: Step) -> None:
        kind = step.action.kind
        connector = self.connector
        if kind == "create_group":
            group = connector.create_group(step.action.name, step.link)
            step.action.target_id = group.id
            step.group = group
        elif kind == "link_group":
            if self.caps.group_link == "target":
                connector.update_group(step.group, link=step.link)
        elif kind == "rename_group":
            connector.update_group(step.group, name=step.changes["name"])
        elif kind == "link_user":
            if self.caps.user_link == "target":
                connector.update_user(step.user, step.changes, link=step.link)
            elif step.changes:
                connector.update_user(step.user, step.changes)
        elif kind == "update_user":
            connector.update_user(step.user, step.changes)
        elif kind in ("enable_user", "disable_user"):
            connector.set_user_enabled(step.user, kind == "enable_user")
        elif kind == "delete_user":
            connector.delete_user(step.user)
        elif kind == "delete_group":
            connector.delete_group(step.group)
        else:  # pragma: no cover - plan() makes no other kinds
            raise ProvisioningError(f"unknown action {kind}")

    def create_users(self, steps: list[Step]) -> None:
        size = max(1, self.caps.create_batch)
        if size == 1:
            self.run_parallel([lambda step=step: self.run_one_create(step) for step in steps])
            return
        batches = [steps[start : start + size] for start in range(0, len(steps), size)]
        self.run_parallel([lambda batch=batch: self.run_create_batch(batch) for batch in batches])

    def run_one_create(self, step: Step) -> None:
        def create() -> None:
            user = self.connector.create_user(step.changes, step.link, step.enabled)
            step.user = user
            step.action.target_id = user.id
            self.settle_enabled(user, step.enabled)

        _attempt(step, create)

    def settle_enabled(self, user: TargetUser, enabled: bool) -> None:
        settle_enabled(self.connector, user, enabled)

    def run_create_batch(self, batch: list[Step]) -> None:
        try:
            results = self.connector.create_users([(step.changes, step.link, step.enabled) for step in batch])
            if len(results) != len(batch):
                raise ProvisioningError(f"batch create returned {len(results)} results for {len(batch)} users")
        except Exception as exc:  # noqa: BLE001 - the whole batch failed: each of its users says so
            for step in batch:
                _fail(step, exc)
            return
        for step, result in zip(batch, results):  # noqa: B905 - length checked above; strict= is Python 3.10+
            if isinstance(result, Exception):
                _fail(step, result)
            else:
                step.user = result
                step.action.target_id = result.id
                _attempt(step, lambda user=result, enabled=step.enabled: self.settle_enabled(user, enabled))

    def change_members(self, steps: list[Step]) -> None:
        by_group: dict[str, list[Step]] = defaultdict(list)
        for step in steps:
            by_group[step.group_source_id or step.action.target_id or step.action.name].append(step)
        self.run_parallel(
            [lambda group_steps=group_steps: self.change_group(group_steps) for group_steps in by_group.values()]
        )

    def change_group(self, steps: list[Step]) -> None:
        """One group's adds and removes, chunked to the target's limit."""
        first = steps[0]
        source_id = first.group_source_id or ""
        group = first.group or self.created_groups.get(source_id)
        if group is None or source_id in self.failed_groups:
            # Not created, or not linked and so not ours: its members are not this run's to set.
            why = self.failed_groups.get(source_id, "it was not created")
            for step in steps:
                step.action.status = "failed"
                step.action.error = f"group {step.action.name} was not created or linked: {why}"
            return
        adds: list[str] = []
        removes: list[str] = []
        names: dict[str, str] = {}
        errors: dict[str, dict[str, str]] = {"add_members": {}, "remove_members": {}}
        for step in steps:
            step.action.target_id = group.id
            for ref in step.members:
                user_id = ref.target_id or self.created_user_id(ref.source_id)
                if user_id is None:
                    errors[step.action.kind][ref.name] = "not added: its account could not be created"
                    continue
                names[user_id] = ref.name
                (adds if step.action.kind == "add_members" else removes).append(user_id)
        failed, failure = change_members_in_chunks(self.connector, group, adds, removes)
        adding = set(adds)
        for user_id, why in failed.items():
            errors["add_members" if user_id in adding else "remove_members"][names.get(user_id, user_id)] = why
        for step in steps:
            step_errors = errors[step.action.kind]
            if not step_errors:
                step.action.status = "ok"
                continue
            step.action.member_errors = dict(sorted(step_errors.items()))
            if failure is not None and len(step_errors) == len(step.members):
                _fail(step, failure)
                continue
            step.action.status = "failed"
            shown = "; ".join(f"{name}: {why}" for name, why in list(step.action.member_errors.items())[:5])
            more = f" and {len(step_errors) - 5} more" if len(step_errors) > 5 else ""
            step.action.error = f"{len(step_errors)} of {len(step.members)} members failed: {shown}{more}"

    def created_user_id(self, source_id: str | None) -> str | None:
        user = self.created_users.get(source_id or "")
        return user.id if user is not None else None

    def remember(self, step: Step) -> None:
        """Note created objects (and why a group could not be had) for the phases that follow."""
        kind = step.action.kind
        if kind == "create_user" and step.action.status == "ok":
            self.created_users[step.action.source_id] = step.user
        elif kind == "create_group" and step.action.status == "ok":
            self.created_groups[step.group_source_id] = step.group
        elif kind in ("create_group", "link_group") and step.action.status == "failed":
            self.failed_groups[step.group_source_id] = step.action.error or "failed"

    def record_state(self, plan: Plan) -> list[dict[str, Any]]:
        """Record the links of created and linked objects, forget deleted ones, save the file."""
        state = self.state
        if state is None:
            return []
        failed_users: set[str] = set()
        # Stale links go first: an account this run re-created under a stale id is then kept.
        for user_id in plan.stale_user_links:
            state.forget("users", user_id)
        for group_id in plan.stale_group_links:
            state.forget("groups", group_id)
        for step in plan.steps:
            action = step.action
            if action.object_type == "user" and action.status == "failed" and action.target_id:
                failed_users.add(action.target_id)
            if action.status != "ok" or not action.target_id:
                continue
            if self.caps.user_link == "state":
                if action.kind in ("create_user", "link_user"):
                    state.remember("users", action.target_id, step.link, key=action.name)
                    plan.matched_users.setdefault(action.source_id or "", action.target_id)
                elif action.kind == "delete_user":
                    state.forget("users", action.target_id)
                elif action.kind == "disable_user":
                    # The fingerprint of what is wanted now (a disabled account), not of its enabled
                    # past: enabled again in the directory, it then differs and is activated.
                    wanted = plan.wanted_users.get(action.source_id or "")
                    state.remember(
                        "users",
                        action.target_id,
                        state.marker("users", action.target_id),
                        enabled=False,
                        fingerprint=wanted[0] if wanted else None,
                    )
            if self.caps.group_link == "state":
                if action.kind in ("create_group", "link_group"):
                    state.remember("groups", action.target_id, step.link, key=action.name)
                elif action.kind == "delete_group":
                    state.forget("groups", action.target_id)
        if self.caps.user_link == "state":
            self.record_fingerprints(plan, failed_users)
        state.record_run(full_verification=plan.full_verification)
        try:
            save_state(state)
        except ProvisioningError as exc:
            # The writes are done; losing the report over the state file would hide them.
            return [{"kind": "save_state", "object_type": "state", "name": state.path, "error": exc.message}]
        return []

    def record_fingerprints(self, plan: Plan, failed_users: set[str]) -> None:
        """What each matched account now holds, so that the next run need not read it; an
        account whose write failed is marked for a read instead."""
        state = self.state
        for source_id, user_id in plan.matched_users.items():
            wanted = plan.wanted_users.get(source_id)
            if wanted is None or state.marker("users", user_id) is None:
                continue
            if user_id in failed_users:
                state.invalidate("users", user_id)
                continue
            print_, key, enabled = wanted
            state.remember(
                "users", user_id, state.marker("users", user_id), key=key, fingerprint=print_, enabled=enabled
            )


# -- small helpers -----------------------------------------------------------------------------


def settle_enabled(connector: Connector, user: TargetUser, enabled: bool) -> None:
    """Some services ignore the state given at creation (an account created active): set it."""
    if user.enabled != enabled and connector.capabilities.can_disable:
        connector.set_user_enabled(user, enabled)


def change_members_in_chunks(
    connector: Connector, group: TargetGroup, add: list[str], remove: list[str]
) -> tuple[dict[str, str], Exception | None]:
    """Add and remove members at most ``member_chunk`` of each per call: the failed members
    (user id -> why) and the last error that failed a whole call, if any; the other calls go on."""
    chunk = max(1, connector.capabilities.member_chunk)
    failed: dict[str, str] = {}
    failure: Exception | None = None
    for start in range(0, max(len(add), len(remove)), chunk):
        adding, removing = add[start : start + chunk], remove[start : start + chunk]
        try:
            failed.update(connector.change_members(group, adding, removing) or {})
        except Exception as exc:  # noqa: BLE001 - reported on this call's members, the others go on
            failure = exc
            failed.update({user_id: _error_text(exc) for user_id in adding + removing})
    return failed, failure


def desired_fingerprint(user: DesiredUser) -> str:
    """What the source wants of an account, as a hash; secret values (passwords) are left out:
    a hash of one in a state file could be attacked offline."""
    return fingerprint({"attrs": redact_secret_paths(user.attrs), "enabled": not user.disabled})


def _user_from_record(user_id: str, record: Any) -> TargetUser:
    enabled = True if record.enabled is None else record.enabled
    return TargetUser(id=user_id, key=record.key or user_id, enabled=enabled, resource=dict(record.data or {}))


def _attempt(step: Step, write: Callable[[], None]) -> None:
    try:
        write()
    except Exception as exc:  # noqa: BLE001 - one object's failure is reported and the others go on
        _fail(step, exc)
    else:
        step.action.status = "ok"


def _fail(step: Step, exc: BaseException) -> None:
    step.action.status = "failed"
    step.action.error = _error_text(exc)
    step.action.wrote = bool(getattr(exc, "wrote", False))


def _error_text(exc: BaseException) -> str:
    return exc.message if isinstance(exc, ProvisioningError) else f"{type(exc).__name__}: {exc}"


def parallel(function: Callable[[Any], Any], items: list[Any], max_workers: int) -> list[Any]:
    """``[function(item) for item in items]`` with bounded concurrency; the first error propagates."""
    if max_workers == 1 or len(items) <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=max_workers) as pool:
        return list(pool.map(function, items))


def _is_key_value(value: Any, key: str) -> bool:
    return isinstance(value, str) and value.lower() == key.lower()


def values_equal(wanted: Any, current: Any) -> bool:
    """Whether a target value already holds the desired one.

    None, "" and empty lists/dicts are all "absent". Dicts compare on the desired sub-attributes
    only (a service may add its own, e.g. SCIM ``display``). Lists compare as multisets: the order
    of multi-valued attributes (emails, phone numbers) carries no meaning. Scalars compare exactly,
    booleans only with booleans (so ``True`` is not ``1``).
    """
    if is_empty(wanted) or is_empty(current):
        return is_empty(wanted) and is_empty(current)
    if isinstance(wanted, Mapping) and isinstance(current, Mapping):
        return all(values_equal(value, current.get(name)) for name, value in wanted.items())
    if isinstance(wanted, (list, tuple)) and isinstance(current, (list, tuple)):
        wanted_items = [item for item in wanted if not is_empty(item)]
        unmatched = [item for item in current if not is_empty(item)]
        if len(wanted_items) != len(unmatched):
            return False
        for item in wanted_items:
            for index, candidate in enumerate(unmatched):
                if values_equal(item, candidate):
                    del unmatched[index]
                    break
            else:
                return False
        return True
    if isinstance(wanted, bool) or isinstance(current, bool):
        return type(wanted) is type(current) and wanted == current
    return wanted == current
