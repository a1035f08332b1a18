# -*- coding: utf-8 -*-
"""`make bench`: speed and memory of the sync path at scale, as ratios measured in one run.

Machines here are shared and noisy, so nothing is asserted on seconds; the report gives
ratios against baselines measured in the same run (ldapsearch for the directory read, the
directory read for the whole no-op sync) and request counts, which do not depend on load.

    python tests/bench/run.py [--users 20000] [--scim-users 5000] [--out .build/bench/results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests"))
sys.path.insert(0, str(REPO_ROOT / ".build" / "collections"))

from support.scim_server import ScimServer  # noqa: E402
from support.slapd import SlapdServer  # noqa: E402

from ansible_collections.idsync.provisioning.plugins.module_utils import _engine, _ldap, _mapping, scim  # noqa: E402

BASE_LDIF = REPO_ROOT / "tests" / "data" / "ldap" / "00-base.ldif"
GROUP_SIZE = 100


def bench_ldif(path: Path, users: int) -> None:
    """``users`` people under ou=bench and one group per GROUP_SIZE of them."""
    with path.open("w", encoding="utf-8") as out:
        out.write("dn: ou=bench,dc=example,dc=org\nobjectClass: organizationalUnit\nou: bench\n\n")
        out.write("dn: ou=benchgroups,dc=example,dc=org\nobjectClass: organizationalUnit\nou: benchgroups\n\n")
        for n in range(users):
            out.write(
                f"dn: uid=u{n:06d},ou=bench,dc=example,dc=org\nobjectClass: inetOrgPerson\nuid: u{n:06d}\n"
                f"cn: User {n}\nsn: User{n}\ngivenName: Bench\nmail: u{n:06d}@example.org\n\n"
            )
        for g in range((users + GROUP_SIZE - 1) // GROUP_SIZE):
            out.write(
                f"dn: cn=bench{g:04d},ou=benchgroups,dc=example,dc=org\nobjectClass: groupOfNames\ncn: bench{g:04d}\n"
            )
            for n in range(g * GROUP_SIZE, min(users, (g + 1) * GROUP_SIZE)):
                out.write(f"member: uid=u{n:06d},ou=bench,dc=example,dc=org\n")
            out.write("\n")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(function):
    start = time.perf_counter()
    value = function()
    return value, time.perf_counter() - start


def source_options(ldap: SlapdServer, groups: bool, page_size: int = 1000) -> _ldap.LdapOptions:
    values = {
        "server_uri": [ldap.uri],
        "bind_dn": ldap.bind_dn,
        "bind_pw": ldap.bind_pw,
        "user_base_dn": "ou=bench,dc=example,dc=org",
        "group_base_dn": "ou=benchgroups,dc=example,dc=org" if groups else None,
        "page_size": page_size,
    }
    return _ldap.LdapOptions.from_getter(values.get)


def ldapsearch_seconds(ldap: SlapdServer) -> float:
    command = [
        "ldapsearch", "-x", "-LLL", "-H", ldap.uri, "-D", ldap.bind_dn, "-w", ldap.bind_pw,
        "-b", "ou=bench,dc=example,dc=org", "-E", "pr=1000/noprompt", "(objectClass=inetOrgPerson)", "*", "entryUUID",
    ]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def ldap3_paged_seconds(ldap: SlapdServer) -> float:
    """ldap3's own paged search with no processing: the floor of what the reader can do."""
    import ldap3

    connection = ldap3.Connection(ldap3.Server(ldap.uri), ldap.bind_dn, ldap.bind_pw, auto_bind=True, check_names=False)
    start = time.perf_counter()
    for _entry in connection.extend.standard.paged_search(
        "ou=bench,dc=example,dc=org", "(objectClass=inetOrgPerson)", attributes=["*", "entryUUID"], paged_size=1000
    ):
        pass
    elapsed = time.perf_counter() - start
    connection.unbind()
    return elapsed


def sync_once(ldap: SlapdServer, server: ScimServer, users_limit: int) -> dict:
    connector = scim.ScimConnector(server.url, token=server.token, use_bulk=None, page_size=1000)
    directory, read_s = timed(lambda: _ldap.read_directory(source_options(ldap, groups=True)))
    users = directory.users[:users_limit]
    kept = {u.id for u in users}
    groups = [g for g in directory.groups if set(g.members) & kept]
    mapping = _mapping.compile_mapping(scim.DEFAULT_USER_MAPPING, scim.USER_KEY)
    (desired, errors), map_s = timed(lambda: _mapping.map_users(mapping, users))
    desired_groups, _unused = _mapping.map_groups(_mapping.compile_group_mapping(), groups)
    for group in desired_groups:
        group.members &= kept
    policy = _engine.Policy()
    plan, plan_s = timed(lambda: _engine.plan(desired, desired_groups, connector, policy, source_errors=errors))
    report, apply_s = timed(lambda: _engine.apply(plan, connector, check_mode=False, max_workers=4))
    return {
        "users": len(users),
        "groups": len(groups),
        "read_s": round(read_s, 3),
        "map_s": round(map_s, 3),
        "plan_s": round(plan_s, 3),
        "apply_s": round(apply_s, 3),
        "counts": report.counts,
        "failed": report.failed,
        "requests": {" ".join(k) if isinstance(k, tuple) else str(k): v for k, v in connector.client.stats.items()},
        "request_total": sum(connector.client.stats.values()),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=int(os.environ.get("BENCH_USERS", 20000)))
    parser.add_argument("--scim-users", type=int, default=int(os.environ.get("BENCH_SCIM_USERS", 5000)))
    parser.add_argument("--out", default=str(REPO_ROOT / ".build" / "bench" / "results.json"))
    args = parser.parse_args()
    from bench import ldap_bench  # the reader against ldapsearch, ldap3 and python-ldap (issue 13)

    ldap_bench.main([])
    results: dict = {"users": args.users, "scim_users": args.scim_users}

    with tempfile.TemporaryDirectory(prefix="idsync-bench-") as workdir:
        ldif = Path(workdir) / "bench.ldif"
        bench_ldif(ldif, args.users)
        with SlapdServer(Path(workdir) / "slapd", [str(BASE_LDIF), str(ldif)]) as ldap:
            baseline = ldapsearch_seconds(ldap)
            ldap3_floor = ldap3_paged_seconds(ldap)
            rss_before = peak_rss_mb()
            directory, read_users = timed(lambda: _ldap.read_directory(source_options(ldap, groups=False)))
            directory_groups, read_all = timed(lambda: _ldap.read_directory(source_options(ldap, groups=True)))
            results["directory"] = {
                "ldapsearch_s": round(baseline, 3),
                "read_users_s": round(read_users, 3),
                "read_users_and_groups_s": round(read_all, 3),
                "ldap3_paged_search_s": round(ldap3_floor, 3),
                "read_vs_ldapsearch": round(read_users / baseline, 2),
                "read_vs_ldap3_paged_search": round(read_users / ldap3_floor, 2),
                "groups_overhead": round(read_all / read_users, 2),
                "users_read": len(directory.users),
                "groups_read": len(directory_groups.groups),
                "peak_rss_mb": round(peak_rss_mb(), 1),
                "rss_growth_mb": round(peak_rss_mb() - rss_before, 1),
            }
            del directory, directory_groups
            with ScimServer() as server:
                first = sync_once(ldap, server, args.scim_users)
                noop = sync_once(ldap, server, args.scim_users)
            results["scim"] = {
                "first_run": first,
                "noop_run": noop,
                "noop_requests_per_1000_users": round(noop["request_total"] * 1000 / max(1, noop["users"]), 2),
                "noop_total_vs_directory_read": round(
                    (noop["read_s"] + noop["map_s"] + noop["plan_s"] + noop["apply_s"]) / max(noop["read_s"], 1e-9), 2
                ),
                "peak_rss_mb": round(peak_rss_mb(), 1),
            }

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    print(f"\nwritten to {out}")
    from bench import targets  # every *_sync end to end through ansible-playbook (issue 16)

    return targets.main([])


if __name__ == "__main__":
    sys.exit(main())
