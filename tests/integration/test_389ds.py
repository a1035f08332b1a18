# -*- coding: utf-8 -*-
"""The 389 dialect on a real 389 Directory Server (Debian ``389-ds-base``).

The directory (``support.ds389.populate``): four people (``locked`` has ``nsAccountLock: true``),
25 bulk users, ``groupOfUniqueNames`` groups (one ``uniqueMember`` value carries the optional
unique id, ``#'0101'B``), and a reader account whose own size limit (``nsSizeLimit: 20``) is
below the number of users: an unpaged search cannot read them all, a paged one can.
The reader tests run on both backends; one sync goes into SCIM through ansible-playbook.
"""

from __future__ import annotations

import json

import ldap3
import pytest
from bench.playrun import SYNC_PLAY
from support import ds389 as layout
from support.ldap_backends import BACKENDS, usable_backend
from support.playbook import run_playbook

from ansible_collections.idsync.provisioning.plugins.module_utils._ldap import LdapOptions, read_directory
from ansible_collections.idsync.provisioning.plugins.module_utils._model import ProvisioningError

SCIM_SYNC_PLAY = SYNC_PLAY.format(module="idsync.provisioning.scim_sync")
ALL_PEOPLE = len(layout.PEOPLE_LAYOUT) + layout.BULK_SIZE


@pytest.fixture(params=BACKENDS)
def backend(request):
    return usable_backend(request.param)


@pytest.fixture
def scim_server(scim_server_factory):
    """scim2-server given time to start on a busy machine (20 s, the default, was seen too short at load 17)."""
    return scim_server_factory(startup_timeout=300.0)


def options(ds, backend, **overrides):
    values = {
        "server_uri": [ds.uri],
        "bind_dn": ds.reader_dn,
        "bind_pw": ds.reader_pw,
        "backend": backend,
        "dialect": "389",
        "user_base_dn": ds.dns["people"],
        "group_base_dn": ds.dns["groups"],
        "page_size": 10,
    }
    values.update(overrides)
    return LdapOptions.from_getter(values.get)


def read(ds, backend, **overrides):
    return read_directory(options(ds, backend, **overrides))


def by_uid(directory):
    return {u.attributes["uid"][0]: u for u in directory.users}


def raw_search(ds, search_filter, attributes, paged_size=None, as_reader=True):
    """The server's own answer, with ldap3 directly: ``(result description, {dn: raw attributes})``."""
    connection = ldap3.Connection(
        ldap3.Server("127.0.0.1", port=ds.port, get_info=ldap3.NONE),
        user=ds.reader_dn if as_reader else ds.bind_dn,
        password=ds.reader_pw if as_reader else ds.bind_pw,
        auto_bind=True,
        check_names=False,
    )
    try:
        connection.search(ds.dns["people"], search_filter, attributes=attributes, paged_size=paged_size)
        entries = {e["dn"]: e["raw_attributes"] for e in connection.response if e["type"] == "searchResEntry"}
        return connection.result["description"], entries
    finally:
        connection.unbind()


def test_nsUniqueId_is_the_stable_id(ds389, backend):
    directory = read(ds389, backend)
    _code, entries = raw_search(ds389, "(objectClass=inetOrgPerson)", ["nsUniqueId"], paged_size=100, as_reader=False)
    assert len(directory.users) == len(entries) == ALL_PEOPLE
    for user in directory.users:
        assert user.id == entries[user.dn]["nsUniqueId"][0].decode()
    # 389's own format: four groups of eight hex digits, not the entryUUID of the same entry
    assert all(len(u.id) == 35 and u.id.count("-") == 3 for u in directory.users)
    groups = {g.name: g for g in read(ds389, backend).groups}
    group_ids = {
        dn: attrs["nsUniqueId"][0].decode()
        for dn, attrs in ds389.search(ds389.dns["groups"], attributes=["nsUniqueId"])[0]
    }
    assert {g.dn: g.id for g in groups.values()} == {dn: i for dn, i in group_ids.items() if dn != ds389.dns["groups"]}


def test_nsAccountLock_is_the_disabled_rule(ds389, backend):
    users = by_uid(read(ds389, backend))
    assert sorted(uid for uid, u in users.items() if u.disabled) == ["locked"]
    _code, locked = raw_search(ds389, "(nsAccountLock=true)", ["uid"])
    assert [attrs["uid"][0].decode() for attrs in locked.values()] == ["locked"]  # the server agrees


def test_uniqueMember_groups(ds389, backend):
    directory = read(ds389, backend)
    uids = {u.id: u.attributes["uid"][0] for u in directory.users}
    members = {g.name: sorted(uids[m] for m in g.members) for g in directory.groups}
    # jsmith's value is "uid=jsmith,...#'0101'B": the optional unique id does not hide her
    assert members == {"Accounting": ["jsmith", "locked", "mlopez"], "Engineering": ["mlopez", "tnguyen"]}
    assert sorted(by_uid(directory)["mlopez"].groups) == ["Accounting", "Engineering"]


def test_paged_search_reads_more_entries_than_the_size_limit(ds389, backend):
    code, unpaged = raw_search(ds389, "(objectClass=inetOrgPerson)", ["1.1"])
    assert code == "sizeLimitExceeded" and len(unpaged) == layout.READER_SIZE_LIMIT  # what an unpaged read gets
    directory = read(ds389, backend, page_size=7)
    assert len(directory.users) == len({u.id for u in directory.users}) == ALL_PEOPLE


def test_a_page_larger_than_the_size_limit_fails_the_read(ds389, backend):
    """The server cuts the page at the account's size limit: the read fails, it never takes a cut
    result for the whole directory."""
    with pytest.raises(ProvisioningError, match="sizeLimitExceeded"):
        read(ds389, backend, page_size=500)


def test_both_backends_give_identical_records(ds389):
    records = {}
    for name in BACKENDS:
        directory = read(ds389, usable_backend(name))
        records[name] = (
            sorted((u.as_dict() for u in directory.users), key=lambda r: r["id"]),
            sorted([g.id, g.dn, g.name, sorted(g.members)] for g in directory.groups),
        )
    assert records["ldap3"] == records["python-ldap"]


def test_sync_into_scim(ds389, scim_server, tmp_path):
    args = {
        "url": scim_server.url,
        "source": {
            "server_uri": [ds389.uri],
            "dialect": "389",
            "user_base_dn": ds389.dns["people"],
            "user_filter": "(&(objectClass=inetOrgPerson)(!(uid=bulk*)))",
            "group_base_dn": ds389.dns["groups"],
            "page_size": 10,
        },
    }
    env = {"SCIM_TOKEN": scim_server.token, "LDAP_BIND_DN": ds389.reader_dn, "LDAP_BIND_PW": ds389.reader_pw}
    outputs = []
    for run in range(2):
        result = run_playbook(tmp_path / f"run{run}", SCIM_SYNC_PLAY, extra_vars={"sync_args": args}, env=env)
        assert result.rc == 0, result.text
        assert not result.output.get("failed"), json.dumps(result.output, indent=1)[:3000]
        outputs.append(result.output)
    first, second = outputs
    assert first["report"]["counts"]["create_user"] == 3
    assert first["report"]["counts"]["create_group"] == 2
    assert second["changed"] is False, second["report"]["actions"]
    users = {u["userName"]: u for u in scim_server.all("Users")}
    assert sorted(users) == ["jsmith", "mlopez", "tnguyen"]  # locked (nsAccountLock) is not provisioned
    ids = {dn: attrs["nsUniqueId"][0].decode() for dn, attrs in ds389.search(attributes=["nsUniqueId"])[0]}
    assert users["jsmith"]["externalId"] == "idsync:" + ids[ds389.dns["jsmith"]]
    assert users["mlopez"]["name"] == {"givenName": "María", "familyName": "López"}
    names = {u["id"]: name for name, u in users.items()}
    groups = {
        g["displayName"]: sorted(names[m["value"]] for m in g.get("members", [])) for g in scim_server.all("Groups")
    }
    assert groups == {"Accounting": ["jsmith", "mlopez"], "Engineering": ["mlopez", "tnguyen"]}
