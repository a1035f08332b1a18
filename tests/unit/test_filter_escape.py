# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter values built from input are escaped (issue 15, item 3).

* LDAP (RFC 4515): ``_ldap_filter.escape_value`` turns any value into one assertion value. The
  reader itself puts no input value into a filter (the operator's filters go to the server
  verbatim; a targeted group is read by its DN at base scope): tests/integration/test_bad_input.py
  scopes by a group whose name is made of filter metacharacters, by DN and by an escaped filter.
* SCIM (RFC 7644 3.4.2.2): ``scim.filter_literal`` makes any value one JSON string literal.
"""

from __future__ import annotations

import json

import pytest

from ansible_collections.idsync.provisioning.plugins.module_utils import _ldap_filter
from ansible_collections.idsync.provisioning.plugins.module_utils.scim import filter_literal

HOSTILE = [
    "*",
    "*)(uid=*",
    "admin)(|(objectClass=*",
    "R&D (EU)* \\ Ops",
    "back\\slash\\2a",
    "nul\x00byte",
    "Zürich (Ωmega)",
    ")(",
    "",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_an_escaped_ldap_value_is_one_equality_assertion(value):
    escaped = _ldap_filter.escape_value(value)
    assert not set(escaped) & set("*()\x00"), escaped
    node = _ldap_filter.parse(f"(cn={escaped})")
    assert node.op == "eq"
    assert node.value == value
    assert _ldap_filter.matches(node, {"cn": [value]})
    assert not _ldap_filter.matches(node, {"cn": [value + "x"]})
    assert not _ldap_filter.matches(node, {"cn": ["anything else"]})


def test_escaping_follows_rfc_4515_and_leaves_other_characters():
    assert _ldap_filter.escape_value("a*b(c)d\\e\x00") == "a\\2ab\\28c\\29d\\5ce\\00"
    assert _ldap_filter.escape_value("R&D|!=~<>, Zürich") == "R&D|!=~<>, Zürich"


def test_an_unescaped_value_would_change_the_filter():
    """Why it matters: the raw value turns an equality into a presence test or adds a clause."""
    with pytest.raises(_ldap_filter.FilterError):
        _ldap_filter.parse("(cn=*)(uid=*)")
    assert _ldap_filter.matches(_ldap_filter.parse("(cn=*)"), {"cn": ["anyone"]})


@pytest.mark.parametrize("value", ['" or userName pr "', 'x") or (userName pr', "back\\slash", 'q"uote', "Zürich"])
def test_a_scim_filter_literal_is_one_json_string(value):
    literal = filter_literal(value)
    assert literal.startswith('"') and literal.endswith('"')
    assert json.loads(literal) == value
    # nothing after the literal's closing quote: the value cannot add an operator
    assert json.JSONDecoder().raw_decode(literal)[1] == len(literal)


@pytest.mark.parametrize("value", ["line\nbreak", "tab\there", "nul\x00"])
def test_a_scim_filter_literal_escapes_control_characters(value):
    assert json.loads(filter_literal(value)) == value
