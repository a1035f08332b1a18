# -*- coding: utf-8 -*-
"""Shared pytest set-up: make the collection importable and load the server fixtures."""

import os
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS_ROOT = os.path.join(REPO_ROOT, ".build", "collections")
COLLECTION_LINK = os.path.join(COLLECTIONS_ROOT, "ansible_collections", "idsync", "provisioning")

# ansible and the unit tests both import the collection as ansible_collections.idsync.provisioning.
if not os.path.exists(COLLECTION_LINK):
    os.makedirs(os.path.dirname(COLLECTION_LINK), exist_ok=True)
    os.symlink(REPO_ROOT, COLLECTION_LINK)
if COLLECTIONS_ROOT not in sys.path:
    sys.path.insert(0, COLLECTIONS_ROOT)
os.environ.setdefault("ANSIBLE_COLLECTIONS_PATH", COLLECTIONS_ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

pytest_plugins = ["support.ldap_fixtures", "support.scim_fixtures"]
