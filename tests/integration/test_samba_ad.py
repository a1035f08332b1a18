# -*- coding: utf-8 -*-
"""The AD dialect on a real Active Directory: Samba's AD domain controller over verified LDAPS.

Every Samba test is in this file: the server's ports are fixed (389/636), so one runs at a time
(the ``samba_ad`` fixture holds a machine-wide lock) and ``--dist loadfile`` (or the
``xdist_group`` mark with ``--dist loadgroup``) keeps these tests on one worker. The domain
(``support.samba_ad.populate``): people in OU=Staff and OU=Remote under OU=People, one disabled
(userAccountControl 514); groups Auditors > Finance > Accounting (nested); a group of 25 members
in OU=Bulk.

The reader tests run on both backends (python-ldap and ldap3) and check the reader against what
the server itself says (its own searches with the AD matching rules, and ``ldbsearch`` on Samba's
database for the GUIDs); ``LdapsTap`` shows what the reader asked for on the wire.
"""

from __future__ import annotations

import json
import uuid

import pytest
from bench.playrun import SYNC_PLAY
from support import samba_ad as corp
from support.ldap_backends import BACKENDS, usable_backend
from support.playbook import run_playbook
from support.samba_ad import LDAPS_PORT, LdapsTap, guid_text
from support.slapd import generate_tls

from ansible_collections.idsync.provisioning.plugins.module_utils._ldap import LdapOptions, read_directory
from ansible_collections.idsync.provisioning.plugins.module_utils._model import ProvisioningError

pytestmark = pytest.mark.xdist_group("samba_ad")

IN_CHAIN = "1.2.840.113556.1.4.1941"
BIT_AND = "1.2.840.113556.1.4.803"
SCIM_SYNC_PLAY = SYNC_PLAY.format(module="idsync.provisioning.scim_sync")
USER_FILTER = "(&(objectClass=user)(!(objectClass=computer)))"


@pytest.fixture(params=BACKENDS)
def backend(request):
    return usable_backend(request.param)


@pytest.fixture
def scim_server(scim_server_factory):
    """scim2-server given time to start on a busy machine (20 s, the default, was seen too short at load 17)."""
    return scim_server_factory(startup_timeout=300.0)


@pytest.fixture
def tap(samba_ad):
    """An LDAPS relay in front of Samba that records the clients' requests in clear."""
    with LdapsTap(LDAPS_PORT, samba_ad.cert_file, samba_ad.key_file, samba_ad.ca_file) as relay:
        yield relay


def options(ad, backend, **overrides):
    values = {
        "backend": backend,
        "server_uri": [ad.ldaps_uri],
        "ca_path": ad.ca_file,
        "bind_dn": ad.bind_dn,
        "bind_pw": ad.bind_pw,
        "dialect": "ad",
        "user_base_dn": corp.PEOPLE,
        "group_base_dn": corp.GROUPS,
    }
    values.update(overrides)
    return LdapOptions.from_getter(values.get)


def read(ad, backend, **overrides):
    return read_directory(options(ad, backend, **overrides))


def sam(user):
    return user.attributes["sAMAccountName"]


def by_sam(directory):
    return {sam(u): u for u in directory.users}


def server_sams(ad, base, search_filter):
    """sAMAccountNames of what the server's own search finds (its matching rules evaluated by it)."""
    entries, _refs = ad.search(base, search_filter, ["sAMAccountName"])
    return sorted(attrs["sAMAccountName"][0].decode() for _dn, attrs in entries)


# -- identity ---------------------------------------------------------------------------------


def test_objectGUID_is_the_stable_id_as_Samba_writes_it(samba_ad, backend):
    directory = read(samba_ad, backend)
    guids = {dn.lower(): guid for dn, guid in samba_ad.guids(corp.CORP).items()}
    assert {sam(u) for u in directory.users} == set(corp.PEOPLE_LAYOUT)
    for record in [*directory.users, *directory.groups]:
        assert record.id == guids[record.dn.lower()], record.dn
    # the raw value over LDAP is the 16 bytes Samba keeps; the id is their Windows (mixed-endian) text
    entries, _refs = samba_ad.search(samba_ad.dns["jsmith"], attributes=["objectGUID"], scope="base")
    raw = entries[0][1]["objectGUID"][0]
    assert len(raw) == 16
    assert by_sam(directory)["jsmith"].id == guid_text(raw) != str(uuid.UUID(bytes=raw))
    assert directory.backend == backend


# -- disabled ---------------------------------------------------------------------------------


def test_disabled_is_userAccountControl_bit_2_as_the_server_evaluates_it(samba_ad, backend):
    rule = f"(userAccountControl:{BIT_AND}:=2)"
    directory = read(samba_ad, backend)
    disabled = sorted(sam(u) for u in directory.users if u.disabled)
    assert disabled == server_sams(samba_ad, corp.PEOPLE, f"(&{USER_FILTER}{rule})") == ["ddisabled"]
    assert by_sam(directory)["ddisabled"].attributes["userAccountControl"] in ("514", ["514"])
    # from the domain root: Samba's own disabled accounts (Guest 66082, krbtgt 514) too, Administrator not
    whole = read(samba_ad, backend, user_base_dn=samba_ad.base_dn, group_base_dn=None)
    disabled = sorted(sam(u) for u in whole.users if u.disabled)
    assert disabled == server_sams(samba_ad, samba_ad.base_dn, f"(&{USER_FILTER}{rule})")
    assert {"Guest", "krbtgt", "ddisabled"} <= set(disabled)
    assert not by_sam(whole)["Administrator"].disabled
    # other bits set beside bit 2 (66082 = 0x10222: DONT_EXPIRE_PASSWORD, NORMAL_ACCOUNT, PASSWD_NOTREQD,
    # ACCOUNTDISABLE) do not hide it: the rule is a bitwise AND, not an equality
    assert by_sam(whole)["Guest"].attributes["userAccountControl"] in ("66082", ["66082"])


# -- groups ------------------------------------------------------------------------------------

NESTED = {
    "Accounting": ["jsmith", "mlopez"],
    "Finance": ["jsmith", "mlopez", "tnguyen"],
    "Auditors": ["jsmith", "mlopez", "rkhan", "tnguyen"],
}
DIRECT = {"Accounting": ["jsmith", "mlopez"], "Finance": ["tnguyen"], "Auditors": ["rkhan"]}


def members_by_group(directory):
    names = {u.id: sam(u) for u in directory.users}
    return {g.name: sorted(names[m] for m in g.members) for g in directory.groups}


@pytest.mark.parametrize("method", ["client", "in_chain"])
def test_nested_groups_agree_with_the_servers_in_chain_rule(samba_ad, backend, method, tap):
    directory = read(samba_ad, backend, server_uri=[tap.uri], nested_groups=True, nested_groups_method=method)
    found = members_by_group(directory)
    assert found == NESTED
    for name, members in found.items():
        chain = f"(&{USER_FILTER}(memberOf:{IN_CHAIN}:={samba_ad.dns[name]}))"
        assert members == server_sams(samba_ad, corp.PEOPLE, chain), name
    # in_chain asks the server (LDAP_MATCHING_RULE_IN_CHAIN in the requests); client reads member values
    assert (IN_CHAIN.encode() in tap.sent()) is (method == "in_chain")
    assert set(by_sam(directory)["jsmith"].groups) == {"Accounting", "Finance", "Auditors"}


@pytest.mark.parametrize("method", ["client", "in_chain"])
def test_user_groups_scope_takes_nested_members(samba_ad, backend, method):
    """Users in scope by membership of Auditors, through Finance and Accounting: the disabled one and
    the bulk users are not members, so they are left out."""
    directory = read(
        samba_ad,
        backend,
        user_base_dn=corp.CORP,
        user_groups=[samba_ad.dns["Auditors"]],
        nested_groups=True,
        nested_groups_method=method,
    )
    assert sorted(by_sam(directory)) == NESTED["Auditors"]


def test_without_nested_groups_only_direct_members_count(samba_ad, backend):
    directory = read(samba_ad, backend)
    assert members_by_group(directory) == DIRECT


def test_memberOf_on_users_names_their_direct_groups(samba_ad, backend):
    users = by_sam(read(samba_ad, backend))
    dns = samba_ad.dns
    assert sorted(users["jsmith"].attributes["memberOf"]) == [dns["Accounting"]]
    assert sorted(users["tnguyen"].attributes["memberOf"]) == [dns["Finance"]]
    assert sorted(users["rkhan"].attributes["memberOf"]) == [dns["Auditors"]]
    assert "memberOf" not in users["ddisabled"].attributes


def test_ranged_reads_of_member_get_every_value(samba_ad, backend, tap):
    """range_size 10 on a group of 25: Samba answers member;range=0-9, 10-19, 20-* as asked."""
    plain = read(samba_ad, backend, user_base_dn=corp.BULK, group_base_dn=corp.BULK)
    tap.clear()
    ranged = read(
        samba_ad, backend, server_uri=[tap.uri], user_base_dn=corp.BULK, group_base_dn=corp.BULK, range_size=10
    )
    (group,) = ranged.groups
    assert group.name == "Bulk Team"
    assert len(group.members) == corp.BULK_SIZE == len({u.id for u in ranged.users})
    assert sorted(group.members) == sorted(u.id for u in ranged.users)
    assert [sorted(g.members) for g in plain.groups] == [sorted(group.members)]  # the same as one plain read
    sent = tap.sent()
    asked = sent.count(b"member;range=")
    assert asked >= 3, f"the reader asked for {asked} ranges of 10, a group of 25 needs 3"
    assert b"member;range=0-9" in sent and b"member;range=10-" in sent and b"member;range=20-" in sent


# -- references ---------------------------------------------------------------------------------


def test_continuation_references_are_neither_followed_nor_taken_for_users(samba_ad, backend):
    entries, references = samba_ad.search(samba_ad.base_dn, USER_FILTER, ["sAMAccountName"])
    assert references, "Samba should answer a subtree search from the domain root with continuation references"
    assert any("CN=Configuration" in ref for ref in references)
    # the references name ldaps://corp.example/..., a host that does not resolve here: following one
    # would have failed the read; taking one for an entry would add a user without a GUID
    directory = read(samba_ad, backend, user_base_dn=samba_ad.base_dn, group_base_dn=samba_ad.base_dn)
    # the references are reported as the server sent them, and no record came from them
    assert sorted(set(directory.references)) == sorted(set(references))
    assert sorted(u.dn.lower() for u in directory.users) == sorted(dn.lower() for dn, _attrs in entries)
    assert all(u.dn.lower().endswith(samba_ad.base_dn.lower()) and u.id for u in directory.users)
    assert {"Administrator", "jsmith", "bulk25"} <= {sam(u) for u in directory.users}
    assert "Accounting" in {g.name for g in directory.groups}


# -- identity over changes ----------------------------------------------------------------------


def test_a_renamed_and_moved_user_keeps_its_id(samba_ad, backend):
    old_sam, new_sam = f"tmove{backend[:2]}", f"tmoved{backend[:2]}"
    dn = samba_ad.add_user(corp.STAFF, old_sam, "Theo", "Move")
    try:
        before = {u.dn: u for u in read(samba_ad, backend).users}[dn]
        samba_ad.replace(dn, sAMAccountName=new_sam)
        dn = samba_ad.rename(dn, "CN=Theo Moved", corp.REMOTE)
        after = {u.dn: u for u in read(samba_ad, backend).users}[dn]
        assert after.id == before.id
        assert (sam(before), sam(after)) == (old_sam, new_sam)
        assert after.dn == f"CN=Theo Moved,{corp.REMOTE}"
    finally:
        samba_ad.delete(dn)


def test_both_backends_give_identical_records(samba_ad):
    wide = {"user_base_dn": samba_ad.base_dn, "group_base_dn": corp.CORP, "nested_groups": True}
    records = {}
    for name in BACKENDS:
        directory = read(samba_ad, usable_backend(name), **wide)
        records[name] = {
            "users": sorted((u.as_dict() for u in directory.users), key=lambda r: r["id"]),
            "groups": sorted([g.id, g.dn, g.name, sorted(g.members)] for g in directory.groups),
            "references": sorted(directory.references),
        }
    assert records["ldap3"] == records["python-ldap"]
    assert len(records["ldap3"]["users"]) > len(corp.PEOPLE_LAYOUT) + corp.BULK_SIZE


# -- LDAPS ------------------------------------------------------------------------------------------


def test_ldaps_is_verified_against_the_ca_given_and_an_untrusted_ca_is_refused(samba_ad, backend, tmp_path):
    assert read(samba_ad, backend).users  # every read here verifies Samba's certificate against the fixture's CA
    other_ca, _cert, _key = generate_tls(tmp_path / "other-ca")
    with pytest.raises(ProvisioningError) as refused:
        read(samba_ad, backend, ca_path=other_ca)
    message = str(refused.value)
    assert "127.0.0.1:636" in message and "not trusted" in message, message
    # without a CA of ours, the system's trust store does not know the fixture's CA either
    with pytest.raises(ProvisioningError, match="not trusted"):
        read(samba_ad, backend, ca_path=None)


# -- end to end into SCIM ---------------------------------------------------------------------------


def test_seed_scenario_into_scim_with_a_rename_and_a_move(samba_ad, scim_server, tmp_path):
    """Janet (jsmith) and Accounting exist in the service: linked, not duplicated; then a user
    renamed (new sAMAccountName, same objectGUID) is renamed in SCIM, and a user moved to another OU
    stays the same account."""
    ad, dns = samba_ad, samba_ad.dns
    janet = scim_server.seed_user("jsmith", title="Keeps her title")
    accounting = scim_server.seed_group("Accounting")
    args = {
        "url": scim_server.url,
        "source": {
            "server_uri": [ad.ldaps_uri],
            "ca_path": ad.ca_file,
            "dialect": "ad",
            "user_base_dn": corp.PEOPLE,
            "group_base_dn": corp.GROUPS,
            "group_filter": "(&(objectClass=group)(cn=Accounting))",
        },
    }
    guids = {dn.lower(): guid for dn, guid in ad.guids(corp.CORP).items()}
    runs = []

    def sync():
        result = run_playbook(
            tmp_path / f"run{len(runs)}",
            SCIM_SYNC_PLAY,
            extra_vars={"sync_args": args},
            env={"SCIM_TOKEN": scim_server.token, "LDAP_BIND_DN": ad.bind_dn, "LDAP_BIND_PW": ad.bind_pw},
        )
        assert result.rc == 0, result.text
        assert not result.output.get("failed"), json.dumps(result.output, indent=1)[:3000]
        runs.append(result.output)
        return result.output

    def users():
        return {u["userName"]: u for u in scim_server.all("Users")}

    first = sync()
    counts = first["report"]["counts"]
    assert counts["link_user"] == 1 and counts["create_user"] == 3, counts
    assert counts["link_group"] == 1, counts
    found = users()
    assert sorted(found) == ["jsmith", "mlopez", "rkhan", "tnguyen"]  # ddisabled is disabled: not created
    assert found["jsmith"]["id"] == janet["id"]
    assert found["jsmith"]["externalId"] == "idsync:" + guids[dns["jsmith"].lower()]
    assert found["jsmith"]["name"] == {"givenName": "Janet", "familyName": "Smith"}
    assert found["jsmith"]["title"] == "Keeps her title"
    assert found["mlopez"]["displayName"] == "María López"
    (group,) = scim_server.all("Groups")
    assert group["id"] == accounting["id"]
    names = {u["id"]: name for name, u in found.items()}
    assert sorted(names[m["value"]] for m in group["members"]) == ["jsmith", "mlopez"]

    maria_dn, rosa_dn = dns["mlopez"], dns["rkhan"]
    try:
        ad.replace(maria_dn, sAMAccountName="mgarcia", sn="García", displayName="María García")
        maria_dn = ad.rename(maria_dn, "CN=María García")
        rosa_dn = ad.rename(rosa_dn, "CN=Rosa Khan", corp.STAFF)
        second = sync()
        actions = second["report"]["actions"]
        assert sorted(a["kind"] for a in actions) == ["update_user"], actions
        # one update of the account found by objectGUID: its userName is the new sAMAccountName
        assert actions[0]["name"] == "mgarcia" and "userName" in actions[0]["changes"], actions
        renamed = users()
        assert sorted(renamed) == ["jsmith", "mgarcia", "rkhan", "tnguyen"]
        assert renamed["mgarcia"]["id"] == found["mlopez"]["id"]  # renamed, not recreated
        assert renamed["mgarcia"]["name"]["familyName"] == "García"
        assert renamed["mgarcia"]["externalId"] == found["mlopez"]["externalId"]  # the same objectGUID
        assert renamed["rkhan"] == found["rkhan"]  # moved to another OU: the same account, unchanged
        assert sorted(m["value"] for m in scim_server.all("Groups")[0]["members"]) == sorted(
            [found["jsmith"]["id"], found["mlopez"]["id"]]
        )
        third = sync()
        assert third["changed"] is False, third["report"]["actions"]
    finally:
        # put the shared domain back as populate() wrote it
        ad.replace(maria_dn, sAMAccountName="mlopez", sn="López", displayName="María López")
        ad.rename(maria_dn, "CN=María López")
        ad.rename(rosa_dn, "CN=Rosa Khan", corp.REMOTE)
