# -*- coding: utf-8 -*-
"""A member value naming no entry is left out of the group and named in the directory's warnings.

Both backends read the same answers from ``support.ldap_replay`` (which says noSuchObject for a base
read of a DN it does not hold); the finding belongs to the reader, so both must report the same.
"""

from __future__ import annotations

import uuid

import pytest
from support.ldap_backends import BACKENDS, usable_backend
from support.ldap_replay import ReplayDirectory

from ansible_collections.idsync.provisioning.plugins.module_utils import _ldap

DOMAIN = "DC=corp,DC=example"
STAFF = f"OU=Staff,{DOMAIN}"
OTHER = f"OU=Other,{DOMAIN}"
GROUPS = f"OU=Groups,{DOMAIN}"
PLAIN = f"CN=Plain,{GROUPS}"
ELSEWHERE = f"CN=Elsewhere,{OTHER}"
GHOST = f"CN=Ghost,{STAFF}"
GHOST_NESTED = f"CN=Ghost Two,{OTHER}"
GHOST_ESCAPED = f"CN=Ghost\\, Three,{STAFF}"  # a DN escape: shown as written
OUTSIDER = f"CN=Outsider,{OTHER}"  # exists, but outside the user scope: left out without a warning
SCHEMA = [
    "( 1.2.840.113556.1.4.2 NAME 'objectGUID' SYNTAX '1.3.6.1.4.1.1466.115.121.1.40' SINGLE-VALUE )",
    "( 1.2.840.113556.1.4.221 NAME 'sAMAccountName' SYNTAX '1.3.6.1.4.1.1466.115.121.1.15' SINGLE-VALUE )",
    "( 1.2.840.113556.1.4.8 NAME 'userAccountControl' SYNTAX '1.3.6.1.4.1.1466.115.121.1.27' SINGLE-VALUE )",
    "( 2.5.4.3 NAME 'cn' SYNTAX '1.3.6.1.4.1.1466.115.121.1.15' SINGLE-VALUE )",
    "( 2.5.4.31 NAME 'member' SYNTAX '1.3.6.1.4.1.1466.115.121.1.12' )",
    "( 2.5.4.0 NAME 'objectClass' SYNTAX '1.3.6.1.4.1.1466.115.121.1.38' )",
]


def guid(name: str) -> bytes:
    return uuid.uuid5(uuid.NAMESPACE_DNS, name).bytes_le


def user(dn: str) -> dict:
    name = dn.split(",")[0][3:]
    return {
        "objectClass": ["top", "person", "organizationalPerson", "user"],
        "cn": [name],
        "sAMAccountName": [name.replace(" ", "")],
        "userAccountControl": ["512"],
        "objectGUID": [guid(dn)],
    }


def group(dn: str, members: list[str]) -> dict:
    return {"objectClass": ["top", "group"], "cn": [dn.split(",")[0][3:]], "objectGUID": [guid(dn)], "member": members}


ALICE = f"CN=Alice,{STAFF}"
BOB = f"CN=Bob,{STAFF}"
ENTRIES = {
    DOMAIN: {"objectClass": ["top", "domain"], "objectGUID": [guid(DOMAIN)]},
    STAFF: {"objectClass": ["top", "organizationalUnit"], "objectGUID": [guid(STAFF)]},
    OTHER: {"objectClass": ["top", "organizationalUnit"], "objectGUID": [guid(OTHER)]},
    GROUPS: {"objectClass": ["top", "organizationalUnit"], "objectGUID": [guid(GROUPS)]},
    ALICE: user(ALICE),
    BOB: user(BOB),
    OUTSIDER: user(OUTSIDER),
    PLAIN: group(PLAIN, [ALICE, GHOST, OUTSIDER, ELSEWHERE, GHOST_ESCAPED]),
    ELSEWHERE: group(ELSEWHERE, [BOB, GHOST_NESTED]),
}


@pytest.fixture(scope="module")
def server():
    with ReplayDirectory(ENTRIES, schema=SCHEMA) as replay:
        yield replay


def read(server, backend, **values) -> _ldap.Directory:
    base = {
        "server_uri": [server.uri],
        "bind_dn": "svc@corp.example",
        "bind_pw": "secret",
        "dialect": "ad",
        "backend": usable_backend(backend),
        "user_base_dn": STAFF,
        "group_base_dn": GROUPS,
        "nested_groups": True,
    }
    base.update(values)
    return _ldap.read_directory(_ldap.LdapOptions.from_getter(base.get))


@pytest.mark.parametrize("backend", BACKENDS)
def test_missing_members_are_left_out_and_named(server, backend):
    directory = read(server, backend)
    (plain,) = directory.groups
    assert sorted(plain.members) == sorted(str(uuid.UUID(bytes_le=guid(dn))) for dn in (ALICE, BOB))
    # the group in scope by its name, the nested one outside the group scope by its DN; the
    # existing entry outside the user scope is no warning
    assert directory.missing_members == [("Plain", GHOST), ("Plain", GHOST_ESCAPED), (ELSEWHERE, GHOST_NESTED)]
    assert directory.warnings() == [
        "group 'Plain': member 'CN=Ghost,OU=Staff,DC=corp,DC=example' does not exist in the directory (left out)",
        "group 'Plain': member 'CN=Ghost\\, Three,OU=Staff,DC=corp,DC=example' does not exist in the directory"
        " (left out)",
        "group 'CN=Elsewhere,OU=Other,DC=corp,DC=example': member 'CN=Ghost Two,OU=Other,DC=corp,DC=example'"
        " does not exist in the directory (left out)",
    ]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_full_directory_has_no_warnings(server, backend):
    directory = read(server, backend, group_base_dn=None)
    assert {u.dn for u in directory.users} == {ALICE, BOB}
    assert directory.missing_members == []
    assert directory.warnings() == []
