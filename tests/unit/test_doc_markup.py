# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Doc markup renders as written in ansible-doc: no C()/V()/O()/... that ends before its text does.

ansible-doc (and the docsite) read C(), I(), B(), M(), U(), L(), R() and P() up to the first ``)``,
with no escape: ``C((objectClass=group))`` renders as ``(objectClass=group`` followed by a stray
``)``. O(), V(), E() and RV() take ``\\)`` and ``\\\\`` as escapes, so values with parentheses are
written ``V((objectClass=group\\))``. Every documentation string of the modules, the doc
fragments and the lookup is parsed the way ansible-doc parses it, and each markup's content must
hold balanced parentheses.
"""

from __future__ import annotations

import ast
import importlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"
DOC_VARIABLES = ("DOCUMENTATION", "RETURN")
# keys whose values are data, not prose (a default filter is not markup)
DATA_KEYS = {"default", "sample", "choices", "example", "aliases", "type", "elements", "version_added"}

MARKUP = re.compile(r"\b(RV|[BCEIMOPUVLR])\(")
ESCAPING = {"O", "V", "E", "RV"}  # these take backslash escapes; the others end at the first ")"


def markup_problems(text: str) -> list[str]:
    """Each markup in ``text`` whose content, as ansible-doc cuts it, is unclosed or unbalanced."""
    problems = []
    for match in MARKUP.finditer(text):
        kind, index, content, closed = match.group(1), match.end(), [], False
        while index < len(text):
            char = text[index]
            if kind in ESCAPING and char == "\\" and index + 1 < len(text):
                content.append(text[index + 1])
                index += 2
                continue
            if char == ")":
                closed = True
                break
            content.append(char)
            index += 1
        depth, negative = 0, False
        for char in content:
            depth += (char == "(") - (char == ")")
            negative = negative or depth < 0
        if not closed:
            problems.append(f"{kind}({''.join(content)} is not closed")
        elif depth or negative:
            problems.append(f"{kind}({''.join(content)}) ends early: its parentheses do not balance")
    return problems


def prose(node, path: str = "") -> Iterator[tuple[str, str]]:
    """Every string of a documentation tree that ansible-doc renders, with where it is."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key not in DATA_KEYS:
                yield from prose(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from prose(value, f"{path}[{index}]")
    elif isinstance(node, str):
        yield path, node


def plugin_docs() -> Iterator[tuple[str, str]]:
    """(name, YAML text) of every DOCUMENTATION and RETURN of modules and lookups, and every fragment."""
    for folder in ("modules", "lookup"):
        for source in sorted((PLUGINS / folder).glob("*.py")):
            for statement in ast.parse(source.read_text(encoding="utf-8")).body:
                if (
                    isinstance(statement, ast.Assign)
                    and isinstance(statement.targets[0], ast.Name)
                    and statement.targets[0].id in DOC_VARIABLES
                    and isinstance(statement.value, ast.Constant)
                ):
                    yield f"{folder}/{source.stem} {statement.targets[0].id}", statement.value.value
    for source in sorted((PLUGINS / "doc_fragments").glob("*.py")):
        module = importlib.import_module(f"ansible_collections.idsync.provisioning.plugins.doc_fragments.{source.stem}")
        for name, value in vars(module.ModuleDocFragment).items():
            if name.isupper() and isinstance(value, str):
                yield f"doc_fragments/{source.stem} {name}", value


DOCS = list(plugin_docs())


def test_every_plugin_documentation_is_found():
    names = {name.split()[0] for name, _text in DOCS}
    assert {"modules/scim_user", "modules/scim_sync", "lookup/ldap_source", "doc_fragments/ldap"} <= names
    assert {"doc_fragments/scim", "doc_fragments/sync"} <= names


@pytest.mark.parametrize("name,text", DOCS, ids=[name for name, _text in DOCS])
def test_markup_renders_as_written(name, text):
    found = [
        f"{where}: {problem}"
        for where, string in prose(yaml.safe_load(text) or {})
        for problem in markup_problems(string)
    ]
    assert not found, f"{name}:\n" + "\n".join(found)


# -- the check itself -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        # the texts this test was written for, as they were
        r"Defaults to C((&(objectClass=user\)(!(objectClass=computer\)\)\)) for V(ad)",
        r"Defaults to C((objectClass=group\)) for V(ad)",
        "The JMESPath function C(first()) takes the first value",
        # a value with parentheses in V() without escapes ends at the first ")"
        "V((objectClass=group))",
        "O(members.add",
        "I(nested (group)",
    ],
)
def test_broken_markup_is_found(text):
    assert markup_problems(text)


@pytest.mark.parametrize(
    "text",
    [
        r"Defaults to V((&(objectClass=user\)(!(objectClass=computer\)\)\)) for V(ad)",
        r"The JMESPath function V(first(\)) takes the first value",
        "C(userName) (a plain word), O(members.set), E(SCIM_URL), RV(report.failures) and M(idsync.provisioning.scim_sync)",
        "L(RFC 7643, https://www.rfc-editor.org/rfc/rfc7643) and U(https://example.com/a_b)",
        "Text with (parentheses) but no markup; ABC(x) is no markup either",
    ],
)
def test_good_markup_passes(text):
    assert markup_problems(text) == []
