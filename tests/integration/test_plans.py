# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Saved plans end to end (issue 14): preview -> saved plan -> apply exactly it, through ansible-playbook.

Two targets: SCIM (a real slapd, a real scim2-server behind a recording proxy, so every write that
reaches the service is counted) and Box (the stateful fake, which logs every write). Each test runs
one ansible-playbook process that takes its steps from the test (test_box_sync's ``Playbook``, here
with steps that run ``idsync.provisioning.sync`` for any target or ``idsync.provisioning.plan_render``),
so the directory and the service are changed between a preview and its apply by the test itself.
"""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import time

import pytest
import test_box_sync
from support.fault_proxy import FaultProxy
from support.seed import PEOPLE
from test_box_sync import Directory, Playbook

from ansible_collections.idsync.provisioning.plugins.module_utils import _plan

box_fake, box_slapd = test_box_sync.box_fake, test_box_sync.box_slapd  # fixtures, used by name

GROUP_FILTER = "(|(cn=Engineering)(cn=Platform)(cn=Sales))"
GROUPS_OU = "ou=groups,dc=example,dc=org"
PLAN_SECRET = "Plan-Secret-Pw-7731"
# The steps of the shared Playbook: a sync of any target (the role's action), or a rendering.
STEPS_TASKS = """
- name: Stop
  ansible.builtin.meta: end_play
  when: step.stop | default(false)
- name: Sync
  idsync.provisioning.sync:
    target: "{{ step.args.target }}"
    options: "{{ step.args.options }}"
  check_mode: "{{ step.check }}"
  diff: "{{ step.diff }}"
  register: synced
  ignore_errors: true
  when: step.args.target is defined
- name: Render
  idsync.provisioning.plan_render: "{{ step.args.render }}"
  register: rendered
  ignore_errors: true
  when: step.args.render is defined
- name: Hand the result over and take the next step
  ansible.builtin.set_fact:
    step: >-
      {{ lookup('ansible.builtin.pipe', handover ~ ' ' ~ step_index ~ ' '
         ~ ((synced if step.args.target is defined else rendered) | to_json | b64encode)) | from_json }}
"""


class Steps:
    """One ansible-playbook process for a test: ``sync()`` and ``render()`` are its tasks."""

    def __init__(self, tmp_path, env, monkeypatch, target, base_args):
        monkeypatch.setattr(test_box_sync, "STEPS_TASKS", STEPS_TASKS)
        self.playbook = Playbook(tmp_path / "play", env)
        self.target = target
        self.base_args = base_args
        self.plan_path = tmp_path / "plan.json"

    def sync(self, check=False, diff=False, **options):
        args = {"target": self.target, "options": {**self.base_args, **options}}
        return self.playbook.step(args, check=check, diff=diff)

    def preview(self, **options):
        return self.sync(check=True, diff=True, save_plan=str(self.plan_path), **options)

    def apply(self, **options):
        return self.sync(apply_plan=str(self.plan_path), **options)

    def render(self, **options):
        return self.playbook.step({"render": {"src": str(self.plan_path), **options}})

    def saved(self):
        return json.loads(self.plan_path.read_text())

    def close(self):
        self.playbook.close()
        return self.playbook.text


def counts(result):
    return result["report"]["counts"]


def backdate(path, seconds):
    """The plan as if it had been made ``seconds`` earlier (sealed again, as a plan of that time)."""
    document = json.loads(path.read_text())
    document["created"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - seconds))
    path.write_text(_plan.plan_text(_plan.seal(document)))


# -- SCIM -----------------------------------------------------------------------------------------


@pytest.fixture
def scim(fresh_slapd, scim_server, tmp_path, monkeypatch):
    proxy = FaultProxy(scim_server.url).start()
    base = {
        "url": proxy.url,
        "source": {
            "server_uri": [fresh_slapd.uri],
            "user_base_dn": PEOPLE,
            "group_base_dn": GROUPS_OU,
            "group_search_scope": "onelevel",
            "group_filter": GROUP_FILTER,
            "nested_groups": True,
        },
    }
    env = {
        "SCIM_TOKEN": scim_server.token,
        "LDAP_BIND_DN": fresh_slapd.reader_dn,
        "LDAP_BIND_PW": fresh_slapd.reader_pw,
    }
    steps = Steps(tmp_path, env, monkeypatch, "scim", base)
    steps.ldap, steps.server, steps.proxy = fresh_slapd, scim_server, proxy
    yield steps
    steps.close()
    proxy.stop()


def scim_dump(server):
    return json.dumps({"users": server.all("Users"), "groups": server.all("Groups")}, sort_keys=True)


def lock(ldap, uid):
    ldap.modify(
        f"dn: uid={uid},{PEOPLE}\nchangetype: modify\nadd: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n"
    )


def retitle(ldap, uid, title):
    ldap.modify(f"dn: uid={uid},{PEOPLE}\nchangetype: modify\nreplace: title\ntitle: {title}\n")


def test_scim_preview_saved_plan_applied_exactly_and_nothing_else(scim, tmp_path):
    # a secret in the directory, mapped to the write-only password: never in a plan or a report
    scim.ldap.add(
        f"dn: uid=pat,{PEOPLE}\nobjectClass: inetOrgPerson\nuid: pat\ncn: Pat Kim\nsn: Kim\ngivenName: Pat\n"
        f"carLicense: {PLAN_SECRET}\n"
    )
    mapping = {"title": "attributes.title[0]", "password": "attributes.carLicense[0]"}
    before = scim_dump(scim.server)
    preview = scim.preview(user_mapping=mapping, report_file=str(tmp_path / "preview.md"))
    assert not preview.get("failed"), preview.get("msg")
    assert scim.proxy.writes() == [] and scim_dump(scim.server) == before

    # the readable preview: the counts first, the target's names, a group's members as one entry
    lines = preview["preview"]
    assert lines[0] == f"scim at {scim.proxy.url}: preview, nothing written (check mode)"
    assert lines[1] == "Summary: 14 changes to 11 objects"
    assert "  create_user   8" in lines and "  members       3 groups: 8 added, 0 removed" in lines
    assert "  + jdoe: new in the directory" in lines and '      userName: "jdoe"' in lines
    assert "      active: true" in lines and '      password: "********"' in lines
    engineering = lines.index("  ~ Engineering: 5 added")
    assert lines[engineering + 1 : engineering + 6] == [
        f"      + {uid}" for uid in ("asmith", "bwhite", "jdoe", "jmuller", "jsmith")
    ]
    assert preview["diff"][0]["prepared"].startswith(lines[0] + "\n" + lines[1])
    text = scim.playbook.text
    assert text.index("Summary: 14 changes") < text.index("--- before: user")  # the summary first

    # the saved plan: 0600, every object with fingerprints, and not one secret
    plan_file = preview["plan_file"]
    assert plan_file["path"] == str(scim.plan_path) and plan_file["actions"] == 14
    assert stat.S_IMODE(os.stat(scim.plan_path).st_mode) == 0o600
    saved = scim.saved()
    assert saved["plan_id"] == plan_file["id"] and saved["target"]["name"] == "scim"
    assert saved["target"]["connection"] == {"group_external_id": True, "url": scim.proxy.url}
    assert saved["collection_version"] == _plan.COLLECTION_VERSION
    assert saved["options"]["user_mapping"] == mapping
    assert all(entry["source"]["fingerprint"].startswith("sha256:") for entry in saved["objects"].values())
    planted = [PLAN_SECRET, scim.server.token, scim.ldap.reader_pw]
    for path in (scim.plan_path, tmp_path / "preview.md"):
        assert [secret for secret in planted if secret in path.read_text()] == [], path.name
    assert (tmp_path / "preview.md").read_text().startswith("# idsync.provisioning run report: scim")

    # renderings for the change ticket
    markdown = scim.render(format="markdown", dest=str(tmp_path / "plan.md"))
    assert markdown["changed"] is True and markdown["plan_id"] == saved["plan_id"]
    assert (tmp_path / "plan.md").read_text() == markdown["content"]
    assert "| create_user | 8 |" in markdown["content"]
    assert "| jdoe | new in the directory |" in markdown["content"]
    table = list(csv.DictReader(io.StringIO(scim.render(format="csv")["content"])))
    assert sorted(row["name"] for row in table if row["action"] == "create_user")[:2] == ["asmith", "bwhite"]
    assert {row["name"]: row["members_added"] for row in table if row["action"] == "members"}["Sales"] == "zoe"
    assert PLAN_SECRET not in json.dumps(table)

    # someone joins the directory after the approval: not in the plan, so not applied
    scim.ldap.add(
        f"dn: uid=late,{PEOPLE}\nobjectClass: inetOrgPerson\nuid: late\ncn: Late Comer\nsn: Comer\ngivenName: Late\n"
    )
    scim.proxy.seen.clear()
    applied = scim.apply(user_mapping=mapping, report_file=str(tmp_path / "apply.json"))
    assert not applied.get("failed"), applied.get("msg")
    assert counts(applied) == saved["summary"]["counts"]
    assert applied["plan_file"]["id"] == saved["plan_id"]
    assert scim.server.user_by_name("late") is None
    writes = [
        (seen.method, seen.path.rsplit("/", 1)[0] if seen.method != "POST" else seen.path)
        for seen in scim.proxy.writes()
    ]
    posts = [w for w in writes if w[0] == "POST" and w[1].endswith("/Users")]
    assert len(posts) == 8 and len(writes) == len(posts) + 3 + 3  # 8 users, 3 groups, 3 member changes
    bodies = [json.loads(seen.body) for seen in scim.proxy.writes() if seen.path.endswith("/Users")]
    # the secret came from the source read by this run, never from the plan
    assert {body["userName"]: body.get("password") for body in bodies}["pat"] == PLAN_SECRET
    report = json.loads((tmp_path / "apply.json").read_text())
    assert report["plan"]["id"] == saved["plan_id"] and report["result"] == "ok"
    assert report["counts"] == counts(applied) and report["started"] <= report["ended"]
    assert next(a for a in report["actions"] if a["name"] == "jdoe")["fields"]["active"] == {
        "before": None,
        "after": True,
    }
    assert PLAN_SECRET not in (tmp_path / "apply.json").read_text()

    # the same plan again: what it would create exists now; drift, nothing written
    scim.proxy.seen.clear()
    again = scim.apply(user_mapping=mapping)
    assert again["failed"] is True and "drifted: 11 objects of its 11" in again["msg"]
    assert {entry["changes"][0] for entry in again["drift"]} == {"exists in the target now"}
    assert scim.proxy.writes() == []


def test_scim_drift_in_the_directory_or_the_target_is_refused_with_nothing_written(scim, tmp_path):
    scim.base_args["user_mapping"] = {"title": "attributes.title[0]"}
    assert not scim.sync().get("failed")
    retitle(scim.ldap, "asmith", "Director")
    lock(scim.ldap, "bwhite")
    preview = scim.preview()
    assert counts(preview) == {"update_user": 1, "disable_user": 1, "remove_members": 2}
    assert "  ~ asmith: attribute title changed" in preview["preview"]
    assert '      title: "Engineering Manager" -> "Director"' in preview["preview"]
    assert "  - bwhite: disabled in the directory" in preview["preview"]
    assert "      active: true -> false" in preview["preview"]

    # the directory changes again before the apply: asmith's title
    retitle(scim.ldap, "asmith", "VP")
    # and the target changes too: someone edits bwhite's name by hand
    bwhite = scim.server.user_by_name("bwhite")
    scim.server.patch(f"/Users/{bwhite['id']}", {"op": "replace", "path": "displayName", "value": "Robert White"})
    before = scim_dump(scim.server)
    scim.proxy.seen.clear()
    refused = scim.apply()
    assert refused["failed"] is True
    assert refused["msg"].startswith(
        f"apply_plan: the plan {_plan.short_id(scim.saved()['plan_id'])} drifted: 2 objects"
    )
    assert "nothing was written" in refused["msg"]
    drift = {(entry["name"], entry["where"]): entry["changes"] for entry in refused["drift"]}
    assert drift == {
        ("asmith", "directory"): ['title: "Director" in the plan, "VP" now'],
        ("bwhite", "target"): ['displayName: "Bob White" in the plan, "Robert White" now'],
    }
    assert scim.proxy.writes() == [] and scim_dump(scim.server) == before

    # only what did not drift: bwhite leaves Platform and Engineering (it holds Platform), the
    # groups did not drift; bwhite's own disable and asmith's update are left out
    partial = scim.apply(skip_drifted=True)
    assert not partial.get("failed"), partial.get("msg")
    assert counts(partial) == {"remove_members": 2}
    assert [seen.method for seen in scim.proxy.writes()] == ["PATCH", "PATCH"]
    assert scim.server.user_by_name("bwhite")["active"] is True
    assert any("skip_drifted: 2 changes" in warning for warning in partial.get("warnings", []))

    # a stale plan is refused before anything is read
    backdate(scim.plan_path, 3 * 86400)
    scim.proxy.seen.clear()
    stale = scim.apply()
    assert stale["failed"] is True and "longer ago than max_plan_age (1d)" in stale["msg"]
    assert "3d ago" in stale["msg"] and scim.proxy.seen == []
    # ... and a plan applied with other options than it was made with
    other = scim.apply(max_plan_age="never", remove_user_action="delete")
    assert other["failed"] is True
    assert 'remove_user_action: "disable" in the plan, "delete" now' in other["msg"]


def test_scim_threshold_stop_shows_the_summary_and_the_objects_that_tripped_it(scim):
    assert not scim.sync().get("failed")
    for uid in ("jdoe", "asmith", "bwhite", "zoe"):
        lock(scim.ldap, uid)
    scim.proxy.seen.clear()
    refused = scim.sync(max_disables="1", preview_limit=2)
    assert refused["failed"] is True and scim.proxy.writes() == []
    message = refused["msg"]
    assert message.startswith("the plan would disable 4 users of 7 managed, more than max_disables=1 allows (1);")
    assert "nothing was written. The plan: 3 remove_members, 4 disable_user." in message
    assert message.endswith(
        "Tripped by: jdoe (disabled in the directory), asmith (disabled in the directory) and 2 more"
        " (plan.actions lists the first 2)."
    )
    assert "{" not in message and len(message) < 500
    assert refused["plan"]["counts"] == {"disable_user": 4, "remove_members": 3}
    assert len(refused["plan"]["actions"]) == 2 and refused["plan"]["more"] == 2
    assert len(json.dumps(refused)) < 3000  # never the whole plan


# -- Box ------------------------------------------------------------------------------------------


@pytest.fixture
def box(box_slapd, box_fake, tmp_path, monkeypatch):  # noqa: F811 - the fixtures imported above
    directory = Directory(box_slapd)
    base = {
        "url": box_fake.api_url,
        "token_url": box_fake.token_url,
        "state_file": str(tmp_path / "box-state.json"),
        "source": {"server_uri": [box_slapd.uri], "user_base_dn": directory.people, "group_base_dn": directory.groups},
    }
    app = box_fake.app
    env = {
        "BOX_CLIENT_ID": app.client_id,
        "BOX_CLIENT_SECRET": app.client_secret,
        "BOX_ENTERPRISE_ID": app.enterprise_id,
        "LDAP_BIND_DN": box_slapd.reader_dn,
        "LDAP_BIND_PW": box_slapd.reader_pw,
    }
    steps = Steps(tmp_path, env, monkeypatch, "box", base)
    steps.dir, steps.fake = directory, box_fake
    steps.secrets = [app.client_secret, box_slapd.reader_pw]
    yield steps
    steps.close()


def test_box_saved_plan_applied_exactly_and_drift_in_the_target_refused(box, tmp_path):
    assert not box.sync().get("failed")
    box.dir.replace("jdoe", "title", "Principal Engineer")
    box.dir.disable("asmith")
    box.dir.add_person("carol", "Carol", "Jones", "carol@example.org")
    box.dir.members("Engineering", add=["carol"])
    before, writes = box.fake.snapshot(), len(box.fake.writes())
    preview = box.preview()
    box.fake.assert_unchanged(before)
    assert box.fake.writes()[writes:] == []
    assert counts(preview) == {
        "create_user": 1,
        "update_user": 1,
        "disable_user": 1,
        "add_members": 1,
        "remove_members": 1,
    }
    lines = preview["preview"]
    assert '      job_title: "Engineer" -> "Principal Engineer"' in lines
    assert "  - Alice.Smith@example.org: disabled in the directory" in lines
    saved = box.saved()
    assert saved["field_names"]["user"]["link"] == "marker (state file)"
    assert [secret for secret in box.secrets if secret in box.plan_path.read_text()] == []
    assert stat.S_IMODE(os.stat(box.plan_path).st_mode) == 0o600

    # in the target, someone changes jdoe's phone by hand: drift; nothing is written
    jdoe = box.fake.user_by_login("jdoe@example.org")
    box.fake.users[jdoe["id"]]["phone"] = "+1 555 0199"
    before, writes = box.fake.snapshot(), len(box.fake.writes())
    refused = box.apply()
    assert refused["failed"] is True and "drifted: 1 object of its 4" in refused["msg"]
    assert refused["drift"][0]["name"] == "jdoe@example.org"
    assert refused["drift"][0]["changes"] == ['phone: "+1 555 0101" in the plan, "+1 555 0199" now']
    box.fake.assert_unchanged(before)
    assert box.fake.writes()[writes:] == []

    # put back, the plan applies: exactly its writes
    box.fake.users[jdoe["id"]]["phone"] = "+1 555 0101"
    writes = len(box.fake.writes())
    applied = box.apply(report_file=str(tmp_path / "box-run.md"))
    assert not applied.get("failed"), applied.get("msg")
    assert counts(applied) == saved["summary"]["counts"]
    done = [(entry.method, entry.route) for entry in box.fake.writes()[writes:]]
    assert sorted(done) == sorted(
        [
            ("POST", "/2.0/users"),  # carol
            ("PUT", "/2.0/users/{user_id}"),  # jdoe's title
            ("PUT", "/2.0/users/{user_id}"),  # asmith inactive
            ("POST", "/2.0/group_memberships"),  # carol into Engineering
            ("DELETE", "/2.0/group_memberships/{membership_id}"),  # asmith out of Engineering
        ]
    ), done
    assert box.fake.user_by_login("carol@example.org") is not None
    assert box.fake.user_by_login("jdoe@example.org")["job_title"] == "Principal Engineer"
    report = (tmp_path / "box-run.md").read_text()
    assert "| create_user | user carol@example.org | ok | new in the directory |" in report
    assert [secret for secret in box.secrets if secret in report] == []
    # the state file knows carol now: a new preview has nothing to do
    assert counts(box.sync(check=True)) == {}
