# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fault injection at every target (issue 15, item 1), through ansible-playbook for real.

Each case puts the loopback fault proxy (tests/support/fault_proxy.py) between the sync module and
the target: scim2-server for SCIM, the fakes on fake_service.py for Box, Dropbox and PingID. One
ansible-playbook runs the module twice: the first run with the fault armed, then the proxy is
disarmed (a request to its control URL from the play), then the second run. Every case asserts:

- the first run completes, or, when the fault was on a read, fails before any write reached the
  target;
- after the second run the target equals the desired state exactly: the state a fault-free run of
  the same directory leaves (``baseline``), compared without ids and markers;
- no object was ever created twice: every create that reached the target, per key, at most once;
- nothing outside the plan is touched: the accounts and groups the provisioner does not own are
  byte-identical and no request wrote to them;
- the state file (Box users, PingID) names exactly the accounts of the target it should, by id.

Fault points per target (``POINTS``): a list request in the middle of paging (cursor, offset,
marker, startIndex), async job polling (Dropbox job_status, PingID GetJobStatus), token renewal (Box
and Dropbox token endpoint, the tokens made to expire mid-run), a create and another write. Fault
kinds (``KINDS``): 429 and 503 with Retry-After, 500, connection reset, read timeout, slow answer,
and "applied but answer lost". The cross product is sampled with a fixed seed (``FAULT_SEED``,
default below; ``FAULT_SAMPLE`` cases per target), plus, per target, a read fault that lasts the
whole first run and a seeded random schedule over every request. The faults played are printed per
target at the end (``-s``; ``FAULT_SUMMARY=<file>`` appends them as JSON) and tabled in
docs/reliability.md.
"""

from __future__ import annotations

import collections
import json
import os
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from integration.test_dropbox_sync import Directory as DirectorySubtree  # a per-test subtree of one slapd
from support.box_fake import BoxFake
from support.dropbox_fake import DropboxFake
from support.fault_proxy import FaultProxy, Seen
from support.pingid_fake import PingIDFake
from support.playbook import run_playbook
from support.scim_server import ScimServer
from support.slapd import SlapdServer

SEED = int(os.environ.get("FAULT_SEED", "15"))
SAMPLE = int(os.environ.get("FAULT_SAMPLE", "4"))
PREFIX = "idsync:"
STALE_MARKER = PREFIX + "00000000-dead-4bad-8bad-000000000015"  # ours, its entry deleted from the directory
TIMEOUT = 3  # the modules' read timeout (seconds); a "timeout" fault holds longer
HOLD = TIMEOUT + 1.5
SCIM_TOKEN = "fault-injection-scim-token-15"
KINDS = ("429", "503", "500", "reset", "timeout", "slow", "lost")
READ_POINTS = frozenset({"page", "poll", "token", "report"})

PEOPLE = {
    "jdoe": ("John", "Doe", "jdoe@example.org"),
    "asmith": ("Alice", "Smith", "asmith@example.org"),
    "bwhite": ("Bob", "White", "bwhite@example.org"),
    "cgreen": ("Carol", "Green", "cgreen@example.org"),
}
GROUPS = {"Engineering": ["jdoe", "asmith"], "Sales": ["bwhite", "cgreen", "jdoe"]}
OUTSIDERS = ("outsider1", "outsider2", "outsider3")

# One ansible-playbook per target: each case is one include of CASE_TASKS (two runs around a disarm
# of that case's proxy, through the url lookup: no module start), the first case fault-free.
PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Cases
      ansible.builtin.include_tasks: case.yml
      loop: "{{ cases }}"
      loop_control:
        loop_var: case
        label: "{{ case.id }}"
    - name: Record
      ansible.builtin.copy:
        content: "{{ results | to_json }}"
        dest: "{{ record }}"
        mode: "0600"
"""
CASE_TASKS = """
- name: First run, the fault armed
  {module}: "{{{{ case.args }}}}"
  register: first
  ignore_errors: true
- name: Disarm the case's proxy
  ansible.builtin.set_fact:
    disarmed: "{{{{ lookup('ansible.builtin.url', case.control_url ~ '/disarm', split_lines=false) }}}}"
- name: Second run
  {module}: "{{{{ case.args }}}}"
  register: second
  ignore_errors: true
- name: Keep both
  ansible.builtin.set_fact:
    results: "{{{{ (results | default([])) + [{{'id': case.id, 'first': first, 'second': second}}] }}}}"
"""

EXERCISED: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)


# -- the directory ------------------------------------------------------------------------------------
class Directory(DirectorySubtree):
    """A case's own subtree of the module's slapd (``ou=people``, ``ou=groups``): the people and groups above."""

    def __init__(self, slapd: SlapdServer):
        super().__init__(slapd, PEOPLE, GROUPS)

    def source(self) -> dict[str, Any]:
        return {"server_uri": [self.slapd.uri], "user_base_dn": self.people, "group_base_dn": self.groups}

    def env(self) -> dict[str, str]:
        return {"LDAP_BIND_DN": self.slapd.reader_dn, "LDAP_BIND_PW": self.slapd.reader_pw}


@pytest.fixture(scope="module")
def fault_slapd(tmp_path_factory, slapd_tls_dir):
    server = SlapdServer(tmp_path_factory.mktemp("fault-slapd"), tls_dir=slapd_tls_dir)
    with server:
        yield server


# -- the targets --------------------------------------------------------------------------------------
@dataclass
class Point:
    """Where a fault is aimed: method, path regex, a predicate on the request, requests let through first."""

    method: str | None
    path: str
    when: Any = None
    skip: int = 0


def _query(seen: Seen, *names: str) -> bool:
    params = seen.params
    return any(name in params and params[name][0] not in ("", "0", "1") for name in names)


class Target:
    """What a case needs of one target: its service, seed, module arguments and state readers."""

    name = ""
    module = ""
    state_file = False
    points: dict[str, Point] = {}

    def __init__(self, tmp_path: Path):
        self.tmp_path = tmp_path
        self.state_path = tmp_path / f"{self.name}-state.json"

    # overridden ---------------------------------------------------------------------------------
    def start(self) -> Any:
        raise NotImplementedError

    def stop(self) -> None:
        self.service.stop()

    def upstream(self) -> str:
        return self.service.url

    def seed(self) -> None:
        """Outsiders (never ours: untouched), jdoe with other names (linked, updated), a stale object of ours."""

    def args(self, proxy: FaultProxy, directory: Directory) -> dict[str, Any]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return {}

    def project(self) -> Any:
        """The target's users and groups without ids and markers: what "the desired state" compares."""
        raise NotImplementedError

    def outsiders(self) -> Any:
        """The objects no run may touch, as stored (ids included)."""
        raise NotImplementedError

    def creates(self, proxy: FaultProxy) -> collections.Counter:
        """Creates that reached the target, by key."""
        raise NotImplementedError

    def is_write(self, seen: Seen) -> bool:
        return seen.method in ("POST", "PUT", "PATCH", "DELETE")

    rewrite = None

    def state_ids(self) -> dict[str, str]:
        """What the target holds under the state file's ids: {id: key} of the accounts that exist."""
        return {}

    # shared ------------------------------------------------------------------------------------
    def state(self) -> dict[str, str]:
        """The state file's users: {target id: key}."""
        data = json.loads(self.state_path.read_text())
        return {user_id: str(record["key"]).lower() for user_id, record in data["users"].items()}


class ScimTarget(Target):
    name, module = "scim", "idsync.provisioning.scim_sync"
    points = {
        "page": Point("GET", r"/Users$", lambda s: _query(s, "startIndex")),
        "create": Point("POST", r"/(Users|Groups|Bulk)$"),
        "write": Point(None, r"/(Users|Groups)/[^/]+$", lambda s: s.method in ("PATCH", "PUT", "DELETE")),
    }

    def start(self):
        self.service = ScimServer(token=SCIM_TOKEN).start()
        return self.service

    def upstream(self):
        return self.service.url

    def seed(self):
        for name in OUTSIDERS:
            self.service.seed_user(name, name={"givenName": "Out", "familyName": name}, active=True)
        outsider = self.service.user_by_name("outsider1")
        self.service.seed_group("Outsiders", (outsider["id"],))
        self.service.seed_user("jdoe", name={"givenName": "Johnny", "familyName": "Doe"}, active=True)
        self.service.seed_user("gone", name={"givenName": "Gone", "familyName": "User"}, externalId=STALE_MARKER)

    def args(self, proxy, directory):
        return {"url": proxy.url, "source": directory.source(), "page_size": 2, "timeout": TIMEOUT}

    def env(self):
        return {"SCIM_TOKEN": SCIM_TOKEN}

    def project(self):
        users = {
            u["userName"].lower(): (
                u.get("name", {}).get("givenName"),
                u.get("name", {}).get("familyName"),
                u["active"],
            )
            for u in self.service.all("Users")
        }
        names = {u["id"]: u["userName"].lower() for u in self.service.all("Users")}
        groups = sorted(
            (g["displayName"], sorted(names.get(m["value"], m["value"]) for m in g.get("members", [])))
            for g in self.service.all("Groups")
        )
        return {"users": users, "groups": groups}

    def outsiders(self):
        users = [u for u in self.service.all("Users") if u["userName"] in OUTSIDERS]
        groups = [g for g in self.service.all("Groups") if g["displayName"] == "Outsiders"]
        return _strip_meta(users + groups)

    def creates(self, proxy):
        made = collections.Counter()
        for seen in proxy.forwarded("POST"):
            if seen.status is None or seen.status >= 300:
                continue
            body = seen.json() or {}
            if seen.path.endswith("/Bulk"):
                for operation in body.get("Operations", []):
                    if operation.get("method") == "POST":
                        data = operation.get("data") or {}
                        made[data.get("userName") or data.get("displayName")] += 1
            elif seen.path.endswith(("/Users", "/Groups")):
                made[body.get("userName") or body.get("displayName")] += 1
        return made


def _strip_meta(resources):
    return json.dumps([{k: v for k, v in r.items() if k != "meta"} for r in resources], sort_keys=True)


class BoxTarget(Target):
    name, module, state_file = "box", "idsync.provisioning.box_sync", True
    points = {
        "page": Point("GET", r"/2\.0/(users|groups)$", lambda s: _query(s, "marker", "offset")),
        "token": Point("POST", r"/oauth2/token$", skip=1),
        "create": Point("POST", r"/2\.0/(users|groups)$"),
        "write": Point(None, r"/2\.0/(users/\d+|group_memberships|groups/\d+)$", lambda s: s.method != "GET"),
    }

    def start(self):
        self.service = BoxFake().start()
        self.service.app.token_max_uses = 7  # tokens expire mid-run: the run renews them
        return self.service

    def seed(self):
        box = self.service
        ids = [box.seed_user(f"{name}@example.org", f"Out {name}")["id"] for name in OUTSIDERS]
        box.seed_group("Outsiders", ids[:1])
        box.seed_user("jdoe@example.org", "Johnny Doe")
        box.seed_group("Stale", external_sync_identifier=STALE_MARKER)

    def args(self, proxy, directory):
        return {
            "url": proxy.url + "/2.0",
            "token_url": proxy.url + "/oauth2/token",
            "state_file": str(self.state_path),
            "source": directory.source(),
            "timeout": TIMEOUT,
        }

    @staticmethod
    def rewrite(path, body):
        """Pages of 2 (box_sync asks for Box's maximum; Box may answer fewer)."""
        return re.sub(r"\blimit=\d+", "limit=2", path), body

    def env(self):
        app = self.service.app
        return {
            "BOX_CLIENT_ID": app.client_id,
            "BOX_CLIENT_SECRET": app.client_secret,
            "BOX_ENTERPRISE_ID": app.enterprise_id,
        }

    def project(self):
        box = self.service
        users = {u["login"].lower(): (u["name"], u["status"]) for u in box.managed_users()}
        logins = {u["id"]: u["login"].lower() for u in box.managed_users(include_service=True)}
        groups = sorted(
            (g["name"], sorted(logins.get(m, m) for m in box.members_of(g["id"]))) for g in box.managed_groups()
        )
        return {"users": users, "groups": groups}

    def outsiders(self):
        box = self.service
        users = [u for u in box.managed_users() if u["login"].split("@")[0] in OUTSIDERS]
        group = box.group_by_name("Outsiders")
        return json.dumps([users, group, sorted(box.members_of(group["id"]))], sort_keys=True, default=str)

    def creates(self, proxy):
        made = collections.Counter()
        for seen in proxy.forwarded("POST", r"/2\.0/(users|groups)$"):
            if seen.status is not None and seen.status < 300:
                body = seen.json() or {}
                made[(seen.path.rsplit("/", 1)[-1], (body.get("login") or body.get("name") or "").lower())] += 1
        return made

    def is_write(self, seen):
        return seen.method in ("POST", "PUT", "DELETE") and not seen.path.endswith("/oauth2/token")

    def state_ids(self):
        return {u["id"]: u["login"].lower() for u in self.service.managed_users()}


DROPBOX_WRITES = frozenset(
    {
        "members/add_v2",
        "members/set_profile_v2",
        "members/suspend",
        "members/unsuspend",
        "members/remove",
        "members/recover",
        "groups/create",
        "groups/update",
        "groups/delete",
        "groups/members/add",
        "groups/members/remove",
    }
)


class DropboxTarget(Target):
    name, module = "dropbox", "idsync.provisioning.dropbox_sync"
    points = {
        "page": Point("POST", r"/2/team/(members|groups)/list/continue(_v2)?$"),
        "poll": Point("POST", r"/job_status/get(_v2)?$"),
        "token": Point("POST", r"/oauth2/token$", skip=1),
        "create": Point("POST", r"/2/team/(members/add_v2|groups/create)$"),
        "write": Point("POST", r"/2/team/(members/(set_profile_v2|suspend)|groups/(members/add|delete))$"),
    }

    def start(self):
        self.service = DropboxFake(added_status="active").start()
        self.service.add_async_above = 0  # every add is an async job: polled
        self.service.app.token_max_uses = 7
        return self.service

    def seed(self):
        box = self.service
        members = [box.seed_member(f"{name}@example.org", "Out", name) for name in OUTSIDERS]
        box.seed_group("Outsiders", [members[0].team_member_id])
        box.seed_member("jdoe@example.org", "Johnny", "Doe")
        box.seed_member("gone@example.org", "Gone", "User", external_id=STALE_MARKER)
        box.seed_group("Stale", external_id=STALE_MARKER)

    def args(self, proxy, directory):
        return {
            "url": proxy.url + "/2",
            "token_url": proxy.url + "/oauth2/token",
            "source": directory.source(),
            "timeout": TIMEOUT,
        }

    @staticmethod
    def rewrite(path, body):
        """Pages of 2 (dropbox_sync asks for Dropbox's maximum; Dropbox may answer fewer)."""
        if body.startswith(b"{") and b'"limit"' in body:
            data = json.loads(body)
            data["limit"] = min(2, data["limit"])
            body = json.dumps(data).encode()
        return path, body

    def env(self):
        app = self.service.app
        return {
            "DROPBOX_APP_KEY": app.app_key,
            "DROPBOX_APP_SECRET": app.app_secret,
            "DROPBOX_REFRESH_TOKEN": app.refresh_token,
        }

    def project(self):
        fake = self.service
        members = fake.team_members(include_removed=True, include_admin=False)
        users = {m.email.lower(): (m.given_name, m.surname, m.status) for m in members}
        emails = {m.team_member_id: m.email.lower() for m in fake.team_members(include_removed=True)}
        groups = sorted(
            (g.group_name, sorted(emails.get(i, i) for i in fake.group_members(g.group_id)))
            for g in fake.groups.values()
        )
        return {"users": users, "groups": groups}

    def outsiders(self):
        fake = self.service
        members = [vars(m) for m in fake.team_members() if m.email.split("@")[0] in OUTSIDERS]
        group = fake.group("Outsiders")
        return json.dumps([members, vars(group)], sort_keys=True, default=str)

    def creates(self, proxy):
        made = collections.Counter()
        for seen in proxy.forwarded("POST", r"/2/team/(members/add_v2|groups/create)$"):
            if seen.status is None or seen.status >= 300:
                continue
            body = seen.json() or {}
            for new in body.get("new_members", []):
                made[("member", new.get("member_email", "").lower())] += 1
            if "group_name" in body:
                made[("group", body["group_name"].lower())] += 1
        return made

    def is_write(self, seen):
        return any(seen.path.endswith("/team/" + name) for name in DROPBOX_WRITES)


PINGID_WRITES = ("adduser", "edituser", "suspenduser", "activateuser", "deleteuser")


class PingIDTarget(Target):
    name, module, state_file = "pingid", "idsync.provisioning.pingid_sync", True
    points = {
        "poll": Point("POST", r"/getjobstatus/do$"),
        "report": Point("POST", r"/(createjob|getorgreport)/do$"),
        "create": Point("POST", r"/adduser/do$"),
        "write": Point("POST", r"/(edituser|suspenduser|activateuser)/do$"),
    }

    def start(self):
        self.service = PingIDFake().start()
        self.service.report_polls = 1
        self.properties = self.service.write_properties(self.tmp_path / "pingid.properties")
        return self.service

    def upstream(self):
        return self.service.idp_url

    def seed(self):
        for name in OUTSIDERS:
            self.service.seed_user(name, "Out", name, f"{name}@example.org")
        self.service.seed_user("jdoe", "Johnny", "Doe", "jdoe@example.org")

    def args(self, proxy, directory):
        return {
            "url": proxy.url,
            "properties_file": str(self.properties),
            "state_file": str(self.state_path),
            "source": directory.source(),
            "timeout": TIMEOUT,
        }

    def project(self):
        users = {}
        for name in self.service.usernames():
            details = self.service.user(name)
            users[name.lower()] = (details.get("fname"), details.get("lname"), details.get("status"))
        return {"users": users}

    def outsiders(self):
        return json.dumps([vars(self.service.stored_user(n)) for n in OUTSIDERS], sort_keys=True, default=str)

    def creates(self, proxy):
        """AddUser requests the fake applied (it refuses a second one for the same name: 400)."""
        applied = [e for e in self.service.requests if e.name == "AddUser" and e.status == 200]
        return collections.Counter(str(e.body["reqBody"]["username"]).lower() for e in applied)

    def is_write(self, seen):
        return seen.path.endswith(tuple(f"/{op}/do" for op in PINGID_WRITES))

    def state_ids(self):
        return {n: n.lower() for n in self.service.usernames()}


TARGETS = {t.name: t for t in (ScimTarget, BoxTarget, DropboxTarget, PingIDTarget)}


# -- the cases ---------------------------------------------------------------------------------------
@dataclass
class Case:
    target: str
    point: str | None  # None: a random schedule over every request
    kind: str | None
    persistent: bool = False  # the fault lasts the whole first run
    ids: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        if self.point is None:
            return f"{self.target}-random-seed{SEED}"
        return f"{self.target}-{self.point}-{self.kind}" + ("-persistent" if self.persistent else "")


def sample_cases() -> list[Case]:
    chooser = random.Random(SEED)
    cases = []
    for name, target in TARGETS.items():
        grid = [(point, kind) for point in target.points for kind in KINDS]
        # every point once (a create always with its answer lost: the ambiguous write), then the rest
        # of the sample from the whole grid
        picked = [(point, chooser.choice(KINDS)) for point in target.points]
        picked = [(point, "lost" if point == "create" else kind) for point, kind in picked]
        rest = [pair for pair in grid if pair not in picked]
        picked += chooser.sample(rest, max(0, SAMPLE - len(picked)))
        cases += [Case(name, point, kind) for point, kind in picked]
        read_point = next(p for p in target.points if p in READ_POINTS)
        cases.append(Case(name, read_point, chooser.choice(("500", "503", "reset")), persistent=True))
        cases.append(Case(name, None, None))
    return cases


CASES = sample_cases()
# Cases that fail because of a bug outside this file's and the HTTP layer's reach: the fix wanted.
KNOWN: dict[str, str] = {}


def arm(proxy: FaultProxy, target: type[Target], case: Case) -> None:
    if case.point is None:
        proxy.random_faults(
            SEED, 0.12, ("429", "503", "500", "reset", "slow", "lost"), when=lambda s: True, label="random"
        )
        return
    point = target.points[case.point]
    proxy.inject(
        case.kind,
        point.method,
        point.path,
        when=point.when,
        skip=point.skip,
        times=None if case.persistent else 1,
        seconds=HOLD if case.kind == "timeout" else 0.5,
        label=case.point,
    )


@dataclass
class Outcome:
    case: Case | None  # None: the fault-free baseline
    target: Target
    proxy: FaultProxy
    outsiders: Any = None
    first: dict[str, Any] = field(default_factory=dict)
    second: dict[str, Any] = field(default_factory=dict)


def run_target(name: str, slapd: SlapdServer, tmp_path: Path, cases: list[Case]) -> list[Outcome]:
    """Every case of target ``name`` (the baseline first) in one ansible-playbook: each case has its
    own directory subtree, its own service (started and seeded here), proxy and state file."""
    kind = TARGETS[name]
    outcomes: list[Outcome] = []
    try:
        for number, case in enumerate([None, *cases]):
            target = kind(tmp_path / f"case{number}")
            target.tmp_path.mkdir(parents=True)
            target.start()
            outcome = Outcome(case, target, FaultProxy(target.upstream(), rewrite=target.rewrite))
            outcomes.append(outcome)
            target.seed()
            outcome.outsiders = target.outsiders()
            outcome.proxy.start()
            if case is None:
                outcome.proxy.disarm()
            else:
                arm(outcome.proxy, kind, case)
        steps, directory = [], None
        for outcome in outcomes:
            directory = Directory(slapd)
            steps.append(
                {
                    "id": outcome.case.id if outcome.case else "baseline",
                    "args": outcome.target.args(outcome.proxy, directory),
                    "control_url": outcome.proxy.control_url,
                }
            )
        work = tmp_path / "play"
        work.mkdir()
        (work / "case.yml").write_text(CASE_TASKS.format(module=kind.module))
        env = {**directory.env(), **outcomes[0].target.env()}
        done = run_playbook(work, PLAY, {"cases": steps}, env)
        assert done.rc == 0 and len(done.output) == len(outcomes), done.text[-5000:]
        for outcome, result in zip(outcomes, done.output, strict=True):
            outcome.first, outcome.second = result["first"], result["second"]
        return outcomes
    except BaseException:
        stop(outcomes)
        raise


def stop(outcomes: list[Outcome]) -> None:
    for outcome in outcomes:
        outcome.proxy.stop()
        outcome.target.stop()


def check(outcome: Outcome, expected: Any, expected_state: list[str] | None) -> None:
    """The promises of the module docstring, for one case."""
    case, target, proxy, first, second = outcome.case, outcome.target, outcome.proxy, outcome.first, outcome.second
    if case.point is not None:
        assert proxy.summary(), f"the {case.kind} fault at {case.point} never fired: the point is not on the run's path"

    # a run completes or, on a read fault, fails before any write
    first_run = proxy.seen[: proxy.disarmed_at]
    if first.get("failed"):
        read_faults = [s for s in first_run if s.fault and not target.is_write(s)]
        assert read_faults, f"the first run failed without a read fault: {first.get('msg')}"
        first_fault = min(s.seq for s in read_faults)
        writes = [s.path for s in first_run if s.forwarded and target.is_write(s) and s.seq > first_fault]
        assert writes == [], f"writes after the failed read ({first.get('msg')!r}): {writes}"
        assert not (first.get("report") or {}).get("failures"), first["report"]["failures"]
    assert not second.get("failed"), json.dumps(second, indent=1)[:4000]

    # the target equals the desired state exactly
    assert target.project() == expected
    # no object was ever created twice
    twice = {key: n for key, n in target.creates(proxy).items() if n > 1}
    assert twice == {}, f"created more than once: {twice}"
    # nothing outside the plan is touched
    assert target.outsiders() == outcome.outsiders, "an object this provisioner does not own was changed"
    # the state file matches the target
    if target.state_file:
        state = target.state()
        assert sorted(state.values()) == expected_state
        held = target.state_ids()
        assert {i: held.get(i) for i in state} == state, "the state file names accounts the target does not hold"


@pytest.fixture(scope="module", autouse=True)
def summary():
    yield
    lines = ["", f"faults exercised (seed {SEED}): target, point, kind: count"]
    for name in sorted(EXERCISED):
        lines += [f"  {name:8} {point:8} {kind:8} {count}" for (point, kind), count in sorted(EXERCISED[name].items())]
    print("\n".join(lines))
    if os.environ.get("FAULT_SUMMARY"):  # a JSON line per worker, for the table in docs/reliability.md
        with open(os.environ["FAULT_SUMMARY"], "a", encoding="utf-8") as out:
            rows = [[name, point, kind, n] for name in EXERCISED for (point, kind), n in EXERCISED[name].items()]
            out.write(json.dumps({"seed": SEED, "rows": sorted(rows)}) + "\n")


# -- the test ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(TARGETS))
def test_faults_leave_the_target_as_a_clean_run_does_after_at_most_two_runs(name, fault_slapd, tmp_path):
    cases = [c for c in CASES if c.target == name and c.id not in KNOWN]
    everything = run_target(name, fault_slapd, tmp_path, cases)
    try:
        verify(name, everything)
    finally:
        stop(everything)


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, marks=pytest.mark.xfail(strict=True, reason=KNOWN[c.id])) for c in CASES if c.id in KNOWN],
    ids=[c.id for c in CASES if c.id in KNOWN],
)
def test_known_fault_bug(case, fault_slapd, tmp_path):
    """A case that exposes a bug outside the HTTP layer (the fix wanted is the reason): it must fail."""
    name = case.target
    everything = run_target(name, fault_slapd, tmp_path, [case])
    try:
        verify(name, everything)
    finally:
        stop(everything)


def verify(name: str, everything: list[Outcome]) -> None:
    baseline, *outcomes = everything
    assert not baseline.first.get("failed") and not baseline.second.get("failed"), baseline.first.get("msg")
    assert baseline.second["changed"] is False, "the fault-free baseline did not settle in one run"
    expected = baseline.target.project()
    expected_state = sorted(baseline.target.state().values()) if baseline.target.state_file else None
    failed = {}
    for outcome in outcomes:
        EXERCISED[name].update(outcome.proxy.summary())
        try:
            check(outcome, expected, expected_state)
        except AssertionError as exc:
            failed[outcome.case.id] = str(exc)[:3000]
    assert failed == {}, "\n\n".join(f"{case}: {error}" for case, error in failed.items())
