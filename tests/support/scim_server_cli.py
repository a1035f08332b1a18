# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Start a real ``scim2-server`` that outlives this command, and stop it again by its pid.

For playbooks (molecule's create/destroy) that cannot hold a ``ScimServer`` object::

    python tests/support/scim_server_cli.py --workdir DIR   # prints url=... token=... pid=... lines
    python tests/support/scim_server_cli.py --stop DIR      # prints stopped=PID (empty if none ran)

The server listens on a free 127.0.0.1 port with a random bearer token (or ``--token``), in its
own session, logging to ``DIR/server.log``. ``DIR/server.json`` (mode 0600) records url, port,
pid and token; ``--stop`` reads it and ends that pid only if its command line is still this
scim2-server's (same port), so a recycled pid is never killed.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shlex
import signal
import subprocess
import sys
import time

import requests

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from support.scim_server import free_port, scim2_server_executable  # noqa: E402

STATE_FILE = "server.json"
LOG_FILE = "server.log"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return False


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return [arg.decode("utf-8", "replace") for arg in handle.read().split(b"\0") if arg]
    except OSError:
        return []


def _wait_ready(process: subprocess.Popen, url: str, token: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    headers = {"Authorization": f"Bearer {token}"}
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"scim2-server exited with {process.returncode}")
        try:
            if requests.get(f"{url}/ServiceProviderConfig", headers=headers, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"scim2-server did not answer within {timeout:.0f} s")


def _terminate(pid: int, timeout: float = 5.0) -> None:
    for sig, seconds in ((signal.SIGTERM, timeout), (signal.SIGKILL, timeout)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if not _alive(pid):
                return
            time.sleep(0.05)


def start(workdir: str, token: str | None = None, timeout: float = 20.0) -> dict:
    """Start a detached scim2-server; returns (and writes to DIR/server.json) url, port, pid, token."""
    workdir = os.path.abspath(workdir)
    os.makedirs(workdir, exist_ok=True)
    token = token or secrets.token_hex(16)
    log_path = os.path.join(workdir, LOG_FILE)
    last_error: Exception | None = None
    for _attempt in range(3):  # a free port can be taken between the probe and the bind
        port = free_port()
        url = f"http://127.0.0.1:{port}/v2"
        command = [
            scim2_server_executable(), "--hostname", "127.0.0.1", "--port", str(port), f"--bearer-token={token}",
        ]  # fmt: skip
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            _wait_ready(process, url, token, timeout)
        except RuntimeError as exc:
            last_error = exc
            if process.poll() is None:
                _terminate(process.pid)
            continue
        state = {"url": url, "port": port, "pid": process.pid, "token": token, "log": log_path}
        state_path = os.path.join(workdir, STATE_FILE)
        descriptor = os.open(state_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(state, handle)
        return state
    raise RuntimeError(f"{last_error}; log: {log_path}")


def stop(workdir: str) -> int | None:
    """Stop the server recorded in DIR/server.json; returns its pid, or None when none was running."""
    state_path = os.path.join(os.path.abspath(workdir), STATE_FILE)
    try:
        with open(state_path, encoding="utf-8") as handle:
            state = json.load(handle)
    except (OSError, ValueError):
        return None
    pid = int(state["pid"])
    cmdline = _cmdline(pid)
    ours = any("scim2-server" in arg for arg in cmdline[:2]) and str(state["port"]) in cmdline
    if not _alive(pid) or not ours:
        os.unlink(state_path)
        return None
    _terminate(pid)
    os.unlink(state_path)
    return pid


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Start or stop a detached scim2-server on 127.0.0.1.")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--workdir", help="start a server with its log and state in DIR and leave it running")
    action.add_argument("--stop", metavar="DIR", help="stop the server started in DIR")
    parser.add_argument("--token", help="bearer token (default: random)")
    args = parser.parse_args(argv)
    if args.stop:
        pid = stop(args.stop)
        print(f"stopped={pid if pid is not None else ''}")
        return 0
    state = start(args.workdir, args.token)
    print("\n".join(f"{name}={shlex.quote(str(state[name]))}" for name in ("url", "port", "pid", "token", "log")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
