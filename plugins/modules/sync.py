#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# The work is done by the action plugin of the same name (plugins/action/sync.py); this file
# carries its documentation.

from __future__ import annotations

DOCUMENTATION = r"""
module: sync
short_description: Run the sync module of any target, chosen by name
version_added: 0.1.0
description:
  - Runs M(idsync.provisioning.scim_sync) (or the C(<target>_sync) module of another target)
    with O(connection) and O(options) together as its options, so that one task serves every
    target. The sync role uses it.
  - The target module's own argument spec checks every option, its check mode and diff apply,
    and its result is this task's result.
author:
  - idsync.provisioning developers (@idsync)
options:
  target:
    description: The target whose C(<target>_sync) module runs.
    type: str
    required: true
    choices: [box, dropbox, pingid, scim]
  connection:
    description: The target module's connection options (for V(scim) C(url), C(token), ...).
    type: dict
    default: {}
  options:
    description:
      - Every other option of the target module (C(source), C(user_mapping), policy options...).
      - An option may be in O(connection) or here, not in both.
    type: dict
    default: {}
attributes:
  check_mode:
    support: full
    description: As the target module.
  diff_mode:
    support: full
    description: As the target module.
  action:
    support: full
    description: Runs as an action plugin on the controller, which runs the target module.
seealso:
  - module: idsync.provisioning.scim_sync
"""

EXAMPLES = r"""
- name: Sync the directory into the SCIM service chosen by a variable
  idsync.provisioning.sync:
    target: "{{ target_name }}"
    connection:
      url: https://scim.example.com/v2
    options:
      source:
        server_uri: [ldaps://dc1.example.com]
        user_base_dn: "OU=People,DC=example,DC=com"
      remove_user_action: disable
"""

RETURN = r"""
changed:
  description: Whether the target module changed (or, in check mode, would change) anything.
  returned: always
  type: bool
report:
  description: The target module's report; see M(idsync.provisioning.scim_sync).
  returned: when the sync got as far as a plan
  type: dict
"""
