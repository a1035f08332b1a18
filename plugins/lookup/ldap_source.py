# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: ldap_source
short_description: Read the users and groups in scope from an LDAP directory
version_added: 0.1.0
author:
  - idsync.provisioning developers (@idsync)
description:
  - Reads users and groups from Active Directory, OpenLDAP or 389-DS with paged searches and
    returns them as plain records, ready for attribute mapping and the per-object modules.
  - The scope is a base DN and an LDAP filter, optionally narrowed to members of targeted groups,
    directly or through nested groups.
  - Each record carries the object's stable id (C(objectGUID), C(entryUUID) or C(nsUniqueId)),
    which links it to target accounts across renames.
  - 'Single-valued attributes come back as scalars and multi-valued ones as lists, as the schema
    says (an attribute that may hold several values is a list even when it holds one). Binary
    attributes come back base64-encoded, except the id.'
  - For large directories prefer the C(source) option of the C(*_sync) modules, which reads the
    directory inside the task instead of passing every record through Ansible variables.
options:
  _terms:
    description:
      - What to return, one of V(users), V(groups) or V(all).
      - V(users) and V(groups) return a list of records; V(all) returns one dictionary with the
        keys C(users) and C(groups).
    type: list
    elements: str
    required: true
extends_documentation_fragment:
  - idsync.provisioning.ldap
  - idsync.provisioning.ldap.plugins
requirements:
  - python-ldap (the C libldap binding, fast) or ldap3 (pure Python) on the controller; see O(backend).
notes:
  - Group members are the ids of users in the user scope; members outside it are left out.
  - On Active Directory, large groups are read with ranged retrieval (C(member;range=...)) to the end.
  - Continuation references (search result references, which AD returns for its other partitions in
    subtree searches from a domain root) are neither followed nor taken for entries; their number
    and URLs are shown with C(-vvv).
seealso:
  - module: idsync.provisioning.scim_sync
    description: Reconciles the users and groups this lookup reads into a SCIM 2.0 service in one task.
"""

EXAMPLES = r"""
- name: Users of the Engineering group and its nested groups
  ansible.builtin.debug:
    msg: "{{ item.attributes.uid }} disabled={{ item.disabled }}"
  loop: >-
    {{ query('idsync.provisioning.ldap_source', 'users',
             server_uri=['ldaps://dc1.example.org', 'ldaps://dc2.example.org'],
             dialect='ad',
             user_base_dn='OU=Staff,DC=example,DC=org',
             user_groups=['CN=Engineering,OU=Groups,DC=example,DC=org'],
             nested_groups=true) }}
  # LDAP_BIND_DN and LDAP_BIND_PW come from the environment (an AWX credential injects them).

- name: Everything in scope, users and groups, from OpenLDAP with StartTLS
  ansible.builtin.set_fact:
    directory: >-
      {{ lookup('idsync.provisioning.ldap_source', 'all',
                server_uri='ldap://ldap.example.org',
                start_tls=true,
                ca_path='/etc/ssl/certs/corp-ca.pem',
                user_base_dn='ou=people,dc=example,dc=org',
                user_filter='(&(objectClass=inetOrgPerson)(employeeType=staff))',
                group_base_dn='ou=groups,dc=example,dc=org') }}

- name: Names of the disabled users
  ansible.builtin.debug:
    msg: "{{ directory.users | selectattr('disabled') | map(attribute='dn') | list }}"
"""

RETURN = r"""
_raw:
  description:
    - For V(users) and V(groups), the records (one list element each).
    - For V(all), a single dictionary with the keys C(users) and C(groups).
  type: list
  elements: dict
  contains:
    id:
      description: The stable id. C(objectGUID) as C(xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx), or the entryUUID / nsUniqueId.
      type: str
    dn:
      description: The entry's DN as the server wrote it.
      type: str
    disabled:
      description: Users only. Whether the dialect's disabled rule (or O(disabled_filter)) matched.
      type: bool
    attributes:
      description:
        - Users only. The attributes read, keyed by their schema name (C(sAMAccountName), C(mail)).
        - Scalars for single-valued attributes, lists for multi-valued ones, base64 for binary ones.
      type: dict
    groups:
      description: Users only. Names of the groups in the group scope the user belongs to.
      type: list
      elements: str
    name:
      description: Groups only. The group's name (O(group_name_attribute)).
      type: str
    members:
      description: Groups only. Stable ids of the member users that are in the user scope.
      type: list
      elements: str
"""

import difflib

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase
from ansible.utils.display import Display

from ansible_collections.idsync.provisioning.plugins.module_utils._ldap import LdapOptions, read_directory
from ansible_collections.idsync.provisioning.plugins.module_utils._model import ProvisioningError
from ansible_collections.idsync.provisioning.plugins.module_utils._secrets import SecretMasker

display = Display()
KINDS = ("users", "groups", "all")


def unknown_options_message(unknown, known) -> str:
    """``ldap_source: unknown option 'user_group' (did you mean 'user_groups'?); known options: ...``."""
    known = sorted(known)
    described = []
    for name in unknown:
        close = difflib.get_close_matches(name, known, n=1)
        described.append(f"{name!r} (did you mean {close[0]!r}?)" if close else repr(name))
    noun = "option" if len(unknown) == 1 else "options"
    return f"ldap_source: unknown {noun} {', '.join(described)}; known options: {', '.join(known)}"


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        if len(terms) != 1 or terms[0] not in KINDS:
            raise AnsibleLookupError(f"ldap_source takes exactly one term, one of {', '.join(KINDS)}; got {terms!r}")
        self.set_options(var_options=variables, direct=kwargs)
        # set_options drops what it does not know: a misspelt option (user_group=) would silently
        # widen the scope, so anything not documented is refused, as the modules refuse it.
        known = {name for name in self.get_options() if not name.startswith("_")}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise AnsibleLookupError(unknown_options_message(unknown, known))
        try:
            options = LdapOptions.from_getter(self.get_option)
            directory = read_directory(options)
        except ProvisioningError as exc:
            # The same masking as the modules: a server that echoes the bind shows no password.
            masker = SecretMasker([self.get_option("bind_pw")])
            raise AnsibleLookupError(masker.mask(f"ldap_source: {exc.message}")) from None
        display.vvv(
            f"ldap_source: {len(directory.users)} users and {len(directory.groups)} groups from {options.server_uri} "
            f"(backend {directory.backend})"
        )
        if directory.references:
            # AD answers subtree searches from a domain root with references to its other partitions
            display.vvv(
                f"ldap_source: {len(directory.references)} continuation references not followed: "
                + ", ".join(directory.references)
            )
        for text in directory.warnings():
            display.warning(f"ldap_source: {text}")
        users = [u.as_dict() for u in directory.users]
        groups = [g.as_dict() for g in directory.groups]
        if terms[0] == "users":
            return users
        if terms[0] == "groups":
            return groups
        return [{"users": users, "groups": groups}]
