# -*- coding: utf-8 -*-
"""_kit.follow_job: the one poller of asynchronous jobs (Dropbox's members/add and remove jobs,
PingID's report job)."""

from __future__ import annotations

import pytest

from ansible_collections.idsync.provisioning.plugins.module_utils import _kit
from ansible_collections.idsync.provisioning.plugins.module_utils._http import AmbiguousRequestError
from ansible_collections.idsync.provisioning.plugins.module_utils._model import ProvisioningError


class Job:
    """A job answering the given states in order; records the polls and the waits."""

    def __init__(self, *states):
        self.states = list(states)
        self.polls = 0
        self.waits = []

    def poll(self):
        self.polls += 1
        return {"state": self.states.pop(0)}

    def sleep(self, seconds):
        self.waits.append(seconds)


def classify(answer):
    state = answer["state"]
    if state == "failed":
        raise ProvisioningError("the job failed: quota")
    return {"done": _kit.JOB_DONE, "running": _kit.JOB_RUNNING, "id": _kit.JOB_POLL}.get(state, state)


def follow(job, **options):
    options.setdefault("max_polls", 10)
    return _kit.follow_job(job.poll, classify, what="the report job", sleep=job.sleep, **options)


def test_a_launch_answer_that_is_done_is_returned_without_a_poll():
    job = Job()
    assert follow(job, answer={"state": "done", "value": 1}) == {"state": "done", "value": 1}
    assert job.polls == 0 and job.waits == []


def test_a_launch_naming_the_job_is_polled_at_once_then_with_a_growing_bounded_wait():
    job = Job(*["running"] * 6, "done")
    assert follow(job, answer={"state": "id"}, first_wait=1.0, max_wait=5.0) == {"state": "done"}
    assert job.polls == 7
    assert job.waits == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]


def test_without_an_answer_the_first_poll_comes_first():
    job = Job("running", "done")
    assert follow(job) == {"state": "done"}
    assert job.polls == 2 and job.waits == [_kit.JOB_FIRST_WAIT]


def test_a_job_still_running_after_max_polls_is_ambiguous_and_named():
    job = Job(*["running"] * 10)
    with pytest.raises(AmbiguousRequestError, match="the report job did not finish after 3 polls"):
        follow(job, max_polls=3)
    assert job.polls == 3 and len(job.waits) == 2  # no wait after the last poll


def test_what_may_be_read_late():
    job = Job("running")
    named = {"id": None}

    def what():
        return f"job {named['id']}"

    named["id"] = "dbjid:42"
    with pytest.raises(AmbiguousRequestError, match="job dbjid:42 did not finish after 1 polls"):
        _kit.follow_job(job.poll, classify, what=what, sleep=job.sleep, max_polls=1)


def test_a_failed_job_raises_the_classifiers_error():
    job = Job("running", "failed")
    with pytest.raises(ProvisioningError, match="the job failed: quota"):
        follow(job)


def test_an_unknown_verdict_is_a_programming_error():
    job = Job("weird")
    with pytest.raises(ValueError, match="classify answered 'weird'"):
        follow(job)
