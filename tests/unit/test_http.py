# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The HTTP layer against a real HTTP server on 127.0.0.1 that answers from a script."""

from __future__ import annotations

import email.utils
import json
import socket
import time

import pytest
from support.http_faults import Reply, ScriptedHttpServer, make_self_signed_cert

from ansible_collections.idsync.provisioning.plugins.module_utils._http import (
    AmbiguousRequestError,
    HttpClient,
    bearer_auth,
    collapse_ids,
    default_error_text,
    paginate,
    parse_retry_after,
)
from ansible_collections.idsync.provisioning.plugins.module_utils._model import ProvisioningError

TOKEN = "s3cr3t-token-value"


class SleepRecorder:
    """Replaces time.sleep: records the waits instead of waiting."""

    def __init__(self):
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def server():
    with ScriptedHttpServer() as scripted:
        yield scripted


@pytest.fixture
def sleep():
    return SleepRecorder()


def client_for(server, sleep, **options) -> HttpClient:
    options.setdefault("auth", bearer_auth(TOKEN))
    options.setdefault("secrets", [TOKEN])
    options.setdefault("timeout", (2, 5))
    return HttpClient(server.url + "/v2", sleep=sleep, **options)


# -- retries ---------------------------------------------------------------------------------
def test_429_is_retried_after_the_retry_after_seconds(server, sleep):
    server.script(Reply(429, {"detail": "slow down"}, {"Retry-After": "3"}), Reply(200, {"ok": True}))
    client = client_for(server, sleep)

    assert client.request("GET", "/Users") == {"ok": True}
    assert len(server.requests) == 2
    assert sleep.calls == [3.0]


def test_retry_after_as_http_date_is_honoured():
    in_ten_seconds = email.utils.formatdate(time.time() + 10, usegmt=True)
    wait = parse_retry_after(in_ten_seconds)
    assert wait is not None and 5 <= wait <= 10
    assert parse_retry_after("not a date") is None
    assert parse_retry_after("0") == 0.0


def test_retry_after_is_capped_by_max_wait(server, sleep):
    server.script(Reply(503, None, {"Retry-After": "3600"}), Reply(204))
    client = client_for(server, sleep, max_wait=7)

    assert client.request("DELETE", "/Users/1") is None
    assert sleep.calls == [7]


def test_503_without_retry_after_backs_off(server, sleep):
    server.script(Reply(503), Reply(503), Reply(200, {"n": 1}))
    client = client_for(server, sleep, backoff=0.25)

    assert client.request("GET", "/Users") == {"n": 1}
    assert sleep.calls == [0.25, 0.5]


def test_500_on_get_backs_off_exponentially_then_gives_up(server, sleep):
    server.script(*[Reply(500, {"detail": "boom"}) for _attempt in range(4)])
    client = client_for(server, sleep, retries=3, backoff=0.5)

    with pytest.raises(ProvisioningError) as caught:
        client.request("GET", "/Users")
    assert len(server.requests) == 4
    assert sleep.calls == [0.5, 1.0, 2.0]
    assert caught.value.status == 500
    assert caught.value.message == "GET /Users: 500 boom"
    assert not isinstance(caught.value, AmbiguousRequestError)  # a failed read is just an error


def test_post_is_not_retried_after_a_500(server, sleep):
    server.script(Reply(500, {"detail": "maybe created"}), Reply(201, {"id": "dup"}))
    client = client_for(server, sleep)

    with pytest.raises(AmbiguousRequestError) as caught:
        client.request("POST", "/Users", json={"userName": "a"})
    assert len(server.requests) == 1
    assert sleep.calls == []
    assert caught.value.status == 500


def test_post_is_retried_after_429_which_guarantees_nothing_was_done(server, sleep):
    server.script(Reply(429, None, {"Retry-After": "1"}), Reply(201, {"id": "u1"}))
    client = client_for(server, sleep)

    assert client.request("POST", "/Users", json={"userName": "a"}) == {"id": "u1"}
    assert len(server.requests) == 2
    assert json.loads(server.requests[1].body) == {"userName": "a"}


def test_a_non_idempotent_request_can_be_declared_idempotent(server, sleep):
    server.script(Reply(502), Reply(200, {"Resources": []}))
    client = client_for(server, sleep)

    assert client.request("POST", "/Users/.search", json={}, idempotent=True) == {"Resources": []}
    assert len(server.requests) == 2


def test_connection_reset_retries_a_get_but_not_a_post(server, sleep):
    server.script(Reply(reset=True), Reply(200, {"again": True}))
    client = client_for(server, sleep)
    assert client.request("GET", "/Users") == {"again": True}
    assert len(server.requests) == 2

    server.script(Reply(reset=True), Reply(201, {"id": "dup"}))
    with pytest.raises(AmbiguousRequestError) as caught:
        client.request("POST", "/Users", json={"userName": "a"})
    assert len(server.requests) == 3
    assert caught.value.message.startswith("POST /Users: connection failed")
    assert caught.value.status is None


def test_read_timeout_on_post_is_ambiguous(server, sleep):
    server.script(Reply(201, {"id": "late"}, delay=1.0))
    client = client_for(server, sleep, timeout=(2, 0.2))

    with pytest.raises(AmbiguousRequestError, match="read timeout"):
        client.request("POST", "/Users", json={"userName": "a"})
    assert sleep.calls == []


def test_refused_connection_is_retried_even_for_post_since_nothing_was_sent(sleep):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    client = HttpClient(f"http://127.0.0.1:{closed_port}", retries=2, backoff=0.1, sleep=sleep)

    with pytest.raises(ProvisioningError) as caught:
        client.request("POST", "/Users", json={})
    assert not isinstance(caught.value, AmbiguousRequestError)
    assert sleep.calls == [0.1, 0.2]
    assert client.stats == {"POST /Users": 3}


def test_unexpected_4xx_is_not_retried(server, sleep):
    server.script(Reply(404, {"detail": "User 'x' not found", "status": "404"}))
    client = client_for(server, sleep)

    with pytest.raises(ProvisioningError) as caught:
        client.request("GET", "/Users/x")
    assert caught.value.message == "GET /Users/x: 404 User 'x' not found"
    assert len(server.requests) == 1


def test_unauthorized_hook_refreshes_once_and_resends(server, sleep):
    tokens = iter(["expired", "fresh"])
    current = {"token": next(tokens)}

    def refresh() -> bool:
        current["token"] = next(tokens)
        return True

    server.script(Reply(401, {"message": "expired token"}), Reply(200, {"me": 1}))
    client = client_for(server, sleep, auth=lambda headers: headers.update(Authorization=f"Bearer {current['token']}"))
    client.on_unauthorized = refresh

    assert client.request("GET", "/Me") == {"me": 1}
    assert [r.headers["Authorization"] for r in server.requests] == ["Bearer expired", "Bearer fresh"]


# -- errors ----------------------------------------------------------------------------------
def test_scim_error_detail_and_type_are_in_the_message(server, sleep):
    body = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
        "status": "409",
        "scimType": "uniqueness",
        "detail": "One or more of the attribute values are already in use or are reserved",
    }
    server.script(Reply(409, body))
    client = client_for(server, sleep)

    with pytest.raises(ProvisioningError) as caught:
        client.request("POST", "/Users", json={"userName": "a"})
    assert caught.value.message == (
        "POST /Users: 409 One or more of the attribute values are already in use or are reserved (scimType uniqueness)"
    )
    assert caught.value.details == body


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (
            {"type": "error", "status": 409, "code": "user_login_already_used", "message": "User exists"},
            "user_login_already_used: User exists",
        ),
        ({"error_summary": "member_not_found/..", "error": {".tag": "member_not_found"}}, "member_not_found/.."),
        ({"error": "invalid_grant", "error_description": "Bad credentials"}, "invalid_grant: Bad credentials"),
        ({"errorSummary": "Api validation failed", "errorCauses": [{"errorSummary": "login: taken"}]}, None),
        ("<html><title>502 Bad Gateway</title><body>nginx</body></html>", "502 Bad Gateway"),
        ({"errors": [{"message": "first"}, {"message": "second"}]}, "first; second"),
    ],
)
def test_default_error_text_understands_each_vendor_shape(body, text):
    expected = text or "Api validation failed; login: taken"
    assert default_error_text(body) == expected


def test_a_connector_can_pass_its_own_error_extractor(server, sleep):
    server.script(Reply(400, {"weird": {"why": "no seats left"}}))
    client = client_for(server, sleep, error_text=lambda body: body["weird"]["why"])

    with pytest.raises(ProvisioningError, match=r"^POST /members/add: 400 no seats left$"):
        client.request("POST", "/members/add", json={})


def test_secrets_never_appear_in_errors_even_when_echoed(server, sleep):
    server.script(Reply(401, {"detail": f"token {TOKEN} is not valid", "echo": {"auth": f"Bearer {TOKEN}"}}))
    client = client_for(server, sleep)

    with pytest.raises(ProvisioningError) as caught:
        client.request("GET", "/Users")
    assert server.requests[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in caught.value.message
    assert TOKEN not in json.dumps(caught.value.details)
    assert "********" in caught.value.message


def test_basic_auth_password_is_redacted_too(server, sleep):
    server.script(Reply(403, {"message": "user admin with password hunter2 may not"}))
    client = HttpClient(server.url, auth=("admin", "hunter2"), sleep=sleep)

    with pytest.raises(ProvisioningError) as caught:
        client.request("GET", "/")
    assert server.requests[0].headers["Authorization"].startswith("Basic ")
    assert "hunter2" not in caught.value.message


# -- bodies, counter -------------------------------------------------------------------------
def test_204_and_empty_bodies_are_none_and_json_is_sent_as_json(server, sleep):
    server.script(Reply(204), Reply(200, ""))
    client = client_for(server, sleep, json_content_type="application/scim+json")

    assert client.request("PATCH", "/Users/1", json={"Operations": []}) is None
    assert client.request("GET", "/x") is None
    assert server.requests[0].headers["Content-Type"] == "application/scim+json"
    assert server.requests[0].headers["User-Agent"] == "idsync.provisioning/0.1.0"
    assert "Content-Type" not in server.requests[1].headers


def test_counter_groups_requests_by_method_and_path_template(server, sleep):
    server.script(*[Reply(200, {}) for _attempt in range(5)])
    client = client_for(server, sleep)

    client.request("GET", "/Users/2819c223fa7c4d9e8f3b0b1a2c3d4e5f")
    client.request("GET", "/Users/07930ccd4d174eaf9c088ab7933766ab", params={"attributes": "userName"})
    client.request("GET", "/users/12345/memberships")
    client.request("GET", "/Users", params={"startIndex": 1})
    client.request("POST", "/2/team/members/add_v2", path_template="/2/team/members/add_v2")

    # Paths are counted relative to the base URL, as the connectors write them.
    assert client.stats == {
        "GET /Users/{id}": 2,
        "GET /users/{id}/memberships": 1,
        "GET /Users": 1,
        "POST /2/team/members/add_v2": 1,
    }


def test_counter_counts_every_attempt(server, sleep):
    server.script(Reply(503), Reply(200, {}))
    client = client_for(server, sleep)
    client.request("GET", "/Groups/6f1e7c1c-6c3b-4a4e-8a43-0d7f2f9e6a11")
    assert client.stats == {"GET /Groups/{id}": 2}
    assert client.retried == 1


def test_collapse_ids_keeps_names_and_collapses_ids():
    assert collapse_ids("/Users/2819c223fa7c4d9e8f3b0b1a2c3d4e5f?x=1") == "/Users/{id}"
    assert collapse_ids("/folders/0/items") == "/folders/{id}/items"
    assert collapse_ids("/2/team/members/list/continue_v2") == "/2/team/members/list/continue_v2"
    assert collapse_ids("https://api.box.com/2.0/groups/9876") == "/2.0/groups/{id}"
    assert collapse_ids("/ServiceProviderConfig") == "/ServiceProviderConfig"


# -- paging ----------------------------------------------------------------------------------
def test_paginate_follows_tokens_until_none():
    pages = {None: ([1, 2], "m1"), "m1": ([3], "m2"), "m2": ([4, 5], None)}
    calls = []

    def fetch(token):
        calls.append(token)
        return pages[token]

    assert list(paginate(fetch)) == [1, 2, 3, 4, 5]
    assert calls == [None, "m1", "m2"]


def test_paginate_refuses_a_service_that_does_not_advance():
    def fetch(token):
        return [token], "same"

    with pytest.raises(ProvisioningError, match="did not advance"):
        list(paginate(fetch))


def test_paginate_with_start_index_tokens():
    users = list(range(1, 251))

    def fetch(start):
        page = users[start - 1 : start - 1 + 100]
        following = start + len(page)
        return page, (following if page and following <= len(users) else None)

    assert list(paginate(fetch, first_token=1)) == users


# -- TLS -------------------------------------------------------------------------------------
def test_tls_is_verified_by_default_and_ca_path_trusts_a_private_ca(tmp_path, sleep):
    cert, key = make_self_signed_cert(str(tmp_path))
    with ScriptedHttpServer(certfile=cert, keyfile=key) as tls_server:
        tls_server.script(Reply(200, {"secure": True}))

        with pytest.raises(ProvisioningError, match="TLS failure") as caught:
            HttpClient(tls_server.url, sleep=sleep).request("GET", "/")
        assert sleep.calls == []  # a certificate failure is permanent: not retried
        assert not isinstance(caught.value, AmbiguousRequestError)

        assert HttpClient(tls_server.url, ca_path=cert, sleep=sleep).request("GET", "/") == {"secure": True}
        assert len(tls_server.requests) == 1


def test_a_create_answered_503_waits_then_is_ambiguous_not_resent(server, sleep):
    """A 503 may come after the write landed (Box says so): the caller looks before resending."""
    server.script(Reply(503, {"detail": "busy"}, {"Retry-After": "2"}))
    client = client_for(server, sleep)
    with pytest.raises(AmbiguousRequestError):
        client.request("POST", "/Users", json={"userName": "jdoe"})
    assert len(server.requests) == 1, "not resent blindly"
    assert sleep.calls == [2.0]
    # an idempotent request is simply resent after the wait
    server.script(Reply(503, {"detail": "busy"}, {"Retry-After": "1"}), Reply(200, {"ok": True}))
    assert client.request("GET", "/Users") == {"ok": True}
    assert sleep.calls == [2.0, 1.0]
