# -*- coding: utf-8 -*-
"""Every YAML example names whole DNs where an option takes a DN.

YAML splits an unquoted flow sequence at its commas, so ``user_groups: [CN=SaaS Users,OU=Groups,
DC=example,DC=com]`` loads as four "DNs" and fails against a directory. Parsing alone does not
catch that: each piece is valid YAML and even parses as a DN. So every example is loaded and
each DN-valued option in it is checked to hold whole DNs.

The examples: the fenced ``yaml`` blocks of README.md, docs/ and roles/*/README.md (the pages
test_docs.py reads), the ``EXAMPLES`` of every module and lookup (read with ``ast``, never
imported), and the YAML files of playbooks/ and docs/awx/, which people copy as they are.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml
from ldap3.core.exceptions import LDAPInvalidDnError
from ldap3.utils.dn import parse_dn
from test_docs import FENCE, PAGES

from ansible_collections.idsync.provisioning.plugins.module_utils._ldap import source_argument_spec

REPO_ROOT = Path(__file__).resolve().parents[2]
PLUGIN_FILES = sorted([*REPO_ROOT.glob("plugins/modules/*.py"), *REPO_ROOT.glob("plugins/lookup/*.py")])
YAML_FILES = sorted([*REPO_ROOT.glob("playbooks/**/*.yml"), *REPO_ROOT.glob("docs/awx/**/*.yml")])

# A DN ends in the naming context it lives in: dc= (AD, OpenLDAP), o= or c= (X.500 style). A list
# item that does not, or that has a single RDN, is a piece of a DN that YAML split at a comma:
# "CN=SaaS Users" and "OU=Groups" do not end in dc=, and "DC=com" is one RDN.
NAMING_CONTEXT_TYPES = {"dc", "o", "c"}

SOURCE_OPTIONS = source_argument_spec()
# The directory options that take one DN (bind_dn, user_base_dn, group_base_dn) and a list of
# DNs (user_groups), read from source_argument_spec (the sync modules' source and the lookup's
# options) so that a new DN option is checked too. A key matches when it ends with the option's
# name: playbook variables carry a prefix (ldap_user_base_dn). ``dn`` is the record field the
# docs show in example output.
DN_OPTIONS = {name for name, spec in SOURCE_OPTIONS.items() if name.endswith("_dn") and spec["type"] == "str"}
DN_LIST_OPTIONS = {"user_groups"}


class ExampleLoader(yaml.SafeLoader):
    """SafeLoader that also takes Ansible's tags (``!unsafe``, ``!vault``) as plain values."""


def _any_tag(loader, _suffix, node):
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)


ExampleLoader.add_multi_constructor("!", _any_tag)


def plugin_examples(path: Path) -> str:
    """The EXAMPLES string of a plugin file, without importing it."""
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "EXAMPLES" for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"{path} has no EXAMPLES")


def collect_examples() -> list[tuple[str, str]]:
    """``(where, yaml text)`` of every example."""
    examples = []
    for page in PAGES:
        for number, block in enumerate(FENCE.findall(page.read_text(encoding="utf-8")), 1):
            examples.append((f"{page.relative_to(REPO_ROOT)} yaml block {number}", block))
    for path in PLUGIN_FILES:
        examples.append((f"{path.relative_to(REPO_ROOT)} EXAMPLES", plugin_examples(path)))
    for path in YAML_FILES:
        examples.append((str(path.relative_to(REPO_ROOT)), path.read_text(encoding="utf-8")))
    return examples


EXAMPLES = collect_examples()


def _dn_problem(value, in_list: bool) -> str | None:
    """Why ``value`` is not one whole DN, or None when it is (Jinja is checked when it renders)."""
    if not isinstance(value, str):
        return f"{value!r} is not a string"
    if "{{" in value:
        return None
    try:
        rdns = parse_dn(value)
    except LDAPInvalidDnError as exc:
        return f"{value!r} is not a DN ({exc})"
    if rdns[-1][0].lower() not in NAMING_CONTEXT_TYPES:
        return f"{value!r} does not end in a dc=/o=/c= component: a DN cut at a comma?"
    if in_list and len(rdns) < 2:
        return f"{value!r} is a single RDN: a DN cut at a comma?"
    return None


def _option_kind(key) -> str | None:
    key = str(key).lower()
    if key == "dn" or any(key.endswith(name) for name in DN_OPTIONS):
        return "dn"
    if any(key.endswith(name) for name in DN_LIST_OPTIONS):
        return "dn list"
    return None


def dn_problems(data, path: str = "") -> tuple[list[str], int]:
    """``(problems, number of DN values checked)`` for every DN-valued key anywhere in ``data``."""
    problems: list[str] = []
    checked = 0
    if isinstance(data, dict):
        items = data.items()
    elif isinstance(data, list):
        items = enumerate(data)
    else:
        return problems, checked
    for key, value in items:
        where = f"{path}.{key}" if path else str(key)
        kind = _option_kind(key) if isinstance(data, dict) else None
        if kind == "dn":
            checked += 1
            problem = _dn_problem(value, in_list=False)
            problems += [f"{where}: {problem}"] if problem else []
        elif kind == "dn list":
            if isinstance(value, str) and "{{" in value:
                continue
            if not isinstance(value, list):
                problems.append(f"{where}: {value!r} is not a list of DNs")
                continue
            for item in value:
                checked += 1
                problem = _dn_problem(item, in_list=True)
                problems += [f"{where}: {problem}"] if problem else []
        else:
            inner, count = dn_problems(value, where)
            problems += inner
            checked += count
    return problems, checked


def check_example(text: str) -> tuple[list[str], int]:
    return dn_problems(yaml.load(text, Loader=ExampleLoader))


@pytest.mark.parametrize(("where", "text"), EXAMPLES, ids=[where for where, _text in EXAMPLES])
def test_dn_options_hold_whole_dns(where, text):
    problems, _checked = check_example(text)
    assert problems == [], f"{where}: DN-valued options that do not hold whole DNs (quote DNs in [...]):\n" + "\n".join(
        problems
    )


def test_the_examples_are_found_and_checked():
    """Guard against a check that passes because it reads nothing."""
    assert sorted(DN_OPTIONS) == ["bind_dn", "group_base_dn", "user_base_dn"]
    assert SOURCE_OPTIONS["user_groups"]["type"] == "list"
    where = {w.split(" ")[0] for w, _text in EXAMPLES}
    assert {
        "README.md",
        "roles/sync/README.md",
        "plugins/modules/scim_sync.py",
        "plugins/lookup/ldap_source.py",
    } <= where
    assert len(PLUGIN_FILES) >= 6
    checked = {w: check_example(t)[1] for w, t in EXAMPLES}
    assert sum(checked.values()) >= 30
    # the places the broken example was reported in each have a checked DN list
    for name in ("README.md", "roles/sync/README.md", "plugins/modules/scim_sync.py"):
        assert any(w.startswith(name) and checked[w] for w in checked), name


# -- the check itself: it fails on the broken YAML of the report, passes on the fix --------------
BROKEN = """\
- name: Sync
  idsync.provisioning.scim_sync:
    source:
      user_base_dn: OU=Staff,DC=example,DC=com
      user_groups: [CN=SaaS Users,OU=Groups,DC=example,DC=com]
"""


def test_an_unquoted_dn_list_is_reported():
    problems, checked = check_example(BROKEN)
    assert checked == 5  # the base DN and the four pieces the list was cut into
    assert problems == [
        "0.idsync.provisioning.scim_sync.source.user_groups: 'CN=SaaS Users' does not end in a dc=/o=/c= component: a DN cut at a comma?",
        "0.idsync.provisioning.scim_sync.source.user_groups: 'OU=Groups' does not end in a dc=/o=/c= component: a DN cut at a comma?",
        "0.idsync.provisioning.scim_sync.source.user_groups: 'DC=example' is a single RDN: a DN cut at a comma?",
        "0.idsync.provisioning.scim_sync.source.user_groups: 'DC=com' is a single RDN: a DN cut at a comma?",
    ]


def test_a_quoted_dn_list_passes():
    fixed = BROKEN.replace(
        "[CN=SaaS Users,OU=Groups,DC=example,DC=com]", '["CN=SaaS Users,OU=Groups,DC=example,DC=com"]'
    )
    assert check_example(fixed) == ([], 2)


def test_the_broken_list_is_found_in_a_page_and_in_examples(tmp_path):
    """The same extraction the real pages go through finds it in a fenced block and in EXAMPLES."""
    page = f"# Page\n\n```yaml\n{BROKEN}```\n"
    [block] = FENCE.findall(page)
    assert check_example(block)[0]
    plugin = tmp_path / "broken_module.py"
    plugin.write_text(f'DOCUMENTATION = ""\nEXAMPLES = r"""\n{BROKEN}"""\n', encoding="utf-8")
    assert check_example(plugin_examples(plugin))[0]


@pytest.mark.parametrize(
    ("value", "in_list", "problem"),
    [
        ("cn=Smith\\, Janet,ou=people,dc=example,dc=org", True, None),  # an escaped comma stays in the RDN
        ("cn=Engineering,o=Example", True, None),
        ("{{ lookup('ansible.builtin.env', 'LDAP_USER_BASE_DN') }}", False, None),
        ("Engineering", True, "'Engineering' is not a DN"),
        ("cn=x,,dc=org", False, "'cn=x,,dc=org' is not a DN"),
        (["cn=x,dc=org"], False, "is not a string"),
    ],
)
def test_dn_rule(value, in_list, problem):
    found = _dn_problem(value, in_list)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_keys_with_a_prefix_are_dn_options():
    assert _option_kind("ldap_user_base_dn") == "dn"
    assert _option_kind("LDAP_BIND_DN") == "dn"
    assert _option_kind("ldap_user_groups") == "dn list"
    assert _option_kind("groups") is None  # record field: group names, not DNs
    assert _option_kind("nested_groups") is None


def test_a_templated_list_is_left_to_jinja():
    assert dn_problems({"ldap_user_groups": "{{ groups_from_survey }}"}) == ([], 0)
    assert re.search("not a list", dn_problems({"user_groups": "cn=a,dc=org"})[0][0])
