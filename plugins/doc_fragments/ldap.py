# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the directory options, shared by the lookup and the sync modules."""

from __future__ import annotations


class ModuleDocFragment:
    # Top-level options (the ldap_source lookup). SOURCE repeats them as suboptions of a
    # module's ``source`` (ansible-test needs literal strings); a unit test keeps the two equal.
    DOCUMENTATION = r"""
options:
  server_uri:
    description:
      - One or more directory servers as C(ldap://host[:port]) or C(ldaps://host[:port]).
      - They are tried in the order given; the first that answers is used (failover).
      - Required; may come from the environment variable E(LDAP_SERVER_URI) (comma-separated).
    type: list
    elements: str
  bind_dn:
    description:
      - DN to bind as. Anonymous bind when not set.
      - May come from the environment variable E(LDAP_BIND_DN).
    type: str
  bind_pw:
    description:
      - Password for O(bind_dn). Never shown in output or errors.
      - May come from the environment variable E(LDAP_BIND_PW).
    type: str
  start_tls:
    description:
      - Upgrade C(ldap://) connections with StartTLS before binding.
    type: bool
    default: false
  validate_certs:
    description:
      - Verify the server certificate for C(ldaps://) and StartTLS.
      - Only set to V(false) on a test directory.
    type: bool
    default: true
  ca_path:
    description:
      - A PEM file of CA certificates that signed the server certificate.
      - The system trust store is used when not set.
      - May come from the environment variable E(LDAP_CA_PATH).
    type: path
  connect_timeout:
    description: Seconds to wait for the TCP connection to each server.
    type: int
    default: 10
  receive_timeout:
    description: Seconds to wait for each answer of the server.
    type: int
    default: 120
  backend:
    description:
      - The library that speaks LDAP. Both give the same records and the same messages.
      - V(python-ldap), the binding of the C library libldap, reads several times faster. It needs a
        compiler and the libldap and SASL headers to install.
      - V(ldap3) is pure Python and installs anywhere.
      - V(auto) takes V(python-ldap) when it is importable, else V(ldap3).
    type: str
    default: auto
    choices: [auto, ldap3, python-ldap]
  dialect:
    description:
      - The kind of directory. It decides the stable id and the disabled rule, and the default filters.
      - V(ad) (Active Directory), id C(objectGUID) rendered as the canonical GUID string, disabled when
        C(userAccountControl) has bit 2 (ACCOUNTDISABLE) set.
      - V(openldap), id C(entryUUID), disabled when C(pwdAccountLockedTime) is present (ppolicy).
      - V(389) (389-DS, FreeIPA), id C(nsUniqueId), disabled when C(nsAccountLock) is C(true).
    type: str
    default: openldap
    choices: ['389', ad, openldap]
  id_attribute:
    description:
      - Overrides the dialect's stable id attribute (for example C(ms-DS-ConsistencyGuid), C(ipaUniqueID)).
      - The id links directory objects to target accounts; it must never change for an object.
    type: str
  disabled_filter:
    description:
      - Overrides the dialect's disabled rule, as an LDAP filter.
      - It is evaluated on the values read (not by the server), so it gives the same answer on every
        server. Supported are C(&), C(|), C(!), equality, presence, substrings, C(>=), C(<=) and the
        bitwise matching rules C(1.2.840.113556.1.4.803) (AND) and C(1.2.840.113556.1.4.804) (OR).
    type: str
  user_base_dn:
    description: Where users are searched.
    type: str
    required: true
  user_filter:
    description:
      - LDAP filter selecting the users in scope under O(user_base_dn).
      - Defaults to V((&(objectClass=user\)(!(objectClass=computer\)\)\)) for V(ad) and
        V((objectClass=inetOrgPerson\)) otherwise.
    type: str
  user_search_scope:
    description: Search the whole subtree under O(user_base_dn) or only its direct children.
    type: str
    default: subtree
    choices: [subtree, onelevel]
  user_groups:
    description:
      - DNs of targeted groups. When set, only users that match O(user_filter) B(and) are members of
        at least one of these groups are in scope (nested membership with O(nested_groups)).
    type: list
    elements: str
    default: []
  user_attributes:
    description:
      - Attributes read for each user. V(*) means every user attribute.
      - The id attribute and the attributes that the disabled rule needs are always read as well.
    type: list
    elements: str
    default: ['*']
  group_base_dn:
    description:
      - Where groups are searched. No groups are read when not set.
    type: str
  group_filter:
    description:
      - LDAP filter selecting the groups in scope.
      - Defaults to V((objectClass=group\)) for V(ad) and
        V((|(objectClass=groupOfNames\)(objectClass=groupOfUniqueNames\)\)) otherwise.
    type: str
  group_search_scope:
    description: Search the whole subtree under O(group_base_dn) or only its direct children.
    type: str
    default: subtree
    choices: [subtree, onelevel]
  group_name_attribute:
    description: Attribute holding a group's name.
    type: str
    default: cn
  nested_groups:
    description:
      - Flatten nested groups. A member of a group that is a member of a group counts as a member
        of both, for O(user_groups) and for each group's C(members).
      - Without it only direct members count.
    type: bool
    default: false
  nested_groups_method:
    description:
      - How O(nested_groups) resolves nested membership. Without O(nested_groups) it has no effect.
      - V(client) reads the C(member) values of the groups and descends into member groups itself. It works
        on every server.
      - V(in_chain) lets Active Directory resolve membership with LDAP_MATCHING_RULE_IN_CHAIN, in one search of
        the user scope per group, with V((memberOf:1.2.840.113556.1.4.1941:=<group DN>\)). Only with
        O(dialect=ad).
    type: str
    default: client
    choices: [client, in_chain]
  range_size:
    description:
      - Active Directory only (O(dialect=ad)). Ask for the C(member) values of each group in ranges of
        this many values (C(member;range=0-999), then C(member;range=1000-1999), and so on).
      - Without it the server decides. Windows answers a plain read of a group with more than 1500 members
        with C(member;range=0-1499); the other ranges are then read one by one, to the end.
    type: int
  page_size:
    description: Entries per page of each search (RFC 2696 paged results).
    type: int
    default: 500
"""

    # Environment variables for plugins; modules read the same ones through argument spec fallbacks.
    PLUGINS = r"""
options:
  server_uri:
    env:
      - name: LDAP_SERVER_URI
  bind_dn:
    env:
      - name: LDAP_BIND_DN
  bind_pw:
    env:
      - name: LDAP_BIND_PW
  ca_path:
    env:
      - name: LDAP_CA_PATH
"""

    # The same options as the suboptions of a sync module's ``source``.
    SOURCE = r"""
options:
  source:
    description:
      - Read the users and groups from the directory in this task, without passing them
        through Ansible variables (the fast path for large directories).
    type: dict
    suboptions:
      server_uri:
        description:
          - One or more directory servers as C(ldap://host[:port]) or C(ldaps://host[:port]).
          - They are tried in the order given; the first that answers is used (failover).
          - Required; may come from the environment variable E(LDAP_SERVER_URI) (comma-separated).
        type: list
        elements: str
      bind_dn:
        description:
          - DN to bind as. Anonymous bind when not set.
          - May come from the environment variable E(LDAP_BIND_DN).
        type: str
      bind_pw:
        description:
          - Password for O(source.bind_dn). Never shown in output or errors.
          - May come from the environment variable E(LDAP_BIND_PW).
        type: str
      start_tls:
        description:
          - Upgrade C(ldap://) connections with StartTLS before binding.
        type: bool
        default: false
      validate_certs:
        description:
          - Verify the server certificate for C(ldaps://) and StartTLS.
          - Only set to V(false) on a test directory.
        type: bool
        default: true
      ca_path:
        description:
          - A PEM file of CA certificates that signed the server certificate.
          - The system trust store is used when not set.
          - May come from the environment variable E(LDAP_CA_PATH).
        type: path
      connect_timeout:
        description: Seconds to wait for the TCP connection to each server.
        type: int
        default: 10
      receive_timeout:
        description: Seconds to wait for each answer of the server.
        type: int
        default: 120
      backend:
        description:
          - The library that speaks LDAP. Both give the same records and the same messages.
          - V(python-ldap), the binding of the C library libldap, reads several times faster. It needs a
            compiler and the libldap and SASL headers to install.
          - V(ldap3) is pure Python and installs anywhere.
          - V(auto) takes V(python-ldap) when it is importable, else V(ldap3).
        type: str
        default: auto
        choices: [auto, ldap3, python-ldap]
      dialect:
        description:
          - The kind of directory. It decides the stable id and the disabled rule, and the default filters.
          - V(ad) (Active Directory), id C(objectGUID) rendered as the canonical GUID string, disabled when
            C(userAccountControl) has bit 2 (ACCOUNTDISABLE) set.
          - V(openldap), id C(entryUUID), disabled when C(pwdAccountLockedTime) is present (ppolicy).
          - V(389) (389-DS, FreeIPA), id C(nsUniqueId), disabled when C(nsAccountLock) is C(true).
        type: str
        default: openldap
        choices: ['389', ad, openldap]
      id_attribute:
        description:
          - Overrides the dialect's stable id attribute (for example C(ms-DS-ConsistencyGuid), C(ipaUniqueID)).
          - The id links directory objects to target accounts; it must never change for an object.
        type: str
      disabled_filter:
        description:
          - Overrides the dialect's disabled rule, as an LDAP filter.
          - It is evaluated on the values read (not by the server), so it gives the same answer on every
            server. Supported are C(&), C(|), C(!), equality, presence, substrings, C(>=), C(<=) and the
            bitwise matching rules C(1.2.840.113556.1.4.803) (AND) and C(1.2.840.113556.1.4.804) (OR).
        type: str
      user_base_dn:
        description: Where users are searched.
        type: str
        required: true
      user_filter:
        description:
          - LDAP filter selecting the users in scope under O(source.user_base_dn).
          - Defaults to V((&(objectClass=user\)(!(objectClass=computer\)\)\)) for V(ad) and
            V((objectClass=inetOrgPerson\)) otherwise.
        type: str
      user_search_scope:
        description: Search the whole subtree under O(source.user_base_dn) or only its direct children.
        type: str
        default: subtree
        choices: [subtree, onelevel]
      user_groups:
        description:
          - DNs of targeted groups. When set, only users that match O(source.user_filter) B(and) are members of
            at least one of these groups are in scope (nested membership with O(source.nested_groups)).
        type: list
        elements: str
        default: []
      user_attributes:
        description:
          - Attributes read for each user. V(*) means every user attribute.
          - The id attribute and the attributes that the disabled rule needs are always read as well.
        type: list
        elements: str
        default: ['*']
      group_base_dn:
        description:
          - Where groups are searched. No groups are read when not set.
        type: str
      group_filter:
        description:
          - LDAP filter selecting the groups in scope.
          - Defaults to V((objectClass=group\)) for V(ad) and
            V((|(objectClass=groupOfNames\)(objectClass=groupOfUniqueNames\)\)) otherwise.
        type: str
      group_search_scope:
        description: Search the whole subtree under O(source.group_base_dn) or only its direct children.
        type: str
        default: subtree
        choices: [subtree, onelevel]
      group_name_attribute:
        description: Attribute holding a group's name.
        type: str
        default: cn
      nested_groups:
        description:
          - Flatten nested groups. A member of a group that is a member of a group counts as a member
            of both, for O(source.user_groups) and for each group's C(members).
          - Without it only direct members count.
        type: bool
        default: false
      nested_groups_method:
        description:
          - How O(source.nested_groups) resolves nested membership. Without O(source.nested_groups) it has no effect.
          - V(client) reads the C(member) values of the groups and descends into member groups itself. It works
            on every server.
          - V(in_chain) lets Active Directory resolve membership with LDAP_MATCHING_RULE_IN_CHAIN, in one search of
            the user scope per group, with V((memberOf:1.2.840.113556.1.4.1941:=<group DN>\)). Only with
            O(source.dialect=ad).
        type: str
        default: client
        choices: [client, in_chain]
      range_size:
        description:
          - Active Directory only (O(source.dialect=ad)). Ask for the C(member) values of each group in ranges of
            this many values (C(member;range=0-999), then C(member;range=1000-1999), and so on).
          - Without it the server decides. Windows answers a plain read of a group with more than 1500 members
            with C(member;range=0-1499); the other ranges are then read one by one, to the end.
        type: int
      page_size:
        description: Entries per page of each search (RFC 2696 paged results).
        type: int
        default: 500
"""
