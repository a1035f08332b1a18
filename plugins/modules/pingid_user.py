#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pingid_user
short_description: Manage one PingID user
version_added: 0.1.0
author:
  - idsync.provisioning developers (@idsync)
description:
  - Makes one user of a PingID organisation present with the given fields, enabled or suspended, or
    deletes it, through the PingID API (version 4.9) that PingFederate's PingID provisioner uses.
  - The user is found by O(user_name) (C(GetUserDetails)), so an existing user is updated, never added
    twice; an C(AddUser) answered C(10556) (the user exists) takes that user and updates it.
  - 'Only the fields given in O(attributes) are compared, and nothing is written when they hold those
    values already. When one differs, the user is read again and C(EditUser) sends B(every) field
    (C(fname), C(lname), C(email), C(role)): PingID''s EditUser replaces the whole record and sets every
    field left out to null, so the fields the task does not name are sent with the values PingID holds, and
    stay as they are.'
  - A user added enabled is C(PENDING_ACTIVATION) until the person pairs a device (PingID issues an
    activation code); one added with O(enabled=false) is C(NOT_ACTIVE). Only C(SUSPENDED) counts as
    disabled; every other status as enabled.
  - O(enabled=false) suspends the user (C(SuspendUser)). PingID cannot suspend a user who never activated
    (C(NOT_ACTIVE), C(PENDING), C(PENDING_ACTIVATION)) and answers C(10561); such a user cannot sign in
    with PingID until it pairs a device, so the task succeeds and the user stays as it is (see the notes).
    O(enabled=true) activates it again (C(ActivateUser); C(10562), already active, is no change).
  - O(state=absent) deletes the user (C(DeleteUser)), with its paired devices; a user added again later
    activates anew.
  - The user name cannot be changed in PingID, so this module never renames.
  - PingID has no field that could hold an ownership marker, so this module has no marker option; the
    accounts M(idsync.provisioning.pingid_sync) manages are those recorded in its state file.
  - For a whole directory at once, use M(idsync.provisioning.pingid_sync) instead.
extends_documentation_fragment:
  - idsync.provisioning.pingid
  - idsync.provisioning.connection
attributes:
  check_mode:
    support: full
    description: Reads the user and reports what would be written; nothing is written.
  diff_mode:
    support: full
    description: Before and after of the managed fields only (the fields given and C(enabled)).
options:
  user_name:
    description:
      - The user's C(userName), the key the user is found by (at most 250 characters). It cannot be changed later.
    type: str
    required: true
  state:
    description:
      - V(present) adds the user when missing and updates the fields given.
      - V(absent) deletes the user. O(enabled=false) is the gentler alternative; a suspended user keeps
        its devices and can be activated again.
    type: str
    default: present
    choices: [present, absent]
  attributes:
    description:
      - 'PingID user fields and their values: C(fname) (first name), C(lname) (last name), C(email) and
        C(role) (V(ADMIN) or V(REGULAR); O(default_role) when a new user gets none).'
      - V(null) or an empty value clears a field (PingID's EditUser can, which its provisioner cannot).
      - C(userName) may only repeat O(user_name); users are not renamed.
      - Another field fails the task, naming it, before anything is sent.
    type: dict
    default: {}
  enabled:
    description:
      - Whether the user is enabled (its status is not C(SUSPENDED)). V(false) suspends the user, V(true)
        activates it again.
      - For a user that is missing, V(false) adds it without activation (C(NOT_ACTIVE)), V(true) or no value
        with activation (C(PENDING_ACTIVATION)).
      - When not given, an existing user keeps its status.
    type: bool
notes:
  - 'PingID answers C(SuspendUser) for a user who never paired a device with C(10561) "the user is not active
    and cannot be suspended". The task then succeeds without a change at PingID: such a user cannot sign in
    with PingID, but a C(PENDING_ACTIVATION) user can still pair a device with its activation code and become
    C(ACTIVE). Since its status stays what it was, the next run with O(enabled=false) tries again and reports a
    change again, until the user activates (and is suspended then) or is deleted (O(state=absent)).'
  - MFA devices (e-mail, SMS, voice, the authenticator app) are neither added nor removed.
seealso:
  - module: idsync.provisioning.pingid_user_info
  - module: idsync.provisioning.pingid_sync
"""

EXAMPLES = r"""
- name: Jane is a PingID user with her name and e-mail (the organisation's pingid.properties)
  idsync.provisioning.pingid_user:
    properties_file: /etc/idsync/pingid.properties
    user_name: jdoe
    attributes:
      fname: Jane
      lname: Doe
      email: jane.doe@example.com

- name: Suspend a user (reversible; the devices stay paired); the file from PINGID_PROPERTIES_FILE
  idsync.provisioning.pingid_user:
    user_name: asmith
    enabled: false

- name: Delete a leaver (devices included)
  idsync.provisioning.pingid_user:
    user_name: leaver
    state: absent

- name: The organisation once for every PingID task of a block (values instead of the file, from the vault)
  module_defaults:
    group/idsync.provisioning.pingid:
      org_alias: "{{ pingid_org_alias }}"
      token: "{{ vault_pingid_token }}"
      base64_key: "{{ vault_pingid_base64_key }}"
      idp_url: https://idpxnyl3m.pingidentity.com/pingid
  block:
    - name: Clear a wrong e-mail address, keeping the names as they are
      idsync.provisioning.pingid_user:
        user_name: bwhite
        attributes:
          email: null
"""

RETURN = r"""
user:
  description:
    - The user after the task; V(null) when it is absent.
    - In check mode, the user as it is now (V(null) when it would be added).
  returned: always
  type: dict
  contains:
    id:
      description: The user's C(userName) (PingID users have no other id).
      type: str
      sample: jdoe
    key:
      description: The user's C(userName).
      type: str
      sample: jdoe
    enabled:
      description: Whether the user is enabled (its C(status) is not C(SUSPENDED)).
      type: bool
    link:
      description: Always V(null); PingID has no field for an ownership marker.
      type: str
    resource:
      description:
        - The user as PingID returned it (C(userDetails)), with C(userName), C(fname), C(lname), C(email),
          C(role), C(status), C(userEnabled), C(lastLogin), C(devicesDetails), ...
      type: dict
changes:
  description:
    - What was written, or in check mode would be written, by field, with C(enabled) when it changes.
      C(created) or C(deleted) is V(true) when the user was (or would be) added or deleted. Empty when
      nothing changes.
  returned: always
  type: dict
  sample: {lname: Doe, enabled: false}
details:
  description:
    - When the task failed on an error answer of PingID, the operation, its C(errorId) and C(errorMsg)
      (secrets masked). The message (C(msg)) already quotes them.
  returned: when the task failed on an error answer of PingID
  type: raw
  sample: {operation: EditUser, errorId: 10558, errorMsg: cannot update user}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.idsync.provisioning.plugins.module_utils import pingid
from ansible_collections.idsync.provisioning.plugins.module_utils._objects import run_user, user_argument_spec

# The key is PingID's userName; PingID has no field for a marker, so there is no link option.
KEY_OPTION = "user_name"


def main():
    argument_spec = pingid.connection_argument_spec()
    argument_spec.update(user_argument_spec(key_option=KEY_OPTION, link_option=None))
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    run_user(module, pingid.TARGET.build, pingid.USER_KEY, key_option=KEY_OPTION, link_option=None)


if __name__ == "__main__":
    main()
