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
  - The account's own password is set with O(password); as SCIM services never return a password,
    O(update_password) says whether it is written only when the account is created (the default) or on
    every run.
  - The service is reached with O(token), or with HTTP basic authentication as O(auth_username) and
    O(auth_password). These are this collection's credentials, not the account's; the account is
    O(user_name) and its password O(password). (The basic-auth options have no V(username) /
    V(password) aliases here, unlike on the other SCIM modules, so that they cannot be taken for the account's.)
  - For a whole directory at once, use M(idsync.provisioning.scim_sync) instead.
extends_documentation_fragment:
  - idsync.provisioning.scim
  - idsync.provisioning.connection
  - idsync.provisioning.scim.writes
attributes:
  check_mode:
    support: full
    description: Finds the account and reports what would be written; nothing is written.
  diff_mode:
    support: full
    description:
      - Before and after of the managed fields only (the attribute paths given, C(enabled), C(external_id)).
      - A password written shows as V(********) after and V(null) before (it cannot be read).
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
      - C(password) is refused here; use O(password), which is kept out of the output.
    type: dict
    default: {}
  password:
    description:
      - The account's password (SCIM C(password), RFC 7643 section 4.1). Never shown in output, diffs or errors.
      - SCIM services never return a password (it is C(returned=never)), so it cannot be compared with the
        current one; O(update_password) says when it is written.
      - When not given, the password is left as it is (a new account is created without one).
    type: str
  update_password:
    description:
      - V(on_create) (the default) writes O(password) only when the task creates the account; an existing
        account keeps its password, and a second run changes nothing.
      - V(always) writes O(password) on every run to an existing account too, and the task then reports
        C(changed) every time, because the service cannot tell whether it was the same. Use it to reset
        a password, or in a play that rotates it.
      - The default differs from M(ansible.builtin.user)'s V(always), which can compare password hashes; a SCIM
        client cannot, and V(always) as the default would make every run report a change.
    type: str
    default: on_create
    choices: [on_create, always]
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
  - The token, O(auth_password) and O(password) are never shown, also not with C(-vvv) or in error messages.
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

- name: A new account with an initial password; later runs leave the password alone (update_password=on_create)
  idsync.provisioning.scim_user:
    url: https://scim.example.com/v2
    token: "{{ vault_scim_token }}"
    user_name: jdoe
    password: "{{ vault_jdoe_initial_password }}"

- name: Reset the password (written, and reported changed, on every run)
  idsync.provisioning.scim_user:
    url: https://scim.example.com/v2
    auth_username: provisioning
    auth_password: "{{ vault_scim_basic_auth_password }}"
    user_name: jdoe
    password: "{{ vault_jdoe_new_password }}"
    update_password: always

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
    - Values of paths naming a password, secret or token are masked; C(password) is V(********) when
      O(password) was (or would be) written.
  returned: always
  type: dict
  sample: {name.givenName: Jane, enabled: false}
details:
  description:
    - When the task failed on an error answer of the service, that answer's body (secrets masked), for
      example the SCIM error with its C(scimType) and C(detail). The message (C(msg)) already quotes it.
  returned: when the task failed on an error answer that had a body
  type: raw
  sample: {schemas: ["urn:ietf:params:scim:api:messages:2.0:Error"], scimType: uniqueness, status: "409"}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.idsync.provisioning.plugins.module_utils import scim
from ansible_collections.idsync.provisioning.plugins.module_utils._objects import run_user, user_argument_spec


def main():
    argument_spec = scim.connection_argument_spec("writes")
    argument_spec.update(user_argument_spec(password=True))
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    run_user(module, scim.TARGET.build, scim.USER_KEY, password_path=scim.PASSWORD_PATH)


if __name__ == "__main__":
    main()
