# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The stateful fake Dropbox team API (tests/support/dropbox_fake.py): what it answers, as Dropbox
does (dropbox-api.md), every request and answer checked by the SDK's Stone validators."""

from __future__ import annotations

import pytest
import requests
from support.dropbox_fake import ADD_RESULT_TAGS, DropboxApp, DropboxFake, check_request, check_response
from support.fake_service import ManualClock


@pytest.fixture(scope="module")
def clock():
    return ManualClock()


@pytest.fixture(scope="module")
def started(clock):
    with DropboxFake(clock=clock) as fake:
        yield fake


@pytest.fixture
def dbx(started):
    started.reset()
    started.added_status = "invited"
    yield started
    started.assert_valid()  # zero validator errors on every request and answer of the test


@pytest.fixture
def api(dbx):
    """POST a JSON body to /2/<route> with a token that does not expire; the answer."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {dbx.issue_token(None)}"

    def call(name, body=None, **kwargs):
        return session.post(f"{dbx.api_url}/{name}", json=body, timeout=10, **kwargs)

    yield call
    session.close()


def ok(response):
    assert response.status_code == 200, (response.status_code, response.text)
    return response.json()


def error_tag(response):
    assert response.status_code == 409, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error_summary", "error"}
    assert body["error_summary"].startswith(body["error"][".tag"] + "/")
    return body["error"][".tag"]


def email(n):
    return {".tag": "email", "email": n}


def new_member(address, given="Jo", surname="Smith", **extra):
    return {"member_email": address, "member_given_name": given, "member_surname": surname, **extra}


# -- members: listing -----------------------------------------------------------------------------
def test_members_list_pages_with_cursors_and_skips_removed_unless_asked(dbx, api):
    for n in range(4):
        dbx.seed_member(f"user{n}@example.com", "User", str(n))
    dbx.seed_member("gone@example.com", status="removed")

    first = ok(api("team/members/list_v2", {"limit": 2}))
    emails = [m["profile"]["email"] for m in first["members"]]
    cursor, more = first["cursor"], first["has_more"]
    while more:
        page = ok(api("team/members/list/continue_v2", {"cursor": cursor}))
        emails += [m["profile"]["email"] for m in page["members"]]
        cursor, more = page["cursor"], page["has_more"]

    assert emails == ["admin@fake-team.example"] + [f"user{n}@example.com" for n in range(4)]
    every = ok(api("team/members/list_v2", {"include_removed": True}))
    [removed] = [m["profile"] for m in every["members"] if m["profile"]["email"] == "gone@example.com"]
    assert removed["status"] == {".tag": "removed", "is_recoverable": True, "is_disconnected": False}
    assert error_tag(api("team/members/list/continue_v2", {"cursor": "bogus"})) == "invalid_cursor"


def test_profiles_are_written_as_stone_writes_them(dbx, api):
    dbx.seed_member("jo@example.com", "Jo", "Smith", external_id="idsync:1")
    [_admin, jo] = ok(api("team/members/list_v2", {}))["members"]
    profile = jo["profile"]
    assert len(profile["account_id"]) == 40
    assert profile["name"] == {
        "given_name": "Jo",
        "surname": "Smith",
        "familiar_name": "Jo",
        "display_name": "Jo Smith",
        "abbreviated_name": "JS",
    }
    assert profile["status"] == {".tag": "active"} and profile["external_id"] == "idsync:1"
    assert "persistent_id" not in profile  # absent optional fields are left out, never null
    assert profile["groups"] == [dbx.system_group.group_id]


# -- members: add -------------------------------------------------------------------------------------
def test_a_small_add_completes_at_once_with_invited_members(dbx, api):
    answer = ok(
        api("team/members/add_v2", {"new_members": [new_member("new@example.com", member_external_id="idsync:9")]})
    )
    assert answer[".tag"] == "complete"
    [result] = answer["complete"]
    assert result[".tag"] == "success"  # TeamMemberInfoV2 written flat under the tag
    assert result["profile"]["status"] == {".tag": "invited"}
    assert dbx.member("NEW@example.com").external_id == "idsync:9"


def test_a_large_add_is_an_async_job_completed_after_polls(dbx, api):
    dbx.add_job_polls = 2
    batch = [new_member(f"m{n}@example.com") for n in range(8)]
    answer = ok(api("team/members/add_v2", {"new_members": batch}))
    assert answer[".tag"] == "async_job_id"
    job = {"async_job_id": answer["async_job_id"]}

    assert ok(api("team/members/add/job_status/get_v2", job)) == {".tag": "in_progress"}
    assert dbx.member("m0@example.com") is None  # applied when the job completes
    assert ok(api("team/members/add/job_status/get_v2", job)) == {".tag": "in_progress"}
    done = ok(api("team/members/add/job_status/get_v2", job))

    assert done[".tag"] == "complete" and [r[".tag"] for r in done["complete"]] == ["success"] * 8
    assert not dbx.unfinished_jobs()
    assert error_tag(api("team/members/add/job_status/get_v2", {"async_job_id": "dbjid:nope"})) == (
        "invalid_async_job_id"
    )


def test_a_failed_add_job_adds_no_one(dbx, api):
    dbx.add_job_polls = 0
    dbx.fail_next_add_job("directory sync failed")
    job = ok(api("team/members/add_v2", {"new_members": [new_member("x@example.com")], "force_async": True}))
    assert ok(api("team/members/add/job_status/get_v2", {"async_job_id": job["async_job_id"]})) == {
        ".tag": "failed",
        "failed": "directory sync failed",
    }
    assert dbx.member("x@example.com") is None


def test_more_than_twenty_members_is_a_plain_text_400(dbx, api):
    batch = [new_member(f"m{n}@example.com") for n in range(21)]
    response = api("team/members/add_v2", {"new_members": batch})
    assert response.status_code == 400 and response.headers["Content-Type"].startswith("text/plain")
    assert response.text.startswith('Error in call to API function "team/members/add_v2": request body:')
    assert "at most 20" in response.text
    assert dbx.team_members(include_admin=False) == []
    dbx.clear_log()  # the validator recorded the oversized batch, as it should


def test_per_member_add_results_carry_the_email(dbx, api):
    dbx.seed_member("active@example.com")
    dbx.seed_member("invited@example.com", status="invited")
    dbx.seed_member("suspended@example.com", status="suspended")
    dbx.seed_member("recoverable@example.com", status="removed")
    dbx.seed_member("lost@example.com", status="removed", recoverable=False)
    dbx.seed_member("holder@example.com", external_id="ext-1")
    dbx.script_add_result("other@example.com", "user_on_another_team")
    batch = [
        new_member(address)
        for address in (
            "active@example.com",
            "invited@example.com",
            "suspended@example.com",
            "recoverable@example.com",
            "lost@example.com",
            "other@example.com",
        )
    ]
    batch.append(new_member("dup@example.com", member_external_id="ext-1"))
    batch.append(new_member("pid@example.com", member_persistent_id="p-1"))

    results = ok(api("team/members/add_v2", {"new_members": batch}))
    job = ok(api("team/members/add/job_status/get_v2", {"async_job_id": results["async_job_id"]}))
    job = ok(api("team/members/add/job_status/get_v2", {"async_job_id": results["async_job_id"]}))
    tags = [(r[".tag"], r.get(r[".tag"])) for r in job["complete"]]

    assert tags[:4] == [("user_already_on_team", a) for a in (b["member_email"] for b in batch[:4])]
    assert tags[4][0] == "success"  # not recoverable: added again, a new team_member_id
    assert len(dbx.members_by_email("lost@example.com")) == 2
    assert tags[5:] == [
        ("user_on_another_team", "other@example.com"),
        ("duplicate_external_member_id", "dup@example.com"),
        ("persistent_id_disabled", "pid@example.com"),
    ]


def test_the_add_result_tags_are_the_sdks(dbx):
    assert set(ADD_RESULT_TAGS) >= {
        "team_license_limit",
        "free_team_member_limit_reached",
        "user_already_on_team",
        "user_on_another_team",
        "user_already_paired",
        "user_migration_failed",
        "duplicate_external_member_id",
        "duplicate_member_persistent_id",
        "persistent_id_disabled",
        "user_creation_failed",
    }
    with pytest.raises(ValueError):
        dbx.script_add_result("x@example.com", "no_such_tag")


def test_the_license_limit(dbx, api):
    dbx.license_limit = 1  # the admin has it
    [result] = ok(api("team/members/add_v2", {"new_members": [new_member("a@example.com")]}))["complete"]
    assert result == {".tag": "team_license_limit", "team_license_limit": "a@example.com"}


# -- members: validators ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "given, problem",
    [("x" * 51, "at most 50 characters"), ("R&D: ops", "did not match pattern"), ('Jo "JJ"', "did not match pattern")],
)
def test_names_the_sdk_rejects_are_a_plain_text_400(dbx, api, given, problem):
    response = api("team/members/add_v2", {"new_members": [new_member("a@example.com", given=given)]})
    assert response.status_code == 400, response.text
    assert "member_given_name" in response.text and problem in response.text
    assert dbx.member("a@example.com") is None
    [issue] = dbx.validation_errors
    assert issue.kind == "request"
    dbx.clear_log()


def test_a_bad_body_an_unknown_field_and_non_json_are_rejected(dbx, api):
    assert api("team/members/suspend", {"user": email("a@example.com"), "wipe": False}).status_code == 400
    assert api("team/members/list_v2", {"limit": 0}).status_code == 400  # UInt32 1..1000
    response = api("team/members/list_v2", data="{", headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and "could not decode input as JSON" in response.text
    response = api("team/members/list_v2", data="{}", headers={"Content-Type": "text/plain"})
    assert response.status_code == 400 and 'Bad HTTP "Content-Type" header' in response.text
    assert len(dbx.validation_errors) == 4
    dbx.clear_log()


def test_the_validator_refuses_a_result_not_written_as_stone_writes_it():
    assert check_request("team/groups/delete", {".tag": "group_id", "group_id": "g:1"}) == []
    assert check_response("team/groups/delete", 200, {".tag": "complete"}) == []
    assert check_response("team/groups/delete", 200, "complete")  # a bare tag: Stone writes {".tag"}
    profile_with_null = {"members": [], "cursor": "c", "has_more": False, "extra": None}
    assert check_response("team/members/list_v2", 200, profile_with_null)
    assert check_response("team/members/add_v2", 409, {"error_summary": "x", "error": {".tag": "other"}})
    assert check_response("team/members/suspend", 200, None) == []


# -- members: set_profile, suspend, remove, recover -------------------------------------------------
def test_set_profile_changes_the_given_fields_and_refuses_an_empty_change(dbx, api):
    member = dbx.seed_member("jo@example.com", "Jo", "Smith")
    answer = ok(
        api(
            "team/members/set_profile_v2",
            {"user": {".tag": "team_member_id", "team_member_id": member.team_member_id}, "new_given_name": "Joanna"},
        )
    )
    assert answer["member_info"]["profile"]["name"]["given_name"] == "Joanna"
    assert (member.given_name, member.surname) == ("Joanna", "Smith")
    assert error_tag(api("team/members/set_profile_v2", {"user": email("jo@example.com")})) == "no_new_data_specified"
    selected_by_external = {"user": {".tag": "external_id", "external_id": "x"}, "new_external_id": "y"}
    dbx.seed_member("ext@example.com", external_id="x")
    assert (
        error_tag(api("team/members/set_profile_v2", selected_by_external)) == "external_id_and_new_external_id_unsafe"
    )
    assert error_tag(api("team/members/set_profile_v2", {"user": email("no@example.com"), "new_surname": "X"})) == (
        "user_not_found"
    )


def test_suspend_records_wipe_data_and_absent_counts_as_true(dbx, api):
    dbx.seed_member("a@example.com")
    dbx.seed_member("b@example.com")
    assert ok(api("team/members/suspend", {"user": email("a@example.com"), "wipe_data": False})) is None
    assert dbx.wipe_calls() == []
    dbx.assert_nothing_wiped()
    ok(api("team/members/suspend", {"user": email("b@example.com")}))  # the API's default: wipe

    [wiped] = dbx.wipe_calls()
    assert (wiped["user"], wiped["wipe_data"], wiped["wipe_data_sent"]) == (email("b@example.com"), True, False)
    with pytest.raises(AssertionError):
        dbx.assert_nothing_wiped()
    assert dbx.member("a@example.com").status == "suspended"


def test_suspend_and_unsuspend_errors_by_state(dbx, api):
    dbx.seed_member("invited@example.com", status="invited")
    dbx.seed_member("active@example.com")
    dbx.seed_member("removed@example.com", status="removed")
    body = {"wipe_data": False}
    assert error_tag(api("team/members/suspend", {"user": email("invited@example.com"), **body})) == (
        "suspend_inactive_user"
    )
    assert error_tag(api("team/members/suspend", {"user": email("removed@example.com"), **body})) == "user_not_in_team"
    assert error_tag(api("team/members/suspend", {"user": email("admin@fake-team.example"), **body})) == (
        "suspend_last_admin"
    )
    assert error_tag(api("team/members/unsuspend", {"user": email("active@example.com")})) == (
        "unsuspend_non_suspended_member"
    )
    ok(api("team/members/suspend", {"user": email("active@example.com"), **body}))
    ok(api("team/members/unsuspend", {"user": email("active@example.com")}))
    assert dbx.member("active@example.com").status == "active"


def test_remove_is_a_job_recorded_with_every_field_then_recover_within_the_window(dbx, api, clock):
    member = dbx.seed_member("leaver@example.com")
    group = dbx.seed_group("Team A", [member.team_member_id])
    answer = ok(api("team/members/remove", {"user": email("leaver@example.com"), "wipe_data": False}))
    assert answer[".tag"] == "async_job_id"
    job = {"async_job_id": answer["async_job_id"]}
    assert ok(api("team/members/remove/job_status/get", job)) == {".tag": "in_progress"}
    assert ok(api("team/members/remove/job_status/get", job)) == {".tag": "complete"}

    [call] = dbx.calls_to("team/members/remove")
    assert call["wipe_data"] is False and call["keep_account"] is False and call["retain_team_shares"] is False
    assert call["permanently_delete_files"] is False and call["transfer_dest_id"] is None
    assert member.status == "removed" and dbx.group_members(group.group_id) == set()
    assert dbx.profile(member)["status"]["is_recoverable"] is True
    [result] = ok(api("team/members/add_v2", {"new_members": [new_member("leaver@example.com")]}))["complete"]
    assert result[".tag"] == "user_already_on_team"

    assert ok(api("team/members/recover", {"user": email("leaver@example.com")})) is None
    assert member.status == "active"
    assert error_tag(api("team/members/recover", {"user": email("leaver@example.com")})) == "user_unrecoverable"

    ok(api("team/members/remove", {"user": email("leaver@example.com"), "wipe_data": False}))
    clock.advance(8 * 24 * 3600)  # past the 7-day window
    assert dbx.profile(member)["status"]["is_recoverable"] is False
    assert error_tag(api("team/members/recover", {"user": email("leaver@example.com")})) == "user_unrecoverable"


def test_remove_checks_its_combinations(dbx, api):
    dbx.seed_member("a@example.com")
    dbx.seed_member("dest@example.com")
    dbx.seed_member("inv@example.com", status="invited")
    user = email("a@example.com")
    cases = [
        ({"keep_account": True}, "cannot_keep_account_and_delete_data"),
        ({"wipe_data": False, "retain_team_shares": True}, "cannot_retain_shares_when_no_account_kept"),
        ({"retain_team_shares": True, "keep_account": False}, "cannot_retain_shares_when_data_wiped"),
        ({"wipe_data": False, "transfer_dest_id": email("dest@example.com")}, "unspecified_transfer_admin_id"),
        (
            {
                "wipe_data": False,
                "transfer_dest_id": email("dest@example.com"),
                "transfer_admin_id": email("dest@example.com"),
            },
            "transfer_admin_is_not_admin",
        ),
    ]
    for extra, tag in cases:
        assert error_tag(api("team/members/remove", {"user": user, **extra})) == tag, extra
    invited = {"user": email("inv@example.com"), "wipe_data": False, "keep_account": True}
    assert error_tag(api("team/members/remove", invited)) == "cannot_keep_invited_user_account"
    ok(
        api(
            "team/members/remove",
            {
                "user": user,
                "wipe_data": False,
                "transfer_dest_id": email("dest@example.com"),
                "transfer_admin_id": email("admin@fake-team.example"),
            },
        )
    )
    assert len(dbx.calls_to("team/members/remove")) == len(cases) + 2


def test_keep_account_disconnects_and_an_invited_member_removed_is_gone(dbx, api):
    kept = dbx.seed_member("kept@example.com")
    dbx.seed_member("inv@example.com", status="invited")
    dbx.remove_job_polls = 0
    assert ok(
        api("team/members/remove", {"user": email("kept@example.com"), "wipe_data": False, "keep_account": True})
    ) == {".tag": "complete"}
    assert dbx.profile(kept)["status"] == {".tag": "removed", "is_recoverable": False, "is_disconnected": True}
    ok(api("team/members/remove", {"user": email("inv@example.com"), "wipe_data": False}))
    assert dbx.member("inv@example.com") is None


# -- groups -------------------------------------------------------------------------------------------
def test_groups_list_pages_and_shows_the_system_managed_group(dbx, api):
    for n in range(3):
        dbx.seed_group(f"Team {n}")
    first = ok(api("team/groups/list", {"limit": 2}))
    rest = ok(api("team/groups/list/continue", {"cursor": first["cursor"]}))
    groups = first["groups"] + rest["groups"]
    assert first["has_more"] is True and rest["has_more"] is False
    assert [g["group_name"] for g in groups] == ["Everyone at Fake Team", "Team 0", "Team 1", "Team 2"]
    assert groups[0]["group_management_type"] == {".tag": "system_managed"}
    assert groups[0]["member_count"] == 1  # the admin


def test_group_create_update_delete(dbx, api):
    created = ok(
        api(
            "team/groups/create",
            {"group_name": "Sales", "group_external_id": "idsync:g1", "group_management_type": "company_managed"},
        )
    )
    assert created["group_external_id"] == "idsync:g1" and created["group_management_type"] == {
        ".tag": "company_managed"
    }
    assert error_tag(api("team/groups/create", {"group_name": "SALES"})) == "group_name_already_used"
    assert error_tag(api("team/groups/create", {"group_name": "X", "group_external_id": "idsync:g1"})) == (
        "external_id_already_in_use"
    )
    selector = {".tag": "group_id", "group_id": created["group_id"]}
    renamed = ok(
        api("team/groups/update", {"group": selector, "new_group_name": "Sales EMEA", "return_members": False})
    )
    assert renamed["group_name"] == "Sales EMEA" and "members" not in renamed
    system = {".tag": "group_id", "group_id": dbx.system_group.group_id}
    assert error_tag(api("team/groups/update", {"group": system, "new_group_name": "x"})) == (
        "system_managed_group_disallowed"
    )

    job = ok(api("team/groups/delete", selector))
    assert job[".tag"] == "async_job_id"
    assert ok(api("team/groups/job_status/get", {"async_job_id": job["async_job_id"]})) == {".tag": "in_progress"}
    assert ok(api("team/groups/job_status/get", {"async_job_id": job["async_job_id"]})) == {".tag": "complete"}
    assert dbx.group("Sales EMEA") is None
    assert error_tag(api("team/groups/delete", selector)) == "group_already_deleted"


def test_group_members_add_remove_list(dbx, api):
    members = [dbx.seed_member(f"u{n}@example.com") for n in range(3)]
    group = dbx.seed_group("Eng")
    selector = {".tag": "group_id", "group_id": group.group_id}
    add = {
        "group": selector,
        "members": [{"user": email("u0@example.com"), "access_type": "member"}],
        "return_members": False,
    }
    answer = ok(api("team/groups/members/add", add))
    assert answer["async_job_id"] == " " and answer["group_info"]["member_count"] == 1
    two = [{"user": email(f"u{n}@example.com"), "access_type": "member"} for n in (1, 0)]
    assert error_tag(api("team/groups/members/add", {**add, "members": two})) == "duplicate_user"  # the whole call
    assert dbx.group_members(group.group_id) == {members[0].team_member_id}
    unknown = api(
        "team/groups/members/add", {**add, "members": [{"user": email("x@example.com"), "access_type": "member"}]}
    )
    assert unknown.json()["error"] == {".tag": "users_not_found", "users_not_found": ["x@example.com"]}
    ok(api("team/groups/members/add", {**add, "members": two[:1]}))
    ok(api("team/groups/members/add", {**add, "members": [{"user": email("u2@example.com"), "access_type": "member"}]}))

    first = ok(api("team/groups/members/list", {"group": selector, "limit": 2}))
    rest = ok(api("team/groups/members/list/continue", {"cursor": first["cursor"]}))
    listed = [m["profile"]["email"] for m in first["members"] + rest["members"]]
    assert listed == ["u0@example.com", "u1@example.com", "u2@example.com"]
    assert first["members"][0]["access_type"] == {".tag": "member"}

    remove = {"group": selector, "users": [email("u1@example.com")], "return_members": False}
    ok(api("team/groups/members/remove", remove))
    assert error_tag(api("team/groups/members/remove", remove)) == "member_not_in_group"
    assert dbx.group_members(group.group_id) == {members[0].team_member_id, members[2].team_member_id}


# -- errors, auth, tokens ---------------------------------------------------------------------------
def test_401_bodies_for_an_unknown_and_an_expired_token(dbx, clock):
    unknown = requests.post(
        f"{dbx.api_url}/team/groups/list", json={}, headers={"Authorization": "Bearer nope"}, timeout=10
    )
    assert unknown.status_code == 401
    assert unknown.json() == {"error_summary": "invalid_access_token/...", "error": {".tag": "invalid_access_token"}}
    token = dbx.access_token(ttl=60)
    clock.advance(61)
    expired = requests.post(
        f"{dbx.api_url}/team/groups/list", json={}, headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert expired.status_code == 401 and expired.json()["error"] == {".tag": "expired_access_token"}
    assert expired.json()["error_summary"].startswith("expired_access_token/")
    missing = requests.post(f"{dbx.api_url}/team/groups/list", json={}, timeout=10)
    assert missing.status_code == 400 and "Authorization" in missing.text
    narrow = dbx.access_token(scopes={"members.read"})
    denied = requests.post(
        f"{dbx.api_url}/team/groups/list", json={}, headers={"Authorization": f"Bearer {narrow}"}, timeout=10
    )
    assert denied.json()["error"] == {".tag": "missing_scope", "required_scope": "groups.read"}


def test_429_bodies_and_retry_after(dbx, api):
    dbx.throttle("/2/team/members/add_v2", retry_after=3)
    response = api("team/members/add_v2", {"new_members": [new_member("a@example.com")]})
    assert response.status_code == 429 and response.headers["Retry-After"] == "3"
    assert response.json() == {
        "error_summary": "too_many_requests/...",
        "error": {"reason": {".tag": "too_many_requests"}, "retry_after": 3},
    }
    assert dbx.member("a@example.com") is None
    dbx.rate_limit(1, 60)
    api("team/groups/list", {})
    limited = api("team/groups/list", {})
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert limited.json()["error"]["retry_after"] == int(limited.headers["Retry-After"])


def test_token_refresh(dbx, clock):
    app = dbx.app
    form = {"grant_type": "refresh_token", "refresh_token": app.refresh_token, "client_id": app.app_key}
    answer = requests.post(dbx.token_url, data={**form, "client_secret": app.app_secret}, timeout=10)
    assert answer.status_code == 200
    body = answer.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 14400
    listed = requests.post(
        f"{dbx.api_url}/team/members/list_v2",
        json={},
        headers={"Authorization": f"Bearer {body['access_token']}"},
        timeout=10,
    )
    assert listed.status_code == 200
    basic = requests.post(dbx.token_url, data=form, auth=(app.app_key, app.app_secret), timeout=10)
    assert basic.status_code == 200
    wrong = requests.post(
        dbx.token_url, data={**form, "client_secret": app.app_secret, "refresh_token": "x"}, timeout=10
    )
    assert (wrong.status_code, wrong.json()["error"]) == (400, "invalid_grant")
    no_secret = requests.post(dbx.token_url, data=form, timeout=10)
    assert no_secret.json()["error"] == "invalid_client"
    assert all(r.body.get("client_secret") in (None, "***") for r in dbx.requests_matching("POST", "/oauth2/token"))


def test_short_token_lifetimes_expire_mid_run():
    with DropboxFake(DropboxApp(token_ttl=1, token_max_uses=2)) as fake:
        app = fake.app
        form = {"grant_type": "refresh_token", "refresh_token": app.refresh_token}
        token = requests.post(fake.token_url, data=form, auth=(app.app_key, app.app_secret), timeout=10).json()
        assert token["expires_in"] == 1
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        statuses = [
            requests.post(f"{fake.api_url}/team/groups/list", json={}, headers=headers, timeout=10).status_code
            for _attempt in range(3)
        ]
        assert statuses == [200, 200, 401]
        fake.assert_valid()


# -- snapshot and write log ---------------------------------------------------------------------------
def test_reads_leave_the_snapshot_unchanged_and_writes_change_it(dbx, api):
    dbx.seed_member("a@example.com")
    dbx.seed_group("G")
    before = dbx.snapshot()
    ok(api("team/members/list_v2", {"include_removed": True}))
    ok(api("team/groups/list", {"limit": 1}))
    dbx.assert_unchanged(before)
    assert dbx.writes() == []
    ok(api("team/members/suspend", {"user": email("a@example.com"), "wipe_data": False}))
    with pytest.raises(AssertionError, match="suspended"):
        dbx.assert_unchanged(before)
    assert [w.name for w in dbx.writes()] == ["team/members/suspend"]
