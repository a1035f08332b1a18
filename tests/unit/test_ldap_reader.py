# -*- coding: utf-8 -*-
"""Parts of the directory reader that slapd cannot exercise (AD ranged retrieval) and option handling."""

import pytest

from ansible_collections.idsync.provisioning.plugins.module_utils._ldap import LdapOptions, LdapReader
from ansible_collections.idsync.provisioning.plugins.module_utils._model import ProvisioningError


def options(**values):
    base = {"server_uri": ["ldap://127.0.0.1:1"], "user_base_dn": "dc=example,dc=org", "dialect": "ad"}
    base.update(values)
    return LdapOptions.from_getter(base.get)


class RangedBackend:
    """Answers base reads the way AD answers ``member;range=N-*``: 2 values a time."""

    def __init__(self, members):
        self.members = members
        self.requests = []

    def read(self, dn, attributes, filterstr="(objectClass=*)"):
        (wanted,) = attributes
        self.requests.append(wanted)
        start = int(wanted.split("=")[1].split("-")[0])
        chunk = self.members[start : start + 2]
        end = start + len(chunk) - 1
        key = f"member;range={start}-{'*' if end >= len(self.members) - 1 else end}"
        return dn, {key: [m.encode() for m in chunk]} if chunk else {}


def ranged_reader(members, **values):
    reader = LdapReader(options(**values))
    reader.backend = RangedBackend(members)
    return reader


def test_ad_ranged_member_retrieval_reads_to_the_end():
    members = [f"cn=u{i},dc=example,dc=org" for i in range(7)]
    reader = ranged_reader(members)
    first_page = {"member;range=0-1": [m.encode() for m in members[:2]]}
    assert reader._member_dns("cn=big,dc=example,dc=org", first_page) == members
    assert reader.backend.requests == ["member;range=2-*", "member;range=4-*", "member;range=6-*"]


def test_range_size_asks_for_bounded_ranges():
    members = [f"cn=u{i},dc=example,dc=org" for i in range(7)]
    reader = ranged_reader(members, range_size=2)
    assert reader._member_request[0] == "member;range=0-1"
    first_page = {"member;range=0-1": [m.encode() for m in members[:2]]}
    assert reader._member_dns("cn=big,dc=example,dc=org", first_page) == members
    assert reader.backend.requests == ["member;range=2-3", "member;range=4-5", "member;range=6-7"]


def test_ad_ranged_retrieval_that_stops_early_is_an_error():
    reader = ranged_reader([])
    with pytest.raises(ProvisioningError, match="ended ranged retrieval of member early"):
        reader._member_dns("cn=big,dc=x", {"member;range=0-1": [b"cn=a", b"cn=b"]})


def test_dialect_defaults_and_overrides():
    ad = options()
    assert ad.id_attribute == "objectGUID"
    assert ad.disabled_filter == "(userAccountControl:1.2.840.113556.1.4.803:=2)"
    ds389 = options(dialect="389", id_attribute="ipaUniqueID")
    assert ds389.id_attribute == "ipaUniqueID"
    assert ds389.disabled_filter == "(nsAccountLock=true)"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"server_uri": None}, "'server_uri' is required (or set LDAP_SERVER_URI)"),
        ({"user_base_dn": ""}, "'user_base_dn' is required"),
        ({"dialect": "novell"}, "'dialect' must be one of 389, ad, openldap"),
        ({"page_size": 0}, "'page_size' must be at least 1"),
        ({"range_size": 0}, "'range_size' must be at least 1"),
        ({"backend": "openldap"}, "'backend' must be one of auto, ldap3, python-ldap"),
        ({"dialect": "openldap", "range_size": 1000}, "'range_size' is for Active Directory (dialect: ad)"),
        (
            {"dialect": "389", "nested_groups_method": "in_chain"},
            "'nested_groups_method: in_chain' needs Active Directory (dialect: ad)",
        ),
    ],
)
def test_option_errors_name_the_option(values, message):
    with pytest.raises(ProvisioningError, match=message.replace("(", r"\(").replace(")", r"\)")):
        options(**values)


def test_comma_separated_server_uri_from_the_environment():
    assert options(server_uri="ldap://a, ldap://b").server_uri == ["ldap://a", "ldap://b"]
