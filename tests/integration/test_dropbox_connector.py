# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Dropbox connector against the stateful fake Dropbox team API (tests/support/dropbox_fake.py).

Every request and every answer is validated by the fake with the official SDK's Stone validators;
a test fails on any validation issue and on any call that wiped data or deleted files.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from support.dropbox_fake import ADD_RESULT_TAGS, DropboxFake

from ansible_collections.idsync.provisioning.plugins.module_utils import dropbox
from ansible_collections.idsync.provisioning.plugins.module_utils._model import ProvisioningError

MEMBERS_LIST = "/2/team/members/list_v2"
ADD = "/2/team/members/add_v2"


@pytest.fixture
def fake():
    with DropboxFake() as service:
        yield service
        service.assert_valid()
        service.assert_nothing_wiped()


@pytest.fixture
def active_fake():
    """A fake whose new members are active at once (suspendable), as after they join."""
    with DropboxFake(added_status="active") as service:
        yield service
        service.assert_valid()


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def params(service: DropboxFake, **options: Any) -> dict[str, Any]:
    """Module params as Ansible passes them (every option present, None when not given)."""
    values = {name: spec.get("default") for name, spec in dropbox.connection_argument_spec().items()}
    app = service.app
    values.update(
        url=service.api_url,
        token_url=service.token_url,
        app_key=app.app_key,
        app_secret=app.app_secret,
        refresh_token=app.refresh_token,
    )
    values.update(options)
    return values


def connect(service: DropboxFake, sleeps: Sleeps | None = None, **options: Any) -> dropbox.DropboxConnector:
    return dropbox.connector_from_params(params(service, **options), sleep=sleeps if sleeps is not None else Sleeps())


def sent(service: DropboxFake, path: str) -> list[Any]:
    return [entry.body for entry in service.requests_matching("POST", path)]


def api_requests(service: DropboxFake) -> list[Any]:
    return [entry for entry in service.requests if entry.route != "/oauth2/token"]


def person(n: int | str, **attrs: Any) -> dict[str, Any]:
    return {"email": f"user{n}@example.com", "given_name": f"Given{n}", "surname": f"Sur{n}", **attrs}


# -- users: reading ------------------------------------------------------------------------------
def test_list_follows_cursors_and_leaves_removed_members_out(fake):
    for n in range(4):
        fake.seed_member(f"user{n}@example.com", "G", "S")
    fake.seed_member("off@example.com", status="suspended")
    fake.seed_member("new@example.com", status="invited")
    fake.seed_member("gone@example.com", status="removed")
    connector = connect(fake, page_size=3)

    listed = {user.key: user for user in connector.list_users()}

    assert set(listed) == {f"user{n}@example.com" for n in range(4)} | {
        "off@example.com",
        "new@example.com",
        "admin@fake-team.example",
    }
    assert (listed["off@example.com"].enabled, listed["new@example.com"].enabled) == (False, True)
    pages = sent(fake, MEMBERS_LIST) + sent(fake, "/2/team/members/list/continue_v2")
    assert pages[0] == {"limit": 3, "include_removed": True}
    assert len(pages) == 3 and all(set(page) == {"cursor"} for page in pages[1:])
    assert connector.find_user("GONE@example.com") is None  # removed: no account to link
    assert connector.find_user("USER2@example.com").key == "user2@example.com"


def test_read_path_uses_the_target_names_and_reaches_unions(fake):
    fake.seed_member("jane@example.com", "Jane", "Doe", external_id="idsync:1", status="suspended")
    connector = connect(fake)
    [user] = [u for u in connector.list_users() if u.key == "jane@example.com"]

    read = {path: connector.read_path(user.resource, path) for path in ("email", "given_name", "surname")}

    assert read == {"email": "jane@example.com", "given_name": "Jane", "surname": "Doe"}
    assert connector.read_path(user.resource, "profile.status[.tag]") == "suspended"
    assert connector.read_path(user.resource, "profile.membership_type[.tag]") == "full"
    assert user.link == "idsync:1"


# -- users: creating -----------------------------------------------------------------------------
def test_45_users_go_in_three_add_calls_of_at_most_20_followed_to_their_jobs(fake):
    sleeps = Sleeps()
    connector = connect(fake, sleeps)
    items = [(person(n), f"idsync:{n}", True) for n in range(45)]

    results = connector.create_users(items)

    assert [len(body["new_members"]) for body in sent(fake, ADD)] == [20, 20, 5]
    assert all(not isinstance(r, Exception) for r in results)
    assert [r.key for r in results] == [f"user{n}@example.com" for n in range(45)]
    assert [r.link for r in results] == [f"idsync:{n}" for n in range(45)]
    # two batches were above the fake's sync limit: followed through job_status/get_v2
    assert len(sent(fake, "/2/team/members/add/job_status/get_v2")) == 4
    assert fake.unfinished_jobs() == [] and sleeps
    first = sent(fake, ADD)[0]["new_members"][0]
    assert first == {
        "member_email": "user0@example.com",
        "member_given_name": "Given0",
        "member_surname": "Sur0",
        "member_external_id": "idsync:0",
        "send_welcome_email": True,
    }
    assert fake.member("user44@example.com").status == "invited"


def test_an_async_add_job_is_polled_with_a_growing_wait_until_complete(fake):
    fake.add_job_polls = 3
    sleeps = Sleeps()
    connector = connect(fake, sleeps, send_welcome_email=False)

    [user] = connector.create_users([(person(1), "idsync:1", True)] * 1)
    launched = connector.create_users([(person(n), f"idsync:{n}", True) for n in range(2, 9)])

    assert user.key == "user1@example.com" and all(not isinstance(r, Exception) for r in launched)
    assert len(sent(fake, "/2/team/members/add/job_status/get_v2")) == 4  # 3 in_progress, then complete
    assert sleeps == [0.5, 1.0, 2.0]
    assert fake.member("user5@example.com").welcome_email is False


def test_a_failed_add_job_is_retried_member_by_member(fake):
    fake.fail_next_add_job("internal error")
    connector = connect(fake)

    results = connector.create_users([(person(n), f"idsync:{n}", True) for n in range(7)])

    assert [len(b["new_members"]) for b in sent(fake, ADD)] == [7, 1, 1, 1, 1, 1, 1, 1]
    assert all(not isinstance(r, Exception) for r in results)
    assert all(len(fake.members_by_email(f"user{n}@example.com")) == 1 for n in range(7))


@pytest.mark.parametrize("tag", [t for t in ADD_RESULT_TAGS if t not in ("user_already_on_team", "other")])
def test_every_refusal_tag_is_reported_for_its_member_alone(fake, tag):
    fake.script_add_result("user1@example.com", tag)
    connector = connect(fake)

    results = connector.create_users([(person(n), f"idsync:{n}", True) for n in range(3)])

    assert not isinstance(results[0], Exception) and not isinstance(results[2], Exception)
    assert isinstance(results[1], ProvisioningError)
    assert results[1].message.startswith(f"user user1@example.com: members/add_v2: {tag}")
    assert fake.member("user1@example.com") is None
    assert len(sent(fake, ADD)) == 1  # a member's refusal is not resent


def test_real_refusals_from_the_team_state_are_reported(fake):
    fake.seed_member("holder@example.com", external_id="idsync:taken")
    fake.license_limit = len(fake.team_members()) + 1
    connector = connect(fake)

    results = connector.create_users(
        [(person(1), "idsync:taken", True), (person(2), "idsync:2", True), (person(3), "idsync:3", True)]
    )

    assert "duplicate_external_member_id" in results[0].message
    assert results[1].key == "user2@example.com"
    assert "team_license_limit" in results[2].message and "no license left" in results[2].message


def test_a_removed_but_recoverable_member_is_recovered_not_duplicated(fake):
    old = fake.seed_member("back@example.com", "Old", "Name", external_id="idsync:7", status="removed")
    connector = connect(fake)

    user = connector.create_user(
        {"email": "Back@example.com", "given_name": "New", "surname": "Name"}, "idsync:7", True
    )

    assert user.id == old.team_member_id and user.enabled
    assert [m.status for m in fake.members_by_email("back@example.com")] == ["active"]
    assert fake.member("back@example.com").given_name == "New"  # the profile re-applied
    assert sent(fake, "/2/team/members/recover") == [{"user": {".tag": "team_member_id", "team_member_id": user.id}}]
    assert sent(fake, "/2/team/members/set_profile_v2")[-1] == {
        "user": {".tag": "team_member_id", "team_member_id": user.id},
        "new_given_name": "New",
    }


def test_a_recovered_member_that_must_be_disabled_is_suspended_by_the_engine_step(active_fake):
    active_fake.seed_member("back@example.com", "B", "C", external_id="idsync:7", status="removed")
    connector = connect(active_fake)

    user = connector.create_user({"email": "back@example.com", "given_name": "B", "surname": "C"}, "idsync:7", True)
    connector.set_user_enabled(user, False)  # what the engine does for a disabled source user

    assert active_fake.member("back@example.com").status == "suspended"
    assert active_fake.calls_to("team/members/suspend")[-1]["wipe_data"] is False


def test_a_removed_member_past_recovery_is_added_again(fake):
    old = fake.seed_member("late@example.com", external_id="idsync:8", status="removed", recoverable=False)
    connector = connect(fake)

    user = connector.create_user(person("x", email="late@example.com"), "idsync:8", True)

    assert user.id != old.team_member_id
    assert sorted(m.status for m in fake.members_by_email("late@example.com")) == ["invited", "removed"]
    assert sent(fake, "/2/team/members/recover") == []


def test_user_already_on_team_for_an_unrecoverable_member_is_added_again_once(fake):
    fake.seed_member("odd@example.com", status="removed", recoverable=False)
    fake.script_add_result("odd@example.com", "user_already_on_team")
    connector = connect(fake)

    [result] = connector.create_users([(person("y", email="odd@example.com"), "idsync:9", True)])

    assert isinstance(result, ProvisioningError) and "user_already_on_team again" in result.message
    assert len(sent(fake, ADD)) == 2 and sent(fake, "/2/team/members/recover") == []


def test_an_invited_member_is_linked_and_marked(fake):
    invited = fake.seed_member("inv@example.com", "In", "Vited", status="invited")
    connector = connect(fake)

    user = connector.create_user({"email": "inv@example.com", "given_name": "In", "surname": "Vited"}, "idsync:3", True)

    assert user.id == invited.team_member_id and user.link == "idsync:3"
    assert len(fake.members_by_email("inv@example.com")) == 1
    assert sent(fake, "/2/team/members/set_profile_v2") == [
        {"user": {".tag": "team_member_id", "team_member_id": user.id}, "new_external_id": "idsync:3"}
    ]


def test_a_member_carrying_another_marker_is_not_taken_over(fake):
    fake.seed_member("theirs@example.com", external_id="other:1")

    [result] = connect(fake).create_users([(person(1, email="theirs@example.com"), "idsync:1", True)])

    assert isinstance(result, ProvisioningError) and "another marker (other:1)" in result.message
    assert sent(fake, "/2/team/members/set_profile_v2") == []


LONG = "x" * 51


@pytest.mark.parametrize(
    ("attrs", "field", "why"),
    [
        ({"given_name": LONG}, "given_name", "51 characters, Dropbox allows at most 50"),
        ({"surname": LONG}, "surname", "51 characters"),
        *[({"given_name": f"A{c}B"}, "given_name", f"contains {c}") for c in '/:?*<>"|'],
        ({"surname": "O:Brien"}, "surname", "contains :"),
        ({"email": "not-an-email"}, "email", "is not an e-mail address"),
        ({"external_id": "x"}, "external_id", "ownership marker"),
        ({"favourite": "blue"}, "favourite", "not a Dropbox member field"),
        ({"is_directory_restricted": "yes"}, "is_directory_restricted", "true or false"),
    ],
)
def test_invalid_fields_fail_that_user_naming_it_and_the_field_before_any_call(fake, attrs, field, why):
    connector = connect(fake)
    bad = {"email": "bad@example.com", "given_name": "Bad", "surname": "User", **attrs}

    results = connector.create_users([(bad, "idsync:bad", True), (person(1), "idsync:1", True)])

    who = bad["email"]
    assert isinstance(results[0], ProvisioningError)
    assert results[0].message.startswith(f"user {who}: {field}: ") and why in results[0].message
    assert [[m["member_email"] for m in body["new_members"]] for body in sent(fake, ADD)] == [["user1@example.com"]]


def test_a_marker_over_64_characters_and_a_disabled_create_are_refused_before_any_call(fake):
    connector = connect(fake)

    results = connector.create_users([(person(1), "m" * 65, True), (person(2), "idsync:2", False)])

    assert "member_external_id: the marker has 65 characters" in results[0].message
    assert "enabled: Dropbox adds a member as invited" in results[1].message
    assert api_requests(fake) == []


def test_an_ambiguous_add_is_looked_up_before_it_is_resent(fake):
    fake.faults.drop_after_write("POST", ADD)
    connector = connect(fake)

    [user] = connector.create_users([(person(1), "idsync:1", True)])

    assert user.key == "user1@example.com"
    assert len(fake.members_by_email("user1@example.com")) == 1
    assert len(sent(fake, ADD)) == 1


# -- users: update, suspend, unsuspend, remove ------------------------------------------------------
def test_update_sends_only_the_changed_fields_by_team_member_id_and_never_an_empty_change(fake):
    member = fake.seed_member("upd@example.com", "Old", "Same")
    connector = connect(fake)
    user = connector.find_user("upd@example.com")

    connector.update_user(user, {"given_name": "New"})
    connector.update_user(user, {})

    assert sent(fake, "/2/team/members/set_profile_v2") == [
        {"user": {".tag": "team_member_id", "team_member_id": member.team_member_id}, "new_given_name": "New"}
    ]
    assert (member.given_name, member.surname) == ("New", "Same")
    with pytest.raises(ProvisioningError, match=r"user upd@example.com: surname: cannot be emptied"):
        connector.update_user(user, {"surname": ""})


def test_suspend_unsuspend_and_remove_always_send_wipe_data_false(fake):
    for email in ("a@example.com", "b@example.com"):
        fake.seed_member(email, "A", "B")
    connector = connect(fake)
    users = {u.key: u for u in connector.list_users()}

    connector.set_user_enabled(users["a@example.com"], False)
    connector.set_user_enabled(users["a@example.com"], True)
    connector.delete_user(users["b@example.com"])

    [suspend] = fake.calls_to("team/members/suspend")
    [remove] = fake.calls_to("team/members/remove")
    assert (suspend["wipe_data"], suspend["wipe_data_sent"]) == (False, True)
    assert (remove["wipe_data"], remove["wipe_data_sent"], remove["keep_account"]) == (False, True, False)
    assert remove["permanently_delete_files"] is False
    assert all("permanently_delete_files" not in body for body in sent(fake, "/2/team/members/remove"))
    assert fake.member("a@example.com").status == "active"
    assert fake.member("b@example.com").status == "removed"
    assert len(sent(fake, "/2/team/members/remove/job_status/get")) == 2  # in_progress, then complete
    assert fake.unfinished_jobs() == []


def test_wipe_data_and_the_remove_options_are_sent_when_asked():
    with DropboxFake() as service:
        service.seed_member("a@example.com")
        service.seed_member("keep@example.com")
        dest = service.seed_member("dest@example.com")
        connector = connect(service, wipe_data=True)
        users = {u.key: u for u in connector.list_users()}
        connector.set_user_enabled(users["a@example.com"], False)
        keeper = connect(service, keep_account=True, retain_team_shares=True)
        keeper.delete_user(users["keep@example.com"])
        mover = connect(service, transfer_dest_id=dest.team_member_id, transfer_admin_id="admin@fake-team.example")
        mover.delete_user(users["a@example.com"])

        suspend = service.calls_to("team/members/suspend")[0]
        kept, moved = service.calls_to("team/members/remove")
        service.assert_valid()
    assert suspend["wipe_data"] is True
    assert (kept["keep_account"], kept["retain_team_shares"], kept["wipe_data"]) == (True, True, False)
    assert moved["transfer_dest_id"] == {".tag": "team_member_id", "team_member_id": dest.team_member_id}
    assert moved["transfer_admin_id"] == {".tag": "email", "email": "admin@fake-team.example"}
    assert (kept["outcome"], moved["outcome"]) == ("ok", "ok")


@pytest.mark.parametrize(
    ("options", "why"),
    [
        ({"keep_account": True, "wipe_data": True}, "keep_account needs wipe_data: false"),
        ({"retain_team_shares": True}, "retain_team_shares needs keep_account: true"),
        (
            {"keep_account": True, "transfer_dest_id": "d@example.com", "transfer_admin_id": "a@example.com"},
            "keep_account and transfer_dest_id",
        ),
        ({"transfer_dest_id": "d@example.com"}, "transfer_dest_id needs transfer_admin_id"),
        ({"transfer_admin_id": "a@example.com"}, "transfer_admin_id is used only with transfer_dest_id"),
        ({"keep_account": True, "permanently_delete_files": True}, "keep_account and permanently_delete_files"),
        (
            {
                "permanently_delete_files": True,
                "transfer_dest_id": "d@example.com",
                "transfer_admin_id": "a@example.com",
            },
            "permanently_delete_files and transfer_dest_id",
        ),
        ({"access_token": "tok"}, "access_token and refresh_token are mutually exclusive"),
        ({"refresh_token": None, "app_key": None, "app_secret": None}, "authentication: give refresh_token"),
        ({"app_key": None}, "app_key: required for the refresh-token grant"),
        ({"page_size": 1001}, "page_size: at most 1000"),
    ],
)
def test_option_combinations_are_refused_before_any_call(fake, options, why):
    with pytest.raises(ProvisioningError) as caught:
        connect(fake, **options)

    assert why in caught.value.message
    assert fake.requests == []


def test_an_invited_member_cannot_be_suspended_so_disabling_revokes_its_invitation(fake):
    fake.seed_member("inv@example.com", status="invited")
    connector = connect(fake)
    user = connector.find_user("inv@example.com")

    connector.set_user_enabled(user, False)

    assert fake.member("inv@example.com") is None  # the invitation is revoked: nothing to recover
    assert sent(fake, "/2/team/members/suspend") == []
    assert sent(fake, "/2/team/members/remove")[0] == {
        "user": {".tag": "team_member_id", "team_member_id": user.id},
        "wipe_data": False,
    }


def test_disable_invited_fail_reports_the_invited_member_and_writes_nothing(fake):
    fake.seed_member("inv@example.com", status="invited")
    connector = connect(fake, disable_invited="fail")
    user = connector.find_user("inv@example.com")

    with pytest.raises(ProvisioningError, match=r"user inv@example.com: invited and not joined yet"):
        connector.set_user_enabled(user, False)

    assert fake.writes() == []


def test_removing_an_invited_member_leaves_keep_account_out(fake):
    fake.seed_member("inv@example.com", status="invited")
    connector = connect(fake, keep_account=True)

    connector.delete_user(connector.find_user("inv@example.com"))

    assert fake.member("inv@example.com") is None
    assert fake.calls_to("team/members/remove")[0]["keep_account"] is False


def test_a_409_carries_error_summary_and_its_tag(fake):
    fake.seed_member("inv@example.com", status="invited")
    connector = connect(fake)
    user = connector.find_user("inv@example.com")
    user.resource["profile"]["status"] = {".tag": "active"}  # a stale listing

    with pytest.raises(ProvisioningError) as caught:
        connector.set_user_enabled(user, False)

    assert caught.value.status == 409 and "suspend_inactive_user/" in caught.value.message
    assert dropbox.error_tag(caught.value) == "suspend_inactive_user"


def test_a_400_plain_text_body_is_the_message(fake):
    fake.faults.status("POST", MEMBERS_LIST, 400, body=fake.text('Error in call to API function "x": bad', 400))

    with pytest.raises(ProvisioningError, match=r'400 Error in call to API function "x": bad'):
        list(connect(fake).list_users())


# -- groups ------------------------------------------------------------------------------------------
def test_groups_list_across_pages_skipping_the_system_managed_group(fake):
    for n in range(4):
        fake.seed_group(f"Group {n}", external_id=f"idsync:g{n}" if n % 2 else None)

    groups = list(connect(fake, page_size=2).list_groups())

    assert [g.name for g in groups] == [f"Group {n}" for n in range(4)]
    assert [g.link for g in groups] == [None, "idsync:g1", None, "idsync:g3"]
    assert len(sent(fake, "/2/team/groups/list/continue")) == 2


def test_groups_create_rename_and_delete_followed_to_the_job(fake):
    connector = connect(fake)

    group = connector.create_group("Engineering", "idsync:g1")
    connector.update_group(group, name="Engineers")
    connector.update_group(group, name="Engineers")  # nothing to change: no call
    connector.delete_group(group)

    assert sent(fake, "/2/team/groups/create") == [
        {
            "group_name": "Engineering",
            "group_management_type": {".tag": "company_managed"},
            "group_external_id": "idsync:g1",
        }
    ]
    assert sent(fake, "/2/team/groups/update") == [
        {"group": {".tag": "group_id", "group_id": group.id}, "return_members": False, "new_group_name": "Engineers"}
    ]
    assert group.id in fake.deleted_groups and fake.unfinished_jobs() == []
    assert len(sent(fake, "/2/team/groups/job_status/get")) == 2
    connector.delete_group(group)  # already deleted: done


def test_an_ambiguous_group_create_takes_the_group_it_made(fake):
    fake.faults.drop_after_write("POST", "/2/team/groups/create")

    group = connect(fake).create_group("Ops", "idsync:g2")

    assert group.link == "idsync:g2" and [g.group_name for g in fake.groups.values()].count("Ops") == 1


def test_member_changes_send_only_the_difference_without_members_back(fake):
    ids = [fake.seed_member(f"m{n}@example.com").team_member_id for n in range(4)]
    group = fake.seed_group("Team", [ids[0], ids[1]])
    connector = connect(fake)
    [target] = [g for g in connector.list_groups() if g.name == "Team"]

    failures = connector.change_members(target, add=[ids[0], ids[2]], remove=[ids[1], ids[3]])

    assert failures == {}
    assert fake.group_members(group.group_id) == {ids[0], ids[2]}
    [added] = sent(fake, "/2/team/groups/members/add")
    [removed] = sent(fake, "/2/team/groups/members/remove")
    assert added["members"] == [
        {"user": {".tag": "team_member_id", "team_member_id": ids[2]}, "access_type": {".tag": "member"}}
    ]
    assert removed["users"] == [{".tag": "team_member_id", "team_member_id": ids[1]}]
    assert added["return_members"] is False and removed["return_members"] is False
    assert connector.group_members(target) == {ids[0], ids[2]}


def test_members_dropbox_names_as_refused_are_reported_and_the_others_added(fake):
    present = fake.seed_member("ok@example.com").team_member_id
    removed = fake.seed_member("gone@example.com", status="removed").team_member_id
    group = fake.seed_group("Team")
    connector = connect(fake)
    [target] = [g for g in connector.list_groups() if g.name == "Team"]

    failures = connector.change_members(target, add=[present, removed], remove=[])

    assert list(failures) == [removed] and "members_not_in_team" in failures[removed]
    assert fake.group_members(group.group_id) == {present}


# -- auth, errors, rate limits -------------------------------------------------------------------------
def test_the_token_is_renewed_before_it_expires(fake):
    fake.seed_member("a@example.com")
    connector = connect(fake)
    source = connector.client.token_source
    now = [1000.0]
    source.clock = lambda: now[0]

    list(connector.list_users())
    list(connector.list_users())
    now[0] += fake.app.token_ttl - 299  # within the SDK's 300 s margin
    list(connector.list_users())

    tokens = sent(fake, "/oauth2/token")
    assert len(tokens) == 2 and source.renewals == 2
    assert tokens[0]["grant_type"] == "refresh_token" and tokens[0]["client_id"] == fake.app.app_key


def test_an_expired_access_token_is_renewed_once_and_the_call_resent(fake):
    fake.app.token_max_uses = 2  # tokens the fake expires mid-run
    fake.seed_member("a@example.com")
    connector = connect(fake)

    for _run in range(3):
        assert "a@example.com" in {u.key for u in connector.list_users()}

    statuses = [entry.status for entry in fake.requests_matching("POST", MEMBERS_LIST)]
    assert statuses.count(401) == 1 and len(sent(fake, "/oauth2/token")) == 2


def test_an_invalid_access_token_is_not_renewed_but_reported(fake):
    connector = connect(fake)
    list(connector.list_users())
    fake.tokens.clear()  # the token is unknown now: invalid_access_token

    with pytest.raises(ProvisioningError) as caught:
        list(connector.list_users())

    assert caught.value.status == 401 and "invalid_access_token" in caught.value.message
    assert len(sent(fake, "/oauth2/token")) == 1


def test_a_plain_access_token_is_sent_as_bearer(fake):
    token = fake.access_token()
    connector = connect(fake, access_token=token, refresh_token=None, app_key=None, app_secret=None)

    assert any(u.key == "admin@fake-team.example" for u in connector.list_users())
    assert sent(fake, "/oauth2/token") == []


def test_429_waits_the_json_retry_after(fake):
    body = {
        "error_summary": "too_many_requests/..",
        "error": {"reason": {".tag": "too_many_requests"}, "retry_after": 7},
    }
    fake.faults.status("POST", MEMBERS_LIST, 429, body=fake.json(body, 429))  # no Retry-After header
    sleeps = Sleeps()

    list(connect(fake, sleeps).list_users())

    assert sleeps == [7.0]


def test_429_waits_the_retry_after_header_of_a_plain_answer_and_a_write_is_resent(fake):
    fake.throttle(ADD, retry_after=3, plain=True)
    fake.throttle("/2/team/members/suspend", retry_after=2, reason="too_many_write_operations")
    fake.seed_member("s@example.com")
    sleeps = Sleeps()
    connector = connect(fake, sleeps)

    [user] = connector.create_users([(person(1), "idsync:1", True)])
    connector.set_user_enabled(connector.find_user("s@example.com"), False)

    assert user.key == "user1@example.com" and len(fake.members_by_email("user1@example.com")) == 1
    assert sleeps == [3.0, 2.0]
    assert fake.member("s@example.com").status == "suspended"


def test_secrets_never_reach_an_error(fake):
    fake.app.refresh_token = "a-different-refresh-token"
    connector = connect(fake, refresh_token="the-secret-refresh-token-123")

    with pytest.raises(ProvisioningError) as caught:
        list(connector.list_users())

    text = caught.value.message + json.dumps(caught.value.details, default=str)
    assert "the-secret-refresh-token-123" not in text and fake.app.app_secret not in text
    assert "refused the refresh_token grant" in caught.value.message


def test_target_and_capabilities(fake):
    spec = dropbox.connection_argument_spec()

    assert dropbox.TARGET.name == "dropbox" and dropbox.TARGET.user_key == "email"
    assert dropbox.TARGET.default_user_mapping["email"] == "first(attributes.mail)"
    assert all(spec[name].get("no_log") for name in ("app_secret", "refresh_token", "access_token"))
    assert spec["wipe_data"]["default"] is False and spec["url"]["default"] == dropbox.API_URL
    assert spec["token_url"]["default"] == dropbox.TOKEN_URL
    caps = connect(fake).capabilities
    assert (caps.user_link, caps.group_link, caps.create_batch) == ("target", "target", 20)
