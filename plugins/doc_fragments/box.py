# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection options of the Box modules: the API, the authentication, and how users and groups are written.

``idsync.provisioning.box`` documents every option of ``connection_argument_spec`` in
``module_utils/box.py`` except TLS, the timeout and the proxy, which are in
``idsync.provisioning.connection``, shared with the other targets. That spec is one set for every
Box module, so each Box module takes (and documents) all of them, also those that act only on
some modules (the delete options, ``provenance``); their descriptions say which.
"""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  url:
    description:
      - Base URL of Box's API.
      - May come from the environment variable E(BOX_URL). Change it only for a test service or a proxy
        that rewrites addresses.
    type: str
    default: https://api.box.com/2.0
  token_url:
    description:
      - Box's OAuth 2.0 token endpoint, where the Client Credentials Grant and the JWT assertion are
        exchanged for an access token. It is not under O(url).
      - May come from the environment variable E(BOX_TOKEN_URL).
      - The JWT assertion's audience is always V(https://api.box.com/oauth2/token), whatever this says.
    type: str
    default: https://api.box.com/oauth2/token
  client_id:
    description:
      - The Box app's client ID (Developer Console, C(Configuration)).
      - With O(client_secret) and O(enterprise_id) and no JWT option, the modules authenticate with the
        Client Credentials Grant (C(box_subject_type=enterprise)). With O(jwt_key_id) and
        O(jwt_private_key) (or O(jwt_private_key_file)), with JWT.
      - May come from the environment variable E(BOX_CLIENT_ID). Not with O(config_file), which holds it.
    type: str
  client_secret:
    description:
      - The Box app's client secret, for both grants. Never shown in output, diffs or errors.
      - May come from the environment variable E(BOX_CLIENT_SECRET). Not with O(config_file), which holds it.
    type: str
  enterprise_id:
    description:
      - The Box enterprise ID the app acts in (the token's subject).
      - Required for the Client Credentials Grant and for JWT; with O(config_file), the file's
        C(enterpriseID) is used when this is not set.
      - May come from the environment variable E(BOX_ENTERPRISE_ID).
    type: str
  config_file:
    description:
      - The JWT app's JSON configuration file as the Developer Console downloads it
        (C(boxAppSettings) with C(clientID), C(clientSecret) and C(appAuth), and C(enterpriseID)).
        Giving it selects JWT authentication.
      - Mutually exclusive with O(client_id), O(client_secret), O(jwt_key_id), O(jwt_private_key) and
        O(jwt_private_key_file) (also when they come from the environment). O(jwt_passphrase) and
        O(enterprise_id), when set, take precedence over the file's values.
      - May come from the environment variable E(BOX_CONFIG_FILE).
      - The file holds the app's secrets; keep it readable only by the account that runs the sync.
    type: path
  jwt_key_id:
    description:
      - The ID of the public key registered with the Box app (C(publicKeyID)), sent as the JWT's C(kid),
        for JWT without O(config_file).
      - May come from the environment variable E(BOX_JWT_KEY_ID).
    type: str
  jwt_private_key:
    description:
      - The PEM private key of the JWT app (PKCS#8, encrypted or not), for JWT without O(config_file).
        Never shown in output, diffs or errors.
      - May come from the environment variable E(BOX_JWT_PRIVATE_KEY). Mutually exclusive with O(jwt_private_key_file).
    type: str
  jwt_private_key_file:
    description:
      - A file holding the PEM private key of the JWT app, instead of O(jwt_private_key).
      - May come from the environment variable E(BOX_JWT_PRIVATE_KEY_FILE).
    type: path
  jwt_passphrase:
    description:
      - The passphrase of an encrypted private key. Never shown in output, diffs or errors.
      - May come from the environment variable E(BOX_JWT_PASSPHRASE). With O(config_file), the file's
        C(passphrase) is used when this is not set.
    type: str
  access_token:
    description:
      - A ready access token (for example a developer token), used as it is and never renewed; for tests.
        Never shown in output, diffs or errors.
      - Mutually exclusive with the grant options (O(client_id), O(client_secret), O(config_file), and the JWT options).
      - May come from the environment variable E(BOX_ACCESS_TOKEN).
    type: str
  provenance:
    description:
      - The C(provenance) written on every group created, and on every existing group when it is linked
        (given its C(external_sync_identifier)). Box then keeps admins from editing the group's name and
        members in the web app, as a one-way sync needs.
      - At most 255 characters.
      - Acts on M(idsync.provisioning.box_group) and M(idsync.provisioning.box_sync); the other modules ignore it.
    type: str
    default: idsync.provisioning
  delete_notify:
    description:
      - Whether Box notifies a user whose account is deleted (C(notify)).
      - Acts on M(idsync.provisioning.box_user) (C(state=absent)) and on
        M(idsync.provisioning.box_sync) (C(remove_user_action=delete)); the other modules ignore it.
    type: bool
    default: false
  delete_force:
    description:
      - Delete users even when they still own content (Box's C(force)). The content is then lost.
      - Off by default; move the content first with O(transfer_content_to) instead. Retention and legal
        hold policies refuse a delete (403) even with force.
      - Acts on M(idsync.provisioning.box_user) and M(idsync.provisioning.box_sync); the other modules ignore it.
    type: bool
    default: false
  transfer_content_to:
    description:
      - Before a user is deleted, move all of their content (their root folder) to this managed user,
        given by login or by numeric user ID. Box puts it in a folder named after the deleted user.
      - The app needs the C(root_readwrite) scope. When the move fails, the user is not deleted.
      - Box may go on moving after it answered. A delete that then fails because content is left is
        reported and tried again by the next run.
      - Acts on M(idsync.provisioning.box_user) and M(idsync.provisioning.box_sync); the other modules ignore it.
    type: str
  overwrite_restricted_status:
    description:
      - Box users whose C(status) is V(cannot_delete_edit) or V(cannot_delete_edit_upload) count as enabled,
        and a C(status) among the managed attributes (mapped, or in C(attributes)) does not overwrite
        theirs unless this is V(true). Disabling (C(inactive)) is not affected.
      - Acts on M(idsync.provisioning.box_user) and M(idsync.provisioning.box_sync); the other modules ignore it.
    type: bool
    default: false
notes:
  - Box's API allows about 1000 requests per minute per user. Answers 429 and 503 are retried after
    their C(retry-after) header; a create answered 503 is looked up before it is sent again.
"""
