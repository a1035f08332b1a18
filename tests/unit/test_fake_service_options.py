# Copyright: idsync.provisioning contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fakes' latency and rate-limit constructor options (issue 16: the bench sets them)."""

from __future__ import annotations

import requests
from support.fake_service import FakeService, ManualClock, route


class PingFake(FakeService):
    @route("GET", "/ping", auth=False)
    def ping(self, call):
        return {"pong": True}

    def reset(self):  # as the vendor fakes do in their constructors: no rate limit
        self.rate_limit(None)


def test_both_are_off_by_default():
    with PingFake() as fake:
        assert fake.latency == 0.0 and fake.rate_limiter is None
        assert [requests.get(f"{fake.url}/ping", timeout=5).status_code for _n in range(3)] == [200, 200, 200]


def test_the_constructor_sets_latency_and_a_rate_limit_that_outlives_reset():
    clock = ManualClock()
    fake = PingFake(latency=0.01, rate_limit=(2, 60.0), clock=clock)
    fake.reset()
    with fake:
        assert fake.latency == 0.01
        assert (fake.rate_limiter.limit, fake.rate_limiter.window) == (2, 60.0)
        answers = [requests.get(f"{fake.url}/ping", timeout=5) for _n in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2].headers["Retry-After"] == "30"  # one token every 30 s of the fake's clock
    assert [entry.fault for entry in fake.requests] == [None, None, "rate_limit"]
