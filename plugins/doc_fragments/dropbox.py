# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection options of the Dropbox modules: the team API, the app's authentication, and what deprovisioning does.

``idsync.provisioning.dropbox`` documents every option of ``connection_argument_spec`` in
``module_utils/dropbox.py`` except TLS, the timeout and the proxy, which are in
``idsync.provisioning.connection``, shared with the other targets. That spec is one set for every
Dropbox module, so each Dropbox module takes (and documents) all of them, also those that act only
on some modules (the deprovisioning options, ``send_welcome_email``); their descriptions say which.
"""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  url:
    description:
      - Base URL of Dropbox's API (every route of the team API is a C(POST) under it, for example
        C(/team/members/list_v2)).
      - May come from the environment variable E(DROPBOX_URL). Change it only for a test service.
    type: str
    default: https://api.dropboxapi.com/2
  token_url:
    description:
      - Dropbox's OAuth 2.0 token endpoint, where O(refresh_token) is exchanged for a short-lived access
        token. It is not under O(url).
      - May come from the environment variable E(DROPBOX_TOKEN_URL).
    type: str
    default: https://api.dropboxapi.com/oauth2/token
  app_key:
    description:
      - The Dropbox app's key (App Console, C(Settings)), the OAuth client ID of the refresh-token grant.
      - Required with O(refresh_token).
      - May come from the environment variable E(DROPBOX_APP_KEY).
    type: str
  app_secret:
    description:
      - The Dropbox app's secret, sent with the refresh-token grant. Leave it out only for an app that
        got its refresh token with PKCE. Never shown in output, diffs or errors.
      - May come from the environment variable E(DROPBOX_APP_SECRET).
    type: str
  refresh_token:
    description:
      - A refresh token of a team admin for the app, from the authorization-code flow with
        C(token_access_type=offline) (see the collection's C(docs/targets/dropbox.md)). The modules exchange it
        at O(token_url) for an access token (about four hours long), renew that 300 seconds before it expires,
        and once more when Dropbox answers C(expired_access_token). Never shown in output, diffs or errors.
      - With O(app_key) (and O(app_secret)) this is the way to sign in for scheduled runs.
      - May come from the environment variable E(DROPBOX_REFRESH_TOKEN).
    type: str
  access_token:
    description:
      - A ready team access token, used as it is and never renewed (a short-lived token stops working after
        about four hours); for tests. Never shown in output, diffs or errors.
      - Mutually exclusive with O(refresh_token), O(app_key) and O(app_secret) (also when they come from the
        environment).
      - May come from the environment variable E(DROPBOX_ACCESS_TOKEN).
    type: str
  wipe_data:
    description:
      - Whether suspending or removing a member also erases the Dropbox files on the member's linked
        devices (computers, phones) the next time they connect. The files in the team's Dropbox are not
        affected either way.
      - B(Always sent), as V(false) unless this is V(true), since Dropbox's own default, when the field is left out,
        is V(true).
      - Must be V(false) with O(keep_account) and O(retain_team_shares).
      - Acts on M(idsync.provisioning.dropbox_user) (C(enabled=false), C(state=absent)) and on
        M(idsync.provisioning.dropbox_sync) (deprovisioning); the other modules ignore it.
    type: bool
    default: false
  keep_account:
    description:
      - When a member is removed, turn their account into a Basic (personal) Dropbox account instead of
        closing it. The person keeps the e-mail address and the files of the account that are not
        restricted to team members; the team's content stays with the team.
      - Needs O(wipe_data=false). Not with O(transfer_dest_id) nor O(permanently_delete_files). Dropbox refuses
        it for an invited member (there is no account yet), so an invitation is revoked without it.
      - Acts on M(idsync.provisioning.dropbox_user) (C(state=absent)) and on
        M(idsync.provisioning.dropbox_sync) (C(remove_user_action=delete)); the other modules ignore it.
    type: bool
    default: false
  retain_team_shares:
    description:
      - With O(keep_account=true), the Basic account keeps access to the folders that were shared with the
        person explicitly (not through a group), where the folder allows sharing outside the team.
      - Needs O(keep_account=true) and O(wipe_data=false).
      - Acts on M(idsync.provisioning.dropbox_user) and M(idsync.provisioning.dropbox_sync), like O(keep_account).
    type: bool
    default: false
  transfer_dest_id:
    description:
      - When a member is removed, move their files to this member, given by e-mail address or by
        C(team_member_id). Dropbox puts them in a folder named after the removed member.
      - Needs O(transfer_admin_id). Not with O(keep_account) nor O(permanently_delete_files). The receiver cannot
        itself be removed in the same run (C(member_is_transfer_destination)).
      - Acts on M(idsync.provisioning.dropbox_user) and M(idsync.provisioning.dropbox_sync), like O(keep_account).
    type: str
  transfer_admin_id:
    description:
      - The team admin who is told, by e-mail, of errors while the files of a removed member are moved to
        O(transfer_dest_id); by e-mail address or C(team_member_id).
      - Required with O(transfer_dest_id), and only with it.
    type: str
  permanently_delete_files:
    description:
      - When a member is removed, delete their files permanently; an admin can then neither restore them
        nor transfer them later in the Admin Console, also not within the 7 days the member can be recovered.
      - B(Never sent) unless this is V(true). Not with O(keep_account) nor O(transfer_dest_id).
      - Acts on M(idsync.provisioning.dropbox_user) and M(idsync.provisioning.dropbox_sync), like O(keep_account).
    type: bool
    default: false
  send_welcome_email:
    description:
      - Whether Dropbox e-mails each new member an invitation to join the team (C(send_welcome_email) of
        C(members/add_v2)). Set it to V(false) where single sign-on is enforced and people sign in without
        an invitation.
      - Acts on M(idsync.provisioning.dropbox_user) and M(idsync.provisioning.dropbox_sync) (creates); the other
        modules ignore it.
    type: bool
    default: true
  disable_invited:
    description:
      - What disabling a member who is still C(invited) (has not joined yet) does. Dropbox cannot suspend an
        invited member (C(suspend_inactive_user)).
      - V(revoke) (the default) revokes the invitation (C(members/remove) with O(wipe_data) and nothing else, since an
        invited member has no content, and no account to keep). The member is then C(removed), and is listed
        by neither the modules nor the sync; a later create invites the person again (recovering the member
        while Dropbox still can).
      - V(fail) leaves the invitation open and fails that user with a message saying so.
      - Deleting an invited member (C(state=absent), C(remove_user_action=delete)) always revokes
        the invitation.
      - Acts on M(idsync.provisioning.dropbox_user) and M(idsync.provisioning.dropbox_sync); the other modules
        ignore it.
    type: str
    default: revoke
    choices: [revoke, fail]
notes:
  - The app secret, the refresh token and the access token are never shown, also not with C(-vvv) or in
    error messages.
  - The app needs the scopes C(members.read), C(members.write), C(members.delete) (remove and recover),
    C(groups.read) and C(groups.write); Dropbox answers a missing one with C(401 missing_scope), which the
    task's message names.
  - Dropbox does not publish its rate limits. Answers 429 (C(too_many_requests), C(too_many_write_operations))
    are retried after their C(retry_after) (or C(Retry-After)) seconds.
"""
