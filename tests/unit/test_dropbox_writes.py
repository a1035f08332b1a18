# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Dropbox writes whose answer is lost (a 5xx, a reset after the write landed): the routes that set
values are resent by the HTTP layer; the others are sent once more and their "already so" error is
taken as done (dropbox.py ``SETTING_ROUTES``, ``DropboxConnector.call_once``), against the fake."""

from __future__ import annotations

import pytest
from integration.test_dropbox_connector import connect  # module params as Ansible passes them
from support.dropbox_fake import DropboxFake

from ansible_collections.idsync.provisioning.plugins.module_utils import dropbox
from ansible_collections.idsync.provisioning.plugins.module_utils._model import ProvisioningError


@pytest.fixture
def fake():
    with DropboxFake(added_status="active") as service:
        yield service
        service.assert_valid()


def sent(service: DropboxFake, route: str) -> int:
    return len(service.requests_matching("POST", f"/2/team/{route}"))


@pytest.mark.parametrize("fault", ["503", "500", "lost"])
def test_a_profile_change_whose_answer_is_lost_is_resent(fake, fault):
    member = fake.seed_member("upd@example.com", "Old", "Same")
    route = "/2/team/members/set_profile_v2"
    if fault == "lost":
        fake.faults.drop_after_write("POST", route)
    else:
        fake.faults.status("POST", route, int(fault))
    connector = connect(fake)

    connector.update_user(connector.find_user("upd@example.com"), {"given_name": "New", "email": "new@example.com"})

    assert (member.given_name, member.email) == ("New", "new@example.com")
    assert sent(fake, "members/set_profile_v2") == 2


def test_a_group_rename_whose_answer_is_lost_is_resent(fake):
    seeded = fake.seed_group("Old")
    fake.faults.drop_after_write("POST", "/2/team/groups/update")
    connector = connect(fake)
    [group] = [g for g in connector.list_groups() if g.name == "Old"]

    connector.update_group(group, name="New")

    assert seeded.group_name == "New" == group.name
    assert sent(fake, "groups/update") == 2


def test_a_suspend_whose_answer_is_lost_is_sent_again_and_already_suspended_is_done(fake):
    fake.seed_member("a@example.com", "A", "B")
    fake.faults.drop_after_write("POST", "/2/team/members/suspend")
    connector = connect(fake)
    user = connector.find_user("a@example.com")

    connector.set_user_enabled(user, False)

    assert fake.member("a@example.com").status == "suspended" and user.enabled is False
    assert sent(fake, "members/suspend") == 2  # the second answered suspend_inactive_user: done
    assert [c["outcome"] for c in fake.calls_to("team/members/suspend")][0] == "ok"


def test_an_unsuspend_whose_answer_is_lost_is_sent_again(fake):
    fake.seed_member("a@example.com", "A", "B", status="suspended")
    fake.faults.drop_after_write("POST", "/2/team/members/unsuspend")
    connector = connect(fake)
    user = connector.find_user("a@example.com")

    connector.set_user_enabled(user, True)

    assert fake.member("a@example.com").status == "active" and user.enabled is True
    assert sent(fake, "members/unsuspend") == 2


def test_the_already_so_error_to_a_first_sending_is_the_services_refusal(fake):
    fake.seed_member("inv@example.com", "I", "N", status="invited")
    connector = connect(fake)
    user = connector.find_user("inv@example.com")

    with pytest.raises(ProvisioningError, match="suspend_inactive_user"):
        connector.call_once(
            "team/members/suspend", {"user": dropbox.user_selector(user.id)}, ("suspend_inactive_user",)
        )
    assert fake.member("inv@example.com").status == "invited"
    assert sent(fake, "members/suspend") == 1


def test_member_changes_whose_answers_are_lost_are_sent_again_and_done(fake):
    ids = [fake.seed_member(f"m{n}@example.com").team_member_id for n in range(3)]
    seeded = fake.seed_group("Team", [ids[0]])
    fake.faults.drop_after_write("POST", "/2/team/groups/members/add")
    fake.faults.drop_after_write("POST", "/2/team/groups/members/remove")
    connector = connect(fake)
    [group] = [g for g in connector.list_groups() if g.name == "Team"]

    failures = connector.change_members(group, add=[ids[1], ids[2]], remove=[ids[0]])

    assert failures == {}
    assert fake.group_members(seeded.group_id) == {ids[1], ids[2]} == group.members
    assert sent(fake, "groups/members/add") == 2  # the second answered duplicate_user: done
    assert sent(fake, "groups/members/remove") == 2  # the second answered member_not_in_group: done


def test_a_group_delete_whose_answer_is_lost_is_sent_again_and_already_deleted_is_done(fake):
    seeded = fake.seed_group("Gone")
    fake.faults.drop_after_write("POST", "/2/team/groups/delete")
    connector = connect(fake)
    [group] = [g for g in connector.list_groups() if g.name == "Gone"]

    connector.delete_group(group)

    assert seeded.group_id in fake.deleted_groups
    assert sent(fake, "groups/delete") == 2
