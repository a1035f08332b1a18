# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The stateful fake PingID (tests/support/pingid_fake.py): signed requests verified, signed
replies, the documented error ids, EditUser's full replace, the report job (pingid-api.md)."""

from __future__ import annotations

import base64
import csv
import io
import json
import time

import jwt
import pytest
import requests
from support.pingid_fake import (
    ERROR_MESSAGES,
    REFUSALS,
    STATUSES,
    PingIDFake,
    PingIDOrg,
    decode_reply,
    format_timestamp,
    java_properties_escape,
    parse_java_properties,
    parse_timestamp,
    sign_request,
)


@pytest.fixture(scope="module")
def started():
    with PingIDFake() as fake:
        yield fake


@pytest.fixture
def pid(started):
    started.reset()
    started.max_skew = 300.0
    started.versions = {"4.9"}
    yield started


@pytest.fixture
def client(pid):
    client = pid.client()
    yield client
    client.close()


def ok(reply):
    assert reply.status == 200, (reply.status, reply.body)
    assert reply.signed
    assert (reply.body["errorId"], reply.body["errorMsg"]) == (200, "ok")
    assert reply.body["uniqueMsgId"]
    return reply.body


def refused(reply, error_id, status=400):
    assert reply.status == status, (reply.status, reply.body)
    assert reply.body["errorId"] == error_id, reply.body
    return reply.body


def add(client, name, *, activate=True, **fields):
    return client.call("AddUser", {"username": name, "role": "REGULAR", "activateUser": activate, **fields})


# -- pingid.properties ------------------------------------------------------------------------------
def test_properties_file_is_written_with_java_escapes_and_reads_back(pid, tmp_path):
    path = pid.write_properties(tmp_path / "pingid.properties")
    text = path.read_text(encoding="latin-1")

    assert (path.stat().st_mode & 0o777) == 0o600
    assert f"use_base64_key={pid.org.use_base64_key[:-1]}\\=\n" in text  # 32 bytes: one '=' of padding
    assert f"idp_url=http\\://127.0.0.1\\:{pid.port}/pingid\n" in text
    assert "admin_url=https\\://" in text
    assert text.startswith("#")  # Java's comment lines
    values = parse_java_properties(text)
    assert values == pid.org.properties()
    assert base64.b64decode(values["use_base64_key"]) == pid.org.key
    assert len(pid.org.key) == 32
    assert values["idp_url"] == pid.idp_url == f"{pid.url}/pingid"


def test_java_escapes_and_the_reader_agree():
    assert java_properties_escape("a=b:c#d!e\\f") == "a\\=b\\:c\\#d\\!e\\\\f"
    assert java_properties_escape(" lead and inner") == "\\ lead and inner"
    assert java_properties_escape("é\t€") == "\\u00E9\\t\\u20AC"
    assert java_properties_escape("a key", key=True) == "a\\ key"
    text = (
        "# comment\n! other\nplain = x\\=y\nurl:https\\://h\\:1/p\nlong = one\\\n    two\nuni=\\u00E9\nspaced value\n"
    )
    assert parse_java_properties(text) == {
        "plain": "x=y",
        "url": "https://h:1/p",
        "long": "onetwo",
        "uni": "é",
        "spaced": "value",
    }


def test_timestamps_are_utc_with_milliseconds():
    assert format_timestamp(0.5) == "1970-01-01 00:00:00.500"
    assert parse_timestamp("1970-01-01 00:00:01.250") == 1.25
    with pytest.raises(ValueError):
        parse_timestamp("1970-01-01T00:00:01Z")


# -- request verification ---------------------------------------------------------------------------
def test_a_signed_request_is_verified_and_the_reply_is_signed_with_the_org_key(pid, client):
    reply = add(client, "jsmith", fname="Jo", clientData="run-1")

    body = ok(reply)
    assert body["clientData"] == "run-1"
    header = jwt.get_unverified_header(reply.raw.decode())
    assert header == {"alg": "HS256", "org_alias": pid.org.org_alias, "token": pid.org.token}
    payload = jwt.api_jws.decode_complete(reply.raw.decode(), pid.org.key, algorithms=["HS256"])["payload"]
    assert set(json.loads(payload)) == {"responseBody"}
    assert pid.user("jsmith")["fname"] == "Jo"
    pid.assert_valid()


def test_the_request_log_masks_the_token(pid, client):
    add(client, "masked")
    [entry] = pid.requests
    assert entry.name == "AddUser"
    assert entry.body["header"]["token"] == "***"
    assert entry.body["reqHeader"]["secretKey"] == "***"
    assert pid.org.token not in json.dumps(entry.body)
    assert entry.body["reqBody"]["username"] == "masked"


def test_a_bad_signature_is_refused_with_a_signed_error(pid, client):
    reply = client.call("AddUser", {"username": "x", "role": "REGULAR", "activateUser": False}, key=b"k" * 32)

    body = refused(reply, REFUSALS["signature"][1])
    assert body["errorMsg"] == REFUSALS["signature"][2]
    assert reply.signed  # the org is known: the refusal is signed with its key
    assert pid.usernames() == []


def test_an_unknown_org_is_refused_unsigned(pid):
    stranger = PingIDOrg(idp_url=pid.idp_url)  # never registered
    client = pid.client(stranger)
    reply = client.call("GetUserDetails", {"userName": "x"})

    body = refused(reply, REFUSALS["org"][1])
    assert body["errorMsg"] == REFUSALS["org"][2]
    assert not reply.signed and reply.content_type.startswith("application/json")
    client.close()


def test_a_second_registered_org_is_verified_with_its_own_key(pid):
    other = pid.add_org()
    client = pid.client(other)
    assert client.call("GetUserDetails", {"userName": "nobody"}).error_id == 10564
    client.close()


@pytest.mark.parametrize(
    "signing, reason",
    [
        ({"header": {"token": "0" * 32}}, "token"),
        ({"req_header": {"secretKey": "0" * 32}}, "token"),
        ({"req_header": {"orgAlias": "another-org"}}, "org_mismatch"),
        ({"version": "4.6"}, "version"),
        pytest.param(
            {"algorithm": "HS512"},
            "algorithm",
            marks=pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning"),
        ),
    ],
)
def test_wrong_token_org_alias_version_or_algorithm_is_refused(pid, client, signing, reason):
    reply = client.call("GetUserDetails", {"userName": "x"}, **signing)
    assert refused(reply, REFUSALS[reason][1])["errorMsg"] == REFUSALS[reason][2]


def test_a_stale_timestamp_is_refused_within_the_skew_accepted(pid, client):
    pid.seed_user("clock")
    assert ok(client.call("GetUserDetails", {"userName": "clock"}, timestamp=time.time() - 240))
    assert ok(client.call("GetUserDetails", {"userName": "clock"}, timestamp=time.time() + 240))
    stale = client.call("GetUserDetails", {"userName": "clock"}, timestamp=time.time() - 400)
    assert refused(stale, 400)["errorMsg"] == REFUSALS["timestamp"][2]

    pid.max_skew = 10
    reply = client.call("GetUserDetails", {"userName": "clock"}, timestamp=time.time() - 30)
    assert reply.body["errorMsg"] == REFUSALS["timestamp"][2]


def test_a_malformed_timestamp_or_missing_header_field_is_invalid_input(pid, client):
    reply = client.call("GetUserDetails", {"userName": "x"}, timestamp="2024-01-01T00:00:00Z")
    assert refused(reply, 400)["errorMsg"] == REFUSALS["timestamp"][2]
    reply = client.call("GetUserDetails", {"userName": "x"}, req_header={"locale": None})
    assert "reqHeader.locale" in refused(reply, 400)["errorMsg"]


def test_a_version_the_fake_is_told_to_accept_passes(pid, client):
    pid.versions.add("4.9.17")
    assert client.call("GetUserDetails", {"userName": "x"}, version="4.9.17").error_id == 10564


def test_a_body_that_is_not_a_jws_is_refused(pid, client):
    response = client.post("GetUserDetails", json.dumps({"reqBody": {"userName": "x"}}))
    reply = client.reply(response)
    assert refused(reply, REFUSALS["not_jws"][1])["errorMsg"] == REFUSALS["not_jws"][2]
    assert not reply.signed


def test_an_unknown_operation_is_404(pid, client):
    response = client.session.post(f"{pid.idp_url}/rest/4/listusers/do", data=sign_request(pid.org, {}), timeout=10)
    assert response.status_code == 404


# -- request bodies ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "body, problem",
    [
        ({"username": "a", "activateUser": True}, "reqBody.role: required"),
        ({"username": "a", "role": "OWNER", "activateUser": True}, "reqBody.role: 'OWNER' is not one of"),
        ({"username": "a", "role": "REGULAR", "activateUser": "yes"}, "reqBody.activateUser: not a boolean"),
        ({"username": "a" * 251, "role": "REGULAR", "activateUser": True}, "1 to 250 characters"),
        ({"username": "a", "role": "REGULAR", "activateUser": True, "title": "x"}, "reqBody.title: unknown field"),
        ({"username": "a", "role": "REGULAR", "activateUser": True, "deviceType": "WATCH"}, "reqBody.deviceType"),
    ],
)
def test_add_user_bodies_are_validated(pid, client, body, problem):
    reply = client.call("AddUser", body)
    assert problem in refused(reply, 400)["errorMsg"]
    assert pid.usernames() == []
    assert any(problem in str(issue) for issue in pid.validation_errors)


def test_add_user_accepts_the_other_documented_spellings(pid, client):
    ok(
        client.call(
            "AddUser", {"userName": "alt", "fName": "Al", "lName": "Ter", "role": "ADMIN", "activateUser": False}
        )
    )
    assert {k: pid.user("alt")[k] for k in ("userName", "fname", "lname", "role")} == {
        "userName": "alt",
        "fname": "Al",
        "lname": "Ter",
        "role": "ADMIN",
    }
    pid.assert_valid()


# -- the operations ------------------------------------------------------------------------------------
def test_add_user_answers_10556_for_an_existing_user_case_insensitively(pid, client):
    body = ok(add(client, "JSmith", email="j@example.com"))
    assert body["userDetails"]["status"] == "PENDING_ACTIVATION"
    assert body["activationCode"]

    reply = add(client, "jsmith")
    assert refused(reply, 10556)["errorMsg"] == ERROR_MESSAGES[10556]
    assert pid.usernames() == ["JSmith"]


def test_add_user_without_activation_is_not_active_and_not_enabled(pid, client):
    body = ok(add(client, "later", activate=False))
    assert "activationCode" not in body
    assert (body["userDetails"]["status"], body["userDetails"]["userEnabled"]) == ("NOT_ACTIVE", False)


def test_get_user_details_answers_the_record_or_10564(pid, client):
    pid.seed_user("Reader", "Rea", "Der", "r@example.com", role="ADMIN")

    body = ok(client.call("GetUserDetails", {"userName": "READER", "getSameDeviceUsers": False}))
    details = body["userDetails"]
    assert {k: details[k] for k in ("userName", "fname", "lname", "email", "role", "status", "userEnabled")} == {
        "userName": "Reader",
        "fname": "Rea",
        "lname": "Der",
        "email": "r@example.com",
        "role": "ADMIN",
        "status": "ACTIVE",
        "userEnabled": True,
    }
    assert details["deviceDetails"] == details["devicesDetails"][0]
    assert isinstance(details["lastLogin"], int)
    assert body["sameDeviceUsersDetails"] == []
    assert refused(client.call("GetUserDetails", {"userName": "nobody"}), 10564)["errorMsg"] == ERROR_MESSAGES[10564]


def test_edit_user_replaces_the_whole_record_and_records_what_it_nulled(pid, client):
    pid.seed_user("edited", "Jo", "Smith", "jo@example.com", role="ADMIN")

    ok(client.call("EditUser", {"userName": "edited", "fname": "Joanna"}))

    details = pid.user("edited")
    assert (details["fname"], details["lname"], details["email"], details["role"]) == ("Joanna", None, None, None)
    assert details["status"] == "ACTIVE"  # the status is not part of the record EditUser replaces
    assert pid.cleared == [
        {"userName": "edited", "field": "lname", "was": "Smith", "how": "omitted"},
        {"userName": "edited", "field": "email", "was": "jo@example.com", "how": "omitted"},
        {"userName": "edited", "field": "role", "was": "ADMIN", "how": "omitted"},
    ]
    with pytest.raises(AssertionError, match="nulled fields it did not send"):
        pid.assert_nothing_omitted()


def test_edit_user_with_every_field_changes_only_what_differs(pid, client):
    pid.seed_user("full", "Jo", "Smith", "jo@example.com")
    ok(
        client.call(
            "EditUser",
            {"userName": "full", "fname": "Jo", "lname": "Smythe", "email": "jo@example.com", "role": "REGULAR"},
        )
    )
    assert pid.user("full")["lname"] == "Smythe"
    pid.assert_nothing_omitted()
    assert pid.cleared == []

    ok(
        client.call(
            "EditUser", {"userName": "full", "fname": "Jo", "lname": "Smythe", "email": None, "role": "REGULAR"}
        )
    )
    assert pid.cleared == [{"userName": "full", "field": "email", "was": "jo@example.com", "how": "sent null"}]
    pid.assert_nothing_omitted()  # a field cleared on purpose is not an omission
    assert pid.edits[-1]["email"] is None


def test_edit_user_of_an_unknown_user_is_10564_and_activate_user_flag_activates(pid, client):
    assert client.call("EditUser", {"userName": "ghost", "fname": "x"}).error_id == 10564
    pid.seed_user("dormant", "Do", "Rmant", status="NOT_ACTIVE")
    body = ok(
        client.call(
            "EditUser",
            {"userName": "dormant", "fname": "Do", "lname": "Rmant", "role": "REGULAR", "activateUser": True},
        )
    )
    assert body["activationCode"]
    assert pid.user("dormant")["status"] == "PENDING_ACTIVATION"


@pytest.mark.parametrize("status", ["ACTIVE", "PENDING_CHANGE_DEVICE"])
def test_suspend_user_suspends_an_active_user(pid, client, status):
    pid.seed_user("leaver", status=status)
    ok(client.call("SuspendUser", {"userName": "leaver"}))
    assert (pid.user("leaver")["status"], pid.user("leaver")["userEnabled"]) == ("SUSPENDED", False)


@pytest.mark.parametrize("status", ["NOT_ACTIVE", "PENDING", "PENDING_ACTIVATION", "SUSPENDED"])
def test_suspend_user_answers_10561_for_a_user_not_active(pid, client, status):
    pid.seed_user("inactive", status=status)
    reply = client.call("SuspendUser", {"userName": "inactive"})
    assert refused(reply, 10561)["errorMsg"] == "the user is not active and cannot be suspended"
    assert pid.user("inactive")["status"] == status


def test_activate_user_answers_10562_for_an_active_user_and_resumes_a_suspended_one(pid, client):
    pid.seed_user("active")
    assert refused(client.call("ActivateUser", {"userName": "active"}), 10562)["errorMsg"] == (
        "Active user can not be activated again"
    )
    ok(client.call("SuspendUser", {"userName": "active"}))
    body = ok(client.call("ActivateUser", {"userName": "active"}))
    assert "activationCode" not in body
    assert (pid.user("active")["status"], pid.user("active")["userEnabled"]) == ("ACTIVE", True)

    pid.seed_user("pending", status="NOT_ACTIVE")
    body = ok(client.call("ActivateUser", {"userName": "pending"}))
    assert body["activationCode"]
    assert pid.user("pending")["status"] == "PENDING_ACTIVATION"
    pid.pair_device("pending")
    assert pid.user("pending")["status"] == "ACTIVE"
    assert client.call("ActivateUser", {"userName": "ghost"}).error_id == 10564


def test_delete_user_removes_it_and_a_second_delete_is_10564(pid, client):
    pid.seed_user("doomed")
    pid.seed_user("kept")
    ok(client.call("DeleteUser", {"userName": "DOOMED"}))
    assert pid.usernames() == ["kept"]
    assert client.call("DeleteUser", {"userName": "doomed"}).error_id == 10564
    assert client.call("SuspendUser", {"userName": "doomed"}).error_id == 10564


# -- the org report --------------------------------------------------------------------------------------
def run_report(client, polls):
    token = ok(client.call("CreateJob", {"jobType": "USER_REPORTS"}))["jobToken"]
    statuses = [ok(client.call("GetJobStatus", {"jobToken": token}))["status"] for _poll in range(polls)]
    return token, statuses


def test_the_report_job_is_in_progress_then_done_and_the_report_has_every_user(pid, client):
    users = pid.seed_users_in_every_status("r")
    pid.seed_user("Plain", "Pl", "Ain", "plain@example.com")

    _token, statuses = run_report(client, 3)
    assert statuses == ["in_progress", "in_progress", "done"]
    pid.delete_user_directly("Plain")  # after the job finished: still in this report

    response = client.post("GetOrgReport", sign_request(pid.org, {"fileType": "JSON"}))
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/octet-stream"
    rows = json.loads(response.content)
    assert sorted(row["username"] for row in rows) == sorted([*(u.userName for u in users.values()), "Plain"])
    plain = next(row for row in rows if row["username"] == "Plain")
    assert {k: plain[k] for k in ("fname", "lname", "orgEmail", "role", "status")} == {
        "fname": "Pl",
        "lname": "Ain",
        "orgEmail": "plain@example.com",
        "role": "REGULAR",
        "status": "ACTIVE",
    }
    assert parse_timestamp(plain["userCreationTime"]) > 0
    assert plain["devices"] and plain["devices"][0]["deviceRole"] == "PRIMARY"
    assert {row["status"] for row in rows} == set(STATUSES)

    _token, statuses = run_report(client, 3)  # a new job sees the deletion
    rows = json.loads(client.post("GetOrgReport", sign_request(pid.org, {"fileType": "JSON"})).content)
    assert "Plain" not in {row["username"] for row in rows}


def test_the_report_as_csv(pid, client):
    pid.seed_user("csvuser", "C", "Sv", "c@example.com")
    pid.report_polls = 0
    assert run_report(client, 1)[1] == ["done"]
    response = client.post("GetOrgReport", sign_request(pid.org, {"fileType": "CSV"}))
    [row] = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert (row["username"], row["orgEmail"], row["status"]) == ("csvuser", "c@example.com", "ACTIVE")


def test_report_errors_failure_and_cache(pid, client):
    assert client.call("GetOrgReport", {"fileType": "JSON"}).error_id == 400  # no finished job yet
    assert client.call("GetJobStatus", {"jobToken": "job-unknown"}).error_id == 400
    assert "reqBody.jobType" in client.call("CreateJob", {"jobType": "DEVICES"}).body["errorMsg"]

    pid.report_polls = 1
    pid.fail_next_report_job()
    assert run_report(client, 2)[1] == ["in_progress", "failure"]

    pid.seed_user("cached")
    pid.report_cache_seconds = 7200
    assert run_report(client, 2)[1] == ["in_progress", "done"]
    pid.seed_user("newer")
    assert run_report(client, 1)[1] == ["done"]  # served from the cache at once, without "newer"
    rows = json.loads(client.post("GetOrgReport", sign_request(pid.org, {"fileType": "JSON"})).content)
    assert [row["username"] for row in rows] == ["cached"]


# -- tampered replies ------------------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["signature", "payload", "key"])
def test_tampered_replies_fail_verification(pid, client, how):
    pid.seed_user("target")
    tamper = pid.tamper_replies(how, times=1)

    reply = client.post("GetUserDetails", sign_request(pid.org, {"userName": "target"}))
    with pytest.raises(jwt.InvalidSignatureError):
        decode_reply(pid.org, reply.text)
    unverified = decode_reply(pid.org, reply.text, verify=False)["responseBody"]
    assert unverified["userDetails"]["userName"] == "target"
    assert tamper.hits == 1 and pid.tampered == 1

    ok(client.call("GetUserDetails", {"userName": "target"}))  # times=1: the next reply is sound


def test_tampering_every_reply_of_one_operation_until_untampered(pid, client):
    pid.seed_user("target")
    pid.tamper_replies(operation="SuspendUser")
    ok(client.call("GetUserDetails", {"userName": "target"}))
    for _attempt in range(2):
        with pytest.raises(jwt.InvalidSignatureError):
            client.call("SuspendUser", {"userName": "target"})
    pid.untamper()
    assert client.call("SuspendUser", {"userName": "target"}).error_id == 10561  # already suspended


# -- log, snapshot, seeding, faults ------------------------------------------------------------------
def test_the_log_counts_reads_and_writes_and_reads_leave_the_snapshot_alone(pid, client):
    pid.seed_user("one", "O", "Ne")
    before = pid.snapshot()
    ok(client.call("GetUserDetails", {"userName": "one"}))
    run_report(client, 3)
    pid.assert_unchanged(before)
    assert pid.user_reads() == 1
    assert pid.write_operations() == [] and pid.writes() == []

    ok(client.call("EditUser", {"userName": "one", "fname": "O", "lname": "Neh", "role": "REGULAR"}))
    with pytest.raises(AssertionError, match="state changed"):
        pid.assert_unchanged(before)
    assert pid.operations() == [
        "GetUserDetails",
        "CreateJob",
        "GetJobStatus",
        "GetJobStatus",
        "GetJobStatus",
        "EditUser",
    ]
    assert pid.write_operations() == ["EditUser"] and len(pid.writes()) == 1
    assert pid.op_counts()["GetJobStatus"] == 3
    assert pid.bodies("EditUser") == [{"userName": "one", "fname": "O", "lname": "Neh", "role": "REGULAR"}]


def test_seeding_every_status_and_changes_behind_the_provisioners_back(pid):
    users = pid.seed_users_in_every_status("s")
    assert {status: user.status for status, user in users.items()} == {s: s for s in STATUSES}
    enabled = {status: pid.user(user.userName)["userEnabled"] for status, user in users.items()}
    assert enabled == {
        "ACTIVE": True,
        "PENDING": False,
        "NOT_ACTIVE": False,
        "PENDING_ACTIVATION": True,
        "SUSPENDED": False,
        "PENDING_CHANGE_DEVICE": True,
    }
    pid.change_user_directly("s_active", email="new@example.com", status="SUSPENDED")
    assert (pid.user("s_active")["email"], pid.user("s_active")["userEnabled"]) == ("new@example.com", False)
    pid.delete_user_directly("s_pending")
    assert pid.user("s_pending") is None
    with pytest.raises(KeyError):
        pid.delete_user_directly("s_pending")
    with pytest.raises(ValueError):
        pid.seed_user("S_ACTIVE")
    assert pid.writes() == []  # nothing went through the API


def test_a_scripted_error_id_is_answered_signed_without_applying(pid, client):
    pid.fail_next("AddUser", 10551)
    reply = add(client, "retry")
    assert refused(reply, 10551)["errorMsg"] == ERROR_MESSAGES[10551]
    assert reply.signed
    assert pid.usernames() == []
    ok(add(client, "retry"))


def test_a_lost_answer_after_add_user_was_applied(pid, client):
    fault = pid.faults.drop_after_write("POST", pid.path("AddUser"))
    with pytest.raises(requests.ConnectionError):
        add(client, "ambiguous")
    assert fault.hits == 1
    assert pid.usernames() == ["ambiguous"]
    assert add(client, "ambiguous").error_id == 10556


def test_rate_limit_answers_429_with_retry_after(pid, client):
    pid.seed_user("x")
    pid.rate_limit(1, per=60)
    ok(client.call("GetUserDetails", {"userName": "x"}))
    reply = client.post("GetUserDetails", sign_request(pid.org, {"userName": "x"}))
    assert reply.status_code == 429
    assert int(reply.headers["Retry-After"]) >= 1
    assert decode_reply(pid.org, reply.text)["responseBody"]["errorId"] == 429
    pid.rate_limit(None)
