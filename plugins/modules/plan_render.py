#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: plan_render
short_description: Render a saved sync plan as Markdown or CSV for a change ticket
version_added: 0.1.0
author:
  - idsync.provisioning developers (@idsync)
description:
  - Reads a plan saved by a preview of any C(*_sync) module (O(idsync.provisioning.scim_sync#module:save_plan))
    and renders it for people who approve changes, without connecting to anything.
  - V(markdown) is a document for a change ticket, the counts first, then one table per action with
    each object, the reason and the changed fields under the target's own names, the group member
    changes and what the preview refused. V(csv) is one row per object and action (a group's member
    changes in one row) for a spreadsheet; cells that a spreadsheet would run as a formula are
    prefixed with C('). V(text) is the preview as the sync module shows it.
  - The plan file is checked first. A file that is not a plan, of another version, or changed after
    it was made (its C(plan_id) does not match) is refused.
options:
  src:
    description: The plan file written by O(idsync.provisioning.scim_sync#module:save_plan).
    type: path
    required: true
  format:
    description: What to render.
    type: str
    default: markdown
    choices: [markdown, csv, text]
  dest:
    description:
      - Also write the rendering to this file (mode 0600, atomically). Only written when its content
        changes, and never in check mode.
    type: path
  limit:
    description: How many objects per action to show in V(markdown) and V(text); V(0) (the default) shows all.
    type: int
    default: 0
attributes:
  check_mode:
    support: full
    description: The rendering is returned; O(dest) is not written in check mode.
  diff_mode:
    support: none
    description: The rendering is returned in RV(content); there is no before and after to compare.
notes:
  - The plan holds no secret; it does hold the names and mapped attributes of the people it changes,
    so treat the renderings as you treat the plan.
seealso:
  - module: idsync.provisioning.scim_sync
"""

EXAMPLES = r"""
- name: Preview the sync and save its plan
  idsync.provisioning.scim_sync:
    source:
      user_base_dn: "ou=people,dc=example,dc=com"
    save_plan: /var/lib/idsync/plans/scim.json
  check_mode: true

- name: The plan as Markdown for the change ticket
  idsync.provisioning.plan_render:
    src: /var/lib/idsync/plans/scim.json
    format: markdown
    dest: /var/lib/idsync/plans/scim.md

- name: The plan as CSV
  idsync.provisioning.plan_render:
    src: /var/lib/idsync/plans/scim.json
    format: csv
  register: plan_csv
"""

RETURN = r"""
content:
  description: The rendering.
  returned: success
  type: str
  sample: "# Plan 3f2a9c0d1e4b for scim (url https://scim.example.com/v2), made 2025-05-01T07:00:00Z ..."
plan_id:
  description: The plan's id (the fingerprint of its content), as the preview and the apply run report it.
  returned: success
  type: str
  sample: sha256:3f2a9c0d1e4b...
created:
  description: When the plan was made (UTC).
  returned: success
  type: str
  sample: "2025-05-01T07:00:00Z"
summary:
  description: The plan's counts per action and how many objects it touches.
  returned: success
  type: dict
  sample: {counts: {create_user: 3, disable_user: 1}, actions: 4, objects: 4, managed_users: 40, managed_groups: 5}
dest:
  description: The file written (or, in check mode, that would be).
  returned: when O(dest) is set
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.idsync.provisioning.plugins.module_utils._runner import (
    PLAN_RENDER_ARGUMENT_SPEC,
    run_plan_render,
)


def main():
    run_plan_render(AnsibleModule(argument_spec=PLAN_RENDER_ARGUMENT_SPEC, supports_check_mode=True))


if __name__ == "__main__":
    main()
