# -*- coding: utf-8 -*-
"""The fault-injecting proxy (tests/support/fault_proxy.py) in front of a scripted server: each
fault kind as a client sees it, whether the request reached the service, skip/times, the seeded
random mode, the control endpoint, and the HTTP layer's answer to each through it."""

from __future__ import annotations

import json

import pytest
import requests
from support.fault_proxy import KINDS, FaultProxy
from support.http_faults import Reply, ScriptedHttpServer

from ansible_collections.idsync.provisioning.plugins.module_utils._http import AmbiguousRequestError, HttpClient


@pytest.fixture
def upstream():
    with ScriptedHttpServer() as server:
        server.script(*[Reply(200, {"n": i}) for i in range(40)])
        yield server


@pytest.fixture
def proxy(upstream):
    with FaultProxy(upstream.url + "/v2") as running:
        yield running


def test_the_url_keeps_the_upstream_path_and_requests_are_forwarded(proxy, upstream):
    assert proxy.url.startswith("http://127.0.0.1:") and proxy.url.endswith("/v2")
    answer = requests.get(proxy.url + "/Users?startIndex=3", timeout=5)
    assert answer.json() == {"n": 0}
    assert [(r.method, r.path) for r in upstream.requests] == [("GET", "/v2/Users?startIndex=3")]
    [seen] = proxy.seen
    assert (seen.forwarded, seen.status, seen.fault, seen.params) == (True, 200, None, {"startIndex": ["3"]})


@pytest.mark.parametrize("kind", ["429", "503", "500"])
def test_status_faults_answer_without_forwarding(proxy, upstream, kind):
    proxy.inject(kind, "GET", r"/Users$", label="page", retry_after="7")
    answer = requests.get(proxy.url + "/Users", timeout=5)
    assert answer.status_code == int(kind)
    assert answer.headers.get("Retry-After") == ("7" if kind != "500" else None)
    assert upstream.requests == []
    assert proxy.summary() == {("page", kind): 1}
    assert requests.get(proxy.url + "/Users", timeout=5).status_code == 200  # times=1


def test_a_reset_is_a_connection_error_and_never_reaches_the_service(proxy, upstream):
    proxy.inject("reset", "POST")
    with pytest.raises(requests.ConnectionError):
        requests.post(proxy.url + "/Users", json={"userName": "a"}, timeout=5)
    assert upstream.requests == [] and proxy.forwarded() == []


def test_a_timeout_holds_past_the_read_timeout_without_forwarding(proxy, upstream):
    proxy.inject("timeout", "GET", seconds=1.0)
    with pytest.raises(requests.ReadTimeout):
        requests.get(proxy.url + "/Users", timeout=(2, 0.3))
    assert upstream.requests == []


def test_slow_answers_late_but_answers(proxy, upstream):
    proxy.inject("slow", "GET", seconds=0.2)
    assert requests.get(proxy.url + "/Users", timeout=5).json() == {"n": 0}
    assert proxy.seen[0].fault == "slow" and proxy.seen[0].forwarded


def test_lost_applies_the_write_then_drops_the_answer(proxy, upstream):
    proxy.inject("lost", "POST", r"/Users$", label="create")
    with pytest.raises(requests.ConnectionError):
        requests.post(proxy.url + "/Users", json={"userName": "a"}, timeout=5)
    assert [r.method for r in upstream.requests] == ["POST"]
    assert [s.path for s in proxy.forwarded("POST")] == ["/v2/Users"]
    assert proxy.summary() == {("create", "lost"): 1}


def test_skip_and_times_aim_at_one_page_of_a_listing(proxy, upstream):
    proxy.inject("500", "GET", r"/Users$", when=lambda s: "startIndex" in s.params, skip=1, times=2)
    statuses = [requests.get(proxy.url + f"/Users?startIndex={i}", timeout=5).status_code for i in (1, 3, 5, 7)]
    assert statuses == [200, 500, 500, 200]
    assert requests.get(proxy.url + "/Users", timeout=5).status_code == 200  # no startIndex: not aimed at


def test_the_original_fail_form_fails_every_matching_request(proxy, upstream):
    fault = proxy.fail("GET", r"/Users$", status=502, body={"detail": "down"})
    for _attempt in range(3):
        answer = requests.get(proxy.url + "/Users", timeout=5)
        assert (answer.status_code, answer.json()) == (502, {"detail": "down"})
    assert fault.hits == 3 and proxy.writes() == [] and upstream.requests == []


def draws(upstream_url, seed):
    with FaultProxy(upstream_url) as proxy:
        proxy.random_faults(seed, 0.5, ("429", "503", "500"), "GET", label="any")
        return [requests.get(proxy.url + "/x", timeout=5).status_code for _attempt in range(12)]


def test_random_faults_are_reproducible_from_the_seed(upstream):
    first, again, other = draws(upstream.url, 7), draws(upstream.url, 7), draws(upstream.url, 8)
    assert first == again
    assert first != other
    assert {429, 503, 500} & set(first) and 200 in first


def test_disarm_from_the_control_endpoint_stops_every_fault(proxy, upstream):
    proxy.inject("500", "GET", times=None)
    assert requests.get(proxy.url + "/Users", timeout=5).status_code == 500
    assert requests.post(proxy.control_url + "/disarm", timeout=5).json()["armed"] is False
    assert requests.get(proxy.url + "/Users", timeout=5).status_code == 200
    assert requests.post(proxy.control_url + "/nonsense", timeout=5).status_code == 404
    assert all(not s.path.startswith("/__fault_proxy__") for s in proxy.seen)


def test_unknown_kinds_are_refused(proxy):
    with pytest.raises(ValueError):
        proxy.inject("418")
    with pytest.raises(ValueError):
        proxy.random_faults(1, 0.5, ("teapot",))
    assert set(KINDS) == {"429", "503", "500", "reset", "timeout", "slow", "lost"}


# -- the HTTP layer through the proxy --------------------------------------------------------------
def client(proxy, waits):
    return HttpClient(proxy.url, timeout=(2, 0.5), sleep=waits.append, backoff=0.01)


@pytest.mark.parametrize("kind", ["429", "503", "500", "reset", "timeout", "lost"])
def test_a_read_is_retried_through_every_fault(proxy, upstream, kind):
    waits = []
    proxy.inject(kind, "GET", seconds=1.0)
    with client(proxy, waits) as http:
        assert http.request("GET", "/Users") in ({"n": 0}, {"n": 1})  # "lost" consumed one answer
    assert len(waits) == 1
    assert waits[0] == (1.0 if kind in ("429", "503") else 0.01)  # Retry-After honoured


@pytest.mark.parametrize("kind", ["500", "503", "reset", "timeout", "lost"])
def test_a_create_is_never_resent_blindly(proxy, upstream, kind):
    proxy.inject(kind, "POST", seconds=1.0)
    with client(proxy, []) as http, pytest.raises(AmbiguousRequestError):
        http.request("POST", "/Users", json={"userName": "a"})
    assert len(proxy.seen) == 1  # one attempt: the caller looks before creating again
    assert len(upstream.requests) == (1 if kind == "lost" else 0)


def test_a_create_answered_429_is_resent(proxy, upstream):
    proxy.inject("429", "POST")
    with client(proxy, []) as http:
        assert http.request("POST", "/Users", json={"userName": "a"}) == {"n": 0}
    assert [s.fault for s in proxy.seen] == ["429", None]


def test_rewrite_changes_what_is_forwarded_not_what_is_logged(upstream):
    def smaller_pages(path, body):
        return path.replace("limit=1000", "limit=2"), body.replace(b'"limit": 1000', b'"limit": 2')

    with FaultProxy(upstream.url, rewrite=smaller_pages) as proxy:
        requests.post(proxy.url + "/list?limit=1000", json={"limit": 1000}, timeout=5)
    [sent] = upstream.requests
    assert (sent.path, json.loads(sent.body)) == ("/list?limit=2", {"limit": 2})
    assert proxy.seen[0].query == "limit=1000"
