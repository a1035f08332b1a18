# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options of the PingID modules: the organisation's ``pingid.properties``, and how often a sync verifies.

``idsync.provisioning.pingid`` documents every option of ``connection_argument_spec`` in
``module_utils/pingid.py`` except TLS, the timeout and the proxy, which are in
``idsync.provisioning.connection``, shared with the other targets. ``VERIFICATION`` documents the
options ``pingid_sync`` alone takes (``_runner.VERIFICATION_ARGUMENT_SPEC``, added through
``pingid.TARGET.sync_options``).
"""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  url:
    description:
      - Base URL of the PingID API, the C(idp_url) of C(pingid.properties) (for example
        V(https://idpxnyl3m.pingidentity.com/pingid); Ping has C(.eu) and C(.com.au) variants). Every
        operation is a C(POST) to C(<url>/rest/4/<operation>/do).
      - When not given, the C(idp_url) of O(properties_file) (or O(idp_url)) is used. Set it only for a
        test service or a proxy that rewrites the address.
      - May come from the environment variable E(PINGID_URL).
    type: str
  properties_file:
    description:
      - Path of the C(pingid.properties) file an administrator of the PingID organisation downloads from
        its admin portal, the file PingFederate's PingID provisioner is given. It is a Java properties file;
        its escapes (C(\=), C(\:), C(\uXXXX)) are read as Java reads them.
      - Its C(org_alias), C(token), C(use_base64_key) and C(idp_url) are used; O(org_alias), O(token),
        O(base64_key) and O(idp_url) override them one by one.
      - 'Keep the file readable by the provisioning account only (mode 0600): its key signs every request.'
      - May come from the environment variable E(PINGID_PROPERTIES_FILE).
    type: path
  org_alias:
    description:
      - The organisation's alias (C(org_alias) of C(pingid.properties)), sent in every request's signed header.
      - Required unless O(properties_file) holds it. May come from E(PINGID_ORG_ALIAS).
    type: str
  token:
    description:
      - The API token (C(token) of C(pingid.properties)), sent in the signed header and as
        C(reqHeader.secretKey). Never shown in output, diffs or errors.
      - Required unless O(properties_file) holds it. May come from E(PINGID_TOKEN).
    type: str
  base64_key:
    description:
      - The signing key as C(pingid.properties) holds it (C(use_base64_key), base64, without the C(\)
        before C(=)). Its decoded bytes are the HMAC key of every request (HS256) and verify every reply.
        Never shown in output, diffs or errors.
      - Required unless O(properties_file) holds it. May come from E(PINGID_USE_BASE64_KEY).
    type: str
  idp_url:
    description:
      - The C(idp_url) of C(pingid.properties), the default of O(url).
      - Required unless O(properties_file) holds it or O(url) is given. May come from E(PINGID_IDP_URL).
    type: str
  default_role:
    description:
      - The PingID role (C(role)) of a user created without a mapped or given C(role), and sent by an
        EditUser when the record has none (EditUser replaces the whole record and needs one).
    type: str
    default: REGULAR
    choices: [ADMIN, REGULAR]
notes:
  - The token and the key are never shown, also not with C(-vvv) or in error messages.
  - Every reply is a JWS signed with the organisation's key; a reply whose signature does not verify is
    refused (the task fails naming PingID and the reason), whatever it says.
  - Requests carry a UTC timestamp; PingID refuses requests from a clock too far off, so keep the
    controller's clock synchronised (NTP).
  - PingID accounts inside a PingOne environment are managed with the PingOne API, not with this one; these
    modules do not cover PingOne yet.
  - 'MFA devices (the e-mail, SMS and voice devices of PingFederate''s PingID provisioner) are not managed:
    devices are left as they are.'
"""

    VERIFICATION = r"""
options:
  full_verification:
    description:
      - Read every PingID user in this run, through the organisation report (one C(CreateJob)
        C(USER_REPORTS) job, polled with C(GetJobStatus), then C(GetOrgReport) as JSON), and compare each
        managed account with the directory, instead of trusting what O(state_file) recorded.
      - It finds accounts deleted or changed behind the provisioner's back (in the admin portal), and it
        links existing accounts by user name (U1). Without it, a run reads only the accounts whose source
        changed since the last run, and a run where nothing changed reads nothing.
      - A state file that was never verified (a new one, or one that was lost) gets a full verification
        whatever this says. So does a run after O(verify_every_runs) runs or O(verify_max_age).
      - The report reflects PingID's data when its job finished, and PingID may serve a cached report up
        to 2 hours old; an account changed within that time may be seen as it was.
    type: bool
    default: false
  verify_every_runs:
    description:
      - Run a full verification (see O(full_verification)) when this many runs went by since the last one.
      - A negative number turns the count off (O(verify_max_age) still applies).
    type: int
    default: 24
  verify_max_age:
    description:
      - Run a full verification (see O(full_verification)) when the last one is at least this old, as a
        number of seconds or a duration with a unit (V(90m), V(12h), V(7d); units C(s), C(m), C(h), C(d)).
      - V(never) (or an empty value) turns the age off (O(verify_every_runs) still applies).
    type: str
    default: 7d
"""
