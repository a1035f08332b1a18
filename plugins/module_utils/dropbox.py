# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Dropbox team connector (Dropbox Business API v2): team members, groups, group members.

Private to this collection: the names here may change without notice.

Built on the connector kit (``_kit``) and the token source (``_token``); the facts it relies on come
from Dropbox's Stone specifications (``team.stone``, ``team_common.stone``, ``async.stone``) as the
official SDK's validators carry them: every route is a POST with a JSON body; unions are written
``{".tag": ...}``; a 409 carries ``error_summary`` and the error union; members/add_v2 takes at
most 20 members and answers at once or through an async job; ``user_already_on_team`` also means
"removed but still recoverable" and "invited"; suspend and remove wipe the member's devices
unless told not to (``wipe_data`` is therefore always sent, ``false`` unless the operator asks).

Attribute paths for ``user_mapping`` (the names of ``members/add_v2`` without ``member_``):

* ``email``: the member's e-mail, the user key (matched case-insensitively), at most 255 characters.
* ``given_name``, ``surname``: at most 50 characters each, none of ``/ : ? * < > " |``.
* ``persistent_id``: the SAML persistent id (teams with persistent ids enabled).
* ``is_directory_restricted``: true hides the member from the team directory.

Any other path is read from the member as Dropbox returns it (``TeamMemberInfoV2``), read only:
``profile.status[.tag]``, ``profile.membership_type[.tag]``, ``profile.joined_on``, ... The
ownership marker is the member's ``member_external_id`` (at most 64 characters) and the group's
``group_external_id``; neither is mapped.

Invited members: Dropbox adds every new member as ``invited`` until the person joins, and refuses
to suspend an invited member (``suspend_inactive_user``). Disabling one therefore revokes its
invitation (``members/remove`` with ``wipe_data: false``: an invited member has no team content
to lose) when ``disable_invited`` is ``revoke`` (the default), or fails that user with a message
saying so when it is ``fail``. A pending invitation is never left open for a person the directory
has disabled without the run saying so. For the same reason a user cannot be *created* disabled
(``provision_disabled_users``): that user is refused with a message, before any call.

Writes whose answer is lost (a 5xx, a reset, a timeout: it may have landed): the routes that set
values (``SETTING_ROUTES``) are resent by the HTTP layer as reads are. The others fail when done
twice, with an "already so" error (a second suspend: ``suspend_inactive_user``); ``call_once``
sends them again once and takes that error as done.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from ansible_collections.idsync.provisioning.plugins.module_utils import _kit
from ansible_collections.idsync.provisioning.plugins.module_utils._connector import (
    Capabilities,
    Connector,
    MemberFailures,
)
from ansible_collections.idsync.provisioning.plugins.module_utils._engine import values_equal
from ansible_collections.idsync.provisioning.plugins.module_utils._http import (
    AmbiguousRequestError,
    HttpClient,
    bearer_auth,
    default_error_text,
    paginate,
)
from ansible_collections.idsync.provisioning.plugins.module_utils._model import (
    ProvisioningError,
    TargetGroup,
    TargetUser,
    is_empty,
)
from ansible_collections.idsync.provisioning.plugins.module_utils._token import TokenSource, refresh_token

API_URL = "https://api.dropboxapi.com/2"
TOKEN_URL = "https://api.dropboxapi.com/oauth2/token"
USER_KEY = "email"
MAX_PAGE = 1000
ADD_BATCH = 20  # members/add_v2: "A maximum of 20 members can be specified in a single call"
MAX_EXTERNAL_ID = 64
MAX_NAME_PART = 50
MAX_EMAIL = 255
# The SDK renews a short-lived token 300 s before it expires; so do we.
TOKEN_MARGIN = 300.0
# Async jobs (members/add, members/remove, groups/delete): polled with a growing wait
# (_kit.follow_job), at most this many times.
JOB_MAX_POLLS = 40

_EMAIL = re.compile(r"^['#&A-Za-z0-9._%+-]+@[A-Za-z0-9-][A-Za-z0-9.-]*\.[A-Za-z]{2,15}$")  # Stone's EmailAddress
_NAME_FORBIDDEN = '/:?*<>"|'
# user_mapping path -> (where it is in TeamMemberInfoV2, the add_v2 field, the set_profile_v2 field)
USER_FIELDS: dict[str, tuple[str, str, str]] = {
    "email": ("profile.email", "member_email", "new_email"),
    "given_name": ("profile.name.given_name", "member_given_name", "new_given_name"),
    "surname": ("profile.name.surname", "member_surname", "new_surname"),
    "persistent_id": ("profile.persistent_id", "member_persistent_id", "new_persistent_id"),
    "is_directory_restricted": (
        "profile.is_directory_restricted",
        "is_directory_restricted",
        "new_is_directory_restricted",
    ),
}
MARKER_FIELDS = frozenset({"external_id", "member_external_id", "profile.external_id"})

SUSPENDED, INVITED, REMOVED = "suspended", "invited", "removed"
DISABLE_INVITED = ("revoke", "fail")
SYSTEM_MANAGED = "system_managed"

# What each members/add_v2 per-member tag means, for the report (success and
# user_already_on_team are handled, not reported).
ADD_RESULT_TEXT = {
    "team_license_limit": "the team has no license left for another member",
    "free_team_member_limit_reached": "the free team's member limit is reached",
    "user_on_another_team": "the address belongs to a member of another Dropbox team",
    "user_already_paired": "the address belongs to an account paired with another team account",
    "user_migration_failed": "Dropbox could not migrate the person's existing account onto the team",
    "duplicate_external_member_id": "another member already carries this member_external_id (ownership marker)",
    "duplicate_member_persistent_id": "another member already has this persistent_id",
    "persistent_id_disabled": "persistent ids are not enabled for this team",
    "user_creation_failed": "Dropbox failed to create the account",
}

# Writes that set values: sending one again sets the same values, so the HTTP layer may resend it.
SETTING_ROUTES = frozenset({"team/members/set_profile_v2", "team/groups/update"})

# groups/members/add|remove errors that name the members at fault (the others fail the whole call)
_MEMBER_LIST_ERRORS = (
    "members_not_in_team",
    "users_not_found",
    "user_cannot_be_manager_of_company_managed_group",
)


# -- small Stone helpers -----------------------------------------------------------------------
def _by_id(team_member_id: str) -> dict[str, str]:
    return {".tag": "team_member_id", "team_member_id": team_member_id}


def user_selector(value: str) -> dict[str, str]:
    """An operator's member reference: an e-mail address, else a team_member_id."""
    return {".tag": "email", "email": value} if "@" in value else _by_id(value)


def _group_selector(group_id: str) -> dict[str, str]:
    return {".tag": "group_id", "group_id": group_id}


def _tag(union: Any) -> str | None:
    """A union's tag, whether written ``{".tag": t}`` or, for a void member, as the string ``t``."""
    if isinstance(union, dict):
        return union.get(".tag")
    return union if isinstance(union, str) else None


def error_tag(exc: ProvisioningError) -> str | None:
    """The error union's tag of a Dropbox 409 (``error[".tag"]``, else the head of ``error_summary``)."""
    body = exc.details
    if not isinstance(body, dict):
        return None
    tag = _tag(body.get("error"))
    if tag:
        return tag
    summary = str(body.get("error_summary") or "")
    return summary.split("/", 1)[0] or None


def error_text(body: Any) -> str:
    """The service's words: ``error_summary`` first (plus ``user_message`` when there is one)."""
    if isinstance(body, dict) and body.get("error_summary"):
        text = str(body["error_summary"]).strip()
        message = body.get("user_message")
        if isinstance(message, dict):
            message = message.get("text")
        return f"{text} ({message})" if message else text
    return default_error_text(body)


def json_retry_after(response: Any, *args: Any, **kwargs: Any) -> Any:
    """A ``requests`` response hook: a JSON 429's ``error.retry_after`` becomes the ``Retry-After``
    header HttpClient honours (the SDK prefers the JSON value when the answer is JSON)."""
    if response.status_code != 429 or "json" not in response.headers.get("Content-Type", ""):
        return response
    try:
        body = response.json()
    except ValueError:
        return response
    if isinstance(body, dict):
        error = body.get("error")
        value = error.get("retry_after") if isinstance(error, dict) else None
        value = body.get("retry_after") if value is None else value
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
            response.headers["Retry-After"] = str(value)
    return response


class ExpiredTokenOnly:
    """Renew the token only on a 401 whose AuthError tag is ``expired_access_token``.

    HttpClient's ``on_unauthorized`` does not see the answer, so a response hook (``remember``)
    notes each thread's last 401 tag and ``on_unauthorized`` asks the token source only for that
    one (an invalid token or a missing scope is not cured by a new token: it is reported).
    """

    def __init__(self, source: TokenSource):
        self.source = source
        self._last = threading.local()

    def remember(self, response: Any, *args: Any, **kwargs: Any) -> Any:
        if response.status_code == 401:
            try:
                body = response.json()
            except ValueError:
                body = None
            tag = _tag(body.get("error")) if isinstance(body, dict) else None
            if tag is None and isinstance(body, dict) and body.get("error_summary"):
                tag = str(body["error_summary"]).split("/", 1)[0]
            self._last.tag = tag
        return response

    def on_unauthorized(self) -> bool:
        tag, self._last.tag = getattr(self._last, "tag", None), None
        return tag == "expired_access_token" and self.source.on_unauthorized()


# -- member bodies -------------------------------------------------------------------------------
def _invalid(who: str, field: str, why: str) -> ProvisioningError:
    return ProvisioningError(f"user {who}: {field}: {why}")


def _check_value(who: str, path: str, value: Any) -> Any:
    """The value Dropbox accepts for ``path``, or a refusal naming the user and the field."""
    if path in MARKER_FIELDS:
        raise _invalid(who, path, "carries the ownership marker (member_external_id): it is not mapped")
    if path not in USER_FIELDS:
        raise _invalid(who, path, f"not a Dropbox member field this connector writes ({', '.join(USER_FIELDS)})")
    if path == "is_directory_restricted":
        if not isinstance(value, bool):
            raise _invalid(who, path, f"must be true or false, got {value!r}")
        return value
    if not isinstance(value, str):
        raise _invalid(who, path, f"must be a string, got {type(value).__name__}")
    if path == "email":
        if len(value) > MAX_EMAIL or not _EMAIL.match(value):
            raise _invalid(who, path, f"{value[:80]!r} is not an e-mail address Dropbox accepts")
    elif path in ("given_name", "surname"):
        if len(value) > MAX_NAME_PART:
            raise _invalid(
                who, path, f"{len(value)} characters, Dropbox allows at most {MAX_NAME_PART}: {value[:60]!r}"
            )
        bad = sorted({c for c in value if c in _NAME_FORBIDDEN})
        if bad:
            raise _invalid(who, path, f"contains {' '.join(bad)}, which Dropbox refuses in names ({_NAME_FORBIDDEN})")
    return value


def _check_marker(who: str, link: str | None) -> None:
    if link is not None and len(link) > MAX_EXTERNAL_ID:
        raise _invalid(
            who, "member_external_id", f"the marker has {len(link)} characters, Dropbox allows {MAX_EXTERNAL_ID}"
        )


def add_arg(attrs: Mapping[str, Any], link: str | None, send_welcome_email: bool) -> dict[str, Any]:
    """One ``MemberAddV2Arg``, validated before anything is sent."""
    who = str(attrs.get("email") or "?")
    arg: dict[str, Any] = {}
    for path, value in attrs.items():
        if is_empty(value):
            if path == "email":
                raise _invalid(who, path, "required to add a member")
            continue  # an optional name part left out
        arg[USER_FIELDS[path][1] if path in USER_FIELDS else path] = _check_value(who, path, value)
    if "member_email" not in arg:
        raise _invalid(who, "email", "required to add a member")
    _check_marker(who, link)
    if link:
        arg["member_external_id"] = link
    arg["send_welcome_email"] = bool(send_welcome_email)
    return arg


def profile_changes(who: str, changes: Mapping[str, Any], link: str | None) -> dict[str, Any]:
    """The ``new_*`` fields of ``members/set_profile_v2`` for ``changes``, validated."""
    fields: dict[str, Any] = {}
    for path, value in changes.items():
        if is_empty(value):
            if path in MARKER_FIELDS or path not in USER_FIELDS:
                _check_value(who, path, value)  # refuses the path itself first
            raise _invalid(who, path, "cannot be emptied in Dropbox (set_profile refuses an empty value)")
        fields[USER_FIELDS[path][2] if path in USER_FIELDS else path] = _check_value(who, path, value)
    _check_marker(who, link)
    if link:
        fields["new_external_id"] = link
    return fields


# -- the connector -------------------------------------------------------------------------------
class DropboxConnector(Connector):
    """One Dropbox team, through an ``HttpClient`` whose auth hook carries the team token."""

    def __init__(
        self,
        client: HttpClient,
        *,
        page_size: int = MAX_PAGE,
        member_chunk: int = 100,
        wipe_data: bool = False,
        keep_account: bool = False,
        retain_team_shares: bool = False,
        transfer_dest_id: str | None = None,
        transfer_admin_id: str | None = None,
        permanently_delete_files: bool = False,
        send_welcome_email: bool = True,
        disable_invited: str = "revoke",
    ):
        check_remove_options(
            wipe_data, keep_account, retain_team_shares, transfer_dest_id, transfer_admin_id, permanently_delete_files
        )
        if disable_invited not in DISABLE_INVITED:
            raise ProvisioningError(f"disable_invited: one of {', '.join(DISABLE_INVITED)}, got {disable_invited!r}")
        self.client = client
        self.page_size = max(1, min(int(page_size), MAX_PAGE))
        self.member_chunk = max(1, int(member_chunk))
        self.wipe_data = bool(wipe_data)
        self.keep_account = bool(keep_account)
        self.retain_team_shares = bool(retain_team_shares)
        self.transfer_dest_id = transfer_dest_id or None
        self.transfer_admin_id = transfer_admin_id or None
        self.permanently_delete_files = bool(permanently_delete_files)
        self.send_welcome_email = bool(send_welcome_email)
        self.disable_invited = disable_invited

    @property
    def capabilities(self) -> Capabilities:  # type: ignore[override]
        return Capabilities(
            user_link="target",
            group_link="target",
            member_chunk=self.member_chunk,
            create_batch=ADD_BATCH,
            create_disabled=False,
        )

    # -- the wire ---------------------------------------------------------------------------
    def call(self, route: str, arg: Any, read: bool = False, resend: bool = False) -> Any:
        """POST one route with its JSON argument; ``read`` routes, ``SETTING_ROUTES`` and a ``resend``
        may be resent by the HTTP layer after a 5xx, a reset or a timeout."""
        idempotent = read or resend or route in SETTING_ROUTES
        return self.client.request("POST", f"/{route}", json=arg, expected=(200,), idempotent=idempotent)

    def call_once(self, route: str, arg: Any, done: Sequence[str] = ()) -> Any:
        """A write that Dropbox refuses when it is done already (``done``: its error tags).

        Sent once; after an ambiguous failure (the answer lost: the write may have landed) it is
        sent again, with the HTTP layer's retries, and a ``done`` error then means the first one
        went through: None is returned. A ``done`` error to the first sending is raised: then it is
        the service's refusal (suspending an invited member is ``suspend_inactive_user`` too).
        """
        try:
            return self.call(route, arg)
        except AmbiguousRequestError:
            pass
        try:
            return self.call(route, arg, resend=True)
        except ProvisioningError as exc:
            if error_tag(exc) in done:
                return None
            raise

    def _paged(self, route: str, arg: dict[str, Any], items: str) -> Iterator[dict[str, Any]]:
        """Cursor paging: ``route`` then ``<route>/continue`` (``list_v2`` -> ``list/continue_v2``)."""
        following = route[:-3] + "/continue_v2" if route.endswith("_v2") else route + "/continue"

        def fetch(cursor: str | None) -> tuple[list[Any], str | None]:
            page = self.call(following, {"cursor": cursor}, read=True) if cursor else self.call(route, arg, read=True)
            if not isinstance(page, dict) or not isinstance(page.get(items), list):
                raise ProvisioningError(f"POST /{route}: the answer has no {items} list")
            return page[items], (page.get("cursor") or None) if page.get("has_more") else None

        return paginate(fetch)

    def _job(self, route: str, launched: Any, what: str) -> Any:
        """Follow a launched async job: the ``complete`` value, once it is there.

        ``launched`` is a ``LaunchResultBase`` answer (``async_job_id`` or ``complete``); ``route``
        polls it (``_kit.follow_job``). ``in_progress`` waits (growing; at most JOB_MAX_POLLS polls);
        ``failed`` raises with Dropbox's text. A job still running at the end is ambiguous: it may
        yet complete, so the caller looks before acting again.
        """
        job: dict[str, Any] = {"id": None}

        def classify(answer: Any) -> str:
            tag = _tag(answer)
            if tag == "complete":
                return _kit.JOB_DONE
            if tag == "failed":
                raise ProvisioningError(f"{what}: the job failed: {answer.get('failed')}")
            if tag == "async_job_id":
                job["id"] = answer["async_job_id"]
                return _kit.JOB_POLL
            if tag == "in_progress":
                return _kit.JOB_RUNNING
            raise ProvisioningError(f"{what}: unexpected job answer {str(tag)[:80]!r}")

        done = _kit.follow_job(
            lambda: self.call(route, {"async_job_id": job["id"]}, read=True),
            classify,
            what=lambda: f"{what}: job {job['id']}",
            sleep=self.client.sleep,
            max_polls=JOB_MAX_POLLS,
            answer=launched,
        )
        return done.get("complete") if isinstance(done, dict) else None

    # -- users: reading -----------------------------------------------------------------------
    def _members(self) -> Iterator[dict[str, Any]]:
        """Every member, removed ones included (``TeamMemberInfoV2``)."""
        arg = {"limit": self.page_size, "include_removed": True}
        return self._paged("team/members/list_v2", arg, "members")

    @staticmethod
    def to_user(member: dict[str, Any]) -> TargetUser:
        member = {k: v for k, v in member.items() if k != ".tag"}  # a union member written flat
        profile = member.get("profile") or {}
        return TargetUser(
            id=str(profile.get("team_member_id")),
            key=str(profile.get("email") or ""),
            enabled=_tag(profile.get("status")) != SUSPENDED,
            link=profile.get("external_id") or None,
            resource=member,
        )

    @staticmethod
    def status(user: TargetUser) -> str | None:
        return _tag((user.resource.get("profile") or {}).get("status"))

    def list_users(self) -> Iterator[TargetUser]:
        """Active, invited and suspended members. Removed ones are listed by Dropbox (we ask for
        them) but are no accounts: they are never linked, updated or deprovisioned; a create that
        meets one recovers it (see create_users)."""
        for member in self._members():
            user = self.to_user(member)
            if self.status(user) != REMOVED:
                yield user

    def _member_any_state(self, email: str) -> TargetUser | None:
        """The member with this address in any state, removed included, from the listing."""
        wanted = email.lower()
        found = None
        for member in self._members():
            user = self.to_user(member)
            # A re-added address may be listed twice (the former member too): the live one wins.
            if user.key.lower() == wanted and (found is None or self.status(found) == REMOVED):
                found = user
        return found

    def find_user(self, key: str) -> TargetUser | None:
        """The member with this address (read from the listing); a removed one is no account."""
        wanted = key.lower()
        return next((u for u in self.list_users() if u.key.lower() == wanted), None)

    def get_user(self, user_id: str) -> TargetUser | None:
        return next((u for u in self.list_users() if u.id == user_id), None)

    def read_path(self, resource: dict[str, Any], path: str) -> Any:
        field = USER_FIELDS.get(path)
        return super().read_path(resource, field[0] if field else path)

    # -- users: creating ----------------------------------------------------------------------
    def create_user(self, attrs: dict[str, Any], link: str | None, enabled: bool) -> TargetUser:
        [result] = self.create_users([(attrs, link, enabled)])
        if isinstance(result, Exception):
            raise result  # pylint: disable=raising-bad-type  # an Exception, by the isinstance above
        return result

    def create_users(self, items: list[tuple[dict[str, Any], str | None, bool]]) -> list[TargetUser | Exception]:
        """members/add_v2, 20 at a time; every member checked first, every result tag handled."""
        results: list[TargetUser | Exception | None] = [None] * len(items)
        valid: list[tuple[int, dict[str, Any], dict[str, Any], str | None]] = []
        for index, (attrs, link, enabled) in enumerate(items):
            try:
                arg = add_arg(attrs, link, self.send_welcome_email)
                if not enabled:
                    raise _invalid(
                        arg["member_email"],
                        "enabled",
                        "Dropbox adds a member as invited and cannot suspend an invited member, "
                        "so a disabled user is not created (it is when enabled in the directory)",
                    )
                valid.append((index, arg, attrs, link))
            except ProvisioningError as exc:
                results[index] = exc
        created = _kit.create_in_batches(
            valid,
            ADD_BATCH,
            self._add_batch,
            lambda item: _raise_if_error(self._add_batch([item])[0]),
            lambda item: self.find_user(item[1]["member_email"]),
        )
        for (index, *_rest), result in zip(valid, created):  # noqa: B905 - one result per item (the kit)
            results[index] = result
        return results  # type: ignore[return-value] - every slot is filled

    def _add_batch(
        self, batch: Sequence[tuple[int, dict[str, Any], dict[str, Any], str | None]], again: bool = False
    ) -> list[Any]:
        """One members/add_v2 call (followed to its job's end): a result per member, in order.
        ``again``: the members were added once already and answered user_already_on_team."""
        launched = self.call("team/members/add_v2", {"new_members": [arg for _i, arg, _a, _l in batch]})
        answers = self._job("team/members/add/job_status/get_v2", launched, "members/add_v2") or []
        by_email: dict[str, Any] = {}
        for answer in answers:
            tag = _tag(answer)
            email = (answer.get("profile") or {}).get("email") if tag == "success" else answer.get(tag)
            if isinstance(email, str):
                by_email.setdefault(email.lower(), answer)
        results: list[Any] = []
        for _index, arg, attrs, link in batch:
            answer = by_email.get(arg["member_email"].lower())
            results.append(None if answer is None else self._add_result(answer, arg, attrs, link, again))
        return results

    def _add_result(
        self, answer: dict[str, Any], arg: dict[str, Any], attrs: dict[str, Any], link: str | None, again: bool
    ) -> Any:
        email = arg["member_email"]
        tag = _tag(answer)
        if tag == "success":
            return self.to_user(answer)
        if tag == "user_already_on_team" and again:
            return ProvisioningError(
                f"user {email}: members/add_v2: user_already_on_team again, although its only member is removed "
                "and not recoverable: left for an administrator to look at"
            )
        try:
            if tag == "user_already_on_team":
                return self._already_on_team(email, arg, attrs, link)
        except ProvisioningError as exc:
            return exc
        why = ADD_RESULT_TEXT.get(str(tag), "Dropbox refused to add the member")
        return ProvisioningError(f"user {email}: members/add_v2: {tag}: {why}", 409, answer)

    def _already_on_team(self, email: str, arg: dict[str, Any], attrs: dict[str, Any], link: str | None) -> TargetUser:
        """``user_already_on_team`` is a member that is active, suspended, invited, or removed and
        still recoverable: look at which one it is."""
        member = self._member_any_state(email)
        if member is None:
            raise ProvisioningError(
                f"user {email}: members/add_v2: user_already_on_team, but no member with this address is listed"
            )
        if member.link and link and member.link != link:
            raise ProvisioningError(
                f"user {email}: already on the team with another marker ({member.link}): not ours, so it is not taken over"
            )
        if self.status(member) == REMOVED:
            removed = (member.resource.get("profile") or {}).get("status") or {}
            if removed.get("is_recoverable"):
                self.call("team/members/recover", {"user": _by_id(member.id)})
                # Read again: the state recover leaves (active, or suspended as it was) decides
                # whether the engine unsuspends it; the profile is re-applied below.
                member = self.get_user(member.id) or member
            else:
                # Removed past the 7-day recovery window (or disconnected): the row stays listed as
                # a former member but no longer holds the address, so Dropbox takes a new
                # members/add for it, which makes a new member (a new team_member_id). Sent alone,
                # once: a second user_already_on_team is reported, not looped on.
                answer = self._add_batch([(0, arg, attrs, link)], again=True)[0]
                if isinstance(answer, Exception) or answer is None:
                    raise answer or ProvisioningError(f"user {email}: members/add_v2 answered nothing for it")
                return answer
        # Linked (active, suspended, invited or just recovered): brought to the mapped values and
        # marked ours; the engine then settles its suspension.
        changes = {p: v for p, v in attrs.items() if not _same(v, self.read_path(member.resource, p), p)}
        self.update_user(member, changes, link=None if member.link == link else link)
        return member

    # -- users: updating ------------------------------------------------------------------------
    def update_user(self, user: TargetUser, changes: dict[str, Any], link: str | None = None) -> None:
        """members/set_profile_v2 by team_member_id with the changed fields only (never empty)."""
        fields = profile_changes(user.key, changes, link)
        if not fields:
            return
        answer = self.call("team/members/set_profile_v2", {"user": _by_id(user.id), **fields})
        info = (answer or {}).get("member_info") if isinstance(answer, dict) else None
        if isinstance(info, dict) and info.get("profile"):
            user.resource = info
            user.key = str(info["profile"].get("email") or user.key)
        if link:
            user.link = link

    def set_user_enabled(self, user: TargetUser, enabled: bool) -> None:
        if enabled:
            try:
                self.call_once("team/members/unsuspend", {"user": _by_id(user.id)})
            except ProvisioningError as exc:
                if error_tag(exc) != "unsuspend_non_suspended_member":
                    raise
            user.enabled = True
            return
        if self.status(user) == INVITED:
            if self.disable_invited == "fail":
                raise ProvisioningError(
                    f"user {user.key}: invited and not joined yet, so Dropbox cannot suspend it "
                    "(suspend_inactive_user); disable_invited: revoke revokes the invitation instead"
                )
            self._remove(user, self._revoke_arg(user))
            user.enabled = False
            return
        arg = {"user": _by_id(user.id), "wipe_data": self.wipe_data}
        self.call_once("team/members/suspend", arg, done=("suspend_inactive_user",))
        user.enabled = False

    def delete_user(self, user: TargetUser) -> None:
        arg = self._revoke_arg(user) if self.status(user) == INVITED else self._remove_arg(user)
        self._remove(user, arg)

    def _remove_arg(self, user: TargetUser) -> dict[str, Any]:
        arg: dict[str, Any] = {"user": _by_id(user.id), "wipe_data": self.wipe_data}
        if self.keep_account:
            arg["keep_account"] = True
        if self.retain_team_shares:
            arg["retain_team_shares"] = True
        if self.transfer_dest_id:
            arg.update(
                transfer_dest_id=user_selector(self.transfer_dest_id),
                transfer_admin_id=user_selector(self.transfer_admin_id or ""),
            )
        if self.permanently_delete_files:
            arg["permanently_delete_files"] = True
        return arg

    def _revoke_arg(self, user: TargetUser) -> dict[str, Any]:
        """Removing an invited member revokes its invitation: there is no account to keep
        (``cannot_keep_invited_user_account``) and no content to transfer, so only wipe_data goes."""
        return {"user": _by_id(user.id), "wipe_data": self.wipe_data}

    def _remove(self, user: TargetUser, arg: dict[str, Any]) -> None:
        try:
            launched = self.call("team/members/remove", arg)
        except ProvisioningError as exc:
            if error_tag(exc) == "user_not_in_team":
                return  # gone already (a retried remove whose first attempt went through): the goal holds
            raise
        self._job("team/members/remove/job_status/get", launched, f"members/remove of {user.key}")

    # -- groups ----------------------------------------------------------------------------------
    @staticmethod
    def to_group(summary: dict[str, Any]) -> TargetGroup:
        return TargetGroup(
            id=str(summary.get("group_id")),
            name=str(summary.get("group_name") or ""),
            link=summary.get("group_external_id") or None,
            resource=summary,
        )

    def list_groups(self) -> Iterator[TargetGroup]:
        """Every group but the system-managed ones (Everyone at ..., which no one manages)."""
        for summary in self._paged("team/groups/list", {"limit": self.page_size}, "groups"):
            if _tag(summary.get("group_management_type")) != SYSTEM_MANAGED:
                yield self.to_group(summary)

    def group_members(self, group: TargetGroup) -> set[str]:
        arg = {"group": _group_selector(group.id), "limit": self.page_size}
        members = {
            str((item.get("profile") or {}).get("team_member_id"))
            for item in self._paged("team/groups/members/list", arg, "members")
        }
        group.members = members
        return set(members)

    def create_group(self, name: str, link: str | None) -> TargetGroup:
        arg: dict[str, Any] = {"group_name": name, "group_management_type": {".tag": "company_managed"}}
        if link:
            arg["group_external_id"] = link

        def lookup() -> TargetGroup | None:
            found = [g for g in self.list_groups() if (link and g.link == link) or g.name.lower() == name.lower()]
            return next((g for g in found if g.link == link), found[0] if found else None)

        def post() -> TargetGroup:
            group = self.to_group(self.call("team/groups/create", arg) or {})
            group.members = set()  # a new group has no members: nothing to read before adding
            return group

        return _kit.create_once(
            post, lookup, f"the group {name}", ours=lambda g: g.link == link, conflict_statuses=(409,)
        )

    def update_group(self, group: TargetGroup, name: str | None = None, link: str | None = None) -> None:
        arg: dict[str, Any] = {"group": _group_selector(group.id), "return_members": False}
        if name is not None and name != group.name:
            arg["new_group_name"] = name
        if link is not None and link != group.link:
            arg["new_group_external_id"] = link
        if len(arg) == 2:
            return
        self.call("team/groups/update", arg)
        group.name = name if name is not None else group.name
        group.link = link if link is not None else group.link

    def delete_group(self, group: TargetGroup) -> None:
        try:
            launched = self.call_once("team/groups/delete", _group_selector(group.id))
        except ProvisioningError as exc:
            if error_tag(exc) in ("group_already_deleted", "group_not_found"):
                return  # gone already: what a delete wants
            raise
        self._job("team/groups/job_status/get", launched, f"groups/delete of {group.name}")

    def change_members(self, group: TargetGroup, add: list[str], remove: list[str]) -> MemberFailures:
        """Only the difference is sent (Dropbox fails the whole call on one member already in, or
        not in, the group); members Dropbox names as refused are reported, the others resent."""
        current = group.members if group.members is not None else self.group_members(group)
        adding = [u for u in dict.fromkeys(add) if u not in current]
        removing = [u for u in dict.fromkeys(remove) if u in current and u not in set(add)]
        failures: MemberFailures = {}
        selector = _group_selector(group.id)
        if adding:

            def send_add(ids: list[str]) -> None:
                members = [{"user": _by_id(u), "access_type": {".tag": "member"}} for u in ids]
                arg = {"group": selector, "members": members, "return_members": False}
                self.call_once("team/groups/members/add", arg, done=("duplicate_user",))

            current.update(_each_member(send_add, adding, failures))
        if removing:

            def send_remove(ids: list[str]) -> None:
                users = [_by_id(u) for u in ids]
                arg = {"group": selector, "users": users, "return_members": False}
                self.call_once("team/groups/members/remove", arg, done=("member_not_in_group",))

            current.difference_update(_each_member(send_remove, removing, failures))
        group.members = current
        return failures


def _each_member(send: Callable[[list[str]], None], ids: list[str], failures: MemberFailures) -> list[str]:
    """``send(ids)``; when Dropbox refuses naming members (members_not_in_team, users_not_found,
    ...), those are failures and the rest is sent again. Returns the ids that were applied; any
    other refusal says nothing of single members and is raised.

    The names are read from the error body when they can be (the body is masked for secrets, which
    may hide an id); otherwise each member is sent alone, so only the refused ones fail.
    """
    pending = list(ids)
    while pending:
        try:
            send(pending)
            return pending
        except ProvisioningError as exc:
            tag = error_tag(exc)
            if tag not in _MEMBER_LIST_ERRORS:
                raise
            error = exc.details.get("error") if isinstance(exc.details, dict) else None
            named = error.get(tag) if isinstance(error, dict) else None
            refused = [u for u in pending if isinstance(named, list) and u in named]
            if not refused:
                return _one_by_one(send, pending, failures)
            for user_id in refused:
                failures[user_id] = f"{exc.message} ({tag})"
            pending = [u for u in pending if u not in refused]
    return pending


def _one_by_one(send: Callable[[list[str]], None], ids: list[str], failures: MemberFailures) -> list[str]:
    applied = []
    for user_id in ids:
        try:
            send([user_id])
        except ProvisioningError as exc:
            if error_tag(exc) not in _MEMBER_LIST_ERRORS:
                raise
            failures[user_id] = exc.message
        else:
            applied.append(user_id)
    return applied


def _raise_if_error(result: Any) -> TargetUser:
    if isinstance(result, Exception):
        raise result
    if result is None:
        raise ProvisioningError("members/add_v2 answered no result for this member")
    return result


def _same(wanted: Any, current: Any, path: str) -> bool:
    if path == USER_KEY and isinstance(wanted, str) and isinstance(current, str):
        return wanted.lower() == current.lower()
    return values_equal(wanted, current)


def check_remove_options(
    wipe_data: bool,
    keep_account: bool,
    retain_team_shares: bool,
    transfer_dest_id: str | None,
    transfer_admin_id: str | None,
    permanently_delete_files: bool,
) -> None:
    """The members/remove rules (team.stone's MembersRemoveArg and its errors), checked before any call."""
    refusals = [
        (keep_account and wipe_data, "keep_account needs wipe_data: false (cannot_keep_account_and_delete_data)"),
        (
            retain_team_shares and not keep_account,
            "retain_team_shares needs keep_account: true (cannot_retain_shares_when_no_account_kept)",
        ),
        (
            retain_team_shares and wipe_data,
            "retain_team_shares needs wipe_data: false (cannot_retain_shares_when_data_wiped)",
        ),
        (bool(transfer_dest_id) and not transfer_admin_id, "transfer_dest_id needs transfer_admin_id"),
        (bool(transfer_admin_id) and not transfer_dest_id, "transfer_admin_id is used only with transfer_dest_id"),
        (
            keep_account and bool(transfer_dest_id),
            "keep_account and transfer_dest_id are mutually exclusive (cannot_keep_account_and_transfer)",
        ),
        (
            keep_account and permanently_delete_files,
            "keep_account and permanently_delete_files are mutually exclusive (cannot_keep_account_and_permanently_delete)",
        ),
        (
            permanently_delete_files and bool(transfer_dest_id),
            "permanently_delete_files and transfer_dest_id are mutually exclusive (cannot_permanently_delete_and_transfer)",
        ),
    ]
    for refused, why in refusals:
        if refused:
            raise ProvisioningError(why)


# -- what the modules need -----------------------------------------------------------------------
# Works for AD and OpenLDAP. A name part over 50 characters or with / : ? * < > " | is refused for
# that user, never cut.
DEFAULT_USER_MAPPING = {
    "email": "first(attributes.mail)",
    "given_name": "first(attributes.givenName)",
    "surname": "first(attributes.sn)",
}

_SECRET_OPTIONS = ("app_secret", "refresh_token", "access_token")


def connection_argument_spec() -> dict[str, Any]:
    """The Dropbox connection options: the kit's (url, token_url, TLS, timeout, proxy), the team
    app's authentication (refresh token + app key [+ secret], or an access token) and what
    deprovisioning does."""
    from ansible.module_utils.basic import env_fallback

    def env(name: str, **option: Any) -> dict[str, Any]:
        return dict({"type": "str", "fallback": (env_fallback, [name])}, **option)

    spec = _kit.connection_argument_spec("DROPBOX", url_default=API_URL, token_url=TOKEN_URL)
    spec.update(
        {
            "app_key": env("DROPBOX_APP_KEY", no_log=False),  # the OAuth client id, not a secret
            "app_secret": env("DROPBOX_APP_SECRET", no_log=True),
            "refresh_token": env("DROPBOX_REFRESH_TOKEN", no_log=True),
            "access_token": env("DROPBOX_ACCESS_TOKEN", no_log=True),
            "wipe_data": {"type": "bool", "default": False},
            "keep_account": {"type": "bool", "default": False},
            "retain_team_shares": {"type": "bool", "default": False},
            "transfer_dest_id": {"type": "str"},
            "transfer_admin_id": {"type": "str"},
            "permanently_delete_files": {"type": "bool", "default": False},
            "send_welcome_email": {"type": "bool", "default": True},
            "disable_invited": {"type": "str", "default": "revoke", "choices": list(DISABLE_INVITED)},
        }
    )
    return spec


def _auth_method(params: Mapping[str, Any]) -> str:
    """``access_token`` or ``refresh_token``: exactly one, or an error naming the options."""
    if params.get("access_token"):
        others = [n for n in ("refresh_token", "app_key", "app_secret") if params.get(n)]
        if others:
            raise ProvisioningError(
                f"access_token and {others[0]} are mutually exclusive: give one authentication method "
                "(check DROPBOX_ACCESS_TOKEN, DROPBOX_REFRESH_TOKEN and DROPBOX_APP_KEY in the environment)"
            )
        return "access_token"
    if params.get("refresh_token") or params.get("app_key") or params.get("app_secret"):
        _kit.require(params, "refresh_token", "app_key", why="for the refresh-token grant")
        return "refresh_token"
    raise ProvisioningError(
        "authentication: give refresh_token + app_key (+ app_secret, unless the app uses PKCE), or access_token"
    )


def connector_from_params(params: Mapping[str, Any], **client_options: Any) -> DropboxConnector:
    """A connector from module parameters; errors name the option. ``client_options`` go to the
    HttpClients (tests pass ``sleep``)."""
    for option in ("timeout", "member_chunk", "page_size"):
        if params.get(option) is not None and params[option] < 1:
            raise ProvisioningError(f"{option}: must be at least 1, got {params[option]}")
    if (params.get("page_size") or 0) > MAX_PAGE:
        raise ProvisioningError(f"page_size: at most {MAX_PAGE}, got {params['page_size']}")
    settings = {
        "wipe_data": bool(params.get("wipe_data")),
        "keep_account": bool(params.get("keep_account")),
        "retain_team_shares": bool(params.get("retain_team_shares")),
        "transfer_dest_id": params.get("transfer_dest_id") or None,
        "transfer_admin_id": params.get("transfer_admin_id") or None,
        "permanently_delete_files": bool(params.get("permanently_delete_files")),
    }
    check_remove_options(**settings)
    method = _auth_method(params)
    secrets_ = [params.get(name) for name in _SECRET_OPTIONS if params.get(name)]
    hooks: list[Callable[..., Any]] = [json_retry_after]
    if method == "access_token":
        client = _kit.http_client(
            params, auth=bearer_auth(params["access_token"]), secrets=secrets_, error_text=error_text, **client_options
        )
    else:
        token_url = params.get("token_url") or TOKEN_URL
        endpoint = _kit.http_client(params, base_url=token_url, secrets=secrets_, **client_options)
        grant = refresh_token(params["refresh_token"], params["app_key"], params.get("app_secret") or None)
        source = TokenSource(
            endpoint, token_url, grant, secrets=(params["refresh_token"], params.get("app_secret")), margin=TOKEN_MARGIN
        )
        renew = ExpiredTokenOnly(source)
        hooks.append(renew.remember)
        client = _kit.http_client(
            params,
            auth=source.auth_hook,
            on_unauthorized=renew.on_unauthorized,
            secrets=secrets_,
            error_text=error_text,
            **client_options,
        )
        client.token_source = source  # type: ignore[attr-defined] - for tests and benchmarks
    client.session.hooks["response"] = list(client.session.hooks.get("response") or []) + hooks
    return DropboxConnector(
        client,
        page_size=params.get("page_size") or MAX_PAGE,
        member_chunk=params.get("member_chunk") or 100,
        send_welcome_email=params.get("send_welcome_email") is not False,
        disable_invited=params.get("disable_invited") or "revoke",
        **settings,
    )


TARGET = _kit.Target(
    name="dropbox",
    build=connector_from_params,
    connection_spec=connection_argument_spec,
    user_key=USER_KEY,
    default_user_mapping=DEFAULT_USER_MAPPING,
)
