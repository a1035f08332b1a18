# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""scim_user, scim_user_info, scim_group, scim_group_info run by ansible-playbook against a real scim2-server.

Every scenario checks the server's state by value, read back through the fixture's own HTTP
session (not through the code under test). Every writing scenario has a check-mode twin
(``twin``): the same play run with ``--check`` first must report the same ``changed`` (and the
same failure) as the real run, and leave a full dump of /Users and /Groups byte-for-byte as it was.
"""

from __future__ import annotations

import base64
import json
import secrets
from types import SimpleNamespace

import yaml
from support.fault_proxy import FaultProxy
from support.http_faults import Reply, ScriptedHttpServer
from support.playbook import run_playbook
from support.scim_server import ENTERPRISE_SCHEMA

EMPLOYEE_NUMBER = f"{ENTERPRISE_SCHEMA}:employeeNumber"
CONN = {"url": "{{ scim_url }}", "token": "{{ scim_token }}"}
FQ = "idsync.provisioning."


# -- helpers ------------------------------------------------------------------------------------


def dump(server) -> str:
    """Every user and group, as the service stores them, as one JSON text."""
    state = {kind: sorted(server.all(kind), key=lambda r: r["id"]) for kind in ("Users", "Groups")}
    return json.dumps(state, sort_keys=True)


def task(module: str, conn: bool = True, **args) -> dict:
    return {FQ + module: dict(CONN, **args) if conn else args}


def play(tmp_path, server, tasks, check=False, diff=False, env=None, verbosity=0, play_extra=None):
    """Run ``tasks`` in one play; each result is registered (failures too) and returned in order."""
    body = []
    for index, item in enumerate(tasks):
        body.append(dict(item, register=f"r{index}", ignore_errors=True))
    record = "{{ {" + ", ".join(f"'r{i}': r{i}" for i in range(len(tasks))) + "} | to_json }}"
    body.append({"ansible.builtin.copy": {"content": record, "dest": "{{ record }}"}, "check_mode": False})
    playbook = [dict({"hosts": "localhost", "gather_facts": False, "tasks": body}, **(play_extra or {}))]
    result = run_playbook(
        tmp_path,
        yaml.safe_dump(playbook, sort_keys=False),
        extra_vars={"scim_url": server.url, "scim_token": server.token},
        env=env,
        check=check,
        diff=diff,
        verbosity=verbosity,
    )
    assert result.output, result.text
    results = [result.output[f"r{i}"] for i in range(len(tasks))]
    return results, result


def twin(tmp_path, server, tasks, **options):
    """The play in check mode (no write, same verdict), then for real; returns the real results."""
    before = dump(server)
    previews, _unused = play(tmp_path / "check", server, tasks, check=True, **options)
    assert dump(server) == before, "check mode wrote to the service"
    results, _unused = play(tmp_path / "real", server, tasks, **options)
    assert [r.get("changed") for r in previews] == [r.get("changed") for r in results]
    assert [bool(r.get("failed")) for r in previews] == [bool(r.get("failed")) for r in results]
    for preview, real in zip(previews, results, strict=True):
        if "diff" in real:
            assert preview["diff"] == real["diff"]
        if real.get("failed"):
            assert preview["msg"] == real["msg"]
    return results


def one(tmp_path, server, item, **options):
    """A single task, with its check-mode twin."""
    return twin(tmp_path, server, [item], **options)[0]


def ok(result) -> dict:
    assert not result.get("failed"), result.get("msg")
    return result


def member_ids(server, group_id) -> set[str]:
    return {m["value"] for m in server.get(f"/Groups/{group_id}").get("members", [])}


def seed_users(server, *names):
    return {name: server.seed_user(name, displayName=name.title())["id"] for name in names}


# -- users --------------------------------------------------------------------------------------

NEW_USER = task(
    "scim_user",
    user_name="jdoe",
    attributes={
        "name.givenName": "Jane",
        "name.familyName": "Doe",
        "displayName": "Jane Doe",
        "emails": [{"value": "jane.doe@example.com", "type": "work", "primary": True}],
        EMPLOYEE_NUMBER: "4711",
    },
    external_id="idsync:41b2",
)


def test_u2_user_created_with_its_attributes_then_unchanged(tmp_path, scim_server):
    created = ok(one(tmp_path / "1", scim_server, NEW_USER, diff=True))

    stored = scim_server.user_by_name("jdoe")
    assert created["changed"] is True and created["changes"]["created"] is True
    assert stored["name"] == {"givenName": "Jane", "familyName": "Doe"}
    assert stored["displayName"] == "Jane Doe"
    assert stored["emails"] == [{"value": "jane.doe@example.com", "type": "work", "primary": True}]
    assert stored[ENTERPRISE_SCHEMA]["employeeNumber"] == "4711"
    assert stored["externalId"] == "idsync:41b2" and stored["active"] is True
    assert created["user"]["id"] == stored["id"] and created["user"]["key"] == "jdoe"
    assert created["diff"]["before"] == {}
    assert created["diff"]["after"]["name.givenName"] == "Jane" and created["diff"]["after"]["enabled"] is True

    again = ok(one(tmp_path / "2", scim_server, NEW_USER, diff=True))
    assert again["changed"] is False and again["changes"] == {}
    assert again["diff"]["before"] == again["diff"]["after"]
    assert len(scim_server.all("Users")) == 1


def test_u1_u3_update_writes_only_the_given_path_and_finds_the_key_case_insensitively(tmp_path, scim_server):
    seeded = scim_server.seed_user(
        "jdoe", name={"givenName": "Jane", "familyName": "Doe"}, title="Engineer", displayName="Jane Doe"
    )

    result = ok(
        one(
            tmp_path / "1",
            scim_server,
            task("scim_user", user_name="JDOE", attributes={"name.givenName": "Janet"}),
            diff=True,
        )
    )

    stored = scim_server.user_by_name("jdoe")
    assert result["changed"] is True and result["changes"] == {"name.givenName": "Janet"}
    assert stored["id"] == seeded["id"] and len(scim_server.all("Users")) == 1
    assert stored["name"] == {"givenName": "Janet", "familyName": "Doe"}
    assert stored["title"] == "Engineer" and stored["displayName"] == "Jane Doe"  # unmapped: left alone
    assert "externalId" not in stored  # not given: not touched
    assert result["diff"]["before"] == {"key": "jdoe", "name.givenName": "Jane"}
    assert result["diff"]["after"] == {"key": "jdoe", "name.givenName": "Janet"}

    again = ok(
        one(tmp_path / "2", scim_server, task("scim_user", user_name="jdoe", attributes={"name.givenName": "Janet"}))
    )
    assert again["changed"] is False


def test_u3_extension_attribute_updated_its_neighbour_left_alone(tmp_path, scim_server):
    scim_server.seed_user("jdoe", **{ENTERPRISE_SCHEMA: {"employeeNumber": "1", "costCenter": "CC-7"}})
    update = task("scim_user", user_name="jdoe", attributes={EMPLOYEE_NUMBER: "2"})

    result = ok(one(tmp_path / "1", scim_server, update))

    assert result["changed"] is True and result["changes"] == {EMPLOYEE_NUMBER: "2"}
    assert scim_server.user_by_name("jdoe")[ENTERPRISE_SCHEMA] == {"employeeNumber": "2", "costCenter": "CC-7"}
    assert ok(one(tmp_path / "2", scim_server, update))["changed"] is False


def test_attribute_set_to_null_is_removed(tmp_path, scim_server):
    scim_server.seed_user("jdoe", title="Engineer", displayName="Jane Doe")

    result = ok(one(tmp_path, scim_server, task("scim_user", user_name="jdoe", attributes={"title": None})))

    stored = scim_server.user_by_name("jdoe")
    assert result["changed"] is True
    assert "title" not in stored and stored["displayName"] == "Jane Doe"


def test_disable_then_enable_is_reversible_and_idempotent(tmp_path, scim_server):
    scim_server.seed_user("jdoe", active=True, title="Engineer")

    disabled = ok(one(tmp_path / "1", scim_server, task("scim_user", user_name="jdoe", enabled=False), diff=True))
    assert disabled["changed"] is True and disabled["changes"] == {"enabled": False}
    assert scim_server.user_by_name("jdoe")["active"] is False
    assert disabled["diff"]["before"] == {"key": "jdoe", "enabled": True}
    assert disabled["diff"]["after"] == {"key": "jdoe", "enabled": False}

    still = ok(one(tmp_path / "2", scim_server, task("scim_user", user_name="jdoe", enabled=False)))
    assert still["changed"] is False

    enabled = ok(one(tmp_path / "3", scim_server, task("scim_user", user_name="jdoe", enabled=True)))
    stored = scim_server.user_by_name("jdoe")
    assert enabled["changed"] is True and stored["active"] is True and stored["title"] == "Engineer"


def test_user_created_disabled(tmp_path, scim_server):
    result = ok(one(tmp_path, scim_server, task("scim_user", user_name="later", enabled=False)))

    assert result["changed"] is True
    assert scim_server.user_by_name("later")["active"] is False


def test_enabled_left_out_keeps_the_state(tmp_path, scim_server):
    scim_server.seed_user("jdoe", active=False, title="Old")

    result = ok(one(tmp_path, scim_server, task("scim_user", user_name="jdoe", attributes={"title": "New"})))

    stored = scim_server.user_by_name("jdoe")
    assert result["changed"] is True and stored["title"] == "New" and stored["active"] is False


def test_user_deleted_then_absent_is_unchanged(tmp_path, scim_server):
    ids = seed_users(scim_server, "jdoe", "asmith")

    deleted = ok(one(tmp_path / "1", scim_server, task("scim_user", user_name="JDoe", state="absent"), diff=True))
    assert deleted["changed"] is True and deleted["user"] is None
    assert deleted["diff"]["after"] == {} and deleted["diff"]["before"]["key"] == "jdoe"
    assert [u["id"] for u in scim_server.all("Users")] == [ids["asmith"]]

    again = ok(one(tmp_path / "2", scim_server, task("scim_user", user_name="jdoe", state="absent")))
    assert again["changed"] is False


def test_foreign_marker_is_not_taken_over_without_force_link(tmp_path, scim_server):
    scim_server.seed_user("jdoe", externalId="other-provisioner:9", title="Engineer")
    before = dump(scim_server)
    claim = task("scim_user", user_name="jdoe", external_id="idsync:1", attributes={"title": "Boss"})

    refused = one(tmp_path / "1", scim_server, claim)
    assert refused["failed"] is True
    assert "other-provisioner:9" in refused["msg"] and "force_link" in refused["msg"]
    refused_delete = one(
        tmp_path / "2", scim_server, dict(claim, **{FQ + "scim_user": dict(claim[FQ + "scim_user"], state="absent")})
    )
    assert refused_delete["failed"] is True
    assert dump(scim_server) == before

    forced = ok(one(tmp_path / "3", scim_server, {FQ + "scim_user": dict(claim[FQ + "scim_user"], force_link=True)}))
    stored = scim_server.user_by_name("jdoe")
    assert forced["changed"] is True and forced["changes"] == {"title": "Boss", "external_id": "idsync:1"}
    assert stored["externalId"] == "idsync:1" and stored["title"] == "Boss"

    same_marker = ok(one(tmp_path / "4", scim_server, claim))
    assert same_marker["changed"] is False


def test_marker_set_on_an_account_that_has_none(tmp_path, scim_server):
    scim_server.seed_user("jdoe")

    result = ok(one(tmp_path, scim_server, task("scim_user", user_name="jdoe", external_id="idsync:1")))

    assert result["changed"] is True and scim_server.user_by_name("jdoe")["externalId"] == "idsync:1"


def test_user_name_in_attributes_may_not_rename(tmp_path, scim_server):
    scim_server.seed_user("jdoe")
    before = dump(scim_server)

    result = one(tmp_path, scim_server, task("scim_user", user_name="jdoe", attributes={"userName": "jane"}))

    assert result["failed"] is True and "user_name" in result["msg"]
    assert dump(scim_server) == before


def test_user_info_by_name_all_and_limit(tmp_path, scim_server):
    ids = seed_users(scim_server, "alpha", "bravo", "charlie")
    scim_server.seed_user("delta", externalId="idsync:d", active=False)

    results = twin(
        tmp_path,
        scim_server,
        [
            task("scim_user_info", user_name="DELTA"),
            task("scim_user_info"),
            task("scim_user_info", limit=2),
            task("scim_user_info", user_name="nobody"),
        ],
    )
    by_name, everyone, limited, nobody = (ok(r) for r in results)

    assert all(r["changed"] is False for r in results)
    assert by_name["user"]["key"] == "delta" and by_name["user"]["link"] == "idsync:d"
    assert by_name["user"]["enabled"] is False and by_name["users"] == [by_name["user"]]
    assert by_name["user"]["resource"]["userName"] == "delta"
    assert sorted(u["key"] for u in everyone["users"]) == ["alpha", "bravo", "charlie", "delta"]
    assert {u["id"] for u in everyone["users"]} >= set(ids.values())
    assert len(limited["users"]) == 2
    assert nobody["user"] is None and nobody["users"] == []


# -- groups -------------------------------------------------------------------------------------


def test_g2_group_created_with_members_and_marker_then_unchanged(tmp_path, scim_server):
    ids = seed_users(scim_server, "jdoe", "asmith", "bwhite")
    create = task("scim_group", name="Engineering", external_id="idsync:g1", members={"set": ["JDOE", "asmith"]})

    created = ok(one(tmp_path / "1", scim_server, create, diff=True))

    groups = scim_server.all("Groups")
    assert len(groups) == 1 and groups[0]["displayName"] == "Engineering"
    assert groups[0]["externalId"] == "idsync:g1"
    assert member_ids(scim_server, groups[0]["id"]) == {ids["jdoe"], ids["asmith"]}
    assert created["changed"] is True and created["group"]["id"] == groups[0]["id"]
    assert created["group"]["members"] == ["asmith", "jdoe"]
    assert created["changes"]["members_added"] == ["asmith", "jdoe"]
    assert created["diff"]["before"] == {}
    assert created["diff"]["after"] == {
        "name": "Engineering",
        "external_id": "idsync:g1",
        "members": ["asmith", "jdoe"],
    }

    again = ok(one(tmp_path / "2", scim_server, create))
    assert again["changed"] is False and again["changes"] == {}
    assert len(scim_server.all("Groups")) == 1


def test_g1_existing_group_found_by_name_case_insensitively(tmp_path, scim_server):
    seeded = scim_server.seed_group("Sales")

    result = ok(one(tmp_path, scim_server, task("scim_group", name="SALES")))

    assert result["changed"] is False and result["group"]["id"] == seeded["id"]
    assert len(scim_server.all("Groups")) == 1


def test_g3_rename_keeps_the_group_and_is_idempotent(tmp_path, scim_server):
    ids = seed_users(scim_server, "jdoe")
    seeded = scim_server.seed_group("Eng", member_ids=(ids["jdoe"],))
    rename = task("scim_group", name="Eng", new_name="Engineering")

    renamed = ok(one(tmp_path / "1", scim_server, rename, diff=True))

    stored = scim_server.get(f"/Groups/{seeded['id']}")
    assert renamed["changed"] is True and renamed["changes"] == {"name": "Engineering"}
    assert stored["displayName"] == "Engineering" and len(scim_server.all("Groups")) == 1
    assert member_ids(scim_server, seeded["id"]) == {ids["jdoe"]}
    assert renamed["diff"]["before"] == {"name": "Eng"} and renamed["diff"]["after"] == {"name": "Engineering"}

    again = ok(one(tmp_path / "2", scim_server, rename))
    assert again["changed"] is False and again["group"]["id"] == seeded["id"]


def test_rename_of_a_missing_group_creates_it_under_the_new_name(tmp_path, scim_server):
    rename = task("scim_group", name="Gone", new_name="Fresh")

    created = ok(one(tmp_path / "1", scim_server, rename))

    assert created["changed"] is True and created["changes"]["created"] is True
    assert [g["displayName"] for g in scim_server.all("Groups")] == ["Fresh"]
    assert ok(one(tmp_path / "2", scim_server, rename))["changed"] is False


def test_rename_onto_an_existing_name_is_refused(tmp_path, scim_server):
    scim_server.seed_group("Eng")
    scim_server.seed_group("Engineering")
    before = dump(scim_server)

    result = one(tmp_path, scim_server, task("scim_group", name="Eng", new_name="Engineering"))

    assert result["failed"] is True and "a group of that name exists" in result["msg"]
    assert dump(scim_server) == before


def test_g4_members_set_replaces_the_membership(tmp_path, scim_server):
    ids = seed_users(scim_server, "alpha", "bravo", "charlie")
    group = scim_server.seed_group("Team", member_ids=(ids["alpha"], ids["bravo"]))
    wanted = task("scim_group", name="Team", members={"set": ["bravo", "charlie"]})

    result = ok(one(tmp_path / "1", scim_server, wanted, diff=True))

    assert member_ids(scim_server, group["id"]) == {ids["bravo"], ids["charlie"]}
    assert result["changed"] is True
    assert result["changes"] == {"members_added": ["charlie"], "members_removed": ["alpha"]}
    assert result["diff"]["before"] == {"name": "Team", "members": ["alpha", "bravo"]}
    assert result["diff"]["after"] == {"name": "Team", "members": ["bravo", "charlie"]}

    again = ok(one(tmp_path / "2", scim_server, wanted))
    assert again["changed"] is False and again["group"]["members"] == ["bravo", "charlie"]


def test_members_set_empty_empties_the_group(tmp_path, scim_server):
    ids = seed_users(scim_server, "alpha", "bravo")
    group = scim_server.seed_group("Team", member_ids=tuple(ids.values()))

    result = ok(one(tmp_path, scim_server, task("scim_group", name="Team", members={"set": []})))

    assert result["changed"] is True and member_ids(scim_server, group["id"]) == set()
    assert len(scim_server.all("Users")) == 2


def test_g4_members_add_and_remove_leave_the_others(tmp_path, scim_server):
    ids = seed_users(scim_server, "alpha", "bravo", "charlie", "delta")
    group = scim_server.seed_group("Team", member_ids=(ids["alpha"], ids["bravo"], ids["delta"]))
    change = task("scim_group", name="Team", members={"add": ["charlie", "bravo"], "remove": ["alpha"]})

    result = ok(one(tmp_path / "1", scim_server, change, diff=True))

    assert member_ids(scim_server, group["id"]) == {ids["bravo"], ids["charlie"], ids["delta"]}
    assert result["changes"] == {"members_added": ["charlie"], "members_removed": ["alpha"]}
    # The diff shows only the users named in add/remove.
    assert result["diff"]["before"]["members"] == ["alpha", "bravo"]
    assert result["diff"]["after"]["members"] == ["bravo", "charlie"]
    assert result["group"]["members"] == ["bravo", "charlie", "delta"]

    again = ok(one(tmp_path / "2", scim_server, change))
    assert again["changed"] is False


def test_unknown_member_fails_naming_it_before_any_write(tmp_path, scim_server):
    """A real run fails naming the missing users; check mode warns naming them and shows them added."""
    ids = seed_users(scim_server, "alpha", "bravo")
    scim_server.seed_group("Team", member_ids=(ids["alpha"],))
    before = dump(scim_server)
    tasks = [
        task("scim_group", name="Team", new_name="Team 2", members={"set": ["bravo", "ghost"]}),
        task("scim_group", name="New group", members={"add": ["bravo", "phantom", "ghost"]}),
        task("scim_group", name="Team", members={"remove": ["nobody"]}),
    ]

    previews, preview_run = play(tmp_path / "check", scim_server, tasks, check=True)
    assert dump(scim_server) == before
    assert [bool(r.get("failed")) for r in previews] == [False, False, False]
    assert previews[0]["changes"]["members_added"] == ["bravo", "ghost"]
    assert previews[0]["changes"]["members_removed"] == ["alpha"]
    assert previews[1]["changes"]["members_added"] == ["bravo", "ghost", "phantom"]
    assert previews[2]["changed"] is False  # a user that does not exist is no member to remove
    assert any("ghost" in w for w in previews[0]["warnings"])
    assert any("phantom, ghost" in w for w in previews[1]["warnings"])
    assert any("nobody" in w for w in previews[2]["warnings"])
    assert "[WARNING]" in preview_run.text and "ghost" in preview_run.text

    results, _unused = play(tmp_path / "real", scim_server, tasks)
    assert all(r["failed"] for r in results)
    assert "no such user: ghost" in results[0]["msg"] and "bravo" not in results[0]["msg"]
    assert "phantom, ghost" in results[1]["msg"]
    assert "nobody" in results[2]["msg"]
    assert dump(scim_server) == before  # neither renamed, nor members changed, nor a group created


def test_check_mode_chained_tasks_create_a_user_then_add_it_to_a_group(tmp_path, scim_server):
    """Under --check the user is not created, so the group task cannot find it: a warning, not a failure."""
    ids = seed_users(scim_server, "alpha")
    group = scim_server.seed_group("Team", member_ids=(ids["alpha"],))
    before = dump(scim_server)
    tasks = [
        task("scim_user", user_name="jdoe", attributes={"displayName": "Jane Doe"}),
        task("scim_group", name="Team", members={"add": ["jdoe"]}),
    ]

    previews, preview_run = play(tmp_path / "check", scim_server, tasks, check=True, diff=True)

    assert preview_run.rc == 0, preview_run.text
    assert dump(scim_server) == before
    created, added = (ok(r) for r in previews)
    assert created["changed"] is True and added["changed"] is True
    assert added["changes"] == {"members_added": ["jdoe"]}
    assert added["group"]["members"] == ["alpha", "jdoe"]
    assert added["diff"]["after"]["members"] == ["jdoe"]
    assert [w for w in added["warnings"] if "no such user yet: jdoe" in w], added["warnings"]
    assert "[WARNING]: members: no such user yet: jdoe" in preview_run.text

    results, run = play(tmp_path / "real", scim_server, tasks)

    assert run.rc == 0, run.text
    created, added = (ok(r) for r in results)
    assert created["changed"] is True and added["changed"] is True and not added.get("warnings")
    jdoe = scim_server.user_by_name("jdoe")
    assert member_ids(scim_server, group["id"]) == {ids["alpha"], jdoe["id"]}

    missing, failed_run = play(
        tmp_path / "missing", scim_server, [task("scim_group", name="Team", members={"add": ["jdoe", "ghost"]})]
    )
    assert missing[0]["failed"] is True and "fatal: [localhost]" in failed_run.stdout
    assert missing[0]["msg"] == "members: no such user: ghost; nothing was changed"
    assert member_ids(scim_server, group["id"]) == {ids["alpha"], jdoe["id"]}


def test_add_and_remove_of_the_same_user_is_refused(tmp_path, scim_server):
    seed_users(scim_server, "alpha")

    result = one(
        tmp_path, scim_server, task("scim_group", name="Team", members={"add": ["alpha"], "remove": ["ALPHA"]})
    )

    assert result["failed"] is True and "alpha" in result["msg"]
    assert scim_server.all("Groups") == []


def test_g5_group_deleted_users_stay(tmp_path, scim_server):
    ids = seed_users(scim_server, "alpha")
    scim_server.seed_group("Team", member_ids=(ids["alpha"],))
    other = scim_server.seed_group("Other")

    deleted = ok(one(tmp_path / "1", scim_server, task("scim_group", name="team", state="absent"), diff=True))

    assert deleted["changed"] is True and deleted["diff"]["before"]["name"] == "Team" and deleted["diff"]["after"] == {}
    assert [g["id"] for g in scim_server.all("Groups")] == [other["id"]]
    assert [u["id"] for u in scim_server.all("Users")] == [ids["alpha"]]

    again = ok(one(tmp_path / "2", scim_server, task("scim_group", name="Team", state="absent")))
    assert again["changed"] is False


def test_group_with_foreign_marker_is_not_taken_over(tmp_path, scim_server):
    seeded = scim_server.seed_group("Team", externalId="okta:77")
    before = dump(scim_server)

    refused = one(tmp_path / "1", scim_server, task("scim_group", name="Team", external_id="idsync:g"))
    refused_delete = one(
        tmp_path / "2", scim_server, task("scim_group", name="Team", external_id="idsync:g", state="absent")
    )

    assert refused["failed"] is True and "okta:77" in refused["msg"] and "force_link" in refused["msg"]
    assert refused_delete["failed"] is True
    assert dump(scim_server) == before

    forced = ok(
        one(tmp_path / "3", scim_server, task("scim_group", name="Team", external_id="idsync:g", force_link=True))
    )
    assert forced["changed"] is True and scim_server.get(f"/Groups/{seeded['id']}")["externalId"] == "idsync:g"


def test_several_groups_of_one_name_are_an_error(tmp_path, scim_server):
    first, second = scim_server.seed_group("Twin"), scim_server.seed_group("twin")
    before = dump(scim_server)

    result = one(tmp_path, scim_server, task("scim_group", name="Twin", state="absent"))

    assert result["failed"] is True and first["id"] in result["msg"] and second["id"] in result["msg"]
    assert dump(scim_server) == before


def test_group_info_by_name_and_all_with_members(tmp_path, scim_server):
    ids = seed_users(scim_server, "alpha", "bravo")
    team = scim_server.seed_group("Team", member_ids=(ids["bravo"], ids["alpha"]), externalId="idsync:t")
    empty = scim_server.seed_group("Empty")

    results = twin(
        tmp_path,
        scim_server,
        [
            task("scim_group_info", name="team", include_members=True),
            task("scim_group_info"),
            task("scim_group_info", include_members=True),
            task("scim_group_info", name="nothing"),
        ],
    )
    by_name, everything, with_members, missing = (ok(r) for r in results)

    assert all(r["changed"] is False for r in results)
    assert by_name["group"]["id"] == team["id"] and by_name["group"]["link"] == "idsync:t"
    assert by_name["group"]["members"] == ["alpha", "bravo"] and by_name["groups"] == [by_name["group"]]
    assert sorted(g["name"] for g in everything["groups"]) == ["Empty", "Team"]
    assert all("members" not in g for g in everything["groups"])
    assert {g["id"]: g["members"] for g in with_members["groups"]} == {team["id"]: ["alpha", "bravo"], empty["id"]: []}
    assert missing["group"] is None and missing["groups"] == []


# -- connection ---------------------------------------------------------------------------------


def test_connection_from_environment(tmp_path, scim_server):
    env = {"SCIM_URL": scim_server.url, "SCIM_TOKEN": scim_server.token}

    results = twin(
        tmp_path / "env",
        scim_server,
        [task("scim_user", conn=False, user_name="envuser"), task("scim_user_info", conn=False)],
        env=env,
    )
    assert ok(results[0])["changed"] is True and scim_server.user_by_name("envuser") is not None
    assert [u["key"] for u in ok(results[1])["users"]] == ["envuser"]

    no_env = {"SCIM_URL": "", "SCIM_TOKEN": ""}
    missing = one(tmp_path / "none", scim_server, task("scim_user", conn=False, user_name="x"), env=no_env)
    assert missing["failed"] is True and "SCIM_URL" in missing["msg"]


def test_module_defaults_through_the_scim_action_group(tmp_path, scim_server):
    ids = seed_users(scim_server, "alpha")
    defaults = {"module_defaults": {"group/idsync.provisioning.scim": dict(CONN)}}

    results = twin(
        tmp_path,
        scim_server,
        [
            task("scim_user", conn=False, user_name="newbie"),
            task("scim_user_info", conn=False, user_name="alpha"),
            task("scim_group", conn=False, name="Team", members={"set": ["alpha"]}),
            task("scim_group_info", conn=False),
            task("scim_sync", conn=False, users=[], allow_empty_source=True),
        ],
        play_extra=defaults,
    )
    user, info, group, group_info, sync = (ok(r) for r in results)

    assert user["changed"] is True and scim_server.user_by_name("newbie") is not None
    assert info["user"]["id"] == ids["alpha"]
    assert group["changed"] is True
    assert [member_ids(scim_server, g["id"]) for g in scim_server.all("Groups")] == [{ids["alpha"]}]
    assert [g["name"] for g in group_info["groups"]] == ["Team"]
    assert sync["changed"] is False and "report" in sync


def test_token_never_in_output_even_with_vvv_and_diff(tmp_path, scim_server):
    seed_users(scim_server, "alpha")
    tasks = [
        NEW_USER,
        task("scim_user", user_name="alpha", attributes={"title": "x"}, enabled=False),
        task("scim_group", name="Team", members={"set": ["alpha", "ghost"]}),
        task("scim_user_info"),
        task("scim_group_info", include_members=True),
        task("scim_user", url="{{ scim_url }}", token=scim_server.token + "-wrong", user_name="alpha"),
    ]

    for check in (True, False):
        results, run = play(tmp_path / str(check), scim_server, tasks, check=check, diff=True, verbosity=3)

        assert results[0]["changed"] is True
        assert bool(results[2].get("failed")) is not check  # a missing member: a warning in check mode
        assert results[5]["failed"] is True and "401" in results[5]["msg"]
        assert "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" in run.text  # the -vvv invocation was shown, masked
        assert scim_server.token not in run.text
        assert scim_server.token not in json.dumps(results)


# -- the account's password ---------------------------------------------------------------------


def stored_password_is(server, user_name: str, password: str) -> bool:
    """Whether the server holds ``password`` for the account.

    scim2-server never returns a password (RFC 7643: returned "never"), but it filters on it, so
    the stored value can be checked without the code under test.
    """
    literal = json.dumps(password)
    found = server.get("/Users", filter=f'userName eq "{user_name}" and password eq {literal}')
    return found["totalResults"] == 1


def carried(proxy: FaultProxy, method: str, password: str) -> list[str]:
    """Paths of the ``method`` requests through the proxy whose body carried ``password``."""
    return [seen.path for seen in proxy.writes() if seen.method == method and password.encode() in seen.body]


def test_password_set_on_create_then_kept_or_rewritten_per_update_password(tmp_path, scim_server):
    first, second = "Pw-" + secrets.token_hex(8), "Pw-" + secrets.token_hex(8)
    with FaultProxy(scim_server.url) as proxy:

        def run(name, check=False, **options):
            item = task("scim_user", url=proxy.url, user_name="pwuser", **options)
            proxy.seen.clear()
            results, playbook_run = play(tmp_path / name, scim_server, [item], check=check, diff=True, verbosity=3)
            assert first not in playbook_run.text and second not in playbook_run.text
            assert first not in json.dumps(results) and second not in json.dumps(results)
            return ok(results[0])

        preview = run("create-check", check=True, password=first)
        assert preview["changed"] is True and preview["changes"]["password"] == "********"
        assert proxy.writes() == [] and scim_server.user_by_name("pwuser") is None

        created = run("create", password=first)
        assert created["changed"] is True and created["changes"]["password"] == "********"
        assert created["diff"]["after"]["password"] == "********"
        assert carried(proxy, "POST", first) == ["/v2/Users"]
        assert stored_password_is(scim_server, "pwuser", first)
        assert "password" not in scim_server.user_by_name("pwuser")  # the server never returns it
        assert "password" not in {key.lower() for key in created["user"]["resource"]}

        # update_password=on_create (the default): an existing account keeps its password
        kept = run("on-create", password=second)
        assert kept["changed"] is False and kept["changes"] == {}
        assert proxy.writes() == []
        assert stored_password_is(scim_server, "pwuser", first)

        # always: written on every run, and reported as a change every time (it cannot be compared)
        preview = run("always-check", check=True, password=second, update_password="always")
        assert preview["changed"] is True and preview["changes"] == {"password": "********"}
        assert proxy.writes() == [] and stored_password_is(scim_server, "pwuser", first)

        rewritten = run("always", password=second, update_password="always")
        assert rewritten["changed"] is True and rewritten["changes"] == {"password": "********"}
        assert rewritten["diff"]["before"]["password"] is None and rewritten["diff"]["after"]["password"] == "********"
        assert carried(proxy, "PATCH", second) == [f"/v2/Users/{created['user']['id']}"]
        assert stored_password_is(scim_server, "pwuser", second)
        assert "password" not in {key.lower() for key in rewritten["user"]["resource"]}

        again = run("always-again", password=second, update_password="always")
        assert again["changed"] is True and len(carried(proxy, "PATCH", second)) == 1

        # no password given: left as it is, whatever update_password says
        untouched = run("none", update_password="always", attributes={"title": "x"})
        assert untouched["changes"] == {"title": "x"} and carried(proxy, "PATCH", second) == []
        assert stored_password_is(scim_server, "pwuser", second)


def test_password_is_refused_in_attributes_and_when_empty(tmp_path, scim_server):
    results, _unused = play(
        tmp_path,
        scim_server,
        [
            task("scim_user", user_name="jdoe", attributes={"password": "x"}),
            task("scim_user", user_name="jdoe", password=""),
        ],
    )
    assert results[0]["failed"] is True and "password option" in results[0]["msg"]
    assert results[1]["failed"] is True and results[1]["msg"].startswith("password: must not be empty")
    assert scim_server.all("Users") == []


# -- basic authentication -----------------------------------------------------------------------


def test_auth_username_and_auth_password_authenticate_with_basic_auth(tmp_path):
    user, secret = "provisioner", "Basic-" + secrets.token_hex(8)
    expected = "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()
    empty = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": 0, "Resources": []}
    with ScriptedHttpServer() as service:
        # per task: no /ServiceProviderConfig (the common defaults), then one search that finds nothing
        service.script(
            *[reply for _unused in range(3) for reply in (Reply(404, {"detail": "none"}), Reply(200, empty))]
        )
        url = service.url + "/v2"
        tasks = [
            {FQ + "scim_user_info": {"url": url, "auth_username": user, "auth_password": secret, "user_name": "x"}},
            # the former names stay as aliases where no account option can be confused with them
            {FQ + "scim_group_info": {"url": url, "username": user, "password": secret, "name": "Team"}},
            # SCIM_USERNAME / SCIM_PASSWORD as before
            {FQ + "scim_user_info": {"url": url, "user_name": "y"}},
            # not on scim_user: there password is the account's, and username next to user_name is refused
            {FQ + "scim_user": {"url": url, "username": user, "user_name": "x"}},
            {
                FQ + "scim_user": {
                    "url": url,
                    "token": "tok-" + secrets.token_hex(8),
                    "auth_username": user,
                    "user_name": "x",
                }
            },
        ]
        env = {"SCIM_USERNAME": user, "SCIM_PASSWORD": secret, "SCIM_TOKEN": ""}
        results, run = play(tmp_path, SimpleNamespace(url=url, token="unused"), tasks, env=env, verbosity=3)

    assert ok(results[0])["user"] is None and ok(results[1])["group"] is None and ok(results[2])["user"] is None
    searches = [r for r in service.requests if "filter=" in r.path]
    assert len(searches) == 3 and all(r.headers.get("Authorization") == expected for r in searches)
    assert results[3]["failed"] is True and "username" in results[3]["msg"] and "Unsupported" in results[3]["msg"]
    assert results[4]["failed"] is True and "token and auth_username are mutually exclusive" in results[4]["msg"]
    assert secret not in run.text and secret not in json.dumps(results)


# -- failures: documented keys, short messages ----------------------------------------------------

CONFLICT = {
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
    "status": "409",
    "scimType": "uniqueness",
    "detail": "userName is already taken",
}


def source_user(name: str) -> dict:
    """A source record as the ldap_source lookup returns it."""
    return {
        "id": f"id-{name}",
        "dn": f"uid={name},ou=people,dc=example,dc=org",
        "disabled": False,
        "attributes": {"uid": [name], "cn": [name.title()], "sn": ["Doe"], "givenName": [name.title()]},
        "groups": [],
    }


def test_failures_come_back_under_documented_keys_with_a_short_sync_message(tmp_path, scim_server):
    names = ["alpha", "bravo", "clash1", "clash2", "clash3", "clash4"]
    with FaultProxy(scim_server.url) as proxy:
        proxy.fail("POST", r"/Users$", status=409, body=CONFLICT, when=lambda seen: b'"clash' in seen.body)
        tasks = [
            task("scim_user", url=proxy.url, user_name="clash0"),
            task("scim_sync", url=proxy.url, users=[source_user(name) for name in names]),
        ]
        results, run = play(tmp_path, scim_server, tasks)
    single, sync = results

    # a per-object module: the service's answer under "details", as documented in RETURN
    assert single["failed"] is True and "409" in single["msg"] and "plan" not in single
    assert single["details"] == CONFLICT

    # the sync: a short summary as the message, the whole report kept in the result
    assert sync["failed"] is True
    assert sync["msg"].startswith("4 of 6 actions failed: create_user clash1 (POST /Users: 409 ")
    assert sync["msg"].endswith(" and 1 more; see report.failures")
    assert len(sync["msg"]) < 400 and "clash4" not in sync["msg"]
    assert sync["report"]["failed"] == 4 and len(sync["report"]["failures"]) == 4
    assert sync["report"]["counts"] == {"create_user": 2}
    assert sorted(u["userName"] for u in scim_server.all("Users")) == ["alpha", "bravo"]
    # Ansible's default callback prints the whole result after fatal: (the report is part of it)
    fatal = [line for line in run.stdout.splitlines() if line.startswith("fatal:") and "actions failed" in line]
    assert len(fatal) == 1 and '"msg": "4 of 6 actions failed' in fatal[0]
