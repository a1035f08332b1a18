#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: box_user
short_description: Manage one managed user of a Box enterprise
version_added: 0.1.0
author:
  - idsync.provisioning developers (@idsync)
description:
  - Makes one managed user of a Box enterprise present with the given fields, enabled or disabled, or absent.
  - The user is found by O(login), case-insensitively (Box logins are unique across Box), so an
    existing account is updated, never duplicated. A create that Box answers 409 (the login is
    taken) links the existing account instead.
  - Only the fields given in O(attributes) are compared and only those that differ are written
    (C(PUT), never the C(enterprise) field, whose V(null) would roll the user out of the enterprise).
    Fields the task does not name are left as they are. A second run with the same options changes nothing.
  - Box creates users with a welcome e-mail that cannot be suppressed.
  - Box users carry no field for an ownership marker. M(idsync.provisioning.box_sync) records the accounts
    it manages in its state file; an account made by this module is linked by the sync through its login
    when the directory has that user.
  - App users and the app's service account are not managed users and are never found.
  - For a whole directory at once, use M(idsync.provisioning.box_sync) instead.
extends_documentation_fragment:
  - idsync.provisioning.box
  - idsync.provisioning.connection
attributes:
  check_mode:
    support: full
    description: Finds the account and reports what would be written; nothing is written.
  diff_mode:
    support: full
    description: Before and after of the managed fields only (the fields given and C(enabled)).
options:
  login:
    description:
      - The user's C(login), an e-mail address, the key the account is found by (case-insensitively).
    type: str
    required: true
  state:
    description:
      - V(present) creates the account when missing and updates the managed fields.
      - V(absent) deletes the account, after moving its content to O(transfer_content_to) when that is set.
        Box refuses to delete a user who still owns content unless O(delete_force=true), and refuses
        always while a retention or legal hold policy covers the user (403). Deleting is permanent;
        O(enabled=false) is the reversible alternative (C(status=inactive)).
    type: str
    default: present
    choices: [present, absent]
  attributes:
    description:
      - Box user fields and their values. The fields written are C(name) (required by Box to create a
        user, at most 50 characters), C(role) (V(user) or V(coadmin)), C(status), C(job_title) and
        C(phone) (at most 100 characters each), C(address) (at most 255), C(language), C(timezone),
        C(space_amount) (bytes, V(-1) for unlimited), C(tracking_codes) (a list of C(name) and C(value)),
        C(external_app_user_id), C(is_sync_enabled), C(can_see_managed_users),
        C(is_external_collab_restricted), C(is_exempt_from_device_limits) and
        C(is_exempt_from_login_verification).
      - C(tracking_codes.<name>) sets one tracking code and keeps the others (the enterprise must have
        the code configured).
      - A value Box would refuse (too long, not among the choices, of the wrong type) fails the task before
        anything is sent. V(null) clears C(job_title), C(phone), C(address) and C(external_app_user_id).
      - C(login) may only repeat O(login); accounts are not renamed by this module. C(enterprise) is refused.
      - Use O(enabled) rather than C(status) to enable or disable the account.
    type: dict
    default: {}
  enabled:
    description:
      - Whether the account is enabled (C(status) V(active); disabled is V(inactive)). The statuses
        V(cannot_delete_edit) and V(cannot_delete_edit_upload) count as enabled and are kept.
      - When not given, an existing account keeps its status and a new account is created active.
    type: bool
notes:
  - The client secret, the private key, its passphrase and the access token are never shown, also not with
    C(-vvv) or in error messages.
  - Box changes a login only when the user's e-mail address is confirmed.
seealso:
  - module: idsync.provisioning.box_user_info
  - module: idsync.provisioning.box_group
  - module: idsync.provisioning.box_sync
"""

EXAMPLES = r"""
- name: Jane is present and active, with her name and title (Client Credentials Grant)
  idsync.provisioning.box_user:
    client_id: "{{ box_client_id }}"
    client_secret: "{{ vault_box_client_secret }}"
    enterprise_id: "{{ box_enterprise_id }}"
    login: jane.doe@example.com
    attributes:
      name: Jane Doe
      job_title: Engineer
      space_amount: -1
    enabled: true

- name: Suspend an account (reversible), credentials from BOX_CLIENT_ID, BOX_CLIENT_SECRET, BOX_ENTERPRISE_ID
  idsync.provisioning.box_user:
    login: jdoe@example.com
    enabled: false

- name: Delete an account after moving its files to the records manager (JWT app configuration file)
  idsync.provisioning.box_user:
    config_file: /etc/idsync/box_config.json
    login: leaver@example.com
    state: absent
    transfer_content_to: records@example.com

- name: Credentials once for every Box task of a block (or a play)
  module_defaults:
    group/idsync.provisioning.box:
      config_file: /etc/idsync/box_config.json
  block:
    - name: Only the phone number is managed; everything else stays as it is
      idsync.provisioning.box_user:
        login: asmith@example.com
        attributes:
          phone: "+1 555 0100"
"""

RETURN = r"""
user:
  description:
    - The account after the task, as Box returned it; V(null) when it is absent.
    - In check mode, the account as it is now (V(null) when it would be created).
  returned: always
  type: dict
  contains:
    id:
      description: Box's user ID.
      type: str
      sample: "20000001"
    key:
      description: The C(login).
      type: str
      sample: jane.doe@example.com
    enabled:
      description: Whether the account is enabled (its C(status) is not V(inactive)).
      type: bool
    link:
      description: Always V(null); Box users carry no ownership marker.
      type: str
    resource:
      description: The Box user as Box returned it (the fields this collection reads).
      type: dict
changes:
  description:
    - What was written, or in check mode would be written, by field, with C(enabled) when it changes.
      C(created) or C(deleted) is V(true) when the account was (or would be) created or deleted. Empty when
      nothing changes.
  returned: always
  type: dict
  sample: {job_title: Engineer, enabled: false}
details:
  description:
    - When the task failed on an error answer of Box, that answer's body (secrets masked), with its
      C(status), C(code) and C(message). The message (C(msg)) already quotes it.
  returned: when the task failed on an error answer that had a body
  type: raw
  sample: {type: error, status: 409, code: user_login_already_used, message: User with the specified login already exists}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.idsync.provisioning.plugins.module_utils import box
from ansible_collections.idsync.provisioning.plugins.module_utils._objects import run_user, user_argument_spec


def main():
    argument_spec = box.connection_argument_spec()
    # Box users have no field for a marker: no link option (ownership lives in box_sync's state file).
    argument_spec.update(user_argument_spec(key_option="login", link_option=None))
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    run_user(module, box.TARGET.build, box.USER_KEY, key_option="login", link_option=None)


if __name__ == "__main__":
    main()
