#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pingid_sync
short_description: Reconcile a directory's users into a PingID organisation
version_added: 0.1.0
author:
  - idsync.provisioning developers (@idsync)
description:
  - Makes the users of a PingID organisation match the directory, in one task, the job of PingFederate's
    PingID provisioner, through the PingID API (version 4.9) it uses. PingID has users only, no groups.
  - 'B(Users.) A user whose C(userName) equals the mapped source value (case-insensitively) is linked, not
    added twice (an C(AddUser) answered C(10556), the user exists, is linked too). Users in scope without an
    account are added (C(AddUser) with C(activateUser), so PingID issues the activation code; disabled source
    users only with O(provision_disabled_users), added C(NOT_ACTIVE)). Changed mapped fields are written with
    C(EditUser), which replaces PingID''s whole record: the user is read first and every field is sent, the
    fields not mapped with the values PingID holds, so nothing is cleared that the mapping does not clear. A
    user this provisioner manages whose source user is deleted, disabled or out of scope is suspended
    (C(SuspendUser)) or, with O(remove_user_action=delete), deleted (C(DeleteUser)); it is activated again
    (C(ActivateUser)) when the user comes back.'
  - B(Ownership.) PingID has no field for a marker, so the users this provisioner added or linked are recorded
    in O(state_file), which is required and must persist between runs, with a fingerprint of what was last
    written to each. Users that are not recorded there are never touched.
  - B(Reads.) PingID cannot list its users except through the organisation report, a job. So a run compares
    the directory with the state file and reads only what changed; a run where nothing changed sends no
    request at all. A full verification (O(full_verification); automatically every O(verify_every_runs) runs,
    after O(verify_max_age), and for a state file that was never verified, new or lost) reads every user
    through the report, which finds users deleted or changed behind the provisioner's back, links existing
    users by name and rebuilds a lost state file.
  - B(Renames.) PingID cannot change a user name. A source user whose mapped C(userName) changed fails, naming
    the old and the new name and what the operator can do; the account is left as it is.
  - B(Safety.) Thresholds and the empty-source guard are checked on the whole plan before any write. A failed
    read (the report job included) aborts before any write. Every reply's signature is verified; a reply that
    does not verify fails the run or that user. One user's failure does not stop the others.
extends_documentation_fragment:
  - idsync.provisioning.pingid
  - idsync.provisioning.pingid.verification
  - idsync.provisioning.connection
  - idsync.provisioning.sync
  - idsync.provisioning.ldap.source
attributes:
  check_mode:
    support: full
    description: The same plan as a real run, with the same reads; nothing is written, the state file included.
  diff_mode:
    support: full
    description: Before and after of every user the run changes.
notes:
  - 'The default user mapping is: C(userName) from C(sAMAccountName) or else C(uid), C(fname) from
    C(givenName), C(lname) from C(sn), C(email) from C(mail). C(role) (V(ADMIN) or V(REGULAR)) can be mapped
    too; a user without one is added with O(default_role). The JMESPath function V(first(\)) takes the first
    value of a multi-valued attribute and passes a single value through.'
  - 'PingID cannot suspend a user who never paired a device (C(NOT_ACTIVE), C(PENDING), C(PENDING_ACTIVATION)):
    C(SuspendUser) answers C(10561). Disabling such a user succeeds without a change at PingID, since it cannot
    sign in with PingID, and the state file records it as disabled. A full verification that finds it still
    not suspended tries again, so that a user who paired a device since is suspended then. Use
    O(remove_user_action=delete) where a pending user must not be able to activate at all.'
  - O(groups), O(group_mapping) and O(manage_groups) are accepted for one role serving every target; PingID has
    no groups, so source groups are not written anywhere.
  - O(ownership=authoritative) is refused, since it needs a cheap listing of every account.
  - MFA devices (the e-mail, SMS and voice devices of PingFederate's PingID provisioner) are out of scope and
    are left as they are.
  - 'When users failed, the task fails after every other user was written. Its message is a short summary (how
    many of all actions failed and the first few with PingID''s words, C(errorId) and C(errorMsg)); the details
    are in RV(report.failures).'
seealso:
  - module: idsync.provisioning.pingid_user
  - module: idsync.provisioning.pingid_user_info
  - plugin: idsync.provisioning.ldap_source
    plugin_type: lookup
"""

EXAMPLES = r"""
- name: Preview, then apply, a sync from Active Directory (run with --check --diff to preview)
  idsync.provisioning.pingid_sync:
    # properties_file from PINGID_PROPERTIES_FILE; bind password from LDAP_BIND_PW
    state_file: /var/lib/idsync/pingid.json
    source:
      server_uri: [ldaps://dc1.example.com, ldaps://dc2.example.com]
      dialect: ad
      bind_dn: "CN=svc-provisioning,OU=Service,DC=example,DC=com"
      user_base_dn: "OU=Staff,DC=example,DC=com"
      user_groups: ["CN=PingID Users,OU=Groups,DC=example,DC=com"]
      nested_groups: true
    max_disables: 5%
  register: sync

- name: Show what happened, and whether this run read every user
  ansible.builtin.debug:
    msg: "{{ sync.report.counts }}; full verification: {{ sync.verification.reason | default('no') }}"

- name: A weekly job that verifies every user against the organisation report, deleting leavers
  idsync.provisioning.pingid_sync:
    properties_file: /etc/idsync/pingid.properties
    state_file: /var/lib/idsync/pingid.json
    users: "{{ query('idsync.provisioning.ldap_source', 'users', user_base_dn='ou=people,dc=example,dc=org') }}"
    full_verification: true
    remove_user_action: delete
    protected: [breakglass]
    max_deletes: 10

- name: Verify at least every 6 hours, whatever the number of runs
  idsync.provisioning.pingid_sync:
    state_file: /var/lib/idsync/pingid.json
    users: "{{ query('idsync.provisioning.ldap_source', 'users', user_base_dn='ou=people,dc=example,dc=org') }}"
    verify_every_runs: -1
    verify_max_age: 6h
"""

RETURN = r"""
report:
  description: What the run did, or in check mode would do.
  returned: always
  type: dict
  contains:
    changed:
      description: Whether anything was (or would be) written, the state file's forgetting of a user deleted behind the provisioner's back included.
      type: bool
    check_mode:
      description: Whether this was a preview.
      type: bool
    counts:
      description: Number of actions done (or planned) per kind (C(create_user), C(link_user), C(update_user), C(disable_user), ...).
      type: dict
      sample: {create_user: 2, update_user: 1, disable_user: 1}
    failed:
      description: Number of failures.
      type: int
    skipped:
      description: Number of actions skipped by policy (users in O(protected)).
      type: int
    actions:
      description: Every action with its object, before/after, status (C(planned), C(ok), C(failed), C(skipped)) and error.
      type: list
      elements: dict
    failures:
      description: Each failed action with PingID's own message (the operation, C(errorId) and C(errorMsg)).
      type: list
      elements: dict
      sample:
        - kind: update_user
          object_type: user
          name: jdoe
          error: "user jdoe: userName: PingID cannot rename a user (to 'jane.doe'): ..."
verification:
  description:
    - Whether this run read every user through the organisation report (a full verification), and why.
  returned: when the run got as far as a plan
  type: dict
  contains:
    full:
      description: V(true) when every user was read through the report; V(false) when the state file was trusted.
      type: bool
    reason:
      description: Why the run verified (V(null) when it did not).
      type: str
      sample: "24 runs since the last verification (verify_every_runs: 24)"
requests:
  description: Requests made, per operation (C(POST AddUser), C(POST GetUserDetails), ...).
  returned: always
  type: dict
  sample: {"POST CreateJob": 1, "POST GetJobStatus": 3, "POST GetOrgReport": 1, "POST AddUser": 2}
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
    - When the run stopped before any write on an error answer of PingID (a failed read), the operation, its
      C(errorId) and C(errorMsg) (secrets masked). The message (C(msg)) already quotes them.
    - Failures of single users are not here but in RV(report.failures).
  returned: when the run stopped on an error answer of PingID
  type: raw
  sample: {operation: CreateJob, errorId: 400, errorMsg: "invalid input: invalid signature"}
"""

from ansible_collections.idsync.provisioning.plugins.module_utils import pingid
from ansible_collections.idsync.provisioning.plugins.module_utils._runner import run_sync, sync_module


def main():
    run_sync(sync_module(pingid.TARGET), pingid.TARGET)


if __name__ == "__main__":
    main()
