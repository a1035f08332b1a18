# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""box_user, box_user_info, box_group, box_group_info run by ansible-playbook against the fake Box.

One fake Box per test (tests/support/box_fake.py); its state is read back directly, not through
the code under test. Every writing scenario runs as a check-mode twin first (the fake's
``snapshot()`` byte-identical, no write request, the same ``changed`` and failure as the real
run), then for real, then once more: ``changed: false`` and not one write request. The fixture
fails a test that sent a request outside Box's OpenAPI description or a ``PUT`` with
``enterprise: null``.
"""

from __future__ import annotations

import json

import pytest
import yaml
from support.box_fake import BoxFake
from support.playbook import run_playbook

FQ = "idsync.provisioning."
CONN = {"url": "{{ box_url }}", "token_url": "{{ box_token_url }}"}


@pytest.fixture
def box():
    with BoxFake() as fake:
        yield fake
        fake.assert_valid()
        fake.assert_never_removed_from_enterprise()


def task(module, **args):
    return {FQ + module: dict(CONN, **args)}


def play(tmp_path, fake, tasks, check=False, diff=False, verbosity=0):
    """Run ``tasks`` in one play (credentials from BOX_CLIENT_ID/SECRET/ENTERPRISE_ID); results in order."""
    body = [dict(item, register=f"r{index}", ignore_errors=True) for index, item in enumerate(tasks)]
    record = "{{ {" + ", ".join(f"'r{i}': r{i}" for i in range(len(tasks))) + "} | to_json }}"
    body.append({"ansible.builtin.copy": {"content": record, "dest": "{{ record }}"}, "check_mode": False})
    playbook = [{"hosts": "localhost", "gather_facts": False, "tasks": body}]
    app = fake.app
    result = run_playbook(
        tmp_path,
        yaml.safe_dump(playbook, sort_keys=False),
        extra_vars={"box_url": fake.api_url, "box_token_url": fake.token_url},
        env={
            "BOX_CLIENT_ID": app.client_id,
            "BOX_CLIENT_SECRET": app.client_secret,
            "BOX_ENTERPRISE_ID": app.enterprise_id,
        },
        check=check,
        diff=diff,
        verbosity=verbosity,
    )
    assert result.output, result.text
    return [result.output[f"r{i}"] for i in range(len(tasks))], result


class Runs:
    def __init__(self, tmp_path, fake):
        self.tmp_path = tmp_path
        self.fake = fake
        self.count = 0

    def play(self, tasks, **options):
        self.count += 1
        results, _unused = play(self.tmp_path / f"play{self.count}", self.fake, tasks, **options)
        return results

    def twin(self, tasks, settles=True, fails=False):
        """Check mode (nothing written, same verdict), for real, and (``settles``) again with no change."""
        before, writes = self.fake.snapshot(), len(self.fake.writes())
        previews = self.play(tasks, check=True, diff=True)
        self.fake.assert_unchanged(before)
        assert self.fake.writes()[writes:] == [], "check mode sent write requests"
        results = self.play(tasks, diff=True)
        if fails:  # Box refuses what a preview cannot know: only the real run fails, having written nothing
            assert not any(r.get("failed") for r in previews), previews
            return results
        assert [r.get("changed") for r in previews] == [r.get("changed") for r in results]
        assert [bool(r.get("failed")) for r in previews] == [bool(r.get("failed")) for r in results], results
        for preview, real in zip(previews, results, strict=True):
            assert preview.get("changes") == real.get("changes")
        if settles:
            writes = len(self.fake.writes())
            again = self.play(tasks)
            assert [r.get("changed") for r in again] == [False] * len(tasks), again
            assert not any(r.get("failed") for r in again), again
            assert self.fake.writes()[writes:] == [], "a second run wrote"
        return results

    def read_only(self, tasks):
        before, writes = self.fake.snapshot(), len(self.fake.writes())
        results = self.play(tasks)
        self.fake.assert_unchanged(before)
        assert self.fake.writes()[writes:] == []
        assert not any(r.get("changed") for r in results)
        return results


@pytest.fixture
def runs(tmp_path, box):
    return Runs(tmp_path, box)


def logins(fake, group):
    return sorted(fake.users[uid]["login"].lower() for uid in fake.members_of(group["id"]))


# -- box_user -------------------------------------------------------------------------------------------
def test_box_user_present_creates_the_account_then_changes_nothing(runs, box):
    tasks = [task("box_user", login="jdoe@example.org", attributes={"name": "John Doe", "job_title": "Engineer"})]
    [result] = runs.twin(tasks)
    assert result["changed"] is True and result["changes"]["created"] is True
    jdoe = box.user_by_login("jdoe@example.org")
    assert (jdoe["name"], jdoe["job_title"], jdoe["status"]) == ("John Doe", "Engineer", "active")
    assert result["user"]["id"] == jdoe["id"]
    assert len(box.requests_matching("POST", "/2.0/users")) == 1


def test_box_user_present_links_by_login_and_writes_only_the_given_fields(runs, box):
    existing = box.seed_user("JDoe@Example.ORG", "Old Name", address="1 Unmapped Way", job_title="Engineer")
    tasks = [task("box_user", login="jdoe@example.org", attributes={"name": "John Doe", "job_title": "Engineer"})]
    [result] = runs.twin(tasks)
    assert result["changes"] == {"name": "John Doe"}
    [put] = box.requests_matching("PUT", "/2.0/users/{user_id}")
    assert put.body == {"name": "John Doe"}  # the changed field only, never enterprise
    jdoe = box.users[existing["id"]]
    assert (jdoe["name"], jdoe["address"]) == ("John Doe", "1 Unmapped Way")
    assert box.requests_matching("POST", "/2.0/users") == []  # linked, not duplicated


def test_box_user_disabled_then_enabled(runs, box):
    user = box.seed_user("asmith@example.org", "Alice Smith")
    [result] = runs.twin([task("box_user", login="asmith@example.org", enabled=False)])
    assert result["changes"] == {"enabled": False}
    assert box.users[user["id"]]["status"] == "inactive"
    [result] = runs.twin([task("box_user", login="asmith@example.org", enabled=True)])
    assert box.users[user["id"]]["status"] == "active"


def test_box_user_restricted_status_counts_as_enabled_and_is_kept(runs, box):
    user = box.seed_user("kept@example.org", "Kept", status="cannot_delete_edit")
    [result] = runs.read_only([task("box_user", login="kept@example.org", enabled=True)])
    assert result["changed"] is False
    assert box.users[user["id"]]["status"] == "cannot_delete_edit"


def test_box_user_absent_moves_content_then_deletes(runs, box):
    archive = box.seed_user("archive@example.org", "Archive")
    leaver = box.seed_user("leaver@example.org", "Leaver", content=4)
    [result] = runs.twin(
        [task("box_user", login="leaver@example.org", state="absent", transfer_content_to="archive@example.org")]
    )
    assert result["changes"] == {"deleted": True}
    assert box.user_by_login("leaver@example.org") is None
    assert [(t["from"], t["to"], t["items"]) for t in box.transfers] == [(leaver["id"], archive["id"], 4)]
    assert box.user_state[archive["id"]].content == 4
    assert [d["force"] for d in box.deleted_users] == [False]


def test_box_user_absent_refused_by_legal_hold_fails_with_boxs_message(runs, box):
    held = box.seed_user("held@example.org", "Held", legal_hold=True)
    before = json.dumps(held, sort_keys=True)
    [result] = runs.twin([task("box_user", login="held@example.org", state="absent")], settles=False, fails=True)
    assert result["failed"] is True
    assert "held@example.org" in result["msg"]
    assert "User cannot be deleted due to retention policies" in result["msg"]
    assert json.dumps(box.users[held["id"]], sort_keys=True) == before
    assert [e.method for e in box.writes()] == ["DELETE"]  # the refused delete, nothing else


def test_box_user_info_finds_by_login_and_lists_managed_users_only(runs, box):
    box.seed_user("jdoe@example.org", "John Doe", job_title="Engineer")
    box.seed_user("asmith@example.org", "Alice Smith")
    box.seed_app_user("An App User")
    one, missing, every, limited = runs.read_only(
        [
            task("box_user_info", login="JDOE@example.org"),
            task("box_user_info", login="nobody@example.org"),
            task("box_user_info"),
            task("box_user_info", limit=1),
        ]
    )
    assert one["user"]["key"] == "jdoe@example.org"
    assert one["user"]["resource"]["job_title"] == "Engineer"
    assert one["user"]["enabled"] is True
    assert missing["user"] is None and missing["users"] == []
    assert sorted(u["key"] for u in every["users"]) == ["asmith@example.org", "jdoe@example.org"]
    assert len(limited["users"]) == 1


# -- box_group ------------------------------------------------------------------------------------------
def test_box_group_members_set_add_remove(runs, box):
    ids = {login: box.seed_user(login)["id"] for login in ("a@example.org", "b@example.org", "c@example.org")}
    [result] = runs.twin(
        [
            task(
                "box_group",
                name="Engineering",
                external_sync_identifier="idsync:eng-1",
                members={"set": ["A@example.org", "b@example.org"]},
            )
        ]
    )
    assert result["changes"]["created"] is True
    group = box.group_by_name("Engineering")
    assert (group["external_sync_identifier"], group["provenance"]) == ("idsync:eng-1", "idsync.provisioning")
    assert logins(box, group) == ["a@example.org", "b@example.org"]
    assert result["group"]["members"] == ["a@example.org", "b@example.org"]

    [result] = runs.twin([task("box_group", name="Engineering", members={"add": ["c@example.org"]})])
    assert result["changes"]["members_added"] == ["c@example.org"]
    assert logins(box, group) == ["a@example.org", "b@example.org", "c@example.org"]

    membership = next(mid for mid, m in box.memberships.items() if m["user_id"] == ids["a@example.org"])
    [result] = runs.twin([task("box_group", name="Engineering", members={"remove": ["a@example.org"]})])
    assert result["changes"]["members_removed"] == ["a@example.org"]
    assert logins(box, group) == ["b@example.org", "c@example.org"]
    [removed] = box.requests_matching("DELETE", "/2.0/group_memberships/{membership_id}")
    assert removed.path == f"/2.0/group_memberships/{membership}"  # removed by its membership id

    [result] = runs.twin([task("box_group", name="Engineering", members={"set": ["c@example.org"]})])
    assert logins(box, group) == ["c@example.org"]
    posts = [e.body["user"]["id"] for e in box.requests_matching("POST", "/2.0/group_memberships")]
    assert sorted(posts) == sorted(ids.values())  # each member added once, never re-added


def test_box_group_renamed_keeps_its_id_then_absent_deletes_it(runs, box):
    group = box.seed_group("Sales", external_sync_identifier="idsync:sales")
    [result] = runs.twin([task("box_group", name="Sales", new_name="Revenue")])
    assert result["changes"]["name"] == "Revenue"
    assert box.groups[group["id"]]["name"] == "Revenue"
    assert box.requests_matching("POST", "/2.0/groups") == []
    [result] = runs.twin([task("box_group", name="Revenue", state="absent")])
    assert result["changes"] == {"deleted": True}
    assert group["id"] not in box.groups


def test_box_group_absent_refuses_a_group_of_another_provisioner(runs, box):
    group = box.seed_group("Finance", external_sync_identifier="other:42")
    [result] = runs.twin(
        [task("box_group", name="Finance", state="absent", external_sync_identifier="idsync:fin")], settles=False
    )
    assert result["failed"] is True
    assert group["id"] in box.groups


def test_box_group_info_with_members(runs, box):
    user = box.seed_user("jdoe@example.org", "John Doe")
    box.seed_group("Engineering", members=[user["id"]], external_sync_identifier="idsync:eng")
    box.seed_group("Sales")
    one, every = runs.read_only(
        [
            task("box_group_info", name="engineering", include_members=True),
            task("box_group_info"),
        ]
    )
    assert one["group"]["name"] == "Engineering"
    assert one["group"]["link"] == "idsync:eng"
    assert one["group"]["members"] == ["jdoe@example.org"]
    assert sorted(g["name"] for g in every["groups"]) == ["Engineering", "Sales"]  # not the all-users group


def test_box_modules_never_show_the_client_secret_or_token(runs, box, tmp_path):
    tasks = [
        task("box_user", login="jdoe@example.org", attributes={"name": "John Doe"}),
        task("box_group", name="Engineering", members={"set": ["jdoe@example.org"]}),
        task("box_user_info", login="jdoe@example.org"),
    ]
    results, output = play(tmp_path / "vvv", box, tasks, diff=True, verbosity=3)
    assert not any(r.get("failed") for r in results), results
    text = output.text + json.dumps(results)
    assert box.tokens
    for secret in [box.app.client_secret, *box.tokens]:
        assert secret not in text
