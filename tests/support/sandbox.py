# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""`make sandbox` and `make sandbox-stop`: the sample directory and a local SCIM service, left running.

    python tests/support/sandbox.py start [--dir .build/sandbox]
    python tests/support/sandbox.py stop [--dir .build/sandbox]

``start`` runs what ``make demo`` runs, a slapd seeded from ``tests/data/ldap`` (see its README)
and an empty scim2-server, both on free 127.0.0.1 ports, and leaves them running in their own
sessions. It writes into the sandbox directory:

* ``env.sh``: the environment the modules read (SCIM_URL, SCIM_TOKEN, LDAP_SERVER_URI,
  LDAP_BIND_DN, LDAP_BIND_PW, ...), plus PATH and ANSIBLE_COLLECTIONS_PATH for this checkout;
  the same lines are printed;
* ``inventory.yml``: localhost with the sync role's variables for the sample directory (the
  scope of ``make demo``), so ``ansible-playbook -i .build/sandbox/inventory.yml
  playbooks/scim_sync.yml`` runs as it is;
* ``state.json``: the pids and addresses; ``stop`` ends exactly those pids (each checked
  against its command line first, so a recycled pid is never killed) and removes the files.

A second ``start`` while the sandbox runs prints its environment again. A new sandbox starts
from the seed: what a previous one wrote to the directory is gone.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from support import scim_server_cli  # noqa: E402
from support import slapd as slapd_support  # noqa: E402
from support.demo import GROUPS, PEOPLE, demo_vars  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DIR = REPO_ROOT / ".build" / "sandbox"
STATE_FILE = "state.json"
ENV_FILE = "env.sh"
INVENTORY_FILE = "inventory.yml"
SLAPD_DIR = "slapd"
SCIM_DIR = "scim"


def _state(directory: Path) -> dict | None:
    try:
        return json.loads((directory / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def running_pids(directory: Path) -> dict[str, int]:
    """The sandbox processes of ``directory`` that are still alive, by name (slapd, scim2-server)."""
    state = _state(directory) or {}
    pids = {name: int(state[name]["pid"]) for name in ("slapd", "scim2-server") if name in state}
    return {name: pid for name, pid in pids.items() if slapd_support._proc_alive(pid)}


def env_lines(ldap: slapd_support.SlapdServer, scim_url: str, scim_token: str) -> list[str]:
    values = {
        "SCIM_URL": scim_url,
        "SCIM_TOKEN": scim_token,
        "LDAP_SERVER_URI": ldap.uri,
        "LDAP_BIND_DN": ldap.reader_dn,
        "LDAP_BIND_PW": ldap.reader_pw,
        # the scope variables of playbooks/directory_preview.yml
        "LDAP_USER_BASE_DN": PEOPLE,
        "LDAP_GROUP_BASE_DN": GROUPS,
        "ANSIBLE_COLLECTIONS_PATH": str(REPO_ROOT / ".build" / "collections"),
    }
    lines = [f"export {name}={shlex.quote(value)}" for name, value in values.items()]
    # ansible-playbook and the Python with the collection's libraries come from the checkout's venv
    lines.append(f'export PATH={shlex.quote(str(Path(sys.executable).parent))}:"$PATH"')
    return lines


def inventory(ldap: slapd_support.SlapdServer, scim_url: str) -> dict:
    """localhost, run by the Python that runs ansible-playbook, with the role's variables of make demo."""
    variables = demo_vars(ldap)
    variables["sync_connection"] = {"url": scim_url}
    return {
        "all": {
            "hosts": {
                "localhost": {
                    "ansible_connection": "local",
                    "ansible_python_interpreter": "{{ ansible_playbook_python }}",
                }
            },
            "vars": variables,
        }
    }


def _write_private(path: Path, text: str) -> None:
    """The env file holds the token and the bind password: readable by its owner only."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)


def _remove_files(directory: Path) -> None:
    for name in (SLAPD_DIR, SCIM_DIR):
        shutil.rmtree(directory / name, ignore_errors=True)
    for name in (STATE_FILE, ENV_FILE, INVENTORY_FILE):
        (directory / name).unlink(missing_ok=True)


def start(directory: Path) -> int:
    directory = directory.absolute()
    if running_pids(directory).keys() == {"slapd", "scim2-server"}:
        print(f"the sandbox in {directory} is already running; its environment:\n")
        print((directory / ENV_FILE).read_text(encoding="utf-8"), end="")
        return 0
    stop(directory, quiet=True)  # what is left of a half-stopped sandbox, then a fresh seed
    directory.mkdir(parents=True, exist_ok=True)
    ldap = slapd_support.SlapdServer(directory / SLAPD_DIR)
    ldap.start()
    try:
        scim = scim_server_cli.start(str(directory / SCIM_DIR))
    except BaseException:
        ldap.stop()
        raise
    state = {
        "slapd": {"pid": ldap.pid, "uri": ldap.uri, "ldaps_uri": ldap.ldaps_uri, "ca_file": ldap.ca_file},
        "scim2-server": {"pid": scim["pid"], "url": scim["url"]},
    }
    lines = env_lines(ldap, scim["url"], scim["token"])
    _write_private(directory / ENV_FILE, "\n".join(lines) + "\n")
    header = (
        "# Written by `make sandbox` (tests/support/sandbox.py); `make sandbox-stop` removes it.\n"
        "# Secrets are not here: they come from the environment (env.sh next to this file).\n"
    )
    inventory_yaml = yaml.safe_dump(inventory(ldap, scim["url"]), sort_keys=False, default_flow_style=False)
    (directory / INVENTORY_FILE).write_text(header + inventory_yaml, encoding="utf-8")
    (directory / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")

    shown = os.path.relpath(directory) if directory.is_relative_to(Path.cwd()) else str(directory)
    print(
        f"sandbox running (stop it with: make sandbox-stop)\n"
        f"  sample directory  {ldap.uri} (slapd pid {ldap.pid}), also {ldap.ldaps_uri} with "
        f"LDAP_CA_PATH={ldap.ca_file}; its entries: tests/data/ldap/README.md\n"
        f"  SCIM service      {scim['url']} (scim2-server pid {scim['pid']}), empty\n"
        f"  inventory         {shown}/{INVENTORY_FILE}\n\n"
        f"Export these (or run: . {shown}/{ENV_FILE}):\n\n" + "\n".join(lines) + "\n\n"
        f"Then, for example:\n"
        f"  ansible-playbook -i {shown}/{INVENTORY_FILE} playbooks/scim_sync.yml --check --diff\n"
        f"  ansible-playbook -i {shown}/{INVENTORY_FILE} playbooks/directory_preview.yml"
    )
    return 0


def stop(directory: Path, quiet: bool = False) -> int:
    directory = directory.absolute()
    stopped = {
        "slapd": slapd_support.stop_workdir(directory / SLAPD_DIR),
        "scim2-server": scim_server_cli.stop(str(directory / SCIM_DIR)),
    }
    _remove_files(directory)
    if not quiet:
        done = [f"{name} (pid {pid})" for name, pid in stopped.items() if pid is not None]
        print(f"stopped {', '.join(done)}" if done else f"no sandbox was running in {directory}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Start or stop the sandbox: sample directory and SCIM service.")
    parser.add_argument("action", choices=["start", "stop"])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="state directory (default: .build/sandbox)")
    args = parser.parse_args(argv)
    return start(args.dir) if args.action == "start" else stop(args.dir)


if __name__ == "__main__":
    sys.exit(main())
