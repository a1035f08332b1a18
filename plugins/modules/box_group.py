#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: box_group
short_description: Manage one group of a Box enterprise and its members
version_added: 0.1.0
author:
  - idsync.provisioning developers (@idsync)
description:
  - Makes one group of a Box enterprise present, renamed, with the given members, or absent.
  - The group is found by its name, case-insensitively. Box keeps group names unique in the enterprise.
  - Members are given by C(login) and compared with the group's current memberships; only the
    difference is written, one membership at a time (an existing member is never added again).
    Every user named must exist, otherwise the task fails naming them, before anything is written.
  - In check mode a user named in O(members) that does not exist yet is not an error, since an earlier
    task of the same play may create it (which check mode does not do); it is shown as it would be added,
    with a warning naming it. The real run fails, naming it, when it still does not exist.
  - A group this module creates gets O(provenance), so Box admins cannot edit its name and members in the
    web app; a group given O(external_sync_identifier) gets it too.
  - Groups are not taken over from another provisioner silently. When O(external_sync_identifier) is given
    and the group already carries a different, non-empty C(external_sync_identifier), the task fails unless
    O(force_link=true).
  - Box lists groups by offset only, up to offset 10,000; an enterprise with more groups than that cannot
    be read in full, and the task fails saying so.
extends_documentation_fragment:
  - idsync.provisioning.box
  - idsync.provisioning.connection
attributes:
  check_mode:
    support: full
    description:
      - Finds the group and its members and reports what would be written; nothing is written.
      - A member that does not exist yet is reported as it would be added, with a warning naming it.
  diff_mode:
    support: full
    description:
      - Before and after of the managed fields only, the name, C(external_sync_identifier) when given and the members.
      - With O(members.set), all members; with O(members.add) or O(members.remove), only the users named there.
options:
  name:
    description:
      - The group's name, the name it is found by (case-insensitively).
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
      - The group's members, by C(login) (case-insensitive). When not given, members are not changed.
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
  external_sync_identifier:
    description:
      - The ownership marker to store in the group's C(external_sync_identifier), for example
        V(idsync:<directory id>) so that M(idsync.provisioning.box_sync) recognises the group as its own.
        Box recommends this field for groups kept in sync with a directory, since it survives renames.
      - Written together with O(provenance).
      - When not given, C(external_sync_identifier) is left as it is.
      - With O(state=absent), a group carrying another non-empty C(external_sync_identifier) is not deleted
        unless O(force_link=true).
    type: str
  force_link:
    description:
      - Take over a group that carries another C(external_sync_identifier) than O(external_sync_identifier).
    type: bool
    default: false
seealso:
  - module: idsync.provisioning.box_group_info
  - module: idsync.provisioning.box_user
  - module: idsync.provisioning.box_sync
"""

EXAMPLES = r"""
- name: Engineering exists with exactly these members (Client Credentials Grant)
  idsync.provisioning.box_group:
    client_id: "{{ box_client_id }}"
    client_secret: "{{ vault_box_client_secret }}"
    enterprise_id: "{{ box_enterprise_id }}"
    name: Engineering
    members:
      set: [jdoe@example.com, asmith@example.com, bwhite@example.com]

- name: Add and remove members, leaving the others (credentials from BOX_CLIENT_ID, BOX_CLIENT_SECRET, BOX_ENTERPRISE_ID)
  idsync.provisioning.box_group:
    name: Engineering
    members:
      add: [zoe@example.com]
      remove: [bwhite@example.com]

- name: Rename; running it again changes nothing
  idsync.provisioning.box_group:
    name: Engineering
    new_name: Platform Engineering

- name: Hand an existing group over to the sync (it then manages it), locked against edits in the web app
  idsync.provisioning.box_group:
    name: Sales
    external_sync_identifier: "idsync:0d3c2f7e-54a1-4b7d-9d3e-2b6a1f4c8e90"
    provenance: ldap

- name: Delete a group (its users stay)
  idsync.provisioning.box_group:
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
        - The C(login) of every member after the task (in check mode, as it would be), sorted.
        - A member whose account no longer exists is shown by its ID.
      type: list
      elements: str
      returned: when O(members) is given
      sample: [asmith@example.com, jdoe@example.com]
    resource:
      description: The Box group as Box returned it (C(name), C(group_type), C(external_sync_identifier), C(provenance), C(description)).
      type: dict
changes:
  description:
    - What was written, or in check mode would be written. C(created) or C(deleted) is V(true) when
      the group was (or would be) created or deleted; C(name) is the new name of a created or renamed group;
      C(external_sync_identifier) the marker written; C(members_added) and C(members_removed) the users added
      and removed.
    - Empty when nothing changes.
  returned: always
  type: dict
  sample: {members_added: [zoe@example.com], members_removed: [bwhite@example.com]}
details:
  description:
    - When the task failed on an error answer of Box, that answer's body (secrets masked), with its
      C(status), C(code) and C(message). The message (C(msg)) already quotes it.
  returned: when the task failed on an error answer that had a body
  type: raw
  sample: {type: error, status: 409, code: invalid_parameter, message: Group name is not unique}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.idsync.provisioning.plugins.module_utils import box
from ansible_collections.idsync.provisioning.plugins.module_utils._objects import group_argument_spec, run_group

# The option carrying the marker is named after Box's own field.
LINK_OPTION = "external_sync_identifier"


def main():
    argument_spec = box.connection_argument_spec()
    argument_spec.update(group_argument_spec(link_option=LINK_OPTION))
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    run_group(module, box.TARGET.build, link_option=LINK_OPTION)


if __name__ == "__main__":
    main()
