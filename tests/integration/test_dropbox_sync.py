# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""dropbox_sync end to end: a real slapd, the stateful fake Dropbox team API, ansible-playbook (issue 11).

As tests/integration/test_box_sync.py: one slapd per module with a per-test OU, one fake per test
(validated by the dropbox SDK's Stone validators: ``validation_errors == []`` after every test),
check-mode twins (snapshot byte-identical, no write call) and settled second runs.
Every suspend/remove is checked to send ``wipe_data: false`` and never ``permanently_delete_files``.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from integration.test_box_sync import counts, person_ldif, plan_of  # plain functions
from support.dropbox_fake import DropboxFake
from support.playbook import run_playbook
from support.seed import BASE
from support.slapd import SlapdServer

MODULE = Path(__file__).resolve().parents[2] / "plugins" / "modules" / "dropbox_sync.py"
pytestmark = pytest.mark.skipif(not MODULE.exists(), reason="plugins/modules/dropbox_sync.py not committed yet")
PREFIX = "idsync:"
PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Sync
      idsync.provisioning.dropbox_sync: "{{ sync_args }}"
      register: result
      ignore_errors: true
    - name: Record
      check_mode: false
      diff: false
      ansible.builtin.copy:
        content: "{{ result | to_json }}"
        dest: "{{ record }}"
        mode: "0600"
"""
WRITES = frozenset(
    {
        "team/members/add_v2",
        "team/members/set_profile_v2",
        "team/members/suspend",
        "team/members/unsuspend",
        "team/members/remove",
        "team/members/recover",
        "team/groups/create",
        "team/groups/update",
        "team/groups/delete",
        "team/groups/members/add",
        "team/groups/members/remove",
    }
)
_dirs = itertools.count(1)
PEOPLE = {
    "jdoe": ("John", "Doe", "jdoe@example.org"),
    "asmith": ("Alice", "Smith", "Alice.Smith@example.org"),
    "bwhite": ("Bob", "White", "Bob.White@Example.org"),
}
GROUPS = {"Engineering": ["jdoe", "asmith"], "Sales": ["bwhite"]}


@pytest.fixture(scope="module")
def dropbox_slapd(tmp_path_factory, slapd_tls_dir):
    server = SlapdServer(tmp_path_factory.mktemp("dropbox-slapd"), tls_dir=slapd_tls_dir)
    with server:
        yield server


class Directory:
    def __init__(self, slapd, people=None, groups=None):
        people = PEOPLE if people is None else people
        groups = GROUPS if groups is None else groups
        self.slapd = slapd
        self.base = f"ou=x{next(_dirs)},{BASE}"
        self.people, self.groups = f"ou=people,{self.base}", f"ou=groups,{self.base}"
        ous = [
            f"dn: {dn}\nobjectClass: organizationalUnit\nou: {dn.split(',', maxsplit=1)[0][3:]}\n"
            for dn in (self.base, self.people, self.groups)
        ]
        entries = [person_ldif(self.dn(uid), uid, *values) for uid, values in people.items()]
        entries += [self.group_ldif(name, members) for name, members in groups.items()]
        slapd.add("\n".join(ous + entries))

    def dn(self, uid):
        return f"uid={uid},{self.people}"

    def group_dn(self, name):
        return f"cn={name},{self.groups}"

    def group_ldif(self, name, members):
        lines = [f"dn: {self.group_dn(name)}", "objectClass: groupOfNames", f"cn: {name}"]
        lines += [f"member: {self.dn(uid)}" for uid in members] or [f"member: cn=nobody,{self.base}"]
        return "\n".join(lines) + "\n"

    def members(self, group, add=(), remove=()):
        changes = [f"delete: member\nmember: {self.dn(uid)}\n" for uid in remove]
        changes += [f"add: member\nmember: {self.dn(uid)}\n" for uid in add]
        self.slapd.modify(f"dn: {self.group_dn(group)}\nchangetype: modify\n" + "-\n".join(changes))

    def replace(self, uid, attribute, value):
        self.slapd.modify(f"dn: {self.dn(uid)}\nchangetype: modify\nreplace: {attribute}\n{attribute}: {value}\n")

    def entry_uuid(self, dn):
        [(_dn, attributes)] = self.slapd.search("(objectClass=*)", ["entryUUID"], base=dn, scope="base")
        return attributes["entryUUID"][0]


class Env:
    def __init__(self, directory, fake, tmp_path):
        self.dir, self.fake, self.tmp_path, self.runs = directory, fake, tmp_path, 0

    def args(self, **overrides):
        source = {"server_uri": [self.dir.slapd.uri], "user_base_dn": self.dir.people, "group_base_dn": self.dir.groups}
        source.update(overrides.pop("source", {}))
        args = {"url": self.fake.api_url, "token_url": self.fake.token_url, "source": source}
        args.update(overrides)
        return args

    def run(self, check=False, diff=False, **overrides):
        self.runs += 1
        env = {
            "LDAP_BIND_DN": self.dir.slapd.reader_dn,
            "LDAP_BIND_PW": self.dir.slapd.reader_pw,
            "DROPBOX_APP_KEY": self.fake.app.app_key,
            "DROPBOX_APP_SECRET": self.fake.app.app_secret,
            "DROPBOX_REFRESH_TOKEN": self.fake.app.refresh_token,
        }
        done = run_playbook(
            self.tmp_path / f"run{self.runs}", PLAY, {"sync_args": self.args(**overrides)}, env, check, diff
        )
        assert done.rc == 0 and done.output, done.text[-4000:]
        return done.output

    def writes(self):
        return [c for c in self.fake.calls if c["route"] in WRITES]

    def twin(self, **overrides):
        before, writes = self.fake.snapshot(), len(self.writes())
        preview = self.run(check=True, diff=True, **overrides)
        assert self.fake.snapshot() == before, "check mode changed the fake"
        assert self.writes()[writes:] == [], "check mode wrote"
        applied = self.run(**overrides)
        assert not applied.get("failed"), json.dumps(applied, indent=1)[:3000]
        assert plan_of(preview) == plan_of(applied)
        assert preview["changed"] == applied["changed"]
        return applied

    def settled(self, **overrides):
        writes = len(self.writes())
        again = self.run(**overrides)
        assert not again.get("failed"), again.get("msg")
        assert again["changed"] is False, again["report"]["actions"]
        assert self.writes()[writes:] == []

    def sync(self, **overrides):
        applied = self.twin(**overrides)
        self.settled(**overrides)
        return applied

    def marker(self, dn):
        return PREFIX + self.dir.entry_uuid(dn)


@pytest.fixture
def fake():
    with DropboxFake(added_status="active") as service:
        yield service
        assert service.validation_errors == []
        service.assert_nothing_wiped()


@pytest.fixture
def env(dropbox_slapd, fake, tmp_path):
    return Env(Directory(dropbox_slapd), fake, tmp_path)


def assert_safe_deprovision_calls(fake):
    for call in fake.calls_to("team/members/suspend") + fake.calls_to("team/members/remove"):
        assert call["wipe_data"] is False, call
        assert call.get("permanently_delete_files") in (None, False), call


def test_U1_existing_member_is_linked_by_email_case_insensitively(env):
    existing = env.fake.seed_member("JDOE@Example.ORG", "Old", "Name")
    result = env.sync(manage_groups=False)
    assert counts(result)["link_user"] == 1
    assert [m.team_member_id for m in env.fake.members_by_email("jdoe@example.org")] == [existing.team_member_id]
    assert existing.external_id == env.marker(env.dir.dn("jdoe"))
    assert (existing.given_name, existing.surname) == ("John", "Doe")


def test_U2_25_users_are_added_in_batches_of_20_through_async_jobs(dropbox_slapd, fake, tmp_path):
    people = {f"u{i:02d}": (f"Given{i}", f"Sur{i}", f"u{i:02d}@example.org") for i in range(25)}
    env = Env(Directory(dropbox_slapd, people, {}), fake, tmp_path)
    result = env.sync(manage_groups=False)
    assert counts(result)["create_user"] == 25
    adds = fake.calls_to("team/members/add_v2")
    assert sorted(len(c["emails"]) for c in adds) == [5, 20]
    assert fake.unfinished_jobs() == []
    assert len([m for m in fake.team_members(include_admin=False) if m.status == "active"]) == 25


def test_U4_deprovision_suspends_by_default_without_wiping_and_unowned_member_untouched(env):
    outsider = env.fake.seed_member("outsider@example.org", "Out", "Sider")
    env.run(manage_groups=False)
    env.dir.slapd.delete(env.dir.dn("bwhite"))
    result = env.sync(manage_groups=False)
    assert counts(result) == {"disable_user": 1}
    assert env.fake.member("bob.white@example.org").status == "suspended"
    assert outsider.status == "active" and outsider.external_id is None
    assert_safe_deprovision_calls(env.fake)


def test_U4_remove_user_action_delete_removes_without_wiping(env):
    env.run(manage_groups=False, remove_user_action="delete")
    env.dir.slapd.delete(env.dir.dn("bwhite"))
    result = env.sync(manage_groups=False, remove_user_action="delete")
    assert counts(result) == {"delete_user": 1}
    assert env.fake.member("bob.white@example.org").status == "removed"
    assert env.fake.calls_to("team/members/remove")
    assert_safe_deprovision_calls(env.fake)


def test_U4_removed_but_recoverable_member_is_recovered_not_duplicated(env):
    removed = env.fake.seed_member("jdoe@example.org", "John", "Doe", status="removed")
    env.run(manage_groups=False)
    assert [m.team_member_id for m in env.fake.members_by_email("jdoe@example.org")] == [removed.team_member_id]
    assert removed.status == "active"
    assert env.fake.calls_to("team/members/recover")


def test_G2_groups_created_with_group_external_id_and_G4_G5(env):
    result = env.sync()
    assert counts(result)["create_group"] == 2
    engineering = env.fake.group("Engineering")
    assert engineering.external_id == env.marker(env.dir.group_dn("Engineering"))
    env.dir.members("Engineering", add=["bwhite"], remove=["asmith"])
    adds = len(env.fake.calls_to("team/groups/members/add"))
    result = env.sync()
    assert counts(result) == {"add_members": 1, "remove_members": 1}
    [add] = env.fake.calls_to("team/groups/members/add")[adds:]
    assert len(add["members"]) == 1  # only the difference
    env.dir.slapd.delete(env.dir.group_dn("Sales"))
    result = env.sync()
    assert counts(result) == {"delete_group": 1}
    assert env.fake.group("Sales") is None


def test_G1_existing_group_linked_by_name_and_G3_rename_keeps_id(env):
    existing = env.fake.seed_group("ENGINEERING")
    result = env.sync()
    assert counts(result)["link_group"] == 1
    env.dir.slapd.rename(env.dir.group_dn("Engineering"), "cn=Platform")
    result = env.sync()
    assert counts(result) == {"rename_group": 1}
    assert env.fake.group("Platform").group_id == existing.group_id


def test_U3_only_the_changed_mapped_field_is_written_and_a_second_run_changes_nothing(env):
    env.run(manage_groups=False)
    member = env.fake.member("jdoe@example.org")
    member.persistent_id = "set-by-an-admin"  # not mapped: must stay as it is
    env.dir.replace("jdoe", "sn", "Doe-Smith")
    result = env.sync(manage_groups=False)
    assert counts(result) == {"update_user": 1}
    [call] = env.fake.calls_to("team/members/set_profile_v2")
    # the fake records each call's decoded arguments beside its own bookkeeping (seq, route, outcome)
    assert set(call) - {"seq", "route", "user", "outcome"} == {"surname"}, call
    assert call["surname"] == "Doe-Smith"
    assert (member.given_name, member.surname, member.persistent_id) == ("John", "Doe-Smith", "set-by-an-admin")


def test_U4_member_leaving_scope_is_suspended_and_unsuspended_when_back(env):
    env.run(manage_groups=False)
    out_of_scope = {"user_filter": "(&(objectClass=inetOrgPerson)(!(uid=bwhite)))"}
    result = env.sync(manage_groups=False, source=out_of_scope)
    assert counts(result) == {"disable_user": 1}
    assert env.fake.member("bob.white@example.org").status == "suspended"
    result = env.sync(manage_groups=False)
    assert counts(result) == {"enable_user": 1}
    assert env.fake.member("bob.white@example.org").status == "active"
    assert env.fake.calls_to("team/members/unsuspend")
    assert_safe_deprovision_calls(env.fake)
