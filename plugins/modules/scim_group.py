#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: scim_group
short_description: Manage one group of a SCIM 2.0 service and its members
version_added: 0.1.0
author:
  - idsync.provisioning developers (@idsync)
description:
  - Makes one group of a SCIM 2.0 service present, renamed, with the given members, or absent.
  - The group is found by its C(displayName), case-insensitively. SCIM allows several groups with one
    name; the task then fails rather than choose one.
  - Members are given by C(userName) and compared with the group's current members; only the
    difference is written (adds and removes in chunks of O(member_chunk)). Every user named must
    exist, otherwise the task fails naming them, before anything is written.
  - In check mode a user named in O(members) that does not exist yet is not an error, since an earlier
    task of the same play may create it (which check mode does not do); it is shown as it would be added,
    with a warning naming it. The real run fails, naming it, when it still does not exist.
  - Groups are not taken over from another provisioner silently. When O(external_id) is given and
    the group already carries a different, non-empty C(externalId), the task fails unless
    O(force_link=true).
extends_documentation_fragment:
  - idsync.provisioning.scim
  - idsync.provisioning.connection
  - idsync.provisioning.scim.writes
  - idsync.provisioning.scim.members
  - idsync.provisioning.scim.auth_aliases
attributes:
  check_mode:
    support: full
    description:
      - Finds the group and its members and reports what would be written; nothing is written.
      - A member that does not exist yet is reported as it would be added, with a warning naming it.
  diff_mode:
    support: full
    description:
      - Before and after of the managed fields only, the name, C(external_id) when given and the members.
      - With O(members.set), all members; with O(members.add) or O(members.remove), only the users named there.
options:
  name:
    description:
      - The group's C(displayName), the name it is found by (case-insensitively).
    type: str
    required: true
  new_name:
    description:
      - Rename the group to this name.
      - The group is looked up by O(name), and when there is none by O(new_name), so the task stays
        idempotent after the rename. When neither exists, the group is created with O(new_name).
      - Only with O(state=present). Fails when another group already has the new name.
    type: str
  state:
    description:
      - V(present) creates the group when missing, renames it and changes its members.
      - V(absent) deletes the group (the users stay). Deleting is permanent.
    type: str
    default: present
    choices: [present, absent]
  members:
    description:
      - The group's members, by C(userName) (case-insensitive). When not given, members are not changed.
      - Only with O(state=present).
    type: dict
    suboptions:
      set:
        description:
          - Exactly these users are members; everybody else is removed. An empty list empties the group.
          - Mutually exclusive with O(members.add) and O(members.remove).
        type: list
        elements: str
      add:
        description: These users are members; other members stay.
        type: list
        elements: str
      remove:
        description: These users are not members; other members stay.
        type: list
        elements: str
  external_id:
    description:
      - The ownership marker to store in the group's C(externalId), for example V(idsync:<directory id>).
      - When not given, C(externalId) is left as it is.
      - With O(state=absent), a group carrying another non-empty C(externalId) is not deleted unless O(force_link=true).
    type: str
  force_link:
    description:
      - Take over a group that carries another C(externalId) than O(external_id).
    type: bool
    default: false
seealso:
  - module: idsync.provisioning.scim_group_info
  - module: idsync.provisioning.scim_user
  - module: idsync.provisioning.scim_sync
"""

EXAMPLES = r"""
- name: Engineering exists with exactly these members
  idsync.provisioning.scim_group:
    url: https://scim.example.com/v2
    token: "{{ vault_scim_token }}"
    name: Engineering
    members:
      set: [jdoe, asmith, bwhite]

- name: Add and remove members, leaving the others (credentials from SCIM_URL and SCIM_TOKEN)
  idsync.provisioning.scim_group:
    name: Engineering
    members:
      add: [zoe]
      remove: [bwhite]

- name: Rename; running it again changes nothing
  idsync.provisioning.scim_group:
    name: Engineering
    new_name: Platform Engineering

- name: Delete a group (its users stay)
  idsync.provisioning.scim_group:
    name: Old Project
    state: absent
"""

RETURN = r"""
group:
  description:
    - The group after the task; V(null) when it is absent.
    - In check mode, the group as it is now (V(null) when it would be created).
  returned: always
  type: dict
  contains:
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
        - The C(userName) of every member after the task (in check mode, as it would be), sorted.
        - A member whose account no longer exists is shown by its id.
      type: list
      elements: str
      returned: when O(members) is given
      sample: [asmith, jdoe]
    resource:
      description: The SCIM Group resource as the service returned it (its members may be left out).
      type: dict
changes:
  description:
    - What was written, or in check mode would be written. C(created) or C(deleted) is V(true) when
      the group was (or would be) created or deleted; C(name) is the new name of a created or renamed group;
      C(external_id) the marker written; C(members_added) and C(members_removed) the users added and removed.
    - Empty when nothing changes.
  returned: always
  type: dict
  sample: {members_added: [zoe], members_removed: [bwhite]}
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
from ansible_collections.idsync.provisioning.plugins.module_utils._objects import group_argument_spec, run_group


def main():
    argument_spec = scim.connection_argument_spec("writes", "members", auth_aliases=True)
    argument_spec.update(group_argument_spec())
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    run_group(module, scim.TARGET.build)


if __name__ == "__main__":
    main()
