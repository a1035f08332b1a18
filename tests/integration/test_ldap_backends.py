# -*- coding: utf-8 -*-
"""The reader's two backends on a real slapd: the same records, the same messages, and the choice.

python-ldap and ldap3 parse the server's answers with their own code (libldap's C, ldap3's Python);
the reader above them must make the same records of them, byte for byte, and fail with the same
words. The recorded AD answers (ranges, continuation references) are in tests/unit/test_ldap_recorded.py,
Samba AD and 389-DS in test_samba_ad.py and test_389ds.py.
"""

from __future__ import annotations

import pytest
from support.ldap_backends import BACKENDS, usable_backend
from support.seed import AD_GUIDS, BASE, GROUP_IDS, GROUPS, PEOPLE, PEOPLE_IDS

from ansible_collections.idsync.provisioning.plugins.module_utils import _ldap
from ansible_collections.idsync.provisioning.plugins.module_utils._model import ProvisioningError

AD = f"ou=ad,{BASE}"
AD_GROUPS = f"ou=adgroups,{BASE}"
ENGINEERING = f"cn=Engineering,{GROUPS}"

# Option sets that between them touch every path of the reader that slapd can show.
READS = {
    "everything, nested": {"user_base_dn": BASE, "group_base_dn": GROUPS, "nested_groups": True},
    "direct members, small pages": {"user_base_dn": PEOPLE, "group_base_dn": GROUPS, "page_size": 7},
    "targeted group, nested": {"user_base_dn": PEOPLE, "user_groups": [ENGINEERING], "nested_groups": True},
    "some attributes": {"user_base_dn": PEOPLE, "user_attributes": ["uid", "mail", "jpegPhoto", "surname"]},
    "AD dialect": {"dialect": "ad", "user_base_dn": AD, "group_base_dn": AD_GROUPS, "nested_groups": True},
}


def read(slapd, backend, **values):
    options = {
        "server_uri": [slapd.uri],
        "bind_dn": slapd.reader_dn,
        "bind_pw": slapd.reader_pw,
        "backend": backend,
    }
    options.update(values)
    return _ldap.read_directory(_ldap.LdapOptions.from_getter(options.get))


def records(directory):
    return [u.as_dict() for u in directory.users], [g.as_dict() for g in directory.groups], directory.references


def failure(slapd, backend, **values):
    with pytest.raises(ProvisioningError) as caught:
        read(slapd, backend, **values)
    return caught.value.message


@pytest.fixture(scope="module")
def backends():
    return [usable_backend(name) for name in BACKENDS]


@pytest.mark.parametrize("name", READS)
def test_both_backends_give_identical_records(slapd, backends, name):
    found = {backend: records(read(slapd, backend, **READS[name])) for backend in backends}
    assert found["python-ldap"] == found["ldap3"]
    users, groups, references = found["ldap3"]
    assert users, name  # a comparison of two empty reads proves nothing
    assert references == []  # slapd sends none for these bases
    if READS[name].get("group_base_dn"):
        assert groups and any(g["members"] for g in groups), name


def test_the_records_are_right_not_only_equal(slapd, backends):
    """Both backends against the facts of the seed (tests/data/ldap/README.md)."""
    for backend in backends:
        users, groups, _references = records(read(slapd, backend, **READS["everything, nested"]))
        by_uid = {u["attributes"]["uid"][0]: u for u in users if "uid" in u["attributes"]}
        assert {uid: by_uid[uid]["id"] for uid in PEOPLE_IDS} == PEOPLE_IDS, backend
        assert by_uid["locked1"]["disabled"] and not by_uid["jdoe"]["disabled"], backend
        jdoe = by_uid["jdoe"]["attributes"]
        assert jdoe["cn"] == ["John Doe"] and jdoe["displayName"] == "John Doe", backend  # list / scalar
        assert jdoe["entryUUID"] == PEOPLE_IDS["jdoe"], backend
        engineering = next(g for g in groups if g["name"] == "Engineering")
        assert engineering["id"] == GROUP_IDS["Engineering"], backend
        assert PEOPLE_IDS["jdoe"] in engineering["members"], backend

        some = records(read(slapd, backend, **READS["some attributes"]))[0]
        jdoe = next(u for u in some if u["id"] == PEOPLE_IDS["jdoe"])["attributes"]
        assert set(jdoe) == {"uid", "mail", "jpegPhoto", "sn", "entryUUID"}, backend  # surname -> sn
        assert jdoe["jpegPhoto"][0].startswith("/9j/"), backend  # binary syntax: base64 of a JPEG

        ad_users = records(read(slapd, backend, **READS["AD dialect"]))[0]
        guids = {u["attributes"]["sAMAccountName"]: u["id"] for u in ad_users}
        assert guids == {name: AD_GUIDS[name] for name in guids}, backend
        assert guids["aadmin"] == AD_GUIDS["aadmin"], backend


def test_auto_is_python_ldap_when_it_is_importable_else_ldap3(slapd, backends, monkeypatch):
    options = {"user_base_dn": PEOPLE, "user_filter": "(uid=jdoe)"}
    assert read(slapd, "auto", **options).backend == "python-ldap"
    monkeypatch.setattr(_ldap, "HAS_PYTHON_LDAP", False)
    directory = read(slapd, "auto", **options)
    assert directory.backend == "ldap3"
    assert [u.id for u in directory.users] == [PEOPLE_IDS["jdoe"]]


def test_a_backend_asked_for_and_missing_fails_before_reading(slapd, monkeypatch):
    monkeypatch.setattr(_ldap, "HAS_PYTHON_LDAP", False)
    message = failure(slapd, "python-ldap", user_base_dn=PEOPLE)
    assert message.startswith("Failed to import the required Python library (python-ldap) on ")
    assert "to read the directory (backend / source.backend: python-ldap)" in message
    monkeypatch.setattr(_ldap, "HAS_PYTHON_LDAP", True)
    monkeypatch.setattr(_ldap, "HAS_LDAP3", False)
    message = failure(slapd, "ldap3", user_base_dn=PEOPLE)
    assert message.startswith("Failed to import the required Python library (ldap3) on ")


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"user_base_dn": f"ou=nowhere,{BASE}"}, f"user_base_dn 'ou=nowhere,{BASE}' does not exist on "),
        (
            {"user_base_dn": PEOPLE, "group_base_dn": f"ou=nogroups,{BASE}"},
            f"group_base_dn 'ou=nogroups,{BASE}' does not exist on ",
        ),
        ({"user_base_dn": PEOPLE, "bind_pw": "wrong"}, "invalid credentials (LDAP 49"),
        (
            {"user_base_dn": PEOPLE, "user_groups": [f"cn=Nope,{GROUPS}"]},
            f"user_groups: the group 'cn=Nope,{GROUPS}' does not exist",
        ),
        ({"user_base_dn": PEOPLE, "user_attributes": ["noSuchAttributeHere"]}, None),
        ({"user_base_dn": PEOPLE, "server_uri": ["ldap://127.0.0.1:1"]}, "connection refused by 127.0.0.1:1"),
    ],
    ids=["base", "group base", "password", "targeted group", "unknown attribute", "refused"],
)
def test_both_backends_fail_with_the_same_words(slapd, backends, values, expected):
    messages = {}
    for backend in backends:
        try:
            found = records(read(slapd, backend, **values))
        except ProvisioningError as exc:
            messages[backend] = exc.message
        else:
            messages[backend] = found
    assert messages["python-ldap"] == messages["ldap3"]
    if expected is not None:
        assert expected in messages["ldap3"]


def test_tls_on_both_backends_verifies_and_says_the_same(slapd, backends):
    for backend in backends:
        for values in ({"server_uri": [slapd.ldaps_uri]}, {"start_tls": True}):
            found = read(slapd, backend, user_base_dn=PEOPLE, user_filter="(uid=jdoe)", ca_path=slapd.ca_file, **values)
            assert [u.id for u in found.users] == [PEOPLE_IDS["jdoe"]], (backend, values)
    untrusted = {
        backend: failure(slapd, backend, user_base_dn=PEOPLE, server_uri=[slapd.ldaps_uri]) for backend in backends
    }
    assert untrusted["python-ldap"] == untrusted["ldap3"]
    assert untrusted["ldap3"].startswith("TLS failure: the certificate of 127.0.0.1:")
