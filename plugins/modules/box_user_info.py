#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: box_user_info
short_description: Read managed users of a Box enterprise
version_added: 0.1.0
author:
  - idsync.provisioning developers (@idsync)
description:
  - Returns one managed user, found by O(login) case-insensitively, or every managed user of the
    enterprise (read 1000 a page), optionally only the first O(limit).
  - App users and the app's service account are left out.
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
  login:
    description:
      - The C(login) of the user to return (case-insensitive).
      - When not given, every managed user is returned.
    type: str
  limit:
    description:
      - Return at most this many users when O(login) is not given. Reading stops once they are read.
    type: int
seealso:
  - module: idsync.provisioning.box_user
  - module: idsync.provisioning.box_group_info
"""

EXAMPLES = r"""
- name: Read one user (JWT app configuration file)
  idsync.provisioning.box_user_info:
    config_file: /etc/idsync/box_config.json
    login: jane.doe@example.com
  register: found

- name: Show whether the account is enabled
  ansible.builtin.debug:
    msg: "{{ found.user.enabled if found.user else 'no such account' }}"

- name: The first ten managed users (credentials from BOX_CLIENT_ID, BOX_CLIENT_SECRET, BOX_ENTERPRISE_ID)
  idsync.provisioning.box_user_info:
    limit: 10
  register: some

- name: Their logins
  ansible.builtin.debug:
    msg: "{{ some.users | map(attribute='key') | list }}"
"""

RETURN = r"""
user:
  description: The user named by O(login), V(null) when there is none.
  returned: when O(login) is given
  type: dict
  contains: &user
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
users:
  description: The users found (with O(login), none or one).
  returned: always
  type: list
  elements: dict
  contains: *user
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
from ansible_collections.idsync.provisioning.plugins.module_utils._objects import run_user_info, user_info_argument_spec


def main():
    argument_spec = box.connection_argument_spec()
    argument_spec.update(user_info_argument_spec(key_option="login"))
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    run_user_info(module, box.TARGET.build, key_option="login")


if __name__ == "__main__":
    main()
