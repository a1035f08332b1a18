# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import pytest

from ansible_collections.idsync.provisioning.plugins.module_utils._model import ProvisioningError
from ansible_collections.idsync.provisioning.plugins.module_utils._runner import parse_duration, verification_policy


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("7d", 604800), ("12h", 43200), ("90m", 5400), ("30s", 30), ("3600", 3600), ("never", None), ("", None)],
)
def test_durations(text, seconds):
    assert parse_duration("verify_max_age", text) == seconds


@pytest.mark.parametrize("text", ["7 days", "-1d", "1.5h", "d"])
def test_a_bad_duration_names_the_option(text):
    with pytest.raises(ProvisioningError, match="verify_max_age: expected a number of seconds or a duration"):
        parse_duration("verify_max_age", text)


def test_verification_policy_only_for_targets_with_the_options():
    assert verification_policy({"remove_user_action": "disable"}) == {}
    assert verification_policy({"full_verification": False, "verify_every_runs": -1, "verify_max_age": "1h"}) == {
        "full_verification": False,
        "verify_every_runs": None,
        "verify_max_age": 3600,
    }
