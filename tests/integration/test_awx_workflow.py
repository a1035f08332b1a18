# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The AWX workflow of docs/awx/workflow_plan_approve_apply.yml, run job by job under ansible-runner.

preview job (playbooks/plan_preview.yml) -> approval node -> apply job (playbooks/plan_apply.yml),
against a real slapd and a real scim2-server, the way AWX runs it (test_awx_runner.py's helpers:
the credentials' injectors as the job's environment, the template's variables trusted and every
other extra variable ``!unsafe``). The artifacts of a job are what AWX stores: the ``set_stats``
data of the ``playbook_on_stats`` event, read here from the runner's artifacts directory
(``job_events/*.json``). AWX hands a job's artifacts to every later node of the workflow, through
the approval node, as extra variables (``WorkflowJobNode.get_job_kwargs``): the test walks the
workflow's nodes in the example file and does the same, approving being passing the artifacts on.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ansible_runner
import pytest
import test_awx_runner
from support.seed import ACTIVE_PEOPLE, PEOPLE
from test_awx_runner import (
    ANSIBLE_PLAYBOOK,
    AWX_DIR,
    COLLECTIONS_ROOT,
    INVENTORY,
    LDAP_TYPE,
    REPO_ROOT,
    SCIM_TYPE,
    SOURCE,
    awx_extravars,
    awx_inject,
    load_yaml,
    server_dump,
)

clean_environ = test_awx_runner.clean_environ  # a fixture, used by name

WORKFLOW_PLAY = load_yaml(AWX_DIR / "workflow_plan_approve_apply.yml")[0]
ROLE_SPEC = REPO_ROOT / "roles" / "sync" / "meta" / "argument_specs.yml"
# A title that is a template: it must reach the service as it is, through the artifact and back.
TEMPLATE_TITLE = "{{ lookup('ansible.builtin.env', 'SCIM_TOKEN') }}"


def tasks_of(module: str) -> list[dict[str, Any]]:
    return [task[module] for task in WORKFLOW_PLAY["tasks"] if module in task]


def template_of(name: str) -> dict[str, Any]:
    (found,) = [args for args in tasks_of("awx.awx.job_template") if args["name"] == name]
    return found


def play_var(reference: str) -> Any:
    match = re.fullmatch(r"\{\{\s*(\w+)\s*\}\}", reference.strip())
    assert match, reference
    return WORKFLOW_PLAY["vars"][match.group(1)]


def workflow_chain() -> list[dict[str, Any]]:
    """The workflow's nodes from its root along the success links, as AWX runs them."""
    nodes = {args["identifier"]: args for args in tasks_of("awx.awx.workflow_job_template_node")}
    (workflow,) = tasks_of("awx.awx.workflow_job_template")
    assert {args["workflow_job_template"] for args in nodes.values()} == {workflow["name"]}
    followers = {name for args in nodes.values() for name in args.get("success_nodes", [])}
    assert followers <= set(nodes), "a success node that is not a node of the workflow"
    (root,) = set(nodes) - followers
    chain = [nodes[root]]
    while chain[-1].get("success_nodes"):
        (following,) = chain[-1]["success_nodes"]
        chain.append(nodes[following])
    assert len(chain) == len(nodes), "a node not reached from the root"
    assert not any(args.get("failure_nodes") or args.get("always_nodes") for args in nodes.values())
    return chain


@dataclass
class Job:
    runner: Any
    events: list[dict[str, Any]]

    @property
    def artifacts(self) -> dict[str, Any]:
        """The job's artifacts as AWX stores them, from the stats event in the runner's artifacts dir."""
        events_dir = Path(self.runner.config.artifact_dir) / "job_events"
        stats = []
        for path in events_dir.glob("*.json"):
            event = json.loads(path.read_text(encoding="utf-8"))
            if event.get("event") == "playbook_on_stats":
                stats.append(event)
        assert len(stats) == 1, sorted(p.name for p in events_dir.glob("*.json"))
        return stats[0]["event_data"].get("artifact_data") or {}

    @property
    def stdout(self) -> str:
        return "\n".join(event.get("stdout", "") for event in self.events)

    def failures(self) -> list[dict[str, Any]]:
        return [event["event_data"] for event in self.events if event["event"] == "runner_on_failed"]

    def shown(self, *values: str) -> list[str]:
        text = json.dumps(self.events, ensure_ascii=False)
        text += (Path(self.runner.config.artifact_dir) / "stdout").read_text(encoding="utf-8")
        return [value for value in values if value in text]


class Workflow:
    """One run of the example workflow: its jobs share the credentials and the site's variables."""

    def __init__(self, tmp_path: Path, ldap, scim, **site_vars: Any):
        self.tmp_path = tmp_path
        self.credentials = [
            (
                LDAP_TYPE,
                {
                    "server_uri": ldap.ldaps_uri,
                    "bind_dn": ldap.reader_dn,
                    "bind_password": ldap.reader_pw,
                    "ca_certificate": Path(ldap.ca_file).read_text(),
                },
            ),
            (SCIM_TYPE, {"url": scim.url, "token": scim.token}),
        ]
        self.secrets = (scim.token, ldap.reader_pw)
        # the site's storage and directory layout replace the example's
        self.site_vars = {
            "sync_source": SOURCE,
            "sync_plan_dir": str(tmp_path / "shared" / "plans"),
            "sync_report_dir": str(tmp_path / "shared" / "reports"),
            **site_vars,
        }
        (tmp_path / "shared" / "plans").mkdir(parents=True)
        self.jobs = 0
        self.chain = workflow_chain()

    def launch(self, node: dict[str, Any], ancestor_artifacts: dict[str, Any]) -> Job:
        """Launch a job node's template as AWX does, with the artifacts of the nodes before it."""
        template = template_of(node["unified_job_template"])
        self.jobs += 1
        workdir = self.tmp_path / f"job{self.jobs}"
        (workdir / "env").mkdir(parents=True)
        (workdir / "tmp").mkdir()
        injected: dict[str, str] = {}
        for definition, inputs in self.credentials:
            injected.update(awx_inject(definition, inputs, workdir))
        template_vars = {**play_var(template["extra_vars"]), **self.site_vars}
        # AWX's own variables of the job, and the artifacts: not the template's, so !unsafe
        untrusted = {"awx_job_id": 100 + self.jobs, "awx_workflow_job_id": 7, **ancestor_artifacts}
        (workdir / "env" / "extravars").write_text(awx_extravars(template_vars, untrusted), encoding="utf-8")
        runner = ansible_runner.run(
            private_data_dir=str(workdir),
            project_dir=str(REPO_ROOT),
            playbook=template["playbook"],
            inventory=INVENTORY,
            envvars={
                **injected,
                "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS_ROOT),
                "TMPDIR": str(workdir / "tmp"),  # the job's temporary files, as in its own container
                "PATH": os.pathsep.join([str(ANSIBLE_PLAYBOOK.parent), os.environ.get("PATH", "")]),
            },
            cmdline=("--diff" if template.get("diff_mode") else None),
            quiet=True,
            timeout=600,
        )
        return Job(runner, list(runner.events))

    def preview(self) -> Job:
        return self.launch(self.chain[0], {})

    def approve_and_apply(self, preview: Job) -> Job:
        """The approval node passes the preview's artifacts on; the apply node receives them."""
        approval, apply = self.chain[1], self.chain[2]
        assert "approval_node" in approval and "unified_job_template" not in approval
        return self.launch(apply, dict(preview.artifacts))

    def reports(self) -> list[Path]:
        return sorted((self.tmp_path / "shared" / "reports").glob("idsync-scim-*"))


@pytest.fixture
def ldap(fresh_slapd):
    # jdoe's title is a template: the plan carries it, and AWX passes the artifact as !unsafe
    fresh_slapd.modify(f"dn: uid=jdoe,{PEOPLE}\nchangetype: modify\nreplace: title\ntitle: {TEMPLATE_TITLE}\n")
    return fresh_slapd


def test_the_example_workflow():
    preview, approval, apply = workflow_chain()
    assert template_of(preview["unified_job_template"])["playbook"] == "playbooks/plan_preview.yml"
    assert template_of(apply["unified_job_template"])["playbook"] == "playbooks/plan_apply.yml"
    for node in (preview, apply):
        path = REPO_ROOT / template_of(node["unified_job_template"])["playbook"]
        assert path.is_file(), path
    # both jobs run with the same variables: a plan applies only with the options it was made with
    assert (
        template_of(preview["unified_job_template"])["extra_vars"]
        == template_of(apply["unified_job_template"])["extra_vars"]
    )
    job_vars = play_var(template_of(apply["unified_job_template"])["extra_vars"])
    role = load_yaml(ROLE_SPEC)["argument_specs"]["main"]["options"]
    assert set(job_vars) - {"sync_plan_dir"} <= set(role), "not role variables"
    # the approval expires when the plan would be too old to apply anyway
    timeout = play_var(approval["approval_node"]["timeout"])
    age = re.fullmatch(r"(\d+)h", job_vars["sync_max_plan_age"])
    assert timeout == int(age.group(1)) * 3600
    # the apply template does not ask for variables: the plan can only come from the preview's artifact
    for node in (preview, apply):
        assert template_of(node["unified_job_template"])["ask_variables_on_launch"] is False


@pytest.mark.slow
@pytest.mark.usefixtures("clean_environ")
def test_preview_approve_apply_exactly_the_plan_in_the_artifact(ldap, scim_server, tmp_path):
    # no shared storage: the plan is small and travels whole in the artifact
    workflow = Workflow(tmp_path, ldap, scim_server, sync_plan_dir="")
    preview = workflow.preview()
    assert preview.runner.status == "successful", preview.stdout[-3000:]
    assert scim_server.all("Users") == [] and scim_server.all("Groups") == [], "the preview wrote"
    artifacts = preview.artifacts
    plan, report = artifacts["idsync_plan"], artifacts["idsync_report"]
    assert report["preview"] is True and report["counts"]["create_user"] == 7
    assert plan["counts"] == report["counts"] and plan["target"] == "scim"
    assert json.loads(plan["text"])["plan_id"] == plan["id"] and plan["bytes"] <= 262144
    assert plan["sha256"] == hashlib.sha256(plan["text"].encode()).hexdigest()
    saved = Path(plan["path"])
    assert saved.name == "idsync-plan-scim-7.json"  # one per workflow run
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert saved.read_text(encoding="utf-8") == plan["text"]
    assert preview.shown(*workflow.secrets) == [] and not any(s in saved.read_text() for s in workflow.secrets)
    # the reviewer reads the plan in the job's output
    assert f"plan {plan['id']} saved to {saved}" in preview.stdout
    assert "published whole in the artifact idsync_plan" in preview.stdout

    # The preview's container is gone (AWX keeps nothing of a job), and while the plan waits for its
    # approval a new hire appears in the directory: not in the plan, so not applied.
    shutil.rmtree(saved.parent)
    ldap.add(
        f"dn: uid=newhire,{PEOPLE}\nobjectClass: inetOrgPerson\nuid: newhire\ncn: New Hire\n"
        "givenName: New\nsn: Hire\nmail: newhire@example.org\n"
    )
    applied = workflow.approve_and_apply(preview)
    assert applied.runner.status == "successful", applied.stdout[-3000:]
    done = applied.artifacts["idsync_report"]
    assert done["preview"] is False and done["plan_id"] == plan["id"]
    assert done["counts"] == plan["counts"] and done["failed"] == 0
    users = {user["userName"]: user for user in scim_server.all("Users")}
    assert sorted(users) == ACTIVE_PEOPLE  # exactly the plan's users: newhire waits for the next plan
    assert users["jdoe"]["title"] == TEMPLATE_TITLE  # passed on as data, never rendered
    assert sorted(group["displayName"] for group in scim_server.all("Groups")) == ["Engineering", "Platform", "Sales"]
    assert applied.shown(*workflow.secrets) == []
    assert list((tmp_path / "job2" / "tmp").iterdir()) == [], "the private copy of the plan was left behind"

    # one run report per job, on the shared volume
    previewed, written = workflow.reports()
    assert previewed.name.endswith("-preview.json") and not written.name.endswith("-preview.json")
    assert done["report_file"] == str(written) and report["report_file"] == str(previewed)
    run = json.loads(written.read_text())
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert run["result"] == "ok" and run["check_mode"] is False and run["plan"]["id"] == plan["id"]
    assert run["counts"] == plan["counts"] and run["started"] <= run["ended"]
    assert sorted(a["name"] for a in run["actions"] if a["kind"] == "create_user") == ACTIVE_PEOPLE
    assert {a["status"] for a in run["actions"]} == {"ok"}
    assert json.loads(previewed.read_text())["result"] == "preview"


@pytest.mark.slow
@pytest.mark.usefixtures("clean_environ")
def test_a_large_plan_goes_by_path_and_only_the_approved_file_applies(ldap, scim_server, tmp_path):
    workflow = Workflow(tmp_path, ldap, scim_server, sync_plan_artifact_max_bytes=0)
    preview = workflow.preview()
    assert preview.runner.status == "successful", preview.stdout[-3000:]
    plan = preview.artifacts["idsync_plan"]
    assert "text" not in plan and Path(plan["path"]).parent == tmp_path / "shared" / "plans"
    assert "the artifact idsync_plan names the file" in preview.stdout

    # A second preview of the same workflow run (someone launched the template again) overwrites the
    # file after the first plan was approved: the approved plan is no longer there, nothing is applied.
    ldap.modify(f"dn: uid=zoe,{PEOPLE}\nchangetype: modify\nreplace: title\ntitle: Sales Lead\n")
    again = workflow.preview()
    assert again.runner.status == "successful", again.stdout[-3000:]
    assert again.artifacts["idsync_plan"]["path"] == plan["path"]
    assert again.artifacts["idsync_plan"]["sha256"] != plan["sha256"]
    refused = workflow.approve_and_apply(preview)
    assert refused.runner.status == "failed"
    (failure,) = refused.failures()
    assert f"is not the plan {plan['id']} that was previewed and approved" in failure["res"]["msg"]
    assert scim_server.all("Users") == []

    # The plan approved last is the one in the file: it applies, read from the shared storage.
    applied = workflow.approve_and_apply(again)
    assert applied.runner.status == "successful", applied.stdout[-3000:]
    assert applied.artifacts["idsync_report"]["plan_id"] == again.artifacts["idsync_plan"]["id"]
    assert sorted(user["userName"] for user in scim_server.all("Users")) == ACTIVE_PEOPLE
    assert scim_server.user_by_name("zoe")["title"] == "Sales Lead"


@pytest.mark.slow
@pytest.mark.usefixtures("clean_environ")
def test_the_directory_changes_before_the_apply_job_which_refuses_and_writes_nothing(ldap, scim_server, tmp_path):
    workflow = Workflow(tmp_path, ldap, scim_server, sync_plan_dir="", sync_report_format="md")
    preview = workflow.preview()
    assert preview.runner.status == "successful", preview.stdout[-3000:]
    plan = preview.artifacts["idsync_plan"]
    assert plan["counts"]["create_user"] == 7
    before = server_dump(scim_server)

    # while the plan waits for its approval, asmith's mail and surname change in the directory
    ldap.modify(
        f"dn: uid=asmith,{PEOPLE}\nchangetype: modify\nreplace: mail\nmail: alice.smythe@example.org\n-\n"
        "replace: sn\nsn: Smythe\n"
    )
    refused = workflow.approve_and_apply(preview)
    assert refused.runner.status == "failed"
    (failure,) = refused.failures()
    message = failure["res"]["msg"]
    assert f"the plan {plan['id'].split(':', 1)[-1][:12]} drifted" in message
    assert "user asmith in the directory" in message and "nothing was written" in message
    assert 'name.familyName: "Smith" in the plan, "Smythe" now' in message  # the service's own field names
    drift = failure["res"]["drift"]
    assert {(entry["name"], entry["where"]) for entry in drift} == {("asmith", "directory")}
    assert server_dump(scim_server) == before, "the refused apply wrote"
    assert "idsync_report" not in refused.artifacts  # the sync task failed: nothing after it ran
    assert refused.shown(*workflow.secrets) == []

    # the apply job's report says why it stopped, in Markdown
    report = workflow.reports()[-1]
    assert report.suffix == ".md" and not report.name.endswith("-preview.md")
    text = report.read_text()
    assert "## Stopped" in text and "drifted" in text and "asmith" in text
