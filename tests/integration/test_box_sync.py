# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""box_sync end to end: a real slapd, the stateful fake Box, ansible-playbook for real (issue 10).

One slapd serves the whole module; every test writes its own directory under
``ou=<test>,dc=example,dc=org`` (people and groups), so tests never see each other's entries.
Every test has its own fake Box (tests/support/box_fake.py), which validates each request
against Box's OpenAPI description: the fixture fails a test that sent anything outside it, or
that rolled a user out of the enterprise (a PUT with ``enterprise: null``).

Every writing scenario runs as a check-mode twin first (``--check --diff``: the fake's state
byte-identical before and after, no write request at all, the same plan and ``changed`` as the
real run), then for real, then (where the scenario ends settled) once more: ``changed: false``
and not one write request. Behaviours are named as in DESIGN.md (U1-U4, G1-G5).
"""

from __future__ import annotations

import itertools
import json
import os
import stat
import subprocess
import sys
import time

import pytest
from support.box_fake import BoxApp, BoxFake
from support.playbook import BIN_DIR, COLLECTIONS_ROOT, INVENTORY
from support.seed import BASE
from support.slapd import SlapdServer

PREFIX = "idsync:"
PASSPHRASE = "box-jwt-passphrase-0451"
PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Sync
      idsync.provisioning.box_sync: {args}
      register: result
      ignore_errors: true
    - name: Record
      check_mode: false
      diff: false
      ansible.builtin.copy:
        content: "{{{{ result | to_json }}}}"
        dest: "{{{{ record }}}}"
        mode: "0600"
"""
_directories = itertools.count(1)


# -- the directory --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def box_slapd(tmp_path_factory, slapd_tls_dir):
    """One slapd for the module; tests write their own subtrees (see ``Directory``)."""
    server = SlapdServer(tmp_path_factory.mktemp("box-slapd"), tls_dir=slapd_tls_dir)
    with server:
        yield server


def person_ldif(dn, uid, given, sn, mail=None, title=None, phone=None, disabled=False):
    lines = [
        f"dn: {dn}",
        "objectClass: inetOrgPerson",
        f"uid: {uid}",
        f"cn: {given} {sn}",
        f"sn: {sn}",
        f"givenName: {given}",
        f"displayName: {given} {sn}",
    ]
    lines += [f"mail: {mail}"] if mail else []
    lines += [f"title: {title}"] if title else []
    lines += [f"telephoneNumber: {phone}"] if phone else []
    lines += ["pwdAccountLockedTime: 000001010000Z"] if disabled else []
    return "\n".join(lines) + "\n"


class Directory:
    """A test's own part of the shared directory: ``ou=people`` and ``ou=groups`` under ``ou=dN``.

    Seeded with the people and groups below; ``locked1`` is disabled (pwdAccountLockedTime).
    """

    PEOPLE = {
        "jdoe": ("John", "Doe", "jdoe@example.org", "Engineer", "+1 555 0101"),
        "asmith": ("Alice", "Smith", "Alice.Smith@example.org", "Engineering Manager", "+1 555 0102"),
        "bwhite": ("Bob", "White", "Bob.White@Example.org", None, None),
        "locked1": ("Locked", "User", "locked1@example.org", None, None),
    }
    GROUPS = {"Engineering": ["jdoe", "asmith"], "Sales": ["bwhite", "locked1"]}

    def __init__(self, slapd):
        self.slapd = slapd
        self.base = f"ou=d{next(_directories)},{BASE}"
        self.people = f"ou=people,{self.base}"
        self.groups = f"ou=groups,{self.base}"
        ous = [f"dn: {self.base}\nobjectClass: organizationalUnit\nou: {self.base.split(',')[0][3:]}\n"]
        ous += [
            f"dn: {dn}\nobjectClass: organizationalUnit\nou: {dn.split(',', maxsplit=1)[0][3:]}\n"
            for dn in (self.people, self.groups)
        ]
        people = [
            person_ldif(self.dn(uid), uid, *values, disabled=uid == "locked1") for uid, values in self.PEOPLE.items()
        ]
        groups = [self.group_ldif(name, members) for name, members in self.GROUPS.items()]
        slapd.add("\n".join(ous + people + groups))

    def dn(self, uid):
        return f"uid={uid},{self.people}"

    def group_dn(self, name):
        return f"cn={name},{self.groups}"

    def group_ldif(self, name, members):
        lines = [f"dn: {self.group_dn(name)}", "objectClass: groupOfNames", f"cn: {name}"]
        lines += [f"member: {self.dn(uid)}" for uid in members] or [f"member: cn=nobody,{self.base}"]
        return "\n".join(lines) + "\n"

    def add_person(self, uid, given, sn, mail, **options):
        self.slapd.add(person_ldif(self.dn(uid), uid, given, sn, mail, **options))

    def add_group(self, name, members):
        self.slapd.add(self.group_ldif(name, members))

    def replace(self, uid, attribute, value):
        self.slapd.modify(f"dn: {self.dn(uid)}\nchangetype: modify\nreplace: {attribute}\n{attribute}: {value}\n")

    def disable(self, uid):
        self.slapd.modify(
            f"dn: {self.dn(uid)}\nchangetype: modify\nadd: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n"
        )

    def enable(self, uid):
        self.slapd.modify(f"dn: {self.dn(uid)}\nchangetype: modify\ndelete: pwdAccountLockedTime\n")

    def delete(self, uid):
        self.slapd.delete(self.dn(uid))

    def remove(self, uid, attribute):
        self.slapd.modify(f"dn: {self.dn(uid)}\nchangetype: modify\ndelete: {attribute}\n")

    def members(self, group, add=(), remove=()):
        changes = [f"delete: member\nmember: {self.dn(uid)}\n" for uid in remove]
        changes += [f"add: member\nmember: {self.dn(uid)}\n" for uid in add]
        self.slapd.modify(f"dn: {self.group_dn(group)}\nchangetype: modify\n" + "-\n".join(changes))

    def entry_uuid(self, dn):
        [(_dn, attributes)] = self.slapd.search("(objectClass=*)", ["entryUUID"], base=dn, scope="base")
        return attributes["entryUUID"][0]


# -- one ansible-playbook per test ----------------------------------------------------------------------
STEPS_PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: First step
      ansible.builtin.set_fact:
        step: "{{ lookup('ansible.builtin.pipe', handover ~ ' -1 -') | from_json }}"
    - name: Steps
      ansible.builtin.include_tasks: steps.yml
      loop: "{{ range(200) | list }}"
      loop_control:
        loop_var: step_index
"""
STEPS_TASKS = """
- name: Stop
  ansible.builtin.meta: end_play
  when: step.stop | default(false)
- name: Sync
  idsync.provisioning.box_sync: "{{ step.args }}"
  check_mode: "{{ step.check }}"
  diff: "{{ step.diff }}"
  register: result
  ignore_errors: true
- name: Hand the result over and take the next step
  ansible.builtin.set_fact:
    step: "{{ lookup('ansible.builtin.pipe', handover ~ ' ' ~ step_index ~ ' ' ~ (result | to_json | b64encode)) | from_json }}"
"""
HANDOVER = """#!/bin/sh
# handover <done step> <its result, base64, or ->: write the result, wait for the next step, print it
d=$(dirname "$0"); n=$1; m=$((n + 1)); i=0
if [ "$2" != "-" ]; then printf %s "$2" | base64 -d >"$d/.result$n" && mv "$d/.result$n" "$d/result$n.json"; fi
while [ ! -e "$d/step$m.json" ]; do i=$((i + 1)); [ $i -gt 15000 ] && exit 1; sleep 0.02; done
cat "$d/step$m.json"
"""


class Playbook:
    """One ansible-playbook process that runs box_sync once per ``step()``, as many times as a test asks.

    Each step is a real task (``check_mode``/``diff`` set on it, as ``--check --diff`` would); between
    steps the test reads the fake and changes the directory. One process per test saves
    ansible-playbook's start-up for every run.
    """

    def __init__(self, tmp_path, env, verbosity=0):
        self.work = tmp_path
        tmp_path.mkdir(parents=True, exist_ok=True)
        (tmp_path / "play.yml").write_text(STEPS_PLAY)
        (tmp_path / "steps.yml").write_text(STEPS_TASKS)
        handover = tmp_path / "handover"
        handover.write_text(HANDOVER)
        handover.chmod(0o700)
        (tmp_path / "inventory.ini").write_text(INVENTORY)
        variables = {"handover": str(handover), "ansible_python_interpreter": sys.executable}
        (tmp_path / "vars.json").write_text(json.dumps(variables))
        command = [str(BIN_DIR / "ansible-playbook"), "-i", str(tmp_path / "inventory.ini")]
        command += ["-e", f"@{tmp_path / 'vars.json'}", str(tmp_path / "play.yml")]
        command += ["-" + "v" * verbosity] if verbosity else []
        run_env = dict(os.environ)
        run_env.update(
            {
                "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS_ROOT),
                "ANSIBLE_NOCOLOR": "1",
                "ANSIBLE_RETRY_FILES_ENABLED": "0",
                "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
                "ANSIBLE_DEPRECATION_WARNINGS": "0",
            }
        )
        run_env.update(env)
        self.stdout = open(tmp_path / "stdout", "w+")  # noqa: SIM115 - closed in close()
        self.stderr = open(tmp_path / "stderr", "w+")  # noqa: SIM115
        self.proc = subprocess.Popen(command, stdout=self.stdout, stderr=self.stderr, env=run_env)
        self.steps = 0

    @property
    def text(self):
        return (self.work / "stdout").read_text() + (self.work / "stderr").read_text()

    def _put(self, step):
        path = self.work / f"step{self.steps}.json"
        temporary = self.work / f".step{self.steps}"
        temporary.write_text(json.dumps(step))
        temporary.replace(path)

    def step(self, args, check=False, diff=False):
        self._put({"args": args, "check": check, "diff": diff})
        result = self.work / f"result{self.steps}.json"
        deadline = time.monotonic() + 300
        while not result.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"ansible-playbook ended (rc {self.proc.returncode}):\n{self.text[-6000:]}")
            time.sleep(0.01)
        self.steps += 1
        return json.loads(result.read_text())

    def close(self):
        if self.proc.poll() is None:
            self._put({"stop": True})
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stdout.close()
        self.stderr.close()
        assert self.proc.returncode == 0, self.text[-6000:]


# -- Box and the runs ----------------------------------------------------------------------------------
class Env:
    """One test's directory, fake Box, state file and box_sync runs (one ansible-playbook process)."""

    def __init__(self, directory, fake, tmp_path, verbosity=0):
        self.dir = directory
        self.box = fake
        self.tmp_path = tmp_path
        self.state_file = tmp_path / "box-state.json"
        self.verbosity = verbosity
        self.playbook = None
        app = fake.app
        self.auth_env = {
            "BOX_CLIENT_ID": app.client_id,
            "BOX_CLIENT_SECRET": app.client_secret,
            "BOX_ENTERPRISE_ID": app.enterprise_id,
        }

    def args(self, **overrides):
        source = {
            "server_uri": [self.dir.slapd.uri],
            "user_base_dn": self.dir.people,
            "group_base_dn": self.dir.groups,
        }
        source.update(overrides.pop("source", {}))
        source = {key: value for key, value in source.items() if value is not None}
        args = {
            "url": self.box.api_url,
            "token_url": self.box.token_url,
            "state_file": str(self.state_file),
            "source": source,
        }
        args.update(overrides)
        return args

    def run(self, check=False, diff=False, **overrides):
        if self.playbook is None:
            run_env = {"LDAP_BIND_DN": self.dir.slapd.reader_dn, "LDAP_BIND_PW": self.dir.slapd.reader_pw}
            run_env.update(self.auth_env)
            self.playbook = Playbook(self.tmp_path / "play", run_env, self.verbosity)
        return self.playbook.step(self.args(**overrides), check=check, diff=diff)

    def close(self):
        """End the playbook; its whole output (stdout and stderr) is returned."""
        if self.playbook is None:
            return ""
        playbook, self.playbook = self.playbook, None
        playbook.close()
        return playbook.text

    def preview(self, **overrides):
        """The check-mode twin: nothing written (state byte-identical, no write request)."""
        before, writes = self.box.snapshot(), len(self.box.writes())
        preview = self.run(check=True, diff=True, **overrides)
        self.box.assert_unchanged(before)
        assert self.box.writes()[writes:] == [], "check mode sent write requests"
        assert preview["report"]["check_mode"] is True
        return preview

    def twin(self, **overrides):
        """Preview, then apply: the same plan and the same ``changed``. Returns the applied result."""
        preview = self.preview(**overrides)
        applied = self.run(**overrides)
        assert plan_of(preview) == plan_of(applied), "the preview planned something else than the run did"
        assert preview["changed"] == applied["changed"]
        return applied

    def sync(self, **overrides):
        """Preview, apply (no failure), apply again (nothing to do: changed false, zero writes)."""
        applied = self.twin(**overrides)
        assert not applied.get("failed"), json.dumps(applied, indent=1)[:3000]
        self.settled(**overrides)
        return applied

    def provision(self, **overrides):
        """A set-up run (its own behaviour is proven by the U2 and G2 tests): applied, no failure."""
        applied = self.run(**overrides)
        assert not applied.get("failed"), json.dumps(applied, indent=1)[:3000]
        return applied

    def settled(self, **overrides):
        writes = len(self.box.writes())
        again = self.run(**overrides)
        assert not again.get("failed"), again.get("msg")
        assert again["changed"] is False, again["report"]["actions"]
        assert again["report"]["counts"] == {}
        assert self.box.writes()[writes:] == [], "a settled run wrote"
        return again

    def state(self):
        return json.loads(self.state_file.read_text())

    def user(self, login):
        return self.box.user_by_login(login)

    def group(self, name):
        return self.box.group_by_name(name)

    def member_logins(self, name):
        group = self.group(name)
        return sorted(self.box.users[uid]["login"].lower() for uid in self.box.members_of(group["id"]))

    def managed_logins(self):
        return sorted(u["login"].lower() for u in self.box.managed_users())


def plan_of(result):
    return sorted((a["kind"], a["name"]) for a in result["report"]["actions"])


def counts(result):
    return result["report"]["counts"]


def failures(result):
    return {(f["kind"], f["name"]): f["error"] for f in result["report"]["failures"]}


ACTIVE = ["alice.smith@example.org", "bob.white@example.org", "jdoe@example.org"]


@pytest.fixture
def box_fake():
    with BoxFake() as fake:
        yield fake
        fake.assert_valid()  # zero requests outside Box's OpenAPI description
        fake.assert_never_removed_from_enterprise()


@pytest.fixture
def env(box_slapd, box_fake, tmp_path):
    env = Env(Directory(box_slapd), box_fake, tmp_path)
    yield env
    env.close()


# -- users ----------------------------------------------------------------------------------------------
def test_U2_users_in_scope_are_provisioned_and_disabled_users_skipped(env):
    result = env.sync()
    assert counts(result)["create_user"] == 3
    assert env.managed_logins() == ACTIVE  # locked1 is disabled in the directory: not created
    jdoe = env.user("jdoe@example.org")
    assert (jdoe["name"], jdoe["job_title"], jdoe["phone"], jdoe["status"]) == (
        "John Doe",
        "Engineer",
        "+1 555 0101",
        "active",
    )
    assert env.user("locked1@example.org") is None
    # Box users carry no marker: the state file records what this provisioner created
    state = env.state()
    assert oct(stat.S_IMODE(os.stat(env.state_file).st_mode)) == "0o600"
    assert state["users"][jdoe["id"]]["marker"] == PREFIX + env.dir.entry_uuid(env.dir.dn("jdoe"))
    assert len(state["users"]) == 3


def test_U2_disabled_user_is_created_inactive_with_provision_disabled_users(env):
    result = env.sync(provision_disabled_users=True)
    assert counts(result)["create_user"] == 4
    assert env.user("locked1@example.org")["status"] == "inactive"
    assert env.user("jdoe@example.org")["status"] == "active"


def test_U2_scope_by_filter_and_by_user_groups(env):
    env.dir.add_person("outsider", "Otto", "Side", "otto@example.org", title="Contractor")
    scoped = {
        "source": {
            "user_filter": "(&(objectClass=inetOrgPerson)(!(title=Contractor)))",
            "user_groups": [env.dir.group_dn("Engineering")],
        },
        "manage_groups": False,
    }
    result = env.sync(**scoped)
    assert counts(result) == {"create_user": 2}
    assert env.managed_logins() == ["alice.smith@example.org", "jdoe@example.org"]


def test_U1_existing_user_is_linked_by_login_case_insensitively(env):
    existing = env.box.seed_user("JDOE@Example.ORG", "Old Name", address="1 Unmapped Way", space_amount=5 * 2**30)
    result = env.sync(manage_groups=False)
    assert counts(result)["link_user"] == 1
    assert counts(result)["create_user"] == 2
    matches = [u for u in env.box.managed_users() if u["login"].lower() == "jdoe@example.org"]
    assert [u["id"] for u in matches] == [existing["id"]]  # linked, not duplicated
    linked = env.user("jdoe@example.org")
    assert linked["name"] == "John Doe"
    assert linked["address"] == "1 Unmapped Way"  # unmapped: left alone
    assert linked["space_amount"] == 5 * 2**30
    assert env.state()["users"][existing["id"]]["marker"] == PREFIX + env.dir.entry_uuid(env.dir.dn("jdoe"))


def test_U3_only_changed_mapped_fields_are_written_never_enterprise(env):
    env.provision(manage_groups=False)
    jdoe = env.user("jdoe@example.org")
    jdoe["address"] = "Unmapped Street 5"  # set in Box behind the provisioner's back
    jdoe["language"] = "de"
    env.dir.replace("jdoe", "title", "Staff Engineer")
    puts = len(env.box.requests_matching("PUT", "/2.0/users/{user_id}"))
    result = env.sync(manage_groups=False)
    updates = [a for a in result["report"]["actions"] if a["kind"] == "update_user"]
    assert [(a["name"], sorted(a["changes"])) for a in updates] == [("jdoe@example.org", ["job_title"])]
    [put] = env.box.requests_matching("PUT", "/2.0/users/{user_id}")[puts:]
    assert put.body == {"job_title": "Staff Engineer"}  # the changed field only; never enterprise
    jdoe = env.user("jdoe@example.org")
    assert (jdoe["job_title"], jdoe["address"], jdoe["language"]) == ("Staff Engineer", "Unmapped Street 5", "de")
    assert jdoe["enterprise"] is not None


def test_U4_users_deleted_disabled_or_out_of_scope_become_inactive_and_come_back_re_enabled(env):
    scoped = {"source": {"user_filter": "(&(objectClass=inetOrgPerson)(!(title=Departed)))"}}
    env.provision(**scoped)
    env.dir.members("Engineering", remove=["jdoe"])
    env.dir.delete("jdoe")  # deleted in the directory
    env.dir.disable("asmith")  # disabled there
    env.dir.replace("bwhite", "title", "Departed")  # out of the scope
    result = env.sync(**scoped)
    assert counts(result) == {"disable_user": 3, "remove_members": 2}
    assert {u["login"].lower(): u["status"] for u in env.box.managed_users()} == dict.fromkeys(ACTIVE, "inactive")
    assert env.member_logins("Engineering") == []
    assert env.member_logins("Sales") == []
    assert env.box.deleted_users == []  # kept with their content: disable is the default
    env.dir.enable("asmith")
    env.dir.remove("bwhite", "title")
    result = env.sync(**scoped)
    assert counts(result) == {"enable_user": 2, "add_members": 2}
    assert env.user("alice.smith@example.org")["status"] == "active"
    assert env.user("bob.white@example.org")["status"] == "active"
    assert env.user("jdoe@example.org")["status"] == "inactive"
    assert env.member_logins("Engineering") == ["alice.smith@example.org"]


def test_U4_remove_user_action_delete_deletes_the_account(env):
    env.provision(remove_user_action="delete", manage_groups=False)
    env.dir.delete("bwhite")
    result = env.sync(remove_user_action="delete", manage_groups=False)
    assert counts(result) == {"delete_user": 1}
    assert env.user("bob.white@example.org") is None
    [deleted] = env.box.deleted_users
    assert (deleted["login"], deleted["force"]) == ("Bob.White@Example.org", False)  # never force unless asked
    assert len(env.state()["users"]) == 2


def test_U4_account_never_created_or_linked_is_untouched(env):
    outsider = env.box.seed_user("outsider@example.org", "Out Sider", job_title="Keeps it", address="Elsewhere 1")
    engineering = env.box.seed_group("Finance", members=[outsider["id"]])
    before = json.dumps(outsider, sort_keys=True)
    env.provision(remove_user_action="delete")
    env.dir.delete("bwhite")
    env.provision(remove_user_action="delete")
    assert json.dumps(env.user("outsider@example.org"), sort_keys=True) == before
    assert env.box.members_of(engineering["id"]) == {outsider["id"]}
    assert outsider["id"] not in env.state()["users"]
    touched = [e for e in env.box.writes() if outsider["id"] in e.path or outsider["id"] in json.dumps(e.body)]
    assert touched == []


# -- groups --------------------------------------------------------------------------------------------
def test_G2_groups_in_scope_are_provisioned_with_marker_and_provenance(env):
    result = env.sync()
    assert counts(result)["create_group"] == 2
    engineering, sales = env.group("Engineering"), env.group("Sales")
    assert engineering["external_sync_identifier"] == PREFIX + env.dir.entry_uuid(env.dir.group_dn("Engineering"))
    assert engineering["provenance"] == "idsync.provisioning"
    assert sales["provenance"] == "idsync.provisioning"
    assert env.member_logins("Engineering") == ["alice.smith@example.org", "jdoe@example.org"]
    assert env.member_logins("Sales") == ["bob.white@example.org"]  # locked1 is not provisioned


def test_G1_existing_group_is_linked_by_name(env):
    existing = env.box.seed_group("ENGINEERING")
    result = env.sync()
    assert counts(result)["link_group"] == 1
    assert counts(result)["create_group"] == 1
    assert [g["id"] for g in env.box.managed_groups() if g["name"].lower() == "engineering"] == [existing["id"]]
    linked = env.group("Engineering")
    assert linked["external_sync_identifier"] == PREFIX + env.dir.entry_uuid(env.dir.group_dn("Engineering"))
    assert env.member_logins("Engineering") == ["alice.smith@example.org", "jdoe@example.org"]


def test_G3_renamed_group_keeps_its_box_id(env):
    env.provision()
    before = env.group("Sales")
    env.dir.slapd.rename(env.dir.group_dn("Sales"), "cn=Revenue")
    deletes = len(env.box.requests_matching("DELETE", "/2.0/groups/{group_id}"))
    result = env.sync()
    assert counts(result) == {"rename_group": 1}
    after = env.group("Revenue")
    assert after["id"] == before["id"]
    assert env.group("Sales") is None
    assert env.box.requests_matching("DELETE", "/2.0/groups/{group_id}")[deletes:] == []
    assert env.box.requests_matching("POST", "/2.0/groups")[2:] == []  # the two creates of the first run only
    assert env.member_logins("Revenue") == ["bob.white@example.org"]


def test_G4_membership_is_overwritten_by_membership_id(env):
    env.provision()
    outsider = env.box.seed_user("outsider@example.org")
    engineering = env.group("Engineering")
    env.box.add_member(engineering["id"], outsider["id"])  # added in Box, not in the directory
    env.dir.members("Engineering", add=["bwhite"], remove=["asmith"])
    memberships = {m["user_id"]: mid for mid, m in env.box.memberships.items() if m["group_id"] == engineering["id"]}
    result = env.sync()
    assert counts(result) == {"add_members": 1, "remove_members": 1}
    assert env.member_logins("Engineering") == ["bob.white@example.org", "jdoe@example.org"]
    removed = sorted(e.path for e in env.box.requests_matching("DELETE", "/2.0/group_memberships/{membership_id}"))
    asmith = env.user("alice.smith@example.org")["id"]
    assert removed == sorted(f"/2.0/group_memberships/{memberships[uid]}" for uid in (asmith, outsider["id"]))
    # jdoe's membership was never re-added
    assert [e.body["user"]["id"] for e in env.box.requests_matching("POST", "/2.0/group_memberships")][-1] == (
        env.user("bob.white@example.org")["id"]
    )


def test_G5_managed_group_deleted_or_out_of_scope_is_deleted_unmanaged_untouched(env):
    finance = env.box.seed_group("Finance")
    env.dir.add_group("Support", ["jdoe"])
    env.provision()
    env.dir.slapd.delete(env.dir.group_dn("Sales"))
    result = env.sync()
    assert counts(result) == {"delete_group": 1}
    assert env.group("Sales") is None
    narrower = {"source": {"group_filter": "(cn=Engineering)"}}
    result = env.sync(**narrower)
    assert counts(result) == {"delete_group": 1}
    assert sorted(g["name"] for g in env.box.managed_groups()) == ["Engineering", "Finance"]
    assert env.box.groups[finance["id"]] == finance


# -- safety ----------------------------------------------------------------------------------------------
def test_thresholds_as_count_or_percentage_fail_before_any_write_with_the_plan(env):
    env.provision(manage_groups=False)
    env.dir.disable("jdoe")
    env.dir.disable("asmith")
    cases = [  # 3 managed users, 2 to deprovision: option, refused, allowed
        ("disable", "max_disables", "1", "2"),
        ("disable", "max_disables", "50%", "70%"),
        ("delete", "max_deletes", "1", "67%"),
    ]
    for action, option, refused, allowed in cases:
        policy = {"remove_user_action": action, "manage_groups": False}
        before, writes = env.box.snapshot(), len(env.box.writes())
        for check in (True, False):
            result = env.run(check=check, **policy, **{option: refused})
            assert result["failed"] is True, (option, refused)
            assert option in result["msg"] and "nothing was written" in result["msg"]
            planned = sorted(a["name"].lower() for a in result["plan"]["actions"] if a["kind"] == f"{action}_user")
            assert planned == ["alice.smith@example.org", "jdoe@example.org"]
            env.box.assert_unchanged(before)
            assert env.box.writes()[writes:] == []
        if action == "disable":
            preview = env.preview(**policy, **{option: allowed})
            assert counts(preview) == {"disable_user": 2}
    result = env.run(remove_user_action="delete", manage_groups=False, max_deletes="67%")
    assert not result.get("failed"), result.get("msg")
    assert counts(result) == {"delete_user": 2}
    assert env.managed_logins() == ["bob.white@example.org"]


def test_429_storm_is_survived_without_loss(env):
    env.box.rate_limit(3, per=1.0, retry_after=1)
    result = env.run()
    assert not result.get("failed"), result.get("msg")
    assert env.box.rate_limiter.hits > 0, "the storm did not happen"
    env.box.rate_limit(None)
    assert env.managed_logins() == ACTIVE
    creates = [e for e in env.box.requests_matching("POST", "/2.0/users") if e.status == 201]
    assert sorted(e.body["login"].lower() for e in creates) == ACTIVE  # each created exactly once
    assert env.member_logins("Engineering") == ["alice.smith@example.org", "jdoe@example.org"]
    env.settled()


@pytest.mark.parametrize("grant", ["client_credentials", "jwt"])
def test_both_grants_renew_a_token_expiring_mid_run(box_slapd, tmp_path, grant):
    app = BoxApp(token_max_uses=3)  # every token dies after three API requests
    with BoxFake(app=app) as fake:
        env = Env(Directory(box_slapd), fake, tmp_path)
        if grant == "jwt":
            config = app.config(PASSPHRASE)
            del config["boxAppSettings"]["appAuth"]["passphrase"]  # given through the environment
            config_file = tmp_path / "box-config.json"
            config_file.touch(mode=0o600)
            config_file.write_text(json.dumps(config))
            env.auth_env = {"BOX_CONFIG_FILE": str(config_file), "BOX_JWT_PASSPHRASE": PASSPHRASE}
        env.provision()
        env.close()
        assert env.managed_logins() == ACTIVE
        grants = {e.body["grant_type"] for e in fake.requests_matching("POST", "/oauth2/token")}
        assert grants == {
            "client_credentials" if grant == "client_credentials" else "urn:ietf:params:oauth:grant-type:jwt-bearer"
        }
        renewed = [e for e in fake.requests if e.status == 401]
        assert renewed, "no token expired during the run"
        assert len(fake.requests_matching("POST", "/oauth2/token")) > 3
        fake.assert_valid()
        fake.assert_never_removed_from_enterprise()


def test_content_is_transferred_before_delete(env):
    options = {"remove_user_action": "delete", "transfer_content_to": "archive@example.org", "manage_groups": False}
    archive = env.box.seed_user("archive@example.org", "Archive")
    env.provision(**options)
    jdoe = env.user("jdoe@example.org")
    env.box.give_content(jdoe["id"], 7)
    env.dir.delete("jdoe")
    result = env.sync(**options)
    assert counts(result) == {"delete_user": 1}
    assert env.user("jdoe@example.org") is None
    assert [(t["from"], t["to"], t["items"]) for t in env.box.transfers] == [(jdoe["id"], archive["id"], 7)]
    assert env.box.user_state[archive["id"]].content == 7
    assert [(d["login"], d["force"], d["content_deleted"]) for d in env.box.deleted_users] == [
        ("jdoe@example.org", False, 0)
    ]


def test_content_transfer_that_finishes_later_fails_the_delete_once_then_succeeds(env):
    options = {"remove_user_action": "delete", "transfer_content_to": "archive@example.org", "manage_groups": False}
    archive = env.box.seed_user("archive@example.org", "Archive")
    env.provision(**options)
    jdoe = env.user("jdoe@example.org")
    env.box.give_content(jdoe["id"], 3)
    env.dir.delete("jdoe")
    env.box.transfer_finishes_later = 1  # Box answers the move, and is still moving
    preview = env.preview(**options)
    result = env.run(**options)
    assert plan_of(preview) == plan_of(result)
    # (changed: see test_a_delete_failing_after_its_content_was_moved_reports_changed)
    assert result["failed"] is True
    error = failures(result)[("delete_user", "jdoe@example.org")]
    assert "next run retries" in error and "User still owns content" in error
    assert env.user("jdoe@example.org") is not None
    assert env.box.user_state[archive["id"]].content == 3  # moved: nothing lost
    env.box.transfer_finishes_later = 0  # Box has finished
    result = env.sync(**options)
    assert counts(result) == {"delete_user": 1}
    assert env.user("jdoe@example.org") is None
    assert [d["force"] for d in env.box.deleted_users] == [False]


def test_a_delete_failing_after_its_content_was_moved_reports_changed(env):
    options = {"remove_user_action": "delete", "transfer_content_to": "archive@example.org", "manage_groups": False}
    env.box.seed_user("archive@example.org", "Archive")
    env.provision(**options)
    env.box.give_content(env.user("jdoe@example.org")["id"], 3)
    env.dir.delete("jdoe")
    env.box.transfer_finishes_later = 1
    preview = env.preview(**options)
    result = env.run(**options)
    assert result["failed"] is True
    assert len(env.box.transfers) == 1  # written: the content was moved
    assert result["changed"] is True
    assert preview["changed"] == result["changed"]


def test_delete_refused_by_legal_hold_is_reported_and_the_others_processed(env):
    options = {"remove_user_action": "delete", "manage_groups": False}
    env.provision(**options)
    jdoe = env.user("jdoe@example.org")
    env.box.place_legal_hold(jdoe["id"])
    held = json.dumps(jdoe, sort_keys=True)
    env.dir.delete("jdoe")
    env.dir.delete("asmith")
    env.dir.replace("bwhite", "title", "Sales Lead")
    result = env.twin(**options)
    assert result["failed"] is True
    assert "jdoe@example.org" in result["msg"]
    assert list(failures(result)) == [("delete_user", "jdoe@example.org")]
    error = failures(result)[("delete_user", "jdoe@example.org")]
    assert "jdoe@example.org" in error and "User cannot be deleted due to retention policies" in error
    assert json.dumps(env.user("jdoe@example.org"), sort_keys=True) == held  # untouched
    assert env.user("alice.smith@example.org") is None  # every other user processed
    assert env.user("bob.white@example.org")["job_title"] == "Sales Lead"
    assert [d["login"] for d in env.box.deleted_users] == ["Alice.Smith@example.org"]


def test_no_secret_in_output_result_or_state_file(box_slapd, tmp_path):
    app = BoxApp(token_max_uses=4)
    with BoxFake(app=app) as fake:
        directory = Directory(box_slapd)
        config = app.config(PASSPHRASE)
        del config["boxAppSettings"]["appAuth"]["passphrase"]
        config_file = tmp_path / "box-config.json"
        config_file.touch(mode=0o600)
        config_file.write_text(json.dumps(config))
        texts = []
        ccg = Env(directory, fake, tmp_path / "ccg", verbosity=3)
        ccg.state_file = tmp_path / "box-state.json"
        results = [ccg.run(check=True, diff=True), ccg.run(diff=True)]
        texts.append(ccg.close())
        directory.replace("jdoe", "title", "Principal")
        jwt_env = Env(directory, fake, tmp_path / "jwt", verbosity=3)
        jwt_env.state_file = ccg.state_file
        jwt_env.auth_env = {"BOX_CONFIG_FILE": str(config_file), "BOX_JWT_PASSPHRASE": PASSPHRASE}
        results += [jwt_env.run(check=True, diff=True), jwt_env.run(diff=True)]
        texts.append(jwt_env.close())
        assert [r.get("failed", False) for r in results] == [False] * 4, [r.get("msg") for r in results]
        assert counts(results[3]) == {"update_user": 1}
        texts += [json.dumps(results), ccg.state_file.read_text()]
        assert len(fake.tokens) > 2, "tokens were not renewed"
        key_body = "".join(config["boxAppSettings"]["appAuth"]["privateKey"].splitlines()[1:-1])
        secrets = [app.client_secret, PASSPHRASE, key_body[:40], directory.slapd.reader_pw, *fake.tokens]
        text = "\n".join(texts)
        assert "Principal" in text  # the -vvv output and the diff were read
        leaked = [secret[:6] + "..." for secret in secrets if secret in text]
        assert leaked == []
        fake.assert_valid()
        fake.assert_never_removed_from_enterprise()
