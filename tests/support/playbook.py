# -*- coding: utf-8 -*-
"""Run ansible-playbook for real from tests, and read back what the play wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
COLLECTIONS_ROOT = REPO_ROOT / ".build" / "collections"
BIN_DIR = Path(sys.executable).parent

INVENTORY = textwrap.dedent(
    """\
    [local]
    localhost ansible_connection=local
    """
)


@dataclass
class PlaybookResult:
    rc: int
    stdout: str
    stderr: str
    output: dict

    @property
    def text(self) -> str:
        return self.stdout + self.stderr


def run_playbook(
    tmp_path: Path,
    playbook: str,
    extra_vars: dict | None = None,
    env: dict | None = None,
    check: bool = False,
    diff: bool = False,
    verbosity: int = 0,
) -> PlaybookResult:
    """Write ``playbook`` (YAML text) to ``tmp_path`` and run it on localhost.

    The play can record results with the ``record`` variable: a path it writes JSON to
    (``copy: content="{{ x | to_json }}" dest="{{ record }}"``); they come back in ``output``.
    """
    tmp_path.mkdir(parents=True, exist_ok=True)
    play_file = tmp_path / "play.yml"
    play_file.write_text(textwrap.dedent(playbook))
    inventory = tmp_path / "inventory.ini"
    inventory.write_text(INVENTORY)
    record = tmp_path / "record.json"
    if record.exists():
        record.unlink()
    variables = {"record": str(record), "ansible_python_interpreter": sys.executable}
    variables.update(extra_vars or {})
    vars_file = tmp_path / "vars.json"
    vars_file.write_text(json.dumps(variables))
    command = [str(BIN_DIR / "ansible-playbook"), "-i", str(inventory), "-e", f"@{vars_file}", str(play_file)]
    if check:
        command.append("--check")
    if diff:
        command.append("--diff")
    if verbosity:
        command.append("-" + "v" * verbosity)
    run_env = dict(os.environ)
    run_env.update(
        {
            "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS_ROOT),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
            "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
            "ANSIBLE_DEPRECATION_WARNINGS": "0",
        }
    )
    run_env.update(env or {})
    proc = subprocess.run(command, capture_output=True, text=True, env=run_env, timeout=600, check=False)
    output = json.loads(record.read_text()) if record.exists() else {}
    return PlaybookResult(proc.returncode, proc.stdout, proc.stderr, output)
