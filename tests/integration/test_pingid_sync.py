# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""pingid_sync end to end: a real slapd, the stateful fake PingID, ansible-playbook for real (issue 12).

One slapd and one fake PingID serve the whole module (a playbook run costs seconds, so runs are
few): every test writes its own directory under ``ou=x<n>,dc=example,dc=org``, resets the fake and
has its own state file. The fake verifies every request's signature, token, org and timestamp,
validates every body, and records every EditUser field that became null; the fixture fails a test
that sent an invalid body or made PingID null a field it left out.

Behaviours are named as in DESIGN.md (U1-U4). PingID cannot list its users except through the
organisation report job, so ownership lives in the state file: the tests assert on the fake's
recorded requests that a run with nothing to do sends nothing at all, and that the verification
run (asked, or automatic) is what finds an account deleted behind the provisioner's back.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
from integration.test_box_sync import counts, failures, plan_of  # plain functions
from integration.test_dropbox_sync import Directory  # a per-test subtree of the module's slapd
from support.pingid_fake import PingIDFake
from support.playbook import REPO_ROOT, run_playbook
from support.slapd import SlapdServer

# Several runs of the module in one ansible-playbook (a run of ansible-playbook costs seconds): each
# step has its own options, check mode and diff; their results are recorded in order. Python changes
# the directory or the fake only between playbooks.
PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Sync
      idsync.provisioning.pingid_sync: "{{ item.args }}"
      check_mode: "{{ item.check }}"
      diff: "{{ item.diff }}"
      loop: "{{ steps }}"
      loop_control:
        label: "step {{ item.check | ternary('check', 'apply') }}"
      register: result
      ignore_errors: true
    - name: Record
      check_mode: false
      diff: false
      ansible.builtin.copy:
        content: "{{ result.results | to_json }}"
        dest: "{{ record }}"
        mode: "0600"
"""
PEOPLE = {
    "jdoe": ("John", "Doe", "jdoe@example.org"),
    "asmith": ("Alice", "Smith", "asmith@example.org"),
    "bwhite": ("Bob", "White", "bwhite@example.org"),
}
EVERYONE = ["asmith", "bwhite", "jdoe"]
WRITES = ("AddUser", "EditUser", "SuspendUser", "ActivateUser", "DeleteUser")


@pytest.fixture(scope="module")
def pingid_slapd(tmp_path_factory, slapd_tls_dir):
    server = SlapdServer(tmp_path_factory.mktemp("pingid-slapd"), tls_dir=slapd_tls_dir)
    with server:
        yield server


@pytest.fixture(scope="module")
def pingid_fake(tmp_path_factory):
    service = PingIDFake().start()
    service.properties_path = service.write_properties(tmp_path_factory.mktemp("pingid-org") / "pingid.properties")
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture
def fake(pingid_fake):
    pingid_fake.reset()
    pingid_fake.report_polls = 0  # the report is ready at the first GetJobStatus: no waits between polls
    yield pingid_fake
    assert not pingid_fake.validation_errors, pingid_fake.validation_errors
    pingid_fake.assert_nothing_omitted()


class Env:
    """One test's directory, state file and playbook runs against the module's fake."""

    def __init__(self, directory, fake, tmp_path):
        self.dir, self.fake, self.tmp_path, self.runs = directory, fake, tmp_path, 0
        self.state_file = tmp_path / "pingid-state.json"

    def args(self, **overrides):
        source = {"server_uri": [self.dir.slapd.uri], "user_base_dn": self.dir.people}
        source.update(overrides.pop("source", {}))
        args = {"source": source, "state_file": str(self.state_file)}
        args.update(overrides)
        return args

    def env(self):
        return {
            "LDAP_BIND_DN": self.dir.slapd.reader_dn,
            "LDAP_BIND_PW": self.dir.slapd.reader_pw,
            "PINGID_PROPERTIES_FILE": str(self.fake.properties_path),
        }

    def run(self, check=False, diff=False, ok=True, **overrides):
        """One run of the module (one playbook); its result."""
        return self.play({"check": check, "diff": diff, "ok": ok, **overrides})[0]

    def play(self, *steps):
        """Several runs in one playbook, each ``{"check", "diff", "ok", **options}``; their results."""
        self.runs += 1
        plan = [
            {
                "check": step.get("check", False),
                "diff": step.get("diff", False),
                "args": self.args(**{k: v for k, v in step.items() if k not in ("check", "diff", "ok")}),
            }
            for step in steps
        ]
        done = run_playbook(self.tmp_path / f"run{self.runs}", PLAY, {"steps": plan}, self.env())
        assert done.rc == 0 and len(done.output) == len(steps), done.text[-4000:]
        for step, result in zip(steps, done.output, strict=True):
            if step.get("ok", True):
                assert not result.get("failed"), json.dumps(result, indent=1)[:4000]
        return done.output

    def sent(self, since):
        """The operations the fake received since ``since`` (an index into its log)."""
        return self.fake.operations()[since:]

    def mark(self):
        return len(self.fake.operations())


@pytest.fixture
def env(pingid_slapd, fake, tmp_path):
    return Env(Directory(pingid_slapd, PEOPLE, {}), fake, tmp_path)


def state(env):
    return json.loads(env.state_file.read_text())


def by_operation(result):
    """The module's own count of its requests (``"POST AddUser": 2``), per PingID operation."""
    return Counter({key.rsplit(" ", 1)[-1]: count for key, count in result["requests"].items()})


def sent_by(result):
    """How many requests the module says it sent (its connector's count, per operation)."""
    return sum(result["requests"].values())


# -- U1, U2 with a state file; check mode; the no-op run ---------------------------------------------
def test_U1_U2_with_a_state_file_existing_user_linked_by_key_others_added_check_mode_then_a_no_op_run(env):
    """An account whose userName equals uid case-insensitively is linked and updated, the others are
    added. The preview before writes nothing (not even the state file) and plans the same. The run
    after, whose source did not change, sends not one request (no write, no per-user read)."""
    existing = env.fake.seed_user("JDOE", "Old", "Name", "jdoe@example.org", role="ADMIN")
    mapping = {"email": ""}  # e-mail not mapped: the seeded one must survive EditUser's full replace
    before = env.fake.snapshot()
    preview = env.run(check=True, diff=True, user_mapping=mapping)
    assert env.fake.snapshot() == before and env.fake.write_operations() == [], "check mode wrote"
    assert not env.state_file.exists(), "check mode wrote the state file"
    assert preview["verification"] == {
        "full": True,
        "reason": "the state file has never been verified against the target",
    }
    link = next(entry for entry in preview["diff"] if entry.get("before_header") == "user jdoe (link_user)")
    assert json.loads(link["before"])["fname"] == "Old" and json.loads(link["after"])["fname"] == "John"

    applied, again = env.play({"user_mapping": mapping}, {"user_mapping": mapping})
    assert (
        plan_of(applied)
        == plan_of(preview)
        == [
            ("create_user", "asmith"),
            ("create_user", "bwhite"),
            ("link_user", "jdoe"),
        ]
    )
    assert applied["changed"] is preview["changed"] is True
    assert env.fake.usernames() == ["JDOE", "asmith", "bwhite"]  # linked, not added twice
    assert env.fake.op_count("AddUser") == 2
    jdoe = env.fake.user("JDOE")
    assert (jdoe["fname"], jdoe["lname"]) == ("John", "Doe")
    # Not mapped: kept by EditUser, which got every field merged from what PingID held.
    assert (jdoe["email"], jdoe["role"]) == ("jdoe@example.org", "ADMIN")
    assert env.fake.bodies("EditUser") == [
        {"userName": "JDOE", "fname": "John", "lname": "Doe", "email": "jdoe@example.org", "role": "ADMIN"}
    ]
    assert jdoe["devicesDetails"] == [existing.devices[0]], "the paired device is left alone"
    added = env.fake.user("asmith")
    assert (added["status"], added["fname"], added["lname"]) == ("PENDING_ACTIVATION", "Alice", "Smith")
    assert sorted(state(env)["users"]) == ["JDOE", "asmith", "bwhite"]  # by PingID's userName

    # The no-op run: nothing changed, nothing sent (the module's count and the fake's log agree).
    assert again["changed"] is False, again["report"]["actions"]
    assert again["verification"] == {"full": False, "reason": None}
    assert again["requests"] == {}
    assert len(env.fake.operations()) == sent_by(preview) + sent_by(applied), "the no-op run sent requests"
    # Per operation: what the fake received is exactly what the preview and the applying run sent,
    # so the no-op run sent no write and no per-user read (GetUserDetails), nor the report job.
    received = env.fake.op_counts()
    assert received == by_operation(preview) + by_operation(applied), received


# -- U3 update, U4 deprovision, 10561 ----------------------------------------------------------------
def test_U3_U4_update_keeps_unmapped_fields_deprovision_suspends_and_never_activated_user_is_handled(env):
    """One run: a changed surname is written (EditUser with every field, those the mapping does not
    cover as PingID holds them, also when an admin changed one in the portal); a leaver with a paired
    device is suspended; a leaver who never activated (SuspendUser answers 10561) is reported disabled
    without a failure and stays as PingID has it. The check-mode twin writes nothing; the run after
    sends nothing."""
    env.run(user_mapping={"role": "'REGULAR'"})
    env.fake.pair_device("asmith")  # ACTIVE; bwhite stays PENDING_ACTIVATION (never paired a device)
    env.fake.change_user_directly("jdoe", email="john.doe@elsewhere.example")  # an admin, in the portal
    env.dir.replace("jdoe", "sn", "Doe-Smith")
    env.dir.slapd.delete(env.dir.dn("asmith"))
    env.dir.slapd.delete(env.dir.dn("bwhite"))
    mapping = {"role": "'REGULAR'", "email": ""}  # e-mail no longer mapped: the admin's value must stay

    mark = env.mark()
    preview, applied, settled = env.play(
        {"check": True, "diff": True, "user_mapping": mapping}, {"user_mapping": mapping}, {"user_mapping": mapping}
    )
    first_write = next(i for i, op in enumerate(env.sent(mark)) if op in WRITES)
    assert first_write >= sent_by(preview), "check mode wrote"
    assert (
        plan_of(applied)
        == plan_of(preview)
        == [
            ("disable_user", "asmith"),
            ("disable_user", "bwhite"),
            ("update_user", "jdoe"),
        ]
    )
    assert applied["report"]["failed"] == 0
    jdoe = env.fake.user("jdoe")
    assert (jdoe["fname"], jdoe["lname"], jdoe["email"], jdoe["role"]) == (
        "John",
        "Doe-Smith",
        "john.doe@elsewhere.example",
        "REGULAR",
    )
    assert env.fake.user("asmith")["status"] == "SUSPENDED"
    # PingID cannot suspend a user who never activated: 10561, a documented no-op, not a failure.
    assert env.fake.user("bwhite")["status"] == "PENDING_ACTIVATION"
    assert env.fake.op_count("SuspendUser") == 2
    assert {a["name"]: a["status"] for a in applied["report"]["actions"]} == {
        "asmith": "ok",
        "bwhite": "ok",
        "jdoe": "ok",
    }
    assert settled["changed"] is False and settled["requests"] == {}
    assert len(env.sent(mark)) == sent_by(preview) + sent_by(applied)


# -- EditUser replaces the whole record -----------------------------------------------------------
def test_U3_EditUser_of_one_attribute_keeps_every_other_field(env):
    """PingID's EditUser nulls every field it is not sent (the fake does the same). A change of one
    mapped attribute (the surname) sends every field: the others, mapped or not (the role an admin
    set in the portal, an e-mail no longer mapped), survive, as do the status and the paired device."""
    env.run()
    env.fake.pair_device("jdoe")
    env.fake.change_user_directly("jdoe", role="ADMIN")  # not mapped: an administrator's choice
    before = env.fake.user("jdoe")
    mapping = {"email": ""}  # e-mail no longer mapped: what PingID holds must stay
    env.dir.replace("jdoe", "sn", "Doe-Smith")
    mark = env.mark()
    result = env.run(user_mapping=mapping)
    assert plan_of(result) == [("update_user", "jdoe")]
    [action] = result["report"]["actions"]
    assert action["status"] == "ok", action
    assert [op for op in env.sent(mark) if op in WRITES] == ["EditUser"]
    [edit] = env.fake.bodies("EditUser")
    assert edit == {
        "userName": "jdoe",
        "fname": "John",
        "lname": "Doe-Smith",
        "email": "jdoe@example.org",
        "role": "ADMIN",
    }, edit
    after = env.fake.user("jdoe")
    assert after == dict(before, lname="Doe-Smith"), (before, after)
    assert env.fake.cleared == [], "EditUser nulled a field"
    for name in ("userName", "fname", "lname", "email", "role", "status"):
        assert after[name] is not None, name


# -- U4: deprovision, come back, delete, never touch what is not ours ----------------------------
SCOPED = {"user_filter": "(&(objectClass=inetOrgPerson)(!(title=Departed)))"}


def test_U4_leavers_suspended_one_comes_back_activated_delete_action_and_unmanaged_account_untouched(env):
    """Leavers are suspended (default remove_user_action: disable): one deleted from the directory,
    one out of the scope (the filter), who is activated again when it comes back into it. With
    remove_user_action delete a leaver is deleted. An account the provisioner never created or linked
    (added in the admin portal, not in the directory) is never touched, not even by a full
    verification run, which reads it in the report."""
    contractor = env.fake.seed_user("contractor", "Carl", "Tractor", "carl@example.net", role="ADMIN")
    env.run(source=SCOPED)
    env.fake.pair_device("asmith")
    env.fake.pair_device("jdoe")
    env.dir.replace("asmith", "title", "Departed")  # out of the scope
    env.dir.slapd.delete(env.dir.dn("jdoe"))  # deleted in the directory
    left = env.run(source=SCOPED)
    assert plan_of(left) == [("disable_user", "asmith"), ("disable_user", "jdoe")]
    assert {a["name"]: a["reason"] for a in left["report"]["actions"]}["jdoe"], left["report"]["actions"]
    assert env.fake.user("asmith")["status"] == env.fake.user("jdoe")["status"] == "SUSPENDED"
    assert env.fake.op_count("DeleteUser") == 0, "disable is the default"

    env.dir.replace("asmith", "title", "Back")
    mark = env.mark()
    back = env.run(source=SCOPED)
    assert plan_of(back) == [("enable_user", "asmith")]
    assert [op for op in env.sent(mark) if op in WRITES] == ["ActivateUser"]
    assert env.fake.user("asmith")["status"] == "ACTIVE", "activated again, with its device"
    assert env.fake.user("jdoe")["status"] == "SUSPENDED"

    env.dir.slapd.delete(env.dir.dn("bwhite"))
    deleted = env.run(source=SCOPED, remove_user_action="delete", full_verification=True)
    assert ("delete_user", "bwhite") in plan_of(deleted) and ("delete_user", "jdoe") in plan_of(deleted)
    assert env.fake.usernames() == ["asmith", "contractor"]
    assert sorted(state(env)["users"]) == ["asmith"]
    assert env.fake.user("contractor") == contractor.details(), "an account not ours was touched"
    touched = [body.get("userName", body.get("username")) for op in WRITES for body in env.fake.bodies(op)]
    assert "contractor" not in touched, touched


def test_U4_user_disabled_in_the_directory_and_enabled_again_is_activated_without_a_verification(env):
    env.run()
    env.fake.pair_device("asmith")
    env.dir.replace("asmith", "pwdAccountLockedTime", "000001010000Z")  # disabled in the directory
    assert plan_of(env.run()) == [("disable_user", "asmith")]
    assert env.fake.user("asmith")["status"] == "SUSPENDED"
    env.dir.slapd.modify(f"dn: {env.dir.dn('asmith')}\nchangetype: modify\ndelete: pwdAccountLockedTime\n")
    back = env.run()
    assert back["verification"]["full"] is False
    assert plan_of(back) == [("enable_user", "asmith")]
    assert env.fake.user("asmith")["status"] == "ACTIVE"


# -- lost state file ---------------------------------------------------------------------------------
def test_U1_lost_state_file_is_rebuilt_from_the_report_by_key_without_a_duplicate_AddUser(env, tmp_path):
    """The state file is gone (a new AWX volume): the run verifies through the report and links every
    account by userName; not one AddUser. It runs through the ready playbook (the sync role)."""
    env.run()
    assert env.fake.op_count("AddUser") == 3
    env.state_file.unlink()
    mark = env.mark()
    play = (REPO_ROOT / "playbooks" / "pingid_sync.yml").read_text()
    done = run_playbook(
        tmp_path / "role",
        play,
        {
            "sync_source": {"server_uri": [env.dir.slapd.uri], "user_base_dn": env.dir.people},
            "pingid_sync_state_file": str(env.state_file),
        },
        env.env(),
    )
    assert done.rc == 0, done.text[-4000:]
    sent = env.sent(mark)
    assert "AddUser" not in sent, sent
    assert sent[:3] == ["CreateJob", "GetJobStatus", "GetOrgReport"], sent
    assert "users: 0 created, 3 linked" in done.stdout, done.stdout[-3000:]
    assert env.fake.usernames() == EVERYONE
    assert sorted(state(env)["users"]) == EVERYONE


# -- deleted behind the provisioner's back -------------------------------------------------------
def test_U2_user_deleted_behind_the_back_is_found_by_the_verification_run_automatic_or_asked(env):
    """A run that trusts the state file cannot see an account deleted in the admin portal; the
    verification run can: automatically after verify_every_runs runs, and when asked with
    full_verification. The user, still in the directory, is added again (one AddUser each)."""
    every = {"verify_every_runs": 1}  # a verification after one run that trusted the state file
    env.run(**every)
    env.fake.delete_user_directly("bwhite")
    mark = env.mark()
    trusted, automatic = env.play(every, every)
    assert trusted["changed"] is False and trusted["requests"] == {}  # right after one: the state file is trusted
    assert trusted["verification"] == {"full": False, "reason": None}
    assert env.sent(mark)[0] == "CreateJob", "the trusted run sent requests"
    assert automatic["verification"] == {
        "full": True,
        "reason": "1 runs since the last verification (verify_every_runs: 1)",
    }
    assert plan_of(automatic) == [("create_user", "bwhite")]
    assert env.sent(mark)[:3] == ["CreateJob", "GetJobStatus", "GetOrgReport"]
    assert [body["username"] for body in env.fake.bodies("AddUser")[3:]] == ["bwhite"]
    assert env.fake.usernames() == EVERYONE

    env.fake.delete_user_directly("asmith")
    asked = env.run(full_verification=True)
    assert asked["verification"] == {"full": True, "reason": "full_verification is set"}
    assert counts(asked)["create_user"] == 1
    assert ("create_user", "asmith") in plan_of(asked)
    assert env.fake.usernames() == EVERYONE
    assert env.fake.op_count("AddUser") == 5, "one AddUser per account re-added, never a duplicate"


def test_U2_user_re_created_by_the_verification_run_is_kept_in_the_state_file(env):
    """After the verification run re-adds an account deleted behind the provisioner's back, the
    state file records it again (with its fingerprint): the next run sends nothing."""
    env.run()
    env.fake.delete_user_directly("bwhite")
    verified = env.run(full_verification=True)
    assert plan_of(verified) == [("create_user", "bwhite")]
    assert "bwhite" in state(env)["users"], sorted(state(env)["users"])
    mark = env.mark()
    after = env.run()
    assert after["changed"] is False and after["requests"] == {}, after["report"]["counts"]
    assert env.sent(mark) == []


# -- a reply whose signature does not verify -----------------------------------------------------------
def test_tampered_reply_signature_is_refused_before_any_write(env):
    env.fake.tamper_replies("signature")
    result = env.run(ok=False)
    assert result["failed"] is True
    assert "signature did not verify" in result["msg"], result["msg"]
    assert env.fake.write_operations() == [] and env.fake.usernames() == []
    assert env.fake.operations() == ["CreateJob"], "the first reply was refused, and nothing followed it"
    assert not env.state_file.exists() or state(env)["users"] == {}


# -- a renamed key -------------------------------------------------------------------------------------
def test_renamed_key_is_reported_with_what_the_operator_can_do_and_the_account_is_left(env):
    """PingID cannot change a userName: the user whose uid changed (same entryUUID) fails with both
    names and the ways out; nothing is added, deleted or edited."""
    env.run()
    env.dir.slapd.rename(env.dir.dn("bwhite"), "uid=bob.white")
    mark = env.mark()
    result = env.run(ok=False)
    assert result["failed"] is True
    error = failures(result)[("update_user", "bob.white")]
    assert "PingID cannot rename a user" in error and "bwhite" in error and "bob.white" in error, error
    assert "delete bwhite and add bob.white" in error, error
    assert [op for op in env.sent(mark) if op != "GetUserDetails"] == [], env.sent(mark)
    assert env.fake.usernames() == EVERYONE
