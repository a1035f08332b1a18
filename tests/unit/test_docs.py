# -*- coding: utf-8 -*-
"""The documentation's YAML examples parse and its relative links lead somewhere."""

import re
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted([REPO_ROOT / "README.md", *REPO_ROOT.glob("docs/**/*.md"), *REPO_ROOT.glob("roles/*/README.md")])
FENCE = re.compile(r"^```ya?ml\n(.*?)^```", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def page_id(path):
    return str(path.relative_to(REPO_ROOT))


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_yaml_examples_parse(page):
    blocks = FENCE.findall(page.read_text(encoding="utf-8"))
    for number, block in enumerate(blocks, 1):
        try:
            yaml.safe_load(block)
        except yaml.YAMLError as exc:
            pytest.fail(f"{page_id(page)}: yaml block {number} does not parse: {exc}")


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_relative_links_exist(page):
    targets = [t for t in LINK.findall(page.read_text(encoding="utf-8")) if not re.match(r"^[a-z]+:", t)]
    missing = [t for t in targets if not (page.parent / t).exists()]
    assert missing == [], f"{page_id(page)} links to missing files: {missing}"


def test_there_are_pages_and_examples():
    assert len(PAGES) >= 10
    assert sum(len(FENCE.findall(p.read_text(encoding="utf-8"))) for p in PAGES) >= 20
