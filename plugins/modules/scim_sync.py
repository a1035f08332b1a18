#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: scim_sync
short_description: Reconcile a directory's users and groups into a SCIM 2.0 service
version_added: 0.1.0
author:
  - idsync.provisioning developers (@idsync)
description:
  - Makes the users and groups of a SCIM 2.0 service match the directory, in one task, the way
    PingFederate's SCIM provisioner does.
  - B(Users.) An account whose C(userName) equals the mapped source value (case-insensitively) is
    linked, not duplicated. Users in scope without an account are created (disabled source users
    only with O(provision_disabled_users)). Changed mapped attributes are written, and only those.
    An account this provisioner manages whose source user is deleted, disabled or out of scope is
    disabled (C(active=false)) or, with O(remove_user_action=delete), deleted; it is re-enabled when
    the user comes back.
  - B(Groups.) Linked by name, created, renamed when renamed in the directory (same stable id),
    membership overwritten with the source membership of in-scope users, deleted when gone from
    the source.
  - B(Ownership.) The source object's stable id is stored in C(externalId) as
    C(<marker_prefix><id>); accounts without this provisioner's marker are never touched unless
    O(ownership=authoritative).
  - B(Safety.) Thresholds and the empty-source guard are checked on the whole plan before any
    write. A failed read aborts before any write. One object's failure does not stop the others.
extends_documentation_fragment:
  - idsync.provisioning.scim
  - idsync.provisioning.connection
  - idsync.provisioning.scim.writes
  - idsync.provisioning.scim.members
  - idsync.provisioning.scim.sync_only
  - idsync.provisioning.scim.auth_aliases
  - idsync.provisioning.sync
  - idsync.provisioning.ldap.source
attributes:
  check_mode:
    support: full
    description: The same plan as a real run; nothing is written.
  diff_mode:
    support: full
    description: Before and after of every user and group the run changes.
notes:
  - 'The default user mapping is: C(userName) from C(sAMAccountName) or C(uid), C(name.givenName)
    from C(givenName), C(name.familyName) from C(sn), C(displayName) from C(displayName) or C(cn),
    C(emails) (one work address, primary) from C(mail). The JMESPath function V(first(\)) takes the
    first value of a multi-valued attribute and passes a single value through.'
  - 'When objects failed, the task fails after every other object was written. Its message is a short
    summary: how many of all actions failed and the first few with the service''s words, for example
    V(2 of 120 actions failed: create_user jdoe (POST /Users: 409 uniqueness ...\), add_members Sales (...\);
    see report.failures). The details are in RV(report) (RV(report.failures)), which the result keeps
    so that a registered result can be examined.'
  - Ansible's default output callback prints a failed task's whole result after C(fatal:), the report
    included, as one line of JSON (indented from C(-vvv), which also adds the diff and the arguments).
    Set E(ANSIBLE_CALLBACK_RESULT_FORMAT=yaml) to read it on several lines, or register the result
    (C(failed_when) on RV(report.failed)) and show RV(report.failures), as the role C(idsync.provisioning.sync)
    does.
seealso:
  - module: idsync.provisioning.scim_user
  - module: idsync.provisioning.scim_group
  - plugin: idsync.provisioning.ldap_source
    plugin_type: lookup
"""

EXAMPLES = r"""
- name: Preview, then apply, a sync from Active Directory (run with --check --diff to preview)
  idsync.provisioning.scim_sync:
    url: https://scim.example.com/v2
    # token from SCIM_TOKEN, bind password from LDAP_BIND_PW
    source:
      server_uri: [ldaps://dc1.example.com, ldaps://dc2.example.com]
      dialect: ad
      bind_dn: "CN=svc-provisioning,OU=Service,DC=example,DC=com"
      user_base_dn: "OU=Staff,DC=example,DC=com"
      user_groups: ["CN=SaaS Users,OU=Groups,DC=example,DC=com"]
      nested_groups: true
      group_base_dn: "OU=SaaS Groups,OU=Groups,DC=example,DC=com"
    user_mapping:
      urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber: attributes.employeeID
      title: attributes.title
    max_disables: 5%
    max_group_deletes: 2
  register: sync

- name: Show what happened
  ansible.builtin.debug:
    var: sync.report.counts

- name: Users from the lookup, deprovisioned by delete, never touching break-glass accounts
  idsync.provisioning.scim_sync:
    url: "{{ scim_url }}"
    token: "{{ vault_scim_token }}"
    users: "{{ query('idsync.provisioning.ldap_source', 'users', user_base_dn='ou=people,dc=example,dc=org') }}"
    remove_user_action: delete
    ownership: authoritative
    protected: [breakglass-admin, scim-service]
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
        - An account that carries another provisioner's marker is not skipped but refused, a failed action.
      type: int
    actions:
      description: Every action with its object, before/after, status (C(planned), C(ok), C(failed), C(skipped)) and error.
      type: list
      elements: dict
    failures:
      description: Each failed action with the service's own message.
      type: list
      elements: dict
      sample: [{kind: create_user, object_type: user, name: jdoe, error: "POST /Users: 409 uniqueness ..."}]
requests:
  description: HTTP requests made, per method and path.
  returned: always
  type: dict
  sample: {"GET /Users": 3, "POST /Users": 2}
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
    - When the run stopped before any write on an error answer of the service (a failed read), that
      answer's body (secrets masked). The message (C(msg)) already quotes it.
    - Failures of single objects are not here but in RV(report.failures).
  returned: when the run stopped on an error answer that had a body
  type: raw
  sample: {schemas: ["urn:ietf:params:scim:api:messages:2.0:Error"], status: "503", detail: "try later"}
"""

from ansible_collections.idsync.provisioning.plugins.module_utils import scim
from ansible_collections.idsync.provisioning.plugins.module_utils._runner import run_sync, sync_module


def main():
    run_sync(sync_module(scim.TARGET), scim.TARGET)


if __name__ == "__main__":
    main()
