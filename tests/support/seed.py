# -*- coding: utf-8 -*-
"""Facts of the seed directory that tests check against, copied from tests/data/ldap/README.md.

Written out rather than computed, so that the tests stay an independent check of the reader.
"""

BASE = "dc=example,dc=org"
PEOPLE = f"ou=people,{BASE}"
GROUPS = f"ou=groups,{BASE}"

# uid -> entryUUID of the OpenLDAP-style people
PEOPLE_IDS = {
    "jdoe": "41b2dad9-7dce-5c41-b54d-6b4447b29ea4",
    "asmith": "2ad2f516-fd98-56b1-bf75-bc2a81679145",
    "bwhite": "04549176-2f93-56c5-aaae-f11ceb6b7b34",
    "jmuller": "5b37150b-9f61-5bc6-a7ef-2416d499ea0d",
    "zoe": "e5f41f87-8475-57e4-b961-0abff49cf0a4",
    "jsmith": "67086892-1dc6-521a-9a3d-79e95163d2ea",
    "locked1": "43dff9a9-4f27-5b98-835b-11e8d65c0dff",
    "nomail": "e3f4e96a-683c-5945-86a0-2c2d12bd9331",
}
# the people a sync provisions by default (locked1 is disabled in the directory)
ACTIVE_PEOPLE = sorted(set(PEOPLE_IDS) - {"locked1"})

# sAMAccountName -> objectGUID as Windows writes it
AD_GUIDS = {
    "aadmin": "80e19741-0dfd-fb54-a2c2-48f39b714ca0",
    "cclerk": "2320be1d-859f-ec5a-96cf-290e8778e79b",
    "ddisabled": "10c7c3d6-9838-f850-bebc-930d103668e4",
    "eexpired": "57e1dc44-d560-cc5e-a097-444f509d7941",
    "ocelik": "e5c70ed9-7107-3c5d-8a0e-08cb94d4e4fb",
    "klee": "ccf559f9-26fc-b554-9135-3e777c77e365",
    "fforever": "bbbdc836-e384-7852-b72e-f3ff9be13718",
}

GROUP_IDS = {
    "Engineering": "c0fd59e6-2f9f-51e3-8aaa-08870ac1a191",
    "Platform": "a1347002-a6ad-5842-94ff-8be73646c8bb",
}
