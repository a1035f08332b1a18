# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Box connector (API 2.0): managed users, groups, group memberships.

Private to this collection: the names here may change without notice.

Built on the connector kit (``_kit``) and the token source (``_token``); Box's facts it relies on
are in the Box API reference (box/box-openapi): marker paging of users, offset paging (at most
offset 10,000) of groups and memberships, ``fields`` returning only what it names, logins unique
across Box (409), group names unique in the enterprise (409), memberships removed by their own id,
``enterprise: null`` rolling a user out of the enterprise (never sent), deletes refused by
retention and legal hold (403) and content transfer (``PUT /users/{id}/folders/0``) that may go on
after Box answered. Box users have no field for a stable id: their ownership lives in the state
file; groups carry the marker in ``external_sync_identifier``.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
import traceback
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote

from ansible_collections.idsync.provisioning.plugins.module_utils import _kit
from ansible_collections.idsync.provisioning.plugins.module_utils._connector import (
    Capabilities,
    Connector,
    MemberFailures,
)
from ansible_collections.idsync.provisioning.plugins.module_utils._engine import values_equal
from ansible_collections.idsync.provisioning.plugins.module_utils._http import (
    HttpClient,
    bearer_auth,
    paginate,
)
from ansible_collections.idsync.provisioning.plugins.module_utils._model import (
    ProvisioningError,
    TargetGroup,
    TargetUser,
    is_empty,
)
from ansible_collections.idsync.provisioning.plugins.module_utils._token import (
    TokenSource,
    client_credentials,
    jwt_bearer,
)

try:
    import jwt
    from cryptography.hazmat.primitives import serialization
except ImportError:  # pragma: no cover - reported by connector_from_params with missing_required_lib
    jwt = None
    serialization = None
    HAS_JWT = False
    JWT_IMPORT_ERROR: str | None = traceback.format_exc()
else:
    HAS_JWT = True
    JWT_IMPORT_ERROR = None

API_URL = "https://api.box.com/2.0"
TOKEN_URL = "https://api.box.com/oauth2/token"
# Box checks the assertion's audience against its own token URL, wherever the request is sent.
JWT_AUDIENCE = TOKEN_URL
JWT_LIFETIME = 45  # seconds; Box accepts at most 60
DEFAULT_PROVENANCE = "idsync.provisioning"

USER_KEY = "login"
MAX_PAGE = 1000
MAX_OFFSET = 10000  # Box refuses larger offsets (groups and memberships have no marker paging)
SERVICE_LOGIN_SUFFIX = "@boxdevedition.com"  # the JWT app's service account and app users

ACTIVE, INACTIVE = "active", "inactive"
STATUSES = (ACTIVE, INACTIVE, "cannot_delete_edit", "cannot_delete_edit_upload")
ROLES = ("coadmin", "user")

# The user fields this connector reads and writes: name -> (kind, max length). ``fields`` makes
# Box return only what it names, so every one of them is asked for on every read.
_STRING, _BOOL, _INT, _ENUM, _CODES = "string", "bool", "int", "enum", "codes"
USER_FIELDS: dict[str, tuple[str, int | None]] = {
    "login": (_STRING, None),
    "name": (_STRING, 50),
    "role": (_ENUM, None),
    "status": (_ENUM, None),
    "job_title": (_STRING, 100),
    "phone": (_STRING, 100),
    "address": (_STRING, 255),
    "language": (_STRING, None),
    "timezone": (_STRING, None),
    "space_amount": (_INT, None),
    "tracking_codes": (_CODES, None),
    "external_app_user_id": (_STRING, None),
    "is_sync_enabled": (_BOOL, None),
    "can_see_managed_users": (_BOOL, None),
    "is_external_collab_restricted": (_BOOL, None),
    "is_exempt_from_device_limits": (_BOOL, None),
    "is_exempt_from_login_verification": (_BOOL, None),
}
ENUMS = {"role": ROLES, "status": STATUSES}
# Strings Box lets us clear with ""; the others cannot be emptied.
CLEARABLE = frozenset({"job_title", "phone", "address", "external_app_user_id"})
READ_USER_FIELDS = ("id", "type", *USER_FIELDS, "is_platform_access_only")
GROUP_FIELDS = ("id", "type", "name", "group_type", "external_sync_identifier", "provenance", "description")
TRACKING_CODE_PREFIX = "tracking_codes."
_LOGIN = re.compile(r"^[^@\s]+@[^@\s]+$")


def restricted(status: Any) -> bool:
    """``cannot_delete_edit*``: an enabled account whose status is never overwritten unless asked."""
    return isinstance(status, str) and status.startswith("cannot_delete_edit")


def _is_service_account(resource: Mapping[str, Any]) -> bool:
    login = str(resource.get("login") or "").lower()
    return bool(resource.get("is_platform_access_only")) or login.endswith(SERVICE_LOGIN_SUFFIX)


def _flag(value: bool) -> str:
    return "true" if value else "false"


# -- user bodies -------------------------------------------------------------------------------
def user_body(who: str, attrs: Mapping[str, Any], current: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The Box body writing ``attrs`` (paths -> values), validated before anything is sent.

    ``current`` is the account being updated (None: a create). Every refusal names the user and
    the field, as ``user <who>: <field>: <why>``.
    """
    body: dict[str, Any] = {}
    codes: dict[str, Any] = {}
    for path, value in attrs.items():
        if path.startswith(TRACKING_CODE_PREFIX):
            name = path[len(TRACKING_CODE_PREFIX) :]
            if not name or not (value is None or isinstance(value, (str, int))):
                raise _invalid(who, path, "a tracking code's value is one string")
            codes[name] = None if is_empty(value) else str(value)
            continue
        if path == "enterprise":
            raise _invalid(who, path, "never written: null would roll the user out of the enterprise")
        if path not in USER_FIELDS:
            raise _invalid(who, path, f"not a Box user field this connector writes ({', '.join(USER_FIELDS)})")
        body[path] = _field_value(who, path, value, creating=current is None)
    if codes:
        if "tracking_codes" in body:
            raise _invalid(who, "tracking_codes", "map either the whole list or single tracking_codes.<name> paths")
        body["tracking_codes"] = _merged_codes((current or {}).get("tracking_codes"), codes)
    if current is None:
        if is_empty(body.get("name")):
            raise _invalid(who, "name", "required by Box to create a user")
        if is_empty(body.get("login")):
            raise _invalid(who, "login", "required to create a managed user")
    return body


def _invalid(who: str, field: str, why: str) -> ProvisioningError:
    return ProvisioningError(f"user {who}: {field}: {why}")


def _field_value(who: str, field: str, value: Any, creating: bool) -> Any:
    kind, limit = USER_FIELDS[field]
    if is_empty(value):
        if kind == _CODES:
            return []
        if field in CLEARABLE and not creating:
            return ""
        raise _invalid(who, field, "cannot be empty in Box")
    if kind == _STRING:
        if not isinstance(value, str):
            raise _invalid(who, field, f"must be a string, got {type(value).__name__}")
        if limit is not None and len(value) > limit:
            raise _invalid(who, field, f"{len(value)} characters, Box allows at most {limit}: {value[:60]!r}")
        if field == "login" and not _LOGIN.match(value):
            raise _invalid(who, field, f"{value!r} is not an e-mail address")
        return value
    if kind == _ENUM:
        if value not in ENUMS[field]:
            raise _invalid(who, field, f"{value!r} is not one of {', '.join(ENUMS[field])}")
        return value
    if kind == _BOOL:
        if not isinstance(value, bool):
            raise _invalid(who, field, f"must be true or false, got {value!r}")
        return value
    if kind == _INT:
        if isinstance(value, bool) or not isinstance(value, int) or value < -1:
            raise _invalid(
                who, field, f"must be a number of bytes (-1: unlimited), got {value!r} (to_number() maps one)"
            )
        return value
    return _codes_list(who, value)


def _codes_list(who: str, value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list):
        raise _invalid(who, "tracking_codes", "must be a list of {name, value}")
    codes = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or item.get("value") is None:
            raise _invalid(who, "tracking_codes", f"each entry needs a name and a value, got {item!r}")
        codes.append({"type": "tracking_code", "name": item["name"], "value": str(item["value"])})
    return codes


def _merged_codes(current: Any, changes: Mapping[str, str | None]) -> list[dict[str, str]]:
    """The whole list Box wants, with the named codes set (None: removed) and the others kept."""
    merged: list[dict[str, str]] = []
    for item in current if isinstance(current, list) else []:
        if isinstance(item, dict) and item.get("name") not in changes:
            merged.append({"type": "tracking_code", "name": str(item.get("name")), "value": str(item.get("value"))})
    merged += [{"type": "tracking_code", "name": n, "value": v} for n, v in changes.items() if v is not None]
    return merged


# -- the connector -----------------------------------------------------------------------------
class BoxConnector(Connector):
    """One Box enterprise, through an ``HttpClient`` whose auth hook carries the token."""

    def __init__(
        self,
        client: HttpClient,
        *,
        page_size: int = MAX_PAGE,
        member_chunk: int = 100,
        provenance: str = DEFAULT_PROVENANCE,
        delete_notify: bool = False,
        delete_force: bool = False,
        transfer_content_to: str | None = None,
        overwrite_restricted_status: bool = False,
        create_attempts: int = 3,
    ):
        self.client = client
        self.page_size = max(1, min(int(page_size), MAX_PAGE))
        self.member_chunk = max(1, int(member_chunk))
        self.provenance = provenance
        self.delete_notify = delete_notify
        self.delete_force = delete_force
        self.transfer_content_to = transfer_content_to
        self.overwrite_restricted_status = overwrite_restricted_status
        self.create_attempts = max(1, int(create_attempts))
        self.user_fields = ",".join(READ_USER_FIELDS)
        self._transfer_target: str | None = None
        self._transfer_lock = threading.Lock()

    @property
    def capabilities(self) -> Capabilities:  # type: ignore[override]
        # Users have no field for our marker: their ownership lives in the state file.
        return Capabilities(user_link="state", group_link="target", member_chunk=self.member_chunk)

    # -- users: reading ----------------------------------------------------------------------
    def _users(self, **query: Any) -> Iterator[dict[str, Any]]:
        """Managed users (app users and the service account left out), marker-paged."""

        def fetch(marker: str | None) -> tuple[list[dict[str, Any]], str | None]:
            params = dict(query, user_type="managed", usemarker="true", limit=self.page_size, fields=self.user_fields)
            if marker:
                params["marker"] = marker
            page = self.client.request("GET", "/users", params=params, expected=(200,)) or {}
            if not isinstance(page, dict) or not isinstance(page.get("entries"), list):
                raise ProvisioningError("GET /users: the answer has no entries list")
            return page["entries"], page.get("next_marker") or None  # null or "" ends the listing

        seen: set[str] = set()
        for resource in paginate(fetch):
            user_id = str(resource.get("id"))
            if user_id in seen or _is_service_account(resource):
                continue
            seen.add(user_id)
            yield resource

    @staticmethod
    def to_user(resource: dict[str, Any]) -> TargetUser:
        return TargetUser(
            id=str(resource.get("id")),
            key=str(resource.get("login") or ""),
            enabled=resource.get("status") != INACTIVE,
            resource=resource,
        )

    def list_users(self) -> Iterator[TargetUser]:
        for resource in self._users():
            yield self.to_user(resource)

    def find_user(self, key: str) -> TargetUser | None:
        """``filter_term`` is a prefix match on name or login: keep the exact login only."""
        wanted = key.lower()
        found = [r for r in self._users(filter_term=key) if str(r.get("login") or "").lower() == wanted]
        if len(found) > 1:
            ids = ", ".join(str(r.get("id")) for r in found)
            raise ProvisioningError(f"find user {key}: {len(found)} accounts have this login ({ids})")
        return self.to_user(found[0]) if found else None

    def get_user(self, user_id: str) -> TargetUser | None:
        path = f"/users/{quote(str(user_id), safe='')}"
        resource = _kit.absent_on_404(
            lambda: self.client.request("GET", path, params={"fields": self.user_fields}, expected=(200,))
        )
        return self.to_user(resource) if isinstance(resource, dict) else None

    def read_path(self, resource: dict[str, Any], path: str) -> Any:
        if path.startswith(TRACKING_CODE_PREFIX):
            name = path[len(TRACKING_CODE_PREFIX) :]
            codes = resource.get("tracking_codes")
            return next(
                (c.get("value") for c in codes or [] if isinstance(c, dict) and c.get("name") == name),
                None,
            )
        return resource.get(path)

    # -- users: writing ----------------------------------------------------------------------
    def create_user(self, attrs: dict[str, Any], link: str | None, enabled: bool) -> TargetUser:
        who = str(attrs.get("login") or attrs.get("name") or "?")
        body = user_body(who, attrs)
        if not enabled:
            body["status"] = INACTIVE
        elif body.get("status") in (None, INACTIVE):
            body["status"] = ACTIVE
        created: list[TargetUser] = []

        def post() -> TargetUser:
            answer = self._post_once("/users", body, expected=(201,))
            user = self.to_user(dict(body, **answer) if isinstance(answer, dict) else body)
            created.append(user)
            return user

        user = self._create(post, lambda: self.find_user(body["login"]), f"the account {body['login']}")
        if not created:
            # An account that had the login already (409, or made by an answer we lost): linked
            # and brought to the mapped values; the engine then settles its status.
            changes = {p: v for p, v in attrs.items() if not _same(v, self.read_path(user.resource, p), p)}
            changes.pop("status", None)
            if changes:
                self.update_user(user, changes)
        return user

    def update_user(self, user: TargetUser, changes: dict[str, Any], link: str | None = None) -> None:
        # ``link`` is ignored: Box users carry no marker (capabilities.user_link is "state").
        changes = dict(changes)
        if "status" in changes and restricted(user.resource.get("status")) and not self.overwrite_restricted_status:
            changes.pop("status")  # cannot_delete_edit*: left alone unless overwrite_restricted_status
        if not changes:
            return
        body = user_body(user.key, changes, current=user.resource)
        try:
            self._put_user(user, body)
        except ProvisioningError as exc:
            if "login" in body and exc.status is not None and 400 <= exc.status < 500:
                exc.message += "; Box changes a login only when the user's e-mail address is confirmed"
                exc.args = (exc.message, *exc.args[1:])
            raise

    def _put_user(self, user: TargetUser, body: dict[str, Any]) -> None:
        body.pop("enterprise", None)  # never: null rolls the user out of the enterprise
        answer = self.client.request(
            "PUT", f"/users/{quote(user.id, safe='')}", params={"fields": self.user_fields}, json=body, expected=(200,)
        )
        user.resource = dict(user.resource, **body)
        if isinstance(answer, dict):
            user.resource.update(answer)
        user.key = str(user.resource.get("login") or user.key)
        user.enabled = user.resource.get("status") != INACTIVE

    def set_user_enabled(self, user: TargetUser, enabled: bool) -> None:
        if enabled and user.enabled:
            return  # active or cannot_delete_edit*: already signs in, and its status stays as it is
        self._put_user(user, {"status": ACTIVE if enabled else INACTIVE})

    def delete_user(self, user: TargetUser) -> None:
        transferred = ""
        if self.transfer_content_to:
            destination = self._transfer_destination()
            if destination == user.id:
                raise ProvisioningError(
                    f"user {user.key}: transfer_content_to names this user itself: not deleted, nothing moved"
                )
            self._transfer_content(user, destination)
            transferred = f"its content was moved to {self.transfer_content_to} first; "
        params = {"notify": _flag(self.delete_notify), "force": _flag(self.delete_force)}
        try:
            # 404: gone already (a retried DELETE whose first attempt went through).
            self.client.request("DELETE", f"/users/{quote(user.id, safe='')}", params=params, expected=(204, 404))
        except ProvisioningError as exc:
            if exc.status == 403:
                why = (
                    f"user {user.key}: Box refused the delete (retention or legal hold policy, which even force "
                    f"cannot override): {transferred}the account is kept; release the hold or keep the user disabled"
                )
            else:
                why = f"user {user.key}: delete failed: {transferred}the next run retries the delete"
                if transferred:
                    why += " (Box may still be moving the content)"
            raise ProvisioningError(f"{why}: {exc.message}", exc.status, exc.details, wrote=bool(transferred)) from None

    def _transfer_destination(self) -> str:
        """The user id that ``transfer_content_to`` (a login or an id) names, resolved once."""
        with self._transfer_lock:
            if self._transfer_target is None:
                named = str(self.transfer_content_to)
                if named.isdigit():
                    self._transfer_target = named
                else:
                    found = self.find_user(named)
                    if found is None:
                        raise ProvisioningError(f"transfer_content_to: no managed Box user has the login {named}")
                    self._transfer_target = found.id
            return self._transfer_target

    def _transfer_content(self, user: TargetUser, destination: str) -> None:
        """Move the user's root folder (all owned content) to ``destination``; needs root_readwrite."""
        try:
            # Not resent on a timeout: Box may still be moving; the next run moves what is left.
            self.client.request(
                "PUT",
                f"/users/{quote(user.id, safe='')}/folders/0",
                params={"notify": "false", "fields": "id"},
                json={"owned_by": {"id": destination}},
                expected=(200,),
                idempotent=False,
            )
        except ProvisioningError as exc:
            raise ProvisioningError(
                f"user {user.key}: moving its content to {self.transfer_content_to} failed, so it is not deleted "
                f"(the app needs the root_readwrite scope): {exc.message}",
                exc.status,
                exc.details,
            ) from None

    # -- groups ------------------------------------------------------------------------------
    def _offset_pages(self, path: str, params: Mapping[str, Any], what: str) -> Iterator[dict[str, Any]]:
        """Every entry of an offset-paged Box listing; more than Box can page through is an error."""

        def fetch(offset: int) -> tuple[list[dict[str, Any]], int | None]:
            page = self.client.request(
                "GET", path, params=dict(params, limit=self.page_size, offset=offset), expected=(200,)
            )
            if not isinstance(page, dict) or not isinstance(page.get("entries"), list):
                raise ProvisioningError(f"GET {path}: the answer has no entries list")
            entries, total = page["entries"], page.get("total_count")
            if isinstance(total, int) and total > MAX_OFFSET:
                raise ProvisioningError(
                    f"GET {path}: {total} {what}: Box pages these by offset only and refuses offsets past "
                    f"{MAX_OFFSET}, so more than {MAX_OFFSET} cannot be read in full"
                )
            following = offset + len(entries)
            done = not entries or (following >= total if isinstance(total, int) else len(entries) < self.page_size)
            return entries, None if done else following

        return paginate(fetch, first_token=0)

    @staticmethod
    def to_group(resource: dict[str, Any]) -> TargetGroup:
        return TargetGroup(
            id=str(resource.get("id")),
            name=str(resource.get("name") or ""),
            link=resource.get("external_sync_identifier") or None,
            resource=resource,
        )

    def _groups(self, **query: Any) -> Iterator[TargetGroup]:
        seen: set[str] = set()
        for resource in self._offset_pages("/groups", dict(query, fields=",".join(GROUP_FIELDS)), "groups"):
            group_id = str(resource.get("id"))
            if group_id in seen or resource.get("group_type") == "all_users_group":
                continue
            seen.add(group_id)
            yield self.to_group(resource)

    def list_groups(self) -> Iterator[TargetGroup]:
        return self._groups()

    def find_groups(self, name: str) -> list[TargetGroup]:
        """``filter_term`` is a name prefix: keep the exact name (case-insensitively)."""
        return [group for group in self._groups(filter_term=name) if group.name.lower() == name.lower()]

    def create_group(self, name: str, link: str | None) -> TargetGroup:
        body: dict[str, Any] = {"name": name, "provenance": self.provenance}
        if link:
            body["external_sync_identifier"] = link

        def post() -> TargetGroup:
            answer = self._post_once("/groups", body, expected=(201,))
            group = self.to_group(dict(body, **answer) if isinstance(answer, dict) else body)
            group.members, group.member_handles = set(), {}
            return group

        def lookup() -> TargetGroup | None:
            return next(iter(self.find_groups(name)), None)

        return self._create(post, lookup, f"the group {name}", ours=lambda group: group.link == link)

    def update_group(self, group: TargetGroup, name: str | None = None, link: str | None = None) -> None:
        body: dict[str, Any] = {}
        if name is not None:
            body["name"] = name
        if link is not None:
            # Linked: ours from now on, and locked against edits in the web app.
            body["external_sync_identifier"] = link
            body["provenance"] = self.provenance
        if not body:
            return
        answer = self.client.request("PUT", f"/groups/{quote(group.id, safe='')}", json=body, expected=(200,))
        group.resource = {**group.resource, **body, **(answer if isinstance(answer, dict) else {})}
        group.name = str(group.resource.get("name") or group.name)
        if link is not None:
            group.link = link

    def delete_group(self, group: TargetGroup) -> None:
        self.client.request("DELETE", f"/groups/{quote(group.id, safe='')}", expected=(204, 404))

    # -- memberships -------------------------------------------------------------------------
    def _memberships(self, group: TargetGroup) -> dict[str, str]:
        """user id -> membership id, read from Box."""
        path = f"/groups/{quote(group.id, safe='')}/memberships"
        handles: dict[str, str] = {}
        for membership in self._offset_pages(path, {}, f"members in group {group.name}"):
            user = membership.get("user") if isinstance(membership.get("user"), dict) else {}
            if user.get("id") is not None:
                handles[str(user["id"])] = str(membership.get("id"))
        return handles

    def group_members(self, group: TargetGroup) -> set[str]:
        group.member_handles = self._memberships(group)
        group.members = set(group.member_handles)
        return set(group.members)

    def change_members(self, group: TargetGroup, add: list[str], remove: list[str]) -> MemberFailures:
        """One request per member; a member's 4xx is reported for it alone, the others go on."""
        if group.member_handles is None:
            self.group_members(group)
        handles = group.member_handles if group.member_handles is not None else {}
        adding = set(add)
        failures: MemberFailures = {}
        for user_id in dict.fromkeys(remove):
            if user_id in adding or user_id not in handles:
                continue  # not a member (any more): nothing to remove
            path = f"/group_memberships/{quote(handles[user_id], safe='')}"
            if _member_step(failures, user_id, lambda p=path: self.client.request("DELETE", p, expected=(204, 404))):
                handles.pop(user_id, None)
        for user_id in dict.fromkeys(add):
            if user_id in handles:
                continue  # never re-add an existing member
            membership: list[str] = []
            if _member_step(failures, user_id, lambda u=user_id, m=membership: m.append(self._add_member(group, u))):
                handles[user_id] = membership[0]
        group.members = set(handles)
        return failures

    def _add_member(self, group: TargetGroup, user_id: str) -> str:
        body = {"user": {"id": user_id}, "group": {"id": group.id}}

        def post() -> str:
            answer = self._post_once("/group_memberships", body, expected=(201,))
            return str((answer or {}).get("id")) if isinstance(answer, dict) else ""

        def lookup() -> str | None:
            return self._memberships(group).get(user_id)

        return self._create(post, lookup, f"the membership of user {user_id} in group {group.name}")

    # -- creates that never duplicate -------------------------------------------------------------
    def _create(self, post: Any, lookup: Any, name: str, ours: Any = None) -> Any:
        """``create_once`` with Box's unique keys: a 409 is answered by a lookup, and an ambiguous
        failure (a 503, a reset, a 5xx) by a lookup before each resend."""
        return _kit.create_once(post, lookup, name, ours, conflict_statuses=(409,), attempts=self.create_attempts)

    def _post_once(self, path: str, body: dict[str, Any], expected: tuple[int, ...]) -> Any:
        # The HTTP layer never resends a create blindly: a 503 waits its Retry-After and is ambiguous.
        return self.client.request("POST", path, json=body, expected=expected)


def _member_step(failures: MemberFailures, user_id: str, step: Any) -> bool:
    """Run one member's request; its own refusal (a 4xx) goes into ``failures``, anything that
    says nothing of this member (the connection, a 5xx, the credentials) is raised."""
    try:
        step()
    except ProvisioningError as exc:
        if exc.status is None or not 400 <= exc.status < 500 or exc.status == 401:
            raise
        failures[user_id] = exc.message
        return False
    return True


def _same(wanted: Any, current: Any, path: str) -> bool:
    """The engine's comparison; the key (login) case-insensitively, as the engine matches it."""
    if path == USER_KEY and isinstance(wanted, str) and isinstance(current, str):
        return wanted.lower() == current.lower()
    return values_equal(wanted, current)


# -- what the modules need ---------------------------------------------------------------------
# Works for AD and OpenLDAP (first() reads single- and multi-valued attributes). A name longer than
# Box's 50 characters is refused for that user, never cut.
DEFAULT_USER_MAPPING = {
    "login": "first(attributes.mail)",
    "name": "first(attributes.displayName) || first(attributes.cn)",
    "job_title": "first(attributes.title)",
    "phone": "first(attributes.telephoneNumber)",
}

_SECRET_OPTIONS = ("client_secret", "access_token", "jwt_private_key", "jwt_passphrase")


def connection_argument_spec() -> dict[str, Any]:
    """The Box connection options: the kit's (url, token_url, TLS, timeout, proxy), Box's
    authentication (one of: CCG, JWT, a plain access token) and its user and group behaviour."""
    from ansible.module_utils.basic import env_fallback

    def env(name: str, **option: Any) -> dict[str, Any]:
        return dict({"type": "str", "fallback": (env_fallback, [name])}, **option)

    spec = _kit.connection_argument_spec("BOX", url_default=API_URL, token_url=TOKEN_URL)
    spec.update(
        {
            "client_id": env("BOX_CLIENT_ID"),
            "client_secret": env("BOX_CLIENT_SECRET", no_log=True),
            "enterprise_id": env("BOX_ENTERPRISE_ID"),
            "config_file": env("BOX_CONFIG_FILE", type="path"),
            "jwt_key_id": env("BOX_JWT_KEY_ID"),
            "jwt_private_key": env("BOX_JWT_PRIVATE_KEY", no_log=True),
            "jwt_private_key_file": env("BOX_JWT_PRIVATE_KEY_FILE", type="path"),
            "jwt_passphrase": env("BOX_JWT_PASSPHRASE", no_log=True),
            "access_token": env("BOX_ACCESS_TOKEN", no_log=True),
            "provenance": {"type": "str", "default": DEFAULT_PROVENANCE},
            "delete_notify": {"type": "bool", "default": False},
            "delete_force": {"type": "bool", "default": False},
            "transfer_content_to": {"type": "str"},
            "overwrite_restricted_status": {"type": "bool", "default": False},
        }
    )
    return spec


def _jwt_settings(params: Mapping[str, Any]) -> dict[str, Any]:
    """client id, secret, enterprise id, key id, PEM and passphrase: from config_file and/or options."""
    settings = {name: params.get(name) for name in ("client_id", "client_secret", "enterprise_id", "jwt_key_id")}
    settings["passphrase"] = params.get("jwt_passphrase")
    pem = params.get("jwt_private_key")
    if params.get("config_file"):
        for option in ("client_id", "client_secret", "jwt_key_id", "jwt_private_key", "jwt_private_key_file"):
            if params.get(option):
                raise ProvisioningError(
                    f"config_file and {option} are mutually exclusive: the file holds the app's {option}"
                )
        try:
            with open(params["config_file"], encoding="utf-8") as handle:
                config = json.load(handle)
            app = config["boxAppSettings"]
            auth = app.get("appAuth") or {}
            settings.update(client_id=app.get("clientID"), client_secret=app.get("clientSecret"))
            settings["jwt_key_id"] = auth.get("publicKeyID")
            pem = auth.get("privateKey")
            settings["passphrase"] = settings["passphrase"] or auth.get("passphrase")
            settings["enterprise_id"] = settings["enterprise_id"] or config.get("enterpriseID")
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ProvisioningError(
                f"config_file: {params['config_file']} is not a readable Box app configuration (JSON with "
                f"boxAppSettings and enterpriseID, as the Developer Console downloads it): {type(exc).__name__}"
            ) from None
        source = "config_file"
    else:
        source = "option"
        if pem and params.get("jwt_private_key_file"):
            raise ProvisioningError("jwt_private_key and jwt_private_key_file are mutually exclusive")
        if params.get("jwt_private_key_file"):
            try:
                with open(params["jwt_private_key_file"], encoding="utf-8") as handle:
                    pem = handle.read()
            except OSError as exc:
                raise ProvisioningError(f"jwt_private_key_file: cannot read {exc.filename}: {exc.strerror}") from None
    settings["pem"] = pem
    names = {"client_id": "client_id", "client_secret": "client_secret", "jwt_key_id": "jwt_key_id"}
    for key, option in names.items():
        if not settings.get(key):
            raise ProvisioningError(f"{option}: required for JWT authentication (missing in the {source})")
    if not settings.get("pem"):
        raise ProvisioningError("jwt_private_key: required for JWT authentication (or jwt_private_key_file)")
    if not settings.get("enterprise_id"):
        raise ProvisioningError("enterprise_id: required for JWT authentication (or BOX_ENTERPRISE_ID, or config_file)")
    return settings


def load_private_key(pem: str, passphrase: str | None) -> Any:
    """The RSA key of the JWT app; errors say whether the passphrase or the key is wrong."""
    try:
        return serialization.load_pem_private_key(
            pem.encode("utf-8"), password=passphrase.encode("utf-8") if passphrase else None
        )
    except TypeError:
        if passphrase:
            raise ProvisioningError("jwt_passphrase: given, but the private key is not encrypted") from None
        raise ProvisioningError("jwt_passphrase: required: the private key is encrypted") from None
    except ValueError:
        if passphrase:
            raise ProvisioningError("jwt_passphrase: wrong passphrase for the private key, or not a PEM key") from None
        raise ProvisioningError("jwt_private_key: not a PEM private key") from None


def jwt_assertion(client_id: str, enterprise_id: str, key_id: str, key: Any, clock: Any = time.time) -> Any:
    """A function making a fresh signed assertion (unique jti, 45 s lifetime) for each token request."""

    def assertion() -> str:
        claims = {
            "iss": client_id,
            "sub": str(enterprise_id),
            "box_sub_type": "enterprise",
            "aud": JWT_AUDIENCE,
            "jti": secrets.token_urlsafe(32),
            "exp": int(clock()) + JWT_LIFETIME,
        }
        token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": key_id})
        return token.decode("ascii") if isinstance(token, bytes) else token

    return assertion


def _auth_method(params: Mapping[str, Any]) -> str:
    """``access_token``, ``jwt`` or ``ccg``: exactly one, or an error naming the options."""
    jwt_options = [n for n in ("config_file", "jwt_key_id", "jwt_private_key", "jwt_private_key_file") if params.get(n)]
    if params.get("access_token"):
        others = jwt_options + [n for n in ("client_id", "client_secret") if params.get(n)]
        if others:
            raise ProvisioningError(
                f"access_token and {others[0]} are mutually exclusive: give one authentication method "
                "(check BOX_ACCESS_TOKEN, BOX_CLIENT_ID and BOX_CONFIG_FILE in the environment)"
            )
        return "access_token"
    if jwt_options:
        return "jwt"
    if params.get("client_id") or params.get("client_secret"):
        return "ccg"
    raise ProvisioningError(
        "authentication: give client_id + client_secret + enterprise_id (Client Credentials Grant), "
        "config_file or the JWT options (jwt_key_id, jwt_private_key), or access_token"
    )


def connector_from_params(params: Mapping[str, Any], **client_options: Any) -> BoxConnector:
    """A connector from module parameters; errors name the option. ``client_options`` go to the
    HttpClients (tests pass ``sleep``)."""
    for option in ("timeout", "member_chunk", "page_size"):
        if params.get(option) is not None and params[option] < 1:
            raise ProvisioningError(f"{option}: must be at least 1, got {params[option]}")
    provenance = params.get("provenance", DEFAULT_PROVENANCE)
    if provenance is not None and len(provenance) > 255:
        raise ProvisioningError(f"provenance: at most 255 characters, got {len(provenance)}")
    method = _auth_method(params)
    secrets_ = [params.get(name) for name in _SECRET_OPTIONS if params.get(name)]
    if method == "access_token":
        client = _kit.http_client(params, auth=bearer_auth(params["access_token"]), secrets=secrets_, **client_options)
    else:
        token_url = params.get("token_url") or TOKEN_URL
        if method == "ccg":
            _kit.require(params, "client_id", "client_secret", why="for the Client Credentials Grant")
            _kit.require(params, "enterprise_id", why="for the Client Credentials Grant (or BOX_ENTERPRISE_ID)")
            grant = client_credentials(
                params["client_id"],
                params["client_secret"],
                box_subject_type="enterprise",
                box_subject_id=str(params["enterprise_id"]),
            )
            grant_secrets: tuple[str | None, ...] = (params["client_secret"],)
        else:
            if not HAS_JWT:
                from ansible.module_utils.basic import missing_required_lib

                raise ProvisioningError(f"{missing_required_lib('PyJWT and cryptography')} (for JWT authentication)")
            settings = _jwt_settings(params)
            key = load_private_key(settings["pem"], settings["passphrase"])
            assertion = jwt_assertion(settings["client_id"], settings["enterprise_id"], settings["jwt_key_id"], key)
            grant = jwt_bearer(assertion, settings["client_id"], settings["client_secret"])
            grant_secrets = (settings["client_secret"], settings["pem"], settings["passphrase"])
        endpoint = _kit.http_client(params, base_url=token_url, secrets=secrets_, **client_options)
        source = TokenSource(endpoint, token_url, grant, secrets=grant_secrets)
        client = _kit.http_client(
            params,
            auth=source.auth_hook,
            on_unauthorized=source.on_unauthorized,
            secrets=secrets_,
            **client_options,
        )
        client.token_source = source  # type: ignore[attr-defined] - for tests and benchmarks
    return BoxConnector(
        client,
        page_size=params.get("page_size") or MAX_PAGE,
        member_chunk=params.get("member_chunk") or 100,
        provenance=provenance or DEFAULT_PROVENANCE,
        delete_notify=bool(params.get("delete_notify")),
        delete_force=bool(params.get("delete_force")),
        transfer_content_to=params.get("transfer_content_to") or None,
        overwrite_restricted_status=bool(params.get("overwrite_restricted_status")),
    )


TARGET = _kit.Target(
    name="box",
    build=connector_from_params,
    connection_spec=connection_argument_spec,
    user_key=USER_KEY,
    default_user_mapping=DEFAULT_USER_MAPPING,
)
