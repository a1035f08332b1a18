# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the ownership state file (v2).

Never silently empty, written atomically and 0600, not in check mode; v1 files migrate; records and
fingerprints; and the lock, for real: concurrent processes, a timeout naming the holder, SIGKILL.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from ansible_collections.idsync.provisioning.plugins.module_utils import _state
from ansible_collections.idsync.provisioning.plugins.module_utils._model import ProvisioningError
from ansible_collections.idsync.provisioning.plugins.module_utils._state import (
    OwnershipState,
    Record,
    check_state_writable,
    fingerprint,
    load_state,
    save_state,
    state_lock,
)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS_ROOT = os.path.join(REPO_ROOT, ".build", "collections")
# The last commit whose _state.py is the v1 reader: an older collection, for real.
V1_COMMIT = "f2421b5"
NOW = 1_746_064_800.0  # 2025-05-01T02:00:00Z


def write_json(path, data):
    path.write_text(json.dumps(data))


def v1_file(path, users=None, groups=None, target="box"):
    write_json(path, {"version": 1, "target": target, "users": users or {}, "groups": groups or {}})


@pytest.fixture
def clock(monkeypatch):
    """A settable clock for the module."""
    now = [NOW]
    monkeypatch.setattr(_state, "_now", lambda: now[0])
    return now


# -- reading: never silently empty -------------------------------------------------------------
def test_missing_file_is_an_empty_state(tmp_path):
    state = load_state(str(tmp_path / "none.json"), "box")

    assert (dict(state.users), dict(state.groups), state.target, state.runs) == ({}, {}, "box", 0)
    assert state.dirty is False and state.migrated_from is None


@pytest.mark.parametrize("text", ['{"version": 2, "users": {', "", "  \n", "\x00\x00\x00"])
def test_corrupt_or_empty_file_is_an_error_naming_the_path(tmp_path, text):
    path = tmp_path / "box.json"
    path.write_text(text)

    with pytest.raises(ProvisioningError, match=str(path)):
        load_state(str(path), "box")


def v2(**overrides):
    data = {
        "version": 2,
        "target": "box",
        "runs": 0,
        "last_full_verification": None,
        "last_full_verification_run": None,
        "users": {},
        "groups": {},
    }
    data.update(overrides)
    return data


@pytest.mark.parametrize(
    "content, complaint",
    [
        ([], "JSON object"),
        ({"target": "box", "users": {}, "groups": {}}, "unsupported version None"),
        ({"version": "2", "target": "box", "users": {}, "groups": {}}, "unsupported version '2'"),
        ({"version": 0, "target": "box", "users": {}, "groups": {}}, "unsupported version 0"),
        ({"version": 1, "target": "pingid", "users": {}, "groups": {}}, "belongs to target 'pingid'"),
        ({"version": 1, "target": "box", "users": {"u1": 5}, "groups": {}}, "'users'"),
        ({"version": 1, "target": "box", "users": {"u1": ""}, "groups": {}}, "'users'"),
        ({"version": 1, "target": "box", "users": {}}, "'groups'"),
        (v2(target="pingid"), "belongs to target 'pingid'"),
        (v2(users={"u1": "idsync:a"}), "must be a record"),
        (v2(users={"u1": {"key": "jdoe"}}), "'marker'"),
        (v2(users={"u1": {"marker": "idsync:a", "data": ["x"]}}), "'data' must be a dict"),
        (v2(users={"u1": {"marker": "idsync:a", "enabled": "yes"}}), "'enabled' must be a bool"),
        (v2(users={"u1": {"marker": "idsync:a", "verified_at": "yesterday"}}), "'verified_at'"),
        (v2(users={"u1": {"marker": "idsync:a", "verified_at": 1746064800}}), "'verified_at'"),
        (v2(groups=[]), "'groups' must map"),
        (v2(runs=-1), "'runs'"),
        (v2(runs=True), "'runs'"),
        (v2(last_full_verification="2025-05-01"), "'last_full_verification'"),
    ],
)
def test_wrong_shape_is_an_error_naming_the_path(tmp_path, content, complaint):
    path = tmp_path / "box.json"
    write_json(path, content)

    with pytest.raises(ProvisioningError) as raised:
        load_state(str(path), "box")

    assert str(path) in raised.value.message and complaint in raised.value.message


@pytest.mark.parametrize("version", [3, 17])
def test_a_newer_version_is_refused_by_name(tmp_path, version):
    path = tmp_path / "box.json"
    write_json(path, v2(version=version))

    with pytest.raises(ProvisioningError) as raised:
        load_state(str(path), "box")

    message = raised.value.message
    assert f"version {version} was written by a newer idsync.provisioning" in message
    assert "reads versions 1, 2" in message and "Upgrade the collection" in message


# -- v1 -> v2 ----------------------------------------------------------------------------------
def test_v1_file_migrates_to_v2_records_that_must_be_verified(tmp_path):
    path = tmp_path / "box.json"
    v1_file(path, users={"123": "idsync:guid-a", "124": "idsync:guid-b"}, groups={"9": "idsync:guid-g"})

    state = load_state(str(path), "box")

    assert state.migrated_from == 1 and state.dirty, "a migrated state is written back at the next save"
    assert state.record("users", "123") == Record(marker="idsync:guid-a")
    assert state.record("users", "123").fingerprint is None, "unknown fingerprint: must be verified"
    assert state.record("users", "123").verified_at is None
    assert state.marker("groups", "9") == "idsync:guid-g"
    assert sorted(state.ids("users")) == ["123", "124"]
    assert (state.runs, state.last_full_verification, state.runs_since_full_verification) == (0, None, None)


def test_migrated_state_is_written_back_as_v2_at_the_next_save(tmp_path):
    path = tmp_path / "box.json"
    v1_file(path, users={"123": "idsync:guid-a"}, groups={"9": "idsync:guid-g"})
    state = load_state(str(path), "box")

    assert save_state(state) is True, "nothing else changed, yet the migration itself is saved"

    empty = {"key": None, "fingerprint": None, "data": None, "enabled": None, "verified_at": None}
    assert json.loads(path.read_text()) == {
        "version": 2,
        "target": "box",
        "runs": 0,
        "last_full_verification": None,
        "last_full_verification_run": None,
        "users": {"123": {"marker": "idsync:guid-a", **empty}},
        "groups": {"9": {"marker": "idsync:guid-g", **empty}},
    }
    again = load_state(str(path), "box")
    assert again.migrated_from is None and again.dirty is False
    assert dict(again.users) == {"123": "idsync:guid-a"} and dict(again.groups) == {"9": "idsync:guid-g"}


def test_a_preview_never_writes_the_migration(tmp_path):
    path = tmp_path / "box.json"
    v1_file(path, users={"123": "idsync:guid-a"})
    before = path.read_text()

    assert save_state(load_state(str(path), "box"), check_mode=True) is False
    assert path.read_text() == before


def v1_reader():
    """The v1 _state module, from git: an older collection reading a v2 file."""
    try:
        source = subprocess.run(
            ["git", "-C", REPO_ROOT, "show", f"{V1_COMMIT}:plugins/module_utils/_state.py"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip(f"git history with commit {V1_COMMIT} is not available")
    assert "STATE_VERSION = 1" in source
    spec = importlib.util.spec_from_loader("idsync_state_v1", loader=None)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    try:
        exec(compile(source, "_state_v1.py", "exec"), module.__dict__)  # noqa: S102 - our own history
    finally:
        del sys.modules[spec.name]
    return module


def test_an_older_collection_refuses_a_v2_file_clearly_instead_of_misreading_it(tmp_path):
    path = tmp_path / "box.json"
    state = OwnershipState(target="box", path=str(path))
    state.remember("users", "123", "idsync:guid-a", key="jdoe")
    save_state(state)

    with pytest.raises(ProvisioningError, match=r"unsupported version 2 \(expected 1\)"):
        v1_reader().load_state(str(path), "box")


# -- records -----------------------------------------------------------------------------------
def test_remember_records_every_field_and_none_keeps_what_is_recorded(clock):
    state = OwnershipState(target="pingid")
    written = {"fName": "John", "lName": "Doe", "email": "jdoe@example.com"}

    assert state.remember(
        "users",
        "u1",
        "idsync:g1",
        key="jdoe",
        fingerprint=fingerprint(written),
        data=written,
        enabled=True,
        verified=True,
    )
    record = state.record("users", "u1")
    assert record == Record(
        marker="idsync:g1",
        key="jdoe",
        fingerprint=fingerprint(written),
        data=written,
        enabled=True,
        verified_at="2025-05-01T02:00:00Z",
    )

    clock[0] += 60
    assert state.remember("users", "u1", "idsync:g1", enabled=False)
    record = state.record("users", "u1")
    assert (record.key, record.data, record.enabled, record.verified_at) == (
        "jdoe",
        written,
        False,
        "2025-05-01T02:00:00Z",
    ), "unpassed fields are kept; verified_at moves only when verified"
    assert record.verified_age() == 60.0


def test_remembered_data_is_a_copy(clock):
    state = OwnershipState(target="pingid")
    written = {"fName": "John", "phones": ["1"]}
    state.remember("users", "u1", "idsync:g1", data=written)

    written["fName"] = "Jack"
    written["phones"].append("2")

    assert state.record("users", "u1").data == {"fName": "John", "phones": ["1"]}


def test_invalidate_keeps_the_link_and_forgets_what_was_written(clock):
    state = OwnershipState(target="pingid")
    state.remember("users", "u1", "idsync:g1", key="jdoe", fingerprint="sha256:x", data={"a": 1}, verified=True)

    assert state.invalidate("users", "u1") is True
    assert state.record("users", "u1") == Record(marker="idsync:g1", key="jdoe")
    assert state.invalidate("users", "u1") is False
    assert state.invalidate("users", "nobody") is False


def test_mark_verified_stamps_utc_iso_time(clock):
    state = OwnershipState(target="pingid", users={"u1": "idsync:g1"})

    assert state.mark_verified("users", "u1") is True
    assert state.record("users", "u1").verified_at == "2025-05-01T02:00:00Z"
    assert _state.parse_time("2025-05-01T02:00:00Z") == NOW
    assert state.mark_verified("users", "unknown") is False


def test_record_run_counts_runs_and_full_verifications(clock):
    state = OwnershipState(target="pingid")
    state.record_run()
    assert (state.runs, state.runs_since_full_verification, state.full_verification_age()) == (1, None, None)

    state.record_run(full_verification=True)
    clock[0] += 3600
    state.record_run()
    state.record_run()

    assert (state.runs, state.last_full_verification, state.last_full_verification_run) == (
        4,
        "2025-05-01T02:00:00Z",
        2,
    )
    assert state.runs_since_full_verification == 2
    assert state.full_verification_age() == 3600.0


def test_file_level_fields_round_trip(tmp_path, clock):
    path = tmp_path / "pingid.json"
    state = load_state(str(path), "pingid")
    state.remember("users", "u1", "idsync:g1", key="jdoe", data={"fName": "Jöhn"}, enabled=True, verified=True)
    state.record_run(full_verification=True)
    save_state(state)

    again = load_state(str(path), "pingid")

    assert again.record("users", "u1") == state.record("users", "u1")
    assert (again.runs, again.last_full_verification, again.last_full_verification_run) == (
        1,
        "2025-05-01T02:00:00Z",
        1,
    )
    assert "Jöhn" in path.read_text(encoding="utf-8")


def test_kind_is_users_or_groups():
    state = OwnershipState(target="box")

    for call in (
        lambda: state.remember("user", "1", "idsync:a"),
        lambda: state.marker("members", "1"),
        lambda: state.ids("Users"),
    ):
        with pytest.raises(ValueError, match="'users' or 'groups'"):
            call()
    with pytest.raises(ValueError, match="marker"):
        state.remember("users", "1", "")


def test_compatibility_views_are_live_read_only_marker_maps():
    state = OwnershipState(target="box", users={"1": "idsync:a"}, groups={"9": Record(marker="idsync:g")})
    users = state.users

    state.set_user("2", "idsync:b")
    state.set_group("9", "idsync:g")  # same: no change
    state.forget_group("nothing")

    assert users == {"1": "idsync:a", "2": "idsync:b"} and users.get("3") is None
    assert state.groups == {"9": "idsync:g"}
    with pytest.raises(TypeError):
        users["3"] = "idsync:c"  # type: ignore[index]
    state.forget_user("1")
    assert set(state.users) == {"2"}


def test_remember_is_safe_from_worker_threads():
    state = OwnershipState(target="box")

    def work(worker):
        for number in range(200):
            state.remember("users", f"{worker}-{number}", f"idsync:{worker}-{number}")

    threads = [threading.Thread(target=work, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(state.ids("users")) == 1600


# -- fingerprint -------------------------------------------------------------------------------
def test_fingerprint_is_stable_across_key_order_and_sensitive_to_values():
    one = {"attributes": {"fName": "John", "lName": "Doe", "nested": {"a": 1, "b": [1, 2]}}, "enabled": True}
    same = {"enabled": True, "attributes": {"nested": {"b": [1, 2], "a": 1}, "lName": "Doe", "fName": "John"}}

    assert fingerprint(one) == fingerprint(same)
    assert fingerprint(one).startswith("sha256:") and len(fingerprint(one)) == len("sha256:") + 64
    for changed in (
        {**one, "enabled": False},
        {**one, "attributes": {**one["attributes"], "fName": "Johnny"}},
        {**one, "attributes": {**one["attributes"], "fName": "john"}},
        {**one, "attributes": {**one["attributes"], "extra": None}},
        {**one, "attributes": {**one["attributes"], "nested": {"a": 1, "b": [2, 1]}}},
        {**one, "attributes": {**one["attributes"], "nested": {"a": "1", "b": [1, 2]}}},
    ):
        assert fingerprint(changed) != fingerprint(one)
    # Pinned: the hash is part of the file format; changing it makes every record look changed.
    # sha256 of the UTF-8 bytes of '{"a":"é","b":1}'.
    assert fingerprint({"b": 1, "a": "é"}) == "sha256:aa58fba8483623bed37c1b02edfccbdd9a53123837c20bfa4cb4049993a2872e"
    with pytest.raises(TypeError):
        fingerprint({"when": object()})


# -- writing -----------------------------------------------------------------------------------
def test_save_then_load_round_trips_with_mode_0600_and_no_temp_file_left(tmp_path):
    path = tmp_path / "box.json"
    state = load_state(str(path), "box")
    state.set_user("123", "idsync:guid-a")
    state.set_group("9", "idsync:guid-g")

    assert save_state(state) is True

    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert os.listdir(tmp_path) == ["box.json"]
    saved = json.loads(path.read_text())
    assert (saved["version"], saved["users"]["123"]["marker"], saved["groups"]["9"]["marker"]) == (
        2,
        "idsync:guid-a",
        "idsync:guid-g",
    )
    again = load_state(str(path), "box")
    assert (dict(again.users), dict(again.groups)) == ({"123": "idsync:guid-a"}, {"9": "idsync:guid-g"})


def test_a_looser_mode_is_corrected_by_the_next_save(tmp_path):
    path = tmp_path / "box.json"
    v1_file(path, users={"1": "idsync:a"})
    os.chmod(path, 0o644)

    save_state(load_state(str(path), "box"))

    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_check_mode_never_writes(tmp_path):
    path = tmp_path / "box.json"
    state = OwnershipState(target="box", path=str(path))
    state.set_user("1", "idsync:a")

    assert save_state(state, check_mode=True) is False
    assert not path.exists()


def test_unchanged_state_is_not_rewritten(tmp_path, clock):
    path = tmp_path / "box.json"
    state = OwnershipState(target="box", path=str(path))
    state.remember("users", "1", "idsync:a", key="alice", fingerprint="sha256:x", enabled=True, verified=True)
    save_state(state)
    os.utime(path, (1, 1))

    state = load_state(str(path), "box")
    assert state.remember("users", "1", "idsync:a", key="alice", fingerprint="sha256:x", verified=True) is False
    state.forget_user("unknown")
    state.mark_verified("users", "1")  # the same second: nothing new
    state.invalidate("users", "unknown")

    assert state.dirty is False
    assert save_state(state) is False
    assert os.stat(path).st_mtime == 1

    state.remember("users", "1", "idsync:a", enabled=False)
    assert state.dirty and save_state(state) is True and state.dirty is False


def test_failed_replace_keeps_the_old_file_and_leaves_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "box.json"
    v1_file(path, users={"1": "idsync:a"})
    state = load_state(str(path), "box")
    state.forget_user("1")

    def broken_replace(source, destination):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_state.os, "replace", broken_replace)
    with pytest.raises(ProvisioningError, match="No space left"):
        save_state(state)

    assert json.loads(path.read_text())["users"] == {"1": "idsync:a"}
    assert os.listdir(tmp_path) == ["box.json"]


def test_missing_directory_is_an_error_naming_the_path(tmp_path):
    path = tmp_path / "absent" / "box.json"
    state = OwnershipState(target="box", path=str(path))
    state.set_user("1", "idsync:a")

    with pytest.raises(ProvisioningError, match="absent"):
        check_state_writable(str(path))
    with pytest.raises(ProvisioningError, match=str(path)):
        save_state(state)
    with pytest.raises(ProvisioningError, match="lock file"), state_lock(str(path), timeout=0):
        pass


# -- the lock, in one process ------------------------------------------------------------------
def test_lock_file_is_0600_names_its_holder_and_is_cleared_after(tmp_path):
    path = tmp_path / "box.json"
    lock = tmp_path / "box.json.lock"
    lock.write_text("")
    os.chmod(lock, 0o666)

    with state_lock(str(path), timeout=0):
        holder = json.loads(lock.read_text())
        assert stat.S_IMODE(os.stat(lock).st_mode) == 0o600
        assert (holder["pid"], holder["host"], holder["state_file"]) == (os.getpid(), socket.gethostname(), str(path))
        _state.parse_time(holder["since"])

    assert lock.exists(), "never deleted: two runs could otherwise lock two different files"
    assert lock.read_text() == ""


def test_the_lock_is_released_when_the_block_fails(tmp_path):
    path = str(tmp_path / "box.json")

    with pytest.raises(RuntimeError), state_lock(path, timeout=0):
        raise RuntimeError("the run failed")

    with state_lock(path, timeout=0):
        pass


def test_a_second_lock_in_the_same_process_waits_like_any_other(tmp_path):
    path = str(tmp_path / "box.json")

    held = state_lock(path, timeout=0)
    with held, pytest.raises(ProvisioningError, match="is locked by another run"), state_lock(path, timeout=0):
        pass


def test_leftover_temp_files_are_ignored_by_load_and_removed_by_the_next_holder(tmp_path):
    path = tmp_path / "box.json"
    v1_file(path, users={"1": "idsync:a"})
    leftover = tmp_path / ".box.json.abc123.tmp"
    leftover.write_text('{"version": 2, "tru')
    other = tmp_path / ".other.json.abc123.tmp"
    other.write_text("not ours")

    assert dict(load_state(str(path), "box").users) == {"1": "idsync:a"}
    with state_lock(str(path), timeout=0):
        pass

    assert not leftover.exists() and other.exists()


# -- the lock, across processes ----------------------------------------------------------------
CHILD = textwrap.dedent(
    """
    import json, os, sys, time
    from ansible_collections.idsync.provisioning.plugins.module_utils import _state

    path, tag, mode, timeout = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    flag = path + "." + tag
    while mode == "add" and not os.path.exists(path + ".go"):
        time.sleep(0.01)
    with _state.state_lock(path, timeout=timeout):
        started = time.time()
        state = _state.load_state(path, "box")
        if mode == "hold":
            open(flag + ".locked", "w").close()
            time.sleep(60)
        for number in range(200):
            state.remember("users", f"{tag}-{number}", f"idsync:{tag}-{number}", key=f"{tag}{number}")
            if number == 100:
                time.sleep(0.3)  # the other run is waiting for the lock meanwhile
        if mode == "kill-mid-save":
            def stuck_replace(source, destination):
                open(flag + ".locked", "w").close()
                time.sleep(60)
            _state.os.replace = stuck_replace
        _state.save_state(state)
        with open(flag + ".span", "w") as handle:
            json.dump([started, time.time()], handle)
    """
)


def child(path, tag, mode, timeout=60.0):
    env = dict(os.environ, PYTHONPATH=COLLECTIONS_ROOT)
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), tag, mode, str(timeout)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(flag, process, seconds=30.0):
    deadline = time.monotonic() + seconds
    while not os.path.exists(flag):
        if process.poll() is not None:
            pytest.fail(f"child exited {process.returncode}: {process.stderr.read()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"child never reached {flag}")
        time.sleep(0.01)


def finish(process, seconds=60):
    try:
        _out, err = process.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    return process.returncode, err


def test_two_concurrent_runs_keep_all_their_records(tmp_path):
    path = tmp_path / "box.json"
    v1_file(path, users={"old": "idsync:old"})
    runs = [child(path, tag, "add") for tag in ("a", "b")]
    time.sleep(0.2)  # both are waiting at the start line
    (tmp_path / "box.json.go").write_text("")

    for run in runs:
        code, err = finish(run)
        assert code == 0, err

    saved = json.loads(path.read_text())
    assert saved["version"] == 2
    assert len(saved["users"]) == 401 and saved["users"]["old"]["marker"] == "idsync:old"
    assert {saved["users"][f"{tag}-{n}"]["key"] for tag in "ab" for n in (0, 199)} == {"a0", "a199", "b0", "b199"}
    spans = sorted(json.loads((tmp_path / f"box.json.{tag}.span").read_text()) for tag in "ab")
    assert spans[0][1] <= spans[1][0], f"the runs overlapped: {spans}"
    assert sorted(os.listdir(tmp_path)) == [
        "box.json",
        "box.json.a.span",
        "box.json.b.span",
        "box.json.go",
        "box.json.lock",
    ]


def test_a_second_run_times_out_naming_the_holder(tmp_path):
    path = tmp_path / "box.json"
    holder = child(path, "h", "hold")
    try:
        wait_for(str(path) + ".h.locked", holder)
        started = time.monotonic()
        waiter = child(path, "w", "add", timeout=1.0)
        (tmp_path / "box.json.go").write_text("")
        code, err = finish(waiter)
        waited = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()

    assert code == 1
    lock = f"{path}.lock"
    assert f"state file {path} is locked by another run (pid {holder.pid} on host {socket.gethostname()} since " in err
    assert f"wait for it, or remove {lock} if no run is active" in err
    assert 1.0 <= waited < 10
    assert not path.exists(), "the waiting run wrote nothing"


def test_a_waiting_run_goes_on_when_the_holder_finishes(tmp_path):
    path = tmp_path / "box.json"
    first = child(path, "a", "add")
    (tmp_path / "box.json.go").write_text("")
    deadline = time.monotonic() + 30
    while not os.path.exists(f"{path}.lock") or not (tmp_path / "box.json.lock").read_text():
        assert time.monotonic() < deadline and first.poll() is None, "the first run never locked"
        time.sleep(0.01)

    with state_lock(str(path), timeout=30):
        state = load_state(str(path), "box")
    finish(first)

    assert len(state.ids("users")) == 200, "the lock was had only after the first run saved"


def test_a_run_killed_while_holding_the_lock_blocks_nobody(tmp_path):
    path = tmp_path / "box.json"
    v1_file(path, users={"1": "idsync:a"})
    holder = child(path, "h", "hold")
    wait_for(str(path) + ".h.locked", holder)

    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()

    with state_lock(str(path), timeout=0):
        assert dict(load_state(str(path), "box").users) == {"1": "idsync:a"}


def test_a_run_killed_mid_save_leaves_the_last_good_state(tmp_path):
    path = tmp_path / "box.json"
    v1_file(path, users={"1": "idsync:a"})
    before = path.read_text()
    victim = child(path, "k", "kill-mid-save")
    (tmp_path / "box.json.go").write_text("")
    wait_for(str(path) + ".k.locked", victim)
    temp_files = [name for name in os.listdir(tmp_path) if name.startswith(".box.json.") and name.endswith(".tmp")]
    assert len(temp_files) == 1, "killed between the temp write and the replace"

    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()

    with state_lock(str(path), timeout=5):
        state = load_state(str(path), "box")
    assert path.read_text() == before
    assert dict(state.users) == {"1": "idsync:a"}
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")], "the next holder cleaned up"
