# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The molecule scenario of the sync role, ``extensions/molecule/sync_scim``, run as a user would.

``cd extensions && molecule test -s sync_scim``: create (a real slapd and a real scim2-server),
converge, idempotence, verify (the SCIM service read back over HTTP), destroy. The test checks
that every step ran and passed, and that destroy left no server running and no state behind.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN_DIR = Path(sys.executable).parent
ANSI = re.compile(r"\x1b\[[0-9;]*m")
STEPS = ("destroy", "syntax", "create", "converge", "idempotence", "verify")


def processes_mentioning(text: str) -> list[tuple[int, str]]:
    """(pid, command line) of every process whose command line contains ``text``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                cmdline = handle.read().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if text in cmdline:
            found.append((int(entry), cmdline))
    return found


def step_output(output: str, step: str) -> str:
    """What molecule printed between the start and the end of one step (either log style)."""
    start = re.search(rf"(?:\[sync_scim > {step}\]|sync_scim ➜ {step}:) Executing", output)
    assert start, f"{step} never started:\n{output[-6000:]}"
    end = re.compile(rf"(?:\[sync_scim > {step}\]|sync_scim ➜ {step}:) Executed").search(output, start.end())
    assert end, f"{step} never finished:\n{output[-6000:]}"
    return output[start.end() : end.start()]


@pytest.mark.slow
def test_molecule_sync_scim_scenario_passes(tmp_path):
    ephemeral = tmp_path / "ephemeral"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LDAP", "SCIM_", "MOLECULE_"))}
    env.update(
        {
            "ANSIBLE_COLLECTIONS_PATH": str(REPO_ROOT / ".build" / "collections"),
            "PATH": f"{BIN_DIR}{os.pathsep}{env.get('PATH', '')}",  # molecule runs ansible-config, ansible-playbook
            "MOLECULE_EPHEMERAL_DIRECTORY": str(ephemeral),  # the servers' files and pids go here
            "NO_COLOR": "1",
            "ANSIBLE_NOCOLOR": "1",
        }
    )
    proc = subprocess.run(
        [str(BIN_DIR / "molecule"), "test", "-s", "sync_scim"],
        cwd=REPO_ROOT / "extensions",
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # molecule's log and the playbooks' output, in order
        text=True,
        timeout=900,
        check=False,
    )
    output = ANSI.sub("", proc.stdout)
    assert proc.returncode == 0, output[-6000:]
    for step in STEPS:
        assert re.search(rf"^sync_scim (?:➜|>) {step}: Executed: Successful", output, re.M), (
            f"{step} did not pass:\n{output[-6000:]}"
        )
    assert re.search(r"sync_scim\s+: actions=7\s+successful=7 .*failed=0", output), output[-3000:]
    # converge changed the service; the second converge (idempotence) changed nothing
    converge = step_output(output, "converge")
    assert re.search(r"localhost\s+: ok=\d+\s+changed=1 ", converge), converge[-3000:]
    assert "Summary of the sync" in converge and "users: 7 created" in converge
    idempotence = step_output(output, "idempotence")
    assert re.search(r"localhost\s+: ok=\d+\s+changed=0 ", idempotence), idempotence[-3000:]
    assert "scim sync: nothing to change" in idempotence
    # destroy stopped both servers and removed their files
    assert processes_mentioning(str(ephemeral)) == []
    assert not (ephemeral / "servers").exists()
    assert not (ephemeral / "servers.yml").exists()
