#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: dropbox_group_info
short_description: Read groups of a Dropbox team
version_added: 0.1.0
author:
  - idsync.provisioning developers (@idsync)
description:
  - Returns one group, found by O(name) case-insensitively, or every group of the team (C(team/groups/list),
    system-managed groups such as C(Everyone at ...) left out), with their members' e-mail addresses on request.
  - Never writes anything. The options that say how members are written and deprovisioned (O(wipe_data),
    O(keep_account), O(send_welcome_email), ...) are accepted, so that one C(module_defaults) serves every
    Dropbox module, and ignored.
extends_documentation_fragment:
  - idsync.provisioning.dropbox
  - idsync.provisioning.connection
attributes:
  check_mode:
    support: full
    description: The module only reads; it runs the same in check mode.
  diff_mode:
    support: none
    description: Nothing is changed, so there is nothing to compare.
options:
  name:
    description:
      - The name of the group to return (case-insensitive). When not given, every group is returned.
    type: str
  include_members:
    description:
      - Also return the members of each group, by e-mail address. This reads each group's members
        (C(groups/members/list)), so it costs requests on teams with many groups.
    type: bool
    default: false
seealso:
  - module: idsync.provisioning.dropbox_group
  - module: idsync.provisioning.dropbox_user_info
"""

EXAMPLES = r"""
- name: Members of one group (refresh token of the team app)
  idsync.provisioning.dropbox_group_info:
    app_key: "{{ dropbox_app_key }}"
    app_secret: "{{ vault_dropbox_app_secret }}"
    refresh_token: "{{ vault_dropbox_refresh_token }}"
    name: Engineering
    include_members: true
  register: engineering

- name: Show them
  ansible.builtin.debug:
    var: engineering.group.members

- name: Every group (credentials from DROPBOX_APP_KEY, DROPBOX_APP_SECRET, DROPBOX_REFRESH_TOKEN)
  idsync.provisioning.dropbox_group_info:
  register: all_groups

- name: Groups the sync does not manage (no group_external_id)
  ansible.builtin.debug:
    msg: "{{ all_groups.groups | rejectattr('link') | map(attribute='name') | list }}"
"""

RETURN = r"""
group:
  description: The group named by O(name), V(null) when there is none.
  returned: when O(name) is given
  type: dict
  contains: &group
    id:
      description: Dropbox's C(group_id).
      type: str
      sample: g:e2db7665347abcd600000000001a2b3c
    name:
      description: The group's name.
      type: str
      sample: Engineering
    link:
      description: The C(group_external_id), V(null) when there is none.
      type: str
      sample: "idsync:0d3c2f7e-54a1-4b7d-9d3e-2b6a1f4c8e90"
    members:
      description:
        - The e-mail address of every member, sorted. A member no longer on the team is shown by its C(team_member_id).
      type: list
      elements: str
      returned: when O(include_members=true)
      sample: [asmith@example.com, jdoe@example.com]
    resource:
      description:
        - The group as Dropbox listed it (C(group_name), C(group_id), C(group_external_id),
          C(group_management_type), C(member_count)).
      type: dict
groups:
  description: The groups found (with O(name), none or one).
  returned: always
  type: list
  elements: dict
  contains: *group
details:
  description:
    - When the task failed on an error answer of Dropbox, that answer's body (secrets masked). The message
      (C(msg)) already quotes it.
  returned: when the task failed on an error answer that had a body
  type: raw
  sample: {error_summary: "missing_scope/..", error: {".tag": missing_scope, required_scope: groups.read}}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.idsync.provisioning.plugins.module_utils import dropbox
from ansible_collections.idsync.provisioning.plugins.module_utils._objects import (
    group_info_argument_spec,
    run_group_info,
)


def main():
    argument_spec = dropbox.connection_argument_spec()
    argument_spec.update(group_info_argument_spec())
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    run_group_info(module, dropbox.TARGET.build)


if __name__ == "__main__":
    main()
