# -*- coding: utf-8 -*-
"""`make demo`: the main job on the embedded default, end to end.

Starts the bundled sample directory (slapd) and a local SCIM service (scim2-server), then runs
``playbooks/scim_sync.yml``: the preview (--check --diff), the apply, a second apply that
changes nothing, and, after three changes in the directory (a new user, a disabled user, a
renamed group), the preview and the apply of exactly those. It stops what it started.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from support.scim_server import ScimServer  # noqa: E402
from support.slapd import SlapdServer  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN_DIR = Path(sys.executable).parent
PEOPLE = "ou=people,dc=example,dc=org"
GROUPS = "ou=groups,dc=example,dc=org"


def banner(text: str) -> None:
    line = "=" * 78
    print(f"\n{line}\n  {text}\n{line}", flush=True)


def demo_vars(ldap: SlapdServer) -> dict:
    return {
        "sync_target": "scim",
        "sync_source": {
            "server_uri": [ldap.uri],
            "dialect": "openldap",
            "user_base_dn": PEOPLE,
            "group_base_dn": GROUPS,
            "group_search_scope": "onelevel",
            "group_filter": "(|(cn=Engineering)(cn=Platform*)(cn=Sales))",
            "nested_groups": True,
        },
        "sync_policy": {"remove_user_action": "disable", "max_disables": "50%"},
    }


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="idsync-demo-") as workdir:
        work = Path(workdir)
        with SlapdServer(work / "slapd") as ldap, ScimServer() as scim:
            banner(f"sample directory {ldap.uri} (pid {ldap.pid}), SCIM service {scim.url} (pid {scim.pid})")
            inventory = work / "inventory.ini"
            inventory.write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
            vars_file = work / "demo-vars.json"
            vars_file.write_text(json.dumps(demo_vars(ldap)))
            env = dict(os.environ)
            env.update(
                {
                    "ANSIBLE_COLLECTIONS_PATH": str(REPO_ROOT / ".build" / "collections"),
                    "ANSIBLE_NOCOLOR": "1",
                    "ANSIBLE_RETRY_FILES_ENABLED": "0",
                    # secrets reach the modules through the environment, as an AWX credential injects them
                    "LDAP_BIND_DN": ldap.reader_dn,
                    "LDAP_BIND_PW": ldap.reader_pw,
                    "SCIM_URL": scim.url,
                    "SCIM_TOKEN": scim.token,
                }
            )

            def playbook(title: str, *flags: str) -> None:
                banner(title)
                command = [
                    str(BIN_DIR / "ansible-playbook"),
                    "-i",
                    str(inventory),
                    "-e",
                    f"@{vars_file}",
                    str(REPO_ROOT / "playbooks" / "scim_sync.yml"),
                    *flags,
                ]
                print("$ ansible-playbook playbooks/scim_sync.yml " + " ".join(flags), flush=True)
                proc = subprocess.run(command, env=env, check=False)
                if proc.returncode != 0:
                    raise SystemExit(f"the playbook failed (exit {proc.returncode})")

            def show_target() -> None:
                users = sorted(
                    f"{u['userName']}{'' if u.get('active', True) else ' (disabled)'}" for u in scim.all("Users")
                )
                groups = sorted(f"{g['displayName']} ({len(g.get('members', []))} members)" for g in scim.all("Groups"))
                print(f"SCIM users now:  {', '.join(users) or '(none)'}")
                print(f"SCIM groups now: {', '.join(groups) or '(none)'}", flush=True)

            playbook("1. preview: what a sync would do (--check --diff), nothing is written", "--check", "--diff")
            show_target()
            playbook("2. apply")
            show_target()
            playbook("3. apply again: nothing left to do")

            banner("4. the directory changes: a new user, a disabled user, a renamed group")
            ldap.add(
                textwrap.dedent(
                    f"""\
                    dn: uid=newhire,{PEOPLE}
                    objectClass: inetOrgPerson
                    uid: newhire
                    cn: Nia Newhire
                    sn: Newhire
                    givenName: Nia
                    mail: nia.newhire@example.org
                    """
                )
            )
            print(f"added uid=newhire,{PEOPLE}")
            ldap.modify(
                f"dn: uid=asmith,{PEOPLE}\nchangetype: modify\nadd: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n"
            )
            print(f"locked uid=asmith,{PEOPLE} (pwdAccountLockedTime)")
            ldap.rename(f"cn=Platform,{GROUPS}", "cn=Platform Team")
            ldap.modify(
                f"dn: cn=Engineering,{GROUPS}\nchangetype: modify\ndelete: member\nmember: cn=Platform,{GROUPS}\n-\n"
                f"add: member\nmember: cn=Platform Team,{GROUPS}\nmember: uid=newhire,{PEOPLE}\n"
            )
            print(f"renamed cn=Platform,{GROUPS} to cn=Platform Team; newhire joins Engineering")

            playbook("5. preview of the incremental change", "--check", "--diff")
            playbook("6. apply the incremental change")
            show_target()
            banner("done: stopping the sample directory and the SCIM service")
    return 0


if __name__ == "__main__":
    sys.exit(main())
