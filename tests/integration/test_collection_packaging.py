# -*- coding: utf-8 -*-
"""The collection builds, installs, documents itself, and is what Galaxy and ansible-builder accept."""

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN_DIR = Path(sys.executable).parent
GALAXY = yaml.safe_load((REPO_ROOT / "galaxy.yml").read_text(encoding="utf-8"))
RUNTIME = yaml.safe_load((REPO_ROOT / "meta" / "runtime.yml").read_text(encoding="utf-8"))
TARBALL_NAME = f"{GALAXY['namespace']}-{GALAXY['name']}-{GALAXY['version']}.tar.gz"
# what `make galaxy-importer` writes (make test runs it before the integration tests)
IMPORTER_DIR = REPO_ROOT / ".build" / "galaxy-importer"
GPL3 = "GNU GENERAL PUBLIC LICENSE\n                       Version 3, 29 June 2007"
PLACEHOLDER = re.compile(r"https?://[^\s'\"]*\.invalid\b")


def run(*argv, cwd=REPO_ROOT, env=None):
    proc = subprocess.run([str(a) for a in argv], cwd=cwd, capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def modules():
    return sorted(p.stem for p in (REPO_ROOT / "plugins" / "modules").glob("*.py") if p.stem != "__init__")


def requirement_lines(path):
    lines = (line.split("#")[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line]


@pytest.fixture(scope="module")
def tarball(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    run(BIN_DIR / "ansible-galaxy", "collection", "build", "--output-path", out, REPO_ROOT)
    return out / TARBALL_NAME


def test_build_and_install(tarball, tmp_path):
    with tarfile.open(tarball) as archive:
        names = archive.getnames()
    assert "plugins/lookup/ldap_source.py" in names
    assert "MANIFEST.json" in names
    assert not [n for n in names if n.startswith((".venv", ".build", ".git/"))], "build output leaked into the tarball"
    run(BIN_DIR / "ansible-galaxy", "collection", "install", "--force", "-p", tmp_path / "installed", tarball)
    assert (tmp_path / "installed/ansible_collections/idsync/provisioning/plugins/module_utils/_ldap.py").is_file()


def test_the_tarball_ships_the_license_and_the_collection_ee_declaration(tarball):
    with tarfile.open(tarball) as archive:
        names = set(archive.getnames())
        copying = archive.extractfile("COPYING").read().decode("utf-8")
        manifest = json.load(archive.extractfile("MANIFEST.json"))
    assert GALAXY["license"] == ["GPL-3.0-or-later"]
    assert copying.lstrip().startswith(GPL3) and "END OF TERMS AND CONDITIONS" in copying
    assert copying == (REPO_ROOT / "COPYING").read_text(encoding="utf-8")
    assert manifest["collection_info"]["license"] == ["GPL-3.0-or-later"]
    # the collection's dependency declaration ships (ansible-builder reads it from installed collections);
    # the image definition of this project does not
    assert {"meta/execution-environment.yml", "meta/ee-requirements.txt", "bindep.txt", "meta/runtime.yml"} <= names
    assert "execution-environment.yml" not in names


def test_galaxy_metadata_has_a_category_tag_and_no_placeholder_urls():
    categories = {"application", "cloud", "database", "infrastructure", "linux", "monitoring", "networking"}
    categories |= {"security", "storage", "tools", "windows", "ai", "eda"}  # galaxy-importer's list
    assert categories & set(GALAXY["tags"])
    for key in ("documentation", "homepage", "issues"):
        assert not PLACEHOLDER.search(str(GALAXY.get(key, ""))), key
    # `repository` is required by Galaxy; it is the one URL still to be set before publication
    assert GALAXY["repository"]


def test_plugin_docs_link_no_placeholder_urls():
    """`seealso` links (and any other `link:` in plugin documentation) point somewhere real."""
    bad = []
    for path in sorted((REPO_ROOT / "plugins").rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            link = re.match(r"\s*(?:-\s*)?link:\s*(\S+)", line)
            if link and PLACEHOLDER.match(link.group(1)):
                bad.append(f"{path.relative_to(REPO_ROOT)}:{number}: {link.group(1)}")
    assert not bad


def test_action_groups_name_only_existing_modules():
    existing = set(modules())
    groups = RUNTIME["action_groups"]
    assert groups, "no action group"
    for name, members in groups.items():
        assert members, f"empty action group {name}"
        assert set(members) <= existing, f"{name}: no such modules {set(members) - existing}"
        # every module of a target is in its group, so module_defaults reaches all of them
        assert set(members) == {m for m in existing if m.startswith(f"{name}_")}, name


def test_requires_ansible_is_the_oldest_core_the_tests_run_on():
    makefile = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    oldest = re.search(r"^CORE_OLDEST := (\d+\.\d+)\.\d+$", makefile, re.M).group(1)
    assert RUNTIME["requires_ansible"] == f">={oldest}.0"
    config = yaml.safe_load((REPO_ROOT / "tests" / "config.yml").read_text(encoding="utf-8"))
    assert config["modules"]["python_requires"]


def test_ee_requirements_are_minimums_of_the_tested_versions():
    declaration = yaml.safe_load((REPO_ROOT / "meta" / "execution-environment.yml").read_text(encoding="utf-8"))
    # paths relative to the collection root, as ansible-builder and galaxy-importer read them
    python = REPO_ROOT / declaration["dependencies"]["python"]
    assert (REPO_ROOT / declaration["dependencies"]["system"]).is_file() and python.is_file()
    minimums = {}
    for line in requirement_lines(python):
        req = Requirement(line)
        assert [spec.operator for spec in req.specifier] == [">="], f"only a minimum, never a pin or a cap: {line}"
        minimums[req.name] = req.specifier
    pins = {
        Requirement(line).name: Requirement(line)
        for line in requirement_lines(REPO_ROOT / "requirements" / "runtime.txt")
    }
    assert set(minimums) == set(pins)
    for name, pin in pins.items():
        (tested,) = [spec.version for spec in pin.specifier]
        assert minimums[name].contains(tested), f"{name}: the tested {tested} is below the declared {minimums[name]}"
    image = yaml.safe_load((REPO_ROOT / "execution-environment.yml").read_text(encoding="utf-8"))
    assert image["version"] == 3
    assert "execution-environment.yml" in GALAXY["build_ignore"]


def test_ansible_builder_creates_the_image_context_and_reads_the_collection(tarball, tmp_path):
    root = tmp_path / "ee"
    (root / ".build" / "dist").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "execution-environment.yml", root)
    shutil.copy(tarball, root / ".build" / "dist")
    run(
        BIN_DIR / "ansible-builder",
        "create",
        "--context",
        root / "context",
        "--output-filename",
        "Containerfile",
        cwd=root,
    )
    containerfile = (root / "context" / "Containerfile").read_text(encoding="utf-8")
    assert "ansible-galaxy collection install" in containerfile and "introspect" in containerfile
    assert (root / "context" / "_build" / "collections" / TARBALL_NAME).read_bytes() == tarball.read_bytes()

    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(tmp_path / "installed"))
    run(BIN_DIR / "ansible-galaxy", "collection", "install", "-p", tmp_path / "installed", tarball, env=env)
    found = yaml.safe_load(run(BIN_DIR / "ansible-builder", "introspect", "--sanitize", tmp_path / "installed"))
    assert [line.split("#")[0].strip() for line in found["python"]] == requirement_lines(
        REPO_ROOT / "meta" / "ee-requirements.txt"
    )
    assert [line.split("#")[0].strip() for line in found["system"]] == requirement_lines(REPO_ROOT / "bindep.txt")


def test_changelog_release_lists_each_new_module_once_after_a_summary(tmp_path):
    """A trial `antsibull-changelog release` on a copy: the fragments lint clean, the release has a
    summary, and new modules and plugins come from version_added only, never from a fragment too."""
    tree = tmp_path / "ansible_collections" / GALAXY["namespace"] / GALAXY["name"]
    files = run("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
    for name in filter(None, files):
        if (REPO_ROOT / name).is_file():
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(REPO_ROOT / name, tree / name)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(tmp_path), PATH=f"{BIN_DIR}{os.pathsep}{os.environ['PATH']}")
    run(BIN_DIR / "antsibull-changelog", "lint", cwd=tree, env=env)
    run(
        BIN_DIR / "antsibull-changelog",
        "release",
        "--version",
        GALAXY["version"],
        "--date",
        "2026-01-01",
        cwd=tree,
        env=env,
    )
    text = (tree / "CHANGELOG.rst").read_text(encoding="utf-8")
    assert "Release Summary\n---------------" in text
    changes, _heading, new_objects = text.partition("New Plugins\n-----------")
    # The section up to the next heading (the sync role shares its name with the sync module).
    new_modules = new_objects.split("New Modules\n-----------")[1].split("\nNew Roles\n")[0]
    for path in sorted((REPO_ROOT / "plugins" / "modules").glob("*.py")):
        fqcn = f"idsync.provisioning.{path.stem}"
        description = re.search(r"^short_description: (.+)$", path.read_text(encoding="utf-8"), re.M).group(1)
        assert f"- {fqcn} - {description}" in new_modules, path.stem
        assert new_modules.count(f"- {fqcn} - ") == 1, f"{path.stem} listed more than once"
        assert changes.count(f"- {fqcn} - ") == 0, f"{path.stem} listed by a fragment"
        # a fragment that announces the module again (its own words, or a list of new modules)
        assert description not in changes, f"{path.stem} announced by a fragment too"
    names = {path.stem for path in (REPO_ROOT / "plugins" / "modules").glob("*.py")}
    for subject in re.findall(r"^- (.+?) - ", changes, re.M):
        listed = names & set(re.split(r",\s*|\s+and\s+", subject))
        assert len(listed) < 2, f"a fragment lists new modules: {subject}"
    assert "- idsync.provisioning.ldap_source - " in text.split("New Plugins")[1]


def test_galaxy_importer_accepts_the_tarball():
    """`make galaxy-importer` ran galaxy-importer on the built tarball; here its result is read."""
    result_file, log_file = IMPORTER_DIR / "importer_result.json", IMPORTER_DIR / "importer.log"
    assert result_file.is_file(), "run `make galaxy-importer` (make test does) first"
    log = log_file.read_text(encoding="utf-8")
    assert "Importer processing completed successfully" in log
    assert not re.findall(r"^(?:WARNING|ERROR):.*", log, re.M)
    result = json.loads(result_file.read_text(encoding="utf-8"))
    assert result["metadata"]["version"] == GALAXY["version"]
    assert result["requires_ansible"] == RUNTIME["requires_ansible"]
    found = {(c["content_type"], c["name"]) for c in result["contents"]}
    assert {("module", m) for m in modules()} <= found
    assert {("lookup", "ldap_source"), ("role", "sync")} <= found
    # ansible-doc gave the importer every module's documentation
    docs = {
        c["content_name"]: c["doc_strings"] for c in result["docs_blob"]["contents"] if c["content_type"] == "module"
    }
    assert all(docs.get(m) and docs[m]["doc"]["short_description"] for m in modules())


def test_ansible_doc_shows_the_lookup_with_examples():
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO_ROOT / ".build" / "collections"), ANSIBLE_NOCOLOR="1")
    text = run(BIN_DIR / "ansible-doc", "-t", "lookup", "idsync.provisioning.ldap_source", env=env)
    for expected in ("server_uri", "user_groups", "nested_groups", "LDAP_BIND_PW", "EXAMPLES", "RETURN VALUES"):
        assert expected in text, expected
