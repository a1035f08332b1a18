# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""More shapes a secret takes when a service echoes it (issue 15, item 3): HTML-escaped in a debug
page, a private key JSON-escaped in an echoed configuration file, a JWS carrying a token."""

from __future__ import annotations

import base64
import html
import json

import pytest

from ansible_collections.idsync.provisioning.plugins.module_utils._secrets import SecretMasker

PASSWORD = "Tr<ub>&\"le's P@ss"  # every character HTML escapes, and shorter runs between them than 8


@pytest.mark.parametrize(
    "shown",
    [
        html.escape(PASSWORD),
        html.escape(PASSWORD, quote=False),
        html.escape(PASSWORD).replace("&#x27;", "&#39;"),
    ],
)
def test_an_html_escaped_echo_of_a_password_is_masked(shown):
    page = f'<html><body><h1>400</h1><pre>POST /Users\n\n{{"x": 1}} {shown}</pre></body></html>'
    masked = SecretMasker([PASSWORD]).mask(page)
    assert shown not in masked
    assert "********" in masked and masked.startswith("<html><body><h1>400</h1>")


def test_a_private_key_json_escaped_in_an_echoed_configuration_is_masked():
    body = "MIIFHDBOBgkqhkiG9w0BBQ0wQTApBgkqhkiG9w0BBQwwHAQI" + "q" * 60 + "\nAbCdEfGh" * 5
    pem = f"-----BEGIN ENCRYPTED PRIVATE KEY-----\n{body}\n-----END ENCRYPTED PRIVATE KEY-----\n"
    echoed = json.dumps({"boxAppSettings": {"appAuth": {"privateKey": pem, "passphrase": "pp-0123456789"}}})
    for masker in (SecretMasker(), SecretMasker([pem, "pp-0123456789"])):
        masked = masker.mask(f"the gateway said: {echoed}")
        assert "PRIVATE KEY" not in masked and "AbCdEfGh" not in masked, masked
        assert "pp-0123456789" not in masked, masked


def test_a_jws_that_carries_a_token_in_its_header_is_masked_whole():
    token = "pingtok-" + "A1b2C3d4" * 3
    header = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "token": token}).encode()).decode().rstrip("=")
    jws = f"{header}.eyJyZXFCb2R5Ijp7fX0.c2lnbmF0dXJl"
    masked = SecretMasker().mask(f"refused: {jws} (invalid signature)")
    assert masked == "refused: ******** (invalid signature)"


def test_short_runs_between_escapes_do_not_mask_ordinary_text():
    masked = SecretMasker([PASSWORD]).mask("Trouble loading the page; P@ssing along")
    assert masked == "Trouble loading the page; P@ssing along"
