#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: box_sync
short_description: Reconcile a directory's users and groups into a Box enterprise
version_added: 0.1.0
author:
  - idsync.provisioning developers (@idsync)
description:
  - Makes the managed users and the groups of a Box enterprise match the directory, in one task, the way
    PingFederate's Box provisioner does.
  - B(Users.) A managed user whose C(login) equals the mapped source value (case-insensitively) is
    linked, not duplicated. Users in scope without an account are created (disabled source users
    only with O(provision_disabled_users)); Box sends each new user a welcome e-mail, which cannot be
    suppressed. Changed mapped fields are written, and only those. A user this provisioner manages whose
    source user is deleted, disabled or out of scope is disabled (C(status=inactive)) or, with
    O(remove_user_action=delete), deleted (after moving their content to O(transfer_content_to) when set);
    it is re-enabled when the user comes back. App users and the app's service account are never touched.
  - B(Groups.) Linked by name, created, renamed when renamed in the directory (same stable id),
    membership overwritten with the source membership of in-scope users, deleted when gone from
    the source. Managed groups carry C(external_sync_identifier) and O(provenance).
  - B(Ownership.) Box users have no field for a marker, so the users this provisioner created or linked
    are recorded in O(state_file), which is required and must persist between runs. Groups carry the marker
    C(<marker_prefix><id>) in C(external_sync_identifier). Accounts and groups without this provisioner's
    marker are never touched unless O(ownership=authoritative).
  - B(Safety.) Thresholds and the empty-source guard are checked on the whole plan before any
    write. A failed read aborts before any write. One object's failure does not stop the others; a
    delete refused by a retention or legal hold policy, or one that fails because Box is still moving
    the content, is reported for that user and tried again by the next run.
extends_documentation_fragment:
  - idsync.provisioning.box
  - idsync.provisioning.connection
  - idsync.provisioning.sync
  - idsync.provisioning.ldap.source
attributes:
  check_mode:
    support: full
    description: The same plan as a real run; nothing is written, the state file included.
  diff_mode:
    support: full
    description: Before and after of every user and group the run changes.
notes:
  - 'The default user mapping is: C(login) from C(mail), C(name) from C(displayName) or C(cn),
    C(job_title) from C(title), C(phone) from C(telephoneNumber). The JMESPath function V(first(\))
    takes the first value of a multi-valued attribute and passes a single value through. A name longer
    than Box''s 50 characters is refused for that user, never cut.'
  - The user fields that can be mapped, and their limits, are those of the C(attributes) option of
    M(idsync.provisioning.box_user).
  - Box lists groups and memberships by offset only, up to offset 10,000; an enterprise with more groups
    than that (or a group with more members) cannot be read in full, and the run stops before any write
    saying so.
  - 'When objects failed, the task fails after every other object was written. Its message is a short
    summary (how many of all actions failed and the first few with Box''s words); the details are in
    RV(report.failures).'
seealso:
  - module: idsync.provisioning.box_user
  - module: idsync.provisioning.box_group
  - plugin: idsync.provisioning.ldap_source
    plugin_type: lookup
"""

EXAMPLES = r"""
- name: Preview, then apply, a sync from Active Directory (run with --check --diff to preview)
  idsync.provisioning.box_sync:
    # client_id, client_secret and enterprise_id from BOX_CLIENT_ID, BOX_CLIENT_SECRET and
    # BOX_ENTERPRISE_ID (or config_file from BOX_CONFIG_FILE); bind password from LDAP_BIND_PW
    state_file: /var/lib/idsync/box.json
    source:
      server_uri: [ldaps://dc1.example.com, ldaps://dc2.example.com]
      dialect: ad
      bind_dn: "CN=svc-provisioning,OU=Service,DC=example,DC=com"
      user_base_dn: "OU=Staff,DC=example,DC=com"
      user_groups: ["CN=Box Users,OU=Groups,DC=example,DC=com"]
      nested_groups: true
      group_base_dn: "OU=Box Groups,OU=Groups,DC=example,DC=com"
    user_mapping:
      address: first(attributes.streetAddress)
    max_disables: 5%
    max_group_deletes: 2
  register: sync

- name: Show what happened
  ansible.builtin.debug:
    var: sync.report.counts

- name: Deprovision by delete, moving each leaver's files to the records manager first (JWT config file)
  idsync.provisioning.box_sync:
    config_file: /etc/idsync/box_config.json
    state_file: /var/lib/idsync/box.json
    users: "{{ query('idsync.provisioning.ldap_source', 'users', user_base_dn='ou=people,dc=example,dc=org') }}"
    remove_user_action: delete
    transfer_content_to: records@example.com
    protected: [admin@example.com]
    max_deletes: 10
"""

RETURN = r"""
report:
  description: What the run did, or in check mode would do.
  returned: always
  type: dict
  contains:
    changed:
      description: Whether anything was (or would be) written.
      type: bool
    check_mode:
      description: Whether this was a preview.
      type: bool
    counts:
      description: Number of actions done (or planned) per kind (C(create_user), C(disable_user), C(add_members), ...).
      type: dict
      sample: {create_user: 2, update_user: 1, disable_user: 1, add_members: 3}
    failed:
      description: Number of failures.
      type: int
    skipped:
      description:
        - Number of actions skipped by policy (objects in O(protected)).
        - A group that carries another provisioner's marker is not skipped but refused, a failed action.
      type: int
    actions:
      description: Every action with its object, before/after, status (C(planned), C(ok), C(failed), C(skipped)) and error.
      type: list
      elements: dict
    failures:
      description: Each failed action with Box's own message.
      type: list
      elements: dict
      sample:
        - kind: delete_user
          object_type: user
          name: leaver@example.com
          error: "user leaver@example.com: Box refused the delete (retention or legal hold policy ...)"
requests:
  description: HTTP requests made, per method and path.
  returned: always
  type: dict
  sample: {"GET /users": 3, "POST /users": 2}
plan:
  description:
    - The plan that a threshold or the empty-source guard refused, when that is why the task failed;
      nothing was written, so there is no RV(report).
    - C(counts), C(managed_users), C(managed_groups) and every planned C(actions).
  returned: when a threshold or the empty-source guard stopped the run
  type: dict
preview:
  description:
    - The plan for people, summary first, one line per C(preview_limit) object per action, then
      C(... and K more); each object with its action, the reason and the changed fields under the
      service's own names as before -> after, a group's member changes as C(+ name) / C(- name) lines.
    - The same text leads the C(--diff) output.
  returned: when the run planned (not when it was refused before planning)
  type: list
  elements: str
  sample: ["Summary: 2 changes to 2 objects", "  create_user   1", "  disable_user  1", "", "create_user (1)", "  + jdoe: new in the directory"]
plan_file:
  description: The saved plan written (O(save_plan)) or applied (O(apply_plan)).
  returned: when O(save_plan) or O(apply_plan) is set
  type: dict
  contains:
    id:
      description: The plan's identifier, a digest of its content (an edited file does not match it).
      type: str
    path:
      description: Where the plan file is.
      type: str
    created:
      description: When the plan was made (UTC, ISO 8601).
      type: str
    actions:
      description: Number of actions in the plan (when saving).
      type: int
    objects:
      description: Number of objects the plan touches (when saving).
      type: int
    bytes:
      description: Size of the plan file (when saving).
      type: int
drift:
  description:
    - What changed in the directory or in the service since the saved plan was made, per object
      (C(object_type), C(name), C(where), C(changes), C(actions)).
    - Without O(skip_drifted) nothing was written; with it, these objects' actions were left out.
  returned: when O(apply_plan) found drift
  type: list
  elements: dict
plan_id:
  description: The identifier of the saved plan that was refused because it drifted.
  returned: when O(apply_plan) found drift and nothing was written
  type: str
report_file:
  description: The path of the run report written (O(report_file)).
  returned: when O(report_file) is set
  type: str
details:
  description:
    - When the run stopped before any write on an error answer of Box (a failed read), that answer's body
      (secrets masked). The message (C(msg)) already quotes it.
    - Failures of single objects are not here but in RV(report.failures).
  returned: when the run stopped on an error answer that had a body
  type: raw
  sample: {type: error, status: 503, code: unavailable, message: Unavailable}
"""

from ansible_collections.idsync.provisioning.plugins.module_utils import box
from ansible_collections.idsync.provisioning.plugins.module_utils._runner import run_sync, sync_module


def main():
    run_sync(sync_module(box.TARGET), box.TARGET)


if __name__ == "__main__":
    main()
