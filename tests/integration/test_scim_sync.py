# -*- coding: utf-8 -*-
"""scim_sync end to end: a real slapd, a real scim2-server, ansible-playbook for real.

Every scenario runs as: preview (--check --diff, the server must not change by a byte and the
plan must equal the real run's), apply, and apply again (nothing left to do). Behaviours are
named as in DESIGN.md (U1-U4, G1-G5). Seed data: tests/data/ldap/README.md.
"""

from __future__ import annotations

import json

import pytest
from support.fault_proxy import FaultProxy
from support.playbook import run_playbook
from support.seed import ACTIVE_PEOPLE, GROUP_IDS, GROUPS, PEOPLE, PEOPLE_IDS

PREFIX = "idsync:"
IDS = PEOPLE_IDS
GROUP_FILTER = "(|(cn=Engineering)(cn=Platform)(cn=Sales))"
PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Sync
      idsync.provisioning.scim_sync: {args}
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


class Harness:
    def __init__(self, ldap, scim, tmp_path):
        self.ldap = ldap
        self.scim = scim
        self.tmp_path = tmp_path
        self.runs = 0
        self.url = scim.url

    def args(self, **overrides):
        source = {
            "server_uri": [self.ldap.uri],
            "user_base_dn": PEOPLE,
            "group_base_dn": GROUPS,
            "group_search_scope": "onelevel",
            "group_filter": GROUP_FILTER,
            "nested_groups": True,
        }
        source.update(overrides.pop("source", {}))
        args = {"url": self.url, "source": source}
        args.update(overrides)
        return args

    def run(self, check=False, diff=False, verbosity=0, **overrides):
        self.runs += 1
        play = PLAY.format(args=json.dumps(self.args(**overrides)))
        result = run_playbook(
            self.tmp_path / f"run{self.runs}",
            play,
            env={
                "SCIM_TOKEN": self.scim.token,
                "LDAP_BIND_DN": self.ldap.reader_dn,
                "LDAP_BIND_PW": self.ldap.reader_pw,
            },
            check=check,
            diff=diff,
            verbosity=verbosity,
        )
        assert result.rc == 0, result.text
        self.last_text = result.text
        return result.output

    def dump(self):
        return json.dumps({"users": self.scim.all("Users"), "groups": self.scim.all("Groups")}, sort_keys=True)

    def sync(self, **overrides):
        """Preview, apply, apply again; returns the applied result."""
        before = self.dump()
        preview = self.run(check=True, diff=True, **overrides)
        assert self.dump() == before, "check mode changed the server"
        applied = self.run(**overrides)
        assert not applied.get("failed"), json.dumps(applied, indent=1)[:3000]
        assert plan_of(preview) == plan_of(applied), "the preview planned something else than the run did"
        assert preview["changed"] == applied["changed"]
        again = self.run(**overrides)
        assert again["changed"] is False, again["report"]["actions"]
        assert again["report"]["counts"] == {}
        return applied

    def user(self, name):
        return self.scim.user_by_name(name)

    def group(self, name):
        found = [g for g in self.scim.all("Groups") if g["displayName"].lower() == name.lower()]
        assert len(found) <= 1, found
        return found[0] if found else None

    def member_names(self, group_name):
        group = self.group(group_name)
        by_id = {u["id"]: u["userName"] for u in self.scim.all("Users")}
        return sorted(by_id[m["value"]] for m in group.get("members", []))


def plan_of(result):
    return sorted((a["kind"], a["name"], a["status"].replace("planned", "ok")) for a in result["report"]["actions"])


def counts(result):
    return result["report"]["counts"]


@pytest.fixture
def env(fresh_slapd, scim_server, tmp_path):
    return Harness(fresh_slapd, scim_server, tmp_path)


# -- users ------------------------------------------------------------------------------------


def test_U2_provision_users_in_scope_and_skip_disabled(env):
    result = env.sync()
    assert counts(result)["create_user"] == len(ACTIVE_PEOPLE)
    users = {u["userName"]: u for u in env.scim.all("Users")}
    assert sorted(users) == ACTIVE_PEOPLE  # locked1 is disabled in the directory: not created
    jdoe = users["jdoe"]
    assert jdoe["externalId"] == PREFIX + IDS["jdoe"]
    assert jdoe["name"] == {"givenName": "John", "familyName": "Doe"}
    assert jdoe["emails"] == [{"value": "jdoe@example.org", "type": "work", "primary": True}]
    assert users["jmuller"]["displayName"] == "Jürgen Müller"
    assert "emails" not in users["nomail"]
    assert all(u["active"] for u in users.values())


def test_U2_provision_disabled_users_creates_them_disabled(env):
    env.sync(provision_disabled_users=True)
    locked = env.user("locked1")
    assert locked is not None and locked["active"] is False
    assert locked["externalId"] == PREFIX + IDS["locked1"]


def test_U1_existing_user_is_linked_case_insensitively_not_duplicated(env):
    existing = env.scim.seed_user("JDOE", title="Keeps her title", name={"givenName": "Old"})
    result = env.sync()
    assert counts(result)["link_user"] == 1
    matches = [u for u in env.scim.all("Users") if u["userName"].lower() == "jdoe"]
    assert len(matches) == 1
    linked = matches[0]
    assert linked["id"] == existing["id"]
    assert linked["externalId"] == PREFIX + IDS["jdoe"]
    assert linked["name"]["givenName"] == "John"
    assert linked["title"] == "Keeps her title"  # unmapped: left alone


def test_U3_only_changed_mapped_attributes_are_written(env):
    env.sync()
    env.scim.patch(f"/Users/{env.user('asmith')['id']}", {"op": "add", "path": "title", "value": "Unmapped"})
    env.ldap.modify(f"dn: uid=asmith,{PEOPLE}\nchangetype: modify\nreplace: givenName\ngivenName: Alicia\n")
    result = env.sync()
    updates = [a for a in result["report"]["actions"] if a["kind"] == "update_user"]
    assert [(a["name"], sorted(a["changes"])) for a in updates] == [("asmith", ["name.givenName"])]
    asmith = env.user("asmith")
    assert asmith["name"]["givenName"] == "Alicia"
    assert asmith["title"] == "Unmapped"


def test_U3_diff_shows_before_and_after(env):
    env.sync()
    env.ldap.modify(f"dn: uid=zoe,{PEOPLE}\nchangetype: modify\nreplace: sn\nsn: Strom\n")
    preview = env.run(check=True, diff=True)
    diffs = [d for d in preview["diff"] if "zoe" in d["before_header"]]
    assert diffs and '"name.familyName": "Ångström"' in diffs[0]["before"]  # text, letters unescaped
    assert json.loads(diffs[0]["before"])["name.familyName"] == "Ångström"
    assert json.loads(diffs[0]["after"])["name.familyName"] == "Strom"


@pytest.mark.parametrize("action", ["disable", "delete"])
def test_U4_user_deleted_from_directory(env, action):
    env.sync(remove_user_action=action)
    env.ldap.delete(f"uid=jdoe,{PEOPLE}")
    result = env.sync(remove_user_action=action)
    assert counts(result) == {f"{action}_user": 1, "remove_members": 1} or counts(result) == {f"{action}_user": 1}
    if action == "disable":
        assert env.user("jdoe")["active"] is False
    else:
        assert env.user("jdoe") is None
    assert "jdoe" not in env.member_names("Engineering")


@pytest.mark.parametrize("action", ["disable", "delete"])
def test_U4_user_disabled_in_directory_then_back(env, action):
    env.sync(remove_user_action=action)
    env.ldap.modify(
        f"dn: uid=asmith,{PEOPLE}\nchangetype: modify\nadd: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n"
    )
    result = env.sync(remove_user_action=action)
    assert counts(result)[f"{action}_user"] == 1
    if action == "disable":
        assert env.user("asmith")["active"] is False
    else:
        assert env.user("asmith") is None
    env.ldap.modify(f"dn: uid=asmith,{PEOPLE}\nchangetype: modify\ndelete: pwdAccountLockedTime\n")
    result = env.sync(remove_user_action=action)
    assert counts(result).get("enable_user" if action == "disable" else "create_user") == 1
    asmith = env.user("asmith")
    assert asmith["active"] is True
    assert asmith["externalId"] == PREFIX + IDS["asmith"]
    assert "asmith" in env.member_names("Engineering")


@pytest.mark.parametrize("action", ["disable", "delete"])
def test_U4_user_leaving_the_scope(env, action):
    scoped = {
        "source": {"user_filter": "(&(objectClass=inetOrgPerson)(!(title=Departed)))"},
        "remove_user_action": action,
    }
    env.sync(**scoped)
    env.ldap.modify(f"dn: uid=bwhite,{PEOPLE}\nchangetype: modify\nadd: title\ntitle: Departed\n")
    result = env.sync(**scoped)
    assert counts(result)[f"{action}_user"] == 1
    bwhite = env.user("bwhite")
    assert (bwhite is None) if action == "delete" else (bwhite["active"] is False)
    assert "bwhite" not in env.member_names("Platform")


def test_U4_a_user_leaving_the_scope_of_user_groups_is_disabled_saying_why(env):
    env.sync()
    result = env.sync(source={"user_groups": [f"cn=Engineering,{GROUPS}"], "nested_groups": True})
    disabled = {a["name"]: a["reason"] for a in result["report"]["actions"] if a["kind"] == "disable_user"}
    # Engineering holds jdoe, asmith, jsmith and (through Platform) bwhite and jmuller
    assert disabled == dict.fromkeys(["nomail", "zoe"], "left scope: not in group 'Engineering'")
    assert any("zoe: left scope: not in group 'Engineering'" in line for line in result["preview"])


def test_U4_account_never_linked_is_untouched_in_linked_mode(env):
    outsider = env.scim.seed_user("outsider", title="not ours")
    foreign = env.scim.seed_user("contractor", externalId="other-provisioner:42")
    env.sync(remove_user_action="delete")
    assert env.user("outsider") == outsider
    assert env.user("contractor") == foreign


def test_U4_authoritative_mode_deprovisions_unknown_accounts_except_protected(env):
    env.scim.seed_user("outsider")
    env.scim.seed_user("breakglass")
    result = env.sync(ownership="authoritative", protected=["BreakGlass"])
    assert [a["name"] for a in result["report"]["actions"] if a["kind"] == "disable_user"] == ["outsider"]
    assert env.user("outsider")["active"] is False
    assert env.user("breakglass").get("active", True) is True


# -- groups -----------------------------------------------------------------------------------


def test_G2_groups_in_scope_are_created_with_nested_members(env):
    result = env.sync()
    assert counts(result)["create_group"] == 3
    assert sorted(g["displayName"] for g in env.scim.all("Groups")) == ["Engineering", "Platform", "Sales"]
    assert env.member_names("Engineering") == ["asmith", "bwhite", "jdoe", "jmuller", "jsmith"]
    assert env.member_names("Sales") == ["zoe"]  # locked1 is disabled: not provisioned, not a member
    assert env.group("Platform")["externalId"] == PREFIX + GROUP_IDS["Platform"]


def test_G1_existing_group_is_linked_by_name(env):
    existing = env.scim.seed_group("ENGINEERING")
    result = env.sync()
    assert counts(result)["link_group"] == 1
    assert counts(result)["create_group"] == 2
    engineering = env.group("engineering")
    assert engineering["id"] == existing["id"]
    assert engineering["externalId"] == PREFIX + GROUP_IDS["Engineering"]


def test_G3_renamed_group_is_renamed_not_recreated(env):
    env.sync()
    before = env.group("Platform")
    env.ldap.rename(f"cn=Platform,{GROUPS}", "cn=Platform Team")
    # what the refint overlay (or AD) does: the parent group's member follows the rename
    env.ldap.modify(
        f"dn: cn=Engineering,{GROUPS}\nchangetype: modify\ndelete: member\nmember: cn=Platform,{GROUPS}\n-\n"
        f"add: member\nmember: cn=Platform Team,{GROUPS}\n"
    )
    result = env.sync(source={"group_filter": "(|(cn=Engineering)(cn=Platform*)(cn=Sales))"})
    assert counts(result) == {"rename_group": 1}
    after = env.group("Platform Team")
    assert after["id"] == before["id"]
    assert env.group("Platform") is None
    assert env.member_names("Platform Team") == ["bwhite", "jmuller"]


def test_G4_membership_follows_the_group_side(env):
    env.sync()
    env.ldap.modify(
        f"dn: cn=Engineering,{GROUPS}\nchangetype: modify\ndelete: member\nmember: uid=asmith,{PEOPLE}\n-\n"
        f"add: member\nmember: uid=zoe,{PEOPLE}\n"
    )
    result = env.sync()
    assert counts(result) == {"add_members": 1, "remove_members": 1}
    assert env.member_names("Engineering") == ["bwhite", "jdoe", "jmuller", "jsmith", "zoe"]


def test_G4_membership_follows_the_user_side_and_overwrites_target_changes(env):
    env.sync()
    outsider = env.scim.seed_user("outsider")
    engineering = env.group("Engineering")
    env.scim.patch(
        f"/Groups/{engineering['id']}", {"op": "add", "path": "members", "value": [{"value": outsider["id"]}]}
    )
    # the user side: jmuller leaves the scope, so he leaves every group in the target
    env.ldap.modify(
        f"dn: uid=jmuller,{PEOPLE}\nchangetype: modify\nadd: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n"
    )
    result = env.sync()
    assert counts(result)["remove_members"] == 2  # Engineering (outsider, jmuller) and Platform (jmuller)
    assert env.member_names("Engineering") == ["asmith", "bwhite", "jdoe", "jsmith"]
    assert env.member_names("Platform") == ["bwhite"]


def test_G5_group_deleted_in_directory_or_leaving_scope_is_deleted(env):
    env.sync()
    env.ldap.delete(f"cn=Sales,{GROUPS}")
    result = env.sync()
    assert counts(result) == {"delete_group": 1}
    assert env.group("Sales") is None
    narrower = {"source": {"group_filter": "(cn=Engineering)"}}
    result = env.sync(**narrower)
    assert counts(result) == {"delete_group": 1}
    assert [g["displayName"] for g in env.scim.all("Groups")] == ["Engineering"]


def test_G5_unmanaged_group_is_never_deleted(env):
    env.scim.seed_group("Finance")
    env.sync()
    assert env.group("Finance") is not None


# -- safety -------------------------------------------------------------------------------------


def test_threshold_stops_a_mass_deprovision_before_any_write(env):
    env.sync()
    for uid in ("jdoe", "asmith", "bwhite"):
        env.ldap.modify(
            f"dn: uid={uid},{PEOPLE}\nchangetype: modify\nadd: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n"
        )
    before = env.dump()
    result = env.run(max_disables=2)
    assert result["failed"] is True
    assert "max_disables" in result["msg"]
    assert env.dump() == before
    assert sorted(a["name"] for a in result["plan"]["actions"] if a["kind"] == "disable_user") == [
        "asmith",
        "bwhite",
        "jdoe",
    ]
    percent = env.run(max_disables="50%")  # 3 of 7 managed users is under half
    assert not percent.get("failed"), percent.get("msg")


@pytest.mark.parametrize("check", [True, False], ids=["check_mode", "real_run"])
def test_thresholds_as_count_and_percentage_refuse_in_check_mode_and_for_real(env, check):
    env.sync()
    for uid in ("jdoe", "asmith", "bwhite"):
        env.ldap.modify(f"dn: uid={uid},{PEOPLE}\nchangetype: modify\nreplace: title\ntitle: Departed\n")
    leaving = {"source": {"user_filter": "(&(objectClass=inetOrgPerson)(!(title=Departed)))"}}
    before = env.dump()
    refusals = {
        "max_disables count": env.run(check=check, max_disables=2, **leaving),
        "max_disables percent": env.run(check=check, max_disables="40%", **leaving),  # 3 of 7 is 43%
        "max_deletes count": env.run(check=check, remove_user_action="delete", max_deletes=2, **leaving),
        "max_deletes percent": env.run(check=check, remove_user_action="delete", max_deletes="40%", **leaving),
    }
    for case, result in refusals.items():
        option = case.split(" ", 1)[0]
        assert result["failed"] is True, (case, result.get("msg"))
        assert option in result["msg"], (case, result["msg"])
        assert "nothing was written" in result["msg"], (case, result["msg"])
    assert env.dump() == before, "a refused run wrote"
    allowed = env.run(check=check, max_disables="50%", **leaving)
    assert not allowed.get("failed"), allowed.get("msg")
    assert allowed["report"]["counts"].get("disable_user") == 3
    assert (env.dump() == before) is check


def test_empty_source_is_refused_unless_allowed(env):
    env.sync()
    before = env.dump()
    empty = {"source": {"user_filter": "(uid=nobody-matches-this)"}}
    for check in (True, False):
        refused = env.run(check=check, **empty)
        assert refused["failed"] is True
        assert "empty" in refused["msg"].lower()
        assert env.dump() == before
    allowed = env.run(allow_empty_source=True, max_group_deletes=None, **empty)
    assert not allowed.get("failed"), allowed.get("msg")
    assert all(u["active"] is False for u in env.scim.all("Users"))


def test_a_list_that_fails_halfway_aborts_with_no_write(env):
    env.sync()
    env.ldap.modify(f"dn: uid=jdoe,{PEOPLE}\nchangetype: modify\nreplace: givenName\ngivenName: Johnny\n")
    with FaultProxy(env.scim.url) as proxy:
        proxy.fail("GET", r"/Users$", status=500, when=lambda seen: "startIndex=3" in seen.query)
        env.url = proxy.url
        result = env.run(page_size=2)
        assert result["failed"] is True
        assert "500" in result["msg"] and "injected failure" in result["msg"]
        assert proxy.writes() == []
    assert env.user("jdoe")["name"]["givenName"] == "John"


def test_one_failing_object_leaves_the_others_applied_and_fails_the_task(env):
    with FaultProxy(env.scim.url) as proxy:
        proxy.fail(
            "POST",
            r"/Users$",
            status=400,
            body={"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "400", "detail": "zoe refused"},
            when=lambda seen: b'"zoe"' in seen.body,
        )
        env.url = proxy.url
        result = env.run()
    assert result["failed"] is True
    failures = {(f["kind"], f["name"]): f["error"] for f in result["report"]["failures"]}
    # zoe's create failed, and so did adding her to Sales (she has no account); nothing else
    assert sorted(failures) == [("add_members", "Sales"), ("create_user", "zoe")]
    assert "zoe refused" in failures[("create_user", "zoe")]
    assert "zoe" in failures[("add_members", "Sales")]
    assert sorted(u["userName"] for u in env.scim.all("Users")) == sorted(set(ACTIVE_PEOPLE) - {"zoe"})
    env.url = env.scim.url
    healed = env.run()
    assert counts(healed).get("create_user") == 1
    assert "zoe" in env.member_names("Sales")


def test_token_and_bind_password_never_appear_in_output(env):
    output = env.run(check=True, diff=True, verbosity=3)
    assert output["changed"] is True
    text = json.dumps(output) + env.last_text
    assert env.scim.token not in text
    assert env.ldap.reader_pw not in text
