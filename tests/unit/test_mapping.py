# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the attribute mapping: compile once, apply per record, errors per record."""

from __future__ import annotations

import pytest

from ansible_collections.idsync.provisioning.plugins.module_utils._mapping import (
    compile_group_mapping,
    compile_mapping,
    map_group,
    map_groups,
    map_user,
    map_users,
    merge_mapping,
)
from ansible_collections.idsync.provisioning.plugins.module_utils._model import ProvisioningError, SourceUser

SCIM_LIKE = {
    "userName": "attributes.uid",
    "name.givenName": "attributes.givenName",
    "emails": "[{value: attributes.mail, type: 'work', primary: `true`}]",
    "active": "!disabled",
}


def record(uid="alice", **attributes):
    return {
        "id": f"guid-{uid}",
        "dn": f"uid={uid},ou=people,dc=example,dc=org",
        "disabled": False,
        "attributes": {"uid": uid, "givenName": "Alice", "mail": f"{uid}@example.org", **attributes},
        "groups": ["Sales"],
    }


def test_mapping_applies_every_expression_to_its_target_path():
    mapping = compile_mapping(SCIM_LIKE, "userName")

    user = map_user(mapping, record())

    assert user.source_id == "guid-alice"
    assert user.key == "alice"
    assert user.disabled is False
    assert user.attrs == {
        "userName": "alice",
        "name.givenName": "Alice",
        "emails": [{"value": "alice@example.org", "type": "work", "primary": True}],
        "active": True,
    }


def test_mapping_accepts_a_source_user_record():
    mapping = compile_mapping({"userName": "attributes.uid"}, "userName")
    source = SourceUser(id="g1", dn="uid=bob,dc=example", disabled=True, attributes={"uid": "bob"})

    user = map_user(mapping, source)

    assert (user.source_id, user.key, user.disabled) == ("g1", "bob", True)


def test_compile_error_names_the_target_path_and_the_expression():
    with pytest.raises(ProvisioningError) as raised:
        compile_mapping({"userName": "attributes.uid", "title": "attributes.[title"}, "userName")

    assert "'title'" in raised.value.message
    assert "'attributes.[title'" in raised.value.message


def test_key_path_without_expression_is_a_compile_error():
    with pytest.raises(ProvisioningError, match="key path 'userName'"):
        compile_mapping({"login": "attributes.mail"}, "userName")


def test_empty_expression_is_a_compile_error():
    with pytest.raises(ProvisioningError, match="'title'"):
        compile_mapping({"userName": "attributes.uid", "title": " "}, "userName")


def test_missing_key_is_an_error_of_that_record_only():
    mapping = compile_mapping(SCIM_LIKE, "userName")
    broken = record("carol")
    del broken["attributes"]["uid"]

    users, errors = map_users(mapping, [record("alice"), broken, record("bob")])

    assert [user.key for user in users] == ["alice", "bob"]
    assert len(errors) == 1
    assert errors[0].source_id == "guid-carol"
    assert errors[0].name == "uid=carol,ou=people,dc=example,dc=org"
    assert "uid=carol,ou=people,dc=example,dc=org" in errors[0].message and "'userName'" in errors[0].message


@pytest.mark.parametrize("value", ["", "   ", None, ["alice", "al"], True])
def test_empty_or_multi_valued_key_is_rejected(value):
    mapping = compile_mapping({"userName": "attributes.uid"}, "userName")

    with pytest.raises(ProvisioningError, match="'userName'"):
        map_user(mapping, record(uid=value))


def test_numeric_key_becomes_a_string():
    mapping = compile_mapping({"userName": "attributes.employeeNumber"}, "userName")

    assert map_user(mapping, record(employeeNumber=1042)).key == "1042"


def test_record_without_stable_id_is_rejected():
    mapping = compile_mapping({"userName": "attributes.uid"}, "userName")
    anonymous = record()
    anonymous["id"] = ""

    with pytest.raises(ProvisioningError, match="no stable id"):
        map_user(mapping, anonymous)


def test_expression_failing_at_runtime_names_the_record_and_path():
    mapping = compile_mapping({"userName": "attributes.uid", "title": "length(attributes.givenName)"}, "userName")
    odd = record()
    odd["attributes"]["givenName"] = 5  # length() of a number is a JMESPath type error

    with pytest.raises(ProvisioningError) as raised:
        map_user(mapping, odd)

    assert "uid=alice" in raised.value.message and "'title'" in raised.value.message


def test_merge_mapping_overrides_adds_and_removes_paths():
    defaults = {"userName": "attributes.uid", "title": "attributes.title", "phone": "attributes.phone"}

    merged = merge_mapping(defaults, {"userName": "attributes.mail", "phone": None, "costCenter": "attributes.cc"})

    assert merged == {"userName": "attributes.mail", "title": "attributes.title", "costCenter": "attributes.cc"}
    assert defaults["userName"] == "attributes.uid", "the defaults are not modified"


def test_group_name_defaults_to_the_directory_name():
    mapping = compile_group_mapping()

    desired = map_group(mapping, {"id": "g1", "dn": "cn=Sales,dc=example", "name": "Sales", "members": ["u1", "u2"]})

    assert (desired.source_id, desired.name, desired.members) == ("g1", "Sales", {"u1", "u2"})


def test_group_name_mapping_can_be_overridden_and_empty_names_are_record_errors():
    mapping = compile_group_mapping({"name": "join('-', ['ad', name])"})

    groups, errors = map_groups(mapping, [{"id": "g1", "dn": "cn=Sales", "name": "Sales"}, {"id": "g2", "dn": "cn=x"}])

    assert [group.name for group in groups] == ["ad-Sales"]
    assert [(error.object_type, error.name) for error in errors] == [("group", "cn=x")]
