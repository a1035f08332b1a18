# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures of the connector contract suite: one session-scoped harness per target in
``harness.HARNESSES``, reset before every test.

tests/conftest.py makes the collection importable and puts ``tests/`` on ``sys.path`` (so
``contract.harness``, ``support.*`` and ``unit.memory_connector`` import).
"""

from __future__ import annotations

import pytest
from contract.harness import HARNESSES, Harness

from ansible_collections.idsync.provisioning.plugins.module_utils._connector import Connector


@pytest.fixture(scope="session", params=HARNESSES, ids=[h.name for h in HARNESSES])
def started_harness(request) -> Harness:
    harness = request.param()
    harness.start()
    yield harness
    harness.stop()


@pytest.fixture
def harness(started_harness: Harness) -> Harness:
    started_harness.reset()
    return started_harness


@pytest.fixture
def connector(harness: Harness) -> Connector:
    return harness.connector()


@pytest.fixture
def groups_connector(connector: Connector) -> Connector:
    """The connector, for the group tests: skipped where the target has no groups (PingID)."""
    if not connector.capabilities.groups:
        pytest.skip(f"{type(connector).__name__} has no groups (capabilities.groups is False)")
    return connector
