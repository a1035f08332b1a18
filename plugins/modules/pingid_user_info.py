#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pingid_user_info
short_description: Read users of a PingID organisation
version_added: 0.1.0
author:
  - idsync.provisioning developers (@idsync)
description:
  - Returns one user, found by O(user_name) (C(GetUserDetails)), or every user of the organisation,
    optionally only the first O(limit).
  - PingID lists its users only through the organisation report. Without O(user_name) the module runs
    one report job (C(CreateJob) C(USER_REPORTS), polled with C(GetJobStatus) until it is done, then
    C(GetOrgReport) as JSON); PingID may serve a report cached for up to 2 hours, so a user added or
    changed within that time may be missing or shown as it was. The report's rows carry fewer fields
    than C(GetUserDetails) (C(userName), C(fname), C(lname), C(email), C(role), C(status), the devices,
    C(userCreationTime), C(lastTrxTime), as PingID reports them).
  - Never writes anything. O(default_role) is accepted, so that one C(module_defaults) serves every PingID
    module, and ignored.
extends_documentation_fragment:
  - idsync.provisioning.pingid
  - idsync.provisioning.connection
attributes:
  check_mode:
    support: full
    description: The module only reads; it runs the same in check mode.
  diff_mode:
    support: none
    description: Nothing is changed, so there is nothing to compare.
options:
  user_name:
    description:
      - The C(userName) of the user to return.
      - When not given, every user is returned, read from the organisation report.
    type: str
  limit:
    description:
      - Return at most this many users when O(user_name) is not given (the report is read whole all the same).
    type: int
seealso:
  - module: idsync.provisioning.pingid_user
  - module: idsync.provisioning.pingid_sync
"""

EXAMPLES = r"""
- name: Read one user (the organisation's pingid.properties)
  idsync.provisioning.pingid_user_info:
    properties_file: /etc/idsync/pingid.properties
    user_name: jdoe
  register: found

- name: Show the user's status (ACTIVE, PENDING_ACTIVATION, NOT_ACTIVE, SUSPENDED, ...)
  ansible.builtin.debug:
    msg: "{{ found.user.resource.status if found.user else 'no such user' }}"

- name: Every user, from the organisation report (the file from PINGID_PROPERTIES_FILE)
  idsync.provisioning.pingid_user_info:
  register: everyone

- name: Those who are suspended
  ansible.builtin.debug:
    msg: "{{ everyone.users | rejectattr('enabled') | map(attribute='key') | list }}"
"""

RETURN = r"""
user:
  description: The user named by O(user_name), V(null) when there is none.
  returned: when O(user_name) is given
  type: dict
  contains: &user
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
        - 'With O(user_name), the user as C(GetUserDetails) returned it (C(userDetails)): C(userName),
          C(fname), C(lname), C(email), C(role), C(status), C(userEnabled), C(lastLogin), C(devicesDetails), ...'
        - Without it, the user's row of the organisation report (C(username), C(orgEmail), C(status),
          C(devices), ...), with C(userName), C(fname), C(lname) and C(email) added under those names.
      type: dict
users:
  description: The users found (with O(user_name), none or one).
  returned: always
  type: list
  elements: dict
  contains: *user
details:
  description:
    - When the task failed on an error answer of PingID, the operation, its C(errorId) and C(errorMsg)
      (secrets masked). The message (C(msg)) already quotes them.
  returned: when the task failed on an error answer of PingID
  type: raw
  sample: {operation: GetUserDetails, errorId: 400, errorMsg: "invalid input: invalid signature"}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.idsync.provisioning.plugins.module_utils import pingid
from ansible_collections.idsync.provisioning.plugins.module_utils._objects import run_user_info, user_info_argument_spec

KEY_OPTION = "user_name"


def main():
    argument_spec = pingid.connection_argument_spec()
    argument_spec.update(user_info_argument_spec(key_option=KEY_OPTION))
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    run_user_info(module, pingid.TARGET.build, key_option=KEY_OPTION)


if __name__ == "__main__":
    main()
