# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The sync role's run reports and saved plans, through the ready playbook playbooks/scim_sync.yml.

ansible-playbook for real (test_sync_role's ``Job``), a real slapd and a real scim2-server. The
workflow that passes a plan between AWX jobs is in test_awx_workflow.py; here the role is used as
a playbook user would: ``sync_report_dir`` / ``sync_report_file``, and ``sync_save_plan`` then
``sync_apply_plan`` with a path.
"""

from __future__ import annotations

import json
import stat

import pytest
from support.seed import ACTIVE_PEOPLE, PEOPLE
from test_sync_role import SYNC_TASK, Job


@pytest.fixture
def job(fresh_slapd, scim_server, tmp_path):
    return Job(fresh_slapd, scim_server, tmp_path)


def test_one_report_per_run_in_the_report_dir(job, tmp_path):
    reports = tmp_path / "reports"
    preview = job.run(sync_preview=True, sync_report_dir=str(reports), sync_report_format="md")
    assert preview.rc == 0, preview.text
    applied = job.run(sync_report_dir=str(reports), sync_report_format="md")
    assert applied.rc == 0, applied.text
    previewed, written = sorted(reports.iterdir())
    assert previewed.name.startswith("idsync-scim-") and previewed.name.endswith("-preview.md")
    assert written.name.endswith(".md") and not written.name.endswith("-preview.md")
    assert stat.S_IMODE(reports.stat().st_mode) == 0o700
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert preview.custom_stats()["idsync_report"]["report_file"] == str(previewed)
    assert applied.custom_stats()["idsync_report"]["report_file"] == str(written)
    assert applied.result["report_file"] == str(written)
    text = written.read_text()
    assert text.startswith("# idsync.provisioning run report: scim")
    assert "- result: **ok**" in text and "## Counts" in text
    assert "jdoe" in text and job.scim.token not in text and job.ldap.reader_pw not in text
    assert "- result: **preview** (check mode: nothing written)" in previewed.read_text()
    assert job.user_names() == ACTIVE_PEOPLE


def test_a_run_stopped_by_a_threshold_still_writes_its_report(job, tmp_path):
    assert job.run().rc == 0
    job.ldap.modify(
        "".join(
            f"dn: uid={uid},{PEOPLE}\nchangetype: modify\nadd: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n\n"
            for uid in ("jdoe", "bwhite")
        )
    )
    report = tmp_path / "last-run.json"
    before = job.dump()
    run = job.run(sync_policy={"max_disables": 1}, sync_report_file=str(report))
    assert run.rc != 0 and job.dump() == before
    data = json.loads(report.read_text())
    assert data["result"] == "failed" and data["check_mode"] is False
    assert "max_disables" in data["error"] and "nothing was written" in data["error"]
    assert data["started"] <= data["ended"] and data["collection_version"]


def test_save_a_plan_then_apply_exactly_it_by_path(job, tmp_path):
    plan_file = tmp_path / "plan.json"
    preview = job.run(sync_save_plan=str(plan_file))  # a run that saves a plan is a preview
    assert preview.rc == 0, preview.text
    assert job.user_names() == []
    assert preview.summary()[0] == "preview: nothing was written (scim, check mode)"
    published = preview.custom_stats()["idsync_plan"]
    assert published["path"] == str(plan_file) and published["text"] == plan_file.read_text()
    assert stat.S_IMODE(plan_file.stat().st_mode) == 0o600
    # a user who appears after the preview is not in the plan, so not applied
    job.ldap.add(f"dn: uid=late,{PEOPLE}\nobjectClass: inetOrgPerson\nuid: late\ncn: Late Comer\nsn: Comer\n")
    applied = job.run(sync_apply_plan=str(plan_file))
    assert applied.rc == 0, applied.text
    assert job.user_names() == ACTIVE_PEOPLE
    assert applied.custom_stats()["idsync_report"]["plan_id"] == published["id"]
    assert applied.result["report"]["counts"] == published["counts"]


@pytest.fixture
def shared_job(slapd, scim_server, tmp_path):
    return Job(slapd, scim_server, tmp_path)


@pytest.mark.parametrize(
    ("role_vars", "message"),
    [
        (
            {"sync_save_plan": "/tmp/p.json", "sync_apply_plan": "/tmp/p.json"},
            "a run either previews and saves a plan or applies one, not both",
        ),
        (
            {"sync_report_file": "/tmp/r.json", "sync_report_dir": "/tmp/reports"},
            "sync_report_file and sync_report_dir: give one",
        ),
        ({"sync_report_format": "html"}, "value of sync_report_format must be one of: json, md, got: html"),
        ({"sync_apply_plan": {"id": "sha256:x"}}, "sync_apply_plan: expected the path of a plan file, or the artifact"),
        (
            {"sync_apply_plan": {"id": "sha256:x", "sha256": "0" * 64, "path": "/nonexistent/plan.json"}},
            "sync_apply_plan: no plan file at /nonexistent/plan.json",
        ),
        (
            {"sync_apply_plan": {"id": "sha256:x", "sha256": "0" * 64, "text": '{"plan_id": "sha256:x"}'}},
            "sync_apply_plan: the text of the artifact is not the plan sha256:x that was previewed and approved",
        ),
    ],
    ids=["save-and-apply", "file-and-dir", "format", "artifact-shape", "no-file", "wrong-text"],
)
def test_plan_and_report_settings_are_refused_before_the_sync(shared_job, role_vars, message):
    run = shared_job.run(**role_vars)
    assert run.rc != 0
    assert message in run.text, run.text
    assert f"TASK [idsync.provisioning.sync : {SYNC_TASK}]" not in run.stdout
    assert shared_job.user_names() == []
