#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: scim_user_info
short_description: Read users of a SCIM 2.0 service
version_added: 0.1.0
author:
  - idsync.provisioning developers (@idsync)
description:
  - Returns one account, found by O(user_name) case-insensitively, or every account of the
    service (read page by page), optionally only the first O(limit).
  - Never writes anything.
  - The service is reached with O(token), or with HTTP basic authentication as O(auth_username) and
    O(auth_password) (these have no V(username) / V(password) aliases here, where O(user_name) is the account to read).
extends_documentation_fragment:
  - idsync.provisioning.scim
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
      - The C(userName) of the account to return (case-insensitive).
      - When not given, every account is returned.
    type: str
  limit:
    description:
      - Return at most this many accounts when O(user_name) is not given. Reading stops once they are read.
    type: int
seealso:
  - module: idsync.provisioning.scim_user
  - module: idsync.provisioning.scim_group_info
"""

EXAMPLES = r"""
- name: Read one account
  idsync.provisioning.scim_user_info:
    url: https://scim.example.com/v2
    token: "{{ vault_scim_token }}"
    user_name: jdoe
  register: found

- name: Show whether it is active
  ansible.builtin.debug:
    msg: "{{ found.user.enabled if found.user else 'no such account' }}"

- name: The first ten accounts (credentials from SCIM_URL and SCIM_TOKEN)
  idsync.provisioning.scim_user_info:
    limit: 10
  register: some

- name: Accounts not managed by the sync
  ansible.builtin.debug:
    msg: "{{ some.users | rejectattr('link') | map(attribute='key') | list }}"
"""

RETURN = r"""
user:
  description: The account named by O(user_name), V(null) when there is none.
  returned: when O(user_name) is given
  type: dict
  contains: &user
    id:
      description: The service's id of the account.
      type: str
      sample: 2819c223-7f76-453a-919d-413861904646
    key:
      description: The C(userName).
      type: str
      sample: jdoe
    enabled:
      description: Whether the account is active.
      type: bool
    link:
      description: The C(externalId), V(null) when there is none.
      type: str
      sample: "idsync:41b2dad9-7dce-5c41-b54d-6b4447b29ea4"
    resource:
      description: The SCIM User resource as the service returned it.
      type: dict
users:
  description: The accounts found (with O(user_name), none or one).
  returned: always
  type: list
  elements: dict
  contains: *user
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
from ansible_collections.idsync.provisioning.plugins.module_utils._objects import run_user_info, user_info_argument_spec


def main():
    argument_spec = scim.connection_argument_spec()  # reads only: none of the write options
    argument_spec.update(user_info_argument_spec())
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    run_user_info(module, scim.TARGET.build)


if __name__ == "__main__":
    main()
