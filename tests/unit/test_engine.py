# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the reconcile rules (U1-U4, G1-G5, safety) against an in-memory target."""

from __future__ import annotations

import json
import time

import pytest
from unit.memory_connector import MemoryConnector

from ansible_collections.idsync.provisioning.plugins.module_utils._connector import Capabilities
from ansible_collections.idsync.provisioning.plugins.module_utils._engine import (
    Policy,
    apply,
    plan,
    values_equal,
)
from ansible_collections.idsync.provisioning.plugins.module_utils._model import (
    DesiredGroup,
    DesiredUser,
    ProvisioningError,
    RecordError,
)
from ansible_collections.idsync.provisioning.plugins.module_utils._state import OwnershipState, format_time, load_state

PREFIX = "idsync:"


def person(source_id: str, key: str, disabled: bool = False, **attrs) -> DesiredUser:
    return DesiredUser(source_id=source_id, key=key, attrs={"userName": key, **attrs}, disabled=disabled)


def group(source_id: str, name: str, *members: str) -> DesiredGroup:
    return DesiredGroup(source_id=source_id, name=name, members=set(members))


def sync(connector, users, groups=None, check_mode=False, state=None, **policy):
    """plan + apply, as the sync module does."""
    the_plan = plan(users, groups, connector, Policy(**policy), state=state)
    return the_plan, apply(the_plan, connector, check_mode=check_mode, state=state)


def kinds(the_plan) -> list[str]:
    """The kinds of the actions that were planned and (after apply) performed, in order."""
    return [action.kind for action in the_plan.actions if action.status in ("planned", "ok")]


# -- U1 link -------------------------------------------------------------------------------------


def test_U1_links_existing_user_by_key_case_insensitively():
    target = MemoryConnector()
    existing = target.seed_user("ALICE", {"name.givenName": "Al"})

    the_plan, report = sync(target, [person("s1", "Alice", **{"name.givenName": "Alice"})])

    assert kinds(the_plan) == ["link_user"]
    assert len(target.users) == 1, "linked, not duplicated"
    stored = target.users[existing.id]
    assert stored.link == PREFIX + "s1"
    assert stored.resource["name"]["givenName"] == "Alice"
    # The key matched case-insensitively: a case-only difference is not rewritten.
    assert stored.resource["userName"] == "ALICE"
    assert report.failed == 0 and report.changed


def test_U1_foreign_marker_is_not_taken_in_linked_mode():
    target = MemoryConnector()
    foreign = target.seed_user("bob", {"title": "theirs"}, link="other-tool:42")

    the_plan, report = sync(target, [person("s2", "bob", title="ours")])

    refused = [action for action in the_plan.actions if action.kind == "link_user"]
    assert refused[0].status == "failed"
    assert "another provisioner" in refused[0].error
    assert target.writes == []
    assert target.users[foreign.id].link == "other-tool:42"
    assert report.failed == 1 and not report.changed


def test_U1_authoritative_mode_takes_over_a_foreign_marker():
    target = MemoryConnector()
    foreign = target.seed_user("bob", link="other-tool:42")

    sync(target, [person("s2", "bob")], ownership="authoritative")

    assert target.users[foreign.id].link == PREFIX + "s2"


def test_U1_two_accounts_with_the_same_marker_are_reported_and_neither_deprovisioned():
    target = MemoryConnector()
    first = target.seed_user("alice", link=PREFIX + "s1")
    copy = target.seed_user("alice2", link=PREFIX + "s1")

    the_plan, report = sync(target, [person("s1", "alice")])

    assert target.users[first.id].enabled and target.users[copy.id].enabled
    assert report.failures[0]["name"] == "alice2" and "same marker" in report.failures[0]["error"]


@pytest.mark.parametrize("ownership", ["linked", "authoritative"])
def test_U1_account_owned_by_another_source_object_is_not_relinked(ownership):
    """A recreated directory user (new stable id, same name) must not inherit the old account."""
    target = MemoryConnector()
    old = target.seed_user("carol", link=PREFIX + "old-guid")

    the_plan, report = sync(target, [person("new-guid", "carol")], ownership=ownership)

    assert target.users[old.id].link == PREFIX + "old-guid"
    refused = next(a for a in the_plan.actions if a.kind == "link_user")
    assert refused.status == "failed" and "another directory object" in refused.error
    assert report.failed == 1


# -- U2 provision ----------------------------------------------------------------------------


def test_U2_creates_missing_user_with_marker():
    target = MemoryConnector()

    the_plan, report = sync(target, [person("s1", "alice", title="Engineer")])

    created = target.user_by_key("alice")
    assert created.link == PREFIX + "s1"
    assert created.resource["title"] == "Engineer"
    assert created.enabled
    assert report.counts == {"create_user": 1}


def test_U2_disabled_source_user_is_skipped():
    target = MemoryConnector()

    the_plan, report = sync(target, [person("s1", "alice", disabled=True)])

    assert target.users == {}
    assert not report.changed


def test_U2_disabled_source_user_is_created_disabled_when_asked():
    target = MemoryConnector()

    sync(target, [person("s1", "alice", disabled=True)], provision_disabled_users=True)

    assert target.user_by_key("alice").enabled is False


def test_U2_create_sends_no_empty_values():
    target = MemoryConnector()

    sync(target, [person("s1", "alice", title=None, nickName="")])

    assert "title" not in target.user_by_key("alice").resource
    assert "nickName" not in target.user_by_key("alice").resource


def test_U2_two_source_users_with_the_same_key_create_one_account_and_report_the_other():
    target = MemoryConnector()

    _plan, report = sync(target, [person("s1", "alice"), person("s2", "ALICE")])

    assert [user.link for user in target.users.values()] == [PREFIX + "s1"]
    assert report.failures[0]["name"] == "ALICE" and "s1" in report.failures[0]["error"]


def test_U2_batch_creates_go_through_create_users():
    target = MemoryConnector(Capabilities(create_batch=2))

    sync(target, [person(f"s{n}", f"user{n}") for n in range(5)])

    # The batches run in parallel: their order is not fixed, their sizes are.
    assert sorted(call for call in target.calls if call[0] == "create_users") == [
        ("create_users", "1"),
        ("create_users", "2"),
        ("create_users", "2"),
    ]
    assert len(target.users) == 5


# -- U3 update -------------------------------------------------------------------------------


def test_U3_updates_only_mapped_attributes_that_differ():
    target = MemoryConnector()
    existing = target.seed_user(
        "alice", {"title": "Old", "name.givenName": "Alice", "phone": "unmapped"}, link=PREFIX + "s1"
    )

    the_plan, _report = sync(target, [person("s1", "alice", title="New", **{"name.givenName": "Alice"})])

    update = [action for action in the_plan.actions if action.kind == "update_user"]
    assert len(update) == 1
    assert update[0].changes == {"title": "New"}
    assert update[0].before == {"title": "Old"}
    assert target.users[existing.id].resource["phone"] == "unmapped"
    assert target.users[existing.id].resource["title"] == "New"


def test_U3_key_change_of_a_linked_user_is_an_update_of_the_same_account():
    target = MemoryConnector()
    existing = target.seed_user("alice", link=PREFIX + "s1")

    the_plan, _report = sync(target, [person("s1", "alice.smith")])

    assert kinds(the_plan) == ["update_user"]
    assert list(target.users) == [existing.id]
    assert target.users[existing.id].key == "alice.smith"


def test_U3_source_value_removed_clears_the_mapped_attribute():
    target = MemoryConnector()
    existing = target.seed_user("alice", {"title": "Old"}, link=PREFIX + "s1")

    sync(target, [person("s1", "alice", title=None)])

    assert target.users[existing.id].resource["title"] is None


@pytest.mark.parametrize(
    "wanted, current",
    [
        (None, None),
        ("", None),
        ([], None),
        (
            [{"value": "a@x", "type": "work"}, {"value": "b@x", "type": "home"}],
            [{"value": "b@x", "type": "home"}, {"value": "a@x", "type": "work", "display": "added by service"}],
        ),
        ({"givenName": "A", "middleName": None}, {"givenName": "A"}),
        (True, True),
    ],
)
def test_U3_equal_values_are_not_changes(wanted, current):
    assert values_equal(wanted, current)


@pytest.mark.parametrize(
    "wanted, current",
    [
        ("a", "A"),
        ("x", None),
        (None, "x"),
        ([{"value": "a@x"}], [{"value": "a@x"}, {"value": "b@x"}]),
        ({"givenName": "A"}, {"givenName": "B"}),
        (True, 1),
        ("1", 1),
        (["a", "a"], ["a", "b"]),
    ],
)
def test_U3_different_values_are_changes(wanted, current):
    assert not values_equal(wanted, current)


# -- U4 deprovision --------------------------------------------------------------------------


def test_U4_deleted_source_user_is_disabled():
    target = MemoryConnector()
    gone = target.seed_user("dave", link=PREFIX + "s4")

    the_plan, report = sync(target, [person("s1", "alice")])

    assert target.users[gone.id].enabled is False
    assert gone.id in target.users, "disable is the default, nothing deleted"
    disable = next(action for action in the_plan.actions if action.kind == "disable_user")
    assert disable.reason == "deleted in the directory or out of scope"
    assert report.counts == {"create_user": 1, "disable_user": 1}


def test_U4_disabled_source_user_is_disabled():
    target = MemoryConnector()
    existing = target.seed_user("dave", link=PREFIX + "s4")

    sync(target, [person("s4", "dave", disabled=True)])

    assert target.users[existing.id].enabled is False


def test_U4_disabled_source_user_stays_a_disabled_account_when_disabled_users_are_provisioned():
    target = MemoryConnector()
    existing = target.seed_user("dave", link=PREFIX + "s4")

    sync(target, [person("s4", "dave", disabled=True)], provision_disabled_users=True, remove_user_action="delete")

    assert target.users[existing.id].enabled is False


def test_U4_remove_action_delete_deletes_the_account():
    target = MemoryConnector()
    gone = target.seed_user("dave", link=PREFIX + "s4")

    sync(target, [person("s1", "alice")], remove_user_action="delete")

    assert gone.id not in target.users


def test_U4_returning_user_is_reenabled_and_updated():
    target = MemoryConnector()
    existing = target.seed_user("dave", {"title": "Old"}, enabled=False, link=PREFIX + "s4")

    the_plan, _report = sync(target, [person("s4", "dave", title="Back")])

    assert kinds(the_plan) == ["update_user", "enable_user"]
    assert target.users[existing.id].enabled is True
    assert target.users[existing.id].resource["title"] == "Back"


def test_U4_accounts_not_ours_are_untouched_in_linked_mode():
    target = MemoryConnector()
    unlinked = target.seed_user("admin")
    foreign = target.seed_user("svc", link="other-tool:1")

    sync(target, [person("s1", "alice")])

    assert target.users[unlinked.id].enabled and target.users[foreign.id].enabled
    assert not [call for call in target.writes if call[1] in ("admin", "svc")]


def test_U4_authoritative_mode_deprovisions_unmatched_accounts_except_protected():
    target = MemoryConnector()
    stranger = target.seed_user("stranger")
    admin = target.seed_user("Admin")

    sync(target, [person("s1", "alice")], ownership="authoritative", protected=["admin"])

    assert target.users[stranger.id].enabled is False
    assert target.users[admin.id].enabled is True
    assert not [call for call in target.writes if call[1] == "Admin"]


def test_U4_protected_account_is_never_touched_even_when_linked():
    target = MemoryConnector()
    admin = target.seed_user("admin", {"title": "Boss"}, link=PREFIX + "s9")

    the_plan, report = sync(target, [person("s9", "admin", title="Changed")], protected=["ADMIN"])

    assert target.users[admin.id].resource["title"] == "Boss"
    assert report.skipped == 1 and not report.changed


def test_U4_user_whose_mapping_failed_is_not_deprovisioned():
    target = MemoryConnector()
    existing = target.seed_user("erin", link=PREFIX + "s5")
    error = RecordError(object_type="user", source_id="s5", name="uid=erin,dc=example", message="key is empty")

    the_plan = plan([person("s1", "alice")], None, target, Policy(), source_errors=[error])
    report = apply(the_plan, target, check_mode=False)

    assert target.users[existing.id].enabled is True
    assert report.failures[0] == {
        "kind": "map_user",
        "object_type": "user",
        "name": "uid=erin,dc=example",
        "error": "key is empty",
    }


def test_U4_record_without_stable_id_shields_no_account_in_authoritative_mode():
    target = MemoryConnector()
    stranger = target.seed_user("stranger")
    error = RecordError(object_type="user", source_id=None, name="uid=x,dc=example", message="no stable id")

    the_plan = plan([person("s1", "alice")], None, target, Policy(ownership="authoritative"), source_errors=[error])
    apply(the_plan, target, check_mode=False)

    assert target.users[stranger.id].enabled is False


def test_U4_ownership_in_state_file_survives_source_deletion(tmp_path):
    target = MemoryConnector(Capabilities(user_link="state"))
    state_path = tmp_path / "box.json"
    state = load_state(str(state_path), "memory")

    sync(target, [person("s1", "alice"), person("s2", "bob")], state=state)
    saved = json.loads(state_path.read_text())
    assert sorted(record["marker"] for record in saved["users"].values()) == [PREFIX + "s1", PREFIX + "s2"]
    assert all(user.link is None for user in target.users.values()), "this target stores no marker"

    # bob is deleted from the directory; a fresh run with the saved state still knows bob is ours.
    state = load_state(str(state_path), "memory")
    sync(target, [person("s1", "alice")], state=state, remove_user_action="delete")

    assert target.user_by_key("bob") is None
    assert [record["marker"] for record in json.loads(state_path.read_text())["users"].values()] == [PREFIX + "s1"]


def test_U4_target_that_cannot_list_users_is_read_through_find_and_state():
    caps = Capabilities(user_link="state", can_list_users=False, groups=False)
    target = MemoryConnector(caps)
    gone = target.seed_user("dave")
    stranger = target.seed_user("stranger")
    # Verified one run ago: this run trusts the state file instead of listing.
    state = OwnershipState(
        target="memory",
        users={gone.id: PREFIX + "s4"},
        runs=1,
        last_full_verification=format_time(time.time()),
        last_full_verification_run=1,
    )

    the_plan, _report = sync(target, [person("s1", "alice")], state=state)

    assert the_plan.full_verification is False and the_plan.verification_reason is None

    assert not [call for call in target.calls if call[0] == "list_users"]
    assert ("find_user", "alice") in target.calls and ("get_user", gone.id) in target.calls
    assert target.users[gone.id].enabled is False
    assert target.users[stranger.id].enabled is True
    assert state.users[target.user_by_key("alice").id] == PREFIX + "s1"


NO_LIST = Capabilities(user_link="state", can_list_users=False, groups=False)


def reads(target) -> list[tuple[str, str]]:
    return [call for call in target.calls if call[0] in ("list_users", "find_user", "get_user")]


def test_U3_no_op_run_of_a_target_that_cannot_list_reads_nothing(tmp_path):
    """State v2 fingerprints: an unchanged account is neither read nor written."""
    target = MemoryConnector(NO_LIST)
    path = str(tmp_path / "pingid.json")
    users = [person("s1", "alice", title="Eng"), person("s2", "bob", title="Ops")]
    sync(target, users, state=load_state(path, "memory"))
    assert {u.key for u in target.users.values()} == {"alice", "bob"}

    target.calls.clear()
    the_plan, report = sync(target, users, state=load_state(path, "memory"))
    assert reads(target) == [] and target.writes == []
    assert kinds(the_plan) == [] and not report.changed

    # One attribute changes: exactly that account is read and updated, nothing else.
    target.calls.clear()
    changed = [person("s1", "alice", title="Staff"), users[1]]
    the_plan, _report = sync(target, changed, state=load_state(path, "memory"))
    assert reads(target) == [("get_user", target.user_by_key("alice").id)]
    assert kinds(the_plan) == ["update_user"]
    target.calls.clear()
    sync(target, changed, state=load_state(path, "memory"))
    assert reads(target) == [] and target.writes == []


def test_U4_full_verification_finds_an_account_deleted_behind_the_provisioners_back(tmp_path):
    target = MemoryConnector(NO_LIST)
    path = str(tmp_path / "pingid.json")
    users = [person("s1", "alice"), person("s2", "bob")]
    sync(target, users, state=load_state(path, "memory"))
    del target.users[target.user_by_key("bob").id]  # an administrator deleted bob by hand

    the_plan, _report = sync(target, users, state=load_state(path, "memory"))
    assert kinds(the_plan) == [], "without verification the state is trusted"

    the_plan, _report = sync(target, users, state=load_state(path, "memory"), full_verification=True)
    assert kinds(the_plan) == ["create_user"]
    assert target.user_by_key("bob") is not None
    assert len(target.users) == 2
    assert load_state(path, "memory").full_verification_age() is not None


def test_U1_a_lost_state_file_is_rebuilt_by_key(tmp_path):
    target = MemoryConnector(NO_LIST)
    users = [person("s1", "alice"), person("s2", "bob")]
    sync(target, users, state=load_state(str(tmp_path / "first.json"), "memory"))

    rebuilt = load_state(str(tmp_path / "lost.json"), "memory")
    the_plan, _report = sync(target, users, state=rebuilt)
    assert kinds(the_plan) == ["link_user", "link_user"] and len(target.users) == 2
    assert sorted(rebuilt.users.values()) == [PREFIX + "s1", PREFIX + "s2"]


def test_a_failed_update_is_read_again_next_run(tmp_path):
    target = MemoryConnector(NO_LIST)
    path = str(tmp_path / "pingid.json")
    sync(target, [person("s1", "alice", title="Eng")], state=load_state(path, "memory"))
    target.fail_write("update_user", "alice")
    _plan, report = sync(target, [person("s1", "alice", title="Staff")], state=load_state(path, "memory"))
    assert report.failed == 1
    assert load_state(path, "memory").record("users", target.user_by_key("alice").id).fingerprint is None


def test_authoritative_mode_is_refused_where_the_target_cannot_list():
    with pytest.raises(ProvisioningError, match="authoritative needs a target that can list"):
        sync(
            MemoryConnector(NO_LIST), [person("s1", "alice")], state=OwnershipState("memory"), ownership="authoritative"
        )


# -- groups ----------------------------------------------------------------------------------


def test_G1_links_existing_group_by_name_case_insensitively():
    target = MemoryConnector()
    existing = target.seed_group("Sales")

    the_plan, _report = sync(target, [], [group("g1", "sales")], allow_empty_source=True)

    assert kinds(the_plan) == ["link_group"]
    assert len(target.groups) == 1
    assert target.groups[existing.id].link == PREFIX + "g1"


def test_G2_creates_group_with_members_created_in_the_same_run():
    target = MemoryConnector()

    sync(target, [person("s1", "alice"), person("s2", "bob")], [group("g1", "Sales", "s1", "s2")])

    assert target.group_by_name("Sales").link == PREFIX + "g1"
    assert target.member_keys("Sales") == {"alice", "bob"}


def test_G3_rename_follows_stable_id():
    target = MemoryConnector()
    existing = target.seed_group("Sales", link=PREFIX + "g1")

    the_plan, _report = sync(target, [], [group("g1", "Revenue")], allow_empty_source=True)

    assert kinds(the_plan) == ["rename_group"]
    assert list(target.groups) == [existing.id], "renamed in place: never delete + create"
    assert target.groups[existing.id].name == "Revenue"
    assert not [call for call in target.writes if call[0] in ("create_group", "delete_group")]


def test_G4_membership_is_exactly_the_source_members():
    target = MemoryConnector()
    alice = target.seed_user("alice", link=PREFIX + "s1")
    bob = target.seed_user("bob", link=PREFIX + "s2")
    outsider = target.seed_user("outsider")
    target.seed_group("Sales", link=PREFIX + "g1", members=[alice.id, outsider.id])

    the_plan, _report = sync(target, [person("s1", "alice"), person("s2", "bob")], [group("g1", "Sales", "s2")])

    assert target.member_keys("Sales") == {"bob"}
    add = next(action for action in the_plan.actions if action.kind == "add_members")
    remove = next(action for action in the_plan.actions if action.kind == "remove_members")
    assert add.members == ["bob"]
    assert remove.members == ["alice", "outsider"]
    assert bob.id in target.group_by_name("Sales").members


def test_G4_members_are_read_only_for_groups_that_need_comparison():
    target = MemoryConnector()
    target.seed_group("Kept", link=PREFIX + "g1")
    target.seed_group("Gone", link=PREFIX + "g2")
    target.seed_group("Foreign")

    sync(target, [], [group("g1", "Kept"), group("g3", "New")], allow_empty_source=True)

    assert [call for call in target.calls if call[0] == "group_members"] == [("group_members", "Kept")]


def test_G4_membership_changes_are_chunked_to_the_target_limit():
    target = MemoryConnector(Capabilities(member_chunk=2))
    users = [person(f"s{n}", f"user{n}") for n in range(5)]

    sync(target, users, [group("g1", "All", *[user.source_id for user in users])])

    assert len(target.member_keys("All")) == 5
    assert target.calls.count(("change_members", "All")) == 3


def test_G4_account_in_a_key_conflict_keeps_its_memberships():
    target = MemoryConnector()
    foreign = target.seed_user("bob", link="other-tool:7")
    target.seed_group("Sales", link=PREFIX + "g1", members=[foreign.id])

    _plan, report = sync(target, [person("s2", "bob")], [group("g1", "Sales", "s2")])

    assert target.member_keys("Sales") == {"bob"}
    assert [failure["kind"] for failure in report.failures] == ["link_user"]
    assert not [call for call in target.writes if call[0] == "change_members"]


def test_G1_group_links_can_live_in_the_state_file():
    target = MemoryConnector(Capabilities(group_link="state"))
    existing = target.seed_group("Sales")
    state = OwnershipState(target="memory", groups={"g-gone": PREFIX + "g7"})

    the_plan, _report = sync(target, [], [group("g1", "Sales")], state=state, allow_empty_source=True)

    assert target.groups[existing.id].link is None, "this target stores no group marker"
    assert state.groups == {existing.id: PREFIX + "g1"}, "linked recorded, vanished group forgotten"
    assert the_plan.stale_group_links == ["g-gone"]


def test_G5_deleted_source_group_is_deleted_and_foreign_group_kept():
    target = MemoryConnector()
    gone = target.seed_group("Old", link=PREFIX + "g9")
    foreign = target.seed_group("Theirs")

    the_plan, _report = sync(target, [], [group("g1", "New")], allow_empty_source=True)

    assert gone.id not in target.groups
    assert foreign.id in target.groups
    delete = next(action for action in the_plan.actions if action.kind == "delete_group")
    assert delete.name == "Old"


def test_groups_are_left_alone_when_no_group_records_are_given():
    target = MemoryConnector()
    target.seed_group("Old", link=PREFIX + "g9")

    sync(target, [person("s1", "alice")], None)

    assert "list_groups" not in [call[0] for call in target.calls]
    assert target.group_by_name("Old") is not None


# -- safety ----------------------------------------------------------------------------------


def test_max_deletes_exceeded_refuses_before_any_write_and_shows_the_plan():
    target = MemoryConnector()
    for n in range(3):
        target.seed_user(f"old{n}", link=PREFIX + f"x{n}")

    with pytest.raises(ProvisioningError) as raised:
        plan([person("s1", "alice")], None, target, Policy(remove_user_action="delete", max_deletes=2))

    assert "delete 3 users" in raised.value.message and "max_deletes=2" in raised.value.message
    assert raised.value.details["counts"] == {"create_user": 1, "delete_user": 3}
    assert target.writes == []


def test_max_disables_as_a_percentage_of_managed_users():
    target = MemoryConnector()
    for n in range(10):
        target.seed_user(f"u{n}", link=PREFIX + f"s{n}")
    keep = [person(f"s{n}", f"u{n}") for n in range(8)]

    plan(keep, None, target, Policy(max_disables="20%"))  # 2 of 10 is within 20%
    with pytest.raises(ProvisioningError, match=r"disable 3 users of 10 managed.*max_disables=20%"):
        plan(keep[:7], None, target, Policy(max_disables="20%"))


def test_max_group_deletes_exceeded_refuses():
    target = MemoryConnector()
    target.seed_group("A", link=PREFIX + "g1")
    target.seed_group("B", link=PREFIX + "g2")

    with pytest.raises(ProvisioningError, match="max_group_deletes=1"):
        plan([], [group("g3", "C")], target, Policy(max_group_deletes=1))


def test_empty_source_is_refused_unless_allowed():
    target = MemoryConnector()
    target.seed_user("alice", link=PREFIX + "s1")

    with pytest.raises(ProvisioningError, match="allow_empty_source"):
        plan([], None, target, Policy())
    allowed = plan([], None, target, Policy(allow_empty_source=True))

    assert [action.kind for action in allowed.actions] == ["disable_user"]
    assert target.writes == []


def test_empty_source_refusal_carries_the_plan():
    target = MemoryConnector()
    target.seed_user("alice", link=PREFIX + "s1")

    with pytest.raises(ProvisioningError) as raised:
        plan([], None, target, Policy())

    assert raised.value.details["counts"] == {"disable_user": 1}
    assert raised.value.details["actions"][0]["name"] == "alice"


def test_empty_group_source_is_refused_unless_allowed():
    target = MemoryConnector()
    target.seed_group("Sales", link=PREFIX + "g1")

    with pytest.raises(ProvisioningError, match="source has no groups"):
        plan([person("s1", "alice")], [], target, Policy())


@pytest.mark.parametrize("failing_read", ["list_users", "list_groups", "group_members"])
def test_read_failure_aborts_with_no_write(failing_read):
    target = MemoryConnector()
    target.seed_user("dave", link=PREFIX + "s4")
    target.seed_group("Sales", link=PREFIX + "g1")
    target.fail_read(failing_read)

    with pytest.raises(ProvisioningError, match="service unavailable"):
        plan([person("s1", "alice")], [group("g1", "Sales", "s1")], target, Policy())

    assert target.writes == []


def test_one_failure_does_not_stop_the_others():
    target = MemoryConnector()
    target.fail_write("create_user", "bob", "quota exceeded")
    target.seed_user("dave", link=PREFIX + "s4")

    _plan, report = sync(target, [person("s1", "alice"), person("s2", "bob"), person("s3", "carol")])

    assert target.user_by_key("alice") and target.user_by_key("carol")
    assert target.user_by_key("bob") is None
    assert target.user_by_key("dave").enabled is False
    assert report.failed == 1
    assert report.failures[0]["name"] == "bob" and "quota exceeded" in report.failures[0]["error"]
    assert report.counts == {"create_user": 2, "disable_user": 1}


def test_members_of_a_group_whose_creation_failed_are_reported_not_written():
    target = MemoryConnector()
    target.fail_write("create_group", "Sales", "name rejected")

    _plan, report = sync(target, [person("s1", "alice")], [group("g1", "Sales", "s1"), group("g2", "Ops", "s1")])

    failed = {(failure["kind"], failure["name"]) for failure in report.failures}
    assert failed == {("create_group", "Sales"), ("add_members", "Sales")}
    assert "name rejected" in next(f["error"] for f in report.failures if f["kind"] == "add_members")
    assert target.member_keys("Ops") == {"alice"}


def test_members_of_a_group_whose_linking_failed_are_not_written():
    target = MemoryConnector()
    alice = target.seed_user("alice", link=PREFIX + "s1")
    target.seed_group("Sales")
    target.fail_write("update_group", "Sales", "read-only group")

    _plan, report = sync(target, [person("s1", "alice")], [group("g1", "Sales", "s1")])

    assert alice.id not in target.group_by_name("Sales").members
    assert {failure["kind"] for failure in report.failures} == {"link_group", "add_members"}


def test_member_whose_creation_failed_is_reported_on_the_group():
    target = MemoryConnector()
    target.fail_write("create_user", "bob")

    _plan, report = sync(target, [person("s1", "alice"), person("s2", "bob")], [group("g1", "Sales", "s1", "s2")])

    assert target.member_keys("Sales") == {"alice"}
    add_failure = next(f for f in report.failures if f["kind"] == "add_members")
    assert "bob" in add_failure["error"]


def test_check_mode_writes_nothing_and_plans_the_same_as_the_real_run(tmp_path):
    def build():
        target = MemoryConnector(Capabilities(user_link="state"))
        target.seed_user("alice", {"title": "Old"})
        target.seed_user("dave")
        target.seed_group("Sales")
        return target

    state_path = tmp_path / "state.json"
    users = [person("s1", "alice", title="New"), person("s2", "bob")]
    groups = [group("g1", "Sales", "s1", "s2")]

    preview_target = build()
    preview_state = load_state(str(state_path), "memory")
    preview_plan, preview = sync(preview_target, users, groups, check_mode=True, state=preview_state)
    real_target = build()
    real_plan, real = sync(real_target, users, groups, state=load_state(str(state_path), "memory"))

    assert preview_target.writes == []
    assert preview.changed and preview.check_mode
    assert {action["status"] for action in preview.actions} == {"planned"}
    assert preview.counts == real.counts
    assert [(a["kind"], a["name"]) for a in preview.actions] == [(a["kind"], a["name"]) for a in real.actions]
    assert preview.diff == real.diff
    assert state_path.exists(), "the real run wrote its state"
    assert preview_state.users == {}, "check mode recorded nothing"


def test_check_mode_does_not_write_the_state_file(tmp_path):
    target = MemoryConnector(Capabilities(user_link="state"))
    state_path = tmp_path / "state.json"

    sync(target, [person("s1", "alice")], check_mode=True, state=load_state(str(state_path), "memory"))

    assert not state_path.exists()


def test_second_plan_after_apply_is_empty():
    target = MemoryConnector()
    target.seed_user("Alice", {"title": "Old"})
    target.seed_user("dave", link=PREFIX + "s4")
    target.seed_group("sales")
    target.seed_group("Old", link=PREFIX + "g9")
    users = [
        person("s1", "alice", title="New", emails=[{"value": "a@x", "type": "work"}]),
        person("s2", "bob"),
    ]
    groups = [group("g1", "Sales", "s1", "s2"), group("g2", "Ops", "s2")]

    first_plan, first = sync(target, users, groups)
    second_plan, second = sync(target, users, groups)

    assert first.changed and first.failed == 0 and len(first_plan.actions) > 5
    assert second_plan.actions == []
    assert not second.changed


def test_report_diff_has_before_and_after_and_hides_secrets():
    target = MemoryConnector()
    target.seed_user("alice", {"title": "Old"}, link=PREFIX + "s1")

    _plan, report = sync(target, [person("s1", "alice", title="New"), person("s2", "bob", password="hunter2")])

    diffs = {entry["before_header"]: entry for entry in report.diff}
    assert diffs["user alice (update_user)"]["before"] == {"title": "Old"}
    assert diffs["user alice (update_user)"]["after"] == {"title": "New"}
    assert "hunter2" not in json.dumps(report.as_dict())
    assert target.user_by_key("bob").resource["password"] == "hunter2", "redacted in the report only"


# -- policy ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options, option_named",
    [
        ({"remove_user_action": "archive"}, "remove_user_action"),
        ({"ownership": "all"}, "ownership"),
        ({"max_deletes": "ten"}, "max_deletes"),
        ({"max_disables": -1}, "max_disables"),
        ({"max_group_deletes": "150%"}, "max_group_deletes"),
        ({"marker_prefix": ""}, "marker_prefix"),
        ({"protected": "admin"}, "protected"),
        ({"create_users": "yes"}, "create_users"),
    ],
)
def test_policy_validation_names_the_option(options, option_named):
    with pytest.raises(ProvisioningError, match=option_named):
        Policy(**options)


def test_policy_from_options_ignores_none_and_rejects_unknown():
    assert Policy.from_options({"max_deletes": None, "ownership": "authoritative"}).ownership == "authoritative"
    with pytest.raises(ProvisioningError, match="remove_users"):
        Policy.from_options({"remove_users": True})


def test_capability_switches_suppress_their_writes():
    target = MemoryConnector()
    target.seed_user("alice", {"title": "Old"}, link=PREFIX + "s1")
    target.seed_user("dave", link=PREFIX + "s4")

    the_plan, _report = sync(
        target, [person("s1", "alice", title="New"), person("s2", "bob")], create_users=False, disable_users=False
    )

    assert kinds(the_plan) == ["update_user"]
    assert target.user_by_key("bob") is None and target.user_by_key("dave").enabled


def test_marker_prefix_separates_two_provisioners():
    target = MemoryConnector()
    theirs = target.seed_user("dave", link="hr-sync:s4")

    sync(target, [person("s1", "alice")], marker_prefix="it-sync:")

    assert target.users[theirs.id].enabled is True
    assert target.user_by_key("alice").link == "it-sync:s1"


# -- per-member results (G4) ---------------------------------------------------------------------


class RefusesOneMember(MemoryConnector):
    """A target that adds members one by one and refuses one of them (Box answers per membership)."""

    def __init__(self, refused_key: str):
        super().__init__()
        self.refused_key = refused_key

    def change_members(self, group, add, remove):
        refused = {user_id for user_id in add if self.users[user_id].key == self.refused_key}
        super().change_members(group, [user_id for user_id in add if user_id not in refused], remove)
        return {user_id: "409 user_already_in_group" for user_id in refused}


def test_G4_a_partial_membership_change_is_reported_per_member():
    target = RefusesOneMember("bob")
    users = [person("s1", "alice"), person("s2", "bob"), person("s3", "carol")]

    the_plan, report = sync(target, users, [group("g1", "Sales", "s1", "s2", "s3")])

    adds = [action for action in the_plan.actions if action.kind == "add_members"]
    assert adds[0].status == "failed"
    assert adds[0].member_errors == {"bob": "409 user_already_in_group"}
    assert adds[0].error == "1 of 3 members failed: bob: 409 user_already_in_group"
    assert target.member_keys("Sales") == {"alice", "carol"}, "the others were added"
    assert report.failed == 1


def test_union_tags_are_read_as_stone_writes_them():
    from ansible_collections.idsync.provisioning.plugins.module_utils._connector import split_path

    member = {"profile": {"status": {".tag": "suspended"}, "email": "a@example.com"}}
    assert split_path("profile.status[.tag]") == ["profile", "status", ".tag"]
    assert MemoryConnector().read_path(member, "profile.status[.tag]") == "suspended"


def verified_state(runs_since: int, age: float) -> OwnershipState:
    return OwnershipState(
        target="memory",
        runs=10 + runs_since,
        last_full_verification=format_time(time.time() - age),
        last_full_verification_run=10,
    )


def test_verification_comes_automatically_after_N_runs_after_max_age_and_for_a_new_state():
    def reason(state, **policy):
        target = MemoryConnector(NO_LIST)
        the_plan, _report = sync(target, [], state=state, allow_empty_source=True, **policy)
        listed = any(call[0] == "list_users" for call in target.calls)
        assert listed is the_plan.full_verification
        return the_plan.verification_reason

    assert reason(verified_state(3, 60)) is None
    assert "24 runs since the last verification" in reason(verified_state(24, 60))
    assert reason(verified_state(3, 60), verify_every_runs=3).startswith("3 runs since")
    assert reason(verified_state(24, 60), verify_every_runs=None) is None
    assert "verify_max_age" in reason(verified_state(1, 8 * 24 * 3600))
    assert reason(verified_state(1, 8 * 24 * 3600), verify_max_age=None) is None
    # A new (or lost) state file: every account is read once and linked by key.
    assert "never been verified" in reason(OwnershipState(target="memory"))
    assert reason(verified_state(0, 0), full_verification=True) == "full_verification is set"


def test_verify_options_refuse_what_is_not_a_whole_number():
    for bad in (-1, "7d", True, 1.5):
        with pytest.raises(ProvisioningError, match="verify_every_runs: expected a whole number"):
            Policy(verify_every_runs=bad)
