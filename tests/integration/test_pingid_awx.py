# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""docs/awx/credential_types/pingid.yml: what AWX would accept, and what it injects drives the modules.

The credential type is validated and rendered with the helpers of test_awx_runner.py (which follow
AWX's own code); the injected environment is then the only configuration of a pingid_user_info run
through ansible-playbook against the PingID fake (which verifies every request's signature, token
and org), once with the whole pingid.properties pasted, once with its four values.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from integration.test_awx_runner import AWX_DIR, awx_inject, credential_type_errors, load_yaml
from support.pingid_fake import serving
from support.playbook import run_playbook

from ansible_collections.idsync.provisioning.plugins.module_utils import pingid

PINGID_TYPE = load_yaml(AWX_DIR / "credential_types" / "pingid.yml")
PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Read one user, configured by the environment only
      idsync.provisioning.pingid_user_info:
        user_name: jdoe
      register: found
    - name: Record
      ansible.builtin.copy:
        content: "{{ found | to_json }}"
        dest: "{{ record }}"
        mode: "0600"
"""
FILE_VARIABLE = "PINGID_PROPERTIES_FILE"


def module_env() -> dict[str, tuple[str, bool]]:
    """Environment variable -> (option, no_log) of the PingID modules' connection options."""
    spec = pingid.connection_argument_spec()
    return {
        option_spec["fallback"][1][0]: (option, bool(option_spec.get("no_log")))
        for option, option_spec in spec.items()
        if "fallback" in option_spec
    }


@pytest.fixture
def fake():
    with serving() as service:
        yield service


def test_the_pingid_credential_type_is_accepted_by_awx():
    assert credential_type_errors(PINGID_TYPE) == []
    assert PINGID_TYPE["kind"] == "cloud"
    assert PINGID_TYPE["name"].startswith("idsync ") and PINGID_TYPE["description"].strip()
    for entry in PINGID_TYPE["inputs"]["fields"]:
        assert entry.get("label") and entry.get("help_text"), entry["id"]


def test_the_pingid_credential_type_injects_the_module_env_fallbacks():
    """Every injected variable is a fallback of a PingID module option (PINGID_URL, for a test service
    only, is left out); a secret field feeds a no_log option and a no_log option a secret field. The
    pasted file, which holds the key, is a secret field written to a file of the job."""
    expected = module_env()
    injected = PINGID_TYPE["injectors"]["env"]
    assert set(injected) == set(expected) - {"PINGID_URL"}, sorted(set(expected))
    secret = {entry["id"]: entry.get("secret", False) for entry in PINGID_TYPE["inputs"]["fields"]}
    for variable, template in injected.items():
        used = set(re.findall(r"\b([a-z0-9_]+)\b", template)) & set(secret)
        assert len(used) == 1, (variable, template)
        field = used.pop()
        if variable == FILE_VARIABLE:
            assert secret[field] is True, "the pasted pingid.properties holds the key"
        else:
            assert secret[field] == expected[variable][1], variable


@pytest.mark.parametrize("how", ["whole file", "four values"])
def test_the_injected_environment_drives_a_pingid_module(fake, tmp_path, how):
    fake.seed_user("jdoe", "Jane", "Doe", "jane.doe@example.com")
    (tmp_path / "env").mkdir()
    org = fake.org.properties()
    if how == "whole file":
        inputs = {"properties": fake.org.properties_text()}
    else:
        inputs = {name: org[name] for name in ("org_alias", "token", "use_base64_key", "idp_url")}
    env = awx_inject(PINGID_TYPE, {"ca_certificate": "", **inputs}, tmp_path)
    assert env["PINGID_CA_PATH"] == ""
    if how == "whole file":
        assert Path(env[FILE_VARIABLE]).parent == tmp_path / "env"
        assert env["PINGID_TOKEN"] == env["PINGID_USE_BASE64_KEY"] == ""
    else:
        assert env[FILE_VARIABLE] == "" and env["PINGID_TOKEN"] == org["token"]

    result = run_playbook(tmp_path / "play", PLAY, {}, env)

    assert result.rc == 0, result.text[-3000:]
    assert result.output["user"]["key"] == "jdoe"
    assert result.output["user"]["resource"]["email"] == "jane.doe@example.com"
    assert fake.operations() == ["GetUserDetails"]
    for value in (org["token"], org["use_base64_key"]):
        assert value not in result.text, "a secret of the credential in the output"
