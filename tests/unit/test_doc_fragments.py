# -*- coding: utf-8 -*-
"""The directory options are documented twice (lookup and module ``source``); they must not drift."""

import yaml

from ansible_collections.idsync.provisioning.plugins.doc_fragments.ldap import ModuleDocFragment
from ansible_collections.idsync.provisioning.plugins.module_utils._ldap import source_argument_spec


def test_source_suboptions_equal_the_lookup_options():
    top = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]
    # in a module the options are suboptions, so references read O(source.name) there
    nested_text = ModuleDocFragment.SOURCE.replace("O(source.", "O(")
    nested = yaml.safe_load(nested_text)["options"]["source"]["suboptions"]
    assert nested == top


def test_documented_options_match_the_argument_spec():
    documented = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]
    spec = source_argument_spec()
    assert set(documented) == set(spec)
    for name, entry in spec.items():
        assert documented[name]["type"] == entry["type"], name
        assert documented[name].get("default") == entry.get("default"), name
        assert [str(c) for c in documented[name].get("choices", [])] == [str(c) for c in entry.get("choices", [])], name
