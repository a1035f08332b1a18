# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ownership state file, for targets that have no field to hold a marker (Box users, PingID).

Private to this collection: the names here may change without notice.

Format (JSON)::

    {"version": 1, "target": "box", "users": {"<target id>": "<marker>"}, "groups": {...}}

It records which target objects this provisioner created or linked, so that ownership survives
the deletion of the source object. Losing it silently would either orphan accounts or (worse,
in authoritative mode) mistake them for foreign ones, so a file that exists but cannot be read
is an error, never "empty". Writes are atomic and never happen in check mode.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass, field

from ansible_collections.idsync.provisioning.plugins.module_utils._model import ProvisioningError

STATE_VERSION = 1


@dataclass
class OwnershipState:
    """The markers of the objects this provisioner manages, by target id."""

    target: str
    path: str | None = None
    users: dict[str, str] = field(default_factory=dict)
    groups: dict[str, str] = field(default_factory=dict)
    # Set by every change, so that an unchanged state is not rewritten.
    dirty: bool = False

    def set_user(self, target_id: str, marker: str) -> None:
        if self.users.get(target_id) != marker:
            self.users[target_id] = marker
            self.dirty = True

    def forget_user(self, target_id: str) -> None:
        if self.users.pop(target_id, None) is not None:
            self.dirty = True

    def set_group(self, target_id: str, marker: str) -> None:
        if self.groups.get(target_id) != marker:
            self.groups[target_id] = marker
            self.dirty = True

    def forget_group(self, target_id: str) -> None:
        if self.groups.pop(target_id, None) is not None:
            self.dirty = True

    def as_dict(self) -> dict:
        return {"version": STATE_VERSION, "target": self.target, "users": self.users, "groups": self.groups}


def load_state(path: str, target: str) -> OwnershipState:
    """Read the state file; a missing file is an empty state, anything unreadable is an error."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        return OwnershipState(target=target, path=path)
    except OSError as exc:
        raise ProvisioningError(f"state file {path}: cannot read it: {exc.strerror or exc}") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ProvisioningError(f"state file {path}: not valid JSON ({exc}); fix or restore it") from exc
    _check_shape(path, data, target)
    return OwnershipState(target=target, path=path, users=dict(data["users"]), groups=dict(data["groups"]))


def save_state(state: OwnershipState, check_mode: bool = False) -> bool:
    """Write the state atomically (temp file in the same directory, fsync, rename), mode 0600.

    Returns True when the file was written. Nothing is written in check mode, without a path,
    or when nothing changed since it was loaded.
    """
    if check_mode or not state.path or not state.dirty:
        return False
    path = state.path
    directory = os.path.dirname(os.path.abspath(path))
    payload = json.dumps(state.as_dict(), indent=2, sort_keys=True) + "\n"
    try:
        # mkstemp creates the file 0600: the marker list is not a secret, but it is nobody's business.
        fd, temp_path = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    except OSError as exc:
        raise ProvisioningError(f"state file {path}: cannot write in {directory}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp_path, 0o600)
        os.replace(temp_path, path)
    except OSError as exc:
        _remove_quietly(temp_path)
        raise ProvisioningError(f"state file {path}: cannot write it: {exc.strerror or exc}") from exc
    _fsync_directory(directory)
    state.dirty = False
    return True


def check_state_writable(path: str) -> None:
    """Fail early (before any write to the target) when the state file could not be saved later."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ProvisioningError(f"state file {path}: directory {directory} does not exist")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ProvisioningError(f"state file {path}: directory {directory} is not writable")
    if os.path.exists(path) and not os.access(path, os.R_OK):
        raise ProvisioningError(f"state file {path}: not readable")


def _check_shape(path: str, data: object, target: str) -> None:
    if not isinstance(data, dict):
        raise ProvisioningError(f"state file {path}: expected a JSON object")
    if data.get("version") != STATE_VERSION:
        raise ProvisioningError(
            f"state file {path}: unsupported version {data.get('version')!r} (expected {STATE_VERSION})"
        )
    # A state file of another target would make this provisioner claim or forget the wrong objects.
    if data.get("target") != target:
        raise ProvisioningError(f"state file {path}: it belongs to target {data.get('target')!r}, not {target!r}")
    for section in ("users", "groups"):
        entries = data.get(section)
        if not isinstance(entries, dict) or not all(
            isinstance(key, str) and isinstance(value, str) for key, value in entries.items()
        ):
            raise ProvisioningError(f"state file {path}: {section!r} must map target ids to marker strings")


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _fsync_directory(directory: str) -> None:
    # Makes the rename itself durable; not every platform or filesystem allows it.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
