# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Box connector against the stateful fake Box (tests/support/box_fake.py), one per test.

Every request the connector sends is validated against Box's OpenAPI description by the fake; a
test fails on any validation issue and on any ``PUT /users/{id}`` that carried ``enterprise``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from support.box_fake import BoxApp, BoxFake

from ansible_collections.idsync.provisioning.plugins.module_utils import box
from ansible_collections.idsync.provisioning.plugins.module_utils._model import ProvisioningError

PASSPHRASE = "correct horse battery"


@pytest.fixture
def box_service():
    with BoxFake() as service:
        yield service
        service.assert_valid()
        service.assert_never_removed_from_enterprise()


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def params(service: BoxFake, **options: Any) -> dict[str, Any]:
    """Module params as Ansible would pass them (every option present, None when not given)."""
    values = {name: spec.get("default") for name, spec in box.connection_argument_spec().items()}
    values.update(url=service.api_url, token_url=service.token_url)
    values.update(options)
    return values


def ccg(service: BoxFake, sleeps: Sleeps | None = None, **options: Any) -> box.BoxConnector:
    app = service.app
    settings = dict(client_id=app.client_id, client_secret=app.client_secret, enterprise_id=app.enterprise_id)
    settings.update(options)
    return box.connector_from_params(params(service, **settings), sleep=sleeps if sleeps is not None else Sleeps())


def seed(service: BoxFake, login: str, **fields: Any) -> str:
    return service.seed_user(login, **fields)["id"]


def api_writes(service: BoxFake) -> list[Any]:
    return [entry for entry in service.writes() if entry.route != "/oauth2/token"]


def bodies(service: BoxFake, method: str, path: str) -> list[Any]:
    return [entry.body for entry in service.requests_matching(method, path)]


def config_file(tmp_path: Path, app: BoxApp) -> str:
    path = tmp_path / "box_config.json"
    path.write_text(json.dumps(app.config(PASSPHRASE)), encoding="utf-8")
    return str(path)


# -- users: reading ------------------------------------------------------------------------------
@pytest.mark.parametrize("end_marker", [None, ""], ids=["null", "empty"])
def test_users_follow_next_marker_across_three_pages_and_skip_app_users(box_service, end_marker):
    box_service.end_marker = end_marker
    people = {seed(box_service, f"user{n}@example.com"): f"user{n}@example.com" for n in range(5)}
    box_service.seed_app_user("An App User")  # and the app's service account, always there
    connector = ccg(box_service)
    connector.page_size = 3

    listed = list(connector.list_users())

    assert {(u.id, u.key) for u in listed} == set(people.items())
    pages = box_service.requests_matching("GET", "/2.0/users")
    assert len(pages) == 3
    assert pages[0].query.get("marker") is None and all(p.query.get("marker") for p in pages[1:])
    for page in pages:
        assert (page.query["user_type"], page.query["usemarker"], page.query["limit"]) == ("managed", "true", "3")
        assert set(box.USER_FIELDS) | {"is_platform_access_only"} <= set(page.query["fields"].split(","))
    # with fields, Box answers those only: role and tracking_codes are not standard fields
    assert all("role" in u.resource and "tracking_codes" in u.resource for u in listed)
    assert all("created_at" not in u.resource for u in listed)


def test_status_decides_enabled_and_cannot_delete_edit_counts_as_enabled(box_service):
    seed(box_service, "on@example.com")
    seed(box_service, "off@example.com", status="inactive")
    seed(box_service, "locked@example.com", status="cannot_delete_edit_upload")

    enabled = {u.key: u.enabled for u in ccg(box_service).list_users()}

    assert enabled == {"on@example.com": True, "off@example.com": False, "locked@example.com": True}


def test_find_user_uses_filter_term_and_matches_the_whole_login_case_insensitively(box_service):
    user_id = seed(box_service, "Jane.Doe@Example.com")
    seed(box_service, "jane.doe@example.com.au")
    connector = ccg(box_service)

    found = connector.find_user("jane.doe@example.com")

    assert (found.id, found.key) == (user_id, "Jane.Doe@Example.com")
    assert box_service.requests_matching("GET", "/2.0/users")[-1].query["filter_term"] == "jane.doe@example.com"
    assert connector.find_user("nobody@example.com") is None


# -- users: create ---------------------------------------------------------------------------------
def test_create_user_sends_the_mapped_fields_and_the_status(box_service):
    connector = ccg(box_service)
    attrs = {
        "login": "new@example.com",
        "name": "New Person",
        "job_title": "Engineer",
        "space_amount": -1,
        "tracking_codes": [{"name": "CostCenter", "value": "42"}],
    }

    active = connector.create_user(attrs, "idsync:1", True)
    inactive = connector.create_user(dict(attrs, login="later@example.com"), "idsync:2", False)

    sent = bodies(box_service, "POST", "/2.0/users")
    codes = [{"type": "tracking_code", "name": "CostCenter", "value": "42"}]
    assert sent[0] == dict(attrs, status="active", tracking_codes=codes)
    assert sent[1]["status"] == "inactive"
    assert (active.key, active.enabled, inactive.enabled) == ("new@example.com", True, False)
    assert box_service.users[inactive.id]["status"] == "inactive"
    assert box_service.users[active.id]["tracking_codes"] == codes


@pytest.mark.parametrize("code", ["user_login_already_used", "conflict"])
def test_a_409_on_create_links_the_existing_account_whatever_the_code(box_service, code):
    user_id = seed(box_service, "Taken@example.com", name="Old Name")
    if code != "user_login_already_used":
        box_service.faults.status("POST", "/2.0/users", 409, code=code, message="already there")
    connector = ccg(box_service)

    user = connector.create_user({"login": "taken@example.com", "name": "New Name"}, "idsync:1", True)

    assert user.id == user_id
    assert [u["login"] for u in box_service.managed_users()] == ["Taken@example.com"]
    assert box_service.users[user_id]["name"] == "New Name"  # brought to the mapped values
    assert bodies(box_service, "PUT", "/2.0/users/{user_id}") == [{"name": "New Name"}]


def test_a_409_for_a_login_outside_the_enterprise_is_the_service_error(box_service):
    box_service.faults.status("POST", "/2.0/users", 409, code="user_login_already_used", message="login in use")

    with pytest.raises(ProvisioningError) as caught:
        ccg(box_service).create_user({"login": "elsewhere@example.com", "name": "X"}, "idsync:1", True)

    assert caught.value.status == 409 and "login in use" in caught.value.message


def test_a_lost_create_answer_is_looked_up_not_created_twice(box_service):
    box_service.faults.drop_after_write("POST", "/2.0/users")

    user = ccg(box_service).create_user({"login": "once@example.com", "name": "Once"}, "idsync:1", True)

    assert [u["login"] for u in box_service.managed_users()] == ["once@example.com"]
    assert user.key == "once@example.com"
    assert len(box_service.requests_matching("POST", "/2.0/users")) == 1


def test_a_503_on_create_waits_retry_after_and_reads_before_resending(box_service, sleeps):
    box_service.faults.status("POST", "/2.0/users", 503, headers={"Retry-After": "4"})
    connector = ccg(box_service, sleeps)

    connector.create_user({"login": "later@example.com", "name": "Later"}, "idsync:1", True)

    kinds = [(e.method, e.route) for e in box_service.requests if e.route != "/oauth2/token"]
    assert kinds == [("POST", "/2.0/users"), ("GET", "/2.0/users"), ("POST", "/2.0/users")]
    assert 4 in sleeps
    assert [u["login"] for u in box_service.managed_users()] == ["later@example.com"]


LONG = "x" * 51


@pytest.mark.parametrize(
    ("attrs", "field", "why"),
    [
        ({"name": LONG}, "name", "51 characters, Box allows at most 50"),
        ({"job_title": "j" * 101}, "job_title", "at most 100"),
        ({"phone": "1" * 101}, "phone", "at most 100"),
        ({"address": "a" * 256}, "address", "at most 255"),
        ({"role": "admin"}, "role", "'admin' is not one of coadmin, user"),
        ({"status": "suspended"}, "status", "is not one of active"),
        ({"space_amount": "1000"}, "space_amount", "must be a number of bytes"),
        ({"tracking_codes": [{"name": "CC"}]}, "tracking_codes", "needs a name and a value"),
        ({"is_sync_enabled": "yes"}, "is_sync_enabled", "must be true or false"),
        ({"enterprise": None}, "enterprise", "never written"),
        ({"favourite_colour": "blue"}, "favourite_colour", "not a Box user field"),
        ({"login": "not-an-email"}, "login", "is not an e-mail address"),
        ({"name": None}, "name", "cannot be empty in Box"),
    ],
)
def test_invalid_fields_fail_that_user_naming_it_and_the_field_before_sending(box_service, attrs, field, why):
    connector = ccg(box_service)

    with pytest.raises(ProvisioningError) as caught:
        connector.create_user({"login": "bad@example.com", "name": "Bad", **attrs}, "idsync:1", True)

    who = "bad@example.com" if field != "login" else "not-an-email"
    assert caught.value.message.startswith(f"user {who}: {field}: ")
    assert why in caught.value.message
    assert api_writes(box_service) == []
    good = connector.create_user({"login": "good@example.com", "name": "Good"}, "idsync:2", True)
    assert good.id in box_service.users  # one user's refusal stops no one else


def test_create_users_reports_each_failure_and_creates_the_others(box_service):
    results = ccg(box_service).create_users(
        [
            ({"login": "a@example.com", "name": "A"}, "idsync:a", True),
            ({"login": "b@example.com", "name": LONG}, "idsync:b", True),
            ({"login": "c@example.com", "name": "C"}, "idsync:c", True),
        ]
    )

    assert [type(r).__name__ for r in results] == ["TargetUser", "ProvisioningError", "TargetUser"]
    assert "user b@example.com: name: 51 characters" in results[1].message


# -- users: update, enable, disable ------------------------------------------------------------
def test_update_puts_only_the_changed_fields_and_never_enterprise(box_service):
    keep = {"type": "tracking_code", "name": "Keep", "value": "k"}
    user_id = seed(box_service, "upd@example.com", job_title="Old", phone="1", tracking_codes=[keep])
    connector = ccg(box_service)
    user = connector.find_user("upd@example.com")

    connector.update_user(user, {"job_title": "New", "phone": None, "tracking_codes.CostCenter": "7"})

    [sent] = bodies(box_service, "PUT", "/2.0/users/{user_id}")
    codes = [keep, {"type": "tracking_code", "name": "CostCenter", "value": "7"}]
    assert sent == {"job_title": "New", "phone": "", "tracking_codes": codes}
    stored = box_service.users[user_id]
    assert (stored["job_title"], stored["phone"], stored["tracking_codes"], stored["name"]) == ("New", "", codes, "upd")
    assert connector.read_path(user.resource, "tracking_codes.CostCenter") == "7"
    assert connector.read_path(user.resource, "job_title") == "New"


def test_a_refused_login_change_says_why(box_service):
    seed(box_service, "old@example.com", login_confirmed=False)
    connector = ccg(box_service)

    with pytest.raises(ProvisioningError, match="only when the user's e-mail address is confirmed"):
        connector.update_user(connector.find_user("old@example.com"), {"login": "new@example.com"})


def test_disable_and_enable_write_the_status(box_service):
    user_id = seed(box_service, "toggle@example.com")
    connector = ccg(box_service)
    user = connector.find_user("toggle@example.com")

    connector.set_user_enabled(user, False)
    assert (box_service.users[user_id]["status"], user.enabled) == ("inactive", False)
    connector.set_user_enabled(user, True)
    assert (box_service.users[user_id]["status"], user.enabled) == ("active", True)
    assert bodies(box_service, "PUT", "/2.0/users/{user_id}") == [{"status": "inactive"}, {"status": "active"}]


def test_cannot_delete_edit_status_is_left_alone_unless_asked(box_service):
    user_id = seed(box_service, "locked@example.com", status="cannot_delete_edit")
    connector = ccg(box_service)
    user = connector.find_user("locked@example.com")

    connector.set_user_enabled(user, True)
    connector.update_user(user, {"status": "active"})
    assert api_writes(box_service) == []

    asked = ccg(box_service, overwrite_restricted_status=True)
    asked.update_user(asked.find_user("locked@example.com"), {"status": "active"})
    assert box_service.users[user_id]["status"] == "active"


# -- users: delete ---------------------------------------------------------------------------------
def test_delete_moves_the_content_first_then_deletes_without_force(box_service):
    archive = seed(box_service, "archive@example.com")
    leaver = seed(box_service, "leaver@example.com", content=3)
    connector = ccg(box_service, transfer_content_to="archive@example.com")

    connector.delete_user(connector.find_user("leaver@example.com"))

    assert leaver not in box_service.users
    assert box_service.transfers[0].items() >= {"from": leaver, "to": archive, "items": 3}.items()
    assert box_service.user_state[archive].content == 3
    deleted = {"id": leaver, "force": False, "notify": False, "content_deleted": 0}
    assert box_service.deleted_users[0].items() >= deleted.items()
    writes = [(e.method, e.route, e.body) for e in api_writes(box_service)]
    assert writes == [
        ("PUT", "/2.0/users/{user_id}/folders/0", {"owned_by": {"id": archive}}),
        ("DELETE", "/2.0/users/{user_id}", None),
    ]


def test_transfer_to_a_user_id_and_the_delete_options(box_service):
    archive = seed(box_service, "archive@example.com")
    leaver = seed(box_service, "leaver@example.com", content=1)
    connector = ccg(box_service, transfer_content_to=archive, delete_notify=True)

    connector.delete_user(connector.find_user("leaver@example.com"))

    assert box_service.deleted_users[0].items() >= {"id": leaver, "force": False, "notify": True}.items()
    assert box_service.requests_matching("GET", "/2.0/users")[-1].query.get("filter_term") == "leaver@example.com"


def test_a_delete_that_fails_after_the_transfer_is_reported_for_the_next_run_never_forced(box_service):
    seed(box_service, "archive@example.com")
    leaver = seed(box_service, "slow@example.com", content=5)
    box_service.transfer_finishes_later = 1  # Box is still moving the content when the delete comes
    connector = ccg(box_service, transfer_content_to="archive@example.com")

    with pytest.raises(ProvisioningError) as caught:
        connector.delete_user(connector.find_user("slow@example.com"))

    message = caught.value.message
    assert message.startswith("user slow@example.com: delete failed: its content was moved to archive@example.com")
    assert "the next run retries" in message and "User still owns content" in message
    assert leaver in box_service.users
    deletes = box_service.requests_matching("DELETE", "/2.0/users/{user_id}")
    assert [d.query.get("force") for d in deletes] == ["false"]

    box_service.transfer_finishes_later = 0  # the move has finished by the next run
    connector.delete_user(connector.find_user("slow@example.com"))
    assert leaver not in box_service.users


def test_a_delete_refused_by_legal_hold_names_the_user_and_touches_no_one_else(box_service):
    held = seed(box_service, "held@example.com", legal_hold=True)
    other = seed(box_service, "free@example.com", content=2)
    connector = ccg(box_service, delete_force=True)

    with pytest.raises(ProvisioningError) as caught:
        connector.delete_user(connector.find_user("held@example.com"))
    connector.delete_user(connector.find_user("free@example.com"))

    assert caught.value.status == 403
    assert caught.value.message.startswith("user held@example.com: Box refused the delete (retention or legal hold")
    assert "User cannot be deleted due to retention policies" in caught.value.message
    assert held in box_service.users and other not in box_service.users


def test_transfer_to_an_unknown_login_deletes_nothing(box_service):
    user_id = seed(box_service, "stay@example.com", content=1)
    connector = ccg(box_service, transfer_content_to="nobody@example.com")

    with pytest.raises(ProvisioningError, match="transfer_content_to: no managed Box user has the login"):
        connector.delete_user(connector.find_user("stay@example.com"))
    assert user_id in box_service.users and api_writes(box_service) == []


def test_a_transfer_without_root_readwrite_deletes_nothing(box_service):
    box_service.app.scopes = frozenset({"manage_managed_users", "manage_groups"})
    seed(box_service, "archive@example.com")
    user_id = seed(box_service, "stay@example.com", content=1)
    connector = ccg(box_service, transfer_content_to="archive@example.com")

    with pytest.raises(ProvisioningError, match="moving its content to archive@example.com failed, so it is not"):
        connector.delete_user(connector.find_user("stay@example.com"))
    assert user_id in box_service.users and box_service.requests_matching("DELETE", "/2.0/users/{user_id}") == []


# -- groups ----------------------------------------------------------------------------------------
def test_groups_page_by_offset_skip_all_users_and_carry_the_marker(box_service):
    seeded = {box_service.seed_group(f"Team {n}")["id"]: f"Team {n}" for n in range(5)}
    ours = box_service.seed_group("Synced", external_sync_identifier="idsync:g1")["id"]
    connector = ccg(box_service)
    connector.page_size = 3

    groups = {g.id: g for g in connector.list_groups()}

    assert {i: g.name for i, g in groups.items()} == dict(seeded, **{ours: "Synced"})  # no "All Users"
    assert groups[ours].link == "idsync:g1"
    pages = box_service.requests_matching("GET", "/2.0/groups")
    assert [p.query["offset"] for p in pages] == ["0", "3", "6"]


def test_more_than_ten_thousand_groups_is_a_clear_error(box_service):
    with box_service.lock:
        for n in range(10000):
            box_service._add_group(f"g{n}")

    with pytest.raises(ProvisioningError, match="refuses offsets past 10000, so more than 10000 cannot be read"):
        list(ccg(box_service).list_groups())


def test_create_group_sets_provenance_and_external_sync_identifier(box_service):
    connector = ccg(box_service, provenance="ldap-sync")

    group = connector.create_group("Engineering", "idsync:g1")

    assert bodies(box_service, "POST", "/2.0/groups") == [
        {"name": "Engineering", "provenance": "ldap-sync", "external_sync_identifier": "idsync:g1"}
    ]
    stored = box_service.groups[group.id]
    assert (stored["provenance"], stored["external_sync_identifier"]) == ("ldap-sync", "idsync:g1")
    assert (group.link, group.members, group.member_handles) == ("idsync:g1", set(), {})


def test_a_409_on_group_create_links_ours_and_refuses_anothers(box_service):
    box_service.seed_group("Ours", external_sync_identifier="idsync:g1")
    box_service.seed_group("Theirs", external_sync_identifier="other:9")
    connector = ccg(box_service)

    assert connector.create_group("ours", "idsync:g1").name == "Ours"
    with pytest.raises(ProvisioningError, match="exists now but is not ours"):
        connector.create_group("Theirs", "idsync:g2")
    assert len(box_service.managed_groups()) == 2


def test_rename_link_and_delete_group(box_service):
    group_id = box_service.seed_group("Old")["id"]
    connector = ccg(box_service)
    [group] = connector.find_groups("old")

    connector.update_group(group, link="idsync:g7")
    connector.update_group(group, name="New")

    stored = box_service.groups[group_id]
    assert (stored["name"], stored["external_sync_identifier"], stored["provenance"]) == (
        "New",
        "idsync:g7",
        "idsync.provisioning",
    )
    assert (group.name, group.link) == ("New", "idsync:g7")
    connector.delete_group(group)
    assert group_id not in box_service.groups


# -- memberships -----------------------------------------------------------------------------------
def test_members_are_added_and_removed_by_membership_id_with_a_per_member_failure(box_service):
    stay, leave, new = (seed(box_service, f"{n}@example.com") for n in ("stay", "leave", "new"))
    group_id = box_service.seed_group("Team", members=[stay])["id"]
    leave_membership = box_service.add_member(group_id, leave)["id"]
    connector = ccg(box_service)
    [group] = connector.find_groups("Team")

    assert connector.group_members(group) == {stay, leave}
    assert group.member_handles[leave] == leave_membership

    failed = connector.change_members(group, add=[new, stay, "999999"], remove=[leave])

    assert list(failed) == ["999999"] and "404" in failed["999999"]
    assert box_service.members_of(group_id) == {stay, new}
    deletes = box_service.requests_matching("DELETE", "/2.0/group_memberships/{membership_id}")
    assert [d.path for d in deletes] == [f"/2.0/group_memberships/{leave_membership}"]
    added = [b["user"]["id"] for b in bodies(box_service, "POST", "/2.0/group_memberships")]
    assert added == [new, "999999"]  # stay is a member already: never re-added
    assert group.members == {stay, new} and set(group.member_handles) == {stay, new}


def test_memberships_page_by_offset(box_service):
    users = {seed(box_service, f"m{n}@example.com") for n in range(7)}
    box_service.seed_group("Big", members=sorted(users))
    connector = ccg(box_service)
    connector.page_size = 3

    assert connector.group_members(connector.find_groups("Big")[0]) == users
    assert len(box_service.requests_matching("GET", "/2.0/groups/{group_id}/memberships")) == 3


def test_an_ambiguous_membership_add_is_checked_before_resending(box_service):
    user_id = seed(box_service, "m@example.com")
    group_id = box_service.seed_group("Team")["id"]
    box_service.faults.drop_after_write("POST", "/2.0/group_memberships")
    connector = ccg(box_service)
    [group] = connector.find_groups("Team")

    assert connector.change_members(group, add=[user_id], remove=[]) == {}
    assert len(box_service.memberships) == 1 and box_service.members_of(group_id) == {user_id}


def test_a_stale_handle_adding_an_existing_member_links_it(box_service):
    user_id = seed(box_service, "m@example.com")
    group_id = box_service.seed_group("Team")["id"]
    connector = ccg(box_service)
    [group] = connector.find_groups("Team")
    connector.group_members(group)
    membership = box_service.add_member(group_id, user_id)["id"]  # added meanwhile: Box answers 409

    assert connector.change_members(group, add=[user_id], remove=[]) == {}
    assert group.member_handles == {user_id: membership} and len(box_service.memberships) == 1


# -- authentication --------------------------------------------------------------------------------
def grant_forms(service: BoxFake) -> list[dict[str, Any]]:
    return [entry.body for entry in service.requests_matching("POST", "/oauth2/token") if entry.status == 200]


def test_client_credentials_grant_sends_the_enterprise_subject(box_service):
    seed(box_service, "someone@example.com")

    assert [u.key for u in ccg(box_service).list_users()] == ["someone@example.com"]

    [grant] = grant_forms(box_service)
    assert grant["grant_type"] == "client_credentials"
    assert (grant["box_subject_type"], grant["box_subject_id"]) == ("enterprise", box_service.app.enterprise_id)


def test_jwt_grant_from_the_app_config_file(box_service, tmp_path):
    seed(box_service, "someone@example.com")
    app = box_service.app
    connector = box.connector_from_params(params(box_service, config_file=config_file(tmp_path, app)))

    assert [u.key for u in connector.list_users()] == ["someone@example.com"]
    source = connector.client.token_source  # type: ignore[attr-defined]
    source._renew()  # a second token request: the fake refuses a replayed jti

    forms = grant_forms(box_service)
    assert [f["grant_type"] for f in forms] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"] * 2
    assert len(box_service.used_jtis) == 2
    assertion = source.grant()["assertion"]
    assert jwt.get_unverified_header(assertion) == {"alg": "RS256", "kid": app.key_id, "typ": "JWT"}
    claims = jwt.decode(assertion, app.public_key, algorithms=["RS256"], audience="https://api.box.com/oauth2/token")
    assert (claims["iss"], claims["sub"], claims["box_sub_type"]) == (app.client_id, app.enterprise_id, "enterprise")
    assert 0 < claims["exp"] - time.time() <= 45 and 16 <= len(claims["jti"]) <= 128


def test_jwt_grant_from_options_with_an_encrypted_key_file(box_service, tmp_path):
    app = box_service.app
    key_file = tmp_path / "key.pem"
    key_file.write_text(app.private_key_pem(PASSPHRASE), encoding="utf-8")
    options = dict(
        client_id=app.client_id,
        client_secret=app.client_secret,
        enterprise_id=app.enterprise_id,
        jwt_key_id=app.key_id,
        jwt_private_key_file=str(key_file),
        jwt_passphrase=PASSPHRASE,
    )
    connector = box.connector_from_params(params(box_service, **options))

    assert list(connector.list_users()) == []
    assert len(box_service.used_jtis) == 1


def test_a_token_expiring_mid_run_is_renewed_and_the_listing_completes(box_service):
    box_service.app.token_max_uses = 2  # each token serves two requests, then Box answers 401
    people = {seed(box_service, f"p{n}@example.com") for n in range(9)}
    connector = ccg(box_service)
    connector.page_size = 2

    assert {u.id for u in connector.list_users()} == people
    # 5 pages: tokens 1 and 2 serve two each, token 3 the last; pages 3 and 5 were answered 401 once
    assert len(grant_forms(box_service)) == 3
    statuses = [e.status for e in box_service.requests_matching("GET", "/2.0/users")]
    assert statuses == [200, 200, 401, 200, 200, 401, 200]


def test_429_waits_the_retry_after_box_sends(box_service, sleeps):
    seed(box_service, "patient@example.com")
    box_service.faults.status("GET", "/2.0/users", 429, times=2, headers={"Retry-After": "7"})

    assert [u.key for u in ccg(box_service, sleeps).list_users()] == ["patient@example.com"]
    assert sleeps == [7.0, 7.0]


def test_a_plain_access_token(box_service):
    seed(box_service, "t@example.com")

    connector = box.connector_from_params(params(box_service, access_token=box_service.access_token()))

    assert [u.key for u in connector.list_users()] == ["t@example.com"]
    assert box_service.requests_matching("POST", "/oauth2/token") == []


def test_a_refused_grant_names_the_endpoint_and_hides_the_secret(box_service):
    connector = ccg(box_service, client_secret="wrong-secret-value-0000")

    with pytest.raises(ProvisioningError) as caught:
        list(connector.list_users())

    assert "refused the client_credentials grant" in caught.value.message
    assert "invalid_client" in caught.value.message
    assert "wrong-secret-value-0000" not in caught.value.message


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({}, "authentication: give client_id + client_secret + enterprise_id"),
        ({"access_token": "t", "client_id": "c"}, "access_token and client_id are mutually exclusive"),
        ({"client_id": "c", "client_secret": "s"}, "enterprise_id: required for the Client Credentials Grant"),
        ({"client_id": "c"}, "client_secret: required for the Client Credentials Grant"),
        ({"config_file": "/nonexistent/box.json"}, "config_file: /nonexistent/box.json is not a readable Box app"),
        ({"access_token": "t", "timeout": 0}, "timeout: must be at least 1"),
        ({"access_token": "t", "provenance": "p" * 256}, "provenance: at most 255 characters"),
    ],
)
def test_option_errors_name_the_option(box_service, options, error):
    with pytest.raises(ProvisioningError, match=error.replace("+", r"\+")):
        box.connector_from_params(params(box_service, **options))


def test_jwt_option_errors_name_the_option(box_service, tmp_path):
    app = box_service.app
    path = config_file(tmp_path, app)
    with pytest.raises(ProvisioningError, match="config_file and client_id are mutually exclusive"):
        box.connector_from_params(params(box_service, config_file=path, client_id=app.client_id))
    with pytest.raises(ProvisioningError, match="jwt_passphrase: wrong passphrase"):
        box.connector_from_params(params(box_service, config_file=path, jwt_passphrase="wrong"))
    base = dict(
        client_id=app.client_id, client_secret=app.client_secret, enterprise_id=app.enterprise_id, jwt_key_id=app.key_id
    )
    with pytest.raises(ProvisioningError, match="jwt_passphrase: required: the private key is encrypted"):
        box.connector_from_params(params(box_service, jwt_private_key=app.private_key_pem(PASSPHRASE), **base))
    with pytest.raises(ProvisioningError, match="jwt_private_key: required for JWT"):
        box.connector_from_params(params(box_service, **base))


def test_the_target_description_and_the_argument_spec():
    spec = box.connection_argument_spec()
    assert box.TARGET.name == "box" and box.TARGET.user_key == "login"
    assert box.TARGET.build is box.connector_from_params
    assert box.TARGET.default_user_mapping["login"] == "first(attributes.mail)"
    assert (spec["url"]["default"], spec["token_url"]["default"]) == (box.API_URL, box.TOKEN_URL)
    secret = {name for name, option in spec.items() if option.get("no_log")}
    assert secret == {"client_secret", "jwt_private_key", "jwt_passphrase", "access_token"}
    assert spec["delete_force"]["default"] is False and spec["delete_notify"]["default"] is False
    capabilities = box.BoxConnector(None).capabilities  # type: ignore[arg-type]
    assert (capabilities.user_link, capabilities.group_link, capabilities.member_chunk) == ("state", "target", 100)
