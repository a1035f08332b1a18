# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures of the real directories: Samba's AD domain controller and 389-DS (session scope).

Each starts from nothing (provision or dscreate in a temp dir), is populated with the entries of
``support.samba_ad.populate`` / ``support.ds389.populate``, and is stopped by its pid at the end
of the session. A machine without the packages fails with what to install; nothing is skipped.

Samba's ports are fixed (389/636): its fixture holds a machine-wide lock while it runs, and every
test that uses it lives in ``test_samba_ad.py`` (``--dist loadfile`` keeps them on one worker).
"""

from __future__ import annotations

import pytest
from support import ds389 as ds389_support
from support import samba_ad as samba_support


def _started(server_class, error_class, workdir, check, populate):
    """Start ``server_class(workdir)``, populate it, yield it, stop it; a missing package fails."""
    try:
        check()
    except error_class as exc:
        pytest.fail(str(exc), pytrace=False)
    with server_class(workdir) as server:
        server.dns = populate(server)
        yield server


@pytest.fixture(scope="session")
def samba_ad(tmp_path_factory):
    """A running, populated ``SambaAD``; ``.dns`` maps the names of ``samba_ad.populate`` to DNs.

    Tests that change entries must put them back (or create and delete their own)."""
    yield from _started(
        samba_support.SambaAD,
        samba_support.SambaError,
        tmp_path_factory.mktemp("samba-ad"),
        samba_support.check_requirements,
        samba_support.populate,
    )


@pytest.fixture(scope="session")
def ds389(tmp_path_factory):
    """A running, populated ``DS389``; ``.dns`` maps the names of ``ds389.populate`` to DNs."""
    yield from _started(
        ds389_support.DS389,
        ds389_support.DS389Error,
        tmp_path_factory.mktemp("ds389"),
        ds389_support.check_requirements,
        ds389_support.populate,
    )
