# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Start and stop a real ``scim2-server`` (PyPI) on a free 127.0.0.1 port, for tests and demos.

    with ScimServer(token="t0k") as server:
        server.url          # http://127.0.0.1:PORT/v2
        server.admin.get("/Users")        # a requests session with the bearer token

The server keeps everything in memory; each instance is a fresh, empty service. It is stopped
by its pid (terminate, wait, kill).
"""

from __future__ import annotations

import copy
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

import requests

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_OP_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

# What scim2-server announces by default (its own default-service-provider-config.json).
DEFAULT_SERVICE_PROVIDER_CONFIG: dict[str, Any] = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
    "patch": {"supported": True},
    "bulk": {"supported": True, "maxOperations": 1000, "maxPayloadSize": 1048576},
    "filter": {"supported": True, "maxResults": 1000},
    "changePassword": {"supported": True},
    "sort": {"supported": True},
    "etag": {"supported": True},
}


def service_provider_config(**features: Any) -> dict[str, Any]:
    """The default configuration with some features replaced, e.g. ``patch={"supported": False}``."""
    config = copy.deepcopy(DEFAULT_SERVICE_PROVIDER_CONFIG)
    for name, value in features.items():
        config[name] = value
    return config


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def scim2_server_executable() -> str:
    """``scim2-server`` next to the running Python (the venv's), else on PATH."""
    candidate = os.path.join(os.path.dirname(sys.executable), "scim2-server")
    return candidate if os.path.exists(candidate) else "scim2-server"


class ScimServer:
    """One scim2-server process.

    ``service_provider_config``: a dict (written to a temp file) or a path to a JSON file, to
    announce other features than the default (e.g. PATCH unsupported, a small maxResults).
    """

    def __init__(
        self,
        token: str | None = None,
        port: int | None = None,
        service_provider_config: dict[str, Any] | str | None = None,
        executable: str | None = None,
        startup_timeout: float = 180.0,
    ):
        self.token = token or secrets.token_hex(16)
        self.port = port
        self.service_provider_config = service_provider_config
        self.executable = executable or scim2_server_executable()
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen | None = None
        self._workdir: tempfile.TemporaryDirectory | None = None
        self.log_path: str | None = None
        self.admin = requests.Session()
        self.admin.headers.update({"Authorization": f"Bearer {self.token}", "Content-Type": "application/scim+json"})

    # -- lifecycle -----------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The SCIM base URL the connector is given."""
        return f"{self.base}/v2"

    def start(self) -> ScimServer:
        self._workdir = tempfile.TemporaryDirectory(prefix="scim2-server-")
        self.log_path = os.path.join(self._workdir.name, "server.log")
        attempts = 1 if self.port else 3  # a free port can be taken between probe and bind
        for attempt in range(attempts):
            port = self.port if attempts == 1 else free_port()
            try:
                self._start_on(port)
                return self
            except RuntimeError:
                self.stop(keep_workdir=True)
                if attempt == attempts - 1:
                    raise
        return self

    def _start_on(self, port: int) -> None:
        self.port = port
        command = [
            self.executable, "--hostname", "127.0.0.1", "--port", str(port), f"--bearer-token={self.token}",
        ]  # fmt: skip
        if self.service_provider_config is not None:
            command += ["--service-provider-config", self._config_file()]
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child, closed below
        try:
            # Requests are logged to stderr; a file never blocks the server the way a full pipe would.
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        finally:
            log.close()
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"scim2-server exited with {self.process.returncode}: {self.log_tail()}")
            try:
                if self.admin.get(f"{self.url}/ServiceProviderConfig", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"scim2-server did not answer within {self.startup_timeout}s: {self.log_tail()}")

    def _config_file(self) -> str:
        if isinstance(self.service_provider_config, str):
            return self.service_provider_config
        path = os.path.join(self._workdir.name, "service-provider-config.json")
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(self.service_provider_config, handle)
        return path

    def stop(self, keep_workdir: bool = False) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()  # by its pid
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        if not keep_workdir:
            self.admin.close()
            if self._workdir is not None:
                self._workdir.cleanup()
                self._workdir = None

    def log_tail(self, lines: int = 20) -> str:
        if not self.log_path or not os.path.exists(self.log_path):
            return ""
        with open(self.log_path, encoding="utf-8", errors="replace") as handle:
            return "".join(handle.readlines()[-lines:])

    def __enter__(self) -> ScimServer:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    # -- direct access to the server's state, bypassing the code under test ------------------
    def get(self, path: str, **params: Any) -> Any:
        response = self.admin.get(f"{self.url}{path}", params=params or None, timeout=10)
        response.raise_for_status()
        return response.json()

    def all(self, resource_type: str = "Users", **params: Any) -> list[dict[str, Any]]:
        """Every resource of a type, paging with startIndex/count."""
        resources: list[dict[str, Any]] = []
        start = 1
        while True:
            page = self.get(f"/{resource_type}", startIndex=start, count=1000, **params)
            batch = page.get("Resources", [])
            resources.extend(batch)
            start += len(batch)
            if not batch or start > page["totalResults"]:
                return resources

    def user_by_name(self, user_name: str) -> dict[str, Any] | None:
        escaped = user_name.replace("\\", "\\\\").replace('"', '\\"')
        found = self.get("/Users", filter=f'userName eq "{escaped}"').get("Resources", [])
        return found[0] if found else None

    def seed_user(self, user_name: str, **attributes: Any) -> dict[str, Any]:
        schemas = [USER_SCHEMA] + ([ENTERPRISE_SCHEMA] if ENTERPRISE_SCHEMA in attributes else [])
        return self._post("/Users", {"schemas": schemas, "userName": user_name, **attributes})

    def seed_group(self, display_name: str, member_ids: tuple[str, ...] = (), **attributes: Any) -> dict[str, Any]:
        body = {"schemas": [GROUP_SCHEMA], "displayName": display_name, **attributes}
        if member_ids:
            body["members"] = [{"value": member_id} for member_id in member_ids]
        return self._post("/Groups", body)

    def patch(self, path: str, *operations: dict[str, Any]) -> None:
        response = self.admin.patch(
            f"{self.url}{path}", json={"schemas": [PATCH_OP_SCHEMA], "Operations": list(operations)}, timeout=10
        )
        response.raise_for_status()

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.admin.post(f"{self.url}{path}", json=body, timeout=10)
        if response.status_code != 201:
            raise AssertionError(f"seeding {path} failed: {response.status_code} {response.text}")
        return response.json()
