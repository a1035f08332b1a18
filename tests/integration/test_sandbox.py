# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""`make sandbox` / `make sandbox-stop`, and the README's quick look run as written against it.

The commands and the play come out of README.md's "Quick look" section, so the README cannot
drift from what works. They run in a directory that stands in for the checkout (``playbooks``
linked to the real one, ``.build/sandbox`` the test's own sandbox directory, so a sandbox
someone runs in the checkout is left alone), with an environment that has nothing of the
collection's: the PATH to ansible-playbook, the collections path and every secret have to come
from what ``make sandbox`` wrote. ``make`` lines run in the real checkout with SANDBOX_DIR
pointing there.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from support import sandbox
from support.scim_server import ScimServer
from support.seed import ACTIVE_PEOPLE, GROUPS
from support.slapd import _proc_alive

REPO_ROOT = Path(__file__).resolve().parents[2]
README = REPO_ROOT / "README.md"
GETTING_STARTED = REPO_ROOT / "docs" / "getting-started.md"
BIN_DIR = Path(sys.executable).parent
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)

# Engineering with its nested group Platform (tests/data/ldap/README.md, "Resolved people")
ENGINEERING_PEOPLE = ["asmith", "bwhite", "jdoe", "jmuller", "jsmith"]


def section_blocks(page: Path, title: str) -> list[tuple[str, str]]:
    """``(language, body)`` of the fenced blocks in the section ``## title`` of a page."""
    text = page.read_text(encoding="utf-8")
    section = text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]
    return FENCE.findall(section)


def shell_lines(blocks: list[tuple[str, str]]) -> list[str]:
    lines = [line.strip() for lang, body in blocks if lang == "sh" for line in body.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def quick_look() -> tuple[str, list[str]]:
    """The quick-look play and the shell command lines of README.md's "Quick look" section."""
    blocks = section_blocks(README, "Quick look")
    return next(body for lang, body in blocks if lang == "yaml"), shell_lines(blocks)


def bare_env(tmp_path: Path) -> dict[str, str]:
    """No venv on PATH, no collections path, no secrets: only what the README's lines provide."""
    return {
        "HOME": os.environ.get("HOME", str(tmp_path)),
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
    }


def run_make(line: str, sandbox_dir: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """A README ``make`` line, in the checkout, on the test's sandbox directory.

    ``-o .venv/.installed``: never reinstall the venv the test itself runs in (requirements
    files edited since the last install would otherwise trigger pip in the middle of a run).
    """
    argv = shlex.split(line, comments=True)
    assert argv[0] == "make", line
    command = ["make", "--no-print-directory", "-C", str(REPO_ROOT), "-o", ".venv/.installed"]
    command += [*argv[1:], f"SANDBOX_DIR={sandbox_dir}"]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=False)


def listening_addresses(port: int) -> set[str]:
    """Local addresses of the TCP sockets listening on ``port`` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table, encoding="ascii") as handle:
            for row in handle.read().splitlines()[1:]:
                local, state = row.split()[1], row.split()[3]
                address, hex_port = local.split(":")
                if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                    found.add("127.0.0.1" if address == "0100007F" else address)
    return found


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        name, _sep, value = line.removeprefix("export ").partition("=")
        if name != "PATH":
            values[name] = shlex.split(value)[0]
    return values


class Target:
    """What the sandbox's SCIM service holds, read past the code under test."""

    def __init__(self, env_file: Path):
        values = read_env_file(env_file)
        self.server = ScimServer(token=values["SCIM_TOKEN"], port=int(values["SCIM_URL"].split(":")[2].split("/")[0]))

    def users(self) -> list[str]:
        return sorted(user["userName"] for user in self.server.all("Users"))

    def groups(self) -> dict[str, int]:
        return {group["displayName"]: len(group.get("members", [])) for group in self.server.all("Groups")}


@pytest.fixture
def checkout(tmp_path):
    """A stand-in for the repository root: the real playbooks, the test's own .build/sandbox."""
    root = tmp_path / "checkout"
    (root / ".build").mkdir(parents=True)
    (root / "playbooks").symlink_to(REPO_ROOT / "playbooks")
    yield root
    sandbox.stop(root / ".build" / "sandbox", quiet=True)  # whatever the test left running


def test_readme_quick_look_and_ready_playbook_run_as_written_against_the_sandbox(checkout, tmp_path):
    play, lines = quick_look()
    sandbox_dir = checkout / ".build" / "sandbox"
    env = bare_env(tmp_path)
    kinds = [line.split()[0] for line in lines]
    assert kinds == ["make", ".", *["ansible-playbook"] * 4, "make"], lines
    start_line, prelude, *playbook_lines, stop_line = lines
    assert shlex.split(start_line, comments=True) == ["make", "sandbox"]
    assert shlex.split(stop_line, comments=True) == ["make", "sandbox-stop"]

    # make sandbox: both servers run after make returns, on 127.0.0.1, pids recorded
    started = run_make(start_line, sandbox_dir, env)
    assert started.returncode == 0, started.stdout + started.stderr
    state = json.loads((sandbox_dir / "state.json").read_text())
    pids = {name: state[name]["pid"] for name in ("slapd", "scim2-server")}
    assert all(_proc_alive(pid) for pid in pids.values()), pids
    for uri in (state["slapd"]["uri"], state["slapd"]["ldaps_uri"], state["scim2-server"]["url"]):
        assert listening_addresses(int(uri.split(":")[2].split("/")[0])) == {"127.0.0.1"}, uri
    # it printed the lines to export, the same env.sh holds, secrets included, readable by its owner only
    env_file = sandbox_dir / "env.sh"
    env_lines = env_file.read_text().splitlines()
    assert all(line in started.stdout.splitlines() for line in env_lines)
    exported = read_env_file(env_file)
    assert {"SCIM_URL", "SCIM_TOKEN", "LDAP_SERVER_URI", "LDAP_BIND_DN", "LDAP_BIND_PW"} <= exported.keys()
    assert exported["SCIM_URL"] == state["scim2-server"]["url"]
    assert exported["LDAP_SERVER_URI"] == state["slapd"]["uri"]
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600

    target = Target(env_file)
    (checkout / "quick-look.yml").write_text(play, encoding="utf-8")

    def run(line: str) -> str:
        proc = subprocess.run(
            ["bash", "-c", f"set -eu\n{prelude}\n{line}"],
            cwd=checkout,
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
            check=False,
        )
        assert proc.returncode == 0, f"$ {line}\n{proc.stdout}\n{proc.stderr}"
        return proc.stdout

    quick_preview, quick_apply, ready_preview, ready_apply = playbook_lines
    assert "quick-look.yml" in quick_preview and "--check" in quick_preview
    assert "quick-look.yml" in quick_apply and "--check" not in quick_apply
    assert "playbooks/scim_sync.yml" in ready_preview and "--check" in ready_preview
    assert "playbooks/scim_sync.yml" in ready_apply and "--check" not in ready_apply

    # the quick look: preview writes nothing; apply provisions Engineering with its nested Platform
    output = run(quick_preview)
    assert "create_user" in output
    assert target.users() == [] and target.groups() == {}
    run(quick_apply)
    assert target.users() == ENGINEERING_PEOPLE
    assert target.groups() == {"Engineering": 5, "Platform": 2}

    # the ready playbook with the sandbox inventory: the whole people OU and Sales on top
    output = run(ready_preview)
    assert "preview: would create 2 users" in output
    assert target.users() == ENGINEERING_PEOPLE
    output = run(ready_apply)
    assert "users: 2 created" in output
    assert target.users() == ACTIVE_PEOPLE
    assert target.groups() == {"Engineering": 5, "Platform": 2, "Sales": 1}

    # getting-started.md's line for the ready-made scope preview, on the scope the sandbox exports
    [preview_line] = [
        line
        for line in shell_lines(section_blocks(GETTING_STARTED, "Try it on the sandbox first"))
        if "directory_preview.yml" in line
    ]
    assert re.search(r"8 users,\s+1 disabled", run(preview_line))

    # a second make sandbox leaves the running one alone and prints its environment again
    again = run_make(start_line, sandbox_dir, env)
    assert again.returncode == 0, again.stderr
    assert "already running" in again.stdout and exported["SCIM_TOKEN"] in again.stdout
    assert json.loads((sandbox_dir / "state.json").read_text()) == state
    assert target.users() == ACTIVE_PEOPLE

    # make sandbox-stop ends exactly those processes and removes what make sandbox wrote
    stopped = run_make(stop_line, sandbox_dir, env)
    assert stopped.returncode == 0, stopped.stderr
    assert f"slapd (pid {pids['slapd']})" in stopped.stdout
    assert f"scim2-server (pid {pids['scim2-server']})" in stopped.stdout
    assert not any(_proc_alive(pid) for pid in pids.values()), pids
    assert sorted(p.name for p in sandbox_dir.iterdir()) == []
    again = run_make(stop_line, sandbox_dir, env)
    assert again.returncode == 0 and "no sandbox was running" in again.stdout


def test_directory_preview_names_the_variable_to_set(slapd, tmp_path):
    """playbooks/directory_preview.yml without a user scope names its own variable, not the lookup's option."""
    env = {
        **os.environ,
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
        "LDAP_SERVER_URI": slapd.uri,
        "LDAP_BIND_DN": slapd.reader_dn,
        "LDAP_BIND_PW": slapd.reader_pw,
        "LDAP_USER_BASE_DN": "",
        "LDAP_GROUP_BASE_DN": GROUPS,
    }
    command = [
        str(BIN_DIR / "ansible-playbook"),
        "-i",
        str(REPO_ROOT / "playbooks" / "inventory"),
        str(REPO_ROOT / "playbooks" / "directory_preview.yml"),
    ]
    missing = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert missing.returncode != 0
    assert "ldap_user_base_dn is not set" in missing.stdout and "LDAP_USER_BASE_DN" in missing.stdout
    assert "'user_base_dn' is required" not in missing.stdout
