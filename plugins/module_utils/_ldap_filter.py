# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""RFC 4515 LDAP filters: parse, validate, and evaluate against values already read.

Private to this collection.

Why evaluate client-side: the disabled rule (``disabled_filter``) is written as an LDAP
filter because that is what directory engineers know, but running it on the server would
cost a second search and, worse, gives different answers on different servers (slapd's
msuser schema has no matching rules, so AD's bitwise filter matches nothing there). Deciding
it from the values read gives one answer everywhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

BITWISE_AND = "1.2.840.113556.1.4.803"
BITWISE_OR = "1.2.840.113556.1.4.804"
_ATTRIBUTE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.;-]*$")


class FilterError(ValueError):
    """The filter text is not a valid (or not a supported) LDAP filter."""


@dataclass
class Node:
    op: str  # and, or, not, eq, approx, ge, le, present, substring, ext
    attribute: str = ""
    value: str = ""
    rule: str = ""
    parts: list = field(default_factory=list)  # children, or substring pieces
    children: list = field(default_factory=list)


def _unescape(text: str, source: str) -> str:
    out = bytearray()
    i = 0
    raw = text.encode("utf-8")
    while i < len(raw):
        if raw[i : i + 1] == b"\\":
            pair = raw[i + 1 : i + 3]
            if len(pair) != 2 or not re.fullmatch(rb"[0-9A-Fa-f]{2}", pair):
                raise FilterError(f"bad escape sequence in {source!r}: a backslash must be followed by two hex digits")
            out.append(int(pair, 16))
            i += 3
        else:
            out.append(raw[i])
            i += 1
    return out.decode("utf-8", errors="replace")


def escape_value(value: str) -> str:
    """Escape a value for use inside a filter (RFC 4515 section 3)."""
    return "".join(f"\\{ord(c):02x}" if c in "*()\\\x00" else c for c in value)


def parse(text: str, evaluable: bool = True) -> Node:
    """Parse a filter; raises FilterError with a reason a human can act on.

    ``evaluable=False`` checks the syntax only, for filters the server runs (``user_filter``):
    any extensible match is then accepted, AD's in-chain rule and named rules included.
    """
    if not isinstance(text, str) or not text.strip():
        raise FilterError("the filter is empty")
    text = text.strip()
    if not text.startswith("("):
        text = f"({text})"  # ldapsearch accepts a bare item; so do we
    node, pos = _parse_item(text, 0, evaluable)
    if pos != len(text):
        raise FilterError(f"unexpected text after position {pos}: {text[pos:]!r}")
    return node


def _parse_item(text: str, pos: int, evaluable: bool) -> tuple[Node, int]:
    if pos >= len(text) or text[pos] != "(":
        raise FilterError(f"expected '(' at position {pos}")
    pos += 1
    if pos >= len(text):
        raise FilterError("unbalanced parentheses")
    head = text[pos]
    if head in "&|":
        children = []
        pos += 1
        while pos < len(text) and text[pos] == "(":
            child, pos = _parse_item(text, pos, evaluable)
            children.append(child)
        if not children:
            raise FilterError(f"'{head}' needs at least one filter inside it")
        return Node("and" if head == "&" else "or", children=children), _close(text, pos)
    if head == "!":
        child, pos = _parse_item(text, pos + 1, evaluable)
        return Node("not", children=[child]), _close(text, pos)
    end = _find_close(text, pos)
    return _parse_simple(text[pos:end], evaluable), end + 1


def _close(text: str, pos: int) -> int:
    if pos >= len(text) or text[pos] != ")":
        raise FilterError("unbalanced parentheses")
    return pos + 1


def _find_close(text: str, pos: int) -> int:
    end = text.find(")", pos)
    if end < 0:
        raise FilterError("unbalanced parentheses")
    if "(" in text[pos:end]:
        raise FilterError(f"unescaped '(' in {text[pos:end]!r} (write it as \\28)")
    return end


def _parse_simple(item: str, evaluable: bool) -> Node:
    idx = item.find("=")
    if idx <= 0:
        raise FilterError(f"{item!r} has no comparison ('=', '>=', '<=', '~=' or ':=')")
    op = {":": "ext", "~": "approx", ">": "ge", "<": "le"}.get(item[idx - 1], "eq")
    left, right = (item[:idx], item[idx + 1 :]) if op == "eq" else (item[: idx - 1], item[idx + 1 :])
    if op == "ext" and not evaluable:
        if not left.strip(":"):
            raise FilterError(f"extensible match {item!r} names neither an attribute nor a rule")
        return Node("ext", attribute=left.split(":")[0], value=_unescape(right, item), rule=left)
    if op == "ext":
        attribute, _sep, rule = left.partition(":")
        if rule.lower().startswith("dn:") or not attribute:
            raise FilterError(f"extensible match {item!r} is not supported (only attr:rule:=value)")
        rule = rule.rstrip(":")
        _check_attribute(attribute, item)
        if rule not in (BITWISE_AND, BITWISE_OR):
            raise FilterError(
                f"matching rule {rule!r} in {item!r} is not supported (use {BITWISE_AND} or {BITWISE_OR})"
            )
        value = _unescape(right, item)
        if not value.isdigit():
            raise FilterError(f"bitwise match {item!r} needs an integer value")
        return Node("ext", attribute=attribute, value=value, rule=rule)
    _check_attribute(left, item)
    if op == "eq" and right == "*":
        return Node("present", attribute=left)
    if op == "eq" and "*" in right:
        return Node("substring", attribute=left, parts=[_unescape(p, item) for p in right.split("*")])
    return Node(op, attribute=left, value=_unescape(right, item))


def _check_attribute(name: str, item: str) -> None:
    if not _ATTRIBUTE.match(name):
        raise FilterError(f"{name!r} in {item!r} is not a valid attribute description")


def attributes_of(node: Node) -> set[str]:
    """The attribute names a filter reads (so the search can ask for them)."""
    if node.children:
        names: set[str] = set()
        for child in node.children:
            names |= attributes_of(child)
        return names
    return {node.attribute}


def matches(node: Node, values: dict[str, list[str]]) -> bool:
    """Evaluate against ``values``: lower-cased attribute name -> list of string values."""
    if node.op == "and":
        return all(matches(c, values) for c in node.children)
    if node.op == "or":
        return any(matches(c, values) for c in node.children)
    if node.op == "not":
        return not matches(node.children[0], values)
    found = values.get(node.attribute.lower(), [])
    if node.op == "present":
        return bool(found)
    return any(_match_value(node, v) for v in found)


def _match_value(node: Node, value: str) -> bool:
    if node.op == "ext":
        try:
            number = int(value)
        except ValueError:
            return False
        mask = int(node.value)
        return (number & mask) == mask if node.rule == BITWISE_AND else bool(number & mask)
    if node.op == "substring":
        return _substring(node.parts, value.casefold())
    left, right = _comparable(value), _comparable(node.value)
    if node.op in ("eq", "approx"):
        return left == right
    try:
        return left >= right if node.op == "ge" else left <= right
    except TypeError:  # a number against text: not comparable, so no match
        return False


def _comparable(value: str):
    stripped = value.strip()
    if re.fullmatch(r"-?\d+", stripped):
        return int(stripped)
    return stripped.casefold()


def _substring(parts: list[str], value: str) -> bool:
    parts = [p.casefold() for p in parts]
    initial, *middle, final = parts
    if not value.startswith(initial):
        return False
    pos = len(initial)
    for piece in middle:
        found = value.find(piece, pos)
        if found < 0:
            return False
        pos = found + len(piece)
    return value[pos:].endswith(final) if final else True
