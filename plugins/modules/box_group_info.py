#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: box_group_info
short_description: Read groups of a Box enterprise
version_added: 0.1.0
author:
  - idsync.provisioning developers (@idsync)
description:
  - Returns one group, found by O(name) case-insensitively, or every group of the enterprise (the
    enterprise's all-users group left out), with their members' C(login) on request.
  - Box lists groups and memberships by offset only, up to offset 10,000; more groups (or more members of
    one group) than that cannot be read in full, and the task fails saying so.
  - Never writes anything. The options that say how users and groups are written (O(provenance), the
    delete options, O(overwrite_restricted_status)) are accepted, so that one C(module_defaults) serves
    every Box module, and ignored.
extends_documentation_fragment:
  - idsync.provisioning.box
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
      - Also return the members of each group, by C(login). This reads each group's memberships and
        the logins of its users, so it costs requests on large enterprises.
    type: bool
    default: false
seealso:
  - module: idsync.provisioning.box_group
  - module: idsync.provisioning.box_user_info
"""

EXAMPLES = r"""
- name: Members of one group (JWT app configuration file)
  idsync.provisioning.box_group_info:
    config_file: /etc/idsync/box_config.json
    name: Engineering
    include_members: true
  register: engineering

- name: Show them
  ansible.builtin.debug:
    var: engineering.group.members

- name: Every group (credentials from BOX_CLIENT_ID, BOX_CLIENT_SECRET, BOX_ENTERPRISE_ID)
  idsync.provisioning.box_group_info:
  register: all_groups

- name: Groups the sync does not manage (no external_sync_identifier)
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
      description: Box's group ID.
      type: str
      sample: "20000100"
    name:
      description: The group's name.
      type: str
      sample: Engineering
    link:
      description: The C(external_sync_identifier), V(null) when there is none.
      type: str
      sample: "idsync:0d3c2f7e-54a1-4b7d-9d3e-2b6a1f4c8e90"
    members:
      description:
        - The C(login) of every member, sorted. A member whose account no longer exists is shown by its ID.
      type: list
      elements: str
      returned: when O(include_members=true)
      sample: [asmith@example.com, jdoe@example.com]
    resource:
      description: The Box group as Box returned it (C(name), C(group_type), C(external_sync_identifier), C(provenance), C(description)).
      type: dict
groups:
  description: The groups found (with O(name), none or one).
  returned: always
  type: list
  elements: dict
  contains: *group
details:
  description:
    - When the task failed on an error answer of Box, that answer's body (secrets masked), with its
      C(status), C(code) and C(message). The message (C(msg)) already quotes it.
  returned: when the task failed on an error answer that had a body
  type: raw
  sample: {type: error, status: 401, code: unauthorized, message: Unauthorized}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.idsync.provisioning.plugins.module_utils import box
from ansible_collections.idsync.provisioning.plugins.module_utils._objects import (
    group_info_argument_spec,
    run_group_info,
)


def main():
    argument_spec = box.connection_argument_spec()
    argument_spec.update(group_info_argument_spec())
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    run_group_info(module, box.TARGET.build)


if __name__ == "__main__":
    main()
