# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""pytest fixtures for a real OpenLDAP directory (see ``slapd.py`` and ``tests/data/ldap/README.md``).

- ``slapd`` (session): one server with the seed, shared by every test that only reads. Do not
  modify it: use ``fresh_slapd`` for that.
- ``fresh_slapd`` (function): a new server with the same seed, stopped after the test.
- ``slapd_factory`` (function): ``slapd_factory(ldif_files=None, size_limit=500)`` starts more
  servers (own seed, other size limit); all are stopped after the test.

All of them yield ``SlapdServer`` objects and share one throwaway CA per session.
"""

import pytest

from support.slapd import SlapdServer, generate_tls


@pytest.fixture(scope="session")
def slapd_tls_dir(tmp_path_factory):
    """A directory holding the session's CA (``ca.pem``) and server certificate/key."""
    directory = tmp_path_factory.mktemp("slapd-tls")
    generate_tls(directory)
    return directory


@pytest.fixture(scope="session")
def slapd(tmp_path_factory, slapd_tls_dir):
    """The shared, read-only seeded directory (session scope).

    At the end of the session it checks that nobody wrote to it, and fails loudly if a test did.
    """
    server = SlapdServer(tmp_path_factory.mktemp("slapd"), tls_dir=slapd_tls_dir)
    with server:
        before = server.fingerprint()
        yield server
        after = server.fingerprint()
    if after != before:
        pytest.fail(
            f"a test modified the shared, read-only `slapd` fixture (entries, newest entryCSN: {before!r} -> "
            f"{after!r}); tests that write must use `fresh_slapd`",
            pytrace=False,
        )


@pytest.fixture
def fresh_slapd(tmp_path_factory, slapd_tls_dir):
    """A seeded directory of its own, for a test that modifies it (function scope)."""
    server = SlapdServer(tmp_path_factory.mktemp("fresh-slapd"), tls_dir=slapd_tls_dir)
    with server:
        yield server


@pytest.fixture
def slapd_factory(tmp_path_factory, slapd_tls_dir):
    """Start extra servers: ``slapd_factory(ldif_files=None, size_limit=500)`` -> started SlapdServer."""
    servers = []

    def make(ldif_files=None, size_limit=500):
        server = SlapdServer(
            tmp_path_factory.mktemp("slapd-extra"), ldif_files, size_limit=size_limit, tls_dir=slapd_tls_dir
        )
        servers.append(server)
        return server.start()

    yield make
    for server in servers:
        server.stop()
