#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: scim_group_info
short_description: Read groups of a SCIM 2.0 service
version_added: 0.1.0
author:
  - idsync.provisioning developers (@idsync)
description:
  - Returns one group, found by O(name) case-insensitively, or every group of the service, with
    their members' C(userName) on request.
  - Never writes anything.
extends_documentation_fragment:
  - idsync.provisioning.scim
  - idsync.provisioning.connection
  - idsync.provisioning.scim.auth_aliases
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
      - The C(displayName) of the group to return (case-insensitive). When not given, every group is returned.
      - When several groups have this name the task fails, naming their ids.
    type: str
  include_members:
    description:
      - Also return the members of each group, by C(userName). This reads each group's members and
        the names of its users, so it costs requests on large services.
    type: bool
    default: false
seealso:
  - module: idsync.provisioning.scim_group
  - module: idsync.provisioning.scim_user_info
"""

EXAMPLES = r"""
- name: Members of one group
  idsync.provisioning.scim_group_info:
    url: https://scim.example.com/v2
    token: "{{ vault_scim_token }}"
    name: Engineering
    include_members: true
  register: engineering

- name: Show them
  ansible.builtin.debug:
    var: engineering.group.members

- name: Names of every group (credentials from SCIM_URL and SCIM_TOKEN)
  idsync.provisioning.scim_group_info:
  register: all_groups
"""

RETURN = r"""
group:
  description: The group named by O(name), V(null) when there is none.
  returned: when O(name) is given
  type: dict
  contains: &group
    id:
      description: The service's id of the group.
      type: str
      sample: e9e30dba-f08f-4109-8486-d5c6a331660a
    name:
      description: The C(displayName).
      type: str
      sample: Engineering
    link:
      description: The C(externalId), V(null) when there is none.
      type: str
    members:
      description:
        - The C(userName) of every member, sorted. A member whose account no longer exists is shown by its id.
      type: list
      elements: str
      returned: when O(include_members=true)
      sample: [asmith, jdoe]
    resource:
      description: The SCIM Group resource as the service returned it (read without its members).
      type: dict
groups:
  description: The groups found (with O(name), none or one).
  returned: always
  type: list
  elements: dict
  contains: *group
details:
  description:
    - When the task failed on an error answer of the service, that answer's body (secrets masked), for
      example the SCIM error with its C(scimType) and C(detail). The message (C(msg)) already quotes it.
  returned: when the task failed on an error answer that had a body
  type: raw
  sample: {schemas: ["urn:ietf:params:scim:api:messages:2.0:Error"], scimType: invalidFilter, status: "400"}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.idsync.provisioning.plugins.module_utils import scim
from ansible_collections.idsync.provisioning.plugins.module_utils._objects import (
    group_info_argument_spec,
    run_group_info,
)


def main():
    argument_spec = scim.connection_argument_spec(auth_aliases=True)  # reads only: none of the write options
    argument_spec.update(group_info_argument_spec())
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    run_group_info(module, scim.TARGET.build)


if __name__ == "__main__":
    main()
