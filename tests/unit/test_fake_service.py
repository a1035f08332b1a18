# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fake-service base (tests/support/fake_service.py), through a tiny Box-like fake."""

from __future__ import annotations

import json
import time

import pytest
import requests
from support.fake_service import (
    CallableValidator,
    FakeError,
    FakeService,
    ManualClock,
    OpenAPIValidator,
    OutsideDescription,
    route,
)
from support.http_faults import make_self_signed_cert

from ansible_collections.idsync.provisioning.plugins.module_utils._http import (
    AmbiguousRequestError,
    HttpClient,
    bearer_auth,
)
from ansible_collections.idsync.provisioning.plugins.module_utils._model import ProvisioningError

# A small OpenAPI description in the style of Box's: the fake serves it under /2.0 on 127.0.0.1.
SPEC = {
    "openapi": "3.0.3",
    "info": {"title": "Things", "version": "1"},
    "servers": [{"url": "https://api.things.test/2.0"}],
    "components": {
        "schemas": {
            "Thing": {
                "type": "object",
                "required": ["id", "type", "name"],
                "properties": {
                    "id": {"type": "string"},
                    "type": {"type": "string", "enum": ["thing"]},
                    "name": {"type": "string"},
                    "kind": {"type": "string"},
                },
            }
        }
    },
    "paths": {
        "/things": {
            "get": {
                "parameters": [
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
                    {"name": "filter_term", "in": "query", "schema": {"type": "string"}},
                ],
                "responses": {"200": {"description": "a page"}},
            },
            "post": {
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["name"],
                                "properties": {
                                    "name": {"type": "string", "maxLength": 10},
                                    "kind": {"type": "string", "enum": ["small", "large"]},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "201": {
                        "description": "created",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}},
                    },
                    "default": {"description": "an error"},
                },
            },
        },
        "/things/{thing_id}": {
            "parameters": [{"name": "thing_id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "get": {
                "responses": {
                    "200": {
                        "description": "the thing",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}},
                    },
                    "default": {"description": "an error"},
                }
            },
            "delete": {"responses": {"204": {"description": "deleted"}, "default": {"description": "an error"}}},
        },
    },
}


class ThingFake(FakeService):
    """The example fake: Box-shaped errors, a token endpoint, things with unique names."""

    def __init__(self, **options):
        options.setdefault("validator", OpenAPIValidator(SPEC))
        super().__init__(**options)
        self.things: dict[str, dict] = {}
        self.next_id = 100
        self.corrupt_replies = False

    def state_dump(self):
        return {"things": self.things, "next_id": self.next_id}

    # Box: {"type": "error", "status", "code", "message", "request_id"}
    def error_response(self, status, code, message, **extra):
        call = self.current_call
        body = {"type": "error", "status": status, "code": code, "message": message, **extra}
        body["request_id"] = f"req{call.seq:06d}" if call else "none"
        return self.json(body, status)

    def unauthorized_response(self, reason, message):
        response = self.error_response(401, "expired_token" if reason == "expired" else "invalid_token", message)
        response.headers["WWW-Authenticate"] = f'Bearer realm="Service", error="invalid_token" ({reason})'
        return response

    def rate_limited_response(self, retry_after):
        return self.error_response(429, "rate_limit_exceeded", "Request rate limit exceeded", retry_after=retry_after)

    @route("POST", "/oauth2/token", auth=False, validate=False)
    def token(self, call):
        if call.body.get("client_secret") != "app-secret":
            raise FakeError(400, "invalid_client", "The client credentials are invalid")
        return {"access_token": self.issue_token(ttl=3600), "expires_in": 3600, "token_type": "bearer"}

    @route("GET", "/2.0/things")
    def list_things(self, call):
        limit = call.query.get("limit", 100, type=int)
        term = call.query.get("filter_term", "")
        entries = [t for t in self.things.values() if t["name"].startswith(term)][:limit]
        return {"entries": entries, "limit": limit}

    @route("POST", "/2.0/things")
    def create_thing(self, call):
        if any(t["name"].lower() == call.body["name"].lower() for t in self.things.values()):
            raise FakeError(409, "item_name_in_use", "Item with the same name already exists", context_info={})
        self.next_id += 1
        thing = {"id": str(self.next_id), "type": "thing", "name": call.body["name"]}
        if "kind" in call.body:
            thing["kind"] = call.body["kind"]
        self.things[thing["id"]] = thing
        return 201, thing

    @route("GET", "/2.0/things/{thing_id}")
    def get_thing(self, call, thing_id):
        if thing_id not in self.things:
            raise FakeError(404, "not_found", "Not Found")
        thing = dict(self.things[thing_id])
        if self.corrupt_replies:
            thing["id"] = int(thing["id"])  # not what the description promises
        return thing

    @route("DELETE", "/2.0/things/{thing_id}")
    def delete_thing(self, call, thing_id):
        if self.things.pop(thing_id, None) is None:
            raise FakeError(404, "not_found", "Not Found")

    @route("GET", "/2.0/things/{thing_id}/history")
    def history(self, call, thing_id):  # served by the fake, missing from the description
        return {"entries": []}

    @route("GET", "/2.0/crash")
    def crash(self, call):
        raise KeyError("a bug in the fake")


@pytest.fixture
def clock():
    return ManualClock()


@pytest.fixture
def fake(clock):
    with ThingFake(clock=clock) as running:
        yield running


def bearer(fake, **options) -> dict:
    return {"Authorization": f"Bearer {fake.issue_token(**options)}"}


def client(fake, token=None, **options) -> HttpClient:
    token = token or fake.issue_token()
    options.setdefault("timeout", (2, 5))
    return HttpClient(fake.url + "/2.0", auth=bearer_auth(token), secrets=[token], **options)


# -- routing -----------------------------------------------------------------------------------
def test_routes_take_path_parameters_query_and_parsed_body(fake):
    auth = bearer(fake)
    created = requests.post(f"{fake.url}/2.0/things", json={"name": "alpha", "kind": "small"}, headers=auth)
    assert created.status_code == 201
    thing_id = created.json()["id"]

    got = requests.get(f"{fake.url}/2.0/things/{thing_id}", headers=auth)
    assert got.json() == {"id": thing_id, "type": "thing", "name": "alpha", "kind": "small"}
    listed = requests.get(f"{fake.url}/2.0/things", params={"limit": "5", "filter_term": "al"}, headers=auth)
    assert [t["name"] for t in listed.json()["entries"]] == ["alpha"]
    assert requests.delete(f"{fake.url}/2.0/things/{thing_id}", headers=auth).status_code == 204
    assert requests.get(f"{fake.url}/2.0/things/{thing_id}", headers=auth).status_code == 404

    post, get = fake.requests[0], fake.requests[1]
    assert (post.route, post.status, post.write) == ("/2.0/things", 201, True)
    assert post.body == {"name": "alpha", "kind": "small"}
    assert (get.route, get.path, get.write) == ("/2.0/things/{thing_id}", f"/2.0/things/{thing_id}", False)
    assert fake.requests[2].query == {"limit": "5", "filter_term": "al"}
    assert fake.validation_errors == []


def test_an_unknown_route_is_404_and_recorded_as_outside_the_description(fake):
    answer = requests.get(f"{fake.url}/2.0/gadgets", headers=bearer(fake))
    wrong_method = requests.patch(f"{fake.url}/2.0/things", json={}, headers=bearer(fake))

    assert answer.status_code == 404 and answer.json()["type"] == "error"
    assert wrong_method.status_code == 404
    assert [(i.kind, i.method, i.path) for i in fake.validation_errors] == [
        ("outside", "GET", "/2.0/gadgets"),
        ("outside", "PATCH", "/2.0/things"),
    ]
    assert fake.count_by_route() == {"GET /2.0/gadgets": 1, "PATCH /2.0/things": 1}


# -- authentication --------------------------------------------------------------------------
def test_tokens_are_checked_and_expire_mid_run(fake, clock):
    url = f"{fake.url}/2.0/things"
    assert requests.get(url).status_code == 401
    assert requests.get(url, headers={"Authorization": "Bearer forged"}).json()["code"] == "invalid_token"

    issued = requests.post(f"{fake.url}/oauth2/token", data={"client_id": "app", "client_secret": "app-secret"})
    token = issued.json()["access_token"]
    assert requests.get(url, headers={"Authorization": f"Bearer {token}"}).status_code == 200

    clock.advance(3601)  # the token outlives its hour during the run
    expired = requests.get(url, headers={"Authorization": f"Bearer {token}"})
    assert expired.status_code == 401
    assert expired.json()["code"] == "expired_token"
    assert "invalid_token" in expired.headers["WWW-Authenticate"]

    counted = bearer(fake, max_uses=2)
    assert [requests.get(url, headers=counted).status_code for _attempt in range(3)] == [200, 200, 401]
    revoked = bearer(fake)
    fake.expire_token(revoked["Authorization"].split()[1])
    assert requests.get(url, headers=revoked).json()["code"] == "expired_token"


# -- error bodies ----------------------------------------------------------------------------
def test_a_fake_error_is_answered_with_the_vendor_body_that_http_client_reads(fake):
    http = client(fake)
    http.request("POST", "/things", json={"name": "alpha"})

    with pytest.raises(ProvisioningError) as raised:
        http.request("POST", "/things", json={"name": "ALPHA"})

    assert raised.value.status == 409
    assert "item_name_in_use: Item with the same name already exists" in raised.value.message
    assert raised.value.details == {
        "type": "error",
        "status": 409,
        "code": "item_name_in_use",
        "message": "Item with the same name already exists",
        "context_info": {},
        "request_id": "req000002",
    }


def test_a_crashing_handler_answers_500_and_is_recorded(fake):
    assert requests.get(f"{fake.url}/2.0/crash", headers=bearer(fake)).status_code == 500
    assert [i.kind for i in fake.validation_errors] == ["outside", "fake"]  # /crash is not described either
    assert "KeyError" in fake.validation_errors[1].message


# -- latency, rate limit, faults -------------------------------------------------------------
def test_latency_delays_every_request(fake):
    fake.latency = 0.2
    started = time.monotonic()
    assert requests.get(f"{fake.url}/2.0/things", headers=bearer(fake)).status_code == 200
    assert time.monotonic() - started >= 0.2


def test_429_with_retry_after_is_honoured_by_http_client(fake, clock):
    fake.rate_limit(2, per=10.0)  # a token every 5 s of the fake's clock
    http = client(fake, sleep=clock.advance)

    for _attempt in range(3):
        http.request("GET", "/things")

    assert [e.status for e in fake.requests] == [200, 200, 429, 200]
    assert clock.slept == [5.0]  # the client waited exactly what Retry-After said, on the fake's clock
    limited = fake.requests[2]
    assert limited.fault == "rate_limit"
    assert json.loads(limited.reply)["retry_after"] == 5


def test_a_rate_limit_can_be_scoped_and_fixed(fake):
    fake.rate_limit(1, per=60.0, method="POST", path="/2.0/things", retry_after=0.5)
    auth = bearer(fake)
    assert requests.post(f"{fake.url}/2.0/things", json={"name": "a"}, headers=auth).status_code == 201
    limited = requests.post(f"{fake.url}/2.0/things", json={"name": "b"}, headers=auth)
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "0.5")
    assert requests.get(f"{fake.url}/2.0/things", headers=auth).status_code == 200
    fake.rate_limit(None)
    assert requests.post(f"{fake.url}/2.0/things", json={"name": "b"}, headers=auth).status_code == 201


def test_status_faults_hit_the_next_matching_requests_only(fake):
    auth = bearer(fake)
    fault = fake.faults.status("GET", "/2.0/things/{thing_id}", 503, times=2, headers={"Retry-After": "1"})
    thing = requests.post(f"{fake.url}/2.0/things", json={"name": "a"}, headers=auth).json()

    answers = [requests.get(f"{fake.url}/2.0/things/{thing['id']}", headers=auth) for _attempt in range(3)]

    assert [a.status_code for a in answers] == [503, 503, 200]
    assert answers[0].json()["code"] == "unavailable" and answers[0].headers["Retry-After"] == "1"
    assert fault.hits == 2
    assert [e.fault for e in fake.requests] == [None, "status", "status", None]


def test_a_reset_read_is_retried_by_http_client(fake):
    fake.faults.reset("GET", "/2.0/things")
    assert client(fake, sleep=lambda s: None).request("GET", "/things")["entries"] == []
    assert [(e.fault, e.status) for e in fake.requests] == [("reset", None), (None, 200)]


def test_the_ambiguous_write_is_applied_then_the_connection_dropped(fake):
    fake.faults.drop_after_write("POST", "/2.0/things")
    http = client(fake, sleep=lambda s: None)

    with pytest.raises(AmbiguousRequestError):
        http.request("POST", "/things", json={"name": "alpha"})

    assert [t["name"] for t in fake.things.values()] == ["alpha"]  # the write landed
    assert len(fake.requests) == 1  # and the client did not blindly resend the create
    assert (fake.requests[0].fault, fake.requests[0].status) == ("drop_after_write", None)
    with pytest.raises(ProvisioningError) as again:
        http.request("POST", "/things", json={"name": "alpha"})
    assert again.value.status == 409


def test_a_delay_beyond_the_client_timeout(fake):
    fake.faults.delay("GET", "/2.0/things", 1.0)
    http = client(fake, timeout=(2, 0.3), retries=0)
    started = time.monotonic()
    with pytest.raises(ProvisioningError, match="read timeout"):
        http.request("GET", "/things")
    assert time.monotonic() - started < 0.9


def test_random_faults_are_reproducible_from_the_seed():
    def run(seed):
        with ThingFake() as fake:
            chance = fake.faults.random(seed, status=0.3, reset=0.2, method="GET", status_code=500)
            auth = bearer(fake)
            outcomes = []
            for _attempt in range(20):
                try:
                    outcomes.append(requests.get(f"{fake.url}/2.0/things", headers=auth, timeout=2).status_code)
                except requests.ConnectionError:
                    outcomes.append("reset")
            return outcomes, [kind for _seq, _method, _path, kind in chance.injected]

    first, second = run(7), run(7)
    assert first == second
    outcomes, kinds = first
    assert {"status", "reset"} <= set(kinds) and 500 in outcomes and 200 in outcomes
    assert outcomes.count("reset") == kinds.count("reset")
    with ThingFake() as fake, pytest.raises(ValueError):
        fake.faults.random(1, status=0.8, reset=0.5)


# -- the request log -------------------------------------------------------------------------
def test_the_request_log_masks_secrets_and_answers_questions(fake):
    auth = bearer(fake)
    requests.post(f"{fake.url}/oauth2/token", data={"client_id": "app", "client_secret": "app-secret"})
    for name in ("a", "b"):
        requests.post(f"{fake.url}/2.0/things", json={"name": name}, headers=auth)
    requests.get(f"{fake.url}/2.0/things/101", headers=auth)
    requests.get(f"{fake.url}/2.0/things/102", headers=auth)
    requests.get(f"{fake.url}/2.0/things/102/history", headers=auth)

    token_request = fake.requests[0]
    assert token_request.body == {"client_id": "app", "client_secret": "***"}
    assert fake.requests[1].headers["Authorization"] == "Bearer ***"
    assert "app-secret" not in repr(fake.requests) and auth["Authorization"].split()[1] not in repr(fake.requests)

    assert [e.path for e in fake.requests_matching("GET", "/2.0/things/{thing_id}")] == [
        "/2.0/things/101",
        "/2.0/things/102",
    ]
    assert [e.seq for e in fake.requests_matching("GET", "/2.0/things/102")] == [5]
    assert len(fake.requests_matching(path="/2.0/things")) == 2
    assert fake.count_by_route() == {
        "POST /oauth2/token": 1,
        "POST /2.0/things": 2,
        "GET /2.0/things/{thing_id}": 2,
        "GET /2.0/things/{thing_id}/history": 1,
    }
    assert [e.route for e in fake.writes()] == ["/oauth2/token", "/2.0/things", "/2.0/things"]
    # served by the fake, but not in the description: answered, and recorded
    assert [(i.kind, i.path) for i in fake.validation_errors] == [("outside", "/2.0/things/102/history")]
    fake.clear_log()
    assert fake.requests == [] and fake.validation_errors == []


def test_snapshots_prove_no_write(fake):
    auth = bearer(fake)
    requests.post(f"{fake.url}/2.0/things", json={"name": "a"}, headers=auth)
    before = fake.snapshot()

    requests.get(f"{fake.url}/2.0/things", headers=auth)
    requests.post(f"{fake.url}/2.0/things", json={"name": "A"}, headers=auth)  # refused: 409
    assert fake.snapshot() == before
    fake.assert_unchanged(before)

    requests.post(f"{fake.url}/2.0/things", json={"name": "b"}, headers=auth)
    assert fake.snapshot() != before
    with pytest.raises(AssertionError, match=r'\+\s*"name": "b"'):
        fake.assert_unchanged(before)


# -- validation ------------------------------------------------------------------------------
def test_openapi_validation_accepts_a_good_request_and_rejects_a_bad_one(fake):
    auth = bearer(fake)
    good = requests.post(f"{fake.url}/2.0/things", json={"name": "alpha", "kind": "large"}, headers=auth)
    assert good.status_code == 201 and fake.validation_errors == []
    before = fake.snapshot()

    too_long = requests.post(f"{fake.url}/2.0/things", json={"name": "x" * 11, "kind": "huge"}, headers=auth)
    missing = requests.post(f"{fake.url}/2.0/things", json={"kind": "small"}, headers=auth)
    bad_query = requests.get(f"{fake.url}/2.0/things", params={"limit": "1000"}, headers=auth)

    assert [a.status_code for a in (too_long, missing, bad_query)] == [400, 400, 400]
    assert too_long.json()["type"] == "error" and too_long.json()["code"] == "bad_request"
    fake.assert_unchanged(before)  # the handler never saw them
    messages = [i.message for i in fake.validation_errors]
    assert all(i.kind == "request" for i in fake.validation_errors)
    assert "name: 'xxxxxxxxxxx' is too long" in messages[0] and "kind: 'huge' is not one of" in messages[0]
    assert "'name' is a required property" in messages[1]
    assert "limit" in messages[2] and "maximum of 100" in messages[2]
    assert fake.requests[1].validation_errors == [f"request: {messages[0]}"]
    with pytest.raises(AssertionError, match="is too long"):
        fake.assert_valid()


def test_openapi_validation_from_a_file_checks_responses_too(tmp_path):
    description = tmp_path / "openapi.json"
    description.write_text(json.dumps(SPEC))
    with ThingFake(validator=OpenAPIValidator(description)) as fake:
        auth = bearer(fake)
        thing = requests.post(f"{fake.url}/2.0/things", json={"name": "a"}, headers=auth).json()
        requests.post(f"{fake.url}/2.0/things", json={"name": 5}, headers=auth)
        fake.corrupt_replies = True
        requests.get(f"{fake.url}/2.0/things/{thing['id']}", headers=auth)

    assert [(i.kind, i.method) for i in fake.validation_errors] == [("request", "POST"), ("response", "GET")]
    assert "5 is not of type 'string'" in fake.validation_errors[0].message
    assert "id: 100 is not of type 'string'".replace("100", thing["id"]) in fake.validation_errors[1].message


class StandInStruct:
    """Plays a Stone struct validator (dropbox.team.*.arg_type): ``validate`` raises on bad input."""

    def __init__(self, required):
        self.required = required

    def validate(self, value):
        missing = [name for name in self.required if name not in (value or {})]
        if missing:
            raise ValueError(f"missing required field {missing[0]!r}")


class StandInRoute:
    def __init__(self, arg_type):
        self.arg_type = arg_type


STAND_IN_ROUTES = {"team/things/add": StandInRoute(StandInStruct(["name"]))}


class DropboxLikeFake(ThingFake):
    @route("POST", "/2/team/things/add", name="team/things/add")
    def add(self, call):
        return self.json(None)  # a Void result is written null

    @route("POST", "/2/team/things/unknown", name="team/things/unknown")
    def unknown(self, call):
        return self.json(None)


def test_a_callable_validator_gets_the_route_name_and_the_parsed_body():
    seen = []

    def check_request(name, body):
        seen.append((name, body))
        if name not in STAND_IN_ROUTES:
            raise OutsideDescription(f"no route {name}")
        STAND_IN_ROUTES[name].arg_type.validate(body)

    with DropboxLikeFake(validator=CallableValidator(check_request)) as fake:
        auth = bearer(fake)
        good = requests.post(f"{fake.url}/2/team/things/add", json={"name": "a"}, headers=auth)
        bad = requests.post(f"{fake.url}/2/team/things/add", json={"nom": "a"}, headers=auth)
        requests.post(f"{fake.url}/2/team/things/unknown", json={}, headers=auth)

    assert (good.status_code, good.json()) == (200, None)
    assert bad.status_code == 400
    assert seen == [("team/things/add", {"name": "a"}), ("team/things/add", {"nom": "a"}), ("team/things/unknown", {})]
    assert [(i.kind, i.message) for i in fake.validation_errors] == [
        ("request", "ValueError: missing required field 'name'"),
        ("outside", "no route team/things/unknown"),
    ]


# -- lifecycle -------------------------------------------------------------------------------
def test_https_with_a_given_certificate(tmp_path):
    cert, key = make_self_signed_cert(str(tmp_path))
    with ThingFake(certfile=cert, keyfile=key) as fake:
        assert fake.url.startswith("https://127.0.0.1:")
        answer = requests.get(f"{fake.url}/2.0/things", headers=bearer(fake), verify=cert, timeout=5)
    assert answer.status_code == 200


thing_fake = ThingFake.fixture(check_validation=True)


def test_the_fixture_factory_runs_one_fake_per_test(thing_fake):
    assert requests.get(f"{thing_fake.url}/2.0/things", headers=bearer(thing_fake)).json() == {
        "entries": [],
        "limit": 100,
    }
    assert thing_fake.count_by_route() == {"GET /2.0/things": 1}
