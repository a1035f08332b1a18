# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the ownership state file: never silently empty, written atomically, not in check mode."""

from __future__ import annotations

import json
import os
import stat

import pytest

from ansible_collections.idsync.provisioning.plugins.module_utils import _state
from ansible_collections.idsync.provisioning.plugins.module_utils._model import ProvisioningError
from ansible_collections.idsync.provisioning.plugins.module_utils._state import (
    OwnershipState,
    check_state_writable,
    load_state,
    save_state,
)


def write_json(path, data):
    path.write_text(json.dumps(data))


def test_missing_file_is_an_empty_state(tmp_path):
    state = load_state(str(tmp_path / "none.json"), "box")

    assert (state.users, state.groups, state.target) == ({}, {}, "box")


def test_corrupt_file_is_an_error_naming_the_path(tmp_path):
    path = tmp_path / "box.json"
    path.write_text('{"version": 1, "users": {')

    with pytest.raises(ProvisioningError, match=str(path)):
        load_state(str(path), "box")


@pytest.mark.parametrize(
    "content, complaint",
    [
        ([], "JSON object"),
        ({"version": 2, "target": "box", "users": {}, "groups": {}}, "version"),
        ({"version": 1, "target": "pingid", "users": {}, "groups": {}}, "belongs to target 'pingid'"),
        ({"version": 1, "target": "box", "users": {"u1": 5}, "groups": {}}, "'users'"),
        ({"version": 1, "target": "box", "users": {}}, "'groups'"),
    ],
)
def test_wrong_shape_is_an_error_naming_the_path(tmp_path, content, complaint):
    path = tmp_path / "box.json"
    write_json(path, content)

    with pytest.raises(ProvisioningError) as raised:
        load_state(str(path), "box")

    assert str(path) in raised.value.message and complaint in raised.value.message


def test_save_then_load_round_trips_with_mode_0600_and_no_temp_file_left(tmp_path):
    path = tmp_path / "box.json"
    state = load_state(str(path), "box")
    state.set_user("123", "idsync:guid-a")
    state.set_group("9", "idsync:guid-g")

    assert save_state(state) is True

    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert os.listdir(tmp_path) == ["box.json"]
    assert json.loads(path.read_text()) == {
        "version": 1,
        "target": "box",
        "users": {"123": "idsync:guid-a"},
        "groups": {"9": "idsync:guid-g"},
    }
    again = load_state(str(path), "box")
    assert (again.users, again.groups) == ({"123": "idsync:guid-a"}, {"9": "idsync:guid-g"})


def test_check_mode_never_writes(tmp_path):
    path = tmp_path / "box.json"
    state = OwnershipState(target="box", path=str(path))
    state.set_user("1", "idsync:a")

    assert save_state(state, check_mode=True) is False
    assert not path.exists()


def test_unchanged_state_is_not_rewritten(tmp_path):
    path = tmp_path / "box.json"
    write_json(path, {"version": 1, "target": "box", "users": {"1": "idsync:a"}, "groups": {}})
    state = load_state(str(path), "box")
    state.set_user("1", "idsync:a")  # same value: not a change
    state.forget_user("unknown")

    assert save_state(state) is False


def test_failed_replace_keeps_the_old_file_and_leaves_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "box.json"
    write_json(path, {"version": 1, "target": "box", "users": {"1": "idsync:a"}, "groups": {}})
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
