# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The sync role through the ready playbook ``playbooks/scim_sync.yml``, run by ansible-playbook for real.

A real slapd (``fresh_slapd``) and a real scim2-server (``scim_server``); the settings are role
variables, the secrets and URLs come from the environment (SCIM_URL, SCIM_TOKEN, LDAP_SERVER_URI,
LDAP_BIND_DN, LDAP_BIND_PW) as an AWX credential would inject them. Each run imports the ready
playbook and adds a play that records ``sync_result``; the custom stats (``set_stats``) are
read from the end of the output (``ANSIBLE_SHOW_CUSTOM_STATS``), as AWX would aggregate them.
Seed data: tests/data/ldap/README.md.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from ansible.module_utils.basic import env_fallback
from support.fault_proxy import FaultProxy
from support.seed import ACTIVE_PEOPLE, GROUPS, PEOPLE, PEOPLE_IDS

from ansible_collections.idsync.provisioning.plugins.action import sync as sync_action
from ansible_collections.idsync.provisioning.plugins.module_utils import _ldap, _runner

REPO_ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = REPO_ROOT / "playbooks" / "scim_sync.yml"
EXAMPLE_INVENTORY = REPO_ROOT / "playbooks" / "inventory" / "hosts.yml"
COLLECTIONS_ROOT = REPO_ROOT / ".build" / "collections"
BIN_DIR = Path(sys.executable).parent

SOURCE = {
    "user_base_dn": PEOPLE,
    "group_base_dn": GROUPS,
    "group_search_scope": "onelevel",
    "group_filter": "(|(cn=Engineering)(cn=Platform*)(cn=Sales))",
    "nested_groups": True,
}

WRAPPER = """\
- name: The ready playbook
  ansible.builtin.import_playbook: {playbook}

- name: Record what the role left behind
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Record sync_result
      ansible.builtin.copy:
        content: "{{{{ {{'result': sync_result}} | to_json }}}}"
        dest: "{{{{ record }}}}"
        mode: "0600"
      check_mode: false
      diff: false
      changed_when: false
"""


@dataclass
class Run:
    rc: int
    stdout: str
    stderr: str
    result: dict | None  # sync_result, when the record play ran

    @property
    def text(self) -> str:
        return self.stdout + self.stderr

    def summary(self) -> list[str]:
        """The lines of the role's summary task, as the default callback prints them."""
        match = re.search(
            r"TASK \[idsync\.provisioning\.sync : Summary of the sync\].*?=> (\{.*?\n\})", self.stdout, re.S
        )
        assert match, self.text
        return json.loads(match.group(1))["msg"]

    def custom_stats(self) -> dict:
        """The run's custom stats (per_host: false), as printed at the end of the play."""
        match = re.search(r"^\s*RUN: (\{.*\})\s*$", self.stdout, re.M)
        assert match, self.text
        return json.loads(match.group(1))

    def recap_changed(self) -> int:
        match = re.search(r"^localhost\s+: ok=\d+\s+changed=(\d+)", self.stdout, re.M)
        assert match, self.text
        return int(match.group(1))


class Job:
    """The ready playbook against one directory and one SCIM service."""

    def __init__(self, ldap, scim, tmp_path: Path):
        self.ldap = ldap
        self.scim = scim
        self.tmp_path = tmp_path
        self.scim_url = scim.url
        self.runs = 0

    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LDAP", "SCIM_"))}
        env.update(
            {
                "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS_ROOT),
                "ANSIBLE_NOCOLOR": "1",
                "ANSIBLE_RETRY_FILES_ENABLED": "0",
                "ANSIBLE_DEPRECATION_WARNINGS": "0",
                "ANSIBLE_SHOW_CUSTOM_STATS": "1",
                "ANSIBLE_LOCAL_TEMP": str(self.tmp_path / "ansible-tmp"),
                "SCIM_URL": self.scim_url,
                "SCIM_TOKEN": self.scim.token,
                "LDAP_SERVER_URI": self.ldap.uri,
                "LDAP_BIND_DN": self.ldap.reader_dn,
                "LDAP_BIND_PW": self.ldap.reader_pw,
            }
        )
        return env

    def run(self, *flags: str, inventory: Path | None = None, env: dict | None = None, **role_vars) -> Run:
        """Run the ready playbook with ``role_vars`` as extra vars (``sync_source`` defaults to SOURCE)."""
        self.runs += 1
        work = self.tmp_path / f"run{self.runs}"
        work.mkdir(parents=True)
        wrapper = work / "play.yml"
        wrapper.write_text(WRAPPER.format(playbook=PLAYBOOK))
        record = work / "record.json"
        if inventory is None:
            inventory = work / "hosts.ini"
            inventory.write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
        variables = {"record": str(record), "sync_source": SOURCE}
        variables.update(role_vars)
        vars_file = work / "vars.json"
        vars_file.write_text(json.dumps(variables))
        command = [str(BIN_DIR / "ansible-playbook"), "-i", str(inventory), "-e", f"@{vars_file}", str(wrapper), *flags]
        run_env = self.env()
        for name, value in (env or {}).items():  # None removes a variable
            if value is None:
                run_env.pop(name, None)
            else:
                run_env[name] = value
        proc = subprocess.run(command, capture_output=True, text=True, env=run_env, timeout=600, check=False)
        result = json.loads(record.read_text())["result"] if record.exists() else None
        return Run(proc.returncode, proc.stdout, proc.stderr, result)

    def dump(self) -> str:
        return json.dumps({"users": self.scim.all("Users"), "groups": self.scim.all("Groups")}, sort_keys=True)

    def user_names(self) -> list[str]:
        return sorted(u["userName"] for u in self.scim.all("Users"))

    def members(self) -> dict[str, list[str]]:
        names = {u["id"]: u["userName"] for u in self.scim.all("Users")}
        return {
            g["displayName"]: sorted(names[m["value"]] for m in g.get("members", [])) for g in self.scim.all("Groups")
        }


@pytest.fixture
def job(fresh_slapd, scim_server, tmp_path):
    return Job(fresh_slapd, scim_server, tmp_path)


FIRST_RUN_COUNTS = {"create_user": 7, "create_group": 3, "add_members": 3}
FIRST_RUN_MEMBERS = {
    "Engineering": ["asmith", "bwhite", "jdoe", "jmuller", "jsmith"],
    "Platform": ["bwhite", "jmuller"],
    "Sales": ["zoe"],
}


# -- preview ----------------------------------------------------------------------------------


def test_check_mode_is_a_preview_that_writes_nothing(job):
    before = job.dump()
    run = job.run("--check", "--diff")
    assert run.rc == 0, run.text
    assert job.dump() == before
    assert job.user_names() == []
    assert run.summary() == [
        "preview: nothing was written (scim, check mode)",
        "preview: would create 7 users, link 0, update 0, enable 0, disable 0, delete 0",
        "preview: would create 3 groups, link 0, rename 0, delete 0",
        "preview: would add 8 group members, remove 0",
        "preview: failures 0",
    ]
    assert run.result["report"]["check_mode"] is True
    assert run.result["report"]["counts"] == FIRST_RUN_COUNTS
    assert run.custom_stats() == {
        "idsync_report": {"target": "scim", "preview": True, "counts": FIRST_RUN_COUNTS, "failed": 0, "failures": []}
    }
    # --diff shows the objects' before and after
    assert "+++ after: user jdoe (create_user)" in run.stdout


def test_idsync_preview_previews_in_a_normal_run(job):
    before = job.dump()
    run = job.run(sync_preview=True)
    assert run.rc == 0, run.text
    assert job.dump() == before
    assert run.summary()[0] == "preview: nothing was written (scim, check mode)"
    assert run.summary()[1] == "preview: would create 7 users, link 0, update 0, enable 0, disable 0, delete 0"
    assert run.result["report"]["check_mode"] is True
    assert run.result["changed"] is True  # it would change something
    assert run.custom_stats()["idsync_report"]["preview"] is True


# -- apply ------------------------------------------------------------------------------------


def test_apply_then_nothing_left_to_do(job):
    run = job.run()
    assert run.rc == 0, run.text
    assert run.summary() == [
        "scim sync: changes applied",
        "users: 7 created, 0 linked, 0 updated, 0 enabled, 0 disabled, 0 deleted",
        "groups: 3 created, 0 linked, 0 renamed, 0 deleted",
        "group members: 8 added, 0 removed",
        "failures: 0",
    ]
    assert job.user_names() == ACTIVE_PEOPLE
    assert job.members() == FIRST_RUN_MEMBERS
    jdoe = job.scim.user_by_name("jdoe")
    assert jdoe["externalId"] == "idsync:" + PEOPLE_IDS["jdoe"]
    assert jdoe["emails"] == [{"value": "jdoe@example.org", "type": "work", "primary": True}]
    assert run.result["changed"] is True
    assert run.result["report"]["check_mode"] is False
    assert run.custom_stats() == {
        "idsync_report": {"target": "scim", "preview": False, "counts": FIRST_RUN_COUNTS, "failed": 0, "failures": []}
    }
    assert run.recap_changed() == 1  # only the sync task changes anything

    again = job.run()
    assert again.rc == 0, again.text
    assert again.summary()[0] == "scim sync: nothing to change"
    assert again.summary()[1] == "users: 0 created, 0 linked, 0 updated, 0 enabled, 0 disabled, 0 deleted"
    assert again.result["changed"] is False
    assert again.result["report"]["counts"] == {}
    assert again.recap_changed() == 0
    assert again.custom_stats()["idsync_report"]["counts"] == {}


def test_incremental_change_disable_rename_and_membership(job):
    assert job.run().rc == 0
    job.ldap.modify(
        f"dn: uid=asmith,{PEOPLE}\nchangetype: modify\nadd: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n"
    )
    job.ldap.rename(f"cn=Platform,{GROUPS}", "cn=Platform Team")
    job.ldap.modify(
        f"dn: cn=Engineering,{GROUPS}\nchangetype: modify\ndelete: member\nmember: cn=Platform,{GROUPS}\n-\n"
        f"add: member\nmember: cn=Platform Team,{GROUPS}\n"
    )
    before = job.dump()
    preview = job.run("--check", "--diff")
    assert preview.rc == 0, preview.text
    assert job.dump() == before
    assert preview.summary()[1:4] == [
        "preview: would create 0 users, link 0, update 0, enable 0, disable 1, delete 0",
        "preview: would create 0 groups, link 0, rename 1, delete 0",
        "preview: would add 0 group members, remove 1",
    ]
    run = job.run()
    assert run.rc == 0, run.text
    assert run.summary()[1:4] == [
        "users: 0 created, 0 linked, 0 updated, 0 enabled, 1 disabled, 0 deleted",
        "groups: 0 created, 0 linked, 1 renamed, 0 deleted",
        "group members: 0 added, 1 removed",
    ]
    assert job.scim.user_by_name("asmith")["active"] is False
    assert job.members() == {
        "Engineering": ["bwhite", "jdoe", "jmuller", "jsmith"],
        "Platform Team": ["bwhite", "jmuller"],
        "Sales": ["zoe"],
    }
    assert run.custom_stats()["idsync_report"]["counts"] == {"disable_user": 1, "rename_group": 1, "remove_members": 1}


# -- failures ---------------------------------------------------------------------------------

ZOE_REFUSED = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "400", "detail": "zoe refused"}


def refuse_zoe(proxy: FaultProxy) -> None:
    proxy.fail("POST", r"/Users$", status=400, body=ZOE_REFUSED, when=lambda seen: b'"zoe"' in seen.body)


def test_a_failed_object_is_summarised_then_fails_the_play_at_the_end(job):
    with FaultProxy(job.scim.url) as proxy:
        refuse_zoe(proxy)
        job.scim_url = proxy.url
        run = job.run()
    assert run.rc != 0
    assert run.result is None  # the host failed: the record play did not run
    summary = run.summary()
    assert summary[1] == "users: 6 created, 0 linked, 0 updated, 0 enabled, 0 disabled, 0 deleted"
    assert summary[4] == "failures: 2"
    failed = summary[5:]
    assert len(failed) == 2
    assert failed[0].startswith("failed create_user user zoe: ") and "zoe refused" in failed[0]
    assert failed[1].startswith("failed add_members group Sales: ")
    # the summary comes first, then the failure of the final task
    final = run.stdout.index("TASK [idsync.provisioning.sync : Fail when objects failed to sync]")
    assert run.stdout.index("Summary of the sync") < final
    assert "2 object(s) failed to sync to scim (zoe, Sales)" in run.stdout[final:]
    # the others were synced all the same
    assert job.user_names() == [name for name in ACTIVE_PEOPLE if name != "zoe"]
    stats = run.custom_stats()["idsync_report"]
    assert stats["failed"] == 2
    assert sorted((f["kind"], f["name"]) for f in stats["failures"]) == [
        ("add_members", "Sales"),
        ("create_user", "zoe"),
    ]


def test_fail_on_errors_false_reports_without_failing(job):
    with FaultProxy(job.scim.url) as proxy:
        refuse_zoe(proxy)
        job.scim_url = proxy.url
        run = job.run(sync_fail_on_errors=False)
    assert run.rc == 0, run.text
    assert run.result["report"]["failed"] == 2
    assert run.summary()[4] == "failures: 2"
    assert "Fail when objects failed to sync] *" in run.stdout
    assert "skipping: [localhost]" in run.stdout.split("Fail when objects failed to sync")[1]


def test_a_threshold_stops_the_sync_before_any_write(job):
    assert job.run().rc == 0
    job.ldap.modify(
        "".join(
            f"dn: uid={uid},{PEOPLE}\nchangetype: modify\nadd: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n\n"
            for uid in ("jdoe", "bwhite")
        )
    )
    before = job.dump()
    run = job.run(sync_policy={"max_disables": 1})
    assert run.rc != 0
    assert job.dump() == before
    assert "max_disables" in run.stdout
    assert "Summary of the sync" not in run.stdout  # no report: the sync task itself failed


# -- validation -------------------------------------------------------------------------------


SYNC_TASK = "Sync the directory into the target service"


def test_argument_spec_refuses_a_bad_value_before_anything_runs(job):
    run = job.run(sync_policy={"remove_user_action": "erase"})
    assert run.rc != 0
    assert "value of remove_user_action must be one of: disable, delete, got: erase found in sync_policy" in run.stdout
    assert SYNC_TASK not in run.stdout
    assert job.user_names() == []


@pytest.mark.parametrize(
    ("role_vars", "message"),
    [
        ({"sync_target": "nosuch"}, "value of sync_target must be one of:"),
        ({"sync_source": {"server_uri": ["ldap://127.0.0.1:1"]}}, "missing required arguments: user_base_dn"),
        ({"sync_max_workers": "many"}, "sync_max_workers"),
    ],
)
def test_argument_spec_messages(job, role_vars, message):
    run = job.run(**role_vars)
    assert run.rc != 0
    assert message in run.text, run.text
    assert SYNC_TASK not in run.stdout
    assert job.user_names() == []


@pytest.mark.parametrize(
    ("role_vars", "message"),
    [
        (
            {"sync_policy": {"max_deletes": "lots"}},
            "sync_policy.max_deletes: expected a count (10) or a percentage of the managed objects ('5%'), "
            'got "lots"',
        ),
        ({"sync_group_mapping": {"displayName": "name"}}, "sync_group_mapping: only the key name is mapped"),
        (
            {"sync_policy": {"remove_user_action": "delete", "operations": {"delete_users": False}}},
            "remove_user_action is delete but operations.delete_users is false",
        ),
    ],
)
def test_cross_field_rules(job, role_vars, message):
    run = job.run(**role_vars)
    assert run.rc != 0
    assert message in run.stdout, run.text
    assert SYNC_TASK not in run.stdout
    assert job.user_names() == []


@pytest.mark.parametrize(
    ("connection", "message"),
    [
        ({"client_id": "x"}, "Unsupported parameters for (idsync.provisioning.scim_sync) module: client_id."),
        ({"token": "tok-0123456789", "auth_username": "svc-sync"}, "token and auth_username are mutually exclusive"),
        ({"source": {}}, "connection: source is not a connection option here"),
    ],
)
def test_the_target_module_checks_the_connection_options_before_any_read(job, connection, message):
    """No per-target copy in the role: the module's own argument spec refuses what it does not take."""
    run = job.run(sync_connection=dict({"url": job.scim.url}, **connection))
    assert run.rc != 0
    assert message in run.text, run.text
    assert not (run.result or {}).get("report")
    assert job.user_names() == []


def test_a_null_dict_is_refused_by_name(job):
    """A group_vars key whose entries are all commented out is null, not {}: refused, naming the variable."""
    run = job.run(sync_policy=None)
    assert run.rc != 0
    assert "argument 'sync_policy' is of type NoneType and we were unable to convert to dict" in run.text
    assert job.user_names() == []


def test_thresholds_accept_counts_and_percentages(job):
    run = job.run(sync_policy={"max_deletes": 0, "max_disables": "10%", "max_group_deletes": "2"})
    assert run.rc == 0, run.text
    assert job.user_names() == ACTIVE_PEOPLE


# -- secrets and the example inventory -------------------------------------------------------------


def test_secrets_in_variables_are_never_printed(job):
    """The vault way: token and bind password as role variables instead of the environment."""
    env = {"SCIM_TOKEN": None, "LDAP_BIND_PW": None}
    source = dict(SOURCE, bind_dn=job.ldap.reader_dn, bind_pw=job.ldap.reader_pw)
    run = job.run("--check", "--diff", "-vvv", env=env, sync_source=source, sync_connection={"token": job.scim.token})
    assert run.rc == 0, run.text
    assert run.result["report"]["counts"] == FIRST_RUN_COUNTS  # it did bind and authenticate
    assert job.scim.token not in run.text
    assert job.ldap.reader_pw not in run.text
    assert job.scim.token not in json.dumps(run.result)


def test_example_inventory_and_group_vars(job):
    """playbooks/inventory: the interpreter setting and the example group_vars are used as shipped."""
    run = job.run(inventory=EXAMPLE_INVENTORY, sync_connection={"url": job.scim.url}, sync_source=SOURCE)
    assert run.rc == 0, run.text
    # the example mapping adds title; the example policy is in force (its thresholds parse)
    assert job.scim.user_by_name("jdoe")["title"] == "Engineer"
    assert job.scim.user_by_name("asmith")["title"] == "Engineering Manager"
    assert "title" not in job.scim.user_by_name("bwhite")
    assert job.user_names() == ACTIVE_PEOPLE
    again = job.run(inventory=EXAMPLE_INVENTORY, sync_connection={"url": job.scim.url}, sync_source=SOURCE)
    assert again.rc == 0, again.text
    assert again.result["changed"] is False


# -- the role's argument spec follows the module's ---------------------------------------------------

ROLE_SPEC = REPO_ROOT / "roles" / "sync" / "meta" / "argument_specs.yml"
ROLE_DEFAULTS = REPO_ROOT / "roles" / "sync" / "defaults" / "main.yml"
COMPARED = ("type", "elements", "default", "choices", "required", "no_log")


def comparable(entry: dict) -> dict:
    """The parts of an argument spec entry that the role and the module must agree on."""
    values = {key: entry.get(key) for key in COMPARED}
    values["required"] = bool(values["required"])
    values["no_log"] = bool(values["no_log"])
    if values["choices"] is not None:
        values["choices"] = sorted(str(choice) for choice in values["choices"])
    return values


def assert_same_options(role_options: dict, module_spec: dict, where: str, raw_ok: tuple[str, ...] = ()) -> None:
    assert sorted(role_options) == sorted(module_spec), where
    for name, module_entry in module_spec.items():
        role_entry = comparable(role_options[name])
        expected = comparable(module_entry)
        if name in raw_ok:  # a count or a percentage: the role takes 10 as well as '10', and passes a string
            assert role_entry["type"] == "raw" and expected["type"] == "str", f"{where}.{name}"
            role_entry["type"] = expected["type"]
        assert role_entry == expected, f"{where}.{name}: role {role_entry} != module {expected}"
        if "options" in module_entry:
            assert_same_options(role_options[name]["options"], module_entry["options"], f"{where}.{name}")


def test_role_options_match_the_sync_modules():
    options = yaml.safe_load(ROLE_SPEC.read_text())["argument_specs"]["main"]["options"]
    assert_same_options(options["sync_source"]["options"], _ldap.source_argument_spec(env_fallback), "sync_source")
    # The connection options are the target module's own: the role passes them through unchecked.
    assert options["sync_connection"]["type"] == "dict" and "options" not in options["sync_connection"]
    policy = _runner.policy_argument_spec()
    assert_same_options(
        options["sync_policy"]["options"],
        policy,
        "sync_policy",
        raw_ok=("max_deletes", "max_disables", "max_group_deletes"),
    )
    # Every target the collection ships is a choice: a <target>_sync module is a target.
    shipped = sorted(path.name[: -len("_sync.py")] for path in (REPO_ROOT / "plugins" / "modules").glob("*_sync.py"))
    assert sorted(options["sync_target"]["choices"]) == shipped == sorted(sync_action.TARGETS)
    # every role variable is documented, and documented defaults are the real ones
    defaults = yaml.safe_load(ROLE_DEFAULTS.read_text())
    assert sorted(defaults) == sorted(name for name in options if name != "sync_source")
    for name, value in defaults.items():
        assert options[name].get("default") == value, name
