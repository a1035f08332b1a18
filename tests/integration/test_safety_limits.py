# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Safety limits, end to end (issue 15 item 4): a real slapd, the fakes, ansible-playbook for real.

- Every threshold (max_disables, max_deletes, max_group_deletes where the target has groups), each
  as a count and as a percentage of the managed objects, and the empty-source guard, in check mode
  and for real, on Box, Dropbox and PingID: refused with the option named and "nothing was written",
  the plan shows the objects that tripped it, the fake byte-identical; a threshold just high enough
  passes (check mode, then for real). One ansible-playbook runs all of a target's refusals.
  SCIM's are in tests/integration/test_scim_sync.py, test_plans.py and test_bad_input.py.
- A run killed by SIGKILL (its whole tree: ansible-playbook and the module, in sessions of their
  own) while its writes are reaching a slow Box or PingID (the targets whose ownership lives in a
  state file) leaves a state file that loads and names only existing users; the next run completes
  the work: the target equals the desired state, no user is created twice (PingID: one AddUser
  each, a refused one counts), the state file names exactly the managed users, a further run
  writes nothing.
- Two runs on the same state file (Box and PingID), the second started while the first writes: the
  second waits for the lock (or fails naming it); the file is valid and complete after both, their
  creates add up to the newcomers, nobody created twice.

The lock and the atomic save at the unit level: tests/unit/test_state.py.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from integration import test_dropbox_sync as dropbox
from integration import test_pingid_sync as pingid
from integration.test_box_sync import Directory, Env, person_ldif
from support.box_fake import BoxFake
from support.dropbox_fake import DropboxFake
from support.playbook import BIN_DIR, COLLECTIONS_ROOT, INVENTORY, run_playbook

pingid_fake, pingid_slapd = pingid.pingid_fake, pingid.pingid_slapd  # fixtures, used by name

NEWCOMERS = [f"new{n:02d}" for n in range(12)]


def descendants(root):
    """The pids of every living process under ``root`` (from /proc)."""
    children = collections.defaultdict(list)
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            children[int(fields[1])].append(int(pid))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def gone(pids):
    """Whether none of ``pids`` runs any more (dead or a zombie waiting for its reaper)."""
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] != "Z":
                    return False
        except OSError:
            continue
    return True


class Run:
    """One ansible-playbook running the target's module once, in its own session (process group)."""

    def __init__(self, target, work):
        self.work = work
        work.mkdir(parents=True, exist_ok=True)
        self.record = work / "record.json"
        (work / "play.yml").write_text(target.play_text())
        (work / "inventory.ini").write_text(INVENTORY)
        steps = [{"check": False, "diff": False, "args": target.env.args(**target.options)}]
        variables = {"record": str(self.record), "ansible_python_interpreter": sys.executable, "steps": steps}
        (work / "vars.json").write_text(json.dumps(variables))
        command = [str(BIN_DIR / "ansible-playbook"), "-i", str(work / "inventory.ini")]
        command += ["-e", f"@{work / 'vars.json'}", str(work / "play.yml")]
        run_env = dict(os.environ)
        run_env.update(
            {
                "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS_ROOT),
                "ANSIBLE_NOCOLOR": "1",
                "ANSIBLE_RETRY_FILES_ENABLED": "0",
                "ANSIBLE_LOCAL_TEMP": str(work / "ansible-tmp"),
                "ANSIBLE_DEPRECATION_WARNINGS": "0",
            }
        )
        run_env.update(target.run_env)
        self.out = open(work / "output", "w+")  # noqa: SIM115 - closed in wait()/kill()
        self.proc = subprocess.Popen(
            command, stdout=self.out, stderr=subprocess.STDOUT, env=run_env, start_new_session=True
        )

    def kill(self):
        """SIGKILL the run's whole tree: ansible-playbook's process group, and its workers and the
        module, which ansible puts in sessions of their own (WorkerProcess calls setsid)."""
        killed = set()
        while alive := [pid for pid in [self.proc.pid, *descendants(self.proc.pid)] if pid not in killed]:
            for pid in alive:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(os.getpgid(pid), signal.SIGKILL)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                killed.add(pid)
        self.proc.wait()
        self.out.close()
        return killed

    def wait(self):
        try:
            self.proc.wait(timeout=400)
        finally:
            if self.proc.poll() is None:
                self.kill()
        self.out.close()
        text = (self.work / "output").read_text()
        assert self.record.exists(), f"the play recorded nothing (rc {self.proc.returncode}):\n{text[-4000:]}"
        [result] = json.loads(self.record.read_text())
        return result


@pytest.fixture
def box_fake():
    with BoxFake() as fake:
        yield fake
        fake.latency = 0.0
        fake.assert_valid()
        fake.assert_never_removed_from_enterprise()


def module_running(run):
    """Whether the module of ``run`` runs: a process under the run other than ansible-playbook's own
    (the module is piped into the interpreter, so its command line does not name it)."""
    for pid in descendants(run.proc.pid):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                command = cmdline.read()
        except OSError:
            continue
        if command and b"ansible-playbook" not in command:
            return True
    return False


def assert_state_names_only_existing_users(target):
    """After the kill: the file loads, and every user it names exists in the target (it may lag behind)."""
    state = target.state()
    assert state["version"] == 2 and state["target"] == target.name
    assert set(state["users"]) <= set(target.managed()), (sorted(state["users"]), target.managed())


def assert_state_matches_target(target):
    state = target.state()  # loads: valid JSON, the format's version
    assert state["version"] == 2 and state["target"] == target.name
    assert set(state["users"]) == set(target.managed()), "the state file and the target disagree on the managed users"
    for user_id, record in state["users"].items():
        assert record["marker"].startswith("idsync:"), (user_id, record)


def assert_created_once_and_complete(target):
    created = target.created()
    assert all(count == 1 for count in created.values()), created
    assert sorted(target.managed().values()) == target.expected() == sorted(created), (target.managed(), created)


def test_a_run_killed_by_sigkill_mid_writes_is_recovered_by_the_next_run(state_target, tmp_path):
    target = state_target
    target.provision()
    assert_state_matches_target(target)
    target.add_newcomers()
    writes = len(target.fake.writes())
    target.fake.latency = 0.3  # every request waits: the kill lands between writes
    run = Run(target, tmp_path / "killed")
    deadline = time.monotonic() + 300
    while len(target.fake.writes()) < writes + 3:
        assert run.proc.poll() is None, (tmp_path / "killed" / "output").read_text()[-4000:]
        assert time.monotonic() < deadline, "no write reached the fake"
        time.sleep(0.05)
    assert module_running(run)
    killed = run.kill()
    while not gone(killed):  # the kernel ends them at once; wait for /proc to say so
        assert time.monotonic() < deadline, "a killed process still runs"
        time.sleep(0.02)
    target.fake.latency = 0.0
    reached = target.created()
    assert 0 < sum(reached[name] for name in target.newcomers()) < len(NEWCOMERS), "the kill was not mid-run"

    assert_state_names_only_existing_users(target)
    result = target.run()
    assert not result.get("failed"), result.get("msg")
    assert_created_once_and_complete(target)
    assert_state_matches_target(target)
    target.settled()


def test_two_runs_at_once_on_one_state_file_take_turns_and_leave_it_complete(state_target, tmp_path):
    target = state_target
    target.provision()
    target.add_newcomers()
    target.fake.latency = 0.1
    writes = len(target.fake.writes())
    runs = [Run(target, tmp_path / "run1")]
    deadline = time.monotonic() + 300
    while len(target.fake.writes()) == writes:  # the first run holds the lock and is writing
        assert runs[0].proc.poll() is None and time.monotonic() < deadline, "the first run wrote nothing"
        time.sleep(0.02)
    target.fake.latency = 2.0  # hold the first run mid-writes until the second's module runs
    runs.append(Run(target, tmp_path / "run2"))
    while not module_running(runs[1]):
        assert runs[1].proc.poll() is None and time.monotonic() < deadline, "the second run never started its module"
        time.sleep(0.05)
    overlapped = runs[0].proc.poll() is None
    target.fake.latency = 0.05
    assert overlapped, "the first run ended before the second began: nothing was proven"
    results = [run.wait() for run in runs]
    target.fake.latency = 0.0
    lock = str(target.env.state_file) + ".lock"
    for result in results:
        if result.get("failed"):  # the loser may give up waiting: it must say why, naming the lock
            assert "locked by another run" in result["msg"] and lock in result["msg"], result["msg"]
    assert any(not r.get("failed") for r in results), [r.get("msg") for r in results]
    created = [r["report"]["counts"].get("create_user", 0) for r in results if not r.get("failed")]
    assert sum(created) == len(NEWCOMERS), created  # the second saw the first's work: nothing twice
    assert_created_once_and_complete(target)
    assert_state_matches_target(target)
    target.settled()


# -- thresholds and the empty-source guard on Dropbox and PingID (Box and SCIM: see the docstring) ----
ONLY_BOB = {"user_filter": "(uid=bwhite)"}  # 2 of the 3 managed users leave the scope
NOBODY = {"user_filter": "(uid=nobody-matches-this)"}
# (options, the option named in the refusal or "allow_empty_source", the action kind it stops)
REFUSED = [
    ({"max_disables": 1}, "max_disables", "disable_user"),
    ({"max_disables": "50%"}, "max_disables", "disable_user"),  # floor(3 * 50%) = 1 < 2
    ({"remove_user_action": "delete", "max_deletes": 1}, "max_deletes", "delete_user"),
    ({"remove_user_action": "delete", "max_deletes": "34%"}, "max_deletes", "delete_user"),
]
GROUP_REFUSED = [  # Box and Dropbox (PingID has no groups): Sales leaves the scope, 1 of 2 managed groups
    ({"max_group_deletes": 0, "source": {"group_filter": "(cn=Engineering)"}}, "max_group_deletes", "delete_group"),
    ({"max_group_deletes": "49%", "source": {"group_filter": "(cn=Engineering)"}}, "max_group_deletes", "delete_group"),
]


class Target:
    """A target's directory, fake and runs: several module runs per ansible-playbook."""

    def __init__(self, name, slapd, tmp_path, fake):
        self.name, self.fake, self.tmp_path, self.plays = name, fake, tmp_path, 0
        if name == "box":
            self.env = Env(Directory(slapd), fake, tmp_path)
            self.run_env = {"LDAP_BIND_DN": slapd.reader_dn, "LDAP_BIND_PW": slapd.reader_pw, **self.env.auth_env}
            self.managed_groups = 2
        elif name == "pingid":
            self.env = pingid.Env(pingid.Directory(slapd, pingid.PEOPLE, {}), fake, tmp_path)
            self.run_env = self.env.env()
            self.managed_groups = 0
        else:
            self.env = dropbox.Env(dropbox.Directory(slapd), fake, tmp_path)
            self.run_env = {
                "LDAP_BIND_DN": slapd.reader_dn,
                "LDAP_BIND_PW": slapd.reader_pw,
                "DROPBOX_APP_KEY": fake.app.app_key,
                "DROPBOX_APP_SECRET": fake.app.app_secret,
                "DROPBOX_REFRESH_TOKEN": fake.app.refresh_token,
            }
            self.managed_groups = len(dropbox.GROUPS)

    def play(self, *steps):
        """``steps``: (check, options) pairs, run in order by one ansible-playbook; their results."""
        self.plays += 1
        plan = []
        for check, options in steps:
            options = dict(options)
            source = {**options.pop("source", {}), **options.pop("scope", {})}
            plan.append({"check": check, "diff": False, "args": self.env.args(source=source, **options)})
        done = run_playbook(self.tmp_path / f"play{self.plays}", self.play_text(), {"steps": plan}, self.run_env)
        assert done.rc == 0 and len(done.output) == len(steps), done.text[-4000:]
        return done.output

    def play_text(self):
        return pingid.PLAY.replace("idsync.provisioning.pingid_sync:", f"idsync.provisioning.{self.name}_sync:")

    # -- for the kill and the two-runs tests (Box and PingID: the targets with a state file) ---------
    @property
    def options(self):
        """The module options of those runs: users only."""
        return {"manage_groups": False} if self.name == "box" else {}

    def run(self):
        [result] = self.play((False, self.options))
        return result

    def provision(self):
        result = self.run()
        assert not result.get("failed"), json.dumps(result, indent=1)[:3000]

    def settled(self):
        """A further run: nothing to do, no write sent."""
        writes = len(self.fake.writes())
        again = self.run()
        assert not again.get("failed"), again.get("msg")
        assert again["changed"] is False and again["report"]["counts"] == {}, again["report"]["actions"]
        assert self.fake.writes()[writes:] == [], "a settled run wrote"

    def add_newcomers(self):
        directory = self.env.dir
        for uid in NEWCOMERS:
            directory.slapd.add(person_ldif(directory.dn(uid), uid, "New", uid.title(), f"{uid}@example.org"))

    def newcomers(self):
        """The newcomers' names in the target (Box: the login, PingID: the userName)."""
        return [f"{uid}@example.org" for uid in NEWCOMERS] if self.name == "box" else list(NEWCOMERS)

    def expected(self):
        """Every managed user's name once the directory is provisioned."""
        if self.name == "box":
            people = ["alice.smith@example.org", "bob.white@example.org", "jdoe@example.org"]
        else:
            people = list(pingid.EVERYONE)
        return sorted([*people, *self.newcomers()])

    def created(self):
        """How many times each user was asked to be created (a refused create counts too)."""
        if self.name == "box":
            return collections.Counter(
                e.body["login"].lower() for e in self.fake.requests_matching("POST", "/2.0/users")
            )
        return collections.Counter(body["username"].lower() for body in self.fake.bodies("AddUser"))

    def managed(self):
        """``{target id: name}`` of the users the provisioner manages in the target."""
        if self.name == "box":
            return {u["id"]: u["login"].lower() for u in self.fake.managed_users()}
        return {name: name.lower() for name in self.fake.usernames()}  # the fake was reset: all ours

    def state(self):
        return json.loads(self.env.state_file.read_text())


@contextlib.contextmanager
def serving(request, name, slapd, tmp_path):
    """A ``Target`` on its fake; on leaving, the fake saw only valid requests."""
    if name == "box":
        fake = request.getfixturevalue("box_fake")
        yield Target("box", slapd, tmp_path, fake)
    elif name == "pingid":
        fake = request.getfixturevalue("pingid_fake")  # the module's: reset, and left without latency
        fake.reset()
        fake.report_polls = 0
        try:
            yield Target("pingid", slapd, tmp_path, fake)
        finally:
            fake.latency = 0.0
        assert not fake.validation_errors, fake.validation_errors
    else:
        with DropboxFake(added_status="active") as fake:
            yield Target("dropbox", slapd, tmp_path, fake)
            assert fake.validation_errors == []
            fake.assert_nothing_wiped()


@pytest.fixture(params=["box", "dropbox", "pingid"])
def target(request, pingid_slapd, tmp_path):  # noqa: F811 - the imported fixture
    with serving(request, request.param, pingid_slapd, tmp_path) as target:
        yield target


@pytest.fixture(params=["box", "pingid"])
def state_target(request, pingid_slapd, tmp_path):  # noqa: F811 - the imported fixture
    """The targets whose ownership lives in a state file."""
    with serving(request, request.param, pingid_slapd, tmp_path) as target:
        yield target


def kinds(result, kind):
    return sorted(a["name"].lower() for a in result["plan"]["actions"] if a["kind"] == kind)


def test_every_threshold_as_a_count_and_a_percentage_and_the_empty_source_refuse_in_check_and_real_mode(target):
    [provisioned] = target.play((False, {}))
    assert not provisioned.get("failed"), provisioned.get("msg")
    assert provisioned["report"]["counts"].get("create_user") == 3, provisioned["report"]["counts"]
    before, writes = target.fake.snapshot(), len(target.fake.writes())

    cases = [(options | {"scope": ONLY_BOB}, option, kind) for options, option, kind in REFUSED]
    cases += GROUP_REFUSED if target.managed_groups else []
    cases += [({"scope": NOBODY}, "allow_empty_source", None)]
    steps = [(check, options) for options, _option, _kind in cases for check in (True, False)]
    steps.append((True, {"scope": ONLY_BOB, "max_disables": "67%"}))  # floor(3 * 67%) = 2: allowed
    results = target.play(*steps)

    for (check, options), result in zip(steps[:-1], results[:-1], strict=True):
        _options, option, kind = next(case for case in cases if case[0] is options)
        assert result.get("failed") is True, (check, options, result.get("msg"))
        assert option in result["msg"] and "nothing was written" in result["msg"], (options, result["msg"])
        if kind == "delete_group":
            assert kinds(result, kind) == ["sales"], result["plan"]["actions"]
        elif kind:
            planned = kinds(result, kind)
            assert len(planned) == 2 and not any(n.startswith(("bwhite", "bob")) for n in planned), planned
    allowed = results[-1]
    assert not allowed.get("failed"), allowed.get("msg")
    assert allowed["report"]["counts"].get("disable_user") == 2, allowed["report"]["counts"]
    target.fake.assert_unchanged(before)  # no refused run and no preview wrote anything
    assert target.fake.writes()[writes:] == []

    [applied] = target.play((False, {"scope": ONLY_BOB, "max_disables": "67%"}))
    assert not applied.get("failed"), applied.get("msg")
    assert applied["report"]["counts"].get("disable_user") == 2, applied["report"]["counts"]
    assert target.fake.snapshot() != before or target.fake.writes()[writes:], "the allowed run wrote nothing"
