#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: dropbox_user
short_description: Manage one member of a Dropbox team
version_added: 0.1.0
author:
  - idsync.provisioning developers (@idsync)
description:
  - Makes one member of a Dropbox team (Dropbox Business) present with the given profile fields,
    enabled or suspended, or removed.
  - The member is found by O(email), case-insensitively, among the team's active, invited and suspended
    members, so an existing member is updated, never invited twice. Removed members are not members; a
    create that meets one still recoverable (within 7 days of its removal) recovers it, with its files,
    instead of inviting the person anew.
  - Dropbox adds a new member as C(invited), with an invitation e-mail unless O(send_welcome_email=false);
    the member is C(active) once the person joins.
  - Only the fields given in O(attributes) are compared and only those that differ are written
    (C(members/set_profile_v2) by C(team_member_id), never an empty change). Fields the task does not name
    are left as they are. A second run with the same options changes nothing.
  - O(enabled=false) suspends the member (C(members/suspend)); the person can no longer sign in and the
    files stay. O(wipe_data) is always sent, V(false) unless asked. A member who is still invited cannot be
    suspended; see O(disable_invited).
  - O(state=absent) removes the member from the team (C(members/remove), followed until its job completes)
    with O(wipe_data), O(keep_account), O(retain_team_shares), O(transfer_dest_id) and
    O(permanently_delete_files); their combinations are checked before any call. An admin can recover a
    removed member for 7 days.
  - The ownership marker of M(idsync.provisioning.dropbox_sync) is the member's C(member_external_id)
    (O(member_external_id) here). A member carrying another marker is not taken over unless O(force_link=true).
  - For a whole directory at once, use M(idsync.provisioning.dropbox_sync) instead.
extends_documentation_fragment:
  - idsync.provisioning.dropbox
  - idsync.provisioning.connection
attributes:
  check_mode:
    support: full
    description: Finds the member and reports what would be written; nothing is written.
  diff_mode:
    support: full
    description: Before and after of the managed fields only (the fields given, C(member_external_id) when given, and C(enabled)).
options:
  email:
    description:
      - The member's e-mail address, the key the member is found by (case-insensitively). At most 255 characters.
    type: str
    required: true
  state:
    description:
      - V(present) invites the member when missing (or recovers a removed one) and updates the managed fields.
      - V(absent) removes the member from the team with the deprovisioning options (O(wipe_data),
        O(keep_account), O(retain_team_shares), O(transfer_dest_id), O(permanently_delete_files)). A member
        who is still invited has its invitation revoked. O(enabled=false) is the gentler alternative;
        suspended members keep their files and can be unsuspended at any time.
    type: str
    default: present
    choices: [present, absent]
  attributes:
    description:
      - 'Dropbox member fields and their values, by the names of C(members/add_v2) without C(member_):
        C(given_name) and C(surname) (at most 50 characters each, none of C(/ : ? * < > " |)),
        C(persistent_id) (the SAML persistent ID, on teams that have persistent IDs enabled) and
        C(is_directory_restricted) (V(true) hides the member from the team directory).'
      - A value Dropbox would refuse fails the task, naming the field, before anything is sent. A name is
        never cut. Dropbox cannot empty a field, so V(null) or an empty value is refused.
      - C(email) may only repeat O(email); members are not renamed by this module.
      - C(member_external_id) is the ownership marker; set it with O(member_external_id).
    type: dict
    default: {}
  enabled:
    description:
      - Whether the member is enabled (not C(suspended)). V(false) suspends the member, V(true) unsuspends it.
      - When not given, an existing member keeps its state.
      - A new member cannot be created disabled (Dropbox adds members as invited, and cannot suspend an
        invited member), so O(enabled=false) for a missing member fails the task, before anything is sent.
    type: bool
  member_external_id:
    description:
      - The ownership marker to store in the member's C(member_external_id) (at most 64 characters), for
        example V(idsync:<directory id>) so that M(idsync.provisioning.dropbox_sync) recognises the member as
        its own.
      - When not given, C(member_external_id) is left as it is.
      - With O(state=absent), a member carrying another non-empty C(member_external_id) is not removed unless
        O(force_link=true).
    type: str
  force_link:
    description:
      - Take over a member who carries another C(member_external_id) than O(member_external_id).
    type: bool
    default: false
notes:
  - 'An invited member (who has not joined yet) cannot be suspended: with O(enabled=false) its invitation is
    revoked (O(disable_invited=revoke), the default) and the member is then removed, so a later run of the
    same task finds no member and, asked to create one disabled, fails; or the task fails and leaves the
    invitation open (O(disable_invited=fail)).'
seealso:
  - module: idsync.provisioning.dropbox_user_info
  - module: idsync.provisioning.dropbox_group
  - module: idsync.provisioning.dropbox_sync
"""

EXAMPLES = r"""
- name: Jane is a member with her name (refresh token of the team app)
  idsync.provisioning.dropbox_user:
    app_key: "{{ dropbox_app_key }}"
    app_secret: "{{ vault_dropbox_app_secret }}"
    refresh_token: "{{ vault_dropbox_refresh_token }}"
    email: jane.doe@example.com
    attributes:
      given_name: Jane
      surname: Doe

- name: Invite a member without the welcome e-mail (SSO enforced); credentials from DROPBOX_APP_KEY, DROPBOX_APP_SECRET, DROPBOX_REFRESH_TOKEN
  idsync.provisioning.dropbox_user:
    email: asmith@example.com
    attributes:
      given_name: Alice
      surname: Smith
    send_welcome_email: false

- name: Suspend a member (reversible; the files stay, and the linked devices are not wiped)
  idsync.provisioning.dropbox_user:
    email: jdoe@example.com
    enabled: false

- name: Remove a leaver, moving their files to the records manager first
  idsync.provisioning.dropbox_user:
    email: leaver@example.com
    state: absent
    transfer_dest_id: records@example.com
    transfer_admin_id: it-admin@example.com

- name: Credentials once for every Dropbox task of a block (or a play)
  module_defaults:
    group/idsync.provisioning.dropbox:
      app_key: "{{ dropbox_app_key }}"
      refresh_token: "{{ vault_dropbox_refresh_token }}"
  block:
    - name: Hand an existing member over to the sync (it then manages it)
      idsync.provisioning.dropbox_user:
        email: bwhite@example.com
        member_external_id: "idsync:0d3c2f7e-54a1-4b7d-9d3e-2b6a1f4c8e90"
"""

RETURN = r"""
user:
  description:
    - The member after the task, as Dropbox returned it; V(null) when it is absent.
    - In check mode, the member as it is now (V(null) when it would be created).
  returned: always
  type: dict
  contains:
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
changes:
  description:
    - What was written, or in check mode would be written, by field, with C(enabled) and C(member_external_id)
      when they change. C(created) or C(deleted) is V(true) when the member was (or would be) invited or
      removed. Empty when nothing changes.
  returned: always
  type: dict
  sample: {surname: Doe, enabled: false}
details:
  description:
    - When the task failed on an error answer of Dropbox, that answer's body (secrets masked); for a 409 its
      C(error_summary) and C(error) (the error's C(.tag)), for a 400 Dropbox's plain text. The message
      (C(msg)) already quotes it.
  returned: when the task failed on an error answer that had a body
  type: raw
  sample: {error_summary: "suspend_inactive_user/..", error: {".tag": suspend_inactive_user}}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.idsync.provisioning.plugins.module_utils import dropbox
from ansible_collections.idsync.provisioning.plugins.module_utils._objects import run_user, user_argument_spec

# The options are named after Dropbox's own fields: the key is the e-mail, the marker member_external_id.
KEY_OPTION = "email"
LINK_OPTION = "member_external_id"


def main():
    argument_spec = dropbox.connection_argument_spec()
    argument_spec.update(user_argument_spec(key_option=KEY_OPTION, link_option=LINK_OPTION))
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    run_user(module, dropbox.TARGET.build, dropbox.USER_KEY, key_option=KEY_OPTION, link_option=LINK_OPTION)


if __name__ == "__main__":
    main()
