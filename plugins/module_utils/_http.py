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
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from datetime import timezone
from typing import Any
from urllib.parse import urlencode, urlsplit

from ansible_collections.idsync.provisioning.plugins.module_utils._model import ProvisioningError
from ansible_collections.idsync.provisioning.plugins.module_utils._secrets import SecretMasker, shared_masker

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
# 429 and 503 mean "come back later" (after Retry-After). A 429 was surely not processed: safe to
# resend even a create. A 503 may come from behind the service's front door after a write landed
# (Box says so): an idempotent request is resent, a create is ambiguous (its caller looks first).
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
    and the common ``message`` / ``error`` / ``errors[]`` shapes. The text is whole: callers mask
    secrets in it first and cut it to length after (``HttpClient.service_text``).
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
    return jsonlib.dumps(body, sort_keys=True)


def _strip_markup(text: str) -> str:
    title = re.search(r"<title>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
    if title:
        text = title.group(1)
    text = re.sub(r"<[^>]+>", " ", text)
    return " ".join(text.split())


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
    ``secrets`` are strings that must never appear in an error (the token, the password); they
    join ``masker`` (by default the run's shared one, see ``_secrets``), which masks them in every
    form they take on the wire, before any text is cut. Tokens obtained later are added to it.
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
        masker: SecretMasker | None = None,
        sleep: Callable[[float], Any] = time.sleep,
        session: Any = None,
        on_unauthorized: Callable[[], bool] | None = None,
        encode_body: Callable[[Any], tuple[str | bytes, str]] | None = None,
        decode_reply: Callable[[Any], Any] | None = None,
        proxy_url: str | None = None,
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
        # ``body=`` payloads go through encode_body (payload -> (data, content type)), e.g. a signed
        # token; decode_reply turns every answer (errors included) into data, e.g. verifying a
        # signed reply. Without them, bodies are JSON.
        self.encode_body = encode_body
        self.decode_reply = decode_reply
        self.masker = masker if masker is not None else shared_masker()
        for secret in secrets:
            self.masker.add(secret)
        self._auth_hook = None
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = user_agent
        self.session.headers["Accept"] = "application/json"
        self.session.headers.update(default_headers or {})
        # Passed on every request too: requests lets REQUESTS_CA_BUNDLE override session.verify.
        self.verify: bool | str = ca_path if ca_path else bool(validate_certs)
        self.session.verify = self.verify
        if proxy_url:
            self.session.proxies.update({"http": proxy_url, "https": proxy_url})
        if isinstance(auth, tuple):
            self.session.auth = requests.auth.HTTPBasicAuth(*auth)
            self.masker.add_credentials(str(auth[0] or ""), str(auth[1] or "") if len(auth) > 1 else "")
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
        """Send one request (with retries, options as for ``send``); its decoded body, None when empty."""
        response = self.send(method, path, **options)
        return self.decode_reply(response) if self.decode_reply is not None else parse_body(response)

    def send(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
        form: dict[str, Any] | None = None,
        body: Any = None,
        expected: Iterable[int] = (200, 201, 204),
        idempotent: bool | None = None,
        path_template: str | None = None,
        error_text: Callable[[Any], str] | None = None,
    ) -> Any:
        """Send one request with retries and return the ``requests.Response`` (for headers such as ETag).

        The body is ``json`` (encoded as JSON), ``form`` (``application/x-www-form-urlencoded``,
        as OAuth token endpoints want) or ``body`` (encoded by the client's ``encode_body``, e.g.
        signed; encoded once, so every retry resends the same bytes).
        """
        method = method.upper()
        expected = tuple(expected)
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        url = path if "://" in path else f"{self.base_url}/{path.lstrip('/')}"
        shown_path = _shown_path(path)
        counter_key = f"{method} {path_template or collapse_ids(shown_path)}"
        extract = error_text or self.error_text
        data, content_type = self._encode(json, form, body)

        attempt = 0
        reauthenticated = False
        while True:
            request_headers = dict(headers or {})
            if content_type:
                request_headers.setdefault("Content-Type", content_type)
            if self._auth_hook is not None:
                decorated = self._auth_hook(request_headers)
                if isinstance(decorated, dict):
                    request_headers = decorated
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
            resend = status == 429 or (status >= 500 and idempotent)
            if retry_later and not resend and attempt < self.retries:
                # A create answered 503: wait as told, then let the caller look before resending.
                self._wait(self._retry_delay(response, attempt))
            elif resend and attempt < self.retries:
                delay = self._retry_delay(response, attempt) if retry_later else self._backoff_delay(attempt)
                response.close()
                self._wait(delay)
                attempt += 1
                continue
            try:
                self._raise_for(method, shown_path, response, extract, ambiguous=status >= 500 and status != 429)
            except ProvisioningError as exc:
                raise _with_status_hint(exc, status, self.base_url, self._credentials_kind()) from None

    # -- helpers -----------------------------------------------------------------------
    def _credentials_kind(self) -> str:
        if isinstance(self.session.auth, requests.auth.HTTPBasicAuth):
            return "user name and password"
        return "token" if self._auth_hook is not None else "credentials"

    def _encode(self, json: Any, form: Any, body: Any) -> tuple[str | bytes | None, str | None]:
        if sum(value is not None for value in (json, form, body)) > 1:
            raise ValueError("send takes one of json, form and body")
        if json is not None:
            return jsonlib.dumps(json), self.json_content_type
        if form is not None:
            return urlencode(form), "application/x-www-form-urlencoded"
        if body is not None:
            if self.encode_body is None:
                return jsonlib.dumps(body), self.json_content_type
            return self.encode_body(body)
        return None, None

    def _retry_delay(self, response: Any, attempt: int) -> float:
        delay = parse_retry_after(response.headers.get("Retry-After"))
        return self._backoff_delay(attempt) if delay is None else delay

    def _backoff_delay(self, attempt: int) -> float:
        return min(self.backoff * (2**attempt), self.max_wait)

    def _wait(self, seconds: float) -> None:
        with self._stats_lock:
            self.retried += 1
        self.sleep(min(max(seconds, 0.0), self.max_wait))

    def _raise_for(
        self, method: str, shown_path: str, response: Any, extract: Callable[[Any], str], ambiguous: bool
    ) -> None:
        body = self._error_body(response)
        text = self.service_text(body, extract) or self._redact(response.reason or "")
        message = self._redact(f"{method} {shown_path}: {response.status_code} {text}".rstrip())
        # Whole secrets and patterns only: a fragment match could rewrite an id a connector reads back.
        details = self.masker.mask_value(body, fragments=False)
        error_class = AmbiguousRequestError if ambiguous and method not in IDEMPOTENT_METHODS else ProvisioningError
        raise error_class(message, response.status_code, details)

    def _error_body(self, response: Any) -> Any:
        """An error answer as data: through decode_reply when there is one (a signed error body)."""
        if self.decode_reply is not None:
            try:
                return self.decode_reply(response)
            except ProvisioningError:
                pass  # not decodable (a proxy's HTML page, say): the text itself is the service's word
        return parse_body(response, strict=False)

    def service_text(self, body: Any, extract: Callable[[Any], str] | None = None) -> str:
        """A service's error text for a message: extracted, masked, then (only then) cut."""
        try:
            text = (extract or self.error_text)(body) or ""
        except Exception:  # noqa: BLE001 - a faulty extractor must not hide the HTTP error
            text = ""
        return self.masker.cut(" ".join(self.masker.mask(text).split()), MAX_ERROR_TEXT)

    def _redact(self, text: str) -> str:
        return self.masker.mask(text)


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
                shared_masker().cut(response.text, MAX_ERROR_TEXT),
            ) from None
        return response.text


def _shown_path(path_or_url: str) -> str:
    """The path as put in messages: no scheme, host or query string (queries may be long)."""
    if "://" in path_or_url:
        return urlsplit(path_or_url).path or "/"
    return path_or_url.split("?", 1)[0]


# -- transport failures -----------------------------------------------------------------------
# One template per failure, each naming the server and saying what to check. They are the one
# place these texts live: docs/troubleshooting.md quotes them, and tests/unit/test_troubleshooting.py
# produces each failure for real and checks code and page agree. Change them together.
HTTP_HOST_UNKNOWN = "cannot resolve host {host}: check the host name in url and DNS (and the proxy settings, if any)"
HTTP_REFUSED = "connection refused by {host}:{port}: is the service running, and is the port in url right?"
HTTP_CONNECT_TIMEOUT = (
    "no connection to {host}:{port} within the connect timeout: check the host, the port, firewalls and proxies, "
    "or raise timeout"
)
HTTP_READ_TIMEOUT = "read timeout: no answer from {host}:{port} in time: raise timeout if the service is slow"
HTTP_TLS_UNTRUSTED = (
    "TLS failure: the certificate of {host}:{port} is not trusted ({reason}): set ca_path to the CA that signed it "
    "(validate_certs: false only for tests)"
)
HTTP_TLS_NAME_MISMATCH = (
    "TLS failure: the certificate of {host}:{port} is not valid for the name {host}: "
    "use in url a host name the certificate names"
)
HTTP_TLS_FAILED = (
    "TLS failure with {host}:{port}: {reason}: check that this port speaks TLS and the certificate it presents "
    "(openssl s_client -connect {host}:{port})"
)
HTTP_CONNECTION_FAILED = "connection failed: {reason}"

TRANSPORT_MESSAGES = {
    "host_unknown": HTTP_HOST_UNKNOWN,
    "refused": HTTP_REFUSED,
    "connect_timeout": HTTP_CONNECT_TIMEOUT,
    "read_timeout": HTTP_READ_TIMEOUT,
    "tls_untrusted": HTTP_TLS_UNTRUSTED,
    "tls_name_mismatch": HTTP_TLS_NAME_MISMATCH,
    "tls_failed": HTTP_TLS_FAILED,
}

# Appended to the service's own answer to a 401 / 403 ("GET /Users: 401 <its text>; ...").
HTTP_UNAUTHORIZED = (
    "{message}; {server} refused the credentials: check the {credentials} of this connection "
    "(wrong, expired, or not set in the environment)"
)
HTTP_FORBIDDEN = (
    "{message}; {server} accepted the credentials but not this operation: give the account or app "
    "the permission it needs, or leave the operation out"
)
STATUS_MESSAGES = {401: HTTP_UNAUTHORIZED, 403: HTTP_FORBIDDEN}

# OpenSSL verify codes: no trusted CA signed it (ca_path fixes it) / the name is not in it.
_UNTRUSTED_VERIFY_CODES = frozenset({2, 18, 19, 20, 21})
_NAME_MISMATCH_VERIFY_CODES = frozenset({62, 64})


def _describe_failure(exc: Exception) -> tuple[str, bool]:
    """What went wrong (naming the server and what to check), and whether the request surely never left."""
    exceptions = requests.exceptions
    host, port = _server_of(exc)
    if isinstance(exc, exceptions.SSLError):
        return _describe_tls(exc, host, port), True
    if isinstance(exc, exceptions.ConnectTimeout):
        return HTTP_CONNECT_TIMEOUT.format(host=host, port=port), True
    if isinstance(exc, exceptions.ReadTimeout):
        return HTTP_READ_TIMEOUT.format(host=host, port=port), False
    if isinstance(exc, exceptions.ConnectionError):
        causes = _causes(exc)
        text = " ".join(f"{type(c).__name__} {c}" for c in causes)
        # Name resolution and refused connections happen before any byte is sent.
        if any(isinstance(c, socket.gaierror) for c in causes) or "NameResolutionError" in text:
            return HTTP_HOST_UNKNOWN.format(host=host), True
        if any(isinstance(c, ConnectionRefusedError) for c in causes) or "refused" in text.lower():
            return HTTP_REFUSED.format(host=host, port=port), True
        nothing_sent = "NewConnectionError" in text
        return HTTP_CONNECTION_FAILED.format(reason=_innermost(exc)), nothing_sent
    return f"request failed: {type(exc).__name__}", False


def _describe_tls(exc: BaseException, host: str, port: int | str) -> str:
    for cause in reversed(_causes(exc)):
        code = getattr(cause, "verify_code", None)
        reason = str(getattr(cause, "verify_message", "") or "").strip()
        if code in _NAME_MISMATCH_VERIFY_CODES or "doesn't match" in str(cause):
            return HTTP_TLS_NAME_MISMATCH.format(host=host, port=port)
        if code in _UNTRUSTED_VERIFY_CODES:
            return HTTP_TLS_UNTRUSTED.format(host=host, port=port, reason=reason or "unknown issuer")
        if reason:
            return HTTP_TLS_FAILED.format(host=host, port=port, reason=reason)
    text = _innermost(exc)
    detail = re.search(r"\[SSL(?:: [A-Z0-9_]+)?\]\s*([^(]*)", text)
    reason = (detail.group(1).strip() if detail else "") or text
    return HTTP_TLS_FAILED.format(host=host, port=port, reason=reason.rstrip(". "))


def _with_status_hint(exc: ProvisioningError, status: int, base_url: str, credentials: str) -> ProvisioningError:
    """Say what a 401 / 403 means, naming the server (scheme, host and port: no path, no user info)."""
    template = STATUS_MESSAGES.get(status)
    if template is None:
        return exc
    parts = urlsplit(base_url)
    server = f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    exc.message = template.format(message=exc.message, server=server, credentials=credentials)
    exc.args = (exc.message, *exc.args[1:])
    return exc


def _server_of(exc: BaseException) -> tuple[str, int | str]:
    """(host, port) the failed request went to, from the request ``requests`` attaches."""
    url = getattr(getattr(exc, "request", None), "url", None) or ""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "the service"
        port = parts.port or {"https": 443, "http": 80}.get(parts.scheme, "?")
    except ValueError:
        host, port = "the service", "?"
    return host, port


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and its causes, outermost first (urllib3 nests them in ``reason``, ``args`` and ``from``)."""
    chain = [exc]
    seen = {id(exc)}
    current = exc
    while True:
        following = getattr(current, "reason", None)
        if not isinstance(following, BaseException):
            following = current.args[0] if current.args and isinstance(current.args[0], BaseException) else None
        if following is None:
            following = next((arg for arg in current.args if isinstance(arg, BaseException)), current.__cause__)
        if following is None or id(following) in seen:
            return chain
        chain.append(following)
        seen.add(id(following))
        current = following


def _innermost(exc: BaseException) -> str:
    """The deepest cause's message, without the URL-laden wrappers of urllib3."""
    seen = _causes(exc)[-1]
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
