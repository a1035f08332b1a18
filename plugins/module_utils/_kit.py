# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The connector kit: what every target's connector needs besides its own endpoints.

Private to this collection: the names here may change without notice.

* ``Target``: one description per target (its name, how module params become a connector, its
  connection options, its user key and default mapping, the extra options of its sync module).
  Modules hand it to the runner; nothing else turns params into a connector.
* ``connection_argument_spec`` / ``http_client``: the connection options every target shares
  (API URL, token URL where separate, TLS, timeout, proxy; documented by the
  ``idsync.provisioning.connection`` doc fragment) and the HttpClient built from them.
* ``create_once``: a create that never duplicates. After an ambiguous failure (the service may
  have acted) or a conflict, it looks the object up by key and takes it when it is ours, and
  resends only when the object is surely absent.
* ``create_in_batches``: batch creates (SCIM /Bulk, Dropbox members/add_v2) with the fallbacks:
  a batch refused as a whole is sent one by one; an ambiguous batch is looked up item by item.
* ``absent_on_404``: a read where 404 means "no such object", and nothing else does.
* ``follow_job``: an asynchronous job (Dropbox's members/add and remove, PingID's report) polled
  with a growing wait, bounded, until it is done.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ansible_collections.idsync.provisioning.plugins.module_utils._connector import Connector
from ansible_collections.idsync.provisioning.plugins.module_utils._http import AmbiguousRequestError, HttpClient
from ansible_collections.idsync.provisioning.plugins.module_utils._model import ProvisioningError

T = TypeVar("T")
Item = TypeVar("Item")


# -- the target description ------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    """Everything the runners need to know of one target."""

    name: str  # "scim", "box", ...: the role's sync_target and the state file's target
    build: Callable[[Mapping[str, Any]], Connector]  # module params -> connector; errors name the option
    connection_spec: Callable[[], dict[str, Any]]  # its connection options (argument spec)
    user_key: str  # the target attribute that is the user's key (userName, login, email)
    default_user_mapping: Mapping[str, str] = field(default_factory=dict)
    # Options its ``<target>_sync`` module takes besides the shared sync options (argument spec),
    # for example PingID's verification options; the per-object modules do not take them.
    sync_options: Mapping[str, Any] = field(default_factory=dict)


# -- connection options ----------------------------------------------------------------------
def connection_argument_spec(env_prefix: str, url_default: str | None = None, token_url: str | None = None) -> dict:
    """The shared connection options; ``token_url`` (its default) adds the token endpoint option.

    Env fallbacks are ``<PREFIX>_URL``, ``<PREFIX>_TOKEN_URL``, ``<PREFIX>_CA_PATH``.
    """
    from ansible.module_utils.basic import env_fallback

    spec: dict[str, Any] = {
        "url": {"type": "str", "fallback": (env_fallback, [f"{env_prefix}_URL"])},
        "validate_certs": {"type": "bool", "default": True},
        "ca_path": {"type": "path", "fallback": (env_fallback, [f"{env_prefix}_CA_PATH"])},
        "timeout": {"type": "int", "default": 60},
        "proxy_url": {"type": "str"},
    }
    if url_default:
        spec["url"]["default"] = url_default
    if token_url:
        spec["token_url"] = {
            "type": "str",
            "no_log": False,  # a URL, not a secret (its name only contains "token")
            "default": token_url,
            "fallback": (env_fallback, [f"{env_prefix}_TOKEN_URL"]),
        }
    return spec


def http_client(params: Mapping[str, Any], base_url: str | None = None, **options: Any) -> HttpClient:
    """An HttpClient with the shared connection options of ``params`` (``url`` unless ``base_url``)."""
    url = base_url or params.get("url")
    if not url:
        raise ProvisioningError("url: the service's base URL is required")
    timeout = params.get("timeout") or 60
    if timeout < 1:
        raise ProvisioningError(f"timeout: must be at least 1, got {timeout}")
    return HttpClient(
        url,
        timeout=(min(10.0, float(timeout)), float(timeout)),
        validate_certs=params.get("validate_certs", True),
        ca_path=params.get("ca_path"),
        proxy_url=params.get("proxy_url"),
        **options,
    )


def require(params: Mapping[str, Any], *names: str, why: str = "") -> None:
    """Fail naming the first missing option (``why`` says what needs it)."""
    for name in names:
        if params.get(name) in (None, ""):
            raise ProvisioningError(f"{name}: required{(' ' + why) if why else ''}")


# -- reads -------------------------------------------------------------------------------------
def absent_on_404(read: Callable[[], T]) -> T | None:
    """``read()``, or None when the service answers 404. Every other failure is raised: a failed
    read is never taken as "absent"."""
    try:
        return read()
    except ProvisioningError as exc:
        if exc.status == 404:
            return None
        raise


# -- creates that never duplicate ------------------------------------------------------------------
def create_once(
    create: Callable[[], T],
    lookup: Callable[[], T | None],
    name: str,
    ours: Callable[[T], bool] | None = None,
    conflict_statuses: Sequence[int] = (),
    identifiable: bool = True,
    attempts: int = 3,
) -> T:
    """Create an object so that an ambiguous failure cannot make it twice.

    ``lookup`` finds the object by its key; ``ours`` tells whether an object found is this
    provisioner's (by its marker; None: any object with the key is). A failure that leaves it open
    whether the service acted (``AmbiguousRequestError``: a reset, a timeout, a 5xx or 503 to a
    create), or a conflict status (the key is taken: 409), is followed by the lookup: the object
    found is returned if ours, refused if not; when nothing is found after an ambiguous failure the
    create is sent again, at most ``attempts`` times in all. ``identifiable`` False (no key or
    marker tells ours from others) refuses to resend: the next run links it.
    """
    for attempt in range(max(1, attempts)):
        try:
            return create()
        except AmbiguousRequestError as exc:
            failure: ProvisioningError = exc
            ambiguous = True
        except ProvisioningError as exc:
            if exc.status not in conflict_statuses:
                raise
            failure, ambiguous = exc, False
        if not identifiable:
            raise ProvisioningError(
                f"{failure.message}; {name} cannot be told from others, so it is not created twice:"
                " the next run links it",
                failure.status,
                failure.details,
            )
        try:
            existing = lookup()
        except ProvisioningError as exc:
            raise ProvisioningError(
                f"{failure.message}; and checking whether {name} exists failed: {exc.message}",
                failure.status,
                failure.details,
            ) from None
        if existing is not None:
            if ours is None or ours(existing):
                return existing
            raise ProvisioningError(
                f"{failure.message}; {name} exists now but is not ours (it carries another marker), so it is not"
                " taken over",
                failure.status,
                failure.details,
            )
        if not ambiguous or attempt + 1 >= max(1, attempts):
            raise failure  # a conflict with nothing to find, or out of attempts: the service's own words
    raise AssertionError("unreachable")  # pragma: no cover


def create_in_batches(
    items: Sequence[Item],
    size: int,
    send_batch: Callable[[Sequence[Item]], Sequence[T | Exception | None]],
    create_one: Callable[[Item], T],
    lookup_one: Callable[[Item], T | None],
) -> list[T | Exception]:
    """Create ``items`` ``size`` at a time; one result (object or exception) per item, in order.

    ``send_batch`` returns one entry per item: the object, the item's own error, or None for an
    item the service did not process (it is then created alone). A batch refused as a whole
    (``ProvisioningError``) is created one by one; an ambiguous one (``AmbiguousRequestError``)
    item by item after a lookup, so nothing is made twice.
    """
    results: list[T | Exception] = []
    for start in range(0, len(items), max(1, size)):
        chunk = items[start : start + max(1, size)]
        try:
            answers = list(send_batch(chunk))
            if len(answers) != len(chunk):
                raise ProvisioningError(f"the batch answered {len(answers)} results for {len(chunk)} items")
        except AmbiguousRequestError:
            results.extend(_each(chunk, lambda item: lookup_one(item) or create_one(item)))
            continue
        except ProvisioningError:
            results.extend(_each(chunk, create_one))
            continue
        for item, answer in zip(chunk, answers):  # noqa: B905 - lengths checked; strict= is Python 3.10+
            results.extend(_each([item], create_one) if answer is None else [answer])
    return results


def _each(items: Sequence[Item], create: Callable[[Item], T]) -> list[T | Exception]:
    results: list[T | Exception] = []
    for item in items:
        try:
            results.append(create(item))
        except ProvisioningError as exc:
            results.append(exc)
    return results


# -- asynchronous jobs ---------------------------------------------------------------------------
JOB_FIRST_WAIT, JOB_MAX_WAIT = 0.5, 5.0  # seconds: the first wait between polls, doubled up to this

JOB_DONE, JOB_RUNNING, JOB_POLL = "done", "running", "poll"
_NO_ANSWER: Any = object()


def follow_job(
    poll: Callable[[], T],
    classify: Callable[[T], str],
    *,
    what: str | Callable[[], str],
    sleep: Callable[[float], Any],
    max_polls: int,
    answer: Any = _NO_ANSWER,
    first_wait: float = JOB_FIRST_WAIT,
    max_wait: float = JOB_MAX_WAIT,
) -> T:
    """Poll an asynchronous job until it is done; the answer that says so.

    ``answer`` is an answer already in hand (the launch's, which may carry the outcome at once);
    without one the first poll comes first. ``classify(answer)`` says ``JOB_DONE`` (return it), ``JOB_RUNNING`` (wait,
    ``first_wait`` doubling up to ``max_wait``, then poll) or ``JOB_POLL`` (poll at once: the launch
    only named the job); for a failed job or an answer it does not know it raises, in the
    service's words. A job still running after ``max_polls`` polls raises
    ``AmbiguousRequestError`` ("<what> did not finish after N polls"; ``what`` may be a callable,
    read then): it may yet finish, so a caller that launched a write looks before acting again.
    """
    limit = max(1, int(max_polls))
    wait, polls = first_wait, 0
    if answer is _NO_ANSWER:
        answer, polls = poll(), 1
    while True:
        verdict = classify(answer)
        if verdict == JOB_DONE:
            return answer
        if verdict == JOB_RUNNING:
            if polls >= limit:
                name = what() if callable(what) else what
                raise AmbiguousRequestError(f"{name} did not finish after {polls} polls")
            sleep(wait)
            wait = min(wait * 2, max_wait)
        elif verdict != JOB_POLL:
            raise ValueError(f"follow_job: classify answered {verdict!r}")
        answer, polls = poll(), polls + 1
