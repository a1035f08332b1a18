# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The token source against a real loopback server: grants, renewal, 401, threads, secrets."""

from __future__ import annotations

import threading
from urllib.parse import parse_qs

import pytest
from support.http_faults import Reply, ScriptedHttpServer

from ansible_collections.idsync.provisioning.plugins.module_utils._http import HttpClient
from ansible_collections.idsync.provisioning.plugins.module_utils._model import ProvisioningError
from ansible_collections.idsync.provisioning.plugins.module_utils._secrets import SecretMasker
from ansible_collections.idsync.provisioning.plugins.module_utils._token import (
    JWT_BEARER,
    TokenSource,
    client_credentials,
    jwt_bearer,
    refresh_token,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def server():
    with ScriptedHttpServer() as scripted:
        yield scripted


def token_reply(token: str, expires_in: int = 3600, **extra) -> Reply:
    return Reply(200, {"access_token": token, "token_type": "bearer", "expires_in": expires_in, **extra})


def form_of(request) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(request.body.decode()).items()}


def api_with(server, grant, clock=None, masker=None):
    masker = masker or SecretMasker()
    endpoint = HttpClient(server.url, retries=0, masker=masker)
    source = TokenSource(endpoint, server.url + "/oauth2/token", grant, clock=clock or Clock())
    api = HttpClient(
        server.url + "/2.0", retries=0, masker=masker, auth=source.auth_hook, on_unauthorized=source.on_unauthorized
    )
    return api, source


def test_client_credentials_token_is_reused_then_renewed_before_expiry(server):
    clock = Clock()
    api, source = api_with(server, client_credentials("app", "cs-123456789", box_subject_type="enterprise"), clock)
    server.script(token_reply("tok-one", expires_in=600), Reply(200, {}), Reply(200, {}))
    api.request("GET", "/users")
    api.request("GET", "/users")
    token_request, first, second = server.requests
    assert token_request.path == "/oauth2/token"
    assert token_request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert form_of(token_request) == {
        "grant_type": "client_credentials",
        "client_id": "app",
        "client_secret": "cs-123456789",
        "box_subject_type": "enterprise",
    }
    assert first.headers["Authorization"] == second.headers["Authorization"] == "Bearer tok-one"

    clock.now += 600 - 30  # inside the 60 s margin: renewed before the service could refuse it
    server.script(token_reply("tok-two"), Reply(200, {}))
    api.request("GET", "/users")
    assert [r.path for r in server.requests[3:]] == ["/oauth2/token", "/2.0/users"]
    assert server.requests[-1].headers["Authorization"] == "Bearer tok-two"
    assert source.renewals == 2


def test_a_401_renews_once_and_resends(server):
    api, source = api_with(server, client_credentials("app", "cs-123456789"))
    server.script(token_reply("old-token"), Reply(401, {"error": "expired_access_token"}), token_reply("new-token"))
    server.script(Reply(200, {"ok": True}))
    assert api.request("GET", "/users") == {"ok": True}
    assert [r.headers.get("Authorization") for r in server.requests if r.path == "/2.0/users"] == [
        "Bearer old-token",
        "Bearer new-token",
    ]
    # a second 401 in the same request is the service's answer, not a reason to loop
    server.script(Reply(401, {"error": "invalid_token"}), token_reply("third"), Reply(401, {"error": "no"}))
    with pytest.raises(ProvisioningError) as failure:
        api.request("GET", "/users")
    assert failure.value.status == 401
    assert source.renewals == 3


def test_a_rotated_refresh_token_replaces_the_old_one(server):
    api, source = api_with(server, refresh_token("rt-first-0001", "key", "app-secret"))
    server.script(token_reply("a1", expires_in=1, refresh_token="rt-second-002"), Reply(200, {}))
    server.script(token_reply("a2"), Reply(200, {}))
    api.request("POST", "/team/members/list_v2", json={})
    api.request("POST", "/team/members/list_v2", json={})  # 1 s lifetime is inside the margin: renewed
    first, second = (form_of(r) for r in server.requests if r.path == "/oauth2/token")
    assert first == {
        "grant_type": "refresh_token",
        "refresh_token": "rt-first-0001",
        "client_id": "key",
        "client_secret": "app-secret",
    }
    assert second["refresh_token"] == "rt-second-002"


def test_jwt_bearer_makes_a_fresh_assertion_each_time(server):
    made = iter(["eyJhbGciOiJSUzI1NiJ9.eyJqdGkiOiIxIn0.c2lnMQ", "eyJhbGciOiJSUzI1NiJ9.eyJqdGkiOiIyIn0.c2lnMg"])
    api, _source = api_with(server, jwt_bearer(lambda: next(made), "app", "cs-123456789"))
    server.script(token_reply("t1"), Reply(401, {}), token_reply("t2"), Reply(200, {}))
    api.request("GET", "/users")
    assertions = [form_of(r)["assertion"] for r in server.requests if r.path == "/oauth2/token"]
    assert len(set(assertions)) == 2
    assert form_of(server.requests[0])["grant_type"] == JWT_BEARER


def test_threads_share_one_token_request(server):
    api, source = api_with(server, client_credentials("app", "cs-123456789"))
    server.script(token_reply("shared"), *[Reply(200, {}) for _reply in range(16)])
    threads = [threading.Thread(target=api.request, args=("GET", "/users")) for _thread in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.path for r in server.requests].count("/oauth2/token") == 1
    assert source.renewals == 1


def test_a_refused_grant_names_the_endpoint_and_shows_no_secret(server):
    masker = SecretMasker()
    api, _source = api_with(server, client_credentials("app", "cs-top-secret-99"), masker=masker)
    echo = "bad request: client_secret=cs-top-secret-99&client_id=app"
    server.script(Reply(400, {"error": "invalid_client", "error_description": echo}))
    with pytest.raises(ProvisioningError) as failure:
        api.request("GET", "/users")
    message = failure.value.message
    assert "/oauth2/token refused the client_credentials grant" in message
    assert "invalid_client" in message
    assert "cs-top-secret-99" not in message and "top-secr" not in message
    # obtained tokens join the masker too, so an echo of the Authorization header shows nothing
    server.script(token_reply("tok-echoed-123456"), Reply(500, "Authorization: Bearer tok-echoed-123456"))
    with pytest.raises(ProvisioningError) as echoed:
        api.request("GET", "/users")
    assert "tok-echoed" not in echoed.value.message


@pytest.mark.parametrize(
    "failure",
    [Reply(503, {"error": "temporarily_unavailable"}, {"Retry-After": "0"}), Reply(500, "oops"), Reply(reset=True)],
    ids=["503", "500", "reset"],
)
def test_an_unavailable_token_endpoint_is_not_called_a_refused_grant(server, failure):
    api, _source = api_with(server, client_credentials("app", "cs-123456789"))
    server.script(failure)
    with pytest.raises(ProvisioningError) as caught:
        api.request("GET", "/users")
    message = caught.value.message
    assert "/oauth2/token did not answer the client_credentials grant" in message
    assert "the credentials were not checked" in message and "refused" not in message
    assert [r.path for r in server.requests] == ["/oauth2/token"]  # retries=0 here; the API was never called
