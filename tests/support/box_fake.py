# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A stateful fake Box (API under ``/2.0``, token endpoint ``/oauth2/token``) on the fake-service base.

Written from ``shared/reference/box-api.md``. What it holds and does:

* **the app** (``BoxApp``): client id/secret, enterprise id, an RSA key pair and its ``kid``, the
  scopes its tokens carry, token lifetime (``token_ttl``, ``token_max_uses`` for mid-run expiry).
  ``app.config()`` is the app's JSON config file (``boxAppSettings``...), ``app.assertion()`` a JWT.
* **the token endpoint**: the Client Credentials Grant and the JWT bearer grant (RS256/384/512
  signature checked with the app's public key, ``kid``, ``aud`` = the real token URL, ``iss``,
  ``sub``, ``box_sub_type``, ``jti`` 16-128 characters and never replayed, ``exp`` in the future
  and at most 60 s ahead, on ``wall_clock``). OAuth errors: 400 ``{"error", "error_description"}``.
* **users**: ``GET /users`` (``user_type``, ``filter_term``, ``fields``, offset paging with
  ``offset`` > 10000 refused, marker paging with ``usemarker``: the last page's ``next_marker`` is
  ``end_marker``, None or ""), create / read / update / delete, ``PUT .../folders/0`` (content
  transfer). Without ``fields`` Box answers its *standard* representation only (no ``role``,
  ``tracking_codes``, ``enterprise``, ``is_platform_access_only``...); with ``fields`` only the mini
  fields (type, id, name, login) plus the ones asked for. A service account
  (``AutomationUser_...@boxdevedition.com``) is always there; ``seed_app_user`` adds app users.
* **groups and memberships**: offset paging; names unique (409); an ``all_users_group`` is always
  there and cannot be changed; a second membership of a user in a group is a 409 (the code Box
  uses there is not confirmed: ``conflict`` here).
* **nothing lost**: a user who owns content (``seed_user(content=n)``) is not deleted without
  ``force``: ``owns_content_error`` (400 ``bad_request`` by default; Box's exact code is not
  confirmed); one under a legal hold or retention policy (``place_legal_hold``,
  ``retention_policy = True``) and owning content is refused 403 ``forbidden`` even with force.
  A transfer needs ``root_readwrite`` (else 403 ``insufficient_scope``); with
  ``transfer_finishes_later = n`` the next n deletes of the user still find content.
* what tests read: ``users`` / ``groups`` / ``memberships`` (the API records), ``user_state``
  (content, holds), ``transfers``, ``deleted_users``, ``enterprise_removals`` (every ``PUT`` with
  ``enterprise: null``; ``assert_never_removed_from_enterprise()``), ``members_of(group_id)``,
  plus the base's request log, ``snapshot()``, ``faults``, ``rate_limit``.

Every request is validated against Box's OpenAPI description (``box_openapi_validator``): Box's
own ``openapi.json`` when ``BOX_OPENAPI_PATH`` or ``shared/reference/box-openapi.json`` provides
it, else the hand-written subset ``tests/data/box/openapi-subset.json`` (no package registry this
project reaches ships Box's description). A request it rejects is answered 400 like Box does.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from support.fake_service import Call, FakeError, FakeService, OpenAPIValidator, route

TOKEN_URL = "https://api.box.com/oauth2/token"  # the JWT's aud, whatever address the fake listens on
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
CCG_GRANT = "client_credentials"
DEFAULT_SCOPES = frozenset({"manage_managed_users", "manage_groups", "root_readwrite"})
MAX_LIMIT = 1000
MAX_OFFSET = 10000
DEFAULT_LIMIT = 100

REPO_ROOT = Path(__file__).resolve().parents[2]
SUBSET_PATH = REPO_ROOT / "tests" / "data" / "box" / "openapi-subset.json"
SHARED_DESCRIPTION = REPO_ROOT.parent / "shared" / "reference" / "box-openapi.json"

USER_MINI = ("type", "id", "name", "login")
# Box's standard representation of a user (what it answers without ``fields``).
USER_STANDARD = (
    *USER_MINI,
    "created_at",
    "modified_at",
    "language",
    "timezone",
    "space_amount",
    "space_used",
    "max_upload_size",
    "status",
    "job_title",
    "phone",
    "address",
    "avatar_url",
    "notification_email",
)
# Written by POST/PUT /users (besides name and login).
USER_WRITABLE = (
    "role",
    "language",
    "is_sync_enabled",
    "job_title",
    "phone",
    "address",
    "space_amount",
    "tracking_codes",
    "can_see_managed_users",
    "timezone",
    "is_external_collab_restricted",
    "is_exempt_from_device_limits",
    "is_exempt_from_login_verification",
    "status",
    "external_app_user_id",
)
USER_ROLES = ("coadmin", "user")
USER_STATUSES = ("active", "inactive", "cannot_delete_edit", "cannot_delete_edit_upload")
USER_LIMITS = {"name": 50, "job_title": 100, "phone": 100, "address": 255}
GROUP_MINI = ("type", "id", "name", "group_type")
GROUP_STANDARD = (*GROUP_MINI, "created_at", "modified_at")
GROUP_WRITABLE = (
    "name",
    "provenance",
    "external_sync_identifier",
    "description",
    "invitability_level",
    "member_viewability_level",
)
GROUP_LEVELS = ("admins_only", "admins_and_members", "all_managed_users")
GROUP_LIMITS = {"provenance": 255, "description": 255}
MEMBERSHIP_MINI = ("type", "id", "user", "group", "role")


# -- Box's OpenAPI description ----------------------------------------------------------------
def box_openapi_path() -> Path:
    """Box's own openapi.json when provided (BOX_OPENAPI_PATH, then shared/reference/box-openapi.json),
    else the hand-written subset of this repository."""
    configured = os.environ.get("BOX_OPENAPI_PATH")
    if configured:
        path = Path(configured)
        if not path.is_file():
            raise FileNotFoundError(f"BOX_OPENAPI_PATH={configured}: no such file")
        return path
    if SHARED_DESCRIPTION.is_file():
        return SHARED_DESCRIPTION
    return SUBSET_PATH


@functools.lru_cache(maxsize=4)
def _validator_for(path: str) -> OpenAPIValidator:
    subset = Path(path) == SUBSET_PATH
    # Box's whole description is large: skip checking the description itself (it is Box's).
    return OpenAPIValidator(path, origin="https://api.box.com", check_spec=subset)


def box_openapi_validator() -> OpenAPIValidator:
    """One validator per process (building one from Box's description takes seconds)."""
    return _validator_for(str(box_openapi_path()))


def describes_real_box() -> bool:
    return box_openapi_path() != SUBSET_PATH


# -- the app ------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _shared_private_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class BoxApp:
    """A Box app (custom app, server authentication) with its enterprise's authorization."""

    client_id: str = "fakeboxclientid0000000000000001"
    client_secret: str = "fakeboxclientsecret000000000001"
    enterprise_id: str = "900001"
    key_id: str = "fakekid1"
    scopes: frozenset[str] = DEFAULT_SCOPES
    token_ttl: float = 3600.0  # expires_in of the tokens it is issued (seconds of the fake's clock)
    token_max_uses: int | None = None  # tokens expire after this many API requests (mid-run expiry)
    grants: frozenset[str] = frozenset({CCG_GRANT, JWT_GRANT})
    authorized: bool = True  # False: the enterprise admin has not authorized it (unauthorized_client)
    private_key: Any = None  # cryptography RSA private key; default: one shared per process

    def __post_init__(self) -> None:
        if self.private_key is None:
            self.private_key = _shared_private_key()

    @classmethod
    def with_new_key(cls, **options: Any) -> BoxApp:
        from cryptography.hazmat.primitives.asymmetric import rsa

        return cls(private_key=rsa.generate_private_key(public_exponent=65537, key_size=2048), **options)

    @property
    def public_key(self) -> Any:
        return self.private_key.public_key()

    def private_key_pem(self, passphrase: str | None = None) -> str:
        """PKCS#8 PEM, encrypted with ``passphrase`` (as in Box's config file) when given."""
        from cryptography.hazmat.primitives import serialization

        encryption = (
            serialization.BestAvailableEncryption(passphrase.encode()) if passphrase else serialization.NoEncryption()
        )
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        ).decode()

    def config(self, passphrase: str = "fake-passphrase") -> dict[str, Any]:
        """The app's JSON config file as Box's developer console downloads it."""
        return {
            "boxAppSettings": {
                "clientID": self.client_id,
                "clientSecret": self.client_secret,
                "appAuth": {
                    "publicKeyID": self.key_id,
                    "privateKey": self.private_key_pem(passphrase),
                    "passphrase": passphrase,
                },
            },
            "enterpriseID": self.enterprise_id,
        }

    def assertion(
        self,
        *,
        now: float | None = None,
        lifetime: float = 30,
        algorithm: str = "RS256",
        key: Any = None,
        headers: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        """A JWT assertion as Box's SDK makes it; ``claims`` override (a value None drops the claim)."""
        import jwt

        now = time.time() if now is None else now
        payload: dict[str, Any] = {
            "iss": self.client_id,
            "sub": self.enterprise_id,
            "box_sub_type": "enterprise",
            "aud": TOKEN_URL,
            "jti": secrets.token_urlsafe(24),
            "exp": int(now + lifetime),
        }
        payload.update(claims)
        payload = {k: v for k, v in payload.items() if v is not None}
        header = {"kid": self.key_id, **(headers or {})}
        return jwt.encode(payload, key or self.private_key, algorithm=algorithm, headers=header)


@dataclass
class UserState:
    """What Box holds of a user besides the API record."""

    content: int = 0  # items the user owns
    legal_hold: bool = False
    external: bool = False  # a collaborator from another enterprise (user_type=external)
    login_confirmed: bool = True  # False: the login cannot be changed
    pending_transfer_deletes: int = 0  # deletes that still find content after a transfer
    removed_from_enterprise: bool = False


class OAuthError(FakeError):
    def __init__(self, error: str, description: str, status: int = 400):
        body = {"error": error, "error_description": description}
        super().__init__(status, error, description, response=FakeService.json(body, status))


def _now_iso(wall_clock: Callable[[], float]) -> str:
    return datetime.fromtimestamp(wall_clock(), UTC).astimezone().replace(microsecond=0).isoformat()


def _bad_request(message: str, name: str | None = None) -> FakeError:
    error = {"reason": "invalid_parameter", "message": message}
    if name:
        error["name"] = name
    return FakeError(400, "bad_request", "Bad Request", context_info={"errors": [error]})


def _fields_of(call: Call) -> list[str] | None:
    values = call.query.getlist("fields")
    if not values:
        return None
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


def _bool(value: str | None) -> bool:
    return str(value).lower() in ("true", "1")


def _int_param(call: Call, name: str, default: int) -> int:
    raw = call.query.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise _bad_request(f"{name} must be an integer", name) from None


class BoxFake(FakeService):
    """Box's API under ``/2.0`` and its token endpoint ``/oauth2/token``: see the module docstring.

    ``app``: the Box app (default ``BoxApp()``); ``validator``: "box" (Box's description, the
    default), None, or any ``Validator``; ``wall_clock``: the JWT's clock (``exp``).
    ``api_url`` and ``token_url`` are the fake's addresses for the connector's two options.
    """

    def __init__(
        self,
        app: BoxApp | None = None,
        *,
        validator: Any = "box",
        wall_clock: Callable[[], float] = time.time,
        **options: Any,
    ):
        if validator == "box":
            validator = box_openapi_validator()
        super().__init__(validator=validator, **options)
        self.app = app or BoxApp()
        self.apps: dict[str, BoxApp] = {self.app.client_id: self.app}
        self.wall_clock = wall_clock
        # Behaviour switches (kept by reset()).
        self.end_marker: str | None = None  # next_marker of the last page: None or ""
        self.owns_content_error = (400, "bad_request", "User still owns content: move it first or delete with force")
        self.duplicate_membership_error = (409, "conflict", "User is already a member of this group")
        self.reset()

    # -- state ----------------------------------------------------------------------------------
    def reset(self) -> None:
        """The initial state (service account and all-users group), no faults, log and jtis cleared."""
        with self.lock:
            self._next_id = 20000000
            self.enterprise = {"type": "enterprise", "id": self.app.enterprise_id, "name": "Fake Enterprise"}
            self.users: dict[str, dict[str, Any]] = {}
            self.user_state: dict[str, UserState] = {}
            self.groups: dict[str, dict[str, Any]] = {}
            self.memberships: dict[str, dict[str, Any]] = {}
            self.transfers: list[dict[str, Any]] = []
            self.deleted_users: list[dict[str, Any]] = []
            self.enterprise_removals: list[dict[str, Any]] = []
            self.used_jtis: set[str] = set()
            self.tracking_code_names: set[str] | None = None  # None: any name is configured
            self.retention_policy = False  # True: every content owner is undeletable
            self.transfer_finishes_later = 0  # deletes that still fail after a transfer
            self.faults.clear()
            self.rate_limit(None)
            self.clear_log()
            self.service_account = self._add_user(
                f"AutomationUser_{self.app.client_id[:6]}_{secrets.token_hex(4)}@boxdevedition.com",
                "Fake Box App",
                role="coadmin",
            )
            self.all_users_group = self._add_group("All Users", group_type="all_users_group")

    def state_dump(self) -> Any:
        return {
            "users": self.users,
            "user_state": {uid: vars(state) for uid, state in self.user_state.items()},
            "groups": self.groups,
            "memberships": self.memberships,
            "transfers": self.transfers,
            "deleted_users": self.deleted_users,
            "enterprise_removals": self.enterprise_removals,
        }

    def _new_id(self) -> str:
        self._next_id += 1
        return str(self._next_id)

    def _add_user(self, login: str, name: str, **fields: Any) -> dict[str, Any]:
        now = _now_iso(self.wall_clock)
        user = {
            "type": "user",
            "id": self._new_id(),
            "name": name,
            "login": login,
            "created_at": now,
            "modified_at": now,
            "language": "en",
            "timezone": "America/Los_Angeles",
            "space_amount": -1,
            "space_used": 0,
            "max_upload_size": 5368709120,
            "status": "active",
            "job_title": "",
            "phone": "",
            "address": "",
            "avatar_url": "",
            "notification_email": None,
            "role": "user",
            "tracking_codes": [],
            "can_see_managed_users": True,
            "is_sync_enabled": True,
            "is_external_collab_restricted": False,
            "is_exempt_from_device_limits": False,
            "is_exempt_from_login_verification": False,
            "enterprise": dict(self.enterprise),
            "my_tags": [],
            "hostname": "https://app.box.com/",
            "is_platform_access_only": False,
            "external_app_user_id": "",
        }
        user.update(fields)
        self.users[user["id"]] = user
        self.user_state[user["id"]] = UserState()
        return user

    def _add_group(self, name: str, group_type: str = "managed_group", **fields: Any) -> dict[str, Any]:
        now = _now_iso(self.wall_clock)
        group = {
            "type": "group",
            "id": self._new_id(),
            "name": name,
            "group_type": group_type,
            "created_at": now,
            "modified_at": now,
            "provenance": None,
            "external_sync_identifier": None,
            "description": None,
            "invitability_level": "admins_only",
            "member_viewability_level": "admins_only",
            "permissions": {"can_invite_as_collaborator": True},
        }
        group.update(fields)
        self.groups[group["id"]] = group
        return group

    def _add_membership(self, user_id: str, group_id: str, role: str = "member") -> dict[str, Any]:
        now = _now_iso(self.wall_clock)
        membership = {
            "type": "group_membership",
            "id": self._new_id(),
            "user_id": user_id,
            "group_id": group_id,
            "role": role,
            "created_at": now,
            "modified_at": now,
        }
        self.memberships[membership["id"]] = membership
        return membership

    # -- seeding (bypasses the API, its validation and the log) ----------------------------------
    def seed_user(
        self,
        login: str,
        name: str | None = None,
        *,
        content: int = 0,
        legal_hold: bool = False,
        external: bool = False,
        login_confirmed: bool = True,
        **fields: Any,
    ) -> dict[str, Any]:
        """A managed user (``external=True``: a collaborator from elsewhere); ``fields`` as Box names them."""
        with self.lock:
            user = self._add_user(login, name or login.split("@")[0], **fields)
            if external:
                user["enterprise"] = None
            state = self.user_state[user["id"]]
            state.content, state.legal_hold, state.external = content, legal_hold, external
            state.login_confirmed = login_confirmed
            if legal_hold and not content:
                state.content = 1
            return user

    def seed_app_user(self, name: str, external_app_user_id: str = "") -> dict[str, Any]:
        with self.lock:
            login = f"AppUser_{self.app.client_id[:6]}_{secrets.token_hex(4)}@boxdevedition.com"
            return self._add_user(login, name, is_platform_access_only=True, external_app_user_id=external_app_user_id)

    def seed_group(self, name: str, members: Iterable[str] = (), **fields: Any) -> dict[str, Any]:
        with self.lock:
            group = self._add_group(name, **fields)
            for user_id in members:
                self._add_membership(str(user_id), group["id"])
            return group

    def add_member(self, group_id: str, user_id: str, role: str = "member") -> dict[str, Any]:
        with self.lock:
            return self._add_membership(user_id, group_id, role)

    def give_content(self, user_id: str, items: int = 1) -> None:
        with self.lock:
            self.user_state[user_id].content += items

    def place_legal_hold(self, user_id: str) -> None:
        """A legal hold covering the user, who owns content: deleting them is 403 even with force."""
        with self.lock:
            state = self.user_state[user_id]
            state.legal_hold = True
            state.content = max(1, state.content)

    def add_app(self, **options: Any) -> BoxApp:
        """Another app of the same enterprise (other scopes, grants, lifetimes)."""
        app = BoxApp(**{"enterprise_id": self.app.enterprise_id, **options})
        with self.lock:
            self.apps[app.client_id] = app
        return app

    def access_token(
        self,
        scopes: Iterable[str] | None = None,
        ttl: float | None = 3600.0,
        max_uses: int | None = None,
        app: BoxApp | None = None,
    ) -> str:
        """A token as the token endpoint would issue it, without asking it."""
        app = app or self.app
        return self.issue_token(
            ttl,
            max_uses=max_uses,
            client_id=app.client_id,
            scopes=sorted(app.scopes if scopes is None else scopes),
            subject=("enterprise", app.enterprise_id),
        )

    # -- inspecting ------------------------------------------------------------------------------
    @property
    def api_url(self) -> str:
        return f"{self.url}/2.0"

    @property
    def token_url(self) -> str:
        return f"{self.url}/oauth2/token"

    def managed_users(self, include_service: bool = False) -> list[dict[str, Any]]:
        """Managed users of the enterprise (no app users, no externals, no one rolled out of it)."""
        with self.lock:
            return [
                user
                for user in self._visible_users("managed")
                if not user["is_platform_access_only"] and (include_service or user is not self.service_account)
            ]

    def user_by_login(self, login: str) -> dict[str, Any] | None:
        with self.lock:
            return next((u for u in self.users.values() if u["login"].lower() == login.lower()), None)

    def group_by_name(self, name: str) -> dict[str, Any] | None:
        with self.lock:
            return next((g for g in self.groups.values() if g["name"].lower() == name.lower()), None)

    def managed_groups(self) -> list[dict[str, Any]]:
        with self.lock:
            return [g for g in self.groups.values() if g["group_type"] == "managed_group"]

    def members_of(self, group_id: str) -> set[str]:
        with self.lock:
            return {m["user_id"] for m in self.memberships.values() if m["group_id"] == group_id}

    def assert_never_removed_from_enterprise(self) -> None:
        if self.enterprise_removals:
            raise AssertionError(
                f"PUT /users/{{id}} with enterprise: null rolled users out: {self.enterprise_removals}"
            )

    # -- Box's bodies -------------------------------------------------------------------------------
    def error_response(self, status, code, message, **extra):
        call = self.current_call
        body = {"type": "error", "status": status, "code": code, "message": message}
        body.update(extra)
        body["help_url"] = "http://developers.box.com/docs/#errors"
        body["request_id"] = f"fake{call.seq:08x}" if call else secrets.token_hex(6)
        return self.json(body, status)

    def unauthorized_response(self, reason, message):
        # Box answers 401 with an empty body; the reason is in WWW-Authenticate.
        challenge = 'Bearer realm="Service"'
        if reason != "missing":
            what = "has expired" if reason == "expired" else "is invalid"
            challenge += f', error="invalid_token", error_description="The access token provided {what}."'
        return self.empty(401, {"WWW-Authenticate": challenge})

    def rate_limited_response(self, retry_after):
        return self.error_response(429, "rate_limit_exceeded", "Request rate limit exceeded, please try again later")

    def validation_failed_response(self, errors):
        details = [{"reason": "invalid_parameter", "message": error} for error in errors]
        return self.error_response(400, "bad_request", "Bad Request", context_info={"errors": details})

    def not_found_response(self):
        return self.error_response(404, "not_found", "Not Found")

    # -- helpers of the handlers ---------------------------------------------------------------
    def _need_scope(self, call: Call, scope: str) -> None:
        scopes = (call.token.claims or {}).get("scopes") if call.token is not None else None
        if scopes is not None and scope not in scopes:
            raise FakeError(
                403,
                "insufficient_scope",
                "The request requires higher privileges than provided by the access token.",
            )

    def _visible_users(self, user_type: str) -> list[dict[str, Any]]:
        users = []
        for user_id in sorted(self.users, key=int):
            state = self.user_state[user_id]
            if state.removed_from_enterprise:
                continue
            if user_type == "managed" and state.external:
                continue
            if user_type == "external" and not state.external:
                continue
            users.append(self.users[user_id])
        return users

    def _user(self, user_id: str) -> dict[str, Any]:
        user = self.users.get(user_id)
        if user is None or self.user_state[user_id].removed_from_enterprise:
            raise FakeError(404, "not_found", "Not Found")
        return user

    def _group(self, group_id: str) -> dict[str, Any]:
        group = self.groups.get(group_id)
        if group is None:
            raise FakeError(404, "not_found", "Not Found")
        return group

    @staticmethod
    def _view(record: dict[str, Any], fields: list[str] | None, mini: tuple, standard: tuple) -> dict[str, Any]:
        names = standard if fields is None else (*mini, *fields)
        return {name: record[name] for name in dict.fromkeys(names) if name in record}

    def _user_view(self, user: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
        return self._view(user, fields, USER_MINI, USER_STANDARD)

    def _group_view(self, group: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
        return self._view(group, fields, GROUP_MINI, GROUP_STANDARD)

    def _membership_view(self, membership: dict[str, Any]) -> dict[str, Any]:
        user = self.users[membership["user_id"]]
        group = self.groups[membership["group_id"]]
        return {
            "type": "group_membership",
            "id": membership["id"],
            "user": {k: user[k] for k in USER_MINI},
            "group": {k: group[k] for k in GROUP_MINI},
            "role": membership["role"],
            "created_at": membership["created_at"],
            "modified_at": membership["modified_at"],
        }

    def _page_params(self, call: Call) -> tuple[int, int]:
        limit = _int_param(call, "limit", DEFAULT_LIMIT)
        offset = _int_param(call, "offset", 0)
        if limit < 1 or limit > MAX_LIMIT:
            raise _bad_request(f"limit must be between 1 and {MAX_LIMIT}", "limit")
        if offset < 0:
            raise _bad_request("offset must not be negative", "offset")
        if offset > MAX_OFFSET:
            raise FakeError(
                400,
                "bad_request",
                f"Queries with offset parameter value exceeding {MAX_OFFSET} are rejected",
                context_info={"errors": [{"reason": "invalid_parameter", "name": "offset", "message": "too large"}]},
            )
        return limit, offset

    @staticmethod
    def _offset_page(entries: list[Any], limit: int, offset: int) -> dict[str, Any]:
        return {
            "total_count": len(entries),
            "limit": limit,
            "offset": offset,
            "order": [{"by": "id", "direction": "ASC"}],
            "entries": entries[offset : offset + limit],
        }

    def _check_user_fields(self, body: dict[str, Any], creating: bool) -> None:
        """What Box refuses whatever the description says (also when validation is off)."""
        if creating and not body.get("name"):
            raise _bad_request("name is required", "name")
        for name, limit in USER_LIMITS.items():
            value = body.get(name)
            if isinstance(value, str) and len(value) > limit:
                raise _bad_request(f"{name} is longer than {limit} characters", name)
        if "role" in body and body["role"] not in USER_ROLES:
            raise _bad_request(f"role must be one of {', '.join(USER_ROLES)}", "role")
        if "status" in body and body["status"] not in USER_STATUSES:
            raise _bad_request(f"status must be one of {', '.join(USER_STATUSES)}", "status")
        login = body.get("login")
        if login is not None and "@" not in str(login):
            raise _bad_request("login must be an email address", "login")
        for code in body.get("tracking_codes") or []:
            if self.tracking_code_names is not None and code.get("name") not in self.tracking_code_names:
                raise _bad_request(f"tracking code {code.get('name')!r} is not configured", "tracking_codes")

    def _login_taken(self, login: str, except_id: str | None = None) -> bool:
        return any(u["login"].lower() == login.lower() and u["id"] != except_id for u in self.users.values())

    # -- the token endpoint --------------------------------------------------------------------
    @route("POST", "/oauth2/token", auth=False, write=False)  # a token is no write to the state
    def post_token(self, call):
        form = call.body if isinstance(call.body, dict) else {}
        grant = form.get("grant_type")
        app = self.apps.get(form.get("client_id") or "")
        if grant not in (CCG_GRANT, JWT_GRANT):
            raise OAuthError("unsupported_grant_type", "Grant type is not supported")
        if app is None or not secrets.compare_digest(str(form.get("client_secret") or ""), app.client_secret):
            raise OAuthError("invalid_client", "The client credentials are invalid")
        if grant not in app.grants:
            raise OAuthError("unauthorized_client", "The grant type is unauthorized for this client_id")
        if grant == CCG_GRANT:
            subject = (form.get("box_subject_type"), form.get("box_subject_id"))
            self._check_subject(app, *subject, OAuthError("invalid_grant", "Grant credentials are invalid"))
        else:
            subject = self._verify_assertion(app, str(form.get("assertion") or ""))
        if not app.authorized:
            raise OAuthError("unauthorized_client", "This app is not authorized by the enterprise admin")
        token = self.issue_token(
            app.token_ttl,
            max_uses=app.token_max_uses,
            client_id=app.client_id,
            scopes=sorted(app.scopes),
            subject=subject,
            grant=grant,
        )
        return {
            "access_token": token,
            "expires_in": int(app.token_ttl),
            "token_type": "bearer",
            "restricted_to": [],
        }

    def _check_subject(self, app: BoxApp, kind: Any, subject_id: Any, error: FakeError) -> None:
        if kind == "enterprise" and str(subject_id) == app.enterprise_id:
            return
        if kind == "user" and str(subject_id) in self.users:
            return
        raise error

    def _verify_assertion(self, app: BoxApp, assertion: str) -> tuple[str, str]:
        import jwt

        def refuse(what: str) -> OAuthError:
            return OAuthError("invalid_grant", what)

        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError:
            raise refuse("Invalid JWT assertion") from None
        if header.get("kid") != app.key_id:
            raise refuse("Please check the 'kid' header parameter.")
        try:
            claims = jwt.decode(
                assertion,
                app.public_key,
                algorithms=["RS256", "RS384", "RS512"],
                audience=TOKEN_URL,
                issuer=app.client_id,
                options={"require": ["iss", "sub", "aud", "jti", "exp"], "verify_exp": False},
            )
        except jwt.InvalidSignatureError:
            raise refuse(
                "Signature verification error. The public key identified by 'kid' must correspond to the private key used for signing."
            ) from None
        except jwt.InvalidAudienceError:
            raise refuse("Please check the 'aud' claim. Should match the token URL.") from None
        except jwt.InvalidIssuerError:
            raise refuse("Please check the 'iss' claim.") from None
        except jwt.MissingRequiredClaimError as exc:
            raise refuse(f"Please check the '{exc.claim}' claim.") from None
        except jwt.PyJWTError as exc:
            raise refuse(f"Invalid JWT assertion: {exc}") from None
        now = self.wall_clock()
        exp = claims["exp"]
        if not isinstance(exp, (int, float)) or exp <= now or exp > now + 60:
            raise refuse("Please check the 'exp' claim.")
        jti = claims["jti"]
        if not isinstance(jti, str) or not 16 <= len(jti) <= 128:
            raise refuse("Please check the 'jti' claim.")
        if jti in self.used_jtis:
            raise refuse("Please check the 'jti' claim. A unique 'jti' value is required.")
        kind = claims.get("box_sub_type")
        self._check_subject(app, kind, claims["sub"], refuse("Please check the 'sub' claim."))
        self.used_jtis.add(jti)
        return (kind, str(claims["sub"]))

    # -- users ----------------------------------------------------------------------------------
    @route("GET", "/2.0/users")
    def list_users(self, call):
        self._need_scope(call, "manage_managed_users")
        user_type = call.query.get("user_type") or "all"
        if user_type not in ("all", "managed", "external"):
            raise _bad_request("user_type must be all, managed or external", "user_type")
        fields = _fields_of(call)
        users = self._visible_users(user_type)
        term = (call.query.get("filter_term") or "").lower()
        if term:
            users = [
                u
                for u in users
                if (u["login"].lower() == term)
                or (
                    not self.user_state[u["id"]].external
                    and (u["name"].lower().startswith(term) or u["login"].lower().startswith(term))
                )
            ]
        app_user_id = call.query.get("external_app_user_id")
        if app_user_id:
            users = [u for u in users if u["external_app_user_id"] == app_user_id]
        limit, offset = self._page_params(call)
        if not _bool(call.query.get("usemarker")):
            return self._offset_page([self._user_view(u, fields) for u in users], limit, offset)
        start = 0
        marker = call.query.get("marker")
        if marker:
            start = self._read_marker(marker, users)
        page = users[start : start + limit]
        more = start + limit < len(users)
        return {
            "limit": limit,
            "next_marker": self._marker(page[-1]["id"]) if more else self.end_marker,
            "entries": [self._user_view(u, fields) for u in page],
        }

    @staticmethod
    def _marker(after_id: str) -> str:
        return base64.urlsafe_b64encode(json.dumps({"after": after_id}).encode()).decode().rstrip("=")

    @staticmethod
    def _read_marker(marker: str, users: list[dict[str, Any]]) -> int:
        try:
            after = json.loads(base64.urlsafe_b64decode(marker + "=" * (-len(marker) % 4)))["after"]
            after = int(after)
        except (ValueError, KeyError, TypeError):
            raise _bad_request("invalid marker", "marker") from None
        return next((i for i, u in enumerate(users) if int(u["id"]) > after), len(users))

    @route("POST", "/2.0/users")
    def create_user(self, call):
        self._need_scope(call, "manage_managed_users")
        body = call.body if isinstance(call.body, dict) else {}
        self._check_user_fields(body, creating=True)
        app_user = bool(body.get("is_platform_access_only"))
        login = body.get("login")
        if not login and not app_user:
            raise _bad_request("login is required", "login")
        if app_user:
            login = f"AppUser_{self.app.client_id[:6]}_{secrets.token_hex(4)}@boxdevedition.com"
        if self._login_taken(login):
            raise FakeError(409, "user_login_already_used", "User with the specified login already exists")
        fields = {name: body[name] for name in USER_WRITABLE if name in body}
        user = self._add_user(login, body["name"], is_platform_access_only=app_user, **fields)
        return 201, self._user_view(user, _fields_of(call))

    @route("GET", "/2.0/users/{user_id}")
    def get_user(self, call, user_id):
        self._need_scope(call, "manage_managed_users")
        return self._user_view(self._user(user_id), _fields_of(call))

    @route("PUT", "/2.0/users/{user_id}")
    def update_user(self, call, user_id):
        self._need_scope(call, "manage_managed_users")
        user = self._user(user_id)
        body = call.body if isinstance(call.body, dict) else {}
        self._check_user_fields(body, creating=False)
        state = self.user_state[user_id]
        login = body.get("login")
        if login is not None and login.lower() != user["login"].lower():
            if self._login_taken(login, except_id=user_id):
                raise FakeError(409, "user_login_already_used", "User with the specified login already exists")
            if not state.login_confirmed:
                raise FakeError(
                    400,
                    "bad_request",
                    "The primary login address cannot be changed: the user's email is not confirmed",
                )
        if "enterprise" in body and body["enterprise"] is None:
            self.enterprise_removals.append({"user_id": user_id, "login": user["login"], "request": call.seq})
            state.removed_from_enterprise = True
            user["enterprise"] = None
        for name in ("name", "login", *USER_WRITABLE):
            if name in body:
                user[name] = body[name]
        if "notification_email" in body:
            email = body["notification_email"]
            user["notification_email"] = None if email is None else {"email": email.get("email"), "is_confirmed": False}
        user["modified_at"] = _now_iso(self.wall_clock)
        return self._user_view(user, _fields_of(call))

    @route("DELETE", "/2.0/users/{user_id}")
    def delete_user(self, call, user_id):
        self._need_scope(call, "manage_managed_users")
        user = self._user(user_id)
        state = self.user_state[user_id]
        force = _bool(call.query.get("force"))
        owns = state.content > 0 or state.pending_transfer_deletes > 0
        if state.pending_transfer_deletes > 0:
            state.pending_transfer_deletes -= 1
            if state.pending_transfer_deletes == 0:
                for transfer in self.transfers:
                    if transfer["from"] == user_id:
                        transfer["finished"] = True
        if owns and (state.legal_hold or self.retention_policy):
            raise FakeError(
                403, "forbidden", "User cannot be deleted due to retention policies. Please transfer user content first"
            )
        if owns and not force:
            status, code, message = self.owns_content_error
            raise FakeError(status, code, message)
        for membership_id in [m for m, ms in self.memberships.items() if ms["user_id"] == user_id]:
            del self.memberships[membership_id]
        self.deleted_users.append(
            {
                "id": user_id,
                "login": user["login"],
                "force": force,
                "notify": _bool(call.query.get("notify")),
                "content_deleted": state.content,
            }
        )
        del self.users[user_id]
        del self.user_state[user_id]
        return None

    @route("PUT", "/2.0/users/{user_id}/folders/0")
    def transfer_content(self, call, user_id):
        self._need_scope(call, "root_readwrite")
        source = self._user(user_id)
        body = call.body if isinstance(call.body, dict) else {}
        destination_id = str(((body.get("owned_by") or {}).get("id")) or "")
        if not destination_id:
            raise _bad_request("owned_by.id is required", "owned_by")
        if destination_id == user_id:
            raise _bad_request("the content cannot be moved to its own owner", "owned_by")
        destination = self._user(destination_id)
        state = self.user_state[user_id]
        items, state.content = state.content, 0
        self.user_state[destination_id].content += items
        state.pending_transfer_deletes = self.transfer_finishes_later
        folder_id = self._new_id()
        now = _now_iso(self.wall_clock)
        self.transfers.append(
            {
                "from": user_id,
                "to": destination_id,
                "items": items,
                "folder_id": folder_id,
                "notify": _bool(call.query.get("notify")),
                "finished": self.transfer_finishes_later == 0,
            }
        )
        return {
            "type": "folder",
            "id": folder_id,
            "name": f"{source['name']}'s Files and Folders",
            "owned_by": {k: destination[k] for k in USER_MINI},
            "created_at": now,
            "modified_at": now,
        }

    @route("GET", "/2.0/users/{user_id}/memberships")
    def user_memberships(self, call, user_id):
        self._need_scope(call, "manage_groups")
        self._user(user_id)
        limit, offset = self._page_params(call)
        entries = [self._membership_view(m) for m in self._memberships_where("user_id", user_id)]
        return self._offset_page(entries, limit, offset)

    # -- groups ---------------------------------------------------------------------------------
    def _memberships_where(self, key: str, value: str) -> list[dict[str, Any]]:
        return [m for mid, m in sorted(self.memberships.items(), key=lambda kv: int(kv[0])) if m[key] == value]

    def _check_group_fields(self, body: dict[str, Any], creating: bool, group_id: str | None = None) -> None:
        name = body.get("name")
        if creating and not name:
            raise _bad_request("name is required", "name")
        for key, limit in GROUP_LIMITS.items():
            value = body.get(key)
            if isinstance(value, str) and len(value) > limit:
                raise _bad_request(f"{key} is longer than {limit} characters", key)
        for key in ("invitability_level", "member_viewability_level"):
            if key in body and body[key] not in GROUP_LEVELS:
                raise _bad_request(f"{key} must be one of {', '.join(GROUP_LEVELS)}", key)
        if name is not None and any(
            g["name"].lower() == str(name).lower() and g["id"] != group_id for g in self.groups.values()
        ):
            raise FakeError(409, "invalid_parameter", "A group with this name already exists in the enterprise")

    @route("GET", "/2.0/groups")
    def list_groups(self, call):
        self._need_scope(call, "manage_groups")
        limit, offset = self._page_params(call)
        term = (call.query.get("filter_term") or "").lower()
        groups = [self.groups[g] for g in sorted(self.groups, key=int)]
        if term:
            groups = [g for g in groups if g["name"].lower().startswith(term)]
        fields = _fields_of(call)
        return self._offset_page([self._group_view(g, fields) for g in groups], limit, offset)

    @route("POST", "/2.0/groups")
    def create_group(self, call):
        self._need_scope(call, "manage_groups")
        body = call.body if isinstance(call.body, dict) else {}
        self._check_group_fields(body, creating=True)
        group = self._add_group(body["name"], **{k: body[k] for k in GROUP_WRITABLE if k in body and k != "name"})
        return 201, self._group_view(group, _fields_of(call))

    @route("GET", "/2.0/groups/{group_id}")
    def get_group(self, call, group_id):
        self._need_scope(call, "manage_groups")
        return self._group_view(self._group(group_id), _fields_of(call))

    @route("PUT", "/2.0/groups/{group_id}")
    def update_group(self, call, group_id):
        self._need_scope(call, "manage_groups")
        group = self._group(group_id)
        if group["group_type"] == "all_users_group":
            raise FakeError(403, "access_denied_insufficient_permissions", "The all users group cannot be changed")
        body = call.body if isinstance(call.body, dict) else {}
        self._check_group_fields(body, creating=False, group_id=group_id)
        for key in GROUP_WRITABLE:
            if key in body:
                group[key] = body[key]
        group["modified_at"] = _now_iso(self.wall_clock)
        return self._group_view(group, _fields_of(call))

    @route("DELETE", "/2.0/groups/{group_id}")
    def delete_group(self, call, group_id):
        self._need_scope(call, "manage_groups")
        group = self._group(group_id)
        if group["group_type"] == "all_users_group":
            raise FakeError(403, "access_denied_insufficient_permissions", "The all users group cannot be deleted")
        for membership in self._memberships_where("group_id", group_id):
            del self.memberships[membership["id"]]
        del self.groups[group_id]
        return None

    @route("GET", "/2.0/groups/{group_id}/memberships")
    def group_memberships(self, call, group_id):
        self._need_scope(call, "manage_groups")
        self._group(group_id)
        limit, offset = self._page_params(call)
        entries = [self._membership_view(m) for m in self._memberships_where("group_id", group_id)]
        return self._offset_page(entries, limit, offset)

    @route("POST", "/2.0/group_memberships")
    def create_membership(self, call):
        self._need_scope(call, "manage_groups")
        body = call.body if isinstance(call.body, dict) else {}
        user_id = str((body.get("user") or {}).get("id") or "")
        group_id = str((body.get("group") or {}).get("id") or "")
        if not user_id or not group_id:
            raise _bad_request("user.id and group.id are required")
        role = body.get("role", "member")
        if role not in ("member", "admin"):
            raise _bad_request("role must be member or admin", "role")
        self._user(user_id)
        group = self._group(group_id)
        if group["group_type"] == "all_users_group":
            raise FakeError(
                403, "access_denied_insufficient_permissions", "Members of the all users group are implicit"
            )
        if any(m["user_id"] == user_id for m in self._memberships_where("group_id", group_id)):
            status, code, message = self.duplicate_membership_error
            raise FakeError(status, code, message)
        return 201, self._membership_view(self._add_membership(user_id, group_id, role))

    @route("GET", "/2.0/group_memberships/{membership_id}")
    def get_membership(self, call, membership_id):
        self._need_scope(call, "manage_groups")
        membership = self.memberships.get(membership_id)
        if membership is None:
            raise FakeError(404, "not_found", "Not Found")
        return self._membership_view(membership)

    @route("DELETE", "/2.0/group_memberships/{membership_id}")
    def delete_membership(self, call, membership_id):
        self._need_scope(call, "manage_groups")
        if self.memberships.pop(membership_id, None) is None:
            raise FakeError(404, "not_found", "Not Found")
        return None
