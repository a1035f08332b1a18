# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One ansible-playbook run of a module for the bench, with the probe in the module process.

Like ``support.playbook.run_playbook`` (same inventory, collection path and environment), but
the module runs under an interpreter wrapper that loads ``probe/sitecustomize.py``, the whole
ansible-playbook tree's peak RSS is taken from ``RUSAGE_CHILDREN`` of a wrapper process, and a
run may last longer than a test's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

from support.playbook import BIN_DIR, COLLECTIONS_ROOT, INVENTORY

PROBE_DIR = Path(__file__).resolve().parent / "probe"

# Runs the command given as arguments and prints the peak RSS (KiB) of its process tree.
TREE_RSS = (
    "import resource, subprocess, sys\n"
    "rc = subprocess.call(sys.argv[1:])\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
    "sys.exit(rc)\n"
)

SYNC_PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Sync
      {module}: "{{{{ sync_args }}}}"
      register: result
      ignore_errors: true
    - name: Record
      ansible.builtin.copy:
        content: "{{{{ result | to_json }}}}"
        dest: "{{{{ record }}}}"
        mode: "0600"
"""


@dataclass
class PlayRun:
    rc: int
    wall_s: float
    result: dict
    probe: dict
    tree_peak_rss_mb: float | None
    output: str


def run(
    work: Path, play: str, variables: dict, env: dict, *, profile: Path | None = None, timeout: float = 7200
) -> PlayRun:
    """Run ``play`` on localhost; the play writes its result to ``{{ record }}`` (JSON)."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "play.yml").write_text(textwrap.dedent(play))
    (work / "inventory.ini").write_text(INVENTORY)
    interpreter = work / "python"
    interpreter.write_text(f'#!/bin/sh\nPYTHONPATH="{PROBE_DIR}" exec "{sys.executable}" "$@"\n')
    interpreter.chmod(0o700)
    record, probe_file = work / "record.json", work / "probe.json"
    for stale in (record, probe_file):
        if stale.exists():
            stale.unlink()
    (work / "vars.json").write_text(
        json.dumps({"record": str(record), "ansible_python_interpreter": str(interpreter), **variables})
    )
    command = [sys.executable, "-c", TREE_RSS, str(BIN_DIR / "ansible-playbook"), "-i", str(work / "inventory.ini")]
    command += ["-e", f"@{work / 'vars.json'}", str(work / "play.yml")]
    run_env = dict(os.environ)
    run_env.update(
        {
            "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS_ROOT),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
            "ANSIBLE_LOCAL_TEMP": str(work / "ansible-tmp"),
            "ANSIBLE_DEPRECATION_WARNINGS": "0",
            "IDSYNC_BENCH_PROBE": str(probe_file),
        }
    )
    if profile is not None:
        run_env["IDSYNC_BENCH_PROFILE"] = str(profile)
    run_env.update(env)
    started = time.monotonic()
    proc = subprocess.run(command, capture_output=True, text=True, env=run_env, timeout=timeout, check=False)
    wall = time.monotonic() - started
    lines = proc.stderr.strip().splitlines()
    tree_rss = round(int(lines[-1]) / 1024, 1) if lines and lines[-1].isdigit() else None
    result = json.loads(record.read_text()) if record.exists() else {}
    probe = json.loads(probe_file.read_text()) if probe_file.exists() else {}
    return PlayRun(proc.returncode, wall, result, probe, tree_rss, proc.stdout + proc.stderr)


def sync(work: Path, module: str, args: dict, env: dict, **options) -> PlayRun:
    """One task of ``module`` (a ``*_sync``) with ``args``."""
    env = dict(env, IDSYNC_BENCH_MODULE=module.rsplit(".", 1)[-1])
    return run(work, SYNC_PLAY.format(module=module), {"sync_args": args}, env, **options)
