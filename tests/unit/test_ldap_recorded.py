# -*- coding: utf-8 -*-
"""The reader on both backends against answers given the way Active Directory gives them.

slapd has no ranged retrieval and Samba ranges only when asked; Windows AD answers a plain read of
a group with more than 1500 (MaxValRange) members with ``member;range=0-1499`` and no ``member``,
and a subtree search from the domain root with continuation references to its other partitions.
``support.ldap_replay`` sends exactly those answers in BER, so libldap (python-ldap) and ldap3
each parse them with their own code; the records must be complete and the same from both.
"""

from __future__ import annotations

import uuid

import pytest
from support.ldap_backends import BACKENDS, usable_backend
from support.ldap_replay import ReplayDirectory

from ansible_collections.idsync.provisioning.plugins.module_utils import _ldap
from ansible_collections.idsync.provisioning.plugins.module_utils._model import ProvisioningError

DOMAIN = "DC=corp,DC=example"
STAFF = f"OU=Staff,{DOMAIN}"
GROUPS = f"OU=Groups,{DOMAIN}"
BIG = f"CN=Everyone Big,{GROUPS}"
ADMINS = f"CN=Admins,{GROUPS}"
OPS = f"CN=Ops,{GROUPS}"
# AD's MaxValRange (an LDAP admin limit of the domain) is 1500 by default; a domain with 100 behaves
# the same with ten times fewer entries to serve here.
MAX_VALUES = 100
USERS = 310  # more than three times MaxValRange: four ranges
# What AD returns besides the entries of a subtree search from the domain root.
REFERENCES = [
    f"ldap://ForestDnsZones.corp.example/DC=ForestDnsZones,{DOMAIN}",
    f"ldap://DomainDnsZones.corp.example/DC=DomainDnsZones,{DOMAIN}",
    f"ldap://corp.example/CN=Configuration,{DOMAIN}",
]
# attributeTypes as AD publishes them (AD quotes the syntax OIDs)
SCHEMA = [
    "( 1.2.840.113556.1.4.2 NAME 'objectGUID' SYNTAX '1.3.6.1.4.1.1466.115.121.1.40' SINGLE-VALUE "
    "NO-USER-MODIFICATION )",
    "( 1.2.840.113556.1.4.146 NAME 'objectSid' SYNTAX '1.3.6.1.4.1.1466.115.121.1.40' SINGLE-VALUE "
    "NO-USER-MODIFICATION )",
    "( 1.2.840.113556.1.4.221 NAME 'sAMAccountName' SYNTAX '1.3.6.1.4.1.1466.115.121.1.15' SINGLE-VALUE )",
    "( 1.2.840.113556.1.4.8 NAME 'userAccountControl' SYNTAX '1.3.6.1.4.1.1466.115.121.1.27' SINGLE-VALUE )",
    "( 0.9.2342.19200300.100.1.3 NAME 'mail' SYNTAX '1.3.6.1.4.1.1466.115.121.1.15' SINGLE-VALUE )",
    "( 2.5.4.3 NAME 'cn' SYNTAX '1.3.6.1.4.1.1466.115.121.1.15' SINGLE-VALUE )",
    "( 2.5.4.31 NAME 'member' SYNTAX '1.3.6.1.4.1.1466.115.121.1.12' )",
    "( 1.2.840.113556.1.2.102 NAME 'memberOf' SYNTAX '1.3.6.1.4.1.1466.115.121.1.12' NO-USER-MODIFICATION )",
    "( 2.5.4.0 NAME 'objectClass' SYNTAX '1.3.6.1.4.1.1466.115.121.1.38' NO-USER-MODIFICATION )",
    "( 1.2.840.113556.1.4.750 NAME 'groupType' SYNTAX '1.3.6.1.4.1.1466.115.121.1.27' SINGLE-VALUE )",
]


def guid(name: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_DNS, name)


def user_dn(n: int) -> str:
    return f"CN=User {n:04d},{STAFF}"


def build_entries() -> dict:
    admins, ops = [user_dn(n) for n in (1, 2, 3)], [user_dn(n) for n in (4, 5)]
    entries = {
        DOMAIN: {"objectClass": ["top", "domain", "domainDNS"], "objectGUID": [guid(DOMAIN).bytes_le]},
        STAFF: {"objectClass": ["top", "organizationalUnit"], "objectGUID": [guid(STAFF).bytes_le]},
        GROUPS: {"objectClass": ["top", "organizationalUnit"], "objectGUID": [guid(GROUPS).bytes_le]},
    }
    for n in range(USERS):
        dn = user_dn(n)
        member_of = [BIG] + ([ADMINS] if dn in admins else []) + ([OPS] if dn in ops else [])
        entries[dn] = {
            "objectClass": ["top", "person", "organizationalPerson", "user"],
            "cn": [f"User {n:04d}"],
            "sAMAccountName": [f"u{n:04d}"],
            "mail": [f"u{n:04d}@corp.example"],
            "userAccountControl": ["514" if n % 100 == 7 else "512"],
            "objectGUID": [guid(dn).bytes_le],
            "objectSid": [b"\x01\x05\x00\x00\x00\x00\x00\x05\x15\x00\x00\x00" + n.to_bytes(4, "little")],
            "memberOf": member_of,
        }
    entries[f"CN=WS01,{STAFF}"] = {
        "objectClass": ["top", "person", "organizationalPerson", "user", "computer"],
        "cn": ["WS01"],
        "sAMAccountName": ["WS01$"],
        "objectGUID": [guid("ws01").bytes_le],
        "userAccountControl": ["4096"],
    }
    for dn, members, member_of in (
        (BIG, [user_dn(n) for n in range(USERS)], []),
        (ADMINS, admins + [OPS], []),
        (OPS, ops, [ADMINS]),
    ):
        entries[dn] = {
            "objectClass": ["top", "group"],
            "cn": [dn.split(",", maxsplit=1)[0][3:]],
            "sAMAccountName": [dn.split(",", maxsplit=1)[0][3:]],
            "groupType": ["-2147483646"],
            "objectGUID": [guid(dn).bytes_le],
            "member": members,
            "memberOf": member_of,
        }
    return entries


ENTRIES = build_entries()


@pytest.fixture(scope="module")
def ad():
    with ReplayDirectory(ENTRIES, schema=SCHEMA, references={DOMAIN: REFERENCES}, max_values=MAX_VALUES) as server:
        yield server


def read(server, backend, **values):
    base = {
        "server_uri": [server.uri],
        "bind_dn": "svc@corp.example",
        "bind_pw": "secret",
        "dialect": "ad",
        "backend": usable_backend(backend),
        "user_base_dn": DOMAIN,
        "group_base_dn": GROUPS,
    }
    base.update(values)
    start = len(server.requests)
    directory = _ldap.read_directory(_ldap.LdapOptions.from_getter(base.get))
    return directory, server.requests[start:]


def by_name(groups):
    return {g.name: g for g in groups}


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_unasked_range_is_followed_to_the_end(ad, backend):
    directory, requests = read(ad, backend)
    big = by_name(directory.groups)["Everyone Big"]
    assert len(big.members) == USERS
    assert set(big.members) == {str(guid(user_dn(n))) for n in range(USERS)}
    ranged = [r.attributes for r in requests if r.base == BIG]
    assert ranged == [["member;range=100-*"], ["member;range=200-*"], ["member;range=300-*"]]


@pytest.mark.parametrize("backend", BACKENDS)
def test_range_size_asks_for_ranges_from_the_start(ad, backend):
    directory, requests = read(ad, backend, range_size=80)
    assert len(by_name(directory.groups)["Everyone Big"].members) == USERS
    group_search = next(r for r in requests if r.base == GROUPS)
    assert "member;range=0-79" in group_search.attributes
    ranged = [r.attributes for r in requests if r.base == BIG]
    assert ranged == [["member;range=80-159"], ["member;range=160-239"], ["member;range=240-319"]]


@pytest.mark.parametrize("backend", BACKENDS)
def test_continuation_references_are_counted_not_followed_nor_taken_for_users(ad, backend):
    directory, requests = read(ad, backend, group_base_dn=None)
    assert len(directory.users) == USERS  # the computer is filtered out, the references are no users
    assert all(u.dn.endswith(STAFF) for u in directory.users)
    assert directory.references == REFERENCES
    assert {r.base for r in requests} <= {"", "CN=Aggregate,CN=Schema,CN=Configuration,DC=corp,DC=example", DOMAIN}


@pytest.mark.parametrize("backend", BACKENDS)
def test_ad_ids_disabled_rule_and_value_shapes(ad, backend):
    directory, _requests = read(ad, backend, group_base_dn=None, user_base_dn=STAFF)
    users = {u.attributes["sAMAccountName"]: u for u in directory.users}
    assert users["u0001"].id == str(guid(user_dn(1)))
    assert users["u0001"].attributes["objectGUID"] == str(guid(user_dn(1)))  # rendered like the id
    assert sorted(name for name, u in users.items() if u.disabled) == ["u0007", "u0107", "u0207", "u0307"]
    assert users["u0001"].attributes["userAccountControl"] == "512"  # single-valued: a scalar
    assert users["u0001"].attributes["memberOf"] == [BIG, ADMINS]  # multi-valued: a list
    assert users["u0001"].attributes["objectSid"] == "AQUAAAAAAAUVAAAAAQAAAA=="  # binary: base64
    assert directory.references == []  # none below OU=Staff


@pytest.mark.parametrize("backend", BACKENDS)
def test_in_chain_lets_the_server_resolve_nested_membership(ad, backend):
    directory, requests = read(
        ad, backend, user_base_dn=STAFF, user_groups=[ADMINS], nested_groups=True, nested_groups_method="in_chain"
    )
    assert sorted(u.attributes["sAMAccountName"] for u in directory.users) == [
        "u0001",
        "u0002",
        "u0003",
        "u0004",
        "u0005",
    ]
    groups = by_name(directory.groups)
    assert len(groups["Admins"].members) == 5 and len(groups["Ops"].members) == 2
    assert len(groups["Everyone Big"].members) == 5  # members in the (narrowed) user scope
    in_chain = [r.filter for r in requests if "1.2.840.113556.1.4.1941" in r.filter]
    assert f"(memberOf:1.2.840.113556.1.4.1941:={ADMINS})" in in_chain[0]
    assert in_chain[0].startswith("(&(&(objectClass=user)(!(objectClass=computer)))")
    # membership came from the server: no group was read for its member values
    assert not any(r.base == BIG for r in requests)
    assert all("member" not in r.attributes for r in requests if r.base == GROUPS)


def test_both_backends_give_identical_records(ad):
    records = {}
    for backend in BACKENDS:
        directory, _requests = read(ad, backend, nested_groups=True, page_size=70)
        records[backend] = (
            [u.as_dict() for u in directory.users],
            [g.as_dict() for g in directory.groups],
            directory.references,
        )
    assert records["python-ldap"] == records["ldap3"]
    users, groups, _references = records["ldap3"]
    assert len(users) == USERS and len(groups) == 3


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_server_that_stops_answering_is_named_with_the_timeout(backend):
    with ReplayDirectory(ENTRIES, schema=SCHEMA, stall=True) as server, pytest.raises(ProvisioningError) as caught:
        read(server, backend, receive_timeout=1, group_base_dn=None)
    # the bind is answered, the first search (the root DSE, for the schema) is not: the read stops there
    assert caught.value.message == (
        f"no answer from {server.uri} within 1 s to the read of the root DSE: the server is overloaded or the "
        "search too wide; raise receive_timeout or narrow the search"
    )
