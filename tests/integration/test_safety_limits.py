# -*- coding: utf-8 -*-
# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Safety limits of the state file, end to end (issue 15 item 4): a real slapd, the fake Box,
ansible-playbook for real.

- A run killed by SIGKILL (its whole process group: ansible-playbook and the module) while its
  writes are reaching a slow Box leaves a state file that loads; the next run completes the work:
  the target equals the desired state, no user is created twice, the state file names exactly the
  managed users.
- Two runs started at once on the same state file: one waits for the other's lock (or fails naming
  the lock); the file is valid and complete after both, nobody created twice.

Thresholds and the empty-source guard are proven elsewhere (see the module's report in the session
notes): tests/integration/test_box_sync.py, test_scim_sync.py, test_plans.py, test_sync_role.py,
tests/unit/test_engine.py; the lock and the atomic save in tests/unit/test_state.py.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from support.box_fake import BoxFake
from support.playbook import BIN_DIR, COLLECTIONS_ROOT, INVENTORY
from test_box_sync import PLAY, Directory, Env, box_slapd  # noqa: F401 - box_slapd is a fixture

NEWCOMERS = [f"new{n:02d}" for n in range(12)]


def newcomer_logins():
    return [f"{uid}@example.org" for uid in NEWCOMERS]


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
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.out.close()

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
    run.kill()
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
    leftovers = [p.name for p in env.state_file.parent.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == [] or all(p.startswith(".") for p in leftovers)


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
    runs.append(Run(env, tmp_path / "run2", manage_groups=False))
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
