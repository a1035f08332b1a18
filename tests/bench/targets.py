# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""`make bench`, the targets (issue 16): every ``*_sync`` module end to end through ansible-playbook.

For each directory size N (G = 500 groups of Zipf-spread sizes, see ``directory.py``, loaded
with slapadd) and each target (SCIM on scim2-server; Box, Dropbox, PingID on their fakes, with a
per-request latency), three runs: initial provision, no-op, 1% change. Per run: wall time per
phase (from the probe inside the module process, ``probe/sitecustomize.py``), requests by kind,
requests against the lower bound (list pages + one per change), peak memory, and in the same
run the floors: ``ldapsearch`` reading the same entries, the collection's directory reader on
its own, and a plain paged listing of the target. Then the Box write rate against its rate limit
(1,000 requests a minute) and the naive way (one ``scim_user`` task per user) against the sync.

Nothing is asserted on seconds: the report gives ratios measured in one run, and request
counts, which do not depend on the machine's load. One table per run on stdout, everything in
``.build/bench/targets-<N>.json``, a PNG per target (time per phase against N) when matplotlib
is importable.

    python tests/bench/targets.py [--sizes 1000,5000] [--targets scim,box,dropbox] [--quick]
    BENCH_QUICK=1 python tests/bench/targets.py      # a few minutes: N=300, G=50
    BENCH_PROFILE_DIR=/tmp/prof python tests/bench/targets.py --sizes 5000 --targets scim
                                                     # + a cProfile of every module run
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
for entry in (REPO_ROOT / "tests", REPO_ROOT / ".build" / "collections"):
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))

import requests  # noqa: E402
from bench import playrun  # noqa: E402
from bench.directory import GROUPS, PEOPLE, BenchDirectory  # noqa: E402
from support.box_fake import BoxFake  # noqa: E402
from support.dropbox_fake import DropboxFake  # noqa: E402
from support.scim_server import ScimServer  # noqa: E402
from support.slapd import SlapdServer  # noqa: E402

BASE_LDIF = REPO_ROOT / "tests" / "data" / "ldap" / "00-base.ldif"
OUT_DIR = REPO_ROOT / ".build" / "bench"
PAGE = 1000  # every target's largest page, and the directory's
LATENCY = 0.002  # seconds per request at the fakes (loopback is faster than any real service)
BOX_RATE = (100, 6.0)  # Box's 1,000 requests a minute, as a 6-second bucket (bursts of 100)
MEMBER_CHUNK = 100  # the modules' default member_chunk


# -- the targets ---------------------------------------------------------------------------
@dataclass
class Target:
    """How to run one ``*_sync`` module against its service, and what its floor is."""

    name: str
    module: str
    start: Callable[[], Any]  # -> a context manager giving the service
    args: Callable[[Any, dict, Path], dict]  # (service, source options, work dir) -> module args
    env: Callable[[Any], dict]
    listing: Callable[[Any], dict]  # a plain paged listing of the service: {"requests": n}
    list_pages: Callable[[int, list[int]], int]  # (accounts, group sizes) -> fewest list requests
    write_requests: Callable[[dict, list[dict]], int]  # (report counts, actions) -> fewest writes
    max_group: int | None = None  # groups larger than this cannot be read (Box: 10,000)
    server_log: Callable[[Any], list[dict]] | None = None  # the requests the service received


def _cursor_pages(count: int) -> int:
    """Pages of a marker or cursor listing: a full page says "more" even when nothing follows."""
    return count // PAGE + 1


def _chunks(count: int, size: int = MEMBER_CHUNK) -> int:
    return math.ceil(count / size) if count else 0


def _member_count(actions: list[dict], kind: str) -> Counter:
    counts: Counter = Counter()
    for action in actions:
        if action.get("kind") == kind and action.get("status") == "ok":
            counts[action.get("name")] += len(action.get("members") or [])
    return counts


def _object_writes(counts: dict) -> int:
    return sum(n for kind, n in counts.items() if kind not in ("add_members", "remove_members"))


# SCIM: one PATCH carries adds and removes together, member_chunk ids at a time.
def scim_writes(counts: dict, actions: list[dict]) -> int:
    added, removed = _member_count(actions, "add_members"), _member_count(actions, "remove_members")
    return _object_writes(counts) + sum(_chunks(added[g] + removed[g]) for g in set(added) | set(removed))


def scim_pages(accounts: int, sizes: list[int]) -> int:
    # /ServiceProviderConfig, the user pages, the group pages (members included)
    return 1 + max(1, math.ceil(accounts / PAGE)) + max(1, math.ceil(len(sizes) / PAGE))


def scim_listing(server: ScimServer) -> dict:
    session, made = requests.Session(), 0
    session.headers["Authorization"] = f"Bearer {server.token}"
    for endpoint in ("/Users", "/Groups"):
        start = 1
        while True:
            page = session.get(f"{server.url}{endpoint}", params={"startIndex": start, "count": PAGE}, timeout=600)
            made += 1
            page.raise_for_status()
            body = page.json()
            start += len(body.get("Resources", []))
            if not body.get("Resources") or start > body["totalResults"]:
                break
    return {"requests": made}


@contextlib.contextmanager
def scim_service():
    with ScimServer() as server:
        yield server


# Box: one request per member added or removed; token, users, groups, then each group's memberships.
def box_writes(counts: dict, actions: list[dict]) -> int:
    added, removed = _member_count(actions, "add_members"), _member_count(actions, "remove_members")
    return _object_writes(counts) + sum(added.values()) + sum(removed.values())


def box_pages(accounts: int, sizes: list[int]) -> int:
    groups = max(1, math.ceil((len(sizes) + 1) / PAGE))  # + the all-users group
    # the users by marker (the app's service account among them), the groups and memberships by offset
    return 1 + _cursor_pages(accounts + 1) + groups + sum(max(1, math.ceil(n / PAGE)) for n in sizes)


def box_listing(fake: BoxFake) -> dict:
    session, made = requests.Session(), 0
    session.headers["Authorization"] = f"Bearer {fake.access_token()}"

    def get(path: str, **params: Any) -> dict:
        nonlocal made
        made += 1
        answer = session.get(f"{fake.api_url}{path}", params=params, timeout=600)
        answer.raise_for_status()
        return answer.json()

    marker = None
    while True:
        page = get(
            "/users", usemarker="true", limit=PAGE, user_type="managed", **({"marker": marker} if marker else {})
        )
        marker = page.get("next_marker")
        if not marker:
            break

    def offset_pages(path: str) -> list[dict]:
        entries, offset = [], 0
        while True:
            page = get(path, limit=PAGE, offset=offset)
            entries += page["entries"]
            offset += len(page["entries"])
            if not page["entries"] or offset >= page.get("total_count", 0):
                return entries

    for group in offset_pages("/groups"):
        offset_pages(f"/groups/{group['id']}/memberships")
    return {"requests": made}


@contextlib.contextmanager
def box_service(rate_limit: tuple[int, float] | None = None):
    with BoxFake(validator=None, latency=LATENCY, rate_limit=rate_limit) as fake:
        yield fake


def _fake_log(fake: Any) -> list[dict]:
    with fake.lock:
        return [
            {
                "kind": f"{e.method} {e.name or e.route or e.path}",
                "status": e.status,
                "write": e.write,
                "start": e.started,
            }
            for e in fake.requests
        ]


# Dropbox: members/add_v2 takes 20 at a time (and its job is polled); member adds and removes take a chunk each.
def dropbox_writes(counts: dict, actions: list[dict]) -> int:
    added, removed = _member_count(actions, "add_members"), _member_count(actions, "remove_members")
    creates = counts.get("create_user", 0)
    others = _object_writes(counts) - creates
    # add_v2 answers with an async job: at least one job_status/get_v2 per call
    return (
        2 * math.ceil(creates / 20)
        + others
        + sum(_chunks(n) for n in added.values())
        + sum(_chunks(n) for n in removed.values())
    )


def dropbox_pages(accounts: int, sizes: list[int]) -> int:
    # every listing is cursor-paged: the members (the team's admin among them), the groups (the
    # system-managed one among them), each group's members
    return 1 + _cursor_pages(accounts + 1) + _cursor_pages(len(sizes) + 1) + sum(_cursor_pages(n) for n in sizes)


def dropbox_listing(fake: DropboxFake) -> dict:
    session, made = requests.Session(), 0
    session.headers["Authorization"] = f"Bearer {fake.access_token()}"

    def call(route: str, arg: dict) -> dict:
        nonlocal made
        made += 1
        answer = session.post(f"{fake.api_url}/{route}", json=arg, timeout=600)
        answer.raise_for_status()
        return answer.json()

    def paged(route: str, following: str, arg: dict, key: str) -> list[dict]:
        page = call(route, arg)
        items = list(page[key])
        while page.get("has_more"):
            page = call(following, {"cursor": page["cursor"]})
            items += page[key]
        return items

    paged("team/members/list_v2", "team/members/list/continue_v2", {"limit": PAGE}, "members")
    for group in paged("team/groups/list", "team/groups/list/continue", {"limit": PAGE}, "groups"):
        selector = {".tag": "group_id", "group_id": group["group_id"]}
        paged(
            "team/groups/members/list",
            "team/groups/members/list/continue",
            {"group": selector, "limit": PAGE},
            "members",
        )
    return {"requests": made}


@contextlib.contextmanager
def dropbox_service():
    with DropboxFake(validator=None, added_status="active", latency=LATENCY) as fake:
        yield fake


def _ldap_env(ldap: SlapdServer) -> dict:
    return {"LDAP_BIND_DN": ldap.bind_dn, "LDAP_BIND_PW": ldap.bind_pw}


TARGETS = {
    "scim": Target(
        "scim",
        "idsync.provisioning.scim_sync",
        scim_service,
        # scim2-server takes about 1 s per member removed from a 20,000-member group: a long timeout
        lambda server, source, work: {"url": server.url, "page_size": PAGE, "timeout": 900, "source": source},
        lambda server: {"SCIM_TOKEN": server.token},
        scim_listing,
        scim_pages,
        scim_writes,
    ),
    "box": Target(
        "box",
        "idsync.provisioning.box_sync",
        box_service,
        lambda fake, source, work: {
            "url": fake.api_url,
            "token_url": fake.token_url,
            "state_file": str(work / "box-state.json"),
            "source": source,
        },
        lambda fake: {
            "BOX_CLIENT_ID": fake.app.client_id,
            "BOX_CLIENT_SECRET": fake.app.client_secret,
            "BOX_ENTERPRISE_ID": fake.app.enterprise_id,
        },
        box_listing,
        box_pages,
        box_writes,
        max_group=10000,
        server_log=_fake_log,
    ),
    "dropbox": Target(
        "dropbox",
        "idsync.provisioning.dropbox_sync",
        dropbox_service,
        lambda fake, source, work: {"url": fake.api_url, "token_url": fake.token_url, "source": source},
        lambda fake: {
            "DROPBOX_APP_KEY": fake.app.app_key,
            "DROPBOX_APP_SECRET": fake.app.app_secret,
            "DROPBOX_REFRESH_TOKEN": fake.app.refresh_token,
        },
        dropbox_listing,
        dropbox_pages,
        dropbox_writes,
        server_log=_fake_log,
    ),
}
# PingID joins when its sync module exists (issue 12): see docs/performance.md.
PINGID_MODULE = REPO_ROOT / "plugins" / "modules" / "pingid_sync.py"


# -- the directory side --------------------------------------------------------------------
def source_options(ldap: SlapdServer, group_filter: str | None = None, user_filter: str | None = None) -> dict:
    source = {
        "server_uri": [ldap.uri],
        "user_base_dn": PEOPLE,
        "group_base_dn": GROUPS,
        "page_size": PAGE,
    }
    if group_filter:
        source["group_filter"] = group_filter
    if user_filter:
        source["user_filter"] = user_filter
    return source


def ldapsearch_seconds(ldap: SlapdServer) -> float:
    """The floor of the directory read: ldapsearch of the same people and groups, paged, to /dev/null."""
    started = time.perf_counter()
    for base, filter_text in ((PEOPLE, "(objectClass=inetOrgPerson)"), (GROUPS, "(objectClass=groupOfNames)")):
        command = [
            "ldapsearch", "-x", "-LLL", "-H", ldap.uri, "-D", ldap.bind_dn, "-w", ldap.bind_pw,
            "-b", base, "-E", f"pr={PAGE}/noprompt", filter_text, "*", "entryUUID",
        ]  # fmt: skip
        subprocess.run(command, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def reader_seconds(ldap: SlapdServer, source: dict) -> float:
    """The collection's directory reader on its own, in this process, with the module's options."""
    from ansible_collections.idsync.provisioning.plugins.module_utils import _ldap

    options = dict(source, bind_dn=ldap.bind_dn, bind_pw=ldap.bind_pw)
    started = time.perf_counter()
    _ldap.read_directory(_ldap.LdapOptions.from_getter(options.get))
    return time.perf_counter() - started


def group_filter_up_to(directory: BenchDirectory, size: int | None) -> tuple[str | None, list[int]]:
    """The group filter that keeps the groups a target can read, and their numbers."""
    if size is None or max(directory.sizes) <= size:
        return None, list(range(directory.groups))
    kept = directory.groups_up_to(size)
    dropped = [k for k in range(directory.groups) if k not in kept]
    return "(&(objectClass=groupOfNames)" + "".join(f"(!(cn={directory.group_name(k)}))" for k in dropped) + ")", kept


# -- one run -------------------------------------------------------------------------------
def phases(run: playrun.PlayRun) -> dict:
    """Seconds per phase, from the probe: start-up (interpreter, imports, arguments), directory
    read, map, target read (from the first to the last request of the plan), plan (the rest of
    the plan), writes (apply), finish (report and exit), and ansible-playbook's own time around it."""
    probe = run.probe
    if not probe:
        return {}
    spans = probe.get("phases", {})
    started, ended = probe["started"], probe["ended"]
    plan = spans.get("plan", [started, started])
    apply_span = spans.get("apply", [plan[1], plan[1]])
    in_plan = [r for r in probe["requests"] if plan[0] <= r["start"] <= plan[1]]
    target_read = (max(r["end"] for r in in_plan) - min(r["start"] for r in in_plan)) if in_plan else 0.0
    first = min((span[0] for span in spans.values()), default=ended)
    module = ended - started
    return {
        "startup": round(first - started, 3),
        "directory_read": round(probe.get("spent", {}).get("directory_read", 0.0), 3),
        "map": round(probe.get("spent", {}).get("map", 0.0), 3),
        "target_read": round(target_read, 3),
        "plan": round(max(0.0, plan[1] - plan[0] - target_read), 3),
        "writes": round(apply_span[1] - apply_span[0], 3),
        "finish": round(ended - max(apply_span[1], plan[1]), 3),
        "module": round(module, 3),
        "ansible": round(run.wall_s - module, 3),
        "total": round(run.wall_s, 3),
    }


def _is_id(part: str) -> bool:
    """A path segment that names one object (a SCIM hex id, a Box number), not an endpoint."""
    return (part.isdigit() and len(part) >= 4) or (len(part) >= 8 and all(c in "0123456789abcdefABCDEF-" for c in part))


def request_kinds(probe: dict) -> Counter:
    kinds: Counter = Counter()
    for entry in probe.get("requests", []):
        path = urlsplit(entry["url"]).path
        parts = [("{id}" if _is_id(part) else part) for part in path.split("/")]
        kinds[f"{entry['method']} {'/'.join(parts)}"] += 1
    return kinds


def full_rewrites(probe: dict) -> list[str]:
    """Requests that rewrote a whole member list (a SCIM PUT of a group, members included)."""
    return [
        f"{r['method']} {urlsplit(r['url']).path} ({-r['members']} members)"
        for r in probe.get("requests", [])
        if r.get("members") is not None and r["members"] < 0
    ]


def largest_member_request(probe: dict) -> int:
    return max((r["members"] for r in probe.get("requests", []) if r.get("members")), default=0)


@dataclass
class Measured:
    target: str
    users: int
    run: str
    ok: bool
    phases: dict
    requests: int
    lower_bound: int
    kinds: dict
    counts: dict
    failed: int
    module_peak_rss_mb: float | None
    tree_peak_rss_mb: float | None
    largest_member_request: int
    full_rewrites: list[str]
    floors: dict = field(default_factory=dict)
    server: dict = field(default_factory=dict)
    message: str | None = None

    @property
    def ratio(self) -> float:
        return round(self.requests / self.lower_bound, 3) if self.lower_bound else float("nan")


def measure(
    target: Target,
    name: str,
    run: playrun.PlayRun,
    accounts_before: int,
    sizes_before: list[int],
    service: Any,
) -> Measured:
    report = run.result.get("report") or {}
    counts = report.get("counts") or {}
    actions = report.get("actions") or []
    bound = target.list_pages(accounts_before, sizes_before) + target.write_requests(counts, actions)
    made = len(run.probe.get("requests", []))
    server = {}
    if target.server_log is not None:
        log = target.server_log(service)
        server = {
            "received": len(log),
            "rate_limited": sum(1 for e in log if e["status"] == 429),
            "kinds": dict(Counter(e["kind"] for e in log)),
        }
    return Measured(
        target=target.name,
        users=0,
        run=name,
        ok=run.rc == 0 and not run.result.get("failed"),
        phases=phases(run),
        requests=made,
        lower_bound=bound,
        kinds=dict(request_kinds(run.probe)),
        counts=counts,
        failed=report.get("failed", 0),
        module_peak_rss_mb=run.probe.get("peak_rss_mb"),
        tree_peak_rss_mb=run.tree_peak_rss_mb,
        largest_member_request=largest_member_request(run.probe),
        full_rewrites=full_rewrites(run.probe),
        server=server,
        message=None if run.rc == 0 else (run.result.get("msg") or run.output[-1500:]),
    )


def print_table(m: Measured) -> None:
    p = m.phases
    print(f"\n== {m.target} N={m.users} {m.run}: {'ok' if m.ok else 'FAILED'} ==")
    if m.message:
        print(f"   {m.message}")
    order = ("startup", "directory_read", "map", "target_read", "plan", "writes", "finish", "ansible", "total")
    print("   phase (s)      " + "  ".join(f"{key:>14}" for key in order))
    print("                  " + "  ".join(f"{p.get(key, float('nan')):>14.3f}" for key in order))
    print(f"   requests {m.requests} vs lower bound {m.lower_bound} (x{m.ratio})  changes {m.counts or '{}'}")
    for kind, count in sorted(m.kinds.items(), key=lambda item: -item[1]):
        print(f"     {count:>7}  {kind}")
    if m.server:
        print(f"   at the service: {m.server['received']} received, {m.server['rate_limited']} answered 429")
    print(f"   peak RSS: module {m.module_peak_rss_mb} MiB, ansible-playbook tree {m.tree_peak_rss_mb} MiB")
    if m.largest_member_request:
        print(
            f"   largest member-change request: {m.largest_member_request} members; full rewrites: {m.full_rewrites or 'none'}"
        )
    if m.floors:
        print("   floors: " + ", ".join(f"{key} {value}" for key, value in m.floors.items()))


# -- the runs of one target at one size ------------------------------------------------------
def bench_target(
    target: Target, directory: BenchDirectory, ldap: SlapdServer, work: Path, floors: dict
) -> list[Measured]:
    group_filter, kept = group_filter_up_to(directory, target.max_group)
    source = source_options(ldap, group_filter)
    sizes = [directory.sizes[k] for k in kept]
    measured: list[Measured] = []
    with target.start() as service:
        env = dict(target.env(service), **_ldap_env(ldap))
        args = target.args(service, source, work)

        def one(name: str, accounts: int, group_sizes: list[int]) -> Measured:
            if hasattr(service, "clear_log"):
                service.clear_log()
            profile_dir = os.environ.get("BENCH_PROFILE_DIR")  # a cProfile of each module run
            profile = Path(profile_dir) / f"{target.name}-{directory.users}-{name}.prof" if profile_dir else None
            run = playrun.sync(work / f"{target.name}-{name}", target.module, args, env, profile=profile)
            result = measure(target, name, run, accounts, group_sizes, service)
            result.users = directory.users
            measured.append(result)
            return result

        one("initial", 0, [])
        noop = one("noop", directory.users, sizes)
        if hasattr(service, "clear_log"):
            service.clear_log()
        listed, listing_s = _timed(lambda: target.listing(service))
        noop.floors = dict(floors)
        noop.floors["target_listing_s"] = round(listing_s, 3)
        noop.floors["target_listing_requests"] = listed["requests"]
        floor = floors["reader_s"] + listing_s
        noop.floors["noop_total_vs_floor"] = round(noop.phases.get("total", 0) / floor, 2) if floor else None
        noop.floors["noop_module_vs_floor"] = round(noop.phases.get("module", 0) / floor, 2) if floor else None
        ldap.modify(directory.change_ldif())
        try:
            one("change", directory.users, sizes)
        finally:
            ldap.modify(directory.change_ldif(revert=True))
    for result in measured:
        print_table(result)
    return measured


def _timed(function):
    started = time.perf_counter()
    value = function()
    return value, time.perf_counter() - started


# -- the Box rate limit ------------------------------------------------------------------------
def bench_rate_limit(ldap: SlapdServer, directory: BenchDirectory, work: Path, users: int) -> dict:
    """An initial provision into a Box fake limited to 1,000 requests a minute: the write rate."""
    prefix = sorted({directory.uid(n)[:5] for n in range(users)})
    user_filter = "(&(objectClass=inetOrgPerson)(|" + "".join(f"(uid={p}*)" for p in prefix) + "))"
    kept = [k for k in range(min(20, directory.groups)) if directory.sizes[k] <= 10000]
    group_filter = "(|" + "".join(f"(cn={directory.group_name(k)})" for k in kept) + ")"
    target = TARGETS["box"]
    with box_service(rate_limit=BOX_RATE) as fake:
        args = target.args(fake, source_options(ldap, group_filter, user_filter), work)
        run = playrun.sync(work / "box-rate", target.module, args, dict(target.env(fake), **_ldap_env(ldap)))
        log = _fake_log(fake)
        report = run.result.get("report") or {}
        writes = [e for e in log if e["write"]]
        passed = [e for e in writes if e["status"] is not None and e["status"] < 400]
        limited = [e for e in log if e["status"] == 429]
        allowed = BOX_RATE[0] / BOX_RATE[1]
        window = None
        if limited and passed:
            # From the first 429 (the burst is spent) to the last write: the sustained rate.
            begin = limited[0]["start"]
            sustained = [e for e in passed if e["start"] >= begin]
            span = max(e["start"] for e in passed) - begin
            window = {
                "writes": len(sustained),
                "seconds": round(span, 2),
                "rate": round(len(sustained) / span, 2) if span else None,
            }
        planned = sum(len(a.get("members") or []) or 1 for a in report.get("actions", []))
        done = sum(len(a.get("members") or []) or 1 for a in report.get("actions", []) if a.get("status") == "ok")
        result = {
            "users": len([a for a in report.get("actions", []) if a.get("kind") == "create_user"]),
            "ok": run.rc == 0,
            "message": None if run.rc == 0 else run.result.get("msg"),
            "allowed_rate_per_s": round(allowed, 2),
            "writes_sent": len(writes),
            "writes_passed": len(passed),
            "answered_429": len(limited),
            "planned_writes": planned,
            "writes_done": done,
            "lost": planned - done,
            "failed": report.get("failed"),
            "throttled_window": window,
            "utilisation": round(window["rate"] / allowed, 3) if window and window["rate"] else None,
            "writes_phase_s": phases(run).get("writes"),
        }
    print(f"\n== box rate limit ({BOX_RATE[0]} per {BOX_RATE[1]:g} s = {allowed:.1f}/s) ==")
    print("   " + json.dumps(result))
    return result


# -- the naive loop ----------------------------------------------------------------------------
NAIVE_PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: One scim_user task per user
      idsync.provisioning.scim_user:
        url: "{{ scim_url }}"
        page_size: 1000
        user_name: "{{ item.uid }}"
        attributes:
          name.givenName: "{{ item.given }}"
          name.familyName: "{{ item.sn }}"
          displayName: "{{ item.cn }}"
          emails:
            - value: "{{ item.mail }}"
              type: work
              primary: true
      loop: "{{ people }}"
    - name: Record
      ansible.builtin.copy:
        content: "{{ people | length | to_json }}"
        dest: "{{ record }}"
        mode: "0600"
"""


def bench_naive(ldap: SlapdServer, directory: BenchDirectory, work: Path, naive_users: int, sync_users: int) -> dict:
    """The naive way (one scim_user task per user) on ``naive_users``, against scim_sync of ``sync_users``."""
    people = [
        {
            "uid": directory.uid(n),
            "given": "Bench",
            "sn": f"User{n}",
            "cn": f"Bench User{n}",
            "mail": f"{directory.uid(n)}@example.org",
        }
        for n in range(naive_users)
    ]
    with ScimServer() as server:
        env = {"SCIM_TOKEN": server.token}
        naive = playrun.run(work / "naive", NAIVE_PLAY, {"scim_url": server.url, "people": people}, env)
    prefix = sorted({directory.uid(n)[:5] for n in range(sync_users)})  # u0000 is u000000-u000099
    user_filter = "(&(objectClass=inetOrgPerson)(|" + "".join(f"(uid={p}*)" for p in prefix) + "))"
    source = source_options(ldap, user_filter=user_filter)
    source.pop("group_base_dn")
    with ScimServer() as server:
        args = {"url": server.url, "page_size": PAGE, "source": source}
        sync = playrun.sync(
            work / "naive-sync",
            "idsync.provisioning.scim_sync",
            args,
            dict({"SCIM_TOKEN": server.token}, **_ldap_env(ldap)),
        )
    created = (sync.result.get("report") or {}).get("counts", {}).get("create_user", 0)
    per_user = naive.wall_s / naive_users
    result = {
        "naive_users": naive_users,
        "naive_s": round(naive.wall_s, 2),
        "naive_ok": naive.rc == 0,
        "naive_per_user_s": round(per_user, 3),
        "sync_users": created,
        "sync_s": round(sync.wall_s, 2),
        "sync_ok": sync.rc == 0,
        "naive_extrapolated_s": round(per_user * created, 1),
        "speedup": round(per_user * created / sync.wall_s, 1) if sync.wall_s and created else None,
    }
    print("\n== naive loop (one scim_user task per user) vs scim_sync ==")
    print("   " + json.dumps(result))
    return result


# -- the whole bench -----------------------------------------------------------------------------
def bench_size(users: int, groups: int, names: list[str], work: Path, extras: dict) -> dict:
    directory = BenchDirectory(users, groups)
    ldif = directory.write_ldif(work / f"bench-{users}.ldif")
    results: dict = {
        "users": users,
        "groups": groups,
        "memberships": directory.memberships,
        "largest_group": max(directory.sizes),
    }
    with SlapdServer(work / f"slapd-{users}", [str(BASE_LDIF), str(ldif)], size_limit=PAGE) as ldap:
        floors = {
            "ldapsearch_s": round(ldapsearch_seconds(ldap), 3),
            "reader_s": round(reader_seconds(ldap, source_options(ldap)), 3),
        }
        print(
            f"\n### N={users} G={groups} ({directory.memberships} memberships, largest group {max(directory.sizes)}): {floors}"
        )
        results["floors"] = floors
        results["runs"] = []
        for name in names:
            for measured in bench_target(TARGETS[name], directory, ldap, work / f"{name}-{users}", floors):
                results["runs"].append(measured.__dict__ | {"ratio": measured.ratio})
        if extras.get("rate_users"):
            results["box_rate_limit"] = bench_rate_limit(ldap, directory, work / "rate", extras["rate_users"])
        if extras.get("naive_users"):
            results["naive"] = bench_naive(ldap, directory, work / "naive", extras["naive_users"], extras["sync_users"])
    return results


def plot(all_results: list[dict], out_dir: Path) -> list[str]:
    """One PNG per target: seconds per phase of each run against N (needs matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    written = []
    keys = ("directory_read", "target_read", "plan", "writes", "total")
    targets = sorted({run["target"] for result in all_results for run in result["runs"]})
    for target in targets:
        figure, axes = plt.subplots(1, 3, figsize=(15, 4.5), sharey=False)
        for axis, name in zip(axes, ("initial", "noop", "change"), strict=True):
            runs = sorted(
                (
                    run
                    for result in all_results
                    for run in result["runs"]
                    if run["target"] == target and run["run"] == name
                ),
                key=lambda run: run["users"],
            )
            sizes = [run["users"] for run in runs]
            for key in keys:
                axis.plot(sizes, [run["phases"].get(key, 0) for run in runs], marker="o", label=key)
            if name == "noop":
                floor = [
                    next(r["floors"]["reader_s"] for r in all_results if r["users"] == run["users"])
                    + run["floors"].get("target_listing_s", 0)
                    for run in runs
                ]
                axis.plot(sizes, floor, linestyle="--", color="black", label="floor (reader + listing)")
            axis.set_title(f"{target} {name}")
            axis.set_xlabel("users (N)")
            axis.set_ylabel("seconds")
            axis.grid(True, alpha=0.3)
        axes[0].legend(fontsize=8)
        figure.tight_layout()
        path = out_dir / f"targets-{target}.png"
        figure.savefig(path, dpi=80)
        plt.close(figure)
        written.append(str(path))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    quick_default = os.environ.get("BENCH_QUICK", "") not in ("", "0")
    parser.add_argument("--quick", action="store_true", default=quick_default, help="N=300, G=50: a few minutes")
    parser.add_argument("--sizes", default=os.environ.get("BENCH_SIZES"), help="comma-separated N (default 1000,5000)")
    parser.add_argument("--groups", type=int, default=None, help="G (default 500; 50 in quick mode)")
    parser.add_argument("--targets", default=os.environ.get("BENCH_TARGETS", "scim,box,dropbox"))
    parser.add_argument("--rate-users", type=int, default=None, help="users of the Box rate-limit run (0: none)")
    parser.add_argument("--naive-users", type=int, default=None, help="users of the naive loop (0: none)")
    parser.add_argument("--out-dir", default=str(OUT_DIR))
    args = parser.parse_args(argv)
    sizes = [int(n) for n in (args.sizes or ("300" if args.quick else "1000,5000")).split(",") if n]
    groups = args.groups or (50 if args.quick else 500)
    names = [n for n in args.targets.split(",") if n]
    if PINGID_MODULE.exists():
        print("note: pingid_sync exists now; its bench target is still to be added (docs/performance.md)")
    unknown = set(names) - set(TARGETS)
    if unknown:
        parser.error(f"unknown targets {sorted(unknown)}; known: {sorted(TARGETS)}")
    rate_users = args.rate_users if args.rate_users is not None else (100 if args.quick else 300)
    naive_users = args.naive_users if args.naive_users is not None else (20 if args.quick else 50)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    all_results = []
    with tempfile.TemporaryDirectory(prefix="idsync-bench-targets-") as workdir:
        for index, users in enumerate(sizes):
            # The rate-limit and naive runs once, with the smallest directory.
            extras = (
                {"rate_users": rate_users, "naive_users": naive_users, "sync_users": min(500, users)}
                if index == 0
                else {}
            )
            result = bench_size(users, groups, names, Path(workdir), extras)
            path = out_dir / f"targets-{users}.json"
            path.write_text(json.dumps(result, indent=2, default=str))
            print(f"\nwritten to {path}")
            all_results.append(result)
    for path in sorted(out_dir.glob("targets-*.json")):  # earlier sizes too: the plot spans every N measured
        data = json.loads(path.read_text())
        if data["users"] not in {r["users"] for r in all_results} and data.get("groups") == groups:
            all_results.append(data)
    for path in plot(all_results, out_dir):
        print(f"plot: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
