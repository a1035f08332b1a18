# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""pingid_user_info through ansible-playbook against the PingID fake: one user by name
(GetUserDetails), and every user through the organisation report (PingID's only listing)."""

from __future__ import annotations

import pytest
from support.pingid_fake import serving
from support.playbook import run_playbook

PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Everyone
      idsync.provisioning.pingid_user_info:
        properties_file: "{{ properties }}"
      register: everyone
    - name: At most one
      idsync.provisioning.pingid_user_info:
        properties_file: "{{ properties }}"
        limit: 1
      register: one
    - name: Jane by name
      idsync.provisioning.pingid_user_info:
        properties_file: "{{ properties }}"
        user_name: jdoe
      register: jane
    - name: Record
      ansible.builtin.copy:
        content: "{{ {'everyone': everyone, 'one': one, 'jane': jane} | to_json }}"
        dest: "{{ record }}"
        mode: "0600"
"""


@pytest.fixture
def fake():
    with serving() as service:
        yield service


def test_every_user_comes_from_the_organisation_report_and_one_from_its_details(fake, tmp_path):
    fake.seed_user("jdoe", "Jane", "Doe", "jane.doe@example.com")
    fake.seed_user("asmith", "Alice", "Smith", "asmith@example.com", enabled=False)
    properties = fake.write_properties(tmp_path / "pingid.properties")

    result = run_playbook(tmp_path / "play", PLAY, {"properties": str(properties)})

    assert result.rc == 0, result.text
    everyone = {user["key"]: user for user in result.output["everyone"]["users"]}
    assert set(everyone) == {"jdoe", "asmith"}
    assert everyone["jdoe"]["enabled"] is True and everyone["asmith"]["enabled"] is False
    assert len(result.output["one"]["users"]) == 1
    assert result.output["jane"]["user"]["key"] == "jdoe"
    assert result.output["jane"]["user"]["resource"]["email"] == "jane.doe@example.com"
    assert not any(result.output[name]["changed"] for name in ("everyone", "one", "jane"))
    # The listing is the report job, never a GetUserDetails per user; nothing was written.
    operations = fake.operations()
    assert {"CreateJob", "GetJobStatus", "GetOrgReport"} <= set(operations)
    assert operations.count("GetUserDetails") == 1
    assert not {"AddUser", "EditUser", "SuspendUser", "ActivateUser", "DeleteUser"} & set(operations)
