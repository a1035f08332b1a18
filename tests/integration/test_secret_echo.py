# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""No secret leaks through a service that echoes the request back in its errors.

The echo service (tests/support/echo_service.py) puts the request line, its headers and its
body into each 4xx/5xx answer, at offsets from 0 to 1,500 characters and in five shapes. The
modules run through ansible-playbook at -vvvv with --diff and a log file; then stdout, stderr,
the log, the registered results and every file the run left are searched for each secret:
whole, any 8 consecutive characters of it, and its encoded forms (base64 of ``user:password``
and of the value, URL-encoded, JSON-escaped).
"""

from __future__ import annotations

import base64
import json
import secrets
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
import yaml
from support.echo_service import OFFSETS, SHAPES, EchoService
from support.playbook import run_playbook

from ansible_collections.idsync.provisioning.plugins.module_utils._http import HttpClient
from ansible_collections.idsync.provisioning.plugins.module_utils._model import ProvisioningError
from ansible_collections.idsync.provisioning.plugins.module_utils._secrets import SecretMasker

FQ = "idsync.provisioning."
SCIM_DISCOVERY = {
    ("GET", "/ServiceProviderConfig"): {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "patch": {"supported": True},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": 100},
        "etag": {"supported": False},
    },
    # Users are found absent, so user creates reach the echo (500: ambiguous, looked up, resent).
    ("GET", "/Users"): {"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": 0},
}


def fragments(value: str, size: int = 8) -> set[str]:
    return {value[i : i + size] for i in range(len(value) - size + 1)}


def forbidden_forms(value: str) -> set[str]:
    """The secret, each 8-character run of it, and the encodings it takes on the wire."""
    raw = value.encode()
    encoded = {
        quote(value, safe=""),
        quote_plus(value),
        json.dumps(value)[1:-1],
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    }
    return {value} | fragments(value) | encoded


def basic_forms(user: str, password: str) -> set[str]:
    """``base64(user:password)`` whole, and every 8-character run past the part that encodes the user."""
    pair = base64.b64encode(f"{user}:{password}".encode()).decode()
    user_part = -(-(len(user) + 1) // 3) * 4  # base64 characters that depend on the user name alone
    return {pair.rstrip("=")} | fragments(pair[user_part:])


def leaks(texts: dict[str, str], forms: dict[str, set[str]]) -> list[str]:
    found = []
    for where, text in texts.items():
        for secret_name, secret_forms in forms.items():
            hits = sorted(form for form in secret_forms if form in text)
            if hits:
                found.append(f"{secret_name} in {where}: {hits[:3]}")
    return found


def left_files(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): path.read_text(errors="replace")
        for path in root.rglob("*")
        if path.is_file() and path.name != "vars.json"  # vars.json is the test's own input, without secrets
    }


def echo_play(url: str) -> str:
    """Tasks that each reach the echo: group reads (4xx echoes), user creates (500 echoes, ambiguous)
    and a sync whose creates fail in the report."""
    conn = {"url": url}
    tasks = []
    for number in range(6):
        tasks.append({FQ + "scim_group_info": dict(conn, name=f"Readers {number}")})
        # The account's own password travels in the create's body, which the echo sends back.
        writer = dict(conn, user_name=f"writer{number}", attributes={"displayName": f"Writer {number}"})
        writer["password"] = "{{ lookup('ansible.builtin.env', 'ACCOUNT_PASSWORD') }}"
        tasks.append({FQ + "scim_user": writer})
    tasks.append({FQ + "scim_group": dict(conn, name="Echoed")})
    tasks.append(
        {
            FQ + "scim_sync": dict(
                conn,
                users=[{"id": "u1", "dn": "uid=u1,dc=example", "disabled": False, "attributes": {"uid": ["u1"]}}],
            )
        }
    )
    body = [dict(item, register=f"r{index}", ignore_errors=True) for index, item in enumerate(tasks)]
    record = "{{ {" + ", ".join(f"'r{i}': r{i}" for i in range(len(tasks))) + "} | to_json }}"
    body.append({"ansible.builtin.copy": {"content": record, "dest": "{{ record }}"}, "check_mode": False})
    return yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": body}], sort_keys=False)


@pytest.mark.parametrize("flow", ["bearer", "basic"])
def test_an_echoing_service_shows_no_secret_anywhere(tmp_path, flow):
    token = "scimtok-" + secrets.token_hex(20)
    user, password = "scim-admin", "scimpw-" + secrets.token_hex(16)
    account_password = "Acct-" + secrets.token_urlsafe(18)
    if flow == "bearer":
        env = {"SCIM_TOKEN": token}
        forms = {"token": forbidden_forms(token)}
    else:
        env = {"SCIM_USERNAME": user, "SCIM_PASSWORD": password}
        forms = {"password": forbidden_forms(password), "basic credentials": basic_forms(user, password)}
    env["ACCOUNT_PASSWORD"] = account_password
    forms["account password"] = forbidden_forms(account_password)
    log_file = tmp_path / "ansible.log"
    env["ANSIBLE_LOG_PATH"] = str(log_file)
    env["ANSIBLE_REMOTE_TEMP"] = str(tmp_path / "remote-tmp")

    with EchoService(answers=SCIM_DISCOVERY) as service:
        result = run_playbook(tmp_path, echo_play(service.url), env=env, diff=True, verbosity=4)
        shown = service.shown

    # The run reached the echo in every shape and at every offset, and every task failed on it.
    assert {shape for _offset, shape in shown} == set(SHAPES), shown
    assert {offset for offset, _shape in shown} == set(OFFSETS), shown
    assert result.output, result.text
    registered = result.output
    assert all(entry.get("failed") for entry in registered.values()), registered
    # The service's words still come through, masked: the failure names the echo, not the secret.
    messages = " ".join(entry.get("msg", "") for entry in registered.values())
    assert "debugging echo" in messages or "request rejected" in messages, messages
    assert "Authorization: ********" in messages or '"Authorization": "********"' in json.dumps(registered)

    texts = {"stdout": result.stdout, "stderr": result.stderr, "log": log_file.read_text()}
    texts["registered"] = json.dumps(registered)
    texts.update(left_files(tmp_path))
    assert leaks(texts, forms) == []


def test_oauth_form_bodies_are_masked_known_or_not(tmp_path):
    """A token endpoint echoing a client-credentials, refresh-token or JWT-bearer form post."""
    client_secret = "cs-" + secrets.token_hex(16)
    refresh_token = "rt-" + secrets.token_hex(24)
    assertion = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiI" + secrets.token_urlsafe(40) + ".c2ln"
    masker = SecretMasker([client_secret])  # the refresh token and the assertion: masked by pattern alone
    forms = {
        "client_secret": forbidden_forms(client_secret),
        "refresh_token": forbidden_forms(refresh_token),
        "assertion": forbidden_forms(assertion),
    }
    bodies = [
        {"grant_type": "client_credentials", "client_id": "app", "client_secret": client_secret},
        {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": "app"},
        {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion},
    ]
    texts = {}
    with EchoService() as service:
        client = HttpClient(service.url, retries=0, masker=masker)
        for number in range(len(OFFSETS) * len(SHAPES)):
            with pytest.raises(ProvisioningError) as failure:
                client.send("POST", "/oauth2/token", form=bodies[number % 3])
            texts[f"request {number} message"] = failure.value.message
            texts[f"request {number} details"] = json.dumps(failure.value.details)
        assert len(set(service.shown)) == len(OFFSETS) * len(SHAPES)
    assert any("client_secret=********" in text for text in texts.values())
    assert leaks(texts, forms) == []


def test_masking_comes_before_the_length_limit():
    """The reported defect: a 500 whose echo puts the token across the 500-character cut."""
    token = "scimtok-" + secrets.token_hex(20)
    masker = SecretMasker([token])
    for offset in range(440, 520):
        text = "x" * offset + f"Authorization: Bearer {token} and more"
        cut = masker.cut(text, 500)
        assert not fragments(token) & fragments(cut, 8), (offset, cut[-60:])
    # a token someone else cut is still masked, by value (its fragments) and by pattern
    assert masker.mask(f"echo: {token[:15]}") == "echo: ********"
    assert SecretMasker().mask("Authorization: Bearer abc123def") == "Authorization: ********"
