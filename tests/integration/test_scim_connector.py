# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The SCIM connector against a real scim2-server on 127.0.0.1 (one fresh server per test)."""

from __future__ import annotations

import dataclasses
import json

import pytest
from support.http_faults import Reply, ScriptedHttpServer
from support.scim_server import ENTERPRISE_SCHEMA, service_provider_config

from ansible_collections.idsync.provisioning.plugins.module_utils._http import AmbiguousRequestError, HttpClient
from ansible_collections.idsync.provisioning.plugins.module_utils._model import (
    ProvisioningError,
    TargetGroup,
    TargetUser,
)
from ansible_collections.idsync.provisioning.plugins.module_utils.scim import ScimConnector, ScimPath

EMPLOYEE_NUMBER = f"{ENTERPRISE_SCHEMA}:employeeNumber"
WORK_EMAIL = 'emails[type eq "work"].value'


def connect(server, **options) -> ScimConnector:
    return ScimConnector(server.url, token=server.token, **options)


def patch_and_put_counts(connector: ScimConnector) -> tuple[int, int]:
    stats = connector.client.stats
    return (
        sum(n for key, n in stats.items() if key.startswith("PATCH ")),
        sum(n for key, n in stats.items() if key.startswith("PUT ")),
    )


# -- configuration ---------------------------------------------------------------------------
def test_service_provider_config_is_read_once_and_drives_capabilities(scim_server):
    connector = connect(scim_server, member_chunk=7, bulk_size=50)

    capabilities = connector.capabilities
    assert capabilities.create_batch == 50
    assert capabilities.member_chunk == 7
    assert (capabilities.user_link, capabilities.group_link) == ("target", "target")
    assert connector.patch_enabled and connector.etag_enabled
    connector.capabilities  # noqa: B018 - a second read must not ask the service again
    assert connector.client.stats == {"GET /ServiceProviderConfig": 1}


def test_links_kept_in_the_state_file_when_externalid_is_switched_off(scim_server):
    connector = connect(scim_server, link_attribute=False, group_external_id=False, use_bulk=False)

    assert connector.capabilities.user_link == "state"
    assert connector.capabilities.create_batch == 1
    user = connector.create_user({"userName": "nolink"}, "idsync:1", True)
    group = connector.create_group("nolink-group", "idsync:g")
    assert "externalId" not in scim_server.user_by_name("nolink")
    assert "externalId" not in scim_server.get(f"/Groups/{group.id}")
    assert user.link is None


def test_wrong_token_fails_with_the_service_message_and_no_secret(scim_server):
    connector = ScimConnector(scim_server.url, token="wrong-token-123")

    with pytest.raises(ProvisioningError) as caught:
        list(connector.list_users())
    assert caught.value.status == 401
    # scim2-server serves /ServiceProviderConfig without authentication (RFC 7644 allows it).
    assert caught.value.message.startswith("GET /Users: 401 Authorization failure")
    assert "wrong-token-123" not in caught.value.message


# -- users: read -----------------------------------------------------------------------------
def test_list_users_pages_through_250_users_100_at_a_time(scim_server):
    connector = connect(scim_server, page_size=100)
    created = connector.create_users([({"userName": f"user{n:03d}"}, f"idsync:{n}", True) for n in range(250)])
    assert all(isinstance(result, TargetUser) for result in created)

    users = list(connector.list_users())

    assert len(users) == 250
    assert {user.key for user in users} == {f"user{n:03d}" for n in range(250)}
    assert {user.id for user in users} == {user.id for user in created}
    assert connector.client.stats["GET /Users"] == 3


def test_paging_follows_what_the_server_returned_when_it_returns_fewer_than_asked(scim_server_factory):
    server = scim_server_factory(
        service_provider_config=service_provider_config(filter={"supported": True, "maxResults": 40})
    )
    for n in range(100):
        server.seed_user(f"capped{n}")
    connector = connect(server, page_size=100)
    # Pretend the service did not announce its cap: it then silently returns 40 of the 100 asked.
    connector._features = dataclasses.replace(connector.features, filter_max_results=None)
    assert connector.page_size == 100

    users = list(connector.list_users())

    assert len({user.id for user in users}) == 100
    assert connector.client.stats["GET /Users"] == 3  # 40 + 40 + 20


def test_announced_max_results_bounds_the_page_size(scim_server_factory):
    server = scim_server_factory(
        service_provider_config=service_provider_config(filter={"supported": True, "maxResults": 30})
    )
    for n in range(65):
        server.seed_user(f"u{n}")
    connector = connect(server, page_size=100)

    assert len(list(connector.list_users())) == 65
    assert connector.page_size == 30
    assert connector.client.stats["GET /Users"] == 3


def test_find_user_by_username_is_case_insensitive_and_escapes_the_filter(scim_server):
    alice = scim_server.seed_user("Alice.Smith", externalId="idsync:a")
    odd = scim_server.seed_user('we"ird\\name')
    connector = connect(scim_server)

    found = connector.find_user("alice.SMITH")
    assert found is not None and found.id == alice["id"] and found.key == "Alice.Smith"
    assert found.link == "idsync:a"
    assert found.enabled is True  # "active" absent means enabled
    assert connector.find_user('WE"IRD\\NAME').id == odd["id"]
    assert connector.find_user("nobody") is None
    assert connector.find_user_by_link("idsync:a").id == alice["id"]
    assert connector.find_user_by_link("IDSYNC:A") is None  # externalId is caseExact
    assert connector.get_user(alice["id"]).key == "Alice.Smith"
    assert connector.get_user("0" * 32) is None


# -- users: write ----------------------------------------------------------------------------
def test_create_user_nests_dotted_paths_and_extension_attributes(scim_server):
    connector = connect(scim_server)
    attrs = {
        "userName": "jdoe",
        "name.givenName": "John",
        "name.familyName": "Doe",
        WORK_EMAIL: "jdoe@example.com",
        EMPLOYEE_NUMBER: "42",
        "title": None,  # empty values are not sent
    }

    user = connector.create_user(attrs, "idsync:0001", enabled=False)

    stored = scim_server.get(f"/Users/{user.id}")
    assert stored["name"] == {"givenName": "John", "familyName": "Doe"}
    assert stored["emails"] == [{"type": "work", "value": "jdoe@example.com"}]
    assert stored[ENTERPRISE_SCHEMA] == {"employeeNumber": "42"}
    assert ENTERPRISE_SCHEMA in stored["schemas"]
    assert stored["externalId"] == "idsync:0001"
    assert stored["active"] is False
    assert "title" not in stored
    assert (user.key, user.enabled, user.link) == ("jdoe", False, "idsync:0001")
    for path, value in attrs.items():
        assert connector.read_path(user.resource, path) == value


def test_duplicate_username_error_carries_the_server_detail(scim_server):
    scim_server.seed_user("alice")
    connector = connect(scim_server)

    with pytest.raises(ProvisioningError) as caught:
        connector.create_user({"userName": "ALICE"}, "idsync:x", True)
    assert caught.value.status == 409
    assert caught.value.message == (
        "POST /Users: 409 One or more of the attribute values are already in use or are reserved (scimType uniqueness)"
    )
    assert len(scim_server.all("Users")) == 1


def test_update_patches_only_the_changed_paths_and_keeps_unmapped_attributes(scim_server):
    seeded = scim_server.seed_user(
        "jsmith",
        title="Boss",
        nickName="JJ",
        name={"givenName": "John", "familyName": "Smith"},
        emails=[{"type": "home", "value": "js@home.example"}],
        **{ENTERPRISE_SCHEMA: {"employeeNumber": "7", "department": "Sales"}},
    )
    connector = connect(scim_server)
    user = connector.find_user("jsmith")

    connector.update_user(
        user,
        {"name.givenName": "Jane", EMPLOYEE_NUMBER: "8", "nickName": None, WORK_EMAIL: "jane@example.com"},
        link="idsync:js",
    )

    stored = scim_server.get(f"/Users/{seeded['id']}")
    assert stored["name"] == {"givenName": "Jane", "familyName": "Smith"}
    assert stored[ENTERPRISE_SCHEMA] == {"employeeNumber": "8", "department": "Sales"}
    assert stored["title"] == "Boss"  # unmapped: untouched
    assert "nickName" not in stored
    # No work email yet: "add" (a "replace" on a filter matching nothing is a 400 noTarget).
    assert sorted((e["type"], e["value"]) for e in stored["emails"]) == [
        ("home", "js@home.example"),
        ("work", "jane@example.com"),
    ]
    assert stored["externalId"] == "idsync:js"
    assert patch_and_put_counts(connector) == (1, 0)

    connector.update_user(user, {WORK_EMAIL: "jane.smith@example.com"})  # now a match: "replace"

    emails = scim_server.get(f"/Users/{seeded['id']}")["emails"]
    assert sorted((e["type"], e["value"]) for e in emails) == [
        ("home", "js@home.example"),
        ("work", "jane.smith@example.com"),
    ]
    # The record follows the writes, so the engine's next comparison sees no change.
    assert connector.read_path(user.resource, "name.givenName") == "Jane"
    assert connector.read_path(user.resource, WORK_EMAIL) == "jane.smith@example.com"
    assert user.link == "idsync:js"


def test_successive_writes_on_one_user_follow_the_etag(scim_server):
    scim_server.seed_user("etag.user", title="A")
    connector = connect(scim_server)
    user = connector.find_user("etag.user")

    connector.update_user(user, {"title": "B"})
    connector.set_user_enabled(user, False)
    connector.update_user(user, {"title": "C"})

    stored = scim_server.user_by_name("etag.user")
    assert (stored["title"], stored["active"]) == ("C", False)
    assert user.resource["meta"]["version"] == stored["meta"]["version"]
    assert connector.client.stats["PATCH /Users/{id}"] == 3  # never a 412 and a retry


def test_a_concurrent_change_412_is_read_again_and_the_write_retried(scim_server):
    seeded = scim_server.seed_user("raced", title="A")
    connector = connect(scim_server)
    user = connector.find_user("raced")
    scim_server.patch(f"/Users/{seeded['id']}", {"op": "replace", "path": "nickName", "value": "other writer"})

    connector.update_user(user, {"title": "B"})

    stored = scim_server.get(f"/Users/{seeded['id']}")
    assert (stored["title"], stored["nickName"]) == ("B", "other writer")
    assert connector.client.stats["PATCH /Users/{id}"] == 2


def test_disable_enable_and_delete(scim_server):
    seeded = scim_server.seed_user("leaver", active=True)
    connector = connect(scim_server)
    user = connector.find_user("leaver")

    connector.set_user_enabled(user, False)
    assert scim_server.get(f"/Users/{seeded['id']}")["active"] is False
    assert connector.find_user("leaver").enabled is False

    connector.set_user_enabled(user, True)
    assert scim_server.get(f"/Users/{seeded['id']}")["active"] is True

    connector.delete_user(user)
    assert scim_server.user_by_name("leaver") is None
    connector.delete_user(user)  # already gone: the goal holds, no error
    assert connector.client.stats["DELETE /Users/{id}"] == 2


# -- creates after an ambiguous failure --------------------------------------------------------
class LosesFirstCreateAnswer(HttpClient):
    """Simulates an ambiguous failure of the first POST /Users: either after the service acted on
    it (the answer was lost) or before it reached the service."""

    def __init__(self, *args, reached_service: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.reached_service = reached_service
        self.failed_once = False

    def request(self, method, path, *args, **kwargs):
        if method == "POST" and path in ("/Users", "/Bulk") and not self.failed_once:
            self.failed_once = True
            if self.reached_service:
                super().request(method, path, *args, **kwargs)
            raise AmbiguousRequestError(f"{method} {path}: connection failed: reset by peer")
        return super().request(method, path, *args, **kwargs)


@pytest.mark.parametrize("reached_service", [True, False])
def test_create_after_an_ambiguous_failure_never_duplicates(scim_server, reached_service):
    client = LosesFirstCreateAnswer(
        scim_server.url,
        auth=(lambda h: h.update(Authorization=f"Bearer {scim_server.token}")),
        reached_service=reached_service,
    )
    connector = ScimConnector(scim_server.url, client=client)

    user = connector.create_user({"userName": "flaky"}, "idsync:flaky", True)

    stored = scim_server.all("Users")
    assert [u["userName"] for u in stored] == ["flaky"]
    assert user.id == stored[0]["id"]
    assert client.stats.get("GET /Users?filter") == 1  # looked before resending
    # Reached: the lost answer's POST, no resend. Not reached: only the resend went out.
    assert client.stats.get("POST /Users", 0) == 1


def test_an_ambiguous_create_does_not_take_over_someone_elses_account(scim_server):
    client = LosesFirstCreateAnswer(
        scim_server.url, auth=(lambda h: h.update(Authorization=f"Bearer {scim_server.token}")), reached_service=False
    )
    connector = ScimConnector(scim_server.url, client=client)
    scim_server.seed_user("taken", externalId="other-provisioner:9")

    with pytest.raises(ProvisioningError, match="exists now but is not ours"):
        connector.create_user({"userName": "taken"}, "idsync:taken", True)
    assert scim_server.user_by_name("taken")["externalId"] == "other-provisioner:9"


# -- bulk ------------------------------------------------------------------------------------
def test_bulk_create_maps_each_operation_result_back_to_its_item(scim_server):
    scim_server.seed_user("existing")
    connector = connect(scim_server, bulk_size=2)
    items = [
        ({"userName": "bulk1", "name.givenName": "One"}, "idsync:b1", True),
        ({"userName": "EXISTING"}, "idsync:b2", True),
        ({"userName": "bulk3", EMPLOYEE_NUMBER: "3"}, "idsync:b3", False),
        ({"name.givenName": "no userName"}, "idsync:b4", True),
        ({"userName": "bulk5"}, "idsync:b5", True),
    ]

    results = connector.create_users(items)

    assert [type(r).__name__ for r in results] == [
        "TargetUser",
        "ProvisioningError",
        "TargetUser",
        "ProvisioningError",
        "TargetUser",
    ]
    assert "409" in results[1].message and "uniqueness" in results[1].message and "EXISTING" in results[1].message
    assert "400" in results[3].message and "userName" in results[3].message
    assert connector.client.stats["POST /Bulk"] == 3  # 5 items, 2 per request
    assert "POST /Users" not in connector.client.stats
    for result, (attrs, link, enabled) in zip(results, items, strict=True):
        if isinstance(result, TargetUser):
            stored = scim_server.get(f"/Users/{result.id}")
            assert stored["userName"] == attrs["userName"] == result.key
            assert stored["externalId"] == link == result.link
            assert stored.get("active") is enabled is result.enabled
    assert scim_server.user_by_name("bulk3")[ENTERPRISE_SCHEMA] == {"employeeNumber": "3"}


def test_an_ambiguous_bulk_checks_each_item_before_creating(scim_server):
    client = LosesFirstCreateAnswer(
        scim_server.url, auth=(lambda h: h.update(Authorization=f"Bearer {scim_server.token}")), reached_service=True
    )
    connector = ScimConnector(scim_server.url, client=client)

    results = connector.create_users([({"userName": f"amb{n}"}, f"idsync:amb{n}", True) for n in range(3)])

    assert all(isinstance(r, TargetUser) for r in results)
    assert sorted(u["userName"] for u in scim_server.all("Users")) == ["amb0", "amb1", "amb2"]
    assert "POST /Users" not in client.stats  # all were found, none created twice


# -- groups ----------------------------------------------------------------------------------
def test_groups_create_rename_and_members_in_chunks(scim_server):
    connector = connect(scim_server, member_chunk=2)
    users = [connector.create_user({"userName": f"member{n}"}, f"idsync:m{n}", True) for n in range(5)]
    ids = [user.id for user in users]

    group = connector.create_group("Engineering", "idsync:g-eng")
    connector.update_group(group, name="Engineering Team")
    connector.change_members(group, add=ids, remove=[])

    stored = scim_server.get(f"/Groups/{group.id}")
    assert stored["displayName"] == "Engineering Team"
    assert stored["externalId"] == "idsync:g-eng"
    assert {m["value"] for m in stored["members"]} == set(ids)
    assert connector.client.stats["PATCH /Groups/{id}"] == 1 + 3  # rename + 5 members by 2
    assert group.members == set(ids)

    connector.change_members(group, add=[], remove=ids[:3])

    assert {m["value"] for m in scim_server.get(f"/Groups/{group.id}").get("members", [])} == set(ids[3:])
    assert connector.client.stats["PATCH /Groups/{id}"] == 4 + 2  # 3 removals by 2
    assert connector.group_members(group) == set(ids[3:])


def test_adds_and_removes_share_requests_within_the_chunk(scim_server):
    connector = connect(scim_server, member_chunk=2)
    a, b, c = (scim_server.seed_user(name)["id"] for name in "abc")
    seeded = scim_server.seed_group("Mixed", (c,))
    group = next(iter(connector.list_groups()))

    connector.change_members(group, add=[a, b], remove=[c])

    assert {m["value"] for m in scim_server.get(f"/Groups/{seeded['id']}")["members"]} == {a, b}
    assert connector.client.stats["PATCH /Groups/{id}"] == 2  # 3 ids, 2 per request


def test_list_groups_carries_the_members_the_listing_returns(scim_server):
    """scim2-server returns members in lists: no group is read on its own (issue 16)."""
    user = scim_server.seed_user("in-group")
    seeded = scim_server.seed_group("Sales", (user["id"],), externalId="idsync:g-sales")
    scim_server.seed_group("Empty")  # listed without a members attribute: it has none
    connector = connect(scim_server)

    groups = {group.name: group for group in connector.list_groups()}

    assert set(groups) == {"Sales", "Empty"}
    assert groups["Sales"].id == seeded["id"] and groups["Sales"].link == "idsync:g-sales"
    assert groups["Sales"].members == {user["id"]} and groups["Empty"].members == set()
    assert [g.members for g in connector.find_groups("sales")] == [{user["id"]}]
    assert not [key for key in connector.client.stats if key.startswith("GET /Groups/")]


def test_a_listing_without_members_leaves_them_unknown_and_each_group_is_read(scim_server):
    user = scim_server.seed_user("in-group")
    seeded = scim_server.seed_group("Sales", (user["id"],), externalId="idsync:g-sales")
    scim_server.seed_group("Empty")
    connector = connect(scim_server, exclude_members_in_list=True)  # asks for lists without members

    groups = {group.name: group for group in connector.list_groups()}

    assert groups["Sales"].members is None and "members" not in groups["Sales"].resource
    assert groups["Empty"].members is None
    assert connector.group_members(groups["Sales"]) == {user["id"]}
    assert connector.group_members(groups["Empty"]) == set()
    assert [g.id for g in connector.find_groups("sales")] == [seeded["id"]]
    assert connector.client.stats["GET /Groups/{id}"] == 2


def test_a_listing_where_no_group_has_members_reads_each_group(scim_server):
    """No listed group carries members: the service may leave them out of lists, so they are read."""
    seeded = scim_server.seed_group("Empty")
    connector = connect(scim_server)

    [group] = list(connector.list_groups())

    assert group.members is None
    assert connector.group_members(group) == set() and group.id == seeded["id"]


def test_delete_group_keeps_its_users(scim_server):
    user = scim_server.seed_user("survivor")
    seeded = scim_server.seed_group("Doomed", (user["id"],))
    connector = connect(scim_server)
    group = next(g for g in connector.list_groups() if g.id == seeded["id"])

    connector.delete_group(group)

    assert scim_server.all("Groups") == []
    assert scim_server.user_by_name("survivor")["id"] == user["id"]


# -- PUT when PATCH is not supported -----------------------------------------------------------
def test_put_fallback_when_the_service_does_not_support_patch(scim_server_factory):
    server = scim_server_factory(service_provider_config=service_provider_config(patch={"supported": False}))
    seeded = server.seed_user("putter", title="Boss", name={"givenName": "P", "familyName": "Utter"})
    member = server.seed_user("member")
    connector = connect(server)
    assert connector.patch_enabled is False
    user = connector.find_user("putter")

    connector.update_user(user, {"name.givenName": "Peter", EMPLOYEE_NUMBER: "5"}, link="idsync:put")
    connector.set_user_enabled(user, False)

    stored = server.get(f"/Users/{seeded['id']}")
    assert stored["name"] == {"givenName": "Peter", "familyName": "Utter"}
    assert stored["title"] == "Boss"
    assert stored[ENTERPRISE_SCHEMA] == {"employeeNumber": "5"}
    assert (stored["externalId"], stored["active"]) == ("idsync:put", False)

    group = connector.create_group("Putters", "idsync:g-put")
    connector.change_members(group, add=[seeded["id"], member["id"]], remove=[])
    listed = next(g for g in connector.list_groups() if g.id == group.id)  # listed without members
    connector.update_group(listed, name="Putters Renamed")
    connector.change_members(listed, add=[], remove=[member["id"]])

    stored_group = server.get(f"/Groups/{group.id}")
    assert stored_group["displayName"] == "Putters Renamed"
    assert [m["value"] for m in stored_group["members"]] == [seeded["id"]]  # the rename kept them
    patches, puts = patch_and_put_counts(connector)
    assert patches == 0 and puts == 5


# -- paths -----------------------------------------------------------------------------------
def test_read_path_understands_scim_paths():
    resource = {
        "userName": "x",
        "Name": {"givenName": "G"},
        "emails": [{"type": "home", "value": "h@x"}, {"type": "Work", "value": "w@x", "primary": True}],
        ENTERPRISE_SCHEMA: {"employeeNumber": "1", "manager": {"value": "m1"}},
    }
    connector = ScimConnector("http://127.0.0.1:9/v2")

    assert connector.read_path(resource, "name.givenName") == "G"  # attribute names are case-insensitive
    assert connector.read_path(resource, WORK_EMAIL) == "w@x"
    assert connector.read_path(resource, "emails[primary eq true].value") == "w@x"
    assert connector.read_path(resource, "emails.value") == ["h@x", "w@x"]
    assert connector.read_path(resource, EMPLOYEE_NUMBER) == "1"
    assert connector.read_path(resource, f"{ENTERPRISE_SCHEMA}:manager.value") == "m1"
    assert connector.read_path(resource, "urn:ietf:params:scim:schemas:core:2.0:User:userName") == "x"
    assert connector.read_path(resource, 'phoneNumbers[type eq "work"].value') is None
    with pytest.raises(ProvisioningError, match="unsupported"):
        ScimPath.parse('emails[type co "w"].value')


def test_a_service_without_readable_configuration_gets_conservative_defaults():
    with ScriptedHttpServer() as server:
        server.script(Reply(404, {"detail": "no such endpoint"}))
        connector = ScimConnector(server.url, token="t")

        assert connector.capabilities.create_batch == 1  # no bulk unless announced
        assert connector.patch_enabled and not connector.etag_enabled
        assert connector.features.announced is False
        assert [r.path for r in server.requests] == ["/ServiceProviderConfig"]


def test_remove_members_by_value_sends_the_value_form():
    # scim2-server refuses this form (400 invalidValue: "a remove operation carries no value");
    # the option is for services that do not understand filters in paths.
    with ScriptedHttpServer() as server:
        server.script(Reply(200, {"patch": {"supported": True}}), Reply(204))
        connector = ScimConnector(server.url, token="t", remove_members_by_value=True)
        group = TargetGroup(id="g1", name="G", members={"u1", "u2"})

        connector.change_members(group, add=["u3"], remove=["u1"])

        body = json.loads(server.requests[1].body)
        assert body["Operations"] == [
            {"op": "add", "path": "members", "value": [{"value": "u3"}]},
            {"op": "remove", "path": "members", "value": [{"value": "u1"}]},
        ]
        assert group.members == {"u2", "u3"}
