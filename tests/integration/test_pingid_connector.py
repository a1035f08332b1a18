# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The PingID connector against the stateful fake PingID (tests/support/pingid_fake.py).

The fake verifies every request's signature, token, org and timestamp and validates the bodies;
a test fails on any validation issue and on any EditUser that nulled a field it left out.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from support.pingid_fake import serving

from ansible_collections.idsync.provisioning.plugins.module_utils import pingid
from ansible_collections.idsync.provisioning.plugins.module_utils._model import ProvisioningError, TargetUser


@pytest.fixture
def fake():
    with serving() as service:
        yield service


def params(**options: Any) -> dict[str, Any]:
    """Module params as Ansible passes them (every option present, None when not given)."""
    values = {name: spec.get("default") for name, spec in pingid.connection_argument_spec().items()}
    values.update(timeout=10, **options)
    return values


@pytest.fixture
def connector(fake, tmp_path):
    path = fake.write_properties(tmp_path / "pingid.properties")
    return pingid.connector_from_params(params(properties_file=str(path)), sleep=lambda _s: None)


# -- the properties file -----------------------------------------------------------------------
def test_properties_file_unescapes_java_escapes():
    text = (
        "# a comment\n"
        "! another\n"
        "use_base64_key=abc\\=\\=\n"
        "idp_url=https\\://idp.example/pingid\n"
        "org_alias : caf\\u00e9-org\n"
        "token long\\\n"
        "    er\n"
        "empty=\n"
    )
    values = pingid.parse_properties(text)
    assert values == {
        "use_base64_key": "abc==",
        "idp_url": "https://idp.example/pingid",
        "org_alias": "café-org",
        "token": "longer",
        "empty": "",
    }


def test_the_fakes_properties_file_is_read_with_its_escapes(fake, tmp_path):
    path = fake.write_properties(tmp_path / "pingid.properties")
    assert "\\=" in path.read_text() or "\\:" in path.read_text()
    values = pingid.read_properties_file(str(path))
    assert values["use_base64_key"] == fake.org.use_base64_key
    assert values["idp_url"] == fake.org.idp_url
    assert values["org_alias"] == fake.org.org_alias


def test_the_values_as_options_work_without_a_file(fake):
    org = fake.org
    connector = pingid.connector_from_params(
        params(org_alias=org.org_alias, token=org.token, base64_key=org.use_base64_key, idp_url=org.idp_url)
    )
    fake.seed_user("jdoe", "J", "Doe", "j@example.com")
    assert connector.find_user("jdoe").key == "jdoe"


def test_errors_name_the_option(fake, tmp_path):
    with pytest.raises(ProvisioningError, match=r"^properties_file: cannot read"):
        pingid.connector_from_params(params(properties_file=str(tmp_path / "missing")))
    with pytest.raises(ProvisioningError, match=r"^org_alias: required"):
        pingid.connector_from_params(params(token="t", base64_key=fake.org.use_base64_key, idp_url="https://x"))
    with pytest.raises(ProvisioningError, match=r"^base64_key: the key is not valid base64"):
        pingid.connector_from_params(params(org_alias="o", token="t", base64_key="%%%", idp_url="https://x"))
    short = base64.b64encode(b"short").decode()
    with pytest.raises(ProvisioningError, match=r"^base64_key: the key is 5 bytes"):
        pingid.connector_from_params(params(org_alias="o", token="t", base64_key=short, idp_url="https://x"))


# -- reads -------------------------------------------------------------------------------------
def test_find_user_reads_user_details_and_10564_is_absent(fake, connector):
    fake.seed_user("jdoe", "Jane", "Doe", "jane@example.com")
    user = connector.find_user("JDOE")
    assert (user.id, user.key, user.enabled) == ("jdoe", "jdoe", True)
    assert connector.read_path(user.resource, "fname") == "Jane"
    assert connector.read_path({"fName": "Jo"}, "fname") == "Jo"
    assert connector.find_user("nobody") is None
    assert connector.get_user("nobody") is None


def test_suspended_is_disabled_and_never_activated_is_enabled(fake, connector):
    fake.seed_user("gone", status="SUSPENDED")
    fake.seed_user("new", status="NOT_ACTIVE")
    assert connector.find_user("gone").enabled is False
    assert connector.find_user("new").enabled is True


# -- create ------------------------------------------------------------------------------------
def test_create_user_sends_add_user_with_the_documented_names(fake, connector):
    user = connector.create_user(
        {"userName": "jdoe", "fname": "Jane", "lname": "Doe", "email": "j@x.example"}, None, True
    )
    assert (user.key, user.enabled) == ("jdoe", True)
    [body] = fake.bodies("AddUser")
    assert body == {
        "username": "jdoe",
        "fname": "Jane",
        "lname": "Doe",
        "email": "j@x.example",
        "role": "REGULAR",
        "activateUser": True,
    }
    assert fake.user("jdoe")["status"] == "PENDING_ACTIVATION"


def test_create_disabled_adds_the_user_not_activated(fake, connector):
    connector.create_user({"userName": "later"}, None, False)
    [body] = fake.bodies("AddUser")
    assert body["activateUser"] is False
    assert fake.user("later")["status"] == "NOT_ACTIVE"


def test_create_of_an_existing_user_links_it_on_10556(fake, connector):
    fake.seed_user("jdoe", "Jane", "Doe", "old@example.com", role="ADMIN")
    user = connector.create_user({"userName": "jdoe", "fname": "Jane", "email": "new@example.com"}, None, True)
    assert user.key == "jdoe"
    assert fake.op_count("AddUser") == 1
    record = fake.user("jdoe")
    # linked and brought to the mapped values, nothing else touched
    assert (record["email"], record["lname"], record["role"]) == ("new@example.com", "Doe", "ADMIN")
    assert len(fake.usernames()) == 1


def test_create_with_a_lost_answer_looks_up_first(fake, connector):
    fake.faults.drop_after_write("POST", fake.path("AddUser"))
    user = connector.create_user({"userName": "jdoe", "fname": "Jane"}, None, True)
    assert user.key == "jdoe"
    assert fake.op_count("AddUser") == 1
    assert fake.usernames() == ["jdoe"]


# -- update ------------------------------------------------------------------------------------
def test_edit_user_sends_every_field_merged(fake, connector):
    fake.seed_user("jdoe", "Jane", "Doe", "jane@example.com", role="ADMIN")
    user = connector.find_user("jdoe")
    connector.update_user(user, {"lname": "Smith"})
    [edit] = fake.edits
    assert edit == {"userName": "jdoe", "fname": "Jane", "lname": "Smith", "email": "jane@example.com", "role": "ADMIN"}
    fake.assert_nothing_omitted()
    assert fake.user("jdoe")["lname"] == "Smith"


def test_edit_user_reads_the_current_record_not_a_stale_one(fake, connector):
    fake.seed_user("jdoe", "Jane", "Doe", "jane@example.com")
    stale = TargetUser(id="jdoe", key="jdoe", resource={"userName": "jdoe"})
    fake.change_user_directly("jdoe", email="changed@example.com")
    connector.update_user(stale, {"fname": "Janet"})
    assert fake.user("jdoe")["email"] == "changed@example.com"
    assert fake.user("jdoe")["lname"] == "Doe"
    fake.assert_nothing_omitted()


def test_edit_user_clears_a_field_on_purpose(fake, connector):
    fake.seed_user("jdoe", "Jane", "Doe", "jane@example.com")
    connector.update_user(connector.find_user("jdoe"), {"email": None})
    assert fake.user("jdoe")["email"] is None
    assert [c["how"] for c in fake.cleared] == ["sent null"]


def test_a_renamed_user_is_refused_with_what_to_do(fake, connector):
    fake.seed_user("jdoe", "Jane")
    with pytest.raises(ProvisioningError) as info:
        connector.update_user(connector.find_user("jdoe"), {"userName": "jsmith"})
    assert "cannot rename" in info.value.message
    assert "delete jdoe" in info.value.message and "map the old key" in info.value.message
    assert fake.write_operations() == []


# -- enable / disable / delete -------------------------------------------------------------------
def test_suspend_and_activate(fake, connector):
    fake.seed_user("jdoe", "Jane")
    user = connector.find_user("jdoe")
    connector.set_user_enabled(user, False)
    assert fake.user("jdoe")["status"] == "SUSPENDED"
    assert connector.find_user("jdoe").enabled is False
    connector.set_user_enabled(connector.find_user("jdoe"), True)
    assert fake.user("jdoe")["status"] == "ACTIVE"


def test_suspending_a_never_activated_user_succeeds_on_10561(fake, connector):
    fake.seed_user("new", status="NOT_ACTIVE")
    connector.set_user_enabled(connector.find_user("new"), False)
    assert fake.op_count("SuspendUser") == 1
    assert fake.user("new")["status"] == "NOT_ACTIVE"


def test_activating_an_active_user_is_a_no_op_on_10562(fake, connector):
    fake.seed_user("jdoe", "Jane")
    user = connector.find_user("jdoe")
    connector.set_user_enabled(user, True)
    assert user.enabled is True
    assert fake.op_count("ActivateUser") == 1


def test_delete_and_10564_is_already_gone(fake, connector):
    fake.seed_user("jdoe", "Jane")
    user = connector.find_user("jdoe")
    connector.delete_user(user)
    assert fake.user("jdoe") is None
    connector.delete_user(user)  # 10564: gone already
    assert fake.op_count("DeleteUser") == 2


# -- listing -----------------------------------------------------------------------------------
def test_list_users_reads_the_org_report(fake, connector):
    fake.seed_user("a", "Ann", "A", "a@example.com")
    fake.seed_user("b", "Bob", status="SUSPENDED")
    users = {u.key: u for u in connector.list_users()}
    assert set(users) == {"a", "b"}
    assert users["b"].enabled is False
    assert connector.read_path(users["a"].resource, "email") == "a@example.com"
    assert connector.read_path(users["a"].resource, "fname") == "Ann"
    assert fake.op_count("GetOrgReport") == 1
    assert fake.op_count("GetUserDetails") == 0


def test_a_failed_report_job_is_an_error(fake, connector):
    fake.fail_next_report_job()
    with pytest.raises(ProvisioningError, match="USER_REPORTS job failed"):
        list(connector.list_users())


def test_a_report_job_that_never_finishes_is_bounded(fake, connector):
    fake.report_polls = 1000
    connector.job_max_polls = 3
    with pytest.raises(ProvisioningError, match="did not finish after 3 polls"):
        list(connector.list_users())


# -- errors and signatures -----------------------------------------------------------------------
def test_errors_name_the_operation_and_the_error_msg(fake, connector):
    fake.seed_user("jdoe", "Jane")
    fake.fail_next("EditUser", 10558)
    with pytest.raises(pingid.PingIDError) as info:
        connector.update_user(connector.find_user("jdoe"), {"fname": "X"})
    assert "EditUser" in info.value.message and "cannot update user" in info.value.message
    assert info.value.details["errorId"] == 10558
    assert info.value.error_id == 10558


def test_a_tampered_reply_is_refused(fake, connector):
    fake.seed_user("jdoe", "Jane")
    for how in ("signature", "payload", "key"):
        fake.tamper_replies(how, times=1)
        with pytest.raises(ProvisioningError, match="signature did not verify"):
            connector.find_user("jdoe")
    assert connector.find_user("jdoe").key == "jdoe"


def test_another_orgs_key_is_refused_and_no_secret_is_in_the_message(fake, tmp_path):
    org = fake.org
    other_key = base64.b64encode(b"k" * 32).decode()
    connector = pingid.connector_from_params(
        params(org_alias=org.org_alias, token=org.token, base64_key=other_key, idp_url=org.idp_url)
    )
    with pytest.raises(ProvisioningError) as info:
        connector.find_user("jdoe")
    text = f"{info.value.message} {info.value.details}"
    assert "GetUserDetails" in text
    for secret in (org.token, other_key, org.use_base64_key):
        assert secret not in text


def test_no_secret_in_error_messages(fake, connector):
    org = fake.org
    fake.fail_next("GetUserDetails", 10551, message=f"failed transaction, token {org.token}")
    with pytest.raises(ProvisioningError) as info:
        connector.find_user("jdoe")
    text = f"{info.value.message} {info.value.details}"
    assert "failed transaction" in text
    assert org.token not in text and org.use_base64_key not in text


def test_the_request_is_a_signed_jws_with_the_documented_header(fake, connector):
    fake.seed_user("jdoe")
    connector.find_user("jdoe")
    [call] = [c for c in fake.requests if c.name == "GetUserDetails"]
    assert call.body["header"]["alg"] == "HS256"
    assert call.body["header"]["org_alias"] == fake.org.org_alias
    assert call.body["reqHeader"]["version"] == "4.9"
    assert call.body["reqHeader"]["locale"] == "en"
    assert call.body["reqBody"]["userName"] == "jdoe"


def test_an_error_id_in_a_200_answer_is_an_error(fake, connector):
    fake.fail_next("DeleteUser", 10553, status=200)
    fake.seed_user("jdoe")
    with pytest.raises(pingid.PingIDError) as info:
        connector.delete_user(connector.find_user("jdoe"))
    assert info.value.error_id == 10553
    assert "DeleteUser" in info.value.message and "user deletion failed" in info.value.message


def test_an_unknown_org_is_answered_unsigned_and_reported(fake):
    org = fake.org
    connector = pingid.connector_from_params(
        params(org_alias="not-an-org", token=org.token, base64_key=org.use_base64_key, idp_url=org.idp_url)
    )
    with pytest.raises(pingid.PingIDError) as info:
        connector.find_user("jdoe")
    assert info.value.error_id == 400
    assert "unknown organization" in info.value.message


def test_an_unsigned_success_is_refused(fake, connector):
    class Reply:
        status_code = 200
        headers = {"Content-Type": "application/json"}
        content = b'{"responseBody": {"errorId": 200, "errorMsg": "ok"}}'

    with pytest.raises(ProvisioningError, match="not signed"):
        connector.client.signer.decode_reply(Reply())
