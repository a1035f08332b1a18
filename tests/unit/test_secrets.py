# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The masking rule of _secrets: every form of a secret, fragments, patterns; nothing else."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote, quote_plus

import pytest

from ansible_collections.idsync.provisioning.plugins.module_utils._secrets import SecretMasker, mask_patterns

SECRET = "p@ss w0rd/with+odd=chars\"and'quotes"


@pytest.mark.parametrize(
    "form",
    [
        SECRET,
        quote(SECRET, safe=""),
        quote_plus(SECRET),
        json.dumps(SECRET)[1:-1],
        base64.b64encode(SECRET.encode()).decode(),
        SECRET[3:14],  # a piece someone else cut out
    ],
)
def test_every_wire_form_of_a_known_secret_is_masked(form):
    masked = SecretMasker([SECRET]).mask(f"the service said: {form} (end)")
    assert form not in masked
    assert masked.startswith("the service said: ") and masked.endswith(" (end)")


def test_basic_credentials_are_masked_but_the_user_name_is_not():
    masker = SecretMasker()
    masker.add_credentials("scim-admin", "scimpw-cbc5678901")
    header = base64.b64encode(b"scim-admin:scimpw-cbc5678901").decode()
    assert (
        masker.mask(f"header {header[:20]} was refused for scim-admin") == "header ******** was refused for scim-admin"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer abc.def-123", "Authorization: ********"),
        ('{"authorization": "Token 0123456789abcdef"}', '{"authorization": "********"}'),
        ("{'Authorization': 'Basic c2NpbTpwdw=='}", "{'Authorization': '********'}"),
        ("sent Bearer 0123456789abcdef here", "sent Bearer ******** here"),
        (
            "grant_type=refresh_token&refresh_token=r-123&client_id=x",
            "grant_type=refresh_token&refresh_token=********&client_id=x",
        ),
        ('{"client_secret": "s3cr3t", "password": "cut-off', '{"client_secret": "********", "password": "********'),
        ('detail: {\\"secretKey\\": \\"abc\\"}', 'detail: {\\"secretKey\\": \\"********\\"}'),
        ("jws eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig", "jws ********"),
        ("key -----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY----- done", "key ******** done"),
    ],
)
def test_patterns_mask_what_is_secret_by_its_shape(text, expected):
    assert mask_patterns(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Basic authentication is not enabled",
        "the token endpoint answered 400",
        "userName jsmith already exists (scimType uniqueness)",
        "POST /Users: 409 user_login_already_used",
    ],
)
def test_ordinary_messages_are_left_alone(text):
    assert SecretMasker(["not-in-these-messages"]).mask(text) == text


def test_cut_masks_first():
    token = "tok-" + "0123456789abcdef" * 3
    text = "x" * 490 + token
    assert SecretMasker([token]).cut(text, 500) == "x" * 490 + "********"
