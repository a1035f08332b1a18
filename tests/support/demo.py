# -*- coding: utf-8 -*-
"""`make demo`: start the bundled sample directory, show what is in scope, stop what was started."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from support.slapd import SlapdServer  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN_DIR = Path(sys.executable).parent


def banner(text: str) -> None:
    print(f"\n=== {text} ===\n", flush=True)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="idsync-demo-") as workdir, SlapdServer(Path(workdir) / "slapd") as ldap:
        banner(f"sample directory running at {ldap.uri} (pid {ldap.pid})")
        inventory = Path(workdir) / "inventory.ini"
        inventory.write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
        env = dict(os.environ)
        env.update(
            {
                "ANSIBLE_COLLECTIONS_PATH": str(REPO_ROOT / ".build" / "collections"),
                "ANSIBLE_NOCOLOR": "1",
                "LDAP_SERVER_URI": ldap.uri,
                "LDAP_BIND_DN": ldap.reader_dn,
                "LDAP_BIND_PW": ldap.reader_pw,
                "LDAP_USER_BASE_DN": "ou=people,dc=example,dc=org",
                "LDAP_GROUP_BASE_DN": "ou=groups,dc=example,dc=org",
            }
        )
        banner("users and groups in scope, read through idsync.provisioning.ldap_source")
        proc = subprocess.run(
            [str(BIN_DIR / "ansible-playbook"), "-i", str(inventory), str(REPO_ROOT / "playbooks" / "directory_preview.yml")],
            env=env,
            check=False,
        )
        banner("stopping the sample directory")
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
