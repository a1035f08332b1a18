# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The slapd fixture itself: it starts, holds exactly the documented seed, speaks TLS, stops cleanly."""

import hashlib
import importlib.util
import os
import socket
import ssl
import subprocess
import sys
import uuid

import ldap3
import pytest
from ldap3.core.exceptions import LDAPException
from support.slapd import DEFAULT_SEED, SEED_DIR, SlapdError, SlapdServer, _proc_alive, parse_ldif, stop_workdir

SLAPD_PY = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "support", "slapd.py")


def _load_generator():
    spec = importlib.util.spec_from_file_location("ldap_seed_generate", os.path.join(SEED_DIR, "generate.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen = _load_generator()


def _connect(server, who="reader", *, ldaps=False, start_tls=False, ca_file="default"):
    ca = server.ca_file if ca_file == "default" else ca_file
    tls = ldap3.Tls(ca_certs_file=ca, validate=ssl.CERT_REQUIRED)
    port = server.tls_port if ldaps else server.port
    srv = ldap3.Server("127.0.0.1", port=port, use_ssl=ldaps, tls=tls, get_info=ldap3.NONE, connect_timeout=5)
    creds = {
        "reader": (server.reader_dn, server.reader_pw),
        "root": (server.bind_dn, server.bind_pw),
        "anonymous": (None, None),
    }[who]
    conn = ldap3.Connection(srv, user=creds[0], password=creds[1], raise_exceptions=True)
    conn.open()
    if start_tls:
        conn.start_tls()
    conn.bind()
    return conn


def _readme():
    with open(os.path.join(SEED_DIR, "README.md"), encoding="utf-8") as handle:
        return handle.read()


def _entry(conn, dn, attrs=("*", "+")):
    conn.search(dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=list(attrs))
    assert len(conn.response) == 1
    return conn.response[0]


# ---------------------------------------------------------------------------------------------
# The seed files


def test_seed_files_are_generated_and_current():
    proc = subprocess.run(
        [sys.executable, os.path.join(SEED_DIR, "generate.py"), "--check"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr


def test_seed_files_are_plain_ascii_ldif():
    assert [os.path.basename(p) for p in DEFAULT_SEED] == [name for name, _t, _f in gen.LDIF_FILES]
    for path in DEFAULT_SEED:
        with open(path, "rb") as handle:
            data = handle.read()
        data.decode("ascii")  # non-ASCII and binary values are base64 (::)
        assert b"\r" not in data and b"\t" not in data
        assert max(len(line) for line in data.split(b"\n")) <= 76


# ---------------------------------------------------------------------------------------------
# The running server


def test_server_runs_with_pid_from_pidfile(slapd):
    assert slapd.is_running()
    with open(slapd.pidfile, encoding="ascii") as handle:
        assert int(handle.read()) == slapd.pid
    with open(f"/proc/{slapd.pid}/cmdline", "rb") as handle:
        cmdline = handle.read().split(b"\0")
    assert slapd.conf_file.encode() in cmdline
    assert slapd.uri == f"ldap://127.0.0.1:{slapd.port}"
    assert slapd.ldaps_uri == f"ldaps://127.0.0.1:{slapd.tls_port}"
    assert (slapd.base_dn, slapd.bind_dn, slapd.bind_pw) == (
        "dc=example,dc=org",
        "cn=admin,dc=example,dc=org",
        "admin-secret",
    )


@pytest.mark.parametrize(
    ("base", "scope", "filterstr", "expected"),
    [
        ("dc=example,dc=org", "sub", "(objectClass=*)", 386),
        ("dc=example,dc=org", "sub", "(objectClass=organizationalUnit)", 6),
        ("ou=people,dc=example,dc=org", "one", "(objectClass=inetOrgPerson)", 8),
        ("ou=bulk,dc=example,dc=org", "one", "(objectClass=inetOrgPerson)", 350),
        ("dc=example,dc=org", "sub", "(objectClass=inetOrgPerson)", 358),
        ("dc=example,dc=org", "sub", "(objectClass=person)", 365),
        ("ou=ad,dc=example,dc=org", "one", "(objectClass=user)", 7),
        ("ou=groups,dc=example,dc=org", "sub", "(objectClass=groupOfNames)", 11),
        ("ou=groups,dc=example,dc=org", "one", "(objectClass=groupOfNames)", 10),
        ("ou=adgroups,dc=example,dc=org", "one", "(objectClass=group)", 2),
        ("dc=example,dc=org", "sub", "(objectGUID=*)", 9),
        ("dc=example,dc=org", "sub", "(pwdAccountLockedTime=*)", 1),
        ("ou=people,dc=example,dc=org", "one", "(!(mail=*))", 1),
    ],
)
def test_seed_counts_with_ldapsearch(slapd, base, scope, filterstr, expected):
    assert slapd.count(filterstr, base=base, scope=scope) == expected


def test_seed_counts_match_the_readme():
    with open(os.path.join(SEED_DIR, "README.md"), encoding="utf-8") as handle:
        readme = handle.read()
    for line in (
        "| entries in the whole tree (`(objectClass=*)` from the suffix, subtree) | 386 |",
        "| `ou=people` people (inetOrgPerson) | 8 |",
        "| `ou=bulk` people (inetOrgPerson) | 350 |",
        "| `ou=ad` users (msuser `user`) | 7 |",
        "| ... of which disabled (userAccountControl bit 2) | 2 |",
        "| `ou=groups` groups, subtree (groupOfNames, incl. `ou=archive`) | 11 |",
    ):
        assert line in readme


def test_people_values(slapd):
    conn = _connect(slapd)
    jdoe = _entry(conn, "uid=jdoe,ou=people,dc=example,dc=org")
    attrs = jdoe["attributes"]
    assert attrs["cn"] == ["John Doe"] and attrs["mail"] == ["jdoe@example.org"]
    assert attrs["entryUUID"] == [gen.entry_uuid("uid=jdoe,ou=people,dc=example,dc=org")]
    photo = jdoe["raw_attributes"]["jpegPhoto"][0]
    assert photo == gen.tiny_jpeg() and photo.startswith(b"\xff\xd8") and b"\x00" in photo
    assert hashlib.sha256(photo).hexdigest() in _readme()
    assert "userPassword" not in attrs  # the ACL hides it from everyone but the rootdn

    assert _entry(conn, "uid=asmith,ou=people,dc=example,dc=org")["attributes"]["mail"] == [
        "alice.smith@example.org",
        "asmith@example.org",
    ]
    assert _entry(conn, "uid=jmuller,ou=people,dc=example,dc=org")["attributes"]["cn"] == ["Jürgen Müller"]
    assert _entry(conn, "uid=zoe,ou=people,dc=example,dc=org")["attributes"]["cn"] == ["Zoë Ångström"]

    conn.search("ou=people,dc=example,dc=org", "(uid=jsmith)", attributes=["cn", "mail"])
    [janet] = conn.response
    assert janet["dn"] == "cn=Smith\\2C Janet,ou=people,dc=example,dc=org"
    assert janet["attributes"]["cn"] == ["Smith, Janet"] and janet["attributes"]["mail"] == ["jsmith@example.org"]

    locked = _entry(conn, "uid=locked1,ou=people,dc=example,dc=org", ["*"])["attributes"]
    assert "pwdAccountLockedTime" not in locked  # operational: only when asked for
    locked = _entry(conn, "uid=locked1,ou=people,dc=example,dc=org", ["pwdAccountLockedTime"])["raw_attributes"]
    assert locked["pwdAccountLockedTime"] == [b"000001010000Z"]
    conn.unbind()


def test_ad_values(slapd):
    conn = _connect(slapd)
    conn.search("ou=ad,dc=example,dc=org", "(objectClass=user)", attributes=["*"])
    by_sam = {e["attributes"]["sAMAccountName"][0]: e for e in conn.response}
    assert sorted(by_sam) == ["aadmin", "cclerk", "ddisabled", "eexpired", "fforever", "klee", "ocelik"]
    for cn, sam, _given, _sn, mail, uac in gen.AD_USERS:
        entry = by_sam[sam]
        written_dn = gen.ad_user_dn(cn)
        assert entry["dn"] == written_dn.replace("\\,", "\\2C")
        assert entry["attributes"]["cn"] == [cn]
        assert entry["attributes"]["userAccountControl"] == [str(uac)]
        assert entry["attributes"]["mail"] == [mail]
        assert entry["attributes"]["userPrincipalName"] == [sam + "@example.org"]
        raw = entry["raw_attributes"]["objectGUID"][0]
        assert raw == gen.object_guid(written_dn) and len(raw) == 16
    readme = _readme()
    raw = by_sam["aadmin"]["raw_attributes"]["objectGUID"][0]
    assert f"`{raw.hex()}` | `{uuid.UUID(bytes_le=raw)}`" in readme
    disabled = sorted(sam for sam, e in by_sam.items() if int(e["attributes"]["userAccountControl"][0]) & 2)
    assert disabled == ["ddisabled", "eexpired"]
    assert by_sam["ocelik"]["dn"] == "cn=Önder Çelik,ou=ad,dc=example,dc=org"
    assert by_sam["klee"]["dn"] == "cn=Lee\\2C Kim,ou=ad,dc=example,dc=org"
    assert by_sam["aadmin"]["attributes"]["memberOf"] == ["cn=AD Staff,ou=adgroups,dc=example,dc=org"]
    assert "memberOf" not in by_sam["fforever"]["attributes"]
    conn.unbind()


def test_msuser_filters_on_slapd(slapd):
    """Documented in the README: plain msuser filters match nothing here; extensible matches work."""
    conn = _connect(slapd)

    def matches(filterstr):
        conn.search("ou=ad,dc=example,dc=org", filterstr, attributes=["sAMAccountName"])
        return sorted(e["attributes"]["sAMAccountName"][0] for e in conn.response)

    for filterstr in (
        "(sAMAccountName=aadmin)",
        "(sAMAccountName=aad*)",
        "(userAccountControl=512)",
        "(userAccountControl>=512)",
        "(userPrincipalName=aadmin@example.org)",
        "(objectCategory=person)",
        "(objectCategory=CN=Person,CN=Schema,CN=Configuration,DC=example,DC=org)",
        "(memberOf=cn=AD Staff,ou=adgroups,dc=example,dc=org)",
    ):
        assert matches(filterstr) == [], filterstr
    assert len(matches("(sAMAccountName=*)")) == 7
    assert matches("(userAccountControl:1.2.840.113556.1.4.803:=2)") == ["ddisabled", "eexpired"]
    assert matches("(sAMAccountName:caseIgnoreMatch:=AADMIN)") == ["aadmin"]
    assert matches("(memberOf:distinguishedNameMatch:=cn=AD Staff,ou=adgroups,dc=example,dc=org)") == [
        "aadmin",
        "cclerk",
        "ddisabled",
        "ocelik",
    ]
    guid = gen.object_guid("cn=Ann Admin,ou=ad,dc=example,dc=org")
    assert matches("(objectGUID:octetStringMatch:={})".format("".join(f"\\{b:02x}" for b in guid))) == ["aadmin"]
    conn.unbind()


def test_groups(slapd):
    conn = _connect(slapd)
    for cn, parent, members, _note in gen.GROUP_ENTRIES:
        entry = _entry(conn, gen.group_dn(cn, parent), ["member", "entryUUID"])
        assert entry["attributes"]["member"] == members, cn
        assert entry["attributes"]["entryUUID"] == [gen.entry_uuid(gen.group_dn(cn, parent))]
    engineering = _entry(conn, "cn=Engineering,ou=groups,dc=example,dc=org", ["member"])["attributes"]["member"]
    assert engineering == [
        "uid=jdoe,ou=people,dc=example,dc=org",
        "uid=asmith,ou=people,dc=example,dc=org",
        "cn=Smith\\, Janet,ou=people,dc=example,dc=org",
        "cn=Platform,ou=groups,dc=example,dc=org",
    ]
    bulk = _entry(conn, "cn=Bulk Members,ou=groups,dc=example,dc=org", ["member"])["attributes"]["member"]
    assert len(bulk) == 250 and bulk[0].startswith("uid=bulk0001,") and bulk[-1].startswith("uid=bulk0250,")
    staff = _entry(conn, "cn=AD Staff,ou=adgroups,dc=example,dc=org", ["member", "objectGUID", "groupType"])
    assert staff["attributes"]["member"][-1] == "cn=AD Managers,ou=adgroups,dc=example,dc=org"
    assert staff["attributes"]["groupType"] == ["-2147483646"]
    assert staff["raw_attributes"]["objectGUID"][0] == gen.object_guid("cn=AD Staff,ou=adgroups,dc=example,dc=org")
    # DN-valued filters normalize: the escaped comma matches in either spelling
    conn.search(
        "ou=groups,dc=example,dc=org", "(member=cn=Smith\\5c2C Janet,ou=people,dc=example,dc=org)", attributes=["cn"]
    )
    assert [e["attributes"]["cn"] for e in conn.response] == [["Engineering"]]
    assert gen.transitive_people("cn=Nested Outer,ou=groups,dc=example,dc=org") == {"zoe"}
    assert gen.transitive_people("cn=Engineering,ou=groups,dc=example,dc=org") == {
        "jdoe",
        "asmith",
        "jsmith",
        "bwhite",
        "jmuller",
    }
    conn.unbind()


def test_paged_search_over_bulk(slapd):
    conn = _connect(slapd)
    entries = list(
        conn.extend.standard.paged_search(
            "ou=bulk,dc=example,dc=org", "(objectClass=inetOrgPerson)", attributes=["uid"], paged_size=100
        )
    )
    assert len(entries) == 350
    assert sorted(e["attributes"]["uid"][0] for e in entries) == [f"bulk{n:04d}" for n in range(1, 351)]
    conn.unbind()


def test_passwords_and_binds(slapd):
    anonymous = _connect(slapd, "anonymous")
    hidden = _entry(anonymous, "uid=jdoe,ou=people,dc=example,dc=org", ["userPassword"])
    assert not hidden["raw_attributes"].get("userPassword")
    anonymous.unbind()
    root = _connect(slapd, "root")
    assert _entry(root, "uid=jdoe,ou=people,dc=example,dc=org", ["userPassword"])["attributes"]["userPassword"]
    root.unbind()
    srv = ldap3.Server("127.0.0.1", port=slapd.port, get_info=ldap3.NONE)
    assert ldap3.Connection(srv, "uid=jdoe,ou=people,dc=example,dc=org", "jdoe-password").bind()
    assert not ldap3.Connection(srv, "uid=jdoe,ou=people,dc=example,dc=org", "wrong").bind()


# ---------------------------------------------------------------------------------------------
# TLS


@pytest.mark.parametrize("mode", ["ldaps", "starttls"])
def test_tls_with_the_ca_file(slapd, mode):
    conn = _connect(slapd, ldaps=mode == "ldaps", start_tls=mode == "starttls")
    assert conn.tls_started or conn.server.ssl
    assert conn.extend.standard.who_am_i() == "dn:" + slapd.reader_dn
    conn.unbind()


@pytest.mark.parametrize("mode", ["ldaps", "starttls"])
def test_tls_is_refused_without_the_ca(slapd, mode):
    with pytest.raises(LDAPException):
        _connect(slapd, ldaps=mode == "ldaps", start_tls=mode == "starttls", ca_file=None)


def test_tls_with_ldapsearch(slapd):
    ldaps = slapd.ldap_tool("ldapsearch", "-x", "-H", slapd.ldaps_uri, "-LLL", "-b", slapd.base_dn, "-s", "base", "1.1")
    start_tls = slapd.ldap_tool(
        "ldapsearch", "-x", "-ZZ", "-H", slapd.uri, "-LLL", "-b", slapd.base_dn, "-s", "base", "1.1"
    )
    assert parse_ldif(ldaps) == parse_ldif(start_tls) == [("dc=example,dc=org", {})]
    with pytest.raises(SlapdError):
        _run_without_ca(slapd)


def _run_without_ca(slapd):
    env = slapd.client_env()
    env["LDAPTLS_CACERT"] = os.devnull
    proc = subprocess.run(
        ["ldapsearch", "-x", "-H", slapd.ldaps_uri, "-b", slapd.base_dn, "-s", "base", "1.1"],
        env=env,
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SlapdError(proc.stderr.decode())


# ---------------------------------------------------------------------------------------------
# Mutations, limits, lifecycle


def test_fresh_slapd_helpers_mutate_only_their_server(fresh_slapd, slapd):
    assert fresh_slapd.port != slapd.port and fresh_slapd.workdir != slapd.workdir
    assert fresh_slapd.fingerprint()[0] == slapd.fingerprint()[0]
    seeded = fresh_slapd.fingerprint()
    fresh_slapd.modify(
        "dn: uid=jdoe,ou=people,dc=example,dc=org\nchangetype: modify\nreplace: telephoneNumber\n"
        "telephoneNumber: +1 555 0199\n"
    )
    changed = fresh_slapd.fingerprint()
    assert changed[0] == seeded[0] and changed[1] > seeded[1]  # a pure modify shows in entryCSN
    fresh_slapd.add(
        "dn: uid=newbie,ou=people,dc=example,dc=org\n"
        "objectClass: inetOrgPerson\nuid: newbie\ncn: New Bie\nsn: Bie\nmail: newbie@example.org\n"
    )
    fresh_slapd.modify(
        "dn: cn=Sales,ou=groups,dc=example,dc=org\nchangetype: modify\nadd: member\n"
        "member: uid=newbie,ou=people,dc=example,dc=org\n"
    )
    sales = fresh_slapd.search("(cn=Sales)", ["member"], base="ou=groups,dc=example,dc=org")
    assert sales[0][1]["member"][-1] == "uid=newbie,ou=people,dc=example,dc=org"
    before = fresh_slapd.search("(cn=Sales)", ["entryUUID"], base="ou=groups,dc=example,dc=org")[0][1]["entryUUID"]
    fresh_slapd.rename("cn=Sales,ou=groups,dc=example,dc=org", "cn=Revenue")
    after = fresh_slapd.search("(cn=Revenue)", ["entryUUID", "cn"], base="ou=groups,dc=example,dc=org")
    assert after[0][1]["entryUUID"] == before and after[0][1]["cn"] == ["Revenue"]
    fresh_slapd.delete("uid=zoe,ou=people,dc=example,dc=org")
    fresh_slapd.delete("ou=archive,ou=groups,dc=example,dc=org", recursive=True)
    assert fresh_slapd.count() == 386 + 1 - 1 - 2
    assert slapd.count() == 386  # the shared server is untouched
    assert fresh_slapd.fingerprint() != slapd.fingerprint()
    assert slapd.count("(cn=Sales)") == 1
    with pytest.raises(SlapdError, match="No such object"):
        fresh_slapd.delete("uid=nobody,ou=people,dc=example,dc=org")


def test_size_limit_forces_paging_for_non_root(slapd_factory):
    server = slapd_factory(size_limit=100)
    conn = _connect(server)
    conn.search("ou=bulk,dc=example,dc=org", "(objectClass=*)", attributes=["1.1"])
    # ldap3 does not raise on sizeLimitExceeded (result 4): it returns the first 100 entries
    assert conn.result["result"] == 4 and len(conn.response) == 100
    entries = list(
        conn.extend.standard.paged_search("ou=bulk,dc=example,dc=org", "(uid=*)", attributes=["uid"], paged_size=100)
    )
    assert len(entries) == 350
    conn.unbind()
    assert server.count("(uid=bulk*)") == 350  # the rootdn has no limit


def test_custom_seed_and_bad_seed(tmp_path, slapd_tls_dir):
    with SlapdServer(tmp_path / "one", DEFAULT_SEED[:1], tls_dir=slapd_tls_dir) as server:
        assert server.count() == 8
    bad = tmp_path / "bad.ldif"
    bad.write_text("dn: uid=x,ou=nowhere,dc=example,dc=org\nobjectClass: inetOrgPerson\nuid: x\ncn: x\nsn: x\n")
    with pytest.raises(SlapdError, match="slapadd"):
        SlapdServer(tmp_path / "bad", [DEFAULT_SEED[0], str(bad)], tls_dir=slapd_tls_dir).start()


def test_stop_leaves_no_process_and_keeps_files(tmp_path, slapd_tls_dir):
    workdir = tmp_path / "lifecycle"
    server = SlapdServer(workdir, DEFAULT_SEED[:2], tls_dir=slapd_tls_dir)
    with server:
        pid, port = server.pid, server.port
        assert _proc_alive(pid)
    assert server.pid is None and not server.is_running()
    assert not _proc_alive(pid) and not os.path.exists(f"/proc/{pid}")  # reaped, not a zombie
    assert not os.path.exists(server.pidfile)
    with pytest.raises(SlapdError, match="not running"):
        server.add("dn: cn=x,dc=example,dc=org\nobjectClass: organizationalRole\ncn: x\n")
    assert sorted(os.listdir(workdir)) == ["db", "ldap.conf", "slapd.conf", "slapd.log"]
    # restart in the same work dir: same ports, data kept (no second slapadd)
    with server:
        assert server.port == port and server.pid != pid
        assert server.count() == 16
    server.stop()  # a second stop is harmless


def _live_slapds_for(conf_file):
    """Pids of live (non-zombie) processes whose command line names this slapd.conf."""
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/cmdline", "rb") as handle:
                    cmdline = handle.read().split(b"\0")
            except OSError:
                continue
            if conf_file.encode() in cmdline and _proc_alive(int(name)):
                pids.append(int(name))
    return pids


def test_start_failure_is_reported_and_leaves_no_process(tmp_path, slapd_tls_dir):
    server = SlapdServer(tmp_path / "busy", DEFAULT_SEED[:1], tls_dir=slapd_tls_dir)
    with server:
        assert _live_slapds_for(server.conf_file) == [server.pid]
    assert _live_slapds_for(server.conf_file) == []
    with socket.socket() as blocker:  # a restart reuses the ports: take one away
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        blocker.bind(("127.0.0.1", server.port))
        blocker.listen()
        with pytest.raises(SlapdError, match="exited during start-up"):
            server.start()
    assert server.pid is None and _live_slapds_for(server.conf_file) == []


def test_cli_start_and_stop(tmp_path):
    workdir = tmp_path / "cli"
    proc = subprocess.run(
        [sys.executable, SLAPD_PY, "--workdir", str(workdir)], capture_output=True, text=True, check=False, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    values = dict(line.split("=", 1) for line in proc.stdout.splitlines())
    pid = int(values["pid"])
    try:
        assert _proc_alive(pid)
        assert values["uri"].startswith("ldap://127.0.0.1:") and values["ca_file"].endswith("ca.pem")
        # the printed lines are shell-sourceable
        shell = subprocess.run(
            ["bash", "-c", 'eval "$1"; echo "$uri|$bind_dn"', "bash", proc.stdout],
            capture_output=True,
            text=True,
            check=True,
        )
        assert shell.stdout.strip() == "{}|cn=admin,dc=example,dc=org".format(values["uri"])
        server = SlapdServer(workdir)
        server.port, server.pid, server.ca_file = int(values["port"]), pid, values["ca_file"]
        assert server.count("(objectClass=inetOrgPerson)") == 358
    finally:
        stop = subprocess.run(
            [sys.executable, SLAPD_PY, "--stop", str(workdir)], capture_output=True, text=True, check=False, timeout=60
        )
    assert stop.returncode == 0 and stop.stdout.strip() == f"stopped={pid}"
    # the CLI's slapd is nobody's child any more: once dead it may linger as a zombie until init reaps it
    assert not _proc_alive(pid)
    assert stop_workdir(workdir) is None  # nothing left to stop
