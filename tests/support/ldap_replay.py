# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small LDAP server on 127.0.0.1 that answers as Active Directory does, in real BER (RFC 4511).

For what slapd cannot show and Samba does not do unasked: a group of more than ``max_values``
(AD's MaxValRange, 1500) members read plainly comes back as ``member;range=0-1499`` and no
``member``, and the client must ask for the next ranges; subtree searches from a domain root
return continuation references (``ref:``) to the other partitions. Both backends of ``_ldap.py``
parse these answers with their own code (libldap's, ldap3's), which is the point.

    with ReplayDirectory(entries, schema=[...], references={"dc=corp,dc=example": [url]}) as server:
        server.uri          # ldap://127.0.0.1:PORT
        server.requests     # every search received: Search(base, scope, filter, attributes, paged)

It answers binds (any credentials), paged searches (RFC 2696), base reads, abandon and unbind;
``stall=True`` answers binds but never a search (for receive timeouts). Filters are evaluated for
``&``, ``|``, ``!``, equality, presence and the AD rules 1.2.840.113556.1.4.803 (bit AND) and
1.2.840.113556.1.4.1941 (in chain, on ``memberOf``).
"""

from __future__ import annotations

import re
import socket
import socketserver
import threading
from dataclasses import dataclass

IN_CHAIN = "1.2.840.113556.1.4.1941"
BIT_AND = "1.2.840.113556.1.4.803"
PAGED = "1.2.840.113556.1.4.319"


# -- BER -----------------------------------------------------------------------------------------
def tlv(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + content


def integer(value: int, tag: int = 0x02) -> bytes:
    return tlv(tag, value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big", signed=True))


def octets(value, tag: int = 0x04) -> bytes:
    return tlv(tag, value if isinstance(value, bytes) else str(value).encode("utf-8"))


def read_element(data: bytes, offset: int = 0) -> tuple[int, bytes, int] | None:
    """(tag, content, offset after it), or None when ``data`` does not hold the whole element yet."""
    if len(data) < offset + 2:
        return None
    tag, first = data[offset], data[offset + 1]
    start = offset + 2
    if first & 0x80:
        count = first & 0x7F
        if len(data) < start + count:
            return None
        size = int.from_bytes(data[start : start + count], "big")
        start += count
    else:
        size = first
    if len(data) < start + size:
        return None
    return tag, data[start : start + size], start + size


def children(content: bytes) -> list[tuple[int, bytes]]:
    items, offset = [], 0
    while offset < len(content):
        tag, value, offset = read_element(content, offset)
        items.append((tag, value))
    return items


def decode_filter(tag: int, content: bytes) -> tuple:
    """A filter as a tuple tree: ("and", [...]), ("eq", attr, value), ("present", attr), ("ext", rule, attr, value)."""
    if tag in (0xA0, 0xA1):
        return ("and" if tag == 0xA0 else "or", [decode_filter(t, c) for t, c in children(content)])
    if tag == 0xA2:
        (inner,) = children(content)
        return ("not", decode_filter(*inner))
    if tag == 0x87:
        return ("present", content.decode())
    if tag == 0xA9:
        parts = {t: c.decode() for t, c in children(content)}
        return ("ext", parts.get(0x81, ""), parts.get(0x82, ""), parts.get(0x83, ""))
    if tag == 0xA4:  # substrings: not evaluated here
        return ("other", children(content)[0][1].decode(), "")
    (_t1, attr), (_t2, value) = children(content)[:2]
    return ({0xA3: "eq", 0xA5: "ge", 0xA6: "le", 0xA8: "approx"}.get(tag, "other"), attr.decode(), value.decode())


def filter_text(node: tuple) -> str:
    kind = node[0]
    if kind in ("and", "or"):
        return "(" + ("&" if kind == "and" else "|") + "".join(filter_text(n) for n in node[1]) + ")"
    if kind == "not":
        return f"(!{filter_text(node[1])})"
    if kind == "present":
        return f"({node[1]}=*)"
    if kind == "ext":
        return f"({node[2]}:{node[1]}:={node[3]})"
    return f"({node[1]}={node[2]})"


# -- the directory -------------------------------------------------------------------------------
@dataclass
class Search:
    base: str
    scope: int  # 0 base, 1 one level, 2 subtree
    filter: str
    attributes: list[str]
    paged: tuple[int, bytes] | None
    tree: tuple = ()


def _norm(dn: str) -> str:
    return ",".join(part.strip().lower() for part in dn.split(","))


class ReplayDirectory:
    """Entries (``{dn: {attribute: [str or bytes]}}``) served the way AD serves them."""

    def __init__(self, entries, *, schema=(), references=None, max_values=1500, stall=False):
        self.entries = {dn: {k: [v if isinstance(v, bytes) else str(v).encode() for v in vs] for k, vs in a.items()}
                        for dn, a in entries.items()}  # fmt: skip
        self.schema = list(schema)
        self.references = {_norm(k): v for k, v in (references or {}).items()}
        self._by_key = {_norm(dn): attrs for dn, attrs in self.entries.items()}
        self.max_values = max_values
        self.stall = stall
        self.requests: list[Search] = []
        self._server = None
        self._thread = None

    # -- lifecycle -------------------------------------------------------------------------------
    def __enter__(self):
        directory = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                directory._serve(self.request)

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._server.shutdown()
        self._server.server_close()

    @property
    def uri(self):
        return f"ldap://127.0.0.1:{self._server.server_address[1]}"

    # -- protocol --------------------------------------------------------------------------------
    def _serve(self, sock: socket.socket) -> None:
        buffer = b""
        while True:
            element = read_element(buffer)
            if element is None:
                try:
                    chunk = sock.recv(65536)
                except OSError:
                    return
                if not chunk:
                    return
                buffer += chunk
                continue
            _tag, message, used = element
            buffer = buffer[used:]
            parts = children(message)
            msgid = int.from_bytes(parts[0][1], "big")
            op_tag, op = parts[1]
            controls = children(parts[2][1]) if len(parts) > 2 and parts[2][0] == 0xA0 else []
            if op_tag == 0x42:  # unbind
                return
            if op_tag == 0x60:  # bind
                sock.sendall(self._message(msgid, tlv(0x61, integer(0, 0x0A) + octets("") + octets(""))))
            elif op_tag == 0x63:
                search = self._parse_search(op, controls)
                self.requests.append(search)
                if not self.stall:
                    sock.sendall(b"".join(self._answer(msgid, search)))
            elif op_tag == 0x77:  # extended (StartTLS): not offered
                sock.sendall(self._message(msgid, tlv(0x78, integer(2, 0x0A) + octets("") + octets("no TLS here"))))

    @staticmethod
    def _message(msgid: int, op: bytes, controls: bytes = b"") -> bytes:
        return tlv(0x30, integer(msgid) + op + controls)

    @staticmethod
    def _parse_search(op: bytes, controls) -> Search:
        parts = children(op)
        paged = None
        for _tag, control in controls:
            fields = children(control)
            if fields[0][1].decode() == PAGED:
                value = [c for t, c in fields[1:] if t == 0x04][0]
                size, cookie = children(children(value)[0][1])
                paged = (int.from_bytes(size[1], "big"), cookie[1])
        tree = decode_filter(*parts[6])
        return Search(
            base=parts[0][1].decode(),
            scope=int.from_bytes(parts[1][1], "big"),
            filter=filter_text(tree),
            attributes=[c.decode() for _t, c in children(parts[7][1])],
            paged=paged,
            tree=tree,
        )

    def _answer(self, msgid: int, search: Search):
        base = _norm(search.base)
        if search.base == "":
            found = [("", {"subschemaSubentry": [b"CN=Aggregate,CN=Schema,CN=Configuration,DC=corp,DC=example"]})]
        elif base == "cn=aggregate,cn=schema,cn=configuration,dc=corp,dc=example":
            found = [(search.base, {"attributeTypes": [s.encode() for s in self.schema]})]
        else:
            if search.scope == 0 and base not in self._by_key:
                yield self._done(msgid, 32, "0000208D: NameErr: DSID-03100241, problem 2001 (NO_OBJECT)")
                return
            found = [(dn, attrs) for dn, attrs in self.entries.items() if self._in_scope(dn, base, search.scope)]
            found = [(dn, attrs) for dn, attrs in found if self._matches(search.tree, attrs)]
        start = int(search.paged[1] or b"0") if search.paged else 0
        end = start + search.paged[0] if search.paged else len(found)
        for dn, attrs in found[start:end]:
            yield self._message(msgid, self._entry(dn, attrs, search.attributes))
        more = search.paged is not None and end < len(found)
        if not more and search.scope == 2:
            for url in self.references.get(base, ()):
                yield self._message(msgid, tlv(0x73, octets(url)))
        cookie = str(end).encode() if more else b""
        yield self._done(msgid, 0, "", cookie if search.paged else None)

    def _done(self, msgid: int, code: int, message: str, cookie: bytes | None = None) -> bytes:
        controls = b""
        if cookie is not None:
            value = tlv(0x30, integer(0) + octets(cookie))
            controls = tlv(0xA0, tlv(0x30, octets(PAGED) + octets(value)))
        return self._message(msgid, tlv(0x65, integer(code, 0x0A) + octets("") + octets(message)), controls)

    @staticmethod
    def _in_scope(dn: str, base: str, scope: int) -> bool:
        key = _norm(dn)
        if scope == 0:
            return key == base
        if not key.endswith("," + base):
            return False
        return scope == 2 or key[: -len(base) - 1].count(",") == 0

    def _entry(self, dn: str, attrs: dict, wanted: list[str]) -> bytes:
        """The attributes asked for, with AD's ranged retrieval of multi-valued ones (MaxValRange)."""
        everything = not wanted or "*" in wanted
        out = []
        for name, values in attrs.items():
            asked = [w for w in wanted if w.split(";")[0].lower() == name.lower()]
            if "1.1" in wanted and not asked:
                continue
            if not asked and not everything:
                continue
            option = asked[0].partition(";")[2] if asked else ""
            rng = re.fullmatch(r"(?i)range=(\d+)-(\d+|\*)", option)
            if rng is None and len(values) <= self.max_values:
                out.append((name, values))
                continue
            low = int(rng.group(1)) if rng else 0
            high = len(values) - 1 if not rng or rng.group(2) == "*" else int(rng.group(2))
            high = min(high, low + self.max_values - 1)
            last = high >= len(values) - 1
            out.append((f"{name};range={low}-{'*' if last else high}", values[low : high + 1]))
        body = b"".join(tlv(0x30, octets(n) + tlv(0x31, b"".join(octets(v) for v in vs))) for n, vs in out)
        return tlv(0x64, octets(dn) + tlv(0x30, body))

    def _matches(self, node: tuple, attrs: dict) -> bool:
        kind = node[0]
        if kind == "and":
            return all(self._matches(n, attrs) for n in node[1])
        if kind == "or":
            return any(self._matches(n, attrs) for n in node[1])
        if kind == "not":
            return not self._matches(node[1], attrs)
        values = next((vs for k, vs in attrs.items() if k.lower() == node[1 if kind != "ext" else 2].lower()), [])
        if kind == "present":
            return bool(values)
        if kind == "ext":
            rule, _attr, wanted = node[1:]
            if rule == BIT_AND:
                return any(int(v) & int(wanted) == int(wanted) for v in values)
            if rule == IN_CHAIN:
                return _norm(wanted) in self._groups_in_chain(values)
            return False
        return any(v.decode().lower() == node[2].lower() for v in values)

    def _groups_in_chain(self, member_of: list[bytes]) -> set[str]:
        """The groups an entry is in through ``memberOf``, and the groups those are in, transitively."""
        by_key = self._by_key
        seen: set[str] = set()
        todo = [_norm(v.decode()) for v in member_of]
        while todo:
            key = todo.pop()
            if key in seen:
                continue
            seen.add(key)
            todo += [_norm(v.decode()) for v in by_key.get(key, {}).get("memberOf", [])]
        return seen
