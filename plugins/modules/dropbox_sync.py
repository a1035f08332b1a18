#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: dropbox_sync
short_description: Reconcile a directory's users and groups into a Dropbox team
version_added: 0.1.0
author:
  - idsync.provisioning developers (@idsync)
description:
  - Makes the members and the groups of a Dropbox team (Dropbox Business) match the directory, in one task,
    the way PingFederate's Dropbox provisioner does, and deprovisions too, which that one does not.
  - B(Users.) A member whose e-mail address equals the mapped source value (case-insensitively) is linked,
    not invited twice. Users in scope without a member are added (C(members/add_v2), 20 at a time, followed
    through Dropbox's async job), as C(invited) until they join; a removed member still recoverable is
    recovered instead of being added anew. Changed mapped fields are written, and only those. A member this
    provisioner manages whose source user is deleted, disabled or out of scope is suspended or, with
    O(remove_user_action=delete), removed from the team with O(wipe_data), O(keep_account),
    O(retain_team_shares), O(transfer_dest_id) and O(permanently_delete_files); it is unsuspended when the
    user comes back. An invited member cannot be suspended; see O(disable_invited).
  - B(Groups.) Linked by name, created C(company_managed), renamed when renamed in the directory (same stable
    id), membership overwritten with the source membership of in-scope users (only the difference sent),
    deleted when gone from the source. System-managed groups are never touched.
  - B(Ownership.) The source object's stable id is stored as C(<marker_prefix><id>) in the member's
    C(member_external_id) (at most 64 characters) and the group's C(group_external_id), so no state file is
    needed (O(state_file) is ignored). Members and groups without this provisioner's marker are never touched
    unless O(ownership=authoritative).
  - B(Safety.) O(wipe_data) is always sent, V(false) unless asked (Dropbox's default is V(true));
    O(permanently_delete_files) is never sent unless asked. The deprovisioning options are checked against
    each other before any call. Thresholds and the empty-source guard are checked on the whole plan before any
    write. A failed read aborts before any write. One object's failure does not stop the others.
extends_documentation_fragment:
  - idsync.provisioning.dropbox
  - idsync.provisioning.connection
  - idsync.provisioning.sync
  - idsync.provisioning.ldap.source
attributes:
  check_mode:
    support: full
    description: The same plan as a real run; nothing is written.
  diff_mode:
    support: full
    description: Before and after of every member and group the run changes.
notes:
  - 'The default user mapping is: C(email) from C(mail), C(given_name) from C(givenName), C(surname) from
    C(sn). The JMESPath function V(first(\)) takes the first value of a multi-valued attribute and passes a
    single value through. C(persistent_id) and C(is_directory_restricted) can be mapped too. A name part longer
    than Dropbox''s 50 characters, or holding one of C(/ : ? * < > " |), is refused for that user, never cut.'
  - 'A disabled source user is not added, also not with O(provision_disabled_users=true): Dropbox adds members
    as invited and cannot suspend an invited member, so that user fails with a message saying so.'
  - A member removed from the team can be recovered (C(members/recover)) for 7 days. A source user who comes
    back within them is recovered, with their files; after them, the person is invited again as a new member.
  - 'When objects failed, the task fails after every other object was written. Its message is a short
    summary (how many of all actions failed and the first few with Dropbox''s words); the details are in
    RV(report.failures).'
seealso:
  - module: idsync.provisioning.dropbox_user
  - module: idsync.provisioning.dropbox_group
  - plugin: idsync.provisioning.ldap_source
    plugin_type: lookup
"""

EXAMPLES = r"""
- name: Preview, then apply, a sync from Active Directory (run with --check --diff to preview)
  idsync.provisioning.dropbox_sync:
    # app_key, app_secret and refresh_token from DROPBOX_APP_KEY, DROPBOX_APP_SECRET and
    # DROPBOX_REFRESH_TOKEN; bind password from LDAP_BIND_PW
    source:
      server_uri: [ldaps://dc1.example.com, ldaps://dc2.example.com]
      dialect: ad
      bind_dn: "CN=svc-provisioning,OU=Service,DC=example,DC=com"
      user_base_dn: "OU=Staff,DC=example,DC=com"
      user_groups: ["CN=Dropbox Users,OU=Groups,DC=example,DC=com"]
      nested_groups: true
      group_base_dn: "OU=Dropbox Groups,OU=Groups,DC=example,DC=com"
    send_welcome_email: false
    max_disables: 5%
    max_group_deletes: 2
  register: sync

- name: Show what happened
  ansible.builtin.debug:
    var: sync.report.counts

- name: Deprovision by removal, moving each leaver's files to the records manager first
  idsync.provisioning.dropbox_sync:
    app_key: "{{ dropbox_app_key }}"
    app_secret: "{{ vault_dropbox_app_secret }}"
    refresh_token: "{{ vault_dropbox_refresh_token }}"
    users: "{{ query('idsync.provisioning.ldap_source', 'users', user_base_dn='ou=people,dc=example,dc=org') }}"
    remove_user_action: delete
    transfer_dest_id: records@example.com
    transfer_admin_id: it-admin@example.com
    protected: [admin@example.com]
    max_deletes: 10

- name: Remove leavers but let them keep a Basic account with the folders shared with them
  idsync.provisioning.dropbox_sync:
    users: "{{ query('idsync.provisioning.ldap_source', 'users', user_base_dn='ou=people,dc=example,dc=org') }}"
    remove_user_action: delete
    keep_account: true
    retain_team_shares: true
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
        - A member or group that carries another provisioner's marker is not skipped but refused, a failed action.
      type: int
    actions:
      description: Every action with its object, before/after, status (C(planned), C(ok), C(failed), C(skipped)) and error.
      type: list
      elements: dict
    failures:
      description: Each failed action with Dropbox's own message (the per-member tag of C(members/add_v2), the C(error_summary) of a 409).
      type: list
      elements: dict
      sample:
        - kind: create_user
          object_type: user
          name: new.hire@example.com
          error: "user new.hire@example.com: members/add_v2: team_license_limit: the team has no license left for another member"
requests:
  description: HTTP requests made, per method and path.
  returned: always
  type: dict
  sample: {"POST /team/members/list_v2": 1, "POST /team/members/add_v2": 1, "POST /team/members/suspend": 1}
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
    - When the run stopped before any write on an error answer of Dropbox (a failed read), that answer's body
      (secrets masked). The message (C(msg)) already quotes it.
    - Failures of single objects are not here but in RV(report.failures).
  returned: when the run stopped on an error answer that had a body
  type: raw
  sample: {error_summary: "missing_scope/..", error: {".tag": missing_scope, required_scope: members.read}}
"""

from ansible_collections.idsync.provisioning.plugins.module_utils import dropbox
from ansible_collections.idsync.provisioning.plugins.module_utils._runner import run_sync, sync_module


def main():
    run_sync(sync_module(dropbox.TARGET), dropbox.TARGET)


if __name__ == "__main__":
    main()
