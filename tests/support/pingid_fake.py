# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A stateful fake PingID user-management API (API version 4.9) on the fake-service base,
written from ``shared/reference/pingid-api.md`` (Ping's PingID API docs and samples).

**Wire format.** ``POST {idp_url}/rest/4/<operation>/do`` (``idp_url`` = ``fake.idp_url``, i.e.
``http://127.0.0.1:<port>/pingid``), ``Content-Type: application/json``, the body a compact JWS:

* protected header ``{"alg": "HS256", "org_alias": <org_alias>, "token": <token>}`` (``typ`` may
  be there too; any other ``alg`` is refused);
* payload ``{"reqHeader": {"locale": "en", "orgAlias": ..., "secretKey": <token>, "timestamp":
  "yyyy-MM-dd HH:mm:ss.SSS" (UTC), "version": "4.9"}, "reqBody": {...}}`` (``sessionId``,
  ``apiUserId``, ``clientVersion`` are allowed);
* the HMAC key is the base64-decoded ``use_base64_key`` of the org's ``pingid.properties``.

Every request is verified, in this order (``authenticate``): ``alg``; ``org_alias`` known
(``orgs``); signature (PyJWT, the org's key); ``token`` and ``secretKey`` = the org's token;
``reqHeader.orgAlias`` = the header's; ``version`` in ``versions`` (default {"4.9"}); timestamp
within ``max_skew`` seconds (default 300) of ``wall_clock`` (default ``time.time``). Refusals:
HTTP 400 with ``errorId`` 400 and the ``errorMsg`` of ``REFUSALS`` (**not confirmed**: Ping's
error table is cut off before these; see "choices" below).

**Replies** are compact JWS signed with the org's key (header ``alg``, ``org_alias``, ``token``),
``Content-Type: application/json``, payload ``{"responseBody": {..., "errorId": 200, "errorMsg":
"ok", "uniqueMsgId": "...", "clientData": <the request's clientData or null>}}``. Client errors
are HTTP 400 with their ``errorId`` / ``errorMsg`` (``ERROR_MESSAGES``), signed the same way. A
request whose org cannot be known (unknown ``org_alias``, a body that is no JWS) is answered
unsigned: plain JSON ``{"responseBody": {"errorId": 400, "errorMsg": ...}}``, since the service
has no key to sign with. ``tamper_replies(how=...)`` breaks the signature of the next replies.

**Operations** (``OPERATIONS``: name -> path segment; ``fake.path("AddUser")`` is the route):

* ``AddUser`` (``adduser``): ``username`` (``userName`` tolerated; required, <= 250), ``role``
  (ADMIN|REGULAR, required), ``activateUser`` (bool, required), ``email?``, ``fname?`` (``fName``
  tolerated), ``lname?`` (``lName`` tolerated), ``deviceType?`` (DESKTOP|MOBILE), ``clientData?``.
  -> ``userDetails``, plus ``activationCode`` when ``activateUser``. 10556 when the user exists.
  ``activateUser: false`` -> status NOT_ACTIVE, ``userEnabled`` false; ``true`` ->
  PENDING_ACTIVATION (no device paired yet), ``userEnabled`` true.
* ``GetUserDetails`` (``getuserdetails``): ``userName``, ``getSameDeviceUsers?`` -> ``userDetails``
  {userName, email, fname, lname, status, userEnabled, role, lastLogin (epoch ms or null),
  deviceDetails, devicesDetails[], spList[]}, ``sameDeviceUsersDetails`` ([]). 10564 unknown user.
* ``EditUser`` (``edituser``): ``userName`` + ``fname``, ``lname``, ``email``, ``role``,
  ``activateUser?``, ``clientData?``. **Replaces the record**: fname, lname, email and role left
  out become null (as Ping documents). Every value turned null is recorded in ``cleared``
  (``how``: "omitted" or "sent null"); ``assert_nothing_omitted()`` fails on any omitted one.
  ``activateUser: true`` activates a not-yet-activated user (as ActivateUser, no error when
  active); false or absent leaves the status. 10564 unknown user.
* ``SuspendUser`` (``suspenduser``): ACTIVE / PENDING_CHANGE_DEVICE -> SUSPENDED (``userEnabled``
  false). Any other status (NOT_ACTIVE, PENDING, PENDING_ACTIVATION: never activated with a device;
  SUSPENDED) -> 10561 "the user is not active and cannot be suspended". 10564 unknown user.
* ``ActivateUser`` (``activateuser``): SUSPENDED -> the status it had before (ACTIVE when seeded
  suspended); NOT_ACTIVE / PENDING / PENDING_ACTIVATION -> PENDING_ACTIVATION with
  ``activationCode``; ACTIVE / PENDING_CHANGE_DEVICE -> 10562 "Active user can not be activated
  again". 10564 unknown user.
* ``DeleteUser`` (``deleteuser``): removes the user (10564 unknown user).
* The org report: ``CreateJob`` (``createjob``) ``{"jobType": "USER_REPORTS"}`` -> ``jobToken``;
  ``GetJobStatus`` (``getjobstatus``) ``{"jobToken"}`` -> ``status`` "in_progress" for
  ``report_polls`` polls (default 2), then "done" (or "failure" after ``fail_next_report_job()``);
  ``GetOrgReport`` (``getorgreport``) ``{"fileType": "JSON"|"CSV"}`` -> the last finished report as
  ``application/octet-stream`` (not a JWS), JSON: a list of rows ``{username, fname, lname,
  orgEmail, role, status, userCreationTime, lastTrxTime, devices[]}``, the users as they were when
  the job finished. With ``report_cache_seconds`` > 0 (Ping caches up to 2 h; default 0, off), a
  new job within that time serves the cached rows.

User names are matched case-insensitively (lookup and uniqueness) and kept as written.

**Seeding and inspecting** (bypassing the API): ``seed_user(name, fname=, lname=, email=, role=,
status=)`` (ACTIVE gets a paired device; ``enabled=False`` is SUSPENDED), ``seed_users_in_every_status
(prefix)``, ``pair_device(name)`` (PENDING_ACTIVATION -> ACTIVE), ``change_user_directly(name,
**fields)`` and ``delete_user_directly(name)`` (behind the provisioner's back); ``user(name)`` (the
``userDetails`` dict or None), ``usernames()``, ``operations()`` (every operation name in order),
``op_count("GetUserDetails")``, ``user_reads()``, ``write_operations()``, ``bodies(op)`` (the
reqBodies sent), ``edits``, ``cleared``, plus the base's ``writes()``, ``requests``,
``snapshot()`` (users only: jobs and logs left out), ``faults``, ``rate_limit``, ``latency``.
``fail_next(op, error_id)`` answers a PingID error id once. ``client()`` is a small signed client
(``PingIDTestClient``) for tests of the fake; ``sign_request`` / ``decode_reply`` are its pieces.

**The org** (``PingIDOrg``): ``org_alias``, ``token``, ``key`` (32 random bytes), ``idp_url``,
``admin_url``, ``authenticator_url``; ``org.properties()`` the file's values,
``org.properties_text()`` the file as Java writes it (``\\=``, ``\\:`` escapes),
``fake.write_properties(path)`` writes it. ``add_org()`` registers another org; an org that is
not registered (``PingIDOrg()``) is "unknown" to the fake.

**Choices where pingid-api.md is open**: the refusal of a bad signature, unknown org, wrong token,
stale timestamp or unknown version (HTTP 400, errorId 400, messages of ``REFUSALS``; the unknown
org unsigned); the accepted skew (300 s); which statuses SuspendUser refuses; what ``activateUser``
does in EditUser; the report's row fields beyond username/status/userCreationTime/orgEmail/devices/
lastTrxTime and its time format ("yyyy-MM-dd HH:mm:ss.SSS" UTC); GetOrgReport without a finished
job (400, errorId 400); 429 bodies (errorId 429, signed); case-insensitive user names.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import copy
import csv
import io
import itertools
import json
import re
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import requests
from jwt.api_jws import PyJWS
from werkzeug.wrappers import Request, Response

from support.fake_service import Call, FakeError, FakeService, Validator, route

API_VERSION = "4.9"
ALGORITHM = "HS256"
TIMESTAMP = "%Y-%m-%d %H:%M:%S.%f"  # written with milliseconds: see format_timestamp
TIMESTAMP_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}$")
BASE_PATH = "/pingid"  # idp_url = fake.url + BASE_PATH, as https://idpxnyl3m.pingidentity.com/pingid
MAX_USERNAME = 250
MASK = "***"

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
WRITE_OPERATIONS = frozenset({"AddUser", "EditUser", "SuspendUser", "ActivateUser", "DeleteUser"})

STATUSES = ("ACTIVE", "PENDING", "NOT_ACTIVE", "PENDING_ACTIVATION", "SUSPENDED", "PENDING_CHANGE_DEVICE")
ACTIVE_STATUSES = frozenset({"ACTIVE", "PENDING_CHANGE_DEVICE"})  # a paired device: suspendable
NEVER_ACTIVATED = frozenset({"PENDING", "NOT_ACTIVE", "PENDING_ACTIVATION"})
ROLES = ("ADMIN", "REGULAR")
DEVICE_TYPES = ("DESKTOP", "MOBILE")
JOB_TYPES = ("USER_REPORTS",)
FILE_TYPES = ("JSON", "CSV")
EDITABLE = ("fname", "lname", "email", "role")  # what EditUser replaces

# pid_c_PingIDapiErrorCodes (the part every stored copy has).
ERROR_MESSAGES = {
    200: "ok",
    400: "invalid input",
    10551: "failed transaction, retry",
    10552: "failed to delete service provider from user",
    10553: "user deletion failed",
    10554: "cannot add service provider",
    10555: "cannot add service provider",
    10556: "user already exists",
    10557: "cannot update service provider",
    10558: "cannot update user",
    10559: "suspension failed",
    10561: "the user is not active and cannot be suspended",
    10562: "Active user can not be activated again",
    10563: "username already exists in the service",
    10564: "user does not exist",
    10565: "user activation failed",
}
# How request verification failures are answered: (HTTP status, errorId, errorMsg). Not confirmed
# by Ping's documentation (its error table is cut off); one place to change.
REFUSALS = {
    "not_jws": (400, 400, "invalid input: the request body is not a signed JWT"),
    "algorithm": (400, 400, "invalid input: unsupported signature algorithm"),
    "org": (400, 400, "invalid input: unknown organization"),
    "signature": (400, 400, "invalid input: invalid signature"),
    "token": (400, 400, "invalid input: invalid token"),
    "org_mismatch": (400, 400, "invalid input: orgAlias does not match the signed header"),
    "version": (400, 400, "invalid input: unsupported API version"),
    "timestamp": (400, 400, "invalid input: request timestamp is out of the allowed time window"),
}
DEFAULT_ADMIN_URL = "https://idpxnyl3m.pingidentity.com/pingid"
DEFAULT_AUTHENTICATOR_URL = "https://authenticator.pingone.com/pingid/ppm"
PROPERTIES_KEYS = ("use_base64_key", "use_signature", "token", "idp_url", "org_alias", "admin_url", "authenticator_url")


# -- time ---------------------------------------------------------------------------------------
def format_timestamp(epoch: float) -> str:
    """``yyyy-MM-dd HH:mm:ss.SSS`` in UTC, as PingID wants ``reqHeader.timestamp``."""
    return datetime.fromtimestamp(epoch, UTC).strftime(TIMESTAMP)[:-3]


def parse_timestamp(text: str) -> float:
    """Epoch seconds of a ``yyyy-MM-dd HH:mm:ss.SSS`` UTC timestamp (ValueError when malformed)."""
    if not isinstance(text, str) or not TIMESTAMP_PATTERN.match(text):
        raise ValueError(f"not a yyyy-MM-dd HH:mm:ss.SSS timestamp: {text!r}")
    return datetime.strptime(text, TIMESTAMP).replace(tzinfo=UTC).timestamp()


# -- Java properties --------------------------------------------------------------------------
def java_properties_escape(text: str, *, key: bool = False) -> str:
    """``text`` as ``java.util.Properties.store`` writes it: ``\\``, ``=``, ``:``, ``#``, ``!``
    escaped, control characters as ``\\t`` ``\\n`` ``\\r`` ``\\f``, non-ASCII as ``\\uXXXX``, a
    leading space (every space in a key) escaped."""
    out = []
    for index, char in enumerate(text):
        if char == " ":
            out.append("\\ " if key or index == 0 else " ")
        elif char in "\\=:#!":
            out.append("\\" + char)
        elif char in "\t\n\r\f":
            out.append({"\t": "\\t", "\n": "\\n", "\r": "\\r", "\f": "\\f"}[char])
        elif ord(char) < 0x20 or ord(char) > 0x7E:
            out.extend(f"\\u{unit:04X}" for unit in _utf16_units(char))
        else:
            out.append(char)
    return "".join(out)


def _utf16_units(char: str) -> list[int]:
    data = char.encode("utf-16-be")
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]


def parse_java_properties(text: str) -> dict[str, str]:
    """A Java properties file as ``Properties.load`` reads it (comments, ``=`` / ``:`` / blank
    separators, continuation lines, ``\\`` escapes, ``\\uXXXX``). For checking the file written."""
    logical, pending = [], ""
    for raw in text.splitlines():
        line = raw.lstrip(" \t\f")
        if not pending and (not line or line[0] in "#!"):
            continue
        trailing = len(line) - len(line.rstrip("\\"))
        if trailing % 2 == 1:
            pending += line[:-1]
            continue
        logical.append(pending + line)
        pending = ""
    if pending:
        logical.append(pending)
    result = {}
    for line in logical:
        key, index = _read_token(line, 0, separator=True)
        while index < len(line) and line[index] in " \t\f":
            index += 1
        if index < len(line) and line[index] in "=:":
            index += 1
            while index < len(line) and line[index] in " \t\f":
                index += 1
        value, _end = _read_token(line, index, separator=False)
        result[key] = value
    return result


def _read_token(line: str, index: int, *, separator: bool) -> tuple[str, int]:
    out = []
    while index < len(line):
        char = line[index]
        if char == "\\" and index + 1 < len(line):
            nxt = line[index + 1]
            if nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", line[index + 2 : index + 6]):
                out.append(chr(int(line[index + 2 : index + 6], 16)))
                index += 6
                continue
            out.append({"t": "\t", "n": "\n", "r": "\r", "f": "\f"}.get(nxt, nxt))
            index += 2
            continue
        if separator and char in "=: \t\f":
            break
        out.append(char)
        index += 1
    text = "".join(out)
    # surrogate pairs written as two \\uXXXX become one character
    return text.encode("utf-16", "surrogatepass").decode("utf-16"), index


# -- the organisation -------------------------------------------------------------------------------
@dataclass
class PingIDOrg:
    """A PingID organisation: what its ``pingid.properties`` holds."""

    org_alias: str = field(default_factory=lambda: _uuid_like())  # pylint: disable=unnecessary-lambda  # defined below
    token: str = field(default_factory=lambda: secrets.token_hex(16))
    key: bytes = field(default_factory=lambda: _key_with_padding())  # pylint: disable=unnecessary-lambda  # defined below
    idp_url: str = "https://idpxnyl3m.pingidentity.com/pingid"
    admin_url: str = DEFAULT_ADMIN_URL
    authenticator_url: str = DEFAULT_AUTHENTICATOR_URL
    use_signature: bool = True

    @property
    def use_base64_key(self) -> str:
        return base64.b64encode(self.key).decode("ascii")

    def properties(self) -> dict[str, str]:
        """The file's values, unescaped."""
        return {
            "use_base64_key": self.use_base64_key,
            "use_signature": "true" if self.use_signature else "false",
            "token": self.token,
            "idp_url": self.idp_url,
            "org_alias": self.org_alias,
            "admin_url": self.admin_url,
            "authenticator_url": self.authenticator_url,
        }

    def properties_text(self, extra: dict[str, str] | None = None) -> str:
        """``pingid.properties`` as the PingOne admin console's download (Java ``Properties.store``)."""
        lines = [
            "#Auto-Generated from PingOne, downloaded by id=[fake-admin] email=[admin@fake.example]",
            f"#{datetime.now(UTC).strftime('%a %b %d %H:%M:%S UTC %Y')}",
        ]
        for name, value in {**self.properties(), **(extra or {})}.items():
            lines.append(f"{java_properties_escape(name, key=True)}={java_properties_escape(value)}")
        return "\n".join(lines) + "\n"


def _uuid_like() -> str:
    raw = secrets.token_hex(16)
    return f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}"


def _key_with_padding() -> bytes:
    """32 random bytes: HS256, and a base64 form that ends in ``=`` (escaped ``\\=`` in the file)."""
    return secrets.token_bytes(32)


# -- requests and replies (the signed pieces, shared by the fake and its test client) -------------------
def sign_request(
    org: PingIDOrg,
    req_body: dict[str, Any],
    *,
    timestamp: str | float | None = None,
    version: str = API_VERSION,
    key: bytes | None = None,
    algorithm: str = ALGORITHM,
    header: dict[str, Any] | None = None,
    req_header: dict[str, Any] | None = None,
) -> str:
    """The compact JWS a client sends: ``timestamp`` as text, or epoch seconds (default: now);
    ``key`` signs instead of the org's; ``header`` / ``req_header`` override or add fields
    (a value None removes the field)."""
    if timestamp is None or isinstance(timestamp, int | float):
        timestamp = format_timestamp(time.time() if timestamp is None else timestamp)
    payload_header = {
        "locale": "en",
        "orgAlias": org.org_alias,
        "secretKey": org.token,
        "timestamp": timestamp,
        "version": version,
    }
    payload_header = {k: v for k, v in {**payload_header, **(req_header or {})}.items() if v is not None}
    headers = {"org_alias": org.org_alias, "token": org.token, "typ": None, **(header or {})}
    payload = json.dumps({"reqHeader": payload_header, "reqBody": req_body}).encode()
    return PyJWS().encode(payload, key if key is not None else org.key, algorithm=algorithm, headers=headers)


def decode_reply(org: PingIDOrg, text: str | bytes, *, verify: bool = True) -> dict[str, Any]:
    """The payload of a signed reply (``{"responseBody": ...}``); ``jwt.InvalidSignatureError``
    (or another ``jwt.PyJWTError``) when ``verify`` and the signature is not the org's."""
    if isinstance(text, bytes):
        text = text.decode()
    if verify:
        decoded = PyJWS().decode_complete(text, org.key, algorithms=[ALGORITHM])
    else:
        decoded = PyJWS().decode_complete(text, options={"verify_signature": False})
    return json.loads(decoded["payload"])


@dataclass
class Reply:
    status: int
    body: dict[str, Any] | None  # responseBody (verified), or the unsigned JSON's responseBody
    raw: bytes
    signed: bool
    content_type: str

    @property
    def error_id(self) -> int | None:
        return None if self.body is None else self.body.get("errorId")


class PingIDTestClient:
    """Signed calls to the fake for its own tests: ``client.call("AddUser", {...})`` -> ``Reply``."""

    def __init__(self, fake: PingIDFake, org: PingIDOrg | None = None):
        self.fake = fake
        self.org = org or fake.org
        self.session = requests.Session()

    def post(self, operation: str, data: str | bytes) -> requests.Response:
        return self.session.post(
            self.fake.endpoint(operation), data=data, headers={"Content-Type": "application/json"}, timeout=10
        )

    def call(self, operation: str, req_body: dict[str, Any], *, verify: bool = True, **signing: Any) -> Reply:
        response = self.post(operation, sign_request(self.org, req_body, **signing))
        return self.reply(response, verify=verify)

    def reply(self, response: requests.Response, *, verify: bool = True) -> Reply:
        content_type = response.headers.get("Content-Type", "")
        raw = response.content
        if content_type.startswith("application/octet-stream"):
            return Reply(response.status_code, None, raw, False, content_type)
        text = raw.decode()
        if text.count(".") == 2 and not text.lstrip().startswith("{"):
            return Reply(
                response.status_code,
                decode_reply(self.org, text, verify=verify)["responseBody"],
                raw,
                True,
                content_type,
            )
        try:
            body = json.loads(text).get("responseBody")
        except ValueError:
            body = None
        return Reply(response.status_code, body, raw, False, content_type)

    def close(self) -> None:
        self.session.close()


# -- validation of request bodies ----------------------------------------------------------------------
_REQUIRED = {
    "AddUser": ("username", "role", "activateUser"),
    "GetUserDetails": ("userName",),
    "EditUser": ("userName",),
    "SuspendUser": ("userName",),
    "ActivateUser": ("userName",),
    "DeleteUser": ("userName",),
    "CreateJob": ("jobType",),
    "GetJobStatus": ("jobToken",),
    "GetOrgReport": ("fileType",),
}
_OPTIONAL = {
    "AddUser": ("email", "fname", "lname", "deviceType", "clientData"),
    "GetUserDetails": ("getSameDeviceUsers", "clientData"),
    "EditUser": ("fname", "lname", "email", "role", "activateUser", "clientData"),
    "SuspendUser": ("clientData",),
    "ActivateUser": ("clientData", "deviceType"),
    "DeleteUser": ("clientData",),
    "CreateJob": ("clientData",),
    "GetJobStatus": ("clientData",),
    "GetOrgReport": ("clientData",),
}
_ALIASES = {"userName": "username", "fName": "fname", "lName": "lname"}  # the docs' other spellings
_BOOLEANS = frozenset({"activateUser", "getSameDeviceUsers"})
_ENUMS = {"role": ROLES, "deviceType": DEVICE_TYPES, "jobType": JOB_TYPES, "fileType": FILE_TYPES}
_REQ_HEADER_REQUIRED = ("locale", "orgAlias", "secretKey", "timestamp", "version")
_REQ_HEADER_OPTIONAL = ("sessionId", "apiUserId", "clientVersion")


def normalize_body(operation: str, body: dict[str, Any]) -> dict[str, Any]:
    """The reqBody with the docs' alternative spellings (``userName`` in AddUser, ``fName``,
    ``lName``) turned into the ones each operation documents."""
    wanted = set(_REQUIRED.get(operation, ())) | set(_OPTIONAL.get(operation, ()))
    out = {}
    for name, value in body.items():
        if name not in wanted:
            alias = _ALIASES.get(name)
            if alias in wanted:
                name = alias
            elif name == "username" and "userName" in wanted:
                name = "userName"
        out[name] = value
    return out


class PingIDValidator(Validator):
    """Checks each request's ``reqHeader`` and ``reqBody`` against pingid-api.md: required and
    known fields, types, enums (role, deviceType, jobType, fileType), username length."""

    def validate_request(self, call: Call) -> list[str]:
        body = call.body
        if not isinstance(body, dict) or "reqBody" not in body:
            return []  # not a JWS: parse_body already refused it
        problems = []
        header = body.get("reqHeader")
        if not isinstance(header, dict):
            return ["reqHeader: missing or not an object"]
        for name in _REQ_HEADER_REQUIRED:
            if not isinstance(header.get(name), str) or not header.get(name):
                problems.append(f"reqHeader.{name}: required string")
        for name in set(header) - set(_REQ_HEADER_REQUIRED) - set(_REQ_HEADER_OPTIONAL):
            problems.append(f"reqHeader.{name}: unknown field")
        if isinstance(header.get("timestamp"), str) and not TIMESTAMP_PATTERN.match(header["timestamp"]):
            problems.append(f"reqHeader.timestamp: not yyyy-MM-dd HH:mm:ss.SSS: {header['timestamp']!r}")
        req_body = body.get("reqBody")
        if not isinstance(req_body, dict):
            return [*problems, "reqBody: missing or not an object"]
        operation = call.name
        req_body = normalize_body(operation, req_body)
        for name in _REQUIRED.get(operation, ()):
            if req_body.get(name) is None:
                problems.append(f"reqBody.{name}: required")
        known = set(_REQUIRED.get(operation, ())) | set(_OPTIONAL.get(operation, ()))
        for name, value in req_body.items():
            if name not in known:
                problems.append(f"reqBody.{name}: unknown field of {operation}")
            elif value is None or name == "clientData":
                continue
            elif name in _BOOLEANS:
                if not isinstance(value, bool):
                    problems.append(f"reqBody.{name}: not a boolean: {value!r}")
            elif not isinstance(value, str):
                problems.append(f"reqBody.{name}: not a string: {value!r}")
            elif name in _ENUMS and value not in _ENUMS[name]:
                problems.append(f"reqBody.{name}: {value!r} is not one of {', '.join(_ENUMS[name])}")
        username = req_body.get("username", req_body.get("userName"))
        if isinstance(username, str) and not (0 < len(username) <= MAX_USERNAME):
            problems.append(f"reqBody.username: 1 to {MAX_USERNAME} characters, got {len(username)}")
        return problems


# -- state ------------------------------------------------------------------------------------------
@dataclass
class PingIDUser:
    userName: str
    fname: str | None = None
    lname: str | None = None
    email: str | None = None
    role: str | None = "REGULAR"
    status: str = "NOT_ACTIVE"
    userEnabled: bool = False
    devices: list[dict[str, Any]] = field(default_factory=list)
    created: int = 0  # epoch ms
    lastLogin: int | None = None
    lastTrx: int | None = None
    suspended_from: str | None = None  # the status before SuspendUser
    origin: str = "api"  # "api" (AddUser) or "seed" (behind the provisioner's back)

    def details(self) -> dict[str, Any]:
        """``userDetails`` as GetUserDetails answers it."""
        return {
            "userName": self.userName,
            "email": self.email,
            "fname": self.fname,
            "lname": self.lname,
            "status": self.status,
            "userEnabled": self.userEnabled,
            "role": self.role,
            "lastLogin": self.lastLogin,
            "deviceDetails": copy.deepcopy(self.devices[0]) if self.devices else None,
            "devicesDetails": copy.deepcopy(self.devices),
            "spList": [],
        }

    def report_row(self) -> dict[str, Any]:
        def when(ms: int | None) -> str | None:
            return None if ms is None else format_timestamp(ms / 1000)

        return {
            "username": self.userName,
            "fname": self.fname,
            "lname": self.lname,
            "orgEmail": self.email,
            "role": self.role,
            "status": self.status,
            "userCreationTime": when(self.created),
            "lastTrxTime": when(self.lastTrx),
            "devices": [
                {"type": d["type"], "nickname": d["nickname"], "deviceRole": d["deviceRole"]} for d in self.devices
            ],
        }


@dataclass
class ReportJob:
    token: str
    polls_left: int
    fail: bool = False
    status: str = "in_progress"
    rows: list[dict[str, Any]] | None = None
    finished_at: float | None = None  # wall clock
    polls: int = 0


@dataclass
class Tamper:
    how: str  # "signature" | "payload" | "key"
    operation: str | None
    times: int | None
    hits: int = 0

    def exhausted(self) -> bool:
        return self.times is not None and self.hits >= self.times


class _Refused(FakeError):
    def __init__(self, reason: str):
        status, error_id, message = REFUSALS[reason]
        super().__init__(status, str(error_id), message)
        self.reason = reason


# -- the fake ---------------------------------------------------------------------------------------
def _op_route(operation: str, write: bool) -> Callable:
    return route("POST", f"{BASE_PATH}/rest/4/{OPERATIONS[operation]}/do", name=operation, write=write, auth=True)


class PingIDFake(FakeService):
    """PingID's user-management API under ``/pingid/rest/4``: see the module docstring.

    ``org``: the organisation (default a new ``PingIDOrg``; its ``idp_url`` is set to the fake's);
    ``max_skew``: seconds a request timestamp may differ from ``wall_clock``; ``validator``:
    ``PingIDValidator()`` by default, None to accept any body shape.
    """

    def __init__(
        self,
        org: PingIDOrg | None = None,
        *,
        max_skew: float = 300.0,
        wall_clock: Callable[[], float] = time.time,
        validator: Any = "pingid",
        **options: Any,
    ):
        super().__init__(validator=PingIDValidator() if validator == "pingid" else validator, **options)
        self.org = org or PingIDOrg()
        self.org.idp_url = self.idp_url
        self.orgs: dict[str, PingIDOrg] = {self.org.org_alias: self.org}
        self.max_skew = max_skew
        self.wall_clock = wall_clock
        self.versions = {API_VERSION}
        self.reset()

    # -- state -----------------------------------------------------------------------------------
    def reset(self) -> None:
        """No users, no jobs, no faults, no tampering, the log cleared (the orgs stay)."""
        with self.lock:
            self.users: dict[str, PingIDUser] = {}  # userName (lower) -> user
            self.jobs: dict[str, ReportJob] = {}
            self.report: ReportJob | None = None  # the last finished report
            self.report_polls = 2
            self.report_cache_seconds = 0.0
            self.edits: list[dict[str, Any]] = []  # every applied EditUser reqBody
            self.cleared: list[dict[str, Any]] = []  # {"userName", "field", "was", "how"}
            self.tampers: list[Tamper] = []
            self.tampered = 0
            self._fail_jobs = 0
            self._ids = itertools.count(1)
            self.faults.clear()
            self.rate_limit(None)
            self.clear_log()

    def state_dump(self) -> Any:
        return {"users": {name: vars(user) for name, user in sorted(self.users.items())}}

    @property
    def idp_url(self) -> str:
        return f"{self.url}{BASE_PATH}"

    def path(self, operation: str) -> str:
        """The route of an operation (for ``faults`` and ``requests_matching``)."""
        return f"{BASE_PATH}/rest/4/{OPERATIONS[operation]}/do"

    def endpoint(self, operation: str) -> str:
        return f"{self.idp_url}/rest/4/{OPERATIONS[operation]}/do"

    def add_org(self, org: PingIDOrg | None = None) -> PingIDOrg:
        """Register another organisation (its requests are verified with its own key)."""
        org = org or PingIDOrg(idp_url=self.idp_url)
        with self.lock:
            self.orgs[org.org_alias] = org
        return org

    def write_properties(self, path: str | Path, org: PingIDOrg | None = None, **extra: str) -> Path:
        """Write ``pingid.properties`` (Java escapes) for ``org`` (default the fake's); its path."""
        path = Path(path)
        path.write_text((org or self.org).properties_text(extra or None), encoding="latin-1")
        path.chmod(0o600)
        return path

    def client(self, org: PingIDOrg | None = None) -> PingIDTestClient:
        return PingIDTestClient(self, org)

    def _now_ms(self) -> int:
        return int(self.wall_clock() * 1000)

    def _device(self, kind: str = "iPhone") -> dict[str, Any]:
        n = next(self._ids)
        return {
            "type": kind,
            "nickname": kind,
            "deviceId": 700000 + n,
            "deviceUuid": f"{n:08x}-0000-4000-8000-{n:012x}",
            "deviceRole": "PRIMARY",
            "enrollment": self._now_ms(),
            "osVersion": "17.0",
            "appVersion": "1.40",
            "pushEnabled": True,
            "email": None,
            "phoneNumber": None,
        }

    # -- seeding and inspection (bypassing the API) -----------------------------------------------
    def seed_user(
        self,
        username: str,
        fname: str | None = None,
        lname: str | None = None,
        email: str | None = None,
        *,
        role: str | None = "REGULAR",
        status: str | None = None,
        enabled: bool = True,
        devices: int | None = None,
        last_login: bool = True,
    ) -> PingIDUser:
        """A user created outside this provisioner, in any status (default ACTIVE, or SUSPENDED
        when ``enabled`` is False). ACTIVE, PENDING_CHANGE_DEVICE and SUSPENDED get one paired
        device unless ``devices`` says how many."""
        status = status or ("ACTIVE" if enabled else "SUSPENDED")
        if status not in STATUSES:
            raise ValueError(f"{status}: not a PingID status ({', '.join(STATUSES)})")
        with self.lock:
            if username.lower() in self.users:
                raise ValueError(f"{username}: already exists")
            paired = status in ACTIVE_STATUSES or status == "SUSPENDED"
            count = devices if devices is not None else (1 if paired else 0)
            user = PingIDUser(
                username,
                fname,
                lname,
                email,
                role,
                status,
                userEnabled=status not in ("NOT_ACTIVE", "SUSPENDED", "PENDING"),
                devices=[self._device() for _number in range(count)],
                created=self._now_ms(),
                lastLogin=self._now_ms() if paired and last_login else None,
                lastTrx=self._now_ms() if paired and last_login else None,
                suspended_from="ACTIVE" if status == "SUSPENDED" else None,
                origin="seed",
            )
            self.users[username.lower()] = user
            return user

    def seed_users_in_every_status(self, prefix: str = "user") -> dict[str, PingIDUser]:
        """One seeded user per status: ``<prefix>_<status lower>`` -> user, by status."""
        return {
            status: self.seed_user(f"{prefix}_{status.lower()}", "Seeded", status.title(), status=status)
            for status in STATUSES
        }

    def pair_device(self, username: str, kind: str = "iPhone") -> PingIDUser:
        """The user pairs a device: PENDING_ACTIVATION / PENDING / NOT_ACTIVE -> ACTIVE."""
        with self.lock:
            user = self._seeded(username)
            user.devices.append(self._device(kind))
            if user.status in NEVER_ACTIVATED:
                user.status, user.userEnabled = "ACTIVE", True
            return user

    def change_user_directly(self, username: str, **fields: Any) -> PingIDUser:
        """An administrator edits the user in the admin portal (fname, lname, email, role, status)."""
        with self.lock:
            user = self._seeded(username)
            for name, value in fields.items():
                if name not in (*EDITABLE, "status"):
                    raise ValueError(f"{name}: not a field to change directly")
                setattr(user, name, value)
            if "status" in fields:
                user.userEnabled = user.status not in ("NOT_ACTIVE", "SUSPENDED", "PENDING")
            return user

    def delete_user_directly(self, username: str) -> None:
        """An administrator deletes the user in the admin portal."""
        with self.lock:
            if self.users.pop(username.lower(), None) is None:
                raise KeyError(f"{username}: no such user")

    def fail_next_report_job(self) -> None:
        """The next report job ends with status "failure"."""
        with self.lock:
            self._fail_jobs += 1

    def fail_next(
        self, operation: str, error_id: int, message: str | None = None, *, status: int = 400, times: int = 1
    ) -> Any:
        """The next ``times`` requests of ``operation`` are answered ``error_id`` (signed), unhandled."""
        return self.faults.status(
            "POST",
            self.path(operation),
            status,
            code=str(error_id),
            message=message or ERROR_MESSAGES.get(error_id, "error"),
            times=times,
        )

    def tamper_replies(
        self, how: str = "signature", *, operation: str | None = None, times: int | None = None
    ) -> Tamper:
        """Break the next replies' signatures (every reply when ``times`` is None): ``signature``
        (a signature byte changed), ``payload`` (the payload changed after signing: errorMsg), or
        ``key`` (signed with another key). ``untamper()`` stops it."""
        if how not in ("signature", "payload", "key"):
            raise ValueError(f"{how}: tamper how? signature, payload or key")
        tamper = Tamper(how, operation, times)
        with self.lock:
            self.tampers.append(tamper)
        return tamper

    def untamper(self) -> None:
        with self.lock:
            self.tampers.clear()

    def _seeded(self, username: str) -> PingIDUser:
        user = self.users.get(username.lower())
        if user is None:
            raise KeyError(f"{username}: no such user")
        return user

    def user(self, username: str) -> dict[str, Any] | None:
        """The user's ``userDetails`` (as GetUserDetails would answer), or None."""
        with self.lock:
            user = self.users.get(username.lower())
            return None if user is None else user.details()

    def stored_user(self, username: str) -> PingIDUser | None:
        with self.lock:
            return self.users.get(username.lower())

    def usernames(self) -> list[str]:
        with self.lock:
            return sorted(user.userName for user in self.users.values())

    def operations(self) -> list[str]:
        """Every operation received, in order (refused ones included)."""
        with self.lock:
            return [entry.name for entry in self.requests if entry.name]

    def op_count(self, operation: str) -> int:
        return self.operations().count(operation)

    def op_counts(self) -> collections.Counter:
        return collections.Counter(self.operations())

    def user_reads(self) -> int:
        """GetUserDetails requests received: a no-op run with a state file sends none."""
        return self.op_count("GetUserDetails")

    def write_operations(self) -> list[str]:
        """The write operations received (AddUser, EditUser, SuspendUser, ActivateUser, DeleteUser)."""
        return [name for name in self.operations() if name in WRITE_OPERATIONS]

    def bodies(self, operation: str) -> list[dict[str, Any]]:
        """The reqBodies of every ``operation`` request received (as sent)."""
        with self.lock:
            return [
                copy.deepcopy(entry.body.get("reqBody"))
                for entry in self.requests
                if entry.name == operation and isinstance(entry.body, dict)
            ]

    def assert_nothing_omitted(self) -> None:
        """Fail when an EditUser left out a field that held a value (the service nulled it)."""
        omitted = [c for c in self.cleared if c["how"] == "omitted"]
        if omitted:
            raise AssertionError(f"EditUser nulled fields it did not send: {omitted}")

    # -- PingID's bodies ------------------------------------------------------------------------------
    def _reply_org(self) -> PingIDOrg | None:
        call = self.current_call
        header = (call.body or {}).get("header") if call is not None and isinstance(call.body, dict) else None
        if not isinstance(header, dict):
            return None
        return self.orgs.get(header.get("org_alias"))

    def _unique_msg_id(self) -> str:
        return f"{secrets.token_hex(4)}-{next(self._ids):06d}"

    def _client_data(self) -> Any:
        call = self.current_call
        if call is None or not isinstance(call.body, dict):
            return None
        body = call.body.get("reqBody")
        return body.get("clientData") if isinstance(body, dict) else None

    def _reply(self, fields: dict[str, Any], status: int = 200, error_id: int = 200, message: str = "ok") -> Response:
        body = {**fields, "errorId": error_id, "errorMsg": message, "uniqueMsgId": self._unique_msg_id()}
        body["clientData"] = self._client_data()
        payload = {"responseBody": body}
        org = self._reply_org()
        if org is None:
            return self.json(payload, status)
        return Response(self._sign_reply(org, payload), status=status, mimetype="application/json")

    def _sign_reply(self, org: PingIDOrg, payload: dict[str, Any]) -> str:
        headers = {"org_alias": org.org_alias, "token": org.token, "typ": None}
        data = json.dumps(payload).encode()
        call = self.current_call
        tamper = next(
            (
                t
                for t in self.tampers
                if not t.exhausted() and (t.operation is None or (call is not None and call.name == t.operation))
            ),
            None,
        )
        if tamper is None:
            return PyJWS().encode(data, org.key, algorithm=ALGORITHM, headers=headers)
        tamper.hits += 1
        self.tampered += 1
        if tamper.how == "key":
            return PyJWS().encode(data, secrets.token_bytes(32), algorithm=ALGORITHM, headers=headers)
        signed = PyJWS().encode(data, org.key, algorithm=ALGORITHM, headers=headers)
        head, body, signature = signed.split(".")
        if tamper.how == "signature":
            signature = ("B" if signature[0] == "A" else "A") + signature[1:]
        else:
            changed = json.loads(data)
            changed["responseBody"]["errorMsg"] = "tampered"
            body = base64.urlsafe_b64encode(json.dumps(changed).encode()).rstrip(b"=").decode()
        return f"{head}.{body}.{signature}"

    def error_response(self, status: int, code: str, message: str, **extra: Any) -> Response:
        error_id = int(code) if str(code).isdigit() else status
        return self._reply(extra, status, error_id, message or ERROR_MESSAGES.get(error_id, "error"))

    def unauthorized_response(self, reason: str, message: str) -> Response:
        status, error_id, text = REFUSALS.get(reason, REFUSALS["signature"])
        return self._reply({}, status, error_id, text)

    def rate_limited_response(self, retry_after: float) -> Response:
        return self._reply({}, 429, 429, "too many requests")

    def validation_failed_response(self, errors: list[str]) -> Response:
        return self._reply({}, 400, 400, "invalid input: " + "; ".join(errors))

    def not_found_response(self) -> Response:
        return self.text("Not Found", 404, mimetype="text/html")

    def parse_body(self, request: Request, raw: bytes) -> Any:
        """The JWS decoded *without* verification, secrets masked: ``{"header", "reqHeader",
        "reqBody"}`` (what the log shows and handlers read); ``authenticate`` verifies."""
        text = raw.decode("utf-8", "replace").strip()
        try:
            decoded = PyJWS().decode_complete(text, options={"verify_signature": False})
            payload = json.loads(decoded["payload"])
        except (jwt.PyJWTError, ValueError, UnicodeDecodeError):
            raise _Refused("not_jws") from None
        if not isinstance(payload, dict):
            raise _Refused("not_jws")
        header = dict(decoded["header"])
        if "token" in header:
            header["token"] = MASK
        req_header = payload.get("reqHeader")
        if isinstance(req_header, dict) and "secretKey" in req_header:
            req_header = {**req_header, "secretKey": MASK}
        return {"header": header, "reqHeader": req_header, "reqBody": payload.get("reqBody")}

    def authenticate(self, call: Call) -> Any:
        text = call.raw_body.decode("utf-8", "replace").strip()
        header = jwt.get_unverified_header(text)
        if header.get("alg") != ALGORITHM:
            raise _Refused("algorithm")
        org = self.orgs.get(header.get("org_alias"))
        if org is None:
            raise _Refused("org")
        try:
            payload = json.loads(PyJWS().decode_complete(text, org.key, algorithms=[ALGORITHM])["payload"])
        except jwt.PyJWTError:
            raise _Refused("signature") from None
        req_header = payload.get("reqHeader") or {}
        if header.get("token") != org.token or req_header.get("secretKey") != org.token:
            raise _Refused("token")
        if req_header.get("orgAlias") != org.org_alias:
            raise _Refused("org_mismatch")
        if req_header.get("version") not in self.versions:
            raise _Refused("version")
        try:
            sent = parse_timestamp(req_header.get("timestamp"))
        except ValueError:
            raise _Refused("timestamp") from None
        if abs(self.wall_clock() - sent) > self.max_skew:
            raise _Refused("timestamp")
        return org

    # -- helpers of the handlers ------------------------------------------------------------------------
    @staticmethod
    def _body(call: Call) -> dict[str, Any]:
        return normalize_body(call.name, call.body.get("reqBody") or {})

    def _stored(self, username: Any) -> PingIDUser:
        user = self.users.get(str(username).lower()) if isinstance(username, str) else None
        if user is None:
            self._missing(username)
        return user

    @staticmethod
    def _missing(username: Any) -> Any:
        raise FakeError(400, "10564", ERROR_MESSAGES[10564])

    @staticmethod
    def _refuse(error_id: int) -> FakeError:
        return FakeError(400, str(error_id), ERROR_MESSAGES[error_id])

    @staticmethod
    def _activation_code() -> str:
        return f"{secrets.randbelow(10**12):012d}"

    def _activate(self, user: PingIDUser) -> dict[str, Any]:
        """NOT_ACTIVE / PENDING / PENDING_ACTIVATION -> PENDING_ACTIVATION with an activation code."""
        user.status, user.userEnabled = "PENDING_ACTIVATION", True
        return {"activationCode": self._activation_code()}

    # -- the operations -------------------------------------------------------------------------------
    @_op_route("AddUser", write=True)
    def add_user(self, call: Call) -> Response:
        body = self._body(call)
        name = body["username"]
        if name.lower() in self.users:
            raise self._refuse(10556)
        user = PingIDUser(
            name,
            body.get("fname"),
            body.get("lname"),
            body.get("email"),
            body.get("role"),
            created=self._now_ms(),
        )
        self.users[name.lower()] = user
        extra = self._activate(user) if body.get("activateUser") else {}
        return self._reply({"userDetails": user.details(), **extra})

    @_op_route("GetUserDetails", write=False)
    def get_user_details(self, call: Call) -> Response:
        user = self._stored(self._body(call)["userName"])
        return self._reply({"userDetails": user.details(), "sameDeviceUsersDetails": []})

    @_op_route("EditUser", write=True)
    def edit_user(self, call: Call) -> Response:
        body = self._body(call)
        user = self._stored(body["userName"])
        for name in EDITABLE:
            old, new = getattr(user, name), body.get(name)
            if old is not None and new is None:
                how = "sent null" if name in body else "omitted"
                self.cleared.append({"userName": user.userName, "field": name, "was": old, "how": how})
            setattr(user, name, new)
        self.edits.append(copy.deepcopy(body))
        extra = self._activate(user) if body.get("activateUser") and user.status in NEVER_ACTIVATED else {}
        return self._reply(extra)

    @_op_route("SuspendUser", write=True)
    def suspend_user(self, call: Call) -> Response:
        user = self._stored(self._body(call)["userName"])
        if user.status not in ACTIVE_STATUSES:
            raise self._refuse(10561)
        user.suspended_from, user.status, user.userEnabled = user.status, "SUSPENDED", False
        return self._reply({})

    @_op_route("ActivateUser", write=True)
    def activate_user(self, call: Call) -> Response:
        user = self._stored(self._body(call)["userName"])
        if user.status in ACTIVE_STATUSES:
            raise self._refuse(10562)
        if user.status == "SUSPENDED":
            restored = user.suspended_from or "ACTIVE"
            user.status, user.userEnabled, user.suspended_from = restored, True, None
            if user.status in NEVER_ACTIVATED:
                return self._reply(self._activate(user))
            return self._reply({})
        return self._reply(self._activate(user))

    @_op_route("DeleteUser", write=True)
    def delete_user(self, call: Call) -> Response:
        user = self._stored(self._body(call)["userName"])
        del self.users[user.userName.lower()]
        return self._reply({})

    @_op_route("CreateJob", write=False)
    def create_job(self, call: Call) -> Response:
        token = f"job-{secrets.token_hex(8)}"
        job = ReportJob(token, self.report_polls, fail=self._fail_jobs > 0)
        if self._fail_jobs:
            self._fail_jobs -= 1
        cached = self.report
        if (
            cached is not None
            and self.report_cache_seconds > 0
            and self.wall_clock() - (cached.finished_at or 0) < self.report_cache_seconds
        ):
            job.rows, job.polls_left = cached.rows, 0
        self.jobs[token] = job
        return self._reply({"jobToken": token})

    @_op_route("GetJobStatus", write=False)
    def get_job_status(self, call: Call) -> Response:
        job = self.jobs.get(self._body(call)["jobToken"])
        if job is None:
            raise FakeError(400, "400", "invalid input: unknown jobToken")
        job.polls += 1
        if job.status == "in_progress":
            if job.polls_left > 0:
                job.polls_left -= 1
            elif job.fail:
                job.status = "failure"
            else:
                job.status, job.finished_at = "done", self.wall_clock()
                if job.rows is None:
                    job.rows = [u.report_row() for _name, u in sorted(self.users.items())]
                self.report = job
        return self._reply({"status": job.status})

    @_op_route("GetOrgReport", write=False)
    def get_org_report(self, call: Call) -> Response:
        if self.report is None:
            raise FakeError(400, "400", "invalid input: no finished report job")
        rows = copy.deepcopy(self.report.rows or [])
        data = self._csv(rows) if self._body(call)["fileType"] == "CSV" else json.dumps(rows).encode()
        return Response(data, status=200, mimetype="application/octet-stream")

    @staticmethod
    def _csv(rows: list[dict[str, Any]]) -> bytes:
        columns = list(PingIDUser("x").report_row())
        out = io.StringIO()
        writer = csv.DictWriter(out, columns)
        writer.writeheader()
        for row in rows:
            devices = ";".join(d["nickname"] for d in row["devices"])
            writer.writerow({**row, "devices": devices})
        return out.getvalue().encode()


@contextlib.contextmanager
def serving(**options: Any) -> Iterator[PingIDFake]:
    """A started ``PingIDFake(**options)`` for a test; on leaving it, every request passed validation
    and no EditUser nulled a field it left out, and the fake is stopped."""
    service = PingIDFake(**options).start()
    try:
        yield service
        assert not service.validation_errors, service.validation_errors
        service.assert_nothing_omitted()
    finally:
        service.stop()
