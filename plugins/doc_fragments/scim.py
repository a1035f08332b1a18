# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection options of every SCIM module."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  url:
    description:
      - Base URL of the SCIM 2.0 service, the part before C(/Users) (for example C(https://scim.example.com/v2)).
      - Required; may come from the environment variable E(SCIM_URL).
    type: str
  token:
    description:
      - Bearer token. Never shown in output, diffs or errors.
      - May come from the environment variable E(SCIM_TOKEN).
      - Mutually exclusive with O(username).
    type: str
  username:
    description:
      - User name for HTTP basic authentication, for services that use it instead of a token.
      - May come from the environment variable E(SCIM_USERNAME).
    type: str
  password:
    description:
      - Password for O(username). May come from the environment variable E(SCIM_PASSWORD).
    type: str
  validate_certs:
    description:
      - Verify the service's TLS certificate. Only set to V(false) for a test service.
    type: bool
    default: true
  ca_path:
    description:
      - A PEM file of CA certificates to verify the service with, instead of the system trust store.
      - May come from the environment variable E(SCIM_CA_PATH).
    type: path
  timeout:
    description: Seconds to wait for each answer of the service.
    type: int
    default: 60
  use_patch:
    description:
      - Update with PATCH (only the changed attributes) or PUT (the whole resource, unmapped
        attributes carried over as read).
      - By default PATCH is used when C(/ServiceProviderConfig) announces it.
    type: bool
  use_bulk:
    description:
      - Create users through C(/Bulk) when the service offers it. Off by default; V(true) uses bulk
        when C(/ServiceProviderConfig) announces it.
    type: bool
    default: false
  member_chunk:
    description: Largest number of members added or removed in one PATCH of a group.
    type: int
    default: 100
  page_size:
    description:
      - Resources asked for per page when listing (C(count)). Lowered to the service's C(maxResults).
    type: int
    default: 100
  group_external_id:
    description:
      - Store this provisioner's ownership marker in the groups' C(externalId).
      - Turn off for services that refuse C(externalId) on groups; the markers of managed groups are then
        kept in the state file (the sync module's O(idsync.provisioning.scim_sync#module:state_file) becomes required when groups are managed).
    type: bool
    default: true
"""
