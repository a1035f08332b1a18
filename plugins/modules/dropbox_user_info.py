#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: dropbox_user_info
short_description: Read members of a Dropbox team
version_added: 0.1.0
author:
  - idsync.provisioning developers (@idsync)
description:
  - Returns one member, found by O(email) case-insensitively, or every member of the team (read 1000 a
    page with C(team/members/list_v2)), optionally only the first O(limit).
  - Active, invited and suspended members are returned; removed members (also those still recoverable) are
    not members and are left out.
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
  email:
    description:
      - The e-mail address of the member to return (case-insensitive).
      - When not given, every member is returned.
    type: str
  limit:
    description:
      - Return at most this many members when O(email) is not given. Reading stops once they are read.
    type: int
seealso:
  - module: idsync.provisioning.dropbox_user
  - module: idsync.provisioning.dropbox_group_info
"""

EXAMPLES = r"""
- name: Read one member (refresh token of the team app)
  idsync.provisioning.dropbox_user_info:
    app_key: "{{ dropbox_app_key }}"
    app_secret: "{{ vault_dropbox_app_secret }}"
    refresh_token: "{{ vault_dropbox_refresh_token }}"
    email: jane.doe@example.com
  register: found

- name: Show the member's status (active, invited or suspended)
  ansible.builtin.debug:
    msg: "{{ found.user.resource.profile.status['.tag'] if found.user else 'no such member' }}"

- name: The first ten members (credentials from DROPBOX_APP_KEY, DROPBOX_APP_SECRET, DROPBOX_REFRESH_TOKEN)
  idsync.provisioning.dropbox_user_info:
    limit: 10
  register: some

- name: Those that the sync does not manage (no member_external_id)
  ansible.builtin.debug:
    msg: "{{ some.users | rejectattr('link') | map(attribute='key') | list }}"
"""

RETURN = r"""
user:
  description: The member named by O(email), V(null) when there is none.
  returned: when O(email) is given
  type: dict
  contains: &user
    id:
      description: The member's C(team_member_id).
      type: str
      sample: dbmid:AAHhy7WsR0x-u4ZCqiDl5Fz5zvuL3kmspwU
    key:
      description: The member's e-mail address.
      type: str
      sample: jane.doe@example.com
    enabled:
      description: Whether the member is enabled (its C(status) is not C(suspended)). An invited member is enabled.
      type: bool
    link:
      description: The C(member_external_id), V(null) when there is none.
      type: str
      sample: "idsync:0d3c2f7e-54a1-4b7d-9d3e-2b6a1f4c8e90"
    resource:
      description:
        - The member as Dropbox returned it (C(TeamMemberInfoV2)), with its C(profile) (C(team_member_id),
          C(email), C(status), C(name), C(external_id), C(membership_type), C(groups), ...).
      type: dict
users:
  description: The members found (with O(email), none or one).
  returned: always
  type: list
  elements: dict
  contains: *user
details:
  description:
    - When the task failed on an error answer of Dropbox, that answer's body (secrets masked). The message
      (C(msg)) already quotes it.
  returned: when the task failed on an error answer that had a body
  type: raw
  sample: {error_summary: "expired_access_token/..", error: {".tag": expired_access_token}}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.idsync.provisioning.plugins.module_utils import dropbox
from ansible_collections.idsync.provisioning.plugins.module_utils._objects import run_user_info, user_info_argument_spec

KEY_OPTION = "email"


def main():
    argument_spec = dropbox.connection_argument_spec()
    argument_spec.update(user_info_argument_spec(key_option=KEY_OPTION))
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    run_user_info(module, dropbox.TARGET.build, key_option=KEY_OPTION)


if __name__ == "__main__":
    main()
