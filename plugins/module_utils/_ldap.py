# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The directory reader shared by the ``ldap_source`` lookup and the ``*_sync`` modules.

Private to this collection.

One path for both callers: options come in through ``LdapOptions.from_getter`` (a module's
``params.get`` or a plugin's ``get_option``), and ``read_directory`` returns plain records
(``SourceUser`` / ``SourceGroup``). Every search is paged (RFC 2696) and its result code is
checked page by page: a failed read raises, it is never taken as "no entries".
"""

from __future__ import annotations

import base64
import contextlib
import re
import socket
import ssl
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from ansible_collections.idsync.provisioning.plugins.module_utils import _ldap_filter
from ansible_collections.idsync.provisioning.plugins.module_utils._model import (
    ProvisioningError,
    SourceGroup,
    SourceUser,
)

try:
    import ldap3
    from ldap3.core import exceptions as ldap_exceptions
    from ldap3.utils.dn import parse_dn

    HAS_LDAP3 = True
    LDAP3_IMPORT_ERROR = None
except ImportError:
    HAS_LDAP3 = False
    LDAP3_IMPORT_ERROR = traceback.format_exc()

PAGED_RESULTS_OID = "1.2.840.113556.1.4.319"

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
        if options.dialect not in DIALECTS:
            raise ProvisioningError(
                f"LDAP source option 'dialect' must be one of {', '.join(sorted(DIALECTS))}, got {options.dialect!r}"
            )
        defaults = DIALECTS[options.dialect]
        for name in ("id_attribute", "disabled_filter", "user_filter", "group_filter"):
            if not getattr(options, name):
                setattr(options, name, defaults[name])
        if options.page_size < 1:
            raise ProvisioningError("LDAP source option 'page_size' must be at least 1")
        return options


@dataclass
class Directory:
    users: list[SourceUser]
    groups: list[SourceGroup]


_DN_SPECIALS = ("\\", "+", '"', ";", "#")


def normalize_dn(dn: str) -> str:
    """A comparable form of a DN: types and values lower-cased, escapes resolved.

    ``cn=Smith\\, Janet`` and ``CN=smith\\2c janet`` name the same entry.
    """
    if not any(c in dn for c in _DN_SPECIALS):
        # the common case, parsed without ldap3 (it runs once per entry and member)
        return ",".join("=".join(part.strip() for part in rdn.split("=", 1)) for rdn in dn.lower().split(","))
    try:
        parts = parse_dn(dn, strip=True)
    except Exception:  # ldap3 raises several types for malformed DNs; keep the text comparable anyway
        return dn.strip().lower()
    rdns: list[str] = []
    current: list[str] = []
    for attr, value, separator in parts:
        current.append(f"{attr.strip().lower()}={_unescape_dn_value(value).strip().lower()}")
        if separator != "+":
            rdns.append("+".join(sorted(current)))
            current = []
    if current:
        rdns.append("+".join(sorted(current)))
    return ",".join(rdns)


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


class LdapReader:
    """One bound connection and the searches that build the records."""

    def __init__(self, options: LdapOptions):
        if not HAS_LDAP3:
            raise ProvisioningError("the ldap3 Python library is required to read the directory")
        self.options = options
        self.user_filter = options.user_filter
        self.group_filter = options.group_filter
        _validated_filter("user_filter", options.user_filter)
        _validated_filter("group_filter", options.group_filter)
        self.disabled_rule = _validated_filter("disabled_filter", options.disabled_filter, evaluable=True)
        self.connection = None
        self.server_uri = ""
        self._schema_types = None
        self._attribute_cache: dict[str, tuple[str, bool, bool]] = {}

    # -- connection --------------------------------------------------------------------
    def __enter__(self) -> LdapReader:
        self.connect()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        if self.connection is not None:
            with contextlib.suppress(Exception):  # closing a broken connection must not hide the real error
                self.connection.unbind()
            self.connection = None

    def connect(self) -> None:
        """Bind to the first server that answers, in the order given (failover)."""
        failures = []
        for uri in self.options.server_uri:
            try:
                self.connection = self._bind(uri)
                self.server_uri = uri
                return
            except _Unreachable as exc:
                failures.append(str(exc))
        if len(failures) == 1:
            raise ProvisioningError(failures[0])
        raise ProvisioningError(LDAP_SERVERS_UNREACHABLE.format(count=len(failures), reasons="; ".join(failures)))

    def _server(self, uri: str):
        parsed = urlparse(uri)
        if parsed.scheme not in ("ldap", "ldaps") or not parsed.hostname:
            raise ProvisioningError(f"LDAP server_uri {uri!r} must look like ldap://host[:port] or ldaps://host[:port]")
        use_ssl = parsed.scheme == "ldaps"
        tls = None
        if use_ssl or self.options.start_tls:
            try:
                tls = ldap3.Tls(
                    validate=ssl.CERT_REQUIRED if self.options.validate_certs else ssl.CERT_NONE,
                    ca_certs_file=self.options.ca_path,
                    version=ssl.PROTOCOL_TLS_CLIENT,
                )
            except ldap_exceptions.LDAPSSLConfigurationError as exc:
                raise ProvisioningError(f"LDAP source option 'ca_path' ({self.options.ca_path!r}): {exc}") from None
        return ldap3.Server(
            parsed.hostname,
            port=parsed.port or (636 if use_ssl else 389),
            use_ssl=use_ssl,
            tls=tls,
            get_info=ldap3.SCHEMA,
            connect_timeout=self.options.connect_timeout,
        )

    def _bind(self, uri: str):
        server = self._server(uri)
        bind_dn = self.options.bind_dn
        who = f"as {bind_dn!r}" if bind_dn else "anonymously"
        connection = ldap3.Connection(
            server,
            user=bind_dn or None,
            password=self.options.bind_pw or None,
            auto_bind=ldap3.AUTO_BIND_NONE,
            receive_timeout=self.options.receive_timeout,
            read_only=True,
            auto_referrals=False,
            raise_exceptions=False,
            # we decode raw values ourselves; ldap3's schema formatting would double the read time
            check_names=False,
        )
        try:
            connection.open()
        except ldap_exceptions.LDAPException as exc:
            raise _Unreachable(self._open_failure(exc, server)) from None
        try:
            if self.options.start_tls and not server.ssl and not connection.start_tls():
                raise ProvisioningError(f"StartTLS with {uri} failed: {_result_text(connection)}")
            if not connection.bind():
                result = connection.result or {}
                if result.get("result") == 49 or result.get("description") == "invalidCredentials":
                    message = (result.get("message") or "").strip()
                    raise ProvisioningError(
                        LDAP_BIND_INVALID.format(
                            bind_dn=bind_dn or "", server=uri, detail=f", {message}" if message else ""
                        )
                    )
                raise ProvisioningError(f"LDAP bind {who} to {uri} failed: {_result_text(connection)}")
        except ldap_exceptions.LDAPPasswordIsMandatoryError:
            raise ProvisioningError(LDAP_BIND_NO_PASSWORD.format(bind_dn=bind_dn or "", server=uri)) from None
        except ldap_exceptions.LDAPStartTLSError as exc:
            reason = self._open_failure(exc, server)
            if reason.startswith(_GENERIC_PREFIX):
                reason = f"StartTLS with {uri} failed: {_ldap3_text(exc)}"
            raise ProvisioningError(reason) from None
        except ldap_exceptions.LDAPSocketOpenError as exc:
            raise _Unreachable(self._open_failure(exc, server)) from None
        except ldap_exceptions.LDAPException as exc:
            raise ProvisioningError(f"LDAP bind {who} to {uri} failed: {type(exc).__name__}") from None
        return connection

    def _open_failure(self, exc: Exception, server) -> str:
        """What went wrong opening ``server``, as one of the CONNECTION_MESSAGES."""
        return describe_connection_failure(exc, server.host, server.port, self.options.connect_timeout)

    # -- schema ------------------------------------------------------------------------
    def _attribute_info(self, name: str) -> tuple[str, bool, bool]:
        """(schema name, binary, single-valued) of an attribute description; cached per name,
        because the schema's case-insensitive lookups cost more than the values themselves."""
        cached = self._attribute_cache.get(name)
        if cached is None:
            if self._schema_types is None:
                schema = self.connection.server.schema
                self._schema_types = schema.attribute_types if schema is not None else {}
            base_name = name.split(";")[0]
            info = self._schema_types.get(base_name)
            cached = (
                info.name[0] if info is not None and info.name else base_name,
                (info is not None and info.syntax in BINARY_SYNTAXES) or ";binary" in name.lower(),
                bool(info is not None and info.single_value),
            )
            self._attribute_cache[name] = cached
        return cached

    def _canonical_name(self, name: str) -> str:
        return self._attribute_info(name)[0]

    def _is_binary(self, name: str) -> bool:
        return self._attribute_info(name)[1]

    def _is_single_valued(self, name: str) -> bool:
        return self._attribute_info(name)[2]

    # -- searching ---------------------------------------------------------------------
    def paged_search(self, base: str, search_filter: str, scope: str, attributes: list[str], option: str):
        """Yield entries page by page; raise on any result but success."""
        cookie = None
        ldap_scope = {"subtree": ldap3.SUBTREE, "onelevel": ldap3.LEVEL, "base": ldap3.BASE}[scope]
        while True:
            try:
                self.connection.search(
                    base,
                    search_filter,
                    search_scope=ldap_scope,
                    attributes=attributes,
                    paged_size=self.options.page_size,
                    paged_cookie=cookie,
                )
            except ldap_exceptions.LDAPInvalidFilterError as exc:
                raise ProvisioningError(f"{option}: the filter {search_filter!r} was refused: {exc}") from None
            except ldap_exceptions.LDAPException as exc:
                raise ProvisioningError(
                    f"LDAP search of {base!r} ({option}) on {self.server_uri} failed: {type(exc).__name__}: {exc}"
                ) from None
            result = self.connection.result or {}
            code = result.get("description")
            if code == "noSuchObject":
                raise ProvisioningError(f"{option} {base!r} does not exist on {self.server_uri} (noSuchObject)")
            if code not in ("success",):
                raise ProvisioningError(
                    f"LDAP search of {base!r} ({option}) with filter {search_filter!r} failed: "
                    f"{code} {result.get('message') or ''}".rstrip()
                )
            for entry in self.connection.response or []:
                if entry.get("type") == "searchResEntry":
                    yield entry
            controls = result.get("controls") or {}
            cookie = controls.get(PAGED_RESULTS_OID, {}).get("value", {}).get("cookie")
            if not cookie:
                return

    def _read_entry(self, dn: str, attributes: list[str]) -> dict | None:
        """A base-scope read of one entry; None when it does not exist."""
        try:
            ok = self.connection.search(dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=attributes)
        except ldap_exceptions.LDAPException as exc:
            raise ProvisioningError(f"LDAP read of {dn!r} failed: {type(exc).__name__}: {exc}") from None
        code = (self.connection.result or {}).get("description")
        if code == "noSuchObject":
            return None
        if not ok and code != "success":
            raise ProvisioningError(f"LDAP read of {dn!r} failed: {_result_text(self.connection)}")
        for entry in self.connection.response or []:
            if entry.get("type") == "searchResEntry":
                return entry
        return None

    # -- values ------------------------------------------------------------------------
    def _decode(self, name: str, values: list[bytes]) -> Any:
        if name.split(";")[0].lower() == self.options.id_attribute.lower():
            decoded = [self._render_id(v) for v in values]
        elif self._is_binary(name):
            decoded = [base64.b64encode(v).decode("ascii") for v in values]
        else:
            decoded = []
            for value in values:
                try:
                    decoded.append(value.decode("utf-8"))
                except UnicodeDecodeError:
                    decoded.append(base64.b64encode(value).decode("ascii"))
        if self._is_single_valued(name):
            return decoded[0] if decoded else None
        return decoded

    def _attributes(self, entry: dict) -> dict[str, Any]:
        attributes: dict[str, Any] = {}
        for name, values in (entry.get("raw_attributes") or {}).items():
            if not values:
                continue
            attributes[self._canonical_name(name)] = self._decode(name, list(values))
        return attributes

    def _stable_id(self, entry: dict) -> str:
        raw = _raw_values(entry, self.options.id_attribute)
        if not raw:
            raise ProvisioningError(
                f"entry {entry['dn']!r} has no {self.options.id_attribute} (the stable id); check the "
                "'id_attribute' option and that the bind account may read that attribute"
            )
        return self._render_id(raw[0])

    def _render_id(self, value: bytes) -> str:
        """objectGUID as Windows writes it (mixed-endian); text ids (entryUUID, nsUniqueId) as they are."""
        if self._is_binary(self.options.id_attribute) or not _is_utf8(value):
            return str(uuid.UUID(bytes_le=value)) if len(value) == 16 else base64.b64encode(value).decode("ascii")
        return value.decode("utf-8")

    def _is_disabled(self, entry: dict) -> bool:
        values: dict[str, list[str]] = {}
        for name, raw in (entry.get("raw_attributes") or {}).items():
            text = []
            for value in raw:
                try:
                    text.append(value.decode("utf-8"))
                except UnicodeDecodeError:
                    continue
            values[name.split(";")[0].lower()] = text
        return _ldap_filter.matches(self.disabled_rule, values)

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
        attributes = [name_attr, self.options.id_attribute, *MEMBER_ATTRIBUTES]
        groups = []
        for entry in self.paged_search(
            self.options.group_base_dn, self.group_filter, self.options.group_search_scope, attributes, "group_base_dn"
        ):
            names = _raw_values(entry, name_attr)
            if not names:
                raise ProvisioningError(f"group {entry['dn']!r} has no {name_attr} (group_name_attribute)")
            groups.append(
                {
                    "id": self._stable_id(entry),
                    "dn": entry["dn"],
                    "name": names[0].decode("utf-8"),
                    "member_dns": self._member_dns(entry),
                }
            )
        return groups

    def _member_dns(self, entry: dict) -> list[str]:
        """Member DNs, following AD's ranged retrieval (``member;range=0-1499``) to the end."""
        members: list[str] = []
        for key, values in (entry.get("raw_attributes") or {}).items():
            base_name, _sep, option = key.partition(";")
            if base_name.lower() not in {m.lower() for m in MEMBER_ATTRIBUTES}:
                continue
            members.extend(_strip_unique_id(v.decode("utf-8")) for v in values)
            if option.lower().startswith("range="):
                members.extend(self._remaining_range(entry["dn"], base_name, option, len(values)))
        return members

    def _remaining_range(self, dn: str, attribute: str, option: str, count: int) -> list[str]:
        values: list[str] = []
        upper = option.split("=", 1)[1].split("-", 1)[1]
        while upper != "*":
            start = int(upper) + 1
            entry = self._read_entry(dn, [f"{attribute};range={start}-*"])
            if entry is None:
                raise ProvisioningError(f"group {dn!r} disappeared while its members were read")
            page = [
                (k, v)
                for k, v in (entry.get("raw_attributes") or {}).items()
                if k.lower().startswith(attribute.lower() + ";range=")
            ]
            if not page:
                raise ProvisioningError(f"group {dn!r}: the server ended ranged retrieval of {attribute} early")
            key, chunk = page[0]
            values.extend(v.decode("utf-8") for v in chunk)
            upper = key.split("=", 1)[1].split("-", 1)[1]
        return values

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
        entry = self._read_entry(dn, ["objectClass", *MEMBER_ATTRIBUTES])
        classes = {v.decode("utf-8").lower() for v in _raw_values(entry, "objectClass")} if entry else set()
        if not classes & {"group", "groupofnames", "groupofuniquenames"}:
            self._non_groups.add(key)
            return None
        group = {"dn": dn, "member_dns": self._member_dns(entry)}
        groups_by_dn[key] = group
        return group

    def read(self) -> Directory:
        self._known_users: set[str] = set()
        self._non_groups: set[str] = set()
        raw_groups = self.read_groups()
        groups_by_dn = {normalize_dn(g["dn"]): g for g in raw_groups}

        by_dn: dict[str, SourceUser] = {}
        for entry in self.paged_search(
            self.options.user_base_dn,
            self.user_filter,
            self.options.user_search_scope,
            self._user_attribute_list(),
            "user_base_dn",
        ):
            by_dn[normalize_dn(entry["dn"])] = SourceUser(
                id=self._stable_id(entry),
                dn=entry["dn"],
                disabled=self._is_disabled(entry),
                attributes=self._attributes(entry),
            )
        # users are known before membership is expanded, so only unknown member DNs cost a read
        self._known_users = set(by_dn)
        if self.options.user_groups:
            allowed = self._members_of_targeted_groups(groups_by_dn)
            by_dn = {key: user for key, user in by_dn.items() if key in allowed}

        groups = []
        for group in raw_groups:
            member_keys = self._expand_members(group["member_dns"], groups_by_dn, {normalize_dn(group["dn"])})
            members = [by_dn[k] for k in sorted(member_keys) if k in by_dn]
            for user in members:
                user.groups.append(group["name"])
            groups.append(
                SourceGroup(id=group["id"], dn=group["dn"], name=group["name"], members=[u.id for u in members])
            )
        return Directory(users=list(by_dn.values()), groups=groups)

    def _members_of_targeted_groups(self, groups_by_dn: dict[str, dict]) -> set[str]:
        allowed: set[str] = set()
        for group_dn in self.options.user_groups:
            key = normalize_dn(group_dn)
            group = groups_by_dn.get(key)
            if group is None:
                entry = self._read_entry(group_dn, [*MEMBER_ATTRIBUTES])
                if entry is None:
                    raise ProvisioningError(f"user_groups: the group {group_dn!r} does not exist")
                group = {"dn": group_dn, "member_dns": self._member_dns(entry)}
                groups_by_dn[key] = group
            allowed |= self._expand_members(group["member_dns"], groups_by_dn, {key})
        return allowed


class _Unreachable(Exception):
    """This server could not be reached; the next one is tried."""


def read_directory(options: LdapOptions) -> Directory:
    with LdapReader(options) as reader:
        return reader.read()


def _raw_values(entry: dict | None, name: str) -> list[bytes]:
    if not entry:
        return []
    for key, values in (entry.get("raw_attributes") or {}).items():
        if key.split(";")[0].lower() == name.lower():
            return list(values)
    return []


def _strip_unique_id(value: str) -> str:
    """``uniqueMember`` may carry an optional unique id after the DN (``cn=x,dc=y#'0101'B``)."""
    head, sep, tail = value.rpartition("#'")
    return head if sep and tail.endswith("'B") and set(tail[:-2]) <= {"0", "1"} else value


def _is_utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _result_text(connection) -> str:
    result = connection.result or {}
    text = result.get("description") or "unknown error"
    message = (result.get("message") or "").strip()
    return f"{text} ({message})" if message else text


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
    if "invalid server address" in _ldap3_text(exc).lower():
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
    text = _ldap3_text(exc)
    lowered = text.lower()
    if isinstance(exc, ldap_exceptions.LDAPCertificateError) or "doesn't match any name" in lowered:
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


def _ldap3_text(exc: BaseException) -> str:
    """ldap3's message without its wrapper prefixes."""
    text = str(exc.args[0]) if exc.args else str(exc)
    for prefix in ("socket ssl wrapping error: ", "wrap socket error: ", "socket connection error while opening: "):
        text = text.replace(prefix, "")
    return text
