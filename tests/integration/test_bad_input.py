# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bad input from the directory (issue 15, item 2): a real slapd, ansible-playbook for real, into
scim2-server (SCIM) and the fake Box.

The directory holds good people next to malformed ones: an entry without the key attribute, two
users whose keys differ only in case, values too long for the target, an invalid e-mail address,
binary and non-UTF-8 values in mapped attributes, mixed-case and non-ASCII keys, group members
pointing at entries that do not exist, a group whose name is full of LDAP filter metacharacters
(used for scoping, by DN and in an escaped filter), a filter that matches nothing and a mapping
expression that fails. For each target the test shows:

* each malformed object gets its own failure in the report, naming the object and the field;
* every good object is provisioned anyway, and a second run changes nothing more;
* an account that was provisioned and whose entry later becomes malformed is neither disabled
  nor deleted (nor is anyone else, when a filter matches nothing);
* no Python traceback reaches the user (stdout and stderr of every run, at -vvv).
"""

from __future__ import annotations

import base64
import json

import pytest
from support.box_fake import BoxFake
from support.playbook import run_playbook
from support.seed import BASE
from support.slapd import SlapdServer

ROOT = f"ou=badinput,{BASE}"
PEOPLE = f"ou=people,{ROOT}"
GROUPS = f"ou=groups,{ROOT}"
# A group name made of LDAP filter metacharacters, a DN special character (the comma) and non-ASCII.
ODD_GROUP = "R&D (EU)* \\ Ops, Zürich"
ODD_GROUP_RDN = "cn=R&D (EU)* \\5C Ops\\2C Zürich"
ODD_GROUP_DN = f"{ODD_GROUP_RDN},{GROUPS}"
# The same name as an escaped filter value (RFC 4515): ( ) * \ as \28 \29 \2a \5c.
ODD_GROUP_FILTER = "(cn=R&D \\28EU\\29\\2a \\5c Ops, Zürich)"
GHOST_DN = f"uid=ghost,{PEOPLE}"
NON_UTF8 = b"Caf\xe9 \xff\xfe"  # Latin-1 and stray bytes: not UTF-8
BINARY = bytes(range(256))
LONG_NAME = " ".join(["Maximilian"] * 30)  # 329 characters; Box refuses a name longer than 50
LONG_TITLE = "Principal " * 20  # 200 characters; Box refuses a job_title longer than 100


def person(rdn, *, cn, uid=None, mail=None, title="Staff", employee_type="regular", extra=()):
    lines = [f"dn: {rdn},{PEOPLE}", "objectClass: inetOrgPerson", f"cn: {cn}", f"sn: {cn.split()[-1]}"]
    lines += [f"uid: {uid}"] if uid else []
    lines += [f"mail: {mail}"] if mail else []
    lines += [f"title: {title}"] if title else []
    lines += [f"employeeType: {employee_type}"] if employee_type else []
    lines += list(extra)
    return "\n".join(lines) + "\n"


def b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


# name -> (dn relative to PEOPLE, LDIF)
PEOPLE_LDIF = {
    "good1": person("cn=Good One", cn="Good One", uid="good1", mail="good1@example.org"),
    "good2": person("uid=good2", cn="Good Two", uid="good2", mail="good2@example.org"),
    # no uid (the SCIM key) and no mail (the Box key)
    "nokey": person("cn=No Key", cn="No Key"),
    # two people whose keys differ only in case
    "dup1": person("cn=Dup One", cn="Dup One", uid="Dup.Case", mail="Dup.Case@example.org"),
    "dup2": person("cn=Dup Two", cn="Dup Two", uid="dup.case", mail="dup.case@EXAMPLE.org"),
    # longer than Box allows
    "long": person(
        "uid=longname",
        cn="Long Name",
        uid="longname",
        mail="longname@example.org",
        title=LONG_TITLE,
        extra=[f"displayName: {LONG_NAME}"],
    ),
    # not an e-mail address (mail is IA5String: slapd takes it)
    "badmail": person("uid=badmail", cn="Bad Mail", uid="badmail", mail="not-an-email-address"),
    # binary (jpegPhoto) and non-UTF-8 (audio, an octet string) values in mapped attributes
    "binary": person(
        "uid=binary",
        cn="Binary Values",
        uid="binary",
        mail="binary@example.org",
        extra=[f"audio:: {b64(NON_UTF8)}", f"jpegPhoto:: {b64(BINARY)}"],
    ),
    # mixed-case and non-ASCII keys
    "mixed": person("uid=MiXeD.Case", cn="Mixed Case", uid="MiXeD.Case", mail="MiXeD.Case@Example.ORG"),
    "unicode": person("uid=jürgen.weiß", cn="Jürgen Weiß", uid="jürgen.weiß", mail="juergen.weiss@example.org"),
    # the operator's expression join('-', attributes.employeeType) fails on a missing attribute
    "badexpr": person(
        "uid=badexpr", cn="Bad Expression", uid="badexpr", mail="badexpr@example.org", employee_type=None
    ),
}
GOOD = ["good1", "good2", "mixed", "unicode", "binary"]


def directory_ldif() -> str:
    ous = [
        f"dn: {ROOT}\nobjectClass: organizationalUnit\nou: badinput\n",
        f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n",
        f"dn: {GROUPS}\nobjectClass: organizationalUnit\nou: groups\n",
    ]
    groups = [
        # members: two good people and one DN that does not exist
        f"dn: {ODD_GROUP_DN}\nobjectClass: groupOfNames\ncn: {ODD_GROUP}\n"
        f"member: uid=good2,{PEOPLE}\nmember: uid=MiXeD.Case,{PEOPLE}\nmember: {GHOST_DN}\n",
        f"dn: cn=Plain,{GROUPS}\nobjectClass: groupOfNames\ncn: Plain\nmember: cn=Good One,{PEOPLE}\n"
        f"member: {GHOST_DN}\nmember: cn=No Key,{PEOPLE}\n",
    ]
    return "\n".join(ous + list(PEOPLE_LDIF.values()) + groups)


@pytest.fixture(scope="module")
def directory(tmp_path_factory, slapd_tls_dir):
    """One slapd for the module, holding the malformed subtree; tests restore what they change."""
    server = SlapdServer(tmp_path_factory.mktemp("badinput-slapd"), tls_dir=slapd_tls_dir)
    with server:
        server.add(directory_ldif())
        yield server


# -- the targets ------------------------------------------------------------------------------------
PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Sync
      idsync.provisioning.{module}: {args}
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


class Target:
    """One target's runs of its sync module against the malformed directory."""

    module = ""
    # the name a person gets in the report: its key in the target
    keys: dict[str, str] = {}

    def __init__(self, directory, tmp_path_factory):
        self.ldap = directory
        self.tmp = tmp_path_factory.mktemp(f"badinput-{self.module}")
        self.runs = 0
        self.texts: list[str] = []

    def env(self) -> dict[str, str]:
        return {"LDAP_BIND_DN": self.ldap.reader_dn, "LDAP_BIND_PW": self.ldap.reader_pw}

    def connection(self) -> dict:
        raise NotImplementedError

    def mapping(self) -> dict:
        raise NotImplementedError

    def args(self, source=None, **overrides) -> dict:
        scope = {
            "server_uri": [self.ldap.uri],
            "user_base_dn": PEOPLE,
            "group_base_dn": GROUPS,
            "nested_groups": True,  # so unknown member DNs are looked up (and found missing)
        }
        scope.update(source or {})
        args = dict(self.connection(), source=scope, user_mapping=self.mapping())
        args.update(overrides)
        return args

    def run(self, check=False, **overrides) -> dict:
        self.runs += 1
        play = PLAY.format(module=self.module, args=json.dumps(self.args(**overrides)))
        result = run_playbook(self.tmp / f"run{self.runs}", play, env=self.env(), check=check, diff=True, verbosity=3)
        assert result.rc == 0, result.text[-4000:]
        self.texts.append(result.text)
        for stream in (result.stdout, result.stderr):
            assert "Traceback" not in stream, stream[-4000:]
        assert result.output, result.text[-4000:]
        return result.output

    # what the target holds, by person name of PEOPLE_LDIF
    def account(self, name: str) -> dict | None:
        raise NotImplementedError

    def accounts(self) -> list[dict]:
        raise NotImplementedError

    def enabled(self, account: dict) -> bool:
        raise NotImplementedError

    def group_members(self, group: str) -> list[str] | None:
        raise NotImplementedError


class Scim(Target):
    module = "scim_sync"
    keys = {name: name for name in PEOPLE_LDIF} | {
        "mixed": "MiXeD.Case",
        "unicode": "jürgen.weiß",
        "long": "longname",
        "dup1": "Dup.Case",
        "dup2": "dup.case",
    }

    def __init__(self, directory, tmp_path_factory, server):
        super().__init__(directory, tmp_path_factory)
        self.server = server

    def env(self):
        return super().env() | {"SCIM_TOKEN": self.server.token}

    def connection(self):
        return {"url": self.server.url}

    def mapping(self):
        return {
            # binary and non-UTF-8 values: the reader gives them base64-encoded (docs/ldap-source.md)
            "title": "first(attributes.audio) || first(attributes.title)",
            "nickName": "join('-', attributes.employeeType)",
        }

    def account(self, name):
        return self.server.user_by_name(self.keys[name])

    def accounts(self):
        return self.server.all("Users")

    def enabled(self, account):
        return account.get("active", True) is not False

    def group_members(self, group):
        found = [g for g in self.server.all("Groups") if g["displayName"] == group]
        if not found:
            return None
        names = {u["id"]: u["userName"] for u in self.accounts()}
        return sorted(names[m["value"]] for m in found[0].get("members", []))


class Box(Target):
    module = "box_sync"
    keys = {name: f"{name}@example.org" for name in PEOPLE_LDIF} | {
        "mixed": "mixed.case@example.org",
        "unicode": "juergen.weiss@example.org",
        "long": "longname@example.org",
        "badmail": "not-an-email-address",
        "dup1": "dup.case@example.org",
        "dup2": "dup.case@example.org",
    }

    def __init__(self, directory, tmp_path_factory, fake):
        super().__init__(directory, tmp_path_factory)
        self.fake = fake
        self.state_file = self.tmp / "box-state.json"

    def env(self):
        app = self.fake.app
        return super().env() | {
            "BOX_CLIENT_ID": app.client_id,
            "BOX_CLIENT_SECRET": app.client_secret,
            "BOX_ENTERPRISE_ID": app.enterprise_id,
        }

    def connection(self):
        return {"url": self.fake.api_url, "token_url": self.fake.token_url, "state_file": str(self.state_file)}

    def mapping(self):
        return {
            "job_title": "first(attributes.audio) || first(attributes.title)",
            "address": "join('-', attributes.employeeType)",
        }

    def account(self, name):
        return self.fake.user_by_login(self.keys[name])

    def accounts(self):
        return self.fake.managed_users()

    def enabled(self, account):
        return account["status"] == "active"

    def group_members(self, group):
        found = self.fake.group_by_name(group)
        if found is None:
            return None
        return sorted(self.fake.users[uid]["login"].lower() for uid in self.fake.members_of(found["id"]))


@pytest.fixture(scope="module")
def scim_target(directory, tmp_path_factory):
    from support.scim_server import ScimServer

    with ScimServer() as server:
        yield Scim(directory, tmp_path_factory, server)


@pytest.fixture(scope="module")
def box_target(directory, tmp_path_factory):
    with BoxFake() as fake:
        yield Box(directory, tmp_path_factory, fake)
        fake.assert_valid()
        fake.assert_never_removed_from_enterprise()


@pytest.fixture(scope="module", params=["scim", "box"])
def target(request):
    return request.getfixturevalue(f"{request.param}_target")


@pytest.fixture(scope="module")
def first(target):
    """Preview then apply, once per target; the tests below read both."""
    preview = target.run(check=True)
    applied = target.run()
    again = target.run()
    return {"preview": preview, "applied": applied, "again": again}


def failures(result) -> dict[str, str]:
    return {f["name"]: f["error"] for f in result["report"]["failures"]}


def failure_for(result, needle: str) -> str:
    found = [error for name, error in failures(result).items() if needle.lower() in (name + " " + error).lower()]
    assert len(found) == 1, (needle, failures(result))
    return found[0]


# -- the first run ------------------------------------------------------------------------------------
def test_good_entries_are_provisioned_next_to_the_malformed_ones(target, first):
    applied = first["applied"]
    assert applied["failed"] is True  # the task fails at the end, so a scheduler alerts
    for name in GOOD:
        assert target.account(name) is not None, (name, failures(applied))
    assert plan_of(first["preview"]) == plan_of(applied)
    # no account for the entry without a key, nor for the failed mapping
    keys = {account.get("userName") or account.get("login") for account in target.accounts()}
    assert not {key for key in keys if key and key.lower().startswith(("badexpr", "no key", "nokey"))}


def test_entry_without_the_key_attribute_is_reported_by_dn_and_key_field(target, first):
    error = failure_for(first["applied"], "cn=No Key")
    field = "userName" if target.module == "scim_sync" else "login"
    assert field in error and "missing or empty" in error, error


def test_two_keys_differing_in_case_give_one_account_and_one_refusal(target, first):
    applied = first["applied"]
    matching = [a for a in target.accounts() if (a.get("userName") or a.get("login")).lower().startswith("dup.case")]
    assert len(matching) == 1, matching
    refused = [f for f in applied["report"]["failures"] if f["name"].lower().startswith("dup.case")]
    assert len(refused) == 1 and "also mapped from" in refused[0]["error"], applied["report"]["failures"]


def test_mapping_expression_that_fails_names_the_entry_and_the_field(target, first):
    error = failure_for(first["applied"], "uid=badexpr")
    field = "nickName" if target.module == "scim_sync" else "address"
    assert repr(field) in error and "join" in error, error
    assert target.account("badexpr") is None


def test_binary_and_non_utf8_values_reach_the_target_base64_encoded(target, first):
    account = target.account("binary")
    title = account.get("title") or account.get("job_title")
    assert base64.b64decode(title) == NON_UTF8  # documented: non-UTF-8 values are base64 (ldap-source.md)


def test_mixed_case_and_non_ascii_keys_are_created_once_and_then_left_alone(target, first):
    assert target.account("mixed") is not None and target.account("unicode") is not None
    again = first["again"]
    assert again["report"]["counts"].get("create_user", 0) == 0, again["report"]["counts"]
    written = [a for a in again["report"]["actions"] if a["status"] != "failed"]
    assert written == [], written


def test_values_too_long_and_invalid_email_fail_per_object_in_the_targets_words(target, first):
    applied = first["applied"]
    if target.module == "box_sync":
        long_error = failure_for(applied, "longname@example.org")
        # the connector checks Box's limits before sending, in Box's field names
        assert "name: 329 characters, Box allows at most 50" in long_error, long_error
        mail_error = failure_for(applied, "not-an-email-address")
        assert "login: 'not-an-email-address' is not an e-mail address" in mail_error, mail_error
        assert target.account("long") is None and target.account("badmail") is None
    else:
        # scim2-server takes both (SCIM sets no length limit; the e-mail value is a string)
        assert target.account("long")["displayName"] == LONG_NAME.strip()
        assert target.account("badmail") is not None


def test_a_member_pointing_at_a_missing_entry_does_not_stop_the_group(target, first):
    members = target.group_members(ODD_GROUP)
    assert members is not None, failures(first["applied"])
    expected = ["good2", "mixed"]
    assert sorted(m.lower() for m in members) == sorted(target.keys[n].lower() for n in expected)
    plain = target.group_members("Plain")
    assert [m.lower() for m in plain] == [target.keys["good1"].lower()]


def test_a_member_pointing_at_a_missing_entry_is_named_in_the_result(target, first):
    shown = json.dumps(first["applied"], ensure_ascii=False).lower()
    assert GHOST_DN.lower() in shown


def test_the_second_run_only_repeats_the_failures(target, first):
    again = first["again"]
    assert again["changed"] is False, again["report"]["actions"]
    # the same objects fail (the second of the two case-twins now meets the first one's account)
    assert sorted(failures(again)) == sorted(failures(first["applied"]))
    twin = [f["error"] for f in again["report"]["failures"] if f["name"].lower().startswith("dup.case")]
    assert twin and "linked to another directory object" in twin[0], again["report"]["failures"]


# -- later runs -----------------------------------------------------------------------------------------
def test_scoping_by_a_group_whose_name_has_filter_metacharacters(target, first):
    """The group's DN (user_groups) and an escaped filter on its name select exactly its members."""
    preview = target.run(
        check=True,
        source={"user_groups": [ODD_GROUP_DN], "group_filter": ODD_GROUP_FILTER},
        manage_groups=True,
    )
    assert not preview.get("failed"), failures(preview)
    # everyone else is out of scope now: their accounts would be disabled, never deleted
    kinds = {a["kind"] for a in preview["report"]["actions"]}
    assert kinds <= {"disable_user", "remove_members", "delete_group"}, kinds
    kept = {a["name"].lower() for a in preview["report"]["actions"] if a["kind"] == "disable_user"}
    assert target.keys["good2"].lower() not in kept and target.keys["mixed"].lower() not in kept
    assert target.keys["good1"].lower() in kept
    deleted_groups = [a["name"] for a in preview["report"]["actions"] if a["kind"] == "delete_group"]
    assert deleted_groups == ["Plain"], deleted_groups


def test_a_filter_that_matches_nothing_is_refused_and_nothing_is_touched(target, first):
    before = json.dumps(target.accounts(), sort_keys=True)
    result = target.run(source={"user_filter": "(&(objectClass=inetOrgPerson)(uid=nobody-matches-this))"})
    assert result["failed"] is True
    assert "the source has no users" in result["msg"], result["msg"]
    assert "allow_empty_source" in result["msg"], result["msg"]
    assert json.dumps(target.accounts(), sort_keys=True) == before


def test_an_entry_that_becomes_malformed_is_kept_not_disabled(target, first):
    ldap = target.ldap
    ldap.modify(f"dn: cn=Good One,{PEOPLE}\nchangetype: modify\ndelete: uid\n-\ndelete: mail\n")
    ldap.modify(f"dn: uid=good2,{PEOPLE}\nchangetype: modify\ndelete: employeeType\n")
    try:
        result = target.run()
    finally:
        ldap.modify(
            f"dn: cn=Good One,{PEOPLE}\nchangetype: modify\nadd: uid\nuid: good1\n-\nadd: mail\nmail: good1@example.org\n"
        )
        ldap.modify(f"dn: uid=good2,{PEOPLE}\nchangetype: modify\nadd: employeeType\nemployeeType: regular\n")
    assert "missing or empty" in failure_for(result, f"cn=Good One,{PEOPLE}")
    assert "join" in failure_for(result, f"uid=good2,{PEOPLE}")
    kinds = {a["kind"] for a in result["report"]["actions"]}
    assert not kinds & {"disable_user", "delete_user", "remove_members", "delete_group"}, result["report"]["actions"]
    for name in GOOD:
        account = target.account(name)
        assert account is not None and target.enabled(account), name
    # their group memberships are left as they were
    assert target.keys["good1"].lower() in [m.lower() for m in target.group_members("Plain")]


def test_no_run_showed_a_traceback(target, first):
    assert target.texts and all("Traceback" not in text for text in target.texts)


def plan_of(result):
    return sorted((a["kind"], a["name"]) for a in result["report"]["actions"])
