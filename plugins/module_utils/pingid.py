# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The PingID connector (the PingID user-management API, version 4.9): users only.

Private to this collection: the names here may change without notice.

Built on the connector kit (``_kit``); the facts it relies on are in ``shared/reference/pingid-api.md``
(Ping's PingID API documentation and samples):

* ``POST {idp_url}/rest/4/<op>/do``; the body is a compact JWS (HS256, the base64-decoded
  ``use_base64_key`` of ``pingid.properties`` as the key) whose header carries ``org_alias`` and
  ``token`` and whose payload is ``reqHeader`` (locale, orgAlias, secretKey = token, a UTC
  timestamp ``yyyy-MM-dd HH:mm:ss.SSS``, version 4.9) and ``reqBody``.
* Replies are JWS signed with the same key: every one is verified (a reply whose signature does
  not verify is refused); ``responseBody.errorId`` other than 200 is an error (HTTP 400 for client
  errors), carried in the ``ProvisioningError``'s details with ``errorMsg`` and the operation.
* Users have no id but their user name (the key); it cannot be changed. No field holds our
  marker: ownership lives in the state file. Status SUSPENDED is disabled, every other enabled.
* EditUser replaces the whole record (fields left out become null): every write sends every
  field, merged from the record read (GetUserDetails) and the changes.
* Listing all users goes through the organisation report (CreateJob USER_REPORTS ->
  GetJobStatus -> GetOrgReport JSON), which the engine uses for a full verification.
* MFA devices (e-mail, SMS, voice) are not managed.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timezone
from typing import Any

from ansible_collections.idsync.provisioning.plugins.module_utils import _kit
from ansible_collections.idsync.provisioning.plugins.module_utils._connector import Capabilities, Connector
from ansible_collections.idsync.provisioning.plugins.module_utils._http import HttpClient
from ansible_collections.idsync.provisioning.plugins.module_utils._model import (
    ProvisioningError,
    TargetUser,
    is_empty,
)
from ansible_collections.idsync.provisioning.plugins.module_utils._runner import VERIFICATION_ARGUMENT_SPEC

try:
    import jwt
    from jwt.api_jws import PyJWS
except ImportError:  # pragma: no cover - reported by connector_from_params with missing_required_lib
    jwt = None
    PyJWS = None
    HAS_JWT = False
    JWT_IMPORT_ERROR: str | None = traceback.format_exc()
else:
    HAS_JWT = True
    JWT_IMPORT_ERROR = None

API_VERSION = "4.9"
ALGORITHM = "HS256"
LOCALE = "en"
USER_KEY = "userName"
SUSPENDED = "SUSPENDED"
ROLES = ("ADMIN", "REGULAR")
DEFAULT_ROLE = "REGULAR"
EDITABLE = ("fname", "lname", "email", "role")  # what EditUser replaces; all of them every time

OK = 200
USER_EXISTS = 10556
NOT_ACTIVE = 10561  # "the user is not active and cannot be suspended"
ALREADY_ACTIVE = 10562  # "Active user can not be activated again"
NO_SUCH_USER = 10564

# The report job: polled with a growing wait (_kit.follow_job), at most this many times.
JOB_MAX_POLLS = 60

OPERATIONS = {
    "AddUser": "adduser",
    "GetUserDetails": "getuserdetails",
    "EditUser": "edituser",
    "SuspendUser": "suspenduser",
    "ActivateUser": "activateuser",
    "DeleteUser": "deleteuser",
    "CreateJob": "createjob",
    "GetJobStatus": "getjobstatus",
    "GetOrgReport": "getorgreport",
}

# Attribute paths and the spellings PingID uses for them (the docs write fName and fname).
_SPELLINGS = {
    "fname": ("fname", "fName", "firstName"),
    "lname": ("lname", "lName", "lastName"),
    "email": ("email", "orgEmail"),
    "userName": ("userName", "username"),
}


class PingIDError(ProvisioningError):
    """A PingID answer whose ``errorId`` is not 200 (``error_id``; details carry errorId, errorMsg)."""

    def __init__(self, operation: str, error_id: Any, error_msg: str, status: int | None):
        self.operation = operation
        self.error_id = error_id
        self.error_msg = error_msg
        super().__init__(
            f"PingID {operation}: errorId {error_id}: {error_msg}",
            status,
            {"operation": operation, "errorId": error_id, "errorMsg": error_msg},
        )


class _Conflict(ProvisioningError):
    """AddUser answered 10556 (the user exists): create_once looks it up and links it."""


CONFLICT_STATUS = 409


# -- Java properties ---------------------------------------------------------------------------
def parse_properties(text: str) -> dict[str, str]:
    """A Java properties file as ``Properties.load`` reads it: ``#`` and ``!`` comments, ``=``, ``:``
    or blank separators, continuation lines (odd number of trailing backslashes), ``\\`` escapes
    (``\\=``, ``\\:``, ``\\t`` ...) and ``\\uXXXX`` (surrogate pairs joined)."""
    logical: list[str] = []
    pending: str | None = None
    for raw in text.splitlines():
        line = raw.lstrip(" \t\f")
        if pending is None and (not line or line[0] in "#!"):
            continue
        trailing = len(line) - len(line.rstrip("\\"))
        if trailing % 2 == 1:
            pending = (pending or "") + line[:-1]
            continue
        logical.append((pending or "") + line)
        pending = None
    if pending:
        logical.append(pending)
    values: dict[str, str] = {}
    for line in logical:
        key, index = _token(line, 0, separator=True)
        while index < len(line) and line[index] in " \t\f":
            index += 1
        if index < len(line) and line[index] in "=:":
            index += 1
            while index < len(line) and line[index] in " \t\f":
                index += 1
        value, _end = _token(line, index, separator=False)
        values[key] = value
    return values


def _token(line: str, index: int, separator: bool) -> tuple[str, int]:
    out: list[str] = []
    while index < len(line):
        char = line[index]
        if char == "\\" and index + 1 < len(line):
            following = line[index + 1]
            if following == "u":
                digits = line[index + 2 : index + 6]
                if not re.fullmatch(r"[0-9a-fA-F]{4}", digits):
                    raise ValueError(f"malformed \\uXXXX escape: {line[index : index + 6]!r}")
                out.append(chr(int(digits, 16)))
                index += 6
                continue
            out.append({"t": "\t", "n": "\n", "r": "\r", "f": "\f"}.get(following, following))
            index += 2
            continue
        if char == "\\":  # a lone backslash at the end: dropped, as Java does
            index += 1
            continue
        if separator and char in "=: \t\f":
            break
        out.append(char)
        index += 1
    text = "".join(out)
    return text.encode("utf-16", "surrogatepass").decode("utf-16"), index


def read_properties_file(path: str) -> dict[str, str]:
    """``pingid.properties`` unescaped; errors name the option ``properties_file``."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise ProvisioningError(f"properties_file: cannot read {path}: {exc.strerror}") from None
    try:
        return parse_properties(raw.decode("latin-1"))  # Properties.load(InputStream) reads ISO 8859-1
    except ValueError as exc:
        raise ProvisioningError(f"properties_file: {path} is not a Java properties file: {exc}") from None


# -- time --------------------------------------------------------------------------------------
def format_timestamp(epoch: float) -> str:
    """``yyyy-MM-dd HH:mm:ss.SSS`` in UTC (``reqHeader.timestamp``)."""
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]  # noqa: UP017


# -- the signed client -------------------------------------------------------------------------
class PingIDSigner:
    """Encodes request payloads as signed JWS and verifies and decodes the replies."""

    def __init__(self, org_alias: str, token: str, key: bytes, clock: Callable[[], float] = time.time):
        self.org_alias = org_alias
        self.token = token
        self.key = key
        self.clock = clock

    def encode_body(self, req_body: Any) -> tuple[str, str]:
        payload = {
            "reqHeader": {
                "locale": LOCALE,
                "orgAlias": self.org_alias,
                "secretKey": self.token,
                "timestamp": format_timestamp(self.clock()),
                "version": API_VERSION,
            },
            "reqBody": req_body,
        }
        data = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        headers = {"org_alias": self.org_alias, "token": self.token}
        signed = PyJWS().encode(data, self.key, algorithm=ALGORITHM, headers=headers)
        return (signed.decode("ascii") if isinstance(signed, bytes) else signed), "application/json"

    def decode_reply(self, response: Any) -> Any:
        """A reply as data: ``responseBody`` (signature verified) for JWS replies, the parsed JSON
        (or the bytes) of the report's ``application/octet-stream``. An unsigned JSON body is taken
        only as an error (the service answers unsigned when it cannot tell the org)."""
        content_type = response.headers.get("Content-Type", "")
        if content_type.startswith("application/octet-stream"):
            try:
                return {"report": json.loads(response.content.decode("utf-8"))}
            except ValueError:
                raise ProvisioningError("PingID: the organisation report is not JSON") from None
        text = response.content.decode("utf-8", "replace").strip()
        if text.startswith("{"):
            try:
                body = json.loads(text).get("responseBody")
            except (ValueError, AttributeError):
                body = None
            if isinstance(body, dict) and body.get("errorId") not in (None, OK, str(OK)):
                return dict(body, unsigned=True)
            raise ProvisioningError("PingID: the reply is not signed (no JWS): refused")
        if text.count(".") != 2:
            raise ProvisioningError(f"PingID: the reply is not a signed JWS (HTTP {response.status_code})")
        try:
            decoded = PyJWS().decode_complete(text, self.key, algorithms=[ALGORITHM])
            payload = json.loads(decoded["payload"])
        except jwt.InvalidSignatureError:
            raise ProvisioningError(
                "PingID: the reply's signature did not verify with the org key: refused (a tampered reply,"
                " or a pingid.properties of another org)"
            ) from None
        except (jwt.PyJWTError, ValueError) as exc:
            raise ProvisioningError(f"PingID: the reply is not a valid signed JWS ({type(exc).__name__})") from None
        body = payload.get("responseBody") if isinstance(payload, dict) else None
        if not isinstance(body, dict):
            raise ProvisioningError("PingID: the signed reply has no responseBody")
        return body


def _error_text(body: Any) -> str:
    if isinstance(body, dict):
        inner = body.get("responseBody", body)
        if isinstance(inner, dict) and "errorId" in inner:
            return f"errorId {inner.get('errorId')}: {inner.get('errorMsg')}"
    return str(body or "")[:200]


# -- the connector -----------------------------------------------------------------------------
class PingIDConnector(Connector):
    """One PingID organisation, through an ``HttpClient`` whose body hooks sign and verify."""

    def __init__(
        self,
        client: HttpClient,
        *,
        default_role: str = DEFAULT_ROLE,
        sleep: Callable[[float], Any] = time.sleep,
        job_max_polls: int = JOB_MAX_POLLS,
    ):
        self.client = client
        self.default_role = default_role
        self.sleep = sleep
        self.job_max_polls = max(1, int(job_max_polls))

    @property
    def capabilities(self) -> Capabilities:  # type: ignore[override]
        # No field for our marker (the state file holds it), no groups, no cheap listing (the
        # report job is for full verifications). A user cannot be created SUSPENDED: AddUser makes
        # it NOT_ACTIVE at best, which PingID does not call suspended.
        return Capabilities(
            user_link="state",
            group_link="state",
            can_list_users=False,
            groups=False,
            create_disabled=False,
        )

    # -- calls -----------------------------------------------------------------------------------
    def call(self, operation: str, req_body: dict[str, Any]) -> dict[str, Any]:
        """One operation; its responseBody. ``PingIDError`` when errorId is not 200."""
        path = f"/rest/4/{OPERATIONS[operation]}/do"
        idempotent = operation not in ("AddUser",)
        try:
            answer = self.client.request(
                "POST",
                path,
                body=req_body,
                expected=(200, 400),
                idempotent=idempotent,
                path_template=operation,
                error_text=_error_text,
            )
        except PingIDError:
            raise
        except ProvisioningError as exc:
            body = exc.details.get("responseBody", exc.details) if isinstance(exc.details, dict) else None
            if isinstance(body, dict) and "errorId" in body:
                error = PingIDError(operation, _int(body.get("errorId")), str(body.get("errorMsg")), exc.status)
                raise _with_class(exc, error) from None
            exc.message = f"PingID {operation}: {exc.message}"
            exc.args = (exc.message, *exc.args[1:])
            raise
        if not isinstance(answer, dict):
            raise ProvisioningError(f"PingID {operation}: the answer is not an object")
        if "report" in answer:
            return answer
        error_id = answer.get("errorId")
        if error_id is None or str(error_id) != str(OK):
            msg = self.client.service_text(str(answer.get("errorMsg")))
            raise PingIDError(operation, _int(error_id), msg, 400)
        return answer

    # -- reading ---------------------------------------------------------------------------------
    @staticmethod
    def to_user(details: Mapping[str, Any]) -> TargetUser:
        name = str(_get(details, "userName") or "")
        return TargetUser(id=name, key=name, enabled=details.get("status") != SUSPENDED, resource=dict(details))

    def _details(self, user_name: str) -> dict[str, Any] | None:
        try:
            answer = self.call("GetUserDetails", {"userName": user_name, "getSameDeviceUsers": False})
        except PingIDError as exc:
            if exc.error_id == NO_SUCH_USER:
                return None
            raise
        details = answer.get("userDetails")
        if not isinstance(details, dict):
            raise ProvisioningError(f"PingID GetUserDetails {user_name}: the answer has no userDetails")
        return details

    def find_user(self, key: str) -> TargetUser | None:
        details = self._details(key)
        return self.to_user(details) if details is not None else None

    def get_user(self, user_id: str) -> TargetUser | None:
        return self.find_user(user_id)

    def read_path(self, resource: dict[str, Any], path: str) -> Any:
        return _get(resource, path)

    def list_users(self) -> Iterator[TargetUser]:
        """Every user, through the organisation report (one job; PingID may serve a report cached
        for up to 2 hours). The rows are normalised to userDetails' names (``username`` ->
        ``userName``, ``orgEmail`` -> ``email``)."""
        token = self.call("CreateJob", {"jobType": "USER_REPORTS"}).get("jobToken")
        if not token:
            raise ProvisioningError("PingID CreateJob: the answer has no jobToken")
        _kit.follow_job(
            lambda: self.call("GetJobStatus", {"jobToken": token}),
            _job_state,
            what="PingID GetJobStatus: the USER_REPORTS job",
            sleep=self.sleep,
            max_polls=self.job_max_polls,
        )
        rows = self.call("GetOrgReport", {"fileType": "JSON"})["report"]
        if isinstance(rows, dict):
            rows = rows.get("users") or rows.get("rows") or []
        if not isinstance(rows, list):
            raise ProvisioningError("PingID GetOrgReport: the report is not a list of users")
        for row in rows:
            if not isinstance(row, dict):
                continue
            details = dict(row)
            for path in ("userName", "fname", "lname", "email"):
                details[path] = _get(row, path)
            if details.get("userName"):
                yield self.to_user(details)

    # -- writing ---------------------------------------------------------------------------------
    def create_user(self, attrs: dict[str, Any], link: str | None, enabled: bool) -> TargetUser:
        """AddUser. ``activateUser`` is ``enabled``: an enabled account is made PENDING_ACTIVATION
        (PingID issues its activation code), a disabled one NOT_ACTIVE (it cannot sign in and
        PingID cannot suspend it). 10556 (it exists) links the existing user, brought to ``attrs``."""
        name = attrs.get(USER_KEY)
        if is_empty(name) or not isinstance(name, str):
            raise ProvisioningError(f"user: {USER_KEY}: required to create a PingID user")
        unknown = sorted(set(attrs) - {USER_KEY, *EDITABLE})
        if unknown:
            raise ProvisioningError(f"user {name}: {unknown[0]}: not a PingID user field ({', '.join(EDITABLE)})")
        role = attrs.get("role") or self.default_role
        if role not in ROLES:
            raise ProvisioningError(f"user {name}: role: {role!r} is not one of {', '.join(ROLES)}")
        body: dict[str, Any] = {"username": name, "role": role, "activateUser": bool(enabled)}
        for path in ("fname", "lname", "email"):
            if not is_empty(attrs.get(path)):
                body[path] = attrs[path]
        created: list[TargetUser] = []

        def add() -> TargetUser:
            try:
                answer = self.call("AddUser", body)
            except PingIDError as exc:
                if exc.error_id == USER_EXISTS:
                    raise _Conflict(exc.message, CONFLICT_STATUS, exc.details) from None
                raise
            details = answer.get("userDetails")
            if not isinstance(details, dict):
                details = {"userName": name, **{k: body.get(k) for k in EDITABLE}}
            user = self.to_user(details)
            created.append(user)
            return user

        user = _kit.create_once(
            add, lambda: self.find_user(name), f"the PingID user {name}", conflict_statuses=(CONFLICT_STATUS,)
        )
        if not created:
            changes = {p: attrs[p] for p in EDITABLE if p in attrs and attrs[p] != self.read_path(user.resource, p)}
            if changes:
                self.update_user(user, changes)
                user.resource.update(changes)
        return user

    def update_user(self, user: TargetUser, changes: dict[str, Any], link: str | None = None) -> None:
        """EditUser, which replaces the whole record: every field is sent, the current record (read
        now with GetUserDetails; ``user.resource`` for a field the answer lacks) merged with
        ``changes``. A changed userName is refused: PingID cannot rename."""
        new_name = changes.get(USER_KEY)
        if new_name is not None and str(new_name).lower() != user.key.lower():
            raise ProvisioningError(
                f"user {user.key}: userName: PingID cannot rename a user (to {new_name!r}): delete {user.key}"
                f" and add {new_name} by hand (its devices are lost and it activates again), or map the old"
                " key for this user so it stays as it is"
            )
        unknown = sorted(set(changes) - {USER_KEY, *EDITABLE})
        if unknown:
            raise ProvisioningError(f"user {user.key}: {unknown[0]}: not a PingID user field ({', '.join(EDITABLE)})")
        if "role" in changes and changes["role"] not in ROLES:
            raise ProvisioningError(f"user {user.key}: role: {changes['role']!r} is not one of {', '.join(ROLES)}")
        current = self._details(user.key)
        if current is None:
            raise ProvisioningError(f"PingID EditUser {user.key}: errorId {NO_SUCH_USER}: the user no longer exists")
        body: dict[str, Any] = {"userName": _get(current, USER_KEY) or user.key}
        for path in EDITABLE:
            if path in changes:
                value = changes[path]
            elif any(name in current for name in _SPELLINGS.get(path, (path,))):
                value = _get(current, path)  # what PingID holds now, null included
            else:
                value = _get(user.resource, path)  # not in the answer: what was read or recorded
            body[path] = None if is_empty(value) else value
        if body["role"] is None:
            body["role"] = self.default_role
        self.call("EditUser", body)
        user.resource.update({k: v for k, v in body.items() if k != USER_KEY})

    def set_user_enabled(self, user: TargetUser, enabled: bool) -> None:
        """ActivateUser or SuspendUser.

        * SuspendUser answering 10561 ("the user is not active and cannot be suspended"): the user
          was never activated (NOT_ACTIVE, PENDING, PENDING_ACTIVATION: no paired device) or is
          suspended already; it cannot sign in, so there is nothing to suspend: this succeeds.
        * ActivateUser answering 10562 ("Active user can not be activated again"): already active,
          a no-op.
        """
        operation = "ActivateUser" if enabled else "SuspendUser"
        try:
            self.call(operation, {"userName": user.key})
        except PingIDError as exc:
            if exc.error_id == ALREADY_ACTIVE and enabled:
                user.enabled = True
                return
            if exc.error_id == NOT_ACTIVE and not enabled:
                return  # never activated (or suspended already): it cannot sign in, nothing to do
            raise
        user.enabled = enabled
        user.resource["status"] = SUSPENDED if not enabled else user.resource.get("status")
        if enabled and user.resource.get("status") == SUSPENDED:
            user.resource.pop("status", None)

    def delete_user(self, user: TargetUser) -> None:
        """DeleteUser; 10564 (no such user) means it is gone already: success."""
        try:
            self.call("DeleteUser", {"userName": user.key})
        except PingIDError as exc:
            if exc.error_id != NO_SUCH_USER:
                raise


def _job_state(answer: Mapping[str, Any]) -> str:
    """GetJobStatus's status for ``_kit.follow_job``: done, in_progress / pending, or an error."""
    status = str(answer.get("status") or "").lower()
    if status == "done":
        return _kit.JOB_DONE
    if status in ("in_progress", "pending"):
        return _kit.JOB_RUNNING
    if status == "failure":
        raise ProvisioningError("PingID GetJobStatus: the USER_REPORTS job failed: no users listed")
    raise ProvisioningError(f"PingID GetJobStatus: unknown job status {status!r}")


def _int(value: Any) -> Any:
    try:
        return int(value)
    except (TypeError, ValueError):
        return value


def _with_class(exc: ProvisioningError, new: PingIDError) -> PingIDError:
    new.wrote = getattr(exc, "wrote", False)
    return new


def _get(resource: Mapping[str, Any], path: str) -> Any:
    """A field of userDetails (or a report row) under any of PingID's spellings."""
    for name in _SPELLINGS.get(path, (path,)):
        if resource.get(name) is not None:
            return resource[name]
    return None


# -- what the modules need ---------------------------------------------------------------------
DEFAULT_USER_MAPPING = {
    "userName": "first(attributes.sAMAccountName) || first(attributes.uid)",
    "fname": "first(attributes.givenName)",
    "lname": "first(attributes.sn)",
    "email": "first(attributes.mail)",
}

_VALUES = ("org_alias", "token", "use_base64_key", "idp_url")
_OPTION_OF = {"org_alias": "org_alias", "token": "token", "use_base64_key": "base64_key", "idp_url": "idp_url"}


def connection_argument_spec() -> dict[str, Any]:
    """The kit's connection options (``url`` defaults to the properties' idp_url) and PingID's:
    ``properties_file`` or its values ``org_alias``, ``token``, ``base64_key``, ``idp_url``."""
    from ansible.module_utils.basic import env_fallback

    def env(name: str, **option: Any) -> dict[str, Any]:
        return dict({"type": "str", "fallback": (env_fallback, [name])}, **option)

    spec = _kit.connection_argument_spec("PINGID")
    spec.update(
        {
            "properties_file": env("PINGID_PROPERTIES_FILE", type="path"),
            "org_alias": env("PINGID_ORG_ALIAS"),
            "token": env("PINGID_TOKEN", no_log=True),
            "base64_key": env("PINGID_USE_BASE64_KEY", no_log=True),
            "idp_url": env("PINGID_IDP_URL"),
            "default_role": {"type": "str", "default": DEFAULT_ROLE, "choices": list(ROLES)},
        }
    )
    return spec


def _settings(params: Mapping[str, Any]) -> dict[str, str]:
    """org_alias, token, use_base64_key, idp_url: from properties_file, overridden by the options."""
    values: dict[str, str] = {}
    source = {}
    if params.get("properties_file"):
        props = read_properties_file(params["properties_file"])
        for name in _VALUES:
            if props.get(name):
                values[name] = props[name]
                source[name] = "properties_file"
    for name in _VALUES:
        option = _OPTION_OF[name]
        if params.get(option):
            values[name] = params[option]
            source[name] = option
    for name in _VALUES:
        if not values.get(name):
            option = _OPTION_OF[name]
            env = "PINGID_" + name.upper()
            raise ProvisioningError(
                f"{option}: required: give properties_file (its {name}) or {option} (or {env} in the environment)"
            )
    values["_key_source"] = source["use_base64_key"]
    return values


def connector_from_params(params: Mapping[str, Any], **client_options: Any) -> PingIDConnector:
    """A connector from module parameters; errors name the option. ``client_options`` go to the
    HttpClient (tests pass ``sleep``)."""
    if not HAS_JWT:
        from ansible.module_utils.basic import missing_required_lib

        raise ProvisioningError(f"{missing_required_lib('PyJWT')} (to sign PingID requests)")
    if params.get("timeout") is not None and params["timeout"] < 1:
        raise ProvisioningError(f"timeout: must be at least 1, got {params['timeout']}")
    settings = _settings(params)
    key_option = "base64_key" if settings["_key_source"] == "base64_key" else "properties_file (use_base64_key)"
    try:
        key = base64.b64decode(settings["use_base64_key"].strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ProvisioningError(f"{key_option}: the key is not valid base64") from None
    if len(key) < 32:
        raise ProvisioningError(f"{key_option}: the key is {len(key)} bytes, HS256 needs at least 32")
    signer = PingIDSigner(settings["org_alias"], settings["token"], key)
    url = params.get("url") or settings["idp_url"]
    secrets_ = [settings["token"], settings["use_base64_key"]]
    sleep = client_options.get("sleep", time.sleep)
    client = _kit.http_client(
        dict(params, url=url),
        encode_body=signer.encode_body,
        decode_reply=signer.decode_reply,
        error_text=_error_text,
        secrets=secrets_,
        **client_options,
    )
    client.signer = signer  # type: ignore[attr-defined] - for tests
    return PingIDConnector(client, default_role=params.get("default_role") or DEFAULT_ROLE, sleep=sleep)


TARGET = _kit.Target(
    name="pingid",
    build=connector_from_params,
    connection_spec=connection_argument_spec,
    user_key=USER_KEY,
    default_user_mapping=DEFAULT_USER_MAPPING,
    # The report job is the only way to read every user: how often pingid_sync runs one.
    sync_options=VERIFICATION_ARGUMENT_SPEC,
)
