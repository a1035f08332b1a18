# -*- coding: utf-8 -*-
"""The client-side LDAP filter evaluator that decides the disabled rule, and DN normalisation."""

import pytest

from ansible_collections.idsync.provisioning.plugins.module_utils import _ldap_filter as f
from ansible_collections.idsync.provisioning.plugins.module_utils._ldap import normalize_dn


def check(text, values):
    return f.matches(f.parse(text), {k.lower(): v for k, v in values.items()})


@pytest.mark.parametrize(
    ("uac", "disabled"),
    [("512", False), ("514", True), ("66050", True), ("66048", False), ("2", True)],
)
def test_ad_disabled_rule_is_bit_2_of_user_account_control(uac, disabled):
    assert check("(userAccountControl:1.2.840.113556.1.4.803:=2)", {"userAccountControl": [uac]}) is disabled


def test_bitwise_or_matches_any_bit():
    rule = "(userAccountControl:1.2.840.113556.1.4.804:=18)"
    assert check(rule, {"userAccountControl": ["16"]})
    assert not check(rule, {"userAccountControl": ["512"]})


def test_presence_equality_and_boolean_operators():
    values = {"pwdAccountLockedTime": ["000001010000Z"], "nsAccountLock": ["TRUE"], "cn": ["Smith, Janet"]}
    assert check("(pwdAccountLockedTime=*)", values)
    assert not check("(pwdAccountLockedTime=*)", {"cn": ["x"]})
    assert check("(nsAccountLock=true)", values)  # equality ignores case, as directories do
    assert check("(&(cn=Smith\\2c Janet)(!(mail=*)))", values)
    assert check("(|(mail=x)(cn=smith*))", values)
    assert not check("(&(cn=*)(mail=*))", values)


def test_substrings_and_ordering():
    values = {"mail": ["jane.doe@example.org"], "employeeNumber": ["1200"]}
    assert check("(mail=jane*@*.org)", values)
    assert not check("(mail=*@example.com)", values)
    assert check("(employeeNumber>=999)", values)  # numbers compare as numbers
    assert not check("(employeeNumber<=999)", values)


def test_attributes_of_lists_what_the_search_must_request():
    node = f.parse("(|(userAccountControl:1.2.840.113556.1.4.803:=2)(!(accountExpires>=1)))")
    assert f.attributes_of(node) == {"userAccountControl", "accountExpires"}


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("(cn=foo", "unbalanced"),
        ("(&)", "at least one"),
        ("(cn)", "no comparison"),
        ("(uid=a\\zz)", "escape"),
        ("(member:1.2.840.113556.1.4.1941:=cn=x)", "not supported"),
        ("", "empty"),
    ],
)
def test_invalid_filters_say_why(text, reason):
    with pytest.raises(f.FilterError, match=reason):
        f.parse(text)


def test_escape_value_round_trips():
    raw = "a*b(c)\\d"
    assert check(f"(cn={f.escape_value(raw)})", {"cn": [raw]})


def test_normalize_dn_resolves_escapes_and_case():
    assert normalize_dn("cn=Smith\\, Janet,ou=People,dc=example,dc=org") == normalize_dn(
        "CN=smith\\2c janet, OU=people,DC=Example,DC=org"
    )
    assert normalize_dn("cn=a,dc=x") != normalize_dn("cn=b,dc=x")


@pytest.mark.parametrize(
    ("dn", "expected"),
    [
        ("uid=JDoe,ou=People,dc=Example,dc=org", "uid=jdoe,ou=people,dc=example,dc=org"),  # plain: lower-cased
        ("CN=Janet Smith, OU=Staff ,DC=corp,DC=example", "cn=janet smith,ou=staff,dc=corp,dc=example"),  # spaces
        ("cn = a=b ,dc=x", "cn=a=b,dc=x"),  # an '=' in a value stays
        ("cn=Smith\\, Janet,dc=x", "cn=smith, janet,dc=x"),  # an escape: the parser
        ("cn=b+uid=a,dc=x", "cn=b+uid=a,dc=x"),  # a multi-valued RDN: sorted by the parser
        ("uid=a+cn=b,dc=x", "cn=b+uid=a,dc=x"),
        ("", ""),
    ],
)
def test_normalize_dn_fast_paths_agree_with_the_parser(dn, expected):
    assert normalize_dn(dn) == expected


def test_server_filters_accept_any_extensible_match_but_the_evaluator_does_not():
    in_chain = "(memberOf:1.2.840.113556.1.4.1941:=cn=Staff,dc=example,dc=org)"
    assert f.parse(in_chain, evaluable=False).op == "ext"
    with pytest.raises(f.FilterError, match="not supported"):
        f.parse(in_chain)


def test_unique_member_ids_are_stripped():
    from ansible_collections.idsync.provisioning.plugins.module_utils._ldap import _strip_unique_id

    assert _strip_unique_id("uid=a,dc=x#'0101'B") == "uid=a,dc=x"
    assert _strip_unique_id("cn=a\\#b,dc=x") == "cn=a\\#b,dc=x"
