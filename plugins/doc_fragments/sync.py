# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options of every ``<target>_sync`` module: the source records, mapping and policy."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  users:
    description:
      - The source users, as returned by the P(idsync.provisioning.ldap_source#lookup) lookup
        (C(id), C(dn), C(disabled), C(attributes), C(groups)).
      - Use O(source) instead for large directories.
      - Exactly one of O(users) and O(source) is required.
    type: list
    elements: dict
  groups:
    description:
      - The source groups, as returned by the lookup (C(id), C(dn), C(name), C(members)).
      - When neither O(groups) nor O(source.group_base_dn) is given, groups are not managed.
    type: list
    elements: dict
  user_mapping:
    description:
      - Target attribute paths and the JMESPath expression that computes each from the source
        record, on top of the target's default mapping. An entry whose expression is empty or
        V(null) removes that path from the defaults.
      - The expressions see the record as the lookup returns it, for example C(attributes.mail[0]).
      - Only mapped attributes are ever written; others are left alone.
    type: dict
    default: {}
  group_mapping:
    description:
      - 'Expression for the target group name, as C({name: <expression>}). Default C(name) (the source CN).'
    type: dict
    default: {}
  manage_groups:
    description:
      - Whether to reconcile groups. By default groups are managed when source groups are given.
    type: bool
  state_file:
    description:
      - Where this provisioner records the accounts it created or linked, for targets that
        cannot carry a marker on the account itself. Written atomically with mode 0600.
      - Must persist between runs (on AWX, a project-relative or mounted path).
    type: path
  max_workers:
    description: Writes done in parallel.
    type: int
    default: 4
  remove_user_action:
    description:
      - What happens to an account this provisioner manages when its source user is deleted,
        disabled or leaves the scope.
      - V(disable) (the default) keeps the account and its data; V(delete) removes it.
    type: str
    default: disable
    choices: [disable, delete]
  provision_disabled_users:
    description:
      - Create accounts for users that are disabled in the directory, disabled.
      - By default disabled source users are not provisioned.
    type: bool
    default: false
  ownership:
    description:
      - V(linked) (the default) touches only accounts this provisioner created or linked.
      - V(authoritative) also deprovisions target accounts that match no source user, except
        those in O(protected), whatever marker they carry (another provisioner's included).
    type: str
    default: linked
    choices: [linked, authoritative]
  protected:
    description:
      - User keys and group names this provisioner never touches, in either ownership mode
        (break-glass admins, service accounts). They are not linked, updated, enabled, disabled,
        deleted or renamed, and their memberships are left as they are. Compared case-insensitively.
    type: list
    elements: str
    default: []
  max_deletes:
    description:
      - Most user deletes one run may do, as a count (V(10)) or a percentage of managed users (V(5%)).
      - Checked on the whole plan before any write; a larger plan fails the task and writes nothing.
    type: str
  max_disables:
    description: Like O(max_deletes), for disables.
    type: str
  max_group_deletes:
    description: Like O(max_deletes), for group deletes (of managed groups).
    type: str
  allow_empty_source:
    description:
      - Allow a run whose source has no users while this provisioner manages accounts.
      - Off by default, because an empty result usually means a wrong filter or base DN, and
        acting on it would deprovision everybody.
    type: bool
    default: false
  marker_prefix:
    description:
      - Prefix of the ownership marker stored with each managed object (C(<prefix><source id>)).
      - Give two provisioners that share a tenant different prefixes, neither a prefix of the other
        (V(idsync-hr:) and V(idsync-it:), not V(idsync:) and V(idsync:hr:)); in V(linked) ownership
        neither then touches the other's accounts.
    type: str
    default: "idsync:"
  operations:
    description:
      - Turn single capabilities off, as the reference provisioners allow. All are on by default.
    type: dict
    default: {}
    suboptions:
      create_users:
        description: Create accounts for new source users.
        type: bool
        default: true
      update_users:
        description: Write changed mapped attributes.
        type: bool
        default: true
      disable_users:
        description: Disable (and re-enable) accounts.
        type: bool
        default: true
      delete_users:
        description: Delete accounts (with O(remove_user_action=delete)).
        type: bool
        default: true
      create_groups:
        description: Create groups.
        type: bool
        default: true
      rename_groups:
        description: Rename groups renamed in the directory.
        type: bool
        default: true
      sync_memberships:
        description: Overwrite group membership with the source membership.
        type: bool
        default: true
      delete_groups:
        description: Delete managed groups that left the source.
        type: bool
        default: true
  save_plan:
    description:
      - In check mode, write the plan to this path for someone to review and approve, then apply it
        with O(apply_plan). JSON, mode 0600, written atomically.
      - The file holds every action, and for every object the plan would touch what was read of it in
        the directory and in the target (the mapped values, with a fingerprint of each), the collection
        version, the target, the options the plan was decided under and the time. It never holds a
        secret (no_log values, mapped attributes such as C(password)).
      - Only in check mode; a run that writes fails when it is set. Exclusive with O(apply_plan).
      - Render it for a change ticket with M(idsync.provisioning.plan_render) (Markdown, CSV).
    type: path
  apply_plan:
    description:
      - Apply exactly the plan saved by a preview with O(save_plan), and nothing else.
      - The run re-reads what the plan touches (the directory, and each target object by id or key, or
        one listing where that is cheaper) and compares it with what the plan read. When anything
        changed since (drift), nothing is written and the task fails, listing what drifted (C(drift)),
        unless O(skip_drifted) is set.
      - Refused before any read when the plan is older than O(max_plan_age), was made for another target,
        with other options (mapping, policy, source scope; thresholds are checked again), or was changed
        after it was made.
      - Objects that are not in the plan (a user added to the directory since) are left for the next run.
      - In check mode, the drift check runs and nothing is written.
    type: path
  max_plan_age:
    description:
      - How old a plan O(apply_plan) still applies, as seconds or a duration (V(90m), V(24h), V(7d)); V(never) for no limit.
    type: str
    default: 24h
  skip_drifted:
    description:
      - With O(apply_plan), apply the actions whose objects did not drift and leave out the others
        (listed in C(drift) and in a warning), instead of writing nothing.
      - A member change for a user whose creation is left out is left out too.
    type: bool
    default: false
  preview_limit:
    description:
      - How many objects per action the preview (C(preview), C(--diff)) and a refused plan's message
        show; the counts always cover all. V(0) shows every object.
      - The report (C(report)) and a saved plan always hold every action.
    type: int
    default: 20
  report_file:
    description:
      - Write a report of the run to this path, mode 0600. It holds the start and end time, duration, collection
        version, source and target, counts, every action with its result and the target's field
        names, failures with the service's message; why the run stopped, when it stopped before any
        write (a threshold, drift).
      - JSON, or Markdown when the path ends in C(.md). Written in check mode too, and when the run fails.
    type: path
notes:
  - Check mode (C(--check)) computes the same plan as a real run and writes nothing.
  - Every run returns C(preview), the plan as people read it. It starts with the counts per action,
    then one entry per object with its action, the reason (V(new in the directory),
    V(attribute title changed), V(disabled in the directory), V(deleted in the directory or out of scope), ...)
    and the changed fields under the target's own names, C(before -> after); a group's member changes
    are one entry of C(+ name) and C(- name) lines. With C(--diff) it is shown first, followed by the
    before and after of the same objects.
  - A threshold or the empty-source guard fails the task with the counts and the first objects that
    tripped it (O(preview_limit)), never with the whole plan.
  - The task fails when any object's write failed, after every other object was written, so a
    scheduler alerts; the report lists each failure with the service's own message.
"""
