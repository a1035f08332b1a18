# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The directory reader shared by the ``ldap_source`` lookup and the ``*_sync`` modules.

Private to this collection.

One path for both callers: options come in through ``LdapOptions.from_getter`` (a module's
``params.get`` or a plugin's ``get_option``), and ``read_directory`` returns plain records
(``SourceUser`` / ``SourceGroup``). Every search is paged (RFC 2696) and its result code is
checked page by page: a failed read raises, it is never taken as "no entries".

Two backends speak LDAP: python-ldap (the C libldap binding, several times faster) and ldap3
(pure Python, needs no compiler). ``backend: auto`` takes python-ldap when it is importable.
A backend only connects, binds, searches and hands over ``(dn, {attribute: [bytes]})``; the
schema, the decoding of values, ranged retrieval, scope and membership are decided here, once,
so both backends give the same records and the same messages.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import gc
import ipaddress
import os
import re
import socket
import ssl
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.idsync.provisioning.plugins.module_utils import _ldap_filter
from ansible_collections.idsync.provisioning.plugins.module_utils._model import (
    ProvisioningError,
    SourceGroup,
    SourceUser,
)

try:
    import ldap3
    from ldap3.core import exceptions as ldap_exceptions

    HAS_LDAP3 = True
    LDAP3_IMPORT_ERROR = None
except ImportError:
    HAS_LDAP3 = False
    LDAP3_IMPORT_ERROR = traceback.format_exc()

try:
    import ldap as pyldap  # python-ldap
    from ldap.controls import SimplePagedResultsControl

    HAS_PYTHON_LDAP = True
    PYTHON_LDAP_IMPORT_ERROR = None
except ImportError:
    HAS_PYTHON_LDAP = False
    PYTHON_LDAP_IMPORT_ERROR = traceback.format_exc()

PAGED_RESULTS_OID = "1.2.840.113556.1.4.319"
IN_CHAIN = "1.2.840.113556.1.4.1941"  # LDAP_MATCHING_RULE_IN_CHAIN (Active Directory)
BACKENDS = ("auto", "ldap3", "python-ldap")
NESTED_GROUPS_METHODS = ("client", "in_chain")

# Per dialect: the stable id attribute, the disabled rule and the default scope filters.
DIALECTS: dict[str, dict[str, str]] = {
    "ad": {
        "id_attribute": "objectGUID",
        "disabled_filter": f"(userAccountControl:{_ldap_filter.BITWISE_AND}:=2)",
        "user_filter": "(&(objectClass=user)(!(objectClass=computer)))",
        "group_filter": "(objectClass=group)",
    },
    "openldap": {
        "id_attribute": "entryUUID",
        "disabled_filter": "(pwdAccountLockedTime=*)",
        "user_filter": "(objectClass=inetOrgPerson)",
        "group_filter": "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))",
    },
    "389": {
        "id_attribute": "nsUniqueId",
        "disabled_filter": "(nsAccountLock=true)",
        "user_filter": "(objectClass=inetOrgPerson)",
        "group_filter": "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))",
    },
}

# Syntaxes whose values are bytes, not text (RFC 4517 and the AD extensions).
BINARY_SYNTAXES = {
    "1.3.6.1.4.1.1466.115.121.1.4",  # audio
    "1.3.6.1.4.1.1466.115.121.1.5",  # binary
    "1.3.6.1.4.1.1466.115.121.1.8",  # certificate
    "1.3.6.1.4.1.1466.115.121.1.9",  # certificate list
    "1.3.6.1.4.1.1466.115.121.1.10",  # certificate pair
    "1.3.6.1.4.1.1466.115.121.1.23",  # fax
    "1.3.6.1.4.1.1466.115.121.1.28",  # JPEG
    "1.3.6.1.4.1.1466.115.121.1.40",  # octet string (objectGUID, objectSid)
    "1.3.6.1.4.1.1466.115.121.1.49",  # supported algorithm
}
MEMBER_ATTRIBUTES = ("member", "uniqueMember")
_MEMBER_NAMES = {name.lower() for name in MEMBER_ATTRIBUTES}
_GROUP_CLASSES = {"group", "groupofnames", "groupofuniquenames"}

# RFC 4511 result codes by the names the RFC (and ldap3) give them: both backends say the same.
RESULT_NAMES = {
    0: "success",
    1: "operationsError",
    2: "protocolError",
    3: "timeLimitExceeded",
    4: "sizeLimitExceeded",
    7: "authMethodNotSupported",
    8: "strongerAuthRequired",
    10: "referral",
    11: "adminLimitExceeded",
    12: "unavailableCriticalExtension",
    13: "confidentialityRequired",
    14: "saslBindInProgress",
    16: "noSuchAttribute",
    17: "undefinedAttributeType",
    18: "inappropriateMatching",
    19: "constraintViolation",
    21: "invalidAttributeSyntax",
    32: "noSuchObject",
    33: "aliasProblem",
    34: "invalidDNSyntax",
    36: "aliasDereferencingProblem",
    48: "inappropriateAuthentication",
    49: "invalidCredentials",
    50: "insufficientAccessRights",
    51: "busy",
    52: "unavailable",
    53: "unwillingToPerform",
    54: "loopDetected",
    80: "other",
}
_NO_SUCH_OBJECT, _REFERRAL, _INVALID_CREDENTIALS = 32, 10, 49

# The option set shared by the lookup plugin and the modules' ``source`` option.
# (name, argument spec entry); env fallbacks are added for modules by ``source_argument_spec``.
_OPTION_SPEC: dict[str, dict[str, Any]] = {
    "server_uri": {"type": "list", "elements": "str", "required": True},
    "bind_dn": {"type": "str"},
    "bind_pw": {"type": "str", "no_log": True},
    "start_tls": {"type": "bool", "default": False},
    "validate_certs": {"type": "bool", "default": True},
    "ca_path": {"type": "path"},
    "connect_timeout": {"type": "int", "default": 10},
    "receive_timeout": {"type": "int", "default": 120},
    "backend": {"type": "str", "default": "auto", "choices": list(BACKENDS)},
    "dialect": {"type": "str", "default": "openldap", "choices": sorted(DIALECTS)},
    "id_attribute": {"type": "str"},
    "disabled_filter": {"type": "str"},
    "user_base_dn": {"type": "str", "required": True},
    "user_filter": {"type": "str"},
    "user_search_scope": {"type": "str", "default": "subtree", "choices": ["subtree", "onelevel"]},
    "user_groups": {"type": "list", "elements": "str", "default": []},
    "user_attributes": {"type": "list", "elements": "str", "default": ["*"]},
    "group_base_dn": {"type": "str"},
    "group_filter": {"type": "str"},
    "group_search_scope": {"type": "str", "default": "subtree", "choices": ["subtree", "onelevel"]},
    "group_name_attribute": {"type": "str", "default": "cn"},
    "nested_groups": {"type": "bool", "default": False},
    "nested_groups_method": {"type": "str", "default": "client", "choices": list(NESTED_GROUPS_METHODS)},
    "range_size": {"type": "int"},
    "page_size": {"type": "int", "default": 500},
}
ENV_FALLBACKS = {
    "server_uri": "LDAP_SERVER_URI",
    "bind_dn": "LDAP_BIND_DN",
    "bind_pw": "LDAP_BIND_PW",
    "ca_path": "LDAP_CA_PATH",
}


def source_argument_spec(env_fallback: Callable | None = None) -> dict[str, Any]:
    """The ``source`` options as an AnsibleModule argument spec (suboptions of ``source``)."""
    spec: dict[str, Any] = {}
    for name, entry in _OPTION_SPEC.items():
        entry = dict(entry)
        if env_fallback is not None and name in ENV_FALLBACKS:
            entry["fallback"] = (env_fallback, [ENV_FALLBACKS[name]])
            # a value that can come from the environment cannot be required in the spec
            entry.pop("required", None)
        spec[name] = entry
    return spec


def resolve_backend(choice: str | None) -> str:
    """``auto`` is python-ldap when it is importable, else ldap3; the other choices are themselves."""
    if choice in (None, "", "auto"):
        return "python-ldap" if HAS_PYTHON_LDAP else "ldap3"
    return choice


def backend_requirement(choice: str | None) -> tuple[str, bool, str | None]:
    """``(library, importable, import traceback)`` of the backend that ``choice`` selects.

    For a module: ``fail_json(msg=missing_required_lib(library), exception=traceback)`` when not
    importable, as for any other library.
    """
    if resolve_backend(choice) == "python-ldap":
        return "python-ldap", HAS_PYTHON_LDAP, PYTHON_LDAP_IMPORT_ERROR
    return "ldap3", HAS_LDAP3, LDAP3_IMPORT_ERROR


@dataclass
class LdapOptions:
    server_uri: list[str]
    user_base_dn: str
    bind_dn: str | None = None
    bind_pw: str | None = None
    start_tls: bool = False
    validate_certs: bool = True
    ca_path: str | None = None
    connect_timeout: int = 10
    receive_timeout: int = 120
    backend: str = "auto"
    dialect: str = "openldap"
    id_attribute: str = ""
    disabled_filter: str = ""
    user_filter: str = ""
    user_search_scope: str = "subtree"
    user_groups: list[str] = field(default_factory=list)
    user_attributes: list[str] = field(default_factory=lambda: ["*"])
    group_base_dn: str | None = None
    group_filter: str = ""
    group_search_scope: str = "subtree"
    group_name_attribute: str = "cn"
    nested_groups: bool = False
    nested_groups_method: str = "client"
    range_size: int | None = None
    page_size: int = 500

    @classmethod
    def from_getter(cls, get: Callable[[str], Any]) -> LdapOptions:
        """Build from ``module.params.get`` or a plugin's ``get_option``; applies dialect defaults."""
        values = {name: get(name) for name in _OPTION_SPEC}
        values = {k: v for k, v in values.items() if v is not None}
        if isinstance(values.get("server_uri"), str):
            values["server_uri"] = [u.strip() for u in values["server_uri"].split(",") if u.strip()]
        for required in ("server_uri", "user_base_dn"):
            if not values.get(required):
                hint = f" (or set {ENV_FALLBACKS[required]})" if required in ENV_FALLBACKS else ""
                raise ProvisioningError(f"LDAP source option '{required}' is required{hint}")
        options = cls(**values)
        for name, allowed in (
            ("dialect", sorted(DIALECTS)),
            ("backend", BACKENDS),
            ("nested_groups_method", NESTED_GROUPS_METHODS),
        ):
            if getattr(options, name) not in allowed:
                raise ProvisioningError(
                    f"LDAP source option '{name}' must be one of {', '.join(allowed)}, got {getattr(options, name)!r}"
                )
        defaults = DIALECTS[options.dialect]
        for name in ("id_attribute", "disabled_filter", "user_filter", "group_filter"):
            if not getattr(options, name):
                setattr(options, name, defaults[name])
        if options.page_size < 1:
            raise ProvisioningError("LDAP source option 'page_size' must be at least 1")
        if options.range_size is not None and options.range_size < 1:
            raise ProvisioningError("LDAP source option 'range_size' must be at least 1")
        # Other servers ignore an attribute option they do not know (slapd answers member;range=0-999
        # with no member at all): groups would come back empty instead of failing.
        if options.range_size is not None and options.dialect != "ad":
            raise ProvisioningError(
                f"LDAP source option 'range_size' is for Active Directory (dialect: ad), not dialect "
                f"{options.dialect!r}: other servers do not know ranged retrieval and would return no members"
            )
        if options.nested_groups_method == "in_chain" and options.dialect != "ad":
            raise ProvisioningError(
                f"LDAP source option 'nested_groups_method: in_chain' needs Active Directory (dialect: ad), not "
                f"dialect {options.dialect!r}: LDAP_MATCHING_RULE_IN_CHAIN ({IN_CHAIN}) is a rule of AD only"
            )
        return options


@dataclass
class Directory:
    users: list[SourceUser]
    groups: list[SourceGroup]
    # continuation references (search result references) the server returned: not followed, no records
    references: list[str] = field(default_factory=list)
    backend: str = ""
    # (group name or DN, member DN): member values naming no entry in the directory, left out
    missing_members: list[tuple[str, str]] = field(default_factory=list)
    # stable id -> why a user that was read is not in scope (``left scope: not in group X``), so a
    # disable says so rather than "deleted in the directory or out of scope"
    absent_reasons: dict[str, str] = field(default_factory=dict)

    def warnings(self) -> list[str]:
        """What the run should say about the directory's data: one line per member value naming no entry."""
        return [
            # quoted as written, not repr(): a DN's escapes (``\,``) and a name's backslashes stay single
            f"group '{group}': member '{member}' does not exist in the directory (left out)"
            for group, member in self.missing_members
        ]


_DN_SPECIALS = ("\\", "+", '"', ";", "#")
# a DN with none of these needs only lower-casing (most DNs of OpenLDAP and 389-DS)
_PLAIN_DN = re.compile(r'[\\+";#\s]')


def normalize_dn(dn: str) -> str:
    """A comparable form of a DN: types and values lower-cased, escapes resolved.

    ``cn=Smith\\, Janet`` and ``CN=smith\\2c janet`` name the same entry.
    """
    # it runs once per entry and per member: the common cases first, without the parser
    if _PLAIN_DN.search(dn) is None:
        return dn.lower()
    if not any(c in dn for c in _DN_SPECIALS):
        # white space only (AD's CN=Janet Smith,OU=...): strip it around types and values
        rdns = []
        for rdn in dn.lower().split(","):
            attr, sep, value = rdn.partition("=")
            rdns.append(f"{attr.strip()}{sep}{value.strip()}")
        return ",".join(rdns)
    rdns = []
    for rdn in _split_dn(dn):
        avas = []
        for ava in rdn:
            attr, _sep, value = ava.partition("=")
            value = value.strip()
            if len(value) > 1 and value.startswith('"') and value.endswith('"'):
                value = value[1:-1]  # RFC 2253 quoting
            avas.append(f"{attr.strip().lower()}={_unescape_dn_value(value).strip().lower()}")
        rdns.append("+".join(sorted(avas)))
    return ",".join(rdns)


def _split_dn(dn: str) -> list[list[str]]:
    """RDNs of ``dn``, each a list of its ``type=value`` parts (still escaped), split at unescaped ``,;+``."""
    rdns: list[list[str]] = []
    avas: list[str] = []
    current: list[str] = []
    quoted = False
    i = 0
    while i < len(dn):
        char = dn[i]
        if char == "\\" and i + 1 < len(dn):
            current.append(dn[i : i + 2])
            i += 2
            continue
        if char == '"':
            quoted = not quoted
        elif not quoted and char in ",;+":
            avas.append("".join(current))
            current = []
            if char != "+":
                rdns.append(avas)
                avas = []
            i += 1
            continue
        current.append(char)
        i += 1
    avas.append("".join(current))
    rdns.append(avas)
    return rdns


def _unescape_dn_value(value: str) -> str:
    out = bytearray()
    raw = value.encode("utf-8")
    i = 0
    while i < len(raw):
        char = raw[i : i + 1]
        if char == b"\\" and i + 1 < len(raw):
            pair = raw[i + 1 : i + 3]
            if len(pair) == 2 and all(c in b"0123456789abcdefABCDEF" for c in pair):
                out.append(int(pair, 16))
                i += 3
                continue
            out += raw[i + 1 : i + 2]
            i += 2
            continue
        out += char
        i += 1
    return out.decode("utf-8", errors="replace")


def _validated_filter(option: str, text: str, evaluable: bool = False) -> _ldap_filter.Node:
    try:
        return _ldap_filter.parse(text, evaluable)
    except _ldap_filter.FilterError as exc:
        raise ProvisioningError(f"LDAP source option '{option}' is not a valid LDAP filter ({text!r}): {exc}") from None


# -- the schema ---------------------------------------------------------------------------------
_SCHEMA_TOKEN = re.compile(r"'((?:[^'\\]|\\.)*)'|([()])|([^\s()']+)")


def parse_attribute_types(descriptions: list[str]) -> dict[str, tuple[str, bool, bool]]:
    """``attributeTypes`` values (RFC 4512) -> lower-cased name or OID -> (primary name, binary, single-valued).

    The syntax is inherited through ``SUP`` (``cn SUP name``); AD quotes its SYNTAX OIDs, and a
    syntax may carry a length (``{64}``): both are read.
    """
    parsed: dict[str, dict[str, Any]] = {}
    for text in descriptions:
        tokens = [
            (m.group(1), True) if m.group(1) is not None else (m.group(2) or m.group(3), False)
            for m in _SCHEMA_TOKEN.finditer(text)
        ]
        if len(tokens) < 2 or tokens[0][0] != "(":
            continue
        info: dict[str, Any] = {"oid": tokens[1][0], "names": [], "syntax": None, "sup": None, "single": False}
        i = 2
        while i < len(tokens):
            word, quoted = tokens[i]
            if quoted:
                i += 1
                continue
            if word in ("NAME", "SYNTAX", "SUP"):
                args, i = _schema_argument(tokens, i + 1)
                if word == "NAME":
                    info["names"] = args
                elif args:
                    info["syntax" if word == "SYNTAX" else "sup"] = args[0].split("{", 1)[0].strip()
                continue
            if word == "SINGLE-VALUE":
                info["single"] = True
            i += 1
        for key in [info["oid"], *info["names"]]:
            parsed[key.lower()] = info

    def syntax_of(info: dict[str, Any]) -> str | None:
        seen = 0
        while info["syntax"] is None and info["sup"] and seen < 16:
            parent = parsed.get(info["sup"].lower())
            if parent is None:
                break
            info, seen = parent, seen + 1
        return info["syntax"]

    return {
        key: (info["names"][0] if info["names"] else info["oid"], syntax_of(info) in BINARY_SYNTAXES, info["single"])
        for key, info in parsed.items()
    }


def _schema_argument(tokens: list[tuple[str, bool]], i: int) -> tuple[list[str], int]:
    """The value after a keyword: one token, or a parenthesised list (``( 'cn' 'commonName' )``)."""
    if i >= len(tokens):
        return [], i
    if tokens[i] == ("(", False):
        values = []
        i += 1
        while i < len(tokens) and tokens[i] != (")", False):
            if tokens[i][0] != "$":
                values.append(tokens[i][0])
            i += 1
        return values, i + 1
    return [tokens[i][0]], i + 1


# -- what the server says, in the same words from both backends ---------------------------------
def _code_text(code: int | None, message: str | None = None) -> str:
    """``strongerAuthRequired (00002028: LdapErr: ...)``: the RFC 4511 name and the server's text."""
    name = RESULT_NAMES.get(code, f"result {code}") if code is not None else "unknown error"
    message = (message or "").strip()
    return f"{name} ({message})" if message else name


class _ConnectionTrouble(ProvisioningError):
    """The server stopped answering, or the connection broke: nothing more can be read from it."""


def _no_answer(uri: str, seconds: float, what: str) -> str:
    return (
        f"no answer from {uri} within {seconds} s to the {what}: the server is overloaded or the search too wide; "
        "raise receive_timeout or narrow the search"
    )


def _read_what(dn: str) -> str:
    return f"read of {dn!r}" if dn else "read of the root DSE"


def _search_failure(code: int | None, message: str, refs: list[str], base: str, option: str, filterstr: str, uri: str):
    if code == _NO_SUCH_OBJECT:
        return ProvisioningError(f"{option} {base!r} does not exist on {uri} (noSuchObject)")
    if code == _REFERRAL:
        where = ", ".join(refs) or "another server"
        return ProvisioningError(
            f"{option} {base!r} is not held by {uri}: the server refers the search to {where}; referrals are not "
            f"followed: point {option} at a naming context that this server holds"
        )
    name = RESULT_NAMES.get(code, f"result {code}") if code is not None else "unknown error"
    return ProvisioningError(
        f"LDAP search of {base!r} ({option}) with filter {filterstr!r} failed: {name} {message or ''}".rstrip()
    )


def _check_ca_path(path: str | None) -> None:
    """A ``ca_path`` that names no PEM file of CA certificates fails before any connection."""
    if not path:
        return
    try:
        if not os.path.isfile(path):
            raise OSError(errno.ENOENT, "no such file")
        ssl.create_default_context(cafile=path)
    except (ssl.SSLError, OSError, ValueError):
        raise ProvisioningError(f"LDAP source option 'ca_path' ({path!r}): invalid CA public key file") from None


def _trust_store_file() -> tuple[str | None, str | None]:
    """(CA file, CA directory) of the system trust store, as Python's ssl finds it."""
    paths = ssl.get_default_verify_paths()
    if paths.cafile:
        return paths.cafile, None
    return None, paths.capath if paths.capath and os.path.isdir(paths.capath) else None


@contextlib.contextmanager
def _collector_paused():
    """No cyclic garbage collection while records are built.

    The records hold no cycles, but each of the millions of lists and dicts made during a large
    read counts towards the collector's thresholds, and every full collection walks all records
    made so far: measured at 100k entries, that is half of the read's time.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# -- the backends ---------------------------------------------------------------------------------
# A backend connects, binds and searches; it hands over entries as ``(dn, {attribute: [bytes]})``
# and counts continuation references in ``references``. Everything else is the reader's.
Entry = tuple[str, dict[str, list[bytes]]]


class _Unreachable(Exception):
    """This server could not be reached; the next one is tried."""


class _Backend:
    """What the reader asks of a library: ``open`` (connect and bind, or raise ``_Unreachable`` for
    the next server), ``search`` (a paged search, every page's result checked), ``read`` (one entry
    by DN, None when it does not exist) and ``close``; failures in the same words from both."""

    name = ""

    def __init__(self, options: LdapOptions, references: list[str]):
        self.options = options
        self.references = references
        self.uri = ""
        self.connection: Any = None

    def who(self) -> str:
        return f"as {self.options.bind_dn!r}" if self.options.bind_dn else "anonymously"

    def bind_invalid(self, message: str | None) -> ProvisioningError:
        message = (message or "").strip()
        return ProvisioningError(
            LDAP_BIND_INVALID.format(
                bind_dn=self.options.bind_dn or "", server=self.uri, detail=f", {message}" if message else ""
            )
        )

    def lost(self, what: str, detail: str) -> ProvisioningError:
        return _ConnectionTrouble(f"LDAP {what} on {self.uri} failed: the connection was lost ({detail})")

    def open(self, uri: str, host: str, port: int, use_ssl: bool) -> None:
        raise NotImplementedError

    def search(self, base: str, filterstr: str, scope: str, attributes: list[str], option: str) -> Iterator[Entry]:
        raise NotImplementedError

    def read(self, dn: str, attributes: list[str], filterstr: str = "(objectClass=*)") -> Entry | None:
        raise NotImplementedError

    def close(self) -> None:
        """Unbind (both libraries name it so) and drop the connection."""
        if self.connection is not None:
            with contextlib.suppress(Exception):  # closing a broken connection must not hide the real error
                self.connection.unbind()
            self.connection = None


class _Ldap3Backend(_Backend):
    """ldap3: pure Python, installs anywhere."""

    name = "ldap3"

    def open(self, uri: str, host: str, port: int, use_ssl: bool) -> None:
        options = self.options
        self.uri = uri
        tls = None
        if use_ssl or options.start_tls:
            tls = ldap3.Tls(
                validate=ssl.CERT_REQUIRED if options.validate_certs else ssl.CERT_NONE,
                ca_certs_file=options.ca_path,
                version=ssl.PROTOCOL_TLS_CLIENT,
            )
        server = ldap3.Server(
            host, port=port, use_ssl=use_ssl, tls=tls, get_info=ldap3.NONE, connect_timeout=options.connect_timeout
        )
        connection = ldap3.Connection(
            server,
            user=options.bind_dn or None,
            password=options.bind_pw or None,
            auto_bind=ldap3.AUTO_BIND_NONE,
            receive_timeout=options.receive_timeout,
            read_only=True,
            auto_referrals=False,
            auto_range=False,  # ranged retrieval is the reader's, the same for both backends
            # no empty lists for attributes asked for and not returned (ldap3 also trips on them with ranges)
            return_empty_attributes=False,
            raise_exceptions=False,
            # the reader decodes raw values itself, from the schema it reads
            check_names=False,
        )

        def failure(exc: Exception) -> str:
            return describe_connection_failure(exc, host, port, options.connect_timeout)

        try:
            connection.open()
        except ldap_exceptions.LDAPException as exc:
            raise _Unreachable(failure(exc)) from None
        try:
            if options.start_tls and not use_ssl and not connection.start_tls():
                result = connection.result or {}
                raise ProvisioningError(
                    f"StartTLS with {uri} failed: {_code_text(result.get('result'), result.get('message'))}"
                )
            if not connection.bind():
                result = connection.result or {}
                if result.get("result") == _INVALID_CREDENTIALS:
                    raise self.bind_invalid(result.get("message"))
                raise ProvisioningError(
                    f"LDAP bind {self.who()} to {uri} failed: {_code_text(result.get('result'), result.get('message'))}"
                )
        except ldap_exceptions.LDAPStartTLSError as exc:
            reason = failure(exc)
            if reason.startswith(_GENERIC_PREFIX):
                reason = f"StartTLS with {uri} failed: {_exception_text(exc)}"
            raise ProvisioningError(reason) from None
        except ldap_exceptions.LDAPSocketOpenError as exc:
            raise _Unreachable(failure(exc)) from None
        except ldap_exceptions.LDAPException as exc:
            if "timed out" in _exception_text(exc):
                raise _Unreachable(_no_answer(uri, options.receive_timeout, f"bind {self.who()}")) from None
            raise ProvisioningError(f"LDAP bind {self.who()} to {uri} failed: {type(exc).__name__}") from None
        self.connection = connection

    def _failed(self, exc: Exception, what: str) -> ProvisioningError:
        text = _exception_text(exc)
        if "timed out" in text:
            return _ConnectionTrouble(_no_answer(self.uri, self.options.receive_timeout, what))
        return self.lost(what, f"{type(exc).__name__}: {text}")

    def search(self, base: str, filterstr: str, scope: str, attributes: list[str], option: str) -> Iterator[Entry]:
        connection = self.connection
        ldap_scope = {"subtree": ldap3.SUBTREE, "onelevel": ldap3.LEVEL, "base": ldap3.BASE}[scope]
        cookie = None
        while True:
            try:
                connection.search(
                    base,
                    filterstr,
                    search_scope=ldap_scope,
                    dereference_aliases=ldap3.DEREF_NEVER,
                    attributes=attributes,
                    paged_size=self.options.page_size,
                    paged_cookie=cookie,
                )
            except ldap_exceptions.LDAPInvalidFilterError as exc:
                raise ProvisioningError(f"{option}: the filter {filterstr!r} was refused: {exc}") from None
            except ldap_exceptions.LDAPException as exc:
                raise self._failed(exc, f"search of {base!r} ({option})") from None
            result = connection.result or {}
            if result.get("result") != 0:
                raise _search_failure(
                    result.get("result"),
                    result.get("message"),
                    result.get("referrals") or [],
                    base,
                    option,
                    filterstr,
                    self.uri,
                )
            for entry in connection.response or ():
                kind = entry.get("type")
                if kind == "searchResEntry":
                    yield entry["dn"], entry["raw_attributes"]
                elif kind == "searchResRef":
                    self.references.extend(entry.get("uri") or ())
            controls = result.get("controls") or {}
            cookie = controls.get(PAGED_RESULTS_OID, {}).get("value", {}).get("cookie")
            if not cookie:
                return

    def read(self, dn: str, attributes: list[str], filterstr: str = "(objectClass=*)") -> Entry | None:
        connection = self.connection
        try:
            connection.search(
                dn, filterstr, search_scope=ldap3.BASE, dereference_aliases=ldap3.DEREF_NEVER, attributes=attributes
            )
        except ldap_exceptions.LDAPException as exc:
            raise self._failed(exc, _read_what(dn)) from None
        result = connection.result or {}
        code = result.get("result")
        if code in (_NO_SUCH_OBJECT, _REFERRAL):
            self.references.extend(result.get("referrals") or ())
            return None
        if code != 0:
            raise ProvisioningError(f"LDAP read of {dn!r} failed: {_code_text(code, result.get('message'))}")
        for entry in connection.response or ():
            if entry.get("type") == "searchResEntry":
                return entry["dn"], entry["raw_attributes"]
            if entry.get("type") == "searchResRef":
                self.references.extend(entry.get("uri") or ())
        return None


def _pyldap_info(exc: Exception) -> dict[str, Any]:
    """python-ldap's error dict: ``result``, ``desc``, ``info``, ``errno``, ``matched``."""
    return exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {"desc": str(exc)}


def _referrals_in(info: dict[str, Any]) -> list[str]:
    """python-ldap puts a referral's URLs into ``info``: ``Referral:\\nldap://...``."""
    return [line.strip() for line in str(info.get("info") or "").splitlines() if "://" in line]


class _PythonLdapBackend(_Backend):
    """python-ldap: libldap's C speed; needs a compiler and libldap to install."""

    name = "python-ldap"

    def open(self, uri: str, host: str, port: int, use_ssl: bool) -> None:
        options = self.options
        self.uri = uri
        address = f"[{host}]" if ":" in host else host
        connection = pyldap.initialize(f"{'ldaps' if use_ssl else 'ldap'}://{address}:{port}")
        connection.set_option(pyldap.OPT_PROTOCOL_VERSION, 3)
        connection.set_option(pyldap.OPT_REFERRALS, 0)  # never chase a referral (libldap would, anonymously)
        connection.set_option(pyldap.OPT_DEREF, pyldap.DEREF_NEVER)
        connection.set_option(pyldap.OPT_NETWORK_TIMEOUT, float(options.connect_timeout))
        connection.set_option(pyldap.OPT_TIMEOUT, float(options.receive_timeout))
        connection.timeout = options.receive_timeout  # python-ldap's *_s calls wait this long
        if use_ssl or options.start_tls:
            # every TLS setting explicit: nothing from ldap.conf or LDAPTLS_* may weaken verification
            connection.set_option(
                pyldap.OPT_X_TLS_REQUIRE_CERT,
                pyldap.OPT_X_TLS_DEMAND if options.validate_certs else pyldap.OPT_X_TLS_NEVER,
            )
            cafile, cadir = (options.ca_path, None) if options.ca_path else _trust_store_file()
            if cafile:
                connection.set_option(pyldap.OPT_X_TLS_CACERTFILE, cafile)
            elif cadir:
                connection.set_option(pyldap.OPT_X_TLS_CACERTDIR, cadir)
            connection.set_option(pyldap.OPT_X_TLS_PROTOCOL_MIN, pyldap.OPT_X_TLS_PROTOCOL_TLS1_2)
            connection.set_option(pyldap.OPT_X_TLS_NEWCTX, 0)
        self.connection = connection
        what = f"bind {self.who()}"
        try:
            if options.start_tls and not use_ssl:
                what = "StartTLS request"
                connection.start_tls_s()
                what = f"bind {self.who()}"
            connection.simple_bind_s(options.bind_dn or "", options.bind_pw or "")
        except pyldap.INVALID_CREDENTIALS as exc:
            raise self.bind_invalid(_pyldap_info(exc).get("info")) from None
        except (pyldap.SERVER_DOWN, pyldap.CONNECT_ERROR) as exc:
            kind, message = self._connect_failure(exc, host, port, use_ssl, what == "StartTLS request")
            if what == "StartTLS request" and kind != "tcp":
                raise ProvisioningError(message) from None  # as with ldap3: a TLS failure after StartTLS stops
            raise _Unreachable(message) from None
        except pyldap.TIMEOUT:
            raise _Unreachable(_no_answer(uri, options.receive_timeout, what)) from None
        except pyldap.LDAPError as exc:
            info = _pyldap_info(exc)
            text = _code_text(info.get("result"), info.get("info"))
            if what == "StartTLS request":
                raise ProvisioningError(f"StartTLS with {uri} failed: {text}") from None
            raise ProvisioningError(f"LDAP bind {self.who()} to {uri} failed: {text}") from None

    def _connect_failure(self, exc: Exception, host: str, port: int, use_ssl: bool, start_tls: bool) -> tuple[str, str]:
        """libldap says little ("Can't contact LDAP server", "(unknown error code)"): ask Python's socket and
        ssl the same question, for the same message as ldap3 gives."""
        options = self.options
        info = _pyldap_info(exc)
        if info.get("errno") == errno.ETIMEDOUT:  # asking again would only wait as long once more
            return "tcp", LDAP_CONNECT_TIMEOUT.format(host=host, port=port, seconds=options.connect_timeout)
        found = probe_connection(
            host,
            port,
            use_ssl=use_ssl,
            start_tls=start_tls,
            validate=options.validate_certs,
            ca_path=options.ca_path,
            timeout=options.connect_timeout,
            uri=self.uri,
        )
        if found is not None:
            return found
        reason = info.get("info") or info.get("desc") or type(exc).__name__
        if use_ssl or start_tls:
            return "tls", LDAP_TLS_FAILED.format(host=host, port=port, reason=f"libldap: {reason}")
        return "tcp", LDAP_CONNECT_FAILED.format(host=host, port=port, reason=reason)

    def _failed(self, exc: Exception, what: str) -> ProvisioningError:
        if isinstance(exc, pyldap.TIMEOUT):
            return _ConnectionTrouble(_no_answer(self.uri, self.options.receive_timeout, what))
        info = _pyldap_info(exc)
        return self.lost(what, str(info.get("info") or info.get("desc") or type(exc).__name__))

    def search(self, base: str, filterstr: str, scope: str, attributes: list[str], option: str) -> Iterator[Entry]:
        connection = self.connection
        ldap_scope = {"subtree": pyldap.SCOPE_SUBTREE, "onelevel": pyldap.SCOPE_ONELEVEL, "base": pyldap.SCOPE_BASE}[
            scope
        ]
        control = SimplePagedResultsControl(False, size=self.options.page_size, cookie=b"")
        timeout = self.options.receive_timeout
        while True:
            msgid = None
            try:
                msgid = connection.search_ext(base, ldap_scope, filterstr, attributes, serverctrls=[control])
                # a whole page at once: one call into C per page, not one per entry
                _kind, data, _msgid, controls = connection.result3(msgid, all=1, timeout=timeout)
            except pyldap.FILTER_ERROR:
                raise ProvisioningError(f"{option}: the filter {filterstr!r} was refused: bad search filter") from None
            except (pyldap.TIMEOUT, pyldap.SERVER_DOWN, pyldap.CONNECT_ERROR) as exc:
                if msgid is not None:
                    with contextlib.suppress(Exception):
                        connection.abandon_ext(msgid)
                raise self._failed(exc, f"search of {base!r} ({option})") from None
            except pyldap.LDAPError as exc:
                info = _pyldap_info(exc)
                raise _search_failure(
                    info.get("result"), info.get("info"), _referrals_in(info), base, option, filterstr, self.uri
                ) from None
            for dn, attributes_or_urls in data:
                if dn is None:  # a continuation reference: its URLs, no entry
                    self.references.extend(attributes_or_urls)
                else:
                    yield dn, attributes_or_urls
            cookie = next((c.cookie for c in controls if c.controlType == PAGED_RESULTS_OID), None)
            if not cookie:
                return
            control.cookie = cookie

    def read(self, dn: str, attributes: list[str], filterstr: str = "(objectClass=*)") -> Entry | None:
        try:
            found = self.connection.search_ext_s(
                dn, pyldap.SCOPE_BASE, filterstr, attributes, timeout=self.options.receive_timeout
            )
        except pyldap.NO_SUCH_OBJECT:
            return None
        except pyldap.REFERRAL as exc:
            self.references.extend(_referrals_in(_pyldap_info(exc)))
            return None
        except (pyldap.TIMEOUT, pyldap.SERVER_DOWN, pyldap.CONNECT_ERROR) as exc:
            raise self._failed(exc, _read_what(dn)) from None
        except pyldap.LDAPError as exc:
            info = _pyldap_info(exc)
            raise ProvisioningError(
                f"LDAP read of {dn!r} failed: {_code_text(info.get('result'), info.get('info'))}"
            ) from None
        for entry_dn, attributes_or_urls in found:
            if entry_dn is not None:
                return entry_dn, attributes_or_urls
            self.references.extend(attributes_or_urls)
        return None


_BACKEND_CLASSES = {"ldap3": _Ldap3Backend, "python-ldap": _PythonLdapBackend}


# -- the reader ----------------------------------------------------------------------------------
# How the values of an attribute are decoded (decided once per attribute name and read).
_TEXT, _BINARY, _ID = 0, 1, 2


class LdapReader:
    """One bound connection (on either backend) and the searches that build the records."""

    def __init__(self, options: LdapOptions):
        library, present, _traceback = backend_requirement(options.backend)
        if not present:
            chosen = (
                "backend / source.backend: auto, which takes python-ldap when it is importable, else ldap3"
                if options.backend == "auto"
                else f"backend / source.backend: {options.backend}"
            )
            raise ProvisioningError(missing_required_lib(library, reason=f"to read the directory ({chosen})"))
        self.backend_name = resolve_backend(options.backend)
        self.options = options
        self.user_filter = options.user_filter
        self.group_filter = options.group_filter
        _validated_filter("user_filter", options.user_filter)
        _validated_filter("group_filter", options.group_filter)
        self.disabled_rule = _validated_filter("disabled_filter", options.disabled_filter, evaluable=True)
        self._rule_attributes = {name.lower() for name in _ldap_filter.attributes_of(self.disabled_rule)}
        self.backend: _Backend | None = None
        self.server_uri = ""
        self.references: list[str] = []
        self._schema: dict[str, tuple[str, bool, bool]] | None = None
        self._infos: dict[str, tuple[str, int, bool, str | None]] = {}
        self._id_lower = options.id_attribute.lower()
        self._id_binary = False
        size = options.range_size
        self._member_request = [f"member;range=0-{size - 1}" if size else "member", "uniqueMember"]
        self._in_chain = options.nested_groups and options.nested_groups_method == "in_chain"
        self._in_chain_cache: dict[str, set[str]] = {}
        self._known_users: set[str] = set()
        self._non_groups: set[str] = set()
        # normalised DNs of member values a base read found no entry for
        self._missing: set[str] = set()

    # -- connection --------------------------------------------------------------------
    def __enter__(self) -> LdapReader:
        self.connect()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        if self.backend is not None:
            self.backend.close()
            self.backend = None

    def connect(self) -> None:
        """Bind to the first server that answers, in the order given (failover)."""
        options = self.options
        if options.bind_dn and not options.bind_pw:
            raise ProvisioningError(
                LDAP_BIND_NO_PASSWORD.format(bind_dn=options.bind_dn, server=", ".join(options.server_uri))
            )
        failures = []
        for uri in options.server_uri:
            host, port, use_ssl = _parse_uri(uri)
            if use_ssl or options.start_tls:
                _check_ca_path(options.ca_path)
            backend = _BACKEND_CLASSES[self.backend_name](options, self.references)
            try:
                backend.open(uri, host, port, use_ssl)
            except _Unreachable as exc:
                backend.close()
                failures.append(str(exc))
                continue
            except BaseException:
                backend.close()
                raise
            self.backend, self.server_uri = backend, uri
            self._load_schema()
            return
        if len(failures) == 1:
            raise ProvisioningError(failures[0])
        raise ProvisioningError(LDAP_SERVERS_UNREACHABLE.format(count=len(failures), reasons="; ".join(failures)))

    # -- schema ------------------------------------------------------------------------
    def _load_schema(self) -> None:
        """The attribute types of the server's subschema: names, binary syntaxes, SINGLE-VALUE.

        Without read access to the schema every attribute is multi-valued text (see the docs).
        """
        schema: dict[str, tuple[str, bool, bool]] = {}
        try:
            root = self.backend.read("", ["subschemaSubentry"])
            where = _values(root[1], "subschemaSubentry") if root else []
            entry = (
                self.backend.read(where[0].decode("utf-8"), ["attributeTypes"], "(objectClass=subschema)")
                if where
                else None
            )
            if entry is not None:
                schema = parse_attribute_types(
                    [v.decode("utf-8", "replace") for v in _values(entry[1], "attributeTypes")]
                )
        except _ConnectionTrouble:
            raise
        except ProvisioningError:  # no access to the schema: see the docs
            schema = {}
        self._schema = schema
        self._infos = {}
        known = schema.get(self._id_lower)
        self._id_binary = bool(known and known[1])

    def _info(self, name: str) -> tuple[str, int, bool, str | None]:
        """(key in the record, how to decode, single-valued, key for the disabled rule) of an attribute
        as the server named it; cached, because the schema lookups cost more than the values."""
        base_name = name.split(";", 1)[0]
        lowered = base_name.lower()
        known = (self._schema or {}).get(lowered)
        if lowered == self._id_lower:
            kind = _ID
        elif (known is not None and known[1]) or ";binary" in name.lower():
            kind = _BINARY
        else:
            kind = _TEXT
        info = (
            known[0] if known is not None else base_name,
            kind,
            bool(known is not None and known[2]),
            lowered if lowered in self._rule_attributes else None,
        )
        self._infos[name] = info
        return info

    # -- values ------------------------------------------------------------------------
    def _user(self, dn: str, raw: dict[str, list[bytes]]) -> SourceUser:
        """One user record. The inner loop of a large read: one pass over the attributes."""
        infos = self._infos
        attributes: dict[str, Any] = {}
        rule_values: dict[str, list[str]] = {}
        ident = None
        for name, values in raw.items():
            if not values:
                continue
            info = infos.get(name)
            if info is None:
                info = self._info(name)
            key, kind, single, rule_key = info
            if kind == _TEXT:
                try:
                    value = values[0].decode() if single else list(map(bytes.decode, values))
                except UnicodeDecodeError:
                    value = [_text_or_base64(v) for v in values]
                    if single:
                        value = value[0]
            elif kind == _ID:
                value = [self._render_id(v) for v in values]
                if ident is None:
                    ident = value[0]
                if single:
                    value = value[0]
            else:
                value = [base64.b64encode(v).decode("ascii") for v in values]
                if single:
                    value = value[0]
            attributes[key] = value
            if rule_key is not None:
                rule_values[rule_key] = _texts(values)
        if ident is None:
            raise self._missing_id(dn)
        return SourceUser(
            id=ident, dn=dn, disabled=_ldap_filter.matches(self.disabled_rule, rule_values), attributes=attributes
        )

    def _missing_id(self, dn: str) -> ProvisioningError:
        return ProvisioningError(
            f"entry {dn!r} has no {self.options.id_attribute} (the stable id); check the "
            "'id_attribute' option and that the bind account may read that attribute"
        )

    def _stable_id(self, dn: str, raw: dict[str, list[bytes]]) -> str:
        values = _values(raw, self.options.id_attribute)
        if not values:
            raise self._missing_id(dn)
        return self._render_id(values[0])

    def _render_id(self, value: bytes) -> str:
        """objectGUID as Windows writes it (mixed-endian); text ids (entryUUID, nsUniqueId) as they are."""
        if not self._id_binary:
            try:
                return value.decode("utf-8")
            except UnicodeDecodeError:
                pass  # binary after all (the schema did not say so, or could not be read)
        return str(uuid.UUID(bytes_le=value)) if len(value) == 16 else base64.b64encode(value).decode("ascii")

    # -- scope -------------------------------------------------------------------------
    def _user_attribute_list(self) -> list[str]:
        wanted = list(self.options.user_attributes) or ["*"]
        # operational attributes (entryUUID, pwdAccountLockedTime) come only when named
        extra = {self.options.id_attribute} | _ldap_filter.attributes_of(self.disabled_rule)
        return wanted + sorted(extra - set(wanted))

    def read_groups(self) -> list[dict]:
        """Groups in the group scope with their raw member DNs (unresolved)."""
        if not self.options.group_base_dn:
            return []
        name_attr = self.options.group_name_attribute
        # with in_chain the server resolves membership: the groups' own member values are not needed
        attributes = [name_attr, self.options.id_attribute, *([] if self._in_chain else self._member_request)]
        groups = []
        for dn, raw in self.backend.search(
            self.options.group_base_dn, self.group_filter, self.options.group_search_scope, attributes, "group_base_dn"
        ):
            names = _values(raw, name_attr)
            if not names:
                raise ProvisioningError(f"group {dn!r} has no {name_attr} (group_name_attribute)")
            groups.append(
                {
                    "id": self._stable_id(dn, raw),
                    "dn": dn,
                    "name": names[0].decode("utf-8"),
                    "member_dns": self._member_dns(dn, raw),
                }
            )
        return groups

    def _member_dns(self, dn: str, raw: dict[str, list[bytes]]) -> list[str]:
        """Member DNs, following AD's ranged retrieval (``member;range=0-1499``) to the end."""
        members: list[str] = []
        for key, values in raw.items():
            base_name, _sep, option = key.partition(";")
            # an attribute without values counts as absent (ldap3 lists every requested name, python-ldap not)
            if not values or base_name.lower() not in _MEMBER_NAMES:
                continue
            members.extend(_strip_unique_id(v.decode("utf-8")) for v in values)
            if option.lower().startswith("range="):
                members.extend(self._remaining_range(dn, base_name, option))
        return members

    def _remaining_range(self, dn: str, attribute: str, option: str) -> list[str]:
        """The values after ``attribute;range=0-N``: ask ``N+1-*`` (or ``N+1-(N+range_size)``) until ``*``."""
        values: list[str] = []
        upper = _range_bounds(dn, attribute, option)[1]
        size = self.options.range_size
        while upper != "*":
            start = int(upper) + 1
            wanted = f"{attribute};range={start}-{start + size - 1 if size else '*'}"
            entry = self.backend.read(dn, [wanted])
            if entry is None:
                raise ProvisioningError(f"group {dn!r} disappeared while its members were read")
            page = [
                (key, chunk)
                for key, chunk in entry[1].items()
                if chunk and key.lower().startswith(attribute.lower() + ";range=")
            ]
            if not page:
                raise ProvisioningError(f"group {dn!r}: the server ended ranged retrieval of {attribute} early")
            key, chunk = page[0]
            lower, upper = _range_bounds(dn, attribute, key.split(";", 1)[1])
            if lower != str(start):
                raise ProvisioningError(
                    f"group {dn!r}: asked for the values of {attribute} from {start}, the server answered {key}"
                )
            values.extend(_strip_unique_id(v.decode("utf-8")) for v in chunk)
        return values

    def _in_chain_members(self, group_dn: str) -> set[str]:
        """Normalised DNs of the users in scope that are members of ``group_dn``, directly or through
        nested groups, as the server resolves it (LDAP_MATCHING_RULE_IN_CHAIN): one search per group."""
        key = normalize_dn(group_dn)
        if key not in self._in_chain_cache:
            filterstr = (
                f"(&{_parenthesised(self.user_filter)}(memberOf:{IN_CHAIN}:={_ldap_filter.escape_value(group_dn)}))"
            )
            self._in_chain_cache[key] = {
                normalize_dn(dn)
                for dn, _raw in self.backend.search(
                    self.options.user_base_dn, filterstr, self.options.user_search_scope, ["1.1"], "user_base_dn"
                )
            }
        return self._in_chain_cache[key]

    def _expand_members(self, member_dns: list[str], groups_by_dn: dict[str, dict], seen: set[str]) -> set[str]:
        """Normalised DNs of the non-group members, descending into nested groups when asked."""
        result: set[str] = set()
        for dn in member_dns:
            key = normalize_dn(dn)
            group = groups_by_dn.get(key)
            if group is None and self.options.nested_groups and key not in self._known_users:
                group = self._group_outside_scope(dn, groups_by_dn)
            if group is None:
                result.add(key)
            elif self.options.nested_groups and key not in seen:
                seen.add(key)
                result |= self._expand_members(group["member_dns"], groups_by_dn, seen)
        return result

    def _group_outside_scope(self, dn: str, groups_by_dn: dict[str, dict]) -> dict | None:
        """A nested member that is not a user in scope may be a group outside the group scope."""
        key = normalize_dn(dn)
        if key in self._non_groups:
            return None
        referred = len(self.references)
        entry = self.backend.read(dn, ["objectClass", *self._member_request])
        if entry is None and len(self.references) == referred:
            # no such object (a referral elsewhere is counted in references, not taken for missing)
            self._missing.add(key)
        classes = {v.decode("utf-8").lower() for v in _values(entry[1], "objectClass")} if entry else set()
        if not classes & _GROUP_CLASSES:
            self._non_groups.add(key)
            return None
        group = {"dn": dn, "member_dns": self._member_dns(dn, entry[1])}
        groups_by_dn[key] = group
        return group

    def read(self) -> Directory:
        with _collector_paused():
            return self._read()

    def _read(self) -> Directory:
        self._known_users = set()
        self._non_groups = set()
        self._missing = set()
        raw_groups = self.read_groups()
        groups_by_dn = {normalize_dn(g["dn"]): g for g in raw_groups}

        user = self._user
        users = [
            user(dn, raw)
            for dn, raw in self.backend.search(
                self.options.user_base_dn,
                self.user_filter,
                self.options.user_search_scope,
                self._user_attribute_list(),
                "user_base_dn",
            )
        ]
        if not raw_groups and not self.options.user_groups:
            # nothing to resolve: DNs need no normalising
            return self._directory(users, [])
        by_dn = {normalize_dn(u.dn): u for u in users}
        # users are known before membership is expanded, so only unknown member DNs cost a read
        self._known_users = set(by_dn)
        left_scope: dict[str, str] = {}
        if self.options.user_groups:
            allowed = self._members_of_targeted_groups(groups_by_dn)
            reason = "left scope: not in " + _scope_groups_text(self.options.user_groups, groups_by_dn)
            left_scope = {u.id: reason for key, u in by_dn.items() if key not in allowed}
            by_dn = {key: u for key, u in by_dn.items() if key in allowed}

        groups = []
        for group in raw_groups:
            if self._in_chain:
                member_keys = self._in_chain_members(group["dn"])
            else:
                member_keys = self._expand_members(group["member_dns"], groups_by_dn, {normalize_dn(group["dn"])})
            members = [by_dn[k] for k in sorted(member_keys) if k in by_dn]
            for member in members:
                member.groups.append(group["name"])
            groups.append(
                SourceGroup(id=group["id"], dn=group["dn"], name=group["name"], members=[u.id for u in members])
            )
        directory = self._directory(list(by_dn.values()), groups, self._missing_members(groups_by_dn))
        directory.absent_reasons = left_scope
        return directory

    def _missing_members(self, groups_by_dn: dict[str, dict]) -> list[tuple[str, str]]:
        """(group, member DN) for each member value the expansion found no entry for: the groups in
        scope by name, a nested group outside it (or one of user_groups) by DN."""
        if not self._missing:
            return []
        return [
            (group.get("name") or group["dn"], dn)
            for group in groups_by_dn.values()
            for dn in dict.fromkeys(group["member_dns"])
            if normalize_dn(dn) in self._missing
        ]

    def _directory(
        self, users: list[SourceUser], groups: list[SourceGroup], missing: list[tuple[str, str]] | None = None
    ) -> Directory:
        return Directory(
            users=users,
            groups=groups,
            references=list(dict.fromkeys(self.references)),
            backend=self.backend_name,
            missing_members=missing or [],
        )

    def _members_of_targeted_groups(self, groups_by_dn: dict[str, dict]) -> set[str]:
        allowed: set[str] = set()
        for group_dn in self.options.user_groups:
            key = normalize_dn(group_dn)
            group = groups_by_dn.get(key)
            if group is None:
                entry = self.backend.read(group_dn, ["1.1"] if self._in_chain else self._member_request)
                if entry is None:
                    raise ProvisioningError(f"user_groups: the group {group_dn!r} does not exist")
                group = {"dn": group_dn, "member_dns": [] if self._in_chain else self._member_dns(group_dn, entry[1])}
                groups_by_dn[key] = group
            if self._in_chain:
                allowed |= self._in_chain_members(group_dn)
            else:
                allowed |= self._expand_members(group["member_dns"], groups_by_dn, {key})
        return allowed


def _scope_groups_text(group_dns: list[str], groups_by_dn: dict[str, dict]) -> str:
    """``group 'Staff'`` or ``any of the groups 'Staff', 'Contractors'``: user_groups by name where read."""
    names = [(groups_by_dn.get(normalize_dn(dn)) or {}).get("name") or dn for dn in group_dns]
    quoted = ", ".join(f"'{name}'" for name in names)
    return f"group {quoted}" if len(names) == 1 else f"any of the groups {quoted}"


def read_directory(options: LdapOptions) -> Directory:
    with LdapReader(options) as reader:
        return reader.read()


def _parse_uri(uri: str) -> tuple[str, int, bool]:
    problem = f"LDAP server_uri {uri!r} must look like ldap://host[:port] or ldaps://host[:port]"
    parsed = urlparse(uri)
    if parsed.scheme not in ("ldap", "ldaps") or not parsed.hostname:
        raise ProvisioningError(problem)
    try:
        port = parsed.port
    except ValueError:
        raise ProvisioningError(problem) from None
    use_ssl = parsed.scheme == "ldaps"
    return parsed.hostname, port or (636 if use_ssl else 389), use_ssl


def _parenthesised(text: str) -> str:
    text = text.strip()
    return text if text.startswith("(") else f"({text})"


def _range_bounds(dn: str, attribute: str, option: str) -> tuple[str, str]:
    """``range=1500-2999`` -> ("1500", "2999"); ``range=3000-*`` -> ("3000", "*")."""
    match = re.fullmatch(r"(?i)range=(\d+)-(\d+|\*)", option.strip())
    if match is None:
        raise ProvisioningError(f"group {dn!r}: the server answered {attribute};{option}, which is no range")
    return match.group(1), match.group(2)


def _values(raw: dict[str, list[bytes]] | None, name: str) -> list[bytes]:
    """The values of ``name`` (any case, any options) in a raw entry; [] when absent or empty."""
    if not raw:
        return []
    lowered = name.lower()
    for key, values in raw.items():
        if values and key.split(";", 1)[0].lower() == lowered:
            return list(values)
    return []


def _strip_unique_id(value: str) -> str:
    """``uniqueMember`` may carry an optional unique id after the DN (``cn=x,dc=y#'0101'B``)."""
    head, sep, tail = value.rpartition("#'")
    return head if sep and tail.endswith("'B") and set(tail[:-2]) <= {"0", "1"} else value


def _text_or_base64(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return base64.b64encode(value).decode("ascii")


def _texts(values: list[bytes]) -> list[str]:
    """The UTF-8 values, for the disabled rule (it ignores what is not text)."""
    texts = []
    for value in values:
        try:
            texts.append(value.decode("utf-8"))
        except UnicodeDecodeError:
            continue
    return texts


# -- what a failed connection or bind says ---------------------------------------------------
# One template per failure, each naming the server and saying what to check. They are the one
# place these texts live: docs/troubleshooting.md quotes them, and tests/unit/test_troubleshooting.py
# produces each failure for real and checks code and page agree. Change them together.
LDAP_HOST_UNKNOWN = (
    "cannot resolve host {host}: check the host name in server_uri / source.server_uri (LDAP_SERVER_URI) and DNS"
)
LDAP_REFUSED = "connection refused by {host}:{port}: is the LDAP server running, and is the port in server_uri right?"
LDAP_CONNECT_TIMEOUT = (
    "no answer from {host}:{port} within {seconds} s: check the host, the port and any firewall in between, "
    "or raise connect_timeout"
)
LDAP_TLS_UNTRUSTED = (
    "TLS failure: the certificate of {host}:{port} is not trusted ({reason}): set ca_path / source.ca_path "
    "(LDAP_CA_PATH) to the CA that signed it (validate_certs: false only for tests)"
)
LDAP_TLS_NAME_MISMATCH = (
    "TLS failure: the certificate of {host}:{port} is not valid for the name {host} (it names {names}): "
    "use in server_uri a host name the certificate names"
)
LDAP_TLS_FAILED = (
    "TLS failure with {host}:{port}: {reason}: check that this port speaks TLS and the certificate it presents "
    "(openssl s_client -connect {host}:{port})"
)
LDAP_BIND_INVALID = (
    "bind as {bind_dn!r} to {server}: invalid credentials (LDAP 49{detail}): check bind_dn / source.bind_dn "
    "(LDAP_BIND_DN) and the bind password (LDAP_BIND_PW)"
)
LDAP_BIND_NO_PASSWORD = "bind as {bind_dn!r} to {server}: no password given: set bind_pw / source.bind_pw, or LDAP_BIND_PW in the environment"
LDAP_SERVERS_UNREACHABLE = "could not reach any LDAP server ({count} tried): {reasons}"
# the fallback for what the others do not cover (not a documented message)
_GENERIC_PREFIX = "cannot connect to "
LDAP_CONNECT_FAILED = _GENERIC_PREFIX + "{host}:{port}: {reason}"

CONNECTION_MESSAGES = {
    "host_unknown": LDAP_HOST_UNKNOWN,
    "refused": LDAP_REFUSED,
    "connect_timeout": LDAP_CONNECT_TIMEOUT,
    "tls_untrusted": LDAP_TLS_UNTRUSTED,
    "tls_name_mismatch": LDAP_TLS_NAME_MISMATCH,
    "tls_failed": LDAP_TLS_FAILED,
    "bind_invalid": LDAP_BIND_INVALID,
    "bind_no_password": LDAP_BIND_NO_PASSWORD,
    "servers_unreachable": LDAP_SERVERS_UNREACHABLE,
}

# OpenSSL's verify messages that mean "no trusted CA signed it" (ca_path fixes them); others
# (expired, not yet valid, revoked) go to LDAP_TLS_FAILED with OpenSSL's own words.
_UNTRUSTED_REASONS = (
    "self-signed certificate",
    "self signed certificate",
    "unable to get local issuer certificate",
    "unable to get issuer certificate",
    "unable to verify the first certificate",
)


def describe_connection_failure(exc: BaseException, host: str, port: int, timeout: float) -> str:
    """The message for a failure to open a connection (TCP or TLS) to ``host:port``.

    ldap3 hides the cause in merged exception types and texts, and tries each address of a
    name in turn (``unable to open socket`` with the history); the most telling cause wins:
    a TLS problem over a timeout over a refusal.
    """
    causes = [exc]
    history = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], list) else []
    causes.extend(
        item[0] for item in history if isinstance(item, tuple) and item and isinstance(item[0], BaseException)
    )
    messages = [_classify(cause, host, port, timeout) for cause in causes]
    for rank in (LDAP_TLS_NAME_MISMATCH, LDAP_TLS_UNTRUSTED, LDAP_TLS_FAILED, LDAP_CONNECT_TIMEOUT, LDAP_REFUSED):
        for kind, message in messages:
            if kind is rank:
                return message
    if "invalid server address" in _exception_text(exc).lower():
        # ldap3 swallows the resolver's error and finds no address to try: ask the resolver
        try:
            socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError):
            return LDAP_HOST_UNKNOWN.format(host=host)
        return LDAP_CONNECT_FAILED.format(host=host, port=port, reason="no usable address for this name")
    for kind, message in messages:
        if kind is not LDAP_CONNECT_FAILED:
            return message
    return messages[-1][1]


def _classify(exc: BaseException, host: str, port: int, timeout: float) -> tuple[str, str]:
    text = _exception_text(exc)
    lowered = text.lower()
    if (HAS_LDAP3 and isinstance(exc, ldap_exceptions.LDAPCertificateError)) or "doesn't match any name" in lowered:
        names = sorted(set(re.findall(r"\('(?:DNS|IP Address)', '([^']+)'\)", text)))
        if not names:
            names = re.findall(r"\('commonName', '([^']+)'\)", text)[:1]
        return LDAP_TLS_NAME_MISMATCH, LDAP_TLS_NAME_MISMATCH.format(
            host=host, port=port, names=", ".join(names) or "other names"
        )
    if isinstance(exc, ssl.SSLError) or "[ssl" in lowered or "certificate verify failed" in lowered:
        verify = re.search(r"certificate verify failed:?\s*([^(]*)", text, re.IGNORECASE)
        if verify is not None:
            reason = verify.group(1).strip().rstrip(".") or "certificate verify failed"
            if reason == "certificate verify failed" or reason.lower().startswith(_UNTRUSTED_REASONS):
                return LDAP_TLS_UNTRUSTED, LDAP_TLS_UNTRUSTED.format(host=host, port=port, reason=reason)
            return LDAP_TLS_FAILED, LDAP_TLS_FAILED.format(host=host, port=port, reason=reason)
        detail = re.search(r"\[SSL(?:: [A-Z0-9_]+)?\]\s*([^(]*)", text)
        reason = (
            (detail.group(1).strip() if detail else "")
            or text.rsplit(":", maxsplit=1)[-1].strip()
            or type(exc).__name__
        )
        return LDAP_TLS_FAILED, LDAP_TLS_FAILED.format(host=host, port=port, reason=reason)
    if isinstance(exc, ConnectionRefusedError) or "connection refused" in lowered:
        return LDAP_REFUSED, LDAP_REFUSED.format(host=host, port=port)
    if isinstance(exc, (socket.timeout, TimeoutError)) or "timed out" in lowered:
        return LDAP_CONNECT_TIMEOUT, LDAP_CONNECT_TIMEOUT.format(host=host, port=port, seconds=timeout)
    reason = text.split("[", 1)[0].strip().rstrip(":") or type(exc).__name__
    return LDAP_CONNECT_FAILED, LDAP_CONNECT_FAILED.format(host=host, port=port, reason=reason)


def _exception_text(exc: BaseException) -> str:
    """The message of an exception without ldap3's wrapper prefixes (ssl's and socket's as ``str``)."""
    text = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
    for prefix in ("socket ssl wrapping error: ", "wrap socket error: ", "socket connection error while opening: "):
        text = text.replace(prefix, "")
    return text


# -- asking Python's socket and ssl why a connection fails ---------------------------------------
# libldap reports most failures as "Can't contact LDAP server" or "(unknown error code)"; for the
# python-ldap backend the same connection is tried once more with Python's own socket and ssl,
# which say what went wrong in the words that ldap3 (which uses them) gives.
_TCP_TEMPLATES = (LDAP_HOST_UNKNOWN, LDAP_REFUSED, LDAP_CONNECT_TIMEOUT, LDAP_CONNECT_FAILED)
# ExtendedRequest StartTLS (RFC 4511 4.14.1), message id 1
_STARTTLS_REQUEST = bytes.fromhex("301d02010177188016") + b"1.3.6.1.4.1.1466.20037"


def probe_connection(
    host: str,
    port: int,
    *,
    use_ssl: bool,
    start_tls: bool,
    validate: bool,
    ca_path: str | None,
    timeout: float,
    uri: str,
) -> tuple[str, str] | None:
    """``("tcp" | "tls", message)`` for what fails when connecting to ``host:port`` as asked, or None
    when Python's socket and ssl connect fine."""
    try:
        socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return "tcp", LDAP_HOST_UNKNOWN.format(host=host)
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        kind, message = _classify(exc, host, port, timeout)
        return ("tcp" if kind in _TCP_TEMPLATES else "tls"), message
    with sock:
        if not (use_ssl or start_tls):
            return None
        try:
            if start_tls:
                refused = _starttls_refusal(sock, uri)
                if refused:
                    return "tls", refused
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False  # the name is checked below, to name what the certificate holds
            if validate:
                if ca_path:
                    context.load_verify_locations(cafile=ca_path)
                else:
                    context.load_default_certs()
            else:
                context.verify_mode = ssl.CERT_NONE
            with context.wrap_socket(sock, server_hostname=None if _is_address(host) else host) as tls:
                certificate = tls.getpeercert() if validate else None
        except (ssl.SSLError, OSError) as exc:
            kind, message = _classify(exc, host, port, timeout)
            return ("tcp" if kind in (LDAP_CONNECT_TIMEOUT, LDAP_REFUSED) else "tls"), message
    if certificate is not None:
        names = certificate_names(certificate)
        if not _name_matches(host, certificate):
            return "tls", LDAP_TLS_NAME_MISMATCH.format(host=host, port=port, names=", ".join(names) or "other names")
    return None


def _starttls_refusal(sock: socket.socket, uri: str) -> str | None:
    """Send StartTLS; the server's refusal as ldap3 words it, or None when it agrees."""
    sock.sendall(_STARTTLS_REQUEST)
    data = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            return f"StartTLS with {uri} failed: the server closed the connection"
        data += chunk
        total = _ber_size(data)
        if total is not None and len(data) >= total:
            break
    try:
        _msgid, response = _ber_children(_ber_children(data)[0][1])[:2]
        result = _ber_children(response[1])
        code = int.from_bytes(result[0][1], "big")
        message = result[2][1].decode("utf-8", "replace") if len(result) > 2 else ""
    except (IndexError, ValueError):
        return f"StartTLS with {uri} failed: the server's answer is not LDAP"
    return None if code == 0 else f"StartTLS with {uri} failed: {_code_text(code, message)}"


def _ber_size(data: bytes) -> int | None:
    """The length of the first BER element in ``data``, once its header is complete."""
    if len(data) < 2:
        return None
    if data[1] < 0x80:
        return 2 + data[1]
    count = data[1] & 0x7F
    if len(data) < 2 + count:
        return None
    return 2 + count + int.from_bytes(data[2 : 2 + count], "big")


def _ber_children(data: bytes) -> list[tuple[int, bytes]]:
    """The (tag, content) elements one after another in ``data``."""
    items = []
    i = 0
    while i < len(data):
        size = _ber_size(data[i:])
        if size is None or i + size > len(data):
            raise ValueError("truncated BER")
        header = 2 + (data[i + 1] & 0x7F if data[i + 1] >= 0x80 else 0)
        items.append((data[i], data[i + header : i + size]))
        i += size
    return items


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def certificate_names(certificate: dict) -> list[str]:
    """The DNS names and IP addresses a certificate is for (its common name when it has no SAN)."""
    names = sorted({value for kind, value in certificate.get("subjectAltName", ()) if kind in ("DNS", "IP Address")})
    if names:
        return names
    return [value for rdn in certificate.get("subject", ()) for key, value in rdn if key == "commonName"][:1]


def _name_matches(host: str, certificate: dict) -> bool:
    """RFC 6125: an IP address against the IP SANs; a name against the DNS SANs (one leftmost
    wildcard label), or the common name when the certificate has no SAN at all."""
    sans = certificate.get("subjectAltName", ())
    if _is_address(host):
        wanted = ipaddress.ip_address(host)
        return any(kind == "IP Address" and _same_address(value, wanted) for kind, value in sans)
    dns = [value for kind, value in sans if kind == "DNS"]
    if not sans:
        dns = certificate_names(certificate)
    host = host.lower().rstrip(".")
    for pattern in dns:
        pattern = pattern.lower().rstrip(".")
        if pattern == host:
            return True
        if pattern.startswith("*.") and "." in host and host.split(".", 1)[1] == pattern[2:]:
            return True
    return False


def _same_address(value: str, wanted) -> bool:
    try:
        return ipaddress.ip_address(value.strip()) == wanted
    except ValueError:
        return False
