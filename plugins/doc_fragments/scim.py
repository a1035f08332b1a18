# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection options of the SCIM modules, in pieces: each module names only those that act on it.

``idsync.provisioning.scim`` (every module): the service, its credentials, paging; TLS, timeout and
proxy are in ``idsync.provisioning.connection``, shared with the other targets.
``idsync.provisioning.scim.writes``: how users and groups are written (``scim_user``, ``scim_group``,
``scim_sync``). ``idsync.provisioning.scim.members``: membership changes (``scim_group``,
``scim_sync``). ``idsync.provisioning.scim.sync_only``: what only the sync acts on (not ``.sync``: that name
would load the ``sync`` fragment). ``idsync.provisioning.scim.auth_aliases``:
the former names of the basic-auth options, on the modules that have no account option of that name.
The argument spec is built from the same pieces (``module_utils/scim.py``, ``connection_argument_spec``).
"""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  url:
    description:
      - Base URL of the SCIM 2.0 service, the part before C(/Users) (for example V(https://scim.example.com/v2)).
      - Required; may come from the environment variable E(SCIM_URL).
      - The CA file O(ca_path) may come from E(SCIM_CA_PATH).
    type: str
  token:
    description:
      - Bearer token. Never shown in output, diffs or errors.
      - May come from the environment variable E(SCIM_TOKEN).
      - Mutually exclusive with O(auth_username).
    type: str
  auth_username:
    description:
      - User name with which this collection authenticates to the service, with HTTP basic
        authentication, for services that use it instead of a token. Not an account to manage.
      - May come from the environment variable E(SCIM_USERNAME).
    type: str
  auth_password:
    description:
      - Password for O(auth_username). Never shown in output, diffs or errors.
      - May come from the environment variable E(SCIM_PASSWORD).
    type: str
  page_size:
    description:
      - Resources asked for per page when listing (C(count)). Lowered to the service's C(maxResults).
    type: int
    default: 100
"""

    # use_patch: modules that write users or groups.
    WRITES = r"""
options:
  use_patch:
    description:
      - Update with PATCH (only the changed attributes) or PUT (the whole resource, unmapped
        attributes carried over as read).
      - By default PATCH is used when C(/ServiceProviderConfig) announces it.
    type: bool
"""

    # member_chunk: modules that change group memberships.
    MEMBERS = r"""
options:
  member_chunk:
    description: Largest number of members added or removed in one PATCH of a group.
    type: int
    default: 100
"""

    # Options only the sync acts on.
    SYNC_ONLY = r"""
options:
  use_bulk:
    description:
      - Create users through C(/Bulk) when the service offers it. Off by default; V(true) uses bulk
        when C(/ServiceProviderConfig) announces it.
    type: bool
    default: false
  group_external_id:
    description:
      - Store this provisioner's ownership marker in the groups' C(externalId).
      - Turn off for services that refuse C(externalId) on groups; the markers of managed groups are then
        kept in the state file (O(state_file) becomes required when groups are managed).
    type: bool
    default: true
"""

    # The former names of the basic-auth options, kept on modules without an account option of that name
    # (not on scim_user, whose password is the account's, nor scim_user_info, which reads accounts by user_name).
    AUTH_ALIASES = r"""
options:
  auth_username:
    aliases: [username]
  auth_password:
    aliases: [password]
"""
