# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The stateful fake Box (tests/support/box_fake.py): what it answers, as Box does (box-api.md)."""

from __future__ import annotations

import time

import pytest
import requests
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from support.box_fake import (
    JWT_GRANT,
    SHARED_DESCRIPTION,
    SUBSET_PATH,
    TOKEN_URL,
    BoxApp,
    BoxFake,
    box_openapi_path,
)


@pytest.fixture(scope="module")
def started():
    with BoxFake() as fake:
        yield fake


@pytest.fixture
def box(started):
    started.reset()
    started.expire_token()
    yield started


@pytest.fixture
def api(box):
    """A requests session with a token of the fake's app, on the fake's /2.0."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {box.access_token()}"

    def call(method, path, **kwargs):
        return session.request(method, f"{box.api_url}{path}", timeout=10, **kwargs)

    yield call
    session.close()


def outside_or_invalid(box):
    return [str(issue) for issue in box.validation_errors]


def error_keys(response):
    return set(response.json())


# -- the description ------------------------------------------------------------------------------
def test_the_description_is_boxs_own_when_provided_else_the_subset(monkeypatch, tmp_path):
    monkeypatch.delenv("BOX_OPENAPI_PATH", raising=False)
    assert box_openapi_path() == (SHARED_DESCRIPTION if SHARED_DESCRIPTION.is_file() else SUBSET_PATH)
    given = tmp_path / "openapi.json"
    given.write_text("{}")
    monkeypatch.setenv("BOX_OPENAPI_PATH", str(given))
    assert box_openapi_path() == given


# -- users: paging, fields, filters ---------------------------------------------------------------
def test_marker_paging_follows_next_marker_to_a_null_or_empty_end(box, api):
    seeded = [box.seed_user(f"user{n}@example.com")["id"] for n in range(5)]
    box.seed_app_user("An app user")
    box.seed_user("guest@elsewhere.example", external=True)

    def pages():
        seen, marker = [], None
        while True:
            params = {"user_type": "managed", "usemarker": "true", "limit": 2, "fields": "id,login"}
            if marker:
                params["marker"] = marker
            answer = api("GET", "/users", params=params)
            assert answer.status_code == 200, answer.text
            body = answer.json()
            assert "total_count" not in body and "offset" not in body
            seen.append([u["id"] for u in body["entries"]])
            marker = body["next_marker"]
            if not marker:
                return seen, marker

    listed, end = pages()
    ids = [user_id for page in listed for user_id in page]
    assert end is None and len(listed) == 4  # service account + 5 + app user, 2 a page
    assert ids[0] == box.service_account["id"] and ids[1:6] == seeded
    box.end_marker = ""
    assert pages()[1] == ""
    assert outside_or_invalid(box) == []


def test_user_type_all_includes_externals_and_managed_excludes_them(box, api):
    box.seed_user("staff@example.com")
    box.seed_user("guest@elsewhere.example", external=True)
    logins = {
        kind: {u["login"] for u in api("GET", "/users", params={"user_type": kind}).json()["entries"]}
        for kind in ("managed", "all", "external")
    }
    assert "guest@elsewhere.example" not in logins["managed"]
    assert {"staff@example.com", "guest@elsewhere.example"} <= logins["all"]
    assert logins["external"] == {"guest@elsewhere.example"}


def test_offset_paging_and_box_limits(box, api):
    for n in range(3):
        box.seed_user(f"o{n}@example.com")
    page = api("GET", "/users", params={"user_type": "managed", "limit": 2, "offset": 2}).json()
    assert (page["total_count"], page["offset"], page["limit"], len(page["entries"])) == (4, 2, 2, 2)

    too_far = api("GET", "/users", params={"offset": 10001})
    assert too_far.status_code == 400
    assert error_keys(too_far) >= {"type", "status", "code", "message", "request_id"}
    assert too_far.json()["type"] == "error" and too_far.json()["status"] == 400

    too_many = api("GET", "/users", params={"limit": 1001})
    assert too_many.status_code == 400
    assert any("limit" in str(issue) for issue in box.validation_errors)  # the description refuses it


def test_fields_give_the_mini_fields_and_those_asked_only(box, api):
    user = box.seed_user("jo@example.com", "Jo", role="coadmin", job_title="Engineer")
    standard = api("GET", f"/users/{user['id']}").json()
    assert "role" not in standard and "is_platform_access_only" not in standard
    assert standard["job_title"] == "Engineer"

    asked = api("GET", f"/users/{user['id']}", params={"fields": "role,is_platform_access_only"}).json()
    assert asked == {
        "type": "user",
        "id": user["id"],
        "name": "Jo",
        "login": "jo@example.com",
        "role": "coadmin",
        "is_platform_access_only": False,
    }


def test_filter_term_is_a_prefix_of_name_or_login(box, api):
    box.seed_user("alice@example.com", "Alice Smith")
    box.seed_user("bob@example.com", "Bob Smithers")
    found = api("GET", "/users", params={"filter_term": "ALI", "user_type": "managed"}).json()["entries"]
    assert [u["login"] for u in found] == ["alice@example.com"]
    found = api("GET", "/users", params={"filter_term": "bob", "user_type": "managed"}).json()["entries"]
    assert [u["login"] for u in found] == ["bob@example.com"]


# -- users: writes ---------------------------------------------------------------------------------
def test_create_user_answers_201_and_a_duplicate_login_409(box, api):
    created = api("POST", "/users", json={"name": "Jo Smith", "login": "jo@example.com", "role": "user"})
    assert created.status_code == 201, created.text
    assert created.json()["login"] == "jo@example.com"
    assert box.user_by_login("jo@example.com")["status"] == "active"

    again = api("POST", "/users", json={"name": "Jo Again", "login": "JO@example.com"})
    assert again.status_code == 409
    body = again.json()
    assert {k: body[k] for k in ("type", "status", "code")} == {
        "type": "error",
        "status": 409,
        "code": "user_login_already_used",
    }
    assert body["message"] and body["request_id"]
    assert outside_or_invalid(box) == []


@pytest.mark.parametrize(
    "body, why",
    [
        ({"name": "x" * 51, "login": "long@example.com"}, "name"),
        ({"name": "Jo", "login": "jo@example.com", "role": "admin"}, "role"),
        ({"name": "Jo", "login": "jo@example.com", "status": "disabled"}, "status"),
        ({"name": "Jo", "login": "jo@example.com", "job_title": "t" * 101}, "job_title"),
        ({"login": "noname@example.com"}, "name"),
        ({"name": "Jo", "login": "not-an-email"}, "login"),
    ],
)
def test_the_description_rejects_what_box_rejects(box, api, body, why):
    answer = api("POST", "/users", json=body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == "bad_request"
    assert any(why in str(issue) for issue in box.validation_errors), box.validation_errors
    assert box.user_by_login(body["login"]) is None


def test_update_with_enterprise_null_rolls_the_user_out_and_is_recorded(box, api):
    user = box.seed_user("leaver@example.com")
    box.assert_never_removed_from_enterprise()
    answer = api("PUT", f"/users/{user['id']}", json={"enterprise": None})
    assert answer.status_code == 200
    assert [r["user_id"] for r in box.enterprise_removals] == [user["id"]]
    with pytest.raises(AssertionError, match="rolled users out"):
        box.assert_never_removed_from_enterprise()
    listed = api("GET", "/users", params={"user_type": "managed"}).json()["entries"]
    assert user["id"] not in {u["id"] for u in listed}


def test_update_writes_the_given_fields_only(box, api):
    user = box.seed_user("jo@example.com", "Jo", phone="555-0100")
    answer = api("PUT", f"/users/{user['id']}", json={"status": "inactive", "job_title": "Lead"})
    assert answer.status_code == 200
    stored = box.users[user["id"]]
    assert (stored["status"], stored["job_title"], stored["phone"]) == ("inactive", "Lead", "555-0100")
    assert outside_or_invalid(box) == []


# -- delete, content, legal hold, transfer -----------------------------------------------------------
def test_delete_of_a_content_owner_needs_force(box, api):
    owner = box.seed_user("owner@example.com", content=3)
    refused = api("DELETE", f"/users/{owner['id']}")
    assert 400 <= refused.status_code < 500 and refused.json()["type"] == "error"
    assert owner["id"] in box.users
    assert api("DELETE", f"/users/{owner['id']}", params={"force": "true"}).status_code == 204
    assert box.deleted_users[-1]["force"] is True
    assert api("GET", f"/users/{owner['id']}").status_code == 404


def test_a_legal_hold_refuses_the_delete_even_with_force(box, api):
    held = box.seed_user("held@example.com", content=2)
    box.place_legal_hold(held["id"])
    for params in ({}, {"force": "true"}):
        answer = api("DELETE", f"/users/{held['id']}", params=params)
        assert answer.status_code == 403
        assert answer.json()["code"] == "forbidden"
        assert "retention" in answer.json()["message"]
    assert held["id"] in box.users
    assert box.deleted_users == []


def test_transfer_moves_the_content_and_then_the_delete_succeeds(box, api):
    leaver = box.seed_user("leaver@example.com", "Leaver", content=4)
    keeper = box.seed_user("keeper@example.com")
    box.place_legal_hold(leaver["id"])

    moved = api("PUT", f"/users/{leaver['id']}/folders/0", json={"owned_by": {"id": keeper["id"]}})
    assert moved.status_code == 200, moved.text
    assert moved.json()["name"] == "Leaver's Files and Folders"
    assert moved.json()["owned_by"]["id"] == keeper["id"]
    assert box.transfers[-1] == {
        "from": leaver["id"],
        "to": keeper["id"],
        "items": 4,
        "folder_id": moved.json()["id"],
        "notify": False,
        "finished": True,
    }
    assert box.user_state[keeper["id"]].content == 4
    assert api("DELETE", f"/users/{leaver['id']}").status_code == 204
    assert outside_or_invalid(box) == []


def test_a_transfer_that_finishes_later_fails_the_first_delete(box, api):
    box.transfer_finishes_later = 1
    leaver = box.seed_user("slow@example.com", content=1)
    keeper = box.seed_user("keeper@example.com")
    assert api("PUT", f"/users/{leaver['id']}/folders/0", json={"owned_by": {"id": keeper["id"]}}).ok
    assert api("DELETE", f"/users/{leaver['id']}").status_code == 400
    assert box.transfers[-1]["finished"] is True
    assert api("DELETE", f"/users/{leaver['id']}").status_code == 204


def test_a_transfer_needs_the_root_readwrite_scope(box):
    leaver = box.seed_user("leaver@example.com", content=1)
    keeper = box.seed_user("keeper@example.com")
    token = box.access_token(scopes=["manage_managed_users", "manage_groups"])
    answer = requests.put(
        f"{box.api_url}/users/{leaver['id']}/folders/0",
        json={"owned_by": {"id": keeper["id"]}},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert answer.status_code == 403
    assert answer.json()["code"] == "insufficient_scope"
    assert box.transfers == [] and box.user_state[leaver["id"]].content == 1


# -- authentication ---------------------------------------------------------------------------------
def test_401_for_a_missing_bad_or_expired_token(box):
    url = f"{box.api_url}/users"
    missing = requests.get(url, timeout=10)
    bad = requests.get(url, headers={"Authorization": "Bearer nope"}, timeout=10)
    token = box.access_token(max_uses=1)
    first = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    expired = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert [r.status_code for r in (missing, bad, first, expired)] == [401, 401, 200, 401]
    assert missing.content == b"" and missing.headers["WWW-Authenticate"] == 'Bearer realm="Service"'
    assert [issue.kind for issue in box.validation_errors] == ["request"]  # the description wants a token
    assert 'error="invalid_token"' in bad.headers["WWW-Authenticate"]
    assert "expired" in expired.headers["WWW-Authenticate"]


def test_429_carries_retry_after_and_boxs_body(box, api):
    box.rate_limit(1, per=60, retry_after=7)
    assert api("GET", "/users").status_code == 200
    limited = api("GET", "/users")
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "7"
    assert limited.json()["code"] == "rate_limit_exceeded" and limited.json()["type"] == "error"


def token(box, **form):
    return requests.post(box.token_url, data=form, timeout=10)


def ccg(box, **overrides):
    form = {
        "grant_type": "client_credentials",
        "client_id": box.app.client_id,
        "client_secret": box.app.client_secret,
        "box_subject_type": "enterprise",
        "box_subject_id": box.app.enterprise_id,
    }
    form.update(overrides)
    return token(box, **form)


def jwt_grant(box, assertion, **overrides):
    form = {
        "grant_type": JWT_GRANT,
        "assertion": assertion,
        "client_id": box.app.client_id,
        "client_secret": box.app.client_secret,
    }
    form.update(overrides)
    return token(box, **form)


def test_client_credentials_grant_gives_a_bearer_token_that_works(box):
    answer = ccg(box)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["token_type"], body["expires_in"], body["restricted_to"]) == ("bearer", 3600, [])
    listed = requests.get(
        f"{box.api_url}/users", headers={"Authorization": f"Bearer {body['access_token']}"}, timeout=10
    )
    assert listed.status_code == 200
    assert box.url + "/oauth2/token" == box.token_url  # not under /2.0
    assert outside_or_invalid(box) == []


@pytest.mark.parametrize(
    "overrides, error",
    [
        ({"client_secret": "wrong"}, "invalid_client"),
        ({"client_id": "unknown"}, "invalid_client"),
        ({"box_subject_id": "123"}, "invalid_grant"),
        ({"grant_type": "password"}, None),  # outside the description's enum: 400 too
    ],
)
def test_client_credentials_errors_are_oauth_errors(box, overrides, error):
    answer = ccg(box, **overrides)
    assert answer.status_code == 400
    if error:
        assert answer.json()["error"] == error and answer.json()["error_description"]


def test_an_app_not_authorized_gets_unauthorized_client(box):
    box.app.authorized = False
    try:
        assert ccg(box).json()["error"] == "unauthorized_client"
    finally:
        box.app.authorized = True


def test_jwt_grant_accepts_a_signed_assertion_for_the_real_token_url(box):
    answer = jwt_grant(box, box.app.assertion())
    assert answer.status_code == 200, answer.text
    assert answer.json()["token_type"] == "bearer"
    logged = box.requests_matching("POST", "/oauth2/token")[-1]
    assert logged.body["assertion"] == "***" and logged.body["client_secret"] == "***"


def test_jwt_grant_refusals(box):
    other_key = BoxApp.with_new_key().private_key
    now = time.time()
    cases = {
        "signature": box.app.assertion(key=other_key),
        "aud": box.app.assertion(aud=box.token_url),
        "expired": box.app.assertion(now=now - 120),
        "exp too far": box.app.assertion(lifetime=600),
        "kid": box.app.assertion(headers={"kid": "other"}),
        "iss": box.app.assertion(iss="someone-else"),
        "sub": box.app.assertion(sub="424242"),
        "short jti": box.app.assertion(jti="short"),
        "no jti": box.app.assertion(jti=None),
    }
    for why, assertion in cases.items():
        answer = jwt_grant(box, assertion)
        assert answer.status_code == 400, why
        assert answer.json()["error"] == "invalid_grant", why
    assert TOKEN_URL == "https://api.box.com/oauth2/token"


def test_a_replayed_jti_is_refused(box):
    assertion = box.app.assertion()
    assert jwt_grant(box, assertion).status_code == 200
    replayed = jwt_grant(box, assertion)
    assert replayed.status_code == 400
    assert "jti" in replayed.json()["error_description"]


def test_short_lived_tokens_expire_mid_run(box):
    app = box.add_app(
        client_id="shortlivedapp000000000000000001", token_max_uses=2, scopes=frozenset({"manage_groups"})
    )
    body = ccg(box, client_id=app.client_id, client_secret=app.client_secret).json()
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    statuses = [requests.get(f"{box.api_url}/groups", headers=headers, timeout=10).status_code for _attempt in range(3)]
    assert statuses == [200, 200, 401]
    assert requests.get(f"{box.api_url}/users", headers=headers, timeout=10).status_code == 401
    fresh = ccg(box, client_id=app.client_id, client_secret=app.client_secret).json()["access_token"]
    users = requests.get(f"{box.api_url}/users", headers={"Authorization": f"Bearer {fresh}"}, timeout=10)
    assert users.status_code == 403 and users.json()["code"] == "insufficient_scope"  # no manage_managed_users


def test_the_app_config_carries_an_encrypted_key_that_matches(box):
    config = box.app.config(passphrase="s3cret")
    auth = config["boxAppSettings"]["appAuth"]
    assert "ENCRYPTED" in auth["privateKey"]
    key = load_pem_private_key(auth["privateKey"].encode(), b"s3cret")
    assert key.public_key().public_numbers() == box.app.public_key.public_numbers()
    assert (config["enterpriseID"], auth["publicKeyID"]) == (box.app.enterprise_id, box.app.key_id)


# -- groups and memberships ----------------------------------------------------------------------------
def test_groups_create_rename_delete_and_unique_names(box, api):
    created = api("POST", "/groups", json={"name": "Sales", "provenance": "ldap", "external_sync_identifier": "g-1"})
    assert created.status_code == 201, created.text
    group_id = created.json()["id"]
    assert box.groups[group_id]["external_sync_identifier"] == "g-1"

    duplicate = api("POST", "/groups", json={"name": "SALES"})
    assert duplicate.status_code == 409 and duplicate.json()["type"] == "error"

    other = api("POST", "/groups", json={"name": "Support"}).json()["id"]
    assert api("PUT", f"/groups/{other}", json={"name": "Sales"}).status_code == 409
    renamed = api("PUT", f"/groups/{group_id}", json={"name": "Sales EMEA"})
    assert renamed.status_code == 200 and box.groups[group_id]["name"] == "Sales EMEA"

    assert api("DELETE", f"/groups/{group_id}").status_code == 204
    assert group_id not in box.groups
    assert api("DELETE", f"/groups/{box.all_users_group['id']}").status_code == 403
    assert outside_or_invalid(box) == []


def test_group_fields_and_limits(box, api):
    too_long = api("POST", "/groups", json={"name": "G", "provenance": "p" * 256})
    assert too_long.status_code == 400
    box.seed_group("Full", provenance="ldap", external_sync_identifier="x")
    standard = api("GET", "/groups").json()["entries"]
    assert {g["group_type"] for g in standard} == {"all_users_group", "managed_group"}
    assert all("external_sync_identifier" not in g for g in standard)
    asked = api("GET", "/groups", params={"fields": "external_sync_identifier,provenance"}).json()["entries"]
    assert [g.get("external_sync_identifier") for g in asked] == [None, "x"]


def test_groups_offset_paging_and_limits(box, api):
    for n in range(4):
        box.seed_group(f"Team {n}")
    page = api("GET", "/groups", params={"limit": 2, "offset": 4}).json()
    assert page["total_count"] == 5 and [g["name"] for g in page["entries"]] == ["Team 3"]
    assert api("GET", "/groups", params={"offset": 10001}).status_code == 400
    assert api("GET", "/groups", params={"limit": 1001}).status_code == 400


def test_memberships_add_list_remove_and_a_second_add_is_409(box, api):
    users = [box.seed_user(f"m{n}@example.com")["id"] for n in range(3)]
    group = box.seed_group("Team")["id"]
    created = [api("POST", "/group_memberships", json={"user": {"id": u}, "group": {"id": group}}) for u in users]
    assert [c.status_code for c in created] == [201, 201, 201]
    assert created[0].json()["user"]["id"] == users[0] and created[0].json()["role"] == "member"
    again = api("POST", "/group_memberships", json={"user": {"id": users[0]}, "group": {"id": group}})
    assert again.status_code == 409
    page = api("GET", f"/groups/{group}/memberships", params={"limit": 2, "offset": 2}).json()
    assert page["total_count"] == 3 and [m["user"]["id"] for m in page["entries"]] == users[2:]

    membership_id = created[1].json()["id"]
    assert api("DELETE", f"/group_memberships/{membership_id}").status_code == 204
    assert api("DELETE", f"/group_memberships/{membership_id}").status_code == 404
    assert box.members_of(group) == {users[0], users[2]}
    assert api("GET", f"/users/{users[0]}/memberships").json()["entries"][0]["group"]["id"] == group
    assert outside_or_invalid(box) == []


def test_a_membership_needs_user_and_group(box, api):
    answer = api("POST", "/group_memberships", json={"user": {"id": "1"}})
    assert answer.status_code == 400
    assert any("group" in str(issue) for issue in box.validation_errors)


# -- the log and the state -------------------------------------------------------------------------
def test_reads_and_token_requests_leave_the_state_unchanged(box, api):
    user = box.seed_user("reader@example.com")
    box.seed_group("Readers", members=[user["id"]])
    before = box.snapshot()
    api("GET", "/users", params={"user_type": "managed", "usemarker": "true"})
    api("GET", "/groups")
    ccg(box)
    jwt_grant(box, box.app.assertion())
    box.assert_unchanged(before)
    assert box.writes() == []  # token requests are not writes


def test_an_unknown_path_is_404_and_recorded_outside_the_description(box, api):
    answer = api("GET", "/users/me/avatar")
    assert answer.status_code == 404
    assert [issue.kind for issue in box.validation_errors] == ["outside"]
