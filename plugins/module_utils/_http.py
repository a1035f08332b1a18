# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one HTTP layer of every target connector.

Private to this collection: the names here may change without notice.

``HttpClient`` wraps one ``requests.Session`` per target (connection reuse) and gives the
connectors: a base URL, an authentication hook, timeouts, TLS verification on by default,
retries (429/503 honour ``Retry-After``; other 5xx and connection failures back off
exponentially, but only for idempotent requests), one ``ProvisioningError`` per failure
carrying the service's own words, and a request counter per (method, path template).

``paginate`` turns any "fetch one page" callable into an iterator over all items, whatever
the paging style (SCIM startIndex, Box marker, Dropbox cursor).
"""

from __future__ import annotations

import email.utils
import json as jsonlib
import re
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from datetime import timezone
from typing import Any
from urllib.parse import urlsplit

from ansible_collections.idsync.provisioning.plugins.module_utils._model import REDACTED, ProvisioningError

try:
    import requests
    import requests.auth
except ImportError:  # pragma: no cover - reported by the modules with missing_required_lib
    requests = None
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR: str | None = traceback.format_exc()
else:
    HAS_REQUESTS = True
    REQUESTS_IMPORT_ERROR = None

DEFAULT_USER_AGENT = "idsync.provisioning/0.1.0"
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "PATCH"})
# 429 and 503 mean "not processed, come back later": safe to resend even a create.
RETRY_LATER_STATUSES = frozenset({429, 503})
MAX_ERROR_TEXT = 500


class AmbiguousRequestError(ProvisioningError):
    """A non-idempotent request (a create) failed in a way that does not say whether the
    service acted on it: connection reset or read timeout after sending, or a 5xx.

    It was not resent. The caller checks whether the object exists before creating it again.
    """


# -- error text ----------------------------------------------------------------------------
def default_error_text(body: Any) -> str:
    """The service's own error text from a parsed error body (JSON or plain text).

    Understands SCIM (``detail`` + ``scimType``), Box (``code`` + ``message``), Dropbox
    (``error_summary``), OAuth (``error`` + ``error_description``), Okta (``errorSummary``)
    and the common ``message`` / ``error`` / ``errors[]`` shapes.
    """
    if body is None:
        return ""
    if isinstance(body, str):
        return _strip_markup(body)
    if isinstance(body, list):
        return "; ".join(filter(None, (default_error_text(item) for item in body[:5])))
    if not isinstance(body, dict):
        return str(body)

    if "detail" in body or "scimType" in body:
        detail = str(body.get("detail") or "").strip()
        scim_type = body.get("scimType")
        return f"{detail} (scimType {scim_type})" if scim_type else detail
    if body.get("error_summary"):
        return str(body["error_summary"]).strip()
    if body.get("errorSummary"):
        causes = [c.get("errorSummary") for c in body.get("errorCauses") or [] if isinstance(c, dict)]
        return "; ".join([str(body["errorSummary"])] + [str(c) for c in causes if c])
    message = body.get("message") or body.get("error_description") or body.get("error_message")
    code = body.get("code") or (body.get("error") if isinstance(body.get("error"), str) else None)
    if message and code and str(code) not in str(message):
        return f"{code}: {message}"
    if message:
        return str(message)
    if code:
        return str(code)
    error = body.get("error")
    if isinstance(error, dict):
        return default_error_text(error)
    if isinstance(body.get("errors"), list):
        return default_error_text(body["errors"])
    return jsonlib.dumps(body, sort_keys=True)[:MAX_ERROR_TEXT]


def _strip_markup(text: str) -> str:
    title = re.search(r"<title>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
    if title:
        text = title.group(1)
    text = re.sub(r"<[^>]+>", " ", text)
    return " ".join(text.split())[:MAX_ERROR_TEXT]


# -- retry timing --------------------------------------------------------------------------
def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)  # noqa: UP017 - datetime.UTC is Python 3.11+, targets may be older
    current = now if now is not None else time.time()
    return max(0.0, when.timestamp() - current)


# -- path templates for the counter ----------------------------------------------------------
_ID_SEGMENT = re.compile(
    r"""^(
        \d+                                                  # Box, PingID numeric ids
      | [0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}  # UUIDs
      | [0-9a-fA-F]{16,}                                     # hex ids (scim2-server, Okta-like)
      | (?=[^/]*\d)[A-Za-z0-9_.:%=+-]{16,}                   # long opaque ids with a digit
    )$""",
    re.VERBOSE,
)


def collapse_ids(path: str) -> str:
    """``/Users/2819c223...`` -> ``/Users/{id}``: the path without query, ids collapsed."""
    path = urlsplit(path).path if "://" in path else path.split("?", 1)[0]
    segments = path.split("/")
    # The first segment is never an id: it is a version (Dropbox "/2/...") or a resource type.
    first = next((i for i, segment in enumerate(segments) if segment), len(segments))
    return "/".join(
        "{id}" if i > first and _ID_SEGMENT.match(segment) else segment for i, segment in enumerate(segments)
    )


def bearer_auth(token: str) -> Callable[[dict[str, str]], None]:
    """An ``auth`` hook sending ``Authorization: Bearer <token>``."""

    def decorate(headers: dict[str, str]) -> None:
        headers["Authorization"] = f"Bearer {token}"

    return decorate


# -- the client ----------------------------------------------------------------------------
class HttpClient:
    """One target's HTTP session.

    ``auth`` is either a callable that receives the header dict of each attempt and sets its
    credentials (so a token refreshed meanwhile is used by the next attempt), or anything
    ``requests`` accepts as ``auth`` (a ``(user, password)`` tuple, an ``AuthBase``).
    ``secrets`` are strings that must never appear in an error (the token, the password):
    they are replaced by ``********`` should a service echo one back.
    ``sleep`` is injectable so tests can check waits without waiting.
    """

    def __init__(
        self,
        base_url: str,
        auth: Any = None,
        timeout: tuple[float, float] | float = (10.0, 60.0),
        validate_certs: bool = True,
        ca_path: str | None = None,
        retries: int = 5,
        backoff: float = 0.5,
        user_agent: str = DEFAULT_USER_AGENT,
        max_wait: float = 120.0,
        error_text: Callable[[Any], str] = default_error_text,
        json_content_type: str = "application/json",
        default_headers: dict[str, str] | None = None,
        secrets: Iterable[str] = (),
        sleep: Callable[[float], Any] = time.sleep,
        session: Any = None,
        on_unauthorized: Callable[[], bool] | None = None,
    ):
        if not HAS_REQUESTS:
            raise ProvisioningError("the Python library 'requests' is required")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries = max(0, int(retries))
        self.backoff = backoff
        self.max_wait = max_wait
        self.error_text = error_text
        self.json_content_type = json_content_type
        self.sleep = sleep
        # Called once per request on a 401; returning True (credentials refreshed) resends it.
        self.on_unauthorized = on_unauthorized
        self._secrets = [s for s in secrets if s]
        self._auth_hook = None
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = user_agent
        self.session.headers["Accept"] = "application/json"
        self.session.headers.update(default_headers or {})
        # Passed on every request too: requests lets REQUESTS_CA_BUNDLE override session.verify.
        self.verify: bool | str = ca_path if ca_path else bool(validate_certs)
        self.session.verify = self.verify
        if isinstance(auth, tuple):
            self.session.auth = requests.auth.HTTPBasicAuth(*auth)
            self._secrets.extend(str(part) for part in auth[1:] if part)
        elif isinstance(auth, requests.auth.AuthBase):
            self.session.auth = auth
        elif callable(auth):
            self._auth_hook = auth
        elif auth is not None:
            raise ValueError("auth must be a callable, a (user, password) tuple or a requests auth object")
        # "GET /Users/{id}" -> number of HTTP requests sent (retries included). The engine calls
        # connectors from several threads: the counters are updated under a lock.
        self.stats: dict[str, int] = {}
        self.retried = 0
        self._stats_lock = threading.Lock()

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    # -- public ------------------------------------------------------------------------
    def request(self, method: str, path: str, **options: Any) -> Any:
        """Send one request (with retries, options as for ``send``); its parsed JSON body, None when empty."""
        return parse_body(self.send(method, path, **options))

    def send(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
        expected: Iterable[int] = (200, 201, 204),
        idempotent: bool | None = None,
        path_template: str | None = None,
        error_text: Callable[[Any], str] | None = None,
    ) -> Any:
        """Send one request with retries and return the ``requests.Response`` (for headers such as ETag)."""
        method = method.upper()
        expected = tuple(expected)
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        url = path if "://" in path else f"{self.base_url}/{path.lstrip('/')}"
        shown_path = _shown_path(path)
        counter_key = f"{method} {path_template or collapse_ids(shown_path)}"
        extract = error_text or self.error_text

        attempt = 0
        reauthenticated = False
        while True:
            request_headers = dict(headers or {})
            if json is not None:
                request_headers.setdefault("Content-Type", self.json_content_type)
            if self._auth_hook is not None:
                decorated = self._auth_hook(request_headers)
                if isinstance(decorated, dict):
                    request_headers = decorated
            data = jsonlib.dumps(json) if json is not None else None
            with self._stats_lock:
                self.stats[counter_key] = self.stats.get(counter_key, 0) + 1
            try:
                response = self.session.request(
                    method,
                    url,
                    params=params,
                    data=data,
                    headers=request_headers,
                    timeout=self.timeout,
                    verify=self.verify,
                )
            except requests.exceptions.RequestException as exc:
                reason, nothing_sent = _describe_failure(exc)
                permanent = isinstance(exc, (requests.exceptions.SSLError, requests.exceptions.InvalidURL))
                if not permanent and (idempotent or nothing_sent) and attempt < self.retries:
                    self._wait(self._backoff_delay(attempt))
                    attempt += 1
                    continue
                message = self._redact(f"{method} {shown_path}: {reason}")
                if not (idempotent or nothing_sent or permanent):
                    raise AmbiguousRequestError(message, None, {"attempts": attempt + 1}) from None
                raise ProvisioningError(message, None, {"attempts": attempt + 1}) from None

            status = response.status_code
            if status in expected:
                return response
            if status == 401 and self.on_unauthorized is not None and not reauthenticated:
                reauthenticated = True
                if self.on_unauthorized():
                    response.close()
                    continue
            retry_later = status in RETRY_LATER_STATUSES
            if (retry_later or (status >= 500 and idempotent)) and attempt < self.retries:
                delay = parse_retry_after(response.headers.get("Retry-After")) if retry_later else None
                if delay is None:
                    delay = self._backoff_delay(attempt)
                response.close()
                self._wait(delay)
                attempt += 1
                continue
            self._raise_for(method, shown_path, response, extract, ambiguous=status >= 500 and not retry_later)

    # -- helpers -----------------------------------------------------------------------
    def _backoff_delay(self, attempt: int) -> float:
        return min(self.backoff * (2**attempt), self.max_wait)

    def _wait(self, seconds: float) -> None:
        with self._stats_lock:
            self.retried += 1
        self.sleep(min(max(seconds, 0.0), self.max_wait))

    def _raise_for(
        self, method: str, shown_path: str, response: Any, extract: Callable[[Any], str], ambiguous: bool
    ) -> None:
        body = parse_body(response, strict=False)
        try:
            text = extract(body) or ""
        except Exception:  # noqa: BLE001 - a faulty extractor must not hide the HTTP error
            text = ""
        text = " ".join(str(text).split())[:MAX_ERROR_TEXT] or (response.reason or "")
        message = self._redact(f"{method} {shown_path}: {response.status_code} {text}".rstrip())
        details = self._redact_value(body)
        error_class = AmbiguousRequestError if ambiguous and method not in IDEMPOTENT_METHODS else ProvisioningError
        raise error_class(message, response.status_code, details)

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text

    def _redact_value(self, value: Any) -> Any:
        if not self._secrets:
            return value
        if isinstance(value, str):
            return self._redact(value)
        if isinstance(value, list):
            return [self._redact_value(item) for item in value]
        if isinstance(value, dict):
            return {key: self._redact_value(item) for key, item in value.items()}
        return value


def parse_body(response: Any, strict: bool = True) -> Any:
    """The JSON body of a response, None when empty, the text when it is not JSON.

    ``strict``: a 2xx body that claims JSON but does not parse raises ``ProvisioningError``.
    """
    if response.status_code == 204 or not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        content_type = response.headers.get("Content-Type", "")
        if strict and "json" in content_type:
            raise ProvisioningError(
                f"{response.request.method} {_shown_path(response.url)}: the answer is not valid JSON",
                response.status_code,
                response.text[:MAX_ERROR_TEXT],
            ) from None
        return response.text


def _shown_path(path_or_url: str) -> str:
    """The path as put in messages: no scheme, host or query string (queries may be long)."""
    if "://" in path_or_url:
        return urlsplit(path_or_url).path or "/"
    return path_or_url.split("?", 1)[0]


def _describe_failure(exc: Exception) -> tuple[str, bool]:
    """A short reason for a transport failure, and whether the request surely never left."""
    exceptions = requests.exceptions
    if isinstance(exc, exceptions.SSLError):
        return f"TLS failure: {_innermost(exc)}", True
    if isinstance(exc, exceptions.ConnectTimeout):
        return "connect timeout", True
    if isinstance(exc, exceptions.ReadTimeout):
        return "read timeout (no answer in time)", False
    if isinstance(exc, exceptions.ConnectionError):
        reason = _innermost(exc)
        # Name resolution and refused connections happen before any byte is sent.
        nothing_sent = bool(re.search(r"NewConnectionError|NameResolutionError|refused", reason + repr(exc)))
        return f"connection failed: {reason}", nothing_sent
    return f"request failed: {type(exc).__name__}", False


def _innermost(exc: BaseException) -> str:
    """The deepest cause's message, without the URL-laden wrappers of urllib3."""
    seen = exc
    while True:
        reason = getattr(seen, "reason", None)
        if isinstance(reason, BaseException) and reason is not seen:
            seen = reason
            continue
        if seen.args and isinstance(seen.args[0], BaseException) and seen.args[0] is not seen:
            seen = seen.args[0]
            continue
        break
    text = str(seen)
    # urllib3 prefixes "<urllib3.connection.HTTPConnection object at 0x...>: " - noise.
    text = re.sub(r"<[^>]*object at 0x[0-9a-f]+>:?\s*", "", text)
    return text[:MAX_ERROR_TEXT] or type(seen).__name__


# -- paging --------------------------------------------------------------------------------
def paginate(
    fetch_page: Callable[[Any], tuple[Iterable[Any], Any]],
    first_token: Any = None,
    max_pages: int | None = None,
) -> Iterator[Any]:
    """Every item of a paged listing.

    ``fetch_page(token)`` returns ``(items, next_token)``; ``token`` is ``first_token`` on the
    first call and ``next_token`` is None after the last page. The token is whatever the
    service uses: a SCIM startIndex, a Box marker, a Dropbox cursor. A token seen before means
    a service that does not advance: that raises rather than loop or return a partial list.
    """
    token = first_token
    seen_tokens: set[Any] = set()
    pages = 0
    while True:
        items, next_token = fetch_page(token)
        yield from items
        pages += 1
        if next_token is None:
            return
        key = jsonlib.dumps(next_token, sort_keys=True, default=str)
        if next_token == token or key in seen_tokens:
            raise ProvisioningError(f"paging did not advance (token {str(next_token)[:80]!r} repeated)")
        if max_pages is not None and pages >= max_pages:
            raise ProvisioningError(f"paging stopped after {max_pages} pages: the listing looks endless")
        seen_tokens.add(key)
        token = next_token
