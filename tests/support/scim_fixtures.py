# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""pytest fixtures for a real scim2-server on 127.0.0.1 (see ``scim_server.py``).

* ``scim_server``: a fresh, empty server per test, with the default features.
* ``scim_server_factory``: call it with ``service_provider_config=...`` (a dict, see
  ``scim_server.service_provider_config``) to start a server announcing other features.

A missing scim2-server fails the tests (it is a test requirement), it does not skip them.
"""

from __future__ import annotations

import pytest

from support.scim_server import ScimServer


@pytest.fixture
def scim_server_factory():
    started: list[ScimServer] = []

    def start(**options) -> ScimServer:
        server = ScimServer(**options)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def scim_server(scim_server_factory) -> ScimServer:
    return scim_server_factory()
