# -*- coding: utf-8 -*-
"""The collection builds, installs, and documents itself."""

import os
import subprocess
import sys
import tarfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN_DIR = Path(sys.executable).parent


def run(*argv, cwd=REPO_ROOT, env=None):
    proc = subprocess.run([str(a) for a in argv], cwd=cwd, capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_build_and_install(tmp_path):
    run(BIN_DIR / "ansible-galaxy", "collection", "build", "--output-path", tmp_path, REPO_ROOT)
    tarball = tmp_path / "idsync-provisioning-0.1.0.tar.gz"
    with tarfile.open(tarball) as archive:
        names = archive.getnames()
    assert "plugins/lookup/ldap_source.py" in names
    assert "MANIFEST.json" in names
    assert not [n for n in names if n.startswith((".venv", ".build", ".git/"))], "build output leaked into the tarball"
    run(BIN_DIR / "ansible-galaxy", "collection", "install", "--force", "-p", tmp_path / "installed", tarball)
    assert (tmp_path / "installed/ansible_collections/idsync/provisioning/plugins/module_utils/_ldap.py").is_file()


def test_ansible_doc_shows_the_lookup_with_examples():
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO_ROOT / ".build" / "collections"), ANSIBLE_NOCOLOR="1")
    text = run(BIN_DIR / "ansible-doc", "-t", "lookup", "idsync.provisioning.ldap_source", env=env)
    for expected in ("server_uri", "user_groups", "nested_groups", "LDAP_BIND_PW", "EXAMPLES", "RETURN VALUES"):
        assert expected in text, expected
