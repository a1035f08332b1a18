# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one OAuth 2.0 token source of every target that signs in with a token endpoint.

Private to this collection: the names here may change without notice.

A ``TokenSource`` holds one access token for a connector's ``HttpClient``: obtained on first
use, renewed ``margin`` seconds before it expires and once when the service answers 401 (a
token revoked or expired early), safe to share between the engine's threads. Each grant is a
small callable returning the form fields of one token request (RFC 6749 4.4 client
credentials, 6 refresh token; RFC 7523 JWT bearer, its assertion made fresh every time).
Every secret a grant sends and every token obtained joins the run's masker: none is logged.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ansible_collections.idsync.provisioning.plugins.module_utils._http import HttpClient
from ansible_collections.idsync.provisioning.plugins.module_utils._model import ProvisioningError

Grant = Callable[[], dict[str, str]]
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# When the endpoint does not say how long a token lives: renew after this many seconds.
DEFAULT_LIFETIME = 3600.0


def client_credentials(client_id: str, client_secret: str, **extra: str) -> Grant:
    """RFC 6749 4.4; ``extra`` carries vendor fields such as Box's ``box_subject_type``."""
    return lambda: {"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret, **extra}


def refresh_token(token: str, client_id: str | None = None, client_secret: str | None = None) -> Grant:
    """RFC 6749 6, with the client authenticating in the body (Dropbox's way)."""
    return lambda: _with_client({"grant_type": "refresh_token", "refresh_token": token}, client_id, client_secret)


def jwt_bearer(assertion: Callable[[], str], client_id: str | None = None, client_secret: str | None = None) -> Grant:
    """RFC 7523 2.1: a fresh signed assertion (unique ``jti``, short ``exp``) for every request."""
    return lambda: _with_client({"grant_type": JWT_BEARER, "assertion": assertion()}, client_id, client_secret)


def _with_client(body: dict[str, str], client_id: str | None, client_secret: str | None) -> dict[str, str]:
    """The grant's fields plus the client's credentials in the body (RFC 6749 2.3.1), where given."""
    if client_id:
        body["client_id"] = client_id
    if client_secret:
        body["client_secret"] = client_secret
    return body


class TokenSource:
    """An access token that renews itself: pass ``auth=source.auth_hook`` and
    ``on_unauthorized=source.on_unauthorized`` to the connector's HttpClient.

    ``endpoint`` is an HttpClient for the token URL only (it is never given this source's own
    hook, so a token request cannot recurse); ``token_url`` is the full URL.
    """

    def __init__(
        self,
        endpoint: HttpClient,
        token_url: str,
        grant: Grant,
        secrets: tuple[str | None, ...] = (),
        margin: float = 60.0,
        clock: Callable[[], float] = time.time,
    ):
        self.endpoint = endpoint
        self.token_url = token_url
        self.grant = grant
        self.margin = margin
        self.clock = clock
        self.renewals = 0
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0
        # The token each thread last sent, so that a 401 renews only a token no one renewed meanwhile.
        self._sent = threading.local()
        for secret in secrets:
            endpoint.masker.add(secret)

    # -- the token ---------------------------------------------------------------------------
    def token(self) -> str:
        with self._lock:
            if self._token is None or self.clock() >= self._expires_at - self.margin:
                self._renew()
            return self._token  # type: ignore[return-value]

    def _renew(self) -> None:
        fields = self.grant()
        for name in ("client_secret", "refresh_token", "assertion"):
            self.endpoint.masker.add(fields.get(name))
        try:
            answer = self.endpoint.request("POST", self.token_url, form=fields, expected=(200,), idempotent=True)
        except ProvisioningError as exc:
            grant = fields["grant_type"].rsplit(":", 1)[-1]
            if exc.status is None or exc.status >= 500 or exc.status == 429:
                # Down, overloaded or unreachable after the retries: the credentials were not judged.
                message = (
                    f"token endpoint {self.token_url} did not answer the {grant} grant: {exc.message}; "
                    "the service is unavailable or unreachable, the credentials were not checked: run again later"
                )
            else:
                message = (
                    f"token endpoint {self.token_url} refused the {grant} grant: {exc.message}; "
                    "check the client id, the secret or key, and that the app is authorized"
                )
            raise ProvisioningError(message, exc.status, exc.details) from None
        token = answer.get("access_token") if isinstance(answer, dict) else None
        if not token:
            raise ProvisioningError(f"token endpoint {self.token_url}: the answer has no access_token")
        self.endpoint.masker.add(token)
        rotated = answer.get("refresh_token")
        if rotated and fields.get("grant_type") == "refresh_token":
            # A rotating endpoint invalidates the old refresh token: use the new one from now on.
            self.endpoint.masker.add(rotated)
            self.grant = refresh_token(rotated, fields.get("client_id"), fields.get("client_secret"))
        try:
            lifetime = float(answer.get("expires_in") or DEFAULT_LIFETIME)
        except (TypeError, ValueError):
            lifetime = DEFAULT_LIFETIME
        self._token = token
        self._expires_at = self.clock() + lifetime
        self.renewals += 1

    # -- hooks for HttpClient -----------------------------------------------------------------
    def auth_hook(self, headers: dict[str, str]) -> None:
        token = self.token()
        self._sent.token = token
        headers["Authorization"] = f"Bearer {token}"

    def on_unauthorized(self) -> bool:
        """A 401: renew unless another thread already did since this one's request; resend either way."""
        with self._lock:
            if getattr(self._sent, "token", None) == self._token:
                self._renew()
        return True
