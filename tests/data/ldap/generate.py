# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Generate the LDAP seed (``*.ldif``) and its description (``README.md``) in this directory.

Everything is deterministic: running the script twice gives byte-identical files, and
``python generate.py --check`` exits non-zero when the committed files differ from what it
would write. Ids are fixed here (``entryUUID`` for every entry, ``objectGUID`` for the AD-style
entries), so tests may use the values written in README.md.

The LDIF files are loaded by ``tests/support/slapd.py`` in name order, one ``slapadd`` each.
"""

import argparse
import base64
import hashlib
import os
import sys
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))

BASE_DN = "dc=example,dc=org"
PEOPLE = "ou=people," + BASE_DN
GROUPS = "ou=groups," + BASE_DN
ARCHIVE = "ou=archive," + GROUPS
AD = "ou=ad," + BASE_DN
ADGROUPS = "ou=adgroups," + BASE_DN
BULK = "ou=bulk," + BASE_DN

BULK_USERS = 350
BULK_GROUP_MEMBERS = 250

# The namespace of every fixed id in the seed (uuid5 of a DN spelled as in this script).
ENTRY_UUID_NAMESPACE = uuid.UUID("6f1c2a4e-9b0d-5e37-8c21-4d5a6b7c8d9e")
OBJECT_GUID_NAMESPACE = uuid.UUID("0b7e3d51-2c64-5f18-a9d3-e1f20c4b5a68")

AD_OBJECT_CATEGORY_PERSON = "CN=Person,CN=Schema,CN=Configuration,DC=example,DC=org"
AD_OBJECT_CATEGORY_GROUP = "CN=Group,CN=Schema,CN=Configuration,DC=example,DC=org"
# A fixed, meaningless security descriptor: msuser requires the attribute, any value does.
AD_SECURITY_DESCRIPTOR = bytes.fromhex("01000480140000002000000000000000")
AD_GLOBAL_SECURITY_GROUP = -2147483646  # 0x80000002: global scope, security enabled

UAC_ACCOUNTDISABLE = 0x2
UAC_NORMAL_ACCOUNT = 0x200
UAC_DONT_EXPIRE_PASSWORD = 0x10000

SERVICE_DN = "cn=sync-reader," + BASE_DN
SERVICE_PASSWORD = "reader-secret"
JDOE_PASSWORD = "jdoe-password"


def entry_uuid(dn):
    """The fixed entryUUID of the entry written with this DN."""
    return str(uuid.uuid5(ENTRY_UUID_NAMESPACE, dn))


def object_guid(dn):
    """The fixed 16 objectGUID bytes of the AD-style entry written with this DN."""
    return uuid.uuid5(OBJECT_GUID_NAMESPACE, dn).bytes


def windows_guid(raw):
    """objectGUID bytes as Windows shows them (the first three fields little-endian)."""
    return str(uuid.UUID(bytes_le=raw))


def ssha(password, salt):
    """An RFC 2307 {SSHA} hash with a fixed salt (deterministic)."""
    digest = hashlib.sha1(password.encode("utf-8") + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode("ascii")


def tiny_jpeg():
    """An 8x8 mid-grey baseline JPEG (grayscale, one DC-only block): real binary image data."""
    out = bytearray(b"\xff\xd8")  # SOI
    out += b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"  # APP0
    out += b"\xff\xdb\x00\x43\x00" + b"\x01" * 64  # DQT: table 0, all ones
    out += b"\xff\xc0\x00\x0b\x08\x00\x08\x00\x08\x01\x01\x11\x00"  # SOF0: 8x8, 1 component
    one_symbol = b"\x01" + b"\x00" * 15 + b"\x00"  # one code of length 1 for symbol 0
    out += b"\xff\xc4\x00\x14\x00" + one_symbol  # DHT: DC table 0 (category 0)
    out += b"\xff\xc4\x00\x14\x10" + one_symbol  # DHT: AC table 0 (EOB)
    out += b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00"  # SOS
    out += b"\x3f"  # DC diff 0 ('0'), EOB ('0'), padded with ones
    out += b"\xff\xd9"  # EOI
    return bytes(out)


# ---------------------------------------------------------------------------------------------
# The hand-written entries. README.md is generated from these same structures.

# OpenLDAP-style people under ou=people (inetOrgPerson).
PEOPLE_ENTRIES = [
    {
        "rdn": "uid=jdoe",
        "uid": "jdoe",
        "cn": "John Doe",
        "sn": "Doe",
        "givenName": "John",
        "displayName": "John Doe",
        "mail": ["jdoe@example.org"],
        "employeeNumber": "1001",
        "telephoneNumber": "+1 555 0101",
        "title": "Engineer",
        "userPassword": ssha(JDOE_PASSWORD, b"jdoesalt"),
        "jpegPhoto": tiny_jpeg(),
        "note": "exactly one mail; jpegPhoto (binary); userPassword `jdoe-password` ({SSHA})",
    },
    {
        "rdn": "uid=asmith",
        "uid": "asmith",
        "cn": "Alice Smith",
        "sn": "Smith",
        "givenName": "Alice",
        "displayName": "Alice Smith",
        "mail": ["alice.smith@example.org", "asmith@example.org"],
        "employeeNumber": "1002",
        "telephoneNumber": "+1 555 0102",
        "title": "Engineering Manager",
        "note": "two mail values, in this order",
    },
    {
        "rdn": "uid=bwhite",
        "uid": "bwhite",
        "cn": "Bob White",
        "sn": "White",
        "givenName": "Bob",
        "displayName": "Bob White",
        "mail": ["Bob.White@Example.org"],
        "employeeNumber": "1003",
        "note": "mixed-case mail (keys compare case-insensitively)",
    },
    {
        "rdn": "uid=jmuller",
        "uid": "jmuller",
        "cn": "J\u00fcrgen M\u00fcller",
        "sn": "M\u00fcller",
        "givenName": "J\u00fcrgen",
        "displayName": "J\u00fcrgen M\u00fcller",
        "mail": ["juergen.mueller@example.org"],
        "employeeNumber": "1004",
        "note": "non-ASCII cn/sn/givenName/displayName",
    },
    {
        "rdn": "uid=zoe",
        "uid": "zoe",
        "cn": "Zo\u00eb \u00c5ngstr\u00f6m",
        "sn": "\u00c5ngstr\u00f6m",
        "givenName": "Zo\u00eb",
        "displayName": "Zo\u00eb \u00c5ngstr\u00f6m",
        "mail": ["zoe@example.org"],
        "employeeNumber": "1005",
        "note": "non-ASCII cn/sn/givenName/displayName",
    },
    {
        "rdn": "cn=Smith\\, Janet",
        "uid": "jsmith",
        "cn": "Smith, Janet",
        "sn": "Smith",
        "givenName": "Janet",
        "displayName": "Janet Smith",
        "mail": ["jsmith@example.org"],
        "employeeNumber": "1006",
        "note": "RDN needs escaping: slapd returns the DN as `cn=Smith\\2C Janet,ou=people,dc=example,dc=org`",
    },
    {
        "rdn": "uid=locked1",
        "uid": "locked1",
        "cn": "Locked User",
        "sn": "User",
        "givenName": "Locked",
        "displayName": "Locked User",
        "mail": ["locked1@example.org"],
        "employeeNumber": "1007",
        "pwdAccountLockedTime": "000001010000Z",
        "note": "disabled: `pwdAccountLockedTime: 000001010000Z` (operational; ask for it by name or `+`)",
    },
    {
        "rdn": "uid=nomail",
        "uid": "nomail",
        "cn": "No Mail",
        "sn": "Mail",
        "givenName": "No",
        "displayName": "No Mail",
        "mail": [],
        "employeeNumber": "1008",
        "note": "no mail attribute at all; in no group",
    },
]

# AD-style users under ou=ad (msuser `user` + extensibleObject).
AD_USERS = [
    ("Ann Admin", "aadmin", "Ann", "Admin", "ann.admin@example.org", UAC_NORMAL_ACCOUNT),
    ("Carl Clerk", "cclerk", "Carl", "Clerk", "carl.clerk@example.org", UAC_NORMAL_ACCOUNT),
    ("Dora Disabled", "ddisabled", "Dora", "Disabled", "dora.disabled@example.org", 514),
    ("Evan Expired", "eexpired", "Evan", "Expired", "evan.expired@example.org", 66050),
    (
        "\u00d6nder \u00c7elik",
        "ocelik",
        "\u00d6nder",
        "\u00c7elik",
        "onder.celik@example.org",
        UAC_NORMAL_ACCOUNT,
    ),
    ("Lee, Kim", "klee", "Kim", "Lee", "kim.lee@example.org", UAC_NORMAL_ACCOUNT),
    ("Fay Forever", "fforever", "Fay", "Forever", "fay.forever@example.org", 66048),
]
AD_USER_NOTES = {
    "ddisabled": "disabled (514 = NORMAL_ACCOUNT + ACCOUNTDISABLE)",
    "eexpired": "disabled (66050 = NORMAL_ACCOUNT + ACCOUNTDISABLE + DONT_EXPIRE_PASSWORD)",
    "fforever": "enabled although not 512 (66048 = NORMAL_ACCOUNT + DONT_EXPIRE_PASSWORD); in no group",
    "ocelik": "non-ASCII DN and names",
    "klee": "RDN needs escaping: slapd returns the DN as `cn=Lee\\2C Kim,ou=ad,dc=example,dc=org`",
}


def rdn_escape(value):
    """Escape an RDN attribute value (RFC 4514) the way this script spells DNs."""
    out = []
    for i, ch in enumerate(value):
        if ch in ',+"\\<>;=' or (ch == "#" and i == 0) or (ch == " " and i in (0, len(value) - 1)):
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def person_dn(entry):
    return entry["rdn"] + "," + PEOPLE


def ad_user_dn(cn):
    return "cn=" + rdn_escape(cn) + "," + AD


def group_dn(cn, parent=GROUPS):
    return "cn=" + rdn_escape(cn) + "," + parent


def bulk_dn(n):
    return f"uid=bulk{n:04d},{BULK}"


PERSON = {e["uid"]: person_dn(e) for e in PEOPLE_ENTRIES}
AD_USER = {u[1]: ad_user_dn(u[0]) for u in AD_USERS}

# OpenLDAP-style groups (groupOfNames): (cn, parent, [member DNs in order], note).
GROUP_ENTRIES = [
    (
        "Engineering",
        GROUPS,
        [PERSON["jdoe"], PERSON["asmith"], PERSON["jsmith"], group_dn("Platform")],
        "nested group Platform as a member",
    ),
    ("Platform", GROUPS, [PERSON["bwhite"], PERSON["jmuller"]], "nested in Engineering"),
    ("Sales", GROUPS, [PERSON["zoe"], PERSON["locked1"]], "includes the disabled locked1"),
    ("Nested Outer", GROUPS, [group_dn("Nested Middle")], "three levels: Outer > Middle > Inner > zoe"),
    ("Nested Middle", GROUPS, [group_dn("Nested Inner")], ""),
    ("Nested Inner", GROUPS, [PERSON["zoe"]], ""),
    (
        "Bulk Members",
        GROUPS,
        [bulk_dn(n) for n in range(1, BULK_GROUP_MEMBERS + 1)],
        "uid=bulk0001 ... uid=bulk0250, in that order",
    ),
    ("Cycle A", GROUPS, [PERSON["asmith"], group_dn("Cycle B")], "membership cycle with Cycle B"),
    ("Cycle B", GROUPS, [PERSON["bwhite"], group_dn("Cycle A")], "membership cycle with Cycle A"),
    (
        "Dangling",
        GROUPS,
        [PERSON["jdoe"], "uid=ghost," + PEOPLE],
        "second member DN does not exist (no referential integrity)",
    ),
    ("Out Of Scope", ARCHIVE, [PERSON["jdoe"], PERSON["bwhite"]], "one level below ou=groups"),
]

# AD-style groups (msuser `group` + extensibleObject): (cn, sAMAccountName, [member DNs], note).
AD_GROUP_ENTRIES = [
    (
        "AD Staff",
        "AD Staff",
        [
            AD_USER["aadmin"],
            AD_USER["cclerk"],
            AD_USER["ddisabled"],
            AD_USER["ocelik"],
            group_dn("AD Managers", ADGROUPS),
        ],
        "nested group AD Managers as a member",
    ),
    ("AD Managers", "AD Managers", [AD_USER["klee"], AD_USER["eexpired"]], "nested in AD Staff"),
]


def ad_member_of(dn):
    """Direct AD groups of an entry, as the static memberOf values (AD keeps only direct ones)."""
    return [group_dn(cn, ADGROUPS) for cn, _sam, members, _note in AD_GROUP_ENTRIES if dn in members]


# ---------------------------------------------------------------------------------------------
# LDIF writing (RFC 2849).

SAFE_INIT_EXCLUDED = {0x00, 0x0A, 0x0D, 0x20, 0x3A, 0x3C}


def _is_safe(raw):
    if not raw:
        return True
    if raw[0] in SAFE_INIT_EXCLUDED or raw[-1] == 0x20:
        return False
    return all(0x01 <= b <= 0x7F and b not in (0x0A, 0x0D) for b in raw)


def ldif_line(attr, value):
    """One attribute line, base64 (``::``) when the value is not a SAFE-STRING, folded at 76."""
    raw = value if isinstance(value, bytes) else value.encode("utf-8")
    if _is_safe(raw):
        line = "{}: {}".format(attr, raw.decode("ascii"))
    else:
        line = "{}:: {}".format(attr, base64.b64encode(raw).decode("ascii"))
    width = 76
    if len(line) <= width:
        return [line]
    parts = [line[:width]]
    rest = line[width:]
    while rest:
        parts.append(" " + rest[: width - 1])
        rest = rest[width - 1 :]
    return parts


def ldif_entry(dn, attrs):
    lines = ldif_line("dn", dn)
    for attr, values in attrs:
        if not isinstance(values, list):
            values = [values]
        for value in values:
            lines.extend(ldif_line(attr, value))
    return "\n".join(lines) + "\n"


def ldif_file(title, entries):
    head = f"# {title}\n# Generated by tests/data/ldap/generate.py: edit that script, not this file.\n"
    return head + "\n" + "\n".join(ldif_entry(dn, attrs) for dn, attrs in entries)


def ou_entry(dn, description):
    ou = dn.split(",", 1)[0].split("=", 1)[1]
    return dn, [
        ("objectClass", ["top", "organizationalUnit"]),
        ("ou", ou),
        ("description", description),
        ("entryUUID", entry_uuid(dn)),
    ]


def base_entries():
    return [
        (
            BASE_DN,
            [
                ("objectClass", ["top", "dcObject", "organization"]),
                ("dc", "example"),
                ("o", "Example Org"),
                ("entryUUID", entry_uuid(BASE_DN)),
            ],
        ),
        (
            SERVICE_DN,
            [
                ("objectClass", ["top", "organizationalRole", "simpleSecurityObject"]),
                ("cn", "sync-reader"),
                ("description", "non-root bind account; size limits apply to it"),
                ("userPassword", ssha(SERVICE_PASSWORD, b"readsalt")),
                ("entryUUID", entry_uuid(SERVICE_DN)),
            ],
        ),
        ou_entry(PEOPLE, "OpenLDAP-style people"),
        ou_entry(GROUPS, "OpenLDAP-style groups"),
        ou_entry(ARCHIVE, "archived groups, one level below ou=groups"),
        ou_entry(AD, "AD-style users (msuser schema)"),
        ou_entry(ADGROUPS, "AD-style groups (msuser schema)"),
        ou_entry(BULK, "bulk people"),
    ]


def people_entries():
    out = []
    for e in PEOPLE_ENTRIES:
        dn = person_dn(e)
        attrs = [
            ("objectClass", ["top", "person", "organizationalPerson", "inetOrgPerson"]),
            ("uid", e["uid"]),
            ("cn", e["cn"]),
            ("sn", e["sn"]),
            ("givenName", e["givenName"]),
            ("displayName", e["displayName"]),
        ]
        if e["mail"]:
            attrs.append(("mail", e["mail"]))
        attrs.append(("employeeNumber", e["employeeNumber"]))
        for opt in ("telephoneNumber", "title", "userPassword", "jpegPhoto", "pwdAccountLockedTime"):
            if opt in e:
                attrs.append((opt, e[opt]))
        attrs.append(("entryUUID", entry_uuid(dn)))
        out.append((dn, attrs))
    return out


def bulk_entries():
    out = []
    for n in range(1, BULK_USERS + 1):
        dn = bulk_dn(n)
        out.append(
            (
                dn,
                [
                    ("objectClass", ["top", "person", "organizationalPerson", "inetOrgPerson"]),
                    ("uid", f"bulk{n:04d}"),
                    ("cn", f"Bulk User {n:04d}"),
                    ("sn", f"User {n:04d}"),
                    ("givenName", "Bulk"),
                    ("mail", f"bulk{n:04d}@example.org"),
                    ("entryUUID", entry_uuid(dn)),
                ],
            )
        )
    return out


def ad_user_entries():
    out = []
    for cn, sam, given, sn, mail, uac in AD_USERS:
        dn = ad_user_dn(cn)
        display = f"{given} {sn}"
        attrs = [
            ("objectClass", ["top", "person", "organizationalPerson", "user", "extensibleObject"]),
            ("cn", cn),
            ("sn", sn),
            ("givenName", given),
            ("displayName", display),
            ("sAMAccountName", sam),
            ("userPrincipalName", sam + "@example.org"),
            ("mail", mail),
            ("userAccountControl", str(uac)),
            ("objectGUID", object_guid(dn)),
            ("instanceType", "4"),
            ("nTSecurityDescriptor", AD_SECURITY_DESCRIPTOR),
            ("objectCategory", AD_OBJECT_CATEGORY_PERSON),
        ]
        member_of = ad_member_of(dn)
        if member_of:
            attrs.append(("memberOf", member_of))
        attrs.append(("entryUUID", entry_uuid(dn)))
        out.append((dn, attrs))
    return out


def group_entries():
    out = []
    for cn, parent, members, _note in GROUP_ENTRIES:
        dn = group_dn(cn, parent)
        out.append(
            (
                dn,
                [
                    ("objectClass", ["top", "groupOfNames"]),
                    ("cn", cn),
                    ("member", members),
                    ("entryUUID", entry_uuid(dn)),
                ],
            )
        )
    return out


def ad_group_entries():
    out = []
    for cn, sam, members, _note in AD_GROUP_ENTRIES:
        dn = group_dn(cn, ADGROUPS)
        attrs = [
            ("objectClass", ["top", "group", "extensibleObject"]),
            ("cn", cn),
            ("sAMAccountName", sam),
            ("groupType", str(AD_GLOBAL_SECURITY_GROUP)),
            ("member", members),
            ("objectGUID", object_guid(dn)),
            ("instanceType", "4"),
            ("nTSecurityDescriptor", AD_SECURITY_DESCRIPTOR),
            ("objectCategory", AD_OBJECT_CATEGORY_GROUP),
        ]
        member_of = ad_member_of(dn)
        if member_of:
            attrs.append(("memberOf", member_of))
        attrs.append(("entryUUID", entry_uuid(dn)))
        out.append((dn, attrs))
    return out


LDIF_FILES = [
    ("00-base.ldif", "Suffix, service account and organizational units", base_entries),
    ("10-people.ldif", "OpenLDAP-style people (ou=people)", people_entries),
    ("20-bulk.ldif", "Bulk people (ou=bulk)", bulk_entries),
    ("30-ad-users.ldif", "AD-style users (ou=ad, msuser schema)", ad_user_entries),
    ("40-groups.ldif", "OpenLDAP-style groups (ou=groups)", group_entries),
    ("50-ad-groups.ldif", "AD-style groups (ou=adgroups, msuser schema)", ad_group_entries),
]


# ---------------------------------------------------------------------------------------------
# README.md

README_HEAD = """\
# LDAP seed for the test directory

Generated by `generate.py` together with the LDIF files: edit the script and run
`python tests/data/ldap/generate.py`, never edit this file or the LDIF by hand.
`python tests/data/ldap/generate.py --check` fails when they are out of date (a test runs it).

The fixture (`tests/support/slapd.py`, fixtures `slapd` and `fresh_slapd` in
`tests/support/ldap_fixtures.py`) loads the LDIF files in name order, one `slapadd` each:
{files}.
The session-wide `slapd` fixture is read-only (its teardown fails the run if a test wrote to
it); a test that adds, modifies, renames or deletes uses `fresh_slapd`, whose helpers
`add(ldif)`, `modify(ldif)`, `delete(dn)`, `rename(dn, new_rdn)` write as the rootdn.

## Server

- Suffix `dc=example,dc=org`; rootdn `cn=admin,dc=example,dc=org`, password `admin-secret`
  (`SlapdServer.bind_dn` / `bind_pw`). The rootdn has no size limit.
- Non-root bind account `cn=sync-reader,dc=example,dc=org`, password `reader-secret`
  (`SlapdServer.reader_dn` / `reader_pw`). `uid=jdoe` can bind too, password `jdoe-password`.
- ACL: anyone (anonymous included) reads everything except `userPassword`, which nobody but
  the rootdn reads (an entry may change its own; anonymous may bind with it).
- Size limit for everyone but the rootdn: {size_limit} entries for a search without paging, and a
  page is at most {size_limit} entries; a paged search may return any total
  (`sizelimit size.soft={size_limit} size.hard={size_limit} size.pr={size_limit} size.prtotal=unlimited`,
  like an AD's MaxPageSize). `SlapdServer(size_limit=...)` changes it.
- Schemas: core, cosine, inetorgperson, nis, msuser (from `/etc/ldap/schema`); overlay
  `ppolicy` (for `pwdAccountLockedTime`). No `memberof` overlay: msuser defines `memberOf`
  itself, and the OpenLDAP-style people have no `memberOf` at all.
- `ldap://127.0.0.1:PORT` (StartTLS available) and `ldaps://127.0.0.1:TLSPORT`; certificate
  for `127.0.0.1` (IP SAN) and `localhost` (DNS SAN), issued by a throwaway CA in the work dir
  (`SlapdServer.ca_file`).

## Things slapd does differently from Active Directory (decide from values read, not filters)

- **None of the msuser attributes has an EQUALITY, SUBSTR or ORDERING rule.** On this server
  the filters `(sAMAccountName=aadmin)`, `(sAMAccountName=aad*)`, `(userAccountControl=512)`,
  `(userAccountControl>=512)`, `(objectGUID=\\..)`, `(userPrincipalName=...)`,
  `(objectCategory=person)` (so AD's usual `(&(objectCategory=person)(objectClass=user))`) and
  `(memberOf=cn=AD Staff,ou=adgroups,dc=example,dc=org)` match **nothing**, although they
  work on Active Directory. Use `(objectClass=user)` for the AD-style users. Presence filters such as `(sAMAccountName=*)` do work.
- **Extensible-match filters do work** (checked with slapd 2.5.13): AD's bitwise rules on the
  Integer-syntax `userAccountControl`, `(userAccountControl:1.2.840.113556.1.4.803:=2)`
  matches ddisabled and eexpired, like on AD; and a named rule makes any msuser attribute
  filterable: `(sAMAccountName:caseIgnoreMatch:=AADMIN)`,
  `(memberOf:distinguishedNameMatch:=cn=AD Staff,ou=adgroups,dc=example,dc=org)`,
  `(objectGUID:octetStringMatch:=\\41\\97...)`. So a server-side disabled filter is *not*
  a no-op here; code that decides from values read sees the same answer.
- The attributes from core/cosine/inetorgperson (`uid`, `cn`, `mail`, `member`,
  `objectClass`, ...) filter normally.
- `memberOf` on the AD-style entries is **static seed data** (each entry's direct AD groups,
  as AD shows it), not maintained by the server: a test that changes a group's `member` must
  change the `memberOf` of the member itself if it wants the two consistent.
- DNs are returned in slapd's form: an escaped comma comes back as `\\2C`
  (`cn=Smith\\2C Janet,ou=people,dc=example,dc=org`), non-ASCII characters as UTF-8.
  `member` values come back exactly as written below. Compare DNs after normalizing them.
- No ranged retrieval (`member;range=0-1499`): slapd returns all 250 values of
  `cn=Bulk Members` at once.
- `objectGUID` is returned as the 16 raw bytes below (ldap3: in `raw_attributes`); Windows shows
  them as the GUID string in the next column (`uuid.UUID(bytes_le=raw)`).

## Stable ids

Every entry carries a fixed `entryUUID` written in the LDIF (slapadd keeps a supplied one):
`uuid.uuid5(uuid.UUID("{entry_ns}"), DN)` with the DN spelled as in `generate.py` (the
"written DN" column below), e.g. the bulk users' `uid=bulk0001,ou=bulk,dc=example,dc=org`.
Entries that tests add at run time get a random entryUUID from slapd. The AD-style entries
also carry a fixed `objectGUID` (listed below).

## Counts

| what | count |
|---|---|
{counts}

"""


def _md(text):
    return text.replace("|", "\\|")


def _code(text):
    return f"`{text}`" if text else ""


def readme(size_limit):
    files = ", ".join(f"`{name}`" for name, _title, _fn in LDIF_FILES)
    counts_rows = []
    all_entries = []
    for _name, _title, fn in LDIF_FILES:
        all_entries.extend(fn())
    n_people = len(PEOPLE_ENTRIES)
    n_ad = len(AD_USERS)
    n_groups = len(GROUP_ENTRIES)
    n_adgroups = len(AD_GROUP_ENTRIES)
    n_disabled_people = sum(1 for e in PEOPLE_ENTRIES if "pwdAccountLockedTime" in e)
    n_disabled_ad = sum(1 for u in AD_USERS if u[5] & UAC_ACCOUNTDISABLE)
    rows = [
        ("entries in the whole tree (`(objectClass=*)` from the suffix, subtree)", len(all_entries)),
        ("organizational units", len(base_entries()) - 2),
        ("`ou=people` people (inetOrgPerson)", n_people),
        ("... of which disabled (`pwdAccountLockedTime`)", n_disabled_people),
        ("... of which without `mail`", sum(1 for e in PEOPLE_ENTRIES if not e["mail"])),
        ("`ou=bulk` people (inetOrgPerson)", BULK_USERS),
        ("inetOrgPerson entries in the whole tree (`ou=people` + `ou=bulk`)", n_people + BULK_USERS),
        ("`(objectClass=person)` in the whole tree (people + bulk + AD users)", n_people + BULK_USERS + n_ad),
        ("`ou=ad` users (msuser `user`)", n_ad),
        ("... of which disabled (userAccountControl bit 2)", n_disabled_ad),
        ("`ou=groups` groups, subtree (groupOfNames, incl. `ou=archive`)", n_groups),
        ("`ou=groups` groups, one level (without `ou=archive`)", sum(1 for g in GROUP_ENTRIES if g[1] == GROUPS)),
        ("`ou=adgroups` groups (msuser `group`)", n_adgroups),
        ("entries with `objectGUID`", n_ad + n_adgroups),
        ("other: the suffix entry and `cn=sync-reader`", 2),
    ]
    for label, value in rows:
        counts_rows.append(f"| {label} | {value:d} |")
    text = README_HEAD.format(
        files=files,
        size_limit=size_limit,
        entry_ns=ENTRY_UUID_NAMESPACE,
        counts="\n".join(counts_rows),
    )

    text += "## Organizational units and other entries\n\n| DN | entryUUID |\n|---|---|\n"
    for dn, attrs in base_entries():
        text += "| `{}` | `{}` |\n".format(dn, dict(attrs)["entryUUID"])

    text += (
        "\n## OpenLDAP-style people (`ou=people`, inetOrgPerson)\n\n"
        "Disabled rule (OpenLDAP dialect): the operational attribute `pwdAccountLockedTime` is present.\n"
        "All have `uid`, `cn`, `sn`, `givenName`, `displayName`, `employeeNumber`; the table lists `mail`\n"
        "values in order. `telephoneNumber`/`title` where the LDIF has them.\n\n"
        "| written DN | DN as slapd returns it | uid | cn | givenName | sn | mail | employeeNumber "
        "| disabled | entryUUID | notes |\n|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    for e in PEOPLE_ENTRIES:
        dn = person_dn(e)
        text += "| {} | {} | `{}` | {} | {} | {} | {} | {} | {} | `{}` | {} |\n".format(
            _code(_md(dn)),
            _code(_md(dn.replace("\\,", "\\2C"))),
            e["uid"],
            _md(e["cn"]),
            e["givenName"],
            e["sn"],
            ", ".join(f"`{m}`" for m in e["mail"]) or "(none)",
            e["employeeNumber"],
            "**yes**" if "pwdAccountLockedTime" in e else "no",
            entry_uuid(dn),
            e["note"],
        )
    photo = tiny_jpeg()
    text += (
        f"\n`uid=jdoe` has one `jpegPhoto` value: an 8x8 grey baseline JPEG of {len(photo)} bytes, "
        f"sha256 `{hashlib.sha256(photo).hexdigest()}`. Other optional attributes: jdoe telephoneNumber "
        "`+1 555 0101`, title `Engineer`; asmith telephoneNumber `+1 555 0102`, title `Engineering Manager`.\n"
    )

    text += (
        "\n## AD-style users (`ou=ad`, msuser `user` + `extensibleObject`)\n\n"
        "Each has objectClass `top, person, organizationalPerson, user, extensibleObject`, `cn`, `sn`,\n"
        "`givenName`, `displayName` (= givenName + space + sn), `sAMAccountName`, `userPrincipalName`\n"
        "(= sAMAccountName@example.org), `mail`, `userAccountControl`, `objectGUID`, `instanceType: 4`,\n"
        f"`nTSecurityDescriptor` (16 fixed bytes), `objectCategory: {AD_OBJECT_CATEGORY_PERSON}`,\n"
        "`memberOf` (direct AD groups, static) where listed. Disabled rule (AD dialect):\n"
        "`userAccountControl & 2`.\n\n"
        "| written DN | DN as slapd returns it | sAMAccountName | givenName | sn | mail | userAccountControl "
        "| disabled | objectGUID bytes (hex) | objectGUID as Windows shows it | memberOf | entryUUID | notes |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    for cn, sam, given, sn, mail, uac in AD_USERS:
        dn = ad_user_dn(cn)
        raw = object_guid(dn)
        text += "| {} | {} | `{}` | {} | {} | `{}` | {:d} | {} | `{}` | `{}` | {} | `{}` | {} |\n".format(
            _code(_md(dn)),
            _code(_md(dn.replace("\\,", "\\2C"))),
            sam,
            given,
            sn,
            mail,
            uac,
            "**yes**" if uac & UAC_ACCOUNTDISABLE else "no",
            raw.hex(),
            windows_guid(raw),
            ", ".join(_code(m) for m in ad_member_of(dn)) or "(none)",
            entry_uuid(dn),
            AD_USER_NOTES.get(sam, ""),
        )

    text += (
        "\n## OpenLDAP-style groups (`ou=groups`, groupOfNames)\n\n"
        "Direct `member` values exactly as stored (and returned), in order. Group ids: `entryUUID`.\n\n"
        "| written DN | cn | direct members | entryUUID | notes |\n|---|---|---|---|---|\n"
    )
    for cn, parent, members, note in GROUP_ENTRIES:
        dn = group_dn(cn, parent)
        if len(members) > 10:
            shown = f"{len(members)} members: {_code(members[0])} ... {_code(members[-1])}"
        else:
            shown = "<br>".join(_code(_md(m)) for m in members)
        text += f"| {_code(dn)} | {cn} | {shown} | `{entry_uuid(dn)}` | {note} |\n"

    text += (
        "\nResolved people (by uid; transitive: nested groups followed, each group once; users only;\n"
        "the dangling DN is not an entry, so it resolves to nobody):\n\n"
        "| group | people, nested membership followed |\n|---|---|\n"
    )
    for cn, parent, _members, _note in GROUP_ENTRIES:
        people = sorted(transitive_people(group_dn(cn, parent)))
        shown = f"{len(people)} people (bulk0001 ... bulk0250)" if len(people) > 10 else ", ".join(people)
        text += f"| {cn} | {shown} |\n"

    text += (
        "\n## AD-style groups (`ou=adgroups`, msuser `group` + `extensibleObject`)\n\n"
        f"Each has `cn`, `sAMAccountName`, `groupType: {AD_GLOBAL_SECURITY_GROUP}` (global security group), `member`,\n"
        f"`objectGUID`, `instanceType: 4`, `nTSecurityDescriptor`, `objectCategory: {AD_OBJECT_CATEGORY_GROUP}`.\n\n"
        "| written DN | sAMAccountName | direct members (in order) | objectGUID bytes (hex) "
        "| objectGUID as Windows shows it | memberOf | entryUUID | notes |\n|---|---|---|---|---|---|---|---|\n"
    )
    for cn, sam, members, note in AD_GROUP_ENTRIES:
        dn = group_dn(cn, ADGROUPS)
        raw = object_guid(dn)
        text += "| {} | `{}` | {} | `{}` | `{}` | {} | `{}` | {} |\n".format(
            _code(dn),
            sam,
            "<br>".join(_code(_md(m)) for m in members),
            raw.hex(),
            windows_guid(raw),
            ", ".join(_code(m) for m in ad_member_of(dn)) or "(none)",
            entry_uuid(dn),
            note,
        )
    text += "\nResolved users (by sAMAccountName, transitive): "
    text += "; ".join(
        "{}: {}".format(cn, ", ".join(sorted(transitive_people(group_dn(cn, ADGROUPS)))))
        for cn, *_rest in AD_GROUP_ENTRIES
    )
    text += ".\n"

    text += (
        "\n## Bulk people (`ou=bulk`)\n\n"
        f"{BULK_USERS} entries `uid=bulk0001,ou=bulk,dc=example,dc=org` ... `uid=bulk{BULK_USERS:04d},...` "
        "(inetOrgPerson). For N (4 digits): `uid: bulkN`, `cn: Bulk User N`, `sn: User N`, `givenName: Bulk`,\n"
        "`mail: bulkN@example.org`, entryUUID by the formula above. None is disabled. "
        f"bulk0001 ... bulk{BULK_GROUP_MEMBERS:04d}\n"
        f"are the members of `cn=Bulk Members`; bulk{BULK_GROUP_MEMBERS + 1:04d} ... bulk{BULK_USERS:04d} "
        "are in no group.\n"
    )
    return text


def _rdn_label(dn):
    """A short name for a user DN: its uid / sAMAccountName."""
    for uid, pdn in PERSON.items():
        if pdn == dn:
            return uid
    for sam, adn in AD_USER.items():
        if adn == dn:
            return sam
    if dn.startswith("uid=bulk"):
        return dn.split(",", 1)[0][4:]
    return None


def transitive_people(dn, seen=None):
    """The users reached from a group through member, following nested groups once each."""
    seen = set() if seen is None else seen
    if dn in seen:
        return set()
    seen.add(dn)
    members = None
    for cn, parent, group_members, _note in GROUP_ENTRIES:
        if group_dn(cn, parent) == dn:
            members = group_members
    for cn, _sam, group_members, _note in AD_GROUP_ENTRIES:
        if group_dn(cn, ADGROUPS) == dn:
            members = group_members
    people = set()
    for member in members or []:
        label = _rdn_label(member)
        if label is not None:
            people.add(label)
        else:
            people |= transitive_people(member, seen)
    return people


def outputs(size_limit=500):
    files = {name: ldif_file(title, fn()) for name, title, fn in LDIF_FILES}
    files["README.md"] = readme(size_limit)
    return files


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the files on disk differ")
    parser.add_argument("--outdir", default=HERE)
    args = parser.parse_args(argv)
    stale = []
    for name, text in outputs().items():
        path = os.path.join(args.outdir, name)
        data = text.encode("utf-8")
        current = None
        if os.path.exists(path):
            with open(path, "rb") as handle:
                current = handle.read()
        if current == data:
            continue
        stale.append(name)
        if not args.check:
            with open(path, "wb") as handle:
                handle.write(data)
    if args.check and stale:
        sys.stderr.write("out of date: {} (run generate.py)\n".format(", ".join(stale)))
        return 1
    for name in stale:
        print(f"wrote {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
