# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The connector contract: what every connector does against its service (harness.HARNESSES).

Written only against the ``Connector`` interface (plugins/module_utils/_connector.py) and the
``Harness``: the service is seeded and read back by the harness, never through the connector under
test. Target-specific tests stay in tests/integration (e.g. test_scim_connector.py).
"""

from __future__ import annotations

import math
import time
from typing import Any

import pytest
from contract.harness import MEMBER_CHUNK, PAGE_SIZE, Harness

from ansible_collections.idsync.provisioning.plugins.module_utils._connector import Connector
from ansible_collections.idsync.provisioning.plugins.module_utils._model import (
    ProvisioningError,
    TargetGroup,
    TargetUser,
)

MARKER = "idsync:contract-"


def first_values(harness: Harness) -> dict[str, Any]:
    return {path: values[0] for path, values in harness.mapped.items()}


def found(connector: Connector, key: str) -> TargetUser:
    user = connector.find_user(key)
    assert user is not None, f"find_user({key!r}) found nothing"
    return user


# -- the membership interface, in one place --------------------------------------------------------
# The tests check the service's final state; what the interface says of a call (who chunks, what it
# returns, membership handles) is only here, to adapt when the interface changes.
def change_members(connector: Connector, group: TargetGroup, add: list[str], remove: list[str]) -> None:
    """Add and remove target user ids as the engine does: at most ``member_chunk`` adds and removes
    per call; each call answers the members that failed (user id -> message), which must be none."""
    chunk = max(1, connector.capabilities.member_chunk)
    for start in range(0, max(len(add), len(remove)), chunk):
        failed = connector.change_members(group, add[start : start + chunk], remove[start : start + chunk])
        assert not failed, f"change_members reported failures: {failed}"


def found_group(connector: Connector, name: str) -> TargetGroup:
    groups = connector.find_groups(name)
    assert len(groups) == 1, f"find_groups({name!r}) gave {groups}"
    return groups[0]


# -- users ---------------------------------------------------------------------------------------------
def test_list_users_returns_every_account_across_at_least_three_pages(harness, connector):
    if not connector.capabilities.can_list_users:
        pytest.skip(f"{type(connector).__name__} cannot list users (capabilities.can_list_users is False)")
    count = 3 * PAGE_SIZE + 1
    seeded = {harness.seed_user(f"lister{n:02d}"): f"lister{n:02d}" for n in range(count)}

    listed = list(connector.list_users())

    assert sorted((u.id, u.key) for u in listed) == sorted(seeded.items())
    assert len({u.id for u in listed}) == count  # none twice
    assert harness.list_user_pages() >= math.ceil(count / PAGE_SIZE)


def test_find_user_matches_the_key_case_insensitively(harness, connector):
    user_id = harness.seed_user("JSmith")
    harness.seed_user("jsmithers")

    user = connector.find_user("jsmith")

    assert user is not None
    assert (user.id, user.key) == (user_id, "JSmith")
    assert found(connector, "JSMITH").id == user_id


def test_find_user_of_an_unknown_key_is_none(harness, connector):
    harness.seed_user("someone")
    assert connector.find_user("nobody") is None


def test_create_user_creates_one_account_with_the_attributes_and_marker(harness, connector):
    attrs = harness.user_attrs("newcomer", first_values(harness))

    user = connector.create_user(attrs, f"{MARKER}1", True)

    [stored] = harness.server_users()
    assert (user.id, user.key, user.enabled) == (stored.id, "newcomer", True)
    assert (stored.key, stored.enabled) == ("newcomer", True)
    for path, value in first_values(harness).items():
        assert stored.attrs[path] == value, path
    if connector.capabilities.user_link == "target":
        assert stored.link == f"{MARKER}1"
        assert user.link == f"{MARKER}1"


def test_create_user_disabled_stores_it_disabled(harness, connector):
    if not connector.capabilities.can_disable:
        pytest.skip(f"{type(connector).__name__} has no enabled flag (capabilities.can_disable is False)")
    if not connector.capabilities.create_disabled:
        pytest.skip(f"{type(connector).__name__} cannot create an account disabled (capabilities.create_disabled)")
    user = connector.create_user(harness.user_attrs("starter"), f"{MARKER}2", False)

    assert user.enabled is False
    assert harness.server_user(user.id).enabled is False


def test_update_user_writes_only_the_given_paths(harness, connector):
    user_id = harness.seed_user("updated", {**first_values(harness), **harness.unmapped})
    user = found(connector, "updated")
    changes = {path: values[1] for path, values in harness.mapped.items()}

    connector.update_user(user, changes)

    stored = harness.server_user(user_id)
    assert {path: stored.attrs[path] for path in changes} == changes
    assert {path: stored.attrs[path] for path in harness.unmapped} == harness.unmapped  # left as they were
    assert (stored.key, stored.enabled) == ("updated", True)


def test_update_user_of_one_path_leaves_the_other_mapped_paths(harness, connector):
    harness.seed_user("partial", first_values(harness))
    user = found(connector, "partial")
    path, (_first, second) = next(iter(harness.mapped.items()))

    connector.update_user(user, {path: second})

    stored = harness.server_user(user.id)
    assert {p: stored.attrs[p] for p in harness.mapped} == {**first_values(harness), path: second}


def test_disable_user_leaves_the_account_disabled(harness, connector):
    if not connector.capabilities.can_disable:
        pytest.skip(f"{type(connector).__name__} has no enabled flag (capabilities.can_disable is False)")
    user_id = harness.seed_user("leaver", harness.unmapped, enabled=True)
    other_id = harness.seed_user("stayer", enabled=True)

    connector.set_user_enabled(found(connector, "leaver"), False)

    stored = harness.server_user(user_id)
    assert stored.enabled is False
    assert {path: stored.attrs[path] for path in harness.unmapped} == harness.unmapped
    assert harness.server_user(other_id).enabled is True
    assert found(connector, "leaver").enabled is False


def test_enable_user_leaves_the_account_enabled(harness, connector):
    if not connector.capabilities.can_disable:
        pytest.skip(f"{type(connector).__name__} has no enabled flag (capabilities.can_disable is False)")
    user_id = harness.seed_user("returner", enabled=False)
    assert found(connector, "returner").enabled is False

    connector.set_user_enabled(found(connector, "returner"), True)

    assert harness.server_user(user_id).enabled is True
    assert found(connector, "returner").enabled is True


def test_delete_user_removes_the_account_and_only_it(harness, connector):
    user_id = harness.seed_user("deleted")
    other_id = harness.seed_user("kept")

    connector.delete_user(found(connector, "deleted"))

    assert harness.server_user(user_id) is None
    assert [u.id for u in harness.server_users()] == [other_id]


# -- 404 as absent -------------------------------------------------------------------------------
def test_find_user_of_a_deleted_account_is_none(harness, connector):
    harness.seed_user("gone")
    connector.delete_user(found(connector, "gone"))

    assert connector.find_user("gone") is None


def test_get_user_of_a_deleted_id_is_none(harness, connector):
    user_id = harness.seed_user("vanished")
    user = found(connector, "vanished")
    try:
        assert connector.get_user(user_id).id == user_id
    except NotImplementedError:
        if not connector.capabilities.can_list_users:
            raise AssertionError("get_user is required when capabilities.can_list_users is False") from None
        pytest.skip(f"{type(connector).__name__} has no get_user (needed only when it cannot list users)")
    connector.delete_user(user)

    assert connector.get_user(user_id) is None


def test_delete_of_a_missing_user_succeeds_or_raises_a_provisioning_error(harness, connector):
    # The interface: a write "either succeeds or raises ProvisioningError carrying the service's own
    # message". Deleting an account that is already gone must do one of the two, nothing else.
    harness.seed_user("twice")
    kept_id = harness.seed_user("bystander")
    user = found(connector, "twice")
    connector.delete_user(user)

    try:
        connector.delete_user(user)
    except ProvisioningError as exc:
        assert exc.status == 404, f"not a clear 'not found': {exc}"
    assert [u.id for u in harness.server_users()] == [kept_id]


# -- faults --------------------------------------------------------------------------------------
def test_ambiguous_create_after_the_service_applied_it_does_not_duplicate(harness, connector):
    fault = harness.lose_next_create_answer()

    user = connector.create_user(harness.user_attrs("flaky", first_values(harness)), f"{MARKER}3", True)

    assert fault.hits == 1, "the fault did not fire"
    [stored] = harness.server_users_with_key("flaky")
    assert user.id == stored.id
    assert user.key.lower() == "flaky"
    assert len(harness.server_users()) == 1


def test_rate_limited_create_waits_for_retry_after_then_creates_once(harness, connector):
    fault = harness.rate_limit_next_create(retry_after=1)
    sleeps = harness.record_sleeps(connector)
    started = time.monotonic()

    user = connector.create_user(harness.user_attrs("patient"), f"{MARKER}4", True)

    elapsed = time.monotonic() - started
    assert fault.hits == 1, "the fault did not fire"
    assert elapsed >= 0.95, f"did not wait for Retry-After: 1 (took {elapsed:.2f}s)"
    if sleeps is not None:
        assert sleeps and max(sleeps) >= 1.0, f"waits recorded: {sleeps}"
    assert harness.create_requests() == 2  # the 429, then the one that was applied
    [stored] = harness.server_users_with_key("patient")
    assert user.id == stored.id


# -- groups --------------------------------------------------------------------------------------
def test_list_groups_returns_every_group_across_pages(harness, groups_connector):
    seeded = {harness.seed_group(f"Team {n}"): f"Team {n}" for n in range(2 * PAGE_SIZE + 1)}

    listed = list(groups_connector.list_groups())

    assert sorted((g.id, g.name) for g in listed) == sorted(seeded.items())


def test_find_groups_matches_the_name_case_insensitively(harness, groups_connector):
    group_id = harness.seed_group("Sales EMEA")
    harness.seed_group("Sales")

    assert [g.id for g in groups_connector.find_groups("sales emea")] == [group_id]
    assert groups_connector.find_groups("nobody's group") == []


def test_create_group_creates_one_group_with_the_marker(harness, groups_connector):
    group = groups_connector.create_group("Engineering", f"{MARKER}g1")

    [stored] = harness.server_groups()
    assert (group.id, group.name) == (stored.id, "Engineering")
    assert stored.name == "Engineering"
    if groups_connector.capabilities.group_link == "target":
        assert group.link == f"{MARKER}g1"


def test_rename_group_keeps_its_id_and_members(harness, groups_connector):
    member_id = harness.seed_user("member")
    group_id = harness.seed_group("Old Name", (member_id,))

    groups_connector.update_group(found_group(groups_connector, "Old Name"), name="New Name")

    assert [(g.id, g.name) for g in harness.server_groups()] == [(group_id, "New Name")]
    assert harness.server_group(group_id).member_ids == {member_id}


def test_delete_group_removes_it_and_keeps_its_members_accounts(harness, groups_connector):
    member_id = harness.seed_user("member")
    group_id = harness.seed_group("Doomed", (member_id,))
    other_id = harness.seed_group("Survivor")

    groups_connector.delete_group(found_group(groups_connector, "Doomed"))

    assert harness.server_group(group_id) is None
    assert [g.id for g in harness.server_groups()] == [other_id]
    assert harness.server_user(member_id) is not None


def test_members_are_added_and_removed_in_chunks_and_end_exactly_as_asked(harness, groups_connector):
    user_ids = [harness.seed_user(f"member{n}") for n in range(5)]
    outsider = harness.seed_user("outsider")
    group_id = harness.seed_group("Chunked")
    group = found_group(groups_connector, "Chunked")

    change_members(groups_connector, group, user_ids, [])

    assert harness.server_group(group_id).member_ids == set(user_ids)
    sizes = harness.member_change_sizes()
    assert len(sizes) >= math.ceil(5 / MEMBER_CHUNK), f"member-change requests: {sizes}"
    assert max(sizes) <= MEMBER_CHUNK, f"member-change requests: {sizes}"

    change_members(groups_connector, group, [], user_ids[:3])

    assert harness.server_group(group_id).member_ids == set(user_ids[3:])
    removal_sizes = harness.member_change_sizes()[len(sizes) :]
    assert len(removal_sizes) >= math.ceil(3 / MEMBER_CHUNK), f"member-change requests: {removal_sizes}"
    assert max(removal_sizes) <= MEMBER_CHUNK, f"member-change requests: {removal_sizes}"
    assert harness.server_user(outsider) is not None
    assert len(harness.server_users()) == 6  # membership changes touch no account
