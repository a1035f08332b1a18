# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A stateful fake Dropbox team API (``/2/team/...``, token endpoint ``/oauth2/token``) on the
fake-service base, written from ``shared/reference/dropbox-api.md``.

**The contract comes from the official SDK** (``dropbox`` pinned in requirements/dev.txt, whose
``dropbox.team`` routes carry Stone's validators; ``dropbox.stone_serializers`` is stone's JSON
serializer). ``stone_validator()`` is a ``CallableValidator``: every request body is decoded with
its route's ``arg_type`` by ``json_compat_obj_decode`` (strict: unknown fields and tags, missing
fields, lengths and patterns such as ``member_given_name`` <= 50 characters without ``/:?*<>"|``);
every answer is decoded with ``result_type`` (200), ``error_type`` (409), ``auth.AuthError`` (401)
or ``auth.RateLimitError`` (429) and encoded back with ``json_compat_obj_encode``: an answer that is
not byte-for-byte what Stone writes (a ``null`` optional field, a bare ``"complete"``, a nested
struct member) is a validation issue. The handlers decode their argument with the same serializer,
so defaults are the SDK's (``wipe_data`` absent is ``true``).

What it holds and does:

* **members** (``Member``) in every state: ``active``, ``invited`` (``added_status``, the default for
  ``members/add_v2``, until ``join(email)``), ``suspended``, ``removed`` (recoverable for
  ``recovery_window`` seconds of the fake's clock unless removed with ``keep_account``, or seeded
  ``recoverable=False``). ``members/list_v2`` + ``list/continue_v2`` (cursors, ``include_removed``);
  ``members/add_v2`` (at most 20: more is a 400, the error type being Void) answering ``complete``
  at once, or ``async_job_id`` when ``force_async`` or more than ``add_async_above`` members, then
  ``members/add/job_status/get_v2``: ``in_progress`` ``add_job_polls`` times, then ``complete`` (or
  ``failed`` after ``fail_next_add_job(message)``); the members are added when the job completes.
  Per-member tags: ``success``, ``user_already_on_team`` (active, invited, suspended or removed and
  recoverable), ``duplicate_external_member_id``, ``duplicate_member_persistent_id``,
  ``persistent_id_disabled``, ``team_license_limit`` (``license_limit``), and any tag of
  ``MemberAddV2Result`` scripted per e-mail with ``script_add_result``. ``members/set_profile_v2``,
  ``suspend`` / ``unsuspend`` / ``remove`` (+ ``remove/job_status/get``, ``remove_job_polls``) /
  ``recover`` with their error tags; an invited member removed is gone (invitation revoked).
* **groups**: ``groups/list`` (+ continue) lists every group, the ``system_managed`` one
  ("Everyone at Fake Team", every member not removed) included; create / update / delete (+
  ``groups/job_status/get``, ``group_job_polls``) / members add (``duplicate_user`` fails the whole
  call) / remove (``member_not_in_group``) / members list (+ continue).
* **errors as Dropbox sends them**: 409 ``{"error_summary": "<tag>/...", "error": {".tag": ...}}``;
  400 plain text (``Error in call to API function "team/...": ...``); 401 JSON AuthError
  (``invalid_access_token``, ``expired_access_token``, ``missing_scope``); 429 JSON RateLimitError
  with ``Retry-After`` (``throttle(...)``, or the base's ``rate_limit``).
* **the token endpoint** ``/oauth2/token``: ``grant_type=refresh_token`` with ``refresh_token`` and
  the app key / secret (form fields or HTTP Basic) -> ``access_token``, ``expires_in``
  (``app.token_ttl``; ``app.token_max_uses`` for mid-run expiry), ``token_type: bearer``.
* **what tests read**: ``member(email)``, ``members_by_email``, ``member_by_id``, ``group(name)``,
  ``group_members(group_id)``, ``calls`` (every write's decoded arguments with ``wipe_data``,
  ``keep_account``, ``retain_team_shares``, ``transfer_*``, ``permanently_delete_files``: absent is
  recorded as the API default), ``wipe_calls()`` / ``assert_nothing_wiped()``, ``jobs`` /
  ``unfinished_jobs()``, ``snapshot()`` (state only: cursors, polls and tokens left out), plus the
  base's request log, ``faults``, ``rate_limit``, ``validation_errors``.
"""

from __future__ import annotations

import base64
import dataclasses
import itertools
import json
import math
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dropbox import auth as sdk_auth
from dropbox import team as sdk_team
from dropbox.stone_serializers import json_compat_obj_decode, json_compat_obj_encode
from stone.backends.python_rsrc import stone_validators as bv
from werkzeug.wrappers import Request, Response

from support.fake_service import (
    Call,
    CallableValidator,
    FakeError,
    FakeService,
    OutsideDescription,
    Unauthorized,
    route,
)

TOKEN_URL = "https://api.dropboxapi.com/oauth2/token"
API_URL = "https://api.dropboxapi.com/2"
MAX_ADD_BATCH = 20  # "A maximum of 20 members can be specified in a single call" (members/add_v2 doc)
RECOVERY_WINDOW = 7 * 24 * 3600.0  # "Accounts can be recovered via members/recover for a 7 day period"
TIMESTAMP = "%Y-%m-%dT%H:%M:%SZ"
SYSTEM_GROUP = "Everyone at Fake Team"
ADD_RESULT_TAGS = tuple(tag for tag in sdk_team.MemberAddV2Result._tagmap if tag != "success")
# The scope each route needs (route attrs in team.stone; the SDK's attrs do not carry them).
SCOPES = {
    "team/members/list_v2": "members.read",
    "team/members/list/continue_v2": "members.read",
    "team/members/add_v2": "members.write",
    "team/members/add/job_status/get_v2": "members.write",
    "team/members/set_profile_v2": "members.write",
    "team/members/suspend": "members.write",
    "team/members/unsuspend": "members.write",
    "team/members/remove": "members.delete",
    "team/members/remove/job_status/get": "members.delete",
    "team/members/recover": "members.delete",
    "team/groups/list": "groups.read",
    "team/groups/list/continue": "groups.read",
    "team/groups/members/list": "groups.read",
    "team/groups/members/list/continue": "groups.read",
    "team/groups/create": "groups.write",
    "team/groups/update": "groups.write",
    "team/groups/delete": "groups.write",
    "team/groups/job_status/get": "groups.write",
    "team/groups/members/add": "groups.write",
    "team/groups/members/remove": "groups.write",
}
ALL_SCOPES = frozenset(SCOPES.values())
_CONTENT_TYPES = ("application/json", "text/plain; charset=dropbox-cors-hack")


# -- the SDK's routes and validators -------------------------------------------------------------
def sdk_route(name: str) -> Any:
    """``team/members/add_v2`` -> the SDK's ``dropbox.team.members_add_v2`` (a ``bb.Route``)."""
    if not name.startswith("team/"):
        raise OutsideDescription(f"{name}: not a route of the team namespace")
    short = name[len("team/") :]
    match = re.fullmatch(r"(.+)_v(\d+)", short)
    key = f"{match.group(1)}:{match.group(2)}" if match else short
    found = sdk_team.ROUTES.get(key)
    if found is None:
        raise OutsideDescription(f"{name}: the SDK has no such route")
    return found


def decode(data_type: Any, body: Any) -> Any:
    """Stone's strict JSON decoding (raises ``stone_validators.ValidationError``)."""
    return json_compat_obj_decode(data_type, body, strict=True)


def _canonical(data_type: Any, body: Any) -> Any:
    return json.loads(json.dumps(json_compat_obj_encode(data_type, decode(data_type, body))))


def _compare(what: str, data_type: Any, body: Any) -> list[str]:
    try:
        written = _canonical(data_type, body)
    except bv.ValidationError as exc:
        return [f"{what}: {exc}"]
    if written != body:
        where, sent, stone = _difference(body, written)
        return [f"{what}: not as Stone writes it at {where or '(top)'}: sent {sent!r}, Stone writes {stone!r}"]
    return []


def _difference(sent: Any, stone: Any, where: str = "") -> tuple[str, Any, Any]:
    """The first place where ``sent`` and Stone's own encoding differ."""
    if isinstance(sent, dict) and isinstance(stone, dict):
        for key in sorted(set(sent) | set(stone)):
            if sent.get(key, "<absent>") != stone.get(key, "<absent>"):
                return _difference(sent.get(key, "<absent>"), stone.get(key, "<absent>"), f"{where}.{key}".lstrip("."))
    if isinstance(sent, list) and isinstance(stone, list) and len(sent) == len(stone):
        for index, (one, other) in enumerate(zip(sent, stone, strict=True)):
            if one != other:
                return _difference(one, other, f"{where}[{index}]")
    return where, sent, stone


def check_request(name: str, body: Any) -> list[str]:
    """The route's ``arg_type`` decodes the body (a Void argument: ``null``); plus the documented
    limit the validators lack (members/add_v2: at most 20 members)."""
    found = sdk_route(name)
    if isinstance(found.arg_type, bv.Void):
        return [] if body is None else [f"request body: {name} takes no argument (null), got {body!r}"]
    try:
        decode(found.arg_type, body)
    except bv.ValidationError as exc:
        return [f"request body: {exc}"]
    if name == "team/members/add_v2" and len(body.get("new_members") or []) > MAX_ADD_BATCH:
        return [f"request body: new_members: at most {MAX_ADD_BATCH} members, got {len(body['new_members'])}"]
    return []


def check_response(name: str, status: int, body: Any) -> list[str]:
    """Each answer decoded and re-encoded with the type Dropbox writes it with."""
    found = sdk_route(name)
    if status == 200:
        if isinstance(found.result_type, bv.Void):
            return [] if body is None else [f"result: the result is Void (null), sent {body!r}"]
        return _compare("result", found.result_type, body)
    if status == 409:
        if isinstance(found.error_type, bv.Void):
            return [f"error: {name} has a Void error type and never answers 409"]
        if not isinstance(body, dict) or not isinstance(body.get("error_summary"), str):
            return [f"error: a 409 body is {{error_summary, error}}, sent {body!r}"]
        problems = _compare("error", found.error_type, body.get("error"))
        extra = set(body) - {"error_summary", "error", "user_message"}
        return problems + ([f"error: unexpected keys {sorted(extra)}"] if extra else [])
    if status == 400:
        return [] if isinstance(body, str) else [f"a 400 body is plain text, sent {body!r}"]
    if status == 401:
        return _compare("401", sdk_auth.AuthError, (body or {}).get("error") if isinstance(body, dict) else body)
    if status == 429:
        if isinstance(body, str):  # "some endpoints send a non-JSON 429"
            return []
        return _compare("429", sdk_auth.RateLimitError, body.get("error") if isinstance(body, dict) else body)
    return []


def stone_validator() -> CallableValidator:
    """The SDK's Stone validators on the base's ``CallableValidator``."""
    return CallableValidator(check_request=check_request, check_response=check_response)


# -- records -----------------------------------------------------------------------------------------
@dataclass
class DropboxApp:
    """A Dropbox app with a team-scoped refresh token (authorization code flow, offline access)."""

    app_key: str = "fakedropboxappkey01"
    app_secret: str = "fakedropboxappsecret01"
    refresh_token: str = "fake-dropbox-refresh-token-0000000000000001"
    scopes: frozenset[str] = ALL_SCOPES
    token_ttl: float = 14400.0  # expires_in (short-lived tokens last about 4 hours)
    token_max_uses: int | None = None  # tokens expire after this many API requests (mid-run expiry)
    pkce: bool = False  # True: the secret may be left out


@dataclass
class Member:
    team_member_id: str
    account_id: str
    email: str
    given_name: str = ""
    surname: str = ""
    status: str = "active"  # active | invited | suspended | removed
    external_id: str | None = None
    persistent_id: str | None = None
    is_directory_restricted: bool | None = None
    admin: bool = False
    invited_on: str | None = None
    joined_on: str | None = None
    suspended_on: str | None = None
    recoverable_until: float | None = None  # removed: the fake's clock until which recover works
    disconnected: bool = False  # removed with keep_account: an individual account now
    welcome_email: bool = False
    member_folder_id: str = ""
    root_folder_id: str = ""

    @property
    def name(self) -> dict[str, str]:
        display = " ".join(part for part in (self.given_name, self.surname) if part)
        initials = "".join(part[0] for part in (self.given_name, self.surname) if part).upper()
        return {
            "given_name": self.given_name,
            "surname": self.surname,
            "familiar_name": self.given_name,
            "display_name": display,
            "abbreviated_name": initials,
        }


@dataclass
class Group:
    group_id: str
    group_name: str
    created: int  # milliseconds since the epoch
    management_type: str = "company_managed"
    external_id: str | None = None
    members: dict[str, str] = field(default_factory=dict)  # team_member_id -> member | owner


@dataclass
class Job:
    job_id: str
    kind: str  # "members/add" | "members/remove" | "groups/delete"
    polls_left: int  # in_progress answers before it completes
    polls: int = 0
    finished: bool = False
    outcome: Any = None  # what complete carries (add: the per-member results)
    failure: str | None = None
    pending: Any = None  # add: the new members, applied when it completes


def _error(tag: str, value: Any = None, **fields: Any) -> FakeError:
    """A route error (409): ``{".tag": tag}``, a struct member flat, a list/primitive under its tag."""
    error: dict[str, Any] = {".tag": tag, **fields}
    if value is not None:
        error[tag] = value
    return FakeError(409, tag, f"{tag}/...", error=error)


def _bad_request(message: str) -> FakeError:
    return FakeError(400, "bad_request", message)


class DropboxFake(FakeService):
    """Dropbox's team API under ``/2/team`` and ``/oauth2/token``: see the module docstring.

    ``app``: the Dropbox app (default ``DropboxApp()``); ``validator``: "stone" (the SDK's, the
    default), None, or any ``Validator``; ``with_admin``: the team has its admin (``admin@...``,
    listed like any member), as every real team does; ``added_status``: what ``members/add_v2``
    makes a new member ("invited" as Dropbox, "active" for tests that need suspendable members).
    """

    def __init__(
        self,
        app: DropboxApp | None = None,
        *,
        validator: Any = "stone",
        with_admin: bool = True,
        added_status: str = "invited",
        wall_clock: Callable[[], float] = time.time,
        **options: Any,
    ):
        if validator == "stone":
            validator = stone_validator()
        super().__init__(validator=validator, **options)
        self.app = app or DropboxApp()
        self.with_admin = with_admin
        self.added_status = added_status
        self.wall_clock = wall_clock
        self.reset()

    # -- state -----------------------------------------------------------------------------------
    def reset(self) -> None:
        """The initial team (its admin, the system-managed group), no faults, log cleared."""
        with self.lock:
            self._ids = itertools.count(1)
            self.members: dict[str, Member] = {}
            self.groups: dict[str, Group] = {}
            self.deleted_groups: dict[str, Group] = {}
            self.jobs: dict[str, Job] = {}
            self.cursors: dict[str, dict[str, Any]] = {}
            self.calls: list[dict[str, Any]] = []
            # Behaviour switches.
            self.add_async_above = 5  # members/add_v2 with more members answers async_job_id
            self.add_job_polls = 1  # in_progress answers of an add job before complete
            self.remove_job_polls = 1  # 0: members/remove answers complete at once
            self.group_job_polls = 1  # 0: groups/delete answers complete at once
            self.license_limit: int | None = None  # members (not removed) the licences allow
            self.persistent_id_enabled = False  # SAML persistent ids (else persistent_id_disabled)
            self.recovery_window = RECOVERY_WINDOW
            self.add_results: dict[str, str] = {}  # e-mail (lower) -> scripted MemberAddV2Result tag
            self._fail_add_jobs: list[str] = []
            self.tokens.clear()
            self.faults.clear()
            self.rate_limit(None)
            self.clear_log()
            self.system_group = self._new_group(SYSTEM_GROUP, "system_managed")
            self.admin = (
                self.seed_member("admin@fake-team.example", "Team", "Admin", admin=True) if self.with_admin else None
            )

    def state_dump(self) -> Any:
        return {
            "members": {mid: dataclasses.asdict(m) for mid, m in self.members.items()},
            "groups": {gid: dataclasses.asdict(g) for gid, g in self.groups.items()},
            "deleted_groups": sorted(self.deleted_groups),
            "jobs": {jid: {"kind": j.kind, "pending": j.pending is not None} for jid, j in self.jobs.items()},
            "calls": self.calls,
        }

    def _next(self) -> int:
        return next(self._ids)

    def _now(self) -> str:
        return datetime.fromtimestamp(self.wall_clock(), UTC).strftime(TIMESTAMP)

    def _new_member(self, email: str, given_name: str = "", surname: str = "", **fields: Any) -> Member:
        n = self._next()
        member = Member(
            team_member_id=f"dbmid:AA{n:034d}",
            account_id=f"dbid:AA{n:033d}",
            email=email,
            given_name=given_name,
            surname=surname,
            member_folder_id=str(3000000000 + n),
            root_folder_id=str(4000000000 + n),
            invited_on=self._now(),
            **fields,
        )
        if member.status != "invited":
            member.joined_on = member.invited_on
        if member.status == "suspended":
            member.suspended_on = self._now()
        self.members[member.team_member_id] = member
        return member

    def _new_group(self, name: str, management_type: str = "company_managed", external_id: str | None = None) -> Group:
        group = Group(f"g:{self._next():032x}", name, int(self.wall_clock() * 1000), management_type, external_id)
        self.groups[group.group_id] = group
        return group

    # -- seeding and inspection (bypassing the API) ---------------------------------------------
    @property
    def api_url(self) -> str:
        return f"{self.url}/2"

    @property
    def token_url(self) -> str:
        return f"{self.url}/oauth2/token"

    def access_token(self, ttl: float | None = None, scopes: Iterable[str] | None = None) -> str:
        """A bearer token of the app (as the token endpoint issues), without a refresh."""
        return self.issue_token(
            self.app.token_ttl if ttl is None else ttl,
            max_uses=self.app.token_max_uses,
            scopes=frozenset(self.app.scopes if scopes is None else scopes),
            value=f"sl.{secrets.token_urlsafe(24)}",
        )

    def seed_member(
        self,
        email: str,
        given_name: str = "",
        surname: str = "",
        *,
        status: str = "active",
        external_id: str | None = None,
        recoverable: bool = True,
        groups: Iterable[str] = (),
        **fields: Any,
    ) -> Member:
        """A member in any state; ``status="removed"`` with ``recoverable`` (within the window) or not."""
        with self.lock:
            stored = "active" if status == "removed" else status
            member = self._new_member(email, given_name, surname, status=stored, external_id=external_id, **fields)
            if status == "removed":
                self._remove(member, keep_account=False)
                if not recoverable:
                    member.recoverable_until = None
            for group_id in groups:
                self.groups[group_id].members[member.team_member_id] = "member"
            return member

    def seed_group(
        self,
        name: str,
        members: Iterable[str] = (),
        *,
        external_id: str | None = None,
        management_type: str = "company_managed",
    ) -> Group:
        with self.lock:
            group = self._new_group(name, management_type, external_id)
            for member_id in members:
                group.members[member_id] = "member"
            return group

    def join(self, email: str) -> Member:
        """The invited member accepts the invitation: active."""
        with self.lock:
            member = self.member(email)
            if member is None or member.status != "invited":
                raise ValueError(f"{email}: no invited member")
            member.status, member.joined_on = "active", self._now()
            return member

    def make_unrecoverable(self, email: str) -> None:
        """The recovery window of a removed member has passed."""
        with self.lock:
            for member in self.members_by_email(email):
                member.recoverable_until = None

    def script_add_result(self, email: str, tag: str) -> None:
        """``members/add_v2`` answers ``tag`` (any MemberAddV2Result tag but success) for this e-mail."""
        if tag not in ADD_RESULT_TAGS:
            raise ValueError(f"{tag}: not a MemberAddV2Result tag ({ADD_RESULT_TAGS})")
        self.add_results[email.lower()] = tag

    def fail_next_add_job(self, message: str = "internal error") -> None:
        """The next async add job ends ``failed`` with this message (no member is added)."""
        self._fail_add_jobs.append(message)

    def throttle(
        self,
        path: str | None,
        retry_after: int = 1,
        *,
        reason: str = "too_many_requests",
        plain: bool = False,
        times: int = 1,
    ):
        """The next ``times`` POSTs to ``path`` (None: any) answer 429 (JSON RateLimitError, or plain text)."""
        if plain:
            body = self.text("Too Many Requests", 429, {"Retry-After": str(retry_after)})
        else:
            body = self._rate_limited(retry_after, reason)
        return self.faults.status("POST", path, 429, body=body, headers={"Retry-After": str(retry_after)}, times=times)

    def members_by_email(self, email: str) -> list[Member]:
        with self.lock:
            return [m for m in self.members.values() if m.email.lower() == email.lower()]

    def member(self, email: str) -> Member | None:
        """The member with this e-mail: the one not removed, else the last removed one."""
        found = self.members_by_email(email)
        present = [m for m in found if m.status != "removed"]
        return (present or found or [None])[-1]

    def member_by_id(self, team_member_id: str) -> Member | None:
        return self.members.get(team_member_id)

    def team_members(self, include_removed: bool = False, include_admin: bool = True) -> list[Member]:
        with self.lock:
            return [
                m
                for m in self.members.values()
                if (include_removed or m.status != "removed") and (include_admin or m is not self.admin)
            ]

    def group(self, name: str) -> Group | None:
        with self.lock:
            return next((g for g in self.groups.values() if g.group_name.lower() == name.lower()), None)

    def group_members(self, group_id: str) -> set[str]:
        with self.lock:
            return set(self._members_of(self.groups[group_id]))

    def profile(self, member: Member) -> dict[str, Any]:
        """The member as ``team/members/list_v2`` writes it (``TeamMemberProfile``)."""
        with self.lock:
            return self._profile(member)

    def calls_to(self, name: str) -> list[dict[str, Any]]:
        with self.lock:
            return [call for call in self.calls if call["route"] == name]

    def wipe_calls(self) -> list[dict[str, Any]]:
        """suspend/remove calls whose effective ``wipe_data`` was true (absent counts: the default is true)."""
        with self.lock:
            return [c for c in self.calls if c.get("wipe_data") is True or c.get("permanently_delete_files") is True]

    def assert_nothing_wiped(self) -> None:
        wiped = self.wipe_calls()
        if wiped:
            raise AssertionError("calls that wipe data or delete files:\n" + "\n".join(map(str, wiped)))

    def unfinished_jobs(self) -> list[Job]:
        with self.lock:
            return [job for job in self.jobs.values() if not job.finished]

    # -- Dropbox's bodies --------------------------------------------------------------------------
    def error_response(self, status: int, code: str, message: str, **extra: Any) -> Response:
        if status == 409:
            error = extra.get("error") or {".tag": code}
            summary = message if message.startswith(error[".tag"]) else f"{error['.tag']}/..."
            return self.json({"error_summary": summary, "error": error}, 409)
        if status == 401:
            return self.unauthorized_response(code, message)
        if status == 429:
            return self._rate_limited(1)
        return self.text(message or code, status)

    def unauthorized_response(self, reason: str, message: str) -> Response:
        if reason in ("missing", "malformed"):
            return self.text(self._api_error(message), 400)
        if reason.startswith("missing_scope:"):
            scope = reason.partition(":")[2]
            error = {".tag": "missing_scope", "required_scope": scope}
            return self.json({"error_summary": "missing_scope/...", "error": error}, 401)
        tag = reason if reason in sdk_auth.AuthError._tagmap else "invalid_access_token"
        return self.json({"error_summary": f"{tag}/...", "error": {".tag": tag}}, 401)

    def rate_limited_response(self, retry_after: float) -> Response:
        return self._rate_limited(retry_after)

    def _rate_limited(self, retry_after: float, reason: str = "too_many_requests") -> Response:
        seconds = max(1, math.ceil(retry_after))
        body = {"error_summary": f"{reason}/...", "error": {"reason": {".tag": reason}, "retry_after": seconds}}
        return self.json(body, 429, {"Retry-After": str(seconds)})

    def validation_failed_response(self, errors: list[str]) -> Response:
        return self.text(self._api_error("; ".join(errors)), 400)

    def not_found_response(self) -> Response:
        call = self.current_call
        return self.text(f'Unknown API function: "{call.path if call else "?"}"', 404)

    def _api_error(self, message: str) -> str:
        call = self.current_call
        name = call.name if call else "?"
        return f'Error in call to API function "{name}": {message}'

    def parse_body(self, request: Request, raw: bytes) -> Any:
        if not request.path.startswith("/2/"):
            return super().parse_body(request, raw)
        content_type = (request.content_type or "").lower().replace(" ", "")
        if not raw and not content_type:
            return None  # a Void argument may be sent as no body at all
        accepted = {t.replace(" ", "") for t in _CONTENT_TYPES} | {"application/json;charset=utf-8"}
        if content_type not in accepted:
            shown = ", ".join(
                f'"{t}"' for t in ("application/json", "application/json; charset=utf-8", _CONTENT_TYPES[1])
            )
            raise _bad_request(
                self._api_error(f'Bad HTTP "Content-Type" header: "{request.content_type}".  Expecting one of {shown}.')
            )
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            raise _bad_request(self._api_error("request body: could not decode input as JSON")) from None

    def authenticate(self, call: Call) -> Any:
        header = call.headers.get("Authorization", "")
        if not header:
            raise Unauthorized("missing", 'Must provide HTTP header "Authorization" or URL parameter "authorization".')
        scheme, _sep, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthorized(
                "malformed",
                f'Invalid authorization value in HTTP header "Authorization": "{scheme} ...".  '
                'Expecting "Bearer <oauth2-access-token>".',
            )
        with self.lock:
            token = self.tokens.get(value.strip())
            if token is None:
                raise Unauthorized("invalid_access_token")
            if token.expired(self.clock()):
                raise Unauthorized("expired_access_token")
            needed = SCOPES.get(call.name)
            scopes = token.claims.get("scopes", ALL_SCOPES)
            if needed and needed not in scopes:
                raise Unauthorized(f"missing_scope:{needed}")
            token.uses += 1
            return token

    # -- helpers of the handlers -------------------------------------------------------------------
    def _arg(self, call: Call) -> Any:
        """The request decoded by the SDK (its defaults apply to absent fields)."""
        arg_type = sdk_route(call.name).arg_type
        try:
            return decode(arg_type, call.body)
        except bv.ValidationError as exc:
            raise _bad_request(self._api_error(f"request body: {exc}")) from None

    @staticmethod
    def _void() -> Response:
        return FakeService.json(None)

    def _profile(self, member: Member, full: bool = True) -> dict[str, Any]:
        """TeamMemberProfile (``full``) or MemberProfile (groups/members/list), as Stone writes it."""
        if member.status == "removed":
            status: dict[str, Any] = {
                ".tag": "removed",
                "is_recoverable": self._recoverable(member),
                "is_disconnected": member.disconnected,
            }
        else:
            status = {".tag": member.status}
        profile: dict[str, Any] = {
            "team_member_id": member.team_member_id,
            "account_id": member.account_id,
            "email": member.email,
            "email_verified": member.status != "invited",
            "status": status,
            "name": member.name,
            "membership_type": {".tag": "full"},
        }
        optional = {
            "external_id": member.external_id,
            "invited_on": member.invited_on,
            "joined_on": member.joined_on,
            "suspended_on": member.suspended_on,
            "persistent_id": member.persistent_id,
            "is_directory_restricted": member.is_directory_restricted,
        }
        profile.update({k: v for k, v in optional.items() if v is not None})
        if full:
            profile["groups"] = [
                g.group_id for g in self.groups.values() if member.team_member_id in self._members_of(g)
            ]
            profile["member_folder_id"] = member.member_folder_id
            profile["root_folder_id"] = member.root_folder_id
        return profile

    def _info(self, member: Member) -> dict[str, Any]:
        info: dict[str, Any] = {"profile": self._profile(member)}
        if member.admin:
            info["roles"] = [{"role_id": "pid_dbtmr:team_admin", "name": "Team", "description": "Team admin"}]
        return info

    def _recoverable(self, member: Member) -> bool:
        return (
            member.status == "removed"
            and not member.disconnected
            and member.recoverable_until is not None
            and self.clock() < member.recoverable_until
        )

    def _select(self, selector: Any) -> Member | None:
        """UserSelectorArg -> the member (a removed one too), or None."""
        if selector.is_team_member_id():
            return self.members.get(selector.get_team_member_id())
        if selector.is_external_id():
            value = selector.get_external_id()
            found = [m for m in self.members.values() if m.external_id == value]
        else:
            value = selector.get_email().lower()
            found = [m for m in self.members.values() if m.email.lower() == value]
        present = [m for m in found if m.status != "removed"]
        return (present or found or [None])[-1]

    def _selected(self, selector: Any) -> Member:
        member = self._select(selector)
        if member is None:
            raise _error("user_not_found")
        return member

    def _page(self, kind: str, items: list[Any], limit: int, offset: int = 0, **context: Any) -> tuple[list, str, bool]:
        page = items[offset : offset + limit]
        end = offset + len(page)
        cursor = base64.urlsafe_b64encode(secrets.token_bytes(18)).decode()
        self.cursors[cursor] = {"kind": kind, "offset": end, "limit": limit, **context}
        return page, cursor, end < len(items)

    def _cursor(self, cursor: str, kind: str) -> dict[str, Any]:
        found = self.cursors.get(cursor)
        if found is None or found["kind"] != kind:
            raise _error("invalid_cursor")
        return found

    def _job(self, kind: str, polls: int, **fields: Any) -> Job:
        job = Job(f"dbjid:AA{self._next():036d}", kind, polls, **fields)
        self.jobs[job.job_id] = job
        return job

    def _record(self, call: Call, **fields: Any) -> dict[str, Any]:
        entry = {"seq": call.seq, "route": call.name, **fields, "outcome": None}
        self.calls.append(entry)
        return entry

    # -- the token endpoint ------------------------------------------------------------------------
    @route("POST", "/oauth2/token", name="oauth2/token", auth=False, validate=False, write=False)
    def token(self, call: Call) -> Any:
        form = call.body if isinstance(call.body, dict) else {}
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        basic = call.headers.get("Authorization", "")
        if basic.lower().startswith("basic "):
            try:
                client_id, _sep, client_secret = base64.b64decode(basic[6:]).decode().partition(":")
            except ValueError:
                return self._oauth_error("invalid_client", "Invalid client_id or client_secret")
        grant = form.get("grant_type")
        if not grant:
            return self._oauth_error("invalid_request", "No grant_type")
        if grant != "refresh_token":
            return self._oauth_error("unsupported_grant_type", f'"{grant}" is not a supported grant_type')
        if not form.get("refresh_token"):
            return self._oauth_error("invalid_request", "No refresh_token")
        if client_id != self.app.app_key or (
            client_secret != self.app.app_secret and not (self.app.pkce and not client_secret)
        ):
            return self._oauth_error("invalid_client", "Invalid client_id or client_secret")
        if form["refresh_token"] != self.app.refresh_token:
            return self._oauth_error("invalid_grant", "refresh token is invalid or revoked")
        token = self.access_token()
        return {"access_token": token, "token_type": "bearer", "expires_in": int(self.app.token_ttl)}

    def _oauth_error(self, error: str, description: str) -> Response:
        return self.json({"error": error, "error_description": description}, 400)

    # -- members -------------------------------------------------------------------------------------
    @route("POST", "/2/team/members/list_v2", name="team/members/list_v2", write=False)
    def members_list(self, call: Call) -> Any:
        arg = self._arg(call)
        members = [m.team_member_id for m in self.members.values() if arg.include_removed or m.status != "removed"]
        return self._members_page(members, arg.limit)

    @route("POST", "/2/team/members/list/continue_v2", name="team/members/list/continue_v2", write=False)
    def members_list_continue(self, call: Call) -> Any:
        cursor = self._cursor(self._arg(call).cursor, "members")
        return self._members_page(cursor["ids"], cursor["limit"], cursor["offset"])

    def _members_page(self, ids: list[str], limit: int, offset: int = 0) -> Any:
        page, cursor, more = self._page("members", ids, limit, offset, ids=ids)
        infos = [self._info(self.members[i]) for i in page if i in self.members]
        return {"members": infos, "cursor": cursor, "has_more": more}

    @route("POST", "/2/team/members/add_v2", name="team/members/add_v2")
    def members_add(self, call: Call) -> Any:
        arg = self._arg(call)
        if len(arg.new_members) > MAX_ADD_BATCH:
            raise _bad_request(self._api_error(f"request body: new_members: at most {MAX_ADD_BATCH} members"))
        self._record(call, emails=[m.member_email for m in arg.new_members], force_async=arg.force_async)
        if arg.force_async or len(arg.new_members) > self.add_async_above:
            job = self._job("members/add", self.add_job_polls, pending=list(arg.new_members))
            return {".tag": "async_job_id", "async_job_id": job.job_id}
        return {".tag": "complete", "complete": self._add(arg.new_members)}

    @route("POST", "/2/team/members/add/job_status/get_v2", name="team/members/add/job_status/get_v2", write=False)
    def members_add_status(self, call: Call) -> Any:
        job = self._poll(self._arg(call).async_job_id, "members/add")
        if job.polls_left > 0:
            job.polls_left -= 1
            return {".tag": "in_progress"}
        if not job.finished:
            job.finished = True
            if self._fail_add_jobs:
                job.failure = self._fail_add_jobs.pop(0)
            else:
                job.outcome = self._add(job.pending)
            job.pending = None
        if job.failure is not None:
            return {".tag": "failed", "failed": job.failure}
        return {".tag": "complete", "complete": job.outcome}

    def _poll(self, job_id: str, kind: str) -> Job:
        job = self.jobs.get(job_id)
        if job is None or job.kind != kind:
            raise _error("invalid_async_job_id")
        job.polls += 1
        return job

    def _add(self, new_members: list[Any]) -> list[dict[str, Any]]:
        results = []
        for new in new_members:
            tag = self._add_refusal(new)
            if tag:
                results.append({".tag": tag, tag: new.member_email})
                continue
            member = self._new_member(
                new.member_email,
                new.member_given_name or "",
                new.member_surname or "",
                status=self.added_status,
                external_id=new.member_external_id,
                persistent_id=new.member_persistent_id,
                is_directory_restricted=new.is_directory_restricted,
                welcome_email=new.send_welcome_email,
            )
            results.append({".tag": "success", **self._info(member)})
        return results

    def _add_refusal(self, new: Any) -> str | None:
        email = new.member_email.lower()
        if email in self.add_results:
            return self.add_results[email]
        for member in self.members_by_email(email):
            if member.status != "removed" or self._recoverable(member):
                return "user_already_on_team"
        present = [m for m in self.members.values() if m.status != "removed"]
        if new.member_external_id and any(m.external_id == new.member_external_id for m in present):
            return "duplicate_external_member_id"
        if new.member_persistent_id:
            if not self.persistent_id_enabled:
                return "persistent_id_disabled"
            if any(m.persistent_id == new.member_persistent_id for m in present):
                return "duplicate_member_persistent_id"
        if self.license_limit is not None and len(present) >= self.license_limit:
            return "team_license_limit"
        return None

    @route("POST", "/2/team/members/set_profile_v2", name="team/members/set_profile_v2")
    def members_set_profile(self, call: Call) -> Any:
        arg = self._arg(call)
        new = {
            "email": arg.new_email,
            "external_id": arg.new_external_id,
            "given_name": arg.new_given_name,
            "surname": arg.new_surname,
            "persistent_id": arg.new_persistent_id,
            "is_directory_restricted": arg.new_is_directory_restricted,
        }
        entry = self._record(call, user=call.body.get("user"), **{k: v for k, v in new.items() if v is not None})
        member = self._selected(arg.user)
        if member.status == "removed":
            raise _error("set_profile_disallowed")
        if arg.user.is_external_id() and arg.new_external_id is not None:
            raise _error("external_id_and_new_external_id_unsafe")
        if all(value is None for value in new.values()):
            raise _error("no_new_data_specified")
        if any(new[k] == "" for k in ("email", "given_name", "surname")):
            raise _error("param_cannot_be_empty")
        others = [m for m in self.members.values() if m is not member and m.status != "removed"]
        if arg.new_email and any(m.email.lower() == arg.new_email.lower() for m in others):
            raise _error("email_reserved_for_other_user")
        if arg.new_external_id and any(m.external_id == arg.new_external_id for m in others):
            raise _error("external_id_used_by_other_user")
        if arg.new_persistent_id is not None:
            if not self.persistent_id_enabled:
                raise _error("persistent_id_disabled")
            if any(m.persistent_id == arg.new_persistent_id for m in others):
                raise _error("persistent_id_used_by_other_user")
        for name, value in new.items():
            if value is not None:
                setattr(member, name, value if value != "" or name != "external_id" else None)
        entry["outcome"] = "ok"
        return {"member_info": self._info(member)}

    @route("POST", "/2/team/members/suspend", name="team/members/suspend")
    def members_suspend(self, call: Call) -> Any:
        arg = self._arg(call)
        entry = self._record(
            call, user=call.body.get("user"), wipe_data=arg.wipe_data, wipe_data_sent="wipe_data" in call.body
        )
        member = self._selected(arg.user)
        if member.status == "removed":
            raise _error("user_not_in_team")
        if member.status != "active":
            raise _error("suspend_inactive_user")
        if member.admin and self._last_admin(member):
            raise _error("suspend_last_admin")
        member.status, member.suspended_on = "suspended", self._now()
        entry["outcome"] = "ok"
        return self._void()

    @route("POST", "/2/team/members/unsuspend", name="team/members/unsuspend")
    def members_unsuspend(self, call: Call) -> Any:
        arg = self._arg(call)
        entry = self._record(call, user=call.body.get("user"))
        member = self._selected(arg.user)
        if member.status == "removed":
            raise _error("user_not_in_team")
        if member.status != "suspended":
            raise _error("unsuspend_non_suspended_member")
        member.status, member.suspended_on = "active", None
        entry["outcome"] = "ok"
        return self._void()

    def _last_admin(self, member: Member) -> bool:
        return not any(m.admin and m.status == "active" for m in self.members.values() if m is not member)

    @route("POST", "/2/team/members/remove", name="team/members/remove")
    def members_remove(self, call: Call) -> Any:
        arg = self._arg(call)
        entry = self._record(
            call,
            user=call.body.get("user"),
            wipe_data=arg.wipe_data,
            wipe_data_sent="wipe_data" in call.body,
            keep_account=arg.keep_account,
            retain_team_shares=arg.retain_team_shares,
            transfer_dest_id=call.body.get("transfer_dest_id"),
            transfer_admin_id=call.body.get("transfer_admin_id"),
            permanently_delete_files=arg.permanently_delete_files,
        )
        member = self._selected(arg.user)
        if member.status == "removed":
            raise _error("user_not_in_team")
        self._check_remove(member, arg)
        self._remove(member, keep_account=arg.keep_account)
        entry["outcome"] = "ok"
        if self.remove_job_polls <= 0:
            return {".tag": "complete"}
        return {".tag": "async_job_id", "async_job_id": self._job("members/remove", self.remove_job_polls).job_id}

    def _check_remove(self, member: Member, arg: Any) -> None:
        if arg.keep_account:
            if member.status == "invited":
                raise _error("cannot_keep_invited_user_account")
            if arg.wipe_data:
                raise _error("cannot_keep_account_and_delete_data")
            if arg.transfer_dest_id is not None:
                raise _error("cannot_keep_account_and_transfer")
            if arg.permanently_delete_files:
                raise _error("cannot_keep_account_and_permanently_delete")
        if arg.retain_team_shares:
            if arg.wipe_data:
                raise _error("cannot_retain_shares_when_data_wiped")
            if not arg.keep_account:
                raise _error("cannot_retain_shares_when_no_account_kept")
        if arg.transfer_dest_id is not None:
            if arg.permanently_delete_files:
                raise _error("cannot_permanently_delete_and_transfer")
            if arg.transfer_admin_id is None:
                raise _error("unspecified_transfer_admin_id")
            dest = self._select(arg.transfer_dest_id)
            if dest is None:
                raise _error("transfer_dest_user_not_found")
            if dest.status == "removed":
                raise _error("transfer_dest_user_not_in_team")
            if dest is member:
                raise _error("removed_and_transfer_dest_should_differ")
            admin = self._select(arg.transfer_admin_id)
            if admin is None:
                raise _error("transfer_admin_user_not_found")
            if admin.status == "removed":
                raise _error("transfer_admin_user_not_in_team")
            if admin is member:
                raise _error("removed_and_transfer_admin_should_differ")
            if not admin.admin:
                raise _error("transfer_admin_is_not_admin")
        if member.admin and self._last_admin(member):
            raise _error("remove_last_admin")

    def _remove(self, member: Member, keep_account: bool) -> None:
        for group in self.groups.values():
            group.members.pop(member.team_member_id, None)
        if member.status == "invited":
            del self.members[member.team_member_id]  # the invitation is revoked: nothing to recover
            return
        member.status = "removed"
        member.disconnected = keep_account
        member.recoverable_until = None if keep_account else self.clock() + self.recovery_window

    @route("POST", "/2/team/members/remove/job_status/get", name="team/members/remove/job_status/get", write=False)
    def members_remove_status(self, call: Call) -> Any:
        return self._empty_job(self._poll(self._arg(call).async_job_id, "members/remove"))

    def _empty_job(self, job: Job) -> Any:
        if job.polls_left > 0:
            job.polls_left -= 1
            return {".tag": "in_progress"}
        job.finished = True
        return {".tag": "complete"}

    @route("POST", "/2/team/members/recover", name="team/members/recover")
    def members_recover(self, call: Call) -> Any:
        arg = self._arg(call)
        entry = self._record(call, user=call.body.get("user"))
        member = self._selected(arg.user)
        if not self._recoverable(member):
            raise _error("user_unrecoverable")
        present = [m for m in self.members.values() if m.status != "removed"]
        if self.license_limit is not None and len(present) >= self.license_limit:
            raise _error("team_license_limit")
        member.status, member.recoverable_until, member.suspended_on = "active", None, None
        entry["outcome"] = "ok"
        return self._void()

    # -- groups ---------------------------------------------------------------------------------------
    def _members_of(self, group: Group) -> dict[str, str]:
        if group.management_type == "system_managed":
            return {m.team_member_id: "member" for m in self.members.values() if m.status != "removed"}
        return group.members

    def _summary(self, group: Group) -> dict[str, Any]:
        summary: dict[str, Any] = {
            "group_name": group.group_name,
            "group_id": group.group_id,
            "member_count": len(self._members_of(group)),
            "group_management_type": {".tag": group.management_type},
        }
        if group.external_id is not None:
            summary["group_external_id"] = group.external_id
        return summary

    def _full(self, group: Group, members: bool) -> dict[str, Any]:
        info = {**self._summary(group), "created": group.created}
        if members:
            info["members"] = self._member_infos(group)
        return info

    def _member_infos(self, group: Group, ids: Iterable[str] | None = None) -> list[dict[str, Any]]:
        access = self._members_of(group)
        return [
            {"profile": self._profile(self.members[i], full=False), "access_type": {".tag": access[i]}}
            for i in (access if ids is None else ids)
            if i in self.members and i in access
        ]

    def _group(self, selector: Any, deleted_error: bool = False) -> Group:
        if selector.is_group_id():
            group = self.groups.get(selector.get_group_id())
            if group is None and deleted_error and selector.get_group_id() in self.deleted_groups:
                raise _error("group_already_deleted")
        else:
            value = selector.get_group_external_id()
            group = next((g for g in self.groups.values() if g.external_id == value), None)
        if group is None:
            raise _error("group_not_found")
        return group

    def _writable(self, group: Group) -> Group:
        if group.management_type == "system_managed":
            raise _error("system_managed_group_disallowed")
        return group

    def _name_taken(self, name: str, but: Group | None = None) -> bool:
        return any(g.group_name.lower() == name.lower() for g in self.groups.values() if g is not but)

    @route("POST", "/2/team/groups/list", name="team/groups/list", write=False)
    def groups_list(self, call: Call) -> Any:
        return self._groups_page(list(self.groups), self._arg(call).limit)

    @route("POST", "/2/team/groups/list/continue", name="team/groups/list/continue", write=False)
    def groups_list_continue(self, call: Call) -> Any:
        cursor = self._cursor(self._arg(call).cursor, "groups")
        return self._groups_page(cursor["ids"], cursor["limit"], cursor["offset"])

    def _groups_page(self, ids: list[str], limit: int, offset: int = 0) -> Any:
        page, cursor, more = self._page("groups", ids, limit, offset, ids=ids)
        return {
            "groups": [self._summary(self.groups[i]) for i in page if i in self.groups],
            "cursor": cursor,
            "has_more": more,
        }

    @route("POST", "/2/team/groups/create", name="team/groups/create")
    def groups_create(self, call: Call) -> Any:
        arg = self._arg(call)
        kind = arg.group_management_type._tag if arg.group_management_type is not None else "company_managed"
        entry = self._record(
            call, group_name=arg.group_name, group_external_id=arg.group_external_id, group_management_type=kind
        )
        self._check_group_fields(arg.group_name, arg.group_external_id, kind)
        group = self._new_group(arg.group_name, kind, arg.group_external_id)
        if arg.add_creator_as_owner and self.admin is not None:
            group.members[self.admin.team_member_id] = "owner"
        entry["outcome"] = group.group_id
        return self._full(group, members=True)

    def _check_group_fields(
        self, name: str | None, external_id: str | None, kind: str | None, group: Group | None = None
    ) -> None:
        if name is not None:
            if not name.strip() or len(name) > 255:
                raise _error("group_name_invalid")  # the real limit is not documented: 255 here
            if self._name_taken(name, group):
                raise _error("group_name_already_used")
        if external_id and any(g.external_id == external_id for g in self.groups.values() if g is not group):
            raise _error("external_id_already_in_use")
        if kind == "system_managed":
            raise _error("system_managed_group_disallowed")

    @route("POST", "/2/team/groups/update", name="team/groups/update")
    def groups_update(self, call: Call) -> Any:
        arg = self._arg(call)
        kind = arg.new_group_management_type._tag if arg.new_group_management_type is not None else None
        entry = self._record(
            call,
            group=call.body.get("group"),
            new_group_name=arg.new_group_name,
            new_group_external_id=arg.new_group_external_id,
            new_group_management_type=kind,
        )
        group = self._writable(self._group(arg.group))
        self._check_group_fields(arg.new_group_name, arg.new_group_external_id, kind, group)
        if arg.new_group_name is not None:
            group.group_name = arg.new_group_name
        if arg.new_group_external_id is not None:
            group.external_id = arg.new_group_external_id or None  # "" clears it
        if kind is not None:
            group.management_type = kind
        entry["outcome"] = "ok"
        return self._full(group, members=arg.return_members)

    @route("POST", "/2/team/groups/delete", name="team/groups/delete")
    def groups_delete(self, call: Call) -> Any:
        arg = self._arg(call)
        entry = self._record(call, group=call.body)
        group = self._writable(self._group(arg, deleted_error=True))
        self.deleted_groups[group.group_id] = self.groups.pop(group.group_id)
        entry["outcome"] = "ok"
        if self.group_job_polls <= 0:
            return {".tag": "complete"}
        return {".tag": "async_job_id", "async_job_id": self._job("groups/delete", self.group_job_polls).job_id}

    @route("POST", "/2/team/groups/job_status/get", name="team/groups/job_status/get", write=False)
    def groups_job_status(self, call: Call) -> Any:
        return self._empty_job(self._poll(self._arg(call).async_job_id, "groups/delete"))

    def _resolve_users(self, selectors: list[Any]) -> list[Member]:
        """UserSelectorArgs -> members; users_not_found / members_not_in_team as Dropbox lists them."""
        found, missing, outside = [], [], []
        for selector in selectors:
            member = self._select(selector)
            shown = json_compat_obj_encode(sdk_team.UserSelectorArg_validator, selector)[selector._tag]
            if member is None:
                missing.append(shown)
            elif member.status == "removed":
                outside.append(shown)
            else:
                found.append(member)
        if missing:
            raise _error("users_not_found", missing)
        if outside:
            raise _error("members_not_in_team", outside)
        return found

    @route("POST", "/2/team/groups/members/add", name="team/groups/members/add")
    def groups_members_add(self, call: Call) -> Any:
        arg = self._arg(call)
        entry = self._record(call, group=call.body.get("group"), members=call.body.get("members"))
        group = self._writable(self._group(arg.group))
        members = self._resolve_users([access.user for access in arg.members])
        if any(m.team_member_id in group.members for m in members):
            raise _error("duplicate_user")
        owners = [m for m, access in zip(members, arg.members, strict=True) if access.access_type.is_owner()]
        if any(m.status != "active" for m in owners):
            raise _error("user_must_be_active_to_be_owner")
        if owners and group.management_type == "company_managed":
            raise _error("user_cannot_be_manager_of_company_managed_group", [m.email for m in owners])
        for member, access in zip(members, arg.members, strict=True):
            group.members[member.team_member_id] = access.access_type._tag
        entry["outcome"] = "ok"
        return {"group_info": self._full(group, members=arg.return_members), "async_job_id": " "}

    @route("POST", "/2/team/groups/members/remove", name="team/groups/members/remove")
    def groups_members_remove(self, call: Call) -> Any:
        arg = self._arg(call)
        entry = self._record(call, group=call.body.get("group"), users=call.body.get("users"))
        group = self._writable(self._group(arg.group))
        members = self._resolve_users(list(arg.users))
        if any(m.team_member_id not in group.members for m in members):
            raise _error("member_not_in_group")
        for member in members:
            group.members.pop(member.team_member_id, None)
        entry["outcome"] = "ok"
        return {"group_info": self._full(group, members=arg.return_members), "async_job_id": " "}

    @route("POST", "/2/team/groups/members/list", name="team/groups/members/list", write=False)
    def groups_members_list(self, call: Call) -> Any:
        arg = self._arg(call)
        group = self._group(arg.group)
        return self._group_members_page(group.group_id, list(self._members_of(group)), arg.limit)

    @route("POST", "/2/team/groups/members/list/continue", name="team/groups/members/list/continue", write=False)
    def groups_members_list_continue(self, call: Call) -> Any:
        cursor = self._cursor(self._arg(call).cursor, "group_members")
        return self._group_members_page(cursor["group_id"], cursor["ids"], cursor["limit"], cursor["offset"])

    def _group_members_page(self, group_id: str, ids: list[str], limit: int, offset: int = 0) -> Any:
        page, cursor, more = self._page("group_members", ids, limit, offset, ids=ids, group_id=group_id)
        group = self.groups.get(group_id)
        infos = self._member_infos(group, page) if group is not None else []
        return {"members": infos, "cursor": cursor, "has_more": more}
