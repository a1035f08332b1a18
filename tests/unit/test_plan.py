# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the readable preview, saved plans, drift and the renderings (_plan.py)."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import time
from pathlib import Path

import pytest
import yaml
from unit.memory_connector import MemoryConnector

from ansible_collections.idsync.provisioning.plugins.module_utils import _plan
from ansible_collections.idsync.provisioning.plugins.module_utils._connector import Capabilities
from ansible_collections.idsync.provisioning.plugins.module_utils._engine import PlanRefused, Policy, apply, plan
from ansible_collections.idsync.provisioning.plugins.module_utils._model import (
    DesiredGroup,
    DesiredUser,
    ProvisioningError,
)
from ansible_collections.idsync.provisioning.plugins.module_utils._state import OwnershipState

PREFIX = "idsync:"
REPO_ROOT = Path(__file__).resolve().parents[2]
PATHS = ["userName", "title", "password"]
SECRET = "S3cret-Pl4n-Never-Written"


class NamedMemory(MemoryConnector):
    """The memory target with a service's names for the engine's fields, as SCIM has."""

    FIELD_NAMES = {"user": {"enabled": "active", "link": "externalId"}, "group": {"name": "displayName"}}


def person(source_id, key, disabled=False, **attrs):
    return DesiredUser(source_id=source_id, key=key, attrs={"userName": key, **attrs}, disabled=disabled)


def group(source_id, name, *members):
    return DesiredGroup(source_id=source_id, name=name, members=set(members))


def context():
    return {
        "target": {"name": "memory", "connection": {"url": "memory://tenant"}},
        "source": {"user_base_dn": "ou=people,dc=example,dc=org"},
        "options": {"marker_prefix": PREFIX, "remove_user_action": "disable"},
        "mapped_paths": PATHS,
    }


def labels(connector):
    return _plan.field_labels(connector, "userName")


def preview(connector, users, groups=None, **policy):
    """plan + check-mode apply + the saved plan of that preview."""
    the_plan = plan(users, groups, connector, Policy(**policy))
    report = apply(the_plan, connector, check_mode=True)
    views = _plan.Views(connector, None, PATHS, users, groups)
    document = _plan.seal(_plan.build_saved_plan(the_plan, views, labels(connector), context()))
    return the_plan, report, document


def seeded():
    target = NamedMemory()
    target.seed_user("jdoe", {"title": "Engineer"}, link=PREFIX + "s1")
    target.seed_user("asmith", {"title": "Manager"}, link=PREFIX + "s2")
    target.seed_user("gone", link=PREFIX + "s9")
    staff = target.seed_group("Staff", link=PREFIX + "g1")
    staff.members = {target.user_by_key("jdoe").id, target.user_by_key("gone").id}
    return target


def wanted():
    users = [
        person("s1", "jdoe", title="Principal"),
        person("s2", "asmith", disabled=True, title="Manager"),
        person("s3", "zoe", password=SECRET),
    ]
    return users, [group("g1", "Staff", "s1", "s3")]


def apply_saved(document, connector, users, groups, state=None):
    views = _plan.Views(connector, state, PATHS, users, groups)
    return _plan.prepare_apply(document, views, connector, state)


# -- the preview ------------------------------------------------------------------------------


def test_preview_starts_with_the_counts_and_names_fields_as_the_target_does():
    target = seeded()
    users, groups = wanted()
    _plan_, report, _document = preview(target, users, groups)
    actions = report.as_dict()["actions"]
    lines = _plan.preview_lines(actions, labels(target), "memory: preview", check_mode=True)

    assert lines[0] == "memory: preview"
    assert lines[1] == "Summary: 5 changes to 5 objects"
    assert lines[2:6] == [
        "  create_user   1",
        "  update_user   1",
        "  disable_user  2",
        "  members       1 group: 1 added, 1 removed",
    ]
    text = "\n".join(lines)
    assert text.index("Summary") < text.index("create_user (1)")
    assert '      title: "Engineer" -> "Principal"' in text
    assert "  ~ jdoe: attribute title changed" in text
    assert "  - asmith: disabled in the directory" in text
    assert "  - gone: deleted in the directory or out of scope" in text
    assert "      active: true -> false" in text  # the target's name, never "enabled"
    assert '      password: "********"' in text and SECRET not in text
    # a group's member changes: one entry, + and - lines (never "members: [gone] -> {}")
    members = text[text.index("members (1 group)") :]
    assert members.splitlines()[1:4] == ["  ~ Staff: 1 added, 1 removed", "      + zoe", "      - gone"]
    assert "enabled" not in text and "{}" not in text


def test_long_plans_show_every_count_and_the_first_objects_per_action():
    target = NamedMemory()
    users = [person(f"s{n}", f"user{n:03}") for n in range(30)]
    _plan_, report, _document = preview(target, users)
    lines = _plan.preview_lines(report.as_dict()["actions"], labels(target), "t", check_mode=True, limit=5)
    assert "  create_user  30" in lines
    entries = [line for line in lines if line.startswith("  + ")]
    assert [line.split(":")[0] for line in entries] == [f"  + user{n:03}" for n in range(5)]
    assert "  ... and 25 more" in lines
    everything = _plan.preview_lines(report.as_dict()["actions"], labels(target), "t", check_mode=True, limit=0)
    assert len([line for line in everything if line.startswith("  + ")]) == 30


def test_the_diff_is_the_preview_then_before_and_after_under_the_target_names():
    target = seeded()
    users, groups = wanted()
    _plan_, report, _document = preview(target, users, groups)
    actions = report.as_dict()["actions"]
    lines = _plan.preview_lines(actions, labels(target), "t", check_mode=True)
    entries = _plan.diff_entries(actions, lines, labels(target), check_mode=True, limit=20)
    assert entries[0] == {"before_header": "preview", "after_header": "preview", "prepared": "\n".join(lines) + "\n"}
    headers = [entry["before_header"] for entry in entries[1:]]
    assert "user asmith (disable_user)" in headers and "user jdoe (update_user)" in headers
    assert not any("members" in header for header in headers)  # member changes: in the preview only
    disable = entries[1 + headers.index("user asmith (disable_user)")]
    assert json.loads(disable["before"]) == {"active": True} and json.loads(disable["after"]) == {"active": False}


def test_a_threshold_stop_names_the_counts_and_the_first_objects_not_the_plan():
    target = NamedMemory()
    for n in range(40):
        target.seed_user(f"old{n:02}", link=PREFIX + f"x{n}")
    with pytest.raises(PlanRefused) as raised:
        plan([person("s1", "alice")], None, target, Policy(max_disables="2", allow_empty_source=True), shown=10)
    message = raised.value.message
    assert message.startswith("the plan would disable 40 users of 40 managed, more than max_disables=2 allows (2)")
    assert "nothing was written" in message
    assert "The plan: 1 create_user, 40 disable_user." in message
    assert "Tripped by: old00 (deleted in the directory or out of scope)" in message and "and 35 more" in message
    assert len(message) < 600 and "{" not in message
    details = raised.value.details
    assert details["counts"] == {"create_user": 1, "disable_user": 40}
    assert [action["name"] for action in details["actions"]] == [f"old{n:02}" for n in range(10)]
    assert details["more"] == 30 and all(action["kind"] == "disable_user" for action in details["actions"])


# -- saved plans ----------------------------------------------------------------------------------


def test_a_saved_plan_holds_what_it_touches_and_no_secret(tmp_path):
    target = seeded()
    users, groups = wanted()
    _plan_, _report, document = preview(target, users, groups)
    path = tmp_path / "plan.json"
    _plan.write_private(str(path), _plan.plan_text(document), "save_plan")

    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    text = path.read_text()
    assert SECRET not in text
    saved = _plan.read_plan(str(path))
    assert saved["plan_id"].startswith("sha256:") and saved["collection_version"] == _plan.COLLECTION_VERSION
    assert saved["summary"]["counts"] == {
        "create_user": 1,
        "update_user": 1,
        "disable_user": 2,
        "add_members": 1,
        "remove_members": 1,
    }
    jdoe = saved["objects"][f"user:{target.user_by_key('jdoe').id}"]
    assert jdoe["source"]["view"]["attrs"] == {"userName": "jdoe", "title": "Principal"}
    assert jdoe["target"]["view"]["values"] == {"userName": "jdoe", "title": "Engineer"}  # no password path
    assert jdoe["target"]["fingerprint"].startswith("sha256:")
    staff = saved["objects"][f"group:{target.group_by_name('Staff').id}"]
    assert staff["target"]["view"]["members"] == sorted(target.group_by_name("Staff").members)
    assert saved["objects"]["user:new:s3"]["target"]["view"] is None
    assert saved["field_names"]["user"]["enabled"] == "active"


def test_a_changed_plan_file_is_refused(tmp_path):
    target = seeded()
    users, groups = wanted()
    _plan_, _report, document = preview(target, users, groups)
    path = tmp_path / "plan.json"
    document["actions"][0]["name"] = "someone-else"
    path.write_text(_plan.plan_text(document))
    with pytest.raises(ProvisioningError, match="was changed after it was made"):
        _plan.read_plan(str(path))
    path.write_text("{}")
    with pytest.raises(ProvisioningError, match="is not a plan file"):
        _plan.read_plan(str(path))
    with pytest.raises(ProvisioningError, match="no plan file at"):
        _plan.read_plan(str(tmp_path / "missing.json"))


def test_a_plan_is_refused_for_another_target_other_options_or_when_stale():
    target = seeded()
    users, groups = wanted()
    _plan_, _report, document = preview(target, users, groups)
    ctx = context()
    _plan.check_plan(document, ctx["target"], ctx["options"], max_age=3600)
    other = {"name": "memory", "connection": {"url": "memory://other"}}
    with pytest.raises(ProvisioningError, match="was made for memory \\(url memory://tenant\\)"):
        _plan.check_plan(document, other, ctx["options"], max_age=3600)
    with pytest.raises(ProvisioningError, match='remove_user_action: "disable" in the plan, "delete" now'):
        _plan.check_plan(document, ctx["target"], dict(ctx["options"], remove_user_action="delete"), 3600)
    later = time.time() + 2 * 86400
    with pytest.raises(ProvisioningError, match=r"2d ago, longer ago than max_plan_age \(1d\)"):
        _plan.check_plan(document, ctx["target"], ctx["options"], max_age=86400, now=later)
    _plan.check_plan(document, ctx["target"], ctx["options"], max_age=None, now=later)


# -- applying a saved plan ------------------------------------------------------------------------


def test_applying_an_undrifted_plan_does_exactly_what_was_planned():
    target = seeded()
    users, groups = wanted()
    planned, _report, document = preview(target, users, groups)
    # Someone new in the directory since: not in the plan, not applied.
    later_users = [*users, person("s4", "newcomer")]

    applied_plan, drift = apply_saved(document, target, later_users, groups)
    assert drift == []
    assert [(s.action.kind, s.action.name) for s in applied_plan.steps] == [
        (s.action.kind, s.action.name) for s in planned.pending()
    ]
    report = apply(applied_plan, target, check_mode=False)
    assert report.failed == 0
    assert target.user_by_key("newcomer") is None
    assert target.user_by_key("jdoe").resource["title"] == "Principal"
    assert target.user_by_key("asmith").enabled is False and target.user_by_key("gone").enabled is False
    zoe = target.user_by_key("zoe")
    assert zoe.resource["password"] == SECRET  # from the source read at apply time, never from the file
    assert target.member_keys("Staff") == {"jdoe", "zoe"}
    writes = [call[0] for call in target.writes]
    assert sorted(writes) == sorted(
        ["create_user", "update_user", "set_user_enabled", "set_user_enabled", "change_members"]
    )


def test_few_objects_are_read_by_id_and_key_not_by_listing():
    target = seeded()
    users, groups = wanted()
    _planned, _report, document = preview(target, users, groups)
    target.calls.clear()
    apply_saved(document, target, users, groups)
    reads = sorted({call[0] for call in target.calls})
    assert reads == ["find_user", "get_user", "group_members", "list_groups"]
    assert sorted(name for method, name in target.calls if method == "find_user") == ["zoe"]


def test_drift_in_the_directory_or_the_target_is_listed_and_left_out():
    target = seeded()
    users, groups = wanted()
    _planned, _report, document = preview(target, users, groups)
    moved_users = [person("s1", "jdoe", title="Chief"), *users[1:]]
    target.users[target.user_by_key("asmith").id].enabled = False  # disabled by hand meanwhile
    target.seed_user("zoe")  # created by someone else meanwhile

    applied_plan, drift = apply_saved(document, target, moved_users, groups)
    found = {(entry["name"], entry["where"]): entry["changes"] for entry in drift}
    assert found == {
        ("jdoe", "directory"): ['attrs.title: "Principal" in the plan, "Chief" now'.replace("attrs.", "")],
        ("asmith", "target"): ["active: true in the plan, false now"],
        ("zoe", "target"): ["exists in the target now"],
    }
    kinds = [(s.action.kind, s.action.name) for s in applied_plan.steps]
    assert ("update_user", "jdoe") not in kinds and ("disable_user", "asmith") not in kinds
    assert ("create_user", "zoe") not in kinds
    assert ("disable_user", "gone") in kinds
    # zoe's membership was planned with her creation: left out with it
    members = [s for s in applied_plan.steps if s.action.kind == "add_members"]
    assert members == []
    message = _plan.drift_message(document, drift)
    assert message.startswith(f"apply_plan: the plan {_plan.short_id(document['plan_id'])} drifted: 3 objects of its 5")
    assert "nothing was written" in message and "skip_drifted" in message


def test_a_changed_membership_in_the_target_is_drift():
    target = seeded()
    users, groups = wanted()
    _planned, _report, document = preview(target, users, groups)
    target.group_by_name("Staff").members.add(target.user_by_key("asmith").id)
    _applied, drift = apply_saved(document, target, users, groups)
    assert drift == [
        {
            "object_type": "group",
            "name": "Staff",
            "where": "target",
            "changes": ["members: 1 added, 0 removed since the plan"],
            "actions": ["add_members", "remove_members"],
        }
    ]


def test_state_file_links_are_part_of_what_was_read(tmp_path):
    caps = Capabilities(user_link="state")
    target = NamedMemory(capabilities=caps)
    account = target.seed_user("jdoe", {"title": "Engineer"})
    state = OwnershipState(target="memory", path=str(tmp_path / "state.json"))
    state.remember("users", account.id, PREFIX + "s1", key="jdoe")
    users = [person("s1", "jdoe", title="Principal")]
    the_plan = plan(users, None, target, Policy(), state=state)
    views = _plan.Views(target, state, PATHS, users, None)
    document = _plan.seal(_plan.build_saved_plan(the_plan, views, labels(target), context()))
    assert document["objects"][f"user:{account.id}"]["target"]["view"]["link"] == PREFIX + "s1"
    assert document["field_names"]["user"]["link"] == "marker (state file)"
    state.forget("users", account.id)
    _applied, drift = _plan.prepare_apply(document, _plan.Views(target, state, PATHS, users, None), target, state)
    assert drift[0]["changes"] == ['marker (state file): "idsync:s1" in the plan, null now']


# -- renderings -------------------------------------------------------------------------------


def test_markdown_and_csv_renderings_of_a_plan():
    target = seeded()
    users, groups = wanted()
    _planned, _report, document = preview(target, users, groups)
    markdown = _plan.render_plan(document, "markdown")
    assert markdown.startswith(f"# Plan {_plan.short_id(document['plan_id'])} for memory (url memory://tenant)")
    assert "| action | count |" in markdown and "| disable_user | 2 |" in markdown
    assert '| jdoe | attribute title changed | title: "Engineer" -> "Principal" |' in markdown
    assert "| Staff | zoe | gone |" in markdown
    assert SECRET not in markdown

    rows = list(csv.DictReader(io.StringIO(_plan.render_plan(document, "csv"))))
    assert [row["action"] for row in rows] == ["create_user", "update_user", "disable_user", "disable_user", "members"]
    member_row = rows[-1]
    assert (member_row["name"], member_row["members_added"], member_row["members_removed"]) == ("Staff", "zoe", "gone")
    assert rows[2]["changes"] == "active: true -> false" and rows[2]["reason"] == "disabled in the directory"
    text = _plan.render_plan(document, "text")
    assert text.splitlines()[1] == "Summary: 5 changes to 5 objects"


def test_csv_cells_are_never_formulas():
    target = NamedMemory()
    _planned, _report, document = preview(target, [person("s1", "=cmd|'/c calc'!A1")])
    rows = list(csv.reader(io.StringIO(_plan.render_csv(document))))
    assert rows[1][3] == "'=cmd|'/c calc'!A1"


# -- the run report -----------------------------------------------------------------------------


def test_run_report_json_and_markdown(tmp_path):
    target = seeded()
    users, groups = wanted()
    target.fail_write("create_user", "zoe", "uniqueness violated")
    the_plan = plan(users, groups, target, Policy())
    report = apply(the_plan, target, check_mode=False).as_dict()
    data = _plan.build_run_report(100.0, 103.5, {"name": "memory", "connection": {}}, {}, False, report, labels(target))
    assert (data["started"], data["ended"], data["duration_seconds"]) == (
        "1970-01-01T00:01:40Z",
        "1970-01-01T00:01:43Z",
        3.5,
    )
    assert data["result"] == "failed" and data["failed"] == 2  # zoe, and adding her to Staff
    assert data["failures"][0]["error"] == "create_user zoe: uniqueness violated"
    update = next(action for action in data["actions"] if action["kind"] == "update_user")
    assert update["fields"] == {"title": {"before": "Engineer", "after": "Principal"}} and update["status"] == "ok"
    _plan.write_run_report(str(tmp_path / "run.json"), data)
    assert json.loads((tmp_path / "run.json").read_text())["counts"] == data["counts"]
    _plan.write_run_report(str(tmp_path / "run.md"), data)
    markdown = (tmp_path / "run.md").read_text()
    assert markdown.startswith("# idsync.provisioning run report: memory")
    assert "| create_user | user zoe | failed |" in markdown and "uniqueness violated" in markdown
    assert stat.S_IMODE(os.stat(tmp_path / "run.md").st_mode) == 0o600


def test_the_collection_version_is_galaxys():
    galaxy = yaml.safe_load((REPO_ROOT / "galaxy.yml").read_text())
    assert galaxy["version"] == _plan.COLLECTION_VERSION


# -- the sync runner's plan options, through run_sync with the memory target --------------------


class Finished(Exception):
    """exit_json / fail_json of the fake module: the result, and whether the task failed."""

    def __init__(self, failed, result):
        super().__init__(result.get("msg"))
        self.failed, self.result = failed, result


class FakeModule:
    def __init__(self, params, check_mode):
        self.params, self.check_mode, self._diff = params, check_mode, False
        self.no_log_values = {SECRET}
        self.warnings = []

    def warn(self, text):
        self.warnings.append(text)

    def exit_json(self, **result):
        raise Finished(False, result)

    def fail_json(self, **result):
        raise Finished(True, result)


def run_module(connector, check_mode, **options):
    from ansible_collections.idsync.provisioning.plugins.module_utils import _runner
    from ansible_collections.idsync.provisioning.plugins.module_utils._kit import Target

    target = Target(
        name="memory",
        build=lambda params: connector,
        connection_spec=lambda: {"url": {"type": "str"}, "token": {"type": "str", "no_log": True}},
        user_key="userName",
        default_user_mapping={"userName": "attributes.uid", "title": "attributes.title"},
    )
    spec = _runner.sync_argument_spec(target.connection_spec())
    params = {name: option.get("default") for name, option in spec.items()}
    records = [
        {"id": "s1", "attributes": {"uid": "jdoe", "title": "Principal"}},
        {"id": "s2", "attributes": {"uid": "asmith", "title": "Manager"}, "disabled": True},
        {"id": "s3", "attributes": {"uid": "zoe", "title": "Intern"}},
    ]
    params.update(url="memory://tenant", token=SECRET, users=records, **options)
    with pytest.raises(Finished) as finished:
        _runner.run_sync(FakeModule(params, check_mode), target)
    return finished.value


def test_run_sync_saves_a_plan_in_check_mode_and_applies_exactly_it(tmp_path):
    target = seeded()
    plan_path, report_path = tmp_path / "plan.json", tmp_path / "run.md"
    refused = run_module(target, False, save_plan=str(plan_path))
    assert refused.failed and refused.result["msg"].startswith("save_plan: a plan is saved by a preview (check mode)")
    assert target.writes == [] and not plan_path.exists()

    preview = run_module(target, True, save_plan=str(plan_path), report_file=str(tmp_path / "preview.json"))
    assert not preview.failed and target.writes == []
    assert preview.result["preview"][0] == "memory at memory://tenant: preview, nothing written (check mode)"
    assert stat.S_IMODE(os.stat(plan_path).st_mode) == 0o600 and SECRET not in plan_path.read_text()
    saved = json.loads(plan_path.read_text())
    assert saved["target"] == {"name": "memory", "connection": {"url": "memory://tenant"}}
    assert json.loads((tmp_path / "preview.json").read_text())["result"] == "preview"

    # the same plan made two hours earlier is refused under max_plan_age 1h, before any write
    approved = plan_path.read_text()
    old = dict(saved, created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 7200)))
    plan_path.write_text(_plan.plan_text(_plan.seal(old)))
    stale = run_module(target, False, apply_plan=str(plan_path), max_plan_age="1h")
    assert stale.failed and "2h ago, longer ago than max_plan_age (1h) allows" in stale.result["msg"]
    assert target.writes == []

    plan_path.write_text(approved)
    applied = run_module(target, False, apply_plan=str(plan_path), report_file=str(report_path))
    assert not applied.failed, applied.result.get("msg")
    assert (
        applied.result["report"]["counts"]
        == saved["summary"]["counts"]
        == {
            "create_user": 1,
            "update_user": 1,
            "disable_user": 2,
        }
    )
    assert applied.result["plan_file"]["id"] == saved["plan_id"]
    assert sorted(call[0] for call in target.writes) == [
        "create_user",
        "set_user_enabled",
        "set_user_enabled",
        "update_user",
    ]
    report = report_path.read_text()
    assert report.startswith("# idsync.provisioning run report: memory") and SECRET not in report
