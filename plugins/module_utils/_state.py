# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ownership state file, for targets that have no field to hold a marker (Box users, PingID).

Private to this collection: the names here may change without notice. docs/state-file.md is the
operator's description of the same file.

It records which target objects this provisioner created or linked, so that ownership survives the
deletion of the source object, and (v2) what it last wrote to each, so that a target that cannot
list its users cheaply (PingID) is synced without one read per user when nothing changed. Losing
it silently would either orphan accounts or (worse, in authoritative mode) mistake them for
foreign ones, so a file that exists but cannot be read is an error, never "empty".

Format, version 2 (JSON, keys sorted, mode 0600)::

    {
      "version": 2,
      "target": "pingid",
      "runs": 42,                                  # applied runs that recorded themselves
      "last_full_verification": "2025-05-01T02:00:00Z",   # or null: never
      "last_full_verification_run": 40,            # the value of "runs" then, or null
      "users": {
        "<target id>": {
          "marker": "idsync:<stable id>",          # required: the ownership link
          "key": "jdoe",                           # user name (group name), or null
          "fingerprint": "sha256:<64 hex>",        # of what was last written, or null
          "data": {"fName": "John", ...},          # the last written values, or null
          "enabled": true,                         # as last written or read, or null
          "verified_at": "2025-05-01T02:00:00Z"    # last compared with the target, or null
        }
      },
      "groups": {"<target id>": {... the same fields ...}}
    }

- Times are UTC, ISO 8601 to the second with a ``Z`` (``%Y-%m-%dT%H:%M:%SZ``): readable in the file
  and in a diff; :func:`parse_time` turns one into epoch seconds.
- ``fingerprint`` null means "unknown: verify against the target before trusting the record"
  (every record migrated from v1 starts so). ``verified_at`` null means never verified.
- ``data`` holds the values as written (PingID's EditUser replaces the whole record, so an update
  merges from it). Callers must never pass secret values: the file is 0600, not a vault.
- ``runs`` counts the applied runs that called :meth:`OwnershipState.record_run`; check mode never
  saves, so previews do not count.
- Fields this version does not know are ignored (and dropped at the next save); a future change that
  needs them kept by older readers must raise the version.

Version 1 (the builds before this one)::

    {"version": 1, "target": "box", "users": {"<target id>": "<marker>"}, "groups": {...}}

Migration: :func:`load_state` reads a v1 file as v2 (each marker becomes a record with every other
field null, so each object "must be verified") and marks the state dirty, so that the next save
(of a real run, never a preview) writes it back as v2. There is no way back in code: the v1 reader
checks ``version`` first and refuses a v2 file with "unsupported version 2 (expected 1)", never
misreading it; docs/state-file.md gives the one-line ``jq`` that turns a v2 file into v1 for a
downgrade. A version newer than this code knows is refused by name (upgrade the collection).

Writes (:func:`save_state`) are atomic: a temp file ``.<name>.<random>.tmp`` in the same directory,
fsync, ``os.replace``, fsync of the directory; an interrupted save leaves the previous file intact.
The file is always written 0600 (a looser mode on an existing file is corrected by the next save,
because the replacement is a new file). Nothing is ever written in check mode: callers pass
``check_mode`` or do not call :func:`save_state`; :func:`check_state_writable` fails a real run
before its first write to the target when the file could not be saved afterwards.

Locking (:func:`state_lock`): one run at a time per state file. ``fcntl.flock`` on the sidecar
``<path>.lock`` (0600, never deleted: deleting it would let two runs lock two different files), held
for the whole run (load, plan, apply, save). A second run waits up to ``timeout`` seconds, then fails
naming the holder (pid, host, since when), which the holder writes into the lock file. The kernel
releases the lock of a process that dies, even by SIGKILL, so a crashed run never blocks the next
one; the next holder removes the temp files a killed save left behind.
"""

from __future__ import annotations

import calendar
import contextlib
import copy
import errno
import fcntl
import glob
import hashlib
import json
import os
import socket
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from ansible_collections.idsync.provisioning.plugins.module_utils._model import ProvisioningError

STATE_VERSION = 2
# The versions load_state reads; older ones are migrated to STATE_VERSION in memory.
READABLE_VERSIONS = (1, 2)
KINDS = ("users", "groups")
# How long a second run waits for the lock by default: longer than a usual run, shorter than a
# scheduler's interval (the sync options may expose it).
DEFAULT_LOCK_TIMEOUT = 300.0
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def _now() -> float:
    """The clock of this module (tests replace it)."""
    return time.time()


def format_time(epoch: float) -> str:
    """Epoch seconds as the file's UTC ISO 8601 form."""
    return time.strftime(TIME_FORMAT, time.gmtime(epoch))


def parse_time(text: str) -> float:
    """The file's UTC ISO 8601 form (``2025-05-01T02:00:00Z``) as epoch seconds; ValueError otherwise."""
    return float(calendar.timegm(time.strptime(text, TIME_FORMAT)))


def fingerprint(value: Any) -> str:
    """A stable hash of ``value`` as canonical JSON: the same for any key order, different for any value.

    Canonical: keys sorted, no whitespace, UTF-8. Lists keep their order (sort multi-valued attributes
    whose order is meaningless before hashing). Use it on what was written, e.g.
    ``fingerprint({"attributes": written, "enabled": True})``. Raises TypeError for a value JSON
    cannot hold.
    """
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Record:
    """What the state knows of one target object. Read-only: change it through OwnershipState.remember."""

    marker: str
    key: str | None = None
    fingerprint: str | None = None
    data: dict[str, Any] | None = None
    enabled: bool | None = None
    verified_at: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "marker": self.marker,
            "key": self.key,
            "fingerprint": self.fingerprint,
            "data": self.data,
            "enabled": self.enabled,
            "verified_at": self.verified_at,
        }

    def verified_age(self, now: float | None = None) -> float | None:
        """Seconds since the last verification, or None when never verified."""
        if self.verified_at is None:
            return None
        return (_now() if now is None else now) - parse_time(self.verified_at)


class _MarkerView(Mapping):
    """A live, read-only ``{target id: marker}`` view of one kind (the v1 ``users``/``groups`` shape)."""

    def __init__(self, records: dict[str, Record]):
        self._records = records

    def __getitem__(self, target_id: str) -> str:
        return self._records[target_id].marker

    def __iter__(self) -> Iterator[str]:
        return iter(self._records)

    def __len__(self) -> int:
        return len(self._records)

    def __repr__(self) -> str:
        return repr(dict(self))


class OwnershipState:
    """The objects this provisioner manages, by kind ("users" or "groups") and target id.

    Every change sets ``dirty``, so that an unchanged state is not rewritten. Safe to change from the
    applier's worker threads. ``migrated_from`` is the version the file was read in when it was older.
    """

    def __init__(
        self,
        target: str,
        path: str | None = None,
        users: Mapping[str, str | Record] | None = None,
        groups: Mapping[str, str | Record] | None = None,
        *,
        runs: int = 0,
        last_full_verification: str | None = None,
        last_full_verification_run: int | None = None,
    ):
        self.target = target
        self.path = path
        self.runs = runs
        self.last_full_verification = last_full_verification
        self.last_full_verification_run = last_full_verification_run
        self.migrated_from: int | None = None
        self.dirty = False
        self._mutex = threading.RLock()
        self._records: dict[str, dict[str, Record]] = {
            "users": {tid: _as_record(entry) for tid, entry in (users or {}).items()},
            "groups": {tid: _as_record(entry) for tid, entry in (groups or {}).items()},
        }

    # -- reading ---------------------------------------------------------------------------
    def marker(self, kind: str, target_id: str) -> str | None:
        record = self._kind(kind).get(target_id)
        return record.marker if record else None

    def record(self, kind: str, target_id: str) -> Record | None:
        return self._kind(kind).get(target_id)

    def ids(self, kind: str) -> list[str]:
        return list(self._kind(kind))

    @property
    def users(self) -> Mapping[str, str]:
        """``{target id: marker}`` of the users, read-only and live."""
        return _MarkerView(self._records["users"])

    @property
    def groups(self) -> Mapping[str, str]:
        """``{target id: marker}`` of the groups, read-only and live."""
        return _MarkerView(self._records["groups"])

    @property
    def runs_since_full_verification(self) -> int | None:
        """Recorded runs since the last full verification (that run included: 0), None when never."""
        if self.last_full_verification_run is None:
            return None
        return self.runs - self.last_full_verification_run

    def full_verification_age(self, now: float | None = None) -> float | None:
        """Seconds since the last full verification, or None when never."""
        if self.last_full_verification is None:
            return None
        return (_now() if now is None else now) - parse_time(self.last_full_verification)

    # -- changing --------------------------------------------------------------------------
    def remember(
        self,
        kind: str,
        target_id: str,
        marker: str,
        *,
        key: str | None = None,
        fingerprint: str | None = None,
        data: dict[str, Any] | None = None,
        enabled: bool | None = None,
        verified: bool = False,
    ) -> bool:
        """Record (or update) an object this provisioner created, linked or wrote; True when it changed.

        A field passed as None keeps what is recorded (a new record starts with None); clear the
        fingerprint with :meth:`invalidate`. ``data`` is copied. ``verified=True`` stamps ``verified_at``
        with now (the caller has just read or written the object).
        """
        if not isinstance(marker, str) or not marker:
            raise ValueError("remember: marker must be a non-empty string")
        if data is not None and not isinstance(data, dict):
            raise ValueError("remember: data must be a dict or None")
        with self._mutex:
            records = self._kind(kind)
            old = records.get(target_id)
            changes: dict[str, Any] = {"marker": marker}
            if key is not None:
                changes["key"] = key
            if fingerprint is not None:
                changes["fingerprint"] = fingerprint
            if data is not None:
                changes["data"] = copy.deepcopy(data)
            if enabled is not None:
                changes["enabled"] = bool(enabled)
            if verified:
                changes["verified_at"] = format_time(_now())
            new = replace(old, **changes) if old else Record(**changes)
            if new == old:
                return False
            records[target_id] = new
            self.dirty = True
            return True

    def mark_verified(self, kind: str, target_id: str) -> bool:
        """Stamp ``verified_at`` with now; False (nothing recorded) for an id the state does not hold."""
        with self._mutex:
            records = self._kind(kind)
            old = records.get(target_id)
            if old is None:
                return False
            stamp = format_time(_now())
            if old.verified_at != stamp:
                records[target_id] = replace(old, verified_at=stamp)
                self.dirty = True
            return True

    def invalidate(self, kind: str, target_id: str) -> bool:
        """Forget what was last written (fingerprint, data, verified_at), keeping the ownership link.

        For a write whose outcome is unknown: the record then "must be verified". True when it changed.
        """
        with self._mutex:
            records = self._kind(kind)
            old = records.get(target_id)
            if old is None:
                return False
            new = replace(old, fingerprint=None, data=None, verified_at=None)
            if new == old:
                return False
            records[target_id] = new
            self.dirty = True
            return True

    def forget(self, kind: str, target_id: str) -> bool:
        """Drop the record of an object this provisioner no longer manages; True when there was one."""
        with self._mutex:
            if self._kind(kind).pop(target_id, None) is None:
                return False
            self.dirty = True
            return True

    def record_run(self, full_verification: bool = False) -> None:
        """Count one applied run (call it once per real run, never in check mode); marks the state dirty.

        ``full_verification=True``: this run compared every record with the target; stamps
        ``last_full_verification`` and ``last_full_verification_run``.
        """
        with self._mutex:
            self.runs += 1
            if full_verification:
                self.last_full_verification = format_time(_now())
                self.last_full_verification_run = self.runs
            self.dirty = True

    # -- v1 names, kept while the engine moves to the API above ------------------------------
    def set_user(self, target_id: str, marker: str) -> None:
        self.remember("users", target_id, marker)

    def forget_user(self, target_id: str) -> None:
        self.forget("users", target_id)

    def set_group(self, target_id: str, marker: str) -> None:
        self.remember("groups", target_id, marker)

    def forget_group(self, target_id: str) -> None:
        self.forget("groups", target_id)

    # -- the file --------------------------------------------------------------------------
    def as_dict(self) -> dict[str, Any]:
        with self._mutex:
            return {
                "version": STATE_VERSION,
                "target": self.target,
                "runs": self.runs,
                "last_full_verification": self.last_full_verification,
                "last_full_verification_run": self.last_full_verification_run,
                "users": {tid: record.as_dict() for tid, record in self._records["users"].items()},
                "groups": {tid: record.as_dict() for tid, record in self._records["groups"].items()},
            }

    def _kind(self, kind: str) -> dict[str, Record]:
        try:
            return self._records[kind]
        except KeyError:
            raise ValueError(f"kind must be 'users' or 'groups', not {kind!r}") from None


def _as_record(entry: str | Record) -> Record:
    return entry if isinstance(entry, Record) else Record(marker=entry)


# -- load and save ------------------------------------------------------------------------------
def load_state(path: str, target: str) -> OwnershipState:
    """Read the state file; a missing file is an empty state, anything unreadable is an error.

    A v1 file is migrated in memory (see the module docstring) and the state is dirty, so the next
    save writes v2.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        return OwnershipState(target=target, path=path)
    except OSError as exc:
        raise ProvisioningError(f"state file {path}: cannot read it: {exc.strerror or exc}") from exc
    if not text.strip():
        raise ProvisioningError(
            f"state file {path}: the file is empty, which a save never leaves; restore it from a backup, or"
            " delete it to start over (see docs/state-file.md, 'A lost state file')"
        )
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ProvisioningError(f"state file {path}: not valid JSON ({exc}); fix or restore it") from exc
    if not isinstance(data, dict):
        raise ProvisioningError(f"state file {path}: expected a JSON object")
    version = data.get("version")
    if not _is_count(version) or version not in READABLE_VERSIONS:
        if _is_count(version) and version > STATE_VERSION:
            raise ProvisioningError(
                f"state file {path}: version {version} was written by a newer idsync.provisioning; this one"
                f" reads versions {', '.join(map(str, READABLE_VERSIONS))}. Upgrade the collection"
            )
        raise ProvisioningError(
            f"state file {path}: unsupported version {version!r} (this collection reads versions"
            f" {', '.join(map(str, READABLE_VERSIONS))})"
        )
    # A state file of another target would make this provisioner claim or forget the wrong objects.
    if data.get("target") != target:
        raise ProvisioningError(f"state file {path}: it belongs to target {data.get('target')!r}, not {target!r}")
    if version == 1:
        state = _read_v1(path, data, target)
        state.migrated_from = 1
        state.dirty = True
        return state
    return _read_v2(path, data, target)


def _is_count(value: Any) -> bool:
    """An int as JSON gives one; not a bool, which Python counts as an int (``true`` is no version 1)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _read_v1(path: str, data: dict[str, Any], target: str) -> OwnershipState:
    sections = {}
    for section in KINDS:
        entries = data.get(section)
        if not isinstance(entries, dict) or not all(
            isinstance(key, str) and isinstance(value, str) and value for key, value in entries.items()
        ):
            raise ProvisioningError(f"state file {path}: {section!r} must map target ids to marker strings")
        sections[section] = entries
    return OwnershipState(target=target, path=path, users=sections["users"], groups=sections["groups"])


def _read_v2(path: str, data: dict[str, Any], target: str) -> OwnershipState:
    runs = data.get("runs", 0)
    if not _is_count(runs) or runs < 0:
        raise ProvisioningError(f"state file {path}: 'runs' must be a count, not {runs!r}")
    last_run = data.get("last_full_verification_run")
    if last_run is not None and (not _is_count(last_run) or last_run < 0):
        raise ProvisioningError(f"state file {path}: 'last_full_verification_run' must be a count or null")
    last_full = _time_or_none(path, "last_full_verification", data.get("last_full_verification"))
    sections = {}
    for section in KINDS:
        entries = data.get(section)
        if not isinstance(entries, dict):
            raise ProvisioningError(f"state file {path}: {section!r} must map target ids to records")
        sections[section] = {
            target_id: _read_record(path, section, target_id, entry) for target_id, entry in entries.items()
        }
    return OwnershipState(
        target=target,
        path=path,
        users=sections["users"],
        groups=sections["groups"],
        runs=runs,
        last_full_verification=last_full,
        last_full_verification_run=last_run,
    )


def _read_record(path: str, section: str, target_id: str, entry: Any) -> Record:
    where = f"state file {path}: {section}[{target_id!r}]"
    if not isinstance(entry, dict):
        raise ProvisioningError(f"{where} must be a record (a JSON object with a 'marker')")
    marker = entry.get("marker")
    if not isinstance(marker, str) or not marker:
        raise ProvisioningError(f"{where}: 'marker' must be a non-empty string")
    for name, kind in (("key", str), ("fingerprint", str), ("data", dict), ("enabled", bool)):
        if entry.get(name) is not None and not isinstance(entry[name], kind):
            raise ProvisioningError(f"{where}: {name!r} must be a {kind.__name__} or null")
    return Record(
        marker=marker,
        key=entry.get("key"),
        fingerprint=entry.get("fingerprint"),
        data=entry.get("data"),
        enabled=entry.get("enabled"),
        verified_at=_time_or_none(f"{path}: {section}[{target_id!r}]", "verified_at", entry.get("verified_at")),
    )


def _time_or_none(where: str, name: str, value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            parse_time(value)
            return value
        except ValueError:
            pass
    raise ProvisioningError(f"state file {where}: {name!r} must be a UTC time like 2025-05-01T02:00:00Z or null")


def save_state(state: OwnershipState, check_mode: bool = False) -> bool:
    """Write the state atomically (temp file in the same directory, fsync, rename), mode 0600, as v2.

    Returns True when the file was written. Nothing is written in check mode, without a path,
    or when nothing changed since it was loaded.
    """
    if check_mode or not state.path or not state.dirty:
        return False
    payload = json.dumps(state.as_dict(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    write_private(state.path, payload, "state file")
    state.dirty = False
    state.migrated_from = None
    return True


def write_private(path: str, text: str, what: str) -> None:
    """Write ``text`` to ``path`` atomically (temp file in the same directory, fsync, rename), mode 0600.

    The state file, a saved plan, a report: never half written, nobody else's to read. ``what``
    names the file in errors.
    """
    directory = os.path.dirname(os.path.abspath(path))
    try:
        # mkstemp creates the file 0600
        fd, temp_path = tempfile.mkstemp(dir=directory, prefix=_temp_prefix(path), suffix=".tmp")
    except OSError as exc:
        raise ProvisioningError(f"{what} {path}: cannot write in {directory}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp_path, 0o600)
        os.replace(temp_path, path)
    except OSError as exc:
        _remove_quietly(temp_path)
        raise ProvisioningError(f"{what} {path}: cannot write it: {exc.strerror or exc}") from exc
    _fsync_directory(directory)


def check_state_writable(path: str) -> None:
    """Fail early (before any write to the target) when the state file could not be saved later."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ProvisioningError(f"state file {path}: directory {directory} does not exist")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ProvisioningError(f"state file {path}: directory {directory} is not writable")
    if os.path.exists(path) and not os.access(path, os.R_OK):
        raise ProvisioningError(f"state file {path}: not readable")


# -- the lock -----------------------------------------------------------------------------------
def lock_path(path: str) -> str:
    """The sidecar lock file of a state file."""
    return path + ".lock"


@contextlib.contextmanager
def state_lock(path: str, timeout: float | None = DEFAULT_LOCK_TIMEOUT, poll: float = 0.1) -> Iterator[None]:
    """Hold the state file's lock for the ``with`` block: one run at a time per state file.

    Waits up to ``timeout`` seconds (0: try once; None: wait as long as it takes) for another run to
    finish, then raises ProvisioningError naming the holder. The lock is ``fcntl.flock`` on
    ``<path>.lock``, so the kernel releases it when the holder exits or dies (SIGKILL included).
    Not reentrant: a second ``state_lock`` on the same path in the same process waits like any other.
    On acquisition, temp files a killed save left behind are removed.
    """
    lock_file = lock_path(path)
    try:
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
    except OSError as exc:
        raise ProvisioningError(
            f"state file {path}: cannot open its lock file {lock_file}: {exc.strerror or exc}"
        ) from exc
    try:
        with contextlib.suppress(OSError):  # someone else's file with a looser mode: theirs to fix
            if os.fstat(fd).st_mode & 0o077:
                os.fchmod(fd, 0o600)
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise ProvisioningError(
                        f"state file {path}: cannot lock {lock_file}: {exc.strerror or exc} (the file system"
                        " must support locks: a local disk, or NFSv4)"
                    ) from exc
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise ProvisioningError(
                    f"state file {path} is locked by another run ({_describe_holder(fd)}); wait for it, or"
                    f" remove {lock_file} if no run is active"
                )
            time.sleep(poll if remaining is None else max(0.0, min(poll, remaining)))
        _write_holder(fd, path)
        _remove_leftover_temp_files(path)
        try:
            yield
        finally:
            # Clear the holder before unlocking: after the unlock the file is the next holder's.
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _write_holder(fd: int, path: str) -> None:
    holder = {"pid": os.getpid(), "host": socket.gethostname(), "since": format_time(_now()), "state_file": path}
    text = json.dumps(holder, sort_keys=True).encode("utf-8") + b"\n"
    with contextlib.suppress(OSError):  # the message of a waiting run is the only reader
        os.ftruncate(fd, 0)
        os.pwrite(fd, text, 0)
        os.fsync(fd)


def _describe_holder(fd: int) -> str:
    try:
        holder = json.loads(os.pread(fd, 4096, 0).decode("utf-8"))
        return f"pid {holder['pid']} on host {holder['host']} since {holder['since']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "holder unknown: its lock file names no run"


def _temp_prefix(path: str) -> str:
    return "." + os.path.basename(path) + "."


def _remove_leftover_temp_files(path: str) -> None:
    # Only called with the lock held: no save of this state file is under way, so any temp file is
    # what a killed save left behind.
    pattern = os.path.join(os.path.dirname(os.path.abspath(path)), glob.escape(_temp_prefix(path)) + "*.tmp")
    for leftover in glob.glob(pattern):
        _remove_quietly(leftover)


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
