# -*- coding: utf-8 -*-
"""The ldap_source lookup, run by ansible-playbook against a real slapd (seed: tests/data/ldap/README.md).

One playbook reads many scopes and records them; each test checks one rule by value.
Errors are captured in the same play with ``ignore_errors`` so each message can be checked.
"""

from __future__ import annotations

import base64
import hashlib

import pytest
from support.ldap_backends import BACKENDS, usable_backend
from support.playbook import run_playbook
from support.seed import AD_GUIDS, BASE, GROUP_IDS, GROUPS, PEOPLE, PEOPLE_IDS
from support.slapd import SlapdServer

from ansible_collections.idsync.provisioning.plugins.module_utils._ldap import source_argument_spec

IDS = PEOPLE_IDS
ENGINEERING_ID = GROUP_IDS["Engineering"]

PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  vars:
    conn: &conn
      server_uri: "{{ ldap_uri }}"
      bind_dn: "{{ reader_dn }}"
      bind_pw: "{{ reader_pw }}"
    q: idsync.provisioning.ldap_source
  tasks:
    - name: Read every scope
      ansible.builtin.set_fact:
        people: "{{ query(q, 'users', backend=backend, user_base_dn=people_dn, **conn) }}"
        filtered: "{{ query(q, 'users', backend=backend, user_base_dn=people_dn, user_filter='(|(uid=jdoe)(uid=ZOE))', **conn) }}"
        eng_direct: "{{ query(q, 'users', backend=backend, user_base_dn=people_dn, user_groups=[eng_dn], **conn) }}"
        eng_nested: "{{ query(q, 'users', backend=backend, user_base_dn=people_dn, user_groups=[eng_dn], nested_groups=true, **conn) }}"
        outer_direct: "{{ query(q, 'users', backend=backend, user_base_dn=people_dn, user_groups=[outer_dn], **conn) }}"
        outer_nested: "{{ query(q, 'users', backend=backend, user_base_dn=people_dn, user_groups=[outer_dn], nested_groups=true, **conn) }}"
        eng_and_filter: >-
          {{ query(q, 'users', backend=backend, user_base_dn=people_dn, user_filter='(uid=b*)', user_groups=[eng_dn],
                   nested_groups=true, **conn) }}
        two_groups: "{{ query(q, 'users', backend=backend, user_base_dn=people_dn, user_groups=[sales_dn, platform_dn], **conn) }}"
        groups_onelevel: >-
          {{ query(q, 'groups', backend=backend, user_base_dn=people_dn, group_base_dn=groups_dn, group_search_scope='onelevel', **conn) }}
        groups_subtree: "{{ query(q, 'groups', backend=backend, user_base_dn=people_dn, group_base_dn=groups_dn, **conn) }}"
        groups_nested: >-
          {{ query(q, 'groups', backend=backend, user_base_dn=people_dn, group_base_dn=groups_dn, group_search_scope='onelevel',
                   nested_groups=true, **conn) }}
        everything: >-
          {{ lookup(q, 'all', backend=backend, user_base_dn=base_dn, group_base_dn=groups_dn, group_search_scope='onelevel',
                    nested_groups=true, page_size=100, **conn) }}
        ad: >-
          {{ lookup(q, 'all', backend=backend, dialect='ad', user_base_dn=ad_dn, group_base_dn=adgroups_dn, nested_groups=true, **conn) }}
        ad_named_rule: >-
          {{ query(q, 'users', backend=backend, dialect='ad', user_base_dn=ad_dn,
                   user_filter='(&(objectClass=user)(sAMAccountName:caseIgnoreMatch:=AADMIN))', **conn) }}
        ad_direct: >-
          {{ query(q, 'groups', backend=backend, dialect='ad', user_base_dn=ad_dn, group_base_dn=adgroups_dn, **conn) }}
        overridden: >-
          {{ query(q, 'users', backend=backend, user_base_dn=people_dn, id_attribute='employeeNumber',
                   disabled_filter='(|(uid=jdoe)(title=Engineering*))', **conn) }}
        selected_attributes: >-
          {{ query(q, 'users', backend=backend, user_base_dn=people_dn, user_attributes=['uid', 'mail'], **conn) }}
        anonymous: "{{ query(q, 'users', backend=backend, server_uri=ldap_uri, user_base_dn=people_dn, user_filter='(uid=jdoe)') }}"
        failover: >-
          {{ query(q, 'users', backend=backend, server_uri=['ldap://127.0.0.1:1', ldap_uri], user_base_dn=people_dn,
                   user_filter='(uid=jdoe)', bind_dn=reader_dn, bind_pw=reader_pw) }}
        ldaps: >-
          {{ query(q, 'users', backend=backend, server_uri=ldaps_uri, ca_path=ca_file, user_base_dn=people_dn,
                   user_filter='(uid=jdoe)', bind_dn=reader_dn, bind_pw=reader_pw) }}
        starttls: >-
          {{ query(q, 'users', backend=backend, server_uri=ldap_uri, start_tls=true, ca_path=ca_file, user_base_dn=people_dn,
                   user_filter='(uid=jdoe)', bind_dn=reader_dn, bind_pw=reader_pw) }}
        unverified: >-
          {{ query(q, 'users', backend=backend, server_uri=ldaps_uri, validate_certs=false, user_base_dn=people_dn,
                   user_filter='(uid=jdoe)', bind_dn=reader_dn, bind_pw=reader_pw) }}

    - name: Bad password
      ansible.builtin.set_fact:
        x: "{{ query(q, 'users', backend=backend, server_uri=ldap_uri, bind_dn=reader_dn, bind_pw=wrong_pw, user_base_dn=people_dn) }}"
      register: bad_password
      ignore_errors: true

    - name: No server answers
      ansible.builtin.set_fact:
        x: "{{ query(q, 'users', backend=backend, server_uri=['ldap://127.0.0.1:1', 'ldap://127.0.0.1:2'], user_base_dn=people_dn) }}"
      register: unreachable
      ignore_errors: true

    - name: Missing base DN
      ansible.builtin.set_fact:
        x: "{{ query(q, 'users', backend=backend, user_base_dn='ou=nowhere,' ~ base_dn, **conn) }}"
      register: missing_base
      ignore_errors: true

    - name: Missing group base DN
      ansible.builtin.set_fact:
        x: "{{ query(q, 'groups', backend=backend, user_base_dn=people_dn, group_base_dn='ou=nogroups,' ~ base_dn, **conn) }}"
      register: missing_group_base
      ignore_errors: true

    - name: Invalid filter
      ansible.builtin.set_fact:
        x: "{{ query(q, 'users', backend=backend, user_base_dn=people_dn, user_filter='(&(uid=jdoe)', **conn) }}"
      register: bad_filter
      ignore_errors: true

    - name: Invalid disabled filter
      ansible.builtin.set_fact:
        x: "{{ query(q, 'users', backend=backend, user_base_dn=people_dn, disabled_filter='nsAccountLock', **conn) }}"
      register: bad_disabled_filter
      ignore_errors: true

    - name: Certificate not trusted
      ansible.builtin.set_fact:
        x: "{{ query(q, 'users', backend=backend, server_uri=ldaps_uri, user_base_dn=people_dn, bind_dn=reader_dn, bind_pw=reader_pw) }}"
      register: untrusted
      ignore_errors: true

    - name: CA file that does not exist
      ansible.builtin.set_fact:
        x: "{{ query(q, 'users', backend=backend, server_uri=ldaps_uri, ca_path='/nonexistent/ca.pem', user_base_dn=people_dn) }}"
      register: missing_ca
      ignore_errors: true

    - name: Unknown targeted group
      ansible.builtin.set_fact:
        x: "{{ query(q, 'users', backend=backend, user_base_dn=people_dn, user_groups=['cn=Nope,' ~ groups_dn], **conn) }}"
      register: missing_group
      ignore_errors: true

    - name: Misspelt options (user_group, nested_group) would widen the scope if ignored
      ansible.builtin.set_fact:
        x: "{{ query(q, 'users', backend=backend, user_base_dn=people_dn, user_group=[eng_dn], nested_group=true, **conn) }}"
      register: misspelt
      ignore_errors: true

    - name: Host name that does not resolve
      ansible.builtin.set_fact:
        x: "{{ query(q, 'users', backend=backend, server_uri='ldap://ldap.example.invalid', user_base_dn=people_dn) }}"
      register: unresolvable
      ignore_errors: true

    - name: Wrong term
      ansible.builtin.set_fact:
        x: "{{ query(q, 'people', backend=backend, user_base_dn=people_dn, **conn) }}"
      register: bad_term
      ignore_errors: true

    - name: Record
      ansible.builtin.copy:
        dest: "{{ record }}"
        mode: "0600"
        content: >-
          {{ {'people': people, 'filtered': filtered, 'eng_direct': eng_direct, 'eng_nested': eng_nested,
              'outer_direct': outer_direct, 'outer_nested': outer_nested, 'eng_and_filter': eng_and_filter,
              'two_groups': two_groups, 'groups_onelevel': groups_onelevel, 'groups_subtree': groups_subtree,
              'groups_nested': groups_nested, 'everything': everything, 'ad': ad, 'ad_direct': ad_direct, 'ad_named_rule': ad_named_rule,
              'overridden': overridden, 'selected_attributes': selected_attributes,
              'anonymous': anonymous, 'failover': failover, 'ldaps': ldaps, 'starttls': starttls,
              'unverified': unverified,
              'errors': {'bad_password': bad_password.msg, 'unreachable': unreachable.msg,
                         'missing_base': missing_base.msg, 'missing_group_base': missing_group_base.msg,
                         'bad_filter': bad_filter.msg, 'bad_disabled_filter': bad_disabled_filter.msg,
                         'untrusted': untrusted.msg, 'missing_group': missing_group.msg,
                         'missing_ca': missing_ca.msg, 'misspelt': misspelt.msg,
                         'unresolvable': unresolvable.msg,
                         'bad_term': bad_term.msg}} | to_json }}
"""


@pytest.fixture(scope="module", params=BACKENDS)
def lookup_run(request, slapd, tmp_path_factory):
    """The playbook once per backend: both must give the same answers (and auto is python-ldap here)."""
    result = run_playbook(
        tmp_path_factory.mktemp("lookup"),
        PLAYBOOK,
        extra_vars={
            "backend": usable_backend(request.param),
            "ldap_uri": slapd.uri,
            "ldaps_uri": slapd.ldaps_uri,
            "ca_file": slapd.ca_file,
            "reader_dn": slapd.reader_dn,
            "reader_pw": slapd.reader_pw,
            "base_dn": BASE,
            "people_dn": PEOPLE,
            "groups_dn": GROUPS,
            "ad_dn": f"ou=ad,{BASE}",
            "adgroups_dn": f"ou=adgroups,{BASE}",
            "eng_dn": f"cn=Engineering,{GROUPS}",
            "platform_dn": f"cn=Platform,{GROUPS}",
            "sales_dn": f"cn=Sales,{GROUPS}",
            "outer_dn": f"cn=Nested Outer,{GROUPS}",
            "wrong_pw": "Wr0ng-S3cret!",
        },
        verbosity=3,
    )
    assert result.rc == 0, result.text
    return result


@pytest.fixture(scope="module")
def out(lookup_run):
    return lookup_run.output


def uids(users):
    return sorted(u["attributes"]["uid"][0] for u in users)


def by_uid(users):
    return {u["attributes"]["uid"][0]: u for u in users}


def by_name(groups):
    return {g["name"]: g for g in groups}


def ids_of(*names):
    return sorted(IDS[n] for n in names)


# -- user scope --------------------------------------------------------------------------


def test_base_dn_and_default_filter_select_the_openldap_people(out):
    assert uids(out["people"]) == sorted(IDS)


def test_user_filter_narrows_the_scope_case_insensitively(out):
    assert uids(out["filtered"]) == ["jdoe", "zoe"]


def test_targeted_group_direct_membership_only(out):
    assert uids(out["eng_direct"]) == ["asmith", "jdoe", "jsmith"]


def test_targeted_group_nested_membership_is_flattened(out):
    assert uids(out["eng_nested"]) == ["asmith", "bwhite", "jdoe", "jmuller", "jsmith"]


def test_three_levels_of_nesting(out):
    assert out["outer_direct"] == []
    assert uids(out["outer_nested"]) == ["zoe"]


def test_filter_and_groups_together_are_an_intersection(out):
    assert uids(out["eng_and_filter"]) == ["bwhite"]


def test_several_targeted_groups_are_a_union(out):
    assert uids(out["two_groups"]) == ["bwhite", "jmuller", "locked1", "zoe"]


# -- ids, disabled rules, values ---------------------------------------------------------


def test_openldap_ids_are_entry_uuids(out):
    assert {uid: u["id"] for uid, u in by_uid(out["people"]).items()} == IDS


def test_openldap_disabled_rule_is_pwd_account_locked_time(out):
    assert sorted(uid for uid, u in by_uid(out["people"]).items() if u["disabled"]) == ["locked1"]


def test_ad_ids_are_guid_strings_and_disabled_is_uac_bit_2(out):
    users = {u["attributes"]["sAMAccountName"]: u for u in out["ad"]["users"]}
    assert {name: u["id"] for name, u in users.items()} == AD_GUIDS
    assert sorted(name for name, u in users.items() if u["disabled"]) == ["ddisabled", "eexpired"]
    # the id attribute inside attributes is rendered like the id, not as base64
    assert users["aadmin"]["attributes"]["objectGUID"] == AD_GUIDS["aadmin"]
    assert users["aadmin"]["attributes"]["userAccountControl"] == "512"


def test_ad_escaped_and_non_ascii_dns(out):
    users = {u["attributes"]["sAMAccountName"]: u for u in out["ad"]["users"]}
    assert users["klee"]["dn"].lower().startswith("cn=lee\\2c kim,") or users["klee"]["dn"].startswith("cn=Lee\\, Kim,")
    assert users["ocelik"]["dn"] == "cn=Önder Çelik,ou=ad,dc=example,dc=org"
    assert users["ocelik"]["attributes"]["givenName"] == ["Önder"]


def test_single_valued_are_scalars_and_multi_valued_are_lists_by_schema(out):
    people = by_uid(out["people"])
    assert people["asmith"]["attributes"]["mail"] == ["alice.smith@example.org", "asmith@example.org"]
    assert people["jdoe"]["attributes"]["mail"] == ["jdoe@example.org"]  # one value, still a list
    assert people["jdoe"]["attributes"]["displayName"] == "John Doe"  # SINGLE-VALUE in the schema
    assert people["jmuller"]["attributes"]["cn"] == ["Jürgen Müller"]
    assert "mail" not in people["nomail"]["attributes"]


def test_binary_attributes_are_base64(out):
    photo = base64.b64decode(by_uid(out["people"])["jdoe"]["attributes"]["jpegPhoto"][0])
    assert len(photo) == 159
    assert hashlib.sha256(photo).hexdigest() == "24ac74130806ae02d7e4ee72881b977601999c6c9f94ee1545ed4830459b737f"


def test_id_attribute_and_disabled_filter_can_be_overridden(out):
    people = by_uid(out["overridden"])
    assert people["zoe"]["id"] == "1005"
    assert sorted(uid for uid, u in people.items() if u["disabled"]) == ["asmith", "jdoe"]


def test_user_attributes_limit_what_is_read(out):
    attrs = by_uid(out["selected_attributes"])["jdoe"]["attributes"]
    assert set(attrs) == {"uid", "mail", "entryUUID"}  # the id is always read; nothing else


def test_escaped_dn_member_resolves(out):
    engineering = by_name(out["groups_onelevel"])["Engineering"]
    assert IDS["jsmith"] in engineering["members"]
    assert "Engineering" in by_uid(out["everything"]["users"])["jsmith"]["groups"]


# -- group scope -------------------------------------------------------------------------


def test_group_scope_onelevel_and_subtree(out):
    onelevel = sorted(g["name"] for g in out["groups_onelevel"])
    assert onelevel == sorted(
        [
            "Engineering",
            "Platform",
            "Sales",
            "Nested Outer",
            "Nested Middle",
            "Nested Inner",
            "Bulk Members",
            "Cycle A",
            "Cycle B",
            "Dangling",
        ]
    )
    assert sorted(g["name"] for g in out["groups_subtree"]) == sorted(onelevel + ["Out Of Scope"])
    assert by_name(out["groups_onelevel"])["Engineering"]["id"] == ENGINEERING_ID


def test_group_members_are_ids_of_in_scope_users_direct(out):
    groups = by_name(out["groups_onelevel"])
    assert sorted(groups["Engineering"]["members"]) == ids_of("jdoe", "asmith", "jsmith")
    assert sorted(groups["Dangling"]["members"]) == ids_of("jdoe")  # the missing DN is left out
    assert groups["Nested Outer"]["members"] == []
    assert groups["Bulk Members"]["members"] == []  # ou=bulk is outside the user scope


def test_group_members_nested_are_flattened_and_cycles_end(out):
    groups = by_name(out["groups_nested"])
    assert sorted(groups["Engineering"]["members"]) == ids_of("jdoe", "asmith", "jsmith", "bwhite", "jmuller")
    assert sorted(groups["Nested Outer"]["members"]) == ids_of("zoe")
    assert sorted(groups["Cycle A"]["members"]) == ids_of("asmith", "bwhite")
    assert sorted(groups["Cycle B"]["members"]) == ids_of("asmith", "bwhite")


def test_user_groups_field_lists_group_names(out):
    users = by_uid(out["everything"]["users"])
    assert sorted(users["zoe"]["groups"]) == ["Nested Inner", "Nested Middle", "Nested Outer", "Sales"]
    assert users["nomail"]["groups"] == []


def test_paging_reads_more_than_three_pages_and_a_large_group(out):
    users = out["everything"]["users"]
    assert len(users) == 358  # 8 people + 350 bulk, read 100 per page
    assert len({u["id"] for u in users}) == 358
    bulk = by_name(out["everything"]["groups"])["Bulk Members"]
    assert len(bulk["members"]) == 250


def test_ad_groups_members_direct_and_nested(out):
    guid = AD_GUIDS
    direct = by_name(out["ad_direct"])
    assert sorted(direct["AD Staff"]["members"]) == sorted(guid[n] for n in ("aadmin", "cclerk", "ddisabled", "ocelik"))
    nested = by_name(out["ad"]["groups"])
    assert sorted(nested["AD Staff"]["members"]) == sorted(
        guid[n] for n in ("aadmin", "cclerk", "ddisabled", "ocelik", "klee", "eexpired")
    )
    assert sorted(nested["AD Managers"]["members"]) == sorted(guid[n] for n in ("klee", "eexpired"))


# -- connections -------------------------------------------------------------------------


def test_anonymous_failover_ldaps_starttls(out):
    for name in ("anonymous", "failover", "ldaps", "starttls", "unverified"):
        assert uids(out[name]) == ["jdoe"], name


# -- errors ------------------------------------------------------------------------------


def test_bad_credentials_name_the_bind_dn_and_hide_the_password(out, lookup_run, slapd):
    message = out["errors"]["bad_password"]
    assert f"ldap_source: bind as '{slapd.reader_dn}' to {slapd.uri}: invalid credentials (LDAP 49)" in message
    assert "check bind_dn / source.bind_dn (LDAP_BIND_DN) and the bind password (LDAP_BIND_PW)" in message
    assert "Wr0ng-S3cret!" not in lookup_run.text  # not in any task output, even at -vvv
    assert slapd.reader_pw not in lookup_run.text


def test_unreachable_servers_are_each_named(out):
    message = out["errors"]["unreachable"]
    assert "ldap_source: could not reach any LDAP server (2 tried): connection refused by 127.0.0.1:1: " in message
    assert "; connection refused by 127.0.0.1:2: is the LDAP server running, and is the port in server_uri right?" in (
        message
    )


def test_a_host_name_that_does_not_resolve_is_named(out):
    assert out["errors"]["unresolvable"].endswith(
        "ldap_source: cannot resolve host ldap.example.invalid: check the host name in server_uri / "
        "source.server_uri (LDAP_SERVER_URI) and DNS"
    )


def test_missing_base_dn_is_named(out):
    assert "user_base_dn 'ou=nowhere,dc=example,dc=org' does not exist" in out["errors"]["missing_base"]
    assert "group_base_dn 'ou=nogroups,dc=example,dc=org' does not exist" in out["errors"]["missing_group_base"]


def test_invalid_filters_are_named(out):
    assert "'user_filter' is not a valid LDAP filter ('(&(uid=jdoe)')" in out["errors"]["bad_filter"]
    assert "'disabled_filter' is not a valid LDAP filter" in out["errors"]["bad_disabled_filter"]


def test_untrusted_certificate_is_refused_by_default(out):
    message = out["errors"]["untrusted"]
    assert "TLS failure: the certificate of 127.0.0.1:" in message
    assert "is not trusted (self-signed certificate in certificate chain): set ca_path" in message


def test_unknown_targeted_group_and_term(out):
    assert (
        "user_groups: the group 'cn=Nope,ou=groups,dc=example,dc=org' does not exist" in out["errors"]["missing_group"]
    )
    assert "exactly one term" in out["errors"]["bad_term"]


# -- paging against a server that enforces a size limit ---------------------------------


def test_paged_search_passes_a_server_size_limit(tmp_path_factory):
    """With a 100-entry limit, 350 users come back only if every search is really paged."""
    workdir = tmp_path_factory.mktemp("slapd-limit")
    with SlapdServer(workdir, size_limit=100) as server:
        play = """
        - hosts: localhost
          gather_facts: false
          tasks:
            - ansible.builtin.copy:
                dest: "{{ record }}"
                mode: "0600"
                content: >-
                  {{ {'bulk': query('idsync.provisioning.ldap_source', 'users', server_uri=uri,
                       user_base_dn='ou=bulk,dc=example,dc=org', page_size=100) | length,
                      'too_big': query('idsync.provisioning.ldap_source', 'users', server_uri=uri,
                       user_base_dn='ou=bulk,dc=example,dc=org', page_size=100,
                       group_base_dn='ou=groups,dc=example,dc=org', user_groups=[bulk_group]) | length} | to_json }}
        """
        result = run_playbook(
            workdir / "play",
            play,
            extra_vars={"uri": server.uri, "bulk_group": "cn=Bulk Members,ou=groups,dc=example,dc=org"},
            env={"LDAP_BIND_DN": server.reader_dn, "LDAP_BIND_PW": server.reader_pw},
        )
    assert result.rc == 0, result.text
    assert result.output == {"bulk": 350, "too_big": 250}


def test_server_side_filters_may_use_any_matching_rule(out):
    """The user filter runs on the server, so rules our evaluator does not know are fine there."""
    assert [u["attributes"]["sAMAccountName"] for u in out["ad_named_rule"]] == ["aadmin"]


def test_missing_ca_file_is_named(out):
    assert "'ca_path' ('/nonexistent/ca.pem')" in out["errors"]["missing_ca"]


def test_unknown_options_are_refused_by_name_with_the_closest_known_one(out):
    """Ignored, ``user_group=``/``nested_group=`` would read all 8 people instead of Engineering's."""
    message = out["errors"]["misspelt"]
    assert (
        "ldap_source: unknown options 'nested_group' (did you mean 'nested_groups'?), "
        "'user_group' (did you mean 'user_groups'?); known options: backend, bind_dn, bind_pw, ca_path, "
    ) in message
    known = message.split("known options: ", 1)[1].split(", ")
    assert known == sorted(source_argument_spec())  # what the lookup documents, nothing else
