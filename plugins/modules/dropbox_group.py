#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: dropbox_group
short_description: Manage one group of a Dropbox team and its members
version_added: 0.1.0
author:
  - idsync.provisioning developers (@idsync)
description:
  - Makes one group of a Dropbox team present, renamed, with the given members, or absent.
  - The group is found by its name, case-insensitively. Dropbox keeps group names unique in the team.
    System-managed groups (the team's C(Everyone at ...) group) are never found nor changed.
  - A group this module creates is C(company_managed) (only team admins change it, not its members).
  - Members are given by e-mail address and compared with the group's current members; only the difference
    is sent (C(groups/members/add) and C(groups/members/remove), with access type C(member)), since one
    member already in (or not in) the group would fail the whole call. Every member named must be a
    member of the team, otherwise the task fails naming them, before anything is written.
  - In check mode a member named in O(members) that does not exist yet is not an error, since an earlier task
    of the same play may invite it (which check mode does not do); it is shown as it would be added, with a
    warning naming it. The real run fails, naming it, when it still does not exist.
  - Groups are not taken over from another provisioner silently. When O(group_external_id) is given and the
    group already carries a different, non-empty C(group_external_id), the task fails unless O(force_link=true).
extends_documentation_fragment:
  - idsync.provisioning.dropbox
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
      - Before and after of the managed fields only, the name, C(group_external_id) when given and the members.
      - With O(members.set), all members; with O(members.add) or O(members.remove), only the members named there.
options:
  name:
    description:
      - The group's name, the name it is found by (case-insensitively).
    type: str
    required: true
  new_name:
    description:
      - Rename the group to this name (C(groups/update)).
      - The group is looked up by O(name), and when there is none by O(new_name), so the task stays
        idempotent after the rename. When neither exists, the group is created with O(new_name).
      - Only with O(state=present). Fails when another group already has the new name.
    type: str
  state:
    description:
      - V(present) creates the group when missing, renames it and changes its members.
      - V(absent) deletes the group (C(groups/delete), followed until its job completes). The members stay
        members of the team, and folders shared with the group lose that share. Deleting is permanent.
    type: str
    default: present
    choices: [present, absent]
  members:
    description:
      - The group's members, by e-mail address (case-insensitive). When not given, members are not changed.
      - Only with O(state=present).
    type: dict
    suboptions:
      set:
        description:
          - Exactly these members are in the group; everybody else is removed from it. An empty list empties the group.
          - Mutually exclusive with O(members.add) and O(members.remove).
        type: list
        elements: str
      add:
        description: These members are in the group; other members stay.
        type: list
        elements: str
      remove:
        description: These members are not in the group; other members stay.
        type: list
        elements: str
  group_external_id:
    description:
      - The ownership marker to store in the group's C(group_external_id), for example
        V(idsync:<directory id>) so that M(idsync.provisioning.dropbox_sync) recognises the group as its own.
        It survives renames.
      - When not given, C(group_external_id) is left as it is.
      - With O(state=absent), a group carrying another non-empty C(group_external_id) is not deleted unless
        O(force_link=true).
    type: str
  force_link:
    description:
      - Take over a group that carries another C(group_external_id) than O(group_external_id).
    type: bool
    default: false
seealso:
  - module: idsync.provisioning.dropbox_group_info
  - module: idsync.provisioning.dropbox_user
  - module: idsync.provisioning.dropbox_sync
"""

EXAMPLES = r"""
- name: Engineering exists with exactly these members (refresh token of the team app)
  idsync.provisioning.dropbox_group:
    app_key: "{{ dropbox_app_key }}"
    app_secret: "{{ vault_dropbox_app_secret }}"
    refresh_token: "{{ vault_dropbox_refresh_token }}"
    name: Engineering
    members:
      set: [jdoe@example.com, asmith@example.com, bwhite@example.com]

- name: Add and remove members, leaving the others (credentials from DROPBOX_APP_KEY, DROPBOX_APP_SECRET, DROPBOX_REFRESH_TOKEN)
  idsync.provisioning.dropbox_group:
    name: Engineering
    members:
      add: [zoe@example.com]
      remove: [bwhite@example.com]

- name: Rename; running it again changes nothing
  idsync.provisioning.dropbox_group:
    name: Engineering
    new_name: Platform Engineering

- name: Hand an existing group over to the sync (it then manages it)
  idsync.provisioning.dropbox_group:
    name: Sales
    group_external_id: "idsync:0d3c2f7e-54a1-4b7d-9d3e-2b6a1f4c8e90"

- name: Delete a group (its members stay on the team)
  idsync.provisioning.dropbox_group:
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
        - The e-mail address of every member after the task (in check mode, as it would be), sorted.
        - A member no longer on the team is shown by its C(team_member_id).
      type: list
      elements: str
      returned: when O(members) is given
      sample: [asmith@example.com, jdoe@example.com]
    resource:
      description:
        - The group as Dropbox listed or returned it (C(group_name), C(group_id), C(group_external_id),
          C(group_management_type), C(member_count)).
      type: dict
changes:
  description:
    - What was written, or in check mode would be written. C(created) or C(deleted) is V(true) when
      the group was (or would be) created or deleted; C(name) is the new name of a created or renamed group;
      C(group_external_id) the marker written; C(members_added) and C(members_removed) the members added
      and removed.
    - Empty when nothing changes.
  returned: always
  type: dict
  sample: {members_added: [zoe@example.com], members_removed: [bwhite@example.com]}
details:
  description:
    - When the task failed on an error answer of Dropbox, that answer's body (secrets masked); for a 409 its
      C(error_summary) and C(error) (the error's C(.tag)), for a 400 Dropbox's plain text. The message
      (C(msg)) already quotes it.
  returned: when the task failed on an error answer that had a body
  type: raw
  sample: {error_summary: "group_name_already_used/..", error: {".tag": group_name_already_used}}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.idsync.provisioning.plugins.module_utils import dropbox
from ansible_collections.idsync.provisioning.plugins.module_utils._objects import group_argument_spec, run_group

# The option carrying the marker is named after Dropbox's own field.
LINK_OPTION = "group_external_id"


def main():
    argument_spec = dropbox.connection_argument_spec()
    argument_spec.update(group_argument_spec(link_option=LINK_OPTION))
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    run_group(module, dropbox.TARGET.build, link_option=LINK_OPTION)


if __name__ == "__main__":
    main()
