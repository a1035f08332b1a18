#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: scim_user
short_description: Manage one user of a SCIM 2.0 service
version_added: 0.1.0
author:
  - idsync.provisioning developers (@idsync)
description:
  - Makes one account of a SCIM 2.0 service present with the given attributes, or absent.
  - The account is found by O(user_name), case-insensitively (SCIM C(userName) is not case-exact),
    so an existing account is updated, never duplicated.
  - Only the attribute paths given in O(attributes) are compared and only those that differ are
    written; attributes the task does not name are left as they are. A second run with the same
    options changes nothing.
  - Accounts are not taken over from another provisioner silently. When O(external_id) is given and
    the account already carries a different, non-empty C(externalId), the task fails unless
    O(force_link=true).
  - For a whole directory at once, use M(idsync.provisioning.scim_sync) instead.
extends_documentation_fragment:
  - idsync.provisioning.scim
attributes:
  check_mode:
    support: full
    description: Finds the account and reports what would be written; nothing is written.
  diff_mode:
    support: full
    description: Before and after of the managed fields only (the attribute paths given, C(enabled), C(external_id)).
options:
  user_name:
    description:
      - The account's C(userName), the key it is found by (case-insensitively).
    type: str
    required: true
  state:
    description:
      - V(present) creates the account when missing and updates the managed attributes.
      - V(absent) deletes the account. Deleting is permanent; O(enabled=false) is the reversible
        alternative (the account stays, with C(active=false)).
    type: str
    default: present
    choices: [present, absent]
  attributes:
    description:
      - SCIM attribute paths and their values, for example C(displayName), C(name.givenName),
        C(emails), C(emails[type eq "work"].value), or an extension attribute with its URN such as
        C(urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber).
      - Multi-valued attributes (C(emails), C(phoneNumbers)) compare regardless of order; complex
        values compare on the sub-attributes given. V(null) removes the attribute.
      - C(userName) may only repeat O(user_name); accounts are not renamed by this module.
      - Write-only attributes (C(password)) cannot be compared, so they would be written on every run.
    type: dict
    default: {}
  enabled:
    description:
      - Whether the account is active (SCIM C(active)).
      - When not given, an existing account keeps its state and a new account is created active.
    type: bool
  external_id:
    description:
      - The ownership marker to store in C(externalId), for example V(idsync:<directory id>) so that
        M(idsync.provisioning.scim_sync) recognises the account as its own.
      - When not given, C(externalId) is left as it is.
      - With O(state=absent), an account carrying another non-empty C(externalId) is not deleted
        unless O(force_link=true).
    type: str
  force_link:
    description:
      - Take over an account that carries another C(externalId) than O(external_id).
    type: bool
    default: false
notes:
  - The token is never shown, also not with C(-vvv) or in error messages.
seealso:
  - module: idsync.provisioning.scim_user_info
  - module: idsync.provisioning.scim_group
  - module: idsync.provisioning.scim_sync
"""

EXAMPLES = r"""
- name: Jane is present and active, with her work mail and employee number
  idsync.provisioning.scim_user:
    url: https://scim.example.com/v2
    token: "{{ vault_scim_token }}"
    user_name: jdoe
    attributes:
      name.givenName: Jane
      name.familyName: Doe
      displayName: Jane Doe
      emails:
        - value: jane.doe@example.com
          type: work
          primary: true
      urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber: "4711"
    enabled: true

- name: Suspend an account (reversible), credentials from SCIM_URL and SCIM_TOKEN
  idsync.provisioning.scim_user:
    user_name: jdoe
    enabled: false

- name: Hand an existing account over to the sync (it then manages it)
  idsync.provisioning.scim_user:
    user_name: jdoe
    external_id: "idsync:41b2dad9-7dce-5c41-b54d-6b4447b29ea4"

- name: Delete an account (permanent)
  idsync.provisioning.scim_user:
    user_name: olduser
    state: absent

- name: Credentials once for every SCIM task of a block (or a play)
  module_defaults:
    group/idsync.provisioning.scim:
      url: https://scim.example.com/v2
      token: "{{ vault_scim_token }}"
  block:
    - name: Only the title is managed; everything else stays as it is
      idsync.provisioning.scim_user:
        user_name: asmith
        attributes:
          title: Head of Sales
"""

RETURN = r"""
user:
  description:
    - The account after the task, as the service returned it; V(null) when it is absent.
    - In check mode, the account as it is now (V(null) when it would be created).
  returned: always
  type: dict
  contains:
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
      description: The SCIM User resource.
      type: dict
changes:
  description:
    - What was written, or in check mode would be written, by attribute path, with C(enabled) and
      C(external_id) when they change. C(created) or C(deleted) is V(true) when the account was
      (or would be) created or deleted. Empty when nothing changes.
    - Values of paths naming a password, secret or token are masked.
  returned: always
  type: dict
  sample: {name.givenName: Jane, enabled: false}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.idsync.provisioning.plugins.module_utils import scim
from ansible_collections.idsync.provisioning.plugins.module_utils._objects import run_user, user_argument_spec


def main():
    argument_spec = scim.connection_argument_spec()
    argument_spec.update(user_argument_spec())
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    run_user(module, scim.connector_from_params, scim.USER_KEY)


if __name__ == "__main__":
    main()
