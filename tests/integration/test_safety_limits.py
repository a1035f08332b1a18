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
- A run killed by SIGKILL (its whole process group: ansible-playbook and the module) while its
  writes are reaching a slow Box leaves a state file that loads; the next run completes the work:
  the target equals the desired state, no user is created twice, the state file names exactly the
  managed users.
- Two runs on the same state file, the second started while the first writes: the second waits
  for the lock (or fails naming it); the file is valid and complete after both, nobody created twice.

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
from integration.test_box_sync import PLAY, Directory, Env, box_slapd  # noqa: F401 - box_slapd is a fixture
from integration.test_pingid_sync import pingid_fake, pingid_slapd  # noqa: F401 - fixtures
from support.box_fake import BoxFake
from support.dropbox_fake import DropboxFake
from support.playbook import BIN_DIR, COLLECTIONS_ROOT, INVENTORY, run_playbook

NEWCOMERS = [f"new{n:02d}" for n in range(12)]


def newcomer_logins():
    return [f"{uid}@example.org" for uid in NEWCOMERS]


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
    """One ansible-playbook running box_sync once, in its own session (process group)."""

    def __init__(self, env, work, **overrides):
        self.work = work
        work.mkdir(parents=True, exist_ok=True)
        self.record = work / "record.json"
        args = json.dumps(env.args(**overrides))
        (work / "play.yml").write_text(PLAY.format(args=args))
        (work / "inventory.ini").write_text(INVENTORY)
        variables = {"record": str(self.record), "ansible_python_interpreter": sys.executable}
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
                "LDAP_BIND_DN": env.dir.slapd.reader_dn,
                "LDAP_BIND_PW": env.dir.slapd.reader_pw,
            }
        )
        run_env.update(env.auth_env)
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
        return json.loads(self.record.read_text())


def created_logins(fake):
    return collections.Counter(e.body["login"].lower() for e in fake.requests_matching("POST", "/2.0/users"))


def assert_state_matches_box(env):
    state = env.state()  # loads: valid JSON, the format's version
    assert state["version"] == 2 and state["target"] == "box"
    managed = {u["id"] for u in env.box.managed_users()}
    assert set(state["users"]) == managed, "the state file and Box disagree on the managed users"
    for user_id, record in state["users"].items():
        assert record["marker"].startswith("idsync:"), (user_id, record)


@pytest.fixture
def box_fake():
    with BoxFake() as fake:
        yield fake
        fake.latency = 0.0
        fake.assert_valid()
        fake.assert_never_removed_from_enterprise()


@pytest.fixture
def env(box_slapd, box_fake, tmp_path):  # noqa: F811 - box_slapd is the imported fixture
    env = Env(Directory(box_slapd), box_fake, tmp_path)
    yield env
    env.close()


def add_newcomers(env):
    for uid in NEWCOMERS:
        env.dir.add_person(uid, "New", uid.title(), f"{uid}@example.org")


def expected_logins(env):
    return sorted(["alice.smith@example.org", "bob.white@example.org", "jdoe@example.org", *newcomer_logins()])


def test_a_run_killed_by_sigkill_mid_writes_is_recovered_by_the_next_run(env, tmp_path):
    env.provision(manage_groups=False)
    assert_state_matches_box(env)
    add_newcomers(env)
    writes = len(env.box.writes())
    env.box.latency = 0.3  # every request waits: the kill lands between writes
    run = Run(env, tmp_path / "killed", manage_groups=False)
    deadline = time.monotonic() + 300
    while len(env.box.writes()) < writes + 3:
        assert run.proc.poll() is None, (tmp_path / "killed" / "output").read_text()[-4000:]
        assert time.monotonic() < deadline, "no write reached the fake"
        time.sleep(0.05)
    assert module_running(run)
    killed = run.kill()
    while not gone(killed):  # the kernel ends them at once; wait for /proc to say so
        assert time.monotonic() < deadline, "a killed process still runs"
        time.sleep(0.02)
    env.box.latency = 0.0
    reached = created_logins(env.box)
    assert 0 < sum(reached[login] for login in newcomer_logins()) < len(NEWCOMERS), "the kill was not mid-run"

    assert_state_matches_box_or_behind(env)
    result = env.run(manage_groups=False)
    assert not result.get("failed"), result.get("msg")
    assert env.managed_logins() == expected_logins(env)
    assert all(count == 1 for count in created_logins(env.box).values()), created_logins(env.box)
    assert_state_matches_box(env)
    env.settled(manage_groups=False)


def assert_state_matches_box_or_behind(env):
    """After the kill: the file loads, and every user it names exists in Box (it may lag behind)."""
    state = env.state()
    assert state["version"] == 2
    managed = {u["id"] for u in env.box.managed_users()}
    assert set(state["users"]) <= managed


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


def test_two_runs_at_once_on_one_state_file_take_turns_and_leave_it_complete(env, tmp_path):
    env.provision(manage_groups=False)
    add_newcomers(env)
    env.box.latency = 0.1
    writes = len(env.box.writes())
    runs = [Run(env, tmp_path / "run1", manage_groups=False)]
    deadline = time.monotonic() + 300
    while len(env.box.writes()) == writes:  # the first run holds the lock and is writing
        assert runs[0].proc.poll() is None and time.monotonic() < deadline, "the first run wrote nothing"
        time.sleep(0.02)
    env.box.latency = 2.0  # hold the first run mid-writes until the second's module runs
    runs.append(Run(env, tmp_path / "run2", manage_groups=False))
    while not module_running(runs[1]):
        assert runs[1].proc.poll() is None and time.monotonic() < deadline, "the second run never started its module"
        time.sleep(0.05)
    overlapped = runs[0].proc.poll() is None
    env.box.latency = 0.05
    assert overlapped, "the first run ended before the second began: nothing was proven"
    results = [run.wait() for run in runs]
    env.box.latency = 0.0
    lock = str(env.state_file) + ".lock"
    for result in results:
        if result.get("failed"):  # the loser may give up waiting: it must say why, naming the lock
            assert "locked by another run" in result["msg"] and lock in result["msg"], result["msg"]
    assert any(not r.get("failed") for r in results), [r.get("msg") for r in results]
    created = [r["report"]["counts"].get("create_user", 0) for r in results if not r.get("failed")]
    assert sum(created) == len(NEWCOMERS), created  # the second saw the first's work: nothing twice
    assert env.managed_logins() == expected_logins(env)
    assert all(count == 1 for count in created_logins(env.box).values()), created_logins(env.box)
    assert_state_matches_box(env)
    env.settled(manage_groups=False)


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
        play = pingid.PLAY.replace("idsync.provisioning.pingid_sync:", f"idsync.provisioning.{self.name}_sync:")
        done = run_playbook(self.tmp_path / f"play{self.plays}", play, {"steps": plan}, self.run_env)
        assert done.rc == 0 and len(done.output) == len(steps), done.text[-4000:]
        return done.output


@pytest.fixture(params=["box", "dropbox", "pingid"])
def target(request, pingid_slapd, tmp_path):  # noqa: F811 - the imported fixture
    if request.param == "box":
        fake = request.getfixturevalue("box_fake")
        yield Target("box", pingid_slapd, tmp_path, fake)
    elif request.param == "pingid":
        fake = request.getfixturevalue("pingid_fake")
        fake.reset()
        fake.report_polls = 0
        yield Target("pingid", pingid_slapd, tmp_path, fake)
        assert not fake.validation_errors, fake.validation_errors
    else:
        with DropboxFake(added_status="active") as fake:
            yield Target("dropbox", pingid_slapd, tmp_path, fake)
            assert fake.validation_errors == []
            fake.assert_nothing_wiped()


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
