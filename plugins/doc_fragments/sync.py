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
notes:
  - Check mode (C(--check)) computes the same plan as a real run and writes nothing; with C(--diff)
    every object's before and after is shown.
  - The task fails when any object's write failed, after every other object was written, so a
    scheduler alerts; the report lists each failure with the service's own message.
"""
