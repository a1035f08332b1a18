# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The two directory backends of ``_ldap.py`` for tests parametrized over them.

python-ldap is part of requirements/dev.txt, so a test venv without it is broken: a test asking
for it fails. Only where it is left out on purpose does it skip: in the unit venvs of the other
ansible-core versions (``make unit-cores``, whose CORE_VENV_SKIP leaves python-ldap out; they are
recognised by an ansible-core other than the one requirements/dev.txt pins), or with
``IDSYNC_ALLOW_NO_PYTHON_LDAP=1``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from ansible.release import __version__ as ANSIBLE_CORE_VERSION

from ansible_collections.idsync.provisioning.plugins.module_utils import _ldap

BACKENDS = ("python-ldap", "ldap3")
ALLOW_MISSING = "IDSYNC_ALLOW_NO_PYTHON_LDAP"
DEV_REQUIREMENTS = Path(__file__).resolve().parents[2] / "requirements" / "dev.txt"


def _pinned_core() -> str | None:
    found = re.search(r"^ansible-core==(\S+)", DEV_REQUIREMENTS.read_text(), re.MULTILINE)
    return found.group(1) if found else None


def python_ldap_left_out() -> str | None:
    """Why a missing python-ldap is expected here, or None when it is not."""
    if os.environ.get(ALLOW_MISSING) == "1":
        return f"{ALLOW_MISSING}=1"
    pinned = _pinned_core()
    if pinned and pinned != ANSIBLE_CORE_VERSION:
        return f"the venv of ansible-core {ANSIBLE_CORE_VERSION}, not the pinned {pinned} (make unit-cores)"
    return None


def usable_backend(name):
    """``name``, after failing (or, with IDSYNC_ALLOW_NO_PYTHON_LDAP=1, skipping) when its library is missing."""
    library, present, _error = _ldap.backend_requirement(name)
    if present:
        return name
    reason = python_ldap_left_out() if library == "python-ldap" else None
    if reason:
        pytest.skip(f"python-ldap is not installed in this Python, left out on purpose: {reason}")
    pytest.fail(
        f"{library} is not installed in this Python, but requirements/dev.txt has it (make venv); "
        f"set {ALLOW_MISSING}=1 only where python-ldap is left out on purpose",
        pytrace=False,
    )
    return name


@pytest.fixture(params=BACKENDS)
def ldap_backend(request):
    """Each backend in turn (function scope)."""
    return usable_backend(request.param)
